/**
 * The controllers of the control plane, each a level-triggered loop over the informers'
 * caches: on any change (and on a periodic resync) it computes the whole desired state with
 * the pure logic of ./logic and writes the difference through the registry.
 *
 *   scheduler            Pending pods without a node -> bind to a Ready node (spread)
 *   replicaset           ReplicaSet -> its pods
 *   deployment           Deployment -> its ReplicaSets (rolling update / recreate)
 *   endpointslice        Service selector -> EndpointSlices of ready/serving/terminating pods
 *   nodelifecycle        heartbeats -> Node Ready condition; NotReady -> pods unready, evicted
 *   garbagecollector     objects whose controller owner is gone -> deleted
 */
import type { Logger } from "../../api/log.ts";
import { ApiError } from "../api/status.ts";
import type { Registry } from "../api/registry.ts";
import { RESOURCES, resourceByKind, type ResourceInfo } from "../../api/resources.ts";
import type { KubeObject } from "../../api/store.ts";
import { Informer, SyncLoop } from "./informer.ts";
import { reconcileDeployment } from "./logic/deployment.ts";
import { desiredEndpointSlices, reconcileEndpointSlices } from "./logic/endpointslices.ts";
import { nodeReadiness, nodeReadyCondition, podsToEvict } from "./logic/nodelifecycle.ts";
import { reconcileReplicaSet } from "./logic/replicaset.ts";
import { schedule } from "./logic/scheduler.ts";
import { deepEqual, rfc3339 } from "../../api/meta.ts";

const R = {
  pod: resourceByKind("Pod"),
  node: resourceByKind("Node"),
  service: resourceByKind("Service"),
  slice: resourceByKind("EndpointSlice"),
  deployment: resourceByKind("Deployment"),
  replicaset: resourceByKind("ReplicaSet"),
  namespace: resourceByKind("Namespace"),
  endpoints: resourceByKind("Endpoints"),
};

export interface ControllerOptions {
  nodeGraceMs: number;
  podEvictionMs: number;
  resyncMs?: number;
}

type AnyObj = any;



/** 404 and 409 on a write mean someone else already changed the object: the next sync sees it. */
function benign(err: unknown): boolean {
  return err instanceof ApiError && (err.status.code === 404 || err.status.code === 409);
}

export class Controllers {
  private readonly informers = new Map<string, Informer>();
  private readonly loops: SyncLoop[] = [];
  private readonly startedAt = performance.now();
  /** When each node was first seen NotReady (ms, performance.now). */
  private readonly notReadySince = new Map<string, number>();
  /** Pods already reported unschedulable, with the message, so events are not repeated. */
  private readonly unschedulable = new Map<string, string>();
  private seed = 0x2545f491;

  constructor(
    private readonly registry: Registry,
    private readonly heartbeats: ReadonlyMap<string, number>,
    private readonly opts: ControllerOptions,
    private readonly log: Logger,
  ) {}

  private inf(r: ResourceInfo): Informer {
    return this.informers.get(r.kind)!;
  }

  private rand = (): number => {
    // xorshift32: controllers take randomness as a parameter; this is the runtime's source.
    this.seed ^= this.seed << 13;
    this.seed ^= this.seed >>> 17;
    this.seed ^= this.seed << 5;
    return (this.seed >>> 0) / 0x1_0000_0000;
  };

  async start(): Promise<void> {
    this.seed = (Date.now() ^ (Math.floor(performance.now() * 1000) << 7)) >>> 0 || 1;
    for (const r of Object.values(R)) this.informers.set(r.kind, new Informer(r, this.registry, this.log));
    await Promise.all([...this.informers.values()].map((i) => i.start()));
    const resync = this.opts.resyncMs ?? 2000;
    const loop = (name: string, sync: () => Promise<void>, kinds: string[]) => {
      const l = new SyncLoop(name, sync, this.log, resync);
      for (const k of kinds) this.informers.get(k)!.onChange(() => l.kick());
      this.loops.push(l);
      l.kick();
      return l;
    };
    loop("scheduler", () => this.scheduler(), ["Pod", "Node"]);
    loop("replicaset", () => this.replicasets(), ["ReplicaSet", "Pod"]);
    loop("deployment", () => this.deployments(), ["Deployment", "ReplicaSet", "Pod"]);
    loop("endpointslice", () => this.endpointSlices(), ["Service", "Pod", "Node", "EndpointSlice"]);
    loop("endpoints", () => this.endpoints(), ["Service", "Pod", "Node", "Endpoints"]);
    this.nodeLoop = loop("nodelifecycle", () => this.nodeLifecycle(), ["Node"]);
    loop("garbagecollector", () => this.garbageCollect(), ["Deployment", "ReplicaSet", "Service", "Pod", "EndpointSlice"]);
    loop("namespace", () => this.namespaces(), ["Namespace", "Pod", "Deployment", "ReplicaSet", "Service", "EndpointSlice", "Endpoints"]);
  }

