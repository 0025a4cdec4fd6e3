/**
 * The policy engine beyond the e2e truth tables: ICMP and other protocols, traffic from and to
 * the pod's node, external addresses, which side a node judges, endPort ranges, which rule an
 * allow is credited to, state changes and generations, preallocated verdicts, the index, and
 * explanations.
 */
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { AllowVerdict, PolicyEngine, SELF_VERDICT, formatExplain, type Connection } from "../../../node-agent/policy/engine.ts";
import { OBJECT_KINDS, Proto } from "../../../node-agent/policy/model.ts";
import { parseIpv4Addr } from "../../../overlay/wire/index.ts";
import { ALL_PODS, Reachability, cnp, egressRules, expectMatrix, ingressRules, ip, modelObjects, namespaceObject, netpol, netpolMatch, podObject } from "./fixtures.ts";

let engine: PolicyEngine;
beforeEach(() => {
  engine = new PolicyEngine();
  engine.replaceAll(modelObjects());
});

const addr = (t: string) => parseIpv4Addr(t)!;
function conn(src: string, dst: string, proto: number = Proto.TCP, dstPort = 80): Connection {
  return { src: src.includes("/") ? ip(src) : addr(src), dst: dst.includes("/") ? ip(dst) : addr(dst), proto, srcPort: 40_000, dstPort };
}

describe("protocols without ports", () => {
  it("a rule with ports does not match ICMP; a rule without ports does", () => {
    engine.upsert("NetworkPolicy", netpolMatch("x", "tcp-only", { pod: "a" }, ingressRules({ ports: [{ port: 80 }] })));
    expect(engine.verdict(conn("y/a", "x/a", Proto.ICMP, 0)).allowed).toBe(false);
    expect(engine.verdict(conn("y/a", "x/a", Proto.TCP, 80)).allowed).toBe(true);
    engine.upsert("NetworkPolicy", netpolMatch("x", "from-y", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] })));
    expect(engine.verdict(conn("y/a", "x/a", Proto.ICMP, 0)).allowed).toBe(true);
    expect(engine.verdict(conn("z/a", "x/a", Proto.ICMP, 0)).allowed).toBe(false);
    // Any other protocol (GRE) likewise: only rules without ports.
    expect(engine.verdict(conn("y/a", "x/a", 47, 0)).allowed).toBe(true);
    expect(engine.verdict(conn("z/a", "x/a", 47, 0)).allowed).toBe(false);
  });

  it("isolation applies to every protocol", () => {
    engine.upsert("NetworkPolicy", netpol("x", "deny-all", {}, ingressRules()));
    for (const proto of [Proto.ICMP, Proto.TCP, Proto.UDP, Proto.SCTP, 47]) expect(engine.verdict(conn("y/a", "x/b", proto, 80)).allowed).toBe(false);
  });
});

