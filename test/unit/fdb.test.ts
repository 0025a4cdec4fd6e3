import { describe, expect, it } from "vitest";
import { FDB_AGEING_MS, Fdb } from "../../node-agent/fdb.ts";
import { parseMac } from "../../overlay/wire/common.ts";

const A = parseMac("0a:58:0a:f4:00:02")!;
const B = parseMac("0a:58:0a:f4:00:03")!;

describe("Fdb", () => {
  it("knows nothing before it learns", () => {
    expect(new Fdb<string>().lookup(A, 0)).toEqual({ kind: "unknown" });
  });

  it("learns a MAC on the port it was seen on", () => {
    const fdb = new Fdb<string>();
    fdb.learn(A, "veth-a", 10);
    fdb.learn(B, "veth-b", 10);
    expect(fdb.lookup(A, 20)).toEqual({ kind: "found", port: "veth-a" });
    expect(fdb.lookup(B, 20)).toEqual({ kind: "found", port: "veth-b" });
    expect(fdb.list()).toEqual([
      { mac: A, port: "veth-a", seen: 10 },
      { mac: B, port: "veth-b", seen: 10 },
    ]);
  });

  it("moves a MAC seen on another port", () => {
    const fdb = new Fdb<string>();
    fdb.learn(A, "veth-a", 0);
    fdb.learn(A, "veth-b", 5);
    expect(fdb.lookup(A, 5)).toEqual({ kind: "found", port: "veth-b" });
    expect(fdb.list()).toHaveLength(1);
  });

  it("ages an entry out after FDB_AGEING_MS without traffic", () => {
    const fdb = new Fdb<string>();
    fdb.learn(A, "veth-a", 1_000);
    expect(fdb.lookup(A, 1_000 + FDB_AGEING_MS).kind).toBe("found");
    expect(fdb.lookup(A, 1_000 + FDB_AGEING_MS + 1).kind).toBe("unknown");
    fdb.age(1_000 + FDB_AGEING_MS);
    expect(fdb.list()).toHaveLength(1);
    fdb.age(1_000 + FDB_AGEING_MS + 1);
    expect(fdb.list()).toHaveLength(0);
  });

  it("refreshes the age on every learn", () => {
    const fdb = new Fdb<string>();
    fdb.learn(A, "veth-a", 0);
    fdb.learn(A, "veth-a", FDB_AGEING_MS);
    expect(fdb.lookup(A, FDB_AGEING_MS * 2).kind).toBe("found");
    fdb.age(FDB_AGEING_MS * 2);
    expect(fdb.list()).toEqual([{ mac: A, port: "veth-a", seen: FDB_AGEING_MS }]);
  });

  it("forgetPort drops exactly that port's entries", () => {
    const fdb = new Fdb<string>();
    const C = parseMac("0a:58:0a:f4:00:04")!;
    fdb.learn(A, "veth-a", 0);
    fdb.learn(C, "veth-a", 0);
    fdb.learn(B, "veth-b", 0);
    fdb.forgetPort("veth-a");
    expect(fdb.lookup(A, 0).kind).toBe("unknown");
    expect(fdb.lookup(C, 0).kind).toBe("unknown");
    expect(fdb.lookup(B, 0)).toEqual({ kind: "found", port: "veth-b" });
  });
});
