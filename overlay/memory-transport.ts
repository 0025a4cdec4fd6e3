/**
 * An in-memory overlay for deterministic tests of the whole network (smoltcp's netsim): nodes
 * attach to a hub, messages are delivered when the test calls `run()`, never on a timer.
 */
import { Batcher, type OverlayHandler, type OverlayTransport, type TraceContext } from "./transport.ts";

export class MemoryOverlayHub {
  private readonly handlers = new Map<string, OverlayHandler>();
  private readonly inFlight: Array<{ node: string; message: Uint8Array; trace: TraceContext | undefined }> = [];
  private readonly deferred: Array<() => void> = [];
  delivered = 0;

  attach(node: string, onMessage: OverlayHandler): OverlayTransport {
    this.handlers.set(node, onMessage);
    const batcher = new Batcher({
      publish: (dst, message, trace) => this.inFlight.push({ node: dst, message, trace }),
      defer: (fn) => this.deferred.push(fn),
    });
    return {
      send: (dst, frame, trace) => batcher.send(dst, frame, trace),
      flush: () => batcher.flush(),
      close: async () => void this.handlers.delete(node),
    };
  }

  /** Injects a raw message, as a misbehaving peer on the same subject could. */
  inject(node: string, message: Uint8Array): void {
    this.inFlight.push({ node, message, trace: undefined });
  }

  /** Runs deferred flushes and delivers messages until the network is quiet. */
  run(maxSteps = 100_000): void {
    for (let step = 0; step < maxSteps; step++) {
      const fn = this.deferred.shift();
      if (fn) {
        fn();
        continue;
      }
      const m = this.inFlight.shift();
      if (!m) return;
      this.delivered++;
      this.handlers.get(m.node)?.(m.message, m.trace);
    }
    throw new Error(`network not quiet after ${maxSteps} steps`);
  }
}
