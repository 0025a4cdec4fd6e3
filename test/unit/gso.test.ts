import { describe, expect, it } from "vitest";
import { groCandidate, groContinues, groMerge, gsoSegment, type GroSegment } from "../../node-agent/gso.ts";
import { PacketPool } from "../../node-agent/packet.ts";
import { TcpFlag, readU32 } from "../../overlay/wire/index.ts";
import { checksums, ip, ipBytes, tcpPacket, udpPacket } from "./packets.ts";
import { mulberry32, randomBytes } from "./wire/rng.ts";

const A = ip("10.244.1.2");
const B = ip("10.244.0.3");
const pool = new PacketPool();

/** Ethernet-framed IPv4 packets laid one after another in a buffer, as frames in an overlay message. */
function message(packets: Uint8Array[]): { buf: Uint8Array; frames: Array<{ off: number; len: number }> } {
  const total = packets.reduce((n, p) => n + 14 + p.length + 3, 0);
  const buf = new Uint8Array(total);
  const frames: Array<{ off: number; len: number }> = [];
  let off = 3;
  for (const p of packets) {
    buf[off + 12] = 0x08;
    buf.set(p, off + 14);
    frames.push({ off, len: 14 + p.length });
    off += 14 + p.length;
  }
  return { buf, frames };
}

function segments(n: number, mss: number, opts: { flags?: number; seq0?: number } = {}): { packets: Uint8Array[]; data: Uint8Array } {
  const data = randomBytes(mulberry32(n), n * mss - 100);
  const packets: Uint8Array[] = [];
  for (let i = 0; i * mss < data.length; i++) {
    const payload = data.subarray(i * mss, Math.min(data.length, (i + 1) * mss));
    const last = (i + 1) * mss >= data.length;
    const flags = TcpFlag.ACK | (last ? (opts.flags ?? TcpFlag.PSH) : 0);
    packets.push(ipBytes(tcpPacket({ src: A, dst: B, sport: 80, dport: 40000, seq: (opts.seq0 ?? 1000) + i * mss, ack: 77, flags, payload, identification: 100 + i })).slice());
  }
  return { packets, data };
}

function candidates(buf: Uint8Array, frames: Array<{ off: number; len: number }>): Array<GroSegment | undefined> {
  return frames.map((f) => groCandidate(buf, f.off, f.len, f.off, f.len));
}

describe("GRO and GSO for TCP (tcp_gro_receive / tcp_gso_segment)", () => {
  it("merges a run of consecutive segments and cuts it back into the same segments, checksums valid", () => {
    const { packets, data } = segments(10, 1410);
    const { buf, frames } = message(packets);
    const segs = candidates(buf, frames) as GroSegment[];
    expect(segs.every((s) => s !== undefined)).toBe(true);
    let ipLen = 20 + 20 + segs[0]!.payloadLen;
    for (let i = 1; i < segs.length; i++) {
      expect(groContinues(buf, segs[0]!, segs[i - 1]!, segs[i]!, ipLen, i)).toBe(true);
      ipLen += segs[i]!.payloadLen;
    }
    const merged = groMerge(buf, segs, pool);
    expect(merged.gsoSize).toBe(1410);
    expect(merged.csumOk).toBe(true);
    expect(merged.ipLen).toBe(40 + data.length);
    expect(Buffer.compare(merged.buf.subarray(merged.l4 + 20, merged.l3 + merged.ipLen), data)).toBe(0);
    // PSH of the last segment is kept on the merged packet.
    expect(merged.tcpFlags).toBe(TcpFlag.ACK | TcpFlag.PSH);

    const back = gsoSegment(merged, pool);
    expect(back).toHaveLength(packets.length);
    back.forEach((s, i) => {
      const cs = checksums(s);
      expect(cs.ip.found).toBe(cs.ip.full);
      expect(cs.l4!.found).toBe(cs.l4!.full);
      expect(cs.parsesOk).toBe(true);
      // The same TCP header and payload as the original segment (the IPv4 ids are renumbered).
      expect(Buffer.compare(s.buf.subarray(s.l4, s.l3 + s.ipLen), packets[i]!.subarray(20))).toBe(0);
      expect(readU32(s.buf, s.l4 + 4)).toBe(1000 + i * 1410);
    });
  });

  it("does not merge what tcp_gro_receive flushes: a gap, another flow, a different ACK, after a PSH, SYN/FIN, UDP, a bad checksum", () => {
    const { packets } = segments(3, 1000);
    const gap = ipBytes(tcpPacket({ src: A, dst: B, sport: 80, dport: 40000, seq: 1000 + 5000, ack: 77, flags: TcpFlag.ACK, payload: new Uint8Array(1000) })).slice();
    const other = ipBytes(tcpPacket({ src: A, dst: B, sport: 81, dport: 40000, seq: 2000, ack: 77, flags: TcpFlag.ACK, payload: new Uint8Array(1000) })).slice();
    const newAck = ipBytes(tcpPacket({ src: A, dst: B, sport: 80, dport: 40000, seq: 2000, ack: 78, flags: TcpFlag.ACK, payload: new Uint8Array(1000) })).slice();
    const fin = ipBytes(tcpPacket({ src: A, dst: B, sport: 80, dport: 40000, seq: 2000, ack: 77, flags: TcpFlag.ACK | TcpFlag.FIN, payload: new Uint8Array(10) })).slice();
    const udp = ipBytes(udpPacket({ src: A, dst: B, sport: 80, dport: 40000, payload: new Uint8Array(10) })).slice();
    const bad = packets[1]!.slice();
    bad[bad.length - 1]! ^= 0xff;
    const { buf, frames } = message([packets[0]!, gap, other, newAck, fin, udp, bad]);
    const c = candidates(buf, frames);
    expect(c[4]).toBeUndefined(); // FIN
    expect(c[5]).toBeUndefined(); // UDP
    expect(c[6]).toBeUndefined(); // corrupted
    const first = c[0]!;
    const ipLen = 40 + first.payloadLen;
    expect(groContinues(buf, first, first, c[1]!, ipLen, 1)).toBe(false); // gap
    expect(groContinues(buf, first, first, c[2]!, ipLen, 1)).toBe(false); // other flow
    expect(groContinues(buf, first, first, c[3]!, ipLen, 1)).toBe(false); // new ACK number
    const { packets: pushed } = segments(2, 1000);
    const m = message([packets[2]!, pushed[1]!]);
    const [last, next] = candidates(m.buf, m.frames);
    expect(last!.flags & TcpFlag.PSH).toBe(TcpFlag.PSH);
    expect(groContinues(m.buf, last!, last!, next!, 40 + last!.payloadLen, 1)).toBe(false); // after PSH
  });
});
