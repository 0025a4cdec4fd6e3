/**
 * The one checked decode every reader of the object store uses (cluster/decode.ts): garbage and
 * wrongly shaped values come back as {kind: "bad", key, reason}, never as a throw.
 */
import { describe, expect, it } from "vitest";
import { decodeStored, shapeProblem } from "../../cluster/decode.ts";
import { resourceByKind } from "../../cluster/resources.ts";
import { nodeRecordFrom, podRecordFrom } from "../../cluster/kube-objects.ts";

const PODS = resourceByKind("Pod");
const NODES = resourceByKind("Node");
const KEY = "pods.default.web";

const pod = (metadata: Record<string, unknown> = {}, rest: Record<string, unknown> = {}) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "default", uid: "u-1", ...metadata },
  spec: { containers: [{ name: "app", image: "x" }] },
  ...rest,
});

const bytes = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));
const envelope = (object: unknown, type = "ADDED") => bytes({ type, object });

describe("decodeStored", () => {
  it("decodes a good envelope and sets resourceVersion from the revision", () => {
    const d = decodeStored(KEY, envelope(pod()), 42, PODS);
    expect(d.kind).toBe("ok");
    if (d.kind !== "ok") return;
    expect(d.type).toBe("ADDED");
    expect(d.object.metadata.name).toBe("web");
    expect(d.object.metadata.resourceVersion).toBe("42");
  });

  it("garbage bytes (not JSON, not UTF-8) are bad, naming the key", () => {
    for (const value of [bytes("not json {"), new Uint8Array([0xff, 0xfe, 0x00, 0x7b]), bytes("")]) {
      const d = decodeStored(KEY, value, 1, PODS);
      expect(d).toMatchObject({ kind: "bad", key: KEY });
      if (d.kind === "bad") expect(d.reason).toMatch(/not JSON/);
    }
  });

  it("JSON that is not an object, or an envelope without a known type or object, is bad", () => {
    for (const v of [bytes("12"), bytes("null"), bytes("[1,2]"), bytes('"text"'), bytes({ type: "ADDED" }), bytes({ type: "BOOKMARK", object: pod() }), bytes({ object: pod() })]) {
      expect(decodeStored(KEY, v, 1, PODS).kind).toBe("bad");
    }
    expect(decodeStored(KEY, envelope([pod()]), 1, PODS)).toMatchObject({ kind: "bad", reason: expect.stringMatching(/not a JSON object/) });
  });

  it("a name that is a number is bad", () => {
    const d = decodeStored("pods.default.12", envelope(pod({ name: 12 })), 1, PODS);
    expect(d).toMatchObject({ kind: "bad", key: "pods.default.12", reason: expect.stringMatching(/metadata\.name is number 12/) });
  });

  it("missing metadata, or metadata that is not an object, is bad", () => {
    const { metadata: _m, ...noMeta } = pod();
    expect(decodeStored(KEY, envelope(noMeta), 1, PODS)).toMatchObject({ kind: "bad", reason: "metadata is missing, not an object" });
    expect(decodeStored(KEY, envelope({ ...noMeta, metadata: "web" }), 1, PODS).kind).toBe("bad");
    expect(decodeStored(KEY, envelope(pod({ name: undefined })), 1, PODS).kind).toBe("bad");
  });

  it("labels as an array (or with non-string values) are bad", () => {
    expect(decodeStored(KEY, envelope(pod({ labels: ["app", "web"] })), 1, PODS)).toMatchObject({ kind: "bad", reason: expect.stringMatching(/metadata\.labels is an array/) });
    expect(decodeStored(KEY, envelope(pod({ labels: { app: 1 } })), 1, PODS).kind).toBe("bad");
    expect(decodeStored(KEY, envelope(pod({ annotations: "a=b" })), 1, PODS).kind).toBe("bad");
  });

  it("apiVersion/kind not strings, uid/namespace not strings, spec/status not objects: bad", () => {
    expect(decodeStored(KEY, envelope({ ...pod(), apiVersion: 1 }), 1, PODS).kind).toBe("bad");
    expect(decodeStored(KEY, envelope({ ...pod(), kind: null }), 1, PODS).kind).toBe("bad");
    expect(decodeStored(KEY, envelope(pod({ uid: 7 })), 1, PODS).kind).toBe("bad");
    expect(decodeStored(KEY, envelope(pod({ namespace: ["default"] })), 1, PODS).kind).toBe("bad");
    expect(decodeStored(KEY, envelope(pod({}, { spec: [] })), 1, PODS).kind).toBe("bad");
    expect(decodeStored(KEY, envelope(pod({}, { status: "Running" })), 1, PODS).kind).toBe("bad");
  });

  it("an object of another kind, or stored under another object's key, is bad", () => {
    expect(decodeStored(KEY, envelope({ ...pod(), kind: "Service" }), 1, PODS).kind).toBe("bad");
    expect(decodeStored("pods.default.other", envelope(pod()), 1, PODS)).toMatchObject({ kind: "bad", reason: expect.stringMatching(/does not belong at this key/) });
    expect(decodeStored("pods.kube-system.web", envelope(pod()), 1, PODS).kind).toBe("bad");
  });

  it("deep fields are not its business: ports as an object still decodes (readers read them defensively)", () => {
    const odd = pod({}, { spec: { nodeName: "node-1", containers: [{ name: "app", image: "x", ports: { containerPort: 80 } }] } });
    expect(decodeStored(KEY, envelope(odd), 1, PODS).kind).toBe("ok");
  });

  it("cluster-scoped objects have no namespace; DELETED envelopes decode", () => {
    const node = { apiVersion: "v1", kind: "Node", metadata: { name: "node-1", uid: "n" }, spec: {} };
    expect(decodeStored("nodes._.node-1", envelope(node, "DELETED"), 3, NODES)).toMatchObject({ kind: "ok", type: "DELETED" });
    expect(decodeStored("nodes._.node-1", envelope({ ...node, metadata: { ...node.metadata, namespace: "x" } }), 3, NODES).kind).toBe("bad");
  });

  it("shapeProblem without a resource checks only the basic shape", () => {
    expect(shapeProblem(pod())).toBeUndefined();
    expect(shapeProblem(pod({ name: 12 }))).toMatch(/metadata\.name/);
    expect(shapeProblem(undefined)).toMatch(/missing/);
  });
});

