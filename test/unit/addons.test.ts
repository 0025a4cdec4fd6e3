/**
 * The cluster DNS add-on (control-plane/addons.ts): kubeadm's objects with their key fields, kept
 * through the real Registry (defaulting, validation, admission, server-side apply) over an
 * in-memory store: created when missing, Reconcile objects put back when edited (added fields
 * kept), the EnsureExists ConfigMap left as the user edited it, nothing written when nothing
 * drifted; and the manager's loop on a FakeClock: start, watch-triggered repair, the resync, and
 * retries after a failed write.
 */
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import {
  ADDON_FIELD_MANAGER,
  ADDON_MODE_LABEL,
  AddonManager,
  addonKey,
  clusterDnsIp,
  COREDNS_IMAGE,
  corednsAddons,
  corednsDeployment,
  DEFAULT_CLUSTER_DOMAIN,
  kubeDnsService,
  reconcileAddon,
  type Addon,
} from "../../control-plane/addons.ts";
import { createAdmission } from "../../control-plane/api/admission.ts";
import { Registry } from "../../control-plane/api/registry.ts";
import { ApiError } from "../../control-plane/api/status.ts";
import { FakeClock } from "../../cluster/clock.ts";
import { parseCorefile, renderCorefile } from "../../cluster/corefile.ts";
import { resourceByKind, type ResourceInfo } from "../../cluster/resources.ts";
import { StoreError, StoreErrorCode, type KubeObject, type ObjectStore, type WatchEvent } from "../../cluster/store.ts";

const SERVICE_CIDR = "10.96.0.0/12";
const NS = "kube-system";
const R = {
  cm: resourceByKind("ConfigMap"),
  sa: resourceByKind("ServiceAccount"),
  svc: resourceByKind("Service"),
  deploy: resourceByKind("Deployment"),
} as const;
const silent = pino({ level: "silent" });

/** The part of ObjectStore the Registry uses, in memory, with watches that see every later write. */
class MemoryStore {
  private readonly objects = new Map<string, KubeObject>();
  private readonly watchers = new Set<{ kind: string; ns: string | undefined; onEvent: (e: WatchEvent) => void }>();
  private rev = 1;
  writes = 0;
  /** Makes the next n writes fail as a store that is away would. */
  failNext = 0;

  constructor() {
    for (const name of ["default", NS]) this.objects.set(this.key(resourceByKind("Namespace"), undefined, name), { apiVersion: "v1", kind: "Namespace", metadata: { name, uid: name, resourceVersion: "1" } });
  }

  private key(r: ResourceInfo, ns: string | undefined, name: string): string {
    return `${r.kind}/${ns ?? ""}/${name}`;
  }

  private emit(r: ResourceInfo, type: WatchEvent["type"], object: KubeObject): void {
    for (const w of this.watchers) if (w.kind === r.kind && (w.ns === undefined || w.ns === object.metadata.namespace)) w.onEvent({ type, object: structuredClone(object) });
  }

