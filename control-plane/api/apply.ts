/**
 * Server-side apply and managed fields, after sigs.k8s.io/structured-merge-diff and
 * k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager as the Kubernetes docs "Server-Side
 * Apply" describe them:
 *
 * - a field set is the set of paths an object sets, serialized as FieldsV1
 *   (`{"f:spec":{"f:replicas":{}}}`); items of associative lists are `k:{"name":"web"}` with the
 *   list's map keys, every other list is atomic (owned whole);
 * - an apply makes its field manager own exactly the fields of its applied configuration: fields
 *   it owned before and omits now are removed (unless another manager owns them), and a field
 *   owned by another manager that the apply would change is a conflict (409), unless forced, in
 *   which case the other manager loses it;
 * - an ordinary write (operation Update) gives its manager the fields it changed, and takes them
 *   away from every other manager.
 *
 * Paths are arrays of FieldsV1 path elements ("f:name", "k:{...}"); sets of them are kept as
 * Sets of their JSON encodings.
 */
import { deepEqual } from "../../cluster/meta.ts";
import type { KubeObject } from "../../cluster/store.ts";
import { patchSchemaFor } from "./patch.ts";
import { ApiError, type StatusCause } from "./status.ts";

export type FieldsV1 = { [element: string]: FieldsV1 };

export interface ManagedFieldsEntry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time?: string;
  fieldsType: "FieldsV1";
  fieldsV1: FieldsV1;
  subresource?: string;
}

export type Path = readonly string[];
export type FieldSet = Set<string>;

const enc = (p: Path): string => JSON.stringify(p);
const dec = (s: string): string[] => JSON.parse(s) as string[];

// ------------------------------------------------------------------ schema: which lists are maps

/** Where a kind's associative lists are and what their keys are. */
export interface ApplySchema {
  /** The map keys of the list at `path` ("spec.template.spec.containers[].ports"), or undefined for an atomic list. */
  listKeys(path: string): readonly string[] | undefined;
}

/**
 * x-kubernetes-list-map-keys where they differ from the strategic merge key
 * (k8s.io/api/core/v1/types.go: ports are keyed by port and protocol).
 */
const MULTI_KEYS: ReadonlyArray<readonly [RegExp, readonly string[]]> = [
  [/(^|\.)(containers|initContainers|ephemeralContainers)\[\]\.ports$/, ["containerPort", "protocol"]],
  [/^spec\.ports$/, ["port", "protocol"]],
];

/** Keys whose absence in an item means their default (the apiserver defaults before merging). */
const KEY_DEFAULTS: Readonly<Record<string, unknown>> = { protocol: "TCP" };

export function applySchemaFor(group: string, kind: string): ApplySchema {
  const lists = patchSchemaFor(group, kind).lists;
  return {
    listKeys(path) {
      const s = lists.get(path);
      if (!s || s.strategy !== "merge" || !s.mergeKey) return undefined;
      for (const [re, keys] of MULTI_KEYS) if (re.test(path) && keys[0] === s.mergeKey) return keys;
      return [s.mergeKey];
    },
  };
}

// ------------------------------------------------------------------ field sets

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The `k:` element of a list item: its key fields (defaulted where absent), names sorted. */
export function keyElement(item: Record<string, unknown>, keys: readonly string[]): string {
  const key: Record<string, unknown> = {};
  for (const k of [...keys].sort()) {
    const v = item[k] ?? KEY_DEFAULTS[k];
    if (v !== undefined) key[k] = v;
  }
  return `k:${JSON.stringify(key)}`;
}

const META_IGNORED = ["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"];

/**
 * The part of an object fields are tracked in: without apiVersion, kind, the system-set
 * metadata and managedFields, and without status where status is its own subresource.
 */
export function trackedPart(obj: unknown, ignoreStatus: boolean): Record<string, unknown> {
  if (!isObject(obj)) return {};
  const out: Record<string, unknown> = structuredClone(obj);
  delete out.apiVersion;
  delete out.kind;
  if (ignoreStatus) delete out.status;
  if (isObject(out.metadata)) {
    const meta = out.metadata;
    for (const k of META_IGNORED) delete meta[k];
    if (Object.keys(meta).length === 0) delete out.metadata;
  }
  return out;
}

