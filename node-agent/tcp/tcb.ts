/**
 * One TCP connection: the transmission control block of RFC 9293 §3.3.1, its state machine
 * (§3.10.7 "SEGMENT ARRIVES"), retransmission (RFC 6298), congestion control (RFC 5681 with
 * NewReno fast recovery, RFC 6582), delayed ACKs (RFC 1122 §4.2.3.2, RFC 5681 §4.2), window
 * management (RFC 9293 §3.8.6, RFC 7323 §2) and the byte-stream state the app sees through
 * socket.ts. Owned and demultiplexed by TcpStack (stack.ts), which also runs its timers.
 *
 * SACK (RFC 2018) when both SYNs carry SACK-permitted: the receiver reports its out-of-order
 * runs (up to 4 blocks, the latest arrival's first); the sender keeps a scoreboard of SACKed
 * ranges and recovers per RFC 6675 (IsLost, SetPipe, NextSeg rules 1-3), plus two additions
 * from Linux / RFC 8985 without RACK's per-segment send times: a retransmission still missing
 * once data sent after it is SACKed is sent again, and a tail loss probe (2 SRTT) draws the
 * SACKs that start recovery instead of waiting for the RTO. After an RTO the scoreboard is kept
 * and going back N skips SACKed ranges (RFC 6675 §5.1). Without SACK: NewReno, as before.
 */
import { TcpFlag, walkTcpOptions } from "../../overlay/wire/tcp.ts";
import type { Ipv4Addr } from "../../overlay/wire/common.ts";
import type { CloseReason, ConnectResult, IcmpErrorOutcome, SegmentIn, TcpHost } from "./api.ts";
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from "./seq.ts";
import { TcpSocketImpl, type TcpListenerImpl } from "./socket.ts";

