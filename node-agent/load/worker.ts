/**
 * A load client: `connections` connections (or UDP sockets) to the targets, each following its
 * open-loop schedule or running closed loop (schedule.ts), for the run's duration, recording into
 * a LoadRecorder (stats.ts) and publishing an interval snapshot every `intervalMs` and one final
 * snapshot. The sockets are a parameter (`LoadNet`): a pod's emulated TCP and UDP on a node, or
 * the host's real sockets in the CLI (NodePort runs, cli/load-host.ts), so both run this code.
 *
 * Design notes:
 * - An HTTP or tcp-rr connection is reused for every request (keep-alive), as wrk and k6 do; a
 *   keep-alive connection the server closed while idle is reopened and the request resent once
 *   without counting an error (an HTTP client retries an idempotent request so). A connection is
 *   opened again after any error; each open is a sample of the connect-time histogram.
 * - Errors by kind: refused, unreachable, connect_timeout (no connection), timeout (no answer
 *   within the timeout), reset, eof (closed before the answer), bad_response, corrupt (an answer whose bytes are not the ones sent), http_4xx/http_5xx,
 *   send_failed (a datagram the netns could not send).
 * - Which server answered: the endpoint behind a connection after kube-proxy's DNAT is read once
 *   per connection from the client node's conntrack (`endpointOf`), so a run through a Service is
 *   reported per server node.
 * - Fairness to the node: emulated sockets can answer in microtasks (a server on the same node),
 *   and a closed loop would then never let the node read NATS, nor the connections to other nodes
 *   (whose answers need NATS) have their turn: a closed-loop connection yields a macrotask turn
 *   after every request, an open-loop one at least every YIELD_MS. A closed loop waits FAIL_BACKOFF_MS after a failed connect so a
 *   refusing target is counted, not spun on.
 */
