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
});
