/**
 * cni0: a learning bridge (IEEE 802.1D; Linux net/bridge, gVisor stack/bridge.go). Learns
 * source MACs per port, forwards known unicast to one port, floods broadcast, multicast and
 * unknown unicast to every port but the one it came in on. The bridge's own interface (the
 * node's address on the pod network) is one more port, exposed as the Link `self`.
 */
import { EtherType, readMac, readU16, formatMac, type MacAddr } from "../overlay/wire/index.ts";
import type { Datapath, Receiver } from "./datapath.ts";
import { Fdb } from "./fdb.ts";
import type { Link } from "./link.ts";
import { DropReason } from "./netfilter.ts";
import type { Packet } from "./packet.ts";

/** The bridge's own port: transmit = into the bridge; what the bridge forwards to it = receive. */
class BridgeSelf implements Link {
  rx: Receiver;
  constructor(
    private readonly bridge: Bridge,
    readonly name: string,
    readonly mac: MacAddr,
    readonly mtu: number,
    dp: Datapath,
  ) {
    this.rx = (p) => dp.drop(p, DropReason.NoPort, name);
  }
  transmit(pkt: Packet): void {
    this.bridge.input(this, pkt);
  }
  setReceiver(rx: Receiver): void {
    this.rx = rx;
  }
}

export class Bridge {
  readonly fdb: Fdb<Link>;
  readonly self: Link;
  private readonly ports = new Set<Link>();
  private readonly selfPort: BridgeSelf;
  /**
   * br_netfilter (net.bridge.bridge-nf-call-iptables=1, which kubeadm requires): a unicast
   * IPv4 frame bridged between two pod ports passes the node's IP hooks, so conntrack undoes a
   * Service's DNAT on a reply that the bridge would otherwise switch straight back (a pod
   * answering a client on the same bridge). False: the hooks consumed the frame.
   */
  netfilter: ((pkt: Packet, from: Link, to: Link) => boolean) | undefined;

  constructor(
    readonly name: string,
    mac: MacAddr,
    mtu: number,
    private readonly dp: Datapath,
    fdbMax = 4096,
  ) {
    this.fdb = new Fdb<Link>(fdbMax);
    this.selfPort = new BridgeSelf(this, name, mac, mtu, dp);
    this.self = this.selfPort;
    this.ports.add(this.selfPort);
  }

  /** Enslaves `port` (`ip link set vethX master cni0`): what it receives enters the bridge. */
  addPort(port: Link): void {
    this.ports.add(port);
    port.setReceiver((p) => this.input(port, p));
  }

  removePort(port: Link): void {
    this.ports.delete(port);
    this.fdb.forgetPort(port);
  }

  input(ingress: Link, pkt: Packet): void {
    if (pkt.len < 14) return this.dp.drop(pkt, DropReason.Malformed, this.name, "runt frame");
    if (this.dp.tapped(this.name)) this.dp.tap(this.name, pkt.data(), "rx");
    const now = this.dp.clock();
    const b = pkt.buf;
    const h = pkt.head;
    // Multicast: the I/G bit, lowest bit of the first octet.
    const srcMulticast = (b[h + 6]! & 1) === 1;
    if (!srcMulticast && this.fdb.learn(readMac(b, h + 6), ingress, now) === "full") {
      this.dp.counters.inc("bridge_fdb_full_total");
    }
    if ((b[h]! & 1) === 1) return this.flood(ingress, pkt);
    const dst = readMac(b, h);
    const port = this.fdb.portOf(dst, now);
    if (port === undefined) return this.flood(ingress, pkt);
    if (port === ingress) {
      return this.dp.drop(pkt, DropReason.NoPort, this.name, `fdb ${formatMac(dst)} is on the ingress port ${ingress.name}`);
    }
    pkt.tr?.hop(this.name, `fdb ${formatMac(dst)} -> ${port.name}`);
    if (this.netfilter !== undefined && port !== this.selfPort && ingress !== this.selfPort && readU16(b, h + 12) === EtherType.IPv4 && !this.netfilter(pkt, ingress, port)) return;
    this.out(port, pkt);
  }

  private out(port: Link, pkt: Packet): void {
    if (port === this.selfPort) {
      pkt.ingress = this.name;
      this.dp.send(this.selfPort.rx, pkt);
    } else {
      port.transmit(pkt);
    }
  }

  private flood(ingress: Link, pkt: Packet): void {
    pkt.tr?.hop(this.name, `flood ${formatMac(readMac(pkt.buf, pkt.head))} to ${this.ports.size - 1} ports`);
    // Receivers rewrite frames in place (TTL, Ethernet header), so each port gets its own copy.
    let last: Link | undefined;
    for (const port of this.ports) {
      if (port === ingress) continue;
      if (last) this.out(last, pkt.clone(this.dp.pool));
      last = port;
    }
    if (last) this.out(last, pkt);
    else pkt.release();
  }
}
