/**
 * The kinds application manifests carry besides Deployments and Services (issue item 3), with
 * the real kubectl against a 2-node cluster: `kubectl create configmap/secret/serviceaccount`,
 * tables for them, `kubectl explain` from the OpenAPI v3 schemas, a demo app's manifest applied
 * unchanged, the `kubernetes` Service, and discovery with short names.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { TestCluster } from "./fixture.ts";

const DEMO = join(import.meta.dirname, "manifests/demo-app.yaml");

let cluster: TestCluster;
const ok = (args: string[]): Promise<string> => cluster.kubectlOk(args);


async function until(args: string[], want: (out: string) => boolean, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const res = await cluster.kubectl(args);
    last = res.stdout + res.stderr;
    if (res.code === 0 && want(res.stdout)) return res.stdout;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting on kubectl ${args.join(" ")}; last output:\n${last}`);
}

/** A table's rows as header -> cell maps (kubectl separates columns by 3 spaces or more). */
function rows(out: string): Array<Record<string, string>> {
  const [header, ...lines] = out.trim().split("\n");
  const cols = header!.trim().split(/\s{2,}/);
  return lines.map((l) => Object.fromEntries(l.trim().split(/\s{2,}/).map((c, i) => [cols[i] ?? String(i), c])));
}

