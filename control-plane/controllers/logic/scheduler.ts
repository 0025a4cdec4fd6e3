/**
 * The scheduling decision for one pod (pkg/scheduler/schedule_one.go): filter the nodes it may
 * run on, score the feasible ones, bind to the best. Filters, in the order they run (the first
 * failing one gives the node's reason, as the framework does without runAllFilters):
 *   1. node Ready — Kubernetes does this through the node.kubernetes.io/not-ready|unreachable
 *      NoSchedule taints the lifecycle controller adds; tolerating those taints passes here too;
 *   2. NodeUnschedulable (plugins/nodeunschedulable): spec.unschedulable, unless tolerated;
 *   3. TaintToleration (plugins/tainttoleration): NoSchedule and NoExecute taints;
 *   4. NodeAffinity (plugins/nodeaffinity): spec.nodeSelector and the required node affinity;
 *   5. NodeResourcesFit, for the one resource an emulated node runs out of: allocatable pods;
 *   6. PodTopologySpread (plugins/podtopologyspread filtering.go): the pod's own
 *      topologySpreadConstraints with whenUnsatisfiable DoNotSchedule (the system defaults are all
 *      ScheduleAnyway, so they never filter): a node without the topology label fails, and so does
 *      one where matching pods in its domain + 1 if the pod matches itself - the fewest in any
 *      domain (0 when fewer than minDomains domains) would exceed maxSkew;
 *   7. InterPodAffinity (plugins/interpodaffinity filtering.go): the pod's required podAffinity,
 *      its required podAntiAffinity, then the required podAntiAffinity of the pods already placed.
 * Score, each plugin's normalized 0..100 times its weight in the default profile (apis/config/v1
 * default_plugins.go), summed; the highest wins, ties by node name (Kubernetes picks at random):
 *   - PodTopologySpread, weight 2, scoring.go. Constraints: the pod's own ScheduleAnyway ones when
 *     it has any topologySpreadConstraints, else the system defaults (maxSkew 3 on
 *     kubernetes.io/hostname, 5 on topology.kubernetes.io/zone) with helper.DefaultSelector's
 *     selector: the selectors of the Services of the pod's namespace that select it, and the
 *     spec.selector of its controlling ReplicaSet, StatefulSet or ReplicationController; an empty
 *     selector (a bare pod) leaves the plugin out. Per constraint, the matching pods (same
 *     namespace, not terminating) are counted per topology value, on every node the pod's node
 *     affinity admits (nodeAffinityPolicy Honor, the default; nodeTaintsPolicy Honor leaves out
 *     nodes with a taint it does not tolerate too), a hostname's on the node itself; a node scores
 *     round(sum of count * ln(domains + 2) + maxSkew - 1) over the constraints whose label it has,
 *     where domains is the number of feasible nodes for the hostname and of distinct values
 *     among them otherwise; NormalizeScore reverses it, 100 * (max + min - s) / max
 *     (truncated; 100 for all when max is 0), so the node with the fewest matching pods scores
 *     100. With the system defaults a node without the zone label still scores by hostname;
 *     with the pod's own constraints a node lacking one of the keys scores 0.
 *   - InterPodAffinity, weight 2, scoring.go: for every pod already placed on a node with the
 *     term's topology label, + the weight of each preferred podAffinity term of the incoming pod
 *     it matches, - the weight of each preferred podAntiAffinity term; and the other way round,
 *     + / - the weights of its own preferred terms the incoming pod matches, + 1
 *     (hardPodAffinityWeight) per required podAffinity term of it the incoming pod matches. The
 *     sum is kept per topology pair and a node scores the pairs of its labels; NormalizeScore
 *     maps min..max to 0..100 (truncated). So kubeadm's coredns (preferred anti-affinity on
 *     itself by kubernetes.io/hostname, weight 100) scores 0 on a node holding a replica and 100
 *     elsewhere, and two replicas land on two nodes when two are feasible.
 *   - fewest pods, weight 1: a stand-in for NodeResourcesFit (LeastAllocated) and
 *     NodeResourcesBalancedAllocation, which score requests of CPU and memory an emulated pod
 *     does not make. Every pod is taken to request one unit of a resource the node has
 *     status.allocatable.pods of (110, kubelet's maxPods, when unset), scored as LeastAllocated
 *     does, (allocatable - pods) * 100 / allocatable, but not truncated, so one pod more always
 *     scores less. A pod moves it by 100 / allocatable points (under 1 on a node of 110 or more),
 *     against steps of tens of points in the weight-2 plugins: it is the lowest-weight
 *     tie-breaker among nodes those score alike (and what decides alone for a bare pod), and
 *     outweighs them only when loads differ by dozens of pods, as resource scores would.
 * Affinity terms as framework.AffinityTerm: the label selector (absent selects nothing), the
 * namespaces listed, or the term owner's own namespace when neither namespaces nor a
 * namespaceSelector is given, or those whose labels the namespaceSelector matches (`{}`: all).
 * Pods counted are the occupying ones (bound, not terminating, not finished). Not done:
 * matchLabelKeys/mismatchLabelKeys of affinity terms (the API server would fold them into the
 * selector); a spread constraint's matchLabelKeys are merged here, as the plugin does.
 */
