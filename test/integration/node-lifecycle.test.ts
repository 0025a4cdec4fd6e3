/**
 * Node lifecycle as Kubernetes runs it, with real processes: node-agents renew Leases in
 * kube-node-lease; a node-agent killed with -9 stops renewing, its node goes Ready Unknown after
 * the grace period and is tainted unreachable; its pods are marked not ready at once (their
 * endpoints leave the Service before any eviction), then evicted when the tolerationSeconds the
 * DefaultTolerationSeconds plugin gave them run out, and recreated on the other nodes while the
 * Service keeps answering; a pod that tolerates forever stays. The node restarted comes back
 * Ready, untainted, with only the pods bound to it and routes to the nodes that exist. A
 * control-plane restart while a node is dead judges it from the stored Lease: Unknown within a
 * couple of renew intervals, not a grace period later, and the live nodes stay Ready.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApiError, paths, type KubeObjectLike } from "../../cluster/kube-client.ts";
import { NETEXEC_IMAGE, TestCluster, netexecPod, until, type TestPod } from "./fixture.ts";

const GRACE_SECONDS = 8;
const TOLERATION_SECONDS = 12;
const NS = "default";
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3, nodeGraceSeconds: GRACE_SECONDS, podEvictionSeconds: TOLERATION_SECONDS });
});

afterAll(async () => {
  await cluster?.stop();
});

interface Condition {
  type: string;
  status: string;
  reason?: string;
}
interface Taint {
  key: string;
  effect: string;
  timeAdded?: string;
}

const leasePath = (node: string) => `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${node}`;
const ready = async (node: string): Promise<Condition | undefined> => ((await cluster.kube.get(paths.node(node))).status?.conditions as Condition[] | undefined)?.find((c) => c.type === "Ready");
const taints = async (node: string): Promise<Taint[]> => ((await cluster.kube.get(paths.node(node))).spec?.taints as Taint[] | undefined) ?? [];
const ours = (t: Taint) => t.key.startsWith("node.kubernetes.io/");

async function getPod(name: string): Promise<KubeObjectLike | undefined> {
  return cluster.kube.get(paths.pod(NS, name)).catch((err: unknown) => {
    if (err instanceof KubeApiError && err.code === 404) return undefined;
    throw err;
  });
}

async function webPods(): Promise<KubeObjectLike[]> {
  return (await cluster.kube.list(`${paths.pods(NS)}?labelSelector=app%3Dlc-web`)).filter((p) => !p.metadata.deletionTimestamp);
}

async function endpoints(): Promise<Array<{ ip: string; ready: boolean; nodeName?: string }>> {
  const slices = await cluster.kube.list(`/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dlc-web`);
  return slices.flatMap((s) => ((s as { endpoints?: Array<{ addresses: string[]; nodeName?: string; conditions?: { ready?: boolean } }> }).endpoints ?? []).map((e) => ({ ip: e.addresses[0]!, ready: e.conditions?.ready === true, nodeName: e.nodeName })));
}

/** Ten requests through the ClusterIP from the client pod: the hostnames that answered, or undefined if one failed. */
async function throughService(client: TestPod, vip: string): Promise<string[] | undefined> {
  const names: string[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await cluster.exec(client, ["curl", "-s", "-m", "2", `http://${vip}/hostname`], 10_000);
    if (r.exitCode !== 0) return undefined;
    names.push(r.stdout.trim());
  }
  return names;
}

