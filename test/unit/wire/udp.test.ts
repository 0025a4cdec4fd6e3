import { describe, expect, it } from "vitest";
import { emitUdp, parseUdp, UDP_HEADER_LEN } from "../../../overlay/wire/udp.ts";
import type { PseudoHeader, UdpRepr } from "../../../overlay/wire/udp.ts";
import { hex } from "./rng.ts";

// A DNS query for example.com A, 192.168.1.100:51234 -> 8.8.8.8:53; checksum 0xe9f4
// computed independently (Python, RFC 1071 over pseudo-header + datagram).
const DNS = hex(
  "c8 22 00 35 00 25 e9 f4 ab cd 01 00 00 01 00 00 00 00 00 00" +
    "07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01",
);
const DNS_PSEUDO: PseudoHeader = { src: 0xc0a80164, dst: 0x08080808 };

function code(r: { ok: boolean; error?: { code: string } }): string | undefined {
  return r.ok ? undefined : r.error!.code;
}

describe("udp", () => {
  it("parses and verifies a known DNS query", () => {
    const r = parseUdp(DNS, DNS_PSEUDO);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.srcPort).toBe(51234);
    expect(r.value.dstPort).toBe(53);
    expect(r.value.checksum).toBe(0xe9f4);
    expect(r.value.payload.length).toBe(29);
    expect(r.value.payload.buffer).toBe(DNS.buffer);
  });

  it("emits the known DNS query byte for byte", () => {
    const buf = new Uint8Array(DNS.length);
    emitUdp({ srcPort: 51234, dstPort: 53 }, DNS.subarray(8), buf, 0, DNS_PSEUDO);
    expect(buf).toEqual(DNS);
  });

  it("round-trips reprs, with and without checksum", () => {
    const reprs: UdpRepr[] = [
      { srcPort: 0, dstPort: 0 },
      { srcPort: 65535, dstPort: 65535 },
      { srcPort: 4789, dstPort: 4789 },
    ];
    const pseudo: PseudoHeader = { src: 0x0af40105, dst: 0xffffffff };
    for (const repr of reprs) {
      for (const payload of [new Uint8Array(0), new Uint8Array([1]), new Uint8Array(1473).fill(0xab)]) {
        for (const ph of [undefined, pseudo]) {
          const buf = new Uint8Array(UDP_HEADER_LEN + payload.length);
          emitUdp(repr, payload, buf, 0, ph);
          const r = parseUdp(buf, pseudo);
          expect(r.ok).toBe(true);
          if (!r.ok) continue;
          expect({ srcPort: r.value.srcPort, dstPort: r.value.dstPort }).toEqual(repr);
          expect(r.value.payload).toEqual(payload);
          if (ph === undefined) expect(r.value.checksum).toBe(0);
          else expect(r.value.checksum).not.toBe(0);
        }
      }
    }
  });

  it("sends a computed checksum of 0 as 0xffff (RFC 768)", () => {
    // Choose the payload so the sum over pseudo-header + header is all ones: checksum 0.
    const pseudo: PseudoHeader = { src: 0, dst: 0 };
    const buf = new Uint8Array(10);
    // Sum before payload: proto 17 + length 10 (pseudo) + ports 0 + length 10 = 37 = 0x25.
    const payload = new Uint8Array([0xff, 0xff - 0x25]);
    emitUdp({ srcPort: 0, dstPort: 0 }, payload, buf, 0, pseudo);
    expect(Array.from(buf.subarray(6, 8))).toEqual([0xff, 0xff]);
    expect(parseUdp(buf, pseudo).ok).toBe(true);
  });

  it("skips the payload copy when the payload is already in place, and copies otherwise", () => {
    const buf = new Uint8Array(8 + 4 + 8);
    buf.set([1, 2, 3, 4], 8 + 4);
    emitUdp({ srcPort: 1, dstPort: 2 }, buf.subarray(12, 16), buf, 4);
    expect(Array.from(buf.subarray(12, 16))).toEqual([1, 2, 3, 4]);
    const r = parseUdp(buf.subarray(4, 16));
    expect(r.ok && Array.from(r.value.payload)).toEqual([1, 2, 3, 4]);
    // A payload just below the header in the same buffer (in-place encapsulation) survives.
    const b2 = new Uint8Array(20);
    b2.set([9, 8, 7], 0);
    emitUdp({ srcPort: 1, dstPort: 2 }, b2.subarray(0, 3), b2, 2);
    expect(Array.from(b2.subarray(10, 13))).toEqual([9, 8, 7]);
  });

  it("bounds the payload by the length field", () => {
    const buf = new Uint8Array(DNS.length + 5).fill(0xee);
    buf.set(DNS);
    const r = parseUdp(buf, DNS_PSEUDO);
    expect(r.ok && r.value.payload.length).toBe(29);
  });

  it("reports every prefix shorter than the length field as Truncated", () => {
    for (let n = 0; n < DNS.length; n++) expect(code(parseUdp(DNS.subarray(0, n), DNS_PSEUDO))).toBe("Truncated");
  });

  it("rejects a length field below 8 as Malformed", () => {
    for (const len of [0, 1, 7]) {
      const b = DNS.slice();
      b[4] = 0;
      b[5] = len;
      expect(code(parseUdp(b))).toBe("Malformed");
    }
  });

  it("detects corruption as Checksum only when a pseudo-header is given and checksum != 0", () => {
    for (let i = 0; i < DNS.length; i++) {
      if (i === 4 || i === 5) continue; // length changes are caught as Truncated/Malformed
      const b = DNS.slice();
      b[i]! ^= 0x40;
      expect(code(parseUdp(b, DNS_PSEUDO))).toBe("Checksum");
      expect(parseUdp(b).ok).toBe(true);
    }
    expect(code(parseUdp(DNS, { src: 0xc0a80165, dst: 0x08080808 }))).toBe("Checksum");
    const none = DNS.slice();
    none[6] = 0;
    none[7] = 0;
    expect(parseUdp(none, DNS_PSEUDO).ok).toBe(true);
  });
});
