import { describe, expect, it } from "vitest";
import { Batcher, type MessageSink, type TraceContext } from "../../overlay/transport.ts";
import { decodeBatch } from "../../overlay/wire/batch.ts";
import { mulberry32, randInt, randomBytes } from "./wire/rng.ts";

interface Published {
  node: string;
  message: Uint8Array;
  trace: TraceContext | undefined;
}

/** Records publishes; `defer`red work runs only when the test ends the "turn". */
class FakeSink implements MessageSink {
  readonly published: Published[] = [];
  readonly deferred: Array<() => void> = [];
  defers = 0;

  publish(node: string, message: Uint8Array, trace: TraceContext | undefined): void {
    this.published.push({ node, message, trace });
  }

  defer(fn: () => void): void {
    this.defers++;
    this.deferred.push(fn);
  }

  endTurn(): void {
    for (const fn of this.deferred.splice(0)) fn();
  }
}

function frames(m: Published): Uint8Array[] {
  const r = decodeBatch(m.message);
  if (!r.ok) throw r.error;
  return r.value;
}

const frame = (tag: number, len = 10): Uint8Array => new Uint8Array(len).fill(tag);

describe("Batcher", () => {
  it("sends the frames of one turn to a node as one message, after the deferred flush", () => {
    const sink = new FakeSink();
    const b = new Batcher(sink);
    b.send("node-2", frame(1));
    b.send("node-2", frame(2));
    b.send("node-2", frame(3));
    expect(sink.published).toEqual([]);
    expect(sink.defers).toBe(1);
    sink.endTurn();
    expect(sink.published).toHaveLength(1);
    expect(sink.published[0]!.node).toBe("node-2");
    expect(sink.published[0]!.trace).toBeUndefined();
    expect(frames(sink.published[0]!)).toEqual([frame(1), frame(2), frame(3)]);
    expect(b.messages).toBe(1);
    expect(b.frames).toBe(3);
  });

  it("sends one message per destination", () => {
    const sink = new FakeSink();
    const b = new Batcher(sink);
    b.send("node-2", frame(1));
    b.send("node-3", frame(2));
    b.send("node-2", frame(3));
    b.send("node-3", frame(4));
    sink.endTurn();
    expect(sink.published.map((m) => m.node).sort()).toEqual(["node-2", "node-3"]);
    const byNode = new Map(sink.published.map((m) => [m.node, frames(m)]));
    expect(byNode.get("node-2")).toEqual([frame(1), frame(3)]);
    expect(byNode.get("node-3")).toEqual([frame(2), frame(4)]);
  });

  it("schedules a new flush in the next turn and sends nothing for an idle turn", () => {
    const sink = new FakeSink();
    const b = new Batcher(sink);
    b.send("node-2", frame(1));
    sink.endTurn();
    sink.endTurn();
    expect(sink.published).toHaveLength(1);
    b.send("node-2", frame(2));
    expect(sink.defers).toBe(2);
    sink.endTurn();
    expect(sink.published.map(frames)).toEqual([[frame(1)], [frame(2)]]);
  });

  it("flushes a full builder early, keeping the order", () => {
    const sink = new FakeSink();
    // Version byte + two records of 2 + 10 bytes: the third frame does not fit.
    const b = new Batcher(sink, 1 + 2 * (2 + 10));
    b.send("node-2", frame(1));
    b.send("node-2", frame(2));
    expect(sink.published).toEqual([]);
    b.send("node-2", frame(3));
    expect(sink.published.map(frames)).toEqual([[frame(1), frame(2)]]);
    sink.endTurn();
    expect(sink.published.map(frames)).toEqual([[frame(1), frame(2)], [frame(3)]]);
    expect(sink.defers).toBe(1);
    expect(b.messages).toBe(2);
  });

  it("sends a traced frame alone with its context, after what was queued for that node", () => {
    const sink = new FakeSink();
    const b = new Batcher(sink);
    const trace = { traceId: "t-1", seq: 6 };
    b.send("node-2", frame(1));
    b.send("node-3", frame(2));
    b.send("node-2", frame(3));
    b.send("node-2", frame(9), trace);
    // At once, without waiting for the turn to end: node-2's queue, then the probe.
    expect(sink.published.map((m) => [m.node, frames(m), m.trace])).toEqual([
      ["node-2", [frame(1), frame(3)], undefined],
      ["node-2", [frame(9)], trace],
    ]);
    sink.endTurn();
    // node-3's frame waited for the flush; node-2 has nothing left to send.
    expect(sink.published.slice(2).map((m) => [m.node, frames(m), m.trace])).toEqual([["node-3", [frame(2)], undefined]]);
    expect(b.messages).toBe(3);
    expect(b.frames).toBe(4);
  });

  it("flush() sends what is queued without waiting for the turn", () => {
    const sink = new FakeSink();
    const b = new Batcher(sink);
    b.send("node-2", frame(1));
    b.flush();
    expect(sink.published.map(frames)).toEqual([[frame(1)]]);
    sink.endTurn();
    expect(sink.published).toHaveLength(1);
  });

  it("delivers random bursts that decode back to the frames in order", () => {
    const rng = mulberry32(2024);
    const sink = new FakeSink();
    const b = new Batcher(sink, 4096);
    const nodes = ["node-1", "node-2", "node-3"];
    const sent = new Map<string, Uint8Array[]>(nodes.map((n) => [n, []]));
    for (let turn = 0; turn < 5; turn++) {
      for (let i = 0; i < 60; i++) {
        const node = nodes[randInt(rng, nodes.length)]!;
        const f = randomBytes(rng, 1 + randInt(rng, 1500));
        sent.get(node)!.push(f);
        b.send(node, f);
      }
      sink.endTurn();
    }
    for (const node of nodes) {
      // Hex strings: the same check as comparing the bytes, without a slow element-wise diff.
      const hex = (f: Uint8Array): string => Buffer.from(f.buffer, f.byteOffset, f.length).toString("hex");
      const got = sink.published.filter((m) => m.node === node).flatMap(frames);
      expect(got.map(hex)).toEqual(sent.get(node)!.map(hex));
    }
    for (const m of sink.published) expect(m.message.length).toBeLessThanOrEqual(4096);
    expect(b.frames).toBe(300);
    expect(b.messages).toBe(sink.published.length);
  });
});
