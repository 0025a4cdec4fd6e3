/**
 * A UDP load tool in the spirit of iperf -u: a server that counts datagrams on a port, and a
 * client that sends a fixed number as fast as the datapath takes them, yielding to the event
 * loop between bursts so NATS can write them out.
 */
import { formatIpv4, parseIpv4Addr } from "../../overlay/wire/index.ts";
import type { ExecResult } from "../../cluster/types.ts";
import { Output, numberFlag, parseFlags, type ToolContext } from "./common.ts";

const BURST = 64;
const IDLE_MS = 1000;

export async function iperf(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  const out = new Output();
  const parsed = parseFlags(argv, { "-s": "bool", "-c": "value", "-u": "bool", "-p": "value", "-n": "value", "-l": "value", "-t": "value" });
  const { flags } = parsed;
  if (!flags.has("-u")) {
    out.error("iperf: only UDP (-u) is emulated");
    return out.result(2);
  }
  const port = numberFlag(flags, "-p", 5201, 1, 65535);
  const count = numberFlag(flags, "-n", 10_000, 1, 100_000_000);
  const len = numberFlag(flags, "-l", 1400, 1, 1422);
  const seconds = numberFlag(flags, "-t", 30, 0.1, 3600);
  if (flags.has("-s")) return serve(ctx, out, port, count, seconds);
  const dst = parseIpv4Addr(flags.get("-c") ?? "");
  if (dst === undefined) {
    out.error("iperf: need -s, or -c with an IPv4 address");
    return out.result(2);
  }
  return client(ctx, out, dst, port, count, len);
}

async function serve(ctx: ToolContext, out: Output, port: number, count: number, seconds: number): Promise<ExecResult> {
  const { ns, clock } = ctx;
  let received = 0;
  let bytes = 0;
  let first = 0;
  let last = 0;
  let done: (() => void) | undefined;
  const bound = ns.bindUdp(port, (payload) => {
    const now = clock.now();
    if (received === 0) first = now;
    last = now;
    received++;
    bytes += payload.length;
    if (received >= count) done?.();
  });
  if (bound.kind === "inUse") {
    out.error(`iperf: error - unable to bind to port ${port}: Address already in use`);
    return out.result(1);
  }
  // Ends when `count` datagrams arrived, after `seconds`, or once traffic stops for IDLE_MS
  // (datagrams lost on the way never arrive, and waiting for them would only add idle time).
  const deadline = clock.now() + seconds * 1000;
  let finished = false;
  const allIn = new Promise<void>((resolve) => (done = resolve)).then(() => void (finished = true));
  try {
    while (!finished && clock.now() < deadline && !(received > 0 && clock.now() - last > IDLE_MS)) {
      await Promise.race([allIn, clock.sleep(IDLE_MS / 4)]);
    }
  } finally {
    ns.unbindUdp(port);
  }
  const ms = last - first;
  const rate = ms > 0 ? ((received - 1) / ms) * 1000 : 0;
  out.line(`received ${received} datagrams (${bytes} bytes) in ${ms.toFixed(1)} ms: ${Math.round(rate)} datagrams/s, ${((rate * bytes * 8) / Math.max(received, 1) / 1e6).toFixed(1)} Mbit/s`);
  return out.result(received > 0 ? 0 : 1);
}

async function client(ctx: ToolContext, out: Output, dst: number, port: number, count: number, len: number): Promise<ExecResult> {
  const { ns, clock } = ctx;
  const payload = new Uint8Array(len);
  const srcPort = ns.bindEphemeralUdp(() => {});
  const start = clock.now();
  let sent = 0;
  try {
    while (sent < count) {
      const burst = Math.min(BURST, count - sent);
      for (let i = 0; i < burst; i++) {
        const res = ns.sendUdp(dst, port, srcPort, payload);
        if (res.kind !== "sent") {
          out.error(`iperf: send failed: ${res.kind}`);
          return out.result(1);
        }
      }
      sent += burst;
      await clock.yieldTurn();
    }
  } finally {
    ns.unbindUdp(srcPort);
  }
  const ms = clock.now() - start;
  out.line(`sent ${sent} datagrams (${sent * len} bytes) to ${formatIpv4(dst)}:${port} in ${ms.toFixed(1)} ms`);
  return out.result(0);
}
