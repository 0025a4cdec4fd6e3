/**
 * The policy engine: the whole NetworkPolicy and ClusterNetworkPolicy state of the cluster,
 * compiled per pod and judged per connection, pure (no I/O, no clock, no randomness).
 *
 * Design notes:
 * - Semantics. A connection needs the source pod's egress and the destination pod's ingress to
 *   allow it; a side is judged only when it is a pod the engine knows that runs on this node
 *   (`nodeName`; every pod when unset): egress is enforced on the source's node, ingress on the
 *   destination's, as CNI plugins do. Per side the tiers run in the order the network-policy-api
 *   defines (apis/v1alpha2 ClusterNetworkPolicySpec.Tier): Admin ClusterNetworkPolicies by
 *   priority, the first matching rule decides (Accept and Deny are final, Pass skips the rest of
 *   the tier); then NetworkPolicy: a pod selected by some NetworkPolicy with that policy type is
 *   isolated and allowed only what the union of their rules allows (networking/v1 types.go,
 *   NetworkPolicySpec.Ingress/Egress); then, only for a pod no NetworkPolicy isolates in that
 *   direction, Baseline ClusterNetworkPolicies like Admin (a Pass there falls through to the
 *   default); then the default: allow.
 * - Exceptions from the Kubernetes concept page (services-networking/network-policies): a pod
 *   cannot block traffic to itself (src == dst: allowed, also for ClusterNetworkPolicy, which
 *   exempts a pod reaching its own IP), and traffic from (and to) the node a pod runs on is always
 *   allowed (the caller says which address is the node's: VerdictOptions; engine option
 *   `nodeTrafficAllowed`, default true, applies it to every tier so kubelet probes keep working).
 * - Ports. A rule without ports (NetworkPolicy) or protocols (ClusterNetworkPolicy) matches every
 *   protocol, ICMP included; a rule with ports matches only TCP, UDP or SCTP (by protocol number
 *   132, so an SCTP-only rule never lets TCP through). Named ports resolve on the destination pod:
 *   the policy's own pod for ingress, the peer for egress.
 * - Ties. ClusterNetworkPolicies of one tier with equal priority are ordered by name (the spec
 *   leaves ties to the implementation); rules by their index. NetworkPolicies are ordered by
 *   namespace/name; "the rule that allowed" a connection is the first in that order.
 *
 * Index (the reason for this file's shape): every change bumps `generation` and drops what was
 * compiled; a pod's sides are compiled lazily on its first verdict in a generation. A compiled
 * side holds, per tier, a TierTable: `byIp` (Map from peer IP to a PortSet, built from every
 * selector peer of every policy selecting the pod: pod and namespace selectors resolved to pod
 * IPs, node selectors to node IPs), `any` (the PortSet of rules with no peer list), and `cidrs`
 * (ipBlocks and networks, deduplicated by CIDR and except list). A PortSet answers (protocol,
 * port) with the first rule (lowest order) that matches: a rule matching everything, per
 * protocol a rule matching every port, an exact-port Map, disjoint sorted range segments
 * (binary search), and for egress the named ports resolved on the destination at lookup. So a
 * verdict costs a few Map lookups plus a scan of the CIDR entries, however many policies select
 * the pod. Peer IPs with the same rules share one PortSet (copied on write while building), and
 * peers are resolved once per generation by their selectors' text, whichever policy has them.
 *
 * Verdicts are preallocated: each rule's outcome and denial is made once per generation, the
 * allow verdict of an (egress, ingress) pair is cached, and texts are built on demand
 * (`detail`, `describe()`). `explain` runs the same `decide` with a trace attached.
 */
import { formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/index.ts";
import {
  Proto,
  blockContains,
  comparePolicies,
  defaultNamespaceLabels,
  formatBlock,
  formatPeer,
  formatPortMatch,
  namedPortKey,
  objectKey,
  podPeerMatches,
  policyLabel,
  protocolName,
  parseProtocol,
  readClusterNetworkPolicy,
  readNamespace,
  readNetworkPolicy,
  readNode,
  readPod,
  ruleLabel,
  rulesOf,
  selects,
  type Block,
  type Direction,
  type Labels,
  type NamespaceInfo,
  type NodeInfo,
  type ObjectKind,
  type Peer,
  type PodInfo,
  type PolicyInfo,
  type PortMatch,
  type Rule,
  type Tier,
} from "./model.ts";

// ---------------------------------------------------------------------------------------------
// Queries and verdicts

/** The first packet of a connection, after DNAT. */
export interface Connection {
  readonly src: Ipv4Addr;
  readonly dst: Ipv4Addr;
  /** IP protocol number (Proto.TCP, Proto.UDP, Proto.SCTP, Proto.ICMP, ...). */
  readonly proto: number;
  readonly srcPort: number;
  readonly dstPort: number;
}

export interface VerdictOptions {
  /** The source is this node's own address (kubelet probes, host processes). */
  readonly srcIsLocalNode?: boolean;
  /** The destination is this node's own address. */
  readonly dstIsLocalNode?: boolean;
}

export interface EngineOptions {
  /** Judge only pods on this node (spec.nodeName); every pod when unset (tests, `kubewire policy explain`). */
  readonly nodeName?: string;
  /** Allow traffic between a pod and its own node in every tier (default true; see the design notes). */
  readonly nodeTrafficAllowed?: boolean;
}

/** What matching a rule does: NetworkPolicy rules and Accept allow, Deny denies, Pass hands on. */
export type RuleEffect = "allow" | "deny" | "pass";

/** A rule of a policy in the order the engine evaluates it; one per rule and generation. */
export interface RuleRef {
  /** Lower is earlier within its tier: policy rank, then rule index. */
  readonly order: number;
  readonly policy: PolicyInfo;
  readonly rule: Rule;
  readonly tier: Tier;
  readonly direction: Direction;
  readonly effect: RuleEffect;
  /** The side's outcome when this rule decides (for Pass: the default allow it leads to when nothing later decides). */
  readonly outcome: SideOutcome;
}

export type NotJudgedWhy = "not-a-pod" | "remote-pod" | "local-node" | "self";

/** How one side (the source's egress or the destination's ingress) came out. */
export type SideOutcome =
  /** No policy of this side applies here. */
  | { readonly kind: "not-judged"; readonly direction: Direction; readonly allowed: true; readonly why: NotJudgedWhy; readonly denial: undefined }
  /** No tier decided: the Kubernetes default. `passedBy`: the last Pass rule on the way. */
  | { readonly kind: "default-allow"; readonly direction: Direction; readonly allowed: true; readonly passedBy: RuleRef | undefined; readonly denial: undefined }
  /** A rule decided: a NetworkPolicy allow, or an Accept or Deny. */
  | { readonly kind: "rule"; readonly direction: Direction; readonly allowed: boolean; readonly ref: RuleRef; readonly denial: DenyVerdict | undefined }
  /** Isolated by NetworkPolicies (listed in evaluation order) and none of their rules allows. */
  | { readonly kind: "isolated"; readonly direction: Direction; readonly allowed: false; readonly policies: readonly PolicyInfo[]; readonly denial: DenyVerdict };

export class AllowVerdict {
  readonly kind = "allow";
  readonly allowed = true;
  constructor(
    readonly egress: SideOutcome,
    readonly ingress: SideOutcome,
  ) {
    Object.freeze(this);
  }
  describe(): string {
    return `allowed: egress ${describeOutcome(this.egress)}; ingress ${describeOutcome(this.ingress)}`;
  }
}

export class DenyVerdict {
  readonly kind = "deny";
  readonly allowed = false;
  readonly reason = "policy";
  #detail: string | undefined;
  constructor(
    readonly direction: Direction,
    readonly tier: Tier,
    /** The denying side's outcome (kind "rule" or "isolated"). */
    readonly outcome: SideOutcome,
  ) {
    Object.freeze(this);
  }
  /** "default deny: selected by x/p1, x/p2, no rule allows" or "Admin name rule rule-name denies". */
  get detail(): string {
    return (this.#detail ??= describeOutcome(this.outcome));
  }
  describe(): string {
    return `denied (${this.direction}): ${this.detail}`;
  }
}

export type Verdict = AllowVerdict | DenyVerdict;

function notJudged(direction: Direction, why: NotJudgedWhy): SideOutcome {
  return Object.freeze({ kind: "not-judged", direction, allowed: true, why, denial: undefined });
}
function byDirection<T>(make: (d: Direction) => T): Readonly<Record<Direction, T>> {
  return Object.freeze({ ingress: make("ingress"), egress: make("egress") });
}
const NOT_A_POD = byDirection((d) => notJudged(d, "not-a-pod"));
const REMOTE_POD = byDirection((d) => notJudged(d, "remote-pod"));
const LOCAL_NODE = byDirection((d) => notJudged(d, "local-node"));
const SELF = byDirection((d) => notJudged(d, "self"));
const DEFAULT_ALLOW = byDirection((d): SideOutcome => Object.freeze({ kind: "default-allow", direction: d, allowed: true, passedBy: undefined, denial: undefined }));
/** A pod reaching its own address. */
export const SELF_VERDICT = new AllowVerdict(SELF.egress, SELF.ingress);

const NO_OPTIONS: VerdictOptions = Object.freeze({});

function refLabel(ref: RuleRef): string {
  return `${policyLabel(ref.policy)} rule ${ruleLabel(ref.rule)}`;
}

/** One side's outcome as a phrase ("not isolated", "NetworkPolicy x/p rule #0 allows", "default deny: ..."). */
export function describeOutcome(o: SideOutcome): string {
  switch (o.kind) {
    case "not-judged":
      switch (o.why) {
        case "not-a-pod":
          return o.direction === "egress" ? "not judged: the source is not a pod" : "not judged: the destination is not a pod";
        case "remote-pod":
          return "not judged here: the pod runs on another node";
        case "local-node":
          return o.direction === "egress" ? "allowed: to the pod's own node" : "allowed: from the pod's own node";
        case "self":
          return "allowed: a pod cannot block traffic to itself";
      }
      break;
    case "default-allow":
      return o.passedBy ? `not isolated (${refLabel(o.passedBy)} passes)` : "not isolated";
    case "rule": {
      const r = o.ref;
      if (r.tier === "NetworkPolicy") return `NetworkPolicy ${refLabel(r)} allows`;
      const closed = r.rule.failClosed ? ` (fail closed: ${r.rule.failClosed})` : "";
      return `${refLabel(r)} ${r.effect === "deny" ? "denies" : "accepts"}${closed}`;
    }
    case "isolated":
      return `default deny: selected by ${o.policies.map((p) => p.key).join(", ")}, no rule allows`;
  }
}

// ---------------------------------------------------------------------------------------------
// Port sets and tier tables

const DEFER_NAMED = "defer";
/** How a named port is read while building: on a known pod, or at lookup (egress: the destination). */
type NamedTarget = PodInfo | undefined | typeof DEFER_NAMED;

function earlier(a: RuleRef | undefined, b: RuleRef | undefined): RuleRef | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return b.order < a.order ? b : a;
}

interface RawRange {
  readonly lo: number;
  readonly hi: number;
  readonly ref: RuleRef;
}

/** The ports of one protocol: any port, exact ports, ranges (as disjoint segments), deferred names. */
class ProtoPorts {
  any: RuleRef | undefined;
  readonly exact = new Map<number, RuleRef>();
  raw: RawRange[] = [];
  /** Built by finalize from `raw`: segment k covers starts[k]..ends[k], decided by refs[k]. */
  starts: number[] = [];
  ends: number[] = [];
  refs: RuleRef[] = [];
  readonly named = new Map<string, RuleRef>();
  namedKeys: string[] = [];
  namedRefs: RuleRef[] = [];

  constructor(readonly proto: number) {}

  clone(): ProtoPorts {
    const c = new ProtoPorts(this.proto);
    c.any = this.any;
    for (const [k, v] of this.exact) c.exact.set(k, v);
    c.raw = [...this.raw];
    for (const [k, v] of this.named) c.named.set(k, v);
    return c;
  }

  addExact(port: number, ref: RuleRef): void {
    const had = this.exact.get(port);
    if (had === undefined || ref.order < had.order) this.exact.set(port, ref);
  }

  add(m: Exclude<PortMatch, { kind: "never" }>, ref: RuleRef, named: NamedTarget): void {
    switch (m.kind) {
      case "protocol":
        this.any = earlier(this.any, ref);
        return;
      case "range":
        if (m.port === m.end) this.addExact(m.port, ref);
        else this.raw.push({ lo: m.port, hi: m.end, ref });
        return;
      case "named": {
        if (named === DEFER_NAMED) {
          const had = this.named.get(m.name);
          if (had === undefined || ref.order < had.order) this.named.set(m.name, ref);
          return;
        }
        const port = named?.namedPorts.get(namedPortKey(this.proto, m.name));
        if (port !== undefined) this.addExact(port, ref);
        return;
      }
    }
  }

  /** Paints the ranges in rule order onto disjoint segments (union-find over the elementary intervals). */
  finalize(): void {
    this.namedKeys = [...this.named.keys()].map((n) => namedPortKey(this.proto, n));
    this.namedRefs = [...this.named.values()];
    if (this.raw.length === 0) {
      this.starts = [];
      this.ends = [];
      this.refs = [];
      return;
    }
    const points = [...new Set(this.raw.flatMap((r) => [r.lo, r.hi + 1]))].sort((a, b) => a - b);
    const index = new Map(points.map((p, i) => [p, i]));
    const n = points.length - 1;
    const owner: (RuleRef | undefined)[] = new Array<RuleRef | undefined>(n).fill(undefined);
    const next = Int32Array.from({ length: n + 1 }, (_, i) => i);
    const find = (i: number): number => {
      let root = i;
      while (next[root] !== root) root = next[root]!;
      while (next[i] !== root) {
        const up = next[i]!;
        next[i] = root;
        i = up;
      }
      return root;
    };
    for (const r of [...this.raw].sort((a, b) => a.ref.order - b.ref.order)) {
      const end = index.get(r.hi + 1)!;
      for (let i = find(index.get(r.lo)!); i < end; i = find(i + 1)) {
        owner[i] = r.ref;
        next[i] = i + 1;
      }
    }
    const starts: number[] = [];
    const ends: number[] = [];
    const refs: RuleRef[] = [];
    for (let i = 0; i < n; i++) {
      const ref = owner[i];
      if (ref === undefined) continue;
      const last = refs.length - 1;
      if (last >= 0 && refs[last] === ref && ends[last]! + 1 === points[i]) ends[last] = points[i + 1]! - 1;
      else {
        starts.push(points[i]!);
        ends.push(points[i + 1]! - 1);
        refs.push(ref);
      }
    }
    this.starts = starts;
    this.ends = ends;
    this.refs = refs;
  }

  lookup(port: number, dst: PodInfo | undefined, best: RuleRef | undefined): RuleRef | undefined {
    best = earlier(best, this.any);
    best = earlier(best, this.exact.get(port));
    const starts = this.starts;
    if (starts.length > 0) {
      let lo = 0;
      let hi = starts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (starts[mid]! <= port) lo = mid;
        else hi = mid - 1;
      }
      if (starts[lo]! <= port && port <= this.ends[lo]!) best = earlier(best, this.refs[lo]);
    }
    if (dst !== undefined) {
      const keys = this.namedKeys;
      for (let i = 0; i < keys.length; i++) if (dst.namedPorts.get(keys[i]!) === port) best = earlier(best, this.namedRefs[i]);
    }
    return best;
  }
}

