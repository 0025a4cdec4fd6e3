/**
 * The neighbour (ARP) table of one netns: IPv4 -> MAC, with the states of Linux's neighbour
 * subsystem that matter here. Pure: `now` is a parameter; the owner sends the ARP requests
 * this table asks for and drops what it gives up on.
 */
import type { Ipv4Addr, MacAddr } from "../overlay/wire/common.ts";

export const NeighborTimeouts = {
  /** How long a learned entry is used without being refreshed (Linux base_reachable_time). */
  reachableMs: 30_000,
  /** Gap between ARP requests for an unresolved address. */
  retransmitMs: 1_000,
  /** Requests sent before giving up (Linux mcast_solicit). */
  maxProbes: 3,
} as const;

export type NeighborLookup = { kind: "found"; mac: MacAddr } | { kind: "incomplete" } | { kind: "none" };

interface Entry<P> {
  mac: MacAddr;
  state: "reachable" | "permanent" | "incomplete";
  updatedAt: number;
  probes: number;
  /** Packets waiting for resolution (Linux keeps a few: unres_qlen). */
  pending: P[];
}

export const MAX_PENDING = 16;

export type EnqueueResult<P> = { kind: "queued"; solicit: boolean; dropped?: P } | { kind: "full" };
export type LearnResult<P> = { kind: "learned"; pending: P[] } | { kind: "full" };

export class NeighborTable<P> {
  private entries = new Map<string, Map<Ipv4Addr, Entry<P>>>();
  private count = 0;

  /** `max` bounds the entries over all devices (Linux gc_thresh3; permanent entries count too). */
  constructor(private readonly max = 1024) {}

  get size(): number {
    return this.count;
  }

  /**
   * Makes room for one more entry as Linux's neigh_forced_gc does: drop stale and failed
   * entries; false when every entry is still in use.
   */
  private room(now: number): boolean {
    if (this.count < this.max) return true;
    for (const t of this.entries.values()) {
      for (const [ip, e] of t) {
        if (e.state === "reachable" && now - e.updatedAt > NeighborTimeouts.reachableMs) {
          t.delete(ip);
          this.count--;
        }
      }
    }
    return this.count < this.max;
  }

  private set(t: Map<Ipv4Addr, Entry<P>>, ip: Ipv4Addr, e: Entry<P>): void {
    if (!t.has(ip)) this.count++;
    t.set(ip, e);
  }

  private remove(t: Map<Ipv4Addr, Entry<P>>, ip: Ipv4Addr): void {
    if (t.delete(ip)) this.count--;
  }

  private devTable(dev: string): Map<Ipv4Addr, Entry<P>> {
    let t = this.entries.get(dev);
    if (!t) this.entries.set(dev, (t = new Map()));
    return t;
  }

  /** The per-packet form of `lookup`: the MAC when found, else -1 (no result object). */
  macOf(dev: string, ip: Ipv4Addr, now: number): MacAddr | -1 {
    const e = this.entries.get(dev)?.get(ip);
    if (e === undefined || e.state === "incomplete") return -1;
    if (e.state === "reachable" && now - e.updatedAt > NeighborTimeouts.reachableMs) return -1;
    return e.mac;
  }

  lookup(dev: string, ip: Ipv4Addr, now: number): NeighborLookup {
    const e = this.entries.get(dev)?.get(ip);
    if (!e) return { kind: "none" };
    if (e.state === "incomplete") return { kind: "incomplete" };
    if (e.state === "reachable" && now - e.updatedAt > NeighborTimeouts.reachableMs) return { kind: "none" };
    return { kind: "found", mac: e.mac };
  }

  /**
   * Queues `packet` for `ip` and says whether the caller must send an ARP request now (true on
   * the first miss). A full queue drops the oldest packet, which is returned.
   */
  enqueue(dev: string, ip: Ipv4Addr, packet: P, now: number): EnqueueResult<P> {
    const t = this.devTable(dev);
    const e = t.get(ip);
    if (!e || e.state !== "incomplete") {
      if (!e && !this.room(now)) return { kind: "full" };
      this.set(t, ip, { mac: 0, state: "incomplete", updatedAt: now, probes: 1, pending: [packet] });
      return { kind: "queued", solicit: true };
    }
    e.pending.push(packet);
    return e.pending.length > MAX_PENDING ? { kind: "queued", solicit: false, dropped: e.pending.shift() } : { kind: "queued", solicit: false };
  }

  /** Learns ip -> mac (from an ARP reply or request) and hands back the packets that waited for it. */
  learn(dev: string, ip: Ipv4Addr, mac: MacAddr, now: number): LearnResult<P> {
    const t = this.devTable(dev);
    const e = t.get(ip);
    if (e?.state === "permanent") return { kind: "learned", pending: [] };
    if (!e && !this.room(now)) return { kind: "full" };
    this.set(t, ip, { mac, state: "reachable", updatedAt: now, probes: 0, pending: [] });
    return { kind: "learned", pending: e?.pending ?? [] };
  }

  /** Only refreshes an entry that exists (RFC 826: merge, don't create, unless we are the target). */
  refresh(dev: string, ip: Ipv4Addr, mac: MacAddr, now: number): P[] {
    if (!this.entries.get(dev)?.has(ip)) return [];
    const r = this.learn(dev, ip, mac, now);
    return r.kind === "learned" ? r.pending : [];
  }

  /** Programmed entries are never refused: the control plane's routes depend on them. */
  setPermanent(dev: string, ip: Ipv4Addr, mac: MacAddr): void {
    this.set(this.devTable(dev), ip, { mac, state: "permanent", updatedAt: 0, probes: 0, pending: [] });
  }

  /** Replaces all permanent entries of `dev` with `entries` (whole-state sync from the control plane). */
  syncPermanent(dev: string, entries: ReadonlyMap<Ipv4Addr, MacAddr>): void {
    const t = this.devTable(dev);
    for (const [ip, e] of t) if (e.state === "permanent" && !entries.has(ip)) this.remove(t, ip);
    for (const [ip, mac] of entries) this.setPermanent(dev, ip, mac);
  }

  /**
   * Ages the table: returns the addresses to probe again, and the packets of those that gave up
   * (the caller answers them with ICMP host unreachable).
   */
  tick(now: number): { resolicit: Array<{ dev: string; ip: Ipv4Addr }>; failed: Array<{ dev: string; ip: Ipv4Addr; packets: P[] }> } {
    const resolicit: Array<{ dev: string; ip: Ipv4Addr }> = [];
    const failed: Array<{ dev: string; ip: Ipv4Addr; packets: P[] }> = [];
    for (const [dev, t] of this.entries) {
      for (const [ip, e] of t) {
        if (e.state === "reachable" && now - e.updatedAt > NeighborTimeouts.reachableMs * 2) this.remove(t, ip);
        if (e.state !== "incomplete" || now - e.updatedAt < NeighborTimeouts.retransmitMs) continue;
        if (e.probes >= NeighborTimeouts.maxProbes) {
          this.remove(t, ip);
          failed.push({ dev, ip, packets: e.pending });
        } else {
          e.probes++;
          e.updatedAt = now;
          resolicit.push({ dev, ip });
        }
      }
    }
    return { resolicit, failed };
  }

  entriesOf(dev: string): Array<{ ip: Ipv4Addr; mac: MacAddr; state: string }> {
    return [...(this.entries.get(dev) ?? new Map<Ipv4Addr, Entry<P>>())].map(([ip, e]) => ({ ip, mac: e.mac, state: e.state }));
  }
}
