/**
 * The control-plane process's parts: the object store and registry, the Kubernetes API over
 * HTTP, the RPCs node-agents use (registration, pod status, pod finalization, heartbeats), the
 * controllers and the emulated cloud provider (LoadBalancer addresses and the load balancers in
 * front of the NodePorts). It keeps no state of its own beyond caches: everything is in
 * JetStream KV, so a restarted control plane hands out nothing twice.
 */
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import type { NatsConnection, Subscription } from "nats";
import { cidrContains, cidrSize, formatCidr, mustParseCidr, parseCidr, vtepMac } from "../cluster/addressing.ts";
import { clusterSettingsOf, type ControlPlaneConfig } from "../cluster/config.ts";
import { isDns1123Label } from "../cluster/syntax.ts";
import { KUBELET_VERSION, nodeIsReady, nodeObject, nodeRecordFrom } from "../cluster/kube-objects.ts";
import { systemClock } from "../cluster/clock.ts";
import type { Logger } from "../cluster/log.ts";
import { generateServingCert } from "../cluster/tls.ts";
import { RpcError, request, serve } from "../cluster/rpc.ts";
import {
  ErrorCode,
  Subjects,
  type ExecResult,
  type FaultStatsResponse,
  type JoinNodeRequest,
  type LeaseRenewRequest,
  type NodeRecord,
  type NodeStatusRequest,
  type PodFinalizeRequest,
  type PodStatusRequest,
  type RegisterNodeRequest,
} from "../cluster/types.ts";
import { formatIpv4, formatMac, parseIpv4Addr } from "../overlay/wire/common.ts";
import { createAdmission } from "./api/admission.ts";
import { ApiServer, type PodBackend } from "./api/http.ts";
import { Registry } from "./api/registry.ts";
import { resourceByKind } from "../cluster/resources.ts";
import { ApiError } from "./api/status.ts";
import { ObjectStore, StoreError, StoreErrorCode, type KubeObject } from "../cluster/store.ts";
import { Controllers } from "./controllers/runtime.ts";
import { leaseFresh, NODE_LEASE_NAMESPACE, NodeReadiness, nodeReadyCondition, parseTimeMs } from "./controllers/logic/nodelifecycle.ts";
import { CloudProvider } from "./cloud/controller.ts";
import { Housekeeping } from "./housekeeping.ts";
import { NetworkChaosStatus } from "./controllers/networkchaos.ts";
import { allocateAddress, allocateNodeCidr } from "../cluster/ipam.ts";
import { rfc3339 } from "../cluster/meta.ts";
import { advertiseAddress, reconcileKubernetesService } from "./master.ts";
import { AddonManager } from "./addons.ts";
import { CrdController } from "./api/crd-controller.ts";
import { NodeJoin } from "./join.ts";

const NODES = resourceByKind("Node");
const PODS = resourceByKind("Pod");
const NAMESPACES = resourceByKind("Namespace");
const LEASES = resourceByKind("Lease");
const BOOTSTRAP_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];
/** How long /readyz waits for the store to answer before reporting it failed. */
const READY_TIMEOUT_MS = 2000;


export class ControlPlane {
  private subs: Subscription[] = [];
  private controllers!: Controllers;
  private cloud?: CloudProvider;
  private housekeeping?: Housekeeping;
  private chaosStatus?: NetworkChaosStatus;
  private addons?: AddonManager;
  private crds?: CrdController;
  private api!: ApiServer;
  apiAddress!: { host: string; port: number };

  private constructor(
    private readonly nc: NatsConnection,
    private readonly cfg: ControlPlaneConfig,
    private readonly log: Logger,
    readonly store: ObjectStore,
    readonly registry: Registry,
  ) {}

