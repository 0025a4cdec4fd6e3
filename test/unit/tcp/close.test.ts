import { describe, expect, it } from "vitest";
import { Bench, F, RISS, bytes } from "./harness.ts";

const SMALL = { recvBufferSize: 65535 };

describe("tcp close and reset", () => {
  it("we close first: FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT for 60 s", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    sock.end();
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.FIN | F.ACK, window: 65535 });
    expect(b.stack.connections()[1]!.state).toBe("FIN-WAIT-1");
    expect(await sock.write(bytes(1))).toBe(false);
    b.send({ seq: RISS + 1, ack: iss + 2, flags: F.ACK });
    b.expectNothing();
    expect(b.stack.connections()[1]!.state).toBe("FIN-WAIT-2");
    // Half-closed: we still receive.
    b.send({ seq: RISS + 1, ack: iss + 2, flags: F.ACK | F.PSH, payload: 5 });
    expect((await sock.read())!.length).toBe(5);
    b.at(1000);
    b.expect({ seq: iss + 2, ack: RISS + 6, flags: F.ACK, window: 65530 }); // the delayed ACK
    b.send({ seq: RISS + 6, ack: iss + 2, flags: F.FIN | F.ACK });
    // The FIN takes one sequence number of the window; reading 5 bytes is below the SWS threshold.
    b.expect({ seq: iss + 2, ack: RISS + 7, flags: F.ACK, window: 65529 });
    expect(b.stack.connections()[1]!.state).toBe("TIME-WAIT");
    expect(await sock.closed).toEqual({ kind: "closed" });
    expect(await sock.read()).toBeNull();
    // A retransmitted FIN is ACKed again and restarts the 2*MSL timer.
    b.at(2000);
    b.send({ seq: RISS + 6, ack: iss + 2, flags: F.FIN | F.ACK });
    b.expect({ seq: iss + 2, ack: RISS + 7, flags: F.ACK, window: 65529 });
    expect(b.stack.nextDeadline()).toBe(62_000);
    b.at(61_999);
    expect(b.stack.connections().length).toBe(2);
    b.at(62_000);
    expect(b.stack.connections().map((c) => c.state)).toEqual(["LISTEN"]);
    expect(b.stack.nextDeadline()).toBeUndefined();
  });

  it("peer closes first: CLOSE-WAIT, read() null, we still write, then LAST-ACK", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    b.send({ seq: RISS + 1, ack: iss + 1, flags: F.FIN | F.ACK });
    b.expect({ seq: iss + 1, ack: RISS + 2, flags: F.ACK, window: 65534 });
    expect(b.stack.connections()[1]!.state).toBe("CLOSE-WAIT");
    expect(await sock.read()).toBeNull();
    expect(await sock.write(bytes(10))).toBe(true);
    b.expect({ seq: iss + 1, ack: RISS + 2, flags: F.ACK | F.PSH, len: 10 });
    b.send({ seq: RISS + 2, ack: iss + 11, flags: F.ACK });
    sock.end();
    b.expect({ seq: iss + 11, ack: RISS + 2, flags: F.FIN | F.ACK });
    expect(b.stack.connections()[1]!.state).toBe("LAST-ACK");
    // The FIN is retransmitted like data.
    b.at(200);
    b.expect({ seq: iss + 11, ack: RISS + 2, flags: F.FIN | F.ACK });
    b.send({ seq: RISS + 2, ack: iss + 12, flags: F.ACK });
    expect(await sock.closed).toEqual({ kind: "closed" });
    expect(b.stack.connections().map((c) => c.state)).toEqual(["LISTEN"]);
  });

  it("simultaneous close: FIN-WAIT-1, CLOSING, TIME-WAIT", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    sock.end();
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.FIN | F.ACK });
    b.send({ seq: RISS + 1, ack: iss + 1, flags: F.FIN | F.ACK }); // crossed: does not ack our FIN
    b.expect({ seq: iss + 2, ack: RISS + 2, flags: F.ACK, window: 65534 });
    expect(b.stack.connections()[1]!.state).toBe("CLOSING");
    b.send({ seq: RISS + 2, ack: iss + 2, flags: F.ACK });
    expect(b.stack.connections()[1]!.state).toBe("TIME-WAIT");
    expect(await sock.closed).toEqual({ kind: "closed" });
  });

  it("FIN-WAIT-1 to TIME-WAIT when the peer's FIN also acks ours", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    sock.end();
    b.take();
    b.send({ seq: RISS + 1, ack: iss + 2, flags: F.FIN | F.ACK });
    b.expect({ seq: iss + 2, ack: RISS + 2, flags: F.ACK, window: 65534 });
    expect(b.stack.connections()[1]!.state).toBe("TIME-WAIT");
  });

  it("RST acceptability (RFC 5961 §3.2): exact resets, in window challenges, outside ignored", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    b.send({ seq: RISS + 1 + 70000, flags: F.RST }); // beyond the window
    b.send({ seq: RISS, flags: F.RST }); // before RCV.NXT
    b.expectNothing();
    b.send({ seq: RISS + 100, flags: F.RST });
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK, window: 65535 });
    expect(b.stack.stats().challengeAcks).toBe(1);
    expect(b.stack.connections()[1]!.state).toBe("ESTABLISHED");
    // A SYN in a synchronized state gets a challenge ACK too (RFC 5961 §4).
    b.send({ seq: RISS + 50, flags: F.SYN });
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK, window: 65535 });
    b.send({ seq: RISS + 1, flags: F.RST });
    b.expectNothing();
    expect(await sock.closed).toEqual({ kind: "reset" });
    expect(await sock.read()).toBeNull();
    expect(b.stack.connections().map((c) => c.state)).toEqual(["LISTEN"]);
    expect(b.stack.stats().estabResets).toBe(1);
  });

  it("abort() sends <SEQ=SND.NXT><CTL=RST>", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    void sock.write(bytes(10));
    b.take();
    sock.abort();
    b.expect({ seq: iss + 11, ack: 0, flags: F.RST, window: 0 });
    expect(await sock.closed).toEqual({ kind: "aborted" });
    expect(b.stack.nextDeadline()).toBeUndefined();
  });

  it("a SYN with a higher sequence number reopens a TIME-WAIT connection", async () => {
    const b = new Bench(SMALL);
    const { iss, sock } = await b.passiveOpen();
    sock.end();
    b.send({ seq: RISS + 1, ack: iss + 2, flags: F.FIN | F.ACK });
    b.take();
    b.send({ seq: RISS + 100_000, flags: F.SYN });
    const [synAck] = b.take();
    expect(synAck).toMatchObject({ ack: RISS + 100_001, flags: F.SYN | F.ACK });
    expect(b.stack.connections()[1]!.state).toBe("SYN-RECEIVED");
  });

  it("listener close resets connections not yet accepted; accept() then returns null", async () => {
    const b = new Bench(SMALL);
    const l = b.stack.listen(80);
    if (l.kind !== "listening") throw new Error();
    b.send({ seq: RISS, flags: F.SYN });
    const iss = b.take()[0]!.seq;
    b.send({ seq: RISS + 1, ack: iss + 1, flags: F.ACK });
    l.listener.close();
    b.expect({ seq: iss + 1, ack: 0, flags: F.RST, window: 0 });
    expect(await l.listener.accept()).toBeNull();
    expect(b.stack.connections()).toEqual([]);
  });
});
