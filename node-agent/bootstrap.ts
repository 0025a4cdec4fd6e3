/**
 * A node's NATS identity, as a kubelet gets its client certificate with kubeadm's TLS bootstrap:
 * a node with credentials (KUBEWIRE_NATS_CREDS) uses them; a node without joins with the
 * bootstrap token. It makes its own user key, connects as the token's bootstrap user (which may
 * only ask to join), asks the control plane for a JWT for its public key under its name, and
 * keeps the credentials for its restarts. The seed never leaves the node.
 *
 * Discovery, as kubeadm's: a node given only a pin of the cluster CA (KUBEWIRE_NATS_CA_HASH)
 * takes the CA from the server's TLS handshake if its public key matches the pin, and the
 * cluster's NATS account from the server certificate it verified.
 */
import { X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { dirname } from "node:path";
import { connect as tlsConnect } from "node:tls";
import type { Logger } from "../cluster/log.ts";
import { bootstrapUser, formatCreds, newUserKey, parseCredsText, type NatsCredentials } from "../cluster/nats-auth.ts";
import type { NatsConnection } from "nats";
import { connectNats, readNatsAuth, request, RpcError, type NatsClientAuth } from "../cluster/rpc.ts";
import { caCertHash, NATS_ACCOUNT_URI_PREFIX } from "../cluster/tls.ts";
import { ErrorCode, Subjects, type JoinNodeRequest, type JoinNodeResponse } from "../cluster/types.ts";

export interface NodeIdentityConfig {
  natsUrl: string;
  nodeName: string;
  natsCa?: string;
  natsCaHash?: string;
  natsCreds?: string;
  bootstrapToken?: string;
}

export class BootstrapError extends Error {
  override readonly name = "BootstrapError";
}

/**
 * The node's NATS connection with its identity. Kept credentials NATS refuses (issued by another
 * cluster, say, in a reused state dir) are dropped and the node joins again with the token, as a
 * kubelet whose client certificate is refused falls back to its bootstrap kubeconfig.
 */
export async function connectAsNode(cfg: NodeIdentityConfig, log: Logger): Promise<NatsConnection> {
  const name = `node-agent ${cfg.nodeName}`;
  const kept = !!cfg.natsCreds && existsSync(cfg.natsCreds);
  const auth = await nodeIdentity(cfg, log);
  try {
    return await connectNats(cfg.natsUrl, name, auth);
  } catch (err) {
    if ((err as { code?: string }).code !== "AUTHORIZATION_VIOLATION" || !kept) throw err;
    if (!cfg.bootstrapToken) throw new BootstrapError(`NATS refused the credentials in ${cfg.natsCreds} and there is no bootstrap token to join again with`);
    log.warn({ creds: cfg.natsCreds }, "NATS refused the kept identity; joining again with the bootstrap token");
    rmSync(cfg.natsCreds!, { force: true });
    return connectNats(cfg.natsUrl, name, await nodeIdentity(cfg, log));
  }
}

/** The node's NATS auth: its kept credentials, or new ones from joining with the token. */
export async function nodeIdentity(cfg: NodeIdentityConfig, log: Logger): Promise<NatsClientAuth> {
  const node = cfg.nodeName;
  if (!cfg.natsCa && !cfg.natsCaHash && !cfg.natsCreds && !cfg.bootstrapToken) return {}; // an unsecured cluster
  if (cfg.natsCreds && existsSync(cfg.natsCreds) && cfg.natsCa) return { ...readNatsAuth({ ca: cfg.natsCa, creds: cfg.natsCreds }, node), inOrder: true };
  const server = await discover(cfg);
  if (cfg.natsCreds && existsSync(cfg.natsCreds)) {
    const creds = parseCredsText(readFileSync(cfg.natsCreds, "utf8"));
    if (!creds) throw new BootstrapError(`${cfg.natsCreds} holds no NATS user JWT and seed`);
    return { creds, ca: server.ca, identity: node, inOrder: true };
  }
  if (!cfg.bootstrapToken) throw new BootstrapError(`no NATS credentials at ${cfg.natsCreds ?? "(KUBEWIRE_NATS_CREDS unset)"} and no bootstrap token to join with`);
  const creds = await join(cfg, cfg.bootstrapToken, server, log);
  if (cfg.natsCreds) {
    mkdirSync(dirname(cfg.natsCreds), { recursive: true, mode: 0o700 });
    const tmp = `${cfg.natsCreds}.${process.pid}.tmp`;
    writeFileSync(tmp, formatCreds(creds), { mode: 0o600 });
    renameSync(tmp, cfg.natsCreds);
  }
  log.info({ creds: cfg.natsCreds }, "joined the cluster: NATS identity issued");
  return { creds, ca: server.ca, identity: node, inOrder: true };
}

/** Asks to join until the control plane answers (it may start after the node); a refusal is final. */
async function join(cfg: NodeIdentityConfig, token: string, server: { ca: string; account: string }, log: Logger): Promise<NatsCredentials> {
  const key = newUserKey();
  const jwt = await bootstrapUser(token, server.account, key);
  const seed = new TextDecoder().decode(key.getSeed());
  const nc = await connectNats(cfg.natsUrl, `bootstrap ${cfg.nodeName}`, { creds: { jwt, seed }, ca: server.ca, identity: "bootstrap" }).catch((err: Error) => {
    throw new BootstrapError(`cannot connect with the bootstrap token (wrong token?): ${err.message}`);
  });
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const req: JoinNodeRequest = { token, name: cfg.nodeName, publicKey: key.getPublicKey() };
        const res = await request<JoinNodeResponse>(nc, Subjects.joinNode, req, 5000);
        return { jwt: res.jwt, seed };
      } catch (err) {
        // Nobody answers yet (the control plane starts after us): retry; a refusal is final.
        if (!(err instanceof RpcError) || (err.code !== ErrorCode.NotFound && err.code !== ErrorCode.Internal)) throw new BootstrapError(`join refused: ${(err as Error).message}`);
        if (attempt % 20 === 1) log.warn({ attempt, err: err.message }, "control plane not answering the join yet; retrying");
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await nc.close();
  }
}