import type { ReplicaSet, StatefulSet } from "kubernetes-types/apps/v1.js";
import type { Node, NodeSelectorTerm, Pod, PodAffinityTerm, ReplicationController, Service, Taint, TopologySpreadConstraint, WeightedPodAffinityTerm } from "kubernetes-types/core/v1.js";
import {
  labelSelectorAsSelector,
  labelSelectorFromSet,
  matchesLabels,
  nodeSelectorRequirementsAsSelector,
  objectSelectorMatches,
  type LabelSelector,
  type ObjectSelector,
} from "../../../cluster/selectors.ts";
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
  /** InterPodAffinity ErrReasonAffinityRulesNotMatch: the pod's required podAffinity. */
  AffinityRulesNotMatch: "node(s) didn't match pod affinity rules",
  /** InterPodAffinity ErrReasonAntiAffinityRulesNotMatch: the pod's required podAntiAffinity. */
  AntiAffinityRulesNotMatch: "node(s) didn't match pod anti-affinity rules",
  /** InterPodAffinity ErrReasonExistingAntiAffinityRulesNotMatch: a placed pod's required podAntiAffinity. */
  ExistingAntiAffinityRulesNotMatch: "node(s) didn't satisfy existing pods anti-affinity rules",
  /** PodTopologySpread ErrReasonConstraintsNotMatch: a DoNotSchedule constraint's maxSkew would be exceeded. */
  SpreadConstraintsNotMatch: "node(s) didn't match pod topology spread constraints",
  /** PodTopologySpread ErrReasonNodeLabelNotMatch: the node lacks a DoNotSchedule constraint's topology key. */
  SpreadNodeLabelNotMatch: "node(s) didn't match pod topology spread constraints (missing required label)",
} as const;

/** framework.MaxNodeScore. */
export const MAX_NODE_SCORE = 100;
/**
 * Score plugin weights: PodTopologySpread and InterPodAffinity 2 as in the default profile; the
 * fewest-pods score stands for NodeResourcesFit and BalancedAllocation (1 each there) as the
 * lowest-weight tie-breaker.
 */
export const ScoreWeight = { PodTopologySpread: 2, InterPodAffinity: 2, FewestPods: 1 } as const;
/** kubelet's default --max-pods: the allocatable pods of a node that does not say. */
export const DEFAULT_MAX_PODS = 110;
/** InterPodAffinityArgs.HardPodAffinityWeight default. */
export const HARD_POD_AFFINITY_WEIGHT = 1;
/** The label the admission sets on every namespace: what a namespaceSelector sees without a lookup. */
const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

export interface ScheduleOptions {
  /**
   * The labels of a namespace, for namespaceSelector terms. Without it a namespace's labels are
   * taken to be the one the API server sets on every namespace, kubernetes.io/metadata.name.
   */
  readonly namespaceLabels?: (namespace: string) => Readonly<Record<string, string>> | undefined;
  /**
   * helper.DefaultSelector's listers, for PodTopologySpread's default constraints: the Services
   * of a namespace, and the ReplicaSet, StatefulSet or ReplicationController a pod's controller
   * ownerReference names. Without them a pod has no default selector and is not spread by them.
   */
  readonly services?: (namespace: string) => readonly Service[];
  readonly replicaSet?: (namespace: string, name: string) => ReplicaSet | undefined;
  readonly statefulSet?: (namespace: string, name: string) => StatefulSet | undefined;
  readonly replicationController?: (namespace: string, name: string) => ReplicationController | undefined;
}

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

// ------------------------------------------------------------------ InterPodAffinity

/** framework.AffinityTerm: who a term selects, and the node label it groups nodes by. */
interface AffinityTerm {
  readonly namespaces: ReadonlySet<string>;
  readonly namespaceSelector: ObjectSelector;
  readonly selector: ObjectSelector;
  readonly topologyKey: string;
}

interface WeightedTerm {
  readonly term: AffinityTerm;
  readonly weight: number;
}

/** The terms of one pod, parsed once (framework.PodInfo). */
interface PodTerms {
  readonly requiredAffinity: readonly AffinityTerm[];
  readonly requiredAntiAffinity: readonly AffinityTerm[];
  readonly preferredAffinity: readonly WeightedTerm[];
  readonly preferredAntiAffinity: readonly WeightedTerm[];
}

const NO_TERMS: PodTerms = { requiredAffinity: [], requiredAntiAffinity: [], preferredAffinity: [], preferredAntiAffinity: [] };

