/**
 * OpenBSD netcat (Debian's netcat-openbsd, the usual `nc` in debugging images), as far as an
 * exec with no stdin allows:
 * - `nc -z [-v] [-u] [-w S] HOST PORT[-PORT]...`: port scan, "Connection to H P port
 *   [tcp/SERVICE] succeeded!" / "nc: connect to H port P (tcp) failed: Connection refused";
 *   exit 0 when every port answered. UDP "succeeds" unless an ICMP port unreachable for our
 *   probe arrives within the wait (OpenBSD nc writes and only learns of a refusal that way).
 * - `nc [-w S] HOST PORT`: connect, send nothing (no stdin), print what the server sends until
 *   it closes or -w seconds pass without data.
 * - `nc -l [-p] PORT [-w S]` (TCP, or -u): accept one connection (or datagrams), print what
 *   arrives; gives up after -w seconds (default: the tool cap).
 * Every wait is bounded by -w and by TOOL_CAP_MS.
 */
import type { ExecResult } from "../../cluster/types.ts";
import { formatIpv4 } from "../../overlay/wire/index.ts";
import type { TcpSocket } from "../tcp/api.ts";
import { UsageError, type ToolContext } from "./common.ts";
import { TOOL_CAP_MS, resolveHost } from "./curl.ts";

/** /etc/services names OpenBSD nc prints in "[tcp/NAME]". */
const SERVICES: Record<string, Record<number, string>> = {
  tcp: { 22: "ssh", 25: "smtp", 53: "domain", 80: "http", 443: "https", 2379: "*", 3306: "mysql", 5432: "postgresql", 6379: "redis", 8080: "http-alt" },
  udp: { 53: "domain", 123: "ntp", 161: "snmp", 4789: "*", 8472: "*" },
};

/** How long a UDP probe waits for an ICMP refusal when no -w is given. */
const UDP_PROBE_WAIT_MS = 1000;

export async function nc(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  const { flags, positional } = getopt(argv, "zvulnk", "wp");
  const verbose = flags.has("-v");
  const scan = flags.has("-z");
  const udp = flags.has("-u");
  const waitRaw = flags.get("-w");
  const waitMs = waitRaw === undefined ? undefined : Number(waitRaw) * 1000;
  if (waitMs !== undefined && (!Number.isFinite(waitMs) || waitMs <= 0)) throw new UsageError(`timeout cannot be negative or zero: ${waitRaw}`);
  const out = { stdout: [] as string[], stderr: [] as string[] };
  const bounded = Math.min(waitMs ?? TOOL_CAP_MS, TOOL_CAP_MS);

  if (flags.has("-l")) {
    const portText = flags.get("-p") ?? positional[0];
    const port = portText === undefined ? NaN : Number(portText);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError("missing or invalid port to listen on");
    return udp ? listenUdp(ctx, port, bounded, verbose, out) : listenTcp(ctx, port, bounded, verbose, out);
  }

  const [host, ...portArgs] = positional;
  if (host === undefined || portArgs.length === 0) throw new UsageError("missing hostname and port");
  const ports: number[] = [];
  for (const p of portArgs) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(p);
    const lo = range ? Number(range[1]) : NaN;
    const hi = range?.[2] !== undefined ? Number(range[2]) : lo;
    if (!range || lo < 1 || hi > 65535 || lo > hi || hi - lo > 1024) throw new UsageError(`port range not valid: ${p}`);
    for (let q = lo; q <= hi; q++) ports.push(q);
  }
  const started = ctx.clock.now();
  const ip = await resolveHost(ctx, host, bounded);
  if (ip === undefined) {
    out.stderr.push(`nc: getaddrinfo for host "${host}" port ${ports[0]}: Name or service not known\n`);
    return result(1, out);
  }
  const proto = udp ? "udp" : "tcp";
  const hostShown = host;
  if (!scan && udp) throw new UsageError("-u needs -z or -l here: the emulated exec has no stdin to send");
  if (!scan) return talk(ctx, ip, ports[0]!, hostShown, waitMs, bounded, verbose, out);

  let failures = 0;
  for (const port of ports) {
    const left = started + TOOL_CAP_MS - ctx.clock.now();
    if (left <= 0) break;
    const outcome = udp ? await probeUdp(ctx, ip, port, Math.min(waitMs ?? UDP_PROBE_WAIT_MS, left)) : await probeTcp(ctx, ip, port, Math.min(waitMs ?? TOOL_CAP_MS, left));
    if (outcome === "succeeded") {
      if (verbose) out.stderr.push(`Connection to ${hostShown} ${port} port [${proto}/${SERVICES[proto]![port] ?? "*"}] succeeded!\n`);
    } else {
      failures++;
      // OpenBSD nc warns about a failed connect only with -v; the exit code says it anyway.
      if (verbose) out.stderr.push(`nc: connect to ${hostShown} port ${port} (${proto}) ${outcome}\n`);
    }
  }
  return result(failures === 0 ? 0 : 1, out);
}

type Output = { stdout: string[]; stderr: string[] };

/** getopt(3) as nc uses it: "-zv", "-w2", "-lp 8080" all work; unknown letters are usage errors. */
function getopt(argv: readonly string[], bools: string, values: string): { flags: Map<string, string>; positional: string[] } {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    for (let j = 1; j < arg.length; j++) {
      const c = arg[j]!;
      if (bools.includes(c)) flags.set(`-${c}`, "true");
      else if (values.includes(c)) {
        const value = j + 1 < arg.length ? arg.slice(j + 1) : argv[++i];
        if (value === undefined) throw new UsageError(`option requires an argument -- '${c}'`);
        flags.set(`-${c}`, value);
        break;
      } else throw new UsageError(`invalid option -- '${c}'`);
    }
  }
  return { flags, positional };
}

