/**
 * One emulated node's network, as flannel + the bridge CNI plugin would build it on Linux:
 *
 *   pod netns: lo, eth0 (podIP/24, mtu 1450), default via 10.244.N.1
 *        |  veth pair
 *   root netns: cni0 bridge (10.244.N.1/24) -- route table -- flannel.1 (10.244.N.0/32, VXLAN)
 *                                                         \-- eth0 (InternalIP, the underlay)
 *
 * Remote nodes are programmed the way flanneld does it (pkg/backend/vxlan): for each peer a
 * route "10.244.M.0/24 via 10.244.M.0 dev flannel.1 onlink", a permanent neighbour entry
 * 10.244.M.0 -> peer VTEP MAC, and an FDB entry peer VTEP MAC -> peer node IP. All three are
 * recomputed from the full peer list on every change (level-triggered).
 *
 * This module is the whole wiring of a node, shared by the node-agent process and the
 * deterministic simulation: they differ only in the overlay transport they hand it.
 */
import { fnv1a32String } from "../cluster/hash.ts";
import { formatCidr, mustParseCidr, nthAddress, podMac, underlayMac, vtepMac, type Cidr } from "../cluster/addressing.ts";
import type { NodeRecord, PodRecord, TraceHop } from "../cluster/types.ts";
import type { OverlayTransport, TraceContext } from "../overlay/transport.ts";
import { ETHERNET_HEADER_LEN, parseIpv4Addr, parseMac, readU16, readU32, type Ipv4Addr, type MacAddr } from "../overlay/wire/index.ts";
import { Bridge } from "./bridge.ts";
import { Datapath, Tracer } from "./datapath.ts";
import { CaptureLink, FaultLink, FlowLink, FrameLayout, Loopback, TraceLink, VethEnd, type FaultSpec, type Link } from "./link.ts";
import { cidrContains } from "../cluster/addressing.ts";
import { sendsTo, type CompiledFault } from "./faults/compile.ts";
import { Netem, zeroCounters, type FaultCounters } from "./faults/netem.ts";
import { seedFrom, seededRng } from "./faults/random.ts";
import { DropReason } from "./netfilter.ts";
import { Netns, type Iface } from "./netns.ts";
import { groCandidate, groContinues, groMerge, type GroSegment } from "./gso.ts";
import type { Packet } from "./packet.ts";
import type { Route } from "./routes.ts";
import { OVERLAY_MTU, Underlay, Vtep, type RemoteVtep, type UnderlayWire } from "./vtep.ts";

export const Devices = { bridge: "cni0", vtep: "flannel.1", underlay: "eth0", loopback: "lo" } as const;
const LOOPBACK = 0x7f00_0001;

export interface PodNetwork {
  readonly key: string;
  readonly record: PodRecord;
  readonly ns: Netns;
  readonly hostVeth: Link;
  /** Impairments on the pod's veth (host side). */
  readonly fault: FaultLink;
  readonly ip: Ipv4Addr;
}

/** How a node sends its underlay frames: a transport, and the subject naming used in traces. */
export interface OverlayWiring {
  transport: () => OverlayTransport;
  subjectFor: (node: string) => string;
}

export class NodeNetwork {
  readonly root: Netns;
  readonly bridge: Bridge;
  readonly vtep: Vtep;
  readonly underlay: Underlay;
  /** Impairments on the node's underlay link: every overlay frame in and out crosses it. */
  readonly underlayFault: FaultLink;
  readonly podCidr: Cidr;
  readonly nodeIp: Ipv4Addr;
  /**
   * The world beyond the underlay router, as this node sees it: real clients of NodePorts and
   * LoadBalancers speak from here (with their own addresses, IP_FREEBIND), so their packets
   * enter the node on eth0 as a client's would, and the replies leave by the default route.
   */
  readonly outside: Netns;
  private readonly pods = new Map<string, PodNetwork>();
  /** Client addresses the outside netns holds, with how many flows use each. */
  private readonly outsideAddrs = new Map<Ipv4Addr, number>();
  private readonly gateway: Ipv4Addr;
  private readonly lbPool: Cidr | undefined;