/** newAffinityTerm and getNamespacesFromPodAffinityTerm; a selector that does not parse selects nothing. */
function affinityTerm(owner: Pod, t: PodAffinityTerm): AffinityTerm {
  const listed = Array.isArray(t.namespaces) ? t.namespaces : [];
  const own = owner.metadata?.namespace ?? "";
  return {
    namespaces: new Set(listed.length === 0 && !t.namespaceSelector ? [own] : listed),
    namespaceSelector: labelSelectorAsSelector(t.namespaceSelector),
    selector: labelSelectorAsSelector(t.labelSelector),
    topologyKey: typeof t.topologyKey === "string" ? t.topologyKey : "",
  };
}

function weighted(owner: Pod, terms: WeightedPodAffinityTerm[] | undefined): WeightedTerm[] {
  return (Array.isArray(terms) ? terms : []).filter((w) => w && w.podAffinityTerm).map((w) => ({ term: affinityTerm(owner, w.podAffinityTerm), weight: Number(w.weight) || 0 }));
}

function podTerms(pod: Pod): PodTerms {
  const a = pod.spec?.affinity;
  if (!a || (!a.podAffinity && !a.podAntiAffinity)) return NO_TERMS;
  const required = (terms: PodAffinityTerm[] | undefined) => (Array.isArray(terms) ? terms : []).filter(Boolean).map((t) => affinityTerm(pod, t));
  return {
    requiredAffinity: required(a.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution),
    requiredAntiAffinity: required(a.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution),
    preferredAffinity: weighted(pod, a.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution),
    preferredAntiAffinity: weighted(pod, a.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution),
  };
}

const hasTerms = (t: PodTerms): boolean => t.requiredAffinity.length + t.requiredAntiAffinity.length + t.preferredAffinity.length + t.preferredAntiAffinity.length > 0;

/** AffinityTerm.Matches: the pod's namespace is the term's (listed, or selected), and its labels match. */
function termMatches(term: AffinityTerm, pod: Pod, nsLabels: (ns: string) => Readonly<Record<string, string>>): boolean {
  const ns = pod.metadata?.namespace ?? "";
  if (!term.namespaces.has(ns) && !objectSelectorMatches(term.namespaceSelector, nsLabels(ns))) return false;
  return objectSelectorMatches(term.selector, pod.metadata?.labels ?? {});
}

/** A topology pair (key, value) as one map key. */
const pair = (key: string, value: string): string => `${key}\u0000${value}`;

/** A placed pod with the labels of its node. */
interface Placed {
  readonly pod: Pod;
  readonly terms: PodTerms;
  readonly nodeLabels: Readonly<Record<string, string>>;
}

/** What InterPodAffinity's PreFilter computes: matched term counts per topology pair. */
interface AffinityState {
  readonly terms: PodTerms;
  /** Placed pods whose required anti-affinity selects the incoming pod, per pair of their node. */
  readonly existingAnti: ReadonlyMap<string, number>;
  /** Placed pods matching all of the incoming pod's required affinity terms, per term pair. */
  readonly affinity: ReadonlyMap<string, number>;
  /** Placed pods matching each required anti-affinity term of the incoming pod, per term pair. */
  readonly anti: ReadonlyMap<string, number>;
  /** The incoming pod matches all its own required affinity terms (the first of a group may go anywhere). */
  readonly selfMatch: boolean;
}

function bump(m: Map<string, number>, labels: Readonly<Record<string, string>>, key: string, by = 1): void {
  const v = labels[key];
  if (v !== undefined) m.set(pair(key, v), (m.get(pair(key, v)) ?? 0) + by);
}

function affinityState(pod: Pod, terms: PodTerms, placed: readonly Placed[], nsLabels: (ns: string) => Readonly<Record<string, string>>): AffinityState {
  const existingAnti = new Map<string, number>();
  const affinity = new Map<string, number>();
  const anti = new Map<string, number>();
  for (const p of placed) {
    for (const t of p.terms.requiredAntiAffinity) if (termMatches(t, pod, nsLabels)) bump(existingAnti, p.nodeLabels, t.topologyKey);
    if (terms.requiredAffinity.length > 0 && terms.requiredAffinity.every((t) => termMatches(t, p.pod, nsLabels))) {
      for (const t of terms.requiredAffinity) bump(affinity, p.nodeLabels, t.topologyKey);
    }
    for (const t of terms.requiredAntiAffinity) if (termMatches(t, p.pod, nsLabels)) bump(anti, p.nodeLabels, t.topologyKey);
  }
  const selfMatch = terms.requiredAffinity.length > 0 && terms.requiredAffinity.every((t) => termMatches(t, pod, nsLabels));
  return { terms, existingAnti, affinity, anti, selfMatch };
}

