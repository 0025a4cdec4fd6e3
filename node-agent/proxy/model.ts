/**
 * kube-proxy's view of the cluster, pure: Services and EndpointSlices become service ports with
 * their endpoints (pkg/proxy/serviceport.go, endpoint.go, endpointslicecache.go), and the change
 * tracker (servicechangetracker.go, endpointschangetracker.go) remembers which service ports
 * changed since the last sync so a backend can recompile only those.
 *
 * Design notes:
 * - Nothing read from the store is trusted: a field of the wrong type is treated as absent, a
 *   Service without an IPv4 ClusterIP (headless, ExternalName, not allocated yet) has no service
 *   ports here (kube-proxy skips them: they get no VIP and no rules).
 * - Endpoints of one service port are merged over its slices by "ip:port"; a duplicate that is
 *   ready wins (endpointslicecache.go addEndpoints), and the result is sorted by IP then port so
 *   every node compiles the same rules from the same state.
 * - Endpoint conditions as EndpointSlice documents them: ready absent = true; serving absent =
 *   ready; terminating absent = false.
 */
import type { Cidr } from "../../cluster/addressing.ts";
import { parseCidr } from "../../cluster/addressing.ts";
import { IpProtocol, formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/index.ts";
import { asArray as arr, asObject as obj, asPort as port, asString as str } from "../../cluster/untrusted.ts";
import { fnv1a32String } from "../../cluster/hash.ts";

export type ProxyMode = "iptables" | "ipvs" | "nftables";
export const PROXY_MODES: readonly ProxyMode[] = ["iptables", "ipvs", "nftables"];

/** The default sessionAffinityConfig.clientIP.timeoutSeconds (v1.DefaultClientIPServiceAffinitySeconds). */
export const DEFAULT_AFFINITY_SECONDS = 10_800;

export interface EndpointInfo {
  ip: Ipv4Addr;
  port: number;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  nodeName: string;
  /** On this node (nodeName equals the proxy's node). */
  isLocal: boolean;
  /** The pod it belongs to ("namespace/name"), for traces; "" when the slice does not say. */
  target: string;
}

export interface ServicePortInfo {
  /** ServicePortName.String(): "namespace/name" plus ":portName" when the port is named. */
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly portName: string;
  /** IpProtocol.TCP or IpProtocol.UDP. */
  readonly protocol: number;
  readonly clusterIP: Ipv4Addr;
  readonly port: number;
  /** 0 when the Service has none. */
  readonly nodePort: number;
  readonly externalIPs: readonly Ipv4Addr[];
  /** status.loadBalancer.ingress[].ip. */
  readonly loadBalancerIPs: readonly Ipv4Addr[];
  readonly loadBalancerSourceRanges: readonly Cidr[];
  /** sessionAffinity ClientIP: its timeout in seconds; undefined for None. */
  readonly affinitySeconds: number | undefined;
  /** externalTrafficPolicy Local (only meaningful when externally accessible). */
  readonly externalPolicyLocal: boolean;
  /** internalTrafficPolicy Local. */
  readonly internalPolicyLocal: boolean;
  /** 0 when none. */
  readonly healthCheckNodePort: number;
  /** Every endpoint of this port, whatever its conditions, sorted by IP then port. */
  readonly endpoints: readonly EndpointInfo[];
}

/** The whole desired state, service ports sorted by id. */
export interface ProxyState {
  readonly servicePorts: readonly ServicePortInfo[];
}

/** What a backend needs to know about the node it programs. */
export interface ProxyNode {
  readonly name: string;
  readonly nodeIp: Ipv4Addr;
  /** The pod network (kube-proxy --cluster-cidr): traffic from outside it to a ClusterIP is masqueraded. */
  readonly clusterCidr: Cidr;
  /** `-m addrtype --dst-type LOCAL` / `fib daddr type local`: an address of the root netns. */
  isLocal(ip: Ipv4Addr): boolean;
}

/** kube-proxy's masquerade mark (--iptables-masquerade-bit 14). */
export const MASQ_MARK = 0x4000;

export function protocolName(protocol: number): "TCP" | "UDP" {
  return protocol === IpProtocol.UDP ? "UDP" : "TCP";
}

/** Reachable from outside the cluster: a NodePort, an external IP or a load-balancer IP (ExternallyAccessible). */
export function externallyAccessible(sp: ServicePortInfo): boolean {
  return sp.nodePort !== 0 || sp.externalIPs.length > 0 || sp.loadBalancerIPs.length > 0;
}

export function externalPolicyLocal(sp: ServicePortInfo): boolean {
  return externallyAccessible(sp) && sp.externalPolicyLocal;
}

/**
 * UsesClusterEndpoints (pkg/proxy/serviceport.go): policy Cluster inside, or any external
 * access at all (even with policy Local, pods and the node short-circuit to cluster endpoints).
 */
export function usesClusterEndpoints(sp: ServicePortInfo): boolean {
  return !sp.internalPolicyLocal || externallyAccessible(sp);
}

/** UsesLocalEndpoints. */
export function usesLocalEndpoints(sp: ServicePortInfo): boolean {
  return sp.internalPolicyLocal || (externallyAccessible(sp) && sp.externalPolicyLocal);
}

export interface Categorized {
  /** Endpoints for Cluster policy: the ready ones, else the serving-terminating ones (KEP-1669). */
  cluster: EndpointInfo[];
  /** Endpoints for Local policy: local ready ones, else local serving-terminating ones. */
  local: EndpointInfo[];
  /** The union of the two that this service uses (rules are written for these). */
  allReachable: EndpointInfo[];
  /** Some endpoint anywhere could serve (decides REJECT vs DROP for Local without local endpoints). */
  hasAnyEndpoints: boolean;
}

/**
 * CategorizeEndpoints (pkg/proxy/topology.go) without topology hints: which endpoints each
 * traffic policy uses. A terminating endpoint that still serves is used only when no ready one
 * is left (KEP-1669 ProxyTerminatingEndpoints).
 */
export function categorize(sp: ServicePortInfo): Categorized {
  let cluster: EndpointInfo[] = [];
  let local: EndpointInfo[] = [];
  let hasAnyEndpoints = false;
  const eps = sp.endpoints;
  if (usesClusterEndpoints(sp)) {
    cluster = eps.filter((e) => e.ready);
    if (cluster.length === 0) cluster = eps.filter((e) => e.serving && e.terminating);
    if (cluster.length > 0) hasAnyEndpoints = true;
  }
  if (!usesLocalEndpoints(sp)) return { cluster, local, allReachable: cluster, hasAnyEndpoints };
  let localReady = false;
  let localTerminating = false;
  for (const e of eps) {
    if (e.ready) {
      hasAnyEndpoints = true;
      if (e.isLocal) localReady = true;
    } else if (e.serving && e.terminating) {
      hasAnyEndpoints = true;
      if (e.isLocal) localTerminating = true;
    }
  }
  if (localReady) local = eps.filter((e) => e.isLocal && e.ready);
  else if (localTerminating) local = eps.filter((e) => e.isLocal && e.serving && e.terminating);
  if (!usesClusterEndpoints(sp)) return { cluster, local, allReachable: local, hasAnyEndpoints };
  const seen = new Set(cluster);
  const allReachable = [...cluster, ...local.filter((e) => !seen.has(e))];
  return { cluster, local, allReachable, hasAnyEndpoints };
}

export function endpointString(e: EndpointInfo): string {
  return `${formatIpv4(e.ip)}:${e.port}`;
}

// ---------------------------------------------------------------------------------------------
// Reading Services and EndpointSlices (untrusted shapes)

/** The parts of a Service and an EndpointSlice the proxy reads; everything optional and unknown. */
export interface ServiceLike {
  metadata: { namespace?: string; name?: string; labels?: Record<string, string> };
  spec?: unknown;
  status?: unknown;
}
export interface EndpointSliceLike {
  metadata: { namespace?: string; name?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
/** Set by the EndpointSlice controller: when the last change behind this slice happened. */
export const TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time";
/** Services with this label are not proxied (service.kubernetes.io/service-proxy-name: another proxy's). */
const SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name";

function protocolOf(v: unknown): number | undefined {
  const p = v === undefined ? "TCP" : v;
  return p === "TCP" ? IpProtocol.TCP : p === "UDP" ? IpProtocol.UDP : undefined;
}
function ipv4(v: unknown): Ipv4Addr | undefined {
  return typeof v === "string" ? parseIpv4Addr(v) : undefined;
}

export function servicePortId(namespace: string, name: string, portName: string): string {
  return `${namespace}/${name}${portName ? `:${portName}` : ""}`;
}

/** The "namespace/name" a Service or EndpointSlice (by its service-name label) belongs to. */
export function serviceKeyOf(o: ServiceLike | EndpointSliceLike, slice: boolean): string | undefined {
  const ns = o.metadata.namespace;
  const name = slice ? o.metadata.labels?.[SERVICE_NAME_LABEL] : o.metadata.name;
  return typeof ns === "string" && typeof name === "string" && name !== "" ? `${ns}/${name}` : undefined;
}

/** The service ports of a Service without endpoints; [] when kube-proxy would not program it. */
export function servicePortsOf(svc: ServiceLike): Omit<ServicePortInfo, "endpoints">[] {
  const spec = obj(svc.spec);
  const namespace = svc.metadata.namespace;
  const name = svc.metadata.name;
  if (!spec || typeof namespace !== "string" || typeof name !== "string") return [];
  if (svc.metadata.labels?.[SERVICE_PROXY_NAME_LABEL] !== undefined) return [];
  if (spec.type === "ExternalName") return [];
  const clusterIP = ipv4(spec.clusterIP);
  if (clusterIP === undefined) return [];
  const status = obj(svc.status);
  const lb = obj(status?.loadBalancer);
  const loadBalancerIPs = spec.type === "LoadBalancer" ? arr(lb?.ingress).map((i) => ipv4(obj(i)?.ip)).filter((ip): ip is number => ip !== undefined) : [];
  const externalIPs = arr(spec.externalIPs).map(ipv4).filter((ip): ip is number => ip !== undefined);
  const ranges = spec.type === "LoadBalancer" ? arr(spec.loadBalancerSourceRanges).map((r) => (typeof r === "string" ? parseCidr(r.trim()) : undefined)).filter((c): c is Cidr => c !== undefined) : [];
  const clientIP = obj(obj(spec.sessionAffinityConfig)?.clientIP);
  const timeout = clientIP?.timeoutSeconds;
  const affinitySeconds = spec.sessionAffinity === "ClientIP" ? (typeof timeout === "number" && timeout >= 1 && timeout <= 86_400 ? timeout : DEFAULT_AFFINITY_SECONDS) : undefined;
  const out: Omit<ServicePortInfo, "endpoints">[] = [];
  for (const raw of arr(spec.ports)) {
    const p = obj(raw);
    const protocol = protocolOf(p?.protocol);
    const number = port(p?.port);
    if (!p || protocol === undefined || number === 0) continue;
    const portName = str(p.name) ?? "";
    out.push({
      id: servicePortId(namespace, name, portName),
      namespace,
      name,
      portName,
      protocol,
      clusterIP,
      port: number,
      nodePort: spec.type === "NodePort" || spec.type === "LoadBalancer" ? port(p.nodePort) : 0,
      externalIPs,
      loadBalancerIPs,
      loadBalancerSourceRanges: ranges,
      affinitySeconds,
      externalPolicyLocal: spec.externalTrafficPolicy === "Local",
      internalPolicyLocal: spec.internalTrafficPolicy === "Local",
      healthCheckNodePort: spec.externalTrafficPolicy === "Local" ? port(spec.healthCheckNodePort) : 0,
    });
  }
  return out;
}

/**
 * The endpoints of one service port from the Service's slices (endpointslicecache.go): ports
 * matched by name and protocol, IPv4 slices only, duplicates merged with ready winning.
 */
export function endpointsOf(portName: string, protocol: number, slices: readonly EndpointSliceLike[], nodeName: string): EndpointInfo[] {
  const byKey = new Map<string, EndpointInfo>();
  const sorted = [...slices].sort((a, b) => ((a.metadata.name ?? "") < (b.metadata.name ?? "") ? -1 : 1));
  for (const slice of sorted) {
    if (slice.addressType !== "IPv4") continue;
    const sp = arr(slice.ports).map(obj).find((p) => p !== undefined && (str(p.name) ?? "") === portName && protocolOf(p.protocol) === protocol);
    const number = port(sp?.port);
    if (number === 0) continue;
    for (const raw of arr(slice.endpoints)) {
      const e = obj(raw);
      const ip = ipv4(arr(e?.addresses)[0]);
      if (!e || ip === undefined) continue;
      const cond = obj(e.conditions);
      const ready = cond?.ready !== false;
      const serving = typeof cond?.serving === "boolean" ? cond.serving : ready;
      const terminating = cond?.terminating === true;
      const node = str(e.nodeName) ?? "";
      const ref = obj(e.targetRef);
      const target = ref && typeof ref.name === "string" ? `${str(ref.namespace) ?? slice.metadata.namespace ?? ""}/${ref.name}` : "";
      const key = `${ip}:${number}`;
      const had = byKey.get(key);
      if (had && !ready) continue;
      byKey.set(key, { ip, port: number, ready, serving, terminating, nodeName: node, isLocal: node !== "" && node === nodeName, target });
    }
  }
  return [...byKey.values()].sort((a, b) => a.ip - b.ip || a.port - b.port);
}

// ---------------------------------------------------------------------------------------------
// The change tracker

/**
 * Services and EndpointSlices as the informers deliver them, and the set of Services changed
 * since the last `take()`. `take()` builds the whole state (cheap: a pass over the objects)
 * and says which service ports changed, so a backend recompiles those alone.
 */
export class ChangeTracker {
  private readonly services = new Map<string, ServiceLike>();
  /** Slices by service key, then by slice name. */
  private readonly slices = new Map<string, Map<string, EndpointSliceLike>>();
  private readonly dirty = new Set<string>();
  /** The service ports of the last take, by service key (for what changed and what went). */
  private built = new Map<string, ServicePortInfo[]>();
  private everything = true;

  constructor(private readonly nodeName: string) {}

  /** A Service was added or changed (`obj`) or deleted (`undefined`). */
  service(key: string, obj: ServiceLike | undefined): void {
    if (obj) this.services.set(key, obj);
    else this.services.delete(key);
    this.dirty.add(key);
  }

  /** An EndpointSlice was added or changed or deleted, by its service's key and its own name. */
  slice(serviceKey: string, sliceName: string, obj: EndpointSliceLike | undefined): void {
    let m = this.slices.get(serviceKey);
    if (obj) {
      if (!m) this.slices.set(serviceKey, (m = new Map()));
      m.set(sliceName, obj);
    } else if (m) {
      m.delete(sliceName);
      if (m.size === 0) this.slices.delete(serviceKey);
    }
    this.dirty.add(serviceKey);
  }

  /**
   * The newest `endpoints.kubernetes.io/last-change-trigger-time` of the service's slices (ms
   * since the epoch): when the change that the slices now reflect happened.
   */
  triggerTime(serviceKey: string): number | undefined {
    let newest: number | undefined;
    for (const s of this.slices.get(serviceKey)?.values() ?? []) {
      const raw = (s.metadata as { annotations?: Record<string, unknown> }).annotations?.[TRIGGER_TIME_ANNOTATION];
      const t = typeof raw === "string" ? Date.parse(raw) : NaN;
      if (Number.isFinite(t) && (newest === undefined || t > newest)) newest = t;
    }
    return newest;
  }

  /** Pending changes exist. */
  get pending(): boolean {
    return this.everything || this.dirty.size > 0;
  }

  /** Forces the next take to report every service port as changed (a full resync). */
  invalidate(): void {
    this.everything = true;
  }

  /**
   * The state now, and the ids of service ports that changed since the last take (added,
   * changed or removed); `changed` is undefined when everything must be recompiled.
   */
  take(): { state: ProxyState; changed: ReadonlySet<string> | undefined; removed: ServicePortInfo[] } {
    const full = this.everything;
    const changed = new Set<string>();
    const removed: ServicePortInfo[] = [];
    const next = full ? new Map<string, ServicePortInfo[]>() : this.built;
    const keys = full ? new Set([...this.services.keys(), ...this.built.keys()]) : this.dirty;
    for (const key of keys) {
      const before = this.built.get(key) ?? [];
      const svc = this.services.get(key);
      const slices = [...(this.slices.get(key)?.values() ?? [])];
      const after = svc ? servicePortsOf(svc).map((p) => ({ ...p, endpoints: endpointsOf(p.portName, p.protocol, slices, this.nodeName) })) : [];
      if (after.length > 0) next.set(key, after);
      else next.delete(key);
      const ids = new Set(after.map((p) => p.id));
      for (const p of before) if (!ids.has(p.id)) removed.push(p);
      for (const p of [...before, ...after]) changed.add(p.id);
    }
    this.built = next;
    this.dirty.clear();
    this.everything = false;
    const servicePorts = [...next.values()].flat().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.protocol - b.protocol));
    return { state: { servicePorts }, changed: full ? undefined : changed, removed };
  }
}

/**
 * The state a node's kube-proxy would build from these objects: the same tracker and the same
 * reading of Services and EndpointSlices the node runs (serviceKeyOf, endpointsOf), so a client
 * can compare what a node installed with what the API holds (`kubewire chaos check`).
 */
export function proxyStateOf(services: readonly ServiceLike[], slices: readonly EndpointSliceLike[], nodeName: string): ProxyState {
  const tracker = new ChangeTracker(nodeName);
  for (const svc of services) {
    const key = serviceKeyOf(svc, false);
    if (key !== undefined) tracker.service(key, svc);
  }
  for (const slice of slices) {
    const key = serviceKeyOf(slice, true);
    if (key !== undefined) tracker.slice(key, slice.metadata.name ?? "", slice);
  }
  return tracker.take().state;
}

export interface ProxyStateSummary {
  readonly servicePorts: number;
  readonly endpoints: number;
  /** FNV-1a over every service port's addresses and its endpoints with their conditions. */
  readonly digest: string;
}

/** A short fingerprint of a proxy state: equal states, equal summaries (node-independent). */
export function proxyStateSummary(state: ProxyState): ProxyStateSummary {
  let endpoints = 0;
  const lines = state.servicePorts.map((sp) => {
    endpoints += sp.endpoints.length;
    const eps = sp.endpoints.map((e) => `${formatIpv4(e.ip)}:${e.port}${e.ready ? "" : "/not-ready"}${e.serving ? "" : "/not-serving"}${e.terminating ? "/terminating" : ""}`);
    return `${sp.id}/${protocolName(sp.protocol)} ${formatIpv4(sp.clusterIP)}:${sp.port} nodePort=${sp.nodePort} -> ${eps.join(",")}`;
  });
  return { servicePorts: state.servicePorts.length, endpoints, digest: fnv1a32String(lines.join("\n")).toString(16).padStart(8, "0") };
}
