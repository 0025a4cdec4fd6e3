/**
 * A token bucket filter in front of a FIFO, as tc-tbf(8) shapes (and Chaos Mesh's `bandwidth`
 * action installs): tokens accrue at `rate` up to `buffer` bytes; a packet leaves when the bucket
 * holds its length; packets waiting for tokens queue behind each other up to `limit` bytes, and
 * a packet that would overflow the queue is dropped. Pure arithmetic on `now`: the caller holds
 * each packet until the departure time returned here.
 */

export interface TbfParams {
  /** Bytes per second. */
  rateBytesPerSec: number;
  /** The bucket's depth in bytes (tc's buffer/burst): how much may leave at once. */
  bufferBytes: number;
  /** Bytes that may wait for tokens (tc's limit). */
  limitBytes: number;
}

export type TbfVerdict = { kind: "send"; at: number } | { kind: "drop" };

export class TokenBucket {
  /** Tokens at `at`; negative while packets wait (the bytes owed by the queue). */
  private tokens: number;
  private at: number | undefined;

  constructor(readonly params: TbfParams) {
    this.tokens = params.bufferBytes;
  }

  /** Bytes waiting for tokens at `now`. */
  backlog(now: number): number {
    return Math.max(0, -this.tokensAt(now));
  }

  private tokensAt(now: number): number {
    if (this.at === undefined) return this.tokens;
    const refill = (Math.max(0, now - this.at) * this.params.rateBytesPerSec) / 1000;
    return Math.min(this.params.bufferBytes, this.tokens + refill);
  }

  /** A packet of `len` bytes arriving at `now` (ms): when it leaves, or that the queue is full. */
  enqueue(now: number, len: number): TbfVerdict {
    const tokens = this.tokensAt(now);
    const after = tokens - len;
    // The bytes that would be waiting once this packet is queued.
    if (after < 0 && -after > this.params.limitBytes) {
      this.tokens = tokens;
      this.at = Math.max(now, this.at ?? now);
      return { kind: "drop" };
    }
    this.tokens = after;
    this.at = Math.max(now, this.at ?? now);
    // FIFO: the packet leaves once the debt up to and including it is paid back.
    return { kind: "send", at: after >= 0 ? now : now + (-after * 1000) / this.params.rateBytesPerSec };
  }
}