describe("node lifecycle", () => {
  let client: TestPod;
  let vip: string;
  let victim: string;
  let evicted: string[];

  it("every node-agent renews its Lease in kube-node-lease, as the kubelet does", async () => {
    for (const name of cluster.nodeNames) {
      const lease: KubeObjectLike = await until(`lease of ${name}`, () => cluster.kube.get(leasePath(name)));
      expect(lease.spec).toMatchObject({ holderIdentity: name, leaseDurationSeconds: 4 });
      expect(lease.metadata.ownerReferences).toEqual([expect.objectContaining({ apiVersion: "v1", kind: "Node", name })]);
      const first = Date.parse(lease.spec.renewTime);
      await until(`${name} renewing`, async () => (Date.parse((await cluster.kube.get(leasePath(name))).spec.renewTime) > first ? true : undefined), 10_000);
      expect((await ready(name))?.status).toBe("True");
    }
  });

  it("kill -9 of a node: Unknown after the grace period, tainted, its endpoints out at once, its pods evicted after tolerationSeconds and recreated, the Service answering", async () => {
    await cluster.kube.create("/apis/apps/v1/namespaces/default/deployments", {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "lc-web" },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "lc-web" } },
        template: { metadata: { labels: { app: "lc-web" } }, spec: { containers: [{ name: "web", image: NETEXEC_IMAGE, args: ["netexec", "--http-port=8080"], ports: [{ containerPort: 8080 }] }] } },
      },
    });
    const svc = await cluster.kube.create<KubeObjectLike>(`/api/v1/namespaces/${NS}/services`, { apiVersion: "v1", kind: "Service", metadata: { name: "lc-web" }, spec: { selector: { app: "lc-web" }, ports: [{ port: 80, targetPort: 8080 }] } });
    vip = svc.spec.clusterIP;
    await cluster.apply(netexecPod("lc-client", "node-1", { app: "lc-client" }));
    client = await cluster.waitForPodRunning(NS, "lc-client");
    const before = await until("3 running lc-web pods, 3 ready endpoints", async () => {
      const pods = await webPods();
      const eps = await endpoints();
      return pods.length === 3 && pods.every((p) => p.status?.phase === "Running") && eps.filter((e) => e.ready).length === 3 ? pods : undefined;
    }, 60_000);
    // The DefaultTolerationSeconds admission plugin gave every pod the emulator's default.
    for (const p of before) {
      expect(p.spec.tolerations).toEqual(expect.arrayContaining([
        { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: TOLERATION_SECONDS },
        { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: TOLERATION_SECONDS },
      ]));
    }
    victim = before.map((p) => p.spec.nodeName as string).find((n) => n !== "node-1")!;
    expect(victim, "a web pod on a node other than the client's").toBeDefined();
    const victimPods = before.filter((p) => p.spec.nodeName === victim);
    const victimIps = victimPods.map((p) => p.status.podIP as string);
    evicted = victimPods.map((p) => p.metadata.name!);
    // A pod that tolerates the taints forever (as a DaemonSet's pods do) stays through all of it.
    await cluster.apply({
      ...netexecPod("lc-stay", victim, { app: "lc-stay" }),
      spec: { ...(netexecPod("lc-stay", victim, {}) as { spec: object }).spec, tolerations: [{ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" }, { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute" }] },
    });
    const stay = await cluster.waitForPodRunning(NS, "lc-stay");
    expect(await until("the Service answering", () => throughService(client, vip), 20_000)).toHaveLength(10);

    await cluster.kill9(victim);
    const killedAt = Date.now();
    const unknown = await until(`${victim} Ready Unknown`, async () => {
      const c = await ready(victim);
      return c?.status === "Unknown" ? c : undefined;
    }, (GRACE_SECONDS + 15) * 1000);
    const unknownAfterS = (Date.now() - killedAt) / 1000;
    expect(unknown.reason).toBe("NodeStatusUnknown");
    // Not before the grace period (the lease was renewed at most one interval before the kill), nor long after.
    expect(unknownAfterS).toBeGreaterThanOrEqual(GRACE_SECONDS - 1.5);
    expect(unknownAfterS).toBeLessThanOrEqual(GRACE_SECONDS + 4);
    // The Lease stopped renewing at the kill.
    expect(Date.parse((await cluster.kube.get(leasePath(victim))).spec.renewTime)).toBeLessThanOrEqual(killedAt + 50);

    const noExecute = await until(`${victim} tainted unreachable`, async () => {
      const t = await taints(victim);
      const ne = t.find((x) => x.key === "node.kubernetes.io/unreachable" && x.effect === "NoExecute");
      return ne && t.some((x) => x.key === "node.kubernetes.io/unreachable" && x.effect === "NoSchedule") ? ne : undefined;
    }, 10_000);
    const taintedAt = Date.parse(noExecute.timeAdded!);
    expect(Number.isFinite(taintedAt)).toBe(true);

    // MarkPodsNotReady: the endpoints leave the Service now, while the pods still exist.
    await until("the dead node's endpoints not ready", async () => {
      const eps = await endpoints();
      return victimIps.every((ip) => eps.some((e) => e.ip === ip && !e.ready)) ? true : undefined;
    }, 10_000);
    for (const name of evicted) {
      const p = await getPod(name);
      expect(p, `${name} not evicted yet`).toBeDefined();
      expect(p!.metadata.deletionTimestamp).toBeUndefined();
      expect((p!.status.conditions as Condition[]).find((c) => c.type === "Ready")?.status).toBe("False");
    }
    expect(Date.now(), "checked before the tolerations ran out").toBeLessThan(taintedAt + TOLERATION_SECONDS * 1000);
    // kube-proxy on the client's node stops using them: every request answered by a live pod.
    const answered = await until("ten answers through the Service", () => throughService(client, vip), 20_000);
    expect(answered.filter((h) => evicted.includes(h))).toEqual([]);

    // Evicted once their tolerationSeconds ran out (timeAdded has whole seconds: up to 1 s early).
    await until("the dead node's pods evicted", async () => ((await Promise.all(evicted.map(getPod))).every((p) => p === undefined) ? true : undefined), (TOLERATION_SECONDS + 20) * 1000);
    expect(Date.now()).toBeGreaterThanOrEqual(taintedAt + (TOLERATION_SECONDS - 1) * 1000);
    const events = await cluster.kube.list(`/api/v1/namespaces/${NS}/events`);
    expect(events.filter((e) => (e as { reason?: string }).reason === "TaintManagerEviction").map((e) => (e as unknown as { involvedObject: { name: string } }).involvedObject.name)).toEqual(expect.arrayContaining(evicted));
    // The pod that tolerates forever is still bound to the dead node.
    expect((await getPod("lc-stay"))?.spec.nodeName).toBe(stay.nodeName);

    // The Deployment put them back on Ready nodes; the Service has them all.
    const after = await until("3 running lc-web pods on the other nodes", async () => {
      const pods = await webPods();
      return pods.length === 3 && pods.every((p) => p.status?.phase === "Running" && p.spec.nodeName !== victim) ? pods : undefined;
    }, 60_000);
    await until("3 ready endpoints again", async () => {
      const ready = (await endpoints()).filter((e) => e.ready).map((e) => e.ip).sort();
      return JSON.stringify(ready) === JSON.stringify(after.map((p) => p.status.podIP as string).sort()) ? true : undefined;
    }, 20_000);
    expect(await until("the Service answering", () => throughService(client, vip), 20_000)).toHaveLength(10);
  });

  it("the node restarted comes back Ready, untainted, with only its current pods and routes to the current nodes", async () => {
    cluster.startNode(victim);
    await cluster.waitForNode(victim);
    await until(`${victim} Ready`, async () => ((await ready(victim))?.status === "True" ? true : undefined), 30_000);
    await until(`${victim} untainted`, async () => ((await taints(victim)).filter(ours).length === 0 ? true : undefined), 15_000);

    // Pods: exactly those bound to it now (the evicted ones were deleted while it was down).
    const bound = (await cluster.pods()).filter((p) => p.spec.nodeName === victim && !p.metadata.deletionTimestamp).map((p) => `${p.metadata.namespace}.${p.metadata.name}`).sort();
    expect(bound).toContain(`${NS}.lc-stay`);
    await until(`${victim} plumbing only its current pods`, async () => (JSON.stringify([...(await cluster.status(victim)).pods].sort()) === JSON.stringify(bound) ? true : undefined), 15_000);
    for (const name of evicted) expect((await cluster.status(victim)).pods).not.toContain(`${NS}.${name}`);
    // The pod that stayed is ready again with its node, at the same address, reachable across nodes.
    const stay = await until("lc-stay ready again", async () => {
      const p = await getPod("lc-stay");
      return (p?.status.conditions as Condition[] | undefined)?.find((c) => c.type === "Ready")?.status === "True" ? p : undefined;
    }, 15_000);
    const ping = await until("ping from node-1 to lc-stay", async () => {
      const r = await cluster.exec(client, ["ping", "-c", "1", "-W", "2", stay!.status.podIP]);
      return r.exitCode === 0 ? r : undefined;
    }, 15_000);
    expect(ping.stdout).toMatch(/1 received/);

    // Routes: one via flannel.1 per other node's pod CIDR, nothing else.
    const nodes = await cluster.nodes();
    const want = nodes.filter((n) => n.name !== victim).map((n) => n.podCidr).sort();
    const routes = await cluster.nodeExec(victim, ["ip", "route"]);
    const viaVtep = routes.split("\n").filter((l) => l.includes("dev flannel.1")).map((l) => l.split(" ")[0]!).sort();
    expect(viaVtep).toEqual(want);
  });

  it("a control-plane restart while a node is dead: Unknown from the stored Lease at once, the live nodes stay Ready", async () => {
    await until(`${victim} Ready`, async () => ((await ready(victim))?.status === "True" ? true : undefined), 30_000);
    await cluster.kill9(victim);
    const killedAt = Date.now();
    // The control plane dies before the grace period is over: the stored Ready condition still says True.
    await cluster.kill9("control-plane");
    expect(Date.now() - killedAt).toBeLessThan(GRACE_SECONDS * 1000);
    // Down for longer than the grace period: every node's stored lease is then older than it.
    await until("a grace period since the kill", () => (Date.now() - killedAt > (GRACE_SECONDS + 1) * 1000 ? true : undefined), (GRACE_SECONDS + 5) * 1000);
    cluster.startControlPlane();
    await cluster.waitForApi();
    const upAt = Date.now();
    const live = cluster.nodeNames.filter((n) => n !== victim);
    const seen: Record<string, Set<string>> = Object.fromEntries(live.map((n) => [n, new Set<string>()]));
    await until(`${victim} Unknown after the restart`, async () => {
      for (const n of live) seen[n]!.add((await ready(n))?.status ?? "none");
      return (await ready(victim))?.status === "Unknown" ? true : undefined;
    }, GRACE_SECONDS * 1000);
    const unknownAfterS = (Date.now() - upAt) / 1000;
    // Two renew intervals of settling (4 s leases) and a reconcile, far less than a grace period.
    expect(unknownAfterS).toBeLessThan(GRACE_SECONDS - 2);
    // It stays so, and the live nodes (whose renewals failed while the control plane was away) stay Ready.
    const until2 = Date.now() + 4000;
    while (Date.now() < until2) {
      expect((await ready(victim))?.status).toBe("Unknown");
      for (const n of live) seen[n]!.add((await ready(n))?.status ?? "none");
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const n of live) expect([...seen[n]!], n).toEqual(["True"]);
    expect((await taints(victim)).some((t) => t.key === "node.kubernetes.io/unreachable" && t.effect === "NoExecute")).toBe(true);
  });
});
