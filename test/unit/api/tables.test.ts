import { describe, expect, it } from "vitest";
import type { KubeObject } from "../../../cluster/store.ts";
import {
  columnDefinitions,
  formatLabelSelector,
  humanDuration,
  toTable,
  translateTimestampSince,
  type Table,
} from "../../../control-plane/api/tables.ts";

const NOW = new Date("2024-06-01T12:00:00Z");
const ago = (ms: number): string => new Date(NOW.getTime() - ms).toISOString();
const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

function obj(apiVersion: string, kind: string, name: string, rest: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): KubeObject {
  return { apiVersion, kind, metadata: { name, namespace: "default", creationTimestamp: ago(5 * M), resourceVersion: "7", ...meta }, ...rest };
}

function cells(kind: string, o: KubeObject): unknown[] {
  const t = toTable(kind, [o], { now: NOW, includeObject: "None" });
  expect(t.rows).toHaveLength(1);
  const row = t.rows[0]!;
  expect(row.cells).toHaveLength(t.columnDefinitions.length);
  return row.cells;
}

const runningPod = obj("v1", "Pod", "web-1", {
  spec: { nodeName: "node-1", containers: [{ name: "nginx", image: "nginx:1.27" }] },
  status: {
    phase: "Running",
    podIP: "10.244.1.5",
    podIPs: [{ ip: "10.244.1.5" }],
    conditions: [{ type: "Ready", status: "True" }],
    containerStatuses: [{ name: "nginx", ready: true, restartCount: 0, state: { running: { startedAt: ago(4 * M) } }, image: "nginx:1.27", imageID: "" }],
  },
});

describe("toTable: Pod", () => {
  it("has Kubernetes' pod columns, the wide ones at priority 1", () => {
    expect(columnDefinitions("Pod").map((c) => [c.name, c.priority])).toEqual([
      ["Name", 0],
      ["Ready", 0],
      ["Status", 0],
      ["Restarts", 0],
      ["Age", 0],
      ["IP", 1],
      ["Node", 1],
      ["Nominated Node", 1],
      ["Readiness Gates", 1],
    ]);
    const name = columnDefinitions("Pod")[0]!;
    expect(name).toMatchObject({ type: "string", format: "name" });
    expect(typeof name.description).toBe("string");
  });

  it("prints a running pod on node-1 with its IP", () => {
    expect(cells("Pod", runningPod)).toEqual(["web-1", "1/1", "Running", "0", "5m", "10.244.1.5", "node-1", "<none>", "<none>"]);
  });

  it("prints restarts with the time of the last one, and readiness gates", () => {
    const pod = obj("v1", "Pod", "crashy", {
      spec: { containers: [{ name: "a" }, { name: "b" }], readinessGates: [{ conditionType: "example.com/lb" }] },
      status: {
        phase: "Running",
        conditions: [{ type: "example.com/lb", status: "True" }],
        containerStatuses: [
          { name: "a", ready: true, restartCount: 2, state: { running: {} }, lastState: { terminated: { exitCode: 1, finishedAt: ago(2 * M) } } },
          { name: "b", ready: false, restartCount: 1, state: { waiting: { reason: "CrashLoopBackOff" } } },
        ],
      },
    });
    const c = cells("Pod", pod);
    expect(c.slice(0, 4)).toEqual(["crashy", "1/2", "CrashLoopBackOff", "3 (2m ago)"]);
    expect(c[5]).toBe("<none>");
    expect(c[6]).toBe("<none>");
    expect(c[8]).toBe("1/1");
  });

  it("prints Terminating for a pod being deleted", () => {
    const pod = { ...runningPod, metadata: { ...runningPod.metadata, deletionTimestamp: ago(1 * S) } };
    expect(cells("Pod", pod)[2]).toBe("Terminating");
  });

  it("prints Pending for a new pod and marks completed pods", () => {
    const pending = obj("v1", "Pod", "new", { spec: { containers: [{ name: "a" }] } });
    expect(cells("Pod", pending).slice(0, 4)).toEqual(["new", "0/1", "Pending", "0"]);

    const done = obj("v1", "Pod", "job", {
      spec: { containers: [{ name: "a" }] },
      status: { phase: "Succeeded", containerStatuses: [{ name: "a", ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: "Completed" } } }] },
    });
    const t = toTable("Pod", [done], { now: NOW, includeObject: "None" });
    expect(t.rows[0]!.cells[2]).toBe("Completed");
    expect(t.rows[0]!.conditions).toEqual([{ type: "Completed", status: "True", reason: "Succeeded", message: "The pod has completed successfully." }]);
  });

  it("prints init container progress", () => {
    const pod = obj("v1", "Pod", "init", {
      spec: { initContainers: [{ name: "i1" }, { name: "i2" }], containers: [{ name: "a" }] },
      status: {
        phase: "Pending",
        initContainerStatuses: [
          { name: "i1", ready: false, restartCount: 0, state: { terminated: { exitCode: 0 } } },
          { name: "i2", ready: false, restartCount: 0, state: { running: {} } },
        ],
      },
    });
    expect(cells("Pod", pod)[2]).toBe("Init:1/2");
  });
});

