/**
 * Ethernet II framing (IEEE 802.3 clause 3.2.6 "Type" interpretation). Only the 14-byte header:
 * no 802.1Q tags (kubewire pods sit on an untagged bridge) and no FCS (never seen by software).
 */

import { fail, ok, readMac, readU16, writeMac, writeU16 } from "./common.ts";
import type { MacAddr, WireResult } from "./common.ts";

export const EtherType = { IPv4: 0x0800, ARP: 0x0806 } as const;
export const ETHERNET_HEADER_LEN = 14;

const field = { DST: 0, SRC: 6, ETHERTYPE: 12, PAYLOAD: 14 } as const;

/** Values below this are an 802.3 length, not an EtherType (IEEE 802.3 §3.2.6). */
const MIN_ETHERTYPE = 0x0600;

export interface EthernetRepr {
  dst: MacAddr;
  src: MacAddr;
  ethertype: number;
}

export interface EthernetFrame extends EthernetRepr {
  /** Everything after the header, as a view (no copy). May include trailing padding. */
  payload: Uint8Array;
}

export function parseEthernet(b: Uint8Array): WireResult<EthernetFrame> {
  if (b.length < ETHERNET_HEADER_LEN) return fail("Truncated", "ethernet", "shorter than header");
  const ethertype = readU16(b, field.ETHERTYPE);
  if (ethertype < MIN_ETHERTYPE) return fail("Unsupported", "ethernet", "802.3 length frame");
  return ok({
    dst: readMac(b, field.DST),
    src: readMac(b, field.SRC),
    ethertype,
    payload: b.subarray(field.PAYLOAD),
  });
}

/** Writes the 14-byte header at `off`; the caller places the payload after it. */
export function emitEthernet(repr: EthernetRepr, buf: Uint8Array, off: number): void {
  writeMac(buf, off + field.DST, repr.dst);
  writeMac(buf, off + field.SRC, repr.src);
  writeU16(buf, off + field.ETHERTYPE, repr.ethertype);
}
