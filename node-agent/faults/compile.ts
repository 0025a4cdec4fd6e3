/**
 * NetworkChaos objects -> the faults one node applies, recompiled from the whole state (every
 * NetworkChaos, Node and Pod) on any change and swapped in at once (STYLE.md §5).
 *
 * Where a fault applies: at the node that sends the packet, once. Each node keeps the faults
 * whose sending side can be on it (direction to: the selector's end; from: the target's end;
 * both: either) and classifies its own outgoing packets by their inner addresses and ports
 * (node-agent/link.ts FaultLink): on the underlay link every frame to another node, at a pod's
 * veth the packets from this node to that pod. A packet thus meets a fault on one node only,
 * whichever way it goes.
 *
 * Selectors (Chaos Mesh's PodSelectorSpec, subset): with `namespaces` or `labelSelectors` an end
 * is the pods that match (namespaces default to the object's own), narrowed to the selected
 * nodes when `nodes`/`nodeSelectors` are given too; with node criteria only, an end is the whole
 * of those nodes (their pod CIDRs and InternalIPs); an empty selector is every address. A
 * missing target is every address.
 *
 * Ports are the target's ports: the destination port of a packet to the target, the source
 * port of one from it (so `direction: both` with port 8080 delays requests and their replies).
 *
 * Several faults on one packet: taken in order of "namespace/name", each as a netem qdisc
 * chained under the previous one: the second sees the packet when the first releases it, so
 * delays add up, and a packet the first drops never reaches the second.
 */
import { cidrContains, type Cidr } from "../../cluster/addressing.ts";
import type { NetemParams } from "./netem.ts";
import { expiresAt, type ChaosSelector, type Direction, type ParsedChaos } from "./spec.ts";

export interface ChaosNode {
  name: string;
  labels: Readonly<Record<string, string>>;
  podCidr: Cidr | undefined;
  internalIp: number | undefined;
}

export interface ChaosPod {
  namespace: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  ip: number | undefined;
  node: string | undefined;
}

export interface ClusterView {
  nodes: readonly ChaosNode[];
  pods: readonly ChaosPod[];
}

/** A set of addresses: everything, or these addresses and CIDRs; with the nodes they live on. */
export interface Endpoints {
  any: boolean;
  ips: ReadonlySet<number>;
  cidrs: readonly Cidr[];
  nodes: ReadonlySet<string>;
}

export interface FaultMatch {
  src: Endpoints;
  dst: Endpoints;
  direction: Direction;
  /** IP protocol; 0: any. */
  protocol: number;
  ports: ReadonlySet<number> | undefined;
}

export interface CompiledFault {
  key: string;
  seed: number;
  netem: NetemParams;
  match: FaultMatch;
  /** Same version: the link keeps the fault's state (queue, generators) across a recompile. */
  version: string;
}

const ANY: Endpoints = { any: true, ips: new Set(), cidrs: [], nodes: new Set() };

function labelsMatch(labels: Readonly<Record<string, string>>, want: Readonly<Record<string, string>> | undefined): boolean {
  if (want === undefined) return true;
  for (const [k, v] of Object.entries(want)) if (labels[k] !== v) return false;
  return true;
}

