/**
 * traceroute, the classic UDP way: probes to port 33434 and up with TTL 1, 2, ...; each router
 * whose TTL runs out answers ICMP time exceeded, the destination answers port unreachable.
 * A name is resolved as the pod's libc does (common.ts resolveName); the first line shows it as
 * given: "traceroute to web (10.96.0.20), 30 hops max, 60 byte packets".
 */
import { IpProtocol, UnreachableCode, formatIpv4, parseIpv4Addr } from "../../overlay/wire/index.ts";
import type { ExecResult } from "../../cluster/types.ts";
import { Output, lookupError, numberFlag, parseFlags, readQuotedHeader, resolveName, type ToolContext } from "./common.ts";
import { describeError } from "./ping.ts";

const BASE_PORT = 33434;
/** 60-byte probes as traceroute's default: 20 IP + 8 UDP + 32 data. */
const PROBE_DATA = new Uint8Array(32);

export async function traceroute(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  const out = new Output();
  const parsed = parseFlags(argv, { "-m": "value", "-q": "value", "-w": "value", "-n": "bool" });
  const maxHops = numberFlag(parsed.flags, "-m", 30, 1, 255);
  const queries = numberFlag(parsed.flags, "-q", 3, 1, 10);
  const wait = numberFlag(parsed.flags, "-w", 1, 0.01, 60);
  const target = parsed.positional[0];
  if (target === undefined) {
    out.error("Usage: traceroute [-m max_ttl] [-q nqueries] [-w waittime] host");
    return out.result(2);
  }
  let dst = parseIpv4Addr(target);
  if (dst === undefined) {
    const r = await resolveName(ctx, target, 30_000);
    if (r.kind !== "found") {
      // traceroute's getaddr(): "NAME: gai_strerror".
      out.error(`${target}: ${lookupError(r)}`);
      return out.result(2);
    }
    dst = r.addresses[0]!;
  }
  const { ns, clock } = ctx;
  // Answers keyed by probe destination port, which is unique per probe.
  const answers = new Map<number, { from: number; rtt: number; kind: string; code: number }>();
  const sentAt = new Map<number, number>();
  let wake: (() => void) | undefined;
  const srcPort = ns.bindEphemeralUdp(() => {});
  const stop = ns.onIcmp((icmp, ip) => {
    if (icmp.kind !== "timeExceeded" && icmp.kind !== "destUnreachable") return;
    const q = readQuotedHeader(icmp.original);
    if (!q || q.protocol !== IpProtocol.UDP || q.first !== srcPort || !sentAt.has(q.second)) return;
    answers.set(q.second, { from: ip.src, rtt: clock.now() - sentAt.get(q.second)!, kind: icmp.kind, code: icmp.code });
    if ([...sentAt.keys()].every((p) => answers.has(p))) wake?.();
  });

  out.line(`traceroute to ${target} (${formatIpv4(dst)}), ${maxHops} hops max, 60 byte packets`);
  let port = BASE_PORT;
  let reached = false;
  try {
    for (let ttl = 1; ttl <= maxHops && !reached; ttl++) {
      sentAt.clear();
      const ports: number[] = [];
      for (let q = 0; q < queries; q++) {
        const p = port++;
        ports.push(p);
        sentAt.set(p, clock.now());
        ns.sendUdp(dst, p, srcPort, PROBE_DATA, { ttl, dontFragment: false });
      }
      if (!ports.every((p) => answers.has(p))) {
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), clock.sleep(wait * 1000)]);
      }
      let line = `${String(ttl).padStart(2)} `;
      let lastFrom: number | undefined;
      for (const p of ports) {
        const a = answers.get(p);
        if (!a) {
          line += " *";
          continue;
        }
        if (a.from !== lastFrom) line += ` ${formatIpv4(a.from)}`;
        lastFrom = a.from;
        line += `  ${a.rtt.toFixed(3)} ms`;
        if (a.kind === "destUnreachable" && a.code !== UnreachableCode.PortUnreachable) line += ` !${describeError(a.kind, a.code)}`;
        if (a.kind === "destUnreachable") reached = true;
      }
      out.line(line);
    }
  } finally {
    stop();
    ns.unbindUdp(srcPort);
  }
  return out.result(0);
}
