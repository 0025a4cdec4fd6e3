/**
 * What must hold of a cluster after any fault (`kubewire chaos check`, and the end of a `kubewire
 * chaos run`), judged from the API's objects and the nodes' own account of what they installed.
 * Pure: the caller lists the objects and asks the nodes.
 *
 * - Addresses are never handed out twice: no two live pods share an IP, no two nodes' pod CIDRs
 *   overlap, no two Services share a ClusterIP or a NodePort (one Service may use one NodePort for
 *   TCP and UDP of a port, as the NodePort allocator allows).
 * - Every node converged: the VXLAN routes are exactly the other nodes' pod CIDRs, the pods with a
 *   network are exactly the live pods bound to it, kube-proxy's installed state equals the state
 *   the same code builds from the API's Services and EndpointSlices, and the policy engine holds
 *   exactly the API's policies at their current resourceVersions.
 * - No acknowledged write lost: every object the run wrote and the API acknowledged is there with
 *   the data written.
 */
import { cidrContains, formatCidr, mustParseCidr, parseCidr } from "../cluster/addressing.ts";
import type { KubeObjectLike } from "../cluster/kube-client.ts";
import { nodeRecordFrom } from "../cluster/kube-objects.ts";
import type { NodeConvergence } from "../cluster/types.ts";
import { proxyStateOf, proxyStateSummary, type EndpointSliceLike, type ServiceLike } from "../node-agent/proxy/model.ts";

export type Invariant = "addresses" | "convergence" | "objects" | "delivery";

export interface Violation {
  readonly invariant: Invariant;
  /** What it is about: a node, a pod, a Service, an address. */
  readonly subject: string;
  readonly message: string;
}

export interface ClusterObjects {
  readonly nodes: readonly KubeObjectLike[];
  readonly pods: readonly KubeObjectLike[];
  readonly services: readonly KubeObjectLike[];
  readonly endpointSlices: readonly KubeObjectLike[];
  readonly networkPolicies: readonly KubeObjectLike[];
  readonly clusterNetworkPolicies: readonly KubeObjectLike[];
}

const key = (o: KubeObjectLike) => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : (o.metadata.name ?? ""));

/** A pod that holds its IP: not finished, not host-network (those share the node's address). */
function holdsPodIp(p: KubeObjectLike): boolean {
  const phase = p.status?.phase;
  const hostNetwork = (p.spec as { hostNetwork?: unknown } | undefined)?.hostNetwork === true;
  return !hostNetwork && phase !== "Succeeded" && phase !== "Failed" && typeof p.status?.podIP === "string" && p.status.podIP !== "";
}

/** Values held by more than one owner: value -> owners. */
function duplicates(pairs: Iterable<[string, string]>): Map<string, string[]> {
  const by = new Map<string, Set<string>>();
  for (const [value, owner] of pairs) {
    let s = by.get(value);
    if (!s) by.set(value, (s = new Set()));
    s.add(owner);
  }
  return new Map([...by].filter(([, s]) => s.size > 1).map(([v, s]) => [v, [...s].sort()]));
}

export interface AddressCounts {
  readonly podIps: number;
  readonly podCidrs: number;
  readonly clusterIps: number;
  readonly nodePorts: number;
}

export function addressViolations(o: Pick<ClusterObjects, "nodes" | "pods" | "services">): { violations: Violation[]; counts: AddressCounts } {
  const violations: Violation[] = [];
  const podIps = o.pods.filter(holdsPodIp).map((p): [string, string] => [p.status!.podIP!, key(p)]);
  for (const [ip, owners] of duplicates(podIps)) violations.push({ invariant: "addresses", subject: ip, message: `pod IP ${ip} is held by ${owners.length} pods: ${owners.join(", ")}` });

  const cidrs = o.nodes.flatMap((n) => {
    const c = typeof n.spec?.podCIDR === "string" ? parseCidr(n.spec.podCIDR as string) : undefined;
    return c ? [{ node: n.metadata.name ?? "", cidr: c, text: n.spec!.podCIDR as string }] : [];
  });
  for (let i = 0; i < cidrs.length; i++) {
    for (let j = i + 1; j < cidrs.length; j++) {
      const a = cidrs[i]!;
      const b = cidrs[j]!;
      if (cidrContains(a.cidr, b.cidr.network) || cidrContains(b.cidr, a.cidr.network)) {
        violations.push({ invariant: "addresses", subject: a.text, message: `pod CIDRs overlap: ${a.node} has ${a.text}, ${b.node} has ${b.text}` });
      }
    }
  }

  const spec = (s: KubeObjectLike) => (s.spec ?? {}) as { clusterIP?: unknown; clusterIPs?: unknown; ports?: unknown };
  const clusterIps = o.services.flatMap((s): Array<[string, string]> => {
    const ip = spec(s).clusterIP;
    return typeof ip === "string" && ip !== "" && ip !== "None" ? [[ip, key(s)]] : [];
  });
  for (const [ip, owners] of duplicates(clusterIps)) violations.push({ invariant: "addresses", subject: ip, message: `ClusterIP ${ip} is held by ${owners.length} Services: ${owners.join(", ")}` });

  const nodePorts = o.services.flatMap((s): Array<[string, string]> => {
    const ports = Array.isArray(spec(s).ports) ? (spec(s).ports as Array<{ nodePort?: unknown }>) : [];
    return ports.flatMap((p) => (typeof p?.nodePort === "number" && p.nodePort > 0 ? [[String(p.nodePort), key(s)] as [string, string]] : []));
  });
  for (const [port, owners] of duplicates(nodePorts)) violations.push({ invariant: "addresses", subject: port, message: `NodePort ${port} is held by ${owners.length} Services: ${owners.join(", ")}` });

  return { violations, counts: { podIps: podIps.length, podCidrs: cidrs.length, clusterIps: clusterIps.length, nodePorts: new Set(nodePorts.map(([p]) => p)).size } };
}

