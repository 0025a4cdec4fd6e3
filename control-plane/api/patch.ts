/**
 * The three PATCH bodies the Kubernetes API accepts, applied to plain JSON values:
 *
 *   application/merge-patch+json            RFC 7386 JSON Merge Patch
 *   application/json-patch+json             RFC 6902 JSON Patch (RFC 6901 pointers)
 *   application/strategic-merge-patch+json  Kubernetes strategic merge patch, what `kubectl apply`
 *                                           (client-side) and `kubectl patch` send
 *
 * Pure: no input is ever mutated (every function works on its own copy) and a failed patch
 * returns an error result, never a half-applied object. Object keys are written with
 * defineProperty-safe helpers so a "__proto__" key in a request body stays plain data.
 */

export type PatchResult = { kind: "ok"; value: unknown } | { kind: "error"; code: PatchErrorCode; message: string };

/**
 * Why a patch failed, for the server to pick the status. Kubernetes answers a JSON Patch it cannot
 * decode with 400 and one that fails to apply (missing path, failed `test`) with 422
 * (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go, applyJSPatch), and more than
 * 10000 operations with 413.
 */
import { deepEqual } from "../../cluster/meta.ts";
export const PatchErrorCode = {
  /** The body is not a patch of this type: not an operation list, unknown op or directive, bad pointer syntax. */
  BadPatch: "BadPatch",
  /** A well-formed patch that does not apply to this object: path absent, merge key missing, element types differ. */
  Unprocessable: "Unprocessable",
  /** A JSON Patch `test` operation compared unequal. */
  TestFailed: "TestFailed",
  /** More JSON Patch operations than the API server accepts. */
  TooLarge: "TooLarge",
} as const;
export type PatchErrorCode = (typeof PatchErrorCode)[keyof typeof PatchErrorCode];

/** Thrown inside this module only; every exported function turns it into an error result. */
class PatchFailure extends Error {
  override readonly name = "PatchFailure";
  constructor(
    readonly code: PatchErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function fail(code: PatchErrorCode, message: string): never {
  throw new PatchFailure(code, message);
}

function guarded(run: () => unknown): PatchResult {
  try {
    return { kind: "ok", value: run() };
  } catch (err) {
    if (err instanceof PatchFailure) return { kind: "error", code: err.code, message: err.message };
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// JSON values

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function hasOwn(o: JsonObject, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

function getOwn(o: JsonObject, key: string): unknown {
  return hasOwn(o, key) ? o[key] : undefined;
}

/** Plain assignment would call the Object.prototype setter for "__proto__" and change the prototype. */
function setOwn(o: JsonObject, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

function cloneJson<T>(v: T): T {
  if (Array.isArray(v)) return v.map(cloneJson) as T;
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v)) setOwn(out, k, cloneJson(v[k]));
    return out as T;
  }
  return v;
}


/** The dynamic type Go's reflect.TypeOf distinguishes after json.Unmarshal into interface{}. */
type JsonKind = "null" | "boolean" | "number" | "string" | "array" | "object";

function kindOf(v: unknown): JsonKind {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "object") return "object";
  if (typeof v === "boolean") return "boolean";
  if (typeof v === "number") return "number";
  return "string";
}

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

// ---------------------------------------------------------------------------------------------
// RFC 7386 JSON Merge Patch

/** RFC 7386 §2: null deletes a member, objects merge recursively, anything else replaces. */
export function applyJsonMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return cloneJson(patch);
  const out: JsonObject = isObject(target) ? cloneJson(target) : {};
  for (const name of Object.keys(patch)) {
    const value = patch[name];
    if (value === null) delete out[name];
    else setOwn(out, name, applyJsonMergePatch(getOwn(out, name), value));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// RFC 6902 JSON Patch

/** The API server refuses longer JSON Patches (apiserver handlers/patch.go, maxJSONPatchOperations). */
const MAX_JSON_PATCH_OPERATIONS = 10_000;

const JSON_PATCH_OPS = ["add", "remove", "replace", "move", "copy", "test"] as const;
type JsonPatchOp = (typeof JSON_PATCH_OPS)[number];

/** RFC 6901 §3–4: "" is the whole document; "~1" is "/", "~0" is "~", any other "~" is an error. */
function parsePointer(pointer: unknown, what: string): string[] {
  if (typeof pointer !== "string") fail(PatchErrorCode.BadPatch, `${what} must be a string JSON pointer`);
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) fail(PatchErrorCode.BadPatch, `${what} ${show(pointer)} is not a JSON pointer: it must be empty or start with "/"`);
  return pointer
    .slice(1)
    .split("/")
    .map((token) => {
      if (/~(?![01])/.test(token)) fail(PatchErrorCode.BadPatch, `${what} ${show(pointer)} has an invalid escape: only ~0 and ~1 are allowed`);
      // ~1 first: "~01" must decode to "~1", not "/" (RFC 6901 §4).
      return token.replace(/~1/g, "/").replace(/~0/g, "~");
    });
}

function formatPointer(tokens: readonly string[]): string {
  return tokens.map((t) => "/" + t.replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}

/** An array index per RFC 6901 §4: "0" or digits without a leading zero. */
function arrayIndex(token: string, length: number, allowEnd: boolean, pointer: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) fail(PatchErrorCode.Unprocessable, `${show(pointer)}: ${show(token)} is not an array index`);
  const i = Number(token);
  if (i > length || (i === length && !allowEnd)) fail(PatchErrorCode.Unprocessable, `${show(pointer)}: index ${i} is out of bounds (array length ${length})`);
  return i;
}

/** The value a pointer names, or a failure naming the first missing step. */
function resolve(doc: unknown, tokens: readonly string[]): unknown {
  let cur = doc;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const here = formatPointer(tokens.slice(0, i + 1));
    if (Array.isArray(cur)) cur = cur[arrayIndex(token, cur.length, false, here)];
    else if (isObject(cur) && hasOwn(cur, token)) cur = cur[token];
    else fail(PatchErrorCode.Unprocessable, `${show(here)} does not exist`);
  }
  return cur;
}

/** The container holding the pointer's last token, which must exist (RFC 6902 §4.1). */
function parentOf(doc: unknown, tokens: readonly string[]): { parent: unknown[] | JsonObject; last: string } {
  const parent = resolve(doc, tokens.slice(0, -1));
  if (!Array.isArray(parent) && !isObject(parent)) {
    fail(PatchErrorCode.Unprocessable, `${show(formatPointer(tokens.slice(0, -1)))} is neither an object nor an array`);
  }
  return { parent, last: tokens[tokens.length - 1]! };
}

function addAt(doc: unknown, tokens: readonly string[], value: unknown): unknown {
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens);
  if (Array.isArray(parent)) {
    // "-" appends (RFC 6901 §4 / RFC 6902 §4.1).
    const i = last === "-" ? parent.length : arrayIndex(last, parent.length, true, formatPointer(tokens));
    parent.splice(i, 0, value);
  } else {
    setOwn(parent, last, value);
  }
  return doc;
}

