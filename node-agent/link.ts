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
import { ETHERNET_HEADER_LEN, type MacAddr } from "../overlay/wire/index.ts";
import type { Datapath, Receiver } from "./datapath.ts";
import { DropReason } from "./netfilter.ts";
import { gsoSegment } from "./gso.ts";
import { CtDir, type Packet } from "./packet.ts";
import { Observation } from "./flows.ts";

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
 * netem-like impairments (Linux sch_netem), per direction. Probabilities are in [0, 1];
 * delays in ms. Randomness and time come from the datapath (seeded and virtual in tests).
 */
export interface FaultSpec {
  loss?: number;
  duplicate?: number;
  /** Probability that a packet is held back and sent after the next one (or after `delayMs`). */
  reorder?: number;
  /** Probability that one random bit of the frame past the Ethernet header is flipped. */
  corrupt?: number;
  delayMs?: number;
  jitterMs?: number;
}

export type FaultDirection = "egress" | "ingress";

export interface FaultStats {
  lost: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
  delayed: number;
}

/** Wraps a link with seeded impairments on transmit (egress) and/or receive (ingress). */
export class FaultLink extends LinkWrapper {
  private spec: { egress?: FaultSpec; ingress?: FaultSpec } = {};
  readonly stats: FaultStats = { lost: 0, duplicated: 0, reordered: 0, corrupted: 0, delayed: 0 };
  private held: { egress?: Packet; ingress?: Packet } = {};

  constructor(inner: Link, dp: Datapath) {
    super(inner, dp);
  }

  /** Replaces the impairments (whole state); an empty spec makes the link transparent. */
  set(spec: { egress?: FaultSpec; ingress?: FaultSpec }): void {
    this.spec = spec;
  }

  get active(): boolean {
    return this.spec.egress !== undefined || this.spec.ingress !== undefined;
  }

  override transmit(pkt: Packet): void {
    const s = this.spec.egress;
    if (!s) return this.inner.transmit(pkt);
    this.impairEach(s, "egress", pkt, (p) => this.inner.transmit(p));
  }

  protected override receive(pkt: Packet): void {
    const s = this.spec.ingress;
    if (!s) return this.rx(pkt);
    this.impairEach(s, "ingress", pkt, (p) => this.rx(p));
  }

  get impairsIngress(): boolean {
    return this.spec.ingress !== undefined;
  }

  /** Impairments act per wire segment: a merged (GSO) packet is cut back into its segments first. */
  private impairEach(s: FaultSpec, dir: FaultDirection, pkt: Packet, out: (p: Packet) => void): void {
    if (pkt.gsoSize === 0) return this.impair(s, dir, pkt, out);
    for (const seg of gsoSegment(pkt, this.dp.pool)) this.impair(s, dir, seg, out);
  }

  private impair(s: FaultSpec, dir: FaultDirection, pkt: Packet, out: (p: Packet) => void): void {
    const rng = this.dp.rng;
    if (s.loss && rng() < s.loss) {
      this.stats.lost++;
      return this.dp.drop(pkt, DropReason.FaultLoss, this.name, `fault: ${dir} loss`);
    }
    if (s.corrupt && rng() < s.corrupt && pkt.len > ETHERNET_HEADER_LEN) {
      this.stats.corrupted++;
      const span = pkt.len - ETHERNET_HEADER_LEN;
      const at = pkt.head + ETHERNET_HEADER_LEN + Math.floor(rng() * span);
      pkt.buf[at]! ^= 1 << Math.floor(rng() * 8);
      // Parsed fields no longer describe the bytes: whoever parses next must check them again.
      pkt.csumOk = false;
    }
    const copies: Packet[] = [pkt];
    if (s.duplicate && rng() < s.duplicate) {
      this.stats.duplicated++;
      copies.push(pkt.clone(this.dp.pool));
    }
    for (const p of copies) this.emit(s, dir, p, out);
  }

  private emit(s: FaultSpec, dir: FaultDirection, pkt: Packet, out: (p: Packet) => void): void {
    const rng = this.dp.rng;
    if (s.reorder && rng() < s.reorder) {
      // Hold this one back; it goes out right after the next packet (or on its own after the
      // delay), so the two swap places as netem's reorder does.
      const prev = this.held[dir];
      this.held[dir] = pkt;
      this.stats.reordered++;
      if (prev) out(prev);
      const wait = Math.max(1, s.delayMs ?? 1);
      this.dp.schedule(this.dp.clock() + wait, () => {
        if (this.held[dir] === pkt) {
          this.held[dir] = undefined;
          out(pkt);
        }
      });
      return;
    }
    const delay = (s.delayMs ?? 0) + (s.jitterMs ? (rng() * 2 - 1) * s.jitterMs : 0);
    if (delay > 0) {
      this.stats.delayed++;
      this.dp.schedule(this.dp.clock() + delay, () => out(pkt));
    } else {
      out(pkt);
    }
    const held = this.held[dir];
    if (held) {
      this.held[dir] = undefined;
      out(held);
    }
  }
}
