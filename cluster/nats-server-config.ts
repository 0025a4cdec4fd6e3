/**
 * A nats-server's configuration file (https://docs.nats.io/running-a-nats-service/configuration),
 * the same for `kubewire up`, the tests and the compose set-up: JetStream on, and, when secured,
 * operator-mode auth with the cluster's account preloaded (cluster/nats-auth.ts) and TLS on
 * client and route links with the cluster CA. With routes, the servers form one cluster and
 * JetStream replicates the store across them. Pure: the caller writes the text where it likes.
 */
import type { NatsTrust } from "./nats-auth.ts";

/** TLS and operator-mode auth of a nats-server (cluster/security.ts makes the files). */
export interface NatsServerSecurity {
  trust: NatsTrust;
  certFile: string;
  keyFile: string;
  caFile: string;
}

export interface NatsServerConfig {
  /** Unique in a cluster (JetStream's Raft groups name their peers by it). */
  serverName: string;
  host: string;
  port: number;
  storeDir: string;
  /** Operator-mode auth and TLS; absent: anonymous plain-text connections (the benchmark baseline only). */
  security?: NatsServerSecurity;
  /** The monitoring endpoint (/jsz, /routez) on `host`, when set. */
  monitorPort?: number;
  /** Routes to the other servers of the cluster (nats-route://host:port, its own may be among them). */
  cluster?: { name: string; host: string; port: number; routes: string[] };
}

const q = (s: string | number) => JSON.stringify(String(s));

export function renderNatsServerConfig(c: NatsServerConfig): string {
  const lines = [
    `server_name: ${q(c.serverName)}`,
    `host: ${q(c.host)}`,
    `port: ${c.port}`,
    `jetstream { store_dir: ${q(c.storeDir)} }`,
  ];
  if (c.monitorPort !== undefined) lines.push(`http: ${q(`${c.host}:${c.monitorPort}`)}`);
  const tls = (verify: boolean) => (c.security ? `tls { cert_file: ${q(c.security.certFile)}, key_file: ${q(c.security.keyFile)}, ca_file: ${q(c.security.caFile)}, timeout: 5${verify ? ", verify: true" : ""} }` : "");
  if (c.security) {
    const t = c.security.trust;
    lines.push(
      `operator: ${q(t.operatorJwt)}`,
      `system_account: ${q(t.systemAccount)}`,
      // The accounts are fixed at `up`: nodes are users of the account, issued without the servers.
      "resolver: MEMORY",
      `resolver_preload: { ${q(t.systemAccount)}: ${q(t.systemAccountJwt)}, ${q(t.account)}: ${q(t.accountJwt)} }`,
      tls(false),
    );
  }
  if (c.cluster) {
    // Routes authenticate by mutual TLS: only a server with a certificate of the cluster CA joins.
    const routes = c.cluster.routes.map(q).join(", ");
    lines.push(`cluster { name: ${q(c.cluster.name)}, host: ${q(c.cluster.host)}, port: ${c.cluster.port}, routes: [${routes}]${c.security ? `, ${tls(true)}` : ""} }`);
  }
  return `${lines.join("\n")}\n`;
}
