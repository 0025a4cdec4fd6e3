/**
 * A learning bridge's forwarding database (Linux `bridge fdb`): MAC -> port, learned from
 * source addresses, aged out after 300 s (the 802.1D default). Pure: `now` is a parameter.
 */
import type { MacAddr } from "../overlay/wire/common.ts";

export const FDB_AGEING_MS = 300_000;

export type FdbLookup<Port> = { kind: "found"; port: Port } | { kind: "unknown" };

/** Linux bridges have no default limit (br_fdb max_learned came in 6.x); kubewire keeps one so a MAC flood costs counted misses, not memory. */
export const FDB_MAX_DEFAULT = 4096;

export class Fdb<Port> {
  private entries = new Map<MacAddr, { port: Port; seen: number }>();

  constructor(private readonly max = FDB_MAX_DEFAULT) {}

  /** Learns mac -> port; "full" when the table is at its bound and the MAC is new (not learned: frames to it flood). */
  learn(mac: MacAddr, port: Port, now: number): "learned" | "full" {
    const e = this.entries.get(mac);
    if (e) {
      e.port = port;
      e.seen = now;
      return "learned";
    }
    if (this.entries.size >= this.max) {
      this.age(now);
      if (this.entries.size >= this.max) return "full";
    }
    this.entries.set(mac, { port, seen: now });
    return "learned";
  }

  get size(): number {
    return this.entries.size;
  }

  lookup(mac: MacAddr, now: number): FdbLookup<Port> {
    const port = this.portOf(mac, now);
    return port === undefined ? { kind: "unknown" } : { kind: "found", port };
  }

  /** The per-frame form of `lookup`: the port, or undefined when unknown (no result object). */
  portOf(mac: MacAddr, now: number): Port | undefined {
    const e = this.entries.get(mac);
    return e === undefined || now - e.seen > FDB_AGEING_MS ? undefined : e.port;
  }

  /** A port that goes away takes its entries with it. */
  forgetPort(port: Port): void {
    for (const [mac, e] of this.entries) if (e.port === port) this.entries.delete(mac);
  }

  age(now: number): void {
    for (const [mac, e] of this.entries) if (now - e.seen > FDB_AGEING_MS) this.entries.delete(mac);
  }

  list(): Array<{ mac: MacAddr; port: Port; seen: number }> {
    return [...this.entries].map(([mac, e]) => ({ mac, ...e }));
  }
}