/** What a set of rules allows (or denies, or passes) of protocols and ports: lookups return the first matching rule. */
class PortSet {
  /** A rule without ports: every protocol and port, ICMP too. */
  all: RuleRef | undefined;
  tcp: ProtoPorts | undefined;
  udp: ProtoPorts | undefined;
  sctp: ProtoPorts | undefined;

  clone(): PortSet {
    const c = new PortSet();
    c.all = this.all;
    c.tcp = this.tcp?.clone();
    c.udp = this.udp?.clone();
    c.sctp = this.sctp?.clone();
    return c;
  }

  /** Adding `ref` changes nothing: an earlier rule already matches everything. */
  covers(ref: RuleRef): boolean {
    return this.all !== undefined && this.all.order <= ref.order;
  }

  private slot(proto: number): ProtoPorts {
    switch (proto) {
      case Proto.TCP:
        return (this.tcp ??= new ProtoPorts(proto));
      case Proto.UDP:
        return (this.udp ??= new ProtoPorts(proto));
      default:
        return (this.sctp ??= new ProtoPorts(proto));
    }
  }

  add(ref: RuleRef, ports: Rule["ports"], named: NamedTarget): void {
    if (this.covers(ref)) return;
    if (ports === "all") {
      this.all = earlier(this.all, ref);
      return;
    }
    for (const m of ports) if (m.kind !== "never") this.slot(m.proto).add(m, ref, named);
  }

  finalize(): void {
    this.tcp?.finalize();
    this.udp?.finalize();
    this.sctp?.finalize();
  }

  lookup(proto: number, port: number, dst: PodInfo | undefined): RuleRef | undefined {
    const pp = proto === Proto.TCP ? this.tcp : proto === Proto.UDP ? this.udp : proto === Proto.SCTP ? this.sctp : undefined;
    return pp === undefined ? this.all : pp.lookup(port, dst, this.all);
  }

}

interface CidrEntry {
  readonly block: Block;
  readonly except: readonly Block[];
  readonly ports: PortSet;
}

/** One tier of one side of one pod: the rules of every policy of the tier selecting the pod, indexed by peer. */
class TierTable {
  readonly byIp = new Map<Ipv4Addr, PortSet>();
  any: PortSet | undefined;
  cidrs: CidrEntry[] = [];

  /** The first rule (lowest order) matching a connection with this peer. */
  match(peer: Ipv4Addr, proto: number, port: number, dst: PodInfo | undefined): RuleRef | undefined {
    let best: RuleRef | undefined;
    const byPeer = this.byIp.get(peer);
    if (byPeer !== undefined) best = byPeer.lookup(proto, port, dst);
    if (this.any !== undefined) best = earlier(best, this.any.lookup(proto, port, dst));
    const cidrs = this.cidrs;
    for (let i = 0; i < cidrs.length; i++) {
      const c = cidrs[i]!;
      if (!blockContains(c.block, peer)) continue;
      let excepted = false;
      for (let j = 0; j < c.except.length && !excepted; j++) excepted = blockContains(c.except[j]!, peer);
      if (!excepted) best = earlier(best, c.ports.lookup(proto, port, dst));
    }
    return best;
  }
}

