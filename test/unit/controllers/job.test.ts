import { describe, expect, it } from "vitest";
import type { Job } from "kubernetes-types/batch/v1.js";
import type { Pod } from "kubernetes-types/core/v1.js";
import { reconcileJob } from "../../../control-plane/controllers/logic/job.ts";

const NOW = new Date("2026-01-01T00:10:00Z");
let seed = 1;
const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);

function job(spec: Partial<NonNullable<Job["spec"]>> = {}, status?: Job["status"]): Job {
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: "pi", namespace: "ns", uid: "job-uid" },
    spec: { template: { metadata: { labels: { app: "pi" } }, spec: { restartPolicy: "Never", containers: [{ name: "c", image: "curl", command: ["curl", "http://x"] }] } }, ...spec },
    ...(status ? { status } : {}),
  };
}

function pod(name: string, phase: string, owner = "job-uid"): Pod {
  return {
    metadata: { name, namespace: "ns", uid: `uid-${name}`, creationTimestamp: "2026-01-01T00:00:00Z", ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: "pi", uid: owner, controller: true }] },
    spec: { containers: [] },
    status: { phase },
  };
}

describe("reconcileJob", () => {
  it("creates one pod with the job labels and owner, and sets startTime", () => {
    const a = reconcileJob(job(), [], rand, NOW);
    expect(a.create).toHaveLength(1);
    const p = a.create[0]!;
    expect(p.metadata?.name).toMatch(/^pi-[a-z0-9]{5}$/);
    expect(p.metadata?.labels).toMatchObject({ app: "pi", "job-name": "pi", "batch.kubernetes.io/job-name": "pi", "batch.kubernetes.io/controller-uid": "job-uid", "controller-uid": "job-uid" });
    expect(p.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "Job", uid: "job-uid", controller: true });
    expect(p.spec?.restartPolicy).toBe("Never");
    expect(a.status.startTime).toBe("2026-01-01T00:10:00Z");
    expect(a.status.active).toBe(0);
  });

  it("honours parallelism and completions", () => {
    const a = reconcileJob(job({ completions: 5, parallelism: 3 }), [pod("pi-a", "Succeeded"), pod("pi-b", "Succeeded"), pod("pi-c", "Succeeded"), pod("pi-d", "Running")], rand, NOW);
    // 2 completions left, one running: one more.
    expect(a.create).toHaveLength(1);
    expect(a.status).toMatchObject({ succeeded: 3, active: 1, failed: 0 });
  });

  it("completes with condition Complete and completionTime", () => {
    const a = reconcileJob(job(), [pod("pi-a", "Succeeded")], rand, NOW);
    expect(a.create).toHaveLength(0);
    expect(a.status.completionTime).toBe("2026-01-01T00:10:00Z");
    expect(a.status.conditions?.find((c) => c.type === "Complete")).toMatchObject({ status: "True", reason: "CompletionsReached" });
    expect(a.status.succeeded).toBe(1);
  });

  it("replaces a failed pod until backoffLimit, then fails the job", () => {
    const a = reconcileJob(job({ backoffLimit: 1 }), [pod("pi-a", "Failed")], rand, NOW);
    expect(a.create).toHaveLength(1);
    expect(a.status.failed).toBe(1);
    const b = reconcileJob(job({ backoffLimit: 1 }), [pod("pi-a", "Failed"), pod("pi-b", "Failed")], rand, NOW);
    expect(b.create).toHaveLength(0);
    expect(b.status.conditions?.find((c) => c.type === "Failed")).toMatchObject({ status: "True", reason: "BackoffLimitExceeded" });
  });

  it("default backoffLimit is 6", () => {
    const pods = Array.from({ length: 6 }, (_, i) => pod(`pi-${i}`, "Failed"));
    expect(reconcileJob(job(), pods, rand, NOW).create).toHaveLength(1);
    expect(reconcileJob(job(), [...pods, pod("pi-x", "Failed")], rand, NOW).status.conditions?.some((c) => c.type === "Failed")).toBe(true);
  });

  it("a finished job does nothing more; pods of other owners are ignored", () => {
    const done = job({}, { conditions: [{ type: "Complete", status: "True" }], succeeded: 1 });
    const a = reconcileJob(done, [], rand, NOW);
    expect(a.create).toHaveLength(0);
    expect(a.status.succeeded).toBe(1);
    const b = reconcileJob(job(), [pod("other", "Running", "other-uid")], rand, NOW);
    expect(b.create).toHaveLength(1);
  });

  it("a suspended job deletes its active pods", () => {
    const a = reconcileJob(job({ suspend: true }), [pod("pi-a", "Running")], rand, NOW);
    expect(a.create).toHaveLength(0);
    expect(a.delete.map((p) => p.metadata?.name)).toEqual(["pi-a"]);
  });
});
