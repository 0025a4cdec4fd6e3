/**
 * ping, as iputils prints it: ICMP echo requests (RFC 792) with the DF bit set, one per
 * interval, RTT per reply and the summary statistics; ICMP errors about our probes are shown
 * as "From X icmp_seq=N ...".
 *
 * A name is resolved as the pod's libc does (common.ts resolveName) and shown by its canonical
 * name (getaddrinfo AI_CANONNAME): "PING web.demo.svc.cluster.local (10.96.0.20) 56(84) bytes of
 * data."; replies then name their source as "NAME (IP)" unless -n. iputils asks getnameinfo per
 * reply; here the destination's PTR is asked once up front and other sources show "IP (IP)",
 * which is what getnameinfo gives for an address without a PTR record.
 */
import { TimeExceededCode, UnreachableCode, formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/index.ts";
import type { ExecResult } from "../../cluster/types.ts";
import { lookupAddr } from "../dns/stub.ts";
import { Output, lookupError, numberFlag, parseFlags, podText, readQuotedHeader, resolveName, stubIo, type ToolContext } from "./common.ts";

/** How long the name lookups may take (iputils has no bound of its own but the resolver's). */
const RESOLVE_CAP_MS = 30_000;

let nextIdent = 0x4b57;

export async function ping(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  const out = new Output();
  const parsed = parseFlags(argv, { "-c": "value", "-i": "value", "-s": "value", "-W": "value", "-t": "value", "-q": "bool", "-n": "bool" });
  const { flags, positional } = parsed;
  const count = numberFlag(flags, "-c", 4, 1, 1_000_000);
  const interval = numberFlag(flags, "-i", 1, 0, 60);
  const size = numberFlag(flags, "-s", 56, 0, 65507);
  const waitSeconds = numberFlag(flags, "-W", 2, 0.001, 60);
  const ttl = numberFlag(flags, "-t", 64, 1, 255);
  const target = positional[0];
  if (target === undefined) {
    out.error("ping: usage error: Destination address required");
    return out.result(2);
  }
  const literal = parseIpv4Addr(target);
  let dst: Ipv4Addr;
  let shown = target;
  const names = new Map<Ipv4Addr, string>();
  if (literal !== undefined) dst = literal;
  else {
    const r = await resolveName(ctx, target, RESOLVE_CAP_MS);
    if (r.kind !== "found") {
      out.error(`ping: ${target}: ${lookupError(r)}`);
      return out.result(2);
    }
    dst = r.addresses[0]!;
    shown = r.canonical;
    const conf = podText(ctx, "/etc/resolv.conf");
    if (!flags.has("-n") && conf !== undefined) {
      const ptr = await lookupAddr(stubIo(ctx), dst, conf, podText(ctx, "/etc/hosts"), { deadline: ctx.clock.now() + RESOLVE_CAP_MS });
      if (ptr.kind === "found") names.set(dst, ptr.name);
    }
  }
  // iputils pr_addr: numeric for a numeric target or -n, else "name (address)".
  const numeric = literal !== undefined || flags.has("-n");
  const from = (ip: Ipv4Addr): string => (numeric ? formatIpv4(ip) : `${names.get(ip) ?? formatIpv4(ip)} (${formatIpv4(ip)})`);
  const quiet = flags.has("-q");
  const ident = nextIdent++ & 0xffff;
  const { ns, clock } = ctx;
  const sentAt = new Map<number, number>();
  const rtts: number[] = [];
  let errors = 0;
  let wake: (() => void) | undefined;

  const stop = ns.onIcmp((icmp, ip) => {
    if (icmp.kind === "echoReply") {
      if (icmp.ident !== ident || !sentAt.has(icmp.seq)) return;
      const rtt = clock.now() - sentAt.get(icmp.seq)!;
      sentAt.delete(icmp.seq);
      rtts.push(rtt);
      if (!quiet) out.line(`${icmp.data.length + 8} bytes from ${from(ip.src)}: icmp_seq=${icmp.seq} ttl=${ip.ttl} time=${formatMs(rtt)} ms`);
    } else if (icmp.kind === "destUnreachable" || icmp.kind === "timeExceeded") {
      const quoted = readQuotedHeader(icmp.original);
      if (!quoted || quoted.first !== ident || !sentAt.has(quoted.second)) return;
      sentAt.delete(quoted.second);
      errors++;
      if (!quiet) out.line(`From ${from(ip.src)} icmp_seq=${quoted.second} ${describeError(icmp.kind, icmp.code)}`);
    }
    if (sentAt.size === 0) wake?.();
  });

  out.line(`PING ${shown} (${formatIpv4(dst)}) ${size}(${size + 28}) bytes of data.`);
  const start = clock.now();
  let transmitted = 0;
  try {
    for (let seq = 1; seq <= count; seq++) {
      const data = new Uint8Array(size);
      for (let i = 0; i < size; i++) data[i] = i & 0xff;
      sentAt.set(seq, clock.now());
      const res = ns.sendIcmp(dst, { kind: "echoRequest", ident, seq, data }, { ttl, dontFragment: true });
      if (res.kind === "messageTooLong") {
        out.error(`ping: local error: message too long, mtu=${res.mtu}`);
        sentAt.delete(seq);
        errors++;
      } else if (res.kind === "noRoute") {
        out.error("ping: connect: Network is unreachable");
        return out.result(2);
      }
      transmitted++;
      if (seq < count) await (interval > 0 ? clock.sleep(interval * 1000) : clock.yieldTurn());
    }
    if (sentAt.size > 0) {
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), clock.sleep(waitSeconds * 1000)]);
    }
  } finally {
    stop();
  }
  const elapsed = Math.round(clock.now() - start);
  const received = rtts.length;
  const loss = transmitted === 0 ? 0 : Math.round(((transmitted - received) / transmitted) * 100);
  out.line("");
  out.line(`--- ${shown} ping statistics ---`);
  out.line(`${transmitted} packets transmitted, ${received} received, ${errors > 0 ? `+${errors} errors, ` : ""}${loss}% packet loss, time ${elapsed}ms`);
  if (received > 0) {
    const min = Math.min(...rtts);
    const max = Math.max(...rtts);
    const avg = rtts.reduce((a, b) => a + b, 0) / received;
    const mdev = Math.sqrt(rtts.reduce((a, b) => a + (b - avg) ** 2, 0) / received);
    out.line(`rtt min/avg/max/mdev = ${[min, avg, max, mdev].map((x) => x.toFixed(3)).join("/")} ms`);
  }
  return out.result(received > 0 ? 0 : 1);
}

function formatMs(ms: number): string {
  return ms < 10 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(1);
}

export function describeError(kind: string, code: number): string {
  if (kind === "timeExceeded") return code === TimeExceededCode.TtlExceeded ? "Time to live exceeded" : "Frag reassembly time exceeded";
  switch (code) {
    case UnreachableCode.NetUnreachable:
      return "Destination Net Unreachable";
    case UnreachableCode.HostUnreachable:
      return "Destination Host Unreachable";
    case UnreachableCode.ProtocolUnreachable:
      return "Destination Protocol Unreachable";
    case UnreachableCode.PortUnreachable:
      return "Destination Port Unreachable";
    case UnreachableCode.FragmentationNeeded:
      return "Frag needed and DF set";
    case UnreachableCode.AdminProhibited:
      return "Packet filtered";
    default:
      return `Dest Unreachable, Unknown Code: ${code}`;
  }
}