describe("endPort", () => {
  it("allows port..endPort inclusive and nothing around it", () => {
    engine.upsert("NetworkPolicy", netpolMatch("x", "range", { pod: "a" }, ingressRules({ ports: [{ port: 8000, endPort: 8080 }, { protocol: "UDP", port: 53, endPort: 53 }] })));
    const tcp = (p: number) => engine.verdict(conn("y/a", "x/a", Proto.TCP, p)).allowed;
    expect([7999, 8000, 8040, 8080, 8081].map(tcp)).toEqual([false, true, true, true, false]);
    expect(engine.verdict(conn("y/a", "x/a", Proto.UDP, 53)).allowed).toBe(true);
    expect(engine.verdict(conn("y/a", "x/a", Proto.UDP, 54)).allowed).toBe(false);
    expect(engine.verdict(conn("y/a", "x/a", Proto.SCTP, 8000)).allowed).toBe(false);
  });

  it("on the e2e model: 80..81 opens both served ports, as egress too", () => {
    engine.upsert("NetworkPolicy", netpol("x", "egress-80-81", {}, egressRules({ ports: [{ port: 80, endPort: 81 }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability());
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability());
    expectMatrix(engine, { port: 81, protocol: "UDP" }, new Reachability().expectPeer({ namespace: "x" }, {}, false));
  });

  it("overlapping ranges credit the first policy in namespace/name order", () => {
    engine.upsert("NetworkPolicy", netpolMatch("x", "b-wide", { pod: "a" }, ingressRules({ ports: [{ port: 1000, endPort: 2000 }] })));
    engine.upsert("NetworkPolicy", netpolMatch("x", "a-narrow", { pod: "a" }, ingressRules({ ports: [{ port: 1500, endPort: 1600 }] })));
    const by = (p: number) => {
      const v = engine.verdict(conn("y/a", "x/a", Proto.TCP, p));
      return v.kind === "allow" && v.ingress.kind === "rule" ? v.ingress.ref.policy.name : v.kind;
    };
    expect([999, 1000, 1499, 1500, 1600, 1601, 2000, 2001].map(by)).toEqual(["deny", "b-wide", "b-wide", "a-narrow", "a-narrow", "b-wide", "b-wide", "deny"]);
  });
});

describe("which rule an allow is credited to", () => {
  it("the first policy by name, then the first rule by index, whatever the kind of peer", () => {
    engine.upsert("NetworkPolicy", netpolMatch("x", "zz-cidr", { pod: "a" }, ingressRules({ from: [{ ipBlock: { cidr: "10.244.0.0/16" } }] })));
    engine.upsert("NetworkPolicy", netpolMatch("x", "mm", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchLabels: { pod: "nobody" } } }] }, { from: [{ namespaceSelector: {} }] })));
    const v = engine.verdict(conn("y/b", "x/a"));
    expect(v.kind === "allow" && v.ingress.kind === "rule" && [v.ingress.ref.policy.key, v.ingress.ref.rule.index]).toEqual(["x/mm", 1]);
    engine.upsert("NetworkPolicy", netpolMatch("x", "aa-any", { pod: "a" }, ingressRules({ ports: [{ port: 80 }] })));
    const w = engine.verdict(conn("y/b", "x/a"));
    expect(w.kind === "allow" && w.ingress.kind === "rule" && w.ingress.ref.policy.key).toBe("x/aa-any");
    expect(w.describe()).toBe("allowed: egress not isolated; ingress NetworkPolicy x/aa-any rule #0 allows");
  });
});

