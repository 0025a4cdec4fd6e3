/**
 * Generic receive offload and segmentation offload for TCP, as Linux does them
 * (net/core/gro.c, net/ipv4/tcp_offload.c): consecutive segments of one flow that arrive in
 * one overlay message are merged into one large packet before the stack sees them, so the
 * root netns, the bridge, the veth and the pod's TCP handle a 64 KiB packet once instead of 45
 * segments; a merged (GSO) packet that has to leave through a link with a smaller MTU is cut
 * back into segments there.
 *
 * Design notes:
 * - Only plain data segments merge (tcp_gro_receive): IPv4 without options, not a fragment,
 *   flags ACK with or without PSH, the same ACK number, window and options, each next segment
 *   starting where the last ended; a PSH ends the run. Every segment's checksum is verified
 *   before it merges, so the merged packet is marked checksum-good (CHECKSUM_UNNECESSARY) and
 *   its own TCP checksum field is left as the first segment's, as on Linux, where a capture
 *   after GRO shows such a checksum as wrong.
 * - A GSO packet carries `gsoSize`, the payload of one segment; links skip their MTU check for
 *   it (it stands for segments that each fit), and whoever must put it on a wire with a
 *   smaller MTU, or impair it per segment, segments it first.
 */
import { IPV4_HEADER_LEN, IpProtocol, TcpFlag, onesComplementSum, pseudoHeaderSum, readU16, readU32, writeU16, writeU32 } from "../overlay/wire/index.ts";
import { parseFrame, type Packet, type PacketPool } from "./packet.ts";

/** The most a merged packet may hold: the IPv4 total length limit. */
export const GRO_MAX_IP_LEN = 65_535;
/** Linux's MAX_GRO_SKBS-like bound on segments per merged packet. */
export const GRO_MAX_SEGS = 64;

const ETH = 14;

/** One data segment found in an overlay message, ready to merge. */
export interface GroSegment {
  /** The whole outer frame in the message (what goes the ordinary way if it merges with nothing). */
  outer: number;
  outerLen: number;
  /** Offset of the inner Ethernet header in the message, and the frame length from there. */
  inner: number;
  innerLen: number;
  tcpHeaderLen: number;
  payloadOff: number;
  payloadLen: number;
  src: number;
  dst: number;
  ports: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
}

/**
 * Reads the inner frame at `inner` as a mergeable TCP data segment, or undefined when it is
 * anything else (which then goes the ordinary way, one frame at a time). Checks the IPv4 and
 * TCP checksums: a segment merges only if it is intact.
 */
export function groCandidate(b: Uint8Array, outer: number, outerLen: number, inner: number, innerLen: number): GroSegment | undefined {
  if (innerLen < ETH + IPV4_HEADER_LEN + 20) return undefined;
  if (b[inner + 12] !== 0x08 || b[inner + 13] !== 0x00) return undefined;
  const ip = inner + ETH;
  if (b[ip] !== 0x45 || b[ip + 9] !== IpProtocol.TCP) return undefined;
  if ((readU16(b, ip + 6) & 0x3fff) !== 0) return undefined;
  const total = readU16(b, ip + 2);
  if (total < IPV4_HEADER_LEN + 20 || total > innerLen - ETH) return undefined;
  if (onesComplementSum(b, ip, IPV4_HEADER_LEN) !== 0xffff) return undefined;
  const tcp = ip + IPV4_HEADER_LEN;
  const thl = (b[tcp + 12]! >>> 4) * 4;
  const tcpLen = total - IPV4_HEADER_LEN;
  if (thl < 20 || thl > tcpLen) return undefined;
  const flags = b[tcp + 13]!;
  if ((flags & ~TcpFlag.PSH) !== TcpFlag.ACK) return undefined;
  const payloadLen = tcpLen - thl;
  if (payloadLen === 0) return undefined;
  const src = readU32(b, ip + 12);
  const dst = readU32(b, ip + 16);
  if (onesComplementSum(b, tcp, tcpLen, pseudoHeaderSum(src, dst, IpProtocol.TCP, tcpLen)) !== 0xffff) return undefined;
  return {
    outer,
    outerLen,
    inner,
    innerLen: ETH + total,
    tcpHeaderLen: thl,
    payloadOff: tcp + thl,
    payloadLen,
    src,
    dst,
    ports: readU32(b, tcp),
    seq: readU32(b, tcp + 4),
    ack: readU32(b, tcp + 8),
    flags,
    window: readU16(b, tcp + 14),
  };
}

