/**
 * The hash table the proxy backends look services up in: keyed by an exact pair of numbers
 * (a, b) packed in one double, over typed arrays, so a lookup costs the same for 10 or 10,000
 * services and allocates nothing.
 *
 * Layout: open addressing with linear probing over rows of `width` doubles in one
 * Float64Array, column 0 the packed key (-1 = empty) and the other columns the caller's (its
 * hot data, read and written at the row offset a lookup returns), plus one object per row for
 * the cold side. Deletion shifts later entries of the probe run back (no tombstones, so
 * lookups stay short after partial syncs remove elements). The table doubles when an insert
 * would take it past its load factor.
 */
import type { PacketView } from "../packet.ts";

/** b < KEY_SPAN: a key is a * KEY_SPAN + b, exact in a double for any a < 2^32 (50 bits). */
export const KEY_SPAN = 0x4_0000;

/** The hash of (a, b): also the bucket hash of nftables' affinity sets. */
export function mixKey(a: number, b: number): number {
  let h = Math.imul(a | 0, 0x9e37_79b1) ^ Math.imul(b + 0x632b_e5ab, 0x85eb_ca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b_3c6d);
  h ^= h >>> 12;
  return h;
}

/** The hash of a stored key (cold: growth and deletion only). */
function hashOfKey(key: number): number {
  const a = Math.floor(key / KEY_SPAN);
  return mixKey(a, key - a * KEY_SPAN);
}

export class KeyTable<V> {
  /** The rows, `width` doubles each; a row offset is a multiple of `width`. */
  rows = new Float64Array(0);
  /** Doubles per row: a power of two (the key and width - 1 columns of the caller's). */
  readonly width: number;
  private objs: (V | undefined)[] = [];
  /** log2(width): row offset = slot << shift. */
  private readonly shift: number;
  /** rows.length - 1 (rows.length is a power of two). */
  private rowMask = 0;
  private count = 0;
  private readonly maxLoad: number;

  /**
   * @param width doubles per row, a power of two
   * @param maxLoad the load factor an insert may not pass (1/2: short probes; 3/4: a smaller table)
   * @param expected entries it is sized for without growing
   */
  constructor(width = 1, maxLoad = 0.5, expected = 0) {
    if (!Number.isInteger(Math.log2(width))) throw new RangeError(`row width ${width} is not a power of two`);
    this.width = width;
    this.shift = Math.log2(width);
    this.maxLoad = maxLoad;
    this.alloc(this.capacityFor(expected));
  }

  get size(): number {
    return this.count;
  }

  private capacityFor(n: number): number {
    let cap = 16;
    while (n > cap * this.maxLoad) cap *= 2;
    return cap;
  }

  private alloc(cap: number): void {
    this.rows = new Float64Array(cap * this.width);
    for (let o = 0; o < this.rows.length; o += this.width) this.rows[o] = -1;
    this.objs = new Array<V | undefined>(cap).fill(undefined);
    this.rowMask = cap * this.width - 1;
  }

  /**
   * The row offset of (a, b), or -1; with `pkt`, a is the packet's destination address, read
   * here rather than passed in: V8 boxes a number outside its small-integer range (any IPv4
   * address from 64.0.0.0 up) passed to a call it did not inline, so the packet path hands over
   * the packet.
   */
  private probe(pkt: PacketView | undefined, a: number, b: number): number {
    const ip = pkt === undefined ? a : pkt.dst >>> 0;
    const key = ip * KEY_SPAN + b;
    const rows = this.rows;
    const mask = this.rowMask;
    const w = this.width;
    let o = (mixKey(ip, b) << this.shift) & mask;
    for (;;) {
      const k = rows[o]!;
      if (k === key) return o;
      if (k === -1) return -1;
      o = (o + w) & mask;
    }
  }

  /** The row offset of (a, b), or -1. */
  find(a: number, b: number): number {
    return this.probe(undefined, a, b);
  }

  /** find(pkt.dst, b), for the packet path (see probe). */
  findDst(pkt: PacketView, b: number): number {
    return this.probe(pkt, 0, b);
  }

  /** The object of the row at offset o. */
  at(o: number): V | undefined {
    return this.objs[o >> this.shift];
  }

  get(a: number, b: number): V | undefined {
    const o = this.probe(undefined, a, b);
    return o < 0 ? undefined : this.objs[o >> this.shift];
  }

  /** get(pkt.dst, b), for the packet path (see probe). */
  getDst(pkt: PacketView, b: number): V | undefined {
    const o = this.probe(pkt, 0, b);
    return o < 0 ? undefined : this.objs[o >> this.shift];
  }

  /**
   * Inserts (a, b) with object v, or replaces the object of (a, b); returns the row offset. The
   * columns of a new row are 0, those of a replaced one kept, for the caller to write. It may
   * grow the table, which replaces `rows`: read `rows` after the call (`t.rows[t.set(..)]`
   * would write to the old array).
   */
  set(a: number, b: number, v: V): number {
    if (this.count + 1 > this.objs.length * this.maxLoad) this.grow();
    return this.place(a * KEY_SPAN + b, mixKey(a, b), v);
  }

  private place(key: number, h: number, v: V): number {
    const rows = this.rows;
    const mask = this.rowMask;
    let o = (h << this.shift) & mask;
    for (;;) {
      const k = rows[o]!;
      if (k === key || k === -1) {
        if (k === -1) {
          rows[o] = key;
          this.count++;
        }
        this.objs[o >> this.shift] = v;
        return o;
      }
      o = (o + this.width) & mask;
    }
  }

  private grow(): void {
    const { rows, objs, width } = this;
    this.alloc(objs.length * 2);
    this.count = 0;
    for (let o = 0; o < rows.length; o += width) {
      const key = rows[o]!;
      if (key === -1) continue;
      const n = this.place(key, hashOfKey(key), objs[o >> this.shift] as V);
      this.rows.set(rows.subarray(o + 1, o + width), n + 1);
    }
  }

  /** Removes (a, b); returns its object (undefined when it was not there). */
  delete(a: number, b: number): V | undefined {
    let o = this.probe(undefined, a, b);
    if (o < 0) return undefined;
    const { rows, width, shift } = this;
    const mask = this.rowMask;
    const gone = this.objs[o >> shift];
    // Backward shift: move later rows of the probe run into the hole when their home row does
    // not lie cyclically between the hole and themselves.
    let j = o;
    for (;;) {
      j = (j + width) & mask;
      const k = rows[j]!;
      if (k === -1) break;
      const home = (hashOfKey(k) << shift) & mask;
      if (((j - home) & mask) >= ((j - o) & mask)) {
        rows.copyWithin(o, j, j + width);
        this.objs[o >> shift] = this.objs[j >> shift];
        o = j;
      }
    }
    rows[o] = -1;
    rows.fill(0, o + 1, o + width);
    this.objs[o >> shift] = undefined;
    this.count--;
    return gone;
  }

  /** Empties it (back to the smallest size). */
  clear(): void {
    this.alloc(16);
    this.count = 0;
  }

  /** The objects of every row, in row order. */
  values(): V[] {
    const out: V[] = [];
    for (let o = 0; o < this.rows.length; o += this.width) if (this.rows[o] !== -1) out.push(this.objs[o >> this.shift] as V);
    return out;
  }
}
