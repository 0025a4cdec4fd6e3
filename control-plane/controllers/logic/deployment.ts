/**
 * The Deployment controller's sync (pkg/controller/deployment: deployment_controller.go
 * syncDeployment, sync.go, rolling.go, recreate.go, progress.go, util/deployment_util.go).
 *
 * One call is one syncDeployment against the current state: claim the ReplicaSets (adopt
 * matching orphans, release owned ones that stopped matching), find or create the new RS (the
 * one whose template equals the Deployment's, ignoring pod-template-hash), then one step of the
 * strategy, cleanup beyond revisionHistoryLimit, and the status with its conditions. Like the
 * Kubernetes controller it takes at most one scaling step per call and relies on being called
 * again when the ReplicaSets it changed report their status.
 *
 * Differences kept on purpose: the pod-template-hash is fnv32a over the key-sorted JSON of the
 * template (Kubernetes hashes a spew dump of the Go struct, so hashes differ from a real
 * cluster's); status is computed from the ReplicaSets as they will be after this call's actions
 * (Kubernetes computes it from the slice it listed, which lags one sync behind for spec counts).
 */
import type { Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet } from "kubernetes-types/apps/v1.js";
import type { Pod, PodTemplateSpec } from "kubernetes-types/core/v1.js";
import type { OwnerReference } from "kubernetes-types/meta/v1.js";
import { controllerRefOf, controllerRefTo, isEmptySelector, SAFE_ALPHANUMS, selectorMatcher } from "./replicaset.ts";
import { fnv1a32, fnv1a32String } from "../../../cluster/hash.ts";
import { canonicalJson, rfc3339, semanticEqual } from "../../../cluster/meta.ts";

export const POD_TEMPLATE_HASH_LABEL = "pod-template-hash";

export const DeploymentAnnotation = {
  Revision: "deployment.kubernetes.io/revision",
  RevisionHistory: "deployment.kubernetes.io/revision-history",
  DesiredReplicas: "deployment.kubernetes.io/desired-replicas",
  MaxReplicas: "deployment.kubernetes.io/max-replicas",
} as const;

/** util/deployment_util.go condition reasons. */
export const DeploymentReason = {
  MinimumReplicasAvailable: "MinimumReplicasAvailable",
  MinimumReplicasUnavailable: "MinimumReplicasUnavailable",
  NewReplicaSetCreated: "NewReplicaSetCreated",
  FoundNewReplicaSet: "FoundNewReplicaSet",
  ReplicaSetUpdated: "ReplicaSetUpdated",
  NewReplicaSetAvailable: "NewReplicaSetAvailable",
  ProgressDeadlineExceeded: "ProgressDeadlineExceeded",
  DeploymentPaused: "DeploymentPaused",
  DeploymentResumed: "DeploymentResumed",
} as const;

/** Deployment annotations never copied to its ReplicaSets (deployment_util.go annotationsToSkip). */
const ANNOTATIONS_TO_SKIP = new Set<string>([
  "kubectl.kubernetes.io/last-applied-configuration",
  DeploymentAnnotation.Revision,
  DeploymentAnnotation.RevisionHistory,
  DeploymentAnnotation.DesiredReplicas,
  DeploymentAnnotation.MaxReplicas,
  "deprecated.deployment.rollback.to",
]);
const MAX_REV_HISTORY_LENGTH_IN_CHARS = 2000;

export interface DeploymentActions {
  create: ReplicaSet[];
  update: ReplicaSet[];
  delete: ReplicaSet[];
  status: DeploymentStatus;
  /** The deployment.kubernetes.io/revision the Deployment should carry, when it differs from its current one. */
  revision?: string;
  /** Set when the Deployment cannot be synced (invalid selector); nothing else is done then. */
  error?: string;
}

// ---------------------------------------------------------------------------------------------
// Hashing (controller_utils.go ComputeHash, apimachinery util/rand SafeEncodeString).

/** Each character's code point mod 27 indexes "bcdfghjklmnpqrstvwxz2456789". */
export function safeEncodeString(s: string): string {
  let out = "";
  for (const ch of s) out += SAFE_ALPHANUMS[ch.codePointAt(0)! % SAFE_ALPHANUMS.length];
  return out;
}

/**
 * ComputeHash: fnv32a of the template, then of the collision count as 8 bytes (uint32 little
 * endian, zero padded) when there is one; the decimal of the sum, safe-encoded.
 */
export function computeHash(template: PodTemplateSpec | undefined, collisionCount?: number): string {
  let h = fnv1a32String(canonicalJson(template ?? {}));
  if (collisionCount !== undefined && collisionCount !== null) {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setUint32(0, collisionCount >>> 0, true);
    h = fnv1a32(bytes, h);
  }
  return safeEncodeString(String(h));
}

