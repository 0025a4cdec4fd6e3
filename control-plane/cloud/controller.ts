/**
 * The emulated cloud provider: what a cloud-controller-manager's service controller
 * (k8s.io/cloud-provider controllers/service/controller.go) and the cloud's load balancers do
 * for type=LoadBalancer Services, in the control-plane process.
 *
 * - The address controller, keyed by Service, level-triggered like ../controllers/runtime.ts:
 *   a Service that wants a load balancer (type LoadBalancer, no loadBalancerClass) gets an
 *   address of KUBEWIRE_LB_CIDR (./addresses.ts) written to status.loadBalancer.ingress through
 *   the status subresource, with the events syncLoadBalancerIfNeeded records
 *   (EnsuringLoadBalancer, EnsuredLoadBalancer; SyncLoadBalancerFailed when the pool is
 *   exhausted or the requested address unusable). A Service that stopped being a LoadBalancer
 *   has its status cleared (DeletedLoadBalancer). Who holds which address is read from the
 *   stored Services before any new one is handed out, never from memory.
 * - The data plane (./dataplane.ts): after every change of a Service or a Node, and on each
 *   resync, the listeners are recomputed from the whole state (./balancing.ts).
 *
 * Unlike a cloud-controller-manager no finalizer is added: deleting a Service deletes its
 * listeners with it (the data plane follows the informer), so nothing outlives it.
 */
import type { Service } from "kubernetes-types/core/v1.js";
import { mustParseCidr, type Cidr } from "../../cluster/addressing.ts";
import type { Clock } from "../../cluster/clock.ts";
import { cacheKey, Informer } from "../../cluster/informer.ts";
import type { Logger } from "../../cluster/log.ts";
import { deepEqual } from "../../cluster/meta.ts";
import { resourceByKind } from "../../cluster/resources.ts";
import type { KubeObject } from "../../cluster/store.ts";
import { Reconciled, runWorker, WorkQueue, type ReconcileResult } from "../../cluster/workqueue.ts";
import type { Registry } from "../api/registry.ts";
import { ApiError } from "../api/status.ts";
import { decideLoadBalancerAddress, ingressIpsOf, lbServiceFrom, loadBalancerStatus, wantsLoadBalancer } from "./addresses.ts";
import { desiredListeners, lbNodeFrom, type LbNode } from "./balancing.ts";
import { LoadBalancerDataPlane, type DataPlaneOptions, type HealthProbe } from "./dataplane.ts";

const SERVICES = resourceByKind("Service");
const NODES = resourceByKind("Node");
/** The component name on events, as a cloud-controller-manager's service controller records them. */
const COMPONENT = "service-controller";

export interface CloudProviderOptions {
  /** KUBEWIRE_LB_CIDR. */
  lbCidr: string;
  /** How often every Service is reconciled again and the listeners recomputed. */
  resyncMs?: number;
  dataPlane?: Partial<DataPlaneOptions>;
  /** The health check (tests replace it). */
  probe?: HealthProbe;
}

type Stored<T> = T & KubeObject;

export class CloudProvider {
  private readonly pool: Cidr;
  private readonly services: Informer;
  private readonly nodes: Informer;
  private readonly queue: WorkQueue;
  readonly dataPlane: LoadBalancerDataPlane;
  private worker: Promise<void> | undefined;
  private cancelResync: (() => void) | undefined;
  private dataPlaneSyncPending = false;
  /** The last failure event per Service (uid and message), so a resync does not repeat it. */
  private readonly failures = new Map<string, string>();
  /** The listener problems last logged (service port -> reason), logged again only when they change. */
  private skippedLogged = new Map<string, string>();

  constructor(
    private readonly registry: Registry,
    private readonly opts: CloudProviderOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.pool = mustParseCidr(opts.lbCidr);
    this.services = new Informer(SERVICES, registry, clock, log);
    this.nodes = new Informer(NODES, registry, clock, log);
    this.queue = new WorkQueue(clock);
    this.dataPlane = new LoadBalancerDataPlane(log, clock, opts.dataPlane, opts.probe);
  }

  async start(): Promise<void> {
    this.services.onChange((obj) => {
      this.queue.add(cacheKey(obj));
      this.scheduleDataPlaneSync();
    });
    this.nodes.onChange(() => this.scheduleDataPlaneSync());
    await Promise.all([this.services.start(), this.nodes.start()]);
    for (const key of this.services.cache.keys()) this.queue.add(key);
    this.worker = runWorker(this.queue, (key) => this.syncService(key), (key, err) =>
      this.log.warn({ controller: COMPONENT, key, err: (err as Error)?.message ?? String(err) }, "reconcile failed; requeued with backoff"),
    );
    this.dataPlane.start();
    this.syncDataPlane();
    this.scheduleResync();
    this.log.info({ lbCidr: this.opts.lbCidr }, "cloud provider started: LoadBalancer addresses and load balancers");
  }

  async stop(): Promise<void> {
    this.cancelResync?.();
    this.queue.shutDown();
    this.services.stop();
    this.nodes.stop();
    await this.worker;
    await this.dataPlane.stop();
  }

