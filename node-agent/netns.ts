/**
 * An emulated Linux network namespace: interfaces, a route table, a neighbour table,
 * netfilter hooks with conntrack and NAT, and the IPv4 stack on them (ARP, local delivery to
 * ICMP/UDP/TCP, forwarding with TTL decrement, fragmentation, ICMP errors). A pod is one netns
 * (lo + eth0, shared by its containers); the node's root netns holds cni0, flannel.1 and eth0
 * and forwards between them.
 *
 * Design notes:
 * - Packets arrive parsed (node-agent/packet.ts): nothing here parses headers again; it reads
 *   the descriptor's offsets and fields. L4 checksums are verified once, at local delivery,
 *   unless the packet was built by this node (`csumOk`).
 * - The hook order is Linux's (net/ipv4/ip_input.c, ip_forward.c, ip_output.c): PREROUTING
 *   (defrag, conntrack, DNAT) -> routing -> INPUT (filter, confirm) or FORWARD -> POSTROUTING
 *   (SNAT, confirm); local output runs OUTPUT (conntrack, DNAT, re-route) then POSTROUTING.
 * - ICMP errors follow RFC 1812 §4.3.2: never about an ICMP error, a broadcast, or a non-first
 *   fragment; rate-limited per netns like net.ipv4.icmp_msgs_per_sec (1000/s, burst 50).
 * - Every table is bounded: neighbours (gc_thresh3 = 1024), reassembly memory
 *   (ipfrag_high_thresh = 4 MiB), conntrack (its max); a flood costs counted drops.
 */
import {
  ArpOperation,
  ETHERNET_HEADER_LEN,
  EtherType,
  IPV4_HEADER_LEN,
  IcmpType,
  IpProtocol,
  MAC_BROADCAST,
  TcpFlag,
  TimeExceededCode,
  UDP_HEADER_LEN,
  UnreachableCode,
  ARP_LEN,
  emitArp,
  emitIcmp,
  emitTcp,
  formatIpv4,
  formatMac,
  icmpErrorOriginal,
  icmpLen,
  ipv4DecrementTtl,
  onesComplementSum,
  parseArp,
  parseIcmp,
  parseIpv4,
  pseudoHeaderSum,
  readMac,
  readU16,
  readU32,
  writeMac,
  writeU16,
  writeU32,
  type ArpRepr,
  type IcmpRepr,
  type Ipv4Addr,
  type Ipv4Packet,
  type MacAddr,
} from "../overlay/wire/index.ts";
import { Conntrack } from "./conntrack.ts";
import { dropCounter, type CounterCell, type Datapath } from "./datapath.ts";
import { Reassembler, fragmentIpv4 } from "./fragment.ts";
import type { Link } from "./link.ts";
import { NeighborTable } from "./neighbor.ts";
import { DropReason, HOOK_NAMES, Hook, Netfilter, type HookContext, type NatVerdict, type RejectWith, type Verdict } from "./netfilter.ts";
import { CtDir, CtState, isFragmentAt, parseIpHeaders, type Packet } from "./packet.ts";
import { RouteTable, formatRoute } from "./routes.ts";
import type { SegmentIn, SegmentOut, TcpApi } from "./tcp/api.ts";
import { TcpStack } from "./tcp/stack.ts";

export interface Iface {
  readonly name: string;
  readonly mac: MacAddr;
  readonly mtu: number;
  readonly link: Link;
  /** Primary address and the prefix of its connected subnet. */
  addr?: { ip: Ipv4Addr; prefix: number };
  /** flannel.1 is NOARP: its neighbours are programmed, never solicited, and ARP on it is ignored. */
  readonly noArp?: boolean;
}

export interface UdpMeta {
  src: Ipv4Addr;
  srcPort: number;
  dst: Ipv4Addr;
  dstPort: number;
  ttl: number;
}
/** The payload and meta are valid only during the call: copy what you keep. */
export type UdpHandler = (payload: Uint8Array, meta: UdpMeta, tr: Packet["tr"]) => void;
/** Sees every ICMP message delivered locally (ping and traceroute listen here). */
export type IcmpListener = (icmp: IcmpRepr, ip: Ipv4Packet) => void;

export interface SendOptions {
  ttl?: number;
  dontFragment?: boolean;
  tr?: Packet["tr"];
  src?: Ipv4Addr;
  /** A GSO packet of segments this size (TCP's TSO): exempt from the MTU, cut at the link that needs it. */
  gsoSize?: number;
}

export type SendResult =
  | { kind: "sent" }
  | { kind: "noRoute" }
  | { kind: "messageTooLong"; mtu: number }
  /** A netfilter rule at OUTPUT dropped or rejected it (EPERM on Linux). */
  | { kind: "filtered" };

const DEFAULT_TTL = 64;
/** The largest TSO segment: an IPv4 datagram's limit less the IPv4 and TCP headers (with options). */
const TSO_MAX_BYTES = 65_535 - 20 - 60;
const SENT: SendResult = { kind: "sent" };
const NO_ROUTE = { kind: "noRoute" } as const;
const NO_OPTIONS: SendOptions = {};
const LOOPBACK_NET = 127;
/** net.ipv4.neigh.default.gc_thresh3. */
export const NEIGHBOR_MAX = 1024;
/** net.ipv4.icmp_msgs_per_sec and icmp_msgs_burst. */
const ICMP_RATE_PER_MS = 1000 / 1000;
const ICMP_BURST = 50;

export interface NetnsOptions {
  /**
   * "always" in the root netns (flannel's and kube-proxy's rules need it); "on-demand" in pods:
   * Linux registers conntrack's hooks in a netns only once a rule there needs them
   * (nf_ct_netns_get), so a pod without rules pays nothing for it.
   */
  conntrack?: "always" | "on-demand";
  conntrackMax?: number;
  reassemblyMaxBytes?: number;
  neighborMax?: number;
  /**
   * Addresses in 127.0.0.0/8 that are NOT this netns's loopback: the LoadBalancer pool, which
   * must be reachable both from real clients on the host (so it lies in loopback there) and from
   * pods, where all of 127/8 would otherwise be the pod's own (a choice the README states).
   */
  routedLoopback?: { network: number; prefix: number };
  /**
   * Further addresses this netns holds as local (Linux's `ip route add local PREFIX dev lo`,
   * "AnyIP"): the emulated outside world owns every address a real client may have.
   */
  anyIp?: (ip: Ipv4Addr) => boolean;
}

