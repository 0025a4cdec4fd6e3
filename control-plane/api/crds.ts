/**
 * CustomResourceDefinitions (apiextensions.k8s.io/v1), the pure part: what
 * k8s.io/apiextensions-apiserver does with a CRD before and after it is stored.
 *
 * - Defaulting and validation of the CRD itself (pkg/apis/apiextensions/v1/defaults.go,
 *   pkg/apis/apiextensions/validation/validation.go): names, group, scope, exactly one storage
 *   version, printer columns, and the basics of a structural schema (pkg/apiserver/schema
 *   validation.go: a type everywhere, object at the root, metadata restricting only name and
 *   generateName, no $ref, properties and additionalProperties exclusive, items for arrays,
 *   patterns that compile). A CRD may not shadow a kind this server serves built in.
 * - The naming and establishing controllers (pkg/controller/status/naming_controller.go,
 *   pkg/controller/establish): names claimed first come, first served within a group; a CRD
 *   whose names are accepted is Established and served under its accepted names.
 * - What each served version becomes: a ResourceInfo (cluster/resources.ts) carrying the version's
 *   schema as published (apiVersion, kind and metadata added, as
 *   pkg/controller/openapi/builder/builder.go does) and as validated: an object node with no
 *   properties prunes everything below it (pkg/apiserver/schema/pruning), and CEL rules this
 *   server has no implementation of (validation.ts CEL_RULES) are left out.
 * - Structural defaulting of instances (pkg/apiserver/schema/defaulting/algorithm.go).
 *
 * The I/O (list and watch of CRDs, status writes, deleting instances) is crd-controller.ts.
 */
import { RESOURCES, type CustomResourceServing, type PrinterColumn, type ResourceInfo } from "../../cluster/resources.ts";
import type { KubeObject } from "../../cluster/store.ts";
import { dns1035LabelErrors, dns1123SubdomainErrors } from "../../cluster/syntax.ts";
import { deepEqual } from "../../cluster/meta.ts";
import { parseJsonPath } from "./jsonpath.ts";
import { CEL_RULES, forbidden, invalid, notSupported, required, type FieldError } from "./validation.ts";