/** deployment_util.go EqualIgnoreHash: templates equal once pod-template-hash is removed. */
export function equalIgnoreHash(a: PodTemplateSpec | undefined, b: PodTemplateSpec | undefined): boolean {
  const strip = (t: PodTemplateSpec | undefined) => {
    const labels = { ...(t?.metadata?.labels ?? {}) };
    delete labels[POD_TEMPLATE_HASH_LABEL];
    const metadata = { ...(t?.metadata ?? {}), labels: Object.keys(labels).length > 0 ? labels : undefined };
    return { ...(t ?? {}), metadata };
  };
  return semanticEqual(strip(a), strip(b));
}

// ---------------------------------------------------------------------------------------------
// Fenceposts (apimachinery util/intstr GetScaledValueFromIntOrPercent, deployment_util.go).

/** An int, or "N%" of `total` rounded up (surge) or down (unavailable). Anything else is 0 (validation rejects it). */
export function scaledValue(v: number | string | undefined, total: number, roundUp: boolean): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") return v;
  const m = /^(-?\d+)%$/.exec(v);
  if (!m) return 0;
  const x = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}

interface Spec {
  replicas: number;
  rolling: boolean;
  maxSurgeRaw: number | string;
  maxUnavailableRaw: number | string;
  revisionHistoryLimit: number | undefined;
  progressDeadlineSeconds: number | undefined;
  minReadySeconds: number;
  paused: boolean;
}

const MAX_INT32 = 2 ** 31 - 1;

/** The spec with the API defaults applied (apps/v1 defaults.go SetDefaults_Deployment). */
function specOf(d: Deployment): Spec {
  const s = d.spec;
  const rolling = (s?.strategy?.type ?? "RollingUpdate") === "RollingUpdate";
  const ru = s?.strategy?.rollingUpdate;
  const limit = s?.revisionHistoryLimit ?? 10;
  const deadline = s?.progressDeadlineSeconds ?? 600;
  return {
    replicas: s?.replicas ?? 1,
    rolling,
    maxSurgeRaw: ru?.maxSurge ?? "25%",
    maxUnavailableRaw: ru?.maxUnavailable ?? "25%",
    revisionHistoryLimit: limit === MAX_INT32 ? undefined : limit,
    progressDeadlineSeconds: deadline === MAX_INT32 ? undefined : deadline,
    minReadySeconds: s?.minReadySeconds ?? 0,
    paused: s?.paused ?? false,
  };
}

