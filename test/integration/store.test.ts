/**
 * The object store's writes against a real nats-server: each is a JetStream publish answered
 * by its acknowledgement on the store's own inbox (store.ts Publisher), with the semantics of
 * kv.create/kv.update: create expects no live value (a delete marker counts as none), update
 * and delete expect the revision read; a lost race is AlreadyExists or Conflict; watchers see
 * ADDED, MODIFIED, DELETED in revision order.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats } from "../../cluster/rpc.ts";
import { resourceByKind } from "../../cluster/resources.ts";
import { ObjectStore, StoreError, StoreErrorCode, type KubeObject, type WatchEvent } from "../../cluster/store.ts";
import { startTestNats, type NatsHandle } from "./fixture.ts";

const CONFIGMAP = resourceByKind("ConfigMap");
let dir: string;
let nats: NatsHandle;
let nc: NatsConnection;
let store: ObjectStore;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kubewire-store-"));
  nats = await startTestNats(dir);
  nc = await connectNats(nats.url, "store-test");
  store = await ObjectStore.open(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const cm = (name: string, data: Record<string, string> = {}): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "default", uid: `uid-${name}` }, data });
const code = (p: Promise<unknown>) => p.then(() => "ok", (err: unknown) => (err instanceof StoreError ? err.code : String(err)));

describe("object store writes", () => {
  it("creates, updates and deletes with optimistic concurrency, in revision order for a watcher", async () => {
    const events: WatchEvent[] = [];
    const before = await store.revision();
    const watch = await store.watch(CONFIGMAP, "default", before, (e) => events.push(e));
    const created = await store.create(CONFIGMAP, cm("a", { v: "1" }));
    expect(Number(created.metadata.resourceVersion)).toBeGreaterThan(before);
    expect(await code(store.create(CONFIGMAP, cm("a")))).toBe(StoreErrorCode.AlreadyExists);
    const updated = await store.update(CONFIGMAP, { ...created, data: { v: "2" } }, Number(created.metadata.resourceVersion));
    expect(Number(updated.metadata.resourceVersion)).toBeGreaterThan(Number(created.metadata.resourceVersion));
    expect(await code(store.update(CONFIGMAP, { ...created, data: { v: "3" } }, Number(created.metadata.resourceVersion)))).toBe(StoreErrorCode.Conflict);
    expect(await code(store.delete(CONFIGMAP, created, Number(created.metadata.resourceVersion)))).toBe(StoreErrorCode.Conflict);
    const got = await store.get(CONFIGMAP, "default", "a");
    expect(got?.data).toEqual({ v: "2" });
    expect(got?.metadata.resourceVersion).toBe(updated.metadata.resourceVersion);
    await store.delete(CONFIGMAP, updated, Number(updated.metadata.resourceVersion));
    expect(await store.get(CONFIGMAP, "default", "a")).toBeUndefined();
    // A key whose last message is a delete marker is free for a create again.
    const again = await store.create(CONFIGMAP, cm("a", { v: "again" }));
    expect((await store.get(CONFIGMAP, "default", "a"))?.data).toEqual({ v: "again" });
    const until = Date.now() + 5000;
    while (events.length < 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    watch.stop();
    expect(events.map((e) => `${e.type} ${e.object.metadata.resourceVersion}`)).toEqual([
      `ADDED ${created.metadata.resourceVersion}`,
      `MODIFIED ${updated.metadata.resourceVersion}`,
      `DELETED ${Number(again.metadata.resourceVersion) - 1}`,
      `ADDED ${again.metadata.resourceVersion}`,
    ]);
  });

  it("lets exactly one of many concurrent creates of a name win", async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => code(store.create(CONFIGMAP, cm("race", { i: String(i) })))));
    expect(results.filter((r) => r === "ok")).toHaveLength(1);
    expect(results.filter((r) => r === StoreErrorCode.AlreadyExists)).toHaveLength(19);
  });

  it("answers many writes in flight each with its own revision", async () => {
    const written = await Promise.all(Array.from({ length: 200 }, (_, i) => store.create(CONFIGMAP, cm(`many-${i}`))));
    const revisions = new Set(written.map((o) => o.metadata.resourceVersion));
    expect(revisions.size).toBe(200);
    for (const o of written.slice(0, 10)) expect((await store.get(CONFIGMAP, "default", o.metadata.name!))?.metadata.resourceVersion).toBe(o.metadata.resourceVersion);
  });

  it("refuses a key that is not one before sending anything", async () => {
    // Names are escaped into keys (resources.ts keyName); a namespace is not.
    expect(await code(store.create(CONFIGMAP, { ...cm("x"), metadata: { name: "x", namespace: "bad ns" } }))).toMatch(/invalid key/);
  });
});
