/**
 * ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2, kubernetes-sigs/network-policy-api),
 * served built in from its CRD's schema (control-plane/api/crd-schemas.ts): the CRD's validations
 * reported as apiextensions-apiserver reports them for a custom resource (a 422 naming each
 * field), its structural checks, its OpenAPI documents, its table; and the OpenAPI v2 document
 * kubectl reads for `kind: List`.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { crdDefinitions } from "../../../control-plane/api/crd-schemas.ts";
import {
  OPENAPI_V2_PROTOBUF_CONTENT_TYPE,
  openApiDefinitions,
  openApiV2Document,
  openApiV2Protobuf,
  openApiV3Document,
  schemaName,
  type JsonObject,
} from "../../../control-plane/api/openapi.ts";
import { PatchType, Registry } from "../../../control-plane/api/registry.ts";
import { checkSchema, hasSchema } from "../../../control-plane/api/schema.ts";
import { ApiError } from "../../../control-plane/api/status.ts";
import { columnDefinitions, toTable } from "../../../control-plane/api/tables.ts";
import { CEL_RULES, celIsCidr, formatFieldError, statusForInvalid, validateObject } from "../../../control-plane/api/validation.ts";
import { RESOURCES, objectKey, resourceByKind, resourceForKind, type ResourceInfo } from "../../../cluster/resources.ts";
import type { KubeObject, ObjectStore } from "../../../cluster/store.ts";

const API_VERSION = "policy.networking.k8s.io/v1alpha2";
const NOT_CHECKED = '<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation';

type Spec = Record<string, unknown>;

const cnp = (spec: Spec, name = "cnp"): KubeObject => ({ apiVersion: API_VERSION, kind: "ClusterNetworkPolicy", metadata: { name }, spec }) as KubeObject;
/** A valid Admin policy; `over` replaces its spec fields. */
const admin = (over: Spec = {}): KubeObject => cnp({ tier: "Admin", priority: 10, subject: { namespaces: {} }, ...over });
const egressTo = (to: unknown[], extra: Spec = {}): KubeObject => admin({ egress: [{ action: "Deny", to, ...extra }] });
const ingressFrom = (from: unknown[], extra: Spec = {}): KubeObject => admin({ ingress: [{ action: "Deny", from, ...extra }] });
const withProtocols = (protocols: unknown[]): KubeObject => ingressFrom([{ namespaces: {} }], { protocols });

const check = (obj: unknown, old?: unknown): string[] => validateObject("ClusterNetworkPolicy", obj, old).map(formatFieldError);
const times = <T,>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

describe("ClusterNetworkPolicy as a served kind", () => {
  it("is cluster-scoped in policy.networking.k8s.io/v1alpha2, short name cnp, with a status subresource", () => {
    const r = resourceByKind("ClusterNetworkPolicy");
    expect(r).toMatchObject({ group: "policy.networking.k8s.io", version: "v1alpha2", plural: "clusternetworkpolicies", singular: "clusternetworkpolicy", namespaced: false, shortNames: ["cnp"], subresources: ["status"], source: "crd" });
    expect(resourceForKind(API_VERSION, "ClusterNetworkPolicy")).toBe(r);
    expect(objectKey(r, undefined, "x")).toBe("clusternetworkpolicies_policy_networking_k8s_io._.x");
    expect(hasSchema("ClusterNetworkPolicy", API_VERSION)).toBe(true);
  });
});

