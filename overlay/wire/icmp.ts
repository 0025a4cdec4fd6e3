/**
 * ICMPv4 (RFC 792): echo, destination unreachable (with the RFC 1191 next-hop MTU for
 * "fragmentation needed") and time exceeded: what a node needs to answer pings and report
 * routing failures. Other types are Unsupported.
 */

import { fail, internetChecksum, ok, onesComplementSum, readU16, writeU16 } from "./common.ts";
import type { WireResult } from "./common.ts";

export const IcmpType = { EchoReply: 0, DestUnreachable: 3, EchoRequest: 8, TimeExceeded: 11 } as const;

export const UnreachableCode = {
  NetUnreachable: 0,
  HostUnreachable: 1,
  ProtocolUnreachable: 2,
  PortUnreachable: 3,
  FragmentationNeeded: 4,
  AdminProhibited: 13,
} as const;

export const TimeExceededCode = { TtlExceeded: 0, FragmentReassembly: 1 } as const;

export const ICMP_HEADER_LEN = 8;

const field = {
  TYPE: 0,
  CODE: 1,
  CHECKSUM: 2,
  // Echo (RFC 792 p.14).
  IDENT: 4,
  SEQ: 6,
  // Error messages: unused bits, except destination unreachable's last 16 bits, which carry
  // the next-hop MTU for "fragmentation needed" (RFC 1191 §4).
  UNUSED: 4,
  NEXT_HOP_MTU: 6,
  DATA: 8,
} as const;

export type IcmpRepr =
  | { kind: "echoRequest"; ident: number; seq: number; data: Uint8Array }
  | { kind: "echoReply"; ident: number; seq: number; data: Uint8Array }
  | {
      kind: "destUnreachable";
      code: number;
      /** Only meaningful for FragmentationNeeded, else 0. */
      nextHopMtu: number;
      /** Invoking IP header + leading payload bytes. */
      original: Uint8Array;
    }
  | { kind: "timeExceeded"; code: number; original: Uint8Array };

export interface IcmpParseOptions {
  /** Default true. */
  verifyChecksum?: boolean;
}

export function parseIcmp(b: Uint8Array, opts?: IcmpParseOptions): WireResult<IcmpRepr> {
  if (b.length < ICMP_HEADER_LEN) return fail("Truncated", "icmp", "shorter than header");
  // The checksum covers the whole ICMP message (RFC 792, every type).
  if ((opts === undefined || opts.verifyChecksum !== false) && onesComplementSum(b, 0, b.length) !== 0xffff) {
    return fail("Checksum", "icmp", "bad checksum");
  }
  const type = b[field.TYPE]!;
  const code = b[field.CODE]!;
  const rest = b.subarray(field.DATA);
  switch (type) {
    case IcmpType.EchoRequest:
    case IcmpType.EchoReply:
      // Echo defines only code 0 and the repr has no room for another: refuse, don't lose it.
      if (code !== 0) return fail("Unsupported", "icmp", "echo with nonzero code");
      return ok({
        kind: type === IcmpType.EchoRequest ? "echoRequest" : "echoReply",
        ident: readU16(b, field.IDENT),
        seq: readU16(b, field.SEQ),
        data: rest,
      });
    case IcmpType.DestUnreachable:
      return ok({
        kind: "destUnreachable",
        code,
        nextHopMtu: code === UnreachableCode.FragmentationNeeded ? readU16(b, field.NEXT_HOP_MTU) : 0,
        original: rest,
      });
    case IcmpType.TimeExceeded:
      return ok({ kind: "timeExceeded", code, original: rest });
    default:
      return fail("Unsupported", "icmp", "unsupported type");
  }
}

export function icmpLen(repr: IcmpRepr): number {
  return ICMP_HEADER_LEN + (repr.kind === "echoRequest" || repr.kind === "echoReply" ? repr.data : repr.original).length;
}

/** Writes the whole message (header + data) at `off` and fills in the checksum. */
export function emitIcmp(repr: IcmpRepr, buf: Uint8Array, off: number): void {
  const body = repr.kind === "echoRequest" || repr.kind === "echoReply" ? repr.data : repr.original;
  // Body first, so quoting a packet that sits just below `off` in the same buffer is safe; an
  // echo reply built in place over the request already has its data where it belongs.
  if (!(body.buffer === buf.buffer && body.byteOffset === buf.byteOffset + off + field.DATA)) {
    buf.set(body, off + field.DATA);
  }
  switch (repr.kind) {
    case "echoRequest":
    case "echoReply":
      buf[off + field.TYPE] = repr.kind === "echoRequest" ? IcmpType.EchoRequest : IcmpType.EchoReply;
      buf[off + field.CODE] = 0;
      writeU16(buf, off + field.IDENT, repr.ident);
      writeU16(buf, off + field.SEQ, repr.seq);
      break;
    case "destUnreachable":
      buf[off + field.TYPE] = IcmpType.DestUnreachable;
      buf[off + field.CODE] = repr.code;
      writeU16(buf, off + field.UNUSED, 0);
      writeU16(
        buf,
        off + field.NEXT_HOP_MTU,
        repr.code === UnreachableCode.FragmentationNeeded ? repr.nextHopMtu : 0,
      );
      break;
    case "timeExceeded":
      buf[off + field.TYPE] = IcmpType.TimeExceeded;
      buf[off + field.CODE] = repr.code;
      writeU16(buf, off + field.UNUSED, 0);
      writeU16(buf, off + field.UNUSED + 2, 0);
      break;
  }
  writeU16(buf, off + field.CHECKSUM, 0);
  const len = ICMP_HEADER_LEN + body.length;
  writeU16(buf, off + field.CHECKSUM, internetChecksum(buf, off, len));
}

/**
 * The part of an offending IP packet to quote in an ICMP error: its header plus the first
 * 8 payload bytes (RFC 792; RFC 1812 §4.3.2.3 allows more, we keep 8 for predictable sizes),
 * never past the end of the packet or its total length. A view, not a copy.
 */
export function icmpErrorOriginal(ipPacket: Uint8Array): Uint8Array {
  if (ipPacket.length === 0) return ipPacket;
  let end = (ipPacket[0]! & 0x0f) * 4 + 8;
  if (ipPacket.length >= 4) {
    const totalLength = readU16(ipPacket, 2);
    // Trust totalLength only to trim link padding; a bogus smaller value is ignored.
    if (totalLength >= (ipPacket[0]! & 0x0f) * 4 && totalLength < end) end = totalLength;
  }
  return ipPacket.subarray(0, Math.min(end, ipPacket.length));
}
