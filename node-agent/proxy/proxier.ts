/**
 * The kube-proxy sync loop of one node: changes from the tracker are compiled by the mode's
 * backend into rule sets that replace the node's kube-proxy rules whole, level-triggered.
 *
 * Design notes (pkg/proxy/iptables/proxier.go syncProxyRules, pkg/util/async/bounded_frequency_runner.go):
 * - Syncs are coalesced: a change asks for a sync; it runs at once while the token bucket of
 *   BoundedFrequencyRunner has a token (one per `minSyncMs`, burst 2: kube-proxy's burstSyncs),
 *   else when the next token comes, and at least every `maxSyncMs` regardless (--sync-period),
 *   which is then a full sync.
 * - A sync is partial (only the changed service ports recompiled) unless a full one is due:
 *   the first, the periodic one, and the one after a failure (needFullSync).
 * - After a sync, UDP conntrack entries DNATed to an endpoint that is no longer used are
 *   deleted (pkg/proxy/conntrack/cleanup.go CleanStaleEntries): without that, a UDP client
 *   sending to the ClusterIP keeps hitting the gone endpoint for as long as it keeps sending.
 * - Network programming latency (the SLI of the same name) is measured from an EndpointSlice's
 *   `endpoints.kubernetes.io/last-change-trigger-time` to the sync that installed it.
 * Time and scheduling come in as parameters; no I/O here.
 */
import { IpProtocol } from "../../overlay/wire/index.ts";
import type { Conntrack } from "../conntrack.ts";
import type { Netfilter } from "../netfilter.ts";
import type { ProxyBackend } from "./backend.ts";
import { categorize, type ChangeTracker, type ProxyState, type ServicePortInfo } from "./model.ts";

export const PROXY_OWNER = "kube-proxy";

export interface ProxierClock {
  /** Monotonic ms. */
  now(): number;
  /** Calls `fn` after `ms`; returns a cancel function. */
  after(ms: number, fn: () => void): () => void;
}

export interface ProxierOptions {
  backend: ProxyBackend;
  tracker: ChangeTracker;
  netfilter: Netfilter;
  conntrack: Conntrack;
  clock: ProxierClock;
  /** Wall-clock ms since the epoch (to compare with trigger-time annotations). */
  wallNow: () => number;
  /** kube-proxy's --iptables-min-sync-period (1 s; ipvs mode's default is 0). */
  minSyncMs?: number;
  /** Syncs allowed back to back before `minSyncMs` spacing applies (kube-proxy's burstSyncs = 2). */
  burst?: number;
  /** --sync-period (30 s). */
  maxSyncMs?: number;
  /** Told after each sync (the agent refreshes NodePort sockets and health servers from it). */
  onSynced?: (state: ProxyState) => void;
  onError?: (err: unknown) => void;
}

export interface ProxierStats {
  syncs: number;
  fullSyncs: number;
  partialSyncs: number;
  failures: number;
  /** Duration of the last sync (ms). */
  lastSyncMs: number;
  servicePorts: number;
  staleUdpEntriesDeleted: number;
}

/** Network programming latencies kept for the status verb (a ring: the newest win). */
const LATENCY_RING = 8192;

export class Proxier {
  readonly stats: ProxierStats = { syncs: 0, fullSyncs: 0, partialSyncs: 0, failures: 0, lastSyncMs: 0, servicePorts: 0, staleUdpEntriesDeleted: 0 };
  /** The state the installed rules were compiled from. */
  state: ProxyState = { servicePorts: [] };
  private readonly latencies: number[] = [];
  private latencyNext = 0;
  /** The token bucket: tokens as of `tokensAt`. */
  private tokens: number;
  private tokensAt = 0;
  private readonly burst: number;
  private cancelTimer: (() => void) | undefined;
  private timerAt = Infinity;
  private needFull = true;
  private stopped = false;
  private readonly minSyncMs: number;
  private readonly maxSyncMs: number;

  constructor(private readonly o: ProxierOptions) {
    this.minSyncMs = o.minSyncMs ?? 1000;
    this.burst = Math.max(1, o.burst ?? 2);
    this.tokens = this.burst;
    this.maxSyncMs = o.maxSyncMs ?? 30_000;
  }

  /** Something changed: sync now if allowed, else as soon as the minimum interval allows. */
  requestSync(): void {
    if (this.stopped) return;
    const now = this.o.clock.now();
    const tokens = this.refill(now);
    this.arm(tokens >= 1 ? now : now + (1 - tokens) * this.minSyncMs);
  }

  private arm(at: number): void {
    if (at >= this.timerAt) return;
    this.cancelTimer?.();
    this.timerAt = at;
    this.cancelTimer = this.o.clock.after(Math.max(0, at - this.o.clock.now()), () => {
      this.timerAt = Infinity;
      this.cancelTimer = undefined;
      this.sync();
    });
  }