describe("toTable: Service", () => {
  it("prints a NodePort service", () => {
    const svc = obj("v1", "Service", "web", {
      spec: { type: "NodePort", clusterIP: "10.96.0.20", clusterIPs: ["10.96.0.20"], ports: [{ port: 80, nodePort: 30080, protocol: "TCP" }], selector: { app: "web", tier: "front" } },
    });
    expect(cells("Service", svc)).toEqual(["web", "NodePort", "10.96.0.20", "<none>", "80:30080/TCP", "5m", "app=web,tier=front"]);
  });

  it("prints <pending> for a LoadBalancer without an address, the addresses once it has them", () => {
    const spec = { type: "LoadBalancer", clusterIPs: ["10.96.0.21"], ports: [{ port: 443, nodePort: 31443, protocol: "TCP" }, { port: 53, protocol: "UDP" }] };
    expect(cells("Service", obj("v1", "Service", "lb", { spec }))).toEqual(["lb", "LoadBalancer", "10.96.0.21", "<pending>", "443:31443/TCP,53/UDP", "5m", "<none>"]);
    const withIngress = obj("v1", "Service", "lb", { spec, status: { loadBalancer: { ingress: [{ ip: "192.0.2.9" }, { hostname: "lb.example" }, { ip: "192.0.2.1" }] } } });
    expect(cells("Service", withIngress)[3]).toBe("192.0.2.1,192.0.2.9,lb.example");
  });

  it("prints a ClusterIP default, external IPs, headless and ExternalName services", () => {
    expect(cells("Service", obj("v1", "Service", "a", { spec: { clusterIP: "10.96.0.1", ports: [{ port: 443 }] } })).slice(1, 5)).toEqual([
      "ClusterIP",
      "10.96.0.1",
      "<none>",
      "443/TCP",
    ]);
    expect(cells("Service", obj("v1", "Service", "b", { spec: { type: "ClusterIP", clusterIPs: ["10.96.0.2"], externalIPs: ["198.51.100.1", "198.51.100.2"] } })).slice(3, 5)).toEqual([
      "198.51.100.1,198.51.100.2",
      "<none>",
    ]);
    expect(cells("Service", obj("v1", "Service", "h", { spec: { type: "ClusterIP", clusterIP: "None", clusterIPs: ["None"] } }))[2]).toBe("None");
    expect(cells("Service", obj("v1", "Service", "x", { spec: { type: "ExternalName", externalName: "db.example" } })).slice(1, 5)).toEqual([
      "ExternalName",
      "<none>",
      "db.example",
      "<none>",
    ]);
  });
});

describe("toTable: Node", () => {
  const nodeInfo = { kubeletVersion: "v1.30.0-kubewire", osImage: "kubewire", kernelVersion: "6.8.0", containerRuntimeVersion: "kubewire://0.1.0" };

  it("prints a NotReady, cordoned node with its roles and addresses", () => {
    const node = obj(
      "v1",
      "Node",
      "node-1",
      {
        spec: { unschedulable: true },
        status: {
          conditions: [{ type: "Ready", status: "False" }],
          addresses: [{ type: "Hostname", address: "node-1" }, { type: "InternalIP", address: "192.168.0.11" }],
          nodeInfo,
        },
      },
      { namespace: undefined, labels: { "node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge" } },
    );
    expect(cells("Node", node)).toEqual([
      "node-1",
      "NotReady,SchedulingDisabled",
      "control-plane,edge,worker",
      "5m",
      "v1.30.0-kubewire",
      "192.168.0.11",
      "<none>",
      "kubewire",
      "6.8.0",
      "kubewire://0.1.0",
    ]);
  });

  it("prints Ready, and Unknown when there is no Ready condition", () => {
    const ready = obj("v1", "Node", "n", { status: { conditions: [{ type: "Ready", status: "True" }], nodeInfo } });
    expect(cells("Node", ready).slice(1, 3)).toEqual(["Ready", "<none>"]);
    const unknown = obj("v1", "Node", "n", { status: {} });
    expect(cells("Node", unknown)).toEqual(["n", "Unknown", "<none>", "5m", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]);
  });
});

