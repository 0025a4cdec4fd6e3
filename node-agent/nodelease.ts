/**
 * How a node-agent tells the control plane it lives, as a kubelet does: it renews its Lease in
 * kube-node-lease every renew interval (pkg/kubelet/nodelease, k8s.io/component-helpers/
 * apimachinery/lease/controller.go), and posts its Ready condition when it changed or has not
 * been posted for nodeStatusReportFrequency (pkg/kubelet/kubelet_node_status.go
 * updateNodeStatus). The node lifecycle controller takes the later of the two. Pure: the
 * agent passes the time and does the I/O.
 */
import type { KubeObject } from "../cluster/store.ts";

/** The kubelet renews every quarter of the lease's duration (kubelet.go nodeLeaseRenewIntervalFraction). */
export const LEASE_RENEW_FRACTION = 0.25;

/** The kubelet's nodeStatusReportFrequency default: a Ready condition unchanged is posted again after this. */
export const NODE_STATUS_REPORT_MS = 5 * 60_000;

/** leaseDurationSeconds for a renew interval of `renewSeconds` (the inverse of the kubelet's fraction). */
export function leaseDurationSeconds(renewSeconds: number): number {
  return Math.max(1, Math.round(renewSeconds / LEASE_RENEW_FRACTION));
}

/** metav1.MicroTime as the API serializes it (RFC 3339, microseconds): a Lease's renewTime. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Whether the agent should post its Ready condition now: it has not in this run (a restarted
 * agent announces itself), the stored condition says otherwise (Unknown after the controller
 * gave up on it, say), or it was last posted longer ago than `reportMs`. `self` is the node's
 * own Node object as its watch shows it; a node without one (deleted) posts nothing.
 */
export function nodeStatusDue(self: KubeObject | undefined, ready: boolean, postedThisRun: boolean, nowWallMs: number, reportMs = NODE_STATUS_REPORT_MS): boolean {
  if (!self) return false;
  if (!postedThisRun) return true;
  const conditions = (self.status as { conditions?: unknown } | undefined)?.conditions;
  const c = Array.isArray(conditions) ? (conditions as Array<{ type?: unknown; status?: unknown; lastHeartbeatTime?: unknown } | null>).find((x) => x?.type === "Ready") : undefined;
  if (!c || c.status !== (ready ? "True" : "False")) return true;
  const heartbeat = typeof c.lastHeartbeatTime === "string" ? Date.parse(c.lastHeartbeatTime) : NaN;
  return !Number.isFinite(heartbeat) || nowWallMs - heartbeat >= reportMs;
}