describe("peers", () => {
  it("podSelector AND namespaceSelector in one peer; separate peers OR", () => {
    const and = { from: [{ podSelector: { matchLabels: { pod: "b" } }, namespaceSelector: { matchLabels: { ns: "y" } } }] };
    const or = { from: [{ podSelector: { matchLabels: { pod: "b" } } }, { namespaceSelector: { matchLabels: { ns: "y" } } }] };
    engine.upsert("NetworkPolicy", netpolMatch("x", "and", { pod: "a" }, ingressRules(and)));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false).expect("y/b", "x/a", true));
    engine.upsert("NetworkPolicy", netpolMatch("x", "and", { pod: "a" }, ingressRules(or)));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false).expectPeer({ namespace: "y" }, { namespace: "x", pod: "a" }, true).expect("x/b", "x/a", true));
  });

  it("ipBlock with except matches pod and external addresses alike", () => {
    engine.upsert("NetworkPolicy", netpolMatch("x", "from-block", { pod: "a" }, ingressRules({ from: [{ ipBlock: { cidr: "10.244.0.0/16", except: ["10.244.2.0/24", "10.244.3.12/32"] } }, { ipBlock: { cidr: "192.0.2.0/24" } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectPeer({ namespace: "y" }, { namespace: "x", pod: "a" }, false).expect("z/c", "x/a", false));
    expect(engine.verdict(conn("192.0.2.9", "x/a")).allowed).toBe(true);
    expect(engine.verdict(conn("198.51.100.9", "x/a")).allowed).toBe(false);
    expect(engine.verdict(conn("10.244.9.9", "x/a")).allowed).toBe(true);
  });

  it("egress to external addresses: ipBlock, and named ports match only pods that have the name", () => {
    engine.upsert("NetworkPolicy", netpolMatch("x", "out", { pod: "a" }, egressRules({ to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8"] } }] }, { ports: [{ port: "serve-81-tcp" }] })));
    expect(engine.verdict(conn("x/a", "192.0.2.1", Proto.TCP, 443)).allowed).toBe(true);
    expect(engine.verdict(conn("x/a", "10.1.2.3", Proto.TCP, 443)).allowed).toBe(false);
    expect(engine.verdict(conn("x/a", "10.1.2.3", Proto.TCP, 81)).allowed).toBe(false);
    expect(engine.verdict(conn("x/a", "y/c", Proto.TCP, 81)).allowed).toBe(true);
    expect(engine.verdict(conn("x/a", "y/c", Proto.UDP, 81)).allowed).toBe(false);
  });

  it("an external source or destination has no policy of its own", () => {
    engine.upsert("NetworkPolicy", netpol("x", "deny-all", {}, ingressRules(), egressRules()));
    const v = engine.verdict(conn("192.0.2.1", "203.0.113.5"));
    expect(v.kind === "allow" && [v.egress.kind === "not-judged" && v.egress.why, v.ingress.kind === "not-judged" && v.ingress.why]).toEqual(["not-a-pod", "not-a-pod"]);
    expect(engine.verdict(conn("192.0.2.1", "y/a")).allowed).toBe(true);
  });

  it("a namespace without an object, or whose object lacks the label, still has kubernetes.io/metadata.name", () => {
    engine.upsert("Namespace", namespaceObject("y", { ns: "y" }));
    engine.remove("Namespace", "z");
    engine.upsert("NetworkPolicy", netpolMatch("x", "from-y-z", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: ["y", "z"] }] } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false));
    // z has no object now, so no "ns" label: a selector on ns=z no longer takes it.
    engine.upsert("NetworkPolicy", netpolMatch("x", "from-y-z", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { ns: "z" } } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false));
  });
});

describe("traffic from and to the pod's own node", () => {
  it("is allowed whatever the policies (kubelet probes)", () => {
    engine.upsert("NetworkPolicy", netpol("x", "deny-all", {}, ingressRules(), egressRules()));
    engine.upsert("ClusterNetworkPolicy", cnp("deny-everything", { tier: "Admin", priority: 0, subject: { namespaces: {} }, ingress: [{ name: "deny", action: "Deny", from: [{ namespaces: {} }] }] }));
    const probe = conn("172.31.0.2", "x/a", Proto.TCP, 8080);
    expect(engine.verdict(probe).allowed).toBe(false);
    const v = engine.verdict(probe, { srcIsLocalNode: true });
    expect(v.kind === "allow" && v.ingress.kind === "not-judged" && v.ingress.why).toBe("local-node");
    expect(engine.verdict(conn("x/a", "172.31.0.2", Proto.TCP, 10250)).allowed).toBe(false);
    expect(engine.verdict(conn("x/a", "172.31.0.2", Proto.TCP, 10250), { dstIsLocalNode: true }).allowed).toBe(true);
  });

  it("can be left to the policies (nodeTrafficAllowed: false)", () => {
    const strict = new PolicyEngine({ nodeTrafficAllowed: false });
    strict.replaceAll({ ...modelObjects(), networkPolicies: [netpol("x", "from-nodes", {}, ingressRules({ from: [{ ipBlock: { cidr: "172.31.0.0/24" } }], ports: [{ port: 8080 }] }))] });
    expect(strict.verdict(conn("172.31.0.2", "x/a", Proto.TCP, 80), { srcIsLocalNode: true }).allowed).toBe(false);
    expect(strict.verdict(conn("172.31.0.2", "x/a", Proto.TCP, 8080), { srcIsLocalNode: true }).allowed).toBe(true);
  });
});

describe("which side a node judges", () => {
  it("egress on the source's node, ingress on the destination's", () => {
    const node1 = new PolicyEngine({ nodeName: "node-1" });
    const node2 = new PolicyEngine({ nodeName: "node-2" });
    const objects = { ...modelObjects(), networkPolicies: [netpol("x", "deny-egress", {}, egressRules()), netpol("y", "deny-ingress", {}, ingressRules())] };
    node1.replaceAll(objects);
    node2.replaceAll(objects);
    // x/a (node-1) -> y/a (node-2): node-1 judges x/a's egress, node-2 y/a's ingress.
    const v1 = node1.verdict(conn("x/a", "y/a"));
    expect(v1.kind === "deny" && v1.direction).toBe("egress");
    const v2 = node2.verdict(conn("x/a", "y/a"));
    expect(v2.kind === "deny" && v2.direction).toBe("ingress");
    // z/a -> y/a: nothing for node-1 to judge.
    const v3 = node1.verdict(conn("z/a", "y/a"));
    expect(v3.kind === "allow" && [v3.egress.kind === "not-judged" && v3.egress.why, v3.ingress.kind === "not-judged" && v3.ingress.why]).toEqual(["remote-pod", "remote-pod"]);
    expect(node2.verdict(conn("z/a", "y/a")).allowed).toBe(false);
  });
});

describe("self traffic", () => {
  it("a pod cannot block traffic to itself", () => {
    engine.upsert("NetworkPolicy", netpol("x", "deny-all", {}, ingressRules(), egressRules()));
    engine.upsert("ClusterNetworkPolicy", cnp("deny", { tier: "Admin", priority: 0, subject: { namespaces: {} }, ingress: [{ name: "d", action: "Deny", from: [{ namespaces: {} }] }] }));
    expect(engine.verdict(conn("x/a", "x/a"))).toBe(SELF_VERDICT);
  });
});

describe("state", () => {
  it("bumps the generation on every change and only then", () => {
    const g0 = engine.generation;
    const policy = netpol("x", "deny-all", {}, ingressRules());
    expect(engine.upsert("NetworkPolicy", policy)).toBe(true);
    expect(engine.generation).toBe(g0 + 1);
    expect(engine.upsert("NetworkPolicy", structuredClone(policy))).toBe(false);
    expect(engine.upsert("Pod", podObject("x/a"))).toBe(false);
    expect(engine.generation).toBe(g0 + 1);
    expect(engine.upsert("Pod", podObject("x/a", { status: { conditions: [{ type: "Ready", status: "True" }] } }))).toBe(false);
    expect(engine.upsert("Pod", podObject("x/a", { labels: { pod: "a", v: "2" } }))).toBe(true);
    expect(engine.remove("NetworkPolicy", "x/nope")).toBe(false);
    expect(engine.remove("NetworkPolicy", policy)).toBe(true);
    expect(engine.generation).toBe(g0 + 3);
    engine.replaceAll(modelObjects());
    expect(engine.generation).toBe(g0 + 4);
  });

  it("terminating, finished and host-network pods leave the engine; an address goes to its new pod", () => {
    engine.upsert("NetworkPolicy", netpolMatch("x", "from-b", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchLabels: { pod: "b" } } }] })));
    expect(engine.verdict(conn("x/b", "x/a")).allowed).toBe(true);
    engine.upsert("Pod", podObject("x/b", { metadata: { deletionTimestamp: "2026-01-01T00:00:00Z" } }));
    expect(engine.podAt(ip("x/b"))).toBeUndefined();
    expect(engine.verdict(conn("x/b", "x/a")).allowed).toBe(false);
    // The address is reused by a pod that the policy does not allow.
    engine.upsert("Pod", podObject("x/d", { ip: "10.244.1.11", labels: { pod: "d" } }));
    expect(engine.podAt(ip("x/b"))?.key).toBe("x/d");
    expect(engine.verdict(conn("x/b", "x/a")).allowed).toBe(false);
    engine.upsert("Pod", podObject("x/e", { ip: "10.244.1.50", labels: { pod: "b" }, status: { phase: "Succeeded" } }));
    engine.upsert("Pod", podObject("x/f", { ip: "10.244.1.51", labels: { pod: "b" }, spec: { hostNetwork: true } }));
    expect(engine.podAt(addr("10.244.1.50"))).toBeUndefined();
    expect(engine.podAt(addr("10.244.1.51"))).toBeUndefined();
    expect(engine.verdict(conn("10.244.1.50", "x/a")).allowed).toBe(false);
  });

  it("two pods with one address: the smaller key owns it, and the other takes over when it goes", () => {
    engine.upsert("Pod", podObject("x/zz", { ip: "10.244.1.10", labels: { pod: "zz" } }));
    expect(engine.podAt(ip("x/a"))?.key).toBe("x/a");
    engine.remove("Pod", "x/a");
    expect(engine.podAt(ip("x/a"))?.key).toBe("x/zz");
  });
});