describe("ClusterNetworkPolicy validation: what the CRD accepts", () => {
  it("accepts the project's examples: a namespace-wide Admin deny, a Baseline default deny, pods subjects, every peer and protocol", () => {
    expect(check(admin({ ingress: [{ name: "select-ingress-deny", action: "Deny", from: [{ namespaces: {} }] }] }))).toEqual([]);
    expect(check(cnp({ tier: "Baseline", priority: 0, subject: { namespaces: {} }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }], egress: [{ action: "Deny", to: [{ networks: ["0.0.0.0/0", "::/0"] }] }] }))).toEqual([]);
    const full = cnp({
      tier: "Admin",
      priority: 1000,
      subject: { pods: { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "prod" } }, podSelector: { matchExpressions: [{ key: "app", operator: "In", values: ["db"] }] } } },
      ingress: [
        { name: "pass-monitoring", action: "Pass", from: [{ namespaces: { matchLabels: { team: "monitoring" } } }] },
        { action: "Accept", from: [{ pods: { podSelector: {} } }], protocols: [{ tcp: { destinationPort: { number: 5432 } } }, { destinationNamedPort: "metrics" }] },
      ],
      egress: [
        { action: "Accept", to: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } } }], protocols: [{ udp: { destinationPort: { number: 53 } } }, { sctp: { destinationPort: { range: { start: 1, end: 65535 } } } }] },
        { action: "Deny", to: [{ networks: ["10.0.0.0/8", "10.1.2.3/16", "fd00::/8"] }, { namespaces: {} }] },
      ],
    });
    expect(check(full)).toEqual([]);
  });

  it("allows every action in either tier: v1alpha2 has no per-tier restriction (Pass in Baseline skips to the default allow)", () => {
    for (const tier of ["Admin", "Baseline"]) {
      for (const action of ["Accept", "Deny", "Pass"]) {
        expect(check(cnp({ tier, priority: 5, subject: { namespaces: {} }, ingress: [{ action, from: [{ namespaces: {} }] }], egress: [{ action, to: [{ namespaces: {} }] }] })), `${tier} ${action}`).toEqual([]);
      }
    }
  });

  it("accepts the list limits exactly: 25 rules, 25 peers, 25 protocols, 25 networks, a 100-character rule name", () => {
    const rules = times(25, (i) => ({ name: "r".repeat(100), action: "Deny", from: times(25, () => ({ namespaces: {} })), protocols: times(25, () => ({ tcp: { destinationPort: { number: 80 + i } } })) }));
    const networks = times(25, (i) => `10.${i}.0.0/16`);
    expect(check(admin({ ingress: rules, egress: times(25, () => ({ action: "Accept", to: [{ networks }] })) }))).toEqual([]);
  });
});

