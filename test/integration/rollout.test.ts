/**
 * Fixes found by probing (issue item 6), with the real kubectl against a 1-node cluster:
 * `kubectl rollout history` and `kubectl rollout undo` (the Deployment carries its revision,
 * the JSON patch kubectl sends applies), concurrent `kubectl scale`/`kubectl patch` without a
 * resourceVersion all land (retried on conflict), Events expire after their TTL, and deleted
 * keys' delete markers are purged while a watch from before them still gets 410 Gone.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { objectKey, resourceByKind } from "../../cluster/resources.ts";
import { OBJECTS_BUCKET } from "../../cluster/store.ts";
import { KubeApiError } from "../../cluster/kube-client.ts";
import { TestCluster, until } from "./fixture.ts";

const IMAGE = "registry.k8s.io/e2e-test-images/agnhost";
const REVISION = "deployment.kubernetes.io/revision";

let cluster: TestCluster;
const ok = (args: string[]): Promise<string> => cluster.kubectlOk(args);

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 1,
    controlPlaneEnv: { KUBEWIRE_EVENT_TTL_SECONDS: "2", KUBEWIRE_TOMBSTONE_TTL_SECONDS: "2", KUBEWIRE_HOUSEKEEPING_SECONDS: "1" },
  });
});

afterAll(async () => {
  await cluster?.stop();
});



interface Deploy {
  metadata: { annotations?: Record<string, string>; labels?: Record<string, string>; resourceVersion: string };
  spec: { replicas: number; template: { spec: { containers: Array<{ image: string }> } } };
}

const deployment = () => cluster.kube.get<Deploy>("/apis/apps/v1/namespaces/default/deployments/web");

/** The history table's revisions and change causes. */
function historyRows(out: string): Array<[string, string]> {
  return out
    .trim()
    .split("\n")
    .filter((l) => /^\d+\s/.test(l))
    .map((l) => {
      const [rev, ...cause] = l.trim().split(/\s+/);
      return [rev!, cause.join(" ")];
    });
}

/** Pods of the deployment that are Running, not terminating, with their images. */
async function runningImages(): Promise<string[]> {
  const pods = await cluster.pods("default");
  return pods
    .filter((p) => p.metadata.labels?.app === "web" && !p.metadata.deletionTimestamp && p.status?.phase === "Running")
    .map((p) => (p.spec as { containers: Array<{ image: string }> }).containers[0]!.image)
    .sort();
}

describe("kubectl rollout", () => {
  it("lists three revisions after two image changes, and undo brings back the previous template with new pods", async () => {
    await ok(["create", "deployment", "web", `--image=${IMAGE}:2.47`, "--replicas=2"]);
    await ok(["rollout", "status", "deployment/web", "--timeout=60s"]);
    expect((await deployment()).metadata.annotations?.[REVISION]).toBe("1");

    for (const tag of ["2.48", "2.49"]) {
      // After the change, as with --record: the controller copies it to the (new) ReplicaSet.
      await ok(["set", "image", "deployment/web", `agnhost=${IMAGE}:${tag}`]);
      await ok(["annotate", "deployment/web", "--overwrite", `kubernetes.io/change-cause=image ${tag}`]);
      await ok(["rollout", "status", "deployment/web", "--timeout=60s"]);
    }
    expect((await deployment()).metadata.annotations?.[REVISION]).toBe("3");
    expect(historyRows(await ok(["rollout", "history", "deployment/web"]))).toEqual([
      ["1", "<none>"],
      ["2", "image 2.48"],
      ["3", "image 2.49"],
    ]);
    expect(await ok(["rollout", "history", "deployment/web", "--revision=2"])).toContain(`${IMAGE}:2.48`);
    const before = await runningImages();
    expect(before).toEqual([`${IMAGE}:2.49`, `${IMAGE}:2.49`]);

    const undo = await ok(["rollout", "undo", "deployment/web"]);
    expect(undo).toMatch(/rolled back/);
    const d = await until("the template of revision 2 back, as revision 4", async () => {
      const cur = await deployment();
      return cur.metadata.annotations?.[REVISION] === "4" ? cur : undefined;
    });
    expect(d.spec.template.spec.containers[0]!.image).toBe(`${IMAGE}:2.48`);
    // kubectl restores the old ReplicaSet's annotations: its change cause comes back too.
    expect(d.metadata.annotations?.["kubernetes.io/change-cause"]).toBe("image 2.48");
    await ok(["rollout", "status", "deployment/web", "--timeout=60s"]);
    const images = await until("two new pods of 2.48", async () => {
      const imgs = await runningImages();
      return imgs.length === 2 && imgs.every((i) => i === `${IMAGE}:2.48`) ? imgs : undefined;
    });
    expect(images).toHaveLength(2);
    expect(historyRows(await ok(["rollout", "history", "deployment/web"]))).toEqual([
      ["1", "<none>"],
      ["3", "image 2.49"],
      ["4", "image 2.48"],
    ]);
    // Undo to an explicit revision works too.
    await ok(["rollout", "undo", "deployment/web", "--to-revision=1"]);
    await until("revision 1's template", async () => {
      const cur = await deployment();
      return cur.spec.template.spec.containers[0]!.image === `${IMAGE}:2.47` && cur.metadata.annotations?.[REVISION] === "5" ? cur : undefined;
    });
  });

  it("lands concurrent kubectl scale and kubectl patch without a resourceVersion", async () => {
    const patches = Array.from({ length: 6 }, (_, i) =>
      i % 2 === 0
        ? cluster.kubectl(["patch", "deployment/web", "--type=merge", "-p", JSON.stringify({ metadata: { labels: { [`merge-${i}`]: "yes" } } })])
        : cluster.kubectl(["patch", "deployment/web", "-p", JSON.stringify({ metadata: { annotations: { [`example.com/strategic-${i}`]: "yes" } } })]),
    );
    const scales = [cluster.kubectl(["scale", "deployment/web", "--replicas=3"]), cluster.kubectl(["scale", "deployment/web", "--replicas=3"])];
    const json = [
      cluster.kubectl(["patch", "deployment/web", "--type=json", "-p", JSON.stringify([{ op: "add", path: "/metadata/labels/json-a", value: "yes" }])]),
      cluster.kubectl(["patch", "deployment/web", "--type=json", "-p", JSON.stringify([{ op: "add", path: "/metadata/labels/json-b", value: "yes" }])]),
    ];
    const results = await Promise.all([...patches, ...scales, ...json]);
    for (const r of results) expect(r.code, r.stdout + r.stderr).toBe(0);
    const d = await deployment();
    expect(d.spec.replicas).toBe(3);
    expect(d.metadata.labels).toMatchObject({ "merge-0": "yes", "merge-2": "yes", "merge-4": "yes", "json-a": "yes", "json-b": "yes" });
    expect(d.metadata.annotations).toMatchObject({ "example.com/strategic-1": "yes", "example.com/strategic-3": "yes", "example.com/strategic-5": "yes" });
    // A patch that names a stale resourceVersion is a precondition: 409, not retried into success.
    const stale = await cluster.kubectl(["patch", "deployment/web", "--type=merge", "-p", JSON.stringify({ metadata: { resourceVersion: "1", labels: { stale: "yes" } } })]);
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toMatch(/the object has been modified/);
  });
});

