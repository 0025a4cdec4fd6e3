/**
 * A shared informer (client-go tools/cache, reduced): lists a resource, then watches from the
 * list's resourceVersion, keeping a cache of every object; on any watch failure (410 Gone after
 * a compaction, a NATS hiccup, a control-plane restart) it relists and watches again, and it
 * reports objects that vanished meanwhile as deletions. resync() re-delivers the whole cache
 * (the informer's resync period), so a level-triggered handler converges even on a missed event.
 *
 * Objects without the basic shape (shapeProblem in ./decode.ts) are logged and skipped: an
 * ObjectStore never hands them out, but a ListerWatcher over an API client might. A listener that
 * throws is logged and the others still run; a watch that ends is relisted after a backoff when
 * it ended quickly, so a watch failing at once does not spin.
 *
 * It depends only on a ListerWatcher, so the control plane runs it over its registry and a
 * node-agent (kube-proxy, a NetworkPolicy engine) can run it over an API client.
 */
import type { Clock } from "./clock.ts";
import { shapeProblem } from "./decode.ts";
import type { Logger } from "./log.ts";
import type { ResourceInfo } from "./resources.ts";
import type { KubeObject, WatchEvent, WatchEventType, WatchHandle } from "./store.ts";

/** cache.ListerWatcher: a list with its resourceVersion, and a watch from one. */
export interface ListerWatcher {
  list(r: ResourceInfo, namespace: undefined): Promise<{ items: KubeObject[]; resourceVersion: string }>;
  watch(r: ResourceInfo, namespace: undefined, resourceVersion: string, opts: Record<string, never>, onEvent: (e: WatchEvent) => void): Promise<WatchHandle>;
}

/** A watch event type, or SYNC for an object re-delivered by a relist or a resync. */
export type InformerEventType = WatchEventType | "SYNC";
export type InformerListener = (obj: KubeObject, type: InformerEventType) => void;

/** cache.MetaNamespaceKeyFunc: "namespace/name", or "name" for a cluster-scoped object. */
export function cacheKey(o: KubeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name!;
}

export class Informer {
  readonly cache = new Map<string, KubeObject>();
  private handle: WatchHandle | undefined;
  private stopped = false;
  private readonly listeners = new Set<InformerListener>();
  synced = false;
  /** Objects skipped because they lacked the basic shape. */
  skipped = 0;
  /** Watches that ended soon after they started, in a row (the relist backoff). */
  private quickEnds = 0;

  constructor(
    readonly resource: ResourceInfo,
    private readonly source: ListerWatcher,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  onChange(listener: InformerListener): void {
    this.listeners.add(listener);
  }

  list(): KubeObject[] {
    return [...this.cache.values()];
  }

  /** Lists and starts watching; retries with capped backoff until it succeeds or stop(). */
  async start(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const { items, resourceVersion } = await this.source.list(this.resource, undefined);
        const fresh = new Map(items.filter((o) => this.wellFormed(o)).map((o) => [cacheKey(o), o]));
        // Objects that vanished while we were not watching are deletions too.
        for (const [key, old] of this.cache) if (!fresh.has(key)) this.emit(old, "DELETED");
        this.cache.clear();
        for (const [key, o] of fresh) {
          this.cache.set(key, o);
          this.emit(o, "SYNC");
        }
        this.synced = true;
        this.handle = await this.source.watch(this.resource, undefined, resourceVersion, {}, (e) => {
          if (!this.wellFormed(e.object)) return;
          const key = cacheKey(e.object);
          if (e.type === "DELETED") this.cache.delete(key);
          else this.cache.set(key, e.object);
          this.emit(e.object, e.type);
        });
        const startedMs = this.clock.monotonicMs();
        void this.handle.done.then(() => {
          if (this.stopped) return;
          this.quickEnds = this.clock.monotonicMs() - startedMs < 5000 ? this.quickEnds + 1 : 0;
          const delay = this.quickEnds === 0 ? 0 : Math.min(5000, 100 * 2 ** Math.min(this.quickEnds, 6));
          if (delay === 0) void this.restart();
          else this.clock.after(delay, () => void this.restart());
        });
        return;
      } catch (err) {
        this.log.warn({ resource: this.resource.plural, err: (err as Error).message, attempt }, "informer list/watch failed; retrying");
        await new Promise<void>((r) => this.clock.after(Math.min(2000, 100 * 2 ** attempt), r));
      }
    }
  }

  /** Re-delivers every cached object as SYNC (client-go's resync). */
  resync(): void {
    for (const o of this.cache.values()) this.emit(o, "SYNC");
  }

  private async restart(): Promise<void> {
    if (this.stopped) return;
    this.log.info({ resource: this.resource.plural }, "watch ended; relisting");
    await this.start();
  }

  private wellFormed(o: KubeObject): boolean {
    const problem = shapeProblem(o, this.resource);
    if (problem === undefined) return true;
    this.skipped++;
    const meta = (o as { metadata?: { namespace?: unknown; name?: unknown } } | null)?.metadata;
    this.log.error({ resource: this.resource.plural, namespace: meta?.namespace, name: meta?.name, reason: problem, skipped: this.skipped }, "informer: bad object skipped");
    return false;
  }

  private emit(obj: KubeObject, type: InformerEventType): void {
    for (const l of this.listeners) {
      try {
        l(obj, type);
      } catch (err) {
        this.log.error({ resource: this.resource.plural, key: cacheKey(obj), type, err: (err as Error)?.message ?? String(err) }, "informer listener failed on an object");
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.handle?.stop();
  }
}
