/**
 * The cluster DNS Corefile, pure: kubeadm's text (renderCorefile) and a reader of the part an
 * emulated CoreDNS acts on (parseCorefile). The control plane writes the text into the `coredns`
 * ConfigMap (control-plane/addons.ts); node-agents read it back with parseCorefile to configure
 * the coredns app, so a user's `kubectl edit configmap coredns` (a new ttl, `pods verified`, an
 * upstream) changes what the cluster DNS answers.
 *
 * Design notes
 *
 * - The text is kubeadm 1.32's CoreDNSConfigMap (cmd/kubeadm/app/phases/addons/dns/manifests.go)
 *   rendered with DNSDomain = the cluster domain: the `cache 30` block disabling the cache for the
 *   cluster zone exists only when the domain is non-empty, as the template's `{{- if .DNSDomain }}`.
 *
 * - Syntax is the Caddyfile's as CoreDNS 1.11 reads it (coredns/caddy caddyfile lexer.go and
 *   parse.go): tokens split on white space; `#` outside quotes starts a comment to the end of the
 *   line (also in the middle of a token); a token starting with `"` runs to the next unescaped
 *   `"` (inside, `\"` is a quote and any other backslash is kept), newlines included. A server
 *   block is its keys (`[dns://]ZONE[:PORT]`, several on one line, or continued on the next line
 *   after a trailing comma) then `{` on the same line, directives, `}`; a file holding a single
 *   server block may omit the braces. A directive is its name and the rest of its line; a line
 *   ending in `{` opens the directive's block up to the matching `}`. Snippets (`(name) {...}`)
 *   are skipped.
 *
 * - Which block: the server block holding the `kubernetes` plugin, preferring one listening on
 *   port 53 (kubeadm's `.:53`); only plain DNS (`dns://` or no scheme) blocks count.
 *
 * - The `kubernetes` plugin as plugin/kubernetes/setup.go ParseStanza reads it: ZONES from its
 *   arguments, else from the server block's keys, normalized (lower case, no trailing dot; a CIDR
 *   such as 10.0.0.0/17 expands to the reverse zones covering it, as plugin.Host NormalizeExact);
 *   the first non-reverse zone is the cluster zone ("non-reverse zone name must be used" without
 *   one). Options: `ttl` an integer 0..3600 (CoreDNS's default 5 when absent), `pods
 *   disabled|insecure|verified` (default disabled), `endpoint_pod_names`, `fallthrough [ZONES...]`;
 *   the other options CoreDNS knows are accepted and ignored; an unknown one is an error, as it is
 *   for CoreDNS ("unknown property"). The plugin may appear once per server block.
 *
 * - The `forward` plugin whose FROM is the root zone (`forward . TO...`): each TO is an IP,
 *   IP:port, `dns://` either of those (port 53 when absent), or a resolv.conf path (an absolute
 *   one; CoreDNS reads its nameservers at start). Forwards for other FROM zones (stub domains)
 *   are not read. Deviations, all reported as errors rather than guessed at: TLS, DoH and gRPC
 *   upstreams (`tls://`, `https://`, `grpc://`), host names (CoreDNS 1.11 refuses them too), and
 *   a path mixed with addresses (CoreDNS expands the file in place). `max_concurrent` is read;
 *   other known options are accepted.
 *
 * - Any other plugin is ignored (a node-agent cannot know every plugin); a malformed file is an
 *   error value, never a throw, so a node keeps its last good configuration.
 */
import { parseIp, parseIpCidr, type IpBytes } from "./addressing.ts";

/** kubelet --cluster-domain's and kubeadm's default. */
export const DEFAULT_CLUSTER_ZONE = "cluster.local";
/** plugin/kubernetes kubernetes.go defaultTTL: a Corefile without `ttl` gets 5 s. */
export const COREDNS_DEFAULT_TTL = 5;
/** plugin/kubernetes setup.go: ttl must be in range [0, 3600]. */
export const MAX_TTL = 3600;
/** The DNS port a server block listens on when its key names none. */
export const DNS_PORT = 53;
/** plugin/forward setup.go max: "more than 15 TOs configured". */
export const MAX_UPSTREAMS = 15;

// ------------------------------------------------------------------ kubeadm's text

