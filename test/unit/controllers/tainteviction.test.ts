import { describe, expect, it } from "vitest";
import type { Node, Pod, Taint, Toleration } from "kubernetes-types/core/v1.js";
import { evictionDecision, minTolerationMs } from "../../../control-plane/controllers/logic/tainteviction.ts";
import { defaultTolerations } from "../../../control-plane/api/admission.ts";
import type { KubeObject } from "../../../cluster/store.ts";

const ADDED = "2024-06-01T12:00:00Z";
const T0 = Date.parse(ADDED);
const unreachable: Taint = { key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: ADDED };
const notReady: Taint = { key: "node.kubernetes.io/not-ready", effect: "NoExecute", timeAdded: ADDED };

function node(taints: Taint[]): Node {
  return { metadata: { name: "node-a" }, spec: { taints } };
}

function pod(tolerations?: Toleration[], o: { deleting?: boolean; phase?: string } = {}): Pod {
  return {
    metadata: { name: "p", namespace: "default", ...(o.deleting ? { deletionTimestamp: ADDED } : {}) },
    spec: { nodeName: "node-a", containers: [], ...(tolerations ? { tolerations } : {}) },
    status: { phase: o.phase ?? "Running" },
  };
}

const defaults = (seconds: number): Toleration[] => [
  { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: seconds },
  { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: seconds },
];

