/**
 * curl (8.x) over the pod's emulated TCP, with a hand-written HTTP/1.1 client: the request
 * bytes are curl's (request line, Host, User-Agent: curl/8.5.0, Accept: *\/*, custom headers,
 * Content-Length/Content-Type for -d), so what a server or a packet capture sees is what the
 * real curl would send. Node's http client would send different headers.
 *
 * Behaviour kept from curl: exit codes (6 resolve, 7 connect, 18 partial, 22 -f, 28 timeout,
 * 52 empty reply, 56 recv failure), the "curl: (N) ..." messages, `-v` lines on stderr (`*`
 * info, `>` request, `<` response, `{ [N bytes data]` since exec output is not a terminal),
 * several URLs on one command line reusing one keep-alive connection, `-w` after each transfer
 * (also after a failed one, with http_code 000).
 *
 * Bounded always: curl's own defaults (300 s connect timeout, no overall limit) would let an
 * exec hang, so an invocation without -m is capped at TOOL_CAP_MS (60 s) overall, and one with
 * -m at what it asked for (at most an hour, the exec RPC's limit); a cap hit is reported as curl
 * reports -m (exit 28).
 */
import type { ExecResult } from "../../cluster/types.ts";
import { formatIpv4 } from "../../overlay/wire/common.ts";
import type { TcpSocket } from "../tcp/api.ts";
import { resolveName, type Clock, type ToolContext } from "./common.ts";
import { FsError, resolvePath } from "./fs.ts";

/** The most one tool invocation may take, whatever its flags say (kubectl exec must return). */
export const TOOL_CAP_MS = 60_000;
/** curl's default --connect-timeout. */
const CURL_CONNECT_TIMEOUT_MS = 300_000;
const MAX_HEADER_BYTES = 100 * 1024;
export const CURL_VERSION = "8.5.0";

// ------------------------------------------------------------------ URL

export interface HttpUrl {
  host: string;
  port: number;
  /** Request target: path and query. */
  target: string;
  /** The Host header value: the port only when it is not 80. */
  hostHeader: string;
  text: string;
}

export type UrlParse = { kind: "ok"; url: HttpUrl } | { kind: "unsupported"; scheme: string } | { kind: "malformed"; why: string };

/** curl's URL rules, IPv4 and names only: a missing scheme means http, a missing path "/". */
export function parseHttpUrl(text: string): UrlParse {
  const m = /^(?:([A-Za-z][A-Za-z0-9+.-]*):\/\/)?(?:[^@/?#]*@)?([^/:?#]*)(?::([^/?#]*))?([^#]*)/.exec(text);
  if (!m) return { kind: "malformed", why: "Malformed input to a URL function" };
  const scheme = (m[1] ?? "http").toLowerCase();
  if (scheme !== "http") return { kind: "unsupported", scheme };
  const host = m[2]!.toLowerCase();
  if (host === "") return { kind: "malformed", why: "No host part in the URL" };
  let port = 80;
  if (m[3] !== undefined && m[3] !== "") {
    if (!/^\d+$/.test(m[3]) || Number(m[3]) > 65535) return { kind: "malformed", why: "Port number was not a decimal number between 0 and 65535" };
    port = Number(m[3]);
  }
  let target = m[4] ?? "";
  if (target === "" || target.startsWith("?")) target = `/${target}`;
  return { kind: "ok", url: { host, port, target, hostHeader: port === 80 ? host : `${host}:${port}`, text } };
}

/**
 * The first IPv4 address of `host` as the pod's libc finds it (common.ts resolveName: a dotted
 * quad, /etc/hosts, the cluster DNS), or undefined when it does not resolve within `timeoutMs`.
 */
export async function resolveHost(ctx: ToolContext, host: string, timeoutMs: number): Promise<number | undefined> {
  const r = await resolveName(ctx, host, timeoutMs);
  return r.kind === "found" ? r.addresses[0] : undefined;
}

// ------------------------------------------------------------------ response parsing

export interface ResponseHead {
  version: string;
  status: number;
  reason: string;
  headers: Array<[string, string]>;
  /** The header block as received, without the final empty line (for -v, -i, -I). */
  lines: string[];
}

export type HeadParse = { kind: "incomplete" } | { kind: "malformed" } | { kind: "ok"; head: ResponseHead; length: number };

/** Parses a response head once the blank line is in `buf`; untrusted bytes, so every failure is a value. */
export function parseResponseHead(buf: Uint8Array): HeadParse {
  let end = -1;
  for (let i = 0; i + 1 < buf.length; i++) {
    if (buf[i] === 0x0a && buf[i + 1] === 0x0a) {
      end = i + 2;
      break;
    }
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a && buf[i + 2] === 0x0d && buf[i + 3] === 0x0a) {
      end = i + 4;
      break;
    }
  }
  if (end < 0) {
    // A response that does not even start like one is not worth waiting for.
    const start = Buffer.from(buf.subarray(0, 5)).toString("latin1");
    if (buf.length >= 5 && start !== "HTTP/") return { kind: "malformed" };
    return buf.length > MAX_HEADER_BYTES ? { kind: "malformed" } : { kind: "incomplete" };
  }
  const text = Buffer.from(buf.subarray(0, end)).toString("latin1");
  const lines = text.split(/\r?\n/).slice(0, -2);
  const status = /^(HTTP\/\d(?:\.\d)?) (\d{3})(?: (.*))?$/.exec(lines[0] ?? "");
  if (!status) return { kind: "malformed" };
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) return { kind: "malformed" };
    headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return { kind: "ok", head: { version: status[1]!, status: Number(status[2]), reason: status[3] ?? "", headers, lines }, length: end };
}

