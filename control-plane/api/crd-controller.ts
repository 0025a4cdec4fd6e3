/**
 * The CRD controller: apiextensions-apiserver's naming, establishing and finalizer controllers and
 * its handler's set of served kinds, in one level-triggered loop (crds.ts holds the logic).
 *
 * It lists the stored CustomResourceDefinitions, then watches them; on every change it plans the
 * whole desired state from all of them (planCustomResources) and
 * - installs the served kinds at once (cluster/resources.ts setCustomResources): routes,
 *   discovery, OpenAPI, validation and printing all read that one set;
 * - writes each CRD's status where it differs (acceptedNames, NamesAccepted, Established,
 *   storedVersions);
 * - for a CRD being deleted (Terminating, with the customresourcecleanup finalizer), deletes its
 *   instances and then removes it.
 * A restarted control plane rebuilds the same set from the store before it serves; a watch that
 * ends is followed by a fresh list. A stored CRD that does not decode (the store skips it) or does
 * not validate is logged, counted and skipped, never fatal.
 */
import type { Clock } from "../../cluster/clock.ts";
import { deepEqual, rfc3339 } from "../../cluster/meta.ts";
import type { Logger } from "../../cluster/log.ts";
import { customResourceKinds, resourceByKind, setCustomResources, type ResourceInfo } from "../../cluster/resources.ts";
import type { KubeObject, WatchHandle } from "../../cluster/store.ts";
import { CRD_KIND, planCustomResources } from "./crds.ts";
import type { Registry } from "./registry.ts";
import { ApiError } from "./status.ts";

/** After a failed step (a status write, a cleanup, a watch that ended), the next attempt. */
const RETRY_MS = 1000;
/** Bad definitions remembered for log-once (then logged again). */
const MAX_REMEMBERED = 10_000;

export class CrdController {
  /** Stored CRDs found not to validate (distinct name and resourceVersion). */
  badDefinitions = 0;
  private readonly crds = new Map<string, KubeObject>();
  private readonly crdResource: ResourceInfo = resourceByKind(CRD_KIND);
  private readonly reported = new Set<string>();
  /** uids of the CRDs whose cleanup is running. */
  private readonly cleaning = new Set<string>();
  private watch: WatchHandle | undefined;
  private stopped = false;
  private dirty = false;
  private queue: Promise<void> = Promise.resolve();
  private loop: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Lists the CRDs and installs what they serve before resolving, then watches in the background. */
  async start(): Promise<void> {
    await this.listAndWatch();
    await this.queue;
    this.loop = this.watchLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.watch?.stop();
    this.wake?.();
    await this.loop;
    await this.queue;
  }

  /** Resolves once every change seen so far is reconciled (tests). */
  async settled(): Promise<void> {
    await this.queue;
  }

  private async listAndWatch(): Promise<void> {
    const { items, resourceVersion } = await this.registry.list(this.crdResource, undefined);
    this.crds.clear();
    for (const crd of items) this.crds.set(crd.metadata.name!, crd);
    this.schedule();
    this.watch = await this.registry.watch(this.crdResource, undefined, resourceVersion, {}, (e) => {
      const name = e.object.metadata?.name;
      if (typeof name !== "string") return;
      if (e.type === "DELETED") this.crds.delete(name);
      else this.crds.set(name, e.object);
      this.schedule();
    });
  }

