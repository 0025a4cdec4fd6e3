import { describe, expect, it } from "vitest";
import type { Lease } from "kubernetes-types/coordination/v1.js";
import type { Node, Taint } from "kubernetes-types/core/v1.js";
import {
  desiredNodeTaints,
  leaseFresh,
  leaseSettleMs,
  nodeHealthVerdict,
  nodeReadyCondition,
  observeNodeHealth,
  parseTimeMs,
  staleNodeConditions,
} from "../../../control-plane/controllers/logic/nodelifecycle.ts";

const NOW = new Date("2024-06-01T12:00:00Z");
const EARLIER = "2024-06-01T10:00:00Z";

function node(ready?: { status: string; reason?: string; heartbeat?: string; transition?: string }): Node {
  return {
    metadata: { name: "node-a", creationTimestamp: "2024-06-01T09:00:00Z" },
    status: ready ? { conditions: [{ type: "Ready", status: ready.status, reason: ready.reason, lastHeartbeatTime: ready.heartbeat ?? EARLIER, lastTransitionTime: ready.transition ?? EARLIER }] } : {},
  };
}

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

const GRACE = 10_000;
const WALL = Date.parse("2024-06-01T12:00:00Z");
const at = (secondsBefore: number) => new Date(WALL - secondsBefore * 1000).toISOString();

function lease(renewSecondsBefore: number | undefined, duration = 4): Lease {
  return { metadata: { name: "node-a", namespace: "kube-node-lease" }, spec: { holderIdentity: "node-a", leaseDurationSeconds: duration, ...(renewSecondsBefore === undefined ? {} : { renewTime: at(renewSecondsBefore) }) } };
}

describe("observeNodeHealth (tryUpdateNodeHealth)", () => {
  // The controller's monotonic clock reads 500_000 when its wall clock reads WALL.
  const MONO = 500_000;

  it("first sight after a restart: a lease renewed 2s ago leaves 8s of grace", () => {
    const h = observeNodeHealth(undefined, node({ status: "True", heartbeat: at(60) }), lease(2), MONO, WALL, GRACE, 2_000);
    expect(h.probeMs).toBe(MONO - 2_000);
    expect(nodeHealthVerdict(node({ status: "True" }), h, MONO, GRACE)).toEqual({ kind: "alive", recheckInMs: 8_001 });
  });

  it("first sight after a restart: a lease older than the grace period is stale once the settle time is over, not a grace period later", () => {
    const n = node({ status: "True", heartbeat: at(120) });
    const h = observeNodeHealth(undefined, n, lease(60), MONO, WALL, GRACE, 2_000);
    expect(h.probeMs).toBe(MONO - GRACE + 2_000);
    expect(nodeHealthVerdict(n, h, MONO + 2_000, GRACE).kind).toBe("alive");
    expect(nodeHealthVerdict(n, h, MONO + 2_001, GRACE).kind).toBe("stale");
  });

  it("first sight: the later of renewTime and the Ready heartbeat counts", () => {
    const h = observeNodeHealth(undefined, node({ status: "True", heartbeat: at(3) }), lease(50), MONO, WALL, GRACE, 0);
    expect(h.probeMs).toBe(MONO - 3_000);
  });

  it("first sight of a node that never posted and has no lease: from its creation", () => {
    const n = node();
    const h = observeNodeHealth(undefined, n, undefined, MONO, Date.parse("2024-06-01T09:00:05Z"), GRACE, 0);
    expect(h.probeMs).toBe(MONO - 5_000);
    // nodeStartupGracePeriod: twice the grace for a node without a Ready condition.
    expect(nodeHealthVerdict(n, h, MONO + 15_000, GRACE).kind).toBe("alive");
    expect(nodeHealthVerdict(n, h, MONO + 15_001, GRACE).kind).toBe("stale");
  });

  it("a renewTime in the future (a skewed node clock) counts as now", () => {
    const h = observeNodeHealth(undefined, node({ status: "True" }), { spec: { renewTime: new Date(WALL + 60_000).toISOString() } }, MONO, WALL, GRACE, 0);
    expect(h.probeMs).toBe(MONO);
  });

  it("garbage times are ignored, never thrown on", () => {
    const bad = { spec: { renewTime: "yesterday", leaseDurationSeconds: -3 } } as unknown as Lease;
    const h = observeNodeHealth(undefined, node({ status: "True", heartbeat: "soon" }), bad, MONO, WALL, GRACE, leaseSettleMs(bad));
    expect(Number.isFinite(h.probeMs)).toBe(true);
    expect(leaseSettleMs(bad)).toBe(0);
    expect(parseTimeMs("2024-06-01T12:00:00.123456Z")).toBe(WALL + 123);
    expect(parseTimeMs(42)).toBeUndefined();
  });

  it("later looks: the probe moves to now only when the lease is renewed or the heartbeat changes", () => {
    const n = node({ status: "True", heartbeat: at(30) });
    const first = observeNodeHealth(undefined, n, lease(1), MONO, WALL, GRACE, 2_000);
    // 5s later on the controller's clock, the same lease: the probe stays.
    const same = observeNodeHealth(first, n, lease(1), MONO + 5_000, WALL + 5_000, GRACE, 2_000);
    expect(same.probeMs).toBe(first.probeMs);
    // Renewed: the probe is now, whatever the node's clock says (no skew between the two clocks matters).
    const renewed = observeNodeHealth(same, n, lease(-100), MONO + 6_000, WALL + 6_000, GRACE, 2_000);
    expect(renewed.probeMs).toBe(MONO + 6_000);
    // An older renewTime (a lease recreated with a clock behind) is not a renewal.
    const older = observeNodeHealth(renewed, n, lease(200), MONO + 7_000, WALL + 7_000, GRACE, 2_000);
    expect(older.probeMs).toBe(MONO + 6_000);
    // The agent posted its Ready condition again: a sign of life too.
    const posted = observeNodeHealth(older, node({ status: "True", heartbeat: at(0) }), lease(200), MONO + 8_000, WALL + 8_000, GRACE, 2_000);
    expect(posted.probeMs).toBe(MONO + 8_000);
    expect(nodeHealthVerdict(n, posted, MONO + 8_000 + GRACE, GRACE).kind).toBe("alive");
    expect(nodeHealthVerdict(n, posted, MONO + 8_001 + GRACE, GRACE).kind).toBe("stale");
  });
});