export function header(head: ResponseHead, name: string): string | undefined {
  return head.headers.find(([k]) => k === name)?.[1];
}

export type Framing = { kind: "none" } | { kind: "length"; bytes: number } | { kind: "chunked" } | { kind: "close" };

/** RFC 9112 section 6.3, in its order. */
export function framingOf(head: ResponseHead, method: string): Framing | undefined {
  if (method === "HEAD" || head.status === 204 || head.status === 304 || (head.status >= 100 && head.status < 200)) return { kind: "none" };
  const te = header(head, "transfer-encoding");
  if (te !== undefined && te.toLowerCase().split(",").map((s) => s.trim()).at(-1) === "chunked") return { kind: "chunked" };
  const cl = header(head, "content-length");
  if (cl !== undefined) return /^\d+$/.test(cl) ? { kind: "length", bytes: Number(cl) } : undefined;
  return { kind: "close" };
}

/** Incremental chunked decoding (RFC 9112 section 7.1); trailers are skipped. */
export class ChunkedDecoder {
  private buf: Uint8Array = new Uint8Array(0);
  private remaining = 0;
  private state: "size" | "data" | "dataEnd" | "trailer" | "done" = "size";

  get done(): boolean {
    return this.state === "done";
  }

  /** Returns the body bytes decoded from `bytes`, or undefined when the framing is malformed. */
  feed(bytes: Uint8Array): Uint8Array[] | undefined {
    this.buf = concat(this.buf, bytes);
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.state === "done") return out;
      if (this.state === "data") {
        if (this.buf.length === 0) return out;
        const n = Math.min(this.remaining, this.buf.length);
        out.push(this.buf.subarray(0, n));
        this.buf = this.buf.subarray(n);
        this.remaining -= n;
        if (this.remaining === 0) this.state = "dataEnd";
        continue;
      }
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) return this.buf.length > 4096 ? undefined : out;
      const line = Buffer.from(this.buf.subarray(0, nl)).toString("latin1").replace(/\r$/, "");
      this.buf = this.buf.subarray(nl + 1);
      if (this.state === "dataEnd") {
        if (line !== "") return undefined;
        this.state = "size";
      } else if (this.state === "size") {
        const size = /^([0-9a-fA-F]+)(?:;.*)?$/.exec(line.trim());
        if (!size || size[1]!.length > 8) return undefined;
        this.remaining = parseInt(size[1]!, 16);
        this.state = this.remaining === 0 ? "trailer" : "data";
      } else if (line === "") this.state = "done";
    }
  }
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// ------------------------------------------------------------------ connection

export type ReadEvent = { kind: "data"; bytes: Uint8Array } | { kind: "eof" } | { kind: "reset" } | { kind: "timeout" };

/**
 * A client connection read against a deadline. The pending `socket.read()` survives a lost
 * race, so no bytes are dropped when a timeout is only checked and the connection kept.
 */
