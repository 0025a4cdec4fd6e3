/**
 * npm run bench:api — a load test of the Kubernetes API: N pods (1,000 by default) created
 * through the API across 3 node-agents, as fast as the API accepts them with a bounded number
 * of requests in flight; reports creates/s, the time until all are Running, and, as the
 * baseline measured in the same run, raw JetStream KV puts/s of the same objects through the
 * same nats-server (the store underneath).
 *
 * The creates go over IN_FLIGHT kept-alive TLS connections, opened before the clock starts,
 * one request in flight on each, as a controller or `kubectl apply` of many objects keeps its
 * connections. The client is a minimal HTTP/1.1 one (as wrk is): Node's https client took about
 * half a millisecond of CPU per request, on the same two cores as the API server it measures.
 * Both sides are timed warm (BENCH_WARMUP creates first, 300 by default): a fresh process runs
 * its first thousand requests mostly unoptimised, which is not the server's steady state.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect, type TLSSocket } from "node:tls";
import { build as buildHistogram } from "hdr-histogram-js";
import { paths } from "../../cluster/kube-client.ts";
import { TestCluster, until } from "../integration/fixture.ts";

const N = Number(process.env.BENCH_PODS ?? 1000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 32);
/** Creates before the clock starts, on both sides, so the JIT has compiled the paths timed (as bench:overlay warms up). */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 300);

function pod(name: string, namespace = "load"): object {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, namespace, labels: { app: "load" } }, spec: { containers: [{ name: "app", image: "registry.k8s.io/e2e-test-images/agnhost:2.47" }] } };
}

/**
 * CPU time (user + system, ms) the process has used so far, from /proc (Linux); undefined
 * elsewhere. Less noisy than rates on a shared machine: what each create costs the API server.
 */
function cpuMs(pid: number): number | undefined {
  try {
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (1/100 s).
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}

/** Runs worker(i) for i in [0, count), IN_FLIGHT at a time; `w` is which of them runs it. */
async function pool(count: number, worker: (i: number, w: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async (_, w) => {
    while (next < count) await worker(next++, w);
  }));
}

/**
 * One kept-alive HTTP/1.1 connection to the API over TLS, one request at a time. Sends what
 * KubeClient sends for a create; reads the answer to its Content-Length (the API always sets it).
 */
class ApiConnection {
  private buf: Buffer = Buffer.alloc(0);
  private pending: { resolve: (r: { status: number; body: string }) => void; reject: (err: Error) => void } | undefined;