  private write(): void {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error("nats: the JetStream KV is unreachable");
    }
    this.writes++;
  }

  async get(r: ResourceInfo, ns: string | undefined, name: string) {
    return structuredClone(this.objects.get(this.key(r, ns, name)));
  }

  async list(r: ResourceInfo, ns: string | undefined) {
    const prefix = ns === undefined ? `${r.kind}/` : `${r.kind}/${ns}/`;
    return { items: [...this.objects.entries()].filter(([k]) => k.startsWith(prefix)).map(([, o]) => structuredClone(o)), resourceVersion: this.rev };
  }

  async create(r: ResourceInfo, o: KubeObject) {
    const k = this.key(r, o.metadata.namespace, o.metadata.name!);
    if (this.objects.has(k)) throw new StoreError(StoreErrorCode.AlreadyExists, "exists");
    this.write();
    const stored = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++this.rev) } };
    this.objects.set(k, stored);
    this.emit(r, "ADDED", stored);
    return structuredClone(stored);
  }

  async update(r: ResourceInfo, o: KubeObject, expected: number) {
    const k = this.key(r, o.metadata.namespace, o.metadata.name!);
    if (Number(this.objects.get(k)?.metadata.resourceVersion) !== expected) throw new StoreError(StoreErrorCode.Conflict, "modified");
    this.write();
    const stored = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++this.rev) } };
    this.objects.set(k, stored);
    this.emit(r, "MODIFIED", stored);
    return structuredClone(stored);
  }

  async delete(r: ResourceInfo, o: KubeObject, expected: number) {
    const k = this.key(r, o.metadata.namespace, o.metadata.name!);
    if (Number(this.objects.get(k)?.metadata.resourceVersion) !== expected) throw new StoreError(StoreErrorCode.Conflict, "modified");
    this.write();
    this.objects.delete(k);
    this.emit(r, "DELETED", o);
    return structuredClone(o);
  }

  async watch(r: ResourceInfo, ns: string | undefined, _from: number | undefined, onEvent: (e: WatchEvent) => void) {
    const w = { kind: r.kind, ns, onEvent };
    this.watchers.add(w);
    let end!: () => void;
    const done = new Promise<void>((resolve) => (end = resolve));
    return {
      stop: () => {
        this.watchers.delete(w);
        end();
      },
      done,
    };
  }

  get watching(): number {
    return this.watchers.size;
  }
}

function setup(): { store: MemoryStore; registry: Registry } {
  const store = new MemoryStore();
  const registry = new Registry(store as unknown as ObjectStore, createAdmission(SERVICE_CIDR), async () => false, () => new Date("2026-01-01T00:00:00Z"));
  return { store, registry };
}

const addons = () => corednsAddons({ serviceCidr: SERVICE_CIDR, zone: DEFAULT_CLUSTER_DOMAIN });
const byKind = (kind: string): Addon => addons().find((a) => a.resource.kind === kind)!;

async function reconcileAll(registry: Registry): Promise<string[]> {
  const out: string[] = [];
  for (const a of addons()) out.push(`${a.resource.kind}:${(await reconcileAddon(registry, a)).kind}`);
  return out;
}

type Rec = Record<string, any>;
const spec = (o: KubeObject | undefined): Rec => (o?.spec ?? {}) as Rec;

