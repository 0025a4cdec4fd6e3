import { describe, expect, it } from "vitest";
import {
  allocateClusterIp,
  allocateHealthCheckNodePort,
  allocateNodePort,
  allocateServiceNodePorts,
  nodePortsInUse,
} from "../../../control-plane/controllers/logic/allocators.ts";

const CIDR = "10.96.0.0/12";

describe("allocateClusterIp", () => {
  const cases: Array<{ name: string; taken: string[]; want: string }> = [
    { name: "skips the network address and .1 (the kubernetes Service)", taken: [], want: "10.96.0.2" },
    { name: "lowest free", taken: ["10.96.0.2", "10.96.0.3", "10.96.0.5"], want: "10.96.0.4" },
    { name: ".10 is kept for cluster DNS", taken: ["10.96.0.2", "10.96.0.3", "10.96.0.4", "10.96.0.5", "10.96.0.6", "10.96.0.7", "10.96.0.8", "10.96.0.9"], want: "10.96.0.11" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(allocateClusterIp(CIDR, new Set(c.taken))).toEqual({ kind: "allocated", ip: c.want });
    });
  }

  it("hands out .10 and .1 when asked for explicitly", () => {
    expect(allocateClusterIp(CIDR, new Set(), "10.96.0.10")).toEqual({ kind: "allocated", ip: "10.96.0.10" });
    expect(allocateClusterIp(CIDR, new Set(), "10.96.0.1")).toEqual({ kind: "allocated", ip: "10.96.0.1" });
  });

  it("rejects a requested IP outside the range, with Kubernetes' message", () => {
    const r = allocateClusterIp(CIDR, new Set(), "10.0.0.1");
    expect(r).toMatchObject({ kind: "error", reason: "FieldValueInvalid", field: "spec.clusterIPs" });
    if (r.kind !== "error") throw new Error("expected an error");
    expect(r.text).toBe(
      'spec.clusterIPs: Invalid value: ["10.0.0.1"]: failed to allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12',
    );
    expect(r.message).toBe('Invalid value: ["10.0.0.1"]: failed to allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12');
  });

  it("treats the network and broadcast addresses as outside the range", () => {
    for (const ip of ["10.96.0.0", "10.111.255.255"]) {
      const r = allocateClusterIp(CIDR, new Set(), ip);
      expect(r.kind === "error" && r.message).toContain(`the provided IP (${ip}) is not in the valid range`);
    }
    expect(allocateClusterIp(CIDR, new Set(), "10.111.255.254")).toEqual({ kind: "allocated", ip: "10.111.255.254" });
  });

  it("rejects a requested IP already in use", () => {
    const r = allocateClusterIp(CIDR, new Set(["10.96.0.10"]), "10.96.0.10");
    expect(r.kind === "error" && r.text).toBe('spec.clusterIPs: Invalid value: ["10.96.0.10"]: failed to allocate IP 10.96.0.10: provided IP is already allocated');
  });

  it("rejects something that is not an IP", () => {
    const r = allocateClusterIp(CIDR, new Set(), "ten.0.0.1");
    expect(r.kind === "error" && r.text).toBe('spec.clusterIPs[0]: Invalid value: "ten.0.0.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)');
  });

  it("reports a full range as an internal error", () => {
    // /29: .1-.6 usable, .1 reserved; .10 is outside.
    const r = allocateClusterIp("10.96.0.0/29", new Set(["10.96.0.2", "10.96.0.3", "10.96.0.4", "10.96.0.5", "10.96.0.6"]));
    expect(r).toMatchObject({ kind: "error", reason: "InternalError", text: "Internal error occurred: failed to allocate a serviceIP: range is full" });
  });
});

