/**
 * The packet descriptor: one object per frame for its whole life in a node (Linux's sk_buff).
 *
 * Design notes:
 * - The bytes live in `buf` between `head` and `end`; there is headroom in front so the
 *   Ethernet and VXLAN headers are pushed in place, never by copying the frame.
 * - Headers are parsed once, where bytes enter from an untrusted source (overlay decap, a real
 *   socket) or where the local stack builds them; the offsets and the fields every hook needs
 *   (addresses, ports, TCP flags, ICMP type) ride along, so no netns parses them again. NAT
 *   rewrites update the bytes and these fields together (node-agent/conntrack.ts).
 * - Descriptors and their buffers are pooled. A packet whose payload escapes to a consumer that
 *   keeps it (TCP's receive queue) is simply not released; the pool makes a new one.
 */
import { ETHERNET_HEADER_LEN, EtherType, IpProtocol, onesComplementSum, readU16, readU32 } from "../overlay/wire/index.ts";
import type { Tracer } from "./datapath.ts";
import type { ConnEntry } from "./conntrack.ts";

/** Room for the Ethernet header plus the 50 bytes of outer VXLAN headers, rounded up. */
export const HEADROOM = 128;
/** Pooled buffers hold any frame up to the underlay MTU plus headers. */
export const POOLED_BUFFER = 2048;
/** A second, smaller pool for merged (GRO) packets and lo's 64 KiB datagrams. */
export const LARGE_BUFFER = HEADROOM + 65_536 + 64;

/** Which way a packet goes through its conntrack entry. */
export const CtDir = { Original: 0, Reply: 1 } as const;
export type CtDir = (typeof CtDir)[keyof typeof CtDir];

/** Linux's ctinfo as the hooks see it. */
export const CtState = {
  /** Not tracked (conntrack full, or a protocol it does not follow). */
  Untracked: 0,
  New: 1,
  Established: 2,
  Related: 3,
  Invalid: 4,
} as const;
export type CtState = (typeof CtState)[keyof typeof CtState];

/**
 * The parsed view of a packet that hooks, conntrack and NAT read. `l3`/`l4` are absolute
 * offsets into `buf`; -1 when the layer is absent.
 */
export interface PacketView {
  buf: Uint8Array;
  l3: number;
  l4: number;
  /** IPv4 total length (bytes from l3). */
  ipLen: number;
  proto: number;
  src: number;
  dst: number;
  /** TCP/UDP ports; for ICMP echo, sport = dport = the identifier. */
  sport: number;
  dport: number;
  /** TCP flag bits; 0 otherwise. */
  tcpFlags: number;
  /** ICMP type and code; -1 otherwise. */
  icmpType: number;
  icmpCode: number;
}

const EMPTY = new Uint8Array(0);

export class Packet implements PacketView {
  buf: Uint8Array;
  head = HEADROOM;
  end = HEADROOM;
  l2 = -1;
  l3 = -1;
  l4 = -1;
  ipLen = 0;
  proto = 0;
  src = 0;
  dst = 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  icmpType = -1;
  icmpCode = -1;
  /** Name of the link the packet last came in on. */
  ingress = "";
  ct: ConnEntry | undefined = undefined;
  ctDir: CtDir = CtDir.Original;
  ctState: CtState = CtState.Untracked;
  /** Netfilter mark (kube-proxy's 0x4000 masquerade bit). */
  mark = 0;
  /** The L4 checksum is known good (built here, or verified once). */
  csumOk = false;
  /** A merged TCP packet (GRO) standing for segments of this many payload bytes; 0 otherwise. */
  gsoSize = 0;
  tr: Tracer | undefined = undefined;
  /** @internal the pool it returns to; undefined for one-off buffers. */
  pool: PacketPool | undefined;

  /**
   * The buffer this descriptor owns, made on first need: a descriptor that only ever wraps
   * received bytes (`buf` pointing into a NATS message) never allocates one.
   */
  private own: Uint8Array | undefined;

  constructor(capacity: number, pool: PacketPool | undefined) {
    this.own = capacity > 0 ? new Uint8Array(capacity) : undefined;
    this.buf = this.own ?? EMPTY;
    this.pool = pool;
  }

