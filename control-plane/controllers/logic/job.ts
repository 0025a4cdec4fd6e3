/**
 * The Job controller's sync (pkg/controller/job/job_controller.go syncJob, manageJob,
 * pastBackoffLimitOnFailure; pkg/registry/batch/job/strategy.go generateSelector for the labels).
 * NonIndexed completion mode only. Pure: the runtime applies the actions and calls again on any
 * change (with expectations, as for ReplicaSets).
 *
 * Simplifications: failed pods are replaced at once (no exponential backoff delay); a pod's
 * failures count once whatever its restartPolicy (the node never restarts a container in place);
 * succeeded/failed are counted from the pods that exist and never decrease (no
 * uncountedTerminatedPods finalizer tracking).
 */
import type { Job, JobCondition, JobStatus } from "kubernetes-types/batch/v1.js";
import type { Pod } from "kubernetes-types/core/v1.js";
import type { OwnerReference } from "kubernetes-types/meta/v1.js";
import { rfc3339 } from "../../../cluster/meta.ts";
import { controllerRefOf, generateName, podFromTemplate } from "./replicaset.ts";

export const JobLabel = {
  ControllerUid: "batch.kubernetes.io/controller-uid",
  LegacyControllerUid: "controller-uid",
  JobName: "batch.kubernetes.io/job-name",
  LegacyJobName: "job-name",
} as const;

export const DEFAULT_BACKOFF_LIMIT = 6;

export interface JobActions {
  create: Pod[];
  delete: Pod[];
  status: JobStatus;
}

/** strategy.go generateSelector: the labels every pod of the Job carries. */
export function jobPodLabels(name: string, uid: string): Record<string, string> {
  return { [JobLabel.ControllerUid]: uid, [JobLabel.LegacyControllerUid]: uid, [JobLabel.JobName]: name, [JobLabel.LegacyJobName]: name };
}

export function jobFinished(job: Job): "Complete" | "Failed" | undefined {
  for (const c of job.status?.conditions ?? []) {
    if ((c.type === "Complete" || c.type === "Failed") && c.status === "True") return c.type;
  }
  return undefined;
}

function condition(type: string, reason: string, message: string, now: string): JobCondition {
  return { type, status: "True", reason, message, lastProbeTime: now, lastTransitionTime: now };
}

export function jobControllerRef(job: Job): OwnerReference {
  return { apiVersion: "batch/v1", kind: "Job", name: job.metadata?.name ?? "", uid: job.metadata?.uid ?? "", controller: true, blockOwnerDeletion: true };
}

/** One syncJob of `job` against the pods of its namespace. */
export function reconcileJob(job: Job, pods: readonly Pod[], rand: () => number, now: Date): JobActions {
  const meta = job.metadata ?? {};
  const uid = meta.uid ?? "";
  const name = meta.name ?? "";
  const nowText = rfc3339(now);
  const prev = job.status ?? {};
  const owned = pods.filter((p) => p.metadata?.namespace === meta.namespace && controllerRefOf(p.metadata)?.uid === uid);
  const active = owned.filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed");
  const succeeded = Math.max(prev.succeeded ?? 0, owned.filter((p) => p.status?.phase === "Succeeded").length);
  const failed = Math.max(prev.failed ?? 0, owned.filter((p) => p.status?.phase === "Failed").length);
  const ready = active.filter((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
  const conditions = [...(prev.conditions ?? [])];
  const status: JobStatus = { ...prev, active: active.length, succeeded, failed, ready };
  if (!status.startTime && !job.spec?.suspend) status.startTime = nowText;
  const create: Pod[] = [];
  const del: Pod[] = [];

  const finished = jobFinished(job);
  if (finished) {
    // A finished Job keeps no running pods (a failed one had them deleted).
    if (finished === "Failed") del.push(...active);
    return { create, delete: del, status: { ...status, conditions } };
  }
  const completions = job.spec?.completions ?? 1;
  const parallelism = job.spec?.parallelism ?? 1;
  const backoffLimit = job.spec?.backoffLimit ?? DEFAULT_BACKOFF_LIMIT;

  if (failed > backoffLimit) {
    conditions.push(condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit", nowText));
    conditions.push(condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", nowText));
    del.push(...active);
    return { create, delete: del, status: { ...status, active: 0, ready: 0, conditions } };
  }
  if (succeeded >= completions) {
    conditions.push(condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", nowText));
    conditions.push(condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods", nowText));
    del.push(...active);
    return { create, delete: del, status: { ...status, active: 0, ready: 0, conditions, completionTime: nowText } };
  }
  if (job.spec?.suspend) {
    del.push(...active);
    return { create, delete: del, status: { ...status, active: 0, ready: 0, conditions } };
  }
  const wantActive = Math.max(0, Math.min(parallelism, completions - succeeded));
  if (active.length < wantActive) {
    const taken = new Set(pods.filter((p) => p.metadata?.namespace === meta.namespace).map((p) => p.metadata?.name));
    const prefix = `${name}-`;
    const ref = jobControllerRef(job);
    for (let i = active.length; i < wantActive; i++) {
      let podName = generateName(prefix, rand);
      while (taken.has(podName)) podName = generateName(prefix, rand);
      taken.add(podName);
      const pod = podFromTemplate(job.spec?.template, meta.namespace, prefix, podName, ref);
      pod.metadata!.labels = { ...pod.metadata!.labels, ...jobPodLabels(name, uid) };
      create.push(pod);
    }
  } else if (active.length > wantActive) {
    // The newest first, as manageJob's activePods sort puts the not-yet-running last.
    const extra = [...active].sort((a, b) => (b.metadata?.creationTimestamp ?? "").localeCompare(a.metadata?.creationTimestamp ?? "") || (b.metadata?.name ?? "").localeCompare(a.metadata?.name ?? ""));
    del.push(...extra.slice(0, active.length - wantActive));
  }
  return { create, delete: del, status: { ...status, conditions } };
}
