import { describe, expect, it } from "vitest";
import type { Node, Pod, Taint, Toleration } from "kubernetes-types/core/v1.js";
import { fitErrorMessage, schedule } from "../../../control-plane/controllers/logic/scheduler.ts";

function node(name: string, opts: { ready?: "True" | "False" | "Unknown"; labels?: Record<string, string>; taints?: Taint[]; unschedulable?: boolean } = {}): Node {
  return {
    metadata: { name, labels: opts.labels ?? {} },
    spec: { ...(opts.taints ? { taints: opts.taints } : {}), ...(opts.unschedulable ? { unschedulable: true } : {}) },
    status: { conditions: [{ type: "Ready", status: opts.ready ?? "True" }] },
  };
}

function pod(name: string, opts: { node?: string; phase?: string; deleting?: boolean; nodeSelector?: Record<string, string>; tolerations?: Toleration[] } = {}): Pod {
  return {
    metadata: { name, namespace: "default", uid: `uid-${name}`, ...(opts.deleting ? { deletionTimestamp: "2024-01-01T00:00:00Z" } : {}) },
    spec: {
      containers: [{ name: "c", image: "nginx" }],
      ...(opts.node ? { nodeName: opts.node } : {}),
      ...(opts.nodeSelector ? { nodeSelector: opts.nodeSelector } : {}),
      ...(opts.tolerations ? { tolerations: opts.tolerations } : {}),
    },
    status: { phase: opts.phase ?? "Running" },
  };
}

const three = [node("node-a"), node("node-b"), node("node-c")];

describe("schedule: spreading", () => {
  const cases: Array<{ name: string; pods: Pod[]; want: string }> = [
    {
      name: "5 pods (2/1/2): the least loaded node",
      pods: [pod("p1", { node: "node-a" }), pod("p2", { node: "node-a" }), pod("p3", { node: "node-b" }), pod("p4", { node: "node-c" }), pod("p5", { node: "node-c" })],
      want: "node-b",
    },
    {
      name: "5 pods (2/2/1)",
      pods: [pod("p1", { node: "node-a" }), pod("p2", { node: "node-a" }), pod("p3", { node: "node-b" }), pod("p4", { node: "node-b" }), pod("p5", { node: "node-c" })],
      want: "node-c",
    },
    { name: "no pods: ties broken by node name", pods: [], want: "node-a" },
    {
      name: "terminating, Succeeded and Failed pods do not count",
      pods: [
        pod("p1", { node: "node-a" }),
        pod("p2", { node: "node-b", deleting: true }),
        pod("p3", { node: "node-b", phase: "Succeeded" }),
        pod("p4", { node: "node-b", phase: "Failed" }),
        pod("p5", { node: "node-c" }),
      ],
      want: "node-b",
    },
    {
      name: "a tie between b and c goes to b",
      pods: [pod("p1", { node: "node-a" }), pod("p2", { node: "node-a" }), pod("p3", { node: "node-b" }), pod("p4", { node: "node-c" })],
      want: "node-b",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(schedule(pod("new"), three, c.pods)).toEqual({ kind: "bind", nodeName: c.want });
    });
  }

  it("places 6 pods one after the other round the 3 nodes", () => {
    const placed: Pod[] = [];
    for (let i = 0; i < 6; i++) {
      const r = schedule(pod(`p${i}`), three, placed);
      if (r.kind !== "bind") throw new Error(r.message);
      placed.push(pod(`p${i}`, { node: r.nodeName }));
    }
    expect(placed.map((p) => p.spec!.nodeName)).toEqual(["node-a", "node-b", "node-c", "node-a", "node-b", "node-c"]);
  });
});

