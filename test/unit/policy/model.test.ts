/** Reading Pods, Namespaces, Nodes, NetworkPolicies and ClusterNetworkPolicies as the engine sees them. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  NAMESPACE_NAME_LABEL,
  Proto,
  comparePolicies,
  formatPeer,
  formatSelector,
  namedPortKey,
  parseProtocol,
  readClusterNetworkPolicy,
  readNamespace,
  readNetworkPolicy,
  readNode,
  readPod,
  readSelector,
  selects,
  type PolicyInfo,
} from "../../../node-agent/policy/model.ts";
import { parseIpv4Addr } from "../../../overlay/wire/index.ts";
import { cnp, podObject } from "./fixtures.ts";

const addr = (t: string) => parseIpv4Addr(t)!;

describe("readPod", () => {
  it("reads namespace, name, labels, IP, node and named ports by protocol", () => {
    const pod = readPod(podObject("x/a"))!;
    expect(pod).toMatchObject({ key: "x/a", namespace: "x", name: "a", labels: { pod: "a" }, ip: addr("10.244.1.10"), nodeName: "node-1" });
    expect(pod.namedPorts.get(namedPortKey(Proto.TCP, "serve-80-tcp"))).toBe(80);
    expect(pod.namedPorts.get(namedPortKey(Proto.SCTP, "serve-81-sctp"))).toBe(81);
    expect(pod.namedPorts.get(namedPortKey(Proto.UDP, "serve-80-tcp"))).toBeUndefined();
    expect(pod.namedPorts.size).toBe(6);
    expect(Object.isFrozen(pod)).toBe(true);
  });

  it("takes the first IPv4 address of podIPs, and defaults a port's protocol to TCP", () => {
    const pod = readPod({
      metadata: { namespace: "d", name: "p", labels: { ok: "1", bad: 7 } },
      spec: { containers: [{ ports: [{ containerPort: 8080, name: "http" }, { containerPort: 70000, name: "big" }, { containerPort: 53, name: "dns", protocol: "QUIC" }] }] },
      status: { podIP: "fd00::1", podIPs: [{ ip: "fd00::1" }, { ip: "10.0.0.7" }] },
    })!;
    expect(pod.ip).toBe(addr("10.0.0.7"));
    expect(pod.labels).toEqual({ ok: "1" });
    expect([...pod.namedPorts]).toEqual([[namedPortKey(Proto.TCP, "http"), 8080]]);
  });

  it("has nothing for pods without an own network identity", () => {
    expect(readPod(podObject("x/a", { spec: { hostNetwork: true } }))).toBeUndefined();
    expect(readPod(podObject("x/a", { metadata: { deletionTimestamp: "2026-01-01T00:00:00Z" } }))).toBeUndefined();
    expect(readPod(podObject("x/a", { status: { phase: "Failed" } }))).toBeUndefined();
    expect(readPod(podObject("x/a", { status: { podIP: undefined, podIPs: [] } }))).toBeUndefined();
    expect(readPod({ metadata: { name: "p" }, status: { podIP: "10.0.0.1" } })).toBeUndefined();
  });
});

describe("readNamespace and readNode", () => {
  it("a namespace always has kubernetes.io/metadata.name=<name>", () => {
    expect(readNamespace({ metadata: { name: "x", labels: { ns: "x" } } })!.labels).toEqual({ ns: "x", [NAMESPACE_NAME_LABEL]: "x" });
    expect(readNamespace({ metadata: { name: "x", labels: { [NAMESPACE_NAME_LABEL]: "spoofed" } } })!.labels).toEqual({ [NAMESPACE_NAME_LABEL]: "x" });
    expect(readNamespace({ metadata: {} })).toBeUndefined();
  });

  it("a node's addresses are its IPv4 status addresses", () => {
    const node = readNode({ metadata: { name: "n", labels: { a: "b" } }, status: { addresses: [{ type: "Hostname", address: "n" }, { type: "InternalIP", address: "172.31.0.3" }, { type: "InternalIP", address: "fd00::3" }] } })!;
    expect(node.ips).toEqual([addr("172.31.0.3")]);
  });
});

describe("readSelector", () => {
  it("reads metav1.LabelSelector through the cluster matcher", () => {
    const sel = readSelector({ matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "NotIn", values: ["db"] }] }, "s")!;
    expect(selects(sel, { app: "web" })).toBe(true);
    expect(selects(sel, { app: "web", tier: "db" })).toBe(false);
    expect(formatSelector(sel)).toBe("app=web,tier notin (db)");
    expect(formatSelector(readSelector({}, "s")!)).toBe("<all>");
    expect(readSelector(null, "s")).toBeUndefined();
  });

  it("a selector of the wrong shape is invalid and selects nothing", () => {
    for (const bad of ["app=web", { matchLabels: { a: 1 } }, { matchExpressions: {} }, { matchExpressions: [{ key: "a", operator: "In", values: [1] }] }, { matchExpressions: [{ key: "a", operator: "Near" }] }, { matchExpressions: [{ key: "a", operator: "In" }] }]) {
      const sel = readSelector(bad, "s")!;
      expect(sel.kind).toBe("error");
      expect(selects(sel, { a: "1" })).toBe(false);
    }
  });
});

function np(spec: Record<string, unknown>): PolicyInfo {
  return readNetworkPolicy({ metadata: { namespace: "x", name: "p" }, spec })!;
}

describe("readNetworkPolicy", () => {
  it("defaults policyTypes: Ingress always, Egress when there are egress rules; explicit types win", () => {
    const only = np({ podSelector: {} });
    expect([only.ingress, only.egress]).toEqual([[], undefined]);
    const both = np({ egress: [{}] });
    expect([both.ingress?.length, both.egress?.length]).toEqual([0, 1]);
    const egressOnly = np({ ingress: [{}], policyTypes: ["Egress"] });
    expect([egressOnly.ingress, egressOnly.egress]).toEqual([undefined, []]);
    const junkTypes = np({ policyTypes: ["Sideways"], egress: [{}] });
    expect([junkTypes.ingress?.length, junkTypes.egress?.length]).toEqual([0, 1]);
  });

  it("an absent podSelector selects every pod of the namespace; an invalid one selects none", () => {
    const all = np({});
    expect(all.subject.kind === "pods" && all.subject.pods && formatSelector(all.subject.pods)).toBe("<all>");
    const bad = np({ podSelector: { matchLabels: "x" } });
    expect(bad.subject.kind === "pods" && bad.subject.pods?.kind).toBe("error");
  });

  it("reads peers: empty from is everyone; selectors AND; ipBlock alone; the rest never matches", () => {
    const p = np({
      ingress: [
        { from: [] },
        {
          from: [
            { podSelector: { matchLabels: { pod: "b" } } },
            { namespaceSelector: {}, podSelector: { matchLabels: { pod: "c" } } },
            { ipBlock: { cidr: "10.1.2.3/8", except: ["10.2.0.0/16"] } },
            { ipBlock: { cidr: "fd00::/8" } },
            { ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} },
            { ipBlock: { cidr: "10.0.0.0/33" } },
            { ipBlock: { cidr: "10.0.0.0/8", except: ["nope"] } },
            {},
            "peer",
          ],
        },
      ],
    });
    expect(p.ingress![0]!.peers).toBe("any");
    const peers = p.ingress![1]!.peers;
    expect(peers !== "any" && peers.map(formatPeer)).toEqual([
      "pods pod=b in namespace x",
      "pods pod=c in namespaces <all>",
      "10.1.2.3/8 except 10.2.0.0/16",
      "fd00::/8",
      "<never: spec.ingress[1].from[4]: ipBlock with a selector>",
      '<never: spec.ingress[1].from[5].ipBlock.cidr: invalid CIDR "10.0.0.0/33">',
      '<never: spec.ingress[1].from[6].ipBlock.except: invalid CIDR "nope">',
      "<never: spec.ingress[1].from[7]: no podSelector, namespaceSelector or ipBlock>",
      "<never: spec.ingress[1].from[8]: not an object>",
    ]);
    // The /8 is masked as ParseCIDRSloppy does; the IPv6 block holds no IPv4 address.
    expect(peers !== "any" && peers[2]!.kind === "cidr" && peers[2]!.block?.network).toBe(addr("10.0.0.0"));
    expect(peers !== "any" && peers[3]!.kind === "cidr" && peers[3]!.block).toBeUndefined();
  });

  it("reads ports: protocol defaults to TCP, numbers, names, endPort; the malformed never match", () => {
    const p = np({ ingress: [{ ports: [{}, { port: 80 }, { protocol: "UDP", port: "dns" }, { protocol: "SCTP", port: 80, endPort: 90 }, { port: 90, endPort: 80 }, { endPort: 80 }, { port: "web", endPort: 90 }, { protocol: "ICMP" }, { port: 0 }] }] });
    expect(p.ingress![0]!.ports).toEqual([
      { kind: "protocol", proto: Proto.TCP },
      { kind: "range", proto: Proto.TCP, port: 80, end: 80 },
      { kind: "named", proto: Proto.UDP, name: "dns" },
      { kind: "range", proto: Proto.SCTP, port: 80, end: 90 },
      { kind: "never", why: "spec.ingress[0].ports[4].endPort: must be a port number not below port" },
      { kind: "never", why: "spec.ingress[0].ports[5].endPort: without a port" },
      { kind: "never", why: "spec.ingress[0].ports[6].endPort: with a named port" },
      { kind: "never", why: 'spec.ingress[0].ports[7].protocol: unsupported "ICMP"' },
      { kind: "never", why: "spec.ingress[0].ports[8].port: not a port number" },
    ]);
  });

  it("a rule that is not an object matches nothing", () => {
    const p = np({ ingress: [null, { from: "everyone" }] });
    expect(p.ingress!.map((r) => r.peers !== "any" && r.peers[0]!.kind)).toEqual(["never", "never"]);
  });
});

function readCnp(spec: Record<string, unknown>): PolicyInfo | undefined {
  return readClusterNetworkPolicy(cnp("c", spec));
}

describe("readClusterNetworkPolicy (v1alpha2)", () => {
  const base = { tier: "Admin", priority: 10, subject: { namespaces: {} } };

  it("needs a tier Admin or Baseline and an integer priority 0..1000", () => {
    expect(readCnp(base)?.tier).toBe("Admin");
    expect(readCnp({ ...base, tier: "Baseline" })?.tier).toBe("Baseline");
    expect(readCnp({ ...base, tier: "NetworkPolicy" })).toBeUndefined();
    expect(readCnp({ ...base, priority: 1001 })).toBeUndefined();
    expect(readCnp({ ...base, priority: 1.5 })).toBeUndefined();
    expect(readCnp({ ...base, priority: "10" })).toBeUndefined();
  });

  it("a subject needs exactly one of namespaces and pods", () => {
    expect(readCnp({ ...base, subject: { pods: { podSelector: { matchLabels: { a: "b" } } } } })!.subject.kind).toBe("pods");
    expect(readCnp({ ...base, subject: { namespaces: {}, pods: {} } })!.subject.kind).toBe("never");
    expect(readCnp({ ...base, subject: {} })!.subject.kind).toBe("never");
  });

  it("reads rules in order with their names, actions, peers and protocols", () => {
    const p = readCnp({
      ...base,
      egress: [
        {
          name: "web",
          action: "Accept",
          to: [{ pods: { namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: {} } }, { networks: ["192.0.2.0/24", "fd00::/8"] }, { nodes: {} }],
          protocols: [{ tcp: { destinationPort: { number: 443 } } }, { udp: { destinationPort: { range: { start: 1000, end: 2000 } } } }, { sctp: {} }, { destinationNamedPort: "metrics" }],
        },
        { action: "Log", to: [{ namespaces: {} }] },
        { action: "Pass", to: [{ namespaces: {} }] },
      ],
    })!;
    expect(p.egress!.map((r) => [r.index, r.name, r.action])).toEqual([
      [0, "web", "Accept"],
      [2, "", "Pass"],
    ]);
    const r = p.egress![0]!;
    expect(r.peers !== "any" && r.peers.map(formatPeer)).toEqual(["pods <all> in namespaces ns=y", "192.0.2.0/24", "fd00::/8", "nodes <all>"]);
    expect(r.ports).toEqual([
      { kind: "range", proto: Proto.TCP, port: 443, end: 443 },
      { kind: "range", proto: Proto.UDP, port: 1000, end: 2000 },
      { kind: "protocol", proto: Proto.SCTP },
      { kind: "named", proto: Proto.TCP, name: "metrics" },
      { kind: "named", proto: Proto.UDP, name: "metrics" },
      { kind: "named", proto: Proto.SCTP, name: "metrics" },
    ]);
  });

  it("fails closed: an unreadable peer or protocol makes a Deny or Pass rule deny all, and drops out of an Accept rule", () => {
    const p = readCnp({
      ...base,
      ingress: [
        { name: "d", action: "Deny", from: [{ namespaces: {} }, { networks: ["10.0.0.0/8"] }] },
        { name: "p", action: "Pass", from: [{ namespaces: {} }], protocols: [{ tcp: { destinationPort: { range: { start: 90, end: 80 } } } }] },
        { name: "a", action: "Accept", from: [{ pods: { podSelector: { matchExpressions: "x" } } }, { namespaces: {} }], protocols: [{ quic: {} }] },
      ],
    })!;
    const [d, pass, a] = p.ingress!;
    expect([d!.action, d!.peers, d!.ports, d!.failClosed]).toEqual(["Deny", "any", "all", "spec.ingress[0].from[1]: needs exactly one of namespaces, pods, has networks"]);
    expect([pass!.action, pass!.peers, pass!.failClosed]).toEqual(["Deny", "any", "spec.ingress[1].protocols[0].tcp.destinationPort.range: invalid"]);
    expect([a!.action, a!.peers !== "any" && a!.peers.map(formatPeer), a!.ports, a!.failClosed]).toEqual(["Accept", ["pods <all> in namespaces <all>"], [{ kind: "never", why: "no readable protocol" }], undefined]);
  });

  it("orders by priority, then name", () => {
    const mk = (name: string, priority: number) => readClusterNetworkPolicy(cnp(name, { ...base, priority }))!;
    expect([mk("b", 5), mk("a", 5), mk("c", 1)].sort(comparePolicies).map((p) => p.name)).toEqual(["c", "a", "b"]);
  });
});

describe("protocols by name", () => {
  it("parses API names and numbers", () => {
    expect(["TCP", "udp", "SCTP", "icmp", "47", "256", "GRE"].map(parseProtocol)).toEqual([6, 17, 132, 1, 47, undefined, undefined]);
  });
});

describe("readers never throw", () => {
  it("on anything at all", () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 6 }), (junk) => {
        for (const read of [readPod, readNamespace, readNode, readNetworkPolicy, readClusterNetworkPolicy]) read(junk);
        readNetworkPolicy({ metadata: { namespace: "n", name: "p" }, spec: junk });
        readClusterNetworkPolicy({ metadata: { name: "c" }, spec: { tier: "Admin", priority: 1, subject: junk, ingress: [junk], egress: [{ action: "Deny", to: [junk], protocols: [junk] }] } });
        readSelector(junk, "s");
        return true;
      }),
      { seed: 11, numRuns: 500 },
    );
  });
});
