/**
 * agnhost netexec (kubernetes test/images/agnhost/netexec/netexec.go), the server Kubernetes'
 * own network e2e tests talk to. HTTP endpoints:
 * - `/`: "NOW: <time.Now()>" in Go's %v format;
 * - `/hostname`, `/hostName`: the pod name (os.Hostname() in a pod);
 * - `/clientip`: the peer as the server saw it, "IP:port" (r.RemoteAddr): after SNAT this is
 *   the node's address, which is what makes it useful;
 * - `/echo?msg=X[&code=N]`: X (from the query, or a POSTed urlencoded form, as r.FormValue);
 * - `/healthz`: 200 with an empty body; `/redirect?location=L&code=N`.
 * - `/dial?request=R&host=H&port=P&protocol=http|udp&tries=N`: N fresh connections (or UDP
 *   exchanges) from this pod to H:P asking R, answered as JSON {"responses":[...],"errors":[...]}
 *   (dialHandler, dialHTTP, dialUDP): how Kubernetes' e2e tests see which endpoints a Service
 *   spreads over, from inside a pod.
 * `/shell`, `/upload`, `/exit`, `/shutdown` are not emulated (501).
 * UDP (`--udp-port`): "hostname" -> pod name, "echo X" -> X, "clientip" -> "IP:port"; the
 * text is trimmed and lower-cased first, as netexec does; anything else gets no answer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { formatIpv4, parseIpv4Addr } from "../../overlay/wire/common.ts";
import { realClock } from "../tools/common.ts";
import { HttpConnection, readResponse } from "../tools/curl.ts";
import type { TcpDuplex } from "../tcp/duplex.ts";
import { reply, serveHttp, type ServeResult } from "./http.ts";
import type { AppEnv, UdpApi } from "./index.ts";

const MAX_FORM_BYTES = 1 << 20;

/** Go's `log` prefix: "2006/01/02 15:04:05 ". */
export function goLogTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/** time.Time's %v in UTC: "2006-01-02 15:04:05.999999999 +0000 UTC m=+1.000000001" (trailing zeros dropped). */
export function goTimeString(d: Date, sinceStartMs: number): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const frac = String(d.getUTCMilliseconds()).padStart(3, "0").replace(/0+$/, "");
  const date = `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}`;
  const time = `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}${frac ? `.${frac}` : ""}`;
  return `${date} ${time} +0000 UTC m=+${(sinceStartMs / 1000).toFixed(9)}`;
}

