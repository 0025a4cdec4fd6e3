/**
 * The cluster resolver's answers, pure: a decoded query and the cluster's DNS data in, a response
 * (or "forward this upstream") out. It is kubeadm's CoreDNS:
 *
 *     .:53 { errors; health; ready
 *            kubernetes cluster.local in-addr.arpa ip6.arpa { pods insecure; fallthrough in-addr.arpa ip6.arpa; ttl 30 }
 *            prometheus :9153; forward . /etc/resolv.conf; cache 30; loop; reload; loadbalance }
 *
 * answering the Kubernetes DNS schema (kubernetes/dns docs/specification.md 1.1.0) the way the
 * kubernetes plugin does (plugin/kubernetes: handler.go ServeDNS, kubernetes.go Records /
 * findServices / findPods / endpointHostname, parse.go parseRequest, reverse.go, ns.go; the shared
 * plugin/backend_lookup.go A / SRV / SOA / BackendError), with these records:
 *
 * - §2.2 `dns-version.<zone>` TXT "1.1.0" (TTL 28800, as CoreDNS hard-codes it).
 * - §2.3 ClusterIP Services: A at `<svc>.<ns>.svc.<zone>` whether or not it has endpoints; SRV at
 *   `_<port>._<proto>.<svc>...` for named ports, `0 <w> <port> <svc>.<ns>.svc.<zone>` with the A
 *   in the additional section; PTR for the cluster IP. Like CoreDNS (and its zone transfer) the
 *   bare service name also answers SRV, one per port, named or not (a §3 extension).
 * - §2.4 headless Services: A per ready endpoint address; `<hostname>.<svc>...` A, where the
 *   hostname is the endpoint's `hostname` field, else the dashed IP ("10-244-1-5", CoreDNS
 *   endpointHostname); SRV per (port, ready endpoint) at the endpoint's name; PTR for every ready
 *   endpoint address (CoreDNS answers these for the endpoints of any Service, naming each by
 *   endpointHostname, a superset of §2.4.3). With no ready endpoint the name does not exist:
 *   NXDOMAIN, as §2.4.1 says ("If there are no ready endpoints ... the answer should be
 *   NXDOMAIN") and CoreDNS does (findServices leaves errNoItems). Endpoint names also work under a
 *   ClusterIP Service (findServices: `svc.Headless() || r.endpoint != ""`).
 * - §2.5 ExternalName: CNAME to spec.externalName. A target inside the cluster zone is followed
 *   here, as CoreDNS does (A() recursion, at most 10 links, no loops); a target outside is
 *   returned with `chase`: CoreDNS resolves it through its own upstream and appends the records,
 *   which a pure function cannot, so the caller may do the same (or send the CNAME alone and let
 *   the client follow, as stub resolvers do).
 * - Pods (`pods insecure`): `a-b-c-d.<ns>.pod.<zone>` A a.b.c.d for any well-formed dashed IP in
 *   an existing namespace, the pod's existence unchecked (`pods verified` checks it).
 * - The apex answers SOA and NS (NS `kube-dns.kube-system.svc.<zone>` with its A, as ns.go finds
 *   the kube-dns Service); `ns.dns.<zone>` A is the DNS Service IP.
 *
 * Rcodes and flags: NXDOMAIN only for names that do not exist; NOERROR with no answer (NODATA)
 * for names that exist without the type, including empty non-terminals (`svc.<zone>`,
 * `pod.<zone>`, `<ns>.svc.<zone>` of an existing namespace, the apex); both carry the zone SOA in
 * the authority section (RFC 2308 §3) as CoreDNS writes it: `ns.dns.<zone> hostmaster.<zone>
 * <serial> 7200 1800 86400 <ttl>` with TTL min(ttl, 300). AA on every answer from the cluster
 * zone; RD and CD copied (miekg SetReply). Names outside the cluster zone, and reverse names that
 * are not cluster IPs or ready endpoint IPs, are forwarded (CoreDNS: next plugin / fallthrough).
 * Class other than IN: REFUSED; EDNS version other than 0: BADVERS (core/dnsserver/server.go);
 * AXFR/IXFR: REFUSED (no transfer plugin in kubeadm's Corefile).
 *
 * Deviations from CoreDNS, each for RFC 1034 §4.3.2 / RFC 8020 consistency (a name exists or not
 * whatever the type asked):
 * - Whether a name exists is decided once, the same for every type. CoreDNS's TXT path gives
 *   NXDOMAIN for the apex, `svc.<zone>`, `<ns>.svc.<zone>` and `ns.dns.<zone>`; its A path gives
 *   NXDOMAIN for `dns-version.<zone>`; SOA at any non-apex name is NODATA even for names that do
 *   not exist. Here all of those follow the name.
 * - `dns.<zone>` (above `ns.dns.<zone>`) and `_<proto>.<svc>.<ns>.svc.<zone>` (above the SRV
 *   names of ports with that protocol) are empty non-terminals: NODATA, where CoreDNS says
 *   NXDOMAIN.
 * - Labels below a pod name (`x.1-2-3-4.<ns>.pod.<zone>`) are NXDOMAIN; CoreDNS answers them with
 *   the pod's A (findPods reads only the pod label).
 * - In the reverse zones only PTR queries for cluster IPs and ready endpoint IPs are answered;
 *   everything else is forwarded. CoreDNS, authoritative for in-addr.arpa and ip6.arpa, also
 *   answers SOA/NS at their apex itself and NODATA for SOA anywhere below.
 * - RA is set (the resolver does recurse: it forwards); CoreDNS leaves RA clear on the kubernetes
 *   plugin's answers. `recursionAvailable: false` restores that.
 * - NOTIFY (which miekg lets through) gets NOTIMP.
 *
 * `loadbalance` (round_robin) shuffles address records when `random` is given (plugin/loadbalance
 * roundRobin, dns.Id() drawn from `random`); without it the order is stable.
 */
