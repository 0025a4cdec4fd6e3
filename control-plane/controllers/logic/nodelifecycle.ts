/**
 * Node health, as the kubelet and the node lifecycle controller report it
 * (pkg/kubelet/nodestatus/setters.go ReadyCondition, pkg/controller/nodelifecycle/
 * node_lifecycle_controller.go tryUpdateNodeHealth, and the taint-based eviction of
 * pkg/controller/tainteviction/taint_eviction.go). Pure: the caller passes the clock.
 */
import type { Node, NodeCondition, Pod, Taint, Toleration } from "kubernetes-types/core/v1.js";
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


/**
 * What the control plane should believe about a node from its last heartbeat: Unknown when it
 * never posted or stayed silent longer than `graceMs` (nodeMonitorGracePeriod, 50s in Kubernetes
 * 1.32), otherwise what the agent itself reported (`agentReady`: false when, say, its overlay is
 * not up — the kubelet's Ready=False "KubeletNotReady").
 */
export function nodeReadiness(lastHeartbeatMs: number | undefined, nowMs: number, graceMs: number, agentReady = true): NodeReadiness {
  if (lastHeartbeatMs === undefined) return NodeReadiness.Unknown;
  if (nowMs - lastHeartbeatMs > graceMs) return NodeReadiness.Unknown;
  return agentReady ? NodeReadiness.Ready : NodeReadiness.NotReady;
}

export function findNodeCondition(node: Node, type: string): NodeCondition | undefined {
  return node.status?.conditions?.find((c) => c.type === type);
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

/** The NoExecute taint an unhealthy node carries: not-ready for Ready=False, unreachable for Unknown. */
export function noExecuteTaintFor(node: Node): Taint | undefined {
  switch (nodeReadyStatus(node)) {
    case "True":
      return undefined;
    case "False":
      return { key: NodeTaintKey.NotReady, effect: "NoExecute" };
    default:
      return { key: NodeTaintKey.Unreachable, effect: "NoExecute" };
  }
}

/**
 * How long a pod may stay bound to a node with `taint`, in ms: Infinity when a matching toleration
 * has no tolerationSeconds, the smallest tolerationSeconds otherwise (<= 0 means at once), and
 * `defaultMs` when nothing matches — the 300s tolerations the DefaultTolerationSeconds admission
 * plugin adds for not-ready/unreachable (taint_eviction.go getMinTolerationTime).
 */
function tolerationMs(tolerations: readonly Toleration[], taint: Taint, defaultMs: number): number {
  const matching = tolerations.filter((t) => toleratesTaint(t, taint));
  if (matching.length === 0) return defaultMs;
  let min = Infinity;
  for (const t of matching) {
    if (t.tolerationSeconds === undefined || t.tolerationSeconds === null) continue;
    min = Math.min(min, Math.max(0, t.tolerationSeconds) * 1000);
  }
  return min;
}

/**
 * Pods to delete from a node that has not been Ready since `notReadySinceMs`: every live pod
 * bound to it whose toleration of the node's not-ready/unreachable NoExecute taint has run out.
 * `evictionMs` is the default toleration (pod-eviction-timeout, 5 min in Kubernetes). Pods that
 * tolerate the taint forever (DaemonSet pods) stay. Sorted by namespace/name.
 */
export function podsToEvict(node: Node, pods: Pod[], notReadySinceMs: number, nowMs: number, evictionMs: number): Pod[] {
  const taint = noExecuteTaintFor(node);
  if (!taint) return [];
  const nodeName = node.metadata?.name;
  const elapsed = nowMs - notReadySinceMs;
  return pods
    .filter((p) => p.spec?.nodeName === nodeName && !p.metadata?.deletionTimestamp)
    .filter((p) => p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed")
    .filter((p) => elapsed >= tolerationMs(p.spec?.tolerations ?? [], taint, evictionMs))
    .sort((a, b) => {
      const ka = `${a.metadata?.namespace ?? ""}/${a.metadata?.name ?? ""}`;
      const kb = `${b.metadata?.namespace ?? ""}/${b.metadata?.name ?? ""}`;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
}