export function startNetexecHttp(env: AppEnv, port: number, log: (line: string) => void): ServeResult {
  const started = env.now().getTime();
  const goLog = (line: string) => log(`${goLogTime(env.now())} ${line}`);
  const served = serveHttp(env.tcp, port, (req, res, socket) => {
    void handle(req, res, socket).catch(() => res.destroy());
  }, env.schedule);
  if (served.kind === "inUse") goLog(`listen tcp :${port}: bind: address already in use`);
  else goLog(`Started HTTP server on port ${port}`);
  return served;

  async function handle(req: IncomingMessage, res: ServerResponse, socket: TcpDuplex): Promise<void> {
    const url = new URL(req.url ?? "/", "http://netexec");
    const form = await formValues(req, url);
    const text = { "Content-Type": "text/plain; charset=utf-8" };
    switch (url.pathname) {
      case "/hostname":
      case "/hostName":
        goLog(`GET ${url.pathname}`);
        return reply(res, 200, env.podName, text);
      case "/clientip":
        goLog("GET /clientip");
        return reply(res, 200, `${socket.remoteAddress}:${socket.remotePort}`, text);
      case "/echo": {
        const msg = form.get("msg") ?? "";
        const codeString = form.get("code") ?? "";
        goLog(`GET /echo?msg=${msg}&code=${codeString}`);
        if (codeString === "") return reply(res, 200, msg, text);
        const code = Number(codeString);
        if (!Number.isInteger(code) || code < 100 || code > 999) {
          return reply(res, 200, `argument 'code' must be an integer or empty, got ${JSON.stringify(codeString)}\n`, text);
        }
        return reply(res, code, msg, text);
      }
      case "/healthz":
        goLog("GET /healthz");
        return reply(res, 200, "");
      case "/redirect": {
        const location = form.get("location") ?? "";
        const code = Number(form.get("code") || 302);
        goLog(`${req.method} /redirect?msg=${location}&code=${form.get("code") ?? ""}`);
        const body = req.method === "GET" || req.method === "HEAD" ? `<a href="${location}">${statusText(code)}</a>.\n\n` : "";
        return reply(res, code, body, { ...(body ? { "Content-Type": "text/html; charset=utf-8" } : {}), Location: location });
      }
      case "/dial":
        return dial(form, res);
      case "/shell":
      case "/upload":
      case "/exit":
      case "/shutdown":
        goLog(`GET ${url.pathname}`);
        return reply(res, 501, `${url.pathname} is not emulated by kubewire\n`, text);
      default:
        // Go's ServeMux sends every other path to the "/" handler.
        goLog("GET /");
        return reply(res, 200, `NOW: ${goTimeString(env.now(), env.now().getTime() - started)}`, text);
    }
  }

  async function dial(form: Map<string, string>, res: ServerResponse): Promise<void> {
    const request = form.get("request") ?? "";
    const host = form.get("host") ?? "";
    const port = form.get("port") ?? "";
    const protocol = (form.get("protocol") ?? "").toLowerCase();
    const tryParam = form.get("tries") ?? "";
    goLog(`GET /dial?request=${request}&protocol=${protocol}&host=${host}&port=${port}&tries=${tryParam}`);
    const tries = tryParam === "" ? 1 : Number(tryParam);
    const ip = parseIpv4Addr(host);
    const portNumber = Number(port);
    if (!Number.isInteger(tries) || tries < 0 || tries > MAX_DIAL_TRIES) return reply(res, 400, `Invalid tries '${tryParam}'\n`);
    if (!request || ip === undefined || !Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535) {
      return reply(res, 400, `Invalid host or port: '${host}' '${port}'\n`);
    }
    if (protocol !== "" && protocol !== "http" && protocol !== "udp") return reply(res, 400, `unsupported protocol. ${protocol}\n`);
    const responses: string[] = [];
    const errors: string[] = [];
    let last = "";
    for (let i = 0; i < tries; i++) {
      const r = protocol === "udp" ? await dialUdp(env, request, ip, portNumber) : await dialHttp(env, request, ip, portNumber, host);
      if (r.kind === "ok") responses.push((last = r.body));
      else errors.push(r.error);
    }
    const output: Record<string, string[]> = {};
    if (last.length > 0) output.responses = responses;
    if (errors.length > 0) output.errors = errors;
    return reply(res, 200, JSON.stringify(output));
  }
}

/** agnhost caps nothing; a cap keeps one request from holding the pod for hours. */
const MAX_DIAL_TRIES = 10_000;
/** createHTTPClient's Timeout and dialUDP's read deadline. */
const DIAL_HTTP_TIMEOUT_MS = 5000;
const DIAL_UDP_TIMEOUT_MS = 3000;

type DialResult = { kind: "ok"; body: string } | { kind: "error"; error: string };

/** dialHTTP: GET http://host:port/request on a new connection (a new Transport per call), body as text. */
async function dialHttp(env: AppEnv, request: string, ip: number, port: number, host: string): Promise<DialResult> {
  const url = `http://${host}:${port}/${request}`;
  const deadline = realClock.sleep(DIAL_HTTP_TIMEOUT_MS).then(() => "timeout" as const);
  const c = await Promise.race([env.tcp.connect(ip, port, { timeoutMs: DIAL_HTTP_TIMEOUT_MS }), deadline]);
  if (c === "timeout" || c.kind === "timeout") return { kind: "error", error: `Get "${url}": dial tcp ${host}:${port}: i/o timeout` };
  if (c.kind === "refused") return { kind: "error", error: `Get "${url}": dial tcp ${host}:${port}: connect: connection refused` };
  if (c.kind === "unreachable") return { kind: "error", error: `Get "${url}": dial tcp ${host}:${port}: connect: no route to host` };
  const conn = new HttpConnection(c.socket, 0, realClock);
  try {
    await c.socket.write(new TextEncoder().encode(`GET /${request} HTTP/1.1\r\nHost: ${host}:${port}\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n`));
    const r = await readResponse(conn, "GET", deadline);
    if (r.kind === "ok") return { kind: "ok", body: new TextDecoder().decode(r.body) };
    if (r.kind === "timeout") return { kind: "error", error: `Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` };
    if (r.kind === "reset") return { kind: "error", error: `Get "${url}": read tcp: connection reset by peer` };
    return { kind: "error", error: `Get "${url}": EOF` };
  } finally {
    // transport.CloseIdleConnections(): the connection is not reused.
    c.socket.end();
  }
}

