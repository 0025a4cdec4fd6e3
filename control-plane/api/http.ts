/**
 * The Kubernetes REST API over HTTP: discovery, OpenAPI v3 (and the bare v2 document kubectl
 * needs for lists), CRUD, watch (chunked JSON events), server-side Table printing, pod exec over
 * WebSocket (v5/v4.channel.k8s.io) and pod logs. A thin layer: the semantics live in the Registry.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { Duplex } from "node:stream";
import { timingSafeEqual } from "node:crypto";
import { WebSocketServer, type WebSocket } from "ws";
import { parse as parseYaml } from "yaml";
import type { LabelSelector } from "kubernetes-types/meta/v1.js";
import type { Logger } from "../../cluster/log.ts";
import { formatLabelSelector, labelSelectorAsSelector } from "../../cluster/selectors.ts";
import type { ExecResult } from "../../cluster/types.ts";
import { OPENAPI_V2_PROTOBUF_CONTENT_TYPE, OPENAPI_V2_PROTOBUF_TYPES, openApiV2Document, openApiV2Protobuf, openApiV3DocumentJson, openApiV3Root } from "./openapi.ts";
import { applyJsonMergePatch, applyJsonPatch } from "./patch.ts";
import { PatchType, type Registry } from "./registry.ts";
import { loadValidators } from "./schema.ts";
import { findResource, groupVersion, servedGroups, servedResources, VERBS, type ResourceInfo } from "../../cluster/resources.ts";
import { ApiError, Errors, success, type Status } from "./status.ts";
import type { KubeObject } from "../../cluster/store.ts";
import { resourceTable, type ToTableOptions } from "./tables.ts";

export const KUBERNETES_VERSION = { major: "1", minor: "30", gitVersion: "v1.30.0-kubewire" } as const;
/** kube-apiserver's MaxRequestBodyBytes (3 MiB): a larger body is 413. */
const MAX_BODY = 3 * 1024 * 1024;
/** Deepest nesting of arrays/objects a request body may have (deeper would overflow recursive readers). */
export const MAX_BODY_DEPTH = 1000;

/** A readiness check (/readyz): resolves when healthy, rejects with the reason otherwise. */
export interface HealthCheck {
  readonly name: string;
  check(): Promise<void>;
}

export interface PodBackend {
  exec(pod: KubeObject, argv: string[]): Promise<ExecResult>;
  logs(pod: KubeObject, opts: { container?: string; tailLines?: number }): Promise<string>;
}

