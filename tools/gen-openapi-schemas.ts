/**
 * Generates control-plane/api/openapi-schemas.json: the OpenAPI component schemas, with their
 * descriptions, of every kind the API serves and everything they reference, as Kubernetes names
 * them ("io.k8s.api.core.v1.PodSpec"). Read from the `kubernetes-models` packages, whose
 * declaration files are generated from Kubernetes' swagger.json and keep each definition's and
 * field's description, type, enum values and required fields; nothing of those is hand-written.
 * The kinds a SIG project defines with a CRD (cluster/resources.ts `source: "crd"`), which
 * kubernetes-models lacks, are the exception: their hand-written schemas
 * (control-plane/api/crd-schemas.ts) are copied in as they are.
 *
 *   npm run gen:openapi
 *
 * The runtime image installs no TypeScript, so the output is a checked-in file; run this again
 * after adding a kind to cluster/resources.ts (and its definition to schema.ts, or its schema to
 * crd-schemas.ts) or after upgrading kubernetes-models.
 */
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { RESOURCES, groupVersion } from "../cluster/resources.ts";
import { DEFINITIONS } from "../control-plane/api/schema.ts";
import { crdDefinitions } from "../control-plane/api/crd-schemas.ts";
import { schemaName } from "../control-plane/api/openapi.ts";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const require = createRequire(import.meta.url);
const MODELS = dirname(require.resolve("kubernetes-models/package.json"));
const APIMACHINERY = dirname(require.resolve("@kubernetes-models/apimachinery/package.json", { paths: [MODELS] }));
const OUT = join(dirname(fileURLToPath(import.meta.url)), "../control-plane/api/openapi-schemas.json");

/** The Kubernetes definition name of a kubernetes-models declaration file. */
function definitionName(file: string): string {
  const stripped = file.replace(/\.d\.ts$/, "");
  if (stripped.startsWith(APIMACHINERY + sep)) {
    return `io.k8s.apimachinery.pkg.${relative(APIMACHINERY, stripped).split(sep).join(".")}`;
  }
  const parts = relative(MODELS, stripped).split(sep);
  if (parts.length === 2) return `io.k8s.api.core.${parts[0]}.${parts[1]}`; // v1/Pod
  const [group, version, name] = parts as [string, string, string];
  return `io.k8s.api.${group.split(".")[0]}.${version}.${name}`;
}

/** The declaration file a module specifier of `from` points to. */
function resolveModule(spec: string, from: string): string | undefined {
  let base: string;
  if (spec.startsWith(".")) base = resolve(dirname(from), spec);
  else if (spec.startsWith("@kubernetes-models/apimachinery/")) base = join(APIMACHINERY, spec.slice("@kubernetes-models/apimachinery/".length));
  else if (spec.startsWith("kubernetes-models/")) base = join(MODELS, spec.slice("kubernetes-models/".length));
  else return undefined;
  const file = `${base}.d.ts`;
  return existsSync(file) ? file : undefined;
}

function jsDoc(node: ts.Node, sf: ts.SourceFile): string | undefined {
  const docs = (node as { jsDoc?: ts.JSDoc[] }).jsDoc;
  const doc = docs?.[docs.length - 1];
  if (!doc) return undefined;
  const text = typeof doc.comment === "string" ? doc.comment : ts.getTextOfJSDocComment(doc.comment);
  void sf;
  return text?.trim() || undefined;
}

/** TypeMeta's field descriptions, as meta/v1 Status carries them in kubernetes-models. */
const TYPE_META: Record<string, string> = (() => {
  const file = join(APIMACHINERY, "apis/meta/v1/Status.d.ts");
  const sf = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const out: Record<string, string> = {};
  const iface = sf.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s))!;
  for (const m of iface.members) {
    const key = m.name && ts.isStringLiteral(m.name) ? m.name.text : m.name?.getText(sf);
    const doc = jsDoc(m, sf);
    if ((key === "apiVersion" || key === "kind") && doc) out[key] = doc;
  }
  return out;
})();

const schemas: Record<string, JsonObject> = {};
const pending: Array<{ file: string; name: string }> = [];

function want(file: string): string {
  const name = definitionName(file);
  if (!(name in schemas) && !pending.some((p) => p.name === name)) pending.push({ file, name });
  return name;
}