import { parseIp, ipTo4 } from "../../cluster/addressing.ts";
import { type Ipv4Addr, parseIpv4Addr } from "../../overlay/wire/index.ts";
import type { ClusterDnsData, DnsPort, DnsService } from "./records.ts";
import {
  type DnsQuery,
  type DnsRecord,
  type DnsResponse,
  OPCODE,
  QCLASS_IN,
  QTYPE,
  RCODE,
  echoOpt,
  nameToLabels,
  splitName,
} from "./wire.ts";

/** The schema version this resolver implements (spec §1, §2.2). */
export const DNS_SCHEMA_VERSION = "1.1.0";
/** CoreDNS answers dns-version with this TTL whatever the `ttl` option (kubernetes.go Services). */
const SCHEMA_TXT_TTL = 28_800;
/** CoreDNS ServeDNS: the SOA record's own TTL is min(ttl, 300) (backend_lookup.go SOA). */
const SOA_MAX_TTL = 300;
/** backend_lookup.go maxCnameChainLength. */
const MAX_CNAME_CHAIN = 10;

export const DEFAULT_ZONE = "cluster.local";
/** kubeadm's Corefile `ttl 30` (CoreDNS's own default is 5). */
export const DEFAULT_TTL = 30;
export const DEFAULT_DNS_SERVICE_IP = "10.96.0.10";

export type { PodMode } from "../../cluster/corefile.ts";
import type { PodMode } from "../../cluster/corefile.ts";

export interface AnswerOptions {
  /** The cluster domain (kubelet --cluster-domain); "cluster.local". */
  zone?: string;
  /** Seconds, 0..3600 as CoreDNS accepts it; 30 (kubeadm). */
  ttl?: number;
  /** The kube-dns Service, named by the apex NS record; kube-system/kube-dns at 10.96.0.10. */
  dnsService?: { namespace: string; name: string; ip: Ipv4Addr };
  /** `pods insecure` (kubeadm), `pods verified`, or `pods disabled` (CoreDNS's default). */
  podMode?: PodMode;
  /** `endpoint_pod_names`: name hostname-less endpoints by their pod, not their dashed IP. */
  endpointPodNames?: boolean;
  /** The SOA serial; data.serial when absent. */
  serial?: number;
  /** `loadbalance` round_robin: shuffles address records with this [0, 1) source. */
  random?: () => number;
  /** The RA flag; true (see the deviations above). */
  recursionAvailable?: boolean;
}

/** A CNAME left pointing outside the cluster zone: what the caller may resolve upstream and append. */
export interface Chase {
  readonly name: string;
  readonly type: number;
}

export type AnswerResult =
  | { readonly kind: "answer"; readonly response: DnsResponse; readonly chase?: Chase }
  | { readonly kind: "forward"; readonly reason: "outside-zone" | "reverse-unknown" };

