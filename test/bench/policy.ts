/**
 * npm run bench:policy — the per-packet cost of a policy verdict (node-agent/policy/engine.ts, what
 * the FORWARD hook calls for each new connection) with 1, 100 and 1,000 NetworkPolicies
 * selecting the destination pod, as ratios to the 1-policy case measured in the same run (aim:
 * 1,000 costs at most 2x of 1); and the one-off cost of compiling a pod's rules after a change.
 *
 * Each policy selects every pod of namespace x and allows ingress from pods labelled peer=<i> on
 * TCP port 8000+i, so every policy adds its own peer and port to the pod's index. The verdicts
 * measured: an allowed connection (its peer's rule is the last policy's), and a denied one.
 * Then, on 3 node processes, the policy programming latency: from the API request creating a
 * NetworkPolicy until every node's engine holds it (each node is asked over NATS, every 2 ms),
 * one policy at a time, p50/p99 (aim p99 <= 1 s); the nodes judge the next new connection with it.
 * Env: BENCH_POLICY_VERDICTS (2,000,000), BENCH_POLICY_APPLIES (200).
 */
import { build as buildHistogram } from "hdr-histogram-js";
import { request } from "../../cluster/rpc.ts";
import { Subjects, type PolicyStateResponse } from "../../cluster/types.ts";
import { PolicyEngine } from "../../node-agent/policy/engine.ts";
import { TestCluster } from "../integration/fixture.ts";

const VERDICTS = Number(process.env.BENCH_POLICY_VERDICTS ?? 2_000_000);
const APPLIES = Number(process.env.BENCH_POLICY_APPLIES ?? 200);
const ip = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

function cluster(policies: number): { engine: PolicyEngine; dst: number; allowedSrc: number; deniedSrc: number; port: number } {
  const ns = { apiVersion: "v1", kind: "Namespace", metadata: { name: "x", labels: { "kubernetes.io/metadata.name": "x" } } };
  const pods = [{ apiVersion: "v1", kind: "Pod", metadata: { namespace: "x", name: "a", labels: { pod: "a" } }, spec: { nodeName: "node-1", containers: [{ name: "c", ports: [] }] }, status: { podIP: "10.244.1.2", phase: "Running" } }];
  for (let i = 0; i < policies; i++) {
    pods.push({ apiVersion: "v1", kind: "Pod", metadata: { namespace: "x", name: `p${i}`, labels: { pod: `p${i}`, peer: String(i) } as Record<string, string> & { pod: string } }, spec: { nodeName: "node-2", containers: [{ name: "c", ports: [] }] }, status: { podIP: `10.244.${2 + (i >> 8)}.${(i & 255) + 2}`, phase: "Running" } } as never);
  }
  pods.push({ apiVersion: "v1", kind: "Pod", metadata: { namespace: "x", name: "stranger", labels: { pod: "stranger" } }, spec: { nodeName: "node-2", containers: [{ name: "c", ports: [] }] }, status: { podIP: "10.244.9.9", phase: "Running" } });
  const networkPolicies = Array.from({ length: policies }, (_, i) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { namespace: "x", name: `allow-${i}` },
    spec: { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { peer: String(i) } } }], ports: [{ port: 8000 + i, protocol: "TCP" }] }] },
  }));
  const engine = new PolicyEngine({ nodeName: "node-1" });
  engine.replaceAll({ namespaces: [ns], pods, networkPolicies });
  const last = policies - 1;
  return { engine, dst: ip(10, 244, 1, 2), allowedSrc: ip(10, 244, 2 + (last >> 8), (last & 255) + 2), deniedSrc: ip(10, 244, 9, 9), port: 8000 + last };
}

