/**
 * The L2 devices of a node: veth pairs, the cni0 learning bridge, and the flannel.1 VTEP with
 * its underlay (the node's eth0, whose wire is NATS). Each device reports what it does to a
 * traced frame and offers every frame it sends or receives to capture taps.
 */
import {
  ETHERNET_HEADER_LEN,
  EtherType,
  IPV4_HEADER_LEN,
  IpProtocol,
  UDP_HEADER_LEN,
  VXLAN_HEADER_LEN,
  VXLAN_UDP_PORT,
  emitEthernet,
  emitIpv4,
  emitVxlan,
  formatIpv4,
  formatMac,
  parseEthernet,
  parseIpv4,
  parseUdp,
  parseVxlan,
  readMac,
  writeU16,
  type Ipv4Addr,
  type MacAddr,
} from "../overlay/wire/index.ts";
import type { Datapath, Receiver, Tracer } from "./datapath.ts";
import { Fdb } from "./fdb.ts";

/** One end of a veth pair: what goes in one end comes out of the other. */
export class VethEnd {
  peer!: VethEnd;
  /** Whatever the end is plugged into: a pod netns interface or a bridge port. */
  attached: Receiver = () => {};
  private readonly deliverToPeer: Receiver;

  constructor(
    readonly name: string,
    private readonly dp: Datapath,
    /** How captures name this end ("veth3f2a9c1d", "pod-a/eth0"). */
    readonly label: string,
    /** The host end reports hops; the pod end leaves that to the pod's netns. */
    private readonly traced: boolean,
  ) {
    this.deliverToPeer = (frame, tr) => this.peer.receive(frame, tr);
  }

  static pair(dp: Datapath, a: { name: string; label: string; traced: boolean }, b: { name: string; label: string; traced: boolean }): [VethEnd, VethEnd] {
    const x = new VethEnd(a.name, dp, a.label, a.traced);
    const y = new VethEnd(b.name, dp, b.label, b.traced);
    x.peer = y;
    y.peer = x;
    return [x, y];
  }

  xmit(frame: Uint8Array, tr: Tracer | undefined): void {
    this.dp.tap(this.label, frame, "tx");
    if (this.traced) tr?.hop(this.name, `to ${this.peer.label}`);
    this.dp.send(this.deliverToPeer, frame, tr);
  }

  private receive(frame: Uint8Array, tr: Tracer | undefined): void {
    this.dp.tap(this.label, frame, "rx");
    if (this.traced) tr?.hop(this.name, `from ${this.peer.label}`);
    this.attached(frame, tr);
  }
}

export interface BridgePort {
  readonly name: string;
  out(frame: Uint8Array, tr: Tracer | undefined): void;
}

/**
 * cni0: a learning bridge (IEEE 802.1D). Learns source MACs per port, forwards known unicast
 * to one port, floods broadcast, multicast and unknown unicast to every port but the one it
 * came in on. The node's own stack is one more port ("cni0" itself).
 */
export class Bridge {
  readonly fdb = new Fdb<BridgePort>();
  private readonly ports = new Set<BridgePort>();

  constructor(
    readonly name: string,
    private readonly dp: Datapath,
  ) {}

  addPort(port: BridgePort): void {
    this.ports.add(port);
  }

  removePort(port: BridgePort): void {
    this.ports.delete(port);
    this.fdb.forgetPort(port);
  }

  receive(ingress: BridgePort, frame: Uint8Array, tr: Tracer | undefined): void {
    if (frame.length < ETHERNET_HEADER_LEN) {
      this.dp.counters.inc("bridge_dropped_total");
      tr?.hop(this.name, "runt frame", "dropped");
      return;
    }
    this.dp.tap(this.name, frame, "rx");
    const now = this.dp.now();
    const dst = readMac(frame, 0);
    const src = readMac(frame, 6);
    if (!isMulticast(src)) this.fdb.learn(src, ingress, now);
    if (isMulticast(dst)) return this.flood(ingress, frame, tr);
    const found = this.fdb.lookup(dst, now);
    if (found.kind === "unknown") return this.flood(ingress, frame, tr);
    if (found.port === ingress) {
      tr?.hop(this.name, `fdb ${formatMac(dst)} is on the ingress port ${ingress.name}`, "dropped");
      return;
    }
    tr?.hop(this.name, `fdb ${formatMac(dst)} -> ${found.port.name}`);
    found.port.out(frame, tr);
  }

