/**
 * The per-node packet engine: a FIFO of (receiver, packet) steps drained in one loop, so a
 * frame crossing veth -> bridge -> root netns -> VTEP is a sequence of queue steps rather than
 * a deep recursion, and an ARP request answered on the same node cannot re-enter a device
 * halfway through its own transmit (the role of Linux's backlog/softirq). It also owns what
 * every device shares: the packet pool, the counters, the drop accounting, capture taps and a
 * timer heap (fault delays, TCP timers) driven by `poll(now)`.
 */
import { REPLY_SEQ, type TraceHop } from "../cluster/types.ts";
import { DropReason } from "./netfilter.ts";
import { CtDir, PacketPool, type Packet } from "./packet.ts";
import { FlowLog, Observation } from "./flows.ts";

export type Receiver = (pkt: Packet) => void;
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

  /**
   * The tracer of the probe's reply: its hops number from REPLY_SEQ, since the probe's own hops
   * on other nodes have taken sequence numbers this node cannot know.
   */
  reply(): Tracer {
    return new Tracer(this.id, this.node, Math.max(this.seq, REPLY_SEQ), this.sink);
  }
}

/** A counter a hot path holds on to: `c.value++` instead of a map update per packet. */
export interface CounterCell {
  value: number;
}

export class Counters {
  private values = new Map<string, CounterCell>();
  cell(name: string): CounterCell {
    let c = this.values.get(name);
    if (!c) this.values.set(name, (c = { value: 0 }));
    return c;
  }
  inc(name: string, by = 1): void {
    this.cell(name).value += by;
  }
  get(name: string): number {
    return this.values.get(name)?.value ?? 0;
  }
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, c] of this.values) if (c.value !== 0) out[k] = c.value;
    return out;
  }
}

