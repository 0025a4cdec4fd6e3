/**
 * Structural validation of request bodies against the official OpenAPI schemas of Kubernetes,
 * as the `kubernetes-models` package ships them (generated from the upstream swagger.json and
 * compiled ahead of time by ajv into standalone validators, one module per definition).
 *
 * Two checks, run in one pass of the kind's validator over the body:
 *  - wrong JSON types anywhere ("spec.containers[0].ports in body must be of type array:
 *    \"object\""), answered with 422 before any semantic check;
 *  - fields the schema does not know ("spec.foo"), which `fieldValidation` turns into a 400
 *    (Strict), a warning (Warn) or nothing (Ignore); they are dropped in every case.
 *
 * Unknown fields come from the validators themselves: the body is wrapped in proxies that
 * record which properties each generated validator reads (it reads every property its
 * schema defines, and enumerates the keys of maps), so the keys of an object that were never
 * read are the ones its schema lacks. Nothing here is hand-copied from the schema.
 *
 * The kinds defined by a SIG project's CRD (ClusterNetworkPolicy), which kubernetes-models has no
 * validators for, are checked the same two ways by walking their OpenAPI schema from
 * openapi-schemas.json (hand-written from the CRD, crd-schemas.ts), as apiextensions-apiserver's
 * decoder and pruning do for a custom resource.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { crdKindSchema, derefSchema, type JsonObject } from "./openapi.ts";
import { CRD_API_VERSION, CRD_KIND, checkWithCrdSchemasDetached } from "./crds.ts";

/** One wrong JSON type, as field.Error (ErrorTypeTypeInvalid) renders it. */
export interface StructuralError {
  type: "FieldValueTypeInvalid";
  /** e.g. "spec.containers[0].ports" */
  field: string;
  /** The part after the field, e.g. `Invalid value: "object": spec.containers[0].ports in body must be of type array: "object"`. */
  message: string;
  /** The JSON type the schema wants ("array", "string", "integer-or-string"...). */
  expected: string;
  /** The JSON type found ("object", "integer", "number"...). */
  actual: string;
}

export type FieldValidation = "Strict" | "Warn" | "Ignore";

export interface SchemaCheck {
  structural: StructuralError[];
  /** Paths of fields the schema does not define, e.g. "spec.foo", "spec.containers[0].bogus". */
  unknown: string[];
}

interface AjvError {
  instancePath: string;
  keyword: string;
  params: { type?: string; [k: string]: unknown };
}
type Validator = ((data: unknown) => boolean) & { errors?: AjvError[] | null };

