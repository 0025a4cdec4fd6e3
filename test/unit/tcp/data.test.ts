import { describe, expect, it } from "vitest";
import { TcpTimers } from "../../../node-agent/tcp/tcb.ts";
import { Bench, F, RISS, bytes, settle } from "./harness.ts";

/** 64 KiB - 1 receive buffer: no window scaling, windows easy to state exactly. */
const SMALL = { recvBufferSize: 65535 };

describe("tcp data transfer", () => {
  it("receives data with delayed ACKs: every second full segment at once, else after 40 ms", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    b.send({ seq: RISS + 1, ack: iss + 1, flags: F.ACK | F.PSH, payload: 1000 });
    b.expectNothing();
    expect(b.stack.nextDeadline()).toBe(40);
    b.at(40);
    b.expect({ seq: iss + 1, ack: RISS + 1001, flags: F.ACK, window: 64535 });
    b.send({ seq: RISS + 1001, ack: iss + 1, flags: F.ACK, payload: 1460 });
    b.expectNothing();
    b.send({ seq: RISS + 2461, ack: iss + 1, flags: F.ACK, payload: 1460 });
    b.expect({ seq: iss + 1, ack: RISS + 3921, flags: F.ACK, window: 65535 - 3920 });
    const got = await sock.read();
    expect(got).toEqual(bytes(3920).map((_, i) => (i < 1000 ? i & 0xff : i < 2460 ? (i - 1000) & 0xff : (i - 2460) & 0xff)));
    // Reading a nearly full-open window sends no update (SWS avoidance, and it is not "small").
    b.expectNothing();
    expect(b.stack.stats().delayedAcks).toBe(1);
  });

  it("sends data up to the initial window of 10 segments, ACKs release more and stop the RTO", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    expect(await sock.write(bytes(20 * 1460))).toBe(true);
    const segs = b.take();
    expect(segs.length).toBe(10);
    segs.forEach((s, i) => expect(s).toMatchObject({ seq: iss + 1 + i * 1460, ack: RISS + 1, flags: F.ACK }));
    expect(b.stack.nextDeadline()).toBe(TcpTimers.rtoMinMs); // handshake RTT 0: RTO at its floor
    // An ACK for 2 segments: slow start adds 2 MSS, so 4 more go out.
    b.send({ seq: RISS + 1, ack: iss + 1 + 2 * 1460, flags: F.ACK });
    expect(b.take().map((s) => s.seq - iss - 1)).toEqual([10, 11, 12, 13].map((i) => i * 1460));
    b.at(10);
    b.send({ seq: RISS + 1, ack: iss + 1 + 14 * 1460, flags: F.ACK });
    expect(b.take().length).toBe(6);
    b.send({ seq: RISS + 1, ack: iss + 1 + 20 * 1460, flags: F.ACK });
    expect(b.stack.nextDeadline()).toBeUndefined();
    expect(b.stack.connections()[1]!.sendQueue).toBe(0);
  });

  it("RTO: retransmit from SND.UNA, doubling up to 120 s, give up after 15 retries", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    void sock.write(bytes(100));
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK | F.PSH, len: 100 });
    const times: number[] = [];
    for (;;) {
      const d = b.stack.nextDeadline();
      if (d === undefined) break;
      b.at(d);
      for (const s of b.take()) {
        expect(s).toMatchObject({ seq: iss + 1, flags: F.ACK | F.PSH });
        expect(s.payload.length).toBe(100);
        times.push(d);
      }
    }
    const expected: number[] = [];
    let t = 0;
    for (let k = 0; k < 15; k++) {
      t += Math.min(200 * 2 ** k, 120_000);
      expected.push(t);
    }
    expect(times).toEqual(expected);
    expect(b.host.nowMs).toBe(t + 120_000);
    expect(await sock.closed).toEqual({ kind: "timeout" });
    expect(await sock.write(bytes(1))).toBe(false);
  });

  it("Karn: no RTT sample from a retransmitted segment, the backed-off RTO stays", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    void sock.write(bytes(100));
    b.take();
    b.at(200);
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK | F.PSH, len: 100 });
    b.at(300);
    b.send({ seq: RISS + 1, ack: iss + 101, flags: F.ACK }); // ambiguous: original or retransmission?
    expect(b.stack.nextDeadline()).toBeUndefined();
    void sock.write(bytes(50));
    b.expect({ seq: iss + 101, ack: RISS + 1, flags: F.ACK | F.PSH, len: 50 });
    // RTO still 400 ms (backed off, no new sample); a sample of 300 ms would have given 900.
    expect(b.stack.nextDeadline()).toBe(700);
    // A clean 100 ms sample recomputes the RTO (RFC 6298 §2.3: srtt 12.5, rttvar 25 -> 112.5,
    // floored to 200): the backoff is gone.
    b.at(400);
    b.send({ seq: RISS + 1, ack: iss + 151, flags: F.ACK });
    void sock.write(bytes(10));
    b.take();
    expect(b.stack.nextDeadline()).toBe(400 + 200);
  });

  it("fast retransmit on the third duplicate ACK; NewReno partial and full ACKs", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    const M = 1460;
    void sock.write(bytes(12 * M));
    expect(b.take().length).toBe(10);
    b.send({ seq: RISS + 1, ack: iss + 1 + M, flags: F.ACK }); // cwnd 11 MSS: segments 10, 11
    expect(b.take().map((s) => (s.seq - iss - 1) / M)).toEqual([10, 11]);
    const dup = { seq: RISS + 1, ack: iss + 1 + M, flags: F.ACK };
    b.send(dup);
    b.send(dup);
    b.expectNothing();
    b.send(dup);
    b.expect({ seq: iss + 1 + M, ack: RISS + 1, flags: F.ACK, len: M });
    expect(b.stack.stats().fastRetransmits).toBe(1);
    b.send(dup); // inflation only: nothing new to send
    b.expectNothing();
    // Partial ACK (segments 1-3 arrived, 4 lost too): retransmit 4 at once.
    b.send({ seq: RISS + 1, ack: iss + 1 + 4 * M, flags: F.ACK });
    b.expect({ seq: iss + 1 + 4 * M, ack: RISS + 1, flags: F.ACK, len: M });
    // Full ACK ends recovery.
    b.send({ seq: RISS + 1, ack: iss + 1 + 12 * M, flags: F.ACK });
    b.expectNothing();
    expect(b.stack.nextDeadline()).toBeUndefined();
    expect(b.stack.stats().retransSegs).toBe(2);
  });

  it("out-of-order segments: kept, duplicate ACK for each, delivered when the hole fills", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    const data = bytes(300, 7);
    b.send({ seq: RISS + 201, ack: iss + 1, flags: F.ACK, payload: data.subarray(200) });
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK, window: 65535 });
    b.send({ seq: RISS + 101, ack: iss + 1, flags: F.ACK, payload: data.subarray(100, 200) });
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK, window: 65535 });
    b.send({ seq: RISS + 151, ack: iss + 1, flags: F.ACK, payload: data.subarray(150, 250) }); // overlap
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK, window: 65535 });
    b.send({ seq: RISS + 1, ack: iss + 1, flags: F.ACK, payload: data.subarray(0, 100) });
    b.expect({ seq: iss + 1, ack: RISS + 301, flags: F.ACK, window: 65235 });
    const parts: number[] = [];
    while (parts.length < 300) parts.push(...(await sock.read())!);
    expect(new Uint8Array(parts)).toEqual(data);
    expect(b.stack.stats().outOfOrderSegs).toBe(3);
  });

  it("zero window from the peer: persist probes with backoff, data once it opens", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen({ window: 0 });
    void sock.write(bytes(100));
    b.expectNothing();
    const probe = { seq: iss, ack: RISS + 1, flags: F.ACK, len: 0 }; // SND.UNA - 1, Linux-style
    b.at(200);
    b.expect(probe);
    b.at(599);
    b.expectNothing();
    b.at(600);
    b.expect(probe);
    b.at(1400);
    b.expect(probe);
    b.send({ seq: RISS + 1, ack: iss + 1, flags: F.ACK, window: 0 }); // the probe's answer
    b.expectNothing();
    b.send({ seq: RISS + 1, ack: iss + 1, flags: F.ACK, window: 1000 });
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK | F.PSH, len: 100 });
    expect(b.stack.stats().persistProbes).toBe(3);
  });

  it("our window closes when the app does not read; update when it drains", async () => {
    const b = new Bench({ recvBufferSize: 4000 });
    const { iss, sock } = await b.passiveOpen();
    for (let i = 0; i < 4; i++) b.send({ seq: RISS + 1 + i * 1000, ack: iss + 1, flags: F.ACK, payload: 1000 });
    b.expect({ seq: iss + 1, ack: RISS + 3001, flags: F.ACK, window: 1000 });
    b.at(40);
    b.expect({ seq: iss + 1, ack: RISS + 4001, flags: F.ACK, window: 0 });
    // Data into a zero window is not acceptable: ACK and drop; a Linux-style probe likewise.
    b.send({ seq: RISS + 4001, ack: iss + 1, flags: F.ACK, payload: 1 });
    b.expect({ seq: iss + 1, ack: RISS + 4001, flags: F.ACK, window: 0 });
    b.send({ seq: RISS + 4000, ack: iss + 1, flags: F.ACK });
    b.expect({ seq: iss + 1, ack: RISS + 4001, flags: F.ACK, window: 0 });
    const got = await sock.read();
    expect(got!.length).toBe(4000);
    b.expect({ seq: iss + 1, ack: RISS + 4001, flags: F.ACK, window: 4000 });
  });

  it("Nagle when noDelay is off: a small segment waits for the ACK", async () => {
    const b = new Bench({ ...SMALL, noDelay: false });
    const { iss, sock } = await b.passiveOpen();
    void sock.write(bytes(10));
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK | F.PSH, len: 10 });
    void sock.write(bytes(10));
    void sock.write(bytes(10));
    b.expectNothing();
    b.send({ seq: RISS + 1, ack: iss + 11, flags: F.ACK });
    b.expect({ seq: iss + 11, ack: RISS + 1, flags: F.ACK | F.PSH, len: 20 });
  });

  it("write() backpressure: resolves once the send buffer drains below its size", async () => {
    const b = new Bench({ ...SMALL, sendBufferSize: 3000 });
    const { iss, sock } = await b.passiveOpen({ window: 65535 });
    let done = false;
    void sock.write(bytes(5000)).then((ok) => (done = ok));
    await settle();
    expect(done).toBe(false);
    b.take();
    b.send({ seq: RISS + 1, ack: iss + 1 + 2920, flags: F.ACK });
    await settle();
    expect(done).toBe(true);
  });
});
