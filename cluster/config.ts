/**
 * One config loader for every process. Each setting comes from a KUBEWIRE_* environment
 * variable (the only way docker compose configures a container) with the embedded default of
 * DESIGN.md. `CONFIG_ENV_VARS` lists every variable read, so the compose file can be checked
 * against it statically.
 */
import { readFileSync } from "node:fs";
import { cidrContains, formatCidr, mustParseCidr, parseCidr } from "./addressing.ts";
import { parseIpv4Addr } from "../overlay/wire/common.ts";
import { cidrsOverlap } from "./ipam.ts";
import { isDns1123Label, parseDuration } from "./syntax.ts";
import { BOOTSTRAP_TOKEN_PATTERN } from "./nats-auth.ts";

export const CONFIG_ENV_VARS = {
  KUBEWIRE_NATS_URL: "NATS server URL(s), comma separated",
  KUBEWIRE_NATS_CA: "PEM file of the cluster CA: NATS links are TLS, verified with it (unset: plain text, the benchmark baseline only)",
  KUBEWIRE_NATS_CA_HASH: "sha256:<hex> pin of the cluster CA's public key (kubeadm's --discovery-token-ca-cert-hash): a joining node without the CA file takes the CA from the server's handshake if it matches (node-agent)",
  KUBEWIRE_NATS_CREDS: "this process's NATS credentials (.creds: user JWT and nkey seed); a node-agent writes its own there after joining with the bootstrap token",
  KUBEWIRE_NATS_ISSUER: "JSON file with the NATS account and the signing key the control plane issues node identities with (control plane)",
  KUBEWIRE_BOOTSTRAP_TOKEN: "bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}, as kubeadm's): a node-agent without credentials joins with it; the control plane accepts joins with it while its kube-system Secret lives; the compose set-up's pki service makes the material for it",
  KUBEWIRE_BOOTSTRAP_TOKEN_TTL: "how long the bootstrap token's Secret lets nodes join, a Go duration from the control plane's first start; 0 never expires (kubeadm's --token-ttl; 24h)",
  KUBEWIRE_NATS_REPLICAS: "replicas of the store's JetStream stream: 3 on a 3-server NATS cluster (control plane; 1)",
  KUBEWIRE_NATS_SERVERS: "the compose set-up's NATS services, comma separated (pki; nats): the server certificate is made for their names, and with several, each gets its own config <name>.conf routing it to the others (deploy/compose-nats-cluster.yml)",
  KUBEWIRE_NODE_NAME: "name of this node (node-agent only)",
  KUBEWIRE_HOST_ADDRESS: "real address this node binds NodePorts/DNS to (127.0.1.N locally)",
  KUBEWIRE_CLUSTER_CIDR: "pod network; each node gets a /24 of it",
  KUBEWIRE_NODE_CIDR_MASK: "prefix length of each node's pod CIDR",
  KUBEWIRE_SERVICE_CIDR: "ClusterIP range",
  KUBEWIRE_UNDERLAY_CIDR: "emulated node InternalIP range",
  KUBEWIRE_VNI: "VXLAN network identifier of the overlay",
  KUBEWIRE_LOG_LEVEL: "pino level: trace, debug, info, warn, error",
  KUBEWIRE_API_ADDRESS: "host:port the Kubernetes API listens on (control plane)",
  KUBEWIRE_API_TOKEN: "bearer token the Kubernetes API requires (control plane)",
  KUBEWIRE_API_TLS_CERT: "PEM file of the API's serving certificate; a self-signed one is made when unset",
  KUBEWIRE_API_TLS_KEY: "PEM file of the API's serving key",
  KUBEWIRE_NODE_GRACE_SECONDS: "seconds without a Lease renewal or Ready heartbeat before a node is Ready Unknown and tainted unreachable (kube-controller-manager --node-monitor-grace-period; 10)",
  KUBEWIRE_DEFAULT_TOLERATION_SECONDS: "tolerationSeconds of the not-ready/unreachable NoExecute tolerations given to pods without one: how long their node may be bad before they are evicted (kube-apiserver --default-unreachable-toleration-seconds, 300 there; 20)",
  KUBEWIRE_HEARTBEAT_SECONDS: "how often a node-agent renews its Lease in kube-node-lease; the lease lasts 4 times that (kubelet's renew interval fraction 0.25; 1)",
  KUBEWIRE_EVENT_TTL_SECONDS: "seconds an Event is kept after its lastTimestamp (kube-apiserver --event-ttl)",
  KUBEWIRE_TOMBSTONE_TTL_SECONDS: "seconds a deleted object's delete marker stays in the store before it is purged",
  KUBEWIRE_HOUSEKEEPING_SECONDS: "how often the control plane expires Events and purges old delete markers",
  KUBEWIRE_CRON_MINUTE_SECONDS: "real seconds a minute of the CronJob controller's clock lasts (60; tests shorten it)",
  KUBEWIRE_PROXY_MODE: "kube-proxy mode every node-agent emulates: iptables, ipvs or nftables (kube-proxy --proxy-mode)",
  KUBEWIRE_IPVS_SCHEDULER: "IPVS scheduler in proxy mode ipvs: rr, wrr, lc, wlc, sh, dh, sed, nq (kube-proxy --ipvs-scheduler; node-agent)",
  KUBEWIRE_LB_CIDR: "pool of type=LoadBalancer Service addresses (the emulated cloud's; .1 up to the last before broadcast)",
  KUBEWIRE_CLUSTER_DOMAIN: "the cluster's DNS domain (kubelet --cluster-domain; cluster.local)",
  KUBEWIRE_DNS_PORT: "port of the cluster DNS on each node's host address, UDP and TCP, for real clients (node-agent; 1053)",
  KUBEWIRE_FLOW_BUFFER: "flow records a node keeps (a ring; the oldest go first); 0 turns flow records off (node-agent; 65536)",
  KUBEWIRE_DNS_UPSTREAM: "where cluster DNS forwards names outside the cluster: host:port list, or 'none'; default the host's /etc/resolv.conf nameservers (node-agent)",
} as const;
export type ConfigEnvVar = keyof typeof CONFIG_ENV_VARS;