export class Netns {
  readonly ifaces = new Map<string, Iface>();
  readonly routes = new RouteTable();
  readonly neighbors: NeighborTable<Packet>;
  readonly netfilter = new Netfilter();
  readonly conntrack: Conntrack;
  readonly tcp: TcpApi & TcpStack;
  private readonly udpSockets = new Map<number, UdpHandler>();
  private readonly icmpListeners = new Set<IcmpListener>();
  private readonly reassembler: Reassembler;
  private nextIpId = 1;
  private nextEphemeralPort = 32768;
  private icmpTokens = ICMP_BURST;
  private icmpRefilledAt = 0;
  /** Handed to UDP handlers; valid only during the call, like the payload view. */
  private readonly udpMeta: UdpMeta = { src: 0, srcPort: 0, dst: 0, dstPort: 0, ttl: 0 };
  private readonly hookCtx: HookContext = { hook: Hook.Prerouting, iif: "", oif: "", ctState: CtState.Untracked, ct: undefined, mark: 0, now: 0 };
  private readonly removePoller: () => void;
  private readonly forwarded: CounterCell;
  private tracking: boolean;
  private readonly conntrackMode: "always" | "on-demand";

  constructor(
    /** "root" for the node, the pod name for a pod. */
    readonly name: string,
    private readonly dp: Datapath,
    readonly forwarding: boolean,
    opts: NetnsOptions = {},
  ) {
    this.neighbors = new NeighborTable<Packet>(opts.neighborMax ?? NEIGHBOR_MAX);
    this.reassembler = new Reassembler(opts.reassemblyMaxBytes);
    this.conntrack = new Conntrack({ max: opts.conntrackMax });
    this.forwarded = dp.counters.cell("ip_forwarded_total");
    this.conntrackMode = opts.conntrack ?? "always";
    if (opts.routedLoopback) {
      this.routedLoopbackMask = opts.routedLoopback.prefix === 0 ? 0 : (0xffff_ffff << (32 - opts.routedLoopback.prefix)) >>> 0;
      this.routedLoopbackNet = (opts.routedLoopback.network & this.routedLoopbackMask) >>> 0;
    }
    this.anyIp = opts.anyIp;
    this.tracking = this.conntrackMode === "always";
    this.netfilter.onChange = () => {
      this.tracking = this.conntrackMode === "always" || this.netfilter.ruleSets().length > 0;
    };
    this.tcp = new TcpStack(
      {
        now: () => dp.now(),
        random: () => Math.floor(dp.rng() * 0x1_0000_0000) >>> 0,
        output: (seg) => this.sendTcpSegment(seg),
        sourceFor: (dst) => this.sourceFor(dst),
        mtuFor: (dst) => this.mtuFor(dst),
        isLocal: (ip) => this.isLocalAddress(ip),
      },
      // Segmentation offload as Linux's veth and vxlan offer it: up to 64 KiB per GSO packet.
      { tsoMaxBytes: TSO_MAX_BYTES },
    );
    this.removePoller = dp.addPoller(this.tcp);
  }

  get reassemblyMemory(): number {
    return this.reassembler.memory;
  }

  /** The netns is gone (pod deleted): its timers stop. */
  destroy(): void {
    this.removePoller();
  }

  /** How hops in this netns are named in traces: "eth0" on the node, "pod-a eth0" in a pod. */
  private where(dev: string): string {
    return this.name === "root" ? dev : `${this.name} ${dev}`;
  }

  addIface(iface: Iface): void {
    this.ifaces.set(iface.name, iface);
    this.localAddrs = [...this.ifaces.values()].flatMap((i) => (i.addr ? [i.addr.ip] : []));
    iface.link.setReceiver((pkt) => this.input(iface, pkt));
    if (iface.addr) {
      const { ip, prefix } = iface.addr;
      const network = prefix === 0 ? 0 : (ip & ((0xffff_ffff << (32 - prefix)) >>> 0)) >>> 0;
      if (prefix < 32) this.routes.replace({ dst: { network, prefix }, dev: iface.name, src: ip });
    }
  }

  isLocalAddress(ip: Ipv4Addr): boolean {
    if (ip >>> 24 === LOOPBACK_NET) return !(this.routedLoopbackMask !== 0 && ((ip & this.routedLoopbackMask) >>> 0) === this.routedLoopbackNet);
    const a = this.localAddrs;
    for (let i = 0; i < a.length; i++) if (a[i] === ip) return true;
    return this.anyIp !== undefined && this.anyIp(ip);
  }
  private readonly routedLoopbackNet: number = 0;
  private readonly routedLoopbackMask: number = 0;
  private readonly anyIp: ((ip: Ipv4Addr) => boolean) | undefined;

  /** The interfaces' addresses, kept beside the map: asked several times per packet. */
  private localAddrs: Ipv4Addr[] = [];

  private sourceFor(dst: Ipv4Addr): Ipv4Addr | undefined {
    if (this.isLocalAddress(dst)) return dst;
    const r = this.routes.lookup(dst);
    if (r.kind === "noRoute") return undefined;
    return r.route.src ?? this.ifaces.get(r.route.dev)?.addr?.ip;
  }

  /** The path MTU for TCP's MSS; lo's 65536 is capped at the largest IPv4 datagram. */
  private mtuFor(dst: Ipv4Addr): number {
    if (this.isLocalAddress(dst)) return Math.min(this.ifaces.get("lo")?.mtu ?? 65536, 65_535);
    const r = this.routes.lookup(dst);
    return r.kind === "found" ? (this.ifaces.get(r.route.dev)?.mtu ?? 1500) : 1500;
  }

  /** Error callbacks of the UDP sockets that asked for ICMP errors (bindUdp's onError), by port. */
  private readonly udpErrorHandlers = new Map<number, import("./tcp/api.ts").DatagramErrorHandler>();

  /**
   * `onError` hears of ICMP errors about datagrams sent from `port` (see icmpToTransport), as a
   * connected UDP socket gets ECONNREFUSED on Linux; without it they reach only onIcmp listeners.
   */
  bindUdp(port: number, handler: UdpHandler, onError?: import("./tcp/api.ts").DatagramErrorHandler): { kind: "bound"; port: number } | { kind: "inUse" } {
    if (this.udpSockets.has(port)) return { kind: "inUse" };
    this.udpSockets.set(port, handler);
    if (onError) this.udpErrorHandlers.set(port, onError);
    return { kind: "bound", port };
  }

  /** Binds the next free port of the ephemeral range (32768-60999, as Linux). */
  bindEphemeralUdp(handler: UdpHandler, onError?: import("./tcp/api.ts").DatagramErrorHandler): number {
    for (let i = 0; i < 28232; i++) {
      const port = this.nextEphemeralPort;
      this.nextEphemeralPort = port >= 60999 ? 32768 : port + 1;
      if (!this.udpSockets.has(port)) {
        this.udpSockets.set(port, handler);
        if (onError) this.udpErrorHandlers.set(port, onError);
        return port;
      }
    }
    throw new RangeError("no free ephemeral UDP port");
  }

  unbindUdp(port: number): void {
    this.udpSockets.delete(port);
    this.udpErrorHandlers.delete(port);
  }