beforeAll(async () => {
  cluster = await TestCluster.start(2);
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("application kinds through kubectl", () => {
  it("lists the new kinds in api-resources with their short names, groups and scopes", async () => {
    const out = await ok(["api-resources", "--no-headers"]);
    const byName = new Map(out.trim().split("\n").map((l) => { const f = l.trim().split(/\s+/); return [f[0]!, f] as const; }));
    for (const [name, short, gv, namespaced, kind] of [
      ["serviceaccounts", "sa", "v1", "true", "ServiceAccount"],
      ["configmaps", "cm", "v1", "true", "ConfigMap"],
      ["statefulsets", "sts", "apps/v1", "true", "StatefulSet"],
      ["daemonsets", "ds", "apps/v1", "true", "DaemonSet"],
      ["cronjobs", "cj", "batch/v1", "true", "CronJob"],
      ["horizontalpodautoscalers", "hpa", "autoscaling/v2", "true", "HorizontalPodAutoscaler"],
      ["poddisruptionbudgets", "pdb", "policy/v1", "true", "PodDisruptionBudget"],
      ["priorityclasses", "pc", "scheduling.k8s.io/v1", "false", "PriorityClass"],
      ["limitranges", "limits", "v1", "true", "LimitRange"],
      ["resourcequotas", "quota", "v1", "true", "ResourceQuota"],
      ["persistentvolumeclaims", "pvc", "v1", "true", "PersistentVolumeClaim"],
    ]) {
      expect(byName.get(name!), name).toEqual([name, short, gv, namespaced, kind]);
    }
    for (const [name, gv, namespaced, kind] of [
      ["secrets", "v1", "true", "Secret"],
      ["jobs", "batch/v1", "true", "Job"],
      ["roles", "rbac.authorization.k8s.io/v1", "true", "Role"],
      ["clusterrolebindings", "rbac.authorization.k8s.io/v1", "false", "ClusterRoleBinding"],
      ["leases", "coordination.k8s.io/v1", "true", "Lease"],
      ["ingressclasses", "networking.k8s.io/v1", "false", "IngressClass"],
    ]) {
      expect(byName.get(name!), name).toEqual([name, gv, namespaced, kind]);
    }
  });

  it("creates a configmap, a secret and a serviceaccount, and prints their tables", async () => {
    await ok(["create", "configmap", "settings", "--from-literal=color=blue", "--from-literal=size=2"]);
    await ok(["create", "secret", "generic", "creds", "--from-literal=user=admin", "--from-literal=password=s3cret"]);
    await ok(["create", "serviceaccount", "robot"]);
    expect(await ok(["get", "cm", "settings", "-o", "jsonpath={.data.color}"])).toBe("blue");
    expect(Buffer.from(await ok(["get", "secret", "creds", "-o", "jsonpath={.data.password}"]), "base64").toString()).toBe("s3cret");

    const out = await ok(["get", "cm,secret,sa"]);
    expect(out).toMatch(/NAME\s+DATA\s+AGE/);
    expect(out).toMatch(/configmap\/settings\s+2\s+\d+s/);
    expect(out).toMatch(/NAME\s+TYPE\s+DATA\s+AGE/);
    expect(out).toMatch(/secret\/creds\s+Opaque\s+2\s+\d+s/);
    expect(out).toMatch(/NAME\s+SECRETS\s+AGE/);
    expect(out).toMatch(/serviceaccount\/robot\s+0\s+\d+s/);
  });

  it("merges a Secret's stringData into data and rejects data that is not base64", async () => {
    const manifest = JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "mixed" }, data: { a: Buffer.from("one").toString("base64") }, stringData: { b: "two" } });
    const res = await cluster.kubectl(["create", "-f", `data:,${encodeURIComponent(manifest)}`]);
    // kubectl reads files, not data: URLs; write it out instead when that fails.
    if (res.code !== 0) {
      const { writeFileSync } = await import("node:fs");
      const file = join(cluster.dir, "mixed.json");
      writeFileSync(file, manifest);
      await ok(["create", "-f", file]);
    }
    const got = JSON.parse(await ok(["get", "secret", "mixed", "-o", "json"])) as { data: Record<string, string>; stringData?: unknown; type: string };
    expect(got.stringData).toBeUndefined();
    expect(got.type).toBe("Opaque");
    expect(Object.fromEntries(Object.entries(got.data).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]))).toEqual({ a: "one", b: "two" });

    const { writeFileSync } = await import("node:fs");
    const bad = join(cluster.dir, "bad-secret.json");
    writeFileSync(bad, JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "bad" }, data: { k: "not base64!" } }));
    const rejected = await cluster.kubectl(["create", "-f", bad]);
    expect(rejected.code).not.toBe(0);
    expect(rejected.stderr).toContain("illegal base64 data at input byte");
  });

  it("explains fields with descriptions from the OpenAPI v3 schemas", async () => {
    const containers = await ok(["explain", "pod.spec.containers"]);
    expect(containers).toContain("FIELDS:");
    expect(containers).toMatch(/ports\s+<\[\]ContainerPort>/);
    expect(containers).toContain("List of ports to expose from the container.");
    const strategy = await ok(["explain", "deployment.spec.strategy"]);
    expect(strategy).toMatch(/rollingUpdate\s+<RollingUpdateDeployment>/);
    expect(strategy).toMatch(/type\s+<string>/);
  });

  it("applies a demo app's ServiceAccount, ConfigMap, Deployment and Service unchanged; its pods run and the Service gets endpoints", async () => {
    const applied = await ok(["apply", "-f", DEMO]);
    expect(applied).toContain("serviceaccount/frontend created");
    expect(applied).toContain("configmap/frontend-config created");
    expect(applied).toContain("deployment.apps/frontend created");
    expect(applied).toContain("service/frontend created");
    await until(["get", "deploy", "frontend", "-o", "jsonpath={.status.readyReplicas}"], (o) => o === "2");
    const slices = await until(["get", "endpointslices", "-l", "kubernetes.io/service-name=frontend"], (o) => rows(o).some((r) => r.ENDPOINTS !== undefined && /\d+\.\d+\.\d+\.\d+/.test(r.ENDPOINTS) && r.ENDPOINTS.split(",").length === 2));
    expect(rows(slices)[0]).toMatchObject({ ADDRESSTYPE: "IPv4", PORTS: "8080" });
    // Re-applying the same manifest changes nothing.
    const again = await ok(["apply", "-f", DEMO]);
    expect(again).toContain("serviceaccount/frontend unchanged");
    expect(again).toContain("configmap/frontend-config unchanged");
  });

  it("serves the kubernetes Service in default, with endpoints at the API server", async () => {
    const svc = rows(await ok(["get", "svc", "kubernetes", "-n", "default"]))[0]!;
    expect(svc).toMatchObject({ NAME: "kubernetes", TYPE: "ClusterIP", "CLUSTER-IP": "10.96.0.1", "PORT(S)": "443/TCP" });
    const slice = JSON.parse(await ok(["get", "endpointslice", "kubernetes", "-n", "default", "-o", "json"])) as { endpoints: Array<{ addresses: string[] }>; ports: Array<{ port: number }> };
    expect(slice.ports[0]!.port).toBe(cluster.apiPort);
    expect(slice.endpoints[0]!.addresses[0]).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const ep = JSON.parse(await ok(["get", "endpoints", "kubernetes", "-n", "default", "-o", "json"])) as { subsets: Array<{ ports: Array<{ port: number }> }> };
    expect(ep.subsets[0]!.ports[0]!.port).toBe(cluster.apiPort);
  });

  it("prints server-side tables for the other new kinds", async () => {
    const { writeFileSync } = await import("node:fs");
    const file = join(cluster.dir, "more.yaml");
    writeFileSync(
      file,
      [
        { apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name: "frontend" }, spec: { minAvailable: 1, selector: { matchLabels: { app: "frontend" } } } },
        { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "system:demo:reader" }, rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }] },
        { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "reader" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:demo:reader" }, subjects: [{ kind: "ServiceAccount", name: "frontend", namespace: "default" }] },
        { apiVersion: "scheduling.k8s.io/v1", kind: "PriorityClass", metadata: { name: "high" }, value: 1000 },
        { apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler", metadata: { name: "frontend" }, spec: { scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "frontend" }, minReplicas: 1, maxReplicas: 5, metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } } }] } },
      ]
        .map((o) => stringify(o))
        .join("---\n"),
    );
    await ok(["apply", "-f", file]);
    expect(rows(await ok(["get", "pdb", "frontend"]))[0]).toMatchObject({ NAME: "frontend", "MIN AVAILABLE": "1", "MAX UNAVAILABLE": "N/A" });
    expect(rows(await ok(["get", "rolebinding", "reader"]))[0]).toMatchObject({ NAME: "reader", ROLE: "ClusterRole/system:demo:reader" });
    expect(rows(await ok(["get", "pc", "high"]))[0]).toMatchObject({ NAME: "high", VALUE: "1000", "GLOBAL-DEFAULT": "false" });
    expect(rows(await ok(["get", "hpa", "frontend"]))[0]).toMatchObject({ REFERENCE: "Deployment/frontend", TARGETS: "cpu: <unknown>/80%", MINPODS: "1", MAXPODS: "5" });
    const bad = await cluster.kubectl(["create", "configmap", "Bad_Name"]);
    expect(bad.stderr).toContain("a lowercase RFC 1123 subdomain");
  });
});
