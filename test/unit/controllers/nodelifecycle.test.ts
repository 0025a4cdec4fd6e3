import { describe, expect, it } from "vitest";
import type { Node, Pod, Toleration } from "kubernetes-types/core/v1.js";
import { nodeReadiness, nodeReadyCondition, podsToEvict } from "../../../control-plane/controllers/logic/nodelifecycle.ts";

const NOW = new Date("2024-06-01T12:00:00Z");
const EARLIER = "2024-06-01T10:00:00Z";

function node(ready?: { status: string; reason?: string; heartbeat?: string; transition?: string }): Node {
  return {
    metadata: { name: "node-a", creationTimestamp: "2024-06-01T09:00:00Z" },
    status: ready ? { conditions: [{ type: "Ready", status: ready.status, reason: ready.reason, lastHeartbeatTime: ready.heartbeat ?? EARLIER, lastTransitionTime: ready.transition ?? EARLIER }] } : {},
  };
}

describe("nodeReadiness", () => {
  const cases: Array<{ name: string; last: number | undefined; now: number; agentReady?: boolean; want: string }> = [
    { name: "never heard from", last: undefined, now: 1000, want: "Unknown" },
    { name: "fresh heartbeat", last: 10_000, now: 40_000, want: "Ready" },
    { name: "exactly at the grace period", last: 10_000, now: 50_000, want: "Ready" },
    { name: "silent longer than the grace period", last: 10_000, now: 50_001, want: "Unknown" },
    { name: "fresh, but the agent says it is not ready", last: 10_000, now: 20_000, agentReady: false, want: "NotReady" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(nodeReadiness(c.last, c.now, 40_000, c.agentReady)).toBe(c.want);
    });
  }
});

describe("nodeReadyCondition", () => {
  it("Ready: KubeletReady, heartbeat now, transition kept when it was already True", () => {
    expect(nodeReadyCondition(node({ status: "True", reason: "KubeletReady" }), "Ready", NOW)).toEqual({
      type: "Ready",
      status: "True",
      lastHeartbeatTime: "2024-06-01T12:00:00Z",
      lastTransitionTime: EARLIER,
      reason: "KubeletReady",
      message: "kubelet is posting ready status",
    });
  });

  it("Unknown: NodeStatusUnknown, the last heartbeat kept, transition now", () => {
    expect(nodeReadyCondition(node({ status: "True" }), "Unknown", NOW)).toEqual({
      type: "Ready",
      status: "Unknown",
      lastHeartbeatTime: EARLIER,
      lastTransitionTime: "2024-06-01T12:00:00Z",
      reason: "NodeStatusUnknown",
      message: "Kubelet stopped posting node status.",
    });
  });

  it("Unknown for a node that never posted: NodeStatusNeverUpdated", () => {
    expect(nodeReadyCondition(node(), "Unknown", NOW)).toMatchObject({ status: "Unknown", reason: "NodeStatusNeverUpdated", message: "Kubelet never posted node status.", lastHeartbeatTime: "2024-06-01T09:00:00Z" });
  });

  it("NotReady: KubeletNotReady with the agent's message", () => {
    expect(nodeReadyCondition(node({ status: "True" }), "NotReady", NOW, "overlay not up")).toMatchObject({ status: "False", reason: "KubeletNotReady", message: "overlay not up", lastTransitionTime: "2024-06-01T12:00:00Z" });
  });

  it("back to Ready from Unknown: a new transition", () => {
    expect(nodeReadyCondition(node({ status: "Unknown" }), "Ready", NOW).lastTransitionTime).toBe("2024-06-01T12:00:00Z");
  });
});

describe("podsToEvict", () => {
  function pod(name: string, o: { node?: string; tolerations?: Toleration[]; deleting?: boolean; phase?: string } = {}): Pod {
    return {
      metadata: { name, namespace: "default", ...(o.deleting ? { deletionTimestamp: EARLIER } : {}) },
      spec: { nodeName: o.node ?? "node-a", containers: [], ...(o.tolerations ? { tolerations: o.tolerations } : {}) },
      status: { phase: o.phase ?? "Running" },
    };
  }
  const pods = [
    pod("plain"),
    pod("other-node", { node: "node-b" }),
    pod("daemon", { tolerations: [{ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" }, { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute" }] }),
    pod("short", { tolerations: [{ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 10 }] }),
    pod("already-going", { deleting: true }),
    pod("finished", { phase: "Succeeded" }),
  ];
  const names = (ps: Pod[]) => ps.map((p) => p.metadata!.name);

  const cases: Array<{ name: string; ready: string; elapsed: number; want: string[] }> = [
    { name: "Ready node: nothing", ready: "True", elapsed: 1_000_000, want: [] },
    { name: "unreachable for 5s", ready: "Unknown", elapsed: 5_000, want: [] },
    { name: "unreachable for 10s: the pod tolerating 10s goes", ready: "Unknown", elapsed: 10_000, want: ["short"] },
    { name: "unreachable past the eviction timeout: all but the daemon", ready: "Unknown", elapsed: 300_000, want: ["plain", "short"] },
    { name: "not-ready: the unreachable toleration does not apply", ready: "False", elapsed: 10_000, want: [] },
    { name: "not-ready past the timeout", ready: "False", elapsed: 300_000, want: ["plain", "short"] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(names(podsToEvict(node({ status: c.ready }), pods, 1_000, 1_000 + c.elapsed, 300_000))).toEqual(c.want);
    });
  }
});
