/**
 * The object store of the API server, on JetStream KV (the role etcd plays in Kubernetes).
 *
 * Design notes:
 * - One bucket for every resource, so the bucket's stream sequence is one cluster-wide
 *   revision: an object's resourceVersion is the KV revision of its last write, and a list's is
 *   the stream's last sequence when it was taken.
 * - A stored value is an envelope {type, object}: the watch event type is decided by the
 *   writer (ADDED by create, MODIFIED by update, DELETED by delete), so a watcher resuming from
 *   any revision knows what each message meant without remembering earlier state. A delete is a
 *   KV delete marker that carries the object's last state as its payload.
 * - Writes are conditional on the KV subject's last sequence, which is optimistic concurrency:
 *   create expects nothing there, update and delete expect the revision read.
 * - Each key keeps up to 64 revisions. A watch from revision R is gapless unless a message
 *   after R has been removed by that limit; the stream's deleted-sequence list tells, and the
 *   answer then is 410 Gone, as Kubernetes does after an etcd compaction.
 * - Stored values are not trusted (anything can be put into the bucket by hand): every read goes
 *   through decodeStored (./decode.ts). A value that does not decode or lacks the basic shape is
 *   logged once per key and revision, counted (badObjects), and skipped by list and watch; get
 *   of such a key throws StoreError Corrupt naming the key.
 */
import { createInbox, headers as natsHeaders, type JetStreamManager, type KV, type KvEntry, type Msg, type MsgHdrs, type NatsConnection } from "nats";
import { decodeStored, type Decoded } from "./decode.ts";
import type { Logger } from "./log.ts";
import { keyFilter, objectKey, type ResourceInfo } from "./resources.ts";

