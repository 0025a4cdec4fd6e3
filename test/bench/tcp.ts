/**
 * npm run bench:tcp — cross-node pod-to-pod TCP through the emulated stack (user-space TCP in
 * each pod's netns, VXLAN over NATS between the nodes), against raw NATS measured in the same
 * run through the same nats-server (the machine is shared and noisy: only the ratios mean much).
 *
 *  - goodput: a client pod on node-1 downloads a BENCH_TCP_MIB MiB file (default 64, made with
 *    dd in an nginx pod on node-2) with the emulated curl, `-o /dev/null -w '%{size_download}
 *    %{time_total}'`: goodput = bytes / curl's transfer time (connect to last byte).
 *    Baseline: a publisher sending the same total bytes in 64 KiB messages to a subscriber in
 *    another process (test/bench/raw-peer.ts), first to last message.
 *  - requests/s: one curl with BENCH_TCP_REQUESTS (default 500) URLs of /hostname reuses one
 *    connection: sequential keep-alive requests; baseline: sequential NATS request/reply round
 *    trips to an echo responder in another process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import type { NatsConnection } from "nats";
import { request } from "../../cluster/rpc.ts";
import { paths } from "../../cluster/kube-client.ts";
import { Subjects, type ExecResult } from "../../cluster/types.ts";
import { REPO_ROOT, stopPid } from "../../cli/processes.ts";
import { TestCluster, type TestPod } from "../integration/fixture.ts";

const MIB = Number(process.env.BENCH_TCP_MIB ?? 64);
const REQUESTS = Number(process.env.BENCH_TCP_REQUESTS ?? 500);
const RAW_MSG = 64 * 1024;
const PORT = 8080;

let cluster: TestCluster | undefined;
let peer: ChildProcess | undefined;

async function main(): Promise<void> {
  cluster = await TestCluster.start(2);
  const nc = cluster.nc;
  peer = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "test/bench/raw-peer.ts"), cluster.nats.url], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve) => peer!.stdout!.once("data", () => resolve()));

  await cluster.kube.create(paths.pods("default"), {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "bench-server", namespace: "default", labels: { app: "bench-server" } },
    spec: { nodeName: "node-2", containers: [{ name: "app", image: "registry.k8s.io/e2e-test-images/agnhost:2.47", args: ["netexec", `--http-port=${PORT}`] }] },
  });
  const server = await cluster.waitForPodRunning("default", "bench-server");
  await cluster.kube.create(paths.pods("default"), {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "bench-files", namespace: "default", labels: { app: "bench-files" } },
    spec: { nodeName: "node-2", containers: [{ name: "nginx", image: "nginx:1.27", ports: [{ containerPort: 80 }] }] },
  });
  const files = await cluster.waitForPodRunning("default", "bench-files");
  for (const [name, mib] of [["warm", 4], ["blob", MIB]] as const) {
    const made = await exec(nc, files, ["dd", "if=/dev/zero", `of=/usr/share/nginx/html/${name}`, "bs=1M", `count=${mib}`]);
    if (made.exitCode !== 0) throw new Error(`dd failed: ${made.stderr}`);
  }
  const client = await cluster.createPod("bench-client", "node-1");
  await exec(nc, client, ["ping", "-c", "3", "-i", "0", server.podIp]); // ARP warm-up

  const totalBytes = MIB * 1024 * 1024;
  // Warm-up: JIT both paths before anything is timed.
  await rawBytes(nc, Math.min(totalBytes, 8 * 1024 * 1024));
  await tcpGoodput(nc, client, files, "warm", 4 * 1024 * 1024);
  const raw = await rawBytes(nc, totalBytes);
  const tcp = await tcpGoodput(nc, client, files, "blob", totalBytes);

  await rawRoundTrips(nc, 100);
  await httpRequests(nc, client, server, 50);
  const rr = await rawRoundTrips(nc, REQUESTS);
  const http = await httpRequests(nc, client, server, REQUESTS);

  const n1 = await cluster.status("node-1");
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  const mbs = (x: number) => `${(x / 1024 / 1024).toFixed(2)} MiB/s`;
  const row = (label: string, value: string) => console.log(`${label.padEnd(52)}${value.padStart(20)}`);
  console.log(`\nkubewire TCP benchmark: a ${MIB} MiB download pod-to-pod across nodes, ${REQUESTS} keep-alive requests; 2 node-agents and nats-server on this machine`);
  row("raw NATS pub/sub (64 KiB msgs) bytes/s", mbs(raw));
  row("pod-to-pod TCP goodput (node-1 <- node-2)", mbs(tcp.rate));
  row(`  bytes downloaded in`, `${fmt(tcp.bytes)} in ${tcp.seconds.toFixed(2)} s`);
  row("  ratio goodput / raw (aim 0.5x)", `${(tcp.rate / raw).toFixed(2)}x`);
  row("raw NATS request/reply round trips/s", fmt(rr));
  row("pod-to-pod HTTP keep-alive requests/s", fmt(http.rate));
  row(`  ${REQUESTS} requests took`, `${http.seconds.toFixed(3)} s`);
  row("  ratio requests / raw round trips", `${(http.rate / rr).toFixed(2)}x`);
  const c = n1.counters;
  if (c.overlay_tx_messages_total) console.log(`overlay frames per NATS message (node-1, whole run): ${(c.overlay_tx_frames_total! / c.overlay_tx_messages_total).toFixed(1)}`);
}

function exec(nc: NatsConnection, pod: TestPod, argv: string[]): Promise<ExecResult> {
  return request<ExecResult>(nc, Subjects.node(pod.nodeName, "exec"), { namespace: pod.namespace, pod: pod.name, argv }, 600_000);
}

/** Bytes/s from first to last message as the subscriber process saw them. */
async function rawBytes(nc: NatsConnection, bytes: number): Promise<number> {
  const subject = "bench.raw.tcp";
  const count = Math.ceil(bytes / RAW_MSG);
  const payload = new Uint8Array(RAW_MSG);
  for (let sent = 0; sent < count; ) {
    const burst = Math.min(16, count - sent);
    for (let i = 0; i < burst; i++) nc.publish(subject, payload);
    sent += burst;
    await nc.flush();
  }
  const reply = await nc.request("bench.report", new TextEncoder().encode(subject), { timeout: 60_000 });
  const { count: got, ms } = JSON.parse(new TextDecoder().decode(reply.data)) as { count: number; ms: number };
  if (got !== count) console.error(`raw: ${got} of ${count} messages arrived`);
  return (((got - 1) * RAW_MSG) / ms) * 1000;
}

