/**
 * Starting and stopping the cluster's OS processes: nats-server (JetStream on, its own data
 * dir, a free port), the control plane and one node-agent per node. Used by `kubewire up`,
 * the integration tests and the benchmarks alike, so all three run the same processes.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync, closeSync, writeFileSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ConfigError, loadNodeAgentConfig, type ConfigEnvVar } from "../cluster/config.ts";
import { renderNatsServerConfig, type NatsServerSecurity } from "../cluster/nats-server-config.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// tsx's loader as a file URL for `node --import`; resolved from this checkout, whatever the cwd.
const TSX_LOADER = pathToFileURL(join(REPO_ROOT, "node_modules/tsx/dist/loader.mjs")).href;

export interface ManagedProcess {
  name: string;
  pid: number;
  logFile: string;
  child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<number | string>;
}

/**
 * How a process of a cluster was started, so that `kubewire chaos restart` starts it again the
 * same way (same name, NATS port and data dir, host address, environment). Kept in the state file.
 */
export type LaunchSpec =
  | { readonly role: "nats"; readonly port: number; readonly dataDir: string; readonly env: Record<string, string>; readonly configFile?: string }
  | { readonly role: "control-plane"; readonly natsUrl: string; readonly env: Record<string, string> }
  | { readonly role: "node"; readonly natsUrl: string; readonly index: number; readonly env: Record<string, string> };

/** Starts a process again from its LaunchSpec, detached (it outlives the CLI that restarts it). */
export async function relaunch(name: string, spec: LaunchSpec, logDir: string): Promise<ManagedProcess> {
  const opts = { logDir, detached: true, env: spec.env };
  switch (spec.role) {
    case "nats":
      return spec.configFile ? launchNats(name, spec.configFile, spec.port, opts) : startNats({ ...opts, dataDir: spec.dataDir, port: spec.port });
    case "control-plane":
      return startControlPlane(spec.natsUrl, opts);
    case "node":
      return startNodeAgent(spec.natsUrl, name, spec.index, opts);
  }
}

export interface SpawnOptions {
  logDir: string;
  /** Detached processes outlive the CLI (`kubewire up --detach`). */
  detached?: boolean;
  env?: Record<string, string>;
}

/**
 * The `kubewire up` flags that set a cluster-wide KUBEWIRE_* variable of every process started
 * (the control plane and each node-agent read the same value, as the compose file gives them).
 */
export const UP_ENV_FLAGS = {
  "cluster-cidr": "KUBEWIRE_CLUSTER_CIDR",
  "proxy-mode": "KUBEWIRE_PROXY_MODE",
  "ipvs-scheduler": "KUBEWIRE_IPVS_SCHEDULER",
  "lb-cidr": "KUBEWIRE_LB_CIDR",
  "dns-port": "KUBEWIRE_DNS_PORT",
} as const satisfies Record<string, ConfigEnvVar>;
export type UpEnvFlag = keyof typeof UP_ENV_FLAGS;

/**
 * The environment of every process for the given `up` flags, checked with the loader the
 * processes themselves run (so a value `up` accepts is one they start with). Throws an Error
 * whose message names the flag: `--lb-cidr: 10.0.0.0/8 overlaps KUBEWIRE_CLUSTER_CIDR ...`.
 */
export function upEnvironment(flags: Partial<Record<UpEnvFlag, string | undefined>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [flag, variable] of Object.entries(UP_ENV_FLAGS) as Array<[UpEnvFlag, ConfigEnvVar]>) {
    const value = flags[flag];
    if (value !== undefined) env[variable] = value;
  }
  try {
    // As node-1 is started (startNodeAgent): the cluster-wide settings, the node-agent's own
    // (the scheduler), and a pool that must not contain the nodes' addresses 127.0.1.N.
    loadNodeAgentConfig({ ...env, KUBEWIRE_NODE_NAME: "node-1", KUBEWIRE_HOST_ADDRESS: "127.0.1.1" });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const flag = (Object.keys(UP_ENV_FLAGS) as UpEnvFlag[]).find((f) => UP_ENV_FLAGS[f] === err.variable);
    const detail = err.message.slice(err.variable.length + 2);
    // The CIDR flags keep the wording `up` always had for a malformed --cluster-cidr.
    if (flag && /^not an aligned IPv4 CIDR/.test(detail)) throw new Error(`--${flag}: ${JSON.stringify(flags[flag])} is not an aligned IPv4 CIDR (e.g. ${flag === "lb-cidr" ? "127.0.2.0/24" : "10.244.0.0/16"})`);
    throw new Error(flag ? `--${flag}: ${detail}` : err.message);
  }
  return env;
}