/**
 * kubeadm's CoreDNSConfigMap Corefile for the cluster domain `zone` (cmd/kubeadm/app/phases/
 * addons/dns/manifests.go, Kubernetes 1.32), byte for byte as the ConfigMap's data.Corefile.
 */
export function renderCorefile({ zone }: { zone: string }): string {
  const cache = zone
    ? ["    cache 30 {", `       disable success ${zone}`, `       disable denial ${zone}`, "    }"]
    : ["    cache 30"];
  return [
    ".:53 {",
    "    errors",
    "    health {",
    "       lameduck 5s",
    "    }",
    "    ready",
    `    kubernetes ${zone} in-addr.arpa ip6.arpa {`,
    "       pods insecure",
    "       fallthrough in-addr.arpa ip6.arpa",
    "       ttl 30",
    "    }",
    "    prometheus :9153",
    "    forward . /etc/resolv.conf {",
    "       max_concurrent 1000",
    "    }",
    ...cache,
    "    loop",
    "    reload",
    "    loadbalance",
    "}",
    "",
  ].join("\n");
}

// ------------------------------------------------------------------ the configuration read

/** plugin/kubernetes POD-MODE. */
export type PodMode = "disabled" | "insecure" | "verified";

/** `fallthrough`: off, for every zone of the plugin, or for these zones only. */
export type Fallthrough = { readonly kind: "none" } | { readonly kind: "all" } | { readonly kind: "zones"; readonly zones: readonly string[] };

/** `forward . TO...`: the upstreams of names outside the cluster zones. */
export type ForwardConfig =
  /** The nameservers of this resolv.conf (kubeadm's `/etc/resolv.conf`: the node's, for a dnsPolicy Default pod). */
  | { readonly kind: "resolvconf"; readonly path: string; readonly maxConcurrent: number | undefined }
  /** These upstreams, each "IP:port" ("[IPv6]:port"), in the file's order. */
  | { readonly kind: "addresses"; readonly addresses: readonly string[]; readonly maxConcurrent: number | undefined };

export interface CorefileConfig {
  /** The port of the server block holding the kubernetes plugin (53 in kubeadm's `.:53`). */
  readonly port: number;
  /** The cluster zone: the plugin's first non-reverse zone, lower case, no trailing dot ("cluster.local"). */
  readonly zone: string;
  /** Every non-reverse zone of the plugin, the cluster zone first. */
  readonly zones: readonly string[];
  /** The plugin's reverse zones ("in-addr.arpa", "ip6.arpa", or narrower ones from CIDRs). */
  readonly reverseZones: readonly string[];
  /** Seconds, 0..3600; 5 when the file has no `ttl` (kubeadm's says 30). */
  readonly ttl: number;
  readonly podMode: PodMode;
  readonly endpointPodNames: boolean;
  readonly fallthrough: Fallthrough;
  /** The root zone's forward in the same server block; undefined when it has none. */
  readonly forward: ForwardConfig | undefined;
}

/** Stable codes of what can be wrong with a Corefile. */
export const CorefileErrorCode = {
  /** Not a Caddyfile: an unterminated quote, a brace out of place, a block never closed. */
  Syntax: "Syntax",
  /** No plain-DNS server block holds the kubernetes plugin. */
  NoKubernetes: "NoKubernetes",
  /** The kubernetes plugin's zones or options are not what CoreDNS accepts. */
  Kubernetes: "Kubernetes",
  /** The forward plugin's FROM, TO or options are not what CoreDNS (or this emulation) accepts. */
  Forward: "Forward",
} as const;
export type CorefileErrorCode = (typeof CorefileErrorCode)[keyof typeof CorefileErrorCode];

export interface CorefileError {
  readonly code: CorefileErrorCode;
  readonly message: string;
  /** The 1-based line the problem is on, when it is on one. */
  readonly line: number | undefined;
}

export type CorefileResult = { readonly ok: true; readonly config: CorefileConfig } | { readonly ok: false; readonly error: CorefileError };

/** Reads the cluster DNS settings from Corefile text; never throws. */
export function parseCorefile(text: string): CorefileResult {
  if (typeof text !== "string") return fail(CorefileErrorCode.Syntax, `a Corefile is text, not ${text === null ? "null" : typeof text}`);
  const tokens = tokenize(text);
  if (!Array.isArray(tokens)) return { ok: false, error: tokens };
  const blocks = parseServerBlocks(tokens);
  if (!Array.isArray(blocks)) return { ok: false, error: blocks };
  return readConfig(blocks);
}

