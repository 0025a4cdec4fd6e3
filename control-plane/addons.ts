/**
 * Cluster add-ons: the cluster DNS as kubeadm installs it (cmd/kubeadm/app/phases/addons/dns,
 * manifests.go CoreDNSConfigMap, CoreDNSServiceAccount, CoreDNSService, CoreDNSDeployment of
 * Kubernetes 1.32), kept the way the addon manager keeps add-ons (kubernetes
 * cluster/addons/addon-manager README):
 *
 *   object                       mode           meaning
 *   ConfigMap coredns            EnsureExists   created when absent; a user's edits (the
 *                                               Corefile's ttl, an upstream) are kept
 *   ServiceAccount coredns       Reconcile      created when absent; the fields given here are
 *   Service kube-dns             Reconcile      put back when edited (fields a user adds that
 *   Deployment coredns           Reconcile      are not given here stay)
 *
 * all in kube-system and labelled `addonmanager.kubernetes.io/mode`.
 *
 * Design notes
 *
 * - Reconcile is server-side apply with force, under the field manager "kube-addon-manager"
 *   (the addon manager runs `kubectl apply`): the applied fields are owned and put back, others
 *   stay, and an apply that changes nothing writes nothing (no new resourceVersion, no event),
 *   so reconciling on every watch event does not loop. Scaling coredns is undone too, as the
 *   addon manager undoes it for a Reconcile Deployment that names its replicas.
 * - Level-triggered (kubernetes/sample-controller): one key per object in a work queue
 *   (cluster/workqueue.ts); the keys are enqueued at start, whenever an informer on one of the
 *   four objects sees it change or go away, and every resyncMs (the addon manager's 60 s loop).
 *   A rejected write (400, 403, 404 of a missing namespace, 422 such as a taken ClusterIP) is
 *   logged and tried again at the next resync; anything else (409, the store away) is retried
 *   with backoff. Nothing throws out of it: no crash loop.
 * - The kube-dns ClusterIP is the 10th address of the service CIDR (kubeadm's GetDNSIP; the
 *   allocator reserves that offset, ReservedOffset.ClusterDns). A Service ClusterIP is
 *   immutable: when kube-dns already has another one, the apply leaves it out (and says so)
 *   instead of failing forever.
 * - Left out of kubeadm's objects: the Service's `resourceVersion: "0"` (kubeadm's workaround for
 *   its own update path; a precondition here). The ClusterRole and ClusterRoleBinding
 *   system:coredns are not created: the emulated coredns reads the cluster through its node.
 * - Time comes from the injected Clock (timers of the queue and the resync).
 */
import { mustParseCidr, nthAddress } from "../cluster/addressing.ts";
import type { Clock } from "../cluster/clock.ts";
import { DEFAULT_CLUSTER_ZONE, renderCorefile } from "../cluster/corefile.ts";
import { CLUSTER_SETTINGS_CONFIGMAP } from "../cluster/config.ts";
import { Informer, type ListerWatcher } from "../cluster/informer.ts";
import type { Logger } from "../cluster/log.ts";
import { resourceByKind, type ResourceInfo } from "../cluster/resources.ts";
import type { KubeObject } from "../cluster/store.ts";
import { Reconciled, runWorker, WorkQueue, type BackoffOptions, type ReconcileResult } from "../cluster/workqueue.ts";
import { formatIpv4 } from "../overlay/wire/common.ts";
import { ReservedOffset } from "./controllers/logic/allocators.ts";
import type { Registry } from "./api/registry.ts";
import { ApiError } from "./api/status.ts";

/**
 * The cluster domain the add-ons are written for, until the control plane has a setting for it
 * (kubelet's --cluster-domain and kubeadm's networking.dnsDomain default).
 */
/** The cluster domain when none is configured (KUBEWIRE_CLUSTER_DOMAIN). */
export const DEFAULT_CLUSTER_DOMAIN = DEFAULT_CLUSTER_ZONE;
export const ADDON_NAMESPACE = "kube-system";
/** The field manager of the add-ons' applies (the addon manager's kubectl would be "kubectl"). */
export const ADDON_FIELD_MANAGER = "kube-addon-manager";
/** How the addon manager tells the two modes apart. */
export const ADDON_MODE_LABEL = "addonmanager.kubernetes.io/mode";
export const AddonMode = {
  /** Created when absent, the given fields put back when edited. */
  Reconcile: "Reconcile",
  /** Created when absent, never changed afterwards. */
  EnsureExists: "EnsureExists",
} as const;
export type AddonMode = (typeof AddonMode)[keyof typeof AddonMode];

/** The addon manager's loop period (ADDON_CHECK_INTERVAL_SEC, 60 s). */
export const ADDON_RESYNC_MS = 60_000;
/** Retries of a failed write: 1 s doubling to a minute, so a store that is away is not hammered. */
const RETRY_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 60_000 };

