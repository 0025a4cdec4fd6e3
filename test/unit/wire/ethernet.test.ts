import { describe, expect, it } from "vitest";
import { EtherType, ETHERNET_HEADER_LEN, emitEthernet, parseEthernet } from "../../../overlay/wire/ethernet.ts";
import type { EthernetRepr } from "../../../overlay/wire/ethernet.ts";
import { hex } from "./rng.ts";

describe("ethernet", () => {
  it("round-trips reprs", () => {
    const reprs: EthernetRepr[] = [
      { dst: 0xffff_ffff_ffff, src: 0x02_42_0a_f4_01_05, ethertype: EtherType.ARP },
      { dst: 0, src: 0, ethertype: EtherType.IPv4 },
      { dst: 0x00_0c_29_3e_5f_01, src: 0xfe_ff_ff_ff_ff_fe, ethertype: 0xffff },
      { dst: 1, src: 0x8000_0000_0000, ethertype: 0x0600 },
    ];
    for (const repr of reprs) {
      const buf = new Uint8Array(ETHERNET_HEADER_LEN + 3);
      buf.set([1, 2, 3], ETHERNET_HEADER_LEN);
      emitEthernet(repr, buf, 0);
      const r = parseEthernet(buf);
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      const { payload, ...rest } = r.value;
      expect(rest).toEqual(repr);
      expect(Array.from(payload)).toEqual([1, 2, 3]);
    }
  });

  it("emits at an offset", () => {
    const buf = new Uint8Array(20);
    emitEthernet({ dst: 0xffff_ffff_ffff, src: 0x02_00_00_00_00_01, ethertype: EtherType.IPv4 }, buf, 4);
    expect(buf.subarray(4, 18)).toEqual(hex("ff ff ff ff ff ff 02 00 00 00 00 01 08 00"));
    expect(buf.subarray(0, 4)).toEqual(new Uint8Array(4));
  });

  it("parses a known ARP broadcast frame header", () => {
    const frame = hex("ff ff ff ff ff ff 00 0c 29 3e 5f 01 08 06 00 01 08 00");
    const r = parseEthernet(frame);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.dst).toBe(0xffff_ffff_ffff);
    expect(r.value.src).toBe(0x00_0c_29_3e_5f_01);
    expect(r.value.ethertype).toBe(EtherType.ARP);
    expect(r.value.payload).toEqual(hex("00 01 08 00"));
    // The payload is a view, not a copy.
    expect(r.value.payload.buffer).toBe(frame.buffer);
    expect(r.value.payload.byteOffset).toBe(14);
  });

  it("reports every short prefix as Truncated", () => {
    const frame = hex("ff ff ff ff ff ff 00 0c 29 3e 5f 01 08 00");
    for (let n = 0; n < ETHERNET_HEADER_LEN; n++) {
      const r = parseEthernet(frame.subarray(0, n));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe("Truncated");
    }
    expect(parseEthernet(frame).ok).toBe(true);
  });

  it("rejects 802.3 length frames as Unsupported", () => {
    const frame = hex("ff ff ff ff ff ff 00 0c 29 3e 5f 01 05 ff");
    const r = parseEthernet(frame);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe("Unsupported");
      expect(r.error.layer).toBe("ethernet");
    }
  });
});
