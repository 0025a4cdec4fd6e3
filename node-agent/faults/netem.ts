/**
 * One fault's impairments on one link, decided per packet in the order Linux's sch_netem
 * applies them in netem_enqueue (net/sched/sch_netem.c), then the bandwidth shaper behind it:
 *
 *   0. partition: everything matched is dropped (Chaos Mesh's `partition` action);
 *   1. duplicate: with probability D the packet counts twice;
 *   2. loss: random (with netem's correlation) or Gilbert-Elliott; a loss takes one count away,
 *      so a duplicated packet that is "lost" still goes out once; none left: dropped;
 *   3. the duplicate re-enters this fault from the top with duplication off (netem enqueues the
 *      clone at the root qdisc with q->duplicate = 0), so it meets loss, corruption and delay
 *      on its own;
 *   4. corrupt: with probability C one random bit of the packet is flipped;
 *   5. limit: a packet finding `limit` packets already held is dropped (netem's default 1000);
 *   6. reorder or delay: a reorder candidate (see reorder.ts) goes at once, others wait
 *      latency +- jitter drawn from the distribution (tabledist; a negative draw waits 0);
 *   7. bandwidth: what netem releases enters a token bucket (tc-tbf), which may hold or drop it.
 *
 * Pure: time comes in as `now` (ms), randomness from the fault's own seeded generator; the link
 * (node-agent/link.ts FaultLink) holds packets until the times returned here.
 */
import { tabledist, type Distribution } from "./distribution.ts";
import { GilbertElliott, RandomLoss, type GilbertElliottParams, type LossModel } from "./loss.ts";
import { CorrelatedRandom, type Rng } from "./random.ts";
import { Reorder } from "./reorder.ts";
import { TokenBucket, type TbfParams } from "./rate.ts";

/** netem's default queue limit (tc-netem(8): `limit packets`, default 1000). */
export const NETEM_DEFAULT_LIMIT = 1000;

export interface NetemParams {
  partition?: boolean;
  /** Probabilities in [0, 1], times in ms. */
  delay?: { latencyMs: number; jitterMs: number; correlation: number; distribution: Distribution };
  reorder?: { probability: number; correlation: number; gap: number };
  loss?: { kind: "random"; probability: number; correlation: number } | ({ kind: "gemodel" } & GilbertElliottParams);
  duplicate?: { probability: number; correlation: number };
  corrupt?: { probability: number; correlation: number };
  bandwidth?: TbfParams;
  /** Packets held at once (default NETEM_DEFAULT_LIMIT). */
  limit?: number;
}

/** What a fault did, cumulative: what `status.nodes[]` of a NetworkChaos shows. */
export interface FaultCounters {
  /** Packets the fault saw (matched), duplicates included. */
  packets: number;
  delayed: number;
  dropped: number;
  duplicated: number;
  corrupted: number;
  reordered: number;
}

export const FAULT_COUNTERS = ["packets", "delayed", "dropped", "duplicated", "corrupted", "reordered"] as const;

export function zeroCounters(): FaultCounters {
  return { packets: 0, delayed: 0, dropped: 0, duplicated: 0, corrupted: 0, reordered: 0 };
}

export type DropCause = "partition" | "loss" | "limit" | "bandwidth";

export type NetemVerdict =
  | { kind: "drop"; cause: DropCause }
  | {
      kind: "send";
      /** When the packet leaves netem (== now: at once). */
      at: number;
      corrupt: boolean;
      /** Send a copy too, which goes through `enqueue(now, false)` itself. */
      duplicate: boolean;
      reordered: boolean;
    };

export class Netem {
  readonly counters: FaultCounters;
  private readonly loss: LossModel | undefined;
  private readonly reorder: Reorder | undefined;
  private readonly delayCor: CorrelatedRandom;
  private readonly dupCor: CorrelatedRandom;
  private readonly corruptCor: CorrelatedRandom;
  private readonly tbf: TokenBucket | undefined;
  private held = 0;

  constructor(
    readonly params: NetemParams,
    readonly rng: Rng,
    counters: FaultCounters = zeroCounters(),
  ) {
    this.counters = counters;
    const l = params.loss;
    this.loss = l === undefined ? undefined : l.kind === "random" ? new RandomLoss(l.probability, l.correlation) : new GilbertElliott(l);
    this.reorder = params.reorder && params.delay ? new Reorder(params.reorder.probability, params.reorder.gap, params.reorder.correlation) : undefined;
    this.delayCor = new CorrelatedRandom(params.delay?.correlation ?? 0);
    this.dupCor = new CorrelatedRandom(params.duplicate?.correlation ?? 0);
    this.corruptCor = new CorrelatedRandom(params.corrupt?.correlation ?? 0);
    this.tbf = params.bandwidth ? new TokenBucket(params.bandwidth) : undefined;
  }

  /** Whether a packet released by netem goes on through the bandwidth shaper. */
  get shapes(): boolean {
    return this.tbf !== undefined;
  }

  /** Steps 0-6 for one packet arriving at `now`; `duplicateAllowed` is false for a duplicate. */
  enqueue(now: number, duplicateAllowed = true): NetemVerdict {
    const p = this.params;
    const c = this.counters;
    c.packets++;
    if (p.partition) return this.dropped("partition");
    let count = 1;
    const d = p.duplicate;
    if (duplicateAllowed && d !== undefined && d.probability > 0 && this.dupCor.next(this.rng) < d.probability) count++;
    if (this.loss?.lost(this.rng)) count--;
    if (count === 0) return this.dropped("loss");
    const duplicate = count > 1;
    if (duplicate) c.duplicated++;
    const k = p.corrupt;
    const corrupt = k !== undefined && k.probability > 0 && this.corruptCor.next(this.rng) < k.probability;
    if (corrupt) c.corrupted++;
    if (this.held >= (p.limit ?? NETEM_DEFAULT_LIMIT)) return this.dropped("limit");
    if (this.reorder?.sendNow(this.rng)) {
      c.reordered++;
      return { kind: "send", at: now, corrupt, duplicate, reordered: true };
    }
    const del = p.delay;
    const wait = del === undefined ? 0 : Math.max(0, tabledist(del.latencyMs, del.jitterMs, this.delayCor.next(this.rng), del.distribution));
    if (wait > 0) {
      c.delayed++;
      this.held++;
    }
    return { kind: "send", at: now + wait, corrupt, duplicate, reordered: false };
  }

  /** A packet `enqueue` held (at > now) has left. */
  release(): void {
    if (this.held > 0) this.held--;
  }

  /** Step 7: a packet of `len` bytes leaving netem at `now` meets the token bucket. */
  shape(now: number, len: number): { kind: "send"; at: number } | { kind: "drop"; cause: DropCause } {
    if (!this.tbf) return { kind: "send", at: now };
    const v = this.tbf.enqueue(now, len);
    if (v.kind === "drop") return this.dropped("bandwidth");
    if (v.at > now) this.counters.delayed++;
    return v;
  }

  private dropped(cause: DropCause): { kind: "drop"; cause: DropCause } {
    this.counters.dropped++;
    return { kind: "drop", cause };
  }
}

/** Which byte and bit of a `len`-byte packet a corruption flips (netem: skb->data[rnd % headlen] ^= 1 << rnd % 8). */
export function corruptionPoint(len: number, rng: Rng): { byte: number; bit: number } {
  return { byte: Math.floor(rng() * len), bit: Math.floor(rng() * 8) };
}
