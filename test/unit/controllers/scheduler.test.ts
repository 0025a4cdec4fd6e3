import { describe, expect, it } from "vitest";
import type { ReplicaSet, StatefulSet } from "kubernetes-types/apps/v1.js";
import type { Node, Pod, ReplicationController, Service, Taint, Toleration, TopologySpreadConstraint } from "kubernetes-types/core/v1.js";
import { matchesLabels } from "../../../cluster/selectors.ts";
import {
  defaultSelector,
  fitErrorMessage,
  interPodAffinityScores,
  podTopologySpreadScores,
  schedule,
  type ScheduleOptions,
} from "../../../control-plane/controllers/logic/scheduler.ts";

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

// ------------------------------------------------------------------ InterPodAffinity

type Term = NonNullable<NonNullable<Pod["spec"]>["affinity"]>;

/** A pod with labels, a namespace and affinity, optionally bound. */
function apod(name: string, opts: { labels?: Record<string, string>; namespace?: string; node?: string; affinity?: Term; phase?: string; deleting?: boolean } = {}): Pod {
  const p = pod(name, { ...(opts.node ? { node: opts.node } : {}), ...(opts.phase ? { phase: opts.phase } : {}), ...(opts.deleting ? { deleting: true } : {}) });
  p.metadata = { ...p.metadata, namespace: opts.namespace ?? "default", labels: opts.labels ?? {} };
  if (opts.affinity) p.spec!.affinity = opts.affinity;
  return p;
}

const HOST = "kubernetes.io/hostname";
const ZONE = "topology.kubernetes.io/zone";
const hosts = (...names: string[]) => names.map((n) => node(n, { labels: { [HOST]: n } }));
const sel = (labels: Record<string, string>) => ({ matchLabels: labels });
const preferAnti = (labels: Record<string, string>, weight = 100, topologyKey = HOST, extra: object = {}): Term => ({
  podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight, podAffinityTerm: { labelSelector: sel(labels), topologyKey, ...extra } }] },
});
const prefer = (labels: Record<string, string>, weight = 100, topologyKey = HOST, extra: object = {}): Term => ({
  podAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight, podAffinityTerm: { labelSelector: sel(labels), topologyKey, ...extra } }] },
});
const requireAnti = (labels: Record<string, string>, topologyKey = HOST): Term => ({ podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: sel(labels), topologyKey }] } });
const require_ = (labels: Record<string, string>, topologyKey = HOST): Term => ({ podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: sel(labels), topologyKey }] } });

/** kubeadm's coredns pod template affinity (control-plane/addons.ts). */
const COREDNS: Term = {
  podAntiAffinity: {
    preferredDuringSchedulingIgnoredDuringExecution: [
      { weight: 100, podAffinityTerm: { labelSelector: { matchExpressions: [{ key: "k8s-app", operator: "In", values: ["kube-dns"] }] }, topologyKey: HOST } },
    ],
  },
};
const coredns = (name: string, node?: string) => apod(name, { namespace: "kube-system", labels: { "k8s-app": "kube-dns" }, affinity: COREDNS, ...(node ? { node } : {}) });
const busy = (n: number, node: string) => Array.from({ length: n }, (_, i) => apod(`${node}-load-${i}`, { node }));

