/**
 * kube-proxy's iptables mode: the rules of pkg/proxy/iptables/proxier.go syncProxyRules compiled
 * as data (chains of rules with numeric match fields) and evaluated the way the kernel walks
 * them: linearly, rule after rule, jumping into user chains and returning at their end.
 *
 * Design notes:
 * - What is built follows proxier.go rule for rule (chain names, comments, match order), so
 *   `dump("iptables-save")` prints what `iptables-save` prints on a kube-proxy node, and a
 *   packet takes the path it takes there. KUBE-SERVICES stays a list: one rule per service
 *   destination, compared in order, so its cost grows with the number of Services as in the
 *   kernel (that cost is what the iptables vs ipvs/nftables benchmark measures).
 * - Partial sync as in proxier.go (skippedNatChains): the SVC/SVL/EXT/FW/SEP chains of a
 *   service port that did not change are reused; KUBE-SERVICES, KUBE-NODEPORTS and the filter
 *   chains are re-assembled from the per-port pieces every sync (a concatenation).
 * - Runtime state outlives syncs as it does in the kernel: the `recent` lists of ClientIP
 *   affinity are xt_recent tables, named by the KUBE-SEP chain, kept while a rule names them
 *   (iptables-restore checks the new rules before it destroys the old ones), bounded like
 *   xt_recent (ip_list_tot = 100 addresses, the least recently set evicted).
 * - The packet path allocates nothing: matches are numbers compared in loops, filter verdicts
 *   are built at sync. A DNAT verdict names the path the packet took through the chains, so it
 *   is built the first time that path is taken and kept on the DNAT rule (a small trie keyed
 *   by the rules on the path), then reused.
 * - Filter rule sets skip ESTABLISHED and RELATED packets up front: every kube-proxy filter
 *   rule either requires `--ctstate NEW`, excludes RELATED,ESTABLISHED, or ACCEPTs them, so the
 *   outcome for them is always "go on". NEW, INVALID and UNTRACKED packets walk the rules
 *   (KUBE-FORWARD drops INVALID, issue 74839).
 * - Left out on purpose: --nodeport-addresses (all local addresses take NodePorts), nfacct
 *   counters (their extra localhost NodePort rule matches what the next rule matches anyway),
 *   topology hints (categorize() has none), IPv6, --masquerade-all.
 */
import { createHash } from "node:crypto";
import { cidrContains, maskOf, type Cidr } from "../../cluster/addressing.ts";
import { IpProtocol, formatIpv4, type Ipv4Addr } from "../../overlay/wire/index.ts";
import { ACCEPT, CONTINUE, DropReason, Hook, Priority, type HookContext, type RuleSet, type Verdict } from "../netfilter.ts";
import { CtState, type PacketView } from "../packet.ts";
import type { BackendOptions, DumpTool, ProxyBackend } from "./backend.ts";
import { MASQ_MARK, categorize, endpointString, externalPolicyLocal, externallyAccessible, type EndpointInfo, type ProxyNode, type ProxyState, type ServicePortInfo } from "./model.ts";

// ---------------------------------------------------------------------------------------------
// Chain names (proxier.go portProtoHash, servicePortEndpointChainName)

export type IptablesChainPrefix = "KUBE-SVC-" | "KUBE-SVL-" | "KUBE-EXT-" | "KUBE-FW-" | "KUBE-SEP-";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/**
 * `prefix` + the first 16 characters of base32(sha256(servicePortName + protocol [+ endpoint]))
 * as proxier.go names its chains: iptables chain names are at most 28 characters. `protocol`
 * is lower case ("tcp"), `endpoint` "ip:port" (KUBE-SEP- only).
 */
export function iptablesChainName(prefix: IptablesChainPrefix, servicePortName: string, protocol: string, endpoint = ""): string {
  const hash = createHash("sha256").update(servicePortName + protocol + endpoint).digest();
  // 16 base32 characters are exactly the first 10 bytes (80 bits).
  let out = prefix;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < 10; i++) {
    acc = ((acc << 8) | hash[i]!) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(acc >>> bits) & 31];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// xt_recent

/** xt_recent's ip_list_tot default: addresses per list. */
export const RECENT_LIST_MAX = 100;

/**
 * One xt_recent table (net/netfilter/xt_recent.c): source addresses with the time they were
 * last `--set`, in LRU order (oldest first; a full table evicts the oldest). Fixed arrays, so
 * checking and setting allocate nothing.
 */
class RecentList {
  private readonly ips = new Float64Array(RECENT_LIST_MAX);
  private readonly seen = new Float64Array(RECENT_LIST_MAX);
  private n = 0;

  constructor(readonly name: string) {}

  private find(ip: number): number {
    for (let i = 0; i < this.n; i++) if (this.ips[i] === ip) return i;
    return -1;
  }

  private remove(i: number): void {
    this.ips.copyWithin(i, i + 1, this.n);
    this.seen.copyWithin(i, i + 1, this.n);
    this.n--;
  }

  /** `--rcheck --seconds s --reap`: seen within `ms`; a stale entry is removed (recent_entry_reap). */
  check(ip: number, now: number, ms: number): boolean {
    const i = this.find(ip >>> 0);
    if (i < 0) return false;
    if (this.seen[i]! >= now - ms) return true;
    this.remove(i);
    return false;
  }