describe("ClusterNetworkPolicy validation: each CRD rule, as apiextensions-apiserver reports it", () => {
  const cases: Array<{ name: string; obj: KubeObject; errs: string[] }> = [
    { name: "tier is Admin or Baseline", obj: admin({ tier: "Developer" }), errs: ['spec.tier: Unsupported value: "Developer": supported values: "Admin", "Baseline"', NOT_CHECKED] },
    { name: "priority is at most 1000", obj: admin({ priority: 1001 }), errs: ["spec.priority: Invalid value: 1001: spec.priority in body should be less than or equal to 1000"] },
    { name: "priority is at least 0", obj: admin({ priority: -1 }), errs: ["spec.priority: Invalid value: -1: spec.priority in body should be greater than or equal to 0"] },
    { name: "tier, priority and subject are required", obj: cnp({}), errs: ["spec.priority: Required value", "spec.subject: Required value", "spec.tier: Required value", NOT_CHECKED] },
    { name: "spec is required", obj: { apiVersion: API_VERSION, kind: "ClusterNetworkPolicy", metadata: { name: "x" } } as KubeObject, errs: ["spec: Required value", NOT_CHECKED] },
    { name: "the subject sets one field, not none", obj: admin({ subject: {} }), errs: ["spec.subject: Invalid value: 0: spec.subject in body should have at least 1 properties"] },
    { name: "the subject sets one field, not two", obj: admin({ subject: { namespaces: {}, pods: { podSelector: {} } } }), errs: ["spec.subject: Too many: 2: must have at most 1 items", NOT_CHECKED] },
    { name: "a pods subject needs its podSelector", obj: admin({ subject: { pods: { namespaceSelector: {} } } }), errs: ["spec.subject.pods.podSelector: Required value", NOT_CHECKED] },
    { name: "at most 25 ingress rules", obj: admin({ ingress: times(26, () => ({ action: "Deny", from: [{ namespaces: {} }] })) }), errs: ["spec.ingress: Too many: 26: must have at most 25 items", NOT_CHECKED] },
    { name: "at most 25 egress rules", obj: admin({ egress: times(26, () => ({ action: "Deny", to: [{ namespaces: {} }] })) }), errs: ["spec.egress: Too many: 26: must have at most 25 items", NOT_CHECKED] },
    { name: "an action is Accept, Deny or Pass", obj: admin({ ingress: [{ action: "Allow", from: [{ namespaces: {} }] }] }), errs: ['spec.ingress[0].action: Unsupported value: "Allow": supported values: "Accept", "Deny", "Pass"', NOT_CHECKED] },
    { name: "a rule needs its action and peers", obj: admin({ ingress: [{ name: "x" }], egress: [{ name: "y" }] }), errs: ["spec.egress[0].action: Required value", "spec.egress[0].to: Required value", "spec.ingress[0].action: Required value", "spec.ingress[0].from: Required value", NOT_CHECKED] },
    { name: "a rule has at least one peer", obj: ingressFrom([]), errs: ["spec.ingress[0].from: Invalid value: 0: spec.ingress[0].from in body should have at least 1 items"] },
    { name: "a rule has at most 25 peers", obj: egressTo(times(26, () => ({ namespaces: {} }))), errs: ["spec.egress[0].to: Too many: 26: must have at most 25 items", NOT_CHECKED] },
    { name: "a peer sets one field, not none", obj: ingressFrom([{}]), errs: ["spec.ingress[0].from[0]: Invalid value: 0: spec.ingress[0].from[0] in body should have at least 1 properties"] },
    { name: "a peer sets one field, not two", obj: egressTo([{ namespaces: {}, networks: ["10.0.0.0/8"] }]), errs: ["spec.egress[0].to[0]: Too many: 2: must have at most 1 items", NOT_CHECKED] },
    { name: "a pods peer needs its podSelector", obj: ingressFrom([{ pods: {} }]), errs: ["spec.ingress[0].from[0].pods.podSelector: Required value", NOT_CHECKED] },
    { name: "a rule name is at most 100 characters", obj: ingressFrom([{ namespaces: {} }], { name: "n".repeat(101) }), errs: ["spec.ingress[0].name: Too long: may not be longer than 100", NOT_CHECKED] },
    { name: "protocols, when given, are not empty", obj: withProtocols([]), errs: ["spec.ingress[0].protocols: Invalid value: 0: spec.ingress[0].protocols in body should have at least 1 items"] },
    { name: "at most 25 protocols", obj: withProtocols(times(26, () => ({ destinationNamedPort: "http" }))), errs: ["spec.ingress[0].protocols: Too many: 26: must have at most 25 items", NOT_CHECKED] },
    { name: "a protocol entry sets one field", obj: withProtocols([{ tcp: { destinationPort: { number: 80 } }, udp: { destinationPort: { number: 80 } } }, {}]), errs: ["spec.ingress[0].protocols[0]: Too many: 2: must have at most 1 items", "spec.ingress[0].protocols[1]: Invalid value: 0: spec.ingress[0].protocols[1] in body should have at least 1 properties", NOT_CHECKED] },
    { name: "a tcp match is not empty", obj: withProtocols([{ tcp: {} }]), errs: ["spec.ingress[0].protocols[0].tcp: Invalid value: 0: spec.ingress[0].protocols[0].tcp in body should have at least 1 properties"] },
    { name: "a destination port is a number or a range, not both", obj: withProtocols([{ udp: { destinationPort: { number: 53, range: { start: 1, end: 2 } } } }]), errs: ["spec.ingress[0].protocols[0].udp.destinationPort: Too many: 2: must have at most 1 items", NOT_CHECKED] },
    { name: "a port number is 1-65535", obj: withProtocols([{ tcp: { destinationPort: { number: 0 } } }, { sctp: { destinationPort: { number: 65536 } } }]), errs: ["spec.ingress[0].protocols[0].tcp.destinationPort.number: Invalid value: 0: spec.ingress[0].protocols[0].tcp.destinationPort.number in body should be greater than or equal to 1", "spec.ingress[0].protocols[1].sctp.destinationPort.number: Invalid value: 65536: spec.ingress[0].protocols[1].sctp.destinationPort.number in body should be less than or equal to 65535"] },
    { name: "a range has its start and end", obj: withProtocols([{ tcp: { destinationPort: { range: { start: 80 } } } }]), errs: ["spec.ingress[0].protocols[0].tcp.destinationPort.range.end: Required value", NOT_CHECKED] },
    { name: "a range ends past 65535 no more than a number does", obj: withProtocols([{ tcp: { destinationPort: { range: { start: 80, end: 70000 } } } }]), errs: ["spec.ingress[0].protocols[0].tcp.destinationPort.range.end: Invalid value: 70000: spec.ingress[0].protocols[0].tcp.destinationPort.range.end in body should be less than or equal to 65535"] },
    { name: "CEL: a range starts below its end", obj: withProtocols([{ tcp: { destinationPort: { range: { start: 90, end: 80 } } } }, { udp: { destinationPort: { range: { start: 80, end: 80 } } } }]), errs: ['spec.ingress[0].protocols[0].tcp.destinationPort.range: Invalid value: "object": Start port must be less than End port', 'spec.ingress[0].protocols[1].udp.destinationPort.range: Invalid value: "object": Start port must be less than End port'] },
    { name: "networks, when given, are 1 to 25", obj: egressTo([{ networks: [] }, { networks: times(26, (i) => `10.${i}.0.0/16`) }]), errs: ["spec.egress[0].to[0].networks: Invalid value: 0: spec.egress[0].to[0].networks in body should have at least 1 items", "spec.egress[0].to[1].networks: Too many: 26: must have at most 25 items", NOT_CHECKED] },
    { name: "a network is at most 43 characters", obj: egressTo([{ networks: ["2001:0db8:0000:0000:0000:0000:0000:0000:0000/64"] }]), errs: ["spec.egress[0].to[0].networks[0]: Too long: may not be longer than 43", NOT_CHECKED] },
    { name: "networks are a set", obj: egressTo([{ networks: ["10.0.0.0/8", "fd00::/8", "10.0.0.0/8"] }]), errs: ['spec.egress[0].to[0].networks[2]: Duplicate value: "10.0.0.0/8"'] },
    { name: "CEL: a network is a CIDR", obj: egressTo([{ networks: ["10.0.0.0", "10.0.0.0/33", "010.0.0.0/8", "::ffff:10.0.0.0/104", "10.0.0.0/8"] }]), errs: [0, 1, 2, 3].map((i) => `spec.egress[0].to[0].networks[${i}]: Invalid value: "string": Invalid CIDR format provided`) },
    { name: "ingress peers have no networks (that is an egress peer)", obj: ingressFrom([{ networks: ["10.0.0.0/8"] }]), errs: [] },
    { name: "the name is a DNS subdomain", obj: cnp({ tier: "Admin", priority: 1, subject: { namespaces: {} } }, "Not_Valid"), errs: [expect.stringMatching(/^metadata\.name: Invalid value: "Not_Valid": a lowercase RFC 1123 subdomain/) as unknown as string] },
  ];
  for (const c of cases) {
    it(c.name, () => expect(check(c.obj)).toEqual(c.errs));
  }

  it("is cluster-scoped: a namespace in the metadata is forbidden", () => {
    expect(check({ ...admin(), metadata: { name: "x", namespace: "default" } })).toEqual(["metadata.namespace: Forbidden: not allowed on this type"]);
  });

  it("runs the CEL rules only when no blocking error (enum, required, too long, too many) was found", () => {
    // A bound violation does not block: the range rule is still evaluated.
    const obj = admin({ priority: 2000, ingress: [{ action: "Deny", from: [{ namespaces: {} }], protocols: [{ tcp: { destinationPort: { range: { start: 9, end: 8 } } } }] }] });
    expect(check(obj)).toEqual([
      "spec.priority: Invalid value: 2000: spec.priority in body should be less than or equal to 1000",
      'spec.ingress[0].protocols[0].tcp.destinationPort.range: Invalid value: "object": Start port must be less than End port',
    ]);
    // An enum violation does: the rule is not evaluated, and the Status says so.
    expect(check({ ...obj, spec: { ...(obj.spec as Spec), tier: "x" } })).toContain(NOT_CHECKED);
    expect(check({ ...obj, spec: { ...(obj.spec as Spec), tier: "x" } }).join("\n")).not.toContain("Start port");
  });

  it("checks an update the same way, and name changes are refused", () => {
    const old = { ...admin(), metadata: { name: "cnp", uid: "u1" } };
    expect(check({ ...admin({ priority: 2 }), metadata: { name: "cnp", uid: "u1" } }, old)).toEqual([]);
    expect(check({ ...admin({ tier: "Other" }), metadata: { name: "renamed", uid: "u1" } }, old)).toEqual([
      'metadata.name: Invalid value: "renamed": field is immutable',
      'spec.tier: Unsupported value: "Other": supported values: "Admin", "Baseline"',
      NOT_CHECKED,
    ]);
  });

  it("leaves status to the status subresource", () => {
    expect(check({ ...admin(), status: { conditions: [{ type: "Ready" }] } })).toEqual([]);
  });

  it("makes a 422 Status that names the kind with its group and each field as a cause", () => {
    const st = statusForInvalid("ClusterNetworkPolicy", "cnp", validateObject("ClusterNetworkPolicy", admin({ priority: 1001 })), "policy.networking.k8s.io");
    expect(st).toMatchObject({
      code: 422,
      reason: "Invalid",
      message: 'ClusterNetworkPolicy.policy.networking.k8s.io "cnp" is invalid: spec.priority: Invalid value: 1001: spec.priority in body should be less than or equal to 1000',
      details: { name: "cnp", group: "policy.networking.k8s.io", kind: "ClusterNetworkPolicy", causes: [{ reason: "FieldValueInvalid", field: "spec.priority" }] },
    });
  });
});

