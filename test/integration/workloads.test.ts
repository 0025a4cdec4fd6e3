/**
 * The workload controllers against a running cluster, driven by kubectl: a Job whose pod runs
 * curl once in its netns and completes (its output is `kubectl logs job/NAME`), a Job that
 * fails past its backoffLimit, a CronJob on a sped-up clock, a DaemonSet on every node
 * (including one that joins later), a StatefulSet's ordered, stable pods.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, until } from "./fixture.ts";

let cluster: TestCluster;
const ok = (args: string[]): Promise<string> => cluster.kubectlOk(args);



async function apply(name: string, manifest: object): Promise<void> {
  const file = join(cluster.dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(manifest));
  await ok(["apply", "-f", file]);
}

async function getJson(args: string[]): Promise<any> {
  return JSON.parse(await ok(["get", ...args, "-o", "json"]));
}

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 2, controlPlaneEnv: { KUBEWIRE_CRON_MINUTE_SECONDS: "3" } });
});

afterAll(async () => {
  await cluster?.stop();
});

describe("workload controllers", () => {
  it("a Job's pod runs curl against a netexec pod and completes; kubectl logs job/NAME shows the answer", async () => {
    await apply("netexec", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "server", labels: { app: "server" } },
      spec: { nodeName: "node-2", containers: [{ name: "app", image: "registry.k8s.io/e2e-test-images/agnhost:2.53", args: ["netexec", "--http-port=8080"] }] },
    });
    const server = await cluster.waitForPodRunning("default", "server");
    await apply("fetch", {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "fetch" },
      spec: {
        template: { spec: { restartPolicy: "Never", containers: [{ name: "curl", image: "curlimages/curl", command: ["curl", "-s", `http://${server.podIp}:8080/hostname`] }] } },
      },
    });
    await ok(["wait", "--for=condition=complete", "job/fetch", "--timeout=30s"]);
    const logs = await ok(["logs", "job/fetch"]);
    expect(logs).toContain("server");
    const job = await getJson(["job", "fetch"]);
    expect(job.status).toMatchObject({ succeeded: 1 });
    expect(job.status.completionTime).toBeTruthy();
    expect(job.spec.selector.matchLabels["batch.kubernetes.io/controller-uid"]).toBe(job.metadata.uid);
    const pods = (await getJson(["pods", "-l", "job-name=fetch"])).items;
    expect(pods).toHaveLength(1);
    expect(pods[0].status.phase).toBe("Succeeded");
    expect(pods[0].status.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
    expect(pods[0].metadata.ownerReferences[0]).toMatchObject({ kind: "Job", name: "fetch", controller: true });
  });

  it("kubectl create job runs its command; a Job that would restart Always is refused", async () => {
    const server = await cluster.waitForPodRunning("default", "server");
    await ok(["create", "job", "quick", "--image=busybox", "--", "wget", "-qO-", `http://${server.podIp}:8080/hostname`]);
    await ok(["wait", "--for=condition=complete", "job/quick", "--timeout=30s"]);
    expect(await ok(["logs", "job/quick"])).toContain("server");
    expect(await ok(["get", "job", "quick"])).toMatch(/quick\s+Complete\s+1\/1/);
    writeFileSync(join(cluster.dir, "bad.json"), JSON.stringify({ apiVersion: "batch/v1", kind: "Job", metadata: { name: "bad" }, spec: { template: { spec: { containers: [{ name: "c", image: "busybox" }] } } } }));
    const res = await cluster.kubectl(["apply", "-f", join(cluster.dir, "bad.json")]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"');
  });

  it("a Job whose curl fails ends Failed after backoffLimit 1 (two pods)", async () => {
    const server = await cluster.waitForPodRunning("default", "server");
    await apply("broken", {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "broken" },
      spec: {
        backoffLimit: 1,
        template: { spec: { restartPolicy: "Never", containers: [{ name: "curl", image: "busybox", command: ["sh", "-c", `wget -qO- http://${server.podIp}:9999/`] }] } },
      },
    });
    await ok(["wait", "--for=condition=failed", "job/broken", "--timeout=30s"]);
    const job = await getJson(["job", "broken"]);
    expect(job.status.failed).toBe(2);
    expect(job.status.conditions.find((c: any) => c.type === "Failed")).toMatchObject({ status: "True", reason: "BackoffLimitExceeded" });
    const pods = (await getJson(["pods", "-l", "job-name=broken"])).items;
    expect(pods).toHaveLength(2);
    for (const p of pods) {
      expect(p.status.phase).toBe("Failed");
      expect(p.status.containerStatuses[0].state.terminated.reason).toBe("Error");
      expect(p.status.containerStatuses[0].state.terminated.exitCode).not.toBe(0);
    }
  });

  it("a CronJob on `* * * * *` (a minute is 3 s here) creates Jobs named by the scheduled minute", async () => {
    await apply("tick", {
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: { name: "tick" },
      spec: {
        schedule: "* * * * *",
        successfulJobsHistoryLimit: 2,
        jobTemplate: { spec: { template: { spec: { restartPolicy: "OnFailure", containers: [{ name: "hello", image: "busybox", command: ["sh", "-c", "echo hello from cron"] }] } } } },
      },
    });
    const name = await until("a job of the cronjob", async () => {
      const jobs = (await getJson(["jobs"])).items.filter((j: any) => j.metadata.ownerReferences?.[0]?.kind === "CronJob");
      return jobs.length > 0 ? (jobs[0].metadata.name as string) : undefined;
    });
    expect(name).toMatch(/^tick-\d+$/);
    await ok(["wait", "--for=condition=complete", `job/${name}`, "--timeout=30s"]);
    expect(await ok(["logs", `job/${name}`])).toContain("hello from cron");
    const cj = await getJson(["cronjob", "tick"]);
    expect(cj.status.lastScheduleTime).toBeTruthy();
    await ok(["patch", "cronjob", "tick", "--type=merge", "-p", '{"spec":{"suspend":true}}']);
  });

  it("a DaemonSet puts one pod on every node, and on a node that joins later", async () => {
    await apply("ds", {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "agent" },
      spec: {
        selector: { matchLabels: { app: "agent" } },
        template: { metadata: { labels: { app: "agent" } }, spec: { containers: [{ name: "web", image: "nginx" }] } },
      },
    });
    const onNodes = async (): Promise<string[]> => {
      const pods = (await getJson(["pods", "-l", "app=agent"])).items.filter((p: any) => p.status.phase === "Running" && !p.metadata.deletionTimestamp);
      return pods.map((p: any) => p.spec.nodeName as string).sort();
    };
    await until("daemon pods on node-1 and node-2", async () => {
      const n = await onNodes();
      return n.join(",") === "node-1,node-2" ? n : undefined;
    });
    cluster.nodeNames.push("node-3");
    cluster.startNode("node-3");
    await cluster.waitForNode("node-3");
    await until("a daemon pod on node-3", async () => {
      const n = await onNodes();
      return n.join(",") === "node-1,node-2,node-3" ? n : undefined;
    });
    await until("DaemonSet status", async () => {
      const ds = await getJson(["ds", "agent"]);
      return ds.status?.desiredNumberScheduled === 3 && ds.status?.numberReady === 3 ? ds : undefined;
    });
    // A node that goes away takes its daemon pod with it.
    await cluster.stopProcess("node-3");
    await ok(["delete", "node", "node-3"]);
    await until("daemon pods on node-1 and node-2 only", async () => {
      const n = await onNodes();
      return n.join(",") === "node-1,node-2" ? n : undefined;
    });
  });

  it("a StatefulSet of 3 gets name-0..2 in order, with hostname and subdomain", async () => {
    await apply("sts", {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "db" },
      spec: {
        replicas: 3,
        serviceName: "db-hl",
        selector: { matchLabels: { app: "db" } },
        template: { metadata: { labels: { app: "db" } }, spec: { containers: [{ name: "web", image: "nginx" }] } },
      },
    });
    const pods = await until("3 Running StatefulSet pods", async () => {
      const items = (await getJson(["pods", "-l", "app=db"])).items;
      return items.length === 3 && items.every((p: any) => p.status.phase === "Running") ? items : undefined;
    });
    const byName = new Map<string, any>(pods.map((p: any) => [p.metadata.name, p]));
    expect([...byName.keys()].sort()).toEqual(["db-0", "db-1", "db-2"]);
    for (const [name, p] of byName) {
      expect(p.spec.hostname).toBe(name);
      expect(p.spec.subdomain).toBe("db-hl");
    }
    // OrderedReady: each pod was created after the previous one was Running.
    const created = (n: string) => Date.parse(byName.get(n).metadata.creationTimestamp);
    const started = (n: string) => Date.parse(byName.get(n).status.startTime);
    expect(created("db-1")).toBeGreaterThanOrEqual(started("db-0"));
    expect(created("db-2")).toBeGreaterThanOrEqual(started("db-1"));
    // Persistent identity: a deleted pod comes back under the same name.
    const uid = byName.get("db-1").metadata.uid;
    await ok(["delete", "pod", "db-1", "--wait=false"]);
    await until("db-1 recreated", async () => {
      const p = await getJson(["pod", "db-1"]);
      return p.metadata.uid !== uid && p.status.phase === "Running" ? p : undefined;
    });
    await until("StatefulSet status", async () => {
      const s = await getJson(["sts", "db"]);
      return s.status?.readyReplicas === 3 ? s : undefined;
    });
    // Scale down from the highest ordinal.
    await ok(["scale", "statefulset", "db", "--replicas=1"]);
    await until("only db-0 left", async () => {
      const items = (await getJson(["pods", "-l", "app=db"])).items;
      return items.length === 1 && items[0].metadata.name === "db-0" ? items : undefined;
    });
  });

  it("every namespace gets the default ServiceAccount; a pod naming it is admitted", async () => {
    await ok(["create", "namespace", "team"]);
    await until("default serviceaccount in team", async () => ((await cluster.kubectl(["get", "serviceaccount", "default", "-n", "team"])).code === 0 ? true : undefined));
    await apply("sa-pod", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "sa-pod", namespace: "team" },
      spec: { serviceAccountName: "default", containers: [{ name: "web", image: "nginx" }] },
    });
    await cluster.waitForPodRunning("team", "sa-pod");
  });
});
