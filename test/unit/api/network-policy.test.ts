/**
 * NetworkPolicy (networking.k8s.io/v1) in the API, as kube-apiserver does it:
 * pkg/apis/networking/validation ValidateNetworkPolicy/ValidateNetworkPolicyUpdate after the v1
 * defaults; a manifest whose spec fields sit at the top level is rejected by strict field
 * validation naming each field; every Namespace carries kubernetes.io/metadata.name.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { createAdmission } from "../../../control-plane/api/admission.ts";
import { defaultObject } from "../../../control-plane/api/defaults.ts";
import { PatchType, Registry } from "../../../control-plane/api/registry.ts";
import { checkSchema } from "../../../control-plane/api/schema.ts";
import { ApiError } from "../../../control-plane/api/status.ts";
import { formatFieldError, validateObject } from "../../../control-plane/api/validation.ts";
import { objectKey, resourceByKind, type ResourceInfo } from "../../../cluster/resources.ts";
import type { KubeObject, ObjectStore } from "../../../cluster/store.ts";

const PORT_RANGE = "must be between 1 and 65535, inclusive";
const CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

const netpol = (spec: Record<string, unknown>, name = "np") => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace: "default" }, spec });

/** The errors kube-apiserver would report for the object after defaulting, as "field: message". */
function check(obj: unknown, old?: unknown): string[] {
  const prev = old === undefined ? undefined : defaultObject("NetworkPolicy", old);
  return validateObject("NetworkPolicy", defaultObject("NetworkPolicy", obj), prev).map(formatFieldError);
}

const ingressPorts = (ports: unknown[]) => netpol({ podSelector: {}, ingress: [{ ports }] });
const fromPeers = (from: unknown[]) => netpol({ podSelector: {}, ingress: [{ from }] });

describe("NetworkPolicy ports (ValidateNetworkPolicyPort)", () => {
  const cases: Array<{ name: string; port: Record<string, unknown>; errs: string[] }> = [
    { name: "the lowest port", port: { port: 1 }, errs: [] },
    { name: "the highest port", port: { port: 65535 }, errs: [] },
    { name: "port 0", port: { port: 0 }, errs: [`spec.ingress[0].ports[0].port: Invalid value: 0: ${PORT_RANGE}`] },
    { name: "port 65536", port: { port: 65536 }, errs: [`spec.ingress[0].ports[0].port: Invalid value: 65536: ${PORT_RANGE}`] },
    { name: "a negative port", port: { port: -80 }, errs: [`spec.ingress[0].ports[0].port: Invalid value: -80: ${PORT_RANGE}`] },
    { name: "a named port", port: { port: "http-alt" }, errs: [] },
    { name: "a name longer than 15", port: { port: "a-very-long-port-name" }, errs: ['spec.ingress[0].ports[0].port: Invalid value: "a-very-long-port-name": must be no more than 15 characters'] },
    { name: "a name of digits only", port: { port: "8080" }, errs: ['spec.ingress[0].ports[0].port: Invalid value: "8080": must contain at least one letter (a-z)'] },
    { name: "a range", port: { port: 32000, endPort: 32768 }, errs: [] },
    { name: "a range of one port", port: { port: 80, endPort: 80 }, errs: [] },
    { name: "a range ending below its start", port: { port: 80, endPort: 79 }, errs: ["spec.ingress[0].ports[0].endPort: Invalid value: 79: must be greater than or equal to `port`"] },
    { name: "a range ending past 65535", port: { port: 80, endPort: 65536 }, errs: [`spec.ingress[0].ports[0].endPort: Invalid value: 65536: ${PORT_RANGE}`] },
    { name: "endPort with a named port", port: { port: "http", endPort: 90 }, errs: ["spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"] },
    { name: "endPort without a port", port: { endPort: 90 }, errs: ["spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified"] },
    { name: "no port at all (every port)", port: { protocol: "UDP" }, errs: [] },
    { name: "SCTP", port: { protocol: "SCTP", port: 9 }, errs: [] },
    { name: "ICMP", port: { protocol: "ICMP" }, errs: ['spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"'] },
    { name: "a lower-case protocol", port: { protocol: "tcp", port: 80 }, errs: ['spec.ingress[0].ports[0].protocol: Unsupported value: "tcp": supported values: "TCP", "UDP", "SCTP"'] },
  ];
  for (const c of cases) {
    it(c.name, () => expect(check(ingressPorts([c.port]))).toEqual(c.errs));
  }

  it("defaults a port's protocol to TCP, so an absent one is never reported", () => {
    expect(defaultObject("NetworkPolicy", ingressPorts([{ port: 80 }])).spec.ingress[0].ports[0].protocol).toBe("TCP");
  });

  it("checks egress ports the same way", () => {
    expect(check(netpol({ egress: [{ ports: [{ port: 70000 }] }] }))).toEqual([`spec.egress[0].ports[0].port: Invalid value: 70000: ${PORT_RANGE}`]);
  });
});

