/**
 * CustomResourceDefinitions end to end, with real processes and the real kubectl: a CRD applied,
 * Established, its custom resources served (tables with the printer columns, the short name,
 * `kubectl explain`, schema validation naming the field, the status subresource, watch,
 * server-side apply, label selectors), kept across a control-plane restart, and gone with its
 * instances when the CRD is deleted. A CRD shadowing a built-in kind is refused.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApiError } from "../../cluster/kube-client.ts";
import { objectKey, resourceByKind } from "../../cluster/resources.ts";
import { OBJECTS_BUCKET } from "../../cluster/store.ts";
import { TestCluster, until } from "./fixture.ts";

let cluster: TestCluster;
const ok = (args: string[]): Promise<string> => cluster.kubectlOk(args);
const CRD = "widgets.example.kubewire.io";

const CRD_YAML = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.kubewire.io
spec:
  group: example.kubewire.io
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
    categories: [kubewire]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Phase, type: string, jsonPath: .status.phase}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size:
                type: integer
                minimum: 1
                description: How many sprockets the widget has.
              color:
                type: string
                enum: [red, blue]
                default: red
          status:
            type: object
            properties:
              phase: {type: string}
`;

function widget(name: string, spec: string, labels = ""): string {
  return `apiVersion: example.kubewire.io/v1\nkind: Widget\nmetadata:\n  name: ${name}\n${labels ? `  labels: {${labels}}\n` : ""}spec: ${spec}\n`;
}

/** A table's rows as header -> cell maps, cut at the header's column starts (an empty cell stays empty). */
function rows(out: string): Array<Record<string, string>> {
  const [header, ...lines] = out.replace(/\n+$/, "").split("\n");
  const starts = [...header!.matchAll(/\S+/g)].map((m) => ({ name: m[0], at: m.index }));
  return lines.map((l) => Object.fromEntries(starts.map((c, i) => [c.name, l.slice(c.at, starts[i + 1]?.at ?? l.length).trim()])));
}

/** kubectl with a discovery cache of its own, so what it knows of the served kinds is fresh. */
function fresh(args: string[]): string[] {
  return [`--cache-dir=${join(cluster.dir, `cache-${Math.random().toString(36).slice(2)}`)}`, ...args];
}

async function applyCrd(): Promise<void> {
  await ok(["apply", "-f", cluster.manifestFile("crd", CRD_YAML)]);
  await ok(["wait", "--for=condition=Established", `crd/${CRD}`, "--timeout=30s"]);
}