/** kube-proxy --proxy-mode values (pkg/proxy/apis/config: ProxyModeIPTables, ProxyModeIPVS, ProxyModeNFTables). */
export const PROXY_MODES = ["iptables", "ipvs", "nftables"] as const;
export type ProxyMode = (typeof PROXY_MODES)[number];

/** The IPVS schedulers kube-proxy's ipvs mode accepts for --ipvs-scheduler (rr is its default). */
export const IPVS_SCHEDULERS = ["rr", "wrr", "lc", "wlc", "sh", "dh", "sed", "nq"] as const;
export type IpvsScheduler = (typeof IPVS_SCHEDULERS)[number];

export interface ClusterConfig {
  natsUrl: string;
  /** The cluster CA file and this process's credentials file; unset on an unsecured cluster. */
  natsCa?: string;
  natsCreds?: string;
  clusterCidr: string;
  nodeCidrMask: number;
  serviceCidr: string;
  underlayCidr: string;
  vni: number;
  logLevel: string;
  /** How every node-agent programs Services; cluster-wide so the nodes agree. */
  proxyMode: ProxyMode;
  /**
   * The LoadBalancer address pool. Cluster-wide: the control plane hands the addresses out and
   * serves them (the emulated cloud load balancer), and node-agents route them inside pods,
   * where they are not loopback.
   */
  lbCidr: string;
  /** The cluster DNS domain: kubelet's --cluster-domain and CoreDNS's zone. */
  clusterDomain: string;
}

export interface NodeAgentConfig extends ClusterConfig {
  nodeName: string;
  /** The pin of the cluster CA, for a node that joins without the CA file. */
  natsCaHash?: string;
  /** The token a node without credentials joins with. */
  bootstrapToken?: string;
  hostAddress: string;
  heartbeatSeconds: number;
  /** Scheduler of the IPVS virtual servers (used in proxy mode ipvs only). */
  ipvsScheduler: IpvsScheduler;
  /** The host port real clients query cluster DNS on (UDP and TCP). */
  dnsPort: number;
  /**
   * The node's own resolvers ("host:port"), what a pod with dnsPolicy Default sees in its
   * resolv.conf and what CoreDNS's `forward . /etc/resolv.conf` sends to; [] answers SERVFAIL.
   */
  dnsUpstream: string[];
  /** Capacity of the node's flow record ring; 0: no flow records. */
  flowBuffer: number;
}

