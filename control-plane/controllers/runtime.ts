/**
 * The controllers of the control plane. Each is a keyed work queue (cluster/workqueue.ts, client-go
 * workqueue semantics) and a level-triggered reconcile(key): informer events and a periodic
 * resync only enqueue keys; reconcile reads the informers' caches, computes the desired state of
 * that one object with the pure logic of ./logic and writes the difference through the registry
 * (kubernetes/sample-controller controller.go).
 *
 *   controller        key         reconciles
 *   scheduler         pod         a Pending pod without a node -> filter, score, bind to the best node
 *   replicaset        replicaset  ReplicaSet -> its pods
 *   deployment        deployment  Deployment -> its ReplicaSets (rolling update / recreate)
 *   endpointslice     service     Service selector -> EndpointSlices of ready/serving/terminating pods
 *   endpoints         service     Service -> core/v1 Endpoints (what older clients read)
 *   nodelifecycle     node        Lease renewTime and Ready heartbeat -> Ready Unknown when stale;
 *                                 Ready -> not-ready/unreachable taints; not Ready -> pods unready;
 *                                 pods bound to a deleted node -> removed (pod GC)
 *   tainteviction     pod         NoExecute taints -> pods deleted once their tolerations run out
 *   garbagecollector  dependent   objects whose controller owner is gone -> deleted
 *   namespace         namespace   a terminating namespace -> everything in it deleted, then it
 *   job               job         Job -> pods run to completion (completions, parallelism, backoffLimit)
 *   cronjob           cronjob     CronJob schedule -> Jobs (concurrencyPolicy, history limits)
 *   daemonset         daemonset   DaemonSet -> one pod bound to each eligible node
 *   statefulset       statefulset StatefulSet -> pods <name>-0..N-1 with stable identity, in order
 *   serviceaccount    namespace   every active namespace has the `default` ServiceAccount
 *
 * Errors of a write: 404 (the object is gone: its deletion event enqueues the key again) and
 * 400/422 (the write itself is wrong: retrying cannot help; logged) are absorbed; anything
 * else (409 conflict with a newer version, the store briefly away) retries the key with backoff.
 * Time comes from the injected Clock, randomness from a seeded generator.
 */
import type { DaemonSet, Deployment, ReplicaSet, StatefulSet } from "kubernetes-types/apps/v1.js";
import type { CronJob, Job } from "kubernetes-types/batch/v1.js";
import type { Lease } from "kubernetes-types/coordination/v1.js";
import type { EndpointAddress, EndpointPort, EndpointSubset, Namespace, Node, Pod, PodCondition, Service } from "kubernetes-types/core/v1.js";
import type { Endpoint, EndpointSlice } from "kubernetes-types/discovery/v1.js";
import type { Clock } from "../../cluster/clock.ts";
import { cacheKey, Informer, type InformerEventType } from "../../cluster/informer.ts";
import type { Logger } from "../../cluster/log.ts";
import { deepEqual, rfc3339 } from "../../cluster/meta.ts";
import { resourceByKind, servedResources, type ResourceInfo } from "../../cluster/resources.ts";
import type { KubeObject } from "../../cluster/store.ts";
import { Reconciled, runWorker, WorkQueue, type ReconcileResult } from "../../cluster/workqueue.ts";
import type { Registry } from "../api/registry.ts";
import { ApiError } from "../api/status.ts";
import { DeploymentAnnotation, reconcileDeployment } from "./logic/deployment.ts";
import { desiredEndpointSlices, reconcileEndpointSlices } from "./logic/endpointslices.ts";
import {
  desiredNodeTaints,
  findNodeCondition,
  leaseSettleMs,
  NODE_LEASE_NAMESPACE,
  nodeHealthVerdict,
  observeNodeHealth,
  staleNodeConditions,
  type NodeHealth,
} from "./logic/nodelifecycle.ts";
import { evictable, evictionDecision } from "./logic/tainteviction.ts";
import { reconcileReplicaSet } from "./logic/replicaset.ts";
import { reconcileCronJob } from "./logic/cronjob.ts";
import { reconcileDaemonSet } from "./logic/daemonset.ts";
import { reconcileJob } from "./logic/job.ts";
import { reconcileStatefulSet } from "./logic/statefulset.ts";
import { schedule } from "./logic/scheduler.ts";

const R = {
  pod: resourceByKind("Pod"),
  node: resourceByKind("Node"),
  service: resourceByKind("Service"),
  slice: resourceByKind("EndpointSlice"),
  deployment: resourceByKind("Deployment"),
  replicaset: resourceByKind("ReplicaSet"),
  namespace: resourceByKind("Namespace"),
  endpoints: resourceByKind("Endpoints"),
  job: resourceByKind("Job"),
  cronjob: resourceByKind("CronJob"),
  daemonset: resourceByKind("DaemonSet"),
  statefulset: resourceByKind("StatefulSet"),
  serviceaccount: resourceByKind("ServiceAccount"),
  lease: resourceByKind("Lease"),
} as const;

/** A stored object of one kind: the kubernetes-types shape with the store's required metadata. */
type Stored<T> = T & KubeObject;

/** Marks the Endpoints this controller writes, so it deletes only its own (pkg/controller/endpoint). */
const SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror";
const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
/** controller_utils.go ExpectationsTimeout: give up waiting for the informer to see our writes. */
const EXPECTATIONS_TIMEOUT_MS = 5 * 60_000;

export interface ControllerOptions {
  /** nodeMonitorGracePeriod: how long a node may go without a sign of life before it is Unknown. */
  nodeGraceMs: number;
  /** How often every key of every controller is enqueued again (the informers' resync period). */
  resyncMs?: number;
  /** Seed of the random generator (pod name suffixes, which pod to delete among equals). */
  seed: number;
  /**
   * How many real milliseconds a minute of the CronJob controller's clock lasts (60000 by
   * default; tests shorten it so `* * * * *` fires every few seconds).
   */
  cronMinuteMs?: number;
}

/** One controller: its queue, how informer events map to its keys, and its reconcile. */
interface ControllerSpec {
  readonly name: string;
  readonly reconcile: (key: string) => Promise<ReconcileResult>;
  /** For each watched kind: the keys an event on `obj` concerns. */
  readonly watches: ReadonlyArray<readonly [ResourceInfo, (obj: KubeObject, type: InformerEventType) => Iterable<string>]>;
  /** Every key there is, for the resync. */
  readonly keys: () => Iterable<string>;
}

interface RunningController {
  readonly spec: ControllerSpec;
  readonly queue: WorkQueue;
  readonly worker: Promise<void>;
}

/** A key's pending writes, not yet seen by the informer (controller_utils.go ControlleeExpectations). */
interface Expectation {
  readonly adds: Set<string>;
  readonly deletes: Set<string>;
  readonly sinceMs: number;
}

