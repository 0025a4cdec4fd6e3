/**
 * The CronJob controller's sync (pkg/controller/cronjob/cronjob_controllerv2.go syncCronJob,
 * utils.go getJobName, mostRecentScheduleTime, cleanupFinishedJobs). Pure: `now` is the
 * controller's clock (which the runtime may run faster than the wall clock). UTC only.
 */
import type { CronJob, CronJobStatus, Job } from "kubernetes-types/batch/v1.js";
import type { ObjectReference } from "kubernetes-types/core/v1.js";
import type { OwnerReference } from "kubernetes-types/meta/v1.js";
import { rfc3339 } from "../../../cluster/meta.ts";
import { mostRecentScheduleTime, nextAfter, parseCron } from "./cron.ts";
import { jobFinished } from "./job.ts";
import { controllerRefOf } from "./replicaset.ts";

export const SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp";

export interface CronJobActions {
  create: Job[];
  delete: Job[];
  status: CronJobStatus;
  /** When to look again (ms of the controller's clock), if there is a next run. */
  requeueAfterMs?: number;
  error?: string;
}

/** utils.go getJobName: the scheduled time in minutes since the epoch. */
export function cronJobName(cronJobName: string, scheduled: Date): string {
  return `${cronJobName}-${Math.floor(scheduled.getTime() / 60_000)}`;
}

function ownedBy(cj: CronJob, job: Job): boolean {
  return job.metadata?.namespace === cj.metadata?.namespace && controllerRefOf(job.metadata)?.uid === cj.metadata?.uid;
}

function refOf(job: Job): ObjectReference {
  return { apiVersion: "batch/v1", kind: "Job", name: job.metadata?.name ?? "", namespace: job.metadata?.namespace ?? "", uid: job.metadata?.uid ?? "" };
}

function startOf(job: Job): string {
  return job.status?.startTime ?? job.metadata?.creationTimestamp ?? "";
}

export function reconcileCronJob(cj: CronJob, jobs: readonly Job[], now: Date): CronJobActions {
  const meta = cj.metadata ?? {};
  const owned = jobs.filter((j) => ownedBy(cj, j));
  const active = owned.filter((j) => !jobFinished(j) && !j.metadata?.deletionTimestamp);
  const status: CronJobStatus = { ...(cj.status ?? {}) };
  const activeRefs = active.map(refOf);
  if (activeRefs.length > 0) status.active = activeRefs;
  else delete status.active;
  const succeededTimes = owned.filter((j) => jobFinished(j) === "Complete").map((j) => j.status?.completionTime ?? "").filter(Boolean).sort();
  if (succeededTimes.length > 0) status.lastSuccessfulTime = succeededTimes[succeededTimes.length - 1];
  const del: Job[] = [];
  const create: Job[] = [];

  // cleanupFinishedJobs: keep the newest `limit` of each kind of finished Job.
  const prune = (kind: "Complete" | "Failed", limit: number) => {
    const finished = owned.filter((j) => jobFinished(j) === kind && !j.metadata?.deletionTimestamp).sort((a, b) => startOf(a).localeCompare(startOf(b)));
    if (finished.length > limit) del.push(...finished.slice(0, finished.length - limit));
  };
  prune("Complete", cj.spec?.successfulJobsHistoryLimit ?? 3);
  prune("Failed", cj.spec?.failedJobsHistoryLimit ?? 1);

  const parsed = parseCron(cj.spec?.schedule ?? "");
  if (parsed.kind === "error") return { create, delete: del, status, error: `unparseable schedule: ${parsed.message}` };
  if (cj.spec?.timeZone && cj.spec.timeZone !== "UTC" && cj.spec.timeZone !== "Etc/UTC") {
    return { create, delete: del, status, error: `time zone ${cj.spec.timeZone} is not supported (UTC only)` };
  }
  const schedule = parsed.value;
  const next = nextAfter(schedule, now);
  const requeue = next ? { requeueAfterMs: next.getTime() - now.getTime() + 100 } : {};
  if (cj.spec?.suspend) return { create, delete: del, status, ...requeue };

  const earliestText = status.lastScheduleTime ?? meta.creationTimestamp;
  const earliest = earliestText ? new Date(earliestText) : now;
  const { time: scheduled } = mostRecentScheduleTime(schedule, earliest, now);
  if (!scheduled) return { create, delete: del, status, ...requeue };
  const deadline = cj.spec?.startingDeadlineSeconds;
  if (deadline !== undefined && deadline !== null && scheduled.getTime() + deadline * 1000 < now.getTime()) {
    // Missed its window: nothing runs for it.
    return { create, delete: del, status, ...requeue };
  }
  const name = cronJobName(meta.name ?? "", scheduled);
  if (owned.some((j) => j.metadata?.name === name) || jobs.some((j) => j.metadata?.namespace === meta.namespace && j.metadata?.name === name)) {
    return { create, delete: del, status: { ...status, lastScheduleTime: rfc3339(scheduled) }, ...requeue };
  }
  const policy = cj.spec?.concurrencyPolicy ?? "Allow";
  if (policy === "Forbid" && active.length > 0) return { create, delete: del, status, ...requeue };
  if (policy === "Replace") {
    del.push(...active);
    delete status.active;
  }
  const tmpl = cj.spec?.jobTemplate;
  const ref: OwnerReference = { apiVersion: "batch/v1", kind: "CronJob", name: meta.name ?? "", uid: meta.uid ?? "", controller: true, blockOwnerDeletion: true };
  create.push({
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name,
      namespace: meta.namespace,
      labels: { ...(tmpl?.metadata?.labels ?? {}) },
      annotations: { ...(tmpl?.metadata?.annotations ?? {}), [SCHEDULED_TIMESTAMP_ANNOTATION]: rfc3339(scheduled) },
      ownerReferences: [ref],
    },
    spec: structuredClone(tmpl?.spec ?? { template: { spec: { containers: [] } } }),
  });
  return { create, delete: del, status: { ...status, lastScheduleTime: rfc3339(scheduled) }, ...requeue };
}
