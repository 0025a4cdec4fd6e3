/**
 * UDP (RFC 768). The checksum is optional in IPv4: 0 on the wire means "none", so a computed
 * 0 is sent as 0xffff.
 */

import { fail, internetChecksum, ok, onesComplementSum, pseudoHeaderSum, readU16, writeU16 } from "./common.ts";
import type { Ipv4Addr, WireResult } from "./common.ts";

export const UDP_HEADER_LEN = 8;

const PROTO_UDP = 17;

const field = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6, PAYLOAD: 8 } as const;

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
}

export interface UdpDatagram extends UdpRepr {
  checksum: number;
  /** Bounded by the UDP length field, as a view. */
  payload: Uint8Array;
}

/** The addresses of the IPv4 pseudo-header (RFC 768, RFC 9293 §3.1); protocol and length are implied. */
export interface PseudoHeader {
  src: Ipv4Addr;
  dst: Ipv4Addr;
}

/** Parses `b` (the IP payload). Verifies the checksum only when `pseudo` is given and it is nonzero. */
export function parseUdp(b: Uint8Array, pseudo?: PseudoHeader): WireResult<UdpDatagram> {
  if (b.length < UDP_HEADER_LEN) return fail("Truncated", "udp", "shorter than header");
  const length = readU16(b, field.LENGTH);
  if (length < UDP_HEADER_LEN) return fail("Malformed", "udp", "length field below 8");
  if (length > b.length) return fail("Truncated", "udp", "shorter than length field");
  const checksum = readU16(b, field.CHECKSUM);
  if (
    pseudo !== undefined &&
    checksum !== 0 &&
    onesComplementSum(b, 0, length, pseudoHeaderSum(pseudo.src, pseudo.dst, PROTO_UDP, length)) !== 0xffff
  ) {
    return fail("Checksum", "udp", "bad checksum");
  }
  return ok({
    srcPort: readU16(b, field.SRC_PORT),
    dstPort: readU16(b, field.DST_PORT),
    checksum,
    payload: b.subarray(field.PAYLOAD, length),
  });
}

/**
 * Writes header + payload at `off`. The payload copy is skipped when it already sits at
 * `off + 8` in `buf` (built in place). Checksum computed when `pseudo` is given, else 0.
 */
export function emitUdp(repr: UdpRepr, payload: Uint8Array, buf: Uint8Array, off: number, pseudo?: PseudoHeader): void {
  const length = UDP_HEADER_LEN + payload.length;
  // Payload first: if it sits just below `off` in the same buffer (encapsulating in place),
  // writing the header first would clobber its head. `set` itself is overlap-safe.
  if (!(payload.buffer === buf.buffer && payload.byteOffset === buf.byteOffset + off + field.PAYLOAD)) {
    buf.set(payload, off + field.PAYLOAD);
  }
  writeU16(buf, off + field.SRC_PORT, repr.srcPort);
  writeU16(buf, off + field.DST_PORT, repr.dstPort);
  writeU16(buf, off + field.LENGTH, length);
  writeU16(buf, off + field.CHECKSUM, 0);
  if (pseudo !== undefined) {
    const sum = internetChecksum(buf, off, length, pseudoHeaderSum(pseudo.src, pseudo.dst, PROTO_UDP, length));
    writeU16(buf, off + field.CHECKSUM, sum === 0 ? 0xffff : sum);
  }
}
