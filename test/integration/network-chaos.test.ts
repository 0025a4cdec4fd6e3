/**
 * NetworkChaos on real processes (3 node-agents, a control plane, nats-server), as a user drives
 * it: kubectl apply of a fault between one node pair on one port, latency measured inside the
 * client pod by the emulated curl (-w time_total - time_connect per keep-alive request: one
 * round trip, the exec RPC's own time not in it), `kubectl get` with the status the control
 * plane aggregates from the nodes' counters, two faults stacked on the same pods, deletion, and a
 * malformed object refused with the field named.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Subjects, type FaultStatsResponse } from "../../cluster/types.ts";
import { request } from "../../cluster/rpc.ts";
import { NETEXEC_IMAGE, TestCluster, netexecPod, until, type TestPod } from "./fixture.ts";

let cluster: TestCluster;
const ip = new Map<string, string>();
let client: TestPod;
const REQUESTS = 25;

/** p50 of one round trip (ms) of REQUESTS keep-alive HTTP requests from the client pod to `url`, timed by curl in the pod. */
async function p50(url: string): Promise<number> {
  const res = await cluster.exec(client, ["curl", "-s", "-o", "/dev/null", "-m", "60", "-w", "%{time_connect} %{time_total}\\n", ...Array.from({ length: REQUESTS }, () => url)], 120_000);
  expect(res.exitCode, res.stderr).toBe(0);
  const rtts = res.stdout
    .trim()
    .split("\n")
    .map((l) => {
      const [connect, total] = l.split(" ").map(Number) as [number, number];
      return (total - connect) * 1000;
    })
    .sort((a, b) => a - b);
  expect(rtts).toHaveLength(REQUESTS);
  return rtts[Math.floor(rtts.length / 2)]!;
}

const chaosDoc = (name: string, spec: object) => ({ apiVersion: "chaos.kubewire.io/v1alpha1", kind: "NetworkChaos", metadata: { name, namespace: "default" }, spec });

interface ChaosStatus {
  phase?: string;
  nodes?: Array<{ node: string; packets: number; delayed: number; dropped: number }>;
  totals?: { packets: number; delayed: number; dropped: number };
}

async function status(name: string): Promise<ChaosStatus> {
  const out = await cluster.kubectlOk(["get", "networkchaos", name, "-o", "json"]);
  return (JSON.parse(out) as { status?: ChaosStatus }).status ?? {};
}

/** The faults node-1 applies now (the node's own answer, not the status's). */
async function appliedOn(node: string): Promise<string[]> {
  const r = await request<FaultStatsResponse>(cluster.nc, Subjects.node(node, "fault"), { stats: true }, 5000);
  return r.faults.map((f) => f.key);
}

