/**
 * npm run bench:services — Services at scale and through NodePorts, on 3 node processes:
 *
 * 1. NodePort requests/s: wrk (Debian's) against a node's NodePort in front of one netexec pod
 *    (on the same node, and on another node), and as the baseline in the same run, wrk against
 *    a plain Node.js http server answering the same text on the same machine (aim: 0.3x).
 * 2. Network programming latency (the SLI): 1,000 Services x 10 endpoints, then endpoint
 *    changes; each EndpointSlice carries the time of its change in
 *    endpoints.kubernetes.io/last-change-trigger-time and every node-agent measures until its
 *    rules are installed; p50/p99 over the three nodes (aim p99 <= 1 s).
 * 3. The same for single endpoint changes, one at a time, with 10,000 Services present (aim
 *    p99 <= 200 ms).
 * Env: BENCH_PROXY_MODE (iptables), BENCH_SERVICES_LARGE (10000), BENCH_WRK_SECONDS (5).
 */
import { spawn, execFile } from "node:child_process";
import { promisify } from "node:util";
import { build as buildHistogram } from "hdr-histogram-js";
import { request } from "../../cluster/rpc.ts";
import { Subjects, type ProxyStatus } from "../../cluster/types.ts";
import { paths } from "../../cluster/kube-client.ts";
import { TestCluster, netexecPod, until } from "../integration/fixture.ts";

const run = promisify(execFile);
const MODE = process.env.BENCH_PROXY_MODE ?? "iptables";
const LARGE = Number(process.env.BENCH_SERVICES_LARGE ?? 10_000);
const WRK_SECONDS = Number(process.env.BENCH_WRK_SECONDS ?? 5);
const IN_FLIGHT = 32;
const NS = "bench";

async function pool(count: number, worker: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < count) await worker(next++);
  }));
}

async function wrk(url: string): Promise<number> {
  const { stdout } = await run("wrk", ["-t2", "-c16", `-d${WRK_SECONDS}s`, url], { timeout: (WRK_SECONDS + 30) * 1000 });
  if (/Non-2xx|Socket errors/.test(stdout)) throw new Error(`wrk saw errors:\n${stdout}`);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
}

/** The baseline server in its own process, so it does not share this one's event loop. */
async function plainServer(): Promise<{ url: string; stop: () => void }> {
  const code = `const http=require("node:http");const s=http.createServer((q,r)=>{r.writeHead(200,{"Content-Type":"text/plain; charset=utf-8","Content-Length":"3"});r.end("web")});s.listen(0,"127.0.0.1",()=>console.log(s.address().port));`;
  const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve) => child.stdout.once("data", (d: Buffer) => resolve(Number(String(d).trim()))));
  return { url: `http://127.0.0.1:${port}/hostname`, stop: () => child.kill() };
}

function endpoints(i: number, gen: number): object[] {
  return Array.from({ length: 10 }, (_, j) => ({
    addresses: [`10.244.${(j % 3) + 100}.${((i * 10 + j + gen) % 250) + 2}`],
    nodeName: `node-${(j % 3) + 1}`,
    conditions: { ready: true, serving: true, terminating: false },
  }));
}

function sliceObject(i: number, gen: number): object {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: `s-${i}`, namespace: NS, labels: { "kubernetes.io/service-name": `s-${i}` }, annotations: { "endpoints.kubernetes.io/last-change-trigger-time": new Date().toISOString() } },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints: endpoints(i, gen),
  };
}

const slicesPath = (name?: string) => `${paths.endpointSlices(NS)}${name ? `/${name}` : ""}`;

async function createServices(cluster: TestCluster, from: number, to: number): Promise<void> {
  await pool(to - from, async (k) => {
    const i = from + k;
    await cluster.kube.create(paths.services(NS), { apiVersion: "v1", kind: "Service", metadata: { name: `s-${i}`, namespace: NS }, spec: { ports: [{ name: "http", port: 80, targetPort: 8080 }] } });
    await cluster.kube.create(slicesPath(), sliceObject(i, 0));
  });
}

async function proxyStatus(cluster: TestCluster, node: string): Promise<ProxyStatus> {
  return request<ProxyStatus>(cluster.nc, Subjects.node(node, "proxy"), {}, 10_000);
}

