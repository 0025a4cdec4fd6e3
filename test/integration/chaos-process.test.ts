/**
 * `kubewire chaos kill|pause|resume|restart` on a cluster of real processes: the command acts on
 * the very process (its PID's state in /proc), traffic between pods shows it, and the restarted
 * process serves again with nothing lost. The CLI finds the processes in the cluster's state file,
 * as after `kubewire up` (the fixture writes it the same way, with how to start each again).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { procState } from "../../cli/chaos.ts";
import { readState } from "../../cli/state.ts";
import { isAlive } from "../../cli/processes.ts";
import type { KubeObjectLike } from "../../cluster/kube-client.ts";
import { TestCluster, netexecPod, until, type TestPod } from "./fixture.ts";

let cluster: TestCluster;
let a: TestPod;
let b: TestPod;

function pidOf(name: string): number {
  const p = readState(cluster.dir)?.processes.find((q) => q.name === name);
  if (!p) throw new Error(`no ${name} in cluster.json`);
  return p.pid;
}

async function chaos(...args: string[]): Promise<string> {
  const r = await cluster.kubewire(["chaos", ...args], { timeoutMs: 90_000 });
  if (r.code !== 0) throw new Error(`kubewire chaos ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** curl from pod a to pod b's netexec: its hostname, or the failure. */
async function aToB(timeoutSeconds = 2): Promise<{ ok: boolean; text: string }> {
  const r = await cluster.exec(a, ["curl", "-sS", "-m", String(timeoutSeconds), `http://${b.podIp}:8080/hostname`], 30_000);
  return { ok: r.exitCode === 0, text: `${r.stdout}${r.stderr}`.trim() };
}

/** Every pod's namespace/name, once the API answers again (its clients reconnect to NATS first). */
async function podNames(): Promise<string[]> {
  const list = await until("the API to list pods", () => cluster.pods(), 60_000);
  return list.map((p: KubeObjectLike) => `${p.metadata.namespace}/${p.metadata.name}`).sort();
}

async function untilAToB(what: string): Promise<void> {
  await until(what, async () => ((await aToB()).ok ? true : undefined), 60_000);
}

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 2 });
  await cluster.apply(netexecPod("a", "node-1", { app: "a", chaos: "ab" }));
  await cluster.apply(netexecPod("b", "node-2", { app: "b", chaos: "ab" }));
  a = await cluster.waitForPodRunning("default", "a");
  b = await cluster.waitForPodRunning("default", "b");
  await untilAToB("a reaching b");
  // A service with endpoints on both nodes, so convergence covers kube-proxy's rules too.
  await cluster.apply({ apiVersion: "v1", kind: "Service", metadata: { name: "ab" }, spec: { selector: { chaos: "ab" }, ports: [{ port: 80, targetPort: 8080 }] } });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("kubewire chaos on processes", () => {
  it("check: on a healthy cluster every invariant holds", async () => {
    const r = await cluster.kubewire(["chaos", "check", "--wait", "30s", "-o", "json"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { holds: boolean; nodes: string[]; counts: { podIps: number; clusterIps: number } };
    expect(out).toMatchObject({ holds: true, nodes: ["node-1", "node-2"] });
    expect(out.counts.podIps).toBeGreaterThanOrEqual(4);
    expect(out.counts.clusterIps).toBeGreaterThanOrEqual(2);
  });

  it("pause stops the node's process (SIGSTOP) and its pods stop answering; resume brings them back", async () => {
    const pid = pidOf("node-2");
    expect(await chaos("pause", "node-2")).toMatch(/^paused node-2 \(pid \d+, SIGSTOP\)/);
    expect(procState(pid)).toBe("T");
    const during = await aToB(1);
    expect(during.ok).toBe(false);
    expect(await chaos("resume", "node-2")).toMatch(/^resumed node-2/);
    expect(procState(pid)).not.toBe("T");
    await untilAToB("a reaching b after resume");
  });

  it("kill is kill -9: the process is gone and stays gone; restart starts it again and its pods serve", async () => {
    const pid = pidOf("node-2");
    expect(await chaos("kill", "node-2")).toMatch(/^killed node-2 .*SIGKILL/);
    // Gone, or a zombie until this test process (its parent here) reaps it.
    expect([undefined, "Z"]).toContain(procState(pid));
    expect((await aToB(1)).ok).toBe(false);
    const again = await cluster.kubewire(["chaos", "kill", "node-2"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/node-2 is not running .* kubewire chaos restart node-2/);
    // The check sees the dead node.
    const check = await cluster.kubewire(["chaos", "check"]);
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/VIOLATED convergence: node-2 did not answer/);
    expect(await chaos("restart", "node-2")).toMatch(/^restarted node-2: pid \(not running\) -> \d+, serving again after \d+ ms/);
    const next = pidOf("node-2");
    expect(next).not.toBe(pid);
    expect(isAlive(next)).toBe(true);
    await untilAToB("a reaching b on the restarted node");
  });

  it("restart nats: every object is still there, and pods and watches work again", async () => {
    const before = await podNames();
    const pid = pidOf("nats");
    expect(await chaos("restart", "nats")).toMatch(/^restarted nats: pid \d+ -> \d+/);
    expect(pidOf("nats")).not.toBe(pid);
    expect(await podNames()).toEqual(before);
    await untilAToB("a reaching b after the NATS restart");
    // The nodes' watches resumed: a pod made now is started on its node.
    await cluster.apply(netexecPod("after-nats", "node-2", { app: "late" }));
    await cluster.waitForPodRunning("default", "after-nats", 60_000);
  });

  it("restart control-plane: the API answers kubectl again with every object", async () => {
    const before = await podNames();
    expect(await chaos("restart", "control-plane")).toMatch(/^restarted control-plane: pid \d+ -> \d+/);
    const names = (await cluster.kubectlOk(["get", "pods", "-A", "-o", "custom-columns=NS:.metadata.namespace,NAME:.metadata.name", "--no-headers"])).trim().split("\n").map((l) => l.trim().split(/\s+/).join("/")).sort();
    expect(names).toEqual(before);
    await cluster.apply(netexecPod("after-cp", "node-1", { app: "late" }));
    await cluster.waitForPodRunning("default", "after-cp", 60_000);
    await untilAToB("a reaching b after the control-plane restart");
  });

  it("check: after every restart, all invariants hold again (routes, pods, kube-proxy rules, addresses)", async () => {
    const r = await cluster.kubewire(["chaos", "check", "--wait", "60s"], { timeoutMs: 90_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/all invariants hold on 2 node\(s\)/);
  });

  it("refuses an unknown action or process with the ones there are (exit 2)", async () => {
    const r = await cluster.kubewire(["chaos", "pause", "node-9"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no process "node-9" in this cluster; its processes: nats, control-plane, node-1, node-2/);
    expect((await cluster.kubewire(["chaos", "explode", "node-1"])).code).toBe(2);
  });
});