/** GET of one file from nginx: bytes/s over curl's own transfer time. */
async function tcpGoodput(nc: NatsConnection, client: TestPod, server: TestPod, file: string, bytes: number): Promise<{ rate: number; bytes: number; seconds: number }> {
  const res = await exec(nc, client, ["curl", "-s", "-S", "-m", "600", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", `http://${server.podIp}/${file}`]);
  const m = /^(\d+) ([\d.]+)$/.exec(res.stdout.trim());
  if (res.exitCode !== 0 || !m) throw new Error(`curl failed (exit ${res.exitCode}): ${res.stdout.slice(0, 500)}${res.stderr.slice(0, 500)}`);
  if (Number(m[1]) !== bytes) throw new Error(`short transfer: ${m[1]} of ${bytes} bytes`);
  return { rate: Number(m[1]) / Number(m[2]), bytes: Number(m[1]), seconds: Number(m[2]) };
}

async function rawRoundTrips(nc: NatsConnection, count: number): Promise<number> {
  const payload = new Uint8Array(100);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await nc.request("bench.rr", payload, { timeout: 5000 });
  return (count / (performance.now() - t0)) * 1000;
}

/** `count` sequential GET /hostname on one keep-alive connection; rate over summed transfer time. */
async function httpRequests(nc: NatsConnection, client: TestPod, server: TestPod, count: number): Promise<{ rate: number; seconds: number }> {
  const url = `http://${server.podIp}:${PORT}/hostname`;
  const res = await exec(nc, client, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}\\n", ...Array<string>(count).fill(url)]);
  const lines = [...res.stdout.matchAll(/^(\d{3}) ([\d.]+)$/gm)];
  if (res.exitCode !== 0 || lines.length !== count || lines.some((m) => m[1] !== "200")) {
    throw new Error(`curl failed (exit ${res.exitCode}, ${lines.length} of ${count} transfers): ${res.stdout.slice(-500)}${res.stderr.slice(0, 500)}`);
  }
  const seconds = lines.reduce((s, m) => s + Number(m[2]), 0);
  return { rate: count / seconds, seconds };
}

try {
  await main();
} finally {
  if (peer?.pid) await stopPid(peer.pid);
  await cluster?.stop();
}