  /** `--set`: add or refresh, moving the entry to the LRU tail (recent_entry_update). */
  set(ip: number, now: number): void {
    const key = ip >>> 0;
    const i = this.find(key);
    if (i >= 0) this.remove(i);
    else if (this.n === RECENT_LIST_MAX) this.remove(0);
    this.ips[this.n] = key;
    this.seen[this.n] = now;
    this.n++;
  }

  entries(): { src: Ipv4Addr; lastSeen: number }[] {
    const out: { src: Ipv4Addr; lastSeen: number }[] = [];
    for (let i = 0; i < this.n; i++) out.push({ src: this.ips[i]!, lastSeen: this.seen[i]! });
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Rules as data

/** What a matching rule does. */
const T = { Jump: 0, Return: 1, MarkOr: 2, MarkXor: 3, Dnat: 4, Verdict: 5, None: 6 } as const;
/** `-m addrtype`. */
const ADDR_DST_LOCAL = 1;
const ADDR_SRC_LOCAL = 2;
const RECENT_CHECK = 1;
const RECENT_SET = 2;

/** conntrack states as `-m conntrack --ctstate` bits, indexed by CtState. */
const CT_NEW = 1 << CtState.New;
const CT_INVALID = 1 << CtState.Invalid;
const CT_RELATED_ESTABLISHED = (1 << CtState.Related) | (1 << CtState.Established);

/**
 * DNAT verdicts by path, keyed by hop text from the DNAT rule backwards: the text is what the
 * verdict says, and it stays the same when a sync rebuilds the shared chains' rule objects.
 */
interface PathNode {
  verdict: Verdict | null;
  next: Map<string, PathNode> | null;
}

/** One rule; every object has the same shape (the packet loop stays monomorphic). */
interface Rule {
  readonly hasS: boolean;
  readonly sNet: number;
  readonly sMask: number;
  readonly sNeg: boolean;
  readonly hasD: boolean;
  readonly dNet: number;
  readonly dMask: number;
  readonly dNeg: boolean;
  /** 0: any. */
  readonly proto: number;
  /** 0: any. */
  readonly dport: number;
  readonly addr: number;
  /** CT_* bits; 0: no conntrack match. */
  readonly ct: number;
  readonly ctNeg: boolean;
  /** `-m mark --mark m/m`; 0: no mark match. */
  readonly mark: number;
  readonly markNeg: boolean;
  /** `-m statistic --mode random`: the kernel's 31-bit fixed point; -1: none. */
  readonly prob: number;
  readonly recent: RecentList | null;
  readonly recentOp: number;
  readonly recentMs: number;
  readonly target: number;
  readonly jump: Chain | null;
  readonly markBits: number;
  /** T.Verdict: the verdict, built at sync. */
  readonly verdict: Verdict | null;
  readonly dnatAddr: number;
  readonly dnatPort: number;
  /** The rule as iptables-save prints it, after "-A CHAIN ". */
  readonly save: string;
  /** This step of a packet's path in verdict `rule` text; "" leaves it out. */
  readonly hop: string;
  /** T.Dnat: the DNAT verdicts by path. */
  readonly paths: PathNode | null;
}

interface Chain {
  readonly name: string;
  readonly rules: Rule[];
}

interface Spec {
  src?: Cidr;
  srcNeg?: boolean;
  dst?: Cidr;
  dstNeg?: boolean;
  proto?: number;
  dport?: number;
  /** `-m conntrack [!] --ctstate <ctText>` before the comment (the jump rules' extraArgs). */
  ct?: number;
  ctNeg?: boolean;
  ctText?: string;
  /** The conntrack match after the comment instead (KUBE-FORWARD, KUBE-FIREWALL). */
  ctAfterComment?: boolean;
  comment?: string;
  addr?: number;
  mark?: number;
  markNeg?: boolean;
  prob?: number;
  recent?: RecentList;
  recentOp?: number;
  recentSeconds?: number;
  target: number;
  /** The target as iptables-save prints it after "-j" (omitted for T.None). */
  j?: string;
  jump?: Chain;
  markBits?: number;
  verdict?: Verdict;
  dnatAddr?: number;
  dnatPort?: number;
  hop?: string;
}

const HOST = 32;
function host(ip: Ipv4Addr): Cidr {
  return { network: ip >>> 0, prefix: HOST };
}
function cidrText(c: Cidr): string {
  return `${formatIpv4(c.network)}/${c.prefix}`;
}
function protoName(p: number): string {
  return p === IpProtocol.UDP ? "udp" : "tcp";
}
function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** libxtables xtables_save_string: bare when only [A-Za-z0-9_-], else quoted with \ escapes. */
function saveString(s: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(s)) return s;
  return `"${s.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

/** The 31-bit fixed point xt_statistic keeps for `--probability`, from kube-proxy's "%0.10f" text. */
function statisticFixed(n: number): number {
  return Math.round(0x80000000 * Number((1 / n).toFixed(10)));
}

/**
 * A rule from its spec; its iptables-save text comes from the same fields, in the order
 * iptables-save prints them: addresses and protocol first, then the matches in the order
 * kube-proxy gave them (comment, addrtype, mark, recent or statistic, then the protocol match).
 */
function mk(s: Spec): Rule {
  let save = "";
  if (s.src) save += `${s.srcNeg ? " !" : ""} -s ${cidrText(s.src)}`;
  if (s.dst) save += `${s.dstNeg ? " !" : ""} -d ${cidrText(s.dst)}`;
  if (s.proto) save += ` -p ${protoName(s.proto)}`;
  const ctText = s.ct ? ` -m conntrack${s.ctNeg ? " !" : ""} --ctstate ${s.ctText}` : "";
  if (!s.ctAfterComment) save += ctText;
  if (s.comment !== undefined) save += ` -m comment --comment ${saveString(s.comment)}`;
  if (s.ctAfterComment) save += ctText;
  if (s.addr === ADDR_DST_LOCAL) save += " -m addrtype --dst-type LOCAL";
  if (s.addr === ADDR_SRC_LOCAL) save += " -m addrtype --src-type LOCAL";
  if (s.mark) save += ` -m mark${s.markNeg ? " !" : ""} --mark ${hex(s.mark)}/${hex(s.mark)}`;
  if (s.recent) {
    // libxt_recent recent_save: --set|--rcheck, --seconds, --reap, --name, --mask, --rsource.
    save += s.recentOp === RECENT_SET ? " -m recent --set" : ` -m recent --rcheck --seconds ${s.recentSeconds} --reap`;
    save += ` --name ${s.recent.name} --mask 255.255.255.255 --rsource`;
  }
  if (s.prob !== undefined) save += ` -m statistic --mode random --probability ${(s.prob / 0x80000000).toFixed(11)}`;
  if (s.proto) save += ` -m ${protoName(s.proto)}${s.dport ? ` --dport ${s.dport}` : ""}`;
  if (s.j !== undefined) save += ` -j ${s.j}`;
  return {
    hasS: s.src !== undefined,
    sNet: s.src ? s.src.network >>> 0 : 0,
    sMask: s.src ? maskOf(s.src.prefix) : 0,
    sNeg: s.srcNeg === true,
    hasD: s.dst !== undefined,
    dNet: s.dst ? s.dst.network >>> 0 : 0,
    dMask: s.dst ? maskOf(s.dst.prefix) : 0,
    dNeg: s.dstNeg === true,
    proto: s.proto ?? 0,
    dport: s.dport ?? 0,
    addr: s.addr ?? 0,
    ct: s.ct ?? 0,
    ctNeg: s.ctNeg === true,
    mark: s.mark ?? 0,
    markNeg: s.markNeg === true,
    prob: s.prob ?? -1,
    recent: s.recent ?? null,
    recentOp: s.recent ? (s.recentOp ?? RECENT_CHECK) : 0,
    recentMs: (s.recentSeconds ?? 0) * 1000,
    target: s.target,
    jump: s.jump ?? null,
    markBits: s.markBits ?? 0,
    verdict: s.verdict ?? null,
    dnatAddr: s.dnatAddr ?? 0,
    dnatPort: s.dnatPort ?? 0,
    save: save.slice(1),
    hop: s.hop ?? "",
    paths: s.target === T.Dnat ? { verdict: null, next: null } : null,
  };
}

function jumpTo(chain: Chain, s: Omit<Spec, "target" | "j" | "jump">): Rule {
  return mk({ ...s, target: T.Jump, j: chain.name, jump: chain });
}

function dropVerdict(rule: string, reason: DropReason = DropReason.Rule): Verdict {
  return { kind: "drop", reason, rule };
}

// ---------------------------------------------------------------------------------------------
// The compiled state

/** The rules of one service port: its own chains and its pieces of the shared chains. */
interface Group {
  readonly sp: ServicePortInfo;
  /** Whether it was built in large-cluster mode (no per-endpoint comments). */
  readonly large: boolean;
  /** KUBE-SVC/SVL/EXT/FW/SEP chains. */
  readonly chains: Chain[];
  readonly natServices: Rule[];
  readonly natNodePorts: Rule[];
  readonly filterServices: Rule[];
  readonly filterExternal: Rule[];
  readonly filterFirewall: Rule[];
  readonly filterNodePorts: Rule[];
  readonly recentLists: RecentList[];
}

interface Table {
  readonly name: "nat" | "filter" | "mangle";
  /** Built-in chains in iptables-save order, with their ACCEPT policy. */
  readonly builtins: Chain[];
  /** User chains, sorted by name as iptables-save lists them. */
  readonly chains: Chain[];
}

interface Compiled {
  readonly nat: Table;
  readonly filter: Table;
  sets: readonly RuleSet[];
  readonly text: Map<string, string>;
}

/** proxier.go largeClusterEndpointsThreshold: above it, per-endpoint comments are left out. */
const LARGE_CLUSTER_ENDPOINTS = 1000;
/** Longest path a packet records (the deepest kube-proxy path has 6 recorded steps). */
const PATH_MAX = 16;

const SAVE_HEADER = "# Generated by iptables-save v1.8.9 (nf_tables)";
const SAVE_FOOTER = "# Completed";

export class IptablesBackend implements ProxyBackend {
  readonly mode = "iptables" as const;
  /** What the last sync did (the proxier's metrics: partial syncs rebuild few ports). */
  readonly lastSync = { full: true, rebuilt: 0, reused: 0, natRules: 0, filterRules: 0 };

  private readonly node: ProxyNode;
  private readonly rng: () => number;
  private groups = new Map<string, Group>();
  private readonly recent = new Map<string, RecentList>();
  private large = false;
  private compiled: Compiled;

  // Chains that never change (proxier.go writes the same rules every sync).
  private readonly markMasq: Chain;
  private readonly postrouting: Chain;
  private readonly forward: Chain;
  private readonly firewall: Chain;

  // Per-packet scratch: the rules a packet jumped through (single-threaded, not re-entrant).
  private readonly path: (Rule | null)[] = new Array<Rule | null>(PATH_MAX).fill(null);
  private pathLen = 0;

  constructor(opts: BackendOptions) {
    this.node = opts.node;
    this.rng = opts.rng;
    const masq = hex(MASQ_MARK);
    this.markMasq = { name: "KUBE-MARK-MASQ", rules: [mk({ target: T.MarkOr, j: `MARK --or-mark ${masq}`, markBits: MASQ_MARK })] };
    this.postrouting = {
      name: "KUBE-POSTROUTING",
      rules: [
        mk({ mark: MASQ_MARK, markNeg: true, target: T.Return, j: "RETURN" }),
        // Clear the mark so a packet that goes through the stack again is not masqueraded twice.
        mk({ target: T.MarkXor, j: `MARK --xor-mark ${masq}`, markBits: MASQ_MARK }),
        mk({
          comment: "kubernetes service traffic requiring SNAT",
          target: T.Verdict,
          j: "MASQUERADE --random-fully",
          verdict: { kind: "masquerade", rule: "KUBE-POSTROUTING kubernetes service traffic requiring SNAT -> MASQUERADE" },
        }),
      ],
    };
    this.forward = {
      name: "KUBE-FORWARD",
      rules: [
        mk({ ct: CT_INVALID, ctText: "INVALID", target: T.Verdict, j: "DROP", verdict: dropVerdict("KUBE-FORWARD -m conntrack --ctstate INVALID -> DROP", DropReason.CtInvalid) }),
        mk({ comment: "kubernetes forwarding rules", mark: MASQ_MARK, target: T.Verdict, j: "ACCEPT", verdict: ACCEPT }),
        mk({ comment: "kubernetes forwarding conntrack rule", ct: CT_RELATED_ESTABLISHED, ctText: "RELATED,ESTABLISHED", ctAfterComment: true, target: T.Verdict, j: "ACCEPT", verdict: ACCEPT }),
      ],
    };
    // kube-proxy's copy of kubelet's rule against route_localnet abuse (localhostNodePorts is on
    // by default). Its `! --ctstate DNAT` part is left out of the match: kube-proxy never
    // DNATs to a loopback address, so a packet to 127/8 here was never DNATed.
    const loopback: Cidr = { network: 0x7f00_0000, prefix: 8 };
    this.firewall = {
      name: "KUBE-FIREWALL",
      rules: [
        mk({
          src: loopback,
          srcNeg: true,
          dst: loopback,
          comment: "block incoming localnet connections",
          ct: CT_RELATED_ESTABLISHED,
          ctNeg: true,
          ctText: "RELATED,ESTABLISHED,DNAT",
          ctAfterComment: true,
          target: T.Verdict,
          j: "DROP",
          verdict: dropVerdict("KUBE-FIREWALL block incoming localnet connections -> DROP"),
        }),
      ],
    };
    this.compiled = this.compose();
  }

  // -------------------------------------------------------------------------------------------
  // Sync

  sync(state: ProxyState, changed: ReadonlySet<string> | undefined): readonly RuleSet[] {
    let endpoints = 0;
    for (const sp of state.servicePorts) endpoints += sp.endpoints.length;
    const large = endpoints > LARGE_CLUSTER_ENDPOINTS;
    // A switch into or out of large-cluster mode changes every chain's comments.
    const full = changed === undefined || large !== this.large;
    this.large = large;
    const next = new Map<string, Group>();
    let rebuilt = 0;
    let reused = 0;
    for (const sp of state.servicePorts) {
      const key = `${sp.id}/${sp.protocol}`;
      const old = this.groups.get(key);
      if (!full && old !== undefined && !changed.has(sp.id)) {
        next.set(key, old);
        reused++;
      } else {
        next.set(key, this.buildGroup(sp, large));
        rebuilt++;
      }
    }
    this.groups = next;
    // xt_recent tables live while a rule names them.
    const live = new Set<RecentList>();
    for (const g of next.values()) for (const l of g.recentLists) live.add(l);
    for (const [name, list] of this.recent) if (!live.has(list)) this.recent.delete(name);
    this.compiled = this.compose();
    const natRules = this.compiled.nat.builtins.concat(this.compiled.nat.chains).reduce((n, c) => n + c.rules.length, 0);
    const filterRules = this.compiled.filter.builtins.concat(this.compiled.filter.chains).reduce((n, c) => n + c.rules.length, 0);
    Object.assign(this.lastSync, { full, rebuilt, reused, natRules, filterRules });
    return this.compiled.sets;
  }

  private recentList(name: string): RecentList {
    let l = this.recent.get(name);
    if (!l) this.recent.set(name, (l = new RecentList(name)));
    return l;
  }

  /** The rules of one service port: syncProxyRules' loop body. */
  private buildGroup(sp: ServicePortInfo, large: boolean): Group {
    const name = sp.id;
    const protocol = protoName(sp.protocol);
    const proto = sp.protocol;
    const clusterCidr = this.node.clusterCidr;
    const g: Group = { sp, large, chains: [], natServices: [], natNodePorts: [], filterServices: [], filterExternal: [], filterFirewall: [], filterNodePorts: [], recentLists: [] };

    const { cluster, local, allReachable, hasAnyEndpoints: hasEndpoints } = categorize(sp);
    const newChain = (prefix: IptablesChainPrefix): Chain => {
      const c: Chain = { name: iptablesChainName(prefix, name, protocol), rules: [] };
      g.chains.push(c);
      return c;
    };
    // categorize() leaves a list empty when the service does not use that policy.
    const svc = cluster.length > 0 ? newChain("KUBE-SVC-") : null;
    const svl = local.length > 0 ? newChain("KUBE-SVL-") : null;

    const internalPolicyChain = sp.internalPolicyLocal ? svl : svc;
    const hasInternalEndpoints = hasEndpoints && internalPolicyChain !== null;
    const extLocal = externalPolicyLocal(sp);
    const externalPolicyChain = extLocal ? svl : svc;
    const hasExternalEndpoints = hasEndpoints && externalPolicyChain !== null;
    // Built even without usable external endpoints: the short-circuit rules for pods and the
    // node itself still apply.
    const ext = hasEndpoints && externallyAccessible(sp) ? newChain("KUBE-EXT-") : null;
    const usesFW = hasEndpoints && sp.loadBalancerIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;
    const fw = usesFW ? newChain("KUBE-FW-") : null;
    const lbChain = fw ?? ext;

    const seps = new Map<EndpointInfo, Chain>();
    for (const ep of allReachable) {
      const c: Chain = { name: iptablesChainName("KUBE-SEP-", name, protocol, endpointString(ep)), rules: [] };
      g.chains.push(c);
      seps.set(ep, c);
    }

    let internalTarget = "";
    let internalComment = "";
    let externalTarget = "";
    let externalComment = "";
    if (!hasEndpoints) {
      internalTarget = externalTarget = "REJECT";
      internalComment = externalComment = `${name} has no endpoints`;
    } else {
      if (!hasInternalEndpoints) {
        internalTarget = "DROP";
        internalComment = `${name} has no local endpoints`;
      }
      if (!hasExternalEndpoints) {
        externalTarget = "DROP";
        externalComment = `${name} has no local endpoints`;
      }
    }
    const filterRule = (chain: string, comment: string, target: string, s: Omit<Spec, "target" | "comment">): Rule =>
      mk({
        ...s,
        comment,
        target: T.Verdict,
        j: target === "REJECT" ? "REJECT --reject-with icmp-port-unreachable" : target,
        // kube-proxy REJECTs only for Services without endpoints (KUBE-SERVICES, KUBE-EXTERNAL-SERVICES).
        verdict: target === "REJECT" ? { kind: "reject", with: "icmp-port-unreachable", rule: `${chain} ${comment} -> REJECT`, reason: DropReason.NoEndpoints } : dropVerdict(`${chain} ${comment} -> DROP`),
      });

    const clusterIP = host(sp.clusterIP);
    const vip = (ip: Ipv4Addr) => `-d ${formatIpv4(ip)}/32 -p ${protocol} --dport ${sp.port}`;

    // Capture the clusterIP.
    if (hasInternalEndpoints) {
      g.natServices.push(jumpTo(internalPolicyChain, { dst: clusterIP, proto, dport: sp.port, comment: `${name} cluster IP`, hop: `KUBE-SERVICES ${vip(sp.clusterIP)} -> ${internalPolicyChain.name} (${name})` }));
    } else {
      g.filterServices.push(filterRule("KUBE-SERVICES", internalComment, internalTarget, { dst: clusterIP, proto, dport: sp.port }));
    }

    // Capture externalIPs.
    for (const ip of sp.externalIPs) {
      if (ext) g.natServices.push(jumpTo(ext, { dst: host(ip), proto, dport: sp.port, comment: `${name} external IP`, hop: `KUBE-SERVICES ${vip(ip)} -> ${ext.name} (${name} external IP)` }));
      if (!hasExternalEndpoints) g.filterExternal.push(filterRule("KUBE-EXTERNAL-SERVICES", externalComment, externalTarget, { dst: host(ip), proto, dport: sp.port }));
    }

    // Capture load-balancer ingress.
    for (const ip of sp.loadBalancerIPs) {
      if (lbChain) g.natServices.push(jumpTo(lbChain, { dst: host(ip), proto, dport: sp.port, comment: `${name} loadbalancer IP`, hop: `KUBE-SERVICES ${vip(ip)} -> ${lbChain.name} (${name} loadbalancer IP)` }));
      if (fw) g.filterFirewall.push(filterRule("KUBE-PROXY-FIREWALL", `${name} traffic not accepted by ${fw.name}`, "DROP", { dst: host(ip), proto, dport: sp.port }));
    }
    if (!hasExternalEndpoints) {
      for (const ip of sp.loadBalancerIPs) g.filterExternal.push(filterRule("KUBE-EXTERNAL-SERVICES", externalComment, externalTarget, { dst: host(ip), proto, dport: sp.port }));
    }

    // Capture nodeports (not subject to loadBalancerSourceRanges, as in kube-proxy).
    if (sp.nodePort !== 0) {
      if (ext) g.natNodePorts.push(jumpTo(ext, { proto, dport: sp.nodePort, comment: name, hop: `KUBE-NODEPORTS -p ${protocol} --dport ${sp.nodePort} -> ${ext.name} (${name})` }));
      if (!hasExternalEndpoints) g.filterExternal.push(filterRule("KUBE-EXTERNAL-SERVICES", externalComment, externalTarget, { addr: ADDR_DST_LOCAL, proto, dport: sp.nodePort }));
    }

    // Capture healthCheckNodePorts: accepted whether or not there are local endpoints.
    if (sp.healthCheckNodePort !== 0) {
      g.filterNodePorts.push(
        mk({ proto: IpProtocol.TCP, dport: sp.healthCheckNodePort, comment: `${name} health check node port`, target: T.Verdict, j: "ACCEPT", verdict: ACCEPT }),
      );
    }

    // Internal traffic: masquerade what does not come from a pod (the node itself, or outside
    // traffic routed to the service range), since the reply could bypass this node.
    if (hasInternalEndpoints) {
      internalPolicyChain.rules.push(
        jumpTo(this.markMasq, { src: clusterCidr, srcNeg: true, dst: clusterIP, proto, dport: sp.port, comment: `${name} cluster IP`, hop: `KUBE-MARK-MASQ (! -s ${cidrText(clusterCidr)})` }),
      );
    }

    // External traffic.
    if (ext) {
      if (!extLocal) {
        // Endpoints may be on other nodes: masquerade so replies come back through this node.
        ext.rules.push(jumpTo(this.markMasq, { comment: `masquerade traffic for ${name} external destinations`, hop: "KUBE-MARK-MASQ (external)" }));
      } else {
        // Pod -> external destination skips both policies, as if it had gone out to the load
        // balancer and come back in. (svc is null only when model.ts drops cluster endpoints
        // for internalTrafficPolicy Local; kube-proxy always has them here.)
        if (svc) ext.rules.push(jumpTo(svc, { src: clusterCidr, comment: `pod traffic for ${name} external destinations`, hop: `${svc.name} (pod traffic, -s ${cidrText(clusterCidr)})` }));
        // The node's own traffic gets a local address as its source: masquerade it.
        ext.rules.push(jumpTo(this.markMasq, { comment: `masquerade LOCAL traffic for ${name} external destinations`, addr: ADDR_SRC_LOCAL, hop: "KUBE-MARK-MASQ (--src-type LOCAL)" }));
        if (svc) ext.rules.push(jumpTo(svc, { comment: `route LOCAL traffic for ${name} external destinations`, addr: ADDR_SRC_LOCAL, hop: `${svc.name} (--src-type LOCAL)` }));
      }
      if (hasExternalEndpoints) ext.rules.push(jumpTo(externalPolicyChain, { hop: externalPolicyChain.name }));
    }

    // Firewall chain: sources in loadBalancerSourceRanges go on; the rest falls off the end,
    // is not DNATed, and meets the DROP in filter KUBE-PROXY-FIREWALL.
    if (fw && ext) {
      const comment = `${name} loadbalancer IP`;
      let allowFromNode = false;
      for (const range of sp.loadBalancerSourceRanges) {
        fw.rules.push(jumpTo(ext, { src: range, comment, hop: `${ext.name} (-s ${cidrText(range)})` }));
        if (cidrContains(range, this.node.nodeIp)) allowFromNode = true;
      }
      // A VIP bound locally makes the node's own requests loop back with the VIP as source.
      if (allowFromNode) for (const ip of sp.loadBalancerIPs) fw.rules.push(jumpTo(ext, { src: host(ip), comment, hop: `${ext.name} (-s ${formatIpv4(ip)}/32)` }));
      fw.rules.push(mk({ comment: `other traffic to ${name} will be dropped by KUBE-PROXY-FIREWALL`, target: T.None }));
    }

    const comment = (c: string): string | undefined => (large ? undefined : c);
    const affinity = sp.affinitySeconds;
    // writeServiceToEndpointRules: affinity checks first, then the random choice.
    const endpointRules = (chain: Chain, eps: readonly EndpointInfo[]): void => {
      if (affinity !== undefined) {
        for (const ep of eps) {
          const sep = seps.get(ep)!;
          chain.rules.push(
            jumpTo(sep, { comment: comment(`${name} -> ${endpointString(ep)}`), recent: this.recentList(sep.name), recentOp: RECENT_CHECK, recentSeconds: affinity, hop: `${sep.name} (recent affinity)` }),
          );
        }
      }
      const n = eps.length;
      eps.forEach((ep, i) => {
        const sep = seps.get(ep)!;
        const c = comment(`${name} -> ${endpointString(ep)}`);
        if (i < n - 1) chain.rules.push(jumpTo(sep, { comment: c, prob: statisticFixed(n - i), hop: `${sep.name} (statistic ${(1 / (n - i)).toFixed(5)})` }));
        else chain.rules.push(jumpTo(sep, { comment: c, hop: sep.name }));
      });
    };
    if (svc) endpointRules(svc, cluster);
    if (svl) endpointRules(svl, local);

    // Per-endpoint chains: hairpin masquerade, then DNAT (recording affinity).
    for (const ep of allReachable) {
      const sep = seps.get(ep)!;
      const c = comment(name);
      sep.rules.push(jumpTo(this.markMasq, { src: host(ep.ip), comment: c, hop: `KUBE-MARK-MASQ (hairpin -s ${formatIpv4(ep.ip)}/32)` }));
      const list = affinity !== undefined ? this.recentList(sep.name) : undefined;
      if (list) g.recentLists.push(list);
      sep.rules.push(
        mk({
          proto,
          comment: c,
          recent: list,
          recentOp: RECENT_SET,
          target: T.Dnat,
          j: `DNAT --to-destination ${endpointString(ep)}`,
          dnatAddr: ep.ip,
          dnatPort: ep.port,
          hop: `DNAT ${endpointString(ep)}`,
        }),
      );
    }
    return g;
  }

  /** The tables and rule sets from the groups (cheap: concatenations, a sort of chain names). */
  private compose(): Compiled {
    const groups = [...this.groups.values()];
    const cat = (pick: (g: Group) => Rule[]): Rule[] => {
      const out: Rule[] = [];
      for (const g of groups) for (const r of pick(g)) out.push(r);
      return out;
    };

    // nat
    const natNodePorts: Chain = { name: "KUBE-NODEPORTS", rules: cat((g) => g.natNodePorts) };
    const natServices: Chain = { name: "KUBE-SERVICES", rules: cat((g) => g.natServices) };
    // Last: anything to a local address may be a NodePort. localhostNodePorts is on by default,
    // so loopback destinations are not excluded.
    natServices.rules.push(
      jumpTo(natNodePorts, { comment: "kubernetes service nodeports; NOTE: this must be the last rule in this chain", addr: ADDR_DST_LOCAL, hop: "KUBE-SERVICES --dst-type LOCAL" }),
    );
    const natJump = (chain: Chain, comment: string): Rule => jumpTo(chain, { comment });
    const natPrerouting: Chain = { name: "PREROUTING", rules: [natJump(natServices, "kubernetes service portals")] };
    const natOutput: Chain = { name: "OUTPUT", rules: [natJump(natServices, "kubernetes service portals")] };
    const natPostrouting: Chain = { name: "POSTROUTING", rules: [natJump(this.postrouting, "kubernetes postrouting rules")] };
    const natUser: Chain[] = [natServices, natNodePorts, this.postrouting, this.markMasq, { name: "KUBE-PROXY-CANARY", rules: [] }];
    // In no particular order: only a dump sorts them (iptables-save prints chains by name), so a
    // sync at 10,000 Services does not sort 40,000 chain names for nothing.
    for (const g of groups) for (const c of g.chains) natUser.push(c);
    const nat: Table = { name: "nat", builtins: [natPrerouting, { name: "INPUT", rules: [] }, natOutput, natPostrouting], chains: natUser };

    // filter
    const fServices: Chain = { name: "KUBE-SERVICES", rules: cat((g) => g.filterServices) };
    const fExternal: Chain = { name: "KUBE-EXTERNAL-SERVICES", rules: cat((g) => g.filterExternal) };
    const fNodePorts: Chain = { name: "KUBE-NODEPORTS", rules: cat((g) => g.filterNodePorts) };
    const fFirewall: Chain = { name: "KUBE-PROXY-FIREWALL", rules: cat((g) => g.filterFirewall) };
    const newOnly = (chain: Chain, comment: string): Rule => jumpTo(chain, { ct: CT_NEW, ctText: "NEW", comment });
    // iptablesJumpChains, each prepended in list order (so the last listed comes first);
    // KUBE-FIREWALL last because kubelet created it before kube-proxy started.
    const fInput: Chain = {
      name: "INPUT",
      rules: [
        newOnly(fFirewall, "kubernetes load balancer firewall"),
        jumpTo(fNodePorts, { comment: "kubernetes health check service ports" }),
        newOnly(fExternal, "kubernetes externally-visible service portals"),
        jumpTo(this.firewall, {}),
      ],
    };
    const fForward: Chain = {
      name: "FORWARD",
      rules: [
        newOnly(fFirewall, "kubernetes load balancer firewall"),
        jumpTo(this.forward, { comment: "kubernetes forwarding rules" }),
        newOnly(fServices, "kubernetes service portals"),
        newOnly(fExternal, "kubernetes externally-visible service portals"),
      ],
    };
    const fOutput: Chain = {
      name: "OUTPUT",
      rules: [newOnly(fFirewall, "kubernetes load balancer firewall"), newOnly(fServices, "kubernetes service portals"), jumpTo(this.firewall, {})],
    };
    const filterUser: Chain[] = [fServices, fExternal, this.forward, fNodePorts, fFirewall, this.firewall, { name: "KUBE-PROXY-CANARY", rules: [] }];
    filterUser.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const filter: Table = { name: "filter", builtins: [fInput, fForward, fOutput], chains: filterUser };

    const compiled: Compiled = { nat, filter, sets: [], text: new Map() };
    const natSet = (hook: Hook, chain: Chain, priority: number): RuleSet => ({
      name: `kube-proxy iptables nat ${chain.name}`,
      hook,
      priority,
      nat: true,
      evaluate: (pkt, ctx) => {
        this.pathLen = 0;
        return this.walk(chain, pkt, ctx) ?? CONTINUE;
      },
      dump: () => this.tableText(compiled, nat),
    });
    const filterSet = (hook: Hook, chain: Chain): RuleSet => ({
      name: `kube-proxy iptables filter ${chain.name}`,
      hook,
      priority: Priority.Filter,
      evaluate: (pkt, ctx) => {
        // Every kube-proxy filter rule lets ESTABLISHED/RELATED packets go on (see the notes).
        if (ctx.ctState === CtState.Established || ctx.ctState === CtState.Related) return CONTINUE;
        this.pathLen = 0;
        return this.walk(chain, pkt, ctx) ?? CONTINUE;
      },
      dump: () => this.tableText(compiled, filter),
    });
    compiled.sets = [
      natSet(Hook.Prerouting, natPrerouting, Priority.DstNat),
      natSet(Hook.Output, natOutput, Priority.DstNat),
      natSet(Hook.Postrouting, natPostrouting, Priority.SrcNat),
      filterSet(Hook.Input, fInput),
      filterSet(Hook.Forward, fForward),
      filterSet(Hook.Output, fOutput),
    ];
    return compiled;
  }

  // -------------------------------------------------------------------------------------------
  // The packet path

  private matches(r: Rule, pkt: PacketView, ctx: HookContext): boolean {
    if (r.dport !== 0 && pkt.dport !== r.dport) return false;
    if (r.proto !== 0 && pkt.proto !== r.proto) return false;
    if (r.hasD && (((pkt.dst & r.dMask) >>> 0 === r.dNet) === r.dNeg)) return false;
    if (r.hasS && (((pkt.src & r.sMask) >>> 0 === r.sNet) === r.sNeg)) return false;
    if (r.ct !== 0 && (((1 << ctx.ctState) & r.ct) !== 0) === r.ctNeg) return false;
    if (r.mark !== 0 && (((ctx.mark & r.mark) === r.mark) === r.markNeg)) return false;
    if (r.addr === ADDR_DST_LOCAL && !this.node.isLocal(pkt.dst)) return false;
    if (r.addr === ADDR_SRC_LOCAL && !this.node.isLocal(pkt.src)) return false;
    if (r.recentOp === RECENT_CHECK && !r.recent!.check(pkt.src, ctx.now, r.recentMs)) return false;
    // xt_statistic: (prandom & 0x7fffffff) < probability.
    if (r.prob >= 0 && !(this.rng() * 0x80000000 < r.prob)) return false;
    return true;
  }

  /** Walks one chain; null when the packet falls off its end or RETURNs. */
  private walk(chain: Chain, pkt: PacketView, ctx: HookContext): Verdict | null {
    const rules = chain.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (!this.matches(r, pkt, ctx)) continue;
      switch (r.target) {
        case T.Jump: {
          if (r.hop !== "" && this.pathLen < PATH_MAX) this.path[this.pathLen++] = r;
          const v = this.walk(r.jump!, pkt, ctx);
          if (v !== null) return v;
          continue;
        }
        case T.Return:
          return null;
        case T.MarkOr:
          ctx.mark |= r.markBits;
          continue;
        case T.MarkXor:
          ctx.mark ^= r.markBits;
          continue;
        case T.None:
          continue;
        case T.Dnat:
          if (r.recentOp === RECENT_SET) r.recent!.set(pkt.src, ctx.now);
          return this.pathVerdict(r);
        default:
          return r.verdict!;
      }
    }
    return null;
  }

  /** The DNAT verdict of `r` for the path just taken: built the first time, then reused. */
  private pathVerdict(r: Rule): Verdict {
    let node = r.paths!;
    for (let i = this.pathLen - 1; i >= 0; i--) {
      const step = this.path[i]!.hop;
      let next = node.next?.get(step);
      if (next === undefined) {
        next = { verdict: null, next: null };
        (node.next ??= new Map()).set(step, next);
      }
      node = next;
    }
    if (node.verdict === null) {
      let text = "";
      for (let i = 0; i < this.pathLen; i++) text += `${this.path[i]!.hop} -> `;
      node.verdict = { kind: "dnat", addr: r.dnatAddr, port: r.dnatPort, rule: text + r.hop };
    }
    return node.verdict;
  }

  // -------------------------------------------------------------------------------------------
  // Node tools

  dump(tool: DumpTool, args: readonly string[]): string | undefined {
    if (tool !== "iptables-save") return undefined;
    let table: string | undefined;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === "-t" || a === "--table") table = args[++i];
      else if (a.startsWith("--table=")) table = a.slice("--table=".length);
    }
    const c = this.compiled;
    if (table === undefined) return this.tableText(c, c.filter) + this.tableText(c, c.nat);
    if (table === "nat") return this.tableText(c, c.nat);
    if (table === "filter") return this.tableText(c, c.filter);
    if (table === "mangle") {
      // ipt.Monitor's canary chain is all kube-proxy keeps in mangle.
      const mangle: Table = {
        name: "mangle",
        builtins: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"].map((name) => ({ name, rules: [] })),
        chains: [{ name: "KUBE-PROXY-CANARY", rules: [] }],
      };
      return this.tableText(c, mangle);
    }
    return "";
  }

  /** One table as iptables-save prints it (no date in the header lines: dumps are compared). */
  private tableText(c: Compiled, t: Table): string {
    const cached = c.text.get(t.name);
    if (cached !== undefined) return cached;
    const lines = [SAVE_HEADER, `*${t.name}`];
    for (const ch of t.builtins) lines.push(`:${ch.name} ACCEPT [0:0]`);
    const chains = [...t.chains].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const ch of chains) lines.push(`:${ch.name} - [0:0]`);
    for (const ch of [...t.builtins, ...chains]) for (const r of ch.rules) lines.push(r.save === "" ? `-A ${ch.name}` : `-A ${ch.name} ${r.save}`);
    lines.push("COMMIT", SAVE_FOOTER, "");
    const text = lines.join("\n");
    c.text.set(t.name, text);
    return text;
  }

  /** An xt_recent table (/proc/net/xt_recent/<name>): sources and when they were last set (ms). */
  recentTable(name: string): { src: Ipv4Addr; lastSeen: number }[] | undefined {
    return this.recent.get(name)?.entries();
  }
}
