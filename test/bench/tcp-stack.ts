/**
 * Micro-benchmark of the TCP layer alone: two TcpStacks in one process, segments handed over
 * through an in-memory queue drained in batches (as the IP layer delivers one NATS message's
 * frames), real clock, no loss. Not a vitest file.
 *
 *   node --import tsx test/bench/tcp-stack.ts [MiB=256] [--delay=MS]   (one-way delay per batch)
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof test/bench/tcp-stack.ts
 */
import type { SegmentOut, TcpHost, TcpSocket } from "../../node-agent/tcp/api.ts";
import { TcpStack } from "../../node-agent/tcp/stack.ts";
import type { Ipv4Addr } from "../../overlay/wire/common.ts";

const A_IP: Ipv4Addr = 0x0a00_0101;
const B_IP: Ipv4Addr = 0x0a00_0201;
const MIB = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 256);
const WRITE = 64 * 1024;
const DELAY = Number(process.argv.find((a) => a.startsWith("--delay="))?.slice(8) ?? 0);

let seed = 12345;
const queue: Array<{ to: TcpStack; seg: SegmentOut }> = [];
let pumping = false;
let stacks: TcpStack[] = [];

function host(addr: Ipv4Addr, peer: () => TcpStack): TcpHost {
  return {
    now: () => performance.now(),
    random: () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0),
    output: (seg) => {
      // The IP layer serializes the segment (one copy of the payload into a frame).
      queue.push({ to: peer(), seg: { ...seg, payload: seg.payload.slice() } });
      if (!pumping) {
        pumping = true;
        if (DELAY > 0) setTimeout(pump, DELAY);
        else setImmediate(pump);
      }
      return true;
    },
    sourceFor: () => addr,
    mtuFor: () => 1500,
    isLocal: (ip) => ip === addr,
  };
}

function pump(): void {
  pumping = false;
  const batch = queue.splice(0, queue.length);
  for (const { to, seg } of batch) to.input(seg);
  const now = performance.now();
  for (const s of stacks) {
    const d = s.nextDeadline();
    if (d !== undefined && d <= now) s.poll(now);
  }
  if (queue.length > 0 && !pumping) {
    pumping = true;
    if (DELAY > 0) setTimeout(pump, DELAY);
    else setImmediate(pump);
  }
}

async function main(): Promise<void> {
  const a: TcpStack = new TcpStack(host(A_IP, () => b));
  const b: TcpStack = new TcpStack(host(B_IP, () => a));
  stacks = [a, b];
  // Timers (delayed ACKs, RTO) on a real interval.
  const timer = setInterval(() => {
    const now = performance.now();
    for (const s of stacks) s.poll(now);
  }, 1);
  const l = b.listen(80);
  if (l.kind !== "listening") throw new Error("listen");
  const total = MIB * 1024 * 1024;
  let received = 0;
  let reads = 0;
  const server = (async () => {
    const s = (await l.listener.accept())!;
    for await (const c of s) {
      received += c.length;
      reads++;
    }
    s.end();
  })();
  const r = await a.connect(B_IP, 80);
  if (r.kind !== "connected") throw new Error(r.kind);
  const sock: TcpSocket = r.socket;
  const buf = new Uint8Array(WRITE).fill(7);
  const t0 = performance.now();
  for (let off = 0; off < total; off += WRITE) await sock.write(buf);
  sock.end();
  await server;
  const ms = performance.now() - t0;
  clearInterval(timer);
  const sa = a.stats();
  const sb = b.stats();
  console.log(
    `${MIB} MiB in ${ms.toFixed(0)} ms: ${(received / 1048576 / (ms / 1000)).toFixed(1)} MiB/s; ` +
      `A out ${sa.outSegs} segs (retrans ${sa.retransSegs}), B out ${sb.outSegs} (ACKs), reads ${reads} (${(received / reads / 1024).toFixed(1)} KiB/read)`,
  );
}

await main();
