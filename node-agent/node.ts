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
 */
import { mustParseCidr, nthAddress, podMac, underlayMac, vtepMac, type Cidr } from "../api/addressing.ts";
import type { NodeRecord, PodRecord } from "../api/types.ts";
import { formatIpv4, parseIpv4Addr, parseMac, type Ipv4Addr, type MacAddr } from "../overlay/wire/index.ts";
import type { Datapath, Receiver, Tracer } from "./datapath.ts";
import { Bridge, OVERLAY_MTU, VethEnd, Vtep, type BridgePort, type RemoteVtep, type UnderlayLink } from "./devices.ts";
import { Netns, type Iface } from "./netns.ts";
import type { Route } from "./routes.ts";

export const Devices = { bridge: "cni0", vtep: "flannel.1", underlay: "eth0", loopback: "lo" } as const;
const UNDERLAY_MTU = 1500;
const LOOPBACK = 0x7f00_0001;

export interface PodNetwork {
  readonly key: string;
  readonly record: PodRecord;
  readonly ns: Netns;
  readonly hostVeth: VethEnd;
  readonly port: BridgePort;
  readonly ip: Ipv4Addr;
}

export class NodeNetwork {
  readonly root: Netns;
  readonly bridge: Bridge;
  readonly vtep: Vtep;
  readonly podCidr: Cidr;
  readonly nodeIp: Ipv4Addr;
  private readonly pods = new Map<string, PodNetwork>();
  private readonly gateway: Ipv4Addr;

  constructor(
    private readonly dp: Datapath,
    readonly record: NodeRecord,
    vni: number,
    underlay: UnderlayLink,
    /** The emulated underlay network; its .1 is the router behind every node's eth0. */
    underlayCidr: Cidr = mustParseCidr("172.31.0.0/24"),
  ) {
    this.podCidr = mustParseCidr(record.podCidr);
    this.nodeIp = parseIpv4Addr(record.internalIp)!;
    this.gateway = nthAddress(this.podCidr, 1);
    this.root = new Netns("root", dp, true);
    this.bridge = new Bridge(Devices.bridge, dp);

    const rootInput = (iface: Iface): Receiver => (frame, tr) => this.root.input(iface, frame, tr);

    const cni0: Iface = {
      name: Devices.bridge,
      mac: podMac(this.gateway),
      mtu: OVERLAY_MTU,
      addr: { ip: this.gateway, prefix: this.podCidr.prefix },
      xmit: (frame, tr) => this.bridge.receive(hostPort, frame, tr),
    };
    const toHost = rootInput(cni0);
    const hostPort: BridgePort = { name: Devices.bridge, out: (frame, tr) => dp.send(toHost, frame, tr) };
    this.bridge.addPort(hostPort);

    const flannel: Iface = {
      name: Devices.vtep,
      mac: vtepMac(this.nodeIp),
      mtu: OVERLAY_MTU,
      addr: { ip: this.podCidr.network, prefix: 32 },
      noArp: true,
      xmit: (frame, tr) => this.vtep.xmit(frame, tr),
    };
    this.vtep = new Vtep(Devices.vtep, flannel.mac, vni, this.nodeIp, underlayMac(this.nodeIp), dp, underlay, rootInput(flannel), underlayMac);

    const eth0: Iface = {
      name: Devices.underlay,
      mac: underlayMac(this.nodeIp),
      mtu: UNDERLAY_MTU,
      addr: { ip: this.nodeIp, prefix: underlayCidr.prefix },
      xmit: (frame, tr) => {
        // The frame reaches the underlay router; beyond it nothing is emulated yet (egress
        // with SNAT to the node IP comes with its own issue), so it ends here, counted.
        dp.tap(Devices.underlay, frame, "tx");
        dp.counters.inc("underlay_external_dropped_total");
        tr?.hop(Devices.underlay, `to the underlay router ${formatIpv4(router)}: no network beyond it is emulated`, "dropped");
      },
    };
    const lo = loopback(this.root, dp);
    for (const iface of [lo, cni0, flannel, eth0]) this.root.addIface(iface);
    const router = nthAddress(underlayCidr, 1);
    this.root.routes.replace({ dst: { network: 0, prefix: 0 }, dev: Devices.underlay, via: router });
    // The router is part of the emulated underlay, so its MAC is known rather than solicited.
    this.root.neighbors.setPermanent(Devices.underlay, router, underlayMac(router));
  }

