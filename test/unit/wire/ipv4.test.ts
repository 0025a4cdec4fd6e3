import { describe, expect, it } from "vitest";
import { internetChecksum, readU16 } from "../../../overlay/wire/common.ts";
import {
  emitIpv4,
  IPV4_HEADER_LEN,
  IpProtocol,
  ipv4DecrementTtl,
  ipv4HeaderChecksumOk,
  parseIpv4,
} from "../../../overlay/wire/ipv4.ts";
import type { Ipv4Packet, Ipv4Repr } from "../../../overlay/wire/ipv4.ts";
import { hex, mulberry32, randInt, randomBytes } from "./rng.ts";

// The classic example header (192.168.0.1 -> 192.168.0.199, UDP, DF, TTL 64), checksum 0xb861.
const CLASSIC = hex("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7");
const CLASSIC_REPR: Ipv4Repr = {
  src: 0xc0a80001,
  dst: 0xc0a800c7,
  protocol: IpProtocol.UDP,
  ttl: 64,
  tos: 0,
  identification: 0,
  dontFragment: true,
  moreFragments: false,
  fragmentOffset: 0,
  payloadLength: 0x73 - 20,
};

function classicPacket(): Uint8Array {
  const p = new Uint8Array(0x73);
  p.set(CLASSIC);
  for (let i = 20; i < p.length; i++) p[i] = i;
  return p;
}

function reprOf(p: Ipv4Packet): Ipv4Repr {
  const { headerLength: _h, payload: _p, ...repr } = p;
  return repr;
}

function code(r: { ok: boolean; error?: { code: string } }): string | undefined {
  return r.ok ? undefined : r.error!.code;
}