export const TcpState = {
  CLOSED: 0,
  LISTEN: 1,
  SYN_SENT: 2,
  SYN_RECEIVED: 3,
  ESTABLISHED: 4,
  FIN_WAIT_1: 5,
  FIN_WAIT_2: 6,
  CLOSE_WAIT: 7,
  CLOSING: 8,
  LAST_ACK: 9,
  TIME_WAIT: 10,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

/** Display names as RFC 9293 and `ss` spell them, indexed by TcpState. */
export const TCP_STATE_NAMES = [
  "CLOSED",
  "LISTEN",
  "SYN-SENT",
  "SYN-RECEIVED",
  "ESTABLISHED",
  "FIN-WAIT-1",
  "FIN-WAIT-2",
  "CLOSE-WAIT",
  "CLOSING",
  "LAST-ACK",
  "TIME-WAIT",
] as const;
export type TcpStateName = (typeof TCP_STATE_NAMES)[number];

/** Timer constants, Linux's where RFCs leave a choice. */
export const TcpTimers = {
  /** RFC 6298 §2.1. */
  rtoInitialMs: 1_000,
  /** Linux TCP_RTO_MIN (RFC 6298 asks for 1 s; every stack in use goes lower). */
  rtoMinMs: 200,
  /** Linux TCP_RTO_MAX. */
  rtoMaxMs: 120_000,
  /** Linux's minimum delayed-ACK timeout (TCP_DELACK_MIN). */
  delayedAckMs: 40,
  /** Linux TCP_TIMEWAIT_LEN (2*MSL with MSL 30 s). */
  timeWaitMs: 60_000,
  /** Linux tcp_syn_retries: SYN at 0, 1, 3, 7, 15, 31, 63 s, give up at 127 s. */
  synRetries: 6,
  /** Linux tcp_synack_retries. */
  synAckRetries: 5,
  /** Linux tcp_retries2. */
  dataRetries: 15,
} as const;

export const TcpDefaults = {
  recvBufferSize: 4 * 1024 * 1024,
  sendBufferSize: 4 * 1024 * 1024,
  /** RFC 9293 §3.7.1: the send MSS when the peer sends no MSS option. */
  defaultMss: 536,
  /** RFC 6928. */
  initialWindowSegments: 10,
} as const;

/** Counters of the whole stack (names after Linux's /proc/net/snmp and netstat). */
export interface TcpCounters {
  activeOpens: number;
  passiveOpens: number;
  attemptFails: number;
  estabResets: number;
  inSegs: number;
  outSegs: number;
  retransSegs: number;
  outRsts: number;
  /** SYNs or cookie ACKs dropped because the accept queue was full (Linux ListenOverflows). */
  listenOverflows: number;
  /** SYNs or cookie ACKs a listener dropped, for any reason (Linux ListenDrops). */
  listenDrops: number;
  /** SYN-ACKs sent with a SYN cookie (Linux SyncookiesSent). */
  syncookiesSent: number;
  /** ACKs with a valid cookie (Linux SyncookiesRecv). */
  syncookiesRecv: number;
  /** ACKs checked as cookies and found invalid (Linux SyncookiesFailed). */
  syncookiesFailed: number;
  /** SYNs dropped because the connection table was full. */
  tableFullDrops: number;
  challengeAcks: number;
  outOfOrderSegs: number;
  fastRetransmits: number;
  timeouts: number;
  persistProbes: number;
  delayedAcks: number;
  /** Tail loss probes sent (Linux TCPLossProbes). */
  lossProbes: number;
  /** Retransmission timeouts of data (Linux TCPTimeouts; `timeouts` counts connections given up). */
  rtoExpirations: number;
  /** SACK loss recoveries entered (Linux TCPSackRecovery). */
  sackRecoveries: number;
  /** Retransmissions chosen from the SACK scoreboard (part of retransSegs). */
  sackRetransSegs: number;
  /** Opening connections an ICMP error ended (connect() refused or unreachable at once). */
  icmpErrorsAborted: number;
  /** ICMP errors kept as a connection's soft error (synchronized states, RFC 1122 §4.2.3.9). */
  icmpErrorsSoft: number;
  /** ICMP errors whose quoted sequence number was not in flight (Linux OutOfWindowIcmps). */
  outOfWindowIcmps: number;
  /** "Fragmentation needed" errors that lowered a connection's MSS (RFC 1191). */
  pmtuUpdates: number;
}

/** What a Tcb needs from the stack that owns it. */
export interface TcbOwner {
  readonly host: TcpHost;
  readonly counters: TcpCounters;
  /** The connection's deadline may have moved earlier. */
  schedule(tcb: Tcb): void;
  /** The connection is CLOSED: drop it from the tables. */
  release(tcb: Tcb): void;
  /** A passive open completed the handshake: to the listener's accept queue. */
  established(tcb: Tcb): void;
  /** RST in reply to `seg` per RFC 9293 §3.10.7.1. */
  sendReset(seg: SegmentIn): void;
}

export interface TcbConfig {
  recvBufferSize: number;
  sendBufferSize: number;
  noDelay: boolean;
  timeWaitMs: number;
  /** Offer SACK-permitted and use SACK when the peer offers it too. */
  sack: boolean;
  /**
   * Segmentation offload: new data may leave as one segment of up to this many bytes that the
   * IP layer carries as a GSO packet of MSS-sized segments (Linux TSO/GSO); 0 turns it off.
   */
  tsoMaxBytes: number;
}

export interface TcpOptions {
  mss?: number;
  wscale?: number;
  /** SACK-permitted (RFC 2018 §2). */
  sackOk?: boolean;
}

const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WSCALE = 3;
const OPT_SACK_PERM = 4;
const OPT_SACK = 5;
/** SACK blocks per ACK: 4 fit in the 40 option bytes without timestamps (RFC 2018 §3). */
const MAX_SACK_BLOCKS = 4;
/** RFC 6675 DupThresh. */
const DUP_THRESH = 3;
/** RFC 7323 §2.3. */
const MAX_WSCALE = 14;
/** Linux TCP_MIN_MSS: a peer's MSS option below this is raised to it. */
const MIN_MSS = 88;

/** ICMP types and codes a transport acts on (RFC 792). */
export const ICMP_DEST_UNREACH = 3;
export const ICMP_TIME_EXCEEDED = 11;
const ICMP_NET_UNREACH = 0;
const ICMP_HOST_UNREACH = 1;
const ICMP_FRAG_NEEDED = 4;
/**
 * Linux ip_rt_min_pmtu: a "fragmentation needed" MTU below this is raised to it, so a forged
 * tiny MTU cannot shrink segments to nothing (RFC 5927 §7).
 */
const MIN_PMTU = 552;

/** A socket error an ICMP error stands for. */
export interface IcmpErr {
  /** "refused" for ECONNREFUSED and ENOPROTOOPT (no such port or transport there), else "unreachable". */
  kind: "refused" | "unreachable";
  /** Linux's errno name, for messages. */
  errno: string;
  /** A hard error (icmp_err_convert .fatal): UDP reports only these without IP_RECVERR. */
  fatal: boolean;
}

/** Destination unreachable codes 0-15 (Linux NR_ICMP_UNREACH) as errno and fatality: icmp_err_convert, net/ipv4/icmp.c. */
const UNREACH_ERRORS: readonly (readonly [string, boolean])[] = [
  ["ENETUNREACH", false], // 0 net unreachable
  ["EHOSTUNREACH", false], // 1 host unreachable
  ["ENOPROTOOPT", true], // 2 protocol unreachable
  ["ECONNREFUSED", true], // 3 port unreachable
  ["EMSGSIZE", false], // 4 fragmentation needed (PMTU: not reported here)
  ["EOPNOTSUPP", false], // 5 source route failed
  ["ENETUNREACH", true], // 6 network unknown
  ["EHOSTDOWN", true], // 7 host unknown
  ["ENONET", true], // 8 source host isolated
  ["ENETUNREACH", true], // 9 network administratively prohibited
  ["EHOSTUNREACH", true], // 10 host administratively prohibited
  ["ENETUNREACH", false], // 11 network unreachable for TOS
  ["EHOSTUNREACH", false], // 12 host unreachable for TOS
  ["EHOSTUNREACH", true], // 13 communication administratively prohibited (iptables icmp-admin-prohibited)
  ["EHOSTUNREACH", true], // 14 host precedence violation
  ["EHOSTUNREACH", true], // 15 precedence cutoff in effect
];

/**
 * The socket error an ICMP error means (Linux icmp_err_convert; time exceeded is EHOSTUNREACH,
 * not fatal, as tcp_v4_err and __udp4_lib_err have it). Undefined for what is no socket error:
 * fragmentation needed (path MTU), unknown codes, other types (source quench is obsolete,
 * RFC 6633).
 */
export function icmpErrConvert(type: number, code: number): IcmpErr | undefined {
  if (type === ICMP_TIME_EXCEEDED) return { kind: "unreachable", errno: "EHOSTUNREACH", fatal: false };
  if (type !== ICMP_DEST_UNREACH || code === ICMP_FRAG_NEEDED) return undefined;
  const e = UNREACH_ERRORS[code];
  if (e === undefined) return undefined;
  const [errno, fatal] = e;
  return { kind: errno === "ECONNREFUSED" || errno === "ENOPROTOOPT" ? "refused" : "unreachable", errno, fatal };
}

/**
 * MSS and window scale from a SYN's options. Never throws: a malformed option list yields what
 * was parsed before the damage.
 */
export function parseTcpOptions(options: Uint8Array): TcpOptions {
  const out: TcpOptions = {};
  walkTcpOptions(options, (kind, i, len) => {
    if (kind === OPT_MSS && len === 4) out.mss = (options[i + 2]! << 8) | options[i + 3]!;
    else if (kind === OPT_WSCALE && len === 3) out.wscale = options[i + 2]!;
    else if (kind === OPT_SACK_PERM && len === 2) out.sackOk = true;
    return true;
  });
  return out;
}

/**
 * MSS (kind 2); NOP NOP SACK-permitted (kind 4) when `sackOk`; NOP + window scale (kind 3) when
 * `wscale` is given. RFC 9293 §3.2, RFC 2018 §2, RFC 7323 §2.2; the layout Linux uses without
 * timestamps.
 */
export function synOptions(mss: number, wscale: number | undefined, sackOk = false): Uint8Array {
  const b = new Uint8Array(4 + (sackOk ? 4 : 0) + (wscale === undefined ? 0 : 4));
  b[0] = OPT_MSS;
  b[1] = 4;
  b[2] = (mss >>> 8) & 0xff;
  b[3] = mss & 0xff;
  let i = 4;
  if (sackOk) {
    b[i++] = OPT_NOP;
    b[i++] = OPT_NOP;
    b[i++] = OPT_SACK_PERM;
    b[i++] = 2;
  }
  if (wscale !== undefined) {
    b[i++] = OPT_NOP;
    b[i++] = OPT_WSCALE;
    b[i++] = 3;
    b[i++] = wscale;
  }
  return b;
}

/** A SACK option (RFC 2018 §3) with NOP NOP padding: blocks as [left, right) pairs. */
export function sackOption(blocks: readonly number[]): Uint8Array {
  const n = blocks.length >> 1;
  const b = new Uint8Array(4 + 8 * n);
  b[0] = OPT_NOP;
  b[1] = OPT_NOP;
  b[2] = OPT_SACK;
  b[3] = 2 + 8 * n;
  const v = new DataView(b.buffer);
  for (let k = 0; k < n; k++) {
    v.setUint32(4 + 8 * k, blocks[2 * k]! >>> 0);
    v.setUint32(8 + 8 * k, blocks[2 * k + 1]! >>> 0);
  }
  return b;
}

/** The smallest shift that lets a 16-bit window field describe `buffer` bytes. */
export function wscaleFor(buffer: number): number {
  let s = 0;
  while (s < MAX_WSCALE && buffer / 2 ** s > 0xffff) s++;
  return s;
}

const EMPTY = new Uint8Array(0);
/** Shared empty list standing for "none yet" (never pushed to: replaced on first use). */
const NONE: number[] = [];
const { FIN, SYN, RST, PSH, ACK } = TcpFlag;
const TRUE_P: Promise<boolean> = Promise.resolve(true);
const FALSE_P: Promise<boolean> = Promise.resolve(false);
const NULL_P: Promise<Uint8Array | null> = Promise.resolve(null);
/** Far above any window (2^30) so slow start is only ever limited by the peer's window. */
const CWND_MAX = 0x4000_0000;
const MIN_SEND_CHUNK = 16 * 1024;
const RX_BLOCK_MIN = 16 * 1024;
const RX_BLOCK_MAX = 256 * 1024;
/** take() merges queued chunks smaller than this into one read. */
const RX_COALESCE = 64 * 1024;

function hasBlock(blocks: readonly number[], left: number): boolean {
  for (let k = 0; k < blocks.length; k += 2) if (blocks[k] === left) return true;
  return false;
}

const CLOSED_OK: CloseReason = { kind: "closed" };
const CLOSED_RESET: CloseReason = { kind: "reset" };
const CLOSED_REFUSED: CloseReason = { kind: "refused" };
const CLOSED_TIMEOUT: CloseReason = { kind: "timeout" };
const CLOSED_UNREACHABLE: CloseReason = { kind: "unreachable" };
const CLOSED_ABORTED: CloseReason = { kind: "aborted" };

interface SendChunk {
  buf: Uint8Array;
  /** Stream offset of buf[0]. */
  pos: number;
  /** Bytes of buf in use. */
  fill: number;
}

/**
 * The send queue as a list of chunks addressed by stream offset (bytes written since the
 * connection opened; exact in a double). Acknowledged chunks are dropped from the head; data
 * handed out as segment payloads is never overwritten (appends only go past `fill`).
 */
export class SendBuffer {
  private chunks: SendChunk[] = [];
  private head = 0;
  /** Index of the chunk the last slice() used: sends walk forward, so this is O(1) per segment. */
  private cursor = 0;
  /** Stream offset of the first unacknowledged byte. */
  start = 0;
  /** Stream offset just past the last byte written. */
  end = 0;

  get queued(): number {
    return this.end - this.start;
  }

  /** Copies `data` in (the app may reuse its buffer once write() resolves). */
  append(data: Uint8Array): void {
    let src = data;
    const last = this.chunks.length > this.head ? this.chunks[this.chunks.length - 1] : undefined;
    if (last !== undefined) {
      const room = last.buf.length - last.fill;
      if (room > 0) {
        const n = Math.min(room, src.length);
        last.buf.set(n === src.length ? src : src.subarray(0, n), last.fill);
        last.fill += n;
        this.end += n;
        if (n === src.length) return;
        src = src.subarray(n);
      }
    }
    const buf = new Uint8Array(Math.max(src.length, MIN_SEND_CHUNK));
    buf.set(src);
    this.chunks.push({ buf, pos: this.end, fill: src.length });
    this.end += src.length;
  }

  /** `len` bytes from stream offset `off` (start <= off, off + len <= end): a view unless it spans chunks. */
  slice(off: number, len: number): Uint8Array {
    const chunks = this.chunks;
    let i = this.cursor;
    if (i < this.head || i >= chunks.length || chunks[i]!.pos > off) i = this.head;
    let c = chunks[i]!;
    while (off >= c.pos + c.fill) c = chunks[++i]!;
    this.cursor = i;
    const rel = off - c.pos;
    if (rel + len <= c.fill) return c.buf.subarray(rel, rel + len);
    const out = new Uint8Array(len);
    let done = 0;
    let r = rel;
    for (;;) {
      const n = Math.min(c.fill - r, len - done);
      out.set(c.buf.subarray(r, r + n), done);
      done += n;
      if (done >= len) break;
      r = 0;
      c = chunks[++i]!;
    }
    return out;
  }

  /** Drops `n` acknowledged bytes from the front. */
  consume(n: number): void {
    this.start += n;
    const chunks = this.chunks;
    // The last chunk stays (its spare room takes the next writes).
    while (this.head < chunks.length - 1 && chunks[this.head]!.pos + chunks[this.head]!.fill <= this.start) this.head++;
    if (this.head >= 32 && this.head * 2 >= chunks.length) {
      chunks.splice(0, this.head);
      this.cursor = Math.max(0, this.cursor - this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.cursor = 0;
    this.start = this.end;
  }
}

/**
 * A contiguous run of out-of-order bytes [seq, end): copies of the segments' payloads in order,
 * without overlap. Runs never touch (an arrival that bridges two merges them), so they are
 * exactly the SACK blocks to report (RFC 2018 §4).
 */
interface OooBlock {
  seq: number;
  end: number;
  parts: Uint8Array[];
}

/**
 * Memory: a half-open connection (SYN-RECEIVED) holds only this object's fields. The socket
 * façade, the `closed` promise, receive blocks, send chunks and SACK arrays are made on first
 * use, so a SYN flood that fills the SYN queue costs a few hundred bytes per entry.
 */
export class Tcb {
  state: TcpState = TcpState.CLOSED;
  private socketObj: TcpSocketImpl | undefined;
  /** The listener of a passive open, until the app accepts it. */
  listener: TcpListenerImpl | undefined;
  inAcceptQueue = false;

  // Timer heap bookkeeping (stack.ts): the deadline of this connection's live heap entry.
  heapAt = Infinity;
  heapGen = 0;

  // Send sequence space (RFC 9293 §3.3.1). sndMax is the highest sequence sent: after an RTO
  // sndNxt goes back to sndUna (go-back-N) and ACKs up to sndMax stay acceptable.
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  sndMax = 0;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  maxSndWnd = 0;
  sndShift = 0;
  sndMss: number = TcpDefaults.defaultMss;
  private sndBufObj: SendBuffer | undefined;
  finQueued = false;
  finSeq = 0;

  // Receive sequence space. rcvAdvRight is the right edge of the window last advertised: it never
  // moves left (RFC 9293 §3.8.6.2.1 "shrinking the window" is strongly discouraged).
  irs = 0;
  rcvNxt = 0;
  rcvAdvRight = 0;
  rcvShift = 0;
  /** The MSS we advertised (path MTU - 40). */
  advMss = 0;
  /** Our estimate of the size of the peer's full segments (delayed ACK counting). */
  rcvMss = 0;
  private readonly ourShift: number;
  /** Whether the peer's SYN carried window scale (a shift of 0 is a valid offer). */
  private wsNegotiated = false;
  private synSentAt = -1;
  /** Karn's rule for the handshake: no RTT sample once a SYN or SYN-ACK went twice. */
  private synRetransmitted = false;
  private recvQ: Uint8Array[] = [];
  private recvHead = 0;
  /** In-order bytes the app has not read (they occupy the receive buffer). */
  recvBytes = 0;
  private rxBlock: Uint8Array | undefined;
  private rxPos = 0;
  private rxBlockSize = RX_BLOCK_MIN;
  private ooo: OooBlock[] = [];
  /** Left edges of the out-of-order segments received last, most recent first (SACK block order, RFC 2018 §4). */
  private oooRecent: number[] = NONE;
  /** Sequence number of a FIN that arrived out of order, or -1. */
  private oooFin = -1;
  /** FIN received (or the connection is gone): reads return null once the queue is empty. */
  eof = false;

  // SACK (RFC 2018) and its scoreboard (RFC 6675): SACKed ranges above SND.UNA as sorted,
  // disjoint [left, right) sequence pairs, flattened (made on first SACK).
  sackOk = false;
  private readonly sackWanted: boolean;
  private sacked: number[] | undefined;
  /** RFC 6675 HighRxt: retransmissions in this recovery went up to here (exclusive). */
  private highRxt = 0;
  /** Retransmissions of this recovery as [seq, end, SND.MAX when sent] triples (lost-retransmission detection). */
  private rtxLog: number[] = NONE;
  /** Retransmissions found lost, as [seq, end] pairs, to go again before anything else. */
  private relost: number[] = NONE;
  /** Sequence number of the outstanding tail loss probe, or -1 (one probe until SND.UNA passes it). */
  private tlpSeq = -1;
  /** In a recovery a probe revealed: everything unSACKed below this is lost (RFC 8985 §7.4), or -1. */
  private forcedLost = -1;

  // Congestion control (RFC 5681, RFC 6582).
  cwnd = 0;
  ssthresh = CWND_MAX;
  dupAcks = 0;
  inRecovery = false;
  recover = 0;
  private caAcked = 0;

  // RTT estimation (RFC 6298).
  srtt = 0;
  rttvar = 0;
  private hasRtt = false;
  rto: number = TcpTimers.rtoInitialMs;
  /** Consecutive retransmissions of the same data (SYN, SYN-ACK or data). */
  retries = 0;
  private rttTiming = false;
  private rttSeq = 0;
  private rttStart = 0;

  // Timers: absolute ms, Infinity when not armed.
  rtxAt = Infinity;
  /** Tail loss probe (RFC 8985 §7). */
  tlpAt = Infinity;
  persistAt = Infinity;
  private persistBackoff = 0;
  delackAt = Infinity;
  twAt = Infinity;
  connectAt = Infinity;

  /**
   * The last ICMP error of a synchronized connection (Linux sk_err_soft): not fatal on its own
   * (RFC 1122 §4.2.3.9), but what the app is told if the connection then times out
   * (tcp_write_err); cleared by an acceptable ACK, which shows the path works.
   */
  private softErr: CloseReason | undefined;
  /** The path MSS a "fragmentation needed" error taught (RFC 1191), or Infinity. */
  private pmtuMss = Infinity;

  private ackNow = false;
  private unackedBytes = 0;

  noDelay: boolean;
  private readonly rcvBufSize: number;
  private readonly sndBufSize: number;
  private readonly timeWaitMs: number;

  // App side.
  private readWaiters: Array<(c: Uint8Array | null) => void> = [];
  private writeWaiters: Array<(ok: boolean) => void> = [];
  private wakeScheduled = false;
  private wakeFn: (() => void) | undefined;
  private connectResolve: ((r: ConnectResult) => void) | undefined;
  private closedResolve: ((r: CloseReason) => void) | undefined;
  private closedP: Promise<CloseReason> | undefined;
  private closeReason: CloseReason | undefined;

  constructor(
    private readonly owner: TcbOwner,
    readonly localIp: Ipv4Addr,
    readonly localPort: number,
    readonly remoteIp: Ipv4Addr,
    readonly remotePort: number,
    config: TcbConfig,
  ) {
    this.rcvBufSize = config.recvBufferSize;
    this.sndBufSize = config.sendBufferSize;
    this.noDelay = config.noDelay;
    this.timeWaitMs = config.timeWaitMs;
    this.ourShift = wscaleFor(this.rcvBufSize);
    this.sackWanted = config.sack;
    this.tsoMaxBytes = config.tsoMaxBytes;
  }

  private readonly tsoMaxBytes: number;

  /** The send queue, made on first use. */
  get sndBuf(): SendBuffer {
    return (this.sndBufObj ??= new SendBuffer());
  }

  get sendQueue(): number {
    return this.sndBufObj === undefined ? 0 : this.sndBufObj.queued;
  }

  get socket(): TcpSocketImpl {
    return (this.socketObj ??= new TcpSocketImpl(this));
  }

  /** Resolves once the connection is over for the app (see stack.ts); made on first use. */
  get closed(): Promise<CloseReason> {
    if (this.closedP === undefined) {
      const r = this.closeReason;
      this.closedP = r !== undefined ? Promise.resolve(r) : new Promise<CloseReason>((resolve) => (this.closedResolve = resolve));
    }
    return this.closedP;
  }

  /** The earliest armed timer, or Infinity. */
  deadline(): number {
    return Math.min(this.rtxAt, this.tlpAt, this.persistAt, this.delackAt, this.twAt, this.connectAt);
  }


  // ---- opening ----

  /** Active open (RFC 9293 §3.10.1): SYN with MSS and window scale. */
  connect(now: number, timeoutMs: number | undefined): Promise<ConnectResult> {
    const host = this.owner.host;
    this.iss = host.random() >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
    this.recover = this.iss;
    this.advMss = host.mtuFor(this.remoteIp) - 40;
    this.state = TcpState.SYN_SENT;
    this.sendSyn(false, now);
    this.rtxAt = now + this.rto;
    if (timeoutMs !== undefined) this.connectAt = now + timeoutMs;
    this.owner.counters.activeOpens++;
    return new Promise<ConnectResult>((resolve) => (this.connectResolve = resolve));
  }

  /** Passive open from a listener's SYN (RFC 9293 §3.10.7.2). */
  acceptSyn(seg: SegmentIn, now: number): void {
    const host = this.owner.host;
    this.iss = host.random() >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
    this.recover = this.iss;
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.advMss = host.mtuFor(this.remoteIp) - 40;
    this.applySynOptions(seg);
    // RFC 7323 §2.2: the window of a SYN is never scaled.
    this.sndWnd = this.maxSndWnd = seg.window;
    this.sndWl1 = seg.seq;
    this.sndWl2 = this.iss;
    this.state = TcpState.SYN_RECEIVED;
    this.sendSyn(true, now);
    this.rtxAt = now + this.rto;
    this.owner.counters.passiveOpens++;
    this.owner.schedule(this);
  }

  /**
   * Passive open from the ACK of a valid SYN cookie (stack.ts): straight to ESTABLISHED, then
   * the ACK (and any data on it) is processed as usual. The cookie kept only an MSS: no window
   * scaling and no SACK for this connection (Linux keeps them only with timestamps, which we do
   * not do).
   */
  acceptCookie(seg: SegmentIn, mss: number, now: number): void {
    const host = this.owner.host;
    this.iss = seqAdd(seg.ack, -1);
    this.irs = seqAdd(seg.seq, -1);
    this.sndUna = this.sndNxt = this.sndMax = seg.ack;
    this.recover = this.iss;
    this.rcvNxt = seg.seq;
    this.advMss = host.mtuFor(this.remoteIp) - 40;
    this.sndMss = Math.max(Math.min(mss, this.advMss), MIN_MSS);
    this.rcvMss = Math.min(this.advMss, mss);
    this.sndShift = this.rcvShift = 0;
    // What the cookie SYN-ACK offered (unscaled).
    this.rcvAdvRight = seqAdd(this.rcvNxt, Math.min(this.rcvBufSize, 0xffff));
    this.sndWnd = this.maxSndWnd = seg.window;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    this.synRetransmitted = true; // no RTT sample: the SYN-ACK's send time is not known
    this.owner.counters.passiveOpens++;
    this.established();
    if (this.state === TcpState.ESTABLISHED) this.input(seg, now);
  }

  private applySynOptions(seg: SegmentIn): void {
    const o = parseTcpOptions(seg.options);
    const pathMss = this.owner.host.mtuFor(this.remoteIp) - 40;
    const peerMss = Math.max(o.mss ?? TcpDefaults.defaultMss, MIN_MSS);
    this.sndMss = Math.max(Math.min(peerMss, pathMss, this.pmtuMss), MIN_MSS);
    this.rcvMss = Math.min(this.advMss, peerMss);
    // RFC 2018 §2: SACK only when both SYNs carry SACK-permitted.
    this.sackOk = this.sackWanted && o.sackOk === true;
    // RFC 7323 §2.2: scaling is on only when both SYNs carry the option.
    this.wsNegotiated = o.wscale !== undefined;
    if (o.wscale !== undefined) {
      this.sndShift = Math.min(o.wscale, MAX_WSCALE);
      this.rcvShift = this.ourShift;
    } else {
      this.sndShift = 0;
      this.rcvShift = 0;
    }
  }

  private sendSyn(withAck: boolean, now: number): void {
    // The SYN-ACK carries window scale only if the SYN did (RFC 7323 §2.2); our SYN always offers it.
    const ws = withAck && !this.wsNegotiated ? undefined : this.ourShift;
    const sackOk = withAck ? this.sackOk : this.sackWanted;
    if (this.synSentAt >= 0) this.synRetransmitted = true;
    this.synSentAt = now;
    this.emit(this.iss, withAck ? SYN | ACK : SYN, EMPTY, synOptions(this.advMss, ws, sackOk));
  }

  private established(): void {
    this.state = TcpState.ESTABLISHED;
    this.cwnd = TcpDefaults.initialWindowSegments * this.sndMss;
    this.rtxAt = Infinity;
    this.retries = 0;
    if (this.connectResolve !== undefined) {
      const resolve = this.connectResolve;
      this.connectResolve = undefined;
      this.connectAt = Infinity;
      resolve({ kind: "connected", socket: this.socket });
    } else if (this.listener !== undefined) {
      this.owner.established(this);
    }
  }

  // ---- segment arrival (RFC 9293 §3.10.7) ----

  input(seg: SegmentIn, now: number): void {
    if (this.state === TcpState.SYN_SENT) this.inputSynSent(seg, now);
    else if (this.state !== TcpState.CLOSED) this.inputSynchronized(seg, now);
    this.flush(now);
  }

  /** §3.10.7.3 SYN-SENT. */
  private inputSynSent(seg: SegmentIn, now: number): void {
    const f = seg.flags;
    if (f & ACK) {
      if (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndMax)) {
        if (!(f & RST)) this.owner.sendReset(seg);
        return;
      }
    }
    if (f & RST) {
      // Acceptable only with an acceptable ACK; then the port refused us.
      if (f & ACK) this.finish(CLOSED_REFUSED);
      return;
    }
    if (!(f & SYN)) return;
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.applySynOptions(seg);
    this.sndWnd = this.maxSndWnd = seg.window;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    if (f & ACK) {
      this.sndUna = seg.ack;
      // Karn: the SYN's RTT only if it was not retransmitted.
      if (!this.synRetransmitted) this.rttSample(now - this.synSentAt);
      // The window we offered in the SYN (unscaled) is what the peer may fill until our ACK.
      this.rcvAdvRight = seqAdd(this.rcvNxt, Math.min(this.rcvBufSize, 0xffff));
      this.established();
      this.ackNow = true;
      return;
    }
    // Simultaneous open (§3.5 figure 8): SYN-RECEIVED, SYN-ACK with our original ISS.
    this.state = TcpState.SYN_RECEIVED;
    this.sendSyn(true, now);
  }

  /** §3.10.7.4: SYN-RECEIVED and the synchronized states. */
  private inputSynchronized(seg: SegmentIn, now: number): void {
    const f = seg.flags;
    const st = this.state;
    if (st === TcpState.SYN_RECEIVED && f & SYN && !(f & RST) && seg.seq === this.irs) {
      if (!(f & ACK)) {
        // The peer retransmitted its SYN: our SYN-ACK was lost (Linux resends it at once).
        this.sendSyn(true, now);
      } else if (seqGt(seg.ack, this.sndUna) && seqLe(seg.ack, this.sndMax)) {
        // Simultaneous open: the peer's SYN-ACK acknowledges our SYN.
        this.synAcked(seg, now);
      }
      return;
    }
    let payload = seg.payload;
    let len = payload.length;
    let seq = seg.seq;
    const segLen = len + (f & SYN ? 1 : 0) + (f & FIN ? 1 : 0);
    const wnd = Math.max(0, seqDiff(this.rcvAdvRight, this.rcvNxt));
    // First: the acceptability test (§3.10.7.4 table).
    let acceptable: boolean;
    const d = seqDiff(seq, this.rcvNxt);
    if (segLen === 0) acceptable = wnd === 0 ? d === 0 : d >= 0 && d < wnd;
    else if (wnd === 0) acceptable = false;
    else acceptable = (d >= 0 && d < wnd) || (d + segLen - 1 >= 0 && d + segLen - 1 < wnd);
    let dropText = false;
    if (!acceptable) {
      if (f & RST) return;
      // With a zero window the ACK (and RST) of a segment at RCV.NXT still counts (§3.10.7.4).
      if (!(wnd === 0 && d === 0 && f & ACK)) {
        if (st === TcpState.TIME_WAIT && f & FIN) this.twAt = now + this.timeWaitMs;
        this.ackNow = true;
        return;
      }
      dropText = true;
      this.ackNow = true;
    }
    // Second: RST (RFC 5961 §3.2): exact match resets, otherwise a challenge ACK.
    if (f & RST) {
      if (d === 0) this.onReset();
      else this.challengeAck();
      return;
    }
    // Fourth: a SYN in a synchronized state (RFC 5961 §4).
    if (f & SYN) {
      this.challengeAck();
      return;
    }
    // Fifth: ACK.
    if (!(f & ACK)) return;
    if (st === TcpState.SYN_RECEIVED) {
      if (seqLe(seg.ack, this.sndUna) || seqGt(seg.ack, this.sndMax)) {
        this.owner.sendReset(seg);
        return;
      }
      this.synAcked(seg, now);
      if (this.state === TcpState.CLOSED) return;
    }
    if (!this.processAck(seg, len, now)) return;
    // Seventh: segment text (ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2 only).
    const s = this.state;
    if (dropText || (s !== TcpState.ESTABLISHED && s !== TcpState.FIN_WAIT_1 && s !== TcpState.FIN_WAIT_2)) return;
    let fin = (f & FIN) !== 0;
    if (len === 0 && !fin) return;
    const skip = seqDiff(this.rcvNxt, seq);
    if (skip > 0) {
      // Leading bytes already received (§3.10.7.4: trim to the window).
      if (skip > len) {
        this.ackNow = true;
        return;
      }
      payload = payload.subarray(skip);
      len -= skip;
      seq = this.rcvNxt;
    }
    const room = seqDiff(this.rcvAdvRight, seq);
    if (len > room) {
      payload = payload.subarray(0, Math.max(0, room));
      len = payload.length;
      fin = false;
    }
    if (seq === this.rcvNxt) {
      if (len > 0) {
        this.deliver(payload, true);
        this.rcvNxt = seqAdd(this.rcvNxt, len);
        if (this.ooo.length > 0) {
          // RFC 5681 §4.2: ACK at once when a segment fills (part of) a hole.
          this.drainOoo();
          this.ackNow = true;
        } else {
          this.unackedBytes += len;
          if (this.unackedBytes >= 2 * this.rcvMss) this.ackNow = true;
          else if (this.delackAt === Infinity) this.delackAt = now + TcpTimers.delayedAckMs;
        }
      }
      if (fin || (this.oooFin !== -1 && this.rcvNxt === this.oooFin)) this.finReceived(now);
    } else {
      // Out of order: keep it and send a duplicate ACK at once (RFC 5681 §4.2).
      this.owner.counters.outOfOrderSegs++;
      if (len > 0) this.insertOoo(seq, payload);
      if (fin) this.oooFin = seqAdd(seq, len);
      this.ackNow = true;
    }
  }

  /** Our SYN is acknowledged in SYN-RECEIVED (§3.10.7.4 fifth, SYN-RECEIVED). */
  private synAcked(seg: SegmentIn, now: number): void {
    if (!this.synRetransmitted) this.rttSample(now - this.synSentAt);
    this.sndUna = seqAdd(this.iss, 1);
    this.sndWnd = seg.window << this.sndShift;
    this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    this.established();
  }

  /** §3.10.7.4 fifth. Returns false when the segment must be dropped (or the connection ended). */
  private processAck(seg: SegmentIn, len: number, now: number): boolean {
    const ack = seg.ack;
    // An ACK of something never sent: ACK and drop (§3.10.7.4), likewise one too old (RFC 5961 §5).
    if (seqGt(ack, this.sndMax) || seqLt(ack, this.sndUna - this.maxSndWnd)) {
      this.ackNow = true;
      return false;
    }
    // "Something worked": an acceptable ACK clears the soft error (Linux tcp_ack).
    this.softErr = undefined;
    const wnd = seg.window << this.sndShift;
    const sackFresh = this.sackOk && seg.options.length > 0 && this.sackUpdate(seg.options, seqGt(ack, this.sndUna) ? ack : this.sndUna);
    if (seqGt(ack, this.sndUna)) {
      this.newAck(ack, now);
      if (sackFresh && this.inRecovery) this.detectLostRetransmits();
      // RFC 6675 §5 (2): a cumulative ACK whose SACKs make SND.UNA lost starts recovery too.
      if (sackFresh && !this.inRecovery && this.sndUna !== this.sndMax && seqGe(this.sndUna, this.recover) && (seqGt(this.lostEnd(), this.sndUna) || this.probeRevealsLoss())) {
        this.enterSackRecovery(now);
      }
    } else if (ack === this.sndUna && len === 0 && !(seg.flags & (SYN | FIN)) && this.sndUna !== this.sndMax) {
      if (sackFresh && this.inRecovery) this.detectLostRetransmits();
      // A duplicate ACK: RFC 5681 §2; with SACK, one that SACKs new data (RFC 6675 §2).
      if (this.sackOk) {
        if (sackFresh) this.sackDupAck(now);
      } else if (wnd === this.sndWnd && wnd !== 0) {
        this.dupAck(now);
      }
    }
    // Window update, guarded by SND.WL1/SND.WL2 against old segments.
    if (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack))) {
      if (this.sndWnd === 0 && wnd > 0) this.persistBackoff = 0;
      this.sndWnd = wnd;
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
      if (wnd > this.maxSndWnd) this.maxSndWnd = wnd;
    }
    // A peer answering with a closed window is alive: probing goes on as long as it answers
    // (RFC 9293 §3.8.6.1), so the retransmissions into its window do not count towards giving up.
    if (this.sndWnd === 0) this.retries = 0;
    if (this.finQueued && seqGt(this.sndUna, this.finSeq)) {
      // Our FIN is acknowledged.
      switch (this.state) {
        case TcpState.FIN_WAIT_1:
          this.state = TcpState.FIN_WAIT_2;
          break;
        case TcpState.CLOSING:
          this.enterTimeWait(now);
          return false;
        case TcpState.LAST_ACK:
          this.finish(CLOSED_OK);
          return false;
        default:
          break;
      }
    }
    return this.state !== TcpState.CLOSED;
  }

  private newAck(ack: number, now: number): void {
    const acked = seqDiff(ack, this.sndUna);
    let dataAcked = acked;
    if (this.finQueued && seqLe(this.sndUna, this.finSeq) && seqGt(ack, this.finSeq)) dataAcked--;
    if (dataAcked > 0) this.sndBuf.consume(dataAcked);
    this.sndUna = ack;
    this.sackPrune(ack);
    if (this.tlpSeq !== -1 && seqGt(ack, this.tlpSeq)) this.tlpSeq = -1;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.retries = 0;
    if (this.rttTiming && seqGe(ack, this.rttSeq)) {
      this.rttTiming = false;
      this.rttSample(now - this.rttStart);
    }
    const mss = this.sndMss;
    if (this.inRecovery) {
      if (seqGe(ack, this.recover)) {
        // Full ACK (RFC 6582 §3.2 step 3): deflate.
        this.inRecovery = false;
        this.forcedLost = -1;
        this.dupAcks = 0;
        this.cwnd = Math.min(this.ssthresh, Math.max(seqDiff(this.sndMax, this.sndUna), mss) + mss);
      } else if (!this.sackOk) {
        // Partial ACK: the next hole is lost too; retransmit it, deflate by what was acked.
        this.retransmitHead(now);
        this.cwnd = Math.max(this.cwnd - acked + (acked >= mss ? mss : 0), mss);
      }
    } else {
      this.dupAcks = 0;
      if (this.cwnd < this.ssthresh) {
        // Slow start with RFC 3465 L = 2*SMSS so delayed ACKs still double cwnd per RTT.
        this.cwnd = Math.min(this.cwnd + Math.min(acked, 2 * mss), CWND_MAX);
      } else {
        // Congestion avoidance: one SMSS per cwnd of acked bytes (RFC 5681 §3.1 eq. 3 alternative).
        this.caAcked += acked;
        if (this.caAcked >= this.cwnd) {
          this.caAcked -= this.cwnd;
          this.cwnd = Math.min(this.cwnd + mss, CWND_MAX);
        }
      }
    }
    // RFC 6298 §5.2/5.3.
    this.rtxAt = this.sndUna === this.sndMax ? Infinity : now + this.rto;
    if (this.writeWaiters.length > 0 && this.sndBuf.queued <= this.sndBufSize) this.resolveWriters(true);
  }

  /** A duplicate ACK with SACK (RFC 6675 §5): recovery on DupThresh of them or when SND.UNA IsLost. */
  private sackDupAck(now: number): void {
    this.dupAcks++;
    // RFC 6675 §5.1: not before HighACK reaches the RecoveryPoint of the last recovery or RTO.
    if (this.inRecovery || seqLt(this.sndUna, this.recover)) return;
    if (this.dupAcks >= DUP_THRESH || seqGt(this.lostEnd(), this.sndUna) || this.probeRevealsLoss()) this.enterSackRecovery(now);
  }

  private dupAck(now: number): void {
    this.dupAcks++;
    if (this.inRecovery) {
      this.cwnd += this.sndMss; // RFC 6582 §3.2 step 4: inflate, new data may go out
      return;
    }
    if (this.dupAcks !== 3 || !seqGt(this.sndUna, this.recover)) return;
    // Fast retransmit (RFC 5681 §3.2, RFC 6582 §3.2 step 2).
    const mss = this.sndMss;
    this.owner.counters.fastRetransmits++;
    this.ssthresh = Math.max(seqDiff(this.sndMax, this.sndUna) >> 1, 2 * mss);
    this.recover = this.sndMax;
    this.retransmitHead(now);
    this.cwnd = this.ssthresh + 3 * mss;
    this.inRecovery = true;
  }

  /** RFC 6298 §2.2/2.3. */
  private rttSample(r: number): void {
    if (r < 0) r = 0;
    if (!this.hasRtt) {
      this.srtt = r;
      this.rttvar = r / 2;
      this.hasRtt = true;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = Math.min(Math.max(this.srtt + Math.max(1, 4 * this.rttvar), TcpTimers.rtoMinMs), TcpTimers.rtoMaxMs);
  }

  private onReset(): void {
    switch (this.state) {
      case TcpState.SYN_RECEIVED:
        // A passive open returns to LISTEN (the listener lives on): just drop the embryo.
        this.finish(this.listener !== undefined ? CLOSED_RESET : CLOSED_REFUSED);
        break;
      case TcpState.ESTABLISHED:
      case TcpState.FIN_WAIT_1:
      case TcpState.FIN_WAIT_2:
      case TcpState.CLOSE_WAIT:
        this.owner.counters.estabResets++;
        this.finish(CLOSED_RESET);
        break;
      default:
        this.finish(CLOSED_OK); // CLOSING, LAST-ACK, TIME-WAIT: the app had finished anyway
        break;
    }
  }

  private challengeAck(): void {
    this.owner.counters.challengeAcks++;
    this.ackNow = true;
  }

  private finReceived(now: number): void {
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.oooFin = -1;
    this.eof = true;
    this.ackNow = true;
    this.scheduleWake();
    switch (this.state) {
      case TcpState.ESTABLISHED:
        this.state = TcpState.CLOSE_WAIT;
        break;
      case TcpState.FIN_WAIT_1:
        this.state = TcpState.CLOSING; // simultaneous close (§3.6 figure 13)
        break;
      case TcpState.FIN_WAIT_2:
        this.enterTimeWait(now);
        break;
      default:
        break;
    }
  }

  private enterTimeWait(now: number): void {
    this.state = TcpState.TIME_WAIT;
    this.twAt = now + this.timeWaitMs;
    this.rtxAt = this.persistAt = Infinity;
    // Both directions are done: the app's view of the connection is complete.
    this.resolveClosed(CLOSED_OK);
    this.resolveWriters(false);
  }

  // ---- receive buffers ----

  /** Appends in-order bytes to the app's queue, copying (the IP layer may reuse its buffers). */
  private deliver(data: Uint8Array, copy: boolean): void {
    const n = data.length;
    this.recvBytes += n;
    if (!copy) {
      this.recvQ.push(data);
      this.scheduleWake();
      return;
    }
    let blk = this.rxBlock;
    let pos = this.rxPos;
    if (blk === undefined || blk.length - pos < n) {
      if (n >= RX_BLOCK_MAX / 4) {
        this.recvQ.push(data.slice());
        this.scheduleWake();
        return;
      }
      // Small first block, growing: short connections stay cheap, bulk ones get big chunks.
      blk = this.rxBlock = new Uint8Array(this.rxBlockSize);
      this.rxBlockSize = Math.min(this.rxBlockSize * 2, RX_BLOCK_MAX);
      pos = 0;
    }
    blk.set(data, pos);
    const q = this.recvQ;
    const last = q.length > this.recvHead ? q[q.length - 1]! : undefined;
    if (last !== undefined && last.buffer === blk.buffer && last.byteOffset + last.length === pos) {
      q[q.length - 1] = blk.subarray(last.byteOffset, pos + n);
    } else {
      q.push(blk.subarray(pos, pos + n));
    }
    this.rxPos = pos + n;
    this.scheduleWake();
  }

  /** Stores an out-of-order segment: copies only the bytes not already held, merging runs. */
  private insertOoo(seq: number, data: Uint8Array): void {
    const q = this.ooo;
    const base = this.rcvNxt;
    const start = seqDiff(seq, base);
    const end = start + data.length;
    if (this.oooRecent === NONE) this.oooRecent = [];
    const recent = this.oooRecent;
    recent.unshift(seq);
    if (recent.length > 2 * MAX_SACK_BLOCKS) recent.length = 2 * MAX_SACK_BLOCKS;
    // Runs [i, j) touch or overlap [start, end]; new segments mostly land at the tail.
    let i = q.length;
    while (i > 0 && seqDiff(q[i - 1]!.end, base) >= start) i--;
    let j = i;
    while (j < q.length && seqDiff(q[j]!.seq, base) <= end) j++;
    if (i === j) {
      q.splice(i, 0, { seq, end: seqAdd(seq, data.length), parts: [data.slice()] });
      return;
    }
    const first = q[i]!;
    const firstStart = seqDiff(first.seq, base);
    let parts: Uint8Array[];
    if (start < firstStart) {
      parts = [data.slice(0, firstStart - start)];
      for (const p of first.parts) parts.push(p);
      first.seq = seq;
    } else {
      parts = first.parts; // the common case: appending to a run, O(1)
    }
    let covered = seqDiff(first.end, base);
    for (let k = i + 1; k < j; k++) {
      const b = q[k]!;
      const bs = seqDiff(b.seq, base);
      if (bs > covered) parts.push(data.slice(covered - start, bs - start));
      for (const p of b.parts) parts.push(p);
      covered = seqDiff(b.end, base);
    }
    if (end > covered) {
      parts.push(data.slice(covered - start));
      covered = end;
    }
    first.parts = parts;
    first.end = seqAdd(base, covered);
    if (j - i > 1) q.splice(i + 1, j - i - 1);
  }

  /** Moves the queue's now in-order prefix to the app. */
  private drainOoo(): void {
    const q = this.ooo;
    let i = 0;
    while (i < q.length) {
      const b = q[i]!;
      if (seqGt(b.seq, this.rcvNxt)) break;
      let pseq = b.seq;
      for (const p of b.parts) {
        const off = seqDiff(this.rcvNxt, pseq);
        if (off < p.length) {
          const part = off <= 0 ? p : p.subarray(off);
          this.deliver(part, false);
          this.rcvNxt = seqAdd(this.rcvNxt, part.length);
        }
        pseq = seqAdd(pseq, p.length);
      }
      i++;
    }
    if (i > 0) q.splice(0, i);
  }

  /**
   * The SACK option for an ACK (RFC 2018 §4): the run holding the latest arrival first, then the
   * runs of the other recent arrivals, then the highest others; at most 4 blocks.
   */
  private sackBlocks(): Uint8Array {
    const q = this.ooo;
    const out: number[] = [];
    const max = 2 * MAX_SACK_BLOCKS;
    for (const seq of this.oooRecent) {
      if (out.length >= max) break;
      for (let k = q.length - 1; k >= 0; k--) {
        const b = q[k]!;
        if (seqLt(seq, b.seq)) continue;
        if (seqLt(seq, b.end) && !hasBlock(out, b.seq)) out.push(b.seq, b.end);
        break;
      }
    }
    for (let k = q.length - 1; k >= 0 && out.length < max; k--) {
      const b = q[k]!;
      if (!hasBlock(out, b.seq)) out.push(b.seq, b.end);
    }
    return sackOption(out);
  }

  /** The 16-bit window field: free buffer, never shrinking, SWS-avoiding (RFC 9293 §3.8.6.2.2). */
  private selectWindow(): number {
    const free = Math.max(0, this.rcvBufSize - this.recvBytes);
    const cur = Math.max(0, seqDiff(this.rcvAdvRight, this.rcvNxt));
    let win = cur;
    if (free > cur && free - cur >= Math.min(this.advMss, this.rcvBufSize >> 1)) win = free;
    const shift = this.rcvShift;
    let field = win >>> shift;
    if (field << shift < cur) field = (cur + (1 << shift) - 1) >>> shift;
    if (field > 0xffff) field = 0xffff;
    this.rcvAdvRight = seqAdd(this.rcvNxt, field << shift);
    return field;
  }

  // ---- sending ----

  /** Sends what cwnd, the peer's window, SWS avoidance and Nagle allow; then the pending ACK. */
  private flush(now: number): void {
    if (this.state === TcpState.CLOSED) return;
    this.trySend(now, false);
    if (this.sackOk) this.armProbe(now);
    if (this.ackNow) this.sendAck();
    this.owner.schedule(this);
  }

  private trySend(now: number, force: boolean): void {
    const st = this.state;
    if (
      st !== TcpState.ESTABLISHED &&
      st !== TcpState.CLOSE_WAIT &&
      st !== TcpState.FIN_WAIT_1 &&
      st !== TcpState.CLOSING &&
      st !== TcpState.LAST_ACK
    ) {
      return;
    }
    const buf = this.sndBuf;
    const mss = this.sndMss;
    const sackRecovery = this.inRecovery && this.sackOk;
    for (;;) {
      let flight = 0;
      let limit = Infinity;
      if (sackRecovery) {
        // RFC 6675 §5 (C): send while cwnd - pipe >= 1 SMSS, what NextSeg (§4.3) picks.
        flight = this.setPipe();
        if (this.cwnd - flight < mss) break;
        if (this.relost.length > 0 && this.resendRelost(now)) continue;
        // Rule 1: the first unSACKed sequence above HighRxt that IsLost().
        const s = this.nextHole(this.highRxt);
        if (s !== -1 && seqLt(s, this.lostEnd()) && this.resendHole(s, now)) continue;
        // Rule 2: new data (below).
      } else if (this.sacked !== undefined && this.sacked.length > 0 && seqLt(this.sndNxt, this.sndMax)) {
        // Going back N after an RTO: skip what the scoreboard says arrived (RFC 6675 §5.1).
        const s = this.nextHole(this.sndNxt);
        if (s === -1) {
          this.sndNxt = this.sndMax;
        } else {
          this.sndNxt = s;
          if (seqLt(this.holeEnd, this.sndMax)) limit = seqDiff(this.holeEnd, s);
        }
      }
      const inFlight = seqDiff(this.sndNxt, this.sndUna);
      if (!sackRecovery) flight = this.sacked !== undefined && this.sacked.length > 0 ? inFlight - this.sackedBelow(this.sndNxt) : inFlight;
      const nxtOff = buf.start + inFlight;
      const avail = buf.end - nxtOff;
      if (avail <= 0) {
        if (sackRecovery) {
          // Rule 3: nothing new to send; resend the next unSACKed (not yet lost) segment.
          const s = this.nextHole(this.highRxt);
          if (s !== -1 && this.resendHole(s, now)) continue;
        }
        if (this.finQueued && avail === 0 && this.sndNxt === this.finSeq) this.sendData(nxtOff, 0, true, now);
        break;
      }
      let len = avail < mss ? avail : mss;
      if (len > limit) len = limit;
      const wndRoom = this.sndWnd - inFlight;
      const cwndRoom = this.cwnd - flight;
      if (this.tsoMaxBytes > mss && !sackRecovery && limit === Infinity && avail > mss) {
        // TSO: as many whole segments as the windows allow go down as one (tcp_tso_autosize);
        // the IP layer cuts them back into MSS-sized segments where the MTU requires it.
        const room = Math.min(avail, wndRoom, cwndRoom, this.tsoMaxBytes - (this.tsoMaxBytes % mss));
        if (room > mss) len = room === avail ? avail : room - (room % mss);
      }
      if (cwndRoom < len) break; // wait for ACKs: some are due, since cwnd >= SMSS
      if (wndRoom < len) {
        // Sender SWS avoidance (RFC 9293 §3.8.6.2.1): a partial segment only when it is at least
        // half the largest window the peer offered, or when the persist timer forces it.
        if (wndRoom <= 0 || (!force && wndRoom < this.maxSndWnd / 2)) break;
        len = wndRoom;
      } else if (len < mss && !this.noDelay && !force && !this.finQueued && inFlight > 0 && len === avail) {
        break; // Nagle (RFC 9293 §3.7.4)
      }
      force = false;
      this.sendData(nxtOff, len, this.finQueued && nxtOff + len === buf.end, now);
      if (this.state === TcpState.CLOSED) return;
    }
    // Persist (RFC 9293 §3.8.6.1): data waits for a window and nothing is in flight to bring an ACK.
    if (this.sndUna === this.sndMax && buf.queued > 0) {
      if (this.persistAt === Infinity) this.persistAt = now + this.persistInterval();
    } else {
      this.persistAt = Infinity;
    }
  }

  private persistInterval(): number {
    return Math.min(this.rto * 2 ** this.persistBackoff, TcpTimers.rtoMaxMs);
  }

  /** Sends [off, off+len) of the stream at SND.NXT (plus FIN), advancing SND.NXT. */
  private sendData(off: number, len: number, fin: boolean, now: number): void {
    const buf = this.sndBuf;
    const payload = len > 0 ? buf.slice(off, len) : EMPTY;
    const seq = this.sndNxt;
    const retransmit = seqLt(seq, this.sndMax);
    let flags = ACK;
    if (len > 0 && off + len === buf.end) flags |= PSH;
    if (fin) flags |= FIN;
    this.emit(seq, flags, payload, EMPTY);
    const end = seqAdd(seq, len + (fin ? 1 : 0));
    this.sndNxt = end;
    if (seqGt(end, this.sndMax)) this.sndMax = end;
    if (retransmit) this.owner.counters.retransSegs++;
    else if (!this.rttTiming) {
      this.rttTiming = true;
      this.rttSeq = end;
      this.rttStart = now;
    }
    if (this.rtxAt === Infinity) this.rtxAt = now + this.rto;
  }

  /** Retransmits one segment at SND.UNA (RTO, fast retransmit, partial ACK). */
  private retransmitHead(now: number): void {
    const buf = this.sndBuf;
    const una = this.sndUna;
    const avail = this.finQueued && seqGt(una, this.finSeq) ? -1 : buf.end - buf.start;
    if (avail < 0) return;
    const len = Math.min(avail, this.sndMss);
    const fin = this.finQueued && len === avail;
    if (len === 0 && !fin) return;
    let flags = ACK;
    if (len > 0 && len === avail) flags |= PSH;
    if (fin) flags |= FIN;
    this.emit(una, flags, len > 0 ? buf.slice(buf.start, len) : EMPTY, EMPTY);
    const end = seqAdd(una, len + (fin ? 1 : 0));
    if (seqLt(this.sndNxt, end)) this.sndNxt = end;
    if (seqGt(end, this.sndMax)) this.sndMax = end;
    this.owner.counters.retransSegs++;
    this.rttTiming = false; // Karn's rule (RFC 6298 §3)
    this.rtxAt = now + this.rto;
  }

  // ---- SACK scoreboard (RFC 6675 §4) ----

  /** Merges the SACK blocks of an ACK into the scoreboard; true when they SACK something new. */
  private sackUpdate(options: Uint8Array, una: number): boolean {
    let fresh = false;
    walkTcpOptions(options, (kind, i, len) => {
      if (kind !== OPT_SACK) return true;
      for (let k = i + 2; k + 8 <= i + len; k += 8) {
        let l = ((options[k]! << 24) | (options[k + 1]! << 16) | (options[k + 2]! << 8) | options[k + 3]!) >>> 0;
        const r = ((options[k + 4]! << 24) | (options[k + 5]! << 16) | (options[k + 6]! << 8) | options[k + 7]!) >>> 0;
        // Blocks at or below the cumulative ACK (D-SACK, old news) or past what was sent: ignored.
        if (seqLe(r, una) || seqGt(r, this.sndMax) || seqGe(l, r)) continue;
        if (seqLt(l, una)) l = una;
        if (this.sackAdd(l, r)) fresh = true;
      }
      return true;
    });
    return fresh;
  }


  private sackAdd(l: number, r: number): boolean {
    const a = (this.sacked ??= []);
    let i = 0;
    while (i < a.length && seqLt(a[i + 1]!, l)) i += 2;
    let j = i;
    while (j < a.length && seqLe(a[j]!, r)) j += 2;
    if (i === j) {
      a.splice(i, 0, l, r);
      return true;
    }
    const nl = seqLt(a[i]!, l) ? a[i]! : l;
    const nr = seqGt(a[j - 1]!, r) ? a[j - 1]! : r;
    if (j === i + 2 && a[i] === nl && a[i + 1] === nr) return false;
    a.splice(i, j - i, nl, nr);
    return true;
  }

  /** Drops what the cumulative ACK covers. */
  private sackPrune(una: number): void {
    const a = this.sacked;
    if (a === undefined) return;
    let k = 0;
    while (k < a.length && seqLe(a[k + 1]!, una)) k += 2;
    if (k > 0) a.splice(0, k);
    if (a.length > 0 && seqLt(a[0]!, una)) a[0] = una;
  }

  /** SACKed bytes below `x`. */
  private sackedBelow(x: number): number {
    const a = this.sacked;
    if (a === undefined) return 0;
    let n = 0;
    for (let k = 0; k < a.length && seqLt(a[k]!, x); k += 2) n += seqDiff(seqLt(a[k + 1]!, x) ? a[k + 1]! : x, a[k]!);
    return n;
  }

  /** Bytes in [SND.UNA, x) not SACKed. */
  private unsackedBelow(x: number): number {
    const d = seqDiff(x, this.sndUna);
    return d <= 0 ? 0 : d - this.sackedBelow(x);
  }

  /**
   * IsLost (RFC 6675 §4) as a boundary: an unSACKed sequence below it has DupThresh SACKed runs,
   * or more than (DupThresh - 1) * SMSS SACKed bytes, above it. SND.UNA when nothing is lost.
   */
  private lostEnd(): number {
    const a = this.sacked;
    let end = this.sndUna;
    if (a !== undefined) {
      let bytes = 0;
      let runs = 0;
      for (let k = a.length - 2; k >= 0; k -= 2) {
        bytes += seqDiff(a[k + 1]!, a[k]!);
        if (++runs >= DUP_THRESH || bytes > (DUP_THRESH - 1) * this.sndMss) {
          end = a[k]!;
          break;
        }
      }
    }
    return this.forcedLost !== -1 && seqGt(this.forcedLost, end) ? this.forcedLost : end;
  }

  // ---- tail loss probe (RFC 8985 §7, without RACK's per-segment times) ----

  /** (Re)starts the probe timer while data is outstanding: PTO = 2 SRTT, at least 10 ms (Linux). */
  private armProbe(now: number): void {
    const st = this.state;
    if (this.sndUna === this.sndMax || this.tlpSeq !== -1 || !this.hasRtt || (st !== TcpState.ESTABLISHED && st !== TcpState.CLOSE_WAIT && st !== TcpState.FIN_WAIT_1 && st !== TcpState.CLOSING && st !== TcpState.LAST_ACK)) {
      this.tlpAt = Infinity;
      return;
    }
    let pto = Math.max(2 * this.srtt, 10);
    // One segment out: the peer may be holding its ACK (RFC 8985 §7.2 WCDelAckT).
    if (seqDiff(this.sndMax, this.sndUna) <= this.sndMss) pto += 200;
    const at = now + pto;
    this.tlpAt = at < this.rtxAt ? at : Infinity;
  }

  /**
   * The probe (RFC 8985 §7.3): one new segment if the peer's window allows, else the last
   * segment again, to draw an ACK with SACK information before the RTO. In a recovery (where
   * RFC 8985 has RACK) the first hole goes again instead: its retransmission was likely lost.
   */
  private onProbe(now: number): void {
    this.tlpAt = Infinity;
    if (this.sndUna === this.sndMax || this.tlpSeq !== -1 || seqLt(this.sndNxt, this.sndMax)) return;
    this.owner.counters.lossProbes++;
    if (this.inRecovery) {
      const s = this.nextHole(this.sndUna);
      if (s === -1) return;
      this.tlpSeq = s;
      this.resendHole(s, now);
    } else {
      const buf = this.sndBuf;
      const inFlight = seqDiff(this.sndNxt, this.sndUna);
      const nxtOff = buf.start + inFlight;
      const avail = buf.end - nxtOff;
      const len = Math.min(avail, this.sndMss);
      if (avail > 0 && this.sndWnd - inFlight >= len) {
        this.tlpSeq = this.sndNxt;
        this.sendData(nxtOff, len, this.finQueued && nxtOff + len === buf.end, now);
      } else {
        const s = seqAdd(this.sndMax, -Math.min(inFlight, this.sndMss));
        this.tlpSeq = s;
        this.holeEnd = this.sndMax;
        this.resendHole(s, now);
      }
    }
    this.rtxAt = now + this.rto;
  }

  /** An ACK SACKed the probe while data sent before it is still missing: that data is lost. */
  private probeRevealsLoss(): boolean {
    const a = this.sacked;
    if (this.tlpSeq === -1 || a === undefined || a.length === 0 || seqLe(a[a.length - 1]!, this.tlpSeq)) return false;
    const s = this.nextHole(this.sndUna);
    return s !== -1 && seqLt(s, this.tlpSeq);
  }

  /** SetPipe (RFC 6675 §4): unSACKed octets not lost, plus those retransmitted. */
  private setPipe(): number {
    return this.unsackedBelow(this.sndMax) - this.unsackedBelow(this.lostEnd()) + this.unsackedBelow(this.highRxt);
  }

  /** End of the hole nextHole() found. */
  private holeEnd = 0;

  /** The first unSACKed sequence at or above `from` (and SND.UNA) below SND.MAX, or -1; sets holeEnd. */
  private nextHole(from: number): number {
    let s = seqLt(from, this.sndUna) ? this.sndUna : from;
    let end = this.sndMax;
    const a = this.sacked;
    if (a !== undefined) {
      for (let k = 0; k < a.length; k += 2) {
        if (seqLe(a[k + 1]!, s)) continue;
        if (seqLe(a[k]!, s)) {
          s = a[k + 1]!;
          continue;
        }
        end = a[k]!;
        break;
      }
    }
    if (seqGe(s, this.sndMax)) return -1;
    this.holeEnd = end;
    return s;
  }

  /** Resends up to one segment of the hole at `seq` (up to holeEnd); advances HighRxt. False if nothing could go. */
  private resendHole(seq: number, now: number): boolean {
    const buf = this.sndBuf;
    const off = buf.start + seqDiff(seq, this.sndUna);
    const room = seqDiff(this.holeEnd, seq);
    let len = Math.min(room, this.sndMss, buf.end - off);
    if (len < 0) len = 0;
    const fin = this.finQueued && off + len === buf.end && room > len;
    if (len === 0 && !fin) return false;
    let flags = ACK;
    if (len > 0 && off + len === buf.end) flags |= PSH;
    if (fin) flags |= FIN;
    this.emit(seq, flags, len > 0 ? buf.slice(off, len) : EMPTY, EMPTY);
    const end = seqAdd(seq, len + (fin ? 1 : 0));
    if (seqGt(end, this.highRxt)) this.highRxt = end;
    if (this.inRecovery) {
      if (this.rtxLog === NONE) this.rtxLog = [];
      this.rtxLog.push(seq, end, this.sndMax);
    }
    const counters = this.owner.counters;
    counters.retransSegs++;
    counters.sackRetransSegs++;
    this.rttTiming = false; // Karn's rule (RFC 6298 §3)
    if (seq === this.sndUna) this.rtxAt = now + this.rto;
    return true;
  }

  /**
   * Lost retransmissions (RFC 6675 has none; Linux's tcp_mark_lost_retrans before RACK): a
   * retransmission still unSACKed when data sent after it, beyond DupThresh segments of
   * reordering, has been SACKed is lost again, and goes again (instead of waiting for the RTO).
   */
  private detectLostRetransmits(): void {
    const log = this.rtxLog;
    const a = this.sacked;
    if (log.length === 0 || a === undefined || a.length === 0) return;
    const highSacked = a[a.length - 1]!;
    const slack = DUP_THRESH * this.sndMss;
    let w = 0;
    for (let k = 0; k < log.length; k += 3) {
      const seq = log[k]!;
      const end = log[k + 1]!;
      const mark = log[k + 2]!;
      if (seqLe(end, this.sndUna)) continue; // delivered
      const s = this.nextHole(seq);
      if (s === -1 || seqGe(s, end)) continue; // SACKed
      if (seqGt(highSacked, seqAdd(mark, slack))) {
        if (this.relost === NONE) this.relost = [];
        this.relost.push(s, end);
        continue;
      }
      log[w++] = seq;
      log[w++] = end;
      log[w++] = mark;
    }
    log.length = w;
  }

  /** Resends the first retransmission found lost that still has unSACKed bytes; false if none. */
  private resendRelost(now: number): boolean {
    const q = this.relost;
    while (q.length > 0) {
      const seq = q[0]!;
      const end = q[1]!;
      q.splice(0, 2);
      const s = this.nextHole(seq);
      if (s === -1 || seqGe(s, end)) continue;
      if (seqGt(this.holeEnd, end)) this.holeEnd = end;
      if (this.resendHole(s, now)) return true;
    }
    return false;
  }

  /** Enters loss recovery (RFC 6675 §5 step 4): the segment at SND.UNA goes at once. */
  private enterSackRecovery(now: number): void {
    this.forcedLost = this.probeRevealsLoss() ? this.tlpSeq : -1;
    const counters = this.owner.counters;
    counters.fastRetransmits++;
    counters.sackRecoveries++;
    this.ssthresh = this.cwnd = Math.max(seqDiff(this.sndMax, this.sndUna) >> 1, 2 * this.sndMss);
    this.recover = this.sndMax;
    this.inRecovery = true;
    this.sndNxt = this.sndMax;
    this.highRxt = this.sndUna;
    if (this.rtxLog !== NONE) this.rtxLog.length = 0;
    if (this.relost !== NONE) this.relost.length = 0;
    const s = this.nextHole(this.sndUna);
    if (s !== -1) this.resendHole(s, now);
  }

  private sendAck(): void {
    this.emit(this.sndNxt, ACK, EMPTY, EMPTY);
  }

  private emit(seq: number, flags: number, payload: Uint8Array, options: Uint8Array): void {
    let window: number;
    if (flags & SYN) {
      // RFC 7323 §2.2: never scaled in a SYN.
      window = Math.min(this.rcvBufSize, 0xffff);
      if (flags & ACK) this.rcvAdvRight = seqAdd(this.rcvNxt, window);
    } else if (flags & RST) {
      window = 0;
    } else {
      window = this.selectWindow();
    }
    if (flags & ACK) {
      this.ackNow = false;
      this.unackedBytes = 0;
      this.delackAt = Infinity;
      // SACK blocks while out-of-order data is held (RFC 2018 §4), when they fit beside the payload.
      if (this.sackOk && this.ooo.length > 0 && !(flags & (SYN | RST))) {
        const sack = this.sackBlocks();
        if (payload.length + sack.length <= this.sndMss) options = sack;
      }
    }
    this.owner.counters.outSegs++;
    // A false return (no route) is a lost segment: the timers retry, as for a drop on the wire.
    this.owner.host.output({
      gsoSize: payload.length > this.sndMss ? this.sndMss : 0,
      src: this.localIp,
      dst: this.remoteIp,
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seq,
      ack: flags & ACK ? this.rcvNxt : 0,
      flags,
      window,
      options,
      payload,
    });
  }

  // ---- ICMP errors (Linux tcp_v4_err, net/ipv4/tcp_ipv4.c) ----

  /**
   * An ICMP error quoting a segment of this connection whose sequence number was `seq`. Opening
   * connections end at once, as Linux does (RFC 5461: it treats soft errors as hard while
   * connecting, so connect() fails with ECONNREFUSED / EHOSTUNREACH rather than after 127 s of
   * SYN retries); synchronized ones only record it (RFC 1122 §4.2.3.9). "Fragmentation needed"
   * lowers the MSS (RFC 1191) and aborts nothing.
   */
  icmpError(seq: number, type: number, code: number, nextHopMtu: number, now: number): IcmpErrorOutcome {
    const st = this.state;
    // A TIME-WAIT connection has nothing in flight to be told about.
    if (st === TcpState.CLOSED || st === TcpState.LISTEN || st === TcpState.TIME_WAIT) return "ignored";
    if (st === TcpState.SYN_RECEIVED && this.listener !== undefined) return this.icmpErrorEmbryo(seq, type, code);
    // RFC 5927 §4.1 (Linux: between(seq, snd_una, snd_nxt)): an error about data not in flight is
    // stale or forged. SND.MAX stands for Linux's snd_nxt, which never moves back after an RTO.
    if (seqLt(seq, this.sndUna) || seqGt(seq, this.sndMax)) return "outOfWindow";
    if (type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED) return this.pmtuReduced(nextHopMtu, now) ? "pmtu" : "ignored";
    const err = icmpErrConvert(type, code);
    if (err === undefined) return "ignored";
    const reason = err.kind === "refused" ? CLOSED_REFUSED : CLOSED_UNREACHABLE;
    if (st === TcpState.SYN_SENT || st === TcpState.SYN_RECEIVED) {
      this.finish(reason);
      return "aborted";
    }
    // Linux would report it at once only with IP_RECVERR, which no app here sets. RFC 6069's
    // backoff revert for net/host unreachable (tcp_ld_RTO_revert) is not done: the RTO keeps
    // doubling, so a path that comes back is found a little later than on Linux.
    this.softErr = reason;
    return "soft";
  }

  /**
   * A passive open still in SYN-RECEIVED (Linux tcp_req_err): only an error quoting our SYN-ACK
   * exactly, and only time exceeded or net/host unreachable (a routing failure towards the
   * client), drops it, silently: accept() never returns network errors (POSIX).
   */
  private icmpErrorEmbryo(seq: number, type: number, code: number): IcmpErrorOutcome {
    if (seq !== this.iss) return "outOfWindow";
    const abort = type === ICMP_TIME_EXCEEDED || (type === ICMP_DEST_UNREACH && (code === ICMP_NET_UNREACH || code === ICMP_HOST_UNREACH));
    if (!abort) return "ignored";
    this.owner.counters.listenDrops++;
    this.finish(CLOSED_UNREACHABLE);
    return "aborted";
  }

  /**
   * "Fragmentation needed" with the next-hop MTU (RFC 1191 §6.1; Linux tcp_v4_mtu_reduced):
   * the MSS drops to fit, and what is in flight goes again at once in segments of the new size
   * (tcp_simple_retransmit), without the congestion response of a loss. True when the MSS
   * went down.
   */
  private pmtuReduced(mtu: number, now: number): boolean {
    // RFC 1191 §5: a router predating it sends 0; Linux then guesses from a table of plateaus.
    // Not done: ignored, and the segments are lost until the RTO as before.
    if (mtu === 0) return false;
    const mss = Math.max(mtu, MIN_PMTU) - 40;
    if (mss >= Math.min(this.pmtuMss, this.owner.host.mtuFor(this.remoteIp) - 40)) return false;
    this.pmtuMss = mss;
    // In SYN-SENT the peer's MSS is not known yet: applySynOptions takes pmtuMss into account.
    this.sndMss = Math.max(Math.min(this.sndMss, mss), MIN_MSS);
    this.owner.counters.pmtuUpdates++;
    const st = this.state;
    if (st === TcpState.SYN_SENT || st === TcpState.SYN_RECEIVED || this.sndUna === this.sndMax) return true;
    // Go back N from SND.UNA, re-cut to the new MSS (as after an RTO, but cwnd stays: the path
    // did not congest). In recovery, the recovery's own retransmissions use the new MSS.
    if (!this.inRecovery) {
      this.recover = this.sndMax;
      this.dupAcks = 0;
      this.tlpSeq = -1;
      this.rttTiming = false; // Karn: what is sent now is a retransmission
      this.sndNxt = this.sndUna;
      this.flush(now);
    }
    return true;
  }

  // ---- timers ----

  onTimer(now: number): void {
    if (this.twAt <= now) {
      this.twAt = Infinity;
      this.finish(CLOSED_OK);
      return;
    }
    if (this.connectAt <= now) {
      this.connectAt = Infinity;
      if (this.state === TcpState.SYN_SENT || this.state === TcpState.SYN_RECEIVED) {
        this.finish(CLOSED_TIMEOUT);
        return;
      }
    }
    if (this.rtxAt <= now) {
      this.tlpAt = Infinity;
      this.onRetransmitTimeout(now);
      if (this.state === TcpState.CLOSED) return;
    } else if (this.tlpAt <= now) {
      this.onProbe(now);
    }
    if (this.persistAt <= now) this.onPersist(now);
    if (this.delackAt <= now) {
      this.delackAt = Infinity;
      if (this.unackedBytes > 0) {
        this.owner.counters.delayedAcks++;
        this.ackNow = true;
      }
    }
    if (this.ackNow) this.sendAck();
  }

  private backoff(): void {
    this.rto = Math.min(this.rto * 2, TcpTimers.rtoMaxMs);
  }

  private onRetransmitTimeout(now: number): void {
    this.rtxAt = Infinity;
    const counters = this.owner.counters;
    switch (this.state) {
      case TcpState.SYN_SENT:
      case TcpState.SYN_RECEIVED: {
        const limit = this.state === TcpState.SYN_SENT || this.listener === undefined ? TcpTimers.synRetries : TcpTimers.synAckRetries;
        if (this.retries >= limit) {
          counters.timeouts++;
          this.finish(this.softErr ?? CLOSED_TIMEOUT);
          return;
        }
        this.retries++;
        this.backoff();
        counters.retransSegs++;
        this.sendSyn(this.state === TcpState.SYN_RECEIVED, now);
        this.rtxAt = now + this.rto;
        return;
      }
      case TcpState.TIME_WAIT:
      case TcpState.FIN_WAIT_2:
        return;
      default:
        break;
    }
    if (this.sndUna === this.sndMax) return;
    if (this.retries >= TcpTimers.dataRetries) {
      counters.timeouts++;
      // Linux tcp_write_err: a soft error recorded meanwhile (ICMP) is the reason, not ETIMEDOUT.
      this.finish(this.softErr ?? CLOSED_TIMEOUT);
      return;
    }
    counters.rtoExpirations++;
    // RFC 5681 §3.1 eq. 4 (only on the first timeout of this data), then RFC 6298 §5.4-5.6.
    if (this.retries === 0) this.ssthresh = Math.max(seqDiff(this.sndMax, this.sndUna) >> 1, 2 * this.sndMss);
    this.retries++;
    this.backoff();
    this.cwnd = this.sndMss;
    this.caAcked = 0;
    this.inRecovery = false;
    this.dupAcks = 0;
    this.recover = this.sndMax;
    // RFC 6675 §5.1: the scoreboard stays, so going back N resends only the holes. A second
    // timeout of the same data forgets it, in case the receiver reneged (RFC 2018 §8).
    if (this.retries > 1) this.sacked = undefined;
    this.tlpSeq = -1;
    this.forcedLost = -1;
    // Go back N: everything after the first segment goes again as ACKs return.
    this.sndNxt = this.sndUna;
    this.retransmitHead(now);
  }

  private onPersist(now: number): void {
    this.persistAt = Infinity;
    if (this.sndUna !== this.sndMax || this.sndBuf.queued === 0) return;
    if (this.sndWnd === 0) {
      // Zero-window probe as Linux sends it (tcp_xmit_probe_skb): an ACK with an old sequence
      // number, which the peer must answer with an ACK carrying its window (§3.10.7.4).
      this.owner.counters.persistProbes++;
      this.emit(seqAdd(this.sndUna, -1), ACK, EMPTY, EMPTY);
      this.persistBackoff++;
      this.persistAt = now + this.persistInterval();
      return;
    }
    this.trySend(now, true); // the SWS override timeout
  }

  // ---- app side (socket.ts) ----

  appWrite(data: Uint8Array): Promise<boolean> {
    const st = this.state;
    if ((st !== TcpState.ESTABLISHED && st !== TcpState.CLOSE_WAIT) || this.finQueued) return FALSE_P;
    if (data.length === 0) return TRUE_P;
    this.sndBuf.append(data);
    this.flush(this.owner.host.now());
    if (this.sndBuf.queued <= this.sndBufSize) return TRUE_P;
    return new Promise<boolean>((resolve) => this.writeWaiters.push(resolve));
  }

  appRead(): Promise<Uint8Array | null> {
    if (this.recvHead < this.recvQ.length && this.readWaiters.length === 0) return Promise.resolve(this.take());
    if (this.eof || this.state === TcpState.CLOSED) {
      if (this.readWaiters.length === 0) return NULL_P;
    }
    return new Promise<Uint8Array | null>((resolve) => {
      this.readWaiters.push(resolve);
      this.scheduleWake();
    });
  }

  private take(): Uint8Array {
    const q = this.recvQ;
    let c = q[this.recvHead]!;
    q[this.recvHead++] = EMPTY;
    // Small chunks (runs drained from the out-of-order queue are one per segment) go out as one:
    // a copy is cheaper than a read() promise per segment.
    if (c.length < RX_COALESCE && this.recvHead < q.length && q[this.recvHead]!.length < RX_COALESCE) {
      let n = c.length;
      let k = this.recvHead;
      while (k < q.length && n + q[k]!.length <= RX_COALESCE) n += q[k++]!.length;
      if (k > this.recvHead) {
        const out = new Uint8Array(n);
        out.set(c, 0);
        let o = c.length;
        for (; this.recvHead < k; this.recvHead++) {
          out.set(q[this.recvHead]!, o);
          o += q[this.recvHead]!.length;
          q[this.recvHead] = EMPTY;
        }
        c = out;
      }
    }
    if (this.recvHead === q.length) {
      q.length = 0;
      this.recvHead = 0;
    } else if (this.recvHead >= 1024 && this.recvHead * 2 >= q.length) {
      q.splice(0, this.recvHead);
      this.recvHead = 0;
    }
    this.recvBytes -= c.length;
    this.maybeWindowUpdate();
    return c;
  }

  /** ACK at once when reading opened a window that had closed or shrunk (RFC 9293 §3.8.6.2.2). */
  private maybeWindowUpdate(): void {
    const st = this.state;
    if (st !== TcpState.ESTABLISHED && st !== TcpState.FIN_WAIT_1 && st !== TcpState.FIN_WAIT_2) return;
    const cur = Math.max(0, seqDiff(this.rcvAdvRight, this.rcvNxt));
    const free = this.rcvBufSize - this.recvBytes;
    if (free - cur >= Math.min(this.advMss, this.rcvBufSize >> 1) && free >= 2 * cur) {
      this.sendAck();
      this.owner.schedule(this);
    }
  }

  private scheduleWake(): void {
    if (this.wakeScheduled || this.readWaiters.length === 0) return;
    this.wakeScheduled = true;
    // Waking in a microtask lets one batch of segments reach the reader as one chunk.
    queueMicrotask((this.wakeFn ??= (): void => this.wakeReaders()));
  }

  private wakeReaders(): void {
    this.wakeScheduled = false;
    const w = this.readWaiters;
    let i = 0;
    while (i < w.length && this.recvHead < this.recvQ.length) w[i++]!(this.take());
    if (i < w.length && (this.eof || this.state === TcpState.CLOSED)) while (i < w.length) w[i++]!(null);
    if (i > 0) w.splice(0, i);
  }

  /** Half-close (RFC 9293 §3.10.4 CLOSE): FIN after the queued data. */
  appEnd(): void {
    if (this.finQueued) return;
    if (this.state === TcpState.ESTABLISHED) this.state = TcpState.FIN_WAIT_1;
    else if (this.state === TcpState.CLOSE_WAIT) this.state = TcpState.LAST_ACK;
    else return;
    this.finQueued = true;
    this.finSeq = seqAdd(this.iss, 1 + this.sndBuf.end);
    this.resolveWriters(false);
    this.flush(this.owner.host.now());
  }

  /** RFC 9293 §3.10.5 ABORT: <SEQ=SND.NXT><CTL=RST>, then gone. */
  appAbort(): void {
    const st = this.state;
    if (st === TcpState.CLOSED) return;
    if (st !== TcpState.SYN_SENT && st !== TcpState.TIME_WAIT) {
      this.owner.counters.outRsts++;
      this.emit(this.sndNxt, RST, EMPTY, EMPTY);
    }
    this.finish(CLOSED_ABORTED);
  }

  // ---- closing ----

  /** To CLOSED: settle every promise, leave the tables. */
  finish(reason: CloseReason): void {
    if (this.state === TcpState.CLOSED) return;
    const wasSynSent = this.state === TcpState.SYN_SENT || (this.state === TcpState.SYN_RECEIVED && this.listener === undefined);
    this.state = TcpState.CLOSED;
    this.rtxAt = this.tlpAt = this.persistAt = this.delackAt = this.twAt = this.connectAt = Infinity;
    if (this.connectResolve !== undefined) {
      const resolve = this.connectResolve;
      this.connectResolve = undefined;
      if (wasSynSent) this.owner.counters.attemptFails++;
      resolve(reason.kind === "refused" ? { kind: "refused" } : reason.kind === "timeout" ? { kind: "timeout" } : { kind: "unreachable" });
    }
    if (reason.kind !== "closed") {
      // Abortive ends discard what was buffered (RFC 9293 §3.10.7.4 RST: "flush all queues").
      this.recvQ.length = 0;
      this.recvHead = 0;
      this.recvBytes = 0;
      this.sndBufObj?.clear();
    }
    this.ooo.length = 0;
    this.sacked = undefined;
    this.eof = true;
    this.resolveClosed(reason);
    this.resolveWriters(false);
    this.scheduleWake();
    this.owner.release(this);
  }

  private resolveClosed(reason: CloseReason): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    const resolve = this.closedResolve;
    if (resolve === undefined) return;
    this.closedResolve = undefined;
    resolve(reason);
  }

  private resolveWriters(ok: boolean): void {
    const w = this.writeWaiters;
    if (w.length === 0) return;
    this.writeWaiters = [];
    for (const resolve of w) resolve(ok);
  }
}
