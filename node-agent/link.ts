/**
 * One interface for every device of a node (veth ends, the bridge's own port, the VTEP, the
 * node's eth0, loopback), and the links that wrap a link and are links themselves: packet
 * capture, tracing and fault injection (smoltcp's phy::{PcapWriter, Tracer, FaultInjector};
 * gVisor's link/sniffer).
 *
 * Design notes:
 * - `transmit(pkt)` hands a frame (pkt.head at the Ethernet header) to the device: from then on
 *   the device owns the packet (it delivers, queues or drops it).
 * - A device delivers what it receives to the one receiver set with `setReceiver` (the netns
 *   input, or the bridge for an enslaved veth). Wrappers interpose on both directions.
 * - A frame longer than the link MTU plus its Ethernet header is dropped with reason "mtu" at
 *   transmit, as Linux drops what exceeds dev->mtu (the IP layer fragments before this).
 */
import { ETHERNET_HEADER_LEN, readU16, readU32, type MacAddr } from "../overlay/wire/index.ts";
import type { Datapath, Receiver } from "./datapath.ts";
import { DropReason } from "./netfilter.ts";
import { gsoSegment } from "./gso.ts";
import { CtDir, type Packet } from "./packet.ts";
import { Observation } from "./flows.ts";
import { Netem, corruptionPoint, type NetemParams } from "./faults/netem.ts";
import { matchPacket, type FaultMatch } from "./faults/compile.ts";

export interface Link {
  readonly name: string;
  readonly mac: MacAddr;
  readonly mtu: number;
  transmit(pkt: Packet): void;
  setReceiver(rx: Receiver): void;
}

/** One end of a veth pair: what is transmitted on one end is received on the other. */
export class VethEnd implements Link {
  peer!: VethEnd;
  private rx: Receiver;
  private readonly deliver: Receiver;

  constructor(
    readonly name: string,
    readonly mac: MacAddr,
    readonly mtu: number,
    private readonly dp: Datapath,
  ) {
    this.rx = (p) => dp.drop(p, DropReason.NoPort, this.name, `${this.name} is not attached`);
    this.deliver = (p) => {
      p.ingress = this.name;
      this.rx(p);
    };
  }

  static pair(dp: Datapath, a: { name: string; mac: MacAddr }, b: { name: string; mac: MacAddr }, mtu: number): [VethEnd, VethEnd] {
    const x = new VethEnd(a.name, a.mac, mtu, dp);
    const y = new VethEnd(b.name, b.mac, mtu, dp);
    x.peer = y;
    y.peer = x;
    return [x, y];
  }

  transmit(pkt: Packet): void {
    // A GSO packet stands for segments that each fit (veth passes GSO through, as on Linux).
    if (pkt.gsoSize === 0 && pkt.len > this.mtu + ETHERNET_HEADER_LEN) {
      return this.dp.drop(pkt, DropReason.Mtu, this.name, `${pkt.len - ETHERNET_HEADER_LEN} bytes exceed ${this.name} mtu ${this.mtu}`);
    }
    this.dp.send(this.peer.deliver, pkt);
  }

  setReceiver(rx: Receiver): void {
    this.rx = rx;
  }

  /** Unplugs the end: what arrives is dropped (the CNI DEL). */
  detach(): void {
    this.rx = (p) => this.dp.drop(p, DropReason.NoPort, this.name, `${this.name} is gone`);
  }
}

/** lo: what is transmitted is received again, after the queue (Linux's loopback_xmit -> netif_rx). */
export class Loopback implements Link {
  readonly mac = 0;
  private rx: Receiver;
  private readonly deliver: Receiver;

  constructor(
    private readonly dp: Datapath,
    readonly name = "lo",
    readonly mtu = 65536,
  ) {
    this.rx = (p) => dp.drop(p, DropReason.NoPort, this.name);
    this.deliver = (p) => {
      p.ingress = this.name;
      this.rx(p);
    };
  }

  transmit(pkt: Packet): void {
    this.dp.send(this.deliver, pkt);
  }

  setReceiver(rx: Receiver): void {
    this.rx = rx;
  }
}

/** A link around a link: same interface, interposes on transmit and receive. */
export abstract class LinkWrapper implements Link {
  protected rx: Receiver;

  constructor(
    readonly inner: Link,
    protected readonly dp: Datapath,
  ) {
    this.rx = (p) => dp.drop(p, DropReason.NoPort, inner.name);
    inner.setReceiver((p) => this.receive(p));
  }

