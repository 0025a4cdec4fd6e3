/**
 * OpenAPI v3 discovery (/openapi/v3 and /openapi/v3/<group-version path>), as much of it as
 * kubectl reads:
 *
 * - `kubectl apply/create/replace` check, before sending `fieldValidation=Strict`, that the
 *   PATCH operation of the object's kind lists a `fieldValidation` query parameter
 *   (k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go). When it does, validation is
 *   left to the server and kubectl needs no schema and no /openapi/v2.
 * - Every operation names its kind in `x-kubernetes-group-version-kind` (an object) and its
 *   verb in `x-kubernetes-action`; every component schema of a kind names it in
 *   `x-kubernetes-group-version-kind` (a list), as kube-openapi writes them.
 *
 * The component schemas are Kubernetes' own definitions, with their descriptions, types, enums
 * and required fields, generated from the `kubernetes-models` packages into openapi-schemas.json
 * (tools/gen-openapi-schemas.ts, `npm run gen:openapi`): each document carries its kinds' schemas and everything they
 * reference, so `kubectl explain pod.spec.containers` prints fields and descriptions. They
 * carry no x-kubernetes-patch-merge-key/strategy (kubernetes-models does not keep them). The
 * kinds a SIG project defines with a CRD (ClusterNetworkPolicy) have hand-written schemas
 * (crd-schemas.ts) that the generator copies into the same file, named and shaped as
 * kube-apiserver publishes a CRD's schema.
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { RESOURCES, customResourceFor, groupVersion, groupVersions, servedGeneration, servedResources, type ResourceInfo } from "../../cluster/resources.ts";
import { crdDefinitionName } from "./crd-schemas.ts";

export interface OpenApiV3Root {
  paths: Record<string, { serverRelativeURL: string }>;
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** The Kubernetes version the documents say they describe. */
export const OPENAPI_KUBERNETES_VERSION = "v1.30.0";

const META = "io.k8s.apimachinery.pkg.apis.meta.v1";
const REF_PATCH = `#/components/schemas/${META}.Patch`;
const REF_DELETE_OPTIONS = `#/components/schemas/${META}.DeleteOptions`;
const REF_STATUS = `#/components/schemas/${META}.Status`;

/**
 * The PATCH body types advertised. Two the server may accept are deliberately left out:
 *
 * - application/strategic-merge-patch+json: when a kind's PATCH lists it, `kubectl apply`
 *   computes its three-way strategic merge patch from the v3 component schema
 *   (apply/patcher.go buildStrategicMergePatchFromOpenAPIV3); the schemas served here have no
 *   x-kubernetes-patch-merge-key/strategy (kubernetes-models does not keep them), so lists
 *   such as containers would be replaced whole (field-less schemas, as these once were, failed
 *   outright: "unable to find api field \"template\""). Unlisted, kubectl quietly uses its
 *   compiled-in Go types, which know every merge key, and still sends a strategic merge patch.
 * - application/apply-patch+yaml (server-side apply): not accepted by the registry yet. kubectl
 *   does not read this list before `apply --server-side`, so listing it changes nothing there.
 */
export const PATCH_CONTENT_TYPES = ["application/json-patch+json", "application/merge-patch+json"] as const;

/** "api/v1" for the core group, "apis/<group>/<version>" otherwise. */
export function groupVersionPath(gv: { group: string; version: string }): string {
  return gv.group ? `apis/${gv.group}/${gv.version}` : `api/${gv.version}`;
}

/**
 * Kubernetes' component schema name of a kind: "io.k8s.api.core.v1.Pod",
 * "io.k8s.api.networking.v1.Ingress"; a CRD-defined kind is named as apiextensions-apiserver
 * names it, by its reversed group ("io.k8s.networking.policy.v1alpha2.ClusterNetworkPolicy").
 */
export function schemaName(r: Pick<ResourceInfo, "group" | "version" | "source">, kind: string): string {
  if (r.source === "crd") return crdDefinitionName(r.group, r.version, kind);
  if (r.group === "apiextensions.k8s.io") return `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.${r.version}.${kind}`;
  const pkg = r.group ? (r.group.split(".")[0] ?? r.group) : "core";
  return `io.k8s.api.${pkg}.${r.version}.${kind}`;
}

const cap = (w: string): string => w.charAt(0).toUpperCase() + w.slice(1);

