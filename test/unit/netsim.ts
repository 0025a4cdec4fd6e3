/**
 * A deterministic whole-network simulation for unit tests (smoltcp's tests/netsim.rs): a few
 * `NodeNetwork`s, each on its own `Datapath` with a shared virtual clock, joined by a
 * `MemoryOverlayHub`. The underlay and the receive path are wired the way node-agent/agent.ts
 * wires them to NATS, so what passes here is what the agent does, minus the sockets.
 *
 * Nothing moves on its own: frames inside a node are processed synchronously by its datapath,
 * overlay messages wait in the hub until `run()`, and time advances only through `advance()`.
 */
import { vtepMac } from "../../cluster/addressing.ts";
import { Subjects, type NodeRecord, type TraceHop } from "../../cluster/types.ts";
import { Datapath, Tracer } from "../../node-agent/datapath.ts";
import type { Netns } from "../../node-agent/netns.ts";
import { NodeNetwork, type PodNetwork } from "../../node-agent/node.ts";
import { MemoryOverlayHub } from "../../overlay/memory-transport.ts";
import type { OverlayTransport } from "../../overlay/transport.ts";
import { formatIpv4, formatMac, parseIpv4Addr, readU16, readU32, type Ipv4Addr } from "../../overlay/wire/index.ts";
import { mulberry32 } from "./wire/rng.ts";

export const VNI = 1;

/** node-N: pod CIDR 10.244.(N-1).0/24, InternalIP 172.31.0.(N+1), as the control plane hands them out. */
export function nodeRecord(n: number): NodeRecord {
  const internalIp = `172.31.0.${n + 1}`;
  return {
    name: `node-${n}`,
    podCidr: `10.244.${n - 1}.0/24`,
    internalIp,
    vtepMac: formatMac(vtepMac(parseIpv4Addr(internalIp)!)),
    hostAddress: `127.0.1.${n}`,
  };
}

export interface SimNode {
  readonly name: string;
  readonly record: NodeRecord;
  readonly dp: Datapath;
  readonly net: NodeNetwork;
  readonly transport: OverlayTransport;
}

export class SimCluster {
  /** The virtual clock every datapath reads, in milliseconds. */
  now = 0;
  readonly hub = new MemoryOverlayHub();
  /** Every hop of every traced packet, on any node, in the order they happened. */
  readonly hops: TraceHop[] = [];
  readonly nodes = new Map<string, SimNode>();

  /** `count` nodes, each told about all of them (the peers' whole state, as the KV watch gives it). */
  constructor(count: number, seed = 1) {
    const rng = mulberry32(seed);
    for (let n = 1; n <= count; n++) this.addNode(nodeRecord(n), rng);
    this.syncPeers();
  }

  private addNode(record: NodeRecord, rng: () => number): void {
    const name = record.name;
    const dp = new Datapath(name, () => this.now, rng);
    let transport: OverlayTransport | undefined;
    // The agent's own wiring (node-agent/node.ts), with the in-memory hub for NATS.
    const net = new NodeNetwork(dp, record, VNI, { transport: () => transport!, subjectFor: (node) => Subjects.overlay(VNI, node, name) });
    transport = this.hub.attach(name, (message, trace) => net.receiveMessage(message, trace, () => (hop) => this.hops.push(hop)));
    this.nodes.set(name, { name, record, dp, net, transport });
  }

  node(name: string): SimNode {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  }

  records(): NodeRecord[] {
    return [...this.nodes.values()].map((n) => n.record);
  }

  /** Every node learns `peers` (all nodes by default), as on a KV watch event. */
  syncPeers(peers: readonly NodeRecord[] = this.records()): void {
    for (const node of this.nodes.values()) node.net.syncPeers(peers);
  }

  /** The CNI ADD of pod "default/<name>" on `nodeName`. */
  addPod(nodeName: string, name: string, podIp: string): PodNetwork {
    return this.node(nodeName).net.addPod(podKey(name), { namespace: "default", name, nodeName, podIp, ports: [] });
  }

