/**
 * Structural validation against the official schemas (kubernetes-models): wrong JSON types are a
 * 422 naming the field before any semantic check, and nothing is stored; unknown fields follow
 * fieldValidation (Strict 400, Warn warnings, Ignore silent) and are never stored.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { checkSchema, structuralErrors, unknownFields } from "../../../control-plane/api/schema.ts";
import { PatchType, Registry } from "../../../control-plane/api/registry.ts";
import { ApiError } from "../../../control-plane/api/status.ts";
import { RESOURCES, groupVersion, objectKey, resourceByKind, type ResourceInfo } from "../../../cluster/resources.ts";
import type { KubeObject, ObjectStore } from "../../../cluster/store.ts";

/** The part of ObjectStore the registry's writes use, over a Map. */
class FakeStore {
  readonly objects = new Map<string, KubeObject>();
  private rev = 1;
  async get(r: ResourceInfo, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    const o = this.objects.get(objectKey(r, namespace, name));
    return o && structuredClone(o);
  }
  async list(r: ResourceInfo, namespace: string | undefined): Promise<{ items: KubeObject[]; resourceVersion: number }> {
    const prefix = objectKey(r, namespace ?? "", "").split(".")[0]!;
    const items = [...this.objects.entries()].filter(([k, o]) => k.startsWith(`${prefix}.`) && (!namespace || o.metadata.namespace === namespace)).map(([, o]) => structuredClone(o));
    return { items, resourceVersion: this.rev };
  }
  async create(r: ResourceInfo, obj: KubeObject): Promise<KubeObject> {
    const key = objectKey(r, obj.metadata.namespace, obj.metadata.name!);
    if (this.objects.has(key)) throw new Error("exists");
    const stored = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.rev) } };
    this.objects.set(key, stored);
    return structuredClone(stored);
  }
  async update(r: ResourceInfo, obj: KubeObject): Promise<KubeObject> {
    const stored = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.rev) } };
    this.objects.set(objectKey(r, obj.metadata.namespace, obj.metadata.name!), stored);
    return structuredClone(stored);
  }
}

let store: FakeStore;
let registry: Registry;

beforeEach(async () => {
  store = new FakeStore();
  registry = new Registry(store as unknown as ObjectStore, async (_r, obj) => obj, async () => false);
  await store.create(resourceByKind("Namespace"), { apiVersion: "v1", kind: "Namespace", metadata: { name: "default" } });
});

const pod = (over: Record<string, unknown> = {}, container: Record<string, unknown> = {}): KubeObject =>
  ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "x", labels: { app: "web" } },
    spec: { containers: [{ name: "c", image: "nginx", ports: [{ containerPort: 80 }], ...container }] },
    ...over,
  }) as KubeObject;

const deployment = (spec: Record<string, unknown> = {}): KubeObject =>
  ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web" },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: "web" } },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 1 } },
      template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "c", image: "nginx", resources: { limits: { cpu: "500m", memory: 128 } } }] } },
      ...spec,
    },
  }) as KubeObject;

const service = (spec: Record<string, unknown> = {}): KubeObject =>
  ({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web" },
    spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: "http" }, { name: "b", port: 81, targetPort: 8080 }], ...spec },
  }) as KubeObject;

async function rejected(p: Promise<unknown>): Promise<ApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

function expectTypeInvalid(err: ApiError, kindName: string, field: string, expected: string, actual: string): void {
  expect(err.status.code).toBe(422);
  expect(err.status.reason).toBe("Invalid");
  const body = `Invalid value: "${actual}": ${field} in body must be of type ${expected}: "${actual}"`;
  expect(err.status.message).toBe(`${kindName} is invalid: ${field}: ${body}`);
  expect(err.status.details?.causes).toEqual([{ reason: "FieldValueTypeInvalid", field, message: body }]);
}

function stored(kind: string): KubeObject[] {
  const r = resourceByKind(kind);
  return [...store.objects.values()].filter((o) => o.kind === r.kind);
}

