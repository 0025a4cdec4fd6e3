/**
 * Faults seen through the Kubernetes API: a control-plane restart in the middle of a watch
 * (resumed from the last resourceVersion, nothing lost, nothing twice; objects and allocations
 * survive), and a node-agent killed with -9 (NotReady within the grace period, its endpoints
 * leave the EndpointSlices, the Deployment's pods come back on Ready nodes).
 */
import { request as httpsRequest } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { paths, type KubeObjectLike } from "../../cluster/kube-client.ts";
import { TestCluster } from "./fixture.ts";

const GRACE_SECONDS = 4;
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3, nodeGraceSeconds: GRACE_SECONDS, podEvictionSeconds: 1 });
});

afterAll(async () => {
  await cluster?.stop();
});

interface WatchEvent {
  type: string;
  object: KubeObjectLike & { code?: number };
}

/**
 * A client-go style reflector on one watch URL: follows the stream, and when it ends (the
 * control plane went away) re-opens it from the last resourceVersion seen.
 */
class Reflector {
  readonly events: WatchEvent[] = [];
  lastRv: string;
  reconnects = 0;
  private stopped = false;
  private current: { destroy(): void } | undefined;

  constructor(
    private readonly path: string,
    fromRv: string,
  ) {
    this.lastRv = fromRv;
  }

  start(): void {
    if (this.stopped) return;
    const req = httpsRequest(`${cluster.apiUrl}${this.path}?watch=true&resourceVersion=${this.lastRv}`, { ca: cluster.tls.cert, headers: { Authorization: `Bearer ${cluster.token}` } }, (res) => {
      let buf = "";
      res.on("data", (chunk: Buffer) => {
        buf += chunk.toString("utf8");
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          const e = JSON.parse(line) as WatchEvent;
          this.events.push(e);
          if (e.type !== "ERROR") this.lastRv = e.object.metadata.resourceVersion!;
        }
      });
      res.on("end", () => this.again());
      res.on("error", () => this.again());
    });
    req.on("error", () => this.again());
    req.end();
    this.current = req;
  }

  private again(): void {
    if (this.stopped) return;
    this.reconnects++;
    setTimeout(() => this.start(), 200);
  }

  stop(): void {
    this.stopped = true;
    this.current?.destroy();
  }
}

async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function configMapLikePod(name: string): object {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, labels: { watch: "me" } }, spec: { containers: [{ name: "app", image: "registry.k8s.io/e2e-test-images/agnhost:2.47" }] } };
}

describe("control plane restart mid-watch", () => {
  it("resumes the watch from the last resourceVersion without a lost or duplicated event", async () => {
    const list = await cluster.kube.request<{ metadata: { resourceVersion: string } }>("GET", paths.pods("default"));
    const reflector = new Reflector(paths.pods("default"), list.metadata.resourceVersion);
    reflector.start();
    try {
      for (const n of [1, 2]) await cluster.kube.create(paths.pods("default"), configMapLikePod(`w-${n}`));
      await cluster.waitForPodRunning("default", "w-2");
      const servicesBefore = await cluster.kube.create<KubeObjectLike>("/api/v1/namespaces/default/services", { apiVersion: "v1", kind: "Service", metadata: { name: "w-svc" }, spec: { type: "NodePort", selector: { watch: "me" }, ports: [{ port: 80 }] } });

      await cluster.kill9("control-plane");
      cluster.startControlPlane();
      await cluster.waitForApi();

      for (const n of [3, 4]) await cluster.kube.create(paths.pods("default"), configMapLikePod(`w-${n}`));
      await cluster.waitForPodRunning("default", "w-4");
      await cluster.kube.delete(paths.pod("default", "w-1"));
      await eventually(async () => (reflector.events.some((e) => e.type === "DELETED" && e.object.metadata.name === "w-1") ? true : undefined), 20_000, "the DELETED event of w-1");

      // Allocations survived: the Service kept its ClusterIP and NodePort; a new one gets others.
      const svc = await cluster.kube.get("/api/v1/namespaces/default/services/w-svc");
      expect(svc.spec.clusterIP).toBe(servicesBefore.spec.clusterIP);
      expect(svc.spec.ports[0].nodePort).toBe(servicesBefore.spec.ports[0].nodePort);
      const other = await cluster.kube.create<KubeObjectLike>("/api/v1/namespaces/default/services", { apiVersion: "v1", kind: "Service", metadata: { name: "w-svc2" }, spec: { type: "NodePort", selector: { watch: "me" }, ports: [{ port: 80 }] } });
      expect(other.spec.clusterIP).not.toBe(svc.spec.clusterIP);
      expect(other.spec.ports[0].nodePort).not.toBe(svc.spec.ports[0].nodePort);

      const events = reflector.events.filter((e) => e.object.metadata?.name?.startsWith("w-"));
      expect(reflector.reconnects).toBeGreaterThanOrEqual(1);
      expect(events.filter((e) => e.type === "ERROR")).toEqual([]);
      const rvs = events.map((e) => Number(e.object.metadata.resourceVersion));
      expect(new Set(rvs).size, "no event delivered twice").toBe(rvs.length);
      expect([...rvs].sort((a, b) => a - b), "events in resourceVersion order").toEqual(rvs);
      for (const n of [1, 2, 3, 4]) expect(events.filter((e) => e.type === "ADDED" && e.object.metadata.name === `w-${n}`), `ADDED w-${n}`).toHaveLength(1);
      // Nothing lost: the last event seen for each live pod is its current state.
      for (const n of [2, 3, 4]) {
        const pod = await cluster.kube.get(paths.pod("default", `w-${n}`));
        const last = events.filter((e) => e.object.metadata.name === `w-${n}`).at(-1)!;
        expect(last.object.metadata.resourceVersion, `w-${n}`).toBe(pod.metadata.resourceVersion);
      }
    } finally {
      reflector.stop();
    }
  });
});

