/**
 * Label and field selectors as the API accepts them in `?labelSelector=` and `?fieldSelector=`,
 * and label selectors as objects carry them (metav1.LabelSelector: a Deployment's
 * spec.selector, a NetworkPolicy's podSelector). The one label matcher of the cluster code:
 * the registry, API validation, the controllers and the scheduler use it, and node-agents
 * (kube-proxy, a NetworkPolicy engine) can, since it lives in cluster/.
 *
 * Label selectors follow k8s.io/apimachinery/pkg/labels/selector.go (lexer, parser,
 * NewRequirement, Requirement.Matches/String); field selectors follow
 * k8s.io/apimachinery/pkg/fields/selector.go; the selectable fields of each kind follow the
 * kind's ToSelectableFields in k8s.io/kubernetes/pkg/registry and its field label conversion in
 * pkg/apis/<group>/v1/conversion.go. Messages are Kubernetes' own, without the
 * "unable to parse requirement: " / "invalid field selector: " prefixes a caller adds.
 */
import type { NodeSelectorRequirement } from "kubernetes-types/core/v1.js";
import type { LabelSelector as LabelSelectorObject } from "kubernetes-types/meta/v1.js";
import { labelValueErrors, qualifiedNameErrors } from "./syntax.ts";

export type SelectorResult<T> = { kind: "ok"; value: T } | { kind: "error"; message: string };

const ok = <T>(value: T): SelectorResult<T> => ({ kind: "ok", value });
const err = <T>(message: string): SelectorResult<T> => ({ kind: "error", message });