  static async start(nc: NatsConnection, cfg: ControlPlaneConfig, log: Logger): Promise<ControlPlane> {
    const store = await ObjectStore.open(nc, log, { replicas: cfg.natsReplicas });
    let cp: ControlPlane | undefined;
    // A stored value that does not decode (logged by the store) counts as absent.
    const getOrNone = (r: typeof NODES, namespace: string | undefined, name: string) =>
      store.get(r, namespace, name).catch((err: unknown) => {
        if (err instanceof StoreError && err.code === StoreErrorCode.Corrupt) return undefined;
        throw err;
      });
    const registry = new Registry(store, createAdmission(cfg.serviceCidr, { defaultTolerationSeconds: cfg.defaultTolerationSeconds }), async (pod) => {
      // Graceful only when a live node-agent will tear the pod down and confirm: its node is
      // Ready and its Lease was renewed within the grace period.
      const nodeName = (pod.spec as { nodeName?: string } | undefined)?.nodeName;
      if (!nodeName) return false;
      const node = await getOrNone(NODES, undefined, nodeName);
      if (!node || !nodeIsReady(node)) return false;
      const lease = await getOrNone(LEASES, NODE_LEASE_NAMESPACE, nodeName);
      return leaseFresh(lease as Parameters<typeof leaseFresh>[0], Date.now(), cfg.nodeGraceSeconds * 1000);
    });
    cp = new ControlPlane(nc, cfg, log, store, registry);
    await cp.bootstrap();
    // The kinds of the stored CRDs are served from the first request on (apiextensions-apiserver).
    cp.crds = new CrdController(registry, systemClock, log.child({ subsystem: "apiextensions" }));
    await cp.crds.start();
    // A node's requests name it last in the subject; the NATS server lets a node publish only
    // under its own name (cluster/nats-auth.ts), so the name there is who asks.
    const byNode = <Req>(subject: (node: string) => string, handler: (node: string, req: Req) => Promise<unknown>, concurrent = true) => {
      const prefix = subject("");
      return serve(nc, subject("*"), log, (req: Req, msg) => handler(msg.subject.slice(prefix.length), req), { concurrent });
    };
    cp.subs = [
      byNode(Subjects.registerNode, (node, req: RegisterNodeRequest) => cp.registerNode(node, req), false),
      byNode(Subjects.podStatus, (node, req: PodStatusRequest) => cp.podStatus(node, req)),
      byNode(Subjects.podFinalize, (node, req: PodFinalizeRequest) => cp.podFinalize(node, req)),
      byNode(Subjects.heartbeat, (node, req: LeaseRenewRequest) => cp.renewLease(node, req)),
      byNode(Subjects.nodeStatus, (node, req: NodeStatusRequest) => cp.nodeStatus(node, req)),
    ];
    if (cfg.natsIssuer) {
      // A secured cluster: nodes join with the bootstrap token (control-plane/join.ts).
      const joins = await NodeJoin.start(registry, cfg.natsIssuer, cfg.bootstrapToken, cfg.bootstrapTokenTtlMs, log.child({ subsystem: "node-join" }));
      cp.subs.push(serve(nc, Subjects.joinNode, log, (req: JoinNodeRequest) => joins.join(req), { concurrent: true }));
    }
    // The process edge: the real clock and a random seed go in here, nowhere deeper.
    const seed = randomBytes(4).readUInt32LE(0);
    cp.controllers = new Controllers(registry, { nodeGraceMs: cfg.nodeGraceSeconds * 1000, seed, cronMinuteMs: cfg.cronMinuteSeconds * 1000 }, systemClock, log);
    await cp.controllers.start();
    // What a cloud-controller-manager and the cloud's load balancers would do for type=LoadBalancer.
    cp.cloud = new CloudProvider(registry, { lbCidr: cfg.lbCidr }, systemClock, log.child({ subsystem: "cloud-provider" }));
    await cp.cloud.start();
    cp.housekeeping = new Housekeeping(registry, { eventTtlMs: cfg.eventTtlSeconds * 1000, tombstoneTtlMs: cfg.tombstoneTtlSeconds * 1000, intervalMs: cfg.housekeepingSeconds * 1000 }, log);
    cp.housekeeping.start();
    // NetworkChaos status from the nodes' fault counters (the `fault` verb with stats).
    cp.chaosStatus = new NetworkChaosStatus(registry, (node, timeoutMs) => request<FaultStatsResponse>(nc, Subjects.node(node, "fault"), { stats: true }, timeoutMs), systemClock, log.child({ subsystem: "networkchaos-status" }));
    cp.chaosStatus.start();
    const pods: PodBackend = {
      exec: async (pod, argv) => {
        const nodeName = (pod.spec as { nodeName?: string }).nodeName;
        if (!nodeName) throw new Error(`pod ${pod.metadata.name} is not scheduled to a node`);
        return request<ExecResult>(nc, Subjects.node(nodeName, "exec"), { namespace: pod.metadata.namespace, pod: pod.metadata.name, argv }, 3_600_000);
      },
      logs: async (pod, opts) => {
        const nodeName = (pod.spec as { nodeName?: string }).nodeName;
        if (!nodeName) return "";
        return request<string>(nc, Subjects.node(nodeName, "logs"), { namespace: pod.metadata.namespace, pod: pod.metadata.name, tailLines: opts.tailLines }, 10_000);
      },
    };
    const tls = cfg.apiTlsCert
      ? { cert: readFileSync(cfg.apiTlsCert, "utf8"), key: readFileSync(cfg.apiTlsKey!, "utf8") }
      : await generateServingCert([cfg.apiHost === "0.0.0.0" ? "127.0.0.1" : cfg.apiHost]);
    if (!cfg.apiTlsCert) log.warn({}, "no KUBEWIRE_API_TLS_CERT: serving a fresh self-signed certificate (clients need insecure-skip-tls-verify)");
    // kube-apiserver's readyz "etcd" check, on the store that plays etcd's part here.
    const storeCheck = {
      name: "etcd",
      check: async () => {
        if (nc.isClosed()) throw new Error("the NATS connection is closed");
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`NATS JetStream KV (${nc.getServer()}) did not answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
        });
        try {
          await Promise.race([store.revision(), timeout]);
        } catch (err) {
          throw new Error(`the object store is unreachable: ${(err as Error)?.message ?? String(err)}`);
        } finally {
          clearTimeout(timer);
        }
      },
    };
    cp.api = new ApiServer(registry, cfg.apiToken, tls, pods, log, [storeCheck]);
    cp.apiAddress = await cp.api.listen(cfg.apiHost, cfg.apiPort);
    log.info({ clusterCidr: cfg.clusterCidr, serviceCidr: cfg.serviceCidr, lbCidr: cfg.lbCidr, proxyMode: cfg.proxyMode, api: `https://${cp.apiAddress.host}:${cp.apiAddress.port}` }, "control plane serving");
    // kube-apiserver's master controller: the `kubernetes` Service and its endpoints.
    const advertised = advertiseAddress(cfg.apiHost);
    if (!advertised) log.warn({}, "no non-loopback IPv4 address to advertise: the kubernetes Service gets no endpoints");
    await reconcileKubernetesService(registry, cfg.serviceCidr, cp.apiAddress.port, advertised).catch((err: unknown) => {
      log.error({ err }, "could not write the kubernetes Service");
    });
    // The cluster DNS add-on (kubeadm's coredns), kept as the addon manager keeps add-ons. The
    // cluster domain is the default one until the control plane's config has a setting for it.
    cp.addons = new AddonManager(registry, { serviceCidr: cfg.serviceCidr, zone: cfg.clusterDomain, clusterSettings: clusterSettingsOf(cfg) }, systemClock, log.child({ subsystem: "addon-manager" }));
    await cp.addons.start();
    return cp;
  }

  async stop(): Promise<void> {
    for (const sub of this.subs) sub.unsubscribe();
    await this.addons?.stop();
    await this.chaosStatus?.stop();
    await this.housekeeping?.stop();
    await this.cloud?.stop();
    await this.controllers?.stop();
    await this.api?.close();
    await this.crds?.stop();
  }

  private async bootstrap(): Promise<void> {
    for (const name of BOOTSTRAP_NAMESPACES) {
      try {
        if (await this.store.get(NAMESPACES, undefined, name)) continue;
      } catch (err) {
        // A bad value at the key (logged by the store): leave it for an operator, start anyway.
        if (err instanceof StoreError && err.code === StoreErrorCode.Corrupt) continue;
        throw err;
      }
      await this.registry.create(NAMESPACES, undefined, { apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch((err: unknown) => {
        if (!(err instanceof ApiError && err.status.code === 409)) throw err;
      });
    }
  }

  /** Registration: the node's Node object, with a pod CIDR and InternalIP allocated once and kept. */
  private async registerNode(name: string, body: RegisterNodeRequest): Promise<NodeRecord> {
    if (!isDns1123Label(name)) throw new RpcError(ErrorCode.Invalid, `node name ${JSON.stringify(name)} is not a DNS-1123 label`);
    if (body?.name !== name) throw new RpcError(ErrorCode.Forbidden, `node ${name} may register only itself, not ${JSON.stringify(body?.name)}`);
    if (typeof body.hostAddress !== "string") throw new RpcError(ErrorCode.Invalid, "hostAddress must be a string");
    const req = { name, hostAddress: body.hostAddress };
    const existing = await this.store.get(NODES, undefined, req.name);
    const known = existing && nodeRecordFrom(existing);
    let record: NodeRecord;
    if (known) {
      record = { ...known, hostAddress: req.hostAddress };
      this.log.info({ node: record.name, podCidr: record.podCidr }, "node re-registered");
    } else {
      const all = (await this.store.list(NODES, undefined)).items.map(nodeRecordFrom).filter((n): n is NodeRecord => !!n);
      const cidr = allocateNodeCidr(mustParseCidr(this.cfg.clusterCidr), this.cfg.nodeCidrMask, new Set(all.map((n) => n.podCidr)));
      if (cidr.kind === "exhausted") throw new RpcError(ErrorCode.Exhausted, cidr.reason);
      const ip = allocateAddress(mustParseCidr(this.cfg.underlayCidr), 2, new Set(all.map((n) => parseIpv4Addr(n.internalIp)!)));
      if (ip.kind === "exhausted") throw new RpcError(ErrorCode.Exhausted, ip.reason);
      record = { name: req.name, podCidr: formatCidr(cidr.value), internalIp: formatIpv4(ip.value), vtepMac: formatMac(vtepMac(ip.value)), hostAddress: req.hostAddress };
    }
    const desired = nodeObject(record, this.cfg.vni) as KubeObject;
    let node = existing;
    if (!node) {
      node = await this.registry.create(NODES, undefined, desired);
      this.log.info({ node: record.name, podCidr: record.podCidr, internalIp: record.internalIp }, "node registered");
    } else {
      // The rest of the spec (taints, unschedulable) stays: a kubelet's re-registration keeps them.
      node = await this.registry.update(NODES, undefined, record.name, { ...desired, metadata: { ...existing!.metadata, ...(desired.metadata as object), labels: { ...existing!.metadata.labels, ...(desired.metadata as { labels: Record<string, string> }).labels } }, spec: { ...(existing!.spec as object), ...(desired.spec as object) } } as KubeObject);
    }
    const now = rfc3339(new Date());
    const maxPods = cidrSize(mustParseCidr(record.podCidr)) - 3;
    const oldStatus = (node.status ?? {}) as { conditions?: unknown[] };
    await this.registry.update(NODES, undefined, record.name, {
      ...node,
      status: {
        ...oldStatus,
        addresses: [
          { type: "InternalIP", address: record.internalIp },
          { type: "Hostname", address: record.name },
        ],
        // An emulated node has no CPU or memory to run out of; its pod CIDR bounds its pods.
        capacity: { cpu: "2", memory: "4Gi", pods: String(maxPods) },
        allocatable: { cpu: "2", memory: "4Gi", pods: String(maxPods) },
        nodeInfo: {
          kubeletVersion: KUBELET_VERSION,
          kubeProxyVersion: KUBELET_VERSION,
          osImage: "kubewire emulated node",
          kernelVersion: process.version,
          containerRuntimeVersion: "kubewire://0.1.0",
          operatingSystem: "linux",
          architecture: "amd64",
          machineID: record.name,
          systemUUID: record.name,
          bootID: now,
        },
        conditions: oldStatus.conditions ?? [],
      },
    } as KubeObject, { subresource: "status" });
    return record;
  }

  /**
   * The kubelet's status update: IPs, Running, Ready, container statuses; or, for a pod whose
   * containers ran to completion, Succeeded/Failed with each container terminated. A finished
   * pod never goes back to Running (a late Running report is ignored).
   */
  private async podStatus(node: string, req: PodStatusRequest): Promise<{ ok: true }> {
    // A Running report and the terminal one of a quick Job pod can race: on a conflict, read again.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.podStatusOnce(node, req);
      } catch (err) {
        if (attempt >= 3 || !(err instanceof ApiError && err.status.code === 409)) throw err;
      }
    }
  }

  private async podStatusOnce(node: string, req: PodStatusRequest): Promise<{ ok: true }> {
    const pod = await this.store.get(PODS, req?.namespace, req?.name);
    if (!pod || pod.metadata.uid !== req.uid) throw new RpcError(ErrorCode.NotFound, `pod ${req?.namespace}/${req?.name} (${req?.uid}) not found`);
    mustBeBoundTo(node, pod);
    // A node hands out pod IPs from its own pod CIDR only (host-local IPAM); another address would
    // be some other node's pod's.
    const owner = await this.store.get(NODES, undefined, node);
    const podCidr = parseCidr(String((owner?.spec as { podCIDR?: unknown } | undefined)?.podCIDR ?? ""));
    const ip = typeof req.podIp === "string" ? parseIpv4Addr(req.podIp) : undefined;
    if (!podCidr || ip === undefined || !cidrContains(podCidr, ip)) throw new RpcError(ErrorCode.Forbidden, `node ${node} may not give pod ${req.namespace}/${req.name} the IP ${JSON.stringify(req.podIp)}: not in its pod CIDR`);
    const oldPhase = (pod.status as { phase?: string } | undefined)?.phase;
    if (oldPhase === "Succeeded" || oldPhase === "Failed") return { ok: true };
    const now = rfc3339(new Date());
    const containers = ((pod.spec as { containers?: Array<{ name: string; image: string }> }).containers ?? []);
    const term = req.terminated;
    const cond = (type: string, ok = true) => ({ type, status: ok ? "True" : "False", lastProbeTime: null, lastTransitionTime: now, ...(ok ? {} : { reason: "PodCompleted" }) });
    const terminatedState = term && {
      terminated: {
        exitCode: term.exitCode,
        reason: term.exitCode === 0 ? "Completed" : "Error",
        startedAt: term.startedAt,
        finishedAt: term.finishedAt,
        containerID: "",
      },
    };
    const status = {
      ...(pod.status as object),
      phase: term ? (term.exitCode === 0 ? "Succeeded" : "Failed") : "Running",
      conditions: term
        ? [cond("PodReadyToStartContainers", false), cond("Initialized"), cond("Ready", false), cond("ContainersReady", false), cond("PodScheduled")]
        : [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
      hostIP: req.hostIp,
      hostIPs: [{ ip: req.hostIp }],
      podIP: req.podIp,
      podIPs: [{ ip: req.podIp }],
      startTime: req.startTime,
      containerStatuses: containers.map((c) => ({
        name: c.name,
        state: terminatedState ? { terminated: { ...terminatedState.terminated, containerID: `kubewire://${pod.metadata.uid}-${c.name}` } } : { running: { startedAt: req.startTime } },
        lastState: {},
        ready: !term,
        restartCount: 0,
        image: c.image,
        imageID: `kubewire://${c.image}`,
        containerID: `kubewire://${pod.metadata.uid}-${c.name}`,
        started: !term,
      })),
      qosClass: "BestEffort",
    };
    try {
      await this.registry.update(PODS, req.namespace, req.name, { ...pod, status } as KubeObject, { subresource: "status" });
    } catch (err) {
      // A status the API refuses (a pod stored malformed before validation existed) is the
      // kubelet's problem to hear about, not a control-plane error with a stack trace.
      if (err instanceof ApiError && err.status.code >= 400 && err.status.code < 500 && err.status.code !== 409) throw new RpcError(ErrorCode.Invalid, err.status.message);
      throw err;
    }
    if (!term) {
      await this.registry.recordEvent(pod, "Normal", "Started", `Started container ${containers[0]?.name ?? "app"} (pod IP ${req.podIp})`, "kubelet");
    } else if (term.exitCode !== 0) {
      await this.registry.recordEvent(pod, "Warning", "BackOff", `Container ${containers[0]?.name ?? "app"} exited with code ${term.exitCode}`, "kubelet");
    }
    return { ok: true };
  }

  /**
   * The node-agent's Lease renewal, written as the kubelet's nodelease controller writes it
   * (k8s.io/component-helpers/apimachinery/lease/controller.go newLease): kube-node-lease/<node>,
   * holderIdentity the node, its leaseDurationSeconds, renewTime from the node's clock, owned
   * by the Node. Only for a node that exists: a deleted node's Lease goes with it.
   */
  private async renewLease(node: string, req: LeaseRenewRequest): Promise<{ ok: true }> {
    if (!isDns1123Label(node)) throw new RpcError(ErrorCode.Invalid, `node name ${JSON.stringify(node)} is not a DNS-1123 label`);
    if (typeof req?.renewTime !== "string" || parseTimeMs(req.renewTime) === undefined) throw new RpcError(ErrorCode.Invalid, "renewTime must be an RFC 3339 time");
    const duration = req.leaseDurationSeconds;
    if (!Number.isInteger(duration) || duration < 1 || duration > 3600) throw new RpcError(ErrorCode.Invalid, "leaseDurationSeconds must be an integer in [1, 3600]");
    for (let attempt = 1; ; attempt++) {
      try {
        const owner = await this.store.get(NODES, undefined, node);
        if (!owner) throw new RpcError(ErrorCode.NotFound, `node ${node} not found`);
        const existing = await this.store.get(LEASES, NODE_LEASE_NAMESPACE, node);
        const spec = { holderIdentity: node, leaseDurationSeconds: duration, renewTime: req.renewTime };
        const ownerReferences = [{ apiVersion: "v1", kind: "Node", name: node, uid: owner.metadata.uid! }];
        if (!existing) {
          await this.registry.create(LEASES, NODE_LEASE_NAMESPACE, { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: node, namespace: NODE_LEASE_NAMESPACE, ownerReferences }, spec });
          this.log.info({ node, leaseDurationSeconds: duration }, "node lease created");
        } else {
          await this.registry.update(LEASES, NODE_LEASE_NAMESPACE, node, { ...existing, metadata: { ...existing.metadata, ownerReferences }, spec: { ...(existing.spec as object), ...spec } });
        }
        return { ok: true };
      } catch (err) {
        // A conflict with another write of the Lease (or its creation racing ours): read again.
        if (attempt >= 3 || !(err instanceof ApiError && err.status.code === 409)) throw err;
      }
    }
  }

  /**
   * The kubelet's node status update (pkg/kubelet/kubelet_node_status.go tryUpdateNodeStatus):
   * its Ready condition, True (KubeletReady) or False (KubeletNotReady), heartbeat now; a
   * transition is recorded as the kubelet records it (NodeReady / NodeNotReady).
   */
  private async nodeStatus(name: string, body: NodeStatusRequest): Promise<{ ok: true }> {
    if (!isDns1123Label(name)) throw new RpcError(ErrorCode.Invalid, `node name ${JSON.stringify(name)} is not a DNS-1123 label`);
    if (body?.name !== name) throw new RpcError(ErrorCode.Forbidden, `node ${name} may update only its own status, not ${JSON.stringify(body?.name)}'s`);
    const req = body;
    if (typeof req.ready !== "boolean") throw new RpcError(ErrorCode.Invalid, "ready must be a boolean");
    const message = typeof req.message === "string" ? req.message.slice(0, 1024) : undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        const node = await this.store.get(NODES, undefined, req.name);
        if (!node) throw new RpcError(ErrorCode.NotFound, `node ${req.name} not found`);
        const typed = node as Parameters<typeof nodeReadyCondition>[0];
        const condition = nodeReadyCondition(typed, req.ready ? NodeReadiness.Ready : NodeReadiness.NotReady, new Date(), message);
        const conditions = typed.status?.conditions ?? [];
        const old = conditions.find((c) => c.type === "Ready");
        await this.registry.update(NODES, undefined, req.name, { ...node, status: { ...(node.status as object), conditions: [...conditions.filter((c) => c.type !== "Ready"), condition] } } as KubeObject, { subresource: "status" });
        if (old?.status !== condition.status) {
          const reason = req.ready ? "NodeReady" : "NodeNotReady";
          this.log.info({ node: req.name, ready: condition.status, was: old?.status }, "node posted its Ready condition");
          await this.registry.recordEvent(node, "Normal", reason, `Node ${req.name} status is now: ${reason}`, "kubelet");
        }
        return { ok: true };
      } catch (err) {
        if (attempt >= 3 || !(err instanceof ApiError && err.status.code === 409)) throw err;
      }
    }
  }

