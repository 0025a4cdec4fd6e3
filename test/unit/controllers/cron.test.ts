import { describe, expect, it } from "vitest";
import { matches, mostRecentScheduleTime, nextAfter, parseCron } from "../../../control-plane/controllers/logic/cron.ts";

function ok(expr: string) {
  const r = parseCron(expr);
  if (r.kind !== "ok") throw new Error(r.message);
  return r.value;
}
const at = (s: string) => new Date(s);

describe("parseCron", () => {
  it("parses stars, lists, ranges, steps, names", () => {
    const s = ok("*/15 9-17 * JAN,jul mon-fri");
    expect([...s.minute]).toEqual([0, 15, 30, 45]);
    expect([...s.hour]).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect([...s.month]).toEqual([1, 7]);
    expect([...s.dow]).toEqual([1, 2, 3, 4, 5]);
    expect(s.domStar).toBe(true);
    expect([...ok("5/20 * * * *").minute]).toEqual([5, 25, 45]);
    expect([...ok("0 0 * * 7").dow]).toEqual([0]);
    expect([...ok("@hourly").minute]).toEqual([0]);
  });

  it("rejects bad input", () => {
    for (const bad of ["* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "*/0 * * * *", "a * * * *", "5-1 * * * *", "* * * * * *"]) {
      expect(parseCron(bad).kind, bad).toBe("error");
    }
  });
});

describe("nextAfter / matches", () => {
  it("every minute", () => {
    expect(nextAfter(ok("* * * * *"), at("2026-01-01T00:00:30Z"))?.toISOString()).toBe("2026-01-01T00:01:00.000Z");
    expect(nextAfter(ok("* * * * *"), at("2026-01-01T00:01:00Z"))?.toISOString()).toBe("2026-01-01T00:02:00.000Z");
  });

  it("crosses hours, days, months and years", () => {
    expect(nextAfter(ok("30 2 * * *"), at("2026-01-01T03:00:00Z"))?.toISOString()).toBe("2026-01-02T02:30:00.000Z");
    expect(nextAfter(ok("0 0 1 * *"), at("2026-12-15T00:00:00Z"))?.toISOString()).toBe("2027-01-01T00:00:00.000Z");
    expect(nextAfter(ok("0 0 29 2 *"), at("2026-03-01T00:00:00Z"))?.toISOString()).toBe("2028-02-29T00:00:00.000Z");
  });

  it("day-of-month or day-of-week when both are restricted", () => {
    const s = ok("0 0 13 * 5");
    // 2026-02-06 is a Friday; the 13th comes later.
    expect(nextAfter(s, at("2026-02-01T00:00:00Z"))?.toISOString()).toBe("2026-02-06T00:00:00.000Z");
    expect(matches(s, at("2026-01-13T00:00:00Z"))).toBe(true);
  });

  it("mostRecentScheduleTime counts the times in (earliest, now]", () => {
    const r = mostRecentScheduleTime(ok("*/5 * * * *"), at("2026-01-01T00:00:00Z"), at("2026-01-01T00:17:00Z"));
    expect(r.time?.toISOString()).toBe("2026-01-01T00:15:00.000Z");
    expect(r.missed).toBe(3);
    expect(mostRecentScheduleTime(ok("*/5 * * * *"), at("2026-01-01T00:15:00Z"), at("2026-01-01T00:17:00Z")).time).toBeUndefined();
  });
});