  /**
   * Hands an ICMP error about a datagram this netns sent to its transport (Linux icmp_unreach ->
   * icmp_socket_deliver -> tcp_v4_err / __udp4_lib_err). The quote is the original datagram as
   * sent (RFC 792: IP header + 8 bytes, enough for the ports and TCP's sequence number); NAT on
   * the way was undone by conntrack (RELATED). Returns what was done, for the trace.
   */
  private icmpToTransport(icmp: IcmpRepr): string | undefined {
    if (icmp.kind !== "destUnreachable" && icmp.kind !== "timeExceeded") return undefined;
    const q = icmp.original;
    if (q.length < IPV4_HEADER_LEN || q[0]! >> 4 !== 4) return undefined;
    const ihl = (q[0]! & 0x0f) * 4;
    // Less than the IP header + 8 bytes (RFC 792), or a non-first fragment: no ports to go by.
    if (ihl < IPV4_HEADER_LEN || q.length < ihl + 8 || (readU16(q, 6) & 0x1fff) !== 0) return undefined;
    const src = readU32(q, 12);
    if (!this.isLocalAddress(src)) return undefined;
    const dst = readU32(q, 16);
    const srcPort = readU16(q, ihl);
    const dstPort = readU16(q, ihl + 2);
    const type = icmp.kind === "destUnreachable" ? IcmpType.DestUnreachable : IcmpType.TimeExceeded;
    if (q[9] === IpProtocol.TCP) {
      const nextHopMtu = icmp.kind === "destUnreachable" ? icmp.nextHopMtu : 0;
      return `TCP ${this.tcp.icmpError({ src, dst, srcPort, dstPort, seq: readU32(q, ihl + 4) }, type, icmp.code, nextHopMtu)}`;
    }
    if (q[9] !== IpProtocol.UDP) return undefined;
    const onError = this.udpErrorHandlers.get(srcPort);
    if (onError === undefined) return undefined;
    // __udp4_lib_err without IP_RECVERR: only hard errors (port or protocol unreachable,
    // administratively prohibited...) reach the socket; net/host unreachable and time exceeded
    // do not, nor "fragmentation needed" (EMSGSIZE, not modelled).
    const err = TcpStack.icmpErrConvert(type, icmp.code);
    if (err === undefined || !err.fatal) return undefined;
    onError({ kind: err.kind, dst, dstPort, type, code: icmp.code });
    return `UDP port ${srcPort} told ${err.errno}`;
  }

  onIcmp(listener: IcmpListener): () => void {
    this.icmpListeners.add(listener);
    return () => this.icmpListeners.delete(listener);
  }

  private drop(pkt: Packet, reason: DropReason, dev: string, detail?: string): void {
    this.dp.drop(pkt, reason, this.where(dev), detail);
  }

  // ---------------------------------------------------------------- receive

  input(iface: Iface, pkt: Packet): void {
    const b = pkt.buf;
    const h = pkt.head;
    if (pkt.len < ETHERNET_HEADER_LEN) return this.drop(pkt, DropReason.Malformed, iface.name, "runt frame");
    const dst = readMac(b, h);
    if (iface.mac !== 0 && dst !== iface.mac && dst !== MAC_BROADCAST) {
      return this.drop(pkt, DropReason.NotForUs, iface.name, `frame for ${formatMac(dst)} is not for ${formatMac(iface.mac)}`);
    }
    const ethertype = readU16(b, h + 12);
    if (ethertype === EtherType.ARP) return this.arpInput(iface, pkt);
    if (ethertype !== EtherType.IPv4) return this.drop(pkt, DropReason.Unsupported, iface.name, `ethertype 0x${ethertype.toString(16)} not handled`);
    const l3 = h + ETHERNET_HEADER_LEN;
    // Frames built by this node carry their offsets; a frame whose offsets do not line up
    // (a device moved it) is parsed again, once.
    if (pkt.l3 !== l3 && !parseIpHeaders(pkt, l3)) return this.drop(pkt, DropReason.Malformed, iface.name, "bad IPv4 header");
    pkt.head = l3;
    pkt.ingress = iface.name;
    // Entering a netns scrubs what belonged to the last one (skb_scrub_packet: conntrack, mark).
    pkt.ct = undefined;
    pkt.ctState = CtState.Untracked;
    pkt.mark = 0;
    this.ipRcv(iface, pkt);
  }

  /**
   * A frame the node's bridge switches between two ports, through this netns's PREROUTING,
   * FORWARD and POSTROUTING as br_netfilter does it (net/bridge/br_netfilter_hooks.c), the
   * ports named as the in and out devices. False when a hook consumed it.
   */
  bridged(pkt: Packet, inDev: string, outDev: string): boolean {
    const l3 = pkt.head + ETHERNET_HEADER_LEN;
    if (pkt.l3 !== l3 && !parseIpHeaders(pkt, l3)) return true;
    // Fragments are reassembled by br_netfilter; they are rare on a bridge with one MTU: let them pass.
    if (isFragmentAt(pkt.buf, l3)) return true;
    pkt.ct = undefined;
    pkt.ctState = CtState.Untracked;
    pkt.mark = 0;
    return this.hook(Hook.Prerouting, pkt, inDev, "") && this.hook(Hook.Forward, pkt, inDev, outDev) && this.hook(Hook.Postrouting, pkt, inDev, outDev);
  }