interface Opts {
  zone: string;
  zoneLabels: string[];
  ttl: number;
  dns: { namespace: string; name: string; ip: Ipv4Addr };
  podMode: PodMode;
  endpointPodNames: boolean;
  serial: number | undefined;
  random: (() => number) | undefined;
  ra: boolean;
}

function resolveOptions(o: AnswerOptions): Opts {
  const zone = (o.zone ?? DEFAULT_ZONE).replace(/\.$/, "");
  const ttl = o.ttl !== undefined && Number.isInteger(o.ttl) && o.ttl >= 0 && o.ttl <= 3600 ? o.ttl : DEFAULT_TTL;
  return {
    zone,
    zoneLabels: splitName(zone).map(lower),
    ttl,
    dns: o.dnsService ?? { namespace: "kube-system", name: "kube-dns", ip: parseIpv4Addr(DEFAULT_DNS_SERVICE_IP)! },
    podMode: o.podMode ?? "insecure",
    endpointPodNames: o.endpointPodNames ?? false,
    serial: o.serial,
    random: o.random,
    ra: o.recursionAvailable ?? true,
  };
}

function lower(s: string): string {
  return s.toLowerCase();
}

function endsWith(labels: readonly string[], suffix: readonly string[]): boolean {
  if (suffix.length > labels.length) return false;
  const off = labels.length - suffix.length;
  return suffix.every((l, i) => labels[off + i] === l);
}

// ---------------------------------------------------------------------------------------------
// Responses

function reply(query: DnsQuery, o: Opts, rcode: number, aa: boolean, withOpt = true): DnsResponse {
  const isQuery = query.opcode === OPCODE.QUERY;
  return {
    id: query.id,
    opcode: query.opcode,
    rcode,
    aa,
    tc: false,
    // miekg SetReply copies RD and CD for QUERY only.
    rd: isQuery && query.rd,
    ra: o.ra,
    ad: false,
    cd: isQuery && query.cd,
    question: query.question,
    answers: [],
    authorities: [],
    additionals: [],
    opt: withOpt ? echoOpt(query) : undefined,
  };
}

function done(response: DnsResponse, o: Opts, chase?: Chase): AnswerResult {
  if (o.random && response.rcode === RCODE.NOERROR) {
    response.answers = roundRobin(response.answers, o.random);
    response.authorities = roundRobin(response.authorities, o.random);
    response.additionals = roundRobin(response.additionals, o.random);
  }
  return chase ? { kind: "answer", response, chase } : { kind: "answer", response };
}

/** The zone SOA (backend_lookup.go SOA), named in the query's case. */
function soaRecord(zoneText: string, o: Opts, serial: number): DnsRecord {
  return {
    name: zoneText,
    type: "SOA",
    ttl: Math.min(o.ttl, SOA_MAX_TTL),
    data: { mname: `ns.dns.${zoneText}`, rname: `hostmaster.${zoneText}`, serial, refresh: 7200, retry: 1800, expire: 86400, minimum: o.ttl },
  };
}

// ---------------------------------------------------------------------------------------------
// The entry point

/**
 * Answers one query from the cluster's DNS data. Never throws for any query `decodeQuery`
 * returns; the result is a response to encode (wire.ts encodeResponse) or "forward".
 */
export function answer(query: DnsQuery, data: ClusterDnsData, options: AnswerOptions = {}): AnswerResult {
  const o = resolveOptions(options);
  const q = query.question;
  if (query.opcode !== OPCODE.QUERY) return done(reply(query, o, RCODE.NOTIMP, false, false), o);
  // core/dnsserver/server.go ServeDNS: any class but IN is REFUSED (no chaos plugin).
  if (q.class !== QCLASS_IN) return done(reply(query, o, RCODE.REFUSED, false), o);
  // plugin/pkg/edns Version: BADVERS with a bare version-0 OPT (payload size 0, as CoreDNS writes it).
  if (query.edns && query.edns.version !== 0) {
    const r = reply(query, o, RCODE.BADVERS, false, false);
    r.opt = { udpPayloadSize: 0, do: false, options: [] };
    return done(r, o);
  }
  const labels = splitName(q.name);
  const lowered = labels.map(lower);
  if (endsWith(lowered, o.zoneLabels)) return answerZone(query, data, o, labels, lowered);
  if (endsWith(lowered, ["in-addr", "arpa"])) return answerReverse(query, data, o, lowered);
  // ip6.arpa: no IPv6 addresses in this cluster, so every name there falls through.
  return { kind: "forward", reason: endsWith(lowered, ["ip6", "arpa"]) ? "reverse-unknown" : "outside-zone" };
}

