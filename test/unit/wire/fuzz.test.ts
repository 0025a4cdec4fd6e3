/**
 * Every parser must return a WireResult, never throw, on any bytes: random buffers, and
 * mutations (bit flips, byte overwrites, truncation, extension) of valid packets so that the
 * deeper branches past the first sanity checks get exercised too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARP_LEN, emitArp, parseArp } from "../../../overlay/wire/arp.ts";
import { decodeBatch, encodeBatch } from "../../../overlay/wire/batch.ts";
import { WireError, WireErrorCode } from "../../../overlay/wire/common.ts";
import type { Layer, WireResult } from "../../../overlay/wire/common.ts";
import { emitEthernet, EtherType, parseEthernet } from "../../../overlay/wire/ethernet.ts";
import { emitIcmp, icmpErrorOriginal, icmpLen, parseIcmp } from "../../../overlay/wire/icmp.ts";
import { emitIpv4, IpProtocol, parseIpv4 } from "../../../overlay/wire/ipv4.ts";
import { emitTcp, parseTcp, parseTcpMss, TcpFlag, tcpHeaderLen } from "../../../overlay/wire/tcp.ts";
import { emitUdp, parseUdp } from "../../../overlay/wire/udp.ts";
import type { PseudoHeader } from "../../../overlay/wire/udp.ts";
import { emitVxlan, parseVxlan, VXLAN_UDP_PORT } from "../../../overlay/wire/vxlan.ts";
import { hex, mulberry32, randInt, randomBytes } from "./rng.ts";

const ITERATIONS = 10_000;
const MAX_LEN = 1600;
const CODES = new Set<string>(Object.values(WireErrorCode));
const PSEUDO: PseudoHeader = { src: 0x0af40105, dst: 0x0af40207 };

/** Throws (failing the test) unless `r` is a well-formed WireResult from `layer`. */
function check(r: WireResult<unknown>, layer: Layer): void {
  if (r.ok === true) {
    if (r.value === undefined) throw new Error(`${layer}: ok without value`);
  } else if (r.ok === false) {
    if (!(r.error instanceof WireError) || !CODES.has(r.error.code) || r.error.layer !== layer) {
      throw new Error(`${layer}: bad error ${String(r.error)}`);
    }
  } else {
    throw new Error(`${layer}: not a WireResult`);
  }
}

const counts = { ok: 0, fail: 0 };

/** Runs every parser on `b`, and follows successful parses down the overlay stack. */
function parseAll(b: Uint8Array): void {
  const eth = parseEthernet(b);
  check(eth, "ethernet");
  check(parseArp(b), "arp");
  const ip = parseIpv4(b);
  check(ip, "ipv4");
  check(parseIpv4(b, { verifyChecksum: false }), "ipv4");
  check(parseIcmp(b), "icmp");
  check(parseIcmp(b, { verifyChecksum: false }), "icmp");
  const udp = parseUdp(b);
  check(udp, "udp");
  check(parseUdp(b, PSEUDO), "udp");
  check(parseTcp(b), "tcp");
  check(parseTcp(b, PSEUDO), "tcp");
  const vx = parseVxlan(b);
  check(vx, "vxlan");
  check(decodeBatch(b), "batch");
  const mss = parseTcpMss(b);
  if (mss !== undefined && !(mss >= 0 && mss <= 0xffff)) throw new Error("mss out of range");
  const q = icmpErrorOriginal(b);
  if (q.length > b.length) throw new Error("icmpErrorOriginal out of bounds");

  // Follow the stack: Ethernet -> IPv4 -> UDP -> VXLAN -> inner Ethernet.
  counts[eth.ok ? "ok" : "fail"]++;
  // (Only for IPv4/ARP: any other payload is as random as `b` itself.)
  if (eth.ok && (eth.value.ethertype === EtherType.IPv4 || eth.value.ethertype === EtherType.ARP)) {
    parseAll0(eth.value.payload);
  }
  if (ip.ok) parseAll0(ip.value.payload);
  if (udp.ok) parseAll0(udp.value.payload);
  if (vx.ok) parseAll0(vx.value.payload);
}

// One level of recursion on views is enough to catch view/offset bugs without blowing up time.
function parseAll0(b: Uint8Array): void {
  check(parseEthernet(b), "ethernet");
  check(parseArp(b), "arp");
  check(parseIpv4(b), "ipv4");
  check(parseUdp(b, PSEUDO), "udp");
  check(parseTcp(b, PSEUDO), "tcp");
  check(parseIcmp(b), "icmp");
  check(parseVxlan(b), "vxlan");
  check(decodeBatch(b), "batch");
}

