/**
 * The informer over an untrusted ListerWatcher: objects without the basic shape are skipped and
 * counted, a listener that throws does not stop the others, and a watch that ends is relisted
 * (objects gone meanwhile come as DELETED) and watched again, with a backoff when it ends at once.
 */
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../cluster/clock.ts";
import { Informer, type ListerWatcher } from "../../cluster/informer.ts";
import { resourceByKind } from "../../cluster/resources.ts";
import type { KubeObject, WatchEvent } from "../../cluster/store.ts";

const PODS = resourceByKind("Pod");
const pod = (name: unknown): KubeObject => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "default", uid: String(name) } }) as KubeObject;
const flush = () => new Promise((r) => setImmediate(r));

class FakeSource implements ListerWatcher {
  items: KubeObject[] = [];
  lists = 0;
  watches: Array<{ onEvent: (e: WatchEvent) => void; end: () => void }> = [];
  async list() {
    this.lists++;
    return { items: [...this.items], resourceVersion: String(this.lists) };
  }
  async watch(_r: unknown, _ns: undefined, _rv: string, _opts: Record<string, never>, onEvent: (e: WatchEvent) => void) {
    let end!: () => void;
    const done = new Promise<void>((r) => (end = r));
    this.watches.push({ onEvent, end });
    return { stop: end, done };
  }
}

describe("Informer", () => {
  it("skips bad objects, survives a throwing listener, relists when the watch ends", async () => {
    const clock = new FakeClock();
    const src = new FakeSource();
    src.items = [pod("a"), pod(12), pod("b")];
    const inf = new Informer(PODS, src, clock, pino({ level: "silent" }));
    const seen: string[] = [];
    inf.onChange(() => {
      throw new Error("listener bug");
    });
    inf.onChange((o, type) => seen.push(`${type} ${o.metadata.name}`));
    await inf.start();
    expect([...inf.cache.keys()].sort()).toEqual(["default/a", "default/b"]);
    expect(inf.skipped).toBe(1);
    expect(seen.sort()).toEqual(["SYNC a", "SYNC b"]);

    src.watches[0]!.onEvent({ type: "ADDED", object: pod(["x"]) });
    src.watches[0]!.onEvent({ type: "ADDED", object: pod("c") });
    expect(inf.cache.has("default/c")).toBe(true);
    expect(inf.skipped).toBe(2);

    // The watch ends at once: relisted after a backoff; "a" vanished meanwhile.
    src.items = [pod("b"), pod("c")];
    seen.length = 0;
    src.watches[0]!.end();
    await flush();
    expect(src.lists).toBe(1);
    clock.advance(5000);
    for (let i = 0; i < 5; i++) await flush();
    expect(src.lists).toBe(2);
    expect(seen).toContain("DELETED a");
    expect(src.watches).toHaveLength(2);
    inf.stop();
  });
});