export interface TierStats {
  readonly policies: number;
  /** Distinct peer IPs in the hash index. */
  readonly peerIps: number;
  /** Distinct port sets behind them (shared between peers with the same rules). */
  readonly portSets: number;
  readonly cidrs: number;
  readonly anyPeer: boolean;
}

/** Builds a TierTable: peer IPs share immutable port sets (copy on write, memoized per rule). */
class TierBuilder {
  readonly table = new TierTable();
  private readonly cidrIndex = new Map<string, CidrEntry>();
  /** How many peer IPs hold each port set. */
  private readonly holders = new Map<PortSet, number>();

  constructor(private readonly named: NamedTarget) {}

  addRule(ref: RuleRef, resolve: (p: Peer) => readonly Ipv4Addr[]): void {
    const rule = ref.rule;
    if (rule.peers === "any") {
      const any = (this.table.any ??= new PortSet());
      any.add(ref, rule.ports, this.named);
      return;
    }
    for (const peer of rule.peers) {
      switch (peer.kind) {
        case "pods":
        case "nodes":
          this.addIps(resolve(peer), ref);
          break;
        case "cidr": {
          if (peer.block === undefined) break;
          const key = `${formatBlock(peer.block)}|${peer.except.map(formatBlock).join(",")}`;
          let entry = this.cidrIndex.get(key);
          if (!entry) {
            entry = { block: peer.block, except: peer.except, ports: new PortSet() };
            this.cidrIndex.set(key, entry);
            this.table.cidrs.push(entry);
          }
          entry.ports.add(ref, rule.ports, this.named);
          break;
        }
        case "never":
          break;
      }
    }
  }

  /**
   * Adds the rule to the port set of each IP. IPs with the same set before share the same set
   * after: it is changed in place when every IP holding it is in this batch, else copied once.
   */
  private addIps(ips: readonly Ipv4Addr[], ref: RuleRef): void {
    const byIp = this.table.byIp;
    const groups = new Map<PortSet | undefined, Ipv4Addr[]>();
    for (const ip of ips) {
      const cur = byIp.get(ip);
      if (cur !== undefined && cur.covers(ref)) continue;
      let list = groups.get(cur);
      if (list === undefined) groups.set(cur, (list = []));
      list.push(ip);
    }
    for (const [cur, list] of groups) {
      if (cur !== undefined && this.holders.get(cur) === list.length) {
        cur.add(ref, ref.rule.ports, this.named);
        continue;
      }
      const next = cur ? cur.clone() : new PortSet();
      next.add(ref, ref.rule.ports, this.named);
      if (cur !== undefined) this.holders.set(cur, this.holders.get(cur)! - list.length);
      this.holders.set(next, list.length);
      for (const ip of list) byIp.set(ip, next);
    }
  }

  finish(): TierTable {
    const sets = new Set<PortSet>(this.table.byIp.values());
    if (this.table.any) sets.add(this.table.any);
    for (const c of this.table.cidrs) sets.add(c.ports);
    for (const s of sets) s.finalize();
    return this.table;
  }
}

function tierStats(policies: readonly PolicyInfo[], t: TierTable): TierStats {
  return { policies: policies.length, peerIps: t.byIp.size, portSets: new Set(t.byIp.values()).size, cidrs: t.cidrs.length, anyPeer: t.any !== undefined };
}

// ---------------------------------------------------------------------------------------------
// Compiled sides

interface CompiledTier {
  readonly policies: readonly PolicyInfo[];
  readonly table: TierTable;
}

/** One direction of one pod, compiled. `np` is defined iff a NetworkPolicy isolates the pod in this direction. */
interface CompiledSide {
  readonly pod: PodInfo;
  readonly direction: Direction;
  readonly admin: CompiledTier | undefined;
  readonly np: (CompiledTier & { readonly deny: SideOutcome }) | undefined;
  readonly baseline: CompiledTier | undefined;
}

interface CompiledPod {
  readonly pod: PodInfo;
  ingress: CompiledSide | undefined;
  egress: CompiledSide | undefined;
}

/** What evaluation saw on one side, filled by `evaluate` when explaining (null: the tier ran and nothing matched). */
interface SideTrace {
  side: CompiledSide | undefined;
  admin: RuleRef | null | undefined;
  networkPolicy: RuleRef | null | undefined;
  baseline: RuleRef | null | undefined;
  outcome: SideOutcome | undefined;
}

function newTrace(): SideTrace {
  return { side: undefined, admin: undefined, networkPolicy: undefined, baseline: undefined, outcome: undefined };
}

/** The tiers of one side, in order, for one connection. The one evaluation `verdict` and `explain` share. */
function evaluate(side: CompiledSide, peer: Ipv4Addr, proto: number, port: number, dst: PodInfo | undefined, t: SideTrace | undefined): SideOutcome {
  if (t !== undefined) t.side = side;
  let passed: RuleRef | undefined;
  const admin = side.admin;
  if (admin !== undefined) {
    const m = admin.table.match(peer, proto, port, dst);
    if (t !== undefined) t.admin = m ?? null;
    if (m !== undefined) {
      if (m.effect !== "pass") return m.outcome;
      passed = m;
    }
  }
  const np = side.np;
  if (np !== undefined) {
    const m = np.table.match(peer, proto, port, dst);
    if (t !== undefined) t.networkPolicy = m ?? null;
    return m !== undefined ? m.outcome : np.deny;
  }
  const baseline = side.baseline;
  if (baseline !== undefined) {
    const m = baseline.table.match(peer, proto, port, dst);
    if (t !== undefined) t.baseline = m ?? null;
    if (m !== undefined) return m.outcome;
  }
  return passed !== undefined ? passed.outcome : DEFAULT_ALLOW[side.direction];
}

