/**
 * The same flows through @kubernetes/client-node, unmodified, from the kubeconfig kubewire
 * writes: list, watch, create, patch (merge and strategic), delete.
 */
import { AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, Watch, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "./fixture.ts";

let cluster: TestCluster;
let kc: KubeConfig;

beforeAll(async () => {
  cluster = await TestCluster.start(2);
  kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
});

afterAll(async () => {
  await cluster?.stop();
});

describe("@kubernetes/client-node against kubewire", () => {
  it("lists nodes with their pod CIDRs and Ready condition", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const nodes = await core.listNode();
    expect(nodes.items.map((n) => n.metadata?.name).sort()).toEqual(["node-1", "node-2"]);
    for (const n of nodes.items) {
      expect(n.spec?.podCIDR).toMatch(/^10\.244\.\d+\.0\/24$/);
      expect(n.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    }
  });

  it("watches a pod through create, status, patch and delete, in order, from a list's resourceVersion", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const list = await core.listNamespacedPod({ namespace: "default" });
    const events: Array<{ type: string; name: string; rv: string; phase?: string; label?: string }> = [];
    let deleted!: () => void;
    const gone = new Promise<void>((resolve) => (deleted = resolve));
    const watch = new Watch(kc);
    const req = await watch.watch(
      "/api/v1/namespaces/default/pods",
      { resourceVersion: list.metadata?.resourceVersion ?? "", allowWatchBookmarks: true },
      (type, obj: V1Pod) => {
        events.push({ type, name: obj.metadata!.name!, rv: obj.metadata!.resourceVersion!, phase: obj.status?.phase, label: obj.metadata?.labels?.tier });
        if (type === "DELETED" && obj.metadata?.name === "cn-1") deleted();
      },
      () => {},
    );
    try {
      const created = await core.createNamespacedPod({
        namespace: "default",
        body: { apiVersion: "v1", kind: "Pod", metadata: { name: "cn-1", labels: { app: "cn" } }, spec: { containers: [{ name: "app", image: "registry.k8s.io/e2e-test-images/agnhost:2.47" }] } },
      });
      expect(created.metadata?.uid).toBeTruthy();
      expect(created.status?.phase).toBe("Pending");
      await cluster.waitForPodRunning("default", "cn-1");
      const merged = await core.patchNamespacedPod({ namespace: "default", name: "cn-1", body: { metadata: { labels: { tier: "front" } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
      expect(merged.metadata?.labels).toEqual({ app: "cn", tier: "front" });
      const strategic = await core.patchNamespacedPod({ namespace: "default", name: "cn-1", body: { metadata: { labels: { tier: null } } } }, setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch));
      expect(strategic.metadata?.labels).toEqual({ app: "cn" });
      await core.deleteNamespacedPod({ namespace: "default", name: "cn-1" });
      await gone;
    } finally {
      req.abort();
    }
    const mine = events.filter((e) => e.name === "cn-1");
    expect(mine[0]).toMatchObject({ type: "ADDED", phase: "Pending" });
    expect(mine.at(-1)!.type).toBe("DELETED");
    expect(mine.some((e) => e.type === "MODIFIED" && e.phase === "Running")).toBe(true);
    expect(mine.some((e) => e.type === "MODIFIED" && e.label === "front")).toBe(true);
    // Each resourceVersion once, in increasing order: nothing duplicated, nothing reordered.
    const rvs = mine.map((e) => Number(e.rv));
    expect([...rvs].sort((a, b) => a - b)).toEqual(rvs);
    expect(new Set(rvs).size).toBe(rvs.length);
  });

  it("creates a Deployment whose pods become Running and deletes it with its pods", async () => {
    const apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    await apps.createNamespacedDeployment({
      namespace: "default",
      body: {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "cn-web" },
        spec: { replicas: 2, selector: { matchLabels: { app: "cn-web" } }, template: { metadata: { labels: { app: "cn-web" } }, spec: { containers: [{ name: "web", image: "registry.k8s.io/e2e-test-images/agnhost:2.47" }] } } },
      },
    });
    const deadline = Date.now() + 30_000;
    let ready = 0;
    while (Date.now() < deadline && ready !== 2) {
      ready = (await apps.readNamespacedDeployment({ namespace: "default", name: "cn-web" })).status?.readyReplicas ?? 0;
      if (ready !== 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready).toBe(2);
    const pods = await core.listNamespacedPod({ namespace: "default", labelSelector: "app=cn-web" });
    expect(pods.items).toHaveLength(2);
    expect(pods.items.every((p) => p.status?.phase === "Running" && p.status.podIP)).toBe(true);
    await apps.deleteNamespacedDeployment({ namespace: "default", name: "cn-web" });
    const gone = Date.now() + 30_000;
    let left = 2;
    while (Date.now() < gone && left > 0) {
      left = (await core.listNamespacedPod({ namespace: "default", labelSelector: "app=cn-web" })).items.length;
      if (left > 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toBe(0);
  });

  it("gets a 409 Conflict for a stale resourceVersion and a 422 naming the field for a bad object", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedService({ namespace: "default", body: { apiVersion: "v1", kind: "Service", metadata: { name: "cn-svc" }, spec: { selector: { app: "x" }, ports: [{ port: 80 }] } } });
    const svc = await core.readNamespacedService({ namespace: "default", name: "cn-svc" });
    await core.replaceNamespacedService({ namespace: "default", name: "cn-svc", body: { ...svc, metadata: { ...svc.metadata, labels: { a: "1" } } } });
    const stale = await core.replaceNamespacedService({ namespace: "default", name: "cn-svc", body: { ...svc, metadata: { ...svc.metadata, labels: { a: "2" } } } }).then(() => undefined, (e: { code?: number; body?: string }) => e);
    expect(stale?.code).toBe(409);
    const bad = await core
      .createNamespacedService({ namespace: "default", body: { apiVersion: "v1", kind: "Service", metadata: { name: "cn-bad" }, spec: { type: "NodePort", ports: [{ port: 80, nodePort: 80 }] } } })
      .then(() => undefined, (e: { code?: number; body?: string }) => e);
    expect(bad?.code).toBe(422);
    expect(String(bad?.body)).toContain("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767");
    await core.deleteNamespacedService({ namespace: "default", name: "cn-svc" });
  });
});
