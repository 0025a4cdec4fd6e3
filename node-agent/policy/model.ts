/**
 * The policy engine's view of the cluster, pure: Pods, Namespaces, Nodes, NetworkPolicies
 * (networking.k8s.io/v1) and ClusterNetworkPolicies (policy.networking.k8s.io/v1alpha2) read
 * into frozen, typed structures that the engine (engine.ts) compiles per pod.
 *
 * Design notes:
 * - Nothing read from the store is trusted (cluster/untrusted.ts): a field of the wrong type is
 *   treated as absent or as invalid, and no reader throws. Label selectors go through the one
 *   matcher of the cluster code (cluster/selectors.ts) after their shape is checked here, so a
 *   selector whose matchExpressions is not a list is an invalid selector, not an exception.
 * - NetworkPolicy is allow-only, so everything malformed inside a rule fails closed by matching
 *   nothing: a peer with none of podSelector/namespaceSelector/ipBlock (or ipBlock beside a
 *   selector), an unparsable CIDR or except, an unknown protocol, a port out of range, an endPort
 *   below its port or beside a named port, a rule that is not an object. A podSelector that does
 *   not read selects no pod (the policy then isolates nothing).
 * - policyTypes defaults as SetDefaults_NetworkPolicy does (pkg/apis/networking/v1/defaults.go):
 *   Ingress always, Egress when the spec has egress rules; an explicit non-empty list wins.
 *   Rules of a direction the policy does not name are ignored (types.go, PolicyTypes).
 * - ClusterNetworkPolicy follows kubernetes-sigs/network-policy-api apis/v1alpha2
 *   (clusternetworkpolicy_types.go at 0eec1b0e, 2026-07-01): tier Admin | Baseline, priority
 *   0..1000, subject {namespaces} | {pods: {namespaceSelector, podSelector}}, rules with an
 *   action Accept | Deny | Pass, peers (ingress: namespaces, pods; egress also nodes, networks,
 *   domainNames) and protocols ({tcp|udp|sctp: {destinationPort: {number} | {range}}} |
 *   {destinationNamedPort}). The spec's "fail closed" for a peer with no known field applies to
 *   every unreadable peer or protocol entry: an Accept rule then does not match through it, a
 *   Deny or Pass rule becomes a deny-all rule. domainNames cannot be matched on addresses here
 *   (no DNS snooping): such a peer matches nothing, which is the closed side for the Accept-only
 *   peer it is.
 * - Namespaces carry kubernetes.io/metadata.name=<name> whatever the object says: the API server
 *   sets it on every namespace (NamespaceDefaultLabelName, GA in 1.22).
 * - Pods that have no network identity of their own are not here: hostNetwork pods (NetworkPolicy
 *   and ClusterNetworkPolicy never select them), pods without an IPv4 address yet, terminating
 *   pods (deletionTimestamp set) and finished ones (Succeeded/Failed), whose address may already
 *   belong to a new pod.
 */
