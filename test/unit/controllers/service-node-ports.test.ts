/**
 * healthCheckNodePort through the real Registry (defaulting, validation, admission) over an
 * in-memory store: allocation on create, the 422 a taken port gets, kept on update, released on
 * a change of policy or type, and the NodePort allocator stepping around health check ports.
 */
import { describe, expect, it } from "vitest";
import { createAdmission } from "../../../control-plane/api/admission.ts";
import { Registry } from "../../../control-plane/api/registry.ts";
import { ApiError } from "../../../control-plane/api/status.ts";
import { resourceByKind, type ResourceInfo } from "../../../cluster/resources.ts";
import { StoreError, StoreErrorCode, type KubeObject, type ObjectStore } from "../../../cluster/store.ts";

/** The part of ObjectStore the Registry's create/update/list use, in memory. */
function memoryStore(): ObjectStore {
  const objects = new Map<string, KubeObject>();
  let rev = 1;
  const key = (r: ResourceInfo, ns: string | undefined, name: string) => `${r.kind}/${ns ?? ""}/${name}`;
  objects.set(key(resourceByKind("Namespace"), undefined, "default"), { apiVersion: "v1", kind: "Namespace", metadata: { name: "default", uid: "ns", resourceVersion: "1" } });
  const store = {
    get: async (r: ResourceInfo, ns: string | undefined, name: string) => structuredClone(objects.get(key(r, ns, name))),
    list: async (r: ResourceInfo, ns: string | undefined) => ({
      items: [...objects.entries()].filter(([k]) => k.startsWith(`${r.kind}/${ns ?? ""}`)).map(([, o]) => structuredClone(o)),
      resourceVersion: rev,
    }),
    create: async (r: ResourceInfo, o: KubeObject) => {
      const k = key(r, o.metadata.namespace, o.metadata.name!);
      if (objects.has(k)) throw new StoreError(StoreErrorCode.AlreadyExists, "exists");
      const stored = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++rev) } };
      objects.set(k, stored);
      return structuredClone(stored);
    },
    update: async (r: ResourceInfo, o: KubeObject, expected: number) => {
      const k = key(r, o.metadata.namespace, o.metadata.name!);
      if (Number(objects.get(k)?.metadata.resourceVersion) !== expected) throw new StoreError(StoreErrorCode.Conflict, "modified");
      const stored = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++rev) } };
      objects.set(k, stored);
      return structuredClone(stored);
    },
  };
  return store as unknown as ObjectStore;
}

const SVC = resourceByKind("Service");

function registry(): Registry {
  return new Registry(memoryStore(), createAdmission("10.96.0.0/12"), async () => false);
}

function service(name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace: "default" }, spec: { selector: { app: name }, ports: [{ port: 80 }], ...spec } };
}

const specOf = (o: KubeObject) => o.spec as { healthCheckNodePort?: number; ports: Array<{ nodePort?: number }>; externalTrafficPolicy?: string; type?: string };

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

describe("Service healthCheckNodePort (admission)", () => {
  it("allocates one for a LoadBalancer with externalTrafficPolicy Local, apart from every nodePort", async () => {
    const reg = registry();
    const a = await reg.create(SVC, "default", service("a", { type: "NodePort" }));
    const b = await reg.create(SVC, "default", service("b", { type: "LoadBalancer", externalTrafficPolicy: "Local" }));
    expect(specOf(a).ports[0]!.nodePort).toBe(30000);
    expect(specOf(b).ports[0]!.nodePort).toBe(30001);
    expect(specOf(b).healthCheckNodePort).toBe(30002);
    // The next nodePort steps around the health check port.
    const c = await reg.create(SVC, "default", service("c", { type: "NodePort" }));
    expect(specOf(c).ports[0]!.nodePort).toBe(30003);
    const d = await reg.create(SVC, "default", service("d", { type: "LoadBalancer" }));
    expect(specOf(d).healthCheckNodePort).toBeUndefined();
  });

  it("answers a requested port that is taken with a 422 Invalid naming spec.healthCheckNodePort", async () => {
    const reg = registry();
    await reg.create(SVC, "default", service("a", { type: "NodePort", ports: [{ port: 80, nodePort: 31000 }] }));
    const err = await apiError(reg.create(SVC, "default", service("b", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 31000 })));
    expect(err.status).toMatchObject({
      code: 422,
      reason: "Invalid",
      message: 'Service "b" is invalid: spec.healthCheckNodePort: Invalid value: 31000: failed to allocate requested HealthCheck NodePort 31000: provided port is already allocated',
      details: { name: "b", kind: "Service", causes: [{ reason: "FieldValueInvalid", field: "spec.healthCheckNodePort" }] },
    });
    // A nodePort asked for where another Service has its health check port: the nodePort's 422.
    await reg.create(SVC, "default", service("c", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 31500 }));
    const np = await apiError(reg.create(SVC, "default", service("d", { type: "NodePort", ports: [{ port: 80, nodePort: 31500 }] })));
    expect(np.status.message).toBe('Service "d" is invalid: spec.ports[0].nodePort: Invalid value: 31500: provided port is already allocated');
  });

  it("honours a free requested port", async () => {
    const reg = registry();
    const s = await reg.create(SVC, "default", service("a", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 32100 }));
    expect(specOf(s).healthCheckNodePort).toBe(32100);
  });

  it("keeps it across updates, and releases it when the policy goes to Cluster or the type to NodePort", async () => {
    const reg = registry();
    const created = await reg.create(SVC, "default", service("a", { type: "LoadBalancer", externalTrafficPolicy: "Local" }));
    const hc = specOf(created).healthCheckNodePort!;
    // An update of something else (a merge patch keeps the stored fields).
    const relabelled = await reg.patch(SVC, "default", "a", "application/merge-patch+json", { metadata: { labels: { x: "y" } } });
    expect(specOf(relabelled).healthCheckNodePort).toBe(hc);
    // Local -> Cluster: the client clears the port with the policy, as kubectl edit would show it.
    const cluster = await reg.patch(SVC, "default", "a", "application/merge-patch+json", { spec: { externalTrafficPolicy: "Cluster", healthCheckNodePort: null } });
    expect(specOf(cluster).healthCheckNodePort).toBeUndefined();
    // Released: another Service can have it now.
    const other = await reg.create(SVC, "default", service("b", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: hc }));
    expect(specOf(other).healthCheckNodePort).toBe(hc);
    // Cluster -> Local again: a fresh one.
    const local = await reg.patch(SVC, "default", "a", "application/merge-patch+json", { spec: { externalTrafficPolicy: "Local" } });
    expect(specOf(local).healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    expect(specOf(local).healthCheckNodePort).not.toBe(hc);
    // The registry validates an update before admission and has no dropTypeDependentFields
    // (strategy.go), so fields only a LoadBalancer may have are cleared by the client here.
    const nodePort = await reg.patch(SVC, "default", "a", "application/merge-patch+json", { spec: { type: "NodePort", healthCheckNodePort: null, allocateLoadBalancerNodePorts: null } });
    expect(specOf(nodePort)).toMatchObject({ type: "NodePort", externalTrafficPolicy: "Local" });
    expect(specOf(nodePort).healthCheckNodePort).toBeUndefined();
  });
});
