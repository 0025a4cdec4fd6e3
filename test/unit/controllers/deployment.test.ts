import { describe, expect, it } from "vitest";
import type { Deployment, DeploymentStatus, ReplicaSet } from "kubernetes-types/apps/v1.js";
import type { Pod, PodTemplateSpec } from "kubernetes-types/core/v1.js";
import {
  computeHash,
  maxSurge,
  maxUnavailable,
  reconcileDeployment,
  resolveFenceposts,
  safeEncodeString,
} from "../../../control-plane/controllers/logic/deployment.ts";
import { fnv1a32 as fnv32a } from "../../../cluster/hash.ts";

const D_UID = "deploy-uid";
const NOW = new Date("2024-06-01T12:00:00Z");
const T0 = "2024-06-01T00:00:00Z";

function template(image: string): PodTemplateSpec {
  return { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "nginx", image }] } };
}

function deployment(opts: { replicas?: number; image?: string; strategy?: "RollingUpdate" | "Recreate"; surge?: number | string; unavailable?: number | string; limit?: number; generation?: number; status?: DeploymentStatus } = {}): Deployment {
  const strategy =
    opts.strategy === "Recreate"
      ? { type: "Recreate" }
      : { type: "RollingUpdate", rollingUpdate: { maxSurge: opts.surge ?? "25%", maxUnavailable: opts.unavailable ?? "25%" } };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "shop", uid: D_UID, generation: opts.generation ?? 1 },
    spec: {
      replicas: opts.replicas ?? 4,
      selector: { matchLabels: { app: "web" } },
      template: template(opts.image ?? "nginx:1.27"),
      strategy,
      ...(opts.limit !== undefined ? { revisionHistoryLimit: opts.limit } : {}),
    },
    ...(opts.status ? { status: opts.status } : {}),
  };
}

function replicaSet(name: string, o: { image: string; replicas: number; available?: number; statusReplicas?: number; revision: number; created?: string; desired?: number; max?: number }): ReplicaSet {
  const hash = name.split("-").pop()!;
  const t = template(o.image);
  t.metadata!.labels = { ...t.metadata!.labels, "pod-template-hash": hash };
  const statusReplicas = o.statusReplicas ?? o.replicas;
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name,
      namespace: "shop",
      uid: `uid-${name}`,
      creationTimestamp: o.created ?? "2024-01-01T00:00:00Z",
      labels: { app: "web", "pod-template-hash": hash },
      annotations: {
        "deployment.kubernetes.io/revision": String(o.revision),
        "deployment.kubernetes.io/desired-replicas": String(o.desired ?? 4),
        "deployment.kubernetes.io/max-replicas": String(o.max ?? 5),
      },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: D_UID, controller: true, blockOwnerDeletion: true }],
    },
    spec: { replicas: o.replicas, selector: { matchLabels: { app: "web", "pod-template-hash": hash } }, template: t },
    status: { replicas: statusReplicas, readyReplicas: o.available ?? statusReplicas, availableReplicas: o.available ?? statusReplicas, observedGeneration: 1 },
  };
}

function settled(replicas = 4): DeploymentStatus {
  return {
    observedGeneration: 1,
    replicas,
    updatedReplicas: replicas,
    readyReplicas: replicas,
    availableReplicas: replicas,
    unavailableReplicas: 0,
    conditions: [
      { type: "Available", status: "True", lastUpdateTime: T0, lastTransitionTime: T0, reason: "MinimumReplicasAvailable", message: "Deployment has minimum availability." },
      { type: "Progressing", status: "True", lastUpdateTime: T0, lastTransitionTime: T0, reason: "NewReplicaSetAvailable", message: 'ReplicaSet "web-old" has successfully progressed.' },
    ],
  };
}

describe("pod-template-hash", () => {
  it("is fnv32a, rendered with the safe alphabet", () => {
    expect(fnv32a(new TextEncoder().encode("a"))).toBe(0xe40c292c);
    expect(fnv32a(new Uint8Array())).toBe(2166136261);
    expect(safeEncodeString("2166136261")).toBe("65bb57b6b5");
  });

  it("does not depend on key order, and changes with the template and the collision count", () => {
    const a: PodTemplateSpec = { metadata: { labels: { app: "web", tier: "x" } }, spec: { containers: [{ name: "c", image: "i" }] } };
    const b: PodTemplateSpec = { spec: { containers: [{ image: "i", name: "c" }] }, metadata: { labels: { tier: "x", app: "web" } } };
    expect(computeHash(a)).toBe(computeHash(b));
    expect(computeHash(a)).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/);
    expect(computeHash(a, 1)).not.toBe(computeHash(a));
    expect(computeHash(template("nginx:1.26"))).not.toBe(computeHash(template("nginx:1.27")));
  });
});

