/**
 * An emulated Linux network namespace: interfaces, a route table, a neighbour table and the
 * IPv4 stack that sits on them (ARP, local delivery, forwarding with TTL decrement, ICMP
 * errors). A pod is one netns (lo + eth0, shared by its containers); the node's root netns
 * holds cni0, flannel.1 and eth0 and forwards between them.
 *
 * Design notes:
 * - Frames arrive through `input(iface, frame)` and leave through `iface.xmit`; nothing here
 *   does I/O or reads the clock (the Datapath's `now` is used).
 * - ICMP errors follow RFC 1812 §4.3.2: never about an ICMP error, a broadcast, or a non-first
 *   fragment; the source address is the one the route back to the sender would use.
 * - Parsing untrusted bytes goes through the checked codecs; a bad frame is a counted drop.
 */
import {
  ArpOperation,
  ETHERNET_HEADER_LEN,
  EtherType,
  IPV4_HEADER_LEN,
  IcmpType,
  IpProtocol,
  MAC_BROADCAST,
  TimeExceededCode,
  UDP_HEADER_LEN,
  UnreachableCode,
  emitArp,
  emitEthernet,
  emitIcmp,
  emitIpv4,
  emitUdp,
  formatIpv4,
  formatMac,
  icmpErrorOriginal,
  icmpLen,
  ipv4DecrementTtl,
  parseArp,
  parseEthernet,
  parseIcmp,
  parseIpv4,
  parseUdp,
  ARP_LEN,
  type ArpRepr,
  type IcmpRepr,
  type Ipv4Addr,
  type Ipv4Packet,
  type MacAddr,
} from "../overlay/wire/index.ts";
import type { Datapath, Tracer } from "./datapath.ts";
import { Reassembler, fragmentIpv4, isFragment } from "./fragment.ts";
import { NeighborTable } from "./neighbor.ts";
import { RouteTable, formatRoute } from "./routes.ts";

export interface Iface {
  readonly name: string;
  readonly mac: MacAddr;
  mtu: number;
  /** Primary address and the prefix of its connected subnet. */
  addr?: { ip: Ipv4Addr; prefix: number };
  /** flannel.1 is NOARP: its neighbours are programmed, never solicited. */
  readonly noArp?: boolean;
  /** Sends a complete Ethernet frame out of this interface. */
  xmit(frame: Uint8Array, tr: Tracer | undefined): void;
}

export interface UdpMeta {
  src: Ipv4Addr;
  srcPort: number;
  dst: Ipv4Addr;
  dstPort: number;
  ttl: number;
}
export type UdpHandler = (payload: Uint8Array, meta: UdpMeta, tr: Tracer | undefined) => void;
/** Sees every ICMP message delivered locally (ping and traceroute listen here). */
export type IcmpListener = (icmp: IcmpRepr, ip: Ipv4Packet) => void;

export interface SendOptions {
  ttl?: number;
  dontFragment?: boolean;
  tr?: Tracer;
}

export type SendResult = { kind: "sent" } | { kind: "noRoute" } | { kind: "messageTooLong"; mtu: number };

/** A packet parked until its next hop's MAC is known. */
interface PendingPacket {
  iface: Iface;
  nextHop: Ipv4Addr;
  ip: Uint8Array;
  tr: Tracer | undefined;
}

const DEFAULT_TTL = 64;

/**
 * Room left in front of every locally built packet for the Ethernet header and, should it
 * cross nodes, the 50 bytes of outer VXLAN headers: each hop then writes its header in place
 * instead of allocating and copying the frame again (Linux's skb headroom, for the same reason).
 */
export const FRAME_HEADROOM = 64;

export class Netns {
  readonly ifaces = new Map<string, Iface>();
  readonly routes = new RouteTable();
  readonly neighbors = new NeighborTable<PendingPacket>();
  private readonly udpSockets = new Map<number, UdpHandler>();
  private readonly icmpListeners = new Set<IcmpListener>();
  private readonly reassembler = new Reassembler();
  private nextIpId = 1;
  private nextEphemeralPort = 32768;

  constructor(
    /** "root" for the node, the pod name for a pod. */
    readonly name: string,
    private readonly dp: Datapath,
    readonly forwarding: boolean,
  ) {}

  /** How hops in this netns are named in traces: "eth0" on the node, "pod-a eth0" in a pod. */
  private where(iface: Iface | string): string {
    const dev = typeof iface === "string" ? iface : iface.name;
    return this.name === "root" ? dev : `${this.name} ${dev}`;
  }