export class HttpConnection {
  private pending: Promise<Uint8Array | null> | undefined;
  /** Bytes read past the end of the previous response (a pipelining server, or garbage). */
  leftover: Uint8Array = new Uint8Array(0);
  reusable = true;
  requests = 0;

  constructor(
    readonly socket: TcpSocket,
    readonly id: number,
    private readonly clock: Clock,
  ) {}

  async read(deadline: Promise<"timeout">): Promise<ReadEvent> {
    this.pending ??= this.socket.read();
    const got = await Promise.race([this.pending, deadline]);
    if (got === "timeout") return { kind: "timeout" };
    this.pending = undefined;
    if (got !== null) return { kind: "data", bytes: got };
    // End of stream: a FIN, or a RST (then `closed` has already settled as "reset").
    const reason = await Promise.race([this.socket.closed, this.clock.yieldTurn().then(() => undefined)]);
    return reason?.kind === "reset" ? { kind: "reset" } : { kind: "eof" };
  }
}

export type ResponseOutcome =
  | { kind: "ok"; head: ResponseHead; body: Uint8Array; size: number; reusable: boolean }
  | { kind: "empty" }
  | { kind: "reset"; received: number }
  | { kind: "timeout"; received: number; expected: number | undefined }
  | { kind: "partial"; remaining: number | undefined }
  | { kind: "weird" };

/** Reads one response: head (skipping 1xx), then the body as its framing says. */
export async function readResponse(
  conn: HttpConnection,
  method: string,
  deadline: Promise<"timeout">,
  onHead?: (head: ResponseHead) => void,
  /** false for -o /dev/null: the body is counted, not kept (downloads of hundreds of MiB). */
  keepBody = true,
): Promise<ResponseOutcome> {
  let buf = conn.leftover;
  conn.leftover = new Uint8Array(0);
  let total = buf.length;
  let head: ResponseHead;
  for (;;) {
    const parsed = parseResponseHead(buf);
    if (parsed.kind === "malformed") return { kind: "weird" };
    if (parsed.kind === "ok") {
      buf = buf.subarray(parsed.length);
      onHead?.(parsed.head);
      if (parsed.head.status >= 100 && parsed.head.status < 200 && parsed.head.status !== 101) continue;
      head = parsed.head;
      break;
    }
    const ev = await conn.read(deadline);
    if (ev.kind === "data") {
      buf = concat(buf, ev.bytes);
      total += ev.bytes.length;
    } else if (ev.kind === "eof") return total === 0 ? { kind: "empty" } : { kind: "weird" };
    else if (ev.kind === "reset") return { kind: "reset", received: 0 };
    else return { kind: "timeout", received: 0, expected: undefined };
  }
  const framing = framingOf(head, method);
  if (!framing) return { kind: "weird" };
  const keepAlive =
    (header(head, "connection") ?? "").toLowerCase().includes("close")
      ? false
      : head.version === "HTTP/1.1" || (header(head, "connection") ?? "").toLowerCase().includes("keep-alive");
  const body: Uint8Array[] = [];
  let received = 0;
  const decoder = framing.kind === "chunked" ? new ChunkedDecoder() : undefined;
  const take = (bytes: Uint8Array): boolean => {
    if (framing.kind === "length") {
      const n = Math.min(bytes.length, framing.bytes - received);
      if (keepBody) body.push(bytes.subarray(0, n));
      received += n;
      conn.leftover = concat(conn.leftover, bytes.subarray(n));
      return received === framing.bytes;
    }
    if (decoder) {
      const out = decoder.feed(bytes);
      if (!out) throw new MalformedBody();
      for (const b of out) {
        if (keepBody) body.push(b);
        received += b.length;
      }
      return decoder.done;
    }
    if (keepBody) body.push(bytes);
    received += bytes.length;
    return false;
  };
  try {
    let done = framing.kind === "none" || (framing.kind === "length" && framing.bytes === 0);
    if (!done && buf.length > 0) done = take(buf);
    else if (done) conn.leftover = buf;
    while (!done) {
      const ev = await conn.read(deadline);
      if (ev.kind === "data") done = take(ev.bytes);
      else if (ev.kind === "eof") {
        if (framing.kind === "close") return { kind: "ok", head, body: concatAll(body), size: received, reusable: false };
        return { kind: "partial", remaining: framing.kind === "length" ? framing.bytes - received : undefined };
      } else if (ev.kind === "reset") return { kind: "reset", received };
      else return { kind: "timeout", received, expected: framing.kind === "length" ? framing.bytes : undefined };
    }
  } catch (err) {
    if (err instanceof MalformedBody) return { kind: "weird" };
    throw err;
  }
  return { kind: "ok", head, body: concatAll(body), size: received, reusable: keepAlive && framing.kind !== "close" };
}