  private async podFinalize(node: string, req: PodFinalizeRequest): Promise<{ ok: true }> {
    const pod = await this.store.get(PODS, req?.namespace, req?.name);
    // Gone already, or a new pod of the same name: nothing of this node's is left to remove.
    if (!pod || pod.metadata.uid !== req.uid) return { ok: true };
    mustBeBoundTo(node, pod);
    try {
      await this.registry.delete(PODS, req.namespace, req.name, { gracePeriodSeconds: 0, preconditions: { uid: req.uid } });
    } catch (err) {
      // Already gone, or a new pod of the same name: nothing of ours is left to remove.
      if (!(err instanceof ApiError && (err.status.code === 404 || err.status.code === 409))) throw err;
    }
    return { ok: true };
  }
}

/**
 * NodeRestriction (plugin/pkg/admission/noderestriction): a node may change only the pods bound
 * to it. The subject says which node asks; the pod's spec.nodeName must be that node.
 */
function mustBeBoundTo(node: string, pod: KubeObject): void {
  const boundTo = (pod.spec as { nodeName?: unknown } | undefined)?.nodeName;
  if (boundTo !== node) throw new RpcError(ErrorCode.Forbidden, `node ${node} may not change pod ${pod.metadata.namespace}/${pod.metadata.name}: it is bound to ${typeof boundTo === "string" && boundTo ? boundTo : "no node"}`);
}