  private flood(ingress: BridgePort, frame: Uint8Array, tr: Tracer | undefined): void {
    tr?.hop(this.name, `flood ${formatMac(readMac(frame, 0))} to ${this.ports.size - 1} ports`);
    // Receivers rewrite frames in place (TTL, Ethernet header), so each port gets its own copy.
    for (const port of this.ports) if (port !== ingress) port.out(frame.slice(), tr);
  }
}

function isMulticast(mac: MacAddr): boolean {
  // The I/G bit is the lowest bit of the first octet.
  return Math.floor(mac / 0x100_0000_0000) % 2 === 1;
}

/** Where a remote VTEP lives: its node's name (NATS subject) and underlay address. */
export interface RemoteVtep {
  nodeName: string;
  nodeIp: Ipv4Addr;
}

/** How the underlay puts an encapsulated frame on the wire (NATS) for one node. */
export interface UnderlayLink {
  send(nodeName: string, frame: Uint8Array, tr: Tracer | undefined): void;
}

export const OVERLAY_MTU = 1450;
export const VXLAN_OVERHEAD = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN + VXLAN_HEADER_LEN;

/**
 * flannel.1: the VXLAN tunnel endpoint (RFC 7348). Transmit looks the inner destination MAC up
 * in the VTEP FDB (remote VTEP MAC -> remote node), wraps the frame in outer
 * Ethernet/IPv4/UDP 4789/VXLAN and hands it to the underlay; receive checks each outer layer
 * and hands the inner frame to the root netns.
 */
export class Vtep {
  /** Remote VTEP MAC -> remote node, programmed from the control plane (`bridge fdb` on flannel.1). */
  readonly fdb = new Map<MacAddr, RemoteVtep>();
  private ipId = 1;

  constructor(
    readonly name: string,
    readonly mac: MacAddr,
    readonly vni: number,
    private readonly nodeIp: Ipv4Addr,
    private readonly underlayMac: MacAddr,
    private readonly dp: Datapath,
    private readonly underlay: UnderlayLink,
    /** The root netns input for decapsulated frames. */
    private readonly deliverInner: Receiver,
    private readonly peerUnderlayMac: (nodeIp: Ipv4Addr) => MacAddr,
  ) {}

  xmit(inner: Uint8Array, tr: Tracer | undefined): void {
    const dstMac = readMac(inner, 0);
    const remote = this.fdb.get(dstMac);
    if (!remote) {
      this.dp.counters.inc("vtep_fdb_miss_total");
      tr?.hop(this.name, `no fdb entry for ${formatMac(dstMac)}`, "dropped");
      return;
    }
    // In place when the frame was built with headroom (see FRAME_HEADROOM); a copy otherwise.
    let outer: Uint8Array;
    if (inner.byteOffset >= VXLAN_OVERHEAD) {
      outer = new Uint8Array(inner.buffer, inner.byteOffset - VXLAN_OVERHEAD, VXLAN_OVERHEAD + inner.length);
    } else {
      outer = new Uint8Array(VXLAN_OVERHEAD + inner.length);
      outer.set(inner, VXLAN_OVERHEAD);
    }
    emitEthernet({ dst: this.peerUnderlayMac(remote.nodeIp), src: this.underlayMac, ethertype: EtherType.IPv4 }, outer, 0);
    const udpLen = UDP_HEADER_LEN + VXLAN_HEADER_LEN + inner.length;
    emitIpv4({
      src: this.nodeIp,
      dst: remote.nodeIp,
      protocol: IpProtocol.UDP,
      ttl: 64,
      tos: 0,
      identification: this.ipId++ & 0xffff,
      dontFragment: false,
      moreFragments: false,
      fragmentOffset: 0,
      payloadLength: udpLen,
    }, outer, ETHERNET_HEADER_LEN);
    const udpOff = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
    // RFC 7348 §5: the source port is a hash of the inner headers so ECMP spreads flows;
    // checksum 0 is allowed for VXLAN over IPv4.
    writeU16(outer, udpOff, flowSourcePort(inner));
    writeU16(outer, udpOff + 2, VXLAN_UDP_PORT);
    writeU16(outer, udpOff + 4, udpLen);
    writeU16(outer, udpOff + 6, 0);
    emitVxlan({ vni: this.vni }, outer, udpOff + UDP_HEADER_LEN);
    this.dp.tap(this.name, outer, "tx");
    tr?.hop(this.name, `VXLAN encap VNI ${this.vni}: fdb ${formatMac(dstMac)} dst ${formatIpv4(remote.nodeIp)} (${remote.nodeName})`);
    this.underlay.send(remote.nodeName, outer, tr);
  }