function removeAt(doc: unknown, tokens: readonly string[]): unknown {
  if (tokens.length === 0) fail(PatchErrorCode.Unprocessable, "the whole document cannot be removed");
  const { parent, last } = parentOf(doc, tokens);
  const pointer = formatPointer(tokens);
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(last, parent.length, false, pointer), 1);
  } else {
    if (!hasOwn(parent, last)) fail(PatchErrorCode.Unprocessable, `${show(pointer)} does not exist`);
    delete parent[last];
  }
  return doc;
}

function replaceAt(doc: unknown, tokens: readonly string[], value: unknown): unknown {
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens);
  const pointer = formatPointer(tokens);
  if (Array.isArray(parent)) {
    parent[arrayIndex(last, parent.length, false, pointer)] = value;
  } else {
    if (!hasOwn(parent, last)) fail(PatchErrorCode.Unprocessable, `${show(pointer)} does not exist`);
    setOwn(parent, last, value);
  }
  return doc;
}

function requireValue(op: JsonObject, index: number, name: JsonPatchOp): unknown {
  if (!hasOwn(op, "value")) fail(PatchErrorCode.BadPatch, `operation ${index} (${name}) has no "value"`);
  return op.value;
}

/**
 * RFC 6902: the operations apply in order to a copy of `target`; the first one that fails (or a
 * `test` that compares unequal) fails the whole patch and `target` is left as it was (§5).
 * Members other than op/path/from/value are ignored (§4).
 */