/** The addresses one end of a NetworkChaos stands for, in the cluster as it is now. */
export function resolveSelector(sel: ChaosSelector | undefined, namespace: string, view: ClusterView): Endpoints {
  if (sel === undefined) return ANY;
  const podCriteria = sel.namespaces !== undefined || sel.labelSelectors !== undefined;
  const nodeCriteria = sel.nodes !== undefined || sel.nodeSelectors !== undefined;
  if (!podCriteria && !nodeCriteria) return ANY;
  const nodes = view.nodes.filter((n) => (sel.nodes === undefined || sel.nodes.includes(n.name)) && labelsMatch(n.labels, sel.nodeSelectors));
  if (!podCriteria) {
    return {
      any: false,
      ips: new Set(nodes.flatMap((n) => (n.internalIp === undefined ? [] : [n.internalIp]))),
      cidrs: nodes.flatMap((n) => (n.podCidr ? [n.podCidr] : [])),
      nodes: new Set(nodes.map((n) => n.name)),
    };
  }
  const onNodes = nodeCriteria ? new Set(nodes.map((n) => n.name)) : undefined;
  const namespaces = sel.namespaces ?? [namespace];
  const pods = view.pods.filter(
    (p) => p.ip !== undefined && namespaces.includes(p.namespace) && labelsMatch(p.labels, sel.labelSelectors) && (onNodes === undefined || (p.node !== undefined && onNodes.has(p.node))),
  );
  return { any: false, ips: new Set(pods.map((p) => p.ip!)), cidrs: [], nodes: new Set(pods.flatMap((p) => (p.node ? [p.node] : []))) };
}

export function contains(e: Endpoints, ip: number): boolean {
  if (e.any || e.ips.has(ip)) return true;
  for (const c of e.cidrs) if (cidrContains(c, ip)) return true;
  return false;
}

const isEmpty = (e: Endpoints) => !e.any && e.ips.size === 0 && e.cidrs.length === 0;

/** Whether a packet (inner addresses, protocol, ports; -1: no ports) is one the fault acts on. */
export function matchPacket(m: FaultMatch, src: number, dst: number, proto: number, sport: number, dport: number): boolean {
  if (m.protocol !== 0 && proto !== m.protocol) return false;
  const ports = m.ports;
  if (m.direction !== "from" && contains(m.src, src) && contains(m.dst, dst) && (ports === undefined || ports.has(dport))) return true;
  if (m.direction !== "to" && contains(m.dst, src) && contains(m.src, dst) && (ports === undefined || ports.has(sport))) return true;
  return false;
}

/** Whether packets of the fault may be sent from `node` (where it must be applied). */
export function sendsFrom(m: FaultMatch, node: string): boolean {
  const on = (e: Endpoints) => e.any || e.nodes.has(node);
  if (isEmpty(m.src) || isEmpty(m.dst)) return false;
  return (m.direction !== "from" && on(m.src)) || (m.direction !== "to" && on(m.dst));
}

/** Whether packets of the fault may be addressed to `ip` (a pod's veth needs the fault). */
export function sendsTo(m: FaultMatch, ip: number): boolean {
  return (m.direction !== "from" && contains(m.dst, ip)) || (m.direction !== "to" && contains(m.src, ip));
}

/** The chaos still running at `nowMs` (a duration runs from the object's creation). */
export function isActive(c: ParsedChaos, nowMs: number): boolean {
  const end = expiresAt(c);
  return end === undefined || nowMs < end;
}

/**
 * The faults `node` applies, in composition order, and when the set changes by itself next (the
 * earliest expiry), so the caller recompiles then.
 */
export function compileChaos(list: readonly ParsedChaos[], view: ClusterView, node: string, nowMs: number): { faults: CompiledFault[]; nextChangeMs: number | undefined } {
  const faults: CompiledFault[] = [];
  let nextChangeMs: number | undefined;
  for (const c of [...list].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    if (!isActive(c, nowMs)) continue;
    const end = expiresAt(c);
    if (end !== undefined && (nextChangeMs === undefined || end < nextChangeMs)) nextChangeMs = end;
    const match: FaultMatch = {
      src: resolveSelector(c.selector, c.namespace, view),
      dst: resolveSelector(c.target, c.namespace, view),
      direction: c.direction,
      protocol: c.protocol,
      ports: c.ports ? new Set(c.ports) : undefined,
    };
    if (!sendsFrom(match, node)) continue;
    faults.push({ key: c.key, seed: c.seed, netem: c.netem, match, version: JSON.stringify([c.seed, c.netem]) });
  }
  return { faults, nextChangeMs };
}