function result(code: number, out: Output): ExecResult {
  return { exitCode: code, stdout: out.stdout.join(""), stderr: out.stderr.join("") };
}

async function probeTcp(ctx: ToolContext, ip: number, port: number, timeoutMs: number): Promise<"succeeded" | string> {
  const attempt = ctx.tcp.connect(ip, port, { timeoutMs });
  const res = await Promise.race([attempt, ctx.clock.sleep(timeoutMs + 1000).then(() => ({ kind: "timeout" }) as const)]);
  switch (res.kind) {
    case "connected":
      // -z closes straight away; a FIN as close(2) does.
      res.socket.end();
      return "succeeded";
    case "refused":
      return "failed: Connection refused";
    case "unreachable":
      return "failed: No route to host";
    case "timeout":
      void attempt.then((late) => late.kind === "connected" && late.socket.abort(), () => {});
      return "timed out: Operation now in progress";
  }
}

async function probeUdp(ctx: ToolContext, ip: number, port: number, waitMs: number): Promise<"succeeded" | string> {
  const { ns, clock } = ctx;
  // nc's socket is connect()ed to the target, so the kernel hands it the ICMP errors about its
  // datagrams (ECONNREFUSED on the next write or read, __udp4_lib_err): the onError callback.
  let failed!: (why: string) => void;
  const failure = new Promise<string>((resolve) => (failed = resolve));
  const srcPort = ns.bindEphemeralUdp(() => {}, (err) => {
    if (err.dst !== ip || err.dstPort !== port) return;
    failed(err.kind === "refused" ? "failed: Connection refused" : "failed: No route to host");
  });
  try {
    const sent = ns.sendUdp(ip, port, srcPort, new TextEncoder().encode("X"));
    if (sent.kind === "noRoute") return "failed: Network is unreachable";
    return await Promise.race([failure, clock.sleep(waitMs).then(() => "succeeded")]);
  } finally {
    ns.unbindUdp(srcPort);
  }
}

/** Reads until EOF, the idle timeout, or the cap; returns how it ended. */
async function drain(ctx: ToolContext, socket: TcpSocket, idleMs: number | undefined, capAt: number, out: Output): Promise<"eof" | "idle" | "cap"> {
  let pending: Promise<Uint8Array | null> | undefined;
  for (;;) {
    const left = capAt - ctx.clock.now();
    if (left <= 0) return "cap";
    const wait = Math.min(idleMs ?? left, left);
    pending ??= socket.read();
    const got = await Promise.race([pending, ctx.clock.sleep(wait).then(() => "timeout" as const)]);
    if (got === "timeout") return idleMs !== undefined && wait === idleMs ? "idle" : "cap";
    pending = undefined;
    if (got === null) return "eof";
    out.stdout.push(Buffer.from(got).toString("utf8"));
  }
}

async function talk(ctx: ToolContext, ip: number, port: number, host: string, waitMs: number | undefined, bounded: number, verbose: boolean, out: Output): Promise<ExecResult> {
  const started = ctx.clock.now();
  const res = await ctx.tcp.connect(ip, port, { timeoutMs: bounded });
  if (res.kind !== "connected") {
    const why = res.kind === "refused" ? "failed: Connection refused" : res.kind === "unreachable" ? "failed: No route to host" : "timed out: Operation now in progress";
    if (verbose) out.stderr.push(`nc: connect to ${host} port ${port} (tcp) ${why}\n`);
    return result(1, out);
  }
  if (verbose) out.stderr.push(`Connection to ${host} ${port} port [tcp/${SERVICES.tcp![port] ?? "*"}] succeeded!\n`);
  await drain(ctx, res.socket, waitMs, started + TOOL_CAP_MS, out);
  res.socket.end();
  return result(0, out);
}

async function listenTcp(ctx: ToolContext, port: number, waitMs: number, verbose: boolean, out: Output): Promise<ExecResult> {
  const bound = ctx.tcp.listen(port, { backlog: 1 });
  if (bound.kind === "inUse") {
    out.stderr.push("nc: Address already in use\n");
    return result(1, out);
  }
  const { listener } = bound;
  const started = ctx.clock.now();
  if (verbose) out.stderr.push(`Listening on 0.0.0.0 ${port}\n`);
  try {
    const accepted = listener.accept();
    const socket = await Promise.race([accepted, ctx.clock.sleep(waitMs).then(() => null)]);
    if (!socket) {
      listener.close();
      void accepted.then((late) => late?.abort(), () => {});
      return result(1, out);
    }
    listener.close();
    if (verbose) out.stderr.push(`Connection received on ${formatIpv4(socket.remote.ip)} ${socket.remote.port}\n`);
    await drain(ctx, socket, waitMs, started + TOOL_CAP_MS, out);
    socket.end();
    return result(0, out);
  } finally {
    listener.close();
  }
}

async function listenUdp(ctx: ToolContext, port: number, waitMs: number, verbose: boolean, out: Output): Promise<ExecResult> {
  const { ns, clock } = ctx;
  const bound = ns.bindUdp(port, (payload) => out.stdout.push(Buffer.from(payload).toString("utf8")));
  if (bound.kind === "inUse") {
    out.stderr.push("nc: Address already in use\n");
    return result(1, out);
  }
  if (verbose) out.stderr.push(`Bound on 0.0.0.0 ${port}\n`);
  try {
    await clock.sleep(waitMs);
  } finally {
    ns.unbindUdp(port);
  }
  return result(0, out);
}