// ---------------------------------------------------------------------------------------------
// The cluster zone

/** What a name holds: whether it exists, and CoreDNS's msg.Service list for it. */
type Item =
  | { readonly kind: "a"; readonly ip: Ipv4Addr; readonly port: number; readonly target: string }
  | { readonly kind: "aaaa"; readonly ip: string; readonly port: number; readonly target: string }
  | { readonly kind: "cname"; readonly host: string };

interface Found {
  exists: boolean;
  items: Item[];
  apex?: boolean;
  txt?: string;
}

const NOTHING: Found = { exists: false, items: [] };
const EMPTY: Found = { exists: true, items: [] };

function answerZone(query: DnsQuery, data: ClusterDnsData, o: Opts, labels: string[], lowered: string[]): AnswerResult {
  const qtype = query.question.type;
  const zoneText = labels.slice(labels.length - o.zoneLabels.length).join(".");
  const rel = lowered.slice(0, lowered.length - o.zoneLabels.length);
  const serial = o.serial ?? data.serial;
  // handler.go: transfers are refused (no transfer plugin configured).
  if (qtype === QTYPE.AXFR || qtype === QTYPE.IXFR) return done(reply(query, o, RCODE.REFUSED, false), o);

  const found = lookup(rel, zoneText, data, o);
  const r = reply(query, o, RCODE.NOERROR, true);
  const qname = query.question.name;
  let chase: Chase | undefined;

  switch (qtype) {
    case QTYPE.A:
    case QTYPE.AAAA: {
      const out = addresses(qname, qtype, found, data, o, []);
      r.answers = out.records;
      chase = out.chase;
      break;
    }
    case QTYPE.TXT:
      if (found.txt !== undefined) r.answers = [{ name: qname, type: "TXT", ttl: SCHEMA_TXT_TTL, data: [found.txt] }];
      break;
    case QTYPE.CNAME: {
      const c = found.items.find((i) => i.kind === "cname");
      if (c && c.kind === "cname") r.answers = [{ name: qname, type: "CNAME", ttl: o.ttl, data: c.host }];
      break;
    }
    case QTYPE.SRV: {
      const out = srv(qname, found, o);
      r.answers = out.records;
      r.additionals = out.extra;
      break;
    }
    case QTYPE.SOA:
      if (found.apex) r.answers = [soaRecord(zoneText, o, serial)];
      break;
    case QTYPE.NS:
      if (found.apex) {
        const target = `${o.dns.name}.${o.dns.namespace}.svc.${zoneText}`;
        r.answers = [{ name: qname, type: "NS", ttl: o.ttl, data: target }];
        r.additionals = [{ name: target, type: "A", ttl: o.ttl, data: o.dns.ip }];
      }
      break;
    default:
      // handler.go: any other type is a "fake A lookup" that only tells NODATA from NXDOMAIN.
      break;
  }

  if (r.answers.length > 0) return done(r, o, chase);
  // backend_lookup.go BackendError: the SOA in the authority section, AA set.
  if (!found.exists) r.rcode = data.synced ? RCODE.NXDOMAIN : RCODE.SERVFAIL;
  r.authorities = [soaRecord(zoneText, o, serial)];
  r.additionals = [];
  return done(r, o);
}

/**
 * parseRequest and Records: what `rel` (the labels left of the zone, lower-cased) names. Five
 * shapes under svc/pod (parse.go): `<ns>`, `<svc>.<ns>`, `<endpoint>.<svc>.<ns>`,
 * `_<port>._<proto>.<svc>.<ns>`; anything longer is NXDOMAIN ("query too long").
 */