describe("toTable: workloads", () => {
  const template = { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "nginx", image: "nginx:1" }, { name: "sidecar", image: "busybox" }] } };

  it("prints a Deployment, with 0 for missing status counts", () => {
    const d = obj("apps/v1", "Deployment", "web", { spec: { replicas: 3, selector: { matchLabels: { app: "web" } }, template }, status: { readyReplicas: 2, updatedReplicas: 3 } });
    expect(cells("Deployment", d)).toEqual(["web", "2/3", 3, 0, "5m", "nginx,sidecar", "nginx:1,busybox", "app=web"]);
    expect(columnDefinitions("Deployment").map((c) => c.name)).toEqual(["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]);
    const fresh = obj("apps/v1", "Deployment", "new", { spec: { selector: { matchLabels: { app: "web" } }, template } });
    expect(cells("Deployment", fresh).slice(1, 4)).toEqual(["0/1", 0, 0]);
  });

  it("prints a ReplicaSet", () => {
    const rs = obj("apps/v1", "ReplicaSet", "web-5d8f", {
      spec: { replicas: 3, selector: { matchLabels: { app: "web" }, matchExpressions: [{ key: "pod-template-hash", operator: "In", values: ["b", "a"] }] }, template },
      status: { replicas: 3, readyReplicas: 1 },
    });
    expect(cells("ReplicaSet", rs)).toEqual(["web-5d8f", 3, 3, 1, "5m", "nginx,sidecar", "nginx:1,busybox", "app=web,pod-template-hash in (a,b)"]);
    expect(columnDefinitions("ReplicaSet").slice(1, 4).map((c) => c.type)).toEqual(["integer", "integer", "integer"]);
  });
});

describe("toTable: EndpointSlice", () => {
  it("prints the first three endpoints and how many more", () => {
    const slice = obj("discovery.k8s.io/v1", "EndpointSlice", "web-abcde", {
      addressType: "IPv4",
      ports: [{ name: "http", port: 80, protocol: "TCP" }],
      endpoints: ["a", "b", "c", "d", "e"].map((a) => ({ addresses: [a] })),
    });
    expect(cells("EndpointSlice", slice)).toEqual(["web-abcde", "IPv4", "80", "a,b,c + 2 more...", "5m"]);
  });

  it("prints <unset> for no ports or endpoints, names for unnumbered ports", () => {
    expect(cells("EndpointSlice", obj("discovery.k8s.io/v1", "EndpointSlice", "e", { addressType: "IPv4" })).slice(2, 4)).toEqual(["<unset>", "<unset>"]);
    const ports = [{ port: 80 }, { name: "dns" }, {}, { port: 443 }];
    expect(cells("EndpointSlice", obj("discovery.k8s.io/v1", "EndpointSlice", "e", { addressType: "IPv4", ports, endpoints: [{ addresses: ["10.0.0.1"] }] })).slice(2, 4)).toEqual([
      "80,dns,* + 1 more...",
      "10.0.0.1",
    ]);
  });
});

