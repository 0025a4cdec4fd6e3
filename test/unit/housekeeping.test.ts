import { describe, expect, it } from "vitest";
import { eventLastSeen, expiredEvents } from "../../control-plane/housekeeping.ts";
import { tombstonesToPurge, type KubeObject, type TombstoneCandidate } from "../../cluster/store.ts";

const NOW = Date.parse("2026-01-01T12:00:00Z");
const HOUR = 3_600_000;

function event(name: string, fields: Record<string, unknown>, creationTimestamp?: string): KubeObject {
  return { apiVersion: "v1", kind: "Event", metadata: { name, namespace: "default", ...(creationTimestamp ? { creationTimestamp } : {}) }, ...fields };
}

describe("event expiry", () => {
  it("reads lastTimestamp first, then series.lastObservedTime, eventTime, firstTimestamp, creationTimestamp", () => {
    expect(eventLastSeen(event("a", { lastTimestamp: "2026-01-01T11:00:00Z", firstTimestamp: "2026-01-01T10:00:00Z" }))).toBe(NOW - HOUR);
    expect(eventLastSeen(event("b", { lastTimestamp: null, series: { lastObservedTime: "2026-01-01T11:30:00.000000Z" }, eventTime: "2026-01-01T10:00:00.000000Z" }))).toBe(NOW - HOUR / 2);
    expect(eventLastSeen(event("c", { lastTimestamp: null, eventTime: "2026-01-01T10:00:00.000000Z" }))).toBe(NOW - 2 * HOUR);
    expect(eventLastSeen(event("d", {}, "2026-01-01T09:00:00Z"))).toBe(NOW - 3 * HOUR);
    expect(eventLastSeen(event("e", { lastTimestamp: "not a time" }))).toBeUndefined();
  });

  it("selects the events last seen at least the TTL ago, and keeps those without any time", () => {
    const events = [
      event("fresh", { lastTimestamp: "2026-01-01T11:30:00Z" }),
      event("exactly", { lastTimestamp: "2026-01-01T11:00:00Z" }),
      // First seen long ago, seen again recently: kept (the TTL runs from the last sighting).
      event("recurring", { firstTimestamp: "2026-01-01T01:00:00Z", lastTimestamp: "2026-01-01T11:59:00Z" }),
      event("stale", { lastTimestamp: "2025-12-31T12:00:00Z" }),
      event("timeless", {}),
    ];
    expect(expiredEvents(events, NOW, HOUR).map((e) => e.metadata.name)).toEqual(["exactly", "stale"]);
    expect(expiredEvents(events, NOW, 2_000).map((e) => e.metadata.name)).toEqual(["fresh", "exactly", "recurring", "stale"]);
  });
});

describe("delete-marker purge selection", () => {
  const t = (key: string, revision: number, operation: TombstoneCandidate["operation"], agoMs: number): TombstoneCandidate => ({ key, revision, operation, created: NOW - agoMs });

  it("selects keys whose last entry is a delete or purge marker older than the delay, oldest first", () => {
    const entries = [
      t("cm.default.b", 9, "DEL", 10 * 60_000),
      t("cm.default.a", 4, "DEL", 6 * 60_000),
      t("cm.default.live", 7, "PUT", 60 * 60_000),
      t("cm.default.recent", 12, "DEL", 60_000),
      t("cm.default.purged", 3, "PURGE", 60 * 60_000),
    ];
    expect(tombstonesToPurge(entries, NOW, 5 * 60_000).map((e) => [e.key, e.revision])).toEqual([
      ["cm.default.purged", 3],
      ["cm.default.a", 4],
      ["cm.default.b", 9],
    ]);
    expect(tombstonesToPurge(entries, NOW, 0).map((e) => e.key)).toContain("cm.default.recent");
  });

  it("decides by each key's last entry: a key created again after its delete is kept", () => {
    const entries = [t("cm.default.x", 5, "DEL", HOUR), t("cm.default.x", 8, "PUT", HOUR / 2), t("cm.default.y", 6, "PUT", HOUR), t("cm.default.y", 9, "DEL", HOUR / 2)];
    expect(tombstonesToPurge(entries, NOW, 60_000).map((e) => [e.key, e.revision])).toEqual([["cm.default.y", 9]]);
  });
});