import type { LoadSnapshot, LoadWorkload } from "../../cluster/types.ts";
import { parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/common.ts";
import type { CloseReason, DatagramErrorHandler, TcpApi, TcpSocket } from "../tcp/api.ts";
import type { Clock } from "../tools/common.ts";
import { FixedReader, HttpResponseReader, httpRequest, rrRequest, udpRequest, udpSeqOf, type ReadState } from "./protocol.ts";
import { ConnectionSchedule, loadMode, nextSend, requestLatency, schedules, type LoadMode } from "./schedule.ts";
import { LoadRecorder, type ErrorKind } from "./stats.ts";

const YIELD_MS = 5;
const FAIL_BACKOFF_MS = 10;

/** The sockets a load client uses (a pod's netns, or the host's). */
export interface LoadNet {
  tcp: TcpApi;
  udp: {
    bindEphemeralUdp(handler: (payload: Uint8Array, meta: { src: Ipv4Addr; srcPort: number }) => void, onError?: DatagramErrorHandler): number;
    sendUdp(dst: Ipv4Addr, dstPort: number, srcPort: number, payload: Uint8Array): { kind: string };
    unbindUdp(port: number): void;
  };
  clock: Clock;
  /** The server behind a flow (after DNAT) as an address; the destination itself when not NATed. */
  endpointOf(proto: "tcp" | "udp", localPort: number, dst: Ipv4Addr, dstPort: number, localIp: Ipv4Addr | undefined): string;
  /** The client's own address (for UDP flows, whose socket has no local address of its own). */
  localIp?: Ipv4Addr;
}

export interface LoadClientOptions {
  runId: string;
  worker: string;
  node: string;
  workload: LoadWorkload;
  publish(snapshot: LoadSnapshot): void;
}

/** A running client: `done` resolves after the final snapshot is published; `stop()` ends it early. */
export interface LoadClient {
  readonly done: Promise<void>;
  stop(): void;
}

export function startLoadClient(net: LoadNet, opts: LoadClientOptions): LoadClient {
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const done = runClient(net, opts, stopped).catch(() => {});
  return { done, stop };
}

interface Target {
  ip: Ipv4Addr;
  port: number;
  text: string;
}

interface Run {
  readonly net: LoadNet;
  readonly w: LoadWorkload;
  readonly mode: LoadMode;
  readonly rec: LoadRecorder;
  readonly stopped: Promise<void>;
  start: number;
  end: number;
  sent: number;
}

async function runClient(net: LoadNet, opts: LoadClientOptions, stopped: Promise<void>): Promise<void> {
  const w = opts.workload;
  const { clock } = net;
  const targets: Target[] = w.targets.flatMap((t) => {
    const ip = parseIpv4Addr(t.ip);
    return ip === undefined ? [] : [{ ip, port: t.port, text: t.ip }];
  });
  const base = { runId: opts.runId, worker: opts.worker, node: opts.node };
  const emptyInterval = { requests: 0, errors: 0, bytesSent: 0, bytesReceived: 0, latency: "" };
  if (targets.length === 0 || w.connections < 1) {
    opts.publish({ kind: "final", ...base, seq: 0, elapsedMs: 0, intended: 0, sent: 0, interval: emptyInterval, endpoints: [], error: "no target address or no connection to run" });
    return;
  }
  const start = clock.now();
  const run: Run = { net, w, mode: loadMode(w.rate), rec: new LoadRecorder(), stopped, start, end: start + w.durationMs, sent: 0 };
  const scheds = run.mode.kind === "open" ? schedules(start, w.connections, run.mode.rate) : undefined;
  let finished = false;
  void stopped.then(() => (run.end = Math.min(run.end, clock.now())));
  const intended = (until = Math.min(clock.now(), run.end)) => (scheds ? scheds.reduce((n, s) => n + s.dueBefore(until), 0) : run.sent);
  let seq = 0;
  let markDone!: () => void;
  const allDone = new Promise<void>((resolve) => (markDone = resolve));
  const ticker = (async () => {
    let next = start + w.intervalMs;
    for (;;) {
      const wait = Math.max(0, next - clock.now());
      await Promise.race([clock.sleep(wait), allDone]);
      if (finished) return;
      opts.publish({ kind: "interval", ...base, seq: seq++, elapsedMs: clock.now() - start, intended: intended(), sent: run.sent, interval: run.rec.takeInterval() });
      next += w.intervalMs;
    }
  })();
  await Promise.all(
    Array.from({ length: w.connections }, (_, i) => {
      const target = targets[i % targets.length]!;
      const sched = scheds?.[i];
      if (w.scenario === "udp-rr") return udpConnection(run, target, sched);
      if (w.scenario === "tcp-stream") return streamConnection(run, target);
      return rrConnection(run, target, sched);
    }),
  );
  finished = true;
  markDone();
  await ticker;
  // Everything due before the run's end (a stop moved the end): the last connection may finish before it.
  opts.publish({ kind: "final", ...base, seq, elapsedMs: clock.now() - start, intended: intended(run.end), sent: run.sent, interval: run.rec.takeInterval(), endpoints: run.rec.results() });
}

/** Sleeps `ms`, or less when the run is stopped. */
function pause(run: Run, ms: number): Promise<void> {
  return Promise.race([run.net.clock.sleep(ms), run.stopped]);
}

/** A value, or "timeout" once `ms` passed (the run's stop does not cut an answer short). */
function within<T>(clock: Clock, p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let cancel: (() => void) | undefined;
  const timer = new Promise<"timeout">((resolve) => {
    if (clock.schedule) cancel = clock.schedule(Math.max(0, ms), () => resolve("timeout"));
    else void clock.sleep(Math.max(0, ms)).then(() => resolve("timeout"));
  });
  return Promise.race([p, timer]).finally(() => cancel?.());
}

const CLOSE_ERROR: Record<CloseReason["kind"], ErrorKind> = { closed: "eof", reset: "reset", refused: "refused", timeout: "timeout", unreachable: "unreachable", aborted: "reset" };

/** Why a connection's read ended: its close reason if it is already known, else "eof". */
async function endReason(sock: TcpSocket, clock: Clock): Promise<ErrorKind> {
  const r = await Promise.race([sock.closed, clock.yieldTurn().then(() => undefined)]);
  return r ? CLOSE_ERROR[r.kind] : "eof";
}

type Connection = { sock: TcpSocket; endpoint: string; reused: boolean };

async function open(run: Run, t: Target): Promise<Connection | { error: ErrorKind }> {
  const { clock, tcp } = run.net;
  const t0 = clock.now();
  const c = await within(clock, tcp.connect(t.ip, t.port, { timeoutMs: run.w.timeoutMs }), run.w.timeoutMs + 1000);
  if (c === "timeout" || c.kind === "timeout") return { error: "connect_timeout" };
  if (c.kind !== "connected") return { error: c.kind };
  c.socket.setNoDelay?.(true);
  const endpoint = run.net.endpointOf("tcp", c.socket.local.port, t.ip, t.port, c.socket.local.ip);
  run.rec.connected(endpoint, clock.now() - t0);
  return { sock: c.socket, endpoint, reused: false };
}

/** One request/response connection (http, tcp-rr). */
async function rrConnection(run: Run, t: Target, sched: ConnectionSchedule | undefined): Promise<void> {
  const { clock } = run.net;
  const w = run.w;
  const request = w.scenario === "http" ? httpRequest(t.text, t.port, w.requestBytes, w.responseBytes) : rrRequest(w.requestBytes, w.responseBytes);
  let conn: Connection | undefined;
  let lastYield = clock.now();
  try {
    for (let k = 0; ; k++) {
      let intendedAt: number;
      if (sched) {
        const n = nextSend(sched, k, clock.now(), run.end);
        if (n.kind === "done") break;
        if (n.kind === "wait") await pause(run, n.ms);
        if (clock.now() >= run.end) break;
        intendedAt = n.intended;
      } else {
        if (clock.now() >= run.end) break;
        intendedAt = clock.now();
      }
      run.sent++;
      let outcome: { ok: true; bytes: number } | { ok: false; error: ErrorKind; keep?: boolean };
      for (let attempt = 0; ; attempt++) {
        if (!conn) {
          const o = await open(run, t);
          if ("error" in o) {
            outcome = { ok: false, error: o.error };
            break;
          }
          conn = o;
        }
        const sentAt = clock.now();
        const r = await exchange(run, conn.sock, request, sentAt);
        if (r.kind === "stale" && conn.reused && attempt === 0) {
          // The server closed this idle keep-alive connection: reopen and resend, as HTTP clients do.
          conn.sock.abort();
          conn = undefined;
          continue;
        }
        if (r.kind === "done") {
          const latency = requestLatency(run.mode, intendedAt, sentAt, clock.now());
          const status = r.state.status;
          if (status !== undefined && status >= 400) outcome = { ok: false, error: status >= 500 ? "http_5xx" : "http_4xx", keep: r.state.keepAlive };
          else {
            run.rec.ok(conn.endpoint, latency, request.length, r.state.bytes);
            outcome = { ok: true, bytes: r.state.bytes };
          }
          if (!r.state.keepAlive || w.reuse === false) {
            conn.sock.end();
            conn = undefined;
          } else conn.reused = true;
        } else outcome = { ok: false, error: r.kind === "stale" ? "eof" : r.error };
        break;
      }
      if (!outcome.ok) {
        run.rec.error(conn?.endpoint ?? t.text, outcome.error);
        if (conn && !outcome.keep) {
          conn.sock.abort();
          conn = undefined;
        }
        if (!sched) await pause(run, FAIL_BACKOFF_MS);
      }
      if (!sched || clock.now() - lastYield >= YIELD_MS) {
        await clock.yieldTurn();
        lastYield = clock.now();
      }
    }
  } finally {
    conn?.sock.end();
  }
}

type Exchange = { kind: "done"; state: Extract<ReadState, { kind: "done" }> } | { kind: "failed"; error: ErrorKind } | { kind: "stale" };

/** Writes one request and reads its answer, within the timeout from `sentAt`. */
async function exchange(run: Run, sock: TcpSocket, request: Uint8Array, sentAt: number): Promise<Exchange> {
  const { clock } = run.net;
  const w = run.w;
  const reader = w.scenario === "http" ? new HttpResponseReader() : new FixedReader(w.responseBytes);
  const wrote = await within(clock, sock.write(request), w.timeoutMs);
  if (wrote === "timeout") return { kind: "failed", error: "timeout" };
  let got = 0;
  if (!wrote) return { kind: "stale" };
  for (;;) {
    const chunk = await within(clock, sock.read(), sentAt + w.timeoutMs - clock.now());
    if (chunk === "timeout") return { kind: "failed", error: "timeout" };
    if (chunk === null) return got === 0 ? { kind: "stale" } : { kind: "failed", error: await endReason(sock, clock) };
    got += chunk.length;
    const s = reader.push(chunk);
    if (s.kind === "done") return { kind: "done", state: s };
    if (s.kind === "bad") return { kind: "failed", error: s.corrupt ? "corrupt" : "bad_response" };
  }
}

/** One tcp-stream connection: writes until the run ends, then closes and waits for the close (the bytes delivered). */
async function streamConnection(run: Run, t: Target): Promise<void> {
  const { clock } = run.net;
  const chunk = new Uint8Array(Math.max(1, run.w.requestBytes));
  let lastYield = clock.now();
  while (clock.now() < run.end) {
    const o = await open(run, t);
    if ("error" in o) {
      run.rec.error(t.text, o.error);
      await pause(run, FAIL_BACKOFF_MS);
      continue;
    }
    run.sent++;
    let failed: ErrorKind | undefined;
    while (clock.now() < run.end) {
      const wrote = await within(clock, o.sock.write(chunk), run.w.timeoutMs);
      if (wrote !== true) {
        failed = wrote === "timeout" ? "timeout" : await endReason(o.sock, clock);
        break;
      }
      run.rec.bytes(o.endpoint, chunk.length, 0);
      if (clock.now() - lastYield >= YIELD_MS) {
        await clock.yieldTurn();
        lastYield = clock.now();
      }
    }
    if (failed) {
      run.rec.error(o.endpoint, failed);
      o.sock.abort();
      continue;
    }
    o.sock.end();
    // Done once the peer has everything (its FIN follows ours): what was written is what arrived.
    const closed = await within(clock, o.sock.closed, run.w.timeoutMs);
    if (closed === "timeout") {
      run.rec.error(o.endpoint, "timeout");
      o.sock.abort();
    } else if (closed.kind !== "closed") run.rec.error(o.endpoint, CLOSE_ERROR[closed.kind]);
    return;
  }
}

/** One udp-rr socket. Open loop: sends on schedule whatever is outstanding; closed loop: one at a time. */
async function udpConnection(run: Run, t: Target, sched: ConnectionSchedule | undefined): Promise<void> {
  const { clock, udp } = run.net;
  const w = run.w;
  const outstanding = new Map<number, { intended: number; sentAt: number }>();
  let endpoint: string | undefined;
  let wake: (() => void) | undefined;
  let port = 0;
  const answered = (payload: Uint8Array) => {
    const seq = udpSeqOf(payload);
    const o = seq === undefined ? undefined : outstanding.get(seq);
    if (!o) return; // late (already counted as a timeout) or not ours
    outstanding.delete(seq!);
    endpoint ??= run.net.endpointOf("udp", port, t.ip, t.port, run.net.localIp);
    run.rec.ok(endpoint, requestLatency(run.mode, o.intended, o.sentAt, clock.now()), w.requestBytes, payload.length);
    wake?.();
  };
  const refused: DatagramErrorHandler = (err) => {
    // An ICMP error names the destination, not the datagram: the oldest outstanding one pays.
    const oldest = outstanding.keys().next();
    if (oldest.done) return;
    outstanding.delete(oldest.value);
    run.rec.error(endpoint ?? t.text, err.kind === "refused" ? "refused" : "unreachable");
    wake?.();
  };
  try {
    port = udp.bindEphemeralUdp((payload) => answered(payload), refused);
  } catch {
    run.rec.error(t.text, "send_failed");
    return;
  }
  const expire = () => {
    const now = clock.now();
    for (const [seq, o] of outstanding) {
      if (now - o.sentAt < w.timeoutMs) break; // insertion order is send order
      outstanding.delete(seq);
      run.rec.error(endpoint ?? t.text, "timeout");
    }
  };
  let lastYield = clock.now();
  try {
    for (let k = 0; ; k++) {
      expire();
      let intendedAt: number;
      if (sched) {
        const n = nextSend(sched, k, clock.now(), run.end);
        if (n.kind === "done") break;
        if (n.kind === "wait") {
          await pause(run, n.ms);
          k--;
          continue;
        }
        intendedAt = n.intended;
      } else {
        if (clock.now() >= run.end) break;
        intendedAt = clock.now();
      }
      if (clock.now() >= run.end) break;
      run.sent++;
      const sentAt = clock.now();
      // Before the send: a server on the same node answers within sendUdp itself.
      outstanding.set(k >>> 0, { intended: intendedAt, sentAt });
      const answered = sched ? undefined : new Promise<void>((resolve) => (wake = resolve));
      const res = udp.sendUdp(t.ip, t.port, port, udpRequest(k, w.requestBytes, w.responseBytes));
      if (res.kind !== "sent") {
        outstanding.delete(k >>> 0);
        run.rec.error(t.text, "send_failed");
        if (!sched) await pause(run, FAIL_BACKOFF_MS);
        continue;
      }
      if (answered) {
        await within(clock, answered, w.timeoutMs);
        wake = undefined;
        await clock.yieldTurn();
      } else if (clock.now() - lastYield >= YIELD_MS) {
        await clock.yieldTurn();
        lastYield = clock.now();
      }
    }
    // The stragglers: answered, or timed out, within the timeout.
    while (outstanding.size > 0) {
      const first = outstanding.values().next().value!;
      const answered = new Promise<void>((resolve) => (wake = resolve));
      await within(clock, answered, first.sentAt + w.timeoutMs - clock.now());
      wake = undefined;
      expire();
    }
  } finally {
    udp.unbindUdp(port);
  }
}
