/**
 * flannel.1, the VXLAN tunnel endpoint (RFC 7348), and eth0, the node's underlay link whose
 * wire is NATS.
 *
 * Design notes (after flannel pkg/backend/vxlan):
 * - Transmit looks the inner destination MAC up in the VTEP FDB (remote VTEP MAC -> remote
 *   node), pushes outer Ethernet/IPv4/UDP 4789/VXLAN into the packet's headroom (no copy) and
 *   hands it to eth0; eth0 maps the outer destination address to a node and puts the frame on
 *   that node's NATS subject.
 * - Receive checks each outer layer in place, pulls the 50 bytes and parses the inner frame
 *   once (it came off the wire: untrusted). Every malformed layer is a counted drop.
 * - Captures on flannel.1 show the outer frames (kubewire's documented choice, so a capture
 *   there shows the VNI); eth0 shows them too.
 */
import {
  ETHERNET_HEADER_LEN,
  EtherType,
  IPV4_HEADER_LEN,
  IpProtocol,
  UDP_HEADER_LEN,
  VXLAN_HEADER_LEN,
  VXLAN_UDP_PORT,
  formatIpv4,
  formatMac,
  internetChecksum,
  readMac,
  readU16,
  readU32,
  writeMac,
  writeU16,
  writeU32,
  type Ipv4Addr,
  type MacAddr,
} from "../overlay/wire/index.ts";
import type { CounterCell, Datapath, Receiver } from "./datapath.ts";
import type { Link } from "./link.ts";
import { DropReason } from "./netfilter.ts";
import { gsoSegment } from "./gso.ts";
import { parseFrame, type Packet } from "./packet.ts";

export const OVERLAY_MTU = 1450;
export const UNDERLAY_MTU = 1500;
export const VXLAN_OVERHEAD = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN + VXLAN_HEADER_LEN;

/** Where a remote VTEP lives: its node's name (NATS subject) and underlay address. */
export interface RemoteVtep {
  nodeName: string;
  nodeIp: Ipv4Addr;
}

/** What carries underlay frames between nodes (the NATS transport, or the in-memory hub). */
export interface UnderlayWire {
  /** Sends one outer frame to `node`; the bytes are copied before this returns. */
  send(node: string, frame: Uint8Array, pkt: Packet): void;
}

/**
 * eth0: the node's link to the emulated underlay. Frames to a peer node's address go out on
 * the wire; anything else would reach the underlay router, beyond which nothing is emulated.
 */
export class Underlay implements Link {
  readonly mtu = UNDERLAY_MTU;
  private rx: Receiver;
  private peers = new Map<Ipv4Addr, string>();

  constructor(
    readonly name: string,
    readonly mac: MacAddr,
    private readonly dp: Datapath,
    private readonly wire: UnderlayWire,
    private readonly router: Ipv4Addr,
  ) {
    this.rx = (p) => dp.drop(p, DropReason.NoPort, name);
  }

  syncPeers(peers: ReadonlyMap<Ipv4Addr, string>): void {
    this.peers = new Map(peers);
  }

  transmit(pkt: Packet): void {
    if (pkt.len > this.mtu + ETHERNET_HEADER_LEN) return this.dp.drop(pkt, DropReason.Mtu, this.name);
    const ipOff = pkt.head + ETHERNET_HEADER_LEN;
    const node = pkt.len >= ETHERNET_HEADER_LEN + IPV4_HEADER_LEN ? this.peers.get(readU32(pkt.buf, ipOff + 16)) : undefined;
    if (node === undefined) {
      return this.dp.drop(pkt, DropReason.Underlay, this.name, `to the underlay router ${formatIpv4(this.router)}: no network beyond it is emulated`);
    }
    if (this.dp.tapped(this.name)) this.dp.tap(this.name, pkt.data(), "tx");
    this.wire.send(node, pkt.data(), pkt);
    pkt.release();
  }

  setReceiver(rx: Receiver): void {
    this.rx = rx;
  }

  /** A frame off the wire (NATS). */
  receive(pkt: Packet): void {
    pkt.ingress = this.name;
    if (this.dp.tapped(this.name)) this.dp.tap(this.name, pkt.data(), "rx");
    this.rx(pkt);
  }
}

