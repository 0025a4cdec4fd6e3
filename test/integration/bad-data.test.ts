/**
 * Bad data straight in the KV bucket (what `nats kv put` can do behind the API's back): a value
 * that is not JSON, a Pod whose name is a number, a Pod bound to node-1 whose container ports
 * are an object, a Node whose name is an array and one with odd status. The store's readers log,
 * count and skip the bad values; nothing crashes, kubectl keeps working, a watch keeps going.
 * Plus the API's edges: 413 over 3 MiB, 400 for a body nested too deep or a malformed path,
 * and /readyz failing (naming the check) while NATS is down.
 */
import { readdirSync, readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApiError, paths } from "../../cluster/kube-client.ts";
import { OBJECTS_BUCKET } from "../../cluster/store.ts";
import { TestCluster, until } from "./fixture.ts";

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start(2);
});

afterAll(async () => {
  await cluster?.stop();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function expectAllAlive(): void {
  for (const [name, p] of cluster.procs) expect(alive(p.pid), `${name} (pid ${p.pid}) is running`).toBe(true);
}

/** One HTTPS request with a raw body; resolves with the status and text (errors after the answer are ignored). */
function raw(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpsRequest(`${cluster.apiUrl}${path}`, { method, ca: cluster.tls.cert, headers: { Authorization: `Bearer ${cluster.token}`, ...headers } }, (res) => {
      answered = true;
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString("utf8")));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      res.on("error", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.end(body);
  });
}

/** A watch on every pod; records the events and whether the stream ended. */
function watchPods(): { events: Array<{ type: string; object: { metadata: { name?: unknown } } }>; ended: () => boolean; stop: () => void } {
  const events: Array<{ type: string; object: { metadata: { name?: unknown } } }> = [];
  let ended = false;
  const req = httpsRequest(`${cluster.apiUrl}/api/v1/pods?watch=true`, { ca: cluster.tls.cert, headers: { Authorization: `Bearer ${cluster.token}` } }, (res) => {
    let buf = "";
    res.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) events.push(JSON.parse(line));
      }
    });
    res.on("end", () => (ended = true));
    res.on("error", () => (ended = true));
  });
  req.on("error", () => (ended = true));
  req.end();
  return { events, ended: () => ended, stop: () => req.destroy() };
}


function controlPlaneLog(): string {
  return readdirSync(cluster.logDir)
    .filter((f) => f.startsWith("control-plane"))
    .map((f) => readFileSync(join(cluster.logDir, f), "utf8"))
    .join("");
}