describe("schedule: InterPodAffinity scoring", () => {
  it("the second coredns replica goes to the other node even when that node is busier", () => {
    const nodes = hosts("node-a", "node-b");
    const pods = [coredns("coredns-1", "node-a"), ...busy(3, "node-b")];
    // Spreading alone (node-a 1 pod, node-b 3) would pick node-a.
    expect(schedule(apod("plain"), nodes, pods)).toEqual({ kind: "bind", nodeName: "node-a" });
    expect(schedule(coredns("coredns-2"), nodes, pods)).toEqual({ kind: "bind", nodeName: "node-b" });
  });

  it("two replicas scheduled one after the other land on two nodes, whatever the load", () => {
    for (const [a, b] of [[0, 0], [5, 0], [0, 5], [9, 2]] as const) {
      const nodes = hosts("node-a", "node-b", "node-c");
      const placed: Pod[] = [...busy(a, "node-a"), ...busy(b, "node-b"), ...busy(7, "node-c")];
      const chosen: string[] = [];
      for (const name of ["coredns-1", "coredns-2"]) {
        const r = schedule(coredns(name), nodes, placed);
        if (r.kind !== "bind") throw new Error(r.message);
        chosen.push(r.nodeName);
        placed.push(coredns(name, r.nodeName));
      }
      expect(new Set(chosen).size, `loads ${a}/${b}/7: ${chosen.join(",")}`).toBe(2);
    }
  });

  it("preferred, not required: with one feasible node both replicas share it", () => {
    const nodes = [...hosts("node-a"), node("node-b", { labels: { [HOST]: "node-b" }, unschedulable: true })];
    expect(schedule(coredns("coredns-2"), nodes, [coredns("coredns-1", "node-a")])).toEqual({ kind: "bind", nodeName: "node-a" });
  });

  const nodes3 = hosts("node-a", "node-b", "node-c");
  const cases: Array<{ name: string; nodes: Node[]; pods: Pod[]; pod: Pod; scores: number[]; want: string }> = [
    {
      name: "preferred podAffinity pulls towards the node of a matching pod",
      nodes: nodes3,
      pods: [apod("db", { labels: { app: "db" }, node: "node-c" }), ...busy(4, "node-c")],
      pod: apod("web", { affinity: prefer({ app: "db" }) }),
      scores: [0, 0, 100],
      want: "node-c",
    },
    {
      name: "anti-affinity by zone avoids every node of the zone",
      nodes: [node("node-a", { labels: { [ZONE]: "z1" } }), node("node-b", { labels: { [ZONE]: "z1" } }), node("node-c", { labels: { [ZONE]: "z2" } })],
      pods: [apod("web-1", { labels: { app: "web" }, node: "node-a" }), ...busy(3, "node-c")],
      pod: apod("web-2", { labels: { app: "web" }, affinity: preferAnti({ app: "web" }, 10, ZONE) }),
      scores: [0, 0, 100],
      want: "node-c",
    },
    {
      name: "a placed pod's preferred anti-affinity pushes the incoming pod away (symmetry)",
      nodes: nodes3,
      pods: [apod("loner", { node: "node-a", affinity: preferAnti({ app: "noisy" }, 50) }), ...busy(2, "node-b"), ...busy(2, "node-c")],
      pod: apod("noisy", { labels: { app: "noisy" } }),
      scores: [0, 100, 100],
      want: "node-b",
    },
    {
      name: "a placed pod's required podAffinity attracts pods it selects (hardPodAffinityWeight 1)",
      nodes: nodes3,
      pods: [apod("sidecar-user", { node: "node-b", affinity: require_({ app: "cache" }) }), ...busy(5, "node-b")],
      pod: apod("cache", { labels: { app: "cache" } }),
      scores: [0, 100, 0],
      want: "node-b",
    },
    {
      name: "weights add up per node: +10 for x, -50 for y",
      nodes: nodes3,
      pods: [apod("x", { labels: { app: "x" }, node: "node-a" }), apod("y", { labels: { app: "y" }, node: "node-b" }), apod("x2", { labels: { app: "x" }, node: "node-c" }), apod("y2", { labels: { app: "y" }, node: "node-c" })],
      pod: apod("p", {
        affinity: {
          podAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 10, podAffinityTerm: { labelSelector: sel({ app: "x" }), topologyKey: HOST } }] },
          podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, podAffinityTerm: { labelSelector: sel({ app: "y" }), topologyKey: HOST } }] },
        },
      }),
      // Raw 10, -50, -40: normalized (r + 50) * 100 / 60, truncated.
      scores: [100, 0, 16],
      want: "node-a",
    },
    {
      name: "a term without namespaces counts only pods of the pod's own namespace",
      nodes: nodes3,
      pods: [apod("other-ns", { namespace: "team-b", labels: { app: "web" }, node: "node-a" })],
      pod: apod("web", { labels: { app: "web" }, affinity: preferAnti({ app: "web" }) }),
      scores: [0, 0, 0],
      // Spreading alone: node-a holds a pod.
      want: "node-b",
    },
    {
      name: "namespaces listed",
      nodes: nodes3,
      pods: [apod("other-ns", { namespace: "team-b", labels: { app: "web" }, node: "node-a" })],
      pod: apod("web", { labels: { app: "web" }, affinity: preferAnti({ app: "web" }, 100, HOST, { namespaces: ["team-b"] }) }),
      scores: [0, 100, 100],
      want: "node-b",
    },
    {
      name: "an empty namespaceSelector selects every namespace",
      nodes: nodes3,
      pods: [apod("other-ns", { namespace: "team-b", labels: { app: "web" }, node: "node-b" })],
      pod: apod("web", { labels: { app: "web" }, affinity: prefer({ app: "web" }, 100, HOST, { namespaceSelector: {} }) }),
      scores: [0, 100, 0],
      want: "node-b",
    },
    {
      name: "a namespaceSelector on kubernetes.io/metadata.name",
      nodes: nodes3,
      pods: [apod("b", { namespace: "team-b", labels: { app: "web" }, node: "node-b" }), apod("c", { namespace: "team-c", labels: { app: "web" }, node: "node-c" })],
      pod: apod("web", { affinity: prefer({ app: "web" }, 100, HOST, { namespaceSelector: sel({ "kubernetes.io/metadata.name": "team-c" }) }) }),
      scores: [0, 0, 100],
      want: "node-c",
    },
    {
      name: "nodes without the topology label get nothing; terminating and finished pods do not count",
      nodes: [node("node-a"), ...hosts("node-b", "node-c")],
      pods: [
        apod("db-a", { labels: { app: "db" }, node: "node-a" }),
        apod("db-b", { labels: { app: "db" }, node: "node-b", deleting: true }),
        apod("db-c", { labels: { app: "db" }, node: "node-c", phase: "Succeeded" }),
      ],
      pod: apod("web", { affinity: prefer({ app: "db" }) }),
      scores: [0, 0, 0],
      want: "node-b",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(interPodAffinityScores(c.pod, c.nodes, c.pods)).toEqual(c.scores);
      expect(schedule(c.pod, c.nodes, c.pods)).toEqual({ kind: "bind", nodeName: c.want });
    });
  }

  it("namespace labels come from the caller when given", () => {
    const pods = [apod("b", { namespace: "team-b", labels: { app: "web" }, node: "node-b" })];
    const p = apod("web", { affinity: prefer({ app: "web" }, 100, HOST, { namespaceSelector: sel({ tier: "front" }) }) });
    expect(interPodAffinityScores(p, nodes3, pods)).toEqual([0, 0, 0]);
    const labels = (ns: string): Record<string, string> => (ns === "team-b" ? { tier: "front" } : {});
    expect(interPodAffinityScores(p, nodes3, pods, { namespaceLabels: labels })).toEqual([0, 100, 0]);
  });
});