function ref(name: string): JsonObject {
  return { $ref: `#/components/schemas/${name}` };
}

function typeSchema(node: ts.TypeNode, imports: Map<string, string>, sf: ts.SourceFile): JsonObject {
  switch (node.kind) {
    case ts.SyntaxKind.StringKeyword:
      return { type: "string" };
    case ts.SyntaxKind.NumberKeyword:
      return { type: "integer" };
    case ts.SyntaxKind.BooleanKeyword:
      return { type: "boolean" };
    case ts.SyntaxKind.AnyKeyword:
    case ts.SyntaxKind.UnknownKeyword:
    case ts.SyntaxKind.ObjectKeyword:
      return { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  }
  if (ts.isLiteralTypeNode(node)) {
    if (ts.isStringLiteral(node.literal)) return { type: "string" };
    if (ts.isNumericLiteral(node.literal)) return { type: "integer" };
    return {};
  }
  if (ts.isUnionTypeNode(node)) {
    const lits = node.types.filter((t): t is ts.LiteralTypeNode => ts.isLiteralTypeNode(t) && ts.isStringLiteral(t.literal));
    if (lits.length === node.types.length) return { type: "string", enum: lits.map((l) => (l.literal as ts.StringLiteral).text) };
    const kinds = new Set(node.types.map((t) => t.kind));
    if (kinds.has(ts.SyntaxKind.StringKeyword) && kinds.has(ts.SyntaxKind.NumberKeyword)) return { type: "string", format: "int-or-string", "x-kubernetes-int-or-string": true };
    return typeSchema(node.types[0]!, imports, sf);
  }
  if (ts.isArrayTypeNode(node)) return { type: "array", items: typeSchema(node.elementType, imports, sf) };
  if (ts.isTypeLiteralNode(node)) {
    const index = node.members.find(ts.isIndexSignatureDeclaration);
    if (index?.type) return { type: "object", additionalProperties: typeSchema(index.type, imports, sf) };
    return { type: "object" };
  }
  if (ts.isTypeReferenceNode(node)) {
    const name = node.typeName.getText(sf);
    if ((name === "Array" || name === "ReadonlyArray") && node.typeArguments?.[0]) return { type: "array", items: typeSchema(node.typeArguments[0], imports, sf) };
    if (name === "Record" && node.typeArguments?.[1]) return { type: "object", additionalProperties: typeSchema(node.typeArguments[1], imports, sf) };
    const file = imports.get(name);
    if (file) return ref(want(file));
    return { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  }
  if (ts.isIndexedAccessTypeNode(node)) return { type: "string" }; // IDeployment["apiVersion"]
  return {};
}

/** A property's schema: a reference keeps its own description beside it, as kube-openapi writes it. */
function propertySchema(type: JsonObject, description: string | undefined): JsonObject {
  const withRefs = (s: JsonObject): JsonObject => {
    if (typeof s.$ref === "string") return { allOf: [s] };
    if (s.items && typeof s.items === "object" && !Array.isArray(s.items)) return { ...s, items: withRefs(s.items as JsonObject) };
    if (s.additionalProperties && typeof s.additionalProperties === "object" && !Array.isArray(s.additionalProperties)) {
      return { ...s, additionalProperties: withRefs(s.additionalProperties as JsonObject) };
    }
    return s;
  };
  const out = withRefs(type);
  return description ? { description, ...out } : out;
}

function generate(file: string, name: string): void {
  const sf = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const imports = new Map<string, string>();
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier)) continue;
    const target = resolveModule(st.moduleSpecifier.text, file);
    const bindings = st.importClause?.namedBindings;
    if (target && bindings && ts.isNamedImports(bindings)) for (const el of bindings.elements) imports.set(el.name.text, target);
  }
  const iface = sf.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s));
  if (iface) {
    const properties: JsonObject = {};
    const required: string[] = [];
    // kubernetes-models types apiVersion and kind of a kind as literals, without their
    // descriptions; kube-openapi gives them TypeMeta's, as optional fields.
    const typeMeta = iface.heritageClauses?.some((h) => h.types.some((t) => t.expression.getText(sf) === "TypeMeta")) ?? false;
    for (const m of iface.members) {
      if (!ts.isPropertySignature(m) || !m.type) continue;
      const key = ts.isStringLiteral(m.name) ? m.name.text : m.name.getText(sf);
      const isTypeMeta = typeMeta && (key === "apiVersion" || key === "kind");
      properties[key] = propertySchema(typeSchema(m.type, imports, sf), jsDoc(m, sf) ?? (isTypeMeta ? TYPE_META[key] : undefined));
      if (!m.questionToken && !isTypeMeta) required.push(key);
    }
    const schema: JsonObject = {};
    const description = jsDoc(iface, sf);
    if (description) schema.description = description;
    schema.type = "object";
    if (Object.keys(properties).length > 0) schema.properties = properties;
    if (required.length > 0) schema.required = required;
    schemas[name] = schema;
    return;
  }
  // A type alias: IntOrString, Quantity, Time, MicroTime, FieldsV1...
  const alias = sf.statements.find((s): s is ts.TypeAliasDeclaration => ts.isTypeAliasDeclaration(s));
  const schema: JsonObject = alias ? typeSchema(alias.type, imports, sf) : { type: "object" };
  if (name.endsWith(".Quantity")) Object.assign(schema, { type: "string" }, { format: undefined as unknown as Json, "x-kubernetes-int-or-string": undefined as unknown as Json });
  if (name.endsWith(".Time")) Object.assign(schema, { type: "string", format: "date-time" });
  if (name.endsWith(".MicroTime")) Object.assign(schema, { type: "string", format: "date-time" });
  if (name.endsWith(".FieldsV1") || name.endsWith(".RawExtension")) Object.assign(schema, { type: "object" });
  const description = alias ? jsDoc(alias, sf) : undefined;
  schemas[name] = JSON.parse(JSON.stringify(description ? { description, ...schema } : schema)) as JsonObject;
}