describe("watch window", () => {
  it("answers a watch from a resourceVersion whose events were compacted with 410 Gone in the stream", async () => {
    await cluster.kube.create("/api/v1/namespaces/default/services", { apiVersion: "v1", kind: "Service", metadata: { name: "churn" }, spec: { selector: { app: "churn" }, ports: [{ port: 80 }] } });
    const first = await cluster.kube.get("/api/v1/namespaces/default/services/churn");
    // Each key keeps 64 revisions: 70 updates push the first ones out of the window.
    for (let i = 0; i < 70; i++) await cluster.kube.patch("/api/v1/namespaces/default/services/churn", { metadata: { labels: { n: String(i) } } });
    const reflector = new Reflector("/api/v1/namespaces/default/services", first.metadata.resourceVersion!);
    reflector.start();
    try {
      const gone = await eventually(async () => reflector.events.find((e) => e.type === "ERROR"), 10_000, "an ERROR event");
      expect(gone.object).toMatchObject({ kind: "Status", code: 410, reason: "Expired" });
      expect(String((gone.object as { message?: string }).message)).toContain("too old resource version");
    } finally {
      reflector.stop();
    }
    // A fresh list and a watch from its resourceVersion work again (what a client does after 410).
    const list = await cluster.kube.request<{ metadata: { resourceVersion: string } }>("GET", "/api/v1/namespaces/default/services");
    const again = new Reflector("/api/v1/namespaces/default/services", list.metadata.resourceVersion);
    again.start();
    try {
      await cluster.kube.patch("/api/v1/namespaces/default/services/churn", { metadata: { labels: { n: "last" } } });
      const modified = await eventually(async () => again.events.find((e) => e.type === "MODIFIED"), 10_000, "a MODIFIED event");
      expect(modified.object.metadata.labels?.n).toBe("last");
      expect(again.events.filter((e) => e.type === "ERROR")).toEqual([]);
    } finally {
      again.stop();
    }
  });
});

describe("node failure", () => {
  it("marks a killed node NotReady within the grace period, drops its endpoints and recreates its pods elsewhere", async () => {
    await cluster.kube.create("/apis/apps/v1/namespaces/default/deployments", {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "f-web" },
      spec: { replicas: 3, selector: { matchLabels: { app: "f-web" } }, template: { metadata: { labels: { app: "f-web" } }, spec: { containers: [{ name: "web", image: "registry.k8s.io/e2e-test-images/agnhost:2.47", ports: [{ containerPort: 8081, protocol: "UDP" }] }] } } },
    });
    await cluster.kube.create("/api/v1/namespaces/default/services", { apiVersion: "v1", kind: "Service", metadata: { name: "f-web" }, spec: { selector: { app: "f-web" }, ports: [{ port: 81, protocol: "UDP", targetPort: 8081 }] } });
    const podsOf = async () => (await cluster.kube.list(`${paths.pods("default")}?labelSelector=app%3Df-web`)).filter((p) => !p.metadata.deletionTimestamp);
    const sliceIps = async () => (await cluster.kube.list("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Df-web")).flatMap((s) => ((s as { endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }> }).endpoints ?? []).filter((e) => e.conditions?.ready).map((e) => e.addresses[0]!));
    const before = await eventually(async () => {
      const pods = await podsOf();
      return pods.length === 3 && pods.every((p) => p.status?.phase === "Running") && (await sliceIps()).length === 3 ? pods : undefined;
    }, 30_000, "3 running f-web pods in the EndpointSlice");
    const victim = before[0]!.spec.nodeName as string;
    const victimIps = before.filter((p) => p.spec.nodeName === victim).map((p) => p.status.podIP as string);

    const killedAt = Date.now();
    await cluster.kill9(victim);
    await eventually(async () => {
      const node = await cluster.kube.get(paths.node(victim));
      const ready = node.status.conditions.find((c: { type: string }) => c.type === "Ready");
      return ready.status !== "True" ? true : undefined;
    }, (GRACE_SECONDS + 10) * 1000, `${victim} NotReady`);
    const notReadyAfter = (Date.now() - killedAt) / 1000;
    // Within the grace period, plus one resync of the node lifecycle controller (2 s).
    expect(notReadyAfter).toBeLessThanOrEqual(GRACE_SECONDS + 2.5);

    await eventually(async () => {
      const ips = await sliceIps();
      return victimIps.every((ip) => !ips.includes(ip)) ? true : undefined;
    }, 15_000, "the dead node's endpoints to leave the EndpointSlice");

    const after = await eventually(async () => {
      const pods = await podsOf();
      return pods.length === 3 && pods.every((p) => p.status?.phase === "Running" && p.spec.nodeName !== victim) ? pods : undefined;
    }, 30_000, "3 running f-web pods on Ready nodes");
    expect(after.map((p) => p.spec.nodeName)).not.toContain(victim);
    const ips = await eventually(async () => {
      const got = await sliceIps();
      return got.length === 3 ? got : undefined;
    }, 15_000, "3 ready endpoints again");
    expect(ips.sort()).toEqual(after.map((p) => p.status.podIP as string).sort());
  });
});