interface Route {
  r: ResourceInfo;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export class ApiServer {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly token: Buffer;
  private readonly openWatches = new Set<() => void>();

  constructor(
    private readonly registry: Registry,
    token: string,
    tls: { cert: string; key: string },
    private readonly pods: PodBackend,
    private readonly log: Logger,
    /** What /readyz checks besides "ping" (the object store: kube-apiserver's etcd check). */
    private readonly readyChecks: readonly HealthCheck[] = [],
  ) {
    this.token = Buffer.from(token);
    this.server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => void this.handle(req, res));
    this.wss = new WebSocketServer({
      noServer: true,
      handleProtocols: (protocols) => ["v5.channel.k8s.io", "v4.channel.k8s.io"].find((p) => protocols.has(p)) ?? false,
    });
    this.server.on("upgrade", (req, socket, head) => void this.upgrade(req, socket, head));
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    loadValidators();
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        const addr = this.server.address();
        resolve({ host, port: typeof addr === "object" && addr ? addr.port : port });
      });
    });
  }

  async close(): Promise<void> {
    for (const stop of this.openWatches) stop();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private authorized(req: IncomingMessage): boolean {
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (!m) return false;
    const given = Buffer.from(m[1]!.trim());
    return given.length === this.token.length && timingSafeEqual(given, this.token);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const started = performance.now();
    try {
      const health = /^\/(healthz|livez|readyz)(?:\/([^/]+))?\/?$/.exec(url.pathname);
      if (health) return await this.health(res, health[1]!, health[2], url.searchParams.has("verbose"));
      if (!this.authorized(req)) throw Errors.unauthorized();
      await this.dispatch(req, res, url);
    } catch (err) {
      const status = err instanceof ApiError ? err.status : Errors.internal((err as Error)?.message ?? String(err)).status;
      if (status.code >= 500) this.log.error({ err, method: req.method, path: url.pathname }, "request failed");
      if (!res.headersSent) {
        if (status.code === 413) res.setHeader("Connection", "close");
        json(res, status.code, status);
      }
      else res.end();
    } finally {
      // Checked first: the record would be built for every request only to be dropped.
      if (this.log.isLevelEnabled("debug")) this.log.debug({ method: req.method, path: url.pathname, query: url.search, status: res.statusCode, ms: Math.round(performance.now() - started) }, "request");
    }
  }

  /**
   * /livez: the process answers. /readyz (and /healthz): ping plus the store, answered as
   * kube-apiserver does: "ok", or 500 with one [+]/[-] line per check; /readyz/<check> runs one.
   */
  private async health(res: ServerResponse, endpoint: string, only: string | undefined, verbose: boolean): Promise<void> {
    const checks: HealthCheck[] = [{ name: "ping", check: async () => {} }, ...(endpoint === "livez" ? [] : this.readyChecks)];
    const selected = only === undefined ? checks : checks.filter((c) => c.name === only);
    if (selected.length === 0) return text(res, 404, `no such check: ${only}\n`);
    const results = await Promise.all(
      selected.map(async (c) => {
        try {
          await c.check();
          return { name: c.name, ok: true, reason: "" };
        } catch (err) {
          return { name: c.name, ok: false, reason: (err as Error)?.message ?? String(err) };
        }
      }),
    );
    const failed = results.filter((r) => !r.ok);
    for (const f of failed) this.log.warn({ check: f.name, reason: f.reason, endpoint }, `${endpoint} check failed`);
    if (failed.length === 0 && !verbose) return text(res, 200, "ok");
    const lines = results.map((r) => (r.ok ? `[+]${r.name} ok` : `[-]${r.name} failed: ${r.reason}`));
    lines.push(failed.length === 0 ? `${endpoint} check passed` : `${endpoint} check failed`);
    return text(res, failed.length === 0 ? 200 : 500, `${lines.join("\n")}\n`);
  }

  /** A list's Table; an object whose odd shape breaks its row is left out (and logged), not the whole list. */
  private listTable(r: ResourceInfo, items: KubeObject[], opts: ToTableOptions): ReturnType<typeof resourceTable> {
    const kind = r.kind;
    try {
      return resourceTable(r, items, opts);
    } catch {
      const printable = items.filter((o) => {
        try {
          resourceTable(r, [o], opts);
          return true;
        } catch (err) {
          this.log.error({ kind, namespace: o.metadata.namespace, name: o.metadata.name, err: (err as Error)?.message ?? String(err) }, "object cannot be printed as a table row; left out of the list");
          return false;
        }
      });
      return resourceTable(r, printable, opts);
    }
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const method = req.method ?? "GET";
    if (method === "GET") {
      const discovery = this.discovery(path);
      if (discovery) return json(res, 200, discovery);
      if (path === "/openapi/v2") {
        // Protobuf when asked for it (kubectl always is), JSON otherwise, as kube-apiserver does.
        const accept = req.headers.accept ?? "";
        if (OPENAPI_V2_PROTOBUF_TYPES.some((t) => accept.includes(t))) {
          const body = openApiV2Protobuf();
          res.writeHead(200, { "Content-Type": OPENAPI_V2_PROTOBUF_CONTENT_TYPE, "Content-Length": body.length });
          res.end(body);
          return;
        }
        return json(res, 200, openApiV2Document());
      }
      if (path === "/openapi/v3") return json(res, 200, openApiV3Root());
      if (path.startsWith("/openapi/v3/")) {
        // Served as the exact bytes the root's ?hash= was computed over.
        const doc = openApiV3DocumentJson(path.slice("/openapi/v3/".length));
        if (!doc) throw Errors.pathNotFound();
        res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(doc) });
        res.end(doc);
        return;
      }
    }
    const route = parseRoute(path);
    if (!route) throw Errors.pathNotFound();
    return this.resource(req, res, url, method, route);
  }

  private discovery(path: string): object | undefined {
    if (path === "/version") return { ...KUBERNETES_VERSION, gitCommit: "kubewire", gitTreeState: "clean", buildDate: "2026-01-01T00:00:00Z", goVersion: "n/a", compiler: "n/a", platform: `${process.platform}/${process.arch}` };
    if (path === "/api") return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "" }] };
    if (path === "/apis") {
      // One entry per group with all its versions, the preferred first (a CRD may serve several).
      const groups = servedGroups().filter((g) => g.group !== "");
      return { kind: "APIGroupList", apiVersion: "v1", groups: groups.map((g) => apiGroup(g)) };
    }
    const gm = /^\/apis\/([^/]+)$/.exec(path);
    if (gm) {
      const g = servedGroups().find((x) => x.group === gm[1]);
      return g ? { kind: "APIGroup", apiVersion: "v1", ...apiGroup(g) } : undefined;
    }
    const m = /^\/api\/(v1)$/.exec(path) ?? /^\/apis\/([^/]+\/[^/]+)$/.exec(path);
    if (m) {
      const gv = m[1]!;
      const resources = servedResources().filter((r) => groupVersion(r) === gv);
      if (resources.length === 0) return undefined;
      return {
        kind: "APIResourceList",
        apiVersion: "v1",
        groupVersion: gv,
        resources: resources.flatMap((r) => [
          { name: r.plural, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: [...VERBS], shortNames: r.shortNames, ...(r.categories ? { categories: r.categories } : {}) },
          ...r.subresources.map((sub) => ({
            name: `${r.plural}/${sub}`,
            singularName: "",
            namespaced: r.namespaced,
            kind: sub === "exec" ? "PodExecOptions" : sub === "log" ? "Pod" : sub === "scale" ? "Scale" : r.kind,
            verbs: sub === "exec" ? ["create", "get"] : sub === "log" ? ["get"] : ["get", "patch", "update"],
          })),
        ]),
      };
    }
    return undefined;
  }

  private async resource(req: IncomingMessage, res: ServerResponse, url: URL, method: string, route: Route): Promise<void> {
    const { r, namespace, name, subresource } = route;
    const q = url.searchParams;
    const dryRun = q.getAll("dryRun").includes("All");
    const fields = { fieldValidation: q.get("fieldValidation") ?? undefined, fieldManager: fieldManagerOf(req, q), onWarning: (w: string) => res.appendHeader("Warning", `299 - ${JSON.stringify(w).replace(/[^\x20-\x7e]/g, "?")}`) };
    const table = wantsTable(req.headers.accept);
    const includeObject = (q.get("includeObject") as "None" | "Metadata" | "Object" | null) ?? "Metadata";
    const listOpts = { labelSelector: q.get("labelSelector") ?? undefined, fieldSelector: q.get("fieldSelector") ?? undefined };

    if (subresource && !r.subresources.includes(subresource)) throw Errors.pathNotFound();
    if (subresource === "log") {
      if (method !== "GET") throw Errors.methodNotAllowed(`${method} is not supported on pods/log`);
      const pod = await this.registry.get(r, namespace, name!);
      const tail = q.get("tailLines");
      const body = await this.pods.logs(pod, { container: q.get("container") ?? undefined, tailLines: tail ? Number(tail) : undefined });
      return text(res, 200, body);
    }
    if (subresource === "exec") throw Errors.badRequest("exec needs a WebSocket upgrade (v5.channel.k8s.io)");
    if (subresource === "scale") return this.scale(req, res, method, route, dryRun, fields.fieldManager);
    const status = subresource === "status" ? { subresource: "status" as const } : {};

    switch (method) {
      case "GET": {
        if (name) {
          const obj = await this.registry.get(r, namespace, name);
          return json(res, 200, table ? resourceTable(r, [obj], { now: new Date(), includeObject }) : obj);
        }
        if (q.get("watch") === "true" || q.get("watch") === "1") return this.watch(req, res, r, namespace, q, listOpts, table, includeObject);
        const { items, resourceVersion } = await this.registry.list(r, namespace, listOpts);
        if (table) return json(res, 200, this.listTable(r, items, { now: new Date(), includeObject, listMeta: { resourceVersion } }));
        return json(res, 200, { kind: `${r.kind}List`, apiVersion: groupVersion(r), metadata: { resourceVersion }, items });
      }
      case "POST": {
        if (name) throw Errors.methodNotAllowed(`POST is not supported on a named ${r.singular}`);
        const body = await readBody(req);
        const created = await this.registry.create(r, namespace, body as KubeObject, { dryRun, ...fields });
        return json(res, 201, created);
      }
      case "PUT": {
        if (!name) throw Errors.methodNotAllowed(`PUT needs the name of a ${r.singular}`);
        const body = await readBody(req);
        return json(res, 200, await this.registry.update(r, namespace, name, body as KubeObject, { dryRun, ...status, ...fields }));
      }
      case "PATCH": {
        if (!name) throw Errors.methodNotAllowed(`PATCH needs the name of a ${r.singular}`);
        const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
        const body = await readBody(req);
        if (type === "application/apply-patch+yaml") {
          const force = q.get("force");
          if (force !== null && force !== "true" && force !== "false") throw Errors.badRequest(`invalid value for force: ${JSON.stringify(force)}`);
          return json(res, 200, await this.registry.apply(r, namespace, name, body, { dryRun, ...status, ...fields, fieldManager: q.get("fieldManager") ?? undefined, force: force === "true" }));
        }
        return json(res, 200, await this.registry.patch(r, namespace, name, type, body, { dryRun, ...status, ...fields }));
      }
      case "DELETE": {
        const raw = (await readBody(req, true)) as { gracePeriodSeconds?: number; preconditions?: { uid?: string; resourceVersion?: string } } | undefined;
        const grace = q.get("gracePeriodSeconds") ?? raw?.gracePeriodSeconds;
        const opts = { dryRun, gracePeriodSeconds: grace === undefined || grace === null ? undefined : Number(grace), preconditions: raw?.preconditions };
        if (!name) {
          const deleted = await this.registry.deleteCollection(r, namespace, { ...listOpts, ...opts });
          return json(res, 200, { kind: `${r.kind}List`, apiVersion: groupVersion(r), metadata: {}, items: deleted });
        }
        const obj = await this.registry.delete(r, namespace, name, opts);
        // A graceful delete answers with the object (now with its deletionTimestamp), else Success.
        if (obj.metadata.deletionTimestamp && (await this.registry.tryGet(r, namespace, name))) return json(res, 202, obj);
        return json(res, 200, { ...success({ name, group: r.group, kind: r.plural }), details: { name, group: r.group, kind: r.plural, uid: obj.metadata.uid } });
      }
      default:
        throw Errors.methodNotAllowed(`${method} is not supported`);
    }
  }

  /**
   * The scale subresource (autoscaling/v1 Scale) of Deployments and ReplicaSets, which
   * `kubectl scale` patches: read and written through spec.replicas of the object.
   */
  private async scale(req: IncomingMessage, res: ServerResponse, method: string, route: Route, dryRun: boolean, fieldManager: string | undefined): Promise<void> {
    const { r, namespace, name } = route;
    if (!name) throw Errors.pathNotFound();
    const obj = await this.registry.get(r, namespace, name);
    const view = (o: KubeObject) => {
      const spec = o.spec as { replicas?: number; selector?: LabelSelector };
      // storage.go scaleFromReplicaSet/scaleFromDeployment: LabelSelectorAsSelector(spec.selector).String(),
      // matchExpressions included (stored selectors passed validation; nil is labels.Nothing(), "").
      const selector = labelSelectorAsSelector(spec.selector);
      const status = (o.status ?? {}) as { replicas?: number };
      return {
        kind: "Scale",
        apiVersion: "autoscaling/v1",
        metadata: { name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
        spec: { replicas: spec.replicas ?? 1 },
        status: { replicas: status.replicas ?? 0, selector: selector.kind === "ok" ? formatLabelSelector(selector.value) : "" },
      };
    };
    if (method === "GET") return json(res, 200, view(obj));
    let desired: { spec?: { replicas?: unknown }; metadata?: { resourceVersion?: string } };
    if (method === "PUT") {
      desired = (await readBody(req)) as typeof desired;
    } else if (method === "PATCH") {
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
      const patch = await readBody(req);
      // The resourceVersion read here is no precondition: only one the patch itself sets is
      // (kubectl scale without --resource-version must not fail on a concurrent write).
      const base = view(obj);
      delete (base.metadata as { resourceVersion?: string }).resourceVersion;
      const patched = type === PatchType.json ? applyJsonPatch(base, patch) : { kind: "ok" as const, value: applyJsonMergePatch(base, patch) };
      if (patched.kind === "error") throw Errors.badRequest(`the patch could not be applied: ${patched.message}`);
      desired = patched.value as typeof desired;
    } else {
      throw Errors.methodNotAllowed(`${method} is not supported on ${r.plural}/scale`);
    }
    const replicas = desired?.spec?.replicas;
    if (!Number.isInteger(replicas) || (replicas as number) < 0) {
      throw Errors.invalid("Scale", "autoscaling", name, [{ reason: "FieldValueInvalid", field: "spec.replicas", message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` }], `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`);
    }
    const rv = desired.metadata?.resourceVersion;
    const updated = await this.registry.patch(r, namespace, name, PatchType.merge, { metadata: rv ? { resourceVersion: rv } : {}, spec: { replicas } }, { dryRun, fieldManager, managerSubresource: "scale" });
    return json(res, 200, view(updated));
  }

  private async watch(req: IncomingMessage, res: ServerResponse, r: ResourceInfo, namespace: string | undefined, q: URLSearchParams, listOpts: { labelSelector?: string; fieldSelector?: string }, table: boolean, includeObject: "None" | "Metadata" | "Object"): Promise<void> {
    const rv = q.get("resourceVersion") ?? undefined;
    const timeout = Number(q.get("timeoutSeconds") ?? 0);
    // Headers first: a watch resumed from a resourceVersion delivers its backlog at once, and
    // every failure after this point is reported in the stream as an ERROR event, as Kubernetes does.
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private" });
    res.flushHeaders();
    res.on("error", () => {});
    let stop = () => {};
    const send = (type: string, object: unknown) => {
      if (res.writableEnded || res.destroyed) return stop();
      res.write(`${JSON.stringify({ type, object })}\n`);
    };
    let handle;
    try {
      handle = await this.registry.watch(r, namespace, rv === "0" ? undefined : rv, listOpts, (e) => {
        send(e.type, table ? resourceTable(r, [e.object], { now: new Date(), includeObject }) : e.object);
      });
    } catch (err) {
      send("ERROR", err instanceof ApiError ? err.status : Errors.internal((err as Error).message).status);
      res.end();
      return;
    }
    await new Promise<void>((resolve) => {
      stop = () => {
        handle.stop();
        this.openWatches.delete(stop);
        resolve();
      };
      this.openWatches.add(stop);
      req.once("close", stop);
      res.once("close", stop);
      if (timeout > 0) setTimeout(stop, timeout * 1000).unref();
      void handle.done.then(stop);
    });
    if (!res.writableEnded) res.end();
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const fail = (code: number, reason: string) => {
      socket.end(`HTTP/1.1 ${code} ${reason}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${reason}\n`);
    };
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      if (!this.authorized(req)) return fail(401, "Unauthorized");
      const route = parseRoute(url.pathname);
      if (!route || route.r.kind !== "Pod" || route.subresource !== "exec" || !route.name) return fail(404, "Not Found");
      const pod = await this.registry.get(route.r, route.namespace, route.name);
      // As the API server's exec validation: a named container must be one of the pod's.
      const container = url.searchParams.get("container");
      const names = ((pod.spec as { containers?: Array<{ name?: unknown }> } | undefined)?.containers ?? []).map((c) => c.name);
      if (container && !names.includes(container)) {
        const message = `container ${container} is not valid for pod ${route.name}`;
        const status = JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason: "BadRequest", code: 400 });
        socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(status)}\r\nConnection: close\r\n\r\n${status}`);
        return;
      }
      const argv = url.searchParams.getAll("command");
      this.wss.handleUpgrade(req, socket, head, (ws) => void this.exec(ws, pod, argv));
    } catch (err) {
      fail(err instanceof ApiError ? err.status.code : 500, err instanceof Error ? err.message : "error");
    }
  }

  /** kubectl exec: run the emulated tool, stream stdout (channel 1), stderr (2), then the Status (3). */
  private async exec(ws: WebSocket, pod: KubeObject, argv: string[]): Promise<void> {
    const channel = (n: number, data: string | Buffer) => ws.send(Buffer.concat([Buffer.from([n]), Buffer.isBuffer(data) ? data : Buffer.from(data)]));
    let status: object;
    try {
      if (argv.length === 0) throw new Error("you must specify at least one command for the container");
      const result = await this.pods.exec(pod, argv);
      if (result.stdout) channel(1, result.stdout);
      if (result.stderr) channel(2, result.stderr);
      status =
        result.exitCode === 0
          ? { metadata: {}, status: "Success" }
          : {
              metadata: {},
              status: "Failure",
              message: `command terminated with non-zero exit code: error executing command [${argv.join(" ")}], exit code ${result.exitCode}`,
              reason: "NonZeroExitCode",
              details: { causes: [{ reason: "ExitCode", message: String(result.exitCode) }] },
            };
    } catch (err) {
      status = { metadata: {}, status: "Failure", message: (err as Error).message, reason: "InternalError" };
    }
    channel(3, JSON.stringify(status));
    ws.close(1000);
  }
}

function parseRoute(path: string): Route | undefined {
  let group = "";
  let version: string;
  let rest: string[];
  let parts: string[];
  try {
    parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    throw Errors.badRequest(`malformed percent-encoding in the request path ${JSON.stringify(path.length > 200 ? `${path.slice(0, 200)}...` : path)}`);
  }
  if (parts[0] === "api" && parts[1] === "v1") {
    version = "v1";
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 4) {
    group = parts[1]!;
    version = parts[2]!;
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3 && findResource(group, version, rest[2]!)?.namespaced) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural, name, subresource, ...extra] = rest;
  if (!plural || extra.length > 0) return undefined;
  const r = findResource(group, version, plural);
  if (!r) return undefined;
  if (r.namespaced === false) namespace = undefined;
  return { r, namespace, name, subresource };
}