  /** Runs one sync now (tests call it directly). */
  sync(): void {
    if (this.stopped) return;
    const start = this.o.clock.now();
    this.tokens = Math.max(0, this.refill(start) - 1);
    this.tokensAt = start;
    // The periodic full sync is due again `maxSyncMs` from now whatever happens.
    this.arm(start + this.maxSyncMs);
    const full = this.needFull || start - this.lastFull >= this.maxSyncMs;
    // After a failure (or at first) the tracker rebuilds every service port from the objects;
    // the periodic full sync only recompiles rules from the state it already holds.
    if (this.needFull) this.o.tracker.invalidate();
    const before = this.state;
    try {
      const { state, changed, removed } = this.o.tracker.take();
      const sets = this.o.backend.sync(state, full ? undefined : changed);
      this.o.netfilter.replace(PROXY_OWNER, sets);
      this.state = state;
      this.needFull = false;
      if (full) {
        this.lastFull = start;
        this.stats.fullSyncs++;
      } else this.stats.partialSyncs++;
      this.stats.syncs++;
      this.stats.servicePorts = state.servicePorts.length;
      this.stats.staleUdpEntriesDeleted += this.cleanStaleUdp(before, state, changed, removed);
      this.recordLatencies(state, changed);
      this.stats.lastSyncMs = this.o.clock.now() - start;
      this.o.onSynced?.(state);
    } catch (err) {
      // A failed sync leaves the old rules in place; the next one recompiles everything.
      this.stats.failures++;
      this.needFull = true;
      this.o.onError?.(err);
      this.arm(this.o.clock.now() + this.minSyncMs);
    }
  }
  private lastFull = -Infinity;

  /** Tokens at `now`: one more per `minSyncMs` since the last sync, up to the burst. */
  private refill(now: number): number {
    if (this.minSyncMs <= 0) return this.burst;
    return Math.min(this.burst, this.tokens + (now - this.tokensAt) / this.minSyncMs);
  }

  /** How many network programming latencies were ever recorded (the ring keeps the newest). */
  latencyTotal = 0;

  /** Network programming latencies (ms) seen so far, newest last, at most LATENCY_RING. */
  programmingLatencies(): number[] {
    if (this.latencies.length < LATENCY_RING) return [...this.latencies];
    return [...this.latencies.slice(this.latencyNext), ...this.latencies.slice(0, this.latencyNext)];
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer?.();
  }

  private recordLatencies(state: ProxyState, changed: ReadonlySet<string> | undefined): void {
    if (changed === undefined) return;
    const now = this.o.wallNow();
    const seen = new Set<string>();
    for (const id of changed) {
      const svc = id.split(":")[0]!;
      if (seen.has(svc)) continue;
      seen.add(svc);
      const trigger = this.o.tracker.triggerTime(svc);
      if (trigger === undefined) continue;
      const ms = Math.max(0, now - trigger);
      if (this.latencies.length < LATENCY_RING) this.latencies.push(ms);
      else this.latencies[this.latencyNext] = ms;
      this.latencyNext = (this.latencyNext + 1) % LATENCY_RING;
      this.latencyTotal++;
    }
    void state;
  }

  /**
   * Deletes UDP entries whose DNAT target is no longer an endpoint the service port uses
   * (cleanup.go filterForNAT), for the UDP service ports that changed or went. Returns how many.
   */
  private cleanStaleUdp(before: ProxyState, after: ProxyState, changed: ReadonlySet<string> | undefined, removed: readonly ServicePortInfo[]): number {
    const affected = new Map<number, Set<number>>();
    const key = (ip: number, port: number) => ip * 65536 + port;
    const oldById = new Map(before.servicePorts.map((p) => [p.id, p]));
    const consider = (oldPort: ServicePortInfo | undefined, newPort: ServicePortInfo | undefined) => {
      const p = newPort ?? oldPort;
      if (!p || p.protocol !== IpProtocol.UDP) return;
      const keep = new Set<number>();
      if (newPort) for (const e of categorize(newPort).allReachable) keep.add(e.ip);
      const destinations = [p.clusterIP, ...p.externalIPs, ...p.loadBalancerIPs].map((ip) => key(ip, p.port));
      for (const d of destinations) affected.set(d, keep);
      if (p.nodePort !== 0) affected.set(-p.nodePort, keep);
    };
    for (const p of after.servicePorts) if (changed === undefined || changed.has(p.id)) consider(oldById.get(p.id), p);
    for (const p of removed) consider(p, undefined);
    if (affected.size === 0) return 0;
    let deleted = 0;
    for (const e of this.o.conntrack.list()) {
      if (e.proto !== IpProtocol.UDP || !e.dnat) continue;
      const [orig, reply] = e.tuple;
      const keep = affected.get(key(orig.dst, orig.dport)) ?? affected.get(-orig.dport);
      if (keep === undefined || keep.has(reply.src)) continue;
      if (this.o.conntrack.delete(e)) deleted++;
    }
    return deleted;
  }
}
