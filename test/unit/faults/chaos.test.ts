/**
 * NetworkChaos from object to packets: reading the spec (node-agent/faults/spec.ts), compiling
 * it into one node's faults (compile.ts), and the faults at work in the deterministic
 * simulation (test/unit/netsim.ts): scoping by node pair and port on the inner addresses, delay,
 * and the same seed replaying the same drops.
 */
import { describe, expect, it } from "vitest";
import { mustParseCidr } from "../../../cluster/addressing.ts";
import { compileChaos, matchPacket, type ClusterView } from "../../../node-agent/faults/compile.ts";
import { parseNetworkChaos, type ParsedChaos } from "../../../node-agent/faults/spec.ts";
import { parseIpv4Addr } from "../../../overlay/wire/index.ts";
import { SimCluster, ip, nodeRecord } from "../netsim.ts";

function chaos(spec: Record<string, unknown>, name = "c", created = "2026-01-01T00:00:00Z"): ParsedChaos {
  const r = parseNetworkChaos({ apiVersion: "chaos.kubewire.io/v1alpha1", kind: "NetworkChaos", metadata: { name, namespace: "default", creationTimestamp: created }, spec });
  if (!r.ok) throw new Error(r.error);
  return r.chaos;
}

/** node-1..3 as the simulation numbers them, and pods a (node-1), a2 (node-1), b (node-2), c (node-3). */
function view(): ClusterView {
  return {
    nodes: [1, 2, 3].map((n) => {
      const r = nodeRecord(n);
      return { name: r.name, labels: { zone: n === 3 ? "b" : "a" }, podCidr: mustParseCidr(r.podCidr), internalIp: parseIpv4Addr(r.internalIp) };
    }),
    pods: [
      { namespace: "default", name: "a", labels: { app: "client" }, ip: ip("10.244.0.2"), node: "node-1" },
      { namespace: "default", name: "a2", labels: { app: "web" }, ip: ip("10.244.0.3"), node: "node-1" },
      { namespace: "default", name: "b", labels: { app: "web" }, ip: ip("10.244.1.2"), node: "node-2" },
      { namespace: "other", name: "c", labels: { app: "web" }, ip: ip("10.244.2.2"), node: "node-3" },
    ],
  };
}

const T0 = Date.parse("2026-01-01T00:00:00Z");

describe("NetworkChaos spec", () => {
  it("reads netem's vocabulary with Chaos Mesh's shapes and defaults", () => {
    const c = chaos({
      selector: { nodes: ["node-1"] },
      target: { selector: { nodes: ["node-2"] } },
      ports: [8080],
      protocol: "TCP",
      delay: { latency: "50ms", jitter: "10ms", correlation: "25", distribution: "normal", reorder: { reorder: "25", gap: 5 } },
      loss: { gemodel: { p: "1", r: "30" } },
      duplicate: { duplicate: "0.5" },
      corrupt: { corrupt: "0.1%" },
      bandwidth: { rate: "8mbit", limit: 20000, buffer: 10000 },
      duration: "1m30s",
    });
    expect(c).toMatchObject({ direction: "to", action: "netem", protocol: 6, ports: [8080], durationMs: 90_000, startMs: T0 });
    expect(c.netem).toEqual({
      delay: { latencyMs: 50, jitterMs: 10, correlation: 0.25, distribution: "normal" },
      reorder: { probability: 0.25, correlation: 0, gap: 5 },
      loss: { kind: "gemodel", p: 0.01, r: 0.3, lossBad: 1, lossGood: 0 },
      duplicate: { probability: 0.005, correlation: 0 },
      corrupt: { probability: 0.001, correlation: 0 },
      bandwidth: { rateBytesPerSec: 1_000_000, limitBytes: 20000, bufferBytes: 10000 },
    });
    // No seed: one derived from namespace/name, the same every time.
    expect(chaos({ selector: {} }).seed).toBe(chaos({ selector: {} }).seed);
    expect(chaos({ selector: {}, seed: 7 }).seed).toBe(7);
  });

  it("names the field of what does not read", () => {
    const bad = (spec: Record<string, unknown>) => {
      const r = parseNetworkChaos({ metadata: { name: "x", namespace: "default" }, spec });
      return r.ok ? "ok" : r.field;
    };
    expect(bad({ selector: {}, delay: { latency: "fast" } })).toBe("spec.delay.latency");
    expect(bad({ selector: {}, loss: { loss: "120" } })).toBe("spec.loss.loss");
    expect(bad({ selector: {}, loss: { loss: "1", gemodel: { p: "1" } } })).toBe("spec.loss");
    expect(bad({ selector: {}, ports: [0] })).toBe("spec.ports[0]");
    expect(bad({ selector: {}, bandwidth: { rate: "fast", limit: 1, buffer: 1 } })).toBe("spec.bandwidth.rate");
    expect(bad({ selector: {}, direction: "sideways" })).toBe("spec.direction");
  });
});

