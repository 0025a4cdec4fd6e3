/**
 * Shared pieces of the wire codecs: the result type every checked parse returns, the typed
 * wire error, and the address representations.
 *
 * Design notes: addresses are plain numbers (a MAC fits a double exactly, an IPv4 address is a
 * uint32) so the per-packet path allocates no strings; formatting happens only at the edges
 * (logs, traces, CLI). Parsers never throw on untrusted bytes: they return `{ ok: false }`
 * with a `WireError` (smoltcp's `Result<Repr, Error>` in TypeScript).
 */

export type Layer = "ethernet" | "arp" | "ipv4" | "icmp" | "udp" | "tcp" | "vxlan" | "batch";

export const WireErrorCode = {
  /** Fewer bytes than the header or the length field claims. */
  Truncated: "Truncated",
  /** A field holds a value the RFC forbids (bad version, IHL < 5, data offset < 5, ...). */
  Malformed: "Malformed",
  /** The checksum over the bytes does not verify. */
  Checksum: "Checksum",
  /** Well-formed but outside what kubewire handles (e.g. ARP over non-Ethernet hardware). */
  Unsupported: "Unsupported",
} as const;
export type WireErrorCode = (typeof WireErrorCode)[keyof typeof WireErrorCode];

export class WireError extends Error {
  override readonly name = "WireError";
  readonly code: WireErrorCode;
  readonly layer: Layer;
  constructor(code: WireErrorCode, layer: Layer, message: string) {
    // Malformed input is expected traffic, not a bug: a stack trace per bad frame would cost
    // ten times the parse itself, so none is captured.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${layer}: ${message}`);
    Error.stackTraceLimit = limit;
    this.code = code;
    this.layer = layer;
  }
}

export type WireResult<T> = { ok: true; value: T } | { ok: false; error: WireError };

export function ok<T>(value: T): WireResult<T> {
  return { ok: true, value };
}

export function fail<T = never>(code: WireErrorCode, layer: Layer, message: string): WireResult<T> {
  return { ok: false, error: new WireError(code, layer, message) };
}

/** A 48-bit MAC address as a number (exact in a double). */
export type MacAddr = number;
/** An IPv4 address as an unsigned 32-bit integer in host order. */
export type Ipv4Addr = number;

export const MAC_BROADCAST: MacAddr = 0xffff_ffff_ffff;
export const MAC_ZERO: MacAddr = 0;

export function readMac(b: Uint8Array, off: number): MacAddr {
  // High 16 bits then low 32 bits; multiplication keeps it exact above 2^32.
  return (((b[off]! << 8) | b[off + 1]!) * 0x1_0000_0000) + readU32(b, off + 2);
}

export function writeMac(b: Uint8Array, off: number, mac: MacAddr): void {
  const hi = Math.floor(mac / 0x1_0000_0000);
  b[off] = (hi >>> 8) & 0xff;
  b[off + 1] = hi & 0xff;
  writeU32(b, off + 2, mac >>> 0);
}

export function readU16(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

export function writeU16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

export function readU32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

export function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

export function formatMac(mac: MacAddr): string {
  const b = new Uint8Array(6);
  writeMac(b, 0, mac);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");
}

export function parseMac(text: string): MacAddr | undefined {
  const parts = text.split(":");
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return undefined;
  return parts.reduce((acc, p) => acc * 256 + parseInt(p, 16), 0);
}

export function formatIpv4(ip: Ipv4Addr): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

export function parseIpv4Addr(text: string): Ipv4Addr | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
}

/**
 * RFC 1071 one's-complement sum over `len` bytes from `off`, folded to 16 bits, not inverted.
 *
 * The bulk is summed as aligned 32-bit little-endian words: the one's-complement sum does not
 * depend on byte order (RFC 1071 §2(B)), so summing byte-swapped words and swapping the folded
 * result back gives the same checksum with a quarter of the reads. This sum runs over every
 * UDP payload twice (emit and verify), so it is the hottest loop of the datapath.
 */
export function onesComplementSum(b: Uint8Array, off: number, len: number, initial = 0): number {
  let i = off;
  const end = off + len;
  let sum = initial;
  if (len < 64) {
    // Headers (IPv4's 20 bytes, an ICMP quote, a pseudo header): 16-bit words straight.
    for (; i + 1 < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
    if (i < end) sum += b[i]! << 8;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    return sum;
  }
  // Bytes up to a 4-byte boundary of the underlying buffer, big-endian as the RFC reads them.
  let odd = false;
  while (i < end && (b.byteOffset + i) % 4 !== 0) {
    sum += odd ? b[i]! : b[i]! << 8;
    odd = !odd;
    i++;
  }
  const words = (end - i) >>> 2;
  if (words >= 8) {
    const w = new Uint32Array(b.buffer, b.byteOffset + i, words);
    // Whole 32-bit words summed in doubles (exact below 2^53, far above any IPv4 packet) with
    // the carries deferred (RFC 1071 §2(C)): one add per 4 bytes, four chains in parallel.
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let k = 0;
    for (; k + 4 <= words; k += 4) {
      a0 += w[k]!;
      a1 += w[k + 1]!;
      a2 += w[k + 2]!;
      a3 += w[k + 3]!;
    }
    for (; k < words; k++) a0 += w[k]!;
    const acc = a0 + a1 + a2 + a3;
    const lo = acc % 0x1_0000_0000;
    let le = lo + (acc - lo) / 0x1_0000_0000;
    // Fold to 16 bits; `& 0xffff` reads the low bits correctly even above 2^32.
    le = (le & 0xffff) + Math.floor(le / 0x10000);
    while (le > 0xffff) le = (le & 0xffff) + (le >>> 16);
    // Little-endian words summed: swap to network order; if an odd number of head bytes came
    // first, this part sits at odd byte positions and must be swapped once more (no swap).
    const swapped = ((le & 0xff) << 8) | (le >>> 8);
    sum += odd ? le : swapped;
    i += words * 4;
  }
  for (; i < end; i++) {
    sum += odd ? b[i]! : b[i]! << 8;
    odd = !odd;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The Internet checksum (RFC 1071) of a byte range: the inverted one's-complement sum. */
export function internetChecksum(b: Uint8Array, off: number, len: number, initial = 0): number {
  return ~onesComplementSum(b, off, len, initial) & 0xffff;
}

/** The one's-complement sum of the IPv4 pseudo-header used by UDP and TCP (RFC 768, RFC 793). */
export function pseudoHeaderSum(src: Ipv4Addr, dst: Ipv4Addr, protocol: number, length: number): number {
  let sum = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
