/**
 * The ReplicaSet controller's sync (pkg/controller/replicaset/replica_set.go syncReplicaSet,
 * manageReplicas, replica_set_utils.go calculateStatus): claim the pods (adopt orphans that
 * match, release owned ones that no longer do — pkg/controller/controller_ref_manager.go), create
 * or delete the difference to spec.replicas, report status. Level-triggered and pure: the
 * runtime applies the actions and calls again on any change. Kubernetes' "expectations" (which
 * stop a second sync from creating again before the informer has seen the first creations) are
 * the runtime's business: it must not call again with a pod list that predates its own writes.
 */
import type { LabelSelector, OwnerReference } from "kubernetes-types/meta/v1.js";
import type { Pod, PodTemplateSpec } from "kubernetes-types/core/v1.js";
import type { ReplicaSet, ReplicaSetStatus } from "kubernetes-types/apps/v1.js";
import { labelSelectorAsSelector, objectSelectorMatches } from "../../../cluster/selectors.ts";

// ---------------------------------------------------------------------------------------------
// Label selectors of objects: metav1.LabelSelectorAsSelector, cluster/selectors.ts.

export type LabelMatcher = (labels: Readonly<Record<string, string>>) => boolean;
export type MatcherResult = { kind: "ok"; value: LabelMatcher } | { kind: "error"; message: string };

/** A nil selector selects nothing, {} everything; matchLabels and matchExpressions are ANDed. */
export function selectorMatcher(sel: LabelSelector | undefined | null): MatcherResult {
  const parsed = labelSelectorAsSelector(sel);
  if (parsed.kind === "error") return parsed;
  return { kind: "ok", value: (labels) => objectSelectorMatches(parsed, labels) };
}

export function isEmptySelector(sel: LabelSelector | undefined | null): boolean {
  return !!sel && Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0;
}

// ---------------------------------------------------------------------------------------------
// Pod helpers (k8s.io/kubernetes/pkg/api/v1/pod util.go, pkg/controller/controller_utils.go).

export function isPodReady(p: Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** controller_utils.go IsPodActive: not Succeeded, not Failed, not being deleted. */
export function isPodActive(p: Pod): boolean {
  return p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed" && !p.metadata?.deletionTimestamp;
}

/** podutil.IsPodAvailable: Ready for at least minReadySeconds (strictly before now). */
export function isPodAvailable(p: Pod, minReadySeconds: number, now?: Date): boolean {
  if (!isPodReady(p)) return false;
  if (minReadySeconds === 0) return true;
  const since = p.status?.conditions?.find((c) => c.type === "Ready")?.lastTransitionTime;
  if (!since || !now) return false;
  return Date.parse(since) + minReadySeconds * 1000 < now.getTime();
}

export function controllerRefOf(meta: { ownerReferences?: OwnerReference[] } | undefined): OwnerReference | undefined {
  return meta?.ownerReferences?.find((r) => r.controller === true);
}

// ---------------------------------------------------------------------------------------------
// Names (apiserver/pkg/storage/names/generate.go, apimachinery/pkg/util/rand/rand.go).

/** rand.String's alphabet: no vowels (no words), no 0/1/3 (confusable). */
export const SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789";
const MAX_NAME_LENGTH = 63;
const RANDOM_LENGTH = 5;

export function randomString(n: number, rand: () => number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += SAFE_ALPHANUMS[Math.min(SAFE_ALPHANUMS.length - 1, Math.floor(rand() * SAFE_ALPHANUMS.length))];
  return s;
}

/** SimpleNameGenerator.GenerateName: base truncated to 58 characters, then 5 random ones. */
export function generateName(base: string, rand: () => number): string {
  const max = MAX_NAME_LENGTH - RANDOM_LENGTH;
  return `${base.length > max ? base.slice(0, max) : base}${randomString(RANDOM_LENGTH, rand)}`;
}

// ---------------------------------------------------------------------------------------------

/** replica_set.go: at most this many creations or deletions per sync. */
export const BURST_REPLICAS = 500;
export const POD_DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost";

export interface ReplicaSetActions {
  create: Pod[];
  delete: Pod[];
  /** Orphans that match the selector, with the RS's controller ref added: update them. */
  adopt: Pod[];
  /** Owned pods that no longer match the selector, with the RS's ref removed: update them. */
  release: Pod[];
  status: ReplicaSetStatus;
  /** Set when the RS cannot be synced (an invalid selector); nothing else is done then. */
  error?: string;
}

export function controllerRefTo(kind: "ReplicaSet" | "Deployment", apiVersion: string, meta: { name?: string; uid?: string } | undefined): OwnerReference {
  return { apiVersion, kind, name: meta?.name ?? "", uid: meta?.uid ?? "", controller: true, blockOwnerDeletion: true };
}

/** controller_utils.go GetPodFromTemplate: labels, annotations, finalizers and spec from the template. */
export function podFromTemplate(template: PodTemplateSpec | undefined, namespace: string | undefined, prefix: string, name: string, ref: OwnerReference): Pod {
  const tm = template?.metadata;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      generateName: prefix,
      ...(namespace !== undefined ? { namespace } : {}),
      labels: { ...(tm?.labels ?? {}) },
      ...(tm?.annotations ? { annotations: { ...tm.annotations } } : {}),
      ...(tm?.finalizers ? { finalizers: [...tm.finalizers] } : {}),
      ownerReferences: [ref],
    },
    spec: structuredClone(template?.spec ?? { containers: [] }),
  };
}

