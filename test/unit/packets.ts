/**
 * Packet builders and checkers for unit tests: real bytes from the wire codecs, wrapped in a
 * parsed `Packet` descriptor (IPv4 at `p.head`, no Ethernet header), as the datapath hands
 * packets to netfilter and conntrack.
 */
import {
  IPV4_HEADER_LEN,
  ICMP_HEADER_LEN,
  IcmpType,
  IpProtocol,
  TCP_HEADER_LEN,
  TcpFlag,
  TimeExceededCode,
  UDP_HEADER_LEN,
  UnreachableCode,
  emitIcmp,
  emitIpv4,
  emitTcp,
  emitUdp,
  icmpErrorOriginal,
  internetChecksum,
  parseIcmp,
  parseIpv4,
  parseTcp,
  parseUdp,
  parseIpv4Addr,
  pseudoHeaderSum,
  readU16,
  type IcmpRepr,
  type Ipv4Addr,
} from "../../overlay/wire/index.ts";
import { PacketPool, parseIpHeaders, type Packet } from "../../node-agent/packet.ts";

export { TcpFlag };

const pool = new PacketPool();

/** Dotted quad to uint32; throws on a typo (tests only). */
export function ip(text: string): Ipv4Addr {
  const a = parseIpv4Addr(text);
  if (a === undefined) throw new Error(`bad address ${text}`);
  return a;
}

interface IpOpts {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  ttl?: number;
  identification?: number;
  /** Bytes; multiple of 8. */
  fragmentOffset?: number;
  moreFragments?: boolean;
}

/** Wraps a complete IPv4 packet in a parsed descriptor; throws if it does not parse. */
export function fromIpBytes(bytes: Uint8Array): Packet {
  const p = pool.alloc(bytes.length);
  p.buf.set(bytes, p.head);
  if (!parseIpHeaders(p, p.head)) throw new Error("test packet does not parse");
  return p;
}

function build(o: IpOpts, protocol: number, l4len: number, writeL4: (buf: Uint8Array, off: number) => void): Packet {
  const p = pool.alloc(IPV4_HEADER_LEN + l4len);
  emitIpv4(
    {
      src: o.src,
      dst: o.dst,
      protocol,
      ttl: o.ttl ?? 64,
      tos: 0,
      identification: o.identification ?? 1,
      dontFragment: o.fragmentOffset === undefined && o.moreFragments === undefined,
      moreFragments: o.moreFragments ?? false,
      fragmentOffset: o.fragmentOffset ?? 0,
      payloadLength: l4len,
    },
    p.buf,
    p.head,
  );
  writeL4(p.buf, p.head + IPV4_HEADER_LEN);
  if (!parseIpHeaders(p, p.head)) throw new Error("test packet does not parse");
  return p;
}

export interface UdpOpts extends IpOpts {
  sport: number;
  dport: number;
  payload?: Uint8Array;
  /** Default true; false sends checksum 0 (none, RFC 768). */
  checksum?: boolean;
}

export function udpPacket(o: UdpOpts): Packet {
  const payload = o.payload ?? new Uint8Array(0);
  return build(o, IpProtocol.UDP, UDP_HEADER_LEN + payload.length, (buf, off) =>
    emitUdp({ srcPort: o.sport, dstPort: o.dport }, payload, buf, off, o.checksum === false ? undefined : { src: o.src, dst: o.dst }),
  );
}

export interface TcpOpts extends IpOpts {
  sport: number;
  dport: number;
  flags: number;
  seq?: number;
  ack?: number;
  window?: number;
  payload?: Uint8Array;
}

export function tcpPacket(o: TcpOpts): Packet {
  const payload = o.payload ?? new Uint8Array(0);
  return build(o, IpProtocol.TCP, TCP_HEADER_LEN + payload.length, (buf, off) =>
    emitTcp(
      {
        srcPort: o.sport,
        dstPort: o.dport,
        seq: o.seq ?? 1000,
        ack: o.ack ?? 0,
        flags: o.flags,
        window: o.window ?? 65535,
        urgentPointer: 0,
        options: new Uint8Array(0),
      },
      payload,
      buf,
      off,
      { src: o.src, dst: o.dst },
    ),
  );
}

export interface EchoOpts extends IpOpts {
  kind?: "request" | "reply";
  ident: number;
  seq?: number;
  data?: Uint8Array;
}

export function icmpEcho(o: EchoOpts): Packet {
  const data = o.data ?? new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const repr: IcmpRepr = { kind: o.kind === "reply" ? "echoReply" : "echoRequest", ident: o.ident, seq: o.seq ?? 1, data };
  return build(o, IpProtocol.ICMP, ICMP_HEADER_LEN + data.length, (buf, off) => emitIcmp(repr, buf, off));
}

