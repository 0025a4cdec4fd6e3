/**
 * Validation of API objects on create and update, as kube-apiserver does it before storing:
 * the same rules, field paths and error wording, so kubectl shows what it shows against a real
 * cluster. Pure: no I/O, no clock.
 *
 * Sources followed (Kubernetes 1.30-era wording, kept where later releases did not change it):
 * - k8s.io/apimachinery/pkg/util/validation (names, label keys/values, ports, IPs, CIDRs)
 * - k8s.io/apimachinery/pkg/util/validation/field/errors.go (message shapes per error type)
 * - k8s.io/apimachinery/pkg/api/validation/objectmeta.go, pkg/apis/meta/v1/validation
 * - pkg/apis/core/validation/validation.go and events.go (Namespace, Node, Pod, Service)
 * - pkg/apis/apps/validation, pkg/apis/networking/validation, pkg/apis/discovery/validation
 * - k8s.io/apimachinery/pkg/api/errors NewInvalid (the 422 Status)
 * - for the kinds defined by a SIG project's CRD (ClusterNetworkPolicy): apiextensions-apiserver's
 *   custom resource strategy (pkg/registry/customresource/validator.go, strategy.go): metadata,
 *   the OpenAPI schema as kube-openapi's validator reports it
 *   (pkg/apiserver/validation/validation.go kubeOpenAPIResultToFieldErrors), x-kubernetes-list-type
 *   (k8s.io/apiserver/pkg/cel/common listtype validation), then the CEL rules
 *
 * The API server calls defaultObject() first, so a field that defaulting always fills
 * (restartPolicy, protocol, sessionAffinity, ...) is checked here for its value when present,
 * never reported missing: the same object a real apiserver would see after defaulting.
 */

import { parseCron } from "../controllers/logic/cron.ts";
import { ipCidrContains, ipTo4, parseIp, parseIpCidr } from "../../cluster/addressing.ts";
import { deepEqual, semanticEqual } from "../../cluster/meta.ts";
import { crdKindSchema, derefSchema, type JsonObject } from "./openapi.ts";
import { customResourceFor, type CustomResourceServing } from "../../cluster/resources.ts";
import { CRD_API_VERSION, CRD_KIND, validateCustomResourceDefinition } from "./crds.ts";
import { labelSelectorAsSelector as labelSelectorAsSelectorObject, objectSelectorMatches, type ObjectSelector } from "../../cluster/selectors.ts";
import {
  byteLen,
  dns1035LabelErrors,
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  inclusiveRangeError,
  labelValueErrors,
  percentErrors,
  portNameErrors,
  portNumErrors,
  qualifiedNameErrors,
  wildcardDns1123SubdomainErrors,
} from "../../cluster/syntax.ts";

// ---------------------------------------------------------------------------------------------
// Field errors
// ---------------------------------------------------------------------------------------------

/** The Kubernetes cause types (metav1.CauseType); "FieldValueTooMany" is used for list sizes. */
export const FieldErrorType = {
  Invalid: "FieldValueInvalid",
  Required: "FieldValueRequired",
  NotSupported: "FieldValueNotSupported",
  Duplicate: "FieldValueDuplicate",
  Forbidden: "FieldValueForbidden",
  TooLong: "FieldValueTooLong",
  TooMany: "FieldValueTooMany",
} as const;
export type FieldErrorType = (typeof FieldErrorType)[keyof typeof FieldErrorType];

export interface FieldError {
  type: FieldErrorType;
  /** e.g. "spec.ports[0].port" */
  field: string;
  /** The part after the field (field.Error.ErrorBody), e.g. "Invalid value: 70000: must be between 1 and 65535, inclusive". */
  message: string;
}

/** "<field>: <message>", as field.Error.Error() prints it. */
export function formatFieldError(e: FieldError): string {
  return `${e.field}: ${e.message}`;
}

/**
 * A value already rendered the way Go's fmt %#v prints it (maps, slices, structs), since
 * field.Error prints non-scalar bad values that way and kubectl users know those shapes.
 */
class GoRepr {
  constructor(readonly text: string) {}
}

/** strconv.Quote: Go's %q for strings. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    switch (ch) {
      case '"': out += '\\"'; continue;
      case "\\": out += "\\\\"; continue;
      case "\n": out += "\\n"; continue;
      case "\r": out += "\\r"; continue;
      case "\t": out += "\\t"; continue;
      case "\x07": out += "\\a"; continue;
      case "\b": out += "\\b"; continue;
      case "\f": out += "\\f"; continue;
      case "\v": out += "\\v"; continue;
    }
    if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else if (c >= 0x80 && c <= 0x9f) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** field.Error.ErrorBody's rendering of a bad value (a nil pointer prints as "null", quoted). */
function formatValue(v: unknown): string {
  if (v instanceof GoRepr) return v.text;
  if (v === null || v === undefined) return goQuote("null");
  if (typeof v === "string") return goQuote(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  return JSON.stringify(v) ?? String(v);
}

export function invalid(field: string, value: unknown, detail: string): FieldError {
  return { type: FieldErrorType.Invalid, field, message: `Invalid value: ${formatValue(value)}${detail ? `: ${detail}` : ""}` };
}
export function required(field: string, detail = ""): FieldError {
  return { type: FieldErrorType.Required, field, message: `Required value${detail ? `: ${detail}` : ""}` };
}
export function forbidden(field: string, detail: string): FieldError {
  return { type: FieldErrorType.Forbidden, field, message: `Forbidden${detail ? `: ${detail}` : ""}` };
}
export function duplicate(field: string, value: unknown): FieldError {
  return { type: FieldErrorType.Duplicate, field, message: `Duplicate value: ${formatValue(value)}` };
}
export function notSupported(field: string, value: unknown, valid: readonly string[]): FieldError {
  const detail = valid.length > 0 ? `: supported values: ${valid.map(goQuote).join(", ")}` : "";
  return { type: FieldErrorType.NotSupported, field, message: `Unsupported value: ${formatValue(value)}${detail}` };
}
/** field.TooLong never prints the value. */
function tooLong(field: string, maxBytes: number): FieldError {
  return { type: FieldErrorType.TooLong, field, message: `Too long: must have at most ${maxBytes} bytes` };
}
function tooMany(field: string, actual: number, max: number): FieldError {
  return { type: FieldErrorType.TooMany, field, message: `Too many: ${actual}: must have at most ${max} items` };
}

const FIELD_IMMUTABLE = "field is immutable";
const IS_NEGATIVE = "must be greater than or equal to 0";

// field.Path rendering: children joined by ".", indexes and map keys in brackets.
const child = (path: string, ...names: string[]): string => [path, ...names].filter((p) => p !== "").join(".");
const index = (path: string, i: number): string => `${path}[${i}]`;
const keyOf = (path: string, key: string): string => `${path}[${key}]`;

// ---------------------------------------------------------------------------------------------
// Loose access to decoded JSON (the decoder owns type errors; validation never throws)
// ---------------------------------------------------------------------------------------------

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === "object" && v !== null && !Array.isArray(v);
const rec = (v: unknown): Rec => (isRec(v) ? v : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v));
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const present = (v: unknown): boolean => v !== undefined && v !== null;

