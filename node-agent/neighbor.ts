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

export class NeighborTable<P> {
  private entries = new Map<string, Map<Ipv4Addr, Entry<P>>>();

  private devTable(dev: string): Map<Ipv4Addr, Entry<P>> {
    let t = this.entries.get(dev);
    if (!t) this.entries.set(dev, (t = new Map()));
    return t;
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
  enqueue(dev: string, ip: Ipv4Addr, packet: P, now: number): { solicit: boolean; dropped?: P } {
    const t = this.devTable(dev);
    const e = t.get(ip);
    if (!e || e.state !== "incomplete") {
      t.set(ip, { mac: 0, state: "incomplete", updatedAt: now, probes: 1, pending: [packet] });
      return { solicit: true };
    }
    e.pending.push(packet);
    return e.pending.length > MAX_PENDING ? { solicit: false, dropped: e.pending.shift() } : { solicit: false };
  }

  /** Learns ip -> mac (from an ARP reply or request) and hands back the packets that waited for it. */
  learn(dev: string, ip: Ipv4Addr, mac: MacAddr, now: number): P[] {
    const t = this.devTable(dev);
    const e = t.get(ip);
    if (e?.state === "permanent") return [];
    t.set(ip, { mac, state: "reachable", updatedAt: now, probes: 0, pending: [] });
    return e?.pending ?? [];
  }

  /** Only refreshes an entry that exists (RFC 826: merge, don't create, unless we are the target). */
  refresh(dev: string, ip: Ipv4Addr, mac: MacAddr, now: number): P[] {
    return this.entries.get(dev)?.has(ip) ? this.learn(dev, ip, mac, now) : [];
  }

  setPermanent(dev: string, ip: Ipv4Addr, mac: MacAddr): void {
    this.devTable(dev).set(ip, { mac, state: "permanent", updatedAt: 0, probes: 0, pending: [] });
  }

  /** Replaces all permanent entries of `dev` with `entries` (whole-state sync from the control plane). */
  syncPermanent(dev: string, entries: ReadonlyMap<Ipv4Addr, MacAddr>): void {
    const t = this.devTable(dev);
    for (const [ip, e] of t) if (e.state === "permanent" && !entries.has(ip)) t.delete(ip);
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
        if (e.state === "reachable" && now - e.updatedAt > NeighborTimeouts.reachableMs * 2) t.delete(ip);
        if (e.state !== "incomplete" || now - e.updatedAt < NeighborTimeouts.retransmitMs) continue;
        if (e.probes >= NeighborTimeouts.maxProbes) {
          t.delete(ip);
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