  get name(): string {
    return this.inner.name;
  }
  get mac(): MacAddr {
    return this.inner.mac;
  }
  get mtu(): number {
    return this.inner.mtu;
  }

  setReceiver(rx: Receiver): void {
    this.rx = rx;
  }

  transmit(pkt: Packet): void {
    this.inner.transmit(pkt);
  }

  protected receive(pkt: Packet): void {
    this.rx(pkt);
  }
}

/** Offers every frame to the node's capture taps under `label` (free when nothing captures). */
export class CaptureLink extends LinkWrapper {
  constructor(inner: Link, dp: Datapath, readonly label: string = inner.name) {
    super(inner, dp);
  }

  override transmit(pkt: Packet): void {
    if (this.dp.tapped(this.label)) this.dp.tap(this.label, pkt.data(), "tx");
    this.inner.transmit(pkt);
  }

  protected override receive(pkt: Packet): void {
    if (this.dp.tapped(this.label)) this.dp.tap(this.label, pkt.data(), "rx");
    this.rx(pkt);
  }
}

/**
 * A pod's host veth as Hubble sees an endpoint: every IPv4 frame handed to the pod (to-endpoint)
 * or sent by it (from-endpoint) becomes a flow record when the node keeps flows.
 */
export class FlowLink extends LinkWrapper {
  override transmit(pkt: Packet): void {
    const flows = this.dp.flows;
    if (flows !== undefined && pkt.l3 >= 0) flows.record(Observation.ToEndpoint, this.name, pkt, pkt.ct !== undefined && pkt.ctDir === CtDir.Reply);
    this.inner.transmit(pkt);
  }

  protected override receive(pkt: Packet): void {
    const flows = this.dp.flows;
    if (flows !== undefined && pkt.l3 >= 0) flows.record(Observation.FromEndpoint, this.name, pkt, pkt.ct !== undefined && pkt.ctDir === CtDir.Reply);
    this.rx(pkt);
  }
}

/** Reports traced packets crossing the link as hops ("to pod-a/eth0", "from pod-a/eth0"). */
export class TraceLink extends LinkWrapper {
  constructor(
    inner: Link,
    dp: Datapath,
    private readonly describe: { tx?: string; rx?: string },
  ) {
    super(inner, dp);
  }

  override transmit(pkt: Packet): void {
    if (pkt.tr && this.describe.tx) pkt.tr.hop(this.name, this.describe.tx);
    this.inner.transmit(pkt);
  }

  protected override receive(pkt: Packet): void {
    if (pkt.tr && this.describe.rx) pkt.tr.hop(this.name, this.describe.rx);
    this.rx(pkt);
  }
}

/**
 * The impairments `kubewire fault` sets on one link and direction (probabilities in [0, 1],
 * times in ms): a netem qdisc matching every frame, run by the same engine as NetworkChaos.
 */
export interface FaultSpec {
  loss?: number;
  duplicate?: number;
  /**
   * With `delayMs`: netem's `delay D reorder P` (gap 1), that share of packets skips the delay.
   * Without (netem cannot reorder without a delay): that share is held back 1 ms and overtaken
   * by the packets behind it (netem `delay 1ms reorder 100-P`), so the others are not slowed.
   */
  reorder?: number;
  /** Probability that one random bit of the packet past the Ethernet header is flipped. */
  corrupt?: number;
  delayMs?: number;
  jitterMs?: number;
}

export type FaultDirection = "egress" | "ingress";

/** netem's parameters for a FaultSpec. */
export function faultSpecNetem(s: FaultSpec): NetemParams {
  const p: NetemParams = {};
  const latencyMs = s.delayMs ?? 0;
  const jitterMs = s.jitterMs ?? 0;
  if (s.reorder && latencyMs === 0) {
    p.reorder = { probability: 1 - s.reorder, correlation: 0, gap: 1 };
    p.delay = { latencyMs: 1, jitterMs, correlation: 0, distribution: "uniform" };
  } else {
    if (s.reorder) p.reorder = { probability: s.reorder, correlation: 0, gap: 1 };
    if (latencyMs > 0 || jitterMs > 0) p.delay = { latencyMs, jitterMs, correlation: 0, distribution: "uniform" };
  }
  if (s.loss) p.loss = { kind: "random", probability: s.loss, correlation: 0 };
  if (s.duplicate) p.duplicate = { probability: s.duplicate, correlation: 0 };
  if (s.corrupt) p.corrupt = { probability: s.corrupt, correlation: 0 };
  return p;
}