describe("store housekeeping", () => {
  it("removes an Event once its TTL has passed since its lastTimestamp", async () => {
    const old = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, "Z");
    await cluster.kube.create("/api/v1/namespaces/default/events", {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: "old-event", namespace: "default" },
      involvedObject: { kind: "Deployment", name: "web", namespace: "default", apiVersion: "apps/v1" },
      reason: "Probe",
      message: "an hour old",
      type: "Normal",
      source: { component: "test" },
      firstTimestamp: old,
      lastTimestamp: old,
      count: 1,
    });
    await until("the expired event gone", async () => {
      try {
        await cluster.kube.get("/api/v1/namespaces/default/events/old-event");
        return undefined;
      } catch (err) {
        if (err instanceof KubeApiError && err.status.code === 404) return true;
        throw err;
      }
    }, 15_000);
  });

  it("purges a deleted key's history, and a watch from before its delete marker gets 410 Gone", async () => {
    const created = await cluster.kube.create<{ metadata: { resourceVersion: string } }>("/api/v1/namespaces/default/configmaps", {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "short-lived", namespace: "default" },
      data: { a: "1" },
    });
    const rv = created.metadata.resourceVersion;
    await cluster.kube.delete("/api/v1/namespaces/default/configmaps/short-lived");
    const watchLines = async () => {
      const text = await cluster.kube.request<string | { type: string; object: { code?: number; metadata?: { name?: string } } }>(
        "GET",
        `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}&timeoutSeconds=1`,
      );
      const raw = typeof text === "string" ? text : JSON.stringify(text);
      return raw
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as { type: string; object: { code?: number; metadata?: { name?: string } } });
    };
    const kv = await cluster.nc.jetstream().views.kv(OBJECTS_BUCKET);
    const key = objectKey(resourceByKind("ConfigMap"), "default", "short-lived");
    const history = async () => {
      const out: number[] = [];
      for await (const e of await kv.history({ key })) out.push(e.revision);
      return out;
    };
    expect((await history()).length).toBeGreaterThanOrEqual(2);
    await until("the delete marker purged", async () => ((await history()).length === 0 ? true : undefined), 15_000);
    // Never a silent miss of the DELETED event: the watch is told its revision is too old.
    const events = await watchLines();
    expect(events[0]).toMatchObject({ type: "ERROR", object: { code: 410 } });
    // A name deleted and created again keeps its new value through the passes.
    await cluster.kube.create("/api/v1/namespaces/default/configmaps", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "short-lived" }, data: { b: "2" } });
    await new Promise((r) => setTimeout(r, 3000));
    expect(await cluster.kube.get<{ data: Record<string, string> }>("/api/v1/namespaces/default/configmaps/short-lived")).toMatchObject({ data: { b: "2" } });
  });
});
