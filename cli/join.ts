/**
 * `kubewire join`: a node-agent on this machine joins a cluster running elsewhere, as
 * `kubeadm join` does: it trusts the cluster's NATS by the CA pin `kubewire up` printed, joins
 * with the bootstrap token (node-agent/bootstrap.ts), and keeps its issued identity in its own
 * state dir, where `kubewire down --state-dir` stops it.
 */
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { join as pathJoin } from "node:path";
import { BOOTSTRAP_TOKEN_PATTERN } from "../cluster/nats-auth.ts";
import { isDns1123Label } from "../cluster/syntax.ts";
import { isAlive, startNodeAgent, stopPid, type LaunchSpec } from "./processes.ts";
import { nodeCredsFile } from "../cluster/security.ts";
import { readState, writeState } from "./state.ts";

export const JOIN_USAGE = "usage: kubewire join --nats URL --token TOKEN --ca-cert-hash sha256:HEX --name NODE [--host-address ADDR] [--detach] [--state-dir DIR]";

export interface JoinOptions {
  nats?: string;
  token?: string;
  caCertHash?: string;
  name?: string;
  hostAddress?: string;
  detach: boolean;
  /** Cluster-wide settings, as `up` was given them (upEnvironment): a node must agree with the cluster. */
  env: Record<string, string>;
  dir: string;
}

export class JoinError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Starts the node-agent and waits until it has joined and is ready (or has given up). */
export async function joinCluster(o: JoinOptions, out: (line: string) => void): Promise<{ stop: () => Promise<void> }> {
  if (!o.nats || !o.token || !o.name || !o.caCertHash) throw new JoinError(JOIN_USAGE, 2);
  if (!BOOTSTRAP_TOKEN_PATTERN.test(o.token)) throw new JoinError("--token: want a bootstrap token [a-z0-9]{6}.[a-z0-9]{16} (kubewire up prints the join line)", 2);
  if (!/^sha256:[0-9a-f]{64}$/.test(o.caCertHash)) throw new JoinError("--ca-cert-hash: want sha256:<64 hex digits> (kubewire up prints the join line)", 2);
  if (!isDns1123Label(o.name)) throw new JoinError(`--name: ${JSON.stringify(o.name)} is not a DNS-1123 label`, 2);
  const existing = readState(o.dir);
  if (existing?.processes.some((p) => isAlive(p.pid))) throw new JoinError(`${o.dir} already runs processes; use another --state-dir`);
  const credsFile = nodeCredsFile(o.dir, o.name);
  const env: Record<string, string> = {
    ...o.env,
    KUBEWIRE_NATS_CA_HASH: o.caCertHash,
    KUBEWIRE_NATS_CREDS: credsFile,
    KUBEWIRE_BOOTSTRAP_TOKEN: o.token,
    ...(o.hostAddress ? { KUBEWIRE_HOST_ADDRESS: o.hostAddress } : {}),
  };
  const logDir = pathJoin(o.dir, "logs");
  // The log is appended to: only what this start writes counts (not an earlier run's "ready").
  const logFile = pathJoin(logDir, `${o.name}.log`);
  const offset = existsSync(logFile) ? statSync(logFile).size : 0;
  const proc = startNodeAgent(o.nats, o.name, 1, { logDir, detached: o.detach, env });
  const launch: LaunchSpec = { role: "node", natsUrl: o.nats, index: 1, env };
  writeState({ natsUrl: o.nats, apiUrl: "", token: "", ca: "", stateDir: o.dir, processes: [{ name: o.name, pid: proc.pid, logFile: proc.logFile, launch }], joined: { node: o.name } });
  const stop = async () => {
    await stopPid(proc.pid);
    rmSync(pathJoin(o.dir, "cluster.json"), { force: true });
  };
  // The node-agent logs one line when it is ready (or a fatal one when it gives up); nothing
  // else across the process boundary announces it.
  const deadline = Date.now() + 60_000;
  let exited: number | string | undefined;
  void proc.exited.then((c) => (exited = c));
  for (;;) {
    const lines = existsSync(proc.logFile) ? readFileSync(proc.logFile).subarray(offset).toString("utf8").split("\n") : [];
    const ready = lines.map(parseLine).find((l) => l?.msg === "node-agent ready");
    if (ready) {
      out(`node ${o.name} joined: pod CIDR ${String(ready.podCidr)}, InternalIP ${String(ready.internalIp)}, NATS identity in ${credsFile}`);
      out(`logs: ${proc.logFile}; stop with: kubewire down --state-dir ${o.dir}`);
      return { stop };
    }
    const fatal = lines.map(parseLine).find((l) => l?.level === 60);
    if (exited !== undefined || fatal) {
      await stop();
      throw new JoinError(`node ${o.name} did not join: ${fatal ? `${String(fatal.msg)}: ${String(fatal.err ?? "")}` : `exited (${exited})`}; see ${proc.logFile}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new JoinError(`node ${o.name} not ready after 60 s; see ${proc.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    return line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
