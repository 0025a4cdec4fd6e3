import { describe, expect, it } from "vitest";
import {
  groupVersionPath,
  openApiV3Document,
  openApiV3DocumentJson,
  openApiV3Hash,
  openApiV3Root,
  schemaName,
} from "../../../control-plane/api/openapi.ts";
import { RESOURCES, groupVersions } from "../../../cluster/resources.ts";

type Doc = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, Record<string, unknown>> };
};
type Param = { name: string; in: string; schema: { type: string; uniqueItems?: boolean } };
type Op = {
  operationId: string;
  parameters?: Param[];
  requestBody?: { content: Record<string, unknown> };
  "x-kubernetes-action": string;
  "x-kubernetes-group-version-kind": { group: string; version: string; kind: string };
};

function doc(path: string): Doc {
  const d = openApiV3Document(path);
  expect(d).toBeDefined();
  return d as Doc;
}

/** What kubectl's queryParamVerifierV3 does: the PATCH op of the GVK, and whether it lists the param. */
function patchSupports(d: Doc, gvk: { group: string; version: string; kind: string }, param: string): boolean | undefined {
  for (const item of Object.values(d.paths)) {
    const op = item.patch as Op | undefined;
    if (!op) continue;
    const g = op["x-kubernetes-group-version-kind"];
    if (g.group !== gvk.group || g.version !== gvk.version || g.kind !== gvk.kind) continue;
    return (op.parameters ?? []).some((p) => p.name === param);
  }
  return undefined;
}

describe("openApiV3Root", () => {
  it("lists every served group/version with a hashed serverRelativeURL", () => {
    const root = openApiV3Root();
    const expected = groupVersions().map(groupVersionPath);
    expect(Object.keys(root.paths).sort()).toEqual([...expected].sort());
    expect(expected).toContain("api/v1");
    expect(expected).toContain("apis/apps/v1");
    for (const [path, entry] of Object.entries(root.paths)) {
      expect(entry.serverRelativeURL).toMatch(new RegExp(`^/openapi/v3/${path.replaceAll("/", "\\/")}\\?hash=[0-9A-F]{128}$`));
      expect(entry.serverRelativeURL).toContain("?hash=");
      expect(entry.serverRelativeURL.endsWith(`hash=${openApiV3Hash(path)}`)).toBe(true);
    }
  });

  it("is stable across calls, and each document's hash differs", () => {
    expect(openApiV3Root()).toEqual(openApiV3Root());
    const hashes = groupVersions().map((gv) => openApiV3Hash(groupVersionPath(gv)));
    expect(new Set(hashes).size).toBe(hashes.length);
    expect(JSON.stringify(openApiV3Document("apis/apps/v1"))).toBe(openApiV3DocumentJson("apis/apps/v1"));
  });
});