// ------------------------------------------------------------------ lexer

interface Token {
  readonly text: string;
  /** The line the token starts on. */
  readonly line: number;
  /** The line it ends on (a quoted token may span lines). */
  readonly endLine: number;
  /** Written in quotes: never a brace, whatever its text. */
  readonly quoted: boolean;
}

function fail(code: CorefileErrorCode, message: string, line?: number): { ok: false; error: CorefileError } {
  return { ok: false, error: { code, message, line } };
}

function error(code: CorefileErrorCode, message: string, line?: number): CorefileError {
  return { code, message, line };
}

const isSpace = (c: string): boolean => c === " " || c === "\t" || c === "\r" || c === "\n" || c === "\f" || c === "\v";

/** The Caddyfile lexer (coredns/caddy caddyfile/lexer.go next). */
function tokenize(text: string): Token[] | CorefileError {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n") {
      line++;
      i++;
    } else if (isSpace(c)) {
      i++;
    } else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === '"') {
      const start = line;
      let val = "";
      let escaped = false;
      let closed = false;
      for (i++; i < text.length; i++) {
        const q = text[i]!;
        if (!escaped && q === "\\") {
          escaped = true;
          continue;
        }
        if (!escaped && q === '"') {
          closed = true;
          i++;
          break;
        }
        if (q === "\n") line++;
        // Only a quote is escaped; any other backslash stays.
        if (escaped && q !== '"') val += "\\";
        val += q;
        escaped = false;
      }
      if (!closed) return error(CorefileErrorCode.Syntax, "unterminated quoted string", start);
      out.push({ text: val, line: start, endLine: line, quoted: true });
    } else {
      let val = "";
      while (i < text.length && !isSpace(text[i]!) && text[i] !== "#") val += text[i++];
      out.push({ text: val, line, endLine: line, quoted: false });
    }
  }
  return out;
}

// ------------------------------------------------------------------ parser

/** One directive of a block: its name, the rest of its line, and its own block if it opens one. */
interface Directive {
  readonly name: string;
  readonly args: readonly string[];
  readonly block: readonly Directive[] | undefined;
  readonly line: number;
}

interface ServerBlock {
  readonly keys: readonly string[];
  readonly directives: readonly Directive[];
  readonly line: number;
}

const isOpen = (t: Token | undefined): boolean => !!t && !t.quoted && t.text === "{";
const isClose = (t: Token | undefined): boolean => !!t && !t.quoted && t.text === "}";

class Cursor {
  i = 0;
  constructor(readonly tokens: readonly Token[]) {}
  peek(): Token | undefined {
    return this.tokens[this.i];
  }
  next(): Token | undefined {
    return this.tokens[this.i++];
  }
}

/** caddyfile parse.go: server blocks, each its keys then its directives. */
function parseServerBlocks(tokens: readonly Token[]): ServerBlock[] | CorefileError {
  const cur = new Cursor(tokens);
  const blocks: ServerBlock[] = [];
  while (cur.peek()) {
    const first = cur.peek()!;
    if (isOpen(first) || isClose(first)) return error(CorefileErrorCode.Syntax, `unexpected '${first.text}' where a server block's address was expected`, first.line);
    // addresses(): keys up to `{` on the same line; a trailing comma continues on the next line.
    const keys: string[] = [];
    let expectingAnother = false;
    let opened = false;
    let last = first;
    for (;;) {
      const t = cur.peek();
      if (!t) {
        if (expectingAnother) return error(CorefileErrorCode.Syntax, "unexpected end of file: another address was expected after a comma", last.line);
        break;
      }
      if (t !== first && !expectingAnother && t.line !== last.endLine) break;
      if (isOpen(t)) {
        if (expectingAnother) return error(CorefileErrorCode.Syntax, "expected another address but had '{' - check for extra comma", t.line);
        cur.next();
        opened = true;
        break;
      }
      if (isClose(t)) return error(CorefileErrorCode.Syntax, "unexpected '}' among a server block's addresses", t.line);
      cur.next();
      last = t;
      let key = t.text;
      expectingAnother = key.endsWith(",");
      if (expectingAnother) key = key.slice(0, -1);
      if (key !== "") keys.push(key);
    }
    if (opened) {
      const directives = parseDirectives(cur, true, first.line);
      if (!Array.isArray(directives)) return directives;
      blocks.push({ keys, directives, line: first.line });
      continue;
    }
    // No braces: the rest of the file is this block's (a Caddyfile with a single server block).
    if (blocks.length > 0) return error(CorefileErrorCode.Syntax, "a server block without braces must be the only one in the file", first.line);
    const directives = parseDirectives(cur, false, first.line);
    if (!Array.isArray(directives)) return directives;
    blocks.push({ keys, directives, line: first.line });
  }
  return blocks;
}

