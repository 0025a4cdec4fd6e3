/**
 * Connection tracking and NAT of one netns: Linux's nf_conntrack + nf_nat for IPv4 TCP, UDP,
 * ICMP echo, ICMP errors (RELATED) and other protocols by address pair (the generic tracker).
 *
 * Design notes:
 * - One table holds both tuples of every entry (Linux nf_conntrack_tuple_hash, gVisor
 *   stack/conntrack.go): a packet finds its entry from either direction with one lookup, and
 *   the direction it matched is `pkt.ctDir`. The table is an array of buckets with intrusive
 *   singly linked chains of per-direction nodes keyed by a seeded 32-bit murmur3 hash of the
 *   5-tuple (nf_conntrack_core.c hash_conntrack_raw): looking up an existing connection reads
 *   numbers only and allocates nothing. Buckets double as the table grows, up to one per entry
 *   of `max` (nf_conntrack_buckets = nf_conntrack_max on recent kernels).
 * - Lifecycle as in nf_conntrack_core.c: `in` (PREROUTING/OUTPUT, priority -200) finds the
 *   entry or builds an *unconfirmed* one hung on the packet only; NAT binds it (`bindNat`) while
 *   it is unconfirmed; `confirm` (last at POSTROUTING/INPUT) inserts both tuples. A dropped
 *   first packet therefore leaves nothing behind. The `max` limit is enforced at confirm (Linux
 *   checks it when allocating in `in`; here an unconfirmed entry is only garbage for the GC):
 *   first early_drop (evict an unassured entry from a few buckets near the new hash), else
 *   "full", counted, and the caller drops with DropReason.TableFull.
 * - Expiry is lazy (gVisor reaps on lookup, Linux nf_ct_is_expired + nf_ct_gc_expired): an
 *   expired entry found by `in` is removed and the packet is new; `expire` sweeps buckets
 *   with bounded work per call (Linux gc_worker). Time is always the `now` parameter (ms).
 * - NAT is a property of the entry (nf_nat_core.c): DNAT rewrites the reply tuple's source,
 *   SNAT its destination; every packet is then mangled so that its tuple becomes the inverse
 *   of the other direction's tuple (nf_nat_manip_pkt). Checksums are updated incrementally
 *   (RFC 1624 eqn. 3), as nf_nat_proto.c does with inet_proto_csum_replace{2,4}.
 * - Verdicts of `in` are shared constants: the per-packet path allocates nothing.
 *
 * Simplifications against Linux (kept deliberately):
 * - No TCP window tracking (tcp_in_window, be_liberal): sequence numbers are not checked; the
 *   transition table is Linux's, the "ignore" cases (sIG) accept without refreshing the timeout
 *   and without the SYN/ACK retransmission bookkeeping; no max_retrans / unacknowledged timeouts.
 * - nf_conntrack_tcp_loose=1: a mid-stream ACK picks a connection up as ESTABLISHED.
 * - UDP becomes a stream (udp_timeout_stream, ASSURED) on the first packet after a reply was
 *   seen; kernels since 5.19 also wait 2 s (stream_ts) before that. Not modelled.
 * - ICMP: only echo is tracked (timestamp, info, address mask are INVALID); errors are RELATED.
 * - Non-first fragments are UNTRACKED: Linux reassembles before conntrack (nf_defrag_ipv4).
 * - No zones, labels, helpers/expectations, events, per-CPU lists, or SNAT port ranges below
 *   1024 (Linux picks 1-511 / 600-1023 for privileged source ports).
 */
import {
  IpProtocol,
  formatIpv4,
  internetChecksum,
  readU16,
  readU32,
  writeU16,
  writeU32,
} from "../overlay/wire/index.ts";
import { CtDir, CtState } from "./packet.ts";
import type { Packet, PacketView } from "./packet.ts";

// ---------------------------------------------------------------------------------------------
// Tuples

/** A conntrack tuple (nf_conntrack_tuple): addresses are uint32; ICMP echo: sport = dport = id. */
export interface Tuple {
  proto: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
}

/** The tuple of a parsed packet in its own direction (allocates: new connections only). */
export function tupleOf(pkt: PacketView): Tuple {
  return { proto: pkt.proto, src: pkt.src, dst: pkt.dst, sport: pkt.sport, dport: pkt.dport };
}

/**
 * The tuple of the answer (nf_ct_invert_tuple, gVisor `reply()`). For ICMP echo the identifier
 * stays and the type flips request <-> reply (icmp_invert_tuple's invmap); the type is implied
 * by the direction of the entry, so the tuple itself just swaps.
 */
export function invert(t: Tuple): Tuple {
  return { proto: t.proto, src: t.dst, dst: t.src, sport: t.dport, dport: t.sport };
}

function tupleEq(a: Tuple, b: Tuple): boolean {
  return a.proto === b.proto && a.src === b.src && a.dst === b.dst && a.sport === b.sport && a.dport === b.dport;
}

// ---------------------------------------------------------------------------------------------
// States, status bits, timeouts

