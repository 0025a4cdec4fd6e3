/**
 * netem's reordering (net/sched/sch_netem.c netem_enqueue; tc-netem(8) `reorder P [CORR] gap N`):
 * packets are delayed as usual, except that once `gap - 1` packets have gone through the delay
 * since the last reordered one, the next is, with probability P, sent at once (to the head of
 * the queue), overtaking those still delayed. tc sets gap 1 when none is given (every packet
 * is a candidate) and refuses reordering without a delay.
 */
import { CorrelatedRandom, type Rng } from "./random.ts";

export class Reorder {
  private counter = 0;
  private readonly cor: CorrelatedRandom;
  constructor(
    readonly probability: number,
    readonly gap: number,
    correlation = 0,
  ) {
    this.cor = new CorrelatedRandom(correlation);
  }

  /** Whether this packet skips the delay (is reordered ahead of the delayed ones). */
  sendNow(rng: Rng): boolean {
    // netem: `if (q->gap == 0 || q->counter < q->gap - 1 || q->reorder < get_crandom(...))` delays.
    if (this.gap === 0 || this.counter < this.gap - 1 || this.probability < this.cor.next(rng)) {
      this.counter++;
      return false;
    }
    this.counter = 0;
    return true;
  }
}
