import { describe, expect, it } from "vitest";
import { parseTcpOptions, synOptions } from "../../../node-agent/tcp/tcb.ts";
import { Bench, F, LOCAL_PORT, REMOTE, RISS, bytes } from "./harness.ts";

/** A listener with backlog 2 whose SYN queue two spoofed SYNs (never answered) fill. */
function flooded(): { b: Bench; l: import("../../../node-agent/tcp/api.ts").TcpListener } {
  const b = new Bench();
  const r = b.stack.listen(LOCAL_PORT, { backlog: 2 });
  if (r.kind !== "listening") throw new Error();
  b.send({ seq: 5, flags: F.SYN, srcPort: 2001 });
  b.send({ seq: 5, flags: F.SYN, srcPort: 2002 });
  expect(b.take().length).toBe(2);
  return { b, l: r.listener };
}

describe("tcp SYN cookies (RFC 4987 §3.6)", () => {
  it("a full SYN queue answers with a cookie and keeps no state; the ACK opens the connection with its data", async () => {
    const { b, l } = flooded();
    const before = b.stack.stats().connections;
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1001, options: synOptions(1460, 7, true) });
    const [sa, ...more] = b.take();
    expect(more).toEqual([]);
    expect(sa).toMatchObject({ ack: RISS + 1, flags: F.SYN | F.ACK, window: 65535, dstPort: 1001 });
    // Only the MSS: no window scale and no SACK-permitted without state to remember them.
    expect(parseTcpOptions(sa!.options)).toEqual({ mss: 1460 });
    expect(b.stack.stats()).toMatchObject({ syncookiesSent: 1, connections: before });
    b.advance(50);
    b.send({ seq: RISS + 1, ack: sa!.seq + 1, flags: F.ACK | F.PSH, srcPort: 1001, payload: 100 });
    expect(b.stack.stats()).toMatchObject({ syncookiesRecv: 1, syncookiesFailed: 0, connections: before + 1, passiveOpens: 3 });
    const s = await l.accept();
    expect(s!.remote).toEqual({ ip: REMOTE, port: 1001 });
    expect(await s!.read()).toEqual(bytes(100));
    // Established with the cookie's MSS, unscaled windows: a full segment each, window field = bytes.
    expect(await s!.write(bytes(3000))).toBe(true);
    const segs = b.take().filter((x) => x.payload.length > 0);
    expect(segs.map((x) => x.payload.length)).toEqual([1460, 1460, 80]);
    expect(segs[0]).toMatchObject({ seq: sa!.seq + 1, ack: RISS + 101 });
  });

  it("an ACK with a bad or expired cookie gets RST and is counted", () => {
    const { b } = flooded();
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1001 });
    const [sa] = b.take();
    // Wrong cookie (a low-bit change could land on another valid MSS index, as in Linux).
    b.send({ seq: RISS + 1, ack: sa!.seq + 0x1001, flags: F.ACK, srcPort: 1001 });
    b.expect({ seq: sa!.seq + 0x1001, ack: 0, flags: F.RST, window: 0 });
    // The cookie of another client ISN.
    b.send({ seq: RISS + 7, ack: sa!.seq + 1, flags: F.ACK, srcPort: 1001 });
    b.expect({ seq: sa!.seq + 1, ack: 0, flags: F.RST, window: 0 });
    expect(b.stack.stats().syncookiesFailed).toBe(2);
    // Valid through the next 64 s period, not beyond (the counter is now two periods on).
    b.at(128_000);
    b.take();
    b.send({ seq: RISS + 1, ack: sa!.seq + 1, flags: F.ACK, srcPort: 1001 });
    b.expect({ seq: sa!.seq + 1, ack: 0, flags: F.RST, window: 0 });
    expect(b.stack.stats()).toMatchObject({ syncookiesFailed: 3, syncookiesRecv: 0 });
  });

  it("a cookie from the previous 64 s period is still good", async () => {
    const { b, l } = flooded();
    b.at(63_000);
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1001 });
    const [sa] = b.take().filter((x) => x.dstPort === 1001);
    b.at(100_000);
    b.send({ seq: RISS + 1, ack: sa!.seq + 1, flags: F.ACK, srcPort: 1001 });
    expect(b.stack.stats().syncookiesRecv).toBe(1);
    expect((await l.accept())!.remote.port).toBe(1001);
  });

  it("a full accept queue drops SYNs and valid cookie ACKs (no RST); the client's retransmission gets in later", async () => {
    const b = new Bench();
    const r = b.stack.listen(LOCAL_PORT, { backlog: 1 });
    if (r.kind !== "listening") throw new Error();
    b.send({ seq: 5, flags: F.SYN, srcPort: 2001 }); // spoofed: fills the SYN queue
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1001 });
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1002 });
    const [, c1, c2] = b.take();
    expect(b.stack.stats().syncookiesSent).toBe(2);
    b.send({ seq: RISS + 1, ack: c1!.seq + 1, flags: F.ACK, srcPort: 1001 });
    b.send({ seq: RISS + 1, ack: c2!.seq + 1, flags: F.ACK | F.PSH, srcPort: 1002, payload: 10 });
    b.expectNothing(); // the second does not fit in the accept queue: dropped silently
    expect(b.stack.stats()).toMatchObject({ syncookiesRecv: 2, listenOverflows: 1, listenDrops: 1 });
    // A SYN meets the full accept queue too.
    b.send({ seq: RISS, flags: F.SYN, srcPort: 1003 });
    b.expectNothing();
    expect(b.stack.stats()).toMatchObject({ listenOverflows: 2, listenDrops: 2, syncookiesSent: 2 });
    expect((await r.listener.accept())!.remote.port).toBe(1001);
    // The client retransmits its data: the cookie is still good and the queue has room.
    b.send({ seq: RISS + 1, ack: c2!.seq + 1, flags: F.ACK | F.PSH, srcPort: 1002, payload: 10 });
    const s2 = await r.listener.accept();
    expect(s2!.remote.port).toBe(1002);
    expect(await s2!.read()).toEqual(bytes(10));
  });

  it("half-open connections are small: no socket, promise or buffers before the handshake completes", () => {
    const b = new Bench();
    b.stack.listen(LOCAL_PORT, { backlog: 20_000 });
    let sent = 0;
    b.host.output = () => ++sent > 0; // count, do not keep, the SYN-ACKs
    globalThis.gc?.();
    const h0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 10_000; i++) b.send({ seq: i, flags: F.SYN, srcPort: 1024 + i, options: synOptions(1460, 7, true) });
    const perConn = (process.memoryUsage().heapUsed - h0) / 10_000;
    expect(sent).toBe(10_000);
    console.log(`half-open connection: ~${Math.round(perConn)} bytes of heap each`);
    expect(perConn).toBeLessThan(4096);
  });
  it("a flood of 20,000 spoofed SYNs: the SYN queue holds the backlog, the rest get cookies, a real client connects at once", async () => {
    for (const syncookies of [true, false]) {
      const b = new Bench({ syncookies });
      const r = b.stack.listen(LOCAL_PORT); // backlog 511
      if (r.kind !== "listening") throw new Error();
      for (let i = 0; i < 20_000; i++) {
        b.send({ seq: i * 7919, flags: F.SYN, srcPort: 1024 + (i % 60_000), options: synOptions(1460, 7, true) });
      }
      b.take();
      expect(b.stack.stats().connections).toBe(511);
      b.advance(10);
      b.send({ seq: RISS, flags: F.SYN, srcPort: 65_001, options: synOptions(1460, 7, true) });
      const sa = b.take().filter((x) => x.dstPort === 65_001);
      if (!syncookies) {
        // Without cookies the real client's SYN is dropped: it retries for as long as the flood lasts.
        expect(sa).toEqual([]);
        expect(b.stack.stats().listenDrops).toBe(20_000 - 511 + 1);
        continue;
      }
      expect(sa.length).toBe(1);
      b.send({ seq: RISS + 1, ack: sa[0]!.seq + 1, flags: F.ACK | F.PSH, srcPort: 65_001, payload: 5 });
      const s = await r.listener.accept();
      expect(s!.remote.port).toBe(65_001);
      expect(await s!.read()).toEqual(bytes(5));
      expect(b.stack.stats()).toMatchObject({ syncookiesSent: 20_000 - 511 + 1, syncookiesRecv: 1, connections: 512, listenDrops: 0 });
    }
  });
});
