/**
 * The emulated cloud's L4 load balancer, pure: what it listens on and where it sends a new
 * connection or UDP flow. A cloud load balancer in front of a Kubernetes cluster forwards each
 * Service port's traffic to the port's nodePort on some node (kube-proxy takes it from there);
 * the node set follows cloud-provider's service controller (controllers/service/controller.go
 * getNodePredicatesForService):
 *
 * - externalTrafficPolicy Cluster: nodes not excluded (label
 *   node.kubernetes.io/exclude-from-external-load-balancers), not being deleted by the cluster
 *   autoscaler (taint ToBeDeletedByClusterAutoscaler) and Ready (allNodePredicates).
 * - externalTrafficPolicy Local: the same without the Ready check (etpLocalNodePredicates);
 *   instead the load balancer health-checks every node's healthCheckNodePort (kube-proxy
 *   answers 200 where the Service has a local endpoint, 503 elsewhere) and sends traffic only
 *   to nodes whose last check answered 200. A node not yet checked gets none.
 *
 * Nodes are taken round-robin per listener, in name order, so connections spread evenly.
 */
import { cidrContains, parseCidr, type Cidr } from "../../cluster/addressing.ts";
import { Annotations, nodeIsReady } from "../../cluster/kube-objects.ts";
import type { KubeObject } from "../../cluster/store.ts";
import { parseIpv4Addr } from "../../overlay/wire/common.ts";
import { addressOwners, lbServiceFrom, wantsLoadBalancer } from "./addresses.ts";
import { asArray as arr, asPort as port, asRecord as rec } from "../../cluster/untrusted.ts";

export type LbProtocol = "TCP" | "UDP";

/** One listening socket of the load balancer: a Service port on one of its addresses. */
export interface ListenerSpec {
  /** "TCP/127.0.2.1:80": one socket per protocol, address and port. */
  readonly id: string;
  /** "namespace/name" of the Service. */
  readonly service: string;
  readonly portName: string;
  readonly protocol: LbProtocol;
  readonly ip: string;
  readonly port: number;
  readonly nodePort: number;
  /** Set for externalTrafficPolicy Local: the port nodes are health-checked on. */
  readonly healthCheckNodePort: number | undefined;
  /** spec.loadBalancerSourceRanges: clients outside them are dropped (a cloud LB's firewall); empty = all. */
  readonly sourceRanges: readonly Cidr[];
}

/**
 * Whether a client may use the listener: loadBalancerSourceRanges act as the cloud's firewall
 * in front of the load balancer (GCE firewall rules, AWS security groups), so a client outside
 * them never reaches a node. An address that is not IPv4 is allowed only without ranges.
 */
export function sourceAllowed(spec: ListenerSpec, clientAddress: string): boolean {
  if (spec.sourceRanges.length === 0) return true;
  const text = clientAddress.startsWith("::ffff:") ? clientAddress.slice(7) : clientAddress;
  const ip = parseIpv4Addr(text);
  return ip !== undefined && spec.sourceRanges.some((c) => cidrContains(c, ip));
}

/** A Service port the load balancer cannot serve, and why (logged, not an error). */
export interface SkippedPort {
  readonly service: string;
  readonly port: number;
  readonly protocol: string;
  readonly reason: string;
}

/** A node as the load balancer sees it. */
export interface LbNode {
  readonly name: string;
  /** Where the node's NodePorts listen (annotation kubewire.io/host-address, 127.0.1.N). */
  readonly hostAddress: string;
  readonly ready: boolean;
  /** Excluded from load balancers (label, autoscaler taint, or being deleted). */
  readonly excluded: boolean;
}

/** v1.LabelNodeExcludeBalancers. */
export const EXCLUDE_BALANCERS_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers";
/** The cluster autoscaler's taint on a node it is about to delete (cloud-provider ToBeDeletedTaint). */
export const TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler";


/** The load balancer's view of a Node object; undefined without a usable host address. */
export function lbNodeFrom(node: KubeObject): LbNode | undefined {
  const name = node.metadata.name;
  const hostAddress = node.metadata.annotations?.[Annotations.hostAddress];
  if (typeof name !== "string" || typeof hostAddress !== "string" || parseIpv4Addr(hostAddress) === undefined) return undefined;
  const labels = rec(node.metadata.labels);
  const tainted = arr(rec(node.spec).taints).some((t) => rec(t).key === TO_BE_DELETED_TAINT);
  return {
    name,
    hostAddress,
    ready: nodeIsReady(node),
    excluded: EXCLUDE_BALANCERS_LABEL in labels || tainted || node.metadata.deletionTimestamp !== undefined,
  };
}

export function listenerId(protocol: LbProtocol, ip: string, listenPort: number): string {
  return `${protocol}/${ip}:${listenPort}`;
}

/**
 * Every listener the Services call for: each TCP or UDP port of each Service that wants a load
 * balancer, on each pool address its status holds (an address two Services claim is the older
 * one's, as the address controller decides). A port without a nodePort has nowhere to go and is
 * skipped, as is SCTP.
 */