/**
 * The field set of an object: every scalar, atomic list and empty object is a member, and so is
 * every item of an associative list (with its fields below it).
 */
export function fieldSetOf(obj: unknown, schema: ApplySchema): FieldSet {
  const out: FieldSet = new Set();
  const walk = (v: unknown, path: string[], spath: string): void => {
    if (isObject(v)) {
      const entries = Object.entries(v);
      if (entries.length === 0 && path.length > 0) out.add(enc(path));
      for (const [k, child] of entries) walk(child, [...path, `f:${k}`], spath ? `${spath}.${k}` : k);
      return;
    }
    if (Array.isArray(v)) {
      const keys = schema.listKeys(spath);
      if (keys && v.length > 0 && v.every(isObject)) {
        for (const item of v as Array<Record<string, unknown>>) {
          const p = [...path, keyElement(item, keys)];
          out.add(enc(p));
          for (const [k, child] of Object.entries(item)) walk(child, [...p, `f:${k}`], `${spath}[].${k}`);
        }
        return;
      }
    }
    out.add(enc(path));
  };
  walk(obj, [], "");
  return out;
}

// ------------------------------------------------------------------ FieldsV1 encoding

interface Node {
  member: boolean;
  children: Map<string, Node>;
}

function compareElements(a: string, b: string): number {
  if (a === ".") return -1;
  if (b === ".") return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function toFieldsV1(set: FieldSet): FieldsV1 {
  const root: Node = { member: false, children: new Map() };
  for (const s of set) {
    let n = root;
    for (const e of dec(s)) {
      let c = n.children.get(e);
      if (!c) n.children.set(e, (c = { member: false, children: new Map() }));
      n = c;
    }
    n.member = true;
  }
  const emit = (n: Node): FieldsV1 => {
    const out: FieldsV1 = {};
    if (n.member && n.children.size > 0) out["."] = {};
    for (const k of [...n.children.keys()].sort(compareElements)) out[k] = emit(n.children.get(k)!);
    return out;
  };
  return emit(root);
}

export function fromFieldsV1(f: unknown): FieldSet {
  const out: FieldSet = new Set();
  const walk = (n: unknown, path: string[]): void => {
    if (!isObject(n)) return;
    const keys = Object.keys(n);
    if (keys.length === 0 && path.length > 0) out.add(enc(path));
    for (const k of keys) {
      if (k === ".") out.add(enc(path));
      else walk(n[k], [...path, k]);
    }
  };
  walk(f, []);
  return out;
}

// ------------------------------------------------------------------ paths in objects

const MISSING: unique symbol = Symbol("missing");

function parseKey(e: string): Record<string, unknown> {
  return JSON.parse(e.slice(2)) as Record<string, unknown>;
}

function matchesKey(item: unknown, key: Record<string, unknown>): boolean {
  if (!isObject(item)) return false;
  return Object.entries(key).every(([k, v]) => deepEqual(item[k] ?? KEY_DEFAULTS[k], v));
}

/** The value at `path` in `obj`, or MISSING; with its parent container and the index or name in it. */
function locate(obj: unknown, path: Path): { value: unknown; parent: unknown; at: string | number } | typeof MISSING {
  let cur: unknown = obj;
  let parent: unknown = undefined;
  let at: string | number = "";
  for (const e of path) {
    if (e.startsWith("f:")) {
      if (!isObject(cur) || !Object.hasOwn(cur, e.slice(2))) return MISSING;
      parent = cur;
      at = e.slice(2);
      cur = cur[at];
    } else if (e.startsWith("k:")) {
      if (!Array.isArray(cur)) return MISSING;
      const key = parseKey(e);
      const i = cur.findIndex((item) => matchesKey(item, key));
      if (i < 0) return MISSING;
      parent = cur;
      at = i;
      cur = cur[i];
    } else if (e.startsWith("v:")) {
      if (!Array.isArray(cur)) return MISSING;
      const v = JSON.parse(e.slice(2)) as unknown;
      const i = cur.findIndex((x) => deepEqual(x, v));
      if (i < 0) return MISSING;
      parent = cur;
      at = i;
      cur = cur[i];
    } else return MISSING;
  }
  return { value: cur, parent, at };
}

export function hasPath(obj: unknown, path: Path): boolean {
  return locate(obj, path) !== MISSING;
}

function valueAt(obj: unknown, path: Path): unknown {
  const l = locate(obj, path);
  return l === MISSING ? MISSING : l.value;
}

/** Removes the field or list item at `path`, then every object or list left empty above it that `keep` does not hold. */
function removePath(obj: unknown, path: Path, keep: (p: Path) => boolean): void {
  const l = locate(obj, path);
  if (l === MISSING || path.length === 0) return;
  if (Array.isArray(l.parent)) l.parent.splice(l.at as number, 1);
  else delete (l.parent as Record<string, unknown>)[l.at as string];
  for (let n = path.length - 1; n > 0; n--) {
    const up = path.slice(0, n);
    const u = locate(obj, up);
    if (u === MISSING) return;
    const empty = Array.isArray(u.value) ? u.value.length === 0 : isObject(u.value) && Object.keys(u.value).length === 0;
    if (!empty || keep(up)) return;
    if (Array.isArray(u.parent)) u.parent.splice(u.at as number, 1);
    else delete (u.parent as Record<string, unknown>)[u.at as string];
  }
}

/** `.spec.template.spec.containers[name="web"].image`, as Kubernetes prints a path. */
export function formatPath(path: Path): string {
  let s = "";
  for (const e of path) {
    if (e.startsWith("f:")) s += `.${e.slice(2)}`;
    else if (e.startsWith("k:")) s += `[${Object.entries(parseKey(e)).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",")}]`;
    else if (e.startsWith("v:")) s += `[=${e.slice(2)}]`;
    else s += e;
  }
  return s;
}

// ------------------------------------------------------------------ merging

/** Sets every field of `applied` in `target` (objects merged, associative lists merged by key, anything else replaced). */
function mergeInto(target: Record<string, unknown>, applied: Record<string, unknown>, spath: string, schema: ApplySchema): void {
  for (const [k, v] of Object.entries(applied)) {
    const sp = spath ? `${spath}.${k}` : k;
    const cur = target[k];
    if (isObject(v) && isObject(cur)) {
      mergeInto(cur, v, sp, schema);
      continue;
    }
    const keys = Array.isArray(v) ? schema.listKeys(sp) : undefined;
    if (keys && Array.isArray(v) && Array.isArray(cur) && v.every(isObject) && cur.every(isObject)) {
      const out = cur as Array<Record<string, unknown>>;
      for (const item of v as Array<Record<string, unknown>>) {
        const key = parseKey(keyElement(item, keys));
        const existing = out.find((x) => matchesKey(x, key));
        if (existing) mergeInto(existing, item, `${sp}[]`, schema);
        else out.push(structuredClone(item));
      }
      continue;
    }
    target[k] = structuredClone(v);
  }
}

function managerIdentity(e: ManagedFieldsEntry): string {
  return JSON.stringify([e.manager, e.operation, e.subresource ?? ""]);
}

/** How Kubernetes names a manager in a conflict (fieldmanager/internal/conflict.go printManager). */
export function describeManager(e: ManagedFieldsEntry): string {
  let s = JSON.stringify(e.manager);
  if (e.subresource) s += ` with subresource ${JSON.stringify(e.subresource)}`;
  if (e.operation === "Update") s += ` using ${e.apiVersion}`;
  return s;
}

export interface Conflict {
  manager: ManagedFieldsEntry;
  path: Path;
}

/** The 409 of an apply with conflicts, worded as kube-apiserver words it. */
export function conflictError(conflicts: readonly Conflict[], name: string, plural: string, group: string): ApiError {
  const byManager = new Map<string, Conflict[]>();
  for (const c of conflicts) {
    const d = describeManager(c.manager);
    byManager.set(d, [...(byManager.get(d) ?? []), c]);
  }
  let detail: string;
  if (conflicts.length === 1) {
    detail = `conflict with ${describeManager(conflicts[0]!.manager)}: ${formatPath(conflicts[0]!.path)}`;
  } else {
    detail = [...byManager].map(([d, cs]) => `conflicts with ${d}:\n${cs.map((c) => `- ${formatPath(c.path)}`).join("\n")}`).join("\n");
  }
  const message = `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? "" : "s"}: ${detail}`;
  const causes: StatusCause[] = conflicts.map((c) => ({ reason: "FieldManagerConflict", message: `conflict with ${describeManager(c.manager)}`, field: formatPath(c.path) }));
  return new ApiError({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason: "Conflict", details: { name, group, kind: plural, causes }, code: 409 });
}

export function isFieldManagerConflict(err: unknown): boolean {
  return err instanceof ApiError && (err.status.details?.causes ?? []).some((c) => c.reason === "FieldManagerConflict");
}

export interface ApplyInput {
  /** The live object, or undefined when the apply creates it. */
  live: KubeObject | undefined;
  /** The applied configuration (already checked against the schema). */
  applied: KubeObject;
  manager: string;
  force: boolean;
  apiVersion: string;
  time: string;
  schema: ApplySchema;
  /** Status is its own subresource: not applied, not tracked. */
  ignoreStatus: boolean;
}

export type ApplyResult = { kind: "ok"; object: KubeObject } | { kind: "conflicts"; conflicts: Conflict[] };

export function readManagedFields(obj: KubeObject | undefined): ManagedFieldsEntry[] {
  const mf = obj?.metadata.managedFields;
  return Array.isArray(mf) ? (mf.filter((e) => isObject(e) && typeof e.manager === "string") as ManagedFieldsEntry[]) : [];
}

/**
 * Merges an applied configuration into the live object (or builds the object to create from it)
 * and the managed fields that result; the caller defaults, validates and stores it, then calls
 * `pruneManagedFields` on the final object.
 */
export function applyConfiguration(input: ApplyInput): ApplyResult {
  const { live, applied, manager, force, schema } = input;
  const appliedPart = trackedPart(applied, input.ignoreStatus);
  const appliedSet = fieldSetOf(appliedPart, schema);
  const livePart = trackedPart(live, input.ignoreStatus);
  const entries = readManagedFields(live).map((e) => ({ entry: e, set: fromFieldsV1(e.fieldsV1) }));
  const mine = { manager, operation: "Apply" as const, apiVersion: input.apiVersion, fieldsType: "FieldsV1" as const, fieldsV1: {} };
  const selfId = managerIdentity(mine);
  const previous = entries.find((e) => managerIdentity(e.entry) === selfId);
  const others = entries.filter((e) => e !== previous);

  // Conflicts: fields another manager owns that this apply would change.
  const conflicts: Conflict[] = [];
  for (const s of appliedSet) {
    const p = dec(s);
    if (p.length > 0 && p[p.length - 1]!.startsWith("k:")) continue;
    const current = valueAt(livePart, p);
    if (current === MISSING || deepEqual(current, valueAt(appliedPart, p))) continue;
    for (const o of others) if (o.set.has(s)) conflicts.push({ manager: o.entry, path: p });
  }
  if (conflicts.length > 0 && !force) return { kind: "conflicts", conflicts };
  for (const c of conflicts) for (const o of others) if (o.entry === c.manager) o.set.delete(enc(c.path));

  // Fields this manager applied before and omits now go, unless someone else owns them (or a field below them).
  const obj: KubeObject = live ? structuredClone(live) : ({ apiVersion: applied.apiVersion, kind: applied.kind, metadata: {} } as KubeObject);
  const ownedByOthers = (p: Path): boolean => {
    const s = enc(p);
    const prefix = s.slice(0, -1);
    return others.some((o) => [...o.set].some((x) => x === s || x.startsWith(`${prefix},`)));
  };
  const keep = (p: Path): boolean => appliedSet.has(enc(p)) || ownedByOthers(p);
  if (previous) {
    const removed = [...previous.set].filter((s) => !appliedSet.has(s)).map(dec);
    // Shallowest first: an omitted list item goes whole, before its key fields would be.
    removed.sort((a, b) => a.length - b.length);
    for (const p of removed) if (!ownedByOthers(p)) removePath(obj, p, keep);
  }
  mergeInto(obj as Record<string, unknown>, appliedPart, "", schema);

  const mineEntry: ManagedFieldsEntry = { ...mine, time: input.time, fieldsV1: toFieldsV1(appliedSet) };
  if (previous && deepEqual(previous.set, appliedSet) && previous.entry.apiVersion === input.apiVersion) mineEntry.time = previous.entry.time ?? input.time;
  const next: ManagedFieldsEntry[] = [];
  let placed = false;
  for (const e of entries) {
    if (e === previous) {
      next.push(mineEntry);
      placed = true;
    } else if (e.set.size > 0) next.push({ ...e.entry, fieldsV1: toFieldsV1(e.set) });
  }
  if (!placed) next.push(mineEntry);
  obj.metadata = { ...obj.metadata, managedFields: next };
  return { kind: "ok", object: obj };
}

export interface UpdateInput {
  before: KubeObject | undefined;
  after: KubeObject;
  /** The manager of this write; undefined for the control plane's own writes (nothing recorded for it). */
  manager: string | undefined;
  subresource?: string;
  apiVersion: string;
  time: string;
  schema: ApplySchema;
  ignoreStatus: boolean;
}

/**
 * The managed fields after an ordinary write (operation Update): the writer owns what it changed,
 * which nobody else owns any more; fields the object no longer has are owned by nobody.
 */
export function updateManagedFields(input: UpdateInput): ManagedFieldsEntry[] {
  const entries = readManagedFields(input.before).map((e) => ({ entry: e, set: fromFieldsV1(e.fieldsV1) }));
  if (!input.manager && entries.length === 0) return [];
  const beforePart = trackedPart(input.before, input.ignoreStatus);
  const afterPart = trackedPart(input.after, input.ignoreStatus);
  const changed = new Set<string>();
  for (const s of fieldSetOf(afterPart, input.schema)) {
    const p = dec(s);
    const was = valueAt(beforePart, p);
    if (was === MISSING || (!p[p.length - 1]?.startsWith("k:") && !deepEqual(was, valueAt(afterPart, p)))) changed.add(s);
  }
  const id = input.manager ? managerIdentity({ manager: input.manager, operation: "Update", apiVersion: input.apiVersion, fieldsType: "FieldsV1", fieldsV1: {}, ...(input.subresource ? { subresource: input.subresource } : {}) }) : undefined;
  let writer = entries.find((e) => managerIdentity(e.entry) === id);
  const before = writer ? new Set(writer.set) : undefined;
  for (const e of entries) if (e !== writer) for (const s of changed) e.set.delete(s);
  if (id && !writer && changed.size > 0) {
    writer = { entry: { manager: input.manager!, operation: "Update", apiVersion: input.apiVersion, time: input.time, fieldsType: "FieldsV1", fieldsV1: {}, ...(input.subresource ? { subresource: input.subresource } : {}) }, set: new Set() };
    entries.push(writer);
  }
  if (writer) for (const s of changed) writer.set.add(s);
  const out: ManagedFieldsEntry[] = [];
  for (const e of entries) {
    for (const s of [...e.set]) if (!hasPath(afterPart, dec(s))) e.set.delete(s);
    if (e.set.size === 0) continue;
    const entry = { ...e.entry, fieldsV1: toFieldsV1(e.set) };
    if (e === writer && !(before && deepEqual(before, e.set) && e.entry.apiVersion === input.apiVersion)) {
      entry.time = input.time;
      entry.apiVersion = input.apiVersion;
    }
    out.push(entry);
  }
  return out;
}

/** After defaulting and admission: drop owned fields the object does not have (except the applier's own). */
export function pruneManagedFields(entries: readonly ManagedFieldsEntry[], obj: KubeObject, keepManager: string | undefined, ignoreStatus: boolean): ManagedFieldsEntry[] {
  const part = trackedPart(obj, ignoreStatus);
  const out: ManagedFieldsEntry[] = [];
  for (const e of entries) {
    if (e.operation === "Apply" && e.manager === keepManager) {
      out.push(e);
      continue;
    }
    const set = fromFieldsV1(e.fieldsV1);
    for (const s of [...set]) if (!hasPath(part, dec(s))) set.delete(s);
    if (set.size > 0) out.push({ ...e, fieldsV1: toFieldsV1(set) });
  }
  return out;
}
