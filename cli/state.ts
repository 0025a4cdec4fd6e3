/**
 * Where a running cluster is recorded: <state dir>/cluster.json, with every PID, the NATS URL
 * and the API's bearer token, so the file is the user's alone (0600, in a 0700 directory when
 * we create it), written to a temporary file and renamed so no reader sees half of it.
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import type { LaunchSpec } from "./processes.ts";
import { readNatsAuth, type NatsClientAuth } from "../cluster/rpc.ts";

export interface ClusterState {
  natsUrl: string;
  /** The cluster CA file and the CLI's NATS credentials (absent for a cluster without NATS security). */
  natsCa?: string;
  natsCreds?: string;
  /** The Kubernetes API (http://127.0.0.1:PORT) and its bearer token. */
  apiUrl: string;
  token: string;
  /** PEM of the API's self-signed serving certificate, its own CA. */
  ca: string;
  stateDir: string;
  /** The cluster DNS port on every node's host address (UDP and TCP). */
  dnsPort?: number;
  processes: ClusterProcess[];
  /** A node that `kubewire join` started here, of a cluster whose API and state live elsewhere. */
  joined?: { node: string };
  /** A docker compose project (`kubewire attach --compose`): process faults act on its containers. */
  compose?: { project: string };
}

export interface ClusterProcess {
  name: string;
  pid: number;
  logFile: string;
  /** How to start it again (`kubewire chaos restart`); absent in state files of older versions. */
  launch?: LaunchSpec;
}

export function stateDir(explicit?: string): string {
  return resolve(explicit ?? process.env.KUBEWIRE_STATE_DIR ?? join(homedir(), ".kubewire"));
}

export function readState(dir: string): ClusterState | undefined {
  const file = join(dir, "cluster.json");
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as ClusterState;
}

export function writeState(state: ClusterState): void {
  mkdirSync(state.stateDir, { recursive: true, mode: 0o700 });
  const file = join(state.stateDir, "cluster.json");
  const tmp = `${file}.${process.pid}.tmp`;
  // mode applies only when the file is created: chmod too, in case a stale tmp file exists.
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** How the CLI connects to a cluster's NATS: its own identity, verifying the cluster CA. */
export function cliNatsAuth(state: ClusterState): NatsClientAuth {
  return readNatsAuth({ ca: state.natsCa, creds: state.natsCreds }, "cli");
}