/** State derived from one generation: sorted policies, rule refs, resolved peers, compiled pods, cached pairs. */
class Derived {
  readonly npByNamespace = new Map<string, PolicyInfo[]>();
  readonly admin: PolicyInfo[];
  readonly baseline: PolicyInfo[];
  private readonly refs = new Map<Rule, RuleRef>();
  private readonly ranks = new Map<PolicyInfo, number>();
  readonly compiled = new Map<Ipv4Addr, CompiledPod>();
  /** Resolved pods and nodes peers by Peer.key. */
  readonly peerIps = new Map<string, readonly Ipv4Addr[]>();
  private readonly pairs = new Map<SideOutcome, Map<SideOutcome, AllowVerdict>>();

  constructor(
    readonly generation: number,
    policies: Iterable<PolicyInfo>,
    clusterPolicies: Iterable<PolicyInfo>,
  ) {
    for (const p of policies) {
      let list = this.npByNamespace.get(p.namespace);
      if (!list) this.npByNamespace.set(p.namespace, (list = []));
      list.push(p);
    }
    for (const list of this.npByNamespace.values()) {
      list.sort(comparePolicies);
      list.forEach((p, i) => this.ranks.set(p, i));
    }
    const cnps = [...clusterPolicies].sort(comparePolicies);
    this.admin = cnps.filter((p) => p.tier === "Admin");
    this.baseline = cnps.filter((p) => p.tier === "Baseline");
    this.admin.forEach((p, i) => this.ranks.set(p, i));
    this.baseline.forEach((p, i) => this.ranks.set(p, i));
  }

  ref(policy: PolicyInfo, rule: Rule): RuleRef {
    let ref = this.refs.get(rule);
    if (ref) return ref;
    const effect: RuleEffect = rule.action === "Deny" ? "deny" : rule.action === "Pass" ? "pass" : "allow";
    const shell = {
      order: (this.ranks.get(policy) ?? 0) * 1_000_000 + Math.min(rule.index, 999_999),
      policy,
      rule,
      tier: policy.tier,
      direction: rule.direction,
      effect,
      outcome: undefined as unknown as SideOutcome,
    };
    if (effect === "pass") {
      shell.outcome = Object.freeze({ kind: "default-allow", direction: rule.direction, allowed: true, passedBy: shell, denial: undefined });
    } else {
      const outcome = { kind: "rule" as const, direction: rule.direction, allowed: effect === "allow", ref: shell as RuleRef, denial: undefined as DenyVerdict | undefined };
      if (effect === "deny") outcome.denial = new DenyVerdict(rule.direction, policy.tier, outcome);
      shell.outcome = Object.freeze(outcome);
    }
    ref = Object.freeze(shell);
    this.refs.set(rule, ref);
    return ref;
  }

  /** The allow verdict of an (egress, ingress) pair: made once, then two Map lookups. */
  pair(egress: SideOutcome, ingress: SideOutcome): AllowVerdict {
    let inner = this.pairs.get(egress);
    if (inner === undefined) this.pairs.set(egress, (inner = new Map()));
    let v = inner.get(ingress);
    if (v === undefined) inner.set(ingress, (v = new AllowVerdict(egress, ingress)));
    return v;
  }
}

// ---------------------------------------------------------------------------------------------
// Explanations

export interface Endpoint {
  readonly ip: Ipv4Addr;
  readonly pod: PodInfo | undefined;
  /** The pod runs on this engine's node (always true without `nodeName`). */
  readonly local: boolean;
}

export interface TierStory {
  readonly tier: Tier;
  /** The tier's policies that select the pod and speak of this direction, in evaluation order. */
  readonly policies: readonly PolicyInfo[];
  /** Evaluation reached this tier. */
  readonly evaluated: boolean;
  /** The first matching rule, when the tier was evaluated and one matched. */
  readonly match: RuleRef | undefined;
}

export interface SideStory {
  readonly direction: Direction;
  /** The pod whose policies this side is about: the source for egress, the destination for ingress. */
  readonly endpoint: Endpoint;
  readonly outcome: SideOutcome;
  /** Admin, NetworkPolicy, Baseline; empty when the side was not judged. */
  readonly tiers: readonly TierStory[];
  /** NetworkPolicies isolate the pod in this direction. */
  readonly isolated: boolean;
}

export interface Explanation {
  readonly src: Endpoint;
  readonly dst: Endpoint;
  readonly proto: number;
  /** The destination port (0 for protocols without ports). */
  readonly port: number;
  readonly egress: SideStory;
  readonly ingress: SideStory;
  /** The same object `verdict` returns for this connection. */
  readonly verdict: Verdict;
}

export type ExplainResult = { readonly kind: "ok"; readonly explanation: Explanation } | { readonly kind: "error"; readonly message: string };

export interface ExplainQuery {
  /** "TCP" (default), "UDP", "SCTP", "ICMP" or a protocol number. */
  readonly protocol?: string | number;
  readonly port?: number;
  readonly srcPort?: number;
}

// ---------------------------------------------------------------------------------------------
// The engine

/** Objects by kind for a full resync; a kind left out is emptied. */
export interface PolicyObjects {
  readonly pods?: Iterable<unknown>;
  readonly namespaces?: Iterable<unknown>;
  readonly nodes?: Iterable<unknown>;
  readonly networkPolicies?: Iterable<unknown>;
  readonly clusterNetworkPolicies?: Iterable<unknown>;
}

function hasPorts(proto: number): boolean {
  return proto === Proto.TCP || proto === Proto.UDP || proto === Proto.SCTP;
}

export class PolicyEngine {
  private gen = 0;
  private readonly pods = new Map<string, PodInfo>();
  private readonly podsByNamespace = new Map<string, Map<string, PodInfo>>();
  private readonly podsByIp = new Map<Ipv4Addr, PodInfo>();
  private readonly namespaces = new Map<string, NamespaceInfo>();
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly policies = new Map<string, PolicyInfo>();
  private readonly clusterPolicies = new Map<string, PolicyInfo>();
  private derivedState: Derived | undefined;
  private readonly nodeName: string | undefined;
  private readonly nodeTrafficAllowed: boolean;

