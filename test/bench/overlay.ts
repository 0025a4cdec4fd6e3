/**
 * npm run bench:overlay — cross-node pod-to-pod throughput and latency of the overlay, against
 * raw NATS measured in the same run through the same nats-server (the machine is shared and
 * noisy, so only the ratios mean much).
 *
 *  - frames/s: `iperf -u` from a pod on node-1 to a pod on node-2, counted by the receiving pod,
 *    first to last datagram; baseline: a publisher sending the same number of messages of the
 *    same size to a subscriber in another process, first to last message.
 *  - RTT: `ping -i 0.005` between the pods (each echo crosses NATS twice); baseline: NATS
 *    request/reply to an echo responder in another process, at the same pace.
 *
 * Twice: on a cluster without NATS security (anonymous, plain text) and on one with it (TLS,
 * every process its own identity, as `kubewire up` runs), so the cost of security is the ratio
 * of the two in the same run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { build as buildHistogram } from "hdr-histogram-js";
import type { NatsConnection } from "nats";
import { request } from "../../cluster/rpc.ts";
import { Subjects, type ExecResult, type NodeStatus } from "../../cluster/types.ts";
import { REPO_ROOT, stopPid } from "../../cli/processes.ts";
import { TestCluster, type TestPod } from "../integration/fixture.ts";
import { adminCreds } from "../../cluster/security.ts";

const SIZES = [100, 1400] as const;
const FRAMES = Number(process.env.BENCH_FRAMES ?? 100_000);
const PINGS = Number(process.env.BENCH_PINGS ?? 1000);
const BURST = 64;

interface Row {
  size: number;
  rawMsgs: number;
  overlayFrames: number;
  overlayLoss: number;
  rawP50: number;
  rawP99: number;
  pingP50: number;
  pingP99: number;
}

let cluster: TestCluster | undefined;
let peer: ChildProcess | undefined;

async function main(): Promise<void> {
  const plain = await measure(false);
  const secured = await measure(true);
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  console.log(`\nkubewire overlay benchmark: ${FRAMES.toLocaleString("en-US")} frames, ${PINGS} pings per size; 2 node-agents and nats-server on this machine`);
  console.log(["", ...SIZES.flatMap((s) => [`${s} B plain`, `${s} B secured`])].map((c, i) => (i === 0 ? c.padEnd(34) : c.padStart(16))).join(""));
  const line = (label: string, f: (r: Row) => string) => console.log([label.padEnd(34), ...plain.rows.flatMap((r, i) => [f(r), f(secured.rows[i]!)].map((c) => c.padStart(16)))].join(""));
  line("raw NATS pub/sub msgs/s", (r) => fmt(r.rawMsgs));
  line("overlay pod-to-pod UDP frames/s", (r) => fmt(r.overlayFrames));
  line("  frames lost", (r) => `${(r.overlayLoss * 100).toFixed(2)}%`);
  line("  ratio overlay / raw", (r) => `${(r.overlayFrames / r.rawMsgs).toFixed(2)}x`);
  line("raw NATS request/reply RTT p50", (r) => ms(r.rawP50));
  line("raw NATS request/reply RTT p99", (r) => ms(r.rawP99));
  line("overlay ping RTT p50", (r) => ms(r.pingP50));
  line("overlay ping RTT p99", (r) => ms(r.pingP99));
  line("  ratio ping / raw p50", (r) => `${(r.pingP50 / r.rawP50).toFixed(2)}x`);
  console.log(`overlay frames per NATS message (node-1, whole run): plain ${plain.framesPerMessage.toFixed(1)}, secured ${secured.framesPerMessage.toFixed(1)}`);
  console.log("cost of security (secured / plain, same run):");
  for (const [i, size] of SIZES.entries()) {
    const p = plain.rows[i]!;
    const q = secured.rows[i]!;
    console.log(`  ${size} B: overlay frames/s ${(q.overlayFrames / p.overlayFrames).toFixed(2)}x, raw NATS msgs/s ${(q.rawMsgs / p.rawMsgs).toFixed(2)}x, ping RTT p50 ${(q.pingP50 / p.pingP50).toFixed(2)}x, p99 ${(q.pingP99 / p.pingP99).toFixed(2)}x`);
  }
}

async function measure(secure: boolean): Promise<{ rows: Row[]; framesPerMessage: number }> {
  // The same processes the integration tests run: nats-server, control plane, two node-agents.
  cluster = await TestCluster.start({ nodes: 2, secure });
  try {
    return await measureOn(cluster);
  } finally {
    if (peer?.pid) await stopPid(peer.pid);
    peer = undefined;
    await cluster.stop();
    cluster = undefined;
  }
}

async function measureOn(cluster: TestCluster): Promise<{ rows: Row[]; framesPerMessage: number }> {
  const nc = cluster.nc;
  const sec = cluster.security;
  const peerArgs = sec ? [sec.caFile, await adminCreds(sec, "bench-peer")] : [];
  peer = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "test/bench/raw-peer.ts"), cluster.nats.url, ...peerArgs], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve) => peer!.stdout!.once("data", () => resolve()));

  const client = await cluster.createPod("bench-client", "node-1");
  const server = await cluster.createPod("bench-server", "node-2");
  await exec(nc, client, ["ping", "-c", "3", "-i", "0", server.podIp]); // ARP warm-up

  const rows: Row[] = [];
  for (const size of SIZES) {
    // Warm both paths so the JIT has compiled them before anything is timed.
    await rawThroughput(nc, size, Math.min(FRAMES, 20_000));
    await overlayThroughput(nc, client, server, size, Math.min(FRAMES, 20_000));
    const raw = await rawThroughput(nc, size, FRAMES);
    const overlay = await overlayThroughput(nc, client, server, size, FRAMES);
    const rr = await rawRtt(nc, size, PINGS);
    const ping = await pingRtt(nc, client, server, size, PINGS);
    rows.push({ size, rawMsgs: raw, overlayFrames: overlay.rate, overlayLoss: overlay.loss, rawP50: rr.p50, rawP99: rr.p99, pingP50: ping.p50, pingP99: ping.p99 });
  }
  const status = await request<NodeStatus>(nc, Subjects.node("node-1", "status"), {});
  return { rows, framesPerMessage: status.counters.overlay_tx_frames_total! / status.counters.overlay_tx_messages_total! };
}

function exec(nc: NatsConnection, pod: TestPod, argv: string[]): Promise<ExecResult> {
  return request<ExecResult>(nc, Subjects.node(pod.nodeName, "exec"), { namespace: pod.namespace, pod: pod.name, argv }, 600_000);
}

/** Messages/s from first to last as the subscriber process saw them. */
async function rawThroughput(nc: NatsConnection, size: number, count: number): Promise<number> {
  const subject = `bench.raw.${size}`;
  const payload = new Uint8Array(size);
  for (let sent = 0; sent < count; ) {
    const burst = Math.min(BURST, count - sent);
    for (let i = 0; i < burst; i++) nc.publish(subject, payload);
    sent += burst;
    await new Promise((r) => setImmediate(r));
  }
  await nc.flush();
  const reply = await nc.request("bench.report", new TextEncoder().encode(subject), { timeout: 60_000 });
  const { count: got, ms } = JSON.parse(new TextDecoder().decode(reply.data)) as { count: number; ms: number };
  return ((got - 1) / ms) * 1000;
}