  addIface(iface: Iface): void {
    this.ifaces.set(iface.name, iface);
    if (iface.addr) {
      const { ip, prefix } = iface.addr;
      const network = prefix === 0 ? 0 : (ip & ((0xffff_ffff << (32 - prefix)) >>> 0)) >>> 0;
      if (prefix < 32) this.routes.replace({ dst: { network, prefix }, dev: iface.name, src: ip });
    }
  }

  isLocalAddress(ip: Ipv4Addr): boolean {
    if (ip >>> 24 === 127) return true;
    for (const iface of this.ifaces.values()) if (iface.addr?.ip === ip) return true;
    return false;
  }

  bindUdp(port: number, handler: UdpHandler): { kind: "bound"; port: number } | { kind: "inUse" } {
    if (this.udpSockets.has(port)) return { kind: "inUse" };
    this.udpSockets.set(port, handler);
    return { kind: "bound", port };
  }

  /** Binds the next free port of the ephemeral range (32768-60999, as Linux). */
  bindEphemeralUdp(handler: UdpHandler): number {
    for (let i = 0; i < 28232; i++) {
      const port = this.nextEphemeralPort;
      this.nextEphemeralPort = port >= 60999 ? 32768 : port + 1;
      if (!this.udpSockets.has(port)) {
        this.udpSockets.set(port, handler);
        return port;
      }
    }
    throw new RangeError("no free ephemeral UDP port");
  }

  unbindUdp(port: number): void {
    this.udpSockets.delete(port);
  }

  onIcmp(listener: IcmpListener): () => void {
    this.icmpListeners.add(listener);
    return () => this.icmpListeners.delete(listener);
  }

  // ---------------------------------------------------------------- receive

  input(iface: Iface, frame: Uint8Array, tr: Tracer | undefined): void {
    const eth = parseEthernet(frame);
    if (!eth.ok) return this.drop(iface, `bad ethernet frame: ${eth.error.message}`, tr);
    const { dst, ethertype, payload } = eth.value;
    if (dst !== iface.mac && dst !== MAC_BROADCAST) return this.drop(iface, `frame for ${formatMac(dst)} is not for ${formatMac(iface.mac)}`, tr);
    if (ethertype === EtherType.ARP) return this.arpInput(iface, payload);
    if (ethertype === EtherType.IPv4) return this.ipInput(iface, payload, tr);
    this.drop(iface, `ethertype 0x${ethertype.toString(16)} not handled`, tr);
  }

  private arpInput(iface: Iface, bytes: Uint8Array): void {
    const parsed = parseArp(bytes);
    if (!parsed.ok) return this.drop(iface, `bad ARP: ${parsed.error.message}`, undefined);
    const arp = parsed.value;
    const now = this.dp.now();
    if (iface.addr?.ip !== arp.targetIp) {
      // RFC 826 merge step: refresh an existing entry, learn nothing new from others' traffic.
      this.flush(this.neighbors.refresh(iface.name, arp.senderIp, arp.senderMac, now), arp.senderMac);
      return;
    }
    this.flush(this.neighbors.learn(iface.name, arp.senderIp, arp.senderMac, now), arp.senderMac);
    if (arp.operation === ArpOperation.Request) {
      this.sendArp(iface, {
        operation: ArpOperation.Reply,
        senderMac: iface.mac,
        senderIp: iface.addr.ip,
        targetMac: arp.senderMac,
        targetIp: arp.senderIp,
      }, arp.senderMac);
    }
  }

  private ipInput(iface: Iface, bytes: Uint8Array, tr: Tracer | undefined): void {
    const parsed = parseIpv4(bytes);
    if (!parsed.ok) return this.drop(iface, `bad IPv4 packet: ${parsed.error.message}`, tr);
    const pkt = parsed.value;
    if (this.isLocalAddress(pkt.dst) || pkt.dst === 0xffff_ffff) {
      if (!isFragment(pkt)) return this.deliverLocal(iface, pkt, bytes, tr);
      const r = this.reassembler.add(pkt, bytes, this.dp.now());
      if (r.kind === "invalid") return this.drop(iface, `bad fragment: ${r.reason}`, tr);
      if (r.kind === "incomplete") {
        tr?.hop(this.where(iface), `fragment at offset ${pkt.fragmentOffset} queued for reassembly`);
        return;
      }
      const whole = parseIpv4(r.packet);
      if (!whole.ok) return this.drop(iface, `reassembled datagram is bad: ${whole.error.message}`, tr);
      this.dp.counters.inc("ip_reassembled_total");
      return this.deliverLocal(iface, whole.value, r.packet, tr);
    }
    if (!this.forwarding) return this.drop(iface, `${formatIpv4(pkt.dst)} is not a local address and forwarding is off`, tr);
    this.forward(iface, pkt, bytes, tr);
  }