export class Vtep implements Link {
  readonly mtu = OVERLAY_MTU;
  /** Remote VTEP MAC -> remote node, programmed from the control plane (`bridge fdb` on flannel.1). */
  readonly fdb = new Map<MacAddr, RemoteVtep>();
  private rx: Receiver;
  private ipId = 1;
  private readonly rxFrames: CounterCell;

  constructor(
    readonly name: string,
    readonly mac: MacAddr,
    readonly vni: number,
    private readonly nodeIp: Ipv4Addr,
    private readonly dp: Datapath,
    private readonly underlay: Link,
    private readonly peerUnderlayMac: (nodeIp: Ipv4Addr) => MacAddr,
  ) {
    this.rx = (p) => dp.drop(p, DropReason.NoPort, name);
    this.rxFrames = dp.counters.cell("overlay_rx_frames_total");
    underlay.setReceiver((p) => this.decap(p));
  }

  setReceiver(rx: Receiver): void {
    this.rx = rx;
  }

  transmit(pkt: Packet): void {
    // A merged packet leaves as the segments it stands for (tcp_gso_segment before encap).
    if (pkt.gsoSize > 0) {
      for (const seg of gsoSegment(pkt, this.dp.pool)) this.transmit(seg);
      return;
    }
    const inner = pkt.head;
    const b = pkt.buf;
    const dstMac = readMac(b, inner);
    const remote = this.fdb.get(dstMac);
    if (!remote) return this.dp.drop(pkt, DropReason.VtepNoFdb, this.name, `no fdb entry for ${formatMac(dstMac)}`);
    const innerLen = pkt.len;
    if (innerLen > this.mtu + ETHERNET_HEADER_LEN) return this.dp.drop(pkt, DropReason.Mtu, this.name, `${innerLen - ETHERNET_HEADER_LEN} bytes exceed ${this.name} mtu ${this.mtu}`);
    if (!pkt.push(VXLAN_OVERHEAD)) {
      // A packet built without headroom (never by this stack): move it once.
      const moved = pkt.clone(this.dp.pool);
      pkt.release();
      return this.transmit(moved);
    }
    const o = pkt.head;
    writeMac(b, o, this.peerUnderlayMac(remote.nodeIp));
    writeMac(b, o + 6, this.underlay.mac);
    writeU16(b, o + 12, EtherType.IPv4);
    const ip = o + ETHERNET_HEADER_LEN;
    const udpLen = UDP_HEADER_LEN + VXLAN_HEADER_LEN + innerLen;
    b[ip] = 0x45;
    b[ip + 1] = 0;
    writeU16(b, ip + 2, IPV4_HEADER_LEN + udpLen);
    writeU16(b, ip + 4, this.ipId++ & 0xffff);
    writeU16(b, ip + 6, 0);
    b[ip + 8] = 64;
    b[ip + 9] = IpProtocol.UDP;
    writeU16(b, ip + 10, 0);
    writeU32(b, ip + 12, this.nodeIp);
    writeU32(b, ip + 16, remote.nodeIp);
    writeU16(b, ip + 10, internetChecksum(b, ip, IPV4_HEADER_LEN));
    const udp = ip + IPV4_HEADER_LEN;
    // RFC 7348 §5: the source port is a hash of the inner headers so ECMP spreads flows;
    // checksum 0 is allowed for VXLAN over IPv4.
    writeU16(b, udp, flowSourcePort(b, inner, innerLen));
    writeU16(b, udp + 2, VXLAN_UDP_PORT);
    writeU16(b, udp + 4, udpLen);
    writeU16(b, udp + 6, 0);
    const vx = udp + UDP_HEADER_LEN;
    b[vx] = 0x08;
    b[vx + 1] = b[vx + 2] = b[vx + 3] = 0;
    b[vx + 4] = (this.vni >>> 16) & 0xff;
    b[vx + 5] = (this.vni >>> 8) & 0xff;
    b[vx + 6] = this.vni & 0xff;
    b[vx + 7] = 0;
    if (this.dp.tapped(this.name)) this.dp.tap(this.name, pkt.data(), "tx");
    pkt.tr?.hop(this.name, `VXLAN encap VNI ${this.vni}: fdb ${formatMac(dstMac)} dst ${formatIpv4(remote.nodeIp)} (${remote.nodeName})`);
    this.underlay.transmit(pkt);
  }