  /** The size of the descriptor's own buffer (0 while it has none). */
  get capacity(): number {
    return this.own?.length ?? 0;
  }

  /** Points `buf` at the descriptor's own buffer (of POOLED_BUFFER bytes when made here). */
  useOwn(): void {
    this.buf = this.own ??= new Uint8Array(POOLED_BUFFER);
  }

  get len(): number {
    return this.end - this.head;
  }

  /** The frame (or packet) bytes, a view. */
  data(): Uint8Array {
    return this.buf.subarray(this.head, this.end);
  }

  /** Room in front of the data. */
  get headroom(): number {
    return this.head;
  }

  /** Prepends `n` bytes (a header to be written at `head`); false when there is no room. */
  push(n: number): boolean {
    if (this.head < n) return false;
    this.head -= n;
    return true;
  }

  /** Removes `n` bytes from the front (a header consumed). */
  pull(n: number): void {
    this.head += n;
  }

  /** Resets every field but the buffer, as a fresh descriptor. */
  reset(): void {
    this.buf = this.own ?? EMPTY;
    this.head = this.end = HEADROOM;
    this.l2 = this.l3 = this.l4 = -1;
    this.ipLen = this.proto = this.src = this.dst = this.sport = this.dport = this.tcpFlags = 0;
    this.icmpType = this.icmpCode = -1;
    this.ingress = "";
    this.ct = undefined;
    this.ctDir = CtDir.Original;
    this.ctState = CtState.Untracked;
    this.mark = 0;
    this.csumOk = false;
    this.gsoSize = 0;
    this.tr = undefined;
  }

  /** Back to the pool: only when nothing holds a view of the bytes any more. */
  release(): void {
    this.pool?.put(this);
  }

  /** A deep copy with its own buffer (bridge floods, fault duplication, capture of a kept frame). */
  clone(pool: PacketPool): Packet {
    const p = pool.alloc(this.len);
    const shift = p.head - this.head;
    p.buf.set(this.data(), p.head);
    p.end = p.head + this.len;
    p.l2 = this.l2 < 0 ? -1 : this.l2 + shift;
    p.l3 = this.l3 < 0 ? -1 : this.l3 + shift;
    p.l4 = this.l4 < 0 ? -1 : this.l4 + shift;
    p.ipLen = this.ipLen;
    p.proto = this.proto;
    p.src = this.src;
    p.dst = this.dst;
    p.sport = this.sport;
    p.dport = this.dport;
    p.tcpFlags = this.tcpFlags;
    p.icmpType = this.icmpType;
    p.icmpCode = this.icmpCode;
    p.ingress = this.ingress;
    p.mark = this.mark;
    p.csumOk = this.csumOk;
    p.gsoSize = this.gsoSize;
    p.tr = this.tr;
    return p;
  }
}

/** A free list of descriptors with POOLED_BUFFER-byte buffers, bounded so a burst cannot pin memory. */
export class PacketPool {
  private readonly free: Packet[] = [];
  private readonly freeLarge: Packet[] = [];
  allocated = 0;
  reused = 0;

  constructor(private readonly maxFree = 4096) {}

  /** A descriptor from `list` with its own buffer, or a new one of `capacity` bytes. */
  private take(list: Packet[], capacity: number): Packet {
    const f = list.pop();
    if (!f) {
      this.allocated++;
      return new Packet(capacity, this);
    }
    this.reused++;
    f.useOwn();
    return f;
  }

  /** A packet with room for `len` bytes of data after HEADROOM; `end` is set to head + len. */
  alloc(len: number): Packet {
    let p: Packet;
    if (HEADROOM + len <= POOLED_BUFFER) {
      p = this.take(this.free, POOLED_BUFFER);
    } else if (HEADROOM + len <= LARGE_BUFFER) {
      p = this.take(this.freeLarge, LARGE_BUFFER);
    } else {
      this.allocated++;
      p = new Packet(HEADROOM + len, undefined);
    }
    p.end = p.head + len;
    return p;
  }

