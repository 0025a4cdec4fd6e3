/**
 * `kubewire load`: a load generator whose clients run inside pods on every node (or on this host
 * against NodePorts), with a live progress line and a report judged by thresholds.
 *
 * Design notes:
 * - Clients: by default one small client pod per Ready node (agnhost `pause`, bound to the node
 *   by spec.nodeName, labelled kubewire.io/load-run=RUN), created for the run and deleted after,
 *   so "from every node" needs nothing prepared; `--clients SELECTOR` uses existing pods instead
 *   (their node is where they run). `nodeport/NAME` runs its client here, with real sockets to
 *   each node's NodePort on its host address, as a client outside the cluster would.
 * - Each client is the `load` verb of its pod's node (node-agent/load/): it runs its share of the
 *   connections and rate in the pod's netns and streams interval snapshots, then a final one
 *   with its histograms encoded, to this command's inbox, as trace and capture stream theirs.
 * - tcp-rr, tcp-stream and udp-rr need their own server: the same verb starts one in every
 *   target pod (for a Service, every endpoint pod) on the target port for the run's length.
 * - Everything that decides (arguments, thresholds, the shares, the merge, the report, the
 *   progress line) is pure, in load-args.ts and load-report.ts; this file is the I/O around them.
 */
import { randomBytes } from "node:crypto";
import { unpack } from "msgpackr";
import type { NatsConnection } from "nats";
import { cidrContains, mustParseCidr } from "../cluster/addressing.ts";
import { KubeApiError, paths, type KubeClient, type KubeObjectLike } from "../cluster/kube-client.ts";
import { nodeIsReady, nodeRecordFrom, podRecordFrom } from "../cluster/kube-objects.ts";
import { RpcError, request } from "../cluster/rpc.ts";
import { Subjects, type LoadRequest, type LoadSnapshot, type LoadWorkload, type NodeRecord } from "../cluster/types.ts";
import { plan } from "../node-agent/apps/index.ts";
import { startLoadClient, type LoadClient } from "../node-agent/load/worker.ts";
import { parseIpv4Addr } from "../overlay/wire/index.ts";
import { LOAD_USAGE, defaultPort, parseLoadArgs, splitLoad, type LoadOptions } from "./load-args.ts";
import { hostLoadNet } from "./load-host.ts";
import { writers } from "./output.ts";
import { Progress, buildReport, exitCodeOf, formatJson, formatReport, type LoadReport } from "./load-report.ts";

export { LOAD_USAGE };

const INTERVAL_MS = 1000;
const CONNECTIONS_PER_CLIENT = 4;
const CLIENT_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.47";
const POD_START_TIMEOUT_MS = 30_000;
/** Beyond duration + timeout: the NATS round trips, a busy node, the final snapshot's way back. */
const RESULT_MARGIN_MS = 20_000;

export interface LoadContext {
  readonly kube: KubeClient;
  readonly nc: NatsConnection;
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
  /** Whether stderr is a terminal (the progress bar redraws one line); default process.stderr.isTTY. */
  readonly tty?: boolean;
  /** For a caller that times things against the load (`kubewire chaos run`): once every client runs. */
  readonly onStarted?: () => void;
  /** Every snapshot a client sends, as it arrives. */
  readonly onSnapshot?: (s: LoadSnapshot) => void;
  /** The final report, before it is printed. */
  readonly onReport?: (r: LoadReport) => void;
}

/** Before connecting: --help and usage errors need no cluster. */
export function loadPreflight(args: readonly string[], out: Pick<LoadContext, "stdout" | "stderr"> = {}): { kind: "exit"; code: number } | { kind: "connect"; stateDir: string | undefined } {
  const { stdout, stderr } = writers(out);
  if (args.includes("--help") || args.includes("-h")) {
    stdout(`${LOAD_USAGE}\n`);
    return { kind: "exit", code: 0 };
  }
  const parsed = parseLoadArgs(args);
  if (parsed.kind === "invalid") {
    stderr(`error: load: ${parsed.message}\n${LOAD_USAGE}\n`);
    return { kind: "exit", code: 2 };
  }
  return { kind: "connect", stateDir: parsed.value.stateDir };
}

