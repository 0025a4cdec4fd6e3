import { describe, expect, it } from "vitest";
import { BATCH_VERSION, BatchBuilder, batchEncodedLen, decodeBatch, encodeBatch } from "../../../overlay/wire/batch.ts";
import { hex, mulberry32, randInt, randomBytes } from "./rng.ts";

function code(r: { ok: boolean; error?: { code: string } }): string | undefined {
  return r.ok ? undefined : r.error!.code;
}

describe("batch", () => {
  it("encodes known bytes", () => {
    const b = encodeBatch([hex("aa"), hex("bb cc")]);
    expect(b).toEqual(hex("01 00 01 aa 00 02 bb cc"));
    expect(batchEncodedLen([hex("aa"), hex("bb cc")])).toBe(8);
    expect(encodeBatch([])).toEqual(hex("01"));
  });

  it("round-trips, with views into the input", () => {
    const rng = mulberry32(7);
    for (let t = 0; t < 40; t++) {
      const frames = Array.from({ length: randInt(rng, 10) }, () => randomBytes(rng, 1 + randInt(rng, 300)));
      const enc = encodeBatch(frames);
      expect(enc.length).toBe(batchEncodedLen(frames));
      const r = decodeBatch(enc);
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      expect(r.value).toEqual(frames);
      for (const f of r.value) expect(f.buffer).toBe(enc.buffer);
    }
    const max = new Uint8Array(0xffff).fill(3);
    const r = decodeBatch(encodeBatch([max, hex("01")])); // the largest record
    expect(r.ok && r.value.map((f) => f.length)).toEqual([0xffff, 1]);
  });

  it("rejects empty input, a wrong version and zero-length records as Malformed", () => {
    expect(code(decodeBatch(new Uint8Array(0)))).toBe("Malformed");
    expect(code(decodeBatch(hex("02 00 01 aa")))).toBe("Malformed");
    expect(code(decodeBatch(hex("00")))).toBe("Malformed");
    expect(code(decodeBatch(hex("01 00 01 aa 00 00")))).toBe("Malformed");
  });

  it("reports records running past the end as Truncated, for every prefix", () => {
    const enc = encodeBatch([hex("aa bb cc"), hex("dd")]);
    const boundaries = new Set([1, 6, 9]); // prefixes that end exactly on a record boundary
    for (let n = 1; n < enc.length; n++) {
      const r = decodeBatch(enc.subarray(0, n));
      if (boundaries.has(n)) expect(r.ok).toBe(true);
      else expect(code(r)).toBe("Truncated");
    }
  });

  it("encodeBatch throws RangeError on an unencodable frame", () => {
    expect(() => encodeBatch([new Uint8Array(0)])).toThrow(RangeError);
    expect(() => encodeBatch([new Uint8Array(0x10000)])).toThrow(RangeError);
  });

  it("BatchBuilder matches encodeBatch, refuses what does not fit and resets on finish", () => {
    const b = new BatchBuilder(16);
    expect(b.count).toBe(0);
    expect(b.byteLength).toBe(1);
    expect(b.add(hex("01 02 03 04 05"))).toBe(true); // 1 + 7 = 8
    expect(b.add(hex("06 07 08 09 0a 0b"))).toBe(true); // 8 + 8 = 16: exactly full
    expect(b.add(hex("0c"))).toBe(false);
    expect(b.count).toBe(2);
    expect(b.byteLength).toBe(16);
    const out = b.finish();
    expect(out).toEqual(encodeBatch([hex("01 02 03 04 05"), hex("06 07 08 09 0a 0b")]));
    expect(b.count).toBe(0);
    expect(b.byteLength).toBe(1);
    // The finished batch is a copy: reusing the builder does not change it.
    expect(b.add(hex("ff ff ff ff ff"))).toBe(true);
    expect(out[3]).toBe(1);
    expect(b.finish()).toEqual(hex("01 00 05 ff ff ff ff ff"));
    expect(b.finish()).toEqual(new Uint8Array([BATCH_VERSION]));
  });

  it("BatchBuilder defaults to 64 KiB and validates its arguments", () => {
    const b = new BatchBuilder();
    expect(b.maxBytes).toBe(65536);
    const frame = new Uint8Array(1500).fill(1);
    let n = 0;
    while (b.add(frame)) n++;
    expect(n).toBe(Math.floor((65536 - 1) / 1502));
    const r = decodeBatch(b.finish());
    expect(r.ok && r.value.length).toBe(n);
    expect(() => b.add(new Uint8Array(0))).toThrow(RangeError);
    expect(() => new BatchBuilder(3)).toThrow(RangeError);
    expect(new BatchBuilder(4).add(hex("aa"))).toBe(true);
    expect(new BatchBuilder(4).add(hex("aa bb"))).toBe(false);
  });
});
