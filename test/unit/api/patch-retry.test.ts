import { describe, expect, it } from "vitest";
import { PATCH_CONFLICT_RETRIES, PatchType, Registry, retryOnConflict } from "../../../control-plane/api/registry.ts";
import { ApiError, Errors } from "../../../control-plane/api/status.ts";
import { resourceByKind } from "../../../cluster/resources.ts";
import { StoreError, StoreErrorCode, type KubeObject, type ObjectStore } from "../../../cluster/store.ts";

const conflict = () => Errors.conflict("configmaps", "", "x", "the object has been modified");

describe("retryOnConflict", () => {
  it("runs again after each 409 Conflict, up to the retry count", async () => {
    let calls = 0;
    const v = await retryOnConflict(async () => {
      if (++calls < 4) throw conflict();
      return "done";
    }, 5);
    expect(v).toBe("done");
    expect(calls).toBe(4);
  });

  it("throws the last conflict after the retries, and never retries other errors", async () => {
    let calls = 0;
    await expect(retryOnConflict(async () => (calls++, Promise.reject(conflict())), 2)).rejects.toBeInstanceOf(ApiError);
    expect(calls).toBe(3);
    calls = 0;
    await expect(retryOnConflict(async () => (calls++, Promise.reject(Errors.alreadyExists("configmaps", "", "x"))), 5)).rejects.toMatchObject({ status: { code: 409, reason: "AlreadyExists" } });
    expect(calls).toBe(1);
    calls = 0;
    await expect(retryOnConflict(async () => (calls++, Promise.reject(Errors.badRequest("no"))), 5)).rejects.toMatchObject({ status: { code: 400 } });
    expect(calls).toBe(1);
  });
});

/**
 * A store holding one ConfigMap whose conditional update loses to a concurrent writer the first
 * `losses` times: each loss bumps the stored object (another client's label) and revision.
 */
function fakeStore(losses: number) {
  let rev = 10;
  let obj: KubeObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "cm", namespace: "default", uid: "u1", creationTimestamp: "2026-01-01T00:00:00Z", generation: 1, labels: {} },
    data: { a: "1" },
  };
  const stats = { updates: 0, gets: 0 };
  const store = {
    get: async () => (stats.gets++, structuredClone({ ...obj, metadata: { ...obj.metadata, resourceVersion: String(rev) } })),
    update: async (_r: unknown, next: KubeObject, expected: number) => {
      stats.updates++;
      if (losses > 0 || expected !== rev) {
        losses--;
        rev++;
        obj = { ...obj, metadata: { ...obj.metadata, labels: { ...obj.metadata.labels, [`other-${rev}`]: "yes" } } };
        throw new StoreError(StoreErrorCode.Conflict, "Operation cannot be fulfilled on configmaps \"cm\": the object has been modified");
      }
      rev++;
      obj = structuredClone(next);
      delete obj.metadata.resourceVersion;
      return { ...next, metadata: { ...next.metadata, resourceVersion: String(rev) } };
    },
  };
  return { store: store as unknown as ObjectStore, stats, current: () => obj };
}

const CM = resourceByKind("ConfigMap");

function registry(store: ObjectStore): Registry {
  return new Registry(store, async (_r, o) => o, async () => false);
}

describe("Registry.patch on a write conflict", () => {
  for (const [type, patch] of [
    [PatchType.merge, { metadata: { labels: { mine: "yes" } } }],
    [PatchType.strategic, { metadata: { labels: { mine: "yes" } } }],
    [PatchType.json, [{ op: "add", path: "/metadata/labels/mine", value: "yes" }]],
  ] as const) {
    it(`re-applies a ${type} patch without resourceVersion to the object read again`, async () => {
      const { store, stats, current } = fakeStore(3);
      const out = await registry(store).patch(CM, "default", "cm", type, patch);
      expect(stats.updates).toBe(4);
      // Both the concurrent writers' changes and this patch's are there.
      expect(out.metadata.labels).toMatchObject({ mine: "yes", "other-11": "yes", "other-12": "yes", "other-13": "yes" });
      expect(current().metadata.labels).toMatchObject({ mine: "yes", "other-13": "yes" });
    });
  }

  it("gives up with 409 after PATCH_CONFLICT_RETRIES retries", async () => {
    const { store, stats } = fakeStore(100);
    await expect(registry(store).patch(CM, "default", "cm", PatchType.merge, { data: { b: "2" } })).rejects.toMatchObject({ status: { code: 409, reason: "Conflict" } });
    expect(stats.updates).toBe(PATCH_CONFLICT_RETRIES + 1);
  });

  it("does not retry a patch that sets a resourceVersion (a precondition)", async () => {
    const { store, stats } = fakeStore(1);
    await expect(registry(store).patch(CM, "default", "cm", PatchType.merge, { metadata: { resourceVersion: "10" }, data: { b: "2" } })).rejects.toMatchObject({ status: { code: 409 } });
    expect(stats.updates).toBe(1);
    // A stale one is refused before any write.
    const second = fakeStore(0);
    await expect(registry(second.store).patch(CM, "default", "cm", PatchType.merge, { metadata: { resourceVersion: "3" }, data: { b: "2" } })).rejects.toMatchObject({ status: { code: 409 } });
    expect(second.stats.updates).toBe(0);
  });
});