describe("evictionDecision (processPodOnNode)", () => {
  const cases: Array<{ name: string; node: Node | undefined; pod: Pod; now: number; want: unknown }> = [
    { name: "no NoExecute taint: nothing", node: node([{ key: "x", effect: "NoSchedule" }]), pod: pod(), now: T0, want: { kind: "none" } },
    { name: "node gone from the cache: nothing", node: undefined, pod: pod(), now: T0, want: { kind: "none" } },
    { name: "no toleration: evicted at once", node: node([unreachable]), pod: pod(), now: T0 + 1, want: { kind: "evict", taint: unreachable, deadlineMs: T0 + 1 } },
    { name: "the default 20s: waits", node: node([unreachable]), pod: pod(defaults(20)), now: T0 + 5_000, want: { kind: "wait", deadlineMs: T0 + 20_000, inMs: 15_000 } },
    { name: "the default 20s: evicted when they run out, counted from timeAdded", node: node([unreachable]), pod: pod(defaults(20)), now: T0 + 20_000, want: { kind: "evict", taint: unreachable, deadlineMs: T0 + 20_000 } },
    {
      name: "tolerates forever (a DaemonSet's pod): stays",
      node: node([unreachable]),
      pod: pod([{ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" }]),
      now: T0 + 86_400_000,
      want: { kind: "tolerated" },
    },
    {
      name: "an empty key with Exists tolerates everything, forever",
      node: node([unreachable, { key: "custom", value: "v", effect: "NoExecute" }]),
      pod: pod([{ operator: "Exists" }]),
      now: T0 + 86_400_000,
      want: { kind: "tolerated" },
    },
    {
      name: "tolerates unreachable only: a not-ready taint evicts at once",
      node: node([notReady]),
      pod: pod([{ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 }]),
      now: T0,
      want: { kind: "evict", taint: notReady, deadlineMs: T0 },
    },
    {
      name: "two taints: the smaller tolerationSeconds wins",
      node: node([unreachable, { key: "other", effect: "NoExecute", timeAdded: ADDED }]),
      pod: pod([...defaults(300), { key: "other", operator: "Exists", effect: "NoExecute", tolerationSeconds: 7 }]),
      now: T0 + 7_000,
      want: { kind: "evict", taint: { key: "other", effect: "NoExecute", timeAdded: ADDED }, deadlineMs: T0 + 7_000 },
    },
    {
      name: "tolerationSeconds 0 or below: at once",
      node: node([unreachable]),
      pod: pod([{ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: -5 }]),
      now: T0,
      want: { kind: "evict", taint: unreachable, deadlineMs: T0 },
    },
    { name: "a taint without timeAdded counts from when it was first seen", node: node([{ key: "node.kubernetes.io/unreachable", effect: "NoExecute" }]), pod: pod(defaults(20)), now: T0 + 30_000, want: { kind: "wait", deadlineMs: T0 + 30_000 + 20_000, inMs: 20_000 } },
    { name: "already being deleted: nothing", node: node([unreachable]), pod: pod(undefined, { deleting: true }), now: T0 + 1e6, want: { kind: "none" } },
    { name: "finished: nothing", node: node([unreachable]), pod: pod(undefined, { phase: "Succeeded" }), now: T0 + 1e6, want: { kind: "none" } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(evictionDecision(c.pod, c.node, c.now)).toEqual(c.want);
    });
  }

  it("first seen earlier for a taint without timeAdded", () => {
    const taint: Taint = { key: "node.kubernetes.io/unreachable", effect: "NoExecute" };
    expect(evictionDecision(pod(defaults(20)), node([taint]), T0 + 20_000, T0 + 5_000)).toEqual({ kind: "wait", deadlineMs: T0 + 25_000, inMs: 5_000 });
    expect(evictionDecision(pod(defaults(20)), node([taint]), T0 + 25_000, T0 + 5_000)).toEqual({ kind: "evict", taint, deadlineMs: T0 + 25_000 });
  });
});

describe("minTolerationMs (getMinTolerationTime)", () => {
  it("forever without tolerationSeconds, the smallest otherwise", () => {
    expect(minTolerationMs([])).toBe(Infinity);
    expect(minTolerationMs([{ key: "a" }])).toBe(Infinity);
    expect(minTolerationMs([{ tolerationSeconds: 30 }, { tolerationSeconds: 10 }, {}])).toBe(10_000);
    expect(minTolerationMs([{ tolerationSeconds: 30 }, { tolerationSeconds: 0 }])).toBe(0);
  });
});

describe("defaultTolerations (the DefaultTolerationSeconds admission plugin)", () => {
  const p = (tolerations?: unknown[]): KubeObject => ({ apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { containers: [], ...(tolerations ? { tolerations } : {}) } });
  const tolerationsOf = (o: KubeObject) => (o.spec as { tolerations?: unknown[] }).tolerations;

  it("a pod with none gets both, with the configured seconds", () => {
    expect(tolerationsOf(defaultTolerations(p(), 20))).toEqual(defaults(20));
  });

  it("a pod that tolerates one keeps it and gets only the other", () => {
    const own = { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 6000 };
    expect(tolerationsOf(defaultTolerations(p([own]), 20))).toEqual([own, defaults(20)[0]]);
  });

  it("a toleration with an empty effect counts; one for NoSchedule does not", () => {
    const anyEffect = { key: "node.kubernetes.io/not-ready", operator: "Exists" };
    const noSchedule = { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoSchedule" };
    expect(tolerationsOf(defaultTolerations(p([anyEffect, noSchedule]), 20))).toEqual([anyEffect, noSchedule, defaults(20)[1]]);
  });

  it("an empty key tolerates both: nothing added, the object unchanged", () => {
    const all = p([{ operator: "Exists" }]);
    expect(defaultTolerations(all, 20)).toBe(all);
  });

  it("a DaemonSet pod's forever tolerations stay forever", () => {
    const forever = [{ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute" }, { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" }];
    expect(tolerationsOf(defaultTolerations(p(forever), 20))).toEqual(forever);
  });
});

describe("malformed stored objects", () => {
  it("taints or tolerations that are not lists are read as empty", () => {
    const odd = { metadata: { name: "node-a" }, spec: { taints: { key: "x" } } } as unknown as Node;
    expect(evictionDecision(pod(), odd, T0)).toEqual({ kind: "none" });
    const oddPod = { ...pod(), spec: { nodeName: "node-a", containers: [], tolerations: "all" } } as unknown as Pod;
    expect(evictionDecision(oddPod, node([unreachable]), T0)).toMatchObject({ kind: "evict" });
  });
});