describe("structuralErrors", () => {
  it("accepts well-typed objects of every kind the registry serves", () => {
    expect(structuralErrors("Pod", "v1", pod())).toEqual([]);
    expect(structuralErrors("Deployment", "apps/v1", deployment())).toEqual([]);
    expect(structuralErrors("Service", "v1", service())).toEqual([]);
    for (const r of RESOURCES) {
      expect(structuralErrors(r.kind, groupVersion(r), { apiVersion: groupVersion(r), kind: r.kind, metadata: { name: "n", labels: { a: "b" } } })).toEqual([]);
    }
  });

  it("names nested fields with Kubernetes paths and JSON types", () => {
    const errs = structuralErrors("Pod", "v1", pod({ metadata: { name: 12, labels: ["a"] } }, { ports: { containerPort: 80 } }));
    expect(errs.map((e) => [e.field, e.expected, e.actual])).toEqual([
      ["metadata.labels", "object", "array"],
      ["metadata.name", "string", "integer"],
      ["spec.containers[0].ports", "array", "object"],
    ]);
  });

  it("takes int-or-string fields and quantities either way, and nothing else", () => {
    expect(structuralErrors("Service", "v1", service({ ports: [{ port: 80, targetPort: 8080 }, { port: 81, targetPort: "http" }] }))).toEqual([]);
    const errs = structuralErrors("Service", "v1", service({ ports: [{ port: 80, targetPort: true }] }));
    expect(errs.map((e) => [e.field, e.expected, e.actual])).toEqual([["spec.ports[0].targetPort", "integer-or-string", "boolean"]]);
    const dep = structuralErrors("Deployment", "apps/v1", deployment({ strategy: { rollingUpdate: { maxSurge: [1] } } }));
    expect(dep.map((e) => [e.field, e.expected])).toEqual([["spec.strategy.rollingUpdate.maxSurge", "integer-or-string"]]);
    // A malformed quantity string is a semantic error, not a structural one.
    expect(structuralErrors("Pod", "v1", pod({}, { resources: { limits: { cpu: "lots" } } }))).toEqual([]);
  });

  it("leaves enums, required fields and formats to the semantic checks", () => {
    expect(structuralErrors("Service", "v1", service({ type: "Bogus", ports: [{ port: 99999, protocol: "XTP" }] }))).toEqual([]);
    expect(structuralErrors("Pod", "v1", { metadata: { name: "x" }, spec: {} })).toEqual([]);
  });
});

describe("unknownFields", () => {
  it("lists fields the schema lacks, at any depth, but not keys of maps", () => {
    const body = pod({ metadata: { name: "x", labels: { "app.kubernetes.io/name": "web" }, annotations: { anything: "goes" } }, spec: { foo: 1, containers: [{ name: "c", image: "i", bogus: true }] } });
    expect(unknownFields("Pod", "v1", body)).toEqual(["spec.foo", "spec.containers[0].bogus"]);
    expect(unknownFields("Service", "v1", service())).toEqual([]);
    expect(unknownFields("Deployment", "apps/v1", deployment())).toEqual([]);
  });

  it("prunes them in place when asked", () => {
    const body = pod({ extra: 1 }, { bogus: true });
    expect(checkSchema("Pod", "v1", body, { prune: true }).unknown).toEqual(["spec.containers[0].bogus", "extra"]);
    expect(body).toEqual(pod());
  });
});

describe("the registry rejects wrong JSON types with 422 and stores nothing", () => {
  it("a pod named by a number", async () => {
    const err = await rejected(registry.create(resourceByKind("Pod"), "default", pod({ metadata: { name: 12 } })));
    expectTypeInvalid(err, 'Pod ""', "metadata.name", "string", "integer");
    expect(stored("Pod")).toEqual([]);
  });

  it("labels as an array", async () => {
    const err = await rejected(registry.create(resourceByKind("Pod"), "default", pod({ metadata: { name: "x", labels: ["app=web"] } })));
    expectTypeInvalid(err, 'Pod "x"', "metadata.labels", "object", "array");
    expect(stored("Pod")).toEqual([]);
  });

  it("ports as an object", async () => {
    const err = await rejected(registry.create(resourceByKind("Pod"), "default", pod({}, { ports: { containerPort: 80 } })));
    expectTypeInvalid(err, 'Pod "x"', "spec.containers[0].ports", "array", "object");
    expect(stored("Pod")).toEqual([]);
  });

  it("tolerations as a string", async () => {
    const body = pod();
    (body.spec as Record<string, unknown>).tolerations = "node.kubernetes.io/not-ready";
    const err = await rejected(registry.create(resourceByKind("Pod"), "default", body));
    expectTypeInvalid(err, 'Pod "x"', "spec.tolerations", "array", "string");
    expect(stored("Pod")).toEqual([]);
  });

  it("replicas as a string", async () => {
    const err = await rejected(registry.create(resourceByKind("Deployment"), "default", deployment({ replicas: "3" })));
    expectTypeInvalid(err, 'Deployment.apps "web"', "spec.replicas", "integer", "string");
    expect(stored("Deployment")).toEqual([]);
  });

  it("a Service selector as an array", async () => {
    const err = await rejected(registry.create(resourceByKind("Service"), "default", service({ selector: ["app=web"] })));
    expectTypeInvalid(err, 'Service "web"', "spec.selector", "object", "array");
    expect(stored("Service")).toEqual([]);
  });

  it("before the semantic checks", async () => {
    // Both a bad type and a bad port number: only the type is reported.
    const err = await rejected(registry.create(resourceByKind("Service"), "default", service({ selector: ["x"], ports: [{ port: 70000 }] })));
    expect(err.status.details?.causes?.map((c) => c.reason)).toEqual(["FieldValueTypeInvalid"]);
  });

  it("on update and on every patch type, judging the patched result", async () => {
    const r = resourceByKind("Deployment");
    await registry.create(r, "default", deployment());
    const before = structuredClone(stored("Deployment"));
    const current = await registry.get(r, "default", "web");
    const put = await rejected(registry.update(r, "default", "web", { ...current, spec: { ...(current.spec as object), replicas: "3" } }));
    expect(put.status.details?.causes?.[0]?.field).toBe("spec.replicas");
    const merge = await rejected(registry.patch(r, "default", "web", PatchType.merge, { spec: { replicas: "3" } }));
    expect(merge.status.details?.causes?.[0]?.field).toBe("spec.replicas");
    const strategic = await rejected(registry.patch(r, "default", "web", PatchType.strategic, { spec: { template: { spec: { tolerations: "x" } } } }));
    expect(strategic.status.details?.causes?.[0]?.field).toBe("spec.template.spec.tolerations");
    const json = await rejected(registry.patch(r, "default", "web", PatchType.json, [{ op: "add", path: "/metadata/labels", value: ["a"] }]));
    expect(json.status, JSON.stringify(json.status)).toMatchObject({ code: 422 });
    expect(json.status.details?.causes?.[0]?.field).toBe("metadata.labels");
    expect(stored("Deployment")).toEqual(before);
  });
});

