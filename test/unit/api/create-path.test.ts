/**
 * What the create path keeps between requests, and must not let change an answer: the unknown
 * fields found for a body shape (schema.ts) and the namespace a create was checked against
 * (registry.ts).
 */
import { describe, expect, it } from "vitest";
import { checkSchema } from "../../../control-plane/api/schema.ts";
import { Registry } from "../../../control-plane/api/registry.ts";
import { createAdmission } from "../../../control-plane/api/admission.ts";
import { ApiError } from "../../../control-plane/api/status.ts";
import { objectKey, resourceByKind, type ResourceInfo } from "../../../cluster/resources.ts";
import type { KubeObject, ObjectStore } from "../../../cluster/store.ts";

function pod(name: string, extra: (p: any) => void = () => {}): any {
  const p = { apiVersion: "v1", kind: "Pod", metadata: { name, labels: { app: name } }, spec: { containers: [{ name: "c", image: "i", ports: [{ containerPort: 80 }] }] } };
  extra(p);
  return p;
}

describe("schema check of a body shape seen before", () => {
  it("answers a second body of the same shape, other values, as the first", () => {
    const odd = (name: string, port: number | string) =>
      pod(name, (p) => {
        p.spec.bogus = { deep: 1 };
        p.spec.containers[0].extra = "x";
        p.spec.containers[0].livenessProbe = { httpGet: { port, path: "/", zz: true } };
      });
    const first = odd("shape-a", 8080);
    const a = checkSchema("Pod", "v1", first, { prune: true });
    expect(a).toEqual({ structural: [], unknown: ["spec.containers[0].extra", "spec.containers[0].livenessProbe.httpGet.zz", "spec.bogus"] });
    expect(first.spec.bogus).toBeUndefined();
    expect(first.spec.containers[0].livenessProbe.httpGet).toEqual({ port: 8080, path: "/" });
    // Same keys and types, other values: the same unknown fields, pruned from this body.
    const second = odd("shape-b", 9090);
    expect(checkSchema("Pod", "v1", second, { prune: true })).toEqual(a);
    expect(second.spec.containers[0]).toEqual({ name: "c", image: "i", ports: [{ containerPort: 80 }], livenessProbe: { httpGet: { port: 9090, path: "/" } } });
    // A wrong type is judged on each body's own values (80.5 is a number where an integer
    // belongs: the same shape), and nothing is pruned then.
    const wrong = odd("shape-c", 9090);
    wrong.spec.containers[0].ports[0].containerPort = 80.5;
    const w = checkSchema("Pod", "v1", wrong, { prune: true });
    expect(w.structural.map((e) => `${e.field} ${e.expected} ${e.actual}`)).toEqual(["spec.containers[0].ports[0].containerPort integer number"]);
    expect(w.unknown).toEqual(a.unknown);
    expect(wrong.spec.bogus).toEqual({ deep: 1 });
  });

  it("does not take an object that appears twice in a body for two equal ones", () => {
    const shared = { app: "x", extra: 1 };
    const body = pod("shared", (p) => {
      p.metadata.labels = shared;
      p.spec.nodeSelector = shared;
    });
    expect(checkSchema("Pod", "v1", body, { prune: false }).unknown).toEqual([]);
  });
});

/** Namespaces and pods over a Map, counting namespace reads. */
class CountingStore {
  readonly objects = new Map<string, KubeObject>();
  namespaceReads = 0;
  private rev = 1;
  async get(r: ResourceInfo, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    if (r.kind === "Namespace") this.namespaceReads++;
    const o = this.objects.get(objectKey(r, namespace, name));
    return o && structuredClone(o);
  }
  async create(r: ResourceInfo, obj: KubeObject): Promise<KubeObject> {
    const stored = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.rev) } };
    this.objects.set(objectKey(r, obj.metadata.namespace, obj.metadata.name!), stored);
    return structuredClone(stored);
  }
  async update(r: ResourceInfo, obj: KubeObject): Promise<KubeObject> {
    return this.create(r, obj);
  }
  async delete(r: ResourceInfo, obj: KubeObject): Promise<KubeObject> {
    this.objects.delete(objectKey(r, obj.metadata.namespace, obj.metadata.name!));
    return obj;
  }
}