/**
 * The writes of one reconcile. Absorbed failures are logged; a transient one makes the
 * reconcile's result a retry.
 */
class Writes {
  private failed: unknown;

  constructor(private readonly log: Logger) {}

  async run<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      const code = err instanceof ApiError ? err.status.code : undefined;
      // 404: gone, its deletion event requeues the key. 400/422: this write is wrong and stays wrong.
      if (code === 404) return undefined;
      if (code === 400 || code === 422) {
        this.log.warn({ err: (err as Error).message, what }, "controller write rejected; not retrying");
        return undefined;
      }
      this.failed ??= err;
      this.log.warn({ err: (err as Error).message, what }, "controller write failed; will retry");
      return undefined;
    }
  }

  result(ok: ReconcileResult = Reconciled.done): ReconcileResult {
    return this.failed === undefined ? ok : Reconciled.retry(this.failed);
  }
}

function keyOf(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

const NONE: readonly KubeObject[] = [];
const NONE_PODS: ReadonlyArray<Stored<Pod>> = [];

export class Controllers {
  private readonly informers = new Map<string, Informer>();
  private readonly running: RunningController[] = [];
  /** What the node lifecycle controller saw of each node (nodeHealthMap). */
  private readonly nodeHealth = new Map<string, NodeHealth>();
  /** Wall ms a pod was first seen under a NoExecute taint without timeAdded, by pod key. */
  private readonly taintSeen = new Map<string, number>();
  /** Pods already reported unschedulable (key/uid -> message), so events are not repeated. */
  private readonly unschedulable = new Map<string, string>();
  /** The scheduler's assume cache: pods bound by us that the informer has not shown bound yet. */
  private readonly assumed = new Map<string, string>();
  private readonly expectations = new Map<string, Expectation>();
  /** Keys of the cached pods this controller marked not ready (markedUnready), kept by the pod informer. */
  private readonly unreadyMarked = new Set<string>();
  private seed: number;
  private cancelResync: (() => void) | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly opts: ControllerOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.seed = opts.seed >>> 0 || 1;
    this.cronEpochMs = clock.now().getTime();
  }

  private readonly cronEpochMs: number;

  /** How much faster than the wall clock the CronJob clock runs. */
  private get cronSpeed(): number {
    return 60_000 / (this.opts.cronMinuteMs ?? 60_000);
  }

  /** The CronJob controller's clock: the wall clock, sped up from the start when configured. */
  private cronNow(): Date {
    const real = this.clock.now().getTime();
    return new Date(this.cronEpochMs + (real - this.cronEpochMs) * this.cronSpeed);
  }

  private rand = (): number => {
    // xorshift32: the logic takes randomness as a parameter; this is the runtime's seeded source.
    this.seed ^= this.seed << 13;
    this.seed ^= this.seed >>> 17;
    this.seed ^= this.seed << 5;
    return (this.seed >>> 0) / 0x1_0000_0000;
  };

  private inf(r: ResourceInfo): Informer {
    return this.informers.get(r.kind)!;
  }

  /** The cached objects of a kind, typed. The store holds only objects that passed validation. */
  private list<T>(r: ResourceInfo): Array<Stored<T>> {
    return this.inf(r).list() as Array<Stored<T>>;
  }

  private get<T>(r: ResourceInfo, key: string): Stored<T> | undefined {
    return this.inf(r).cache.get(key) as Stored<T> | undefined;
  }

  /**
   * The objects of one namespace, from an index rebuilt only after the informer changed (a
   * cache.Indexer by namespace): reconciling every Service of a 10,000-Service namespace must
   * not filter every object 10,000 times. Read-only: the index is shared until the next change.
   */
  private inNamespace<T>(r: ResourceInfo, namespace: string | undefined): ReadonlyArray<Stored<T>> {
    return (this.index(r).byNamespace.get(namespace) ?? NONE) as ReadonlyArray<Stored<T>>;
  }

  /** The EndpointSlices labelled for one Service (the index the EndpointSlice controller keeps). */
  private slicesOf(namespace: string | undefined, service: string | undefined): ReadonlyArray<Stored<EndpointSlice>> {
    return (this.index(R.slice).byService.get(`${namespace ?? ""}/${service ?? ""}`) ?? NONE) as ReadonlyArray<Stored<EndpointSlice>>;
  }

  private readonly changes = new Map<string, number>();
  private readonly indexes = new Map<string, { version: number; byNamespace: Map<string | undefined, KubeObject[]>; byService: Map<string, KubeObject[]>; byNode: Map<string, KubeObject[]> }>();

  private index(r: ResourceInfo): { byNamespace: Map<string | undefined, KubeObject[]>; byService: Map<string, KubeObject[]>; byNode: Map<string, KubeObject[]> } {
    const version = this.changes.get(r.kind) ?? 0;
    const have = this.indexes.get(r.kind);
    if (have && have.version === version) return have;
    const byNamespace = new Map<string | undefined, KubeObject[]>();
    const byService = new Map<string, KubeObject[]>();
    // Pods by spec.nodeName: the node lifecycle controller looks at one node's pods every time
    // its Lease is renewed.
    const byNode = new Map<string, KubeObject[]>();
    for (const o of this.inf(r).list()) {
      const nodeName = (o.spec as { nodeName?: unknown } | undefined)?.nodeName;
      if (typeof nodeName === "string" && nodeName !== "") {
        let n = byNode.get(nodeName);
        if (!n) byNode.set(nodeName, (n = []));
        n.push(o);
      }
      const ns = o.metadata.namespace;
      let a = byNamespace.get(ns);
      if (!a) byNamespace.set(ns, (a = []));
      a.push(o);
      const svc = o.metadata.labels?.[SERVICE_NAME_LABEL];
      if (svc !== undefined) {
        const key = `${ns ?? ""}/${svc}`;
        let b = byService.get(key);
        if (!b) byService.set(key, (b = []));
        b.push(o);
      }
    }
    const built = { version, byNamespace, byService, byNode };
    this.indexes.set(r.kind, built);
    return built;
  }

  private keysIn(r: ResourceInfo, namespace: string | undefined): string[] {
    return this.inNamespace(r, namespace).map(cacheKey);
  }

  private allKeys(r: ResourceInfo): string[] {
    return [...this.inf(r).cache.keys()];
  }

  async start(): Promise<void> {
    for (const r of Object.values(R)) {
      const inf = new Informer(r, this.registry, this.clock, this.log);
      // Any change makes the kind's index stale (rebuilt on its next use).
      inf.onChange(() => this.changes.set(r.kind, (this.changes.get(r.kind) ?? 0) + 1));
      this.informers.set(r.kind, inf);
    }
    this.inf(R.pod).onChange((o, type) => {
      if (type !== "DELETED" && markedUnready(o as Stored<Pod>)) this.unreadyMarked.add(cacheKey(o));
      else this.unreadyMarked.delete(cacheKey(o));
    });
    await Promise.all([...this.informers.values()].map((i) => i.start()));
    for (const spec of this.specs()) {
      const queue = new WorkQueue(this.clock);
      for (const [r, keys] of spec.watches) this.inf(r).onChange((obj, type) => {
        for (const k of keys(obj, type)) queue.add(k);
      });
      this.enqueueAll(spec, queue);
      const worker = runWorker(queue, spec.reconcile, (key, err) =>
        this.log.warn({ controller: spec.name, key, err: (err as Error)?.message ?? String(err) }, "reconcile failed; requeued with backoff"),
      );
      this.running.push({ spec, queue, worker });
    }
    this.scheduleResync();
  }

  /** Every resyncMs, every key again: level-triggered controllers converge even on a lost event. */
  private scheduleResync(): void {
    this.cancelResync = this.clock.after(this.opts.resyncMs ?? 2000, () => {
      for (const { spec, queue } of this.running) this.enqueueAll(spec, queue);
      this.scheduleResync();
    });
  }

  /** Every key of a controller; an object of an odd shape costs its controller this round, not the process. */
  private enqueueAll(spec: ControllerSpec, queue: WorkQueue): void {
    try {
      for (const k of spec.keys()) queue.add(k);
    } catch (err) {
      this.log.error({ controller: spec.name, err: (err as Error)?.message ?? String(err) }, "listing a controller's keys failed");
    }
  }

  async stop(): Promise<void> {
    this.cancelResync?.();
    for (const { queue } of this.running) queue.shutDown();
    for (const i of this.informers.values()) i.stop();
    await Promise.all(this.running.map((c) => c.worker));
  }

  private specs(): ControllerSpec[] {
    const all = (r: ResourceInfo) => () => this.allKeys(r);
    const self = (o: KubeObject) => [cacheKey(o)];
    const servicesOfNamespace = (o: KubeObject) => this.keysIn(R.service, o.metadata.namespace);
    return [
      {
        name: "scheduler",
        reconcile: (k) => this.scheduleOne(k),
        watches: [
          [R.pod, (o, type) => {
            const pod = o as Stored<Pod>;
            if (type === "DELETED" || pod.spec?.nodeName) this.assumed.delete(cacheKey(o));
            if (type === "DELETED") for (const k of this.unschedulable.keys()) if (k.startsWith(`${cacheKey(o)}/`)) this.unschedulable.delete(k);
            return pod.spec?.nodeName ? [] : [cacheKey(o)];
          }],
          [R.node, () => this.pendingPodKeys()],
        ],
        keys: () => this.pendingPodKeys(),
      },
      {
        name: "replicaset",
        reconcile: (k) => this.syncReplicaSet(k),
        watches: [
          [R.replicaset, self],
          [R.pod, (o) => this.keysIn(R.replicaset, o.metadata.namespace)],
        ],
        keys: all(R.replicaset),
      },
      {
        name: "deployment",
        reconcile: (k) => this.syncDeployment(k),
        watches: [
          [R.deployment, self],
          [R.replicaset, (o) => this.keysIn(R.deployment, o.metadata.namespace)],
          [R.pod, (o) => this.keysIn(R.deployment, o.metadata.namespace)],
        ],
        keys: all(R.deployment),
      },
      {
        name: "endpointslice",
        reconcile: (k) => this.syncEndpointSlices(k),
        watches: [
          [R.service, self],
          [R.pod, servicesOfNamespace],
          [R.node, all(R.service)],
          [R.slice, (o) => {
            const svc = o.metadata.labels?.[SERVICE_NAME_LABEL];
            return svc ? [keyOf(o.metadata.namespace, svc)] : [];
          }],
        ],
        keys: all(R.service),
      },
      {
        name: "endpoints",
        reconcile: (k) => this.syncEndpoints(k),
        watches: [
          [R.service, self],
          [R.pod, servicesOfNamespace],
          [R.node, all(R.service)],
          [R.endpoints, self],
        ],
        keys: () => new Set([...this.allKeys(R.service), ...this.allKeys(R.endpoints)]),
      },
      {
        name: "nodelifecycle",
        reconcile: (k) => this.syncNode(k),
        watches: [
          [R.node, (o) => [o.metadata.name!]],
          [R.lease, (o) => (o.metadata.namespace === NODE_LEASE_NAMESPACE ? [o.metadata.name!] : [])],
          [R.pod, (o) => {
            const nodeName = (o as Stored<Pod>).spec?.nodeName;
            return nodeName ? [nodeName] : [];
          }],
        ],
        keys: () => new Set([...this.allKeys(R.node), ...this.list<Pod>(R.pod).flatMap((p) => (p.spec?.nodeName ? [p.spec.nodeName] : []))]),
      },
      {
        name: "tainteviction",
        reconcile: (k) => this.syncTaintEviction(k),
        watches: [
          [R.pod, (o, type) => {
            if (type === "DELETED") this.taintSeen.delete(cacheKey(o));
            return (o as Stored<Pod>).spec?.nodeName ? [cacheKey(o)] : [];
          }],
          [R.node, (o) => this.podKeysOn(o.metadata.name!)],
        ],
        // Only pods on nodes with a NoExecute taint have anything to wait for.
        keys: () => this.list<Node>(R.node)
          .filter((n) => (n.spec?.taints ?? []).some((t) => t.effect === "NoExecute"))
          .flatMap((n) => this.podKeysOn(n.metadata.name!)),
      },
      {
        name: "garbagecollector",
        reconcile: (k) => this.collectGarbage(k),
        watches: [
          ...DEPENDENTS.map((r) => [r, (o: KubeObject) => [dependentKey(r, o)]] as const),
          ...OWNERS.map((r) => [r, (o: KubeObject, type: InformerEventType) => (type === "DELETED" ? this.dependentsOf(o) : [])] as const),
        ],
        keys: () => DEPENDENTS.flatMap((r) => this.inf(r).list().map((o) => dependentKey(r, o))),
      },
      {
        name: "namespace",
        reconcile: (k) => this.syncNamespace(k),
        watches: [
          [R.namespace, (o) => [o.metadata.name!]],
          ...[R.pod, R.deployment, R.replicaset, R.service, R.slice, R.endpoints].map(
            (r) => [r, (o: KubeObject) => (o.metadata.namespace && this.get<Namespace>(R.namespace, o.metadata.namespace)?.metadata.deletionTimestamp ? [o.metadata.namespace] : [])] as const,
          ),
        ],
        keys: all(R.namespace),
      },
      {
        name: "job",
        reconcile: (k) => this.syncJob(k),
        watches: [
          [R.job, self],
          [R.pod, (o) => ownerKeys(o, "Job")],
        ],
        keys: all(R.job),
      },
      {
        name: "cronjob",
        reconcile: (k) => this.syncCronJob(k),
        watches: [
          [R.cronjob, self],
          [R.job, (o) => ownerKeys(o, "CronJob")],
        ],
        keys: all(R.cronjob),
      },
      {
        name: "daemonset",
        reconcile: (k) => this.syncDaemonSet(k),
        watches: [
          [R.daemonset, self],
          [R.pod, (o) => ownerKeys(o, "DaemonSet")],
          [R.node, all(R.daemonset)],
        ],
        keys: all(R.daemonset),
      },
      {
        name: "statefulset",
        reconcile: (k) => this.syncStatefulSet(k),
        watches: [
          [R.statefulset, self],
          [R.pod, (o) => ownerKeys(o, "StatefulSet")],
        ],
        keys: all(R.statefulset),
      },
      {
        name: "serviceaccount",
        reconcile: (k) => this.syncServiceAccount(k),
        watches: [
          [R.namespace, (o) => [o.metadata.name!]],
          [R.serviceaccount, (o) => (o.metadata.name === "default" && o.metadata.namespace ? [o.metadata.namespace] : [])],
        ],
        keys: all(R.namespace),
      },
    ];
  }

  // ------------------------------------------------------------------ scheduler

  private pendingPodKeys(): string[] {
    return this.list<Pod>(R.pod)
      .filter((p) => !p.spec?.nodeName && !p.metadata.deletionTimestamp)
      .map(cacheKey);
  }

  private async scheduleOne(key: string): Promise<ReconcileResult> {
    const pod = this.get<Pod>(R.pod, key);
    if (!pod || pod.spec?.nodeName || pod.metadata.deletionTimestamp || this.assumed.has(key)) return Reconciled.done;
    const nodes = this.list<Node>(R.node);
    // Pods we bound but the informer has not shown bound yet count on their node (the assume cache).
    // The cache's own keys, not a key string built per pod per scheduling (N² of them for N pods).
    const pods: Array<Stored<Pod>> = [];
    for (const [k, p] of this.inf(R.pod).cache as Map<string, Stored<Pod>>) {
      const assumed = this.assumed.get(k);
      pods.push(assumed && !p.spec?.nodeName ? { ...p, spec: { ...p.spec!, nodeName: assumed } } : p);
    }
    const decision = schedule(pod, nodes, pods, {
      // Namespace labels for the namespaceSelector of inter-pod affinity terms.
      namespaceLabels: (ns) => this.get<Namespace>(R.namespace, ns)?.metadata.labels,
      // helper.DefaultSelector's listers, for PodTopologySpread's default constraints, from the
      // informers' caches. There is no ReplicationController kind here, so no lister for it.
      services: (ns) => this.inNamespace<Service>(R.service, ns),
      replicaSet: (ns, name) => this.get<ReplicaSet>(R.replicaset, keyOf(ns, name)),
      statefulSet: (ns, name) => this.get<StatefulSet>(R.statefulset, keyOf(ns, name)),
    });
    const w = new Writes(this.log);
    const seenKey = `${key}/${pod.metadata.uid}`;
    const { namespace, name } = pod.metadata;
    if (decision.kind === "bind") {
      this.unschedulable.delete(seenKey);
      this.assumed.set(key, decision.nodeName);
      const bound = await w.run(`bind ${key}`, () => this.registry.bind(pod, decision.nodeName));
      if (!bound) {
        this.assumed.delete(key);
        return w.result();
      }
      await w.run(`event for ${key}`, () => this.registry.recordEvent(bound, "Normal", "Scheduled", `Successfully assigned ${namespace}/${name} to ${decision.nodeName}`, "default-scheduler"));
      return w.result();
    }
    if (this.unschedulable.get(seenKey) === decision.message) return Reconciled.done;
    this.unschedulable.set(seenKey, decision.message);
    const condition: PodCondition = { type: "PodScheduled", status: "False", reason: "Unschedulable", message: decision.message, lastTransitionTime: rfc3339(this.clock.now()) };
    // metav1.Time marshals a zero lastProbeTime as null; kubectl shows it so.
    const status = { ...(pod.status ?? {}), phase: "Pending", conditions: [{ ...condition, lastProbeTime: null }] };
    await w.run(`unschedulable ${key}`, async () => {
      await this.registry.update(R.pod, namespace, name!, { ...pod, status }, { subresource: "status" });
      await this.registry.recordEvent(pod, "Warning", "FailedScheduling", decision.message, "default-scheduler");
    });
    if (w.result().kind === "retry") this.unschedulable.delete(seenKey);
    return w.result();
  }

  // ------------------------------------------------------------------ replicasets

  /** Whether the informer has seen every write of the last reconcile of `key` (or waited long enough). */
  private expectationsMet(key: string, present: (k: string) => boolean): boolean {
    const e = this.expectations.get(key);
    if (!e) return true;
    const met = [...e.adds].every(present) && [...e.deletes].every((k) => !present(k));
    if (met || this.clock.monotonicMs() - e.sinceMs > EXPECTATIONS_TIMEOUT_MS) {
      this.expectations.delete(key);
      return true;
    }
    return false;
  }

  private async syncReplicaSet(key: string): Promise<ReconcileResult> {
    const rs = this.get<ReplicaSet>(R.replicaset, key);
    if (!rs || rs.metadata.deletionTimestamp) {
      this.expectations.delete(key);
      return Reconciled.done;
    }
    // A pod being deleted gracefully stays in the cache with a deletionTimestamp: that counts as gone.
    const podPresent = (k: string) => {
      const p = this.get<Pod>(R.pod, k);
      return !!p && !p.metadata.deletionTimestamp;
    };
    // Not before the informer shows our last creations and deletions: a sync on an older pod
    // list would create (or delete) the same pods again. Their events enqueue this key.
    if (!this.expectationsMet(key, podPresent)) return Reconciled.done;
    const ns = rs.metadata.namespace;
    const name = rs.metadata.name!;
    const actions = reconcileReplicaSet(rs, [...this.inNamespace<Pod>(R.pod, ns)], this.rand, this.clock.now());
    const w = new Writes(this.log);
    const expected: Expectation = { adds: new Set(), deletes: new Set(), sinceMs: this.clock.monotonicMs() };
    for (const pod of actions.create) {
      const created = await w.run(`create pod for ${key}`, () => this.registry.create(R.pod, ns, pod as Stored<Pod>));
      if (!created) continue;
      expected.adds.add(cacheKey(created));
      await w.run(`event for ${key}`, () => this.registry.recordEvent(rs, "Normal", "SuccessfulCreate", `Created pod: ${created.metadata.name}`, "replicaset-controller"));
    }
    for (const pod of actions.delete) {
      const podName = pod.metadata!.name!;
      const deleted = await w.run(`delete pod ${podName}`, () => this.registry.delete(R.pod, ns, podName, {}));
      if (!deleted) continue;
      expected.deletes.add(keyOf(ns, podName));
      await w.run(`event for ${key}`, () => this.registry.recordEvent(rs, "Normal", "SuccessfulDelete", `Deleted pod: ${podName}`, "replicaset-controller"));
    }
    if (expected.adds.size + expected.deletes.size > 0) this.expectations.set(key, expected);
    for (const pod of actions.adopt) {
      await w.run(`adopt pod ${pod.metadata!.name}`, () =>
        this.registry.patch(R.pod, ns, pod.metadata!.name!, "application/merge-patch+json", {
          metadata: { ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name, uid: rs.metadata.uid, controller: true, blockOwnerDeletion: true }] },
        }),
      );
    }
    for (const pod of actions.release) {
      await w.run(`release pod ${pod.metadata!.name}`, () =>
        this.registry.patch(R.pod, ns, pod.metadata!.name!, "application/merge-patch+json", { metadata: { ownerReferences: pod.metadata!.ownerReferences ?? null } }),
      );
    }
    if (!deepEqual(actions.status, rs.status)) {
      await w.run(`status of ${key}`, () => this.registry.update(R.replicaset, ns, name, { ...rs, status: actions.status }, { subresource: "status" }));
    }
    return w.result();
  }

  // ------------------------------------------------------------------ deployments

  private async syncDeployment(key: string): Promise<ReconcileResult> {
    const d = this.get<Deployment>(R.deployment, key);
    if (!d || d.metadata.deletionTimestamp) return Reconciled.done;
    const ns = d.metadata.namespace;
    const name = d.metadata.name!;
    const actions = reconcileDeployment(d, [...this.inNamespace<ReplicaSet>(R.replicaset, ns)], [...this.inNamespace<Pod>(R.pod, ns)], this.clock.now());
    const w = new Writes(this.log);
    for (const rs of actions.create) {
      const created = await w.run(`create rs for ${key}`, () => this.registry.create(R.replicaset, ns, rs as Stored<ReplicaSet>));
      if (created) {
        await w.run(`event for ${key}`, () => this.registry.recordEvent(d, "Normal", "ScalingReplicaSet", `Scaled up replica set ${created.metadata.name} to ${rs.spec?.replicas ?? 0}`, "deployment-controller"));
      }
    }
    for (const rs of actions.update) {
      const rsName = rs.metadata!.name!;
      const from = this.get<ReplicaSet>(R.replicaset, keyOf(ns, rsName))?.spec?.replicas;
      const to = rs.spec?.replicas;
      const updated = await w.run(`update rs ${rsName}`, () => this.registry.update(R.replicaset, ns, rsName, rs as Stored<ReplicaSet>));
      if (updated && from !== to) {
        const direction = (to ?? 0) > (from ?? 0) ? "up" : "down";
        await w.run(`event for ${key}`, () => this.registry.recordEvent(d, "Normal", "ScalingReplicaSet", `Scaled ${direction} replica set ${rsName} to ${to} from ${from}`, "deployment-controller"));
      }
    }
    for (const rs of actions.delete) {
      await w.run(`delete rs ${rs.metadata!.name}`, () => this.registry.delete(R.replicaset, ns, rs.metadata!.name!, {}));
    }
    if (!deepEqual(actions.status, d.status)) {
      await w.run(`status of ${key}`, () => this.registry.update(R.deployment, ns, name, { ...d, status: actions.status }, { subresource: "status" }));
    }
    // sync.go SetDeploymentRevision: the Deployment carries its new ReplicaSet's revision (what
    // `kubectl rollout undo` replaces along with the template). After the status write, which
    // is conditional on the revision read; a patch of one annotation, retried on conflict.
    if (actions.revision !== undefined) {
      const revision = actions.revision;
      await w.run(`revision of ${key}`, () =>
        this.registry.patch(R.deployment, ns, name, "application/merge-patch+json", { metadata: { annotations: { [DeploymentAnnotation.Revision]: revision } } }),
      );
    }
    return w.result();
  }

  // ------------------------------------------------------------------ endpointslices

  private async syncEndpointSlices(key: string): Promise<ReconcileResult> {
    const svc = this.get<Service>(R.service, key);
    // A deleted Service's slices go with it: the garbage collector follows their owner reference.
    if (!svc) return Reconciled.done;
    const ns = svc.metadata.namespace;
    const mine = [...this.slicesOf(ns, svc.metadata.name)];
    const actions = reconcileEndpointSlices(svc, this.inNamespace<Pod>(R.pod, ns), this.list<Node>(R.node), mine);
    const w = new Writes(this.log);
    for (const s of actions.create) await w.run(`create slice for ${key}`, () => this.registry.create(R.slice, ns, s as Stored<EndpointSlice>));
    for (const s of actions.update) await w.run(`update slice ${s.metadata!.name}`, () => this.registry.update(R.slice, ns, s.metadata!.name!, s as Stored<EndpointSlice>));
    for (const s of actions.delete) await w.run(`delete slice ${s.metadata!.name}`, () => this.registry.delete(R.slice, ns, s.metadata!.name!, {}));
    return w.result();
  }

  /**
   * core/v1 Endpoints, still what `kubectl describe service` and older clients read: one
   * subset per slice the EndpointSlice logic computes; ready addresses and not-ready ones,
   * terminating pods left out (pkg/controller/endpoint).
   */
  private async syncEndpoints(key: string): Promise<ReconcileResult> {
    const svc = this.get<Service>(R.service, key);
    const current = this.get<{ subsets?: EndpointSubset[] }>(R.endpoints, key);
    const w = new Writes(this.log);
    if (!svc || !svc.spec?.selector || svc.spec.type === "ExternalName") {
      // Only the Endpoints this controller wrote; others (a selector-less Service's) are the user's.
      if (current && current.metadata.labels?.[SKIP_MIRROR] === "true") {
        await w.run(`delete endpoints ${key}`, () => this.registry.delete(R.endpoints, current.metadata.namespace, current.metadata.name!, {}));
      }
      return w.result();
    }
    const ns = svc.metadata.namespace;
    const name = svc.metadata.name!;
    const slices = desiredEndpointSlices(svc, this.inNamespace<Pod>(R.pod, ns), this.list<Node>(R.node));
    const toAddress = (e: Endpoint): EndpointAddress => ({ ip: e.addresses[0]!, ...(e.nodeName ? { nodeName: e.nodeName } : {}), ...(e.targetRef ? { targetRef: e.targetRef } : {}) });
    const subsets: EndpointSubset[] = slices
      .map((sl) => {
        const eps = sl.endpoints ?? [];
        const ready = eps.filter((e) => e.conditions?.ready).map(toAddress);
        const notReady = eps.filter((e) => !e.conditions?.ready && !e.conditions?.terminating).map(toAddress);
        const ports: EndpointPort[] = (sl.ports ?? []).map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port!, protocol: p.protocol ?? "TCP" }));
        return { ...(ready.length ? { addresses: ready } : {}), ...(notReady.length ? { notReadyAddresses: notReady } : {}), ports };
      })
      .filter((sub) => sub.addresses || sub.notReadyAddresses);
    const labels = { ...(svc.metadata.labels ?? {}), [SKIP_MIRROR]: "true" };
    const desired: KubeObject = { apiVersion: "v1", kind: "Endpoints", metadata: { name, namespace: ns, labels }, ...(subsets.length ? { subsets } : {}) };
    if (!current) {
      await w.run(`create endpoints ${key}`, () => this.registry.create(R.endpoints, ns, desired));
    } else if (!deepEqual(current.subsets, desired.subsets) || !deepEqual(current.metadata.labels, labels)) {
      await w.run(`update endpoints ${key}`, () => this.registry.update(R.endpoints, ns, name, { ...desired, metadata: { ...current.metadata, labels } }));
    }
    return w.result();
  }

  // ------------------------------------------------------------------ node lifecycle

  /** The pods bound to a node, from the index (read-only). */
  private podsOn(nodeName: string): ReadonlyArray<Stored<Pod>> {
    return (this.index(R.pod).byNode.get(nodeName) ?? NONE) as ReadonlyArray<Stored<Pod>>;
  }

  private podKeysOn(nodeName: string): string[] {
    return this.podsOn(nodeName).map(cacheKey);
  }

  /**
   * monitorNodeHealth for one node: its health from its Lease and Ready heartbeat; a stale node's
   * conditions go Unknown; the not-ready/unreachable taints follow the Ready condition; the pods
   * of a node that is not Ready are marked not ready (MarkPodsNotReady), so their endpoints
   * leave the Services at once, long before any eviction.
   */
  private async syncNode(name: string): Promise<ReconcileResult> {
    const node = this.get<Node>(R.node, name);
    const lease = this.get<Lease>(R.lease, keyOf(NODE_LEASE_NAMESPACE, name));
    const w = new Writes(this.log);
    if (!node) {
      const onNode = this.podsOn(name);
      this.nodeHealth.delete(name);
      // Pod GC: pods bound to a node that no longer exists go too (pkg/controller/podgc).
      if (!this.inf(R.node).synced || !this.inf(R.pod).synced) return Reconciled.done;
      for (const pod of onNode) {
        await w.run(`gc orphan pod ${pod.metadata.name}`, () => this.registry.delete(R.pod, pod.metadata.namespace, pod.metadata.name!, { gracePeriodSeconds: 0 }));
      }
      // The node's Lease is owned by its Node (the kubelet sets the owner reference); it goes with it.
      if (lease) await w.run(`gc lease of ${name}`, () => this.registry.delete(R.lease, NODE_LEASE_NAMESPACE, name, {}));
      return w.result();
    }
    const nowMs = this.clock.monotonicMs();
    const now = this.clock.now();
    const health = observeNodeHealth(this.nodeHealth.get(name), node, lease, nowMs, now.getTime(), this.opts.nodeGraceMs, leaseSettleMs(lease));
    this.nodeHealth.set(name, health);
    const verdict = nodeHealthVerdict(node, health, nowMs, this.opts.nodeGraceMs);
    // The node's pods matter below only if it is (or is about to be found) not Ready, or if pods
    // are marked not ready; a Ready node with none marked skips them: reading them rebuilds the
    // pod index, once per pod change, and every pod change of a node reconciles it.
    const podsMatter = verdict.kind === "stale" || findNodeCondition(node, "Ready")?.status !== "True" || this.unreadyMarked.size > 0;
    const onNode = podsMatter ? this.podsOn(name) : NONE_PODS;
    let current: Stored<Node> = node;
    if (verdict.kind === "stale") {
      const conditions = staleNodeConditions(node, now);
      if (conditions) {
        const updated = await w.run(`node ${name} Unknown`, async () => {
          const u = await this.registry.update(R.node, undefined, name, { ...node, status: { ...node.status, conditions } }, { subresource: "status" });
          this.log.warn({ node: name, renewTime: health.renewTime, lastHeartbeatTime: health.readyHeartbeat, graceMs: this.opts.nodeGraceMs }, "node stopped posting status and renewing its lease: Ready Unknown");
          // RecordNodeStatusChange: a Normal event, "Node X status is now: NodeNotReady".
          await this.registry.recordEvent(node, "Normal", "NodeNotReady", `Node ${name} status is now: NodeNotReady`, "node-controller");
          return u as Stored<Node>;
        });
        // A conflict (the agent posted meanwhile) retries on the newer object; a 404: gone.
        if (!updated) return w.result();
        current = updated;
      }
    }
    const taints = desiredNodeTaints(current, now);
    if (taints) {
      const updated = await w.run(`taints of node ${name}`, () => this.registry.update(R.node, undefined, name, { ...current, spec: { ...current.spec, taints } }));
      if (updated) this.log.info({ node: name, taints: taints.map((t) => `${t.key}:${t.effect}`) }, "node taints updated");
    }
    const ready = findNodeCondition(current, "Ready")?.status;
    if (ready === "True") {
      // What the kubelet's status manager would post again for pods it runs: the pods this
      // controller marked not ready are ready again with their node.
      for (const pod of onNode) if (markedUnready(pod)) await w.run(`ready ${pod.metadata.name}`, () => this.setPodReady(pod, true));
    } else if (ready !== undefined) {
      // MarkPodsNotReady (pkg/controller/util/node/controller_utils.go), for Ready False and Unknown.
      for (const pod of onNode) {
        if (pod.metadata.deletionTimestamp || markedUnready(pod)) continue;
        await w.run(`unready ${pod.metadata.name}`, async () => {
          await this.setPodReady(pod, false);
          this.log.info({ node: name, pod: pod.metadata.name, namespace: pod.metadata.namespace, nodeReady: ready }, "pod marked not ready: its node is not ready");
        });
      }
      // No node-agent will confirm a graceful deletion there: pods already terminating go now.
      for (const pod of onNode.filter((p) => p.metadata.deletionTimestamp)) {
        await w.run(`force delete ${pod.metadata.name}`, () => this.registry.delete(R.pod, pod.metadata.namespace, pod.metadata.name!, { gracePeriodSeconds: 0 }));
      }
    }
    // Look again when the node's last sign of life would expire (the resync covers the rest).
    return w.result(verdict.kind === "alive" ? Reconciled.after(verdict.recheckInMs) : Reconciled.done);
  }

  /**
   * The taint eviction controller for one pod: deleted at once when it does not tolerate a
   * NoExecute taint of its node, when its tolerationSeconds run out otherwise
   * (taint_eviction.go processPodOnNode, then the deletion with a TaintManagerEviction event).
   */
  private async syncTaintEviction(key: string): Promise<ReconcileResult> {
    const pod = this.get<Pod>(R.pod, key);
    if (!pod || !evictable(pod)) {
      this.taintSeen.delete(key);
      return Reconciled.done;
    }
    const nodeName = pod.spec!.nodeName!;
    const nowWallMs = this.clock.now().getTime();
    const decision = evictionDecision(pod, this.get<Node>(R.node, nodeName), nowWallMs, this.taintSeen.get(key) ?? nowWallMs);
    switch (decision.kind) {
      case "none":
      case "tolerated":
        this.taintSeen.delete(key);
        return Reconciled.done;
      case "wait":
        if (!this.taintSeen.has(key)) this.taintSeen.set(key, nowWallMs);
        return Reconciled.after(Math.max(1, decision.inMs + 1));
      case "evict": {
        const w = new Writes(this.log);
        const { namespace, name, uid } = pod.metadata;
        await w.run(`evict ${key}`, async () => {
          await this.registry.delete(R.pod, namespace, name!, { preconditions: { uid } });
          this.taintSeen.delete(key);
          this.log.info({ node: nodeName, pod: name, namespace, taint: `${decision.taint.key}:${decision.taint.effect}`, lateMs: Math.max(0, nowWallMs - decision.deadlineMs) }, "pod evicted by NoExecute taint");
          await this.registry.recordEvent(pod, "Normal", "TaintManagerEviction", `Marking for deletion Pod ${namespace}/${name}`, "taint-eviction-controller");
        });
        return w.result();
      }
    }
  }

  private async setPodReady(pod: Stored<Pod>, ready: boolean): Promise<void> {
    const now = rfc3339(this.clock.now());
    const flip = (c: PodCondition): PodCondition => {
      if (c.type !== "Ready" && c.type !== "ContainersReady") return c;
      const { reason: _reason, ...rest } = c;
      return { ...rest, status: ready ? "True" : "False", ...(ready ? {} : { reason: "NodeNotReady" }), lastTransitionTime: now };
    };
    const conditions = (pod.status?.conditions ?? []).map(flip);
    const containerStatuses = (pod.status?.containerStatuses ?? []).map((c) => ({ ...c, ready }));
    await this.registry.update(R.pod, pod.metadata.namespace, pod.metadata.name!, { ...pod, status: { ...pod.status, conditions, containerStatuses } }, { subresource: "status" });
  }

  // ------------------------------------------------------------------ namespaces

  /** A terminating namespace: delete everything in it, then the namespace itself. */
  private async syncNamespace(name: string): Promise<ReconcileResult> {
    const ns = this.get<Namespace>(R.namespace, name);
    if (!ns?.metadata.deletionTimestamp) return Reconciled.done;
    const w = new Writes(this.log);
    let remaining = 0;
    for (const r of servedResources().filter((x) => x.namespaced && (!x.custom || x.custom.storage))) {
      // From the registry, not the caches: every namespaced kind, not only the watched ones.
      const { items } = await this.registry.list(r, name);
      remaining += items.length;
      for (const o of items) {
        if (o.metadata.deletionTimestamp && r.kind !== "Pod") continue;
        await w.run(`namespace ${name}: delete ${r.plural}/${o.metadata.name}`, () => this.registry.delete(r, name, o.metadata.name!, {}));
      }
    }
    if (remaining === 0) {
      await w.run(`finalize namespace ${name}`, () => this.registry.finalizeNamespace(name));
      this.log.info({ namespace: name }, "namespace deleted");
    }
    return w.result();
  }

  // ------------------------------------------------------------------ workloads

  /** Creates and deletes pods for the controller of `key`, recording expectations (as for ReplicaSets). */
  private async applyPodActions(
    key: string,
    owner: KubeObject,
    component: string,
    actions: { create: readonly Pod[]; delete: readonly Pod[] },
    w: Writes,
  ): Promise<void> {
    const ns = owner.metadata.namespace;
    const expected: Expectation = { adds: new Set(), deletes: new Set(), sinceMs: this.clock.monotonicMs() };
    for (const pod of actions.create) {
      const created = await w.run(`create pod for ${key}`, () => this.registry.create(R.pod, ns, pod as Stored<Pod>));
      if (!created) continue;
      expected.adds.add(cacheKey(created));
      await w.run(`event for ${key}`, () => this.registry.recordEvent(owner, "Normal", "SuccessfulCreate", `Created pod: ${created.metadata.name}`, component));
    }
    for (const pod of actions.delete) {
      const podName = pod.metadata!.name!;
      const deleted = await w.run(`delete pod ${podName}`, () => this.registry.delete(R.pod, ns, podName, {}));
      if (!deleted) continue;
      expected.deletes.add(keyOf(ns, podName));
      await w.run(`event for ${key}`, () => this.registry.recordEvent(owner, "Normal", "SuccessfulDelete", `Deleted pod: ${podName}`, component));
    }
    if (expected.adds.size + expected.deletes.size > 0) this.expectations.set(key, expected);
  }

  private podPresent = (k: string): boolean => {
    const p = this.get<Pod>(R.pod, k);
    return !!p && !p.metadata.deletionTimestamp;
  };

  private async writeStatus(r: ResourceInfo, obj: KubeObject, status: unknown, w: Writes): Promise<void> {
    if (deepEqual(status, obj.status)) return;
    await w.run(`status of ${r.plural}/${obj.metadata.name}`, () => this.registry.update(r, obj.metadata.namespace, obj.metadata.name!, { ...obj, status } as KubeObject, { subresource: "status" }));
  }

  private async syncJob(key: string): Promise<ReconcileResult> {
    const eKey = `job:${key}`;
    const job = this.get<Job>(R.job, key);
    if (!job || job.metadata.deletionTimestamp) {
      this.expectations.delete(eKey);
      return Reconciled.done;
    }
    if (!this.expectationsMet(eKey, this.podPresent)) return Reconciled.done;
    const before = job.status?.conditions?.some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
    const actions = reconcileJob(job, this.inNamespace<Pod>(R.pod, job.metadata.namespace), this.rand, this.clock.now());
    const w = new Writes(this.log);
    await this.applyPodActions(eKey, job, "job-controller", actions, w);
    await this.writeStatus(R.job, job, actions.status, w);
    const after = actions.status.conditions?.find((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
    if (!before && after) {
      const [type, reason, message] = after.type === "Complete" ? ["Normal", "Completed", "Job completed"] : ["Warning", after.reason ?? "BackoffLimitExceeded", after.message ?? "Job has reached the specified backoff limit"];
      await w.run(`event for ${key}`, () => this.registry.recordEvent(job, type as "Normal" | "Warning", reason!, message!, "job-controller"));
    }
    return w.result();
  }

  private async syncCronJob(key: string): Promise<ReconcileResult> {
    const cj = this.get<CronJob>(R.cronjob, key);
    if (!cj || cj.metadata.deletionTimestamp) return Reconciled.done;
    const ns = cj.metadata.namespace;
    const actions = reconcileCronJob(cj, this.inNamespace<Job>(R.job, ns), this.cronNow());
    const w = new Writes(this.log);
    if (actions.error) {
      this.log.warn({ cronjob: key, err: actions.error }, "cronjob not scheduled");
    }
    for (const job of actions.delete) {
      const name = job.metadata!.name!;
      const deleted = await w.run(`delete job ${name}`, () => this.registry.delete(R.job, ns, name, {}));
      if (deleted) await w.run(`event for ${key}`, () => this.registry.recordEvent(cj, "Normal", "SuccessfulDelete", `Deleted job ${name}`, "cronjob-controller"));
    }
    for (const job of actions.create) {
      const created = await w.run(`create job for ${key}`, () => this.registry.create(R.job, ns, job as Stored<Job>));
      if (created) await w.run(`event for ${key}`, () => this.registry.recordEvent(cj, "Normal", "SuccessfulCreate", `Created job ${created.metadata.name}`, "cronjob-controller"));
    }
    await this.writeStatus(R.cronjob, cj, actions.status, w);
    const next = actions.requeueAfterMs === undefined ? Reconciled.done : Reconciled.after(Math.max(1, Math.ceil(actions.requeueAfterMs / this.cronSpeed)));
    return w.result(next);
  }

  private async syncDaemonSet(key: string): Promise<ReconcileResult> {
    const eKey = `ds:${key}`;
    const ds = this.get<DaemonSet>(R.daemonset, key);
    if (!ds || ds.metadata.deletionTimestamp) {
      this.expectations.delete(eKey);
      return Reconciled.done;
    }
    if (!this.expectationsMet(eKey, this.podPresent)) return Reconciled.done;
    const actions = reconcileDaemonSet(ds, this.list<Node>(R.node), this.inNamespace<Pod>(R.pod, ds.metadata.namespace), this.rand);
    const w = new Writes(this.log);
    await this.applyPodActions(eKey, ds, "daemonset-controller", actions, w);
    await this.writeStatus(R.daemonset, ds, actions.status, w);
    return w.result();
  }

  private async syncStatefulSet(key: string): Promise<ReconcileResult> {
    const eKey = `sts:${key}`;
    const sts = this.get<StatefulSet>(R.statefulset, key);
    if (!sts || sts.metadata.deletionTimestamp) {
      this.expectations.delete(eKey);
      return Reconciled.done;
    }
    // A pod of the set's is "present" for expectations when it exists at all (a recreated one
    // has the same name as the deleted one, so presence by name is what the informer shows).
    if (!this.expectationsMet(eKey, this.podPresent)) return Reconciled.done;
    const actions = reconcileStatefulSet(sts, this.inNamespace<Pod>(R.pod, sts.metadata.namespace));
    const w = new Writes(this.log);
    await this.applyPodActions(eKey, sts, "statefulset-controller", actions, w);
    await this.writeStatus(R.statefulset, sts, actions.status, w);
    return w.result();
  }

  /** pkg/controller/serviceaccount: the `default` ServiceAccount of every active namespace. */
  private async syncServiceAccount(name: string): Promise<ReconcileResult> {
    const ns = this.get<Namespace>(R.namespace, name);
    if (!ns || ns.metadata.deletionTimestamp || ns.status?.phase === "Terminating") return Reconciled.done;
    if (this.get(R.serviceaccount, keyOf(name, "default"))) return Reconciled.done;
    const w = new Writes(this.log);
    await w.run(`default serviceaccount in ${name}`, async () => {
      try {
        await this.registry.create(R.serviceaccount, name, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: name } });
      } catch (err) {
        if (!(err instanceof ApiError && (err.status.code === 409 || err.status.code === 403))) throw err;
      }
    });
    return w.result();
  }

  // ------------------------------------------------------------------ garbage collector

  private dependentsOf(owner: KubeObject): string[] {
    const uid = owner.metadata.uid;
    return DEPENDENTS.flatMap((r) =>
      this.inf(r)
        .list()
        .filter((o) => o.metadata.namespace === owner.metadata.namespace && o.metadata.ownerReferences?.some((ref) => ref.uid === uid))
        .map((o) => dependentKey(r, o)),
    );
  }

  private async collectGarbage(key: string): Promise<ReconcileResult> {
    if (![...this.informers.values()].every((i) => i.synced)) return Reconciled.after(this.opts.resyncMs ?? 2000);
    const [kind, objKey] = splitDependentKey(key);
    const r = DEPENDENTS.find((d) => d.kind === kind);
    const o = r && this.inf(r).cache.get(objKey);
    if (!r || !o || o.metadata.deletionTimestamp) return Reconciled.done;
    const ref = o.metadata.ownerReferences?.find((x) => x.controller);
    const ownerResource = OWNERS.find((x) => x.kind === ref?.kind);
    if (!ref || !ownerResource) return Reconciled.done;
    if (this.inf(ownerResource).list().some((owner) => owner.metadata.uid === ref.uid)) return Reconciled.done;
    const w = new Writes(this.log);
    await w.run(`gc ${r.plural}/${o.metadata.name}`, () => this.registry.delete(r, o.metadata.namespace, o.metadata.name!, {}));
    return w.result();
  }
}

/** Kinds whose controller owner the garbage collector checks, and the kinds that own them. */
const DEPENDENTS: readonly ResourceInfo[] = [R.replicaset, R.pod, R.slice, R.job];
const OWNERS: readonly ResourceInfo[] = [R.deployment, R.replicaset, R.service, R.job, R.cronjob, R.daemonset, R.statefulset];

/** The key of the controller owner of `o` when it is of `kind`. */
function ownerKeys(o: KubeObject, kind: string): string[] {
  const ref = o.metadata.ownerReferences?.find((r) => r.controller);
  return ref && ref.kind === kind ? [keyOf(o.metadata.namespace, ref.name)] : [];
}

function dependentKey(r: ResourceInfo, o: KubeObject): string {
  return `${r.kind}:${cacheKey(o)}`;
}

function splitDependentKey(key: string): [string, string] {
  const i = key.indexOf(":");
  return [key.slice(0, i), key.slice(i + 1)];
}

function markedUnready(pod: Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "False" && c.reason === "NodeNotReady");
}