/**
 * The group/version part of operation ids: "CoreV1", "AppsV1", "NetworkingV1"; a CRD-defined
 * kind's keeps its whole group ("PolicyNetworkingK8sIoV1alpha2"), as for any custom resource.
 */
function operationGroupVersion(r: ResourceInfo): string {
  const group = r.group ? (r.source === "crd" ? r.group : r.group.replace(/\.k8s\.io$/, "")) : "core";
  const words = group.split(/[.-]/).filter((w) => w !== "");
  return words.map(cap).join("") + cap(r.version);
}

function tag(r: ResourceInfo): string {
  if (r.source === "crd") {
    const words = r.group.split(/[.-]/).filter((w) => w !== "");
    return `${(words[0] ?? "") + words.slice(1).map(cap).join("")}_${r.version}`;
  }
  const group = r.group ? r.group.replace(/\.k8s\.io$/, "").replaceAll(".", "_").replaceAll("-", "_") : "core";
  return `${group}_${r.version}`;
}

// ---------------------------------------------------------------------------------------------
// Parameters.

function queryParam(name: string, description: string, type: "string" | "boolean" | "integer" = "string"): JsonObject {
  return { name, in: "query", description, schema: { type, uniqueItems: true } };
}

function pathParam(name: string, description: string): JsonObject {
  return { name, in: "path", description, required: true, schema: { type: "string", uniqueItems: true } };
}

