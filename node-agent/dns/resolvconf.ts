/**
 * A pod's /etc/resolv.conf as kubelet composes it and the container runtime writes it, and the
 * names a stub resolver tries for a lookup, pure.
 *
 * Composition follows kubelet's pkg/kubelet/network/dns/dns.go (GetPodDNS):
 * - the base is the node's resolv.conf (kubelet --resolv-conf) parsed by parseResolvConf:
 *   nameserver lines accumulate, the last search line wins (each domain without its trailing
 *   dot), the last options line wins. kubelet --resolv-conf="" means "nameserver 127.0.0.1" (per
 *   node IP; "::1" for IPv6) and "search .".
 * - getPodDNSType: ClusterFirstWithHostNet is cluster DNS; ClusterFirst is cluster DNS unless the
 *   pod is hostNetwork, where it falls back to Default; Default is the node's; None starts empty;
 *   an unknown policy is cluster DNS (kubelet logs an error and uses ClusterFirst).
 * - cluster DNS: the nameservers are --cluster-dns alone, the search list is `<ns>.svc.<zone>
 *   svc.<zone> <zone>` then the node's search domains (duplicates dropped), options `ndots:5`
 *   only. Without --cluster-dns kubelet falls back to Default.
 * - pod.spec.dnsConfig is appended (appendDNSConfig): nameservers and searches added with
 *   duplicates dropped, options merged by name with the pod's winning (mergeDNSOptions; kubelet
 *   iterates a Go map, so its order is random; here it is the base's order, then the pod's).
 * - limits (formDNSConfigFitsLimits, ExpandedDNSConfig, GA since 1.28): at most 3 nameservers,
 *   32 search domains, each at most 253 characters, the search line at most 2048 characters.
 *
 * The file is written as containerd writes the CRI DNSConfig (parseDNSOptions): `search` line,
 * one `nameserver` line each, `options` line, each only when non-empty.
 *
 * Candidates follow the resolvers (RFC 1535 is the background): glibc res_nsearch
 * (resolv/res_query.c) and musl name_from_dns_search (src/network/lookup_name.c); `ndots` defaults
 * to 1 and is capped at 15 in both.
 */
import { parseIp } from "../../cluster/addressing.ts";

export interface ResolvConf {
  readonly nameservers: readonly string[];
  readonly searches: readonly string[];
  readonly options: readonly string[];
}

export type DnsPolicy = "ClusterFirst" | "ClusterFirstWithHostNet" | "Default" | "None";

export interface KubeletDnsSettings {
  /** --cluster-domain; "cluster.local". "" disables the cluster search domains. */
  clusterDomain?: string;
  /** --cluster-dns; ["10.96.0.10"]. [] makes ClusterFirst fall back to Default. */
  clusterDNS?: readonly string[];
  /**
   * The node's resolv.conf text (--resolv-conf, /etc/resolv.conf). undefined stands for
   * --resolv-conf="": nameserver 127.0.0.1, search ".".
   */
  hostResolvConf?: string;
  /** The node's IPs, for the --resolv-conf="" nameservers; one IPv4 when absent. */
  nodeIPs?: readonly string[];
}

/** pkg/apis/core/validation: MaxDNSNameservers, MaxDNSSearchPathsExpanded, MaxDNSSearchListCharsExpanded. */
export const MAX_NAMESERVERS = 3;
export const MAX_SEARCH_PATHS = 32;
export const MAX_SEARCH_LIST_CHARS = 2048;
/** utilvalidation.DNS1123SubdomainMaxLength: longer search domains abort glibc 2.28, kubelet drops them. */
const MAX_SEARCH_DOMAIN = 253;
const DEFAULT_CLUSTER_DNS = ["10.96.0.10"];
const DEFAULT_OPTIONS = ["ndots:5"];

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

function omitDuplicates(list: readonly string[]): string[] {
  return [...new Set(list)];
}

/** kubelet parseResolvConf: nameservers accumulate, the last search and options lines win. */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: string[] = [];
  let searches: string[] = [];
  let options: string[] = [];
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed.startsWith("#")) continue;
    const fields = trimmed.split(/\s+/).filter((f) => f !== "");
    if (fields.length === 0) continue;
    if (fields[0] === "nameserver" && fields.length >= 2) nameservers.push(fields[1]!);
    if (fields[0] === "search") searches = fields.slice(1).map((s) => s.replace(/\.$/, ""));
    if (fields[0] === "options") options = fields.slice(1);
  }
  return { nameservers, searches, options };
}

