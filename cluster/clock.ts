/**
 * Time as a parameter (STYLE.md §3): controllers, informers and work queues read the clock and
 * set timers only through a Clock handed to them from the process edge (control-plane/server.ts
 * passes systemClock), so unit tests drive them with a FakeClock and no sleeps.
 */

export interface Clock {
  /** Wall-clock time, for timestamps written into objects (metav1.Time). */
  now(): Date;
  /** Monotonic milliseconds, for durations: heartbeat age, backoff, timeouts. */
  monotonicMs(): number;
  /** Runs `fn` once after `ms` milliseconds; the returned function cancels it. */
  after(ms: number, fn: () => void): () => void;
}

/** The real clock. Only a process's entry point should name it. */
export const systemClock: Clock = {
  now: () => new Date(),
  monotonicMs: () => performance.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** A clock that moves only when told to (gVisor's faketime, client-go's testing clock). */
export class FakeClock implements Clock {
  private ms: number;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  private nextId = 0;

  constructor(
    /** Wall time at monotonic 0. */
    private readonly epoch = new Date("2026-01-01T00:00:00Z"),
    start = 0,
  ) {
    this.ms = start;
  }

  now(): Date {
    return new Date(this.epoch.getTime() + this.ms);
  }

  monotonicMs(): number {
    return this.ms;
  }

  after(ms: number, fn: () => void): () => void {
    const id = this.nextId++;
    this.timers.set(id, { at: this.ms + Math.max(0, ms), fn });
    return () => this.timers.delete(id);
  }

  /** Moves time forward by `ms`, running each timer that falls due, in due order. */
  advance(ms: number): void {
    const end = this.ms + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      this.timers.delete(due[0]);
      this.ms = due[1].at;
      due[1].fn();
    }
    this.ms = end;
  }

  /** Timers not yet run. */
  get pending(): number {
    return this.timers.size;
  }
}
