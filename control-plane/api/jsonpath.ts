/**
 * The part of Kubernetes' JSONPath (k8s.io/client-go/util/jsonpath) that CRD printer columns use:
 * apiextensions-apiserver's tableconvertor parses each column's `jsonPath` as `{<path>}` with
 * missing keys allowed and prints the first result.
 *
 * Supported: `.field`, `['field']` / `["field"]`, `[n]` (negative counts from the end), `[*]`,
 * and filters `[?(@.a.b)]` (present) and `[?(@.a.b OP literal)]` with OP one of == != < <= > >=
 * and a string ('x' or "x"), number, true, false or null literal. Pure; malformed input is a
 * value, never a throw.
 */

export type JsonPathStep =
  | { kind: "field"; name: string }
  | { kind: "index"; index: number }
  | { kind: "wildcard" }
  | { kind: "filter"; path: JsonPathStep[]; op?: FilterOp; value?: unknown };

export type FilterOp = "==" | "!=" | "<" | "<=" | ">" | ">=";

export type ParsedJsonPath = { kind: "ok"; steps: JsonPathStep[] } | { kind: "error"; message: string };

const NAME_END = /[.[\]()\s=!<>]/;

/** Parses a path such as `.status.conditions[?(@.type=="Ready")].status`. */
export function parseJsonPath(text: string): ParsedJsonPath {
  let s = text.trim();
  // Column paths are written bare (".spec.x"); `{.spec.x}` is the same path in template form.
  if (s.startsWith("{") && s.endsWith("}")) s = s.slice(1, -1).trim();
  if (s === "" || s === ".") return { kind: "ok", steps: [] };
  if (s.startsWith("$")) s = s.slice(1);
  if (!s.startsWith(".") && !s.startsWith("[")) return { kind: "error", message: `must start with "." or "["` };
  const parsed = parseSteps(s, 0, false);
  if (parsed.kind === "error") return parsed;
  if (parsed.end !== s.length) return { kind: "error", message: `unexpected ${JSON.stringify(s.slice(parsed.end))}` };
  return { kind: "ok", steps: parsed.steps };
}

type StepsResult = { kind: "ok"; steps: JsonPathStep[]; end: number } | { kind: "error"; message: string };

/** Steps from `i`; inside a filter, stops at the first character that cannot continue a path. */
function parseSteps(s: string, start: number, inFilter: boolean): StepsResult {
  const steps: JsonPathStep[] = [];
  let i = start;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ".") {
      if (s[i + 1] === ".") return { kind: "error", message: "recursive descent (..) is not supported" };
      let j = i + 1;
      while (j < s.length && !NAME_END.test(s[j]!)) j++;
      const name = s.slice(i + 1, j);
      if (name === "") return { kind: "error", message: `empty field name at offset ${i}` };
      steps.push(name === "*" ? { kind: "wildcard" } : { kind: "field", name });
      i = j;
    } else if (c === "[") {
      const close = matchingBracket(s, i);
      if (close < 0) return { kind: "error", message: `unclosed [ at offset ${i}` };
      const inner = s.slice(i + 1, close).trim();
      const step = parseBracket(inner);
      if (step.kind === "error") return step;
      steps.push(step.step);
      i = close + 1;
    } else if (inFilter) {
      break;
    } else {
      return { kind: "error", message: `unexpected ${JSON.stringify(c)} at offset ${i}` };
    }
  }
  return { kind: "ok", steps, end: i };
}

/** The index of the "]" closing the "[" at `open`, skipping quoted strings and nested brackets. */
function matchingBracket(s: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "[") depth++;
    else if (c === "]" && --depth === 0) return i;
  }
  return -1;
}

function parseBracket(inner: string): { kind: "ok"; step: JsonPathStep } | { kind: "error"; message: string } {
  if (inner === "*") return { kind: "ok", step: { kind: "wildcard" } };
  if (/^-?\d+$/.test(inner)) return { kind: "ok", step: { kind: "index", index: Number(inner) } };
  const quoted = /^'([^']*)'$|^"([^"]*)"$/.exec(inner);
  if (quoted) return { kind: "ok", step: { kind: "field", name: quoted[1] ?? quoted[2] ?? "" } };
  const filter = /^\?\((.*)\)$/s.exec(inner);
  if (!filter) return { kind: "error", message: `unsupported subscript [${inner}]` };
  const body = filter[1]!.trim();
  if (!body.startsWith("@")) return { kind: "error", message: `a filter must start with @: ${body}` };
  const path = parseSteps(body, 1, true);
  if (path.kind === "error") return path;
  const rest = body.slice(path.end).trim();
  if (rest === "") return { kind: "ok", step: { kind: "filter", path: path.steps } };
  const m = /^(==|!=|<=|>=|<|>)\s*(.+)$/s.exec(rest);
  if (!m) return { kind: "error", message: `unsupported filter ${body}` };
  const literal = parseLiteral(m[2]!.trim());
  if (literal.kind === "error") return literal;
  return { kind: "ok", step: { kind: "filter", path: path.steps, op: m[1] as FilterOp, value: literal.value } };
}

function parseLiteral(text: string): { kind: "ok"; value: unknown } | { kind: "error"; message: string } {
  const quoted = /^'([^']*)'$|^"([^"]*)"$/.exec(text);
  if (quoted) return { kind: "ok", value: quoted[1] ?? quoted[2] ?? "" };
  if (text === "true" || text === "false") return { kind: "ok", value: text === "true" };
  if (text === "null" || text === "nil") return { kind: "ok", value: null };
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(text)) return { kind: "ok", value: Number(text) };
  return { kind: "error", message: `unsupported literal ${text}` };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function compare(a: unknown, op: FilterOp, b: unknown): boolean {
  switch (op) {
    case "==":
      return a === b;
    case "!=":
      return a !== b;
    default: {
      if (!((typeof a === "number" && typeof b === "number") || (typeof a === "string" && typeof b === "string"))) return false;
      if (op === "<") return a < b;
      if (op === "<=") return a <= b;
      if (op === ">") return a > b;
      return a >= b;
    }
  }
}

/** Every value the path selects in `root` (missing keys select nothing). */
export function evalJsonPath(steps: readonly JsonPathStep[], root: unknown): unknown[] {
  let cur: unknown[] = [root];
  for (const step of steps) {
    const next: unknown[] = [];
    for (const v of cur) {
      switch (step.kind) {
        case "field":
          if (isRecord(v) && Object.hasOwn(v, step.name)) next.push(v[step.name]);
          break;
        case "index":
          if (Array.isArray(v)) {
            const i = step.index < 0 ? v.length + step.index : step.index;
            if (i >= 0 && i < v.length) next.push(v[i]);
          }
          break;
        case "wildcard":
          if (Array.isArray(v)) next.push(...v);
          else if (isRecord(v)) next.push(...Object.keys(v).sort().map((k) => v[k]));
          break;
        case "filter":
          if (!Array.isArray(v)) break;
          for (const item of v) {
            const found = evalJsonPath(step.path, item);
            if (step.op === undefined ? found.length > 0 : found.some((x) => compare(x, step.op!, step.value))) next.push(item);
          }
          break;
      }
    }
    cur = next;
  }
  return cur;
}