  private nodeLoop: SyncLoop | undefined;

  nodeHeartbeatStarted(_node: string): void {
    this.nodeLoop?.kick();
  }

  async stop(): Promise<void> {
    for (const l of this.loops) l.stop();
    for (const i of this.informers.values()) i.stop();
  }

  private async write(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (benign(err)) return;
      this.log.warn({ err: (err as Error).message, what }, "controller write failed");
    }
  }

  // ------------------------------------------------------------------ scheduler

  private async scheduler(): Promise<void> {
    const nodes = this.inf(R.node).list() as AnyObj[];
    const pods = this.inf(R.pod).list() as AnyObj[];
    const working = pods.map((p) => ({ ...p, spec: { ...p.spec } }));
    for (const pod of working) {
      if (pod.spec.nodeName || pod.metadata.deletionTimestamp) continue;
      const decision = schedule(pod, nodes, working);
      const key = `${pod.metadata.namespace}/${pod.metadata.name}/${pod.metadata.uid}`;
      if (decision.kind === "bind") {
        pod.spec.nodeName = decision.nodeName;
        this.unschedulable.delete(key);
        await this.write(`bind ${key}`, async () => {
          const bound = await this.registry.bind(pod as KubeObject, decision.nodeName);
          await this.registry.recordEvent(bound, "Normal", "Scheduled", `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${decision.nodeName}`, "default-scheduler");
        });
      } else if (this.unschedulable.get(key) !== decision.message) {
        this.unschedulable.set(key, decision.message);
        await this.write(`unschedulable ${key}`, async () => {
          const status = { ...(pod.status ?? {}), phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: decision.message, lastProbeTime: null, lastTransitionTime: rfc3339(new Date()) }] };
          await this.registry.update(R.pod, pod.metadata.namespace, pod.metadata.name, { ...pod, status } as KubeObject, { subresource: "status" });
          await this.registry.recordEvent(pod as KubeObject, "Warning", "FailedScheduling", decision.message, "default-scheduler");
        });
      }
    }
  }

  // ------------------------------------------------------------------ replicasets

  private async replicasets(): Promise<void> {
    const pods = this.inf(R.pod).list() as AnyObj[];
    for (const rs of this.inf(R.replicaset).list() as AnyObj[]) {
      if (rs.metadata.deletionTimestamp) continue;
      const inNs = pods.filter((p) => p.metadata.namespace === rs.metadata.namespace);
      const actions = reconcileReplicaSet(rs, inNs, this.rand);
      for (const pod of actions.create) {
        await this.write(`create pod for ${rs.metadata.name}`, async () => {
          const created = await this.registry.create(R.pod, rs.metadata.namespace, pod as KubeObject);
          await this.registry.recordEvent(rs as KubeObject, "Normal", "SuccessfulCreate", `Created pod: ${created.metadata.name}`, "replicaset-controller");
        });
      }
      for (const pod of actions.delete) {
        await this.write(`delete pod ${pod.metadata?.name}`, async () => {
          await this.registry.delete(R.pod, pod.metadata!.namespace, pod.metadata!.name!, {});
          await this.registry.recordEvent(rs as KubeObject, "Normal", "SuccessfulDelete", `Deleted pod: ${pod.metadata!.name}`, "replicaset-controller");
        });
      }
      for (const pod of (actions as { adopt?: AnyObj[] }).adopt ?? []) {
        await this.write(`adopt pod ${pod.metadata.name}`, () =>
          this.registry.patch(R.pod, pod.metadata.namespace, pod.metadata.name, "application/merge-patch+json", {
            metadata: { ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: rs.metadata.name, uid: rs.metadata.uid, controller: true, blockOwnerDeletion: true }] },
          }),
        );
      }
      for (const pod of actions.release) {
        await this.write(`release pod ${pod.metadata?.name}`, () =>
          this.registry.patch(R.pod, pod.metadata!.namespace, pod.metadata!.name!, "application/merge-patch+json", { metadata: { ownerReferences: pod.metadata!.ownerReferences ?? null } }),
        );
      }
      if (!deepEqual(actions.status, rs.status)) {
        await this.write(`status of ${rs.metadata.name}`, () => this.registry.update(R.replicaset, rs.metadata.namespace, rs.metadata.name, { ...rs, status: actions.status } as KubeObject, { subresource: "status" }));
      }
    }
  }

  // ------------------------------------------------------------------ deployments

  private async deployments(): Promise<void> {
    const pods = this.inf(R.pod).list() as AnyObj[];
    const sets = this.inf(R.replicaset).list() as AnyObj[];
    for (const d of this.inf(R.deployment).list() as AnyObj[]) {
      if (d.metadata.deletionTimestamp) continue;
      const ns = d.metadata.namespace;
      const actions = reconcileDeployment(d, sets.filter((s) => s.metadata.namespace === ns), pods.filter((p) => p.metadata.namespace === ns), new Date());
      for (const rs of actions.create) {
        await this.write(`create rs for ${d.metadata.name}`, async () => {
          const created = await this.registry.create(R.replicaset, ns, rs as KubeObject);
          await this.registry.recordEvent(d as KubeObject, "Normal", "ScalingReplicaSet", `Scaled up replica set ${created.metadata.name} to ${(rs as AnyObj).spec?.replicas ?? 0}`, "deployment-controller");
        });
      }
      for (const rs of actions.update) {
        const current = this.inf(R.replicaset).cache.get(`${ns}/${(rs as AnyObj).metadata.name}`) as AnyObj | undefined;
        await this.write(`update rs ${(rs as AnyObj).metadata.name}`, async () => {
          await this.registry.update(R.replicaset, ns, (rs as AnyObj).metadata.name, rs as KubeObject);
          const from = current?.spec?.replicas;
          const to = (rs as AnyObj).spec?.replicas;
          if (from !== to) await this.registry.recordEvent(d as KubeObject, "Normal", "ScalingReplicaSet", `Scaled ${to > from ? "up" : "down"} replica set ${(rs as AnyObj).metadata.name} to ${to} from ${from}`, "deployment-controller");
        });
      }
      for (const rs of actions.delete) {
        await this.write(`delete rs ${(rs as AnyObj).metadata.name}`, () => this.registry.delete(R.replicaset, ns, (rs as AnyObj).metadata.name, {}));
      }
      if (!deepEqual(actions.status, d.status)) {
        await this.write(`status of ${d.metadata.name}`, () => this.registry.update(R.deployment, ns, d.metadata.name, { ...d, status: actions.status } as KubeObject, { subresource: "status" }));
      }
    }
  }

  // ------------------------------------------------------------------ endpointslices

  private async endpointSlices(): Promise<void> {
    const pods = this.inf(R.pod).list() as AnyObj[];
    const nodes = this.inf(R.node).list() as AnyObj[];
    const slices = this.inf(R.slice).list() as AnyObj[];
    const services = this.inf(R.service).list() as AnyObj[];
    for (const svc of services) {
      const ns = svc.metadata.namespace;
      const mine = slices.filter((s) => s.metadata.namespace === ns && s.metadata.labels?.["kubernetes.io/service-name"] === svc.metadata.name);
      const actions = reconcileEndpointSlices(svc, pods.filter((p) => p.metadata.namespace === ns), nodes, mine);
      for (const s of actions.create) await this.write(`create slice for ${svc.metadata.name}`, () => this.registry.create(R.slice, ns, s as unknown as KubeObject));
      for (const s of actions.update) await this.write(`update slice ${(s as AnyObj).metadata.name}`, () => this.registry.update(R.slice, ns, (s as AnyObj).metadata.name, s as unknown as KubeObject));
      for (const s of actions.delete) await this.write(`delete slice ${(s as AnyObj).metadata.name}`, () => this.registry.delete(R.slice, ns, (s as AnyObj).metadata.name, {}));
    }
  }

  /**
   * core/v1 Endpoints, still what `kubectl describe service` and older clients read: one
   * subset per slice the EndpointSlice logic computes; ready addresses and not-ready ones,
   * terminating pods left out (pkg/controller/endpoint).
   */
  private async endpoints(): Promise<void> {
    const pods = this.inf(R.pod).list() as AnyObj[];
    const nodes = this.inf(R.node).list() as AnyObj[];
    const services = this.inf(R.service).list() as AnyObj[];
    const existing = this.inf(R.endpoints).cache;
    const wanted = new Set<string>();
    for (const svc of services) {
      if (!svc.spec?.selector || svc.spec.type === "ExternalName") continue;
      const ns = svc.metadata.namespace;
      wanted.add(`${ns}/${svc.metadata.name}`);
      const slices = desiredEndpointSlices(svc, pods.filter((p) => p.metadata.namespace === ns), nodes) as AnyObj[];
      const subsets = slices
        .map((sl) => {
          const eps = (sl.endpoints ?? []) as AnyObj[];
          const toAddr = (e: AnyObj) => ({ ip: e.addresses[0], ...(e.nodeName ? { nodeName: e.nodeName } : {}), ...(e.targetRef ? { targetRef: e.targetRef } : {}) });
          const ready = eps.filter((e) => e.conditions?.ready).map(toAddr);
          const notReady = eps.filter((e) => !e.conditions?.ready && !e.conditions?.terminating).map(toAddr);
          return {
            ...(ready.length ? { addresses: ready } : {}),
            ...(notReady.length ? { notReadyAddresses: notReady } : {}),
            ports: ((sl.ports ?? []) as AnyObj[]).map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, protocol: p.protocol ?? "TCP" })),
          };
        })
        .filter((sub) => sub.addresses || sub.notReadyAddresses);
      const current = existing.get(`${ns}/${svc.metadata.name}`) as AnyObj | undefined;
      const desired = {
        apiVersion: "v1",
        kind: "Endpoints",
        metadata: { name: svc.metadata.name, namespace: ns, labels: { ...(svc.metadata.labels ?? {}), "endpointslice.kubernetes.io/skip-mirror": "true" } },
        ...(subsets.length ? { subsets } : {}),
      };
      if (!current) {
        await this.write(`create endpoints ${svc.metadata.name}`, () => this.registry.create(R.endpoints, ns, desired as KubeObject));
      } else if (!deepEqual(current.subsets, desired.subsets) || !deepEqual(current.metadata.labels, desired.metadata.labels)) {
        await this.write(`update endpoints ${svc.metadata.name}`, () => this.registry.update(R.endpoints, ns, svc.metadata.name, { ...desired, metadata: { ...current.metadata, labels: desired.metadata.labels } } as KubeObject));
      }
    }
    for (const [key, ep] of existing) {
      if (wanted.has(key) || ep.metadata.labels?.["endpointslice.kubernetes.io/skip-mirror"] !== "true") continue;
      await this.write(`delete endpoints ${key}`, () => this.registry.delete(R.endpoints, ep.metadata.namespace, ep.metadata.name!, {}));
    }
  }

  // ------------------------------------------------------------------ node lifecycle

  private async nodeLifecycle(): Promise<void> {
    const nowMs = performance.now();
    const now = new Date();
    const pods = this.inf(R.pod).list() as AnyObj[];
    // Pod GC: pods bound to a node that no longer exists go too (pkg/controller/podgc).
    if (this.inf(R.node).synced && this.inf(R.pod).synced) {
      const nodes = new Set(this.inf(R.node).list().map((n) => n.metadata.name));
      for (const pod of pods) {
        const nodeName = pod.spec?.nodeName;
        if (!nodeName || nodes.has(nodeName)) continue;
        await this.write(`gc orphan pod ${pod.metadata.name}`, () => this.registry.delete(R.pod, pod.metadata.namespace, pod.metadata.name, { gracePeriodSeconds: 0 }));
      }
    }
    for (const node of this.inf(R.node).list() as AnyObj[]) {
      const name = node.metadata.name;
      // A node not heard from since this control plane started gets the grace period from its start.
      const last = this.heartbeats.get(name) ?? this.startedAt;
      const readiness = nodeReadiness(last, nowMs, this.opts.nodeGraceMs);
      const condition = nodeReadyCondition(node, readiness, now);
      const conditions = [...((node.status?.conditions ?? []) as AnyObj[]).filter((c) => c.type !== "Ready"), condition];
      const old = (node.status?.conditions ?? []).find((c: AnyObj) => c.type === "Ready");
      if (!old || old.status !== condition.status) {
        await this.write(`node ${name} ${readiness}`, async () => {
          await this.registry.update(R.node, undefined, name, { ...node, status: { ...node.status, conditions } } as KubeObject, { subresource: "status" });
          await this.registry.recordEvent(node as KubeObject, readiness === "Ready" ? "Normal" : "Warning", readiness === "Ready" ? "NodeReady" : "NodeNotReady", `Node ${name} status is now: ${readiness === "Ready" ? "NodeReady" : "NodeNotReady"}`, "node-controller");
          this.log.info({ node: name, readiness }, "node readiness changed");
        });
      }
      const onNode = pods.filter((p) => p.spec?.nodeName === name);
      if (readiness === "Ready") {
        this.notReadySince.delete(name);
        for (const pod of onNode) if (markedUnready(pod)) await this.write(`ready ${pod.metadata.name}`, () => this.setPodReady(pod, true));
        continue;
      }
      if (!this.notReadySince.has(name)) this.notReadySince.set(name, nowMs);
      // NotReady: the pods' endpoints leave the Services now; the pods are evicted after the timeout.
      for (const pod of onNode) if (!pod.metadata.deletionTimestamp && !markedUnready(pod)) await this.write(`unready ${pod.metadata.name}`, () => this.setPodReady(pod, false));
      for (const pod of onNode.filter((p) => p.metadata.deletionTimestamp)) {
        await this.write(`force delete ${pod.metadata.name}`, () => this.registry.delete(R.pod, pod.metadata.namespace, pod.metadata.name, { gracePeriodSeconds: 0 }));
      }
      for (const pod of podsToEvict(node, onNode, this.notReadySince.get(name)!, nowMs, this.opts.podEvictionMs)) {
        await this.write(`evict ${pod.metadata?.name}`, async () => {
          await this.registry.recordEvent(pod as KubeObject, "Warning", "NodeNotReady", `Evicting pod from NotReady node ${name}`, "node-controller");
          await this.registry.delete(R.pod, pod.metadata!.namespace, pod.metadata!.name!, { gracePeriodSeconds: 0 });
        });
      }
    }
  }

  private async setPodReady(pod: AnyObj, ready: boolean): Promise<void> {
    const now = rfc3339(new Date());
    const flip = (c: AnyObj) =>
      c.type === "Ready" || c.type === "ContainersReady"
        ? { ...c, status: ready ? "True" : "False", reason: ready ? undefined : "NodeNotReady", lastTransitionTime: now }
        : c;
    const conditions = ((pod.status?.conditions ?? []) as AnyObj[]).map(flip).map((c) => JSON.parse(JSON.stringify(c)));
    const containerStatuses = ((pod.status?.containerStatuses ?? []) as AnyObj[]).map((c) => ({ ...c, ready }));
    await this.registry.update(R.pod, pod.metadata.namespace, pod.metadata.name, { ...pod, status: { ...pod.status, conditions, containerStatuses } } as KubeObject, { subresource: "status" });
  }

  // ------------------------------------------------------------------ namespaces

  /** A terminating namespace: delete everything in it, then the namespace itself. */
  private async namespaces(): Promise<void> {
    for (const ns of this.inf(R.namespace).list()) {
      if (!ns.metadata.deletionTimestamp) continue;
      const name = ns.metadata.name!;
      let remaining = 0;
      for (const r of RESOURCES.filter((x) => x.namespaced)) {
        const { items } = await this.registry.list(r, name);
        remaining += items.length;
        for (const o of items) {
          if (o.metadata.deletionTimestamp && r.kind !== "Pod") continue;
          await this.write(`namespace ${name}: delete ${r.plural}/${o.metadata.name}`, () => this.registry.delete(r, name, o.metadata.name!, {}));
        }
      }
      if (remaining === 0) {
        await this.write(`finalize namespace ${name}`, () => this.registry.finalizeNamespace(name));
        this.log.info({ namespace: name }, "namespace deleted");
      }
    }
  }

  // ------------------------------------------------------------------ garbage collector

  private async garbageCollect(): Promise<void> {
    if (![...this.informers.values()].every((i) => i.synced)) return;
    const owners = new Set<string>();
    for (const r of [R.deployment, R.replicaset, R.service]) for (const o of this.inf(r).list()) owners.add(o.metadata.uid!);
    for (const r of [R.replicaset, R.pod, R.slice]) {
      for (const o of this.inf(r).list()) {
        const ref = o.metadata.ownerReferences?.find((x) => x.controller);
        if (!ref || owners.has(ref.uid) || o.metadata.deletionTimestamp) continue;
        if (!["Deployment", "ReplicaSet", "Service"].includes(ref.kind)) continue;
        await this.write(`gc ${r.plural}/${o.metadata.name}`, () => this.registry.delete(r, o.metadata.namespace, o.metadata.name!, {}));
      }
    }
  }
}

function markedUnready(pod: AnyObj): boolean {
  return ((pod.status?.conditions ?? []) as AnyObj[]).some((c) => c.type === "Ready" && c.status === "False" && c.reason === "NodeNotReady");
}
