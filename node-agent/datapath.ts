/**
 * The per-node packet engine: a FIFO of (receiver, frame, tracer) deliveries drained in one
 * loop, so a frame crossing veth -> bridge -> host stack -> VTEP is a sequence of queue steps
 * rather than a deep recursion, and an ARP request answered on the same node cannot re-enter a
 * device halfway through its own transmit (the role of Linux's backlog/softirq).
 */
import type { TraceHop } from "../api/types.ts";

export type Receiver = (frame: Uint8Array, tr: Tracer | undefined) => void;
export type Tap = (frame: Uint8Array, direction: "rx" | "tx") => void;

/** Follows one probe packet and reports every hop it meets (kubewire trace). */
export class Tracer {
  constructor(
    readonly id: string,
    readonly node: string,
    private seq: number,
    private readonly sink: (hop: TraceHop) => void,
  ) {}

  hop(point: string, detail: string, verdict?: TraceHop["verdict"]): void {
    const hop: TraceHop = { seq: this.seq++, node: this.node, point, detail };
    if (verdict) hop.verdict = verdict;
    this.sink(hop);
  }

  get nextSeq(): number {
    return this.seq;
  }
}

export class Counters {
  private values = new Map<string, number>();
  inc(name: string, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by);
  }
  get(name: string): number {
    return this.values.get(name) ?? 0;
  }
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.values);
  }
}

export class Datapath {
  private readonly queue: Array<Receiver | Uint8Array | Tracer | undefined> = [];
  private head = 0;
  private draining = false;
  private readonly taps = new Map<string, Set<Tap>>();
  readonly counters = new Counters();

  constructor(
    readonly nodeName: string,
    /** Milliseconds, monotonic; a parameter so tests run on a virtual clock. */
    readonly now: () => number,
  ) {}

  /** Hands `frame` to `to` after everything already queued. */
  send(to: Receiver, frame: Uint8Array, tr: Tracer | undefined): void {
    this.queue.push(to, frame, tr);
    if (!this.draining) this.drain();
  }

  private drain(): void {
    this.draining = true;
    try {
      while (this.head < this.queue.length) {
        const to = this.queue[this.head] as Receiver;
        const frame = this.queue[this.head + 1] as Uint8Array;
        const tr = this.queue[this.head + 2] as Tracer | undefined;
        this.head += 3;
        try {
          to(frame, tr);
        } catch (err) {
          // A bug in one device must not take the node down or wedge the queue: count it.
          this.counters.inc("datapath_errors_total");
          tr?.hop("datapath", `internal error: ${(err as Error).message}`, "dropped");
        }
      }
    } finally {
      this.queue.length = 0;
      this.head = 0;
      this.draining = false;
    }
  }

  addTap(dev: string, tap: Tap): () => void {
    let set = this.taps.get(dev);
    if (!set) this.taps.set(dev, (set = new Set()));
    set.add(tap);
    return () => {
      set.delete(tap);
      if (set.size === 0) this.taps.delete(dev);
    };
  }

  /** Called by devices on every frame they send or receive; free when nothing captures. */
  tap(dev: string, frame: Uint8Array, direction: "rx" | "tx"): void {
    if (this.taps.size === 0) return;
    const set = this.taps.get(dev);
    if (set) for (const t of set) t(frame, direction);
  }
}
