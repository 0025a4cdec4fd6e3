/**
 * The impairments' statistics on a seeded generator (node-agent/faults/): delay distributions,
 * random and Gilbert-Elliott loss, netem's reorder gap, the token bucket, and netem's order of
 * operations. Each figure is the model's own (tc-netem(8), sch_netem.c, iproute2's tables).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TABLE_MAX, normalQuantile, tabledist, tableValue, type Distribution } from "../../../node-agent/faults/distribution.ts";
import { GilbertElliott, RandomLoss } from "../../../node-agent/faults/loss.ts";
import { Netem } from "../../../node-agent/faults/netem.ts";
import { CorrelatedRandom, seededRng } from "../../../node-agent/faults/random.ts";
import { TokenBucket } from "../../../node-agent/faults/rate.ts";
import { Reorder } from "../../../node-agent/faults/reorder.ts";

const min = (xs: number[]) => xs.reduce((a, b) => Math.min(a, b), Infinity);
const max = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), -Infinity);

function stats(xs: number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
  return { mean, sd };
}

/** The distribution's moments by integrating its quantile function (midpoint rule), independent of any generator. */
function moments(dist: Distribution): { mean: number; sd: number } {
  const n = 2_000_000;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const t = tableValue(dist, (i + 0.5) / n);
    s += t;
    s2 += t * t;
  }
  const mean = s / n;
  return { mean, sd: Math.sqrt(s2 / n - mean * mean) };
}

describe("delay distributions (netem tabledist)", () => {
  const N = 200_000;
  const mu = 50;
  const sigma = 10;
  it("uniform: latency +- jitter, mean mu, sd sigma / sqrt 3, never outside", () => {
    const rng = seededRng(1);
    const xs = Array.from({ length: N }, () => tabledist(mu, sigma, rng(), "uniform"));
    const s = stats(xs);
    expect(s.mean).toBeCloseTo(mu, 1);
    expect(s.sd).toBeCloseTo(sigma / Math.sqrt(3), 1);
    expect(min(xs)).toBeGreaterThanOrEqual(mu - sigma);
    expect(max(xs)).toBeLessThan(mu + sigma);
  });

  it("normal: mean mu, sd sigma (normal.c's table is the normal quantile)", () => {
    const rng = seededRng(2);
    const s = stats(Array.from({ length: N }, () => tabledist(mu, sigma, rng(), "normal")));
    expect(Math.abs(s.mean - mu)).toBeLessThan(0.1);
    expect(Math.abs(s.sd - sigma)).toBeLessThan(0.1);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
  });

  for (const dist of ["pareto", "paretonormal"] as const) {
    it(`${dist}: the samples' mean and sd are the table's (mean ~0, heavy right tail clipped at ${TABLE_MAX.toFixed(2)} sigma)`, () => {
      const m = moments(dist);
      // pareto.c: a = 3, shifted by its mean 1.5 and scaled by 4/3: mean 0 before the clip.
      expect(Math.abs(m.mean)).toBeLessThan(0.05);
      const rng = seededRng(3);
      const xs = Array.from({ length: N }, () => tabledist(mu, sigma, rng(), dist));
      const s = stats(xs);
      expect(Math.abs(s.mean - (mu + sigma * m.mean))).toBeLessThan(0.1);
      expect(Math.abs(s.sd - sigma * m.sd)).toBeLessThan(0.15);
      expect(max(xs)).toBeLessThanOrEqual(mu + sigma * TABLE_MAX + 1e-9);
      // Right-skewed: the median lies below the mean.
      xs.sort((a, b) => a - b);
      expect(xs[N / 2]!).toBeLessThan(s.mean);
    });
  }

  it("every distribution stays within the table's range, for any u", () => {
    fc.assert(
      fc.property(fc.constantFrom<Distribution>("uniform", "normal", "pareto", "paretonormal"), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (dist, u) => {
        const t = tableValue(dist, u);
        return Number.isFinite(t) && Math.abs(t) <= TABLE_MAX + 1e-12;
      }),
    );
  });

  it("correlation: consecutive delays depend on each other (netem's get_crandom), the mean stays", () => {
    const rng = seededRng(4);
    const cor = new CorrelatedRandom(0.75);
    const xs = Array.from({ length: N }, () => tabledist(mu, sigma, cor.next(rng), "uniform"));
    const s = stats(xs);
    let c = 0;
    for (let i = 1; i < N; i++) c += (xs[i]! - s.mean) * (xs[i - 1]! - s.mean);
    expect(c / (N - 1) / (s.sd * s.sd)).toBeCloseTo(0.75, 1);
    expect(s.mean).toBeCloseTo(mu, 0);
  });
});

