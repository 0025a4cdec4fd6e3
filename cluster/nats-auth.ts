/**
 * Who may do what on the cluster's NATS: every process connects with its own identity, a NATS
 * user JWT (decentralized auth, https://docs.nats.io/running-a-nats-service/configuration/securing_nats/jwt),
 * and the server enforces each identity's permissions. The chain of trust:
 *
 * - an operator, trusted by every nats-server (its JWT is in the server config);
 * - the operator's system account (JetStream clustering needs one) and the cluster's account,
 *   both signed by the operator and preloaded in the server config (resolver MEMORY);
 * - two signing keys of the account:
 *   - the issuer: signs the users `kubewire up` makes (control plane, CLI) and the node identities
 *     the control plane hands out at join, each with its permissions inside the JWT;
 *   - the bootstrap key, derived from the bootstrap token and scoped (its users get the
 *     bootstrap role, whatever their JWT says): a new node signs its own bootstrap user with it,
 *     so only a holder of the token can connect, and then may only ask to join. Like kubeadm's
 *     bootstrap tokens, the token is `[a-z0-9]{6}.[a-z0-9]{16}` (id.secret).
 *
 * Node permissions follow the kubelet's under the NodeRestriction rule: a node publishes overlay
 * frames only as itself (the source node is the last subject token, so the server checks it),
 * receives only its own overlay and RPC subjects, reads the store but never writes it, and
 * reports status only on subjects that name it. Pure: keys and randomness are parameters.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createAccount, createOperator, createUser, fromPublic, fromSeed, Prefix, type KeyPair } from "@nats-io/nkeys";
// The seed codec is not re-exported by the package's index; the bootstrap key needs it (a seed from the token).
import { Codec } from "@nats-io/nkeys/lib/codec.js";
import { decode, encodeAccount, encodeOperator, encodeUser, fmtCreds, newScopedSigner, type Permissions } from "@nats-io/jwt";
import { OBJECTS_STREAM } from "./store.ts";
import { Subjects } from "./types.ts";


/** What every nats-server of the cluster trusts: goes into its config. */
export interface NatsTrust {
  operatorJwt: string;
  systemAccount: string;
  systemAccountJwt: string;
  /** The cluster's account (its public key): every identity is a user of it. */
  account: string;
  accountJwt: string;
}

/** The signing key the control plane (and `kubewire up`) issue identities with. Secret. */
export interface NatsIssuer {
  account: string;
  seed: string;
}

/** A user's credentials: its JWT and its nkey seed (a .creds file holds both). */
export interface NatsCredentials {
  jwt: string;
  seed: string;
}

/** kubeadm's bootstrap token format (k8s.io/cluster-bootstrap/token/api: BootstrapTokenPattern). */
export const BOOTSTRAP_TOKEN_PATTERN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
const TOKEN_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

/** A new bootstrap token from `randomBytes` (e.g. node:crypto's). */
export function newBootstrapToken(randomBytes: (n: number) => Uint8Array): string {
  // Rejection sampling: 252 is the largest multiple of 36 below 256, so every character is equally likely.
  const chars: string[] = [];
  while (chars.length < 22) {
    for (const b of randomBytes(32)) if (b < 252 && chars.length < 22) chars.push(TOKEN_ALPHABET[b % 36]!);
  }
  return `${chars.slice(0, 6).join("")}.${chars.slice(6).join("")}`;
}