/** Valid packets built with the emitters: a full VXLAN overlay frame, ARP, TCP, ICMP, a batch. */
function seedFrames(): Uint8Array[] {
  const data = new Uint8Array(24).map((_, i) => i);
  const icmpRepr = { kind: "echoRequest", ident: 0x1c46, seq: 1, data } as const;
  const icmpLength = icmpLen(icmpRepr);
  const innerIpLen = 20 + icmpLength;
  const innerLen = 14 + innerIpLen;
  const udpLen = 8 + 8 + innerLen;
  const full = new Uint8Array(14 + 20 + udpLen);
  const ipRepr = (src: number, dst: number, protocol: number, payloadLength: number) => ({
    src,
    dst,
    protocol,
    ttl: 64,
    tos: 0,
    identification: 1,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    payloadLength,
  });
  // Inside out, each layer in place in front of the previous one.
  let off = full.length - icmpLength;
  emitIcmp(icmpRepr, full, off);
  emitIpv4(ipRepr(0x0af40105, 0x0af40207, IpProtocol.ICMP, icmpLength), full, (off -= 20));
  emitEthernet({ dst: 0x02_00_00_00_00_04, src: 0x02_00_00_00_00_03, ethertype: EtherType.IPv4 }, full, (off -= 14));
  emitVxlan({ vni: 1 }, full, (off -= 8));
  const udpOff = off - 8;
  emitUdp({ srcPort: 51234, dstPort: VXLAN_UDP_PORT }, full.subarray(off), full, udpOff, PSEUDO);
  emitIpv4(ipRepr(PSEUDO.src, PSEUDO.dst, IpProtocol.UDP, udpLen), full, 14);
  emitEthernet({ dst: 0x02_00_00_00_00_02, src: 0x02_00_00_00_00_01, ethertype: EtherType.IPv4 }, full, 0);

  const arp = new Uint8Array(14 + ARP_LEN);
  emitEthernet({ dst: 0xffff_ffff_ffff, src: 0x02_00_00_00_00_01, ethertype: EtherType.ARP }, arp, 0);
  emitArp({ operation: 1, senderMac: 0x02_00_00_00_00_01, senderIp: 1, targetMac: 0, targetIp: 2 }, arp, 14);

  const tcpRepr = {
    srcPort: 43210,
    dstPort: 80,
    seq: 1,
    ack: 2,
    flags: TcpFlag.SYN,
    window: 64240,
    urgentPointer: 0,
    options: hex("02 04 05 b4 04 02 01 03 03 07"),
  };
  const tcpLen = tcpHeaderLen(tcpRepr) + 10;
  const tcp = new Uint8Array(14 + 20 + tcpLen);
  emitEthernet({ dst: 1, src: 2, ethertype: EtherType.IPv4 }, tcp, 0);
  emitIpv4(ipRepr(PSEUDO.src, PSEUDO.dst, IpProtocol.TCP, tcpLen), tcp, 14);
  emitTcp(tcpRepr, new Uint8Array(10).fill(0x61), tcp, 34, PSEUDO);

  return [full, arp, tcp, tcp.subarray(34), full.subarray(full.length - icmpLength), encodeBatch([full, arp, tcp])];
}

describe("fuzz", () => {
  // Nearly every input fails, and capturing a stack for each WireError is ~90% of the run
  // time. Stacks are not needed here (delete these hooks to debug a throwing parser).
  let stackTraceLimit = Error.stackTraceLimit;
  beforeAll(() => {
    stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
  });
  afterAll(() => {
    Error.stackTraceLimit = stackTraceLimit;
  });

  it(`no parser throws on ${ITERATIONS} random buffers`, () => {
    const rng = mulberry32(0xc0ffee);
    for (let i = 0; i < ITERATIONS; i++) {
      const b = randomBytes(rng, randInt(rng, MAX_LEN + 1));
      // Nudge half the inputs past the first sanity checks (IPv4 version/IHL, VXLAN I flag,
      // batch version, Ethernet type) so that later branches see random data too.
      if (b.length > 0 && randInt(rng, 2) === 0) b[0] = [0x45, 0x08, 0x01, 0x4f, 0x46][randInt(rng, 5)]!;
      if (b.length > 13 && randInt(rng, 2) === 0) b[12] = 0x08;
      parseAll(b);
    }
    expect(counts.ok + counts.fail).toBeGreaterThanOrEqual(ITERATIONS);
  });

  it(`no parser throws on ${ITERATIONS} mutations of valid packets`, () => {
    const rng = mulberry32(0xbadf00d);
    const seeds = seedFrames();
    let okCount = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const seed = seeds[randInt(rng, seeds.length)]!;
      let b: Uint8Array;
      switch (randInt(rng, 4)) {
        case 0: // truncate
          b = seed.slice(0, randInt(rng, seed.length + 1));
          break;
        case 1: // extend with random bytes
          b = new Uint8Array(seed.length + randInt(rng, 64));
          b.set(seed);
          b.set(randomBytes(rng, b.length - seed.length), seed.length);
          break;
        default: // flip bits / overwrite bytes
          b = seed.slice();
          for (let k = randInt(rng, 4) + 1; k > 0 && b.length > 0; k--) {
            const at = randInt(rng, b.length);
            b[at] = randInt(rng, 2) === 0 ? b[at]! ^ (1 << randInt(rng, 8)) : randInt(rng, 256);
          }
      }
      parseAll(b);
      if (parseIpv4(b.length > 14 ? b.subarray(14) : b).ok) okCount++;
    }
    // Sanity: the mutations do leave a good share of parseable packets.
    expect(okCount).toBeGreaterThan(ITERATIONS / 10);
  });

  it("seeds parse all the way down", () => {
    const [full, arp, tcp] = seedFrames();
    const a = parseEthernet(arp!);
    expect(a.ok && parseArp(a.value.payload).ok).toBe(true);
    const t = parseIpv4(tcp!.subarray(14));
    expect(t.ok && parseTcp(t.value.payload, PSEUDO).ok).toBe(true);
    const eth = parseEthernet(full!);
    if (!eth.ok) throw eth.error;
    const ip = parseIpv4(eth.value.payload);
    if (!ip.ok) throw ip.error;
    const udp = parseUdp(ip.value.payload, { src: ip.value.src, dst: ip.value.dst });
    if (!udp.ok) throw udp.error;
    const vx = parseVxlan(udp.value.payload);
    if (!vx.ok) throw vx.error;
    const inner = parseEthernet(vx.value.payload);
    if (!inner.ok) throw inner.error;
    const innerIp = parseIpv4(inner.value.payload);
    if (!innerIp.ok) throw innerIp.error;
    const icmp = parseIcmp(innerIp.value.payload);
    if (!icmp.ok) throw icmp.error;
    expect(icmp.value.kind).toBe("echoRequest");
    expect(inner.value.dst).toBe(0x02_00_00_00_00_04);
  });
});