function lookup(rel: string[], zoneText: string, data: ClusterDnsData, o: Opts): Found {
  if (rel.length === 0) return { exists: true, items: [], apex: true };
  const last = rel[rel.length - 1]!;
  if (rel.length === 1 && last === "dns-version") return { exists: true, items: [], txt: DNS_SCHEMA_VERSION };
  if (last === "dns") {
    if (rel.length === 1) return EMPTY; // the empty non-terminal above ns.dns
    if (rel.length === 2 && rel[0] === "ns") {
      // ns.go isDefaultNS: ns.dns.<zone> A is the DNS Service's address.
      return { exists: true, items: [{ kind: "a", ip: o.dns.ip, port: -1, target: `ns.dns.${zoneText}` }] };
    }
    return NOTHING;
  }
  if (last !== "svc" && last !== "pod") return NOTHING; // errInvalidRequest
  if (rel.length === 1) return EMPTY; // parse.go: "return NODATA for apex queries"
  const namespace = rel[rel.length - 2]!;
  // Records: a namespace CoreDNS does not know hides everything under it.
  if (!data.hasNamespace(namespace)) return NOTHING;
  if (rel.length === 2) return EMPTY; // findServices/findPods: empty service name is NODATA
  if (last === "pod") return rel.length === 3 ? findPod(rel[0]!, namespace, zoneText, data, o) : NOTHING;
  const service = rel[rel.length - 3]!;
  const left = rel.slice(0, rel.length - 3);
  if (left.length > 2) return NOTHING;
  const endpoint = left.length === 1 ? left[0]! : "";
  const port = left.length === 2 ? stripUnderscore(left[0]!) : "";
  const protocol = left.length === 2 ? stripUnderscore(left[1]!) : "";
  return findService(data.service(namespace, service), endpoint, port, protocol, zoneText, data, o);
}

function stripUnderscore(s: string): string {
  return s.startsWith("_") ? s.slice(1) : s;
}

/** matchPortAndProtocol: an empty query part matches anything; comparisons ignore case. */
function portMatches(port: string, protocol: string, p: DnsPort): boolean {
  return (port === "" || port === lower(p.name)) && (protocol === "" || protocol === lower(p.protocol));
}

/** CoreDNS endpointHostname: the hostname field, else the pod name (endpoint_pod_names), else the dashed IP. */
function endpointHostname(e: { ip: Ipv4Addr; hostname: string; targetName: string }, o: Opts): string {
  if (e.hostname !== "") return e.hostname;
  if (o.endpointPodNames && e.targetName !== "") return e.targetName;
  return `${e.ip >>> 24}-${(e.ip >>> 16) & 0xff}-${(e.ip >>> 8) & 0xff}-${e.ip & 0xff}`;
}

/** kubernetes.go findServices for one Service. */
function findService(svc: DnsService | undefined, endpoint: string, port: string, protocol: string, zoneText: string, data: ClusterDnsData, o: Opts): Found {
  if (!svc) return NOTHING;
  const base = `${svc.name}.${svc.namespace}.svc.${zoneText}`;
  if (svc.kind === "ExternalName") {
    // No endpoints, ports or protocols under an ExternalName; an IP is no CNAME target (HostType).
    if (endpoint !== "" || port !== "" || protocol !== "") return NOTHING;
    if (svc.externalName === "" || parseIp(svc.externalName) !== undefined) return NOTHING;
    // Not a name at all (API validation would have refused it): nothing to point a CNAME at.
    if (nameToLabels(svc.externalName) === undefined) return NOTHING;
    return { exists: true, items: [{ kind: "cname", host: svc.externalName }] };
  }
  if (svc.kind === "Headless" || endpoint !== "") {
    const items: Item[] = [];
    const slices = data.slicesOf(svc.namespace, svc.name);
    for (const slice of slices) {
      for (const e of slice.endpoints) {
        const host = endpointHostname(e, o);
        if (endpoint !== "" && endpoint !== lower(host)) continue;
        for (const p of slice.ports) {
          if (!portMatches(port, protocol, p)) continue;
          items.push({ kind: "a", ip: e.ip, port: p.port, target: `${host}.${base}` });
        }
      }
    }
    if (items.length > 0) return { exists: true, items };
    // Deviation (RFC 8020): `_<proto>.<svc>` is the empty non-terminal above `_<port>._<proto>.<svc>`.
    if (endpoint.startsWith("_") && port === "") {
      const proto = endpoint.slice(1);
      const named = (p: DnsPort): boolean => p.name !== "" && lower(p.protocol) === proto;
      const hasChild = svc.kind === "Headless" ? slices.some((s) => s.endpoints.length > 0 && s.ports.some(named)) : svc.ports.some(named);
      if (hasChild) return EMPTY;
    }
    return NOTHING;
  }
  // ClusterIP: one item per (port, IP); a Service without ports has the sentinel port -1.
  const ports: readonly DnsPort[] = svc.ports.length > 0 ? svc.ports : [{ name: "", protocol: "", port: -1 }];
  let exists = false;
  const items: Item[] = [];
  for (const p of ports) {
    if (!portMatches(port, protocol, p)) continue;
    exists = true;
    for (const ip of svc.clusterIPs) items.push({ kind: "a", ip, port: p.port, target: base });
  }
  return exists ? { exists, items } : NOTHING;
}

