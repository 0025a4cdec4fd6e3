/**
 * A cluster's security material, made once by `kubewire up` (and the test harness, and the
 * compose set-up's `pki` service) under
 * `<state dir>/pki`: the cluster CA and the NATS servers' certificate, the NATS trust chain and
 * the issuer key (cluster/nats-auth.ts), credentials for the control plane and the CLI, and the
 * bootstrap token nodes join with. Secrets are 0600 in a 0700 directory. Each process gets the
 * paths it needs in its environment (`envFor`), never another's secrets: a node-agent gets the
 * CA, the token and where to keep the identity it is issued.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  adminPermissions,
  cliPermissions,
  controlPlanePermissions,
  createTrust,
  formatCreds,
  newBootstrapToken,
  newCredentials,
  parseBootstrapToken,
  type NatsIssuer,
  type NatsTrust,
} from "./nats-auth.ts";
import type { NatsServerSecurity } from "./nats-server-config.ts";
import { caCertHash, generateClusterCa, generateNatsServerCert } from "./tls.ts";

export interface ClusterSecurity {
  dir: string;
  token: string;
  trust: NatsTrust;
  issuer: NatsIssuer;
  /** The nats-servers' TLS and auth. */
  server: NatsServerSecurity;
  caFile: string;
  /** kubeadm's pin of the CA (sha256:<hex of its SubjectPublicKeyInfo>), for `kubewire join`. */
  caHash: string;
  issuerFile: string;
  controlPlaneCreds: string;
  cliCreds: string;
}

/** Where node `name` keeps the identity it is issued at join (under the state dir of whoever started it). */
export function nodeCredsFile(stateDir: string, name: string): string {
  return join(stateDir, "nodes", name, "nats.creds");
}

/**
 * Makes the material in `<stateDir>/pki`; `hosts` are the names and addresses the NATS servers
 * are reached by. The bootstrap token is a new random one unless `opts.token` gives it (the
 * compose file's, which its nodes are configured with).
 */
export async function createClusterSecurity(
  stateDir: string,
  hosts: { ips: string[]; dnsNames: string[] } = { ips: ["127.0.0.1"], dnsNames: ["localhost"] },
  opts: { token?: string } = {},
): Promise<ClusterSecurity> {
  if (opts.token !== undefined && !parseBootstrapToken(opts.token)) throw new Error("the bootstrap token must be [a-z0-9]{6}.[a-z0-9]{16}");
  const dir = join(stateDir, "pki");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const secret = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text, { mode: 0o600 });
    chmodSync(file, 0o600);
    return file;
  };
  const token = opts.token ?? newBootstrapToken((n) => randomBytes(n));
  const { trust, issuer } = await createTrust(token);
  const ca = await generateClusterCa();
  const serverCert = await generateNatsServerCert(ca, { ...hosts, account: trust.account });
  const caFile = join(dir, "ca.pem");
  writeFileSync(caFile, ca.cert);
  secret("ca.key", ca.key);
  const certFile = join(dir, "nats-server.pem");
  writeFileSync(certFile, serverCert.cert);
  const keyFile = secret("nats-server.key", serverCert.key);
  writeFileSync(join(dir, "trust.json"), `${JSON.stringify(trust, null, 2)}\n`);
  const issuerFile = secret("issuer.json", `${JSON.stringify(issuer)}\n`);
  secret("bootstrap-token", `${token}\n`);
  const controlPlaneCreds = secret("control-plane.creds", formatCreds(await newCredentials(issuer, "control-plane", controlPlanePermissions())));
  const cliCreds = secret("cli.creds", formatCreds(await newCredentials(issuer, "cli", cliPermissions())));
  return { dir, token, trust, issuer, server: { trust, certFile, keyFile, caFile }, caFile, caHash: caCertHash(ca.cert), issuerFile, controlPlaneCreds, cliCreds };
}

/** Credentials with every right (the test harness, an administrator's tooling), written as `<name>.creds`. */
export async function adminCreds(sec: ClusterSecurity, name = "admin"): Promise<string> {
  const file = join(sec.dir, `${name}.creds`);
  writeFileSync(file, formatCreds(await newCredentials(sec.issuer, name, adminPermissions())), { mode: 0o600 });
  return file;
}

/** The KUBEWIRE_* variables of a process of the cluster: the control plane, or node `node` started from `stateDir`. */
export function envFor(sec: ClusterSecurity, role: { controlPlane: true } | { node: string; stateDir: string }): Record<string, string> {
  if ("controlPlane" in role) {
    return { KUBEWIRE_NATS_CA: sec.caFile, KUBEWIRE_NATS_CREDS: sec.controlPlaneCreds, KUBEWIRE_NATS_ISSUER: sec.issuerFile, KUBEWIRE_BOOTSTRAP_TOKEN: sec.token };
  }
  return { KUBEWIRE_NATS_CA: sec.caFile, KUBEWIRE_NATS_CREDS: nodeCredsFile(role.stateDir, role.node), KUBEWIRE_BOOTSTRAP_TOKEN: sec.token };
}