function hasOwn(o: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

/** Go's %q, near enough for messages. */
function quote(s: string): string {
  return JSON.stringify(s);
}

/** field.ErrorList.ToAggregate().Error(): one message as is, several as "[a, b]". */
function aggregate(messages: readonly string[]): string {
  return messages.length === 1 ? messages[0]! : `[${messages.join(", ")}]`;
}

// Label key and value syntax: one rule, cluster/syntax.ts (IsQualifiedName, IsValidLabelValue), shared
// with API validation. Lengths there are UTF-8 bytes, as Go's len() counts them.

/** IsQualifiedName: a label key, `[prefix/]name` with a DNS-subdomain prefix and a name of at most 63 bytes. */
export const labelKeyErrors = qualifiedNameErrors;
export { labelValueErrors };

/** field.Invalid(path, value, detail).Error(). */
function invalid(path: string, value: string, detail: string): string {
  return `${path}: Invalid value: ${quote(value)}: ${detail}`;
}

// ---------------------------------------------------------------------------------------------
// Label selectors

/** selection.Operator values (k8s.io/apimachinery/pkg/selection/operator.go). */
export const LabelOperator = {
  In: "in",
  NotIn: "notin",
  Equals: "=",
  DoubleEquals: "==",
  NotEquals: "!=",
  Exists: "exists",
  DoesNotExist: "!",
  GreaterThan: "gt",
  LessThan: "lt",
} as const;
export type LabelOperator = (typeof LabelOperator)[keyof typeof LabelOperator];

export interface LabelRequirement {
  readonly key: string;
  readonly operator: LabelOperator;
  /** Sorted and deduplicated for In/NotIn (a sets.String in Kubernetes); one value for =, ==, !=, gt, lt; none for exists/!. */
  readonly values: readonly string[];
}

/** Requirements ANDed together, sorted by key as the parser leaves them. No requirement: matches everything. */
export interface LabelSelector {
  readonly requirements: readonly LabelRequirement[];
}

const INT64_RE = /^[+-]?[0-9]+$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** strconv.ParseInt(s, 10, 64). */
function parseInt64(s: string): bigint | undefined {
  if (!INT64_RE.test(s)) return undefined;
  const n = BigInt(s);
  return n < INT64_MIN || n > INT64_MAX ? undefined : n;
}

/** NewRequirement's checks; the error strings name the field ("key", "values[0][app]") as field.Path does. */
function newRequirement(key: string, operator: LabelOperator, values: readonly string[], path = ""): SelectorResult<LabelRequirement> {
  const at = (child: string) => (path ? `${path}.${child}` : child);
  const errs: string[] = [];
  const keyErrs = labelKeyErrors(key);
  if (keyErrs.length > 0) errs.push(invalid(at("key"), key, keyErrs.join("; ")));
  switch (operator) {
    case LabelOperator.In:
    case LabelOperator.NotIn:
      if (values.length === 0) errs.push(`${at("values")}: Invalid value: []: for 'in', 'notin' operators, values set can't be empty`);
      break;
    case LabelOperator.Equals:
    case LabelOperator.DoubleEquals:
    case LabelOperator.NotEquals:
      if (values.length !== 1) errs.push(`${at("values")}: Invalid value: ${JSON.stringify(values)}: exact-match compatibility requires one single value`);
      break;
    case LabelOperator.Exists:
    case LabelOperator.DoesNotExist:
      if (values.length !== 0) errs.push(`${at("values")}: Invalid value: ${JSON.stringify(values)}: values set must be empty for exists and does not exist`);
      break;
    case LabelOperator.GreaterThan:
    case LabelOperator.LessThan:
      if (values.length !== 1) errs.push(`${at("values")}: Invalid value: ${JSON.stringify(values)}: for 'Gt', 'Lt' operators, exactly one value is required`);
      values.forEach((v, i) => {
        if (parseInt64(v) === undefined) errs.push(invalid(`${at("values")}[${i}]`, v, "for 'Gt', 'Lt' operators, the value must be an integer"));
      });
      break;
  }
  values.forEach((v, i) => {
    const valueErrs = labelValueErrors(v);
    if (valueErrs.length > 0) errs.push(invalid(`${at("values")}[${i}][${key}]`, v, valueErrs.join("; ")));
  });
  if (errs.length > 0) return err(aggregate(errs));
  return ok({ key, operator, values: [...values] });
}

/** ByKey, stable so that requirements on one key keep their written order. */
function sortedByKey(reqs: readonly LabelRequirement[]): LabelRequirement[] {
  return [...reqs].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function sortedSet(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

// The lexer (selector.go Lexer): whitespace separates, the special symbols = ! ( ) , > < form the
// operators, every other run of characters is an identifier; "in" and "notin" are keywords.

const Tok = {
  Error: "error",
  End: "end",
  ClosedPar: ")",
  Comma: ",",
  DoesNotExist: "!",
  DoubleEquals: "==",
  Equals: "=",
  GreaterThan: ">",
  Identifier: "identifier",
  In: "in",
  LessThan: "<",
  NotEquals: "!=",
  NotIn: "notin",
  OpenPar: "(",
} as const;
type Tok = (typeof Tok)[keyof typeof Tok];

interface Scanned {
  readonly tok: Tok;
  readonly literal: string;
}

const SYMBOL_TOKENS: ReadonlyMap<string, Tok> = new Map<string, Tok>([
  [")", Tok.ClosedPar],
  [",", Tok.Comma],
  ["!", Tok.DoesNotExist],
  ["==", Tok.DoubleEquals],
  ["=", Tok.Equals],
  [">", Tok.GreaterThan],
  ["<", Tok.LessThan],
  ["!=", Tok.NotEquals],
  ["(", Tok.OpenPar],
]);

const isWhitespace = (ch: string) => ch === " " || ch === "\t" || ch === "\r" || ch === "\n";
const isSpecial = (ch: string) => "=!(),><".includes(ch);

function scan(s: string): Scanned[] {
  const items: Scanned[] = [];
  let pos = 0;
  for (;;) {
    while (pos < s.length && isWhitespace(s[pos]!)) pos++;
    if (pos >= s.length) {
      items.push({ tok: Tok.End, literal: "" });
      return items;
    }
    if (isSpecial(s[pos]!)) {
      // The longest run of special symbols that is still a token ("!=" over "!").
      let buffer = "";
      let last: Scanned | undefined;
      while (pos < s.length && isSpecial(s[pos]!)) {
        const tok = SYMBOL_TOKENS.get(buffer + s[pos]!);
        if (tok === undefined && last) break;
        buffer += s[pos]!;
        pos++;
        if (tok !== undefined) last = { tok, literal: buffer };
      }
      items.push(last ?? { tok: Tok.Error, literal: `error expected: keyword found '${buffer}'` });
      continue;
    }
    let word = "";
    while (pos < s.length && !isSpecial(s[pos]!) && !isWhitespace(s[pos]!)) word += s[pos++]!;
    items.push({ tok: word === "in" ? Tok.In : word === "notin" ? Tok.NotIn : Tok.Identifier, literal: word });
  }
}

/** Parser contexts: where a value may stand, "in" and "notin" are plain identifiers ("x in (in)", "notin=in"). */
const VALUES = true;
const KEY_AND_OPERATOR = false;

class LabelParser {
  private position = 0;
  constructor(private readonly items: readonly Scanned[]) {}

  private at(index: number, values: boolean): Scanned {
    const item = this.items[Math.min(index, this.items.length - 1)]!;
    if (values && (item.tok === Tok.In || item.tok === Tok.NotIn)) return { tok: Tok.Identifier, literal: item.literal };
    return item;
  }
  private lookahead(values: boolean): Scanned {
    return this.at(this.position, values);
  }
  private consume(values: boolean): Scanned {
    return this.at(this.position++, values);
  }

  parse(): SelectorResult<LabelRequirement[]> {
    const reqs: LabelRequirement[] = [];
    for (;;) {
      const { tok, literal } = this.lookahead(VALUES);
      if (tok === Tok.End) return ok(reqs);
      if (tok !== Tok.Identifier && tok !== Tok.DoesNotExist) return err(`found '${literal}', expected: !, identifier, or 'end of string'`);
      const r = this.parseRequirement();
      if (r.kind === "error") return r;
      reqs.push(r.value);
      const next = this.consume(VALUES);
      if (next.tok === Tok.End) return ok(reqs);
      if (next.tok !== Tok.Comma) return err(`found '${next.literal}', expected: ',' or 'end of string'`);
      const after = this.lookahead(VALUES);
      if (after.tok !== Tok.Identifier && after.tok !== Tok.DoesNotExist) return err(`found '${after.literal}', expected: identifier after ','`);
    }
  }

  private parseRequirement(): SelectorResult<LabelRequirement> {
    // parseKeyAndInferOperator: "!key" is DoesNotExist, a bare "key" followed by "," or the end is Exists.
    let operator: LabelOperator | undefined;
    let { tok, literal } = this.consume(VALUES);
    if (tok === Tok.DoesNotExist) {
      operator = LabelOperator.DoesNotExist;
      ({ tok, literal } = this.consume(VALUES));
    }
    if (tok !== Tok.Identifier) return err(`found '${literal}', expected: identifier`);
    const key = literal;
    const keyErrs = labelKeyErrors(key);
    if (keyErrs.length > 0) return err(invalid("key", key, keyErrs.join("; ")));
    const next = this.lookahead(VALUES).tok;
    if (operator === undefined && (next === Tok.End || next === Tok.Comma)) operator = LabelOperator.Exists;
    if (operator !== undefined) return newRequirement(key, operator, []);

    const op = this.consume(KEY_AND_OPERATOR);
    let values: string[];
    switch (op.tok) {
      case Tok.In:
      case Tok.NotIn: {
        const v = this.parseValues();
        if (v.kind === "error") return v;
        values = v.value;
        operator = op.tok === Tok.In ? LabelOperator.In : LabelOperator.NotIn;
        break;
      }
      case Tok.Equals:
      case Tok.DoubleEquals:
      case Tok.NotEquals:
      case Tok.GreaterThan:
      case Tok.LessThan: {
        const v = this.parseExactValue();
        if (v.kind === "error") return v;
        values = v.value;
        operator = (
          {
            [Tok.Equals]: LabelOperator.Equals,
            [Tok.DoubleEquals]: LabelOperator.DoubleEquals,
            [Tok.NotEquals]: LabelOperator.NotEquals,
            [Tok.GreaterThan]: LabelOperator.GreaterThan,
            [Tok.LessThan]: LabelOperator.LessThan,
          } as const
        )[op.tok];
        break;
      }
      default:
        return err(`found '${op.literal}', expected: in, notin, =, ==, !=, gt, lt`);
    }
    return newRequirement(key, operator, values);
  }

  /** "(" values ")": a possibly empty, comma-separated list of possibly empty values; "()" is {""}. */
  private parseValues(): SelectorResult<string[]> {
    const open = this.consume(VALUES);
    if (open.tok !== Tok.OpenPar) return err(`found '${open.literal}' expected: '('`);
    const first = this.lookahead(VALUES);
    if (first.tok === Tok.ClosedPar) {
      this.consume(VALUES);
      return ok([""]);
    }
    if (first.tok !== Tok.Identifier && first.tok !== Tok.Comma) return err(`found '${first.literal}', expected: ',', ')' or identifier`);
    const values = new Set<string>();
    for (;;) {
      const { tok, literal } = this.consume(VALUES);
      if (tok === Tok.Identifier) {
        values.add(literal);
        const next = this.lookahead(VALUES);
        if (next.tok === Tok.Comma) continue;
        if (next.tok === Tok.ClosedPar) break;
        return err(`found '${next.literal}', expected: ',' or ')'`);
      }
      if (tok === Tok.Comma) {
        // "(,", ",," and ",)" each stand for an empty value.
        if (values.size === 0) values.add("");
        const next = this.lookahead(VALUES);
        if (next.tok === Tok.ClosedPar) {
          values.add("");
          break;
        }
        if (next.tok === Tok.Comma) {
          this.consume(VALUES);
          values.add("");
        }
        continue;
      }
      return err(`found '${literal}', expected: ',', or identifier`);
    }
    const close = this.consume(VALUES);
    if (close.tok !== Tok.ClosedPar) return err(`found '${close.literal}', expected: ')'`);
    return ok(sortedSet(values));
  }

  /** One value after =, ==, !=, >, <; nothing before "," or the end is the empty value ("x="). */
  private parseExactValue(): SelectorResult<string[]> {
    const next = this.lookahead(VALUES);
    if (next.tok === Tok.End || next.tok === Tok.Comma) return ok([""]);
    const { tok, literal } = this.consume(VALUES);
    if (tok === Tok.Identifier) return ok([literal]);
    return err(`found '${literal}', expected: identifier`);
  }
}

/**
 * The string syntax of `?labelSelector=` (labels.Parse):
 *   key=value, key==value, key!=value, key in (a,b), key notin (a), key, !key, key>1, key<1
 * comma-separated and ANDed. Keys may carry a DNS-subdomain prefix ("app.kubernetes.io/name");
 * the empty value is valid ("x=", "x in ()").
 */
export function parseLabelSelector(text: string): SelectorResult<LabelSelector> {
  const parsed = new LabelParser(scan(text)).parse();
  if (parsed.kind === "error") return parsed;
  return ok({ requirements: sortedByKey(parsed.value) });
}

/**
 * A metav1.LabelSelector (LabelSelectorAsSelector, with the checks of
 * ValidateLabelSelector in apimachinery/pkg/apis/meta/v1/validation). `path` prefixes the field
 * names in messages, e.g. "spec.selector". The object `{}` matches everything.
 *
 * In/NotIn values are kept as written, duplicates included: LabelSelectorAsSelector hands
 * NewRequirement a copy of expr.Values, and only the string parser makes a set of them
 * (selector.go parseValues). So `in [b, a, a]` prints "in (a,a,b)" as kubectl shows it.
 */
export function labelSelectorFromObject(sel: LabelSelectorObject, path = ""): SelectorResult<LabelSelector> {
  const at = (child: string) => (path ? `${path}.${child}` : child);
  const errs: string[] = [];
  const reqs: LabelRequirement[] = [];
  const matchLabels = sel.matchLabels ?? {};
  for (const key of Object.keys(matchLabels).sort()) {
    const value = matchLabels[key]!;
    for (const msg of labelKeyErrors(key)) errs.push(invalid(at("matchLabels"), key, msg));
    for (const msg of labelValueErrors(value)) errs.push(invalid(at("matchLabels"), value, msg));
    reqs.push({ key, operator: LabelOperator.Equals, values: [value] });
  }
  (sel.matchExpressions ?? []).forEach((expr, i) => {
    const here = at(`matchExpressions[${i}]`);
    const values = expr.values ?? [];
    let operator: LabelOperator | undefined;
    switch (expr.operator) {
      case "In":
      case "NotIn":
        operator = expr.operator === "In" ? LabelOperator.In : LabelOperator.NotIn;
        if (values.length === 0) errs.push(`${here}.values: Required value: must be specified when \`operator\` is 'In' or 'NotIn'`);
        break;
      case "Exists":
      case "DoesNotExist":
        operator = expr.operator === "Exists" ? LabelOperator.Exists : LabelOperator.DoesNotExist;
        if (values.length > 0) errs.push(`${here}.values: Forbidden: may not be specified when \`operator\` is 'Exists' or 'DoesNotExist'`);
        break;
      default:
        errs.push(invalid(`${here}.operator`, String(expr.operator), "not a valid selector operator"));
    }
    for (const msg of labelKeyErrors(expr.key ?? "")) errs.push(invalid(`${here}.key`, expr.key ?? "", msg));
    values.forEach((v, j) => {
      for (const msg of labelValueErrors(v)) errs.push(invalid(`${here}.values[${j}]`, v, msg));
    });
    if (operator !== undefined) reqs.push({ key: expr.key, operator, values: operator === LabelOperator.In || operator === LabelOperator.NotIn ? [...values] : [] });
  });
  if (errs.length > 0) return err(aggregate(errs));
  return ok({ requirements: sortedByKey(reqs) });
}

/** labels.SelectorFromSet: the map form of a selector (a Service's spec.selector); an empty map matches everything. */
export function labelSelectorFromSet(set: Readonly<Record<string, string>>): LabelSelector {
  return { requirements: sortedByKey(Object.keys(set).map((key) => ({ key, operator: LabelOperator.Equals, values: [set[key]!] }))) };
}

/** What metav1.LabelSelectorAsSelector makes of an object's selector: nil selects nothing. */
export type ObjectSelector = SelectorResult<LabelSelector> | { kind: "nothing" };

/**
 * metav1.LabelSelectorAsSelector over an optional field: absent or null selects nothing
 * (labels.Nothing()), `{}` everything, an invalid one is an error. Controllers and validation
 * use this one function, so a ReplicaSet matches the pods validation said it would.
 */
export function labelSelectorAsSelector(sel: LabelSelectorObject | null | undefined, path = ""): ObjectSelector {
  return sel ? labelSelectorFromObject(sel, path) : { kind: "nothing" };
}

/** Whether an object's selector (labelSelectorAsSelector) selects these labels; nothing and errors select none. */
export function objectSelectorMatches(sel: ObjectSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  return sel.kind === "ok" && matchesLabels(sel.value, labels);
}

const NODE_SELECTOR_OPERATORS: Readonly<Record<string, LabelOperator>> = {
  In: LabelOperator.In,
  NotIn: LabelOperator.NotIn,
  Exists: LabelOperator.Exists,
  DoesNotExist: LabelOperator.DoesNotExist,
  Gt: LabelOperator.GreaterThan,
  Lt: LabelOperator.LessThan,
};

/**
 * nodeSelectorRequirementsAsSelector (k8s.io/component-helpers/scheduling/corev1/nodeaffinity):
 * a node affinity term's matchExpressions as a label selector, each through NewRequirement, so
 * Gt/Lt need one int64 value and compare the node's label as an int64 (strconv.ParseInt: "12abc"
 * is not 12). An empty list selects nothing (labels.Nothing()).
 */
export function nodeSelectorRequirementsAsSelector(reqs: readonly NodeSelectorRequirement[]): ObjectSelector {
  if (reqs.length === 0) return { kind: "nothing" };
  const out: LabelRequirement[] = [];
  for (const r of reqs) {
    const op = NODE_SELECTOR_OPERATORS[r.operator];
    if (op === undefined) return err(`${quote(r.operator)} is not a valid node selector operator`);
    const req = newRequirement(r.key, op, r.values ?? []);
    if (req.kind === "error") return req;
    out.push(req.value);
  }
  return ok({ requirements: sortedByKey(out) });
}

/** Requirement.Matches, ANDed. An absent label fails In/=/exists/gt/lt and passes NotIn/!=/!. */
export function matchesLabels(sel: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  const ls = labels ?? {};
  return sel.requirements.every((r) => {
    const has = hasOwn(ls, r.key);
    const value = has ? ls[r.key]! : "";
    switch (r.operator) {
      case LabelOperator.In:
      case LabelOperator.Equals:
      case LabelOperator.DoubleEquals:
        return has && r.values.includes(value);
      case LabelOperator.NotIn:
      case LabelOperator.NotEquals:
        return !has || !r.values.includes(value);
      case LabelOperator.Exists:
        return has;
      case LabelOperator.DoesNotExist:
        return !has;
      case LabelOperator.GreaterThan:
      case LabelOperator.LessThan: {
        if (!has || r.values.length !== 1) return false;
        const actual = parseInt64(value);
        const bound = parseInt64(r.values[0]!);
        if (actual === undefined || bound === undefined) return false;
        return r.operator === LabelOperator.GreaterThan ? actual > bound : actual < bound;
      }
    }
  });
}

/** A selector with no requirement matches everything (labels.Everything().Empty()). */
export function selectorIsEmpty(sel: LabelSelector | FieldSelector): boolean {
  return sel.requirements.length === 0;
}

const LABEL_OPERATOR_TEXT: Readonly<Record<LabelOperator, string>> = {
  [LabelOperator.In]: " in ",
  [LabelOperator.NotIn]: " notin ",
  [LabelOperator.Equals]: "=",
  [LabelOperator.DoubleEquals]: "==",
  [LabelOperator.NotEquals]: "!=",
  [LabelOperator.Exists]: "",
  [LabelOperator.DoesNotExist]: "",
  [LabelOperator.GreaterThan]: ">",
  [LabelOperator.LessThan]: "<",
};

/** Requirement.String joined by "," — what kubectl prints after "Selector:". */
export function formatLabelSelector(sel: LabelSelector): string {
  return sel.requirements
    .map((r) => {
      if (r.operator === LabelOperator.Exists) return r.key;
      if (r.operator === LabelOperator.DoesNotExist) return `!${r.key}`;
      const values = r.values.length === 1 ? r.values[0]! : [...r.values].sort().join(",");
      const set = r.operator === LabelOperator.In || r.operator === LabelOperator.NotIn;
      return `${r.key}${LABEL_OPERATOR_TEXT[r.operator]}${set ? `(${values})` : values}`;
    })
    .join(",");
}

// ---------------------------------------------------------------------------------------------
// Field selectors

export const FieldOperator = {
  /** "=" and "==" (both a hasTerm in Kubernetes). */
  Equals: "=",
  NotEquals: "!=",
} as const;
export type FieldOperator = (typeof FieldOperator)[keyof typeof FieldOperator];

export interface FieldRequirement {
  readonly field: string;
  readonly operator: FieldOperator;
  readonly value: string;
}

/** Terms ANDed together, in the sorted order the parser leaves them. No term: matches everything. */
export interface FieldSelector {
  readonly requirements: readonly FieldRequirement[];
}

/** splitTerms: split on commas not escaped by a backslash (the backslash stays for UnescapeValue). */
function splitTerms(text: string): string[] {
  if (text === "") return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inSlash) inSlash = false;
    else if (c === "\\") inSlash = true;
    else if (c === ",") {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms;
}

/** UnescapeValue: "\\", "\," and "\=" are the only escapes; a bare "," or "=" is an error. */
function unescapeValue(s: string): SelectorResult<string> {
  let out = "";
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c !== "\\" && c !== "," && c !== "=") return err(`invalid escape sequence: \\${c}`);
      out += c;
      inSlash = false;
    } else if (c === "\\") inSlash = true;
    else if (c === "," || c === "=") return err(`unescaped character in value: ${c}`);
    else out += c;
  }
  if (inSlash) return err("invalid escape sequence: \\");
  return ok(out);
}

