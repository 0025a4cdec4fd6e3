/**
 * The kinds application manifests carry (issue item 3): the resource table's entries, their
 * tables, schemas, OpenAPI definitions, semantic checks, and the Secret strategy.
 */
import { describe, expect, it } from "vitest";
import type { KubeObject } from "../../../cluster/store.ts";
import { RESOURCES, groupVersion, keyName, objectKey, resourceByKind } from "../../../cluster/resources.ts";
import { columnDefinitions, toTable } from "../../../control-plane/api/tables.ts";
import { hasSchema, checkSchema } from "../../../control-plane/api/schema.ts";
import { openApiV3Document, schemaName, groupVersionPath } from "../../../control-plane/api/openapi.ts";
import { validateObject } from "../../../control-plane/api/validation.ts";
import { admitSecret, base64Error } from "../../../control-plane/api/admission.ts";
import { advertiseAddress, kubernetesServiceIp, kubernetesServiceObjects } from "../../../control-plane/master.ts";

const NOW = new Date("2026-01-01T00:10:00Z");
const CREATED = "2026-01-01T00:00:00Z";

/** kube-apiserver 1.32's discovery for these kinds: group/version, scope, short names, categories, subresources. */
const EXPECTED: Array<[kind: string, gv: string, plural: string, namespaced: boolean, shortNames: string[], all: boolean, subresources: string[]]> = [
  ["ServiceAccount", "v1", "serviceaccounts", true, ["sa"], false, []],
  ["ConfigMap", "v1", "configmaps", true, ["cm"], false, []],
  ["Secret", "v1", "secrets", true, [], false, []],
  ["LimitRange", "v1", "limitranges", true, ["limits"], false, []],
  ["ResourceQuota", "v1", "resourcequotas", true, ["quota"], false, ["status"]],
  ["PersistentVolumeClaim", "v1", "persistentvolumeclaims", true, ["pvc"], false, ["status"]],
  ["StatefulSet", "apps/v1", "statefulsets", true, ["sts"], true, ["status", "scale"]],
  ["DaemonSet", "apps/v1", "daemonsets", true, ["ds"], true, ["status"]],
  ["Job", "batch/v1", "jobs", true, [], true, ["status"]],
  ["CronJob", "batch/v1", "cronjobs", true, ["cj"], true, ["status"]],
  ["HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers", true, ["hpa"], true, ["status"]],
  ["PodDisruptionBudget", "policy/v1", "poddisruptionbudgets", true, ["pdb"], false, ["status"]],
  ["Role", "rbac.authorization.k8s.io/v1", "roles", true, [], false, []],
  ["RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings", true, [], false, []],
  ["ClusterRole", "rbac.authorization.k8s.io/v1", "clusterroles", false, [], false, []],
  ["ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "clusterrolebindings", false, [], false, []],
  ["Lease", "coordination.k8s.io/v1", "leases", true, [], false, []],
  ["PriorityClass", "scheduling.k8s.io/v1", "priorityclasses", false, ["pc"], false, []],
  ["IngressClass", "networking.k8s.io/v1", "ingressclasses", false, [], false, []],
];

function obj(kind: string, extra: Record<string, unknown> = {}, name = "x"): KubeObject {
  const r = resourceByKind(kind);
  return { apiVersion: groupVersion(r), kind, metadata: { name, ...(r.namespaced ? { namespace: "default" } : {}), creationTimestamp: CREATED }, ...extra } as KubeObject;
}

function cells(kind: string, o: KubeObject): Record<string, unknown> {
  const t = toTable(kind, [o], { now: NOW, includeObject: "None" });
  return Object.fromEntries(t.columnDefinitions.map((c, i) => [c.name, t.rows[0]!.cells[i]]));
}

describe("the resource table: application kinds", () => {
  it.each(EXPECTED)("serves %s as kube-apiserver does", (kind, gv, plural, namespaced, shortNames, all, subresources) => {
    const r = resourceByKind(kind);
    expect(groupVersion(r)).toBe(gv);
    expect(r.plural).toBe(plural);
    expect(r.singular).toBe(kind.toLowerCase());
    expect(r.namespaced).toBe(namespaced);
    expect(r.shortNames).toEqual(shortNames);
    expect(r.categories?.includes("all") ?? false).toBe(all);
    expect(r.subresources).toEqual(subresources);
    expect(hasSchema(kind, gv)).toBe(true);
  });

  it("has one entry per kind and every served kind has a schema and a printer's columns", () => {
    expect(new Set(RESOURCES.map((r) => r.kind)).size).toBe(RESOURCES.length);
    for (const r of RESOURCES) {
      expect(hasSchema(r.kind, groupVersion(r)), r.kind).toBe(true);
      expect(columnDefinitions(r.kind).map((c) => c.name), r.kind).toContain("Name");
    }
  });

  it("keys names NATS does not allow (RBAC path segments) without collisions, DNS names as before", () => {
    expect(keyName("web-1.shop")).toBe("web-1.shop");
    expect(keyName("system:controller:x")).toBe("system=3Acontroller=3Ax");
    expect(keyName("a..b")).toBe("a=2E=2Eb");
    expect(keyName("a=3Ab")).not.toBe(keyName("a:b"));
    expect(objectKey(resourceByKind("ClusterRole"), undefined, "system:aggregate-to-view")).toBe("clusterroles_rbac_authorization_k8s_io._.system=3Aaggregate-to-view");
  });
});

describe("tables of the application kinds (printers.go)", () => {
  it("ServiceAccount, ConfigMap, Secret", () => {
    expect(cells("ServiceAccount", obj("ServiceAccount", { secrets: [{ name: "a" }] }))).toEqual({ Name: "x", Secrets: 1, Age: "10m" });
    expect(cells("ConfigMap", obj("ConfigMap", { data: { a: "1", b: "2" }, binaryData: { c: "AA==" } }))).toEqual({ Name: "x", Data: 3, Age: "10m" });
    expect(cells("Secret", obj("Secret", { type: "Opaque", data: { a: "MQ==" } }))).toEqual({ Name: "x", Type: "Opaque", Data: 1, Age: "10m" });
  });

  it("StatefulSet, DaemonSet", () => {
    const template = { spec: { containers: [{ name: "c", image: "i" }], nodeSelector: { disk: "ssd" } } };
    expect(cells("StatefulSet", obj("StatefulSet", { spec: { replicas: 3, template }, status: { readyReplicas: 2 } }))).toEqual({ Name: "x", Ready: "2/3", Age: "10m", Containers: "c", Images: "i" });
    expect(cells("DaemonSet", obj("DaemonSet", { spec: { template, selector: { matchLabels: { app: "d" } } }, status: { desiredNumberScheduled: 2, currentNumberScheduled: 2, numberReady: 1, updatedNumberScheduled: 2, numberAvailable: 1 } }))).toEqual({
      Name: "x", Desired: 2, Current: 2, Ready: 1, "Up-to-date": 2, Available: 1, "Node Selector": "disk=ssd", Age: "10m", Containers: "c", Images: "i", Selector: "app=d",
    });
  });

  it("Job and CronJob", () => {
    const job = obj("Job", { spec: { completions: 3, template: { spec: { containers: [{ name: "c", image: "i" }] } } }, status: { succeeded: 1, startTime: "2026-01-01T00:08:00Z" } });
    expect(cells("Job", job)).toMatchObject({ Status: "Running", Completions: "1/3", Duration: "2m" });
    const done = obj("Job", { spec: { parallelism: 2 }, status: { succeeded: 2, startTime: "2026-01-01T00:00:00Z", completionTime: "2026-01-01T00:00:30Z", conditions: [{ type: "Complete", status: "True" }] } });
    expect(cells("Job", done)).toMatchObject({ Status: "Complete", Completions: "2/1 of 2", Duration: "30s" });
    expect(cells("CronJob", obj("CronJob", { spec: { schedule: "*/5 * * * *", suspend: false, jobTemplate: { spec: {} } } }))).toMatchObject({
      Schedule: "*/5 * * * *", Timezone: "<none>", Suspend: "False", Active: 0, "Last Schedule": "<none>", Age: "10m",
    });
  });

  it("HorizontalPodAutoscaler, PodDisruptionBudget", () => {
    const hpa = obj("HorizontalPodAutoscaler", { spec: { scaleTargetRef: { kind: "Deployment", name: "web" }, minReplicas: 1, maxReplicas: 5, metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } } }] } });
    expect(cells("HorizontalPodAutoscaler", hpa)).toEqual({ Name: "x", Reference: "Deployment/web", Targets: "cpu: <unknown>/80%", MinPods: 1, MaxPods: 5, Replicas: 0, Age: "10m" });
    expect(cells("PodDisruptionBudget", obj("PodDisruptionBudget", { spec: { maxUnavailable: "25%" }, status: { disruptionsAllowed: 1 } }))).toEqual({
      Name: "x", "Min Available": "N/A", "Max Unavailable": "25%", "Allowed Disruptions": 1, Age: "10m",
    });
  });

  it("RBAC, Lease, PriorityClass, IngressClass", () => {
    expect(cells("ClusterRole", obj("ClusterRole", {}, "system:x"))).toEqual({ Name: "system:x", "Created At": CREATED });
    const binding = obj("RoleBinding", { roleRef: { kind: "ClusterRole", name: "view" }, subjects: [{ kind: "User", name: "u" }, { kind: "ServiceAccount", name: "sa", namespace: "ns" }] });
    expect(cells("RoleBinding", binding)).toEqual({ Name: "x", Role: "ClusterRole/view", Age: "10m", Users: "u", Groups: "", ServiceAccounts: "ns:sa" });
    expect(cells("Lease", obj("Lease", { spec: { holderIdentity: "node-1" } }))).toEqual({ Name: "x", Holder: "node-1", Age: "10m" });
    expect(cells("PriorityClass", obj("PriorityClass", { value: 10, preemptionPolicy: "Never" }))).toEqual({ Name: "x", Value: 10, "Global-Default": false, Age: "10m", PreemptionPolicy: "Never" });
    expect(cells("IngressClass", obj("IngressClass", { spec: { controller: "k8s.io/ingress-nginx", parameters: { apiGroup: "k8s.example.com", kind: "P", name: "p" } } }))).toEqual({
      Name: "x", Controller: "k8s.io/ingress-nginx", Parameters: "P.k8s.example.com/p", Age: "10m",
    });
  });

  it("ResourceQuota, LimitRange, PersistentVolumeClaim", () => {
    const quota = obj("ResourceQuota", { status: { hard: { pods: "10", "limits.cpu": "2", "requests.cpu": "1" }, used: { pods: "3" } } });
    expect(cells("ResourceQuota", quota)).toEqual({ Name: "x", Age: "10m", Request: "pods: 3/10, requests.cpu: 0/1", Limit: "limits.cpu: 0/2" });
    expect(cells("LimitRange", obj("LimitRange"))).toEqual({ Name: "x", "Created At": CREATED });
    const pvc = obj("PersistentVolumeClaim", { spec: { volumeName: "pv-1", storageClassName: "standard" }, status: { phase: "Bound", accessModes: ["ReadWriteOnce"], capacity: { storage: "1Gi" } } });
    expect(cells("PersistentVolumeClaim", pvc)).toEqual({
      Name: "x", Status: "Bound", Volume: "pv-1", Capacity: "1Gi", "Access Modes": "RWO", StorageClass: "standard", VolumeAttributesClass: "<unset>", Age: "10m", VolumeMode: "<unset>",
    });
    expect(columnDefinitions("PersistentVolumeClaim").find((c) => c.name === "VolumeMode")!.priority).toBe(1);
  });
});

