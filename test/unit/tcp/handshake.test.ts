import { describe, expect, it } from "vitest";
import { synOptions, parseTcpOptions } from "../../../node-agent/tcp/tcb.ts";
import { Bench, F, LOCAL_PORT, REMOTE, REMOTE_PORT, RISS, UNROUTED, bytes } from "./harness.ts";

describe("tcp handshake", () => {
  it("active open: SYN with MSS and window scale, SYN-ACK, ACK", async () => {
    const b = new Bench();
    const p = b.stack.connect(REMOTE, REMOTE_PORT);
    const [syn] = b.take();
    const iss = syn!.seq;
    expect(syn).toMatchObject({ dst: REMOTE, dstPort: REMOTE_PORT, ack: 0, flags: F.SYN, window: 65535 });
    expect(syn!.srcPort).toBeGreaterThanOrEqual(32768);
    expect(syn!.srcPort).toBeLessThanOrEqual(60999);
    // MSS 1460, NOP NOP SACK-permitted, NOP window scale 7 (4 MiB buffer).
    expect([...syn!.options]).toEqual([2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7]);
    b.send({ seq: RISS, ack: iss + 1, flags: F.SYN | F.ACK, window: 65535, options: synOptions(1460, 2), dstPort: syn!.srcPort });
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK, window: 32768 }); // 4 MiB >> 7
    const r = await p;
    expect(r.kind).toBe("connected");
    expect(b.stack.connections().map((c) => c.state)).toEqual(["ESTABLISHED"]);
    expect(b.stack.stats()).toMatchObject({ activeOpens: 1, currEstab: 1 });
    expect(b.stack.nextDeadline()).toBeUndefined();
  });

  it("passive open: SYN, SYN-ACK, ACK, accept; peer's MSS and window scale honoured", async () => {
    const b = new Bench();
    const l = b.stack.listen(LOCAL_PORT);
    if (l.kind !== "listening") throw new Error();
    expect(b.stack.listen(LOCAL_PORT).kind).toBe("inUse");
    b.send({ seq: RISS, flags: F.SYN, window: 65535, options: synOptions(1200, 2) });
    const [synAck] = b.expect({ seq: b.host.out[0]?.seq ?? 0, ack: RISS + 1, flags: F.SYN | F.ACK, window: 65535 });
    const iss = synAck!.seq;
    expect(parseTcpOptions(synAck!.options)).toEqual({ mss: 1460, wscale: 7 });
    b.send({ seq: RISS + 1, ack: iss + 1, flags: F.ACK, window: 1000 }); // 1000 << 2 = 4000 bytes
    const sock = await l.listener.accept();
    expect(sock).not.toBeNull();
    b.expectNothing();
    await sock!.write(bytes(5000));
    // Peer MSS 1200, window 4000: three full segments; the 400 left is under half the peer's
    // largest window, so sender SWS avoidance waits (RFC 9293 §3.8.6.2.1).
    b.expect(
      { seq: iss + 1, ack: RISS + 1, flags: F.ACK, window: 32768, len: 1200 },
      { seq: iss + 1201, ack: RISS + 1, flags: F.ACK, window: 32768, len: 1200 },
      { seq: iss + 2401, ack: RISS + 1, flags: F.ACK, window: 32768, len: 1200 },
    );
    b.send({ seq: RISS + 1, ack: iss + 3601, flags: F.ACK, window: 1000 });
    b.expect(
      { seq: iss + 3601, ack: RISS + 1, flags: F.ACK, window: 32768, len: 1200 },
      { seq: iss + 4801, ack: RISS + 1, flags: F.ACK | F.PSH, window: 32768, len: 200 },
    );
  });

  it("no MSS option means 536; no window scale in the SYN means none in the SYN-ACK", async () => {
    const b = new Bench();
    const l = b.stack.listen(LOCAL_PORT);
    if (l.kind !== "listening") throw new Error();
    b.send({ seq: RISS, flags: F.SYN, window: 8192 });
    const [synAck] = b.take();
    expect([...synAck!.options]).toEqual([2, 4, 0x05, 0xb4]);
    b.send({ seq: RISS + 1, ack: synAck!.seq + 1, flags: F.ACK, window: 8192 });
    const sock = (await l.listener.accept())!;
    b.take();
    await sock.write(bytes(1000));
    const iss = synAck!.seq;
    // Unscaled: the window field is capped at 65535.
    b.expect(
      { seq: iss + 1, ack: RISS + 1, flags: F.ACK, window: 65535, len: 536 },
      { seq: iss + 537, ack: RISS + 1, flags: F.ACK | F.PSH, window: 65535, len: 464 },
    );
  });

  it("MSS from the route's MTU", () => {
    const b = new Bench({}, 1, 1450);
    void b.stack.connect(REMOTE, REMOTE_PORT);
    expect(parseTcpOptions(b.take()[0]!.options)).toEqual({ mss: 1410, sackOk: true, wscale: 7 });
  });

  it("parseTcpOptions never throws on malformed options", () => {
    expect(parseTcpOptions(new Uint8Array([2]))).toEqual({});
    expect(parseTcpOptions(new Uint8Array([2, 0, 1, 1]))).toEqual({});
    expect(parseTcpOptions(new Uint8Array([3, 3, 9, 2, 9]))).toEqual({ wscale: 9 });
    expect(parseTcpOptions(new Uint8Array([1, 1, 3, 3, 5, 0, 2, 4, 1, 1]))).toEqual({ wscale: 5 });
  });

  it("simultaneous open: SYN, SYN crossing, SYN-ACKs crossing", async () => {
    const b = new Bench();
    const p = b.stack.connect(REMOTE, REMOTE_PORT, { localPort: 5555 });
    const [syn] = b.take();
    const iss = syn!.seq;
    b.send({ seq: RISS, flags: F.SYN, options: synOptions(1460, undefined), dstPort: 5555 });
    b.expect({ seq: iss, ack: RISS + 1, flags: F.SYN | F.ACK, window: 65535 });
    expect(b.stack.connections()[0]!.state).toBe("SYN-RECEIVED");
    b.send({ seq: RISS, ack: iss + 1, flags: F.SYN | F.ACK, options: synOptions(1460, undefined), dstPort: 5555 });
    b.expectNothing();
    expect((await p).kind).toBe("connected");
    expect(b.stack.connections()[0]!.state).toBe("ESTABLISHED");
  });

  it("connect to a port that answers RST: refused", async () => {
    const b = new Bench();
    const p = b.stack.connect(REMOTE, REMOTE_PORT);
    const [syn] = b.take();
    // An RST without ACK, and one with a wrong ACK, are ignored in SYN-SENT (§3.10.7.3).
    b.send({ seq: 0, flags: F.RST, dstPort: syn!.srcPort });
    b.send({ seq: 0, ack: syn!.seq + 5, flags: F.RST | F.ACK, dstPort: syn!.srcPort });
    b.expectNothing();
    b.send({ seq: 0, ack: syn!.seq + 1, flags: F.RST | F.ACK, dstPort: syn!.srcPort });
    expect(await p).toEqual({ kind: "refused" });
    expect(b.stack.connections()).toEqual([]);
    expect(b.stack.stats().attemptFails).toBe(1);
  });

  it("SYN-SENT: a bad ACK gets an RST <SEQ=SEG.ACK>", () => {
    const b = new Bench();
    void b.stack.connect(REMOTE, REMOTE_PORT);
    const [syn] = b.take();
    b.send({ seq: RISS, ack: syn!.seq + 100, flags: F.SYN | F.ACK, dstPort: syn!.srcPort });
    b.expect({ seq: syn!.seq + 100, ack: 0, flags: F.RST, window: 0 });
  });

  it("SYN retransmitted at 1, 3, 7, 15, 31, 63 s; timeout at 127 s", async () => {
    const b = new Bench();
    const p = b.stack.connect(REMOTE, REMOTE_PORT);
    let result: string | undefined;
    void p.then((r) => (result = r.kind));
    const iss = b.take()[0]!.seq;
    const times: number[] = [];
    for (;;) {
      const d = b.stack.nextDeadline();
      if (d === undefined) break;
      b.at(d);
      for (const s of b.take()) {
        expect(s).toMatchObject({ seq: iss, flags: F.SYN });
        times.push(d);
      }
    }
    expect(times).toEqual([1000, 3000, 7000, 15000, 31000, 63000]);
    expect(b.host.nowMs).toBe(127000);
    await p;
    expect(result).toBe("timeout");
  });

  it("connect timeout option", async () => {
    const b = new Bench();
    const p = b.stack.connect(REMOTE, REMOTE_PORT, { timeoutMs: 2500 });
    b.take();
    b.runUntil(2499);
    expect(b.take().length).toBe(1); // the retransmission at 1 s
    b.at(2500);
    expect(await p).toEqual({ kind: "timeout" });
    expect(b.stack.nextDeadline()).toBeUndefined();
  });

  it("no route: unreachable at once; output() failing is a lost SYN, retried", async () => {
    const b = new Bench();
    expect(await b.stack.connect(UNROUTED, 80)).toEqual({ kind: "unreachable" });
    expect(b.take()).toEqual([]);
    b.host.outputResult = false;
    void b.stack.connect(REMOTE, REMOTE_PORT);
    expect(b.take().length).toBe(1);
    b.at(1000);
    expect(b.take().length).toBe(1);
  });

  it("segments to a closed port get RST with RFC 9293 §3.10.7.1 seq/ack; RST gets nothing", () => {
    const b = new Bench();
    b.send({ seq: RISS, flags: F.SYN, dstPort: 81 });
    b.expect({ seq: 0, ack: RISS + 1, flags: F.RST | F.ACK, window: 0 });
    b.send({ seq: RISS, ack: 5555, flags: F.ACK, payload: 10, dstPort: 81 });
    b.expect({ seq: 5555, ack: 0, flags: F.RST, window: 0 });
    b.send({ seq: 0xffff_fffe, flags: F.FIN | F.PSH, payload: 10, dstPort: 81 });
    b.expect({ seq: 0, ack: 9, flags: F.RST | F.ACK, window: 0 }); // wraps: 2^32 - 2 + 11
    b.send({ seq: RISS, flags: F.RST, dstPort: 81 });
    b.send({ seq: RISS, ack: 1, flags: F.RST | F.ACK, dstPort: 81 });
    b.expectNothing();
    // A listener answers a bare ACK (no connection) with RST too.
    b.stack.listen(LOCAL_PORT);
    b.send({ seq: RISS, ack: 777, flags: F.ACK });
    b.expect({ seq: 777, ack: 0, flags: F.RST, window: 0 });
    expect(b.stack.stats().outRsts).toBe(4);
  });

  it("listen backlog without SYN cookies: SYN queue and accept queue each hold `backlog`, excess SYNs dropped and counted", async () => {
    const b = new Bench({ syncookies: false });
    const l = b.stack.listen(LOCAL_PORT, { backlog: 2 });
    if (l.kind !== "listening") throw new Error();
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1001 });
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1002 });
    const [a1, a2] = b.take();
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1003 });
    b.expectNothing();
    // SYN queue full: a drop (Linux ListenDrops), not an accept-queue overflow.
    expect(b.stack.stats()).toMatchObject({ listenDrops: 1, listenOverflows: 0 });
    // Completing both handshakes moves them to the accept queue: the SYN queue has room, the
    // accept queue is full, so a SYN is dropped as an overflow.
    b.send({ seq: RISS + 1, ack: a1!.seq + 1, flags: F.ACK, srcPort: 1001 });
    b.send({ seq: RISS + 1, ack: a2!.seq + 1, flags: F.ACK, srcPort: 1002 });
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1003 });
    b.expectNothing();
    expect(b.stack.stats()).toMatchObject({ listenDrops: 2, listenOverflows: 1 });
    const s = await l.listener.accept();
    expect(s!.remote).toEqual({ ip: REMOTE, port: 1001 });
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1003 });
    expect(b.take().map((x) => x.flags)).toEqual([F.SYN | F.ACK]);
  });

  it("a full connection table drops SYNs", () => {
    const b = new Bench({ maxConnections: 1 });
    b.stack.listen(LOCAL_PORT);
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1001 });
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1002 });
    expect(b.take().length).toBe(1);
    expect(b.stack.stats().tableFullDrops).toBe(1);
  });

  it("SYN-RECEIVED: SYN-ACK retransmitted (1 s, doubling), and at once on a retransmitted SYN", () => {
    const b = new Bench();
    b.stack.listen(LOCAL_PORT);
    b.send({ seq: RISS, flags: F.SYN });
    const iss = b.take()[0]!.seq;
    b.at(1000);
    b.expect({ seq: iss, ack: RISS + 1, flags: F.SYN | F.ACK, window: 65535 });
    b.at(2999);
    b.expectNothing();
    b.at(3000);
    b.expect({ seq: iss, ack: RISS + 1, flags: F.SYN | F.ACK, window: 65535 });
    b.send({ seq: RISS, flags: F.SYN });
    b.expect({ seq: iss, ack: RISS + 1, flags: F.SYN | F.ACK, window: 65535 });
  });
});
