/**
 * The scheduling decision for one pod (pkg/scheduler/schedule_one.go): filter the nodes it may
 * run on, score the feasible ones, bind to the best. Filters, in the order they run (the first
 * failing one gives the node's reason, as the framework does without runAllFilters):
 *   1. node Ready — Kubernetes does this through the node.kubernetes.io/not-ready|unreachable
 *      NoSchedule taints the lifecycle controller adds; tolerating those taints passes here too;
 *   2. NodeUnschedulable (plugins/nodeunschedulable): spec.unschedulable, unless tolerated;
 *   3. TaintToleration (plugins/tainttoleration): NoSchedule and NoExecute taints;
 *   4. NodeAffinity (plugins/nodeaffinity): spec.nodeSelector and the required node affinity.
 * Score: spreading, the node with the fewest non-terminated pods, ties by name.
 */
import type { Node, NodeSelectorTerm, Pod, Taint } from "kubernetes-types/core/v1.js";
import { labelSelectorFromSet, matchesLabels, nodeSelectorRequirementsAsSelector, objectSelectorMatches } from "../../../cluster/selectors.ts";
import { NodeTaintKey, nodeReadyStatus, toleratesTaint } from "./nodelifecycle.ts";

export { toleratesTaint } from "./nodelifecycle.ts";

export type ScheduleResult = { kind: "bind"; nodeName: string } | { kind: "unschedulable"; message: string };

/** Filter failure reasons, worded as the scheduler plugins word them. */
export const FilterReason = {
  NotReady: "node(s) were not ready",
  Unschedulable: "node(s) were unschedulable",
  NodeAffinity: "node(s) didn't match Pod's node affinity/selector",
  /** NodeResourcesFit: the node already runs status.allocatable.pods pods. */
  TooManyPods: "Too many pods",
} as const;

/** framework/types.go: ErrNoNodesAvailable and NoNodeAvailableMsg. */
export const NO_NODES_AVAILABLE = "no nodes available to schedule pods";

export function untoleratedTaintReason(taint: Taint): string {
  return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ""}}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Why `pod` cannot run on `node`, or undefined when it can. */
export function filterNode(pod: Pod, node: Node): string | undefined {
  const tolerations = pod.spec?.tolerations ?? [];
  const tolerates = (taint: Taint) => tolerations.some((t) => toleratesTaint(t, taint));

  const ready = nodeReadyStatus(node);
  if (ready !== "True") {
    const key = ready === "False" ? NodeTaintKey.NotReady : NodeTaintKey.Unreachable;
    if (!tolerates({ key, effect: "NoSchedule" })) return FilterReason.NotReady;
  }

  if (node.spec?.unschedulable && !tolerates({ key: NodeTaintKey.Unschedulable, effect: "NoSchedule" })) {
    return FilterReason.Unschedulable;
  }

  // helper.DoNotScheduleTaintsFilterFunc: NoSchedule and NoExecute; the first untolerated one is reported.
  for (const taint of node.spec?.taints ?? []) {
    if (taint.effect !== "NoSchedule" && taint.effect !== "NoExecute") continue;
    if (!tolerates(taint)) return untoleratedTaintReason(taint);
  }

  if (!matchesNodeAffinity(pod, node)) return FilterReason.NodeAffinity;
  return undefined;
}

/**
 * nodeSelector (every label equal) and requiredDuringSchedulingIgnoredDuringExecution (terms
 * ORed), matched by cluster/selectors.ts as component-helpers/scheduling/corev1/nodeaffinity does.
 */
export function matchesNodeAffinity(pod: Pod, node: Node): boolean {
  const labels = node.metadata?.labels ?? {};
  if (!matchesLabels(labelSelectorFromSet(pod.spec?.nodeSelector ?? {}), labels)) return false;
  const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (!required) return true;
  return required.nodeSelectorTerms.some((term) => matchesTerm(term, node));
}

// nodeaffinity.go newNodeSelectorTerm: an empty term matches nothing; a term that does not parse
// (a bad operator, a non-integer Gt value) matches nothing either.
function matchesTerm(term: NodeSelectorTerm, node: Node): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false;
  if (exprs.length > 0 && !objectSelectorMatches(nodeSelectorRequirementsAsSelector(exprs), node.metadata?.labels)) return false;
  if (fields.some((r) => r.key !== "metadata.name")) return false;
  return fields.length === 0 || objectSelectorMatches(nodeSelectorRequirementsAsSelector(fields), { "metadata.name": node.metadata?.name ?? "" });
}

/** Pods that occupy a node: bound to it, not being deleted, not finished. */
export function isPodOccupying(p: Pod, nodeName: string): boolean {
  return p.spec?.nodeName === nodeName && !p.metadata?.deletionTimestamp && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed";
}

/**
 * framework/types.go FitError.Error: "0/N nodes are available: " + the "count reason" strings
 * sorted as strings (Go's sort.Strings, so byte order of the whole "2 node(s) ..." text) + ".".
 */
export function fitErrorMessage(numNodes: number, reasons: ReadonlyMap<string, number>): string {
  const parts = [...reasons].map(([reason, n]) => `${n} ${reason}`).sort(cmp);
  return `0/${numNodes} nodes are available: ${parts.join(", ")}.`;
}

/**
 * Chooses a node for an unbound pod. A pod that already names its node is returned as bound
 * there (the scheduler never sees those: it only watches pods with an empty spec.nodeName).
 */
export function schedule(pod: Pod, nodes: Node[], pods: Pod[]): ScheduleResult {
  if (pod.spec?.nodeName) return { kind: "bind", nodeName: pod.spec.nodeName };
  if (nodes.length === 0) return { kind: "unschedulable", message: NO_NODES_AVAILABLE };

  // Pods per node, counted once: the filter (allocatable pods) and the spreading score use it.
  const self = pod.metadata?.uid;
  const loads = new Map<string, number>();
  for (const p of pods) {
    const n = p.spec?.nodeName;
    if (n && isPodOccupying(p, n) && (self === undefined || p.metadata?.uid !== self)) loads.set(n, (loads.get(n) ?? 0) + 1);
  }
  const reasons = new Map<string, number>();
  const feasible: Node[] = [];
  for (const node of nodes) {
    const capacity = Number(node.status?.allocatable?.pods ?? Infinity);
    const reason = filterNode(pod, node) ?? ((loads.get(node.metadata?.name ?? "") ?? 0) >= capacity ? FilterReason.TooManyPods : undefined);
    if (reason === undefined) feasible.push(node);
    else reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  if (feasible.length === 0) return { kind: "unschedulable", message: fitErrorMessage(nodes.length, reasons) };

  let best: { name: string; load: number } | undefined;
  for (const node of feasible) {
    const name = node.metadata?.name ?? "";
    const load = loads.get(name) ?? 0;
    if (!best || load < best.load || (load === best.load && cmp(name, best.name) < 0)) best = { name, load };
  }
  return { kind: "bind", nodeName: best!.name };
}