  /** An outer frame from the underlay (NATS) arrives on eth0 and goes to the VTEP. */
  receiveUnderlay(frame: Uint8Array, tr: Tracer | undefined): void {
    this.dp.tap(Devices.underlay, frame, "rx");
    this.vtep.receive(frame, tr);
  }

  /** Whole-state sync of the remote nodes: routes, neighbours and FDB of flannel.1 at once. */
  syncPeers(peers: readonly NodeRecord[]): void {
    const routes: Route[] = [];
    const neighbors = new Map<Ipv4Addr, MacAddr>();
    const fdb = new Map<MacAddr, RemoteVtep>();
    for (const peer of peers) {
      if (peer.name === this.record.name) continue;
      const cidr = mustParseCidr(peer.podCidr);
      const mac = parseMac(peer.vtepMac)!;
      routes.push({ dst: cidr, dev: Devices.vtep, via: cidr.network, onlink: true });
      neighbors.set(cidr.network, mac);
      fdb.set(mac, { nodeName: peer.name, nodeIp: parseIpv4Addr(peer.internalIp)! });
    }
    this.root.routes.syncDevice(Devices.vtep, routes);
    this.root.neighbors.syncPermanent(Devices.vtep, neighbors);
    this.vtep.syncFdb(fdb);
  }

  podKeys(): string[] {
    return [...this.pods.keys()];
  }

  pod(key: string): PodNetwork | undefined {
    return this.pods.get(key);
  }

  /** The CNI ADD: a netns with lo and eth0, a veth into cni0, routes. */
  addPod(key: string, record: PodRecord): PodNetwork {
    const existing = this.pods.get(key);
    if (existing) return existing;
    const ip = parseIpv4Addr(record.podIp)!;
    const ns = new Netns(record.name, this.dp, false);
    const hostName = vethName(key);
    const [podEnd, hostEnd] = VethEnd.pair(
      this.dp,
      { name: "eth0", label: `${record.name}/eth0`, traced: false },
      { name: hostName, label: hostName, traced: true },
    );
    const eth0: Iface = {
      name: "eth0",
      mac: podMac(ip),
      mtu: OVERLAY_MTU,
      addr: { ip, prefix: this.podCidr.prefix },
      xmit: (frame, tr) => podEnd.xmit(frame, tr),
    };
    ns.addIface(loopback(ns, this.dp));
    ns.addIface(eth0);
    ns.routes.replace({ dst: { network: 0, prefix: 0 }, dev: "eth0", via: this.gateway });
    const podInput: Receiver = (frame, tr) => ns.input(eth0, frame, tr);
    podEnd.attached = podInput;
    const port: BridgePort = { name: hostName, out: (frame, tr) => hostEnd.xmit(frame, tr) };
    hostEnd.attached = (frame, tr) => this.bridge.receive(port, frame, tr);
    this.bridge.addPort(port);
    const pod: PodNetwork = { key, record, ns, hostVeth: hostEnd, port, ip };
    this.pods.set(key, pod);
    return pod;
  }

  /** The CNI DEL: unplug the veth; the bridge forgets the port's MACs. */
  removePod(key: string): boolean {
    const pod = this.pods.get(key);
    if (!pod) return false;
    this.bridge.removePort(pod.port);
    pod.hostVeth.attached = () => {};
    this.pods.delete(key);
    return true;
  }

  devices(): string[] {
    return [Devices.loopback, Devices.bridge, Devices.vtep, Devices.underlay, ...[...this.pods.values()].flatMap((p) => [p.hostVeth.name, `${p.record.name}/eth0`])];
  }

  /** Ageing and ARP retransmits; called on a timer by the agent. */
  tick(): void {
    const now = this.dp.now();
    this.bridge.fdb.age(now);
    this.root.tick();
    for (const pod of this.pods.values()) pod.ns.tick();
  }
}

function loopback(ns: Netns, dp: Datapath): Iface {
  const lo: Iface = {
    name: Devices.loopback,
    mac: 0,
    mtu: 65536,
    addr: { ip: LOOPBACK, prefix: 8 },
    xmit: (frame, tr) => dp.send((f, t) => ns.input(lo, f, t), frame, tr),
  };
  return lo;
}

/** A stable host-side veth name from the pod key, as CNI plugins derive one: "veth" + 8 hex. */
export function vethName(key: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return `veth${(h >>> 0).toString(16).padStart(8, "0")}`;
}