class MalformedBody extends Error {
  override readonly name = "MalformedBody";
}

/** One allocation for the whole body (bodies may be hundreds of MiB: no pairwise concat). */
export function concatAll(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  if (parts.length === 0) return new Uint8Array(0);
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

// ------------------------------------------------------------------ options

interface CurlOptions {
  urls: string[];
  silent: boolean;
  showError: boolean;
  verbose: boolean;
  maxTimeMs: number | undefined;
  connectTimeoutMs: number | undefined;
  headers: string[];
  /** stdout, /dev/null, or a file in the pod's filesystem (-o FILE). */
  output: "stdout" | "null" | { file: string };
  writeOut: string | undefined;
  data: string[];
  method: string | undefined;
  head: boolean;
  include: boolean;
  fail: boolean;
  userAgent: string;
}

type OptionKind = "bool" | "value";
const LONG: Record<string, [string, OptionKind]> = {
  "--silent": ["s", "bool"],
  "--show-error": ["S", "bool"],
  "--verbose": ["v", "bool"],
  "--max-time": ["m", "value"],
  "--connect-timeout": ["connect-timeout", "value"],
  "--header": ["H", "value"],
  "--output": ["o", "value"],
  "--write-out": ["w", "value"],
  "--data": ["d", "value"],
  "--data-raw": ["d", "value"],
  "--data-binary": ["d", "value"],
  "--data-ascii": ["d", "value"],
  "--request": ["X", "value"],
  "--head": ["I", "bool"],
  "--include": ["i", "bool"],
  "--fail": ["f", "bool"],
  "--insecure": ["k", "bool"],
  "--http1.1": ["http1.1", "bool"],
  "--user-agent": ["A", "value"],
  "--url": ["url", "value"],
};
const SHORT: Record<string, OptionKind> = { s: "bool", S: "bool", v: "bool", I: "bool", i: "bool", f: "bool", k: "bool", m: "value", H: "value", o: "value", w: "value", d: "value", X: "value", A: "value" };

type CurlArgs = { kind: "ok"; opts: CurlOptions } | { kind: "usage"; message: string; code: number };

function parseCurlArgs(argv: readonly string[]): CurlArgs {
  const opts: CurlOptions = {
    urls: [],
    silent: false,
    showError: false,
    verbose: false,
    maxTimeMs: undefined,
    connectTimeoutMs: undefined,
    headers: [],
    output: "stdout",
    writeOut: undefined,
    data: [],
    method: undefined,
    head: false,
    include: false,
    fail: false,
    userAgent: `curl/${CURL_VERSION}`,
  };
  const seconds = (flag: string, raw: string): number | undefined => {
    const v = Number(raw);
    return raw.trim() !== "" && Number.isFinite(v) && v >= 0 ? v * 1000 : undefined;
  };
  const apply = (name: string, value: string | undefined, shown: string): string | undefined => {
    switch (name) {
      case "s": opts.silent = true; break;
      case "S": opts.showError = true; break;
      case "v": opts.verbose = true; break;
      case "I": opts.head = true; break;
      case "i": opts.include = true; break;
      case "f": opts.fail = true; break;
      case "k": case "http1.1": break; // no TLS here, and HTTP/1.1 is all this curl speaks
      case "m": case "connect-timeout": {
        const ms = seconds(shown, value!);
        if (ms === undefined) return `option ${shown}: expected a proper numerical parameter`;
        if (name === "m") opts.maxTimeMs = ms;
        else opts.connectTimeoutMs = ms;
        break;
      }
      case "H": opts.headers.push(value!); break;
      case "o":
        if (value === "/dev/null") opts.output = "null";
        else if (value === "-") opts.output = "stdout";
        else opts.output = { file: value! };
        break;
      case "w": opts.writeOut = value!; break;
      case "d":
        if (value!.startsWith("@")) return `option ${shown}: reading data from a file is not emulated`;
        opts.data.push(value!);
        break;
      case "X": opts.method = value!; break;
      case "A": opts.userAgent = value!; break;
      case "url": opts.urls.push(value!); break;
    }
    return undefined;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith("--")) {
      const known = LONG[arg];
      if (!known) return { kind: "usage", message: `option ${arg}: is unknown`, code: 2 };
      const [name, kind] = known;
      let value: string | undefined;
      if (kind === "value") {
        value = argv[++i];
        if (value === undefined) return { kind: "usage", message: `option ${arg}: requires parameter`, code: 2 };
      }
      const err = apply(name, value, arg);
      if (err) return { kind: "usage", message: err, code: 2 };
    } else if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const c = arg[j]!;
        const kind = SHORT[c];
        if (!kind) return { kind: "usage", message: `option -${c}: is unknown`, code: 2 };
        let value: string | undefined;
        if (kind === "value") {
          value = j + 1 < arg.length ? arg.slice(j + 1) : argv[++i];
          if (value === undefined) return { kind: "usage", message: `option -${c}: requires parameter`, code: 2 };
          j = arg.length;
        }
        const err = apply(c, value, `-${c}`);
        if (err) return { kind: "usage", message: err, code: 2 };
      }
    } else opts.urls.push(arg);
  }
  if (opts.urls.length === 0) return { kind: "usage", message: "no URL specified!", code: 2 };
  return { kind: "ok", opts };
}

