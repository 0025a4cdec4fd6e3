import { describe, expect, it } from "vitest";
import type { LoadEndpointStats, LoadSnapshot } from "../../../cluster/types.ts";
import { parseThreshold, type Threshold } from "../../../cli/load-args.ts";
import { Progress, buildReport, exitCodeOf, formatJson, formatReport } from "../../../cli/load-report.ts";
import { encodeHistogram, newHistogram } from "../../../node-agent/load/stats.ts";

function hist(...ms: number[]): string {
  const h = newHistogram();
  for (const v of ms) h.recordValue(Math.round(v * 1000));
  return encodeHistogram(h);
}

function endpoint(endpoint: string, latenciesMs: number[], errors: Record<string, number> = {}): LoadEndpointStats {
  return { endpoint, requests: latenciesMs.length, errors, bytesSent: latenciesMs.length * 100, bytesReceived: latenciesMs.length * 200, connects: 1, latency: hist(...latenciesMs), connectLatency: hist(0.5) };
}

function final(worker: string, node: string, intended: number, sent: number, endpoints: LoadEndpointStats[]): LoadSnapshot {
  return { kind: "final", runId: "r", worker, node, seq: 3, elapsedMs: 2000, intended, sent, interval: { requests: 0, errors: 0, bytesSent: 0, bytesReceived: 0, latency: "" }, endpoints };
}

const NODE_OF: Record<string, string> = { "10.244.0.2": "node-1", "10.244.1.2": "node-2" };
const thresholds = (...t: string[]): Threshold[] => t.map((s) => {
  const p = parseThreshold(s);
  if (p.kind !== "ok") throw new Error(p.message);
  return p.value;
});

function report(th: Threshold[] = []) {
  // 2 s at 50 req/s: 100 due; node-1's client sent 50 (49 answered, 1 timeout), node-2's sent 48.
  const ones = Array.from({ length: 48 }, () => 1);
  return buildReport({
    scenario: "http",
    target: "svc/web (10.96.0.2:80)",
    rate: 50,
    durationMs: 2000,
    connections: 4,
    clients: [{ worker: "node-1/c1", node: "node-1" }, { worker: "node-2/c2", node: "node-2" }],
    finals: [
      final("node-1/c1", "node-1", 50, 50, [endpoint("10.244.0.2", [1, 2, 3, 100]), endpoint("10.244.1.2", [...ones.slice(0, 45)], { timeout: 1 })]),
      final("node-2/c2", "node-2", 50, 48, [endpoint("10.244.1.2", ones)]),
    ],
    serverOf: (ip) => NODE_OF[ip] ?? ip,
    thresholds: th,
  });
}

describe("load report", () => {
  it("adds the clients' histograms and counts, by node pair, rates over the run", () => {
    const r = report();
    expect(r).toMatchObject({ mode: "open", intended: 100, sent: 98, requests: 97, errors: 1, errorsByKind: { timeout: 1 }, achievedRate: 49, rps: 48.5, bytesSent: 9700, bytesReceived: 19400, sentPerSecond: 4850 });
    expect(r.latency.count).toBe(97);
    expect(r.latency.max).toBeCloseTo(100, 0);
    expect(r.latency.p50).toBeCloseTo(1, 2);
    expect(r.connect.count).toBe(3);
    expect(r.pairs.map((p) => [p.client, p.server, p.requests, p.errors])).toEqual([
      ["node-1", "node-1", 4, 0],
      ["node-1", "node-2", 45, 1],
      ["node-2", "node-2", 48, 0],
    ]);
    expect(r.pairs[0]!.latency.p99).toBeCloseTo(100, 0);
    expect(r.problems).toEqual([]);
    expect(exitCodeOf(r)).toBe(0);
  });

  it("thresholds judge the whole run; a failing one makes exit code 99", () => {
    const r = report(thresholds("p99<50ms", "errors<2%", "rate>=0.99", "rps>=40", "max<=1s"));
    expect(r.thresholds.map((t) => [t.threshold, t.ok])).toEqual([
      ["p99<50ms", false],
      ["errors<2%", true],
      ["rate>=0.99", false],
      ["rps>=40", true],
      ["max<=1s", true],
    ]);
    expect(r.thresholds[2]!.actual).toBeCloseTo(0.98);
    expect(exitCodeOf(r)).toBe(99);
    expect(JSON.parse(formatJson(r)).exitCode).toBe(99);
  });

  it("a client without a result is a problem (exit 1), not a silent gap", () => {
    const r = buildReport({ scenario: "udp-rr", target: "x", rate: 0, durationMs: 1000, connections: 1, clients: [{ worker: "node-3/c", node: "node-3" }], finals: [], serverOf: (x) => x, thresholds: [] });
    expect(r.problems).toEqual(["client node-3/c on node-3 sent no result"]);
    expect(exitCodeOf(r)).toBe(1);
    expect(formatReport(r)).toContain("warning: client node-3/c on node-3 sent no result");
  });

  it("the text report", () => {
    const text = formatReport(report(thresholds("p99<50ms", "errors<2%")));
    expect(text).toContain("open loop at 50.0 req/s: latency from each request's intended send time (corrected for coordinated omission)");
    expect(text).toContain("requests     98 sent, 97 answered, 1 failed");
    expect(text).toContain("rate         49.0 req/s sent of 50.0 intended (98.0%); 2 due but not sent");
    expect(text).toMatch(/latency {6}p50 1\.00 ms {2}p90 1\.00 ms {2}p99 \S+ ms {2}p99\.9 100 ms {2}max 100 ms {2}\(97 answers\)/);
    expect(text).toContain("errors       timeout 1");
    expect(text).toMatch(/node-1 {7}-> node-2 +45 +22\.5 .* 1 \(timeout 1\)/);
    expect(text).toMatch(/FAIL {2}p99<50ms {2}\(p99 = 100 ms\)/);
    expect(text).toMatch(/ok {4}errors<2% {2}\(errors = 1\.02%\)/);
  });
});

describe("progress line", () => {
  const snap = (worker: string, seq: number, sent: number, requests: number, ...ms: number[]): LoadSnapshot => ({ kind: "interval", runId: "r", worker, node: "n", seq, elapsedMs: (seq + 1) * 1000, intended: sent, sent, interval: { requests, errors: 0, bytesSent: 0, bytesReceived: 0, latency: hist(...ms) } });
  it("shows the newest interval every client has reported, with its p99 from the added histograms", () => {
    const p = new Progress(4000, 1000, 2, 100);
    expect(p.line(500, false)).toBe("0.5/4.0 s  0 sent, 0 answered, 0 failed");
    p.add(snap("a", 0, 50, 50, 1, 2));
    expect(p.line(1000, false)).toBe("1.0/4.0 s  50 sent, 50 answered, 0 failed");
    p.add(snap("b", 0, 50, 48, 30));
    expect(p.line(1100, false)).toBe("1.1/4.0 s  100 sent, 98 answered, 0 failed  now 98 req/s of 100, p99 30.0 ms");
    expect(p.line(2000, true, 8)).toBe("[####----] 2.0/4.0 s  100 sent, 98 answered, 0 failed  now 98 req/s of 100, p99 30.0 ms");
  });
});
