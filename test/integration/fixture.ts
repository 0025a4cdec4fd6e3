/**
 * The one place integration tests get a cluster from: NATS (a spawned nats-server by default,
 * a testcontainers NATS container when KUBEWIRE_TEST_NATS=testcontainers on a machine with
 * Docker), the real control-plane process and real node-agent processes. Every process started
 * here is stopped by PID in `stop()`.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "nats";
import { connectNats, readNatsAuth, request, RpcError } from "../../cluster/rpc.ts";
import { KubeApiError, KubeClient, paths, renderKubeconfig, type KubeObjectLike } from "../../cluster/kube-client.ts";
import { nodeRecordFrom } from "../../cluster/kube-objects.ts";
import { Subjects, type ExecResult, type NodeRecord, type NodeStatus } from "../../cluster/types.ts";
import { generateServingCert } from "../../cluster/tls.ts";
import { REPO_ROOT, freePort, homeServerFirst, relaunch, startControlPlane, startNatsServers, startNodeAgent, stopPid, type LaunchSpec, type ManagedProcess } from "../../cli/processes.ts";
import { readState, type ClusterState } from "../../cli/state.ts";
import { adminCreds, createClusterSecurity, envFor, nodeCredsFile, type ClusterSecurity } from "../../cluster/security.ts";

/** A pod as the tests use it: where it runs and its IP. */
export interface TestPod {
  namespace: string;
  name: string;
  nodeName: string;
  podIp: string;
}

export interface ClusterOptions {
  nodes: number;
  /** KUBEWIRE_NODE_GRACE_SECONDS for the control plane (10 by default, as in Kubernetes' spirit). */
  nodeGraceSeconds?: number;
  /** KUBEWIRE_DEFAULT_TOLERATION_SECONDS: how long pods stay on a bad node before eviction (20 by default). */
  podEvictionSeconds?: number;
  /** KUBEWIRE_NODE_CIDR_MASK for every process (24 by default). */
  nodeCidrMask?: number;
  /**
   * false: NATS without TLS or identities (anonymous clients), the baseline of the security
   * benchmark; every test runs secured, as `kubewire up` does.
   */
  secure?: boolean;
  /** nats-servers routed into one NATS cluster (the store replicated on all of them); 1 by default. */
  natsServers?: number;
  /** More KUBEWIRE_* variables for the control plane (KUBEWIRE_EVENT_TTL_SECONDS, say). */
  controlPlaneEnv?: Record<string, string>;
  /** KUBEWIRE_* variables for every process (KUBEWIRE_PROXY_MODE, say), as `kubewire up` flags set them. */
  env?: Record<string, string>;
}

/** One nats-server the harness started: its PID, and how to kill and start it again. */
export interface NatsServerHandle {
  name: string;
  url: string;
  /** Its monitoring endpoint's port (NATS clusters only). */
  monitorPort?: number;
  pid(): number;
  launch: LaunchSpec;
  /** kill -9: no goodbye to clients or routes. */
  kill9(): Promise<void>;
  /** Starts it again on the same port, config and data dir (JetStream state survives). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface NatsHandle {
  /** Every server's URL, comma separated. */
  url: string;
  /** The servers started here (none for a testcontainers NATS). */
  servers: NatsServerHandle[];
  stop(): Promise<void>;
  /** Stops and starts every server (one: `kubewire chaos restart nats`'s effect). */
  restart?(): Promise<void>;
}

