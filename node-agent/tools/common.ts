/** What an emulated tool gets: the pod's netns, a clock, and a place to write its output. */
import type { ExecResult } from "../../cluster/types.ts";
import { IpProtocol, readU16, readU32, type Ipv4Addr } from "../../overlay/wire/index.ts";
import type { Netns } from "../netns.ts";
import type { Conntrack } from "../conntrack.ts";
import type { TcpApi } from "../tcp/api.ts";
import type { PodFs } from "./fs.ts";

export interface Clock {
  /** Milliseconds, monotonic, sub-millisecond resolution. */
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Lets queued I/O (NATS writes) run before continuing a busy loop. */
  yieldTurn(): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  yieldTurn: () => new Promise((resolve) => setImmediate(resolve)),
};

export interface ToolContext {
  ns: Netns;
  /** The pod's TCP (curl, wget, nc). */
  tcp: TcpApi;
  podName: string;
  clock: Clock;
  /** Host name -> IPv4 (cluster DNS once it exists); without it only dotted quads work. */
  resolve?(name: string): Promise<number | undefined>;
  /** The netns's connection tracking table (`conntrack -L`); a pod's own, or the node's root. */
  conntrack?: Conntrack;
  /** The pod's files (dd, sha256sum, cat, ls, rm, curl -o, wget -O); shared with its apps. */
  fs?: PodFs;
  /** On a node: kube-proxy's rules in a tool's native format (iptables-save, ipvsadm -Ln, nft list ruleset). */
  proxyDump?(tool: "iptables-save" | "ipvsadm" | "nft", args: readonly string[]): string | undefined;
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
