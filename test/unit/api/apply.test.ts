import { describe, expect, it } from "vitest";
import {
  applyConfiguration,
  applySchemaFor,
  fieldSetOf,
  formatPath,
  fromFieldsV1,
  toFieldsV1,
  updateManagedFields,
  type ApplyInput,
  type ManagedFieldsEntry,
} from "../../../control-plane/api/apply.ts";
import { Registry } from "../../../control-plane/api/registry.ts";
import { ApiError } from "../../../control-plane/api/status.ts";
import { resourceByKind } from "../../../cluster/resources.ts";
import { StoreError, StoreErrorCode, type KubeObject, type ObjectStore } from "../../../cluster/store.ts";

const schema = applySchemaFor("apps", "Deployment");

function deployment(replicas: number, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "default", labels: { app: "web" } },
    spec: {
      replicas,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: { containers: [{ name: "web", image: "nginx:1", ports: [{ containerPort: 80 }], env: [{ name: "A", value: "1" }] }] },
      },
      ...extra,
    },
  };
}

describe("field sets", () => {
  it("encodes an object as FieldsV1 with keyed list items", () => {
    const f = toFieldsV1(fieldSetOf({ metadata: { labels: { app: "web" } }, spec: (deployment(3).spec as object) }, schema));
    expect(f).toEqual({
      "f:metadata": { "f:labels": { "f:app": {} } },
      "f:spec": {
        "f:replicas": {},
        "f:selector": { "f:matchLabels": { "f:app": {} } },
        "f:template": {
          "f:metadata": { "f:labels": { "f:app": {} } },
          "f:spec": {
            "f:containers": {
              'k:{"name":"web"}': {
                ".": {},
                "f:env": { 'k:{"name":"A"}': { ".": {}, "f:name": {}, "f:value": {} } },
                "f:image": {},
                "f:name": {},
                "f:ports": { 'k:{"containerPort":80,"protocol":"TCP"}': { ".": {}, "f:containerPort": {} } },
              },
            },
          },
        },
      },
    });
  });

  it("round-trips FieldsV1 and prints paths as Kubernetes does", () => {
    const set = fieldSetOf({ spec: (deployment(3).spec as object) }, schema);
    expect(fromFieldsV1(toFieldsV1(set))).toEqual(set);
    expect(formatPath(["f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image"])).toBe('.spec.template.spec.containers[name="web"].image');
    expect(formatPath(["f:spec", "f:replicas"])).toBe(".spec.replicas");
  });

  it("treats lists without map keys as atomic", () => {
    const set = fieldSetOf({ spec: { template: { spec: { containers: [{ name: "c", args: ["a", "b"] }] } } } }, schema);
    expect([...set]).toContain(JSON.stringify(["f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"c"}', "f:args"]));
  });
});

const base = (over: Partial<ApplyInput>): ApplyInput => ({
  live: undefined,
  applied: deployment(3),
  manager: "alice",
  force: false,
  apiVersion: "apps/v1",
  time: "2026-01-01T00:00:00Z",
  schema,
  ignoreStatus: true,
  ...over,
});

function ok(input: ApplyInput): KubeObject {
  const r = applyConfiguration(input);
  if (r.kind !== "ok") throw new Error(`conflicts: ${JSON.stringify(r.conflicts)}`);
  return r.object;
}

const entries = (o: KubeObject) => o.metadata.managedFields as ManagedFieldsEntry[];
const spec = (o: KubeObject) => o.spec as { replicas?: number; paused?: boolean; template: { spec: { containers: Array<{ name: string; image: string; env?: unknown[] }> } } };

describe("applyConfiguration", () => {
  it("creates from the applied configuration, owned by the manager", () => {
    const o = ok(base({}));
    expect(spec(o).replicas).toBe(3);
    expect(entries(o)).toEqual([expect.objectContaining({ manager: "alice", operation: "Apply", apiVersion: "apps/v1", fieldsType: "FieldsV1" })]);
    expect(entries(o)[0]!.fieldsV1["f:spec"]!["f:replicas"]).toEqual({});
  });

  it("sets fields and removes the ones this manager applied before and omits now", () => {
    const live = ok(base({ applied: deployment(3, { paused: true }) }));
    const next = ok(base({ live, applied: deployment(4) }));
    expect(spec(next).replicas).toBe(4);
    expect(spec(next).paused).toBeUndefined();
    expect(entries(next)[0]!.fieldsV1["f:spec"]!["f:paused"]).toBeUndefined();
    // A whole list item omitted goes too.
    const two = deployment(4);
    spec(two).template.spec.containers.push({ name: "side", image: "busybox" });
    const withSide = ok(base({ live: next, applied: two }));
    expect(spec(withSide).template.spec.containers.map((c) => c.name)).toEqual(["web", "side"]);
    expect(spec(ok(base({ live: withSide, applied: deployment(4) }))).template.spec.containers.map((c) => c.name)).toEqual(["web"]);
  });

  it("keeps an omitted field another manager also owns", () => {
    const live = ok(base({ applied: deployment(3, { paused: true }) }));
    const bob = ok(base({ live, manager: "bob", applied: { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" }, spec: { paused: true } } as KubeObject }));
    const next = ok(base({ live: bob, applied: deployment(3) }));
    expect(spec(next).paused).toBe(true);
  });

  it("reports a conflict with an Update manager that set a field to another value, and force takes it over", () => {
    const live = ok(base({}));
    const scaled = structuredClone(live);
    spec(scaled).replicas = 5;
    scaled.metadata.managedFields = updateManagedFields({ before: live, after: scaled, manager: "kubectl", subresource: "scale", apiVersion: "apps/v1", time: "t", schema, ignoreStatus: true });
    expect(entries(scaled).map((e) => [e.manager, e.operation])).toEqual([["alice", "Apply"], ["kubectl", "Update"]]);
    // alice lost .spec.replicas to the Update manager.
    expect(entries(scaled)[0]!.fieldsV1["f:spec"]!["f:replicas"]).toBeUndefined();

    const conflicted = applyConfiguration(base({ live: scaled, applied: deployment(3) }));
    expect(conflicted.kind).toBe("conflicts");
    if (conflicted.kind !== "conflicts") return;
    expect(conflicted.conflicts.map((c) => [c.manager.manager, formatPath(c.path)])).toEqual([["kubectl", ".spec.replicas"]]);

    // Same value: no conflict (shared ownership).
    expect(applyConfiguration(base({ live: scaled, applied: deployment(5) })).kind).toBe("ok");

    const forced = ok(base({ live: scaled, applied: deployment(3), force: true }));
    expect(spec(forced).replicas).toBe(3);
    expect(entries(forced).map((e) => e.manager)).toEqual(["alice"]);
    expect(entries(forced)[0]!.fieldsV1["f:spec"]!["f:replicas"]).toEqual({});
  });

  it("lets two managers own different fields without conflict", () => {
    const live = ok(base({}));
    const bobApplied = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", labels: { team: "b" } }, spec: { minReadySeconds: 7 } } as KubeObject;
    const both = ok(base({ live, manager: "bob", applied: bobApplied }));
    expect(both.metadata.labels).toEqual({ app: "web", team: "b" });
    expect((both.spec as { minReadySeconds?: number }).minReadySeconds).toBe(7);
    expect(entries(both).map((e) => e.manager)).toEqual(["alice", "bob"]);
    // alice re-applies without bob's fields: they stay.
    const again = ok(base({ live: both, applied: deployment(3) }));
    expect(again.metadata.labels).toEqual({ app: "web", team: "b" });
    expect((again.spec as { minReadySeconds?: number }).minReadySeconds).toBe(7);
    // bob drops his label: it goes, alice's stays.
    const bobLess = ok(base({ live: again, manager: "bob", applied: { ...bobApplied, metadata: { name: "web" } } as KubeObject }));
    expect(bobLess.metadata.labels).toEqual({ app: "web" });
  });
});

/** An in-memory store, enough for Registry. */
function memoryStore(): ObjectStore {
  const objs = new Map<string, KubeObject>();
  let rev = 1;
  const key = (ns: string | undefined, name: string) => `${ns ?? ""}/${name}`;
  const store = {
    get: async (_r: unknown, ns: string | undefined, name: string) => {
      const o = objs.get(key(ns, name));
      return o ? structuredClone(o) : undefined;
    },
    create: async (_r: unknown, o: KubeObject) => {
      const k = key(o.metadata.namespace, o.metadata.name!);
      if (objs.has(k)) throw new StoreError(StoreErrorCode.AlreadyExists, "exists");
      const stored = { ...structuredClone(o), metadata: { ...structuredClone(o.metadata), resourceVersion: String(++rev) } };
      objs.set(k, stored);
      return structuredClone(stored);
    },
    update: async (_r: unknown, o: KubeObject, expected: number) => {
      const k = key(o.metadata.namespace, o.metadata.name!);
      if (Number(objs.get(k)?.metadata.resourceVersion) !== expected) throw new StoreError(StoreErrorCode.Conflict, "modified");
      const stored = { ...structuredClone(o), metadata: { ...structuredClone(o.metadata), resourceVersion: String(++rev) } };
      objs.set(k, stored);
      return structuredClone(stored);
    },
  };
  objs.set("/default", { apiVersion: "v1", kind: "Namespace", metadata: { name: "default", resourceVersion: "1" } });
  return store as unknown as ObjectStore;
}

describe("Registry.apply", () => {
  const D = resourceByKind("Deployment");

  it("creates, re-applies as a no-op, conflicts with a scale, and forces", async () => {
    const reg = new Registry(memoryStore(), async (_r, o) => o, async () => false);
    const created = await reg.apply(D, "default", "web", deployment(3), { fieldManager: "kubectl" });
    expect(created.metadata.uid).toBeDefined();
    const again = await reg.apply(D, "default", "web", deployment(3), { fieldManager: "kubectl" });
    expect(again.metadata.resourceVersion).toBe(created.metadata.resourceVersion);

    await reg.patch(D, "default", "web", "application/merge-patch+json", { spec: { replicas: 5 } }, { fieldManager: "kubectl", managerSubresource: "scale" });
    const err = await reg.apply(D, "default", "web", deployment(3), { fieldManager: "kubectl" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toMatchObject({
      code: 409,
      reason: "Conflict",
      message: 'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas',
      details: { causes: [{ reason: "FieldManagerConflict", message: 'conflict with "kubectl" with subresource "scale" using apps/v1', field: ".spec.replicas" }] },
    });

    const dry = await reg.apply(D, "default", "web", deployment(3), { fieldManager: "kubectl", force: true, dryRun: true });
    expect(spec(dry).replicas).toBe(3);
    expect(spec(await reg.get(D, "default", "web")).replicas).toBe(5);

    const forced = await reg.apply(D, "default", "web", deployment(3), { fieldManager: "kubectl", force: true });
    expect(spec(forced).replicas).toBe(3);
    expect(entries(forced).map((e) => `${e.manager}/${e.operation}`)).toEqual(["kubectl/Apply"]);
  });

  it("records ordinary writes as Update managers, and needs a field manager to apply", async () => {
    const reg = new Registry(memoryStore(), async (_r, o) => o, async () => false);
    await reg.create(D, "default", deployment(2), { fieldManager: "kubectl-client-side-apply" });
    const edited = await reg.patch(D, "default", "web", "application/merge-patch+json", { metadata: { labels: { x: "y" } } }, { fieldManager: "kubectl-edit" });
    expect(entries(edited).map((e) => `${e.manager}/${e.operation}`)).toEqual(["kubectl-client-side-apply/Update", "kubectl-edit/Update"]);
    expect(entries(edited)[1]!.fieldsV1).toEqual({ "f:metadata": { "f:labels": { "f:x": {} } } });
    await expect(reg.apply(D, "default", "web", deployment(2), {})).rejects.toMatchObject({ status: { code: 400 } });
    // The control plane's own writes (no manager) record nothing new.
    const internal = await reg.patch(D, "default", "web", "application/merge-patch+json", { metadata: { annotations: { a: "b" } } });
    expect(entries(internal).map((e) => e.manager)).toEqual(["kubectl-client-side-apply", "kubectl-edit"]);
  });
});

describe("managed fields set by a write", () => {
  const D = resourceByKind("Deployment");

  it("replace the stored ones (kubectl's migration), and [{}] clears them", async () => {
    const reg = new Registry(memoryStore(), async (_r, o) => o, async () => false);
    const created = await reg.create(D, "default", deployment(2), { fieldManager: "kubectl-client-side-apply" });
    const moved = entries(created).map((e) => ({ ...e, manager: "kubectl", operation: "Apply" as const }));
    const migrated = await reg.patch(D, "default", "web", "application/json-patch+json", [{ op: "replace", path: "/metadata/managedFields", value: moved }], { fieldManager: "kubectl" });
    expect(entries(migrated).map((e) => `${e.manager}/${e.operation}`)).toEqual(["kubectl/Apply"]);
    const cleared = await reg.patch(D, "default", "web", "application/merge-patch+json", { metadata: { managedFields: [{}] } }, { fieldManager: "kubectl-patch" });
    expect(cleared.metadata.managedFields).toBeUndefined();
  });
});