  constructor(
    readonly dp: Datapath,
    readonly record: NodeRecord,
    vni: number,
    overlay: OverlayWiring,
    /** The emulated underlay network; its .1 is the router behind every node's eth0. */
    underlayCidr: Cidr = mustParseCidr("172.31.0.0/24"),
    /** The LoadBalancer pool: when it lies in 127/8 it is routed here, not loopback (README). */
    lbPool?: Cidr,
  ) {
    this.podCidr = mustParseCidr(record.podCidr);
    this.nodeIp = parseIpv4Addr(record.internalIp)!;
    this.gateway = nthAddress(this.podCidr, 1);
    this.lbPool = lbPool !== undefined && lbPool.network >>> 24 === 127 ? lbPool : undefined;
    this.root = new Netns("root", dp, true, { routedLoopback: this.lbPool });

    const wire: UnderlayWire = {
      send: (node, frame, pkt) => {
        pkt.tr?.hop("NATS", `publish ${overlay.subjectFor(node)}`);
        overlay.transport().send(node, frame, pkt.tr ? { traceId: pkt.tr.id, seq: pkt.tr.nextSeq } : undefined);
      },
    };
    const router = nthAddress(underlayCidr, 1);
    this.underlay = new Underlay(Devices.underlay, underlayMac(this.nodeIp), dp, wire, router);
    // Under the VTEP every frame is VXLAN: the faults classify the inner packet (node-pair scoping).
    this.underlayFault = new FaultLink(this.underlay, dp, FrameLayout.Vxlan);
    this.vtep = new Vtep(Devices.vtep, vtepMac(this.nodeIp), vni, this.nodeIp, dp, this.underlayFault, underlayMac);
    this.bridge = new Bridge(Devices.bridge, podMac(this.gateway), OVERLAY_MTU, dp);

    const lo: Iface = { name: Devices.loopback, mac: 0, mtu: 65536, link: new CaptureLink(new Loopback(dp), dp), addr: { ip: LOOPBACK, prefix: 8 } };
    const cni0: Iface = { name: Devices.bridge, mac: this.bridge.self.mac, mtu: OVERLAY_MTU, link: this.bridge.self, addr: { ip: this.gateway, prefix: this.podCidr.prefix } };
    const flannel: Iface = { name: Devices.vtep, mac: this.vtep.mac, mtu: OVERLAY_MTU, link: this.vtep, addr: { ip: this.podCidr.network, prefix: 32 }, noArp: true };
    // The underlay's own traffic (VXLAN) bypasses the root stack, as the kernel's vxlan socket
    // does; what the root netns routes out of eth0 goes to the underlay router.
    // What is neither a peer node nor beyond reach goes through the router to the outside netns.
    const [routerSide, outsideEnd] = VethEnd.pair(dp, { name: Devices.underlay, mac: this.underlay.mac }, { name: Devices.underlay, mac: underlayMac(router) }, this.underlay.mtu);
    const eth0: Iface = { name: Devices.underlay, mac: this.underlay.mac, mtu: this.underlay.mtu, link: new RootUnderlayPort(this.underlay, routerSide, (ip) => this.outsideAddrs.has(ip)), addr: { ip: this.nodeIp, prefix: underlayCidr.prefix } };
    for (const iface of [lo, cni0, flannel, eth0]) this.root.addIface(iface);
    this.bridge.netfilter = (pkt, from, to) => this.root.bridged(pkt, from.name, to.name);
    this.root.routes.replace({ dst: { network: 0, prefix: 0 }, dev: Devices.underlay, via: router });
    // The LoadBalancer pool is routed, not loopback (README): a route more specific than lo's 127/8.
    if (this.lbPool) this.root.routes.replace({ dst: this.lbPool, dev: Devices.underlay, via: router });
    // The router is part of the emulated underlay, so its MAC is known rather than solicited.
    this.root.neighbors.setPermanent(Devices.underlay, router, underlayMac(router));

    // The outside holds the addresses of the real clients it speaks for (AnyIP, claimed per
    // connection): a real client's connection is made from its own address, and the replies find it.
    this.outside = new Netns("outside", dp, false, { conntrack: "on-demand", anyIp: (ip) => this.outsideAddrs.has(ip) });
    this.outside.addIface({ name: Devices.loopback, mac: 0, mtu: 65536, link: new Loopback(dp), addr: { ip: LOOPBACK, prefix: 8 } });
    this.outside.addIface({ name: Devices.underlay, mac: outsideEnd.mac, mtu: this.underlay.mtu, link: outsideEnd, addr: { ip: router, prefix: underlayCidr.prefix } });
    this.outside.neighbors.setPermanent(Devices.underlay, this.nodeIp, this.underlay.mac);
  }