describe("verdict objects", () => {
  it("are preallocated: the same object for the same decision, texts built on demand", () => {
    engine.upsert("NetworkPolicy", netpol("x", "deny-ingress", {}, ingressRules()));
    engine.upsert("NetworkPolicy", netpolMatch("x", "allow-80", { pod: "a" }, ingressRules({ ports: [{ port: 80 }] })));
    const a = engine.verdict(conn("y/a", "x/a"));
    expect(engine.verdict(conn("z/c", "x/a", Proto.TCP, 80))).toBe(a);
    expect(a).toBeInstanceOf(AllowVerdict);
    expect(Object.isFrozen(a)).toBe(true);
    const d = engine.verdict(conn("y/a", "x/b"));
    expect(engine.verdict(conn("z/b", "x/b", Proto.UDP, 53))).toBe(d);
    expect(d.kind === "deny" && { reason: d.reason, direction: d.direction, tier: d.tier, detail: d.detail }).toEqual({
      reason: "policy",
      direction: "ingress",
      tier: "NetworkPolicy",
      detail: "default deny: selected by x/deny-ingress, no rule allows",
    });
    const da = engine.verdict(conn("y/a", "x/a", Proto.TCP, 81));
    expect(da.kind === "deny" && da.detail).toBe("default deny: selected by x/allow-80, x/deny-ingress, no rule allows");
    expect(da.describe()).toBe("denied (ingress): default deny: selected by x/allow-80, x/deny-ingress, no rule allows");
  });

  it("are new after a change (the old ones describe the old state)", () => {
    engine.upsert("NetworkPolicy", netpol("x", "deny-ingress", {}, ingressRules()));
    const before = engine.verdict(conn("y/a", "x/b"));
    engine.upsert("NetworkPolicy", netpol("x", "other", { matchLabels: { pod: "none" } }, ingressRules()));
    const after = engine.verdict(conn("y/a", "x/b"));
    expect(after).not.toBe(before);
    expect(after.kind === "deny" && after.detail).toBe(before.kind === "deny" && before.detail);
  });
});

