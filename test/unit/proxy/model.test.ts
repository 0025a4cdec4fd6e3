import { describe, expect, it } from "vitest";
import { IpProtocol, parseIpv4Addr } from "../../../overlay/wire/index.ts";
import { ChangeTracker, categorize, endpointsOf, servicePortsOf, type ServicePortInfo } from "../../../node-agent/proxy/model.ts";
import { emulatedClientAddress, healthAnswer, healthChecks } from "../../../node-agent/proxy/sockets.ts";
import { mustParseCidr } from "../../../cluster/addressing.ts";
import { service, slice } from "./objects.ts";

const ip = (t: string) => parseIpv4Addr(t)!;

function port(over: Partial<ServicePortInfo>): ServicePortInfo {
  return { ...servicePortsOf(service("web", {}))[0]!, endpoints: [], ...over };
}

describe("servicePortsOf", () => {
  it("reads ports, protocols, node ports, affinity and policies", () => {
    const [a, b] = servicePortsOf(
      service("web", {
        type: "LoadBalancer",
        ports: [
          { name: "http", port: 80, protocol: "TCP", nodePort: 30080 },
          { name: "dns", port: 53, protocol: "UDP", nodePort: 30053 },
        ],
        sessionAffinity: "ClientIP",
        externalTrafficPolicy: "Local",
        healthCheckNodePort: 32000,
        loadBalancerSourceRanges: ["10.0.0.0/8"],
      }, { loadBalancer: { ingress: [{ ip: "127.0.2.1" }] } }),
    );
    expect(a).toMatchObject({ id: "default/web:http", protocol: IpProtocol.TCP, nodePort: 30080, affinitySeconds: 10_800, externalPolicyLocal: true, healthCheckNodePort: 32000, loadBalancerIPs: [ip("127.0.2.1")] });
    expect(b).toMatchObject({ id: "default/web:dns", protocol: IpProtocol.UDP, nodePort: 30053 });
    expect(a!.loadBalancerSourceRanges).toEqual([mustParseCidr("10.0.0.0/8")]);
  });

  it("skips what kube-proxy does not program: headless, ExternalName, no ClusterIP, bad shapes", () => {
    expect(servicePortsOf(service("h", { clusterIP: "None" }))).toEqual([]);
    expect(servicePortsOf(service("e", { type: "ExternalName", externalName: "example.com" }))).toEqual([]);
    expect(servicePortsOf(service("n", { clusterIP: undefined }))).toEqual([]);
    expect(servicePortsOf({ metadata: { namespace: "default", name: "x" }, spec: "garbage" })).toEqual([]);
    expect(servicePortsOf(service("p", { ports: [{ port: "80" }, { port: 70000 }, { port: 80, protocol: "SCTP" }, null] }))).toEqual([]);
  });

  it("takes the affinity timeout when valid, else the default", () => {
    expect(servicePortsOf(service("a", { sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: 5 } } }))[0]!.affinitySeconds).toBe(5);
    expect(servicePortsOf(service("a", { sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: "x" } } }))[0]!.affinitySeconds).toBe(10_800);
    expect(servicePortsOf(service("a", {}))[0]!.affinitySeconds).toBeUndefined();
  });
});

describe("endpointsOf", () => {
  it("merges slices by ip:port, ready wins, sorted, local marked", () => {
    const eps = endpointsOf("http", IpProtocol.TCP, [
      slice("web", "b", [{ ip: "10.244.2.5", node: "node-2", ready: false }]),
      slice("web", "a", [{ ip: "10.244.2.5", node: "node-2" }, { ip: "10.244.1.7", node: "node-1" }]),
    ], "node-1");
    expect(eps.map((e) => [e.ip, e.port, e.ready, e.isLocal])).toEqual([
      [ip("10.244.1.7"), 8080, true, true],
      [ip("10.244.2.5"), 8080, true, false],
    ]);
  });

  it("defaults conditions as EndpointSlice documents them", () => {
    const [e] = endpointsOf("http", IpProtocol.TCP, [slice("web", "a", [{ ip: "10.244.1.7", ready: false, terminating: true }])], "node-1");
    expect(e).toMatchObject({ ready: false, serving: false, terminating: true });
  });

  it("ignores ports of another name or protocol and non-IPv4 slices", () => {
    expect(endpointsOf("other", IpProtocol.TCP, [slice("web", "a", [{ ip: "10.244.1.7" }])], "node-1")).toEqual([]);
    expect(endpointsOf("http", IpProtocol.UDP, [slice("web", "a", [{ ip: "10.244.1.7" }])], "node-1")).toEqual([]);
    expect(endpointsOf("http", IpProtocol.TCP, [{ ...slice("web", "a", [{ ip: "10.244.1.7" }]), addressType: "IPv6" }], "node-1")).toEqual([]);
  });
});

