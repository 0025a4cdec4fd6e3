import { describe, expect, it } from "vitest";
import { allocateClusterIp, allocateNodePort } from "../../../control-plane/controllers/logic/allocators.ts";

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