/** The token's id and secret, or undefined when it is not a bootstrap token. */
export function parseBootstrapToken(token: string): { id: string; secret: string } | undefined {
  const m = BOOTSTRAP_TOKEN_PATTERN.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

/** Whether `given` is `expected`, in time independent of where they differ. */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The account signing key a bootstrap token stands for: its seed is a hash of the token. */
export function bootstrapSigner(token: string): KeyPair {
  const raw = createHash("sha256").update(`kubewire bootstrap signing key\0${token}`).digest();
  return fromSeed(Codec.encodeSeed(Prefix.Account, new Uint8Array(raw)));
}

/** The subject prefix of an identity's reply inboxes: only it may subscribe there. */
export function inboxPrefix(identity: string): string {
  return `_INBOX_${identity}`;
}

/** The identities that send nodes requests: the CLI, the control plane, an administrator (the test harness). */
export const REQUESTERS = ["cli", "control-plane", "admin"] as const;

/** The bootstrap role: ask to join, and hear the answer. The answer carries no secret (a JWT for a key only the joiner holds). */
export function bootstrapPermissions(): Permissions {
  return { pub: { allow: [Subjects.joinNode] }, sub: { allow: [`${inboxPrefix("bootstrap")}.>`] } };
}

/** A node's rights: its own subjects, reading the store, answering requests put to it. */
export function nodePermissions(node: string): Permissions {
  const js = (api: string) => `$JS.API.${api}`;
  return {
    pub: {
      allow: [
        Subjects.overlay("*", "*", node),
        Subjects.registerNode(node),
        Subjects.heartbeat(node),
        Subjects.nodeStatus(node),
        Subjects.podStatus(node),
        Subjects.podFinalize(node),
        Subjects.stream(node, ">"),
        Subjects.trace("*", node),
        // Replies to the CLI, the control plane and an administrator. The server's own response
        // permission (below) ends when the node reconnects to another server mid-request (a
        // 15 s exec across a NATS failover); inboxes are random, so a node cannot guess another's.
        ...REQUESTERS.map((r) => `${inboxPrefix(r)}.>`),
        // Reading the store: watches (ordered consumers, their flow control) and gets.
        js("INFO"),
        js(`STREAM.INFO.${OBJECTS_STREAM}`),
        js(`CONSUMER.CREATE.${OBJECTS_STREAM}`),
        js(`CONSUMER.CREATE.${OBJECTS_STREAM}.>`),
        js(`CONSUMER.DELETE.${OBJECTS_STREAM}.>`),
        js(`CONSUMER.INFO.${OBJECTS_STREAM}.>`),
        js(`DIRECT.GET.${OBJECTS_STREAM}.>`),
        js(`STREAM.MSG.GET.${OBJECTS_STREAM}`),
        `$JS.FC.${OBJECTS_STREAM}.>`,
      ],
    },
    sub: { allow: [Subjects.overlay("*", node, "*"), Subjects.node(node, ">"), `${inboxPrefix(node)}.>`] },
    // Replies to the requests it received (exec, status, ...), one each, however late.
    resp: { max: 1, ttl: 0 },
  };
}

/** The control plane (API server and controllers): everything but the overlay, which is the nodes'. */
export function controlPlanePermissions(): Permissions {
  return { pub: { allow: [">"], deny: ["overlay.>"] }, sub: { allow: [">"], deny: ["overlay.>"] } };
}

/** The CLI: requests to nodes, and the traces and streams (captures, load reports) they answer with. */
export function cliPermissions(): Permissions {
  return {
    pub: { allow: [Subjects.node("*", ">")] },
    sub: { allow: [`${inboxPrefix("cli")}.>`, Subjects.trace("*", "*"), Subjects.stream("*", ">")] },
  };
}

/** An administrator's identity (the test harness, `nats` tooling): every subject. */
export function adminPermissions(): Permissions {
  return { pub: { allow: [">"] }, sub: { allow: [">"] } };
}

/**
 * A new operator, system account and cluster account, with the issuer and the bootstrap key of
 * `bootstrapToken` as the account's signing keys.
 */
export async function createTrust(bootstrapToken: string): Promise<{ trust: NatsTrust; issuer: NatsIssuer }> {
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const issuer = createAccount();
  const bootstrap = newScopedSigner(bootstrapSigner(bootstrapToken), "bootstrap", bootstrapPermissions());
  const operatorJwt = await encodeOperator("kubewire", operator, { system_account: system.getPublicKey() });
  const systemAccountJwt = await encodeAccount("SYS", system, {}, { signer: operator });
  const accountJwt = await encodeAccount(
    "kubewire",
    account,
    {
      // No limits but JetStream's, which must be non-zero for the account to use JetStream at all.
      limits: { subs: -1, conn: -1, leaf: -1, imports: -1, exports: -1, data: -1, payload: -1, wildcards: true, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } as never,
      signing_keys: [issuer.getPublicKey(), bootstrap],
    },
    { signer: operator },
  );
  return {
    trust: { operatorJwt, systemAccount: system.getPublicKey(), systemAccountJwt, account: account.getPublicKey(), accountJwt },
    issuer: { account: account.getPublicKey(), seed: new TextDecoder().decode(issuer.getSeed()) },
  };
}

/** A user JWT for `userPublicKey`, named `name`, with `permissions`, signed by the issuer. */
export async function issueUser(issuer: NatsIssuer, name: string, userPublicKey: string, permissions: Permissions): Promise<string> {
  if (!/^U[A-Z2-7]{55}$/.test(userPublicKey)) throw new Error(`not a NATS user public key: ${JSON.stringify(userPublicKey)}`);
  // The account is the JWT's issuer_account; the issuer key signs it.
  return encodeUser(name, fromPublic(userPublicKey), fromPublic(issuer.account), permissions, { signer: fromSeed(new TextEncoder().encode(issuer.seed)) });
}

/** New credentials (a fresh user key) issued by the issuer. */
export async function newCredentials(issuer: NatsIssuer, name: string, permissions: Permissions): Promise<NatsCredentials> {
  const user = createUser();
  return { jwt: await issueUser(issuer, name, user.getPublicKey(), permissions), seed: new TextDecoder().decode(user.getSeed()) };
}

/** A bootstrap user for `user`'s key, signed with the token's key: what a joining node connects as. */
export async function bootstrapUser(token: string, account: string, user: KeyPair): Promise<string> {
  return encodeUser("bootstrap", user, fromPublic(account), {}, { signer: bootstrapSigner(token), scopedUser: true });
}

/** A fresh user key: a joining node makes its own, and only its public half leaves the node. */
export function newUserKey(): KeyPair {
  return createUser();
}

/** The text of a .creds file (nsc's format). */
export function formatCreds(creds: NatsCredentials): string {
  return new TextDecoder().decode(fmtCreds(creds.jwt, fromSeed(new TextEncoder().encode(creds.seed))));
}

/** A .creds file's JWT and seed; undefined when the text holds no such pair. */
export function parseCredsText(text: string): NatsCredentials | undefined {
  const jwt = /-----BEGIN NATS USER JWT-----\s*\n\s*(\S+)\s*\n/.exec(text)?.[1];
  const seed = /-----BEGIN USER NKEY SEED-----\s*\n\s*(SU[A-Z2-7]+)\s*\n/.exec(text)?.[1];
  return jwt && seed ? { jwt, seed } : undefined;
}

/** The name and public key a user JWT was issued to (undefined when it does not decode). */
export function userOf(jwt: string): { name: string; publicKey: string } | undefined {
  try {
    const claims = decode<unknown>(jwt);
    return typeof claims.name === "string" && typeof claims.sub === "string" ? { name: claims.name, publicKey: claims.sub } : undefined;
  } catch {
    return undefined;
  }
}