/** Directives up to the `}` that closes the block (or the end of the file, for a braceless one). */
function parseDirectives(cur: Cursor, closing: boolean, openedAt: number): Directive[] | CorefileError {
  const out: Directive[] = [];
  for (;;) {
    const t = cur.next();
    if (!t) {
      if (closing) return error(CorefileErrorCode.Syntax, "unexpected end of file: a '{' was never closed", openedAt);
      return out;
    }
    if (isClose(t)) {
      if (closing) return out;
      return error(CorefileErrorCode.Syntax, "unexpected '}'", t.line);
    }
    if (isOpen(t)) return error(CorefileErrorCode.Syntax, "unexpected '{' where a directive was expected", t.line);
    const args: string[] = [];
    let block: Directive[] | undefined;
    let end = t.endLine;
    while (cur.peek() && cur.peek()!.line === end) {
      const a = cur.peek()!;
      // A `}` after arguments on the same line closes the enclosing block.
      if (isClose(a)) break;
      cur.next();
      if (isOpen(a)) {
        const after = cur.peek();
        if (after && after.line === a.line && !isClose(after)) return error(CorefileErrorCode.Syntax, "a '{' opening a directive's block must end its line", a.line);
        const inner = parseDirectives(cur, true, a.line);
        if (!Array.isArray(inner)) return inner;
        block = inner;
        break;
      }
      args.push(a.text);
      end = a.endLine;
    }
    out.push({ name: t.text, args, block, line: t.line });
  }
}

// ------------------------------------------------------------------ names and zones

const REVERSE_V4 = "in-addr.arpa";
const REVERSE_V6 = "ip6.arpa";

/** dnsutil.IsReverse: a zone under in-addr.arpa or ip6.arpa. */
function isReverse(zone: string): boolean {
  return zone === REVERSE_V4 || zone === REVERSE_V6 || zone.endsWith(`.${REVERSE_V4}`) || zone.endsWith(`.${REVERSE_V6}`);
}

