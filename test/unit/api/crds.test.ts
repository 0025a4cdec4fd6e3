/**
 * CustomResourceDefinitions, the pure parts: the CRD's validation (apiextensions validation.go),
 * the names and conditions the naming and establishing controllers give it, what each served
 * version becomes (schema as published and as validated: types, values, pruning, defaults), and
 * its printer columns (tableconvertor).
 */
import { afterEach, describe, expect, it } from "vitest";
import { setCustomResources, findResource, servedGroups, type ResourceInfo } from "../../../cluster/resources.ts";
import type { KubeObject } from "../../../cluster/store.ts";
import { compareKubeAwareVersions, defaultCustomResourceDefinition, markCrdTerminating, planCustomResources, validateCustomResourceDefinition } from "../../../control-plane/api/crds.ts";
import { defaultObject } from "../../../control-plane/api/defaults.ts";
import { evalJsonPath, parseJsonPath } from "../../../control-plane/api/jsonpath.ts";
import { checkSchema } from "../../../control-plane/api/schema.ts";
import { resourceTable } from "../../../control-plane/api/tables.ts";
import { formatFieldError, validateObject } from "../../../control-plane/api/validation.ts";
import { openApiV3Document } from "../../../control-plane/api/openapi.ts";

const NOW = "2026-01-01T00:00:00Z";

function widgetCrd(over: { name?: string; group?: string; plural?: string; kind?: string; shortNames?: string[]; created?: string; versions?: unknown[] } = {}): KubeObject {
  const group = over.group ?? "example.kubewire.io";
  const plural = over.plural ?? "widgets";
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: over.name ?? `${plural}.${group}`, uid: `uid-${plural}`, resourceVersion: "5", creationTimestamp: over.created ?? "2025-01-01T00:00:00Z" },
    spec: {
      group,
      scope: "Namespaced",
      names: { plural, singular: plural.slice(0, -1), kind: over.kind ?? "Widget", listKind: `${over.kind ?? "Widget"}List`, shortNames: over.shortNames ?? ["wd"], categories: ["all"] },
      versions: over.versions ?? [
        {
          name: "v1",
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Size", type: "integer", jsonPath: ".spec.size" },
            { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: {
                  type: "object",
                  required: ["size"],
                  properties: {
                    size: { type: "integer", minimum: 1, maximum: 10 },
                    color: { type: "string", enum: ["red", "blue"], default: "red" },
                    name: { type: "string", pattern: "^[a-z]+$" },
                    extra: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                    opaque: { type: "object" },
                  },
                },
                status: { type: "object", properties: { conditions: { type: "array", items: { type: "object", properties: { type: { type: "string" }, status: { type: "string" } } } } } },
              },
            },
          },
        },
      ],
    },
  };
}

function errorsOf(crd: KubeObject, old?: KubeObject): string[] {
  return validateCustomResourceDefinition(defaultCustomResourceDefinition(structuredClone(crd) as never), old).errors.map(formatFieldError);
}

function mutate(f: (spec: any, crd: KubeObject) => void): KubeObject {
  const crd = widgetCrd();
  f(crd.spec, crd);
  return crd;
}

/** Installs what `crds` serve, as the CRD controller does. */
function serve(...crds: KubeObject[]): ResourceInfo[] {
  const plan = planCustomResources(crds, NOW);
  setCustomResources(plan.served);
  return plan.served;
}

afterEach(() => setCustomResources([]));