  /**
   * A descriptor over bytes that arrived in a larger buffer (a frame inside a NATS message):
   * no copy. Headers can be pulled; pushing more than `off` bytes fails and the packet is
   * moved once (pod-bound frames only ever lose headers).
   */
  wrap(buf: Uint8Array, off: number, len: number): Packet {
    const f = this.free.pop();
    const p = f ?? new Packet(0, this);
    if (f) this.reused++;
    else this.allocated++;
    p.buf = buf;
    p.head = off;
    p.end = off + len;
    return p;
  }

  put(p: Packet): void {
    if (p.capacity > POOLED_BUFFER) {
      if (this.freeLarge.length >= 64) return;
      p.reset();
      this.freeLarge.push(p);
      return;
    }
    if (this.free.length >= this.maxFree) return;
    p.reset();
    this.free.push(p);
  }
}

/** Why a frame could not be parsed; maps to a DropReason. */
export type ParseResult = "ok" | "runt" | "ethertype" | "ipv4" | "l4";

/**
 * Parses the Ethernet/IPv4/L4 headers of the frame at `p.head` once, filling the offsets and
 * fields, and checks every length against the buffer (RFC 791 header checks: version, IHL,
 * total length, header checksum). The L4 checksum is left for local delivery, as Linux does
 * (forwarded packets are not checksummed). ARP frames parse to l3 only.
 */
export function parseFrame(p: Packet): ParseResult {
  const b = p.buf;
  const h = p.head;
  if (p.end - h < ETHERNET_HEADER_LEN) return "runt";
  p.l2 = h;
  const ethertype = readU16(b, h + 12);
  const l3 = h + ETHERNET_HEADER_LEN;
  p.l3 = l3;
  if (ethertype === EtherType.ARP) {
    p.l4 = -1;
    p.proto = 0;
    return "ok";
  }
  if (ethertype !== EtherType.IPv4) return "ethertype";
  return parseIpHeaders(p, l3) ? "ok" : "ipv4";
}

/** Parses IPv4 and the first L4 bytes at `l3`; false when the packet is malformed. */
export function parseIpHeaders(p: Packet, l3: number): boolean {
  const b = p.buf;
  const avail = p.end - l3;
  if (avail < 20) return false;
  const vihl = b[l3]!;
  if (vihl >> 4 !== 4) return false;
  const ihl = (vihl & 0x0f) * 4;
  if (ihl < 20 || ihl > avail) return false;
  const total = readU16(b, l3 + 2);
  if (total < ihl || total > avail) return false;
  if (onesComplementSum(b, l3, ihl) !== 0xffff) return false;
  p.l3 = l3;
  p.ipLen = total;
  // Trailing bytes past the IP total length (Ethernet padding) are not part of the packet.
  p.end = l3 + total;
  p.proto = b[l3 + 9]!;
  p.src = readU32(b, l3 + 12);
  p.dst = readU32(b, l3 + 16);
  p.tcpFlags = 0;
  p.icmpType = p.icmpCode = -1;
  p.sport = p.dport = 0;
  const l4 = l3 + ihl;
  p.l4 = l4;
  const fragOff = readU16(b, l3 + 6) & 0x1fff;
  // Only the first fragment carries the L4 header; later ones are matched by addresses alone.
  if (fragOff !== 0) return true;
  const l4len = total - ihl;
  switch (p.proto) {
    case IpProtocol.TCP:
      if (l4len < 20) return false;
      p.sport = readU16(b, l4);
      p.dport = readU16(b, l4 + 2);
      p.tcpFlags = b[l4 + 13]!;
      return true;
    case IpProtocol.UDP:
      if (l4len < 8) return false;
      p.sport = readU16(b, l4);
      p.dport = readU16(b, l4 + 2);
      return true;
    case IpProtocol.ICMP:
      if (l4len < 8) return false;
      p.icmpType = b[l4]!;
      p.icmpCode = b[l4 + 1]!;
      // Echo request/reply: the identifier plays the port for conntrack (as Linux's icmp tuple).
      if (p.icmpType === 8 || p.icmpType === 0) p.sport = p.dport = readU16(b, l4 + 4);
      return true;
    default:
      return true;
  }
}


/** Whether the packet is a non-first or more-to-come fragment. */
export function isFragmentAt(b: Uint8Array, l3: number): boolean {
  return (readU16(b, l3 + 6) & 0x3fff) !== 0;
}
