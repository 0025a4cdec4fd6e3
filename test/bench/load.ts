/**
 * npm run bench:load — `kubewire load` at the maximum rate (closed loop) on 3 node processes:
 * HTTP keep-alive requests to agnhost netexec from a client pod on every node, pod to pod (all
 * to web-2 on node-2) and pod to Service (a ClusterIP in front of web-1..3), with requests/s and
 * latency percentiles as the load report gives them. Baseline in the same run, through the same
 * nats-server: raw NATS request/reply round trips with as many requests in flight, to an echo
 * responder in another process (test/bench/raw-peer.ts), their latencies in an HdrHistogram too.
 * Printed as ratios (the machine is shared and noisy: only the ratios mean much).
 * Env: BENCH_LOAD_SECONDS (5), BENCH_LOAD_CONNECTIONS (12).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { build as buildHistogram } from "hdr-histogram-js";
import type { NatsConnection } from "nats";
import { REPO_ROOT, stopPid } from "../../cli/processes.ts";
import type { LoadReport } from "../../cli/load-report.ts";
import { TestCluster, netexecPod } from "../integration/fixture.ts";

const SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_LOAD_CONNECTIONS ?? 12);
/** About an HTTP request's size (the echo sends it back, about a response's). */
const RAW_PAYLOAD = 128;

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  errors: number;
}

async function load(cluster: TestCluster, target: string, seconds: number): Promise<Figures> {
  const r = await cluster.kubewire(["load", target, "--duration", `${seconds}s`, "--connections", String(CONNECTIONS), "-o", "json"], { timeoutMs: (seconds + 90) * 1000 });
  if (r.code !== 0) throw new Error(`kubewire load ${target} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  const rep = JSON.parse(r.stdout) as LoadReport;
  return { rps: rep.rps, p50: rep.latency.p50, p99: rep.latency.p99, p999: rep.latency["p99.9"], errors: rep.errors };
}

/** CONNECTIONS loops of request/reply to the echo peer for `seconds`; latencies in µs. */
async function rawRequestReply(nc: NatsConnection, seconds: number): Promise<Figures> {
  const h = buildHistogram({ numberOfSignificantValueDigits: 3 });
  const payload = new Uint8Array(RAW_PAYLOAD);
  const end = performance.now() + seconds * 1000;
  let count = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await nc.request("bench.rr", payload, { timeout: 5000 });
          h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
          count++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { rps: count / seconds, p50: h.getValueAtPercentile(50) / 1000, p99: h.getValueAtPercentile(99) / 1000, p999: h.getValueAtPercentile(99.9) / 1000, errors };
}

let cluster: TestCluster | undefined;
let peer: ChildProcess | undefined;

try {
  cluster = await TestCluster.start(3);
  peer = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "test/bench/raw-peer.ts"), cluster.nats.url], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve) => peer!.stdout!.once("data", () => resolve()));
  await Promise.all([
    ...[1, 2, 3].map((i) => cluster!.apply(netexecPod(`web-${i}`, `node-${i}`, { app: "web" }))),
    cluster.apply({ apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] } }),
  ]);
  for (const p of ["web-1", "web-2", "web-3"]) await cluster.waitForPodOnNode(await cluster.waitForPodRunning("default", p));

  // Warm-up: JIT every path (and the Service's rules on every node) before anything is measured.
  await rawRequestReply(cluster.nc, 1);
  await load(cluster, "svc/web", 2);

  const raw = await rawRequestReply(cluster.nc, SECONDS);
  const pod = await load(cluster, "pod/web-2", SECONDS);
  const svc = await load(cluster, "svc/web", SECONDS);

  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  console.log(`\nkubewire load benchmark: ${CONNECTIONS} connections over 3 client pods (one per node), closed loop, ${SECONDS} s each; 3 node-agents and nats-server on this machine`);
  const row = (label: string, f: Figures) => console.log(`${label.padEnd(46)}${`${fmt(f.rps)} req/s`.padStart(14)}   p50 ${ms(f.p50).padStart(10)}   p99 ${ms(f.p99).padStart(10)}   p99.9 ${ms(f.p999).padStart(10)}${f.errors > 0 ? `   ${f.errors} errors` : ""}`);
  row(`raw NATS request/reply (${CONNECTIONS} in flight, ${RAW_PAYLOAD} B)`, raw);
  row("pod to pod, HTTP (every node -> node-2)", pod);
  row("pod to Service, HTTP (ClusterIP, 3 endpoints)", svc);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  console.log("(the clients on node-2 reach web-2 without leaving their node, so the same-node pairs answer most requests and pull p50 down; the report's per-pair rows split them)");
  console.log(`ratios to raw NATS request/reply: pod to pod ${ratio(pod.rps, raw.rps)} req/s, p50 ${ratio(pod.p50, raw.p50)}, p99 ${ratio(pod.p99, raw.p99)}; pod to Service ${ratio(svc.rps, raw.rps)} req/s, p50 ${ratio(svc.p50, raw.p50)}, p99 ${ratio(svc.p99, raw.p99)}`);
} finally {
  if (peer?.pid) await stopPid(peer.pid);
  await cluster?.stop();
}
