/**
 * The upstream NetworkPolicy e2e model (kubernetes test/e2e/network/netpol/model.go) as API
 * objects for the policy engine: namespaces x, y, z (labels ns=<name> and
 * kubernetes.io/metadata.name=<name>), pods a, b, c in each (label pod=<name>), each pod with one
 * container per port and protocol, "cont-<port>-<proto>", serving containerPort <port> named
 * "serve-<port>-<proto>" (80 and 81; TCP, UDP, SCTP). Plus a Reachability like the suite's
 * (reachability.go: ExpectPeer, ExpectAllIngress, ExpectAllEgress, Expect) and a matrix check
 * that asserts all 81 cells and that `explain` returns the very verdict `verdict` does.
 */
import { expect } from "vitest";
import type { PolicyEngine, PolicyObjects, VerdictOptions } from "../../../node-agent/policy/engine.ts";
import { Proto } from "../../../node-agent/policy/model.ts";
import { parseIpv4Addr, type Ipv4Addr } from "../../../overlay/wire/index.ts";

export const NAMESPACES = ["x", "y", "z"] as const;
export const POD_NAMES = ["a", "b", "c"] as const;
export const PORTS = [80, 81] as const;
export const PROTOCOLS = ["TCP", "UDP", "SCTP"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** "x/a" ... "z/c", in the suite's order. */
export const ALL_PODS: readonly string[] = NAMESPACES.flatMap((ns) => POD_NAMES.map((p) => `${ns}/${p}`));

/** x/a = 10.244.1.10, y/b = 10.244.2.11, z/c = 10.244.3.12: one /24 (and node) per namespace. */
export function ipText(pod: string): string {
  const [ns, name] = pod.split("/") as [string, string];
  return `10.244.${NAMESPACES.indexOf(ns as "x") + 1}.${10 + POD_NAMES.indexOf(name as "a")}`;
}
export function ip(pod: string): Ipv4Addr {
  return parseIpv4Addr(ipText(pod))!;
}
export function nodeOf(pod: string): string {
  return `node-${NAMESPACES.indexOf(pod.split("/")[0] as "x") + 1}`;
}

export function protoNumber(p: Protocol): number {
  return p === "TCP" ? Proto.TCP : p === "UDP" ? Proto.UDP : Proto.SCTP;
}

export function namespaceObject(name: string, labels: Record<string, string> = { ns: name, "kubernetes.io/metadata.name": name }): Record<string, unknown> {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
}

/** The suite's pod: label pod=<name>, containers serving 80 and 81 on TCP, UDP and SCTP. */
export function podObject(pod: string, over: { labels?: Record<string, string>; ip?: string; nodeName?: string; metadata?: Record<string, unknown>; spec?: Record<string, unknown>; status?: Record<string, unknown> } = {}): Record<string, unknown> {
  const [namespace, name] = pod.split("/") as [string, string];
  const containers = PORTS.flatMap((port) =>
    PROTOCOLS.map((protocol) => ({
      name: `cont-${port}-${protocol.toLowerCase()}`,
      image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
      ports: [{ containerPort: port, name: `serve-${port}-${protocol.toLowerCase()}`, protocol }],
    })),
  );
  const ipAddr = over.ip ?? ipText(pod);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace, name, labels: over.labels ?? { pod: name }, ...over.metadata },
    spec: { nodeName: over.nodeName ?? nodeOf(pod), containers, ...over.spec },
    status: { phase: "Running", podIP: ipAddr, podIPs: [{ ip: ipAddr }], ...over.status },
  };
}

/** The namespaces and pods of the model. */
export function modelObjects(): Required<Pick<PolicyObjects, "namespaces" | "pods">> {
  return { namespaces: NAMESPACES.map((n) => namespaceObject(n)), pods: ALL_PODS.map((p) => podObject(p)) };
}

// ---------------------------------------------------------------------------------------------
// NetworkPolicy builders, as the suite's policies.go has them

export type Obj = Record<string, unknown>;
type Setter = (np: { spec: Obj }) => void;

/** GenNetworkPolicyWithNameAndPodSelector. */
export function netpol(namespace: string, name: string, podSelector: Obj, ...setters: Setter[]): Obj {
  const np = { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { namespace, name }, spec: { podSelector } as Obj };
  for (const s of setters) s(np);
  return np;
}

/** GenNetworkPolicyWithNameAndPodMatchLabel. */
export function netpolMatch(namespace: string, name: string, matchLabels: Record<string, string>, ...setters: Setter[]): Obj {
  return netpol(namespace, name, { matchLabels }, ...setters);
}