  private forward(inIface: Iface, pkt: Ipv4Packet, bytes: Uint8Array, tr: Tracer | undefined): void {
    if (pkt.ttl <= 1) {
      tr?.hop("route", `ttl ${pkt.ttl} expired in transit`, "dropped");
      this.dp.counters.inc("ip_forward_ttl_exceeded_total");
      return this.icmpError(pkt, { kind: "timeExceeded", code: TimeExceededCode.TtlExceeded, original: icmpErrorOriginal(bytes) });
    }
    const lookup = this.routes.lookup(pkt.dst);
    if (lookup.kind === "noRoute") {
      tr?.hop("route", `no route to ${formatIpv4(pkt.dst)}`, "dropped");
      return this.icmpError(pkt, { kind: "destUnreachable", code: UnreachableCode.NetUnreachable, nextHopMtu: 0, original: icmpErrorOriginal(bytes) });
    }
    const out = this.ifaces.get(lookup.route.dev);
    if (!out) return this.drop(inIface, `route through missing device ${lookup.route.dev}`, tr);
    const total = pkt.headerLength + pkt.payload.length;
    if (total > out.mtu && pkt.dontFragment) {
      tr?.hop("route", `${total} bytes exceed ${out.name} mtu ${out.mtu} and DF is set`, "dropped");
      return this.icmpError(pkt, { kind: "destUnreachable", code: UnreachableCode.FragmentationNeeded, nextHopMtu: out.mtu, original: icmpErrorOriginal(bytes) });
    }
    // The frame is ours now (nobody reads it after this hop), so the TTL is decremented in place.
    const ip = bytes.subarray(0, total);
    const ttl = ipv4DecrementTtl(ip, 0);
    tr?.hop("route", `${formatRoute(lookup.route)}; ttl ${ttl + 1} -> ${ttl}`);
    this.dp.counters.inc("ip_forwarded_total");
    this.output(out, lookup.nextHop, ip, tr);
  }

  private deliverLocal(iface: Iface, pkt: Ipv4Packet, bytes: Uint8Array, tr: Tracer | undefined): void {
    switch (pkt.protocol) {
      case IpProtocol.ICMP: {
        const parsed = parseIcmp(pkt.payload);
        if (!parsed.ok) return this.drop(iface, `bad ICMP: ${parsed.error.message}`, tr);
        const icmp = parsed.value;
        if (icmp.kind === "echoRequest") {
          tr?.hop(this.where(iface), `ICMP echo request from ${formatIpv4(pkt.src)} delivered; echo reply sent`, "delivered");
          this.send(pkt.src, IpProtocol.ICMP, icmpLen(icmp), (buf, off) =>
            emitIcmp({ kind: "echoReply", ident: icmp.ident, seq: icmp.seq, data: icmp.data }, buf, off),
            { src: pkt.dst },
          );
          return;
        }
        tr?.hop(this.where(iface), `ICMP ${icmp.kind} from ${formatIpv4(pkt.src)} delivered`, "delivered");
        for (const listener of this.icmpListeners) listener(icmp, pkt);
        return;
      }
      case IpProtocol.UDP: {
        const parsed = parseUdp(pkt.payload, { src: pkt.src, dst: pkt.dst });
        if (!parsed.ok) return this.drop(iface, `bad UDP: ${parsed.error.message}`, tr);
        const udp = parsed.value;
        const socket = this.udpSockets.get(udp.dstPort);
        if (!socket) {
          tr?.hop(this.where(iface), `UDP port ${udp.dstPort} closed: ICMP port unreachable`, "dropped");
          this.dp.counters.inc("udp_no_port_total");
          return this.icmpError(pkt, { kind: "destUnreachable", code: UnreachableCode.PortUnreachable, nextHopMtu: 0, original: icmpErrorOriginal(bytes) });
        }
        tr?.hop(this.where(iface), `UDP to port ${udp.dstPort} delivered`, "delivered");
        socket(udp.payload, { src: pkt.src, srcPort: udp.srcPort, dst: pkt.dst, dstPort: udp.dstPort, ttl: pkt.ttl }, tr);
        return;
      }
      default:
        tr?.hop(this.where(iface), `protocol ${pkt.protocol} not handled: ICMP protocol unreachable`, "dropped");
        return this.icmpError(pkt, { kind: "destUnreachable", code: UnreachableCode.ProtocolUnreachable, nextHopMtu: 0, original: icmpErrorOriginal(bytes) });
    }
  }