/** Where the IPv4 header of the frames crossing a fault link starts. */
export const FrameLayout = {
  /** Ethernet, IPv4 at 14 (a veth). */
  Ethernet: 0,
  /** Outer Ethernet/IPv4/UDP/VXLAN, then the inner Ethernet frame (the underlay): classify the inner packet. */
  Vxlan: 1,
} as const;
export type FrameLayout = (typeof FrameLayout)[keyof typeof FrameLayout];

/** One fault installed on one direction of a link: its netem state and what it matches. */
export interface LinkFault {
  /** "namespace/name" of its NetworkChaos, or "kubewire fault" for the CLI's. */
  readonly key: string;
  /** Undefined: every frame (the CLI's faults). */
  readonly match: FaultMatch | undefined;
  readonly netem: Netem;
  /** The compiled fault's version: the same one keeps this state across a recompile. */
  readonly version?: string;
}

const VXLAN_INNER_IP = 14 + 20 + 8 + 8 + 14;

/**
 * Wraps a link with faults on transmit (egress) and/or receive (ingress): the CLI's (one netem
 * matching everything per direction) followed by the NetworkChaos faults (classified per
 * packet, node-agent/faults/compile.ts), chained in that order. With none on a direction that
 * direction costs one branch per packet.
 */
export class FaultLink extends LinkWrapper {
  private manual: { egress?: LinkFault; ingress?: LinkFault } = {};
  private chaos: LinkFault[] = [];
  /** What each direction runs; undefined: nothing (the one branch). */
  private tx: LinkFault[] | undefined;
  private rxf: LinkFault[] | undefined;
  private readonly txOut = (p: Packet) => this.inner.transmit(p);
  private readonly rxOut = (p: Packet) => this.rx(p);

  constructor(
    inner: Link,
    dp: Datapath,
    readonly layout: FrameLayout = FrameLayout.Ethernet,
    /**
     * NetworkChaos faults act only on packets from these sources (a pod's veth: packets sent on
     * this node; those from other nodes met their faults where they were sent).
     */
    private readonly chaosSource?: (ip: number) => boolean,
  ) {
    super(inner, dp);
  }

  /** Replaces the CLI's impairments (whole state); an empty spec clears them. */
  set(spec: { egress?: FaultSpec; ingress?: FaultSpec }): void {
    const make = (s: FaultSpec | undefined): LinkFault | undefined => (s ? { key: "kubewire fault", match: undefined, netem: new Netem(faultSpecNetem(s), this.dp.rng) } : undefined);
    this.manual = { egress: make(spec.egress), ingress: make(spec.ingress) };
    this.rebuild();
  }

  /** Replaces the NetworkChaos faults on transmit (whole state, in composition order). */
  setChaos(faults: LinkFault[]): void {
    this.chaos = faults;
    this.rebuild();
  }

  /** The NetworkChaos faults installed (their state is reused across recompiles of one version). */
  chaosFaults(): readonly LinkFault[] {
    return this.chaos;
  }

  private rebuild(): void {
    const tx = [...(this.manual.egress ? [this.manual.egress] : []), ...this.chaos];
    this.tx = tx.length > 0 ? tx : undefined;
    this.rxf = this.manual.ingress ? [this.manual.ingress] : undefined;
  }

  get active(): boolean {
    return this.tx !== undefined || this.rxf !== undefined;
  }

  get impairsIngress(): boolean {
    return this.rxf !== undefined;
  }

  override transmit(pkt: Packet): void {
    const f = this.tx;
    if (f === undefined) return this.inner.transmit(pkt);
    this.classify(f, pkt, this.txOut);
  }

  protected override receive(pkt: Packet): void {
    const f = this.rxf;
    if (f === undefined) return this.rx(pkt);
    this.classify(f, pkt, this.rxOut);
  }

  /** The offset of the IPv4 header the faults classify (the inner one under VXLAN), or -1. */
  private ipOffset(pkt: Packet): number {
    const b = pkt.buf;
    let off = pkt.head;
    if (this.layout === FrameLayout.Vxlan) {
      if (pkt.len < VXLAN_INNER_IP + 20) return -1;
      off += VXLAN_INNER_IP - 14;
    } else if (pkt.len < 14 + 20) {
      return -1;
    }
    return b[off + 12] === 0x08 && b[off + 13] === 0x00 && b[off + 14]! >> 4 === 4 ? off + 14 : -1;
  }

