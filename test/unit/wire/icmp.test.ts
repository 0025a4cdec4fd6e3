import { describe, expect, it } from "vitest";
import { readU16 } from "../../../overlay/wire/common.ts";
import {
  emitIcmp,
  IcmpType,
  icmpErrorOriginal,
  icmpLen,
  parseIcmp,
  TimeExceededCode,
  UnreachableCode,
} from "../../../overlay/wire/icmp.ts";
import type { IcmpRepr } from "../../../overlay/wire/icmp.ts";
import { emitIpv4 } from "../../../overlay/wire/ipv4.ts";
import { hex } from "./rng.ts";

// A Windows `ping` echo request (ident 1, seq 1, 32 bytes "abcdefghijklmnopqrstuvwabcdefghi").
const WINDOWS_PING = hex(
  "08 00 4d 5a 00 01 00 01" +
    "61 62 63 64 65 66 67 68 69 6a 6b 6c 6d 6e 6f 70 71 72 73 74 75 76 77 61 62 63 64 65 66 67 68 69",
);

function emit(repr: IcmpRepr): Uint8Array {
  const buf = new Uint8Array(icmpLen(repr));
  emitIcmp(repr, buf, 0);
  return buf;
}

function code(r: { ok: boolean; error?: { code: string } }): string | undefined {
  return r.ok ? undefined : r.error!.code;
}

function ipPacket(payloadLength: number): Uint8Array {
  const p = new Uint8Array(20 + payloadLength);
  emitIpv4(
    {
      src: 0x0af40105,
      dst: 0x0af40207,
      protocol: 17,
      ttl: 1,
      tos: 0,
      identification: 7,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      payloadLength,
    },
    p,
    0,
  );
  for (let i = 20; i < p.length; i++) p[i] = i & 0xff;
  return p;
}

