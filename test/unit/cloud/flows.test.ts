import { describe, expect, it } from "vitest";
import { FlowTable } from "../../../control-plane/cloud/flows.ts";

describe("FlowTable", () => {
  it("keeps a flow while it is used and forgets it after the idle timeout", () => {
    const t = new FlowTable<string>(10, 30_000);
    t.add("c1", "node-1", 0);
    expect(t.get("c1", 29_999)).toBe("node-1");
    // Seen at 29 999: alive until 59 999.
    expect(t.get("c1", 59_998)).toBe("node-1");
    expect(t.expire(59_999 + 30_000)).toEqual([["c1", "node-1"]]);
    expect(t.size).toBe(0);
  });

  it("does not hand out an idle flow even before a sweep", () => {
    const t = new FlowTable<string>(10, 1000);
    t.add("c1", "node-1", 0);
    expect(t.get("c1", 1000)).toBeUndefined();
  });

  it("evicts the least recently used flow to stay within capacity", () => {
    const t = new FlowTable<string>(2, 30_000);
    expect(t.add("a", "fa", 0)).toEqual([]);
    expect(t.add("b", "fb", 1)).toEqual([]);
    t.get("a", 2); // a is now the most recent
    expect(t.add("c", "fc", 3)).toEqual(["fb"]);
    expect(t.size).toBe(2);
    expect(t.get("b", 4)).toBeUndefined();
    expect(t.get("a", 4)).toBe("fa");
  });

  it("returns a replaced flow so the caller closes it", () => {
    const t = new FlowTable<string>(2, 30_000);
    t.add("a", "old", 0);
    expect(t.add("a", "new", 1)).toEqual(["old"]);
    expect(t.get("a", 2)).toBe("new");
  });

  it("deletes a flow only when it is still the one given", () => {
    const t = new FlowTable<string>(4, 30_000);
    t.add("a", "f2", 0);
    expect(t.delete("a", "f1")).toBeUndefined();
    expect(t.get("a", 1)).toBe("f2");
    expect(t.delete("a", "f2")).toBe("f2");
    t.add("b", "fb", 0);
    expect(t.clear()).toEqual(["fb"]);
  });

  it("refuses a capacity below one", () => {
    expect(() => new FlowTable(0, 1000)).toThrow(/capacity/);
  });
});