describe("fieldValidation", () => {
  const withUnknown = () => pod({ spec: { foo: 1, containers: [{ name: "c", image: "nginx", bogus: true }] } });

  it("Strict rejects unknown fields with 400 and stores nothing", async () => {
    const err = await rejected(registry.create(resourceByKind("Pod"), "default", withUnknown(), { fieldValidation: "Strict" }));
    expect(err.status.code).toBe(400);
    expect(err.status.reason).toBe("BadRequest");
    expect(err.status.message).toBe('Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.foo", unknown field "spec.containers[0].bogus"');
    expect(stored("Pod")).toEqual([]);
  });

  it("Warn (the default) drops them and reports each", async () => {
    const warnings: string[] = [];
    const created = await registry.create(resourceByKind("Pod"), "default", withUnknown(), { fieldValidation: "Warn", onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual(['unknown field "spec.foo"', 'unknown field "spec.containers[0].bogus"']);
    expect((created.spec as Record<string, unknown>).foo).toBeUndefined();
    expect(stored("Pod")[0]!.spec).not.toHaveProperty("foo");
    const warnings2: string[] = [];
    await registry.patch(resourceByKind("Pod"), "default", "x", PatchType.merge, { metadata: { labels: { a: "b" } }, spec: { bar: 1 } }, { onWarning: (w) => warnings2.push(w) });
    expect(warnings2).toEqual(['unknown field "spec.bar"']);
    expect(stored("Pod")[0]!.spec).not.toHaveProperty("bar");
  });

  it("Ignore drops them silently", async () => {
    const warnings: string[] = [];
    await registry.create(resourceByKind("Pod"), "default", withUnknown(), { fieldValidation: "Ignore", onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([]);
    expect(stored("Pod")[0]!.spec).not.toHaveProperty("foo");
  });

  it("rejects an unsupported directive", async () => {
    const err = await rejected(registry.create(resourceByKind("Pod"), "default", pod(), { fieldValidation: "Loose" }));
    expect(err.status.code).toBe(400);
  });
});

describe("objects already malformed in the store", () => {
  it("a wrong type the stored object already has does not block an update of something else; a new one does", async () => {
    const r = resourceByKind("Node");
    await store.create(r, { apiVersion: "v1", kind: "Node", metadata: { name: "odd", uid: "u" }, spec: {}, status: { addresses: { type: "InternalIP" } } } as KubeObject);
    const patched = await registry.patch(r, undefined, "odd", PatchType.merge, { metadata: { labels: { a: "b" } } });
    expect(patched.metadata.labels).toEqual({ a: "b" });
    const err = await rejected(registry.patch(r, undefined, "odd", PatchType.merge, { spec: { unschedulable: "yes" } }));
    expect(err.status.details?.causes?.map((c) => c.field)).toEqual(["spec.unschedulable"]);
  });
});