describe("loss", () => {
  it("random loss: the rate is P", () => {
    const rng = seededRng(5);
    const loss = new RandomLoss(0.1);
    let lost = 0;
    for (let i = 0; i < 100_000; i++) if (loss.lost(rng)) lost++;
    expect(lost / 100_000).toBeCloseTo(0.1, 2);
  });

  it("Gilbert-Elliott (1-h 100 %, 1-k 0 %): loss rate p / (p + r), bursts of mean length 1 / r", () => {
    const rng = seededRng(6);
    const p = 0.02;
    const r = 0.25;
    const ge = new GilbertElliott({ p, r, lossBad: 1, lossGood: 0 });
    const N = 400_000;
    let lost = 0;
    const bursts: number[] = [];
    let run = 0;
    for (let i = 0; i < N; i++) {
      if (ge.lost(rng)) {
        lost++;
        run++;
      } else if (run > 0) {
        bursts.push(run);
        run = 0;
      }
    }
    expect(lost / N).toBeCloseTo(p / (p + r), 2);
    expect(stats(bursts).mean).toBeCloseTo(1 / r, 1);
    // Bursty: far more runs of 3+ losses than independent loss at the same rate would give.
    const rate = lost / N;
    expect(bursts.filter((b) => b >= 3).length / bursts.length).toBeGreaterThan(10 * rate * rate);
  });

  it("Gilbert-Elliott with loss in the good state too (1-k)", () => {
    const rng = seededRng(7);
    const ge = new GilbertElliott({ p: 0.01, r: 0.5, lossBad: 0.5, lossGood: 0.01 });
    let lost = 0;
    const N = 400_000;
    for (let i = 0; i < N; i++) if (ge.lost(rng)) lost++;
    const piBad = 0.01 / (0.01 + 0.5);
    expect(lost / N).toBeCloseTo(piBad * 0.5 + (1 - piBad) * 0.01, 2);
  });
});

describe("reorder gap (netem `reorder P gap N`)", () => {
  it("with P 100 % every N-th packet goes at once", () => {
    const rng = seededRng(8);
    const r = new Reorder(1, 5);
    const now = Array.from({ length: 20 }, () => r.sendNow(rng));
    expect(now.map((x, i) => (x ? i + 1 : 0)).filter(Boolean)).toEqual([5, 10, 15, 20]);
  });

  it("with P < 100 % the spacing between reordered packets is gap - 1 + 1/P on average", () => {
    const rng = seededRng(9);
    const r = new Reorder(0.25, 5);
    const at: number[] = [];
    for (let i = 0; i < 200_000; i++) if (r.sendNow(rng)) at.push(i);
    const spacing = (at[at.length - 1]! - at[0]!) / (at.length - 1);
    expect(spacing).toBeCloseTo(4 + 4, 0);
  });

  it("gap 1: P of the packets", () => {
    const rng = seededRng(10);
    const r = new Reorder(0.3, 1);
    let n = 0;
    for (let i = 0; i < 100_000; i++) if (r.sendNow(rng)) n++;
    expect(n / 100_000).toBeCloseTo(0.3, 2);
  });
});

