/**
 * The one place integration tests get a cluster from: NATS (a spawned nats-server by default,
 * a testcontainers NATS container when KUBEWIRE_TEST_NATS=testcontainers on a machine with
 * Docker), the real control-plane process and real node-agent processes. Every process started
 * here is stopped by PID in `stop()`.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "nats";
import { connectNats, request, RpcError } from "../../api/rpc.ts";
import { Subjects, type ExecResult, type NodeStatus, type PodRecord } from "../../api/types.ts";
import { REPO_ROOT, startControlPlane, startNats, startNodeAgent, stopPid, type ManagedProcess } from "../../cli/processes.ts";

export interface NatsHandle {
  url: string;
  stop(): Promise<void>;
  /** Restarts the server on the same port and data dir (JetStream state survives). */
  restart?(): Promise<void>;
}

export async function startTestNats(dir: string): Promise<NatsHandle> {
  if (process.env.KUBEWIRE_TEST_NATS === "testcontainers") {
    const { NatsContainer } = await import("@testcontainers/nats");
    const container = await new NatsContainer("nats:2.10-alpine").withJetStream().start();
    const o = container.getConnectionOptions();
    const auth = o.user ? `${encodeURIComponent(o.user)}:${encodeURIComponent(o.pass ?? "")}@` : "";
    const server = Array.isArray(o.servers) ? o.servers[0] : o.servers;
    return { url: `nats://${auth}${String(server).replace(/^nats:\/\//, "")}`, stop: async () => void (await container.stop()) };
  }
  const logDir = join(dir, "logs");
  let proc = await startNats({ logDir, dataDir: join(dir, "nats") });
  const port = proc.port;
  return {
    url: proc.url,
    stop: () => stopPid(proc.pid),
    restart: async () => {
      await stopPid(proc.pid);
      proc = await startNats({ logDir, dataDir: join(dir, "nats"), port });
    },
  };
}

export class TestCluster {
  readonly procs = new Map<string, ManagedProcess>();
  nc!: NatsConnection;

  private constructor(
    readonly dir: string,
    readonly nats: NatsHandle,
    readonly nodeNames: string[],
  ) {}

  static async start(nodes: number): Promise<TestCluster> {
    const dir = mkdtempSync(join(tmpdir(), "kubewire-test-"));
    const nats = await startTestNats(dir);
    const cluster = new TestCluster(dir, nats, Array.from({ length: nodes }, (_, i) => `node-${i + 1}`));
    try {
      cluster.nc = await connectNats(nats.url, "kubewire-test");
      cluster.startControlPlane();
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
    this.procs.set("control-plane", startControlPlane(this.nats.url, { logDir: this.logDir }));
  }

  startNode(name: string): void {
    this.procs.set(name, startNodeAgent(this.nats.url, name, this.nodeNames.indexOf(name) + 1, { logDir: this.logDir }));
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

  async createPod(name: string, nodeName: string): Promise<PodRecord> {
    const pod = await request<PodRecord>(this.nc, Subjects.createPod, { namespace: "default", name, nodeName, ports: [] });
    await this.waitForPodOnNode(pod);
    return pod;
  }

  async waitForPodOnNode(pod: PodRecord, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.status(pod.nodeName)).pods.includes(`${pod.namespace}.${pod.name}`)) {
      if (Date.now() > deadline) throw new Error(`${pod.nodeName} did not plumb ${pod.name}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  exec(pod: PodRecord, argv: string[], timeoutMs = 60_000): Promise<ExecResult> {
    return request<ExecResult>(this.nc, Subjects.node(pod.nodeName, "exec"), { namespace: pod.namespace, pod: pod.name, argv }, timeoutMs);
  }

  /** Runs the real CLI (`bin/kubewire.js`) against this cluster. */
  kubewire(args: string[], opts: { timeoutMs?: number; onStderr?: (text: string) => void } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [join(REPO_ROOT, "bin/kubewire.js"), ...args], {
        cwd: REPO_ROOT,
        env: { ...process.env, KUBEWIRE_NATS_URL: this.nats.url, KUBEWIRE_STATE_DIR: this.dir },
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
    await this.nats.stop();
    if (!process.env.KUBEWIRE_KEEP_TEST_DIR) rmSync(this.dir, { recursive: true, force: true });
  }
}
