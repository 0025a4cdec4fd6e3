/**
 * The invariants `kubewire chaos check` judges, on objects made here: addresses held twice, a
 * node's account against what the API's objects make, acknowledged writes.
 */
import { describe, expect, it } from "vitest";
import { addressViolations, convergenceViolations, expectedConvergence, lostWrites, type ClusterObjects } from "../../cli/invariants.ts";
import type { KubeObjectLike } from "../../cluster/kube-client.ts";

const pod = (ns: string, name: string, ip: string, over: { node?: string; phase?: string; hostNetwork?: boolean; deleting?: boolean } = {}): KubeObjectLike => ({
  metadata: { namespace: ns, name, ...(over.deleting ? { deletionTimestamp: "2026-11-30T00:00:00Z" } : {}) },
  spec: { nodeName: over.node ?? "node-1", ...(over.hostNetwork ? { hostNetwork: true } : {}) },
  status: { phase: over.phase ?? "Running", podIP: ip },
});
const node = (name: string, cidr: string, i: number): KubeObjectLike => ({
  metadata: { name, annotations: { "flannel.alpha.coreos.com/backend-data": JSON.stringify({ VNI: 1, VtepMAC: `0e:00:00:00:00:0${i}` }), "flannel.alpha.coreos.com/public-ip": `172.31.0.${i + 1}`, "kubewire.io/host-address": `127.0.1.${i}` } },
  spec: { podCIDR: cidr, podCIDRs: [cidr] },
  status: { addresses: [{ type: "InternalIP", address: `172.31.0.${i + 1}` }] },
});
const svc = (name: string, ip: string, ports: Array<{ port: number; nodePort?: number; protocol?: string; name?: string }>): KubeObjectLike => ({
  metadata: { namespace: "default", name, resourceVersion: "5" },
  spec: { clusterIP: ip, clusterIPs: [ip], type: ports.some((p) => p.nodePort) ? "NodePort" : "ClusterIP", ports: ports.map((p) => ({ protocol: "TCP", targetPort: p.port, ...p })) },
});

describe("addresses", () => {
  it("finds a pod IP, a pod CIDR, a ClusterIP or a NodePort held twice", () => {
    const r = addressViolations({
      nodes: [node("node-1", "10.244.0.0/24", 1), node("node-2", "10.244.0.0/16", 2)],
      pods: [pod("a", "x", "10.244.0.5"), pod("b", "y", "10.244.0.5"), pod("a", "done", "10.244.0.6", { phase: "Succeeded" }), pod("a", "z", "10.244.0.6"), pod("a", "h1", "172.31.0.2", { hostNetwork: true }), pod("a", "h2", "172.31.0.2", { hostNetwork: true })],
      services: [svc("s1", "10.96.0.10", [{ port: 53, nodePort: 30053, protocol: "UDP", name: "dns" }, { port: 53, nodePort: 30053, protocol: "TCP", name: "dns-tcp" }]), svc("s2", "10.96.0.10", [{ port: 80, nodePort: 30053 }]), svc("s3", "None", []), svc("s4", "None", [])],
    });
    expect(r.violations.map((v) => v.message)).toEqual([
      "pod IP 10.244.0.5 is held by 2 pods: a/x, b/y",
      "pod CIDRs overlap: node-1 has 10.244.0.0/24, node-2 has 10.244.0.0/16",
      "ClusterIP 10.96.0.10 is held by 2 Services: default/s1, default/s2",
      "NodePort 30053 is held by 2 Services: default/s1, default/s2",
    ]);
    expect(r.counts).toEqual({ podIps: 3, podCidrs: 2, clusterIps: 2, nodePorts: 1 });
  });

  it("holds for distinct addresses, a finished pod's old IP reused, one Service's NodePort on TCP and UDP", () => {
    const r = addressViolations({
      nodes: [node("node-1", "10.244.0.0/24", 1), node("node-2", "10.244.1.0/24", 2)],
      pods: [pod("a", "old", "10.244.0.5", { phase: "Failed" }), pod("a", "new", "10.244.0.5")],
      services: [svc("dns", "10.96.0.10", [{ port: 53, nodePort: 30053, protocol: "UDP", name: "dns" }, { port: 53, nodePort: 30053, protocol: "TCP", name: "tcp" }])],
    });
    expect(r.violations).toEqual([]);
  });
});

