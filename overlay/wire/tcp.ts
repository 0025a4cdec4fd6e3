/**
 * TCP segment header (RFC 9293 §3.1). Options are carried raw; only MSS is interpreted
 * (for clamping on the overlay path).
 */

import { fail, internetChecksum, ok, onesComplementSum, pseudoHeaderSum, readU16, readU32, writeU16, writeU32 } from "./common.ts";
import type { WireResult } from "./common.ts";
import type { PseudoHeader } from "./udp.ts";

export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;
export const TCP_HEADER_LEN = 20;
/** Data offset is 4 bits of 32-bit words (RFC 9293 §3.1). */
export const TCP_MAX_HEADER_LEN = 60;

const PROTO_TCP = 6;

const field = {
  SRC_PORT: 0,
  DST_PORT: 2,
  SEQ: 4,
  ACK: 8,
  DATA_OFFSET: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT: 18,
  OPTIONS: 20,
} as const;

// RFC 9293 §3.2 option kinds.
const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgentPointer: number;
  /** Raw option bytes; a multiple of 4 when parsed, padded with EOL (zeros) when emitted. */
  options: Uint8Array;
}

export interface TcpSegment extends TcpRepr {
  headerLength: number;
  checksum: number;
  payload: Uint8Array;
}

/**
 * Parses `b`, the whole IP payload (TCP has no length field of its own). The checksum is
 * verified only when `pseudo` is given.
 */
export function parseTcp(b: Uint8Array, pseudo?: PseudoHeader): WireResult<TcpSegment> {
  if (b.length < TCP_HEADER_LEN) return fail("Truncated", "tcp", "shorter than header");
  const headerLength = (b[field.DATA_OFFSET]! >>> 4) * 4;
  if (headerLength < TCP_HEADER_LEN) return fail("Malformed", "tcp", "data offset below 5");
  if (headerLength > b.length) return fail("Truncated", "tcp", "shorter than data offset");
  if (
    pseudo !== undefined &&
    onesComplementSum(b, 0, b.length, pseudoHeaderSum(pseudo.src, pseudo.dst, PROTO_TCP, b.length)) !== 0xffff
  ) {
    return fail("Checksum", "tcp", "bad checksum");
  }
  return ok({
    srcPort: readU16(b, field.SRC_PORT),
    dstPort: readU16(b, field.DST_PORT),
    seq: readU32(b, field.SEQ),
    ack: readU32(b, field.ACK),
    // The low nibble of byte 12 is reserved (the old NS bit included): ignored.
    flags: b[field.FLAGS]!,
    window: readU16(b, field.WINDOW),
    urgentPointer: readU16(b, field.URGENT),
    options: b.subarray(field.OPTIONS, headerLength),
    headerLength,
    checksum: readU16(b, field.CHECKSUM),
    payload: b.subarray(headerLength),
  });
}

export function tcpHeaderLen(repr: TcpRepr): number {
  return TCP_HEADER_LEN + ((repr.options.length + 3) & ~3);
}

/**
 * Writes header, options (zero-padded to 4 bytes) and payload at `off`; the payload copy is
 * skipped when it is already in place. Checksum computed when `pseudo` is given, else 0.
 * Throws RangeError if the options exceed 40 bytes (a programming error, not wire input).
 */
export function emitTcp(repr: TcpRepr, payload: Uint8Array, buf: Uint8Array, off: number, pseudo?: PseudoHeader): void {
  const headerLength = tcpHeaderLen(repr);
  if (headerLength > TCP_MAX_HEADER_LEN) throw new RangeError("tcp: options longer than 40 bytes");
  // Back to front (payload, options, header) so a segment moved towards higher addresses in
  // the same buffer (encapsulating in place) is not clobbered before it is copied.
  if (!(payload.buffer === buf.buffer && payload.byteOffset === buf.byteOffset + off + headerLength)) {
    buf.set(payload, off + headerLength);
  }
  const opts = repr.options;
  buf.fill(OPT_EOL, off + field.OPTIONS + opts.length, off + headerLength);
  if (!(opts.buffer === buf.buffer && opts.byteOffset === buf.byteOffset + off + field.OPTIONS)) {
    buf.set(opts, off + field.OPTIONS);
  }
  writeU16(buf, off + field.SRC_PORT, repr.srcPort);
  writeU16(buf, off + field.DST_PORT, repr.dstPort);
  writeU32(buf, off + field.SEQ, repr.seq);
  writeU32(buf, off + field.ACK, repr.ack);
  buf[off + field.DATA_OFFSET] = (headerLength >>> 2) << 4;
  buf[off + field.FLAGS] = repr.flags;
  writeU16(buf, off + field.WINDOW, repr.window);
  writeU16(buf, off + field.CHECKSUM, 0);
  writeU16(buf, off + field.URGENT, repr.urgentPointer);
  if (pseudo !== undefined) {
    const length = headerLength + payload.length;
    writeU16(
      buf,
      off + field.CHECKSUM,
      internetChecksum(buf, off, length, pseudoHeaderSum(pseudo.src, pseudo.dst, PROTO_TCP, length)),
    );
  }
}

/**
 * The MSS option value (RFC 9293 §3.2, kind 2 length 4), or undefined if absent or if any
 * option before it has a length that is < 2 or runs past the end.
 */
export function parseTcpMss(options: Uint8Array): number | undefined {
  let mss: number | undefined;
  walkTcpOptions(options, (kind, at, len) => {
    if (kind !== OPT_MSS) return true;
    if (len === 4) mss = readU16(options, at + 2);
    return false;
  });
  return mss;
}

/**
 * Walks an option list (RFC 9293 §3.1: EOL ends it, NOP is one byte, every other option is
 * kind, length, data), calling `visit(kind, at, len)` for each option with a length until it
 * returns false. Stops at EOL and at the first length that is < 2 or runs past the end, so a
 * malformed list yields what came before the damage; never throws.
 */
export function walkTcpOptions(options: Uint8Array, visit: (kind: number, at: number, len: number) => boolean): void {
  const n = options.length;
  let i = 0;
  while (i < n) {
    const kind = options[i]!;
    if (kind === OPT_EOL) return;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= n) return;
    const len = options[i + 1]!;
    if (len < 2 || i + len > n) return;
    if (!visit(kind, i, len)) return;
    i += len;
  }
}