/** TCP conntrack states (nf_conntrack_proto_tcp.c, enum tcp_conntrack). */
export const TcpState = {
  None: 0,
  SynSent: 1,
  SynRecv: 2,
  Established: 3,
  FinWait: 4,
  CloseWait: 5,
  LastAck: 6,
  TimeWait: 7,
  Close: 8,
  /** Simultaneous open: a SYN seen in both directions. */
  SynSent2: 9,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

export const TCP_STATE_NAMES = [
  "NONE",
  "SYN_SENT",
  "SYN_RECV",
  "ESTABLISHED",
  "FIN_WAIT",
  "CLOSE_WAIT",
  "LAST_ACK",
  "TIME_WAIT",
  "CLOSE",
  "SYN_SENT2",
] as const;

/** Entry status bits, with Linux's IPS_* bit numbers (include/uapi/linux/netfilter/nf_conntrack_common.h). */
export const CtStatus = {
  SeenReply: 1 << 1,
  Assured: 1 << 2,
  Confirmed: 1 << 3,
  SrcNat: 1 << 4,
  DstNat: 1 << 5,
  Dying: 1 << 9,
} as const;
export type CtStatus = (typeof CtStatus)[keyof typeof CtStatus];

const SEC = 1000;
/**
 * Timeouts in ms, named as Linux's net.netfilter.nf_conntrack_* sysctls without the prefix,
 * with their defaults (nf_conntrack_proto_{tcp,udp,icmp,generic}.c).
 */
export const CtTimeouts = {
  tcp_timeout_syn_sent: 120 * SEC,
  tcp_timeout_syn_recv: 60 * SEC,
  tcp_timeout_established: 432_000 * SEC,
  tcp_timeout_fin_wait: 120 * SEC,
  tcp_timeout_close_wait: 60 * SEC,
  tcp_timeout_last_ack: 30 * SEC,
  tcp_timeout_time_wait: 120 * SEC,
  tcp_timeout_close: 10 * SEC,
  /** Named for completeness: without window tracking nothing is ever "unacknowledged". */
  tcp_timeout_unacknowledged: 300 * SEC,
  udp_timeout: 30 * SEC,
  udp_timeout_stream: 120 * SEC,
  icmp_timeout: 30 * SEC,
  generic_timeout: 600 * SEC,
} as const;
export type CtTimeouts = { [K in keyof typeof CtTimeouts]: number };

/** Linux's nf_conntrack_max on a machine with 4 GiB or more. */
export const CT_DEFAULT_MAX = 262_144;
/** Buckets early_drop looks at (NF_CT_EVICTION_RANGE). */
const EVICTION_RANGE = 8;
/** Random source ports tried after the original one clashes (nf_nat_l4proto_unique_tuple's max_attempts). */
const NAT_MAX_ATTEMPTS = 128;
const NAT_PORT_MIN = 1024;
const NAT_PORT_MAX = 65535;
const MIN_BUCKETS = 64;

// ---------------------------------------------------------------------------------------------
// The TCP state table: tcp_conntracks[2][6][TCP_CONNTRACK_MAX] of nf_conntrack_proto_tcp.c.

/** sIV: invalid transition; sIG: ignore (accept, state and timeout untouched). */
const sIV = 10;
const sIG = 11;
const { None: sNO, SynSent: sSS, SynRecv: sSR, Established: sES, FinWait: sFW, CloseWait: sCW, LastAck: sLA, TimeWait: sTW, Close: sCL, SynSent2: sS2 } =
  TcpState;

/** Flag classes (get_conntrack_index): RST wins, then SYN (with ACK: SYN/ACK), FIN, ACK, none. */
const TcpIndex = { Syn: 0, SynAck: 1, Fin: 2, Ack: 3, Rst: 4, None: 5 } as const;
type TcpIndex = (typeof TcpIndex)[keyof typeof TcpIndex];

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

function tcpIndex(flags: number): TcpIndex {
  if (flags & TCP_RST) return TcpIndex.Rst;
  if (flags & TCP_SYN) return flags & TCP_ACK ? TcpIndex.SynAck : TcpIndex.Syn;
  if (flags & TCP_FIN) return TcpIndex.Fin;
  if (flags & TCP_ACK) return TcpIndex.Ack;
  return TcpIndex.None;
}

// prettier-ignore
const TCP_CONNTRACKS: readonly (readonly (readonly number[])[])[] = [
  [
    /* ORIGINAL    sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
    /* syn    */ [ sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2 ],
    /* synack */ [ sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR ],
    /* fin    */ [ sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV ],
    /* ack    */ [ sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV ],
    /* rst    */ [ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL ],
    /* none   */ [ sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV ],
  ],
  [
    /* REPLY       sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
    /* syn    */ [ sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2 ],
    /* synack */ [ sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR ],
    /* fin    */ [ sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV ],
    /* ack    */ [ sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG ],
    /* rst    */ [ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL ],
    /* none   */ [ sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV ],
  ],
];

/** The next TCP state for a packet of `flags` in direction `dir`; sIV/sIG are returned as "invalid"/"ignore". */
export function tcpTransition(dir: CtDir, state: TcpState, flags: number): TcpState | "invalid" | "ignore" {
  const next = TCP_CONNTRACKS[dir]![tcpIndex(flags)]![state]!;
  if (next === sIV) return "invalid";
  if (next === sIG) return "ignore";
  return next as TcpState;
}

function tcpTimeout(t: CtTimeouts, s: TcpState): number {
  switch (s) {
    case sSS:
    case sS2: // tcp_timeouts[TCP_CONNTRACK_SYN_SENT2] = 2 MINS, no sysctl of its own
      return t.tcp_timeout_syn_sent;
    case sSR:
      return t.tcp_timeout_syn_recv;
    case sES:
      return t.tcp_timeout_established;
    case sFW:
      return t.tcp_timeout_fin_wait;
    case sCW:
      return t.tcp_timeout_close_wait;
    case sLA:
      return t.tcp_timeout_last_ack;
    case sTW:
      return t.tcp_timeout_time_wait;
    default:
      return t.tcp_timeout_close;
  }
}

// ---------------------------------------------------------------------------------------------
// Entries

/** One direction of an entry in a hash chain (nf_conntrack_tuple_hash). */
interface TupleNode {
  readonly entry: ConnEntry;
  readonly dir: CtDir;
  hash: number;
  next: TupleNode | undefined;
}

/** A tracked connection (struct nf_conn). */
export class ConnEntry {
  readonly id: number;
  /** [original, reply]. The reply tuple changes only by `bindNat`, before confirmation. */
  readonly tuple: [Tuple, Tuple];
  /** TCP state; TcpState.None for other protocols. */
  state: TcpState = TcpState.None;
  /** CtStatus bits. */
  status = 0;
  /** Absolute expiry time (ms); expired when now >= deadline (nf_ct_is_expired). */
  deadline: number;
  /** The connection mark (ct mark), copied by rules; conntrack itself never reads it. */
  mark = 0;
  /**
   * A traced connection's tracer: the first reply through this netns is traced too, so a trace
   * shows the reverse NAT of a Service's reply (set and read by the netns, never by conntrack).
   */
  tr: Packet["tr"] = undefined;
  /** Per direction [original, reply] (nf_conn_acct). */
  readonly packets: [number, number] = [0, 0];
  readonly bytes: [number, number] = [0, 0];
  /** @internal */
  readonly nodes: [TupleNode, TupleNode];
  /** @internal the table that made it: an entry carried into another netns is not confirmed there. */
  readonly owner: Conntrack;

  constructor(owner: Conntrack, id: number, orig: Tuple, deadline: number) {
    this.owner = owner;
    this.id = id;
    this.tuple = [orig, invert(orig)];
    this.deadline = deadline;
    this.nodes = [
      { entry: this, dir: CtDir.Original, hash: 0, next: undefined },
      { entry: this, dir: CtDir.Reply, hash: 0, next: undefined },
    ];
  }

  get proto(): number {
    return this.tuple[0].proto;
  }
  get seenReply(): boolean {
    return (this.status & CtStatus.SeenReply) !== 0;
  }
  get assured(): boolean {
    return (this.status & CtStatus.Assured) !== 0;
  }
  get confirmed(): boolean {
    return (this.status & CtStatus.Confirmed) !== 0;
  }
  get dnat(): boolean {
    return (this.status & CtStatus.DstNat) !== 0;
  }
  get snat(): boolean {
    return (this.status & CtStatus.SrcNat) !== 0;
  }
}

/** A packet conntrack handles: the parsed view plus the conntrack fields of the descriptor. */
export interface Trackable extends PacketView {
  ct: ConnEntry | undefined;
  ctDir: CtDir;
  ctState: CtState;
}

/** Compile-time proof that the datapath's descriptor is Trackable. */
type AssertTrackable<T extends Trackable> = T;
export type PacketIsTrackable = AssertTrackable<Packet>;

// ---------------------------------------------------------------------------------------------
// Verdicts and stats

export type CtInvalidReason =
  /** TCP packet that may not open a connection (RST, FIN, SYN/ACK, no flags) and has no entry. */
  | "tcp_new"
  /** TCP flags invalid in the entry's state (tcp_conntracks sIV). */
  | "tcp_state"
  /** ICMP that is neither echo request, a reply to a tracked echo, nor an error. */
  | "icmp_type"
  /** ICMP error quoting no tracked connection, or sent to the wrong address. */
  | "icmp_related"
  /** Headers too short for what they claim (an ICMP error's quote). */
  | "malformed";

export type CtVerdict = { readonly kind: "ok" } | { readonly kind: "invalid"; readonly reason: CtInvalidReason };

export const CT_OK: CtVerdict = { kind: "ok" };
const INVALID: { readonly [R in CtInvalidReason]: CtVerdict } = {
  tcp_new: { kind: "invalid", reason: "tcp_new" },
  tcp_state: { kind: "invalid", reason: "tcp_state" },
  icmp_type: { kind: "invalid", reason: "icmp_type" },
  icmp_related: { kind: "invalid", reason: "icmp_related" },
  malformed: { kind: "invalid", reason: "malformed" },
};

/** Linux's `conntrack -S` counters, the ones that apply here. */
export interface CtStats {
  /** Packets matched to a confirmed entry. */
  found: number;
  /** Unconfirmed entries created. */
  new: number;
  invalid: number;
  /** Entries confirmed into the table. */
  insert: number;
  /** Confirm refused: table full after early_drop, or a clash with another entry. */
  insertFailed: number;
  earlyDrop: number;
  expired: number;
  related: number;
  /** A second unconfirmed entry of the same connection merged into the confirmed one (nf_ct_resolve_clash). */
  clashResolved: number;
}

export interface ConntrackOptions {
  /** nf_conntrack_max. */
  max?: number;
  timeouts?: Partial<CtTimeouts>;
  /** The hash seed (Linux draws nf_conntrack_hash_rnd at boot); a parameter to stay deterministic. */
  hashSeed?: number;
}

export type CtLookup = { kind: "found"; entry: ConnEntry; dir: CtDir } | { kind: "none" };

// ---------------------------------------------------------------------------------------------
// Hashing: murmur3 (32-bit) over the 5-tuple, seeded.

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function hash5(seed: number, proto: number, src: number, dst: number, sport: number, dport: number): number {
  let h = mix(seed, proto);
  h = mix(h, src);
  h = mix(h, dst);
  h = mix(h, ((sport << 16) | dport) >>> 0);
  h ^= 16;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;
/** Lookups that accept either direction of an ICMP echo tuple. */
const ICMP_ANY = -2;

/** ICMP types that carry a quoted packet (icmp_is_err / nf_conntrack_icmpv4_error). */
function isIcmpError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

// ---------------------------------------------------------------------------------------------
// The table

export class Conntrack {
  readonly max: number;
  readonly timeouts: CtTimeouts;
  readonly stats: CtStats = {
    found: 0,
    new: 0,
    invalid: 0,
    insert: 0,
    insertFailed: 0,
    earlyDrop: 0,
    expired: 0,
    related: 0,
    clashResolved: 0,
  };
  private readonly seed: number;
  private readonly maxBuckets: number;
  private buckets: (TupleNode | undefined)[];
  private mask: number;
  private count = 0;
  private nextId = 1;
  /** Where `expire` resumes its sweep. */
  private gcCursor = 0;
  /**
   * Told of every confirmed entry that leaves the table (expiry, early drop, delete): Linux's
   * IPCT_DESTROY event, which IPVS-style connection accounting listens to.
   */
  onDestroy: ((e: ConnEntry) => void) | undefined;

  constructor(opts: ConntrackOptions = {}) {
    this.max = Math.max(1, opts.max ?? CT_DEFAULT_MAX);
    this.timeouts = { ...CtTimeouts, ...opts.timeouts };
    this.seed = (opts.hashSeed ?? 0x2c0ffee5) | 0;
    this.maxBuckets = nextPow2(this.max);
    const n = Math.min(this.maxBuckets, MIN_BUCKETS);
    this.buckets = new Array<TupleNode | undefined>(n).fill(undefined);
    this.mask = n - 1;
  }

  /** Confirmed entries in the table. */
  get size(): number {
    return this.count;
  }

  // --- the hooks -----------------------------------------------------------------------------

  /**
   * Conntrack at PREROUTING/OUTPUT (nf_conntrack_in): attaches the entry to the packet, with
   * its direction and state, creating an unconfirmed one for a new connection, and updates
   * the protocol state, counters and timeout.
   */
  in(pkt: Trackable, now: number): CtVerdict {
    pkt.ct = undefined;
    pkt.ctDir = CtDir.Original;
    const b = pkt.buf;
    const l3 = pkt.l3;
    // Non-first fragments carry no ports: Linux never sees them (nf_defrag_ipv4 reassembles).
    if ((readU16(b, l3 + 6) & 0x1fff) !== 0) {
      pkt.ctState = CtState.Untracked;
      return CT_OK;
    }
    const proto = pkt.proto;
    let icmpType = -1;
    if (proto === IpProtocol.ICMP) {
      icmpType = pkt.icmpType;
      if (isIcmpError(icmpType)) return this.related(pkt, now);
      if (icmpType !== ICMP_ECHO_REQUEST && icmpType !== ICMP_ECHO_REPLY) return this.invalid(pkt, "icmp_type");
    }
    let node = this.lookup(proto, pkt.src, pkt.dst, pkt.sport, pkt.dport, icmpType);
    if (node !== undefined && node.entry.deadline <= now) {
      this.remove(node.entry);
      this.stats.expired++;
      node = undefined;
    }
    if (node !== undefined) {
      const e = node.entry;
      const dir = node.dir;
      if (proto === IpProtocol.TCP) {
        const old = e.state as TcpState;
        const next = tcpTransition(dir, old, pkt.tcpFlags);
        if (next === "invalid") return this.invalid(pkt, "tcp_state");
        if (next === "ignore") return this.attach(pkt, e, dir);
        if (next === sSS && (old === sTW || old === sCL)) {
          // A SYN reopening a closed connection: kill it and start over (tcp_packet: nf_ct_kill, NF_REPEAT).
          this.remove(e);
          return this.create(pkt, now);
        }
        if ((e.status & CtStatus.SeenReply) === 0 && (pkt.tcpFlags & TCP_RST) !== 0) {
          // "If only reply is a RST, we can consider ourselves not to have an established
          // connection ... so we can delete the conntrack immediately." (tcp_packet)
          e.state = next;
          this.count_(e, dir, pkt.ipLen);
          this.remove(e);
          return this.attach(pkt, e, dir);
        }
        // ASSURED on a valid ACK in ESTABLISHED after SYN_RECV, or an answer to a picked-up connection.
        if ((e.status & CtStatus.SeenReply) !== 0 && (old === sSR || old === sES) && next === sES) {
          e.status |= CtStatus.Assured;
        }
        e.state = next;
        e.deadline = now + tcpTimeout(this.timeouts, next);
      } else if (proto === IpProtocol.UDP) {
        // udp_packet: traffic seen both ways is a stream, ASSURED, with the long timeout.
        if ((e.status & CtStatus.SeenReply) !== 0) {
          e.deadline = now + this.timeouts.udp_timeout_stream;
          e.status |= CtStatus.Assured;
        } else {
          e.deadline = now + this.timeouts.udp_timeout;
        }
      } else if (proto === IpProtocol.ICMP) {
        e.deadline = now + this.timeouts.icmp_timeout;
      } else {
        e.deadline = now + this.timeouts.generic_timeout;
      }
      this.count_(e, dir, pkt.ipLen);
      // SEEN_REPLY is set after the protocol handler, as nf_conntrack_in does.
      if (dir === CtDir.Reply) e.status |= CtStatus.SeenReply;
      this.stats.found++;
      return this.attach(pkt, e, dir);
    }
    return this.create(pkt, now);
  }

  /**
   * Inserts the packet's unconfirmed entry, both tuples (__nf_conntrack_confirm), at the end of
   * POSTROUTING/INPUT. "full": the table is at `max` and early_drop found nothing to evict;
   * "clash": another connection holds one of its tuples (both counted as insertFailed; the
   * caller drops the packet). The packet is left untracked in both cases.
   */
  confirm(pkt: Trackable, now: number): "ok" | "full" | "clash" {
    const e = pkt.ct;
    if (e === undefined || e.owner !== this || (e.status & (CtStatus.Confirmed | CtStatus.Dying)) !== 0) return "ok";
    const o = e.tuple[0];
    const r = e.tuple[1];
    const isIcmp = o.proto === IpProtocol.ICMP;
    for (let d = 0; d < 2; d++) {
      const t = d === 0 ? o : r;
      const hit = this.lookup(t.proto, t.src, t.dst, t.sport, t.dport, isIcmp ? (d === 0 ? ICMP_ECHO_REQUEST : ICMP_ECHO_REPLY) : -1);
      if (hit === undefined) continue;
      const other = hit.entry;
      if (other.deadline <= now) {
        this.remove(other);
        this.stats.expired++;
        continue;
      }
      // The same connection confirmed meanwhile with the same NAT binding: merge (nf_ct_resolve_clash).
      if (hit.dir === d && tupleEq(other.tuple[0], o) && tupleEq(other.tuple[1], r)) {
        other.packets[0] += e.packets[0];
        other.bytes[0] += e.bytes[0];
        pkt.ct = other;
        this.stats.clashResolved++;
        return "ok";
      }
      this.stats.insertFailed++;
      this.untrack(pkt);
      return "clash";
    }
    if (this.count >= this.max && !this.earlyDrop(hash5(this.seed, o.proto, o.src, o.dst, o.sport, o.dport), now)) {
      this.stats.insertFailed++;
      this.untrack(pkt);
      return "full";
    }
    this.insert(e);
    this.stats.insert++;
    return "ok";
  }

  /**
   * Binds NAT on an unconfirmed entry (nf_nat_setup_info). DNAT: the reply comes from
   * `addr:port`. SNAT: the reply goes to `addr:port`; `port` undefined keeps the original
   * source port. When that reply tuple is taken (nf_nat_used_tuple) the source port (ICMP: the
   * echo identifier) is redrawn at random in 1024-65535, up to 128 times; "exhausted" when none
   * is free (the caller drops). DNAT never moves ports: a clash shows at confirm, as in Linux.
   * Masquerade is SNAT to the address the caller resolves from the route. On a confirmed
   * entry it does nothing.
   */
  bindNat(entry: ConnEntry, kind: "dnat" | "snat", addr: number, port: number | undefined, rng: () => number): "ok" | "exhausted" {
    // A confirmed entry's binding is fixed (nf_nat_initialized): NAT rules that ran again for a
    // packet still in state NEW (a retransmitted SYN) change nothing.
    if ((entry.status & (CtStatus.Confirmed | CtStatus.Dying)) !== 0) return "ok";
    const r = entry.tuple[1];
    const hasPorts = r.proto === IpProtocol.TCP || r.proto === IpProtocol.UDP || r.proto === IpProtocol.ICMP;
    const isIcmp = r.proto === IpProtocol.ICMP;
    if (kind === "dnat") {
      r.src = addr >>> 0;
      if (port !== undefined && hasPorts && !isIcmp) r.sport = port;
      entry.status |= CtStatus.DstNat;
      return "ok";
    }
    r.dst = addr >>> 0;
    entry.status |= CtStatus.SrcNat;
    if (!hasPorts) return this.replyTaken(entry) ? "exhausted" : "ok";
    const first = port ?? r.dport;
    this.setReplyPort(r, first);
    if (!this.replyTaken(entry)) return "ok";
    for (let i = 0; i < NAT_MAX_ATTEMPTS; i++) {
      const p = NAT_PORT_MIN + Math.floor(rng() * (NAT_PORT_MAX - NAT_PORT_MIN + 1));
      this.setReplyPort(r, p);
      if (!this.replyTaken(entry)) return "ok";
    }
    this.setReplyPort(r, first);
    return "exhausted";
  }

  /**
   * Mangles the packet per its entry's NAT binding (nf_nat_packet/nf_nat_manip_pkt): at "dst"
   * hooks (PREROUTING, OUTPUT) the destination, at "src" hooks (POSTROUTING, INPUT) the source,
   * so that the packet's tuple becomes the inverse of the entry's other-direction tuple. IPv4,
   * TCP and UDP checksums are patched incrementally (RFC 1624 eqn. 3), the ICMP echo identifier
   * plays the port. RELATED ICMP errors get their outer addresses and the quoted packet
   * translated (nf_nat_icmp_reply_translation) and the ICMP checksum recomputed.
   */
  nat(pkt: Trackable, manip: "dst" | "src"): void {
    const e = pkt.ct;
    if (e === undefined) return;
    const d = pkt.ctDir;
    // nf_nat_packet: the reply direction undoes the other kind of NAT.
    let bit: number = manip === "dst" ? CtStatus.DstNat : CtStatus.SrcNat;
    if (d === CtDir.Reply) bit = bit === CtStatus.DstNat ? CtStatus.SrcNat : CtStatus.DstNat;
    if ((e.status & bit) === 0) return;
    const other = e.tuple[d ^ 1]!;
    const b = pkt.buf;
    const l3 = pkt.l3;
    const end = l3 + pkt.ipLen;
    if (pkt.ctState === CtState.Related) {
      this.natRelated(pkt, other, manip, end);
      return;
    }
    // The target is invert(other): its source is other's destination and vice versa.
    const addr = manip === "dst" ? other.src : other.dst;
    const port = manip === "dst" ? other.sport : other.dport;
    const withL4 = (readU16(b, l3 + 6) & 0x1fff) === 0;
    manipIpv4(b, l3, pkt.l4, pkt.proto, manip, addr, port, withL4, end);
    if (manip === "dst") pkt.dst = addr;
    else pkt.src = addr;
    if (!withL4) return;
    if (pkt.proto === IpProtocol.TCP || pkt.proto === IpProtocol.UDP) {
      if (manip === "dst") pkt.dport = port;
      else pkt.sport = port;
    } else if (pkt.proto === IpProtocol.ICMP) {
      pkt.sport = pkt.dport = port;
    }
  }

  // --- maintenance and tools -----------------------------------------------------------------

  /**
   * Removes expired entries, sweeping buckets from where the last call stopped and examining
   * at most `budget` entries (gc_worker's bounded scan); returns how many it removed.
   */
  expire(now: number, budget = 4096): number {
    let reaped = 0;
    let examined = 0;
    const n = this.buckets.length;
    for (let visited = 0; visited < n && examined < budget; visited++) {
      const i = this.gcCursor & this.mask;
      this.gcCursor = (i + 1) & this.mask;
      let node = this.buckets[i];
      while (node !== undefined) {
        const next = node.next;
        examined++;
        if (node.dir === CtDir.Original && node.entry.deadline <= now) {
          this.remove(node.entry);
          reaped++;
        }
        node = next;
      }
    }
    this.stats.expired += reaped;
    return reaped;
  }

  /** The entry holding tuple `t` in either direction (`conntrack -G`); expired ones are not found. */
  find(t: Tuple, now: number): CtLookup {
    const node = this.lookup(t.proto, t.src, t.dst, t.sport, t.dport, t.proto === IpProtocol.ICMP ? ICMP_ANY : -1);
    if (node === undefined || node.entry.deadline <= now) return { kind: "none" };
    return { kind: "found", entry: node.entry, dir: node.dir };
  }

  /** Removes an entry (`conntrack -D`; kube-proxy clears stale UDP entries so). */
  delete(entry: ConnEntry): boolean {
    if (entry.owner !== this || (entry.status & CtStatus.Confirmed) === 0 || (entry.status & CtStatus.Dying) !== 0) return false;
    this.remove(entry);
    return true;
  }

  /** Every confirmed entry, oldest first. */
  list(): ConnEntry[] {
    const out: ConnEntry[] = [];
    for (const head of this.buckets) {
      for (let n = head; n !== undefined; n = n.next) if (n.dir === CtDir.Original) out.push(n.entry);
    }
    return out.sort((a, b) => a.id - b.id);
  }

  // --- internals -----------------------------------------------------------------------------

  private attach(pkt: Trackable, e: ConnEntry, dir: CtDir): CtVerdict {
    pkt.ct = e;
    pkt.ctDir = dir;
    // ctinfo: the reply direction is ESTABLISHED; the original one only once a reply was seen.
    pkt.ctState = dir === CtDir.Reply || (e.status & CtStatus.SeenReply) !== 0 ? CtState.Established : CtState.New;
    return CT_OK;
  }

  private invalid(pkt: Trackable, reason: CtInvalidReason): CtVerdict {
    pkt.ct = undefined;
    pkt.ctState = CtState.Invalid;
    this.stats.invalid++;
    return INVALID[reason];
  }

  private untrack(pkt: Trackable): void {
    pkt.ct = undefined;
    pkt.ctState = CtState.Untracked;
  }

  private count_(e: ConnEntry, dir: CtDir, len: number): void {
    e.packets[dir]++;
    e.bytes[dir] += len;
  }

  /** A new connection (init_conntrack + the protocol's `new` check). */
  private create(pkt: Trackable, now: number): CtVerdict {
    const proto = pkt.proto;
    let state: TcpState = TcpState.None;
    let timeout: number;
    if (proto === IpProtocol.TCP) {
      // tcp_new: the state from sNO in the original direction; only SYN, or an ACK (loose pickup).
      const next = tcpTransition(CtDir.Original, TcpState.None, pkt.tcpFlags);
      if (typeof next !== "number") return this.invalid(pkt, "tcp_new");
      state = next;
      timeout = tcpTimeout(this.timeouts, next);
    } else if (proto === IpProtocol.UDP) {
      timeout = this.timeouts.udp_timeout;
    } else if (proto === IpProtocol.ICMP) {
      // icmp_new: only a request opens a connection; a stray echo reply is INVALID.
      if (pkt.icmpType !== ICMP_ECHO_REQUEST) return this.invalid(pkt, "icmp_type");
      timeout = this.timeouts.icmp_timeout;
    } else {
      timeout = this.timeouts.generic_timeout;
    }
    const e = new ConnEntry(this, this.nextId++, tupleOf(pkt), now + timeout);
    e.state = state;
    this.count_(e, CtDir.Original, pkt.ipLen);
    this.stats.new++;
    pkt.ct = e;
    pkt.ctDir = CtDir.Original;
    pkt.ctState = CtState.New;
    return CT_OK;
  }

  /**
   * An ICMP error: RELATED to the connection of the packet it quotes (nf_conntrack_inet_error):
   * the quoted tuple, inverted, must be tracked, and the error must go to the quoted packet's
   * sender as that entry sees it. Nothing is refreshed.
   */
  private related(pkt: Trackable, now: number): CtVerdict {
    const b = pkt.buf;
    const end = pkt.l3 + pkt.ipLen;
    const il3 = pkt.l4 + 8;
    if (il3 + 20 > end || b[il3]! >> 4 !== 4) return this.invalid(pkt, "malformed");
    const ihl = (b[il3]! & 0x0f) * 4;
    const il4 = il3 + ihl;
    if (ihl < 20 || il4 + 8 > end) return this.invalid(pkt, "malformed");
    if ((readU16(b, il3 + 6) & 0x1fff) !== 0) return this.invalid(pkt, "icmp_related");
    const proto = b[il3 + 9]!;
    const isrc = readU32(b, il3 + 12);
    const idst = readU32(b, il3 + 16);
    let sport = 0;
    let dport = 0;
    let type = -1;
    if (proto === IpProtocol.TCP || proto === IpProtocol.UDP) {
      sport = readU16(b, il4);
      dport = readU16(b, il4 + 2);
    } else if (proto === IpProtocol.ICMP) {
      const it = b[il4]!;
      // Only echo is tracked; an error about an error is never RELATED (RFC 1122 §3.2.2).
      if (it !== ICMP_ECHO_REQUEST && it !== ICMP_ECHO_REPLY) return this.invalid(pkt, "icmp_related");
      sport = dport = readU16(b, il4 + 4);
      type = it === ICMP_ECHO_REQUEST ? ICMP_ECHO_REPLY : ICMP_ECHO_REQUEST;
    }
    // The inverted quoted tuple: the direction an answer to the quoted packet would travel.
    const node = this.lookup(proto, idst, isrc, dport, sport, type);
    if (node === undefined || node.entry.deadline <= now) return this.invalid(pkt, "icmp_related");
    const e = node.entry;
    // "outer daddr mismatch": the error must go to whoever sent the quoted packet.
    if (e.tuple[node.dir].dst !== pkt.dst) return this.invalid(pkt, "icmp_related");
    pkt.ct = e;
    pkt.ctDir = node.dir;
    pkt.ctState = CtState.Related;
    this.stats.related++;
    return CT_OK;
  }

  /**
   * nf_nat_icmp_reply_translation: the quoted packet gets the opposite manip towards `other`
   * itself (it travelled the other way), the outer header the normal one towards
   * invert(other), addresses only; then the ICMP checksum is recomputed over the message.
   */
  private natRelated(pkt: Trackable, other: Tuple, manip: "dst" | "src", end: number): void {
    const b = pkt.buf;
    const icmp = pkt.l4;
    const il3 = icmp + 8;
    const il4 = il3 + (b[il3]! & 0x0f) * 4;
    const innerManip = manip === "dst" ? "src" : "dst";
    const iaddr = innerManip === "dst" ? other.dst : other.src;
    const iport = innerManip === "dst" ? other.dport : other.sport;
    manipIpv4(b, il3, il4, b[il3 + 9]!, innerManip, iaddr, iport, true, end);
    const addr = manip === "dst" ? other.src : other.dst;
    manipIpv4(b, pkt.l3, icmp, IpProtocol.ICMP, manip, addr, 0, false, end);
    if (manip === "dst") pkt.dst = addr;
    else pkt.src = addr;
    writeU16(b, icmp + 2, 0);
    writeU16(b, icmp + 2, internetChecksum(b, icmp, end - icmp));
  }

  private setReplyPort(r: Tuple, port: number): void {
    r.dport = port;
    if (r.proto === IpProtocol.ICMP) r.sport = port;
  }

  /** nf_nat_used_tuple: whether another entry holds the entry's reply tuple, either way round. */
  private replyTaken(e: ConnEntry): boolean {
    const r = e.tuple[1];
    const node = this.lookup(r.proto, r.src, r.dst, r.sport, r.dport, r.proto === IpProtocol.ICMP ? ICMP_ECHO_REPLY : -1);
    return node !== undefined && node.entry !== e;
  }

  /**
   * The node of the tuple, any direction. For ICMP the packet's type picks the direction: a
   * request matches only an original tuple, a reply only a reply tuple (Linux keeps the type in
   * the tuple); ICMP_ANY matches both.
   */
  private lookup(proto: number, src: number, dst: number, sport: number, dport: number, icmpType: number): TupleNode | undefined {
    const h = hash5(this.seed, proto, src, dst, sport, dport);
    for (let n = this.buckets[h & this.mask]; n !== undefined; n = n.next) {
      if (n.hash !== h) continue;
      const t = n.entry.tuple[n.dir];
      if (t.proto !== proto || t.src !== src || t.dst !== dst || t.sport !== sport || t.dport !== dport) continue;
      if (proto === IpProtocol.ICMP && icmpType !== ICMP_ANY) {
        if ((icmpType === ICMP_ECHO_REQUEST) !== (n.dir === CtDir.Original)) continue;
      }
      return n;
    }
    return undefined;
  }

  private insert(e: ConnEntry): void {
    for (let d = 0; d < 2; d++) {
      const t = e.tuple[d]!;
      const node = e.nodes[d]!;
      node.hash = hash5(this.seed, t.proto, t.src, t.dst, t.sport, t.dport);
      const i = node.hash & this.mask;
      node.next = this.buckets[i];
      this.buckets[i] = node;
    }
    e.status |= CtStatus.Confirmed;
    this.count++;
    if (this.count > this.buckets.length && this.buckets.length < this.maxBuckets) this.grow();
  }

  private unlink(node: TupleNode): void {
    const i = node.hash & this.mask;
    let n = this.buckets[i];
    if (n === node) {
      this.buckets[i] = node.next;
    } else {
      while (n !== undefined && n.next !== node) n = n.next;
      if (n !== undefined) n.next = node.next;
    }
    node.next = undefined;
  }

  private remove(e: ConnEntry): void {
    const confirmed = (e.status & CtStatus.Confirmed) !== 0 && (e.status & CtStatus.Dying) === 0;
    if (confirmed) {
      this.unlink(e.nodes[0]);
      this.unlink(e.nodes[1]);
      this.count--;
    }
    e.status |= CtStatus.Dying;
    if (confirmed) this.onDestroy?.(e);
  }

  private grow(): void {
    const old = this.buckets;
    const n = old.length * 2;
    this.buckets = new Array<TupleNode | undefined>(n).fill(undefined);
    this.mask = n - 1;
    for (const head of old) {
      for (let node = head; node !== undefined; ) {
        const next = node.next;
        const i = node.hash & this.mask;
        node.next = this.buckets[i];
        this.buckets[i] = node;
        node = next;
      }
    }
  }

  /**
   * early_drop: in the EVICTION_RANGE buckets from the new entry's hash, reap what expired and
   * evict every unassured entry of the first bucket holding one (early_drop_list).
   */
  private earlyDrop(hash: number, now: number): boolean {
    let freed = false;
    for (let k = 0; k < EVICTION_RANGE; k++) {
      let dropped = 0;
      for (let node = this.buckets[(hash + k) & this.mask]; node !== undefined; ) {
        const next = node.next;
        const e = node.entry;
        if (e.deadline <= now) {
          this.remove(e);
          this.stats.expired++;
          freed = true;
        } else if ((e.status & CtStatus.Assured) === 0) {
          this.remove(e);
          dropped++;
        }
        node = next;
      }
      if (dropped > 0) {
        this.stats.earlyDrop += dropped;
        return true;
      }
    }
    return freed;
  }
}

// ---------------------------------------------------------------------------------------------
// Packet mangling (nf_nat_proto.c)

/** RFC 1624 eqn. 3, one 16-bit word: HC' = ~(~HC + ~m + m'). */
function csumReplace16(hc: number, old: number, neu: number): number {
  let s = (~hc & 0xffff) + (~old & 0xffff) + neu;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** RFC 1624 eqn. 3 over both halves of a 32-bit field (inet_proto_csum_replace4). */
function csumReplace32(hc: number, old: number, neu: number): number {
  let s = (~hc & 0xffff) + (~(old >>> 16) & 0xffff) + (~old & 0xffff) + (neu >>> 16) + (neu & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/**
 * Rewrites the source or destination address (and port, when `withL4`) of the IPv4 packet at
 * `l3` (nf_nat_ipv4_manip_pkt + {tcp,udp,icmp}_manip_pkt). L4 checksums are patched only when
 * present within `end`: a UDP checksum of 0 means none and stays 0, a patched 0 becomes 0xffff
 * (RFC 768); a TCP header truncated in an ICMP quote keeps its checksum (tcp_manip_pkt).
 */
function manipIpv4(
  b: Uint8Array,
  l3: number,
  l4: number,
  proto: number,
  manip: "dst" | "src",
  addr: number,
  port: number,
  withL4: boolean,
  end: number,
): void {
  const aoff = l3 + (manip === "src" ? 12 : 16);
  const oldAddr = readU32(b, aoff);
  const tcpCsum = proto === IpProtocol.TCP && l4 + 18 <= end ? l4 + 16 : -1;
  const udpCsum = proto === IpProtocol.UDP && l4 + 8 <= end && readU16(b, l4 + 6) !== 0 ? l4 + 6 : -1;
  if (oldAddr !== addr) {
    writeU32(b, aoff, addr);
    writeU16(b, l3 + 10, csumReplace32(readU16(b, l3 + 10), oldAddr, addr));
    if (withL4) {
      // The pseudo-header carries the addresses (RFC 768, RFC 9293 §3.1).
      if (tcpCsum >= 0) writeU16(b, tcpCsum, csumReplace32(readU16(b, tcpCsum), oldAddr, addr));
      else if (udpCsum >= 0) writeU16(b, udpCsum, csumReplace32(readU16(b, udpCsum), oldAddr, addr) || 0xffff);
    }
  }
  if (!withL4) return;
  if (proto === IpProtocol.TCP || proto === IpProtocol.UDP) {
    const poff = l4 + (manip === "src" ? 0 : 2);
    if (poff + 2 > end) return;
    const oldPort = readU16(b, poff);
    if (oldPort === port) return;
    writeU16(b, poff, port);
    if (tcpCsum >= 0) writeU16(b, tcpCsum, csumReplace16(readU16(b, tcpCsum), oldPort, port));
    else if (udpCsum >= 0) writeU16(b, udpCsum, csumReplace16(readU16(b, udpCsum), oldPort, port) || 0xffff);
  } else if (proto === IpProtocol.ICMP) {
    // icmp_manip_pkt: the echo identifier, under the ICMP checksum (no pseudo-header).
    const t = b[l4]!;
    if ((t !== ICMP_ECHO_REQUEST && t !== ICMP_ECHO_REPLY) || l4 + 8 > end) return;
    const oldId = readU16(b, l4 + 4);
    if (oldId === port) return;
    writeU16(b, l4 + 4, port);
    writeU16(b, l4 + 2, csumReplace16(readU16(b, l4 + 2), oldId, port));
  }
}

// ---------------------------------------------------------------------------------------------
// conntrack -L

const PROTO_NAMES: Record<number, string> = { [IpProtocol.ICMP]: "icmp", [IpProtocol.TCP]: "tcp", [IpProtocol.UDP]: "udp" };

function formatTuple(t: Tuple, icmpType: number): string {
  const a = `src=${formatIpv4(t.src)} dst=${formatIpv4(t.dst)}`;
  if (t.proto === IpProtocol.ICMP) return `${a} type=${icmpType} code=0 id=${t.sport}`;
  if (t.proto === IpProtocol.TCP || t.proto === IpProtocol.UDP) return `${a} sport=${t.sport} dport=${t.dport}`;
  return a;
}

/**
 * One line of `conntrack -L` (libnetfilter_conntrack's default output): protocol name padded
 * to 8, number, seconds left, TCP state, original tuple, [UNREPLIED], reply tuple, [ASSURED],
 * mark, use.
 */
export function formatEntry(e: ConnEntry, now: number): string {
  const proto = e.proto;
  const parts: string[] = [`${(PROTO_NAMES[proto] ?? "unknown").padEnd(8)} ${proto} ${Math.max(0, Math.floor((e.deadline - now) / 1000))}`];
  if (proto === IpProtocol.TCP) parts.push(TCP_STATE_NAMES[e.state]);
  parts.push(formatTuple(e.tuple[0], ICMP_ECHO_REQUEST));
  if (!e.seenReply) parts.push("[UNREPLIED]");
  parts.push(formatTuple(e.tuple[1], ICMP_ECHO_REPLY));
  if (e.assured) parts.push("[ASSURED]");
  parts.push(`mark=${e.mark} use=1`);
  return parts.join(" ");
}