export async function startTestNats(dir: string, security?: ClusterSecurity, count = 1): Promise<NatsHandle> {
  if (process.env.KUBEWIRE_TEST_NATS === "testcontainers" && !security && count === 1) {
    const { NatsContainer } = await import("@testcontainers/nats");
    const container = await new NatsContainer("nats:2.10-alpine").withJetStream().start();
    const o = container.getConnectionOptions();
    const auth = o.user ? `${encodeURIComponent(o.user)}:${encodeURIComponent(o.pass ?? "")}@` : "";
    const server = Array.isArray(o.servers) ? o.servers[0] : o.servers;
    return { url: `nats://${auth}${String(server).replace(/^nats:\/\//, "")}`, servers: [], stop: async () => void (await container.stop()) };
  }
  const logDir = join(dir, "logs");
  const started = await startNatsServers({ logDir, dir, count, ...(security ? { security: security.server } : {}) });
  const servers = started.map((first): NatsServerHandle => {
    let proc: ManagedProcess = first;
    const launch: LaunchSpec = { role: "nats", port: first.port, dataDir: first.dataDir, env: {}, configFile: first.configFile };
    return {
      name: first.name,
      url: first.url,
      ...(first.monitorPort !== undefined ? { monitorPort: first.monitorPort } : {}),
      pid: () => proc.pid,
      launch,
      kill9: async () => {
        process.kill(proc.pid, "SIGKILL");
        await proc.exited;
      },
      start: async () => {
        proc = await relaunch(first.name, launch, logDir);
      },
      stop: () => stopPid(proc.pid),
    };
  });
  return {
    url: started.map((s) => s.url).join(","),
    servers,
    stop: async () => {
      for (const s of servers) await s.stop();
    },
    restart: async () => {
      for (const s of servers) await s.stop();
      await Promise.all(servers.map((s) => s.start()));
    },
  };
}

export class TestCluster {
  readonly procs = new Map<string, ManagedProcess>();
  nc!: NatsConnection;
  kube!: KubeClient;
  readonly token = randomBytes(24).toString("base64url");
  apiPort = 0;

  private constructor(
    readonly dir: string,
    readonly nats: NatsHandle,
    readonly nodeNames: string[],
    private readonly opts: ClusterOptions,
    /** The cluster's CA, NATS trust, issuer and bootstrap token (absent with `secure: false`). */
    readonly security: ClusterSecurity | undefined,
  ) {}

  tls!: { cert: string; key: string };
  /**
   * Each test cluster binds its real sockets in its own loopback block 127.B.C.0/24 (node N at
   * 127.B.C.N) with its LoadBalancer pool in 127.B.C+1.0/24, so it never meets the NodePorts of
   * a cluster started with `kubewire up` (127.0.1.N) on the same machine.
   */
  readonly block = `127.${100 + Math.floor(Math.random() * 100)}.${2 * Math.floor(Math.random() * 120)}`;

  /** The real address node `name` binds its NodePorts and health checks to. */
  hostAddress(name: string): string {
    return `${this.block}.${this.nodeNames.indexOf(name) + 1}`;
  }

  get lbCidr(): string {
    const [a, b, c] = this.block.split(".");
    return `${a}.${b}.${Number(c) + 1}.0/24`;
  }

  private get commonEnv(): Record<string, string> {
    return { KUBEWIRE_LB_CIDR: this.lbCidr, ...(this.opts.env ?? {}) };
  }

  /** Writes a manifest file (YAML or JSON text) into the cluster's directory for kubectl -f; its path. */
  manifestFile(name: string, text: string): string {
    const file = join(this.dir, `${name}.yaml`);
    writeFileSync(file, text);
    return file;
  }

  /** kubectl apply of one manifest object. */
  async apply(manifest: object): Promise<void> {
    const m = manifest as { kind?: string; metadata?: { name?: string } };
    const file = join(this.dir, `apply-${m.kind ?? "object"}-${m.metadata?.name ?? "x"}-${randomBytes(3).toString("hex")}.json`);
    writeFileSync(file, JSON.stringify(manifest));
    await this.kubectlOk(["apply", "-f", file]);
  }

  get apiUrl(): string {
    return `https://127.0.0.1:${this.apiPort}`;
  }

  /** A kubeconfig for kubectl against this cluster. */
  get kubeconfig(): string {
    return join(this.dir, "kubeconfig");
  }