describe("CRD validation", () => {
  it("accepts the usual manifest", () => {
    expect(errorsOf(widgetCrd())).toEqual([]);
  });

  const cases: Array<[string, KubeObject, string]> = [
    ["a name other than plural.group", widgetCrd({ name: "widget.example.kubewire.io" }), 'metadata.name: Invalid value: "widget.example.kubewire.io": must be spec.names.plural+"."+spec.group'],
    ["a group without a dot", widgetCrd({ group: "example" }), 'spec.group: Invalid value: "example": should be a domain with at least one dot'],
    ["two storage versions", mutate((s) => s.versions.push({ ...s.versions[0], name: "v2" })), "must have exactly one version marked as storage version"],
    ["no storage version", mutate((s) => (s.versions[0].storage = false)), "spec.versions: Invalid value: [\"v1\"]: must have exactly one version marked as storage version"],
    ["no schema", mutate((s) => delete s.versions[0].schema), "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"],
    ["a root that is not an object", mutate((s) => (s.versions[0].schema.openAPIV3Schema.type = "string")), 'spec.versions[0].schema.openAPIV3Schema.type: Invalid value: "string": must be object at the root'],
    ["a field without a type", mutate((s) => delete s.versions[0].schema.openAPIV3Schema.properties.spec.properties.size.type), "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].type: Required value: must not be empty for specified object fields"],
    ["a $ref", mutate((s) => (s.versions[0].schema.openAPIV3Schema.properties.spec.$ref = "#/x")), "spec.versions[0].schema.openAPIV3Schema.properties[spec].$ref: Forbidden: $ref is not supported"],
    ["an array without items", mutate((s) => (s.versions[0].schema.openAPIV3Schema.properties.spec.properties.list = { type: "array" })), "properties[list].items: Required value: must be specified"],
    ["a pattern that does not compile", mutate((s) => (s.versions[0].schema.openAPIV3Schema.properties.spec.properties.name.pattern = "([")), "properties[name].pattern: Invalid value: \"([\": must be a valid regular expression"],
    ["metadata restricted beyond name", mutate((s) => (s.versions[0].schema.openAPIV3Schema.properties.metadata = { type: "object", properties: { labels: { type: "object" } } })), "must not specify anything other than name and generateName"],
    ["a printer column of an unknown type", mutate((s) => (s.versions[0].additionalPrinterColumns[0].type = "int")), 'spec.versions[0].additionalPrinterColumns[0].type: Unsupported value: "int": supported values: "integer", "number", "string", "boolean", "date"'],
    ["a printer column path not starting with a dot", mutate((s) => (s.versions[0].additionalPrinterColumns[0].jsonPath = "spec.size")), "must be a simple json path starting with ."],
    ["a bad scope", mutate((s) => (s.scope = "Global")), 'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'],
    ["a kind that is not a DNS-1035 label", widgetCrd({ kind: "Wid_get" }), 'spec.names.kind: Invalid value: "wid_get": may have mixed case, but should otherwise match:'],
    ["a built-in resource shadowed", widgetCrd({ group: "networking.k8s.io", plural: "networkpolicies" }), 'spec.names.plural: Forbidden: the built-in resource "networkpolicies.networking.k8s.io" is served by this API server; a CustomResourceDefinition may not shadow it'],
    ["a k8s.io group without an approved API review", widgetCrd({ group: "widgets.k8s.io" }), "metadata.annotations[api-approved.kubernetes.io]: Required value"],
  ];
  for (const [what, crd, message] of cases) {
    it(`refuses ${what}`, () => {
      expect(errorsOf(crd).join("\n")).toContain(message);
    });
  }

  it("keeps scope and group on update", () => {
    const old = widgetCrd();
    const changed = mutate((s) => (s.scope = "Cluster"));
    expect(errorsOf(changed, old).join("\n")).toContain('spec.scope: Invalid value: "Cluster": field is immutable');
  });

  it("defaults singular and listKind from the kind", () => {
    const crd = mutate((s) => {
      delete s.names.singular;
      delete s.names.listKind;
    });
    const d = defaultCustomResourceDefinition(structuredClone(crd) as never) as any;
    expect(d.spec.names.singular).toBe("widget");
    expect(d.spec.names.listKind).toBe("WidgetList");
    expect(d.spec.conversion).toEqual({ strategy: "None" });
  });

  it("checks the CRD's own fields without calling schema extensions unknown", () => {
    const crd = mutate((s) => (s.bogus = 1));
    const { unknown, structural } = checkSchema("CustomResourceDefinition", "apiextensions.k8s.io/v1", crd, { prune: true });
    expect(structural).toEqual([]);
    expect(unknown).toEqual(["spec.bogus"]);
    const withTypo = mutate((s) => (s.versions[0].schema.openAPIV3Schema.properties.spec.properites = {}));
    expect(checkSchema("CustomResourceDefinition", "apiextensions.k8s.io/v1", withTypo).unknown).toEqual(["spec.versions[0].schema.openAPIV3Schema.properties.spec.properites"]);
  });
});