describe("the namespace check of creates", () => {
  const NS = resourceByKind("Namespace");
  const POD = resourceByKind("Pod");
  const setup = () => {
    const store = new CountingStore();
    let nowMs = Date.parse("2026-01-01T00:00:00Z");
    const registry = new Registry(store as unknown as ObjectStore, async (_r, o) => o, async () => false, () => new Date(nowMs));
    return { store, registry, advance: (ms: number) => (nowMs += ms) };
  };
  const status = (p: Promise<unknown>) => p.then(() => 201, (err: unknown) => (err instanceof ApiError ? err.status.code : -1));

  it("reads a namespace once for a burst of creates, and again after a second", async () => {
    const { store, registry, advance } = setup();
    await registry.create(NS, undefined, { apiVersion: "v1", kind: "Namespace", metadata: { name: "load" } });
    for (let i = 0; i < 5; i++) await registry.create(POD, "load", pod(`p-${i}`));
    expect(store.namespaceReads).toBe(1);
    advance(1000);
    await registry.create(POD, "load", pod("p-later"));
    expect(store.namespaceReads).toBe(2);
  });

  it("sees the registry's own namespace writes on the very next create", async () => {
    const { registry } = setup();
    await registry.create(NS, undefined, { apiVersion: "v1", kind: "Namespace", metadata: { name: "gone" } });
    expect(await status(registry.create(POD, "gone", pod("before")))).toBe(201);
    await registry.delete(NS, undefined, "gone");
    expect(await status(registry.create(POD, "gone", pod("terminating")))).toBe(403);
    await registry.finalizeNamespace("gone");
    expect(await status(registry.create(POD, "gone", pod("after")))).toBe(404);
    await registry.create(NS, undefined, { apiVersion: "v1", kind: "Namespace", metadata: { name: "gone" } });
    expect(await status(registry.create(POD, "gone", pod("again")))).toBe(201);
  });

  it("keeps no absence: a namespace created behind the registry's back is seen at once", async () => {
    const { store, registry } = setup();
    expect(await status(registry.create(POD, "late", pod("early")))).toBe(404);
    store.objects.set(objectKey(NS, undefined, "late"), { apiVersion: "v1", kind: "Namespace", metadata: { name: "late", uid: "u" } });
    expect(await status(registry.create(POD, "late", pod("now")))).toBe(201);
  });
});

describe("the validation of a create", () => {
  const NS = resourceByKind("Namespace");
  const POD = resourceByKind("Pod");
  const CONFIGMAP = resourceByKind("ConfigMap");
  const setup = async (admission: ConstructorParameters<typeof Registry>[1]) => {
    const store = new CountingStore();
    const registry = new Registry(store as unknown as ObjectStore, admission, async () => false);
    await registry.create(NS, undefined, { apiVersion: "v1", kind: "Namespace", metadata: { name: "load" } });
    return { store, registry };
  };
  const causes = (p: Promise<unknown>) =>
    p.then(
      () => [],
      (err: unknown) => {
        const st = (err as ApiError).status as { code: number; details?: { causes?: Array<{ field: string }> } };
        return [st.code, ...(st.details?.causes ?? []).map((c) => c.field)];
      },
    );

  it("judges a Pod once, after admission, on the request's own fields only", async () => {
    const { store, registry } = await setup(createAdmission("10.96.0.0/12"));
    // Admission appends the not-ready/unreachable tolerations after the request's invalid one.
    const bad = pod("Bad_Name", (p) => (p.spec.tolerations = [{ key: "k", operator: "Bogus" }]));
    expect(await causes(registry.create(POD, "load", bad))).toEqual([422, "metadata.name", "spec.tolerations[0].operator"]);
    expect(store.objects.size).toBe(1);
    const created = await registry.create(POD, "load", pod("good"));
    expect((created.spec as { tolerations: Array<{ key: string }> }).tolerations.map((t) => t.key)).toEqual(["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]);
  });

  it("validates what an admission changed, of a Pod and of any other kind", async () => {
    const { registry } = await setup(async (r, o) => (r.kind === "Namespace" ? o : { ...o, metadata: { ...o.metadata, labels: { "bad key!": "x" } } }));
    expect(await causes(registry.create(POD, "load", pod("p")))).toEqual([422, "metadata.labels"]);
    expect(await causes(registry.create(CONFIGMAP, "load", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" } }))).toEqual([422, "metadata.labels"]);
  });
});
