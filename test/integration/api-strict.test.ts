/**
 * Structural validation end to end, through the real kubectl: manifests with a wrong JSON type
 * anywhere are answered 422 naming the field and nothing is stored; an unknown field is a
 * warning with --validate=warn, a 400 with --validate=strict, and never stored.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { KubeApiError } from "../../cluster/kube-client.ts";
import { TestCluster } from "./fixture.ts";

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start(1);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

function manifest(name: string, text: string): string {
  return cluster.manifestFile(name, text);
}

const CASES: Array<{ what: string; resource: string; field: string; yaml: string }> = [
  {
    what: "a pod named by a number",
    resource: "pods",
    field: 'metadata.name: Invalid value: "integer": metadata.name in body must be of type string: "integer"',
    yaml: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: 12\nspec:\n  containers:\n  - name: c\n    image: nginx\n",
  },
  {
    what: "labels as an array",
    resource: "pods",
    field: 'metadata.labels: Invalid value: "array": metadata.labels in body must be of type object: "array"',
    yaml: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: labels\n  labels: [app]\nspec:\n  containers:\n  - name: c\n    image: nginx\n",
  },
  {
    what: "ports as an object",
    resource: "pods",
    field: 'spec.containers[0].ports: Invalid value: "object": spec.containers[0].ports in body must be of type array: "object"',
    yaml: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ports\nspec:\n  containers:\n  - name: c\n    image: nginx\n    ports:\n      containerPort: 80\n",
  },
  {
    what: "tolerations as a string",
    resource: "pods",
    field: 'spec.tolerations: Invalid value: "string": spec.tolerations in body must be of type array: "string"',
    yaml: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: tolerations\nspec:\n  tolerations: node.kubernetes.io/not-ready\n  containers:\n  - name: c\n    image: nginx\n",
  },
  {
    what: "replicas as a string",
    resource: "deployments",
    field: 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
    yaml: 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: replicas\nspec:\n  replicas: "3"\n  selector:\n    matchLabels: {app: r}\n  template:\n    metadata:\n      labels: {app: r}\n    spec:\n      containers:\n      - name: c\n        image: nginx\n',
  },
  {
    what: "a Service selector as an array",
    resource: "services",
    field: 'spec.selector: Invalid value: "array": spec.selector in body must be of type object: "array"',
    yaml: "apiVersion: v1\nkind: Service\nmetadata:\n  name: selector\nspec:\n  selector: [app]\n  ports:\n  - port: 80\n",
  },
];

describe("structural validation through kubectl", () => {
  for (const c of CASES) {
    it(`rejects ${c.what} with 422 naming the field, and stores nothing`, async () => {
      const file = manifest(c.resource + c.what.replaceAll(" ", "-"), c.yaml);
      const path = `/${c.resource === "deployments" ? "apis/apps/v1" : "api/v1"}/namespaces/default/${c.resource}`;
      if (!c.field.startsWith("metadata.")) {
        // --validate=false: what the server does with it, not kubectl's own checks. (kubectl
        // cannot even decode a manifest whose metadata has a wrong type: those go --raw only.)
        const res = await cluster.kubectl(["apply", "--validate=false", "-f", file]);
        expect(res.code, res.stdout + res.stderr).not.toBe(0);
        expect(res.stderr).toContain(" is invalid: ");
        expect(res.stderr).toContain(c.field);
      }
      const json = cluster.manifestFile(`${c.resource}-${c.field.split(":")[0]}`, JSON.stringify(parseYaml(c.yaml)));
      const raw = await cluster.kubectl(["create", "--raw", path, "-f", json]);
      expect(raw.code, raw.stdout + raw.stderr).not.toBe(0);
      expect(raw.stderr).toContain(c.field);
      // The same body straight to the API: a 422 Status with a typed cause.
      const err = await cluster.kube.request("POST", path, parseYaml(c.yaml)).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(KubeApiError);
      const status = (err as KubeApiError).status as { code: number; reason: string; details?: { causes?: Array<{ reason: string; field: string }> } };
      expect(status.code).toBe(422);
      expect(status.reason).toBe("Invalid");
      expect(status.details?.causes?.[0]).toMatchObject({ reason: "FieldValueTypeInvalid", field: c.field.split(":")[0] });
      const got = await cluster.kubectl(["get", c.resource, "-n", "default", "-o", "name"]);
      expect(got.code, got.stderr).toBe(0);
      // Only the control plane's own `kubernetes` Service lives there.
      expect(got.stdout.trim().split("\n").filter((l) => l !== "" && l !== "service/kubernetes")).toEqual([]);
    });
  }

  it("lists pods fine after all that (nothing malformed was stored)", async () => {
    const res = await cluster.kubectl(["get", "pods", "-A"]);
    expect(res.code, res.stderr).toBe(0);
  });
});

describe("fieldValidation through kubectl", () => {
  const withUnknown = "apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\nspec:\n  foo: bar\n  selector:\n    app: web\n  ports:\n  - port: 80\n    bogus: 1\n";

  it("create --validate=strict rejects an unknown field with 400, and stores nothing", async () => {
    const file = manifest("strict", withUnknown);
    const res = await cluster.kubectl(["create", "--validate=strict", "-f", file]);
    expect(res.code, res.stdout + res.stderr).not.toBe(0);
    expect(res.stderr).toContain("BadRequest");
    expect(res.stderr).toContain('strict decoding error: unknown field "spec.foo", unknown field "spec.ports[0].bogus"');
    const got = await cluster.kubectl(["get", "services", "extra", "-n", "default"]);
    expect(got.code).not.toBe(0);
    expect(got.stderr).toContain("NotFound");
  });

  it("apply --validate=warn prints a warning per unknown field and stores the object without them", async () => {
    const file = manifest("warn", withUnknown);
    const res = await cluster.kubectl(["apply", "--validate=warn", "-f", file]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stderr).toContain('Warning: unknown field "spec.foo"');
    expect(res.stderr).toContain('Warning: unknown field "spec.ports[0].bogus"');
    expect(res.stdout).toContain("service/extra created");
    const got = await cluster.kubectl(["get", "service", "extra", "-n", "default", "-o", "json"]);
    expect(got.code, got.stderr).toBe(0);
    const svc = JSON.parse(got.stdout) as { spec: Record<string, unknown> & { ports: Array<Record<string, unknown>> } };
    expect(svc.spec.foo).toBeUndefined();
    expect(svc.spec.ports[0]!.bogus).toBeUndefined();
    // A re-apply through PATCH gets the same treatment.
    const again = await cluster.kubectl(["apply", "--validate=warn", "-f", manifest("warn2", withUnknown.replace("foo: bar", "foo: baz"))]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stderr).toContain('Warning: unknown field "spec.foo"');
  });

  it("apply --validate=ignore says nothing", async () => {
    const file = manifest("ignore", withUnknown.replace("name: extra", "name: extra2"));
    const res = await cluster.kubectl(["apply", "--validate=ignore", "-f", file]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stderr).not.toContain("Warning");
  });

  it("kubectl's default (strict) rejects an unknown field", async () => {
    const file = manifest("default", withUnknown.replace("name: extra", "name: extra3"));
    const res = await cluster.kubectl(["apply", "-f", file]);
    expect(res.code, res.stdout + res.stderr).not.toBe(0);
    expect(res.stderr).toContain('unknown field "spec.foo"');
  });
});
