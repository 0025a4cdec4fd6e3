/**
 * The API's semantics on top of the store, shared by the HTTP server, the controllers and the
 * node-agents' RPCs: defaulting, validation, admission (ClusterIP/NodePort allocation), system
 * fields (uid, generation, timestamps), optimistic concurrency, status subresources, patches,
 * graceful pod deletion, selectors. Every failure is an ApiError carrying a Kubernetes Status,
 * and a rejected request writes nothing.
 */
import { randomUUID } from "node:crypto";
import { defaultObject, defaultOwnObject } from "./defaults.ts";
import { applyJsonMergePatch, applyJsonPatch, applyStrategicMergePatch, patchSchemaFor } from "./patch.ts";
import { RESOURCES, groupVersion, resourceByKind, type ResourceInfo } from "../../cluster/resources.ts";
import { checkFieldSelector, fieldsFor, matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector, type FieldSelector, type LabelSelector } from "../../cluster/selectors.ts";
import { ApiError, Errors } from "./status.ts";
import { ObjectStore, StoreError, StoreErrorCode, type KubeObject, type WatchEvent, type WatchHandle } from "../../cluster/store.ts";
import { statusForInvalid, validateObject, type FieldError } from "./validation.ts";
import { checkSchema, type FieldValidation } from "./schema.ts";
import { isCrdResource, markCrdTerminating } from "./crds.ts";
import { cloneJson, deepEqual, rfc3339 } from "../../cluster/meta.ts";
import { applyConfiguration, applySchemaFor, conflictError, isFieldManagerConflict, pruneManagedFields, updateManagedFields, type ApplySchema, type ManagedFieldsEntry } from "./apply.ts";

export const PatchType = {
  json: "application/json-patch+json",
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
} as const;
export type PatchType = (typeof PatchType)[keyof typeof PatchType];

/**
 * How many times a patch without a resourceVersion is re-applied after a write conflict.
 * kube-apiserver's GuaranteedUpdate loop retries until the write lands; a bound keeps a hot
 * object from spinning forever, and is high enough that N concurrent writers all land (each
 * retry loses at most to the writers still ahead of it).
 */
export const PATCH_CONFLICT_RETRIES = 64;

/** Whether `err` is a 409 Conflict (a write lost to a concurrent one), not AlreadyExists. */
export function isConflict(err: unknown): boolean {
  return err instanceof ApiError && err.status.code === 409 && err.status.reason === "Conflict";
}

/**
 * Runs `attempt`, and again after each 409 Conflict, at most `retries` more times; any other
 * error, or the last conflict, is thrown.
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>, retries: number = PATCH_CONFLICT_RETRIES): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isConflict(err) || i >= retries) throw err;
    }
  }
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
}

export interface WriteOptions {
  dryRun?: boolean;
  subresource?: "status";
  /**
   * What to do with fields the kind's schema does not define (the fieldValidation query
   * parameter): Strict rejects the request (400), Warn (the default) drops them and reports each
   * through onWarning, Ignore drops them silently.
   */
  fieldValidation?: string;
  /** Receives the warnings of a successful write (the HTTP layer's `Warning: 299 - "..."` headers). */
  onWarning?: (message: string) => void;
  /**
   * Who writes (the fieldManager query parameter, else the client's user agent): recorded in
   * metadata.managedFields with operation Update. Undefined for the control plane's own writes.
   */
  fieldManager?: string;
  /** The subresource the write came through ("scale"), recorded with the manager. */
  managerSubresource?: string;
}

/** Server-side apply: the field manager is required, force takes conflicting fields over. */
export interface ApplyOptions extends WriteOptions {
  force?: boolean;
}

/** What apply hands to create/writeUpdate: the managed fields it computed, and whose they are. */
interface AppliedFields {
  manager: string;
  entries: ManagedFieldsEntry[];
}

const FIELD_VALIDATIONS: readonly string[] = ["Strict", "Warn", "Ignore"] satisfies FieldValidation[];

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  dryRun?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
}

/**
 * Admission: kind-specific changes and checks on create/update, with access to the registry.
 * It never modifies `obj`: it returns `obj` itself when it changes nothing, else a new object
 * (the registry validates that one again).
 */
export type Admission = (r: ResourceInfo, obj: KubeObject, old: KubeObject | undefined, registry: Registry) => Promise<KubeObject>;

/** Whether a pod's deletion should wait for its node-agent to tear it down. */
export type GracefulPodDeletion = (pod: KubeObject) => Promise<boolean>;

const SAFE_CHARS = "bcdfghjklmnpqrstvwxz2456789";

function randomSuffix(n: number): string {
  const bytes = new Uint8Array(n);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => SAFE_CHARS[b % SAFE_CHARS.length]).join("");
}