export function findNatsServer(): string | undefined {
  const explicit = process.env.KUBEWIRE_NATS_SERVER;
  if (explicit) return explicit;
  const found = spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" });
  const path = found.stdout.trim();
  return found.status === 0 && path ? path : undefined;
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolvePort(addr.port) : reject(new Error("no port"))));
    });
  });
}

function launch(name: string, command: string, args: string[], opts: SpawnOptions): ManagedProcess {
  mkdirSync(opts.logDir, { recursive: true });
  const logFile = join(opts.logDir, `${name}.log`);
  const fd = openSync(logFile, "a");
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", fd, fd],
    detached: opts.detached ?? false,
  });
  closeSync(fd);
  if (opts.detached) child.unref();
  const exited = new Promise<number | string>((res) => child.once("exit", (code, signal) => res(code ?? signal ?? -1)));
  if (child.pid === undefined) throw new Error(`could not start ${name}: ${command}`);
  return { name, pid: child.pid, logFile, child, exited };
}

/**
 * Starts a nats-server with its config in `<dataDir>/nats.conf` (cluster/nats-server-config.ts):
 * JetStream in `dataDir`, TLS and operator auth when `security` is given, routes to the other
 * servers when `cluster` is.
 */
export async function startNats(
  opts: SpawnOptions & { dataDir: string; port?: number; name?: string; security?: NatsServerSecurity; cluster?: { name: string; port: number; routes: string[] }; monitorPort?: number },
): Promise<ManagedProcess & { url: string; port: number; configFile: string }> {
  const port = opts.port ?? (await freePort());
  const name = opts.name ?? "nats";
  mkdirSync(opts.dataDir, { recursive: true });
  const configFile = join(opts.dataDir, "nats.conf");
  const config = renderNatsServerConfig({
    serverName: name,
    host: "127.0.0.1",
    port,
    storeDir: opts.dataDir,
    ...(opts.security ? { security: opts.security } : {}),
    ...(opts.cluster ? { cluster: { ...opts.cluster, host: "127.0.0.1" } } : {}),
    ...(opts.monitorPort !== undefined ? { monitorPort: opts.monitorPort } : {}),
  });
  writeFileSync(configFile, config, { mode: 0o600 });
  // Routed servers wait for each other to elect JetStream leaders: listening is enough here.
  const proc = await launchNats(name, configFile, port, opts);
  return { ...proc, url: `${opts.security ? "tls" : "nats"}://127.0.0.1:${port}`, port, configFile };
}

/**
 * The cluster's NATS: one server ("nats", in `<dir>/nats`), or `count` servers ("nats-1".. in
 * `<dir>/nats-N`) routed into one NATS cluster, each listing every route (its own is skipped by
 * the server), started together since JetStream waits for a quorum of them.
 */
export async function startNatsServers(
  opts: SpawnOptions & { dir: string; count: number; security?: NatsServerSecurity },
): Promise<Array<ManagedProcess & { url: string; port: number; configFile: string; dataDir: string; monitorPort?: number }>> {
  if (opts.count === 1) {
    const dataDir = join(opts.dir, "nats");
    return [{ ...(await startNats({ ...opts, dataDir })), dataDir }];
  }
  // Client, route and monitoring ports: the monitoring endpoint shows whether a server caught up.
  const ports = await distinctFreePorts(opts.count * 3);
  const routes = ports.slice(opts.count, 2 * opts.count).map((p) => `nats-route://127.0.0.1:${p}`);
  return Promise.all(
    Array.from({ length: opts.count }, async (_, i) => {
      const dataDir = join(opts.dir, `nats-${i + 1}`);
      const monitorPort = ports[2 * opts.count + i]!;
      const server = await startNats({ ...opts, dataDir, name: `nats-${i + 1}`, port: ports[i]!, cluster: { name: "kubewire", port: ports[opts.count + i]!, routes }, monitorPort });
      return { ...server, dataDir, monitorPort };
    }),
  );
}

