import { describe, expect, it } from "vitest";
import { mustParseCidr } from "../../../cluster/addressing.ts";
import type { KubeObject } from "../../../cluster/store.ts";
import {
  addressOwners,
  decideLoadBalancerAddress,
  ingressIpsOf,
  lbServiceFrom,
  loadBalancerStatus,
  wantsLoadBalancer,
  type LbService,
} from "../../../control-plane/cloud/addresses.ts";

const POOL = mustParseCidr("127.0.2.0/24");

function lb(key: string, opts: Partial<LbService> = {}): LbService {
  return { key, creationTimestamp: "2026-01-01T00:00:00Z", wants: true, isLoadBalancer: true, requestedIp: "", ingressIps: [], ...opts };
}

function svc(spec: Record<string, unknown>, status?: Record<string, unknown>, name = "web"): KubeObject {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace: "default", creationTimestamp: "2026-01-01T00:00:00Z" }, spec, ...(status ? { status } : {}) };
}

describe("wantsLoadBalancer / lbServiceFrom", () => {
  it("wants a load balancer for type LoadBalancer without a loadBalancerClass only", () => {
    expect(wantsLoadBalancer(svc({ type: "LoadBalancer" }))).toBe(true);
    expect(wantsLoadBalancer(svc({ type: "LoadBalancer", loadBalancerClass: "example.com/other" }))).toBe(false);
    expect(wantsLoadBalancer(svc({ type: "NodePort" }))).toBe(false);
    expect(wantsLoadBalancer({ apiVersion: "v1", kind: "Service", metadata: { name: "x" }, spec: "junk" } as unknown as KubeObject)).toBe(false);
  });

  it("reads the ingress IPs canonically, skipping hostnames and junk", () => {
    const s = svc({ type: "LoadBalancer" }, { loadBalancer: { ingress: [{ ip: "127.0.2.007" }, { hostname: "lb.example.com" }, { ip: 5 }, "x", { ip: "127.0.2.9" }] } });
    expect(ingressIpsOf(s)).toEqual(["127.0.2.7", "127.0.2.9"]);
    expect(lbServiceFrom(svc({ type: "LoadBalancer", loadBalancerIP: " 127.0.2.50 " }))).toMatchObject({ key: "default/web", wants: true, requestedIp: "127.0.2.50", ingressIps: [] });
  });
});

describe("decideLoadBalancerAddress", () => {
  it("hands out .1 upward, the lowest free one", () => {
    expect(decideLoadBalancerAddress(lb("a/x"), [], POOL)).toEqual({ kind: "assign", ip: "127.0.2.1" });
    const others = [lb("a/y", { ingressIps: ["127.0.2.1"] }), lb("a/z", { ingressIps: ["127.0.2.3"] })];
    expect(decideLoadBalancerAddress(lb("a/x"), others, POOL)).toEqual({ kind: "assign", ip: "127.0.2.2" });
  });

  it("keeps the address a Service already has (stable across restarts: it is read from the status)", () => {
    const me = lb("a/x", { ingressIps: ["127.0.2.77"] });
    expect(decideLoadBalancerAddress(me, [me, lb("a/y", { ingressIps: ["127.0.2.1"] })], POOL)).toEqual({ kind: "assign", ip: "127.0.2.77" });
  });

  it("never hands out the network or broadcast address", () => {
    const pool = mustParseCidr("127.0.2.0/30");
    expect(decideLoadBalancerAddress(lb("a/x"), [lb("a/y", { ingressIps: ["127.0.2.1"] })], pool)).toEqual({ kind: "assign", ip: "127.0.2.2" });
    // A status claiming the broadcast address does not count: that Service is moved into the range.
    expect(decideLoadBalancerAddress(lb("a/x", { ingressIps: ["127.0.2.3"] }), [], pool)).toEqual({ kind: "assign", ip: "127.0.2.1" });
  });

  it("fails when the pool is exhausted, saying so", () => {
    const pool = mustParseCidr("127.0.2.0/30");
    const full = [lb("a/y", { ingressIps: ["127.0.2.1"] }), lb("a/z", { ingressIps: ["127.0.2.2"] })];
    expect(decideLoadBalancerAddress(lb("a/x"), full, pool)).toEqual({ kind: "fail", message: "no free address in the load-balancer pool 127.0.2.0/30 (all 2 are in use)" });
  });

  it("honours spec.loadBalancerIP when it is in the pool and free, moving the Service to it", () => {
    const me = lb("a/x", { requestedIp: "127.0.2.200", ingressIps: ["127.0.2.1"] });
    expect(decideLoadBalancerAddress(me, [me], POOL)).toEqual({ kind: "assign", ip: "127.0.2.200" });
  });

  it("refuses a requested address outside the pool, taken by another Service, or not an IPv4 address", () => {
    expect(decideLoadBalancerAddress(lb("a/x", { requestedIp: "10.0.0.1" }), [], POOL)).toEqual({ kind: "fail", message: "requested loadBalancerIP 10.0.0.1 is not in the load-balancer pool 127.0.2.0/24" });
    expect(decideLoadBalancerAddress(lb("a/x", { requestedIp: "127.0.2.255" }), [], POOL)).toMatchObject({ kind: "fail" });
    expect(decideLoadBalancerAddress(lb("a/x", { requestedIp: "127.0.2.5" }), [lb("a/y", { ingressIps: ["127.0.2.5"] })], POOL)).toEqual({
      kind: "fail",
      message: "requested loadBalancerIP 127.0.2.5 is already in use by Service a/y",
    });
    expect(decideLoadBalancerAddress(lb("a/x", { requestedIp: "fe80::1" }), [], POOL)).toEqual({ kind: "fail", message: 'spec.loadBalancerIP "fe80::1" is not an IPv4 address' });
  });

  it("gives an address two Services claim to the older one; the younger is moved", () => {
    const older = lb("a/old", { creationTimestamp: "2026-01-01T00:00:00Z", ingressIps: ["127.0.2.1"] });
    const younger = lb("a/new", { creationTimestamp: "2026-01-02T00:00:00Z", ingressIps: ["127.0.2.1"] });
    expect(decideLoadBalancerAddress(older, [older, younger], POOL)).toEqual({ kind: "assign", ip: "127.0.2.1" });
    expect(decideLoadBalancerAddress(younger, [older, younger], POOL)).toEqual({ kind: "assign", ip: "127.0.2.2" });
  });

  it("frees the address of a Service that no longer wants a load balancer", () => {
    const gone = lb("a/y", { wants: false, isLoadBalancer: false, ingressIps: ["127.0.2.1"] });
    expect(decideLoadBalancerAddress(lb("a/x"), [gone], POOL)).toEqual({ kind: "assign", ip: "127.0.2.1" });
  });
});

describe("addressOwners / loadBalancerStatus", () => {
  it("maps each pool address to its holder and ignores addresses outside the pool", () => {
    const owners = addressOwners([lb("a/x", { ingressIps: ["127.0.2.1", "10.1.1.1"] }), lb("a/y", { ingressIps: ["127.0.2.2"] })], POOL);
    expect([...owners.entries()]).toEqual([
      ["127.0.2.1", "a/x"],
      ["127.0.2.2", "a/y"],
    ]);
  });

  it("reports one VIP ingress point", () => {
    expect(loadBalancerStatus("127.0.2.4")).toEqual({ ingress: [{ ip: "127.0.2.4", ipMode: "VIP" }] });
  });
});