  private constructor(
    private readonly socket: TLSSocket,
    private readonly host: string,
    private readonly token: string,
  ) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new Error("the API closed the connection")));
  }

  static open(server: string, ca: string, token: string): Promise<ApiConnection> {
    const url = new URL(server);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: url.hostname, port: Number(url.port), ca }, () => resolve(new ApiConnection(socket, url.host, token)));
      socket.once("error", reject);
    });
  }

  post(path: string, body: string): Promise<{ status: number; body: string }> {
    if (this.pending) throw new Error("one request at a time");
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(
        `POST ${path} HTTP/1.1\r\nHost: ${this.host}\r\nAuthorization: Bearer ${this.token}\r\nAccept: application/json\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const headEnd = this.buf.indexOf("\r\n\r\n");
    if (headEnd < 0 || !this.pending) return;
    const head = this.buf.toString("latin1", 0, headEnd);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!length) return this.fail(new Error(`an answer without Content-Length: ${head.slice(0, 200)}`));
    const end = headEnd + 4 + Number(length[1]);
    if (this.buf.length < end) return;
    const answer = { status: Number(head.slice(9, 12)), body: this.buf.toString("utf8", headEnd + 4, end) };
    this.buf = this.buf.subarray(end);
    const p = this.pending;
    this.pending = undefined;
    p.resolve(answer);
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }
}

// /22 pod CIDRs: 1,021 pod IPs per node, so 1,000 pods fit on 3 nodes (a /24 holds 253).
const cluster = await TestCluster.start({ nodes: 3, nodeCidrMask: 22 });
try {
  for (const name of ["load", "warmup"]) await cluster.kube.create(paths.nodes().replace("nodes", "namespaces"), { apiVersion: "v1", kind: "Namespace", metadata: { name } });

  // Baseline: the store alone, the same JSON through JetStream KV from this process.
  const kv = await cluster.nc.jetstream().views.kv(`bench_${randomBytes(3).toString("hex")}`, { history: 1 });
  const body = new TextEncoder().encode(JSON.stringify(pod("x")));
  await pool(WARMUP, async (i) => void (await kv.put(`pods.warmup.p-${i}`, body)));
  let t0 = performance.now();
  await pool(N, async (i) => void (await kv.put(`pods.load.p-${i}`, body)));
  const kvRate = (N / (performance.now() - t0)) * 1000;

  const conns = await Promise.all(Array.from({ length: IN_FLIGHT }, () => ApiConnection.open(cluster.apiUrl, cluster.tls.cert, cluster.token)));
  // Warm-up: the same creates in another namespace, all Running before the timed ones start.
  await pool(WARMUP, async (i, w) => {
    const answer = await conns[w]!.post(paths.pods("warmup"), JSON.stringify(pod(`w-${i}`, "warmup")));
    if (answer.status !== 201) throw new Error(`warm-up create of w-${i}: ${answer.status} ${answer.body.slice(0, 300)}`);
  });
  await until("the warm-up pods Running", async () => ((await cluster.kube.list(paths.pods("warmup"))).filter((p) => p.status?.phase === "Running").length === WARMUP ? true : undefined), 300_000);
  const latency = buildHistogram({ numberOfSignificantValueDigits: 3 });
  const apiPid = cluster.procs.get("control-plane")!.pid;
  const cpu0 = cpuMs(apiPid);
  t0 = performance.now();
  await pool(N, async (i, w) => {
    const s = performance.now();
    const answer = await conns[w]!.post(paths.pods("load"), JSON.stringify(pod(`p-${i}`)));
    latency.recordValue(Math.round((performance.now() - s) * 1000));
    if (answer.status !== 201 || (JSON.parse(answer.body) as { metadata?: { name?: string } }).metadata?.name !== `p-${i}`) {
      throw new Error(`create of p-${i}: ${answer.status} ${answer.body.slice(0, 300)}`);
    }
  });
  const createdMs = performance.now() - t0;
  const cpu1 = cpuMs(apiPid);
  for (const c of conns) c.close();
  let running = 0;
  let perNode: Record<string, number> = {};
  while (running < N) {
    const pods = await cluster.kube.list(paths.pods("load"));
    running = pods.filter((p) => p.status?.phase === "Running").length;
    perNode = {};
    for (const p of pods) perNode[p.spec.nodeName ?? "-"] = (perNode[p.spec.nodeName ?? "-"] ?? 0) + 1;
    if (running < N) await new Promise((r) => setTimeout(r, 250));
    if (performance.now() - t0 > 300_000) throw new Error(`only ${running}/${N} Running after 5 minutes`);
  }
  const allRunningMs = performance.now() - t0;
  const ms = (us: number) => `${(us / 1000).toFixed(1)} ms`;
  console.log(`\nkubewire API load: ${N} pods through the API, ${IN_FLIGHT} requests in flight, 3 node-agents, after ${WARMUP} warm-up creates on each side`);
  console.log(`  raw JetStream KV puts/s (baseline)      ${Math.round(kvRate).toLocaleString("en-US")}`);
  console.log(`  API pod creates/s                       ${Math.round((N / createdMs) * 1000).toLocaleString("en-US")}  (${((N / createdMs) * 1000 / kvRate).toFixed(2)}x the raw KV rate)`);
  console.log(`  create latency p50 / p99                ${ms(latency.getValueAtPercentile(50))} / ${ms(latency.getValueAtPercentile(99))}`);
  if (cpu0 !== undefined && cpu1 !== undefined) console.log(`  control-plane CPU per create             ${(((cpu1 - cpu0) / N) * 1000).toFixed(0)} us`);
  console.log(`  all ${N} created in                      ${(createdMs / 1000).toFixed(1)} s`);
  console.log(`  all ${N} Running (scheduled, plumbed, reported) after ${(allRunningMs / 1000).toFixed(1)} s`);
  console.log(`  pods per node                           ${Object.entries(perNode).sort().map(([n, c]) => `${n}=${c}`).join(" ")}`);
} finally {
  await cluster.stop();
}
