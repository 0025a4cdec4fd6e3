/**
 * kube-proxy's ipvs mode (pkg/proxy/ipvs/proxier.go) over the emulated kernel: IPVS virtual
 * servers with the kernel's schedulers (net/netfilter/ipvs/ip_vs_{rr,wrr,lc,wlc,sh,dh,sed,nq}.c),
 * persistence templates for ClientIP affinity (ip_vs_core.c ip_vs_sched_persist), and the small
 * set of iptables rules ipvs mode keeps (KUBE-SERVICES with ipsets, KUBE-POSTROUTING,
 * KUBE-MARK-MASQ, KUBE-NODE-PORT, KUBE-LOAD-BALANCER, KUBE-PROXY-FIREWALL, KUBE-IPVS-FILTER),
 * evaluated as data per packet.
 *
 * Design notes:
 * - Where the kernel does it. IPVS schedules at LOCAL_IN/LOCAL_OUT on VIPs bound to kube-ipvs0;
 *   here the virtual-server hit is a `dnat` verdict at nat PREROUTING/OUTPUT (Priority.DstNat),
 *   which conntrack then binds for every later packet, as IPVS with conntrack=1 does. The
 *   filter rule sets see the translated packet (netfilter.ts), so a packet the filter must
 *   judge by its service address (no real servers, Local policy without local endpoints,
 *   loadBalancerSourceRanges) is left untranslated by the nat set and judged by the filter.
 * - Lookups are hashes on numbers: (address, port<<1|udp) packed in one double, in an
 *   open-addressing table of Float64Array rows; a NodePort is keyed (0, port<<1|udp) and
 *   matches any local destination, as kube-proxy binds a NodePort virtual server on every node
 *   address (loopback excluded: netlinkHandle.isValidForSet). A row also holds the server's
 *   flags, its rr position and where its dests' verdicts sit in a flat pool, so the common
 *   case (rr, weights > 0, no persistence) reads one row, one pool slot and the verdict it
 *   returns: the cost per packet does not depend on the number of services. Nothing on that
 *   path allocates but the first-use entries of bounded tables (templates, connection owners).
 * - Real servers are per virtual server, as struct ip_vs_dest is, with their own weight and
 *   connection counts. New ones are linked at the list head (__ip_vs_update_dest list_add_rcu);
 *   kube-proxy adds them in Go map order, which is unspecified, so a batch is added in
 *   descending (IP, port) order and a fresh list reads ascending, as ipvsadm prints it.
 * - Connection counts: the backend sees only a connection's first packet and its end
 *   (connectionClosed). A TCP connection counts as active from scheduling to close (the kernel
 *   counts it inactive until ESTABLISHED, one round trip later); UDP never leaves
 *   IP_VS_CONN_F_INACTIVE, so it counts as inactive, as ipvsadm shows it.
 * - Partial sync recompiles only the changed service ports; a virtual server that stays keeps
 *   its scheduler position, connection counts and templates, a real server that stays keeps
 *   its weight and counts (syncEndpoint leaves existing destinations alone).
 * - Not modelled: kube-proxy's graceful termination (a removed TCP real server kept at weight 0
 *   until its connections drain), thresholds/overload, the mh scheduler.
 */
import type { Cidr } from "../../cluster/addressing.ts";
import { formatCidr, maskOf } from "../../cluster/addressing.ts";
import { IpProtocol, formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/index.ts";
import { CT_DEFAULT_MAX, type ConnEntry } from "../conntrack.ts";
import { CONTINUE, DropReason, Hook, Priority, type HookContext, type RuleSet, type Verdict } from "../netfilter.ts";
import { CtState, type PacketView } from "../packet.ts";
import type { BackendOptions, DumpTool, IpvsScheduler, ProxyBackend } from "./backend.ts";
import { KeyTable } from "./table.ts";
import { MASQ_MARK, categorize, externalPolicyLocal, type EndpointInfo, type ProxyNode, type ProxyState, type ServicePortInfo } from "./model.ts";

/** Persistence templates per backend (bounded; the oldest by last use is evicted). */
export const MAX_TEMPLATES = 65_536;
/** Connections whose real server is remembered for connectionClosed: conntrack's own bound. */
export const MAX_TRACKED_CONNECTIONS = CT_DEFAULT_MAX;
/** IP_VS_SH_TAB_BITS / IP_VS_DH_TAB_BITS: 256-bucket tables. */
const HASH_TAB_BITS = 8;
const HASH_TAB_SIZE = 1 << HASH_TAB_BITS;
/** include/linux/hash.h GOLDEN_RATIO_32. */
const GOLDEN_RATIO_32 = 0x61c88647;
/** ip_vs_conn_tab_size with CONFIG_IP_VS_TAB_BITS=12, as `ipvsadm -L` prints it. */
const IPVS_CONN_TAB_SIZE = 4096;

/** hash_32(val, bits) (include/linux/hash.h): the multiplicative hash sh and dh bucket with. */
export function hash32(val: number, bits: number): number {
  return Math.imul(val, GOLDEN_RATIO_32) >>> (32 - bits);
}

type VsKind = "ClusterIP" | "ExternalIP" | "LoadBalancer" | "NodePort";
const NO_RANGES: readonly Cidr[] = Object.freeze([]);

/**
 * struct ip_vs_dest: one real server of one virtual server. Fields the packet path reads come
 * first, so they share a cache line.
 */
class RealServer {
  readonly ip: Ipv4Addr;
  weight = 1;
  isLocal: boolean;
  /** The DNAT verdicts, built at sync and reused for every connection. */
  verdict!: DnatVerdict;
  affinityVerdict!: DnatVerdict;
  readonly udp: boolean;
  activeConns = 0;
  inactConns = 0;
  /** Still linked in its virtual server (a removed one keeps answering connectionClosed). */
  alive = true;
  readonly port: number;
  /** "10.244.2.5:8080". */
  readonly name: string;
  constructor(ip: Ipv4Addr, port: number, isLocal: boolean, udp: boolean) {
    this.ip = ip;
    this.isLocal = isLocal;
    this.udp = udp;
    this.port = port;
    this.name = `${formatIpv4(ip)}:${port}`;
  }
}

/** A persistence template (IP_VS_CONN_F_TEMPLATE): client -> real server, on an LRU list. */
class Template {
  vs: VirtualServer | undefined = undefined;
  client = 0;
  rs: RealServer | undefined = undefined;
  last = 0;
  prev: Template | undefined = undefined;
  next: Template | undefined = undefined;
}

/**
 * struct ip_vs_service plus the ipset memberships kube-proxy gives its address and port (the
 * cold side: the packet path reads its hot row in the KeyTable first, see HOT below).
 */
class VirtualServer {
  /** The lookup key: (address, port<<1|udp), or (0, nodePort<<1|udp) for a NodePort. */
  readonly keyA: number;
  readonly keyB: number;
  dests: RealServer[] = [];
  /**
   * rr: svc->sched_data, the list position of the last pick (-1: the list head). While the
   * server is indexed its row holds the live value (R_RR); this copy carries it across rebuilds.
   */
  rrPos = -1;
  /** Row offset in the current KeyTable (-1: not indexed yet). */
  row = -1;
  /** Hot row info (flags | dest count << 8) and the dests' range in the DestPool. */
  info = 0;
  base = -1;
  cap = 0;
  /** ClientIP affinity: svc->timeout in seconds (0: not persistent). */
  persistSeconds = 0;
  sourceRanges: readonly Cidr[] = NO_RANGES;
  /** externalTrafficPolicy Local on an external address with no local endpoint. */
  noLocalForExternal = false;
  /** KUBE-NODE-PORT-{TCP,UDP}, KUBE-EXTERNAL-IP, KUBE-LOAD-BALANCER without -LOCAL: always masquerade. */
  masqAlways = false;
  /** KUBE-CLUSTER-IP: masquerade `! -s clusterCIDR`. */
  masqNonPod = false;
  hasAnyEndpoints = false;
  readonly addr: Ipv4Addr;
  readonly port: number;
  readonly protocol: number;
  readonly udp: boolean;
  // wrr: struct ip_vs_wrr_mark.
  wrrCl = -1;
  wrrCw = 0;
  wrrMw = 0;
  wrrDi = 1;
  /** sh/dh: the 256 buckets. */
  buckets: (RealServer | undefined)[] = [];
  /** Persistence templates by client address (created with the first). */
  templates: Map<number, Template> | undefined = undefined;
  /** KUBE-LOAD-BALANCER-SOURCE-IP: the node may reach the LB IP (a range holds the node IP). */
  allowFromNode = false;
  rejectNoDest: Verdict = CONTINUE;
  dropNoLocal: Verdict = CONTINUE;
  dropFirewall: Verdict = CONTINUE;
  /** "namespace/name:port" of the service port that owns it. */
  owner = "";
  kind: VsKind = "ClusterIP";
  /** What the verdict texts were built for (owner and persistence): rebuilt when it changes. */
  verdictsOwner = "";
  verdictsPersist = -1;
  /** "TCP 10.96.0.12:80", as traces name it. */
  readonly title: string;
  constructor(addr: Ipv4Addr, port: number, protocol: number, nodePort: boolean) {
    this.keyA = nodePort ? 0 : addr >>> 0;
    this.keyB = portKey(port, protocol);
    this.addr = addr;
    this.port = port;
    this.protocol = protocol;
    this.udp = protocol === IpProtocol.UDP;
    this.title = `${this.udp ? "UDP" : "TCP"} ${formatIpv4(addr)}:${port}`;
  }
}

type DnatVerdict = Extract<Verdict, { kind: "dnat" }>;

/*
 * HOT: what the packet path reads for a virtual server, flattened so a lookup and an rr pick
 * touch one row, one pool slot and the verdict they return, whatever the number of services:
 * a row of ROW doubles [key, info, base, rr position] in a KeyTable (table.ts) keyed
 * (keyA, keyB), built whole when servers come or go, and the dests' verdicts in list order in
 * a shared pool at `base`.
 */
const ROW = 4;
const R_INFO = 1;
const R_BASE = 2;
const R_RR = 3;
/** Needs the full path: another scheduler, persistence, or a quiesced (weight 0) dest. */
const F_SLOW = 1;
const F_MASQ_ALWAYS = 2;
const F_MASQ_NONPOD = 4;
const F_NOLOCAL = 8;
const F_RANGES = 16;
/** Some dest is a local endpoint (KUBE-LOOP-BACK may match). */
const F_HAS_LOCAL = 32;

/**
 * The dests of every virtual server in list order, in ranges of power-of-two capacity of flat
 * arrays: their DNAT verdicts, the RealServer objects (for connection counts) and whether each
 * is a local endpoint. Freed ranges are reused by capacity.
 */
class DestPool {
  verdicts: (DnatVerdict | undefined)[] = [];
  dests: (RealServer | undefined)[] = [];
  local = new Uint8Array(64);
  private top = 0;
  private readonly free: number[][] = [];
  static capFor(n: number): number {
    let cap = 1;
    while (cap < n) cap *= 2;
    return cap;
  }
  alloc(cap: number): number {
    const k = Math.log2(cap);
    const reuse = this.free[k]?.pop();
    if (reuse !== undefined) return reuse;
    const base = this.top;
    this.top += cap;
    if (this.top > this.local.length) {
      let size = this.local.length;
      while (size < this.top) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.local);
      this.local = grown;
    }
    return base;
  }
  release(base: number, cap: number): void {
    for (let i = base; i < base + cap; i++) {
      this.verdicts[i] = undefined;
      this.dests[i] = undefined;
    }
    (this.free[Math.log2(cap)] ??= []).push(base);
  }
}