  // ---------------------------------------------------------------- send

  /**
   * Sends a locally originated IPv4 packet: route lookup, source address selection, MTU check
   * (a too-long DF packet fails locally, as Linux's EMSGSIZE), neighbour resolution.
   */
  send(
    dst: Ipv4Addr,
    protocol: number,
    payloadLength: number,
    emitPayload: (buf: Uint8Array, off: number, src: Ipv4Addr) => void,
    opts: SendOptions & { src?: Ipv4Addr } = {},
  ): SendResult {
    const lookup = this.routes.lookup(dst);
    if (lookup.kind === "noRoute") {
      opts.tr?.hop(this.where("route"), `no route to ${formatIpv4(dst)}`, "dropped");
      return { kind: "noRoute" };
    }
    const out = this.ifaces.get(lookup.route.dev);
    if (!out) return { kind: "noRoute" };
    const src = opts.src ?? lookup.route.src ?? out.addr?.ip ?? 0;
    const total = IPV4_HEADER_LEN + payloadLength;
    if (total > out.mtu && opts.dontFragment !== false) return { kind: "messageTooLong", mtu: out.mtu };
    if (total > 65_535) return { kind: "messageTooLong", mtu: 65_535 };
    // allocUnsafe carves small packets out of a shared pool instead of a zeroed allocation each;
    // every byte of the packet is written below, and headers are written before they are read.
    const ip = Buffer.allocUnsafe(FRAME_HEADROOM + total).subarray(FRAME_HEADROOM);
    emitIpv4({
      src,
      dst,
      protocol,
      ttl: opts.ttl ?? DEFAULT_TTL,
      tos: 0,
      identification: this.nextIpId++ & 0xffff,
      dontFragment: opts.dontFragment !== false,
      moreFragments: false,
      fragmentOffset: 0,
      payloadLength,
    }, ip, 0);
    emitPayload(ip, IPV4_HEADER_LEN, src);
    if (this.isLocalAddress(dst)) {
      // Traffic to ourselves loops back without touching a device (Linux routes it via lo).
      const lo = this.ifaces.get("lo");
      if (lo) {
        this.dp.send((bytes, t) => this.ipInput(lo, bytes, t), ip, opts.tr);
        return { kind: "sent" };
      }
    }
    opts.tr?.hop(this.where(out), `${formatIpv4(src)} > ${formatIpv4(dst)} ttl ${opts.ttl ?? DEFAULT_TTL}; route ${formatRoute(lookup.route)}`);
    this.output(out, lookup.nextHop, ip, opts.tr);
    return { kind: "sent" };
  }

  sendUdp(dst: Ipv4Addr, dstPort: number, srcPort: number, payload: Uint8Array, opts: SendOptions = {}): SendResult {
    return this.send(dst, IpProtocol.UDP, UDP_HEADER_LEN + payload.length, (buf, off, src) =>
      emitUdp({ srcPort, dstPort }, payload, buf, off, { src, dst }), opts);
  }

  sendIcmp(dst: Ipv4Addr, icmp: IcmpRepr, opts: SendOptions = {}): SendResult {
    return this.send(dst, IpProtocol.ICMP, icmpLen(icmp), (buf, off) => emitIcmp(icmp, buf, off), opts);
  }

  /** Sends `ip` (DF clear if it is too long: the caller checked) out of `out`, in fragments if it must. */
  private output(out: Iface, nextHop: Ipv4Addr, ip: Uint8Array, tr: Tracer | undefined): void {
    if (ip.length <= out.mtu) return this.resolveAndSend(out, nextHop, ip, tr);
    const fragments = fragmentIpv4(ip, out.mtu, FRAME_HEADROOM);
    tr?.hop(this.where(out), `${ip.length} bytes exceed mtu ${out.mtu}: ${fragments.length} fragments, the trace follows the first`);
    this.dp.counters.inc("ip_fragments_created_total", fragments.length);
    fragments.forEach((f, i) => this.resolveAndSend(out, nextHop, f, i === 0 ? tr : undefined));
  }