/** SetSpecIngressRules: sets ingress (possibly empty) and appends Ingress to policyTypes. */
export function ingressRules(...rules: Obj[]): Setter {
  return (np) => {
    if (np.spec.ingress === undefined) {
      np.spec.ingress = [];
      np.spec.policyTypes = [...((np.spec.policyTypes as string[] | undefined) ?? []), "Ingress"];
    }
    (np.spec.ingress as Obj[]).push(...rules);
  };
}

/** SetSpecEgressRules. */
export function egressRules(...rules: Obj[]): Setter {
  return (np) => {
    if (np.spec.egress === undefined) {
      np.spec.egress = [];
      np.spec.policyTypes = [...((np.spec.policyTypes as string[] | undefined) ?? []), "Egress"];
    }
    (np.spec.egress as Obj[]).push(...rules);
  };
}

export function cnp(name: string, spec: Obj): Obj {
  return { apiVersion: "policy.networking.k8s.io/v1alpha2", kind: "ClusterNetworkPolicy", metadata: { name }, spec };
}

// ---------------------------------------------------------------------------------------------
// Reachability (reachability.go)

export interface PeerSpec {
  namespace?: string;
  pod?: string;
}

function peerMatches(p: PeerSpec, pod: string): boolean {
  const [ns, name] = pod.split("/") as [string, string];
  return (p.namespace === undefined || p.namespace === ns) && (p.pod === undefined || p.pod === name);
}

export class Reachability {
  private readonly expected = new Map<string, boolean>();
  constructor(defaultExpectation = true) {
    for (const a of ALL_PODS) for (const b of ALL_PODS) this.expected.set(`${a}>${b}`, defaultExpectation);
  }
  expect(from: string, to: string, connected: boolean): this {
    this.expected.set(`${from}>${to}`, connected);
    return this;
  }
  expectPeer(from: PeerSpec, to: PeerSpec, connected: boolean): this {
    for (const a of ALL_PODS) for (const b of ALL_PODS) if (peerMatches(from, a) && peerMatches(to, b)) this.expect(a, b, connected);
    return this;
  }
  expectAllIngress(to: string, connected: boolean): this {
    for (const a of ALL_PODS) this.expect(a, to, connected);
    return this;
  }
  expectAllEgress(from: string, connected: boolean): this {
    for (const b of ALL_PODS) this.expect(from, b, connected);
    return this;
  }
  get(from: string, to: string): boolean {
    return this.expected.get(`${from}>${to}`)!;
  }
}

/** The suite's truth-table print: a row per source, "." connected, "X" not. */
export function renderMatrix(cell: (from: string, to: string) => boolean): string {
  const head = `-\t${ALL_PODS.join("\t")}`;
  return [head, ...ALL_PODS.map((a) => `${a}\t${ALL_PODS.map((b) => (cell(a, b) ? "." : "X")).join("\t")}`)].join("\n");
}

export interface Probe {
  port: number;
  protocol: Protocol;
}

/**
 * All 81 cells of the model against `r`. The diagonal is always connected: a pod cannot block
 * traffic to itself (the suite ignores loopback, ignoreLoopback = true). Each cell's explanation
 * must carry the very verdict object `verdict` returned, and agree on allowed.
 */
export function expectMatrix(engine: PolicyEngine, probe: Probe, r: Reachability, opts?: VerdictOptions): void {
  const proto = protoNumber(probe.protocol);
  const actual = new Map<string, boolean>();
  const disagreements: string[] = [];
  for (const from of ALL_PODS) {
    for (const to of ALL_PODS) {
      const v = engine.verdict({ src: ip(from), dst: ip(to), proto, srcPort: 40_000, dstPort: probe.port }, opts);
      actual.set(`${from}>${to}`, v.allowed);
      const e = engine.explain(from, to, { protocol: probe.protocol, port: probe.port, srcPort: 40_000 }, opts);
      if (e.kind !== "ok") disagreements.push(`${from}>${to}: explain failed: ${e.message}`);
      else if (e.explanation.verdict !== v) disagreements.push(`${from}>${to}: explain ${e.explanation.verdict.describe()} but verdict ${v.describe()}`);
    }
  }
  expect(disagreements).toEqual([]);
  const got = renderMatrix((a, b) => actual.get(`${a}>${b}`)!);
  const want = renderMatrix((a, b) => a === b || r.get(a, b));
  expect(`${probe.protocol}/${probe.port}\n${got}`).toBe(`${probe.protocol}/${probe.port}\n${want}`);
}
