/**
 * The security material of the docker compose set-up (docker-compose.yml), made by its one-shot
 * `pki` service (control-plane/pki.ts) before any other service starts: the material of
 * cluster/security.ts, made once for the compose file's bootstrap token and kept on the `pki`
 * volume, which no other service mounts; then, for each service, a volume with only what it
 * needs (read-only there):
 *
 * - nats: its config (operator, accounts, TLS, JetStream on /data, monitoring for the health
 *   check), its certificate and key, the CA. With several NATS servers (KUBEWIRE_NATS_SERVERS,
 *   deploy/compose-nats-cluster.yml), one config per server, `<service>.conf`, naming it and
 *   routing it to the others with mutual TLS; the one certificate is valid for every name;
 * - the control plane: the CA, its credentials and the issuer it signs node identities with;
 * - the nodes: the CA alone. A node joins with the token and keeps the identity it is issued in
 *   its container (KUBEWIRE_NATS_CREDS), never seeing another's secrets.
 *
 * The CLI's credentials stay on the `pki` volume: `kubewire attach --compose` copies them out of
 * the pki container. A second run (every `docker compose up`) makes nothing new: it checks the
 * token and the servers, and rewrites only files whose content differs, each by rename, so a
 * reader never sees half a file. Paths are the same in the pki container and in the service's.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tokensEqual, type NatsTrust } from "./nats-auth.ts";
import { renderNatsServerConfig } from "./nats-server-config.ts";
import { createClusterSecurity } from "./security.ts";

export interface ComposePkiLayout {
  /** The state dir of cluster/security.ts (the material in its pki/): the `pki` volume. */
  stateDir: string;
  /** One directory per consumer, each a volume of its own. */
  nats: string;
  controlPlane: string;
  node: string;
}

/** Where docker-compose.yml mounts the volumes (and the Dockerfile makes their mount points, owned by the image's user). */
export const COMPOSE_PKI: ComposePkiLayout = {
  stateDir: "/var/lib/kubewire",
  nats: "/etc/kubewire/nats",
  controlPlane: "/etc/kubewire/control-plane",
  node: "/etc/kubewire/node",
};

/** The files each consumer's directory holds, and which of them are secret (0600). */
export const COMPOSE_PKI_FILES = {
  nats: { "nats-server.conf": false, "nats-server.pem": false, "nats-server.key": true, "ca.pem": false },
  controlPlane: { "ca.pem": false, "control-plane.creds": true, "issuer.json": true },
  node: { "ca.pem": false },
} as const satisfies Record<Exclude<keyof ComposePkiLayout, "stateDir">, Record<string, boolean>>;

/** The nats service's server: its name, client port, JetStream store (a volume) and monitoring port (the health check's). */
export const COMPOSE_NATS = { serverName: "kubewire", host: "0.0.0.0", port: 4222, storeDir: "/data", monitorPort: 8222 } as const;

/** The NATS cluster the servers form when there are several: its name, and the route port each listens on. */
export const COMPOSE_NATS_CLUSTER = { name: "kubewire", host: "0.0.0.0", port: 6222 } as const;

/** The compose file's one NATS service. */
export const COMPOSE_NATS_SERVERS = ["nats"] as const;

/** What the NATS certificate is valid for: each server's service name on the compose network, and the published ports on the host. */
export function composeNatsHosts(servers: readonly string[] = COMPOSE_NATS_SERVERS): { dnsNames: string[]; ips: string[] } {
  return { dnsNames: [...servers, "localhost"], ips: ["127.0.0.1"] };
}

/** The nats share's files for `servers`: one server's config is nats-server.conf; each of several has its own `<service>.conf`. */
export function composeNatsFiles(servers: readonly string[] = COMPOSE_NATS_SERVERS): Record<string, boolean> {
  if (servers.length === 1) return COMPOSE_PKI_FILES.nats;
  const { "nats-server.conf": _single, ...rest } = COMPOSE_PKI_FILES.nats;
  return { ...Object.fromEntries(servers.map((s) => [`${s}.conf`, false])), ...rest };
}

/** The CLI's credentials and the CA, in the pki container. */
export function composeCliFiles(layout: ComposePkiLayout = COMPOSE_PKI): { ca: string; creds: string } {
  return { ca: join(layout.stateDir, "pki", "ca.pem"), creds: join(layout.stateDir, "pki", "cli.creds") };
}

/**
 * The nats service's config: the server's files as the nats container sees them. For `server`,
 * one of several: named after its service (JetStream's peers must be named apart), with a route
 * to every server (its own route it skips).
 */