export function applyJsonPatch(target: unknown, ops: unknown): PatchResult {
  return guarded(() => {
    if (!Array.isArray(ops)) fail(PatchErrorCode.BadPatch, "a JSON patch must be an array of operations");
    if (ops.length > MAX_JSON_PATCH_OPERATIONS) {
      fail(PatchErrorCode.TooLarge, `the allowed maximum operations in a JSON patch is ${MAX_JSON_PATCH_OPERATIONS}, got ${ops.length}`);
    }
    let doc = cloneJson(target);
    ops.forEach((op, index) => {
      if (!isObject(op)) fail(PatchErrorCode.BadPatch, `operation ${index} is not an object`);
      const name = op.op;
      if (typeof name !== "string" || !(JSON_PATCH_OPS as readonly string[]).includes(name)) {
        fail(PatchErrorCode.BadPatch, `operation ${index} has unknown op ${show(name)}: expected one of ${JSON_PATCH_OPS.join(", ")}`);
      }
      const opName = name as JsonPatchOp;
      if (!hasOwn(op, "path")) fail(PatchErrorCode.BadPatch, `operation ${index} (${opName}) has no "path"`);
      const path = parsePointer(op.path, `operation ${index} (${opName}) path`);
      try {
        switch (opName) {
          case "add":
            doc = addAt(doc, path, cloneJson(requireValue(op, index, opName)));
            break;
          case "remove":
            doc = removeAt(doc, path);
            break;
          case "replace":
            doc = replaceAt(doc, path, cloneJson(requireValue(op, index, opName)));
            break;
          case "move": {
            const from = parsePointer(op.from, `operation ${index} (move) from`);
            // §4.4: a location cannot be moved into one of its own children.
            if (from.length < path.length && from.every((t, i) => t === path[i])) {
              fail(PatchErrorCode.Unprocessable, `${show(formatPointer(from))} cannot be moved into its own child ${show(formatPointer(path))}`);
            }
            const value = resolve(doc, from);
            if (from.length === path.length && from.every((t, i) => t === path[i])) break;
            doc = addAt(removeAt(doc, from), path, value);
            break;
          }
          case "copy": {
            const from = parsePointer(op.from, `operation ${index} (copy) from`);
            doc = addAt(doc, path, cloneJson(resolve(doc, from)));
            break;
          }
          case "test": {
            const expected = requireValue(op, index, opName);
            const actual = resolve(doc, path);
            if (!deepEqual(actual, expected)) {
              fail(PatchErrorCode.TestFailed, `test failed: ${show(formatPointer(path))} is ${show(actual)}, not ${show(expected)}`);
            }
            break;
          }
        }
      } catch (err) {
        if (err instanceof PatchFailure && !err.message.startsWith("operation ")) {
          throw new PatchFailure(err.code, `operation ${index} (${opName}): ${err.message}`);
        }
        throw err;
      }
    });
    return doc;
  });
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch: schema

/**
 * How a list field merges, from the Go struct tags `patchStrategy` / `patchMergeKey` (surfaced in
 * OpenAPI as x-kubernetes-patch-strategy / x-kubernetes-patch-merge-key). A list of maps with
 * strategy "merge" has a merge key; a list of primitives with "merge" is an unordered set.
 */
export type ListPatchStrategy = { readonly strategy: "merge"; readonly mergeKey?: string } | { readonly strategy: "replace" };

export interface PatchSchema {
  readonly group: string;
  readonly kind: string;
  /**
   * False for a kind this table does not describe. Kubernetes has no strategic merge schema for
   * custom resources and answers 415 there; for a kind it knows but this table omits, only the
   * ObjectMeta lists below are described and every other list is replaced.
   */
  readonly known: boolean;
  /**
   * List fields by path, "[]" marking a step into a list's items (e.g.
   * "spec.template.spec.containers[].ports"). A list not named here is replaced whole, the
   * default for a field without a patchStrategy tag; "replace" entries only document that.
   */
  readonly lists: ReadonlyMap<string, ListPatchStrategy>;
}

const mergeOn = (mergeKey: string): ListPatchStrategy => ({ strategy: "merge", mergeKey });
const mergeSet: ListPatchStrategy = { strategy: "merge" };
const atomic: ListPatchStrategy = { strategy: "replace" };

type Entries = Array<readonly [string, ListPatchStrategy]>;

/** k8s.io/apimachinery/pkg/apis/meta/v1/types.go ObjectMeta. */
function objectMetaLists(prefix: string): Entries {
  return [
    [`${prefix}.finalizers`, mergeSet],
    [`${prefix}.ownerReferences`, mergeOn("uid")],
    [`${prefix}.managedFields`, atomic],
  ];
}

/** k8s.io/api/core/v1/types.go Container / EphemeralContainerCommon. */
function containerLists(prefix: string): Entries {
  return [
    [`${prefix}.ports`, mergeOn("containerPort")],
    [`${prefix}.env`, mergeOn("name")],
    [`${prefix}.volumeMounts`, mergeOn("mountPath")],
    [`${prefix}.volumeDevices`, mergeOn("devicePath")],
    [`${prefix}.envFrom`, atomic],
    [`${prefix}.command`, atomic],
    [`${prefix}.args`, atomic],
  ];
}

/** k8s.io/api/core/v1/types.go PodSpec. */
function podSpecLists(prefix: string): Entries {
  return [
    [`${prefix}.containers`, mergeOn("name")],
    ...containerLists(`${prefix}.containers[]`),
    [`${prefix}.initContainers`, mergeOn("name")],
    ...containerLists(`${prefix}.initContainers[]`),
    [`${prefix}.ephemeralContainers`, mergeOn("name")],
    ...containerLists(`${prefix}.ephemeralContainers[]`),
    // patchStrategy:"merge,retainKeys": the retainKeys half needs no schema, the directive is honoured wherever it appears.
    [`${prefix}.volumes`, mergeOn("name")],
    [`${prefix}.imagePullSecrets`, mergeOn("name")],
    [`${prefix}.hostAliases`, mergeOn("ip")],
    [`${prefix}.topologySpreadConstraints`, mergeOn("topologyKey")],
    [`${prefix}.schedulingGates`, mergeOn("name")],
    [`${prefix}.resourceClaims`, mergeOn("name")],
    [`${prefix}.tolerations`, atomic],
    [`${prefix}.readinessGates`, atomic],
  ];
}

/** k8s.io/api/core/v1/types.go PodTemplateSpec, as embedded by Deployment and ReplicaSet. */
function podTemplateLists(prefix: string): Entries {
  return [...objectMetaLists(`${prefix}.metadata`), ...podSpecLists(`${prefix}.spec`)];
}

const conditionsByType = (prefix: string): Entries => [[`${prefix}.conditions`, mergeOn("type")]];

/** Per "group/Kind"; the core group is "". Sources: k8s.io/api/{core,apps,networking,discovery}/v1/types.go. */
const KIND_LISTS: ReadonlyMap<string, Entries> = new Map<string, Entries>([
  [
    "/Pod",
    [
      ...podSpecLists("spec"),
      ...conditionsByType("status"),
      ["status.podIPs", mergeOn("ip")],
      ["status.hostIPs", mergeOn("ip")],
      ["status.containerStatuses", atomic],
      ["status.initContainerStatuses", atomic],
    ],
  ],
  ["apps/Deployment", [...podTemplateLists("spec.template"), ...conditionsByType("status")]],
  ["apps/ReplicaSet", [...podTemplateLists("spec.template"), ...conditionsByType("status")]],
  [
    "/Service",
    [
      ["spec.ports", mergeOn("port")],
      ["spec.clusterIPs", atomic],
      ["spec.externalIPs", atomic],
      ...conditionsByType("status"),
      ["status.loadBalancer.ingress", atomic],
    ],
  ],
  [
    "/Node",
    [
      ["spec.podCIDRs", mergeSet],
      // NodeSpec.Taints carries no patchStrategy (listType=atomic): `kubectl taint node n key-`
      // sends the remaining taints as the whole list, which a merge by key would not remove.
      ["spec.taints", atomic],
      ["status.addresses", mergeOn("type")],
      ...conditionsByType("status"),
      ["status.images", atomic],
    ],
  ],
  ["/Namespace", [["spec.finalizers", atomic], ...conditionsByType("status")]],
  ["/Event", []],
  ["events.k8s.io/Event", []],
  ["networking.k8s.io/NetworkPolicy", [["spec.ingress", atomic], ["spec.egress", atomic], ["spec.policyTypes", atomic]]],
  ["networking.k8s.io/Ingress", [["spec.rules", atomic], ["spec.tls", atomic], ["status.loadBalancer.ingress", atomic]]],
  ["discovery.k8s.io/EndpointSlice", [["endpoints", atomic], ["ports", atomic]]],
]);

/** The strategic-merge schema of a kind kubewire serves. The core group may be given as "" or "core". */
export function patchSchemaFor(group: string, kind: string): PatchSchema {
  const g = group === "core" ? "" : group;
  const entries = KIND_LISTS.get(`${g}/${kind}`);
  return {
    group: g,
    kind,
    known: entries !== undefined,
    lists: new Map([...objectMetaLists("metadata"), ...(entries ?? [])]),
  };
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch: application
//
// Follows k8s.io/apimachinery/pkg/util/strategicpatch/patch.go (mergeMap, mergeSlice,
// mergePatchIntoOriginal, applyRetainKeysDirective, normalizeElementOrder) and the directive
// reference contributors/devel/sig-api-machinery/strategic-merge-patch.md. Error texts are those
// of k8s.io/apimachinery/pkg/util/mergepatch/errors.go where one exists.

const DIRECTIVE = "$patch";
const RETAIN_KEYS = "$retainKeys";
const SET_ELEMENT_ORDER = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/";

/** What `$patch: delete` on a map turns into: the key holding it disappears. */
const DELETED: unique symbol = Symbol("deleted");
type Merged = unknown | typeof DELETED;

/**
 * A Kubernetes strategic merge patch (StrategicMergeMapPatch: parallel lists merged, unmatched
 * nulls ignored) of `patch` onto `target`, with list strategies from `schema`.
 */
export function applyStrategicMergePatch(target: unknown, patch: unknown, schema: PatchSchema): PatchResult {
  return guarded(() => {
    if (!isObject(patch)) fail(PatchErrorCode.BadPatch, "invalid JSON document: a strategic merge patch must be a JSON object");
    if (!isObject(target)) fail(PatchErrorCode.Unprocessable, "a strategic merge patch applies to a JSON object");
    const merged = new StrategicMerge(schema).mergeMap(cloneJson(target), patch, "");
    // A top-level `$patch: delete` empties the object, as mergeMap's handleDirectiveInMergeMap does.
    return merged === DELETED ? {} : merged;
  });
}

function childPath(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

class StrategicMerge {
  constructor(private readonly schema: PatchSchema) {}

  private strategyAt(path: string): ListPatchStrategy {
    return this.schema.lists.get(path) ?? atomic;
  }

  /** `original` is this call's own copy and is modified in place; `patch` is only read. */
  mergeMap(original: JsonObject, patch: JsonObject, path: string): JsonObject | typeof DELETED {
    if (hasOwn(patch, DIRECTIVE)) {
      const directive = patch[DIRECTIVE];
      if (directive === "replace") {
        // Not merged: the map becomes the patch's content (minus the marker).
        const rest: JsonObject = {};
        for (const k of Object.keys(patch)) if (k !== DIRECTIVE) setOwn(rest, k, patch[k]);
        return this.mergeMap({}, rest, path);
      }
      if (directive === "delete") return DELETED;
      fail(PatchErrorCode.BadPatch, `unknown patch type: ${show(directive)} in map: ${show(patch)}`);
    }

    const plain: string[] = [];
    const orders: string[] = [];
    const deletions: string[] = [];
    for (const key of Object.keys(patch)) {
      if (key === RETAIN_KEYS) continue;
      if (key.startsWith(SET_ELEMENT_ORDER) && key.length > SET_ELEMENT_ORDER.length) orders.push(key);
      else if (key.startsWith(DELETE_FROM_PRIMITIVE_LIST) && key.length > DELETE_FROM_PRIMITIVE_LIST.length) deletions.push(key);
      else if (key.startsWith("$")) fail(PatchErrorCode.BadPatch, `unknown strategic merge patch directive ${show(key)} at ${show(path || ".")}`);
      else plain.push(key);
    }

    if (hasOwn(patch, RETAIN_KEYS)) this.retainKeys(original, patch, plain);

    // $setElementOrder/<field> is merged together with <field> (mergePatchIntoOriginal), so
    // that list is done here and skipped below.
    const done = new Set<string>();
    for (const key of orders) {
      const field = key.slice(SET_ELEMENT_ORDER.length);
      this.setElementOrder(original, patch, field, patch[key], childPath(path, field));
      done.add(field);
    }

    for (const key of plain) {
      if (done.has(key)) continue;
      const patchV = patch[key];
      const here = childPath(path, key);
      if (patchV === null) {
        delete original[key];
        continue;
      }
      if (!hasOwn(original, key) || kindOf(original[key]) !== kindOf(patchV)) {
        // Nothing to merge with (or a type change): the patch's value, with its directives and
        // nulls resolved against nothing (removeDirectives / discardNullValuesFromPatch).
        const fresh = this.fromPatch(patchV, here);
        if (fresh === DELETED) delete original[key];
        else setOwn(original, key, fresh);
        continue;
      }
      const origV = original[key];
      if (isObject(origV) && isObject(patchV)) {
        const merged = this.mergeMap(origV, patchV, here);
        if (merged === DELETED) delete original[key];
        else setOwn(original, key, merged);
      } else if (Array.isArray(origV) && Array.isArray(patchV)) {
        setOwn(original, key, this.mergeListField(origV, patchV, here));
      } else {
        setOwn(original, key, patchV);
      }
    }

    // Deletions after the merge, as they fall when a $setElementOrder list is present.
    for (const key of deletions) {
      const field = key.slice(DELETE_FROM_PRIMITIVE_LIST.length);
      const toDelete = patch[key];
      if (!Array.isArray(toDelete)) fail(PatchErrorCode.BadPatch, `invalid patch format of primitive list: ${show(key)} must be a list`);
      const current = getOwn(original, field);
      if (current === undefined || current === null) continue;
      if (!Array.isArray(current)) fail(PatchErrorCode.Unprocessable, `${show(key)}: ${show(childPath(path, field))} is not a list`);
      if (current.some((x) => isObject(x) || Array.isArray(x)) || toDelete.some((x) => isObject(x) || Array.isArray(x))) {
        fail(PatchErrorCode.Unprocessable, `${show(key)} applies only to a list of primitives`);
      }
      setOwn(original, field, current.filter((x) => !toDelete.includes(x)));
    }
    return original;
  }

  /**
   * $retainKeys (patchStrategy "retainKeys", used on union types such as a volume's source or a
   * Deployment's strategy): clear every key of the original not listed. Every key the patch sets
   * must be listed (applyRetainKeysDirective).
   */
  private retainKeys(original: JsonObject, patch: JsonObject, plain: readonly string[]): void {
    const list = patch[RETAIN_KEYS];
    if (!Array.isArray(list)) fail(PatchErrorCode.BadPatch, "invalid patch format of retainKeys: $retainKeys must be a list");
    const keep = new Set(list);
    for (const key of plain) {
      if (patch[key] !== null && !keep.has(key)) {
        fail(PatchErrorCode.Unprocessable, `patch content doesn't match retainKeys list: ${show(key)} is not in ${show(list)}`);
      }
    }
    for (const key of Object.keys(original)) if (!keep.has(key)) delete original[key];
  }

  /**
   * $setElementOrder/<field>: merge <field> and put the result in the directive's order. Items
   * the directive names come in its order; items only the server has keep their place relative
   * to the live list (mergePatchIntoOriginal → normalizeElementOrder, and
   * contributors/design-proposals/cli/preserve-order-in-strategic-merge-patch.md).
   */
  private setElementOrder(original: JsonObject, patch: JsonObject, field: string, order: unknown, path: string): void {
    if (!Array.isArray(order)) fail(PatchErrorCode.BadPatch, `invalid patch format of setElementOrder list: ${show(SET_ELEMENT_ORDER + field)} must be a list`);
    const strategy = this.strategyAt(path);
    const mergeKey = strategy.strategy === "merge" ? strategy.mergeKey : undefined;
    const origList = getOwn(original, field);
    const patchList = getOwn(patch, field);
    const hasOrig = origList !== undefined && origList !== null;
    const hasPatch = patchList !== undefined;
    if (hasOrig && !Array.isArray(origList)) fail(PatchErrorCode.Unprocessable, `${show(path)} is not a list`);
    if (hasPatch && !Array.isArray(patchList)) fail(PatchErrorCode.Unprocessable, `${show(path)} in the patch is not a list`);
    if (!hasOrig && !hasPatch) return;

    const itemsAreMaps = [...order, ...((origList as unknown[] | undefined) ?? []), ...((patchList as unknown[] | undefined) ?? [])].some(isObject);
    if (itemsAreMaps && mergeKey === undefined) fail(PatchErrorCode.Unprocessable, `${SET_ELEMENT_ORDER}${field}: ${show(path)} has no merge key`);
    const keyOf = (item: unknown): unknown => {
      if (mergeKey === undefined) return item;
      if (!isObject(item) || !hasOwn(item, mergeKey)) fail(PatchErrorCode.Unprocessable, `map: ${show(item)} does not contain declared merge key: ${mergeKey}`);
      return item[mergeKey];
    };
    const orderKeys = order.map(keyOf);
    if (hasPatch) this.checkOrder(patchList as unknown[], orderKeys, keyOf, field);

    let merged: unknown[];
    let serverKeys: unknown[];
    if (hasOrig && hasPatch) {
      const m = this.mergeListWithOrder(origList as unknown[], patchList as unknown[], path);
      merged = m.list;
      serverKeys = m.liveOrder.map(keyOf);
    } else if (hasPatch) {
      merged = this.mergeListField([], patchList as unknown[], path);
      serverKeys = [];
    } else {
      merged = origList as unknown[];
      serverKeys = merged.map(keyOf);
    }

    const inOrder: unknown[] = [];
    const serverOnly: unknown[] = [];
    for (const item of merged) (orderKeys.includes(keyOf(item)) ? inOrder : serverOnly).push(item);
    setOwn(original, field, normalizeElementOrder(inOrder, serverOnly, orderKeys, serverKeys, keyOf));
  }

  /** validatePatchWithSetOrderList: the patch list's items appear in the directive, in the same relative order. */
  private checkOrder(patchList: readonly unknown[], orderKeys: readonly unknown[], keyOf: (x: unknown) => unknown, field: string): void {
    let at = 0;
    for (const item of patchList) {
      if (isObject(item) && hasOwn(item, DIRECTIVE)) continue;
      const key = keyOf(item);
      while (at < orderKeys.length && orderKeys[at] !== key) at++;
      if (at === orderKeys.length) {
        fail(PatchErrorCode.BadPatch, `the order in patch list ${show(patchList)} doesn't match ${SET_ELEMENT_ORDER}${field} list ${show(orderKeys)}`);
      }
      at++;
    }
  }

  /** A list field present on both sides: merged by the schema's strategy, or replaced. */
  private mergeListField(orig: readonly unknown[], patch: readonly unknown[], path: string): unknown[] {
    return this.mergeListWithOrder(orig, patch, path).list;
  }

  /**
   * The merged list, and the live order $setElementOrder interleaves server-only items against.
   * That order is the live list with the slots of deleted items taken by the appended new ones:
   * upstream, deleteMatchingEntries and the appends reuse the live slice's backing array, which
   * mergePatchIntoOriginal then reads as the live order, and the upstream test vectors ("add map
   * and delete map from merging list", patch_test.go) encode the result.
   */
  private mergeListWithOrder(orig: readonly unknown[], patch: readonly unknown[], path: string): { list: unknown[]; liveOrder: readonly unknown[] } {
    const strategy = this.strategyAt(path);
    if (strategy.strategy === "merge") return this.mergeList(orig, patch, strategy.mergeKey, path);
    return { list: this.replaceList(patch, path), liveOrder: orig };
  }

  private replaceList(patch: readonly unknown[], path: string): unknown[] {
    // Replaced: directive items ({"$patch": "replace"}) mean nothing in a list that is replaced anyway.
    const out: unknown[] = [];
    for (const item of patch) {
      if (isObject(item) && hasOwn(item, DIRECTIVE)) {
        if (item[DIRECTIVE] === "replace" || item[DIRECTIVE] === "delete") continue;
        fail(PatchErrorCode.BadPatch, `unknown patch type: ${show(item[DIRECTIVE])} in map: ${show(item)}`);
      }
      const fresh = this.fromPatch(item, `${path}[]`);
      if (fresh !== DELETED) out.push(fresh);
    }
    return out;
  }

  /** mergeSlice: a list with patchStrategy "merge". */
  private mergeList(orig: readonly unknown[], patch: readonly unknown[], mergeKey: string | undefined, path: string): { list: unknown[]; liveOrder: readonly unknown[] } {
    if (orig.length === 0 && patch.length === 0) return { list: [], liveOrder: [] };
    const kinds = new Set([...orig, ...patch].map(kindOf));
    if (kinds.has("array")) fail(PatchErrorCode.Unprocessable, `lists of lists are not supported (${show(path)})`);
    if (kinds.size > 1) fail(PatchErrorCode.Unprocessable, `list element types are not identical in ${show(path)}: ${show(orig)} and ${show(patch)}`);

    if (!kinds.has("object")) {
      // An unordered set of primitives: the union, deduplicated.
      const merged: unknown[] = [];
      for (const v of [...orig, ...patch]) if (!merged.includes(v)) merged.push(v);
      const inPatch = merged.filter((v) => patch.includes(v));
      const serverOnly = merged.filter((v) => !patch.includes(v));
      return { list: normalizeElementOrder(inPatch, serverOnly, patch, orig, (v) => v), liveOrder: orig };
    }

    if (mergeKey === undefined) fail(PatchErrorCode.Unprocessable, `cannot merge lists without merge key for ${show(path)}`);
    const keyOf = (item: unknown): unknown => {
      if (!isObject(item) || !hasOwn(item, mergeKey)) fail(PatchErrorCode.Unprocessable, `map: ${show(item)} does not contain declared merge key: ${mergeKey}`);
      return item[mergeKey];
    };

    // mergeSliceWithSpecialElements: `$patch: delete` items remove every live item with that
    // key; a `$patch: replace` item makes the rest of the patch list the whole list.
    let live = orig.map((x) => x as JsonObject);
    const items: JsonObject[] = [];
    let replace = false;
    for (const item of patch as JsonObject[]) {
      if (!hasOwn(item, DIRECTIVE)) {
        items.push(item);
        continue;
      }
      switch (item[DIRECTIVE]) {
        case "delete": {
          const key = keyOf(item);
          live = live.filter((x) => !(hasOwn(x, mergeKey) && x[mergeKey] === key));
          break;
        }
        case "replace":
          replace = true;
          break;
        case "merge":
          fail(PatchErrorCode.BadPatch, "merging lists cannot yet be specified in the patch");
        default:
          fail(PatchErrorCode.BadPatch, `unknown patch type: ${show(item[DIRECTIVE])} in map: ${show(item)}`);
      }
    }
    const itemPath = `${path}[]`;
    if (replace) return { list: items.map((x) => this.fromPatch(x, itemPath)).filter((x) => x !== DELETED), liveOrder: live };

    // mergeSliceWithoutSpecialElements: merge items with a live item of the same key, append the rest.
    const merged: JsonObject[] = [...live];
    const appended: JsonObject[] = [];
    for (const item of items) {
      const key = keyOf(item);
      const i = merged.findIndex((x) => hasOwn(x, mergeKey) && x[mergeKey] === key);
      if (i >= 0) {
        const m = this.mergeMap(merged[i]!, item, itemPath);
        if (m === DELETED) merged.splice(i, 1);
        else merged[i] = m;
      } else {
        const fresh = this.fromPatch(item, itemPath);
        if (fresh !== DELETED) {
          merged.push(fresh as JsonObject);
          appended.push(fresh as JsonObject);
        }
      }
    }
    const patchKeys = items.map(keyOf);
    const inPatch = merged.filter((x) => patchKeys.includes(keyOf(x)));
    const serverOnly = merged.filter((x) => !patchKeys.includes(keyOf(x)));
    return {
      list: normalizeElementOrder(inPatch, serverOnly, patchKeys, live.map(keyOf), keyOf),
      liveOrder: [...live, ...appended].slice(0, orig.length),
    };
  }

  /** A patch value with nothing to merge into: directives resolved, null members dropped. */
  private fromPatch(value: unknown, path: string): Merged {
    if (isObject(value)) return this.mergeMap({}, value, path);
    if (Array.isArray(value)) return this.mergeListField([], value, path);
    return value;
  }
}

/**
 * normalizeElementOrder + mergeSortedSlice: items named by the patch (or by $setElementOrder) in
 * that order, server-only items in their live order, the two interleaved by their positions in
 * the live list so that a server-only item stays in front of the patch items it preceded.
 */
function normalizeElementOrder(
  patchItems: readonly unknown[],
  serverOnly: readonly unknown[],
  patchOrder: readonly unknown[],
  serverOrder: readonly unknown[],
  keyOf: (item: unknown) => unknown,
): unknown[] {
  const rank = (order: readonly unknown[]) => (item: unknown) => {
    const i = order.indexOf(keyOf(item));
    return i < 0 ? Number.POSITIVE_INFINITY : i;
  };
  const byPatch = rank(patchOrder);
  const byServer = rank(serverOrder);
  // Array.prototype.sort is stable, so unranked items keep their relative order at the end.
  const right = [...patchItems].sort((a, b) => compareRanks(byPatch(a), byPatch(b)));
  const left = [...serverOnly].sort((a, b) => compareRanks(byServer(a), byServer(b)));
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (j >= right.length) out.push(left[i++]);
    else if (i >= left.length) out.push(right[j++]);
    else {
      const li = byServer(left[i]);
      const ri = byServer(right[j]);
      if (Number.isFinite(li) && Number.isFinite(ri) && li < ri) out.push(left[i++]);
      else out.push(right[j++]);
    }
  }
  return out;
}

function compareRanks(a: number, b: number): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}