/** InterPodAffinity Filter: why `node` breaks an inter-pod rule, or undefined. */
function filterInterPodAffinity(s: AffinityState, node: Node): string | undefined {
  const labels = node.metadata?.labels ?? {};
  // satisfyPodAffinity: every term's topology label on the node, and a matching pod in its domain.
  let podsExist = true;
  for (const t of s.terms.requiredAffinity) {
    const v = labels[t.topologyKey];
    if (v === undefined) return FilterReason.AffinityRulesNotMatch;
    if ((s.affinity.get(pair(t.topologyKey, v)) ?? 0) <= 0) podsExist = false;
  }
  if (!podsExist && !(s.affinity.size === 0 && s.selfMatch)) return FilterReason.AffinityRulesNotMatch;
  // satisfyPodAntiAffinity.
  for (const t of s.terms.requiredAntiAffinity) {
    const v = labels[t.topologyKey];
    if (v !== undefined && (s.anti.get(pair(t.topologyKey, v)) ?? 0) > 0) return FilterReason.AntiAffinityRulesNotMatch;
  }
  // satisfyExistingPodsAntiAffinity.
  if (s.existingAnti.size > 0) {
    for (const [k, v] of Object.entries(labels)) if ((s.existingAnti.get(pair(k, v)) ?? 0) > 0) return FilterReason.ExistingAntiAffinityRulesNotMatch;
  }
  return undefined;
}

/**
 * scoring.go PreScore: the summed weights per topology pair (processExistingPod for every placed
 * pod on a labelled node). Empty when no term applies (the plugin then skips).
 */
function topologyScores(pod: Pod, terms: PodTerms, placed: readonly Placed[], nsLabels: (ns: string) => Readonly<Record<string, string>>): Map<string, number> {
  const scores = new Map<string, number>();
  const add = (term: AffinityTerm, weight: number, target: Pod, labels: Readonly<Record<string, string>>, sign: 1 | -1) => {
    if (termMatches(term, target, nsLabels)) bump(scores, labels, term.topologyKey, weight * sign);
  };
  for (const p of placed) {
    if (Object.keys(p.nodeLabels).length === 0) continue;
    for (const w of terms.preferredAffinity) add(w.term, w.weight, p.pod, p.nodeLabels, 1);
    for (const w of terms.preferredAntiAffinity) add(w.term, w.weight, p.pod, p.nodeLabels, -1);
    for (const t of p.terms.requiredAffinity) add(t, HARD_POD_AFFINITY_WEIGHT, pod, p.nodeLabels, 1);
    for (const w of p.terms.preferredAffinity) add(w.term, w.weight, pod, p.nodeLabels, 1);
    for (const w of p.terms.preferredAntiAffinity) add(w.term, w.weight, pod, p.nodeLabels, -1);
  }
  return scores;
}

/** Score then NormalizeScore for the feasible nodes: min..max to 0..MAX_NODE_SCORE, truncated; all 0 when nothing applies. */
function normalizedAffinityScores(scores: ReadonlyMap<string, number>, nodes: readonly Node[]): number[] {
  if (scores.size === 0) return nodes.map(() => 0);
  const raw = nodes.map((n) => {
    let sum = 0;
    for (const [k, v] of Object.entries(n.metadata?.labels ?? {})) sum += scores.get(pair(k, v)) ?? 0;
    return sum;
  });
  const min = Math.min(...raw);
  const diff = Math.max(...raw) - min;
  return raw.map((r) => (diff > 0 ? Math.trunc((MAX_NODE_SCORE * (r - min)) / diff) : 0));
}

// ------------------------------------------------------------------ PodTopologySpread

export const LABEL_HOSTNAME = "kubernetes.io/hostname";
export const LABEL_TOPOLOGY_ZONE = "topology.kubernetes.io/zone";

/** plugin.go systemDefaultConstraints: how a pod without constraints of its own is spread. */
export const SYSTEM_DEFAULT_CONSTRAINTS: readonly TopologySpreadConstraint[] = [
  { topologyKey: LABEL_HOSTNAME, whenUnsatisfiable: "ScheduleAnyway", maxSkew: 3 },
  { topologyKey: LABEL_TOPOLOGY_ZONE, whenUnsatisfiable: "ScheduleAnyway", maxSkew: 5 },
];

type Unsatisfiable = "DoNotSchedule" | "ScheduleAnyway";

/** common.go topologySpreadConstraint: a constraint with its selector parsed and its defaults filled in. */
interface SpreadConstraint {
  readonly maxSkew: number;
  readonly topologyKey: string;
  readonly selector: ObjectSelector;
  readonly minDomains: number;
  /** nodeAffinityPolicy Honor (the default): only nodes the pod's nodeSelector and required node affinity admit count. */
  readonly honorNodeAffinity: boolean;
  /** nodeTaintsPolicy Honor (the default is Ignore): only nodes whose NoSchedule/NoExecute taints the pod tolerates count. */
  readonly honorNodeTaints: boolean;
}

/** A label's value, own properties only (labels come from stored JSON). */
function labelValue(labels: Readonly<Record<string, string>>, key: string): string | undefined {
  return Object.hasOwn(labels, key) && typeof labels[key] === "string" ? labels[key] : undefined;
}