/** The port half of a virtual-server key: port and protocol in one number. */
function portKey(port: number, protocol: number): number {
  return (port << 1) | (protocol === IpProtocol.UDP ? 1 : 0);
}
/** The sync-time identity of a virtual server: NodePorts negative (they have no one address). */
function vsId(kind: VsKind, addr: number, port: number, protocol: number): number {
  const pk = portKey(port, protocol);
  return kind === "NodePort" ? -1 - pk : addr * 131_072 + pk;
}

/** Binary search of endpoints sorted by (IP, port), as model.ts sorts them and categorize keeps them. */
function findEndpoint(eps: readonly EndpointInfo[], ip: number, port: number): EndpointInfo | undefined {
  let lo = 0;
  let hi = eps.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const e = eps[mid]!;
    const c = e.ip - ip || e.port - port;
    if (c === 0) return e;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** The virtual servers a service port owns, and the sync that last saw it. */
interface Owned {
  sp: ServicePortInfo;
  ids: number[];
  generation: number;
}

/** Appends unless the service port already named that address:port (one virtual server). */
function pushSpec(out: VsSpec[], spec: VsSpec): void {
  for (const s of out) if (s.id === spec.id) return;
  out.push(spec);
}

function anyContains(ranges: readonly Cidr[], ip: number): boolean {
  for (const r of ranges) if (((ip & maskOf(r.prefix)) >>> 0) === r.network >>> 0) return true;
  return false;
}

/** One virtual server a service port wants, with the endpoints it gets as real servers. */
interface VsSpec {
  id: number;
  kind: VsKind;
  addr: Ipv4Addr;
  reals: readonly EndpointInfo[];
  /** externalTrafficPolicy Local on an external address and no local endpoint. */
  noLocal: boolean;
  hasAnyEndpoints: boolean;
}

const MASQUERADE: Verdict = { kind: "masquerade", rule: "KUBE-POSTROUTING -j MASQUERADE (kubernetes service traffic requiring SNAT)" };
const IPVS_FILTER_REJECT: Verdict = {
  kind: "reject",
  with: "icmp-port-unreachable",
  rule: "KUBE-IPVS-FILTER --ctstate NEW --match-set KUBE-IPVS-IPS dst -j REJECT (no virtual server on this port)",
};

/** ipvs mode: virtual servers, schedulers, persistence, and the iptables rules it keeps. */
export class IpvsBackend implements ProxyBackend {
  readonly mode = "ipvs" as const;
  readonly scheduler: IpvsScheduler;
  private readonly node: ProxyNode;
  private readonly podNet: number;
  private readonly podMask: number;

  /** Virtual servers by vsId, and which ids each service port owns. */
  private readonly servers = new Map<number, VirtualServer>();
  private readonly owned = new Map<string, Owned>();
  private generation = 0;
  /** The per-packet index (rebuilt when the set of virtual servers changes) and the dest pool. */
  private table = new KeyTable<VirtualServer>(ROW);
  private readonly pool = new DestPool();
  /** KUBE-IPVS-IPS: the addresses bound on kube-ipvs0. */
  private ipvsIps = new Set<number>();
  private indexStale = true;

  /** Persistence templates on one LRU list (head: least recently used), with a free pool. */
  private lruHead: Template | undefined = undefined;
  private lruTail: Template | undefined = undefined;
  private templateCount = 0;
  private readonly templatePool: Template[] = [];

  /** conntrack id -> real server it was scheduled to, and the order ids came in (a ring). */
  private readonly connOwner = new Map<number, RealServer>();
  private connRing: Float64Array | undefined = undefined;
  private connRingPos = 0;

  /** Set by pick(): whether the pick came from a persistence template. */
  private pickedByTemplate = false;
  private readonly sets: readonly RuleSet[];

  constructor(opts: BackendOptions) {
    this.node = opts.node;
    this.scheduler = opts.ipvsScheduler ?? "rr";
    this.podMask = maskOf(opts.node.clusterCidr.prefix);
    this.podNet = opts.node.clusterCidr.network >>> 0;
    const nat = (pkt: PacketView, ctx: HookContext) => this.natEvaluate(pkt, ctx);
    const filter = (pkt: PacketView, ctx: HookContext) => this.filterEvaluate(pkt, ctx);
    const post = (_pkt: PacketView, ctx: HookContext) => this.postrouting(ctx);
    this.sets = [
      { name: "kube-proxy ipvs nat PREROUTING (KUBE-SERVICES)", hook: Hook.Prerouting, priority: Priority.DstNat, nat: true, evaluate: nat },
      { name: "kube-proxy ipvs nat OUTPUT (KUBE-SERVICES)", hook: Hook.Output, priority: Priority.DstNat, nat: true, evaluate: nat },
      { name: "kube-proxy ipvs nat POSTROUTING (KUBE-POSTROUTING)", hook: Hook.Postrouting, priority: Priority.SrcNat, nat: true, evaluate: post },
      { name: "kube-proxy ipvs filter INPUT", hook: Hook.Input, priority: Priority.Filter, evaluate: filter },
      { name: "kube-proxy ipvs filter FORWARD", hook: Hook.Forward, priority: Priority.Filter, evaluate: filter },
      { name: "kube-proxy ipvs filter OUTPUT", hook: Hook.Output, priority: Priority.Filter, evaluate: filter },
    ];
  }

  // -------------------------------------------------------------------------------------------
  // Sync

  sync(state: ProxyState, changed: ReadonlySet<string> | undefined): readonly RuleSet[] {
    const gen = ++this.generation;
    // Which service ports to recompile: all of them (and forget the rest), or the changed ones.
    const sps = changed === undefined ? state.servicePorts : state.servicePorts.filter((sp) => changed.has(sp.id));
    const specs: VsSpec[][] = [];
    for (const sp of sps) specs.push(this.specsOf(sp));
    // First release what each recompiled port no longer wants, so an address moving between
    // services in one sync goes to its new owner.
    for (let i = 0; i < sps.length; i++) {
      const had = this.owned.get(sps[i]!.id);
      if (had === undefined) continue;
      had.generation = gen;
      this.release(had, specs[i]!);
    }
    if (changed === undefined) {
      for (const [id, had] of this.owned) if (had.generation !== gen) this.forget(id, had);
    } else {
      for (const id of changed) {
        const had = this.owned.get(id);
        if (had !== undefined && had.generation !== gen) this.forget(id, had);
      }
    }
    for (let i = 0; i < sps.length; i++) {
      const sp = sps[i]!;
      let entry = this.owned.get(sp.id);
      if (entry === undefined) this.owned.set(sp.id, (entry = { sp, ids: [], generation: gen }));
      entry.sp = sp;
      entry.ids.length = 0;
      for (const spec of specs[i]!) {
        const vs = this.servers.get(spec.id);
        if (vs !== undefined && vs.owner !== sp.id) continue; // another service port holds this address:port
        entry.ids.push(spec.id);
        this.applyServer(vs, spec, sp);
      }
    }
    if (this.indexStale) this.rebuildIndex();
    return this.sets;
  }

  /** Deletes the virtual servers of `had` that `want` no longer names. */
  private release(had: Owned, want: readonly VsSpec[]): void {
    for (const vid of had.ids) {
      let keep = false;
      for (const s of want) if (s.id === vid) keep = true;
      if (!keep) this.deleteServer(vid, had.sp.id);
    }
  }

  private forget(id: string, had: Owned): void {
    for (const vid of had.ids) this.deleteServer(vid, id);
    this.owned.delete(id);
  }

  /** The virtual servers of a service port and their real servers (syncProxyRules, syncEndpoint). */
  private specsOf(sp: ServicePortInfo): VsSpec[] {
    const cat = categorize(sp);
    // ClusterIP: internalTrafficPolicy decides. External addresses with policy Local use the
    // local endpoints, or the cluster ones when there are none so pods and the node itself
    // still reach the service (kubernetes/kubernetes#97081); external clients are dropped.
    const internal = sp.internalPolicyLocal ? cat.local : cat.cluster;
    const local = externalPolicyLocal(sp);
    const noLocal = local && cat.local.length === 0;
    const external = noLocal || !local ? cat.cluster : cat.local;
    const any = cat.hasAnyEndpoints;
    const out: VsSpec[] = [{ id: vsId("ClusterIP", sp.clusterIP, sp.port, sp.protocol), kind: "ClusterIP", addr: sp.clusterIP, reals: internal, noLocal: false, hasAnyEndpoints: any }];
    for (const ip of sp.externalIPs) pushSpec(out, { id: vsId("ExternalIP", ip, sp.port, sp.protocol), kind: "ExternalIP", addr: ip, reals: external, noLocal, hasAnyEndpoints: any });
    for (const ip of sp.loadBalancerIPs) pushSpec(out, { id: vsId("LoadBalancer", ip, sp.port, sp.protocol), kind: "LoadBalancer", addr: ip, reals: external, noLocal, hasAnyEndpoints: any });
    if (sp.nodePort !== 0) pushSpec(out, { id: vsId("NodePort", 0, sp.nodePort, sp.protocol), kind: "NodePort", addr: this.node.nodeIp, reals: external, noLocal, hasAnyEndpoints: any });
    return out;
  }

  private applyServer(existing: VirtualServer | undefined, spec: VsSpec, sp: ServicePortInfo): void {
    const port = spec.kind === "NodePort" ? sp.nodePort : sp.port;
    let vs = existing;
    if (!vs) {
      vs = new VirtualServer(spec.addr, port, sp.protocol, spec.kind === "NodePort");
      this.servers.set(spec.id, vs);
      this.indexStale = true;
    }
    if (vs.kind !== spec.kind) this.indexStale = true;
    vs.owner = sp.id;
    vs.kind = spec.kind;
    const external = spec.kind !== "ClusterIP";
    vs.masqNonPod = !external;
    vs.masqAlways = external && !externalPolicyLocal(sp);
    vs.noLocalForExternal = spec.noLocal;
    vs.hasAnyEndpoints = spec.hasAnyEndpoints;
    vs.sourceRanges = spec.kind === "LoadBalancer" ? sp.loadBalancerSourceRanges : NO_RANGES;
    vs.allowFromNode = vs.sourceRanges.length > 0 && anyContains(vs.sourceRanges, this.node.nodeIp);
    const persist = sp.affinitySeconds ?? 0;
    if (persist !== vs.persistSeconds) {
      if (persist === 0) this.dropTemplates(vs, undefined);
      vs.persistSeconds = persist;
    }
    if (vs.verdictsOwner !== sp.id || vs.verdictsPersist !== persist) {
      const t = vs.title;
      vs.verdictsOwner = sp.id;
      vs.verdictsPersist = persist;
      vs.rejectNoDest = { kind: "reject", with: "icmp-port-unreachable", rule: `ipvs ${t} ${this.scheduler}: no destination available (${sp.id})`, reason: DropReason.NoEndpoints };
      vs.dropNoLocal = { kind: "drop", reason: DropReason.Rule, rule: `ipvs ${t} (${sp.id}) has no local endpoints` };
      vs.dropFirewall = { kind: "drop", reason: DropReason.Rule, rule: `KUBE-SOURCE-RANGES-FIREWALL ${t} (${sp.id}) source not in loadBalancerSourceRanges -j DROP` };
      for (const rs of vs.dests) this.buildVerdicts(vs, rs, sp.id);
    }
    this.applyDests(vs, spec.reals, sp.id);
    this.publish(vs);
  }

  /** Writes a virtual server's hot side: its dests into the pool, its flags into its row. */
  private publish(vs: VirtualServer): void {
    const n = vs.dests.length;
    const pool = this.pool;
    if (n > vs.cap || (vs.cap > 4 && n * 4 <= vs.cap)) {
      if (vs.base >= 0) pool.release(vs.base, vs.cap);
      vs.cap = DestPool.capFor(Math.max(n, 1));
      vs.base = pool.alloc(vs.cap);
    }
    let flags = this.scheduler === "rr" && vs.persistSeconds === 0 ? 0 : F_SLOW;
    for (let i = 0; i < vs.cap; i++) {
      const d = vs.dests[i];
      pool.verdicts[vs.base + i] = d?.verdict;
      pool.dests[vs.base + i] = d;
      pool.local[vs.base + i] = d?.isLocal ? 1 : 0;
      if (d === undefined) continue;
      if (d.weight <= 0) flags |= F_SLOW;
      if (d.isLocal) flags |= F_HAS_LOCAL;
    }
    if (vs.masqAlways) flags |= F_MASQ_ALWAYS;
    if (vs.masqNonPod) flags |= F_MASQ_NONPOD;
    if (vs.noLocalForExternal) flags |= F_NOLOCAL;
    if (vs.sourceRanges.length > 0) flags |= F_RANGES;
    vs.info = flags | (n << 8);
    if (vs.row >= 0) {
      this.table.rows[vs.row + R_INFO] = vs.info;
      this.table.rows[vs.row + R_BASE] = vs.base;
    }
  }

  /** rr's position: in the row while indexed, else in the server. */
  private rrGet(vs: VirtualServer): number {
    return vs.row >= 0 ? this.table.rows[vs.row + R_RR]! : vs.rrPos;
  }
  private rrSet(vs: VirtualServer, pos: number): void {
    if (vs.row >= 0) this.table.rows[vs.row + R_RR] = pos;
    else vs.rrPos = pos;
  }

  private buildVerdicts(vs: VirtualServer, rs: RealServer, owner: string): void {
    const t = vs.title;
    rs.verdict = { kind: "dnat", addr: rs.ip, port: rs.port, rule: `ipvs ${t} ${this.scheduler} -> ${rs.name} (${owner})` };
    rs.affinityVerdict = { kind: "dnat", addr: rs.ip, port: rs.port, rule: `ipvs ${t} persistent ${vs.persistSeconds} -> ${rs.name} (affinity)` };
  }

  /** syncEndpoint: delete the real servers that went, add the new ones (weight 1). */
  private applyDests(vs: VirtualServer, reals: readonly EndpointInfo[], owner: string): void {
    for (let i = vs.dests.length - 1; i >= 0; i--) {
      const d = vs.dests[i]!;
      const e = findEndpoint(reals, d.ip, d.port);
      if (e !== undefined) d.isLocal = e.isLocal;
      else this.delDest(vs, i);
    }
    if (vs.dests.length === reals.length) return;
    let present: Set<number> | undefined;
    if (vs.dests.length > 0) {
      present = new Set();
      for (const d of vs.dests) present.add(d.ip * 65_536 + d.port);
    }
    // Descending, each linked at the head: a fresh list reads ascending.
    for (let i = reals.length - 1; i >= 0; i--) {
      const e = reals[i]!;
      if (present?.has(e.ip * 65_536 + e.port)) continue;
      const rs = new RealServer(e.ip, e.port, e.isLocal, vs.udp);
      this.buildVerdicts(vs, rs, owner);
      this.addDest(vs, rs);
    }
  }

  /** ip_vs_add_dest: linked at the list head; the scheduler's add_dest hook. */
  private addDest(vs: VirtualServer, rs: RealServer): void {
    vs.dests.unshift(rs);
    const pos = this.rrGet(vs);
    if (pos >= 0) this.rrSet(vs, pos + 1); // rr's sched_data still points at the same dest
    this.destChanged(vs, "add");
  }

  /** ip_vs_del_dest: unlinked; its templates expire (ip_vs_check_template). */
  private delDest(vs: VirtualServer, i: number): void {
    const rs = vs.dests[i]!;
    rs.alive = false;
    vs.dests.splice(i, 1);
    // ip_vs_rr_del_dest: a pointer at the removed dest moves to the one before it.
    const pos = this.rrGet(vs);
    if (pos >= i) this.rrSet(vs, pos - 1);
    this.dropTemplates(vs, rs);
    this.destChanged(vs, "del");
  }

  /** The add_dest/del_dest/upd_dest hooks of wrr (ip_vs_wrr_dest_changed), sh, dh (reassign). */
  private destChanged(vs: VirtualServer, op: "add" | "del" | "upd"): void {
    switch (this.scheduler) {
      case "wrr": {
        let g = 0;
        let max = 0;
        for (const d of vs.dests) {
          if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
          if (d.weight > max) max = d.weight;
        }
        vs.wrrCl = -1;
        vs.wrrDi = g || 1;
        vs.wrrMw = max - (vs.wrrDi - 1);
        if (vs.wrrCw > vs.wrrMw || vs.wrrCw === 0) vs.wrrCw = vs.wrrMw;
        else if (vs.wrrDi > 1) vs.wrrCw = Math.trunc(vs.wrrCw / vs.wrrDi) * vs.wrrDi + 1;
        return;
      }
      case "sh":
        return this.reassign(vs, true);
      case "dh":
        // ip_vs_dh_scheduler has no upd_dest: a weight change leaves the buckets alone.
        if (op !== "upd") this.reassign(vs, false);
        return;
      default:
        return;
    }
  }

  /**
   * ip_vs_sh_reassign / ip_vs_dh_reassign: the 256 buckets take the dests round the list, sh
   * giving each as many consecutive buckets as its weight (a weight-0 dest still takes one).
   */
  private reassign(vs: VirtualServer, weighted: boolean): void {
    const b = vs.buckets;
    b.length = HASH_TAB_SIZE;
    const n = vs.dests.length;
    let p = 0;
    let count = 0;
    for (let i = 0; i < HASH_TAB_SIZE; i++) {
      if (n === 0) {
        b[i] = undefined;
        continue;
      }
      const d = vs.dests[p]!;
      b[i] = d;
      if (!weighted || ++count >= d.weight) {
        p = (p + 1) % n;
        count = 0;
      }
    }
  }

  private deleteServer(id: number, owner: string): void {
    const vs = this.servers.get(id);
    if (!vs || vs.owner !== owner) return;
    for (const d of vs.dests) d.alive = false;
    this.dropTemplates(vs, undefined);
    if (vs.base >= 0) this.pool.release(vs.base, vs.cap);
    this.servers.delete(id);
    this.indexStale = true;
  }

  private rebuildIndex(): void {
    const table = new KeyTable<VirtualServer>(ROW, 0.5, this.servers.size);
    const ips = new Set<number>();
    for (const vs of this.servers.values()) {
      vs.rrPos = this.rrGet(vs); // out of the old row
      const o = table.set(vs.keyA, vs.keyB, vs);
      vs.row = o;
      table.rows[o + R_INFO] = vs.info;
      table.rows[o + R_BASE] = vs.base;
      table.rows[o + R_RR] = vs.rrPos;
      // kube-proxy binds a VIP on kube-ipvs0 unless a node interface already has it.
      if (vs.kind === "ClusterIP" || (vs.kind !== "NodePort" && !this.node.isLocal(vs.addr))) ips.add(vs.addr | 0);
    }
    this.table = table;
    this.ipvsIps = ips;
    this.indexStale = false;
  }

  // -------------------------------------------------------------------------------------------
  // Per packet

  private inCidr(c: Cidr, ip: number): boolean {
    return ((ip & maskOf(c.prefix)) >>> 0) === c.network >>> 0;
  }
  private isPod(ip: number): boolean {
    return ((ip & this.podMask) >>> 0) === this.podNet;
  }
  /** Neither a pod (`-s clusterCIDR`) nor the node itself (`--src-type LOCAL`). */
  private isExternalSource(ip: number): boolean {
    return !this.isPod(ip) && !this.node.isLocal(ip);
  }

  /**
   * __ip_vs_service_find: the row of (address, port, protocol), else of a NodePort when the
   * destination is a local address; -1 when none.
   */
  private lookup(pkt: PacketView, protocol: number): number {
    const pk = portKey(pkt.dport, protocol);
    const o = this.table.findDst(pkt, pk);
    if (o >= 0) return o;
    const np = this.table.find(0, pk);
    const d = pkt.dst >>> 0;
    return np >= 0 && d >>> 24 !== 127 && this.node.isLocal(d) ? np : -1;
  }

  /** KUBE-LOAD-BALANCER-FW: a source-range-limited LB address lets this source in. */
  private firewallAllows(vs: VirtualServer, src: number): boolean {
    const ranges = vs.sourceRanges;
    for (let i = 0; i < ranges.length; i++) if (this.inCidr(ranges[i]!, src)) return true;
    // KUBE-LOAD-BALANCER-SOURCE-IP (lbIP,port,lbIP): the node reaching its own LB address.
    return vs.allowFromNode && src === vs.addr;
  }

  /** nat PREROUTING/OUTPUT: the virtual-server hit, its scheduler, and the masquerade marks. */
  private natEvaluate(pkt: PacketView, ctx: HookContext): Verdict {
    const protocol = pkt.proto;
    if (protocol !== IpProtocol.TCP && protocol !== IpProtocol.UDP) return CONTINUE;
    const o = this.lookup(pkt, protocol);
    if (o < 0) return CONTINUE;
    const rows = this.table.rows;
    const info = rows[o + R_INFO]!;
    const n = info >>> 8;
    // No real server: left untranslated for the filter (ip_vs_leave's ICMP port unreachable).
    if (n === 0) return CONTINUE;
    const flags = info & 0xff;
    const src = pkt.src >>> 0;
    let verdict: DnatVerdict;
    if ((flags & (F_SLOW | F_RANGES | F_NOLOCAL)) === 0) {
      // ip_vs_rr_schedule with every weight > 0: the dest after the last pick.
      let pos = rows[o + R_RR]! + 1;
      if (pos >= n) pos = 0;
      rows[o + R_RR] = pos;
      const at = rows[o + R_BASE]! + pos;
      verdict = this.pool.verdicts[at]!;
      if (ctx.ct !== undefined) this.count(this.pool.dests[at]!, ctx.ct);
      // KUBE-LOOP-BACK (local endpoint ip,port,ip: dst,dst,src) in KUBE-POSTROUTING: a pod
      // reaching itself is masqueraded so the reply comes back through the node.
      if ((flags & F_HAS_LOCAL) !== 0 && this.pool.local[at] === 1 && verdict.addr === src) ctx.mark |= MASQ_MARK;
    } else {
      const vs = this.table.at(o)!;
      // Left untranslated for the filter to judge by the service address.
      if ((flags & F_RANGES) !== 0 && !this.firewallAllows(vs, src)) return CONTINUE;
      if ((flags & F_NOLOCAL) !== 0 && this.isExternalSource(src)) return CONTINUE;
      const rs = this.pick(vs, pkt, ctx);
      // ip_vs_schedule found nothing (all quiesced): ip_vs_leave answers ICMP port unreachable.
      if (rs === undefined) return vs.rejectNoDest;
      if (rs.isLocal && rs.ip === src) ctx.mark |= MASQ_MARK;
      verdict = this.pickedByTemplate ? rs.affinityVerdict : rs.verdict;
    }
    // KUBE-SERVICES `-s 127.0.0.0/8 -j RETURN` comes before every KUBE-MARK-MASQ jump.
    if (src >>> 24 !== 127 && ((flags & F_MASQ_ALWAYS) !== 0 || ((flags & F_MASQ_NONPOD) !== 0 && !this.isPod(src)))) ctx.mark |= MASQ_MARK;
    return verdict;
  }

  /** KUBE-POSTROUTING: `! --mark` RETURN, `--xor-mark`, MASQUERADE. */
  private postrouting(ctx: HookContext): Verdict {
    if ((ctx.mark & MASQ_MARK) === 0) return CONTINUE;
    ctx.mark ^= MASQ_MARK;
    return MASQUERADE;
  }

  /**
   * filter INPUT/FORWARD/OUTPUT, new connections: KUBE-PROXY-FIREWALL (source ranges), the
   * Local-policy drop, ip_vs_leave's ICMP port unreachable for a virtual server without real
   * servers, and KUBE-IPVS-FILTER for other ports on a VIP.
   */
  private filterEvaluate(pkt: PacketView, ctx: HookContext): Verdict {
    if (ctx.ctState !== CtState.New) return CONTINUE;
    const protocol = pkt.proto;
    if (protocol !== IpProtocol.TCP && protocol !== IpProtocol.UDP) return CONTINUE;
    const o = this.lookup(pkt, protocol);
    if (o < 0) return this.ipvsIps.has(pkt.dst | 0) ? IPVS_FILTER_REJECT : CONTINUE;
    const vs = this.table.at(o)!;
    const src = pkt.src >>> 0;
    if (vs.sourceRanges.length > 0 && !this.firewallAllows(vs, src)) return vs.dropFirewall;
    if (vs.noLocalForExternal && vs.hasAnyEndpoints && this.isExternalSource(src)) return vs.dropNoLocal;
    if (vs.dests.length === 0) return vs.rejectNoDest;
    return CONTINUE;
  }

  /** ip_vs_schedule with persistence (ip_vs_sched_persist): a live template, else the scheduler. */
  private pick(vs: VirtualServer, pkt: PacketView, ctx: HookContext): RealServer | undefined {
    this.pickedByTemplate = false;
    let rs: RealServer | undefined;
    if (vs.persistSeconds > 0) {
      const client = pkt.src | 0;
      const t = vs.templates?.get(client);
      if (t !== undefined) {
        const r = t.rs!;
        // ip_vs_check_template: a removed or quiesced dest expires its templates
        // (kube-proxy sets net/ipv4/vs/expire_quiescent_template=1).
        if (ctx.now - t.last < vs.persistSeconds * 1000 && r.alive && r.weight > 0) {
          t.last = ctx.now;
          this.lruTouch(t);
          this.pickedByTemplate = true;
          rs = r;
        } else this.removeTemplate(t);
      }
      if (rs === undefined) {
        rs = this.schedule(vs, pkt);
        if (rs === undefined) return undefined;
        this.addTemplate(vs, client, rs, ctx.now);
      }
    } else {
      rs = this.schedule(vs, pkt);
      if (rs === undefined) return undefined;
    }
    this.count(rs, ctx.ct);
    return rs;
  }

  private schedule(vs: VirtualServer, pkt: PacketView): RealServer | undefined {
    switch (this.scheduler) {
      case "rr":
        return this.scheduleRr(vs);
      case "wrr":
        return scheduleWrr(vs);
      case "lc":
        return scheduleLc(vs);
      case "wlc":
        return scheduleWeighted(vs, false);
      case "sed":
        return scheduleWeighted(vs, true);
      case "nq":
        return scheduleNq(vs);
      case "sh":
        return scheduleHashed(vs, pkt.src >>> 0);
      case "dh":
        return scheduleHashed(vs, pkt.dst >>> 0);
    }
  }

  /**
   * ip_vs_rr_schedule: from the dest after the last pick round the list (the head skipped)
   * back to the last pick itself, the first with weight > 0.
   */
  private scheduleRr(vs: VirtualServer): RealServer | undefined {
    const n = vs.dests.length;
    const last = this.rrGet(vs);
    for (let k = 0; k < n; k++) {
      const i = (last + 1 + k) % n;
      const d = vs.dests[i]!;
      if (d.weight > 0) {
        this.rrSet(vs, i);
        return d;
      }
    }
    return undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Connection counts

  /** ip_vs_bind_dest: a new connection counts on its real server until connectionClosed. */
  private count(rs: RealServer, ct: ConnEntry | undefined): void {
    if (ct === undefined) return;
    const id = ct.id;
    const prev = this.connOwner.get(id);
    if (prev === rs) return;
    if (prev !== undefined) release(prev);
    else this.ringPush(id);
    this.connOwner.set(id, rs);
    if (rs.udp) rs.inactConns++;
    else rs.activeConns++;
  }

  /** Remembers arrival order; at the bound the oldest id still tracked is forgotten as closed. */
  private ringPush(id: number): void {
    const ring = (this.connRing ??= new Float64Array(MAX_TRACKED_CONNECTIONS).fill(-1));
    const old = ring[this.connRingPos]!;
    if (old >= 0) {
      const rs = this.connOwner.get(old);
      if (rs !== undefined) {
        this.connOwner.delete(old);
        release(rs);
      }
    }
    ring[this.connRingPos] = id;
    this.connRingPos = (this.connRingPos + 1) % MAX_TRACKED_CONNECTIONS;
  }

  connectionClosed(entry: ConnEntry): void {
    const rs = this.connOwner.get(entry.id);
    if (rs === undefined) return;
    this.connOwner.delete(entry.id);
    release(rs);
  }

  // -------------------------------------------------------------------------------------------
  // Persistence templates

  private addTemplate(vs: VirtualServer, client: number, rs: RealServer, now: number): void {
    // Expire lazily from the cold end, then hold the bound by evicting the least recently used.
    for (let i = 0; i < 2; i++) {
      const h = this.lruHead;
      if (h === undefined || now - h.last < h.vs!.persistSeconds * 1000) break;
      this.removeTemplate(h);
    }
    if (this.templateCount >= MAX_TEMPLATES) this.removeTemplate(this.lruHead!);
    const t = this.templatePool.pop() ?? new Template();
    t.vs = vs;
    t.client = client;
    t.rs = rs;
    t.last = now;
    t.prev = this.lruTail;
    t.next = undefined;
    if (this.lruTail) this.lruTail.next = t;
    else this.lruHead = t;
    this.lruTail = t;
    this.templateCount++;
    (vs.templates ??= new Map()).set(client, t);
  }

  private lruTouch(t: Template): void {
    if (this.lruTail === t) return;
    this.unlink(t);
    t.prev = this.lruTail;
    t.next = undefined;
    if (this.lruTail) this.lruTail.next = t;
    else this.lruHead = t;
    this.lruTail = t;
  }

  private unlink(t: Template): void {
    if (t.prev) t.prev.next = t.next;
    else this.lruHead = t.next;
    if (t.next) t.next.prev = t.prev;
    else this.lruTail = t.prev;
    t.prev = t.next = undefined;
  }

  private removeTemplate(t: Template): void {
    this.unlink(t);
    t.vs!.templates!.delete(t.client);
    this.templateCount--;
    t.vs = undefined;
    t.rs = undefined;
    if (this.templatePool.length < 1024) this.templatePool.push(t);
  }

  /** Drops a virtual server's templates (all, or those pointing at `rs`). */
  private dropTemplates(vs: VirtualServer, rs: RealServer | undefined): void {
    if (vs.templates === undefined) return;
    for (const t of [...vs.templates.values()]) if (rs === undefined || t.rs === rs) this.removeTemplate(t);
  }

  // -------------------------------------------------------------------------------------------
  // Tools

  /**
   * `ipvsadm -e -t|-u vip:port -r rip:port -w weight`: kube-proxy always writes weight 1, so
   * this is for tests and operators; the scheduler's upd_dest hook runs as in the kernel.
   */
  setWeight(protocol: "TCP" | "UDP", service: string, real: string, weight: number): boolean {
    const vs = this.findServer(protocol, service);
    const rs = vs?.dests.find((d) => d.name === real);
    if (!vs || !rs || !Number.isInteger(weight) || weight < 0) return false;
    rs.weight = weight;
    this.destChanged(vs, "upd");
    this.publish(vs);
    return true;
  }

  private findServer(protocol: "TCP" | "UDP", service: string): VirtualServer | undefined {
    const m = /^(.+):(\d+)$/.exec(service);
    const ip = m ? parseIpv4Addr(m[1]!) : undefined;
    if (!m || ip === undefined) return undefined;
    const proto = protocol === "UDP" ? IpProtocol.UDP : IpProtocol.TCP;
    for (const vs of this.servers.values()) if (vs.addr === ip && vs.port === Number(m[2]) && vs.protocol === proto) return vs;
    return undefined;
  }

  dump(tool: DumpTool, args: readonly string[]): string | undefined {
    if (tool === "ipvsadm") return this.ipvsadm(args);
    if (tool === "iptables-save") return this.iptablesSave(args);
    return undefined;
  }

  /** `ipvsadm -Ln` (or `-Ln -t|-u vip:port`), as ipvsadm.c list_all/list_service print. */
  private ipvsadm(args: readonly string[]): string {
    let only: { protocol: "TCP" | "UDP"; service: string } | undefined;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if ((a === "-t" || a === "--tcp-service" || a === "-u" || a === "--udp-service") && args[i + 1] !== undefined) {
        only = { protocol: a === "-t" || a === "--tcp-service" ? "TCP" : "UDP", service: args[++i]! };
      }
    }
    const title = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
    if (only) {
      const vs = this.findServer(only.protocol, only.service);
      return vs ? title + this.serviceEntry(vs) : "No such service\n";
    }
    // ipvs_cmp_services: protocol, address, port (as unsigned: ipvsadm's int difference of two
    // addresses wraps beyond 2^31, an order no reader expects, so the plain order is used).
    const all = [...this.servers.values()].sort((a, b) => a.protocol - b.protocol || a.addr - b.addr || a.port - b.port);
    let out = `IP Virtual Server version 1.2.1 (size=${IPVS_CONN_TAB_SIZE})\n${title}`;
    for (const vs of all) out += this.serviceEntry(vs);
    return out;
  }

  /** print_service_entry without FMT_RULE/STATS: `%-4s %s` cut at 33, then the dests. */
  private serviceEntry(vs: VirtualServer): string {
    const name = `${(vs.udp ? "UDP" : "TCP").padEnd(4)} ${formatIpv4(vs.addr)}:${vs.port}`.slice(0, 33);
    let out = `${name} ${this.scheduler}${vs.persistSeconds > 0 ? ` persistent ${vs.persistSeconds}` : ""}\n`;
    const dests = [...vs.dests].sort((a, b) => a.ip - b.ip || a.port - b.port);
    for (const d of dests) {
      // "  -> %-28s %-7s %-6d %-10u %-10u\n"
      out += `  -> ${d.name.slice(0, 28).padEnd(28)} ${"Masq".padEnd(7)} ${String(d.weight).padEnd(6)} ${String(d.activeConns).padEnd(10)} ${String(d.inactConns).padEnd(10)}\n`;
    }
    return out;
  }

  /**
   * `iptables-save` of the nat and filter rules ipvs mode writes (writeIptablesRules,
   * createAndLinkKubeChain), in iptables-save's form: built-in chains then the others by
   * name, `-s`/`-p` before matches, marks as --set-xmark.
   */
  private iptablesSave(args: readonly string[]): string {
    let table: string | undefined;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if ((a === "-t" || a === "--table") && args[i + 1] !== undefined) table = args[++i];
      else if (a.startsWith("--table=")) table = a.slice(8);
    }
    const sets = this.ipsetMembership();
    const mark = `0x${MASQ_MARK.toString(16)}`;
    const c = (text: string) => `-m comment --comment ${saveString(text)}`;
    const set = (name: string, match: string) => `-m set --match-set ${name} ${match}`;
    const nat: Record<string, string[]> = {
      PREROUTING: [`${c("kubernetes service portals")} -j KUBE-SERVICES`],
      INPUT: [],
      OUTPUT: [`${c("kubernetes service portals")} -j KUBE-SERVICES`],
      POSTROUTING: [`${c("kubernetes postrouting rules")} -j KUBE-POSTROUTING`],
      "KUBE-LOAD-BALANCER": [],
      "KUBE-MARK-MASQ": [`-j MARK --set-xmark ${mark}/${mark}`],
      "KUBE-NODE-PORT": [],
      "KUBE-POSTROUTING": [],
      "KUBE-SERVICES": [`-s 127.0.0.0/8 -j RETURN`],
    };
    const filter: Record<string, string[]> = {
      INPUT: [
        `${c("kubernetes ipvs access filter")} -j KUBE-IPVS-FILTER`,
        `${c("kube-proxy firewall rules")} -j KUBE-PROXY-FIREWALL`,
        `${c("kubernetes health check rules")} -j KUBE-NODE-PORT`,
      ],
      FORWARD: [`${c("kube-proxy firewall rules")} -j KUBE-PROXY-FIREWALL`, `${c("kubernetes forwarding rules")} -j KUBE-FORWARD`],
      OUTPUT: [`${c("kubernetes ipvs access filter")} -j KUBE-IPVS-OUT-FILTER`],
      "KUBE-FORWARD": [],
      "KUBE-IPVS-FILTER": [],
      "KUBE-IPVS-OUT-FILTER": [],
      "KUBE-NODE-PORT": [],
      "KUBE-PROXY-FIREWALL": [],
      "KUBE-SOURCE-RANGES-FIREWALL": [],
    };
    // ipsetWithIptablesChain, in its order, for the sets that have entries.
    if (sets.loopBack) nat["KUBE-POSTROUTING"]!.push(`${c(COMMENT.loopBack)} ${set("KUBE-LOOP-BACK", "dst,dst,src")} -j MASQUERADE`);
    if (sets.lb) nat["KUBE-SERVICES"]!.push(`${c(COMMENT.lb)} ${set("KUBE-LOAD-BALANCER", "dst,dst")} -j KUBE-LOAD-BALANCER`);
    if (sets.lbLocal) nat["KUBE-LOAD-BALANCER"]!.push(`${c(COMMENT.lbLocal)} ${set("KUBE-LOAD-BALANCER-LOCAL", "dst,dst")} -j RETURN`);
    for (const p of ["TCP", "UDP"] as const) {
      const lp = p.toLowerCase();
      if (sets.nodePortLocal[p]) nat["KUBE-NODE-PORT"]!.push(`-p ${lp} ${c(`Kubernetes nodeport ${p} port with externalTrafficPolicy=local`)} ${set(`KUBE-NODE-PORT-LOCAL-${p}`, "dst")} -j RETURN`);
      if (sets.nodePort[p]) nat["KUBE-NODE-PORT"]!.push(`-p ${lp} ${c(`Kubernetes nodeport ${p} port for masquerade purpose`)} ${set(`KUBE-NODE-PORT-${p}`, "dst")} -j KUBE-MARK-MASQ`);
    }
    if (sets.lbFw) filter["KUBE-PROXY-FIREWALL"]!.push(`${c(COMMENT.lbFw)} ${set("KUBE-LOAD-BALANCER-FW", "dst,dst")} -j KUBE-SOURCE-RANGES-FIREWALL`);
    if (sets.lbSourceCidr) filter["KUBE-SOURCE-RANGES-FIREWALL"]!.push(`${c(COMMENT.lbSourceCidr)} ${set("KUBE-LOAD-BALANCER-SOURCE-CIDR", "dst,dst,src")} -j RETURN`);
    if (sets.lbSourceIp) filter["KUBE-SOURCE-RANGES-FIREWALL"]!.push(`${c(COMMENT.lbSourceIp)} ${set("KUBE-LOAD-BALANCER-SOURCE-IP", "dst,dst,src")} -j RETURN`);
    const svc = nat["KUBE-SERVICES"]!;
    if (sets.clusterIp) svc.push(`! -s ${formatCidr(this.node.clusterCidr)} ${c(COMMENT.clusterIp)} ${set("KUBE-CLUSTER-IP", "dst,dst")} -j KUBE-MARK-MASQ`);
    const externalIpRules = (comment: string, name: string) => {
      svc.push(`${c(comment)} ${set(name, "dst,dst")} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`);
      svc.push(`${c(comment)} ${set(name, "dst,dst")} -m addrtype --dst-type LOCAL -j ACCEPT`);
    };
    if (sets.externalIp) {
      svc.push(`${c(COMMENT.externalIp)} ${set("KUBE-EXTERNAL-IP", "dst,dst")} -j KUBE-MARK-MASQ`);
      externalIpRules(COMMENT.externalIp, "KUBE-EXTERNAL-IP");
    }
    if (sets.externalIpLocal) externalIpRules(COMMENT.externalIpLocal, "KUBE-EXTERNAL-IP-LOCAL");
    svc.push(`-m addrtype --dst-type LOCAL -j KUBE-NODE-PORT`);
    nat["KUBE-LOAD-BALANCER"]!.push(`-j KUBE-MARK-MASQ`);
    filter["KUBE-SOURCE-RANGES-FIREWALL"]!.push(`-j DROP`);
    for (const e of sets.lbNoNodeAccess) {
      filter["KUBE-IPVS-OUT-FILTER"]!.push(`-s ${e.ip}/32 -m ipvs --vaddr ${e.ip}/32 --vproto ${e.protocol} --vport ${e.port} -j DROP`);
    }
    // acceptIPVSTraffic: the last rules of KUBE-SERVICES.
    if (sets.clusterIp) svc.push(`${set("KUBE-CLUSTER-IP", "dst,dst")} -j ACCEPT`);
    if (sets.lb) svc.push(`${set("KUBE-LOAD-BALANCER", "dst,dst")} -j ACCEPT`);
    filter["KUBE-FORWARD"]!.push(
      `${c("kubernetes forwarding rules")} -m mark --mark ${mark}/${mark} -j ACCEPT`,
      `${c("kubernetes forwarding conntrack rule")} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    );
    filter["KUBE-NODE-PORT"]!.push(`${c(COMMENT.healthCheck)} ${set("KUBE-HEALTH-CHECK-NODE-PORT", "dst")} -j ACCEPT`);
    filter["KUBE-IPVS-FILTER"]!.push(
      `${set("KUBE-LOAD-BALANCER", "dst,dst")} -j RETURN`,
      `${set("KUBE-CLUSTER-IP", "dst,dst")} -j RETURN`,
      `${set("KUBE-EXTERNAL-IP", "dst,dst")} -j RETURN`,
      `${set("KUBE-EXTERNAL-IP-LOCAL", "dst,dst")} -j RETURN`,
      `${set("KUBE-HEALTH-CHECK-NODE-PORT", "dst")} -j RETURN`,
      `-m conntrack --ctstate NEW ${set("KUBE-IPVS-IPS", "dst")} -j REJECT --reject-with icmp-port-unreachable`,
    );
    const post = nat["KUBE-POSTROUTING"]!;
    post.push(`-m mark ! --mark ${mark}/${mark} -j RETURN`, `-j MARK --set-xmark ${mark}/0x0`, `${c("kubernetes service traffic requiring SNAT")} -j MASQUERADE --random-fully`);

    const render = (name: string, chains: Record<string, string[]>, builtins: readonly string[]) => {
      const order = [...builtins, ...Object.keys(chains).filter((k) => !builtins.includes(k)).sort()];
      let out = `*${name}\n`;
      for (const ch of order) out += builtins.includes(ch) ? `:${ch} ACCEPT [0:0]\n` : `:${ch} - [0:0]\n`;
      for (const ch of order) for (const r of chains[ch]!) out += `-A ${ch} ${r}\n`;
      return `${out}COMMIT\n`;
    };
    let out = "";
    if (table === undefined || table === "nat") out += render("nat", nat, ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]);
    if (table === undefined || table === "filter") out += render("filter", filter, ["INPUT", "FORWARD", "OUTPUT"]);
    return out;
  }

  /** Which of kube-proxy's ipsets would have entries (syncProxyRules fills them per service port). */
  private ipsetMembership() {
    const m = {
      loopBack: false,
      clusterIp: false,
      externalIp: false,
      externalIpLocal: false,
      lb: false,
      lbLocal: false,
      lbFw: false,
      lbSourceCidr: false,
      lbSourceIp: false,
      nodePort: { TCP: false, UDP: false },
      nodePortLocal: { TCP: false, UDP: false },
      lbNoNodeAccess: [] as { ip: string; protocol: number; port: number }[],
    };
    const sorted = [...this.owned.values()].map((o) => o.sp).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.protocol - b.protocol));
    for (const sp of sorted) {
      const local = externalPolicyLocal(sp);
      const p = sp.protocol === IpProtocol.UDP ? "UDP" : "TCP";
      m.clusterIp = true;
      if (sp.endpoints.some((e) => e.isLocal)) m.loopBack = true;
      if (sp.externalIPs.length > 0) {
        if (local) m.externalIpLocal = true;
        else m.externalIp = true;
      }
      if (sp.loadBalancerIPs.length > 0) {
        m.lb = true;
        if (local) m.lbLocal = true;
        if (sp.loadBalancerSourceRanges.length > 0) {
          m.lbFw = true;
          m.lbSourceCidr = true;
          if (sp.loadBalancerSourceRanges.some((r) => this.inCidr(r, this.node.nodeIp))) m.lbSourceIp = true;
          else for (const ip of sp.loadBalancerIPs) m.lbNoNodeAccess.push({ ip: formatIpv4(ip), protocol: sp.protocol, port: sp.port });
        }
      }
      if (sp.nodePort !== 0) {
        m.nodePort[p] = true;
        if (local) m.nodePortLocal[p] = true;
      }
    }
    return m;
  }
}

/** The ipset comments (pkg/proxy/ipvs/ipset.go). */
const COMMENT = {
  loopBack: "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose",
  clusterIp: "Kubernetes service cluster ip + port for masquerade purpose",
  externalIp: "Kubernetes service external ip + port for masquerade and filter purpose",
  externalIpLocal: "Kubernetes service external ip + port with externalTrafficPolicy=local",
  lb: "Kubernetes service lb portal",
  lbLocal: "Kubernetes service load balancer ip + port with externalTrafficPolicy=local",
  lbFw: "Kubernetes service load balancer ip + port for load balancer with sourceRange",
  lbSourceIp: "Kubernetes service load balancer ip + port + source IP for packet filter purpose",
  lbSourceCidr: "Kubernetes service load balancer ip + port + source cidr for packet filter purpose",
  healthCheck: "Kubernetes health check node port",
} as const;

/** xtables_save_string: bare when only [A-Za-z0-9_-], else double-quoted with \\ escapes. */
function saveString(v: string): string {
  return /^[A-Za-z0-9_-]+$/.test(v) ? v : `"${v.replace(/["\\']/g, (ch) => `\\${ch}`)}"`;
}

function release(rs: RealServer): void {
  if (rs.udp) {
    if (rs.inactConns > 0) rs.inactConns--;
  } else if (rs.activeConns > 0) rs.activeConns--;
}

/** ip_vs_dest_conn_overhead: activeconns * 256 + inactconns. */
function overhead(d: RealServer): number {
  return d.activeConns * 256 + d.inactConns;
}

/**
 * ip_vs_wrr_schedule: passes over the list with a falling current weight cw (mw, mw-di, ..., 1
 * at most), taking each dest whose weight reaches cw; `stop` ends the last pass at the start.
 */
function scheduleWrr(vs: VirtualServer): RealServer | undefined {
  const n = vs.dests.length;
  let dest = vs.wrrCl;
  if (vs.wrrMw === 0) {
    vs.wrrCl = dest;
    return undefined;
  }
  const last = dest;
  let stop = -2;
  let lastPass = false;
  let restarted = false;
  for (;;) {
    for (let i = dest + 1; i < n; i++) {
      dest = i;
      if (vs.dests[i]!.weight >= vs.wrrCw) {
        vs.wrrCl = dest;
        return vs.dests[i];
      }
      if (dest === stop) {
        vs.wrrCl = dest;
        return undefined;
      }
    }
    dest = -1; // list_for_each_entry_continue ends on the head
    vs.wrrCw -= vs.wrrDi;
    if (vs.wrrCw <= 0) {
      vs.wrrCw = vs.wrrMw;
      if (lastPass || last === -1) {
        vs.wrrCl = dest;
        return undefined;
      }
      restarted = true;
    }
    lastPass = vs.wrrCw <= vs.wrrDi;
    if (lastPass && restarted && last !== -1) stop = last;
  }
}

/** ip_vs_lc_schedule: the least overhead, weight 0 skipped, ties to the earlier dest. */
function scheduleLc(vs: VirtualServer): RealServer | undefined {
  let least: RealServer | undefined;
  let loh = 0;
  for (const d of vs.dests) {
    if (d.weight === 0) continue;
    const doh = overhead(d);
    if (least === undefined || doh < loh) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/**
 * ip_vs_wlc_schedule / ip_vs_sed_schedule: the least overhead/weight, compared as
 * loh * w(dest) > doh * w(least); sed's overhead is activeconns + 1.
 */
function scheduleWeighted(vs: VirtualServer, sed: boolean): RealServer | undefined {
  const ds = vs.dests;
  let i = 0;
  while (i < ds.length && ds[i]!.weight <= 0) i++;
  if (i === ds.length) return undefined;
  let least = ds[i]!;
  let loh = sed ? least.activeConns + 1 : overhead(least);
  for (i++; i < ds.length; i++) {
    const d = ds[i]!;
    const doh = sed ? d.activeConns + 1 : overhead(d);
    if (loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** ip_vs_nq_schedule: an idle dest at once, else sed's choice. */
function scheduleNq(vs: VirtualServer): RealServer | undefined {
  let least: RealServer | undefined;
  let loh = 0;
  for (const d of vs.dests) {
    if (d.weight === 0) continue;
    const doh = d.activeConns + 1;
    if (d.activeConns === 0) return d;
    if (least === undefined || loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/**
 * ip_vs_sh_schedule (source address, no port, no fallback: kube-proxy sets neither flag for
 * sh) and ip_vs_dh_schedule (destination address): bucket hash_32(addr, 8); a dest with weight
 * 0 there means no destination.
 */
function scheduleHashed(vs: VirtualServer, addr: number): RealServer | undefined {
  const d = vs.buckets[hash32(addr, HASH_TAB_BITS)];
  return d !== undefined && d.weight > 0 ? d : undefined;
}