  /**
   * One message off the overlay (a batch of outer frames): each frame becomes a packet over
   * the message's bytes (no copy) and enters eth0. Garbage is counted and dropped.
   */
  receiveMessage(message: Uint8Array, trace: TraceContext | undefined, sinkFor: (traceId: string) => (hop: TraceHop) => void): void {
    const dp = this.dp;
    if (message.length === 0 || message[0] !== 1) return this.badBatch();
    // Validate the whole batch first: a truncated record anywhere rejects the message.
    let off = 1;
    let count = 0;
    while (off < message.length) {
      if (off + 2 > message.length) return this.badBatch();
      const len = readU16(message, off);
      if (len === 0 || off + 2 + len > message.length) return this.badBatch();
      off += 2 + len;
      count++;
    }
    const tr = trace ? new Tracer(trace.traceId, this.record.name, trace.seq, sinkFor(trace.traceId)) : undefined;
    // GRO when nothing needs to see the frames one by one: no trace, no capture on the
    // underlay or the VTEP, no ingress impairment of the underlay.
    if (tr === undefined && count > 1 && this.groAllowed()) return this.receiveGro(message, count);
    off = 1;
    for (let i = 0; i < count; i++) {
      const len = readU16(message, off);
      const pkt = dp.pool.wrap(message, off + 2, len);
      pkt.tr = tr;
      off += 2 + len;
      dp.send(this.fromWire, pkt);
    }
  }

  private groAllowed(): boolean {
    const dp = this.dp;
    return !dp.tapped(Devices.underlay) && !dp.tapped(Devices.vtep) && !this.underlayFault.impairsIngress;
  }

  /**
   * The batch with receive offload (node-agent/gso.ts): runs of consecutive segments of one TCP
   * flow become one packet that enters the root netns after the VTEP's checks; every other
   * frame takes the ordinary path, in order.
   */
  private receiveGro(message: Uint8Array, count: number): void {
    const dp = this.dp;
    let run: GroSegment[] = [];
    let runIpLen = 0;
    const flush = () => {
      if (run.length === 0) return;
      if (run.length === 1) {
        // A lone segment goes the ordinary way (its outer frame intact, from eth0 on).
        const s = run[0]!;
        dp.send(this.fromWire, dp.pool.wrap(message, s.outer, s.outerLen));
      } else {
        const merged = groMerge(message, run, dp.pool);
        dp.counters.inc("overlay_rx_frames_total", run.length);
        dp.counters.inc("gro_merged_segments_total", run.length);
        dp.send(this.groDeliver, merged);
      }
      run = [];
    };
    let off = 1;
    for (let i = 0; i < count; i++) {
      const len = readU16(message, off);
      const frame = off + 2;
      off += 2 + len;
      const checked = this.vtep.checkOuter(message, frame, len);
      const s = typeof checked === "string" ? undefined : groCandidate(message, frame, len, checked.inner, checked.innerLen);
      if (!s) {
        flush();
        dp.send(this.fromWire, dp.pool.wrap(message, frame, len));
        continue;
      }
      if (run.length > 0 && groContinues(message, run[0]!, run[run.length - 1]!, s, runIpLen, run.length)) {
        run.push(s);
        runIpLen += s.payloadLen;
        continue;
      }
      flush();
      run.push(s);
      runIpLen = 20 + s.tcpHeaderLen + s.payloadLen;
    }
    flush();
  }

  private readonly groDeliver = (pkt: Packet): void => this.vtep.deliverInner(pkt);

  private readonly fromWire = (pkt: Packet): void => this.underlay.receive(pkt);

  private badBatch(): void {
    this.dp.counters.inc("overlay_rx_dropped_total");
    this.dp.counters.inc("overlay_rx_dropped_batch_total");
    this.dp.dropRaw(DropReason.Overlay);
  }

  /** Whole-state sync of the remote nodes: routes, neighbours and FDB of flannel.1 at once. */
  syncPeers(peers: readonly NodeRecord[]): void {
    const routes: Route[] = [];
    const neighbors = new Map<Ipv4Addr, MacAddr>();
    const fdb = new Map<MacAddr, RemoteVtep>();
    const underlayPeers = new Map<Ipv4Addr, string>();
    for (const peer of peers) {
      if (peer.name === this.record.name) continue;
      const cidr = mustParseCidr(peer.podCidr);
      const mac = parseMac(peer.vtepMac)!;
      const nodeIp = parseIpv4Addr(peer.internalIp)!;
      routes.push({ dst: cidr, dev: Devices.vtep, via: cidr.network, onlink: true });
      neighbors.set(cidr.network, mac);
      fdb.set(mac, { nodeName: peer.name, nodeIp });
      underlayPeers.set(nodeIp, peer.name);
    }
    this.root.routes.syncDevice(Devices.vtep, routes);
    this.root.neighbors.syncPermanent(Devices.vtep, neighbors);
    this.vtep.syncFdb(fdb);
    this.underlay.syncPeers(underlayPeers);
  }

