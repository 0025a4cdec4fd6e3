/**
 * Request/reply over NATS with msgpack bodies. A handler returns a value or throws an RpcError;
 * the caller gets the value or the same RpcError back, so a failed request reads the same on
 * both sides of the wire.
 */
import { readFileSync } from "node:fs";
import { connect, jwtAuthenticator, type ConnectionOptions, type NatsConnection, type Msg, type Subscription } from "nats";
import { inboxPrefix, parseCredsText, type NatsCredentials } from "./nats-auth.ts";
import { pack, unpack } from "msgpackr";
import { ErrorCode, type ErrorReply } from "./types.ts";
import type { Logger } from "./log.ts";

export class RpcError extends Error {
  override readonly name = "RpcError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * How a process proves who it is to NATS and checks the server: its credentials, the cluster CA,
 * and its identity's inbox prefix (replies to it go where only it may subscribe). Empty on an
 * unsecured cluster.
 */
export interface NatsClientAuth {
  creds?: NatsCredentials;
  /** PEM of the cluster CA: the connection is TLS and the server's certificate must chain to it. */
  ca?: string;
  /** The identity ("cli", "control-plane", a node's name) whose inbox prefix replies use. */
  identity?: string;
  /** Try the servers in the given order (a node-agent's home server first) rather than shuffled. */
  inOrder?: boolean;
}

/** The auth of a process from its CA and credentials files (KUBEWIRE_NATS_CA, KUBEWIRE_NATS_CREDS); a missing file is an error naming it. */
export function readNatsAuth(files: { ca?: string; creds?: string }, identity: string): NatsClientAuth {
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (err) {
      throw new Error(`cannot read the NATS ${what} ${path}: ${(err as Error).message}`);
    }
  };
  const auth: NatsClientAuth = { identity };
  if (files.ca) auth.ca = read("CA file", files.ca);
  if (files.creds) {
    const creds = parseCredsText(read("credentials file", files.creds));
    if (!creds) throw new Error(`${files.creds} holds no NATS user JWT and seed`);
    auth.creds = creds;
  }
  return auth;
}

/** nats.js options for `auth`. */
export function natsAuthOptions(auth: NatsClientAuth): Partial<ConnectionOptions> {
  return {
    ...(auth.creds ? { authenticator: jwtAuthenticator(auth.creds.jwt, new TextEncoder().encode(auth.creds.seed)) } : {}),
    ...(auth.ca ? { tls: { ca: auth.ca } } : {}),
    ...(auth.identity && auth.creds ? { inboxPrefix: inboxPrefix(auth.identity) } : {}),
    ...(auth.inOrder ? { noRandomize: true } : {}),
  };
}

export async function connectNats(servers: string, name: string, auth: NatsClientAuth = {}): Promise<NatsConnection> {
  return connect({
    ...natsAuthOptions(auth),
    servers: servers.split(","),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    // No stack captured per request (two Error objects each): under load that was ~5% of the
    // control plane's CPU. Errors still carry their message and code.
    noAsyncTraces: true,
  });
}

function isErrorReply(x: unknown): x is ErrorReply {
  return typeof x === "object" && x !== null && "error" in x && typeof (x as ErrorReply).error?.code === "string";
}

export async function request<Res>(nc: NatsConnection, subject: string, body: unknown, timeoutMs = 5000): Promise<Res> {
  let msg: Msg;
  try {
    msg = await nc.request(subject, pack(body), { timeout: timeoutMs });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "503") throw new RpcError(ErrorCode.NotFound, `no one answers on ${subject}`);
    if (code === "TIMEOUT") throw new RpcError(ErrorCode.Internal, `no reply on ${subject} within ${timeoutMs} ms`);
    throw err;
  }
  const reply = unpack(msg.data) as unknown;
  if (isErrorReply(reply)) throw new RpcError(reply.error.code, reply.error.message);
  return reply as Res;
}

/** Answers requests on `subject` one at a time, in arrival order. */
export function serve<Req, Res>(
  nc: NatsConnection,
  subject: string,
  log: Logger,
  handler: (req: Req, msg: Msg) => Promise<Res>,
  opts: { concurrent?: boolean } = {},
): Subscription {
  const sub = nc.subscribe(subject);
  const answer = async (msg: Msg): Promise<void> => {
    let reply: unknown;
    try {
      reply = await handler(unpack(msg.data) as Req, msg);
    } catch (err) {
      if (err instanceof RpcError) {
        reply = { error: { code: err.code, message: err.message } } satisfies ErrorReply;
      } else {
        log.error({ err, subject }, "request failed");
        reply = { error: { code: ErrorCode.Internal, message: String((err as Error)?.message ?? err) } } satisfies ErrorReply;
      }
    }
    try {
      if (msg.reply) msg.respond(pack(reply));
    } catch (err) {
      // The connection closed meanwhile (shutdown): nobody to answer, and no unhandled rejection.
      log.warn({ err: (err as Error)?.message ?? String(err), subject }, "could not send a reply");
    }
  };
  void (async () => {
    for await (const msg of sub) {
      // Node-agent verbs such as exec run for seconds; they must not queue behind each other.
      if (opts.concurrent) void answer(msg);
      else await answer(msg);
    }
  })();
  return sub;
}