describe("fenceposts", () => {
  const cases: Array<{ surge: number | string; unavailable: number | string; replicas: number; want: [number, number] }> = [
    { surge: "25%", unavailable: "25%", replicas: 4, want: [1, 1] },
    { surge: "25%", unavailable: "25%", replicas: 10, want: [3, 2] },
    { surge: "25%", unavailable: "25%", replicas: 1, want: [1, 0] },
    { surge: 0, unavailable: "10%", replicas: 5, want: [0, 1] },
    { surge: 2, unavailable: 0, replicas: 3, want: [2, 0] },
  ];
  for (const c of cases) {
    it(`maxSurge ${c.surge} / maxUnavailable ${c.unavailable} of ${c.replicas}`, () => {
      const d = deployment({ replicas: c.replicas, surge: c.surge, unavailable: c.unavailable });
      expect([maxSurge(d), maxUnavailable(d)]).toEqual(c.want);
    });
  }
  it("both resolving to 0 makes maxUnavailable 1", () => {
    expect(resolveFenceposts("10%", "10%", 3)).toEqual({ surge: 1, unavailable: 0 });
    expect(resolveFenceposts(0, "10%", 3)).toEqual({ surge: 0, unavailable: 1 });
  });
});

describe("reconcileDeployment: first sync", () => {
  it("creates the ReplicaSet <name>-<hash> with the hash label, selector, owner and annotations", () => {
    const d = deployment();
    const hash = computeHash(d.spec!.template);
    const r = reconcileDeployment(d, [], [], NOW);
    expect(r.update).toEqual([]);
    expect(r.delete).toEqual([]);
    expect(r.create).toHaveLength(1);
    const rs = r.create[0]!;
    expect(rs.metadata).toEqual({
      name: `web-${hash}`,
      namespace: "shop",
      labels: { app: "web", "pod-template-hash": hash },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: D_UID, controller: true, blockOwnerDeletion: true }],
      annotations: { "deployment.kubernetes.io/revision": "1", "deployment.kubernetes.io/desired-replicas": "4", "deployment.kubernetes.io/max-replicas": "5" },
    });
    expect(rs.spec).toEqual({
      replicas: 4,
      minReadySeconds: 0,
      selector: { matchLabels: { app: "web", "pod-template-hash": hash } },
      template: { metadata: { labels: { app: "web", "pod-template-hash": hash } }, spec: { containers: [{ name: "nginx", image: "nginx:1.27" }] } },
    });
    expect(r.revision).toBe("1");
    expect(r.status).toEqual({
      observedGeneration: 1,
      replicas: 0,
      updatedReplicas: 0,
      readyReplicas: 0,
      availableReplicas: 0,
      unavailableReplicas: 4,
      conditions: [
        { type: "Progressing", status: "True", lastUpdateTime: "2024-06-01T12:00:00Z", lastTransitionTime: "2024-06-01T12:00:00Z", reason: "NewReplicaSetCreated", message: `Created new replica set "web-${hash}"` },
        { type: "Available", status: "False", lastUpdateTime: "2024-06-01T12:00:00Z", lastTransitionTime: "2024-06-01T12:00:00Z", reason: "MinimumReplicasUnavailable", message: "Deployment does not have minimum availability." },
      ],
    });
  });

  it("does nothing more once the ReplicaSet exists and is complete; conditions keep their times", () => {
    const d = deployment({ status: settled() });
    const hash = computeHash(d.spec!.template);
    const r = reconcileDeployment(d, [replicaSet(`web-${hash}`, { image: "nginx:1.27", replicas: 4, revision: 1 })], [], NOW);
    expect(r.create).toEqual([]);
    expect(r.update).toEqual([]);
    expect(r.status).toEqual(settled());
  });

  it("a hash collision with a foreign ReplicaSet bumps collisionCount instead of creating", () => {
    const d = deployment();
    const hash = computeHash(d.spec!.template);
    const foreign = replicaSet(`web-${hash}`, { image: "busybox", replicas: 1, revision: 1 });
    foreign.metadata!.ownerReferences = [];
    foreign.metadata!.labels = { app: "other" };
    const r = reconcileDeployment(d, [foreign], [], NOW);
    expect(r.create).toEqual([]);
    expect(r.status.collisionCount).toBe(1);
    const again = reconcileDeployment({ ...d, status: r.status }, [foreign], [], NOW);
    expect(again.create.map((rs) => rs.metadata!.name)).toEqual([`web-${computeHash(d.spec!.template, 1)}`]);
  });
});

