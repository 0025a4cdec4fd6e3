/**
 * Server-side apply with the real kubectl against a 1-node cluster: `kubectl apply --server-side`
 * creates, re-applies unchanged as a no-op, conflicts with the manager of `kubectl scale` on
 * .spec.replicas, takes the field over with --force-conflicts, shows both managers in
 * --show-managed-fields, and --dry-run=server changes nothing.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { TestCluster } from "./fixture.ts";

let cluster: TestCluster;
const ok = (args: string[]): Promise<string> => cluster.kubectlOk(args);
let manifest = "";

function deploymentYaml(replicas: number, extraLabel?: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ssa-web
  namespace: default
  labels:
    app: ssa-web${extraLabel ? `\n    ${extraLabel}: "yes"` : ""}
spec:
  replicas: ${replicas}
  selector:
    matchLabels:
      app: ssa-web
  template:
    metadata:
      labels:
        app: ssa-web
    spec:
      containers:
        - name: web
          image: registry.k8s.io/e2e-test-images/agnhost:2.47
          args: ["netexec", "--http-port=8080"]
          ports:
            - containerPort: 8080
`;
}

function write(yaml: string): string {
  writeFileSync(manifest, yaml);
  return manifest;
}

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 1 });
  manifest = join(cluster.dir, "ssa-deploy.yaml");
});

afterAll(async () => {
  await cluster?.stop();
});


interface Entry {
  manager: string;
  operation: string;
  apiVersion: string;
  subresource?: string;
  fieldsType: string;
  fieldsV1: Record<string, Record<string, unknown>>;
}

async function deployment(): Promise<{ metadata: { resourceVersion: string; managedFields?: Entry[]; labels?: Record<string, string> }; spec: { replicas: number } }> {
  return parseYaml(await ok(["get", "deployment/ssa-web", "-o", "yaml", "--show-managed-fields"]));
}

describe("kubectl apply --server-side", () => {
  it("creates the object, owned by the kubectl manager", async () => {
    const out = await ok(["apply", "--server-side", "-f", write(deploymentYaml(3))]);
    expect(out).toContain("deployment.apps/ssa-web serverside-applied");
    const d = await deployment();
    expect(d.spec.replicas).toBe(3);
    const apply = d.metadata.managedFields?.find((e) => e.operation === "Apply");
    expect(apply).toMatchObject({ manager: "kubectl", apiVersion: "apps/v1", fieldsType: "FieldsV1" });
    expect(apply!.fieldsV1["f:spec"]).toMatchObject({ "f:replicas": {}, "f:template": { "f:spec": { "f:containers": { 'k:{"name":"web"}': { ".": {}, "f:image": {} } } } } });
    // Without --show-managed-fields kubectl hides them.
    expect(await ok(["get", "deployment/ssa-web", "-o", "yaml"])).not.toContain("managedFields");
  });

  it("re-applying unchanged is a no-op", async () => {
    const before = (await deployment()).metadata.resourceVersion;
    await ok(["apply", "--server-side", "-f", write(deploymentYaml(3))]);
    expect((await deployment()).metadata.resourceVersion).toBe(before);
  });

  it("conflicts with kubectl scale on .spec.replicas, and --force-conflicts takes it over", async () => {
    await ok(["scale", "deployment/ssa-web", "--replicas=5"]);
    const scaled = await deployment();
    expect(scaled.spec.replicas).toBe(5);
    const managers = scaled.metadata.managedFields!.map((e) => `${e.manager}/${e.operation}${e.subresource ? `/${e.subresource}` : ""}`);
    expect(managers).toEqual(expect.arrayContaining(["kubectl/Apply", "kubectl/Update/scale"]));

    const res = await cluster.kubectl(["apply", "--server-side", "-f", write(deploymentYaml(3))]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("Apply failed with 1 conflict");
    expect(res.stderr).toContain(".spec.replicas");
    expect((await deployment()).spec.replicas).toBe(5);

    // A dry run, even forced, changes nothing.
    const rv = (await deployment()).metadata.resourceVersion;
    await ok(["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", write(deploymentYaml(3, "dry"))]);
    const after = await deployment();
    expect(after.metadata.resourceVersion).toBe(rv);
    expect(after.spec.replicas).toBe(5);
    expect(after.metadata.labels?.dry).toBeUndefined();

    await ok(["apply", "--server-side", "--force-conflicts", "-f", write(deploymentYaml(3))]);
    const forced = await deployment();
    expect(forced.spec.replicas).toBe(3);
    const apply = forced.metadata.managedFields!.find((e) => e.operation === "Apply")!;
    expect(apply.fieldsV1["f:spec"]!["f:replicas"]).toEqual({});
    expect(forced.metadata.managedFields!.some((e) => e.subresource === "scale")).toBe(false);
  });

  it("shows both managers after an ordinary write, and removes a field the applier dropped", async () => {
    await ok(["label", "deployment/ssa-web", "team=blue"]);
    await ok(["apply", "--server-side", "-f", write(deploymentYaml(3, "tier"))]);
    const d = await deployment();
    const names = d.metadata.managedFields!.map((e) => `${e.manager}/${e.operation}`);
    expect(names).toContain("kubectl/Apply");
    expect(names.some((n) => n.endsWith("/Update"))).toBe(true);
    expect(d.metadata.labels).toMatchObject({ app: "ssa-web", tier: "yes", team: "blue" });
    const yaml = await ok(["get", "deployment/ssa-web", "-o", "yaml", "--show-managed-fields"]);
    expect(yaml).toContain("managedFields:");
    expect(yaml).toContain("operation: Apply");
    expect(yaml).toContain("operation: Update");

    await ok(["apply", "--server-side", "-f", write(deploymentYaml(3))]);
    expect((await deployment()).metadata.labels).toEqual({ app: "ssa-web", team: "blue" });
  });

  it("takes over an object created by client-side kubectl apply without conflicts", async () => {
    const csa = deploymentYaml(2).replaceAll("ssa-web", "csa-web");
    await ok(["apply", "-f", write(csa)]);
    const out = await ok(["apply", "--server-side", "-f", write(csa)]);
    expect(out).toContain("deployment.apps/csa-web serverside-applied");
    const d = parseYaml(await ok(["get", "deployment/csa-web", "-o", "yaml", "--show-managed-fields"])) as { metadata: { managedFields: Entry[] } };
    expect(d.metadata.managedFields.map((e) => `${e.manager}/${e.operation}`)).toContain("kubectl/Apply");
    await ok(["delete", "deployment/csa-web", "--wait=false"]);
  });
});
