/**
 * dnsperf (DNS-OARC) inside a pod: queries from a data file (`name type` per line, `-d`, a file
 * in the pod: `curl -o` puts one there) sent over the pod's UDP to a server (`-s`, 127.0.0.1 by
 * default as the real tool; 10.96.0.10 is the cluster's) with at most `-q` outstanding (100),
 * for `-l` seconds or `-n` passes over the file (once by default), `-Q` queries/s at most; a
 * query unanswered after `-t` seconds (5) is lost. The statistics block is dnsperf 2.x's.
 * Only UDP, one socket (`-c 1`): what dnsperf does by default.
 */
import type { ExecResult } from "../../cluster/types.ts";
import { formatIpv4, parseIpv4Addr } from "../../overlay/wire/index.ts";
import { QTYPE, encodeQuery } from "../dns/wire.ts";
import { FsError, resolvePath } from "./fs.ts";
import { Output, UsageError, numberFlag, parseFlags, type ToolContext } from "./common.ts";

const RCODES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

interface Slot {
  sentAt: number;
  size: number;
}

export async function dnsperf(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  const out = new Output();
  const { flags } = parseFlags(argv, { "-s": "value", "-p": "value", "-d": "value", "-l": "value", "-n": "value", "-q": "value", "-Q": "value", "-t": "value", "-c": "value" });
  const server = parseIpv4Addr(flags.get("-s") ?? "127.0.0.1");
  if (server === undefined) throw new UsageError(`invalid server address '${flags.get("-s")}'`);
  const port = numberFlag(flags, "-p", 53, 1, 65535);
  const limitS = numberFlag(flags, "-l", 0, 0, 3600);
  const passes = numberFlag(flags, "-n", limitS > 0 ? Infinity : 1, 1, 1_000_000);
  const maxOutstanding = numberFlag(flags, "-q", 100, 1, 65535);
  const maxQps = numberFlag(flags, "-Q", 0, 0, 10_000_000);
  const timeoutMs = numberFlag(flags, "-t", 5, 0.001, 60) * 1000;
  if (numberFlag(flags, "-c", 1, 1, 1) !== 1) throw new UsageError("only one client (-c 1) is emulated");
  const file = flags.get("-d");
  if (!file) throw new UsageError("-d FILE is required here (stdin is not passed to emulated tools)");
  if (!ctx.fs) throw new UsageError("no filesystem here");
  let queries: Uint8Array[];
  try {
    queries = readQueries(new TextDecoder().decode(ctx.fs.read(resolvePath(file))));
  } catch (err) {
    if (err instanceof FsError) {
      out.error(`Error: unable to open datafile: ${file}`);
      return out.result(1);
    }
    throw err;
  }
  if (queries.length === 0) {
    out.error("Error: input file contains no data");
    return out.result(1);
  }

  const { ns, clock } = ctx;
  const slots = new Map<number, Slot>();
  const rcodes = new Map<string, number>();
  let sent = 0;
  let completed = 0;
  let lost = 0;
  let reqBytes = 0;
  let resBytes = 0;
  let latSum = 0;
  let latSq = 0;
  let latMin = Infinity;
  let latMax = 0;
  let nextId = 0;
  let wake: (() => void) | undefined;
  const srcPort = ns.bindEphemeralUdp((payload) => {
    if (payload.length < 12) return;
    const id = (payload[0]! << 8) | payload[1]!;
    const slot = slots.get(id);
    if (!slot) return;
    slots.delete(id);
    const lat = (clock.now() - slot.sentAt) / 1000;
    completed++;
    resBytes += payload.length;
    latSum += lat;
    latSq += lat * lat;
    if (lat < latMin) latMin = lat;
    if (lat > latMax) latMax = lat;
    const rcode = RCODES[payload[3]! & 0x0f] ?? `RCODE${payload[3]! & 0x0f}`;
    rcodes.set(rcode, (rcodes.get(rcode) ?? 0) + 1);
    wake?.();
  });
  const start = clock.now();
  const end = limitS > 0 ? start + limitS * 1000 : Infinity;
  const total = passes === Infinity ? Infinity : passes * queries.length;
  const startedAt = new Date();
  try {
    for (;;) {
      const now = clock.now();
      for (const [id, slot] of slots) {
        if (now - slot.sentAt < timeoutMs) break; // insertion order is send order
        slots.delete(id);
        lost++;
      }
      if (now >= end || (sent >= total && slots.size === 0)) break;
      let burst = 0;
      while (sent < total && slots.size < maxOutstanding && now < end && burst < 256) {
        if (maxQps > 0 && sent >= ((clock.now() - start) / 1000) * maxQps) break;
        while (slots.has(nextId)) nextId = (nextId + 1) & 0xffff;
        const q = queries[sent % queries.length]!;
        q[0] = nextId >> 8;
        q[1] = nextId & 0xff;
        slots.set(nextId, { sentAt: clock.now(), size: q.length });
        nextId = (nextId + 1) & 0xffff;
        ns.sendUdp(server, port, srcPort, q);
        reqBytes += q.length;
        sent++;
        burst++;
      }
      // Replies arrive as microtasks of this same turn: without a macrotask turn here the loop
      // would never let its node read NATS or run timers, and starve every other pod's traffic.
      await clock.yieldTurn();
      if (burst === 0) {
        // Nothing could be sent: wait for a reply, the pacing tick or the next timeout.
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), clock.sleep(10)]);
        wake = undefined;
      }
    }
  } finally {
    ns.unbindUdp(srcPort);
  }
  lost += slots.size;
  const runS = (clock.now() - start) / 1000;
  const pct = (n: number) => (sent > 0 ? ((n / sent) * 100).toFixed(2) : "0.00");
  out.line("DNS Performance Testing Tool");
  out.line("Version 2.11.2 (kubewire emulated)");
  out.line("");
  out.line(`[Status] Command line: dnsperf ${argv.join(" ")}`);
  out.line(`[Status] Sending queries (to ${formatIpv4(server)}:${port})`);
  out.line(`[Status] Started at: ${startedAt.toUTCString()}`);
  out.line(limitS > 0 ? `[Status] Stopping after ${limitS.toFixed(6)} seconds` : `[Status] Stopping after ${passes} run${passes === 1 ? "" : "s"} through file`);
  out.line(`[Status] Testing complete (${limitS > 0 && clock.now() >= end ? "time limit" : "end of file"})`);
  out.line("");
  out.line("Statistics:");
  out.line("");
  out.line(`  Queries sent:         ${sent}`);
  out.line(`  Queries completed:    ${completed} (${pct(completed)}%)`);
  out.line(`  Queries lost:         ${lost} (${pct(lost)}%)`);
  out.line("");
  out.line(`  Response codes:       ${[...rcodes].map(([k, v]) => `${k} ${v} (${((v / Math.max(completed, 1)) * 100).toFixed(2)}%)`).join(", ")}`);
  out.line(`  Average packet size:  request ${sent > 0 ? Math.round(reqBytes / sent) : 0}, response ${completed > 0 ? Math.round(resBytes / completed) : 0}`);
  out.line(`  Run time (s):         ${runS.toFixed(6)}`);
  out.line(`  Queries per second:   ${runS > 0 ? (completed / runS).toFixed(6) : "0.000000"}`);
  out.line("");
  const avg = completed > 0 ? latSum / completed : 0;
  out.line(`  Average Latency (s):  ${avg.toFixed(6)} (min ${(completed > 0 ? latMin : 0).toFixed(6)}, max ${latMax.toFixed(6)})`);
  out.line(`  Latency StdDev (s):   ${completed > 1 ? Math.sqrt(Math.max(0, (latSq - completed * avg * avg) / (completed - 1))).toFixed(6) : "0.000000"}`);
  out.line("");
  return out.result(0);
}

/** dnsperf's data file: `name type` per line; blank lines and `;` comments skipped. */
export function readQueries(text: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t === "" || t.startsWith(";")) continue;
    const [name, typeName = "A"] = t.split(/\s+/);
    const type = (QTYPE as Record<string, number>)[typeName.toUpperCase()];
    if (type === undefined || !name) continue;
    // dnsperf sets RD and, by default, EDNS0 is off (-e turns it on). A bad name is skipped, as
    // dnsperf warns and goes on.
    try {
      out.push(encodeQuery({ id: 0, name, type, rd: true }));
    } catch {
      continue;
    }
  }
  return out;
}
