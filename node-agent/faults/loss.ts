/**
 * netem's loss generators (net/sched/sch_netem.c loss_event): random loss with netem's
 * correlation, and the Gilbert-Elliott model (loss_gilb_ell; tc-netem(8) `loss gemodel p r 1-h 1-k`).
 */
import { CorrelatedRandom, type Rng } from "./random.ts";

export interface LossModel {
  /** Whether the next packet is lost. */
  lost(rng: Rng): boolean;
}

/** `loss random P [CORRELATION]`: lost when the (correlated) uniform falls under P. */
export class RandomLoss implements LossModel {
  private readonly cor: CorrelatedRandom;
  constructor(
    readonly probability: number,
    correlation = 0,
  ) {
    this.cor = new CorrelatedRandom(correlation);
  }
  lost(rng: Rng): boolean {
    return this.probability > 0 && this.cor.next(rng) < this.probability;
  }
}

export interface GilbertElliottParams {
  /** P(good -> bad) per packet. */
  p: number;
  /** P(bad -> good) per packet. */
  r: number;
  /** tc's 1-h: the loss probability in the bad state. */
  lossBad: number;
  /** tc's 1-k: the loss probability in the good state. */
  lossGood: number;
}

/**
 * Gilbert-Elliott as loss_gilb_ell runs it: per packet, one draw decides the state transition
 * and a second whether the packet is lost, with the loss probability of the state the packet
 * found the channel in (the transition takes effect for the next packet). With lossBad 1 and
 * lossGood 0 (Gilbert's special case) bursts of losses have a geometric length of mean 1/r and
 * the long-run loss rate is p / (p + r).
 */
export class GilbertElliott implements LossModel {
  bad = false;
  constructor(readonly params: GilbertElliottParams) {}
  lost(rng: Rng): boolean {
    const wasBad = this.bad;
    if (wasBad) {
      if (rng() < this.params.r) this.bad = false;
      return rng() < this.params.lossBad;
    }
    if (rng() < this.params.p) this.bad = true;
    return rng() < this.params.lossGood;
  }
}