describe("categorize (topology.go CategorizeEndpoints)", () => {
  const e = (ipText: string, o: Partial<{ ready: boolean; serving: boolean; terminating: boolean; isLocal: boolean }>) => ({ ip: ip(ipText), port: 80, ready: true, serving: true, terminating: false, nodeName: "", isLocal: false, target: "", ...o });

  it("uses terminating serving endpoints only when no ready one is left (KEP-1669)", () => {
    const ready = e("10.0.0.1", {});
    const term = e("10.0.0.2", { ready: false, terminating: true });
    expect(categorize(port({ endpoints: [ready, term] })).cluster).toEqual([ready]);
    expect(categorize(port({ endpoints: [term] })).cluster).toEqual([term]);
    expect(categorize(port({ endpoints: [e("10.0.0.3", { ready: false, serving: false, terminating: true })] })).hasAnyEndpoints).toBe(false);
  });

  it("Local policies use local endpoints, and know endpoints exist elsewhere", () => {
    const remote = e("10.0.0.1", {});
    const local = e("10.0.0.2", { isLocal: true });
    const itp = categorize(port({ internalPolicyLocal: true, endpoints: [remote] }));
    expect(itp).toMatchObject({ local: [], allReachable: [], hasAnyEndpoints: true });
    const etp = categorize(port({ nodePort: 30080, externalPolicyLocal: true, endpoints: [remote, local] }));
    expect(etp.cluster).toEqual([remote, local]);
    expect(etp.local).toEqual([local]);
  });
});

describe("ChangeTracker", () => {
  it("reports only the service ports that changed, then nothing", () => {
    const t = new ChangeTracker("node-1");
    t.service("default/web", service("web", {}));
    t.service("default/db", service("db", { clusterIP: "10.96.0.11", ports: [{ port: 5432 }] }));
    const first = t.take();
    expect(first.changed).toBeUndefined();
    expect(first.state.servicePorts.map((p) => p.id)).toEqual(["default/db", "default/web:http"]);
    t.slice("default/web", "web-abc", slice("web", "web-abc", [{ ip: "10.244.1.7" }]));
    const second = t.take();
    expect([...second.changed!]).toEqual(["default/web:http"]);
    expect(second.state.servicePorts.find((p) => p.id === "default/web:http")!.endpoints).toHaveLength(1);
    expect(t.pending).toBe(false);
    t.service("default/db", undefined);
    const third = t.take();
    expect(third.removed.map((p) => p.id)).toEqual(["default/db"]);
    expect(third.state.servicePorts.map((p) => p.id)).toEqual(["default/web:http"]);
  });

  it("invalidate makes the next take full", () => {
    const t = new ChangeTracker("node-1");
    t.service("default/web", service("web", {}));
    t.take();
    t.invalidate();
    expect(t.take().changed).toBeUndefined();
  });

  it("reads the trigger time of the newest slice", () => {
    const t = new ChangeTracker("node-1");
    const s = slice("web", "a", []);
    s.metadata = { ...s.metadata, annotations: { "endpoints.kubernetes.io/last-change-trigger-time": "2026-11-30T01:02:03.500Z" } } as typeof s.metadata;
    t.slice("default/web", "a", s);
    expect(t.triggerTime("default/web")).toBe(Date.parse("2026-11-30T01:02:03.500Z"));
    expect(t.triggerTime("default/none")).toBeUndefined();
  });
});

describe("real clients inside the emulator", () => {
  const emulated = [mustParseCidr("10.244.0.0/16"), mustParseCidr("10.96.0.0/12"), mustParseCidr("172.31.0.0/24")];
  it("keep their address unless it is loopback or emulated", () => {
    expect(emulatedClientAddress("192.168.7.9", emulated)).toBe(ip("192.168.7.9"));
    expect(emulatedClientAddress("::ffff:192.168.7.9", emulated)).toBe(ip("192.168.7.9"));
    expect(emulatedClientAddress("127.0.0.1", emulated)).toBe(ip("198.18.0.1"));
    expect(emulatedClientAddress("172.31.0.7", emulated)).toBe(ip("198.18.0.7"));
    expect(emulatedClientAddress("::1", emulated)).toBe(ip("198.18.0.1"));
  });
});

describe("health check node port (service_health.go)", () => {
  it("answers 200 with local endpoints and 503 without, with kube-proxy's body", () => {
    const ok = healthAnswer("default", "web", 2);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ service: { namespace: "default", name: "web" }, localEndpoints: 2, serviceProxyHealthy: true });
    expect(ok.headers["X-Load-Balancing-Endpoint-Weight"]).toBe("2");
    expect(healthAnswer("default", "web", 0).status).toBe(503);
  });

  it("counts local ready endpoints per health port", () => {
    const t = new ChangeTracker("node-1");
    t.service("default/web", service("web", { type: "LoadBalancer", ports: [{ name: "http", port: 80, nodePort: 30080 }], externalTrafficPolicy: "Local", healthCheckNodePort: 32000 }));
    t.slice("default/web", "a", slice("web", "a", [{ ip: "10.244.1.7", node: "node-1" }, { ip: "10.244.1.8", node: "node-1", ready: false }, { ip: "10.244.2.7", node: "node-2" }]));
    expect([...healthChecks(t.take().state)]).toEqual([[32000, { namespace: "default", name: "web", localEndpoints: 1 }]]);
  });
});
