/**
 * A memory valve for the node-agent process. Under a flood (fragments, SYNs, garbage on the
 * overlay) the datapath's tables stay bounded, but V8 collects what they drop only when its own
 * heuristics say so: the old generation can grow by hundreds of MiB of garbage first, and the
 * pages it commits stay in the process. Like Go's GOMEMLIMIT, the valve runs a full collection
 * whenever the JS heap has grown by `slackBytes` (or a quarter of the live heap, if more) over
 * what was live after the last one, so a flood costs CPU, not the machine's memory. Off-heap buffers (what NATS reads into) are left
 * to V8's own external-memory trigger: counting them here made a full collection every few
 * thousand frames of ordinary traffic.
 */
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export const MEMORY_SLACK_BYTES = 8 * 1024 * 1024;
/** How often the valve looks (v8 heap statistics: no system call). */
export const MEMORY_CHECK_MS = 50;

/** V8's gc(): with no argument, a full synchronous collection (Node 20's V8 ignores an options object). */
type Gc = () => void;

/** V8's gc() without starting node with --expose-gc (the flag can be set at run time). */
function exposeGc(): Gc | undefined {
  try {
    setFlagsFromString("--expose-gc");
    return runInNewContext("gc") as Gc;
  } catch {
    return undefined;
  }
}

export class MemoryValve {
  private readonly gc = exposeGc();
  private floor: number;
  collections = 0;

  constructor(
    private readonly usage: () => { heapUsed: number; arrayBuffers: number } = heapAndBuffers,
    private readonly slackBytes = MEMORY_SLACK_BYTES,
  ) {
    this.floor = this.used();
  }

  private used(): number {
    return this.usage().heapUsed;
  }

  /**
   * Called periodically; collects when the slack is used up. The slack grows with what is live
   * (a quarter of it, as GOGC=25 would): a node holding 10,000 Services' rules has a heap of
   * hundreds of MiB, and a full collection per 8 MiB of a sync's garbage stalled it for seconds.
   */
  check(): void {
    if (!this.gc || this.used() < this.floor + Math.max(this.slackBytes, this.floor / 4)) return;
    this.gc();
    this.collections++;
    this.floor = this.used();
  }
}

function heapAndBuffers(): { heapUsed: number; arrayBuffers: number } {
  const h = getHeapStatistics();
  return { heapUsed: h.used_heap_size, arrayBuffers: h.external_memory };
}