describe("icmp", () => {
  it("parses a known Windows echo request", () => {
    const r = parseIcmp(WINDOWS_PING);
    expect(r.ok).toBe(true);
    if (!r.ok || r.value.kind !== "echoRequest") throw new Error("expected echoRequest");
    expect(r.value.ident).toBe(1);
    expect(r.value.seq).toBe(1);
    expect(new TextDecoder().decode(r.value.data)).toBe("abcdefghijklmnopqrstuvwabcdefghi");
    expect(r.value.data.buffer).toBe(WINDOWS_PING.buffer);
  });

  it("emits the known echo request byte for byte", () => {
    const data = new TextEncoder().encode("abcdefghijklmnopqrstuvwabcdefghi");
    expect(emit({ kind: "echoRequest", ident: 1, seq: 1, data })).toEqual(WINDOWS_PING);
  });

  it("builds an echo reply in place over the request", () => {
    const buf = WINDOWS_PING.slice();
    const r = parseIcmp(buf);
    if (!r.ok || r.value.kind !== "echoRequest") throw new Error("expected echoRequest");
    emitIcmp({ ...r.value, kind: "echoReply" }, buf, 0);
    expect(buf[0]).toBe(IcmpType.EchoReply);
    // Changing the type from 8 to 0 adds 0x0800 to the checksum.
    expect(readU16(buf, 2)).toBe(0x555a);
    const back = parseIcmp(buf);
    expect(back.ok && back.value.kind).toBe("echoReply");
  });

  it("round-trips reprs", () => {
    const original = icmpErrorOriginal(ipPacket(100));
    const reprs: IcmpRepr[] = [
      { kind: "echoRequest", ident: 0, seq: 0, data: new Uint8Array(0) },
      { kind: "echoReply", ident: 0xffff, seq: 0xffff, data: new Uint8Array([1, 2, 3]) },
      { kind: "destUnreachable", code: UnreachableCode.FragmentationNeeded, nextHopMtu: 1450, original },
      { kind: "destUnreachable", code: UnreachableCode.FragmentationNeeded, nextHopMtu: 0xffff, original },
      { kind: "destUnreachable", code: UnreachableCode.PortUnreachable, nextHopMtu: 0, original },
      { kind: "destUnreachable", code: UnreachableCode.AdminProhibited, nextHopMtu: 0, original },
      { kind: "timeExceeded", code: TimeExceededCode.TtlExceeded, original },
      { kind: "timeExceeded", code: TimeExceededCode.FragmentReassembly, original: new Uint8Array(0) },
    ];
    for (const repr of reprs) expect(parseIcmp(emit(repr))).toEqual({ ok: true, value: repr });
  });

  it("writes nextHopMtu only for FragmentationNeeded", () => {
    const b = emit({
      kind: "destUnreachable",
      code: UnreachableCode.HostUnreachable,
      nextHopMtu: 1400,
      original: new Uint8Array(0),
    });
    expect(Array.from(b.subarray(4, 8))).toEqual([0, 0, 0, 0]);
    const f = emit({
      kind: "destUnreachable",
      code: UnreachableCode.FragmentationNeeded,
      nextHopMtu: 1400,
      original: new Uint8Array(0),
    });
    // type 3, code 4, checksum, 16 unused bits, next-hop MTU 1400 = 0x0578 (RFC 1191 §4).
    expect(Array.from(f.subarray(0, 2))).toEqual([3, 4]);
    expect(Array.from(f.subarray(4, 8))).toEqual([0, 0, 0x05, 0x78]);
  });

  it("emits at an offset", () => {
    const data = new TextEncoder().encode("abcdefghijklmnopqrstuvwabcdefghi");
    const buf = new Uint8Array(34 + 40);
    emitIcmp({ kind: "echoRequest", ident: 1, seq: 1, data }, buf, 34);
    expect(buf.subarray(34)).toEqual(WINDOWS_PING);
  });

  it("reports every short prefix as Truncated", () => {
    for (let n = 0; n < 8; n++) expect(code(parseIcmp(WINDOWS_PING.subarray(0, n)))).toBe("Truncated");
  });

  it("detects any corrupted byte as Checksum, and skips the check on request", () => {
    for (let i = 0; i < WINDOWS_PING.length; i++) {
      const b = WINDOWS_PING.slice();
      b[i]! ^= 0x01;
      const r = parseIcmp(b);
      expect(code(r)).toBe("Checksum");
      // With the check off, a flipped type/code bit may turn into an unsupported message.
      const unchecked = parseIcmp(b, { verifyChecksum: false });
      if (i >= 2) expect(unchecked.ok).toBe(true);
    }
  });

  it("rejects other types, and echo with a nonzero code, as Unsupported", () => {
    for (const [type, c] of [
      [5, 0], // redirect
      [13, 0], // timestamp
      [IcmpType.EchoRequest, 1],
      [IcmpType.EchoReply, 9],
    ] as const) {
      const b = new Uint8Array(8);
      b[0] = type;
      b[1] = c;
      expect(code(parseIcmp(b, { verifyChecksum: false }))).toBe("Unsupported");
    }
  });

  it("icmpErrorOriginal quotes the IP header and 8 payload bytes", () => {
    const p = ipPacket(100);
    const q = icmpErrorOriginal(p);
    expect(q.length).toBe(28);
    expect(q.buffer).toBe(p.buffer);
    expect(icmpErrorOriginal(ipPacket(3)).length).toBe(23);
    expect(icmpErrorOriginal(ipPacket(0)).length).toBe(20);
    // Padding past the total length is not quoted.
    const padded = new Uint8Array(46);
    padded.set(ipPacket(2));
    expect(icmpErrorOriginal(padded).length).toBe(22);
    // Options count towards the header (IHL 6).
    const withOpts = new Uint8Array(60);
    withOpts[0] = 0x46;
    withOpts[3] = 60;
    expect(icmpErrorOriginal(withOpts).length).toBe(32);
    // Garbage and short input stay in bounds.
    expect(icmpErrorOriginal(new Uint8Array(0)).length).toBe(0);
    expect(icmpErrorOriginal(new Uint8Array([0x4f, 0])).length).toBe(2);
    expect(icmpErrorOriginal(new Uint8Array(10).fill(0xff)).length).toBe(10);
  });
});