/** A failure that ends the command with one line and this exit code. */
class LoadError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** `kubewire load ARGS`; the exit code: 0 ok, 99 a threshold failed, 1 the run failed, 2 usage. */
export async function load(args: string[], ctx: LoadContext): Promise<number> {
  const { stdout, stderr, flushed } = writers(ctx);
  let code: number;
  try {
    const parsed = parseLoadArgs(args);
    if (parsed.kind === "invalid") {
      stderr(`error: load: ${parsed.message}\n`);
      code = 2;
    } else code = await runLoad(parsed.value, ctx, stdout, stderr);
  } catch (err) {
    if (!(err instanceof LoadError || err instanceof RpcError || err instanceof KubeApiError)) throw err;
    stderr(`error: load: ${err.message}\n`);
    code = err instanceof LoadError ? err.exitCode : 1;
  }
  await flushed();
  return code;
}

interface ServerPod {
  namespace: string;
  name: string;
  node: string;
  port: number;
}

interface Resolved {
  label: string;
  targets: { ip: string; port: number }[];
  /** Pods where the scenario's server must run (tcp-rr, tcp-stream, udp-rr). */
  servers: ServerPod[];
  fromHost: boolean;
  warnings: string[];
}

const notFound = (what: string) => (err: unknown) => {
  if (err instanceof KubeApiError && err.code === 404) throw new LoadError(`${what} not found`);
  throw err;
};

function runningPod(obj: KubeObjectLike): { namespace: string; name: string; node: string; ip: string; netexecPort: number | undefined } | string {
  const rec = podRecordFrom(obj);
  const phase = obj.metadata.deletionTimestamp ? "Terminating" : typeof obj.status?.phase === "string" ? obj.status.phase : "Pending";
  if (phase !== "Running" || !rec.nodeName || !rec.podIp) return `pod ${rec.namespace}/${rec.name} is ${phase}${rec.podIp ? "" : ", without an IP"}`;
  const netexec = plan(rec.containers ?? []).apps.find((a) => a.kind === "netexecHttp");
  return { namespace: rec.namespace, name: rec.name, node: rec.nodeName, ip: rec.podIp, netexecPort: netexec?.port };
}

const selectorQuery = (selector: string) => `?labelSelector=${encodeURIComponent(selector)}`;

