import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LoadRecorder, decodeHistogram, encodeHistogram, mergeEncoded, newHistogram, toMicros } from "../../../node-agent/load/stats.ts";

describe("load statistics", () => {
  it("merging encoded histograms is exact: the same as one histogram of every value", () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: 1, max: 5_000_000 }), { maxLength: 200 }), { minLength: 1, maxLength: 6 }), (parts) => {
        const whole = newHistogram();
        const encoded = parts.map((values) => {
          const h = newHistogram();
          for (const v of values) {
            h.recordValue(v);
            whole.recordValue(v);
          }
          return encodeHistogram(h);
        });
        const { histogram, bad } = mergeEncoded(encoded);
        expect(bad).toBe(0);
        expect(histogram.totalCount).toBe(whole.totalCount);
        // Every bucket's count is the same (the encoding is the counts); a shipped histogram keeps
        // values to its precision (3 digits), so percentiles agree with the whole's shipped form.
        expect(encodeHistogram(histogram)).toBe(encodeHistogram(whole));
        const shipped = decodeHistogram(encodeHistogram(whole))!;
        for (const p of [50, 90, 99, 99.9, 100]) expect(histogram.getValueAtPercentile(p)).toBe(shipped.getValueAtPercentile(p));
        expect(Math.abs(histogram.maxValue - whole.maxValue)).toBeLessThanOrEqual(whole.maxValue / 1000);
      }),
      { numRuns: 40 },
    );
  });

  it("a text that is not an encoded histogram is counted, not thrown", () => {
    expect(decodeHistogram("not a histogram")).toBeUndefined();
    expect(mergeEncoded(["???", encodeHistogram(newHistogram())]).bad).toBe(1);
  });

  it("records by endpoint; an interval's totals start over when taken", () => {
    const r = new LoadRecorder();
    r.connected("10.244.1.2", 0.4);
    r.ok("10.244.1.2", 1.5, 100, 200);
    r.ok("10.244.2.2", 3, 100, 200);
    r.error("10.244.2.2", "timeout");
    r.error("10.244.2.2", "timeout");
    const i = r.takeInterval();
    expect(i).toMatchObject({ requests: 2, errors: 2, bytesSent: 200, bytesReceived: 400 });
    expect(decodeHistogram(i.latency)!.totalCount).toBe(2);
    expect(r.takeInterval()).toMatchObject({ requests: 0, errors: 0 });
    const results = r.results();
    expect(results.map((e) => [e.endpoint, e.requests, e.errors, e.connects])).toEqual([
      ["10.244.1.2", 1, {}, 1],
      ["10.244.2.2", 1, { timeout: 2 }, 0],
    ]);
    expect(decodeHistogram(results[0]!.latency)!.maxValue).toBe(toMicros(1.5));
  });

  it("microseconds, at least 1 (HdrHistogram's lowest value)", () => {
    expect(toMicros(0)).toBe(1);
    expect(toMicros(1.2344)).toBe(1234);
  });
});
