import { describe, expect, it } from "vitest";
import type { DaemonSet } from "kubernetes-types/apps/v1.js";
import type { Node, Pod } from "kubernetes-types/core/v1.js";
import { reconcileDaemonSet } from "../../../control-plane/controllers/logic/daemonset.ts";

let seed = 7;
const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);

function ds(podSpec: Partial<NonNullable<Pod["spec"]>> = {}): DaemonSet {
  return {
    metadata: { name: "agent", namespace: "ns", uid: "ds-uid", generation: 2 },
    spec: { selector: { matchLabels: { app: "agent" } }, template: { metadata: { labels: { app: "agent" } }, spec: { containers: [{ name: "c", image: "nginx" }], ...podSpec } } },
  };
}

function node(name: string, o: { ready?: boolean; labels?: Record<string, string>; taints?: NonNullable<Node["spec"]>["taints"] } = {}): Node {
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name, ...(o.labels ?? {}) } },
    spec: o.taints ? { taints: o.taints } : {},
    status: { conditions: [{ type: "Ready", status: (o.ready ?? true) ? "True" : "False" }] },
  };
}

function pod(name: string, nodeName: string, phase = "Running"): Pod {
  return {
    metadata: { name, namespace: "ns", uid: `uid-${name}`, creationTimestamp: "2026-01-01T00:00:00Z", ownerReferences: [{ apiVersion: "apps/v1", kind: "DaemonSet", name: "agent", uid: "ds-uid", controller: true }] },
    spec: { nodeName, containers: [] },
    status: { phase, conditions: [{ type: "Ready", status: "True" }] },
  };
}

describe("reconcileDaemonSet", () => {
  it("one pod per node, bound to it", () => {
    const a = reconcileDaemonSet(ds(), [node("n1"), node("n2")], [], rand);
    expect(a.create.map((p) => p.spec?.nodeName)).toEqual(["n1", "n2"]);
    const p = a.create[0]!;
    expect(p.metadata?.name).toMatch(/^agent-[a-z0-9]{5}$/);
    expect(p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]?.matchFields?.[0]).toEqual({ key: "metadata.name", operator: "In", values: ["n1"] });
    expect(p.spec?.tolerations?.some((t) => t.key === "node.kubernetes.io/not-ready" && t.effect === "NoExecute")).toBe(true);
    expect(a.status).toMatchObject({ desiredNumberScheduled: 2, currentNumberScheduled: 0 });
  });

  it("a node that joins later gets one; nodes with one keep it", () => {
    const a = reconcileDaemonSet(ds(), [node("n1"), node("n2")], [pod("agent-a", "n1")], rand);
    expect(a.create.map((p) => p.spec?.nodeName)).toEqual(["n2"]);
    expect(a.delete).toHaveLength(0);
    expect(a.status).toMatchObject({ desiredNumberScheduled: 2, currentNumberScheduled: 1, numberReady: 1, numberMisscheduled: 0 });
  });

  it("nodeSelector and taints decide; pods on nodes that no longer match or are gone are deleted", () => {
    const nodes = [node("n1", { labels: { role: "edge" } }), node("n2"), node("n3", { labels: { role: "edge" }, taints: [{ key: "dedicated", value: "x", effect: "NoSchedule" }] })];
    const a = reconcileDaemonSet(ds({ nodeSelector: { role: "edge" } }), nodes, [pod("agent-a", "n2"), pod("agent-b", "gone")], rand);
    expect(a.create.map((p) => p.spec?.nodeName)).toEqual(["n1"]);
    expect(a.delete.map((p) => p.metadata?.name).sort()).toEqual(["agent-a", "agent-b"]);
    const tolerating = reconcileDaemonSet(ds({ nodeSelector: { role: "edge" }, tolerations: [{ key: "dedicated", operator: "Exists" }] }), nodes, [], rand);
    expect(tolerating.create.map((p) => p.spec?.nodeName)).toEqual(["n1", "n3"]);
  });

  it("no new pod on a NotReady node, but the one there stays", () => {
    expect(reconcileDaemonSet(ds(), [node("n1", { ready: false })], [], rand).create).toHaveLength(0);
    const a = reconcileDaemonSet(ds(), [node("n1", { ready: false })], [pod("agent-a", "n1")], rand);
    expect(a.delete).toHaveLength(0);
  });

  it("a failed pod is replaced; duplicates are removed", () => {
    const a = reconcileDaemonSet(ds(), [node("n1")], [pod("agent-a", "n1", "Failed")], rand);
    expect(a.delete.map((p) => p.metadata?.name)).toEqual(["agent-a"]);
    expect(a.create).toHaveLength(1);
    const b = reconcileDaemonSet(ds(), [node("n1")], [pod("agent-a", "n1"), pod("agent-b", "n1")], rand);
    expect(b.delete.map((p) => p.metadata?.name)).toEqual(["agent-b"]);
  });
});
