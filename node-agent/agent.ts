/**
 * The node-agent's edges: NATS in and out. It registers the node, keeps the network in step
 * with the control plane's KV (peers and pods, level-triggered: every change recomputes the
 * whole desired state), carries VTEP frames over the NATS transport, and answers the CLI's
 * exec, trace, capture and status requests.
 */
import type { NatsConnection, Subscription } from "nats";
import { pack } from "msgpackr";
import { cidrContains, mustParseCidr } from "../cluster/addressing.ts";
import type { NodeAgentConfig } from "../cluster/config.ts";
import { nodeRecordFrom, podRecordFrom } from "../cluster/kube-objects.ts";
import { rfc3339 } from "../cluster/meta.ts";
import type { Logger } from "../cluster/log.ts";
import { RpcError, request, serve } from "../cluster/rpc.ts";
import {
  ErrorCode,
  Subjects,
  type CaptureRequest,
  type CapturedFrame,
  type ExecRequest,
  type FaultRequest,
  type FaultSpecRecord,
  type FaultStatsResponse,
  type ExecResult,
  type LeaseRenewRequest,
  type NodeStatusRequest,
  type NodeRecord,
  type LogsRequest,
  type NodeStatus,
  type NodeConvergence,
  type ObserveRequest,
  type PolicyStateRequest,
  type PolicyStateResponse,
  type ObserveResponse,
  type PodFinalizeRequest,
  type PodStatusRequest,
  type ProxyStatus,
  type RegisterNodeRequest,
  type TraceRequest,
  type LoadRequest,
  OBSERVE_REPLY_MAX,
  STREAM_ID_PATTERN,
} from "../cluster/types.ts";
import { NatsOverlayTransport } from "../overlay/nats-transport.ts";
import { IpProtocol, TcpFlag, emitTcp, formatIpv4, parseIpv4Addr } from "../overlay/wire/index.ts";
import { resourceByKind } from "../cluster/resources.ts";
import { ObjectStore, type KubeObject } from "../cluster/store.ts";
import { Informer, type ListerWatcher } from "../cluster/informer.ts";
import { systemClock } from "../cluster/clock.ts";
import { allocateAddress } from "../cluster/ipam.ts";
import { Datapath, Tracer } from "./datapath.ts";
import { ChaosSync } from "./faults/sync.ts";
import { FlowLog, OBSERVATION_NAMES } from "./flows.ts";
import { PolicyEngine } from "./policy/engine.ts";
import { policyRuleSet } from "./policy/ruleset.ts";
import { NodeNetwork, type PodNetwork } from "./node.ts";
import { completionPlan, startPodApps, type CompletionStep, type ContainerSpec } from "./apps/index.ts";
import { PodFs } from "./tools/fs.ts";
import { MEMORY_CHECK_MS, MemoryValve } from "./memory.ts";
import { lookupError, realClock, resolveName } from "./tools/common.ts";
import { QTYPE, encodeQuery } from "./dns/wire.ts";
import { runTool, TOOL_NAMES } from "./tools/index.ts";
import { leaseDurationSeconds, microTime, nodeStatusDue } from "./nodelease.ts";
import { LoadRuns } from "./load/runs.ts";
import type { ProxyBackend } from "./proxy/backend.ts";
import { createBackend } from "./proxy/index.ts";
import { ChangeTracker, proxyStateSummary, serviceKeyOf } from "./proxy/model.ts";
import { Proxier } from "./proxy/proxier.ts";
import { ProxySockets } from "./proxy/sockets.ts";
import { DnsStats, type DnsBackend } from "./apps/dns.ts";
import { ClusterDnsData } from "./dns/records.ts";
import { Upstream, parseUpstreams } from "./dns/upstream.ts";
import type { AnswerOptions } from "./dns/answer.ts";
import { parseCorefile, type CorefileConfig } from "../cluster/corefile.ts";
import { HostDns } from "./dns/host.ts";
import { podResolvConf } from "./dns/resolvconf.ts";
import { podHostsFile, podHostname } from "./dns/hosts.ts";
import { containerEnv, serviceEnvVars } from "./dns/env.ts";
import { nthAddress } from "../cluster/addressing.ts";
import { readFileSync } from "node:fs";

