/**
 * A keyed, de-duplicating work queue with rate-limited retries: client-go's workqueue
 * (k8s.io/client-go/util/workqueue doc.go, queue.go, delaying_queue.go,
 * default_rate_limiters.go ItemExponentialFailureRateLimiter), the part controllers need.
 *
 * Semantics, as client-go's:
 * - A key added while it waits is queued once ("dirty" set).
 * - A key added while it is being processed is not handed out again until done(key): then it
 *   is queued once more, so a change during a reconcile is never lost and never processed
 *   concurrently with it.
 * - addRateLimited(key) re-adds after base * 2^(failures-1), capped at max; forget(key) resets
 *   the count once a reconcile succeeds.
 * - addAfter(key, ms) keeps the earliest of several pending delays for one key.
 *
 * Pure apart from the injected Clock: timers are the clock's, so tests run it on a FakeClock.
 */
import type { Clock } from "./clock.ts";

export interface BackoffOptions {
  /** First retry delay (client-go DefaultControllerRateLimiter: 5 ms). */
  readonly baseMs: number;
  /** Cap of the exponential delay (client-go: 1000 s; controllers here want a few seconds). */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 5, maxMs: 5_000 };

export class WorkQueue<K extends string = string> {
  /** Keys waiting to be handed out, in order. */
  private readonly queue: K[] = [];
  /** Keys that need processing (queued, or to be re-queued when their processing ends). */
  private readonly dirty = new Set<K>();
  /** Keys handed out and not yet done(). */
  private readonly processing = new Set<K>();
  private readonly failures = new Map<K, number>();
  /** Pending delayed adds: when each falls due and how to cancel it. */
  private readonly waiting = new Map<K, { at: number; cancel: () => void }>();
  private readonly waiters: Array<(key: K | undefined) => void> = [];
  private shuttingDown = false;

  constructor(
    private readonly clock: Clock,
    private readonly backoff: BackoffOptions = DEFAULT_BACKOFF,
  ) {}

  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) this.handOut(key, waiter);
    else this.queue.push(key);
  }

  /** The next key, marked as being processed; undefined when none is queued. */
  tryGet(): K | undefined {
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  /** The next key, waiting for one; undefined once the queue is shut down. */
  get(): Promise<K | undefined> {
    const key = this.tryGet();
    if (key !== undefined || this.shuttingDown) return Promise.resolve(key);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Processing of `key` ended; if it was added meanwhile, it is queued again now. */
  done(key: K): void {
    this.processing.delete(key);
    if (!this.dirty.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) this.handOut(key, waiter);
    else this.queue.push(key);
  }

  /** Adds `key` after `ms`; a key already waiting keeps the earlier of the two times. */
  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.monotonicMs() + ms;
    const pending = this.waiting.get(key);
    if (pending && pending.at <= at) return;
    pending?.cancel();
    const cancel = this.clock.after(ms, () => {
      this.waiting.delete(key);
      this.add(key);
    });
    this.waiting.set(key, { at, cancel });
  }

  /** A failed reconcile: retry after the key's next exponential delay. */
  addRateLimited(key: K): void {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.addAfter(key, this.backoffMs(n));
  }

  /** The delay of retry n (0-based): base * 2^n, capped. */
  backoffMs(n: number): number {
    return Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(n, 52));
  }

  /** A successful reconcile: the key's next failure starts from the base delay again. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** Keys queued and not yet handed out. */
  get length(): number {
    return this.queue.length;
  }

  /** Stops handing out keys: pending get()s resolve undefined, delayed adds are dropped. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const w of this.waiting.values()) w.cancel();
    this.waiting.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }

  private handOut(key: K, waiter: (key: K | undefined) => void): void {
    this.dirty.delete(key);
    this.processing.add(key);
    waiter(key);
  }
}

/** What a reconcile tells the worker that ran it. */
export type ReconcileResult =
  /** Converged (or nothing to do): forget the key's failures. */
  | { readonly kind: "done" }
  /** Converged for now, but look again after `ms` (a timeout that falls due later). */
  | { readonly kind: "requeueAfter"; readonly ms: number }
  /** A transient failure: retry with backoff. */
  | { readonly kind: "retry"; readonly error: unknown };

export const Reconciled = {
  done: { kind: "done" } as const satisfies ReconcileResult,
  after: (ms: number): ReconcileResult => ({ kind: "requeueAfter", ms }),
  retry: (error: unknown): ReconcileResult => ({ kind: "retry", error }),
} as const;

/**
 * Processes keys of `queue` with `reconcile` until the queue shuts down (sample-controller's
 * runWorker / processNextWorkItem). A reconcile that throws counts as a retry.
 */
export async function runWorker<K extends string>(queue: WorkQueue<K>, reconcile: (key: K) => Promise<ReconcileResult>, onRetry?: (key: K, error: unknown) => void): Promise<void> {
  for (;;) {
    const key = await queue.get();
    if (key === undefined) return;
    let result: ReconcileResult;
    try {
      result = await reconcile(key);
    } catch (error) {
      result = Reconciled.retry(error);
    }
    try {
      switch (result.kind) {
        case "done":
          queue.forget(key);
          break;
        case "requeueAfter":
          queue.forget(key);
          queue.addAfter(key, result.ms);
          break;
        case "retry":
          onRetry?.(key, result.error);
          queue.addRateLimited(key);
          break;
      }
    } finally {
      queue.done(key);
    }
  }
}
