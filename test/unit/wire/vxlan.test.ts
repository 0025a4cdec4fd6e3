import { describe, expect, it } from "vitest";
import { emitVxlan, parseVxlan, VXLAN_HEADER_LEN } from "../../../overlay/wire/vxlan.ts";
import { hex } from "./rng.ts";

function code(r: { ok: boolean; error?: { code: string } }): string | undefined {
  return r.ok ? undefined : r.error!.code;
}

describe("vxlan", () => {
  it("parses the known VNI 1 header", () => {
    const b = hex("08 00 00 00 00 00 01 00 ff ff ff ff ff ff");
    const r = parseVxlan(b);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.vni).toBe(1);
    expect(r.value.payload.length).toBe(6);
    expect(r.value.payload.buffer).toBe(b.buffer);
  });

  it("emits the known header byte for byte", () => {
    const buf = new Uint8Array(8).fill(0xee);
    emitVxlan({ vni: 1 }, buf, 0);
    expect(buf).toEqual(hex("08 00 00 00 00 00 01 00"));
  });

  it("round-trips VNIs including 0 and 0xFFFFFF", () => {
    for (const vni of [0, 1, 0xff, 0x100, 0x1234_56, 0xff_fffe, 0xff_ffff]) {
      const buf = new Uint8Array(12);
      emitVxlan({ vni }, buf, 2);
      const r = parseVxlan(buf.subarray(2));
      expect(r.ok && r.value.vni).toBe(vni);
      expect(r.ok && r.value.payload.length).toBe(2);
    }
  });

  it("throws RangeError for a VNI outside 24 bits", () => {
    for (const vni of [-1, 0x100_0000, 1.5, Number.NaN]) {
      expect(() => emitVxlan({ vni }, new Uint8Array(8), 0)).toThrow(RangeError);
    }
  });

  it("reports every short prefix as Truncated", () => {
    const b = hex("08 00 00 00 00 00 01 00");
    for (let n = 0; n < VXLAN_HEADER_LEN; n++) expect(code(parseVxlan(b.subarray(0, n)))).toBe("Truncated");
    expect(parseVxlan(b).ok).toBe(true);
  });

  it("rejects a clear I flag as Malformed", () => {
    expect(code(parseVxlan(hex("00 00 00 00 00 00 01 00")))).toBe("Malformed");
    expect(code(parseVxlan(hex("f7 00 00 00 00 00 01 00")))).toBe("Malformed");
  });

  it("ignores reserved bits on receipt (RFC 7348 §5)", () => {
    const r = parseVxlan(hex("ff ff ff ff 12 34 56 ff"));
    expect(r.ok && r.value.vni).toBe(0x123456);
  });
});