/** The kind's apply schema, built on first use: a write without a field manager never needs it. */
function lazyApplySchema(r: ResourceInfo): ApplySchema {
  let schema: ApplySchema | undefined;
  return { listKeys: (path) => (schema ??= applySchemaFor(r.group, r.kind)).listKeys(path) };
}

function clone<T>(v: T): T {
  return cloneJson(v);
}


export interface Selectors {
  labels?: LabelSelector;
  fields?: FieldSelector;
}

/** How long the allocation snapshot of Services is trusted before it is listed again. */
const SERVICE_SNAPSHOT_MS = 30_000;
/** How long a namespace read serves the namespace check of creates (see namespaceForCreate). */
const NAMESPACE_READ_MS = 1000;
/** Namespace reads kept at most (past it the cache starts over). */
const NAMESPACE_READS_MAX = 10_000;

export class Registry {
  /** Serializes writes that allocate from shared pools (ClusterIPs, NodePorts). */
  private allocationLock: Promise<unknown> = Promise.resolve();

  constructor(
    readonly store: ObjectStore,
    private readonly admission: Admission,
    private readonly gracefulPodDeletion: GracefulPodDeletion,
    private readonly now: () => Date = () => new Date(),
  ) {}

  // ------------------------------------------------------------------ reads

  async get(r: ResourceInfo, namespace: string | undefined, name: string): Promise<KubeObject> {
    const obj = await this.tryGet(r, namespace, name);
    if (!obj) throw Errors.notFound(r.plural, r.group, name);
    return obj;
  }

  /** A stored value that does not decode is a 500 naming its key (neither absent nor a crash). */
  async tryGet(r: ResourceInfo, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    try {
      return await this.store.get(r, namespace, name);
    } catch (err) {
      if (err instanceof StoreError && err.code === StoreErrorCode.Corrupt) throw Errors.internal(err.message);
      throw err;
    }
  }

  parseSelectors(r: ResourceInfo, opts: ListOptions): Selectors {
    const out: Selectors = {};
    if (opts.labelSelector) {
      const parsed = parseLabelSelector(opts.labelSelector);
      if (parsed.kind === "error") throw Errors.badRequest(`unable to parse requirement: ${parsed.message}`);
      out.labels = parsed.value;
    }
    if (opts.fieldSelector) {
      const parsed = parseFieldSelector(opts.fieldSelector);
      if (parsed.kind === "error") throw Errors.badRequest(`invalid field selector: ${parsed.message}`);
      const checked = checkFieldSelector(parsed.value, r.kind);
      if (checked.kind === "error") throw Errors.badRequest(checked.message);
      out.fields = checked.value;
    }
    return out;
  }

  matches(r: ResourceInfo, obj: KubeObject, sel: Selectors): boolean {
    if (sel.labels && !matchesLabels(sel.labels, obj.metadata.labels)) return false;
    if (sel.fields && !matchesFields(sel.fields, fieldsFor(r.kind, obj))) return false;
    return true;
  }

