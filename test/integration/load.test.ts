/**
 * `kubewire load` against real processes (3 node-agents): clients in pods on every node, open
 * loop at a fixed rate to a pod and to a Service, from the host to a NodePort, tcp-rr and udp-rr
 * with their own servers; thresholds and the exit code, -o json, errors by kind from a port that
 * refuses. Every run is a second or three of load.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { paths } from "../../cluster/kube-client.ts";
import type { LoadReport } from "../../cli/load-report.ts";
import { TestCluster, netexecPod, until } from "./fixture.ts";

let cluster: TestCluster;

const RUN_TIMEOUT_MS = 90_000;

async function loadJson(args: string[]): Promise<{ code: number; report: LoadReport & { exitCode: number }; stderr: string }> {
  const r = await cluster.kubewire(["load", ...args, "-o", "json"], { timeoutMs: RUN_TIMEOUT_MS });
  let report: LoadReport & { exitCode: number };
  try {
    report = JSON.parse(r.stdout);
  } catch {
    throw new Error(`kubewire load ${args.join(" ")} exited ${r.code} without JSON:\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, report, stderr: r.stderr };
}

function expectOnRate(report: LoadReport, rate: number): void {
  expect(report.mode).toBe("open");
  expect(report.intendedRate).toBe(rate);
  // Every request due in the run was sent, and the rate achieved is the one asked for (within 10%).
  expect(report.sent / report.intended).toBeGreaterThanOrEqual(0.95);
  expect(report.achievedRate).toBeGreaterThan(rate * 0.9);
  expect(report.achievedRate).toBeLessThan(rate * 1.1);
  expect(report.errors, JSON.stringify({ errors: report.errorsByKind, pairs: report.pairs.map((p) => [p.client, p.server, p.errorsByKind]) })).toBe(0);
  expect(report.requests).toBe(report.sent);
  expect(report.latency.count).toBe(report.requests);
  expect(report.latency.p50).toBeGreaterThan(0);
  expect(report.latency.p50).toBeLessThanOrEqual(report.latency.p99);
  expect(report.latency.p99).toBeLessThanOrEqual(report.latency.max);
}

beforeAll(async () => {
  cluster = await TestCluster.start(3);
  await Promise.all([
    ...[1, 2, 3].map((i) => cluster.apply(netexecPod(`web-${i}`, `node-${i}`, { app: "web" }))),
    ...[1, 2, 3].map((i) => cluster.apply({ apiVersion: "v1", kind: "Pod", metadata: { name: `client-${i}`, labels: { app: "client" } }, spec: { nodeName: `node-${i}`, containers: [{ name: "c", image: "registry.k8s.io/e2e-test-images/agnhost:2.47", args: ["pause"] }] } })),
    cluster.apply({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web" },
      spec: {
        type: "NodePort",
        selector: { app: "web" },
        ports: [
          { name: "http", port: 80, targetPort: 8080 },
          { name: "rr", port: 5201, targetPort: 5201 },
          { name: "urr", port: 5202, targetPort: 5202, protocol: "UDP" },
        ],
      },
    }),
  ]);
  for (const p of ["web-1", "web-2", "web-3", "client-1", "client-2", "client-3"]) await cluster.waitForPodOnNode(await cluster.waitForPodRunning("default", p));
  // Every node's kube-proxy has the Service's endpoints once a ClusterIP connection from each works.
  const svc = await cluster.kube.get(`${paths.services("default")}/web`);
  for (const i of [1, 2, 3]) {
    await until(`web answers through its ClusterIP from node-${i}`, async () => {
      const r = await cluster.exec({ namespace: "default", name: `client-${i}`, nodeName: `node-${i}`, podIp: "" }, ["curl", "-s", "-m", "2", `http://${svc.spec.clusterIP}/hostname`]);
      return r.exitCode === 0 ? true : undefined;
    });
  }
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("kubewire load", () => {
  it("pod to pod, open loop at 60 req/s from a client pod it creates on every node: the rate is met, percentiles, no errors, per node pair; the client pods are gone after", async () => {
    const { code, report } = await loadJson(["pod/web-2", "--rate", "60", "--duration", "3s", "--connections", "6"]);
    expect(code).toBe(0);
    expect(report.exitCode).toBe(0);
    expectOnRate(report, 60);
    expect(report.clients.map((c) => c.node).sort()).toEqual(["node-1", "node-2", "node-3"]);
    expect(report.pairs.map((p) => `${p.client}->${p.server}`)).toEqual(["node-1->node-2", "node-2->node-2", "node-3->node-2"]);
    for (const p of report.pairs) expect(p.latency.count).toBe(p.requests);
    expect(report.connect.count).toBe(6);
    await until("the load's client pods are deleted", async () => ((await cluster.kube.list(`${paths.pods("default")}?labelSelector=app.kubernetes.io%2Fname%3Dkubewire-load`)).length === 0 ? true : undefined), 30_000);
  });

  it("pod to Service (ClusterIP) at 90 req/s from existing pods (--clients): the endpoints kube-proxy chose are reported by server node", async () => {
    const { code, report } = await loadJson(["svc/web", "--rate", "90", "--duration", "3s", "--clients", "app=client", "--connections", "12"]);
    expect(code).toBe(0);
    expectOnRate(report, 90);
    const servers = new Set(report.pairs.map((p) => p.server));
    for (const s of servers) expect(s).toMatch(/^node-[123]$/);
    // 12 connections spread at random over 3 endpoints: all on one is a chance of 3/3^12.
    expect(servers.size).toBeGreaterThanOrEqual(2);
    expect(new Set(report.pairs.map((p) => p.client))).toEqual(new Set(["node-1", "node-2", "node-3"]));
  });

  it("a threshold that cannot hold fails the run with exit code 99 and says which", async () => {
    const r = await cluster.kubewire(["load", "pod/web-1", "--rate", "20", "--duration", "1s", "--clients", "app=client", "--threshold", "p99<1us", "--threshold", "errors<1%"], { timeoutMs: RUN_TIMEOUT_MS });
    expect(r.code, r.stderr).toBe(99);
    expect(r.stdout).toMatch(/FAIL\s+p99<1us\s+\(p99 = /);
    expect(r.stdout).toMatch(/ok\s+errors<1%/);
    expect(r.stdout).toContain("latency      p50 ");
    // Not a terminal: the progress comes as plain lines on stderr.
    expect(r.stderr).toMatch(/\d+ sent, \d+ answered, \d+ failed/);
  });

  it("a port nothing listens on: every request fails, counted as refused", async () => {
    const { code, report } = await loadJson(["pod/web-3", "--port", "9999", "--rate", "30", "--duration", "1s", "--clients", "app=client", "--threshold", "errors<1%"]);
    expect(code).toBe(99);
    expect(report.requests).toBe(0);
    expect(report.errors).toBe(report.sent);
    expect(report.errorsByKind).toEqual({ refused: report.sent });
    expect(report.thresholds).toEqual([expect.objectContaining({ threshold: "errors<1%", ok: false, actual: 1 })]);
  });

  it("tcp-rr and udp-rr through the Service, with the load servers it starts in the endpoint pods", async () => {
    const tcp = await loadJson(["svc/web", "--scenario", "tcp-rr", "--port", "rr", "--rate", "60", "--duration", "2s", "--clients", "app=client", "--request-bytes", "100", "--response-bytes", "1000"]);
    expect(tcp.code, tcp.stderr).toBe(0);
    expectOnRate(tcp.report, 60);
    expect(tcp.report.bytesReceived).toBe(tcp.report.requests * 1000);
    const udp = await loadJson(["svc/web", "--scenario", "udp-rr", "--port", "urr", "--rate", "60", "--duration", "2s", "--clients", "app=client"]);
    expect(udp.code, udp.stderr).toBe(0);
    expectOnRate(udp.report, 60);
  });

  it("NodePort from the host: real sockets to every node's host address", async () => {
    const { code, report } = await loadJson(["nodeport/web", "--rate", "30", "--duration", "2s"]);
    expect(code).toBe(0);
    expectOnRate(report, 30);
    expect(report.clients).toEqual([{ worker: "host", node: "host" }]);
    expect(report.pairs.map((p) => `${p.client}->${p.server}`)).toEqual(["host->node-1 (NodePort)", "host->node-2 (NodePort)", "host->node-3 (NodePort)"]);
  });

  it("a closed loop (tcp-stream) reports throughput; bad arguments are usage errors (exit 2)", async () => {
    const stream = await loadJson(["pod/web-2", "--scenario", "tcp-stream", "--port", "5203", "--duration", "1s", "--clients", "app=client", "--connections", "3"]);
    expect(stream.code, stream.stderr).toBe(0);
    expect(stream.report.errors).toBe(0);
    expect(stream.report.bytesSent).toBeGreaterThan(64 * 1024);
    const bad = await cluster.kubewire(["load", "svc/web", "--rate", "fast"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--rate");
  });
});
