/**
 * Randomness for the impairments: a small seeded generator per fault, so a NetworkChaos with a
 * seed replays the same decisions for the same packet sequence (STYLE.md §3: randomness is a
 * parameter), and netem's correlated generator.
 */

import { fnv1a32String } from "../../cluster/hash.ts";

/** Uniform in [0, 1). */
export type Rng = () => number;

/** mulberry32: 32 bits of state, fast, good enough for emulated impairments (not for keys). */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit seed from parts (FNV-1a over their text): one fault's seed, its node and its link. */
export function seedFrom(...parts: ReadonlyArray<string | number>): number {
  return fnv1a32String(parts.join("\u0000"));
}

/**
 * netem's get_crandom (net/sched/sch_netem.c): next = (1 - rho) * uniform + rho * last. With
 * rho 0 it is the plain generator. As in netem, the correlation narrows the distribution
 * around 0.5 (its known weakness, why tc-netem(8) points at the gemodel for bursty loss).
 */
export class CorrelatedRandom {
  private last: number | undefined;
  constructor(readonly rho: number) {}

  next(rng: Rng): number {
    if (this.rho === 0) return rng();
    // init_crandom seeds `last` with a random value.
    if (this.last === undefined) this.last = rng();
    const v = rng();
    this.last = v * (1 - this.rho) + this.last * this.rho;
    return this.last;
  }
}
