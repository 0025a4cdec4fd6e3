/**
 * Node health, as the kubelet and the node lifecycle controller report it
 * (pkg/kubelet/nodestatus/setters.go ReadyCondition; pkg/controller/nodelifecycle/
 * node_lifecycle_controller.go tryUpdateNodeHealth, doNoScheduleTaintingPass and
 * doNoExecuteTaintingPass). A node's liveness is its Lease in kube-node-lease, renewed by its
 * node-agent as the kubelet's nodelease controller renews it, and the heartbeat of the Ready
 * condition it posts; the controller takes the later of the two. Pure: the caller passes the
 * clock (monotonic ms for ages it measured itself, wall time for times read from objects).
 */
import type { Lease } from "kubernetes-types/coordination/v1.js";
import type { Node, NodeCondition, Taint, Toleration } from "kubernetes-types/core/v1.js";
import { rfc3339 } from "../../../cluster/meta.ts";

export const NodeReadiness = {
  Ready: "Ready",
  NotReady: "NotReady",
  Unknown: "Unknown",
} as const;
export type NodeReadiness = (typeof NodeReadiness)[keyof typeof NodeReadiness];

/** The taints the node lifecycle controller puts on unhealthy nodes (k8s.io/api/core/v1 well_known_taints.go). */
export const NodeTaintKey = {
  NotReady: "node.kubernetes.io/not-ready",
  Unreachable: "node.kubernetes.io/unreachable",
  Unschedulable: "node.kubernetes.io/unschedulable",
} as const;

/** Reasons and messages of the Ready condition, worded as the kubelet and the controller word them. */
export const ReadyConditionText = {
  [NodeReadiness.Ready]: { status: "True", reason: "KubeletReady", message: "kubelet is posting ready status" },
  [NodeReadiness.NotReady]: { status: "False", reason: "KubeletNotReady", message: "node agent is not ready" },
  [NodeReadiness.Unknown]: { status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status." },
  neverUpdated: { status: "Unknown", reason: "NodeStatusNeverUpdated", message: "Kubelet never posted node status." },
} as const;

/**
 * Whether a toleration tolerates a taint (k8s.io/api/core/v1 toleration.go ToleratesTaint): an
 * empty effect matches every effect, an empty key with Exists matches every taint, Equal (the
 * default operator) compares values.
 */
export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  switch (t.operator ?? "Equal") {
    case "Exists":
      return true;
    case "Equal":
    case "":
      return (t.value ?? "") === (taint.value ?? "");
    default:
      return false;
  }
}


export function findNodeCondition(node: Node, type: string): NodeCondition | undefined {
  const conditions = node.status?.conditions;
  return Array.isArray(conditions) ? conditions.find((c) => c?.type === type) : undefined;
}

/** "True" | "False" | "Unknown" of the Ready condition; a node without one is Unknown. */
export function nodeReadyStatus(node: Node): string {
  return findNodeCondition(node, "Ready")?.status ?? "Unknown";
}

export function isNodeReady(node: Node): boolean {
  return nodeReadyStatus(node) === "True";
}

/**
 * The Ready condition to write for `readiness`. Ready / NotReady are what the kubelet posts
 * (heartbeat = now); Unknown is what the lifecycle controller writes when heartbeats stop: it
 * keeps the last heartbeat time, and says "never posted" when the node had no Ready condition.
 * lastTransitionTime is kept while the status does not change.
 */
export function nodeReadyCondition(node: Node, readiness: NodeReadiness, now: Date, message?: string): NodeCondition {
  const current = findNodeCondition(node, "Ready");
  const text = readiness === NodeReadiness.Unknown && current === undefined ? ReadyConditionText.neverUpdated : ReadyConditionText[readiness];
  const nowText = rfc3339(now);
  const heartbeat =
    readiness === NodeReadiness.Unknown
      ? (current?.lastHeartbeatTime ?? node.metadata?.creationTimestamp ?? nowText)
      : nowText;
  const transition = current && current.status === text.status && current.lastTransitionTime ? current.lastTransitionTime : nowText;
  return {
    type: "Ready",
    status: text.status,
    lastHeartbeatTime: heartbeat,
    lastTransitionTime: transition,
    reason: text.reason,
    message: readiness === NodeReadiness.NotReady && message ? message : text.message,
  };
}