  static async start(nodesOrOpts: number | ClusterOptions): Promise<TestCluster> {
    const opts = typeof nodesOrOpts === "number" ? { nodes: nodesOrOpts } : nodesOrOpts;
    const dir = mkdtempSync(join(tmpdir(), "kubewire-test-"));
    const security = opts.secure === false ? undefined : await createClusterSecurity(dir);
    const nats = await startTestNats(dir, security, opts.natsServers ?? 1);
    const cluster = new TestCluster(dir, nats, Array.from({ length: opts.nodes }, (_, i) => `node-${i + 1}`), opts, security);
    try {
      // The harness acts as the cluster's administrator (every subject, the store too).
      cluster.nc = await connectNats(nats.url, "kubewire-test", security ? readNatsAuth({ ca: security.caFile, creds: await adminCreds(security) }, "admin") : {});
      cluster.apiPort = await freePort();
      cluster.tls = await generateServingCert();
      writeFileSync(join(dir, "apiserver.crt"), cluster.tls.cert);
      writeFileSync(join(dir, "apiserver.key"), cluster.tls.key);
      cluster.kube = new KubeClient(cluster.apiUrl, cluster.token, cluster.tls.cert);
      writeFileSync(cluster.kubeconfig, renderKubeconfig(cluster.apiUrl, cluster.token, cluster.tls.cert));
      // The CLI finds the cluster the way it does after `kubewire up`.
      cluster.startControlPlane();
      await cluster.waitForApi();
      cluster.nodeNames.forEach((n) => cluster.startNode(n));
      await Promise.all(cluster.nodeNames.map((n) => cluster.waitForNode(n)));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get logDir(): string {
    return join(this.dir, "logs");
  }

  startControlPlane(): void {
    const env: Record<string, string> = {
      KUBEWIRE_API_ADDRESS: `127.0.0.1:${this.apiPort}`,
      KUBEWIRE_API_TOKEN: this.token,
      KUBEWIRE_API_TLS_CERT: join(this.dir, "apiserver.crt"),
      KUBEWIRE_API_TLS_KEY: join(this.dir, "apiserver.key"),
    };
    if (this.opts.nodeGraceSeconds !== undefined) env.KUBEWIRE_NODE_GRACE_SECONDS = String(this.opts.nodeGraceSeconds);
    if (this.opts.podEvictionSeconds !== undefined) env.KUBEWIRE_DEFAULT_TOLERATION_SECONDS = String(this.opts.podEvictionSeconds);
    if (this.opts.nodeCidrMask !== undefined) env.KUBEWIRE_NODE_CIDR_MASK = String(this.opts.nodeCidrMask);
    if (this.nats.servers.length > 1) env.KUBEWIRE_NATS_REPLICAS = String(this.nats.servers.length);
    Object.assign(env, this.commonEnv, this.security ? envFor(this.security, { controlPlane: true }) : {}, this.opts.controlPlaneEnv ?? {});
    this.procs.set("control-plane", startControlPlane(this.nats.url, { logDir: this.logDir, env }));
    this.launches.set("control-plane", { role: "control-plane", natsUrl: this.nats.url, env });
    this.writeState();
  }

  private readonly launches = new Map<string, LaunchSpec>();

  /**
   * cluster.json as `kubewire up` writes it: the CLI finds the cluster there, and `kubewire chaos`
   * the processes (with how to start them again). A process the CLI restarts gets a new PID there;
   * stop() stops those too.
   */
  private writeState(): void {
    const nats = this.nats.servers.map((s) => ({ name: s.name, pid: s.pid(), logFile: join(this.logDir, `${s.name}.log`), launch: s.launch }));
    const state: ClusterState = {
      natsUrl: this.nats.url,
      ...(this.security ? { natsCa: this.security.caFile, natsCreds: this.security.cliCreds } : {}),
      apiUrl: this.apiUrl,
      token: this.token,
      ca: this.tls.cert,
      stateDir: this.dir,
      processes: [...nats, ...[...this.procs.values()].map((p) => ({ name: p.name, pid: p.pid, logFile: p.logFile, launch: this.launches.get(p.name) }))],
    };
    writeFileSync(join(this.dir, "cluster.json"), JSON.stringify(state));
  }

  /** Resolves once the API answers (the control plane is up and its store open). */
  async waitForApi(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ok = await this.kube.request("GET", "/readyz").then(() => true, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`API not up after ${timeoutMs} ms; see ${this.logDir}/control-plane.log`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async nodes(): Promise<NodeRecord[]> {
    return (await this.kube.list(paths.nodes())).map((n) => nodeRecordFrom(n as Parameters<typeof nodeRecordFrom>[0])!).filter(Boolean);
  }

  async pods(namespace?: string): Promise<KubeObjectLike[]> {
    return this.kube.list(paths.pods(namespace));
  }

  startNode(name: string): void {
    const env: Record<string, string> = { ...this.commonEnv, ...(this.security ? envFor(this.security, { node: name, stateDir: this.dir }) : {}), KUBEWIRE_HOST_ADDRESS: this.hostAddress(name) };
    if (this.opts.nodeCidrMask !== undefined) env.KUBEWIRE_NODE_CIDR_MASK = String(this.opts.nodeCidrMask);
    const index = this.nodeNames.indexOf(name) + 1;
    // As `kubewire up` spreads them: each node-agent tries its home server first.
    const natsUrl = homeServerFirst(this.nats.url, index);
    this.procs.set(name, startNodeAgent(natsUrl, name, index, { logDir: this.logDir, env }));
    this.launches.set(name, { role: "node", natsUrl, index, env });
    this.writeState();
  }

  /** The credentials file node `name` was issued when it joined (secured clusters). */
  nodeCredsFile(name: string): string {
    return nodeCredsFile(this.dir, name);
  }

  /** kill -9: no goodbye to NATS, no cleanup. */
  async kill9(name: string): Promise<void> {
    const p = this.procs.get(name)!;
    process.kill(p.pid, "SIGKILL");
    await p.exited;
  }

  async stopProcess(name: string): Promise<void> {
    const p = this.procs.get(name)!;
    await stopPid(p.pid);
    await p.exited;
  }

  /** Resolves once the node-agent answers status requests (it registered and is watching). */
  async waitForNode(name: string, timeoutMs = 30_000): Promise<NodeStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await request<NodeStatus>(this.nc, Subjects.node(name, "status"), {}, 1000);
      } catch (err) {
        if (!(err instanceof RpcError) || Date.now() > deadline) throw err;
        // "No responders" returns at once: wait for the node's subscription to appear.
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  status(node: string): Promise<NodeStatus> {
    return request<NodeStatus>(this.nc, Subjects.node(node, "status"), {}, 5000);
  }

  /** Creates a pod bound to `nodeName` through the API and waits until it is Running with an IP. */
  async createPod(name: string, nodeName: string, namespace = "default"): Promise<TestPod> {
    await this.kube.create(paths.pods(namespace), {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace, labels: { app: name } },
      spec: { nodeName, containers: [{ name: "app", image: "registry.k8s.io/e2e-test-images/agnhost:2.47" }] },
    });
    return this.waitForPodRunning(namespace, name);
  }

  async waitForPodRunning(namespace: string, name: string, timeoutMs = 20_000): Promise<TestPod> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pod = await this.kube.get(paths.pod(namespace, name)).catch((err: unknown) => {
        if (err instanceof KubeApiError && err.code === 404) return undefined;
        throw err;
      });
      if (pod?.status?.phase === "Running" && pod.status.podIP) return { namespace, name, nodeName: pod.spec.nodeName, podIp: pod.status.podIP };
      if (Date.now() > deadline) throw new Error(`pod ${namespace}/${name} not Running after ${timeoutMs} ms: ${JSON.stringify(pod?.status)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits until the node-agent has the pod's network plumbed (after a restart, say). */
  async waitForPodOnNode(pod: TestPod, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.status(pod.nodeName)).pods.includes(`${pod.namespace}.${pod.name}`)) {
      if (Date.now() > deadline) throw new Error(`${pod.nodeName} did not plumb ${pod.name}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  exec(pod: TestPod, argv: string[], timeoutMs = 60_000): Promise<ExecResult> {
    return request<ExecResult>(this.nc, Subjects.node(pod.nodeName, "exec"), { namespace: pod.namespace, pod: pod.name, argv }, timeoutMs);
  }

  /** Runs the real kubectl against this cluster. */
  kubectl(args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile("kubectl", args, { env: { ...process.env, KUBECONFIG: this.kubeconfig }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0, stdout, stderr });
      });
    });
  }