describe("schedule: InterPodAffinity filter", () => {
  const nodes3 = hosts("node-a", "node-b", "node-c");
  it("required anti-affinity keeps the pod off nodes holding a match", () => {
    const pods = [apod("web-1", { labels: { app: "web" }, node: "node-a" }), apod("web-2", { labels: { app: "web" }, node: "node-b" })];
    expect(schedule(apod("web-3", { labels: { app: "web" }, affinity: requireAnti({ app: "web" }) }), nodes3, pods)).toEqual({ kind: "bind", nodeName: "node-c" });
    const full = [...pods, apod("web-x", { labels: { app: "web" }, node: "node-c" })];
    expect(schedule(apod("web-3", { labels: { app: "web" }, affinity: requireAnti({ app: "web" }) }), nodes3, full)).toEqual({
      kind: "unschedulable",
      message: "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.",
    });
  });

  it("a placed pod's required anti-affinity keeps matching pods off its node (and a zone-wide one off its zone)", () => {
    const pods = [apod("loner", { node: "node-a", affinity: requireAnti({ app: "web" }) })];
    expect(schedule(apod("web", { labels: { app: "web" } }), hosts("node-a"), pods)).toEqual({
      kind: "unschedulable",
      message: "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules.",
    });
    const zoned = [node("node-a", { labels: { [ZONE]: "z1" } }), node("node-b", { labels: { [ZONE]: "z1" } }), node("node-c", { labels: { [ZONE]: "z2" } })];
    const zonePods = [apod("loner", { node: "node-a", affinity: requireAnti({ app: "web" }, ZONE) }), ...busy(3, "node-c")];
    expect(schedule(apod("web", { labels: { app: "web" } }), zoned, zonePods)).toEqual({ kind: "bind", nodeName: "node-c" });
    // Pods it does not select are not kept away.
    expect(schedule(apod("other", { labels: { app: "db" } }), hosts("node-a"), pods)).toEqual({ kind: "bind", nodeName: "node-a" });
  });

  it("required affinity: only where a matching pod runs; the first of a group that matches itself goes anywhere", () => {
    const pods = [apod("db", { labels: { app: "db" }, node: "node-b" }), ...busy(3, "node-b")];
    expect(schedule(apod("web", { affinity: require_({ app: "db" }) }), nodes3, pods)).toEqual({ kind: "bind", nodeName: "node-b" });
    // No db anywhere, and the pod is not a db itself: nowhere.
    expect(schedule(apod("web", { affinity: require_({ app: "db" }) }), nodes3, busy(1, "node-a"))).toEqual({
      kind: "unschedulable",
      message: "0/3 nodes are available: 3 node(s) didn't match pod affinity rules.",
    });
    // A pod with affinity to its own kind, first of its kind: anywhere (spreading decides).
    expect(schedule(apod("db-0", { labels: { app: "db" }, affinity: require_({ app: "db" }) }), nodes3, busy(1, "node-a"))).toEqual({ kind: "bind", nodeName: "node-b" });
    // A node without the topology label never satisfies a required affinity term.
    expect(schedule(apod("db-0", { labels: { app: "db" }, affinity: require_({ app: "db" }) }), [node("bare")], [])).toEqual({
      kind: "unschedulable",
      message: "0/1 nodes are available: 1 node(s) didn't match pod affinity rules.",
    });
  });

  it("reasons mix with the other filters' in the fit error", () => {
    const nodes = [...hosts("node-a", "node-b"), node("node-c", { labels: { [HOST]: "node-c" }, ready: "False" })];
    const pods = [apod("web-1", { labels: { app: "web" }, node: "node-a" }), apod("web-2", { labels: { app: "web" }, node: "node-b" })];
    expect(schedule(apod("web-3", { labels: { app: "web" }, affinity: requireAnti({ app: "web" }) }), nodes, pods)).toEqual({
      kind: "unschedulable",
      message: "0/3 nodes are available: 1 node(s) were not ready, 2 node(s) didn't match pod anti-affinity rules.",
    });
  });
});

