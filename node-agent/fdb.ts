/**
 * A learning bridge's forwarding database (Linux `bridge fdb`): MAC -> port, learned from
 * source addresses, aged out after 300 s (the 802.1D default). Pure: `now` is a parameter.
 */
import type { MacAddr } from "../overlay/wire/common.ts";

export const FDB_AGEING_MS = 300_000;

export type FdbLookup<Port> = { kind: "found"; port: Port } | { kind: "unknown" };

export class Fdb<Port> {
  private entries = new Map<MacAddr, { port: Port; seen: number }>();

  learn(mac: MacAddr, port: Port, now: number): void {
    const e = this.entries.get(mac);
    if (e) {
      e.port = port;
      e.seen = now;
    } else {
      this.entries.set(mac, { port, seen: now });
    }
  }

  lookup(mac: MacAddr, now: number): FdbLookup<Port> {
    const e = this.entries.get(mac);
    if (!e || now - e.seen > FDB_AGEING_MS) return { kind: "unknown" };
    return { kind: "found", port: e.port };
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