describe("bad objects in the store", () => {
  it("are logged, counted and skipped; nothing crashes and the API keeps working", async () => {
    await cluster.createPod("good-1", "node-1");
    const watch = watchPods();
    await until("the watch replays good-1", () => watch.events.some((e) => e.object.metadata.name === "good-1"));

    const kv = await cluster.nc.jetstream().views.kv(OBJECTS_BUCKET);
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    // (a) not JSON at all
    await kv.put("pods.default.garbage", new TextEncoder().encode("\u0000not json{{{"));
    // (b) a Pod named 12 (a number)
    await kv.put("pods.default.12", enc({ type: "ADDED", object: { apiVersion: "v1", kind: "Pod", metadata: { name: 12, namespace: "default", uid: "bad-12" }, spec: { containers: [{ name: "app", image: "x" }] } } }));
    // (c) a Pod bound to node-1 whose container ports are an object (the shape is fine; the agent reads defensively)
    await kv.put("pods.default.odd-ports", enc({ type: "ADDED", object: { apiVersion: "v1", kind: "Pod", metadata: { name: "odd-ports", namespace: "default", uid: "odd-ports-uid", creationTimestamp: new Date().toISOString() }, spec: { nodeName: "node-1", containers: [{ name: "app", image: "x", ports: { containerPort: 80 } }] } } }));
    // Nodes too: one whose name is an array (bad), one with addresses as an object (decodes; no network identity)
    await kv.put("nodes._.bogus", enc({ type: "ADDED", object: { apiVersion: "v1", kind: "Node", metadata: { name: ["bogus"] } } }));
    await kv.put("nodes._.odd-node", enc({ type: "ADDED", object: { apiVersion: "v1", kind: "Node", metadata: { name: "odd-node", uid: "odd-node-uid", annotations: { "flannel.alpha.coreos.com/backend-data": "{" } }, spec: { podCIDR: 7 }, status: { addresses: { type: "InternalIP" } } } }));

    // node-1 plumbs the odd-ports pod (its ports read defensively as none) and stays up. Its status
    // update may be refused (the stored spec fails the API's schema), so Running is not asked for.
    await cluster.waitForPodOnNode({ namespace: "default", name: "odd-ports", nodeName: "node-1", podIp: "" }, 15_000);
    expectAllAlive();

    const pods = await cluster.kubectl(["get", "pods", "-A", "-o", "name"]);
    expect(pods.stderr).toBe("");
    expect(pods.code).toBe(0);
    expect(pods.stdout).toContain("pod/good-1");
    expect(pods.stdout).toContain("pod/odd-ports");
    expect(pods.stdout).not.toContain("garbage");
    const nodes = await cluster.kubectl(["get", "nodes"]);
    expect(nodes.code).toBe(0);
    expect(nodes.stdout).toContain("node-1");

    // get of a bad key: a 500 Status naming the key, not a 404 and not a crash.
    const err = await cluster.kube.get(paths.pod("default", "garbage")).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).code).toBe(500);
    expect((err as KubeApiError).message).toContain("pods.default.garbage");
    const err12 = await cluster.kube.get(paths.pod("default", "12")).then(() => undefined, (e: unknown) => e);
    expect((err12 as KubeApiError).code).toBe(500);
    expect((err12 as KubeApiError).message).toMatch(/pods\.default\.12.*metadata\.name is number 12/);

    // A new pod is still created, scheduled and Running; the open watch delivers it.
    await cluster.kube.create(paths.pods("default"), { apiVersion: "v1", kind: "Pod", metadata: { name: "after-bad" }, spec: { containers: [{ name: "app", image: "x" }] } });
    await cluster.waitForPodRunning("default", "after-bad", 20_000);
    await until("the watch delivers after-bad", () => watch.events.some((e) => e.object.metadata.name === "after-bad"));
    expect(watch.ended()).toBe(false);
    expect(watch.events.some((e) => e.object.metadata.name === 12 || e.type === "ERROR")).toBe(false);
    watch.stop();

    // Counted: node-agents expose the store's counter in their status; the control plane logs each bad key once.
    const status = await cluster.status("node-1");
    expect(status.counters.store_bad_objects_total).toBeGreaterThan(0);
    expect(status.counters.store_bad_keys).toBeGreaterThanOrEqual(2);
    const log = controlPlaneLog();
    for (const key of ["pods.default.garbage", "pods.default.12", "nodes._.bogus"]) {
      expect(log).toMatch(new RegExp(`"key":"${key.replaceAll(".", "\\.")}".*"msg":"bad object in store; skipped"`));
    }
    expect(log).not.toMatch(/"key":"pods\.default\.odd-ports".*bad object/);
    expectAllAlive();
  });

  it("a restarted control plane starts over bad data and still serves", async () => {
    await cluster.stopProcess("control-plane");
    cluster.startControlPlane();
    await cluster.waitForApi();
    const pods = await cluster.kubectl(["get", "pods", "-A"]);
    expect(pods.code).toBe(0);
    expect(pods.stdout).toContain("after-bad");
    expectAllAlive();
  });
});

describe("API edges", () => {
  it("a body over 3 MiB is 413", async () => {
    const big = JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "big" }, data: { x: "a".repeat(3 * 1024 * 1024) } });
    const res = await raw("POST", "/api/v1/namespaces/default/pods", big, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(big)) });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text)).toMatchObject({ kind: "Status", code: 413, reason: "RequestEntityTooLarge" });
  });

  it("JSON nested 10,000 deep is 400, and the server is fine after", async () => {
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    const res = await raw("POST", "/api/v1/namespaces/default/pods", deep, { "Content-Type": "application/json" });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/nested more than/);
    const obj = `${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`;
    const patched = await raw("PATCH", "/api/v1/namespaces/default/pods/good-1", obj, { "Content-Type": "application/merge-patch+json" });
    expect(patched.status).toBe(400);
    expectAllAlive();
  });

  it("malformed percent-encoding in the path is 400", async () => {
    for (const path of ["/api/v1/namespaces/%zz/pods", "/api/v1/namespaces/default/pods/%E0%A4%A"]) {
      const res = await raw("GET", path);
      expect(res.status, path).toBe(400);
      expect(JSON.parse(res.text)).toMatchObject({ code: 400, reason: "BadRequest" });
    }
  });

  it("/livez and /readyz answer ok; /readyz fails naming the etcd check while NATS is down", async () => {
    expect(await raw("GET", "/livez")).toEqual({ status: 200, text: "ok" });
    expect(await raw("GET", "/readyz")).toEqual({ status: 200, text: "ok" });
    const verbose = await raw("GET", "/readyz?verbose");
    expect(verbose.status).toBe(200);
    expect(verbose.text).toContain("[+]etcd ok");
    await cluster.nats.stop();
    try {
      const down = await until("/readyz to fail", async () => {
        const r = await raw("GET", "/readyz");
        return r.status === 500 ? r : undefined;
      });
      expect(down.text).toMatch(/\[-\]etcd failed: /);
      expect(down.text).toContain("readyz check failed");
      expect((await raw("GET", "/livez")).status).toBe(200);
    } finally {
      await cluster.nats.restart!();
    }
    await until("/readyz ok again", async () => ((await raw("GET", "/readyz")).status === 200 ? true : undefined), 30_000);
    expectAllAlive();
  });
});
