/**
 * IPv4 fragmentation and reassembly (RFC 791 §3.2, RFC 815 for the hole bookkeeping, kept
 * simple: fragments are stored and the datagram is rebuilt once they cover it without gaps).
 * Pure: `now` is a parameter; the netns decides what to do with expired datagrams.
 */
import { internetChecksum, readU16, writeU16, type Ipv4Packet } from "../overlay/wire/index.ts";

const MF = 0x2000;
const DF = 0x4000;
/** Linux's ipfrag_time: an incomplete datagram is given up after 30 s. */
export const REASSEMBLY_TIMEOUT_MS = 30_000;

/**
 * Splits `packet` (DF clear, header at offset 0) into fragments whose total length fits `mtu`.
 * Each fragment gets `headroom` free bytes in front for the link headers.
 */
export function fragmentIpv4(packet: Uint8Array, mtu: number, headroom: number): Uint8Array[] {
  const headerLength = (packet[0]! & 0x0f) * 4;
  const totalLength = readU16(packet, 2);
  const flagsOffset = readU16(packet, 6);
  if (flagsOffset & DF) throw new RangeError("fragmentIpv4: DF is set");
  const baseOffset = (flagsOffset & 0x1fff) * 8;
  const originalMf = (flagsOffset & MF) !== 0;
  const maxData = Math.floor((mtu - headerLength) / 8) * 8;
  if (maxData <= 0) throw new RangeError(`fragmentIpv4: mtu ${mtu} leaves no room for data`);
  const data = packet.subarray(headerLength, totalLength);
  const fragments: Uint8Array[] = [];
  for (let off = 0; off < data.length; off += maxData) {
    const chunk = data.subarray(off, Math.min(off + maxData, data.length));
    const last = off + chunk.length >= data.length;
    const frag = new Uint8Array(headroom + headerLength + chunk.length).subarray(headroom);
    frag.set(packet.subarray(0, headerLength), 0);
    frag.set(chunk, headerLength);
    writeU16(frag, 2, headerLength + chunk.length);
    writeU16(frag, 6, (last && !originalMf ? 0 : MF) | ((baseOffset + off) / 8));
    writeU16(frag, 10, 0);
    writeU16(frag, 10, internetChecksum(frag, 0, headerLength));
    fragments.push(frag);
  }
  return fragments;
}

export function isFragment(pkt: Ipv4Packet): boolean {
  return pkt.moreFragments || pkt.fragmentOffset !== 0;
}

interface Pending {
  firstSeen: number;
  /** offset -> the fragment's payload, where it sits in the arena */
  parts: Map<number, Slot>;
  /** Payload length, known once the last fragment (MF clear) arrived. */
  total?: number;
  /** The first fragment's header, in the arena. */
  header?: Slot;
  /** Arena bytes plus bookkeeping held by this datagram. */
  bytes: number;
}

/** A stretch of the arena holding one fragment's bytes (or a header), in arrival order. */
interface Slot {
  at: number;
  len: number;
  key: string;
  live: boolean;
}

export type ReassemblyResult =
  | { kind: "complete"; packet: Uint8Array }
  | { kind: "incomplete" }
  | { kind: "invalid"; reason: string }
  /** The fragment cannot fit even in an empty reassembly memory. */
  | { kind: "full" };

/** Linux's ipfrag_high_thresh: the most memory incomplete datagrams may hold in one netns. */
export const REASSEMBLY_MAX_BYTES = 4 * 1024 * 1024;
/** Bookkeeping charged per stored fragment on top of its bytes (as the kernel charges skb truesize). */
const FRAGMENT_OVERHEAD = 256;

/**
 * Reassembly with a hard memory bound. Fragment bytes are copied into one ring-shaped arena of
 * `maxBytes`, allocated on the first fragment and kept: a flood of fragments that never
 * complete costs evictions of the oldest datagrams (inet_frag's evictor), not a stream of small
 * buffers for the garbage collector and the allocator to hold on to.
 */
export class Reassembler {
  private readonly pending = new Map<string, Pending>();
  private arena: Uint8Array | undefined;
  /** Slots in arena order; `head` is the oldest that may still be live. */
  private slots: Slot[] = [];
  private head = 0;
  private tail = 0;
  private bytes = 0;
  evicted = 0;

  constructor(private readonly maxBytes = REASSEMBLY_MAX_BYTES) {}

  /** Memory held by incomplete datagrams, overhead included. */
  get memory(): number {
    return this.bytes;
  }

  private forget(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    for (const slot of p.parts.values()) slot.live = false;
    if (p.header) p.header.live = false;
    this.bytes -= p.bytes;
    this.pending.delete(key);
  }