  /** An outer frame off the underlay. Every malformed layer is a counted drop, never a throw. */
  receive(outer: Uint8Array, tr: Tracer | undefined): void {
    const eth = parseEthernet(outer);
    if (!eth.ok) return this.dropOuter("ethernet", tr);
    if (eth.value.ethertype !== EtherType.IPv4) return this.dropOuter("ethertype", tr);
    const ip = parseIpv4(eth.value.payload);
    if (!ip.ok) return this.dropOuter("ipv4", tr);
    if (ip.value.dst !== this.nodeIp) return this.dropOuter("not_our_address", tr);
    if (ip.value.protocol !== IpProtocol.UDP) return this.dropOuter("protocol", tr);
    const udp = parseUdp(ip.value.payload);
    if (!udp.ok) return this.dropOuter("udp", tr);
    if (udp.value.dstPort !== VXLAN_UDP_PORT) return this.dropOuter("udp_port", tr);
    const vxlan = parseVxlan(udp.value.payload);
    if (!vxlan.ok) return this.dropOuter("vxlan", tr);
    if (vxlan.value.vni !== this.vni) return this.dropOuter("vni", tr);
    if (vxlan.value.payload.length < ETHERNET_HEADER_LEN) return this.dropOuter("inner_runt", tr);
    this.dp.tap(this.name, outer, "rx");
    this.dp.counters.inc("overlay_rx_frames_total");
    tr?.hop(this.name, `VXLAN decap VNI ${vxlan.value.vni} from ${formatIpv4(ip.value.src)}`);
    this.deliverInner(vxlan.value.payload, tr);
  }

  private dropOuter(reason: string, tr: Tracer | undefined): void {
    this.dp.counters.inc("overlay_rx_dropped_total");
    this.dp.counters.inc(`overlay_rx_dropped_${reason}_total`);
    tr?.hop(this.name, `decap failed: ${reason}`, "dropped");
  }

  /** Replaces the whole FDB (whole-state sync of the peers). */
  syncFdb(entries: ReadonlyMap<MacAddr, RemoteVtep>): void {
    this.fdb.clear();
    for (const [mac, remote] of entries) this.fdb.set(mac, remote);
  }
}

/** A 5-tuple-ish hash of the inner frame mapped into 49152-65535 (RFC 7348 §5). */
export function flowSourcePort(inner: Uint8Array): number {
  let h = 0x811c9dc5;
  // Inner IPv4 addresses and the first 4 payload bytes (ports for TCP/UDP), when present.
  const end = Math.min(inner.length, ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 4);
  for (let i = ETHERNET_HEADER_LEN + 12; i < end; i++) h = Math.imul(h ^ inner[i]!, 0x01000193);
  return 49152 + ((h >>> 0) % 16384);
}