  /**
   * Checks the outer Ethernet/IPv4/UDP/VXLAN headers of the frame at `o` (`len` bytes) in place:
   * the inner frame's offset and length, or the name of the first layer that is wrong.
   */
  checkOuter(b: Uint8Array, o: number, len: number): { inner: number; innerLen: number } | string {
    if (len < VXLAN_OVERHEAD + ETHERNET_HEADER_LEN) return len < ETHERNET_HEADER_LEN ? "ethernet" : "inner_runt";
    if (readU16(b, o + 12) !== EtherType.IPv4) return "ethertype";
    const ip = o + ETHERNET_HEADER_LEN;
    const ihl = (b[ip]! & 0x0f) * 4;
    if (b[ip]! >> 4 !== 4 || ihl < IPV4_HEADER_LEN || readU16(b, ip + 2) > len - ETHERNET_HEADER_LEN || readU16(b, ip + 2) < ihl + UDP_HEADER_LEN) return "ipv4";
    if (internetChecksum(b, ip, ihl) !== 0) return "ipv4";
    if (readU32(b, ip + 16) !== this.nodeIp) return "not_our_address";
    if (b[ip + 9] !== IpProtocol.UDP) return "protocol";
    const udp = ip + ihl;
    if (readU16(b, udp + 2) !== VXLAN_UDP_PORT) return "udp_port";
    const udpLen = readU16(b, udp + 4);
    if (udpLen < UDP_HEADER_LEN + VXLAN_HEADER_LEN || udp + udpLen > o + len) return "udp";
    const vx = udp + UDP_HEADER_LEN;
    if ((b[vx]! & 0x08) === 0) return "vxlan";
    const vni = (b[vx + 4]! << 16) | (b[vx + 5]! << 8) | b[vx + 6]!;
    if (vni !== this.vni) return "vni";
    const inner = vx + VXLAN_HEADER_LEN;
    const innerLen = udp + udpLen - inner;
    if (innerLen < ETHERNET_HEADER_LEN) return "inner_runt";
    return { inner, innerLen };
  }

  /** An outer frame from eth0: check each layer in place, strip it, parse the inner frame once. */
  private decap(pkt: Packet): void {
    const b = pkt.buf;
    const checked = this.checkOuter(b, pkt.head, pkt.len);
    if (typeof checked === "string") return this.dropOuter(pkt, checked);
    if (this.dp.tapped(this.name)) this.dp.tap(this.name, pkt.data(), "rx");
    if (pkt.tr) {
      const ip = pkt.head + ETHERNET_HEADER_LEN;
      pkt.tr.hop(this.name, `VXLAN decap VNI ${this.vni} from ${formatIpv4(readU32(b, ip + 12))}`);
    }
    this.rxFrames.value++;
    pkt.head = checked.inner;
    pkt.end = checked.inner + checked.innerLen;
    const parsed = parseFrame(pkt);
    if (parsed !== "ok") {
      this.dp.counters.inc("overlay_rx_inner_malformed_total");
      return this.dp.drop(pkt, parsed === "ethertype" ? DropReason.Unsupported : DropReason.Malformed, this.name, `inner frame: ${parsed}`);
    }
    this.deliverInner(pkt);
  }

  /** An inner frame, checked and parsed (by decap, or merged by GRO), enters the root netns. */
  deliverInner(pkt: Packet): void {
    pkt.ingress = this.name;
    this.rx(pkt);
  }

  private dropOuter(pkt: Packet, reason: string): void {
    this.dp.counters.inc("overlay_rx_dropped_total");
    this.dp.counters.inc(`overlay_rx_dropped_${reason}_total`);
    this.dp.drop(pkt, DropReason.Overlay, this.name, `decap failed: ${reason}`);
  }

  /** Replaces the whole FDB (whole-state sync of the peers). */
  syncFdb(entries: ReadonlyMap<MacAddr, RemoteVtep>): void {
    this.fdb.clear();
    for (const [mac, remote] of entries) this.fdb.set(mac, remote);
  }
}

/** A hash of the inner addresses and ports mapped into 49152-65535 (RFC 7348 §5). */
export function flowSourcePort(b: Uint8Array, inner: number, innerLen: number): number {
  let h = 0x811c9dc5;
  const end = inner + Math.min(innerLen, ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 4);
  for (let i = inner + ETHERNET_HEADER_LEN + 12; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return 49152 + ((h >>> 0) % 16384);
}