  /** The outside netns takes `ip` as its own while a real client's flow uses it. */
  claimOutsideAddress(ip: Ipv4Addr): void {
    this.outsideAddrs.set(ip, (this.outsideAddrs.get(ip) ?? 0) + 1);
  }

  releaseOutsideAddress(ip: Ipv4Addr): void {
    const n = (this.outsideAddrs.get(ip) ?? 0) - 1;
    if (n > 0) this.outsideAddrs.set(ip, n);
    else this.outsideAddrs.delete(ip);
  }

  podKeys(): string[] {
    return [...this.pods.keys()];
  }

  /** The pod CIDRs the VXLAN device routes to (one per peer node, as syncPeers installed them). */
  peerRoutes(): string[] {
    return this.root.routes
      .list()
      .filter((r) => r.dev === Devices.vtep)
      .map((r) => formatCidr(r.dst))
      .sort();
  }

  pod(key: string): PodNetwork | undefined {
    return this.pods.get(key);
  }

  /** The CNI ADD: a netns with lo and eth0, a veth into cni0, routes. */
  addPod(key: string, record: PodRecord): PodNetwork {
    const existing = this.pods.get(key);
    if (existing) return existing;
    const ip = parseIpv4Addr(record.podIp)!;
    const ns = new Netns(record.name, this.dp, false, { conntrack: "on-demand", routedLoopback: this.lbPool });
    const hostName = vethName(key);
    const [podEnd, hostEnd] = VethEnd.pair(this.dp, { name: "eth0", mac: podMac(ip) }, { name: hostName, mac: hostVethMac(key) }, OVERLAY_MTU);
    const podLabel = `${record.name}/eth0`;
    const podLink = new CaptureLink(podEnd, this.dp, podLabel);
    // NetworkChaos faults act here on packets sent on this node (node-agent/faults/compile.ts).
    const fault = new FaultLink(new FlowLink(hostEnd, this.dp), this.dp, FrameLayout.Ethernet, this.sentHere);
    const hostLink = new TraceLink(new CaptureLink(fault, this.dp), this.dp, { tx: `to ${podLabel}`, rx: `from ${podLabel}` });
    ns.addIface({ name: Devices.loopback, mac: 0, mtu: 65536, link: new CaptureLink(new Loopback(this.dp), this.dp, `${record.name}/lo`), addr: { ip: LOOPBACK, prefix: 8 } });
    ns.addIface({ name: "eth0", mac: podEnd.mac, mtu: OVERLAY_MTU, link: podLink, addr: { ip, prefix: this.podCidr.prefix } });
    ns.routes.replace({ dst: { network: 0, prefix: 0 }, dev: "eth0", via: this.gateway });
    if (this.lbPool) ns.routes.replace({ dst: this.lbPool, dev: "eth0", via: this.gateway });
    this.bridge.addPort(hostLink);
    const pod: PodNetwork = { key, record, ns, hostVeth: hostLink, fault, ip };
    this.pods.set(key, pod);
    this.installChaos(fault, hostName, this.chaos.filter((f) => sendsTo(f.match, ip)));
    return pod;
  }

  /** The CNI DEL: unplug the veth; the bridge forgets the port's MACs; the netns's timers stop. */
  removePod(key: string): boolean {
    const pod = this.pods.get(key);
    if (!pod) return false;
    this.bridge.removePort(pod.hostVeth);
    pod.ns.destroy();
    this.pods.delete(key);
    return true;
  }

  devices(): string[] {
    return [Devices.loopback, Devices.bridge, Devices.vtep, Devices.underlay, ...[...this.pods.values()].flatMap((p) => [p.hostVeth.name, `${p.record.name}/eth0`, `${p.record.name}/lo`])];
  }

