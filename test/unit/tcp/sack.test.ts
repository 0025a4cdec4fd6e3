import { describe, expect, it } from "vitest";
import type { SegmentOut } from "../../../node-agent/tcp/api.ts";
import { parseTcpOptions, sackOption, synOptions } from "../../../node-agent/tcp/tcb.ts";
import { Bench, F, LOCAL_PORT, RISS, bytes } from "./harness.ts";

const SACK_SYN = synOptions(1460, undefined, true);
const MSS = 1460;

/** The SACK blocks of a segment as [left, right] pairs relative to `base`. */
function blocks(s: SegmentOut, base: number): Array<[number, number]> {
  const o = s.options;
  const out: Array<[number, number]> = [];
  for (let i = 0; i < o.length; ) {
    if (o[i] === 1) {
      i++;
      continue;
    }
    if (o[i] === 5) {
      const v = new DataView(o.buffer, o.byteOffset + i, o[i + 1]!);
      for (let k = 2; k < o[i + 1]!; k += 8) out.push([(v.getUint32(k) - base) | 0, (v.getUint32(k + 4) - base) | 0]);
    }
    i += o[i + 1]!;
  }
  return out;
}

describe("tcp SACK (RFC 2018, RFC 6675)", () => {
  it("SACK-permitted: offered in our SYN, in the SYN-ACK only when the SYN had it, off by option", () => {
    const b = new Bench();
    void b.stack.connect(0x0a00_0002, 80);
    expect(parseTcpOptions(b.take()[0]!.options).sackOk).toBe(true);
    b.stack.listen(LOCAL_PORT);
    b.send({ seq: RISS, flags: F.SYN, options: SACK_SYN, srcPort: 1001 });
    expect(parseTcpOptions(b.take()[0]!.options)).toEqual({ mss: 1460, sackOk: true });
    b.send({ seq: RISS, flags: F.SYN, options: synOptions(1460, undefined), srcPort: 1002 });
    expect(parseTcpOptions(b.take()[0]!.options)).toEqual({ mss: 1460 });
    const off = new Bench({ sack: false });
    void off.stack.connect(0x0a00_0002, 80);
    expect(parseTcpOptions(off.take()[0]!.options).sackOk).toBeUndefined();
    off.stack.listen(LOCAL_PORT);
    off.send({ seq: RISS, flags: F.SYN, options: SACK_SYN });
    expect(parseTcpOptions(off.take()[0]!.options).sackOk).toBeUndefined();
  });

  it("receiver: SACK blocks for out-of-order data, most recent first, at most 4; none without SACK", async () => {
    const b = new Bench();
    const { iss } = await b.passiveOpen({ synOptions: SACK_SYN });
    const base = RISS + 1;
    const seg = (k: number): void => b.send({ seq: base + k * 100, ack: iss + 1, flags: F.ACK, payload: bytes(100, k * 100) });
    const ack = (): [number, Array<[number, number]>] => {
      const out = b.take();
      expect(out.length).toBe(1);
      return [out[0]!.ack - base, blocks(out[0]!, base)];
    };
    seg(2);
    expect(ack()).toEqual([0, [[200, 300]]]);
    seg(4);
    expect(ack()).toEqual([0, [[400, 500], [200, 300]]]);
    seg(3); // bridges two blocks
    expect(ack()).toEqual([0, [[200, 500]]]);
    seg(6);
    seg(8);
    b.take();
    seg(10);
    expect(ack()).toEqual([0, [[1000, 1100], [800, 900], [600, 700], [200, 500]]]);
    seg(12);
    expect(ack()).toEqual([0, [[1200, 1300], [1000, 1100], [800, 900], [600, 700]]]);
    seg(3); // a duplicate inside a block: that block first
    expect(ack()).toEqual([0, [[200, 500], [1200, 1300], [1000, 1100], [800, 900]]]);
    seg(0);
    seg(1); // fills the first hole: delivered up to 500
    expect(b.take().map((s) => [s.ack - base, blocks(s, base)])).toEqual([
      [100, [[200, 500], [1200, 1300], [1000, 1100], [800, 900]]],
      [500, [[1200, 1300], [1000, 1100], [800, 900], [600, 700]]],
    ]);
    // Without SACK negotiated, no option at all.
    const nb = new Bench();
    const n = await nb.passiveOpen();
    nb.send({ seq: base + 200, ack: n.iss + 1, flags: F.ACK, payload: 100 });
    expect(nb.take()[0]!.options.length).toBe(0);
  });

  it("sender: 3 holes in one window recovered with exactly one retransmission each, no RTO", async () => {
    const b = new Bench({ recvBufferSize: 65535 });
    const { iss, sock } = await b.passiveOpen({ synOptions: SACK_SYN });
    const s = (k: number): number => iss + 1 + k * MSS;
    expect(await sock.write(bytes(10 * MSS))).toBe(true);
    expect(b.take().map((x) => x.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(s));
    // Segments 1, 4 and 7 are lost; the receiver ACKs each arrival at once (RFC 5681 §4.2).
    const ackWith = (una: number, sacks: number[]): SegmentOut[] => {
      b.send({ seq: RISS + 1, ack: s(una), flags: F.ACK, options: sacks.length > 0 ? sackOption(sacks.map(s)) : undefined });
      return b.take();
    };
    const rtx = (out: SegmentOut[]): number[] => out.map((x) => Math.round((x.seq - iss - 1) / MSS));
    expect(rtx(ackWith(1, []))).toEqual([]); // segment 0
    expect(rtx(ackWith(1, [2, 3]))).toEqual([]); // 2: dup ACK 1
    expect(rtx(ackWith(1, [2, 4]))).toEqual([]); // 3: dup ACK 2
    // 5: dup ACK 3 -> recovery, segment 1 at once; cwnd = ssthresh = FlightSize/2 = 4.5 segments,
    // pipe 6 segments: nothing more.
    expect(rtx(ackWith(1, [5, 6, 2, 4]))).toEqual([1]);
    expect(rtx(ackWith(1, [5, 7, 2, 4]))).toEqual([]); // 6
    // 8: 3 segments SACKed above segment 4 -> lost (IsLost); pipe 3 -> one retransmission.
    expect(rtx(ackWith(1, [8, 9, 5, 7, 2, 4]))).toEqual([4]);
    // 9: no new data to send, segment 7 goes as NextSeg rule 3.
    expect(rtx(ackWith(1, [8, 10, 5, 7, 2, 4]))).toEqual([7]);
    // The retransmissions arrive: partial ACKs send nothing more, the full ACK ends recovery.
    expect(rtx(ackWith(4, [8, 10, 5, 7]))).toEqual([]);
    expect(rtx(ackWith(7, [8, 10]))).toEqual([]);
    expect(rtx(ackWith(10, []))).toEqual([]);
    expect(b.stack.stats()).toMatchObject({ retransSegs: 3, sackRetransSegs: 3, fastRetransmits: 1, sackRecoveries: 1, timeouts: 0 });
    expect(b.stack.connections()[1]!.sendQueue).toBe(0);
    expect(b.stack.nextDeadline()).toBeUndefined();
  });

  it("after an RTO, going back N skips what the scoreboard holds (RFC 6675 §5.1)", async () => {
    const b = new Bench({ recvBufferSize: 65535 });
    const { iss, sock } = await b.passiveOpen({ synOptions: SACK_SYN });
    const s = (k: number): number => iss + 1 + k * MSS;
    await sock.write(bytes(6 * MSS));
    b.take();
    // Segments 0, 1 and 3 lost; 2 and 4 SACKed: 2 dup ACKs, 2 segments SACKed, nothing IsLost yet.
    b.send({ seq: RISS + 1, ack: s(0), flags: F.ACK, options: sackOption([s(2), s(3)]) });
    b.send({ seq: RISS + 1, ack: s(0), flags: F.ACK, options: sackOption([s(4), s(5), s(2), s(3)]) });
    expect(b.take()).toEqual([]);
    b.at(200); // RTO
    expect(b.take().map((x) => x.seq)).toEqual([s(0)]);
    // The ACK of segment 0 opens cwnd to 2: segments 1 and 3 go, 2 is skipped.
    b.send({ seq: RISS + 1, ack: s(1), flags: F.ACK, options: sackOption([s(4), s(5), s(2), s(3)]) });
    expect(b.take().map((x) => Math.round((x.seq - iss - 1) / MSS))).toEqual([1, 3]);
    b.send({ seq: RISS + 1, ack: s(6), flags: F.ACK });
    expect(b.take()).toEqual([]);
    expect(b.stack.stats().retransSegs).toBe(3);
  });
});