describe("schedule: filters", () => {
  it("honours nodeSelector (all labels equal)", () => {
    const nodes = [node("node-a", { labels: { disk: "hdd" } }), node("node-b", { labels: { disk: "ssd", zone: "z1" } }), node("node-c", { labels: { disk: "ssd", zone: "z2" } })];
    expect(schedule(pod("p", { nodeSelector: { disk: "ssd", zone: "z2" } }), nodes, [])).toEqual({ kind: "bind", nodeName: "node-c" });
    expect(schedule(pod("p", { nodeSelector: { disk: "ssd" } }), nodes, [pod("x", { node: "node-b" })])).toEqual({ kind: "bind", nodeName: "node-c" });
  });

  it("says why no node fits, in Kubernetes' words", () => {
    const cases: Array<{ name: string; nodes: Node[]; pod: Pod; message: string }> = [
      {
        name: "all nodes NotReady",
        nodes: [node("node-a", { ready: "False" }), node("node-b", { ready: "Unknown" }), node("node-c", { ready: "False" })],
        pod: pod("p"),
        message: "0/3 nodes are available: 3 node(s) were not ready.",
      },
      {
        name: "selector and readiness",
        nodes: [node("node-a", { labels: { disk: "hdd" } }), node("node-b", { ready: "False", labels: { disk: "ssd" } }), node("node-c", { ready: "Unknown", labels: { disk: "ssd" } })],
        pod: pod("p", { nodeSelector: { disk: "ssd" } }),
        message: "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) were not ready.",
      },
      {
        name: "taint, cordon and selector",
        nodes: [
          node("node-a", { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] }),
          node("node-b", { unschedulable: true }),
          node("node-c", { labels: { disk: "hdd" } }),
        ],
        pod: pod("p", { nodeSelector: { disk: "ssd" } }),
        message:
          "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable.",
      },
    ];
    for (const c of cases) expect(schedule(c.pod, c.nodes, []), c.name).toEqual({ kind: "unschedulable", message: c.message });
  });

  it("has no node at all", () => {
    expect(schedule(pod("p"), [], [])).toEqual({ kind: "unschedulable", message: "no nodes available to schedule pods" });
  });

  it("tolerations: Exists, Equal with the value, effect; a PreferNoSchedule taint never filters", () => {
    const tainted = [node("node-a", { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] })];
    const cases: Array<{ tolerations: Toleration[]; fits: boolean }> = [
      { tolerations: [], fits: false },
      { tolerations: [{ key: "dedicated", operator: "Exists" }], fits: true },
      { tolerations: [{ key: "dedicated", operator: "Equal", value: "gpu", effect: "NoSchedule" }], fits: true },
      { tolerations: [{ key: "dedicated", value: "gpu" }], fits: true },
      { tolerations: [{ key: "dedicated", operator: "Equal", value: "cpu" }], fits: false },
      { tolerations: [{ key: "dedicated", operator: "Exists", effect: "NoExecute" }], fits: false },
      { tolerations: [{ operator: "Exists" }], fits: true },
    ];
    for (const c of cases) {
      expect(schedule(pod("p", { tolerations: c.tolerations }), tainted, []).kind, JSON.stringify(c.tolerations)).toBe(c.fits ? "bind" : "unschedulable");
    }
    expect(schedule(pod("p"), [node("node-a", { taints: [{ key: "soft", effect: "PreferNoSchedule" }] })], []).kind).toBe("bind");
  });

  it("a pod tolerating the not-ready taint may go to a NotReady node", () => {
    const nodes = [node("node-a", { ready: "False" })];
    expect(schedule(pod("p", { tolerations: [{ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoSchedule" }] }), nodes, [])).toEqual({ kind: "bind", nodeName: "node-a" });
  });

  it("required node affinity: In / NotIn / Exists, terms ORed", () => {
    const nodes = [node("node-a", { labels: { zone: "z1" } }), node("node-b", { labels: { zone: "z2", gpu: "1" } })];
    const p = pod("p");
    p.spec!.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "In", values: ["z9"] }] }, { matchExpressions: [{ key: "gpu", operator: "Exists" }, { key: "zone", operator: "NotIn", values: ["z1"] }] }],
        },
      },
    };
    expect(schedule(p, nodes, [])).toEqual({ kind: "bind", nodeName: "node-b" });
  });
});

describe("fitErrorMessage", () => {
  it("sorts the whole 'count reason' strings as Go's sort.Strings does", () => {
    const reasons = new Map([
      ["node(s) were not ready", 10],
      ["node(s) didn't match Pod's node affinity/selector", 2],
    ]);
    expect(fitErrorMessage(12, reasons)).toBe("0/12 nodes are available: 10 node(s) were not ready, 2 node(s) didn't match Pod's node affinity/selector.");
  });
});

describe("schedule: allocatable pods", () => {
  const full = (name: string, pods: number): Node => ({ ...node(name), status: { ...node(name).status, allocatable: { pods: String(pods) } } });

  it("skips a node that already runs its allocatable number of pods", () => {
    const nodes = [full("node-a", 1), full("node-b", 5)];
    const pods = [pod("p1", { node: "node-a" }), pod("p2", { node: "node-b" }), pod("p3", { node: "node-b" })];
    expect(schedule(pod("new"), nodes, pods)).toEqual({ kind: "bind", nodeName: "node-b" });
  });

  it("reports Too many pods when every node is full", () => {
    const nodes = [full("node-a", 1), full("node-b", 1)];
    const pods = [pod("p1", { node: "node-a" }), pod("p2", { node: "node-b" })];
    expect(schedule(pod("new"), nodes, pods)).toEqual({ kind: "unschedulable", message: "0/2 nodes are available: 2 Too many pods." });
  });
});