describe("names, conditions and what is served", () => {
  it("accepts the names, establishes the CRD and serves its version", () => {
    const plan = planCustomResources([widgetCrd()], NOW);
    expect(plan.bad).toEqual([]);
    expect(plan.status).toHaveLength(1);
    const status = plan.status[0]!.status as any;
    expect(status.acceptedNames).toEqual({ plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList", shortNames: ["wd"], categories: ["all"] });
    expect(status.conditions).toEqual([
      { type: "NamesAccepted", status: "True", reason: "NoConflicts", message: "no conflicts found", lastTransitionTime: NOW },
      { type: "Established", status: "True", reason: "InitialNamesAccepted", message: "the initial names have been accepted", lastTransitionTime: NOW },
    ]);
    expect(status.storedVersions).toEqual(["v1"]);
    const [r] = plan.served;
    expect(r).toMatchObject({ group: "example.kubewire.io", version: "v1", plural: "widgets", kind: "Widget", namespaced: true, shortNames: ["wd"], categories: ["all"], subresources: ["status"], source: "crd" });
  });

  it("writes no status when the stored one is what it should be", () => {
    const first = planCustomResources([widgetCrd()], NOW);
    const crd = { ...widgetCrd(), status: first.status[0]!.status };
    expect(planCustomResources([crd], "2026-02-01T00:00:00Z").status).toEqual([]);
  });

  it("gives a short name to the CRD that claimed it first", () => {
    const first = widgetCrd();
    const second = widgetCrd({ plural: "gadgets", kind: "Gadget", shortNames: ["wd"], created: "2025-02-01T00:00:00Z" });
    const plan = planCustomResources([second, first], NOW);
    const gadget = plan.status.find((s) => s.name === "gadgets.example.kubewire.io")!.status as any;
    expect(gadget.conditions[0]).toMatchObject({ type: "NamesAccepted", status: "False", reason: "ShortNamesConflict", message: '"wd" is already in use' });
    expect(gadget.conditions[1]).toMatchObject({ type: "Established", status: "False", reason: "NotAccepted" });
    expect(plan.served.map((r) => r.plural)).toEqual(["widgets"]);
  });

  it("stops serving a terminating CRD and plans the deletion of its instances", () => {
    const crd = markCrdTerminating(widgetCrd(), NOW);
    expect(crd.metadata.finalizers).toEqual(["customresourcecleanup.apiextensions.k8s.io"]);
    const plan = planCustomResources([crd], NOW);
    expect(plan.served).toEqual([]);
    expect(plan.cleanup.map((c) => c.resource?.plural)).toEqual(["widgets"]);
    const broken = markCrdTerminating({ ...widgetCrd(), spec: { group: "a>b" } } as KubeObject, NOW);
    expect(planCustomResources([broken], NOW).cleanup.map((c) => c.resource)).toEqual([undefined]);
  });

  it("skips a stored CRD that does not validate, and serves the others", () => {
    const broken = { ...widgetCrd({ plural: "gadgets", kind: "Gadget", shortNames: [] }), spec: { group: 7 } } as KubeObject;
    const plan = planCustomResources([broken, widgetCrd()], NOW);
    expect(plan.bad.map((b) => b.name)).toEqual(["gadgets.example.kubewire.io"]);
    expect(plan.served.map((r) => r.plural)).toEqual(["widgets"]);
  });

  it("serves every served version, the preferred first, in one discovery group", () => {
    const crd = mutate((s) => {
      s.versions.push({ ...structuredClone(s.versions[0]), name: "v1beta1", storage: false });
      s.versions.push({ ...structuredClone(s.versions[0]), name: "v2alpha1", storage: false, served: false });
    });
    serve(crd);
    expect(servedGroups().find((g) => g.group === "example.kubewire.io")).toEqual({ group: "example.kubewire.io", versions: ["v1", "v1beta1"] });
    expect(findResource("example.kubewire.io", "v1beta1", "widgets")?.kind).toBe("Widget");
    expect(findResource("example.kubewire.io", "v2alpha1", "widgets")).toBeUndefined();
    expect(["v1alpha1", "v2", "foo", "v1", "v1beta2", "v1beta1"].sort(compareKubeAwareVersions)).toEqual(["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
  });
});

describe("instances against the version's schema", () => {
  const widget = (spec: unknown, extra: Record<string, unknown> = {}): KubeObject => ({ apiVersion: "example.kubewire.io/v1", kind: "Widget", metadata: { name: "w1", namespace: "default" }, spec, ...extra });

  it("refuses a wrong type naming the field", () => {
    serve(widgetCrd());
    const { structural } = checkSchema("Widget", "example.kubewire.io/v1", widget({ size: "big" }));
    expect(structural.map((e) => `${e.field}: ${e.message}`)).toEqual(['spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"']);
  });

  it("prunes unknown fields, except where the schema preserves them, and everything below an object without properties", () => {
    serve(widgetCrd());
    const body = widget({ size: 2, bogus: true, extra: { anything: { goes: 1 } }, opaque: { gone: 1 } }, { top: 1 });
    const { unknown } = checkSchema("Widget", "example.kubewire.io/v1", body, { prune: true });
    expect(unknown.sort()).toEqual(["spec.bogus", "spec.opaque.gone", "top"]);
    expect(body).toEqual(widget({ size: 2, extra: { anything: { goes: 1 } }, opaque: {} }));
  });

  it("validates values: minimum, enum, pattern, required", () => {
    serve(widgetCrd());
    const errs = (spec: unknown) => validateObject("Widget", widget(spec)).map(formatFieldError);
    expect(errs({ size: 2 })).toEqual([]);
    expect(errs({ size: 0 })).toEqual(["spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"]);
    expect(errs({ size: 2, color: "green" })).toEqual(['spec.color: Unsupported value: "green": supported values: "red", "blue"']);
    expect(errs({ size: 2, name: "A1" })).toEqual(["spec.name: Invalid value: \"A1\": spec.name in body should match '^[a-z]+$'"]);
    expect(errs({})).toEqual(["spec.size: Required value"]);
  });

  it("lets an update keep an error the stored object already had (ratcheting)", () => {
    serve(widgetCrd());
    const old = widget({ size: 20 });
    const next = widget({ size: 20 }, { metadata: { name: "w1", namespace: "default", labels: { a: "b" } } });
    expect(validateObject("Widget", next, old)).toEqual([]);
    expect(validateObject("Widget", widget({ size: 30 }), old).map(formatFieldError)).toEqual(["spec.size: Invalid value: 30: spec.size in body should be less than or equal to 10"]);
  });

  it("applies the schema's defaults, and a CRD's kind named like a built-in is not the built-in", () => {
    serve(widgetCrd());
    expect((defaultObject("Widget", widget({ size: 1 })) as any).spec.color).toBe("red");
    serve(widgetCrd({ plural: "pods", kind: "Pod", shortNames: [] }));
    const pod = { apiVersion: "example.kubewire.io/v1", kind: "Pod", metadata: { name: "p" }, spec: { size: 1 } };
    expect(defaultObject("Pod", pod)).toEqual({ ...pod, spec: { size: 1, color: "red" } });
    expect(validateObject("Pod", { ...pod, metadata: { name: "p", namespace: "default" } })).toEqual([]);
  });

  it("publishes the schema in the group/version's OpenAPI document", () => {
    serve(widgetCrd());
    const doc = openApiV3Document("apis/example.kubewire.io/v1") as any;
    const schema = doc.components.schemas["io.kubewire.example.v1.Widget"];
    expect(schema.properties.spec.properties.size).toEqual({ type: "integer", minimum: 1, maximum: 10 });
    expect(schema["x-kubernetes-group-version-kind"]).toEqual([{ group: "example.kubewire.io", version: "v1", kind: "Widget" }]);
    expect(doc.components.schemas["io.kubewire.example.v1.WidgetList"].properties.items.items.$ref).toBe("#/components/schemas/io.kubewire.example.v1.Widget");
    expect(doc.paths["/apis/example.kubewire.io/v1/namespaces/{namespace}/widgets/{name}/status"]).toBeDefined();
    expect(doc.components.schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]).toBeDefined();
    setCustomResources([]);
    expect(openApiV3Document("apis/example.kubewire.io/v1")).toBeUndefined();
  });
});

describe("printer columns", () => {
  it("prints Name and the columns, by type, as tableconvertor does", () => {
    const [r] = serve(widgetCrd());
    const obj: KubeObject = {
      apiVersion: "example.kubewire.io/v1",
      kind: "Widget",
      metadata: { name: "w1", namespace: "default", creationTimestamp: "2025-12-31T23:00:00Z", resourceVersion: "9" },
      spec: { size: 3 },
      status: { conditions: [{ type: "Synced", status: "False" }, { type: "Ready", status: "True" }] },
    };
    const t = resourceTable(r!, [obj], { now: new Date(NOW), includeObject: "None" });
    expect(t.columnDefinitions.map((c) => [c.name, c.type, c.description])).toEqual([
      ["Name", "string", expect.stringContaining("Name must be unique")],
      ["Size", "integer", "Custom resource definition column (in JSONPath format): .spec.size"],
      ["Ready", "string", 'Custom resource definition column (in JSONPath format): .status.conditions[?(@.type=="Ready")].status'],
      ["Age", "date", "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp"],
    ]);
    expect(t.rows[0]!.cells).toEqual(["w1", 3, "True", "60m"]);
    expect(t.metadata.resourceVersion).toBe("9");
    const empty = resourceTable(r!, [{ ...obj, spec: {}, status: {} }], { now: new Date(NOW), includeObject: "None" });
    expect(empty.rows[0]!.cells).toEqual(["w1", null, null, "60m"]);
  });

  it("prints Age alone for a version without columns", () => {
    const [r] = serve(mutate((s) => delete s.versions[0].additionalPrinterColumns));
    const t = resourceTable(r!, [], { now: new Date(NOW), includeObject: "None" });
    expect(t.columnDefinitions.map((c) => c.name)).toEqual(["Name", "Age"]);
  });
});

describe("JSONPath", () => {
  const doc = { a: { "b.c": [1, 2, 3], list: [{ k: "x", v: 1 }, { k: "y", v: 2 }] } };
  const run = (p: string) => {
    const parsed = parseJsonPath(p);
    if (parsed.kind === "error") throw new Error(parsed.message);
    return evalJsonPath(parsed.steps, doc);
  };
  it("walks fields, quoted keys, indexes, wildcards and filters", () => {
    expect(run(".a['b.c'][1]")).toEqual([2]);
    expect(run(".a['b.c'][-1]")).toEqual([3]);
    expect(run(".a.list[*].k")).toEqual(["x", "y"]);
    expect(run(".a.list[?(@.k=='y')].v")).toEqual([2]);
    expect(run(".a.list[?(@.v > 1)].k")).toEqual(["y"]);
    expect(run(".a.missing.x")).toEqual([]);
    expect(run("{.a.list[0].k}")).toEqual(["x"]);
  });
  it("answers malformed paths with an error, never a throw", () => {
    for (const bad of [".a[", ".a..b", "a.b", ".a[?(x)]", ".a[1:2]"]) expect(parseJsonPath(bad).kind).toBe("error");
  });
});