// ------------------------------------------------------------------ the tool

/** The result of one transfer, as -w and the exit code see it. */
interface Transfer {
  code: number;
  /** Content-Length when the response had one (the meter's "% Total"). */
  expected?: number;
  error?: string;
  httpCode: number;
  remoteIp: string;
  remotePort: number;
  localIp: string;
  localPort: number;
  sizeDownload: number;
  timeConnect: number;
  timeTotal: number;
  url: string;
}

interface Cached {
  ip: number;
  port: number;
  conn: HttpConnection;
}

export async function curl(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const parsed = parseCurlArgs(argv);
  if (parsed.kind === "usage") {
    return { exitCode: parsed.code, stdout: "", stderr: `curl: ${parsed.message}\ncurl: try 'curl --help' or 'curl --manual' for more information\n` };
  }
  const { opts } = parsed;
  const { clock } = ctx;
  const started = clock.now();
  const capDeadline = started + (opts.maxTimeMs !== undefined ? Math.min(opts.maxTimeMs, 3_600_000) : TOOL_CAP_MS);
  const info = (line: string) => opts.verbose && stderr.push(`* ${line}\n`);
  let cached: Cached | undefined;
  let nextConnId = 0;
  let exitCode = 0;

  const method = opts.method ?? (opts.head ? "HEAD" : opts.data.length > 0 ? "POST" : "GET");
  const body = opts.data.length > 0 ? Buffer.from(opts.data.join("&")) : undefined;

  for (const urlText of opts.urls) {
    const t0 = clock.now();
    // Without -s, curl draws its progress meter on stderr when stdout is not a terminal, which
    // is always the case under exec; only its header and final line are kept here.
    if (!opts.silent) stderr.push(PROGRESS_HEADER);
    const deadlineAt = Math.min(capDeadline, opts.maxTimeMs !== undefined ? t0 + opts.maxTimeMs : Infinity);
    const deadline = clock.sleep(Math.max(0, deadlineAt - t0)).then(() => "timeout" as const);
    const elapsed = () => Math.round(clock.now() - t0);
    const tr: Transfer = { code: 0, httpCode: 0, remoteIp: "", remotePort: 0, localIp: "", localPort: 0, sizeDownload: 0, timeConnect: 0, timeTotal: 0, url: urlText };
    const fail = (code: number, error: string) => {
      tr.code = code;
      tr.error = error;
    };

    await (async () => {
      const url = parseHttpUrl(urlText);
      if (url.kind === "unsupported") return fail(1, `Protocol "${url.scheme}" not supported`);
      if (url.kind === "malformed") return fail(3, `URL rejected: ${url.why}`);
      const { host, port } = url.url;
      const ip = await resolveHost(ctx, host, Math.max(0, deadlineAt - clock.now()));
      if (ip === undefined) {
        if (clock.now() >= deadlineAt) return fail(28, `Resolving timed out after ${elapsed()} milliseconds`);
        return fail(6, `Could not resolve host: ${host}`);
      }
      tr.remoteIp = formatIpv4(ip);
      tr.remotePort = port;

      // Reuse the previous transfer's connection when it is to the same address and still usable.
      let conn: HttpConnection | undefined;
      if (cached && cached.ip === ip && cached.port === port && cached.conn.reusable) {
        conn = cached.conn;
        info(`Re-using existing connection with host ${host}`);
      } else if (cached) {
        closeConnection(cached.conn, info);
        cached = undefined;
      }

      for (let attempt = 0; ; attempt++) {
        if (!conn) {
          const opened = await openConnection(ctx, ip, port, host, deadlineAt, opts.connectTimeoutMs, info, t0, nextConnId++);
          if (opened.kind === "failed") return fail(opened.code, opened.error);
          conn = opened.conn;
          cached = { ip, port, conn };
          tr.timeConnect = (clock.now() - t0) / 1000;
        }
        tr.localIp = formatIpv4(conn.socket.local.ip);
        tr.localPort = conn.socket.local.port;
        const request = buildRequest(method, url.url, opts, body);
        if (opts.verbose) {
          for (const line of request.head.split("\r\n").slice(0, -1)) stderr.push(`> ${line}\n`);
          if (body) stderr.push(`} [${body.length} bytes data]\n`);
        }
        const wasReused = conn.requests > 0;
        conn.requests++;
        const wrote = await conn.socket.write(Buffer.concat([Buffer.from(request.head, "latin1"), body ?? Buffer.alloc(0)]));
        const outcome: ResponseOutcome = wrote
          ? await readResponse(
              conn,
              method,
              deadline,
              (head) => {
                if (opts.verbose) {
                  for (const line of head.lines) stderr.push(`< ${line}\n`);
                  stderr.push("< \n");
                }
              },
              opts.output !== "null",
            )
          : { kind: "reset", received: 0 };
        // A kept-alive connection the server has closed meanwhile: curl retries once on a fresh one.
        if (wasReused && attempt === 0 && (outcome.kind === "empty" || (outcome.kind === "reset" && outcome.received === 0))) {
          info("Connection died, retrying a fresh connect (retry count: 1)");
          conn.socket.abort();
          cached = undefined;
          conn = undefined;
          continue;
        }
        if (outcome.kind !== "ok") {
          conn.reusable = false;
          conn.socket.abort();
          cached = undefined;
          info("Closing connection");
        }
        switch (outcome.kind) {
          case "empty":
            return fail(52, "Empty reply from server");
          case "reset":
            return fail(56, "Recv failure: Connection reset by peer");
          case "weird":
            return fail(8, "Weird server reply");
          case "partial":
            return fail(18, outcome.remaining === undefined ? "transfer closed with outstanding read data remaining" : `transfer closed with ${outcome.remaining} bytes remaining to read`);
          case "timeout": {
            const got = outcome.expected === undefined ? `${outcome.received} bytes received` : `${outcome.received} out of ${outcome.expected} bytes received`;
            return fail(28, `Operation timed out after ${elapsed()} milliseconds with ${got}`);
          }
          case "ok":
            break;
        }
        const { head } = outcome;
        tr.httpCode = head.status;
        tr.sizeDownload = outcome.size;
        const length = header(head, "content-length");
        if (length !== undefined && /^\d+$/.test(length)) tr.expected = Number(length);
        if (opts.verbose && outcome.size > 0) stderr.push(`{ [${outcome.size} bytes data]\n`);
        conn.reusable = outcome.reusable;
        if (opts.fail && head.status >= 400) {
          info(`The requested URL returned error: ${head.status}`);
          conn.reusable = false;
          conn.socket.abort();
          cached = undefined;
          info("Closing connection");
          return fail(22, `The requested URL returned error: ${head.status}`);
        }
        if (opts.output === "stdout") {
          if (opts.head || opts.include) stdout.push(head.lines.map((l) => `${l}\r\n`).join("") + "\r\n");
          if (!opts.head) stdout.push(Buffer.from(outcome.body).toString("utf8"));
        } else if (opts.output !== "null") {
          // -o FILE: the bytes as received, never decoded; the head too with -i/-I, as curl does.
          const parts: Uint8Array[] = [];
          if (opts.head || opts.include) parts.push(Buffer.from(head.lines.map((l) => `${l}\r\n`).join("") + "\r\n", "latin1"));
          if (!opts.head) parts.push(outcome.body);
          if (!writeFile(ctx, opts.output.file, concatAll(parts))) {
            if (outcome.reusable) info(`Connection #${conn.id} to host ${host} left intact`);
            else {
              closeConnection(conn, info);
              cached = undefined;
            }
            return fail(23, "Failure writing output to destination");
          }
        }
        if (outcome.reusable) info(`Connection #${conn.id} to host ${host} left intact`);
        else {
          closeConnection(conn, info);
          cached = undefined;
        }
        return;
      }
    })();

    tr.timeTotal = (clock.now() - t0) / 1000;
    if (!opts.silent) stderr.push(progressLine(tr));
    if (tr.code !== 0) {
      exitCode = tr.code;
      if (!opts.silent || opts.showError) stderr.push(`curl: (${tr.code}) ${tr.error}\n`);
    } else exitCode = 0;
    if (opts.writeOut !== undefined) stdout.push(writeOut(opts.writeOut, tr, stderr));
  }
  if (cached) {
    // curl closes kept-alive connections at exit: a FIN, then nothing waits for the server's.
    cached.conn.socket.end();
  }
  return { exitCode, stdout: stdout.join(""), stderr: stderr.join("") };
}