/** Go's net.ParseIP for dotted quads: 0..255, no leading zeros (Go 1.17+). */
function strictIpv4(text: string): Ipv4Addr | undefined {
  if (!/^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$/.test(text)) return undefined;
  return parseIpv4Addr(text);
}

/** kubernetes.go findPods. */
function findPod(podname: string, namespace: string, zoneText: string, data: ClusterDnsData, o: Opts): Found {
  if (o.podMode === "disabled") return NOTHING;
  const target = `${podname}.${namespace}.pod.${zoneText}`;
  const dashes = podname.split("-").length - 1;
  const isV4 = dashes === 3 && !podname.includes("--");
  let item: Item | undefined;
  if (isV4) {
    const ip = strictIpv4(podname.replaceAll("-", "."));
    if (ip !== undefined) item = { kind: "a", ip, port: 0, target };
  } else {
    const bytes = parseIp(podname.replaceAll("-", ":"));
    const v4 = bytes && ipTo4(bytes);
    if (v4) item = { kind: "a", ip: ((v4[0]! << 24) | (v4[1]! << 16) | (v4[2]! << 8) | v4[3]!) >>> 0, port: 0, target };
    else if (bytes && bytes.length === 16) {
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
      item = { kind: "aaaa", ip: groups.join(":"), port: 0, target };
    }
  }
  if (!item) return NOTHING;
  if (o.podMode === "verified" && !(item.kind === "a" && data.podExists(namespace, item.ip))) return NOTHING;
  return { exists: true, items: [item] };
}

// ---------------------------------------------------------------------------------------------
// Records by type (backend_lookup.go)

function sameName(a: string, b: string): boolean {
  return lower(a.replace(/\.$/, "")) === lower(b.replace(/\.$/, ""));
}

function inZone(name: string, o: Opts): boolean {
  return endsWith(splitName(name).map(lower), o.zoneLabels);
}

/**
 * backend_lookup.go A / AAAA: address records, CNAMEs followed inside the zone (at most 10
 * links, no `x CNAME x`, no repeated link); a CNAME leaving the zone ends the chain with `chase`.
 */
function addresses(
  qname: string,
  qtype: number,
  found: Found,
  data: ClusterDnsData,
  o: Opts,
  previous: DnsRecord[],
): { records: DnsRecord[]; chase?: Chase } {
  const records: DnsRecord[] = [];
  let chase: Chase | undefined;
  const seen = new Set<string>();
  for (const item of found.items) {
    if (item.kind === "cname") {
      if (sameName(qname, item.host)) continue;
      if (previous.length > MAX_CNAME_CHAIN) continue;
      const link: DnsRecord = { name: qname, type: "CNAME", ttl: o.ttl, data: item.host };
      if (previous.some((p) => p.type === "CNAME" && sameName(p.name, link.name) && sameName(p.data as string, item.host))) continue;
      if (inZone(item.host, o)) {
        const labels = splitName(item.host);
        const rel = labels.map(lower).slice(0, labels.length - o.zoneLabels.length);
        const nextZone = labels.slice(labels.length - o.zoneLabels.length).join(".");
        const next = lookup(rel, nextZone, data, o);
        if (!next.exists) continue;
        const sub = addresses(item.host, qtype, next, data, o, [...previous, link]);
        if (sub.records.length > 0) {
          records.push(link, ...sub.records);
          chase ??= sub.chase;
        }
        continue;
      }
      records.push(link);
      chase ??= { name: item.host, type: qtype };
      continue;
    }
    if (qtype === QTYPE.A && item.kind === "a" && !seen.has(String(item.ip))) {
      seen.add(String(item.ip));
      records.push({ name: qname, type: "A", ttl: o.ttl, data: item.ip });
    }
    if (qtype === QTYPE.AAAA && item.kind === "aaaa" && !seen.has(item.ip)) {
      seen.add(item.ip);
      records.push({ name: qname, type: "AAAA", ttl: o.ttl, data: item.ip });
    }
  }
  return chase ? { records, chase } : { records };
}

