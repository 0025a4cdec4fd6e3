/**
 * deploy/compose-nats-cluster.yml over docker-compose.yml, run for real: three nats servers
 * routed with mutual TLS, the store's stream with 3 replicas (each server's /jsz, read inside its
 * container: the monitoring port is not published), then `docker kill` of the server every
 * node-agent is homed on while pods on two nodes ping each other and the API takes writes:
 * the node-agents move to the other servers, traffic and writes go on, no acknowledged write is
 * lost, `kubewire attach --compose --nats <the three ports>` works with the server down, and the
 * server, started again, catches up. Gateway and one `node` replica (two nodes, enough for
 * cross-node traffic) keep it short. Its own compose project and host ports, removed in afterAll
 * (`down -v --remove-orphans`); the image is compose.test.ts's (`build` here is a cache hit after
 * it). Skipped, with the reason printed, only where no Docker engine can be started.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, paths } from "../../cluster/kube-client.ts";
import { connectNats, readNatsAuth, request } from "../../cluster/rpc.ts";
import { OBJECTS_BUCKET } from "../../cluster/store.ts";
import { Subjects, type ExecResult, type NodeStatus } from "../../cluster/types.ts";
import { REPO_ROOT, freePort } from "../../cli/processes.ts";
import { composeCliMaterial, servedCertificate } from "../../cli/compose.ts";
import { dockerSetup, freePortRange, run } from "./compose-fixture.ts";
import { NETEXEC_IMAGE, acknowledgedWrites, pingArrivals, until } from "./fixture.ts";

const docker = await dockerSetup();
if (docker.kind === "unavailable") console.warn(`compose-nats-cluster.test.ts skipped: no Docker engine here: ${docker.reason}`);

const PROJECT = `kubewire-test-r3-${randomBytes(4).toString("hex")}`;
const FILES = ["-f", "docker-compose.yml", "-f", "deploy/compose-nats-cluster.yml"];
/** The nats services, in the order of every process's KUBEWIRE_NATS_URL (the node-agents' home server first). */
const SERVERS = ["nats", "nats-2", "nats-3"] as const;
const STREAM = `KV_${OBJECTS_BUCKET}`;
const NS = "r3";
const TOKEN = "kubewire-compose-dev-token-change-me"; // the compose file's

interface StreamDetail {
  name: string;
  config?: { num_replicas?: number };
  cluster?: { leader?: string; replicas?: Array<{ name: string; current: boolean }> };
  state: { messages: number; last_seq: number };
}

