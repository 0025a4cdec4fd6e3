/**
 * LoadBalancer address allocation of the emulated cloud, pure: which address of the pool
 * (KUBEWIRE_LB_CIDR) a type=LoadBalancer Service gets. What a cloud's EnsureLoadBalancer returns
 * as the LoadBalancerStatus (k8s.io/cloud-provider cloud.go LoadBalancer interface), decided the
 * way an address pool does it (MetalLB's allocator): the address a Service asked for in
 * spec.loadBalancerIP when it is in the pool and free, else the one it already has, else the
 * lowest free one, .1 upward (network and broadcast addresses are never handed out).
 *
 * Nothing is remembered here: who holds an address is read from the Services' stored
 * status.loadBalancer.ingress, so a restarted control plane gives every Service the address it
 * had. When two Services claim one address (a status written by hand, say), the one created
 * first keeps it and the other is moved.
 */
import { broadcastOf, cidrContains, formatCidr, type Cidr } from "../../cluster/addressing.ts";
import type { KubeObject } from "../../cluster/store.ts";
import { formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/common.ts";
import { asRecord as rec } from "../../cluster/untrusted.ts";

/** The parts of a Service the allocation reads. */
export interface LbService {
  /** "namespace/name". */
  readonly key: string;
  readonly creationTimestamp: string;
  /** wantsLoadBalancer: type LoadBalancer and no spec.loadBalancerClass (then it is another implementation's). */
  readonly wants: boolean;
  /** type is LoadBalancer (with or without a class). */
  readonly isLoadBalancer: boolean;
  /** spec.loadBalancerIP ("" when unset). */
  readonly requestedIp: string;
  /** status.loadBalancer.ingress[].ip, canonical dotted quads, in order. */
  readonly ingressIps: readonly string[];
}

export type LbAddressDecision = { readonly kind: "assign"; readonly ip: string } | { readonly kind: "fail"; readonly message: string };

const str = (v: unknown): string => (typeof v === "string" ? v : "");

function canonical(ip: string): string | undefined {
  const parsed = parseIpv4Addr(ip);
  return parsed === undefined ? undefined : formatIpv4(parsed);
}

/**
 * cloud-provider's wantsLoadBalancer (controllers/service/controller.go): type LoadBalancer and
 * spec.loadBalancerClass unset. The stored object is not trusted: odd fields mean "no".
 */
export function wantsLoadBalancer(svc: KubeObject): boolean {
  const spec = rec(svc.spec);
  return spec.type === "LoadBalancer" && (spec.loadBalancerClass === undefined || spec.loadBalancerClass === null);
}

/** The status.loadBalancer.ingress IPs of a stored Service, canonical; hostnames and junk skipped. */
export function ingressIpsOf(svc: KubeObject): string[] {
  const ingress = rec(rec(svc.status).loadBalancer).ingress;
  return (Array.isArray(ingress) ? ingress : []).map((i) => canonical(str(rec(i).ip))).filter((ip): ip is string => ip !== undefined);
}

export function lbServiceFrom(svc: KubeObject): LbService {
  const spec = rec(svc.spec);
  return {
    key: `${svc.metadata.namespace ?? ""}/${svc.metadata.name ?? ""}`,
    creationTimestamp: str(svc.metadata.creationTimestamp),
    wants: wantsLoadBalancer(svc),
    isLoadBalancer: spec.type === "LoadBalancer",
    requestedIp: str(spec.loadBalancerIP).trim(),
    ingressIps: ingressIpsOf(svc),
  };
}

/** The first and last address handed out: .1 up to the one before broadcast. */
function usable(pool: Cidr): { first: Ipv4Addr; last: Ipv4Addr } {
  return { first: pool.network + 1, last: broadcastOf(pool) - 1 };
}

export function inPool(pool: Cidr, ip: Ipv4Addr): boolean {
  const { first, last } = usable(pool);
  return cidrContains(pool, ip) && ip >= first && ip <= last;
}

/** Older first, then by key: the order in which Services' claims on one address win. */
function byAge(a: LbService, b: LbService): number {
  if (a.creationTimestamp !== b.creationTimestamp) return a.creationTimestamp < b.creationTimestamp ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * Who holds each pool address: the Service (wanting a load balancer) whose status has it; of
 * several, the oldest. Addresses outside the pool are nobody's concern here.
 */
export function addressOwners(services: readonly LbService[], pool: Cidr): Map<string, string> {
  const owners = new Map<string, string>();
  for (const s of [...services].filter((x) => x.wants).sort(byAge)) {
    for (const ip of s.ingressIps) {
      const n = parseIpv4Addr(ip)!;
      if (inPool(pool, n) && !owners.has(ip)) owners.set(ip, s.key);
    }
  }
  return owners;
}

/**
 * The address `svc` should have, given every Service (svc among them or not). Fails, with the
 * message the SyncLoadBalancerFailed event carries, when the requested address is unusable or
 * the pool is exhausted.
 */
export function decideLoadBalancerAddress(svc: LbService, services: readonly LbService[], pool: Cidr): LbAddressDecision {
  const all = services.some((s) => s.key === svc.key) ? services.map((s) => (s.key === svc.key ? svc : s)) : [...services, svc];
  const owners = addressOwners(all, pool);
  const range = formatCidr(pool);
  if (svc.requestedIp !== "") {
    const ip = canonical(svc.requestedIp);
    if (ip === undefined) return { kind: "fail", message: `spec.loadBalancerIP ${JSON.stringify(svc.requestedIp)} is not an IPv4 address` };
    if (!inPool(pool, parseIpv4Addr(ip)!)) return { kind: "fail", message: `requested loadBalancerIP ${ip} is not in the load-balancer pool ${range}` };
    const owner = owners.get(ip);
    if (owner !== undefined && owner !== svc.key) return { kind: "fail", message: `requested loadBalancerIP ${ip} is already in use by Service ${owner}` };
    return { kind: "assign", ip };
  }
  const mine = svc.ingressIps.find((ip) => owners.get(ip) === svc.key);
  if (mine !== undefined) return { kind: "assign", ip: mine };
  const { first, last } = usable(pool);
  for (let n = first; n <= last; n++) {
    const ip = formatIpv4(n);
    if (!owners.has(ip)) return { kind: "assign", ip };
  }
  return { kind: "fail", message: `no free address in the load-balancer pool ${range} (all ${last - first + 1} are in use)` };
}

/**
 * The LoadBalancerStatus the emulated cloud reports for an address: one ingress point, ipMode VIP
 * (KEP-1860: the traffic reaches the nodes with the load balancer's address as destination, so
 * kube-proxy may short-circuit it inside the cluster).
 */
export function loadBalancerStatus(ip: string): { ingress: Array<{ ip: string; ipMode: "VIP" }> } {
  return { ingress: [{ ip, ipMode: "VIP" }] };
}