/** Changes `count` slices among the first `services`, `gapMs` apart; returns the latencies every node measured for them. */
async function programmingLatency(cluster: TestCluster, services: number, count: number, gapMs: number): Promise<number[]> {
  const before = await Promise.all(cluster.nodeNames.map(async (n) => (await proxyStatus(cluster, n)).programmingLatenciesTotal));
  for (let k = 0; k < count; k++) {
    const i = Math.floor(Math.random() * services);
    const path = slicesPath(`s-${i}`);
    const current = await cluster.kube.request<{ metadata: { resourceVersion: string } }>("GET", path);
    const next = sliceObject(i, k + 1) as { metadata: Record<string, unknown> };
    next.metadata.resourceVersion = current.metadata.resourceVersion;
    await cluster.kube.request("PUT", path, next);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  await new Promise((r) => setTimeout(r, 3000));
  const all: number[] = [];
  for (const [idx, n] of cluster.nodeNames.entries()) {
    const got = await proxyStatus(cluster, n);
    const fresh = got.programmingLatenciesTotal - before[idx]!;
    if (fresh > 0) all.push(...got.programmingLatenciesMs.slice(-fresh));
  }
  return all;
}

function percentiles(xs: number[]): string {
  const h = buildHistogram({ numberOfSignificantValueDigits: 3 });
  for (const x of xs) h.recordValue(Math.max(1, Math.round(x)));
  return `n=${xs.length} p50=${h.getValueAtPercentile(50)} ms p99=${h.getValueAtPercentile(99)} ms max=${h.maxValue} ms`;
}

async function waitForPorts(cluster: TestCluster, count: number): Promise<void> {
  await until(`every node programs ${count} service ports`, async () => {
    const s = await Promise.all(cluster.nodeNames.map((n) => proxyStatus(cluster, n)));
    return s.every((x) => x.servicePorts >= count) ? true : undefined;
  }, 600_000);
}

const cluster = await TestCluster.start({ nodes: 3, env: { KUBEWIRE_PROXY_MODE: MODE } });
try {
  console.log(`bench:services, proxy mode ${MODE}`);
  // 1. NodePort throughput.
  await cluster.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
  await cluster.apply(netexecPod("web", "node-1", { app: "web" }));
  await cluster.apply({ apiVersion: "v1", kind: "Service", metadata: { name: "web", namespace: "default" }, spec: { type: "NodePort", selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] } });
  await cluster.waitForPodRunning("default", "web");
  const svc = await cluster.kube.request<{ spec: { ports: { nodePort: number }[] } }>("GET", `${paths.services("default")}/web`);
  const np = svc.spec.ports[0]!.nodePort;
  const local = `http://${cluster.hostAddress("node-1")}:${np}/hostname`;
  const remote = `http://${cluster.hostAddress("node-2")}:${np}/hostname`;
  await until("NodePort answers", async () => ((await fetch(remote).catch(() => undefined))?.ok ? true : undefined), 30_000);
  const plain = await plainServer();
  try {
    const base = await wrk(plain.url);
    const viaLocal = await wrk(local);
    const viaRemote = await wrk(remote);
    console.log(`NodePort, wrk -t2 -c16 -d${WRK_SECONDS}s: plain Node.js http ${base.toFixed(0)} req/s; NodePort with the endpoint on the node ${viaLocal.toFixed(0)} req/s (${(viaLocal / base).toFixed(2)}x); on another node ${viaRemote.toFixed(0)} req/s (${(viaRemote / base).toFixed(2)}x)`);
  } finally {
    plain.stop();
  }

  // 2. 1,000 Services x 10 endpoints.
  let t0 = performance.now();
  await createServices(cluster, 0, 1000);
  await waitForPorts(cluster, 1000);
  console.log(`1,000 Services x 10 endpoints created and programmed on 3 nodes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`network programming latency, 1,000 Services, changes every 250 ms: ${percentiles(await programmingLatency(cluster, 1000, 60, 250))}`);

  // 3. 10,000 Services, one change at a time.
  t0 = performance.now();
  await createServices(cluster, 1000, LARGE);
  await waitForPorts(cluster, LARGE);
  console.log(`${LARGE.toLocaleString("en")} Services programmed on 3 nodes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`network programming latency, ${LARGE.toLocaleString("en")} Services, one endpoint change at a time (1.2 s apart): ${percentiles(await programmingLatency(cluster, LARGE, 25, 1200))}`);
} finally {
  await cluster.stop();
}