export const CRD_GROUP = "apiextensions.k8s.io";
export const CRD_API_VERSION = `${CRD_GROUP}/v1`;
export const CRD_KIND = "CustomResourceDefinition";
/** apiextensions' finalizer: a deleted CRD stays until its instances are gone (pkg/controller/finalizer). */
export const CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io";

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === "object" && v !== null && !Array.isArray(v);
const rec = (v: unknown): Rec => (isRec(v) ? v : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const strs = (v: unknown): string[] => arr(v).filter((x): x is string => typeof x === "string");

export function isCrdResource(r: Pick<ResourceInfo, "group" | "kind">): boolean {
  return r.group === CRD_GROUP && r.kind === CRD_KIND;
}

// ---------------------------------------------------------------------------------------------
// Defaulting (pkg/apis/apiextensions/v1/defaults.go)

/** SetDefaults_CustomResourceDefinitionSpec on a copy of a decoded CRD: singular, listKind, conversion. */
export function defaultCustomResourceDefinition(obj: Rec): Rec {
  const spec = obj.spec;
  if (!isRec(spec)) return obj;
  const names = spec.names;
  if (isRec(names)) {
    const kind = str(names.kind);
    if (!str(names.singular) && kind) names.singular = kind.toLowerCase();
    if (!str(names.listKind) && kind) names.listKind = `${kind}List`;
  }
  if (spec.conversion === undefined) spec.conversion = { strategy: "None" };
  if (spec.preserveUnknownFields === undefined) spec.preserveUnknownFields = false;
  return obj;
}

// ---------------------------------------------------------------------------------------------
// Validation of the CRD (pkg/apis/apiextensions/validation/validation.go)

const SCOPES = ["Cluster", "Namespaced"] as const;
const COLUMN_TYPES = ["integer", "number", "string", "boolean", "date"] as const;
const COLUMN_FORMATS = ["int32", "int64", "float", "double", "byte", "date", "date-time", "password"] as const;
const SCHEMA_TYPES = ["array", "boolean", "integer", "number", "object", "string"] as const;
const LIST_TYPES = ["atomic", "set", "map"] as const;
/** isProtectedCommunityGroup: groups that need the api-approved.kubernetes.io annotation. */
const APPROVAL_ANNOTATION = "api-approved.kubernetes.io";

function label1035(field: string, value: string, errs: FieldError[], prefix = ""): void {
  const problems = dns1035LabelErrors(value);
  if (problems.length > 0) errs.push(invalid(field, value, prefix + problems.join(",")));
}

/** ValidateCustomResourceDefinitionNames. */
function validateNames(names: Rec, path: string, errs: FieldError[]): void {
  const plural = str(names.plural);
  const singular = str(names.singular);
  const kind = str(names.kind);
  const listKind = str(names.listKind);
  if (plural === "") errs.push(required(`${path}.plural`));
  else label1035(`${path}.plural`, plural, errs);
  if (singular === "") errs.push(required(`${path}.singular`));
  else label1035(`${path}.singular`, singular, errs);
  if (kind === "") errs.push(required(`${path}.kind`));
  else label1035(`${path}.kind`, kind.toLowerCase(), errs, "may have mixed case, but should otherwise match: ");
  if (listKind === "") errs.push(required(`${path}.listKind`));
  else label1035(`${path}.listKind`, listKind.toLowerCase(), errs, "may have mixed case, but should otherwise match: ");
  if (kind !== "" && kind === listKind) errs.push(invalid(`${path}.listKind`, listKind, "kind and listKind may not be the same or it would be ambiguous"));
  arr(names.shortNames).forEach((s, i) => label1035(`${path}.shortNames[${i}]`, str(s), errs));
  arr(names.categories).forEach((s, i) => label1035(`${path}.categories[${i}]`, str(s), errs));
}

export interface CrdValidation {
  errors: FieldError[];
  /** What is accepted but not enforced here (CEL rules without an implementation). */
  warnings: string[];
}

/**
 * The structural schema basics of one node (pkg/apiserver/schema/validation.go
 * validateStructuralInvariants, and validation.go ValidateCustomResourceDefinitionOpenAPISchema).
 */
function validateSchemaNode(schema: unknown, path: string, where: "root" | "property" | "items", out: CrdValidation): void {
  if (!isRec(schema)) {
    out.errors.push(invalid(path, schema, "must be a schema object"));
    return;
  }
  if (schema.$ref !== undefined) out.errors.push(forbidden(`${path}.$ref`, "$ref is not supported"));
  const type = schema.type;
  const intOrString = schema["x-kubernetes-int-or-string"] === true;
  const preserve = schema["x-kubernetes-preserve-unknown-fields"];
  if (type === undefined || type === "") {
    if (where === "root") out.errors.push(required(`${path}.type`, "must not be empty at the root"));
    else if (!intOrString && preserve !== true) out.errors.push(required(`${path}.type`, where === "items" ? "must not be empty for specified array items" : "must not be empty for specified object fields"));
  } else if (typeof type !== "string" || !(SCHEMA_TYPES as readonly string[]).includes(type)) {
    out.errors.push(notSupported(`${path}.type`, type, SCHEMA_TYPES));
  } else if (where === "root" && type !== "object") {
    out.errors.push(invalid(`${path}.type`, type, "must be object at the root"));
  }
  if (preserve !== undefined && preserve !== true) out.errors.push(invalid(`${path}.x-kubernetes-preserve-unknown-fields`, preserve, "must be true or undefined"));
  if (schema.properties !== undefined && schema.additionalProperties !== undefined && schema.additionalProperties !== false) {
    out.errors.push(forbidden(`${path}.additionalProperties`, "additionalProperties and properties are mutual exclusive"));
  }
  if (schema.additionalProperties === false) out.errors.push(forbidden(`${path}.additionalProperties`, "must not be false (prune unknown fields by leaving it out)"));
  if (type === "array" && schema.items === undefined) out.errors.push(required(`${path}.items`, "must be specified"));
  if (Array.isArray(schema.items)) out.errors.push(forbidden(`${path}.items`, "items must be a schema object and not an array"));
  if (schema.pattern !== undefined) {
    try {
      new RegExp(str(schema.pattern), "u");
    } catch (err) {
      out.errors.push(invalid(`${path}.pattern`, schema.pattern, `must be a valid regular expression, but isn't: ${(err as Error).message}`));
    }
  }
  const listType = schema["x-kubernetes-list-type"];
  if (listType !== undefined && !(LIST_TYPES as readonly unknown[]).includes(listType)) out.errors.push(notSupported(`${path}.x-kubernetes-list-type`, listType, LIST_TYPES));
  if (listType === "map" && strs(schema["x-kubernetes-list-map-keys"]).length === 0) {
    out.errors.push(required(`${path}.x-kubernetes-list-map-keys`, "must not be empty if x-kubernetes-list-type is map"));
  }
  arr(schema["x-kubernetes-validations"]).forEach((rule, i) => {
    const text = str(rec(rule).rule);
    if (text === "") out.errors.push(required(`${path}.x-kubernetes-validations[${i}].rule`));
    else if (!Object.hasOwn(CEL_RULES, text)) out.warnings.push(`${path}.x-kubernetes-validations[${i}].rule: ${JSON.stringify(text)} is not evaluated by this server (no CEL interpreter)`);
  });
  if (isRec(schema.properties)) {
    for (const [key, sub] of Object.entries(schema.properties)) {
      const p = `${path}.properties[${key}]`;
      if (where === "root" && key === "metadata") validateRootMetadata(sub, p, out);
      else validateSchemaNode(sub, p, "property", out);
    }
  } else if (schema.properties !== undefined) {
    out.errors.push(invalid(`${path}.properties`, schema.properties, "must be an object of schemas"));
  }
  if (isRec(schema.items)) validateSchemaNode(schema.items, `${path}.items`, "items", out);
  if (isRec(schema.additionalProperties)) validateSchemaNode(schema.additionalProperties, `${path}.additionalProperties`, "property", out);
}

/** At the root, metadata may only restrict name and generateName (validateStructuralMetadataInvariants). */
function validateRootMetadata(schema: unknown, path: string, out: CrdValidation): void {
  const s = rec(schema);
  const allowed = new Set(["type", "description", "properties"]);
  const props = rec(s.properties);
  const bad = Object.keys(s).some((k) => !allowed.has(k)) || Object.keys(props).some((k) => k !== "name" && k !== "generateName") || (s.type !== undefined && s.type !== "object");
  if (bad) out.errors.push(forbidden(path, "must not specify anything other than name and generateName, but metadata is implicitly specified"));
}

function validateColumns(columns: unknown, path: string, errs: FieldError[]): void {
  arr(columns).forEach((c, i) => {
    const col = rec(c);
    const p = `${path}[${i}]`;
    if (str(col.name) === "") errs.push(required(`${p}.name`));
    if (str(col.type) === "") errs.push(required(`${p}.type`));
    else if (!(COLUMN_TYPES as readonly string[]).includes(str(col.type))) errs.push(notSupported(`${p}.type`, col.type, COLUMN_TYPES));
    if (str(col.format) !== "" && !(COLUMN_FORMATS as readonly string[]).includes(str(col.format))) errs.push(notSupported(`${p}.format`, col.format, COLUMN_FORMATS));
    const jsonPath = str(col.jsonPath);
    if (jsonPath === "") errs.push(required(`${p}.jsonPath`));
    else if (!jsonPath.startsWith(".")) errs.push(invalid(`${p}.jsonPath`, jsonPath, "must be a simple json path starting with ."));
    else {
      const parsed = parseJsonPath(jsonPath);
      if (parsed.kind === "error") errs.push(invalid(`${p}.jsonPath`, jsonPath, `must be a valid JSONPath: ${parsed.message}`));
    }
    if (col.priority !== undefined && (typeof col.priority !== "number" || col.priority < 0)) errs.push(invalid(`${p}.priority`, col.priority, "must be greater than or equal to 0"));
  });
}

/**
 * A (defaulted) CRD's spec and name, for a create or an update (`old`): its metadata is
 * validation.ts's. Not a kind served built in (group and plural, or group and kind).
 */
export function validateCustomResourceDefinition(obj: unknown, old?: unknown): CrdValidation {
  const out: CrdValidation = { errors: [], warnings: [] };
  const errs = out.errors;
  const o = rec(obj);
  const meta = rec(o.metadata);
  const spec = rec(o.spec);
  const names = rec(spec.names);
  const group = str(spec.group);
  const plural = str(names.plural);
  if (str(meta.name) !== `${plural}.${group}`) errs.push(invalid("metadata.name", str(meta.name), 'must be spec.names.plural+"."+spec.group'));
  if (group === "") errs.push(required("spec.group"));
  else {
    const problems = dns1123SubdomainErrors(group);
    if (problems.length > 0) errs.push(invalid("spec.group", group, problems.join(",")));
    if (group.split(".").length < 2) errs.push(invalid("spec.group", group, "should be a domain with at least one dot"));
    // validation.go: the Kubernetes community's groups need an approved API review.
    if (/(^|\.)(k8s\.io|kubernetes\.io)$/.test(group) && str(rec(meta.annotations)[APPROVAL_ANNOTATION]) === "") {
      errs.push(required(`metadata.annotations[${APPROVAL_ANNOTATION}]`, `protected groups must have approval annotation "${APPROVAL_ANNOTATION}", see https://github.com/kubernetes/enhancements/pull/1111`));
    }
  }
  const scope = str(spec.scope);
  if (scope === "") errs.push(required("spec.scope"));
  else if (!(SCOPES as readonly string[]).includes(scope)) errs.push(notSupported("spec.scope", spec.scope, SCOPES));
  validateNames(names, "spec.names", errs);
  if (spec.preserveUnknownFields === true) errs.push(invalid("spec.preserveUnknownFields", true, "must be false in order to use defaults in the schema"));
  const strategy = str(rec(spec.conversion).strategy) || "None";
  if (strategy !== "None") errs.push(notSupported("spec.conversion.strategy", strategy, ["None"]));

  const versions = arr(spec.versions);
  if (versions.length === 0) errs.push(invalid("spec.versions", versions, "must have exactly one version marked as storage version"));
  else {
    const storage = versions.filter((v) => rec(v).storage === true).length;
    if (storage !== 1) errs.push(invalid("spec.versions", versions.map((v) => str(rec(v).name)), "must have exactly one version marked as storage version"));
    const seen = new Set<string>();
    versions.forEach((v, i) => {
      const ver = rec(v);
      const p = `spec.versions[${i}]`;
      const name = str(ver.name);
      if (name === "") errs.push(required(`${p}.name`));
      else label1035(`${p}.name`, name, errs);
      if (seen.has(name)) errs.push(invalid("spec.versions", versions.map((x) => str(rec(x).name)), "must contain unique version names"));
      seen.add(name);
      const schema = rec(ver.schema).openAPIV3Schema;
      if (schema === undefined) errs.push(required(`${p}.schema.openAPIV3Schema`, "schemas are required"));
      else validateSchemaNode(schema, `${p}.schema.openAPIV3Schema`, "root", out);
      validateColumns(ver.additionalPrinterColumns, `${p}.additionalPrinterColumns`, errs);
      const sub = ver.subresources;
      if (sub !== undefined && !isRec(sub)) errs.push(invalid(`${p}.subresources`, sub, "must be an object"));
    });
    if (versions.length > 0 && !versions.some((v) => rec(v).served === true)) errs.push(invalid("spec.versions", versions.map((x) => str(rec(x).name)), "must have at least one served version"));
  }
  // Not a kind served built in: its routes, storage keys and discovery entry are taken.
  for (const b of RESOURCES) {
    if (b.group !== group) continue;
    if (b.plural === plural) errs.push(forbidden("spec.names.plural", `the built-in resource ${JSON.stringify(`${plural}.${group}`)} is served by this API server; a CustomResourceDefinition may not shadow it`));
    else if (b.kind === str(names.kind)) errs.push(forbidden("spec.names.kind", `the built-in kind ${JSON.stringify(b.kind)} of group ${JSON.stringify(group)} is served by this API server; a CustomResourceDefinition may not shadow it`));
  }
  if (old !== undefined) {
    const oldSpec = rec(rec(old).spec);
    // ValidateCustomResourceDefinitionSpecUpdate: what instances are stored under may not change.
    if (str(oldSpec.scope) !== scope) errs.push(invalid("spec.scope", scope, "field is immutable"));
    if (str(oldSpec.group) !== group) errs.push(invalid("spec.group", group, "field is immutable"));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Served schemas (pkg/controller/openapi/builder/builder.go; pkg/apiserver/schema/pruning)

const META = "io.k8s.apimachinery.pkg.apis.meta.v1";
const API_VERSION_DESCRIPTION =
  "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION =
  "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DESCRIPTION = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/** The version's schema as apiextensions publishes it: apiVersion, kind and metadata (ObjectMeta) at the root. */
export function publishedSchema(openAPIV3Schema: Rec): Rec {
  const s = structuredClone(openAPIV3Schema);
  s.type = "object";
  s.properties = {
    ...rec(s.properties),
    apiVersion: { description: API_VERSION_DESCRIPTION, type: "string" },
    kind: { description: KIND_DESCRIPTION, type: "string" },
    metadata: { description: METADATA_DESCRIPTION, allOf: [{ $ref: `#/components/schemas/${META}.ObjectMeta` }] },
  };
  return s;
}

/**
 * The schema instances are checked against (schema.ts walks it for types and unknown fields,
 * validation.ts for values): an object node that names no properties, no additionalProperties and
 * does not preserve unknown fields prunes every field below it, as structural pruning does; an
 * embedded resource keeps its apiVersion, kind and metadata; CEL rules without an implementation
 * here are left out (the CRD controller logs them).
 */
export function validationSchema(published: Rec): Rec {
  const walk = (node: unknown, root: boolean): unknown => {
    if (!isRec(node)) return node;
    const s: Rec = { ...node };
    if (isRec(s.properties)) {
      const props: Rec = {};
      for (const [k, v] of Object.entries(s.properties)) props[k] = root && k === "metadata" ? v : walk(v, false);
      s.properties = props;
    }
    if (isRec(s.items)) s.items = walk(s.items, false);
    if (isRec(s.additionalProperties)) s.additionalProperties = walk(s.additionalProperties, false);
    if (s["x-kubernetes-embedded-resource"] === true) {
      s.properties = { apiVersion: { type: "string" }, kind: { type: "string" }, metadata: { type: "object", "x-kubernetes-preserve-unknown-fields": true }, ...rec(s.properties) };
    }
    const opaque = s.properties === undefined && s.additionalProperties === undefined && s["x-kubernetes-preserve-unknown-fields"] !== true;
    if (s.type === "object" && opaque) s.properties = {};
    if (Array.isArray(s["x-kubernetes-validations"])) {
      const known = s["x-kubernetes-validations"].filter((r) => Object.hasOwn(CEL_RULES, str(rec(r).rule)));
      if (known.length > 0) s["x-kubernetes-validations"] = known;
      else delete s["x-kubernetes-validations"];
    }
    return s;
  };
  return walk(published, true) as Rec;
}

/**
 * Structural defaulting (defaulting/algorithm.go Default): every absent property with a
 * `default` gets it, top down, in place; metadata is left alone.
 */
export function applySchemaDefaults(schema: Readonly<Rec>, obj: unknown): void {
  const walk = (s: Readonly<Rec>, v: unknown, root: boolean): void => {
    if (Array.isArray(v)) {
      if (isRec(s.items)) for (const item of v) walk(s.items, item, false);
      return;
    }
    if (!isRec(v)) return;
    if (isRec(s.properties)) {
      for (const [k, sub] of Object.entries(s.properties)) {
        if (root && k === "metadata") continue;
        if (!isRec(sub)) continue;
        if (v[k] === undefined && sub.default !== undefined) v[k] = structuredClone(sub.default);
        if (v[k] !== undefined) walk(sub, v[k], false);
      }
    }
    if (isRec(s.additionalProperties)) {
      for (const [k, child] of Object.entries(v)) if (!(isRec(s.properties) && k in s.properties)) walk(s.additionalProperties, child, false);
    }
  };
  walk(schema, obj, true);
}

// ---------------------------------------------------------------------------------------------
// Versions: the order discovery prefers (k8s.io/apimachinery/pkg/version CompareKubeAwareVersionStrings)

function versionRank(v: string): [number, number, number] | undefined {
  const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
  if (!m) return undefined;
  return [Number(m[1]), m[2] === undefined ? 2 : m[2] === "beta" ? 1 : 0, Number(m[3] ?? 0)];
}

/** Kube-aware order: GA before beta before alpha, higher first; other names after, alphabetically. */
export function compareKubeAwareVersions(a: string, b: string): number {
  const ra = versionRank(a);
  const rb = versionRank(b);
  if (ra && rb) {
    if (ra[1] !== rb[1]) return rb[1] - ra[1];
    if (ra[0] !== rb[0]) return rb[0] - ra[0];
    return rb[2] - ra[2];
  }
  if (ra) return -1;
  if (rb) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Names, conditions and what is served (naming_controller.go, establishing_controller.go)

export interface CrdNames {
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  shortNames: string[];
  categories: string[];
}

function namesOf(v: unknown): CrdNames {
  const n = rec(v);
  return { plural: str(n.plural), singular: str(n.singular), kind: str(n.kind), listKind: str(n.listKind), shortNames: strs(n.shortNames), categories: strs(n.categories) };
}

export interface CrdCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  lastTransitionTime?: string;
  reason: string;
  message: string;
}

/** A condition set as apimeta.SetStatusCondition does: the transition time moves only with the status. */
function setCondition(conditions: CrdCondition[], c: CrdCondition, now: string): CrdCondition[] {
  const old = conditions.find((x) => x.type === c.type);
  const next: CrdCondition = { ...c, lastTransitionTime: old && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : now };
  return old ? conditions.map((x) => (x.type === c.type ? next : x)) : [...conditions, next];
}

function conditionsOf(status: Rec): CrdCondition[] {
  return arr(status.conditions)
    .filter(isRec)
    .map((c) => ({ type: str(c.type), status: (["True", "False", "Unknown"].includes(str(c.status)) ? str(c.status) : "Unknown") as CrdCondition["status"], ...(str(c.lastTransitionTime) ? { lastTransitionTime: str(c.lastTransitionTime) } : {}), reason: str(c.reason), message: str(c.message) }))
    .filter((c) => c.type !== "");
}

/** apiextensions' Terminating condition and the cleanup finalizer, on a CRD being deleted (registry delete). */
export function markCrdTerminating(crd: KubeObject, now: string): KubeObject {
  const marked = structuredClone(crd);
  marked.metadata.deletionTimestamp = now;
  const finalizers = marked.metadata.finalizers ?? [];
  if (!finalizers.includes(CLEANUP_FINALIZER)) marked.metadata.finalizers = [...finalizers, CLEANUP_FINALIZER];
  const status = rec(marked.status);
  marked.status = { ...status, conditions: setCondition(conditionsOf(status), { type: "Terminating", status: "True", reason: "InstanceDeletionInProgress", message: "CustomResource deletion is in progress" }, now) };
  return marked;
}

export interface CrdPlan {
  /** Every served version of every Established, live CRD. */
  served: ResourceInfo[];
  /** The status each CRD should have, where it differs from the stored one. */
  status: Array<{ name: string; status: Rec }>;
  /**
   * Terminating CRDs: their instances go (through the storage version's resource, which every
   * version shares), then the CRD. A CRD that does not validate was never served and has no
   * instances to address (its names cannot be trusted as storage keys): it just goes.
   */
  cleanup: Array<{ crd: KubeObject; resource?: ResourceInfo }>;
  /** Stored CRDs that do not validate (written around this API): skipped, never fatal. */
  bad: Array<{ name: string; reason: string }>;
  /** CEL rules accepted but not evaluated, per CRD. */
  warnings: Array<{ name: string; warnings: string[] }>;
}

function byCreation(a: KubeObject, b: KubeObject): number {
  const ta = str(a.metadata.creationTimestamp);
  const tb = str(b.metadata.creationTimestamp);
  return ta < tb ? -1 : ta > tb ? 1 : str(a.metadata.name) < str(b.metadata.name) ? -1 : 1;
}

function servingOf(crd: KubeObject, version: Rec, names: CrdNames, storage: boolean): CustomResourceServing {
  const published = publishedSchema(rec(rec(version.schema).openAPIV3Schema));
  const columns: PrinterColumn[] = arr(version.additionalPrinterColumns).filter(isRec).map((c) => ({
    name: str(c.name),
    type: str(c.type),
    format: str(c.format),
    description: str(c.description),
    priority: typeof c.priority === "number" ? c.priority : 0,
    jsonPath: str(c.jsonPath),
  }));
  return {
    crd: str(crd.metadata.name),
    uid: str(crd.metadata.uid),
    schema: published,
    validationSchema: validationSchema(published),
    // crdHandler serveDefaultColumnsIfEmpty: without columns of its own, a version prints Age.
    printerColumns: columns.length > 0 ? columns : [{ name: "Age", type: "date", format: "", description: "", priority: 0, jsonPath: ".metadata.creationTimestamp" }],
    listKind: names.listKind,
    storage,
  };
}

/** The resources of a CRD's versions under `names`, preferred version first. */
export function resourcesOf(crd: KubeObject, names: CrdNames, onlyServed = true): ResourceInfo[] {
  const spec = rec(crd.spec);
  const versions = arr(spec.versions)
    .filter(isRec)
    .filter((v) => !onlyServed || v.served === true)
    .sort((a, b) => compareKubeAwareVersions(str(a.name), str(b.name)));
  return versions.map((v) => {
    const hasStatus = isRec(rec(v.subresources).status);
    return {
      group: str(spec.group),
      version: str(v.name),
      plural: names.plural,
      singular: names.singular,
      kind: names.kind,
      namespaced: str(spec.scope) === "Namespaced",
      shortNames: names.shortNames,
      ...(names.categories.length > 0 ? { categories: names.categories } : {}),
      subresources: hasStatus ? ["status"] : [],
      source: "crd" as const,
      custom: servingOf(crd, v, names, v.storage === true),
    };
  });
}

/**
 * The whole desired state from every stored CRD, level-triggered: names accepted first come,
 * first served within a group (a name another CRD of the group has accepted is a conflict, unless
 * it is already this CRD's), Established once the names are accepted, and what is served.
 */
export function planCustomResources(crds: readonly KubeObject[], now: string): CrdPlan {
  const plan: CrdPlan = { served: [], status: [], cleanup: [], bad: [], warnings: [] };
  const valid: KubeObject[] = [];
  for (const crd of [...crds].sort(byCreation)) {
    const defaulted = defaultCustomResourceDefinition(structuredClone(crd) as unknown as Rec) as unknown as KubeObject;
    const checked = validateCustomResourceDefinition(defaulted);
    if (checked.errors.length > 0 && crd.metadata?.deletionTimestamp) {
      plan.cleanup.push({ crd });
      continue;
    }
    if (checked.errors.length > 0) {
      plan.bad.push({ name: str(crd.metadata?.name), reason: checked.errors.map((e) => `${e.field}: ${e.message}`).join("; ") });
      continue;
    }
    if (checked.warnings.length > 0) plan.warnings.push({ name: str(crd.metadata.name), warnings: checked.warnings });
    valid.push(defaulted);
  }
  // The names each CRD holds: this pass's for those decided already, else the stored accepted ones.
  const accepted = new Map<string, CrdNames>();
  for (const crd of valid) accepted.set(str(crd.metadata.name), namesOf(rec(crd.status).acceptedNames));
  for (const crd of valid) {
    const name = str(crd.metadata.name);
    const spec = rec(crd.spec);
    const group = str(spec.group);
    const status = rec(crd.status);
    const requested = namesOf(spec.names);
    if (crd.metadata.deletionTimestamp) {
      const storage = resourcesOf(crd, namesOf(status.acceptedNames).plural ? namesOf(status.acceptedNames) : requested, false).find((r) => r.custom?.storage);
      if (storage) plan.cleanup.push({ crd, resource: storage });
      continue;
    }
    const resources = new Set<string>();
    const kinds = new Set<string>();
    for (const other of valid) {
      const otherName = str(other.metadata.name);
      if (otherName === name || str(rec(other.spec).group) !== group) continue;
      const n = accepted.get(otherName)!;
      for (const x of [n.plural, n.singular, ...n.shortNames]) if (x) resources.add(x);
      for (const x of [n.kind, n.listKind]) if (x) kinds.add(x);
    }
    const current = accepted.get(name)!;
    const fresh = (want: string, have: string, used: Set<string>) => want === have || !used.has(want);
    const next: CrdNames = { ...current, categories: requested.categories };
    let namesAccepted: CrdCondition = { type: "NamesAccepted", status: "True", reason: "NoConflicts", message: "no conflicts found" };
    const conflict = (reason: string, value: string) => {
      namesAccepted = { type: "NamesAccepted", status: "False", reason, message: `${JSON.stringify(value)} is already in use` };
    };
    if (fresh(requested.plural, current.plural, resources)) next.plural = requested.plural;
    else conflict("PluralConflict", requested.plural);
    if (fresh(requested.singular, current.singular, resources)) next.singular = requested.singular;
    else conflict("SingularConflict", requested.singular);
    const takenShort = requested.shortNames.find((s) => !current.shortNames.includes(s) && resources.has(s));
    if (takenShort === undefined) next.shortNames = requested.shortNames;
    else conflict("ShortNamesConflict", takenShort);
    if (fresh(requested.kind, current.kind, kinds)) next.kind = requested.kind;
    else conflict("KindConflict", requested.kind);
    if (fresh(requested.listKind, current.listKind, kinds)) next.listKind = requested.listKind;
    else conflict("ListKindConflict", requested.listKind);
    accepted.set(name, next);

    let conditions = conditionsOf(status);
    conditions = setCondition(conditions, namesAccepted, now);
    const wasEstablished = conditions.some((c) => c.type === "Established" && c.status === "True");
    if (namesAccepted.status === "True" || wasEstablished) {
      conditions = setCondition(conditions, { type: "Established", status: "True", reason: "InitialNamesAccepted", message: "the initial names have been accepted" }, now);
    } else {
      conditions = setCondition(conditions, { type: "Established", status: "False", reason: "NotAccepted", message: "not all names are accepted" }, now);
    }
    const storageVersion = arr(spec.versions).filter(isRec).find((v) => v.storage === true);
    const storedVersions = [...new Set([...strs(status.storedVersions), ...(storageVersion ? [str(storageVersion.name)] : [])])];
    const acceptedNames: Rec = { plural: next.plural, singular: next.singular, kind: next.kind, listKind: next.listKind };
    if (next.shortNames.length > 0) acceptedNames.shortNames = next.shortNames;
    if (next.categories.length > 0) acceptedNames.categories = next.categories;
    const desired: Rec = { ...status, acceptedNames, conditions, storedVersions };
    if (!deepEqual(desired, status)) plan.status.push({ name, status: desired });
    const established = conditions.some((c) => c.type === "Established" && c.status === "True");
    if (established && next.plural && next.kind) plan.served.push(...resourcesOf(crd, next));
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// The CRD's own schema check (schema.ts)

/** JSONSchemaProps' fields (pkg/apis/apiextensions/v1/types_jsonschema.go). */
const SCHEMA_PROPS_KEYS: ReadonlySet<string> = new Set([
  "id", "$schema", "$ref", "description", "type", "format", "title", "default", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
  "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties", "required",
  "items", "allOf", "oneOf", "anyOf", "not", "properties", "additionalProperties", "patternProperties", "dependencies", "additionalItems",
  "definitions", "externalDocs", "example", "nullable", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
  "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-validations",
]);
/** Where JSONSchemaProps nest: one schema, a list of them, a map of them, or a schema-or-something-else. */
const ONE = ["items", "not", "additionalProperties", "additionalItems"] as const;
const MANY = ["allOf", "oneOf", "anyOf"] as const;
const MAP = ["properties", "patternProperties", "definitions", "dependencies"] as const;

function unknownSchemaKeys(node: unknown, path: string, out: string[], prune: boolean): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => unknownSchemaKeys(n, `${path}[${i}]`, out, prune));
    return;
  }
  if (!isRec(node)) return;
  for (const key of Object.keys(node)) {
    if (SCHEMA_PROPS_KEYS.has(key)) continue;
    out.push(`${path}.${key}`);
    if (prune) delete node[key];
  }
  for (const k of ONE) unknownSchemaKeys(node[k], `${path}.${k}`, out, prune);
  for (const k of MANY) arr(node[k]).forEach((n, i) => unknownSchemaKeys(n, `${path}.${k}[${i}]`, out, prune));
  for (const k of MAP) for (const [name, n] of Object.entries(rec(node[k]))) unknownSchemaKeys(n, `${path}.${k}.${name}`, out, prune);
}

/**
 * Runs `check` (schema.ts's check of a CRD by kubernetes-models' validator) with every version's
 * openAPIV3Schema taken out: that validator reads neither $ref, allOf nor the x-kubernetes-*
 * extensions of JSONSchemaProps, so it would call them unknown fields and prune them. Each schema
 * is judged here instead, key by key, against JSONSchemaProps' fields; the unknown ones are
 * added to the check's (and pruned with `prune`).
 */
export function checkWithCrdSchemasDetached<T extends { unknown: string[] }>(body: unknown, prune: boolean, check: () => T): T {
  const held: Array<{ holder: Rec; schema: unknown; path: string }> = [];
  arr(rec(rec(body).spec).versions).forEach((v, i) => {
    const holder = rec(v).schema;
    if (isRec(holder) && isRec(holder.openAPIV3Schema)) {
      held.push({ holder, schema: holder.openAPIV3Schema, path: `spec.versions[${i}].schema.openAPIV3Schema` });
      holder.openAPIV3Schema = {};
    }
  });
  let result: T;
  try {
    result = check();
  } finally {
    for (const h of held) h.holder.openAPIV3Schema = h.schema;
  }
  const unknown: string[] = [];
  for (const h of held) unknownSchemaKeys(h.schema, h.path, unknown, prune);
  return { ...result, unknown: [...result.unknown, ...unknown] };
}
