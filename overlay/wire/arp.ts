/**
 * ARP (RFC 826), restricted to Ethernet hardware and IPv4 protocol addresses, which is all a
 * kubewire pod bridge carries.
 */

import { fail, ok, readMac, readU16, readU32, writeMac, writeU16, writeU32 } from "./common.ts";
import type { Ipv4Addr, MacAddr, WireResult } from "./common.ts";

export const ArpOperation = { Request: 1, Reply: 2 } as const;
export const ARP_LEN = 28;

const field = {
  HTYPE: 0,
  PTYPE: 2,
  HLEN: 4,
  PLEN: 5,
  OPER: 6,
  SHA: 8,
  SPA: 14,
  THA: 18,
  TPA: 24,
} as const;

const HTYPE_ETHERNET = 1;
const PTYPE_IPV4 = 0x0800;

export interface ArpRepr {
  operation: 1 | 2;
  senderMac: MacAddr;
  senderIp: Ipv4Addr;
  targetMac: MacAddr;
  targetIp: Ipv4Addr;
}

export function parseArp(b: Uint8Array): WireResult<ArpRepr> {
  if (b.length < ARP_LEN) return fail("Truncated", "arp", "shorter than Ethernet/IPv4 ARP packet");
  if (
    readU16(b, field.HTYPE) !== HTYPE_ETHERNET ||
    readU16(b, field.PTYPE) !== PTYPE_IPV4 ||
    b[field.HLEN] !== 6 ||
    b[field.PLEN] !== 4
  ) {
    return fail("Unsupported", "arp", "not Ethernet/IPv4 ARP");
  }
  const operation = readU16(b, field.OPER);
  if (operation !== ArpOperation.Request && operation !== ArpOperation.Reply) {
    return fail("Unsupported", "arp", "unknown operation");
  }
  return ok({
    operation,
    senderMac: readMac(b, field.SHA),
    senderIp: readU32(b, field.SPA),
    targetMac: readMac(b, field.THA),
    targetIp: readU32(b, field.TPA),
  });
}

/** Writes the 28-byte packet at `off`. */
export function emitArp(repr: ArpRepr, buf: Uint8Array, off: number): void {
  writeU16(buf, off + field.HTYPE, HTYPE_ETHERNET);
  writeU16(buf, off + field.PTYPE, PTYPE_IPV4);
  buf[off + field.HLEN] = 6;
  buf[off + field.PLEN] = 4;
  writeU16(buf, off + field.OPER, repr.operation);
  writeMac(buf, off + field.SHA, repr.senderMac);
  writeU32(buf, off + field.SPA, repr.senderIp);
  writeMac(buf, off + field.THA, repr.targetMac);
  writeU32(buf, off + field.TPA, repr.targetIp);
}