  /** Drops dead slots from the front of the ring. */
  private trim(): void {
    while (this.head < this.slots.length && !this.slots[this.head]!.live) this.head++;
    if (this.head === this.slots.length) {
      this.slots = [];
      this.head = 0;
      this.tail = 0;
    } else if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots = this.slots.slice(this.head);
      this.head = 0;
    }
  }

  /** Copies `bytes` into the arena for datagram `key`, evicting the oldest datagrams for room. */
  private store(key: string, bytes: Uint8Array): Slot | undefined {
    const len = bytes.length;
    if (len > this.maxBytes) return undefined;
    const arena = (this.arena ??= new Uint8Array(this.maxBytes));
    for (;;) {
      this.trim();
      let at = -1;
      if (this.head === this.slots.length) at = 0;
      else {
        // Free space: [tail, end) and [0, oldest) when the writer is ahead of the oldest bytes,
        // [tail, oldest) once it has wrapped; tail === oldest means the ring is full.
        const oldest = this.slots[this.head]!.at;
        if (this.tail > oldest) {
          if (arena.length - this.tail >= len) at = this.tail;
          else if (oldest >= len) at = 0;
        } else if (this.tail < oldest && oldest - this.tail >= len) {
          at = this.tail;
        }
      }
      if (at >= 0) {
        arena.set(bytes, at);
        const slot: Slot = { at, len, key, live: true };
        this.slots.push(slot);
        this.tail = at + len;
        return slot;
      }
      // No room: the datagram that owns the oldest bytes goes.
      const victim = this.slots[this.head]!.key;
      if (victim === key) return undefined;
      this.forget(victim);
      this.evicted++;
    }
  }

  add(pkt: Ipv4Packet, bytes: Uint8Array, now: number): ReassemblyResult {
    const key = `${pkt.src}/${pkt.dst}/${pkt.protocol}/${pkt.identification}`;
    const end = pkt.fragmentOffset + pkt.payload.length;
    if (end > 65_535 - pkt.headerLength) {
      this.forget(key);
      return { kind: "invalid", reason: "fragment past the 64 KiB datagram limit" };
    }
    // The charged memory (bytes plus bookkeeping) is bounded too, so many tiny fragments
    // cannot pile up bookkeeping: evict the oldest datagrams (insertion order) first.
    const cost = pkt.payload.length + FRAGMENT_OVERHEAD;
    for (const k of this.pending.keys()) {
      if (this.bytes + cost <= this.maxBytes) break;
      if (k === key) continue;
      this.forget(k);
      this.evicted++;
    }
    if (!this.pending.has(key)) this.pending.set(key, { firstSeen: now, parts: new Map(), bytes: 0 });
    const part = this.store(key, pkt.payload);
    let p = this.pending.get(key);
    if (!part || !p) {
      this.forget(key);
      return { kind: "full" };
    }
    const old = p.parts.get(pkt.fragmentOffset);
    if (old) {
      old.live = false;
      p.bytes -= old.len + FRAGMENT_OVERHEAD;
      this.bytes -= old.len + FRAGMENT_OVERHEAD;
    }
    p.parts.set(pkt.fragmentOffset, part);
    p.bytes += cost;
    this.bytes += cost;
    if (!pkt.moreFragments) p.total = end;
    if (pkt.fragmentOffset === 0 && !p.header) {
      const header = this.store(key, bytes.subarray(0, pkt.headerLength));
      p = this.pending.get(key);
      if (!header || !p) {
        this.forget(key);
        return { kind: "full" };
      }
      p.header = header;
      p.bytes += header.len;
      this.bytes += header.len;
    }
    if (p.total === undefined || !p.header) return { kind: "incomplete" };
    // Walk the parts in order; any gap means more is to come.
    let covered = 0;
    for (const off of [...p.parts.keys()].sort((a, b) => a - b)) {
      if (off > covered) return { kind: "incomplete" };
      covered = Math.max(covered, off + p.parts.get(off)!.len);
    }
    if (covered < p.total) return { kind: "incomplete" };
    const arena = this.arena!;
    const hl = p.header.len;
    const packet = new Uint8Array(hl + p.total);
    packet.set(arena.subarray(p.header.at, p.header.at + hl), 0);
    for (const [off, part] of p.parts) {
      const n = Math.max(0, Math.min(part.len, p.total - off));
      packet.set(arena.subarray(part.at, part.at + n), hl + off);
    }
    writeU16(packet, 2, hl + p.total);
    writeU16(packet, 6, readU16(packet, 6) & DF);
    writeU16(packet, 10, 0);
    writeU16(packet, 10, internetChecksum(packet, 0, hl));
    this.forget(key);
    return { kind: "complete", packet };
  }

  /**
   * Drops datagrams older than the timeout and says how many. (RFC 792 allows an ICMP time
   * exceeded, code 1, here; like many hosts kubewire only counts them.)
   */
  expire(now: number): number {
    let expired = 0;
    for (const [key, p] of this.pending) {
      if (now - p.firstSeen < REASSEMBLY_TIMEOUT_MS) continue;
      this.forget(key);
      expired++;
    }
    return expired;
  }

  get size(): number {
    return this.pending.size;
  }
}