  /** Sets impairments on the underlay (every overlay frame) or on one pod's veth. */
  setFault(target: { pod?: string }, spec: { egress?: FaultSpec; ingress?: FaultSpec }): boolean {
    if (target.pod === undefined) {
      this.underlayFault.set(spec);
      return true;
    }
    const pod = [...this.pods.values()].find((p) => p.record.name === target.pod || p.key === target.pod);
    if (!pod) return false;
    pod.fault.set(spec);
    return true;
  }

  /** Whether a packet with source `ip` was sent on this node (a pod of its CIDR, or the node itself). */
  private readonly sentHere = (ip: number): boolean => cidrContains(this.podCidr, ip) || ip === this.nodeIp;

  private chaos: CompiledFault[] = [];
  /** What each NetworkChaos applied here did, by "namespace/name", summed over its links. */
  readonly chaosCounters = new Map<string, FaultCounters>();

  /**
   * Whole-state swap of the NetworkChaos faults this node applies (compiled by
   * node-agent/faults/compile.ts): on the underlay for frames to other nodes, on each pod's veth
   * for packets from this node to that pod. A fault whose version is unchanged keeps its state.
   */
  setChaos(faults: CompiledFault[]): void {
    this.chaos = faults;
    const keys = new Set(faults.map((f) => f.key));
    for (const k of [...this.chaosCounters.keys()]) if (!keys.has(k)) this.chaosCounters.delete(k);
    for (const f of faults) if (!this.chaosCounters.has(f.key)) this.chaosCounters.set(f.key, zeroCounters());
    this.installChaos(this.underlayFault, Devices.underlay, faults);
    for (const pod of this.pods.values()) this.installChaos(pod.fault, vethName(pod.key), faults.filter((f) => sendsTo(f.match, pod.ip)));
  }

  /** The faults that apply, as of the last setChaos. */
  chaosFaults(): readonly CompiledFault[] {
    return this.chaos;
  }

  private installChaos(link: FaultLink, linkName: string, faults: CompiledFault[]): void {
    const prev = new Map(link.chaosFaults().map((f) => [f.key, f]));
    link.setChaos(
      faults.map((f) => {
        const old = prev.get(f.key);
        if (old !== undefined && old.version === f.version) return { key: f.key, match: f.match, netem: old.netem, version: f.version };
        // Each link draws from its own generator, seeded by the fault's seed, the node and the link: a run replays.
        const rng = seededRng(seedFrom(f.seed, this.record.name, linkName));
        return { key: f.key, match: f.match, netem: new Netem(f.netem, rng, this.chaosCounters.get(f.key)), version: f.version };
      }),
    );
  }

  /** Ageing and ARP retransmits; called on a timer by the agent. */
  tick(): void {
    const now = this.dp.now();
    this.bridge.fdb.age(now);
    this.root.tick();
    this.outside.tick();
    for (const pod of this.pods.values()) pod.ns.tick();
  }
}

/**
 * The root netns's view of eth0: IP packets to a peer node's InternalIP go over the underlay;
 * everything else goes to the underlay router, behind which lies the outside netns (the real
 * clients of NodePorts and LoadBalancers). Frames from the outside come in here.
 */
class RootUnderlayPort implements Link {
  readonly name: string;
  readonly mac: MacAddr;
  readonly mtu: number;
  constructor(
    private readonly underlay: Underlay,
    private readonly router: VethEnd,
    private readonly outsideHolds: (ip: Ipv4Addr) => boolean,
  ) {
    this.name = underlay.name;
    this.mac = underlay.mac;
    this.mtu = underlay.mtu;
  }
  transmit(pkt: Packet): void {
    const ipOff = pkt.head + ETHERNET_HEADER_LEN;
    if (pkt.len >= ETHERNET_HEADER_LEN + 20 && this.outsideHolds(readU32(pkt.buf, ipOff + 16))) return this.router.transmit(pkt);
    this.underlay.transmit(pkt);
  }
  setReceiver(rx: (pkt: Packet) => void): void {
    // Frames from the wire go to the VTEP, which holds the underlay's receiver; the router's
    // side of the outside link delivers here.
    this.router.setReceiver(rx);
  }
}

/** A stable host-side veth name from the pod key, as CNI plugins derive one: "veth" + 8 hex. */
export function vethName(key: string): string {
  return `veth${fnv1a32String(key).toString(16).padStart(8, "0")}`;
}

/** A locally administered MAC for the host end of a pod's veth. */
function hostVethMac(key: string): MacAddr {
  return 0x0200_0000_0000 + fnv1a32String(key);
}

