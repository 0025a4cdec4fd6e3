/**
 * A cluster that docker compose runs (docker-compose.yml), for the CLI:
 * - `kubewire attach --compose`: the state file a `kubewire up` would write, for the ports the
 *   compose project publishes on 127.0.0.1, so every command (exec, trace, observe, chaos...)
 *   works on it. The API's certificate is the one it serves now (trust on first use, as
 *   `ssh` does; the compose set-up makes a self-signed one at start). NATS's CA and the CLI's
 *   NATS credentials are copied out of the project's pki container, which made them
 *   (cluster/compose-pki.ts).
 * - Process faults on its containers: `kubewire chaos kill|pause|resume|restart` is `docker kill`,
 *   `docker pause`, `docker unpause`, `docker restart` of the container that runs the node (named
 *   by its hostname, as every node-agent of the compose file names itself), NATS or the control
 *   plane.
 * The parsing of docker's output is pure; docker runs at the edge (execFile, bounded in time).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { composeCliFiles } from "../cluster/compose-pki.ts";

export interface ComposeRef {
  /** The compose project (docker compose -p). */
  readonly project: string;
}

/** A container of the project: its id, compose service, hostname (a node's name) and state. */
export interface ComposeContainer {
  readonly id: string;
  readonly service: string;
  readonly hostname: string;
  /** running, paused, exited... */
  readonly state: string;
}

export function docker(args: readonly string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("docker", [...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: err && !stderr ? (err as Error).message : String(stderr) });
    });
  });
}

/** `docker inspect` of the project's containers (JSON array) -> what the CLI needs of each. */
export function readContainers(inspectJson: string): ComposeContainer[] {
  let list: unknown;
  try {
    list = JSON.parse(inspectJson);
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  return list.flatMap((c: { Id?: unknown; Config?: { Hostname?: unknown; Labels?: Record<string, unknown> }; State?: { Status?: unknown } }) => {
    const service = c?.Config?.Labels?.["com.docker.compose.service"];
    if (typeof c?.Id !== "string" || typeof service !== "string") return [];
    return [{ id: c.Id, service, hostname: typeof c.Config?.Hostname === "string" ? c.Config.Hostname.toLowerCase() : "", state: typeof c.State?.Status === "string" ? c.State.Status : "unknown" }];
  });
}

/**
 * The services a chaos target names as such: NATS (`nats`, and `nats-2`, `nats-3` of
 * deploy/compose-nats-cluster.yml) and the control plane. Their containers run no node, nor does
 * the one-shot pki's, which is no chaos target at all.
 */
export function isComposeServiceTarget(service: string): boolean {
  return service === "control-plane" || /^nats(?:-\d+)?$/.test(service);
}

/**
 * The container a chaos target names: NATS and `control-plane` by service, a node by its name
 * (the hostname it took: `gateway`, or a replica's container id prefix).
 */
export function containerFor(containers: readonly ComposeContainer[], target: string): { kind: "ok"; container: ComposeContainer } | { kind: "invalid"; message: string } {
  const byService = isComposeServiceTarget(target) ? containers.filter((c) => c.service === target) : [];
  const nodes = containers.filter((c) => !isComposeServiceTarget(c.service) && c.service !== "pki");
  const found = byService.length > 0 ? byService : nodes.filter((c) => c.hostname === target);
  if (found.length === 1) return { kind: "ok", container: found[0]! };
  const names = [...new Set(containers.filter((c) => c.service !== "pki").map((c) => (isComposeServiceTarget(c.service) ? c.service : c.hostname)))].sort();
  if (found.length > 1) return { kind: "invalid", message: `"${target}" names ${found.length} containers of the project: ${found.map((c) => c.id.slice(0, 12)).join(", ")}` };
  return { kind: "invalid", message: `no container of this compose project runs "${target}"; there are: ${names.join(", ")}` };
}

export async function projectContainers(ref: ComposeRef): Promise<ComposeContainer[]> {
  const ids = await docker(["ps", "-aq", "--filter", `label=com.docker.compose.project=${ref.project}`], 30_000);
  if (ids.code !== 0) throw new Error(`docker ps: ${ids.stderr.trim()}`);
  const list = ids.stdout.split("\n").filter(Boolean);
  if (list.length === 0) return [];
  const inspect = await docker(["inspect", ...list], 30_000);
  if (inspect.code !== 0) throw new Error(`docker inspect: ${inspect.stderr.trim()}`);
  return readContainers(inspect.stdout);
}

/** The compose projects that run a kubewire control plane on this engine. */
export async function kubewireProjects(): Promise<string[]> {
  const r = await docker(["ps", "--filter", "label=com.docker.compose.service=control-plane", "--format", '{{.Label "com.docker.compose.project"}}'], 30_000);
  if (r.code !== 0) throw new Error(`docker ps: ${r.stderr.trim() || "no Docker engine answers"}`);
  return [...new Set(r.stdout.split("\n").filter(Boolean))].sort();
}

/** The PEM of the certificate a TLS server presents (not verified: trust on first use). */
export function servedCertificate(host: string, port: number, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port, rejectUnauthorized: false }, () => {
      const der = socket.getPeerCertificate().raw;
      socket.end();
      if (!der) return reject(new Error("the server presented no certificate"));
      resolve(`-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/(.{64})/g, "$1\n").trimEnd()}\n-----END CERTIFICATE-----\n`);
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error("TLS handshake timed out")));
    socket.once("error", reject);
  });
}