  private classify(faults: LinkFault[], pkt: Packet, out: Receiver): void {
    let matched: LinkFault[] | undefined;
    const ip = this.ipOffset(pkt);
    let src = 0, dst = 0, proto = -1, sport = -1, dport = -1;
    if (ip >= 0) {
      const b = pkt.buf;
      src = readU32(b, ip + 12);
      dst = readU32(b, ip + 16);
      proto = b[ip + 9]!;
      const l4 = ip + (b[ip]! & 0x0f) * 4;
      // Only a first fragment carries the ports.
      if ((proto === 6 || proto === 17) && (readU16(b, ip + 6) & 0x1fff) === 0 && l4 + 4 <= pkt.end) {
        sport = readU16(b, l4);
        dport = readU16(b, l4 + 2);
      }
    }
    const chaosOk = ip >= 0 && (this.chaosSource === undefined || this.chaosSource(src));
    for (const f of faults) {
      if (f.match === undefined ? true : chaosOk && matchPacket(f.match, src, dst, proto, sport, dport)) (matched ??= []).push(f);
    }
    if (matched === undefined) return out(pkt);
    // Impairments act per wire segment: a merged (GSO) packet is cut back into its segments first.
    if (pkt.gsoSize === 0) return this.step(pkt, matched, 0, -1, out);
    for (const seg of gsoSegment(pkt, this.dp.pool)) this.step(seg, matched, 0, -1, out);
  }

  /**
   * Runs faults[i..] on `pkt`: each netem decides (node-agent/faults/netem.ts), the packet is held
   * until its time, then meets the bandwidth shaper, then the next fault. `noDup` is the index
   * of the fault whose duplicate this packet is (netem re-enqueues the copy with duplication off).
   */
  private step(pkt: Packet, faults: LinkFault[], i: number, noDup: number, out: Receiver): void {
    for (; i < faults.length; i++) {
      const f = faults[i]!;
      const now = this.dp.clock();
      const v = f.netem.enqueue(now, i !== noDup);
      if (v.kind === "drop") return this.dp.drop(pkt, DropReason.FaultLoss, this.name, `fault ${f.key}: ${v.cause}`);
      if (v.duplicate) this.step(pkt.clone(this.dp.pool), faults, i, i, out);
      if (v.corrupt) this.corrupt(pkt, f.netem);
      if (v.reordered) pkt.tr?.hop(this.name, `fault ${f.key}: reordered (sent ahead of delayed packets)`);
      if (v.at > now) {
        pkt.tr?.hop(this.name, `fault ${f.key}: delayed ${(v.at - now).toFixed(1)} ms`);
        const next = i;
        this.dp.schedule(v.at, () => {
          f.netem.release();
          this.shaped(pkt, faults, next, out);
        });
        return;
      }
      if (f.netem.shapes) return this.shaped(pkt, faults, i, out);
    }
    out(pkt);
  }

  /** After fault i's netem released the packet: its bandwidth shaper, then fault i + 1. */
  private shaped(pkt: Packet, faults: LinkFault[], i: number, out: Receiver): void {
    const f = faults[i]!;
    const now = this.dp.clock();
    const v = f.netem.shape(now, pkt.len);
    if (v.kind === "drop") return this.dp.drop(pkt, DropReason.FaultLoss, this.name, `fault ${f.key}: bandwidth queue full`);
    if (v.at > now) {
      this.dp.schedule(v.at, () => this.step(pkt, faults, i + 1, -1, out));
      return;
    }
    this.step(pkt, faults, i + 1, -1, out);
  }

  /** netem's corruption: one random bit of the packet (the IP packet, past the Ethernet header). */
  private corrupt(pkt: Packet, netem: Netem): void {
    const ip = this.ipOffset(pkt);
    const from = ip >= 0 ? ip : pkt.head + Math.min(ETHERNET_HEADER_LEN, pkt.len);
    const span = pkt.end - from;
    if (span <= 0) return;
    const { byte, bit } = corruptionPoint(span, netem.rng);
    pkt.buf[from + byte]! ^= 1 << bit;
    // Parsed fields no longer describe the bytes: whoever parses next must check them again.
    pkt.csumOk = false;
  }
}
