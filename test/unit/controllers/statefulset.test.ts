import { describe, expect, it } from "vitest";
import type { StatefulSet } from "kubernetes-types/apps/v1.js";
import type { Pod } from "kubernetes-types/core/v1.js";
import { ordinalOf, reconcileStatefulSet } from "../../../control-plane/controllers/logic/statefulset.ts";

function sts(replicas: number, policy?: "Parallel" | "OrderedReady"): StatefulSet {
  return {
    metadata: { name: "db", namespace: "ns", uid: "sts-uid", generation: 1 },
    spec: { replicas, serviceName: "db-hl", selector: { matchLabels: { app: "db" } }, template: { metadata: { labels: { app: "db" } }, spec: { containers: [{ name: "c", image: "nginx" }] } }, ...(policy ? { podManagementPolicy: policy } : {}) },
  };
}

function pod(ord: number, o: { ready?: boolean; phase?: string; deleting?: boolean } = {}): Pod {
  return {
    metadata: { name: `db-${ord}`, namespace: "ns", uid: `uid-${ord}`, ...(o.deleting ? { deletionTimestamp: "2026-01-01T00:00:00Z" } : {}), ownerReferences: [{ apiVersion: "apps/v1", kind: "StatefulSet", name: "db", uid: "sts-uid", controller: true }] },
    spec: { containers: [] },
    status: { phase: o.phase ?? "Running", conditions: [{ type: "Ready", status: (o.ready ?? true) ? "True" : "False" }] },
  };
}

const names = (ps: Pod[]) => ps.map((p) => p.metadata?.name);

describe("reconcileStatefulSet", () => {
  it("creates ordinal 0 first with its stable identity", () => {
    const a = reconcileStatefulSet(sts(3), []);
    expect(names(a.create)).toEqual(["db-0"]);
    const p = a.create[0]!;
    expect(p.spec?.hostname).toBe("db-0");
    expect(p.spec?.subdomain).toBe("db-hl");
    expect(p.metadata?.labels).toMatchObject({ app: "db", "statefulset.kubernetes.io/pod-name": "db-0", "apps.kubernetes.io/pod-index": "0" });
    expect(p.metadata?.generateName).toBeUndefined();
  });

  it("waits for the previous to be Running and Ready (OrderedReady)", () => {
    expect(reconcileStatefulSet(sts(3), [pod(0, { ready: false })]).create).toHaveLength(0);
    expect(names(reconcileStatefulSet(sts(3), [pod(0)]).create)).toEqual(["db-1"]);
    expect(names(reconcileStatefulSet(sts(3), [pod(0), pod(1)]).create)).toEqual(["db-2"]);
  });

  it("Parallel creates all at once", () => {
    expect(names(reconcileStatefulSet(sts(3, "Parallel"), []).create)).toEqual(["db-0", "db-1", "db-2"]);
  });

  it("recreates a deleted pod under the same name, after the old one is gone", () => {
    expect(reconcileStatefulSet(sts(3), [pod(0), pod(1, { deleting: true }), pod(2)]).create).toHaveLength(0);
    expect(names(reconcileStatefulSet(sts(3), [pod(0), pod(2)]).create)).toEqual(["db-1"]);
  });

  it("scales down from the highest ordinal, one at a time", () => {
    const a = reconcileStatefulSet(sts(1), [pod(0), pod(1), pod(2)]);
    expect(names(a.delete)).toEqual(["db-2"]);
    expect(reconcileStatefulSet(sts(1), [pod(0), pod(1), pod(2, { deleting: true })]).delete).toHaveLength(0);
    expect(names(reconcileStatefulSet(sts(1, "Parallel"), [pod(0), pod(1), pod(2)]).delete)).toEqual(["db-2", "db-1"]);
  });

  it("status counts and ordinals", () => {
    const a = reconcileStatefulSet(sts(3), [pod(0), pod(1, { ready: false })]);
    expect(a.status).toMatchObject({ replicas: 2, readyReplicas: 1, observedGeneration: 1 });
    expect(ordinalOf("db", "db-12")).toBe(12);
    expect(ordinalOf("db", "db-x")).toBeUndefined();
    expect(ordinalOf("db", "db-01")).toBeUndefined();
  });
});
