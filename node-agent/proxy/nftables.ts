/**
 * kube-proxy's nftables mode (pkg/proxy/nftables/proxier.go, KEP-3866) as data: `table ip
 * kube-proxy` with its maps, sets and chains, evaluated per packet, and printed as
 * `nft list ruleset` prints it.
 *
 * Layout (kube-proxy v1.31+): filter-prerouting-pre-dnat and filter-output-pre-dnat at
 * priority dstnat - 10 (firewall-check must see the load-balancer IP before DNAT),
 * filter-input/forward/output at priority filter (service-endpoints-check,
 * nodeport-endpoints-check, cluster-ips-check), nat-prerouting/nat-output at dstnat jumping to
 * `services`, nat-postrouting at srcnat jumping to `masquerading`.
 *
 * Design notes:
 * - Every map is a hash (table.ts's KeyTable) keyed by one number (ip, protocol and port packed
 *   into 50 bits, exact in a double) over typed arrays, so a lookup costs the same for 10 or
 *   10,000 services, as the kernel's nft_set_hash does, and allocates nothing. The NAT maps
 *   keep each element as one row of a Float64Array (key, flags, endpoint count, where its
 *   verdicts are), and the verdicts (rule strings included, built at sync time, one per
 *   element, path and endpoint) and affinity sets in flat pools: a lookup touches the row, one
 *   pool slot and the verdict it returns, whatever the number of services.
 * - A partial sync (`changed` given) recompiles only those service ports: their chains, their
 *   map elements and the affinity sets they reference; everything else is kept, as
 *   syncProxyRules does with skipServiceUpdate and nftElementStorage.
 * - Affinity sets (one per endpoint, as kube-proxy has them) are runtime state: they outlive
 *   syncs while their name is in use, expire elements by ctx.now, and hold at most 65,536
 *   clients each (the least recently updated one goes first).
 * - Chains and sets print in the order a fresh kube-proxy creates them in one full sync, with
 *   service ports in id order, so a partial sync and a full sync of the same state print the same
 *   text (a long-lived kernel table lists them in the order they happened to be created).
 * - The table is mutated in place at sync; JavaScript runs a sync and a packet never at the same
 *   time, so a packet sees the whole old state or the whole new one.
 */
import { createHash } from "node:crypto";
import { formatCidr, maskOf } from "../../cluster/addressing.ts";
import { IpProtocol, formatIpv4 } from "../../overlay/wire/index.ts";
import { CtState, type PacketView } from "../packet.ts";
import { CONTINUE, DropReason, Hook, Priority, type HookContext, type RuleSet, type Verdict } from "../netfilter.ts";
import type { BackendOptions, DumpTool, ProxyBackend } from "./backend.ts";
import { KeyTable, mixKey } from "./table.ts";
import {
  MASQ_MARK,
  categorize,
  externallyAccessible,
  externalPolicyLocal,
  usesClusterEndpoints,
  usesLocalEndpoints,
  type EndpointInfo,
  type ProxyNode,
  type ProxyState,
  type ServicePortInfo,
} from "./model.ts";

/** At most this many clients per affinity set; the least recently updated one is evicted first. */
export const AFFINITY_SET_MAX = 65_536;

const TABLE = "kube-proxy";

// Chain-name prefixes (proxier.go servicePortPolicyClusterChainNamePrefix and friends).
const SERVICE_PREFIX = "service-";
const LOCAL_PREFIX = "local-";
const EXTERNAL_PREFIX = "external-";
const ENDPOINT_PREFIX = "endpoint-";
const AFFINITY_PREFIX = "affinity-";
const FIREWALL_PREFIX = "firewall-";

/** knftables.NameLengthMax (256) minus chainNamePrefixLengthMax (16), proxier.go chainNameBaseLengthMax. */
const CHAIN_NAME_BASE_MAX = 240;

const MARK_TEXT = `0x${MASQ_MARK.toString(16).padStart(8, "0")}`;

type DnatVerdict = Extract<Verdict, { kind: "dnat" }>;