describe("convergence", () => {
  const objects: ClusterObjects = {
    nodes: [node("node-1", "10.244.0.0/24", 1), node("node-2", "10.244.1.0/24", 2), node("node-3", "10.244.2.0/24", 3)],
    pods: [pod("default", "web-1", "10.244.0.2"), pod("default", "web-2", "10.244.1.2", { node: "node-2" }), pod("default", "gone", "10.244.0.3", { deleting: true })],
    services: [svc("web", "10.96.0.20", [{ port: 80 }])],
    endpointSlices: [
      {
        metadata: { namespace: "default", name: "web-abc", labels: { "kubernetes.io/service-name": "web" } },
        addressType: "IPv4",
        ports: [{ name: "", port: 80, protocol: "TCP" }],
        endpoints: [{ addresses: ["10.244.0.2"], conditions: { ready: true }, nodeName: "node-1" }, { addresses: ["10.244.1.2"], conditions: { ready: false }, nodeName: "node-2" }],
      } as unknown as KubeObjectLike,
    ],
    networkPolicies: [{ metadata: { namespace: "default", name: "deny", resourceVersion: "7" } }],
    clusterNetworkPolicies: [],
  };

  it("derives what a node should hold: routes to the others, its live pods, the proxy state, the policies", () => {
    const want = expectedConvergence("node-1", objects);
    expect(want.peerRoutes).toEqual(["10.244.1.0/24", "10.244.2.0/24"]);
    expect(want.pods).toEqual(["default/web-1"]);
    expect(want.proxy).toMatchObject({ servicePorts: 1, endpoints: 2 });
    expect(want.policies).toEqual({ "NetworkPolicy/default/deny": "7" });
    // Endpoint conditions are part of the state: a ready change is a different digest.
    const flipped = structuredClone(objects) as ClusterObjects;
    (flipped.endpointSlices[0] as unknown as { endpoints: Array<{ conditions: { ready: boolean } }> }).endpoints[1]!.conditions.ready = true;
    expect(expectedConvergence("node-1", flipped).proxy.digest).not.toBe(want.proxy.digest);
    // The same on every node: the proxy summary does not depend on which node builds it.
    expect(expectedConvergence("node-2", objects).proxy).toEqual(want.proxy);
  });

  it("a node holding exactly that is converged; each difference is named", () => {
    const want = expectedConvergence("node-1", objects);
    expect(convergenceViolations("node-1", want, want)).toEqual([]);
    const have = { peerRoutes: ["10.244.1.0/24", "10.244.9.0/24"], pods: ["default/web-1", "default/gone"], proxy: { servicePorts: 1, endpoints: 1, digest: "00000000" }, policies: { "NetworkPolicy/default/deny": "6", "NetworkPolicy/default/old": "3" } };
    expect(convergenceViolations("node-1", want, have).map((v) => v.message)).toEqual([
      "node-1 has no route to 10.244.2.0/24",
      "node-1 has stale routes to 10.244.9.0/24",
      "node-1 still has a network for pods that are gone or not its own: default/gone",
      "node-1's kube-proxy rules differ from the API's Services and EndpointSlices (node: 1 service ports, 1 endpoints; API: 1, 2)",
      "node-1 still enforces deleted NetworkPolicy/default/old",
      "node-1 enforces an old version of NetworkPolicy/default/deny",
    ]);
    expect(convergenceViolations("node-3", want, undefined, "no responders")).toEqual([{ invariant: "convergence", subject: "node-3", message: "node-3 did not answer: no responders" }]);
  });
});

describe("acknowledged writes", () => {
  it("each must be there with its data", () => {
    const acked = [
      { key: "kubewire-chaos/w-1", data: { seq: "1" } },
      { key: "kubewire-chaos/w-2", data: { seq: "2" } },
      { key: "kubewire-chaos/w-3", data: { seq: "3" } },
    ];
    const present = new Map([
      ["kubewire-chaos/w-1", { seq: "1" }],
      ["kubewire-chaos/w-3", { seq: "x" }],
    ]);
    expect(lostWrites(acked, present).map((v) => v.message)).toEqual(["kubewire-chaos/w-2 was acknowledged and is gone", "kubewire-chaos/w-3 was acknowledged with other data than it holds"]);
  });
});
