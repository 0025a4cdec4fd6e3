/**
 * The TCP of one netns (RFC 9293): listeners, connection demultiplexing, the closed-port
 * RST, ephemeral ports and the timers of all connections. Pure: time comes from
 * `TcpHost.now()` and `poll(now)`, randomness from `TcpHost.random()`, segments leave through
 * `TcpHost.output()`.
 *
 * Design notes:
 * - Demux is two numeric map levels: remote (ip * 65536 + port, exact in a double) then local
 *   (same packing), plus a one-entry cache of the last connection hit, which a bulk transfer
 *   hits on nearly every segment. No string keys on the per-segment path.
 * - Timers: each Tcb keeps absolute deadlines (Infinity when off) and the stack a binary heap
 *   with at most one live entry per connection. Moving a deadline later (the common case: the
 *   RTO restarts on every ACK) touches nothing; an entry that fires early is re-queued at the
 *   connection's real deadline. Only a deadline moving earlier pushes a new entry (generation
 *   numbers make the old one stale). So per-segment cost is O(1) and nextDeadline() is exact.
 * - Buffers: the send queue is a chunk list addressed by stream offset; segments are views into
 *   it (never overwritten). Received bytes are copied once into growing blocks so the app reads
 *   large chunks; the out-of-order queue is a sorted array of disjoint runs (the SACK blocks).
 * - Readers are woken in a microtask, so a batch of segments delivered in one go reaches the app
 *   as one chunk and app code never runs inside input().
 * - Loss recovery is RFC 6298 RTO, SACK (RFC 2018) with RFC 6675 recovery and tail loss probes
 *   when both ends offer it, NewReno (RFC 6582) when the peer does not; no timestamps.
 * - SYN flood defence as Linux's tcp_syncookies=1: the SYN queue and the accept queue are each
 *   bounded by the backlog; when the SYN queue is full a SYN is answered with a SYN cookie
 *   (RFC 4987 §3.6) and no state, and a later ACK carrying a valid cookie opens the connection.
 * - `closed` resolves when the app's connection is complete: on entering TIME-WAIT for the side
 *   that closed first (the 60 s wait is the stack's business, as in Linux), on the last ACK for
 *   the other.
 */
import { TcpFlag } from "../../overlay/wire/tcp.ts";
import type { Ipv4Addr } from "../../overlay/wire/common.ts";
import type { ConnectOptions, ConnectResult, Endpoint, IcmpErrorOutcome, ListenResult, QuotedSegment, SegmentIn, TcpApi, TcpHost } from "./api.ts";
import { seqAdd, seqGt } from "./seq.ts";
import { TcpListenerImpl, type ListenerOwner } from "./socket.ts";
import { icmpErrConvert, parseTcpOptions, synOptions, Tcb, TcpDefaults, TcpState, TcpTimers, TCP_STATE_NAMES, type TcbConfig, type TcbOwner, type TcpCounters, type TcpStateName } from "./tcb.ts";

export { icmpErrConvert, parseTcpOptions, TcpState, TcpTimers, TcpDefaults, TCP_STATE_NAMES, ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED } from "./tcb.ts";
export type { IcmpErr, TcpCounters, TcpStateName, TcpOptions } from "./tcb.ts";
export { TcpSocketImpl, TcpListenerImpl } from "./socket.ts";

export interface TcpStackOptions {
  /** Connections (any state but LISTEN) the table holds; a SYN beyond it is dropped. Default 65536. */
  maxConnections?: number;
  /** Per-connection receive buffer (the advertised window). Default 4 MiB. */
  recvBufferSize?: number;
  /** Per-connection send buffer (write() backpressure). Default 4 MiB. */
  sendBufferSize?: number;
  /** listen() backlog when none is given. Default 511 (nginx's). */
  defaultBacklog?: number;
  /** TCP_NODELAY for new sockets. Default true. */
  noDelay?: boolean;
  /** TIME-WAIT length. Default 60 s (Linux TCP_TIMEWAIT_LEN). */
  timeWaitMs?: number;
  /** SYN cookies when a listener's SYN queue is full (net.ipv4.tcp_syncookies=1). Default true. */
  syncookies?: boolean;
  /** Offer and accept SACK (net.ipv4.tcp_sack). Default true. */
  sack?: boolean;
  /** Largest segment handed to the IP layer as one GSO packet (TSO). Default 0: off, one MSS each. */
  tsoMaxBytes?: number;
}

