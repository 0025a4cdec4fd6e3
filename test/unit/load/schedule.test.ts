import { describe, expect, it } from "vitest";
import { ConnectionSchedule, intendedRequests, loadMode, nextSend, requestLatency, schedules } from "../../../node-agent/load/schedule.ts";

describe("open-loop schedule (wrk2)", () => {
  it("spreads a run's requests evenly: connection i of n sends at start + (i + k*n)/rate", () => {
    const all = schedules(1000, 4, 100); // one request every 10 ms over 4 connections
    const times = all.flatMap((s) => [0, 1, 2].map((k) => s.intendedAt(k))).sort((a, b) => a - b);
    expect(times).toEqual(Array.from({ length: 12 }, (_, j) => 1000 + j * 10));
    expect(all[1]!.periodMs).toBe(40);
    expect(all[1]!.phaseMs).toBe(10);
  });

  it("counts the requests due before a time, per connection and over the run", () => {
    const s = new ConnectionSchedule(0, 0, 1, 10);
    expect([0, 0.1, 100, 100.1, 1000].map((t) => s.dueBefore(t))).toEqual([0, 1, 1, 2, 10]);
    const all = schedules(0, 3, 30);
    expect(all.reduce((n, c) => n + c.dueBefore(1000), 0)).toBe(intendedRequests(30, 1000));
    expect(intendedRequests(60, 3000)).toBe(180);
    expect(intendedRequests(0, 3000)).toBe(0);
  });

  it("next send: wait until due, send when due or late (behind schedule), done at the run's end", () => {
    const s = new ConnectionSchedule(0, 0, 1, 10);
    expect(nextSend(s, 1, 40, 1000)).toEqual({ kind: "wait", ms: 60, intended: 100 });
    expect(nextSend(s, 1, 100, 1000)).toEqual({ kind: "send", intended: 100 });
    expect(nextSend(s, 1, 750, 1000)).toEqual({ kind: "send", intended: 100 });
    expect(nextSend(s, 10, 990, 1000)).toEqual({ kind: "done" });
  });

  it("corrects for coordinated omission: an open-loop request's latency runs from its intended time", () => {
    // Request due at 100, sent at 1000 (the connection was stuck behind a 1 s stall), answered at 1001.
    expect(requestLatency(loadMode(10), 100, 1000, 1001)).toBe(901);
    // A closed loop has no intended time: service time only.
    expect(requestLatency(loadMode(0), 100, 1000, 1001)).toBe(1);
    // A timer that fires a hair early does not make the latency shorter than since the send.
    expect(requestLatency(loadMode(10), 100, 99.5, 101)).toBe(1.5);
  });

  it("refuses a schedule that cannot exist", () => {
    expect(() => new ConnectionSchedule(0, 2, 2, 10)).toThrow(RangeError);
    expect(() => new ConnectionSchedule(0, 0, 1, 0)).toThrow(RangeError);
  });
});