import { parseIpCidr, maskOf, type Cidr } from "../../cluster/addressing.ts";
import { Annotations } from "../../cluster/kube-objects.ts";
import { formatLabelSelector, labelSelectorFromObject, objectSelectorMatches, type ObjectSelector } from "../../cluster/selectors.ts";
import { asArray as arr, asObject as obj, asPort as port, asString as str } from "../../cluster/untrusted.ts";
import { formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/index.ts";
import type { LabelSelector as LabelSelectorObject } from "kubernetes-types/meta/v1.js";

/** IP protocol numbers the policies name. SCTP is matched by number though no SCTP transport exists. */
export const Proto = { ICMP: 1, TCP: 6, UDP: 17, SCTP: 132 } as const;
/** A protocol a port can be named for. */
export type PortProtocol = typeof Proto.TCP | typeof Proto.UDP | typeof Proto.SCTP;

const PROTOCOL_NAMES: Readonly<Record<string, PortProtocol>> = { TCP: Proto.TCP, UDP: Proto.UDP, SCTP: Proto.SCTP };

/** "TCP", "UDP", "SCTP", "ICMP" or the number, for messages. */
export function protocolName(proto: number): string {
  switch (proto) {
    case Proto.TCP:
      return "TCP";
    case Proto.UDP:
      return "UDP";
    case Proto.SCTP:
      return "SCTP";
    case Proto.ICMP:
      return "ICMP";
    default:
      return `proto ${proto}`;
  }
}

/** A protocol by its API name ("TCP", "UDP", "SCTP", "ICMP") or number text; undefined if neither. */
export function parseProtocol(text: string): number | undefined {
  const upper = text.toUpperCase();
  if (upper === "ICMP") return Proto.ICMP;
  const named = PROTOCOL_NAMES[upper];
  if (named !== undefined) return named;
  return /^[0-9]{1,3}$/.test(text) && Number(text) <= 255 ? Number(text) : undefined;
}

export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

export type Labels = Readonly<Record<string, string>>;

/** The key of a named container port: the protocol number and the name ("6/serve-80-tcp"). */
export function namedPortKey(proto: number, name: string): string {
  return `${proto}/${name}`;
}

// ---------------------------------------------------------------------------------------------
// Pods, Namespaces, Nodes

export interface PodInfo {
  /** "namespace/name". */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly ip: Ipv4Addr;
  /** spec.nodeName; "" when unscheduled. */
  readonly nodeName: string;
  /** Containers' ports[].name by namedPortKey(protocol, name): the port number. */
  readonly namedPorts: ReadonlyMap<string, number>;
  /** Equal for two readings that the engine would compile the same. */
  readonly fingerprint: string;
}

export interface NamespaceInfo {
  readonly name: string;
  /** With kubernetes.io/metadata.name=<name> always present. */
  readonly labels: Labels;
  readonly fingerprint: string;
}

export interface NodeInfo {
  readonly name: string;
  readonly labels: Labels;
  /** The IPv4 addresses of status.addresses (any type), and kubewire's public-ip annotation. */
  readonly ips: readonly Ipv4Addr[];
  readonly fingerprint: string;
}

/** The parts of an API object every reader looks at. */
interface Meta {
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly labels: Labels;
  readonly annotations: Record<string, unknown>;
  readonly deleting: boolean;
}

function metaOf(o: unknown): Meta {
  const meta = obj(obj(o)?.metadata);
  return {
    namespace: str(meta?.namespace),
    name: str(meta?.name),
    labels: readLabels(meta?.labels),
    annotations: obj(meta?.annotations) ?? {},
    deleting: meta?.deletionTimestamp !== undefined && meta?.deletionTimestamp !== null,
  };
}

/** A label map; entries whose value is not a string are dropped. */
function readLabels(v: unknown): Labels {
  const out: Record<string, string> = {};
  const o = obj(v);
  if (o) for (const k of Object.keys(o).sort()) if (typeof o[k] === "string") out[k] = o[k] as string;
  return Object.freeze(out);
}

/** The store key of an object of `kind` ("namespace/name", or "name" for cluster-scoped kinds); undefined without a name. */
export function objectKey(kind: ObjectKind, o: unknown): string | undefined {
  const m = metaOf(o);
  if (!m.name) return undefined;
  if (kind === "Namespace" || kind === "Node" || kind === "ClusterNetworkPolicy") return m.name;
  return m.namespace ? `${m.namespace}/${m.name}` : undefined;
}

export type ObjectKind = "Pod" | "Namespace" | "Node" | "NetworkPolicy" | "ClusterNetworkPolicy";
export const OBJECT_KINDS: readonly ObjectKind[] = ["Pod", "Namespace", "Node", "NetworkPolicy", "ClusterNetworkPolicy"];

function ipv4(v: unknown): Ipv4Addr | undefined {
  return typeof v === "string" ? parseIpv4Addr(v) : undefined;
}

/** The pod's IPv4 address: the first IPv4 one of status.podIPs, else status.podIP. */
function podIpOf(status: Record<string, unknown> | undefined): Ipv4Addr | undefined {
  for (const entry of arr(status?.podIPs)) {
    const ip = ipv4(obj(entry)?.ip);
    if (ip !== undefined) return ip;
  }
  return ipv4(status?.podIP);
}

/**
 * A Pod as policy sees it, or undefined when policy has nothing to do with it (see the design
 * notes: no name, hostNetwork, no IPv4 address, terminating, finished).
 */
export function readPod(o: unknown): PodInfo | undefined {
  const m = metaOf(o);
  const spec = obj(obj(o)?.spec);
  const status = obj(obj(o)?.status);
  if (!m.name || !m.namespace || m.deleting) return undefined;
  if (spec?.hostNetwork === true) return undefined;
  if (status?.phase === "Succeeded" || status?.phase === "Failed") return undefined;
  const ip = podIpOf(status);
  if (ip === undefined) return undefined;
  const namedPorts = new Map<string, number>();
  // Containers first, then init containers (sidecars can serve too); the first of a name wins.
  for (const c of [...arr(spec?.containers), ...arr(spec?.initContainers)]) {
    for (const raw of arr(obj(c)?.ports)) {
      const p = obj(raw);
      const name = str(p?.name);
      const number = port(p?.containerPort);
      const proto = p?.protocol === undefined ? Proto.TCP : PROTOCOL_NAMES[String(p.protocol)];
      if (!name || number === 0 || proto === undefined) continue;
      const key = namedPortKey(proto, name);
      if (!namedPorts.has(key)) namedPorts.set(key, number);
    }
  }
  const nodeName = str(spec?.nodeName) ?? "";
  const fingerprint = JSON.stringify([ip, nodeName, m.labels, [...namedPorts]]);
  return Object.freeze({ key: `${m.namespace}/${m.name}`, namespace: m.namespace, name: m.name, labels: m.labels, ip, nodeName, namedPorts, fingerprint });
}

/** The labels every namespace has, also one the engine has no object for. */
export function defaultNamespaceLabels(name: string): Labels {
  return Object.freeze({ [NAMESPACE_NAME_LABEL]: name });
}

export function readNamespace(o: unknown): NamespaceInfo | undefined {
  const m = metaOf(o);
  if (!m.name) return undefined;
  const labels = Object.freeze({ ...m.labels, [NAMESPACE_NAME_LABEL]: m.name });
  return Object.freeze({ name: m.name, labels, fingerprint: JSON.stringify(labels) });
}

export function readNode(o: unknown): NodeInfo | undefined {
  const m = metaOf(o);
  if (!m.name) return undefined;
  const ips = new Set<Ipv4Addr>();
  for (const a of arr(obj(obj(o)?.status)?.addresses)) {
    const ip = ipv4(obj(a)?.address);
    if (ip !== undefined) ips.add(ip);
  }
  const annotated = ipv4(m.annotations[Annotations.publicIp]);
  if (annotated !== undefined) ips.add(annotated);
  const list = Object.freeze([...ips].sort((a, b) => a - b));
  return Object.freeze({ name: m.name, labels: m.labels, ips: list, fingerprint: JSON.stringify([m.labels, list]) });
}

// ---------------------------------------------------------------------------------------------
// Selectors, peers, ports: the shapes NetworkPolicy and ClusterNetworkPolicy share

/** An invalid selector: selects nothing (labelSelectorAsSelector's error case). */
function invalidSelector(message: string): ObjectSelector {
  return { kind: "error", message };
}

/**
 * A metav1.LabelSelector field: undefined when absent or null, else the selector through the
 * cluster's one matcher (selectors.ts labelSelectorFromObject), after its shape is checked so the
 * matcher only ever sees strings where it expects them. A wrong shape is an invalid selector.
 */
export function readSelector(v: unknown, path: string): ObjectSelector | undefined {
  if (v === undefined || v === null) return undefined;
  const o = obj(v);
  if (!o) return invalidSelector(`${path}: not an object`);
  const clean: LabelSelectorObject = {};
  if (o.matchLabels !== undefined && o.matchLabels !== null) {
    const ml = obj(o.matchLabels);
    if (!ml || Object.values(ml).some((x) => typeof x !== "string")) return invalidSelector(`${path}.matchLabels: not a map of strings`);
    clean.matchLabels = ml as Record<string, string>;
  }
  if (o.matchExpressions !== undefined && o.matchExpressions !== null) {
    if (!Array.isArray(o.matchExpressions)) return invalidSelector(`${path}.matchExpressions: not a list`);
    const exprs: NonNullable<LabelSelectorObject["matchExpressions"]> = [];
    for (const raw of o.matchExpressions) {
      const e = obj(raw);
      const values = e?.values === undefined || e?.values === null ? [] : e.values;
      if (!e || typeof e.key !== "string" || typeof e.operator !== "string" || !Array.isArray(values) || values.some((x) => typeof x !== "string")) {
        return invalidSelector(`${path}.matchExpressions: malformed requirement`);
      }
      exprs.push({ key: e.key, operator: e.operator, values: values as string[] });
    }
    clean.matchExpressions = exprs;
  }
  return labelSelectorFromObject(clean, path);
}

export function selects(sel: ObjectSelector, labels: Labels): boolean {
  return objectSelectorMatches(sel, labels);
}

/** kubectl's text for a selector: "<all>" for the empty one, "<invalid: …>" for one that did not read. */
export function formatSelector(sel: ObjectSelector): string {
  if (sel.kind === "nothing") return "<none>";
  if (sel.kind === "error") return `<invalid: ${sel.message}>`;
  const text = formatLabelSelector(sel.value);
  return text === "" ? "<all>" : text;
}

const EVERYTHING: ObjectSelector = Object.freeze({ kind: "ok", value: Object.freeze({ requirements: Object.freeze([]) }) }) as ObjectSelector;

/** Which namespaces a pod peer or subject looks in: one by name (the policy's own), or those a selector picks. */
export type NamespaceScope = { readonly kind: "name"; readonly name: string } | { readonly kind: "selector"; readonly selector: ObjectSelector };

/** An IPv4 CIDR with its mask, ready for `(ip & mask) === network`. */
export interface Block {
  readonly network: Ipv4Addr;
  readonly prefix: number;
  readonly mask: number;
}

/** Where traffic comes from or goes to, as a rule names it. */
export type Peer =
  /**
   * Pods (never host-network ones) matching `pods` (undefined: every pod) in the namespaces of
   * `namespaces`. `key` is equal for peers that select the same pods (the selectors' text).
   */
  | { readonly kind: "pods"; readonly key: string; readonly namespaces: NamespaceScope; readonly pods: ObjectSelector | undefined }
  /** The addresses of the Nodes `nodes` selects (ClusterNetworkPolicy egress, experimental). */
  | { readonly kind: "nodes"; readonly key: string; readonly nodes: ObjectSelector }
  /** Any address in `block` but none in `except`; `block` undefined for an IPv6 CIDR (it contains no IPv4 address). */
  | { readonly kind: "cidr"; readonly text: string; readonly block: Block | undefined; readonly except: readonly Block[] }
  /** Matches nothing, and says why (unsupported, or unreadable in an allow rule). */
  | { readonly kind: "never"; readonly why: string };

/** What a rule says of ports and protocols; a rule with "all" also matches ICMP and every other protocol. */
export type PortMatch =
  /** Every port of the protocol. */
  | { readonly kind: "protocol"; readonly proto: PortProtocol }
  /** port..end inclusive (port alone: port..port). */
  | { readonly kind: "range"; readonly proto: PortProtocol; readonly port: number; readonly end: number }
  /** A container port name, resolved on the destination pod. */
  | { readonly kind: "named"; readonly proto: PortProtocol; readonly name: string }
  | { readonly kind: "never"; readonly why: string };

export type Tier = "Admin" | "NetworkPolicy" | "Baseline";
export const TIERS: readonly Tier[] = ["Admin", "NetworkPolicy", "Baseline"];
export type Direction = "ingress" | "egress";
/** NetworkPolicy rules Allow; ClusterNetworkPolicy rules Accept, Deny or Pass. */
export type RuleAction = "Allow" | "Accept" | "Deny" | "Pass";

export interface Rule {
  readonly direction: Direction;
  readonly index: number;
  /** The ClusterNetworkPolicy rule's name; "" for NetworkPolicy rules and unnamed ones. */
  readonly name: string;
  readonly action: RuleAction;
  /** "any": every source (ingress) or destination (egress). */
  readonly peers: readonly Peer[] | "any";
  readonly ports: readonly PortMatch[] | "all";
  /** Set when a Deny/Pass rule was made deny-all because part of it did not read (the spec's "fail closed"). */
  readonly failClosed: string | undefined;
}

export interface PolicyInfo {
  readonly tier: Tier;
  /** "namespace/name" for a NetworkPolicy, the name for a ClusterNetworkPolicy. */
  readonly key: string;
  /** "" for a ClusterNetworkPolicy. */
  readonly namespace: string;
  readonly name: string;
  /** spec.priority of a ClusterNetworkPolicy; 0 for a NetworkPolicy. */
  readonly priority: number;
  /** Which pods the policy applies to; a "never" peer when the subject did not read. */
  readonly subject: Extract<Peer, { kind: "pods" | "never" }>;
  /** undefined: the policy does not affect that direction (NetworkPolicy policyTypes). */
  readonly ingress: readonly Rule[] | undefined;
  readonly egress: readonly Rule[] | undefined;
  readonly fingerprint: string;
}

export function rulesOf(p: PolicyInfo, d: Direction): readonly Rule[] | undefined {
  return d === "ingress" ? p.ingress : p.egress;
}

/** Whether the policy's subject (or a pods peer) takes this pod, given its namespace's labels. */
export function podPeerMatches(peer: Extract<Peer, { kind: "pods" }>, pod: PodInfo, namespaceLabels: Labels): boolean {
  const ns = peer.namespaces;
  if (ns.kind === "name" ? ns.name !== pod.namespace : !selects(ns.selector, namespaceLabels)) return false;
  return peer.pods === undefined || selects(peer.pods, pod.labels);
}

function readBlock(text: string): { kind: "ok"; block: Block | undefined } | { kind: "error" } {
  const c = parseIpCidr(text.trim());
  if (!c) return { kind: "error" };
  if (c.network.length !== 4) return { kind: "ok", block: undefined };
  const [a, b, cc, d] = c.network as [number, number, number, number];
  const cidr: Cidr = { network: ((a << 24) | (b << 16) | (cc << 8) | d) >>> 0, prefix: c.prefix };
  return { kind: "ok", block: Object.freeze({ network: cidr.network, prefix: cidr.prefix, mask: maskOf(cidr.prefix) }) };
}

export function formatBlock(b: Block): string {
  return `${formatIpv4(b.network)}/${b.prefix}`;
}

export function blockContains(b: Block, ip: Ipv4Addr): boolean {
  return ((ip & b.mask) >>> 0) === b.network;
}

function podsPeer(namespaces: NamespaceScope, pods: ObjectSelector | undefined): Extract<Peer, { kind: "pods" }> {
  const ns = namespaces.kind === "name" ? `namespace=${namespaces.name}` : `namespaces:${formatSelector(namespaces.selector)}`;
  const key = `pods:${pods ? formatSelector(pods) : "<all>"} in ${ns}`;
  return Object.freeze({ kind: "pods", key, namespaces: Object.freeze(namespaces), pods });
}

function never(why: string): Extract<Peer, { kind: "never" }> {
  return Object.freeze({ kind: "never", why });
}

/** ipBlock {cidr, except[]} (networking/v1 IPBlock); CIDRs are read as ParseCIDRSloppy does (host bits masked). */
function readIpBlock(v: unknown, path: string): Peer {
  const o = obj(v);
  const cidr = str(o?.cidr);
  if (!o || cidr === undefined) return never(`${path}.cidr: missing`);
  const parsed = readBlock(cidr);
  if (parsed.kind === "error") return never(`${path}.cidr: invalid CIDR ${JSON.stringify(cidr)}`);
  const except: Block[] = [];
  if (o.except !== undefined && o.except !== null && !Array.isArray(o.except)) return never(`${path}.except: not a list`);
  for (const raw of arr(o.except)) {
    const e = typeof raw === "string" ? readBlock(raw) : ({ kind: "error" } as const);
    if (e.kind === "error") return never(`${path}.except: invalid CIDR ${JSON.stringify(raw)}`);
    if (e.block) except.push(e.block);
  }
  return Object.freeze({ kind: "cidr", text: cidr.trim(), block: parsed.block, except: Object.freeze(except) });
}

// ---------------------------------------------------------------------------------------------
// NetworkPolicy (networking.k8s.io/v1)

/** A NetworkPolicyPeer: podSelector and namespaceSelector together are ANDed; ipBlock stands alone. */
function readNpPeer(v: unknown, namespace: string, path: string): Peer {
  const o = obj(v);
  if (!o) return never(`${path}: not an object`);
  const podSel = readSelector(o.podSelector, `${path}.podSelector`);
  const nsSel = readSelector(o.namespaceSelector, `${path}.namespaceSelector`);
  const hasBlock = o.ipBlock !== undefined && o.ipBlock !== null;
  if (hasBlock) return podSel || nsSel ? never(`${path}: ipBlock with a selector`) : readIpBlock(o.ipBlock, `${path}.ipBlock`);
  if (!podSel && !nsSel) return never(`${path}: no podSelector, namespaceSelector or ipBlock`);
  return podsPeer(nsSel ? { kind: "selector", selector: nsSel } : { kind: "name", name: namespace }, podSel);
}

/** A NetworkPolicyPort: protocol (default TCP), port (number or name; absent: every port), endPort. */
function readNpPort(v: unknown, path: string): PortMatch {
  const o = obj(v);
  if (!o) return { kind: "never", why: `${path}: not an object` };
  const proto = o.protocol === undefined || o.protocol === null ? Proto.TCP : PROTOCOL_NAMES[String(o.protocol)];
  if (proto === undefined) return { kind: "never", why: `${path}.protocol: unsupported ${JSON.stringify(o.protocol)}` };
  const hasEnd = o.endPort !== undefined && o.endPort !== null;
  if (o.port === undefined || o.port === null) {
    return hasEnd ? { kind: "never", why: `${path}.endPort: without a port` } : { kind: "protocol", proto };
  }
  if (typeof o.port === "string") {
    if (hasEnd) return { kind: "never", why: `${path}.endPort: with a named port` };
    return o.port === "" ? { kind: "never", why: `${path}.port: empty name` } : { kind: "named", proto, name: o.port };
  }
  const number = port(o.port);
  if (number === 0) return { kind: "never", why: `${path}.port: not a port number` };
  if (!hasEnd) return { kind: "range", proto, port: number, end: number };
  const end = port(o.endPort);
  if (end === 0 || end < number) return { kind: "never", why: `${path}.endPort: must be a port number not below port` };
  return { kind: "range", proto, port: number, end };
}

function readNpRule(v: unknown, direction: Direction, index: number, namespace: string, path: string): Rule {
  const o = obj(v);
  const peersField = direction === "ingress" ? "from" : "to";
  const failed = (why: string): Rule => Object.freeze({ direction, index, name: "", action: "Allow", peers: Object.freeze([never(why)]), ports: "all", failClosed: undefined });
  if (!o) return failed(`${path}: not an object`);
  const rawPeers = o[peersField];
  const rawPorts = o.ports;
  if (rawPeers !== undefined && rawPeers !== null && !Array.isArray(rawPeers)) return failed(`${path}.${peersField}: not a list`);
  if (rawPorts !== undefined && rawPorts !== null && !Array.isArray(rawPorts)) return failed(`${path}.ports: not a list`);
  const peerList = arr(rawPeers);
  const portList = arr(rawPorts);
  const peers = peerList.length === 0 ? "any" : Object.freeze(peerList.map((p, i) => readNpPeer(p, namespace, `${path}.${peersField}[${i}]`)));
  const ports = portList.length === 0 ? "all" : Object.freeze(portList.map((p, i) => Object.freeze(readNpPort(p, `${path}.ports[${i}]`))));
  return Object.freeze({ direction, index, name: "", action: "Allow", peers, ports, failClosed: undefined });
}

/**
 * Change detection only: equal text means nothing to recompile. Plain JSON (key order as stored)
 * is enough: the same object re-delivered serializes the same, and a false "changed" costs only
 * a recompile.
 */
function fingerprintOf(v: unknown): string {
  try {
    return JSON.stringify(v) ?? "";
  } catch {
    // Not JSON (a cycle, a bigint): never equal to anything, so every upsert counts as a change.
    return `unfingerprintable:${++unfingerprintable}`;
  }
}
let unfingerprintable = 0;

/** A NetworkPolicy, or undefined without a namespace and name. */
export function readNetworkPolicy(o: unknown): PolicyInfo | undefined {
  const m = metaOf(o);
  if (!m.name || !m.namespace) return undefined;
  const namespace = m.namespace;
  const spec = obj(obj(o)?.spec) ?? {};
  // podSelector is a non-pointer struct: absent reads as {} (every pod of the namespace).
  const podSelector = readSelector(spec.podSelector, "spec.podSelector") ?? EVERYTHING;
  const subject = podsPeer({ kind: "name", name: namespace }, podSelector);
  const ingressRaw = arr(spec.ingress);
  const egressRaw = arr(spec.egress);
  const types = arr(spec.policyTypes).filter((t): t is string => t === "Ingress" || t === "Egress");
  const affectsIngress = types.length > 0 ? types.includes("Ingress") : true;
  const affectsEgress = types.length > 0 ? types.includes("Egress") : egressRaw.length > 0;
  const ingress = affectsIngress ? Object.freeze(ingressRaw.map((r, i) => readNpRule(r, "ingress", i, namespace, `spec.ingress[${i}]`))) : undefined;
  const egress = affectsEgress ? Object.freeze(egressRaw.map((r, i) => readNpRule(r, "egress", i, namespace, `spec.egress[${i}]`))) : undefined;
  return Object.freeze({
    tier: "NetworkPolicy",
    key: `${namespace}/${m.name}`,
    namespace,
    name: m.name,
    priority: 0,
    subject,
    ingress,
    egress,
    fingerprint: fingerprintOf(spec),
  });
}

// ---------------------------------------------------------------------------------------------
// ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2)

export const CNP_MAX_PRIORITY = 1000;

/** NamespacedPod {namespaceSelector, podSelector}: both non-pointer structs, absent reads as {} (all). */
function readNamespacedPod(v: unknown, path: string): Peer {
  const o = obj(v);
  if (!o) return never(`${path}: not an object`);
  const nsSel = readSelector(o.namespaceSelector, `${path}.namespaceSelector`) ?? EVERYTHING;
  const podSel = readSelector(o.podSelector, `${path}.podSelector`) ?? EVERYTHING;
  if (nsSel.kind === "error") return never(nsSel.message);
  if (podSel.kind === "error") return never(podSel.message);
  return podsPeer({ kind: "selector", selector: nsSel }, podSel);
}

function readNamespacesPeer(v: unknown, path: string): Peer {
  const sel = readSelector(v, path) ?? EVERYTHING;
  if (sel.kind === "error") return never(sel.message);
  return podsPeer({ kind: "selector", selector: sel }, undefined);
}

/** Exactly one known field; `unknown` lists what did not read (the caller fails the rule closed). */
function readCnpPeer(v: unknown, direction: Direction, path: string): { peers: Peer[]; unreadable: string | undefined } {
  const o = obj(v);
  if (!o) return { peers: [], unreadable: `${path}: not an object` };
  const fields = Object.keys(o).filter((k) => o[k] !== undefined && o[k] !== null);
  const known = direction === "ingress" ? ["namespaces", "pods"] : ["namespaces", "pods", "nodes", "networks", "domainNames"];
  const set = fields.filter((f) => known.includes(f));
  if (set.length !== 1 || fields.length !== 1) return { peers: [], unreadable: `${path}: needs exactly one of ${known.join(", ")}, has ${fields.length === 0 ? "none" : fields.join(", ")}` };
  const field = set[0]!;
  const at = `${path}.${field}`;
  let peer: Peer;
  switch (field) {
    case "namespaces":
      peer = readNamespacesPeer(o.namespaces, at);
      break;
    case "pods":
      peer = readNamespacedPod(o.pods, at);
      break;
    case "nodes": {
      const sel = readSelector(o.nodes, at) ?? EVERYTHING;
      peer = sel.kind === "error" ? never(sel.message) : Object.freeze({ kind: "nodes", key: `nodes:${formatSelector(sel)}`, nodes: sel });
      break;
    }
    case "networks": {
      if (!Array.isArray(o.networks) || o.networks.length === 0) return { peers: [], unreadable: `${at}: not a non-empty list` };
      const peers: Peer[] = [];
      for (const [i, raw] of o.networks.entries()) {
        const b = typeof raw === "string" ? readBlock(raw) : ({ kind: "error" } as const);
        if (b.kind === "error") return { peers: [], unreadable: `${at}[${i}]: invalid CIDR ${JSON.stringify(raw)}` };
        peers.push(Object.freeze({ kind: "cidr", text: (raw as string).trim(), block: b.block, except: Object.freeze([]) }));
      }
      return { peers, unreadable: undefined };
    }
    default:
      // domainNames: an Accept-only peer that needs the DNS answers the pod saw; not emulated.
      peer = never(`${at}: domain names are not matched by kubewire`);
  }
  if (peer.kind === "never") return { peers: [], unreadable: peer.why };
  return { peers: [peer], unreadable: undefined };
}

/** A ClusterNetworkPolicyProtocol: one of tcp/udp/sctp {destinationPort?: {number} | {range}} or destinationNamedPort. */
function readCnpProtocol(v: unknown, path: string): PortMatch {
  const o = obj(v);
  if (!o) return { kind: "never", why: `${path}: not an object` };
  const fields = Object.keys(o).filter((k) => o[k] !== undefined && o[k] !== null);
  if (fields.length !== 1) return { kind: "never", why: `${path}: needs exactly one of tcp, udp, sctp, destinationNamedPort` };
  const field = fields[0]!;
  if (field === "destinationNamedPort") {
    // Named ports carry a protocol of their own: the container port's. Matched on any of them.
    return typeof o.destinationNamedPort === "string" && o.destinationNamedPort !== ""
      ? { kind: "named", proto: Proto.TCP, name: o.destinationNamedPort }
      : { kind: "never", why: `${path}.destinationNamedPort: not a name` };
  }
  const proto = PROTOCOL_NAMES[field.toUpperCase()];
  if (proto === undefined || field !== field.toLowerCase()) return { kind: "never", why: `${path}: unknown protocol field ${field}` };
  const body = obj(o[field]);
  if (!body) return { kind: "never", why: `${path}.${field}: not an object` };
  const dp = body.destinationPort;
  if (dp === undefined || dp === null) return { kind: "protocol", proto };
  const d = obj(dp);
  const number = d?.number;
  const range = obj(d?.range);
  if (d && number !== undefined && d.range === undefined) {
    const n = port(number);
    return n === 0 ? { kind: "never", why: `${path}.${field}.destinationPort.number: not a port` } : { kind: "range", proto, port: n, end: n };
  }
  if (d && range && number === undefined) {
    const start = port(range.start);
    const end = port(range.end);
    if (start === 0 || end === 0 || end < start) return { kind: "never", why: `${path}.${field}.destinationPort.range: invalid` };
    return { kind: "range", proto, port: start, end };
  }
  return { kind: "never", why: `${path}.${field}.destinationPort: needs exactly one of number, range` };
}

/** destinationNamedPort names a port whatever its protocol: it stands for one entry per protocol. */
function expandNamed(p: PortMatch): PortMatch[] {
  if (p.kind !== "named") return [p];
  return [Proto.TCP, Proto.UDP, Proto.SCTP].map((proto) => Object.freeze({ kind: "named" as const, proto, name: p.name }));
}

const CNP_ACTIONS: readonly string[] = ["Accept", "Deny", "Pass"];

function readCnpRule(v: unknown, direction: Direction, index: number, path: string): Rule | undefined {
  const o = obj(v);
  if (!o) return undefined;
  const action = str(o.action);
  // An action this version does not know cannot be enforced either way; the rule is left out.
  if (action === undefined || !CNP_ACTIONS.includes(action)) return undefined;
  const name = str(o.name) ?? "";
  const peersField = direction === "ingress" ? "from" : "to";
  const unreadable: string[] = [];
  const peers: Peer[] = [];
  const rawPeers = o[peersField];
  if (!Array.isArray(rawPeers)) unreadable.push(`${path}.${peersField}: not a list`);
  for (const [i, raw] of arr(rawPeers).entries()) {
    const r = readCnpPeer(raw, direction, `${path}.${peersField}[${i}]`);
    if (r.unreadable) unreadable.push(r.unreadable);
    peers.push(...r.peers);
  }
  let ports: PortMatch[] | "all" = "all";
  if (o.protocols !== undefined && o.protocols !== null) {
    if (!Array.isArray(o.protocols)) unreadable.push(`${path}.protocols: not a list`);
    else if (o.protocols.length > 0) {
      ports = [];
      for (const [i, raw] of o.protocols.entries()) {
        const p = readCnpProtocol(raw, `${path}.protocols[${i}]`);
        if (p.kind === "never") unreadable.push(p.why);
        else ports.push(...expandNamed(p));
      }
    }
  }
  if (unreadable.length > 0 && action !== "Accept") {
    // The spec's "fail closed" for Deny and Pass: the whole rule denies everything.
    return Object.freeze({ direction, index, name, action: "Deny", peers: "any", ports: "all", failClosed: unreadable.join("; ") });
  }
  // Accept fails closed by matching less: unreadable peers and protocol entries are left out; a rule left with no protocol matches nothing.
  const portsOut = ports === "all" ? "all" : ports.length > 0 ? Object.freeze(ports.map((p) => Object.freeze(p))) : Object.freeze([{ kind: "never" as const, why: "no readable protocol" }]);
  return Object.freeze({ direction, index, name, action: action as RuleAction, peers: Object.freeze(peers), ports: portsOut, failClosed: undefined });
}

/**
 * A ClusterNetworkPolicy, or undefined when it cannot take part in evaluation at all (no name, a
 * tier other than Admin/Baseline, a priority that is not an integer 0..1000): the CRD's
 * validation keeps such objects out of a real API server.
 */
export function readClusterNetworkPolicy(o: unknown): PolicyInfo | undefined {
  const m = metaOf(o);
  const spec = obj(obj(o)?.spec);
  if (!m.name || !spec) return undefined;
  const tier = spec.tier;
  if (tier !== "Admin" && tier !== "Baseline") return undefined;
  const priority = spec.priority;
  if (typeof priority !== "number" || !Number.isInteger(priority) || priority < 0 || priority > CNP_MAX_PRIORITY) return undefined;
  const subjectObj = obj(spec.subject);
  const fields = subjectObj ? Object.keys(subjectObj).filter((k) => subjectObj[k] !== undefined && subjectObj[k] !== null) : [];
  let subject: PolicyInfo["subject"];
  if (!subjectObj || fields.length !== 1 || (fields[0] !== "namespaces" && fields[0] !== "pods")) subject = never("spec.subject: needs exactly one of namespaces, pods");
  else {
    const s = fields[0] === "namespaces" ? readNamespacesPeer(subjectObj.namespaces, "spec.subject.namespaces") : readNamespacedPod(subjectObj.pods, "spec.subject.pods");
    subject = s.kind === "pods" || s.kind === "never" ? s : never("spec.subject: unreadable");
  }
  const rules = (d: Direction): readonly Rule[] =>
    Object.freeze(arr(d === "ingress" ? spec.ingress : spec.egress).flatMap((r, i) => readCnpRule(r, d, i, `spec.${d}[${i}]`) ?? []));
  return Object.freeze({
    tier,
    key: m.name,
    namespace: "",
    name: m.name,
    priority,
    subject,
    ingress: rules("ingress"),
    egress: rules("egress"),
    fingerprint: fingerprintOf(spec),
  });
}

/** Evaluation order within a tier: priority, then name (the spec leaves ties to the implementation); NetworkPolicies by namespace/name. */
export function comparePolicies(a: PolicyInfo, b: PolicyInfo): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** "x/allow-80" for a NetworkPolicy, "Admin deny-y" for a ClusterNetworkPolicy. */
export function policyLabel(p: PolicyInfo): string {
  return p.tier === "NetworkPolicy" ? p.key : `${p.tier} ${p.name}`;
}

/** The rule as an explanation names it: its name when it has one, else "#index". */
export function ruleLabel(r: Rule): string {
  return r.name !== "" ? r.name : `#${r.index}`;
}

export function formatPortMatch(p: PortMatch): string {
  switch (p.kind) {
    case "protocol":
      return `${protocolName(p.proto)}/*`;
    case "range":
      return p.port === p.end ? `${protocolName(p.proto)}/${p.port}` : `${protocolName(p.proto)}/${p.port}-${p.end}`;
    case "named":
      return `${protocolName(p.proto)}/${p.name}`;
    case "never":
      return `<never: ${p.why}>`;
  }
}

export function formatPeer(p: Peer): string {
  switch (p.kind) {
    case "pods": {
      const ns = p.namespaces.kind === "name" ? `namespace ${p.namespaces.name}` : `namespaces ${formatSelector(p.namespaces.selector)}`;
      return `pods ${p.pods ? formatSelector(p.pods) : "<all>"} in ${ns}`;
    }
    case "nodes":
      return `nodes ${formatSelector(p.nodes)}`;
    case "cidr":
      return p.except.length > 0 ? `${p.text} except ${p.except.map(formatBlock).join(", ")}` : p.text;
    case "never":
      return `<never: ${p.why}>`;
  }
}