describe("leaseFresh", () => {
  it("renewed within the grace period by the holder's clock", () => {
    expect(leaseFresh(lease(9), WALL, GRACE)).toBe(true);
    expect(leaseFresh(lease(11), WALL, GRACE)).toBe(false);
    expect(leaseFresh(lease(undefined), WALL, GRACE)).toBe(false);
    expect(leaseFresh(undefined, WALL, GRACE)).toBe(false);
  });
});

describe("staleNodeConditions", () => {
  it("Ready and the other posted conditions go Unknown, keeping their heartbeats", () => {
    const n: Node = {
      metadata: { name: "node-a" },
      status: {
        conditions: [
          { type: "MemoryPressure", status: "False", reason: "KubeletHasSufficientMemory", lastHeartbeatTime: EARLIER, lastTransitionTime: EARLIER },
          { type: "Ready", status: "True", reason: "KubeletReady", lastHeartbeatTime: EARLIER, lastTransitionTime: EARLIER },
        ],
      },
    };
    expect(staleNodeConditions(n, NOW)).toEqual([
      { type: "MemoryPressure", status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status.", lastHeartbeatTime: EARLIER, lastTransitionTime: "2024-06-01T12:00:00Z" },
      { type: "Ready", status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status.", lastHeartbeatTime: EARLIER, lastTransitionTime: "2024-06-01T12:00:00Z" },
    ]);
  });

  it("nothing to write when they already say Unknown", () => {
    expect(staleNodeConditions(node({ status: "Unknown" }), NOW)).toBeUndefined();
  });

  it("a node that never posted gets Ready Unknown NodeStatusNeverUpdated", () => {
    expect(staleNodeConditions(node(), NOW)).toEqual([expect.objectContaining({ type: "Ready", status: "Unknown", reason: "NodeStatusNeverUpdated" })]);
  });
});

describe("desiredNodeTaints", () => {
  const T = "2024-06-01T12:00:00Z";
  function tainted(ready: string | undefined, taints: Taint[], unschedulable = false): Node {
    return { ...node(ready ? { status: ready } : undefined), spec: { taints, ...(unschedulable ? { unschedulable } : {}) } };
  }
  const user: Taint = { key: "dedicated", value: "gpu", effect: "NoSchedule" };
  const cases: Array<{ name: string; node: Node; want: Taint[] | undefined }> = [
    { name: "Ready, no taints: nothing", node: tainted("True", []), want: undefined },
    {
      name: "Unknown: unreachable NoSchedule and NoExecute (with timeAdded), the user's taint kept",
      node: tainted("Unknown", [user]),
      want: [user, { key: "node.kubernetes.io/unreachable", effect: "NoSchedule" }, { key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: T }],
    },
    {
      name: "False: not-ready instead of unreachable",
      node: tainted("False", [{ key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: EARLIER }]),
      want: [{ key: "node.kubernetes.io/not-ready", effect: "NoSchedule" }, { key: "node.kubernetes.io/not-ready", effect: "NoExecute", timeAdded: T }],
    },
    {
      name: "still Unknown: nothing changes, timeAdded kept",
      node: tainted("Unknown", [{ key: "node.kubernetes.io/unreachable", effect: "NoSchedule" }, { key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: EARLIER }]),
      want: undefined,
    },
    {
      name: "Ready again: the readiness taints go, the user's stays",
      node: tainted("True", [{ key: "node.kubernetes.io/unreachable", effect: "NoSchedule" }, user, { key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: EARLIER }]),
      want: [user],
    },
    { name: "cordoned: unschedulable NoSchedule", node: tainted("True", [], true), want: [{ key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" }] },
    { name: "uncordoned: it goes", node: tainted("True", [{ key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" }]), want: [] },
    { name: "no Ready condition yet: readiness taints left as they are", node: tainted(undefined, [{ key: "node.kubernetes.io/not-ready", effect: "NoSchedule" }]), want: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(desiredNodeTaints(c.node, NOW)).toEqual(c.want);
    });
  }
});

describe("malformed stored nodes", () => {
  it("are read, never thrown on", () => {
    const odd = { metadata: { name: "node-a" }, spec: { taints: "none" }, status: { conditions: { Ready: true } } } as unknown as Node;
    expect(() => staleNodeConditions(odd, NOW)).not.toThrow();
    expect(() => desiredNodeTaints(odd, NOW)).not.toThrow();
    expect(() => observeNodeHealth(undefined, odd, undefined, 0, WALL, GRACE, 0)).not.toThrow();
  });
});