/**
 * `?fieldSelector=` (fields.ParseSelector): field=value, field==value, field!=value,
 * comma-separated and ANDed. Values may escape "\", "," and "=" with a backslash. Whitespace is
 * not trimmed, as in Kubernetes. Which fields a kind supports is checked separately
 * (supportedFields / checkFieldSelector).
 */
export function parseFieldSelector(text: string): SelectorResult<FieldSelector> {
  const reqs: FieldRequirement[] = [];
  for (const term of splitTerms(text).sort()) {
    if (term === "") continue;
    // The lhs has no escaping: the first operator found splits the term ("!=" before "==" before "=").
    let split: { field: string; op: string; rhs: string } | undefined;
    for (let i = 0; i < term.length && !split; i++) {
      for (const op of ["!=", "==", "="]) {
        if (term.startsWith(op, i)) {
          split = { field: term.slice(0, i), op, rhs: term.slice(i + op.length) };
          break;
        }
      }
    }
    if (!split) return err(`invalid selector: '${text}'; can't understand '${term}'`);
    const value = unescapeValue(split.rhs);
    if (value.kind === "error") return value;
    reqs.push({ field: split.field, operator: split.op === "!=" ? FieldOperator.NotEquals : FieldOperator.Equals, value: value.value });
  }
  return ok({ requirements: reqs });
}