/** What node `name` should have installed, derived from the API's objects as the node derives it. */
export function expectedConvergence(name: string, o: ClusterObjects): NodeConvergence {
  const peerRoutes = o.nodes
    .filter((n) => n.metadata.name !== name)
    .flatMap((n) => {
      const r = nodeRecordFrom(n as Parameters<typeof nodeRecordFrom>[0]);
      return r ? [r.podCidr] : [];
    })
    // Normalized as the node prints its routes.
    .map((c) => formatCidr(mustParseCidr(c)))
    .sort();
  const pods = o.pods
    .filter((p) => (p.spec as { nodeName?: unknown } | undefined)?.nodeName === name && !p.metadata.deletionTimestamp)
    .map(key)
    .sort();
  const proxy = proxyStateSummary(proxyStateOf(o.services as unknown as ServiceLike[], o.endpointSlices as unknown as EndpointSliceLike[], name));
  const policies: Record<string, string> = {};
  for (const p of o.networkPolicies) policies[`NetworkPolicy/${p.metadata.namespace ?? ""}/${p.metadata.name}`] = p.metadata.resourceVersion ?? "";
  for (const p of o.clusterNetworkPolicies) policies[`ClusterNetworkPolicy//${p.metadata.name}`] = p.metadata.resourceVersion ?? "";
  return { peerRoutes, pods, proxy, policies };
}

function setDiff(want: readonly string[], have: readonly string[]): { missing: string[]; extra: string[] } {
  const w = new Set(want);
  const h = new Set(have);
  return { missing: want.filter((x) => !h.has(x)), extra: have.filter((x) => !w.has(x)) };
}

function list(items: readonly string[], max = 5): string {
  return items.length <= max ? items.join(", ") : `${items.slice(0, max).join(", ")} and ${items.length - max} more`;
}

/** How node `name`'s account differs from what it should have installed (none: converged). */
export function convergenceViolations(name: string, want: NodeConvergence, have: NodeConvergence | undefined, why?: string): Violation[] {
  const v = (message: string): Violation => ({ invariant: "convergence", subject: name, message });
  if (!have) return [v(`${name} did not answer${why ? `: ${why}` : ""}`)];
  const out: Violation[] = [];
  const routes = setDiff(want.peerRoutes, have.peerRoutes);
  if (routes.missing.length > 0) out.push(v(`${name} has no route to ${list(routes.missing)}`));
  if (routes.extra.length > 0) out.push(v(`${name} has stale routes to ${list(routes.extra)}`));
  const pods = setDiff(want.pods, have.pods);
  if (pods.missing.length > 0) out.push(v(`${name} has no network for its pods ${list(pods.missing)}`));
  if (pods.extra.length > 0) out.push(v(`${name} still has a network for pods that are gone or not its own: ${list(pods.extra)}`));
  if (want.proxy.digest !== have.proxy.digest) {
    out.push(v(`${name}'s kube-proxy rules differ from the API's Services and EndpointSlices (node: ${have.proxy.servicePorts} service ports, ${have.proxy.endpoints} endpoints; API: ${want.proxy.servicePorts}, ${want.proxy.endpoints})`));
  }
  const wantPolicies = Object.keys(want.policies).sort();
  const havePolicies = Object.keys(have.policies ?? {}).sort();
  const pol = setDiff(wantPolicies, havePolicies);
  if (pol.missing.length > 0) out.push(v(`${name} does not enforce ${list(pol.missing)}`));
  if (pol.extra.length > 0) out.push(v(`${name} still enforces deleted ${list(pol.extra)}`));
  const stale = wantPolicies.filter((k) => have.policies?.[k] !== undefined && have.policies[k] !== want.policies[k]);
  if (stale.length > 0) out.push(v(`${name} enforces an old version of ${list(stale)}`));
  return out;
}

/** A write the run made and the API acknowledged: the object must be there with this data. */
export interface AcknowledgedWrite {
  readonly key: string;
  readonly data: Record<string, string>;
}

export function lostWrites(acked: readonly AcknowledgedWrite[], present: ReadonlyMap<string, Record<string, string> | undefined>): Violation[] {
  const out: Violation[] = [];
  for (const w of acked) {
    const got = present.get(w.key);
    if (got === undefined) out.push({ invariant: "objects", subject: w.key, message: `${w.key} was acknowledged and is gone` });
    else if (Object.keys(w.data).some((k) => got[k] !== w.data[k])) out.push({ invariant: "objects", subject: w.key, message: `${w.key} was acknowledged with other data than it holds` });
  }
  return out;
}