describe("NetworkPolicy peers (ValidateNetworkPolicyPeer, ValidateIPBlock)", () => {
  const cases: Array<{ name: string; peer: Record<string, unknown>; errs: string[] }> = [
    { name: "namespaceSelector and podSelector together", peer: { namespaceSelector: { matchLabels: { team: "a" } }, podSelector: { matchLabels: { app: "web" } } }, errs: [] },
    { name: "an empty namespaceSelector (every namespace)", peer: { namespaceSelector: {} }, errs: [] },
    { name: "an IPv4 block with an exception", peer: { ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16", "10.2.3.4/32"] } }, errs: [] },
    { name: "an IPv6 block with an exception", peer: { ipBlock: { cidr: "2001:db8::/32", except: ["2001:db8:1::/48"] } }, errs: [] },
    { name: "a block with host bits (ParseCIDRSloppy masks them)", peer: { ipBlock: { cidr: "10.1.2.3/8" } }, errs: [] },
    { name: "a block without a prefix", peer: { ipBlock: { cidr: "10.0.0.1" } }, errs: [`spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.1": ${CIDR_MSG}`] },
    { name: "an IPv6 prefix past 128", peer: { ipBlock: { cidr: "2001:db8::/129" } }, errs: [`spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "2001:db8::/129": ${CIDR_MSG}`] },
    { name: "an empty cidr", peer: { ipBlock: { cidr: "" } }, errs: ["spec.ingress[0].from[0].ipBlock.cidr: Required value"] },
    { name: "an exception outside the block", peer: { ipBlock: { cidr: "10.0.0.0/16", except: ["10.1.0.0/24"] } }, errs: ["spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": must be a strict subset of `cidr`"] },
    { name: "an exception as large as the block", peer: { ipBlock: { cidr: "10.0.0.0/16", except: ["10.0.0.0/16"] } }, errs: ["spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"10.0.0.0/16\": must be a strict subset of `cidr`"] },
    { name: "an exception of the other family", peer: { ipBlock: { cidr: "10.0.0.0/8", except: ["fd00::/64"] } }, errs: ["spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"fd00::/64\": must be a strict subset of `cidr`"] },
    { name: "an exception that is no CIDR", peer: { ipBlock: { cidr: "10.0.0.0/8", except: ["10.0.0.0"] } }, errs: [`spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.0.0.0": ${CIDR_MSG}`] },
    { name: "ipBlock with a selector", peer: { ipBlock: { cidr: "10.0.0.0/8" }, namespaceSelector: {} }, errs: ["spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"] },
    { name: "no peer at all", peer: {}, errs: ["spec.ingress[0].from[0]: Required value: must specify a peer"] },
  ];
  for (const c of cases) {
    it(c.name, () => expect(check(fromPeers([c.peer]))).toEqual(c.errs));
  }

  it("checks egress peers under `to`", () => {
    expect(check(netpol({ egress: [{ to: [{}] }] }))).toEqual(["spec.egress[0].to[0]: Required value: must specify a peer"]);
  });
});

describe("NetworkPolicy label selectors (ValidateLabelSelector) and policy types", () => {
  it("checks matchLabels keys and values, and every matchExpressions requirement, wherever a selector is", () => {
    const podSelector = {
      matchLabels: { "app/x/y": "web", env: "not valid" },
      matchExpressions: [
        { key: "tier", operator: "In", values: [] },
        { key: "tier", operator: "Exists", values: ["x"] },
        { key: "tier", operator: "Like", values: ["x"] },
        { key: "-bad", operator: "NotIn", values: ["ok", "no way"] },
      ],
    };
    expect(check(netpol({ podSelector }))).toEqual([
      expect.stringMatching(/^spec\.podSelector\.matchLabels: Invalid value: "app\/x\/y": a qualified name must consist of/),
      `spec.podSelector.matchLabels: Invalid value: "not valid": ${LABEL_VALUE_MSG}`,
      "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
      "spec.podSelector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
      'spec.podSelector.matchExpressions[2].operator: Invalid value: "Like": not a valid selector operator',
      expect.stringMatching(/^spec\.podSelector\.matchExpressions\[3\]\.key: Invalid value: "-bad": name part must consist of/),
      `spec.podSelector.matchExpressions[3].values[1]: Invalid value: "no way": ${LABEL_VALUE_MSG}`,
    ]);
    expect(check(fromPeers([{ namespaceSelector: { matchExpressions: [{ key: "team", operator: "DoesNotExist" }] }, podSelector: { matchLabels: { "": "x" } } }]))).toEqual([
      expect.stringMatching(/^spec\.ingress\[0\]\.from\[0\]\.podSelector\.matchLabels: Invalid value: "": name part must be non-empty/),
      expect.stringMatching(/^spec\.ingress\[0\]\.from\[0\]\.podSelector\.matchLabels: Invalid value: "": name part must consist of/),
    ]);
  });

  it("lets an update keep invalid matchExpressions values when the stored pod selector is already invalid (ValidationOptionsForNetworking)", () => {
    const bad = { podSelector: { matchExpressions: [{ key: "env", operator: "In", values: ["bad value"] }] } };
    expect(check(netpol(bad))).toEqual([`spec.podSelector.matchExpressions[0].values[0]: Invalid value: "bad value": ${LABEL_VALUE_MSG}`]);
    expect(check(netpol({ ...bad, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: "a", operator: "In", values: ["also bad"] }] } }] }] }), netpol(bad))).toEqual([]);
    // A valid stored selector gives no such leave.
    expect(check(netpol(bad), netpol({ podSelector: {} }))).toHaveLength(1);
  });

  it("takes Ingress and Egress, at most two, and defaults them from the rules", () => {
    expect(check(netpol({ podSelector: {}, policyTypes: ["Egress", "Ingress"] }))).toEqual([]);
    expect(check(netpol({ podSelector: {}, policyTypes: ["ingress"] }))).toEqual(['spec.policyTypes[0]: Unsupported value: "ingress": supported values: "Ingress", "Egress"']);
    expect(check(netpol({ podSelector: {}, policyTypes: ["Ingress", "Egress", "Egress"] }))).toEqual([
      'spec.policyTypes: Invalid value: []networking.PolicyType{"Ingress", "Egress", "Egress"}: may not specify more than two policyTypes',
    ]);
    expect(defaultObject("NetworkPolicy", netpol({ podSelector: {}, egress: [{}] })).spec.policyTypes).toEqual(["Ingress", "Egress"]);
  });

  it("accepts the Kubernetes documentation's policies (default deny, allow from a namespace's pods)", () => {
    expect(check(netpol({ podSelector: {}, policyTypes: ["Ingress"] }, "default-deny-ingress"))).toEqual([]);
    const allow = {
      podSelector: { matchLabels: { role: "db" } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        {
          from: [{ ipBlock: { cidr: "172.17.0.0/16", except: ["172.17.1.0/24"] } }, { namespaceSelector: { matchLabels: { project: "myproject" } }, podSelector: { matchLabels: { role: "frontend" } } }],
          ports: [{ protocol: "TCP", port: 6379 }],
        },
      ],
      egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/24" } }], ports: [{ protocol: "TCP", port: 32000, endPort: 32768 }] }],
    };
    expect(check(netpol(allow, "test-network-policy"))).toEqual([]);
  });
});