/** The namespace of the nodes' Leases (k8s.io/api/core/v1 NamespaceNodeLease). */
export const NODE_LEASE_NAMESPACE = "kube-node-lease";

/** Milliseconds since the epoch of an RFC 3339 time read from an object; undefined when it is not one. */
export function parseTimeMs(v: unknown): number | undefined {
  if (typeof v !== "string" || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v)) return undefined;
  const ms = Date.parse(v);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * What the controller saw of a node: when it last saw a sign of life (probeMs, on its own
 * monotonic clock, as nodeHealthData.probeTimestamp), and the two signs it compares against
 * (the Lease's renewTime and the Ready condition's lastHeartbeatTime), as read.
 */
export interface NodeHealth {
  readonly probeMs: number;
  readonly renewTime?: string;
  readonly readyHeartbeat?: string;
}

/**
 * tryUpdateNodeHealth's bookkeeping: the probe time moves to now whenever the Ready heartbeat
 * changed or the Lease's renewTime moved forward since the last look, so a node's own clock is
 * never compared with the controller's while it lives.
 *
 * Where Kubernetes starts a node it sees for the first time (every node, after a controller
 * restart) with a full grace period from now, this judges from the stored times: the probe is
 * placed as long ago as the newest of renewTime and the heartbeat (the creation time for a
 * node that never posted), so a node that died before a control-plane restart is stale at
 * once. Only `settleMs` more is granted: a live holder whose renewals failed while the control
 * plane was away renews within two renew intervals of its return (the caller passes
 * leaseSettleMs). A time in the future counts as now.
 */
export function observeNodeHealth(saved: NodeHealth | undefined, node: Node, lease: Lease | undefined, nowMs: number, nowWallMs: number, graceMs: number, settleMs: number): NodeHealth {
  const renewTime = typeof lease?.spec?.renewTime === "string" ? lease.spec.renewTime : undefined;
  const readyHeartbeat = findNodeCondition(node, "Ready")?.lastHeartbeatTime;
  if (saved) {
    const renewed = (parseTimeMs(renewTime) ?? -Infinity) > (parseTimeMs(saved.renewTime) ?? -Infinity);
    const posted = readyHeartbeat !== saved.readyHeartbeat;
    return { probeMs: renewed || posted ? nowMs : saved.probeMs, renewTime, readyHeartbeat };
  }
  const seen = [parseTimeMs(renewTime), parseTimeMs(readyHeartbeat)].filter((t): t is number => t !== undefined);
  const newest = seen.length > 0 ? Math.max(...seen) : parseTimeMs(node.metadata?.creationTimestamp);
  const age = newest === undefined ? 0 : Math.max(0, nowWallMs - newest);
  const probeMs = Math.max(nowMs - age, nowMs - graceMs + Math.min(settleMs, graceMs));
  return { probeMs: Math.min(probeMs, nowMs), renewTime, readyHeartbeat };
}

/** Half the holder's lease duration: two renew intervals (0 without a lease). */
export function leaseSettleMs(lease: Lease | undefined): number {
  const d = lease?.spec?.leaseDurationSeconds;
  return typeof d === "number" && Number.isFinite(d) && d > 0 ? (d * 1000) / 2 : 0;
}

/**
 * Whether a Lease says its holder is alive at `nowWallMs`: renewed within `graceMs` by the
 * holder's clock (for decisions without the controller's history, such as whether a node-agent
 * will confirm a graceful pod deletion).
 */
export function leaseFresh(lease: Lease | undefined, nowWallMs: number, graceMs: number): boolean {
  const renewed = parseTimeMs(lease?.spec?.renewTime);
  return renewed !== undefined && nowWallMs - renewed <= graceMs;
}

export type NodeHealthVerdict = { kind: "alive"; recheckInMs: number } | { kind: "stale" };

/**
 * monitorNodeHealth's test: stale once nothing was seen for the grace period
 * (nodeMonitorGracePeriod), or, for a node that never posted a Ready condition, for the
 * startup grace period (nodeStartupGracePeriod; here twice the grace period).
 */
export function nodeHealthVerdict(node: Node, health: NodeHealth, nowMs: number, graceMs: number): NodeHealthVerdict {
  const grace = findNodeCondition(node, "Ready") ? graceMs : 2 * graceMs;
  const left = health.probeMs + grace - nowMs;
  return left < 0 ? { kind: "stale" } : { kind: "alive", recheckInMs: left + 1 };
}

