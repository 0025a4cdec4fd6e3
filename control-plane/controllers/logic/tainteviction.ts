/**
 * Taint-based eviction (pkg/controller/tainteviction/taint_eviction.go): a pod bound to a node
 * with NoExecute taints is deleted at once when it does not tolerate one of them, after the
 * smallest tolerationSeconds of the tolerations it uses otherwise, and never when they all
 * tolerate forever. Pure: the caller passes the time.
 *
 * Kubernetes counts the toleration from when its controller first saw the pod under the taints
 * (an in-memory queue that a restart empties); this counts from the taints' timeAdded, which
 * the node lifecycle controller stores with every NoExecute taint, so a restarted control
 * plane keeps the deadlines (`firstSeenMs` stands in for a taint without one).
 */
import type { Node, Pod, Taint, Toleration } from "kubernetes-types/core/v1.js";
import { parseTimeMs, toleratesTaint } from "./nodelifecycle.ts";

export type EvictionDecision =
  /** The node has no NoExecute taint: nothing to do. */
  | { kind: "none" }
  /** Every NoExecute taint is tolerated forever. */
  | { kind: "tolerated" }
  /** Delete the pod now; `taint` is what it does not tolerate, or whose tolerationSeconds ran out. */
  | { kind: "evict"; taint: Taint; deadlineMs: number }
  /** Look again in `inMs`. */
  | { kind: "wait"; deadlineMs: number; inMs: number };

/**
 * v1helper.GetMatchingTolerations: for each taint the first toleration that tolerates it, or
 * the first taint that none tolerates.
 */
export function matchingTolerations(taints: readonly Taint[], tolerations: readonly Toleration[]): { used: Toleration[] } | { untolerated: Taint } {
  const used: Toleration[] = [];
  for (const taint of taints) {
    const t = tolerations.find((x) => toleratesTaint(x, taint));
    if (!t) return { untolerated: taint };
    used.push(t);
  }
  return { used };
}

/**
 * getMinTolerationTime: the smallest tolerationSeconds in ms (<= 0 is at once), Infinity when
 * none sets one (tolerate forever).
 */
export function minTolerationMs(used: readonly Toleration[]): number {
  let min = Infinity;
  for (const t of used) {
    const s = t.tolerationSeconds;
    if (typeof s !== "number" || !Number.isFinite(s)) continue;
    if (s <= 0) return 0;
    min = Math.min(min, s * 1000);
  }
  return min;
}

/** A pod the taint eviction controller looks at: bound, not being deleted, not finished. */
export function evictable(pod: Pod): boolean {
  return !!pod.spec?.nodeName && !pod.metadata?.deletionTimestamp && pod.status?.phase !== "Succeeded" && pod.status?.phase !== "Failed";
}

/** processPodOnNode: what to do with `pod` on `node` at `nowWallMs`. */
export function evictionDecision(pod: Pod, node: Node | undefined, nowWallMs: number, firstSeenMs: number = nowWallMs): EvictionDecision {
  // Stored objects passed validation, but a reader does not bet the controller on it.
  const taints = arrayOf<Taint>(node?.spec?.taints).filter((t) => t?.effect === "NoExecute");
  if (taints.length === 0 || !evictable(pod)) return { kind: "none" };
  const match = matchingTolerations(taints, arrayOf<Toleration>(pod.spec?.tolerations).filter((t) => !!t && typeof t === "object"));
  if ("untolerated" in match) return { kind: "evict", taint: match.untolerated, deadlineMs: nowWallMs };
  const min = minTolerationMs(match.used);
  if (min === Infinity) return { kind: "tolerated" };
  // The toleration runs from when the pod first came under a NoExecute taint of the node.
  const added = taints.map((t) => parseTimeMs(t.timeAdded) ?? firstSeenMs);
  const startMs = Math.min(...added);
  const deadlineMs = startMs + min;
  if (nowWallMs >= deadlineMs) {
    // The taint whose toleration is the shortest: what the event names.
    const i = match.used.findIndex((t) => Math.max(0, t.tolerationSeconds ?? Infinity) * 1000 === min);
    return { kind: "evict", taint: taints[Math.max(0, i)]!, deadlineMs };
  }
  return { kind: "wait", deadlineMs, inMs: deadlineMs - nowWallMs };
}

function arrayOf<T>(v: unknown): T[] {
  return Array.isArray(v) ? (v as T[]) : [];
}