async function overlayThroughput(nc: NatsConnection, client: TestPod, server: TestPod, size: number, count: number): Promise<{ rate: number; loss: number }> {
  const serving = exec(nc, server, ["iperf", "-s", "-u", "-p", "5201", "-n", String(count), "-t", "120"]);
  // The server binds its port as soon as the exec starts; a status round trip to its node orders after it.
  await request(nc, Subjects.node(server.nodeName, "status"), {});
  const sent = await exec(nc, client, ["iperf", "-u", "-c", server.podIp, "-p", "5201", "-n", String(count), "-l", String(size)]);
  if (sent.exitCode !== 0) throw new Error(`iperf client failed: ${sent.stderr}`);
  const res = await serving;
  const s = /sent (\d+) datagrams .* in ([\d.]+) ms/.exec(sent.stdout);
  if (process.env.BENCH_VERBOSE) console.error(`  ${size} B: sender ${s?.[0]}; receiver ${res.stdout.trim()}`);
  const m = /received (\d+) datagrams .* in ([\d.]+) ms/.exec(res.stdout);
  if (!m) throw new Error(`iperf server: ${res.stdout}${res.stderr}`);
  const received = Number(m[1]);
  return { rate: ((received - 1) / Number(m[2])) * 1000, loss: 1 - received / count };
}

async function rawRtt(nc: NatsConnection, size: number, count: number): Promise<{ p50: number; p99: number }> {
  const h = buildHistogram({ numberOfSignificantValueDigits: 3 });
  const payload = new Uint8Array(size);
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await nc.request("bench.rr", payload, { timeout: 5000 });
    h.recordValue(Math.round((performance.now() - t0) * 1000));
    await new Promise((r) => setTimeout(r, 5));
  }
  return { p50: h.getValueAtPercentile(50) / 1000, p99: h.getValueAtPercentile(99) / 1000 };
}

async function pingRtt(nc: NatsConnection, client: TestPod, server: TestPod, size: number, count: number): Promise<{ p50: number; p99: number }> {
  const res = await exec(nc, client, ["ping", "-c", String(count), "-i", "0.005", "-s", String(size), server.podIp]);
  const h = buildHistogram({ numberOfSignificantValueDigits: 3 });
  for (const m of res.stdout.matchAll(/time=([\d.]+) ms/g)) h.recordValue(Math.round(Number(m[1]) * 1000));
  if (h.totalCount === 0) throw new Error(`ping failed: ${res.stdout}${res.stderr}`);
  return { p50: h.getValueAtPercentile(50) / 1000, p99: h.getValueAtPercentile(99) / 1000 };
}

try {
  await main();
} finally {
  if (peer?.pid) await stopPid(peer.pid);
  await cluster?.stop();
}