export function composeNatsConfig(trust: NatsTrust, layout: ComposePkiLayout = COMPOSE_PKI, server?: { name: string; servers: readonly string[] }): string {
  const routes = (server?.servers ?? []).map((s) => `nats-route://${s}:${COMPOSE_NATS_CLUSTER.port}`);
  return renderNatsServerConfig({
    ...COMPOSE_NATS,
    ...(server ? { serverName: server.name, cluster: { ...COMPOSE_NATS_CLUSTER, routes } } : {}),
    security: { trust, certFile: join(layout.nats, "nats-server.pem"), keyFile: join(layout.nats, "nats-server.key"), caFile: join(layout.nats, "ca.pem") },
  });
}

/** In the material: the NATS services it was made for, comma separated. */
const NATS_SERVERS_FILE = "nats-servers";

export class ComposePkiError extends Error {
  override readonly name = "ComposePkiError";
}

/**
 * Makes the material for `token` and the NATS services `servers` unless it exists, then fills
 * each consumer's directory. Material made for another token is an error: new material would
 * lock out every node and the control plane, and the JetStream store belongs to the old account.
 * So are other servers: the certificate names them, and a store does not move between one server
 * and a cluster.
 */
export async function provisionComposePki(
  token: string,
  layout: ComposePkiLayout = COMPOSE_PKI,
  servers: readonly string[] = COMPOSE_NATS_SERVERS,
): Promise<{ created: boolean; written: string[] }> {
  const pki = join(layout.stateDir, "pki");
  let created = false;
  if (!existsSync(join(pki, "trust.json"))) {
    // Made aside and renamed into place: a run killed halfway leaves no partial material behind.
    const staging = join(layout.stateDir, ".staging");
    rmSync(staging, { recursive: true, force: true });
    await createClusterSecurity(staging, composeNatsHosts(servers), { token });
    writeFileSync(join(staging, "pki", NATS_SERVERS_FILE), `${servers.join(",")}\n`);
    rmSync(pki, { recursive: true, force: true });
    renameSync(join(staging, "pki"), pki);
    rmSync(staging, { recursive: true, force: true });
    created = true;
  }
  const kept = readFileSync(join(pki, "bootstrap-token"), "utf8").trim();
  if (!tokensEqual(kept, token)) {
    throw new ComposePkiError(
      `the material in ${pki} was made for another bootstrap token than KUBEWIRE_BOOTSTRAP_TOKEN: put the old token back, or start over with \`docker compose down -v\` (which deletes the cluster's state)`,
    );
  }
  // Material from before KUBEWIRE_NATS_SERVERS was made for the one server `nats`.
  const madeFor = existsSync(join(pki, NATS_SERVERS_FILE)) ? readFileSync(join(pki, NATS_SERVERS_FILE), "utf8").trim().split(",") : [...COMPOSE_NATS_SERVERS];
  if ([...madeFor].sort().join(",") !== [...servers].sort().join(",")) {
    throw new ComposePkiError(
      `the material in ${pki} was made for the NATS servers ${madeFor.join(",")}, not ${servers.join(",")} (KUBEWIRE_NATS_SERVERS): the store cannot move between one NATS server and a cluster; use the compose files it was made with, or start over with \`docker compose down -v\` (which deletes the cluster's state)`,
    );
  }
  const trust = JSON.parse(readFileSync(join(pki, "trust.json"), "utf8")) as NatsTrust;
  const configs = new Map(servers.length === 1 ? [["nats-server.conf", composeNatsConfig(trust, layout)]] : servers.map((name) => [`${name}.conf`, composeNatsConfig(trust, layout, { name, servers })]));
  const sourceOf = (file: string) => configs.get(file) ?? readFileSync(join(pki, file), "utf8");
  const shares: Record<keyof typeof COMPOSE_PKI_FILES, Record<string, boolean>> = { ...COMPOSE_PKI_FILES, nats: composeNatsFiles(servers) };
  const written: string[] = [];
  for (const [consumer, files] of Object.entries(shares) as Array<[keyof typeof COMPOSE_PKI_FILES, Record<string, boolean>]>) {
    const dir = layout[consumer];
    mkdirSync(dir, { recursive: true });
    for (const [file, secret] of Object.entries(files)) {
      if (writeIfChanged(join(dir, file), sourceOf(file), secret ? 0o600 : 0o644)) written.push(join(dir, file));
    }
  }
  return { created, written };
}

/** Writes `text` to `file` (by rename) unless it holds that already with that mode; whether it wrote. */
function writeIfChanged(file: string, text: string, mode: number): boolean {
  if (existsSync(file) && readFileSync(file, "utf8") === text && (statSync(file).mode & 0o777) === mode) return false;
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode); // a stale tmp file keeps its mode through writeFileSync
  renameSync(tmp, file);
  return true;
}
