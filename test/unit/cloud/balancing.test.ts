import { describe, expect, it } from "vitest";
import { mustParseCidr } from "../../../cluster/addressing.ts";
import type { KubeObject } from "../../../cluster/store.ts";
import {
  candidateNodes,
  desiredListeners,
  eligibleBackends,
  HealthTable,
  healthKey,
  healthTargets,
  lbNodeFrom,
  RoundRobin,
  sourceAllowed,
  type HealthState,
  type LbNode,
  type ListenerSpec,
} from "../../../control-plane/cloud/balancing.ts";

const POOL = mustParseCidr("127.0.2.0/24");

function node(name: string, n: number, opts: Partial<LbNode> = {}): LbNode {
  return { name, hostAddress: `127.0.1.${n}`, ready: true, excluded: false, ...opts };
}

function service(name: string, spec: Record<string, unknown>, ips: string[], created = "2026-01-01T00:00:00Z"): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default", creationTimestamp: created },
    spec: { type: "LoadBalancer", externalTrafficPolicy: "Cluster", ...spec },
    status: { loadBalancer: { ingress: ips.map((ip) => ({ ip, ipMode: "VIP" })) } },
  };
}

const listener = (opts: Partial<ListenerSpec> = {}): ListenerSpec => ({
  id: "TCP/127.0.2.1:80",
  service: "default/web",
  portName: "",
  protocol: "TCP",
  ip: "127.0.2.1",
  port: 80,
  nodePort: 30000,
  healthCheckNodePort: undefined,
  sourceRanges: [],
  ...opts,
});

describe("lbNodeFrom", () => {
  const base = (extra: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): KubeObject =>
    ({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-1", annotations: { "kubewire.io/host-address": "127.0.1.1" }, ...meta },
      status: { conditions: [{ type: "Ready", status: "True" }] },
      ...extra,
    }) as KubeObject;

  it("reads the host address and readiness", () => {
    expect(lbNodeFrom(base())).toEqual({ name: "node-1", hostAddress: "127.0.1.1", ready: true, excluded: false });
    expect(lbNodeFrom(base({ status: { conditions: [{ type: "Ready", status: "Unknown" }] } }))).toMatchObject({ ready: false });
  });

  it("marks nodes excluded from load balancers: the label, the autoscaler's taint, a deletion", () => {
    expect(lbNodeFrom(base({}, { labels: { "node.kubernetes.io/exclude-from-external-load-balancers": "" } }))?.excluded).toBe(true);
    expect(lbNodeFrom(base({ spec: { taints: [{ key: "ToBeDeletedByClusterAutoscaler", effect: "NoSchedule" }] } }))?.excluded).toBe(true);
    expect(lbNodeFrom(base({}, { deletionTimestamp: "2026-01-01T00:00:00Z" }))?.excluded).toBe(true);
  });

  it("has no use for a node without a host address", () => {
    expect(lbNodeFrom(base({}, { annotations: {} }))).toBeUndefined();
    expect(lbNodeFrom(base({}, { annotations: { "kubewire.io/host-address": "" } }))).toBeUndefined();
  });
});

describe("desiredListeners", () => {
  it("listens on each TCP and UDP port of each Service with an address, toward its nodePort", () => {
    const svc = service("dns", { ports: [{ name: "dns-tcp", port: 53, protocol: "TCP", nodePort: 30053 }, { name: "dns", port: 53, protocol: "UDP", nodePort: 30054 }] }, ["127.0.2.1"]);
    const { listeners, skipped } = desiredListeners([svc], POOL);
    expect(skipped).toEqual([]);
    expect(listeners).toEqual([
      { id: "TCP/127.0.2.1:53", service: "default/dns", portName: "dns-tcp", protocol: "TCP", ip: "127.0.2.1", port: 53, nodePort: 30053, healthCheckNodePort: undefined, sourceRanges: [] },
      { id: "UDP/127.0.2.1:53", service: "default/dns", portName: "dns", protocol: "UDP", ip: "127.0.2.1", port: 53, nodePort: 30054, healthCheckNodePort: undefined, sourceRanges: [] },
    ]);
  });

  it("carries the healthCheckNodePort for externalTrafficPolicy Local", () => {
    const svc = service("web", { externalTrafficPolicy: "Local", healthCheckNodePort: 32000, ports: [{ port: 80, nodePort: 30080 }] }, ["127.0.2.1"]);
    expect(desiredListeners([svc], POOL).listeners[0]).toMatchObject({ id: "TCP/127.0.2.1:80", healthCheckNodePort: 32000 });
  });

  it("has nothing for Services without an address, of another type or class, or with an address outside the pool", () => {
    const ports = { ports: [{ port: 80, nodePort: 30080 }] };
    const services = [
      service("pending", ports, []),
      service("np", { ...ports, type: "NodePort" }, ["127.0.2.2"]),
      service("other", { ...ports, loadBalancerClass: "example.com/lb" }, ["127.0.2.3"]),
      service("outside", ports, ["10.9.9.9"]),
    ];
    expect(desiredListeners(services, POOL).listeners).toEqual([]);
  });

  it("skips, saying why, ports without a nodePort and SCTP ports", () => {
    const svc = service("x", { allocateLoadBalancerNodePorts: false, ports: [{ port: 80 }, { port: 9, protocol: "SCTP", nodePort: 30009 }, { port: 81, nodePort: 30081 }] }, ["127.0.2.1"]);
    const { listeners, skipped } = desiredListeners([svc], POOL);
    expect(listeners.map((l) => l.id)).toEqual(["TCP/127.0.2.1:81"]);
    expect(skipped.map((s) => `${s.port}/${s.protocol}: ${s.reason}`)).toEqual([
      "80/TCP: no nodePort to forward to (allocateLoadBalancerNodePorts is false)",
      "9/SCTP: protocol SCTP is not load-balanced",
    ]);
  });

  it("gives an address two Services claim to the older one only", () => {
    const ports = { ports: [{ port: 80, nodePort: 30080 }] };
    const { listeners } = desiredListeners([service("young", ports, ["127.0.2.1"], "2026-02-01T00:00:00Z"), service("old", { ports: [{ port: 80, nodePort: 30090 }] }, ["127.0.2.1"])], POOL);
    expect(listeners).toHaveLength(1);
    expect(listeners[0]).toMatchObject({ service: "default/old", nodePort: 30090 });
  });
});