  /** When the watch ends (the NATS connection went, history compacted): list again, and watch from there. */
  private async watchLoop(): Promise<void> {
    while (!this.stopped) {
      await this.watch?.done;
      if (this.stopped) return;
      this.log.warn({}, "the watch of CustomResourceDefinitions ended; listing them again");
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, RETRY_MS).unref();
      });
      if (this.stopped) return;
      try {
        await this.listAndWatch();
      } catch (err) {
        this.log.error({ err: (err as Error)?.message ?? String(err) }, "listing CustomResourceDefinitions failed; retrying");
        this.watch = undefined;
        await new Promise<void>((resolve) => setTimeout(resolve, RETRY_MS).unref());
      }
    }
  }

  /** A reconcile after the ones queued, coalesced: many changes, one pass over all of them. */
  private schedule(): void {
    this.dirty = true;
    this.queue = this.queue.then(async () => {
      if (!this.dirty || this.stopped) return;
      this.dirty = false;
      try {
        await this.reconcile();
      } catch (err) {
        this.log.error({ err: (err as Error)?.message ?? String(err) }, "reconciling CustomResourceDefinitions failed; retrying");
        this.retryLater();
      }
    });
  }

  private retryLater(): void {
    if (this.stopped || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.schedule();
    }, RETRY_MS);
    this.retry.unref();
  }

  private async reconcile(): Promise<void> {
    const plan = planCustomResources([...this.crds.values()], rfc3339(this.clock.now()));
    for (const bad of plan.bad) {
      const id = `${bad.name}@${this.crds.get(bad.name)?.metadata.resourceVersion ?? ""}`;
      if (this.reported.has(id)) continue;
      if (this.reported.size >= MAX_REMEMBERED) this.reported.clear();
      this.reported.add(id);
      this.badDefinitions++;
      this.log.error({ crd: bad.name, reason: bad.reason, badDefinitions: this.badDefinitions }, "stored CustomResourceDefinition is invalid; not served");
    }
    for (const w of plan.warnings) {
      const id = `warn:${w.name}@${this.crds.get(w.name)?.metadata.generation ?? ""}`;
      if (this.reported.has(id)) continue;
      this.reported.add(id);
      this.log.warn({ crd: w.name, rules: w.warnings }, "CustomResourceDefinition has validation rules this server does not evaluate");
    }
    if (!deepEqual(plan.served, customResourceKinds())) {
      setCustomResources(plan.served);
      this.log.info({ served: plan.served.map((r) => `${r.plural}.${r.group}/${r.version}`) }, "custom resources served");
    }
    for (const { name, status } of plan.status) {
      const crd = this.crds.get(name);
      if (!crd) continue;
      try {
        await this.registry.update(this.crdResource, undefined, name, { ...crd, status }, { subresource: "status" });
      } catch (err) {
        // A newer version is on its way through the watch (409), or the CRD is gone (404).
        if (err instanceof ApiError && (err.status.code === 409 || err.status.code === 404)) continue;
        throw err;
      }
    }
    for (const { crd, resource } of plan.cleanup) {
      const uid = crd.metadata.uid ?? "";
      if (this.cleaning.has(uid)) continue;
      this.cleaning.add(uid);
      void this.cleanup(crd, resource)
        .catch((err: unknown) => {
          this.log.error({ crd: crd.metadata.name, err: (err as Error)?.message ?? String(err) }, "deleting the instances of a CustomResourceDefinition failed; retrying");
          this.retryLater();
        })
        .finally(() => this.cleaning.delete(uid));
    }
  }

  /** The finalizer's work (pkg/controller/finalizer/crd_finalizer.go): every instance, then the CRD. */
  private async cleanup(crd: KubeObject, r: ResourceInfo | undefined): Promise<void> {
    const { items } = r ? await this.registry.list(r, undefined) : { items: [] };
    for (const o of items) {
      try {
        await this.registry.delete(r!, o.metadata.namespace, o.metadata.name!, { gracePeriodSeconds: 0 });
      } catch (err) {
        if (!(err instanceof ApiError && err.status.code === 404)) throw err;
      }
    }
    const current = await this.registry.store.get(this.crdResource, undefined, crd.metadata.name!);
    if (!current || current.metadata.uid !== crd.metadata.uid || !current.metadata.deletionTimestamp) return;
    await this.registry.store.delete(this.crdResource, current, Number(current.metadata.resourceVersion));
    this.log.info({ crd: crd.metadata.name, instances: items.length }, "CustomResourceDefinition deleted with its instances");
  }
}
