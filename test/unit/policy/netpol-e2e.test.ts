/**
 * The upstream NetworkPolicy e2e suite (kubernetes test/e2e/network/netpol/network_policy.go,
 * "Netpol NetworkPolicy between server and client" and its UDP and SCTP contexts) as truth tables
 * on the full 3x3 model: each case is named after the upstream test it mirrors, creates the same
 * policies, and asserts all 81 cells of the reachability matrix for the same port and protocol.
 * Upstream runs most cases on a subset of the pods; where the expectation had to be extended to
 * the pods it leaves out, a comment says so.
 */
import { beforeEach, describe, it } from "vitest";
import { PolicyEngine } from "../../../node-agent/policy/engine.ts";
import { Reachability, egressRules, expectMatrix, ingressRules, ipText, modelObjects, namespaceObject, netpol, netpolMatch, podObject, type Obj } from "./fixtures.ts";

const NS_LABEL = "kubernetes.io/metadata.name";

let engine: PolicyEngine;
beforeEach(() => {
  engine = new PolicyEngine();
  engine.replaceAll(modelObjects());
});

function create(policy: Obj): void {
  engine.upsert("NetworkPolicy", policy);
}

describe("Netpol NetworkPolicy between server and client", () => {
  it("should support a 'default-deny-ingress' policy", () => {
    create(netpol("x", "deny-ingress", {}, ingressRules()));
    const r = new Reachability().expectPeer({}, { namespace: "x" }, false);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should support a 'default-deny-all' policy", () => {
    create(netpol("x", "deny-all", {}, ingressRules(), egressRules()));
    const r = new Reachability().expectPeer({}, { namespace: "x" }, false).expectPeer({ namespace: "x" }, {}, false);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy to allow traffic from pods within server namespace based on PodSelector", () => {
    create(netpolMatch("x", "x-a-allows-x-b", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchLabels: { pod: "b" } } }] })));
    const r = new Reachability().expectAllIngress("x/a", false).expect("x/b", "x/a", true);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy to allow ingress traffic for a target", () => {
    create(netpol("x", "deny-all", {}, ingressRules()));
    create(netpolMatch("x", "allow-all-to-a", { pod: "a" }, ingressRules({ from: [{ podSelector: {}, namespaceSelector: {} }] })));
    // Upstream's topology has x/a, x/b only in x; x/c is isolated by deny-all like x/b.
    const r = new Reachability().expectPeer({}, { namespace: "x" }, false).expectAllIngress("x/a", true);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy to allow ingress traffic from pods in all namespaces", () => {
    create(netpolMatch("x", "allow-from-another-ns", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: {} } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability());
  });

  it("should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector", () => {
    create(netpolMatch("x", "allow-client-a-via-ns-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } } }] })));
    const r = new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy based on PodSelector with MatchExpressions", () => {
    create(netpolMatch("x", "x-a-allows-x-b", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["b"] }] } }] })));
    const r = new Reachability().expectAllIngress("x/a", false).expect("x/b", "x/a", true);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy based on NamespaceSelector with MatchExpressions", () => {
    const nsSel = { matchExpressions: [{ key: NS_LABEL, operator: "In", values: ["y"] }] };
    create(netpolMatch("x", "allow-ns-y-match-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsSel }] })));
    const r = new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy based on PodSelector or NamespaceSelector", () => {
    const nsSel = { matchExpressions: [{ key: NS_LABEL, operator: "NotIn", values: ["x"] }] };
    create(netpolMatch("x", "allow-ns-y-match-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsSel }, { podSelector: { matchLabels: { pod: "b" } } }] })));
    const r = new Reachability().expect("x/a", "x/a", false).expect("x/c", "x/a", false);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy based on PodSelector and NamespaceSelector", () => {
    const nsSel = { matchExpressions: [{ key: NS_LABEL, operator: "NotIn", values: ["x"] }] };
    create(netpolMatch("x", "allow-ns-y-podselector-and-nsselector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsSel, podSelector: { matchLabels: { pod: "b" } } }] })));
    const r = new Reachability().expectAllIngress("x/a", false).expect("y/b", "x/a", true).expect("z/b", "x/a", true);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy based on Multiple PodSelectors and NamespaceSelectors", () => {
    const nsSel = { matchExpressions: [{ key: NS_LABEL, operator: "NotIn", values: ["x"] }] };
    const podSel = { matchExpressions: [{ key: "pod", operator: "In", values: ["b", "c"] }] };
    create(netpolMatch("x", "allow-ns-y-z-pod-b-c", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsSel, podSelector: podSel }] })));
    // Upstream's topology has no z/a; like y/a it matches the namespace but not the pod.
    const r = new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expect("y/a", "x/a", false).expect("z/a", "x/a", false);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy based on any PodSelectors", () => {
    create(netpolMatch("x", "allow-ns-x-pod-b-c", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchLabels: { pod: "b" } } }, { podSelector: { matchLabels: { pod: "c" } } }] })));
    const r = new Reachability().expectAllIngress("x/a", false).expect("x/b", "x/a", true).expect("x/c", "x/a", true);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector", () => {
    create(netpolMatch("x", "allow-ns-y-pod-a-via-namespace-pod-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } }, podSelector: { matchLabels: { pod: "a" } } }] })));
    const r = new Reachability().expectAllIngress("x/a", false).expect("y/a", "x/a", true);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy based on Ports", () => {
    create(netpolMatch("x", "allow-client-a-via-ns-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } } }], ports: [{ port: 81, protocol: "TCP" }] })));
    const r = new Reachability()
      .expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false)
      .expectPeer({ namespace: "y" }, { namespace: "x", pod: "a" }, true)
      .expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false);
    expectMatrix(engine, { port: 81, protocol: "TCP" }, r);
    // Not in upstream: the other port is closed to everyone.
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false));
  });

  it("should enforce multiple, stacked policies with overlapping podSelectors", () => {
    const fromY = [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } } }];
    create(netpolMatch("x", "allow-client-a-via-ns-selector", { pod: "a" }, ingressRules({ from: fromY, ports: [{ port: 81, protocol: "TCP" }] })));
    const allow = new Reachability()
      .expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false)
      .expectPeer({ namespace: "y" }, { namespace: "x", pod: "a" }, true)
      .expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false);
    expectMatrix(engine, { port: 81, protocol: "TCP" }, allow);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false));
    create(netpolMatch("x", "allow-client-a-via-ns-selector-80", { pod: "a" }, ingressRules({ from: fromY, ports: [{ port: 80, protocol: "TCP" }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, allow);
  });

  it("should support allow-all policy", () => {
    create(netpolMatch("x", "allow-all", {}, ingressRules({})));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability());
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability());
  });

  it("should allow ingress access on one named port", () => {
    create(netpolMatch("x", "allow-all", {}, ingressRules({ ports: [{ port: "serve-81-tcp" }] })));
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability());
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectPeer({}, { namespace: "x" }, false));
  });

  it("should allow ingress access from namespace on one named port", () => {
    create(netpolMatch("x", "allow-client-a-via-ns-selector-80", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } } }], ports: [{ port: "serve-80-tcp", protocol: "TCP" }] })));
    const r = new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false));
  });

  it("should allow egress access on one named port", () => {
    create(netpolMatch("x", "allow-egress", {}, egressRules({ ports: [{ port: "serve-80-tcp" }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability());
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability().expectPeer({ namespace: "x" }, {}, false));
  });

  it("should enforce updated policy", () => {
    const policy = netpolMatch("x", "allow-all-mutate-to-deny-all", {}, ingressRules({}));
    create(policy);
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability());
    (policy.spec as Obj).ingress = [];
    engine.upsert("NetworkPolicy", policy);
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability().expectPeer({}, { namespace: "x" }, false));
  });

  it("should allow ingress access from updated namespace", () => {
    create(netpolMatch("x", "allow-client-a-via-ns-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { ns2: "updated" } } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false));
    engine.upsert("Namespace", namespaceObject("y", { ns: "y", [NS_LABEL]: "y", ns2: "updated" }));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false).expectPeer({ namespace: "y" }, {}, true));
  });

  it("should allow ingress access from updated pod", () => {
    create(netpolMatch("x", "allow-client-a-via-pod-selector", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchLabels: { pod: "b", pod2: "updated" } } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false));
    engine.upsert("Pod", podObject("x/b", { labels: { pod: "b", pod2: "updated" } }));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false).expect("x/b", "x/a", true));
  });

  it("should deny ingress from pods on other namespaces", () => {
    create(netpol("x", "deny-empty-policy", {}, ingressRules({ from: [{ podSelector: { matchLabels: {} } }] })));
    const r = new Reachability().expectPeer({ namespace: "y" }, { namespace: "x" }, false).expectPeer({ namespace: "z" }, { namespace: "x" }, false);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should deny ingress access to updated pod", () => {
    create(netpol("x", "deny-ingress-via-label-selector", { matchLabels: { target: "isolated" } }, ingressRules()));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability());
    engine.upsert("Pod", podObject("x/a", { labels: { pod: "a", target: "isolated" } }));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false));
  });

  it("should deny egress from pods based on PodSelector", () => {
    create(netpol("x", "deny-egress-pod-a", { matchLabels: { pod: "a" } }, egressRules()));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllEgress("x/a", false));
  });

  it("should deny egress from all pods in a namespace", () => {
    create(netpol("x", "deny-egress-ns-x", {}, egressRules()));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectPeer({ namespace: "x" }, {}, false));
  });

  it("should work with Ingress, Egress specified together", () => {
    const policy = netpolMatch("x", "allow-client-a-via-pod-selector", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }));
    (policy.spec as Obj).egress = [{ ports: [{ port: 80 }] }];
    (policy.spec as Obj).policyTypes = ["Egress", "Ingress"];
    create(policy);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false).expect("x/b", "x/a", true));
    const r81 = new Reachability().expectAllIngress("x/a", false).expectAllEgress("x/a", false).expect("x/b", "x/a", true);
    expectMatrix(engine, { port: 81, protocol: "TCP" }, r81);
  });

  it("should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)", () => {
    create(netpolMatch("x", "allow-to-ns-y-pod-a", { pod: "a" }, egressRules({ to: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } }, podSelector: { matchLabels: { pod: "a" } } }] })));
    const fromXa = { from: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "x" } }, podSelector: { matchLabels: { pod: "a" } } }] };
    create(netpolMatch("y", "allow-from-xa-on-ya-match-selector", { pod: "a" }, ingressRules(fromXa)));
    create(netpolMatch("y", "allow-from-xa-on-yb-match-selector", { pod: "b" }, ingressRules(fromXa)));
    const r = new Reachability()
      .expectPeer({ namespace: "x", pod: "a" }, {}, false)
      .expectPeer({}, { namespace: "y", pod: "a" }, false)
      .expectPeer({ namespace: "x", pod: "a" }, { namespace: "y", pod: "a" }, true)
      .expectPeer({}, { namespace: "y", pod: "b" }, false);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector", () => {
    create(netpolMatch("x", "allow-to-ns-y-pod-a", { pod: "a" }, egressRules({ to: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } }, podSelector: { matchLabels: { pod: "a" } } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllEgress("x/a", false).expect("x/a", "y/a", true));
  });

  it("should enforce ingress policy allowing any port traffic to a server on a specific protocol", () => {
    create(netpolMatch("x", "allow-ingress-by-proto", { pod: "a" }, ingressRules({ ports: [{ protocol: "TCP" }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability());
    expectMatrix(engine, { port: 80, protocol: "UDP" }, new Reachability().expectPeer({}, { namespace: "x", pod: "a" }, false));
  });

  it("should enforce multiple ingress policies with ingress allow-all policy taking precedence", () => {
    create(netpolMatch("x", "allow-ingress-port-80", {}, ingressRules({ ports: [{ port: 80 }] })));
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability().expectPeer({}, { namespace: "x" }, false));
    create(netpolMatch("x", "allow-ingress", {}, ingressRules({})));
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability());
  });

  it("should enforce multiple egress policies with egress allow-all policy taking precedence", () => {
    create(netpolMatch("x", "allow-egress-port-80", {}, egressRules({ ports: [{ port: 80 }] })));
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability().expectPeer({ namespace: "x" }, {}, false));
    create(netpolMatch("x", "allow-egress", {}, egressRules({})));
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability());
  });

  it("should stop enforcing policies after they are deleted", () => {
    create(netpol("x", "deny-all", {}, ingressRules(), egressRules()));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectPeer({ namespace: "x" }, {}, false).expectPeer({}, { namespace: "x" }, false));
    engine.remove("NetworkPolicy", "x/deny-all");
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability());
  });

  it("should allow egress access to server in CIDR block", () => {
    create(netpolMatch("x", "allow-client-a-via-cidr-egress-rule", { pod: "a" }, egressRules({ to: [{ ipBlock: { cidr: `${ipText("y/b")}/32` } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllEgress("x/a", false).expect("x/a", "y/b", true));
  });

  // makeLargeCIDRForIP: the /4 around the pod's address; 10.244.1.11 is in 0.0.0.0/4.
  const LARGE = "0.0.0.0/4";

  it("should enforce except clause while egress access to server in CIDR block", () => {
    create(netpolMatch("x", "allow-client-a-via-cidr-egress-rule", { pod: "a" }, egressRules({ to: [{ ipBlock: { cidr: LARGE, except: [`${ipText("x/b")}/32`] } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expect("x/a", "x/b", false));
  });

  it("should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed", () => {
    create(netpolMatch("x", "allow-client-a-via-cidr-egress-rule", { pod: "a" }, egressRules({ to: [{ ipBlock: { cidr: LARGE, except: [`${ipText("x/b")}/32`] } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expect("x/a", "x/b", false));
    // UpdatePolicy with the same name: the policy now allows x/b alone.
    engine.upsert("NetworkPolicy", netpolMatch("x", "allow-client-a-via-cidr-egress-rule", { pod: "a" }, egressRules({ to: [{ ipBlock: { cidr: `${ipText("x/b")}/32` } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllEgress("x/a", false).expect("x/a", "x/b", true));
  });

  it("should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector", () => {
    create(netpol("x", "allow-egress-for-target", { matchLabels: { pod: "a" } }, egressRules({})));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability());
    create(netpol("x", "deny-ingress-via-label-selector", { matchLabels: { pod: "a" } }, ingressRules()));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false));
  });

  it("should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP", () => {
    create(netpol("x", "deny-ingress", {}, ingressRules()));
    create(netpolMatch("x", "allow-only-sctp-ingress-on-port-81", { pod: "a" }, ingressRules({ ports: [{ port: 81, protocol: "SCTP" }] })));
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability().expectPeer({}, { namespace: "x" }, false));
    // Not in upstream: SCTP itself gets through to x/a.
    expectMatrix(engine, { port: 81, protocol: "SCTP" }, new Reachability().expectPeer({}, { namespace: "x" }, false).expectAllIngress("x/a", true));
  });

  it("should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP", () => {
    create(netpolMatch("x", "allow-only-sctp-ingress-on-port-80", { pod: "a" }, ingressRules({ ports: [{ port: 80, protocol: "SCTP" }] })));
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false));
  });

  it("should not allow access by TCP when a policy specifies only UDP", () => {
    create(netpolMatch("x", "allow-only-udp-ingress-on-port-81", { pod: "a" }, ingressRules({ ports: [{ port: 81, protocol: "UDP" }] })));
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false));
    expectMatrix(engine, { port: 81, protocol: "UDP" }, new Reachability());
  });

  it("should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label", () => {
    create(netpolMatch("x", "allow-client-a-via-ns-selector-for-immutable-ns-label", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } } }] })));
    const r = new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false);
    expectMatrix(engine, { port: 80, protocol: "TCP" }, r);
  });

  it("should enforce policy based on NamespaceSelector with MatchExpressions using default ns label", () => {
    create(netpolMatch("x", "allow-ns-y-match-selector-for-immutable-ns-label", { pod: "a" }, egressRules({ to: [{ namespaceSelector: { matchExpressions: [{ key: NS_LABEL, operator: "NotIn", values: ["y"] }] } }] })));
    expectMatrix(engine, { port: 80, protocol: "TCP" }, new Reachability().expectPeer({ namespace: "x", pod: "a" }, { namespace: "y" }, false));
  });
});

describe("Netpol [LinuxOnly] NetworkPolicy between server and client using UDP", () => {
  it("should support a 'default-deny-ingress' policy", () => {
    create(netpol("x", "deny-all", {}, ingressRules()));
    expectMatrix(engine, { port: 80, protocol: "UDP" }, new Reachability().expectPeer({}, { namespace: "x" }, false));
  });

  it("should enforce policy based on Ports", () => {
    create(netpolMatch("x", "allow-ingress-on-port-81-ns-x", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } } }], ports: [{ port: 81, protocol: "UDP" }] })));
    const r = new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false);
    expectMatrix(engine, { port: 81, protocol: "UDP" }, r);
  });

  it("should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector", () => {
    create(netpolMatch("x", "allow-ns-y-pod-a-via-namespace-pod-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } }, podSelector: { matchLabels: { pod: "a" } } }] })));
    expectMatrix(engine, { port: 80, protocol: "UDP" }, new Reachability().expectAllIngress("x/a", false).expect("y/a", "x/a", true));
  });
});