/** hasTerm / notHasTerm: a field missing from `fields` compares as "". */
export function matchesFields(sel: FieldSelector, fields: Readonly<Record<string, string>>): boolean {
  return sel.requirements.every((r) => {
    const actual = hasOwn(fields, r.field) ? fields[r.field]! : "";
    return r.operator === FieldOperator.Equals ? actual === r.value : actual !== r.value;
  });
}

/** EscapeValue, the inverse of the unescaping the parser does. */
function escapeValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/,/g, "\\,").replace(/=/g, "\\=");
}

/** The selector's string form (andTerm.String). */
export function formatFieldSelector(sel: FieldSelector): string {
  return sel.requirements.map((r) => `${r.field}${r.operator}${escapeValue(r.value)}`).join(",");
}

const NAMESPACED_META = ["metadata.name", "metadata.namespace"] as const;

/**
 * The field labels each kind accepts (AddFieldLabelConversionFunc in pkg/apis/core/v1/conversion.go
 * and pkg/apis/apps/v1/conversion.go); a kind without its own list gets
 * DefaultMetaV1FieldSelectorConversion's two. Cluster-scoped kinds have no metadata.namespace.
 */
const SUPPORTED_FIELDS: ReadonlyMap<string, readonly string[]> = new Map<string, readonly string[]>([
  [
    "Pod",
    [
      ...NAMESPACED_META,
      "spec.nodeName",
      "spec.restartPolicy",
      "spec.schedulerName",
      "spec.serviceAccountName",
      "spec.hostNetwork",
      "status.phase",
      "status.podIP",
      "status.nominatedNodeName",
    ],
  ],
  [
    "Event",
    [
      ...NAMESPACED_META,
      "involvedObject.kind",
      "involvedObject.namespace",
      "involvedObject.name",
      "involvedObject.uid",
      "involvedObject.apiVersion",
      "involvedObject.resourceVersion",
      "involvedObject.fieldPath",
      "reason",
      "reportingComponent",
      "source",
      "type",
    ],
  ],
  ["Node", ["metadata.name", "spec.unschedulable"]],
  ["Namespace", ["metadata.name", "status.phase"]],
  ["Service", [...NAMESPACED_META, "spec.clusterIP", "spec.type"]],
  ["ReplicaSet", [...NAMESPACED_META, "status.replicas"]],
]);