describe("the index", () => {
  it("1,000 policies selecting a pod compile to one peer entry per source and a few shared port sets", () => {
    const policies = Array.from({ length: 1000 }, (_, i) =>
      netpol("x", `p-${String(i).padStart(4, "0")}`, {}, ingressRules({ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }], ports: [{ port: 1000 + i }] }, { from: [{ ipBlock: { cidr: "192.0.2.0/24" } }], ports: [{ port: 2000 + i }] })),
    );
    engine.replaceAll({ ...modelObjects(), networkPolicies: policies });
    const stats = engine.indexStats(ip("x/a"), "ingress");
    expect(stats).toEqual({ NetworkPolicy: { policies: 1000, peerIps: 3, portSets: 1, cidrs: 1, anyPeer: false } });
    expect(engine.verdict(conn("y/b", "x/a", Proto.TCP, 1999)).allowed).toBe(true);
    expect(engine.verdict(conn("y/b", "x/a", Proto.TCP, 2000)).allowed).toBe(false);
    expect(engine.verdict(conn("192.0.2.1", "x/a", Proto.TCP, 2999)).allowed).toBe(true);
    const v = engine.verdict(conn("y/b", "x/a", Proto.TCP, 1500));
    expect(v.kind === "allow" && v.ingress.kind === "rule" && v.ingress.ref.policy.name).toBe("p-0500");
    expect(engine.isolated(ip("x/a"), "ingress")).toBe(true);
    expect(engine.isolated(ip("x/a"), "egress")).toBe(false);
    expect(engine.isolated(addr("192.0.2.1"), "egress")).toBeUndefined();
  });
});