const P = {
  name: (kind: string) => pathParam("name", `name of the ${kind}`),
  namespace: () => pathParam("namespace", "object name and auth scope, such as for teams and projects"),
  pretty: () => queryParam("pretty", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."),
  dryRun: () =>
    queryParam("dryRun", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed"),
  fieldManager: () =>
    queryParam("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint."),
  fieldValidation: () =>
    queryParam("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered."),
  force: () =>
    queryParam("force", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.", "boolean"),
  allowWatchBookmarks: () => queryParam("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\".", "boolean"),
  continue: () => queryParam("continue", "The continue option should be set when retrieving more results from the server."),
  fieldSelector: () => queryParam("fieldSelector", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
  labelSelector: () => queryParam("labelSelector", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
  limit: () => queryParam("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
  resourceVersion: () => queryParam("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from."),
  resourceVersionMatch: () => queryParam("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
  sendInitialEvents: () => queryParam("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`.", "boolean"),
  timeoutSeconds: () => queryParam("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
  watch: () => queryParam("watch", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.", "boolean"),
  gracePeriodSeconds: () => queryParam("gracePeriodSeconds", "The duration in seconds before the object should be deleted.", "integer"),
  orphanDependents: () => queryParam("orphanDependents", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7.", "boolean"),
  propagationPolicy: () => queryParam("propagationPolicy", "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'."),
};

const LIST_PARAMS = (): JsonObject[] => [
  P.allowWatchBookmarks(),
  P.continue(),
  P.fieldSelector(),
  P.labelSelector(),
  P.limit(),
  P.resourceVersion(),
  P.resourceVersionMatch(),
  P.sendInitialEvents(),
  P.timeoutSeconds(),
  P.watch(),
];

const WRITE_PARAMS = (): JsonObject[] => [P.dryRun(), P.fieldManager(), P.fieldValidation()];

// ---------------------------------------------------------------------------------------------
// Operations.

function jsonContent(ref: string): JsonObject {
  return { "application/json": { schema: { $ref: ref } } };
}

function response(ref: string, description = "OK"): JsonObject {
  return { description, content: jsonContent(ref) };
}

const UNAUTHORIZED: JsonObject = { description: "Unauthorized" };

interface OpSpec {
  /** The resource operated on; lists too name the item kind, as Kubernetes does. */
  r: ResourceInfo;
  action: "list" | "post" | "get" | "put" | "patch" | "delete" | "deletecollection";
  operationId: string;
  description: string;
  parameters: JsonObject[];
  requestBody?: JsonObject;
  responses: JsonObject;
}

function operation(o: OpSpec): JsonObject {
  const op: JsonObject = {
    tags: [tag(o.r)],
    description: o.description,
    operationId: o.operationId,
  };
  if (o.parameters.length > 0) op.parameters = o.parameters;
  if (o.requestBody) op.requestBody = o.requestBody;
  op.responses = o.responses;
  op["x-kubernetes-action"] = o.action;
  op["x-kubernetes-group-version-kind"] = { group: o.r.group, version: o.r.version, kind: o.r.kind };
  return op;
}

function resourcePaths(r: ResourceInfo): Record<string, JsonObject> {
  const gvPrefix = `/${groupVersionPath(r)}`;
  const scope = r.namespaced ? `${gvPrefix}/namespaces/{namespace}` : gvPrefix;
  const collection = `${scope}/${r.plural}`;
  const item = `${collection}/{name}`;
  const ref = `#/components/schemas/${schemaName(r, r.kind)}`;
  const listRef = `#/components/schemas/${schemaName(r, r.custom?.listKind || `${r.kind}List`)}`;
  const ns = r.namespaced ? "Namespaced" : "";
  const id = (verb: string, suffix = ""): string => `${verb}${operationGroupVersion(r)}${ns}${r.kind}${suffix}`;
  const scopeParams = (): JsonObject[] => (r.namespaced ? [P.namespace(), P.pretty()] : [P.pretty()]);
  const body = (schemaRef: string): JsonObject => ({ content: jsonContent(schemaRef), required: true });
  const patchBody = (): JsonObject => ({
    content: Object.fromEntries(PATCH_CONTENT_TYPES.map((t) => [t, { schema: { $ref: REF_PATCH } }])),
    required: true,
  });

  const paths: Record<string, JsonObject> = {};

  paths[collection] = {
    get: operation({
      r,
      action: "list",
      operationId: id("list"),
      description: `list or watch objects of kind ${r.kind}`,
      parameters: LIST_PARAMS(),
      responses: { "200": response(listRef), "401": UNAUTHORIZED },
    }),
    post: operation({
      r,
      action: "post",
      operationId: id("create"),
      description: `create a ${r.kind}`,
      parameters: WRITE_PARAMS(),
      requestBody: body(ref),
      responses: { "200": response(ref), "201": response(ref, "Created"), "202": response(ref, "Accepted"), "401": UNAUTHORIZED },
    }),
    delete: operation({
      r,
      action: "deletecollection",
      operationId: `delete${operationGroupVersion(r)}Collection${ns}${r.kind}`,
      description: `delete collection of ${r.kind}`,
      parameters: [
        P.continue(),
        P.dryRun(),
        P.fieldSelector(),
        P.gracePeriodSeconds(),
        P.labelSelector(),
        P.limit(),
        P.orphanDependents(),
        P.propagationPolicy(),
        P.resourceVersion(),
        P.resourceVersionMatch(),
        P.sendInitialEvents(),
        P.timeoutSeconds(),
      ],
      requestBody: { content: jsonContent(REF_DELETE_OPTIONS) },
      responses: { "200": response(REF_STATUS), "401": UNAUTHORIZED },
    }),
    parameters: scopeParams(),
  };

  paths[item] = {
    get: operation({
      r,
      action: "get",
      operationId: id("read"),
      description: `read the specified ${r.kind}`,
      parameters: [],
      responses: { "200": response(ref), "401": UNAUTHORIZED },
    }),
    put: operation({
      r,
      action: "put",
      operationId: id("replace"),
      description: `replace the specified ${r.kind}`,
      parameters: WRITE_PARAMS(),
      requestBody: body(ref),
      responses: { "200": response(ref), "201": response(ref, "Created"), "401": UNAUTHORIZED },
    }),
    patch: operation({
      r,
      action: "patch",
      operationId: id("patch"),
      description: `partially update the specified ${r.kind}`,
      parameters: [...WRITE_PARAMS(), P.force()],
      requestBody: patchBody(),
      responses: { "200": response(ref), "201": response(ref, "Created"), "401": UNAUTHORIZED },
    }),
    delete: operation({
      r,
      action: "delete",
      operationId: id("delete"),
      description: `delete a ${r.kind}`,
      parameters: [P.dryRun(), P.gracePeriodSeconds(), P.orphanDependents(), P.propagationPolicy()],
      requestBody: { content: jsonContent(REF_DELETE_OPTIONS) },
      responses: { "200": response(REF_STATUS), "202": response(REF_STATUS, "Accepted"), "401": UNAUTHORIZED },
    }),
    parameters: [P.name(r.kind), ...scopeParams()],
  };

  if (r.subresources.includes("status")) {
    paths[`${item}/status`] = {
      get: operation({
        r,
        action: "get",
        operationId: id("read", "Status"),
        description: `read status of the specified ${r.kind}`,
        parameters: [],
        responses: { "200": response(ref), "401": UNAUTHORIZED },
      }),
      put: operation({
        r,
        action: "put",
        operationId: id("replace", "Status"),
        description: `replace status of the specified ${r.kind}`,
        parameters: WRITE_PARAMS(),
        requestBody: body(ref),
        responses: { "200": response(ref), "201": response(ref, "Created"), "401": UNAUTHORIZED },
      }),
      patch: operation({
        r,
        action: "patch",
        operationId: id("patch", "Status"),
        description: `partially update status of the specified ${r.kind}`,
        parameters: [...WRITE_PARAMS(), P.force()],
        requestBody: patchBody(),
        responses: { "200": response(ref), "201": response(ref, "Created"), "401": UNAUTHORIZED },
      }),
      parameters: [P.name(r.kind), ...scopeParams()],
    };
  }

  if (r.namespaced) {
    paths[`${gvPrefix}/${r.plural}`] = {
      get: operation({
        r,
        action: "list",
        operationId: `list${operationGroupVersion(r)}${r.kind}ForAllNamespaces`,
        description: `list or watch objects of kind ${r.kind}`,
        parameters: [],
        responses: { "200": response(listRef), "401": UNAUTHORIZED },
      }),
      parameters: [...LIST_PARAMS(), P.pretty()],
    };
  }

  return paths;
}

// ---------------------------------------------------------------------------------------------
// Component schemas.

const FREE_FORM: JsonObject = { type: "object", "x-kubernetes-preserve-unknown-fields": true };

let definitions: Record<string, JsonObject> | undefined;

/** Kubernetes' definitions by name ("io.k8s.api.core.v1.PodSpec"), from openapi-schemas.json. */
export function openApiDefinitions(): Record<string, JsonObject> {
  definitions ??= createRequire(import.meta.url)("./openapi-schemas.json") as Record<string, JsonObject>;
  return definitions;
}

function gvk(group: string, version: string, kind: string): Json {
  return [{ group, version, kind }];
}

/**
 * What a schema stands for: the definition it refers to (a bare `$ref`, or kube-openapi's
 * `allOf: [{$ref}]` beside a description), else the schema itself.
 */
export function derefSchema(s: JsonObject): JsonObject {
  const defs = openApiDefinitions();
  let cur = s;
  for (let i = 0; i < 8; i++) {
    const target = typeof cur.$ref === "string" ? cur.$ref : refOfAllOf(cur);
    if (target === undefined) return cur;
    const def = defs[target.slice("#/components/schemas/".length)];
    if (!def) return cur;
    cur = def;
  }
  return cur;
}

function refOfAllOf(s: JsonObject): string | undefined {
  const all = s.allOf;
  if (!Array.isArray(all) || all.length !== 1) return undefined;
  const only = all[0];
  return only !== null && typeof only === "object" && !Array.isArray(only) && typeof only.$ref === "string" ? only.$ref : undefined;
}

/**
 * The schema of a kind served from a CRD-defined schema (cluster/resources.ts `source: "crd"`),
 * by kind (and apiVersion, when given); undefined for Kubernetes' own kinds and unknown ones.
 */
export function crdKindSchema(kind: string, apiVersion?: string): JsonObject | undefined {
  // A kind served from a stored CustomResourceDefinition: the schema its instances are checked against.
  const served = apiVersion === undefined ? undefined : customResourceFor(apiVersion, kind);
  if (served?.custom) return served.custom.validationSchema as JsonObject;
  const r = RESOURCES.find((x) => x.source === "crd" && x.kind === kind && (apiVersion === undefined || groupVersion(x) === apiVersion));
  return r ? openApiDefinitions()[schemaName(r, kind)] : undefined;
}

/** The schema of a kind, or of its list, as Kubernetes defines it (a free-form object if it has none). */
function kindSchema(r: ResourceInfo, kind: string): JsonObject {
  if (r.custom) return { ...customKindSchema(r, kind), "x-kubernetes-group-version-kind": gvk(r.group, r.version, kind) };
  const def = openApiDefinitions()[schemaName(r, kind)];
  const base: JsonObject = def
    ? structuredClone(def)
    : { description: `${kind} (${groupVersion(r)}).`, type: "object", properties: { apiVersion: { type: "string" }, kind: { type: "string" }, metadata: { ...FREE_FORM } } };
  return { ...base, "x-kubernetes-group-version-kind": gvk(r.group, r.version, kind) };
}

/**
 * A CRD-served kind's schema, as apiextensions-apiserver publishes it (builder.go): the version's
 * schema with TypeMeta and ObjectMeta; its list, items referring to it.
 */
function customKindSchema(r: ResourceInfo, kind: string): JsonObject {
  if (kind === r.kind) return structuredClone(r.custom!.schema) as JsonObject;
  return {
    description: `${kind} is a list of ${r.kind}`,
    type: "object",
    properties: {
      apiVersion: { type: "string" },
      items: { description: `List of ${r.plural}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md`, type: "array", items: { $ref: `#/components/schemas/${schemaName(r, r.kind)}` } },
      kind: { type: "string" },
      metadata: { description: "Standard list metadata.", allOf: [{ $ref: `#/components/schemas/${META}.ListMeta` }] },
    },
    required: ["items"],
  };
}

/** The names `schema` refers to, followed through the definitions. */
function referenced(roots: Iterable<JsonObject>, into: Set<string>): void {
  const defs = openApiDefinitions();
  const walk = (v: Json): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === "object") {
      for (const [k, child] of Object.entries(v)) {
        if (k === "$ref" && typeof child === "string") {
          const name = child.slice("#/components/schemas/".length);
          if (!into.has(name)) {
            into.add(name);
            const def = defs[name];
            if (def) walk(def);
          }
        } else walk(child);
      }
    }
  };
  for (const r of roots) walk(r);
}

function metaSchemas(gv: { group: string; version: string }): Record<string, JsonObject> {
  const defs = openApiDefinitions();
  return {
    [`${META}.DeleteOptions`]: { ...structuredClone(defs[`${META}.DeleteOptions`] ?? { type: "object" }), "x-kubernetes-group-version-kind": gvk(gv.group, gv.version, "DeleteOptions") },
    [`${META}.Patch`]: {
      description: "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
      type: "object",
    },
    [`${META}.Status`]: { ...structuredClone(defs[`${META}.Status`] ?? { type: "object" }), "x-kubernetes-group-version-kind": gvk("", "v1", "Status") },
  };
}

// ---------------------------------------------------------------------------------------------
// Documents, hashes and the root.

function buildDocument(gv: { group: string; version: string }): JsonObject {
  const resources = servedResources().filter((r) => r.group === gv.group && r.version === gv.version);
  const paths: JsonObject = {};
  const schemas: JsonObject = {};
  for (const r of resources) {
    Object.assign(paths, resourcePaths(r));
    schemas[schemaName(r, r.kind)] = kindSchema(r, r.kind);
    const listKind = r.custom?.listKind || `${r.kind}List`;
    schemas[schemaName(r, listKind)] = kindSchema(r, listKind);
  }
  Object.assign(schemas, metaSchemas(gv));
  // Everything the kinds refer to (ObjectMeta, PodSpec, ...), as kube-openapi includes it.
  const names = new Set<string>();
  referenced(Object.values(schemas) as JsonObject[], names);
  const defs = openApiDefinitions();
  for (const name of names) if (!(name in schemas) && defs[name]) schemas[name] = structuredClone(defs[name]);
  const sortedSchemas: JsonObject = {};
  for (const k of Object.keys(schemas).sort()) sortedSchemas[k] = schemas[k] ?? null;
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: OPENAPI_KUBERNETES_VERSION },
    paths,
    components: { schemas: sortedSchemas },
  };
}

interface Built {
  json: string;
  hash: string;
}

let built: Map<string, Built> | undefined;
let builtAt = -1;

/** Every served GV's document as JSON text with its hash, built again when the served kinds change (CRDs). */
function documents(): Map<string, Built> {
  if (!built || builtAt !== servedGeneration()) {
    builtAt = servedGeneration();
    built = new Map();
    for (const gv of groupVersions()) {
      const json = JSON.stringify(buildDocument(gv));
      // kube-openapi's ETag is the upper-case hex SHA-512 of the document.
      const hash = createHash("sha512").update(json).digest("hex").toUpperCase();
      built.set(groupVersionPath(gv), { json, hash });
    }
  }
  return built;
}

function normalize(path: string): string {
  return path.replace(/^\/+/, "").replace(/\/+$/, "");
}

/** GET /openapi/v3: every served group/version with the URL of its document, hash included. */
export function openApiV3Root(): OpenApiV3Root {
  const paths: OpenApiV3Root["paths"] = {};
  for (const [path, doc] of documents()) {
    paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${doc.hash}` };
  }
  return { paths };
}

/**
 * GET /openapi/v3/<path> for a path like "api/v1" or "apis/apps/v1" (a leading or trailing "/"
 * is ignored): the OpenAPI 3.0 document of that group/version, undefined if it is not served.
 * Each call returns a fresh object.
 */
export function openApiV3Document(groupVersionPathArg: string): object | undefined {
  const doc = documents().get(normalize(groupVersionPathArg));
  return doc ? (JSON.parse(doc.json) as object) : undefined;
}

/** The document's JSON text, ready to send (the exact text the hash is computed over). */
export function openApiV3DocumentJson(groupVersionPathArg: string): string | undefined {
  return documents().get(normalize(groupVersionPathArg))?.json;
}

/** The document's hash (the `hash` query parameter of its serverRelativeURL, usable as an ETag). */
export function openApiV3Hash(groupVersionPathArg: string): string | undefined {
  return documents().get(normalize(groupVersionPathArg))?.hash;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI v2 (/openapi/v2).
//
// kubectl still reads the v2 document in one place that matters here: `kubectl apply/create -f`
// of a `kind: List` with --validate=strict (the default). Its field-validation verifier answers
// "unsupported" for v1 List whatever the server says (cli-runtime query_param_verifier_v3.go), so
// kubectl validates the list client-side (kubectl/pkg/validation/schema.go validateList), looking
// each item's kind up in the v2 document; with no /openapi/v2 that failed with "the server could
// not find the requested resource", where a real cluster accepts the list.
//
// The document served has no definitions, on purpose: kubectl skips client-side validation of a
// kind it finds none for (each item still goes to the server with fieldValidation=Strict, so an
// unknown field in a listed object is still rejected, by the server), and `kubectl apply` computes
// a strategic merge patch from a v2 definition of the kind when it finds one (apply/patcher.go),
// which without x-kubernetes-patch-merge-key (kubernetes-models does not keep them) would replace
// lists such as containers whole. With none, apply keeps using its compiled-in types.

/** The v2 document as JSON (what kube-apiserver sends for Accept: application/json). */
export function openApiV2Document(): { swagger: string; info: { title: string; version: string }; paths: Record<string, never> } {
  return { swagger: "2.0", info: { title: "Kubernetes", version: OPENAPI_KUBERNETES_VERSION }, paths: {} };
}

/** The media types /openapi/v2 answers in protobuf (client-go discovery's openAPIV2mimePb, and the spelling kube-openapi also takes). */
export const OPENAPI_V2_PROTOBUF_TYPES = ["application/com.github.proto-openapi.spec.v2@v1.0+protobuf", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"] as const;

/**
 * The Content-Type of the protobuf answer: kube-openapi's handler returns this spelling whichever
 * was asked for, since "@" is not a token character and Go's mime.ParseMediaType, which the client
 * runs on the response, rejects the other.
 */
export const OPENAPI_V2_PROTOBUF_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** A length-delimited protobuf field (wire type 2): a string or an embedded message. */
function lengthDelimited(field: number, bytes: readonly number[]): number[] {
  return [...varint((field << 3) | 2), ...varint(bytes.length), ...bytes];
}

const utf8 = (s: string): number[] => [...Buffer.from(s, "utf8")];

/**
 * The v2 document as the protobuf kubectl decodes (gnostic openapiv2/OpenAPIv2.proto: Document
 * swagger = 1, info = 2, paths = 8; Info title = 1, version = 2).
 */
export function openApiV2Protobuf(): Buffer {
  const doc = openApiV2Document();
  const info = [...lengthDelimited(1, utf8(doc.info.title)), ...lengthDelimited(2, utf8(doc.info.version))];
  return Buffer.from([...lengthDelimited(1, utf8(doc.swagger)), ...lengthDelimited(2, info), ...lengthDelimited(8, [])]);
}
