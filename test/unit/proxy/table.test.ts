/**
 * The proxy backends' numeric-key hash table (node-agent/proxy/table.ts): lookups, growth with
 * the caller's columns carried along, and backward-shift deletion, against a Map.
 */
import { describe, expect, it } from "vitest";
import type { PacketView } from "../../../node-agent/packet.ts";
import { KeyTable } from "../../../node-agent/proxy/table.ts";
import { mulberry32, randInt } from "../wire/rng.ts";

/** Every entry of `model` is in `t` with its object and columns, and `t` holds nothing else. */
function expectSame(t: KeyTable<string>, model: Map<string, { a: number; b: number; cols: number[] }>): void {
  expect(t.size).toBe(model.size);
  for (const [name, e] of model) {
    const o = t.find(e.a, e.b);
    expect(o, name).toBeGreaterThanOrEqual(0);
    expect(o % t.width).toBe(0);
    expect(t.at(o)).toBe(name);
    expect(t.get(e.a, e.b)).toBe(name);
    expect(Array.from(t.rows.subarray(o + 1, o + t.width))).toEqual(e.cols);
  }
  expect(t.values().sort()).toEqual([...model.keys()].sort());
}

describe("KeyTable", () => {
  it("finds (a, b) over the whole key range; the packet path reads pkt.dst", () => {
    const t = new KeyTable<string>(4);
    const keys: [number, number][] = [
      [0, 0],
      [0, 131_071],
      [0xffff_ffff, 0x3_ffff],
      [0x0a60_000c, 160],
      [0xc000_020a, 161],
    ];
    for (const [a, b] of keys) t.set(a, b, `${a}/${b}`);
    for (const [a, b] of keys) {
      expect(t.get(a, b)).toBe(`${a}/${b}`);
      expect(t.getDst({ dst: a } as PacketView, b)).toBe(`${a}/${b}`);
      expect(t.findDst({ dst: a } as PacketView, b)).toBe(t.find(a, b));
    }
    expect(t.find(0x0a60_000c, 161)).toBe(-1);
    expect(t.get(1, 0)).toBeUndefined();
    expect(t.getDst({ dst: 0xc000_020b } as PacketView, 161)).toBeUndefined();
  });

  it("keeps the columns across growth and deletion, and replaces in place", () => {
    const t = new KeyTable<string>(2, 0.75);
    const rows0 = t.rows;
    const model = new Map<string, { a: number; b: number; cols: number[] }>();
    for (let i = 0; i < 200; i++) {
      const e = { a: (0x0a60_0000 + i * 7) >>> 0, b: 80 + (i % 3), cols: [i * 10 + 1] };
      const o = t.set(e.a, e.b, `e${i}`);
      t.rows[o + 1] = e.cols[0]!;
      model.set(`e${i}`, e);
    }
    expect(t.rows).not.toBe(rows0);
    expectSame(t, model);
    // Replacing keeps the row and its columns.
    const e5 = model.get("e5")!;
    const o5 = t.find(e5.a, e5.b);
    expect(t.set(e5.a, e5.b, "e5")).toBe(o5);
    expect(t.rows[o5 + 1]).toBe(e5.cols[0]);
    expect(t.delete(e5.a, e5.b)).toBe("e5");
    expect(t.delete(e5.a, e5.b)).toBeUndefined();
    model.delete("e5");
    expectSame(t, model);
    // A row taken again after a deletion starts with zero columns.
    const again = t.set(e5.a, e5.b, "again");
    expect(t.rows[again + 1]).toBe(0);
  });

  it("agrees with a Map through random inserts and deletes in crowded probe runs", () => {
    const rng = mulberry32(5);
    const t = new KeyTable<string>(4, 0.75);
    const model = new Map<string, { a: number; b: number; cols: number[] }>();
    for (let step = 0; step < 5000; step++) {
      // Few distinct keys so inserts, replacements and deletes meet in the same runs.
      const a = randInt(rng, 300) * 0x0100_0000 + randInt(rng, 4);
      const b = randInt(rng, 2) * 0x1_0000 + 80;
      const name = `${a}/${b}`;
      if (rng() < 0.4) {
        expect(t.delete(a, b)).toBe(model.has(name) ? name : undefined);
        model.delete(name);
      } else {
        const cols = [step, -step, step / 2];
        const o = t.set(a, b, name);
        t.rows.set(cols, o + 1);
        model.set(name, { a, b, cols });
      }
      if (step % 1000 === 0) expectSame(t, model);
    }
    expectSame(t, model);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.values()).toEqual([]);
  });

  it("is sized for the entries it expects, and wants a power-of-two row width", () => {
    const t = new KeyTable<number>(4, 0.5, 100);
    const rows = t.rows;
    expect(rows.length).toBe(256 * 4);
    for (let i = 0; i < 100; i++) t.set(i, 0, i);
    expect(t.rows).toBe(rows);
    expect(() => new KeyTable<number>(3)).toThrow(RangeError);
  });
});
