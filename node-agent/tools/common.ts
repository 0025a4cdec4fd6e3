/** What an emulated tool gets: the pod's netns, a clock, and a place to write its output. */
import type { ExecResult } from "../../cluster/types.ts";
import { IpProtocol, parseIpv4Addr, readU16, readU32, type Ipv4Addr } from "../../overlay/wire/index.ts";
import type { Netns } from "../netns.ts";
import type { Conntrack } from "../conntrack.ts";
import { hostsLookup, lookupHost, type LookupFailure, type LookupResult, type StubIo } from "../dns/stub.ts";
import type { TcpApi } from "../tcp/api.ts";
import type { PodFs } from "./fs.ts";

export interface Clock {
  /** Milliseconds, monotonic, sub-millisecond resolution. */
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Lets queued I/O (NATS writes) run before continuing a busy loop. */
  yieldTurn(): Promise<void>;
  /** A cancellable timer (a DNS wait that an answer ends early leaves nothing behind). */
  schedule?(ms: number, fn: () => void): () => void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  yieldTurn: () => new Promise((resolve) => setImmediate(resolve)),
  schedule: (ms, fn) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return () => clearTimeout(t);
  },
};

export interface ToolContext {
  ns: Netns;
  /** The pod's TCP (curl, wget, nc). */
  tcp: TcpApi;
  podName: string;
  clock: Clock;
  /**
   * Host name -> IPv4, overriding the pod's resolver (tests). Without it names go through
   * /etc/hosts and the cluster DNS named by the pod's /etc/resolv.conf (node-agent/dns/stub.ts).
   */
  resolve?(name: string): Promise<number | undefined>;
  /** The netns's connection tracking table (`conntrack -L`); a pod's own, or the node's root. */
  conntrack?: Conntrack;
  /** The pod's files (dd, sha256sum, cat, ls, rm, curl -o, wget -O); shared with its apps. */
  fs?: PodFs;
  /** On a node: kube-proxy's rules in a tool's native format (iptables-save, ipvsadm -Ln, nft list ruleset). */
  proxyDump?(tool: "iptables-save" | "ipvsadm" | "nft", args: readonly string[]): string | undefined;
  /** The container's environment (`env`, `kubectl exec POD -- env`). */
  env?: Readonly<Record<string, string>>;
  /** Uniform in [0, 1): DNS query IDs, source ports, cookies. Default Math.random (a tool is the edge). */
  random?(): number;
  /** Wall-clock time (dig's WHEN line); default the host's clock. */
  wallTime?(): Date;
}

/** The stub resolver's I/O from a tool's context: the pod's UDP and TCP, its clock, randomness. */
export function stubIo(ctx: ToolContext): StubIo {
  return { udp: ctx.ns, tcp: ctx.tcp, clock: ctx.clock, rng: ctx.random ? () => ctx.random!() : Math.random };
}

/** A text file of the pod's filesystem, or undefined when there is none. */
export function podText(ctx: ToolContext, path: string): string | undefined {
  if (!ctx.fs || ctx.fs.stat(path)?.kind !== "file") return undefined;
  return new TextDecoder().decode(ctx.fs.read(path));
}

/**
 * A host name as the pod's libc resolves it for an IPv4 socket: a dotted quad as is, the
 * `resolve` override when given, else /etc/hosts and then DNS per /etc/resolv.conf (glibc
 * getaddrinfo, see stub.ts), bounded by `timeoutMs`. Without /etc/resolv.conf (a node's root
 * netns) only /etc/hosts and "localhost" resolve.
 */
export async function resolveName(ctx: ToolContext, host: string, timeoutMs: number): Promise<LookupResult> {
  const literal = parseIpv4Addr(host);
  if (literal !== undefined) return { kind: "found", addresses: [literal], canonical: host, aliases: [], source: "literal" };
  const hosts = podText(ctx, "/etc/hosts");
  // Without a hosts file "localhost" still means the loopback (as the tools always had it).
  if (hosts === undefined && host.toLowerCase() === "localhost") return { kind: "found", addresses: [0x7f000001], canonical: "localhost", aliases: [], source: "hosts" };
  if (ctx.resolve) {
    const ip = await Promise.race([ctx.resolve(host).catch(() => undefined), ctx.clock.sleep(timeoutMs).then(() => undefined)]);
    return ip === undefined ? { kind: "nxdomain" } : { kind: "found", addresses: [ip], canonical: host, aliases: [], source: "dns" };
  }
  const conf = podText(ctx, "/etc/resolv.conf");
  if (conf === undefined) return (hosts === undefined ? undefined : hostsLookup(host, hosts)) ?? { kind: "nxdomain" };
  return lookupHost(stubIo(ctx), host, conf, hosts, { deadline: ctx.clock.now() + timeoutMs });
}

/** gai_strerror's text for a failed lookup (what ping, nc and getent's callers print). */
export function lookupError(r: LookupFailure): string {
  switch (r.kind) {
    case "nxdomain":
      return "Name or service not known";
    case "nodata":
      return "No address associated with hostname";
    default:
      return "Temporary failure in name resolution";
  }
}

export class Output {
  private out: string[] = [];
  private err: string[] = [];
  line(text: string): void {
    this.out.push(text);
  }
  error(text: string): void {
    this.err.push(text);
  }
  result(exitCode: number): ExecResult {
    return { exitCode, stdout: this.out.map((l) => `${l}\n`).join(""), stderr: this.err.map((l) => `${l}\n`).join("") };
  }
}

/** The header an ICMP error quotes: enough to match it to the probe that caused it. */
export interface QuotedHeader {
  protocol: number;
  src: Ipv4Addr;
  dst: Ipv4Addr;
  /** UDP/TCP ports, or ICMP echo ident/seq, from the first 8 payload bytes. */
  first: number;
  second: number;
}

/** The quote is truncated by design (RFC 792), so it is read field by field, with bounds checked. */
export function readQuotedHeader(original: Uint8Array): QuotedHeader | undefined {
  if (original.length < 20 || original[0]! >> 4 !== 4) return undefined;
  const ihl = (original[0]! & 0x0f) * 4;
  if (ihl < 20 || original.length < ihl + 8) return undefined;
  const protocol = original[9]!;
  const icmp = protocol === IpProtocol.ICMP;
  return {
    protocol,
    src: readU32(original, 12),
    dst: readU32(original, 16),
    first: readU16(original, ihl + (icmp ? 4 : 0)),
    second: readU16(original, ihl + (icmp ? 6 : 2)),
  };
}

/** Bad arguments to a tool: exit code 2 and the message, as the real tools do. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Parses `-x value` style flags; unknown flags are an error, as in the real tools. */
export function parseFlags(
  argv: readonly string[],
  spec: Record<string, "value" | "bool">,
): { flags: Map<string, string>; positional: string[] } {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    const kind = spec[arg];
    if (!kind) throw new UsageError(`invalid option -- '${arg.replace(/^-+/, "")}'`);
    if (kind === "bool") flags.set(arg, "true");
    else {
      const value = argv[++i];
      if (value === undefined) throw new UsageError(`option requires an argument -- '${arg.replace(/^-+/, "")}'`);
      flags.set(arg, value);
    }
  }
  return { flags, positional };
}

export function numberFlag(flags: Map<string, string>, name: string, fallback: number, min: number, max: number): number {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) throw new UsageError(`invalid argument for ${name}: '${raw}' (allowed: ${min}..${max})`);
  return value;
}