const nodeLabels = (n: Node): Readonly<Record<string, string>> => n.metadata?.labels ?? {};

/** A label map (a Service's or ReplicationController's spec.selector), or undefined when it is not one. */
function stringMap(v: unknown): Record<string, string> | undefined {
  if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
  return Object.values(v).every((x) => typeof x === "string") ? (v as Record<string, string>) : undefined;
}

/**
 * common.go filterTopologySpreadConstraints: the constraints with this whenUnsatisfiable, the
 * matchLabelKeys' values of the pod's labels merged into the selector (mergeLabelSetWithSelector:
 * into an absent selector too, which then selects by them alone). One validation would reject
 * (maxSkew not a positive integer, no topologyKey) is skipped rather than stopping the scheduler.
 */
function spreadConstraints(list: readonly TopologySpreadConstraint[], podLabels: Readonly<Record<string, string>>, action: Unsatisfiable): SpreadConstraint[] {
  const out: SpreadConstraint[] = [];
  for (const c of list) {
    if (!c || c.whenUnsatisfiable !== action) continue;
    const maxSkew = Number(c.maxSkew);
    if (!Number.isInteger(maxSkew) || maxSkew < 1 || typeof c.topologyKey !== "string" || c.topologyKey === "") continue;
    let selector = labelSelectorAsSelector(c.labelSelector);
    const set: Record<string, string> = {};
    for (const key of Array.isArray(c.matchLabelKeys) ? c.matchLabelKeys : []) {
      const v = labelValue(podLabels, key);
      if (v !== undefined) set[key] = v;
    }
    if (Object.keys(set).length > 0 && selector.kind !== "error") {
      const merged = labelSelectorFromSet(set).requirements;
      selector = { kind: "ok", value: { requirements: selector.kind === "ok" ? [...merged, ...selector.value.requirements] : merged } };
    }
    const minDomains = Number(c.minDomains);
    out.push({
      maxSkew,
      topologyKey: c.topologyKey,
      selector,
      minDomains: Number.isInteger(minDomains) && minDomains > 0 ? minDomains : 1,
      honorNodeAffinity: c.nodeAffinityPolicy !== "Ignore",
      honorNodeTaints: c.nodeTaintsPolicy === "Honor",
    });
  }
  return out;
}

/**
 * helper.DefaultSelector: the labels of the selectors of the Services of the pod's namespace that
 * select it (a Service without a selector selects nothing), then the requirements of its
 * controller's selector: a ReplicationController's map merged into the labels, a ReplicaSet's or
 * StatefulSet's label selector added (one that does not parse adds nothing). The owner is the
 * ownerReference with controller: true, of exactly v1 ReplicationController or apps/v1
 * ReplicaSet/StatefulSet, looked up by name in the pod's namespace. Empty: no default spreading.
 */
export function defaultSelector(pod: Pod, opts: ScheduleOptions = {}): LabelSelector {
  const ns = pod.metadata?.namespace ?? "";
  const podLabels = pod.metadata?.labels ?? {};
  let set: Record<string, string> = {};
  for (const svc of opts.services?.(ns) ?? []) {
    const sel = stringMap(svc?.spec?.selector);
    if (sel && matchesLabels(labelSelectorFromSet(sel), podLabels)) set = { ...set, ...sel };
  }
  const fromSet = () => labelSelectorFromSet(set);
  const refs = pod.metadata?.ownerReferences;
  const owner = Array.isArray(refs) ? refs.find((r) => r?.controller === true) : undefined;
  if (!owner) return fromSet();
  const added = (sel: ObjectSelector): LabelSelector => ({ requirements: [...fromSet().requirements, ...(sel.kind === "ok" ? sel.value.requirements : [])] });
  switch (`${owner.apiVersion}|${owner.kind}`) {
    case "v1|ReplicationController": {
      const rc = opts.replicationController?.(ns, owner.name);
      if (rc) set = { ...set, ...(stringMap(rc.spec?.selector) ?? {}) };
      return fromSet();
    }
    case "apps/v1|ReplicaSet": {
      const rs = opts.replicaSet?.(ns, owner.name);
      return rs ? added(labelSelectorAsSelector(rs.spec?.selector)) : fromSet();
    }
    case "apps/v1|StatefulSet": {
      const ss = opts.statefulSet?.(ns, owner.name);
      return ss ? added(labelSelectorAsSelector(ss.spec?.selector)) : fromSet();
    }
    default:
      return fromSet();
  }
}

/**
 * PodTopologySpread's constraints for one extension point (getConstraints / initPreScoreState):
 * the pod's own with this whenUnsatisfiable when it has any, else the system defaults with the
 * default selector (buildDefaultConstraints), none when that selector is empty.
 */
