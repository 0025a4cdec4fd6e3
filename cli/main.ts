/**
 * kubewire: bring a cluster up, make pods, send traffic, trace and capture it.
 * Every failure is one line on stderr and a non-zero exit.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { unpack } from "msgpackr";
import type { NatsConnection } from "nats";
import { loadClusterConfig, loadNodeAgentConfig } from "../cluster/config.ts";
import { isDns1123Label, parseDuration } from "../cluster/syntax.ts";
import { KubeApiError, KubeClient, paths, renderKubeconfig, type KubeObjectLike } from "../cluster/kube-client.ts";
import { nodeIsReady, nodeRecordFrom } from "../cluster/kube-objects.ts";
import { generateServingCert } from "../cluster/tls.ts";
import { RpcError, connectNats, request } from "../cluster/rpc.ts";
import {
  REPLY_SEQ,
  Subjects,
  type CaptureRequest,
  type CapturedFrame,
  type ContainerPort,
  type ExecResult,
  type FaultRequest,
  type FaultSpecRecord,
  type NodeRecord,
  type NodeStatus,
  OBSERVE_REPLY_MAX,
  type ObserveRequest,
  type ObservedFlow,
  type TraceHop,
  type TraceRequest,
} from "../cluster/types.ts";
import { pcapGlobalHeader, pcapRecord } from "../overlay/pcap.ts";
import { formatExplain } from "../node-agent/policy/engine.ts";
import { observeNodes, policyEngineOf } from "./cluster-views.ts";
import { PROBE_USAGE, probe, probePreflight } from "./probe.ts";
import { load, loadPreflight } from "./load.ts";
import { chaos } from "./chaos.ts";
import { JoinError, joinCluster } from "./join.ts";
import { COMPOSE_DEFAULTS, chooseProject, composeCliMaterial, kubewireProjects, servedCertificate } from "./compose.ts";
import { chaosRun, loadDriver } from "./chaos-run.ts";
import { parseIpv4Addr } from "../overlay/wire/index.ts";
import { freePort, isAlive, startControlPlane, homeServerFirst, startNatsServers, startNodeAgent, stopPid, upEnvironment, type LaunchSpec, type ManagedProcess } from "./processes.ts";
import { cliNatsAuth, readState, stateDir, writeState, type ClusterState } from "./state.ts";
import { createClusterSecurity, envFor } from "../cluster/security.ts";
import { parseCredsText } from "../cluster/nats-auth.ts";

class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

const USAGE = `usage: kubewire <command> [flags]

  up --nodes N [--detach] [--cluster-cidr CIDR] [--proxy-mode iptables|ipvs|nftables]
     [--ipvs-scheduler rr|wrr|lc|wlc|sh|dh|sed|nq] [--lb-cidr CIDR] [--dns-port P] [--nats-servers 1|3|5]
                                     start nats-server (3: a NATS cluster, the store replicated 3 times),
                                     the control plane and N node-agents, each with its own NATS identity;
                                     --lb-cidr is the LoadBalancer address pool (127.0.2.0/24),
                                     --dns-port the cluster DNS port on each node's address (1053)
  join --nats URL --token T --ca-cert-hash sha256:H --name NODE [--host-address ADDR] [--detach]
                                     start a node-agent here that joins a cluster running elsewhere
                                     (kubewire up prints the line); --state-dir keeps it apart
  down                               stop every process of the cluster
  attach --compose [-p PROJECT] [--api URL] [--nats URL] [--token T]
                                     use a cluster docker compose runs (its ports on 127.0.0.1)
  info [-o json]                     where the cluster's API, DNS and NATS are
  observe [-n NS] [--pod P] [--verdict FORWARDED|DROPPED] [--reason R] [--port P] [--type drop|to-endpoint|from-endpoint]
          [--since 5m | --last N] [-f] [-o json]
                                     flow records of every node (pods' traffic and every drop, with its reason)
  chaos kill|pause|resume|restart NODE|nats|nats-N|control-plane
                                     process faults: SIGKILL, SIGSTOP, SIGCONT, or stop and start again as up did
  chaos check [--wait D] [-o json]   the invariants: no address held twice, every node converged
  chaos run SCENARIO.yaml [-o json]  timed process and network faults during a load, then the invariants
  policy explain FROM TO [--port P[/PROTO]]
                                     which policies select each side, which rule decides, the verdict
                                     (FROM, TO: NS/POD, POD or IP); exit 1 when denied
  get nodes|pods                     list nodes or pods
  run POD [--node NODE] [--port P/udp]
                                     create a pod (on NODE, or where the scheduler puts it)
  delete pod POD | delete node NODE  remove a pod or a node
  kubeconfig [--path]                print the kubeconfig of the running cluster (or its path)
  exec POD -- CMD [ARGS...]          run an emulated tool in a pod (ping, traceroute, curl, wget, nc, iperf, ip, hostname)
  exec --node NODE -- CMD [ARGS...]  run a tool in a node's root netns (also conntrack -L)
  fault --node NODE [--pod POD] [--loss P] [--duplicate P] [--reorder P] [--corrupt P] [--delay MS] [--jitter MS] [--ingress]
                                     impair the node's overlay link (or a pod's veth); no impairment flags clears it
  trace POD IP|NAME [--tcp P | --udp P [--query NAME]]
                                     send one probe (ICMP echo, TCP SYN or UDP; to UDP 53 a DNS
                                     query) and print every hop it met; a NAME is resolved in the pod
  capture --node NODE --dev DEV -w FILE [--count N | --seconds S]
                                     capture a device of a node to a pcap file
  load TARGET [--scenario http|tcp-rr|tcp-stream|udp-rr] [--rate R] [--connections N] [--duration 10s] [--threshold EXPR]... [-o json]
                                     load from pods on every node (or the host, nodeport/NAME); see kubewire load --help

${PROBE_USAGE.replace(/^usage: kubewire /, "  ")}

global flags: --state-dir DIR (default ~/.kubewire, or $KUBEWIRE_STATE_DIR), -n/--namespace NS`;

function parse<T extends ParseArgsConfig["options"]>(args: string[], options: T, positionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, "state-dir": { type: "string" }, namespace: { type: "string", short: "n" } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  if (parsed.positionals.length > positionals) throw new CliError(`unexpected argument "${parsed.positionals[positionals]}"`, 2);
  return parsed;
}

function clusterState(dir: string | undefined): ClusterState {
  const state = readState(stateDir(dir));
  if (!state) throw new CliError(`no cluster running (no ${join(stateDir(dir), "cluster.json")}); start one with: kubewire up --nodes 3`);
  if (state.joined) throw new CliError(`${stateDir(dir)} holds node ${state.joined.node}, joined to a cluster that runs elsewhere: use that cluster's state dir (kubewire down --state-dir ${stateDir(dir)} stops the node)`);
  return state;
}

async function withCluster<T>(dir: string | undefined, fn: (nc: NatsConnection, kube: KubeClient, state: ClusterState) => Promise<T>): Promise<T> {
  const state = clusterState(dir);
  const nc = await connectNats(state.natsUrl, "kubewire-cli", cliNatsAuth(state)).catch((err: Error) => {
    throw new CliError(`cannot reach the cluster's NATS at ${state.natsUrl}: ${err.message}`);
  });
  try {
    return await fn(nc, new KubeClient(state.apiUrl, state.token, state.ca), state);
  } catch (err) {
    if (err instanceof KubeApiError) throw new CliError(err.message);
    if ((err as { cause?: { code?: string } })?.cause?.code === "ECONNREFUSED") throw new CliError(`cannot reach the Kubernetes API at ${state.apiUrl}`);
    throw err;
  } finally {
    await nc.close();
  }
}

interface PodView {
  namespace: string;
  name: string;
  nodeName: string;
  podIp: string;
  phase: string;
}

async function findPod(kube: KubeClient, namespace: string, name: string): Promise<PodView> {
  const pod = await kube.get(paths.pod(namespace, name)).catch((err: unknown) => {
    if (err instanceof KubeApiError && err.code === 404) throw new CliError(`pod "${name}" not found in namespace "${namespace}"`);
    throw err;
  });
  const view = podView(pod);
  if (!view.nodeName) throw new CliError(`pod "${name}" is not scheduled to a node yet (${view.phase})`);
  return view;
}

function podView(pod: KubeObjectLike): PodView {
  return {
    namespace: pod.metadata.namespace ?? "default",
    name: pod.metadata.name ?? "",
    nodeName: pod.spec?.nodeName ?? "",
    podIp: pod.status?.podIP ?? "",
    phase: pod.metadata.deletionTimestamp ? "Terminating" : (pod.status?.phase ?? "Pending"),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("   ").trimEnd()).join("\n");
}

async function up(args: string[]): Promise<void> {
  const { values } = parse(
    args,
    {
      nodes: { type: "string", default: "3" },
      detach: { type: "boolean", default: false },
      "nats-servers": { type: "string", default: "1" },
      "cluster-cidr": { type: "string" },
      "proxy-mode": { type: "string" },
      "ipvs-scheduler": { type: "string" },
      "lb-cidr": { type: "string" },
      "dns-port": { type: "string" },
    },
    0,
  );
  const count = Number(values.nodes);
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new CliError(`--nodes must be an integer from 1 to 64, got "${values.nodes}"`, 2);
  // JetStream replicates over an odd number of servers (a Raft majority survives one loss from 3).
  const natsServers = Number(values["nats-servers"]);
  if (![1, 3, 5].includes(natsServers)) throw new CliError(`--nats-servers must be 1, 3 or 5, got "${values["nats-servers"]}"`, 2);
  // Every process gets the same cluster-wide settings; the loader they run checks them first.
  let env: Record<string, string>;
  try {
    env = upEnvironment({ "cluster-cidr": values["cluster-cidr"], "proxy-mode": values["proxy-mode"], "ipvs-scheduler": values["ipvs-scheduler"], "lb-cidr": values["lb-cidr"], "dns-port": values["dns-port"] });
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  const dir = stateDir(values["state-dir"]);
  const existing = readState(dir);
  if (existing?.processes.some((p) => isAlive(p.pid))) throw new CliError(`a cluster is already running from ${dir}; stop it with: kubewire down`);
  rmSync(dir, { recursive: true, force: true });
  const logDir = join(dir, "logs");
  const opts = { logDir, detached: values.detach, env };
  const started: ManagedProcess[] = [];
  const launches = new Map<string, LaunchSpec>();
  // The state file's PIDs too: `kubewire chaos restart` replaces a process (and its PID) there.
  const stopAll = async () => {
    const current = readState(dir)?.processes.map((p) => p.pid) ?? [];
    for (const pid of new Set([...current, ...started.map((p) => p.pid)].reverse())) await stopPid(pid);
  };
  try {
    // Every NATS link is TLS and every process has its own identity (cli/security.ts).
    const security = await createClusterSecurity(dir);
    const servers = await startNatsServers({ ...opts, dir, count: natsServers, security: security.server });
    for (const s of servers) {
      started.push(s);
      launches.set(s.name, { role: "nats", port: s.port, dataDir: s.dataDir, env, configFile: s.configFile });
    }
    const nats = { url: servers.map((s) => s.url).join(","), pids: servers.map((s) => s.pid).join(", ") };
    const token = randomBytes(24).toString("base64url");
    const apiPort = await freePort();
    const apiUrl = `https://127.0.0.1:${apiPort}`;
    const tls = await generateServingCert();
    writeFileSync(join(dir, "apiserver.crt"), tls.cert);
    writeFileSync(join(dir, "apiserver.key"), tls.key, { mode: 0o600 });
    const cpEnv = { ...env, ...envFor(security, { controlPlane: true }), KUBEWIRE_NATS_REPLICAS: String(natsServers), KUBEWIRE_API_ADDRESS: `127.0.0.1:${apiPort}`, KUBEWIRE_API_TOKEN: token, KUBEWIRE_API_TLS_CERT: join(dir, "apiserver.crt"), KUBEWIRE_API_TLS_KEY: join(dir, "apiserver.key") };
    started.push(startControlPlane(nats.url, { ...opts, env: cpEnv }));
    launches.set("control-plane", { role: "control-plane", natsUrl: nats.url, env: cpEnv });
    writeFileSync(join(dir, "kubeconfig"), renderKubeconfig(apiUrl, token, tls.cert), { mode: 0o600 });
    const names = Array.from({ length: count }, (_, i) => `node-${i + 1}`);
    names.forEach((name, i) => {
      const nodeEnv = { ...env, ...envFor(security, { node: name, stateDir: dir }) };
      // Each node-agent tries its home server first: the nodes spread over the NATS servers.
      const natsUrl = homeServerFirst(nats.url, i + 1);
      started.push(startNodeAgent(natsUrl, name, i + 1, { ...opts, env: nodeEnv }));
      launches.set(name, { role: "node", natsUrl, index: i + 1, env: nodeEnv });
    });
    const dnsPort = loadNodeAgentConfig({ ...process.env, ...env, KUBEWIRE_NODE_NAME: "node-1" }, () => "").dnsPort;
    const state: ClusterState = { natsUrl: nats.url, natsCa: security.caFile, natsCreds: security.cliCreds, apiUrl, token, ca: tls.cert, stateDir: dir, dnsPort, processes: started.map(({ name, pid, logFile }) => ({ name, pid, logFile, launch: launches.get(name) })) };
    writeState(state);
    const nc = await connectNats(nats.url, "kubewire-cli", cliNatsAuth(state));
    try {
      const nodes = await Promise.all(names.map((name) => waitForNode(nc, name, started)));
      const cluster = loadClusterConfig(env);
      console.log(`kubewire cluster up: ${count} node(s), NATS at ${nats.url}${natsServers > 1 ? ` (${natsServers} servers, the store replicated ${natsServers} times)` : ""}; proxy mode ${cluster.proxyMode}, LoadBalancer pool ${cluster.lbCidr}`);
      console.log(table([["NODE", "POD CIDR", "INTERNAL IP", "VTEP MAC", "PID"], ...nodes.map((n) => [n.name, n.podCidr, n.internalIp, n.vtepMac, String(started.find((p) => p.name === n.name)!.pid)])]));
      console.log(`state and logs: ${dir}  (nats ${nats.pids}, control-plane ${started[servers.length]!.pid}); Kubernetes API at ${apiUrl}`);
      const kube = new KubeClient(apiUrl, token, tls.cert);
      let dns = await waitForClusterDns(kube, 60_000);
      if (dns && (await spreadClusterDns(kube, nodes.length))) {
        console.log("coredns: both replicas had landed on the first node to register; restarted them (kubectl rollout restart) so they spread over the nodes");
        dns = await waitForClusterDns(kube, 60_000);
      }
      const dnsAt = `${nodes[0]!.hostAddress}`;
      console.log(
        dns
          ? `cluster DNS (coredns behind kube-dns ${dns}) on every node's address, port ${dnsPort}: dig @${dnsAt} -p ${dnsPort} kubernetes.default.svc.${cluster.clusterDomain} +short`
          : `cluster DNS: the coredns pods are not ready yet (kubectl get pods -n kube-system); then: dig @${dnsAt} -p ${dnsPort} kubernetes.default.svc.${cluster.clusterDomain} +short`,
      );
      console.log(`export KUBECONFIG=${join(dir, "kubeconfig")}`);
      console.log(`join a node from elsewhere: kubewire join --nats ${nats.url} --token ${security.token} --ca-cert-hash ${security.caHash} --name NODE --host-address ADDRESS`);
    } finally {
      await nc.close();
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  if (values.detach) {
    console.log("detached; stop with: kubewire down");
    return;
  }
  console.log("running in the foreground; Ctrl-C stops the cluster");
  await new Promise<void>((resolve) => {
    const onSignal = () => resolve();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  });
  await stopAll();
  rmSync(join(dir, "cluster.json"), { force: true });
  console.log("cluster stopped");
}

/**
 * Waits for the kube-dns Service to have a ready endpoint (the coredns pods Running); its
 * ClusterIP then, or undefined after `timeoutMs` (the cluster works; DNS comes a little later).
 */