/** `urls` (comma separated) with the `index`th first (1-based, wrapping): spreads node-agents over the servers. */
export function homeServerFirst(urls: string, index: number): string {
  const list = urls.split(",");
  const first = (index - 1) % list.length;
  return [...list.slice(first), ...list.slice(0, first)].join(",");
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

async function launchNats(name: string, configFile: string, port: number, opts: SpawnOptions): Promise<ManagedProcess> {
  const bin = findNatsServer();
  if (!bin) throw new Error("nats-server not found: install it (Debian: apt-get install -y nats-server) or set KUBEWIRE_NATS_SERVER");
  const proc = launch(name, bin, ["-c", configFile], opts);
  await waitForPort(port, proc);
  return proc;
}

function tsProcess(name: string, entry: string, opts: SpawnOptions, nodeFlags: string[] = []): ManagedProcess {
  // KUBEWIRE_PROFILE_DIR: write a V8 CPU profile of each process there on exit (where the time goes).
  const profile = process.env.KUBEWIRE_PROFILE_DIR ? ["--cpu-prof", "--cpu-prof-dir", join(process.env.KUBEWIRE_PROFILE_DIR, name)] : [];
  return launch(name, process.execPath, [...nodeFlags, ...profile, "--import", TSX_LOADER, join(REPO_ROOT, entry)], opts);
}

/**
 * V8 flags of every node-agent. A small young generation (2 x 4 MiB instead of up to 2 x 16)
 * keeps what a flood allocates from inflating the committed heap: with the memory valve
 * (node-agent/memory.ts) a node under a flood of fragments or SYNs grows by tens of MiB, not
 * hundreds. Also in deploy/Dockerfile and docker-compose.yml.
 */
export const NODE_AGENT_NODE_FLAGS = ["--max-semi-space-size=4"];

export function startControlPlane(natsUrl: string, opts: SpawnOptions): ManagedProcess {
  return tsProcess("control-plane", "control-plane/main.ts", { ...opts, env: { ...opts.env, KUBEWIRE_NATS_URL: natsUrl } });
}

/** Node N binds its real sockets to 127.0.1.N, as DESIGN.md lays out. */
export function startNodeAgent(natsUrl: string, nodeName: string, index: number, opts: SpawnOptions): ManagedProcess {
  return tsProcess(
    nodeName,
    "node-agent/main.ts",
    { ...opts, env: { ...opts.env, KUBEWIRE_NATS_URL: natsUrl, KUBEWIRE_NODE_NAME: nodeName, KUBEWIRE_HOST_ADDRESS: opts.env?.KUBEWIRE_HOST_ADDRESS ?? `127.0.1.${index}` } },
    NODE_AGENT_NODE_FLAGS,
  );
}

async function waitForPort(port: number, proc: ManagedProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let dead: number | string | undefined;
  void proc.exited.then((code) => (dead = code));
  while (Date.now() < deadline) {
    if (dead !== undefined) throw new Error(`${proc.name} exited (${dead}) before listening; see ${proc.logFile}`);
    const open = await new Promise<boolean>((res) => {
      const s = tcpConnect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), res(true)));
      s.once("error", () => res(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${proc.name} not listening on ${port} after ${timeoutMs} ms; see ${proc.logFile}`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the PID is gone. */
export async function stopPid(pid: number, graceMs = 5000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  if (isAlive(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
    while (isAlive(pid)) await new Promise((r) => setTimeout(r, 10));
  }
}
