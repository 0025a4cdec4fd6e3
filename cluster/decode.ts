/**
 * The one checked decode of a stored value, used by every reader of the object store (the API's
 * get/list/watch, the controllers' informers, the node-agents' watches). The store is not
 * trusted: anything may have been put straight into the KV bucket (`nats kv put`, an older or
 * buggy writer), and one bad value must cost its own key, never a process or a whole list.
 *
 * A value decodes when it is a JSON envelope {type, object} whose object has the basic shape
 * every reader relies on: apiVersion and kind strings (those of the resource whose key it is
 * stored under), a metadata object with a non-empty string name, string namespace and uid when
 * present (namespace present exactly for namespaced kinds), labels/annotations maps of strings,
 * ownerReferences/finalizers arrays, and spec/status objects when present; and whose key is the
 * one the object's namespace and name would be stored under. Deeper fields are the readers' own
 * business (they read them defensively).
 */
import { objectKey, type ResourceInfo } from "./resources.ts";
import type { KubeObject, WatchEventType } from "./store.ts";

export type Decoded = { kind: "ok"; type: WatchEventType; object: KubeObject } | { kind: "bad"; key: string; reason: string };

const EVENT_TYPES: ReadonlySet<string> = new Set(["ADDED", "MODIFIED", "DELETED"]);
const decoder = new TextDecoder("utf-8", { fatal: true });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isStringMap(v: unknown): boolean {
  return isObject(v) && Object.values(v).every((x) => typeof x === "string");
}

/**
 * Why `object` lacks the basic shape of a stored object (of resource `r`, when given), or
 * undefined when it has it.
 */
export function shapeProblem(object: unknown, r?: ResourceInfo): string | undefined {
  if (!isObject(object)) return `object is ${describe(object)}, not a JSON object`;
  if (typeof object.apiVersion !== "string") return `apiVersion is ${describe(object.apiVersion)}, not a string`;
  if (typeof object.kind !== "string") return `kind is ${describe(object.kind)}, not a string`;
  if (r) {
    const gv = r.group ? `${r.group}/${r.version}` : r.version;
    if (object.apiVersion !== gv || object.kind !== r.kind) return `${object.apiVersion} ${object.kind} stored as ${gv} ${r.kind}`;
  }
  const m = object.metadata;
  if (!isObject(m)) return `metadata is ${describe(m)}, not an object`;
  if (typeof m.name !== "string" || m.name === "") return `metadata.name is ${describe(m.name)}, not a non-empty string`;
  for (const f of ["namespace", "uid", "resourceVersion", "generateName", "creationTimestamp", "deletionTimestamp"] as const) {
    if (m[f] !== undefined && typeof m[f] !== "string") return `metadata.${f} is ${describe(m[f])}, not a string`;
  }
  if (r && r.namespaced && (typeof m.namespace !== "string" || m.namespace === "")) return "metadata.namespace is missing on a namespaced object";
  if (r && !r.namespaced && m.namespace !== undefined) return "metadata.namespace is set on a cluster-scoped object";
  for (const f of ["labels", "annotations"] as const) {
    if (m[f] !== undefined && !isStringMap(m[f])) return `metadata.${f} is ${describe(m[f])}, not a map of strings`;
  }
  if (m.ownerReferences !== undefined && !(Array.isArray(m.ownerReferences) && m.ownerReferences.every(isObject))) {
    return `metadata.ownerReferences is ${describe(m.ownerReferences)}, not a list of objects`;
  }
  if (m.finalizers !== undefined && !(Array.isArray(m.finalizers) && m.finalizers.every((x) => typeof x === "string"))) {
    return `metadata.finalizers is ${describe(m.finalizers)}, not a list of strings`;
  }
  for (const f of ["generation", "deletionGracePeriodSeconds"] as const) {
    if (m[f] !== undefined && typeof m[f] !== "number") return `metadata.${f} is ${describe(m[f])}, not a number`;
  }
  for (const f of ["spec", "status"] as const) {
    if (object[f] !== undefined && !isObject(object[f])) return `${f} is ${describe(object[f])}, not an object`;
  }
  return undefined;
}

/**
 * Decodes the value stored at `key` (an envelope {type, object}) and checks it. With `r`, the
 * object must be of that resource and `key` must be its key. The object gets `revision` as its
 * resourceVersion. Never throws.
 */
export function decodeStored(key: string, value: Uint8Array, revision: number, r?: ResourceInfo): Decoded {
  const bad = (reason: string): Decoded => ({ kind: "bad", key, reason });
  let env: unknown;
  try {
    env = JSON.parse(decoder.decode(value));
  } catch (err) {
    return bad(`not JSON: ${(err as Error).message}`);
  }
  if (!isObject(env)) return bad(`value is ${describe(env)}, not an envelope {type, object}`);
  if (typeof env.type !== "string" || !EVENT_TYPES.has(env.type)) return bad(`envelope type is ${describe(env.type)}, not ADDED, MODIFIED or DELETED`);
  const problem = shapeProblem(env.object, r);
  if (problem) return bad(problem);
  const object = env.object as KubeObject;
  if (r && objectKey(r, object.metadata.namespace, object.metadata.name!) !== key) {
    return bad(`object ${object.metadata.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata.name} does not belong at this key`);
  }
  object.metadata.resourceVersion = String(revision);
  return { kind: "ok", type: env.type as WatchEventType, object };
}

function describe(v: unknown): string {
  if (v === undefined) return "missing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  const text = JSON.stringify(v) ?? String(v);
  return `${typeof v} ${text.length > 40 ? `${text.slice(0, 40)}...` : text}`;
}