/** kubeadm 1.32's CoreDNS (constants.go CoreDNSVersion) at its registry path. */
export const COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.11.3";
/** kubeadm's default replica count for the coredns Deployment. */
export const COREDNS_REPLICAS = 2;
export const COREDNS_NAME = "coredns";
export const KUBE_DNS_SERVICE = "kube-dns";
const DNS_LABELS = { "k8s-app": "kube-dns" } as const;

/** The cluster DNS address: the 10th of the service CIDR (10.96.0.10 for 10.96.0.0/12). */
export function clusterDnsIp(serviceCidr: string): string {
  return formatIpv4(nthAddress(mustParseCidr(serviceCidr), ReservedOffset.ClusterDns));
}

/** One add-on object and how it is kept. */
export interface Addon {
  readonly resource: ResourceInfo;
  readonly mode: AddonMode;
  readonly object: KubeObject;
  /** The applied configuration given what is stored (to leave immutable fields alone). */
  readonly applied?: (live: KubeObject | undefined) => KubeObject;
}

/** The queue key of an add-on: "Kind/namespace/name". */
export function addonKey(a: Addon): string {
  return `${a.resource.kind}/${a.object.metadata.namespace}/${a.object.metadata.name}`;
}

const meta = (name: string, mode: AddonMode, labels: Record<string, string> = {}, annotations?: Record<string, string>) => ({
  name,
  namespace: ADDON_NAMESPACE,
  labels: { ...labels, [ADDON_MODE_LABEL]: mode },
  ...(annotations ? { annotations } : {}),
});

/** kubeadm's CoreDNSConfigMap: the Corefile for the cluster domain. */
export function corednsConfigMap(zone: string): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: meta(COREDNS_NAME, AddonMode.EnsureExists), data: { Corefile: renderCorefile({ zone }) } };
}

/** kubeadm's CoreDNSServiceAccount. */
export function corednsServiceAccount(): KubeObject {
  return { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(COREDNS_NAME, AddonMode.Reconcile) };
}

/** kubeadm's CoreDNSService (named kube-dns, as clients and kubelet's --cluster-dns expect). */
export function kubeDnsService(serviceCidr: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(
      KUBE_DNS_SERVICE,
      AddonMode.Reconcile,
      { ...DNS_LABELS, "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS" },
      { "prometheus.io/port": "9153", "prometheus.io/scrape": "true" },
    ),
    spec: {
      clusterIP: clusterDnsIp(serviceCidr),
      ports: [
        { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
        { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 53 },
        { name: "metrics", port: 9153, protocol: "TCP", targetPort: 9153 },
      ],
      selector: { ...DNS_LABELS },
    },
  };
}

/** kubeadm's CoreDNSDeployment. */
export function corednsDeployment(): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(COREDNS_NAME, AddonMode.Reconcile, { ...DNS_LABELS }),
    spec: {
      replicas: COREDNS_REPLICAS,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      selector: { matchLabels: { ...DNS_LABELS } },
      template: {
        metadata: { labels: { ...DNS_LABELS } },
        spec: {
          // This API server has no Priority admission plugin: the name passes validation and
          // is kept as kubeadm writes it, but no PriorityClass is resolved (spec.priority stays
          // unset) and none needs to exist.
          priorityClassName: "system-cluster-critical",
          serviceAccountName: COREDNS_NAME,
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: {
                    labelSelector: { matchExpressions: [{ key: "k8s-app", operator: "In", values: ["kube-dns"] }] },
                    topologyKey: "kubernetes.io/hostname",
                  },
                },
              ],
            },
          },
          tolerations: [
            { key: "CriticalAddonsOnly", operator: "Exists" },
            // kubeadm's ControlPlaneTaintKey.
            { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" },
          ],
          nodeSelector: { "kubernetes.io/os": "linux" },
          containers: [
            {
              name: "coredns",
              image: COREDNS_IMAGE,
              imagePullPolicy: "IfNotPresent",
              resources: { limits: { memory: "170Mi" }, requests: { cpu: "100m", memory: "70Mi" } },
              args: ["-conf", "/etc/coredns/Corefile"],
              volumeMounts: [{ name: "config-volume", mountPath: "/etc/coredns", readOnly: true }],
              ports: [
                { containerPort: 53, name: "dns", protocol: "UDP" },
                { containerPort: 53, name: "dns-tcp", protocol: "TCP" },
                { containerPort: 9153, name: "metrics", protocol: "TCP" },
                { containerPort: 8080, name: "liveness-probe", protocol: "TCP" },
                { containerPort: 8181, name: "readiness-probe", protocol: "TCP" },
              ],
              livenessProbe: {
                httpGet: { path: "/health", port: "liveness-probe", scheme: "HTTP" },
                initialDelaySeconds: 60,
                timeoutSeconds: 5,
                successThreshold: 1,
                failureThreshold: 5,
              },
              readinessProbe: { httpGet: { path: "/ready", port: "readiness-probe", scheme: "HTTP" } },
              securityContext: {
                allowPrivilegeEscalation: false,
                capabilities: { add: ["NET_BIND_SERVICE"], drop: ["ALL"] },
                readOnlyRootFilesystem: true,
              },
            },
          ],
          dnsPolicy: "Default",
          volumes: [{ name: "config-volume", configMap: { name: COREDNS_NAME, items: [{ key: "Corefile", path: "Corefile" }] } }],
        },
      },
    },
  };
}