/** The cluster CA (from its file, or from the handshake when it matches the pin) and the cluster's account. */
async function discover(cfg: NodeIdentityConfig): Promise<{ ca: string; account: string }> {
  const chain = await serverChain(cfg.natsUrl.split(",")[0]!);
  const leaf = chain[0];
  if (!leaf) throw new BootstrapError(`${cfg.natsUrl} sent no certificate`);
  let ca: X509Certificate | undefined;
  if (cfg.natsCa) {
    ca = new X509Certificate(readFileSync(cfg.natsCa, "utf8"));
  } else if (cfg.natsCaHash) {
    ca = chain.find((c) => c.ca && caCertHash(c.toString()) === cfg.natsCaHash);
    if (!ca) throw new BootstrapError(`no CA in ${cfg.natsUrl}'s certificate chain matches ${cfg.natsCaHash}`);
  } else {
    throw new BootstrapError("KUBEWIRE_NATS_CA or KUBEWIRE_NATS_CA_HASH is needed to trust the NATS server");
  }
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) throw new BootstrapError(`${cfg.natsUrl}'s certificate is not signed by the cluster CA`);
  const account = (leaf.subjectAltName ?? "").split(/,\s*/).find((n) => n.startsWith(`URI:${NATS_ACCOUNT_URI_PREFIX}`))?.slice(`URI:${NATS_ACCOUNT_URI_PREFIX}`.length);
  if (!account || !/^A[A-Z2-7]{55}$/.test(account)) throw new BootstrapError(`${cfg.natsUrl}'s certificate names no NATS account`);
  return { ca: ca.toString(), account };
}

/**
 * The certificates a nats-server presents, leaf first. NATS sends its INFO line in plain text
 * and then upgrades the connection to TLS (nats-server before 2.10's handshake_first): read the
 * line, then shake hands without verifying (the caller verifies against the CA or the pin).
 */
async function serverChain(url: string, timeoutMs = 5000): Promise<X509Certificate[]> {
  const u = new URL(url.includes("://") ? url : `nats://${url}`);
  const host = u.hostname;
  const port = Number(u.port || 4222);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, host);
    const timer = setTimeout(() => fail(new BootstrapError(`no TLS handshake with ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err instanceof BootstrapError ? err : new BootstrapError(`cannot reach NATS at ${host}:${port}: ${err.message}`));
    };
    socket.once("error", fail);
    let info = "";
    const onData = (chunk: Buffer) => {
      info += chunk.toString("latin1");
      if (!info.includes("\r\n")) return;
      socket.off("data", onData);
      if (!info.startsWith("INFO ") || !/"tls_required"\s*:\s*true/.test(info)) return fail(new BootstrapError(`${host}:${port} does not require TLS`));
      const tls = tlsConnect({ socket, rejectUnauthorized: false, servername: /^[0-9.]+$/.test(host) ? undefined : host });
      tls.once("error", fail);
      tls.once("secureConnect", () => {
        const out: X509Certificate[] = [];
        let c = tls.getPeerCertificate(true);
        const seen = new Set<string>();
        while (c && c.raw && !seen.has(c.fingerprint256)) {
          seen.add(c.fingerprint256);
          out.push(new X509Certificate(c.raw));
          c = c.issuerCertificate;
        }
        clearTimeout(timer);
        tls.destroy();
        resolve(out);
      });
    };
    socket.on("data", onData);
  });
}