/** A domain name's text is acceptable: labels of 1..63 characters, 253 in all. */
function isDomainName(name: string): boolean {
  if (name === ".") return true;
  if (name.length === 0 || name.length > 253) return false;
  return name.split(".").every((l) => l.length >= 1 && l.length <= 63 && !/[\s"]/.test(l));
}

/** The reverse zones covering an address block: the prefix rounded up to whole octets (nibbles for IPv6). */
function reverseZonesOf(network: IpBytes, prefix: number): string[] {
  const v4 = network.length === 4;
  const step = v4 ? 8 : 4;
  const digits: number[] = v4 ? [...network] : network.flatMap((b) => [b >> 4, b & 0xf]);
  const whole = Math.ceil(prefix / step);
  const spare = whole * step - prefix;
  const suffix = v4 ? REVERSE_V4 : REVERSE_V6;
  const zones: string[] = [];
  for (let k = 0; k < 2 ** spare; k++) {
    const d = digits.slice(0, whole);
    if (spare > 0) d[whole - 1] = d[whole - 1]! + k;
    const labels = d.reverse().map((x) => (v4 ? String(x) : x.toString(16)));
    zones.push([...labels, suffix].join("."));
  }
  return zones;
}

/**
 * plugin.Host(z).NormalizeExact: a zone lower-cased without its trailing dot ("." stays), or the
 * reverse zones of a CIDR; undefined when it is neither.
 */
function normalizeZone(text: string): string[] | undefined {
  const cidr = text.includes("/") ? parseIpCidr(text) : undefined;
  if (cidr) return reverseZonesOf(cidr.network, cidr.prefix);
  if (text.includes("/")) return undefined;
  const lower = text.toLowerCase();
  const zone = lower === "." ? "." : lower.replace(/\.$/, "");
  return isDomainName(zone) ? [zone] : undefined;
}

interface ServerAddress {
  readonly scheme: string;
  /** One zone, or the reverse zones a CIDR key stands for. */
  readonly zones: readonly string[];
  readonly port: number;
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { dns: DNS_PORT, tls: 853, quic: 853, grpc: 443, https: 443, https3: 443 };

/** A server block key: `[scheme://]zone[:port]` (dnsserver/address.go normalizeZone). */
function parseServerKey(key: string): ServerAddress | undefined {
  let rest = key;
  let scheme = "dns";
  const sep = rest.indexOf("://");
  if (sep >= 0) {
    scheme = rest.slice(0, sep).toLowerCase();
    rest = rest.slice(sep + 3);
  }
  const defaultPort = DEFAULT_PORTS[scheme];
  if (defaultPort === undefined) return undefined;
  let zoneText = rest;
  let port = defaultPort;
  const colon = rest.lastIndexOf(":");
  // A colon in an IPv6 CIDR is the address's, not a port's.
  if (colon >= 0 && !(rest.includes("/") && rest.indexOf(":") !== colon)) {
    const portText = rest.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) return undefined;
    port = Number(portText);
    zoneText = rest.slice(0, colon);
  }
  if (zoneText === "") zoneText = ".";
  const zones = normalizeZone(zoneText);
  if (!zones || zones.length === 0) return undefined;
  return { scheme, zones, port };
}

// ------------------------------------------------------------------ the plugins

const argError = (d: Directive): CorefileError =>
  error(CorefileErrorCode.Kubernetes, `wrong argument count or unexpected line ending after '${d.name}'`, d.line);

/** Options plugin/kubernetes accepts (1.11 and later) that the emulation does not act on. */
const KUBERNETES_IGNORED: Readonly<Record<string, (args: readonly string[]) => boolean>> = {
  resyncperiod: () => true,
  namespaces: (a) => a.length > 0,
  endpoint: (a) => a.length > 0,
  tls: (a) => a.length === 3,
  labels: (a) => a.length > 0,
  namespace_labels: (a) => a.length > 0,
  noendpoints: (a) => a.length === 0,
  kubeconfig: (a) => a.length === 1 || a.length === 2,
  multicluster: () => true,
  startup_timeout: (a) => a.length === 1,
  apiserver_qps: (a) => a.length === 1,
  apiserver_burst: (a) => a.length === 1,
  apiserver_max_inflight: (a) => a.length === 1,
};

/** strconv.Atoi: an optional sign and decimal digits. */
function atoi(text: string): number | undefined {
  return /^[+-]?[0-9]+$/.test(text) ? Number(text) : undefined;
}

type Kubernetes = Omit<CorefileConfig, "port" | "forward">;

/** plugin/kubernetes setup.go ParseStanza. */
function readKubernetes(d: Directive, blockZones: readonly string[]): Kubernetes | CorefileError {
  const zones: string[] = [];
  if (d.args.length > 0) {
    for (const a of d.args) {
      const z = normalizeZone(a);
      if (!z) return error(CorefileErrorCode.Kubernetes, `kubernetes: ${JSON.stringify(a)} is not a zone`, d.line);
      zones.push(...z);
    }
  } else {
    zones.push(...blockZones);
  }
  const forward = zones.filter((z) => !isReverse(z));
  if (forward.length === 0) return error(CorefileErrorCode.Kubernetes, "kubernetes: non-reverse zone name must be used", d.line);
  let ttl = COREDNS_DEFAULT_TTL;
  let podMode: PodMode = "disabled";
  let endpointPodNames = false;
  let fallthrough: Fallthrough = { kind: "none" };
  for (const o of d.block ?? []) {
    if (o.block) return error(CorefileErrorCode.Kubernetes, `kubernetes: '${o.name}' takes no block`, o.line);
    switch (o.name) {
      case "endpoint_pod_names":
        if (o.args.length > 0) return argError(o);
        endpointPodNames = true;
        break;
      case "pods": {
        if (o.args.length !== 1) return argError(o);
        const mode = o.args[0]!;
        if (mode !== "disabled" && mode !== "insecure" && mode !== "verified") {
          return error(CorefileErrorCode.Kubernetes, `kubernetes: wrong value for pods: ${mode},  must be one of: disabled, verified, insecure`, o.line);
        }
        podMode = mode;
        break;
      }
      case "fallthrough": {
        if (o.args.length === 0) {
          fallthrough = { kind: "all" };
          break;
        }
        const fz: string[] = [];
        for (const a of o.args) {
          const z = normalizeZone(a);
          if (!z) return error(CorefileErrorCode.Kubernetes, `kubernetes: fallthrough: ${JSON.stringify(a)} is not a zone`, o.line);
          fz.push(...z);
        }
        fallthrough = { kind: "zones", zones: fz };
        break;
      }
      case "ttl": {
        // CoreDNS reads the first argument and ignores any others.
        if (o.args.length === 0) return argError(o);
        const t = atoi(o.args[0]!);
        if (t === undefined) return error(CorefileErrorCode.Kubernetes, `kubernetes: ttl: ${JSON.stringify(o.args[0])} is not an integer`, o.line);
        if (t < 0 || t > MAX_TTL) return error(CorefileErrorCode.Kubernetes, `kubernetes: ttl must be in range [0, ${MAX_TTL}]: ${t}`, o.line);
        ttl = t;
        break;
      }
      case "ignore":
        if (o.args.length > 0 && o.args[0] !== "empty_service") return error(CorefileErrorCode.Kubernetes, `kubernetes: unable to parse ignore value: '${o.args[0]}'`, o.line);
        break;
      default: {
        const ok = Object.hasOwn(KUBERNETES_IGNORED, o.name) ? KUBERNETES_IGNORED[o.name]! : undefined;
        if (!ok) return error(CorefileErrorCode.Kubernetes, `kubernetes: unknown property '${o.name}'`, o.line);
        if (!ok(o.args)) return argError(o);
      }
    }
  }
  return {
    zone: forward[0]!,
    zones: forward,
    reverseZones: zones.filter(isReverse),
    ttl,
    podMode,
    endpointPodNames,
    fallthrough,
  };
}

/** Options plugin/forward accepts that the emulation does not act on. */
const FORWARD_IGNORED = new Set([
  "except",
  "force_tcp",
  "prefer_udp",
  "expire",
  "max_idle_conns",
  "max_fails",
  "max_connect_attempts",
  "doh_method",
  "tls",
  "tls_servername",
  "policy",
  "health_check",
  "next",
  "next_on_nodata",
  "failfast_all_unhealthy_upstreams",
  "failover",
  "resolver",
]);

type Upstream = { kind: "address"; address: string } | { kind: "file"; path: string };

/** parse.HostPortOrFile for one TO: an address with its port, or a resolv.conf path. */
function readUpstream(to: string, line: number): Upstream | CorefileError {
  let host = to;
  const sep = host.indexOf("://");
  if (sep >= 0) {
    const scheme = host.slice(0, sep).toLowerCase();
    if (scheme !== "dns") return error(CorefileErrorCode.Forward, `forward: ${scheme}:// upstreams are not emulated: ${JSON.stringify(to)}`, line);
    host = host.slice(sep + 3);
  }
  // [IPv6]:port, IPv4:port, a bare IP (either family), or a file.
  const bracketed = /^\[([^\]]+)\](?::([0-9]{1,5}))?$/.exec(host);
  let ip = host;
  let portText: string | undefined;
  if (bracketed) {
    ip = bracketed[1]!;
    portText = bracketed[2];
  } else if (host.split(":").length === 2) {
    [ip, portText] = host.split(":") as [string, string];
  }
  const bytes = parseIp(ip);
  if (bytes && (bracketed ? bytes.length === 16 : true)) {
    const port = portText === undefined ? DNS_PORT : /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) return error(CorefileErrorCode.Forward, `forward: bad port in ${JSON.stringify(to)}`, line);
    return { kind: "address", address: bytes.length === 16 ? `[${ip}]:${port}` : `${ip}:${port}` };
  }
  if (sep < 0 && host.startsWith("/")) return { kind: "file", path: host };
  return error(CorefileErrorCode.Forward, `forward: not an IP address or file: ${JSON.stringify(to)}`, line);
}