beforeAll(async () => {
  cluster = await TestCluster.start(3);
  // srv-2 on node-2 serves 8080 and 9090 (two netexec containers in one netns); web-3 on node-3.
  await cluster.apply({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "srv-2", labels: { app: "srv" } },
    spec: {
      nodeName: "node-2",
      containers: [
        { name: "a", image: NETEXEC_IMAGE, args: ["netexec", "--http-port=8080"], ports: [{ containerPort: 8080 }] },
        { name: "b", image: NETEXEC_IMAGE, args: ["netexec", "--http-port=9090"], ports: [{ containerPort: 9090 }] },
      ],
    },
  });
  await cluster.apply(netexecPod("web-3", "node-3", { app: "web" }));
  await cluster.apply(netexecPod("client", "node-1", { app: "client" }));
  for (const name of ["srv-2", "web-3", "client"]) {
    const pod = await cluster.waitForPodRunning("default", name);
    await cluster.waitForPodOnNode(pod);
    ip.set(name, pod.podIp);
    if (name === "client") client = pod;
  }
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("NetworkChaos", () => {
  it(
    "delay between one node pair on one port moves that latency by +50 ms and nothing else; status counts it; stacking; deletion; bad input",
    async () => {
      const url2 = `http://${ip.get("srv-2")}:8080/hostname`;
      const url2b = `http://${ip.get("srv-2")}:9090/hostname`;
      const url3 = `http://${ip.get("web-3")}:8080/hostname`;
      const base = { p8080: await p50(url2), p9090: await p50(url2b), node3: await p50(url3) };

      // node-1 -> node-2, TCP port 8080 only: delay 50 ms +- 10 ms (uniform).
      const delay = chaosDoc("delay-n1-n2", {
        selector: { nodes: ["node-1"] },
        target: { selector: { nodes: ["node-2"] } },
        direction: "to",
        ports: [8080],
        protocol: "TCP",
        delay: { latency: "50ms", jitter: "10ms" },
        seed: 1,
      });
      await cluster.apply(delay);
      await cluster.kubectlOk(["wait", "--for=jsonpath={.status.phase}=Active", "networkchaos/delay-n1-n2", "--timeout=30s"]);
      expect(await appliedOn("node-1")).toEqual(["default/delay-n1-n2"]);
      // Applied where the sender is: node-1 only.
      expect(await appliedOn("node-2")).toEqual([]);

      const faulted = { p8080: await p50(url2), p9090: await p50(url2b), node3: await p50(url3) };
      expect(Math.abs(faulted.p8080 - base.p8080 - 50), JSON.stringify({ base, faulted })).toBeLessThanOrEqual(5);
      expect(Math.abs(faulted.p9090 - base.p9090), JSON.stringify({ base, faulted })).toBeLessThan(10);
      expect(Math.abs(faulted.node3 - base.node3), JSON.stringify({ base, faulted })).toBeLessThan(10);

      // The status the control plane aggregates: node-1 delayed at least every request.
      const st = await until("delay status counts the requests", async () => {
        const s = await status("delay-n1-n2");
        return (s.totals?.delayed ?? 0) >= REQUESTS ? s : undefined;
      });
      expect(st.phase).toBe("Active");
      expect(st.nodes?.map((n) => n.node)).toEqual(["node-1"]);
      expect(st.totals!.dropped).toBe(0);
      const table = await cluster.kubectlOk(["get", "netchaos"]);
      expect(table).toMatch(/NAME\s+ACTION\s+DIRECTION\s+DURATION\s+PHASE\s+PACKETS\s+DELAYED\s+DROPPED\s+AGE/);
      expect(table).toMatch(/delay-n1-n2\s+netem\s+to\s+Active\s+\d+\s+\d+\s+0\s+/);

      // A second object on the same pods (client -> srv by labels): 20 % loss. Both apply.
      const loss = chaosDoc("loss-client-srv", {
        selector: { labelSelectors: { app: "client" } },
        target: { selector: { labelSelectors: { app: "srv" } } },
        ports: [8080],
        loss: { loss: "20" },
        seed: 2,
      });
      await cluster.apply(loss);
      await cluster.kubectlOk(["wait", "--for=jsonpath={.status.phase}=Active", "networkchaos/loss-client-srv", "--timeout=30s"]);
      const delayedBefore = (await status("delay-n1-n2")).totals!.delayed;
      const stacked = await p50(url2);
      expect(stacked - base.p8080).toBeGreaterThanOrEqual(40);
      const both = await until("both objects count the traffic", async () => {
        const [d, l] = [await status("delay-n1-n2"), await status("loss-client-srv")];
        return (d.totals?.delayed ?? 0) >= delayedBefore + REQUESTS && (l.totals?.dropped ?? 0) > 0 && (l.totals?.packets ?? 0) >= REQUESTS ? { d, l } : undefined;
      });
      expect(both.l.nodes?.map((n) => n.node)).toEqual(["node-1"]);

      // Deleting the objects removes the faults: latency back.
      await cluster.kubectlOk(["delete", "networkchaos", "delay-n1-n2", "loss-client-srv"]);
      await until("node-1 no longer applies the faults", async () => ((await appliedOn("node-1")).length === 0 ? true : undefined));
      const after = await p50(url2);
      expect(Math.abs(after - base.p8080), JSON.stringify({ base, after })).toBeLessThan(10);

      // A malformed object is refused with the field named, and not stored.
      const bad = cluster.manifestFile(
        "bad-chaos",
        ["apiVersion: chaos.kubewire.io/v1alpha1", "kind: NetworkChaos", "metadata:", "  name: bad", "spec:", "  selector: {}", "  delay:", "    latency: fast", ""].join("\n"),
      );
      const refused = await cluster.kubectl(["apply", "-f", bad]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain("spec.delay.latency");
      const gone = await cluster.kubectl(["get", "networkchaos", "bad"]);
      expect(gone.stderr).toContain("NotFound");
    },
    300_000,
  );
});
