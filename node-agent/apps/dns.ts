/**
 * The coredns image: kubeadm's CoreDNS, serving the cluster zone on UDP and TCP 53 of its pod
 * from the hosting node's watch of Services, EndpointSlices, Namespaces and Pods (the
 * `kubernetes` plugin's informers), and sending names outside the zone to the node's upstream
 * (`forward . /etc/resolv.conf`; a coredns pod has dnsPolicy Default, so that file is the
 * node's). `health` answers on :8080/health and `ready` on :8181/ready, as their plugins do.
 *
 * The answers are node-agent/dns/answer.ts's; this file is only the server around them:
 * - UDP: one datagram, one response, sized to the client's EDNS0 buffer (512 without) and
 *   truncated with TC set when it does not fit (RFC 1035 §4.2.1, RFC 6891 §6.2.5).
 * - TCP: two-byte length-prefixed messages, several per connection and answered in order
 *   (RFC 1035 §4.2.2, RFC 7766 §6.2.1); idle connections closed after 10 s (CoreDNS's default
 *   `timeouts` idle), a message over 65535 bytes impossible by construction.
 * - Malformed input: what decodeQuery refuses without a usable header is dropped and counted;
 *   the rest gets FORMERR or NOTIMP (miekg/dns's DefaultMsgAcceptFunc and CoreDNS's server).
 */
import { answer, type AnswerOptions } from "../dns/answer.ts";
import type { ClusterDnsData } from "../dns/records.ts";
import { RCODE, decodeQuery, encodeResponse, responseSizeLimit, type DnsQuery, type Transport } from "../dns/wire.ts";
import type { TcpSocket } from "../tcp/api.ts";
import { realSchedule } from "../tcp/memory.ts";
import { reply, serveHttp } from "./http.ts";
import type { AppEnv } from "./index.ts";

/** Counters of one node's DNS servers (the status verb; CoreDNS's coredns_dns_* in spirit). */
export class DnsStats {
  requests = 0;
  udpRequests = 0;
  tcpRequests = 0;
  /** Undecodable datagrams and TCP messages dropped without an answer. */
  malformedDropped = 0;
  formerr = 0;
  notimp = 0;
  nxdomain = 0;
  servfail = 0;
  truncated = 0;
  forwarded = 0;
  forwardFailures = 0;
  forwardRefused = 0;
}

/** What a coredns pod needs from its node: the data, the Corefile's settings, the upstream. */
export interface DnsBackend {
  readonly data: ClusterDnsData;
  /** The `kubernetes` plugin's settings (zone, ttl, pods mode) from the Corefile, now. */
  options(): AnswerOptions;
  /**
   * Sends a query outside the cluster zone upstream; the response bytes (with the query's ID),
   * or "refused" over `max_concurrent`, or undefined when no upstream answered in time.
   */
  forward(query: Uint8Array, transport: Transport): Promise<Uint8Array | "refused" | undefined>;
  readonly stats: DnsStats;
}

const TCP_IDLE_MS = 10_000;
const HEALTH_PORT = 8080;
const READY_PORT = 8181;

/** A minimal error response for a query we cannot answer from data: same ID and question. */
function errorResponse(query: DnsQuery, rcode: number): Uint8Array {
  return encodeResponse(
    {
      id: query.id,
      opcode: query.opcode,
      rcode,
      aa: false,
      tc: false,
      rd: query.rd,
      ra: true,
      ad: false,
      cd: query.cd,
      question: query.question,
      answers: [],
      authorities: [],
      additionals: [],
      opt: query.edns ? { udpPayloadSize: query.edns.udpPayloadSize, do: query.edns.do, options: [] } : undefined,
    },
    responseSizeLimit(query, "udp"),
  ).bytes;
}

/**
 * One query in, the response bytes out (undefined: drop, nothing is sent). `bytes` is read
 * before the first await only; what outlives that is copied.
 */
export async function serveQuery(backend: DnsBackend, bytes: Uint8Array, transport: Transport): Promise<Uint8Array | undefined> {
  const st = backend.stats;
  st.requests++;
  if (transport === "udp") st.udpRequests++;
  else st.tcpRequests++;
  const decoded = decodeQuery(bytes);
  if (!decoded.ok) {
    if (decoded.reply === undefined) {
      st.malformedDropped++;
      return undefined;
    }
    if (decoded.error === "notimp") st.notimp++;
    else st.formerr++;
    return decoded.reply;
  }
  const query = decoded.query;
  const result = answer(query, backend.data, backend.options());
  if (result.kind === "forward") {
    st.forwarded++;
    const upstream = await backend.forward(bytes, transport).catch(() => undefined);
    if (upstream === "refused") {
      st.forwardRefused++;
      return errorResponse(query, RCODE.REFUSED);
    }
    if (upstream === undefined) {
      // CoreDNS's forward answers SERVFAIL when no upstream is healthy or none answered in time.
      st.forwardFailures++;
      st.servfail++;
      return errorResponse(query, RCODE.SERVFAIL);
    }
    return upstream;
  }
  // A CNAME out of the zone (ExternalName) goes back alone: the client's stub resolver follows it
  // through the same server (CoreDNS would append the target's records from its upstream).
  const response = result.response;
  if (response.rcode === RCODE.NXDOMAIN) st.nxdomain++;
  else if (response.rcode === RCODE.SERVFAIL) st.servfail++;
  const encoded = encodeResponse(response, responseSizeLimit(query, transport), transport);
  if (encoded.truncated) st.truncated++;
  return encoded.bytes;
}