// ------------------------------------------------------------------ PodTopologySpread

type Owner = { kind: string; name: string; apiVersion?: string; controller?: boolean };

/** A pod owned (controller: true unless said) by `owner`, with labels, optionally bound. */
function opod(name: string, opts: { labels?: Record<string, string>; namespace?: string; node?: string; owner?: Owner; affinity?: Term; spread?: TopologySpreadConstraint[]; nodeSelector?: Record<string, string>; deleting?: boolean } = {}): Pod {
  const p = apod(name, { ...(opts.labels ? { labels: opts.labels } : {}), ...(opts.namespace ? { namespace: opts.namespace } : {}), ...(opts.node ? { node: opts.node } : {}), ...(opts.affinity ? { affinity: opts.affinity } : {}), ...(opts.deleting ? { deleting: true } : {}) });
  if (opts.owner) {
    const { kind, name: ownerName, apiVersion = kind === "ReplicationController" ? "v1" : "apps/v1", controller = true } = opts.owner;
    p.metadata!.ownerReferences = [{ apiVersion, kind, name: ownerName, uid: `uid-${ownerName}`, controller }];
  }
  if (opts.spread) p.spec!.topologySpreadConstraints = opts.spread;
  if (opts.nodeSelector) p.spec!.nodeSelector = opts.nodeSelector;
  return p;
}