/**
 * The conditions the controller writes for a stale node: Ready Unknown (NodeStatusUnknown, or
 * NodeStatusNeverUpdated when the node never posted one), and every other condition the node
 * posted Unknown too, each keeping its last heartbeat, transition now. Undefined when they
 * already say so.
 */
export function staleNodeConditions(node: Node, now: Date): NodeCondition[] | undefined {
  const conditions = (Array.isArray(node.status?.conditions) ? node.status.conditions : []).filter((c) => !!c && typeof c === "object");
  const nowText = rfc3339(now);
  let changed = false;
  const out = conditions.map((c) => {
    if (c.status === "Unknown") return c;
    changed = true;
    if (c.type === "Ready") return nodeReadyCondition(node, NodeReadiness.Unknown, now);
    return { ...c, status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status.", lastTransitionTime: nowText };
  });
  if (!findNodeCondition(node, "Ready")) {
    changed = true;
    out.push(nodeReadyCondition(node, NodeReadiness.Unknown, now));
  }
  return changed ? out : undefined;
}

/** The taints this controller owns: the other keys are left alone. */
const CONTROLLER_TAINTS: ReadonlyArray<Pick<Taint, "key" | "effect">> = [
  { key: NodeTaintKey.NotReady, effect: "NoSchedule" },
  { key: NodeTaintKey.NotReady, effect: "NoExecute" },
  { key: NodeTaintKey.Unreachable, effect: "NoSchedule" },
  { key: NodeTaintKey.Unreachable, effect: "NoExecute" },
  { key: NodeTaintKey.Unschedulable, effect: "NoSchedule" },
];

/**
 * The node's taints as the lifecycle controller wants them: Ready False gives
 * node.kubernetes.io/not-ready, Ready Unknown node.kubernetes.io/unreachable, each NoSchedule
 * (doNoScheduleTaintingPass) and NoExecute with timeAdded (doNoExecuteTaintingPass, what the
 * taint eviction controller counts tolerationSeconds from); Ready True none of them;
 * spec.unschedulable gives node.kubernetes.io/unschedulable:NoSchedule. A node without a Ready
 * condition keeps what it has (the controller writes Unknown first). A taint that stays keeps
 * its timeAdded; other taints are untouched. Undefined when nothing changes.
 */
export function desiredNodeTaints(node: Node, now: Date): Taint[] | undefined {
  const current = (Array.isArray(node.spec?.taints) ? node.spec.taints : []).filter((t) => !!t && typeof t === "object");
  const ready = findNodeCondition(node, "Ready")?.status;
  const want: Array<Pick<Taint, "key" | "effect">> = [];
  if (ready === "False") want.push({ key: NodeTaintKey.NotReady, effect: "NoSchedule" }, { key: NodeTaintKey.NotReady, effect: "NoExecute" });
  else if (ready !== undefined && ready !== "True") want.push({ key: NodeTaintKey.Unreachable, effect: "NoSchedule" }, { key: NodeTaintKey.Unreachable, effect: "NoExecute" });
  if (node.spec?.unschedulable) want.push({ key: NodeTaintKey.Unschedulable, effect: "NoSchedule" });
  const same = (a: Pick<Taint, "key" | "effect">, b: Pick<Taint, "key" | "effect">) => a.key === b.key && a.effect === b.effect;
  const owned = (t: Taint) => CONTROLLER_TAINTS.some((o) => same(o, t));
  // Without a Ready condition the readiness taints stay as they are; only unschedulable follows the spec.
  const managed = (t: Pick<Taint, "key" | "effect">) => (ready === undefined ? same(t, CONTROLLER_TAINTS[4]!) : owned(t as Taint));
  const kept = current.filter((t) => !managed(t) || want.some((w) => same(w, t)));
  const added = want
    .filter((w) => managed(w) && !kept.some((t) => same(w, t)))
    .map((w): Taint => ({ key: w.key, effect: w.effect, ...(w.effect === "NoExecute" ? { timeAdded: rfc3339(now) } : {}) }));
  if (added.length === 0 && kept.length === current.length) return undefined;
  return [...kept, ...added];
}