/**
 * backend_lookup.go SRV: priority 0, weight 100/N (N records of that priority, floored, at least
 * 1), one per (target, port), the sentinel port -1 skipped; the target's address in the
 * additional section once per (target, address). CNAMEs give no SRV (kubernetes.go Services).
 */
function srv(qname: string, found: Found, o: Opts): { records: DnsRecord[]; extra: DnsRecord[] } {
  const items = found.items.filter((i): i is Exclude<Item, { kind: "cname" }> => i.kind !== "cname");
  const total = items.length * 100;
  const records: DnsRecord[] = [];
  const extra: DnsRecord[] = [];
  const dup = new Set<string>();
  for (const item of items) {
    if (item.port === -1) continue;
    // Same float operations as Go: w1 := 100.0 / float64(sum); w1 *= 100; uint16(math.Floor(w1)).
    const weight = Math.max(1, Math.floor((100 / total) * 100));
    const srvKey = `s ${item.target} ${item.port}`;
    if (!dup.has(srvKey)) {
      dup.add(srvKey);
      records.push({ name: qname, type: "SRV", ttl: o.ttl, data: { priority: 0, weight, port: item.port, target: item.target } });
    }
    const addrKey = `a ${item.target} ${item.ip}`;
    if (!dup.has(addrKey)) {
      dup.add(addrKey);
      extra.push(item.kind === "a" ? { name: item.target, type: "A", ttl: o.ttl, data: item.ip } : { name: item.target, type: "AAAA", ttl: o.ttl, data: item.ip });
    }
  }
  return { records, extra };
}

// ---------------------------------------------------------------------------------------------
// Reverse (reverse.go)

function answerReverse(query: DnsQuery, data: ClusterDnsData, o: Opts, lowered: string[]): AnswerResult {
  const forward: AnswerResult = { kind: "forward", reason: "reverse-unknown" };
  if (query.question.type !== QTYPE.PTR) return forward;
  const octets = lowered.slice(0, -2);
  // dnsutil.ExtractAddressFromReverse: exactly four labels, reversed, a valid dotted quad.
  if (octets.length !== 4) return forward;
  const ip = strictIpv4([...octets].reverse().join("."));
  if (ip === undefined) return forward;
  const names: string[] = [];
  // serviceRecordForIP: a cluster IP first; otherwise every ready endpoint with that address.
  const svc = data.serviceByClusterIP(ip);
  if (svc) names.push(`${svc.name}.${svc.namespace}.svc.${o.zone}`);
  else {
    for (const slice of data.slicesWithIP(ip)) {
      for (const e of slice.endpoints) {
        if (e.ip !== ip) continue;
        const name = `${endpointHostname(e, o)}.${slice.serviceName}.${slice.namespace}.svc.${o.zone}`;
        if (!names.includes(name)) names.push(name);
      }
    }
  }
  // fallthrough in-addr.arpa: an address the cluster does not know goes upstream.
  if (names.length === 0) return forward;
  const r = reply(query, o, RCODE.NOERROR, true);
  r.answers = names.map((n) => ({ name: query.question.name, type: "PTR", ttl: o.ttl, data: n }));
  return done(r, o);
}

// ---------------------------------------------------------------------------------------------
// loadbalance round_robin (plugin/loadbalance/loadbalance.go)

function roundRobin(records: DnsRecord[], random: () => number): DnsRecord[] {
  if (records.length <= 1) return records;
  const id = (): number => Math.floor(random() * 65536) & 0xffff;
  const t = records[0]!.type;
  if ((t === "A" || t === "AAAA") && records.every((r) => r.type === t)) {
    const out = [...records];
    shuffle(out, id);
    return out;
  }
  const cname = records.filter((r) => r.type === "CNAME");
  const address = records.filter((r) => r.type === "A" || r.type === "AAAA");
  const rest = records.filter((r) => r.type !== "CNAME" && r.type !== "A" && r.type !== "AAAA");
  shuffle(address, id);
  return [...cname, ...rest, ...address];
}

function shuffle(records: DnsRecord[], id: () => number): void {
  const l = records.length;
  if (l < 2) return;
  if (l === 2) {
    if (id() % 2 === 0) [records[0], records[1]] = [records[1]!, records[0]!];
    return;
  }
  for (let j = 0; j < l; j++) {
    const p = j + (id() % (l - j));
    if (p !== j) [records[j], records[p]] = [records[p]!, records[j]!];
  }
}
