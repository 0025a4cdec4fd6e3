/**
 * `kubewire chaos run` end to end, the scenario the operate issue asks for, on 3 node processes
 * under a load from the host through a LoadBalancer Service (host -> the emulated cloud's load
 * balancer -> a node's NodePort -> kube-proxy -> a web pod, often on another node over VXLAN;
 * every request on a connection of its own, so each is balanced afresh):
 * kill -9 each node-agent in turn (and start it again), restart NATS, restart the control plane,
 * partition one node for 15 s, then 5 % loss + 1 % duplicate + 1 % corrupt on every node's
 * overlay for 30 s. The run's own verdict must be "every invariant held": no acknowledged write
 * lost, no address held twice, every node converged, no answer corrupted, and traffic back within
 * the grace period + 2 s of every step (the scenario's recoverWithin, so the exit code says it).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatRunReport, type ChaosRunReport } from "../../cli/chaos-run.ts";
import { TestCluster, netexecPod, until } from "./fixture.ts";

/** Node grace (Ready Unknown after), short so a killed node's endpoints leave soon. */
const GRACE_S = 6;
let cluster: TestCluster;

const SCENARIO = `
name: e2e
seed: 7
load: [lb/web, --rate, "40", --connections, "4", --timeout, 1s, --no-reuse]
settle: 6s
recoverWithin: ${GRACE_S + 2}s
steps:
  - {at: 2s, kill: node-1}
  - {at: 11s, restart: node-1}
  - {at: 15s, kill: node-2}
  - {at: 24s, restart: node-2}
  - {at: 28s, kill: node-3}
  - {at: 37s, restart: node-3}
  - {at: 41s, restart: nats}
  - {at: 46s, restart: control-plane}
  - at: 52s
    for: 15s
    networkChaos: {action: partition, selector: {nodes: [node-2]}, direction: both}
  - at: 70s
    for: 30s
    networkChaos:
      selector: {nodes: [node-1, node-2, node-3]}
      loss: {loss: "5"}
      duplicate: {duplicate: "1"}
      corrupt: {corrupt: "1"}
`;

beforeAll(async () => {
  // Pods are not evicted while their node is down for a step (a node is killed for 10 s).
  cluster = await TestCluster.start({ nodes: 3, nodeGraceSeconds: GRACE_S, podEvictionSeconds: 120 });
  await Promise.all([1, 2, 3].map((i) => cluster.apply(netexecPod(`web-${i}`, `node-${i}`, { app: "web" }))));
  await Promise.all([1, 2, 3].map((i) => cluster.waitForPodRunning("default", `web-${i}`)));
  await cluster.apply({ apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { type: "LoadBalancer", selector: { app: "web" }, ports: [{ name: "http", port: 8080, targetPort: 8080 }] } });
  await until("the LoadBalancer address", async () => ((await cluster.kube.get("/api/v1/namespaces/default/services/web")).status as { loadBalancer?: { ingress?: unknown[] } } | undefined)?.loadBalancer?.ingress?.[0]);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("kubewire chaos run", () => {
  it("kills each node in turn, restarts NATS and the control plane, partitions a node, degrades the overlay: every invariant holds, traffic back within grace + 2 s", async () => {
    const file = cluster.manifestFile("scenario", SCENARIO);
    const r = await cluster.kubewire(["chaos", "run", file, "-o", "json"], { timeoutMs: 400_000 });
    const report = JSON.parse(r.stdout || "{}") as ChaosRunReport;
    const summary = `${r.stdout}\n${r.stderr}`;
    // The run's own table (steps, errors, recovery times) in the test log.
    if (report.steps) console.log(formatRunReport(report));
    expect(report.steps?.map((s) => [s.action, s.ok]), summary).toEqual([
      ["kill node-1", true],
      ["restart node-1", true],
      ["kill node-2", true],
      ["restart node-2", true],
      ["kill node-3", true],
      ["restart node-3", true],
      ["restart nats", true],
      ["restart control-plane", true],
      ["NetworkChaos kubewire-chaos/e2e-8 (partition) for 15 s", true],
      ["NetworkChaos kubewire-chaos/e2e-9 (netem) for 30 s", true],
    ]);
    expect(report.violations, summary).toEqual([]);
    for (const s of report.steps) expect(s.recoveredAfterMs, `${s.action}: ${summary}`).not.toBeNull();
    for (const s of report.steps) expect(s.recoveredAfterMs!, `${s.action}`).toBeLessThanOrEqual((GRACE_S + 2) * 1000);
    // The faults did happen: killed nodes cost requests (each request is a new connection, balanced
    // afresh), and writes went on during the run.
    expect(report.steps.filter((s) => s.action.startsWith("kill")).reduce((n, s) => n + s.errors, 0), summary).toBeGreaterThan(0);
    expect(report.writes.acknowledged).toBeGreaterThan(100);
    expect(report.convergedAfterMs).not.toBeNull();
    expect(report.holds, summary).toBe(true);
    expect(r.code, summary).toBe(0);
  }, 420_000);
});