/** A string map (labels, selectors) with stringified values; undefined when absent. */
function strMap(v: unknown): Record<string, string> | undefined {
  if (!isRec(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) out[k] = str(val);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Go %#v renderings of the composite bad values Kubernetes reports
// ---------------------------------------------------------------------------------------------

function goStringMap(m: Record<string, string> | undefined): GoRepr {
  if (m === undefined) return new GoRepr("map[string]string(nil)");
  const body = Object.keys(m)
    .sort()
    .map((k) => `${goQuote(k)}:${goQuote(m[k] ?? "")}`)
    .join(", ");
  return new GoRepr(`map[string]string{${body}}`);
}

function goStringSlice(v: unknown, type = "[]string"): GoRepr {
  if (!Array.isArray(v)) return new GoRepr(`${type}(nil)`);
  return new GoRepr(`${type}{${v.map((x) => goQuote(str(x))).join(", ")}}`);
}

function goLabelSelector(sel: unknown): GoRepr {
  const s = rec(sel);
  const ml = goStringMap(strMap(s.matchLabels)).text;
  let me = "[]v1.LabelSelectorRequirement(nil)";
  if (Array.isArray(s.matchExpressions)) {
    const items = s.matchExpressions.map((e) => {
      const r = rec(e);
      return `v1.LabelSelectorRequirement{Key:${goQuote(str(r.key))}, Operator:${goQuote(str(r.operator))}, Values:${goStringSlice(r.values).text}}`;
    });
    me = `[]v1.LabelSelectorRequirement{${items.join(", ")}}`;
  }
  return new GoRepr(`v1.LabelSelector{MatchLabels:${ml}, MatchExpressions:${me}}`);
}

function goIntOrString(v: unknown): GoRepr {
  if (typeof v === "string") return new GoRepr(`intstr.IntOrString{Type:1, IntVal:0, StrVal:${goQuote(v)}}`);
  return new GoRepr(`intstr.IntOrString{Type:0, IntVal:${num(v) ?? 0}, StrVal:""}`);
}

// --- IP addresses and CIDRs: the one parser of cluster/addressing.ts (k8s.io/utils/net ParseIPSloppy
// / ParseCIDRSloppy), with validation's messages.

const IP_INVALID = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const CIDR_INVALID = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/** validation.IsValidIP (IPv4 or IPv6). */
export function ipErrors(value: string): string[] {
  return parseIp(value) ? [] : [IP_INVALID];
}
/** validation.IsValidIPv4Address. */
export function ipv4Errors(value: string): string[] {
  const ip = parseIp(value);
  return ip && ipTo4(ip) ? [] : ["must be a valid IPv4 address"];
}
function ipv6Errors(value: string): string[] {
  const ip = parseIp(value);
  return ip && !ipTo4(ip) ? [] : ["must be a valid IPv6 address"];
}
/** validation.IsValidCIDR. */
export function cidrErrors(value: string): string[] {
  return parseIpCidr(value) ? [] : [CIDR_INVALID];
}

export const isValidIP = (value: string): boolean => ipErrors(value).length === 0;
export const isValidIPv4 = (value: string): boolean => ipv4Errors(value).length === 0;
export const isValidCidr = (value: string): boolean => cidrErrors(value).length === 0;

function isIpv6String(value: string): boolean {
  const ip = parseIp(value);
  return ip !== undefined && ipTo4(ip) === undefined;
}

/** core validation ValidateNonSpecialIP: no unspecified, loopback or link-local addresses. */
function validateNonSpecialIp(value: string, path: string): FieldError[] {
  const ip = parseIp(value);
  if (!ip) return [invalid(path, value, "must be a valid IP address")];
  const errs: FieldError[] = [];
  const v4 = ipTo4(ip);
  const b = ip;
  const unspecified = v4 ? v4.every((x) => x === 0) : b.every((x) => x === 0);
  const loopback = v4 ? v4[0] === 127 : b.slice(0, 15).every((x) => x === 0) && b[15] === 1;
  const linkLocal = v4 ? v4[0] === 169 && v4[1] === 254 : b[0] === 0xfe && ((b[1] ?? 0) & 0xc0) === 0x80;
  const linkLocalMulticast = v4 ? v4[0] === 224 && v4[1] === 0 && v4[2] === 0 : b[0] === 0xff && ((b[1] ?? 0) & 0x0f) === 0x02;
  if (unspecified) errs.push(invalid(path, value, `may not be unspecified (${value})`));
  if (loopback) errs.push(invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"));
  if (linkLocal) errs.push(invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"));
  if (linkLocalMulticast) errs.push(invalid(path, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Object metadata (apimachinery/pkg/api/validation/objectmeta.go)
// ---------------------------------------------------------------------------------------------

/** Which name format a kind requires (ValidateNameFunc). */
export const NameRule = {
  DNS1123Subdomain: "DNS1123Subdomain",
  DNS1123Label: "DNS1123Label",
  DNS1035Label: "DNS1035Label",
} as const;
export type NameRule = (typeof NameRule)[keyof typeof NameRule];

/** Kinds this validator knows: their name rule and whether they live in a namespace. */
const KINDS: Readonly<Record<string, { nameRule: NameRule; namespaced: boolean }>> = {
  Namespace: { nameRule: NameRule.DNS1123Label, namespaced: false },
  Node: { nameRule: NameRule.DNS1123Subdomain, namespaced: false },
  Pod: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  Service: { nameRule: NameRule.DNS1035Label, namespaced: true },
  EndpointSlice: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  Deployment: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  ReplicaSet: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  NetworkPolicy: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  Ingress: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  Event: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  IngressClass: { nameRule: NameRule.DNS1123Subdomain, namespaced: false },
  ServiceAccount: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  ConfigMap: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  Secret: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  LimitRange: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  ResourceQuota: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  PersistentVolumeClaim: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  StatefulSet: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  DaemonSet: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  Job: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  CronJob: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  HorizontalPodAutoscaler: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  PodDisruptionBudget: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  Lease: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
  PriorityClass: { nameRule: NameRule.DNS1123Subdomain, namespaced: false },
  // Custom resources' names are DNS subdomains (customresource validator.go).
  ClusterNetworkPolicy: { nameRule: NameRule.DNS1123Subdomain, namespaced: false },
  NetworkChaos: { nameRule: NameRule.DNS1123Subdomain, namespaced: true },
};

/** RBAC names are path segments (rbac/validation ValidateRBACName): "system:controller:x" is fine. */
const RBAC_KINDS: Readonly<Record<string, boolean>> = { Role: true, RoleBinding: true, ClusterRole: false, ClusterRoleBinding: false };

/** path.IsValidPathSegmentName / ValidatePathSegmentName (prefix: generateName). */
export function pathSegmentNameErrors(name: string, prefix: boolean): string[] {
  if (!prefix && (name === "." || name === "..")) return [`may not be '${name}'`];
  const errs: string[] = [];
  for (const illegal of ["/", "%"]) if (name.includes(illegal)) errs.push(`may not contain '${illegal}'`);
  return errs;
}

export function nameRuleForKind(kind: string): NameRule | undefined {
  return KINDS[kind]?.nameRule;
}

/**
 * generic.go maskTrailingDash: a generateName may end in "-" (a suffix follows). Kubernetes
 * replaces the last two characters, a quirk kept so the same prefixes pass and fail.
 */
function maskTrailingDash(name: string): string {
  return name.endsWith("-") && name.length >= 2 ? `${name.slice(0, -2)}a` : name;
}

type NameFn = (name: string, prefix: boolean) => string[];

function nameFn(rule: NameRule | NameFn): NameFn {
  if (typeof rule === "function") return rule;
  const check = rule === NameRule.DNS1123Label ? dns1123LabelErrors : rule === NameRule.DNS1035Label ? dns1035LabelErrors : dns1123SubdomainErrors;
  return (name, prefix) => check(prefix ? maskTrailingDash(name) : name);
}

/** meta/v1/validation ValidateLabels: keys are qualified names, values label values; the path is not keyed. */
function validateLabels(labels: Record<string, string> | undefined, path: string): FieldError[] {
  const errs: FieldError[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    for (const msg of qualifiedNameErrors(k)) errs.push(invalid(path, k, msg));
    for (const msg of labelValueErrors(v)) errs.push(invalid(path, v, msg));
  }
  return errs;
}

const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

/** ValidateAnnotations: keys are qualified names ignoring case, keys+values at most 256 KiB. */
function validateAnnotations(annotations: Record<string, string> | undefined, path: string): FieldError[] {
  const errs: FieldError[] = [];
  let total = 0;
  for (const [k, v] of Object.entries(annotations ?? {})) {
    for (const msg of qualifiedNameErrors(k.toLowerCase())) errs.push(invalid(path, k, msg));
    total += byteLen(k) + byteLen(v);
  }
  if (total > TOTAL_ANNOTATION_SIZE_LIMIT) errs.push(tooLong(path, TOTAL_ANNOTATION_SIZE_LIMIT));
  return errs;
}

function validateOwnerReferences(refs: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  let firstController = "";
  for (const r of arr(refs)) {
    const ref = rec(r);
    const apiVersion = str(ref.apiVersion);
    const version = apiVersion.includes("/") ? apiVersion.slice(apiVersion.indexOf("/") + 1) : apiVersion;
    if (!version) errs.push(invalid(child(path, "apiVersion"), apiVersion, "version must not be empty"));
    if (!str(ref.kind)) errs.push(invalid(child(path, "kind"), str(ref.kind), "must not be empty"));
    if (!str(ref.name)) errs.push(invalid(child(path, "name"), str(ref.name), "must not be empty"));
    if (!str(ref.uid)) errs.push(invalid(child(path, "uid"), str(ref.uid), "must not be empty"));
    if (apiVersion === "v1" && str(ref.kind) === "Event") errs.push(invalid(path, new GoRepr(JSON.stringify(ref)), "/v1, Kind=Event is disallowed from being an owner"));
    if (ref.controller === true) {
      const name = `${str(ref.kind)}/${str(ref.name)}`;
      if (firstController) {
        errs.push(invalid(path, new GoRepr(JSON.stringify(refs)), `Only one reference can have Controller set to true. Found "true" in references for ${firstController} and ${name}`));
      } else firstController = name;
    }
  }
  return errs;
}

function validateFinalizers(finalizers: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const names = arr(finalizers).map(str);
  for (const f of names) for (const msg of qualifiedNameErrors(f)) errs.push(invalid(path, f, msg));
  if (names.includes("orphan") && names.includes("foregroundDeletion")) {
    errs.push(invalid(path, goStringSlice(names), "finalizer orphan and foregroundDeletion cannot be both set"));
  }
  return errs;
}

/**
 * ValidateObjectMeta for a create: name (or generateName, since the server generates the name
 * afterwards), namespace, labels, annotations, owner references, finalizers.
 */
export function validateObjectMeta(meta: unknown, namespaced: boolean, nameRule: NameRule | NameFn): FieldError[] {
  const m = rec(meta);
  const path = "metadata";
  const errs: FieldError[] = [];
  const check = nameFn(nameRule);
  const name = str(m.name);
  const generateName = str(m.generateName);
  if (generateName) {
    for (const msg of check(generateName, true)) errs.push(invalid(child(path, "generateName"), generateName, msg));
  }
  if (!name) {
    if (!generateName) errs.push(required(child(path, "name"), "name or generateName is required"));
  } else {
    for (const msg of check(name, false)) errs.push(invalid(child(path, "name"), name, msg));
  }
  const namespace = str(m.namespace);
  if (namespaced) {
    if (!namespace) errs.push(required(child(path, "namespace")));
    else for (const msg of dns1123LabelErrors(namespace)) errs.push(invalid(child(path, "namespace"), namespace, msg));
  } else if (namespace) {
    errs.push(forbidden(child(path, "namespace"), "not allowed on this type"));
  }
  const generation = num(m.generation);
  if (generation !== undefined && generation < 0) errs.push(invalid(child(path, "generation"), generation, IS_NEGATIVE));
  errs.push(...validateLabels(strMap(m.labels), child(path, "labels")));
  errs.push(...validateAnnotations(strMap(m.annotations), child(path, "annotations")));
  errs.push(...validateOwnerReferences(m.ownerReferences, child(path, "ownerReferences")));
  errs.push(...validateFinalizers(m.finalizers, child(path, "finalizers")));
  return errs;
}

/**
 * ValidateObjectMetaAccessorUpdate, the parts a client controls: name, namespace and uid may
 * not change. resourceVersion, creationTimestamp and the like are the server's to carry over.
 */
function validateObjectMetaUpdate(newMeta: unknown, oldMeta: unknown): FieldError[] {
  const n = rec(newMeta);
  const o = rec(oldMeta);
  const errs: FieldError[] = [];
  for (const f of ["name", "namespace"] as const) {
    if (str(n[f]) !== str(o[f])) errs.push(invalid(child("metadata", f), str(n[f]), FIELD_IMMUTABLE));
  }
  if (str(n.uid) && str(o.uid) && str(n.uid) !== str(o.uid)) errs.push(invalid("metadata.uid", str(n.uid), FIELD_IMMUTABLE));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Label selectors (meta/v1/validation ValidateLabelSelector, labels.Selector matching)
// ---------------------------------------------------------------------------------------------

/**
 * meta/v1/validation ValidateLabelSelector. `allowInvalidLabelValue` is its
 * LabelSelectorValidationOptions.AllowInvalidLabelValueInSelector: the values of matchExpressions
 * are not checked (matchLabels values still are).
 */
function validateLabelSelector(selector: unknown, path: string, allowInvalidLabelValue = false): FieldError[] {
  if (!isRec(selector)) return [];
  const errs = validateLabels(strMap(selector.matchLabels), child(path, "matchLabels"));
  arr(selector.matchExpressions).forEach((e, i) => {
    const expr = rec(e);
    const p = index(child(path, "matchExpressions"), i);
    const values = arr(expr.values).map(str);
    const op = str(expr.operator);
    switch (op) {
      case "In":
      case "NotIn":
        if (values.length === 0) errs.push(required(child(p, "values"), "must be specified when `operator` is 'In' or 'NotIn'"));
        break;
      case "Exists":
      case "DoesNotExist":
        if (values.length > 0) errs.push(forbidden(child(p, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
        break;
      default:
        errs.push(invalid(child(p, "operator"), op, "not a valid selector operator"));
    }
    const key = str(expr.key);
    for (const msg of qualifiedNameErrors(key)) errs.push(invalid(child(p, "key"), key, msg));
    if (!allowInvalidLabelValue) {
      values.forEach((v, vi) => {
        for (const msg of labelValueErrors(v)) errs.push(invalid(index(child(p, "values"), vi), v, msg));
      });
    }
  });
  return errs;
}

/**
 * metav1.LabelSelectorAsSelector through cluster/selectors.ts, the matcher the controllers use, over
 * the selector's well-typed parts (validateLabelSelector reports the rest).
 */
function labelSelectorAsSelector(selector: unknown): ObjectSelector {
  if (!isRec(selector)) return { kind: "nothing" };
  return labelSelectorAsSelectorObject({
    matchLabels: strMap(selector.matchLabels) ?? {},
    matchExpressions: arr(selector.matchExpressions).map((e) => {
      const expr = rec(e);
      return { key: str(expr.key), operator: str(expr.operator), values: arr(expr.values).map(str) };
    }),
  });
}

// ---------------------------------------------------------------------------------------------
// Pod spec (core validation ValidatePodSpec and what it calls)
// ---------------------------------------------------------------------------------------------

const PROTOCOLS_SORTED = ["SCTP", "TCP", "UDP"] as const; // sets.List(supportedPortProtocols)

function validateContainerPorts(ports: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const names = new Set<string>();
  arr(ports).forEach((p, i) => {
    const port = rec(p);
    const idx = index(path, i);
    const name = str(port.name);
    if (name) {
      const msgs = portNameErrors(name);
      if (msgs.length > 0) for (const msg of msgs) errs.push(invalid(child(idx, "name"), name, msg));
      else if (names.has(name)) errs.push(duplicate(child(idx, "name"), name));
      else names.add(name);
    }
    const containerPort = num(port.containerPort) ?? 0;
    if (containerPort === 0) errs.push(required(child(idx, "containerPort")));
    else for (const msg of portNumErrors(containerPort)) errs.push(invalid(child(idx, "containerPort"), containerPort, msg));
    const hostPort = num(port.hostPort) ?? 0;
    if (hostPort !== 0) for (const msg of portNumErrors(hostPort)) errs.push(invalid(child(idx, "hostPort"), hostPort, msg));
    if (present(port.protocol)) {
      const protocol = str(port.protocol);
      if (!protocol) errs.push(required(child(idx, "protocol")));
      else if (!(PROTOCOLS_SORTED as readonly string[]).includes(protocol)) errs.push(notSupported(child(idx, "protocol"), protocol, PROTOCOLS_SORTED));
    }
  });
  return errs;
}

/** validateContainerCommon: name, image, terminationMessagePolicy, ports, imagePullPolicy. */
function validateContainerCommon(c: Rec, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const name = str(c.name);
  if (!name) errs.push(required(child(path, "name")));
  else for (const msg of dns1123LabelErrors(name)) errs.push(invalid(child(path, "name"), name, msg));
  if (!str(c.image)) errs.push(required(child(path, "image")));
  if (present(c.terminationMessagePolicy)) {
    const policy = str(c.terminationMessagePolicy);
    if (!policy) errs.push(required(child(path, "terminationMessagePolicy")));
    else if (policy !== "File" && policy !== "FallbackToLogsOnError") {
      errs.push(notSupported(child(path, "terminationMessagePolicy"), policy, ["File", "FallbackToLogsOnError"]));
    }
  }
  errs.push(...validateContainerPorts(c.ports, child(path, "ports")));
  if (present(c.imagePullPolicy)) {
    const policy = str(c.imagePullPolicy);
    if (!policy) errs.push(required(child(path, "imagePullPolicy")));
    else if (!["Always", "IfNotPresent", "Never"].includes(policy)) errs.push(notSupported(child(path, "imagePullPolicy"), policy, ["Always", "IfNotPresent", "Never"]));
  }
  return errs;
}

/** checkHostPortConflicts: a protocol/hostIP/hostPort may be bound once per pod. */
function hostPortConflicts(containers: readonly Rec[], path: string, seen = new Set<string>()): FieldError[] {
  const errs: FieldError[] = [];
  containers.forEach((c, ci) => {
    arr(c.ports).forEach((p, pi) => {
      const port = rec(p);
      const hostPort = num(port.hostPort) ?? 0;
      if (hostPort === 0) return;
      const key = `${str(port.protocol)}/${str(port.hostIP)}/${hostPort}`;
      if (seen.has(key)) errs.push(duplicate(child(index(child(index(path, ci), "ports"), pi), "hostPort"), key));
      else seen.add(key);
    });
  });
  return errs;
}

function validateContainers(containers: unknown, path: string): FieldError[] {
  const list = arr(containers).map(rec);
  if (list.length === 0) return [required(path)];
  const errs: FieldError[] = [];
  const names = new Set<string>();
  list.forEach((c, i) => {
    const p = index(path, i);
    errs.push(...validateContainerCommon(c, p));
    const name = str(c.name);
    if (names.has(name)) errs.push(duplicate(child(p, "name"), name));
    else names.add(name);
    if (present(c.restartPolicy)) errs.push(forbidden(child(p, "restartPolicy"), "may not be set for non-init containers"));
  });
  errs.push(...hostPortConflicts(list, path));
  return errs;
}

function validateInitContainers(initContainers: unknown, containers: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const names = new Set(arr(containers).map((c) => str(rec(c).name)));
  arr(initContainers).map(rec).forEach((c, i) => {
    const p = index(path, i);
    errs.push(...validateContainerCommon(c, p));
    const restartAlways = c.restartPolicy === "Always";
    if (present(c.restartPolicy) && !restartAlways) errs.push(notSupported(child(p, "restartPolicy"), str(c.restartPolicy), ["Always"]));
    const name = str(c.name);
    if (names.has(name)) errs.push(duplicate(child(p, "name"), name));
    else if (name) names.add(name);
    // Init containers run one at a time, so their host ports are checked one container at a time.
    errs.push(...hostPortConflicts([c], path));
    if (!restartAlways) {
      for (const f of ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"]) {
        if (present(c[f])) errs.push(forbidden(child(p, f), "may not be set for init containers without restartPolicy=Always"));
      }
    }
  });
  return errs;
}

function validateTolerations(tolerations: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  arr(tolerations).forEach((t, i) => {
    const tol = rec(t);
    const p = index(path, i);
    const key = str(tol.key);
    const operator = str(tol.operator);
    const value = str(tol.value);
    const effect = str(tol.effect);
    if (key) for (const msg of qualifiedNameErrors(key)) errs.push(invalid(child(p, "key"), key, msg));
    if (!key && operator !== "Exists") {
      errs.push(invalid(child(p, "operator"), operator, 'operator must be Exists when `key` is empty, which means "match all values and all keys"'));
    }
    if (present(tol.tolerationSeconds) && effect !== "NoExecute") {
      errs.push(invalid(child(p, "effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"));
    }
    switch (operator) {
      case "Equal":
      case "": {
        const msgs = labelValueErrors(value);
        if (msgs.length > 0) errs.push(invalid(child(p, "operator"), value, msgs.join(";")));
        break;
      }
      case "Exists":
        if (value) errs.push(invalid(child(p, "operator"), value, "value must be empty when `operator` is 'Exists'"));
        break;
      default:
        errs.push(notSupported(child(p, "operator"), operator, ["Equal", "Exists"]));
    }
    if (effect && !["NoSchedule", "PreferNoSchedule", "NoExecute"].includes(effect)) {
      errs.push(notSupported(child(p, "effect"), effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"]));
    }
  });
  return errs;
}

const MAX_INT32 = 2147483647;

interface PodSpecOptions {
  /** The spec is a Pod's own, not a template's (hostNetwork ports must then match exactly). */
  resourceIsPod: boolean;
}

/** ValidatePodSpec (the subset kubewire's pods use; see the report for what is left out). */
function validatePodSpec(specValue: unknown, path: string, opts: PodSpecOptions): FieldError[] {
  const spec = rec(specValue);
  const errs: FieldError[] = [];
  errs.push(...validateContainers(spec.containers, child(path, "containers")));
  errs.push(...validateInitContainers(spec.initContainers, spec.containers, child(path, "initContainers")));

  if (spec.hostNetwork === true) {
    arr(spec.containers).map(rec).forEach((c, ci) => {
      arr(c.ports).map(rec).forEach((port, pi) => {
        const hp = num(port.hostPort) ?? 0;
        const cp = num(port.containerPort) ?? 0;
        if ((opts.resourceIsPod || hp !== 0) && hp !== cp) {
          errs.push(invalid(child(index(child(index(child(path, "containers"), ci), "ports"), pi), "hostPort"), hp, "must match `containerPort` when `hostNetwork` is true"));
        }
      });
    });
  }

  if (present(spec.restartPolicy)) {
    const rp = str(spec.restartPolicy);
    if (!rp) errs.push(required(child(path, "restartPolicy")));
    else if (!["Always", "OnFailure", "Never"].includes(rp)) errs.push(notSupported(child(path, "restartPolicy"), rp, ["Always", "OnFailure", "Never"]));
  }
  const dnsPolicies = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
  if (present(spec.dnsPolicy)) {
    const dp = str(spec.dnsPolicy);
    if (!dp) errs.push(required(child(path, "dnsPolicy")));
    else if (!dnsPolicies.includes(dp)) errs.push(notSupported(child(path, "dnsPolicy"), dp, dnsPolicies));
  }
  errs.push(...validateLabels(strMap(spec.nodeSelector), child(path, "nodeSelector")));
  if (spec.dnsPolicy === "None") {
    const dnsConfig = spec.dnsConfig;
    if (!isRec(dnsConfig)) errs.push(required(child(path, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"));
    else if (arr(dnsConfig.nameservers).length === 0) {
      errs.push(required(child(path, "dnsConfig", "nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None"));
    }
  }
  if (isRec(spec.dnsConfig)) {
    const ns = arr(spec.dnsConfig.nameservers).map(str);
    if (ns.length > 3) errs.push(invalid(child(path, "dnsConfig", "nameservers"), goStringSlice(ns), "must not have more than 3 nameservers"));
    ns.forEach((ip, i) => {
      for (const msg of ipErrors(ip)) errs.push(invalid(index(child(path, "dnsConfig", "nameservers"), i), ip, msg));
    });
  }
  const sa = str(spec.serviceAccountName);
  if (sa) for (const msg of dns1123SubdomainErrors(sa)) errs.push(invalid(child(path, "serviceAccountName"), sa, msg));
  const nodeName = str(spec.nodeName);
  if (nodeName) for (const msg of dns1123SubdomainErrors(nodeName)) errs.push(invalid(child(path, "nodeName"), nodeName, msg));
  const ads = num(spec.activeDeadlineSeconds);
  if (ads !== undefined && (ads < 1 || ads > MAX_INT32)) errs.push(invalid(child(path, "activeDeadlineSeconds"), ads, inclusiveRangeError(1, MAX_INT32)));
  for (const f of ["hostname", "subdomain"] as const) {
    const v = str(spec[f]);
    if (v) for (const msg of dns1123LabelErrors(v)) errs.push(invalid(child(path, f), v, msg));
  }
  errs.push(...validateTolerations(spec.tolerations, child(path, "tolerations")));
  const pcn = str(spec.priorityClassName);
  if (pcn) for (const msg of dns1123SubdomainErrors(pcn)) errs.push(invalid(child(path, "priorityClassName"), pcn, msg));
  return errs;
}

/** validateContainersOnlyForPod: a Pod's (not a template's) images may not be space-padded. */
function validateImagesOnlyForPod(containers: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  arr(containers).map(rec).forEach((c, i) => {
    const image = str(c.image);
    if (image.length !== image.trim().length) errs.push(invalid(child(index(path, i), "image"), image, "must not have leading or trailing whitespace"));
  });
  return errs;
}

function validatePod(pod: Rec): FieldError[] {
  const errs = validateObjectMeta(pod.metadata, true, NameRule.DNS1123Subdomain);
  const spec = rec(pod.spec);
  errs.push(...validatePodSpec(spec, "spec", { resourceIsPod: true }));
  errs.push(...validateImagesOnlyForPod(spec.containers, "spec.containers"));
  errs.push(...validateImagesOnlyForPod(spec.initContainers, "spec.initContainers"));
  return errs;
}

const UPDATABLE_POD_SPEC_FIELDS = [
  "`spec.containers[*].image`",
  "`spec.initContainers[*].image`",
  "`spec.activeDeadlineSeconds`",
  "`spec.tolerations` (only additions to existing tolerations)",
  "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/** The Go field name cmp.Diff prints for a PodSpec JSON key. */
function goFieldName(jsonKey: string): string {
  const special: Record<string, string> = { dnsPolicy: "DNSPolicy", dnsConfig: "DNSConfig", hostIPC: "HostIPC", hostPID: "HostPID", os: "OS" };
  return special[jsonKey] ?? jsonKey.charAt(0).toUpperCase() + jsonKey.slice(1);
}

/**
 * A short rendering of what differs, in the spirit of the cmp.Diff Kubernetes appends (whose
 * exact text depends on Go struct layouts): one -/+ pair per top-level PodSpec field.
 */
function podSpecDiff(oldSpec: Rec, newSpec: Rec): string {
  const lines = ["  core.PodSpec{"];
  const keys = [...new Set([...Object.keys(oldSpec), ...Object.keys(newSpec)])].sort();
  let same = 0;
  for (const k of keys) {
    if (semanticEqual(oldSpec[k], newSpec[k])) {
      same++;
      continue;
    }
    const render = (v: unknown): string => (semanticEqual(v, undefined) ? "nil" : JSON.stringify(v));
    lines.push(`- \t${goFieldName(k)}: ${render(oldSpec[k])},`);
    lines.push(`+ \t${goFieldName(k)}: ${render(newSpec[k])},`);
  }
  if (same > 0) lines.push(`  \t... // ${same} identical fields`);
  lines.push("  }");
  return lines.join("\n");
}

/** validateOnlyAddedTolerations: existing tolerations stay (tolerationSeconds may change). */
function validateOnlyAddedTolerations(newTols: unknown, oldTols: unknown, path: string): FieldError[] {
  const newer = arr(newTols).map(rec);
  for (const old of arr(oldTols).map(rec)) {
    const found = newer.some((n) => semanticEqual({ ...old, tolerationSeconds: n.tolerationSeconds }, n));
    if (!found) return [forbidden(path, "existing toleration can not be modified except its tolerationSeconds")];
  }
  return validateTolerations(newTols, path);
}

/** ValidatePodUpdate: only images, activeDeadlineSeconds, tolerations additions (and gates) may change. */
function validatePodUpdate(pod: Rec, old: Rec): FieldError[] {
  const errs = [...validateObjectMetaUpdate(pod.metadata, old.metadata), ...validatePod(pod)];
  const spec = rec(pod.spec);
  const oldSpec = rec(old.spec);
  for (const list of ["containers", "initContainers"] as const) {
    const newer = arr(spec[list]).map(rec);
    const older = arr(oldSpec[list]);
    const path = child("spec", list);
    if (newer.length !== older.length) {
      errs.push(forbidden(path, "pod updates may not add or remove containers"));
      return errs;
    }
    newer.forEach((c, i) => {
      const image = str(c.image);
      if (!image) errs.push(required(child(index(path, i), "image")));
      if (image.trim().length !== image.length) errs.push(invalid(child(index(path, i), "image"), image, "must not have leading or trailing whitespace"));
    });
  }

  const newAds = num(spec.activeDeadlineSeconds);
  const oldAds = num(oldSpec.activeDeadlineSeconds);
  if (newAds !== undefined) {
    if (newAds < 0 || newAds > MAX_INT32) {
      errs.push(invalid("spec.activeDeadlineSeconds", newAds, inclusiveRangeError(0, MAX_INT32)));
      return errs;
    }
    if (oldAds !== undefined && oldAds < newAds) {
      errs.push(invalid("spec.activeDeadlineSeconds", newAds, "must be less than or equal to previous value"));
      return errs;
    }
  } else if (oldAds !== undefined) {
    errs.push(invalid("spec.activeDeadlineSeconds", null, "must not update from a positive integer to nil value"));
  }

  errs.push(...validateOnlyAddedTolerations(spec.tolerations, oldSpec.tolerations, "spec.tolerations"));

  if (semanticEqual(spec, oldSpec)) return errs;
  // Put the updatable fields back to their old values; anything still different is forbidden.
  const munged: Rec = structuredClone(spec);
  for (const list of ["containers", "initContainers"] as const) {
    const olds = arr(oldSpec[list]).map(rec);
    if (Array.isArray(munged[list])) {
      munged[list] = (munged[list] as unknown[]).map((c, i) => ({ ...rec(c), image: olds[i]?.image }));
    }
  }
  munged.activeDeadlineSeconds = oldSpec.activeDeadlineSeconds;
  munged.tolerations = oldSpec.tolerations;
  munged.schedulingGates = oldSpec.schedulingGates;
  const oldGrace = num(oldSpec.terminationGracePeriodSeconds);
  if (oldGrace !== undefined && oldGrace < 0 && num(munged.terminationGracePeriodSeconds) === 1) {
    munged.terminationGracePeriodSeconds = oldGrace;
  }
  if (!semanticEqual(munged, oldSpec)) {
    errs.push(forbidden("spec", `pod updates may not change fields other than ${UPDATABLE_POD_SPEC_FIELDS.join(",")}\n${podSpecDiff(oldSpec, munged)}`));
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Namespace, Node
// ---------------------------------------------------------------------------------------------

/** core validateFinalizerName: a qualified name, and a bare name must be a standard one. */
function validateKubeFinalizerName(value: string, path: string): FieldError[] {
  const errs = qualifiedNameErrors(value).map((msg) => invalid(path, value, msg));
  if (!value.includes("/") && !["kubernetes", "orphan", "foregroundDeletion"].includes(value)) {
    errs.push(invalid(path, value, "name is neither a standard finalizer name nor is it fully qualified"));
  }
  return errs;
}

function validateNamespace(ns: Rec): FieldError[] {
  const errs = validateObjectMeta(ns.metadata, false, NameRule.DNS1123Label);
  for (const f of arr(rec(ns.spec).finalizers)) errs.push(...validateKubeFinalizerName(str(f), "spec.finalizers"));
  return errs;
}

/** The node's pod CIDRs as the internal type holds them (podCIDR folded into podCIDRs). */
function nodePodCidrs(spec: Rec): string[] {
  const list = arr(spec.podCIDRs).map(str);
  if (list.length > 0) return list;
  const single = str(spec.podCIDR);
  return single ? [single] : [];
}

function validateNode(node: Rec): FieldError[] {
  const errs = validateObjectMeta(node.metadata, false, NameRule.DNS1123Subdomain);
  const spec = rec(node.spec);
  const cidrs = nodePodCidrs(spec);
  const path = "spec.podCIDRs";
  cidrs.forEach((c, i) => {
    for (const msg of cidrErrors(c)) errs.push(invalid(index(path, i), c, msg));
  });
  if (cidrs.length > 1) {
    const parsed = cidrs.map(parseIpCidr);
    const v4 = parsed.filter((p) => p?.network.length === 4).length;
    const v6 = parsed.filter((p) => p?.network.length === 16).length;
    if (cidrs.length > 2 || v4 !== 1 || v6 !== 1) errs.push(invalid(path, goStringSlice(cidrs), "may specify no more than one CIDR for each IP family"));
    const seen = new Set<string>();
    cidrs.forEach((c, i) => {
      if (seen.has(c)) errs.push(duplicate(index(path, i), c));
      seen.add(c);
    });
  }
  arr(spec.taints).map(rec).forEach((t, i) => {
    const p = index("spec.taints", i);
    const key = str(t.key);
    if (!key) errs.push(required(child(p, "key")));
    else for (const msg of qualifiedNameErrors(key)) errs.push(invalid(child(p, "key"), key, msg));
    const value = str(t.value);
    for (const msg of labelValueErrors(value)) errs.push(invalid(child(p, "value"), value, msg));
    const effect = str(t.effect);
    if (!effect) errs.push(required(child(p, "effect")));
    else if (!["NoSchedule", "PreferNoSchedule", "NoExecute"].includes(effect)) errs.push(notSupported(child(p, "effect"), effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"]));
  });
  return errs;
}

function validateNodeUpdate(node: Rec, old: Rec): FieldError[] {
  const errs = [...validateObjectMetaUpdate(node.metadata, old.metadata), ...validateNode(node)];
  const spec = rec(node.spec);
  const oldSpec = rec(old.spec);
  const oldCidrs = nodePodCidrs(oldSpec);
  // The podCIDR is assigned once (by the IPAM) and may then never move.
  if (oldCidrs.length > 0 && !deepEqual(oldCidrs, nodePodCidrs(spec))) {
    errs.push(forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'));
  }
  const oldProvider = str(oldSpec.providerID);
  if (oldProvider && oldProvider !== str(spec.providerID)) {
    errs.push(forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid'));
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

/** spec.clusterIPs as the strategy leaves it: clusterIPs, or [clusterIP] when only that is set. */
function serviceClusterIPs(spec: Rec): string[] {
  const list = arr(spec.clusterIPs).map(str);
  if (list.length > 0) return list;
  const ip = str(spec.clusterIP);
  return ip ? [ip] : [];
}

function isHeadless(spec: Rec): boolean {
  const ips = serviceClusterIPs(spec);
  return ips.length === 1 && ips[0] === "None";
}

/** apiservice.ExternallyAccessible: reachable from outside the cluster. */
function externallyAccessible(spec: Rec): boolean {
  const type = str(spec.type);
  return type === "LoadBalancer" || type === "NodePort" || (type === "ClusterIP" && arr(spec.externalIPs).length > 0);
}

/** The (protocol, port) key of a duplicate port, printed as Go prints the internal struct. */
function goServicePortKey(protocol: string, port: number): GoRepr {
  return new GoRepr(
    `core.ServicePort{Name:"", Protocol:${goQuote(protocol)}, AppProtocol:(*string)(nil), Port:${port}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`,
  );
}

function validatePortNumOrName(port: unknown, path: string): FieldError[] {
  if (typeof port === "string") return portNameErrors(port).map((msg) => invalid(path, port, msg));
  const n = num(port) ?? 0;
  return portNumErrors(n).map((msg) => invalid(path, n, msg));
}

function validateServicePort(sp: Rec, requireName: boolean, names: Set<string>, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const name = str(sp.name);
  if (requireName && !name) errs.push(required(child(path, "name")));
  else if (name) {
    for (const msg of dns1123LabelErrors(name)) errs.push(invalid(child(path, "name"), name, msg));
    if (names.has(name)) errs.push(duplicate(child(path, "name"), name));
    else names.add(name);
  }
  const port = num(sp.port) ?? 0;
  for (const msg of portNumErrors(port)) errs.push(invalid(child(path, "port"), port, msg));
  if (present(sp.protocol)) {
    const protocol = str(sp.protocol);
    if (!protocol) errs.push(required(child(path, "protocol")));
    else if (!(PROTOCOLS_SORTED as readonly string[]).includes(protocol)) errs.push(notSupported(child(path, "protocol"), protocol, PROTOCOLS_SORTED));
  }
  if (present(sp.targetPort)) errs.push(...validatePortNumOrName(sp.targetPort, child(path, "targetPort")));
  // The node-port allocator owns the 30000-32767 range; validation only rejects non-ports.
  const nodePort = num(sp.nodePort) ?? 0;
  if (nodePort !== 0) for (const msg of portNumErrors(nodePort)) errs.push(invalid(child(path, "nodePort"), nodePort, msg));
  if (present(sp.appProtocol)) {
    const ap = str(sp.appProtocol);
    for (const msg of qualifiedNameErrors(ap)) errs.push(invalid(child(path, "appProtocol"), ap, msg));
  }
  return errs;
}

/** ValidateServiceClusterIPsRelatedFields (single-stack cluster: families and policy values). */
function validateClusterIPsRelated(spec: Rec): FieldError[] {
  if (spec.type === "ExternalName") return [];
  const errs: FieldError[] = [];
  const clusterIP = str(spec.clusterIP);
  const listed = arr(spec.clusterIPs).map(str);
  if (clusterIP && listed.length > 0 && listed[0] !== clusterIP) {
    errs.push(invalid("spec.clusterIPs", goStringSlice(listed), "first value must match `clusterIP`"));
  }
  const seen = new Set<string>();
  arr(spec.ipFamilies).map(str).forEach((f, i) => {
    const p = index("spec.ipFamilies", i);
    if (f !== "IPv4" && f !== "IPv6") errs.push(notSupported(p, f, ["IPv4", "IPv6"]));
    if (seen.has(f)) errs.push(duplicate(p, f));
    seen.add(f);
  });
  if (present(spec.ipFamilyPolicy)) {
    const policy = str(spec.ipFamilyPolicy);
    const valid = ["PreferDualStack", "RequireDualStack", "SingleStack"];
    if (!valid.includes(policy)) errs.push(notSupported("spec.ipFamilyPolicy", policy, valid));
  }
  const ips = serviceClusterIPs(spec);
  let invalidIps = false;
  ips.forEach((ip, i) => {
    if (i === 0 && ip === "None") {
      if (ips.length > 1) {
        invalidIps = true;
        errs.push(invalid("spec.clusterIPs", goStringSlice(ips), "'None' must be the first and only value"));
      }
      return;
    }
    for (const msg of ipErrors(ip)) {
      invalidIps = true;
      errs.push(invalid(index("spec.clusterIPs", i), ip, msg));
    }
  });
  if (ips.length > 2) errs.push(invalid("spec.clusterIPs", goStringSlice(ips), "may only hold up to 2 values"));
  if (invalidIps) return errs;
  if (ips.length > 1) {
    const v6 = ips.filter(isIpv6String).length;
    if (v6 !== 1 || ips.length !== 2) errs.push(invalid("spec.clusterIPs", goStringSlice(ips), "may specify no more than one IP for each IP family"));
  }
  const families = arr(spec.ipFamilies).map(str);
  if (!isHeadless(spec)) {
    ips.forEach((ip, i) => {
      const family = families[i];
      if (family === "IPv4" && isIpv6String(ip)) errs.push(invalid(index("spec.clusterIPs", i), ip, `expected an IPv4 value as indicated by \`ipFamilies[${i}]\``));
      if (family === "IPv6" && !isIpv6String(ip)) errs.push(invalid(index("spec.clusterIPs", i), ip, `expected an IPv6 value as indicated by \`ipFamilies[${i}]\``));
    });
  }
  return errs;
}

const SERVICE_TYPES_SORTED = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

function validateService(svc: Rec): FieldError[] {
  const errs = validateObjectMeta(svc.metadata, true, NameRule.DNS1035Label);
  const spec = rec(svc.spec);
  const type = str(spec.type);
  const ports = arr(spec.ports).map(rec);
  const headless = isHeadless(spec);
  const ips = serviceClusterIPs(spec);

  if (ports.length === 0 && !headless && type !== "ExternalName") errs.push(required("spec.ports"));
  switch (type) {
    case "LoadBalancer":
    case "NodePort":
      if (headless) errs.push(invalid("spec.clusterIPs[0]", ips[0], `may not be set to 'None' for ${type} services`));
      break;
    case "ExternalName": {
      if (ips.length > 0) errs.push(forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
      if (arr(spec.ipFamilies).length > 0) errs.push(forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
      if (present(spec.ipFamilyPolicy)) errs.push(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"));
      // The value, a CNAME, may end in a dot to mark it fully qualified.
      const cname = str(spec.externalName).replace(/\.$/, "");
      if (cname) for (const msg of dns1123SubdomainErrors(cname)) errs.push(invalid("spec.externalName", cname, msg));
      else errs.push(required("spec.externalName"));
      break;
    }
  }

  const names = new Set<string>();
  ports.forEach((p, i) => errs.push(...validateServicePort(p, ports.length > 1, names, index("spec.ports", i))));

  if (present(spec.selector)) errs.push(...validateLabels(strMap(spec.selector), "spec.selector"));

  if (present(spec.sessionAffinity)) {
    const affinity = str(spec.sessionAffinity);
    if (!affinity) errs.push(required("spec.sessionAffinity"));
    else if (affinity !== "ClientIP" && affinity !== "None") errs.push(notSupported("spec.sessionAffinity", affinity, ["ClientIP", "None"]));
  }
  if (spec.sessionAffinity === "ClientIP") {
    const cfg = spec.sessionAffinityConfig;
    const when = "when session affinity type is ClientIP";
    if (!isRec(cfg)) errs.push(required("spec.sessionAffinityConfig", when));
    else if (!isRec(cfg.clientIP)) errs.push(required("spec.sessionAffinityConfig.clientIP", when));
    else if (!present(cfg.clientIP.timeoutSeconds)) errs.push(required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", when));
    else {
      const t = num(cfg.clientIP.timeoutSeconds) ?? 0;
      if (t <= 0 || t > 86400) errs.push(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t, "must be greater than 0 and less than 86400"));
    }
  } else if (spec.sessionAffinity === "None" && present(spec.sessionAffinityConfig)) {
    errs.push(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"));
  }

  errs.push(...validateClusterIPsRelated(spec));

  arr(spec.externalIPs).map(str).forEach((ip, i) => {
    const p = index("spec.externalIPs", i);
    const msgs = ipErrors(ip);
    if (msgs.length > 0) for (const msg of msgs) errs.push(invalid(p, ip, msg));
    else errs.push(...validateNonSpecialIp(ip, p));
  });

  if (present(spec.type)) {
    if (!type) errs.push(required("spec.type"));
    else if (!SERVICE_TYPES_SORTED.includes(type)) errs.push(notSupported("spec.type", type, SERVICE_TYPES_SORTED));
  }

  if (type === "ClusterIP") {
    ports.forEach((p, i) => {
      if ((num(p.nodePort) ?? 0) !== 0) errs.push(forbidden(child(index("spec.ports", i), "nodePort"), "may not be used when `type` is 'ClusterIP'"));
    });
  }
  const nodePorts = new Set<string>();
  ports.forEach((p, i) => {
    const nodePort = num(p.nodePort) ?? 0;
    if (nodePort === 0) return;
    const key = `${str(p.protocol)}/${nodePort}`;
    if (nodePorts.has(key)) errs.push(duplicate(child(index("spec.ports", i), "nodePort"), nodePort));
    nodePorts.add(key);
  });
  const portKeys = new Set<string>();
  ports.forEach((p, i) => {
    const protocol = str(p.protocol);
    const port = num(p.port) ?? 0;
    const key = `${protocol}/${port}`;
    if (portKeys.has(key)) errs.push(duplicate(index("spec.ports", i), goServicePortKey(protocol, port)));
    portKeys.add(key);
  });

  const ranges = arr(spec.loadBalancerSourceRanges).map(str);
  if (ranges.length > 0) {
    // Kubernetes reports this path with a capital L.
    const p = "spec.LoadBalancerSourceRanges";
    if (type !== "LoadBalancer") errs.push(forbidden(p, "may only be used when `type` is 'LoadBalancer'"));
    ranges.forEach((r, i) => {
      const v = r.trim();
      for (const msg of cidrErrors(v)) errs.push(invalid(index(p, i), v, msg));
    });
  }
  if (present(spec.allocateLoadBalancerNodePorts) && type !== "LoadBalancer") {
    errs.push(forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"));
  }
  if (present(spec.loadBalancerClass)) {
    const cls = str(spec.loadBalancerClass);
    if (type === "LoadBalancer") for (const msg of qualifiedNameErrors(cls)) errs.push(invalid("spec.loadBalancerClass", cls, msg));
    else errs.push(forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"));
  }

  if (present(spec.externalTrafficPolicy)) {
    const etp = str(spec.externalTrafficPolicy);
    if (!externallyAccessible(spec)) {
      if (etp) errs.push(invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"));
    } else if (!etp) errs.push(required("spec.externalTrafficPolicy"));
    else if (etp !== "Cluster" && etp !== "Local") errs.push(notSupported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]));
  }
  const hcnp = num(spec.healthCheckNodePort) ?? 0;
  if (hcnp !== 0) {
    // The allocator assigns it when needed; here a value is only checked for fitting.
    if (!(type === "LoadBalancer" && spec.externalTrafficPolicy === "Local")) {
      errs.push(invalid("spec.healthCheckNodePort", hcnp, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
    } else for (const msg of portNumErrors(hcnp)) errs.push(invalid("spec.healthCheckNodePort", hcnp, msg));
  }
  if (present(spec.internalTrafficPolicy)) {
    const itp = str(spec.internalTrafficPolicy);
    if (itp !== "Cluster" && itp !== "Local") errs.push(notSupported("spec.internalTrafficPolicy", itp, ["Cluster", "Local"]));
  }
  if (present(spec.trafficDistribution) && spec.trafficDistribution !== "PreferClose") {
    errs.push(notSupported("spec.trafficDistribution", str(spec.trafficDistribution), ["PreferClose"]));
  }
  return errs;
}

function validateServiceUpdate(svc: Rec, old: Rec): FieldError[] {
  const errs = validateObjectMetaUpdate(svc.metadata, old.metadata);
  const spec = rec(svc.spec);
  const oldSpec = rec(old.spec);
  // A ClusterIP stays until the Service goes to or from ExternalName. An omitted one is the
  // server's to carry over from the stored object (as Kubernetes' registry does).
  const newIp = str(spec.clusterIP);
  const oldIp = str(oldSpec.clusterIP);
  if (spec.type !== "ExternalName" && oldSpec.type !== "ExternalName" && oldIp && newIp && newIp !== oldIp) {
    errs.push(invalid("spec.clusterIP", newIp, FIELD_IMMUTABLE));
  }
  const needsHealthCheck = (s: Rec): boolean => s.type === "LoadBalancer" && s.externalTrafficPolicy === "Local";
  // An omitted (or 0) port is the server's to carry over, as patchAllocatedValues does before validation.
  const newHcnp = num(spec.healthCheckNodePort) ?? 0;
  if (needsHealthCheck(spec) && needsHealthCheck(oldSpec) && (num(oldSpec.healthCheckNodePort) ?? 0) !== 0 && newHcnp !== 0 && newHcnp !== num(oldSpec.healthCheckNodePort)) {
    errs.push(forbidden("spec.healthCheckNodePort", FIELD_IMMUTABLE));
  }
  if (spec.type === "LoadBalancer" && oldSpec.type === "LoadBalancer" && !semanticEqual(spec.loadBalancerClass, oldSpec.loadBalancerClass)) {
    errs.push(invalid("spec.loadBalancerClass", spec.loadBalancerClass ?? null, "may not change once set"));
  }
  errs.push(...validateService(svc));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// EndpointSlice (discovery/validation)
// ---------------------------------------------------------------------------------------------

const ADDRESS_TYPES_SORTED = ["FQDN", "IPv4", "IPv6"];

function validateFqdn(value: string, path: string): FieldError[] {
  if (!value) return [required(path)];
  const name = value.endsWith(".") ? value.slice(0, -1) : value;
  const sub = dns1123SubdomainErrors(name);
  if (sub.length > 0) return [invalid(path, name, sub.join(","))];
  const labels = name.split(".");
  if (labels.length < 2) return [invalid(path, name, "should be a domain with at least two segments separated by dots")];
  for (const label of labels) {
    const msgs = dns1123LabelErrors(label);
    if (msgs.length > 0) return [invalid(path, label, msgs.join(","))];
  }
  return [];
}

function validateEndpointSlice(slice: Rec): FieldError[] {
  const errs = validateObjectMeta(slice.metadata, true, NameRule.DNS1123Subdomain);
  const addressType = str(slice.addressType);
  if (!addressType) errs.push(required("addressType"));
  else if (!ADDRESS_TYPES_SORTED.includes(addressType)) errs.push(notSupported("addressType", addressType, ADDRESS_TYPES_SORTED));

  const endpoints = arr(slice.endpoints).map(rec);
  if (endpoints.length > 1000) errs.push(tooMany("endpoints", endpoints.length, 1000));
  else {
    endpoints.forEach((ep, i) => {
      const p = index("endpoints", i);
      const ap = child(p, "addresses");
      const addresses = arr(ep.addresses).map(str);
      if (addresses.length === 0) errs.push(required(ap, "must contain at least 1 address"));
      else if (addresses.length > 100) errs.push(tooMany(ap, addresses.length, 100));
      addresses.forEach((a, ai) => {
        const aip = index(ap, ai);
        switch (addressType) {
          case "IPv4":
            errs.push(...ipv4Errors(a).map((m) => invalid(aip, a, m)), ...validateNonSpecialIp(a, aip));
            break;
          case "IPv6":
            errs.push(...ipv6Errors(a).map((m) => invalid(aip, a, m)), ...validateNonSpecialIp(a, aip));
            break;
          case "FQDN":
            errs.push(...validateFqdn(a, aip));
            break;
        }
      });
      if (present(ep.hostname)) {
        const h = str(ep.hostname);
        for (const msg of dns1123LabelErrors(h)) errs.push(invalid(child(p, "hostname"), h, msg));
      }
      if (present(ep.nodeName)) {
        const n = str(ep.nodeName);
        for (const msg of dns1123SubdomainErrors(n)) errs.push(invalid(child(p, "nodeName"), n, msg));
      }
    });
  }

  const ports = arr(slice.ports).map(rec);
  if (ports.length > 100) errs.push(tooMany("ports", ports.length, 100));
  else {
    const names = new Set<string>();
    ports.forEach((port, i) => {
      const p = index("ports", i);
      const name = str(port.name);
      if (name) for (const msg of dns1123LabelErrors(name)) errs.push(invalid(child(p, "name"), name, msg));
      if (names.has(name)) errs.push(duplicate(child(p, "name"), name));
      else names.add(name);
      if (present(port.protocol) && !(PROTOCOLS_SORTED as readonly string[]).includes(str(port.protocol))) {
        errs.push(notSupported(child(p, "protocol"), str(port.protocol), PROTOCOLS_SORTED));
      }
      if (present(port.port)) {
        const n = num(port.port) ?? 0;
        for (const msg of portNumErrors(n)) errs.push(invalid(child(p, "port"), n, msg));
      }
      if (present(port.appProtocol)) {
        const ap = str(port.appProtocol);
        for (const msg of qualifiedNameErrors(ap)) errs.push(invalid(child(p, "appProtocol"), ap, msg));
      }
    });
  }
  return errs;
}

function validateEndpointSliceUpdate(slice: Rec, old: Rec): FieldError[] {
  const errs = [...validateObjectMetaUpdate(slice.metadata, old.metadata), ...validateEndpointSlice(slice)];
  if (str(slice.addressType) !== str(old.addressType)) errs.push(invalid("addressType", str(slice.addressType), FIELD_IMMUTABLE));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Deployment, ReplicaSet (apps/validation)
// ---------------------------------------------------------------------------------------------

function validateNonNegative(value: unknown, path: string): FieldError[] {
  const n = num(value);
  return n !== undefined && n < 0 ? [invalid(path, n, IS_NEGATIVE)] : [];
}

/** ValidatePodTemplateSpecForReplicaSet (which Deployments use too, message and all). */
function validatePodTemplateForReplicaSet(templateValue: unknown, selector: ObjectSelector, path: string): FieldError[] {
  if (!isRec(templateValue)) return [required(path)];
  const template = templateValue;
  const meta = rec(template.metadata);
  const labels = strMap(meta.labels);
  const errs: FieldError[] = [];
  if (selector.kind !== "error" && !objectSelectorMatches(selector, labels ?? {})) {
    errs.push(invalid(child(path, "metadata", "labels"), goStringMap(labels), "`selector` does not match template `labels`"));
  }
  // ValidatePodTemplateSpec reports template labels at "<path>.labels", not "metadata.labels".
  errs.push(...validateLabels(labels, child(path, "labels")));
  errs.push(...validateAnnotations(strMap(meta.annotations), child(path, "annotations")));
  const spec = rec(template.spec);
  errs.push(...validatePodSpec(spec, child(path, "spec"), { resourceIsPod: false }));
  if (arr(spec.ephemeralContainers).length > 0) errs.push(forbidden(child(path, "spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"));
  if (present(spec.restartPolicy) && spec.restartPolicy !== "Always") {
    errs.push(notSupported(child(path, "spec", "restartPolicy"), str(spec.restartPolicy), ["Always"]));
  }
  if (present(spec.activeDeadlineSeconds)) errs.push(forbidden(child(path, "spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in ReplicaSet is not Supported"));
  return errs;
}

/** The selector, its validity, and the template it must match (shared by both kinds). */
function validateReplicatedSpec(spec: Rec): FieldError[] {
  const errs = validateNonNegative(spec.replicas, "spec.replicas");
  if (!isRec(spec.selector)) errs.push(required("spec.selector"));
  else {
    errs.push(...validateLabelSelector(spec.selector, "spec.selector"));
    const ml = strMap(spec.selector.matchLabels) ?? {};
    if (Object.keys(ml).length + arr(spec.selector.matchExpressions).length === 0) {
      errs.push(invalid("spec.selector", goLabelSelector(spec.selector), "empty selector is invalid for deployment"));
    }
  }
  const selector = labelSelectorAsSelector(spec.selector);
  if (selector.kind === "error") errs.push(invalid("spec.selector", goLabelSelector(spec.selector), "invalid label selector"));
  else errs.push(...validatePodTemplateForReplicaSet(spec.template, selector, "spec.template"));
  return errs;
}

function goDeploymentStrategy(strategy: Rec): GoRepr {
  let ru = "(*apps.RollingUpdateDeployment)(nil)";
  if (isRec(strategy.rollingUpdate)) {
    ru = `&apps.RollingUpdateDeployment{MaxUnavailable:${goIntOrString(strategy.rollingUpdate.maxUnavailable).text}, MaxSurge:${goIntOrString(strategy.rollingUpdate.maxSurge).text}}`;
  }
  return new GoRepr(`apps.DeploymentStrategy{Type:${goQuote(str(strategy.type))}, RollingUpdate:${ru}}`);
}

/** ValidatePositiveIntOrPercent: a non-negative int or an "N%" string. */
function validateIntOrPercent(v: unknown, path: string): FieldError[] {
  if (typeof v === "string") return percentErrors(v).map((msg) => invalid(path, goIntOrString(v), msg));
  return validateNonNegative(v, path);
}

function intOrPercentValue(v: unknown): number {
  if (typeof v === "string") return percentErrors(v).length === 0 ? Number(v.slice(0, -1)) : 0;
  return num(v) ?? 0;
}

function validateDeploymentStrategy(strategyValue: unknown): FieldError[] {
  const strategy = rec(strategyValue);
  const path = "spec.strategy";
  const type = str(strategy.type);
  if (!present(strategy.type) && !present(strategy.rollingUpdate)) return []; // defaulted to RollingUpdate
  switch (type) {
    case "Recreate":
      return present(strategy.rollingUpdate) ? [forbidden(child(path, "rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")] : [];
    case "RollingUpdate": {
      if (!isRec(strategy.rollingUpdate)) return [required(child(path, "rollingUpdate"), "this should be defaulted and never be nil")];
      const ru = strategy.rollingUpdate;
      const rp = child(path, "rollingUpdate");
      const errs = [...validateIntOrPercent(ru.maxUnavailable, child(rp, "maxUnavailable")), ...validateIntOrPercent(ru.maxSurge, child(rp, "maxSurge"))];
      if (intOrPercentValue(ru.maxUnavailable) === 0 && intOrPercentValue(ru.maxSurge) === 0) {
        errs.push(invalid(child(rp, "maxUnavailable"), goIntOrString(ru.maxUnavailable), "may not be 0 when `maxSurge` is 0"));
      }
      if (typeof ru.maxUnavailable === "string" && percentErrors(ru.maxUnavailable).length === 0 && intOrPercentValue(ru.maxUnavailable) > 100) {
        errs.push(invalid(child(rp, "maxUnavailable"), goIntOrString(ru.maxUnavailable), "must not be greater than 100%"));
      }
      return errs;
    }
    default:
      return [notSupported(path, goDeploymentStrategy(strategy), ["Recreate", "RollingUpdate"])];
  }
}

function validateDeployment(d: Rec): FieldError[] {
  const errs = validateObjectMeta(d.metadata, true, NameRule.DNS1123Subdomain);
  const spec = rec(d.spec);
  errs.push(...validateReplicatedSpec(spec));
  errs.push(...validateDeploymentStrategy(spec.strategy));
  errs.push(...validateNonNegative(spec.minReadySeconds, "spec.minReadySeconds"));
  errs.push(...validateNonNegative(spec.revisionHistoryLimit, "spec.revisionHistoryLimit"));
  const pds = num(spec.progressDeadlineSeconds);
  if (pds !== undefined) {
    errs.push(...validateNonNegative(pds, "spec.progressDeadlineSeconds"));
    if (pds <= (num(spec.minReadySeconds) ?? 0)) errs.push(invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"));
  }
  return errs;
}

function validateReplicaSet(rs: Rec): FieldError[] {
  const errs = validateObjectMeta(rs.metadata, true, NameRule.DNS1123Subdomain);
  const spec = rec(rs.spec);
  errs.push(...validateNonNegative(spec.minReadySeconds, "spec.minReadySeconds"));
  errs.push(...validateReplicatedSpec(spec));
  return errs;
}

/** apps/v1 strategies: a controller's selector may not change (its children would be lost). */
function validateSelectorImmutable(obj: Rec, old: Rec): FieldError[] {
  const sel = rec(obj.spec).selector;
  if (semanticEqual(sel, rec(old.spec).selector)) return [];
  return [invalid("spec.selector", isRec(sel) ? goLabelSelector(sel) : null, FIELD_IMMUTABLE)];
}

// ---------------------------------------------------------------------------------------------
// NetworkPolicy, Ingress (networking/validation)
// ---------------------------------------------------------------------------------------------

function validateNetworkPolicyPort(port: Rec, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (present(port.protocol)) {
    const protocol = str(port.protocol);
    if (!["TCP", "UDP", "SCTP"].includes(protocol)) errs.push(notSupported(child(path, "protocol"), protocol, ["TCP", "UDP", "SCTP"]));
  }
  const endPort = num(port.endPort);
  if (present(port.port)) {
    if (typeof port.port === "string") {
      if (endPort !== undefined) errs.push(invalid(child(path, "endPort"), endPort, "may not be specified when `port` is non-numeric"));
      for (const msg of portNameErrors(port.port)) errs.push(invalid(child(path, "port"), port.port, msg));
    } else {
      const p = num(port.port) ?? 0;
      for (const msg of portNumErrors(p)) errs.push(invalid(child(path, "port"), p, msg));
      if (endPort !== undefined) {
        if (endPort < p) errs.push(invalid(child(path, "endPort"), endPort, "must be greater than or equal to `port`"));
        for (const msg of portNumErrors(endPort)) errs.push(invalid(child(path, "endPort"), endPort, msg));
      }
    }
  } else if (endPort !== undefined) {
    errs.push(invalid(child(path, "endPort"), endPort, "may not be specified when `port` is not specified"));
  }
  return errs;
}

function validateIpBlock(ipb: Rec, path: string): FieldError[] {
  const cidr = str(ipb.cidr);
  if (!cidr) return [required(child(path, "cidr"))];
  const errs = cidrErrors(cidr).map((msg) => invalid(child(path, "cidr"), cidr, msg));
  const outer = parseIpCidr(cidr);
  if (!outer) return errs;
  arr(ipb.except).map(str).forEach((except, i) => {
    const p = index(child(path, "except"), i);
    errs.push(...cidrErrors(except).map((msg) => invalid(p, except, msg)));
    const inner = parseIpCidr(except);
    if (!inner) return;
    if (!ipCidrContains(outer, inner.network) || outer.prefix >= inner.prefix) errs.push(invalid(p, except, "must be a strict subset of `cidr`"));
  });
  return errs;
}

/** NetworkPolicyValidationOptions. */
interface NetworkPolicyOptions {
  /** AllowInvalidLabelValueInSelector: set on an update whose stored spec.podSelector is itself invalid. */
  allowInvalidLabelValue: boolean;
}

function validateNetworkPolicyPeer(peer: Rec, path: string, opts: NetworkPolicyOptions): FieldError[] {
  const errs: FieldError[] = [];
  let peers = 0;
  if (isRec(peer.podSelector)) {
    peers++;
    errs.push(...validateLabelSelector(peer.podSelector, child(path, "podSelector"), opts.allowInvalidLabelValue));
  }
  if (isRec(peer.namespaceSelector)) {
    peers++;
    errs.push(...validateLabelSelector(peer.namespaceSelector, child(path, "namespaceSelector"), opts.allowInvalidLabelValue));
  }
  if (isRec(peer.ipBlock)) {
    peers++;
    errs.push(...validateIpBlock(peer.ipBlock, child(path, "ipBlock")));
  }
  if (peers === 0) errs.push(required(path, "must specify a peer"));
  else if (peers > 1 && isRec(peer.ipBlock)) errs.push(forbidden(path, "may not specify both ipBlock and another peer"));
  return errs;
}

/**
 * ValidateNetworkPolicy (create) and ValidateNetworkPolicyUpdate's spec part: the pod selector,
 * each rule's ports and peers, the policy types.
 */
function validateNetworkPolicy(np: Rec, opts: NetworkPolicyOptions = { allowInvalidLabelValue: false }): FieldError[] {
  const errs = validateObjectMeta(np.metadata, true, NameRule.DNS1123Subdomain);
  const spec = rec(np.spec);
  errs.push(...validateLabelSelector(rec(spec.podSelector), "spec.podSelector", opts.allowInvalidLabelValue));
  for (const [dir, peersKey] of [["ingress", "from"], ["egress", "to"]] as const) {
    arr(spec[dir]).map(rec).forEach((rule, i) => {
      const rp = index(child("spec", dir), i);
      arr(rule.ports).map(rec).forEach((port, pi) => errs.push(...validateNetworkPolicyPort(port, index(child(rp, "ports"), pi))));
      arr(rule[peersKey]).map(rec).forEach((peer, pi) => errs.push(...validateNetworkPolicyPeer(peer, index(child(rp, peersKey), pi), opts)));
    });
  }
  const types = arr(spec.policyTypes).map(str);
  if (types.length > 2) {
    errs.push(invalid("spec.policyTypes", goStringSlice(types, "[]networking.PolicyType"), "may not specify more than two policyTypes"));
    return errs;
  }
  types.forEach((t, i) => {
    if (t !== "Ingress" && t !== "Egress") errs.push(notSupported(index("spec.policyTypes", i), t, ["Ingress", "Egress"]));
  });
  return errs;
}

const INVALID_PATH_SEQUENCES = ["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES = ["/..", "/."];

/** content.IsPathSegmentName (resource backend kind and name). */
function pathSegmentErrors(name: string): string[] {
  const errs: string[] = [];
  if (name === "." || name === "..") errs.push(`may not be '${name}'`);
  for (const bad of ["/", "%"]) if (name.includes(bad)) errs.push(`may not contain '${bad}'`);
  return errs;
}

function validateIngressBackend(backend: Rec, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const hasResource = isRec(backend.resource);
  const hasService = isRec(backend.service);
  if (hasResource && hasService) return [invalid(path, "", "cannot set both resource and service backends")];
  if (isRec(backend.resource)) {
    const res = backend.resource;
    const rp = child(path, "resource");
    if (present(res.apiGroup)) for (const msg of dns1123SubdomainErrors(str(res.apiGroup))) errs.push(invalid(child(rp, "apiGroup"), str(res.apiGroup), msg));
    for (const f of ["kind", "name"] as const) {
      const v = str(res[f]);
      if (!v) errs.push(required(child(rp, f)));
      else for (const msg of pathSegmentErrors(v)) errs.push(invalid(child(rp, f), v, msg));
    }
    return errs;
  }
  if (isRec(backend.service)) {
    const svc = backend.service;
    const name = str(svc.name);
    if (!name) errs.push(required(child(path, "service", "name")));
    else for (const msg of dns1035LabelErrors(name)) errs.push(invalid(child(path, "service", "name"), name, msg));
    const port = rec(svc.port);
    const portName = str(port.name);
    const portNumber = num(port.number) ?? 0;
    if (portName && portNumber !== 0) errs.push(invalid(path, "", "cannot set both port name & port number"));
    else if (portName) for (const msg of portNameErrors(portName)) errs.push(invalid(child(path, "service", "port", "name"), portName, msg));
    else if (portNumber !== 0) for (const msg of portNumErrors(portNumber)) errs.push(invalid(child(path, "service", "port", "number"), portNumber, msg));
    else errs.push(required(path, "port name or number is required"));
    return errs;
  }
  return [invalid(path, "", "resource or service backend is required")];
}

function validateIngressPath(p: Rec, path: string): FieldError[] {
  if (!present(p.pathType)) return [required(child(path, "pathType"), "pathType must be specified")];
  const errs: FieldError[] = [];
  const pathType = str(p.pathType);
  const value = str(p.path);
  switch (pathType) {
    case "Exact":
    case "Prefix":
      if (!value.startsWith("/")) errs.push(invalid(child(path, "path"), value, "must be an absolute path"));
      if (value.length > 0) {
        for (const seq of INVALID_PATH_SEQUENCES) if (value.includes(seq)) errs.push(invalid(child(path, "path"), value, `must not contain '${seq}'`));
        for (const suffix of INVALID_PATH_SUFFIXES) if (value.endsWith(suffix)) errs.push(invalid(child(path, "path"), value, `cannot end with '${suffix}'`));
      }
      break;
    case "ImplementationSpecific":
      if (value.length > 0 && !value.startsWith("/")) errs.push(invalid(child(path, "path"), value, "must be an absolute path"));
      break;
    default:
      errs.push(notSupported(child(path, "pathType"), pathType, ["Exact", "ImplementationSpecific", "Prefix"]));
  }
  errs.push(...validateIngressBackend(rec(p.backend), child(path, "backend")));
  return errs;
}

function validateIngress(ing: Rec): FieldError[] {
  const errs = validateObjectMeta(ing.metadata, true, NameRule.DNS1123Subdomain);
  const spec = rec(ing.spec);
  const rules = arr(spec.rules).map(rec);
  if (rules.length === 0 && !isRec(spec.defaultBackend)) {
    errs.push(invalid("spec", new GoRepr(Array.isArray(spec.rules) ? "[]networking.IngressRule{}" : "[]networking.IngressRule(nil)"), "either `defaultBackend` or `rules` must be specified"));
  }
  if (isRec(spec.defaultBackend)) errs.push(...validateIngressBackend(spec.defaultBackend, "spec.defaultBackend"));
  rules.forEach((rule, i) => {
    const rp = index("spec.rules", i);
    const host = str(rule.host);
    if (host) {
      if (parseIp(host)) errs.push(invalid(child(rp, "host"), host, "must be a DNS name, not an IP address"));
      const msgs = host.includes("*") ? wildcardDns1123SubdomainErrors(host) : dns1123SubdomainErrors(host);
      for (const msg of msgs) errs.push(invalid(child(rp, "host"), host, msg));
    }
    if (isRec(rule.http)) {
      const paths = arr(rule.http.paths).map(rec);
      const hp = child(rp, "http");
      if (paths.length === 0) errs.push(required(child(hp, "paths")));
      paths.forEach((p, pi) => errs.push(...validateIngressPath(p, index(child(hp, "paths"), pi))));
    }
  });
  arr(spec.tls).map(rec).forEach((tls, ti) => {
    const tp = index("spec.tls", ti);
    arr(tls.hosts).map(str).forEach((host, hi) => {
      const msgs = host.includes("*") ? wildcardDns1123SubdomainErrors(host) : dns1123SubdomainErrors(host);
      for (const msg of msgs) errs.push(invalid(index(child(tp, "hosts"), hi), host, msg));
    });
    const secret = str(tls.secretName);
    if (secret) for (const msg of dns1123SubdomainErrors(secret)) errs.push(invalid(child(tp, "secretName"), secret, msg));
  });
  if (present(spec.ingressClassName)) {
    const cls = str(spec.ingressClassName);
    for (const msg of dns1123SubdomainErrors(cls)) errs.push(invalid("spec.ingressClassName", cls, msg));
  }
  const annotationClass = strMap(rec(ing.metadata).annotations)?.["kubernetes.io/ingress.class"];
  if (annotationClass !== undefined && present(spec.ingressClassName) && annotationClass !== str(spec.ingressClassName)) {
    errs.push(invalid("annotations.kubernetes.io/ingress.class", annotationClass, "must match `ingressClassName` when both are specified"));
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Event (core/validation/events.go legacyValidateEvent, plus what kubewire requires)
// ---------------------------------------------------------------------------------------------

function validateEvent(ev: Rec): FieldError[] {
  const errs = validateObjectMeta(ev.metadata, true, NameRule.DNS1123Subdomain);
  const namespace = str(rec(ev.metadata).namespace);
  const involved = rec(ev.involvedObject);
  // kubewire requires what every controller sets: which object the event is about.
  for (const f of ["kind", "name"] as const) if (!str(involved[f])) errs.push(required(child("involvedObject", f)));
  const involvedNs = str(involved.namespace);
  if (!present(ev.eventTime)) {
    // An involved object's namespace must be the event's (cluster-scoped ones report to "default").
    if (!involvedNs ? namespace !== "" && namespace !== "default" : namespace !== involvedNs) {
      errs.push(invalid("involvedObject.namespace", involvedNs, "does not match event.namespace"));
    }
  } else {
    if (!involvedNs && namespace !== "default" && namespace !== "kube-system") {
      errs.push(invalid("involvedObject.namespace", involvedNs, "does not match event.namespace"));
    }
    const controller = str(ev.reportingComponent ?? ev.reportingController);
    if (!controller) errs.push(required("reportingController"));
    for (const msg of qualifiedNameErrors(controller)) errs.push(invalid("reportingController", controller, msg));
    const instance = str(ev.reportingInstance);
    if (!instance) errs.push(required("reportingInstance"));
    if (byteLen(instance) > 128) errs.push(invalid("reportingInstance", "", "can have at most 128 characters"));
    const action = str(ev.action);
    if (!action) errs.push(required("action"));
    if (byteLen(action) > 128) errs.push(invalid("action", "", "can have at most 128 characters"));
    const reason = str(ev.reason);
    if (!reason) errs.push(required("reason"));
    if (byteLen(reason) > 128) errs.push(invalid("reason", "", "can have at most 128 characters"));
    if (byteLen(str(ev.message)) > 1024) errs.push(invalid("message", "", "can have at most 1024 characters"));
  }
  // events.k8s.io/v1's rule and wording; core/v1 accepts an empty type for old clients.
  if (present(ev.type) && str(ev.type) !== "" && ev.type !== "Normal" && ev.type !== "Warning") {
    errs.push(invalid("type", "", `has invalid value: ${str(ev.type)}`));
  }
  return errs;
}

function validateEventUpdate(ev: Rec, old: Rec): FieldError[] {
  const errs = [...validateObjectMetaUpdate(ev.metadata, old.metadata), ...validateEvent(ev)];
  if (!semanticEqual(ev.involvedObject, old.involvedObject)) errs.push(invalid("involvedObject", new GoRepr(JSON.stringify(ev.involvedObject ?? null)), FIELD_IMMUTABLE));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Kinds stored for application manifests: metadata, plus ConfigMap/Secret keys and sizes
// (core/validation ValidateConfigMap, ValidateSecret)
// ---------------------------------------------------------------------------------------------

const CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_RE = /^[-._a-zA-Z0-9]+$/;
/** corev1.MaxSecretSize, also the ConfigMap limit. */
const MAX_DATA_SIZE = 1024 * 1024;

/** validation.IsConfigMapKey. */
export function configMapKeyErrors(key: string): string[] {
  const errs: string[] = [];
  if (byteLen(key) > 253) errs.push(`must be no more than 253 characters`);
  if (!CONFIG_MAP_KEY_RE.test(key)) {
    errs.push(`a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '${CONFIG_MAP_KEY_FMT}')`);
  }
  if (key === ".") errs.push(`must not be '.'`);
  else if (key === "..") errs.push(`must not be '..'`);
  else if (key.startsWith("..")) errs.push(`must not start with '..'`);
  return errs;
}

/** The byte length of a base64 value once decoded (it passed the decoder already). */
function decodedLen(b64: string): number {
  const clean = b64.replace(/[\r\n]/g, "");
  const pad = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0;
  return Math.floor((clean.length * 3) / 4) - pad;
}

function validateConfigMap(cm: Rec): FieldError[] {
  const errs = validateObjectMeta(cm.metadata, true, NameRule.DNS1123Subdomain);
  let total = 0;
  const data = rec(cm.data);
  const binary = rec(cm.binaryData);
  for (const [k, v] of Object.entries(data)) {
    for (const msg of configMapKeyErrors(k)) errs.push(invalid("data", k, msg));
    total += byteLen(str(v));
  }
  for (const [k, v] of Object.entries(binary)) {
    for (const msg of configMapKeyErrors(k)) errs.push(invalid("binaryData", k, msg));
    if (Object.hasOwn(data, k)) errs.push(invalid("data", k, "duplicate of key present in binaryData"));
    total += decodedLen(str(v));
  }
  if (total > MAX_DATA_SIZE) errs.push(tooLong("", MAX_DATA_SIZE));
  return errs;
}

const SECRET_REQUIRED_KEYS: Readonly<Record<string, readonly string[]>> = {
  "kubernetes.io/dockercfg": [".dockercfg"],
  "kubernetes.io/dockerconfigjson": [".dockerconfigjson"],
  "kubernetes.io/tls": ["tls.crt", "tls.key"],
};

function validateSecret(secret: Rec): FieldError[] {
  const errs = validateObjectMeta(secret.metadata, true, NameRule.DNS1123Subdomain);
  const data = rec(secret.data);
  let total = 0;
  for (const [k, v] of Object.entries({ ...data, ...rec(secret.stringData) })) {
    for (const msg of configMapKeyErrors(k)) errs.push(invalid(keyOf("data", k), k, msg));
    total += Object.hasOwn(data, k) ? decodedLen(str(v)) : byteLen(str(v));
  }
  if (total > MAX_DATA_SIZE) errs.push(tooLong("data", MAX_DATA_SIZE));
  const type = str(secret.type);
  for (const key of SECRET_REQUIRED_KEYS[type] ?? []) {
    if (!Object.hasOwn(data, key) && !Object.hasOwn(rec(secret.stringData), key)) errs.push(required(keyOf("data", key)));
  }
  if (type === "kubernetes.io/service-account-token" && !str(rec(rec(secret.metadata).annotations)["kubernetes.io/service-account.name"])) {
    errs.push(required("metadata.annotations[kubernetes.io/service-account.name]"));
  }
  return errs;
}

function validateSecretUpdate(secret: Rec, old: Rec): FieldError[] {
  const errs = [...validateObjectMetaUpdate(secret.metadata, old.metadata), ...validateSecret(secret)];
  if (str(secret.type) !== str(old.type)) errs.push(invalid("type", str(secret.type), FIELD_IMMUTABLE));
  if (old.immutable === true) {
    if (secret.immutable !== true) errs.push(forbidden("immutable", "field is immutable when `immutable` is set"));
    if (!semanticEqual(secret.data ?? {}, old.data ?? {})) errs.push(forbidden("data", "field is immutable when `immutable` is set"));
  }
  return errs;
}

function validateConfigMapUpdate(cm: Rec, old: Rec): FieldError[] {
  const errs = [...validateObjectMetaUpdate(cm.metadata, old.metadata), ...validateConfigMap(cm)];
  if (old.immutable === true) {
    if (cm.immutable !== true) errs.push(forbidden("immutable", "field is immutable when `immutable` is set"));
    if (!semanticEqual(cm.data ?? {}, old.data ?? {})) errs.push(forbidden("data", "field is immutable when `immutable` is set"));
    if (!semanticEqual(cm.binaryData ?? {}, old.binaryData ?? {})) errs.push(forbidden("binaryData", "field is immutable when `immutable` is set"));
  }
  return errs;
}

/** The kinds whose semantic checks are their metadata's (name rule and scope). */
/** batch validation.go validateJobSpec: a Job's pods run to completion, so they may not restart Always. */
function validateJobPodRestartPolicy(template: unknown, path: string): FieldError[] {
  const rp = rec(rec(template).spec).restartPolicy;
  const field = `${path}.spec.restartPolicy`;
  if (!present(rp)) return [required(field, 'valid values: "OnFailure", "Never"')];
  if (rp !== "OnFailure" && rp !== "Never") return [notSupported(field, str(rp), ["OnFailure", "Never"])];
  return [];
}

function validateJobSpecFields(spec: Rec, path: string): FieldError[] {
  const errs: FieldError[] = [];
  for (const f of ["parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"]) errs.push(...validateNonNegative(spec[f], `${path}.${f}`));
  errs.push(...validateJobPodRestartPolicy(spec.template, `${path}.template`));
  return errs;
}

function validateJob(o: Rec, prev: Rec | undefined): FieldError[] {
  return [...(validateMetaOnly("Job", o, prev) ?? []), ...validateJobSpecFields(rec(o.spec), "spec")];
}

function validateCronJob(o: Rec, prev: Rec | undefined): FieldError[] {
  const spec = rec(o.spec);
  const errs = [...(validateMetaOnly("CronJob", o, prev) ?? [])];
  if (!present(spec.schedule) || str(spec.schedule) === "") errs.push(required("spec.schedule", ""));
  else {
    const parsed = parseCron(str(spec.schedule));
    if (parsed.kind === "error") errs.push(invalid("spec.schedule", str(spec.schedule), parsed.message));
  }
  errs.push(...validateJobSpecFields(rec(rec(spec.jobTemplate).spec), "spec.jobTemplate.spec"));
  return errs;
}

function validateMetaOnly(kind: string, o: Rec, prev: Rec | undefined): FieldError[] | undefined {
  let errs: FieldError[];
  if (kind in RBAC_KINDS) errs = validateObjectMeta(o.metadata, RBAC_KINDS[kind]!, pathSegmentNameErrors);
  else if (KINDS[kind]) errs = validateObjectMeta(o.metadata, KINDS[kind].namespaced, KINDS[kind].nameRule);
  else return undefined;
  return prev ? [...validateObjectMetaUpdate(o.metadata, prev.metadata), ...errs] : errs;
}

// ---------------------------------------------------------------------------------------------
// Custom resources: the kinds defined by a SIG project's CRD (apiextensions-apiserver)
// ---------------------------------------------------------------------------------------------

/**
 * The CEL rules (x-kubernetes-validations) of the served CRD schemas, each with what it computes
 * for `self`. There is no CEL interpreter here: a schema with a rule missing from this table
 * throws when an object is validated against it (the unit tests walk every schema for that).
 * A rule whose inputs are absent passes: the schema's required fields report those.
 */
export const CEL_RULES: Readonly<Record<string, (self: unknown) => boolean>> = {
  // PortRange (network-policy-api v1alpha2).
  "self.start < self.end": (self) => {
    const r = rec(self);
    return typeof r.start !== "number" || typeof r.end !== "number" || r.start < r.end;
  },
  // CIDR (network-policy-api v1alpha2): the Kubernetes CEL library's isCIDR.
  "isCIDR(self)": (self) => typeof self !== "string" || celIsCidr(self),
  // NetworkChaos (chaos.kubewire.io/v1alpha1) spec.loss: random or Gilbert-Elliott, not both.
  "!(has(self.loss) && has(self.gemodel))": (self) => {
    const r = rec(self);
    return !(present(r.loss) && present(r.gemodel));
  },
};

/** An IPv4 address as netip.ParseAddr takes it: four decimal octets, no leading zeros. */
const STRICT_IPV4 = /^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$/;

/**
 * isCIDR of k8s.io/apiserver/pkg/cel/library/cidr.go: netip.ParsePrefix (IPv4 or IPv6 "addr/bits",
 * host bits may be set; no leading zeros in an IPv4 octet or in the prefix length, no zone) and
 * not an IPv4-mapped IPv6 address.
 */
export function celIsCidr(value: string): boolean {
  const slash = value.indexOf("/");
  if (slash < 0) return false;
  const addr = value.slice(0, slash);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(value.slice(slash + 1))) return false;
  const v4Part = addr.includes(":") ? (addr.includes(".") ? addr.slice(addr.lastIndexOf(":") + 1) : undefined) : addr;
  if (v4Part !== undefined && !STRICT_IPV4.test(v4Part)) return false;
  const cidr = parseIpCidr(value);
  if (!cidr) return false;
  return !(addr.includes(":") && ipTo4(cidr.address) !== undefined);
}

/** Errors of one object against a CRD schema, in the three passes apiextensions-apiserver runs. */
interface SchemaErrors {
  /** kube-openapi's validator: types, enums, bounds, sizes, required fields. */
  schema: FieldError[];
  /** x-kubernetes-list-type set/map: duplicate items or keys. */
  listType: FieldError[];
  /** x-kubernetes-validations. */
  cel: FieldError[];
}

/** kube-openapi's "<path> in body ..." message body. */
const inBody = (path: string, detail: string): string => `${path} in body ${detail}`;

/** field.TooLongMaxLength (what apiextensions reports for maxLength); it never prints the value. */
function tooLongMaxLength(field: string, max: number): FieldError {
  return { type: FieldErrorType.TooLong, field, message: `Too long: may not be longer than ${max}` };
}

/** Go's %#v of the key fields of a list-map item, as listtype's Duplicate prints them. */
function goKeyMap(item: Rec, keys: readonly string[]): GoRepr {
  const parts = keys.filter((k) => present(item[k])).map((k) => `${goQuote(k)}:${typeof item[k] === "string" ? goQuote(item[k] as string) : String(item[k])}`);
  return new GoRepr(`map[string]interface {}{${parts.join(", ")}}`);
}

/**
 * One value against its schema. Nulls count as absent (apiextensions drops the null of a field
 * that is not nullable before validating). Wrong JSON types were rejected before (schema.ts), so
 * a value of another type than its schema's is left alone here.
 */
function validateSchemaValue(schemaRef: JsonObject, v: unknown, path: string, out: SchemaErrors): void {
  if (v === undefined || v === null) return;
  const s = derefSchema(schemaRef);
  if (Array.isArray(s.enum) && !s.enum.some((e) => e === v)) out.schema.push(notSupported(path, v, s.enum.map((e) => (typeof e === "string" ? e : JSON.stringify(e)))));
  if (typeof v === "number") {
    if (typeof s.maximum === "number" && v > s.maximum) out.schema.push(invalid(path, v, inBody(path, `should be less than or equal to ${s.maximum}`)));
    if (typeof s.minimum === "number" && v < s.minimum) out.schema.push(invalid(path, v, inBody(path, `should be greater than or equal to ${s.minimum}`)));
  }
  if (typeof v === "string") {
    const length = [...v].length;
    if (typeof s.maxLength === "number" && length > s.maxLength) out.schema.push(tooLongMaxLength(path, s.maxLength));
    if (typeof s.minLength === "number" && length < s.minLength) out.schema.push(invalid(path, v, inBody(path, `should be at least ${s.minLength} chars long`)));
    if (typeof s.pattern === "string" && !new RegExp(s.pattern, "u").test(v)) out.schema.push(invalid(path, v, inBody(path, `should match '${s.pattern}'`)));
  }
  if (Array.isArray(v) && s.type === "array") {
    if (typeof s.maxItems === "number" && v.length > s.maxItems) out.schema.push(tooMany(path, v.length, s.maxItems));
    if (typeof s.minItems === "number" && v.length < s.minItems) out.schema.push(invalid(path, v.length, inBody(path, `should have at least ${s.minItems} items`)));
    const items = isRec(s.items) ? (s.items as JsonObject) : undefined;
    if (items) v.forEach((item, i) => validateSchemaValue(items, item, index(path, i), out));
    const listType = s["x-kubernetes-list-type"];
    if (listType === "set") {
      v.forEach((item, i) => {
        if (v.slice(0, i).some((earlier) => deepEqual(earlier, item))) out.listType.push(duplicate(index(path, i), item));
      });
    } else if (listType === "map" && Array.isArray(s["x-kubernetes-list-map-keys"])) {
      const keys = s["x-kubernetes-list-map-keys"].map(String);
      const seen = new Set<string>();
      v.forEach((item, i) => {
        if (!isRec(item)) return;
        const key = JSON.stringify(keys.map((k) => item[k] ?? null));
        if (seen.has(key)) out.listType.push(duplicate(index(path, i), goKeyMap(item, keys)));
        seen.add(key);
      });
    }
  }
  if (isRec(v) && s.type === "object") {
    for (const key of Array.isArray(s.required) ? s.required.map(String) : []) {
      if (!present(v[key])) out.schema.push(required(child(path, key)));
    }
    const count = Object.keys(v).filter((k) => present(v[k])).length;
    if (typeof s.maxProperties === "number" && count > s.maxProperties) out.schema.push(tooMany(path, count, s.maxProperties));
    if (typeof s.minProperties === "number" && count < s.minProperties) out.schema.push(invalid(path, count, inBody(path, `should have at least ${s.minProperties} properties`)));
    const props = isRec(s.properties) ? (s.properties as Record<string, JsonObject>) : {};
    const additional = isRec(s.additionalProperties) ? (s.additionalProperties as JsonObject) : undefined;
    // kube-openapi walks properties in map order (random); the schema's (alphabetical) order here.
    for (const [key, sub] of Object.entries(props)) validateSchemaValue(sub, v[key], child(path, key), out);
    if (additional) {
      for (const [key, child_] of Object.entries(v)) if (!(key in props)) validateSchemaValue(additional, child_, child(path, key), out);
    }
  }
  const rules = Array.isArray(s["x-kubernetes-validations"]) ? s["x-kubernetes-validations"].map(rec) : [];
  for (const r of rules) {
    const rule = str(r.rule);
    const check = CEL_RULES[rule];
    if (!check) throw new Error(`no implementation of the CEL rule ${JSON.stringify(rule)} (at ${path})`);
    if (!check(v)) out.cel.push(invalid(path, str(s.type), str(r.message) || `failed rule: ${rule}`));
  }
}

/** hasBlockingErr (customresource strategy.go): these errors stop the CEL rules from being evaluated. */
const BLOCKING: ReadonlySet<FieldErrorType> = new Set([FieldErrorType.NotSupported, FieldErrorType.Required, FieldErrorType.TooLong, FieldErrorType.TooMany]);

/**
 * A custom resource's validation (customResourceStrategy.Validate / ValidateUpdate): its
 * metadata, then its schema, its list types, and its CEL rules unless an earlier error blocks
 * them. Spec-level restrictions beyond the CRD's schema are the CRD's CEL rules only; in
 * ClusterNetworkPolicy v1alpha2 every action, Pass included, is allowed in either tier.
 */
function validateCustomResource(kind: string, o: Rec, prev: Rec | undefined): FieldError[] {
  const schema = crdKindSchema(kind);
  if (!schema) return [];
  const meta = KINDS[kind];
  const errs = prev ? validateObjectMetaUpdate(o.metadata, prev.metadata) : [];
  errs.push(...validateObjectMeta(o.metadata, meta?.namespaced ?? false, meta?.nameRule ?? NameRule.DNS1123Subdomain));
  const out: SchemaErrors = { schema: [], listType: [], cel: [] };
  // metadata is ObjectMeta, checked above as for every kind. status is the status subresource's,
  // which this registry does not validate for any kind (its writes get the structural check only);
  // judging it here would fail a spec update for what a status write stored.
  const { metadata: _metadata, status: _status, ...rest } = o;
  validateSchemaValue({ ...schema, required: arr(schema.required).map(str).filter((k) => k !== "metadata") }, rest, "", out);
  errs.push(...out.schema, ...out.listType);
  if (errs.some((e) => BLOCKING.has(e.type))) {
    // The CEL validator exists only for a schema with rules (cel.NewValidator returns nil otherwise).
    if (JSON.stringify(schema).includes('"x-kubernetes-validations"')) {
      errs.push(invalid("<nil>", null, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"));
    }
  } else {
    errs.push(...out.cel);
  }
  return errs;
}

/**
 * An instance of a kind served from a stored CustomResourceDefinition (crds.ts): as
 * validateCustomResource, against the version's schema, status included (apiextensions'
 * status strategy validates the whole object too). An error the stored object already has is
 * not the request's (validation ratcheting, apiextensions' CRDValidationRatcheting: a schema
 * change applies to new writes, and an untouched old value does not block an update).
 */
function validateServedCustomResource(custom: CustomResourceServing, namespaced: boolean, o: Rec, prev: Rec | undefined): FieldError[] {
  const schema = custom.validationSchema as JsonObject;
  const schemaErrors = (obj: Rec): { errs: FieldError[]; cel: FieldError[] } => {
    const out: SchemaErrors = { schema: [], listType: [], cel: [] };
    const { metadata: _metadata, ...rest } = obj;
    validateSchemaValue({ ...schema, required: arr(schema.required).map(str).filter((k) => k !== "metadata") }, rest, "", out);
    return { errs: [...out.schema, ...out.listType], cel: out.cel };
  };
  const errs = prev ? validateObjectMetaUpdate(o.metadata, prev.metadata) : [];
  errs.push(...validateObjectMeta(o.metadata, namespaced, NameRule.DNS1123Subdomain));
  let { errs: found, cel } = schemaErrors(o);
  if (prev) {
    const before = schemaErrors(prev);
    const had = new Set([...before.errs, ...before.cel].map(formatFieldError));
    found = found.filter((e) => !had.has(formatFieldError(e)));
    cel = cel.filter((e) => !had.has(formatFieldError(e)));
  }
  errs.push(...found);
  if (errs.some((e) => BLOCKING.has(e.type))) {
    if (JSON.stringify(schema).includes('"x-kubernetes-validations"')) {
      errs.push(invalid("<nil>", null, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"));
    }
  } else {
    errs.push(...cel);
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/**
 * Validates a (defaulted) object of `kind` for a create, or for an update when `old` (the stored
 * object) is given. [] means valid. Kinds this module does not know validate as [].
 */
export function validateObject(kind: string, obj: any, old?: any): FieldError[] {
  const o = rec(obj);
  const prev = old === undefined || old === null ? undefined : rec(old);
  // A kind served from a stored CRD is judged by its schema, whatever its name (a CRD's "Pod" is not core's).
  const served = customResourceFor(str(o.apiVersion), kind);
  if (served?.custom) return validateServedCustomResource(served.custom, served.namespaced, o, prev);
  if (kind === CRD_KIND && str(o.apiVersion) === CRD_API_VERSION) {
    const errs = prev ? validateObjectMetaUpdate(o.metadata, prev.metadata) : [];
    errs.push(...validateObjectMeta(o.metadata, false, NameRule.DNS1123Subdomain));
    return [...errs, ...validateCustomResourceDefinition(o, prev).errors];
  }
  switch (kind) {
    case "Namespace":
      return prev ? [...validateObjectMetaUpdate(o.metadata, prev.metadata), ...validateNamespace(o)] : validateNamespace(o);
    case "Node":
      return prev ? validateNodeUpdate(o, prev) : validateNode(o);
    case "Pod": {
      if (prev) return validatePodUpdate(o, prev);
      const errs = validatePod(o);
      if (arr(rec(o.spec).ephemeralContainers).length > 0) errs.push(forbidden("spec.ephemeralContainers", "cannot be set on create"));
      return errs;
    }
    case "Service":
      return prev ? validateServiceUpdate(o, prev) : validateService(o);
    case "EndpointSlice":
      return prev ? validateEndpointSliceUpdate(o, prev) : validateEndpointSlice(o);
    case "Deployment":
      return prev ? [...validateObjectMetaUpdate(o.metadata, prev.metadata), ...validateDeployment(o), ...validateSelectorImmutable(o, prev)] : validateDeployment(o);
    case "ReplicaSet":
      return prev ? [...validateObjectMetaUpdate(o.metadata, prev.metadata), ...validateReplicaSet(o), ...validateSelectorImmutable(o, prev)] : validateReplicaSet(o);
    case "NetworkPolicy": {
      if (!prev) return validateNetworkPolicy(o);
      // ValidationOptionsForNetworking: a stored policy whose pod selector no longer passes may keep its selector values.
      const allowInvalidLabelValue = validateLabelSelector(rec(rec(prev.spec).podSelector), "spec.podSelector").length > 0;
      return [...validateObjectMetaUpdate(o.metadata, prev.metadata), ...validateNetworkPolicy(o, { allowInvalidLabelValue })];
    }
    case "Ingress":
      return prev ? [...validateObjectMetaUpdate(o.metadata, prev.metadata), ...validateIngress(o)] : validateIngress(o);
    case "Event":
      return prev ? validateEventUpdate(o, prev) : validateEvent(o);
    case "ConfigMap":
      return prev ? validateConfigMapUpdate(o, prev) : validateConfigMap(o);
    case "Secret":
      return prev ? validateSecretUpdate(o, prev) : validateSecret(o);
    case "Job":
      return validateJob(o, prev);
    case "CronJob":
      return validateCronJob(o, prev);
    case "ClusterNetworkPolicy":
    case "NetworkChaos":
      return validateCustomResource(kind, o, prev);
    default:
      return validateMetaOnly(kind, o, prev) ?? [];
  }
}

/** The Status of a 422 (apimachinery/pkg/api/errors NewInvalid); shaped like status.ts's Status. */
export interface InvalidStatus {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure";
  message: string;
  reason: "Invalid";
  details: { name: string; group?: string; kind: string; causes: Array<{ reason: string; message: string; field: string }> };
  code: 422;
}

/**
 * The Status for an invalid object. The message names the qualified kind ("Deployment.apps")
 * and joins the errors as utilerrors.NewAggregate does: one error bare, several as
 * "[a, b]", identical messages once; the causes keep every error.
 */
export function statusForInvalid(kind: string, name: string, errors: readonly FieldError[], group?: string): InvalidStatus {
  const qualifiedKind = group ? `${kind}.${group}` : kind;
  const distinct = [...new Set(errors.map(formatFieldError))];
  let message = `${qualifiedKind} ${goQuote(name)} is invalid`;
  if (distinct.length === 1) message += `: ${distinct[0]}`;
  else if (distinct.length > 1) message += `: [${distinct.join(", ")}]`;
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason: "Invalid",
    details: {
      name,
      ...(group ? { group } : {}),
      kind,
      causes: errors.map((e) => ({ reason: e.type, message: e.message, field: e.field })),
    },
    code: 422,
  };
}