const PHASE_ORDINAL: Readonly<Record<string, number>> = { Pending: 0, Unknown: 1, Running: 2 };

function timeOf(t: string | undefined): number | undefined {
  if (!t) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

/** controller_utils.go afterOrZero: a zero time first, otherwise the later one first. */
function afterOrZero(a: number | undefined, b: number | undefined): boolean {
  if (a === undefined || b === undefined) return a === undefined;
  return a > b;
}

function readyTime(p: Pod): number | undefined {
  return timeOf(p.status?.conditions?.find((c) => c.type === "Ready" && c.status === "True")?.lastTransitionTime);
}

function deletionCost(p: Pod): number {
  const v = p.metadata?.annotations?.[POD_DELETION_COST_ANNOTATION];
  if (v === undefined || !/^-?\d+$/.test(v)) return 0;
  const n = Number(v);
  return n >= -(2 ** 31) && n < 2 ** 31 ? n : 0;
}

/** Max restarts of regular containers, then of restartable (sidecar) init containers. */
function maxRestarts(p: Pod): [number, number] {
  const regular = Math.max(0, ...(p.status?.containerStatuses ?? []).map((s) => s.restartCount ?? 0));
  const sidecarNames = new Set((p.spec?.initContainers ?? []).filter((c) => c.restartPolicy === "Always").map((c) => c.name));
  const sidecar = Math.max(0, ...(p.status?.initContainerStatuses ?? []).filter((s) => sidecarNames.has(s.name)).map((s) => s.restartCount ?? 0));
  return [regular, sidecar];
}

/**
 * controller_utils.go ActivePodsWithRanks.Less: true when `a` should be deleted before `b`.
 * `rank*` is the number of related active pods on the pod's node (doubled-up pods go first).
 * Without the LogarithmicScaleDown bucketing; ties end on name for a deterministic order.
 */
export function deleteBefore(a: Pod, b: Pod, rankA: number, rankB: number): boolean {
  const na = a.spec?.nodeName ?? "";
  const nb = b.spec?.nodeName ?? "";
  // 1. Unassigned < assigned.
  if (na !== nb && (na === "" || nb === "")) return na === "";
  // 2. PodPending < PodUnknown < PodRunning.
  const pa = PHASE_ORDINAL[a.status?.phase ?? ""] ?? 0;
  const pb = PHASE_ORDINAL[b.status?.phase ?? ""] ?? 0;
  if (pa !== pb) return pa < pb;
  // 3. Not ready < ready.
  const ra = isPodReady(a);
  const rb = isPodReady(b);
  if (ra !== rb) return !ra;
  // 4. Lower pod-deletion-cost < higher.
  const ca = deletionCost(a);
  const cb = deletionCost(b);
  if (ca !== cb) return ca < cb;
  // 5. Doubled up < not doubled up.
  if (rankA !== rankB) return rankA > rankB;
  // 6. Ready for a shorter time < longer.
  if (ra && rb) {
    const ta = readyTime(a);
    const tb = readyTime(b);
    if (ta !== tb) return afterOrZero(ta, tb);
  }
  // 7. More restarts < fewer.
  const [xa, sa] = maxRestarts(a);
  const [xb, sb] = maxRestarts(b);
  if (xa !== xb) return xa > xb;
  if (sa !== sb) return sa > sb;
  // 8. Empty creation time < newer < older.
  const ta = timeOf(a.metadata?.creationTimestamp);
  const tb = timeOf(b.metadata?.creationTimestamp);
  if (ta !== tb) return afterOrZero(ta, tb);
  return (a.metadata?.name ?? "") < (b.metadata?.name ?? "");
}

/**
 * replica_set.go getPodsToDelete: the first `count` of `pods` in deletion order, ranked by how
 * many of `related` (active) share their node — getPodsRankedByRelatedPodsOnSameNode.
 */
export function podsToDelete(pods: readonly Pod[], related: readonly Pod[], count: number): Pod[] {
  const onNode = new Map<string, number>();
  for (const p of related) {
    if (!isPodActive(p)) continue;
    const n = p.spec?.nodeName ?? "";
    onNode.set(n, (onNode.get(n) ?? 0) + 1);
  }
  const ranked = pods.map((pod) => ({ pod, rank: onNode.get(pod.spec?.nodeName ?? "") ?? 0 }));
  ranked.sort((x, y) => (deleteBefore(x.pod, y.pod, x.rank, y.rank) ? -1 : deleteBefore(y.pod, x.pod, y.rank, x.rank) ? 1 : 0));
  return ranked.slice(0, count).map((r) => r.pod);
}

/**
 * One sync of `rs` against the pods of the cluster (any namespace: others are ignored).
 * `now` is needed only with minReadySeconds > 0 (availability); without it such pods are not
 * counted available.
 */
export function reconcileReplicaSet(rs: ReplicaSet, pods: Pod[], rand: () => number, now?: Date): ReplicaSetActions {
  const meta = rs.metadata ?? {};
  const namespace = meta.namespace;
  const uid = meta.uid;
  const previous = rs.status ?? { replicas: 0 };
  const selector = selectorMatcher(rs.spec?.selector);
  if (selector.kind === "error") {
    return { create: [], delete: [], adopt: [], release: [], status: previous, error: `invalid selector: ${selector.message}` };
  }
  const matches = selector.value;
  const deleting = !!meta.deletionTimestamp;

  // controller_ref_manager.go ClaimPods over FilterActivePods(all pods in the namespace).
  const owned: Pod[] = [];
  const adopt: Pod[] = [];
  const release: Pod[] = [];
  const ref = controllerRefTo("ReplicaSet", "apps/v1", meta);
  for (const pod of pods) {
    if ((pod.metadata?.namespace ?? undefined) !== namespace || !isPodActive(pod)) continue;
    const labels = pod.metadata?.labels ?? {};
    const cref = controllerRefOf(pod.metadata);
    if (cref) {
      if (cref.uid !== uid) continue;
      if (matches(labels)) owned.push(pod);
      else if (!deleting) release.push({ ...pod, metadata: { ...pod.metadata, ownerReferences: (pod.metadata?.ownerReferences ?? []).filter((r) => r.uid !== uid) } });
      continue;
    }
    if (deleting || !matches(labels)) continue;
    const adopted: Pod = { ...pod, metadata: { ...pod.metadata, ownerReferences: [...(pod.metadata?.ownerReferences ?? []), ref] } };
    adopt.push(adopted);
    owned.push(adopted);
  }

  const status = calculateStatus(rs, owned, now);
  const create: Pod[] = [];
  const del: Pod[] = [];
  if (!deleting) {
    const desired = rs.spec?.replicas ?? 1;
    const diff = owned.length - desired;
    if (diff < 0) {
      const taken = new Set(pods.filter((p) => p.metadata?.namespace === namespace).map((p) => p.metadata?.name));
      const prefix = `${meta.name ?? ""}-`;
      for (let i = 0; i < Math.min(-diff, BURST_REPLICAS); i++) {
        let name = generateName(prefix, rand);
        while (taken.has(name)) name = generateName(prefix, rand);
        taken.add(name);
        create.push(podFromTemplate(rs.spec?.template, namespace, prefix, name, ref));
      }
    } else if (diff > 0) {
      del.push(...podsToDelete(owned, owned, Math.min(diff, BURST_REPLICAS)));
    }
  }
  return { create, delete: del, adopt, release, status };
}

/** replica_set_utils.go calculateStatus over the claimed active pods (before this sync's actions). */
function calculateStatus(rs: ReplicaSet, pods: readonly Pod[], now: Date | undefined): ReplicaSetStatus {
  const templateLabels = rs.spec?.template?.metadata?.labels ?? {};
  const minReady = rs.spec?.minReadySeconds ?? 0;
  let fullyLabeled = 0;
  let ready = 0;
  let available = 0;
  for (const p of pods) {
    const labels = p.metadata?.labels ?? {};
    if (Object.entries(templateLabels).every(([k, v]) => labels[k] === v)) fullyLabeled++;
    if (isPodReady(p)) {
      ready++;
      if (isPodAvailable(p, minReady, now)) available++;
    }
  }
  // A successful sync clears the ReplicaFailure condition; others are kept.
  const conditions = (rs.status?.conditions ?? []).filter((c) => c.type !== "ReplicaFailure");
  return {
    replicas: pods.length,
    fullyLabeledReplicas: fullyLabeled,
    readyReplicas: ready,
    availableReplicas: available,
    observedGeneration: rs.metadata?.generation ?? 0,
    ...(conditions.length > 0 ? { conditions } : {}),
  };
}