export interface CoreDnsAddonOptions {
  readonly serviceCidr: string;
  /** The cluster domain (KUBEWIRE_CLUSTER_DOMAIN). */
  readonly zone: string;
}

/** The cluster DNS add-on, in the order it is reconciled (what the pods need first). */
export function corednsAddons(opts: CoreDnsAddonOptions): Addon[] {
  const service = kubeDnsService(opts.serviceCidr);
  return [
    { resource: resourceByKind("ConfigMap"), mode: AddonMode.EnsureExists, object: corednsConfigMap(opts.zone) },
    { resource: resourceByKind("ServiceAccount"), mode: AddonMode.Reconcile, object: corednsServiceAccount() },
    { resource: resourceByKind("Service"), mode: AddonMode.Reconcile, object: service, applied: (live) => withoutForeignClusterIp(service, live) },
    { resource: resourceByKind("Deployment"), mode: AddonMode.Reconcile, object: corednsDeployment() },
  ];
}

/** The Service to apply: without spec.clusterIP when the stored one holds another (it is immutable). */
function withoutForeignClusterIp(desired: KubeObject, live: KubeObject | undefined): KubeObject {
  const liveIp = (live?.spec as { clusterIP?: unknown } | undefined)?.clusterIP;
  const spec = desired.spec as Record<string, unknown>;
  if (liveIp === undefined || liveIp === spec.clusterIP) return desired;
  const { clusterIP: _dropped, ...rest } = spec;
  return { ...desired, spec: rest };
}

/** What reconciling one add-on object did. */
export type AddonOutcome =
  | { readonly kind: "created" }
  /** A Reconcile object whose given fields had drifted: put back. */
  | { readonly kind: "updated" }
  /** A Reconcile object as it should be: nothing written. */
  | { readonly kind: "unchanged" }
  /** An EnsureExists object that exists: left as it is. */
  | { readonly kind: "kept" }
  /** A Reconcile Service whose ClusterIP is not the one wanted (immutable, so left). */
  | { readonly kind: "foreignClusterIp"; readonly clusterIP: string };

/**
 * Brings one add-on object to what its mode asks. Throws the registry's ApiError when the write
 * is refused (the caller decides whether to retry).
 */
export async function reconcileAddon(registry: Registry, addon: Addon): Promise<AddonOutcome> {
  const { resource: r, object } = addon;
  const namespace = object.metadata.namespace!;
  const name = object.metadata.name!;
  const live = await registry.tryGet(r, namespace, name);
  if (addon.mode === AddonMode.EnsureExists) {
    if (live) return { kind: "kept" };
    try {
      await registry.create(r, namespace, object, { fieldManager: ADDON_FIELD_MANAGER, fieldValidation: "Strict" });
      return { kind: "created" };
    } catch (err) {
      // Created meanwhile by someone else: it exists, which is all this mode asks.
      if (err instanceof ApiError && err.status.code === 409) return { kind: "kept" };
      throw err;
    }
  }
  const body = addon.applied ? addon.applied(live) : object;
  const out = await registry.apply(r, namespace, name, body, { fieldManager: ADDON_FIELD_MANAGER, force: true, fieldValidation: "Strict" });
  if (!live) return { kind: "created" };
  if (out.metadata.resourceVersion !== live.metadata.resourceVersion) return { kind: "updated" };
  if (body !== object) return { kind: "foreignClusterIp", clusterIP: String((live.spec as { clusterIP?: unknown }).clusterIP) };
  return { kind: "unchanged" };
}

/** Whether a refused write stays refused until something else changes (no point retrying soon). */
function isPermanent(err: unknown): boolean {
  if (!(err instanceof ApiError)) return false;
  return [400, 403, 404, 422].includes(err.status.code);
}

/** Lists and watches one object (a field selector on its name, in its namespace). */
function oneObject(registry: Registry, namespace: string, name: string): ListerWatcher {
  const opts = { fieldSelector: `metadata.name=${name}` };
  return {
    list: (r) => registry.list(r, namespace, opts),
    watch: (r, _ns, resourceVersion, _opts, onEvent) => registry.watch(r, namespace, resourceVersion, opts, onEvent),
  };
}