export type IcmpErrorKind = "portUnreachable" | "hostUnreachable" | "netUnreachable" | "fragmentationNeeded" | "ttlExceeded";

/**
 * An ICMP error about `quoted` (its IP header + 8 bytes, RFC 792), from `src` (default: the
 * quoted packet's destination) to the quoted packet's source (or `dst`).
 */
export function icmpError(kind: IcmpErrorKind, quoted: Packet, o: { src?: Ipv4Addr; dst?: Ipv4Addr; mtu?: number } = {}): Packet {
  const original = icmpErrorOriginal(ipBytes(quoted)).slice();
  const repr: IcmpRepr =
    kind === "ttlExceeded"
      ? { kind: "timeExceeded", code: TimeExceededCode.TtlExceeded, original }
      : {
          kind: "destUnreachable",
          code:
            kind === "portUnreachable"
              ? UnreachableCode.PortUnreachable
              : kind === "hostUnreachable"
                ? UnreachableCode.HostUnreachable
                : kind === "netUnreachable"
                  ? UnreachableCode.NetUnreachable
                  : UnreachableCode.FragmentationNeeded,
          nextHopMtu: kind === "fragmentationNeeded" ? (o.mtu ?? 1450) : 0,
          original,
        };
  return build({ src: o.src ?? quoted.dst, dst: o.dst ?? quoted.src }, IpProtocol.ICMP, ICMP_HEADER_LEN + original.length, (buf, off) =>
    emitIcmp(repr, buf, off),
  );
}

/** The IPv4 packet bytes of a descriptor (a view). */
export function ipBytes(p: Packet): Uint8Array {
  return p.buf.subarray(p.l3, p.l3 + p.ipLen);
}

/** A checksum as found in the packet next to the value a full recompute gives. */
export interface CsumPair {
  found: number;
  full: number;
}

/**
 * The checksums of an IPv4 packet, each as found and as recomputed from scratch: the IPv4
 * header, and the TCP/UDP (with pseudo-header; a UDP 0 stays "none", a computed 0 is 0xffff)
 * or ICMP checksum. For an ICMP error also the quoted IPv4 header's checksum. Also checks that
 * the wire parsers (with checksum verification) accept the packet.
 */
export function checksums(p: Packet): { ip: CsumPair; l4?: CsumPair; innerIp?: CsumPair; parsesOk: boolean } {
  const b = ipBytes(p);
  const ihl = (b[0]! & 0x0f) * 4;
  const ipFull = recompute(b, 0, ihl, 10, 0);
  const out: { ip: CsumPair; l4?: CsumPair; innerIp?: CsumPair; parsesOk: boolean } = {
    ip: { found: readU16(b, 10), full: ipFull },
    parsesOk: false,
  };
  const ipr = parseIpv4(b);
  if (!ipr.ok) return out;
  const { src, dst, protocol, payload, fragmentOffset, moreFragments } = ipr.value;
  const whole = fragmentOffset === 0 && !moreFragments;
  const l4 = ihl;
  const len = b.length - ihl;
  let parsesOk = true;
  if (whole && protocol === IpProtocol.UDP) {
    const found = readU16(b, l4 + 6);
    const full = recompute(b, l4, len, 6, pseudoHeaderSum(src, dst, IpProtocol.UDP, len));
    out.l4 = { found, full: found === 0 ? 0 : full === 0 ? 0xffff : full };
    parsesOk = parseUdp(payload, { src, dst }).ok;
  } else if (whole && protocol === IpProtocol.TCP) {
    out.l4 = { found: readU16(b, l4 + 16), full: recompute(b, l4, len, 16, pseudoHeaderSum(src, dst, IpProtocol.TCP, len)) };
    parsesOk = parseTcp(payload, { src, dst }).ok;
  } else if (whole && protocol === IpProtocol.ICMP) {
    out.l4 = { found: readU16(b, l4 + 2), full: recompute(b, l4, len, 2, 0) };
    parsesOk = parseIcmp(payload).ok;
    const t = b[l4]!;
    if (t === IcmpType.DestUnreachable || t === IcmpType.TimeExceeded) {
      const il3 = l4 + 8;
      const iihl = (b[il3]! & 0x0f) * 4;
      out.innerIp = { found: readU16(b, il3 + 10), full: recompute(b, il3, iihl, 10, 0) };
    }
  }
  out.parsesOk = parsesOk;
  return out;
}

/** The checksum of `len` bytes at `off` with the 16-bit field at `off + field` taken as zero. */
function recompute(b: Uint8Array, off: number, len: number, field: number, initial: number): number {
  const copy = b.slice(off, off + len);
  copy[field] = 0;
  copy[field + 1] = 0;
  return internetChecksum(copy, 0, len, initial);
}