  constructor(opts: EngineOptions = {}) {
    this.nodeName = opts.nodeName;
    this.nodeTrafficAllowed = opts.nodeTrafficAllowed ?? true;
  }

  /** Bumped on every change of the state; compiled tables belong to one generation. */
  get generation(): number {
    return this.gen;
  }

  // --- state --------------------------------------------------------------------------------

  /** Replaces the whole state (a full resync); kinds left out of `objects` end up empty. */
  replaceAll(objects: PolicyObjects): void {
    this.pods.clear();
    this.podsByNamespace.clear();
    this.podsByIp.clear();
    this.namespaces.clear();
    this.nodes.clear();
    this.policies.clear();
    this.clusterPolicies.clear();
    for (const o of objects.namespaces ?? []) this.put("Namespace", o);
    for (const o of objects.nodes ?? []) this.put("Node", o);
    for (const o of objects.pods ?? []) this.put("Pod", o);
    for (const o of objects.networkPolicies ?? []) this.put("NetworkPolicy", o);
    for (const o of objects.clusterNetworkPolicies ?? []) this.put("ClusterNetworkPolicy", o);
    this.gen++;
  }

  /**
   * An object was added or changed. An object the engine has nothing to do with (a terminating
   * or host-network pod, a policy that does not read) removes what was stored under its key.
   * Returns whether the state changed (the generation is bumped only then).
   */
  upsert(kind: ObjectKind, o: unknown): boolean {
    const changed = this.put(kind, o);
    if (changed) this.gen++;
    return changed;
  }

  /** An object was deleted (the object, or just its key: "namespace/name" or "name"). */
  remove(kind: ObjectKind, o: unknown): boolean {
    const key = typeof o === "string" ? o : objectKey(kind, o);
    if (key === undefined) return false;
    const changed = this.drop(kind, key);
    if (changed) this.gen++;
    return changed;
  }

  private put(kind: ObjectKind, o: unknown): boolean {
    const key = objectKey(kind, o);
    if (key === undefined) return false;
    switch (kind) {
      case "Pod": {
        const pod = readPod(o);
        if (!pod) return this.drop(kind, key);
        const had = this.pods.get(key);
        if (had?.fingerprint === pod.fingerprint) return false;
        if (had) this.unindexPod(had);
        this.pods.set(key, pod);
        let inNs = this.podsByNamespace.get(pod.namespace);
        if (!inNs) this.podsByNamespace.set(pod.namespace, (inNs = new Map()));
        inNs.set(key, pod);
        const owner = this.podsByIp.get(pod.ip);
        // Two pods with one address (a stale object): the smaller key wins, deterministically.
        if (owner === undefined || owner.key >= pod.key) this.podsByIp.set(pod.ip, pod);
        return true;
      }
      case "Namespace":
        return this.putInfo(this.namespaces, key, readNamespace(o), kind);
      case "Node":
        return this.putInfo(this.nodes, key, readNode(o), kind);
      case "NetworkPolicy":
        return this.putInfo(this.policies, key, readNetworkPolicy(o), kind);
      case "ClusterNetworkPolicy":
        return this.putInfo(this.clusterPolicies, key, readClusterNetworkPolicy(o), kind);
    }
  }

  private putInfo<T extends { readonly fingerprint: string }>(map: Map<string, T>, key: string, info: T | undefined, kind: ObjectKind): boolean {
    if (!info) return this.drop(kind, key);
    if (map.get(key)?.fingerprint === info.fingerprint) return false;
    map.set(key, info);
    return true;
  }

  private drop(kind: ObjectKind, key: string): boolean {
    switch (kind) {
      case "Pod": {
        const had = this.pods.get(key);
        if (!had) return false;
        this.pods.delete(key);
        this.unindexPod(had);
        return true;
      }
      case "Namespace":
        return this.namespaces.delete(key);
      case "Node":
        return this.nodes.delete(key);
      case "NetworkPolicy":
        return this.policies.delete(key);
      case "ClusterNetworkPolicy":
        return this.clusterPolicies.delete(key);
    }
  }

  private unindexPod(pod: PodInfo): void {
    const inNs = this.podsByNamespace.get(pod.namespace);
    inNs?.delete(pod.key);
    if (inNs?.size === 0) this.podsByNamespace.delete(pod.namespace);
    if (this.podsByIp.get(pod.ip) !== pod) return;
    this.podsByIp.delete(pod.ip);
    let heir: PodInfo | undefined;
    for (const p of this.pods.values()) if (p.ip === pod.ip && p !== pod && (heir === undefined || p.key < heir.key)) heir = p;
    if (heir) this.podsByIp.set(pod.ip, heir);
  }

  // --- lookups ------------------------------------------------------------------------------

  /** The pod that has this address, if the engine knows one. */
  podAt(ip: Ipv4Addr): PodInfo | undefined {
    return this.podsByIp.get(ip);
  }

  /** A pod by "namespace/name". */
  podByKey(key: string): PodInfo | undefined {
    return this.pods.get(key);
  }

  private namespaceLabels(name: string): Labels {
    return this.namespaces.get(name)?.labels ?? defaultNamespaceLabels(name);
  }

  private isLocal(pod: PodInfo): boolean {
    return this.nodeName === undefined || pod.nodeName === this.nodeName;
  }

  private derived(): Derived {
    let d = this.derivedState;
    if (d === undefined || d.generation !== this.gen) {
      d = new Derived(this.gen, this.policies.values(), this.clusterPolicies.values());
      this.derivedState = d;
    }
    return d;
  }

  /** The IPs a pods or nodes peer stands for now (cached per generation by the peer's selectors). */
  private resolve(d: Derived, peer: Peer): readonly Ipv4Addr[] {
    if (peer.kind !== "pods" && peer.kind !== "nodes") return [];
    const cached = d.peerIps.get(peer.key);
    if (cached) return cached;
    const ips: Ipv4Addr[] = [];
    if (peer.kind === "pods") {
      const scope = peer.namespaces;
      const names = scope.kind === "name" ? [scope.name] : [...new Set([...this.namespaces.keys(), ...this.podsByNamespace.keys()])].filter((n) => selects(scope.selector, this.namespaceLabels(n)));
      for (const ns of names) {
        for (const pod of this.podsByNamespace.get(ns)?.values() ?? []) {
          if (this.podsByIp.get(pod.ip) !== pod) continue;
          if (peer.pods === undefined || selects(peer.pods, pod.labels)) ips.push(pod.ip);
        }
      }
    } else if (peer.kind === "nodes") {
      for (const node of this.nodes.values()) if (selects(peer.nodes, node.labels)) ips.push(...node.ips);
    }
    const out = Object.freeze([...new Set(ips)]);
    d.peerIps.set(peer.key, out);
    return out;
  }

