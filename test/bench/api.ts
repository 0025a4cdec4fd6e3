/**
 * npm run bench:api — a load test of the Kubernetes API: N pods (1,000 by default) created
 * through the API across 3 node-agents, as fast as the API accepts them with a bounded number
 * of requests in flight; reports creates/s, the time until all are Running, and, as the
 * baseline measured in the same run, raw JetStream KV puts/s of the same objects through the
 * same nats-server (the store underneath).
 */
import { randomBytes } from "node:crypto";
import { build as buildHistogram } from "hdr-histogram-js";
import { paths } from "../../cluster/kube-client.ts";
import { TestCluster } from "../integration/fixture.ts";

const N = Number(process.env.BENCH_PODS ?? 1000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 32);

function pod(name: string): object {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "load", labels: { app: "load" } }, spec: { containers: [{ name: "app", image: "registry.k8s.io/e2e-test-images/agnhost:2.47" }] } };
}

async function pool(count: number, worker: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < count) await worker(next++);
  }));
}

// /22 pod CIDRs: 1,021 pod IPs per node, so 1,000 pods fit on 3 nodes (a /24 holds 253).
const cluster = await TestCluster.start({ nodes: 3, nodeCidrMask: 22 });
try {
  await cluster.kube.create(paths.nodes().replace("nodes", "namespaces"), { apiVersion: "v1", kind: "Namespace", metadata: { name: "load" } });

  // Baseline: the store alone, the same JSON through JetStream KV from this process.
  const kv = await cluster.nc.jetstream().views.kv(`bench_${randomBytes(3).toString("hex")}`, { history: 1 });
  const body = new TextEncoder().encode(JSON.stringify(pod("x")));
  let t0 = performance.now();
  await pool(N, async (i) => void (await kv.put(`pods.load.p-${i}`, body)));
  const kvRate = (N / (performance.now() - t0)) * 1000;

  const latency = buildHistogram({ numberOfSignificantValueDigits: 3 });
  t0 = performance.now();
  await pool(N, async (i) => {
    const s = performance.now();
    await cluster.kube.create(paths.pods("load"), pod(`p-${i}`));
    latency.recordValue(Math.round((performance.now() - s) * 1000));
  });
  const createdMs = performance.now() - t0;
  let running = 0;
  let perNode: Record<string, number> = {};
  while (running < N) {
    const pods = await cluster.kube.list(paths.pods("load"));
    running = pods.filter((p) => p.status?.phase === "Running").length;
    perNode = {};
    for (const p of pods) perNode[p.spec.nodeName ?? "-"] = (perNode[p.spec.nodeName ?? "-"] ?? 0) + 1;
    if (running < N) await new Promise((r) => setTimeout(r, 250));
    if (performance.now() - t0 > 300_000) throw new Error(`only ${running}/${N} Running after 5 minutes`);
  }
  const allRunningMs = performance.now() - t0;
  const ms = (us: number) => `${(us / 1000).toFixed(1)} ms`;
  console.log(`\nkubewire API load: ${N} pods through the API, ${IN_FLIGHT} requests in flight, 3 node-agents`);
  console.log(`  raw JetStream KV puts/s (baseline)      ${Math.round(kvRate).toLocaleString("en-US")}`);
  console.log(`  API pod creates/s                       ${Math.round((N / createdMs) * 1000).toLocaleString("en-US")}  (${((N / createdMs) * 1000 / kvRate).toFixed(2)}x the raw KV rate)`);
  console.log(`  create latency p50 / p99                ${ms(latency.getValueAtPercentile(50))} / ${ms(latency.getValueAtPercentile(99))}`);
  console.log(`  all ${N} created in                      ${(createdMs / 1000).toFixed(1)} s`);
  console.log(`  all ${N} Running (scheduled, plumbed, reported) after ${(allRunningMs / 1000).toFixed(1)} s`);
  console.log(`  pods per node                           ${Object.entries(perNode).sort().map(([n, c]) => `${n}=${c}`).join(" ")}`);
} finally {
  await cluster.stop();
}