const rs = (namespace: string, name: string, matchLabels: Record<string, string>): ReplicaSet => ({ metadata: { name, namespace }, spec: { selector: { matchLabels }, template: {} } });
const svc = (namespace: string, name: string, selector?: Record<string, string>): Service => ({ metadata: { name, namespace }, spec: selector ? { selector } : {} });

/** The listers over fixed lists, as runtime.ts builds them over the informers. */
function listers(objs: { services?: Service[]; replicaSets?: ReplicaSet[]; statefulSets?: StatefulSet[]; rcs?: ReplicationController[] }): ScheduleOptions {
  const find = <T extends { metadata?: { namespace?: string; name?: string } }>(list: T[] | undefined) => (ns: string, name: string) => list?.find((o) => o.metadata?.namespace === ns && o.metadata?.name === name);
  return {
    services: (ns) => (objs.services ?? []).filter((s) => s.metadata?.namespace === ns),
    replicaSet: find(objs.replicaSets),
    statefulSet: find(objs.statefulSets),
    replicationController: find(objs.rcs),
  };
}

/** A kubewire node: hostname label, Ready, the allocatable pods of a /24 pod CIDR. */
const kwNode = (name: string, labels: Record<string, string> = {}): Node => ({ ...node(name, { labels: { [HOST]: name, ...labels } }), status: { ...node(name).status, allocatable: { pods: "253" } } });

const WEB = { app: "web", "pod-template-hash": "y" };
const web = (name: string, node?: string, namespace = "demo") => opod(name, { namespace, labels: WEB, owner: { kind: "ReplicaSet", name: "web-y" }, ...(node ? { node } : {}) });

describe("PodTopologySpread: a Deployment beside coredns", () => {
  const nodes = ["node-1", "node-2", "node-3"].map((n) => kwNode(n));
  const objs = {
    services: [svc("demo", "web", { app: "web" }), svc("kube-system", "kube-dns", { "k8s-app": "kube-dns" })],
    replicaSets: [rs("demo", "web-y", WEB), rs("kube-system", "coredns-x", { "k8s-app": "kube-dns" })],
  };
  const corednsPod = (name: string) => opod(name, { namespace: "kube-system", labels: { "k8s-app": "kube-dns" }, affinity: COREDNS, owner: { kind: "ReplicaSet", name: "coredns-x" }, node: "node-1" });

  /** Schedules the 6 web pods one after the other; the web pods per node. */
  function rollOut(opts: ScheduleOptions): number[] {
    const placed: Pod[] = [corednsPod("coredns-x-1"), corednsPod("coredns-x-2")];
    for (let i = 0; i < 6; i++) {
      const r = schedule(web(`web-y-${i}`), nodes, placed, opts);
      if (r.kind !== "bind") throw new Error(r.message);
      placed.push(web(`web-y-${i}`, r.nodeName));
    }
    return nodes.map((n) => placed.filter((p) => p.metadata?.namespace === "demo" && p.spec?.nodeName === n.metadata!.name).length);
  }

  it("6 replicas end 2/2/2 although node-1 runs both coredns pods", () => {
    expect(rollOut(listers(objs))).toEqual([2, 2, 2]);
    // The RS alone makes the selector; the Service alone too.
    expect(rollOut(listers({ replicaSets: objs.replicaSets }))).toEqual([2, 2, 2]);
    expect(rollOut(listers({ services: objs.services }))).toEqual([2, 2, 2]);
  });

  it("without the listers only the pod count spreads them, counting coredns: 1/3/2", () => {
    expect(rollOut({})).toEqual([1, 3, 2]);
  });

  it("the coredns replicas still spread by their anti-affinity", () => {
    const placed: Pod[] = [...busy(2, "node-2")];
    const chosen: string[] = [];
    for (const name of ["coredns-x-1", "coredns-x-2"]) {
      const p = opod(name, { namespace: "kube-system", labels: { "k8s-app": "kube-dns" }, affinity: COREDNS, owner: { kind: "ReplicaSet", name: "coredns-x" } });
      const r = schedule(p, nodes, placed, listers(objs));
      if (r.kind !== "bind") throw new Error(r.message);
      chosen.push(r.nodeName);
      placed.push({ ...p, spec: { ...p.spec!, nodeName: r.nodeName } });
    }
    expect(chosen).toEqual(["node-1", "node-3"]);
  });
});