  private resolveAndSend(out: Iface, nextHop: Ipv4Addr, ip: Uint8Array, tr: Tracer | undefined): void {
    const now = this.dp.now();
    const neighbor = this.neighbors.lookup(out.name, nextHop, now);
    if (neighbor.kind === "found") return this.emitFrame(out, neighbor.mac, ip, tr);
    if (out.noArp) {
      tr?.hop(this.where(out), `no neighbour entry for ${formatIpv4(nextHop)} on NOARP device`, "dropped");
      this.dp.counters.inc("neighbor_missing_total");
      return;
    }
    tr?.hop(this.where(out), `ARP: resolving ${formatIpv4(nextHop)}, packet queued`);
    const { solicit, dropped } = this.neighbors.enqueue(out.name, nextHop, { iface: out, nextHop, ip, tr }, now);
    if (dropped) this.dp.counters.inc("neighbor_queue_overflow_total");
    if (solicit) this.solicit(out, nextHop);
  }

  /**
   * Frames the IP packet for `out`. The bytes in front of `ip` are ours (headroom of a packet
   * built here, or the Ethernet header of the frame it arrived in), so the header goes there.
   */
  private emitFrame(out: Iface, dstMac: MacAddr, ip: Uint8Array, tr: Tracer | undefined): void {
    let frame: Uint8Array;
    if (ip.byteOffset >= ETHERNET_HEADER_LEN) {
      frame = new Uint8Array(ip.buffer, ip.byteOffset - ETHERNET_HEADER_LEN, ETHERNET_HEADER_LEN + ip.length);
    } else {
      frame = new Uint8Array(ETHERNET_HEADER_LEN + ip.length);
      frame.set(ip, ETHERNET_HEADER_LEN);
    }
    emitEthernet({ dst: dstMac, src: out.mac, ethertype: EtherType.IPv4 }, frame, 0);
    out.xmit(frame, tr);
  }

  private solicit(out: Iface, ip: Ipv4Addr): void {
    if (!out.addr) return;
    this.sendArp(out, { operation: ArpOperation.Request, senderMac: out.mac, senderIp: out.addr.ip, targetMac: 0, targetIp: ip }, MAC_BROADCAST);
  }

  private sendArp(out: Iface, arp: ArpRepr, dstMac: MacAddr): void {
    const frame = new Uint8Array(ETHERNET_HEADER_LEN + ARP_LEN);
    emitEthernet({ dst: dstMac, src: out.mac, ethertype: EtherType.ARP }, frame, 0);
    emitArp(arp, frame, ETHERNET_HEADER_LEN);
    out.xmit(frame, undefined);
  }

  private flush(packets: PendingPacket[], mac: MacAddr): void {
    for (const p of packets) this.emitFrame(p.iface, mac, p.ip, p.tr);
  }

  private icmpError(pkt: Ipv4Packet, icmp: IcmpRepr): void {
    if (pkt.fragmentOffset !== 0 || pkt.dst === 0xffff_ffff || pkt.src === 0) return;
    if (pkt.protocol === IpProtocol.ICMP) {
      const type = pkt.payload[0];
      if (type !== IcmpType.EchoRequest && type !== IcmpType.EchoReply) return;
    }
    this.dp.counters.inc(`icmp_out_${icmp.kind}_total`);
    this.sendIcmp(pkt.src, icmp, {});
  }

  private drop(iface: Iface, reason: string, tr: Tracer | undefined): void {
    this.dp.counters.inc("rx_dropped_total");
    tr?.hop(this.where(iface), reason, "dropped");
  }

  /** Periodic work: ARP retransmits and give-ups (ICMP host unreachable for what waited). */
  tick(): void {
    const now = this.dp.now();
    const expired = this.reassembler.expire(now);
    if (expired > 0) this.dp.counters.inc("ip_reassembly_timeout_total", expired);
    const { resolicit, failed } = this.neighbors.tick(now);
    for (const { dev, ip } of resolicit) {
      const iface = this.ifaces.get(dev);
      if (iface) this.solicit(iface, ip);
    }
    for (const { ip, packets } of failed) {
      for (const p of packets) {
        p.tr?.hop(this.where(p.iface), `ARP for ${formatIpv4(ip)} got no answer`, "dropped");
        const parsed = parseIpv4(p.ip);
        if (parsed.ok && !this.isLocalAddress(parsed.value.src)) {
          this.icmpError(parsed.value, { kind: "destUnreachable", code: UnreachableCode.HostUnreachable, nextHopMtu: 0, original: icmpErrorOriginal(p.ip) });
        }
      }
    }
  }
}
