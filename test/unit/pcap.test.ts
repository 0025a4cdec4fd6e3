import { describe, expect, it } from "vitest";
import { LINKTYPE_ETHERNET, pcapGlobalHeader, pcapRecord } from "../../overlay/pcap.ts";
import { hex } from "./wire/rng.ts";

describe("pcap", () => {
  it("writes the exact classic little-endian global header", () => {
    expect(pcapGlobalHeader()).toEqual(
      hex("d4 c3 b2 a1 02 00 04 00 00 00 00 00 00 00 00 00 ff ff 00 00 01 00 00 00"),
    );
    expect(LINKTYPE_ETHERNET).toBe(1);
    expect(pcapGlobalHeader(96, 101).subarray(16)).toEqual(hex("60 00 00 00 65 00 00 00"));
  });

  it("writes record headers (ts_sec, ts_usec, incl_len, orig_len) and the frame", () => {
    const frame = new Uint8Array(60).map((_, i) => i);
    const rec = pcapRecord(1_700_000_000_123_456, frame);
    const v = new DataView(rec.buffer);
    expect(rec.length).toBe(16 + 60);
    expect(v.getUint32(0, true)).toBe(1_700_000_000);
    expect(v.getUint32(4, true)).toBe(123_456);
    expect(v.getUint32(8, true)).toBe(60);
    expect(v.getUint32(12, true)).toBe(60);
    expect(rec.subarray(16)).toEqual(frame);
    expect(pcapRecord(1, new Uint8Array(0))).toEqual(hex("00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00"));
  });

  it("truncates to snaplen, keeping the original length", () => {
    const frame = new Uint8Array(200).fill(7);
    const rec = pcapRecord(2_500_000, frame, 64);
    const v = new DataView(rec.buffer);
    expect(rec.length).toBe(16 + 64);
    expect(v.getUint32(0, true)).toBe(2);
    expect(v.getUint32(4, true)).toBe(500_000);
    expect(v.getUint32(8, true)).toBe(64);
    expect(v.getUint32(12, true)).toBe(200);
  });
});
