import { describe, expect, it } from "vitest";
import type { Node, Pod, Service } from "kubernetes-types/core/v1.js";
import type { EndpointSlice } from "kubernetes-types/discovery/v1.js";
import { desiredEndpointSlices, reconcileEndpointSlices } from "../../../control-plane/controllers/logic/endpointslices.ts";

function service(o: { ports?: NonNullable<Service["spec"]>["ports"]; publishNotReady?: boolean; selector?: Record<string, string> | null; type?: string } = {}): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", namespace: "shop", uid: "svc-uid", labels: { team: "a" } },
    spec: {
      ...(o.selector === null ? {} : { selector: o.selector ?? { app: "web" } }),
      clusterIP: "10.96.0.20",
      ports: o.ports ?? [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080 }],
      ...(o.publishNotReady ? { publishNotReadyAddresses: true } : {}),
      ...(o.type ? { type: o.type } : {}),
    },
  };
}

function node(name: string, ready = true, zone?: string): Node {
  return { metadata: { name, labels: zone ? { "topology.kubernetes.io/zone": zone } : {} }, status: { conditions: [{ type: "Ready", status: ready ? "True" : "False" }] } };
}

function pod(name: string, ip: string | undefined, o: { ready?: boolean; deleting?: boolean; node?: string; labels?: Record<string, string>; ns?: string; phase?: string; namedPort?: number } = {}): Pod {
  return {
    metadata: { name, namespace: o.ns ?? "shop", uid: `uid-${name}`, labels: o.labels ?? { app: "web" }, ...(o.deleting ? { deletionTimestamp: "2024-01-01T00:00:00Z" } : {}) },
    spec: {
      nodeName: o.node ?? "node-a",
      containers: [{ name: "app", image: "x", ports: o.namedPort !== undefined ? [{ name: "web", containerPort: o.namedPort, protocol: "TCP" }] : [] }],
    },
    status: {
      phase: o.phase ?? "Running",
      ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      conditions: [{ type: "Ready", status: (o.ready ?? true) ? "True" : "False" }],
    },
  };
}

const nodes = [node("node-a", true, "z1"), node("node-b", false)];

describe("desiredEndpointSlices: endpoints and conditions", () => {
  const cases: Array<{ name: string; pod: Pod; publish?: boolean; want: { ready: boolean; serving: boolean; terminating: boolean } }> = [
    { name: "ready pod", pod: pod("p", "10.244.0.5"), want: { ready: true, serving: true, terminating: false } },
    { name: "not ready pod", pod: pod("p", "10.244.0.5", { ready: false }), want: { ready: false, serving: false, terminating: false } },
    { name: "terminating ready pod: serving but not ready", pod: pod("p", "10.244.0.5", { deleting: true }), want: { ready: false, serving: true, terminating: true } },
    { name: "terminating not-ready pod", pod: pod("p", "10.244.0.5", { deleting: true, ready: false }), want: { ready: false, serving: false, terminating: true } },
    { name: "ready pod on a NotReady node", pod: pod("p", "10.244.0.5", { node: "node-b" }), want: { ready: false, serving: false, terminating: false } },
    { name: "publishNotReadyAddresses: not-ready pod is ready", pod: pod("p", "10.244.0.5", { ready: false }), publish: true, want: { ready: true, serving: false, terminating: false } },
    { name: "publishNotReadyAddresses: terminating pod is ready", pod: pod("p", "10.244.0.5", { deleting: true }), publish: true, want: { ready: true, serving: true, terminating: true } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const [slice] = desiredEndpointSlices(service({ publishNotReady: c.publish }), [c.pod], nodes);
      expect(slice!.endpoints).toHaveLength(1);
      expect(slice!.endpoints[0]!.conditions).toEqual(c.want);
    });
  }

  it("writes the endpoint, ports, labels and owner as Kubernetes does", () => {
    const slices = desiredEndpointSlices(service(), [pod("p", "10.244.0.5")], nodes);
    expect(slices).toEqual([
      {
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: {
          generateName: "web-",
          namespace: "shop",
          labels: { team: "a", "kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io" },
          ownerReferences: [{ apiVersion: "v1", kind: "Service", name: "web", uid: "svc-uid", controller: true, blockOwnerDeletion: true }],
        },
        addressType: "IPv4",
        endpoints: [
          {
            addresses: ["10.244.0.5"],
            conditions: { ready: true, serving: true, terminating: false },
            targetRef: { kind: "Pod", namespace: "shop", name: "p", uid: "uid-p" },
            nodeName: "node-a",
            zone: "z1",
          },
        ],
        ports: [{ name: "http", protocol: "TCP", port: 8080 }],
      },
    ]);
  });

  it("selects pods of the namespace with the labels, an IP, not finished, on an existing node", () => {
    const pods = [
      pod("ok", "10.244.0.5"),
      pod("no-ip", undefined),
      pod("other-ns", "10.244.0.6", { ns: "elsewhere" }),
      pod("other-app", "10.244.0.7", { labels: { app: "db" } }),
      pod("done", "10.244.0.8", { phase: "Succeeded" }),
      pod("ghost-node", "10.244.0.9", { node: "node-z" }),
    ];
    const [slice] = desiredEndpointSlices(service(), pods, nodes);
    expect(slice!.endpoints.map((e) => e.targetRef!.name)).toEqual(["ok"]);
  });

  it("no slices for a Service without selector or of type ExternalName; a placeholder when nothing matches", () => {
    expect(desiredEndpointSlices(service({ selector: null }), [pod("p", "10.244.0.5")], nodes)).toEqual([]);
    expect(desiredEndpointSlices(service({ type: "ExternalName" }), [pod("p", "10.244.0.5")], nodes)).toEqual([]);
    const placeholder = desiredEndpointSlices(service(), [], nodes);
    expect(placeholder).toHaveLength(1);
    expect(placeholder[0]!.endpoints).toEqual([]);
    expect(placeholder[0]!.ports).toEqual([]);
  });
});