describe("explain", () => {
  it("tells each side's tiers, policies and matching rule", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("guard", { tier: "Admin", priority: 7, subject: { namespaces: { matchLabels: { ns: "x" } } }, ingress: [{ name: "pass-y", action: "Pass", from: [{ namespaces: { matchLabels: { ns: "y" } } }] }, { name: "deny-z", action: "Deny", from: [{ namespaces: { matchLabels: { ns: "z" } } }] }] }));
    engine.upsert("NetworkPolicy", netpolMatch("x", "web", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }], ports: [{ port: "serve-80-tcp" }] })));
    engine.upsert("ClusterNetworkPolicy", cnp("floor", { tier: "Baseline", priority: 100, subject: { namespaces: {} }, egress: [{ name: "deny-x", action: "Deny", to: [{ namespaces: { matchLabels: { ns: "x" } } }] }] }));
    const e = engine.explain("y/b", "x/a", { protocol: "TCP", port: 80 });
    expect(e.kind).toBe("ok");
    if (e.kind !== "ok") return;
    expect(e.explanation.verdict.allowed).toBe(false);
    expect(formatExplain(e.explanation)).toBe(
      [
        "y/b (10.244.2.11) -> x/a (10.244.1.10) TCP/80",
        "egress of y/b on node-2:",
        "  Admin tier: no ClusterNetworkPolicy selects y/b for egress",
        "  NetworkPolicy: not isolated (no NetworkPolicy selects y/b for egress)",
        "  Baseline tier: floor (priority 100)",
        "    Baseline floor rule deny-x (to pods <all> in namespaces ns=x; all ports and protocols) denies",
        "  => Baseline floor rule deny-x denies",
        "ingress of x/a on node-1:",
        "  Admin tier: guard (priority 7)",
        "    Admin guard rule pass-y (from pods <all> in namespaces ns=y; all ports and protocols) passes",
        "  NetworkPolicy: isolated by x/web",
        "    x/web rule #0 (from pods <all> in namespaces ns=y; TCP/serve-80-tcp) allows",
        "  Baseline tier: no ClusterNetworkPolicy selects x/a for ingress",
        "  => NetworkPolicy x/web rule #0 allows",
        "verdict: DENY (egress): Baseline floor rule deny-x denies",
      ].join("\n"),
    );
    const sides = e.explanation.ingress.tiers.map((t) => [t.tier, t.policies.map((p) => p.name), t.evaluated, t.match ? t.match.rule.name || t.match.rule.index : undefined]);
    expect(sides).toEqual([
      ["Admin", ["guard"], true, "pass-y"],
      ["NetworkPolicy", ["web"], true, 0],
      ["Baseline", [], false, undefined],
    ]);
  });

  it("takes IPs, namespace/name and names in default, and says what it cannot take", () => {
    expect(engine.explain("10.244.2.10", "x/a", { port: 80 }).kind).toBe("ok");
    expect(engine.explain(addr("192.0.2.1"), ip("x/a"), { protocol: "udp", port: 53 }).kind).toBe("ok");
    expect(engine.explain("x/a", "y/a", { protocol: "ICMP" }).kind).toBe("ok");
    expect(engine.explain("nosuch", "x/a", { port: 80 })).toEqual({ kind: "error", message: "no pod default/nosuch with an IPv4 address" });
    expect(engine.explain("x/a", "y/a", { protocol: "QUIC", port: 80 })).toEqual({ kind: "error", message: "unknown protocol QUIC" });
    expect(engine.explain("x/a", "y/a", { protocol: "TCP" })).toEqual({ kind: "error", message: "TCP needs a port 1-65535" });
  });

  it("agrees with verdict on random connections (same path, same objects)", () => {
    engine.upsert("NetworkPolicy", netpolMatch("x", "mixed", { pod: "a" }, ingressRules({ from: [{ ipBlock: { cidr: "10.244.2.0/23", except: ["10.244.3.0/24"] } }], ports: [{ port: 80, endPort: 90 }, { protocol: "UDP" }] })));
    engine.upsert("ClusterNetworkPolicy", cnp("c", { tier: "Admin", priority: 1, subject: { namespaces: {} }, egress: [{ name: "d", action: "Deny", to: [{ networks: ["10.244.3.0/25"] }], protocols: [{ tcp: { destinationPort: { range: { start: 85, end: 95 } } } }] }] }));
    const endpoints = [...ALL_PODS.map(ip), addr("192.0.2.1"), addr("10.244.3.200")];
    fc.assert(
      fc.property(fc.constantFrom(...endpoints), fc.constantFrom(...endpoints), fc.constantFrom(Proto.TCP, Proto.UDP, Proto.SCTP, Proto.ICMP), fc.integer({ min: 1, max: 120 }), (src, dst, proto, port) => {
        const v = engine.verdict({ src, dst, proto, srcPort: 1, dstPort: port });
        const e = engine.explain(src, dst, { protocol: proto, port });
        return e.kind === "ok" && e.explanation.verdict === v;
      }),
      { seed: 42, numRuns: 500 },
    );
  });
});

describe("untrusted input", () => {
  it("no object of any shape makes the engine throw", () => {
    fc.assert(
      fc.property(fc.constantFrom(...OBJECT_KINDS), fc.anything({ maxDepth: 5 }), fc.object({ maxDepth: 6 }), (kind, junk, shaped) => {
        engine.upsert(kind, junk);
        engine.upsert(kind, { metadata: { namespace: "x", name: "j" }, spec: shaped, status: shaped });
        for (const src of ["x/a", "y/b"]) engine.verdict(conn(src, "x/a"));
        engine.explain("x/a", "x/b", { port: 80 });
        engine.remove(kind, junk);
        return true;
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});