export const TcpStackDefaults = {
  maxConnections: 65_536,
  defaultBacklog: 511,
  /** Linux ip_local_port_range. */
  ephemeralLow: 32_768,
  ephemeralHigh: 60_999,
} as const;

export interface TcpStats extends TcpCounters {
  /** Connections in ESTABLISHED or CLOSE-WAIT (RFC 1213 tcpCurrEstab). */
  currEstab: number;
  /** Entries in the connection table (all states but LISTEN). */
  connections: number;
  listeners: number;
}

export interface TcpConnectionInfo {
  state: TcpStateName;
  local: Endpoint;
  remote: Endpoint;
  /** Bytes written and not yet acknowledged (for a listener: its backlog). */
  sendQueue: number;
  /** Bytes received and not yet read (for a listener: connections waiting in accept). */
  recvQueue: number;
}

interface TimerEntry {
  at: number;
  tcb: Tcb;
  gen: number;
}

const EMPTY = new Uint8Array(0);
const { FIN, SYN, RST, ACK } = TcpFlag;

/** MSS values a cookie can carry (Linux msstab): the largest not above the peer's is used. */
const COOKIE_MSS = [536, 1300, 1440, 1460] as const;
/** The cookie time counter's period (Linux: 60 s; a power of two is as good). */
const COOKIE_PERIOD_MS = 64_000;
/** A cookie is valid in the period it was made and the next (Linux MAX_SYNCOOKIE_AGE). */
const COOKIE_MAX_AGE = 2;

/** One murmur3 round: a cheap, well-spread, non-cryptographic mix of `v` into `h`. */
function mix(h: number, v: number): number {
  let k = Math.imul(v, 0xcc9e_2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b87_3593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe654_6b64) | 0;
}

function newCounters(): TcpCounters {
  return {
    activeOpens: 0,
    passiveOpens: 0,
    attemptFails: 0,
    estabResets: 0,
    inSegs: 0,
    outSegs: 0,
    retransSegs: 0,
    outRsts: 0,
    listenOverflows: 0,
    listenDrops: 0,
    syncookiesSent: 0,
    syncookiesRecv: 0,
    syncookiesFailed: 0,
    tableFullDrops: 0,
    challengeAcks: 0,
    outOfOrderSegs: 0,
    fastRetransmits: 0,
    timeouts: 0,
    persistProbes: 0,
    delayedAcks: 0,
    lossProbes: 0,
    rtoExpirations: 0,
    sackRecoveries: 0,
    sackRetransSegs: 0,
    icmpErrorsAborted: 0,
    icmpErrorsSoft: 0,
    outOfWindowIcmps: 0,
    pmtuUpdates: 0,
  };
}

export class TcpStack implements TcpApi, TcbOwner, ListenerOwner {
  readonly counters: TcpCounters = newCounters();
  private readonly conns = new Map<number, Map<number, Tcb>>();
  private count = 0;
  private last: Tcb | undefined;
  private readonly listeners = new Map<number, TcpListenerImpl>();
  private readonly heap: TimerEntry[] = [];
  private readonly config: TcbConfig;
  private readonly maxConnections: number;
  private readonly defaultBacklog: number;
  private readonly syncookies: boolean;
  /** Keys of the SYN cookie MAC (two per-stack random words, RFC 4987 §3.6 "secret"). */
  private readonly cookieKey0: number;
  private readonly cookieKey1: number;

  constructor(
    readonly host: TcpHost,
    opts: TcpStackOptions = {},
  ) {
    this.config = {
      recvBufferSize: opts.recvBufferSize ?? TcpDefaults.recvBufferSize,
      sendBufferSize: opts.sendBufferSize ?? TcpDefaults.sendBufferSize,
      noDelay: opts.noDelay ?? true,
      timeWaitMs: opts.timeWaitMs ?? TcpTimers.timeWaitMs,
      sack: opts.sack ?? true,
      tsoMaxBytes: opts.tsoMaxBytes ?? 0,
    };
    this.syncookies = opts.syncookies ?? true;
    this.cookieKey0 = host.random() >>> 0;
    this.cookieKey1 = host.random() >>> 0;
    this.maxConnections = opts.maxConnections ?? TcpStackDefaults.maxConnections;
    this.defaultBacklog = opts.defaultBacklog ?? TcpStackDefaults.defaultBacklog;
  }