async function resolveTarget(o: LoadOptions, kube: KubeClient, nodes: NodeRecord[]): Promise<Resolved> {
  const ns = o.namespace;
  const needsServer = o.scenario !== "http";
  const t = o.target;
  if (t.kind === "pod" || t.kind === "pods") {
    const objs = t.kind === "pod" ? await Promise.all(t.names.map((n) => kube.get(paths.pod(ns, n)).catch(notFound(`pod ${ns}/${n}`)))) : await kube.list(`${paths.pods(ns)}${selectorQuery(t.selector)}`);
    const pods = objs.map(runningPod);
    const bad = pods.filter((p): p is string => typeof p === "string");
    if (t.kind === "pod" && bad.length > 0) throw new LoadError(bad.join("; "));
    const ready = pods.filter((p): p is Exclude<typeof p, string> => typeof p !== "string");
    if (ready.length === 0) throw new LoadError(`no Running pod matches ${t.kind === "pods" ? t.selector : ""} in namespace ${ns}`);
    const port = (p: (typeof ready)[number]) => (o.port !== undefined ? Number(o.port) : o.scenario === "http" ? (p.netexecPort ?? defaultPort("http")) : defaultPort(o.scenario));
    return {
      label: t.kind === "pod" ? ready.map((p) => `pod/${p.name} (${p.ip}:${port(p)})`).join(", ") : `pods/${t.selector} (${ready.length} pods)`,
      targets: ready.map((p) => ({ ip: p.ip, port: port(p) })),
      servers: needsServer ? ready.map((p) => ({ namespace: p.namespace, name: p.name, node: p.node, port: port(p) })) : [],
      fromHost: false,
      warnings: [],
    };
  }
  const svc = await kube.get(`${paths.services(ns)}/${t.name}`).catch(notFound(`service ${ns}/${t.name}`));
  const protocol = o.scenario === "udp-rr" ? "UDP" : "TCP";
  const ports = (Array.isArray(svc.spec?.ports) ? svc.spec.ports : []) as { name?: string; port: number; protocol?: string; nodePort?: number; targetPort?: number | string }[];
  const sp = ports.find((p) => (p.protocol ?? "TCP") === protocol && (o.port === undefined || String(p.port) === o.port || p.name === o.port));
  if (!sp) throw new LoadError(`service ${ns}/${t.name} has no ${protocol} port${o.port !== undefined ? ` ${o.port}` : ""} (ports: ${ports.map((p) => `${p.name ? `${p.name}:` : ""}${p.port}/${p.protocol ?? "TCP"}`).join(", ") || "none"})`);
  const warnings: string[] = [];
  const servers: ServerPod[] = [];
  if (needsServer) {
    const slices = await kube.list<{ ports?: { name?: string; port?: number; protocol?: string }[]; endpoints?: { addresses?: string[]; nodeName?: string; targetRef?: { kind?: string; name?: string; namespace?: string }; conditions?: { ready?: boolean } }[] }>(
      `${paths.endpointSlices(ns)}${selectorQuery(`kubernetes.io/service-name=${t.name}`)}`,
    );
    for (const s of slices) {
      const port = (s.ports ?? []).find((p) => (p.name ?? "") === (sp.name ?? "") && (p.protocol ?? "TCP") === protocol)?.port;
      if (port === undefined) continue;
      for (const e of s.endpoints ?? []) {
        if (e.conditions?.ready === false || e.targetRef?.kind !== "Pod" || !e.targetRef.name || !e.nodeName) continue;
        if (!servers.some((x) => x.name === e.targetRef!.name && x.port === port)) servers.push({ namespace: e.targetRef.namespace ?? ns, name: e.targetRef.name, node: e.nodeName, port });
      }
    }
    if (servers.length === 0) warnings.push(`service ${ns}/${t.name} has no ready endpoint pod to run the ${o.scenario} server in`);
  }
  if (t.kind === "svc") {
    const ip = svc.spec?.clusterIP;
    if (typeof ip !== "string" || parseIpv4Addr(ip) === undefined) throw new LoadError(`service ${ns}/${t.name} has no ClusterIP (${JSON.stringify(ip)})`);
    return { label: `svc/${t.name} (${ip}:${sp.port})`, targets: [{ ip, port: sp.port }], servers, fromHost: false, warnings };
  }
  if (t.kind === "lb") {
    // status.loadBalancer.ingress: the cloud controller's address, in front of the nodes' NodePorts.
    const ingress = (svc.status as { loadBalancer?: { ingress?: { ip?: string }[] } } | undefined)?.loadBalancer?.ingress ?? [];
    const ip = ingress.map((i) => i.ip).find((a): a is string => typeof a === "string" && parseIpv4Addr(a) !== undefined);
    if (!ip) throw new LoadError(`service ${ns}/${t.name} has no LoadBalancer ingress address yet (type ${svc.spec?.type ?? "ClusterIP"})`);
    return { label: `lb/${t.name} (${ip}:${sp.port})`, targets: [{ ip, port: sp.port }], servers, fromHost: true, warnings };
  }
  if (!sp.nodePort) throw new LoadError(`service ${ns}/${t.name} has no NodePort on port ${sp.port} (type ${svc.spec?.type ?? "ClusterIP"}; make it a NodePort or LoadBalancer Service)`);
  const hosts = nodes.filter((n) => parseIpv4Addr(n.hostAddress) !== undefined);
  if (hosts.length === 0) throw new LoadError("no Ready node has a host address to reach its NodePort on");
  return { label: `nodeport/${t.name} (port ${sp.nodePort} on ${hosts.map((n) => n.hostAddress).join(", ")})`, targets: hosts.map((n) => ({ ip: n.hostAddress, port: sp.nodePort! })), servers, fromHost: true, warnings };
}

interface ClientPod {
  namespace: string;
  name: string;
  node: string;
}