/** -o FILE into the pod's filesystem; false when there is none or it is full (curl's exit 23). */
function writeFile(ctx: ToolContext, file: string, bytes: Uint8Array): boolean {
  if (!ctx.fs) return false;
  try {
    ctx.fs.write(resolvePath(file), bytes);
    return true;
  } catch (err) {
    if (err instanceof FsError) return false;
    throw err;
  }
}

type Opened = { kind: "connected"; conn: HttpConnection } | { kind: "failed"; code: number; error: string };

async function openConnection(
  ctx: ToolContext,
  ip: number,
  port: number,
  host: string,
  deadlineAt: number,
  connectTimeoutMs: number | undefined,
  info: (line: string) => void,
  t0: number,
  id: number,
): Promise<Opened> {
  const { clock } = ctx;
  const addr = formatIpv4(ip);
  info(`  Trying ${addr}:${port}...`);
  const connectStart = clock.now();
  const budget = Math.max(0, Math.min(connectTimeoutMs ?? CURL_CONNECT_TIMEOUT_MS, deadlineAt - connectStart));
  const attempt = ctx.tcp.connect(ip, port, { timeoutMs: budget });
  // The stack enforces timeoutMs; the race is a second bound so an exec can never hang on it.
  const result = await Promise.race([attempt, clock.sleep(budget + 1000).then(() => ({ kind: "timeout" }) as const)]);
  const elapsed = Math.round(clock.now() - t0);
  const failed = (code: number, why: string, verbose: string): Opened => {
    info(verbose);
    info("Closing connection");
    return { kind: "failed", code, error: why };
  };
  switch (result.kind) {
    case "connected":
      info(`Connected to ${host} (${addr}) port ${port}`);
      return { kind: "connected", conn: new HttpConnection(result.socket, id, clock) };
    case "refused":
      info(`connect to ${addr} port ${port} failed: Connection refused`);
      return failed(7, `Failed to connect to ${host} port ${port} after ${elapsed} ms: Connection refused`, `Failed to connect to ${host} port ${port} after ${elapsed} ms: Connection refused`);
    case "unreachable":
      info(`connect to ${addr} port ${port} failed: No route to host`);
      return failed(7, `Failed to connect to ${host} port ${port} after ${elapsed} ms: No route to host`, `Failed to connect to ${host} port ${port} after ${elapsed} ms: No route to host`);
    case "timeout":
      // A late success after our own bound must not leak a connection.
      void attempt.then((late) => late.kind === "connected" && late.socket.abort(), () => {});
      return failed(28, `Connection timed out after ${elapsed} milliseconds`, `Connection timed out after ${elapsed} milliseconds`);
  }
}

