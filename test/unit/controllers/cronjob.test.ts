import { describe, expect, it } from "vitest";
import type { CronJob, Job } from "kubernetes-types/batch/v1.js";
import { reconcileCronJob } from "../../../control-plane/controllers/logic/cronjob.ts";

function cj(spec: Partial<NonNullable<CronJob["spec"]>> = {}, status?: CronJob["status"]): CronJob {
  return {
    metadata: { name: "tick", namespace: "ns", uid: "cj-uid", creationTimestamp: "2026-01-01T00:00:10Z" },
    spec: { schedule: "* * * * *", jobTemplate: { metadata: { labels: { a: "b" } }, spec: { template: { spec: { restartPolicy: "Never", containers: [] } } } }, ...spec },
    ...(status ? { status } : {}),
  };
}

function job(name: string, state: "active" | "Complete" | "Failed", start = "2026-01-01T00:01:00Z"): Job {
  return {
    metadata: { name, namespace: "ns", uid: `uid-${name}`, creationTimestamp: start, ownerReferences: [{ apiVersion: "batch/v1", kind: "CronJob", name: "tick", uid: "cj-uid", controller: true }] },
    status: { startTime: start, ...(state === "active" ? { active: 1 } : { conditions: [{ type: state, status: "True" }], ...(state === "Complete" ? { completionTime: start } : {}) }) },
  };
}

describe("reconcileCronJob", () => {
  it("creates the job of the most recent scheduled time, named in minutes since the epoch", () => {
    const a = reconcileCronJob(cj(), [], new Date("2026-01-01T00:02:30Z"));
    expect(a.create).toHaveLength(1);
    const t = Date.parse("2026-01-01T00:02:00Z") / 60000;
    expect(a.create[0]!.metadata?.name).toBe(`tick-${t}`);
    expect(a.create[0]!.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "CronJob", uid: "cj-uid", controller: true });
    expect(a.create[0]!.metadata?.labels).toEqual({ a: "b" });
    expect(a.status.lastScheduleTime).toBe("2026-01-01T00:02:00Z");
    expect(a.requeueAfterMs).toBeGreaterThan(29_000);
  });

  it("nothing before the first scheduled time; nothing twice", () => {
    expect(reconcileCronJob(cj(), [], new Date("2026-01-01T00:00:50Z")).create).toHaveLength(0);
    const again = reconcileCronJob(cj({}, { lastScheduleTime: "2026-01-01T00:02:00Z" }), [], new Date("2026-01-01T00:02:40Z"));
    expect(again.create).toHaveLength(0);
  });

  it("suspend stops scheduling", () => {
    expect(reconcileCronJob(cj({ suspend: true }), [], new Date("2026-01-01T00:05:00Z")).create).toHaveLength(0);
  });

  it("Forbid skips while one runs; Replace deletes the running one; Allow runs both", () => {
    const running = [job("tick-1", "active")];
    const now = new Date("2026-01-01T00:05:00Z");
    expect(reconcileCronJob(cj({ concurrencyPolicy: "Forbid" }), running, now).create).toHaveLength(0);
    const r = reconcileCronJob(cj({ concurrencyPolicy: "Replace" }), running, now);
    expect(r.create).toHaveLength(1);
    expect(r.delete.map((j) => j.metadata?.name)).toEqual(["tick-1"]);
    const a = reconcileCronJob(cj(), running, now);
    expect(a.create).toHaveLength(1);
    expect(a.delete).toHaveLength(0);
    expect(a.status.active?.map((x) => x.name)).toEqual(["tick-1"]);
  });

  it("keeps successfulJobsHistoryLimit and failedJobsHistoryLimit finished jobs", () => {
    const jobs = [
      job("s1", "Complete", "2026-01-01T00:01:00Z"),
      job("s2", "Complete", "2026-01-01T00:02:00Z"),
      job("s3", "Complete", "2026-01-01T00:03:00Z"),
      job("f1", "Failed", "2026-01-01T00:01:30Z"),
      job("f2", "Failed", "2026-01-01T00:02:30Z"),
    ];
    const a = reconcileCronJob(cj({ successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 1 }, { lastScheduleTime: "2026-01-01T00:03:00Z" }), jobs, new Date("2026-01-01T00:03:10Z"));
    expect(a.delete.map((j) => j.metadata?.name).sort()).toEqual(["f1", "s1", "s2"]);
    expect(a.status.lastSuccessfulTime).toBe("2026-01-01T00:03:00Z");
  });

  it("a bad schedule is an error", () => {
    expect(reconcileCronJob(cj({ schedule: "nope" }), [], new Date()).error).toMatch(/schedule/);
  });
});
