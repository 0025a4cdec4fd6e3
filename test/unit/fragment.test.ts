import { describe, expect, it } from "vitest";
import { REASSEMBLY_TIMEOUT_MS, Reassembler, fragmentIpv4 } from "../../node-agent/fragment.ts";
import { IpProtocol, emitIpv4, parseIpv4, type Ipv4Packet } from "../../overlay/wire/index.ts";
import { mulberry32, randomBytes } from "./wire/rng.ts";

function packet(payloadLength: number, id = 7): Uint8Array {
  const b = new Uint8Array(20 + payloadLength);
  b.set(randomBytes(mulberry32(id), payloadLength), 20);
  emitIpv4({ src: 0x0af40002, dst: 0x0af40102, protocol: IpProtocol.UDP, ttl: 64, tos: 0, identification: id, dontFragment: false, moreFragments: false, fragmentOffset: 0, payloadLength }, b, 0);
  return b;
}

function parsed(b: Uint8Array): Ipv4Packet {
  const r = parseIpv4(b);
  if (!r.ok) throw r.error;
  return r.value;
}

describe("IPv4 fragmentation (RFC 791)", () => {
  it("splits into fragments that fit the MTU, data in multiples of 8, MF on all but the last, valid checksums", () => {
    const frags = fragmentIpv4(packet(4000), 1450, 0).map(parsed);
    expect(frags.map((f) => f.headerLength + f.payload.length)).toEqual([1444, 1444, 1172]);
    expect(frags.map((f) => f.fragmentOffset)).toEqual([0, 1424, 2848]);
    expect(frags.map((f) => f.moreFragments)).toEqual([true, true, false]);
    expect(frags.every((f) => f.identification === 7 && !f.dontFragment)).toBe(true);
  });

  it("leaves headroom in front of each fragment", () => {
    const [first] = fragmentIpv4(packet(3000), 1450, 64);
    expect(first!.byteOffset).toBe(64);
  });

  it("refuses a packet with DF set", () => {
    const p = packet(3000);
    p[6] = 0x40;
    expect(() => fragmentIpv4(p, 1450, 0)).toThrow(RangeError);
  });
});

describe("IPv4 reassembly", () => {
  it("rebuilds the datagram from fragments in any order", () => {
    const original = packet(4000);
    const frags = fragmentIpv4(original, 1450, 0);
    const r = new Reassembler();
    expect(r.add(parsed(frags[2]!), frags[2]!, 0).kind).toBe("incomplete");
    expect(r.add(parsed(frags[0]!), frags[0]!, 1).kind).toBe("incomplete");
    const done = r.add(parsed(frags[1]!), frags[1]!, 2);
    expect(done.kind).toBe("complete");
    if (done.kind !== "complete") return;
    expect(done.packet).toEqual(original);
    expect(r.size).toBe(0);
  });

  it("keeps datagrams apart by identification", () => {
    const r = new Reassembler();
    const a = fragmentIpv4(packet(3000, 1), 1450, 0);
    const b = fragmentIpv4(packet(3000, 2), 1450, 0);
    r.add(parsed(a[0]!), a[0]!, 0);
    r.add(parsed(b[1]!), b[1]!, 0);
    expect(r.size).toBe(2);
  });

  it("gives up on an incomplete datagram after the timeout", () => {
    const r = new Reassembler();
    const frags = fragmentIpv4(packet(3000), 1450, 0);
    r.add(parsed(frags[0]!), frags[0]!, 0);
    expect(r.expire(REASSEMBLY_TIMEOUT_MS - 1)).toBe(0);
    expect(r.expire(REASSEMBLY_TIMEOUT_MS)).toBe(1);
    expect(r.size).toBe(0);
  });

  it("rejects a fragment that would end past 64 KiB", () => {
    const r = new Reassembler();
    const [first] = fragmentIpv4(packet(3000), 1450, 0);
    const p = parsed(first!);
    expect(r.add({ ...p, fragmentOffset: 65_000 }, first!, 0)).toMatchObject({ kind: "invalid" });
  });
});

describe("reassembly memory bound (ipfrag_high_thresh)", () => {
  it("evicts the oldest datagrams and never holds more than its bound", () => {
    const r = new Reassembler(64 * 1024);
    let full = 0;
    for (let id = 0; id < 5_000; id++) {
      const frag = firstFragment(id);
      const res = r.add(frag.pkt, frag.bytes, id);
      if (res.kind === "full") full++;
      expect(r.memory).toBeLessThanOrEqual(64 * 1024);
    }
    expect(full).toBe(0);
    expect(r.evicted).toBeGreaterThan(4_000);
    expect(r.size).toBeLessThan(100);
  });
});

function firstFragment(id: number): { pkt: Ipv4Packet; bytes: Uint8Array } {
  const [first] = fragmentIpv4(packet(3000, id), 1450, 0);
  return { pkt: parsed(first!), bytes: first! };
}