describe("ipv4", () => {
  it("emits the classic header byte for byte", () => {
    const buf = new Uint8Array(20);
    emitIpv4(CLASSIC_REPR, buf, 0);
    expect(buf).toEqual(CLASSIC);
  });

  it("parses the classic packet", () => {
    const p = classicPacket();
    const r = parseIpv4(p);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(reprOf(r.value)).toEqual(CLASSIC_REPR);
    expect(r.value.headerLength).toBe(20);
    expect(r.value.payload.length).toBe(95);
    expect(r.value.payload[0]).toBe(20);
    expect(r.value.payload.buffer).toBe(p.buffer);
  });

  it("round-trips edge reprs", () => {
    const base = CLASSIC_REPR;
    const reprs: Ipv4Repr[] = [
      { ...base, ttl: 0 },
      { ...base, ttl: 255, tos: 0xff, identification: 0xffff },
      { ...base, dontFragment: false, moreFragments: true, fragmentOffset: 0 },
      { ...base, dontFragment: false, moreFragments: true, fragmentOffset: 1480 },
      { ...base, dontFragment: false, moreFragments: false, fragmentOffset: 8 * 0x1fff },
      { ...base, dontFragment: true, moreFragments: true, fragmentOffset: 8 },
      { ...base, src: 0, dst: 0xffffffff, protocol: IpProtocol.TCP, payloadLength: 0 },
      { ...base, src: 0x0af40105, dst: 0x0af40207, protocol: IpProtocol.ICMP, payloadLength: 65535 - 20 },
    ];
    for (const repr of reprs) {
      const buf = new Uint8Array(IPV4_HEADER_LEN + repr.payloadLength);
      emitIpv4(repr, buf, 0);
      const r = parseIpv4(buf);
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(reprOf(r.value)).toEqual(repr);
        expect(r.value.payload.length).toBe(repr.payloadLength);
      }
    }
  });

  it("emits at an offset inside a larger buffer", () => {
    const buf = new Uint8Array(14 + 20 + 4);
    emitIpv4({ ...CLASSIC_REPR, payloadLength: 4 }, buf, 14);
    const r = parseIpv4(buf.subarray(14));
    expect(r.ok && reprOf(r.value)).toEqual({ ...CLASSIC_REPR, payloadLength: 4 });
  });

  it("ignores Ethernet padding past the total length", () => {
    // A 20-byte header with 6 bytes of payload in a minimum-size (46-byte payload) frame.
    const buf = new Uint8Array(46).fill(0xee);
    emitIpv4({ ...CLASSIC_REPR, payloadLength: 6 }, buf, 0);
    const r = parseIpv4(buf);
    expect(r.ok && r.value.payload.length).toBe(6);
  });

  it("accepts and skips options", () => {
    // IHL 6, IGMP with a Router Alert option (RFC 2113: 94 04 00 00), as IGMPv2 reports carry.
    const buf = new Uint8Array(28);
    buf.set(hex("46 00 00 1c 12 34 00 00 01 02 00 00 0a 00 00 01 0a 00 00 02 94 04 00 00"));
    buf.set([9, 8, 7, 6], 24);
    buf[10] = 0;
    buf[11] = 0;
    const cs = internetChecksum(buf, 0, 24);
    buf[10] = cs >>> 8;
    buf[11] = cs & 0xff;
    const r = parseIpv4(buf);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.headerLength).toBe(24);
    expect(r.value.payloadLength).toBe(4);
    expect(Array.from(r.value.payload)).toEqual([9, 8, 7, 6]);
    expect(r.value.ttl).toBe(1);
    expect(r.value.protocol).toBe(2); // IGMP, which is what carries Router Alert
  });

  it("reports every prefix shorter than the total length as Truncated", () => {
    const p = classicPacket();
    for (let n = 0; n < p.length; n++) expect(code(parseIpv4(p.subarray(0, n)))).toBe("Truncated");
    expect(parseIpv4(p).ok).toBe(true);
  });

  it("reports Truncated when the buffer is shorter than IHL", () => {
    const b = new Uint8Array(24);
    b[0] = 0x4f; // IHL 15 = 60 bytes
    expect(code(parseIpv4(b))).toBe("Truncated");
  });

  it("rejects bad version, IHL and total length as Malformed", () => {
    const p = classicPacket();
    for (const first of [0x65, 0x05, 0xf5, 0x44, 0x40]) {
      const b = p.slice();
      b[0] = first;
      expect(code(parseIpv4(b))).toBe("Malformed");
    }
    const b = p.slice();
    b[2] = 0;
    b[3] = 19; // total length below header length
    expect(code(parseIpv4(b))).toBe("Malformed");
  });

  it("detects a corrupted header as Checksum, and skips the check on request", () => {
    const p = classicPacket();
    for (let i = 0; i < 20; i++) {
      // Skip bytes whose corruption is caught earlier (version/IHL, total length).
      if (i === 0 || i === 2 || i === 3) continue;
      const b = p.slice();
      b[i]! ^= 0x10;
      expect(code(parseIpv4(b))).toBe("Checksum");
      expect(parseIpv4(b, { verifyChecksum: false }).ok).toBe(true);
    }
    // Corrupting the payload is not the header checksum's business.
    const b = p.slice();
    b[50]! ^= 0xff;
    expect(parseIpv4(b).ok).toBe(true);
  });

  it("ipv4HeaderChecksumOk checks a header at an offset", () => {
    const buf = new Uint8Array(34);
    buf.set(CLASSIC, 14);
    expect(ipv4HeaderChecksumOk(buf, 14, 20)).toBe(true);
    buf[14 + 15]! ^= 1;
    expect(ipv4HeaderChecksumOk(buf, 14, 20)).toBe(false);
  });

  it("ipv4DecrementTtl matches a full recomputation on many random headers", () => {
    const rng = mulberry32(0x1624);
    const buf = new Uint8Array(8 + 20);
    for (let i = 0; i < 10_000; i++) {
      const off = randInt(rng, 9);
      buf.fill(0);
      buf.set(randomBytes(rng, 20), off);
      buf[off] = 0x45;
      // Bias towards the edges of the TTL range and towards protocol 0/255.
      const t = randInt(rng, 8);
      buf[off + 8] = t === 0 ? 1 : t === 1 ? 255 : t === 2 ? 0 : randInt(rng, 256);
      if (randInt(rng, 4) === 0) buf[off + 9] = randInt(rng, 2) * 255;
      buf[off + 10] = 0;
      buf[off + 11] = 0;
      const full = internetChecksum(buf, off, 20);
      buf[off + 10] = full >>> 8;
      buf[off + 11] = full & 0xff;
      const before = buf[off + 8]!;
      const ttl = ipv4DecrementTtl(buf, off);
      expect(ttl).toBe(before === 0 ? 0 : before - 1);
      expect(buf[off + 8]).toBe(ttl);
      const incremental = readU16(buf, off + 10);
      buf[off + 10] = 0;
      buf[off + 11] = 0;
      const recomputed = internetChecksum(buf, off, 20);
      if (incremental !== recomputed) expect({ i, incremental, recomputed }).toBeUndefined();
      buf[off + 10] = incremental >>> 8;
      buf[off + 11] = incremental & 0xff;
      expect(ipv4HeaderChecksumOk(buf, off, 20)).toBe(true);
    }
  });

  it("ipv4DecrementTtl on the classic header", () => {
    const b = CLASSIC.slice();
    expect(ipv4DecrementTtl(b, 0)).toBe(63);
    // 0xb861 + 0x0100 = 0xb961 (one less TTL adds 0x100 to the checksum).
    expect(b).toEqual(hex("45 00 00 73 00 00 40 00 3f 11 b9 61 c0 a8 00 01 c0 a8 00 c7"));
    expect(parseIpv4(b, { verifyChecksum: true }).ok).toBe(false); // truncated: no payload
    expect(ipv4HeaderChecksumOk(b, 0, 20)).toBe(true);
  });
});