/** dialUDP: "request\n" from a fresh port, the first datagram back within 3 s. */
async function dialUdp(env: AppEnv, request: string, ip: number, port: number): Promise<DialResult> {
  const udp = env.udp;
  let answer: ((text: string) => void) | undefined;
  const got = new Promise<string>((resolve) => (answer = resolve));
  let local: number;
  try {
    local = udp.bindEphemeralUdp((payload) => answer?.(Buffer.from(payload).toString("utf8")));
  } catch {
    return { kind: "error", error: "dial udp: no free port" };
  }
  try {
    udp.sendUdp(ip, port, local, new TextEncoder().encode(`${request}\n`));
    const r = await Promise.race([got, realClock.sleep(DIAL_UDP_TIMEOUT_MS).then(() => undefined)]);
    if (r === undefined) return { kind: "error", error: `reading from udp connection failed. err:'read udp :${local}->${formatIpv4(ip)}:${port}: i/o timeout'` };
    return { kind: "ok", body: r };
  } finally {
    udp.unbindUdp(local);
  }
}

/** r.FormValue: a urlencoded POST/PUT/PATCH body first, then the query string. */
async function formValues(req: IncomingMessage, url: URL): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  const body: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_FORM_BYTES) body.push(chunk);
  }
  const isForm = (req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded");
  if (isForm && (req.method === "POST" || req.method === "PUT" || req.method === "PATCH")) {
    for (const [k, v] of new URLSearchParams(Buffer.concat(body).toString("utf8"))) if (!values.has(k)) values.set(k, v);
  }
  for (const [k, v] of url.searchParams) if (!values.has(k)) values.set(k, v);
  return values;
}

function statusText(code: number): string {
  return ({ 301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect", 308: "Permanent Redirect" } as Record<number, string>)[code] ?? "Found";
}

/** netexec's UDP server. Returns false when the port is taken. */
export function startNetexecUdp(env: AppEnv, udp: UdpApi, port: number, log: (line: string) => void): boolean {
  const goLog = (line: string) => log(`${goLogTime(env.now())} ${line}`);
  const bound = udp.bindUdp(port, (payload, meta) => {
    const text = Buffer.from(payload).toString("utf8").trim().toLowerCase();
    const client = `${formatIpv4(meta.src)}:${meta.srcPort}`;
    let answer: string | undefined;
    if (text === "hostname") {
      goLog("Sending udp hostName response");
      answer = env.podName;
    } else if (text.startsWith("echo ")) {
      answer = text.slice(5);
      goLog(`Echoing ${answer} to UDP client ${client}`);
    } else if (text === "clientip") {
      goLog(`Sending clientip back to UDP client ${client}`);
      answer = client;
    } else if (text.length > 0) {
      goLog(`Unknown UDP command received from ${client}: ${text}`);
    }
    if (answer !== undefined) udp.sendUdp(meta.src, meta.srcPort, meta.dstPort, new TextEncoder().encode(answer));
  });
  if (bound.kind === "inUse") {
    goLog(`Error occurred: failed to create listener for UDP address :${port}:listen udp :${port}: bind: address already in use`);
    return false;
  }
  goLog(`Started UDP server on port  ${port}`);
  return true;
}