/** The field labels a field selector on `kind` may use (anything else is a 400). */
export function supportedFields(kind: string): readonly string[] {
  return SUPPORTED_FIELDS.get(kind) ?? NAMESPACED_META;
}

/**
 * The selector unchanged if every field is one `kind` supports, else Kubernetes' 400 message for
 * the first that is not: "field label not supported: X" from a kind's own conversion func, the
 * DefaultMetaV1FieldSelectorConversion wording for the rest.
 */
export function checkFieldSelector(sel: FieldSelector, kind: string): SelectorResult<FieldSelector> {
  const allowed = supportedFields(kind);
  const bad = sel.requirements.find((r) => !allowed.includes(r.field));
  if (!bad) return ok(sel);
  if (SUPPORTED_FIELDS.has(kind)) return err(`field label not supported: ${bad.field}`);
  return err(`${quote(bad.field)} is not a known field selector: only "metadata.name", "metadata.namespace"`);
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** Stored objects are read, not trusted: a missing or non-object member reads as {}. */
function rec(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/**
 * The selectable fields of an object (the kind's ToSelectableFields in pkg/registry/<group>/<kind>/strategy.go).
 * Absent values are "", as the Go zero values are.
 */
export function fieldsFor(kind: string, obj: unknown): Record<string, string> {
  const o = rec(obj);
  const meta = rec(o.metadata);
  const spec = rec(o.spec);
  const status = rec(o.status);
  const namespaced: Record<string, string> = { "metadata.name": str(meta.name), "metadata.namespace": str(meta.namespace) };
  switch (kind) {
    case "Pod": {
      // status.podIP is the first of status.podIPs (pkg/registry/core/pod/strategy.go, #74345).
      const podIPs: unknown = status.podIPs;
      const first = Array.isArray(podIPs) && podIPs.length > 0 ? str(rec(podIPs[0]).ip) : str(status.podIP);
      return {
        ...namespaced,
        "spec.nodeName": str(spec.nodeName),
        "spec.restartPolicy": str(spec.restartPolicy),
        "spec.schedulerName": str(spec.schedulerName),
        "spec.serviceAccountName": str(spec.serviceAccountName),
        "spec.hostNetwork": String(spec.hostNetwork === true),
        "status.phase": str(status.phase),
        "status.podIP": first,
        "status.nominatedNodeName": str(status.nominatedNodeName),
      };
    }
    case "Event": {
      const involved = rec(o.involvedObject);
      // "source" falls back to reportingController when source.component is empty (pkg/registry/core/event/strategy.go).
      const source = str(rec(o.source).component) || str(o.reportingComponent);
      return {
        ...namespaced,
        "involvedObject.kind": str(involved.kind),
        "involvedObject.namespace": str(involved.namespace),
        "involvedObject.name": str(involved.name),
        "involvedObject.uid": str(involved.uid),
        "involvedObject.apiVersion": str(involved.apiVersion),
        "involvedObject.resourceVersion": str(involved.resourceVersion),
        "involvedObject.fieldPath": str(involved.fieldPath),
        reason: str(o.reason),
        reportingComponent: str(o.reportingComponent),
        source,
        type: str(o.type),
      };
    }
    case "Node":
      return { "metadata.name": str(meta.name), "spec.unschedulable": String(spec.unschedulable === true) };
    case "Namespace":
      return { "metadata.name": str(meta.name), "status.phase": str(status.phase) };
    case "Service":
      return { ...namespaced, "spec.clusterIP": str(spec.clusterIP), "spec.type": str(spec.type) };
    case "ReplicaSet":
      return { ...namespaced, "status.replicas": String(typeof status.replicas === "number" ? status.replicas : 0) };
    default:
      return namespaced;
  }
}
