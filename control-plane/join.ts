/**
 * Joining nodes (kubeadm's TLS bootstrap, with NATS identities for client certificates): the
 * bootstrap token lives as kube-system's `bootstrap-token-<id>` Secret, as kubeadm keeps it
 * (k8s.io/cluster-bootstrap/token/api); a join request that presents it gets a NATS user JWT
 * for the node's own public key, with the node's permissions (cluster/nats-auth.ts), named after
 * the node. Deleting the Secret, or its expiration passing, ends joins with that token.
 */
import { readFileSync } from "node:fs";
import type { Logger } from "../cluster/log.ts";
import { issueUser, nodePermissions, parseBootstrapToken, tokensEqual, type NatsIssuer } from "../cluster/nats-auth.ts";
import { rfc3339 } from "../cluster/meta.ts";
import { nodeIsReady } from "../cluster/kube-objects.ts";
import { resourceByKind } from "../cluster/resources.ts";
import { RpcError } from "../cluster/rpc.ts";
import { isDns1123Label } from "../cluster/syntax.ts";
import { ErrorCode, type JoinNodeRequest, type JoinNodeResponse } from "../cluster/types.ts";
import type { KubeObject } from "../cluster/store.ts";
import type { Registry } from "./api/registry.ts";
import { ApiError } from "./api/status.ts";

const SECRETS = resourceByKind("Secret");
const NODES = resourceByKind("Node");
const TOKEN_NAMESPACE = "kube-system";
/** The Secret kubeadm writes for a bootstrap token (bootstraputil, the `bootstrap.kubernetes.io/token` type); ttlMs 0: no expiration. */
export function bootstrapTokenSecret(token: string, now: Date, ttlMs: number): KubeObject {
  const t = parseBootstrapToken(token);
  if (!t) throw new Error("not a bootstrap token");
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "bootstrap.kubernetes.io/token",
    metadata: { name: `bootstrap-token-${t.id}`, namespace: TOKEN_NAMESPACE },
    data: {
      description: b64("made by kubewire up: nodes join with it (kubewire join)"),
      "token-id": b64(t.id),
      "token-secret": b64(t.secret),
      ...(ttlMs > 0 ? { expiration: b64(rfc3339(new Date(now.getTime() + ttlMs))) } : {}),
      "usage-bootstrap-authentication": b64("true"),
    },
  } as unknown as KubeObject;
}

/**
 * Whether `token` is the one `secret` holds and may still authenticate: its id and secret match,
 * it is for authentication, and it has not expired. A reason when not (never the token itself).
 */
export function checkBootstrapToken(secret: KubeObject | undefined, token: string, nowMs: number): string | undefined {
  const t = parseBootstrapToken(token);
  if (!t) return "not a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})";
  if (!secret) return `no bootstrap token ${t.id}`;
  const data = (secret as { data?: unknown }).data;
  const field = (k: string): string | undefined => {
    const v = typeof data === "object" && data !== null ? (data as Record<string, unknown>)[k] : undefined;
    return typeof v === "string" ? Buffer.from(v, "base64").toString("utf8") : undefined;
  };
  if ((secret as { type?: unknown }).type !== "bootstrap.kubernetes.io/token") return `bootstrap token ${t.id}: its Secret is not of type bootstrap.kubernetes.io/token`;
  if (field("token-id") !== t.id || !tokensEqual(t.secret, field("token-secret") ?? "")) return `bootstrap token ${t.id}: wrong secret`;
  if (field("usage-bootstrap-authentication") !== "true") return `bootstrap token ${t.id} is not for authentication`;
  const expiration = field("expiration");
  if (expiration !== undefined) {
    const at = Date.parse(expiration);
    if (!Number.isFinite(at) || at <= nowMs) return `bootstrap token ${t.id} expired at ${expiration}`;
  }
  return undefined;
}

export class NodeJoin {
  private constructor(
    private readonly registry: Registry,
    private readonly issuer: NatsIssuer,
    private readonly log: Logger,
  ) {}

  /** Reads the issuer file; stores the token's Secret unless it is there already (a restart keeps its expiration). */
  static async start(registry: Registry, issuerFile: string, token: string | undefined, ttlMs: number, log: Logger): Promise<NodeJoin> {
    const issuer = JSON.parse(readFileSync(issuerFile, "utf8")) as NatsIssuer;
    if (typeof issuer?.account !== "string" || typeof issuer.seed !== "string") throw new Error(`${issuerFile}: want {"account": ..., "seed": ...}`);
    if (token) {
      const secret = bootstrapTokenSecret(token, new Date(), ttlMs);
      await registry.create(SECRETS, TOKEN_NAMESPACE, secret).then(
        () => log.info({ tokenId: parseBootstrapToken(token)!.id }, "bootstrap token stored"),
        (err: unknown) => {
          if (!(err instanceof ApiError && err.status.code === 409)) throw err;
        },
      );
    }
    return new NodeJoin(registry, issuer, log);
  }

  async join(req: JoinNodeRequest): Promise<JoinNodeResponse> {
    if (typeof req?.name !== "string" || !isDns1123Label(req.name)) throw new RpcError(ErrorCode.Invalid, `node name ${JSON.stringify(req?.name)} is not a DNS-1123 label`);
    if (typeof req.publicKey !== "string" || !/^U[A-Z2-7]{55}$/.test(req.publicKey)) throw new RpcError(ErrorCode.Invalid, "publicKey must be a NATS user public key");
    const token = typeof req.token === "string" ? req.token : "";
    const id = parseBootstrapToken(token)?.id;
    const secret = id ? await this.getOrNone(SECRETS, TOKEN_NAMESPACE, `bootstrap-token-${id}`) : undefined;
    const refused = checkBootstrapToken(secret, token, Date.now());
    if (refused) {
      this.log.warn({ node: req.name, reason: refused }, "join refused");
      throw new RpcError(ErrorCode.Forbidden, refused);
    }
    // kubeadm join's preflight: a live node of that name keeps it (a dead one may be taken over).
    const existing = await this.getOrNone(NODES, undefined, req.name);
    if (existing && nodeIsReady(existing)) {
      this.log.warn({ node: req.name }, "join refused: a Ready node has the name");
      throw new RpcError(ErrorCode.AlreadyExists, `a node named ${req.name} is already registered and Ready`);
    }
    const jwt = await issueUser(this.issuer, req.name, req.publicKey, nodePermissions(req.name));
    this.log.info({ node: req.name, tokenId: id }, "node joined: NATS identity issued");
    return { jwt };
  }

  private async getOrNone(r: ReturnType<typeof resourceByKind>, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    try {
      return await this.registry.get(r, namespace, name);
    } catch (err) {
      if (err instanceof ApiError && err.status.code === 404) return undefined;
      throw err;
    }
  }
}
