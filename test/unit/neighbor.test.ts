import { describe, expect, it } from "vitest";
import { MAX_PENDING, NeighborTable, NeighborTimeouts } from "../../node-agent/neighbor.ts";
import { parseIpv4Addr, parseMac, type Ipv4Addr } from "../../overlay/wire/common.ts";

const ip = (text: string): Ipv4Addr => parseIpv4Addr(text)!;
const GW = ip("10.244.0.1");
const POD = ip("10.244.0.7");
const MAC1 = parseMac("0a:58:0a:f4:00:01")!;
const MAC2 = parseMac("0a:58:0a:f4:00:99")!;
const { retransmitMs, reachableMs, maxProbes } = NeighborTimeouts;

describe("NeighborTable lookup", () => {
  it("goes none -> incomplete -> found", () => {
    const t = new NeighborTable<string>();
    expect(t.lookup("eth0", GW, 0)).toEqual({ kind: "none" });
    t.enqueue("eth0", GW, "p1", 0);
    expect(t.lookup("eth0", GW, 0)).toEqual({ kind: "incomplete" });
    t.learn("eth0", GW, MAC1, 10);
    expect(t.lookup("eth0", GW, 10)).toEqual({ kind: "found", mac: MAC1 });
  });

  it("keeps devices apart", () => {
    const t = new NeighborTable<string>();
    t.learn("eth0", GW, MAC1, 0);
    expect(t.lookup("cni0", GW, 0)).toEqual({ kind: "none" });
  });

  it("stops using a reachable entry after reachableMs", () => {
    const t = new NeighborTable<string>();
    t.learn("eth0", GW, MAC1, 1_000);
    expect(t.lookup("eth0", GW, 1_000 + reachableMs).kind).toBe("found");
    expect(t.lookup("eth0", GW, 1_000 + reachableMs + 1)).toEqual({ kind: "none" });
  });
});

describe("NeighborTable enqueue and learn", () => {
  it("asks for a solicit only on the first miss", () => {
    const t = new NeighborTable<string>();
    expect(t.enqueue("eth0", GW, "p1", 0)).toEqual({ kind: "queued", solicit: true });
    expect(t.enqueue("eth0", GW, "p2", 1)).toEqual({ kind: "queued", solicit: false });
    expect(t.enqueue("eth0", GW, "p3", 2)).toEqual({ kind: "queued", solicit: false });
    // Another address is another first miss.
    expect(t.enqueue("eth0", POD, "q1", 2)).toEqual({ kind: "queued", solicit: true });
  });

  it("solicits again for an entry that went stale", () => {
    const t = new NeighborTable<string>();
    t.learn("eth0", GW, MAC1, 0);
    expect(t.enqueue("eth0", GW, "p1", reachableMs + 1)).toEqual({ kind: "queued", solicit: true });
    expect(t.lookup("eth0", GW, reachableMs + 1)).toEqual({ kind: "incomplete" });
  });

  it("learn hands back the queued packets in order, once", () => {
    const t = new NeighborTable<string>();
    t.enqueue("eth0", GW, "p1", 0);
    t.enqueue("eth0", GW, "p2", 0);
    t.enqueue("eth0", GW, "p3", 0);
    expect(t.learn("eth0", GW, MAC1, 5)).toEqual({ kind: "learned", pending: ["p1", "p2", "p3"] });
    expect(t.learn("eth0", GW, MAC1, 6)).toEqual({ kind: "learned", pending: [] });
  });

  it("learn of a new address creates a reachable entry", () => {
    const t = new NeighborTable<string>();
    expect(t.learn("eth0", POD, MAC2, 0)).toEqual({ kind: "learned", pending: [] });
    expect(t.entriesOf("eth0")).toEqual([{ ip: POD, mac: MAC2, state: "reachable" }]);
  });

  it("drops the oldest packet when the queue is full", () => {
    const t = new NeighborTable<number>();
    for (let i = 0; i < MAX_PENDING; i++) expect(t.enqueue("eth0", GW, i, 0)).not.toHaveProperty("dropped");
    expect(t.enqueue("eth0", GW, MAX_PENDING, 0)).toEqual({ kind: "queued", solicit: false, dropped: 0 });
    expect(t.enqueue("eth0", GW, MAX_PENDING + 1, 0)).toEqual({ kind: "queued", solicit: false, dropped: 1 });
    const learned = t.learn("eth0", GW, MAC1, 0);
    const waited = learned.kind === "learned" ? learned.pending : [];
    expect(waited).toHaveLength(MAX_PENDING);
    expect(waited[0]).toBe(2);
    expect(waited.at(-1)).toBe(MAX_PENDING + 1);
  });

  it("refresh updates only entries that exist", () => {
    const t = new NeighborTable<string>();
    expect(t.refresh("eth0", GW, MAC1, 0)).toEqual([]);
    expect(t.lookup("eth0", GW, 0)).toEqual({ kind: "none" });
    t.enqueue("eth0", GW, "p1", 0);
    expect(t.refresh("eth0", GW, MAC1, 1)).toEqual(["p1"]);
    t.refresh("eth0", GW, MAC2, 2);
    expect(t.lookup("eth0", GW, 2)).toEqual({ kind: "found", mac: MAC2 });
  });
});