describe("nodeRecordFrom on odd Node objects", () => {
  it("returns undefined, never throws, for wrong types and unparsable addresses", () => {
    const odd: unknown[] = [
      null,
      {},
      { metadata: { name: "n" }, spec: { podCIDR: 10 } },
      { metadata: { name: "n", annotations: "x" }, spec: { podCIDR: "10.244.1.0/24" }, status: { addresses: { type: "InternalIP" } } },
      { metadata: { name: "n", annotations: { "flannel.alpha.coreos.com/backend-data": "{bad", "flannel.alpha.coreos.com/public-ip": "10.0.0.2" } }, spec: { podCIDR: "10.244.1.0/24" } },
      { metadata: { name: "n", annotations: { "flannel.alpha.coreos.com/backend-data": '{"VtepMAC":"zz"}', "flannel.alpha.coreos.com/public-ip": "10.0.0.2" } }, spec: { podCIDR: "10.244.1.0/24" } },
      { metadata: { name: "n", annotations: { "flannel.alpha.coreos.com/backend-data": '{"VtepMAC":"02:00:00:00:00:01"}', "flannel.alpha.coreos.com/public-ip": "10.0.0.2" } }, spec: { podCIDR: "not-a-cidr" } },
    ];
    for (const n of odd) expect(nodeRecordFrom(n as Parameters<typeof nodeRecordFrom>[0])).toBeUndefined();
    const good = { metadata: { name: "n", annotations: { "flannel.alpha.coreos.com/backend-data": '{"VtepMAC":"02:00:00:00:00:01"}', "flannel.alpha.coreos.com/public-ip": "10.0.0.2" } }, spec: { podCIDR: "10.244.1.0/24" } };
    expect(nodeRecordFrom(good)).toMatchObject({ name: "n", podCidr: "10.244.1.0/24", internalIp: "10.0.0.2", vtepMac: "02:00:00:00:00:01" });
  });
});

describe("podRecordFrom on container ports", () => {
  it("keeps TCP and UDP ports, drops SCTP (no transport: it must not open a TCP listener) and nonsense", () => {
    const rec = podRecordFrom({
      metadata: { namespace: "x", name: "a" },
      spec: { containers: [{ name: "c", image: "agnhost", ports: [{ containerPort: 80 }, { containerPort: 81, protocol: "UDP" }, { containerPort: 82, protocol: "SCTP" }, { containerPort: 0 }, { containerPort: "83" }] }] },
    });
    expect(rec.ports).toEqual([
      { containerPort: 80, protocol: "TCP" },
      { containerPort: 81, protocol: "UDP" },
    ]);
  });
});