/** plugin/forward setup.go parseStanza: FROM (normalized) and what TO... means. */
function readForward(d: Directive): { from: string; config: ForwardConfig } | CorefileError {
  if (d.args.length < 2) return error(CorefileErrorCode.Forward, `wrong argument count or unexpected line ending after '${d.name}'`, d.line);
  const from = normalizeZone(d.args[0]!);
  if (!from) return error(CorefileErrorCode.Forward, `forward: ${JSON.stringify(d.args[0])} is not a zone`, d.line);
  const tos = d.args.slice(1);
  if (tos.length > MAX_UPSTREAMS) return error(CorefileErrorCode.Forward, `forward: more than ${MAX_UPSTREAMS} TOs configured: ${tos.length}`, d.line);
  const upstreams: Upstream[] = [];
  for (const to of tos) {
    const u = readUpstream(to, d.line);
    if ("code" in u) return u;
    upstreams.push(u);
  }
  let maxConcurrent: number | undefined;
  for (const o of d.block ?? []) {
    if (o.name === "max_concurrent") {
      const n = o.args.length === 1 ? atoi(o.args[0]!) : undefined;
      if (n === undefined) return error(CorefileErrorCode.Forward, `forward: max_concurrent needs one integer`, o.line);
      if (n < 0) return error(CorefileErrorCode.Forward, "forward: max_concurrent can't be negative", o.line);
      maxConcurrent = n;
    } else if (!FORWARD_IGNORED.has(o.name)) {
      return error(CorefileErrorCode.Forward, `forward: unknown property '${o.name}'`, o.line);
    }
  }
  const files = upstreams.filter((u): u is Extract<Upstream, { kind: "file" }> => u.kind === "file");
  if (files.length > 0) {
    if (upstreams.length > 1) return error(CorefileErrorCode.Forward, "forward: a resolv.conf path with other upstreams is not emulated", d.line);
    return { from: from[0]!, config: { kind: "resolvconf", path: files[0]!.path, maxConcurrent } };
  }
  return { from: from[0]!, config: { kind: "addresses", addresses: upstreams.map((u) => (u as Extract<Upstream, { kind: "address" }>).address), maxConcurrent } };
}