export interface AddonManagerOptions extends CoreDnsAddonOptions {
  /** How often every add-on object is reconciled again; ADDON_RESYNC_MS by default. */
  readonly resyncMs?: number;
  /** The cluster-wide settings to publish for joining nodes (cluster/config.ts CLUSTER_SETTINGS). */
  readonly clusterSettings?: Readonly<Record<string, string>>;
}

/**
 * The cluster's settings for nodes that join (kubeadm's kubelet-config ConfigMap in spirit):
 * Reconcile, so an edit is put back; a node reads it once when it starts.
 */
export function clusterSettingsAddon(settings: Readonly<Record<string, string>>): Addon {
  const object = { apiVersion: "v1", kind: "ConfigMap", metadata: meta(CLUSTER_SETTINGS_CONFIGMAP.name, AddonMode.Reconcile), data: { ...settings } } as KubeObject;
  return { resource: resourceByKind("ConfigMap"), mode: AddonMode.Reconcile, object };
}

/**
 * The addon manager's loop for the cluster DNS add-on. start() creates what is missing before it
 * returns (one attempt per object); then watches keep it level.
 */
export class AddonManager {
  private readonly addons: ReadonlyMap<string, Addon>;
  private readonly queue: WorkQueue;
  private readonly informers: Informer[] = [];
  private worker: Promise<void> | undefined;
  private cancelResync: (() => void) | undefined;
  /** Keys not yet reconciled once, and who waits for that. */
  private firstPass: { pending: Set<string>; done: () => void } | undefined;
  /** The last foreign ClusterIP reported, so the warning is not repeated every minute. */
  private reportedClusterIp: string | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly opts: AddonManagerOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    const all = [...corednsAddons(opts), ...(opts.clusterSettings ? [clusterSettingsAddon(opts.clusterSettings)] : [])];
    this.addons = new Map(all.map((a) => [addonKey(a), a]));
    this.queue = new WorkQueue(clock, RETRY_BACKOFF);
  }

  /** The keys of the objects kept, in reconcile order. */
  get keys(): string[] {
    return [...this.addons.keys()];
  }

  async start(): Promise<void> {
    const first = new Promise<void>((done) => (this.firstPass = { pending: new Set(this.addons.keys()), done }));
    this.enqueueAll();
    this.worker = runWorker(this.queue, (key) => this.reconcile(key), (key, err) =>
      this.log.warn({ addon: key, err: (err as Error)?.message ?? String(err) }, "add-on reconcile failed; retrying with backoff"),
    );
    for (const [key, addon] of this.addons) {
      const { namespace, name } = addon.object.metadata;
      const inf = new Informer(addon.resource, oneObject(this.registry, namespace!, name!), this.clock, this.log);
      inf.onChange(() => this.queue.add(key));
      this.informers.push(inf);
      // Not awaited: an informer retries its list until it succeeds; the queue already holds every key.
      void inf.start();
    }
    this.scheduleResync();
    await first;
  }

  async stop(): Promise<void> {
    this.cancelResync?.();
    this.queue.shutDown();
    for (const i of this.informers) i.stop();
    // Whoever waits on start() is released: nothing more will be reconciled.
    this.firstPass?.done();
    await this.worker;
  }

  private enqueueAll(): void {
    for (const key of this.addons.keys()) this.queue.add(key);
  }

  private scheduleResync(): void {
    this.cancelResync = this.clock.after(this.opts.resyncMs ?? ADDON_RESYNC_MS, () => {
      this.enqueueAll();
      this.scheduleResync();
    });
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const addon = this.addons.get(key);
    if (!addon) return Reconciled.done;
    try {
      const outcome = await reconcileAddon(this.registry, addon);
      switch (outcome.kind) {
        case "created":
          this.log.info({ addon: key }, "add-on object created");
          break;
        case "updated":
          this.log.info({ addon: key }, "add-on object reconciled: its fields were put back");
          break;
        case "foreignClusterIp":
          if (this.reportedClusterIp !== outcome.clusterIP) {
            this.log.warn({ addon: key, clusterIP: outcome.clusterIP, want: clusterDnsIp(this.opts.serviceCidr) }, "kube-dns has another ClusterIP (immutable); left as it is");
          }
          this.reportedClusterIp = outcome.clusterIP;
          break;
        case "unchanged":
        case "kept":
          break;
      }
      return Reconciled.done;
    } catch (err) {
      if (!isPermanent(err)) return Reconciled.retry(err);
      this.log.warn({ addon: key, err: (err as Error).message }, "add-on object refused; trying again at the next resync");
      return Reconciled.done;
    } finally {
      const fp = this.firstPass;
      if (fp && fp.pending.delete(key) && fp.pending.size === 0) fp.done();
    }
  }
}