  // ---- TcpApi ----

  listen(port: number, opts?: { backlog?: number }): ListenResult {
    if (this.listeners.has(port)) return { kind: "inUse" };
    const listener = new TcpListenerImpl(this, port, Math.max(1, opts?.backlog ?? this.defaultBacklog));
    this.listeners.set(port, listener);
    return { kind: "listening", listener };
  }

  connect(dst: Ipv4Addr, port: number, opts?: ConnectOptions): Promise<ConnectResult> {
    // A bound local address (IP_FREEBIND, as a transparent proxy binds the client's) needs a route all the same.
    const routed = this.host.sourceFor(dst);
    const src = routed === undefined ? undefined : (opts?.localAddress ?? routed);
    // No route: Linux fails connect() at once with ENETUNREACH.
    if (src === undefined) return Promise.resolve({ kind: "unreachable" });
    // A full table or no free port (EADDRNOTAVAIL / EADDRINUSE) has no ConnectResult of its own.
    if (this.count >= this.maxConnections) {
      this.counters.tableFullDrops++;
      return Promise.resolve({ kind: "unreachable" });
    }
    let localPort = opts?.localPort;
    if (localPort === undefined) localPort = this.ephemeralPort(src, dst, port);
    else if (this.lookup(src, localPort, dst, port) !== undefined) localPort = undefined;
    if (localPort === undefined) return Promise.resolve({ kind: "unreachable" });
    const tcb = new Tcb(this, src, localPort, dst, port, this.config);
    this.insert(tcb);
    const result = tcb.connect(this.host.now(), opts?.timeoutMs);
    this.schedule(tcb);
    return result;
  }

  // ---- IP layer side ----

  /** One received segment (checksum already verified by the IP layer). */
  input(seg: SegmentIn): void {
    this.counters.inSegs++;
    let tcb = this.lookup(seg.dst, seg.dstPort, seg.src, seg.srcPort);
    if (tcb !== undefined && tcb.state === TcpState.TIME_WAIT && this.reopensTimeWait(tcb, seg)) {
      tcb.finish({ kind: "closed" });
      tcb = undefined;
    }
    if (tcb !== undefined) {
      tcb.input(seg, this.host.now());
      return;
    }
    const listener = this.listeners.get(seg.dstPort);
    if (listener === undefined) {
      this.sendReset(seg);
      return;
    }
    // §3.10.7.2 LISTEN.
    const f = seg.flags;
    if (f & RST) return;
    if (f & ACK) {
      if (!(f & SYN) && this.cookieAck(listener, seg)) return;
      this.sendReset(seg);
      return;
    }
    if (!(f & SYN) || !this.host.isLocal(seg.dst)) return;
    // Linux tcp_conn_request: a full accept queue drops the SYN (cookies would not help: the
    // connection could not be queued either); a full SYN queue answers with a cookie.
    if (listener.acceptQueueFull) {
      this.counters.listenOverflows++;
      this.counters.listenDrops++;
      return;
    }
    if (listener.synQueueFull) {
      if (this.syncookies) this.sendCookie(listener, seg);
      else this.counters.listenDrops++;
      return;
    }
    if (this.count >= this.maxConnections) {
      this.counters.tableFullDrops++;
      return;
    }
    tcb = new Tcb(this, seg.dst, seg.dstPort, seg.src, seg.srcPort, this.config);
    tcb.listener = listener;
    listener.embryonic.add(tcb);
    this.insert(tcb);
    tcb.acceptSyn(seg, this.host.now());
  }

  /**
   * The ICMP error mapping (Linux icmp_err_convert), here so that the netns' UDP, which has no
   * module of its own, shares TCP's.
   */
  static readonly icmpErrConvert = icmpErrConvert;