async function createClientPods(kube: KubeClient, namespace: string, runId: string, nodes: NodeRecord[], created: ClientPod[]): Promise<ClientPod[]> {
  await Promise.all(
    nodes.map(async (n) => {
      const name = `load-${runId}-${n.name}`.slice(0, 63).replace(/[-.]+$/, "");
      await kube.create(paths.pods(namespace), {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace, labels: { "app.kubernetes.io/name": "kubewire-load", "kubewire.io/load-run": runId } },
        spec: { nodeName: n.name, containers: [{ name: "load", image: CLIENT_IMAGE, args: ["pause"] }] },
      });
      created.push({ namespace, name, node: n.name });
    }),
  );
  const deadline = Date.now() + POD_START_TIMEOUT_MS;
  for (const p of created) {
    for (;;) {
      const r = runningPod(await kube.get(paths.pod(p.namespace, p.name)));
      if (typeof r !== "string") break;
      if (Date.now() > deadline) throw new LoadError(`client pod ${p.name} not Running within ${POD_START_TIMEOUT_MS / 1000} s: ${r}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return created;
}

/** The node an endpoint address is on (a pod IP by the nodes' pod CIDRs, a node's host address), else the address. */
function serverResolver(nodes: NodeRecord[]): (endpoint: string) => string {
  const cidrs = nodes.flatMap((n) => {
    try {
      return [{ name: n.name, cidr: mustParseCidr(n.podCidr) }];
    } catch {
      return [];
    }
  });
  return (endpoint) => {
    const host = nodes.find((n) => n.hostAddress === endpoint);
    if (host) return `${host.name} (NodePort)`;
    const ip = parseIpv4Addr(endpoint);
    const n = ip === undefined ? undefined : cidrs.find((c) => cidrContains(c.cidr, ip));
    return n ? n.name : endpoint;
  };
}

async function runLoad(o: LoadOptions, ctx: LoadContext, stdout: (t: string) => void, stderr: (t: string) => void): Promise<number> {
  const { kube, nc } = ctx;
  const nodeObjs = await kube.list(paths.nodes());
  const allNodes = nodeObjs.flatMap((n) => {
    const r = nodeRecordFrom(n);
    return r ? [r] : [];
  });
  const readyNodes = nodeObjs.filter(nodeIsReady).flatMap((n) => allNodes.filter((r) => r.name === n.metadata.name));
  if (readyNodes.length === 0) throw new LoadError("no Ready node");
  const target = await resolveTarget(o, kube, readyNodes);
  for (const w of target.warnings) stderr(`warning: ${w}\n`);
  const runId = randomBytes(3).toString("hex");
  const created: ClientPod[] = [];
  const startedServers = new Set<string>();
  const hostClients: LoadClient[] = [];
  let interrupted = false;
  const clientNodes = new Set<string>();
  const stopAll = async () => {
    for (const c of hostClients) c.stop();
    await Promise.all([...new Set([...startedServers, ...created.map((c) => c.node), ...clientNodes])].map((n) => request(nc, Subjects.node(n, "load"), { op: "stop", runId } satisfies LoadRequest, 5000).catch(() => undefined)));
  };
  const onSignal = () => {
    // The first Ctrl-C ends the run early (the report covers what ran); a second one exits.
    if (interrupted) process.exit(130);
    interrupted = true;
    stderr("\ninterrupted: stopping the clients\n");
    void stopAll();
  };
  process.on("SIGINT", onSignal);
  try {
    let clients: { worker: string; node: string; pod?: ClientPod }[];
    if (target.fromHost) clients = [{ worker: "host", node: "host" }];
    else if (o.clients.kind === "selector") {
      const pods = (await kube.list(`${paths.pods(o.namespace)}${selectorQuery(o.clients.selector)}`)).map(runningPod).filter((p): p is Exclude<ReturnType<typeof runningPod>, string> => typeof p !== "string");
      if (pods.length === 0) throw new LoadError(`--clients ${o.clients.selector}: no Running pod in namespace ${o.namespace}`);
      clients = pods.map((p) => ({ worker: `${p.node}/${p.name}`, node: p.node, pod: { namespace: p.namespace, name: p.name, node: p.node } }));
    } else {
      const pods = await createClientPods(kube, o.namespace, runId, readyNodes, created);
      clients = pods.map((p) => ({ worker: `${p.node}/${p.name}`, node: p.node, pod: p }));
    }
    clients.sort((a, b) => (a.worker < b.worker ? -1 : 1));
    const connections = o.connections ?? CONNECTIONS_PER_CLIENT * (target.fromHost ? target.targets.length : clients.length);
    if (connections < clients.length) throw new LoadError(`--connections ${connections} is fewer than the ${clients.length} clients (one connection each at least)`, 2);
    const shares = splitLoad(clients.length, connections, o.rate, target.targets.length);

    for (const s of target.servers) {
      const req: LoadRequest = { op: "server", runId, namespace: s.namespace, pod: s.name, port: s.port, scenario: o.scenario, lifetimeMs: o.durationMs + o.timeoutMs + RESULT_MARGIN_MS * 3 };
      await request(nc, Subjects.node(s.node, "load"), req, 10_000).catch((err: Error) => {
        throw new LoadError(`cannot start the ${o.scenario} server in pod ${s.namespace}/${s.name} on ${s.node}: ${err.message}`);
      });
      startedServers.add(s.node);
    }

    // Every client node streams to kubewire.stream.<node>.<runId>.
    const sub = nc.subscribe(Subjects.stream("*", runId));
    const finals = new Map<string, LoadSnapshot>();
    const progress = new Progress(o.durationMs, INTERVAL_MS, clients.length, o.rate);
    let started = 0;
    let allIn!: () => void;
    const complete = new Promise<void>((resolve) => (allIn = resolve));
    const onSnapshot = (s: LoadSnapshot) => {
      if (s?.runId !== runId || typeof s.worker !== "string") return;
      progress.add(s);
      ctx.onSnapshot?.(s);
      if (s.kind === "final") {
        finals.set(s.worker, s);
        if (finals.size >= clients.length) allIn();
      }
    };
    const reading = (async () => {
      for await (const m of sub) {
        try {
          onSnapshot(unpack(m.data) as LoadSnapshot);
        } catch {
          // A message that does not decode is not a snapshot of ours.
        }
      }
    })();
    const workload = (share: (typeof shares)[number]): LoadWorkload => ({
      scenario: o.scenario,
      targets: [...target.targets.slice(share.targetOffset), ...target.targets.slice(0, share.targetOffset)],
      connections: share.connections,
      rate: share.rate,
      durationMs: o.durationMs,
      timeoutMs: o.timeoutMs,
      requestBytes: o.requestBytes,
      responseBytes: o.responseBytes,
      intervalMs: INTERVAL_MS,
      reuse: o.reuse,
    });
    const tty = ctx.tty ?? process.stderr.isTTY === true;
    let ticker: NodeJS.Timeout | undefined;
    try {
      await Promise.all(
        clients.map(async (c, i) => {
          if (!c.pod) {
            hostClients.push(startLoadClient(hostLoadNet(), { runId, worker: c.worker, node: "host", workload: workload(shares[i]!), publish: onSnapshot }));
            return;
          }
          const req: LoadRequest = { op: "client", runId, namespace: c.pod.namespace, pod: c.pod.name, worker: c.worker, stream: runId, workload: workload(shares[i]!) };
          await request(nc, Subjects.node(c.node, "load"), req, 10_000).catch((err: Error) => {
            throw new LoadError(`cannot start the client in pod ${c.pod!.name} on ${c.node}: ${err.message}`);
          });
          clientNodes.add(c.node);
        }),
      );
      started = performance.now();
      ctx.onStarted?.();
      stderr(`load ${runId}: ${o.scenario} to ${target.label} from ${clients.length} client(s), ${connections} connection(s), ${o.rate > 0 ? `${o.rate} req/s` : "max rate"}, ${(o.durationMs / 1000).toFixed(1)} s\n`);
      ticker = setInterval(() => {
        const line = progress.line(performance.now() - started, tty);
        stderr(tty ? `\r\x1b[K${line}` : `${line}\n`);
      }, tty ? 250 : INTERVAL_MS);
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, o.durationMs + o.timeoutMs + RESULT_MARGIN_MS).unref());
      await Promise.race([complete, deadline]);
    } finally {
      clearInterval(ticker);
      // The last word of the progress: a log gets the totals, a terminal loses the bar.
      if (started > 0) stderr(tty ? "\r\x1b[K" : `${progress.line(performance.now() - started, false)}\n`);
      sub.unsubscribe();
      await reading;
    }
    const report = buildReport({
      scenario: o.scenario,
      target: target.label,
      rate: o.rate,
      durationMs: o.durationMs,
      connections,
      clients: clients.map((c) => ({ worker: c.worker, node: c.node })),
      finals: [...finals.values()],
      serverOf: serverResolver(allNodes),
      thresholds: o.thresholds,
    });
    ctx.onReport?.(report);
    stdout(o.output === "json" ? formatJson(report) : formatReport(report));
    return exitCodeOf(report);
  } finally {
    process.off("SIGINT", onSignal);
    await stopAll();
    // Created client pods go with the run (graceful delete; their node tears them down).
    await Promise.all(created.map((p) => kube.delete(paths.pod(p.namespace, p.name)).catch(() => undefined)));
  }
}