describe("PodTopologySpread: scores", () => {
  const opts = listers({ replicaSets: [rs("demo", "web-y", WEB)] });
  const on = (counts: number[], nodes: Node[]) => counts.flatMap((n, i) => Array.from({ length: n }, (_, k) => web(`w-${i}-${k}`, nodes[i]!.metadata!.name)));
  const hostsOnly = ["node-a", "node-b", "node-c"].map((n) => kwNode(n));
  const zoned = [kwNode("node-a", { [ZONE]: "z1" }), kwNode("node-b", { [ZONE]: "z1" }), kwNode("node-c", { [ZONE]: "z2" })];

  const cases: Array<{ name: string; nodes: Node[]; pods: Pod[]; pod?: Pod; opts?: ScheduleOptions; scores: number[] }> = [
    // round(count * ln(3 + 2) + 3 - 1): 0 -> 2, 1 -> 4, 2 -> 5; normalized 100 * (max + min - s) / max.
    { name: "hostname: 0/1/0", nodes: hostsOnly, pods: on([0, 1, 0], hostsOnly), scores: [100, 50, 100] },
    { name: "hostname: 1/2/2", nodes: hostsOnly, pods: on([1, 2, 2], hostsOnly), scores: [100, 80, 80] },
    { name: "all equal: 100 each", nodes: hostsOnly, pods: on([1, 1, 1], hostsOnly), scores: [100, 100, 100] },
    {
      // host ln 5, zone ln(2 + 2): a 1.61 + 2 + 1.39 + 4 = 9, b 2 + 1.39 + 4 = 7, c 2 + 4 = 6.
      name: "zone too when the nodes carry it: node-b shares node-a's zone",
      nodes: zoned,
      pods: on([1, 0, 0], zoned),
      scores: [66, 88, 100],
    },
    {
      name: "a bare pod (no Service, no controller) is not spread: the plugin skips",
      nodes: hostsOnly,
      pods: on([2, 0, 0], hostsOnly),
      pod: apod("bare", { namespace: "demo", labels: WEB }),
      scores: [0, 0, 0],
    },
    {
      name: "pods of another namespace and terminating pods do not count",
      nodes: hostsOnly,
      pods: [web("other-ns", "node-a", "elsewhere"), opod("gone", { namespace: "demo", labels: WEB, node: "node-b", deleting: true }), web("w", "node-c")],
      scores: [100, 100, 50],
    },
    {
      name: "a pod with constraints of its own: ScheduleAnyway ones score, a node lacking the key gets 0",
      nodes: [...hostsOnly.slice(0, 2), node("bare-node")],
      pods: on([2, 0, 0], hostsOnly),
      pod: opod("own", { namespace: "demo", labels: WEB, spread: [{ maxSkew: 1, topologyKey: HOST, whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: { app: "web" } } }] }),
      // ln(2 + 2): a 2 * 1.39 = 3, b 0; normalized a 0, b 100.
      scores: [0, 100, 0],
    },
    {
      name: "matchLabelKeys: only pods with the incoming pod's pod-template-hash count",
      nodes: hostsOnly,
      pods: [...on([0, 1, 0], hostsOnly), opod("old", { namespace: "demo", labels: { app: "web", "pod-template-hash": "old" }, node: "node-a" })],
      pod: opod("new", { namespace: "demo", labels: WEB, spread: [{ maxSkew: 1, topologyKey: HOST, whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: { app: "web" } }, matchLabelKeys: ["pod-template-hash"] }] }),
      // ln 5: 0 -> 0, 1 -> 2; a and c 100, b 0.
      scores: [100, 0, 100],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(podTopologySpreadScores(c.pod ?? web("new"), c.nodes, c.pods, c.opts ?? opts)).toEqual(c.scores);
    });
  }

  it("only feasible nodes are scored, but the pods of every node count for a zone", () => {
    const pods = on([3, 0, 0], zoned);
    // Feasible b and c: b's zone z1 holds a's 3 pods. host ln 4: b 2, c 2; zone ln 4: b 3 * 1.39 + 4 = 8.2, c 4: b 10, c 6.
    expect(podTopologySpreadScores(web("new"), zoned, pods, opts, zoned.slice(1))).toEqual([60, 100]);
  });
});