export interface ControlPlaneConfig extends ClusterConfig {
  /** The issuer file of node identities, and the bootstrap token joins are checked against. */
  natsIssuer?: string;
  bootstrapToken?: string;
  /** The token Secret's lifetime in ms; 0: it never expires. */
  bootstrapTokenTtlMs: number;
  /** Replicas of the store's stream. */
  natsReplicas: number;
  apiHost: string;
  apiPort: number;
  apiToken: string;
  /** Paths of the serving certificate and key; both or neither. */
  apiTlsCert?: string;
  apiTlsKey?: string;
  /** nodeMonitorGracePeriod. */
  nodeGraceSeconds: number;
  /** The DefaultTolerationSeconds admission plugin's tolerationSeconds. */
  defaultTolerationSeconds: number;
  /** Events expire this long after their lastTimestamp. */
  eventTtlSeconds: number;
  /** Delete markers older than this are purged from the store (a watch from before gets 410). */
  tombstoneTtlSeconds: number;
  /** The period of the housekeeping pass (event expiry, delete-marker purge). */
  housekeepingSeconds: number;
  /** Real seconds per minute of the CronJob controller's clock. */
  cronMinuteSeconds: number;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly variable: ConfigEnvVar,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function cidr(env: Env, name: ConfigEnvVar, fallback: string): string {
  const value = env[name] ?? fallback;
  const parsed = parseCidr(value);
  if (!parsed) throw new ConfigError(name, `not an aligned IPv4 CIDR: ${JSON.stringify(value)}`);
  // Canonical text ("010.0.0.0/8" is read as 10.0.0.0/8, the way API validation reads it).
  return formatCidr(parsed);
}

function int(env: Env, name: ConfigEnvVar, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined) return fallback;
  // Decimal digits only: Number("") and Number(" ") are 0, which would pass as a valid VNI.
  const value = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: ConfigEnvVar, values: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined) return fallback;
  if (!(values as readonly string[]).includes(raw)) throw new ConfigError(name, `must be one of ${values.join(", ")}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

/**
 * The LoadBalancer pool: at least two host addresses (the network and broadcast addresses are
 * never handed out), and apart from every other range, so an address means one thing only.
 */
function lbCidr(env: Env, others: ReadonlyArray<readonly [ConfigEnvVar, string]>): string {
  const value = cidr(env, "KUBEWIRE_LB_CIDR", "127.0.2.0/24");
  const pool = mustParseCidr(value);
  if (pool.prefix > 30) throw new ConfigError("KUBEWIRE_LB_CIDR", `${value} has no room for an address: use a /30 or wider`);
  for (const [name, other] of others) {
    if (cidrsOverlap(pool, mustParseCidr(other))) throw new ConfigError("KUBEWIRE_LB_CIDR", `${value} overlaps ${name} ${other}`);
  }
  return value;
}

export function loadClusterConfig(env: Env = process.env): ClusterConfig {
  const clusterCidr = cidr(env, "KUBEWIRE_CLUSTER_CIDR", "10.244.0.0/16");
  const nodeCidrMask = int(env, "KUBEWIRE_NODE_CIDR_MASK", 24, 8, 30);
  const clusterPrefix = Number(clusterCidr.split("/")[1]);
  if (nodeCidrMask < clusterPrefix) {
    throw new ConfigError("KUBEWIRE_NODE_CIDR_MASK", `/${nodeCidrMask} is larger than the cluster CIDR ${clusterCidr}`);
  }
  const serviceCidr = cidr(env, "KUBEWIRE_SERVICE_CIDR", "10.96.0.0/12");
  const underlayCidr = cidr(env, "KUBEWIRE_UNDERLAY_CIDR", "172.31.0.0/24");
  return {
    natsUrl: env.KUBEWIRE_NATS_URL ?? "nats://127.0.0.1:4222",
    ...(env.KUBEWIRE_NATS_CA ? { natsCa: env.KUBEWIRE_NATS_CA } : {}),
    ...(env.KUBEWIRE_NATS_CREDS ? { natsCreds: env.KUBEWIRE_NATS_CREDS } : {}),
    clusterCidr,
    nodeCidrMask,
    serviceCidr,
    underlayCidr,
    vni: int(env, "KUBEWIRE_VNI", 1, 0, 0xffffff),
    logLevel: env.KUBEWIRE_LOG_LEVEL ?? "info",
    proxyMode: oneOf(env, "KUBEWIRE_PROXY_MODE", PROXY_MODES, "iptables"),
    lbCidr: lbCidr(env, [
      ["KUBEWIRE_CLUSTER_CIDR", clusterCidr],
      ["KUBEWIRE_SERVICE_CIDR", serviceCidr],
      ["KUBEWIRE_UNDERLAY_CIDR", underlayCidr],
    ]),
    clusterDomain: domain(env, "KUBEWIRE_CLUSTER_DOMAIN", "cluster.local"),
  };
}

function goDuration(env: Env, name: ConfigEnvVar, fallback: number): number {
  const raw = env[name];
  if (raw === undefined) return fallback;
  const ms = raw === "0" ? 0 : parseDuration(raw);
  if (ms === undefined) throw new ConfigError(name, `want a duration like 24h, 90m or 0, got ${JSON.stringify(raw)}`);
  return ms;
}

function bootstrapToken(env: Env): { bootstrapToken?: string } {
  const token = env.KUBEWIRE_BOOTSTRAP_TOKEN;
  if (token === undefined || token === "") return {};
  // kubeadm's format (k8s.io/cluster-bootstrap/token/api BootstrapTokenPattern); never echoed back.
  if (!BOOTSTRAP_TOKEN_PATTERN.test(token)) throw new ConfigError("KUBEWIRE_BOOTSTRAP_TOKEN", "want [a-z0-9]{6}.[a-z0-9]{16}");
  return { bootstrapToken: token };
}

/**
 * The settings every process of a cluster must agree on, as the control plane publishes them in
 * kube-system's ConfigMap `kubewire-cluster-config` (as kubeadm publishes the kubelet's
 * configuration for nodes that join): a node that joins from elsewhere takes them from there.
 */
export const CLUSTER_SETTINGS = [
  "KUBEWIRE_CLUSTER_CIDR",
  "KUBEWIRE_NODE_CIDR_MASK",
  "KUBEWIRE_SERVICE_CIDR",
  "KUBEWIRE_UNDERLAY_CIDR",
  "KUBEWIRE_VNI",
  "KUBEWIRE_PROXY_MODE",
  "KUBEWIRE_LB_CIDR",
  "KUBEWIRE_CLUSTER_DOMAIN",
] as const satisfies readonly ConfigEnvVar[];
export const CLUSTER_SETTINGS_CONFIGMAP = { namespace: "kube-system", name: "kubewire-cluster-config" } as const;

/** A cluster's settings as text, in the canonical form the loader gives them. */
export function clusterSettingsOf(c: ClusterConfig): Record<(typeof CLUSTER_SETTINGS)[number], string> {
  return {
    KUBEWIRE_CLUSTER_CIDR: c.clusterCidr,
    KUBEWIRE_NODE_CIDR_MASK: String(c.nodeCidrMask),
    KUBEWIRE_SERVICE_CIDR: c.serviceCidr,
    KUBEWIRE_UNDERLAY_CIDR: c.underlayCidr,
    KUBEWIRE_VNI: String(c.vni),
    KUBEWIRE_PROXY_MODE: c.proxyMode,
    KUBEWIRE_LB_CIDR: c.lbCidr,
    KUBEWIRE_CLUSTER_DOMAIN: c.clusterDomain,
  };
}

/**
 * `env` with the cluster's published settings (a ConfigMap's data, not trusted: only string
 * values of the known keys count) for every one it does not set. One it sets otherwise is an
 * error naming both values: a node that disagrees with the cluster on a CIDR or the proxy mode
 * would route or proxy differently from every other node.
 */
export function withClusterSettings(env: Env, published: unknown): Env {
  if (typeof published !== "object" || published === null) return env;
  const data = published as Record<string, unknown>;
  const mine = clusterSettingsOf(loadClusterConfig(env));
  const out: Record<string, string | undefined> = { ...env };
  for (const key of CLUSTER_SETTINGS) {
    const theirs = data[key];
    if (typeof theirs !== "string") continue;
    if (env[key] === undefined) out[key] = theirs;
    else if (mine[key] !== theirs) throw new ConfigError(key, `${JSON.stringify(env[key])} here, but the cluster runs ${JSON.stringify(theirs)} (kube-system/${CLUSTER_SETTINGS_CONFIGMAP.name}): leave it unset to take the cluster's`);
  }
  return out;
}