function podSpreadConstraints(pod: Pod, action: Unsatisfiable, opts: ScheduleOptions): SpreadConstraint[] {
  const own = pod.spec?.topologySpreadConstraints;
  const podLabels = pod.metadata?.labels ?? {};
  if (Array.isArray(own) && own.length > 0) return spreadConstraints(own, podLabels, action);
  const constraints = spreadConstraints(SYSTEM_DEFAULT_CONSTRAINTS, podLabels, action);
  if (constraints.length === 0) return [];
  const selector = defaultSelector(pod, opts);
  if (selector.requirements.length === 0) return [];
  return constraints.map((c) => ({ ...c, selector: { kind: "ok", value: selector } }));
}

/** The NoSchedule/NoExecute taints of a node, with those the lifecycle controller would add for NotReady and cordoned nodes. */
function scheduleTaints(node: Node): Taint[] {
  const taints: Taint[] = [];
  const ready = nodeReadyStatus(node);
  if (ready !== "True") taints.push({ key: ready === "False" ? NodeTaintKey.NotReady : NodeTaintKey.Unreachable, effect: "NoSchedule" });
  if (node.spec?.unschedulable) taints.push({ key: NodeTaintKey.Unschedulable, effect: "NoSchedule" });
  for (const t of node.spec?.taints ?? []) if (t.effect === "NoSchedule" || t.effect === "NoExecute") taints.push(t);
  return taints;
}

/** common.go matchNodeInclusionPolicies: whether a node's pods count for a constraint. */
function nodeIncluded(c: SpreadConstraint, pod: Pod, node: Node): boolean {
  if (c.honorNodeAffinity && !matchesNodeAffinity(pod, node)) return false;
  if (c.honorNodeTaints) {
    const tolerations = pod.spec?.tolerations ?? [];
    if (scheduleTaints(node).some((taint) => !tolerations.some((t) => toleratesTaint(t, taint)))) return false;
  }
  return true;
}

/** nodeLabelsMatchSpreadConstraints: the node has every constraint's topology key. */
const hasAllKeys = (labels: Readonly<Record<string, string>>, cs: readonly SpreadConstraint[]): boolean => cs.every((c) => labelValue(labels, c.topologyKey) !== undefined);

/** common.go countPodsMatchSelector: the node's pods of the namespace, not terminating, the selector matches. */
function countMatching(pods: readonly Pod[] | undefined, selector: ObjectSelector, namespace: string): number {
  let n = 0;
  for (const p of pods ?? []) {
    if (p.metadata?.deletionTimestamp || (p.metadata?.namespace ?? "") !== namespace) continue;
    if (objectSelectorMatches(selector, p.metadata?.labels ?? {})) n++;
  }
  return n;
}

/** What PodTopologySpread's PreFilter computes: matching pods per topology value, and the fewest, per constraint. */
interface SpreadFilterState {
  readonly constraints: readonly SpreadConstraint[];
  readonly matchNum: ReadonlyArray<ReadonlyMap<string, number>>;
  /** minMatchNum: the fewest in a domain, 0 when fewer than minDomains domains. */
  readonly minMatch: readonly number[];
}

/** filtering.go calPreFilterState, over every node (with all the keys) and its pods. */
function spreadFilterState(pod: Pod, constraints: readonly SpreadConstraint[], nodes: readonly Node[], byNode: ReadonlyMap<string, readonly Pod[]>): SpreadFilterState {
  const ns = pod.metadata?.namespace ?? "";
  const matchNum = constraints.map(() => new Map<string, number>());
  for (const node of nodes) {
    const labels = nodeLabels(node);
    if (!hasAllKeys(labels, constraints)) continue;
    constraints.forEach((c, i) => {
      if (!nodeIncluded(c, pod, node)) return;
      const v = labelValue(labels, c.topologyKey)!;
      matchNum[i]!.set(v, (matchNum[i]!.get(v) ?? 0) + countMatching(byNode.get(node.metadata?.name ?? ""), c.selector, ns));
    });
  }
  const minMatch = constraints.map((c, i) => (matchNum[i]!.size < c.minDomains ? 0 : Math.min(...matchNum[i]!.values())));
  return { constraints, matchNum, minMatch };
}

/** filtering.go Filter: matching pods in the node's domain + self - the fewest must not exceed maxSkew. */
function filterPodTopologySpread(s: SpreadFilterState, pod: Pod, node: Node): string | undefined {
  const labels = nodeLabels(node);
  const podLabels = pod.metadata?.labels ?? {};
  for (const [i, c] of s.constraints.entries()) {
    const v = labelValue(labels, c.topologyKey);
    if (v === undefined) return FilterReason.SpreadNodeLabelNotMatch;
    const self = objectSelectorMatches(c.selector, podLabels) ? 1 : 0;
    if ((s.matchNum[i]!.get(v) ?? 0) + self - s.minMatch[i]! > c.maxSkew) return FilterReason.SpreadConstraintsNotMatch;
  }
  return undefined;
}

/** scoring.go topologyNormalizingWeight: ln(domains + 2), so the counts of a topology with few domains are not watered down. */
const topologyNormalizingWeight = (size: number): number => Math.log(size + 2);