describe("OpenAPI v3 of the application kinds", () => {
  it("carries Kubernetes' definitions, with descriptions, for every served kind and what it references", () => {
    for (const r of RESOURCES) {
      const doc = openApiV3Document(groupVersionPath(r)) as { components: { schemas: Record<string, { description?: string; properties?: Record<string, unknown> }> } };
      const schema = doc.components.schemas[schemaName(r, r.kind)]!;
      expect(schema.description, r.kind).toBeTruthy();
      expect(schema.properties, r.kind).toHaveProperty("metadata");
    }
    const core = openApiV3Document("api/v1") as { components: { schemas: Record<string, { properties: Record<string, { description?: string; type?: string }> }> } };
    expect(core.components.schemas["io.k8s.api.core.v1.Container"]!.properties.ports).toMatchObject({ type: "array", description: expect.stringContaining("List of ports to expose") });
    expect(core.components.schemas["io.k8s.api.core.v1.ContainerPort"]!.properties.containerPort).toMatchObject({ type: "integer" });
  });
});

describe("semantic checks of the application kinds", () => {
  it("names: DNS subdomains, RBAC path segments", () => {
    expect(validateObject("ConfigMap", { metadata: { name: "Bad_Name", namespace: "default" } })[0]).toMatchObject({ field: "metadata.name" });
    expect(validateObject("ServiceAccount", { metadata: { name: "ok", namespace: "default" } })).toEqual([]);
    expect(validateObject("ServiceAccount", { metadata: { name: "ok" } })[0]).toMatchObject({ field: "metadata.namespace", type: "FieldValueRequired" });
    expect(validateObject("ClusterRole", { metadata: { name: "system:controller:x" } })).toEqual([]);
    expect(validateObject("ClusterRole", { metadata: { name: "a/b" } })[0]).toMatchObject({ field: "metadata.name", message: expect.stringContaining("may not contain '/'") });
    expect(validateObject("StatefulSet", { metadata: { name: "web", namespace: "default" } })).toEqual([]);
  });

  it("ConfigMap and Secret keys", () => {
    expect(validateObject("ConfigMap", { metadata: { name: "c", namespace: "d" }, data: { "bad key": "v" } })[0]).toMatchObject({ field: "data", message: expect.stringContaining("a valid config key") });
    expect(validateObject("Secret", { metadata: { name: "s", namespace: "d" }, type: "kubernetes.io/tls", data: { "tls.crt": "AA==" } })).toEqual([
      { type: "FieldValueRequired", field: "data[tls.key]", message: "Required value" },
    ]);
    const old = { metadata: { name: "s", namespace: "d", uid: "u" }, type: "Opaque", data: {} };
    expect(validateObject("Secret", { ...old, type: "other" }, old)[0]).toMatchObject({ field: "type", message: expect.stringContaining("field is immutable") });
  });

  it("Secret strategy: base64 data, stringData merged into data, type Opaque", () => {
    expect(base64Error("YWJj")).toBeUndefined();
    expect(base64Error("YQ==")).toBeUndefined();
    expect(base64Error("YWJj\nZGVm")).toBeUndefined();
    expect(base64Error("not base64!")).toBe(3);
    expect(base64Error("YWJ")).toBe(0);
    expect(base64Error("YQ==YQ==")).toBe(2);
    const merged = admitSecret(obj("Secret", { data: { a: "b25l", b: "eA==" }, stringData: { b: "two" } }));
    expect(merged).toMatchObject({ type: "Opaque", data: { a: "b25l", b: Buffer.from("two").toString("base64") } });
    expect(merged).not.toHaveProperty("stringData");
    expect(() => admitSecret(obj("Secret", { data: { k: "a b" } }))).toThrow(/illegal base64 data at input byte 1/);
  });
});