/** The counter a drop reason is kept in: drops_total{reason="..."} in Prometheus terms. */
export function dropCounter(reason: DropReason): string {
  return `drops_${reason}_total`;
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class Datapath {
  private readonly queue: Array<Receiver | Packet> = [];
  private head = 0;
  private draining = false;
  private readonly taps = new Map<string, Set<Tap>>();
  private readonly timers: Timer[] = [];
  private timerSeq = 0;
  /** Called when the queue has drained (the agent re-arms its timer here). */
  onIdle: (() => void) | undefined;
  readonly counters = new Counters();
  readonly pool = new PacketPool();
  /** Pollers run on every `poll(now)` (TCP stacks); each reports its next deadline. */
  private readonly pollers = new Set<{ poll(now: number): void; nextDeadline(): number | undefined }>();

  constructor(
    readonly nodeName: string,
    /** Milliseconds, monotonic; a parameter so tests run on a virtual clock. */
    readonly now: () => number,
    /** Uniform in [0, 1); seeded in tests. */
    readonly rng: () => number = Math.random,
  ) {}

  private deferDepth = 0;
  private drainScheduled = false;
  private readonly drainLater = (): void => {
    this.drainScheduled = false;
    if (!this.draining) this.drain();
  };

  /** Hands `pkt` to `to` after everything already queued. */
  send(to: Receiver, pkt: Packet): void {
    this.queue.push(to, pkt);
    if (this.draining) return;
    if (this.deferDepth > 0) {
      if (!this.drainScheduled) {
        this.drainScheduled = true;
        queueMicrotask(this.drainLater);
      }
      return;
    }
    this.drain();
  }

  /**
   * Runs `fn` (a socket call from an app: connect, write, close) with what it transmits queued
   * rather than processed on the spot, as Linux hands a socket's packets to softirq: the reply
   * of a peer on the same node must not re-enter the socket before the call has returned.
   */
  deferred<T>(fn: () => T): T {
    this.deferDepth++;
    try {
      return fn();
    } finally {
      this.deferDepth--;
    }
  }

  /** Processes whatever is queued now (the simulation's step; the agent relies on the microtask). */
  flush(): void {
    if (!this.draining && this.head < this.queue.length) this.drain();
  }

  get pending(): number {
    return this.queue.length - this.head;
  }

  /**
   * The clock as the datapath reads it per packet: sampled when a drain starts and every 64
   * steps of it, since reading the monotonic clock costs more than a table lookup and nothing
   * in a node needs finer than that (timeouts are in ms and seconds).
   */
  clock(): number {
    return this.draining ? this.drainNow : this.now();
  }
  private drainNow = 0;

  private drain(): void {
    this.draining = true;
    this.drainNow = this.now();
    let steps = 0;
    try {
      while (this.head < this.queue.length) {
        if ((++steps & 63) === 0) this.drainNow = this.now();
        const to = this.queue[this.head] as Receiver;
        const pkt = this.queue[this.head + 1] as Packet;
        this.head += 2;
        try {
          to(pkt);
        } catch (err) {
          // A bug in one device must not take the node down or wedge the queue: count it.
          this.drop(pkt, DropReason.Internal, "datapath", `internal error: ${(err as Error).message}`);
        }
      }
    } finally {
      this.queue.length = 0;
      this.head = 0;
      this.draining = false;
    }
    this.onIdle?.();
  }

  /**
   * Every drop in the datapath goes through here: counted by reason, reported on the trace,
   * and the packet released.
   */
  drop(pkt: Packet, reason: DropReason, where: string, detail?: string): void {
    this.counters.inc(dropCounter(reason));
    pkt.tr?.hop(where, detail ?? reason, "dropped");
    if (this.flows !== undefined && pkt.l3 >= 0) this.flows.record(Observation.Drop, where, pkt, pkt.ct !== undefined && pkt.ctDir === CtDir.Reply, reason, detail);
    pkt.release();
  }

  /** The node's flow records (undefined: off). */
  flows: FlowLog | undefined;

  /** Counts a drop when there is no packet descriptor (a frame rejected before one was made). */
  dropRaw(reason: DropReason): void {
    this.counters.inc(dropCounter(reason));
  }

  drops(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of Object.values(DropReason)) {
      const n = this.counters.get(dropCounter(r));
      if (n > 0) out[r] = n;
    }
    return out;
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

  /** Whether anything captures on `dev` (the capture link's fast path). */
  tapped(dev: string): boolean {
    return this.taps.size !== 0 && this.taps.has(dev);
  }

  tap(dev: string, frame: Uint8Array, direction: "rx" | "tx"): void {
    if (this.taps.size === 0) return;
    const set = this.taps.get(dev);
    if (set) for (const t of set) t(frame, direction);
  }

  // ---------------------------------------------------------------- timers

  /** Runs `fn` once `poll(now)` is called with now >= at. Returns a cancel function. */
  schedule(at: number, fn: () => void): () => void {
    const t: Timer = { at, seq: this.timerSeq++, fn, cancelled: false };
    heapPush(this.timers, t);
    return () => void (t.cancelled = true);
  }

  addPoller(p: { poll(now: number): void; nextDeadline(): number | undefined }): () => void {
    this.pollers.add(p);
    return () => this.pollers.delete(p);
  }

  /** Runs every timer due at `now` and every poller; packets they send are processed before it returns. */
  poll(now: number): void {
    this.deferDepth++;
    try {
      this.runDue(now);
    } finally {
      this.deferDepth--;
    }
    this.flush();
  }

  private runDue(now: number): void {
    while (this.timers.length > 0 && this.timers[0]!.at <= now) {
      const t = heapPop(this.timers)!;
      if (t.cancelled) continue;
      try {
        t.fn();
      } catch {
        this.counters.inc("datapath_timer_errors_total");
      }
    }
    for (const p of this.pollers) {
      const d = p.nextDeadline();
      if (d !== undefined && d <= now) p.poll(now);
    }
  }

  /** The earliest time anything wants `poll` called, or undefined. */
  nextDeadline(): number | undefined {
    while (this.timers.length > 0 && this.timers[0]!.cancelled) heapPop(this.timers);
    let d = this.timers.length > 0 ? this.timers[0]!.at : undefined;
    for (const p of this.pollers) {
      const x = p.nextDeadline();
      if (x !== undefined && (d === undefined || x < d)) d = x;
    }
    return d;
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function heapPush(h: Timer[], t: Timer): void {
  h.push(t);
  let i = h.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(h[i]!, h[parent]!)) break;
    [h[i], h[parent]] = [h[parent]!, h[i]!];
    i = parent;
  }
}

function heapPop(h: Timer[]): Timer | undefined {
  const top = h[0];
  const last = h.pop();
  if (h.length > 0 && last) {
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
  return top;
}
