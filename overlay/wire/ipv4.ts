/**
 * IPv4 (RFC 791). Options are accepted and skipped on receipt, never emitted.
 */

import { fail, internetChecksum, ok, onesComplementSum, readU16, readU32, writeU16, writeU32 } from "./common.ts";
import type { Ipv4Addr, WireResult } from "./common.ts";

export const IpProtocol = { ICMP: 1, TCP: 6, UDP: 17 } as const;
export const IPV4_HEADER_LEN = 20;

const field = {
  VER_IHL: 0,
  TOS: 1,
  LENGTH: 2,
  IDENT: 4,
  FLG_OFF: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC: 12,
  DST: 16,
} as const;

// RFC 791 §3.1 "Flags": bit 0 reserved, bit 1 DF, bit 2 MF; offset in 8-octet units.
const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const OFFSET_MASK = 0x1fff;

export interface Ipv4Repr {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  protocol: number;
  ttl: number;
  tos: number;
  identification: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** In bytes; a multiple of 8. */
  fragmentOffset: number;
  payloadLength: number;
}

export interface Ipv4Packet extends Ipv4Repr {
  headerLength: number;
  /** Bytes IHL*4 .. totalLength as a view; link-layer padding past totalLength is excluded. */
  payload: Uint8Array;
}

export interface Ipv4ParseOptions {
  /** Default true. Off for packets whose header we built ourselves. */
  verifyChecksum?: boolean;
}

export function parseIpv4(b: Uint8Array, opts?: Ipv4ParseOptions): WireResult<Ipv4Packet> {
  if (b.length < IPV4_HEADER_LEN) return fail("Truncated", "ipv4", "shorter than header");
  const verIhl = b[field.VER_IHL]!;
  if (verIhl >>> 4 !== 4) return fail("Malformed", "ipv4", "version is not 4");
  const headerLength = (verIhl & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_LEN) return fail("Malformed", "ipv4", "IHL below 5");
  if (b.length < headerLength) return fail("Truncated", "ipv4", "shorter than IHL");
  const totalLength = readU16(b, field.LENGTH);
  if (totalLength < headerLength) return fail("Malformed", "ipv4", "total length below IHL");
  if (b.length < totalLength) return fail("Truncated", "ipv4", "shorter than total length");
  if ((opts === undefined || opts.verifyChecksum !== false) && !ipv4HeaderChecksumOk(b, 0, headerLength)) {
    return fail("Checksum", "ipv4", "bad header checksum");
  }
  const flgOff = readU16(b, field.FLG_OFF);
  return ok({
    src: readU32(b, field.SRC),
    dst: readU32(b, field.DST),
    protocol: b[field.PROTOCOL]!,
    ttl: b[field.TTL]!,
    tos: b[field.TOS]!,
    identification: readU16(b, field.IDENT),
    dontFragment: (flgOff & FLAG_DF) !== 0,
    moreFragments: (flgOff & FLAG_MF) !== 0,
    fragmentOffset: (flgOff & OFFSET_MASK) * 8,
    payloadLength: totalLength - headerLength,
    headerLength,
    payload: b.subarray(headerLength, totalLength),
  });
}

/** Writes a 20-byte header (no options) at `off`, including the header checksum. */
export function emitIpv4(repr: Ipv4Repr, buf: Uint8Array, off: number): void {
  buf[off + field.VER_IHL] = 0x45;
  buf[off + field.TOS] = repr.tos;
  writeU16(buf, off + field.LENGTH, IPV4_HEADER_LEN + repr.payloadLength);
  writeU16(buf, off + field.IDENT, repr.identification);
  writeU16(
    buf,
    off + field.FLG_OFF,
    (repr.dontFragment ? FLAG_DF : 0) | (repr.moreFragments ? FLAG_MF : 0) | ((repr.fragmentOffset >>> 3) & OFFSET_MASK),
  );
  buf[off + field.TTL] = repr.ttl;
  buf[off + field.PROTOCOL] = repr.protocol;
  writeU16(buf, off + field.CHECKSUM, 0);
  writeU32(buf, off + field.SRC, repr.src);
  writeU32(buf, off + field.DST, repr.dst);
  writeU16(buf, off + field.CHECKSUM, internetChecksum(buf, off, IPV4_HEADER_LEN));
}

/**
 * Decrements the TTL of the header at `off` in place and patches the checksum incrementally
 * (RFC 1624 eqn 3: HC' = ~(~HC + ~m + m'), m being the TTL/protocol word), so forwarding
 * costs O(1) instead of re-summing the header. Returns the new TTL. A TTL of 0 is left as is
 * (and 0 returned) rather than wrapping to 255; the caller should have dropped the packet.
 */
export function ipv4DecrementTtl(packet: Uint8Array, off: number): number {
  const ttl = packet[off + field.TTL]!;
  if (ttl === 0) return 0;
  const proto = packet[off + field.PROTOCOL]!;
  const oldWord = (ttl << 8) | proto;
  const newWord = ((ttl - 1) << 8) | proto;
  let sum = (~readU16(packet, off + field.CHECKSUM) & 0xffff) + (~oldWord & 0xffff) + newWord;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  packet[off + field.TTL] = ttl - 1;
  writeU16(packet, off + field.CHECKSUM, ~sum & 0xffff);
  return ttl - 1;
}

/** True when the one's-complement sum over the header, checksum included, is all ones (RFC 1071). */
export function ipv4HeaderChecksumOk(b: Uint8Array, off: number, headerLength: number): boolean {
  return onesComplementSum(b, off, headerLength) === 0xffff;
}