describe("the kubernetes Service (master controller)", () => {
  it("takes the first address of the service CIDR and points at the API server", () => {
    expect(kubernetesServiceIp("10.96.0.0/12")).toBe("10.96.0.1");
    const { service, endpoints, slice } = kubernetesServiceObjects("10.96.0.0/12", 6443, "192.0.2.2");
    expect(service.spec).toMatchObject({ clusterIP: "10.96.0.1", ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: 6443 }] });
    expect(endpoints.subsets).toEqual([{ addresses: [{ ip: "192.0.2.2" }], ports: [{ name: "https", port: 6443, protocol: "TCP" }] }]);
    expect(slice).toMatchObject({ addressType: "IPv4", endpoints: [{ addresses: ["192.0.2.2"] }], metadata: { labels: { "kubernetes.io/service-name": "kubernetes" } } });
  });

  it("advertises the bind address unless it is loopback or unspecified, else the first host address", () => {
    const ifaces = { lo: [{ address: "127.0.0.1", family: "IPv4", internal: true }], eth0: [{ address: "192.0.2.9", family: "IPv4", internal: false }] } as unknown as NodeJS.Dict<import("node:os").NetworkInterfaceInfo[]>;
    expect(advertiseAddress("10.1.2.3", ifaces)).toBe("10.1.2.3");
    expect(advertiseAddress("127.0.0.1", ifaces)).toBe("192.0.2.9");
    expect(advertiseAddress("0.0.0.0", ifaces)).toBe("192.0.2.9");
    expect(advertiseAddress("0.0.0.0", { lo: ifaces.lo })).toBeUndefined();
  });
});

describe("structural schemas of the application kinds", () => {
  it("rejects a wrong JSON type and reports unknown fields", () => {
    const check = checkSchema("ConfigMap", "v1", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { a: 1 }, bogus: true });
    expect(check.structural[0]).toMatchObject({ field: "data.a", expected: "string" });
    expect(check.unknown).toEqual(["bogus"]);
  });
});
