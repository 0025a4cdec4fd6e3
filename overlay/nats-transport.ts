/**
 * The overlay over NATS: node N's VTEP frames go to the subject `subjectFor(N)` and this node
 * hears its own on `mine`, both named by the caller (overlay.<vni>.<to>.<from>: cluster/types.ts
 * Subjects.overlay, the sender last so the NATS server checks it): the overlay imports nothing
 * from the layers above it.
 * Core NATS, not JetStream: like UDP under VXLAN, delivery is best effort and a frame lost in
 * a partition is lost, which is what the inner protocols expect.
 */
import { headers as natsHeaders, type NatsConnection, type Subscription } from "nats";
import { Batcher, type OverlayHandler, type OverlayTransport, type TraceContext } from "./transport.ts";

const TRACE_ID = "Kubewire-Trace-Id";
const TRACE_SEQ = "Kubewire-Trace-Seq";

export class NatsOverlayTransport implements OverlayTransport {
  private readonly batcher: Batcher;
  private readonly sub: Subscription;

  constructor(
    private readonly nc: NatsConnection,
    /** The subject this node publishes a node's frames to. */
    private readonly subjectFor: (node: string) => string,
    /** The subject (a wildcard over senders) of the frames for this node. */
    mine: string,
    onMessage: OverlayHandler,
  ) {
    this.batcher = new Batcher({
      publish: (node, message, trace) => this.publish(node, message, trace),
      defer: (fn) => setImmediate(fn),
    });
    // A callback subscription: no async iterator between the socket and the datapath.
    this.sub = nc.subscribe(mine, {
      callback: (err, msg) => {
        if (err) return;
        const h = msg.headers;
        const traceId = h?.get(TRACE_ID);
        onMessage(msg.data, traceId ? { traceId, seq: Number(h!.get(TRACE_SEQ)) || 0 } : undefined);
      },
    });
  }

  send(node: string, frame: Uint8Array, trace?: TraceContext): void {
    this.batcher.send(node, frame, trace);
  }

  flush(): void {
    this.batcher.flush();
  }

  get stats(): { messages: number; frames: number } {
    return { messages: this.batcher.messages, frames: this.batcher.frames };
  }

  private publish(node: string, message: Uint8Array, trace: TraceContext | undefined): void {
    const subject = this.subjectFor(node);
    if (!trace) return this.nc.publish(subject, message);
    const h = natsHeaders();
    h.set(TRACE_ID, trace.traceId);
    h.set(TRACE_SEQ, String(trace.seq));
    this.nc.publish(subject, message, { headers: h });
  }

  async close(): Promise<void> {
    this.batcher.flush();
    this.sub.unsubscribe();
  }
}
