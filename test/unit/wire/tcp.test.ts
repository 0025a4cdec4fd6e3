import { describe, expect, it } from "vitest";
import { emitTcp, parseTcp, parseTcpMss, TCP_HEADER_LEN, TcpFlag, tcpHeaderLen } from "../../../overlay/wire/tcp.ts";
import type { TcpRepr, TcpSegment } from "../../../overlay/wire/tcp.ts";
import type { PseudoHeader } from "../../../overlay/wire/udp.ts";
import { hex } from "./rng.ts";

// A Linux-style SYN 10.244.1.5:43210 -> 10.244.2.7:80 with MSS 1460, SACK-permitted,
// timestamps, NOP, window scale 7; checksum 0x5247 computed independently (Python, RFC 1071).
const SYN = hex(
  "a8 ca 00 50 1a 2b 3c 4d 00 00 00 00 a0 02 fa f0 52 47 00 00" +
    "02 04 05 b4 04 02 08 0a 00 01 e2 40 00 00 00 00 01 03 03 07",
);
const SYN_PSEUDO: PseudoHeader = { src: 0x0af40105, dst: 0x0af40207 };

function code(r: { ok: boolean; error?: { code: string } }): string | undefined {
  return r.ok ? undefined : r.error!.code;
}

function reprOf(s: TcpSegment): TcpRepr {
  const { headerLength: _h, checksum: _c, payload: _p, ...repr } = s;
  return { ...repr, options: new Uint8Array(repr.options) };
}

function emit(repr: TcpRepr, payload: Uint8Array, pseudo?: PseudoHeader): Uint8Array {
  const buf = new Uint8Array(tcpHeaderLen(repr) + payload.length);
  emitTcp(repr, payload, buf, 0, pseudo);
  return buf;
}