/** apiVersion/kind -> the definition name in kubernetes-models/_schemas. */
export const DEFINITIONS: Readonly<Record<string, string>> = {
  "v1/Namespace": "IoK8sApiCoreV1Namespace",
  "v1/Node": "IoK8sApiCoreV1Node",
  "v1/Pod": "IoK8sApiCoreV1Pod",
  "v1/Service": "IoK8sApiCoreV1Service",
  "v1/Endpoints": "IoK8sApiCoreV1Endpoints",
  "v1/Event": "IoK8sApiCoreV1Event",
  "discovery.k8s.io/v1/EndpointSlice": "IoK8sApiDiscoveryV1EndpointSlice",
  "apps/v1/Deployment": "IoK8sApiAppsV1Deployment",
  "apps/v1/ReplicaSet": "IoK8sApiAppsV1ReplicaSet",
  "networking.k8s.io/v1/NetworkPolicy": "IoK8sApiNetworkingV1NetworkPolicy",
  "networking.k8s.io/v1/Ingress": "IoK8sApiNetworkingV1Ingress",
  "networking.k8s.io/v1/IngressClass": "IoK8sApiNetworkingV1IngressClass",
  "v1/ServiceAccount": "IoK8sApiCoreV1ServiceAccount",
  "v1/ConfigMap": "IoK8sApiCoreV1ConfigMap",
  "v1/Secret": "IoK8sApiCoreV1Secret",
  "v1/LimitRange": "IoK8sApiCoreV1LimitRange",
  "v1/ResourceQuota": "IoK8sApiCoreV1ResourceQuota",
  "v1/PersistentVolumeClaim": "IoK8sApiCoreV1PersistentVolumeClaim",
  "apps/v1/StatefulSet": "IoK8sApiAppsV1StatefulSet",
  "apps/v1/DaemonSet": "IoK8sApiAppsV1DaemonSet",
  "batch/v1/Job": "IoK8sApiBatchV1Job",
  "batch/v1/CronJob": "IoK8sApiBatchV1CronJob",
  "autoscaling/v2/HorizontalPodAutoscaler": "IoK8sApiAutoscalingV2HorizontalPodAutoscaler",
  "policy/v1/PodDisruptionBudget": "IoK8sApiPolicyV1PodDisruptionBudget",
  "rbac.authorization.k8s.io/v1/Role": "IoK8sApiRbacV1Role",
  "rbac.authorization.k8s.io/v1/RoleBinding": "IoK8sApiRbacV1RoleBinding",
  "rbac.authorization.k8s.io/v1/ClusterRole": "IoK8sApiRbacV1ClusterRole",
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "IoK8sApiRbacV1ClusterRoleBinding",
  "coordination.k8s.io/v1/Lease": "IoK8sApiCoordinationV1Lease",
  "scheduling.k8s.io/v1/PriorityClass": "IoK8sApiSchedulingV1PriorityClass",
  "apiextensions.k8s.io/v1/CustomResourceDefinition": "IoK8sApiextensionsApiserverPkgApisApiextensionsV1CustomResourceDefinition",
};

const require = createRequire(import.meta.url);
let schemaDir: string | undefined;
const validators = new Map<string, Validator | null>();

/** The kind's validator, loaded on first use and kept; undefined for a kind without a schema. */
function validatorFor(kind: string, apiVersion: string): Validator | undefined {
  const key = `${apiVersion}/${kind}`;
  let v = validators.get(key);
  if (v === undefined) {
    const def = DEFINITIONS[key];
    if (def) {
      // _schemas is not in the package's exports map: load it by path, beside the package's main.
      schemaDir ??= join(dirname(require.resolve("kubernetes-models")), "_schemas");
      v = (require(join(schemaDir, `${def}.js`)) as { validate: Validator }).validate;
    } else {
      v = null;
    }
    validators.set(key, v);
  }
  return v ?? undefined;
}

/**
 * Loads every kind's validator now (~170 ms) instead of on the kind's first request: the API
 * server calls it before serving, so the first creates of a kind do not all wait ~100 ms for its
 * module (with 32 requests in flight, that wait alone made the p99 of a 1,000-pod load).
 */
export function loadValidators(): void {
  for (const key of Object.keys(DEFINITIONS)) {
    const slash = key.lastIndexOf("/");
    validatorFor(key.slice(slash + 1), key.slice(0, slash));
  }
}