  /**
   * An ICMP destination unreachable or time exceeded quoting a segment this stack sent (Linux
   * tcp_v4_err): to the connection the quote names, which decides (Tcb.icmpError). Types other
   * than 3 and 11 are ignored (source quench is obsolete, RFC 6633; redirects are routing's).
   * `nextHopMtu` is the RFC 1191 field of "fragmentation needed", else 0.
   */
  icmpError(quote: QuotedSegment, type: number, code: number, nextHopMtu = 0): IcmpErrorOutcome {
    const tcb = this.lookup(quote.src, quote.srcPort, quote.dst, quote.dstPort);
    // No connection: a SYN cookie's SYN-ACK, or one already gone. Listeners send nothing.
    if (tcb === undefined) return "ignored";
    const outcome = tcb.icmpError(quote.seq >>> 0, type, code, nextHopMtu, this.host.now());
    const c = this.counters;
    if (outcome === "aborted") c.icmpErrorsAborted++;
    else if (outcome === "soft") c.icmpErrorsSoft++;
    else if (outcome === "outOfWindow") c.outOfWindowIcmps++;
    // A closed Tcb has left the tables (finish -> release); otherwise its timers may have moved.
    if (tcb.state !== TcpState.CLOSED) this.schedule(tcb);
    return outcome;
  }

  // ---- SYN cookies (RFC 4987 §3.6; Linux net/ipv4/syncookies.c, secure_tcp_syn_cookie) ----
  //
  // ISN = H0(4-tuple) + client ISN + (count << 24) + ((H1(4-tuple, count) + mssIndex) mod 2^24)
  // with count = now / 64 s. The ACK's ack-1 is checked by undoing the first two terms, reading
  // the count from the top byte (current or previous period), and recovering the MSS index from
  // the 24-bit MAC. H is a keyed murmur3-style integer mix: NOT cryptographic (an attacker who
  // sees many cookies could learn about the keys); it only needs to make blind guesses fail.

  /** Sends a stateless SYN-ACK whose ISN is a cookie. Only the MSS survives (from a small table). */
  private sendCookie(listener: TcpListenerImpl, seg: SegmentIn): void {
    const now = this.host.now();
    listener.cookieAt = now;
    const peerMss = parseTcpOptions(seg.options).mss ?? TcpDefaults.defaultMss;
    let idx = COOKIE_MSS.length - 1;
    while (idx > 0 && COOKIE_MSS[idx]! > peerMss) idx--;
    const count = Math.floor(now / COOKIE_PERIOD_MS);
    const h0 = this.cookieHash(this.cookieKey0, seg, 0);
    const h1 = this.cookieHash(this.cookieKey1, seg, count);
    const isn = (h0 + seg.seq + ((count & 0xff) << 24) + ((h1 + idx) & 0xffffff)) >>> 0;
    this.counters.syncookiesSent++;
    this.counters.outSegs++;
    // No window scale and no SACK-permitted: nothing would remember that they were agreed.
    this.host.output({
      src: seg.dst,
      dst: seg.src,
      srcPort: seg.dstPort,
      dstPort: seg.srcPort,
      seq: isn,
      ack: seqAdd(seg.seq, 1),
      flags: SYN | ACK,
      window: Math.min(this.config.recvBufferSize, 0xffff),
      options: synOptions(this.host.mtuFor(seg.src) - 40, undefined, false),
      payload: EMPTY,
    });
  }

  /**
   * An ACK for a listener with no connection: when the listener sent cookies lately, a valid
   * cookie opens the connection straight into ESTABLISHED. Returns true when the segment is
   * consumed (opened, or dropped because the accept queue or the table is full), false when it
   * gets the usual RST.
   */
  private cookieAck(listener: TcpListenerImpl, seg: SegmentIn): boolean {
    const now = this.host.now();
    // Linux tcp_synq_no_recent_overflow: cookies are only looked at for 2 periods after one was sent.
    if (now - listener.cookieAt > COOKIE_MAX_AGE * COOKIE_PERIOD_MS) return false;
    const idx = this.checkCookie(seg, now);
    if (idx < 0) {
      this.counters.syncookiesFailed++;
      return false;
    }
    this.counters.syncookiesRecv++;
    if (!this.host.isLocal(seg.dst)) return true;
    if (listener.acceptQueueFull) {
      // Linux drops the ACK (tcp_abort_on_overflow=0): the client's retransmission retries.
      this.counters.listenOverflows++;
      this.counters.listenDrops++;
      return true;
    }
    if (this.count >= this.maxConnections) {
      this.counters.tableFullDrops++;
      return true;
    }
    const tcb = new Tcb(this, seg.dst, seg.dstPort, seg.src, seg.srcPort, this.config);
    tcb.listener = listener;
    this.insert(tcb);
    tcb.acceptCookie(seg, COOKIE_MSS[idx]!, now);
    this.schedule(tcb);
    return true;
  }