/** A DNS subdomain (RFC 1123), lower case, without the trailing dot. */
function domain(env: Env, name: ConfigEnvVar, fallback: string): string {
  const raw = env[name] ?? fallback;
  const value = raw.replace(/\.$/, "").toLowerCase();
  if (value.length === 0 || value.length > 253 || !value.split(".").every(isDns1123Label)) throw new ConfigError(name, `not a DNS domain name: ${JSON.stringify(raw)}`);
  return value;
}

/** The nameserver lines of a resolv.conf, as "ip:53"; what the host's resolver uses. */
export function resolvConfNameservers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && parseIpv4Addr(m[1]!) !== undefined) out.push(`${m[1]}:53`);
  }
  return out;
}

function dnsUpstream(env: Env, readResolvConf: () => string): string[] {
  const raw = env.KUBEWIRE_DNS_UPSTREAM;
  if (raw === undefined) {
    let text = "";
    try {
      text = readResolvConf();
    } catch {
      // No /etc/resolv.conf: no upstream, names outside the cluster get SERVFAIL.
    }
    return resolvConfNameservers(text);
  }
  if (raw.trim() === "none") return [];
  const out: string[] = [];
  for (const part of raw.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const m = /^(\d+\.\d+\.\d+\.\d+)(?::(\d{1,5}))?$/.exec(part);
    if (!m || parseIpv4Addr(m[1]!) === undefined || Number(m[2] ?? 53) < 1 || Number(m[2] ?? 53) > 65535) {
      throw new ConfigError("KUBEWIRE_DNS_UPSTREAM", `want IPv4[:port] list or "none", got ${JSON.stringify(part)}`);
    }
    out.push(`${m[1]}:${m[2] ?? 53}`);
  }
  return out;
}

