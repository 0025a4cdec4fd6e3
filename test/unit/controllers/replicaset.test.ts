import { describe, expect, it } from "vitest";
import type { ReplicaSet } from "kubernetes-types/apps/v1.js";
import type { Pod } from "kubernetes-types/core/v1.js";
import { generateName, podsToDelete, reconcileReplicaSet } from "../../../control-plane/controllers/logic/replicaset.ts";

const RS_UID = "rs-uid-1";

function rs(replicas: number, extra: Partial<ReplicaSet["spec"]> = {}): ReplicaSet {
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: { name: "web", namespace: "shop", uid: RS_UID, generation: 3 },
    spec: {
      replicas,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web", tier: "front" }, annotations: { note: "x" } },
        spec: { containers: [{ name: "nginx", image: "nginx:1.27", ports: [{ containerPort: 80 }] }] },
      },
      ...extra,
    },
  };
}

interface PodOpts {
  node?: string;
  phase?: string;
  ready?: boolean;
  readySince?: string;
  restarts?: number;
  created?: string;
  deleting?: boolean;
  owner?: string | null;
  labels?: Record<string, string>;
  ns?: string;
  cost?: number;
}

function pod(name: string, o: PodOpts = {}): Pod {
  const owner = o.owner === undefined ? RS_UID : o.owner;
  return {
    metadata: {
      name,
      namespace: o.ns ?? "shop",
      uid: `uid-${name}`,
      labels: o.labels ?? { app: "web", tier: "front" },
      creationTimestamp: o.created ?? "2024-01-01T00:00:00Z",
      ...(o.deleting ? { deletionTimestamp: "2024-01-02T00:00:00Z" } : {}),
      ...(o.cost !== undefined ? { annotations: { "controller.kubernetes.io/pod-deletion-cost": String(o.cost) } } : {}),
      ...(owner ? { ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web", uid: owner, controller: true }] } : {}),
    },
    spec: { containers: [{ name: "nginx", image: "nginx:1.27" }], ...(o.node ? { nodeName: o.node } : {}) },
    status: {
      phase: o.phase ?? "Running",
      conditions: [{ type: "Ready", status: (o.ready ?? true) ? "True" : "False", lastTransitionTime: o.readySince ?? "2024-01-01T00:01:00Z" }],
      containerStatuses: [{ name: "nginx", image: "nginx:1.27", imageID: "", ready: o.ready ?? true, restartCount: o.restarts ?? 0 }],
    },
  };
}

/** Walks the alphabet: 0/27, 1/27, 2/27, ... */
function stepping(): () => number {
  let i = 0;
  return () => (i++ % 27) / 27 + 0.001;
}

/** A seeded LCG (Numerical Recipes constants). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("reconcileReplicaSet: scale up", () => {
  it("creates the missing pods from the template, named <rs>-<5 safe chars>, owned by the RS", () => {
    const r = reconcileReplicaSet(rs(3), [], stepping());
    expect(r.create.map((p) => p.metadata!.name)).toEqual(["web-bcdfg", "web-hjklm", "web-npqrs"]);
    expect(r.delete).toEqual([]);
    for (const p of r.create) {
      expect(p.metadata).toMatchObject({
        generateName: "web-",
        namespace: "shop",
        labels: { app: "web", tier: "front" },
        annotations: { note: "x" },
        ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web", uid: RS_UID, controller: true, blockOwnerDeletion: true }],
      });
      expect(p.spec!.containers[0]!.image).toBe("nginx:1.27");
    }
    expect(r.status).toEqual({ replicas: 0, fullyLabeledReplicas: 0, readyReplicas: 0, availableReplicas: 0, observedGeneration: 3 });
  });

  it("is deterministic for a seed, and names only use bcdfghjklmnpqrstvwxz2456789", () => {
    const a = reconcileReplicaSet(rs(5), [pod("web-aaaaa")], lcg(42)).create.map((p) => p.metadata!.name);
    const b = reconcileReplicaSet(rs(5), [pod("web-aaaaa")], lcg(42)).create.map((p) => p.metadata!.name);
    expect(a).toEqual(b);
    expect(a).toHaveLength(4);
    expect(new Set(a).size).toBe(4);
    for (const n of a) expect(n).toMatch(/^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  });

  it("does not reuse the name of an existing pod", () => {
    const taken = pod("web-bcdfg", { owner: "someone-else" });
    const r = reconcileReplicaSet(rs(1), [taken], stepping());
    expect(r.create.map((p) => p.metadata!.name)).toEqual(["web-hjklm"]);
  });

  it("truncates a long base to 58 characters before the suffix", () => {
    expect(generateName(`${"x".repeat(70)}-`, stepping())).toBe(`${"x".repeat(58)}bcdfg`);
  });

  it("replaces terminating and finished pods, which do not count", () => {
    const pods = [pod("a"), pod("b", { deleting: true }), pod("c", { phase: "Failed" }), pod("d", { phase: "Succeeded" })];
    const r = reconcileReplicaSet(rs(2), pods, stepping());
    expect(r.create).toHaveLength(1);
    expect(r.status.replicas).toBe(1);
  });
});

describe("reconcileReplicaSet: scale down", () => {
  it("deletes in ActivePods order", () => {
    const pods = [
      pod("old-ready", { node: "n1", created: "2024-01-01T00:00:00Z", readySince: "2024-01-01T00:01:00Z" }),
      pod("unscheduled", { phase: "Pending", ready: false }),
      pod("pending", { node: "n2", phase: "Pending", ready: false }),
      pod("unknown", { node: "n3", phase: "Unknown", ready: false }),
      pod("not-ready", { node: "n4", ready: false }),
      pod("restarts", { node: "n5", ready: false, restarts: 7 }),
      pod("new-ready", { node: "n6", created: "2024-01-03T00:00:00Z", readySince: "2024-01-01T00:01:00Z" }),
      pod("recently-ready", { node: "n7", readySince: "2024-01-05T00:00:00Z" }),
    ];
    const order = podsToDelete(pods, pods, pods.length).map((p) => p.metadata!.name);
    expect(order).toEqual(["unscheduled", "pending", "unknown", "restarts", "not-ready", "recently-ready", "new-ready", "old-ready"]);

    const r = reconcileReplicaSet(rs(5), pods, stepping());
    expect(r.create).toEqual([]);
    expect(r.delete.map((p) => p.metadata!.name)).toEqual(["unscheduled", "pending", "unknown"]);
  });

  it("prefers pods doubled up on a node, then lower pod-deletion-cost first", () => {
    const pods = [pod("alone", { node: "n1" }), pod("pair-1", { node: "n2" }), pod("pair-2", { node: "n2" })];
    expect(reconcileReplicaSet(rs(2), pods, stepping()).delete.map((p) => p.metadata!.name)).toEqual(["pair-1"]);
    const costed = [pod("alone", { node: "n1", cost: -5 }), pod("pair-1", { node: "n2" }), pod("pair-2", { node: "n2" })];
    expect(reconcileReplicaSet(rs(2), costed, stepping()).delete.map((p) => p.metadata!.name)).toEqual(["alone"]);
  });
});

describe("reconcileReplicaSet: ownership", () => {
  it("adopts a matching orphan, counting it, and leaves other controllers' pods and non-matching ones", () => {
    const pods = [
      pod("mine"),
      pod("orphan", { owner: null }),
      pod("foreign", { owner: "other-uid" }),
      pod("unrelated", { owner: null, labels: { app: "db" } }),
      pod("orphan-terminating", { owner: null, deleting: true }),
      pod("other-namespace", { owner: null, ns: "elsewhere" }),
    ];
    const r = reconcileReplicaSet(rs(3), pods, stepping());
    expect(r.adopt.map((p) => p.metadata!.name)).toEqual(["orphan"]);
    expect(r.adopt[0]!.metadata!.ownerReferences).toEqual([{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web", uid: RS_UID, controller: true, blockOwnerDeletion: true }]);
    expect(r.create).toHaveLength(1);
    expect(r.status.replicas).toBe(2);
  });

  it("releases an owned pod whose labels stopped matching", () => {
    const r = reconcileReplicaSet(rs(1), [pod("a"), pod("relabelled", { labels: { app: "debug" } })], stepping());
    expect(r.release.map((p) => p.metadata!.name)).toEqual(["relabelled"]);
    expect(r.release[0]!.metadata!.ownerReferences).toEqual([]);
    expect(r.delete).toEqual([]);
  });

  it("does nothing for an invalid selector", () => {
    const bad = rs(2, { selector: { matchExpressions: [{ key: "app", operator: "In", values: [] }] } });
    const r = reconcileReplicaSet(bad, [], stepping());
    expect(r.create).toEqual([]);
    expect(r.error).toMatch(/invalid selector/);
  });

  it("does not create or delete while the RS is being deleted", () => {
    const dying: ReplicaSet = { ...rs(3), metadata: { ...rs(3).metadata, deletionTimestamp: "2024-01-01T00:00:00Z" } };
    expect(reconcileReplicaSet(dying, [], stepping()).create).toEqual([]);
  });
});

describe("reconcileReplicaSet: status", () => {
  it("counts replicas, fully labelled, ready and available pods", () => {
    const pods = [pod("a"), pod("b", { ready: false }), pod("c", { labels: { app: "web" } }), pod("d", { deleting: true })];
    expect(reconcileReplicaSet(rs(3), pods, stepping()).status).toEqual({ replicas: 3, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 2, observedGeneration: 3 });
  });

  it("with minReadySeconds, counts as available pods ready for long enough", () => {
    const pods = [pod("a", { readySince: "2024-01-01T00:00:00Z" }), pod("b", { readySince: "2024-01-01T00:00:50Z" })];
    const r = reconcileReplicaSet(rs(2, { minReadySeconds: 30 }), pods, stepping(), new Date("2024-01-01T00:01:00Z"));
    expect(r.status).toMatchObject({ readyReplicas: 2, availableReplicas: 1 });
  });
});