describe("allocateNodePort", () => {
  it("gives the lowest free port of 30000-32767", () => {
    expect(allocateNodePort(new Set())).toEqual({ kind: "allocated", port: 30000 });
    expect(allocateNodePort(new Set([30000, 30001, 30003]))).toEqual({ kind: "allocated", port: 30002 });
    expect(allocateNodePort(new Set([30000]), 0)).toEqual({ kind: "allocated", port: 30001 });
  });

  it("gives a requested free port", () => {
    expect(allocateNodePort(new Set([30080]), 32767)).toEqual({ kind: "allocated", port: 32767 });
  });

  const errors: Array<{ name: string; taken: number[]; requested: number; index: number; text: string }> = [
    {
      name: "below the range",
      taken: [],
      requested: 80,
      index: 0,
      text: "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
    },
    {
      name: "above the range, second port",
      taken: [],
      requested: 32768,
      index: 1,
      text: "spec.ports[1].nodePort: Invalid value: 32768: provided port is not in the valid range. The range of valid ports is 30000-32767",
    },
    { name: "already allocated", taken: [30080], requested: 30080, index: 2, text: "spec.ports[2].nodePort: Invalid value: 30080: provided port is already allocated" },
    { name: "not a port at all", taken: [], requested: 70000, index: 0, text: "spec.ports[0].nodePort: Invalid value: 70000: must be between 1 and 65535, inclusive" },
  ];
  for (const c of errors) {
    it(`rejects a requested port ${c.name}`, () => {
      const r = allocateNodePort(new Set(c.taken), c.requested, c.index);
      expect(r).toMatchObject({ kind: "error", reason: "FieldValueInvalid", field: `spec.ports[${c.index}].nodePort`, text: c.text });
      expect(r.kind === "error" && `${r.field}: ${r.message}`).toBe(c.text);
    });
  }

  it("takes another range, and reports it full", () => {
    const range = { base: 40000, size: 2 };
    expect(allocateNodePort(new Set([40000]), undefined, 0, range)).toEqual({ kind: "allocated", port: 40001 });
    expect(allocateNodePort(new Set(), 40002, 0, range)).toMatchObject({ kind: "error", message: "Invalid value: 40002: provided port is not in the valid range. The range of valid ports is 40000-40001" });
    expect(allocateNodePort(new Set([40000, 40001]), undefined, 0, range)).toMatchObject({ kind: "error", reason: "InternalError", text: "Internal error occurred: failed to allocate a nodePort: range is full" });
  });
});

describe("allocateHealthCheckNodePort", () => {
  it("gives the lowest free port, or the requested one when free", () => {
    expect(allocateHealthCheckNodePort(new Set([30000, 30001]))).toEqual({ kind: "allocated", port: 30002 });
    expect(allocateHealthCheckNodePort(new Set([30000]), 31000)).toEqual({ kind: "allocated", port: 31000 });
  });

  it("refuses a taken or out-of-range request with a 422 naming spec.healthCheckNodePort, in kube-apiserver's words", () => {
    const taken = allocateHealthCheckNodePort(new Set([30123]), 30123);
    expect(taken).toMatchObject({ kind: "error", reason: "FieldValueInvalid", field: "spec.healthCheckNodePort" });
    expect(taken.kind === "error" && taken.text).toBe(
      "spec.healthCheckNodePort: Invalid value: 30123: failed to allocate requested HealthCheck NodePort 30123: provided port is already allocated",
    );
    const outside = allocateHealthCheckNodePort(new Set(), 8080);
    expect(outside.kind === "error" && outside.message).toBe(
      "Invalid value: 8080: failed to allocate requested HealthCheck NodePort 8080: provided port is not in the valid range. The range of valid ports is 30000-32767",
    );
  });

  it("reports a full range as an internal error", () => {
    const r = allocateHealthCheckNodePort(new Set([40000, 40001]), undefined, { base: 40000, size: 2 });
    expect(r).toMatchObject({ kind: "error", reason: "InternalError", text: "Internal error occurred: failed to allocate a HealthCheck NodePort 0: range is full" });
  });
});

describe("nodePortsInUse", () => {
  it("counts nodePorts and healthCheckNodePorts of every Service, ignoring junk", () => {
    const used = nodePortsInUse([
      { type: "NodePort", ports: [{ port: 80, nodePort: 30000 }, { port: 81 }] },
      { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 30500, ports: [{ port: 443, nodePort: 30001 }] },
      undefined,
      { ports: [{ port: 1, nodePort: -3 }, { port: 2, nodePort: "30002" as unknown as number }] },
    ]);
    expect([...used].sort()).toEqual([30000, 30001, 30500]);
  });
});