  private subjectSelects(p: PolicyInfo, pod: PodInfo): boolean {
    return p.subject.kind === "pods" && podPeerMatches(p.subject, pod, this.namespaceLabels(pod.namespace));
  }

  private compileTier(d: Derived, policies: readonly PolicyInfo[], pod: PodInfo, direction: Direction): TierTable {
    // Ingress names a port of the pod itself; egress one of the destination, found at lookup.
    const b = new TierBuilder(direction === "ingress" ? pod : DEFER_NAMED);
    const resolve = (peer: Peer) => this.resolve(d, peer);
    for (const p of policies) for (const rule of rulesOf(p, direction) ?? []) b.addRule(d.ref(p, rule), resolve);
    return b.finish();
  }

  private compileSide(d: Derived, pod: PodInfo, direction: Direction): CompiledSide {
    const selecting = (list: readonly PolicyInfo[]) => list.filter((p) => (rulesOf(p, direction)?.length ?? 0) > 0 && this.subjectSelects(p, pod));
    const tier = (policies: PolicyInfo[]): CompiledTier | undefined => (policies.length === 0 ? undefined : { policies, table: this.compileTier(d, policies, pod, direction) });
    const isolating = (d.npByNamespace.get(pod.namespace) ?? []).filter((p) => rulesOf(p, direction) !== undefined && this.subjectSelects(p, pod));
    let np: CompiledSide["np"];
    if (isolating.length > 0) {
      const outcome = { kind: "isolated" as const, direction, allowed: false as const, policies: Object.freeze(isolating), denial: undefined as unknown as DenyVerdict };
      outcome.denial = new DenyVerdict(direction, "NetworkPolicy", outcome);
      np = { policies: isolating, table: this.compileTier(d, isolating, pod, direction), deny: Object.freeze(outcome) };
    }
    return Object.freeze({ pod, direction, admin: tier(selecting(d.admin)), np, baseline: tier(selecting(d.baseline)) });
  }

  private side(d: Derived, pod: PodInfo, direction: Direction): CompiledSide {
    let c = d.compiled.get(pod.ip);
    if (c === undefined) d.compiled.set(pod.ip, (c = { pod, ingress: undefined, egress: undefined }));
    if (direction === "ingress") return (c.ingress ??= this.compileSide(d, pod, direction));
    return (c.egress ??= this.compileSide(d, pod, direction));
  }

  // --- verdicts -----------------------------------------------------------------------------

  /**
   * Whether the first packet of a connection may pass, and why. Allocation-free once the pods
   * involved are compiled in this generation: every outcome is preallocated, allow verdicts are
   * cached per (egress, ingress) pair.
   */
  verdict(c: Connection, opts: VerdictOptions = NO_OPTIONS): Verdict {
    return this.decide(c, opts, undefined, undefined);
  }

  private decide(c: Connection, opts: VerdictOptions, te: SideTrace | undefined, ti: SideTrace | undefined): Verdict {
    if (c.src === c.dst) {
      if (te !== undefined && ti !== undefined) {
        te.outcome = SELF.egress;
        ti.outcome = SELF.ingress;
      }
      return SELF_VERDICT;
    }
    const d = this.derived();
    const port = hasPorts(c.proto) ? c.dstPort : 0;
    const srcPod = this.podsByIp.get(c.src);
    const dstPod = this.podsByIp.get(c.dst);
    let egress: SideOutcome;
    if (srcPod === undefined) egress = NOT_A_POD.egress;
    else if (!this.isLocal(srcPod)) egress = REMOTE_POD.egress;
    else if (opts.dstIsLocalNode === true && this.nodeTrafficAllowed) egress = LOCAL_NODE.egress;
    else egress = evaluate(this.side(d, srcPod, "egress"), c.dst, c.proto, port, dstPod, te);
    if (te !== undefined) te.outcome = egress;
    // Egress denied decides; an explanation goes on to tell the ingress side too.
    if (egress.denial !== undefined && ti === undefined) return egress.denial;
    let ingress: SideOutcome;
    if (dstPod === undefined) ingress = NOT_A_POD.ingress;
    else if (!this.isLocal(dstPod)) ingress = REMOTE_POD.ingress;
    else if (opts.srcIsLocalNode === true && this.nodeTrafficAllowed) ingress = LOCAL_NODE.ingress;
    else ingress = evaluate(this.side(d, dstPod, "ingress"), c.src, c.proto, port, dstPod, ti);
    if (ti !== undefined) ti.outcome = ingress;
    if (egress.denial !== undefined) return egress.denial;
    if (ingress.denial !== undefined) return ingress.denial;
    return d.pair(egress, ingress);
  }

  /** Whether NetworkPolicies isolate the pod at `ip` in `direction` (undefined: no such pod). */
  isolated(ip: Ipv4Addr, direction: Direction): boolean | undefined {
    const pod = this.podsByIp.get(ip);
    return pod === undefined ? undefined : this.side(this.derived(), pod, direction).np !== undefined;
  }

  /** The size of the compiled index of one side, per tier (for benchmarks and `kubewire policy` output). */
  indexStats(ip: Ipv4Addr, direction: Direction): Partial<Record<Tier, TierStats>> | undefined {
    const pod = this.podsByIp.get(ip);
    if (pod === undefined) return undefined;
    const side = this.side(this.derived(), pod, direction);
    const out: Partial<Record<Tier, TierStats>> = {};
    if (side.admin) out.Admin = tierStats(side.admin.policies, side.admin.table);
    if (side.np) out.NetworkPolicy = tierStats(side.np.policies, side.np.table);
    if (side.baseline) out.Baseline = tierStats(side.baseline.policies, side.baseline.table);
    return out;
  }