/** Lets promise callbacks and setImmediate-queued work run until `done()` holds (or gives up). */
async function until(done: () => boolean | Promise<boolean>, rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (await done()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error("condition never held");
}

describe("the coredns add-on objects (kubeadm's manifests)", () => {
  it("puts kube-dns at the 10th address of the service CIDR", () => {
    expect(clusterDnsIp("10.96.0.0/12")).toBe("10.96.0.10");
    expect(clusterDnsIp("172.20.0.0/16")).toBe("172.20.0.10");
  });

  it("kube-dns: labels, prometheus annotations, the three ports, the selector", () => {
    const svc = kubeDnsService(SERVICE_CIDR);
    expect(svc.metadata).toEqual({
      name: "kube-dns",
      namespace: NS,
      labels: { "k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS", [ADDON_MODE_LABEL]: "Reconcile" },
      annotations: { "prometheus.io/port": "9153", "prometheus.io/scrape": "true" },
    });
    expect(svc.spec).toEqual({
      clusterIP: "10.96.0.10",
      ports: [
        { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
        { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 53 },
        { name: "metrics", port: 9153, protocol: "TCP", targetPort: 9153 },
      ],
      selector: { "k8s-app": "kube-dns" },
    });
  });

  it("coredns Deployment: 2 replicas, kubeadm's pod template", () => {
    const d = corednsDeployment();
    const s = spec(d);
    expect(d.metadata.labels).toEqual({ "k8s-app": "kube-dns", [ADDON_MODE_LABEL]: "Reconcile" });
    expect(s.replicas).toBe(2);
    expect(s.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } });
    expect(s.selector).toEqual({ matchLabels: { "k8s-app": "kube-dns" } });
    const pod = s.template.spec;
    expect(s.template.metadata.labels).toEqual({ "k8s-app": "kube-dns" });
    expect(pod.serviceAccountName).toBe("coredns");
    expect(pod.priorityClassName).toBe("system-cluster-critical");
    expect(pod.dnsPolicy).toBe("Default");
    expect(pod.nodeSelector).toEqual({ "kubernetes.io/os": "linux" });
    expect(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution).toEqual([
      { weight: 100, podAffinityTerm: { labelSelector: { matchExpressions: [{ key: "k8s-app", operator: "In", values: ["kube-dns"] }] }, topologyKey: "kubernetes.io/hostname" } },
    ]);
    expect(pod.tolerations).toEqual([
      { key: "CriticalAddonsOnly", operator: "Exists" },
      { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" },
    ]);
    const c = pod.containers[0];
    expect(c.image).toBe(COREDNS_IMAGE);
    expect(COREDNS_IMAGE).toBe("registry.k8s.io/coredns/coredns:v1.11.3");
    expect(c.args).toEqual(["-conf", "/etc/coredns/Corefile"]);
    expect(c.ports.map((p: Rec) => `${p.name} ${p.containerPort}/${p.protocol}`)).toEqual(["dns 53/UDP", "dns-tcp 53/TCP", "metrics 9153/TCP", "liveness-probe 8080/TCP", "readiness-probe 8181/TCP"]);
    expect(c.livenessProbe).toEqual({ httpGet: { path: "/health", port: "liveness-probe", scheme: "HTTP" }, initialDelaySeconds: 60, timeoutSeconds: 5, successThreshold: 1, failureThreshold: 5 });
    expect(c.readinessProbe).toEqual({ httpGet: { path: "/ready", port: "readiness-probe", scheme: "HTTP" } });
    expect(c.volumeMounts).toEqual([{ name: "config-volume", mountPath: "/etc/coredns", readOnly: true }]);
    expect(pod.volumes).toEqual([{ name: "config-volume", configMap: { name: "coredns", items: [{ key: "Corefile", path: "Corefile" }] } }]);
  });

  it("the ConfigMap holds kubeadm's Corefile (EnsureExists); the ServiceAccount is Reconcile", () => {
    const cm = byKind("ConfigMap");
    expect(cm.mode).toBe("EnsureExists");
    expect(cm.object.metadata.labels).toEqual({ [ADDON_MODE_LABEL]: "EnsureExists" });
    expect((cm.object.data as Rec).Corefile).toBe(renderCorefile({ zone: "cluster.local" }));
    expect(parseCorefile((cm.object.data as Rec).Corefile)).toMatchObject({ ok: true, config: { zone: "cluster.local", ttl: 30 } });
    expect(byKind("ServiceAccount")).toMatchObject({ mode: "Reconcile", object: { metadata: { name: "coredns", namespace: NS } } });
    expect(addons().map(addonKey)).toEqual(["ConfigMap/kube-system/coredns", "ServiceAccount/kube-system/coredns", "Service/kube-system/kube-dns", "Deployment/kube-system/coredns"]);
  });
});

describe("reconcileAddon through the Registry", () => {
  it("creates all four (the API accepts every field, strictly), then writes nothing", async () => {
    const { store, registry } = setup();
    expect(await reconcileAll(registry)).toEqual(["ConfigMap:created", "ServiceAccount:created", "Service:created", "Deployment:created"]);
    const svc = await registry.get(R.svc, NS, "kube-dns");
    expect(spec(svc).clusterIP).toBe("10.96.0.10");
    expect(spec(svc).clusterIPs).toEqual(["10.96.0.10"]);
    const deploy = await registry.get(R.deploy, NS, "coredns");
    expect(spec(deploy).template.spec.containers[0].image).toBe(COREDNS_IMAGE);
    expect((deploy.metadata.managedFields as Rec[] | undefined)?.[0]).toMatchObject({ manager: ADDON_FIELD_MANAGER, operation: "Apply" });
    const writes = store.writes;
    expect(await reconcileAll(registry)).toEqual(["ConfigMap:kept", "ServiceAccount:unchanged", "Service:unchanged", "Deployment:unchanged"]);
    expect(store.writes).toBe(writes);
  });

  it("Reconcile: puts back edited fields, keeps added ones", async () => {
    const { registry } = setup();
    await reconcileAll(registry);
    const d = await registry.get(R.deploy, NS, "coredns");
    const edited = structuredClone(d) as Rec;
    edited.spec.replicas = 5;
    edited.spec.template.spec.containers[0].image = "registry.k8s.io/coredns/coredns:v1.9.3";
    edited.spec.template.spec.containers[0].env = [{ name: "GODEBUG", value: "netdns=go" }];
    edited.metadata.labels.team = "dns";
    await registry.update(R.deploy, NS, "coredns", edited as KubeObject, { fieldManager: "kubectl-edit" });
    const svc = structuredClone(await registry.get(R.svc, NS, "kube-dns")) as Rec;
    svc.spec.ports = svc.spec.ports.filter((p: Rec) => p.name !== "metrics");
    svc.metadata.annotations = { "prometheus.io/scrape": "false" };
    await registry.update(R.svc, NS, "kube-dns", svc as KubeObject, { fieldManager: "kubectl-edit" });

    expect(await reconcileAddon(registry, byKind("Deployment"))).toEqual({ kind: "updated" });
    expect(await reconcileAddon(registry, byKind("Service"))).toEqual({ kind: "updated" });
    const d2 = spec(await registry.get(R.deploy, NS, "coredns"));
    expect(d2.replicas).toBe(2);
    expect(d2.template.spec.containers[0].image).toBe(COREDNS_IMAGE);
    expect(d2.template.spec.containers[0].env).toEqual([{ name: "GODEBUG", value: "netdns=go" }]);
    expect((await registry.get(R.deploy, NS, "coredns")).metadata.labels).toMatchObject({ team: "dns", "k8s-app": "kube-dns" });
    const s2 = await registry.get(R.svc, NS, "kube-dns");
    expect(spec(s2).ports.map((p: Rec) => p.name)).toEqual(["dns", "dns-tcp", "metrics"]);
    expect(s2.metadata.annotations).toEqual({ "prometheus.io/port": "9153", "prometheus.io/scrape": "true" });
    expect(await reconcileAddon(registry, byKind("Deployment"))).toEqual({ kind: "unchanged" });
  });

  it("EnsureExists: the user's Corefile stays; a deleted ConfigMap comes back as kubeadm's", async () => {
    const { registry } = setup();
    await reconcileAll(registry);
    const cm = structuredClone(await registry.get(R.cm, NS, "coredns")) as Rec;
    cm.data.Corefile = cm.data.Corefile.replace("ttl 30", "ttl 5");
    await registry.update(R.cm, NS, "coredns", cm as KubeObject, { fieldManager: "kubectl-edit" });
    expect(await reconcileAddon(registry, byKind("ConfigMap"))).toEqual({ kind: "kept" });
    const kept = (await registry.get(R.cm, NS, "coredns")).data as Rec;
    expect(parseCorefile(kept.Corefile)).toMatchObject({ ok: true, config: { ttl: 5 } });

    await registry.delete(R.cm, NS, "coredns");
    expect(await reconcileAddon(registry, byKind("ConfigMap"))).toEqual({ kind: "created" });
    expect(((await registry.get(R.cm, NS, "coredns")).data as Rec).Corefile).toBe(renderCorefile({ zone: "cluster.local" }));
  });

  it("recreates deleted Reconcile objects", async () => {
    const { registry } = setup();
    await reconcileAll(registry);
    await registry.delete(R.deploy, NS, "coredns");
    await registry.delete(R.svc, NS, "kube-dns");
    expect(await reconcileAll(registry)).toEqual(["ConfigMap:kept", "ServiceAccount:unchanged", "Service:created", "Deployment:created"]);
    expect(spec(await registry.get(R.svc, NS, "kube-dns")).clusterIP).toBe("10.96.0.10");
  });

  it("a kube-dns with another ClusterIP keeps it (immutable); the rest is reconciled", async () => {
    const { registry } = setup();
    await registry.create(R.svc, NS, { apiVersion: "v1", kind: "Service", metadata: { name: "kube-dns", namespace: NS }, spec: { clusterIP: "10.96.0.53", ports: [{ name: "dns", port: 53, protocol: "UDP" }] } });
    expect(await reconcileAddon(registry, byKind("Service"))).toEqual({ kind: "updated" });
    const svc = await registry.get(R.svc, NS, "kube-dns");
    expect(spec(svc).clusterIP).toBe("10.96.0.53");
    expect(spec(svc).ports).toHaveLength(3);
    expect(await reconcileAddon(registry, byKind("Service"))).toEqual({ kind: "foreignClusterIp", clusterIP: "10.96.0.53" });
  });

  it("10.96.0.10 held by another Service: the create is refused with a 422", async () => {
    const { registry } = setup();
    await registry.create(R.svc, "default", { apiVersion: "v1", kind: "Service", metadata: { name: "squatter", namespace: "default" }, spec: { clusterIP: "10.96.0.10", ports: [{ port: 80 }] } });
    const err = await reconcileAddon(registry, byKind("Service")).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status.code).toBe(422);
  });
});