describe("compiling NetworkChaos for a node", () => {
  const n1n2 = chaos({ selector: { nodes: ["node-1"] }, target: { selector: { nodes: ["node-2"] } }, ports: [8080], delay: { latency: "50ms" } });
  const [A, A2, B, C] = ["10.244.0.2", "10.244.0.3", "10.244.1.2", "10.244.2.2"].map(ip) as [number, number, number, number];

  it("a node pair and a port: only packets from node-1 to node-2's port 8080; applied on node-1 only", () => {
    const { faults } = compileChaos([n1n2], view(), "node-1", T0);
    const m = faults[0]!.match;
    expect(matchPacket(m, A, B, 6, 40000, 8080)).toBe(true);
    expect(matchPacket(m, A, B, 6, 40000, 9090)).toBe(false);
    expect(matchPacket(m, A, C, 6, 40000, 8080)).toBe(false);
    // The reply (from node-2) is not "to" traffic.
    expect(matchPacket(m, B, A, 6, 8080, 40000)).toBe(false);
    expect(compileChaos([n1n2], view(), "node-2", T0).faults).toEqual([]);
    expect(compileChaos([n1n2], view(), "node-3", T0).faults).toEqual([]);
  });

  it("direction both: the replies too (the target's port as their source port), applied on both nodes", () => {
    const both = chaos({ ...{ selector: { nodes: ["node-1"] }, target: { selector: { nodes: ["node-2"] } } }, ports: [8080], direction: "both", delay: { latency: "1ms" } });
    const m = compileChaos([both], view(), "node-2", T0).faults[0]!.match;
    expect(matchPacket(m, B, A, 6, 8080, 40000)).toBe(true);
    expect(matchPacket(m, B, A, 6, 9090, 40000)).toBe(false);
  });

  it("pods by namespace and labels (namespaces default to the object's own), narrowed by nodes", () => {
    const pods = chaos({ selector: { labelSelectors: { app: "client" } }, target: { selector: { labelSelectors: { app: "web" } } }, loss: { loss: "10" } });
    const m = compileChaos([pods], view(), "node-1", T0).faults[0]!.match;
    expect(matchPacket(m, A, B, 17, 1, 2)).toBe(true);
    expect(matchPacket(m, A, A2, 17, 1, 2)).toBe(true);
    // c is in namespace "other".
    expect(matchPacket(m, A, C, 17, 1, 2)).toBe(false);
    const onNode2 = chaos({ selector: { labelSelectors: { app: "client" } }, target: { selector: { labelSelectors: { app: "web" }, nodes: ["node-2"] } }, loss: { loss: "10" } });
    const m2 = compileChaos([onNode2], view(), "node-1", T0).faults[0]!.match;
    expect(matchPacket(m2, A, B, 17, 1, 2)).toBe(true);
    expect(matchPacket(m2, A, A2, 17, 1, 2)).toBe(false);
    // Node labels pick whole nodes.
    const zone = chaos({ selector: { nodeSelectors: { zone: "b" } }, action: "partition" });
    expect(compileChaos([zone], view(), "node-3", T0).faults).toHaveLength(1);
    expect(compileChaos([zone], view(), "node-1", T0).faults).toHaveLength(0);
  });

  it("several faults compose in namespace/name order; a duration ends and says when", () => {
    const x = chaos({ selector: {}, delay: { latency: "1ms" }, duration: "10s" }, "x");
    const y = chaos({ selector: {}, loss: { loss: "1" } }, "a-first");
    const r = compileChaos([x, y], view(), "node-1", T0 + 1000);
    expect(r.faults.map((f) => f.key)).toEqual(["default/a-first", "default/x"]);
    expect(r.nextChangeMs).toBe(T0 + 10_000);
    expect(compileChaos([x, y], view(), "node-1", T0 + 10_000).faults.map((f) => f.key)).toEqual(["default/a-first"]);
  });
});