export function desiredListeners(services: readonly KubeObject[], pool: Cidr): { listeners: ListenerSpec[]; skipped: SkippedPort[] } {
  const owners = addressOwners(services.map(lbServiceFrom), pool);
  const listeners = new Map<string, ListenerSpec>();
  const skipped: SkippedPort[] = [];
  for (const svc of services) {
    if (!wantsLoadBalancer(svc)) continue;
    const key = `${svc.metadata.namespace ?? ""}/${svc.metadata.name ?? ""}`;
    const ips = lbServiceFrom(svc).ingressIps.filter((ip) => owners.get(ip) === key);
    if (ips.length === 0) continue;
    const spec = rec(svc.spec);
    const local = spec.externalTrafficPolicy === "Local";
    const hc = port(spec.healthCheckNodePort);
    const ranges = arr(spec.loadBalancerSourceRanges).map((r) => (typeof r === "string" ? parseCidr(r.trim()) : undefined)).filter((c): c is Cidr => c !== undefined);
    for (const p of arr(spec.ports).map(rec)) {
      const protocol = p.protocol === undefined ? "TCP" : String(p.protocol);
      const listenPort = port(p.port);
      const nodePort = port(p.nodePort);
      if (listenPort === 0) continue;
      const skip = (reason: string) => skipped.push({ service: key, port: listenPort, protocol, reason });
      if (protocol !== "TCP" && protocol !== "UDP") {
        skip(`protocol ${protocol} is not load-balanced`);
        continue;
      }
      if (nodePort === 0) {
        skip("no nodePort to forward to (allocateLoadBalancerNodePorts is false)");
        continue;
      }
      if (local && hc === 0) {
        skip("externalTrafficPolicy Local without a healthCheckNodePort");
        continue;
      }
      for (const ip of ips) {
        const id = listenerId(protocol, ip, listenPort);
        if (listeners.has(id)) continue;
        listeners.set(id, { id, service: key, portName: typeof p.name === "string" ? p.name : "", protocol, ip, port: listenPort, nodePort, healthCheckNodePort: local ? hc : undefined, sourceRanges: ranges });
      }
    }
  }
  return { listeners: [...listeners.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)), skipped };
}

/** getNodePredicatesForService: the nodes a listener may use before health checks, by name. */
export function candidateNodes(nodes: readonly LbNode[], local: boolean): LbNode[] {
  return nodes.filter((n) => !n.excluded && (local || n.ready)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function healthKey(host: string, hcPort: number): string {
  return `${host}:${hcPort}`;
}

export interface HealthTarget {
  readonly key: string;
  readonly node: string;
  readonly host: string;
  readonly port: number;
}

/** What to health-check: every candidate node's healthCheckNodePort of every Local listener, once each. */
export function healthTargets(listeners: readonly ListenerSpec[], nodes: readonly LbNode[]): HealthTarget[] {
  const out = new Map<string, HealthTarget>();
  const candidates = candidateNodes(nodes, true);
  for (const l of listeners) {
    if (l.healthCheckNodePort === undefined) continue;
    for (const n of candidates) {
      const key = healthKey(n.hostAddress, l.healthCheckNodePort);
      if (!out.has(key)) out.set(key, { key, node: n.name, host: n.hostAddress, port: l.healthCheckNodePort });
    }
  }
  return [...out.values()];
}

export type HealthState = "healthy" | "unhealthy";

/** The last health-check answer per target (healthKey); targets not checked yet are absent. */
export class HealthTable {
  private readonly states = new Map<string, HealthState>();

  get(key: string): HealthState | undefined {
    return this.states.get(key);
  }

  /** Records an answer; returns the previous state when this one differs (a transition to log). */
  record(key: string, healthy: boolean): { changed: boolean; previous: HealthState | undefined } {
    const state: HealthState = healthy ? "healthy" : "unhealthy";
    const previous = this.states.get(key);
    this.states.set(key, state);
    return { changed: previous !== state, previous };
  }

  /** Forgets targets no longer checked (a node or a Service gone). */
  retain(keys: ReadonlySet<string>): void {
    for (const k of [...this.states.keys()]) if (!keys.has(k)) this.states.delete(k);
  }

  get size(): number {
    return this.states.size;
  }
}

/** The nodes a listener sends new traffic to now, in name order. */
export function eligibleBackends(listener: ListenerSpec, nodes: readonly LbNode[], health: (key: string) => HealthState | undefined): LbNode[] {
  const hc = listener.healthCheckNodePort;
  const candidates = candidateNodes(nodes, hc !== undefined);
  return hc === undefined ? candidates : candidates.filter((n) => health(healthKey(n.hostAddress, hc)) === "healthy");
}

/** Round-robin over whatever backends a listener has at each pick (a counter per listener). */
export class RoundRobin {
  private readonly next = new Map<string, number>();

  pick<T>(listener: string, backends: readonly T[]): T | undefined {
    if (backends.length === 0) return undefined;
    const i = this.next.get(listener) ?? 0;
    this.next.set(listener, (i + 1) % 0x1_0000_0000);
    return backends[i % backends.length];
  }

  /** Drops the counters of listeners that went. */
  retain(ids: ReadonlySet<string>): void {
    for (const k of [...this.next.keys()]) if (!ids.has(k)) this.next.delete(k);
  }
}