describe("Netpol [Feature:SCTPConnectivity] [LinuxOnly] NetworkPolicy between server and client using SCTP", () => {
  it("should support a 'default-deny-ingress' policy", () => {
    create(netpol("x", "deny-all", {}, ingressRules()));
    expectMatrix(engine, { port: 80, protocol: "SCTP" }, new Reachability().expectPeer({}, { namespace: "x" }, false));
  });

  it("should enforce policy based on Ports", () => {
    create(netpolMatch("x", "allow-ingress-on-port-81-ns-x", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } } }], ports: [{ port: 81, protocol: "SCTP" }] })));
    const r = new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false);
    expectMatrix(engine, { port: 81, protocol: "SCTP" }, r);
    // Not in upstream: the same port over TCP is not allowed by an SCTP rule.
    expectMatrix(engine, { port: 81, protocol: "TCP" }, new Reachability().expectAllIngress("x/a", false));
  });

  it("should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector", () => {
    create(netpolMatch("x", "allow-ns-y-pod-a-via-namespace-pod-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { [NS_LABEL]: "y" } }, podSelector: { matchLabels: { pod: "a" } } }] })));
    expectMatrix(engine, { port: 80, protocol: "SCTP" }, new Reachability().expectAllIngress("x/a", false).expect("y/a", "x/a", true));
  });
});
