/**
 * The control plane's periodic clean-up of the object store, what etcd leases and compaction do
 * for kube-apiserver: Events go once their TTL (--event-ttl, one hour by default) has passed
 * since they were last seen, and the delete markers of deleted keys (with the keys' earlier
 * revisions) are purged once older than a delay, so a busy cluster's bucket stays bounded.
 */
import type { Logger } from "../cluster/log.ts";
import { resourceByKind } from "../cluster/resources.ts";
import type { KubeObject } from "../cluster/store.ts";
import { ApiError } from "./api/status.ts";
import type { Registry } from "./api/registry.ts";

export interface HousekeepingOptions {
  eventTtlMs: number;
  tombstoneTtlMs: number;
  intervalMs: number;
}

/**
 * When an Event was last seen: lastTimestamp, else series.lastObservedTime, eventTime,
 * firstTimestamp, creationTimestamp (the first one that parses); undefined when none does.
 */
export function eventLastSeen(e: KubeObject): number | undefined {
  const ev = e as { lastTimestamp?: unknown; eventTime?: unknown; firstTimestamp?: unknown; series?: { lastObservedTime?: unknown } };
  for (const t of [ev.lastTimestamp, ev.series?.lastObservedTime, ev.eventTime, ev.firstTimestamp, e.metadata?.creationTimestamp]) {
    if (typeof t !== "string" || t === "") continue;
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) return ms;
  }
  return undefined;
}

/** The Events whose TTL has run out at `now` (last seen at least `ttlMs` earlier). */
export function expiredEvents(events: readonly KubeObject[], now: number, ttlMs: number): KubeObject[] {
  return events.filter((e) => {
    const seen = eventLastSeen(e);
    return seen !== undefined && now - seen >= ttlMs;
  });
}

export class Housekeeping {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly opts: HousekeepingOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.pass()
        .catch((err: unknown) => this.log.warn({ err: (err as Error)?.message ?? String(err) }, "housekeeping pass failed"))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.opts.intervalMs);
        });
    };
    this.timer = setTimeout(tick, this.opts.intervalMs);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass: expire Events, then purge old delete markers (including the expired Events'). */
  async pass(): Promise<{ events: number; tombstones: number }> {
    const r = resourceByKind("Event");
    const { items } = await this.registry.list(r, undefined);
    let events = 0;
    for (const e of expiredEvents(items, this.now(), this.opts.eventTtlMs)) {
      try {
        await this.registry.delete(r, e.metadata.namespace, e.metadata.name!, { preconditions: { resourceVersion: e.metadata.resourceVersion } });
        events++;
      } catch (err) {
        // Gone already, or updated since the list (seen again: not expired any more).
        if (!(err instanceof ApiError && (err.status.code === 404 || err.status.code === 409))) throw err;
      }
    }
    const tombstones = await this.registry.store.purgeTombstones(this.opts.tombstoneTtlMs, this.now());
    if (events > 0 || tombstones > 0) this.log.debug({ events, tombstones }, "housekeeping: expired events, purged delete markers");
    return { events, tombstones };
  }
}