/**
 * scoring.go PreScore, Score and NormalizeScore for the feasible nodes, in their order; all 0
 * when the plugin skips (no constraint). `all` are every node, whose pods count for the domains.
 */
function normalizedSpreadScores(pod: Pod, constraints: readonly SpreadConstraint[], requireAllTopologies: boolean, feasible: readonly Node[], all: readonly Node[], byNode: ReadonlyMap<string, readonly Pod[]>): number[] {
  if (constraints.length === 0 || all.length === 0) return feasible.map(() => 0);
  const ns = pod.metadata?.namespace ?? "";
  // initPreScoreState: nodes lacking a key are ignored (only with the pod's own constraints); the
  // domains of the feasible nodes per constraint; a hostname's counts are taken per node in Score.
  const ignored = feasible.map((n) => requireAllTopologies && !hasAllKeys(nodeLabels(n), constraints));
  const counts = constraints.map(() => new Map<string, number>());
  feasible.forEach((n, j) => {
    if (ignored[j]) return;
    constraints.forEach((c, i) => {
      if (c.topologyKey !== LABEL_HOSTNAME) counts[i]!.set(labelValue(nodeLabels(n), c.topologyKey) ?? "", 0);
    });
  });
  const scored = ignored.filter((x) => !x).length;
  const weights = constraints.map((c, i) => topologyNormalizingWeight(c.topologyKey === LABEL_HOSTNAME ? scored : counts[i]!.size));
  // PreScore: the matching pods of every node the constraint includes, into the domains above.
  for (const node of all) {
    const labels = nodeLabels(node);
    if (requireAllTopologies && !hasAllKeys(labels, constraints)) continue;
    constraints.forEach((c, i) => {
      if (!nodeIncluded(c, pod, node)) return;
      const v = labelValue(labels, c.topologyKey) ?? "";
      const have = counts[i]!.get(v);
      if (have !== undefined) counts[i]!.set(v, have + countMatching(byNode.get(node.metadata?.name ?? ""), c.selector, ns));
    });
  }
  // Score: count * weight + maxSkew - 1 for each constraint whose key the node has, rounded.
  const raw = feasible.map((n, j) => {
    if (ignored[j]) return 0;
    const labels = nodeLabels(n);
    let score = 0;
    constraints.forEach((c, i) => {
      const v = labelValue(labels, c.topologyKey);
      if (v === undefined) return;
      const cnt = c.topologyKey === LABEL_HOSTNAME ? countMatching(byNode.get(n.metadata?.name ?? ""), c.selector, ns) : (counts[i]!.get(v) ?? 0);
      score += cnt * weights[i]! + (c.maxSkew - 1);
    });
    return Math.round(score);
  });
  // NormalizeScore: fewer matching pods score higher; ignored nodes 0.
  let min = Infinity;
  let max = 0;
  raw.forEach((r, j) => {
    if (ignored[j]) return;
    min = Math.min(min, r);
    max = Math.max(max, r);
  });
  return raw.map((r, j) => (ignored[j] ? 0 : max === 0 ? MAX_NODE_SCORE : Math.trunc((MAX_NODE_SCORE * (max + min - r)) / max)));
}

// ------------------------------------------------------------------ fewest pods

/**
 * The stand-in for NodeResourcesFit's LeastAllocated (see the header): one unit per pod out of
 * the node's allocatable pods, (allocatable - pods) * 100 / allocatable, not truncated.
 */
function fewestPodsScores(nodes: readonly Node[], loads: ReadonlyMap<string, number>): number[] {
  return nodes.map((n) => {
    const allocatable = Number(n.status?.allocatable?.pods);
    const capacity = Number.isFinite(allocatable) && allocatable > 0 ? allocatable : DEFAULT_MAX_PODS;
    const pods = loads.get(n.metadata?.name ?? "") ?? 0;
    return (MAX_NODE_SCORE * Math.max(0, capacity - pods)) / capacity;
  });
}

// ------------------------------------------------------------------ the cycle

/** What one scheduling cycle knows of the pods already placed. */
interface Snapshot {
  /** Occupying pods per node name (the incoming pod excluded). */
  readonly loads: ReadonlyMap<string, number>;
  /** The occupying pods themselves, per node name. */
  readonly byNode: ReadonlyMap<string, readonly Pod[]>;
  /** Placed pods that matter to InterPodAffinity, with their node's labels. */
  readonly placed: readonly Placed[];
  readonly incoming: PodTerms;
  readonly nsLabels: (ns: string) => Readonly<Record<string, string>>;
}