  /** The MSS index a valid cookie in `seg.ack - 1` carries, or -1. */
  private checkCookie(seg: SegmentIn, now: number): number {
    const cookie = seqAdd(seg.ack, -1);
    const clientIsn = seqAdd(seg.seq, -1);
    const count = Math.floor(now / COOKIE_PERIOD_MS);
    const c = (cookie - this.cookieHash(this.cookieKey0, seg, 0) - clientIsn) >>> 0;
    const age = (count - (c >>> 24)) & 0xff;
    if (age >= COOKIE_MAX_AGE) return -1;
    const idx = (c - this.cookieHash(this.cookieKey1, seg, count - age)) & 0xffffff;
    return idx < COOKIE_MSS.length ? idx : -1;
  }

  /** Keyed hash of the 4-tuple as the server sees it (the SYN's and the ACK's agree) and `count`. */
  private cookieHash(key: number, seg: SegmentIn, count: number): number {
    let h = mix(key, seg.src);
    h = mix(h, seg.dst);
    h = mix(h, (seg.srcPort << 16) | seg.dstPort);
    h = mix(h, count);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85eb_ca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2_ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }

  /**
   * A SYN may reuse a TIME-WAIT connection's 4-tuple when its sequence number is beyond the old
   * connection's (RFC 9293 §3.10.7.4 note on TIME-WAIT; RFC 6191) and someone listens.
   */
  private reopensTimeWait(tcb: Tcb, seg: SegmentIn): boolean {
    const f = seg.flags;
    return (f & (SYN | ACK | RST)) === SYN && seqGt(seg.seq, tcb.rcvNxt) && this.listeners.has(seg.dstPort);
  }

  /** Runs the timers due at `now`. */
  poll(now: number): void {
    const heap = this.heap;
    for (;;) {
      const top = heap[0];
      if (top === undefined) return;
      const tcb = top.tcb;
      if (top.gen !== tcb.heapGen) {
        this.heapPop();
        continue;
      }
      if (top.at > now) {
        if (this.topIsLive()) return;
        continue;
      }
      this.heapPop();
      tcb.heapAt = Infinity;
      // Every handler disarms or re-arms its timer past `now`, so this loop ends.
      if (tcb.deadline() <= now) tcb.onTimer(now);
      this.schedule(tcb);
    }
  }