describe("toTable: Event, Namespace, NetworkPolicy, Ingress", () => {
  it("prints an Event with its wide columns in Kubernetes' order", () => {
    const ev = obj("v1", "Event", "web-1.17d2", {
      involvedObject: { kind: "Pod", name: "web-1", namespace: "default", fieldPath: "spec.containers{nginx}" },
      reason: "Pulled",
      message: "Container image pulled\n",
      type: "Normal",
      source: { component: "kubelet", host: "node-1" },
      firstTimestamp: ago(10 * M),
      lastTimestamp: ago(30 * S),
      count: 4,
    });
    expect(columnDefinitions("Event").map((c) => `${c.name}:${c.priority}`)).toEqual([
      "Last Seen:0",
      "Type:0",
      "Reason:0",
      "Object:0",
      "Subobject:1",
      "Source:1",
      "Message:0",
      "First Seen:1",
      "Count:1",
      "Name:1",
    ]);
    expect(cells("Event", ev)).toEqual(["30s", "Normal", "Pulled", "pod/web-1", "spec.containers{nginx}", "kubelet, node-1", "Container image pulled", "10m", 4, "web-1.17d2"]);
  });

  it("prints an events.k8s.io-style Event from eventTime and series", () => {
    const ev = obj("v1", "Event", "e", {
      involvedObject: { kind: "Node", name: "node-1" },
      reason: "Ready",
      type: "Normal",
      eventTime: ago(3 * H),
      series: { count: 7, lastObservedTime: ago(90 * S) },
      reportingComponent: "kubewire-agent",
    });
    const c = cells("Event", ev);
    expect(c[0]).toBe("90s");
    expect(c[3]).toBe("node/node-1");
    expect(c[5]).toBe("kubewire-agent");
    expect(c[7]).toBe("3h");
    expect(c[8]).toBe(7);
  });

  it("prints a Namespace", () => {
    expect(cells("Namespace", obj("v1", "Namespace", "default", { status: { phase: "Active" } }, { namespace: undefined }))).toEqual(["default", "Active", "5m"]);
    expect(cells("Namespace", obj("v1", "Namespace", "going", { status: { phase: "Terminating" } }))[1]).toBe("Terminating");
  });

  it("prints a NetworkPolicy's pod selector", () => {
    expect(cells("NetworkPolicy", obj("networking.k8s.io/v1", "NetworkPolicy", "deny-all", { spec: { podSelector: {} } }))).toEqual(["deny-all", "<none>", "5m"]);
    const np = obj("networking.k8s.io/v1", "NetworkPolicy", "web", {
      spec: { podSelector: { matchLabels: { app: "web" }, matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }, { key: "canary", operator: "DoesNotExist" }] } },
    });
    expect(cells("NetworkPolicy", np)[1]).toBe("app=web,!canary,env notin (prod)");
  });

  it("prints an Ingress", () => {
    const ing = obj("networking.k8s.io/v1", "Ingress", "web", {
      spec: { rules: [{ host: "a.example" }, { http: {} }], tls: [{ hosts: ["a.example"] }] },
      status: { loadBalancer: { ingress: [{ ip: "192.0.2.7" }] } },
    });
    expect(cells("Ingress", ing)).toEqual(["web", "<none>", "a.example", "192.0.2.7", "80, 443", "5m"]);
    const bare = obj("networking.k8s.io/v1", "Ingress", "bare", { spec: { ingressClassName: "nginx", rules: [{ http: {} }] } });
    expect(cells("Ingress", bare)).toEqual(["bare", "nginx", "*", "", "80", "5m"]);
    const many = obj("networking.k8s.io/v1", "Ingress", "many", { spec: { rules: ["a", "b", "c", "d", "e"].map((host) => ({ host })) } });
    expect(cells("Ingress", many)[2]).toBe("a,b,c + 2 more...");
  });
});

describe("toTable: the table itself", () => {
  it("carries PartialObjectMetadata rows by default (kubectl's includeObject=Metadata)", () => {
    const t: Table = toTable("Pod", [runningPod], { now: NOW, includeObject: "Metadata", listMeta: { resourceVersion: "42", continue: "abc" } });
    expect(t.kind).toBe("Table");
    expect(t.apiVersion).toBe("meta.k8s.io/v1");
    expect(t.metadata).toEqual({ resourceVersion: "42", continue: "abc" });
    expect(t.rows[0]!.object).toEqual({ kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: runningPod.metadata });
  });

  it("carries the whole object, or none", () => {
    expect(toTable("Pod", [runningPod], { now: NOW, includeObject: "Object" }).rows[0]!.object).toBe(runningPod);
    expect("object" in toTable("Pod", [runningPod], { now: NOW, includeObject: "None" }).rows[0]!).toBe(false);
  });

  it("takes a single object's resourceVersion (a get, or a watch event)", () => {
    const t = toTable("Pod", [runningPod], { now: NOW, includeObject: "Metadata" });
    expect(t.metadata).toEqual({ resourceVersion: "7" });
    expect(t.rows).toHaveLength(1);
    expect(toTable("Pod", [runningPod], { now: NOW, includeObject: "None", noHeaders: true }).columnDefinitions).toEqual([]);
  });

  it("prints an empty list with headers and no rows", () => {
    const t = toTable("Service", [], { now: NOW, includeObject: "Metadata", listMeta: { resourceVersion: "9" } });
    expect(t.rows).toEqual([]);
    expect(t.columnDefinitions).toHaveLength(7);
    expect(t.metadata).toEqual({ resourceVersion: "9" });
  });

  it("prints the API server's default table for a kind without a printer", () => {
    const t = toTable("Widget", [obj("example.com/v1", "Widget", "w", {}, { creationTimestamp: "2024-05-01T10:20:30Z" })], { now: NOW, includeObject: "None" });
    expect(t.columnDefinitions.map((c) => [c.name, c.type])).toEqual([
      ["Name", "string"],
      ["Created At", "date"],
    ]);
    expect(t.rows[0]!.cells).toEqual(["w", "2024-05-01T10:20:30Z"]);
  });

  it("survives malformed objects", () => {
    const junk = { apiVersion: "v1", kind: "Pod", metadata: { name: "junk" }, spec: { containers: "nope" }, status: { containerStatuses: [null, 5] } } as unknown as KubeObject;
    expect(cells("Pod", junk)).toEqual(["junk", "0/0", "Pending", "0", "<unknown>", "<none>", "<none>", "<none>", "<none>"]);
    for (const kind of ["Service", "Node", "Namespace", "Deployment", "ReplicaSet", "EndpointSlice", "Event", "NetworkPolicy", "Ingress"]) {
      const bare = { apiVersion: "v1", kind, metadata: {} } as KubeObject;
      expect(() => toTable(kind, [bare], { now: NOW, includeObject: "Metadata" })).not.toThrow();
    }
  });
});