describe("PodTopologySpread: default selector (helper.DefaultSelector)", () => {
  const labels = { app: "web", tier: "front", "pod-template-hash": "y" };
  const selects = (p: Pod, o: ScheduleOptions, other: Record<string, string>) => matchesLabels(defaultSelector(p, o), other);

  it("merges the selectors of the Services that select the pod with the controller's", () => {
    const o = listers({
      services: [svc("demo", "web", { app: "web" }), svc("demo", "front", { tier: "front" }), svc("demo", "db", { app: "db" }), svc("demo", "headless"), svc("other", "web", { app: "web", zone: "x" })],
      replicaSets: [rs("demo", "web-y", { app: "web", "pod-template-hash": "y" })],
    });
    const p = opod("p", { namespace: "demo", labels, owner: { kind: "ReplicaSet", name: "web-y" } });
    const sel = defaultSelector(p, o);
    expect(sel.requirements.map((r) => `${r.key}=${r.values.join(",")}`).sort()).toEqual(["app=web", "app=web", "pod-template-hash=y", "tier=front"]);
    expect(selects(p, o, labels)).toBe(true);
    expect(selects(p, o, { app: "web", tier: "front", "pod-template-hash": "z" })).toBe(false);
  });

  it("owners: StatefulSet and ReplicationController; not a non-controller reference, another apiVersion, or a missing object", () => {
    const o = listers({
      statefulSets: [{ metadata: { name: "db", namespace: "demo" }, spec: { selector: { matchExpressions: [{ key: "app", operator: "In", values: ["db"] }] }, serviceName: "db", template: {} } }],
      rcs: [{ metadata: { name: "legacy", namespace: "demo" }, spec: { selector: { app: "legacy" } } }],
      replicaSets: [rs("demo", "web-y", { app: "web" })],
    });
    const count = (owner: Owner) => defaultSelector(opod("p", { namespace: "demo", labels: { app: "x" }, owner }), o).requirements.length;
    expect(count({ kind: "StatefulSet", name: "db" })).toBe(1);
    expect(count({ kind: "ReplicationController", name: "legacy" })).toBe(1);
    expect(count({ kind: "ReplicaSet", name: "web-y" })).toBe(1);
    expect(count({ kind: "ReplicaSet", name: "web-y", controller: false })).toBe(0);
    expect(count({ kind: "ReplicaSet", name: "web-y", apiVersion: "extensions/v1beta1" })).toBe(0);
    expect(count({ kind: "ReplicaSet", name: "gone" })).toBe(0);
    expect(count({ kind: "Job", name: "web-y" })).toBe(0);
  });
});