describe("reconcileDeployment: RollingUpdate 25%/25% on 4 replicas", () => {
  const d = deployment({ image: "nginx:1.27", generation: 2, status: settled() });
  const hash = computeHash(d.spec!.template);
  const newName = `web-${hash}`;

  it("step 1: creates the new RS at 1 (surge) and scales the old one to 3 (unavailable)", () => {
    const old = replicaSet("web-old", { image: "nginx:1.26", replicas: 4, revision: 1 });
    const r = reconcileDeployment(d, [old], [], NOW);
    expect(r.create.map((rs) => [rs.metadata!.name, rs.spec!.replicas, rs.metadata!.annotations!["deployment.kubernetes.io/revision"]])).toEqual([[newName, 1, "2"]]);
    expect(r.update.map((rs) => [rs.metadata!.name, rs.spec!.replicas])).toEqual([["web-old", 3]]);
    expect(r.revision).toBe("2");
    expect(r.status).toMatchObject({ observedGeneration: 2, replicas: 4, updatedReplicas: 0, availableReplicas: 4, unavailableReplicas: 0 });
    const progressing = r.status.conditions!.find((c) => c.type === "Progressing")!;
    expect(progressing).toEqual({ type: "Progressing", status: "True", lastUpdateTime: "2024-06-01T12:00:00Z", lastTransitionTime: T0, reason: "NewReplicaSetCreated", message: `Created new replica set "${newName}"` });
  });

  it("step 2: the new pod is available, so the new RS goes to 2", () => {
    const old = replicaSet("web-old", { image: "nginx:1.26", replicas: 3, revision: 1 });
    const fresh = replicaSet(newName, { image: "nginx:1.27", replicas: 1, revision: 2, created: "2024-06-01T11:00:00Z" });
    const r = reconcileDeployment(d, [old, fresh], [], NOW);
    expect(r.create).toEqual([]);
    expect(r.update.map((rs) => [rs.metadata!.name, rs.spec!.replicas])).toEqual([[newName, 2]]);
  });

  it("waits while the new pods are not available (no scale-down below 3 available)", () => {
    const old = replicaSet("web-old", { image: "nginx:1.26", replicas: 3, revision: 1 });
    const fresh = replicaSet(newName, { image: "nginx:1.27", replicas: 2, available: 0, revision: 2, created: "2024-06-01T11:00:00Z" });
    const r = reconcileDeployment(d, [old, fresh], [], NOW);
    expect(r.create).toEqual([]);
    expect(r.update).toEqual([]);
    expect(r.status).toMatchObject({ replicas: 5, updatedReplicas: 2, availableReplicas: 3, unavailableReplicas: 2 });
  });

  it("scales the old RS down once the new pods are available", () => {
    const old = replicaSet("web-old", { image: "nginx:1.26", replicas: 3, revision: 1 });
    const fresh = replicaSet(newName, { image: "nginx:1.27", replicas: 2, revision: 2, created: "2024-06-01T11:00:00Z" });
    const r = reconcileDeployment(d, [old, fresh], [], NOW);
    expect(r.update.map((rs) => [rs.metadata!.name, rs.spec!.replicas])).toEqual([["web-old", 1]]);
  });

  it("reports the rollout complete when the new RS has all replicas available", () => {
    const old = replicaSet("web-old", { image: "nginx:1.26", replicas: 0, revision: 1 });
    const fresh = replicaSet(newName, { image: "nginx:1.27", replicas: 4, revision: 2, created: "2024-06-01T11:00:00Z" });
    const status: DeploymentStatus = {
      ...settled(),
      updatedReplicas: 3,
      conditions: [settled().conditions![0]!, { type: "Progressing", status: "True", lastUpdateTime: T0, lastTransitionTime: T0, reason: "ReplicaSetUpdated", message: `ReplicaSet "${newName}" is progressing.` }],
    };
    const r = reconcileDeployment({ ...d, status }, [old, fresh], [], NOW);
    expect(r.status.conditions!.find((c) => c.type === "Progressing")).toEqual({
      type: "Progressing",
      status: "True",
      lastUpdateTime: "2024-06-01T12:00:00Z",
      lastTransitionTime: T0,
      reason: "NewReplicaSetAvailable",
      message: `ReplicaSet "${newName}" has successfully progressed.`,
    });
  });
});