export interface DnsApp {
  stop(): void;
}

/** Binds UDP and TCP `port` in the pod; undefined (and a log line) when either is taken. */
export function startDnsServer(env: AppEnv, backend: DnsBackend, port: number, log: (line: string) => void): DnsApp | undefined {
  const udp = env.udp.bindUdp(port, (payload, meta) => {
    // The netns reuses `meta` (and the payload) for the next datagram: keep what the reply needs.
    const { src, srcPort, dstPort } = meta;
    void serveQuery(backend, payload, "udp").then((out) => {
      if (out) sendDatagram(env, src, srcPort, dstPort, out);
    });
  });
  if (udp.kind === "inUse") {
    log(`[ERROR] plugin/coredns: listen udp :${port}: bind: address already in use`);
    return undefined;
  }
  const tcp = env.tcp.listen(port);
  if (tcp.kind === "inUse") {
    env.udp.unbindUdp(port);
    log(`[ERROR] plugin/coredns: listen tcp :${port}: bind: address already in use`);
    return undefined;
  }
  const listener = tcp.listener;
  const conns = new Set<TcpSocket>();
  let stopped = false;
  void (async () => {
    for (;;) {
      const sock = await listener.accept();
      if (!sock) return;
      if (stopped) {
        sock.abort();
        return;
      }
      conns.add(sock);
      void serveTcp(backend, sock, env).finally(() => conns.delete(sock));
    }
  })();
  const health = serveHttp(env.tcp, HEALTH_PORT, (req, res) => {
    req.resume();
    reply(res, 200, "OK", { "Content-Type": "text/plain; charset=utf-8" });
  }, env.schedule);
  const ready = serveHttp(env.tcp, READY_PORT, (req, res) => {
    req.resume();
    // `ready` reports OK once the kubernetes plugin has synced its informers.
    if (backend.data.synced) reply(res, 200, "OK", { "Content-Type": "text/plain; charset=utf-8" });
    else reply(res, 503, "kubernetes", { "Content-Type": "text/plain; charset=utf-8" });
  }, env.schedule);
  log(`.:${port}`);
  log("CoreDNS-1.11.3 (emulated)");
  log("linux/amd64, go1.21.11, kubewire");
  return {
    stop: () => {
      if (stopped) return;
      stopped = true;
      env.udp.unbindUdp(port);
      listener.close();
      for (const c of conns) c.abort();
      if (health.kind === "serving") health.stop();
      if (ready.kind === "serving") ready.stop();
    },
  };
}

/**
 * A response larger than the path MTU (an EDNS0 client asked for up to 4096 bytes) is sent in
 * fragments, as Linux does for a UDP socket in its default IP_PMTUDISC_WANT mode: DF on what
 * fits, local fragmentation for what does not (ip(7)).
 */
function sendDatagram(env: AppEnv, dst: number, dstPort: number, srcPort: number, bytes: Uint8Array): void {
  const r = env.udp.sendUdp(dst, dstPort, srcPort, bytes);
  if (r.kind === "messageTooLong") env.udp.sendUdp(dst, dstPort, srcPort, bytes, { dontFragment: false });
}

/** Length-prefixed messages on one connection, answered in order until EOF or idle. */
async function serveTcp(backend: DnsBackend, sock: TcpSocket, env: AppEnv): Promise<void> {
  let buf: Uint8Array = new Uint8Array(0);
  const schedule = env.schedule ?? realSchedule;
  let cancelIdle = schedule(TCP_IDLE_MS, () => sock.abort());
  try {
    for (;;) {
      const chunk = await sock.read();
      if (chunk === null) break;
      cancelIdle();
      cancelIdle = schedule(TCP_IDLE_MS, () => sock.abort());
      buf = concat(buf, chunk);
      while (buf.length >= 2) {
        const len = (buf[0]! << 8) | buf[1]!;
        if (buf.length < 2 + len) break;
        const msg = buf.slice(2, 2 + len);
        buf = buf.subarray(2 + len);
        const out = await serveQuery(backend, msg, "tcp");
        if (out === undefined) {
          // An undecodable message leaves nothing to answer on this stream: close it.
          sock.abort();
          return;
        }
        const framed = new Uint8Array(2 + out.length);
        framed[0] = out.length >> 8;
        framed[1] = out.length & 0xff;
        framed.set(out, 2);
        if (!(await sock.write(framed))) return;
      }
    }
    sock.end();
  } catch {
    sock.abort();
  } finally {
    cancelIdle();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