/** The address `hostname` has in an /etc/hosts text (the first IPv4 line naming it), if any. */
export function hostsAddressOf(hostsText: string, hostname: string): string | undefined {
  for (const line of hostsText.split("\n")) {
    const [ip, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (ip !== undefined && parseIpv4Addr(ip) !== undefined && names.some((n) => n.toLowerCase() === hostname.toLowerCase())) return ip;
  }
  return undefined;
}

/**
 * The node-agent's environment with the machine's identity filled in where none is given, as a
 * kubelet names itself after its hostname (lower-cased) and takes the address its hostname
 * resolves to: KUBEWIRE_NODE_NAME from `hostname`, KUBEWIRE_HOST_ADDRESS from /etc/hosts (where
 * Docker writes each container's own address; 127.0.1.1 on a Debian host), else unset. This is
 * what lets every replica of one compose service be its own node.
 */
export function withMachineIdentity(env: Env, machine: { hostname: string; hostsText: string }): Env {
  const out: Record<string, string | undefined> = { ...env };
  if (out.KUBEWIRE_NODE_NAME === undefined) out.KUBEWIRE_NODE_NAME = machine.hostname.toLowerCase();
  if (out.KUBEWIRE_HOST_ADDRESS === undefined) out.KUBEWIRE_HOST_ADDRESS = hostsAddressOf(machine.hostsText, machine.hostname);
  return out;
}

export function loadNodeAgentConfig(env: Env = process.env, readResolvConf: () => string = () => readFileSync("/etc/resolv.conf", "utf8")): NodeAgentConfig {
  const nodeName = env.KUBEWIRE_NODE_NAME;
  if (!nodeName) throw new ConfigError("KUBEWIRE_NODE_NAME", "required");
  if (!isDns1123Label(nodeName)) throw new ConfigError("KUBEWIRE_NODE_NAME", `not a DNS-1123 label: ${JSON.stringify(nodeName)}`);
  const cluster = loadClusterConfig(env);
  const hostAddress = env.KUBEWIRE_HOST_ADDRESS ?? "127.0.0.1";
  const hostIp = parseIpv4Addr(hostAddress);
  // The node's NodePorts and the load balancers in front of them must not share an address.
  if (hostIp !== undefined && cidrContains(mustParseCidr(cluster.lbCidr), hostIp)) {
    throw new ConfigError("KUBEWIRE_LB_CIDR", `${cluster.lbCidr} contains this node's KUBEWIRE_HOST_ADDRESS ${hostAddress}`);
  }
  const natsCaHash = env.KUBEWIRE_NATS_CA_HASH;
  if (natsCaHash !== undefined && !/^sha256:[0-9a-f]{64}$/.test(natsCaHash)) throw new ConfigError("KUBEWIRE_NATS_CA_HASH", `want sha256:<64 hex digits>, got ${JSON.stringify(natsCaHash)}`);
  return {
    ...cluster,
    ...(natsCaHash ? { natsCaHash } : {}),
    ...bootstrapToken(env),
    nodeName,
    hostAddress,
    heartbeatSeconds: int(env, "KUBEWIRE_HEARTBEAT_SECONDS", 1, 1, 60),
    ipvsScheduler: oneOf(env, "KUBEWIRE_IPVS_SCHEDULER", IPVS_SCHEDULERS, "rr"),
    dnsPort: int(env, "KUBEWIRE_DNS_PORT", 1053, 1, 65535),
    dnsUpstream: dnsUpstream(env, readResolvConf),
    flowBuffer: int(env, "KUBEWIRE_FLOW_BUFFER", 65_536, 0, 16_777_216),
  };
}

/** The compose set-up's one-shot `pki` service (control-plane/pki.ts): the token its material is made for, and the NATS servers. */
export interface PkiConfig {
  logLevel: string;
  bootstrapToken: string;
  /** The compose services that run nats-server (their names on the compose network). */
  natsServers: string[];
}

export function loadPkiConfig(env: Env = process.env): PkiConfig {
  const { bootstrapToken: token } = bootstrapToken(env);
  if (!token) throw new ConfigError("KUBEWIRE_BOOTSTRAP_TOKEN", "required: the token the nodes join with");
  const natsServers = (env.KUBEWIRE_NATS_SERVERS ?? "nats").split(",").map((s) => s.trim());
  // Service names (the certificate's DNS names); JetStream replicates a stream at most 5 times.
  if (natsServers.length > 5 || !natsServers.every(isDns1123Label) || new Set(natsServers).size !== natsServers.length) {
    throw new ConfigError("KUBEWIRE_NATS_SERVERS", `want 1 to 5 distinct DNS-1123 labels, comma separated, got ${JSON.stringify(env.KUBEWIRE_NATS_SERVERS)}`);
  }
  return { logLevel: env.KUBEWIRE_LOG_LEVEL ?? "info", bootstrapToken: token, natsServers };
}

export function loadControlPlaneConfig(env: Env = process.env): ControlPlaneConfig {
  const address = env.KUBEWIRE_API_ADDRESS ?? "127.0.0.1:6443";
  const m = /^([^:]+):(\d{1,5})$/.exec(address);
  if (!m || Number(m[2]) > 65535) throw new ConfigError("KUBEWIRE_API_ADDRESS", `want host:port, got ${JSON.stringify(address)}`);
  const apiToken = env.KUBEWIRE_API_TOKEN;
  if (!apiToken || !/^[A-Za-z0-9._~+/=-]{16,}$/.test(apiToken)) {
    throw new ConfigError("KUBEWIRE_API_TOKEN", "required: at least 16 characters of [A-Za-z0-9._~+/=-]");
  }
  if (!!env.KUBEWIRE_API_TLS_CERT !== !!env.KUBEWIRE_API_TLS_KEY) {
    throw new ConfigError(env.KUBEWIRE_API_TLS_CERT ? "KUBEWIRE_API_TLS_KEY" : "KUBEWIRE_API_TLS_CERT", "set both KUBEWIRE_API_TLS_CERT and KUBEWIRE_API_TLS_KEY, or neither");
  }
  return {
    ...loadClusterConfig(env),
    ...(env.KUBEWIRE_NATS_ISSUER ? { natsIssuer: env.KUBEWIRE_NATS_ISSUER } : {}),
    ...bootstrapToken(env),
    natsReplicas: int(env, "KUBEWIRE_NATS_REPLICAS", 1, 1, 5),
    bootstrapTokenTtlMs: goDuration(env, "KUBEWIRE_BOOTSTRAP_TOKEN_TTL", 24 * 3600_000),
    ...(env.KUBEWIRE_API_TLS_CERT ? { apiTlsCert: env.KUBEWIRE_API_TLS_CERT, apiTlsKey: env.KUBEWIRE_API_TLS_KEY } : {}),
    apiHost: m[1]!,
    apiPort: Number(m[2]),
    apiToken,
    nodeGraceSeconds: int(env, "KUBEWIRE_NODE_GRACE_SECONDS", 10, 1, 3600),
    defaultTolerationSeconds: int(env, "KUBEWIRE_DEFAULT_TOLERATION_SECONDS", 20, 0, 86400),
    eventTtlSeconds: int(env, "KUBEWIRE_EVENT_TTL_SECONDS", 3600, 1, 365 * 86400),
    tombstoneTtlSeconds: int(env, "KUBEWIRE_TOMBSTONE_TTL_SECONDS", 300, 0, 86400),
    housekeepingSeconds: int(env, "KUBEWIRE_HOUSEKEEPING_SECONDS", 60, 1, 3600),
    cronMinuteSeconds: int(env, "KUBEWIRE_CRON_MINUTE_SECONDS", 60, 1, 3600),
  };
}