/** The pod's effective dnsPolicy as getPodDNSType sees it ("cluster", "host" or "none"). */
function podDnsType(policy: unknown, hostNetwork: boolean): "cluster" | "host" | "none" {
  switch (policy) {
    case "None":
      return "none";
    case "ClusterFirstWithHostNet":
      return "cluster";
    case "ClusterFirst":
    case undefined: // the API server defaults an absent dnsPolicy to ClusterFirst
      return hostNetwork ? "host" : "cluster";
    case "Default":
      return "host";
    default:
      return "cluster";
  }
}

/** mergeDNSOptions: by option name ("ndots" of "ndots:5"), the pod's value winning. */
function mergeOptions(existing: readonly string[], podOptions: unknown): string[] {
  const merged = new Map<string, string>();
  for (const op of existing) {
    const i = op.indexOf(":");
    if (i >= 0) merged.set(op.slice(0, i), op.slice(i + 1));
    else merged.set(op, "");
  }
  for (const raw of Array.isArray(podOptions) ? podOptions : []) {
    const o = obj(raw);
    if (!o || typeof o.name !== "string") continue;
    merged.set(o.name, typeof o.value === "string" ? o.value : "");
  }
  return [...merged].map(([name, value]) => (value !== "" ? `${name}:${value}` : name));
}

/** formDNSSearchFitsLimits. */
function searchWithinLimits(searches: readonly string[]): string[] {
  let out = searches.slice(0, MAX_SEARCH_PATHS).filter((s) => s.length <= MAX_SEARCH_DOMAIN);
  let len = out.join(" ").length;
  while (out.length > 0 && len > MAX_SEARCH_LIST_CHARS) {
    out = out.slice(0, -1);
    len = out.join(" ").length;
  }
  return out;
}

/**
 * kubelet GetPodDNS: the DNS configuration of a pod (a Pod object as the API stores it; read
 * defensively: fields of the wrong type count as absent).
 */
export function podDnsConfig(pod: unknown, settings: KubeletDnsSettings = {}): ResolvConf {
  const meta = obj(obj(pod)?.metadata);
  const spec = obj(obj(pod)?.spec);
  const namespace = typeof meta?.namespace === "string" && meta.namespace !== "" ? meta.namespace : "default";
  const clusterDomain = (settings.clusterDomain ?? "cluster.local").replace(/\.$/, "");
  const clusterDNS = settings.clusterDNS ?? DEFAULT_CLUSTER_DNS;

  // getHostDNSConfig: the node's resolv.conf, or nothing with --resolv-conf="".
  const host = settings.hostResolvConf !== undefined ? parseResolvConf(settings.hostResolvConf) : { nameservers: [], searches: [], options: [] };
  let servers: string[] = [...host.nameservers];
  let searches: string[] = [...host.searches];
  let options: string[] = [...host.options];

  let type = podDnsType(spec?.dnsPolicy, spec?.hostNetwork === true);
  if (type === "cluster" && clusterDNS.length === 0) type = "host"; // "MissingClusterDNS": fall back to Default
  if (type === "none") {
    servers = [];
    searches = [];
    options = [];
  } else if (type === "cluster") {
    servers = [...clusterDNS];
    searches = clusterDomain === "" ? searches : omitDuplicates([`${namespace}.svc.${clusterDomain}`, `svc.${clusterDomain}`, clusterDomain, ...searches]);
    options = [...DEFAULT_OPTIONS];
  } else if (settings.hostResolvConf === undefined) {
    // --resolv-conf="": the local resolver, and no search (bind's documented default).
    const ips = settings.nodeIPs ?? ["0.0.0.0"];
    servers = ips.map((ip) => (parseIp(ip)?.length === 16 ? "::1" : "127.0.0.1"));
    if (servers.length === 0) servers = ["127.0.0.1"];
    searches = ["."];
  }

  const dnsConfig = obj(spec?.dnsConfig);
  if (dnsConfig) {
    servers = omitDuplicates([...servers, ...strings(dnsConfig.nameservers)]);
    searches = omitDuplicates([...searches, ...strings(dnsConfig.searches)]);
    options = mergeOptions(options, dnsConfig.options);
  }
  return { nameservers: servers.slice(0, MAX_NAMESERVERS), searches: searchWithinLimits(searches), options };
}