function closeConnection(conn: HttpConnection, info: (line: string) => void): void {
  info("Closing connection");
  conn.reusable = false;
  conn.socket.end();
}

function buildRequest(method: string, url: HttpUrl, opts: CurlOptions, body: Buffer | undefined): { head: string } {
  // curl's own headers in its order; -H "Name: v" replaces one, "Name:" removes it, "Name;" sends it empty.
  const custom = opts.headers.map((h) => {
    const semi = /^([^:;]+);\s*$/.exec(h);
    if (semi) return { name: semi[1]!.trim(), value: "", remove: false };
    const colon = h.indexOf(":");
    if (colon <= 0) return undefined;
    const value = h.slice(colon + 1).trim();
    return { name: h.slice(0, colon).trim(), value, remove: value === "" };
  });
  const overridden = (name: string) => custom.some((c) => c !== undefined && c.name.toLowerCase() === name.toLowerCase());
  const lines = [`${method} ${url.target} HTTP/1.1`];
  if (!overridden("Host")) lines.push(`Host: ${url.hostHeader}`);
  if (!overridden("User-Agent") && opts.userAgent !== "") lines.push(`User-Agent: ${opts.userAgent}`);
  if (!overridden("Accept")) lines.push("Accept: */*");
  for (const c of custom) if (c && !c.remove) lines.push(`${c.name}: ${c.value}`);
  if (body) {
    if (!overridden("Content-Length")) lines.push(`Content-Length: ${body.length}`);
    if (!overridden("Content-Type")) lines.push("Content-Type: application/x-www-form-urlencoded");
  }
  return { head: `${lines.join("\r\n")}\r\n\r\n` };
}

