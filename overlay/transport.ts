/**
 * The overlay's transport: how one node's VTEP frames reach another node.
 *
 * Design notes: the overlay logic (devices, batching) imports nothing from NATS; a NATS
 * transport and an in-memory one implement this small interface (as nats.js separates core
 * from transport-node, and flannel its backends). Frames are batched per destination: every
 * frame sent during one turn of the event loop goes out in one message at the end of it, so a
 * lone ping pays no batching delay and a burst pays one message header per ~45 full frames.
 * A traced frame travels alone, with its trace context beside it.
 */
import { BatchBuilder, encodeBatch } from "./wire/batch.ts";

export interface TraceContext {
  traceId: string;
  /** Sequence number the next hop should take. */
  seq: number;
}

/** One message as it came off the wire: a batch of outer frames, maybe with trace context. */
export type OverlayHandler = (message: Uint8Array, trace: TraceContext | undefined) => void;

export interface OverlayTransport {
  /** Queues an encapsulated frame for `node`; it is on the wire by the end of this turn. */
  send(node: string, frame: Uint8Array, trace?: TraceContext): void;
  /** Sends everything queued now. */
  flush(): void;
  close(): Promise<void>;
}

/** What a concrete transport provides: publishing one message, and a way to defer work. */
export interface MessageSink {
  publish(node: string, message: Uint8Array, trace: TraceContext | undefined): void;
  /** Runs `fn` once the current turn is over (setImmediate in Node). */
  defer(fn: () => void): void;
}

export const DEFAULT_BATCH_BYTES = 64 * 1024;

/** Per-destination batching on top of any MessageSink. Pure: no timers of its own. */
export class Batcher {
  private readonly builders = new Map<string, BatchBuilder>();
  private scheduled = false;
  private readonly flushAll = () => this.flush();
  messages = 0;
  frames = 0;

  constructor(
    private readonly sink: MessageSink,
    private readonly maxBytes = DEFAULT_BATCH_BYTES,
  ) {}

  send(node: string, frame: Uint8Array, trace?: TraceContext): void {
    this.frames++;
    if (trace) {
      // Keep order with what is already queued for that node, then send the probe alone.
      this.flushNode(node);
      this.messages++;
      this.sink.publish(node, encodeBatch([frame]), trace);
      return;
    }
    let builder = this.builders.get(node);
    if (!builder) this.builders.set(node, (builder = new BatchBuilder(this.maxBytes)));
    if (!builder.add(frame)) {
      this.flushNode(node);
      builder.add(frame);
    }
    if (!this.scheduled) {
      this.scheduled = true;
      this.sink.defer(this.flushAll);
    }
  }

  flush(): void {
    this.scheduled = false;
    for (const node of this.builders.keys()) this.flushNode(node);
  }

  private flushNode(node: string): void {
    const builder = this.builders.get(node);
    if (!builder || builder.count === 0) return;
    this.messages++;
    this.sink.publish(node, builder.finish(), undefined);
  }
}