/** Whether `next` continues the run that ends with `last` (tcp_gro_receive's flush rules). */
export function groContinues(b: Uint8Array, first: GroSegment, last: GroSegment, next: GroSegment, ipLen: number, segs: number): boolean {
  if (segs >= GRO_MAX_SEGS) return false;
  if (last.flags & TcpFlag.PSH) return false;
  if (next.src !== first.src || next.dst !== first.dst || next.ports !== first.ports) return false;
  if (next.seq !== ((last.seq + last.payloadLen) >>> 0) || next.ack !== first.ack || next.window !== first.window) return false;
  if (next.tcpHeaderLen !== first.tcpHeaderLen || ipLen + next.payloadLen > GRO_MAX_IP_LEN) return false;
  // Segments after the first may not be larger than it (Linux: a larger one starts anew).
  if (next.payloadLen > first.payloadLen) return false;
  for (let i = 20; i < first.tcpHeaderLen; i++) {
    if (b[first.payloadOff - first.tcpHeaderLen + i] !== b[next.payloadOff - next.tcpHeaderLen + i]) return false;
  }
  return true;
}

/** One packet holding the run's segments: the first one's headers, every payload after them. */
export function groMerge(b: Uint8Array, run: readonly GroSegment[], pool: PacketPool): Packet {
  const first = run[0]!;
  const headers = ETH + IPV4_HEADER_LEN + first.tcpHeaderLen;
  let payload = 0;
  let flags = 0;
  for (const s of run) {
    payload += s.payloadLen;
    flags |= s.flags;
  }
  const pkt = pool.alloc(headers + payload);
  const o = pkt.buf;
  let at = pkt.head;
  o.set(b.subarray(first.inner, first.inner + headers), at);
  at += headers;
  for (const s of run) {
    o.set(b.subarray(s.payloadOff, s.payloadOff + s.payloadLen), at);
    at += s.payloadLen;
  }
  const ip = pkt.head + ETH;
  writeU16(o, ip + 2, IPV4_HEADER_LEN + first.tcpHeaderLen + payload);
  writeU16(o, ip + 10, 0);
  writeU16(o, ip + 10, ~onesComplementSum(o, ip, IPV4_HEADER_LEN) & 0xffff);
  o[ip + IPV4_HEADER_LEN + 13] = flags;
  parseFrame(pkt);
  pkt.csumOk = true;
  pkt.gsoSize = first.payloadLen;
  return pkt;
}

/**
 * Cuts a GSO packet (pkt.head at its Ethernet header) back into segments of `gsoSize` payload
 * each, with their own IPv4 identification, lengths, sequence numbers and checksums; PSH and
 * FIN stay on the last one only (tcp_gso_segment). The original is released.
 */
export function gsoSegment(pkt: Packet, pool: PacketPool): Packet[] {
  const b = pkt.buf;
  const eth = pkt.head;
  const ip = eth + ETH;
  const ihl = (b[ip]! & 0x0f) * 4;
  const tcp = ip + ihl;
  const thl = (b[tcp + 12]! >>> 4) * 4;
  const headers = ETH + ihl + thl;
  const payloadStart = tcp + thl;
  const payloadEnd = ip + readU16(b, ip + 2);
  const mss = Math.max(1, pkt.gsoSize);
  const seq0 = readU32(b, tcp + 4);
  const flags = b[tcp + 13]!;
  const id0 = readU16(b, ip + 4);
  const src = readU32(b, ip + 12);
  const dst = readU32(b, ip + 16);
  const out: Packet[] = [];
  for (let off = payloadStart, n = 0; off < payloadEnd; off += mss, n++) {
    const len = Math.min(mss, payloadEnd - off);
    const last = off + len >= payloadEnd;
    const s = pool.alloc(headers + len);
    const o = s.buf;
    const h = s.head;
    o.set(b.subarray(eth, eth + headers), h);
    o.set(b.subarray(off, off + len), h + headers);
    const sip = h + ETH;
    writeU16(o, sip + 2, ihl + thl + len);
    writeU16(o, sip + 4, (id0 + n) & 0xffff);
    writeU16(o, sip + 10, 0);
    writeU16(o, sip + 10, ~onesComplementSum(o, sip, ihl) & 0xffff);
    const st = sip + ihl;
    writeU32(o, st + 4, (seq0 + (off - payloadStart)) >>> 0);
    o[st + 13] = last ? flags : flags & ~(TcpFlag.PSH | TcpFlag.FIN);
    writeU16(o, st + 16, 0);
    const tcpLen = thl + len;
    const sum = ~onesComplementSum(o, st, tcpLen, pseudoHeaderSum(src, dst, IpProtocol.TCP, tcpLen)) & 0xffff;
    writeU16(o, st + 16, sum);
    parseFrame(s);
    s.csumOk = true;
    s.tr = n === 0 ? pkt.tr : undefined;
    s.ingress = pkt.ingress;
    s.mark = pkt.mark;
    out.push(s);
  }
  pkt.release();
  return out;
}