describe("formatLabelSelector", () => {
  it("follows metav1.FormatLabelSelector", () => {
    expect(formatLabelSelector(undefined)).toBe("<none>");
    expect(formatLabelSelector({})).toBe("<none>");
    expect(formatLabelSelector({ matchLabels: { b: "2", a: "1" } })).toBe("a=1,b=2");
    expect(formatLabelSelector({ matchExpressions: [{ key: "k", operator: "Exists" }] })).toBe("k");
    expect(formatLabelSelector({ matchExpressions: [{ key: "k", operator: "Bogus", values: [] }] })).toBe("<error>");
  });
});

describe("HumanDuration (k8s.io/apimachinery/pkg/util/duration tests)", () => {
  // TestHumanDuration.
  it.each([
    [S, "1s"],
    [70 * S, "70s"],
    [190 * S, "3m10s"],
    [70 * M, "70m"],
    [47 * H, "47h"],
    [49 * H, "2d1h"],
    [(8 * 24 + 2) * H, "8d"],
    [367 * 24 * H, "367d"],
    [(365 * 2 * 24 + 25) * H, "2y1d"],
    [(365 * 8 * 24 + 2) * H, "8y"],
  ])("%i ms is %s", (ms, want) => {
    expect(humanDuration(ms)).toBe(want);
  });

  // TestHumanDurationBoundaries (Go's "-2s + 1ns" is -1999ms here: the smallest unit is a millisecond).
  it.each([
    [-2 * S, "<invalid>"],
    [-2 * S + 1, "0s"],
    [0, "0s"],
    [S - 1, "0s"],
    [2 * M - 1, "119s"],
    [2 * M, "2m"],
    [2 * M + S, "2m1s"],
    [10 * M - 1, "9m59s"],
    [10 * M, "10m"],
    [10 * M + S, "10m"],
    [3 * H - 1, "179m"],
    [3 * H, "3h"],
    [3 * H + M, "3h1m"],
    [8 * H - 1, "7h59m"],
    [8 * H, "8h"],
    [8 * H + 59 * M, "8h"],
    [2 * D - 1, "47h"],
    [2 * D, "2d"],
    [2 * D + H, "2d1h"],
    [8 * D - 1, "7d23h"],
    [8 * D, "8d"],
    [8 * D + 23 * H, "8d"],
    [2 * 365 * D - 1, "729d"],
    [2 * 365 * D, "2y"],
    [2 * 365 * D + 23 * H, "2y"],
    [2 * 365 * D + 23 * H + 59 * M, "2y"],
    [2 * 365 * D + D - 1, "2y"],
    [2 * 365 * D + D, "2y1d"],
    [3 * 365 * D, "3y"],
    [4 * 365 * D, "4y"],
    [5 * 365 * D, "5y"],
    [6 * 365 * D, "6y"],
    [7 * 365 * D, "7y"],
    [8 * 365 * D - 1, "7y364d"],
    [8 * 365 * D, "8y"],
    [8 * 365 * D + 364 * D, "8y"],
    [9 * 365 * D, "9y"],
  ])("boundary %i ms is %s", (ms, want) => {
    expect(humanDuration(ms)).toBe(want);
  });

  it("translateTimestampSince measures from now, <unknown> without a timestamp", () => {
    expect(translateTimestampSince(ago(5 * S), NOW)).toBe("5s");
    expect(translateTimestampSince(ago(200 * S), NOW)).toBe("3m20s");
    expect(translateTimestampSince("2024-06-01T11:59:59.500Z", NOW)).toBe("0s");
    expect(translateTimestampSince(undefined, NOW)).toBe("<unknown>");
    expect(translateTimestampSince("", NOW)).toBe("<unknown>");
    expect(translateTimestampSince("not a time", NOW)).toBe("<unknown>");
    expect(translateTimestampSince("2024-06-01T12:00:05Z", NOW)).toBe("<invalid>");
  });
});
