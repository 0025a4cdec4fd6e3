/**
 * Small helpers every writer of Kubernetes objects needs the same way: timestamps, and the three
 * equalities of JSON objects the cluster code uses (one place each, so a controller, the
 * registry and validation never disagree on whether two objects differ).
 */

/** RFC 3339 at second precision, as metav1.Time marshals ("2026-11-24T03:53:49Z"). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

type JsonObject = Record<string, unknown>;

/**
 * A deep copy of a JSON value (objects, arrays, scalars; an undefined member stays), a few times
 * cheaper than structuredClone on API objects, which every write copies several times. Anything
 * that is not a plain object or array (a Date, a Map) is copied by structuredClone.
 */
export function cloneJson<T>(v: T): T {
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = cloneJson(v[i]);
    return out as T;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return structuredClone(v);
  const out: JsonObject = {};
  for (const k of Object.keys(v)) {
    const c = cloneJson((v as JsonObject)[k]);
    // A "__proto__" member (JSON.parse makes one) is data, not the copy's prototype.
    if (k === "__proto__") Object.defineProperty(out, k, { value: c, enumerable: true, writable: true, configurable: true });
    else out[k] = c;
  }
  return out as T;
}

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The members of an object that JSON would write: an undefined member is an absent one. */
function presentKeys(o: JsonObject): string[] {
  return Object.keys(o).filter((k) => o[k] !== undefined);
}

/**
 * JSON equality as RFC 6902 §4.6 defines it (the JSON Patch "test" operation): objects equal
 * member by member whatever their order, arrays element by element in order, null equals only
 * null. An undefined member counts as absent, as JSON.stringify leaves it out.
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = presentKeys(a);
    if (ka.length !== presentKeys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

/**
 * What a Go typed struct makes of a JSON value: null, "", empty arrays and empty maps decode to
 * the zero value an absent field has, so they are dropped (undefined when nothing is left).
 */
function zeroValuesDropped(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.map(zeroValuesDropped);
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v)) {
      const n = zeroValuesDropped(v[k]);
      if (n !== undefined) out[k] = n;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  return v === null || v === "" ? undefined : v;
}

/**
 * apiequality.Semantic.DeepEqual (k8s.io/apimachinery/third_party/forked/golang/reflect/
 * deep_equal.go) on objects that went through Go types: nil and empty slices and maps are equal,
 * and so are "" and an absent string field (both decode to the zero value). 0 and false are kept
 * apart from absent: they are the values of pointer fields (replicas, automountServiceAccountToken)
 * where Kubernetes tells them from nil.
 */
export function semanticEqual(a: unknown, b: unknown): boolean {
  return deepEqual(zeroValuesDropped(a), zeroValuesDropped(b));
}

function sortedDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedDeep);
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v).sort()) if (v[k] !== undefined) out[k] = sortedDeep(v[k]);
    return out;
  }
  return v;
}

/** JSON with object keys sorted at every depth (undefined members dropped, as JSON does): a stable text to hash. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortedDeep(value));
}