export interface AttachOptions {
  readonly project: string | undefined;
  readonly apiUrl: string;
  readonly natsUrl: string;
  readonly token: string;
  readonly dnsPort: number;
}

/** The compose file's defaults: what its services publish on 127.0.0.1, and its dev token. */
export const COMPOSE_DEFAULTS = { apiUrl: "https://127.0.0.1:6443", natsUrl: "tls://127.0.0.1:4222", token: "kubewire-compose-dev-token-change-me", dnsPort: 1053 } as const;

/** The cluster CA and the CLI's NATS credentials (PEM, .creds text), copied out of the project's pki container. */
export async function composeCliMaterial(ref: ComposeRef): Promise<{ ca: string; creds: string }> {
  const pki = (await projectContainers(ref)).filter((c) => c.service === "pki");
  if (pki.length !== 1) throw new Error(`compose project ${ref.project} has ${pki.length} pki containers, want 1 (docker compose up -d makes it)`);
  // docker cp writes files, not to stdout: into a directory only this user reads, removed after.
  const tmp = mkdtempSync(join(tmpdir(), "kubewire-attach-"));
  try {
    const out: Record<string, string> = {};
    for (const [what, path] of Object.entries(composeCliFiles())) {
      const r = await docker(["cp", `${pki[0]!.id}:${path}`, join(tmp, what)], 30_000);
      if (r.code !== 0) throw new Error(`docker cp ${path} out of the pki container: ${r.stderr.trim()}`);
      out[what] = readFileSync(join(tmp, what), "utf8");
    }
    return { ca: out.ca!, creds: out.creds! };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Which project to attach to: the one named, or the only one running a kubewire control plane. */
export function chooseProject(named: string | undefined, running: readonly string[]): { kind: "ok"; project: string } | { kind: "invalid"; message: string } {
  if (named !== undefined) return running.includes(named) ? { kind: "ok", project: named } : { kind: "invalid", message: `compose project "${named}" runs no kubewire control plane here${running.length ? ` (these do: ${running.join(", ")})` : ""}` };
  if (running.length === 1) return { kind: "ok", project: running[0]! };
  if (running.length === 0) return { kind: "invalid", message: "no compose project runs a kubewire control plane here (docker compose up -d first)" };
  return { kind: "invalid", message: `several compose projects run kubewire: ${running.join(", ")}; name one with -p` };
}