describe("openApiV3Document", () => {
  it("is an OpenAPI 3.0 document", () => {
    const d = doc("api/v1");
    expect(d.openapi).toBe("3.0.0");
    expect(d.info).toEqual({ title: "Kubernetes", version: "v1.30.0" });
  });

  it("has a PATCH for Deployment that takes fieldValidation in the query (kubectl's server-side validation check)", () => {
    const d = doc("apis/apps/v1");
    const item = d.paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    expect(item).toBeDefined();
    const patch = item!.patch as Op;
    expect(patch["x-kubernetes-group-version-kind"]).toEqual({ group: "apps", version: "v1", kind: "Deployment" });
    expect(patch["x-kubernetes-action"]).toBe("patch");
    expect(patch.operationId).toBe("patchAppsV1NamespacedDeployment");
    for (const name of ["dryRun", "fieldManager", "fieldValidation"]) {
      expect(patch.parameters).toContainEqual(expect.objectContaining({ name, in: "query", schema: { type: "string", uniqueItems: true } }));
    }
    expect(Object.keys(patch.requestBody!.content)).toEqual(expect.arrayContaining(["application/json-patch+json", "application/merge-patch+json"]));
    expect(patchSupports(d, { group: "apps", version: "v1", kind: "Deployment" }, "fieldValidation")).toBe(true);
    expect(patchSupports(d, { group: "apps", version: "v1", kind: "ReplicaSet" }, "fieldValidation")).toBe(true);
  });

  it("does not advertise strategic merge patch (kubectl would compute it from the field-less schemas)", () => {
    const d = doc("apis/apps/v1");
    for (const item of Object.values(d.paths)) {
      const patch = item.patch as Op | undefined;
      if (patch) expect(patch.requestBody!.content).not.toHaveProperty(["application/strategic-merge-patch+json"]);
    }
  });

  it("serves every verb of every resource, with the GVK and action on each operation", () => {
    for (const gv of groupVersions()) {
      const d = doc(groupVersionPath(gv));
      for (const r of RESOURCES.filter((x) => x.group === gv.group && x.version === gv.version)) {
        const base = `/${groupVersionPath(r)}${r.namespaced ? "/namespaces/{namespace}" : ""}/${r.plural}`;
        const collection = d.paths[base];
        const item = d.paths[`${base}/{name}`];
        expect(collection, base).toBeDefined();
        expect(item, `${base}/{name}`).toBeDefined();
        const gvk = { group: r.group, version: r.version, kind: r.kind };
        const ops: Array<[Record<string, unknown>, string, string]> = [
          [collection!, "get", "list"],
          [collection!, "post", "post"],
          [item!, "get", "get"],
          [item!, "put", "put"],
          [item!, "patch", "patch"],
          [item!, "delete", "delete"],
        ];
        for (const [path, method, action] of ops) {
          const op = path[method] as Op;
          expect(op["x-kubernetes-group-version-kind"]).toEqual(gvk);
          expect(op["x-kubernetes-action"]).toBe(action);
          if (["post", "put", "patch"].includes(method)) {
            expect(op.parameters!.map((p) => p.name)).toEqual(expect.arrayContaining(["dryRun", "fieldManager", "fieldValidation"]));
          }
        }
        expect(patchSupports(d, gvk, "fieldValidation")).toBe(true);
        expect(patchSupports(d, gvk, "dryRun")).toBe(true);

        const schema = d.components.schemas[schemaName(r, r.kind)];
        expect(schema).toMatchObject({ type: "object", "x-kubernetes-group-version-kind": [gvk] });
        // Kubernetes' own definition, with its descriptions.
        expect(Object.keys(schema!.properties as object)).toEqual(expect.arrayContaining(["apiVersion", "kind", "metadata"]));
        expect(schema!.description, r.kind).toEqual(expect.any(String));
      }
    }
  });

  it("names schemas and paths as Kubernetes does", () => {
    const core = doc("api/v1");
    expect(core.components.schemas).toHaveProperty(["io.k8s.api.core.v1.Pod"]);
    expect(core.components.schemas).toHaveProperty(["io.k8s.api.core.v1.PodList"]);
    expect(core.paths).toHaveProperty(["/api/v1/nodes"]);
    expect(core.paths).toHaveProperty(["/api/v1/nodes/{name}"]);
    expect(core.paths).toHaveProperty(["/api/v1/namespaces/{namespace}/pods/{name}/status"]);
    expect(core.paths).not.toHaveProperty(["/api/v1/namespaces/{namespace}/nodes"]);
    expect((core.paths["/api/v1/nodes/{name}"]!.get as Op).operationId).toBe("readCoreV1Node");
    expect(doc("apis/networking.k8s.io/v1").components.schemas).toHaveProperty(["io.k8s.api.networking.v1.NetworkPolicy"]);
    expect(doc("apis/discovery.k8s.io/v1").components.schemas).toHaveProperty(["io.k8s.api.discovery.v1.EndpointSlice"]);
    // Every $ref resolves inside the document.
    for (const gv of groupVersions()) {
      const text = openApiV3DocumentJson(groupVersionPath(gv))!;
      const d = JSON.parse(text) as Doc;
      for (const m of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
        expect(d.components.schemas, m[1]).toHaveProperty([m[1]!]);
      }
    }
  });

  it("accepts a leading slash and returns undefined for an unknown group/version", () => {
    expect(openApiV3Document("/apis/apps/v1")).toEqual(openApiV3Document("apis/apps/v1"));
    expect(openApiV3Document("apis/apps/v2")).toBeUndefined();
    expect(openApiV3Document("apis/batch/v2")).toBeUndefined();
    expect(openApiV3Document("api/v2")).toBeUndefined();
    expect(openApiV3Document("")).toBeUndefined();
    expect(openApiV3Hash("apis/batch/v2")).toBeUndefined();
  });

  it("returns a fresh object each call", () => {
    const a = doc("apis/apps/v1");
    a.paths = {};
    expect(Object.keys(doc("apis/apps/v1").paths).length).toBeGreaterThan(0);
  });
});