describe("CEL rules", () => {
  it("isCIDR is netip.ParsePrefix without IPv4-mapped addresses", () => {
    const good = ["10.0.0.0/8", "10.1.2.3/8", "0.0.0.0/0", "192.168.1.1/32", "::/0", "fd00::/8", "2001:db8::1/128", "::1.2.3.4/128"];
    const bad = ["10.0.0.0", "10.0.0.0/33", "10.0.0.0/08", "010.0.0.0/8", "10.0.0.256/8", "10.0.0/8", "::ffff:10.0.0.0/104", "fd00::/129", "fd00::/-1", "fe80::1%eth0/64", "", "/8", "10.0.0.0/ 8"];
    for (const c of good) expect(celIsCidr(c), c).toBe(true);
    for (const c of bad) expect(celIsCidr(c), c).toBe(false);
  });

  it("has an implementation of every rule the served CRD schemas carry", () => {
    const rules = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object") {
        for (const [k, child] of Object.entries(v)) {
          if (k === "x-kubernetes-validations") for (const r of child as Array<{ rule: string }>) rules.add(r.rule);
          else walk(child);
        }
      }
    };
    for (const r of RESOURCES.filter((x) => x.source === "crd")) walk(openApiDefinitions()[schemaName(r, r.kind)]);
    // NetworkChaos (chaos.kubewire.io) carries the first one.
    expect([...rules].sort()).toEqual(["!(has(self.loss) && has(self.gemodel))", "isCIDR(self)", "self.start < self.end"]);
    for (const rule of rules) expect(CEL_RULES[rule], rule).toBeTypeOf("function");
  });
});

