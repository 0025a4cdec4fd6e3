/**
 * A shared informer (client-go's, reduced): lists a resource, then watches from the list's
 * resourceVersion, keeping a cache of every object; on any watch failure (410 Gone after a
 * compaction, a NATS hiccup, a control-plane restart) it relists and watches again. Handlers
 * get only "something changed" — controllers read the cache and reconcile the whole state.
 */
import type { Logger } from "../../api/log.ts";
import type { Registry } from "../api/registry.ts";
import type { ResourceInfo } from "../../api/resources.ts";
import type { KubeObject, WatchHandle } from "../../api/store.ts";

export function cacheKey(o: KubeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name!;
}

export class Informer {
  readonly cache = new Map<string, KubeObject>();
  private handle: WatchHandle | undefined;
  private stopped = false;
  private readonly listeners = new Set<(obj: KubeObject, type: string) => void>();
  synced = false;

  constructor(
    readonly resource: ResourceInfo,
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {}

  onChange(listener: (obj: KubeObject, type: string) => void): void {
    this.listeners.add(listener);
  }

  list(): KubeObject[] {
    return [...this.cache.values()];
  }

  async start(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const { items, resourceVersion } = await this.registry.list(this.resource, undefined);
        const fresh = new Map(items.map((o) => [cacheKey(o), o]));
        // Objects that vanished while we were not watching are deletions too.
        for (const [key, old] of this.cache) if (!fresh.has(key)) this.emit(old, "DELETED");
        this.cache.clear();
        for (const [key, o] of fresh) {
          this.cache.set(key, o);
          this.emit(o, "SYNC");
        }
        this.synced = true;
        this.handle = await this.registry.watch(this.resource, undefined, resourceVersion, {}, (e) => {
          const key = cacheKey(e.object);
          if (e.type === "DELETED") this.cache.delete(key);
          else this.cache.set(key, e.object);
          this.emit(e.object, e.type);
        });
        void this.handle.done.then(() => {
          if (!this.stopped) void this.restart();
        });
        return;
      } catch (err) {
        this.log.warn({ resource: this.resource.plural, err: (err as Error).message, attempt }, "informer list/watch failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
      }
    }
  }

  private async restart(): Promise<void> {
    this.log.info({ resource: this.resource.plural }, "watch ended; relisting");
    await this.start();
  }

  private emit(obj: KubeObject, type: string): void {
    for (const l of this.listeners) l(obj, type);
  }

  stop(): void {
    this.stopped = true;
    this.handle?.stop();
  }
}

/**
 * Runs `sync` whenever kicked, never twice at once: kicks during a run coalesce into one more
 * run after it (the bounded-frequency runner of kube-proxy, without the bounds' timers).
 */
export class SyncLoop {
  private running = false;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly name: string,
    private readonly sync: () => Promise<void>,
    private readonly log: Logger,
    resyncMs: number,
  ) {
    this.timer = setInterval(() => this.kick(), resyncMs);
  }

  kick(): void {
    if (this.running) {
      this.dirty = true;
      return;
    }
    this.running = true;
    void (async () => {
      do {
        this.dirty = false;
        try {
          await this.sync();
        } catch (err) {
          // Transient (a conflict, the store briefly away): the next kick or resync retries.
          this.log.warn({ controller: this.name, err: (err as Error).message }, "sync failed; will retry");
        }
      } while (this.dirty);
      this.running = false;
    })();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
