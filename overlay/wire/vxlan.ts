/**
 * VXLAN header (RFC 7348 §5): kubewire's overlay encapsulation between node processes.
 */

import { fail, ok } from "./common.ts";
import type { WireResult } from "./common.ts";

export const VXLAN_HEADER_LEN = 8;
export const VXLAN_UDP_PORT = 4789;

const field = { FLAGS: 0, VNI: 4, PAYLOAD: 8 } as const;

/** The I flag: "MUST be set to 1 for a valid VXLAN Network ID" (RFC 7348 §5). */
const FLAG_I = 0x08;
const VNI_MAX = 0xff_ffff;

export interface VxlanRepr {
  vni: number;
}

export interface VxlanPacket extends VxlanRepr {
  /** The inner Ethernet frame, as a view. */
  payload: Uint8Array;
}

export function parseVxlan(b: Uint8Array): WireResult<VxlanPacket> {
  if (b.length < VXLAN_HEADER_LEN) return fail("Truncated", "vxlan", "shorter than header");
  // Reserved bits "MUST be ignored on receipt" (§5): only I is checked.
  if ((b[field.FLAGS]! & FLAG_I) === 0) return fail("Malformed", "vxlan", "I flag clear");
  return ok({
    vni: (b[field.VNI]! << 16) | (b[field.VNI + 1]! << 8) | b[field.VNI + 2]!,
    payload: b.subarray(field.PAYLOAD),
  });
}

/** Writes the 8-byte header at `off`. Throws RangeError for a VNI outside 24 bits. */
export function emitVxlan(repr: VxlanRepr, buf: Uint8Array, off: number): void {
  const vni = repr.vni;
  if (!Number.isInteger(vni) || vni < 0 || vni > VNI_MAX) throw new RangeError("vxlan: VNI outside 0..2^24-1");
  buf[off] = FLAG_I;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + field.VNI] = vni >>> 16;
  buf[off + field.VNI + 1] = (vni >>> 8) & 0xff;
  buf[off + field.VNI + 2] = vni & 0xff;
  buf[off + 7] = 0;
}