/** "IoK8sApiAppsV1Deployment" -> its declaration file, by the alias every file exports. */
function fileOfDefinition(def: string): string {
  const r = RESOURCES.find((x) => DEFINITIONS[`${groupVersion(x)}/${x.kind}`] === def)!;
  const dir = r.group ? join(MODELS, r.group, r.version) : join(MODELS, r.version);
  return join(dir, `${r.kind}.d.ts`);
}

for (const r of RESOURCES) {
  if (r.source === "crd") continue;
  const def = DEFINITIONS[`${groupVersion(r)}/${r.kind}`];
  if (!def) throw new Error(`no kubernetes-models definition for ${groupVersion(r)} ${r.kind}`);
  const file = fileOfDefinition(def);
  want(file);
  const list = file.replace(/\.d\.ts$/, "List.d.ts");
  if (existsSync(list)) want(list);
}
want(join(APIMACHINERY, "apis/meta/v1/Status.d.ts"));
want(join(APIMACHINERY, "apis/meta/v1/DeleteOptions.d.ts"));
while (pending.length > 0) {
  const next = pending.shift()!;
  generate(next.file, next.name);
}

// The CRD-defined kinds: their hand-written schemas, which refer only to generated ones (ObjectMeta, ListMeta).
const crds = crdDefinitions({ apiVersion: TYPE_META.apiVersion ?? "", kind: TYPE_META.kind ?? "" });
for (const r of RESOURCES.filter((x) => x.source === "crd")) {
  for (const name of [schemaName(r, r.kind), schemaName(r, `${r.kind}List`)]) {
    if (!crds[name]) throw new Error(`no hand-written schema ${name} for ${groupVersion(r)} ${r.kind} in crd-schemas.ts`);
  }
}
Object.assign(schemas, crds);
for (const m of JSON.stringify(crds).matchAll(/"#\/components\/schemas\/([^"]+)"/g)) {
  if (!schemas[m[1]!]) throw new Error(`crd-schemas.ts refers to ${m[1]}, which is not generated`);
}

const sorted: Record<string, JsonObject> = {};
for (const k of Object.keys(schemas).sort()) sorted[k] = schemas[k]!;
writeFileSync(OUT, `${JSON.stringify(sorted)}\n`);
console.log(`${Object.keys(sorted).length} definitions, ${Math.round(JSON.stringify(sorted).length / 1024)} KiB -> ${relative(process.cwd(), OUT)}`);