  /** Runs kubectl and expects it to succeed; its stdout. */
  async kubectlOk(args: string[], timeoutMs = 60_000): Promise<string> {
    const res = await this.kubectl(args, timeoutMs);
    // A plain error, not vitest's expect: the benchmarks import this fixture outside vitest.
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${res.code}\n${res.stdout}${res.stderr}`);
    return res.stdout;
  }

  /** Runs the real CLI (`bin/kubewire.js`) against this cluster. */
  /** `kubewire exec --node NODE -- ARGV`: a node-level tool (iptables-save, conntrack -L); its stdout, or an Error. */
  async nodeExec(node: string, argv: string[]): Promise<string> {
    const r = await this.kubewire(["exec", "--node", node, "--", ...argv]);
    if (r.code !== 0) throw new Error(`kubewire exec --node ${node} -- ${argv.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  kubewire(args: string[], opts: { timeoutMs?: number; onStderr?: (text: string) => void } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [join(REPO_ROOT, "bin/kubewire.js"), ...args], {
        cwd: REPO_ROOT,
        env: { ...process.env, KUBEWIRE_STATE_DIR: this.dir },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d));
      child.stderr.on("data", (d: Buffer) => {
        stderr += d;
        opts.onStderr?.(stderr);
      });
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`kubewire ${args.join(" ")} timed out`));
      }, timeoutMs);
      child.once("exit", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  }

  async stop(): Promise<void> {
    await this.nc?.close().catch(() => {});
    for (const p of [...this.procs.values()].reverse()) await stopPid(p.pid);
    // Processes `kubewire chaos restart` started in this cluster (their PIDs are only there).
    for (const p of readState(this.dir)?.processes ?? []) await stopPid(p.pid);
    await this.nats.stop();
    if (!process.env.KUBEWIRE_KEEP_TEST_DIR) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Polls `probe` until it returns something other than undefined (a thrown error counts as not
 * yet), every 200 ms, for at most `timeoutMs`: for state that no event announces to a test.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The image Kubernetes' own network tests use; netexec answers /hostname, /clientip, /dial. */
export const NETEXEC_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.53";

/** A Pod of agnhost netexec on `node`: HTTP on 8080 (port "http"), UDP on 8081 (port "udp"). */
export function netexecPod(name: string, node: string, labels: Record<string, string>): object {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels },
    spec: {
      nodeName: node,
      containers: [{ name: "app", image: NETEXEC_IMAGE, args: ["netexec", "--http-port=8080", "--udp-port=8081"], ports: [{ name: "http", containerPort: 8080 }, { name: "udp", containerPort: 8081, protocol: "UDP" }] }],
    },
  };
}

