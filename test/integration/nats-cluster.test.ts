/**
 * The store on a 3-server NATS cluster (JetStream R3), node-agents spread over the servers:
 * kill -9 of a server under cross-node pod traffic and a burst of API writes loses no
 * acknowledged write, duplicates nothing, and the overlay carries traffic again within 5 s;
 * the server, started again, catches up with the others.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, acknowledgedWrites, pingArrivals, until, type TestPod } from "./fixture.ts";

let cluster: TestCluster;
let a: TestPod;
let b: TestPod;

interface Jsz {
  account_details?: Array<{ stream_detail?: Array<{ name: string; state: { messages: number; last_seq: number } }> }>;
}

/** The store's stream as one server holds it (its monitoring endpoint), if it holds a replica. */
async function streamState(monitorPort: number): Promise<{ lastSeq: number; messages: number } | undefined> {
  const res = await fetch(`http://127.0.0.1:${monitorPort}/jsz?accounts=true&streams=true`);
  const jsz = (await res.json()) as Jsz;
  const stream = jsz.account_details?.flatMap((acc) => acc.stream_detail ?? []).find((s) => s.name === "KV_kubewire_objects");
  return stream && { lastSeq: stream.state.last_seq, messages: stream.state.messages };
}

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3, natsServers: 3 });
  a = await cluster.createPod("r3-a", "node-1");
  b = await cluster.createPod("r3-b", "node-2");
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("a 3-server NATS cluster", () => {
  it("spreads the node-agents over the servers and keeps the store on all three", async () => {
    const servers = await Promise.all(cluster.nodeNames.map(async (n) => (await cluster.status(n)).natsServer));
    expect(servers).toEqual(["nats-1", "nats-2", "nats-3"]);
    const states = await Promise.all(cluster.nats.servers.map((s) => streamState(s.monitorPort!)));
    expect(states.every((s) => s !== undefined && s.messages > 0)).toBe(true);
  });

  it("loses no acknowledged write and carries pod traffic again within 5 s when a server is killed, and the server catches up", async () => {
    const victim = cluster.nats.servers[0]!; // node-1's home server
    // Cross-node traffic the whole time: 10 pings a second for 15 s from node-1 to node-2.
    const interval = 0.1;
    const pings = cluster.exec(a, ["ping", "-c", "150", "-i", String(interval), "-W", "10", b.podIp], 90_000);
    // A burst of API writes the whole time: each ConfigMap is created until the API acknowledges it.
    const { acked, stop } = acknowledgedWrites(cluster.kube, "default", { burst: "r3" }, 4);
    await until("some writes acknowledged", () => (acked.size >= 20 ? true : undefined), 20_000);
    await new Promise((r) => setTimeout(r, 3000)); // pings flowing on both sides of the kill
    const before = acked.size;
    await victim.kill9();
    const killedAt = Date.now();
    await until("writes acknowledged after the kill", () => (acked.size >= before + 20 ? true : undefined), 30_000);
    const writesBackMs = Date.now() - killedAt;
    const out = await pings;
    await stop();

    // Traffic: the longest time with no echo reply arriving is the outage.
    const { arrivals, longestSilenceMs } = pingArrivals(out.stdout, interval);
    expect(arrivals.length, out.stdout).toBeGreaterThan(100);
    console.log(`kill -9 ${victim.name}: longest gap in pod-to-pod replies ${longestSilenceMs.toFixed(0)} ms; ${out.stdout.split("\n").find((l) => l.includes("packets transmitted"))}; API writes acknowledged again ${writesBackMs} ms after the kill`);
    expect(longestSilenceMs).toBeLessThanOrEqual(5000);

    // The store: every acknowledged ConfigMap is there, once.
    const stored = await cluster.kube.list("/api/v1/namespaces/default/configmaps?labelSelector=burst%3Dr3");
    const names = stored.map((c) => c.metadata.name!);
    expect(new Set(names).size).toBe(names.length);
    expect([...acked].filter((n) => !names.includes(n))).toEqual([]);

    // The killed server starts again and catches up with the others.
    await victim.start();
    const caughtUp = await until(
      `${victim.name} to catch up`,
      async () => {
        const states = await Promise.all(cluster.nats.servers.map((s) => streamState(s.monitorPort!).catch(() => undefined)));
        const seqs = states.map((s) => s?.lastSeq);
        return seqs.every((q) => q !== undefined && q === seqs[0]) ? states : undefined;
      },
      30_000,
    );
    expect(caughtUp.map((s) => s!.messages)).toEqual([caughtUp[1]!.messages, caughtUp[1]!.messages, caughtUp[1]!.messages]);
    // And the cluster still works end to end: a new pod on node-1 reaches node-2's.
    const c = await cluster.createPod("r3-c", "node-1");
    const res = await cluster.exec(c, ["ping", "-c", "2", "-W", "2", b.podIp]);
    expect(res.exitCode, res.stdout).toBe(0);
  }, 150_000);
});