describe("token bucket (tc-tbf)", () => {
  it("a burst up to the buffer leaves at once, then packets leave at the rate, in order", () => {
    const tbf = new TokenBucket({ rateBytesPerSec: 100_000, bufferBytes: 3000, limitBytes: 100_000 });
    const at = Array.from({ length: 10 }, () => tbf.enqueue(0, 1000)).map((v) => (v.kind === "send" ? v.at : -1));
    expect(at.slice(0, 3)).toEqual([0, 0, 0]);
    // 1000 bytes at 100 kB/s: 10 ms each.
    expect(at.slice(3)).toEqual([10, 20, 30, 40, 50, 60, 70]);
  });

  it("a queue beyond limit drops; the long-run throughput is the rate", () => {
    fc.assert(
      fc.property(fc.integer({ min: 10_000, max: 1_000_000 }), fc.integer({ min: 1500, max: 20_000 }), fc.integer({ min: 1500, max: 50_000 }), (rate, buffer, limit) => {
        const tbf = new TokenBucket({ rateBytesPerSec: rate, bufferBytes: buffer, limitBytes: limit });
        let sent = 0;
        let last = 0;
        // Offered: 1500-byte packets at 4x the rate for 2 s.
        const gap = (1500 * 1000) / (4 * rate);
        for (let t = 0; t < 2000; t += gap) {
          const v = tbf.enqueue(t, 1500);
          if (v.kind === "send") {
            expect(v.at).toBeGreaterThanOrEqual(last);
            last = v.at;
            sent += 1500;
            expect(tbf.backlog(t)).toBeLessThanOrEqual(limit);
          }
        }
        // Everything accepted leaves by `last`: at most rate * time + buffer.
        expect(sent).toBeLessThanOrEqual((rate * last) / 1000 + buffer + 1e-6);
        expect(sent).toBeGreaterThanOrEqual((rate * 2000) / 1000 - 1500);
      }),
      { numRuns: 50 },
    );
  });
});

describe("netem order of operations", () => {
  it("a partition drops everything", () => {
    const n = new Netem({ partition: true, delay: { latencyMs: 10, jitterMs: 0, correlation: 0, distribution: "uniform" } }, seededRng(11));
    for (let i = 0; i < 10; i++) expect(n.enqueue(i).kind).toBe("drop");
    expect(n.counters).toMatchObject({ packets: 10, dropped: 10, delayed: 0 });
  });

  it("duplicate then loss: a duplicated packet that is lost still goes out once; duplicates are never duplicated again", () => {
    const n = new Netem({ duplicate: { probability: 1, correlation: 0 }, loss: { kind: "random", probability: 1, correlation: 0 } }, seededRng(12));
    const v = n.enqueue(0);
    expect(v).toMatchObject({ kind: "send", duplicate: false });
    const d = new Netem({ duplicate: { probability: 1, correlation: 0 } }, seededRng(12));
    expect(d.enqueue(0)).toMatchObject({ kind: "send", duplicate: true });
    expect(d.enqueue(0, false)).toMatchObject({ kind: "send", duplicate: false });
  });

  it("the limit drops once that many packets are held", () => {
    const n = new Netem({ delay: { latencyMs: 10, jitterMs: 0, correlation: 0, distribution: "uniform" }, limit: 3 }, seededRng(13));
    expect([0, 1, 2, 3].map(() => n.enqueue(0).kind)).toEqual(["send", "send", "send", "drop"]);
    n.release();
    expect(n.enqueue(0).kind).toBe("send");
  });

  it("counts what it did: delayed, reordered, corrupted, duplicated, dropped", () => {
    const n = new Netem(
      {
        delay: { latencyMs: 50, jitterMs: 10, correlation: 0, distribution: "normal" },
        reorder: { probability: 0.25, correlation: 0, gap: 5 },
        loss: { kind: "random", probability: 0.1, correlation: 0 },
        duplicate: { probability: 0.05, correlation: 0 },
        corrupt: { probability: 0.02, correlation: 0 },
        limit: 1_000_000,
      },
      seededRng(14),
    );
    const N = 100_000;
    for (let i = 0; i < N; i++) n.enqueue(i);
    const c = n.counters;
    expect(c.packets).toBe(N);
    expect(c.dropped / N).toBeCloseTo(0.1 * (1 - 0.05), 2);
    expect(c.duplicated / N).toBeCloseTo(0.05 * 0.9, 2);
    expect(c.corrupted / (N - c.dropped)).toBeCloseTo(0.02, 2);
    expect(c.reordered / (N - c.dropped)).toBeCloseTo(1 / 8, 2);
    expect(c.delayed + c.reordered + c.dropped).toBe(N);
  });

  it("the same seed gives the same decisions", () => {
    const params = { loss: { kind: "random" as const, probability: 0.3, correlation: 0.25 }, delay: { latencyMs: 5, jitterMs: 5, correlation: 0.5, distribution: "pareto" as const } };
    const run = () => {
      const n = new Netem(params, seededRng(42));
      return Array.from({ length: 1000 }, (_, i) => JSON.stringify(n.enqueue(i)));
    };
    expect(run()).toEqual(run());
  });
});
