import { describe, expect, it } from "vitest";
import { FakeClock } from "../../cluster/clock.ts";
import { Reconciled, runWorker, WorkQueue, type ReconcileResult } from "../../cluster/workqueue.ts";

/** Lets queued promise callbacks (the worker's awaits) run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe("WorkQueue (client-go workqueue semantics)", () => {
  it("hands a key out once however often it was added", () => {
    const q = new WorkQueue(new FakeClock());
    q.add("a");
    q.add("b");
    q.add("a");
    expect(q.length).toBe(2);
    expect([q.tryGet(), q.tryGet(), q.tryGet()]).toEqual(["a", "b", undefined]);
  });

  it("re-queues a key added while it is processed only when it is done, never concurrently", () => {
    const q = new WorkQueue(new FakeClock());
    q.add("a");
    expect(q.tryGet()).toBe("a");
    q.add("a");
    q.add("a");
    expect(q.tryGet()).toBeUndefined(); // still being processed
    q.done("a");
    expect(q.tryGet()).toBe("a"); // once more, for the change made during processing
    q.done("a");
    expect(q.tryGet()).toBeUndefined();
  });

  it("retries with capped exponential backoff and forgets on success", () => {
    const clock = new FakeClock();
    const q = new WorkQueue(clock, { baseMs: 10, maxMs: 50 });
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      q.add("k");
      expect(q.tryGet()).toBe("k");
      q.addRateLimited("k");
      q.done("k");
      const start = clock.monotonicMs();
      while (q.length === 0) clock.advance(1);
      delays.push(clock.monotonicMs() - start);
      expect(q.tryGet()).toBe("k");
      q.done("k");
    }
    expect(delays).toEqual([10, 20, 40, 50, 50]);
    expect(q.numRequeues("k")).toBe(5);
    q.forget("k");
    expect(q.numRequeues("k")).toBe(0);
    expect(q.backoffMs(0)).toBe(10);
  });

  it("addAfter keeps the earliest of two delays for one key", () => {
    const clock = new FakeClock();
    const q = new WorkQueue(clock);
    q.addAfter("k", 100);
    q.addAfter("k", 30);
    q.addAfter("k", 60);
    clock.advance(29);
    expect(q.length).toBe(0);
    clock.advance(1);
    expect(q.length).toBe(1);
    clock.advance(100);
    expect(q.length).toBe(1); // the later timers were cancelled, not run
    expect(clock.pending).toBe(0);
  });

  it("shutDown releases a waiting get() and drops delayed adds", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue(clock);
    const waiting = q.get();
    q.addAfter("k", 10);
    q.shutDown();
    expect(await waiting).toBeUndefined();
    clock.advance(10);
    expect(q.length).toBe(0);
  });
});

describe("runWorker", () => {
  it("reconciles a key changed mid-reconcile again afterwards, retries failures with backoff", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue(clock, { baseMs: 100, maxMs: 1000 });
    const log: string[] = [];
    let inFlight = 0;
    let release: (() => void) | undefined;
    let failures = 1;
    const reconcile = async (key: string): Promise<ReconcileResult> => {
      inFlight++;
      expect(inFlight).toBe(1);
      log.push(`start ${key}`);
      if (log.length === 1) await new Promise<void>((r) => (release = r));
      inFlight--;
      if (key === "b" && failures-- > 0) return Reconciled.retry(new Error("conflict"));
      return Reconciled.done;
    };
    const worker = runWorker(q, reconcile);
    q.add("a");
    await settle();
    q.add("a"); // changed while being reconciled
    q.add("b");
    release!();
    await settle();
    expect(log).toEqual(["start a", "start b", "start a"]);
    clock.advance(99);
    await settle();
    expect(log).toHaveLength(3);
    clock.advance(1); // b's first retry delay
    await settle();
    expect(log).toEqual(["start a", "start b", "start a", "start b"]);
    expect(q.numRequeues("b")).toBe(0);
    q.shutDown();
    await worker;
  });
});