describe("PodTopologySpread: DoNotSchedule filter", () => {
  const nodes = ["node-a", "node-b", "node-c"].map((n) => kwNode(n));
  const hard = (extra: Partial<TopologySpreadConstraint> = {}): TopologySpreadConstraint[] => [
    { maxSkew: 1, topologyKey: HOST, whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: { app: "web" } }, ...extra },
  ];
  const w = (name: string, node: string) => opod(name, { labels: { app: "web" }, node });
  const incoming = (extra: Partial<TopologySpreadConstraint> = {}, nodeSelector?: Record<string, string>) =>
    opod("new", { labels: { app: "web" }, spread: hard(extra), ...(nodeSelector ? { nodeSelector } : {}) });

  it("only where the skew stays within maxSkew, whatever the scores say", () => {
    // node-c is the busiest in pods, but the only one where the skew stays 1.
    const pods = [w("w1", "node-a"), w("w2", "node-b"), ...busy(5, "node-c")];
    expect(schedule(incoming(), nodes, pods)).toEqual({ kind: "bind", nodeName: "node-c" });
  });

  it("reasons: the skew, and a node without the key", () => {
    const withBare = [...nodes.slice(0, 2), node("node-c")];
    const pods = [w("w1", "node-a"), w("w2", "node-a"), w("w3", "node-b")];
    // minDomains 3 with two domains: the global minimum is 0, so a (2 + 1) and b (1 + 1) exceed 1.
    expect(schedule(incoming({ minDomains: 3 }), withBare, pods)).toEqual({
      kind: "unschedulable",
      message: "0/3 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label), 2 node(s) didn't match pod topology spread constraints.",
    });
    expect(schedule(incoming(), withBare, pods)).toEqual({ kind: "bind", nodeName: "node-b" });
  });

  it("nodeAffinityPolicy: Honor leaves nodes the pod may not run on out of the minimum; Ignore counts them", () => {
    const disks = [kwNode("node-a", { disk: "ssd" }), kwNode("node-b", { disk: "ssd" }), kwNode("node-c", { disk: "hdd" })];
    const pods = [w("w1", "node-a"), w("w2", "node-b"), w("w3", "node-b")];
    expect(schedule(incoming({}, { disk: "ssd" }), disks, pods)).toEqual({ kind: "bind", nodeName: "node-a" });
    expect(schedule(incoming({ nodeAffinityPolicy: "Ignore" }, { disk: "ssd" }), disks, pods)).toEqual({
      kind: "unschedulable",
      message: "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) didn't match pod topology spread constraints.",
    });
  });

  it("nodeTaintsPolicy: Honor leaves a tainted node out of the minimum", () => {
    const tainted = [kwNode("node-a"), kwNode("node-b"), { ...kwNode("node-c"), spec: { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" as const }] } }];
    const pods = [w("w1", "node-a"), w("w2", "node-b"), w("w3", "node-b")];
    expect(schedule(incoming(), tainted, pods)).toEqual({
      kind: "unschedulable",
      message: "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match pod topology spread constraints.",
    });
    expect(schedule(incoming({ nodeTaintsPolicy: "Honor" }), tainted, pods)).toEqual({ kind: "bind", nodeName: "node-a" });
  });

  it("a pod without constraints of its own is never filtered by the system defaults", () => {
    const pods = [web("w1", "node-a"), web("w2", "node-a"), web("w3", "node-a"), web("w4", "node-a"), web("w5", "node-a")];
    const only = [kwNode("node-a"), { ...kwNode("node-b"), spec: { unschedulable: true } }];
    expect(schedule(web("new"), only, pods, listers({ replicaSets: [rs("demo", "web-y", WEB)] }))).toEqual({ kind: "bind", nodeName: "node-a" });
  });
});