describe("tcp", () => {
  it("parses and verifies a known SYN", () => {
    const r = parseTcp(SYN, SYN_PSEUDO);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({
      srcPort: 43210,
      dstPort: 80,
      seq: 0x1a2b3c4d,
      ack: 0,
      flags: TcpFlag.SYN,
      window: 64240,
      urgentPointer: 0,
      headerLength: 40,
      checksum: 0x5247,
    });
    expect(r.value.options.length).toBe(20);
    expect(r.value.payload.length).toBe(0);
    expect(parseTcpMss(r.value.options)).toBe(1460);
  });

  it("emits the known SYN byte for byte", () => {
    const repr: TcpRepr = {
      srcPort: 43210,
      dstPort: 80,
      seq: 0x1a2b3c4d,
      ack: 0,
      flags: TcpFlag.SYN,
      window: 64240,
      urgentPointer: 0,
      options: SYN.subarray(20),
    };
    expect(emit(repr, new Uint8Array(0), SYN_PSEUDO)).toEqual(SYN);
  });

  it("round-trips edge reprs", () => {
    const pseudo: PseudoHeader = { src: 0xffffffff, dst: 0 };
    const base: TcpRepr = {
      srcPort: 0,
      dstPort: 65535,
      seq: 0,
      ack: 0xffffffff,
      flags: 0,
      window: 0,
      urgentPointer: 0,
      options: new Uint8Array(0),
    };
    const reprs: TcpRepr[] = [
      base,
      { ...base, srcPort: 65535, dstPort: 0, seq: 0xffffffff, ack: 0, flags: 0xff, window: 0xffff, urgentPointer: 0xffff },
      { ...base, flags: TcpFlag.ACK | TcpFlag.PSH, options: hex("01 01 08 0a 00 00 00 01 00 00 00 02") },
      { ...base, flags: TcpFlag.FIN | TcpFlag.ACK | TcpFlag.ECE | TcpFlag.CWR, options: hex("02 04 ff ff") },
      { ...base, flags: TcpFlag.RST | TcpFlag.URG, options: new Uint8Array(40).fill(1) },
    ];
    for (const repr of reprs) {
      for (const payload of [new Uint8Array(0), new Uint8Array([7]), new Uint8Array(1400).fill(0x5a)]) {
        const b = emit(repr, payload, pseudo);
        const r = parseTcp(b, pseudo);
        expect(r.ok).toBe(true);
        if (!r.ok) continue;
        expect(reprOf(r.value)).toEqual(repr);
        expect(r.value.payload).toEqual(payload);
        expect(r.value.headerLength).toBe(tcpHeaderLen(repr));
      }
    }
  });

  it("pads options to a multiple of 4 with zeros (EOL)", () => {
    const repr: TcpRepr = {
      srcPort: 1,
      dstPort: 2,
      seq: 3,
      ack: 4,
      flags: TcpFlag.SYN,
      window: 5,
      urgentPointer: 0,
      options: hex("02 04 05 b4 01 03 03"),
    };
    expect(tcpHeaderLen(repr)).toBe(28);
    const buf = new Uint8Array(28 + 2).fill(0xee);
    emitTcp(repr, new Uint8Array([9, 9]), buf, 0);
    expect(buf[12]).toBe(0x70);
    expect(Array.from(buf.subarray(20, 30))).toEqual([2, 4, 5, 0xb4, 1, 3, 3, 0, 9, 9]);
    expect(Array.from(buf.subarray(16, 18))).toEqual([0, 0]); // no pseudo: checksum 0
    const r = parseTcp(buf);
    expect(r.ok && Array.from(r.value.options)).toEqual([2, 4, 5, 0xb4, 1, 3, 3, 0]);
  });

  it("throws RangeError in emit for options beyond 40 bytes", () => {
    const repr: TcpRepr = {
      srcPort: 1,
      dstPort: 2,
      seq: 3,
      ack: 4,
      flags: 0,
      window: 5,
      urgentPointer: 0,
      options: new Uint8Array(41),
    };
    expect(() => emitTcp(repr, new Uint8Array(0), new Uint8Array(100), 0)).toThrow(RangeError);
  });

  it("reports every prefix shorter than the header as Truncated", () => {
    for (let n = 0; n < 40; n++) expect(code(parseTcp(SYN.subarray(0, n)))).toBe("Truncated");
    expect(parseTcp(SYN).ok).toBe(true);
  });

  it("rejects a data offset below 5 as Malformed", () => {
    for (const doff of [0, 1, 4]) {
      const b = SYN.slice();
      b[12] = doff << 4;
      expect(code(parseTcp(b))).toBe("Malformed");
    }
  });

  it("ignores the reserved low nibble of byte 12", () => {
    const b = SYN.slice();
    b[12] = 0xaf;
    const r = parseTcp(b);
    expect(r.ok && r.value.headerLength).toBe(40);
  });

  it("detects any corrupted byte as Checksum when given a pseudo-header", () => {
    for (let i = 0; i < SYN.length; i++) {
      if (i === 12) continue; // data offset changes fail earlier or move the header end
      const b = SYN.slice();
      b[i]! ^= 0x02;
      expect(code(parseTcp(b, SYN_PSEUDO))).toBe("Checksum");
      expect(parseTcp(b).ok).toBe(true);
    }
    expect(code(parseTcp(SYN, { src: 0x0af40105, dst: 0x0af40208 }))).toBe("Checksum");
  });

  it("parseTcpMss walks options and refuses malformed ones", () => {
    expect(parseTcpMss(new Uint8Array(0))).toBeUndefined();
    expect(parseTcpMss(hex("02 04 05 b4"))).toBe(1460);
    expect(parseTcpMss(hex("01 01 02 04 23 28"))).toBe(9000);
    expect(parseTcpMss(hex("04 02 08 0a 00 00 00 00 00 00 00 00 02 04 05 78"))).toBe(1400);
    expect(parseTcpMss(hex("01 03 03 07"))).toBeUndefined(); // no MSS
    expect(parseTcpMss(hex("00 02 04 05 b4"))).toBeUndefined(); // after EOL
    expect(parseTcpMss(hex("02 03 05 b4"))).toBeUndefined(); // MSS with length 3
    expect(parseTcpMss(hex("02 04 05"))).toBeUndefined(); // cut off
    expect(parseTcpMss(hex("02"))).toBeUndefined(); // no length byte
    expect(parseTcpMss(hex("08 00 02 04 05 b4"))).toBeUndefined(); // length 0 would loop
    expect(parseTcpMss(hex("08 01 02 04 05 b4"))).toBeUndefined(); // length 1
    expect(parseTcpMss(hex("08 ff 02 04 05 b4"))).toBeUndefined(); // runs past end
  });

  it("emits at an offset with the payload already in place", () => {
    const repr: TcpRepr = {
      srcPort: 1,
      dstPort: 2,
      seq: 3,
      ack: 4,
      flags: TcpFlag.ACK,
      window: 5,
      urgentPointer: 0,
      options: new Uint8Array(0),
    };
    const buf = new Uint8Array(34 + 20 + 3);
    buf.set([1, 2, 3], 54);
    emitTcp(repr, buf.subarray(54), buf, 34, SYN_PSEUDO);
    const r = parseTcp(buf.subarray(34), SYN_PSEUDO);
    expect(r.ok && Array.from(r.value.payload)).toEqual([1, 2, 3]);
  });
});