  private arpInput(iface: Iface, pkt: Packet): void {
    if (iface.noArp) return this.drop(pkt, DropReason.Unsupported, iface.name, "ARP on a NOARP device");
    const parsed = parseArp(pkt.buf.subarray(pkt.head + ETHERNET_HEADER_LEN, pkt.end));
    pkt.release();
    if (!parsed.ok) return this.dp.dropRaw(DropReason.Malformed);
    const arp = parsed.value;
    const now = this.dp.clock();
    if (iface.addr?.ip !== arp.targetIp) {
      // RFC 826 merge step: refresh an existing entry, learn nothing new from others' traffic.
      this.flush(iface, this.neighbors.refresh(iface.name, arp.senderIp, arp.senderMac, now), arp.senderMac);
      return;
    }
    const learned = this.neighbors.learn(iface.name, arp.senderIp, arp.senderMac, now);
    if (learned.kind === "full") this.dp.dropRaw(DropReason.TableFull);
    else this.flush(iface, learned.pending, arp.senderMac);
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

  private ipRcv(iface: Iface, pkt: Packet): void {
    if (isFragmentAt(pkt.buf, pkt.l3)) {
      // nf_defrag_ipv4: conntrack sees whole datagrams, so fragments are gathered first.
      const whole = this.defrag(iface, pkt);
      if (!whole) return;
      pkt = whole;
    }
    if (!this.hook(Hook.Prerouting, pkt, iface.name, "")) return;
    if (this.isLocalAddress(pkt.dst) || pkt.dst === 0xffff_ffff) return this.localIn(iface, pkt);
    if (!this.forwarding) return this.drop(pkt, DropReason.NoRoute, iface.name, `${formatIpv4(pkt.dst)} is not a local address and forwarding is off`);
    this.forward(iface, pkt);
  }

  private defrag(iface: Iface, pkt: Packet): Packet | undefined {
    const bytes = pkt.buf.subarray(pkt.l3, pkt.l3 + pkt.ipLen);
    const parsed = parseIpv4(bytes);
    if (!parsed.ok) {
      this.drop(pkt, DropReason.Malformed, iface.name, "bad fragment");
      return undefined;
    }
    const evictedBefore = this.reassembler.evicted;
    const r = this.reassembler.add(parsed.value, bytes, this.dp.clock());
    // Datagrams evicted to stay under the memory bound are lost: counted (Linux's ReasmFails).
    const evicted = this.reassembler.evicted - evictedBefore;
    if (evicted > 0) this.dp.counters.inc(dropCounter(DropReason.Reassembly), evicted);
    const tr = pkt.tr;
    if (r.kind === "invalid") {
      this.drop(pkt, DropReason.Reassembly, iface.name, `bad fragment: ${r.reason}`);
      return undefined;
    }
    if (r.kind === "full") {
      this.drop(pkt, DropReason.TableFull, iface.name, "reassembly memory full");
      return undefined;
    }
    pkt.release();
    if (r.kind === "incomplete") {
      tr?.hop(this.where(iface.name), `fragment at offset ${parsed.value.fragmentOffset} queued for reassembly`);
      return undefined;
    }
    const whole = this.dp.pool.alloc(r.packet.length);
    whole.buf.set(r.packet, whole.head);
    whole.tr = tr;
    whole.ingress = iface.name;
    if (!parseIpHeaders(whole, whole.head)) {
      this.drop(whole, DropReason.Malformed, iface.name, "reassembled datagram is bad");
      return undefined;
    }
    this.dp.counters.inc("ip_reassembled_total");
    return whole;
  }

  private forward(inIface: Iface, pkt: Packet): void {
    const b = pkt.buf;
    const l3 = pkt.l3;
    const ttl = b[l3 + 8]!;
    if (ttl <= 1) {
      this.icmpError(pkt, { kind: "timeExceeded", code: TimeExceededCode.TtlExceeded, original: this.quote(pkt) });
      return this.drop(pkt, DropReason.TtlExceeded, "route", `ttl ${ttl} expired in transit`);
    }
    const route = this.routes.find(pkt.dst);
    if (route === undefined) {
      this.icmpError(pkt, { kind: "destUnreachable", code: UnreachableCode.NetUnreachable, nextHopMtu: 0, original: this.quote(pkt) });
      return this.drop(pkt, DropReason.NoRoute, "route", `no route to ${formatIpv4(pkt.dst)}`);
    }
    const out = this.ifaces.get(route.dev);
    if (!out) return this.drop(pkt, DropReason.NoRoute, inIface.name, `route through missing device ${route.dev}`);
    if (!this.hook(Hook.Forward, pkt, inIface.name, out.name)) return;
    const df = (b[l3 + 6]! & 0x40) !== 0;
    // A merged (GSO) packet is judged by its segments' size (ip_exceeds_mtu via skb_gso_validate_network_len).
    if (pkt.gsoSize === 0 && pkt.ipLen > out.mtu && df) {
      this.icmpError(pkt, { kind: "destUnreachable", code: UnreachableCode.FragmentationNeeded, nextHopMtu: out.mtu, original: this.quote(pkt) });
      return this.drop(pkt, DropReason.Mtu, "route", `${pkt.ipLen} bytes exceed ${out.name} mtu ${out.mtu} and DF is set`);
    }
    const newTtl = ipv4DecrementTtl(b, l3);
    pkt.tr?.hop("route", `${formatRoute(route)}; ttl ${newTtl + 1} -> ${newTtl}`);
    this.forwarded.value++;
    if (!this.hook(Hook.Postrouting, pkt, inIface.name, out.name)) return;
    this.output(out, route.via ?? pkt.dst, pkt);
  }

  private localIn(iface: Iface, pkt: Packet): void {
    if (!this.hook(Hook.Input, pkt, iface.name, "")) return;
    const b = pkt.buf;
    const l4 = pkt.l4;
    const l4len = pkt.l3 + pkt.ipLen - l4;
    switch (pkt.proto) {
      case IpProtocol.ICMP: {
        const parsedIp = parseIpv4(b.subarray(pkt.l3, pkt.l3 + pkt.ipLen));
        if (!parsedIp.ok) return this.drop(pkt, DropReason.Malformed, iface.name);
        const parsed = parseIcmp(parsedIp.value.payload);
        if (!parsed.ok) return this.drop(pkt, parsed.error.code === "Checksum" ? DropReason.BadChecksum : DropReason.Malformed, iface.name, `bad ICMP: ${parsed.error.message}`);
        const icmp = parsed.value;
        if (icmp.kind === "echoRequest") {
          pkt.tr?.hop(this.where(iface.name), `ICMP echo request from ${formatIpv4(pkt.src)} delivered; echo reply sent`, "delivered");
          const data = icmp.data.slice();
          const to = pkt.src;
          const from = pkt.dst;
          pkt.release();
          this.send(to, IpProtocol.ICMP, icmpLen({ ...icmp, data }), (buf, off) =>
            emitIcmp({ kind: "echoReply", ident: icmp.ident, seq: icmp.seq, data }, buf, off), { src: from });
          return;
        }
        // Raw listeners (ping, traceroute) see every message first, as raw_icmp_error runs
        // before the transport's handler in icmp_socket_deliver.
        for (const listener of this.icmpListeners) listener(icmp, parsedIp.value);
        const told = this.icmpToTransport(icmp);
        pkt.tr?.hop(this.where(iface.name), `ICMP ${icmp.kind} from ${formatIpv4(pkt.src)} delivered${told ? `; ${told}` : ""}`, "delivered");
        pkt.release();
        return;
      }
      case IpProtocol.UDP: {
        if (l4len < UDP_HEADER_LEN) return this.drop(pkt, DropReason.Malformed, iface.name, "UDP shorter than its header");
        const udpLen = readU16(b, l4 + 4);
        if (udpLen < UDP_HEADER_LEN || udpLen > l4len) return this.drop(pkt, DropReason.Malformed, iface.name, "bad UDP length");
        if (!pkt.csumOk && readU16(b, l4 + 6) !== 0 && onesComplementSum(b, l4, udpLen, pseudoHeaderSum(pkt.src, pkt.dst, IpProtocol.UDP, udpLen)) !== 0xffff) {
          return this.drop(pkt, DropReason.BadChecksum, iface.name, "UDP checksum");
        }
        const socket = this.udpSockets.get(pkt.dport);
        if (!socket) {
          pkt.tr?.hop(this.where(iface.name), `UDP port ${pkt.dport} closed: ICMP port unreachable`);
          this.dp.counters.inc("udp_no_port_total");
          this.icmpError(pkt, { kind: "destUnreachable", code: UnreachableCode.PortUnreachable, nextHopMtu: 0, original: this.quote(pkt) });
          return this.drop(pkt, DropReason.PortUnreachable, iface.name, `UDP port ${pkt.dport} closed`);
        }
        pkt.tr?.hop(this.where(iface.name), `UDP to port ${pkt.dport} delivered`, "delivered");
        const meta = this.udpMeta;
        meta.src = pkt.src;
        meta.srcPort = pkt.sport;
        meta.dst = pkt.dst;
        meta.dstPort = pkt.dport;
        meta.ttl = b[pkt.l3 + 8]!;
        socket(b.subarray(l4 + UDP_HEADER_LEN, l4 + udpLen), meta, pkt.tr);
        pkt.release();
        return;
      }
      case IpProtocol.TCP: {
        if (l4len < 20) return this.drop(pkt, DropReason.Malformed, iface.name, "TCP shorter than its header");
        const hl = (b[l4 + 12]! >>> 4) * 4;
        if (hl < 20 || hl > l4len) return this.drop(pkt, DropReason.Malformed, iface.name, "bad TCP data offset");
        if (!pkt.csumOk && onesComplementSum(b, l4, l4len, pseudoHeaderSum(pkt.src, pkt.dst, IpProtocol.TCP, l4len)) !== 0xffff) {
          return this.drop(pkt, DropReason.BadChecksum, iface.name, "TCP checksum");
        }
        pkt.tr?.hop(this.where(iface.name), `TCP ${formatIpv4(pkt.src)}:${pkt.sport} > :${pkt.dport} delivered`, "delivered");
        const seg: SegmentIn = {
          src: pkt.src,
          dst: pkt.dst,
          srcPort: pkt.sport,
          dstPort: pkt.dport,
          seq: readU32(b, l4 + 4),
          ack: readU32(b, l4 + 8),
          flags: b[l4 + 13]!,
          window: readU16(b, l4 + 14),
          options: b.subarray(l4 + 20, l4 + hl),
          payload: b.subarray(l4 + hl, l4 + l4len),
        };
        // TCP copies what it keeps (receive and out-of-order queues), so the packet goes back.
        this.tcp.input(seg);
        pkt.release();
        return;
      }
      default:
        pkt.tr?.hop(this.where(iface.name), `protocol ${pkt.proto} not handled: ICMP protocol unreachable`);
        this.icmpError(pkt, { kind: "destUnreachable", code: UnreachableCode.ProtocolUnreachable, nextHopMtu: 0, original: this.quote(pkt) });
        return this.drop(pkt, DropReason.Unsupported, iface.name, `protocol ${pkt.proto}`);
    }
  }

  // ---------------------------------------------------------------- hooks

  /**
   * Runs `hook`: conntrack first at PREROUTING/OUTPUT, the rule sets, the NAT manip the hook
   * does (dst at PREROUTING/OUTPUT, src at POSTROUTING/INPUT) and the conntrack confirm at
   * POSTROUTING/INPUT. False when the packet was consumed (dropped or rejected).
   */
  private hook(hook: Hook, pkt: Packet, iif: string, oif: string): boolean {
    const rules = this.netfilter.has(hook);
    // Nothing to do: no rules here, and conntrack off (a pod without rules) or a hook where it
    // neither looks up (FORWARD) nor manips/confirms.
    if (!rules && (!this.tracking || hook === Hook.Forward)) return true;
    const now = this.dp.clock();
    const ct = this.conntrack;
    if (this.tracking && (hook === Hook.Prerouting || hook === Hook.Output)) {
      const r = ct.in(pkt, now);
      if (r.kind === "invalid") this.dp.counters.inc("conntrack_invalid_total");
      const e = pkt.ct;
      if (e !== undefined) {
        // A traced TCP or UDP probe's connection carries the tracer; its first reply picks it up
        // here (an echo request's trace ends at delivery, as `kubewire trace` prints it).
        if (pkt.tr !== undefined) {
          if (pkt.proto !== IpProtocol.ICMP) e.tr = pkt.tr;
        }
        else if (e.tr !== undefined && pkt.ctDir === CtDir.Reply) {
          pkt.tr = e.tr.reply();
          e.tr = undefined;
          pkt.tr.hop(this.where(iif || oif), `reply of conntrack entry ${e.id}: ${formatIpv4(pkt.src)}:${pkt.sport} > ${formatIpv4(pkt.dst)}:${pkt.dport}`);
        }
      }
    }
    if (rules) {
      const ctx = this.hookCtx;
      ctx.hook = hook;
      ctx.iif = iif;
      ctx.oif = oif;
      ctx.ctState = pkt.ctState;
      ctx.ct = pkt.ct;
      ctx.mark = pkt.mark;
      ctx.now = now;
      // NAT rule sets see only the first packet of a connection (nf_nat_initialized).
      const natAllowed = pkt.ct !== undefined && !pkt.ct.confirmed;
      this.natPkt = pkt;
      this.natDev = iif || oif;
      this.natOif = oif;
      this.natHook = hook;
      const v = this.netfilter.run(hook, pkt, ctx, natAllowed, this.applyNat);
      this.natPkt = undefined;
      pkt.mark = ctx.mark;
      if (v === undefined) return false;
      if (v.kind !== "accept" && v.kind !== "continue" && !this.applyVerdict(v, pkt, iif || oif, oif)) return false;
    }
    if (pkt.ct !== undefined) {
      if (hook === Hook.Prerouting || hook === Hook.Output) {
        if (pkt.tr !== undefined && pkt.ct.confirmed && (pkt.ct.dnat || pkt.ct.snat)) this.traceNat(pkt, hook, "dst", iif || oif);
        else ct.nat(pkt, "dst");
      } else if (hook === Hook.Postrouting || hook === Hook.Input) {
        if (pkt.tr !== undefined && pkt.ct.confirmed && (pkt.ct.dnat || pkt.ct.snat)) this.traceNat(pkt, hook, "src", iif || oif);
        else ct.nat(pkt, "src");
        const c = ct.confirm(pkt, now);
        if (c !== "ok") {
          // "full": no room even after early drop; "clash": another connection holds the tuple (Linux drops both).
          this.drop(pkt, c === "full" ? DropReason.TableFull : DropReason.CtInvalid, iif || oif, c === "full" ? "conntrack table full" : "conntrack tuple clash");
          return false;
        }
      }
    }
    return true;
  }

  /**
   * NAT of a later packet of a translated connection, with a trace hop naming the conntrack
   * entry and what it rewrote (on a reply: the reverse NAT kube-proxy relies on).
   */
  private traceNat(pkt: Packet, hook: Hook, manip: "dst" | "src", dev: string): void {
    const before = manip === "dst" ? `${formatIpv4(pkt.dst)}:${pkt.dport}` : `${formatIpv4(pkt.src)}:${pkt.sport}`;
    this.conntrack.nat(pkt, manip);
    const after = manip === "dst" ? `${formatIpv4(pkt.dst)}:${pkt.dport}` : `${formatIpv4(pkt.src)}:${pkt.sport}`;
    if (before === after) return;
    const e = pkt.ct!;
    const reply = pkt.ctDir === 1;
    const what = manip === "dst" ? "destination" : "source";
    pkt.tr!.hop(this.where(dev), `conntrack entry ${e.id} (${e.dnat ? "DNAT" : ""}${e.dnat && e.snat ? "+" : ""}${e.snat ? "SNAT" : ""}, ${reply ? "reply" : "original"}): ${reply ? "reverse NAT " : ""}${what} ${before} -> ${after} at ${HOOK_NAMES[hook]}`);
  }

  /** The packet whose hook is running, for `applyNat` (a bound method: no closure per packet). */
  private natPkt: Packet | undefined;
  private natDev = "";
  private natOif = "";
  private natHook: Hook = Hook.Prerouting;
  private readonly applyNat = (v: NatVerdict): boolean => {
    const pkt = this.natPkt!;
    if (!this.applyVerdict(v, pkt, this.natDev, this.natOif)) return false;
    // The manip happens in the nat hook itself, so filter rule sets after it see the new
    // addresses (nf_nat_ipv4_fn); the manip after the walk then finds nothing left to do.
    if (pkt.ct !== undefined && v.kind === "dnat" && (this.natHook === Hook.Prerouting || this.natHook === Hook.Output)) this.conntrack.nat(pkt, "dst");
    return true;
  };

  /** Acts on a terminal verdict; true when the packet goes on (NAT bound). */
  private applyVerdict(v: Verdict, pkt: Packet, dev: string, oif: string): boolean {
    switch (v.kind) {
      case "drop":
        this.drop(pkt, v.reason, dev, v.rule ? `${v.reason}: ${v.rule}` : v.reason);
        return false;
      case "reject":
        this.reject(pkt, v.with);
        this.drop(pkt, v.reason ?? DropReason.Rule, dev, `rejected (${v.with})${v.rule ? `: ${v.rule}` : ""}`);
        return false;
      case "dnat":
        if (pkt.ct) this.conntrack.bindNat(pkt.ct, "dnat", v.addr, v.port, this.dp.rng);
        pkt.tr?.hop(this.where(dev), `DNAT to ${formatIpv4(v.addr)}${v.port !== undefined ? `:${v.port}` : ""}${v.rule ? ` (${v.rule})` : ""}`);
        return true;
      case "snat":
      case "masquerade": {
        const addr = v.kind === "snat" ? v.addr : this.ifaces.get(oif)?.addr?.ip;
        if (addr === undefined) return true;
        const port = v.kind === "snat" ? v.port : undefined;
        if (pkt.ct && this.conntrack.bindNat(pkt.ct, "snat", addr, port, this.dp.rng) === "exhausted") {
          this.drop(pkt, DropReason.TableFull, dev, "no free SNAT port");
          return false;
        }
        pkt.tr?.hop(this.where(dev), `SNAT to ${formatIpv4(addr)}${v.rule ? ` (${v.rule})` : ""}`);
        return true;
      }
      default:
        return true;
    }
  }

  /** REJECT target: an ICMP error or a TCP RST back to the sender (net/ipv4/netfilter/nf_reject_ipv4.c). */
  private reject(pkt: Packet, how: RejectWith): void {
    if (how === "tcp-reset") {
      if (pkt.proto !== IpProtocol.TCP) return;
      return this.sendResetFor(pkt);
    }
    const code =
      how === "icmp-net-unreachable" ? UnreachableCode.NetUnreachable
      : how === "icmp-host-unreachable" ? UnreachableCode.HostUnreachable
      : how === "icmp-admin-prohibited" ? UnreachableCode.AdminProhibited
      : UnreachableCode.PortUnreachable;
    this.icmpError(pkt, { kind: "destUnreachable", code, nextHopMtu: 0, original: this.quote(pkt) });
  }

  /** A RST answering `pkt` per RFC 9293 §3.10.7.1 (no RST for a RST). */
  private sendResetFor(pkt: Packet): void {
    const b = pkt.buf;
    const l4 = pkt.l4;
    const flags = b[l4 + 13]!;
    if (flags & TcpFlag.RST) return;
    const seq = readU32(b, l4 + 4);
    const ack = readU32(b, l4 + 8);
    const hl = (b[l4 + 12]! >>> 4) * 4;
    const dataLen = pkt.l3 + pkt.ipLen - l4 - hl;
    const synFin = (flags & TcpFlag.SYN ? 1 : 0) + (flags & TcpFlag.FIN ? 1 : 0);
    const seg: SegmentOut = flags & TcpFlag.ACK
      ? { src: pkt.dst, dst: pkt.src, srcPort: pkt.dport, dstPort: pkt.sport, seq: ack, ack: 0, flags: TcpFlag.RST, window: 0, options: new Uint8Array(0), payload: new Uint8Array(0) }
      : { src: pkt.dst, dst: pkt.src, srcPort: pkt.dport, dstPort: pkt.sport, seq: 0, ack: (seq + dataLen + synFin) >>> 0, flags: TcpFlag.RST | TcpFlag.ACK, window: 0, options: new Uint8Array(0), payload: new Uint8Array(0) };
    this.sendTcpSegment(seg);
  }

  // ---------------------------------------------------------------- send

  /**
   * Sends a locally originated IPv4 packet: route lookup, source address selection, MTU check
   * (a too-long DF packet fails locally, as Linux's EMSGSIZE), OUTPUT and POSTROUTING hooks,
   * neighbour resolution.
   */
  send(
    dst: Ipv4Addr,
    protocol: number,
    payloadLength: number,
    emitPayload: (buf: Uint8Array, off: number, src: Ipv4Addr) => void,
    opts: SendOptions = {},
  ): SendResult {
    const route = this.routeOut(dst, opts);
    if (route.kind !== "ok") return route;
    const { out, src } = route;
    const total = IPV4_HEADER_LEN + payloadLength;
    if (total > out.mtu && opts.dontFragment !== false && !opts.gsoSize) return { kind: "messageTooLong", mtu: out.mtu };
    if (total > 65_535) return { kind: "messageTooLong", mtu: 65_535 };
    const pkt = this.dp.pool.alloc(total);
    const l3 = pkt.head;
    writeIpv4Header(pkt.buf, l3, total, this.nextIpId++ & 0xffff, opts.dontFragment !== false, opts.ttl ?? DEFAULT_TTL, protocol, src, dst);
    emitPayload(pkt.buf, l3 + IPV4_HEADER_LEN, src);
    return this.sendBuilt(pkt, route, opts);
  }

  /** The route decision for a locally originated packet (reused by the per-protocol fast paths). */
  private readonly routed = { kind: "ok" as const, out: undefined as unknown as Iface, nextHop: 0, src: 0, local: false, routeText: "" };
  private routeOut(dst: Ipv4Addr, opts: SendOptions): typeof this.routed | { kind: "noRoute" } {
    const r = this.routed;
    if (this.isLocalAddress(dst)) {
      const lo = this.ifaces.get("lo");
      if (!lo) return { kind: "noRoute" };
      r.out = lo;
      r.nextHop = dst;
      r.src = opts.src ?? dst;
      r.local = true;
      r.routeText = "";
      return r;
    }
    const route = this.routes.find(dst);
    const out = route === undefined ? undefined : this.ifaces.get(route.dev);
    if (route === undefined || !out) {
      opts.tr?.hop(this.where("route"), `no route to ${formatIpv4(dst)}`, "dropped");
      this.dp.dropRaw(DropReason.NoRoute);
      return NO_ROUTE;
    }
    r.out = out;
    r.nextHop = route.via ?? dst;
    r.src = opts.src ?? route.src ?? out.addr?.ip ?? 0;
    r.local = false;
    r.routeText = opts.tr ? formatRoute(route) : "";
    return r;
  }

  /** OUTPUT and POSTROUTING for a packet built at pkt.head (IPv4 header written), then out. */
  private sendBuilt(pkt: Packet, route: typeof this.routed, opts: SendOptions): SendResult {
    let out = route.out;
    let nextHop = route.nextHop;
    const dst = readU32(pkt.buf, pkt.head + 16);
    const src = route.src;
    fillFields(pkt, pkt.head, pkt.end - pkt.head, pkt.buf[pkt.head + 9]!, src, dst);
    pkt.csumOk = true;
    pkt.gsoSize = opts.gsoSize ?? 0;
    pkt.tr = opts.tr;
    if (!route.local && opts.tr) opts.tr.hop(this.where(out.name), `${formatIpv4(src)} > ${formatIpv4(dst)} ttl ${opts.ttl ?? DEFAULT_TTL}; route ${route.routeText}`);
    if (!this.hook(Hook.Output, pkt, "", out.name)) return { kind: "filtered" };
    if (pkt.dst !== dst) {
      // DNAT at OUTPUT changed the destination: route again (ip_route_me_harder).
      const again = this.isLocalAddress(pkt.dst) ? undefined : this.routes.lookup(pkt.dst);
      if (again === undefined) {
        out = this.ifaces.get("lo")!;
        nextHop = pkt.dst;
      } else if (again.kind === "found" && this.ifaces.has(again.route.dev)) {
        out = this.ifaces.get(again.route.dev)!;
        nextHop = again.nextHop;
      } else {
        this.drop(pkt, DropReason.NoRoute, "route", `no route to ${formatIpv4(pkt.dst)}`);
        return { kind: "noRoute" };
      }
    }
    if (!this.hook(Hook.Postrouting, pkt, "", out.name)) return { kind: "filtered" };
    this.output(out, nextHop, pkt);
    return SENT;
  }

  sendUdp(dst: Ipv4Addr, dstPort: number, srcPort: number, payload: Uint8Array, opts: SendOptions = NO_OPTIONS): SendResult {
    // The hot path of every UDP sender: no closures or option objects per datagram.
    const route = this.routeOut(dst, opts);
    if (route.kind !== "ok") return route;
    const udpLen = UDP_HEADER_LEN + payload.length;
    const total = IPV4_HEADER_LEN + udpLen;
    const out = route.out;
    if (total > out.mtu && opts.dontFragment !== false) return { kind: "messageTooLong", mtu: out.mtu };
    if (total > 65_535) return { kind: "messageTooLong", mtu: 65_535 };
    const pkt = this.dp.pool.alloc(total);
    const b = pkt.buf;
    const l3 = pkt.head;
    writeIpv4Header(b, l3, total, this.nextIpId++ & 0xffff, opts.dontFragment !== false, opts.ttl ?? DEFAULT_TTL, IpProtocol.UDP, route.src, dst);
    const l4 = l3 + IPV4_HEADER_LEN;
    b.set(payload, l4 + UDP_HEADER_LEN);
    writeU16(b, l4, srcPort);
    writeU16(b, l4 + 2, dstPort);
    writeU16(b, l4 + 4, udpLen);
    writeU16(b, l4 + 6, 0);
    const sum = ~onesComplementSum(b, l4, udpLen, pseudoHeaderSum(route.src, dst, IpProtocol.UDP, udpLen)) & 0xffff;
    writeU16(b, l4 + 6, sum === 0 ? 0xffff : sum);
    return this.sendBuilt(pkt, route, opts);
  }

  sendIcmp(dst: Ipv4Addr, icmp: IcmpRepr, opts: SendOptions = {}): SendResult {
    return this.send(dst, IpProtocol.ICMP, icmpLen(icmp), (buf, off) => emitIcmp(icmp, buf, off), opts);
  }

  private sendTcpSegment(seg: SegmentOut): boolean {
    return this.dp.deferred(() => this.sendTcpNow(seg));
  }

  private sendTcpNow(seg: SegmentOut): boolean {
    const optLen = (seg.options.length + 3) & ~3;
    const gso = seg.gsoSize ?? 0;
    // A TSO packet's checksum is left for segmentation to fill in per segment (CHECKSUM_PARTIAL):
    // summing 64 KiB here would only be thrown away.
    const r = this.send(seg.dst, IpProtocol.TCP, 20 + optLen + seg.payload.length, (buf, off) =>
      emitTcp({ srcPort: seg.srcPort, dstPort: seg.dstPort, seq: seg.seq, ack: seg.ack, flags: seg.flags, window: seg.window, urgentPointer: 0, options: seg.options }, seg.payload, buf, off, gso > 0 ? undefined : { src: seg.src, dst: seg.dst }),
      gso > 0 ? { src: seg.src, gsoSize: gso } : { src: seg.src });
    return r.kind === "sent";
  }

  /** Sends the IP packet at pkt.l3 out of `out`, in fragments if it must (DF clear: the caller checked). */
  private output(out: Iface, nextHop: Ipv4Addr, pkt: Packet): void {
    if (pkt.ipLen <= out.mtu || pkt.gsoSize > 0) return this.resolveAndSend(out, nextHop, pkt);
    const ip = pkt.buf.subarray(pkt.l3, pkt.l3 + pkt.ipLen);
    const fragments = fragmentIpv4(ip, out.mtu, 0);
    pkt.tr?.hop(this.where(out.name), `${pkt.ipLen} bytes exceed mtu ${out.mtu}: ${fragments.length} fragments, the trace follows the first`);
    this.dp.counters.inc("ip_fragments_created_total", fragments.length);
    for (let i = 0; i < fragments.length; i++) {
      const f = fragments[i]!;
      const fp = this.dp.pool.alloc(f.length);
      fp.buf.set(f, fp.head);
      parseIpHeaders(fp, fp.head);
      fp.csumOk = pkt.csumOk;
      fp.tr = i === 0 ? pkt.tr : undefined;
      this.resolveAndSend(out, nextHop, fp);
    }
    pkt.release();
  }

  private resolveAndSend(out: Iface, nextHop: Ipv4Addr, pkt: Packet): void {
    if (out.mac === 0) return this.emitFrame(out, 0, pkt);
    const now = this.dp.clock();
    const mac = this.neighbors.macOf(out.name, nextHop, now);
    if (mac !== -1) return this.emitFrame(out, mac, pkt);
    if (out.noArp) {
      return this.drop(pkt, DropReason.NoNeighbor, out.name, `no neighbour entry for ${formatIpv4(nextHop)} on NOARP device`);
    }
    pkt.tr?.hop(this.where(out.name), `ARP: resolving ${formatIpv4(nextHop)}, packet queued`);
    const q = this.neighbors.enqueue(out.name, nextHop, pkt, now);
    if (q.kind === "full") return this.drop(pkt, DropReason.TableFull, out.name, "neighbour table full");
    if (q.dropped) this.dp.drop(q.dropped, DropReason.NoNeighbor, this.where(out.name), "neighbour queue overflow");
    if (q.solicit) this.solicit(out, nextHop);
  }

  /** Frames the IP packet at pkt.l3 for `out`: the Ethernet header goes in the headroom. */
  private emitFrame(out: Iface, dstMac: MacAddr, pkt: Packet): void {
    const l2 = pkt.l3 - ETHERNET_HEADER_LEN;
    if (l2 < 0) {
      const moved = pkt.clone(this.dp.pool);
      pkt.release();
      return this.emitFrame(out, dstMac, moved);
    }
    const b = pkt.buf;
    writeMac(b, l2, dstMac);
    writeMac(b, l2 + 6, out.mac);
    writeU16(b, l2 + 12, EtherType.IPv4);
    pkt.head = l2;
    pkt.l2 = l2;
    pkt.end = pkt.l3 + pkt.ipLen;
    out.link.transmit(pkt);
  }

  private solicit(out: Iface, ip: Ipv4Addr): void {
    if (!out.addr) return;
    this.sendArp(out, { operation: ArpOperation.Request, senderMac: out.mac, senderIp: out.addr.ip, targetMac: 0, targetIp: ip }, MAC_BROADCAST);
  }

  private sendArp(out: Iface, arp: ArpRepr, dstMac: MacAddr): void {
    const pkt = this.dp.pool.alloc(ETHERNET_HEADER_LEN + ARP_LEN);
    const b = pkt.buf;
    const h = pkt.head;
    writeMac(b, h, dstMac);
    writeMac(b, h + 6, out.mac);
    writeU16(b, h + 12, EtherType.ARP);
    emitArp(arp, b, h + ETHERNET_HEADER_LEN);
    pkt.l2 = h;
    pkt.l3 = h + ETHERNET_HEADER_LEN;
    out.link.transmit(pkt);
  }

  private flush(iface: Iface, packets: readonly Packet[], mac: MacAddr): void {
    for (const p of packets) this.emitFrame(iface, mac, p);
  }

  /** The invoking packet for an ICMP error: IP header + 8 bytes (RFC 792). */
  private quote(pkt: Packet): Uint8Array {
    return icmpErrorOriginal(pkt.buf.subarray(pkt.l3, pkt.l3 + pkt.ipLen));
  }

  private icmpError(pkt: Packet, icmp: IcmpRepr): void {
    const b = pkt.buf;
    if ((readU16(b, pkt.l3 + 6) & 0x1fff) !== 0 || pkt.dst === 0xffff_ffff || pkt.src === 0) return;
    if (pkt.proto === IpProtocol.ICMP && pkt.icmpType !== IcmpType.EchoRequest && pkt.icmpType !== IcmpType.EchoReply) return;
    const now = this.dp.clock();
    this.icmpTokens = Math.min(ICMP_BURST, this.icmpTokens + (now - this.icmpRefilledAt) * ICMP_RATE_PER_MS);
    this.icmpRefilledAt = now;
    if (this.icmpTokens < 1) {
      this.dp.counters.inc("icmp_out_ratelimited_total");
      return;
    }
    this.icmpTokens--;
    this.dp.counters.inc(`icmp_out_${icmp.kind}_total`);
    this.sendIcmp(pkt.src, icmp, {});
  }

  /** Periodic work: ARP retransmits and give-ups (ICMP host unreachable for what waited), table ageing. */
  tick(): void {
    const now = this.dp.clock();
    const expired = this.reassembler.expire(now);
    if (expired > 0) this.dp.counters.inc("ip_reassembly_timeout_total", expired);
    this.conntrack.expire(now);
    const { resolicit, failed } = this.neighbors.tick(now);
    for (const { dev, ip } of resolicit) {
      const iface = this.ifaces.get(dev);
      if (iface) this.solicit(iface, ip);
    }
    for (const { dev, ip, packets } of failed) {
      for (const p of packets) {
        if (!this.isLocalAddress(p.src)) {
          this.icmpError(p, { kind: "destUnreachable", code: UnreachableCode.HostUnreachable, nextHopMtu: 0, original: this.quote(p) });
        }
        this.drop(p, DropReason.NoNeighbor, dev, `ARP for ${formatIpv4(ip)} got no answer`);
      }
    }
  }
}

/** Writes a 20-byte IPv4 header (RFC 791) with its checksum: the positional form of emitIpv4 for the send path. */
function writeIpv4Header(b: Uint8Array, off: number, total: number, id: number, df: boolean, ttl: number, proto: number, src: Ipv4Addr, dst: Ipv4Addr): void {
  b[off] = 0x45;
  b[off + 1] = 0;
  writeU16(b, off + 2, total);
  writeU16(b, off + 4, id);
  writeU16(b, off + 6, df ? 0x4000 : 0);
  b[off + 8] = ttl;
  b[off + 9] = proto;
  writeU16(b, off + 10, 0);
  writeU32(b, off + 12, src);
  writeU32(b, off + 16, dst);
  writeU16(b, off + 10, ~onesComplementSum(b, off, IPV4_HEADER_LEN) & 0xffff);
}

/** Fills the descriptor's fields for a packet this netns just built (trusted bytes: no checks). */
function fillFields(pkt: Packet, l3: number, total: number, proto: number, src: Ipv4Addr, dst: Ipv4Addr): void {
  const b = pkt.buf;
  pkt.l3 = l3;
  pkt.l4 = l3 + IPV4_HEADER_LEN;
  pkt.ipLen = total;
  pkt.end = l3 + total;
  pkt.proto = proto;
  pkt.src = src;
  pkt.dst = dst;
  const l4 = pkt.l4;
  if (proto === IpProtocol.TCP || proto === IpProtocol.UDP) {
    pkt.sport = readU16(b, l4);
    pkt.dport = readU16(b, l4 + 2);
    pkt.tcpFlags = proto === IpProtocol.TCP ? b[l4 + 13]! : 0;
  } else if (proto === IpProtocol.ICMP) {
    pkt.icmpType = b[l4]!;
    pkt.icmpCode = b[l4 + 1]!;
    if (pkt.icmpType === 8 || pkt.icmpType === 0) pkt.sport = pkt.dport = readU16(b, l4 + 4);
  }
}
