/**
 * npm run bench:datapath — the datapath alone, without NATS or process boundaries: UDP frames
 * from a pod on node-1 to a pod on node-2 through two simulated nodes joined by the in-memory
 * overlay (test/unit/netsim.ts). Baseline in the same run: the same number of frames of the same
 * size pushed through the in-memory hub's batching and delivery with no datapath around it.
 * Tells how much of the overlay benchmark's per-frame time is spent in kubewire's own code.
 * The datapath runs twice, without and with flow records (a ring per node, as node-agents keep
 * by default): the "flows on/off" column is the cost of recording every frame at both pods'
 * veths. Then with a NetworkChaos on node-1 that matches every frame but impairs nothing (loss
 * "0": the classification and netem's bookkeeping, no drop), and one that matches none of them
 * (another port): the cost of a fault on the links it does and does not concern.
 */
import { MemoryOverlayHub } from "../../overlay/memory-transport.ts";
import { decodeBatch } from "../../overlay/wire/index.ts";
import { DEFAULT_FLOW_CAPACITY, FlowLog } from "../../node-agent/flows.ts";
import { SimCluster, nodeRecord } from "../unit/netsim.ts";
import { mustParseCidr } from "../../cluster/addressing.ts";
import { compileChaos, type ClusterView } from "../../node-agent/faults/compile.ts";
import { parseNetworkChaos } from "../../node-agent/faults/spec.ts";
import { parseIpv4Addr } from "../../overlay/wire/index.ts";

const N = Number(process.env.BENCH_FRAMES ?? 200_000);
const BURST = 64;

type Chaos = "none" | "matching" | "other-port";

/** A NetworkChaos from node-1 to node-2 that matches the benchmark's frames (port 5201) or not. */
function applyChaos(c: SimCluster, which: Exclude<Chaos, "none">): void {
  const parsed = parseNetworkChaos({
    apiVersion: "chaos.kubewire.io/v1alpha1",
    kind: "NetworkChaos",
    metadata: { name: "bench", namespace: "default", creationTimestamp: new Date().toISOString() },
    spec: { selector: { nodes: ["node-1"] }, target: { selector: { nodes: ["node-2"] } }, ports: [which === "matching" ? 5201 : 5202], protocol: "UDP", loss: { loss: "0" }, seed: 1 },
  });
  if (!parsed.ok) throw new Error(parsed.error);
  const view: ClusterView = {
    nodes: [1, 2].map((n) => {
      const r = nodeRecord(n);
      return { name: r.name, labels: {}, podCidr: mustParseCidr(r.podCidr), internalIp: parseIpv4Addr(r.internalIp) };
    }),
    pods: [],
  };
  for (const node of ["node-1", "node-2"]) c.node(node).net.setChaos(compileChaos([parsed.chaos], view, node, Date.now()).faults);
}

function datapath(size: number, flows: boolean, chaos: Chaos = "none"): number {
  const c = new SimCluster(2);
  if (chaos !== "none") applyChaos(c, chaos);
  if (flows) for (const n of c.nodes.values()) n.dp.flows = new FlowLog(DEFAULT_FLOW_CAPACITY, n.name, () => n.dp.clock());
  const a = c.addPod("node-1", "pod-a", "10.244.0.2");
  const b = c.addPod("node-2", "pod-b", "10.244.1.2");
  let got = 0;
  b.ns.bindUdp(5201, () => void got++);
  const payload = new Uint8Array(size);
  const run = (count: number) => {
    for (let i = 0; i < count; i += BURST) {
      for (let j = 0; j < BURST; j++) a.ns.sendUdp(b.ip, 5201, 40000, payload);
      c.run();
    }
  };
  run(20_000); // warm-up: JIT and ARP
  got = 0;
  const t0 = performance.now();
  run(N);
  const ms = performance.now() - t0;
  if (got < N) throw new Error(`only ${got} of ${N} frames arrived`);
  return (got / ms) * 1000;
}

function hubOnly(size: number): number {
  const hub = new MemoryOverlayHub();
  let got = 0;
  hub.attach("node-2", (message) => {
    const batch = decodeBatch(message);
    if (batch.ok) got += batch.value.length;
  });
  const t = hub.attach("node-1", () => {});
  const frame = new Uint8Array(size + 42 + 50);
  const run = (count: number) => {
    for (let i = 0; i < count; i += BURST) {
      for (let j = 0; j < BURST; j++) t.send("node-2", frame);
      hub.run();
    }
  };
  run(20_000);
  got = 0;
  const t0 = performance.now();
  run(N);
  return (got / (performance.now() - t0)) * 1000;
}

console.log(`kubewire datapath benchmark: ${N.toLocaleString("en-US")} UDP frames pod-to-pod across two simulated nodes, one process`);
console.log(
  `${"payload".padEnd(10)}${"hub only frames/s".padStart(20)}${"datapath frames/s".padStart(20)}${"us/frame".padStart(12)}${"ratio".padStart(10)}${"with flows f/s".padStart(18)}${"flows on/off".padStart(14)}` +
    `${"chaos matching".padStart(16)}${"chaos other port".padStart(18)}`,
);
for (const size of [100, 1400]) {
  const base = hubOnly(size);
  const dp = datapath(size, false);
  const withFlows = datapath(size, true);
  const matching = datapath(size, false, "matching");
  const otherPort = datapath(size, false, "other-port");
  console.log(
    `${`${size} B`.padEnd(10)}${Math.round(base).toLocaleString("en-US").padStart(20)}${Math.round(dp).toLocaleString("en-US").padStart(20)}${(1e6 / dp).toFixed(2).padStart(12)}${`${(dp / base).toFixed(2)}x`.padStart(10)}` +
      `${Math.round(withFlows).toLocaleString("en-US").padStart(18)}${`${(withFlows / dp).toFixed(2)}x`.padStart(14)}${`${(matching / dp).toFixed(2)}x`.padStart(16)}${`${(otherPort / dp).toFixed(2)}x`.padStart(18)}`,
  );
}