async function waitForClusterDns(kube: KubeClient, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const svc = await kube.get(`/api/v1/namespaces/kube-system/services/kube-dns`);
      const slices = await kube.list(`/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dkube-dns`);
      const ready = slices.some((s) => ((s as { endpoints?: Array<{ conditions?: { ready?: boolean } }> }).endpoints ?? []).some((e) => e.conditions?.ready !== false));
      if (ready) return svc.spec?.clusterIP;
    } catch (err) {
      if (!(err instanceof KubeApiError)) throw err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return undefined;
}

interface CoreDnsPod {
  metadata: { deletionTimestamp?: string };
  spec?: { nodeName?: string };
  status?: { phase?: string };
}

const COREDNS_PODS = "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns";

/**
 * The coredns Deployment is created before any node registers, so its replicas all land on the
 * first node that becomes Ready (as on a kubeadm cluster before workers join): one node failure
 * would take DNS down. What an operator does then is `kubectl rollout restart`; with every node
 * up, the preferred anti-affinity spreads them. True when a restart was done and has spread them.
 */
async function spreadClusterDns(kube: KubeClient, nodeCount: number): Promise<boolean> {
  if (nodeCount < 2) return false;
  const running = (pods: CoreDnsPod[]) => pods.filter((p) => !p.metadata.deletionTimestamp && p.status?.phase === "Running");
  const before = running(await kube.list<CoreDnsPod>(COREDNS_PODS));
  if (before.length < 2 || new Set(before.map((p) => p.spec?.nodeName)).size > 1) return false;
  await kube.patch(
    "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
    { spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": new Date().toISOString() } } } } },
    "application/strategic-merge-patch+json",
  );
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const all = await kube.list<CoreDnsPod>(COREDNS_PODS);
    const live = running(all);
    if (all.length === live.length && live.length >= 2 && new Set(live.map((p) => p.spec?.nodeName)).size > 1) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

const PROTOCOL_NAMES: Record<number, string> = { 1: "ICMP", 6: "TCP", 17: "UDP", 132: "SCTP" };
const TCP_FLAG_NAMES: Array<[number, string]> = [[0x02, "SYN"], [0x10, "ACK"], [0x01, "FIN"], [0x04, "RST"], [0x08, "PSH"], [0x20, "URG"]];

/** "5m", "30s", "2h" -> milliseconds. */
function duration(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new CliError(`--since: want a duration like 30s, 5m or 1h, got "${text}"`, 2);
  return ms;
}

/** One flow as `hubble observe` prints it (compact). */
function formatFlow(f: ObservedFlow): string {
  const d = new Date(f.time);
  const month = d.toLocaleString("en-US", { month: "short", timeZone: "UTC" });
  const time = `${month} ${String(d.getUTCDate()).padStart(2, "0")} ${d.toISOString().slice(11, 23)}`;
  const end = (pod: string | undefined, ip: string, port: number) => `${pod ?? ip}${f.proto === 6 || f.proto === 17 || f.proto === 132 ? `:${port}` : ""}`;
  const flags = f.proto === 6 ? ` (TCP Flags: ${TCP_FLAG_NAMES.filter(([b]) => (f.tcpFlags & b) !== 0).map(([, n]) => n).join(", ") || "none"})` : ` (${PROTOCOL_NAMES[f.proto] ?? `proto ${f.proto}`})`;
  // The node's detail often starts with the reason already ("policy_denied: denied (ingress) ...").
  const detail = f.detail && f.reason && f.detail.startsWith(`${f.reason}: `) ? f.detail.slice(f.reason.length + 2) : f.detail;
  const why = f.verdict === "DROPPED" ? ` ${f.reason}${detail ? `: ${detail}` : ""}` : "";
  // A reply is printed client first, as hubble does: "client <- server".
  const left = f.isReply ? end(f.dstPod, f.dst, f.dport) : end(f.srcPod, f.src, f.sport);
  const right = f.isReply ? end(f.srcPod, f.src, f.sport) : end(f.dstPod, f.dst, f.dport);
  return `${time} [${f.node}] ${left} ${f.isReply ? "<-" : "->"} ${right} ${f.observation} ${f.verdict}${flags}${why}`;
}

/** `kubewire observe`: the nodes' flow records, merged by time, like `hubble observe`. */
async function observe(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      pod: { type: "string" },
      verdict: { type: "string" },
      reason: { type: "string" },
      port: { type: "string" },
      type: { type: "string", multiple: true },
      since: { type: "string" },
      last: { type: "string" },
      follow: { type: "boolean", short: "f", default: false },
      output: { type: "string", short: "o" },
    },
    0,
  );
  if (values.verdict !== undefined && values.verdict !== "DROPPED" && values.verdict !== "FORWARDED") throw new CliError(`--verdict: FORWARDED or DROPPED, got "${values.verdict}"`, 2);
  if (values.output !== undefined && values.output !== "json") throw new CliError(`--output: only json is supported, got "${values.output}"`, 2);
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new CliError(`--port: want 0-65535, got "${values.port}"`, 2);
  // hubble observe --type: drop, trace:to-endpoint, trace:from-endpoint (the "trace:" optional).
  const types = values.type?.flatMap((t) => t.split(",")).map((t) => t.trim().replace(/^trace:/, ""));
  const badType = types?.find((t) => t !== "drop" && t !== "to-endpoint" && t !== "from-endpoint");
  if (badType !== undefined) throw new CliError(`--type: drop, to-endpoint or from-endpoint, got "${badType}"`, 2);
  const last = values.last === undefined ? 20 : Number(values.last);
  if (!(Number.isInteger(last) && last > 0)) throw new CliError(`--last: want a positive integer, got "${values.last}"`, 2);
  let since = values.since !== undefined ? Date.now() - duration(values.since) : undefined;
  return withCluster(values["state-dir"], async (nc, kube) => {
    const nodes = (await kube.list(paths.nodes())).map((n) => n.metadata.name ?? "").filter((n) => n !== "");
    const printed = new Set<string>();
    for (;;) {
      const req: ObserveRequest = {
        ...(since !== undefined ? { since } : {}),
        ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
        ...(values.pod !== undefined ? { pod: values.pod } : {}),
        ...(values.verdict !== undefined ? { verdict: values.verdict as "DROPPED" | "FORWARDED" } : {}),
        ...(values.reason !== undefined ? { reason: values.reason } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(types !== undefined ? { types } : {}),
        limit: values.since !== undefined || values.follow ? OBSERVE_REPLY_MAX : last,
      };
      const answers = await observeNodes(nc, nodes, req, (n, message) => console.error(`(${n}: no flow records: ${message})`));
      for (const [i, a] of answers.entries()) if (a?.truncated) console.error(`(${nodes[i]}: only the newest ${OBSERVE_REPLY_MAX} matching flow records; narrow with --since, --pod, --port or --verdict)`);
      let flows = answers.flatMap((a) => a?.flows ?? []).sort((a, b) => a.time - b.time);
      if (!values.follow && values.since === undefined) flows = flows.slice(-last);
      for (const f of flows) {
        const key = `${f.node} ${f.time} ${f.src}:${f.sport} ${f.dst}:${f.dport} ${f.observation} ${f.tcpFlags}`;
        if (printed.has(key)) continue;
        printed.add(key);
        console.log(values.output === "json" ? JSON.stringify(f) : formatFlow(f));
        since = Math.max(since ?? 0, f.time);
      }
      if (!values.follow) {
        const off = answers.filter((a) => a && !a.enabled).length;
        if (off > 0) console.error(`(${off} node(s) keep no flow records: KUBEWIRE_FLOW_BUFFER=0)`);
        return 0;
      }
      if (printed.size > 100_000) printed.clear();
      await new Promise((r) => setTimeout(r, 500));
    }
  });
}

/**
 * `kubewire policy explain FROM TO [--port P/PROTO]`: the verdict for a connection, computed
 * from the cluster's current objects by the same engine every node runs (so identical to what
 * the datapath does), with the policies that select each side in each tier and the rule that
 * decided. FROM and TO: NS/POD, POD (in -n NS or default) or an IP address.
 */
async function policy(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { port: { type: "string" }, output: { type: "string", short: "o" } }, 3);
  const [verb, from, to] = positionals;
  if (verb !== "explain" || !from || !to) throw new CliError("policy: usage: kubewire policy explain FROM TO [--port PORT[/TCP|UDP|SCTP]]   (FROM, TO: NS/POD, POD or an IP)", 2);
  const m = values.port === undefined ? undefined : /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(values.port);
  if (values.port !== undefined && !m) throw new CliError(`--port: want PORT[/TCP|UDP|SCTP], got "${values.port}"`, 2);
  const ns = values.namespace;
  const qualify = (e: string) => (parseIpv4Addr(e) !== undefined || e.includes("/") || ns === undefined ? e : `${ns}/${e}`);
  return withCluster(values["state-dir"], async (_nc, kube) => {
    const engine = await policyEngineOf(kube);
    const r = engine.explain(qualify(from), qualify(to), m ? { port: Number(m[1]), protocol: (m[2] ?? "TCP").toUpperCase() } : {});
    if (r.kind === "error") throw new CliError(`policy explain: ${r.message}`);
    console.log(values.output === "json" ? JSON.stringify(r.explanation, (k, v) => (k === "verdict" ? { allowed: v.allowed, describe: v.describe() } : v), 2) : formatExplain(r.explanation));
    return r.explanation.verdict.allowed ? 0 : 1;
  });
}