/** Whether the kind has a schema: kubernetes-models', or the hand-written one of a CRD-defined kind. */
export function hasSchema(kind: string, apiVersion: string): boolean {
  return DEFINITIONS[`${apiVersion}/${kind}`] !== undefined || crdKindSchema(kind, apiVersion) !== undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** JSON type names as kube-openapi's validator reports them (a whole number is "integer"). */
function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** A JSON pointer of ajv's ("/spec/containers/0/ports") as a Kubernetes field path, walking the data. */
function fieldPath(pointer: string, root: unknown): { field: string; value: unknown } {
  let field = "";
  let value: unknown = root;
  if (pointer === "") return { field, value };
  for (const raw of pointer.slice(1).split("/")) {
    const seg = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (Array.isArray(value)) {
      field += `[${seg}]`;
      value = value[Number(seg)];
    } else {
      field += field ? `.${seg}` : seg;
      value = isObject(value) ? value[seg] : undefined;
    }
  }
  return { field, value };
}

function typeError(field: string, expected: string, actual: string): StructuralError {
  return {
    type: "FieldValueTypeInvalid",
    field,
    expected,
    actual,
    message: `Invalid value: "${actual}": ${field} in body must be of type ${expected}: "${actual}"`,
  };
}

/** Names a oneOf of JSON types the way Kubernetes does (x-kubernetes-int-or-string). */
function unionName(types: string[]): string {
  const set = [...new Set(types)].sort();
  if (set.length === 2 && set[0] === "integer" && set[1] === "string") return "integer-or-string";
  return set.join("-or-");
}

/** ajv's errors reduced to wrong JSON types: enums, formats and required fields are semantic checks. */
function toStructural(errors: readonly AjvError[], body: unknown): StructuralError[] {
  const byPath = new Map<string, AjvError[]>();
  for (const e of errors) {
    const list = byPath.get(e.instancePath);
    if (list) list.push(e);
    else byPath.set(e.instancePath, [e]);
  }
  const out: StructuralError[] = [];
  for (const [pointer, errs] of byPath) {
    const types = errs.filter((e) => e.keyword === "type").map((e) => String(e.params.type));
    if (types.length === 0) continue;
    const { field, value } = fieldPath(pointer, body);
    const actual = jsonType(value);
    if (errs.some((e) => e.keyword === "oneOf")) {
      // int-or-string, quantity: a wrong type only if no branch took the value's type
      // (a string that fails the quantity format is a semantic error).
      if (errs.some((e) => e.keyword !== "type" && e.keyword !== "oneOf")) continue;
      out.push(typeError(field, unionName(types), actual));
    } else {
      out.push(typeError(field, types[0]!, actual));
    }
  }
  return out;
}

/**
 * Runs the kind's validator over `body`, wrapped so that the properties it reads are recorded:
 * `read` gets, per plain object of the body, the keys the schema defines, or "map" for an object
 * whose keys the validator enumerated (labels, selectors, additionalProperties).
 */
function runTracked(validate: Validator, body: unknown): { errors: AjvError[]; read: WeakMap<object, Set<string> | "map"> } {
  const read = new WeakMap<object, Set<string> | "map">();
  const proxies = new WeakMap<object, object>();
  const wrap = (v: unknown): unknown => {
    if (typeof v !== "object" || v === null) return v;
    let p = proxies.get(v);
    if (!p) {
      // An object is known to the schema once the validator reads a property of it: one it
      // only type-checked (wrong type) or never reached (no properties in its schema, as
      // fieldsV1) is left out, and its keys are not judged.
      p = new Proxy(v, {
        get(t, key) {
          const value: unknown = Reflect.get(t, key, t);
          if (typeof key !== "string") return value;
          if (!Array.isArray(t)) {
            const seen = read.get(t);
            if (seen === undefined) read.set(t, new Set([key]));
            else if (seen !== "map") seen.add(key);
          }
          return wrap(value);
        },
        ownKeys(t) {
          if (!Array.isArray(t)) read.set(t, "map");
          return Reflect.ownKeys(t);
        },
      });
      proxies.set(v, p);
    }
    return p;
  };
  validate(wrap(body));
  return { errors: validate.errors ?? [], read };
}

/** A field the schema does not define: its path as printed, and as keys and indexes from the root. */
interface UnknownField {
  path: string;
  at: ReadonlyArray<string | number>;
}

function collectUnknown(v: unknown, path: string, at: ReadonlyArray<string | number>, read: WeakMap<object, Set<string> | "map">, out: UnknownField[]): void {
  if (Array.isArray(v)) {
    v.forEach((item, i) => collectUnknown(item, `${path}[${i}]`, [...at, i], read, out));
    return;
  }
  if (!isObject(v)) return;
  const known = read.get(v);
  // Never looked at (no schema below here, or the parent had the wrong type): nothing to say.
  if (known === undefined) return;
  for (const [key, child] of Object.entries(v)) {
    const p = path ? `${path}.${key}` : key;
    if (known !== "map" && !known.has(key)) out.push({ path: p, at: [...at, key] });
    else collectUnknown(child, p, [...at, key], read, out);
  }
}

/** Deletes the field at `at` (an unknown field: its parents are there). */
function deleteAt(body: unknown, at: ReadonlyArray<string | number>): void {
  let holder = body as Record<string | number, unknown> | undefined;
  for (let i = 0; i < at.length - 1 && holder; i++) holder = holder[at[i]!] as Record<string | number, unknown> | undefined;
  if (holder && typeof holder === "object") delete holder[at[at.length - 1]!];
}

/**
 * The unknown fields of each body shape seen, by kind: `${apiVersion}/${kind}\n${shape}`. Which
 * properties a generated validator reads, and so which fields are unknown, follows from the
 * body's shape alone (its keys, and the JSON type of each value): kubernetes-models' validators
 * use only the keywords type, required, enum, format and oneOf (of scalars: IntOrString,
 * Quantity), none of which makes a read depend on a value. The tracked run (a proxy on every
 * object, ~15x the validator's own cost) is then needed once per shape: every pod of a
 * template, every Event, reuses it and runs the bare validator for the type errors.
 */
const unknownByShape = new Map<string, readonly UnknownField[]>();
/** Shapes remembered at most (then the memo starts over). */
const SHAPES_MAX = 1024;
/** Shapes are remembered only for bodies of at most this many values and key characters. */
const SHAPE_BUDGET = 4096;

/**
 * A body's shape as a string: its keys in order and the JSON type of each value. Undefined for
 * a body over SHAPE_BUDGET or with an object in two places (the tracked run's reads are per
 * object, so a shared object is not the same case as two equal ones).
 */
function shapeOf(body: unknown): string | undefined {
  let budget = SHAPE_BUDGET;
  const seen = new Set<object>();
  const walk = (v: unknown): string | undefined => {
    if (--budget < 0) return undefined;
    if (v === null) return "z";
    if (typeof v !== "object") return typeof v === "string" ? "s" : typeof v === "number" ? "n" : typeof v === "boolean" ? "b" : "u";
    if (seen.has(v)) return undefined;
    seen.add(v);
    let s = Array.isArray(v) ? "[" : "{";
    if (Array.isArray(v)) {
      for (const item of v) {
        const t = walk(item);
        if (t === undefined) return undefined;
        s += `${t},`;
      }
      return `${s}]`;
    }
    for (const k of Object.keys(v)) {
      budget -= k.length;
      const t = walk((v as Record<string, unknown>)[k]);
      if (t === undefined) return undefined;
      // Length-prefixed, so any key reads back unambiguously without quoting and escaping it.
      s += `${k.length}:${k}${t},`;
    }
    return `${s}}`;
  };
  return walk(body);
}

/** checkSchema with a generated validator: the type errors of this body, the unknown fields of its shape. */
function checkWithValidator(key: string, validate: Validator, body: unknown, prune: boolean): SchemaCheck {
  const shape = shapeOf(body);
  const memoKey = shape === undefined ? undefined : `${key}\n${shape}`;
  let unknown = memoKey === undefined ? undefined : unknownByShape.get(memoKey);
  let errors: AjvError[];
  if (unknown) {
    validate(body);
    errors = validate.errors ?? [];
  } else {
    const run = runTracked(validate, body);
    errors = run.errors;
    const found: UnknownField[] = [];
    collectUnknown(body, "", [], run.read, found);
    unknown = found;
    if (memoKey !== undefined) {
      if (unknownByShape.size >= SHAPES_MAX) unknownByShape.clear();
      unknownByShape.set(memoKey, found);
    }
  }
  const structural = toStructural(errors, body);
  if (prune && structural.length === 0) for (const u of unknown) deleteAt(body, u.at);
  return { structural, unknown: unknown.map((u) => u.path) };
}

/** What walking a value against an OpenAPI schema found: wrong types, and where each unknown field is. */
interface Walked {
  structural: StructuralError[];
  unknown: Array<{ path: string; holder: Record<string, unknown>; key: string }>;
}

/** Whether `v` has the JSON type `type` ("integer": a whole number). */
function hasType(v: unknown, type: string): boolean {
  switch (type) {
    case "object":
      return isObject(v);
    case "array":
      return Array.isArray(v);
    case "string":
      return typeof v === "string";
    case "boolean":
      return typeof v === "boolean";
    case "integer":
      return typeof v === "number" && Number.isInteger(v);
    case "number":
      return typeof v === "number";
    default:
      return true;
  }
}

/**
 * A value against an OpenAPI (structural) schema: a value of the wrong JSON type is a
 * structural error and is not looked into; a key no `properties` (nor `additionalProperties`)
 * defines is unknown, unless the schema preserves unknown fields. An object schema that defines
 * neither is opaque (FieldsV1), as for the generated validators. Nulls are left alone: the
 * decoder drops the null of a field that is not nullable.
 */
function walkSchema(schemaRef: JsonObject, v: unknown, path: string, out: Walked): void {
  if (v === null || v === undefined) return;
  const s = derefSchema(schemaRef);
  if (s["x-kubernetes-int-or-string"] === true) {
    if (!hasType(v, "integer") && !hasType(v, "string")) out.structural.push(typeError(path, "integer-or-string", jsonType(v)));
    return;
  }
  const type = typeof s.type === "string" ? s.type : undefined;
  if (type !== undefined && !hasType(v, type)) {
    out.structural.push(typeError(path, type, jsonType(v)));
    return;
  }
  if (Array.isArray(v)) {
    const items = isObject(s.items) ? (s.items as JsonObject) : undefined;
    if (items) v.forEach((item, i) => walkSchema(items, item, `${path}[${i}]`, out));
    return;
  }
  if (!isObject(v)) return;
  const props = isObject(s.properties) ? (s.properties as Record<string, JsonObject>) : undefined;
  const additional = isObject(s.additionalProperties) ? (s.additionalProperties as JsonObject) : undefined;
  if (!props && !additional) return;
  for (const [key, child] of Object.entries(v)) {
    const p = path ? `${path}.${key}` : key;
    const sub = props?.[key] ?? additional;
    if (sub) walkSchema(sub, child, p, out);
    else if (s["x-kubernetes-preserve-unknown-fields"] !== true) out.unknown.push({ path: p, holder: v, key });
  }
}

/** checkSchema for a CRD-defined kind: its hand-written schema, walked. */
function checkCrdSchema(schema: JsonObject, body: unknown, prune: boolean): SchemaCheck {
  const out: Walked = { structural: [], unknown: [] };
  walkSchema(schema, body, "", out);
  if (prune && out.structural.length === 0) for (const u of out.unknown) delete u.holder[u.key];
  return { structural: out.structural, unknown: out.unknown.map((u) => u.path) };
}

/**
 * Both checks in one pass of the kind's validator. A kind without a schema passes. With
 * `prune`, the unknown fields are also deleted from `body` in place (what the API server's
 * decoder does in Warn and Ignore modes), unless it has structural errors.
 */
export function checkSchema(kind: string, apiVersion: string, body: unknown, opts: { prune?: boolean } = {}): SchemaCheck {
  if (kind === CRD_KIND && apiVersion === CRD_API_VERSION) return checkWithCrdSchemasDetached(body, opts.prune === true, () => checkKind(kind, apiVersion, body, opts));
  return checkKind(kind, apiVersion, body, opts);
}

function checkKind(kind: string, apiVersion: string, body: unknown, opts: { prune?: boolean }): SchemaCheck {
  const validate = validatorFor(kind, apiVersion);
  if (!validate) {
    const crd = crdKindSchema(kind, apiVersion);
    return crd ? checkCrdSchema(crd, body, opts.prune === true) : { structural: [], unknown: [] };
  }
  return checkWithValidator(`${apiVersion}/${kind}`, validate, body, opts.prune === true);
}

/** The wrong JSON types in `body`, by the official schema of its kind. */
export function structuralErrors(kind: string, apiVersion: string, body: unknown): StructuralError[] {
  return checkSchema(kind, apiVersion, body).structural;
}

/** The fields of `body` the official schema of its kind does not define. */
export function unknownFields(kind: string, apiVersion: string, body: unknown): string[] {
  return checkSchema(kind, apiVersion, body).unknown;
}