describe("allocateServiceNodePorts", () => {
  const lbLocal = (ports: Array<{ port: number; protocol?: string; nodePort?: number }>, extra: Record<string, unknown> = {}) => ({
    type: "LoadBalancer",
    externalTrafficPolicy: "Local",
    ports,
    ...extra,
  });

  it("gives a new LoadBalancer with policy Local its nodePorts and a healthCheckNodePort, all distinct and free", () => {
    const r = allocateServiceNodePorts(lbLocal([{ port: 80 }, { port: 443 }]), undefined, new Set([30000, 30002]));
    expect(r).toEqual({ kind: "allocated", nodePorts: [30001, 30003], healthCheckNodePort: 30004 });
  });

  it("allocates no healthCheckNodePort for policy Cluster, NodePort or ClusterIP Services", () => {
    expect(allocateServiceNodePorts({ type: "LoadBalancer", externalTrafficPolicy: "Cluster", ports: [{ port: 80 }] }, undefined, new Set())).toEqual({
      kind: "allocated",
      nodePorts: [30000],
      healthCheckNodePort: undefined,
    });
    expect(allocateServiceNodePorts({ type: "NodePort", externalTrafficPolicy: "Local", ports: [{ port: 80 }] }, undefined, new Set())).toMatchObject({ healthCheckNodePort: undefined });
    expect(allocateServiceNodePorts({ type: "ClusterIP", ports: [{ port: 80, nodePort: 30000 }] }, undefined, new Set())).toEqual({
      kind: "allocated",
      nodePorts: [undefined],
      healthCheckNodePort: undefined,
    });
  });

  it("honours a requested healthCheckNodePort, reserving it before any dynamic nodePort is picked", () => {
    const r = allocateServiceNodePorts(lbLocal([{ port: 80 }], { healthCheckNodePort: 30000 }), undefined, new Set());
    expect(r).toEqual({ kind: "allocated", nodePorts: [30001], healthCheckNodePort: 30000 });
  });

  it("reserves requested nodePorts before dynamic ones: an earlier dynamic port never takes a later port's number", () => {
    const r = allocateServiceNodePorts({ type: "NodePort", ports: [{ port: 80 }, { port: 81, nodePort: 30000 }] }, undefined, new Set());
    expect(r).toEqual({ kind: "allocated", nodePorts: [30001, 30000], healthCheckNodePort: undefined });
  });

  it("refuses a healthCheckNodePort another Service holds as a nodePort or health check port", () => {
    const r = allocateServiceNodePorts(lbLocal([{ port: 80 }], { healthCheckNodePort: 31000 }), undefined, new Set([31000]));
    expect(r.kind === "error" && r.text).toBe(
      "spec.healthCheckNodePort: Invalid value: 31000: failed to allocate requested HealthCheck NodePort 31000: provided port is already allocated",
    );
  });

  it("refuses a healthCheckNodePort equal to one of the Service's own nodePorts", () => {
    const r = allocateServiceNodePorts(lbLocal([{ port: 80, nodePort: 31000 }], { healthCheckNodePort: 31000 }), undefined, new Set());
    expect(r).toMatchObject({ kind: "error", field: "spec.healthCheckNodePort" });
  });

  it("refuses a nodePort another Service holds as its healthCheckNodePort", () => {
    const taken = nodePortsInUse([lbLocal([{ port: 80, nodePort: 30000 }], { healthCheckNodePort: 30001 })]);
    const r = allocateServiceNodePorts({ type: "NodePort", ports: [{ port: 80, nodePort: 30001 }] }, undefined, taken);
    expect(r.kind === "error" && r.text).toBe("spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated");
    expect(allocateServiceNodePorts({ type: "NodePort", ports: [{ port: 80 }] }, undefined, taken)).toMatchObject({ nodePorts: [30002] });
  });

  it("keeps the healthCheckNodePort and nodePorts on an update that omits them", () => {
    const old = lbLocal([{ port: 80, nodePort: 30007 }], { healthCheckNodePort: 30009 });
    expect(allocateServiceNodePorts(lbLocal([{ port: 80 }]), old, new Set())).toEqual({ kind: "allocated", nodePorts: [30007], healthCheckNodePort: 30009 });
    expect(allocateServiceNodePorts(lbLocal([{ port: 80, nodePort: 0 }], { healthCheckNodePort: 0 }), old, new Set())).toEqual({ kind: "allocated", nodePorts: [30007], healthCheckNodePort: 30009 });
  });

  it("releases the healthCheckNodePort when the Service stops needing it (policy Cluster, or another type)", () => {
    const old = lbLocal([{ port: 80, nodePort: 30007 }], { healthCheckNodePort: 30009 });
    expect(allocateServiceNodePorts({ ...old, externalTrafficPolicy: "Cluster", healthCheckNodePort: undefined }, old, new Set())).toEqual({
      kind: "allocated",
      nodePorts: [30007],
      healthCheckNodePort: undefined,
    });
    expect(allocateServiceNodePorts({ type: "NodePort", externalTrafficPolicy: "Local", ports: [{ port: 80 }] }, old, new Set())).toEqual({
      kind: "allocated",
      nodePorts: [30007],
      healthCheckNodePort: undefined,
    });
    expect(allocateServiceNodePorts({ type: "ClusterIP", ports: [{ port: 80 }] }, old, new Set())).toEqual({ kind: "allocated", nodePorts: [undefined], healthCheckNodePort: undefined });
  });

  it("allocates one when a Service comes to need it (Cluster -> Local, NodePort -> LoadBalancer Local)", () => {
    const old = { type: "LoadBalancer", externalTrafficPolicy: "Cluster", ports: [{ port: 80, nodePort: 30000 }] };
    expect(allocateServiceNodePorts(lbLocal([{ port: 80 }]), old, new Set())).toEqual({ kind: "allocated", nodePorts: [30000], healthCheckNodePort: 30001 });
    const np = { type: "NodePort", externalTrafficPolicy: "Local", ports: [{ port: 80, nodePort: 30000 }] };
    expect(allocateServiceNodePorts(lbLocal([{ port: 80 }], { healthCheckNodePort: 32000 }), np, new Set([32001]))).toEqual({
      kind: "allocated",
      nodePorts: [30000],
      healthCheckNodePort: 32000,
    });
  });

  it("does not patch a kept nodePort into a port when the request gives that number to another port", () => {
    const old = { type: "NodePort", ports: [{ port: 80, nodePort: 30000 }, { port: 443, nodePort: 30001 }] };
    const r = allocateServiceNodePorts({ type: "NodePort", ports: [{ port: 80, nodePort: 30001 }, { port: 443 }] }, old, new Set());
    expect(r).toEqual({ kind: "allocated", nodePorts: [30001, 30000], healthCheckNodePort: undefined });
  });

  it("lets a TCP and a UDP port of one Service share a requested number", () => {
    const r = allocateServiceNodePorts({ type: "NodePort", ports: [{ port: 53, protocol: "TCP", nodePort: 30053 }, { port: 53, protocol: "UDP", nodePort: 30053 }] }, undefined, new Set());
    expect(r).toEqual({ kind: "allocated", nodePorts: [30053, 30053], healthCheckNodePort: undefined });
  });

  it("allocates no new nodePorts for a LoadBalancer with allocateLoadBalancerNodePorts false, but keeps requested ones", () => {
    const spec = { type: "LoadBalancer", allocateLoadBalancerNodePorts: false, ports: [{ port: 80 }, { port: 81, nodePort: 30081 }] };
    expect(allocateServiceNodePorts(spec, undefined, new Set())).toEqual({ kind: "allocated", nodePorts: [undefined, 30081], healthCheckNodePort: undefined });
  });

  it("reports a range with no room for the health check port as an internal error", () => {
    const r = allocateServiceNodePorts(lbLocal([{ port: 80 }]), undefined, new Set([40000]), { base: 40000, size: 2 });
    expect(r).toMatchObject({ kind: "error", reason: "InternalError", field: "spec.healthCheckNodePort" });
  });
});