/**
 * `kubewire attach --compose [-p PROJECT] [--api URL] [--nats URL] [--token T] [--dns-port P]`:
 * the state a `kubewire up` would write, for a cluster docker compose runs, so every command
 * works on it (process faults act on its containers), with the CLI's NATS identity and the CA
 * that its pki service made.
 */
async function attach(args: string[]): Promise<void> {
  const { values } = parse(args, { compose: { type: "boolean", default: false }, project: { type: "string", short: "p" }, api: { type: "string" }, nats: { type: "string" }, token: { type: "string" }, "dns-port": { type: "string" } }, 0);
  if (!values.compose) throw new CliError("attach: usage: kubewire attach --compose [-p PROJECT] [--api URL] [--nats URL] [--token TOKEN] [--dns-port P]", 2);
  const apiUrl = values.api ?? COMPOSE_DEFAULTS.apiUrl;
  const api = /^https:\/\/([^/:]+):(\d+)\/?$/.exec(apiUrl);
  if (!api) throw new CliError(`--api: want https://HOST:PORT, got "${apiUrl}"`, 2);
  const dnsPort = Number(values["dns-port"] ?? COMPOSE_DEFAULTS.dnsPort);
  if (!(Number.isInteger(dnsPort) && dnsPort >= 1 && dnsPort <= 65535)) throw new CliError(`--dns-port: want 1-65535, got "${values["dns-port"]}"`, 2);
  const chosen = chooseProject(values.project, await kubewireProjects().catch((err: Error) => {
    throw new CliError(err.message);
  }));
  if (chosen.kind === "invalid") throw new CliError(chosen.message);
  const dir = stateDir(values["state-dir"]);
  const existing = readState(dir);
  if (existing?.processes.some((p) => isAlive(p.pid))) throw new CliError(`a cluster started by kubewire up runs from ${dir}; attach with another --state-dir`);
  const ca = await servedCertificate(api[1]!, Number(api[2])).catch((err: Error) => {
    throw new CliError(`cannot reach the API at ${apiUrl}: ${err.message}`);
  });
  const token = values.token ?? COMPOSE_DEFAULTS.token;
  const natsUrl = values.nats ?? COMPOSE_DEFAULTS.natsUrl;
  const kube = new KubeClient(apiUrl, token, ca);
  const nodes = await kube.list(paths.nodes()).catch((err: Error) => {
    throw new CliError(`the API at ${apiUrl} refused the token or did not answer: ${err.message}`);
  });
  // NATS takes only identities: the CLI's, and the CA to verify the server with, from the project.
  const material = await composeCliMaterial({ project: chosen.project }).catch((err: Error) => {
    throw new CliError(`cannot get the CLI's NATS credentials: ${err.message}`);
  });
  if (!parseCredsText(material.creds)) throw new CliError(`the pki container of ${chosen.project} holds no NATS credentials for the CLI`);
  const pkiDir = join(dir, "compose-pki");
  mkdirSync(pkiDir, { recursive: true, mode: 0o700 });
  const natsCa = join(pkiDir, "ca.pem");
  const natsCreds = join(pkiDir, "cli.creds");
  writeFileSync(natsCa, material.ca);
  writeFileSync(natsCreds, material.creds, { mode: 0o600 });
  chmodSync(natsCreds, 0o600);
  const state: ClusterState = { natsUrl, natsCa, natsCreds, apiUrl, token, ca, stateDir: dir, dnsPort, processes: [], compose: { project: chosen.project } };
  const nc = await connectNats(natsUrl, "kubewire-cli", cliNatsAuth(state)).catch((err: Error) => {
    throw new CliError(`cannot reach NATS at ${natsUrl}: ${err.message}`);
  });
  await nc.close();
  writeState(state);
  writeFileSync(join(dir, "kubeconfig"), renderKubeconfig(apiUrl, token, ca), { mode: 0o600 });
  console.log(`attached to compose project ${chosen.project}: ${nodes.length} node(s), API ${apiUrl}, NATS ${natsUrl} (state in ${dir})`);
  console.log(`export KUBECONFIG=${join(dir, "kubeconfig")}`);
}

