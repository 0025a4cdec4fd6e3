/**
 * Flow records, Hubble-like: what happened to packets at the pods' veths (to-endpoint: handed to
 * a pod; from-endpoint: sent by a pod) and at every drop in the node (with its reason from the
 * closed list and, for a rule's drop, the rule). Kept in a bounded ring, as Hubble's observer
 * ring buffer (--hubble-event-buffer-capacity): when full the oldest record goes and is counted.
 *
 * Per packet the cost is a few typed-array stores, no allocation: the record's numbers live in
 * parallel typed arrays and only a drop's strings (where, detail) in plain arrays. Records are
 * turned into objects only when read (`query`).
 */
import { DROP_REASONS, type DropReason } from "./netfilter.ts";

export const Observation = { ToEndpoint: 0, FromEndpoint: 1, Drop: 2 } as const;
export type Observation = (typeof Observation)[keyof typeof Observation];
export const OBSERVATION_NAMES = ["to-endpoint", "from-endpoint", "drop"] as const;
export type ObservationName = (typeof OBSERVATION_NAMES)[number];

/** What `record` reads: the packet descriptor's parsed fields (a Packet is one). */
export interface FlowFields {
  readonly src: number;
  readonly dst: number;
  readonly sport: number;
  readonly dport: number;
  readonly proto: number;
  /** TCP flags byte (0 for other protocols). */
  readonly tcpFlags: number;
}

export interface FlowRecord {
  /** Wall-clock milliseconds. */
  time: number;
  node: string;
  verdict: "FORWARDED" | "DROPPED";
  observation: ObservationName;
  /** The device or place (host veth name for endpoint observations). */
  where: string;
  src: number;
  dst: number;
  sport: number;
  dport: number;
  proto: number;
  tcpFlags: number;
  isReply: boolean;
  reason?: DropReason;
  /** For a drop: what decided it (the rule, "default deny: selected by ..."). */
  detail?: string;
}

export interface FlowFilter {
  /** Only records at or after this wall-clock time (ms). */
  since?: number;
  verdict?: "FORWARDED" | "DROPPED";
  reason?: string;
  /** Either end's port. */
  port?: number;
  /** Either end's address, one of these. */
  ips?: ReadonlySet<number>;
  /** Only these observations (hubble observe --type). */
  observations?: readonly ObservationName[];
  /** Only the reply direction (true) or only the original direction (false) of connections. */
  reply?: boolean;
  limit?: number;
}

export const DEFAULT_FLOW_CAPACITY = 65_536;

export class FlowLog {
  private readonly time: Float64Array;
  private readonly src: Uint32Array;
  private readonly dst: Uint32Array;
  private readonly ports: Uint16Array;
  private readonly proto: Uint8Array;
  private readonly flags: Uint8Array;
  /** observation (2 bits) | dropped (bit 2) | reply (bit 3) | reason index << 4. */
  private readonly meta: Uint16Array;
  private readonly where: string[];
  private readonly detail: Array<string | undefined>;
  /** Records written in total; the ring holds the last `capacity`. */
  private written = 0;

  constructor(
    readonly capacity: number,
    private readonly nodeName: string,
    private readonly wallNow: () => number = Date.now,
  ) {
    this.time = new Float64Array(capacity);
    this.src = new Uint32Array(capacity);
    this.dst = new Uint32Array(capacity);
    this.ports = new Uint16Array(capacity * 2);
    this.proto = new Uint8Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.meta = new Uint16Array(capacity);
    this.where = new Array<string>(capacity).fill("");
    this.detail = new Array<string | undefined>(capacity).fill(undefined);
  }

  /** Records overwritten before anyone read them, in the ring's sense: every one past capacity. */
  get evicted(): number {
    return Math.max(0, this.written - this.capacity);
  }

  get total(): number {
    return this.written;
  }

  /** `isReply`: the packet belongs to the reply direction of its connection (conntrack). */
  record(obs: Observation, where: string, f: FlowFields, isReply: boolean, reason?: DropReason, detail?: string): void {
    const i = this.written % this.capacity;
    this.written++;
    this.time[i] = this.wallNow();
    this.src[i] = f.src;
    this.dst[i] = f.dst;
    this.ports[i * 2] = f.sport;
    this.ports[i * 2 + 1] = f.dport;
    this.proto[i] = f.proto;
    this.flags[i] = f.tcpFlags;
    const r = reason !== undefined ? DROP_REASONS.indexOf(reason) : 0;
    this.meta[i] = obs | (reason !== undefined ? 4 : 0) | (isReply ? 8 : 0) | (r << 4);
    this.where[i] = where;
    this.detail[i] = detail;
  }

  /** The records matching `filter`, oldest first (the newest `limit` when limited). */
  query(filter: FlowFilter = {}): FlowRecord[] {
    const out: FlowRecord[] = [];
    const n = Math.min(this.written, this.capacity);
    const first = this.written - n;
    for (let k = first; k < this.written; k++) {
      const i = k % this.capacity;
      const m = this.meta[i]!;
      const dropped = (m & 4) !== 0;
      if (filter.since !== undefined && this.time[i]! < filter.since) continue;
      if (filter.verdict !== undefined && filter.verdict !== (dropped ? "DROPPED" : "FORWARDED")) continue;
      const reason = dropped ? DROP_REASONS[m >> 4] : undefined;
      if (filter.reason !== undefined && reason !== filter.reason) continue;
      const sport = this.ports[i * 2]!;
      const dport = this.ports[i * 2 + 1]!;
      if (filter.port !== undefined && sport !== filter.port && dport !== filter.port) continue;
      if (filter.ips !== undefined && !filter.ips.has(this.src[i]!) && !filter.ips.has(this.dst[i]!)) continue;
      if (filter.observations !== undefined && !filter.observations.includes(OBSERVATION_NAMES[m & 3]!)) continue;
      if (filter.reply !== undefined && filter.reply !== ((m & 8) !== 0)) continue;
      const rec: FlowRecord = {
        time: this.time[i]!,
        node: this.nodeName,
        verdict: dropped ? "DROPPED" : "FORWARDED",
        observation: OBSERVATION_NAMES[m & 3]!,
        where: this.where[i]!,
        src: this.src[i]!,
        dst: this.dst[i]!,
        sport,
        dport,
        proto: this.proto[i]!,
        tcpFlags: this.flags[i]!,
        isReply: (m & 8) !== 0,
      };
      if (reason !== undefined) rec.reason = reason;
      const detail = this.detail[i];
      if (detail !== undefined) rec.detail = detail;
      out.push(rec);
    }
    return filter.limit !== undefined && out.length > filter.limit ? out.slice(out.length - filter.limit) : out;
  }
}