describe("ClusterNetworkPolicy structure (wrong JSON types, unknown fields)", () => {
  it("names a wrong type by its path", () => {
    const { structural } = checkSchema("ClusterNetworkPolicy", API_VERSION, admin({ priority: "10", subject: [], egress: [{ action: "Deny", to: [{ networks: "10.0.0.0/8" }] }] }));
    expect(structural.map((e) => `${e.field}: ${e.message}`)).toEqual([
      'spec.priority: Invalid value: "string": spec.priority in body must be of type integer: "string"',
      'spec.subject: Invalid value: "array": spec.subject in body must be of type object: "array"',
      'spec.egress[0].to[0].networks: Invalid value: "string": spec.egress[0].to[0].networks in body must be of type array: "string"',
    ]);
  });

  it("finds unknown fields anywhere, metadata included, and takes any label keys", () => {
    const obj = { ...egressTo([{ nodes: {} }]), metadata: { name: "x", labels: { a: "b" }, bogus: 1 }, tier: "Admin" } as KubeObject;
    expect(checkSchema("ClusterNetworkPolicy", API_VERSION, obj).unknown).toEqual(["metadata.bogus", "spec.egress[0].to[0].nodes", "tier"]);
  });

  it("with prune, drops the unknown fields (then a peer left empty fails validation, as on a real cluster)", () => {
    const obj = egressTo([{ nodes: {} }]);
    checkSchema("ClusterNetworkPolicy", API_VERSION, obj, { prune: true });
    expect((obj.spec as { egress: Array<{ to: unknown[] }> }).egress[0]!.to).toEqual([{}]);
    expect(check(obj)).toEqual(["spec.egress[0].to[0]: Invalid value: 0: spec.egress[0].to[0] in body should have at least 1 properties"]);
  });
});