/** web-1..3 (netexec, app=web) on node-1..3 and a netexec client on node-1, all Running. */
export async function startWebPods(cluster: TestCluster): Promise<void> {
  await Promise.all([
    cluster.apply(netexecPod("web-1", "node-1", { app: "web" })),
    cluster.apply(netexecPod("web-2", "node-2", { app: "web" })),
    cluster.apply(netexecPod("web-3", "node-3", { app: "web" })),
    cluster.apply(netexecPod("client", "node-1", { app: "client" })),
  ]);
  await Promise.all(["web-1", "web-2", "web-3", "client"].map((p) => cluster.waitForPodRunning("default", p)));
}

/**
 * `writers` loops creating ConfigMaps in `namespace` with `labels`, one after another, each
 * retried until the API acknowledges it (a 409 on a retry: an attempt whose answer was lost was
 * stored): the writes a store failover must not lose. `acked` holds every acknowledged name.
 */
export function acknowledgedWrites(kube: KubeClient, namespace: string, labels: Record<string, string>, writers: number): { acked: Set<string>; stop(): Promise<void> } {
  const acked = new Set<string>();
  let writing = true;
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let i = 0; writing; i++) {
      const name = `burst-${w}-${i}`;
      for (;;) {
        try {
          await kube.create(`/api/v1/namespaces/${namespace}/configmaps`, { apiVersion: "v1", kind: "ConfigMap", metadata: { name, labels }, data: { i: String(i) } });
          acked.add(name);
          break;
        } catch (err) {
          if (err instanceof KubeApiError && err.code === 409) {
            acked.add(name);
            break;
          }
          if (!writing) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  });
  return {
    acked,
    stop: async () => {
      writing = false;
      await Promise.all(loops);
    },
  };
}

/**
 * When each echo reply of `ping -i INTERVAL` output arrived, on the ping's clock (ms from its
 * start: the request's send time plus its RTT), in order; and the longest time with none.
 */
export function pingArrivals(stdout: string, intervalSeconds: number): { arrivals: number[]; longestSilenceMs: number } {
  const arrivals = [...stdout.matchAll(/icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms/g)].map((m) => (Number(m[1]) - 1) * intervalSeconds * 1000 + Number(m[2])).sort((x, y) => x - y);
  const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
  return { arrivals, longestSilenceMs: gaps.length > 0 ? Math.max(...gaps) : Infinity };
}