/** `kubewire info [-o json]`: the addresses a client needs. */
async function info(args: string[]): Promise<void> {
  const { values } = parse(args, { output: { type: "string", short: "o" } }, 0);
  if (values.output !== undefined && values.output !== "json") throw new CliError(`--output: only json is supported, got "${values.output}"`, 2);
  const state = clusterState(values["state-dir"]);
  const port = state.dnsPort ?? 1053;
  const nodes = await withCluster(values["state-dir"], async (_nc, kube) =>
    (await kube.list(paths.nodes())).map((n) => nodeRecordFrom(n as Parameters<typeof nodeRecordFrom>[0])).filter((r): r is NodeRecord => !!r),
  );
  nodes.sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
  const dnsList = nodes.map((n) => `${n.hostAddress}:${port}`);
  const out = {
    api: state.apiUrl,
    dns: dnsList[0] ?? "",
    nats: state.natsUrl,
    ...(state.natsCa ? { natsCa: state.natsCa } : {}),
    ...(state.natsCreds ? { natsCreds: state.natsCreds } : {}),
    kubeconfig: join(state.stateDir, "kubeconfig"),
    nodes: nodes.map((n) => ({ name: n.name, hostAddress: n.hostAddress, dns: `${n.hostAddress}:${port}` })),
  };
  if (values.output === "json") {
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  console.log(`Kubernetes API:  ${out.api}`);
  console.log(`cluster DNS:     ${dnsList.join(", ") || "<no nodes>"}   (dig @${nodes[0]?.hostAddress ?? "ADDR"} -p ${port} NAME)`);
  console.log(`NATS:            ${out.nats}${state.natsCreds ? `   (TLS with the CA ${state.natsCa}; the CLI's credentials ${state.natsCreds})` : ""}`);
  console.log(`kubeconfig:      ${out.kubeconfig}`);
}

async function waitForNode(nc: NatsConnection, name: string, started: ManagedProcess[], timeoutMs = 30_000): Promise<NodeRecord> {
  const deadline = Date.now() + timeoutMs;
  const proc = started.find((p) => p.name === name)!;
  while (Date.now() < deadline) {
    if (!isAlive(proc.pid)) throw new CliError(`${name} exited during start-up; see ${proc.logFile}`);
    try {
      return (await request<NodeStatus>(nc, Subjects.node(name, "status"), {}, 1000)).node;
    } catch (err) {
      if (!(err instanceof RpcError)) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new CliError(`${name} not ready after ${timeoutMs / 1000} s; see ${proc.logFile}`);
}

async function joinCommand(args: string[]): Promise<void> {
  const { values } = parse(
    args,
    {
      nats: { type: "string" },
      token: { type: "string" },
      "ca-cert-hash": { type: "string" },
      name: { type: "string" },
      "host-address": { type: "string" },
      detach: { type: "boolean", default: false },
      "cluster-cidr": { type: "string" },
      "proxy-mode": { type: "string" },
      "ipvs-scheduler": { type: "string" },
      "lb-cidr": { type: "string" },
      "dns-port": { type: "string" },
    },
    0,
  );
  let env: Record<string, string>;
  try {
    env = upEnvironment({ "cluster-cidr": values["cluster-cidr"], "proxy-mode": values["proxy-mode"], "ipvs-scheduler": values["ipvs-scheduler"], "lb-cidr": values["lb-cidr"], "dns-port": values["dns-port"] });
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  const o = { nats: values.nats, token: values.token, caCertHash: values["ca-cert-hash"], name: values.name, hostAddress: values["host-address"], detach: values.detach, env, dir: stateDir(values["state-dir"]) };
  const joined = await joinCluster(o, (l) => console.log(l)).catch((err: unknown) => {
    if (err instanceof JoinError) throw new CliError(err.message, err.exitCode);
    throw err;
  });
  if (values.detach) return;
  console.log("running in the foreground; Ctrl-C stops the node");
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await joined.stop();
  console.log("node stopped");
}

async function down(args: string[]): Promise<void> {
  const { values } = parse(args, {}, 0);
  const dir = stateDir(values["state-dir"]);
  const state = readState(dir);
  if (!state) throw new CliError(`no cluster recorded in ${dir}`);
  for (const p of [...state.processes].reverse()) await stopPid(p.pid);
  rmSync(join(dir, "cluster.json"), { force: true });
  console.log(`stopped ${state.processes.length} processes`);
}

async function get(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {}, 1);
  const what = positionals[0];
  await withCluster(values["state-dir"], async (_nc, kube) => {
    if (what === "nodes" || what === "node" || what === "no") {
      const nodes = await kube.list(paths.nodes());
      const rows = nodes.map((n) => {
        const rec = nodeRecordFrom(n as Parameters<typeof nodeRecordFrom>[0]);
        return [n.metadata.name ?? "", nodeIsReady(n as Parameters<typeof nodeIsReady>[0]) ? "Ready" : "NotReady", rec?.podCidr ?? "", rec?.internalIp ?? "", rec?.vtepMac ?? "", rec?.hostAddress ?? ""];
      });
      console.log(table([["NAME", "STATUS", "POD CIDR", "INTERNAL IP", "VTEP MAC", "HOST ADDRESS"], ...rows]));
    } else if (what === "pods" || what === "pod" || what === "po") {
      const pods = (await kube.list(paths.pods(values.namespace))).map(podView);
      console.log(table([["NAMESPACE", "NAME", "STATUS", "IP", "NODE"], ...pods.map((p) => [p.namespace, p.name, p.phase, p.podIp || "<none>", p.nodeName || "<none>"])]));
    } else {
      throw new CliError(`get: unknown resource "${what ?? ""}" (nodes, pods); kubectl does the rest: export KUBECONFIG=$(kubewire kubeconfig --path)`, 2);
    }
  });
}

function parsePort(spec: string): ContainerPort {
  const m = /^(\d+)(?:\/(tcp|udp))?$/i.exec(spec);
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) throw new CliError(`--port: invalid port "${spec}" (want PORT or PORT/udp, 1-65535)`, 2);
  return { containerPort: port, protocol: (m[2] ?? "tcp").toUpperCase() as "TCP" | "UDP" };
}

async function run(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { node: { type: "string" }, port: { type: "string", multiple: true }, image: { type: "string", default: "registry.k8s.io/e2e-test-images/agnhost:2.47" } }, 1);
  const name = positionals[0];
  if (!name) throw new CliError("run: pod name required: kubewire run POD [--node NODE]", 2);
  if (!isDns1123Label(name)) throw new CliError(`run: invalid pod name "${name}": must be a DNS-1123 label (lower-case letters, digits, '-')`, 2);
  const ports = (values.port ?? []).map(parsePort);
  const namespace = values.namespace ?? "default";
  await withCluster(values["state-dir"], async (_nc, kube) => {
    if (values.node) {
      await kube.get(paths.node(values.node)).catch((err: unknown) => {
        if (err instanceof KubeApiError && err.code === 404) throw new CliError(`node "${values.node}" not found`);
        throw err;
      });
    }
    await kube.create(paths.pods(namespace), {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace, labels: { run: name } },
      spec: { ...(values.node ? { nodeName: values.node } : {}), containers: [{ name, image: values.image, ports: ports.map((p) => ({ containerPort: p.containerPort, protocol: p.protocol })) }] },
    });
    // The scheduler binds it and the node-agent plumbs it from its watch; wait for Running.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const pod = podView(await kube.get(paths.pod(namespace, name)));
      if (pod.phase === "Running" && pod.podIp) {
        console.log(`pod/${name} created: IP ${pod.podIp} on ${pod.nodeName}`);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new CliError(`pod/${name} created but not Running within 20 s (see kubectl describe pod ${name})`);
  });
}

async function del(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {}, 2);
  const [kind, name] = positionals;
  if (!name) throw new CliError("delete: usage: kubewire delete pod POD | delete node NODE", 2);
  await withCluster(values["state-dir"], async (_nc, kube) => {
    let path: string;
    if (kind === "pod" || kind === "pods" || kind === "po") path = paths.pod(values.namespace ?? "default", name);
    else if (kind === "node" || kind === "nodes" || kind === "no") path = paths.node(name);
    else throw new CliError(`delete: unknown resource "${kind}" (pod, node)`, 2);
    await kube.delete(path).catch((err: unknown) => {
      if (err instanceof KubeApiError && err.code === 404) throw new CliError(`${kind === "node" || kind === "nodes" || kind === "no" ? "node" : "pod"} "${name}" not found`);
      throw err;
    });
    // Graceful: the object stays (Terminating) until its node-agent has torn it down.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const gone = await kube.get(path).then(() => false, (err: unknown) => err instanceof KubeApiError && err.code === 404);
      if (gone) {
        console.log(`${path.includes("/nodes/") ? "node" : "pod"}/${name} deleted`);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new CliError(`${name} still terminating after 30 s`);
  });
}

async function kubeconfig(args: string[]): Promise<void> {
  const { values } = parse(args, { path: { type: "boolean", default: false } }, 0);
  const state = clusterState(values["state-dir"]);
  if (values.path) console.log(join(state.stateDir, "kubeconfig"));
  else process.stdout.write(renderKubeconfig(state.apiUrl, state.token, state.ca));
}

async function exec(args: string[]): Promise<number> {
  const usage = "exec: usage: kubewire exec POD -- CMD [ARGS...] | kubewire exec --node NODE -- CMD [ARGS...]";
  const dashdash = args.indexOf("--");
  if (dashdash < 0) throw new CliError(usage, 2);
  const { values, positionals } = parse(args.slice(0, dashdash), { node: { type: "string" } }, 1);
  const argv = args.slice(dashdash + 1);
  if (argv.length === 0 || (!positionals[0] && !values.node) || (positionals[0] && values.node)) throw new CliError(usage, 2);
  return withCluster(values["state-dir"], async (nc, kube) => {
    if (values.node) {
      // The node's root netns: what `ssh NODE` then the command would show on a real node.
      const res = await request<ExecResult>(nc, Subjects.node(values.node, "exec"), { namespace: "", argv }, 3_600_000);
      process.stdout.write(res.stdout);
      process.stderr.write(res.stderr);
      return res.exitCode;
    }
    const pod = await findPod(kube, values.namespace ?? "default", positionals[0]!);
    const res = await request<ExecResult>(nc, Subjects.node(pod.nodeName, "exec"), { namespace: pod.namespace, pod: pod.name, argv }, 3_600_000);
    process.stdout.write(res.stdout);
    process.stderr.write(res.stderr);
    return res.exitCode;
  });
}

async function fault(args: string[]): Promise<void> {
  const opts = {
    node: { type: "string" },
    pod: { type: "string" },
    loss: { type: "string" },
    duplicate: { type: "string" },
    reorder: { type: "string" },
    corrupt: { type: "string" },
    delay: { type: "string" },
    jitter: { type: "string" },
    ingress: { type: "boolean", default: false },
  } as const;
  const { values } = parse(args, opts, 0);
  if (!values.node) throw new CliError("fault: usage: kubewire fault --node NODE [--pod POD] [--loss P] ...", 2);
  const num = (name: string, v: string | undefined, max: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || n > max) throw new CliError(`fault: --${name} must be a number in [0, ${max}], got "${v}"`, 2);
    return n;
  };
  const spec: FaultSpecRecord = {};
  const set = (k: keyof FaultSpecRecord, v: number | undefined) => v !== undefined && (spec[k] = v);
  set("loss", num("loss", values.loss, 1));
  set("duplicate", num("duplicate", values.duplicate, 1));
  set("reorder", num("reorder", values.reorder, 1));
  set("corrupt", num("corrupt", values.corrupt, 1));
  set("delayMs", num("delay", values.delay, 60_000));
  set("jitterMs", num("jitter", values.jitter, 60_000));
  const impair = Object.keys(spec).length > 0 ? spec : undefined;
  await withCluster(values["state-dir"], async (nc) => {
    const req: FaultRequest = { pod: values.pod, namespace: values.namespace ?? "default", ...(values.ingress ? { ingress: impair } : { egress: impair }) };
    await request(nc, Subjects.node(values.node!, "fault"), req);
    console.log(impair ? `fault set on ${values.node}${values.pod ? ` pod ${values.pod}` : " overlay"} (${values.ingress ? "ingress" : "egress"}): ${JSON.stringify(impair)}` : `faults cleared on ${values.node}${values.pod ? ` pod ${values.pod}` : " overlay"}`);
    return 0;
  });
}

async function trace(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { timeout: { type: "string", default: "5" }, tcp: { type: "string" }, udp: { type: "string" }, query: { type: "string" } }, 2);
  const [podName, dst] = positionals;
  if (!podName || !dst) throw new CliError("trace: usage: kubewire trace POD IP|NAME [--tcp PORT | --udp PORT [--query NAME]]", 2);
  if (parseIpv4Addr(dst) === undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\.?$/.test(dst)) throw new CliError(`trace: "${dst}" is not an IPv4 address or a host name`, 2);
  if (values.query !== undefined && values.udp !== "53") throw new CliError("trace: --query goes with --udp 53 (a DNS query)", 2);
  if (values.tcp !== undefined && values.udp !== undefined) throw new CliError("trace: give --tcp or --udp, not both", 2);
  const protocol = values.tcp !== undefined ? "tcp" : values.udp !== undefined ? "udp" : "icmp";
  const port = protocol === "icmp" ? undefined : Number(values.tcp ?? values.udp);
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new CliError(`trace: --${protocol} needs a port in 1-65535, got "${values.tcp ?? values.udp}"`, 2);
  return withCluster(values["state-dir"], async (nc, kube) => {
    const pod = await findPod(kube, values.namespace ?? "default", podName);
    const traceId = randomBytes(6).toString("hex");
    const hops: TraceHop[] = [];
    const sub = nc.subscribe(Subjects.trace(traceId, "*"));
    let forwardVerdict: TraceHop | undefined;
    let replyWait: NodeJS.Timeout | undefined;
    const complete = (async () => {
      for await (const m of sub) {
        hops.push(unpack(m.data) as TraceHop);
        hops.sort((a, b) => a.seq - b.seq);
        const last = hops.find((h) => h.verdict && h.seq < REPLY_SEQ);
        // Done when a verdict arrived and no hop before it is missing (nodes publish independently);
        // a TCP or UDP probe's reply is followed too, until its own verdict, or for a second at
        // most (a server may answer nothing: a UDP port, a SYN into its TIME-WAIT).
        const forwardDone = last !== undefined && hops.filter((h) => h.seq <= last.seq).every((h, i) => h.seq === i);
        if (forwardDone && (protocol === "icmp" || last.verdict !== "delivered" || hops.some((h) => h.seq >= REPLY_SEQ && h.verdict))) return last;
        if (forwardDone && forwardVerdict === undefined) {
          forwardVerdict = last;
          replyWait = setTimeout(() => sub.unsubscribe(), 1000);
        }
      }
      return forwardVerdict;
    })();
    await request(nc, Subjects.node(pod.nodeName, "trace"), { namespace: pod.namespace, pod: pod.name, dst, traceId, protocol, ...(port !== undefined ? { port } : {}), ...(values.query !== undefined ? { query: values.query } : {}) } satisfies TraceRequest, 10_000);
    const timer = setTimeout(() => sub.unsubscribe(), Number(values.timeout) * 1000);
    const verdict = await complete;
    clearTimeout(timer);
    clearTimeout(replyWait);
    sub.unsubscribe();
    console.log(`trace ${pod.name} (${pod.podIp}) -> ${dst}${port !== undefined ? `:${port}` : ""}: ${protocol === "tcp" ? "TCP SYN" : protocol === "udp" ? (port === 53 ? `DNS query (A ${values.query ?? "kubernetes.default.svc"})` : "UDP datagram") : "ICMP echo request"}`);
    const shown = verdict ? hops.filter((h) => h.seq <= verdict.seq || h.seq >= REPLY_SEQ) : hops;
    const row = (h: TraceHop, n: number) => [String(n).padStart(2), h.node, h.point, h.detail + (h.verdict ? `  [${h.verdict.toUpperCase()}]` : "")];
    const forward = shown.filter((h) => h.seq < REPLY_SEQ);
    const reply = shown.filter((h) => h.seq >= REPLY_SEQ);
    console.log(table([...forward.map((h) => row(h, h.seq + 1)), ...(reply.length > 0 ? [["", "", "reply", ""], ...reply.map((h, i) => row(h, forward.length + i + 1))] : [])]));
    if (!verdict) {
      console.log(`(incomplete: no verdict within ${values.timeout} s)`);
      return 1;
    }
    return verdict.verdict === "delivered" ? 0 : 1;
  });
}

async function capture(args: string[]): Promise<void> {
  const { values } = parse(args, { node: { type: "string" }, dev: { type: "string" }, write: { type: "string", short: "w" }, count: { type: "string", short: "c" }, seconds: { type: "string" } }, 0);
  if (!values.node || !values.dev || !values.write) throw new CliError("capture: usage: kubewire capture --node NODE --dev DEV -w FILE [--count N | --seconds S]", 2);
  const count = values.count === undefined ? undefined : Number(values.count);
  const seconds = values.seconds === undefined ? (count === undefined ? 10 : 60) : Number(values.seconds);
  if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw new CliError(`--count must be a positive integer, got "${values.count}"`, 2);
  if (!(seconds > 0)) throw new CliError(`--seconds must be positive, got "${values.seconds}"`, 2);
  const file = values.write;
  await withCluster(values["state-dir"], async (nc) => {
    const stream = randomBytes(6).toString("hex");
    const sub = nc.subscribe(Subjects.stream(values.node!, stream));
    writeFileSync(file, pcapGlobalHeader());
    let frames = 0;
    const done = (async () => {
      for await (const m of sub) {
        if (m.data.length === 0) return;
        const f = unpack(m.data) as CapturedFrame;
        appendFileSync(file, pcapRecord(f.timestampMicros, f.frame));
        frames++;
      }
    })();
    await request(nc, Subjects.node(values.node!, "capture"), { dev: values.dev!, stream, count, seconds } satisfies CaptureRequest).catch((err: Error) => {
      sub.unsubscribe();
      rmSync(file, { force: true });
      throw err;
    });
    console.error(`capturing ${values.dev} on ${values.node}`);
    await done;
    sub.unsubscribe();
    console.log(`${frames} frames captured from ${values.node} ${values.dev} to ${file}`);
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "up":
      await up(rest);
      return 0;
    case "join":
      await joinCommand(rest);
      return 0;
    case "down":
      await down(rest);
      return 0;
    case "info":
      await info(rest);
      return 0;
    case "observe":
      return observe(rest);
    case "policy":
      return policy(rest);
    case "probe": {
      const pre = probePreflight(rest);
      return pre.kind === "exit" ? pre.code : withCluster(pre.stateDir, (nc, kube) => probe(rest, { kube, nc }));
    }
    case "load": {
      const pre = loadPreflight(rest);
      return pre.kind === "exit" ? pre.code : withCluster(pre.stateDir, (nc, kube) => load(rest, { kube, nc }));
    }
    case "chaos": {
      // --state-dir is the one global flag chaos takes; the rest is its own grammar.
      const at = rest.indexOf("--state-dir");
      const dir = stateDir(at >= 0 ? rest[at + 1] : undefined);
      if (at >= 0) rest.splice(at, 2);
      if (rest[0] === "run") {
        const [, file, ...more] = rest;
        const json = more.length === 2 && (more[0] === "-o" || more[0] === "--output") && more[1] === "json";
        if (!file || file.startsWith("-") || (more.length > 0 && !json)) throw new CliError("chaos run: usage: kubewire chaos run SCENARIO.yaml [-o json]", 2);
        const io = { stdout: (l: string) => console.log(l), stderr: (l: string) => console.error(l) };
        return withCluster(dir, (nc, kube) => chaosRun(file, json, { kube, nc, stateDir: dir, load: loadDriver(kube, nc, io.stderr), ...io }));
      }
      return chaos(rest, dir, { stdout: (l) => console.log(l), stderr: (l) => console.error(l) });
    }
    case "attach":
      await attach(rest);
      return 0;
    case "get":
      await get(rest);
      return 0;
    case "run":
      await run(rest);
      return 0;
    case "delete":
      await del(rest);
      return 0;
    case "exec":
      return exec(rest);
    case "trace":
      return trace(rest);
    case "fault":
      await fault(rest);
      return 0;
    case "capture":
      await capture(rest);
      return 0;
    case "kubeconfig":
      await kubeconfig(rest);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new CliError(`unknown command "${command}"; run kubewire --help`, 2);
  }
}

// Exit once stdout has been written out: a pipe takes writes asynchronously, and exiting at once
// would cut a long output (kubewire observe -o json | ...) short.
const exitAfterOutput = (code: number) => process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));

main(process.argv.slice(2)).then(
  (code) => exitAfterOutput(code),
  (err: unknown) => {
    console.error(`error: ${(err as Error)?.message ?? String(err)}`);
    exitAfterOutput(err instanceof CliError ? err.exitCode : 1);
  },
);