  // --- explanations -------------------------------------------------------------------------

  /** An endpoint as `kubewire policy explain` takes it: an IPv4 address, "namespace/pod", or a pod name in "default". */
  private endpointOf(text: string): Endpoint | string {
    const ip = parseIpv4Addr(text);
    if (ip !== undefined) return this.endpointAt(ip);
    const key = text.includes("/") ? text : `default/${text}`;
    const pod = this.pods.get(key);
    if (!pod) return `no pod ${key} with an IPv4 address`;
    return this.endpointAt(pod.ip);
  }

  private endpointAt(ip: Ipv4Addr): Endpoint {
    const pod = this.podsByIp.get(ip);
    return { ip, pod, local: pod !== undefined && this.isLocal(pod) };
  }

  /**
   * The whole story of a connection from `from` to `to`: for each side, which policies of each
   * tier select the pod, which rule matched, and the verdict, by the same evaluation `verdict`
   * runs (the verdict in the answer is the very object `verdict` returns).
   */
  explain(from: string | Ipv4Addr, to: string | Ipv4Addr, q: ExplainQuery = {}, opts: VerdictOptions = NO_OPTIONS): ExplainResult {
    const src = typeof from === "number" ? this.endpointAt(from) : this.endpointOf(from);
    const dst = typeof to === "number" ? this.endpointAt(to) : this.endpointOf(to);
    if (typeof src === "string") return { kind: "error", message: src };
    if (typeof dst === "string") return { kind: "error", message: dst };
    const proto = q.protocol === undefined ? Proto.TCP : typeof q.protocol === "number" ? q.protocol : parseProtocol(q.protocol);
    if (proto === undefined || !Number.isInteger(proto) || proto < 0 || proto > 255) return { kind: "error", message: `unknown protocol ${String(q.protocol)}` };
    const port = q.port ?? 0;
    if (hasPorts(proto) && (!Number.isInteger(port) || port < 1 || port > 65535)) return { kind: "error", message: `${protocolName(proto)} needs a port 1-65535` };
    const te = newTrace();
    const ti = newTrace();
    const verdict = this.decide({ src: src.ip, dst: dst.ip, proto, srcPort: q.srcPort ?? 0, dstPort: hasPorts(proto) ? port : 0 }, opts, te, ti);
    const story = (direction: Direction, endpoint: Endpoint, t: SideTrace): SideStory => {
      const side = t.side;
      const tier = (name: Tier, compiled: CompiledTier | undefined, hit: RuleRef | null | undefined): TierStory => ({
        tier: name,
        policies: compiled?.policies ?? [],
        evaluated: hit !== undefined,
        match: hit ?? undefined,
      });
      return {
        direction,
        endpoint,
        outcome: t.outcome!,
        tiers: side ? [tier("Admin", side.admin, t.admin), tier("NetworkPolicy", side.np, t.networkPolicy), tier("Baseline", side.baseline, t.baseline)] : [],
        isolated: side?.np !== undefined,
      };
    };
    return {
      kind: "ok",
      explanation: { src, dst, proto, port: hasPorts(proto) ? port : 0, egress: story("egress", src, te), ingress: story("ingress", dst, ti), verdict },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Text

function endpointText(e: Endpoint): string {
  return e.pod ? `${e.pod.key} (${formatIpv4(e.ip)})` : formatIpv4(e.ip);
}

function ruleText(ref: RuleRef): string {
  const r = ref.rule;
  const way = r.direction === "ingress" ? "from" : "to";
  const peers = r.peers === "any" ? `${way} anywhere` : `${way} ${r.peers.map(formatPeer).join(" or ")}`;
  const ports = r.ports === "all" ? "all ports and protocols" : r.ports.map(formatPortMatch).join(", ");
  return `rule ${ruleLabel(r)} (${peers}; ${ports})`;
}

function tierLines(t: TierStory, side: SideStory): string[] {
  const name = t.tier === "NetworkPolicy" ? "NetworkPolicy" : `${t.tier} tier`;
  const who = side.endpoint.pod?.key ?? "";
  if (t.policies.length === 0) {
    return [t.tier === "NetworkPolicy" ? `  ${name}: not isolated (no NetworkPolicy selects ${who} for ${side.direction})` : `  ${name}: no ClusterNetworkPolicy selects ${who} for ${side.direction}`];
  }
  const list = t.policies.map((p) => (p.tier === "NetworkPolicy" ? p.key : `${p.name} (priority ${p.priority})`)).join(", ");
  const head = t.tier === "NetworkPolicy" ? `  ${name}: isolated by ${list}` : `  ${name}: ${list}`;
  if (!t.evaluated) return [head, "    not evaluated (an earlier tier decided)"];
  if (!t.match) return [head, t.tier === "NetworkPolicy" ? "    no rule allows" : "    no rule matches"];
  const verb = t.match.effect === "allow" ? (t.tier === "NetworkPolicy" ? "allows" : "accepts") : t.match.effect === "deny" ? "denies" : "passes";
  const closed = t.match.rule.failClosed ? ` (fail closed: ${t.match.rule.failClosed})` : "";
  return [head, `    ${policyLabel(t.match.policy)} ${ruleText(t.match)} ${verb}${closed}`];
}

/** `kubewire policy explain` output. */
export function formatExplain(e: Explanation): string {
  const proto = protocolName(e.proto);
  const lines = [`${endpointText(e.src)} -> ${endpointText(e.dst)} ${hasPorts(e.proto) ? `${proto}/${e.port}` : proto}`];
  for (const side of [e.egress, e.ingress]) {
    const who = side.endpoint.pod ? `${side.endpoint.pod.key}${side.endpoint.pod.nodeName ? ` on ${side.endpoint.pod.nodeName}` : ""}` : formatIpv4(side.endpoint.ip);
    lines.push(`${side.direction} of ${who}:`);
    for (const t of side.tiers) lines.push(...tierLines(t, side));
    lines.push(`  => ${describeOutcome(side.outcome)}`);
  }
  lines.push(`verdict: ${e.verdict.kind === "allow" ? "ALLOW" : `DENY (${e.verdict.direction}): ${e.verdict.detail}`}`);
  return lines.join("\n");
}