/** The file as containerd writes it (parseDNSOptions). */
export function formatResolvConf(conf: ResolvConf): string {
  let out = "";
  if (conf.searches.length > 0) out += `search ${conf.searches.join(" ")}\n`;
  for (const ns of conf.nameservers) out += `nameserver ${ns}\n`;
  if (conf.options.length > 0) out += `options ${conf.options.join(" ")}\n`;
  return out;
}

/** The pod's /etc/resolv.conf text. */
export function podResolvConf(pod: unknown, settings: KubeletDnsSettings = {}): string {
  return formatResolvConf(podDnsConfig(pod, settings));
}

// ---------------------------------------------------------------------------------------------
// Stub resolver behaviour

/** What a stub resolver reads from resolv.conf: the search list and ndots. */
export interface ResolverConfig {
  readonly searches: readonly string[];
  readonly ndots: number;
}

/**
 * resolv.conf as glibc's res_init and musl's __get_resolv_conf read it: `search` and `domain`
 * set the list (the last such line wins), `options ndots:N` (N capped at 15, default 1; options
 * lines accumulate).
 */
export function resolverConfig(conf: ResolvConf | string): ResolverConfig {
  let searches: string[];
  let options: readonly string[];
  if (typeof conf === "string") {
    searches = [];
    const opts: string[] = [];
    for (const line of conf.split("\n")) {
      const fields = line.trim().split(/\s+/).filter((f) => f !== "");
      if (fields.length === 0 || fields[0]!.startsWith("#") || fields[0]!.startsWith(";")) continue;
      if (fields[0] === "search") searches = fields.slice(1);
      else if (fields[0] === "domain") searches = fields.slice(1, 2);
      else if (fields[0] === "options") opts.push(...fields.slice(1));
    }
    options = opts;
  } else {
    searches = [...conf.searches];
    options = conf.options;
  }
  let ndots = 1;
  for (const o of options) {
    const m = /^ndots:(\d+)$/.exec(o);
    if (m) ndots = Math.min(15, Number(m[1]));
  }
  return { searches: searches.map((s) => (s === "." ? s : s.replace(/\.$/, ""))), ndots };
}

export type StubResolver = "glibc" | "musl";

/**
 * The names a stub resolver queries for `name`, in order, until one answers (written without the
 * trailing dot; every one is sent as an absolute name).
 *
 * - A trailing dot: the name alone.
 * - glibc (res_nsearch): with at least `ndots` dots, the name as is first, then each search
 *   domain appended; with fewer, each search domain appended, then the name as is. A "." in the
 *   search list stands for the name as is (glibc queries "name." there, root_on_list), and the
 *   final as-is attempt is then skipped.
 * - musl: with at least `ndots` dots the name alone (musl skips the search list entirely); with
 *   fewer, each search domain appended, then the name as is.
 */
export function candidates(name: string, conf: ResolvConf | string | ResolverConfig, resolver: StubResolver = "glibc"): string[] {
  const rc = typeof conf !== "string" && "ndots" in conf ? conf : resolverConfig(conf);
  if (name === "" || name === ".") return [];
  if (name.endsWith(".")) return [name.replace(/\.+$/, "")].filter((n) => n !== "");
  const dots = [...name].filter((c) => c === ".").length;
  const appended = (domain: string): string => (domain === "." || domain === "" ? name : `${name}.${domain}`);
  if (resolver === "musl") {
    if (dots >= rc.ndots) return [name];
    return omitDuplicates([...rc.searches.map(appended), name]);
  }
  const out: string[] = [];
  let triedAsIs = false;
  if (dots >= rc.ndots) {
    out.push(name);
    triedAsIs = true;
  }
  let rootOnList = false;
  for (const d of rc.searches) {
    const root = d === "." || d === "";
    if (root) rootOnList = true;
    out.push(appended(d));
  }
  if (!triedAsIs && !rootOnList) out.push(name);
  return out;
}