/** ResolveFenceposts: surge rounds up, unavailable down; both 0 makes unavailable 1. */
export function resolveFenceposts(maxSurge: number | string, maxUnavailable: number | string, desired: number): { surge: number; unavailable: number } {
  const surge = scaledValue(maxSurge, desired, true);
  let unavailable = scaledValue(maxUnavailable, desired, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

export function maxSurge(d: Deployment): number {
  const s = specOf(d);
  if (!s.rolling) return 0;
  return resolveFenceposts(s.maxSurgeRaw, s.maxUnavailableRaw, s.replicas).surge;
}

export function maxUnavailable(d: Deployment): number {
  const s = specOf(d);
  if (!s.rolling || s.replicas === 0) return 0;
  const { unavailable } = resolveFenceposts(s.maxSurgeRaw, s.maxUnavailableRaw, s.replicas);
  return Math.min(unavailable, s.replicas);
}

// ---------------------------------------------------------------------------------------------


const specReplicas = (rs: ReplicaSet) => rs.spec?.replicas ?? 1;
const statusReplicas = (rs: ReplicaSet) => rs.status?.replicas ?? 0;
const availableReplicas = (rs: ReplicaSet) => rs.status?.availableReplicas ?? 0;
const readyReplicas = (rs: ReplicaSet) => rs.status?.readyReplicas ?? 0;
const sum = (rss: readonly ReplicaSet[], f: (rs: ReplicaSet) => number) => rss.reduce((n, rs) => n + f(rs), 0);

function creationMs(rs: ReplicaSet): number {
  const t = rs.metadata?.creationTimestamp;
  // Not created yet (this call creates it): newest of all.
  return t ? Date.parse(t) : Number.POSITIVE_INFINITY;
}

/** controller_utils.go ReplicaSetsByCreationTimestamp: oldest first, ties by name. */
function byCreation(a: ReplicaSet, b: ReplicaSet): number {
  const ta = creationMs(a);
  const tb = creationMs(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  const na = a.metadata?.name ?? "";
  const nb = b.metadata?.name ?? "";
  return na < nb ? -1 : na > nb ? 1 : 0;
}

function revisionOf(rs: ReplicaSet): number | undefined {
  const v = rs.metadata?.annotations?.[DeploymentAnnotation.Revision];
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/** deployment_util.go ReplicaSetsByRevision: lowest revision first, ties by creation. */
function byRevision(a: ReplicaSet, b: ReplicaSet): number {
  const ra = revisionOf(a) ?? 0;
  const rb = revisionOf(b) ?? 0;
  return ra !== rb ? ra - rb : byCreation(a, b);
}

function getCondition(status: DeploymentStatus, type: string): DeploymentCondition | undefined {
  return status.conditions?.find((c) => c.type === type);
}

/** deployment_util.go SetDeploymentCondition: same status and reason → keep; same status → keep lastTransitionTime. */
function setCondition(status: DeploymentStatus, condition: DeploymentCondition): void {
  const current = getCondition(status, condition.type);
  if (current && current.status === condition.status && current.reason === condition.reason) return;
  const c = current && current.status === condition.status ? { ...condition, lastTransitionTime: current.lastTransitionTime } : condition;
  status.conditions = [...(status.conditions ?? []).filter((x) => x.type !== condition.type), c];
}

function removeCondition(status: DeploymentStatus, type: string): void {
  if (!status.conditions) return;
  status.conditions = status.conditions.filter((c) => c.type !== type);
}

class Abort extends Error {}

/** The state of one sync: working copies of the owned ReplicaSets and what changed. */
class DeploymentSync {
  readonly spec: Spec;
  readonly name: string;
  readonly namespace: string | undefined;
  /** d.Status as the Kubernetes controller mutates it during a sync (conditions, collisionCount). */
  status: DeploymentStatus;
  readonly owned = new Map<string, ReplicaSet>();
  readonly created = new Set<string>();
  readonly updated = new Set<string>();
  readonly deleted: ReplicaSet[] = [];
  /** Owned RSs that no longer match the selector, with the controller ref removed. */
  readonly released: ReplicaSet[] = [];
  revision: string | undefined;

  constructor(
    readonly d: Deployment,
    readonly all: readonly ReplicaSet[],
    readonly pods: readonly Pod[],
    readonly now: Date,
  ) {
    this.spec = specOf(d);
    this.name = d.metadata?.name ?? "";
    this.namespace = d.metadata?.namespace;
    this.status = structuredClone(d.status ?? {});
  }

  put(rs: ReplicaSet): void {
    const name = rs.metadata?.name ?? "";
    this.owned.set(name, rs);
    if (!this.created.has(name)) this.updated.add(name);
  }

  list(): ReplicaSet[] {
    return [...this.owned.values()];
  }

  condition(type: string, status: string, reason: string, message: string): DeploymentCondition {
    const t = rfc3339(this.now);
    return { type, status, lastUpdateTime: t, lastTransitionTime: t, reason, message };
  }

  // controller_ref_manager.go ClaimReplicaSets: keep owned matching RSs, release owned ones that
  // stopped matching, adopt matching orphans (not while either side is being deleted).
  claim(matches: (l: Readonly<Record<string, string>>) => boolean): void {
    const uid = this.d.metadata?.uid;
    const deleting = !!this.d.metadata?.deletionTimestamp;
    const ref: OwnerReference = controllerRefTo("Deployment", "apps/v1", this.d.metadata);
    for (const rs of [...this.all].sort(byCreation)) {
      if (rs.metadata?.namespace !== this.namespace) continue;
      const labels = rs.metadata?.labels ?? {};
      const cref = controllerRefOf(rs.metadata);
      if (cref) {
        if (cref.uid !== uid) continue;
        if (matches(labels) || deleting) this.owned.set(rs.metadata?.name ?? "", rs);
        else this.released.push({ ...rs, metadata: { ...rs.metadata, ownerReferences: (rs.metadata?.ownerReferences ?? []).filter((r) => r.uid !== uid) } });
        continue;
      }
      if (deleting || rs.metadata?.deletionTimestamp || !matches(labels)) continue;
      this.put({ ...rs, metadata: { ...rs.metadata, ownerReferences: [...(rs.metadata?.ownerReferences ?? []), ref] } });
    }
  }

  // deployment_util.go FindNewReplicaSet / FindOldReplicaSets.
  split(): { newRS: ReplicaSet | undefined; oldRSs: ReplicaSet[] } {
    const sorted = this.list().sort(byCreation);
    const newRS = sorted.find((rs) => equalIgnoreHash(rs.spec?.template, this.d.spec?.template));
    return { newRS, oldRSs: sorted.filter((rs) => rs !== newRS) };
  }

  // sync.go getAllReplicaSetsAndSyncRevision + getNewReplicaSet.
  getAll(createIfNotExisted: boolean): { newRS: ReplicaSet | undefined; oldRSs: ReplicaSet[] } {
    const { newRS: existing, oldRSs } = this.split();
    const maxOld = Math.max(0, ...oldRSs.map((rs) => revisionOf(rs) ?? 0));
    const newRevision = String(maxOld + 1);
    if (existing) {
      const copy = structuredClone(existing);
      const annotationsUpdated = this.setNewReplicaSetAnnotations(copy, newRevision, true);
      const minReadyNeedsUpdate = (copy.spec?.minReadySeconds ?? 0) !== this.spec.minReadySeconds;
      let newRS = existing;
      if (annotationsUpdated || minReadyNeedsUpdate) {
        copy.spec = { ...copy.spec!, minReadySeconds: this.spec.minReadySeconds };
        this.put(copy);
        newRS = copy;
      }
      this.setRevision(newRS.metadata?.annotations?.[DeploymentAnnotation.Revision]);
      if (this.spec.progressDeadlineSeconds !== undefined && !getCondition(this.status, "Progressing")) {
        setCondition(this.status, this.condition("Progressing", "True", DeploymentReason.FoundNewReplicaSet, `Found new replica set "${newRS.metadata?.name}"`));
      }
      return { newRS, oldRSs };
    }
    if (!createIfNotExisted) return { newRS: undefined, oldRSs };

    const template = this.d.spec?.template ?? {};
    const hash = computeHash(template, this.status.collisionCount);
    const labels = { ...(template.metadata?.labels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash };
    const selector = structuredClone(this.d.spec?.selector ?? {});
    selector.matchLabels = { ...(selector.matchLabels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash };
    const name = `${this.name}-${hash}`;
    const newRS: ReplicaSet = {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: {
        name,
        ...(this.namespace !== undefined ? { namespace: this.namespace } : {}),
        labels,
        ownerReferences: [controllerRefTo("Deployment", "apps/v1", this.d.metadata)],
      },
      spec: {
        replicas: 0,
        minReadySeconds: this.spec.minReadySeconds,
        selector,
        template: { ...structuredClone(template), metadata: { ...structuredClone(template.metadata ?? {}), labels } },
      },
    };
    newRS.spec!.replicas = this.newRSNewReplicas([...oldRSs, newRS], newRS);
    this.setNewReplicaSetAnnotations(newRS, newRevision, false);

    // A ReplicaSet of that name that is not ours, or not of this template: a hash collision.
    const clash = this.all.find((rs) => rs.metadata?.namespace === this.namespace && rs.metadata?.name === name);
    if (clash) {
      if (controllerRefOf(clash.metadata)?.uid === this.d.metadata?.uid && equalIgnoreHash(this.d.spec?.template, clash.spec?.template)) {
        this.owned.set(name, clash);
        this.setRevision(newRevision);
        return { newRS: clash, oldRSs };
      }
      this.status.collisionCount = (this.status.collisionCount ?? 0) + 1;
      throw new Abort();
    }
    this.created.add(name);
    this.owned.set(name, newRS);
    this.setRevision(newRevision);
    if (this.spec.progressDeadlineSeconds !== undefined) {
      setCondition(this.status, this.condition("Progressing", "True", DeploymentReason.NewReplicaSetCreated, `Created new replica set "${name}"`));
    }
    return { newRS, oldRSs };
  }

  setRevision(revision: string | undefined): void {
    if (revision === undefined) return;
    this.revision = this.d.metadata?.annotations?.[DeploymentAnnotation.Revision] === revision ? undefined : revision;
  }

  // deployment_util.go SetNewReplicaSetAnnotations (mutates rs).
  setNewReplicaSetAnnotations(rs: ReplicaSet, newRevision: string, exists: boolean): boolean {
    const meta = (rs.metadata ??= {});
    const ann = (meta.annotations = { ...(meta.annotations ?? {}) });
    let changed = false;
    for (const [k, v] of Object.entries(this.d.metadata?.annotations ?? {})) {
      if (ANNOTATIONS_TO_SKIP.has(k) || ann[k] === v) continue;
      ann[k] = v;
      changed = true;
    }
    const oldRevision = ann[DeploymentAnnotation.Revision];
    let oldInt = 0;
    if (oldRevision !== undefined && oldRevision !== "") {
      if (!/^\d+$/.test(oldRevision)) return changed;
      oldInt = Number(oldRevision);
    }
    const newInt = Number(newRevision);
    if (oldInt < newInt) {
      ann[DeploymentAnnotation.Revision] = newRevision;
      changed = true;
      // Rolling back to this RS: keep its earlier revisions.
      if (oldRevision !== undefined) {
        const history = ann[DeploymentAnnotation.RevisionHistory] ?? "";
        if (history === "") ann[DeploymentAnnotation.RevisionHistory] = oldRevision;
        else {
          const revs = history.split(",");
          let total = history.length + oldRevision.length + 1;
          let start = 0;
          while (total > MAX_REV_HISTORY_LENGTH_IN_CHARS && start < revs.length) total -= revs[start++]!.length + 1;
          if (total <= MAX_REV_HISTORY_LENGTH_IN_CHARS) ann[DeploymentAnnotation.RevisionHistory] = [...revs.slice(start), oldRevision].join(",");
        }
      }
    }
    if (!exists && this.setReplicasAnnotations(rs)) changed = true;
    return changed;
  }

  replicasAnnotationsNeedUpdate(rs: ReplicaSet): boolean {
    const ann = rs.metadata?.annotations ?? {};
    return ann[DeploymentAnnotation.DesiredReplicas] !== String(this.spec.replicas) || ann[DeploymentAnnotation.MaxReplicas] !== String(this.spec.replicas + maxSurge(this.d));
  }

  setReplicasAnnotations(rs: ReplicaSet): boolean {
    if (!this.replicasAnnotationsNeedUpdate(rs)) return false;
    const meta = (rs.metadata ??= {});
    meta.annotations = {
      ...(meta.annotations ?? {}),
      [DeploymentAnnotation.DesiredReplicas]: String(this.spec.replicas),
      [DeploymentAnnotation.MaxReplicas]: String(this.spec.replicas + maxSurge(this.d)),
    };
    return true;
  }

  // deployment_util.go NewRSNewReplicas.
  newRSNewReplicas(allRSs: readonly ReplicaSet[], newRS: ReplicaSet): number {
    if (!this.spec.rolling) return this.spec.replicas;
    const surge = scaledValue(this.spec.maxSurgeRaw, this.spec.replicas, true);
    const current = sum(allRSs, specReplicas);
    const maxTotal = this.spec.replicas + surge;
    if (current >= maxTotal) return specReplicas(newRS);
    const scaleUp = Math.min(maxTotal - current, this.spec.replicas - specReplicas(newRS));
    return specReplicas(newRS) + scaleUp;
  }

  // sync.go scaleReplicaSetAndRecordEvent + scaleReplicaSet. Returns whether the size changed.
  scale(rs: ReplicaSet, newScale: number): boolean {
    const current = this.owned.get(rs.metadata?.name ?? "") ?? rs;
    if (specReplicas(current) === newScale) return false;
    const copy = structuredClone(current);
    copy.spec = { ...copy.spec!, replicas: newScale };
    this.setReplicasAnnotations(copy);
    this.put(copy);
    return true;
  }

  cur(rs: ReplicaSet): ReplicaSet {
    return this.owned.get(rs.metadata?.name ?? "") ?? rs;
  }

  curAll(rss: readonly (ReplicaSet | undefined)[]): ReplicaSet[] {
    return rss.filter((rs): rs is ReplicaSet => rs !== undefined && this.owned.has(rs.metadata?.name ?? "")).map((rs) => this.cur(rs));
  }

  // ---- rolling.go -----------------------------------------------------------------------------

  rolloutRolling(): void {
    const { newRS, oldRSs } = this.getAll(true);
    if (this.reconcileNewReplicaSet(newRS!)) return this.syncRolloutStatus(newRS);
    if (this.reconcileOldReplicaSets(newRS!, oldRSs.filter((rs) => specReplicas(this.cur(rs)) > 0))) return this.syncRolloutStatus(newRS);
    if (this.complete(this.status)) this.cleanup(oldRSs);
    this.syncRolloutStatus(newRS);
  }

  reconcileNewReplicaSet(newRS: ReplicaSet): boolean {
    const rs = this.cur(newRS);
    if (specReplicas(rs) === this.spec.replicas) return false;
    if (specReplicas(rs) > this.spec.replicas) return this.scale(rs, this.spec.replicas);
    return this.scale(rs, this.newRSNewReplicas(this.list(), rs));
  }

  reconcileOldReplicaSets(newRS: ReplicaSet, activeOld: ReplicaSet[]): boolean {
    const oldPods = sum(this.curAll(activeOld), specReplicas);
    if (oldPods === 0) return false;
    const allPods = sum(this.list(), specReplicas);
    const minAvailable = this.spec.replicas - maxUnavailable(this.d);
    const n = this.cur(newRS);
    const newUnavailable = specReplicas(n) - availableReplicas(n);
    const maxScaledDown = allPods - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return false;
    // Clean up unhealthy replicas first, otherwise they block the rollout.
    const cleaned = this.cleanupUnhealthyReplicas(activeOld, maxScaledDown);
    const scaledDown = this.scaleDownOldReplicaSetsForRollingUpdate(activeOld);
    return cleaned + scaledDown > 0;
  }

  cleanupUnhealthyReplicas(oldRSs: ReplicaSet[], maxCleanup: number): number {
    let total = 0;
    for (const old of this.curAll(oldRSs).sort(byCreation)) {
      if (total >= maxCleanup) break;
      const replicas = specReplicas(old);
      if (replicas === 0 || replicas === availableReplicas(old)) continue;
      const count = Math.min(maxCleanup - total, replicas - availableReplicas(old));
      this.scale(old, replicas - count);
      total += count;
    }
    return total;
  }

  scaleDownOldReplicaSetsForRollingUpdate(oldRSs: ReplicaSet[]): number {
    const minAvailable = this.spec.replicas - maxUnavailable(this.d);
    const available = sum(this.list(), availableReplicas);
    if (available <= minAvailable) return 0;
    const toScaleDown = available - minAvailable;
    let total = 0;
    for (const old of this.curAll(oldRSs).sort(byCreation)) {
      if (total >= toScaleDown) break;
      const replicas = specReplicas(old);
      if (replicas === 0) continue;
      const count = Math.min(replicas, toScaleDown - total);
      this.scale(old, replicas - count);
      total += count;
    }
    return total;
  }

  // ---- recreate.go ----------------------------------------------------------------------------

  rolloutRecreate(): void {
    let { newRS, oldRSs } = this.getAll(false);
    let scaledDown = false;
    for (const old of oldRSs) {
      if (specReplicas(this.cur(old)) === 0) continue;
      if (this.scale(old, 0)) scaledDown = true;
    }
    if (scaledDown) return this.syncRolloutStatus(newRS);
    if (this.oldPodsRunning(newRS, oldRSs)) return this.syncRolloutStatus(newRS);
    if (!newRS) ({ newRS, oldRSs } = this.getAll(true));
    this.scale(newRS!, this.spec.replicas);
    if (this.complete(this.status)) this.cleanup(oldRSs);
    this.syncRolloutStatus(newRS);
  }

  /** Old RSs still report pods, or some pod of an old RS is not finished (terminating ones count). */
  oldPodsRunning(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): boolean {
    if (sum(this.curAll(oldRSs), statusReplicas) > 0) return true;
    const matches = selectorMatcher(this.d.spec?.selector);
    const oldUids = new Set(this.list().filter((rs) => rs.metadata?.name !== newRS?.metadata?.name).map((rs) => rs.metadata?.uid));
    return this.pods.some((p) => {
      if (p.metadata?.namespace !== this.namespace) return false;
      if (matches.kind !== "ok" || !matches.value(p.metadata?.labels ?? {})) return false;
      const uid = controllerRefOf(p.metadata)?.uid;
      if (uid === undefined || !oldUids.has(uid)) return false;
      return p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed";
    });
  }

  // ---- sync.go: scaling events and paused deployments -----------------------------------------

  isScalingEvent(): boolean {
    const { newRS, oldRSs } = this.split();
    for (const rs of [...oldRSs, ...(newRS ? [newRS] : [])]) {
      if (specReplicas(rs) <= 0) continue;
      const desired = rs.metadata?.annotations?.[DeploymentAnnotation.DesiredReplicas];
      if (desired === undefined || !/^-?\d+$/.test(desired)) continue;
      if (Number(desired) !== this.spec.replicas) return true;
    }
    return false;
  }

  sync(): void {
    const { newRS, oldRSs } = this.getAll(false);
    this.scaleAll(newRS, oldRSs);
    if (this.spec.paused) this.cleanup(oldRSs);
    this.syncDeploymentStatus(newRS);
  }

  /** sync.go scale: one active RS takes all; a saturated new RS zeroes the old; else proportional. */
  scaleAll(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): void {
    const replicas = this.spec.replicas;
    const activeOrLatest = this.findActiveOrLatest(newRS, oldRSs);
    if (activeOrLatest) {
      if (specReplicas(activeOrLatest) !== replicas) this.scale(activeOrLatest, replicas);
      return;
    }
    if (newRS && this.isSaturated(this.cur(newRS))) {
      for (const old of this.curAll(oldRSs)) if (specReplicas(old) > 0) this.scale(old, 0);
      return;
    }
    if (!this.spec.rolling) return;
    const active = this.curAll([...oldRSs, newRS]).filter((rs) => specReplicas(rs) > 0);
    const allowed = replicas > 0 ? replicas + maxSurge(this.d) : 0;
    const toAdd = allowed - sum(active, specReplicas);
    // Larger first; on equal sizes newer first when scaling up, older first when scaling down.
    active.sort((a, b) => (specReplicas(a) !== specReplicas(b) ? specReplicas(b) - specReplicas(a) : toAdd > 0 ? byCreation(b, a) : byCreation(a, b)));
    const sizes = new Map<string, number>();
    let added = 0;
    for (const rs of active) {
      const proportion = toAdd !== 0 ? this.proportion(rs, toAdd, added) : 0;
      sizes.set(rs.metadata?.name ?? "", specReplicas(rs) + proportion);
      added += proportion;
    }
    active.forEach((rs, i) => {
      const name = rs.metadata?.name ?? "";
      let size = sizes.get(name)!;
      if (i === 0 && toAdd !== 0) size = Math.max(0, size + toAdd - added);
      this.scale(rs, size);
      // scaleReplicaSet also refreshes the replicas annotations when the size is unchanged.
      const c = this.cur(rs);
      if (this.replicasAnnotationsNeedUpdate(c)) {
        const copy = structuredClone(c);
        this.setReplicasAnnotations(copy);
        this.put(copy);
      }
    });
  }

  // deployment_util.go GetReplicaSetProportion + getReplicaSetFraction.
  proportion(rs: ReplicaSet, toAdd: number, added: number): number {
    if (specReplicas(rs) === 0 || toAdd === added) return 0;
    let fraction: number;
    if (this.spec.replicas === 0) fraction = -specReplicas(rs);
    else {
      const maxReplicas = this.spec.replicas + maxSurge(this.d);
      const annotated = rs.metadata?.annotations?.[DeploymentAnnotation.MaxReplicas];
      let before = annotated !== undefined && /^\d+$/.test(annotated) ? Number(annotated) : 0;
      if (before === 0) before = this.d.status?.replicas ?? 0;
      // integer.RoundToInt32: round half away from zero.
      const x = (specReplicas(rs) * maxReplicas) / before;
      fraction = before === 0 ? 0 : (x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5)) - specReplicas(rs);
    }
    const allowed = toAdd - added;
    return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
  }

  findActiveOrLatest(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): ReplicaSet | undefined {
    if (!newRS && oldRSs.length === 0) return undefined;
    const olds = this.curAll(oldRSs).sort((a, b) => byCreation(b, a));
    const all = [...olds, ...this.curAll([newRS])].filter((rs) => specReplicas(rs) > 0);
    if (all.length === 0) return newRS ? this.cur(newRS) : olds[0];
    return all.length === 1 ? all[0] : undefined;
  }

  isSaturated(rs: ReplicaSet): boolean {
    const desired = rs.metadata?.annotations?.[DeploymentAnnotation.DesiredReplicas];
    if (desired === undefined || !/^-?\d+$/.test(desired)) return false;
    const r = this.spec.replicas;
    return specReplicas(rs) === r && Number(desired) === r && availableReplicas(rs) === r;
  }

  // ---- cleanup and status -------------------------------------------------------------------

  /** sync.go cleanupDeployment: delete the oldest zero-sized old RSs beyond revisionHistoryLimit. */
  cleanup(oldRSs: ReplicaSet[]): void {
    const limit = this.spec.revisionHistoryLimit;
    if (limit === undefined) return;
    const cleanable = this.curAll(oldRSs).filter((rs) => !rs.metadata?.deletionTimestamp);
    const diff = cleanable.length - limit;
    if (diff <= 0) return;
    cleanable.sort(byRevision);
    for (const rs of cleanable.slice(0, diff)) {
      if (statusReplicas(rs) !== 0 || specReplicas(rs) !== 0) continue;
      if ((rs.metadata?.generation ?? 0) > (rs.status?.observedGeneration ?? 0)) continue;
      const name = rs.metadata?.name ?? "";
      this.owned.delete(name);
      this.updated.delete(name);
      this.deleted.push(rs);
    }
  }

  /** deployment_util.go DeploymentComplete. */
  complete(s: DeploymentStatus): boolean {
    const r = this.spec.replicas;
    return (s.updatedReplicas ?? 0) === r && (s.replicas ?? 0) === r && (s.availableReplicas ?? 0) === r && (s.observedGeneration ?? 0) >= (this.d.metadata?.generation ?? 0);
  }

  /** sync.go calculateStatus. */
  calculateStatus(newRS: ReplicaSet | undefined): DeploymentStatus {
    const all = this.list();
    const available = sum(all, availableReplicas);
    const n = newRS && this.owned.has(newRS.metadata?.name ?? "") ? this.cur(newRS) : undefined;
    const status: DeploymentStatus = {
      observedGeneration: this.d.metadata?.generation ?? 0,
      replicas: sum(all, statusReplicas),
      updatedReplicas: n ? statusReplicas(n) : 0,
      readyReplicas: sum(all, readyReplicas),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, sum(all, specReplicas) - available),
      ...(this.status.collisionCount !== undefined ? { collisionCount: this.status.collisionCount } : {}),
      conditions: [...(this.status.conditions ?? [])],
    };
    if (available >= this.spec.replicas - maxUnavailable(this.d)) {
      setCondition(status, this.condition("Available", "True", DeploymentReason.MinimumReplicasAvailable, "Deployment has minimum availability."));
    } else {
      setCondition(status, this.condition("Available", "False", DeploymentReason.MinimumReplicasUnavailable, "Deployment does not have minimum availability."));
    }
    return status;
  }

  syncDeploymentStatus(newRS: ReplicaSet | undefined): void {
    this.status = this.calculateStatus(newRS);
  }

  /** progress.go syncRolloutStatus: Available plus the Progressing condition. */
  syncRolloutStatus(newRS: ReplicaSet | undefined): void {
    const next = this.calculateStatus(newRS);
    const deadline = this.spec.progressDeadlineSeconds;
    if (deadline === undefined) removeCondition(next, "Progressing");
    const current = getCondition(this.status, "Progressing");
    const isComplete = next.replicas === next.updatedReplicas && current?.reason === DeploymentReason.NewReplicaSetAvailable;
    const rsName = newRS?.metadata?.name;
    if (deadline !== undefined && !isComplete) {
      if (this.complete(next)) {
        const msg = rsName ? `ReplicaSet "${rsName}" has successfully progressed.` : `Deployment "${this.name}" has successfully progressed.`;
        setCondition(next, this.condition("Progressing", "True", DeploymentReason.NewReplicaSetAvailable, msg));
      } else if (this.progressing(next)) {
        const msg = rsName ? `ReplicaSet "${rsName}" is progressing.` : `Deployment "${this.name}" is progressing.`;
        let c = this.condition("Progressing", "True", DeploymentReason.ReplicaSetUpdated, msg);
        // Progress updates lastUpdateTime even when the reason is unchanged.
        if (current) {
          if (current.status === "True") c = { ...c, lastTransitionTime: current.lastTransitionTime };
          removeCondition(next, "Progressing");
        }
        setCondition(next, c);
      } else if (this.timedOut(next, deadline)) {
        const msg = rsName ? `ReplicaSet "${rsName}" has timed out progressing.` : `Deployment "${this.name}" has timed out progressing.`;
        setCondition(next, this.condition("Progressing", "False", DeploymentReason.ProgressDeadlineExceeded, msg));
      }
    }
    // ReplicaFailure conditions of the ReplicaSets move to the Deployment.
    const failure = [...this.curAll([newRS]), ...this.list()].flatMap((rs) => rs.status?.conditions ?? []).find((c) => c.type === "ReplicaFailure");
    if (failure) setCondition(next, { type: "ReplicaFailure", status: failure.status, lastUpdateTime: failure.lastTransitionTime, lastTransitionTime: failure.lastTransitionTime, reason: failure.reason, message: failure.message });
    else removeCondition(next, "ReplicaFailure");
    this.status = next;
  }

  /** deployment_util.go DeploymentProgressing: more updated, fewer old, more ready or more available. */
  progressing(next: DeploymentStatus): boolean {
    const old = this.status;
    const oldOld = (old.replicas ?? 0) - (old.updatedReplicas ?? 0);
    const newOld = (next.replicas ?? 0) - (next.updatedReplicas ?? 0);
    return (
      (next.updatedReplicas ?? 0) > (old.updatedReplicas ?? 0) ||
      newOld < oldOld ||
      (next.readyReplicas ?? 0) > (old.readyReplicas ?? 0) ||
      (next.availableReplicas ?? 0) > (old.availableReplicas ?? 0)
    );
  }

  /** deployment_util.go DeploymentTimedOut: no progress reported for progressDeadlineSeconds. */
  timedOut(next: DeploymentStatus, deadline: number): boolean {
    const c = getCondition(next, "Progressing");
    if (!c) return false;
    if (c.reason === DeploymentReason.NewReplicaSetAvailable) return false;
    if (c.reason === DeploymentReason.ProgressDeadlineExceeded) return true;
    const from = c.lastUpdateTime ? Date.parse(c.lastUpdateTime) : NaN;
    return !Number.isNaN(from) && from + deadline * 1000 < this.now.getTime();
  }

  /** deployment_controller.go checkPausedConditions. */
  checkPausedConditions(): void {
    if (this.spec.progressDeadlineSeconds === undefined) return;
    const c = getCondition(this.status, "Progressing");
    if (c?.reason === DeploymentReason.ProgressDeadlineExceeded) return;
    const pausedExists = c?.reason === DeploymentReason.DeploymentPaused;
    if (this.spec.paused && !pausedExists) {
      setCondition(this.status, this.condition("Progressing", "Unknown", DeploymentReason.DeploymentPaused, "Deployment is paused"));
    } else if (!this.spec.paused && pausedExists) {
      setCondition(this.status, this.condition("Progressing", "Unknown", DeploymentReason.DeploymentResumed, "Deployment is resumed"));
    }
  }

  result(): DeploymentActions {
    const byName = (a: ReplicaSet, b: ReplicaSet) => ((a.metadata?.name ?? "") < (b.metadata?.name ?? "") ? -1 : 1);
    const pick = (names: Iterable<string>) => [...names].filter((n) => this.owned.has(n)).map((n) => this.owned.get(n)!);
    return {
      create: pick(this.created).sort(byName),
      update: [...pick([...this.updated].filter((n) => !this.created.has(n))), ...this.released].sort(byName),
      delete: [...this.deleted].sort(byName),
      status: this.status,
      ...(this.revision !== undefined ? { revision: this.revision } : {}),
    };
  }
}

/**
 * One syncDeployment of `d` against the ReplicaSets and pods of the cluster (other namespaces
 * are ignored). `now` stamps condition times and decides the progress deadline.
 */
export function reconcileDeployment(d: Deployment, replicaSets: ReplicaSet[], pods: Pod[], now: Date): DeploymentActions {
  const s = new DeploymentSync(d, replicaSets, pods, now);
  const selector = selectorMatcher(d.spec?.selector);
  if (selector.kind === "error") {
    return { create: [], update: [], delete: [], status: structuredClone(d.status ?? {}), error: `invalid selector: ${selector.message}` };
  }
  // "This deployment is selecting all pods. A non-empty selector is required."
  if (isEmptySelector(d.spec?.selector) || !d.spec?.selector) {
    const status = structuredClone(d.status ?? {});
    if ((status.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) status.observedGeneration = d.metadata?.generation;
    return { create: [], update: [], delete: [], status, error: "This deployment is selecting all pods. A non-empty selector is required." };
  }
  s.claim(selector.value);
  try {
    if (d.metadata?.deletionTimestamp) {
      const { newRS } = s.getAll(false);
      s.syncDeploymentStatus(newRS);
    } else {
      s.checkPausedConditions();
      if (s.spec.paused || s.isScalingEvent()) s.sync();
      else if (s.spec.rolling) s.rolloutRolling();
      else s.rolloutRecreate();
    }
  } catch (e) {
    if (!(e instanceof Abort)) throw e;
    // Hash collision: the bumped collisionCount is written (with any adoption); the next call retries.
    return s.result();
  }
  return s.result();
}