const PROGRESS_HEADER =
  "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n" +
  "                                 Dload  Upload   Total   Spent    Left  Speed\n";

/** The meter's last line, as lib/progress.c prints it (sizes via max5data, times via time2str). */
function progressLine(tr: Transfer): string {
  const got = tr.sizeDownload;
  const total = tr.expected ?? got;
  const pct = (part: number, whole: number) => String(whole > 0 ? Math.floor((part * 100) / whole) : 0).padStart(3);
  const size = (n: number) => (n < 100_000 ? String(n) : n < 10_000 * 1024 ? `${Math.floor(n / 1024)}k` : `${Math.floor(n / 1024 / 1024)}M`).padStart(5);
  const secs = Math.floor(tr.timeTotal);
  const time = secs <= 0 ? "--:--:--" : `${String(Math.floor(secs / 3600)).padStart(2)}:${String(Math.floor(secs / 60) % 60).padStart(2, "0")}:${String(secs % 60).padStart(2, "0")}`;
  const speed = size(tr.timeTotal > 0 ? Math.floor(got / tr.timeTotal) : 0);
  const received = tr.expected !== undefined ? pct(got, tr.expected) : "  0";
  return `${pct(got, total)} ${size(total)}  ${received} ${size(got)}    0 ${size(0)}  ${speed}  ${size(0)} ${time} ${time} --:--:-- ${speed}\n`;
}

/** -w: %{variable} and \n \r \t escapes, as curl's tool_writeout.c. */
function writeOut(format: string, tr: Transfer, stderr: string[]): string {
  const vars: Record<string, string> = {
    http_code: String(tr.httpCode).padStart(3, "0"),
    response_code: String(tr.httpCode).padStart(3, "0"),
    remote_ip: tr.remoteIp,
    remote_port: tr.remotePort ? String(tr.remotePort) : "",
    local_ip: tr.localIp,
    local_port: tr.localPort ? String(tr.localPort) : "",
    time_total: tr.timeTotal.toFixed(6),
    time_connect: tr.timeConnect.toFixed(6),
    size_download: String(tr.sizeDownload),
    url_effective: tr.url,
    url: tr.url,
    exitcode: String(tr.code),
    errormsg: tr.error ?? "",
  };
  return format.replace(/%\{([a-z_]+)\}|%%|\\([nrt\\])/g, (match, name: string | undefined, esc: string | undefined) => {
    if (esc !== undefined) return ({ n: "\n", r: "\r", t: "\t", "\\": "\\" } as Record<string, string>)[esc]!;
    if (match === "%%") return "%";
    const value = vars[name!];
    if (value === undefined) {
      stderr.push(`curl: unknown --write-out variable: '${name}'\n`);
      return "";
    }
    return value;
  });
}