describe("a NetworkPolicy with its spec fields at the top level", () => {
  const flat = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "flat" },
    podSelector: {},
    ingress: [{ from: [{ podSelector: {} }] }],
  };

  it("has each misplaced field as an unknown field", () => {
    expect(checkSchema("NetworkPolicy", "networking.k8s.io/v1", structuredClone(flat)).unknown).toEqual(["podSelector", "ingress"]);
  });

  describe("through the registry", () => {
    let registry: Registry;
    const objects = new Map<string, KubeObject>();
    beforeEach(() => {
      objects.clear();
      const store = {
        get: async (r: ResourceInfo, ns: string | undefined, name: string) => objects.get(objectKey(r, ns, name)),
        create: async (r: ResourceInfo, obj: KubeObject) => {
          const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: "1" } };
          objects.set(objectKey(r, obj.metadata.namespace, obj.metadata.name!), stored);
          return stored;
        },
      };
      registry = new Registry(store as unknown as ObjectStore, async (_r, obj) => obj, async () => false);
      objects.set(objectKey(resourceByKind("Namespace"), undefined, "default"), { apiVersion: "v1", kind: "Namespace", metadata: { name: "default" } });
    });

    async function rejected(p: Promise<unknown>): Promise<ApiError> {
      const err = await p.then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      return err as ApiError;
    }

    it("is a 400 naming the fields with Strict (kubectl's default --validate=strict), as kube-apiserver words a body it cannot decode", async () => {
      const err = await rejected(registry.create(resourceByKind("NetworkPolicy"), "default", structuredClone(flat) as KubeObject, { fieldValidation: "Strict" }));
      expect(err.status).toMatchObject({
        code: 400,
        reason: "BadRequest",
        message: 'NetworkPolicy in version "v1" cannot be handled as a NetworkPolicy: strict decoding error: unknown field "podSelector", unknown field "ingress"',
      });
      expect([...objects.keys()].filter((k) => k.startsWith("networkpolicies"))).toEqual([]);
    });

    it("is the bare strict decoding error for a patch (PATCH has no body to decode)", async () => {
      const r = resourceByKind("NetworkPolicy");
      await registry.create(r, "default", netpol({ podSelector: {} }) as KubeObject);
      const err = await rejected(registry.patch(r, "default", "np", PatchType.merge, { podSelector: { matchLabels: { a: "b" } } }, { fieldValidation: "Strict" }));
      expect(err.status.message).toBe('strict decoding error: unknown field "podSelector"');
    });

    it("with Warn, drops them with a warning each: what is left is a policy that selects every pod and allows no ingress", async () => {
      const warnings: string[] = [];
      const created = await registry.create(resourceByKind("NetworkPolicy"), "default", structuredClone(flat) as KubeObject, { fieldValidation: "Warn", onWarning: (w) => warnings.push(w) });
      expect(warnings).toEqual(['unknown field "podSelector"', 'unknown field "ingress"']);
      expect(created.spec).toEqual({ podSelector: {}, policyTypes: ["Ingress"] });
    });
  });
});

describe("Namespace admission", () => {
  const admit = createAdmission("10.96.0.0/12");
  const r = resourceByKind("Namespace");
  const ns = (labels?: Record<string, string>): KubeObject => ({ apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a", ...(labels ? { labels } : {}) } });

  it("labels every namespace kubernetes.io/metadata.name=<name> on create, over whatever the request set", async () => {
    expect((await admit(r, ns(), undefined, {} as Registry)).metadata.labels).toEqual({ "kubernetes.io/metadata.name": "team-a" });
    expect((await admit(r, ns({ "kubernetes.io/metadata.name": "other", env: "dev" }), undefined, {} as Registry)).metadata.labels).toEqual({ "kubernetes.io/metadata.name": "team-a", env: "dev" });
  });

  it("puts the label back on update when a write removes or changes it", async () => {
    const old = await admit(r, ns(), undefined, {} as Registry);
    expect((await admit(r, ns({ x: "y" }), old, {} as Registry)).metadata.labels).toEqual({ x: "y", "kubernetes.io/metadata.name": "team-a" });
    expect((await admit(r, ns({ "kubernetes.io/metadata.name": "b" }), old, {} as Registry)).metadata.labels).toEqual({ "kubernetes.io/metadata.name": "team-a" });
  });
});