beforeAll(async () => {
  cluster = await TestCluster.start(0);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("CustomResourceDefinition", () => {
  it("is applied, listed and Established, with its accepted names", async () => {
    await applyCrd();
    const crds = rows(await ok(["get", "crd"]));
    expect(crds.map((r) => r.NAME)).toContain(CRD);
    const crd = JSON.parse(await ok(["get", "crd", CRD, "-o", "json"]));
    expect(crd.status.acceptedNames).toMatchObject({ plural: "widgets", kind: "Widget", shortNames: ["wd"], listKind: "WidgetList" });
    expect(crd.status.conditions.map((c: { type: string; status: string }) => `${c.type}=${c.status}`)).toEqual(["NamesAccepted=True", "Established=True"]);
    expect(crd.status.storedVersions).toEqual(["v1"]);
  });

  it("serves its resources: create, the printer columns by plural and by short name, defaults", async () => {
    await ok(["apply", "-f", cluster.manifestFile("w1", widget("w1", "{size: 3, color: blue}", "tier: gold"))]);
    await ok(["apply", "-f", cluster.manifestFile("w2", widget("w2", "{size: 5}", "tier: silver"))]);
    for (const name of ["widgets", "wd", "widget.example.kubewire.io"]) {
      const table = rows(await ok(["get", name]));
      expect(table.map((r) => [r.NAME, r.SIZE, r.COLOR, r.PHASE])).toEqual([
        ["w1", "3", "blue", ""],
        ["w2", "5", "red", ""],
      ]);
      expect(table[0]!.AGE).toMatch(/^\d+s$/);
    }
    expect(rows(await ok(["get", "widgets", "-l", "tier=gold"])).map((r) => r.NAME)).toEqual(["w1"]);
    expect(rows(await ok(["get", "kubewire"])).map((r) => r.NAME)).toEqual(["w1", "w2"]);
  });

  it("publishes its schema: kubectl explain shows the field", async () => {
    const out = await ok(["explain", "widget.spec"]);
    expect(out).toContain("KIND:       Widget");
    expect(out).toContain("size\t<integer> -required-");
    expect(out).toContain("How many sprockets the widget has.");
  });

  it("refuses what the schema does not allow, naming the field, and stores nothing", async () => {
    const wrong = await cluster.kubectl(["apply", "-f", cluster.manifestFile("bad-type", widget("bad", '{size: "big"}'))]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"');
    const small = await cluster.kubectl(["apply", "-f", cluster.manifestFile("bad-min", widget("bad", "{size: 0}"))]);
    expect(small.stderr).toContain('The Widget "bad" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1');
    const color = await cluster.kubectl(["apply", "-f", cluster.manifestFile("bad-enum", widget("bad", "{size: 1, color: green}"))]);
    expect(color.stderr).toContain('spec.color: Unsupported value: "green": supported values: "red", "blue"');
    const unknown = await cluster.kubectl(["apply", "-f", cluster.manifestFile("bad-field", widget("bad", "{size: 1, sprockets: 2}"))]);
    expect(unknown.stderr).toContain('unknown field "spec.sprockets"');
    const get = await cluster.kubectl(["get", "widget", "bad"]);
    expect(get.stderr).toContain('widgets.example.kubewire.io "bad" not found');
    // Pruned, not stored, when the client lets the server drop it.
    await ok(["apply", "--validate=false", "-f", cluster.manifestFile("pruned", widget("pruned", "{size: 1, sprockets: 2}"))]);
    expect(JSON.parse(await ok(["get", "widget", "pruned", "-o", "json"])).spec).toEqual({ size: 1, color: "red" });
    await ok(["delete", "widget", "pruned"]);
  });

  it("updates status only through the status subresource, and ignores status on the main resource", async () => {
    await ok(["patch", "widget", "w1", "--subresource=status", "--type=merge", "-p", '{"status":{"phase":"Ready"},"spec":{"size":9}}']);
    let w1 = JSON.parse(await ok(["get", "widget", "w1", "-o", "json"]));
    expect(w1.status).toEqual({ phase: "Ready" });
    expect(w1.spec.size).toBe(3);
    await ok(["patch", "widget", "w1", "--type=merge", "-p", '{"spec":{"size":4},"status":{"phase":"Lost"}}']);
    w1 = JSON.parse(await ok(["get", "widget", "w1", "-o", "json"]));
    expect(w1.spec.size).toBe(4);
    expect(w1.status).toEqual({ phase: "Ready" });
    expect(rows(await ok(["get", "wd", "w1"]))[0]).toMatchObject({ NAME: "w1", SIZE: "4", PHASE: "Ready" });
    await ok(["patch", "widget", "w1", "--type=json", "-p", '[{"op":"replace","path":"/spec/size","value":3}]']);
    const badStatus = await cluster.kubectl(["patch", "widget", "w1", "--subresource=status", "--type=merge", "-p", '{"status":{"phase":7}}']);
    expect(badStatus.stderr).toContain('status.phase: Invalid value: "integer": status.phase in body must be of type string: "integer"');
  });

  it("takes server-side apply, with conflicts between managers", async () => {
    await ok(["apply", "--server-side", "--field-manager=ops", "-f", cluster.manifestFile("w3", widget("w3", "{size: 2}"))]);
    const conflict = await cluster.kubectl(["apply", "--server-side", "--field-manager=other", "-f", cluster.manifestFile("w3b", widget("w3", "{size: 7}"))]);
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toContain('conflict with "ops"');
    await ok(["apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", cluster.manifestFile("w3b", widget("w3", "{size: 7}"))]);
    expect(JSON.parse(await ok(["get", "widget", "w3", "-o", "json"])).spec.size).toBe(7);
  });

  it("delivers watch events", async () => {
    const child = spawn("kubectl", ["get", "widgets", "--watch", "--output-watch-events", "--request-timeout=60s"], { env: { ...process.env, KUBECONFIG: cluster.kubeconfig } });
    // One listener for the child's whole life (data emitted with none attached would be lost).
    let out = "";
    const waiters = new Set<() => void>();
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      for (const w of waiters) w();
    });
    const seen = (want: RegExp, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!want.test(out)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`watch did not show ${want}; it showed:\n${out}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    try {
      await seen(/^ADDED\s+w1\s/m);
      await ok(["patch", "widget", "w2", "--type=merge", "-p", '{"spec":{"size":6}}']);
      await seen(/^MODIFIED\s+w2\s+6\s/m);
      await ok(["delete", "widget", "w3"]);
      await seen(/^DELETED\s+w3\s/m);
    } finally {
      child.kill();
    }
  });

  it("applies an updated schema to new writes, and lets what is stored be", async () => {
    await ok(["apply", "-f", cluster.manifestFile("crd-max", CRD_YAML.replace("minimum: 1\n", "minimum: 1\n                maximum: 5\n"))]);
    // The served schema follows the CRD's watch: wait until the new bound is enforced.
    const deadline = Date.now() + 30_000;
    let res = await cluster.kubectl(["apply", "-f", cluster.manifestFile("w5", widget("w5", "{size: 6}"))]);
    while (res.code === 0 && Date.now() < deadline) {
      await ok(["delete", "widget", "w5"]);
      await new Promise((r) => setTimeout(r, 200));
      res = await cluster.kubectl(["apply", "-f", cluster.manifestFile("w5", widget("w5", "{size: 6}"))]);
    }
    expect(res.stderr).toContain("spec.size: Invalid value: 6: spec.size in body should be less than or equal to 5");
    // w2 (size 6) is still served, and a change that leaves its size alone is taken.
    await ok(["label", "widget", "w2", "checked=yes"]);
    expect(rows(await ok(["get", "wd", "-l", "checked=yes"])).map((r) => [r.NAME, r.SIZE])).toEqual([["w2", "6"]]);
    await ok(["apply", "-f", cluster.manifestFile("crd", CRD_YAML)]);
  });

  it("refuses a CRD that would shadow a built-in kind", async () => {
    const shadow = CRD_YAML.replaceAll("widgets.example.kubewire.io", "networkpolicies.networking.k8s.io")
      .replace("group: example.kubewire.io", "group: networking.k8s.io")
      .replace("plural: widgets", "plural: networkpolicies")
      .replace("  name: networkpolicies.networking.k8s.io\n", "  name: networkpolicies.networking.k8s.io\n  annotations: {api-approved.kubernetes.io: unapproved}\n");
    const res = await cluster.kubectl(["apply", "-f", cluster.manifestFile("shadow", shadow)]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('spec.names.plural: Forbidden: the built-in resource "networkpolicies.networking.k8s.io" is served by this API server; a CustomResourceDefinition may not shadow it');
  });

  it("keeps serving the CRD and its resources after a control-plane restart", async () => {
    // Two stored CRDs the API would never have taken: one that does not decode, one that does not validate.
    const kv = await cluster.nc.jetstream().views.kv(OBJECTS_BUCKET);
    const crds = resourceByKind("CustomResourceDefinition");
    await kv.put(objectKey(crds, undefined, "garbage.example.io"), "{not json");
    const invalid = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: "gadgets.example.io", uid: "u1", creationTimestamp: "2026-01-01T00:00:00Z" }, spec: { group: 7, versions: "v1" } };
    await kv.put(objectKey(crds, undefined, "gadgets.example.io"), JSON.stringify({ type: "ADDED", object: invalid }));
    await cluster.stopProcess("control-plane");
    cluster.startControlPlane();
    await cluster.waitForApi();
    expect(rows(await ok(fresh(["get", "wd"]))).map((r) => [r.NAME, r.SIZE, r.PHASE])).toEqual([
      ["w1", "3", "Ready"],
      ["w2", "6", ""],
    ]);
    await until("the invalid CRD logged", () => (readFileSync(cluster.procs.get("control-plane")!.logFile, "utf8").includes("stored CustomResourceDefinition is invalid; not served") ? true : undefined));
    await ok(["apply", "-f", cluster.manifestFile("w4", widget("w4", "{size: 1}"))]);
    expect(rows(await ok(["get", "crd"])).map((r) => r.NAME)).toEqual(["gadgets.example.io", CRD]);
    // Deleting the invalid one removes it (it was never served: nothing else to clean up).
    await ok(["delete", "crd", "gadgets.example.io", "--timeout=30s"]);
    await kv.delete(objectKey(crds, undefined, "garbage.example.io"));
  });

  it("is deleted with its instances, and its resources are no longer served", async () => {
    await ok(["delete", "crd", CRD, "--timeout=60s"]);
    // A kubectl whose discovery cache (6 h) still lists widgets asks anyway, and gets a 404, as
    // from kube-apiserver; one that discovers afresh no longer knows the resource type.
    const stale = await cluster.kubectl(["get", "widgets"]);
    expect(stale.stderr).toContain("the server could not find the requested resource");
    const gone = await cluster.kubectl(fresh(["get", "widgets"]));
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('the server doesn\'t have a resource type "widgets"');
    const raw = await cluster.kube.request("GET", "/apis/example.kubewire.io/v1/namespaces/default/widgets").catch((e: unknown) => e);
    expect(raw).toBeInstanceOf(KubeApiError);
    expect((raw as KubeApiError).status.code).toBe(404);
    const groups = await cluster.kube.request<{ groups: Array<{ name: string }> }>("GET", "/apis");
    expect(groups.groups.map((g) => g.name)).not.toContain("example.kubewire.io");
    // Defined again, it starts empty: the instances went with the CRD.
    await applyCrd();
    const again = await cluster.kubectl(fresh(["get", "widgets"]));
    expect(again.stdout + again.stderr).toContain("No resources found in default namespace.");
  });
});