  private scheduleResync(): void {
    this.cancelResync = this.clock.after(this.opts.resyncMs ?? 2000, () => {
      // Only Services the load balancer has to do with: with 10,000 ClusterIP Services a resync
      // of every key every 2 s would keep the control plane busy for nothing.
      for (const [key, svc] of this.services.cache) if (wantsLoadBalancer(svc) || ingressIpsOf(svc).length > 0) this.queue.add(key);
      this.syncDataPlane();
      this.scheduleResync();
    });
  }

  /** One data-plane sync for a burst of informer events (a relist delivers every object). */
  private scheduleDataPlaneSync(): void {
    if (this.dataPlaneSyncPending) return;
    this.dataPlaneSyncPending = true;
    this.clock.after(0, () => {
      this.dataPlaneSyncPending = false;
      this.syncDataPlane();
    });
  }

  private syncDataPlane(): void {
    try {
      const { listeners, skipped } = desiredListeners(this.services.list(), this.pool);
      const nodes = this.nodes.list().map(lbNodeFrom).filter((n): n is LbNode => n !== undefined);
      const now = new Map(skipped.map((s) => [`${s.service} ${s.port}/${s.protocol}`, s.reason]));
      for (const [port, reason] of now) {
        if (this.skippedLogged.get(port) !== reason) this.log.info({ servicePort: port, reason }, "load balancer skips a Service port");
      }
      this.skippedLogged = now;
      this.dataPlane.update(listeners, nodes);
    } catch (err) {
      // An object of an odd shape costs this round, not the process; the resync tries again.
      this.log.error({ err: (err as Error)?.message ?? String(err) }, "load balancer data plane sync failed");
    }
  }

  /** syncLoadBalancerIfNeeded for one Service. */
  private async syncService(key: string): Promise<ReconcileResult> {
    const svc = this.services.cache.get(key) as Stored<Service> | undefined;
    if (!svc) {
      this.failures.delete(key);
      return Reconciled.done;
    }
    const current = (svc.status?.loadBalancer ?? {}) as Record<string, unknown>;
    if (!wantsLoadBalancer(svc)) {
      this.failures.delete(key);
      // A Service with a loadBalancerClass is another implementation's: its status is not ours.
      if (svc.spec?.type === "LoadBalancer" || ingressIpsOf(svc).length === 0) return Reconciled.done;
      return this.write(svc, {}, () => this.registry.recordEvent(svc, "Normal", "DeletedLoadBalancer", "Deleted load balancer", COMPONENT), { released: ingressIpsOf(svc) });
    }
    const me = lbServiceFrom(svc);
    // From the cache first; a change is decided again on what the store holds.
    let decision = decideLoadBalancerAddress(me, this.services.list().map(lbServiceFrom), this.pool);
    if (decision.kind === "assign" && deepEqual(current, loadBalancerStatus(decision.ip))) {
      this.failures.delete(key);
      return Reconciled.done;
    }
    try {
      const { items } = await this.registry.list(SERVICES, undefined);
      decision = decideLoadBalancerAddress(me, items.map(lbServiceFrom), this.pool);
    } catch (err) {
      return Reconciled.retry(err);
    }
    if (decision.kind === "fail") {
      const seen = `${svc.metadata.uid} ${decision.message}`;
      if (this.failures.get(key) !== seen) {
        this.failures.set(key, seen);
        this.log.warn({ service: key, lbCidr: this.opts.lbCidr, reason: decision.message }, "load balancer not ensured");
        await this.registry.recordEvent(svc, "Warning", "SyncLoadBalancerFailed", `Error syncing load balancer: failed to ensure load balancer: ${decision.message}`, COMPONENT);
      }
      // Looked at again on every resync and on any Service change (an address may be freed).
      return Reconciled.done;
    }
    this.failures.delete(key);
    const ip = decision.ip;
    // The cache was behind and the store agrees with the status: nothing to write or announce.
    if (deepEqual(current, loadBalancerStatus(ip))) return Reconciled.done;
    return this.write(svc, loadBalancerStatus(ip), async () => {
      await this.registry.recordEvent(svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer", COMPONENT);
      await this.registry.recordEvent(svc, "Normal", "EnsuredLoadBalancer", "Ensured load balancer", COMPONENT);
    }, { ip, previous: ingressIpsOf(svc) });
  }

  /**
   * patchStatus: status.loadBalancer through the status subresource, conditional on the version
   * read (a stale cache is a 409, retried with backoff). A Service gone meanwhile is done.
   */
  private async write(svc: Stored<Service>, loadBalancer: Record<string, unknown>, events: () => Promise<void>, fields: Record<string, unknown>): Promise<ReconcileResult> {
    const key = cacheKey(svc);
    try {
      await this.registry.update(SERVICES, svc.metadata.namespace, svc.metadata.name!, { ...svc, status: { ...svc.status, loadBalancer } } as KubeObject, { subresource: "status" });
    } catch (err) {
      if (err instanceof ApiError && err.status.code === 404) return Reconciled.done;
      return Reconciled.retry(err);
    }
    this.log.info({ service: key, ...fields }, Object.keys(loadBalancer).length ? "load balancer address assigned" : "load balancer address released");
    await events().catch((err: unknown) => this.log.warn({ service: key, err: (err as Error)?.message ?? String(err) }, "load balancer event not recorded"));
    return Reconciled.done;
  }
}