describe("NeighborTable permanent entries", () => {
  it("are not overwritten by learn, and never go stale", () => {
    const t = new NeighborTable<string>();
    t.setPermanent("flannel.1", GW, MAC1);
    expect(t.learn("flannel.1", GW, MAC2, 0)).toEqual({ kind: "learned", pending: [] });
    expect(t.refresh("flannel.1", GW, MAC2, 0)).toEqual([]);
    expect(t.lookup("flannel.1", GW, reachableMs * 10)).toEqual({ kind: "found", mac: MAC1 });
    t.tick(reachableMs * 10);
    expect(t.entriesOf("flannel.1")).toEqual([{ ip: GW, mac: MAC1, state: "permanent" }]);
  });

  it("syncPermanent removes stale permanent entries and leaves learned ones alone", () => {
    const t = new NeighborTable<string>();
    const a = ip("10.244.1.0");
    const b = ip("10.244.2.0");
    const c = ip("10.244.3.0");
    t.syncPermanent("flannel.1", new Map([[a, MAC1], [b, MAC2]]));
    t.learn("flannel.1", POD, MAC2, 0);
    t.syncPermanent("flannel.1", new Map([[b, MAC1], [c, MAC2]]));
    const entries = t.entriesOf("flannel.1").sort((x, y) => x.ip - y.ip);
    expect(entries).toEqual([
      { ip: POD, mac: MAC2, state: "reachable" },
      { ip: b, mac: MAC1, state: "permanent" },
      { ip: c, mac: MAC2, state: "permanent" },
    ]);
    expect(t.lookup("flannel.1", a, 0)).toEqual({ kind: "none" });
    t.syncPermanent("flannel.1", new Map());
    expect(t.entriesOf("flannel.1")).toEqual([{ ip: POD, mac: MAC2, state: "reachable" }]);
  });
});

describe("NeighborTable tick", () => {
  it("asks to resolicit after retransmitMs, not before", () => {
    const t = new NeighborTable<string>();
    t.enqueue("eth0", GW, "p1", 100);
    expect(t.tick(100 + retransmitMs - 1)).toEqual({ resolicit: [], failed: [] });
    expect(t.tick(100 + retransmitMs)).toEqual({ resolicit: [{ dev: "eth0", ip: GW }], failed: [] });
    // The gap is counted from the last solicit.
    expect(t.tick(100 + retransmitMs + 1).resolicit).toEqual([]);
  });

  it("gives up after maxProbes solicits and returns the waiting packets", () => {
    const t = new NeighborTable<string>();
    t.enqueue("eth0", GW, "p1", 0); // the first solicit is the caller's
    t.enqueue("eth0", GW, "p2", 0);
    let solicits = 1;
    let failed: ReturnType<NeighborTable<string>["tick"]>["failed"] = [];
    for (let now = retransmitMs; failed.length === 0 && now <= 100 * retransmitMs; now += retransmitMs) {
      const r = t.tick(now);
      solicits += r.resolicit.length;
      failed = r.failed;
      if (failed.length > 0) expect(now).toBe(maxProbes * retransmitMs);
    }
    expect(solicits).toBe(maxProbes);
    expect(failed).toEqual([{ dev: "eth0", ip: GW, packets: ["p1", "p2"] }]);
    expect(t.lookup("eth0", GW, maxProbes * retransmitMs)).toEqual({ kind: "none" });
    expect(t.entriesOf("eth0")).toEqual([]);
  });

  it("removes reachable entries long expired", () => {
    const t = new NeighborTable<string>();
    t.learn("eth0", GW, MAC1, 0);
    t.tick(reachableMs * 2);
    expect(t.entriesOf("eth0")).toHaveLength(1);
    expect(t.tick(reachableMs * 2 + 1)).toEqual({ resolicit: [], failed: [] });
    expect(t.entriesOf("eth0")).toEqual([]);
  });
});

describe("NeighborTable bound (gc_thresh3)", () => {
  it("refuses new entries past its maximum, after dropping stale ones, and never refuses permanent ones", () => {
    const t = new NeighborTable<string>(4);
    for (let i = 0; i < 4; i++) expect(t.learn("eth0", POD + i, MAC2, 0)).toEqual({ kind: "learned", pending: [] });
    expect(t.size).toBe(4);
    expect(t.learn("eth0", POD + 10, MAC2, 1)).toEqual({ kind: "full" });
    expect(t.enqueue("eth0", POD + 11, "p", 1)).toEqual({ kind: "full" });
    t.setPermanent("flannel.1", GW, MAC1);
    expect(t.size).toBe(5);
    // Once the learned entries are stale, forced GC makes room.
    expect(t.learn("eth0", POD + 10, MAC2, 31_000)).toEqual({ kind: "learned", pending: [] });
    expect(t.size).toBe(2);
  });
});