  async list(r: ResourceInfo, namespace: string | undefined, opts: ListOptions = {}): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const sel = this.parseSelectors(r, opts);
    const { items, resourceVersion } = await this.store.list(r, namespace);
    return { items: items.filter((o) => this.matches(r, o, sel)), resourceVersion: String(resourceVersion) };
  }

  async watch(r: ResourceInfo, namespace: string | undefined, resourceVersion: string | undefined, opts: ListOptions, onEvent: (e: WatchEvent) => void): Promise<WatchHandle> {
    const sel = this.parseSelectors(r, opts);
    const rv = resourceVersion === undefined || resourceVersion === "" ? undefined : Number(resourceVersion);
    if (rv !== undefined && !Number.isInteger(rv)) throw Errors.badRequest(`invalid resource version: ${resourceVersion}`);
    try {
      return await this.store.watch(r, namespace, rv, (e) => {
        if (this.matches(r, e.object, sel)) onEvent(e);
      });
    } catch (err) {
      if (err instanceof StoreError && err.code === StoreErrorCode.Gone) throw Errors.gone(err.message);
      throw err;
    }
  }

  // ------------------------------------------------------------------ writes

  private checkTypeMeta(r: ResourceInfo, body: KubeObject): void {
    const gv = groupVersion(r);
    if (body.apiVersion !== undefined && body.apiVersion !== gv) {
      throw Errors.badRequest(`the API version in the data (${body.apiVersion}) does not match the expected API version (${gv})`);
    }
    if (body.kind !== undefined && body.kind !== r.kind) {
      throw Errors.badRequest(`the kind in the data (${body.kind}) does not match the expected kind (${r.kind})`);
    }
  }

  /**
   * Structural validation of a request body (or a patched object) against the official schema
   * of its kind, before any defaulting or semantic check: a wrong JSON type anywhere is a 422
   * naming the field; unknown fields are a 400 (Strict) or dropped, with warnings (Warn) or
   * without (Ignore). Returns a copy of `body` without the unknown fields, and the warnings.
   * On an update, a wrong type the stored object already has (written to the KV store by
   * something other than this API) is not the request's fault and does not block it.
   *
   * `decoded` says what the object came from, which the Strict error names as kube-apiserver
   * does: a request body (POST, PUT: the decoder's error, wrapped by handlers'
   * transformDecodeError, "Pod in version \"v1\" cannot be handled as a Pod: strict decoding
   * error: ...") or a patch result (PATCH: the bare strict decoding error).
   */
  private checkStructure(r: ResourceInfo, body: KubeObject, opts: WriteOptions, current: KubeObject | undefined, decoded: "body" | "patch"): { obj: KubeObject; warnings: string[] } {
    const mode = opts.fieldValidation === undefined || opts.fieldValidation === "" ? "Warn" : opts.fieldValidation;
    if (!FIELD_VALIDATIONS.includes(mode)) {
      throw Errors.badRequest(`fieldValidation parameter unsupported: ${JSON.stringify(mode)}; use one of Strict, Warn, Ignore`);
    }
    const obj = clone(body);
    let { structural, unknown } = checkSchema(r.kind, groupVersion(r), obj, { prune: mode !== "Strict" });
    if (structural.length > 0 && current) {
      const before = new Set(checkSchema(r.kind, groupVersion(r), current).structural.map((e) => `${e.field}\0${e.actual}`));
      structural = structural.filter((e) => !before.has(`${e.field}\0${e.actual}`));
    }
    if (structural.length > 0) {
      const rawName = (body.metadata as { name?: unknown } | undefined)?.name;
      const name = typeof rawName === "string" ? rawName : "";
      const st = statusForInvalid(r.kind, name, structural as unknown as FieldError[], r.group) as { message: string; details: { causes: Array<{ reason: string; message: string; field: string }> } };
      throw Errors.invalid(r.kind, r.group, name, st.details.causes, st.message);
    }
    if (unknown.length > 0 && mode === "Strict") {
      const strict = `strict decoding error: ${unknown.map((f) => `unknown field ${JSON.stringify(f)}`).join(", ")}`;
      throw Errors.badRequest(decoded === "body" ? `${r.kind} in version ${JSON.stringify(r.version)} cannot be handled as a ${r.kind}: ${strict}` : strict);
    }
    return { obj, warnings: mode === "Warn" ? unknown.map((f) => `unknown field ${JSON.stringify(f)}`) : [] };
  }

  private static warn(opts: WriteOptions, warnings: readonly string[]): void {
    for (const w of warnings) opts.onWarning?.(w);
  }

  private validate(r: ResourceInfo, obj: KubeObject, old?: KubeObject): void {
    const errors = validateObject(r.kind, obj, old);
    if (errors.length === 0) return;
    const st = statusForInvalid(r.kind, obj.metadata?.name ?? "", errors, r.group) as { message: string; details: { causes: Array<{ reason: string; message: string; field: string }> } };
    throw Errors.invalid(r.kind, r.group, obj.metadata?.name ?? "", st.details.causes, st.message);
  }

  /**
   * The Services as ClusterIP and NodePort allocation sees them (by uid): listed from the store
   * once, then kept current by this registry's own Service writes, which run under the
   * allocation lock; listed again when older than SERVICE_SNAPSHOT_MS to heal from writes that
   * bypassed the registry. Kubernetes' allocators keep their bitmaps in memory the same way
   * (pkg/registry/core/service/ipallocator); listing every Service per create made creating the
   * 10,000th Service cost 10,000 reads.
   */
  private serviceSnapshot: { at: number; byUid: Map<string, KubeObject> } | undefined;

  /** Every Service, for allocation; call under the allocation lock. */
  async servicesForAllocation(): Promise<KubeObject[]> {
    const now = this.now().getTime();
    if (!this.serviceSnapshot || now - this.serviceSnapshot.at > SERVICE_SNAPSHOT_MS) {
      const { items } = await this.list(resourceByKind("Service"), undefined);
      this.serviceSnapshot = { at: now, byUid: new Map(items.map((s) => [s.metadata.uid!, s])) };
    }
    return [...this.serviceSnapshot.byUid.values()];
  }

  private noteService(written: KubeObject | undefined, gone?: KubeObject): void {
    if (!this.serviceSnapshot) return;
    if (written?.metadata.uid) this.serviceSnapshot.byUid.set(written.metadata.uid, written);
    if (gone?.metadata.uid) this.serviceSnapshot.byUid.delete(gone.metadata.uid);
  }

  /**
   * The namespaces creates were checked against lately, by name, with when each was read. Reading
   * the namespace was one of the two KV round trips of every create (a pod, an Event). This
   * registry's own writes that change what the check sees (a namespace created, marked
   * terminating, removed) drop them all at once, so a client that has its answer to such a write
   * sees its effect on its next create; a write that bypassed the registry shows within
   * NAMESPACE_READ_MS (kube-apiserver's NamespaceLifecycle plugin reads an informer's cache).
   */
  private readonly namespaceReads = new Map<string, { at: number; ns: KubeObject }>();
  /** Counts namespace writes: a read begun before one is not kept. */
  private namespaceWrites = 0;

  /** The namespace a create goes into (undefined: there is none), for its lifecycle checks. */
  private async namespaceForCreate(name: string): Promise<KubeObject | undefined> {
    const now = this.now().getTime();
    const kept = this.namespaceReads.get(name);
    if (kept && now >= kept.at && now - kept.at < NAMESPACE_READ_MS) return kept.ns;
    const writes = this.namespaceWrites;
    const ns = await this.store.get(resourceByKind("Namespace"), undefined, name);
    if (this.namespaceReads.size >= NAMESPACE_READS_MAX) this.namespaceReads.clear();
    // Only what exists is kept: a namespace created behind the registry's back is seen at once.
    if (ns && writes === this.namespaceWrites) this.namespaceReads.set(name, { at: now, ns });
    else this.namespaceReads.delete(name);
    return ns;
  }

  /** After a namespace write (whether or not it landed): forget every namespace read. */
  private namespaceWritten(): void {
    this.namespaceWrites++;
    this.namespaceReads.clear();
  }

  private async withAllocationLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.allocationLock.then(fn, fn);
    this.allocationLock = run.catch(() => {});
    return run;
  }

  async create(r: ResourceInfo, namespace: string | undefined, raw: KubeObject, opts: WriteOptions = {}): Promise<KubeObject> {
    return this.createWith(r, namespace, raw, opts, undefined);
  }

  private async createWith(r: ResourceInfo, namespace: string | undefined, raw: KubeObject, opts: WriteOptions, applied: AppliedFields | undefined): Promise<KubeObject> {
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw Errors.badRequest("the body of the request was not a JSON object");
    this.checkTypeMeta(r, raw);
    const { obj: body, warnings } = this.checkStructure(r, raw, opts, undefined, "body");
    const meta = { ...(body.metadata ?? {}) };
    if (r.namespaced) {
      if (meta.namespace && namespace && meta.namespace !== namespace) {
        throw Errors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
      }
      meta.namespace = namespace ?? meta.namespace ?? "default";
      const ns = await this.namespaceForCreate(meta.namespace);
      if (!ns) throw Errors.notFound("namespaces", "", meta.namespace);
      if (ns.metadata.deletionTimestamp && r.kind !== "Event") {
        throw Errors.forbidden(`${r.plural} "${meta.name ?? meta.generateName ?? ""}" is forbidden: unable to create new content in namespace ${meta.namespace} because it is being terminated`);
      }
    } else {
      delete meta.namespace;
    }
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomSuffix(5)}`;
    const now = this.now();
    // `body` is checkStructure's copy, no part of it shared: it is defaulted in place, uncopied.
    let obj: KubeObject = defaultOwnObject(r.kind, { ...body, apiVersion: groupVersion(r), kind: r.kind, metadata: meta }) as KubeObject;
    obj.metadata = {
      ...obj.metadata,
      uid: randomUUID(),
      creationTimestamp: rfc3339(now),
      generation: 1,
    };
    delete obj.metadata.resourceVersion;
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata.deletionGracePeriodSeconds;
    if (r.subresources.includes("status")) delete obj.status;
    this.setManagedFields(r, undefined, obj, opts, applied);
    // Validated before admission, which may read or allocate from the object (a Service's
    // ports), and again after it when it changed anything. A new Pod's admission only appends
    // well-formed tolerations and sets its status, and cannot fail: it is validated once, after
    // (as kube-apiserver validates after mutating admission), with the same errors.
    if (r.kind !== "Pod") this.validate(r, obj);
    const write = async () => {
      const admitted = await this.admission(r, obj, undefined, this);
      if (admitted !== obj || r.kind === "Pod") this.validate(r, admitted);
      obj = admitted;
      if (opts.dryRun) return obj;
      try {
        return await this.store.create(r, obj);
      } catch (err) {
        if (err instanceof StoreError && err.code === StoreErrorCode.AlreadyExists) throw Errors.alreadyExists(r.plural, r.group, obj.metadata.name!);
        throw err;
      } finally {
        if (r.kind === "Namespace") this.namespaceWritten();
      }
    };
    const created = await (r.kind === "Service" ? this.withAllocationLock(async () => {
      const c = await write();
      if (!opts.dryRun) this.noteService(c);
      return c;
    }) : write());
    Registry.warn(opts, warnings);
    return created;
  }

  /**
   * Replaces an object (PUT). On the main resource, status is kept as stored; on the status
   * subresource only status changes. A resourceVersion in the body must match the stored one.
   */
  async update(r: ResourceInfo, namespace: string | undefined, name: string, raw: KubeObject, opts: WriteOptions = {}): Promise<KubeObject> {
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw Errors.badRequest("the body of the request was not a JSON object");
    this.checkTypeMeta(r, raw);
    const current = await this.get(r, namespace, name);
    const { obj: body, warnings } = this.checkStructure(r, raw, opts, current, "body");
    if (body.metadata?.name && body.metadata.name !== name) {
      throw Errors.badRequest(`the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`);
    }
    const rv = body.metadata?.resourceVersion;
    if (rv && rv !== current.metadata.resourceVersion) {
      throw Errors.conflict(r.plural, r.group, name, `Operation cannot be fulfilled on ${r.plural}${r.group ? `.${r.group}` : ""} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    const updated = await this.writeUpdate(r, current, body, opts);
    Registry.warn(opts, warnings);
    return updated;
  }

  /** metadata.managedFields of an object about to be written (create or update of the main resource). */
  private setManagedFields(r: ResourceInfo, current: KubeObject | undefined, next: KubeObject, opts: WriteOptions, applied: AppliedFields | undefined): void {
    const ignoreStatus = r.subresources.includes("status");
    let entries: ManagedFieldsEntry[];
    if (applied) {
      entries = pruneManagedFields(applied.entries, next, applied.manager, ignoreStatus);
    } else {
      // Managed fields a write sets itself (kubectl's client-side to server-side apply migration
      // does, `[{}]` clears them) replace the stored ones before this write is recorded on top.
      const given = next.metadata.managedFields;
      const before = current && Array.isArray(given) && !deepEqual(given, current.metadata.managedFields) ? { ...current, metadata: { ...current.metadata, managedFields: given } } : current;
      entries = updateManagedFields({
        before,
        after: next,
        manager: opts.fieldManager,
        ...(opts.managerSubresource ? { subresource: opts.managerSubresource } : {}),
        apiVersion: groupVersion(r),
        time: rfc3339(this.now()),
        schema: lazyApplySchema(r),
        ignoreStatus,
      });
    }
    if (entries.length > 0) next.metadata.managedFields = entries;
    else delete next.metadata.managedFields;
  }

  private async writeUpdate(r: ResourceInfo, current: KubeObject, desired: KubeObject, opts: WriteOptions, applied?: AppliedFields): Promise<KubeObject> {
    let next: KubeObject;
    if (opts.subresource === "status") {
      next = { ...clone(current), status: desired.status };
    } else {
      next = defaultObject(r.kind, { ...desired, apiVersion: groupVersion(r), kind: r.kind }) as KubeObject;
      if (r.subresources.includes("status")) {
        if (current.status === undefined) delete next.status;
        else next.status = clone(current.status);
      }
    }
    next.metadata = {
      ...(opts.subresource === "status" ? current.metadata : next.metadata),
      name: current.metadata.name,
      namespace: current.metadata.namespace,
      uid: current.metadata.uid,
      creationTimestamp: current.metadata.creationTimestamp,
      generation: current.metadata.generation ?? 1,
      resourceVersion: current.metadata.resourceVersion,
    };
    if (!r.namespaced) delete next.metadata.namespace;
    // Only a delete sets these; an update keeps whatever is stored.
    const { deletionTimestamp, deletionGracePeriodSeconds } = current.metadata;
    delete next.metadata.deletionTimestamp;
    delete next.metadata.deletionGracePeriodSeconds;
    if (deletionTimestamp !== undefined) next.metadata.deletionTimestamp = deletionTimestamp;
    if (deletionGracePeriodSeconds !== undefined) next.metadata.deletionGracePeriodSeconds = deletionGracePeriodSeconds;
    if (!deepEqual((next as { spec?: unknown }).spec, (current as { spec?: unknown }).spec)) next.metadata.generation = (current.metadata.generation ?? 1) + 1;
    if (opts.subresource !== "status") this.setManagedFields(r, current, next, opts, applied);
    // A CRD-served kind's status is judged by its schema too (apiextensions' status strategy).
    if (opts.subresource !== "status" || r.custom) this.validate(r, next, current);
    const write = async () => {
      next = await this.admission(r, next, current, this);
      // Nothing changed: no write, no new resourceVersion (a re-apply is a no-op).
      if (deepEqual(next, current)) return current;
      if (opts.dryRun) return next;
      try {
        return await this.store.update(r, next, Number(current.metadata.resourceVersion));
      } catch (err) {
        if (err instanceof StoreError && err.code === StoreErrorCode.Conflict) throw Errors.conflict(r.plural, r.group, current.metadata.name!, err.message);
        throw err;
      }
    };
    return r.kind === "Service" ? this.withAllocationLock(async () => {
      const u = await write();
      if (!opts.dryRun) this.noteService(u);
      return u;
    }) : write();
  }

  /**
   * PATCH with one of the three patch types. A patch that sets no metadata.resourceVersion is
   * re-applied to the object read again after a write conflict, up to PATCH_CONFLICT_RETRIES
   * times (GuaranteedUpdate retries on conflict), so concurrent `kubectl patch`/`scale` both
   * land; one that sets a resourceVersion is a precondition and its conflict is the answer.
   */
  async patch(r: ResourceInfo, namespace: string | undefined, name: string, type: string, patch: unknown, opts: WriteOptions = {}): Promise<KubeObject> {
    if (!Object.values(PatchType).includes(type as PatchType)) {
      throw Errors.unsupportedMediaType(`the server does not support patch type ${type}; use ${Object.values(PatchType).join(", ")}`);
    }
    if (type === PatchType.strategic && r.source === "crd") {
      // As for any custom resource: no Go struct carries its patch strategies (customresource handler).
      throw Errors.unsupportedMediaType("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml");
    }
    const rawRv = type === PatchType.json ? undefined : (patch as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
    const wantRv = typeof rawRv === "string" && rawRv !== "" ? rawRv : undefined;
    return retryOnConflict(() => this.patchOnce(r, namespace, name, type as PatchType, patch, wantRv, opts), wantRv ? 0 : PATCH_CONFLICT_RETRIES);
  }

  private async patchOnce(r: ResourceInfo, namespace: string | undefined, name: string, type: PatchType, patch: unknown, wantRv: string | undefined, opts: WriteOptions): Promise<KubeObject> {
    const current = await this.get(r, namespace, name);
    let result;
    switch (type) {
      case PatchType.merge:
        result = { kind: "ok" as const, value: applyJsonMergePatch(clone(current), patch) };
        break;
      case PatchType.json:
        result = applyJsonPatch(clone(current), patch);
        break;
      case PatchType.strategic:
        result = applyStrategicMergePatch(clone(current), patch, patchSchemaFor(r.group, r.kind));
        break;
    }
    if (result.kind === "error") throw Errors.badRequest(`the patch could not be applied: ${result.message}`);
    const patched = result.value as KubeObject;
    if (!patched || typeof patched !== "object") throw Errors.badRequest("the patch did not produce an object");
    if (wantRv && wantRv !== current.metadata.resourceVersion) {
      throw Errors.conflict(r.plural, r.group, name, `Operation cannot be fulfilled on ${r.plural}${r.group ? `.${r.group}` : ""} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    // The patched result is what would be stored: it gets the checks a full body gets.
    const { obj: checked, warnings } = this.checkStructure(r, patched, opts, current, "patch");
    if (checked.metadata?.name !== undefined && checked.metadata.name !== name) throw Errors.badRequest("metadata.name cannot be changed by a patch");
    const updated = await this.writeUpdate(r, current, checked, opts);
    Registry.warn(opts, warnings);
    return updated;
  }

  /**
   * Server-side apply (PATCH application/apply-patch+yaml): `body` is the field manager's intent.
   * Creates the object when absent; otherwise merges it into the live object, removing what this
   * manager applied before and omits now, and answers 409 with a FieldManagerConflict cause per
   * field another manager owns and this apply would change (unless `force`). A write lost to a
   * concurrent one is retried against the object read again.
   */
  async apply(r: ResourceInfo, namespace: string | undefined, name: string, body: unknown, opts: ApplyOptions = {}): Promise<KubeObject> {
    if (!body || typeof body !== "object" || Array.isArray(body)) throw Errors.badRequest("the body of the request was not a JSON object");
    const raw = body as KubeObject;
    if (!opts.fieldManager) throw Errors.badRequest("PATCH requests of type application/apply-patch+yaml must have a fieldManager");
    if (typeof raw.apiVersion !== "string" || raw.apiVersion === "") throw Errors.badRequest("invalid object: apiVersion must be set in an applied configuration");
    if (typeof raw.kind !== "string" || raw.kind === "") throw Errors.badRequest("invalid object: kind must be set in an applied configuration");
    this.checkTypeMeta(r, raw);
    if (opts.subresource) throw Errors.unsupportedMediaType(`server-side apply is not supported on the ${opts.subresource} subresource`);
    const rawMeta = (raw.metadata ?? {}) as { name?: unknown; namespace?: unknown; resourceVersion?: unknown };
    if (rawMeta.name !== undefined && rawMeta.name !== name) throw Errors.badRequest(`the name of the object (${String(rawMeta.name)}) does not match the name on the URL (${name})`);
    if (r.namespaced && namespace && typeof rawMeta.namespace === "string" && rawMeta.namespace !== "" && rawMeta.namespace !== namespace) {
      throw Errors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    const wantRv = typeof rawMeta.resourceVersion === "string" && rawMeta.resourceVersion !== "" ? rawMeta.resourceVersion : undefined;
    const attempt = async (): Promise<KubeObject> => {
      const current = await this.tryGet(r, namespace, name);
      if (wantRv && wantRv !== current?.metadata.resourceVersion) {
        throw Errors.conflict(r.plural, r.group, name, `Operation cannot be fulfilled on ${r.plural}${r.group ? `.${r.group}` : ""} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
      }
      const { obj: checked, warnings } = this.checkStructure(r, raw, opts, current, "patch");
      const result = applyConfiguration({
        live: current,
        applied: checked,
        manager: opts.fieldManager!,
        force: opts.force === true,
        apiVersion: groupVersion(r),
        time: rfc3339(this.now()),
        schema: applySchemaFor(r.group, r.kind),
        ignoreStatus: r.subresources.includes("status"),
      });
      if (result.kind === "conflicts") throw conflictError(result.conflicts, name, r.plural, r.group);
      const merged = result.object;
      const applied: AppliedFields = { manager: opts.fieldManager!, entries: (merged.metadata.managedFields ?? []) as ManagedFieldsEntry[] };
      let out: KubeObject;
      if (!current) {
        merged.metadata = { ...merged.metadata, name };
        delete merged.metadata.managedFields;
        try {
          out = await this.createWith(r, namespace, merged, { ...opts, fieldValidation: "Ignore", onWarning: undefined }, applied);
        } catch (err) {
          // Created concurrently: apply again, to what is there now.
          if (err instanceof ApiError && err.status.reason === "AlreadyExists") throw Errors.conflict(r.plural, r.group, name, err.message);
          throw err;
        }
      } else {
        out = await this.writeUpdate(r, current, merged, opts, applied);
      }
      Registry.warn(opts, warnings);
      return out;
    };
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        if (wantRv || !isConflict(err) || isFieldManagerConflict(err) || i >= PATCH_CONFLICT_RETRIES) throw err;
      }
    }
  }

  /**
   * Deletes an object. A pod bound to a live node is deleted gracefully: it gets a
   * deletionTimestamp now and leaves the store when its node-agent has torn it down
   * (or the grace period is over and the node lifecycle controller removes it).
   */
  async delete(r: ResourceInfo, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<KubeObject> {
    const current = await this.get(r, namespace, name);
    if (opts.preconditions?.uid && opts.preconditions.uid !== current.metadata.uid) {
      throw Errors.conflict(r.plural, r.group, name, `Precondition failed: UID in precondition: ${opts.preconditions.uid}, UID in object meta: ${current.metadata.uid}`);
    }
    if (opts.preconditions?.resourceVersion && opts.preconditions.resourceVersion !== current.metadata.resourceVersion) {
      throw Errors.conflict(r.plural, r.group, name, `Precondition failed: ResourceVersion in precondition: ${opts.preconditions.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`);
    }
    if (opts.dryRun) return current;
    if (isCrdResource(r)) {
      // apiextensions' cleanup finalizer: the CRD stays, Terminating, until the CRD controller
      // (crd-controller.ts) has deleted its instances, then removes it.
      if (current.metadata.deletionTimestamp) return current;
      return this.store.update(r, markCrdTerminating(current, rfc3339(this.now())), Number(current.metadata.resourceVersion)).catch((err: unknown) => {
        if (err instanceof StoreError && err.code === StoreErrorCode.Conflict) throw Errors.conflict(r.plural, r.group, name, err.message);
        throw err;
      });
    }
    if (r.kind === "Namespace") {
      // The namespace controller empties it, then removes it (kubectl sees Terminating meanwhile).
      if (current.metadata.deletionTimestamp) return current;
      const marked = clone(current);
      marked.metadata.deletionTimestamp = rfc3339(this.now());
      marked.status = { ...(marked.status as object), phase: "Terminating" };
      try {
        return await this.store.update(r, marked, Number(current.metadata.resourceVersion));
      } finally {
        this.namespaceWritten();
      }
    }
    if (r.kind === "Pod" && opts.gracePeriodSeconds !== 0 && (await this.gracefulPodDeletion(current))) {
      if (current.metadata.deletionTimestamp) return current;
      const grace = opts.gracePeriodSeconds ?? ((current.spec as { terminationGracePeriodSeconds?: number })?.terminationGracePeriodSeconds ?? 30);
      const marked = clone(current);
      marked.metadata.deletionTimestamp = rfc3339(new Date(this.now().getTime() + grace * 1000));
      marked.metadata.deletionGracePeriodSeconds = grace;
      return this.store.update(r, marked, Number(current.metadata.resourceVersion)).catch((err) => {
        if (err instanceof StoreError && err.code === StoreErrorCode.Conflict) throw Errors.conflict(r.plural, r.group, name, err.message);
        throw err;
      });
    }
    try {
      const deleted = await this.store.delete(r, current, Number(current.metadata.resourceVersion));
      if (r.kind === "Service") this.noteService(undefined, current);
      return deleted;
    } catch (err) {
      if (err instanceof StoreError && err.code === StoreErrorCode.Conflict) {
        // Changed under us (a status update): delete what is there now.
        const again = await this.store.get(r, namespace, name);
        if (!again) throw Errors.notFound(r.plural, r.group, name);
        return this.store.delete(r, again, Number(again.metadata.resourceVersion));
      }
      throw err;
    }
  }

  async deleteCollection(r: ResourceInfo, namespace: string | undefined, opts: ListOptions & DeleteOptions): Promise<KubeObject[]> {
    const { items } = await this.list(r, namespace, opts);
    const deleted: KubeObject[] = [];
    for (const o of items) {
      try {
        deleted.push(await this.delete(r, o.metadata.namespace, o.metadata.name!, opts));
      } catch (err) {
        if (!(err instanceof ApiError && err.status.code === 404)) throw err;
      }
    }
    return deleted;
  }

  /** The namespace controller's last step: remove an emptied, terminating namespace. */
  async finalizeNamespace(name: string): Promise<void> {
    const r = resourceByKind("Namespace");
    const current = await this.store.get(r, undefined, name);
    if (!current?.metadata.deletionTimestamp) return;
    try {
      await this.store.delete(r, current, Number(current.metadata.resourceVersion));
    } finally {
      this.namespaceWritten();
    }
  }

  /** The binding subresource: set spec.nodeName (otherwise immutable) and PodScheduled. */
  async bind(pod: KubeObject, nodeName: string): Promise<KubeObject> {
    const r = resourceByKind("Pod");
    const current = await this.get(r, pod.metadata.namespace, pod.metadata.name!);
    const spec = current.spec as { nodeName?: string };
    if (spec.nodeName) throw Errors.conflict(r.plural, r.group, current.metadata.name!, `pod ${current.metadata.name} is already assigned to node "${spec.nodeName}"`);
    const bound = clone(current);
    (bound.spec as { nodeName?: string }).nodeName = nodeName;
    const status = (bound.status ?? {}) as { conditions?: Array<{ type: string }> };
    status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== "PodScheduled"), { type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: rfc3339(this.now()) } as { type: string }];
    bound.status = status;
    try {
      return await this.store.update(r, bound, Number(current.metadata.resourceVersion));
    } catch (err) {
      if (err instanceof StoreError && err.code === StoreErrorCode.Conflict) throw Errors.conflict(r.plural, r.group, current.metadata.name!, err.message);
      throw err;
    }
  }

  /** Records a core/v1 Event about `obj` (what `kubectl describe` lists under Events). */
  async recordEvent(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string, component: string): Promise<void> {
    const r = resourceByKind("Event");
    const now = rfc3339(this.now());
    const namespace = obj.metadata.namespace ?? "default";
    const event: KubeObject = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${obj.metadata.name}.${Date.now().toString(16)}${randomSuffix(3)}`, namespace },
      involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace: obj.metadata.namespace, uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion },
      reason,
      message,
      type,
      source: { component },
      reportingComponent: component,
      reportingInstance: component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    await this.create(r, namespace, event).catch(() => {});
  }
}

export function resourceOrThrow(group: string, version: string, plural: string): ResourceInfo {
  const r = RESOURCES.find((x) => x.group === group && x.version === version && x.plural === plural);
  if (!r) throw Errors.pathNotFound();
  return r;
}
