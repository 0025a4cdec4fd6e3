/**
 * ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2, kubernetes-sigs/network-policy-api at
 * 0eec1b0e) on the e2e model: the tiers Admin -> NetworkPolicy -> Baseline, priorities, Accept /
 * Deny / Pass, peers, protocols and the spec's "fail closed". The first cases follow the
 * project's conformance test "standard integration" (conformance/tests/
 * admin-network-policy-standard-integration.go with api_integration/standard-anp-np-banp.yaml),
 * gryffindor played by namespace x and slytherin by y.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { PolicyEngine } from "../../../node-agent/policy/engine.ts";
import { Proto } from "../../../node-agent/policy/model.ts";
import { parseIpv4Addr } from "../../../overlay/wire/index.ts";
import { Reachability, cnp, expectMatrix, ip, modelObjects, netpol, netpolMatch, ingressRules, type Obj } from "./fixtures.ts";

let engine: PolicyEngine;
beforeEach(() => {
  engine = new PolicyEngine();
  engine.replaceAll(modelObjects());
});

const ns = (name: string) => ({ matchLabels: { ns: name } });

function passExample(ingressAction = "Deny", egressAction = "Deny"): Obj {
  return cnp("pass-example", {
    tier: "Admin",
    priority: 10,
    subject: { namespaces: ns("x") },
    ingress: [{ name: "deny-all-ingress-from-slytherin", action: ingressAction, from: [{ namespaces: ns("y") }] }],
    egress: [{ name: "deny-all-egress-to-slytherin", action: egressAction, to: [{ namespaces: ns("y") }] }],
  });
}
const NP_ALLOW_GRESS_FROM_TO_Y = netpol("x", "allow-gress-from-to-slytherin-to-gryffindor", {}, (np) => {
  np.spec.policyTypes = ["Ingress", "Egress"];
  np.spec.ingress = [{ from: [{ namespaceSelector: ns("y") }] }];
  np.spec.egress = [{ to: [{ namespaceSelector: ns("y") }] }];
});
const BASELINE_DEFAULT = cnp("default", {
  tier: "Baseline",
  priority: 10,
  subject: { namespaces: ns("x") },
  ingress: [{ name: "deny-all-ingress-from-slytherin", action: "Deny", from: [{ namespaces: ns("y") }] }],
  egress: [{ name: "deny-all-egress-to-slytherin", action: "Deny", to: [{ namespaces: ns("y") }] }],
});

function integration(ingressAction = "Deny", egressAction = "Deny"): void {
  engine.upsert("ClusterNetworkPolicy", passExample(ingressAction, egressAction));
  engine.upsert("NetworkPolicy", NP_ALLOW_GRESS_FROM_TO_Y);
  engine.upsert("ClusterNetworkPolicy", BASELINE_DEFAULT);
}

const TCP80 = { port: 80, protocol: "TCP" } as const;

describe("ClusterNetworkPolicy standard integration (admin CNP, NetworkPolicy, baseline CNP)", () => {
  it("Should Deny traffic from slytherin to gryffindor respecting admin CNP", () => {
    integration();
    // x is isolated both ways by the NetworkPolicy (only y allowed), and the admin Deny removes y.
    expectMatrix(engine, TCP80, new Reachability().expectPeer({ namespace: "x" }, {}, false).expectPeer({}, { namespace: "x" }, false));
    const v = engine.verdict({ src: ip("y/a"), dst: ip("x/a"), proto: Proto.TCP, srcPort: 40_000, dstPort: 80 });
    expect(v.allowed).toBe(false);
    expect(v.kind === "deny" && v.detail).toBe("Admin pass-example rule deny-all-ingress-from-slytherin denies");
    expect(v.kind === "deny" && [v.direction, v.tier]).toEqual(["ingress", "Admin"]);
  });

  it("Should Deny traffic to slytherin from gryffindor respecting admin CNP", () => {
    integration();
    const v = engine.verdict({ src: ip("x/b"), dst: ip("y/c"), proto: Proto.TCP, srcPort: 40_000, dstPort: 80 });
    expect(v.kind === "deny" && [v.direction, v.detail]).toEqual(["egress", "Admin pass-example rule deny-all-egress-to-slytherin denies"]);
  });

  it("Should support a 'pass-ingress' policy for admin CNP and respect the match for network policy", () => {
    integration("Pass", "Deny");
    const r = new Reachability().expectPeer({ namespace: "x" }, {}, false).expectPeer({}, { namespace: "x" }, false).expectPeer({ namespace: "y" }, { namespace: "x" }, true);
    expectMatrix(engine, TCP80, r);
    const v = engine.verdict({ src: ip("y/a"), dst: ip("x/a"), proto: Proto.TCP, srcPort: 40_000, dstPort: 80 });
    expect(v.kind === "allow" && v.ingress.kind === "rule" && v.ingress.ref.policy.key).toBe("x/allow-gress-from-to-slytherin-to-gryffindor");
  });

  it("Should support a 'pass-egress' policy for admin CNP and respect the match for network policy", () => {
    integration("Pass", "Pass");
    const r = new Reachability()
      .expectPeer({ namespace: "x" }, {}, false)
      .expectPeer({}, { namespace: "x" }, false)
      .expectPeer({ namespace: "y" }, { namespace: "x" }, true)
      .expectPeer({ namespace: "x" }, { namespace: "y" }, true);
    expectMatrix(engine, TCP80, r);
  });

  it("Should support a 'pass-ingress' and 'pass-egress' policy for admin CNP and respect the match for baseline cluster network policy", () => {
    integration("Pass", "Pass");
    engine.remove("NetworkPolicy", NP_ALLOW_GRESS_FROM_TO_Y);
    // No NetworkPolicy isolates x any more, so the baseline decides: y is denied both ways, everything else allowed.
    const r = new Reachability().expectPeer({ namespace: "y" }, { namespace: "x" }, false).expectPeer({ namespace: "x" }, { namespace: "y" }, false);
    expectMatrix(engine, TCP80, r);
    const v = engine.verdict({ src: ip("y/a"), dst: ip("x/a"), proto: Proto.TCP, srcPort: 40_000, dstPort: 80 });
    expect(v.kind === "deny" && v.detail).toBe("Baseline default rule deny-all-ingress-from-slytherin denies");
  });
});

describe("ClusterNetworkPolicy tiers", () => {
  it("Admin Deny wins over a NetworkPolicy that allows the namespace", () => {
    engine.upsert("NetworkPolicy", netpol("x", "allow-from-y", {}, ingressRules({ from: [{ namespaceSelector: ns("y") }] })));
    engine.upsert("ClusterNetworkPolicy", cnp("deny-y-b", { tier: "Admin", priority: 5, subject: { namespaces: ns("x") }, ingress: [{ name: "no-b", action: "Deny", from: [{ pods: { namespaceSelector: ns("y"), podSelector: { matchLabels: { pod: "b" } } } }] }] }));
    const r = new Reachability().expectPeer({}, { namespace: "x" }, false).expectPeer({ namespace: "y" }, { namespace: "x" }, true).expectPeer({ namespace: "y", pod: "b" }, { namespace: "x" }, false);
    expectMatrix(engine, TCP80, r);
  });

  it("Admin Accept is final: it lets through what NetworkPolicy isolation would deny", () => {
    engine.upsert("NetworkPolicy", netpol("x", "deny-all", {}, ingressRules()));
    engine.upsert("ClusterNetworkPolicy", cnp("accept-z", { tier: "Admin", priority: 1, subject: { namespaces: {} }, ingress: [{ name: "from-z", action: "Accept", from: [{ namespaces: ns("z") }] }] }));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({}, { namespace: "x" }, false).expectPeer({ namespace: "z" }, { namespace: "x" }, true));
  });

  it("an egress Accept still needs the destination's ingress", () => {
    engine.upsert("NetworkPolicy", netpol("x", "deny-all", {}, ingressRules()));
    engine.upsert("ClusterNetworkPolicy", cnp("accept-to-x", { tier: "Admin", priority: 1, subject: { namespaces: ns("y") }, egress: [{ name: "to-x", action: "Accept", to: [{ namespaces: ns("x") }] }] }));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({}, { namespace: "x" }, false));
    const v = engine.verdict({ src: ip("y/a"), dst: ip("x/a"), proto: Proto.TCP, srcPort: 1, dstPort: 80 });
    expect(v.kind === "deny" && [v.direction, v.detail]).toEqual(["ingress", "default deny: selected by x/deny-all, no rule allows"]);
  });

  it("Baseline applies only to pods no NetworkPolicy isolates in that direction", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("baseline-deny-y", { tier: "Baseline", priority: 0, subject: { namespaces: ns("x") }, ingress: [{ name: "no-y", action: "Deny", from: [{ namespaces: ns("y") }] }] }));
    engine.upsert("NetworkPolicy", netpolMatch("x", "a-from-y", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: ns("y") }] })));
    // x/a: the NetworkPolicy decides (y only); x/b, x/c: the baseline decides (everything but y).
    const r = new Reachability().expectAllIngress("x/a", false).expectPeer({ namespace: "y" }, { namespace: "x", pod: "a" }, true).expectPeer({ namespace: "y" }, { namespace: "x", pod: "b" }, false).expectPeer({ namespace: "y" }, { namespace: "x", pod: "c" }, false);
    expectMatrix(engine, TCP80, r);
    // An egress-only NetworkPolicy does not take the ingress side away from the baseline.
    engine.upsert("NetworkPolicy", netpol("x", "egress-only", {}, (np) => {
      np.spec.policyTypes = ["Egress"];
      np.spec.egress = [{}];
    }));
    expectMatrix(engine, TCP80, r);
  });

  it("a lower priority number is evaluated first; equal priorities go by name", () => {
    const accept = (name: string, priority: number) => cnp(name, { tier: "Admin", priority, subject: { namespaces: ns("x") }, ingress: [{ name: "accept-y-a", action: "Accept", from: [{ pods: { namespaceSelector: ns("y"), podSelector: { matchLabels: { pod: "a" } } } }] }] });
    const deny = (name: string, priority: number) => cnp(name, { tier: "Admin", priority, subject: { namespaces: ns("x") }, ingress: [{ name: "deny-y", action: "Deny", from: [{ namespaces: ns("y") }] }] });
    engine.upsert("ClusterNetworkPolicy", accept("accept", 10));
    engine.upsert("ClusterNetworkPolicy", deny("deny", 20));
    const yDenied = new Reachability().expectPeer({ namespace: "y" }, { namespace: "x" }, false);
    expectMatrix(engine, TCP80, yDenied.expect("y/a", "x/a", true).expect("y/a", "x/b", true).expect("y/a", "x/c", true));
    engine.upsert("ClusterNetworkPolicy", deny("deny", 5));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({ namespace: "y" }, { namespace: "x" }, false));
    // A tie: "a-deny" sorts before "accept".
    engine.remove("ClusterNetworkPolicy", "deny");
    engine.upsert("ClusterNetworkPolicy", deny("a-deny", 10));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({ namespace: "y" }, { namespace: "x" }, false));
    engine.remove("ClusterNetworkPolicy", "a-deny");
    engine.upsert("ClusterNetworkPolicy", deny("b-deny", 10));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({ namespace: "y" }, { namespace: "x" }, false).expect("y/a", "x/a", true).expect("y/a", "x/b", true).expect("y/a", "x/c", true));
  });

  it("rules of one policy go in written order", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("ordered", {
      tier: "Admin",
      priority: 1,
      subject: { namespaces: ns("x") },
      ingress: [
        { name: "accept-y-c", action: "Accept", from: [{ pods: { namespaceSelector: ns("y"), podSelector: { matchLabels: { pod: "c" } } } }] },
        { name: "deny-y", action: "Deny", from: [{ namespaces: ns("y") }] },
      ],
    }));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({ namespace: "y" }, { namespace: "x" }, false).expectPeer({ namespace: "y", pod: "c" }, { namespace: "x" }, true));
  });

  it("Pass in Baseline skips the rest of the tier, down to the default allow", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("b1-pass-y", { tier: "Baseline", priority: 1, subject: { namespaces: {} }, ingress: [{ name: "pass-y", action: "Pass", from: [{ namespaces: ns("y") }] }] }));
    engine.upsert("ClusterNetworkPolicy", cnp("b2-deny-all", { tier: "Baseline", priority: 2, subject: { namespaces: {} }, ingress: [{ name: "deny-all", action: "Deny", from: [{ namespaces: {} }] }] }));
    // Everything is denied by b2 except what b1 passes (from y) and self traffic.
    expectMatrix(engine, TCP80, new Reachability(false).expectPeer({ namespace: "y" }, {}, true));
    const v = engine.verdict({ src: ip("y/a"), dst: ip("z/c"), proto: Proto.TCP, srcPort: 1, dstPort: 80 });
    expect(v.kind === "allow" && v.ingress.kind === "default-allow" && v.ingress.passedBy?.rule.name).toBe("pass-y");
    expect(v.describe()).toBe("allowed: egress not isolated; ingress not isolated (Baseline b1-pass-y rule pass-y passes)");
  });

  it("Admin Pass hands over to NetworkPolicy, and to Baseline where none isolates", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("pass-intra", { tier: "Admin", priority: 1, subject: { namespaces: {} }, ingress: [{ name: "pass-all", action: "Pass", from: [{ namespaces: {} }] }, { name: "deny-all", action: "Deny", from: [{ namespaces: {} }] }] }));
    expectMatrix(engine, TCP80, new Reachability());
    engine.upsert("ClusterNetworkPolicy", cnp("baseline", { tier: "Baseline", priority: 1, subject: { namespaces: {} }, ingress: [{ name: "deny-z", action: "Deny", from: [{ namespaces: ns("z") }] }] }));
    engine.upsert("NetworkPolicy", netpol("y", "allow-z", {}, ingressRules({ from: [{ namespaceSelector: ns("z") }] })));
    // y: NetworkPolicy (z only); x, z: baseline (all but z).
    const r = new Reachability().expectPeer({ namespace: "z" }, {}, false).expectPeer({}, { namespace: "y" }, false).expectPeer({ namespace: "z" }, { namespace: "y" }, true);
    expectMatrix(engine, TCP80, r);
  });

  it("subject pods: a namespace selector AND a pod selector", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("isolate-b", { tier: "Admin", priority: 3, subject: { pods: { namespaceSelector: { matchExpressions: [{ key: "ns", operator: "In", values: ["x", "y"] }] }, podSelector: { matchLabels: { pod: "b" } } } }, ingress: [{ name: "deny", action: "Deny", from: [{ namespaces: {} }] }] }));
    expectMatrix(engine, TCP80, new Reachability().expectAllIngress("x/b", false).expectAllIngress("y/b", false));
  });
});

describe("ClusterNetworkPolicy peers and protocols", () => {
  it("protocols: TCP number, TCP range, UDP, SCTP and destinationNamedPort", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("ports", {
      tier: "Admin",
      priority: 1,
      subject: { pods: { namespaceSelector: ns("x"), podSelector: { matchLabels: { pod: "a" } } } },
      ingress: [{
        name: "deny-ports",
        action: "Deny",
        from: [{ namespaces: {} }],
        protocols: [{ tcp: { destinationPort: { range: { start: 81, end: 90 } } } }, { udp: { destinationPort: { number: 80 } } }, { sctp: {} }, { destinationNamedPort: "serve-81-udp" }],
      }],
    }));
    const deniedToXa = new Reachability().expectAllIngress("x/a", false);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability());
    expectMatrix(engine, { port: 81, protocol: "TCP" }, deniedToXa);
    expectMatrix(engine, { port: 80, protocol: "UDP" }, deniedToXa);
    expectMatrix(engine, { port: 81, protocol: "UDP" }, deniedToXa);
    expectMatrix(engine, { port: 80, protocol: "SCTP" }, deniedToXa);
    expectMatrix(engine, { port: 81, protocol: "SCTP" }, deniedToXa);
    // A rule with protocols does not match ICMP.
    expect(engine.verdict({ src: ip("y/a"), dst: ip("x/a"), proto: Proto.ICMP, srcPort: 0, dstPort: 0 }).allowed).toBe(true);
  });

  it("egress networks match any address, pods and ICMP included; protocols narrow them", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("no-y-subnet", { tier: "Admin", priority: 1, subject: { namespaces: ns("x") }, egress: [{ name: "deny-10.244.2.0/24", action: "Deny", to: [{ networks: ["10.244.2.0/24"] }] }] }));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({ namespace: "x" }, { namespace: "y" }, false));
    const icmp = (dst: string) => engine.verdict({ src: ip("x/a"), dst: parseIpv4Addr(dst)!, proto: Proto.ICMP, srcPort: 0, dstPort: 0 }).allowed;
    expect(icmp("10.244.2.99")).toBe(false);
    expect(icmp("10.244.3.10")).toBe(true);
    engine.upsert("ClusterNetworkPolicy", cnp("no-y-subnet", { tier: "Admin", priority: 1, subject: { namespaces: ns("x") }, egress: [{ name: "deny-web", action: "Deny", to: [{ networks: ["0.0.0.0/0"] }], protocols: [{ tcp: { destinationPort: { number: 443 } } }] }] }));
    expect(engine.verdict({ src: ip("x/a"), dst: parseIpv4Addr("192.0.2.7")!, proto: Proto.TCP, srcPort: 1, dstPort: 443 }).allowed).toBe(false);
    expect(engine.verdict({ src: ip("x/a"), dst: parseIpv4Addr("192.0.2.7")!, proto: Proto.TCP, srcPort: 1, dstPort: 80 }).allowed).toBe(true);
    expect(icmp("192.0.2.7")).toBe(true);
  });

  it("egress nodes select node addresses by the Nodes' labels", () => {
    engine.upsert("Node", { metadata: { name: "node-1", labels: { role: "infra" } }, status: { addresses: [{ type: "InternalIP", address: "172.31.0.2" }] } });
    engine.upsert("Node", { metadata: { name: "node-2", labels: {} }, status: { addresses: [{ type: "InternalIP", address: "172.31.0.3" }] } });
    engine.upsert("ClusterNetworkPolicy", cnp("no-infra-nodes", { tier: "Admin", priority: 1, subject: { namespaces: {} }, egress: [{ name: "deny-infra", action: "Deny", to: [{ nodes: { matchLabels: { role: "infra" } } }] }] }));
    const to = (dst: string) => engine.verdict({ src: ip("y/a"), dst: parseIpv4Addr(dst)!, proto: Proto.TCP, srcPort: 1, dstPort: 10250 }).allowed;
    expect(to("172.31.0.2")).toBe(false);
    expect(to("172.31.0.3")).toBe(true);
    engine.upsert("Node", { metadata: { name: "node-2", labels: { role: "infra" } }, status: { addresses: [{ type: "InternalIP", address: "172.31.0.3" }] } });
    expect(to("172.31.0.3")).toBe(false);
  });

  it("domainNames are not matched: an Accept through them lets nothing through", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("fqdn", { tier: "Admin", priority: 1, subject: { namespaces: ns("x") }, egress: [{ name: "accept-example", action: "Accept", to: [{ domainNames: ["*.example.com"] }] }, { name: "deny-rest", action: "Deny", to: [{ networks: ["0.0.0.0/0"] }] }] }));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({ namespace: "x" }, {}, false));
  });
});

describe("ClusterNetworkPolicy fail closed (a peer or protocol with no field this version knows)", () => {
  it("a Deny rule with an unreadable peer denies everything", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("future", { tier: "Admin", priority: 1, subject: { namespaces: ns("x") }, ingress: [{ name: "deny-sa", action: "Deny", from: [{ serviceAccounts: { name: "sa" } }] }] }));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({}, { namespace: "x" }, false));
    const v = engine.verdict({ src: ip("z/a"), dst: ip("x/c"), proto: Proto.UDP, srcPort: 1, dstPort: 53 });
    expect(v.kind === "deny" && v.detail).toMatch(/^Admin future rule deny-sa denies \(fail closed: spec\.ingress\[0\]\.from\[0\]: needs exactly one of namespaces, pods, has serviceAccounts\)$/);
  });

  it("a Pass rule with an unreadable protocol becomes a deny-all rule", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("future", { tier: "Baseline", priority: 1, subject: { namespaces: ns("x") }, ingress: [{ name: "pass-icmp", action: "Pass", from: [{ namespaces: {} }], protocols: [{ icmp: {} }] }] }));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({}, { namespace: "x" }, false));
  });

  it("an Accept rule with an unreadable peer matches through its readable peers only", () => {
    engine.upsert("NetworkPolicy", netpol("x", "deny-all", {}, ingressRules()));
    engine.upsert("ClusterNetworkPolicy", cnp("future", { tier: "Admin", priority: 1, subject: { namespaces: ns("x") }, ingress: [{ name: "accept", action: "Accept", from: [{ serviceAccounts: {} }, { namespaces: ns("y") }] }] }));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({}, { namespace: "x" }, false).expectPeer({ namespace: "y" }, { namespace: "x" }, true));
  });

  it("ingress peers have no networks: such a Deny peer fails closed", () => {
    engine.upsert("ClusterNetworkPolicy", cnp("bad", { tier: "Admin", priority: 1, subject: { namespaces: ns("y") }, ingress: [{ name: "deny-ext", action: "Deny", from: [{ networks: ["192.0.2.0/24"] }] }] }));
    expectMatrix(engine, TCP80, new Reachability().expectPeer({}, { namespace: "y" }, false));
  });
});