  /** Delivers overlay messages (and whatever they cause) until the network is quiet. */
  run(): void {
    for (let i = 0; i < 100_000; i++) {
      for (const node of this.nodes.values()) node.dp.flush();
      this.hub.run();
      let busy = false;
      for (const node of this.nodes.values()) busy ||= node.dp.pending > 0;
      if (!busy) return;
    }
    throw new Error("network not quiet");
  }

  /** Moves the clock forward, runs every node's periodic work, and lets the network settle. */
  advance(ms: number): void {
    this.runFor(ms);
    for (const node of this.nodes.values()) node.net.tick();
    this.run();
  }

  /**
   * Runs the network for `ms` of virtual time: delivers what is in flight, then jumps the
   * clock from one timer deadline (TCP, fault delays) to the next. Stops early when `until`
   * holds. Returns whether `until` held.
   */
  runFor(ms: number, until?: () => boolean): boolean {
    const end = this.now + ms;
    for (;;) {
      this.run();
      if (until?.()) return true;
      let next = Infinity;
      for (const node of this.nodes.values()) {
        const d = node.dp.nextDeadline();
        if (d !== undefined && d < next) next = d;
      }
      if (next > end) break;
      this.now = Math.max(this.now, next);
      for (const node of this.nodes.values()) node.dp.poll(this.now);
    }
    this.now = end;
    this.run();
    return until?.() ?? false;
  }

  /** A tracer starting at sequence 0 on `nodeName`, whose hops land in `hops`. */
  tracer(nodeName: string, traceId = "trace-1"): Tracer {
    return new Tracer(traceId, nodeName, 0, (hop) => this.hops.push(hop));
  }

  /** A counter summed over all nodes. */
  counter(name: string): number {
    let sum = 0;
    for (const node of this.nodes.values()) sum += node.dp.counters.get(name);
    return sum;
  }
}

export function podKey(name: string): string {
  return `default.${name}`;
}

/** An ICMP message as a pod's stack delivered it, with the quoted probe of an error. */
export interface IcmpEvent {
  kind: string;
  /** For errors: the ICMP code. */
  code?: number;
  src: string;
  dst: string;
  ttl: number;
  /** Echo: ident and seq. */
  ident?: number;
  seq?: number;
  /** Errors: the quoted packet's protocol, destination and first two 16-bit words (ports, or echo ident/seq). */
  quoted?: { protocol: number; dst: string; first: number; second: number };
}

/** Records every ICMP message delivered to `ns`. */
export function recordIcmp(ns: Netns): IcmpEvent[] {
  const events: IcmpEvent[] = [];
  ns.onIcmp((icmp, ip) => {
    const base = { kind: icmp.kind, src: formatIpv4(ip.src), dst: formatIpv4(ip.dst), ttl: ip.ttl };
    if (icmp.kind === "echoReply" || icmp.kind === "echoRequest") {
      events.push({ ...base, ident: icmp.ident, seq: icmp.seq });
    } else {
      events.push({ ...base, code: icmp.code, quoted: quote(icmp.original) });
    }
  });
  return events;
}

function quote(original: Uint8Array): IcmpEvent["quoted"] {
  const ihl = (original[0]! & 0x0f) * 4;
  if (original.length < ihl + 8) return undefined;
  return {
    protocol: original[9]!,
    dst: formatIpv4(readU32(original, 16)),
    first: readU16(original, ihl + (original[9] === 1 ? 4 : 0)),
    second: readU16(original, ihl + (original[9] === 1 ? 6 : 2)),
  };
}

/** A 56-byte echo request, as ping sends by default. */
export function echo(ident: number, seq: number) {
  return { kind: "echoRequest" as const, ident, seq, data: new Uint8Array(56).map((_, i) => i) };
}

export function ip(text: string): Ipv4Addr {
  const addr = parseIpv4Addr(text);
  if (addr === undefined) throw new Error(`bad address ${text}`);
  return addr;
}