function readConfig(blocks: readonly ServerBlock[]): CorefileResult {
  let chosen: { block: ServerBlock; port: number; zones: string[]; kubernetes: Directive } | undefined;
  for (const block of blocks) {
    // A snippet, `(name) { ... }`, is only text for `import`.
    if (block.keys.length === 1 && /^\(.*\)$/.test(block.keys[0]!)) continue;
    if (block.keys.length === 0) return fail(CorefileErrorCode.Syntax, "a server block without an address", block.line);
    const addresses: ServerAddress[] = [];
    for (const key of block.keys) {
      const a = parseServerKey(key);
      if (!a) return fail(CorefileErrorCode.Syntax, `${JSON.stringify(key)} is not a server address`, block.line);
      addresses.push(a);
    }
    const k8s = block.directives.filter((d) => d.name === "kubernetes");
    if (k8s.length > 1) return fail(CorefileErrorCode.Kubernetes, "kubernetes: this plugin can only be used once per Server Block", k8s[1]!.line);
    const dns = addresses.filter((a) => a.scheme === "dns");
    if (k8s.length === 0 || dns.length === 0) continue;
    const port = dns.some((a) => a.port === DNS_PORT) ? DNS_PORT : dns[0]!.port;
    if (!chosen || (chosen.port !== DNS_PORT && port === DNS_PORT)) {
      chosen = { block, port, zones: [...new Set(dns.flatMap((a) => a.zones))], kubernetes: k8s[0]! };
    }
  }
  if (!chosen) return fail(CorefileErrorCode.NoKubernetes, "no DNS server block has the kubernetes plugin", undefined);
  const k = readKubernetes(chosen.kubernetes, chosen.zones);
  if ("code" in k) return { ok: false, error: k };
  let forward: ForwardConfig | undefined;
  for (const d of chosen.block.directives) {
    if (d.name !== "forward") continue;
    const f = readForward(d);
    if ("code" in f) return { ok: false, error: f };
    if (f.from === "." && forward === undefined) forward = f.config;
  }
  return { ok: true, config: { port: chosen.port, ...k, forward } };
}