describe("AddonManager", () => {
  it("creates everything in start(), repairs on watch events, and stops cleanly", async () => {
    const { store, registry } = setup();
    const clock = new FakeClock();
    const m = new AddonManager(registry, { serviceCidr: SERVICE_CIDR, zone: DEFAULT_CLUSTER_DOMAIN }, clock, silent);
    await m.start();
    for (const [r, name] of [[R.cm, "coredns"], [R.sa, "coredns"], [R.svc, "kube-dns"], [R.deploy, "coredns"]] as const) expect(await registry.tryGet(r, NS, name)).toBeDefined();
    await until(() => store.watching === 4);

    // A deletion is seen by the watch and undone without waiting for the resync.
    await registry.delete(R.deploy, NS, "coredns");
    await until(async () => (await registry.tryGet(R.deploy, NS, "coredns")) !== undefined);
    // An edit of an owned field is put back.
    const svc = structuredClone(await registry.get(R.svc, NS, "kube-dns")) as Rec;
    svc.spec.selector = { app: "mine" };
    await registry.update(R.svc, NS, "kube-dns", svc as KubeObject, { fieldManager: "kubectl-edit" });
    await until(async () => spec(await registry.get(R.svc, NS, "kube-dns")).selector["k8s-app"] === "kube-dns");

    // Its own writes come back as watch events and change nothing more: the store goes quiet.
    const settled = store.writes;
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(store.writes).toBe(settled);

    await m.stop();
    expect(store.watching).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it("the periodic resync repairs what no watch reported; failed writes are retried with backoff", async () => {
    const { store, registry } = setup();
    const clock = new FakeClock();
    store.failNext = 1;
    const m = new AddonManager(registry, { serviceCidr: SERVICE_CIDR, zone: DEFAULT_CLUSTER_DOMAIN, resyncMs: 60_000 }, clock, silent);
    await m.start();
    // The ConfigMap's create failed (the store away): retried after the backoff's first second.
    expect(await registry.tryGet(R.cm, NS, "coredns")).toBeUndefined();
    expect(await registry.tryGet(R.deploy, NS, "coredns")).toBeDefined();
    clock.advance(1000);
    await until(async () => (await registry.tryGet(R.cm, NS, "coredns")) !== undefined);

    // Stop the watches (as a lost connection would, before the relist), delete, and wait for the resync.
    await until(() => store.watching === 4);
    const sa = await registry.get(R.sa, NS, "coredns");
    (store as unknown as { watchers: Set<unknown> }).watchers.clear();
    await registry.delete(R.sa, NS, sa.metadata.name!);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(await registry.tryGet(R.sa, NS, "coredns")).toBeUndefined();
    clock.advance(60_000);
    await until(async () => (await registry.tryGet(R.sa, NS, "coredns")) !== undefined);
    await m.stop();
  });
});