  /** When poll() must next run, or undefined when no timer is armed. */
  nextDeadline(): number | undefined {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined) return undefined;
      if (this.topIsLive()) return top.at;
    }
  }

  /** Whether the heap's top entry is exact; if not, drops or re-queues it (the caller loops). */
  private topIsLive(): boolean {
    const top = this.heap[0]!;
    const tcb = top.tcb;
    if (top.gen !== tcb.heapGen) {
      this.heapPop();
      return false;
    }
    const d = tcb.deadline();
    if (d === top.at) return true;
    // The deadline moved later (or went away): re-queue at the real one.
    this.heapPop();
    tcb.heapAt = Infinity;
    this.schedule(tcb);
    return false;
  }

  // ---- tools ----

  stats(): TcpStats {
    let currEstab = 0;
    for (const inner of this.conns.values()) {
      for (const t of inner.values()) if (t.state === TcpState.ESTABLISHED || t.state === TcpState.CLOSE_WAIT) currEstab++;
    }
    return { ...this.counters, currEstab, connections: this.count, listeners: this.listeners.size };
  }

  /** Listeners then connections, as `ss -tan` lists them. */
  connections(): TcpConnectionInfo[] {
    const out: TcpConnectionInfo[] = [];
    for (const l of this.listeners.values()) {
      out.push({ state: "LISTEN", local: { ip: 0, port: l.port }, remote: { ip: 0, port: 0 }, sendQueue: l.backlog, recvQueue: l.queued });
    }
    for (const inner of this.conns.values()) {
      for (const t of inner.values()) {
        out.push({
          state: TCP_STATE_NAMES[t.state],
          local: { ip: t.localIp, port: t.localPort },
          remote: { ip: t.remoteIp, port: t.remotePort },
          sendQueue: t.sendQueue,
          recvQueue: t.recvBytes,
        });
      }
    }
    return out;
  }

  // ---- TcbOwner / ListenerOwner ----

  schedule(tcb: Tcb): void {
    const d = tcb.deadline();
    if (d >= tcb.heapAt) return;
    tcb.heapAt = d;
    this.heapPush({ at: d, tcb, gen: ++tcb.heapGen });
  }

  release(tcb: Tcb): void {
    const outer = tcb.remoteIp * 65536 + tcb.remotePort;
    const inner = this.conns.get(outer);
    if (inner !== undefined && inner.get(tcb.localIp * 65536 + tcb.localPort) === tcb) {
      inner.delete(tcb.localIp * 65536 + tcb.localPort);
      if (inner.size === 0) this.conns.delete(outer);
      this.count--;
    }
    if (this.last === tcb) this.last = undefined;
    tcb.heapGen++; // any heap entry is now stale
    tcb.heapAt = Infinity;
    tcb.listener?.remove(tcb);
  }

  established(tcb: Tcb): void {
    const l = tcb.listener;
    if (l === undefined || l.isClosed) {
      tcb.appAbort();
      return;
    }
    l.enqueue(tcb);
  }

  /**
   * The reply to a segment that belongs to no connection (RFC 9293 §3.10.7.1): never to an RST;
   * <SEQ=SEG.ACK><CTL=RST> if it had ACK, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
   */
  sendReset(seg: SegmentIn): void {
    const f = seg.flags;
    if (f & RST) return;
    this.counters.outRsts++;
    this.counters.outSegs++;
    const hasAck = (f & ACK) !== 0;
    const segLen = seg.payload.length + (f & SYN ? 1 : 0) + (f & FIN ? 1 : 0);
    this.host.output({
      src: seg.dst,
      dst: seg.src,
      srcPort: seg.dstPort,
      dstPort: seg.srcPort,
      seq: hasAck ? seg.ack : 0,
      ack: hasAck ? 0 : seqAdd(seg.seq, segLen),
      flags: hasAck ? RST : RST | ACK,
      window: 0,
      options: EMPTY,
      payload: EMPTY,
    });
  }

  closeListener(listener: TcpListenerImpl): void {
    if (this.listeners.get(listener.port) === listener) this.listeners.delete(listener.port);
    // Linux resets connections nobody accepted when the listening socket closes.
    for (const tcb of listener.shutdown()) tcb.appAbort();
  }

  // ---- tables ----

  private lookup(localIp: Ipv4Addr, localPort: number, remoteIp: Ipv4Addr, remotePort: number): Tcb | undefined {
    const c = this.last;
    if (c !== undefined && c.remotePort === remotePort && c.localPort === localPort && c.remoteIp === remoteIp && c.localIp === localIp) {
      return c;
    }
    const inner = this.conns.get(remoteIp * 65536 + remotePort);
    if (inner === undefined) return undefined;
    const t = inner.get(localIp * 65536 + localPort);
    if (t !== undefined) this.last = t;
    return t;
  }

  private insert(tcb: Tcb): void {
    const outer = tcb.remoteIp * 65536 + tcb.remotePort;
    let inner = this.conns.get(outer);
    if (inner === undefined) this.conns.set(outer, (inner = new Map()));
    inner.set(tcb.localIp * 65536 + tcb.localPort, tcb);
    this.count++;
  }

  /** A port of ip_local_port_range free for this 4-tuple, from a random start (RFC 6056 §3.3.1). */
  private ephemeralPort(src: Ipv4Addr, dst: Ipv4Addr, dstPort: number): number | undefined {
    const low = TcpStackDefaults.ephemeralLow;
    const range = TcpStackDefaults.ephemeralHigh - low + 1;
    const start = (this.host.random() >>> 0) % range;
    for (let i = 0; i < range; i++) {
      const p = low + ((start + i) % range);
      if (this.listeners.has(p)) continue;
      if (this.lookup(src, p, dst, dstPort) !== undefined) continue;
      return p;
    }
    return undefined;
  }

  // ---- timer heap (min-heap on `at`) ----

  private heapPush(e: TimerEntry): void {
    const h = this.heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = h[p]!;
      if (pe.at <= e.at) break;
      h[i] = pe;
      i = p;
    }
    h[i] = e;
  }

  private heapPop(): void {
    const h = this.heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    const n = h.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r]!.at < h[l]!.at ? r : l;
      if (h[c]!.at >= last.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