describe("ClusterNetworkPolicy through the registry", () => {
  const objects = new Map<string, KubeObject>();
  let rv = 1;
  const store = {
    get: async (r: ResourceInfo, ns: string | undefined, name: string) => structuredClone(objects.get(objectKey(r, ns, name))),
    create: async (r: ResourceInfo, obj: KubeObject) => {
      const stored = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++rv) } };
      objects.set(objectKey(r, obj.metadata.namespace, obj.metadata.name!), stored);
      return structuredClone(stored);
    },
    update: async (r: ResourceInfo, obj: KubeObject) => {
      const stored = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++rv) } };
      objects.set(objectKey(r, obj.metadata.namespace, obj.metadata.name!), stored);
      return structuredClone(stored);
    },
  };
  const registry = new Registry(store as unknown as ObjectStore, async (_r, obj) => obj, async () => false);
  const r = resourceByKind("ClusterNetworkPolicy");
  beforeEach(() => objects.clear());

  async function rejected(p: Promise<unknown>): Promise<ApiError> {
    const err = await p.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }

  it("creates one without a namespace, dropping a status sent with it", async () => {
    const created = await registry.create(r, undefined, { ...admin(), status: { conditions: [] } } as KubeObject);
    expect(created.metadata.namespace).toBeUndefined();
    expect(created.status).toBeUndefined();
    expect(objects.has("clusternetworkpolicies_policy_networking_k8s_io._.cnp")).toBe(true);
  });

  it("answers an invalid one with a 422 naming the fields, and stores nothing", async () => {
    const err = await rejected(registry.create(r, undefined, admin({ tier: "Nope", priority: 5000 })));
    expect(err.status.code).toBe(422);
    expect(err.status.details?.causes?.map((c) => c.field)).toEqual(["spec.priority", "spec.tier", "<nil>"]);
    expect(objects.size).toBe(0);
  });

  it("answers an unknown field with Strict as kube-apiserver does for a custom resource's body", async () => {
    const err = await rejected(registry.create(r, undefined, { ...admin(), spec: { ...(admin().spec as Spec), action: "Deny" } } as KubeObject, { fieldValidation: "Strict" }));
    expect(err.status).toMatchObject({ code: 400, message: 'ClusterNetworkPolicy in version "v1alpha2" cannot be handled as a ClusterNetworkPolicy: strict decoding error: unknown field "spec.action"' });
  });

  it("takes merge and JSON patches, validated, and refuses a strategic merge patch (415) as for any custom resource", async () => {
    await registry.create(r, undefined, admin());
    expect((await registry.patch(r, undefined, "cnp", PatchType.merge, { spec: { priority: 20 } })).spec).toMatchObject({ priority: 20 });
    expect((await registry.patch(r, undefined, "cnp", PatchType.json, [{ op: "replace", path: "/spec/tier", value: "Baseline" }])).spec).toMatchObject({ tier: "Baseline" });
    expect((await rejected(registry.patch(r, undefined, "cnp", PatchType.merge, { spec: { priority: -5 } }))).status.code).toBe(422);
    const smp = await rejected(registry.patch(r, undefined, "cnp", PatchType.strategic, { spec: { priority: 1 } }));
    expect(smp.status).toMatchObject({ code: 415, reason: "UnsupportedMediaType" });
    expect(smp.status.message).toContain("application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml");
  });
});

