import { describe, expect, it } from "vitest";
import { ARP_LEN, ArpOperation, emitArp, parseArp } from "../../../overlay/wire/arp.ts";
import type { ArpRepr } from "../../../overlay/wire/arp.ts";
import { hex } from "./rng.ts";

// Who has 192.168.1.1? Tell 192.168.1.100 (from 00:0c:29:3e:5f:01).
const REQUEST = hex(
  "00 01 08 00 06 04 00 01 00 0c 29 3e 5f 01 c0 a8 01 64 00 00 00 00 00 00 c0 a8 01 01",
);

describe("arp", () => {
  it("parses a known request", () => {
    const r = parseArp(REQUEST);
    expect(r).toEqual({
      ok: true,
      value: {
        operation: ArpOperation.Request,
        senderMac: 0x00_0c_29_3e_5f_01,
        senderIp: 0xc0a80164,
        targetMac: 0,
        targetIp: 0xc0a80101,
      },
    });
  });

  it("emits the known request byte for byte", () => {
    const buf = new Uint8Array(ARP_LEN);
    emitArp(
      { operation: 1, senderMac: 0x00_0c_29_3e_5f_01, senderIp: 0xc0a80164, targetMac: 0, targetIp: 0xc0a80101 },
      buf,
      0,
    );
    expect(buf).toEqual(REQUEST);
  });

  it("round-trips reprs", () => {
    const reprs: ArpRepr[] = [
      { operation: 2, senderMac: 0xffff_ffff_ffff, senderIp: 0xffffffff, targetMac: 0x02_42_0a_f4_01_05, targetIp: 0 },
      { operation: 1, senderMac: 0, senderIp: 0x0af40105, targetMac: 0xffff_ffff_ffff, targetIp: 0x0af40101 },
    ];
    for (const repr of reprs) {
      const buf = new Uint8Array(ARP_LEN + 6);
      emitArp(repr, buf, 6);
      expect(parseArp(buf.subarray(6))).toEqual({ ok: true, value: repr });
    }
  });

  it("reports every short prefix as Truncated", () => {
    for (let n = 0; n < ARP_LEN; n++) {
      const r = parseArp(REQUEST.subarray(0, n));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe("Truncated");
    }
  });

  it("rejects non-Ethernet/IPv4 and unknown operations as Unsupported", () => {
    const cases: Array<[number, number]> = [
      [1, 6], // htype 6 (IEEE 802)
      [2, 0x86], // ptype 0x8600
      [4, 8], // hlen 8
      [5, 16], // plen 16
      [7, 3], // RARP request
      [7, 0],
    ];
    for (const [at, value] of cases) {
      const b = REQUEST.slice();
      b[at] = value;
      const r = parseArp(b);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe("Unsupported");
    }
  });
});