describe("node selection", () => {
  const nodes = [node("node-3", 3), node("node-1", 1), node("node-2", 2, { ready: false }), node("node-4", 4, { excluded: true })];

  it("policy Cluster: Ready, not excluded, in name order", () => {
    expect(candidateNodes(nodes, false).map((n) => n.name)).toEqual(["node-1", "node-3"]);
    expect(eligibleBackends(listener(), nodes, () => undefined).map((n) => n.name)).toEqual(["node-1", "node-3"]);
  });

  it("policy Local: only nodes whose health check answered 200 last, NotReady or not; unchecked nodes get nothing", () => {
    const l = listener({ healthCheckNodePort: 32000 });
    const health = new Map<string, HealthState>([
      [healthKey("127.0.1.1", 32000), "unhealthy"],
      [healthKey("127.0.1.2", 32000), "healthy"],
      [healthKey("127.0.1.4", 32000), "healthy"],
    ]);
    // node-2 is NotReady but answers: the health check decides (etpLocalNodePredicates); node-4 is excluded; node-3 is unchecked.
    expect(eligibleBackends(l, nodes, (k) => health.get(k)).map((n) => n.name)).toEqual(["node-2"]);
    expect(eligibleBackends(l, nodes, () => undefined)).toEqual([]);
  });

  it("health targets: each candidate node's healthCheckNodePort of each Local listener, once", () => {
    const ls = [listener({ healthCheckNodePort: 32000 }), listener({ id: "UDP/127.0.2.1:80", protocol: "UDP", healthCheckNodePort: 32000 }), listener({ id: "TCP/127.0.2.2:80" })];
    expect(healthTargets(ls, nodes).map((t) => `${t.node} ${t.key}`)).toEqual(["node-1 127.0.1.1:32000", "node-2 127.0.1.2:32000", "node-3 127.0.1.3:32000"]);
  });
});

describe("RoundRobin", () => {
  it("spreads picks evenly over the backends, per listener", () => {
    const rr = new RoundRobin();
    const backends = ["a", "b", "c"];
    const picks = Array.from({ length: 9 }, () => rr.pick("l1", backends));
    expect(picks.join("")).toBe("abcabcabc");
    expect(rr.pick("l2", backends)).toBe("a");
    expect(rr.pick("l1", [])).toBeUndefined();
  });

  it("keeps going over a changed backend list", () => {
    const rr = new RoundRobin();
    rr.pick("l", ["a", "b", "c"]);
    expect(rr.pick("l", ["a", "c"])).toBe("c");
    rr.retain(new Set());
    expect(rr.pick("l", ["a", "c"])).toBe("a");
  });
});

describe("HealthTable", () => {
  it("reports transitions and forgets targets no longer checked", () => {
    const t = new HealthTable();
    expect(t.record("k", true)).toEqual({ changed: true, previous: undefined });
    expect(t.record("k", true)).toEqual({ changed: false, previous: "healthy" });
    expect(t.record("k", false)).toEqual({ changed: true, previous: "healthy" });
    t.record("j", true);
    t.retain(new Set(["j"]));
    expect(t.get("k")).toBeUndefined();
    expect(t.get("j")).toBe("healthy");
    expect(t.size).toBe(1);
  });
});

describe("loadBalancerSourceRanges (the cloud's firewall in front of the load balancer)", () => {
  it("lets every client in without ranges, and only clients inside them with ranges", () => {
    expect(sourceAllowed(listener(), "192.0.2.7")).toBe(true);
    const ranged = listener({ sourceRanges: [mustParseCidr("127.0.0.0/8"), mustParseCidr("10.1.0.0/16")] });
    expect(sourceAllowed(ranged, "127.0.0.1")).toBe(true);
    expect(sourceAllowed(ranged, "::ffff:10.1.2.3")).toBe(true);
    expect(sourceAllowed(ranged, "192.0.2.7")).toBe(false);
    expect(sourceAllowed(ranged, "::1")).toBe(false);
  });

  it("reads the ranges from the Service into its listeners", () => {
    const svc = service("web", { ports: [{ port: 80, nodePort: 30000 }], loadBalancerSourceRanges: ["10.1.0.0/16", " 127.0.0.0/8 ", "junk"] }, ["127.0.2.1"]);
    const { listeners } = desiredListeners([svc], mustParseCidr("127.0.2.0/24"));
    expect(listeners[0]!.sourceRanges).toEqual([mustParseCidr("10.1.0.0/16"), mustParseCidr("127.0.0.0/8")]);
  });
});