describe("ClusterNetworkPolicy OpenAPI and table", () => {
  type Doc = { paths: Record<string, Record<string, { operationId?: string; "x-kubernetes-group-version-kind"?: unknown }>>; components: { schemas: Record<string, JsonObject> } };
  const doc = openApiV3Document("apis/policy.networking.k8s.io/v1alpha2") as Doc;
  const NAME = "io.k8s.networking.policy.v1alpha2.ClusterNetworkPolicy";

  it("publishes the schema as kube-apiserver publishes a CRD's: reversed-group name, GVK, ObjectMeta by reference", () => {
    const s = doc.components.schemas[NAME]!;
    expect(s["x-kubernetes-group-version-kind"]).toEqual([{ group: "policy.networking.k8s.io", version: "v1alpha2", kind: "ClusterNetworkPolicy" }]);
    expect(s.required).toEqual(["metadata", "spec"]);
    expect(JSON.stringify(s.properties)).toContain("#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    expect(doc.components.schemas).toHaveProperty(["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]);
    expect(doc.components.schemas[`${NAME}List`]!["x-kubernetes-group-version-kind"]).toEqual([{ group: "policy.networking.k8s.io", version: "v1alpha2", kind: "ClusterNetworkPolicyList" }]);
  });

  it("serves cluster-scoped paths, the status subresource included, with CRD-style operation ids", () => {
    expect(Object.keys(doc.paths).sort()).toEqual([
      "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies",
      "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies/{name}",
      "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies/{name}/status",
    ]);
    expect(doc.paths["/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies"]!.get!.operationId).toBe("listPolicyNetworkingK8sIoV1alpha2ClusterNetworkPolicy");
  });

  it("keeps openapi-schemas.json in step with crd-schemas.ts (run `npm run gen:openapi` after changing it)", () => {
    const stored = openApiDefinitions();
    const typeMeta = stored[NAME]!.properties as Record<string, { description: string }>;
    const fresh = crdDefinitions({ apiVersion: typeMeta.apiVersion!.description, kind: typeMeta.kind!.description });
    for (const [name, schema] of Object.entries(fresh)) expect(stored[name], name).toEqual(schema);
  });

  it("prints the CRD's printer columns: Name, Tier, Priority, Age", () => {
    expect(columnDefinitions("ClusterNetworkPolicy").map((c) => [c.name, c.type])).toEqual([["Name", "string"], ["Tier", "string"], ["Priority", "string"], ["Age", "date"]]);
    const obj = { ...admin({ priority: 7 }), metadata: { name: "cnp", creationTimestamp: "2026-01-01T00:00:00Z" } } as KubeObject;
    const table = toTable("ClusterNetworkPolicy", [obj, cnp({}, "empty")], { now: new Date("2026-01-01T00:05:00Z"), includeObject: "None" });
    expect(table.rows.map((row) => row.cells)).toEqual([["cnp", "Admin", "7", "5m"], ["empty", null, null, null]]);
  });
});

describe("OpenAPI v2 (what kubectl reads to validate a kind: List)", () => {
  /** A minimal protobuf reader: the length-delimited fields of a message, by number. */
  function fields(buf: Uint8Array): Map<number, Uint8Array[]> {
    const out = new Map<number, Uint8Array[]>();
    let i = 0;
    const varint = (): number => {
      let n = 0;
      let shift = 0;
      for (;;) {
        const b = buf[i++]!;
        n |= (b & 0x7f) << shift;
        if (b < 0x80) return n;
        shift += 7;
      }
    };
    while (i < buf.length) {
      const key = varint();
      expect(key & 7).toBe(2);
      const len = varint();
      const list = out.get(key >> 3) ?? [];
      list.push(buf.subarray(i, i + len));
      out.set(key >> 3, list);
      i += len;
    }
    return out;
  }
  const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString("utf8");

  it("is a Swagger 2.0 document with no definitions, so kubectl validates listed objects against none", () => {
    expect(openApiV2Document()).toEqual({ swagger: "2.0", info: { title: "Kubernetes", version: "v1.30.0" }, paths: {} });
  });

  it("encodes as gnostic's openapi_v2.Document (swagger 1, info 2 {title 1, version 2}, paths 8), under a media type Go can parse", () => {
    const doc = fields(openApiV2Protobuf());
    expect(text(doc.get(1)?.[0])).toBe("2.0");
    const info = fields(doc.get(2)![0]!);
    expect([text(info.get(1)?.[0]), text(info.get(2)?.[0])]).toEqual(["Kubernetes", "v1.30.0"]);
    expect(doc.get(8)?.[0]?.length).toBe(0);
    expect([...doc.keys()].sort()).toEqual([1, 2, 8]);
    expect(OPENAPI_V2_PROTOBUF_CONTENT_TYPE).not.toContain("@");
  });
});