describe("desiredEndpointSlices: ports", () => {
  it("resolves a named targetPort per pod; pods where it does not resolve go to a slice without that port", () => {
    const svc = service({
      ports: [
        { name: "http", protocol: "TCP", port: 80, targetPort: "web", appProtocol: "http" },
        { name: "metrics", protocol: "TCP", port: 9090, targetPort: 9090 },
      ],
    });
    const pods = [pod("a", "10.244.0.2", { namedPort: 8080 }), pod("b", "10.244.0.3", { namedPort: 8081 }), pod("c", "10.244.0.4"), pod("d", "10.244.0.5", { namedPort: 8080 })];
    const slices = desiredEndpointSlices(svc, pods, nodes);
    const summary = slices.map((s) => ({ ports: s.ports!.map((p) => `${p.name}:${p.port}${p.appProtocol ? `/${p.appProtocol}` : ""}`), pods: s.endpoints.map((e) => e.targetRef!.name) }));
    expect(summary).toHaveLength(3);
    expect(summary).toEqual(
      expect.arrayContaining([
        { ports: ["http:8080/http", "metrics:9090"], pods: ["a", "d"] },
        { ports: ["http:8081/http", "metrics:9090"], pods: ["b"] },
        { ports: ["metrics:9090"], pods: ["c"] },
      ]),
    );
  });

  it("splits more than 100 endpoints into slices of at most 100, sorted by IP", () => {
    const pods: Pod[] = [];
    for (let i = 150; i >= 1; i--) pods.push(pod(`p${i}`, `10.244.${Math.floor(i / 250)}.${i}`));
    const slices = desiredEndpointSlices(service(), pods, nodes);
    expect(slices.map((s) => s.endpoints.length)).toEqual([100, 50]);
    expect(slices[0]!.endpoints[0]!.addresses).toEqual(["10.244.0.1"]);
    expect(slices[0]!.endpoints[99]!.addresses).toEqual(["10.244.0.100"]);
    expect(slices[1]!.endpoints[0]!.addresses).toEqual(["10.244.0.101"]);
    // Numeric, not string order: .9 before .10.
    expect(slices[0]!.endpoints[8]!.addresses).toEqual(["10.244.0.9"]);
  });
});

describe("reconcileEndpointSlices", () => {
  function named(s: EndpointSlice, name: string): EndpointSlice {
    return { ...s, metadata: { ...s.metadata, name, uid: `uid-${name}`, resourceVersion: "7" } };
  }

  it("creates with generateName when there is nothing yet", () => {
    const r = reconcileEndpointSlices(service(), [pod("a", "10.244.0.2")], nodes, []);
    expect(r.create).toHaveLength(1);
    expect(r.create[0]!.metadata!.generateName).toBe("web-");
    expect(r.update).toEqual([]);
    expect(r.delete).toEqual([]);
  });

  it("does not update an unchanged slice, whatever the order of its endpoints", () => {
    const pods = [pod("a", "10.244.0.2"), pod("b", "10.244.0.3")];
    const [slice] = desiredEndpointSlices(service(), pods, nodes);
    const existing = named({ ...slice!, endpoints: [...slice!.endpoints].reverse() }, "web-x7k2p");
    expect(reconcileEndpointSlices(service(), pods, nodes, [existing])).toEqual({ create: [], update: [], delete: [] });
  });

  it("updates a changed slice in place, keeping its name, and deletes managed slices no longer needed", () => {
    const [slice] = desiredEndpointSlices(service(), [pod("a", "10.244.0.2")], nodes);
    const existing = named(slice!, "web-x7k2p");
    const extra = named(slice!, "web-zz9zz");
    const foreign: EndpointSlice = { ...named(slice!, "web-manual"), metadata: { ...named(slice!, "web-manual").metadata, labels: { "kubernetes.io/service-name": "web" } } };
    const r = reconcileEndpointSlices(service(), [pod("a", "10.244.0.2", { ready: false })], nodes, [existing, extra, foreign]);
    expect(r.create).toEqual([]);
    expect(r.update.map((s) => s.metadata!.name)).toEqual(["web-x7k2p"]);
    expect(r.update[0]!.metadata!.resourceVersion).toBe("7");
    expect(r.update[0]!.endpoints[0]!.conditions!.ready).toBe(false);
    expect(r.delete.map((s) => s.metadata!.name)).toEqual(["web-zz9zz"]);
  });

  it("a Service losing its selector loses its managed slices", () => {
    const [slice] = desiredEndpointSlices(service(), [pod("a", "10.244.0.2")], nodes);
    const r = reconcileEndpointSlices(service({ selector: null }), [], nodes, [named(slice!, "web-x7k2p")]);
    expect(r.delete.map((s) => s.metadata!.name)).toEqual(["web-x7k2p"]);
  });
});