function snapshot(pod: Pod, nodes: readonly Node[], pods: readonly Pod[], opts: ScheduleOptions): Snapshot {
  const self = pod.metadata?.uid;
  const loads = new Map<string, number>();
  const byNode = new Map<string, Pod[]>();
  const byName = new Map(nodes.map((n) => [n.metadata?.name ?? "", n]));
  const placed: Placed[] = [];
  const incoming = podTerms(pod);
  for (const p of pods) {
    const n = p.spec?.nodeName;
    if (!n || !isPodOccupying(p, n) || (self !== undefined && p.metadata?.uid === self)) continue;
    loads.set(n, (loads.get(n) ?? 0) + 1);
    let onNode = byNode.get(n);
    if (!onNode) byNode.set(n, (onNode = []));
    onNode.push(p);
    const node = byName.get(n);
    if (!node) continue;
    const terms = podTerms(p);
    // Only pods with terms matter, unless the incoming pod has some (then every pod may match them).
    if (hasTerms(incoming) || hasTerms(terms)) placed.push({ pod: p, terms, nodeLabels: node.metadata?.labels ?? {} });
  }
  const lookup = opts.namespaceLabels;
  const nsLabels = (ns: string) => lookup?.(ns) ?? { [NAMESPACE_NAME_LABEL]: ns };
  return { loads, byNode, placed, incoming, nsLabels };
}

/**
 * InterPodAffinity's normalized scores (0..100) of `nodes` taken as the feasible ones, in their
 * order; the pods placed on them are the ones counted.
 */
export function interPodAffinityScores(pod: Pod, nodes: Node[], pods: Pod[], opts: ScheduleOptions = {}): number[] {
  const s = snapshot(pod, nodes, pods, opts);
  return normalizedAffinityScores(topologyScores(pod, s.incoming, s.placed, s.nsLabels), nodes);
}

/**
 * PodTopologySpread's normalized scores (0..100) of `feasible` (every node when not given), in
 * their order; the pods on all of `nodes` count for the domains.
 */
export function podTopologySpreadScores(pod: Pod, nodes: Node[], pods: Pod[], opts: ScheduleOptions = {}, feasible: Node[] = nodes): number[] {
  const s = snapshot(pod, nodes, pods, opts);
  return spreadScoresOf(pod, feasible, nodes, s.byNode, opts);
}

function spreadScoresOf(pod: Pod, feasible: readonly Node[], all: readonly Node[], byNode: ReadonlyMap<string, readonly Pod[]>, opts: ScheduleOptions): number[] {
  // requireAllTopologies: with the pod's own constraints; the system defaults let a node without a zone score by hostname.
  const own = pod.spec?.topologySpreadConstraints;
  const requireAll = Array.isArray(own) && own.length > 0;
  return normalizedSpreadScores(pod, podSpreadConstraints(pod, "ScheduleAnyway", opts), requireAll, feasible, all, byNode);
}

/**
 * Chooses a node for an unbound pod. A pod that already names its node is returned as bound
 * there (the scheduler never sees those: it only watches pods with an empty spec.nodeName).
 */
export function schedule(pod: Pod, nodes: Node[], pods: Pod[], opts: ScheduleOptions = {}): ScheduleResult {
  if (pod.spec?.nodeName) return { kind: "bind", nodeName: pod.spec.nodeName };
  if (nodes.length === 0) return { kind: "unschedulable", message: NO_NODES_AVAILABLE };

  // Pods per node, counted once: the filters (allocatable pods, spread, inter-pod rules) and the scores use it.
  const { loads, byNode, placed, incoming, nsLabels } = snapshot(pod, nodes, pods, opts);
  const spread = spreadFilterState(pod, podSpreadConstraints(pod, "DoNotSchedule", opts), nodes, byNode);
  const affinity = affinityState(pod, incoming, placed, nsLabels);

  const reasons = new Map<string, number>();
  const feasible: Node[] = [];
  for (const node of nodes) {
    const capacity = Number(node.status?.allocatable?.pods ?? Infinity);
    const reason =
      filterNode(pod, node) ??
      ((loads.get(node.metadata?.name ?? "") ?? 0) >= capacity ? FilterReason.TooManyPods : undefined) ??
      filterPodTopologySpread(spread, pod, node) ??
      filterInterPodAffinity(affinity, node);
    if (reason === undefined) feasible.push(node);
    else reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  if (feasible.length === 0) return { kind: "unschedulable", message: fitErrorMessage(nodes.length, reasons) };

  const pts = spreadScoresOf(pod, feasible, nodes, byNode, opts);
  const ipa = normalizedAffinityScores(topologyScores(pod, incoming, placed, nsLabels), feasible);
  const fewest = fewestPodsScores(feasible, loads);
  let best: { name: string; score: number } | undefined;
  feasible.forEach((node, i) => {
    const name = node.metadata?.name ?? "";
    const score = ScoreWeight.PodTopologySpread * pts[i]! + ScoreWeight.InterPodAffinity * ipa[i]! + ScoreWeight.FewestPods * fewest[i]!;
    if (!best || score > best.score || (score === best.score && cmp(name, best.name) < 0)) best = { name, score };
  });
  return { kind: "bind", nodeName: best!.name };
}