export const OBJECTS_BUCKET = "kubewire_objects";
/** The JetStream stream behind the bucket (what NATS permissions name: cluster/nats-auth.ts). */
export const OBJECTS_STREAM = `KV_${OBJECTS_BUCKET}`;
const STREAM = OBJECTS_STREAM;
const WRONG_LAST_SEQUENCE = 10071;
/** How long a write waits for JetStream's acknowledgement (nats.js's JetStream default). */
const PUBLISH_TIMEOUT_MS = 5000;

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
  finalizers?: string[];
  [k: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [k: string]: unknown;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

interface Envelope {
  type: WatchEventType;
  object: KubeObject;
}

/** The most distinct bad key/revision pairs remembered for log-once (then logging goes on, unthrottled). */
const MAX_LOGGED_BAD = 10_000;

export interface WatchEvent {
  type: WatchEventType;
  object: KubeObject;
}

export const StoreErrorCode = {
  NotFound: "NotFound",
  AlreadyExists: "AlreadyExists",
  Conflict: "Conflict",
  Gone: "Gone",
  /** The stored value does not decode or lacks the basic shape of an object. */
  Corrupt: "Corrupt",
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

export class StoreError extends Error {
  override readonly name = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface WatchHandle {
  stop(): void;
  /** Resolves when the watch ends (stopped, or the connection closed). */
  readonly done: Promise<void>;
}

const encoder = new TextEncoder();

function encode(type: WatchEventType, object: KubeObject): Uint8Array {
  // resourceVersion is the KV revision, never stored: strip whatever the caller had.
  const { resourceVersion: _rv, ...metadata } = object.metadata;
  return encoder.encode(JSON.stringify({ type, object: { ...object, metadata } } satisfies Envelope));
}


/**
 * Runs the KV calls started during one turn of the event loop together, at its end
 * (setImmediate). nats.js writes what is queued before a microtask checkpoint as one socket
 * write; a request served in its own I/O callback would otherwise cost a write (a syscall, and a
 * wakeup of nats-server) per KV call. With 32 creates in flight, the calls of every request read
 * in one poll phase now leave in one write. An idle store waits for nothing: the check phase
 * follows the poll phase at once.
 */
class TurnBatch {
  private queued: Array<() => void> = [];

  run<T>(call: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(() => this.flush());
      this.queued.push(() => {
        try {
          call().then(resolve, reject);
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  private flush(): void {
    const calls = this.queued;
    this.queued = [];
    for (const c of calls) c();
  }
}

/** A JetStream API error of a write, shaped as nats.js's (api_error) so one check reads both. */
class PublishError extends Error {
  override readonly name = "PublishError";
  constructor(
    message: string,
    readonly api_error?: { code?: number; err_code?: number; description?: string },
  ) {
    super(message);
  }
}

/**
 * The store's writes to the stream: a publish with the expected-sequence headers, answered by
 * JetStream's PubAck on one inbox subscription of the store's, matched by the reply subject's
 * last token. It is what kv.put does through nc.request, less what that costs per write and a
 * store does not need: a timer and a deferred each, and the NatsError every request's cancel()
 * builds even on success (together ~80 us of CPU per write, a tenth of a pod create). Timeouts
 * are checked once a second for every write in flight.
 */
class Publisher {
  private readonly inbox: string;
  private next = 1;
  private readonly pending = new Map<number, { resolve: (seq: number) => void; reject: (err: Error) => void; deadline: number }>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly nc: NatsConnection) {
    // The connection's inbox prefix (nats.js's own mux uses it), so permissions on inboxes hold.
    const prefix = (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    this.inbox = `${createInbox(prefix)}.`;
    nc.subscribe(`${this.inbox}*`, { callback: (err, msg) => (err ? this.failAll(err) : this.answer(msg)) });
    void nc.closed().then(() => this.failAll(new Error("the NATS connection is closed")));
  }

  /** Publishes `data` to `subject`; resolves with the stream sequence JetStream stored it at. */
  publish(subject: string, data: Uint8Array, headers: MsgHdrs): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const id = this.next++;
      this.pending.set(id, { resolve, reject, deadline: performance.now() + PUBLISH_TIMEOUT_MS });
      try {
        this.nc.publish(subject, data, { reply: `${this.inbox}${id}`, headers });
      } catch (err) {
        this.pending.delete(id);
        reject(err as Error);
        return;
      }
      this.sweeper ??= setInterval(() => this.sweep(), 1000).unref();
    });
  }

  private answer(msg: Msg): void {
    const id = Number(msg.subject.slice(this.inbox.length));
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (msg.data.length === 0) {
      // A status message: 503 when no stream takes the subject.
      p.reject(new PublishError(msg.headers?.code === 503 ? `no JetStream stream answers on ${msg.subject}` : `JetStream answered ${msg.headers?.code ?? "nothing"} ${msg.headers?.description ?? ""}`.trim()));
      return;
    }
    let ack: { stream?: string; seq?: number; error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = JSON.parse(textDecoder.decode(msg.data)) as typeof ack;
    } catch (err) {
      p.reject(new PublishError(`JetStream's acknowledgement is not JSON: ${(err as Error).message}`));
      return;
    }
    if (ack.error) p.reject(new PublishError(ack.error.description ?? `JetStream error ${ack.error.err_code}`, ack.error));
    else if (!ack.stream || typeof ack.seq !== "number") p.reject(new PublishError("invalid JetStream acknowledgement"));
    else p.resolve(ack.seq);
  }

  private sweep(): void {
    const now = performance.now();
    for (const [id, p] of this.pending) {
      if (now < p.deadline) continue;
      this.pending.delete(id);
      p.reject(new PublishError(`no acknowledgement from JetStream within ${PUBLISH_TIMEOUT_MS} ms`));
    }
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

const textDecoder = new TextDecoder();
/** nats.js's KV key check (kv.ts validateKey): a key that is not one would publish elsewhere. */
const VALID_KEY = /^[-/=.\w]+$/;

function checkKey(key: string): void {
  if (key.startsWith(".") || key.endsWith(".") || !VALID_KEY.test(key)) throw new Error(`invalid key: ${key}`);
}

/** How long a read keeps retrying while JetStream fails over (a NATS server of the cluster lost). */
const READ_RETRY_MS = 20_000;
/**
 * JetStream API requests (consumer creates, gets, stream info) answer in milliseconds; with a
 * server of a NATS cluster down, nats-server 2.9 still places about one ephemeral consumer in
 * three (every watch and list) on the lost peer, and that create never answers. A short timeout
 * and a retry (readRetried) find a live peer soon, where nats.js's default 5 s would stall.
 */
const JS_API_TIMEOUT_MS = 2000;

/**
 * Errors of a JetStream cluster in failover: a request to a server that just died timing out, no
 * responder yet, a consumer placed on a peer that is gone. Reads are retried on them; writes are
 * not (a write that timed out may have been stored: its retry is the client's, as with etcd).
 */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  const message = (err as Error)?.message ?? "";
  return code === "TIMEOUT" || code === "503" || /temporarily unavailable|no responders|timeout/i.test(message);
}

async function readRetried<T>(read: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + READ_RETRY_MS;
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    try {
      return await read();
    } catch (err) {
      if (!isTransient(err) || performance.now() + delay > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

function isWrongLastSequence(err: unknown): boolean {
  return (err as { api_error?: { err_code?: number } })?.api_error?.err_code === WRONG_LAST_SEQUENCE;
}

export class ObjectStore {
  /** Bad values read (a value read again by another list or watch counts again). */
  badObjects = 0;
  /** The distinct keys whose value was found bad, with the last reason. */
  readonly badKeys = new Map<string, string>();
  private readonly loggedBad = new Set<string>();
  private readonly batch = new TurnBatch();
  private readonly publisher: Publisher;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly log: Logger | undefined,
  ) {
    this.publisher = new Publisher(nc);
  }

  /**
   * The control plane makes the bucket (with `replicas` copies on a NATS cluster); a reader
   * (`bindOnly`: a node-agent, which may not create streams) binds to the one that exists.
   */
  static async open(nc: NatsConnection, log?: Logger, opts: { replicas?: number; bindOnly?: boolean } = {}): Promise<ObjectStore> {
    // On a fresh NATS cluster JetStream answers only once its servers have elected a meta leader.
    const deadline = Date.now() + 60_000;
    let kv: KV;
    for (;;) {
      try {
        kv = await nc.jetstream({ timeout: JS_API_TIMEOUT_MS }).views.kv(OBJECTS_BUCKET, opts.bindOnly ? { bindOnly: true } : { history: 64, replicas: opts.replicas ?? 1 });
        break;
      } catch (err) {
        const message = (err as Error)?.message ?? String(err);
        if (Date.now() > deadline || !/503|timeout|no responders|temporarily unavailable|insufficient resources|no suitable peers/i.test(message)) throw err;
        log?.warn({ err: message }, "JetStream not ready yet; opening the store again");
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    return new ObjectStore(nc, kv, await nc.jetstreamManager({ timeout: JS_API_TIMEOUT_MS }), log);
  }

  /**
   * The checked decode of a KV entry; undefined for a delete marker without payload. A bad value
   * is counted and logged (once per key and revision).
   */
  private decode(entry: KvEntry, r: ResourceInfo): Decoded | undefined {
    if (entry.value.length === 0) return undefined;
    const d = decodeStored(entry.key, entry.value, entry.revision, r);
    if (d.kind === "bad") {
      this.badObjects++;
      if (this.badKeys.size < MAX_LOGGED_BAD || this.badKeys.has(d.key)) this.badKeys.set(d.key, d.reason);
      const id = `${d.key}@${entry.revision}`;
      if (!this.loggedBad.has(id)) {
        if (this.loggedBad.size < MAX_LOGGED_BAD) this.loggedBad.add(id);
        this.log?.error({ key: d.key, revision: entry.revision, reason: d.reason, badObjects: this.badObjects, badKeys: this.badKeys.size }, "bad object in store; skipped");
      }
    }
    return d;
  }

  /** The live object at a key; throws StoreError Corrupt when the stored value is bad. */
  async get(r: ResourceInfo, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    const key = objectKey(r, namespace, name);
    const entry = await readRetried(() => this.batch.run(() => this.kv.get(key)));
    if (!entry || entry.operation !== "PUT") return undefined;
    const d = this.decode(entry, r);
    if (!d) return undefined;
    if (d.kind === "bad") throw new StoreError(StoreErrorCode.Corrupt, `the object stored at key ${JSON.stringify(key)} (revision ${entry.revision}) cannot be decoded: ${d.reason}`);
    return d.object;
  }

  /** The current revision of the whole store (the next write gets a higher one). */
  async revision(): Promise<number> {
    return readRetried(async () => (await this.jsm.streams.info(STREAM)).state.last_seq);
  }

  /**
   * Puts `value` at `key` if the key's last revision is `expectedRevision` (0: none), as a KV
   * delete marker when `del`; the revision written. Sent at the end of the event loop's turn.
   */
  private write(key: string, value: Uint8Array, expectedRevision: number, del = false): Promise<number> {
    checkKey(key);
    const h = natsHeaders();
    if (del) h.set("KV-Operation", "DEL");
    h.set("Nats-Expected-Last-Subject-Sequence", String(expectedRevision));
    return this.batch.run(() => this.publisher.publish(`$KV.${OBJECTS_BUCKET}.${key}`, value, h));
  }

  /** Every live object of a resource (in one namespace, or all), and the revision the list is at. */
  async list(r: ResourceInfo, namespace: string | undefined): Promise<{ items: KubeObject[]; resourceVersion: number }> {
    return readRetried(() => this.listOnce(r, namespace));
  }

  private async listOnce(r: ResourceInfo, namespace: string | undefined): Promise<{ items: KubeObject[]; resourceVersion: number }> {
    const before = await this.revision();
    const items = new Map<string, KubeObject>();
    let max = before;
    let initialized!: () => void;
    const ready = new Promise<void>((resolve) => (initialized = resolve));
    const iter = await this.kv.watch({ key: keyFilter(r, namespace), initializedFn: () => initialized() });
    let complete = false;
    const consume = (async () => {
      for await (const e of iter) {
        max = Math.max(max, e.revision);
        const d = e.operation === "PUT" ? this.decode(e, r) : undefined;
        // A key whose current value is bad is not listed (not its older, good value either).
        if (d?.kind === "ok") items.set(e.key, d.object);
        else items.delete(e.key);
      }
    })();
    // The iterator may end or fail before the initial values are in: that list is an error, not a hang.
    await Promise.race([
      ready.then(() => (complete = true)),
      consume.then(
        () => {
          if (!complete) throw new Error(`list of ${r.plural} ended before it was complete`);
        },
        (err: unknown) => {
          if (!complete) throw err;
        },
      ),
    ]).finally(() => iter.stop());
    await consume.catch(() => {});
    return { items: [...items.values()].sort(byNamespaceName), resourceVersion: max };
  }

  async create(r: ResourceInfo, object: KubeObject): Promise<KubeObject> {
    const key = objectKey(r, object.metadata.namespace, object.metadata.name!);
    try {
      const value = encode("ADDED", object);
      let rev: number;
      try {
        rev = await this.write(key, value, 0);
      } catch (err) {
        // As kv.create: a key whose last message is a delete (or purge) marker is free again.
        if (!isWrongLastSequence(err)) throw err;
        const last = await this.batch.run(() => this.kv.get(key));
        if (last?.operation !== "DEL" && last?.operation !== "PURGE") throw err;
        rev = await this.write(key, value, last.revision);
      }
      return withRevision(object, rev);
    } catch (err) {
      if (isWrongLastSequence(err) || /wrong last sequence/i.test(String((err as Error).message))) {
        throw new StoreError(StoreErrorCode.AlreadyExists, `${r.plural} "${object.metadata.name}" already exists`);
      }
      throw err;
    }
  }

  /** Writes `object` if the stored revision is still `expectedRevision`; Conflict otherwise. */
  async update(r: ResourceInfo, object: KubeObject, expectedRevision: number): Promise<KubeObject> {
    const key = objectKey(r, object.metadata.namespace, object.metadata.name!);
    try {
      const value = encode("MODIFIED", object);
      const rev = await this.write(key, value, expectedRevision);
      return withRevision(object, rev);
    } catch (err) {
      if (isWrongLastSequence(err) || /wrong last sequence/i.test(String((err as Error).message))) {
        throw new StoreError(
          StoreErrorCode.Conflict,
          `Operation cannot be fulfilled on ${r.plural}${r.group ? `.${r.group}` : ""} "${object.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
        );
      }
      throw err;
    }
  }

  /** Removes the object stored at `expectedRevision`; the delete marker carries its last state. */
  async delete(r: ResourceInfo, object: KubeObject, expectedRevision: number): Promise<KubeObject> {
    const key = objectKey(r, object.metadata.namespace, object.metadata.name!);
    try {
      const value = encode("DELETED", object);
      const rev = await this.write(key, value, expectedRevision, true);
      return withRevision(object, rev);
    } catch (err) {
      if (isWrongLastSequence(err) || /wrong last sequence/i.test(String((err as Error).message))) {
        throw new StoreError(StoreErrorCode.Conflict, `Operation cannot be fulfilled on ${r.plural} "${object.metadata.name}": the object has been modified`);
      }
      throw err;
    }
  }

  /**
   * Events after `fromRevision` (exclusive) for a resource; with no revision, ADDED for every
   * live object first, then changes. Throws Gone when events after `fromRevision` were compacted.
   */
  async watch(r: ResourceInfo, namespace: string | undefined, fromRevision: number | undefined, onEvent: (e: WatchEvent) => void): Promise<WatchHandle> {
    if (fromRevision !== undefined && fromRevision > 0) await this.checkNotCompacted(fromRevision);
    const initial = fromRevision === undefined || fromRevision === 0;
    // Until the initial values are in, a list-then-watch "from now" replays live objects as
    // ADDED and skips keys whose last message is a delete, as the API server does.
    let replaying = initial;
    const iter = await this.kv.watch({
      key: keyFilter(r, namespace),
      ...(initial ? { initializedFn: () => (replaying = false) } : { resumeFromRevision: fromRevision + 1 }),
    });
    const deliver = (e: WatchEvent) => {
      try {
        onEvent(e);
      } catch (err) {
        // A watcher that throws on one object must not end the watch for every other one.
        this.log?.error({ err, key: objectKey(r, e.object.metadata.namespace, e.object.metadata.name!), type: e.type }, "watch handler failed on an object; skipped");
      }
    };
    const done = (async () => {
      for await (const e of iter) {
        const d = this.decode(e, r);
        if (!d || d.kind === "bad") continue;
        if (replaying) {
          if (d.type !== "DELETED" && e.operation === "PUT") deliver({ type: "ADDED", object: d.object });
          continue;
        }
        deliver({ type: d.type, object: d.object });
      }
    })().catch((err: unknown) => {
      this.log?.warn({ resource: r.plural, err: (err as Error)?.message ?? String(err) }, "store watch ended with an error");
    });
    return { stop: () => iter.stop(), done };
  }

  /**
   * Removes the delete markers of keys deleted more than `olderThanMs` ago, with every earlier
   * revision of those keys (a deleted key otherwise keeps up to 64 messages forever). Only
   * messages up to the marker are purged, so a key created again meanwhile keeps its new value.
   * A watch from before a purged marker is answered 410 Gone (checkNotCompacted sees the removed
   * sequences), never a silent miss of its DELETED event. Returns the number of keys purged.
   */
  async purgeTombstones(olderThanMs: number, now: number = Date.now()): Promise<number> {
    const entries: TombstoneCandidate[] = [];
    let initialized!: () => void;
    const ready = new Promise<void>((resolve) => (initialized = resolve));
    const iter = await this.kv.watch({ key: ">", headers_only: true, initializedFn: () => initialized() });
    const consume = (async () => {
      for await (const e of iter) entries.push({ key: e.key, revision: e.revision, operation: e.operation, created: e.created.getTime() });
    })().catch(() => {});
    await Promise.race([ready, consume]).finally(() => iter.stop());
    await consume;
    let purged = 0;
    for (const t of tombstonesToPurge(entries, now, olderThanMs)) {
      await this.jsm.streams.purge(STREAM, { filter: `$KV.${OBJECTS_BUCKET}.${t.key}`, seq: t.revision + 1 });
      purged++;
    }
    return purged;
  }

  private async checkNotCompacted(fromRevision: number): Promise<void> {
    const info = await this.jsm.streams.info(STREAM, { deleted_details: true });
    const deleted = info.state.deleted ?? [];
    // Messages removed at the head of the stream move first_seq instead of being listed as deleted.
    if (info.state.first_seq > fromRevision + 1 || deleted.some((seq) => seq > fromRevision)) {
      throw new StoreError(StoreErrorCode.Gone, `too old resource version: ${fromRevision} (${info.state.last_seq})`);
    }
  }
}

export interface TombstoneCandidate {
  key: string;
  revision: number;
  operation: "PUT" | "DEL" | "PURGE";
  /** Milliseconds since the epoch. */
  created: number;
}

/**
 * Of the last entry of each key, the delete (or purge) markers written at least `olderThanMs`
 * before `now`: the keys whose history can go. A key's last entry decides (a later PUT means
 * the key lives again and keeps its history).
 */
export function tombstonesToPurge(entries: readonly TombstoneCandidate[], now: number, olderThanMs: number): TombstoneCandidate[] {
  const last = new Map<string, TombstoneCandidate>();
  for (const e of entries) {
    const prev = last.get(e.key);
    if (!prev || e.revision > prev.revision) last.set(e.key, e);
  }
  return [...last.values()].filter((e) => e.operation !== "PUT" && now - e.created >= olderThanMs).sort((a, b) => a.revision - b.revision);
}

function withRevision(object: KubeObject, revision: number): KubeObject {
  return { ...object, metadata: { ...object.metadata, resourceVersion: String(revision) } };
}

function byNamespaceName(a: KubeObject, b: KubeObject): number {
  return (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "") || (a.metadata.name ?? "").localeCompare(b.metadata.name ?? "");
}
