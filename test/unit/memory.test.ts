import { describe, expect, it } from "vitest";
import { MemoryValve } from "../../node-agent/memory.ts";

describe("MemoryValve", () => {
  it("collects only once the heap has grown by the slack over the last floor", () => {
    let used = 100;
    const valve = new MemoryValve(() => ({ heapUsed: used, arrayBuffers: 0 }), 50);
    used = 149;
    valve.check();
    expect(valve.collections).toBe(0);
    used = 150;
    valve.check();
    expect(valve.collections).toBe(1);
    // The floor moves to what was in use after the collection.
    used = 190;
    valve.check();
    expect(valve.collections).toBe(1);
    used = 200;
    valve.check();
    expect(valve.collections).toBe(2);
  });

  it("lets a large live heap grow by a quarter of itself before collecting", () => {
    const MiB = 1024 * 1024;
    let used = 400 * MiB;
    const valve = new MemoryValve(() => ({ heapUsed: used, arrayBuffers: 0 }), 8 * MiB);
    used = 450 * MiB;
    valve.check();
    expect(valve.collections).toBe(0);
    used = 500 * MiB;
    valve.check();
    expect(valve.collections).toBe(1);
  });
});