function apiGroup(g: { group: string; versions: readonly string[] }): object {
  const versions = g.versions.map((version) => ({ groupVersion: groupVersion({ group: g.group, version }), version }));
  return { name: g.group, versions, preferredVersion: versions[0] };
}

function wantsTable(accept: string | undefined): boolean {
  return !!accept && accept.split(",").some((part) => /as=Table/.test(part) && /g=meta\.k8s\.io/.test(part));
}

function json(res: ServerResponse, code: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}

function text(res: ServerResponse, code: number, body: string): void {
  res.writeHead(code, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

async function readBody(req: IncomingMessage, optional = false): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? 0);
  const tooLarge = () => {
    // Stop buffering; whatever else comes is discarded, and the answer closes the connection.
    req.removeAllListeners("data");
    req.resume();
    return Errors.requestEntityTooLarge(`the request body is larger than the limit of ${MAX_BODY} bytes`);
  };
  if (declared > MAX_BODY) throw tooLarge();
  // Events, not for-await: leaving a for-await early destroys the socket before the 413 is written.
  const chunks = await new Promise<Buffer[]>((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) reject(tooLarge());
      else parts.push(chunk);
    });
    req.once("end", () => resolve(parts));
    req.once("error", reject);
  });
  const raw = Buffer.concat(chunks).toString("utf8");
  if (raw.trim() === "") {
    if (optional) return undefined;
    throw Errors.badRequest("the request body is empty");
  }
  const type = (req.headers["content-type"] ?? "application/json").split(";")[0]!.trim();
  try {
    let value: unknown;
    if (type === "application/yaml" || type === "application/apply-patch+yaml") value = parseYaml(raw);
    else if (type !== "application/json" && !Object.values(PatchType).includes(type as PatchType)) {
      throw Errors.unsupportedMediaType(`the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`);
    } else value = JSON.parse(raw);
    // Each level of nesting takes at least one character of the body: a shorter one cannot be too deep.
    if (raw.length > MAX_BODY_DEPTH && nestingDepth(value) > MAX_BODY_DEPTH) throw Errors.badRequest(`the body of the request could not be decoded: nested more than ${MAX_BODY_DEPTH} levels deep`);
    return value;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw Errors.badRequest(`the body of the request could not be decoded: ${(err as Error).message}`);
  }
}

/**
 * The field manager of a write: the fieldManager query parameter, else the client's user agent
 * up to its first "/" ("kubectl" for kubectl/v1.32.0 (linux/amd64) ...), as kube-apiserver does.
 */
export function fieldManagerOf(req: IncomingMessage, q: URLSearchParams): string | undefined {
  const given = q.get("fieldManager");
  if (given !== null && given !== "") return given.slice(0, 128);
  const ua = req.headers["user-agent"] ?? "";
  const name = ua.split("/")[0]!.trim();
  return name === "" ? undefined : name.slice(0, 128);
}

/** How deeply arrays and objects nest in a parsed body (0 for a scalar), without recursion. */
export function nestingDepth(value: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    const d = depth + 1;
    if (d > max) max = d;
    if (max > MAX_BODY_DEPTH) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === "object" && child !== null) stack.push([child, d]);
  }
  return max;
}

export type { Status };