function nsPerVerdict(engine: PolicyEngine, src: number, dst: number, port: number, expectAllowed: boolean): number {
  const conn = { src, dst, proto: 6, srcPort: 40000, dstPort: port };
  if (engine.verdict(conn).allowed !== expectAllowed) throw new Error(`verdict for port ${port} is not ${expectAllowed ? "allow" : "deny"}`);
  let allowed = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < VERDICTS; i++) {
    conn.srcPort = 40000 + (i & 1023);
    if (engine.verdict(conn).allowed) allowed++;
  }
  const ns = Number(process.hrtime.bigint() - t0) / VERDICTS;
  if (allowed !== (expectAllowed ? VERDICTS : 0)) throw new Error("verdicts changed during the run");
  return ns;
}

async function programmingLatency(): Promise<void> {
  const cluster = await TestCluster.start({ nodes: 3 });
  try {
    await cluster.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } });
    const hist = buildHistogram({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    for (let i = 0; i < APPLIES; i++) {
      const name = `p-${i}`;
      const t0 = performance.now();
      await cluster.kube.create("/apis/networking.k8s.io/v1/namespaces/bench/networkpolicies", {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name, namespace: "bench" },
        spec: { podSelector: { matchLabels: { app: `a${i}` } }, ingress: [{ from: [{ podSelector: { matchLabels: { peer: String(i) } } }], ports: [{ port: 8000 + (i % 1000) }] }] },
      });
      const pending = new Set(cluster.nodeNames);
      while (pending.size > 0) {
        for (const n of [...pending]) {
          const r = await request<PolicyStateResponse>(cluster.nc, Subjects.node(n, "policy"), { kind: "NetworkPolicy", namespace: "bench", name }, 5000);
          if (r.present) pending.delete(n);
        }
        if (pending.size > 0) await new Promise((r) => setTimeout(r, 2));
        if (performance.now() - t0 > 30_000) throw new Error(`${name} not on ${[...pending].join(", ")} after 30 s`);
      }
      hist.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    }
    const ms = (q: number) => (hist.getValueAtPercentile(q) / 1000).toFixed(1);
    console.log(`policy programming latency, ${APPLIES} NetworkPolicies one at a time, create until all 3 nodes hold it: p50 ${ms(50)} ms, p99 ${ms(99)} ms, max ${(hist.maxValue / 1000).toFixed(1)} ms (aim p99 <= 1000 ms)`);
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const rows: Array<{ policies: number; allowNs: number; denyNs: number; compileMs: number }> = [];
  for (const n of [1, 100, 1000]) {
    const c = cluster(n);
    const t0 = performance.now();
    c.engine.verdict({ src: c.allowedSrc, dst: c.dst, proto: 6, srcPort: 1, dstPort: c.port });
    const compileMs = performance.now() - t0;
    // Warm up, then measure.
    nsPerVerdict(c.engine, c.allowedSrc, c.dst, c.port, true);
    rows.push({ policies: n, allowNs: nsPerVerdict(c.engine, c.allowedSrc, c.dst, c.port, true), denyNs: nsPerVerdict(c.engine, c.deniedSrc, c.dst, c.port, false), compileMs });
  }
  const base = rows[0]!;
  console.log(`policy verdicts, ${VERDICTS} per row (ratios to 1 policy, same run)`);
  console.log("policies  allow ns/verdict  ratio   deny ns/verdict  ratio   compile ms (first verdict after a change)");
  for (const r of rows) {
    console.log(
      `${String(r.policies).padStart(8)}  ${r.allowNs.toFixed(1).padStart(16)}  ${(r.allowNs / base.allowNs).toFixed(2).padStart(5)}x  ${r.denyNs.toFixed(1).padStart(15)}  ${(r.denyNs / base.denyNs).toFixed(2).padStart(5)}x  ${r.compileMs.toFixed(2).padStart(10)}`,
    );
  }
  const worst = Math.max(rows[2]!.allowNs / base.allowNs, rows[2]!.denyNs / base.denyNs);
  console.log(`1,000 policies cost ${worst.toFixed(2)}x of 1 (aim <= 2x)`);
  await programmingLatency();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