// Each case waits on containers and the cluster for a bounded time of its own.
describe.skipIf(docker.kind !== "ready")("docker compose with a 3-server NATS cluster", { timeout: 300_000 }, () => {
  const compose = docker.kind === "ready" ? docker.compose : [];
  const dir = mkdtempSync(join(tmpdir(), "kubewire-compose-r3-"));
  const ports = { api: 0, nats: [] as number[], dns: 0, nodePorts: 0 };
  let env: Record<string, string> = {};
  let kube: KubeClient;
  let nc: NatsConnection | undefined;
  const natsUrls = () => ports.nats.map((p) => `tls://127.0.0.1:${p}`).join(",");

  const dc = (args: string[], timeoutMs = 120_000) => run(compose[0]!, [...compose.slice(1), "-p", PROJECT, ...FILES, ...args], { timeoutMs, env });
  async function dcOk(args: string[], timeoutMs?: number): Promise<string> {
    const r = await dc(args, timeoutMs);
    if (r.code !== 0) throw new Error(`${compose.join(" ")} ${args.join(" ")} exited ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }
  const containerOf = async (service: string) => (await dcOk(["ps", "-q", service])).trim();
  /** The store's stream as the server of `service` holds it (its /jsz), if it holds a replica. */
  async function streamOn(service: string): Promise<StreamDetail | undefined> {
    const r = await run("docker", ["exec", await containerOf(service), "wget", "-q", "-O-", "http://127.0.0.1:8222/jsz?accounts=true&streams=true&config=true"], { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`/jsz of ${service}: ${r.stderr}`);
    const jsz = JSON.parse(r.stdout) as { account_details?: Array<{ stream_detail?: StreamDetail[] }> };
    return jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((s) => s.name === STREAM);
  }
  const natsServerOf = async (node: string) => (await request<NodeStatus>(nc!, Subjects.node(node, "status"), {}, 10_000)).natsServer;
  const readyNodes = async () =>
    (await kube.list(paths.nodes())).filter((n) => ((n.status?.conditions ?? []) as Array<{ type: string; status: string }>).some((c) => c.type === "Ready" && c.status === "True")).map((n) => n.metadata.name!);

  beforeAll(async () => {
    const images = await run("bash", ["deploy/local-images.sh"], { timeoutMs: 600_000 });
    if (images.code !== 0) throw new Error(`deploy/local-images.sh exited ${images.code}: ${images.stderr}`);
    ports.api = await freePort();
    while (ports.nats.length < 3) {
      const p = await freePort();
      if (p !== ports.api && !ports.nats.includes(p)) ports.nats.push(p);
    }
    ports.dns = await freePort();
    ports.nodePorts = await freePortRange(10);
    env = {
      KUBEWIRE_COMPOSE_API_PORT: String(ports.api),
      KUBEWIRE_COMPOSE_NATS_PORT: String(ports.nats[0]),
      KUBEWIRE_COMPOSE_NATS_2_PORT: String(ports.nats[1]),
      KUBEWIRE_COMPOSE_NATS_3_PORT: String(ports.nats[2]),
      KUBEWIRE_COMPOSE_DNS_PORT: String(ports.dns),
      KUBEWIRE_COMPOSE_NODEPORTS: `${ports.nodePorts}-${ports.nodePorts + 9}`,
    };
    await dcOk(["build"], 900_000);
    await dcOk(["up", "-d", "--scale", "node=1"], 300_000);
    const ca = await until("the API's TLS certificate", () => servedCertificate("127.0.0.1", ports.api), 120_000);
    kube = new KubeClient(`https://127.0.0.1:${ports.api}`, TOKEN, ca);
    const material = await composeCliMaterial({ project: PROJECT });
    writeFileSync(join(dir, "ca.pem"), material.ca);
    writeFileSync(join(dir, "cli.creds"), material.creds, { mode: 0o600 });
    // The CLI's way in: every server's published port, so it outlives any one of them.
    nc = await connectNats(natsUrls(), "kubewire-compose-r3-test", readNatsAuth({ ca: join(dir, "ca.pem"), creds: join(dir, "cli.creds") }, "cli"));
  }, 1_500_000);

  afterAll(async () => {
    await nc?.close().catch(() => {});
    if (docker.kind === "ready") {
      const down = await dc(["down", "-v", "--remove-orphans", "--timeout", "5"], 180_000);
      if (down.code !== 0) console.warn(`compose down exited ${down.code}: ${down.stderr}`);
    }
    rmSync(dir, { recursive: true, force: true });
  }, 200_000);

  it("routes the three servers and keeps the store's stream on all three, the node-agents on their home server", async () => {
    const nodes = await until("two Ready nodes", async () => {
      const ready = await readyNodes();
      return ready.length === 2 ? ready : undefined;
    }, 120_000);
    expect(nodes).toContain("gateway");
    const streams = await Promise.all(SERVERS.map(streamOn));
    for (const [i, s] of streams.entries()) {
      expect(s, `${SERVERS[i]} holds no replica of ${STREAM}`).toBeDefined();
      expect(s!.config?.num_replicas).toBe(3);
      // A leader and two followers, one on each server (a server lists its peers, not itself): the servers are routed into one cluster.
      const peers = (s!.cluster?.replicas ?? []).map((r) => r.name);
      expect(peers, `${SERVERS[i]}'s peers`).toHaveLength(2);
      expect(new Set([SERVERS[i], s!.cluster?.leader, ...peers])).toEqual(new Set(SERVERS));
    }
    for (const node of nodes) expect(await natsServerOf(node), `${node}'s NATS server`).toBe(SERVERS[0]);
  });

  it("carries pod traffic and API writes through docker kill of that server, loses no acknowledged write, and the server catches up", async () => {
    const nodes = (await readyNodes()).sort();
    await kube.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    const ips: string[] = [];
    for (const [i, node] of nodes.entries()) {
      await kube.create(paths.pods(NS), { apiVersion: "v1", kind: "Pod", metadata: { name: `p-${i}` }, spec: { nodeName: node, containers: [{ name: "app", image: NETEXEC_IMAGE, args: ["netexec", "--http-port=8080"] }] } });
    }
    for (const i of nodes.keys()) {
      ips.push(await until(`p-${i} Running`, async () => {
        const p = await kube.get(paths.pod(NS, `p-${i}`));
        return p.status?.phase === "Running" && p.status.podIP ? (p.status.podIP as string) : undefined;
      }, 60_000));
    }
    const exec = (argv: string[], timeoutMs = 30_000) => request<ExecResult>(nc!, Subjects.node(nodes[0]!, "exec"), { namespace: NS, pod: "p-0", argv }, timeoutMs);
    await until("p-0 reaches p-1", async () => ((await exec(["ping", "-c", "1", "-W", "2", ips[1]!])).exitCode === 0 ? true : undefined), 30_000);

    // Cross-node traffic the whole time: 10 pings a second for 12 s, p-0 to p-1.
    const interval = 0.1;
    const pingStart = Date.now();
    const pings = exec(["ping", "-c", "120", "-i", String(interval), "-W", "10", ips[1]!], 60_000);
    // API writes the whole time: each ConfigMap is created until the API acknowledges it.
    const { acked, stop } = acknowledgedWrites(kube, NS, { burst: "r3" }, 2);
    // Writes acknowledged before the kill; they also give the pings time to flow.
    await until("writes acknowledged before the kill", () => (acked.size >= 30 ? true : undefined), 20_000);
    const victim = await containerOf(SERVERS[0]);
    const leader = (await streamOn(SERVERS[1]))?.cluster?.leader;
    const kill = await run("docker", ["kill", victim], { timeoutMs: 30_000 });
    expect(kill.code, kill.stderr).toBe(0);
    const killedAt = Date.now();
    const before = acked.size;
    await until("writes acknowledged after the kill", () => (acked.size >= before + 30 ? true : undefined), 30_000);
    const writesBackMs = Date.now() - killedAt;
    const out = await pings;
    await stop();

    // Traffic: the longest time with no echo reply arriving is the outage.
    const { arrivals, longestSilenceMs } = pingArrivals(out.stdout, interval);
    const killAt = killedAt - pingStart;
    expect(arrivals.filter((t) => t < killAt).length, `no reply before the kill (${killAt} ms in): ${out.stdout}`).toBeGreaterThan(5);
    expect(arrivals.filter((t) => t > killAt + 5000).length, `no reply after the kill: ${out.stdout}`).toBeGreaterThan(5);
    console.log(`docker kill ${SERVERS[0]} (the store's leader: ${leader}): longest gap in pod-to-pod replies ${longestSilenceMs.toFixed(0)} ms; ${out.stdout.split("\n").find((l) => l.includes("packets transmitted"))}; API writes acknowledged again ${writesBackMs} ms after the kill`);
    expect(longestSilenceMs).toBeLessThanOrEqual(5000);

    // The store: every acknowledged ConfigMap is there, once.
    const names = (await kube.list(`/api/v1/namespaces/${NS}/configmaps?labelSelector=burst%3Dr3`)).map((c) => c.metadata.name!);
    expect(new Set(names).size).toBe(names.length);
    expect([...acked].filter((n) => !names.includes(n))).toEqual([]);
    // The node-agents went on from the other servers, and the CLI attaches through the ports still served.
    for (const node of nodes) expect(SERVERS.slice(1)).toContain(await natsServerOf(node));
    const attach = await run(process.execPath, [join(REPO_ROOT, "bin/kubewire.js"), "attach", "--compose", "-p", PROJECT, "--api", `https://127.0.0.1:${ports.api}`, "--nats", natsUrls(), "--dns-port", String(ports.dns)], {
      timeoutMs: 60_000,
      env: { KUBEWIRE_STATE_DIR: join(dir, "attached") },
    });
    expect(attach.code, attach.stdout + attach.stderr).toBe(0);
    expect(attach.stdout).toMatch(new RegExp(`^attached to compose project ${PROJECT}: 2 node\\(s\\)`));

    // The killed server starts again (docker kill is a manual stop: no restart policy brings it back) and catches up.
    const start = await run("docker", ["start", victim], { timeoutMs: 30_000 });
    expect(start.code, start.stderr).toBe(0);
    const caughtUp = await until(`${SERVERS[0]} to catch up`, async () => {
      const streams = await Promise.all(SERVERS.map(streamOn));
      const seqs = streams.map((s) => s?.state.last_seq);
      return seqs.every((q) => q !== undefined && q === seqs[0]) ? streams : undefined;
    }, 60_000);
    expect(new Set(caughtUp.map((s) => s!.state.messages)).size).toBe(1);
  });
});