/** Sends `n` datagrams 1 ms apart from `from` to each destination; what arrived at each, by sequence number and time. */
function udpRun(seed: number, spec: Record<string, unknown>, n = 300): { b9000: Array<[number, number]>; b9001: number[]; c: number[]; counters: unknown } {
  const sim = new SimCluster(3);
  const a = sim.addPod("node-1", "a", "10.244.0.2");
  const b = sim.addPod("node-2", "b", "10.244.1.2");
  const c = sim.addPod("node-3", "c", "10.244.2.2");
  const v: ClusterView = { nodes: view().nodes, pods: [] };
  const parsed = chaos({ ...spec, seed });
  for (const node of ["node-1", "node-2", "node-3"]) sim.node(node).net.setChaos(compileChaos([parsed], v, node, T0).faults);
  const got = { b9000: [] as Array<[number, number]>, b9001: [] as number[], c: [] as number[] };
  const seq = (p: Uint8Array) => (p[0]! << 8) | p[1]!;
  b.ns.bindUdp(9000, (p) => got.b9000.push([seq(p), sim.now]));
  b.ns.bindUdp(9001, (p) => got.b9001.push(seq(p)));
  c.ns.bindUdp(9000, (p) => got.c.push(seq(p)));
  // Neighbours resolved first, so every datagram below is the fault's alone to decide.
  a.ns.sendUdp(b.ip, 7, 40000, new Uint8Array(2));
  a.ns.sendUdp(c.ip, 7, 40000, new Uint8Array(2));
  sim.runFor(100);
  got.b9000.length = 0;
  const start = sim.now;
  for (let i = 0; i < n; i++) {
    const payload = new Uint8Array([i >> 8, i & 0xff]);
    a.ns.sendUdp(b.ip, 9000, 40000, payload);
    a.ns.sendUdp(b.ip, 9001, 40000, payload);
    a.ns.sendUdp(c.ip, 9000, 40000, payload);
    sim.runFor(1);
  }
  sim.runFor(500);
  return { ...got, b9000: got.b9000.map(([s, t]) => [s, t - start - s]), counters: Object.fromEntries(sim.node("node-1").net.chaosCounters) };
}

describe("netsim: NetworkChaos in the datapath", () => {
  const pair = { selector: { nodes: ["node-1"] }, target: { selector: { nodes: ["node-2"] } }, ports: [9000], protocol: "UDP" };

  it("loss between one node pair on one port: that traffic only; the same seed drops the same packets", () => {
    const first = udpRun(7, { ...pair, loss: { loss: "30" } });
    const again = udpRun(7, { ...pair, loss: { loss: "30" } });
    const other = udpRun(8, { ...pair, loss: { loss: "30" } });
    const dropped = (r: typeof first) => Array.from({ length: 300 }, (_, i) => i).filter((i) => !r.b9000.some(([s]) => s === i));
    expect(dropped(first).length / 300).toBeGreaterThan(0.2);
    expect(dropped(first).length / 300).toBeLessThan(0.4);
    expect(dropped(again)).toEqual(dropped(first));
    expect(dropped(other)).not.toEqual(dropped(first));
    // Other port, other node pair: untouched.
    expect(first.b9001).toHaveLength(300);
    expect(first.c).toHaveLength(300);
    expect(first.counters).toEqual({ "default/c": { packets: 300, dropped: dropped(first).length, delayed: 0, duplicated: 0, corrupted: 0, reordered: 0 } });
  });

  it("delay with jitter: each matched datagram arrives latency +- jitter later (uniform), counted as delayed", () => {
    const r = udpRun(3, { ...pair, delay: { latency: "50ms", jitter: "10ms" } }, 200);
    expect(r.b9000).toHaveLength(200);
    const extra = r.b9000.map(([, t]) => t).sort((x, y) => x - y);
    expect(extra[0]!).toBeGreaterThanOrEqual(40);
    expect(extra[extra.length - 1]!).toBeLessThanOrEqual(61);
    expect(Math.abs(extra[100]! - 50)).toBeLessThan(3);
    expect(r.counters).toMatchObject({ "default/c": { packets: 200, delayed: 200 } });
  });

  it("pods on one node: the fault acts at the receiving pod's veth, on packets sent on that node", () => {
    const sim = new SimCluster(2);
    const a = sim.addPod("node-1", "a", "10.244.0.2");
    const a2 = sim.addPod("node-1", "a2", "10.244.0.3");
    const v: ClusterView = { nodes: view().nodes.slice(0, 2), pods: view().pods.slice(0, 2) };
    const c = chaos({ selector: { labelSelectors: { app: "client" } }, target: { selector: { labelSelectors: { app: "web" } } }, delay: { latency: "20ms" } });
    sim.node("node-1").net.setChaos(compileChaos([c], v, "node-1", T0).faults);
    const at: number[] = [];
    a2.ns.bindUdp(9000, () => at.push(sim.now));
    a.ns.sendUdp(a2.ip, 7, 1, new Uint8Array(1));
    sim.runFor(100);
    const t0 = sim.now;
    a.ns.sendUdp(a2.ip, 9000, 1, new Uint8Array(1));
    sim.runFor(100);
    expect(at).toEqual([t0 + 20]);
    // Deleting the object (an empty set) removes the fault.
    sim.node("node-1").net.setChaos([]);
    const t1 = sim.now;
    a.ns.sendUdp(a2.ip, 9000, 1, new Uint8Array(1));
    sim.runFor(100);
    expect(at[1]).toBe(t1);
  });
});