describe("reconcileDeployment: Recreate", () => {
  const d = deployment({ strategy: "Recreate", generation: 2, status: settled() });
  const newName = `web-${computeHash(d.spec!.template)}`;
  const oldPod: Pod = {
    metadata: { name: "web-old-abcde", namespace: "shop", labels: { app: "web" }, deletionTimestamp: T0, ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-old", uid: "uid-web-old", controller: true }] },
    spec: { containers: [] },
    status: { phase: "Running" },
  };

  it("scales the old RS to 0 first, without creating the new one", () => {
    const r = reconcileDeployment(d, [replicaSet("web-old", { image: "nginx:1.26", replicas: 4, revision: 1 })], [oldPod], NOW);
    expect(r.create).toEqual([]);
    expect(r.update.map((rs) => [rs.metadata!.name, rs.spec!.replicas])).toEqual([["web-old", 0]]);
  });

  it("waits while an old pod remains, even terminating", () => {
    const old = replicaSet("web-old", { image: "nginx:1.26", replicas: 0, revision: 1 });
    const r = reconcileDeployment(d, [old], [oldPod], NOW);
    expect(r.create).toEqual([]);
    expect(r.update).toEqual([]);
  });

  it("then creates the new RS at full size", () => {
    const old = replicaSet("web-old", { image: "nginx:1.26", replicas: 0, revision: 1 });
    const r = reconcileDeployment(d, [old], [], NOW);
    expect(r.create.map((rs) => [rs.metadata!.name, rs.spec!.replicas, rs.metadata!.annotations!["deployment.kubernetes.io/max-replicas"]])).toEqual([[newName, 4, "4"]]);
  });
});

describe("reconcileDeployment: history and scaling", () => {
  const d = deployment({ limit: 2, status: settled() });
  const newName = `web-${computeHash(d.spec!.template)}`;
  const olds = (firstReplicas = 0) => [1, 2, 3, 4].map((rev) => replicaSet(`web-old${rev}`, { image: `nginx:1.2${rev}`, replicas: rev === 1 ? firstReplicas : 0, revision: rev, created: `2024-01-0${rev}T00:00:00Z` }));

  it("deletes the oldest zero-sized old RSs beyond revisionHistoryLimit", () => {
    const current = replicaSet(newName, { image: "nginx:1.27", replicas: 4, revision: 5, created: "2024-02-01T00:00:00Z" });
    const r = reconcileDeployment(d, [...olds(), current], [], NOW);
    expect(r.delete.map((rs) => rs.metadata!.name)).toEqual(["web-old1", "web-old2"]);
    expect(r.create).toEqual([]);
    expect(r.update).toEqual([]);
  });

  it("never deletes an old RS that still has replicas", () => {
    const current = replicaSet(newName, { image: "nginx:1.27", replicas: 4, revision: 5, created: "2024-02-01T00:00:00Z" });
    const r = reconcileDeployment(d, [...olds(0).map((rs, i) => (i === 0 ? { ...rs, status: { ...rs.status, replicas: 1 } } : rs)), current], [], NOW);
    expect(r.delete.map((rs) => rs.metadata!.name)).toEqual(["web-old2"]);
  });

  it("a replicas change is a scaling event: the only active RS takes the new size", () => {
    const current = replicaSet(newName, { image: "nginx:1.27", replicas: 4, revision: 1 });
    const r = reconcileDeployment(deployment({ replicas: 6, status: settled() }), [current], [], NOW);
    expect(r.update).toHaveLength(1);
    expect(r.update[0]!.spec!.replicas).toBe(6);
    expect(r.update[0]!.metadata!.annotations).toMatchObject({ "deployment.kubernetes.io/desired-replicas": "6", "deployment.kubernetes.io/max-replicas": "8" });
  });

  it("Available turns False with a new transition time when availability drops", () => {
    const current = replicaSet(newName, { image: "nginx:1.27", replicas: 4, available: 2, revision: 1 });
    const r = reconcileDeployment(deployment({ status: settled() }), [current], [], NOW);
    expect(r.status.conditions!.find((c) => c.type === "Available")).toEqual({
      type: "Available",
      status: "False",
      lastUpdateTime: "2024-06-01T12:00:00Z",
      lastTransitionTime: "2024-06-01T12:00:00Z",
      reason: "MinimumReplicasUnavailable",
      message: "Deployment does not have minimum availability.",
    });
  });

  it("a paused Deployment does not roll out a new template, and says it is paused", () => {
    const paused = deployment({ image: "nginx:1.28", status: settled() });
    paused.spec!.paused = true;
    const r = reconcileDeployment(paused, [replicaSet("web-old", { image: "nginx:1.26", replicas: 4, revision: 1 })], [], NOW);
    expect(r.create).toEqual([]);
    expect(r.update).toEqual([]);
    expect(r.status.conditions!.find((c) => c.type === "Progressing")).toMatchObject({ status: "Unknown", reason: "DeploymentPaused", message: "Deployment is paused" });
  });

  it("adopts a matching orphan ReplicaSet", () => {
    const orphan = replicaSet(newName, { image: "nginx:1.27", replicas: 4, revision: 1 });
    orphan.metadata!.ownerReferences = [];
    const r = reconcileDeployment(deployment({ status: settled() }), [orphan], [], NOW);
    expect(r.update.map((rs) => rs.metadata!.ownerReferences)).toEqual([[{ apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: D_UID, controller: true, blockOwnerDeletion: true }]]);
  });
});