// ---------------------------------------------------------------------------------------------
// Names (proxier.go hashAndTruncate, servicePortChainNameBase, servicePortEndpointChainNameBase)

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** The first 8 characters of base32.StdEncoding(sha256(name)): exactly the first 5 bytes. */
function hash8(name: string): string {
  const d = createHash("sha256").update(name).digest();
  let bits = 0;
  let acc = 0;
  let out = "";
  for (let i = 0; i < 5; i++) {
    acc = (acc << 8) | d[i]!;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

/** hashAndTruncate: the hash keeps truncated names unique and near-identical names distinguishable. */
export function hashAndTruncate(name: string): string {
  const n = `${hash8(name)}-${name}`;
  return n.length > CHAIN_NAME_BASE_MAX ? `${n.slice(0, CHAIN_NAME_BASE_MAX - 3)}...` : n;
}

function protoLower(protocol: number): string {
  return protocol === IpProtocol.UDP ? "udp" : "tcp";
}

/** servicePortChainNameBase: "HASH-namespace/name/protocol/portName", e.g. "ULMVA6XW-ns1/svc1/tcp/p80". */
export function servicePortChainNameBase(sp: Pick<ServicePortInfo, "namespace" | "name" | "portName" | "protocol">): string {
  return hashAndTruncate(`${sp.namespace}/${sp.name}/${protoLower(sp.protocol)}/${sp.portName}`);
}

/** servicePortEndpointChainNameBase: "HASH-namespace/name/protocol/portName__ip/port". */
export function endpointChainNameBase(sp: Pick<ServicePortInfo, "namespace" | "name" | "portName" | "protocol">, ep: Pick<EndpointInfo, "ip" | "port">): string {
  return hashAndTruncate(`${sp.namespace}/${sp.name}/${protoLower(sp.protocol)}/${sp.portName}__${formatIpv4(ep.ip)}/${ep.port}`);
}

// ---------------------------------------------------------------------------------------------
// Numeric keys and the map rows

/**
 * `meta l4proto` as a 2-bit index: a map key is (ip, proto * PORT_SPAN + port) in a KeyTable
 * (table.ts), ip (32) . proto (2) . port (16) packed into 50 bits.
 */
function protoIndex(protocol: number): number {
  return protocol === IpProtocol.TCP ? 0 : protocol === IpProtocol.UDP ? 1 : -1;
}
const PORT_SPAN = 0x1_0000;

// Row layout of the NAT maps (service-ips, service-nodeports): one element a row of two doubles
// (16 bytes) at load at most 3/4, so 10,000 services fit in 256 KiB, well inside L2, and a
// lookup reads one cache line of the table. Column 0 is the KeyTable's key.
const ROW = 2;
const NAT_LOAD = 0.75;
/**
 * One exact integer: (pool base + 1) * 2^24 + endpoint count * 16 + flags. The pool base is
 * where the main path's (the element's own goto) verdicts start; a count of 0 = no way on.
 */
const R_VALUE = 1;
const VALUE_BASE = 0x100_0000;
/** Endpoints per path: 20 bits (EndpointSlices allow far fewer per service). */
const MAX_PATH_ENDPOINTS = 0xf_ffff;

const NAT_DIRECT = 0;
const NAT_EXTERNAL_CLUSTER = 1;
const NAT_EXTERNAL_LOCAL = 2;
const NAT_KIND = 3;
/** The chain's masquerade rule `ip daddr <ClusterIP> <proto> dport <port> ip saddr != <pod CIDR>` can match. */
const F_MASQ = 4;
/** sessionAffinity ClientIP: `ip saddr @affinity-...` rules precede numgen. */
const F_AFFINITY = 8;

/** externalTrafficPolicy Local: the "short-circuit" paths into the cluster chain (n endpoints each). */
interface ShortPaths {
  readonly n: number;
  readonly pod: number;
  readonly local: number;
}

/** A NAT map element's cold side: what nft prints, who owns it, which pool ranges it holds. */
interface NatMeta extends ElemBase {
  /** (base, size) pairs in the verdict pool. */
  readonly allocs: readonly number[];
  readonly short: ShortPaths | undefined;
}

/**
 * Verdicts and affinity sets of every NAT path, in ranges of one flat array each: a path of n
 * endpoints at `base` has its numgen verdicts at base..base+n-1, its affinity verdicts right
 * after, and its endpoints' affinity sets at base..base+n-1 of `sets`. Freed ranges are reused
 * by size; a full sync starts a fresh pool.
 */
class VerdictPool {
  readonly verdicts: (DnatVerdict | undefined)[] = [];
  readonly sets: (AffinitySet | undefined)[] = [];
  private readonly free = new Map<number, number[]>();
  garbage = 0;

  alloc(size: number): number {
    const reuse = this.free.get(size)?.pop();
    if (reuse !== undefined) {
      this.garbage -= size;
      return reuse;
    }
    const base = this.verdicts.length;
    for (let i = 0; i < size; i++) {
      this.verdicts.push(undefined);
      this.sets.push(undefined);
    }
    return base;
  }

  release(base: number, size: number): void {
    for (let i = base; i < base + size; i++) {
      this.verdicts[i] = undefined;
      this.sets[i] = undefined;
    }
    let l = this.free.get(size);
    if (!l) this.free.set(size, (l = []));
    l.push(base);
    this.garbage += size;
  }

  /** Worth a fresh pool (a full rebuild) when most of it is free ranges. */
  get fragmented(): boolean {
    return this.garbage > 4096 && this.garbage * 2 > this.verdicts.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Affinity sets (`set affinity-... { type ipv4_addr; flags dynamic,timeout; timeout Ns; }`)

/**
 * One endpoint's set of client IPs with element timeouts. `update @set { ip saddr }` adds or
 * refreshes; `ip saddr @set` matches while the element has not expired. A node pool with
 * chained buckets and an LRU list in typed arrays: lookups and updates allocate nothing; the pool
 * doubles (up to AFFINITY_SET_MAX) only when the set grows.
 */
export class AffinitySet {
  timeoutMs: number;
  private keyOf = new Int32Array(0);
  private expires = new Float64Array(0);
  private chain = new Int32Array(0);
  private older = new Int32Array(0);
  private newer = new Int32Array(0);
  private buckets = new Int32Array(0);
  private bucketMask = 0;
  private used = 0;
  private free = -1;
  private oldest = -1;
  private newest = -1;
  private live = 0;

  constructor(
    readonly name: string,
    timeoutSeconds: number,
  ) {
    this.timeoutMs = timeoutSeconds * 1000;
    this.resize(8);
  }

  get size(): number {
    return this.live;
  }

  private resize(cap: number): void {
    const grow = <T extends Int32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const a = make(cap);
      a.set(old);
      return a;
    };
    this.keyOf = grow(this.keyOf, (n) => new Int32Array(n));
    this.expires = grow(this.expires, (n) => new Float64Array(n));
    this.chain = grow(this.chain, (n) => new Int32Array(n));
    this.older = grow(this.older, (n) => new Int32Array(n));
    this.newer = grow(this.newer, (n) => new Int32Array(n));
    this.buckets = new Int32Array(cap * 2).fill(-1);
    this.bucketMask = cap * 2 - 1;
    // Rehash the live nodes (walk the LRU list: it holds exactly them).
    for (let n = this.oldest; n !== -1; n = this.newer[n]!) {
      const b = mixKey(this.keyOf[n]!, 0) & this.bucketMask;
      this.chain[n] = this.buckets[b]!;
      this.buckets[b] = n;
    }
  }

  /** The node holding the packet's source address, or -1 (reads pkt.src itself: see KeyTable.probe in table.ts). */
  private find(pkt: PacketView): number {
    const key = pkt.src | 0;
    for (let n = this.buckets[mixKey(key, 0) & this.bucketMask]!; n !== -1; n = this.chain[n]!) if (this.keyOf[n] === key) return n;
    return -1;
  }

  private unlink(n: number): void {
    const o = this.older[n]!;
    const w = this.newer[n]!;
    if (o === -1) this.oldest = w;
    else this.newer[o] = w;
    if (w === -1) this.newest = o;
    else this.older[w] = o;
  }

  private appendNewest(n: number): void {
    this.older[n] = this.newest;
    this.newer[n] = -1;
    if (this.newest === -1) this.oldest = n;
    else this.newer[this.newest] = n;
    this.newest = n;
  }

  private remove(n: number): void {
    const b = mixKey(this.keyOf[n]!, 0) & this.bucketMask;
    if (this.buckets[b] === n) this.buckets[b] = this.chain[n]!;
    else {
      let p = this.buckets[b]!;
      while (this.chain[p] !== n) p = this.chain[p]!;
      this.chain[p] = this.chain[n]!;
    }
    this.unlink(n);
    this.chain[n] = this.free;
    this.free = n;
    this.live--;
  }

  /**
   * `ip saddr @affinity-...`: an unexpired element; an expired one is removed (the kernel's GC).
   * Takes the packet and context, not numbers (see KeyTable.probe in table.ts).
   */
  has(pkt: PacketView, ctx: HookContext): boolean {
    const n = this.find(pkt);
    if (n === -1) return false;
    if (this.expires[n]! > ctx.now) return true;
    this.remove(n);
    return false;
  }

  /** `update @affinity-... { ip saddr }`: add, or refresh the timeout of, the source address. */
  update(pkt: PacketView, ctx: HookContext): void {
    const now = ctx.now;
    let n = this.find(pkt);
    if (n !== -1) {
      this.expires[n] = now + this.timeoutMs;
      this.unlink(n);
      this.appendNewest(n);
      return;
    }
    if (this.live >= AFFINITY_SET_MAX) this.remove(this.oldest);
    if (this.free !== -1) {
      n = this.free;
      this.free = this.chain[n]!;
    } else {
      if (this.used === this.keyOf.length) this.resize(Math.min(this.keyOf.length * 2, AFFINITY_SET_MAX));
      n = this.used++;
    }
    const key = pkt.src | 0;
    this.keyOf[n] = key;
    this.expires[n] = now + this.timeoutMs;
    const b = mixKey(key, 0) & this.bucketMask;
    this.chain[n] = this.buckets[b]!;
    this.buckets[b] = n;
    this.appendNewest(n);
    this.live++;
  }

  /** Unexpired elements, oldest first, with the time they have left (for `nft list`). */
  elements(now: number): { ip: number; remainingMs: number }[] {
    const out: { ip: number; remainingMs: number }[] = [];
    for (let n = this.oldest; n !== -1; n = this.newer[n]!) {
      const left = this.expires[n]! - now;
      if (left > 0) out.push({ ip: this.keyOf[n]! >>> 0, remainingMs: left });
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Compiled state

interface EndpointRt {
  readonly name: string;
  readonly ip: number;
  readonly port: number;
  readonly affinity: AffinitySet | undefined;
}

/** A service-/local- chain at compile time: its masquerade rule, its endpoints. */
interface PolicyRt {
  readonly name: string;
  /** The internal-traffic masquerade rule (`ip daddr X tcp dport P ip saddr != podCIDR`) is in this chain. */
  readonly masq: boolean;
  readonly endpoints: readonly EndpointRt[];
}

/** What every map element has: its key, and the text nft prints for it. */
interface ElemBase {
  readonly ip: number;
  readonly pp: number;
  /** The element as nft prints it: key, optional comment, and `: verdict` for maps. */
  readonly text: string;
  readonly owner: string;
}

interface VerdictElem extends ElemBase {
  readonly verdict: Verdict;
}

interface FirewallElem extends ElemBase {
  /** Allowed sources as (network, mask) pairs. */
  readonly allow: Uint32Array;
  readonly drop: Verdict;
}

interface ClusterIpElem {
  readonly ip: number;
  readonly owners: Set<string>;
  readonly reject: Verdict;
}

interface ChainText {
  readonly name: string;
  readonly comment?: string;
  readonly rules: readonly string[];
}

type NatTableName = "service-ips" | "service-nodeports";
type FilterTable = "no-endpoint-services" | "no-endpoint-nodeports" | "firewall-ips";
type Table = NatTableName | FilterTable;

/** A service port's chains at compile time; `nft list` renders them from it. */
interface PortLayout {
  readonly sp: ServicePortInfo;
  /** "tcp" or "udp" as nft prints it. */
  readonly proto: string;
  /** Protocol index and port, the low bits of the map key. */
  readonly pp: number;
  /** allLocallyReachableEndpoints: one endpoint- chain each. */
  readonly endpoints: readonly EndpointRt[];
  readonly cluster: PolicyRt | undefined;
  readonly local: PolicyRt | undefined;
  /** Where ClusterIP traffic goes; undefined when it has no endpoint (no-endpoint-services). */
  readonly internal: PolicyRt | undefined;
  readonly hasEndpoints: boolean;
  readonly hasExternalEndpoints: boolean;
  /** The external- chain exists (externally accessible, with endpoints somewhere). */
  readonly external: boolean;
  readonly externalName: string;
  readonly extLocal: boolean;
  /** The external chain's fall-through; undefined when external traffic has no endpoint. */
  readonly externalPolicy: PolicyRt | undefined;
  readonly affinity: boolean;
  readonly firewallName: string;
  /** The firewall- chain's rule, when loadBalancerSourceRanges apply. */
  readonly firewallRule: string | undefined;
  readonly firewallAllow: Uint32Array | undefined;
}

interface CompiledPort {
  readonly id: string;
  readonly clusterIP: number;
  readonly layout: PortLayout;
  readonly affinity: readonly AffinitySet[];
  readonly elems: { table: Table; ip: number; pp: number }[];
}

/** A service port's chains as nft prints them, in the order ensureChain creates them. */
function renderChains(l: PortLayout, podCidr: string): ChainText[] {
  const out: ChainText[] = [];
  for (const e of l.endpoints) {
    const rules = [`ip saddr ${formatIpv4(e.ip)} jump mark-for-masquerade`];
    if (e.affinity) rules.push(`update @${e.affinity.name} { ip saddr }`);
    rules.push(`meta l4proto ${l.proto} dnat to ${formatIpv4(e.ip)}:${e.port}`);
    out.push({ name: e.name, rules });
  }
  for (const c of [l.cluster, l.local]) {
    if (!c) continue;
    const rules: string[] = [];
    if (c.masq) rules.push(`ip daddr ${formatIpv4(l.sp.clusterIP)} ${l.proto} dport ${l.sp.port} ip saddr != ${podCidr} jump mark-for-masquerade`);
    if (l.affinity) for (const e of c.endpoints) rules.push(`ip saddr @${e.affinity!.name} goto ${e.name}`);
    rules.push(`numgen random mod ${c.endpoints.length} vmap { ${c.endpoints.map((e, i) => `${i} : goto ${e.name}`).join(", ")} }`);
    out.push({ name: c.name, rules });
  }
  if (l.external) {
    const rules: string[] = [];
    if (!l.extLocal) rules.push("jump mark-for-masquerade");
    else if (l.cluster) {
      rules.push(`ip saddr ${podCidr} goto ${l.cluster.name} comment "short-circuit pod traffic"`);
      rules.push('fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"');
      rules.push(`fib saddr type local goto ${l.cluster.name} comment "short-circuit local traffic"`);
    } else {
      // Both policies Local: there is no cluster chain to short-circuit to, only the mark.
      rules.push('fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"');
    }
    if (l.externalPolicy) rules.push(`goto ${l.externalPolicy.name}`);
    out.push({ name: l.externalName, rules });
  }
  if (l.firewallRule !== undefined) out.push({ name: l.firewallName, rules: [l.firewallRule] });
  return out;
}

// ---------------------------------------------------------------------------------------------
// The fixed part of the table (proxier.go setupNFTables)

interface BaseChainDef {
  name: string;
  type: "filter" | "nat";
  hook: Hook;
  hookName: string;
  priority: number;
  priorityText: string;
  rules: string[];
}

/** nftablesBaseChains and the jumps of nftablesJumpChains, in kube-proxy's order. */
const BASE_CHAINS: readonly BaseChainDef[] = [
  { name: "filter-prerouting-pre-dnat", type: "filter", hook: Hook.Prerouting, hookName: "prerouting", priority: Priority.DstNat - 10, priorityText: "dstnat - 10", rules: ["ct state new jump firewall-check"] },
  { name: "filter-output-pre-dnat", type: "filter", hook: Hook.Output, hookName: "output", priority: Priority.DstNat - 10, priorityText: "dstnat - 10", rules: ["ct state new jump firewall-check"] },
  { name: "filter-input", type: "filter", hook: Hook.Input, hookName: "input", priority: Priority.Filter, priorityText: "filter", rules: ["ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"] },
  { name: "filter-forward", type: "filter", hook: Hook.Forward, hookName: "forward", priority: Priority.Filter, priorityText: "filter", rules: ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"] },
  { name: "filter-output", type: "filter", hook: Hook.Output, hookName: "output", priority: Priority.Filter, priorityText: "filter", rules: ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"] },
  { name: "nat-prerouting", type: "nat", hook: Hook.Prerouting, hookName: "prerouting", priority: Priority.DstNat, priorityText: "dstnat", rules: ["jump services"] },
  { name: "nat-output", type: "nat", hook: Hook.Output, hookName: "output", priority: Priority.DstNat, priorityText: "dstnat", rules: ["jump services"] },
  { name: "nat-postrouting", type: "nat", hook: Hook.Postrouting, hookName: "postrouting", priority: Priority.SrcNat, priorityText: "srcnat", rules: ["jump masquerading"] },
];

/**
 * The regular chains setupNFTables creates, in creation order. --nodeport-addresses is unset
 * (MatchAll), so NodePorts are matched by `fib daddr type local` and nodeport-ips does not
 * exist; no ServiceCIDRs are known, so cluster-ips-check has no "unallocated ClusterIP" drop.
 */
const FIXED_CHAINS: readonly ChainText[] = [
  { name: "nodeport-endpoints-check", rules: ["ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports"] },
  { name: "service-endpoints-check", rules: ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"] },
  { name: "firewall-check", rules: ["ip daddr . meta l4proto . th dport vmap @firewall-ips"] },
  { name: "services", rules: ["ip daddr . meta l4proto . th dport vmap @service-ips", "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"] },
  { name: "masquerading", rules: [`meta mark & ${MARK_TEXT} == 0x00000000 return`, `meta mark set meta mark ^ ${MARK_TEXT}`, "masquerade fully-random"] },
  { name: "cluster-ips-check", rules: ['ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'] },
  { name: "mark-for-masquerade", rules: [`meta mark set meta mark | ${MARK_TEXT}`] },
  { name: "reject-chain", comment: "helper for @no-endpoint-services / @no-endpoint-nodeports", rules: ["reject"] },
];

interface MapDef {
  name: Table;
  kind: "map";
  type: string;
  comment: string;
}
/** The sets and maps of setupNFTables, in creation order (cluster-ips is a set, handled apart). */
const MAPS: readonly MapDef[] = [
  { name: "no-endpoint-services", kind: "map", type: "ipv4_addr . inet_proto . inet_service : verdict", comment: "vmap to drop or reject packets to services with no endpoints" },
  { name: "no-endpoint-nodeports", kind: "map", type: "inet_proto . inet_service : verdict", comment: "vmap to drop or reject packets to service nodeports with no endpoints" },
  { name: "firewall-ips", kind: "map", type: "ipv4_addr . inet_proto . inet_service : verdict", comment: "destinations that are subject to LoadBalancerSourceRanges" },
  { name: "service-ips", kind: "map", type: "ipv4_addr . inet_proto . inet_service : verdict", comment: "ClusterIP, ExternalIP and LoadBalancer IP traffic" },
  { name: "service-nodeports", kind: "map", type: "inet_proto . inet_service : verdict", comment: "NodePort traffic" },
];

const MASQUERADE: Verdict = { kind: "masquerade", rule: `nft masquerading meta mark & ${MARK_TEXT} != 0 -> masquerade fully-random` };

/** nft's time_print: "3h", "2h59m59s", "1s500ms". */
function nftTime(ms: number): string {
  let rest = Math.max(0, Math.floor(ms));
  const parts: [number, string][] = [
    [86_400_000, "d"],
    [3_600_000, "h"],
    [60_000, "m"],
    [1000, "s"],
  ];
  let out = "";
  for (const [unit, suffix] of parts) {
    const n = Math.floor(rest / unit);
    rest -= n * unit;
    if (n > 0) out += `${n}${suffix}`;
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}

/** nft's set_expr_print: ", " within a line; ",\n\t\t\t     " between lines (calculate_delim). */
function elementsLine(items: readonly string[], perLine: number): string {
  let out = "\t\telements = { ";
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out += i % perLine === 0 ? ",\n\t\t\t     " : ", ";
    out += items[i];
  }
  return `${out} }\n`;
}

function chainBlock(c: ChainText, base?: BaseChainDef): string {
  let out = `\tchain ${c.name} {`;
  if (c.comment !== undefined) out += `\n\t\tcomment "${c.comment}"`;
  out += "\n";
  if (base) out += `\t\ttype ${base.type} hook ${base.hookName} priority ${base.priorityText}; policy accept;\n`;
  for (const r of c.rules) out += `\t\t${r}\n`;
  return `${out}\t}\n`;
}

// ---------------------------------------------------------------------------------------------
// The backend

export class NftablesBackend implements ProxyBackend {
  readonly mode = "nftables" as const;
  private readonly node: ProxyNode;
  private readonly rng: () => number;
  private readonly podNet: number;
  private readonly podMask: number;
  private readonly podCidrText: string;

  private readonly serviceIps = new KeyTable<NatMeta>(ROW, NAT_LOAD);
  private readonly serviceNodePorts = new KeyTable<NatMeta>(ROW, NAT_LOAD);
  private pool = new VerdictPool();
  private readonly noEndpointServices = new KeyTable<VerdictElem>();
  private readonly noEndpointNodePorts = new KeyTable<VerdictElem>();
  private readonly firewallIps = new KeyTable<FirewallElem>();
  private readonly filterTables: Record<FilterTable, KeyTable<ElemBase>> = {
    "no-endpoint-services": this.noEndpointServices,
    "no-endpoint-nodeports": this.noEndpointNodePorts,
    "firewall-ips": this.firewallIps,
  };
  private readonly natTables: Record<NatTableName, KeyTable<NatMeta>> = {
    "service-ips": this.serviceIps,
    "service-nodeports": this.serviceNodePorts,
  };
  private readonly clusterIps = new KeyTable<ClusterIpElem>();
  private readonly compiled = new Map<string, CompiledPort>();
  /** Affinity sets by name: runtime state that survives syncs while a service port uses them. */
  private readonly affinitySets = new Map<string, AffinitySet>();
  /** How many compiled service ports use each set (a set is dropped at 0). */
  private readonly affinityRefs = new Map<AffinitySet, number>();
  /** Service ports in id order (the dump order). */
  private order: CompiledPort[] = [];
  private synced = false;
  /** The latest ctx.now seen: `nft list` prints "expires" against it (dump has no clock of its own). */
  private clock = 0;
  private readonly ruleSets: readonly RuleSet[];

  constructor(opts: BackendOptions) {
    this.node = opts.node;
    this.rng = opts.rng;
    this.podMask = maskOf(opts.node.clusterCidr.prefix);
    this.podNet = opts.node.clusterCidr.network;
    this.podCidrText = formatCidr(opts.node.clusterCidr);
    this.ruleSets = this.makeRuleSets();
  }

  // --- sync ----------------------------------------------------------------------------------

  sync(state: ProxyState, changed: ReadonlySet<string> | undefined): readonly RuleSet[] {
    // A pool mostly made of freed ranges is compacted by a full rebuild (kube-proxy also falls
    // back to a full sync now and then).
    const partial = changed !== undefined && this.synced && !this.pool.fragmented;
    if (!partial) {
      // A full sync rebuilds every map and chain (setupNFTables flushes the containers);
      // affinity sets are only re-added, so their elements survive (tx.Add of an existing set).
      for (const t of Object.values(this.filterTables)) t.clear();
      this.serviceIps.clear();
      this.serviceNodePorts.clear();
      this.pool = new VerdictPool();
      this.clusterIps.clear();
      this.compiled.clear();
      for (const s of this.affinitySets.values()) this.affinityRefs.set(s, 0);
    } else {
      for (const id of changed) {
        const old = this.compiled.get(id);
        if (old) this.uncompile(old);
      }
    }
    const order: CompiledPort[] = [];
    for (const sp of state.servicePorts) {
      let c = partial && !changed.has(sp.id) ? this.compiled.get(sp.id) : undefined;
      if (!c) {
        c = this.compile(sp);
        this.compiled.set(sp.id, c);
      }
      order.push(c);
    }
    this.order = order;
    // Stale affinity sets go at once (proxier.go deletes sets not in activeAffinitySets).
    for (const [set, refs] of this.affinityRefs) {
      if (refs > 0) continue;
      this.affinityRefs.delete(set);
      this.affinitySets.delete(set.name);
    }
    this.synced = true;
    return this.ruleSets;
  }

  private uncompile(c: CompiledPort): void {
    for (const e of c.elems) {
      // Another service port may have taken this key since (last writer wins, as
      // nftElementStorage.ensureElem replaces a value): only remove what is still ours.
      if (e.table === "service-ips" || e.table === "service-nodeports") {
        const t = this.natTables[e.table];
        const o = t.find(e.ip, e.pp);
        if (o >= 0 && t.at(o)?.owner === c.id) this.releasePaths(t.delete(e.ip, e.pp));
      } else {
        const t = this.filterTables[e.table];
        if (t.get(e.ip, e.pp)?.owner === c.id) t.delete(e.ip, e.pp);
      }
    }
    const ce = this.clusterIps.get(c.clusterIP, 0);
    if (ce) {
      ce.owners.delete(c.id);
      if (ce.owners.size === 0) this.clusterIps.delete(c.clusterIP, 0);
    }
    for (const set of c.affinity) this.affinityRefs.set(set, (this.affinityRefs.get(set) ?? 1) - 1);
    this.compiled.delete(c.id);
  }

  private releasePaths(meta: NatMeta | undefined): void {
    if (!meta) return;
    for (let i = 0; i < meta.allocs.length; i += 2) this.pool.release(meta.allocs[i]!, meta.allocs[i + 1]!);
  }

  private affinitySet(name: string, seconds: number): AffinitySet {
    let s = this.affinitySets.get(name);
    if (!s) {
      s = new AffinitySet(name, seconds);
      this.affinitySets.set(name, s);
    }
    s.timeoutMs = seconds * 1000;
    this.affinityRefs.set(s, (this.affinityRefs.get(s) ?? 0) + 1);
    return s;
  }

  /**
   * One service port, as the body of syncProxyRules' loop writes it. Straight-line code and
   * methods, no closures: under tsx every named closure costs an Object.defineProperty, and a
   * full sync compiles every port.
   */
  private compile(sp: ServicePortInfo): CompiledPort {
    const l = this.layout(sp);
    const port: CompiledPort = { id: sp.id, clusterIP: sp.clusterIP, layout: l, affinity: l.endpoints.flatMap((e) => (e.affinity ? [e.affinity] : [])), elems: [] };
    // cluster-ips holds every ClusterIP, with or without endpoints (cluster-ips-check).
    const ce = this.clusterIps.get(sp.clusterIP, 0);
    if (ce) ce.owners.add(sp.id);
    else this.clusterIps.set(sp.clusterIP, 0, { ip: sp.clusterIP, owners: new Set([sp.id]), reject: { kind: "reject", with: "icmp-port-unreachable", rule: `nft cluster-ips-check ip daddr @cluster-ips ${formatIpv4(sp.clusterIP)} -> reject (no such service port)` } });
    // The ClusterIP goes to the internal traffic chain, or to no-endpoint-services: reject
    // without any endpoint, drop for internalTrafficPolicy Local without a local one.
    const clusterKey = `${formatIpv4(sp.clusterIP)} . ${l.proto} . ${sp.port}`;
    if (l.internal) {
      const allocs: number[] = [];
      const base = this.writePath(l, l.internal, `nft service-ips ${clusterKey}`, allocs);
      const flags = NAT_DIRECT | (l.internal.masq ? F_MASQ : 0) | (l.affinity ? F_AFFINITY : 0);
      this.addNat(port, "service-ips", sp.clusterIP, l.pp, `${clusterKey} : goto ${l.internal.name}`, flags, l.internal.endpoints.length, base, undefined, allocs);
    } else this.addNoEndpoints(port, "no-endpoint-services", sp.clusterIP, l.pp, clusterKey);
    // External IPs and load-balancer IPs go to the external chain (for its short-circuits even
    // without external endpoints), and to no-endpoint-services when external traffic has
    // nowhere to go.
    for (const ip of sp.externalIPs) {
      const key = `${formatIpv4(ip)} . ${l.proto} . ${sp.port}`;
      if (l.hasEndpoints) this.addExternal(port, "service-ips", ip, l.pp, key);
      if (!l.hasExternalEndpoints) this.addNoEndpoints(port, "no-endpoint-services", ip, l.pp, key);
    }
    for (const ip of sp.loadBalancerIPs) {
      const key = `${formatIpv4(ip)} . ${l.proto} . ${sp.port}`;
      if (l.hasEndpoints) this.addExternal(port, "service-ips", ip, l.pp, key);
      if (l.firewallAllow) {
        // firewall-ips elements carry no comment (proxier.go adds none).
        const drop: Verdict = { kind: "drop", reason: DropReason.Rule, rule: `nft firewall-ips ${key} -> ${l.firewallName} -> ${l.firewallRule}` };
        this.firewallIps.set(ip, l.pp, { ip, pp: l.pp, text: `${key} : goto ${l.firewallName}`, owner: sp.id, allow: l.firewallAllow, drop });
        port.elems.push({ table: "firewall-ips", ip, pp: l.pp });
      }
    }
    if (!l.hasExternalEndpoints) {
      for (const ip of sp.loadBalancerIPs) this.addNoEndpoints(port, "no-endpoint-services", ip, l.pp, `${formatIpv4(ip)} . ${l.proto} . ${sp.port}`);
    }
    // NodePorts are not subject to loadBalancerSourceRanges (proxier.go, "for better or for worse").
    if (sp.nodePort !== 0) {
      const npp = protoIndex(sp.protocol) * PORT_SPAN + sp.nodePort;
      const key = `${l.proto} . ${sp.nodePort}`;
      if (l.hasEndpoints) this.addExternal(port, "service-nodeports", 0, npp, key);
      if (!l.hasExternalEndpoints) this.addNoEndpoints(port, "no-endpoint-nodeports", 0, npp, key);
    }
    return port;
  }

  /** Which chains a service port has and what they hold (proxier.go, the top of the loop). */
  private layout(sp: ServicePortInfo): PortLayout {
    const base = servicePortChainNameBase(sp);
    const { cluster, local, allReachable, hasAnyEndpoints: hasEndpoints } = categorize(sp);
    const affinity = sp.affinitySeconds !== undefined;
    const byEndpoint = new Map<EndpointInfo, EndpointRt>();
    for (const ep of allReachable) {
      const epBase = endpointChainNameBase(sp, ep);
      const set = affinity ? this.affinitySet(AFFINITY_PREFIX + epBase, sp.affinitySeconds!) : undefined;
      byEndpoint.set(ep, { name: ENDPOINT_PREFIX + epBase, ip: ep.ip, port: ep.port, affinity: set });
    }
    // Internal (ClusterIP) traffic uses the local chain for internalTrafficPolicy Local;
    // without local endpoints it is dropped (proxier.go hasInternalEndpoints).
    const internalLocal = sp.internalPolicyLocal;
    const hasInternalEndpoints = hasEndpoints && (!internalLocal || local.length > 0);
    const extLocal = externalPolicyLocal(sp);
    const hasExternalEndpoints = hasEndpoints && (!extLocal || local.length > 0);
    const clusterRt: PolicyRt | undefined =
      cluster.length > 0 && usesClusterEndpoints(sp) ? { name: SERVICE_PREFIX + base, masq: !internalLocal && hasInternalEndpoints, endpoints: cluster.map((e) => byEndpoint.get(e)!) } : undefined;
    const localRt: PolicyRt | undefined =
      local.length > 0 && usesLocalEndpoints(sp) ? { name: LOCAL_PREFIX + base, masq: internalLocal && hasInternalEndpoints, endpoints: local.map((e) => byEndpoint.get(e)!) } : undefined;
    let firewallAllow: Uint32Array | undefined;
    let firewallRule: string | undefined;
    if (sp.loadBalancerIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0) {
      // A range holding the node IP also admits the LB IPs themselves: a VIP configured on the
      // node loops back with itself as the source (proxier.go allowFromNode).
      const sources: string[] = [];
      const allow: number[] = [];
      let allowFromNode = false;
      for (const c of sp.loadBalancerSourceRanges) {
        sources.push(formatCidr(c));
        const m = maskOf(c.prefix);
        allow.push(c.network, m);
        if (((this.node.nodeIp & m) >>> 0) === c.network) allowFromNode = true;
      }
      if (allowFromNode) {
        for (const ip of sp.loadBalancerIPs) {
          sources.push(formatIpv4(ip));
          allow.push(ip, 0xffff_ffff);
        }
      }
      // nft turns a one-element anonymous set into a plain comparison.
      firewallRule = `ip saddr != ${sources.length === 1 ? sources[0]! : `{ ${sources.join(", ")} }`} drop`;
      firewallAllow = Uint32Array.from(allow);
    }
    return {
      sp,
      proto: protoLower(sp.protocol),
      pp: protoIndex(sp.protocol) * PORT_SPAN + sp.port,
      endpoints: [...byEndpoint.values()],
      cluster: clusterRt,
      local: localRt,
      internal: hasInternalEndpoints ? (internalLocal ? localRt : clusterRt) : undefined,
      hasEndpoints,
      hasExternalEndpoints,
      external: hasEndpoints && externallyAccessible(sp),
      externalName: EXTERNAL_PREFIX + base,
      extLocal,
      externalPolicy: hasExternalEndpoints ? (extLocal ? localRt : clusterRt) : undefined,
      affinity,
      firewallName: FIREWALL_PREFIX + base,
      firewallRule,
      firewallAllow,
    };
  }

  /**
   * Writes the verdicts of one way into a policy chain: per endpoint, DNAT reached by numgen,
   * then (with affinity) DNAT reached by the endpoint's affinity set. Returns the pool base.
   */
  private writePath(l: PortLayout, c: PolicyRt, prefix: string, allocs: number[]): number {
    const n = c.endpoints.length;
    const size = l.affinity ? 2 * n : n;
    const b = this.pool.alloc(size);
    allocs.push(b, size);
    for (let i = 0; i < n; i++) {
      const e = c.endpoints[i]!;
      const tail = `${e.name} -> dnat to ${formatIpv4(e.ip)}:${e.port}`;
      this.pool.verdicts[b + i] = { kind: "dnat", addr: e.ip, port: e.port, rule: `${prefix} -> ${c.name} -> numgen ${i}/${n} -> ${tail}` };
      if (l.affinity) {
        this.pool.verdicts[b + n + i] = { kind: "dnat", addr: e.ip, port: e.port, rule: `${prefix} -> ${c.name} -> ip saddr @${e.affinity!.name} -> ${tail}` };
        this.pool.sets[b + i] = e.affinity;
      }
    }
    return b;
  }

  private addNat(port: CompiledPort, table: NatTableName, ip: number, pp: number, text: string, flags: number, n: number, base: number, short: ShortPaths | undefined, allocs: number[]): void {
    const meta: NatMeta = { ip, pp, text, owner: port.id, allocs, short };
    if (n > MAX_PATH_ENDPOINTS) throw new RangeError(`${port.id}: more than ${MAX_PATH_ENDPOINTS} endpoints`);
    const t = this.natTables[table];
    const replaced = t.get(ip, pp);
    const o = t.set(ip, pp, meta); // may grow the table: t.rows read after
    t.rows[o + R_VALUE] = (base + 1) * VALUE_BASE + n * 16 + flags;
    this.releasePaths(replaced);
    port.elems.push({ table, ip, pp });
  }

  /** An element going to the external- chain: its fall-through and, for Local, its short-circuits. */
  private addExternal(port: CompiledPort, table: NatTableName, ip: number, pp: number, key: string): void {
    const l = port.layout;
    const via = `nft ${table} ${key} -> ${l.externalName}`;
    const allocs: number[] = [];
    const aff = l.affinity ? F_AFFINITY : 0;
    const n = l.externalPolicy ? l.externalPolicy.endpoints.length : 0;
    const base = l.externalPolicy ? this.writePath(l, l.externalPolicy, via, allocs) : -1;
    let short: ShortPaths | undefined;
    if (l.extLocal && l.cluster) {
      const pod = this.writePath(l, l.cluster, `${via} (short-circuit pod traffic)`, allocs);
      const local = this.writePath(l, l.cluster, `${via} (short-circuit local traffic)`, allocs);
      short = { n: l.cluster.endpoints.length, pod, local };
    }
    this.addNat(port, table, ip, pp, `${key} : goto ${l.externalName}`, (l.extLocal ? NAT_EXTERNAL_LOCAL : NAT_EXTERNAL_CLUSTER) | aff, n, base, short, allocs);
  }

  /** A no-endpoint-* element: `goto reject-chain` without any endpoint, else `drop` (Local policy, none here). */
  private addNoEndpoints(port: CompiledPort, table: "no-endpoint-services" | "no-endpoint-nodeports", ip: number, pp: number, key: string): void {
    const reject = !port.layout.hasEndpoints;
    const where = `nft ${table} ${key} (${port.id})`;
    const verdict: Verdict = reject ? { kind: "reject", with: "icmp-port-unreachable", rule: `${where} -> goto reject-chain -> reject`, reason: DropReason.NoEndpoints } : { kind: "drop", reason: DropReason.Rule, rule: `${where} -> drop` };
    const text = `${key} comment "${port.id}" : ${reject ? "goto reject-chain" : "drop"}`;
    this.filterTables[table].set(ip, pp, { ip, pp, text, owner: port.id, verdict } as VerdictElem);
    port.elems.push({ table, ip, pp });
  }

  // --- per packet ----------------------------------------------------------------------------

  /** `services`: service-ips by (daddr, l4proto, dport), else NodePorts on a local, non-loopback daddr. */
  private services(pkt: PacketView, ctx: HookContext): Verdict {
    if (ctx.now > this.clock) this.clock = ctx.now;
    const pi = protoIndex(pkt.proto);
    if (pi < 0) return CONTINUE;
    const pp = pi * PORT_SPAN + pkt.dport;
    let t = this.serviceIps;
    let o = t.findDst(pkt, pp);
    if (o < 0) {
      if (pkt.dst >>> 24 === 127 || !this.node.isLocal(pkt.dst)) return CONTINUE;
      t = this.serviceNodePorts;
      o = t.find(0, pp);
      if (o < 0) return CONTINUE;
    }
    const value = t.rows[o + R_VALUE]!;
    const hi = Math.floor(value / VALUE_BASE);
    const low = value - hi * VALUE_BASE;
    const flags = low & 0xf;
    let n = low >>> 4;
    let base = hi - 1;
    const src = pkt.src;
    const fromPod = ((src & this.podMask) >>> 0) === this.podNet;
    const kind = flags & NAT_KIND;
    if (kind === NAT_EXTERNAL_CLUSTER) {
      // external- chain, policy Cluster: endpoints may be on other nodes, so always masquerade.
      ctx.mark |= MASQ_MARK;
    } else if (kind === NAT_EXTERNAL_LOCAL) {
      const short = t.at(o)!.short;
      if (short !== undefined && fromPod) {
        // Pods reach external destinations as if through the load balancer: no traffic policy.
        n = short.n;
        base = short.pod;
      } else if (this.node.isLocal(pkt.src)) {
        // The node's own traffic: its source is a local address (maybe the LB IP), so masquerade.
        ctx.mark |= MASQ_MARK;
        if (short !== undefined) {
          n = short.n;
          base = short.local;
        }
      }
    }
    // Falling off the external chain (Local, no local endpoint): no DNAT; the filter drops it.
    if (n === 0) return CONTINUE;
    if ((flags & F_MASQ) !== 0 && !fromPod) ctx.mark |= MASQ_MARK;
    const pool = this.pool;
    let i = -1;
    let v: DnatVerdict;
    if ((flags & F_AFFINITY) !== 0) {
      for (let j = 0; j < n; j++) {
        if (pool.sets[base + j]!.has(pkt, ctx)) {
          i = j;
          break;
        }
      }
    }
    if (i >= 0) v = pool.verdicts[base + n + i]!;
    else {
      i = Math.floor(this.rng() * n);
      if (i >= n) i = n - 1;
      else if (i < 0) i = 0;
      v = pool.verdicts[base + i]!;
    }
    // Hairpin: a pod reaching itself through the service must be masqueraded to see a reply.
    if (v.addr === src) ctx.mark |= MASQ_MARK;
    if ((flags & F_AFFINITY) !== 0) pool.sets[base + i]!.update(pkt, ctx);
    return v;
  }

  private firewallCheck(pkt: PacketView): Verdict {
    const pi = protoIndex(pkt.proto);
    if (pi < 0) return CONTINUE;
    const fw = this.firewallIps.getDst(pkt, pi * PORT_SPAN + pkt.dport);
    if (fw === undefined) return CONTINUE;
    const src = pkt.src;
    const a = fw.allow;
    for (let i = 0; i < a.length; i += 2) if (((src & a[i + 1]!) >>> 0) === a[i]) return CONTINUE;
    return fw.drop;
  }

  private serviceEndpointsCheck(pkt: PacketView): Verdict {
    const pi = protoIndex(pkt.proto);
    if (pi < 0) return CONTINUE;
    const el = this.noEndpointServices.getDst(pkt, pi * PORT_SPAN + pkt.dport);
    return el === undefined ? CONTINUE : el.verdict;
  }

  private nodePortEndpointsCheck(pkt: PacketView): Verdict {
    const pi = protoIndex(pkt.proto);
    if (pi < 0 || pkt.dst >>> 24 === 127) return CONTINUE;
    const el = this.noEndpointNodePorts.get(0, pi * PORT_SPAN + pkt.dport);
    return el === undefined ? CONTINUE : el.verdict;
  }

  /** A ClusterIP on a port no service has (traffic that matched a service was DNATed already). */
  private clusterIpsCheck(pkt: PacketView): Verdict {
    const el = this.clusterIps.getDst(pkt, 0);
    return el === undefined ? CONTINUE : el.reject;
  }

  private makeRuleSets(): readonly RuleSet[] {
    const newOnly = (f: (pkt: PacketView) => Verdict) => (pkt: PacketView, ctx: HookContext) => (ctx.ctState === CtState.New ? f(pkt) : CONTINUE);
    const evaluators: Record<string, (pkt: PacketView, ctx: HookContext) => Verdict> = {
      "filter-prerouting-pre-dnat": newOnly((p) => this.firewallCheck(p)),
      "filter-output-pre-dnat": newOnly((p) => this.firewallCheck(p)),
      "filter-input": newOnly((p) => {
        const v = this.nodePortEndpointsCheck(p);
        return v.kind !== "continue" ? v : this.serviceEndpointsCheck(p);
      }),
      "filter-forward": newOnly((p) => {
        const v = this.serviceEndpointsCheck(p);
        return v.kind !== "continue" ? v : this.clusterIpsCheck(p);
      }),
      "filter-output": newOnly((p) => {
        const v = this.serviceEndpointsCheck(p);
        return v.kind !== "continue" ? v : this.clusterIpsCheck(p);
      }),
      "nat-prerouting": (p, c) => this.services(p, c),
      "nat-output": (p, c) => this.services(p, c),
      "nat-postrouting": (_p, ctx) => {
        if ((ctx.mark & MASQ_MARK) === 0) return CONTINUE;
        // Clear the bit so it does not leak into a re-entering packet (mark xor 0x4000).
        ctx.mark ^= MASQ_MARK;
        return MASQUERADE;
      },
    };
    return BASE_CHAINS.map((b) => ({
      name: b.name,
      hook: b.hook,
      priority: b.priority,
      ...(b.type === "nat" ? { nat: true } : {}),
      evaluate: evaluators[b.name]!,
      dump: () => chainBlock({ name: b.name, rules: b.rules }, b),
    }));
  }

  // --- nft list ------------------------------------------------------------------------------

  dump(tool: DumpTool, args: readonly string[]): string | undefined {
    if (tool !== "nft") return undefined;
    const a = args.filter((x) => !x.startsWith("-"));
    if (a.length === 0 || (a[0] === "list" && a[1] === "ruleset")) return this.synced ? this.render() : "";
    if (a[0] !== "list") return `Error: unsupported command: nft ${args.join(" ")}\n`;
    if (a[1] === "tables") return this.synced ? `table ip ${TABLE}\n` : "";
    const rest = a.slice(2);
    if (rest[0] === "ip") rest.shift();
    const [first, second] = rest;
    if (a[1] === "table") return this.synced && first === TABLE ? this.render() : `Error: No such file or directory\nlist table ip ${first ?? ""}\n`;
    if ((a[1] === "chain" || a[1] === "set" || a[1] === "map") && first === TABLE && second !== undefined && this.synced) {
      const block = this.blocks().find((b) => b.kind === a[1] && b.name === second);
      if (block) return `table ip ${TABLE} {\n${block.text}}\n`;
    }
    return `Error: No such file or directory\nlist ${a[1] ?? ""} ip ${rest.join(" ")}\n`;
  }

  private render(): string {
    const blocks = this.blocks();
    return `table ip ${TABLE} {\n\tcomment "rules for kube-proxy"\n${blocks.map((b) => b.text).join("\n")}}\n`;
  }

  /** Sets and maps, then chains, each in creation order (nft's table_print). */
  private blocks(): { kind: "set" | "map" | "chain"; name: string; text: string }[] {
    const out: { kind: "set" | "map" | "chain"; name: string; text: string }[] = [];
    const cips = this.clusterIps.values().sort((x, y) => x.ip - y.ip);
    out.push({
      kind: "set",
      name: "cluster-ips",
      // ipv4_addr sets print two elements a line (calculate_delim, TYPE_IPADDR).
      text: `\tset cluster-ips {\n\t\ttype ipv4_addr\n\t\tcomment "Active ClusterIPs"\n${cips.length ? elementsLine(cips.map((c) => formatIpv4(c.ip)), 2) : ""}\t}\n`,
    });
    for (const m of MAPS) {
      const t = m.name === "service-ips" || m.name === "service-nodeports" ? this.natTables[m.name].values() : this.filterTables[m.name].values();
      const els = [...t].sort((x, y) => x.ip - y.ip || x.pp - y.pp);
      // Maps print one element a line (force_newline for NFT_SET_MAP).
      out.push({ kind: "map", name: m.name, text: `\tmap ${m.name} {\n\t\ttype ${m.type}\n\t\tcomment "${m.comment}"\n${els.length ? elementsLine(els.map((e) => e.text), 1) : ""}\t}\n` });
    }
    for (const c of this.order) {
      for (const s of c.affinity) {
        const els = s.elements(this.clock).map((e) => `${formatIpv4(e.ip)} expires ${nftTime(e.remainingMs)}`);
        out.push({ kind: "set", name: s.name, text: `\tset ${s.name} {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout ${nftTime(s.timeoutMs)}\n${els.length ? elementsLine(els, 1) : ""}\t}\n` });
      }
    }
    for (const b of BASE_CHAINS) out.push({ kind: "chain", name: b.name, text: chainBlock({ name: b.name, rules: b.rules }, b) });
    for (const c of FIXED_CHAINS) out.push({ kind: "chain", name: c.name, text: chainBlock(c) });
    for (const c of this.order) for (const ch of renderChains(c.layout, this.podCidrText)) out.push({ kind: "chain", name: ch.name, text: chainBlock(ch) });
    return out;
  }
}