const TICK_MS = 200;
const NODES = resourceByKind("Node");
const PODS = resourceByKind("Pod");
const SERVICES = resourceByKind("Service");
const SLICES = resourceByKind("EndpointSlice");
const NAMESPACES = resourceByKind("Namespace");
const CONFIGMAPS = resourceByKind("ConfigMap");
const NETWORK_POLICIES = resourceByKind("NetworkPolicy");
const CLUSTER_NETWORK_POLICIES = resourceByKind("ClusterNetworkPolicy");
const NETWORK_CHAOS = resourceByKind("NetworkChaos");
/** kubeadm's Corefile values, used until the coredns ConfigMap is read (and if it never parses). */
const KUBEADM_DNS_TTL = 30;
/** kubeadm's clusterDNS: the 10th address of the service CIDR (10.96.0.10 for 10.96.0.0/12). */
const CLUSTER_DNS_OFFSET = 10;
/** Variables every container has before kubelet's (the image's PATH, the runtime's HOSTNAME and HOME). */
const BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export class NodeAgent {
  private readonly subs: Subscription[] = [];
  private readonly informers: Informer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private transport!: NatsOverlayTransport;
  private peers = new Map<string, NodeRecord>();
  /** Pod objects bound to this node, from the watch. */
  private readonly podObjects = new Map<string, KubeObject>();
  private readonly podUids = new Map<string, string>();
  private readonly reported = new Map<string, string>();
  private readonly finalizing = new Set<string>();
  private readonly podApps = new Map<string, () => void>();
  /** Each pod's emulated filesystem (dd, curl -o, sha256sum, nginx's docroot). */
  private readonly podFs = new Map<string, PodFs>();
  private readonly podLogs = new Map<string, string[]>();
  /** Run-to-completion pods whose containers have finished, by pod key (for the uid it ran as). */
  private readonly completed = new Map<string, { uid: string } & NonNullable<PodStatusRequest["terminated"]>>();
  private store!: ObjectStore;
  private backend: ProxyBackend | undefined;
  private proxier: Proxier | undefined;
  private proxySockets: ProxySockets | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The node's own Node object as its watch shows it (for its Ready condition). */
  private selfNode: KubeObject | undefined;
  /** Set once the node runs pods: only then does it post Ready. */
  private running = false;
  private statusPosted = false;
  private leaseInFlight = false;
  private statusInFlight = false;
  private leaseFailures = 0;
  /**
   * What the `kubernetes` plugin of a coredns pod on this node watches, kept for the whole node:
   * every Service, EndpointSlice, Pod and Namespace.
   */
  readonly dnsData = new ClusterDnsData();
  private readonly dnsStats = new DnsStats();
  private upstream: Upstream | undefined;
  /** The Corefile's `forward . ADDRESSES` upstream, when it names addresses rather than resolv.conf. */
  private corefileUpstream: { key: string; upstream: Upstream } | undefined;
  private dnsOptions!: AnswerOptions;
  /** The last Corefile that parsed (a bad edit keeps the previous one, as CoreDNS's reload does). */
  private corefile: CorefileConfig | undefined;
  private hostDns: HostDns | undefined;
  /** Services by namespace then name, as stored: kubelet's service lister for the env variables. */
  private readonly servicesByNs = new Map<string, Map<string, KubeObject>>();
  /** Each running pod's containers' environments, fixed when the pod started (as in a real container). */
  private readonly podEnv = new Map<string, Map<string, Record<string, string>>>();
  private dnsBackend!: DnsBackend;
  /**
   * NetworkPolicy and ClusterNetworkPolicy for this node's pods: fed every Pod, Namespace, Node
   * and policy, judged in the root netns's FORWARD hook (policy/ruleset.ts).
   */
  private policy!: PolicyEngine;
  /** The resourceVersion of each policy the engine holds, by "Kind/namespace/name". */
  private readonly policyVersions = new Map<string, string>();
  /** NetworkChaos -> this node's fault links (node-agent/faults/), fed by the informers. */
  private chaos!: ChaosSync;
  /** Every pod's IP -> "namespace/name", from the pods watch (flow records name their pods). */
  private readonly podByIp = new Map<number, string>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly cfg: NodeAgentConfig,
    private readonly log: Logger,
    readonly dp: Datapath,
    readonly net: NodeNetwork,
  ) {}

  static async start(nc: NatsConnection, cfg: NodeAgentConfig, log: Logger): Promise<NodeAgent> {
    const record = await registerWithRetry(nc, { name: cfg.nodeName, hostAddress: cfg.hostAddress }, log);
    const dp = new Datapath(cfg.nodeName, () => performance.now());
    let transport: NatsOverlayTransport | undefined;
    const subjectFor = (node: string) => Subjects.overlay(cfg.vni, node, cfg.nodeName);
    const net = new NodeNetwork(dp, record, cfg.vni, { transport: () => transport!, subjectFor }, mustParseCidr(cfg.underlayCidr), mustParseCidr(cfg.lbCidr));
    // Record times from the datapath's clock (sampled per drain, as cheap as a field read) on the wall's scale.
    if (cfg.flowBuffer > 0) dp.flows = new FlowLog(cfg.flowBuffer, cfg.nodeName, () => performance.timeOrigin + dp.clock());
    const agent = new NodeAgent(nc, cfg, log, dp, net);
    // The Lease is renewed from the start, as the kubelet starts its lease controller before its
    // pods; Ready is posted once the node serves pods; the periodic pod sync retries whatever
    // failed (a status update while the control plane restarted).
    agent.renewLease();
    agent.heartbeat = setInterval(() => {
      agent.renewLease();
      if (!agent.running) return;
      agent.postStatusIfDue();
      agent.scheduleSync();
    }, cfg.heartbeatSeconds * 1000);
    transport = new NatsOverlayTransport(nc, subjectFor, Subjects.overlay(cfg.vni, cfg.nodeName, "*"), (message, trace) => {
      net.receiveMessage(message, trace, (id) => agent.traceSink(id));
    });
    // Timers (TCP retransmits, delayed ACKs, fault delays) run on one timeout, re-armed for the
    // earliest deadline whenever the datapath goes idle.
    dp.onIdle = () => agent.armTimer();
    agent.transport = transport;
    agent.initDns();
    agent.policy = new PolicyEngine({ nodeName: cfg.nodeName });
    agent.chaos = new ChaosSync({
      node: cfg.nodeName,
      apply: (faults) => {
        net.setChaos(faults);
        log.info({ node: cfg.nodeName, faults: faults.map((f) => f.key) }, "network chaos applied");
      },
      wallNow: () => Date.now(),
      after: systemClock.after,
      warn: (fields, msg) => log.warn({ node: cfg.nodeName, ...fields }, msg),
    });
    net.root.netfilter.replace("policy", [policyRuleSet(agent.policy, (ip) => net.root.isLocalAddress(ip))]);
    await agent.watch();
    await agent.startHostDns();
    agent.serveVerbs();
    agent.valve = new MemoryValve();
    agent.valveTimer = setInterval(() => agent.valve!.check(), MEMORY_CHECK_MS);
    agent.timer = setInterval(() => net.tick(), TICK_MS);
    agent.running = true;
    agent.postStatusIfDue();
    log.info({ node: record.name, podCidr: record.podCidr, internalIp: record.internalIp, vtepMac: record.vtepMac }, "node-agent ready");
    return agent;
  }

  /** The kube-dns ClusterIP every pod's resolv.conf names and the host DNS port relays to. */
  private get clusterDnsIp(): number {
    return nthAddress(mustParseCidr(this.cfg.serviceCidr), CLUSTER_DNS_OFFSET);
  }

  private initDns(): void {
    this.upstream = new Upstream(parseUpstreams(this.cfg.dnsUpstream));
    this.applyCorefile(undefined);
    this.dnsBackend = {
      data: this.dnsData,
      options: () => this.dnsOptions,
      forward: (query, transport) => {
        const f = this.corefile?.forward;
        // No forward plugin in the Corefile: nothing to send outside the zone (SERVFAIL).
        if (this.corefile && !f) return Promise.resolve(undefined);
        return (f?.kind === "addresses" ? this.corefileUpstream!.upstream : this.upstream!).forward(query, transport);
      },
      stats: this.dnsStats,
    };
  }

  /**
   * The coredns ConfigMap's Corefile, as the `reload` plugin picks up an edit: zone, ttl, pods
   * mode and the forward target. A file that does not parse is logged and the previous
   * settings stay.
   */
  private applyCorefile(obj: KubeObject | undefined): void {
    if (obj) {
      const text = (obj as { data?: { Corefile?: unknown } }).data?.Corefile;
      const parsed = typeof text === "string" ? parseCorefile(text) : undefined;
      if (!parsed?.ok) {
        this.log.warn({ node: this.cfg.nodeName, error: parsed ? parsed.error.message : "no data.Corefile" }, "coredns Corefile not applied; keeping the previous one");
        return;
      }
      this.corefile = parsed.config;
      this.log.info({ node: this.cfg.nodeName, zone: parsed.config.zone, ttl: parsed.config.ttl, pods: parsed.config.podMode, forward: parsed.config.forward?.kind ?? "none" }, "coredns Corefile applied");
    }
    const c = this.corefile;
    const f = c?.forward;
    if (f?.kind === "addresses") {
      const key = `${f.addresses.join(",")}/${f.maxConcurrent ?? ""}`;
      if (this.corefileUpstream?.key !== key) {
        this.corefileUpstream?.upstream.close();
        this.corefileUpstream = { key, upstream: new Upstream(parseUpstreams(f.addresses), undefined, f.maxConcurrent) };
      }
    }
    this.dnsOptions = {
      zone: c?.zone ?? this.cfg.clusterDomain,
      ttl: c?.ttl ?? KUBEADM_DNS_TTL,
      podMode: c?.podMode ?? "insecure",
      endpointPodNames: c?.endpointPodNames ?? false,
      dnsService: { namespace: "kube-system", name: "kube-dns", ip: this.clusterDnsIp },
      random: this.dp.rng,
    };
  }

  /** The host DNS port; a port that cannot be bound costs that port only (logged), not the node. */
  private async startHostDns(): Promise<void> {
    this.hostDns = new HostDns({ nodeName: this.cfg.nodeName, hostAddress: this.cfg.hostAddress, port: this.cfg.dnsPort, root: this.net.root, dnsIp: this.clusterDnsIp, log: this.log });
    await this.hostDns.start().catch(() => {});
  }

  private valve: MemoryValve | undefined;
  private valveTimer: NodeJS.Timeout | undefined;
  private wake: NodeJS.Timeout | undefined;
  private wakeAt = Infinity;
  private armScheduled = false;

  /** Coalesced: after a burst of datapath work, one timeout for the earliest deadline. */
  armTimer(): void {
    if (this.armScheduled) return;
    this.armScheduled = true;
    setImmediate(() => {
      this.armScheduled = false;
      const d = this.dp.nextDeadline();
      if (d === undefined || d >= this.wakeAt) return;
      clearTimeout(this.wake);
      this.wakeAt = d;
      this.wake = setTimeout(() => {
        this.wakeAt = Infinity;
        this.dp.poll(this.dp.now());
        this.armTimer();
      }, Math.max(0, d - this.dp.now()));
    });
  }

  traceSink(traceId: string): (hop: import("../cluster/types.ts").TraceHop) => void {
    const subject = Subjects.trace(traceId, this.cfg.nodeName);
    return (hop) => this.nc.publish(subject, pack(hop));
  }

  /**
   * Nodes and Pods from the store through informers: list, then watch from the list's revision,
   * and when a watch ends or fails, relist (objects gone meanwhile come as deletions) and watch
   * again. The store skips (and counts) values that do not decode; a handler that throws on an
   * odd object is logged by the informer and the others go on.
   */
  private async watch(): Promise<void> {
    const store = await ObjectStore.open(this.nc, this.log, { bindOnly: true });
    this.store = store;
    const source: ListerWatcher = {
      list: async (r) => {
        const { items, resourceVersion } = await store.list(r, undefined);
        return { items, resourceVersion: String(resourceVersion) };
      },
      watch: (r, _namespace, resourceVersion, _opts, onEvent) => store.watch(r, undefined, Number(resourceVersion), onEvent),
    };
    let nodesReady!: () => void;
    const nodesListed = new Promise<void>((resolve) => (nodesReady = resolve));
    // Node objects carry every peer's pod CIDR, InternalIP and VTEP MAC (flannel's annotations).
    const nodes = new Informer(NODES, source, systemClock, this.log);
    nodes.onChange((obj, type) => {
      const record = type === "DELETED" ? undefined : nodeRecordFrom(obj);
      const name = obj.metadata.name!;
      if (record) this.peers.set(name, record);
      else this.peers.delete(name);
      if (type === "DELETED") this.policy.remove("Node", obj);
      else this.policy.upsert("Node", obj);
      this.chaos.observe("Node", obj, type === "DELETED");
      this.net.syncPeers([...this.peers.values()]);
      if (name === this.cfg.nodeName) this.selfNode = type === "DELETED" ? undefined : obj;
      if (name === this.cfg.nodeName && record) nodesReady();
      this.log.debug({ node: this.cfg.nodeName, peer: name, peers: this.peers.size - 1, event: type }, "peers synced");
    });
    this.informers.push(nodes);
    await nodes.start();
    await nodesListed;
    const pods = new Informer(PODS, source, systemClock, this.log);
    pods.onChange((obj, type) => {
      const key = `${obj.metadata.namespace}.${obj.metadata.name}`;
      const mine = (obj.spec as { nodeName?: unknown } | undefined)?.nodeName === this.cfg.nodeName;
      if (type === "DELETED" || !mine) this.podObjects.delete(key);
      else this.podObjects.set(key, obj);
      if (type === "DELETED") this.dnsData.remove("Pod", obj);
      else this.dnsData.upsert("Pod", obj);
      this.indexPodIp(obj, type === "DELETED");
      if (type === "DELETED") this.policy.remove("Pod", obj);
      else this.policy.upsert("Pod", obj);
      this.chaos.observe("Pod", obj, type === "DELETED");
      if (mine || type === "DELETED") this.scheduleSync();
    });
    this.informers.push(pods);
    await pods.start();
    const namespaces = new Informer(NAMESPACES, source, systemClock, this.log);
    namespaces.onChange((obj, type) => {
      if (type === "DELETED") {
        this.dnsData.remove("Namespace", obj);
        this.policy.remove("Namespace", obj);
      } else {
        this.dnsData.upsert("Namespace", obj);
        this.policy.upsert("Namespace", obj);
      }
    });
    this.informers.push(namespaces);
    await namespaces.start();
    // The Corefile, from kube-system's ConfigMaps only (a kubelet would mount just that one).
    const systemSource: ListerWatcher = {
      list: async (r) => {
        const { items, resourceVersion } = await store.list(r, "kube-system");
        return { items, resourceVersion: String(resourceVersion) };
      },
      watch: (r, _namespace, resourceVersion, _opts, onEvent) => store.watch(r, "kube-system", Number(resourceVersion), onEvent),
    };
    const configMaps = new Informer(CONFIGMAPS, systemSource, systemClock, this.log);
    configMaps.onChange((obj, type) => {
      if (obj.metadata.name === "coredns" && type !== "DELETED") this.applyCorefile(obj);
    });
    this.informers.push(configMaps);
    await configMaps.start();
    for (const [r, kind] of [[NETWORK_POLICIES, "NetworkPolicy"], [CLUSTER_NETWORK_POLICIES, "ClusterNetworkPolicy"]] as const) {
      const inf = new Informer(r, source, systemClock, this.log);
      inf.onChange((obj, type) => {
        const changed = type === "DELETED" ? this.policy.remove(kind, obj) : this.policy.upsert(kind, obj);
        const key = `${kind}/${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
        if (type === "DELETED") this.policyVersions.delete(key);
        else this.policyVersions.set(key, obj.metadata.resourceVersion ?? "");
        if (changed) this.log.debug({ node: this.cfg.nodeName, kind, name: obj.metadata.name, namespace: obj.metadata.namespace, event: type }, "policy state changed");
      });
      this.informers.push(inf);
      await inf.start();
    }
    const chaos = new Informer(NETWORK_CHAOS, source, systemClock, this.log);
    chaos.onChange((obj, type) => this.chaos.observe("NetworkChaos", obj, type === "DELETED"));
    this.informers.push(chaos);
    await chaos.start();
    await this.startProxy(source);
    // Every informer the DNS data comes from has listed: answers may now say NXDOMAIN.
    this.dnsData.markSynced();
  }

  /**
   * kube-proxy: Services and EndpointSlices through informers into the change tracker; the
   * proxier compiles them into the root netns's rules, and after each sync the real NodePort
   * and health-check sockets follow the state.
   */
  private async startProxy(source: ListerWatcher): Promise<void> {
    const cfg = this.cfg;
    const net = this.net;
    const tracker = new ChangeTracker(cfg.nodeName);
    this.backend = createBackend(cfg.proxyMode, {
      node: { name: cfg.nodeName, nodeIp: net.nodeIp, clusterCidr: mustParseCidr(cfg.clusterCidr), isLocal: (ip) => net.root.isLocalAddress(ip) },
      rng: this.dp.rng,
      ipvsScheduler: cfg.ipvsScheduler,
    });
    const backend = this.backend;
    net.root.conntrack.onDestroy = backend.connectionClosed ? (e) => backend.connectionClosed!(e) : undefined;
    this.proxySockets = new ProxySockets({
      nodeName: cfg.nodeName,
      hostAddress: cfg.hostAddress,
      nodeIp: net.nodeIp,
      outside: net.outside,
      claim: (ip) => net.claimOutsideAddress(ip),
      release: (ip) => net.releaseOutsideAddress(ip),
      emulated: [cfg.clusterCidr, cfg.serviceCidr, cfg.underlayCidr, cfg.lbCidr].map(mustParseCidr),
      log: this.log,
    });
    const sockets = this.proxySockets;
    this.proxier = new Proxier({
      backend,
      tracker,
      netfilter: net.root.netfilter,
      conntrack: net.root.conntrack,
      clock: { now: () => performance.now(), after: (ms, fn) => { const t = setTimeout(fn, ms); return () => clearTimeout(t); } },
      wallNow: () => Date.now(),
      // kube-proxy's defaults: --iptables-min-sync-period and --nftables-min-sync-period 1 s,
      // --ipvs-min-sync-period 0 (pkg/proxy/apis/config/v1alpha1/defaults.go).
      minSyncMs: backend.mode === "ipvs" ? 0 : 1000,
      onSynced: (state) => {
        sockets.sync(state);
        this.log.debug({ node: cfg.nodeName, servicePorts: state.servicePorts.length, syncMs: this.proxier?.stats.lastSyncMs }, "proxy rules synced");
      },
      onError: (err) => this.log.error({ node: cfg.nodeName, err: (err as Error)?.message ?? String(err) }, "proxy sync failed; the next sync is a full one"),
    });
    const proxier = this.proxier;
    const services = new Informer(SERVICES, source, systemClock, this.log);
    services.onChange((obj, type) => {
      const key = serviceKeyOf(obj, false);
      if (key === undefined) return;
      tracker.service(key, type === "DELETED" ? undefined : obj);
      proxier.requestSync();
      this.indexService(obj, type === "DELETED");
      if (type === "DELETED") this.dnsData.remove("Service", obj);
      else this.dnsData.upsert("Service", obj);
    });
    const slices = new Informer(SLICES, source, systemClock, this.log);
    slices.onChange((obj, type) => {
      const key = serviceKeyOf(obj, true);
      if (key === undefined) return;
      tracker.slice(key, obj.metadata.name!, type === "DELETED" ? undefined : obj);
      proxier.requestSync();
      if (type === "DELETED") this.dnsData.remove("EndpointSlice", obj);
      else this.dnsData.upsert("EndpointSlice", obj);
    });
    this.informers.push(services, slices);
    await Promise.all([services.start(), slices.start()]);
    this.log.info({ node: cfg.nodeName, mode: backend.mode }, "kube-proxy started");
  }

  private readonly podIpOf = new Map<string, number>();
  private indexPodIp(obj: KubeObject, deleted: boolean): void {
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const old = this.podIpOf.get(key);
    const ip = deleted ? undefined : parseIpv4Addr(String((obj.status as { podIP?: unknown } | undefined)?.podIP ?? ""));
    if (old !== undefined && old !== ip && this.podByIp.get(old) === key) this.podByIp.delete(old);
    if (ip === undefined) this.podIpOf.delete(key);
    else {
      this.podIpOf.set(key, ip);
      this.podByIp.set(ip, key);
    }
  }

  private indexService(obj: KubeObject, deleted: boolean): void {
    const ns = obj.metadata.namespace ?? "default";
    const name = obj.metadata.name!;
    let byName = this.servicesByNs.get(ns);
    if (deleted) {
      byName?.delete(name);
      if (byName?.size === 0) this.servicesByNs.delete(ns);
      return;
    }
    if (!byName) this.servicesByNs.set(ns, (byName = new Map()));
    byName.set(name, obj);
  }

  /**
   * kubelet's part of a pod's start that DNS needs: /etc/resolv.conf (GetPodDNS), /etc/hosts
   * and /etc/hostname, and each container's environment with the Service variables of the
   * Services that exist now (a Service made later is not in it, as in Kubernetes).
   */
  private podFiles(key: string, pod: KubeObject, podIp: string, fs: PodFs): void {
    const enc = new TextEncoder();
    const settings = { clusterDomain: this.cfg.clusterDomain, clusterDNS: [formatIpv4(this.clusterDnsIp)], hostResolvConf: hostResolvConf(), nodeIPs: [this.net.record.internalIp] };
    fs.write("/etc/resolv.conf", enc.encode(podResolvConf(pod, settings)));
    fs.write("/etc/hosts", enc.encode(podHostsFile(pod, podIp, this.cfg.clusterDomain)));
    const { hostname } = podHostname(pod);
    fs.write("/etc/hostname", enc.encode(`${hostname}\n`));
    const namespace = pod.metadata.namespace ?? "default";
    const spec = pod.spec as { enableServiceLinks?: unknown; containers?: unknown } | undefined;
    const services = [...(this.servicesByNs.get(namespace)?.values() ?? []), ...(namespace === "default" ? [] : [...(this.servicesByNs.get("default")?.values() ?? [])])];
    const serviceVars = serviceEnvVars(services, namespace, spec?.enableServiceLinks !== false);
    const envs = new Map<string, Record<string, string>>();
    const fields = { podIP: podIp, hostIP: this.net.record.internalIp, nodeName: this.cfg.nodeName };
    for (const c of Array.isArray(spec?.containers) ? spec.containers : []) {
      const name = (c as { name?: unknown })?.name;
      if (typeof name !== "string") continue;
      envs.set(name, { PATH: BASE_PATH, HOSTNAME: hostname, ...containerEnv(pod, name, serviceVars, fields), HOME: "/root" });
    }
    this.podEnv.set(key, envs);
  }

  /** Bad values the store skipped, and objects the informers skipped (the status verb's counters). */
  private badObjectCounters(): Record<string, number> {
    return {
      store_bad_objects_total: this.store?.badObjects ?? 0,
      store_bad_keys: this.store?.badKeys.size ?? 0,
      informer_skipped_objects_total: this.informers.reduce((n, i) => n + i.skipped, 0),
    };
  }

  /**
   * One renewal of kube-node-lease/<node> (through the control plane: a node writes no cluster
   * state itself). One at a time; a failure is retried on the next tick, logged once per outage.
   */
  private renewLease(): void {
    if (this.leaseInFlight) return;
    this.leaseInFlight = true;
    const node = this.cfg.nodeName;
    const req: LeaseRenewRequest = { renewTime: microTime(new Date()), leaseDurationSeconds: leaseDurationSeconds(this.cfg.heartbeatSeconds) };
    request(this.nc, Subjects.heartbeat(node), req, Math.max(1000, this.cfg.heartbeatSeconds * 1000))
      .then(() => {
        if (this.leaseFailures > 0) this.log.info({ node, failures: this.leaseFailures }, "node lease renewed again");
        this.leaseFailures = 0;
      })
      .catch((err: unknown) => {
        if (this.leaseFailures++ === 0) this.log.warn({ node, err: (err as Error)?.message ?? String(err) }, "node lease renewal failed; retrying every renew interval");
      })
      .finally(() => (this.leaseInFlight = false));
  }

  /** The kubelet's node status update: Ready, when it changed or is due again. */
  private postStatusIfDue(): void {
    if (this.statusInFlight || !nodeStatusDue(this.selfNode, true, this.statusPosted, Date.now())) return;
    this.statusInFlight = true;
    const node = this.cfg.nodeName;
    request(this.nc, Subjects.nodeStatus(node), { name: node, ready: true } satisfies NodeStatusRequest, 5000)
      .then(() => {
        if (!this.statusPosted) this.log.info({ node }, "node status posted: Ready");
        this.statusPosted = true;
      })
      .catch((err: unknown) => this.log.warn({ node, err: (err as Error)?.message ?? String(err) }, "node status update failed; retrying"))
      .finally(() => (this.statusInFlight = false));
  }

  private syncScheduled = false;
  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    setImmediate(() => {
      this.syncScheduled = false;
      // Never an unhandled rejection: a failed sync is logged, and the next event or heartbeat retries.
      this.syncPods().catch((err: unknown) => this.log.error({ node: this.cfg.nodeName, err }, "pod sync failed"));
    });
  }

  /**
   * Converges this node's pod networks to the Pod objects bound to it (the kubelet's job with
   * the CNI plugin): plumb new pods with an IP from the node's CIDR, report their status, tear
   * down deleted or terminating ones and confirm the graceful deletion.
   */
  private async syncPods(): Promise<void> {
    const desired = new Map<string, KubeObject>();
    const terminating: KubeObject[] = [];
    for (const [key, pod] of this.podObjects) {
      if (pod.metadata.deletionTimestamp) terminating.push(pod);
      else desired.set(key, pod);
    }
    for (const key of this.net.podKeys()) {
      const have = this.net.pod(key)!;
      const want = desired.get(key);
      if (want && this.podUids.get(key) === want.metadata.uid) continue;
      this.podApps.get(key)?.();
      this.podApps.delete(key);
      this.podFs.delete(key);
      this.podEnv.delete(key);
      this.completed.delete(key);
      this.net.removePod(key);
      this.podUids.delete(key);
      this.appendLog(key, "pod network removed");
      this.log.info({ node: this.cfg.nodeName, pod: have.record.name, namespace: have.record.namespace }, "pod network removed");
    }
    const used = new Set<number>();
    for (const pod of this.podObjects.values()) {
      const ip = parseIpv4Addr(podRecordFrom(pod).podIp);
      if (ip !== undefined) used.add(ip);
    }
    for (const key of this.net.podKeys()) used.add(this.net.pod(key)!.ip);
    for (const [key, pod] of desired) {
      if (this.net.pod(key)) continue;
      try {
        this.plumb(key, pod, used);
      } catch (err) {
        // One pod that cannot be plumbed costs that pod, not the node's other pods.
        this.log.error({ node: this.cfg.nodeName, pod: key, err }, "pod network add failed");
      }
    }
    this.reportAndFinalize(desired, terminating);
  }

  private plumb(key: string, pod: KubeObject, used: Set<number>): void {
    const record = podRecordFrom(pod);
    let ip = parseIpv4Addr(record.podIp);
    if (ip === undefined || !cidrContains(this.net.podCidr, ip)) {
      const allocated = allocateAddress(this.net.podCidr, 2, used);
      if (allocated.kind === "exhausted") {
        this.log.error({ node: this.cfg.nodeName, pod: record.name, reason: allocated.reason }, "no pod IP left");
        return;
      }
      ip = allocated.value;
    }
    used.add(ip);
    const plumbed = this.net.addPod(key, { ...record, podIp: formatIpv4(ip) });
    this.podUids.set(key, pod.metadata.uid!);
    this.podApps.set(key, this.startApps(plumbed, key, pod, formatIpv4(ip)));
    this.appendLog(key, `pod network ready: ${formatIpv4(ip)}/${this.net.podCidr.prefix} on eth0 via ${plumbed.hostVeth.name}`);
    this.log.info({ node: this.cfg.nodeName, pod: record.name, namespace: record.namespace, podIp: formatIpv4(ip), veth: plumbed.hostVeth.name }, "pod network added");
  }

  private reportAndFinalize(desired: Map<string, KubeObject>, terminating: KubeObject[]): void {
    for (const [key, pod] of desired) {
      const plumbed = this.net.pod(key);
      if (!plumbed || this.reported.get(key) === pod.metadata.uid) continue;
      const status = pod.status as { podIP?: string; phase?: string } | undefined;
      const done = this.completed.get(key);
      const terminated = done && done.uid === pod.metadata.uid ? { exitCode: done.exitCode, startedAt: done.startedAt, finishedAt: done.finishedAt } : undefined;
      const finished = status?.phase === "Succeeded" || status?.phase === "Failed";
      if (finished || (!terminated && status?.phase === "Running" && status.podIP === formatIpv4(plumbed.ip))) {
        this.reported.set(key, pod.metadata.uid!);
        continue;
      }
      this.reported.set(key, pod.metadata.uid!);
      void request(this.nc, Subjects.podStatus(this.cfg.nodeName), {
        namespace: plumbed.record.namespace,
        name: plumbed.record.name,
        uid: pod.metadata.uid!,
        podIp: formatIpv4(plumbed.ip),
        hostIp: this.net.record.internalIp,
        startTime: terminated?.startedAt ?? rfc3339(new Date()),
        ...(terminated ? { terminated } : {}),
      } satisfies PodStatusRequest).catch((err: Error) => {
        // Retried on the next sync (the periodic one if nothing else changes).
        this.reported.delete(key);
        this.log.warn({ node: this.cfg.nodeName, pod: plumbed.record.name, err: err.message }, "pod status update failed");
      });
    }
    for (const pod of terminating) {
      if (this.finalizing.has(pod.metadata.uid!)) continue;
      this.finalizing.add(pod.metadata.uid!);
      void request(this.nc, Subjects.podFinalize(this.cfg.nodeName), { namespace: pod.metadata.namespace!, name: pod.metadata.name!, uid: pod.metadata.uid! } satisfies PodFinalizeRequest)
        .then(() => this.log.info({ node: this.cfg.nodeName, pod: pod.metadata.name, namespace: pod.metadata.namespace }, "pod terminated"))
        .catch((err: Error) => this.log.warn({ node: this.cfg.nodeName, pod: pod.metadata.name, err: err.message }, "pod finalize failed"))
        .finally(() => this.finalizing.delete(pod.metadata.uid!));
    }
  }

  /** The coredns pods' counters on this node and the upstream's. */
  private dnsCounters(): Record<string, number> {
    const st = this.dnsStats;
    return {
      dns_requests_total: st.requests,
      dns_udp_requests_total: st.udpRequests,
      dns_tcp_requests_total: st.tcpRequests,
      dns_malformed_dropped_total: st.malformedDropped,
      dns_formerr_total: st.formerr,
      dns_notimp_total: st.notimp,
      dns_nxdomain_total: st.nxdomain,
      dns_servfail_total: st.servfail,
      dns_truncated_total: st.truncated,
      dns_forwarded_total: st.forwarded,
      dns_forward_failures_total: st.forwardFailures,
      dns_forward_refused_total: st.forwardRefused,
      dns_upstream_unmatched_total: this.upstream?.unmatched ?? 0,
    };
  }

  /** kube-proxy's sync counters (its /metrics sync_proxy_rules_* in spirit). */
  private proxyCounters(): Record<string, number> {
    const st = this.proxier?.stats;
    if (!st) return {};
    return {
      proxy_syncs_total: st.syncs,
      proxy_full_syncs_total: st.fullSyncs,
      proxy_partial_syncs_total: st.partialSyncs,
      proxy_sync_failures_total: st.failures,
      proxy_last_sync_ms: st.lastSyncMs,
      proxy_service_ports: st.servicePorts,
      proxy_stale_udp_entries_deleted_total: st.staleUdpEntriesDeleted,
    };
  }

  /** TCP counters summed over the node's netns (Linux's /proc/net/netstat TcpExt, node-wide). */
  private tcpCounters(): Record<string, number> {
    const sum: Record<string, number> = {};
    const add = (c: object) => {
      for (const [k, v] of Object.entries(c)) {
        if (typeof v !== "number") continue;
        const name = `tcp_${k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`)}_total`;
        sum[name] = (sum[name] ?? 0) + v;
      }
    };
    add(this.net.root.tcp.counters);
    let podConntrack = 0;
    for (const key of this.net.podKeys()) {
      const pod = this.net.pod(key)!;
      add(pod.ns.tcp.counters);
      podConntrack += pod.ns.conntrack.size;
    }
    sum.pod_conntrack_entries = podConntrack;
    return sum;
  }

  /** The pod's containers as emulated apps (HTTP on TCP ports, UDP echo, agnhost netexec, nginx). */
  private startApps(pod: PodNetwork, key: string, obj: KubeObject, podIp: string): () => void {
    const containers: ContainerSpec[] = pod.record.containers ?? [{ name: "app", image: "", ports: pod.record.ports }];
    const fs = new PodFs();
    this.podFs.set(key, fs);
    this.podFiles(key, obj, podIp, fs);
    const spec = obj.spec as { restartPolicy?: unknown } | undefined;
    const steps = completionPlan(containers, typeof spec?.restartPolicy === "string" ? spec.restartPolicy : undefined, new Set(TOOL_NAMES));
    if (steps) {
      const phase = (obj.status as { phase?: unknown } | undefined)?.phase;
      // Already finished (this agent restarted): containers do not run twice.
      if (phase === "Succeeded" || phase === "Failed") return () => {};
      return this.runToCompletion(pod, key, obj.metadata.uid!, steps, fs);
    }
    const apps = startPodApps({ podName: pod.record.name, tcp: pod.ns.tcp, udp: pod.ns, log: (line) => this.appendLog(key, line), now: () => new Date(), fs, dns: this.dnsBackend }, containers);
    return () => apps.stop();
  }

  /**
   * A Job pod's containers, one after the other: each step's output goes to the pod log as the
   * program wrote it; the first non-zero exit code is the pod's. Then the status reports it.
   */
  private runToCompletion(pod: PodNetwork, key: string, uid: string, steps: CompletionStep[], fs: PodFs): () => void {
    let stopped = false;
    const startedAt = rfc3339(new Date());
    const envs = this.podEnv.get(key);
    const ctx = { ns: pod.ns, tcp: pod.ns.tcp, podName: pod.record.name, clock: realClock, conntrack: pod.ns.conntrack, fs, env: envs?.values().next().value, random: this.dp.rng };
    const run = async (argv: string[]): Promise<ExecResult> => {
      const [name, ...args] = argv;
      switch (name) {
        case "echo":
          return { exitCode: 0, stdout: `${args.join(" ")}\n`, stderr: "" };
        case "true":
          return { exitCode: 0, stdout: "", stderr: "" };
        case "false":
          return { exitCode: 1, stdout: "", stderr: "" };
        case "exit":
          return { exitCode: Number(args[0] ?? 0) & 0xff, stdout: "", stderr: "" };
        case "sleep": {
          const seconds = Number(args[0] ?? "0");
          if (!Number.isFinite(seconds) || seconds < 0) return { exitCode: 1, stdout: "", stderr: `sleep: invalid number '${args[0]}'\n` };
          await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
          return { exitCode: 0, stdout: "", stderr: "" };
        }
        default:
          return runTool(ctx, argv);
      }
    };
    void (async () => {
      let exitCode = 0;
      for (const step of steps) {
        if (stopped) return;
        this.log.info({ node: this.cfg.nodeName, pod: pod.record.name, container: step.container, argv: step.argv }, "container started (runs to completion)");
        const res = await run(step.argv).catch((err: unknown): ExecResult => ({ exitCode: 1, stdout: "", stderr: `${(err as Error)?.message ?? String(err)}\n` }));
        const prefix = steps.length > 1 ? `[${step.container}] ` : "";
        for (const text of [res.stdout, res.stderr]) {
          const lines = text.split("\n");
          if (lines[lines.length - 1] === "") lines.pop();
          for (const line of lines) this.appendLog(key, `${prefix}${line}`, { raw: true });
        }
        if (res.exitCode !== 0 && exitCode === 0) exitCode = res.exitCode;
      }
      if (stopped) return;
      this.completed.set(key, { uid, exitCode, startedAt, finishedAt: rfc3339(new Date()) });
      this.log.info({ node: this.cfg.nodeName, pod: pod.record.name, exitCode }, "pod ran to completion");
      this.reported.delete(key);
      this.scheduleSync();
    })();
    return () => {
      stopped = true;
    };
  }

  private appendLog(key: string, line: string, opts: { raw?: boolean } = {}): void {
    let lines = this.podLogs.get(key);
    if (!lines) this.podLogs.set(key, (lines = []));
    lines.push(opts.raw ? line : `${new Date().toISOString()} ${line}`);
    // Trimmed in batches: a busy app logs a line per request, and a shift per line is O(n).
    if (lines.length > 1100) lines.splice(0, lines.length - 1000);
  }

  private findPod(namespace: string, name: string): PodNetwork {
    const pod = this.net.pod(`${namespace ?? "default"}.${name}`);
    if (!pod) throw new RpcError(ErrorCode.NotFound, `pod "${name}" not found on node ${this.cfg.nodeName}`);
    return pod;
  }

  private serveVerbs(): void {
    const node = this.cfg.nodeName;
    const on = <Req, Res>(verb: Parameters<typeof Subjects.node>[1], handler: (req: Req) => Promise<Res>) =>
      this.subs.push(serve(this.nc, Subjects.node(node, verb), this.log, handler, { concurrent: true }));

    on("status", async (): Promise<NodeStatus> => ({
      node: this.net.record,
      ...(this.nc.info?.server_name ? { natsServer: this.nc.info.server_name } : {}),
      pods: this.net.podKeys(),
      devices: this.net.devices(),
      counters: {
        ...this.dp.counters.snapshot(),
        overlay_tx_messages_total: this.transport.stats.messages,
        overlay_tx_frames_total: this.transport.stats.frames,
        conntrack_entries: this.net.root.conntrack.size,
        neighbor_entries: this.net.root.neighbors.size,
        reassembly_bytes: this.net.root.reassemblyMemory,
        fdb_entries: this.net.bridge.fdb.size,
        rss_bytes: process.memoryUsage().rss,
        heap_used_bytes: process.memoryUsage().heapUsed,
        heap_total_bytes: process.memoryUsage().heapTotal,
        array_buffer_bytes: process.memoryUsage().arrayBuffers,
        memory_valve_collections_total: this.valve?.collections ?? 0,
        ...this.tcpCounters(),
        ...this.badObjectCounters(),
        ...this.proxyCounters(),
        ...this.dnsCounters(),
        flows_total: this.dp.flows?.total ?? 0,
        flows_evicted_total: this.dp.flows?.evicted ?? 0,
      },
    }));

    on("proxy", async (): Promise<ProxyStatus> => ({
      mode: this.backend?.mode ?? "",
      servicePorts: this.proxier?.stats.servicePorts ?? 0,
      syncs: this.proxier?.stats.syncs ?? 0,
      programmingLatenciesMs: this.proxier?.programmingLatencies() ?? [],
      programmingLatenciesTotal: this.proxier?.latencyTotal ?? 0,
    }));

    on("exec", async (req: ExecRequest): Promise<ExecResult> => {
      const argv = Array.isArray(req.argv) ? req.argv.filter((a) => typeof a === "string") : [];
      if (!req.pod) {
        // `kubewire exec --node NODE`: the node's root netns, with the node-level tools.
        this.log.info({ node, argv }, "exec on node");
        return runTool({ ns: this.net.root, tcp: this.net.root.tcp, podName: node, clock: realClock, conntrack: this.net.root.conntrack, proxyDump: (tool, args) => this.backend?.dump(tool, args) }, argv);
      }
      const pod = this.findPod(req.namespace, req.pod);
      this.log.info({ node, pod: req.pod, container: req.container, argv }, "exec");
      this.appendLog(`${req.namespace ?? "default"}.${req.pod}`, `exec: ${argv.join(" ")}`);
      const envs = this.podEnv.get(pod.key);
      const env = envs?.get(req.container ?? "") ?? envs?.values().next().value;
      return runTool({ ns: pod.ns, tcp: pod.ns.tcp, podName: pod.record.name, clock: realClock, conntrack: pod.ns.conntrack, fs: this.podFs.get(pod.key), env, random: this.dp.rng }, argv);
    });

    on("fault", async (req: FaultRequest): Promise<{ applied: true } | FaultStatsResponse> => {
      // The NetworkChaos status controller's poll: what each fault applied here did.
      if (req?.stats === true) return { node, faults: [...this.net.chaosCounters].map(([key, c]) => ({ key, ...c })) };
      const target = req.pod ? { pod: `${req.namespace ?? "default"}.${req.pod}` } : {};
      const spec = { egress: checkFault(req.egress), ingress: checkFault(req.ingress) };
      if (!this.net.setFault(target, spec)) throw new RpcError(ErrorCode.NotFound, `pod "${req.pod}" not found on node ${node}`);
      this.log.info({ node, pod: req.pod, egress: spec.egress, ingress: spec.ingress }, "fault set");
      return { applied: true };
    });

    on("observe", async (req: ObserveRequest): Promise<ObserveResponse> => {
      const flows = this.dp.flows;
      if (!flows) return { flows: [], total: 0, evicted: 0, enabled: false };
      let ips: Set<number> | undefined;
      if (typeof req?.pod === "string" || typeof req?.namespace === "string") {
        ips = new Set();
        for (const [key, ip] of this.podIpOf) {
          const [ns, name] = key.split("/");
          if ((req.namespace === undefined || req.namespace === ns) && (req.pod === undefined || req.pod === name)) ips.add(ip);
        }
      }
      const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
      const records = flows.query({
        since: num(req?.since),
        verdict: req?.verdict === "DROPPED" || req?.verdict === "FORWARDED" ? req.verdict : undefined,
        reason: typeof req?.reason === "string" ? req.reason : undefined,
        port: num(req?.port),
        ips,
        observations: Array.isArray(req?.types) ? OBSERVATION_NAMES.filter((n) => req.types!.includes(n)) : undefined,
        reply: typeof req?.reply === "boolean" ? req.reply : undefined,
        limit: Math.min(num(req?.limit) ?? OBSERVE_REPLY_MAX, OBSERVE_REPLY_MAX) + 1,
      });
      // One NATS reply must stay under the server's max_payload (1 MiB): the newest OBSERVE_REPLY_MAX.
      const truncated = records.length > OBSERVE_REPLY_MAX;
      if (truncated) records.shift();
      return {
        total: flows.total,
        evicted: flows.evicted,
        enabled: true,
        truncated,
        flows: records.map((r) => ({
          ...r,
          src: formatIpv4(r.src),
          dst: formatIpv4(r.dst),
          ...(this.podByIp.has(r.src) ? { srcPod: this.podByIp.get(r.src)! } : {}),
          ...(this.podByIp.has(r.dst) ? { dstPod: this.podByIp.get(r.dst)! } : {}),
        })),
      };
    });

    on("policy", async (req: PolicyStateRequest): Promise<PolicyStateResponse> => {
      const rv = this.policyVersions.get(`${req?.kind}/${req?.namespace ?? ""}/${req?.name}`);
      return { present: rv !== undefined, ...(rv !== undefined ? { resourceVersion: rv } : {}), generation: this.policy.generation };
    });

    on("converged", async (): Promise<NodeConvergence> => ({
      peerRoutes: this.net.peerRoutes(),
      // Pod keys are "namespace.name": a namespace has no dot, so the first one splits them.
      pods: this.net.podKeys().map((k) => k.replace(".", "/")).sort(),
      proxy: proxyStateSummary(this.proxier?.state ?? { servicePorts: [] }),
      policies: Object.fromEntries(this.policyVersions),
    }));

    on("logs", async (req: LogsRequest): Promise<string> => {
      const lines = this.podLogs.get(`${req.namespace}.${req.pod}`) ?? [];
      const shown = req.tailLines !== undefined && req.tailLines >= 0 ? lines.slice(-req.tailLines) : lines;
      return shown.map((l) => `${l}\n`).join("");
    });

    on("trace", async (req: TraceRequest): Promise<{ started: true }> => {
      const pod = this.findPod(req.namespace, req.pod);
      // A name is resolved first, as the pod's own programs would (its resolv.conf, on the wire).
      const ctx = { ns: pod.ns, tcp: pod.ns.tcp, podName: pod.record.name, clock: realClock, fs: this.podFs.get(pod.key), random: this.dp.rng };
      const name = typeof req.dst === "string" ? req.dst : "";
      const resolved = parseIpv4Addr(name) === undefined && name !== "" ? await resolveName(ctx, name, 5000) : undefined;
      if (resolved && resolved.kind !== "found") throw new RpcError(ErrorCode.NotFound, `${pod.record.name} cannot resolve ${JSON.stringify(name)}: ${lookupError(resolved)}`);
      const dst = resolved?.kind === "found" ? resolved.addresses[0] : parseIpv4Addr(name);
      if (dst === undefined) throw new RpcError(ErrorCode.Invalid, `not an IPv4 address or a name: ${JSON.stringify(req.dst)}`);
      const tr = new Tracer(req.traceId, node, 0, this.traceSink(req.traceId));
      if (resolved?.kind === "found") tr.hop(`${pod.record.name} resolver`, `${name} is ${resolved.canonical} ${formatIpv4(dst)} (${resolved.source === "dns" ? "DNS, per /etc/resolv.conf" : "/etc/hosts"})`);
      const protocol = req.protocol ?? "icmp";
      const port = Number(req.port);
      if (protocol !== "icmp" && !(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new RpcError(ErrorCode.Invalid, `a ${protocol} probe needs a port in 1-65535, got ${JSON.stringify(req.port)}`);
      const res =
        protocol === "tcp" ? sendTraceSyn(pod, dst, port, tr, tracePort(this.dp.rng))
        : protocol === "udp" ? pod.ns.sendUdp(dst, port, tracePort(this.dp.rng), udpProbePayload(port, req.query, this.cfg.clusterDomain, this.dp.rng), { tr })
        : pod.ns.sendIcmp(dst, { kind: "echoRequest", ident: 0x7472, seq: 1, data: new Uint8Array(56) }, { tr });
      this.armTimer();
      if (res.kind !== "sent") tr.hop(`${pod.record.name} eth0`, `send failed: ${res.kind}`, "dropped");
      return { started: true };
    });

    // `kubewire load`: load clients and servers in this node's pods (node-agent/load/).
    const loads = new LoadRuns({ node, findPod: (ns, name) => this.findPod(ns, name), rootConntrack: this.net.root.conntrack, now: () => this.dp.now(), publish: (subject, data) => this.nc.publish(subject, data) });
    on("load", async (req: LoadRequest) => loads.handle(req));

    on("capture", async (req: CaptureRequest): Promise<{ started: true }> => {
      if (typeof req.stream !== "string" || !STREAM_ID_PATTERN.test(req.stream)) throw new RpcError(ErrorCode.Invalid, "capture: want a stream id (letters, digits, - and _)");
      const subject = Subjects.stream(node, req.stream);
      if (!this.net.devices().includes(req.dev)) {
        throw new RpcError(ErrorCode.NotFound, `device "${req.dev}" not found on node ${node} (devices: ${this.net.devices().join(", ")})`);
      }
      let captured = 0;
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        remove();
        clearTimeout(timer);
        this.nc.publish(subject, new Uint8Array(0));
        this.log.info({ node, dev: req.dev, frames: captured }, "capture finished");
      };
      const remove = this.dp.addTap(req.dev, (frame) => {
        const msg: CapturedFrame = { timestampMicros: Date.now() * 1000, frame };
        this.nc.publish(subject, pack(msg));
        if (req.count !== undefined && ++captured >= req.count) finish();
      });
      timer = setTimeout(finish, (req.seconds ?? 60) * 1000);
      this.log.info({ node, dev: req.dev, count: req.count, seconds: req.seconds }, "capture started");
      return { started: true };
    });
  }

  async stop(): Promise<void> {
    clearTimeout(this.wake);
    clearInterval(this.valveTimer);
    clearInterval(this.timer);
    clearInterval(this.heartbeat);
    for (const i of this.informers) i.stop();
    this.chaos?.stop();
    this.proxier?.stop();
    this.proxySockets?.close();
    this.hostDns?.close();
    this.upstream?.close();
    this.corefileUpstream?.upstream.close();
    for (const s of this.subs) s.unsubscribe();
    await this.transport.close();
  }
}

/**
 * A probe's source port: above the ephemeral range (32768-60999) the pod's own sockets take
 * theirs from, so a probe never meets a connection of the pod's in TIME-WAIT.
 */
function tracePort(rng: () => number): number {
  return 61000 + Math.floor(rng() * 4535);
}

/**
 * What a UDP probe carries: to port 53 a DNS query (A, for `query` or the kubernetes Service's
 * name), so a DNS server answers and the lookup's path, out and back, is traced; elsewhere a
 * line of text.
 */
function udpProbePayload(port: number, query: string | undefined, zone: string, rng: () => number): Uint8Array {
  if (port !== 53) return new TextEncoder().encode("kubewire trace\n");
  return encodeQuery({ id: Math.floor(rng() * 0x10000), name: query ?? `kubernetes.default.svc.${zone}`, type: QTYPE.A });
}

/**
 * A TCP SYN from the pod with the tracer attached: the connection is not the pod's (its stack
 * answers the SYN-ACK with a RST), only its path is.
 */
function sendTraceSyn(pod: PodNetwork, dst: number, port: number, tr: Tracer, srcPort: number) {
  const syn = { srcPort, dstPort: port, seq: 0x7472_6163, ack: 0, flags: TcpFlag.SYN, window: 64240, urgentPointer: 0, options: new Uint8Array(0) };
  return pod.ns.send(dst, IpProtocol.TCP, 20, (buf, off, src) => emitTcp(syn, new Uint8Array(0), buf, off, { src, dst }), { tr });
}

/** Validates a fault spec from the wire: probabilities in [0, 1], times in [0, 60 s]. */
function checkFault(spec: FaultSpecRecord | undefined): FaultSpecRecord | undefined {
  if (spec === undefined || spec === null) return undefined;
  if (typeof spec !== "object") throw new RpcError(ErrorCode.Invalid, "fault spec must be an object");
  const out: FaultSpecRecord = {};
  for (const k of ["loss", "duplicate", "reorder", "corrupt"] as const) {
    const v = spec[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw new RpcError(ErrorCode.Invalid, `${k} must be a probability in [0, 1], got ${JSON.stringify(v)}`);
    out[k] = v;
  }
  for (const k of ["delayMs", "jitterMs"] as const) {
    const v = spec[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || !(v >= 0 && v <= 60_000)) throw new RpcError(ErrorCode.Invalid, `${k} must be in [0, 60000] ms, got ${JSON.stringify(v)}`);
    out[k] = v;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

async function registerWithRetry(nc: NatsConnection, req: RegisterNodeRequest, log: Logger): Promise<NodeRecord> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request<NodeRecord>(nc, Subjects.registerNode(req.name), req, 2000);
    } catch (err) {
      // The control plane may start after us; anything but "nobody answers yet" is fatal.
      if (!(err instanceof RpcError) || (err.code !== ErrorCode.NotFound && err.code !== ErrorCode.Internal)) throw err;
      if (attempt % 20 === 1) log.warn({ node: req.name, attempt }, "control plane not answering yet; retrying");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** The host's resolv.conf: what a node's pods with dnsPolicy Default get (kubelet --resolv-conf). */
function hostResolvConf(): string | undefined {
  try {
    return readFileSync("/etc/resolv.conf", "utf8");
  } catch {
    return undefined;
  }
}
