/**
 * docker-compose.yml run for real: the images built (deploy/local-images.sh makes the base images
 * locally, Docker Hub being out of reach), `compose up`, and the cluster used from the host only
 * through the ports the file publishes on 127.0.0.1: kubectl against the API, the kubewire CLI
 * and the pods' exec over the published NATS port (TLS, with the CLI's identity, copied out of the
 * pki container as `kubewire attach` does), dig to the gateway's DNS, HTTP to its NodePort range;
 * NATS refuses anonymous and plain-text clients, and nodes hold no secret but their own identity.
 * Then the failures a compose user meets: `docker kill` of a node, `compose restart nats`,
 * and `--scale`. Each run is its own compose project with its own host ports, removed in afterAll
 * (`down -v --remove-orphans`; the images stay for the next run). Skipped, with the reason printed,
 * only where no Docker engine can be started (deploy/docker-engine.sh says why).
 */
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApiError, KubeClient, paths, renderKubeconfig, type KubeObjectLike } from "../../cluster/kube-client.ts";
import { connectNats, readNatsAuth, request } from "../../cluster/rpc.ts";
import { Subjects, type ExecResult } from "../../cluster/types.ts";
import { REPO_ROOT, freePort } from "../../cli/processes.ts";
import { composeCliMaterial, servedCertificate } from "../../cli/compose.ts";
import { dockerSetup, freePortRange, run } from "./compose-fixture.ts";
import { NETEXEC_IMAGE, until } from "./fixture.ts";

const docker = await dockerSetup();
if (docker.kind === "unavailable") console.warn(`compose.test.ts skipped: no Docker engine here: ${docker.reason}`);

/**
 * What a client that speaks NATS without TLS gets from 127.0.0.1:port: the server's INFO line,
 * and everything else it sends until it closes the connection (after a CONNECT and a PING).
 */
function plainTextNats(port: number, timeoutMs = 10_000): Promise<{ info: string; after: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, "127.0.0.1");
    let text = "";
    let info = "";
    const timer = setTimeout(() => (socket.destroy(), resolve({ info, after: text, closed: false })), timeoutMs);
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      if (!info && text.includes("\r\n")) {
        info = text.slice(0, text.indexOf("\r\n"));
        text = text.slice(info.length + 2);
        socket.write('CONNECT {"verbose":false,"pedantic":false,"tls_required":false}\r\nPING\r\n');
      }
    });
    socket.once("error", (err) => (clearTimeout(timer), info ? resolve({ info, after: text, closed: true }) : reject(err)));
    socket.once("close", () => (clearTimeout(timer), resolve({ info, after: text, closed: true })));
  });
}

/** One DNS A query over UDP to 127.0.0.1:port; the answer's addresses. */
async function digA(port: number, name: string): Promise<string[]> {
  const r = await run("dig", ["@127.0.0.1", "-p", String(port), name, "A", "+short", "+time=2", "+tries=2"], { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`dig exited ${r.code}: ${r.stdout}${r.stderr}`);
  return r.stdout.split("\n").filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l));
}

/** Sends one UDP datagram to 127.0.0.1:port and waits for the echo. */
function udpEcho(port: number, text: string, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createSocket("udp4");
    const timer = setTimeout(() => (sock.close(), reject(new Error("no UDP echo"))), timeoutMs);
    sock.once("message", (msg) => (clearTimeout(timer), sock.close(), resolve(msg.toString())));
    sock.send(text, port, "127.0.0.1");
  });
}

const PROJECT = `kubewire-test-${randomBytes(4).toString("hex")}`;
const NS = "compose";
const TOKEN = "kubewire-compose-dev-token-change-me"; // the compose file's
/** The first NodePort of the gateway's published range (the compose file's container side). */
const NODEPORT_BASE = 30000;

interface NodeView {
  name: string;
  ready: boolean;
}

function nodeViews(list: { items: KubeObjectLike[] }): NodeView[] {
  return list.items.map((n) => ({
    name: n.metadata.name!,
    ready: ((n.status?.conditions ?? []) as Array<{ type: string; status: string }>).some((c) => c.type === "Ready" && c.status === "True"),
  }));
}

// Each case waits on containers and node health for minutes at most (its own bounded waits).
describe.skipIf(docker.kind !== "ready")("docker compose", { timeout: 600_000 }, () => {
  const compose = docker.kind === "ready" ? docker.compose : [];
  const dir = mkdtempSync(join(tmpdir(), "kubewire-compose-"));
  const ports = { api: 0, nats: 0, dns: 0, nodePorts: 0 };
  let env: Record<string, string> = {};
  let kube: KubeClient;
  let nc: NatsConnection | undefined;
  /** The cluster CA and the CLI's credentials, from the pki container. */
  let material: { ca: string; creds: string };
  const kubeconfig = join(dir, "kubeconfig");
  /** Pods pinned one per node of the first three, name -> where and IP. */
  const pinned = new Map<string, { node: string; ip: string }>();
  let killed = "";

  const dc = (args: string[], timeoutMs = 120_000) => run(compose[0]!, [...compose.slice(1), "-p", PROJECT, "-f", "docker-compose.yml", ...args], { timeoutMs, env });
  async function dcOk(args: string[], timeoutMs?: number): Promise<string> {
    const r = await dc(args, timeoutMs);
    if (r.code !== 0) throw new Error(`${compose.join(" ")} ${args.join(" ")} exited ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }
  const kubectl = (args: string[]) => run("/usr/bin/kubectl", args, { timeoutMs: 60_000, env: { KUBECONFIG: kubeconfig } });
  async function kubectlOk(args: string[]): Promise<string> {
    const r = await kubectl(args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }
  async function nodes(): Promise<NodeView[]> {
    return nodeViews(JSON.parse(await kubectlOk(["get", "nodes", "-o", "json"])) as { items: KubeObjectLike[] });
  }
  function podExec(pod: string, node: string, argv: string[]): Promise<ExecResult> {
    return request<ExecResult>(nc!, Subjects.node(node, "exec"), { namespace: NS, pod, argv }, 30_000);
  }
  async function apply(manifest: object): Promise<void> {
    const file = join(dir, `m-${randomBytes(3).toString("hex")}.json`);
    writeFileSync(file, JSON.stringify(manifest));
    await kubectlOk(["apply", "-f", file]);
  }
  const isNotFound = (err: unknown) => err instanceof KubeApiError && err.status.code === 404;

  beforeAll(async () => {
    const images = await run("bash", ["deploy/local-images.sh"], { timeoutMs: 600_000 });
    if (images.code !== 0) throw new Error(`deploy/local-images.sh exited ${images.code}: ${images.stderr}`);
    ports.api = await freePort();
    ports.nats = await freePort();
    ports.dns = await freePort();
    ports.nodePorts = await freePortRange(10);
    env = {
      KUBEWIRE_COMPOSE_API_PORT: String(ports.api),
      KUBEWIRE_COMPOSE_NATS_PORT: String(ports.nats),
      KUBEWIRE_COMPOSE_DNS_PORT: String(ports.dns),
      KUBEWIRE_COMPOSE_NODEPORTS: `${ports.nodePorts}-${ports.nodePorts + 9}`,
    };
    await dcOk(["build"], 900_000);
    await dcOk(["up", "-d"], 300_000);
    const ca = await until("the API's TLS certificate", () => servedCertificate("127.0.0.1", ports.api), 120_000);
    const apiUrl = `https://127.0.0.1:${ports.api}`;
    kube = new KubeClient(apiUrl, TOKEN, ca);
    writeFileSync(kubeconfig, renderKubeconfig(apiUrl, TOKEN, ca));
    // NATS takes the CLI's identity, verifying the cluster CA; as `kubewire attach` gets them.
    material = await composeCliMaterial({ project: PROJECT });
    const natsCa = join(dir, "ca.pem");
    const natsCreds = join(dir, "cli.creds");
    writeFileSync(natsCa, material.ca);
    writeFileSync(natsCreds, material.creds, { mode: 0o600 });
    // The kubewire CLI finds this cluster as it finds one `kubewire up` started (--state-dir).
    writeFileSync(join(dir, "cluster.json"), JSON.stringify({ natsUrl: `tls://127.0.0.1:${ports.nats}`, natsCa, natsCreds, apiUrl, token: TOKEN, ca, stateDir: dir, dnsPort: ports.dns, processes: [] }));
    nc = await connectNats(`tls://127.0.0.1:${ports.nats}`, "kubewire-compose-test", readNatsAuth({ ca: natsCa, creds: natsCreds }, "cli"));
  }, 1_500_000);

  afterAll(async () => {
    await nc?.close().catch(() => {});
    if (docker.kind === "ready") {
      const down = await dc(["down", "-v", "--remove-orphans", "--timeout", "5"], 180_000);
      if (down.code !== 0) console.warn(`compose down exited ${down.code}: ${down.stderr}`);
    }
    rmSync(dir, { recursive: true, force: true });
  }, 200_000);

  it("brings up three nodes that kubectl on the host lists Ready", async () => {
    const ready = await until(
      "three Ready nodes",
      async () => {
        const list = await nodes();
        return list.length === 3 && list.every((n) => n.ready) ? list : undefined;
      },
      120_000,
    );
    expect(ready.map((n) => n.name)).toContain("gateway");
    const table = await kubectlOk(["get", "nodes"]);
    for (const n of ready) expect(table).toMatch(new RegExp(`^${n.name}\\s+Ready\\s`, "m"));
  });

  it("refuses anonymous and plain-text NATS clients on the published port", async () => {
    const anonymous = await connect({ servers: `tls://127.0.0.1:${ports.nats}`, tls: { ca: material.ca }, maxReconnectAttempts: 0, reconnect: false }).then(
      (c) => c.close().then(() => undefined),
      (e: Error & { code?: string }) => e,
    );
    expect(anonymous?.code).toBe("AUTHORIZATION_VIOLATION");
    // Without TLS: the server announces it is required, and closes on a CONNECT in plain text, unanswered.
    const plain = await plainTextNats(ports.nats);
    expect(plain.info).toMatch(/^INFO .*"tls_required":\s*true/);
    expect(plain.closed, "the server kept a plain-text connection open").toBe(true);
    expect(plain.after).not.toMatch(/PONG/);
  });

  it("gives a node no secret but the identity it was issued", async () => {
    const [gateway] = (await dcOk(["ps", "-q", "gateway"])).split("\n").filter(Boolean);
    const names = ["issuer.json", "*.creds", "ca.key", "nats-server.key", "bootstrap-token", "trust.json"].flatMap((n, i) => [...(i ? ["-o"] : []), "-name", n]);
    const found = await run("docker", ["exec", gateway!, "find", "/", "(", "-path", "/proc", "-o", "-path", "/sys", ")", "-prune", "-o", "(", ...names, ")", "-print"], { timeoutMs: 60_000 });
    expect(found.stdout.split("\n").filter(Boolean), found.stderr).toEqual(["/tmp/kubewire/nats.creds"]);
  });

  it("runs pods on every node that reach each other, a Service, cluster DNS and a NodePort from the host", async () => {
    const nodeNames = (await nodes()).map((n) => n.name).sort();
    await kubectlOk(["create", "namespace", NS]);
    await Promise.all(
      nodeNames.map((node, i) =>
        apply({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: `web-${i}`, namespace: NS, labels: { app: "web" } },
          spec: { nodeName: node, containers: [{ name: "app", image: NETEXEC_IMAGE, args: ["netexec", "--http-port=8080", "--udp-port=8081"], ports: [{ containerPort: 8080 }, { containerPort: 8081, protocol: "UDP" }] }] },
        }),
      ),
    );
    await apply({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web", namespace: NS },
      spec: {
        type: "NodePort",
        selector: { app: "web" },
        ports: [
          { name: "http", port: 80, targetPort: 8080, nodePort: NODEPORT_BASE },
          { name: "udp", port: 81, targetPort: 8081, protocol: "UDP", nodePort: NODEPORT_BASE + 1 },
        ],
      },
    });
    for (const [i, node] of nodeNames.entries()) {
      const pod = await until(`web-${i} Running`, async () => {
        const p = await kube.get(paths.pod(NS, `web-${i}`));
        return p.status?.phase === "Running" && p.status.podIP ? (p.status.podIP as string) : undefined;
      }, 60_000);
      pinned.set(`web-${i}`, { node, ip: pod });
    }
    // Every pod to every other pod (same pod network across the containers' node-agents), and to the Service.
    const vip = (await kube.get(`${paths.services(NS)}/web`)).spec.clusterIP as string;
    for (const [from, a] of pinned) {
      for (const [to, b] of pinned) {
        if (from === to) continue;
        const r = await podExec(from, a.node, ["curl", "-s", "-m", "5", `http://${b.ip}:8080/hostname`]);
        expect(r, `${from} (${a.node}) -> ${to} (${b.node})`).toMatchObject({ exitCode: 0, stdout: to });
      }
      const viaService = await until(`${from} reaches the Service`, async () => {
        const r = await podExec(from, a.node, ["curl", "-s", "-m", "5", `http://web.${NS}.svc.cluster.local/hostname`]);
        return r.exitCode === 0 ? r.stdout : undefined;
      }, 30_000);
      expect([...pinned.keys()]).toContain(viaService);
    }
    // The same through the user's tools on the host: kubectl exec, and the kubewire CLI (--state-dir).
    const [first] = [...pinned.entries()][0]!;
    const [, other] = [...pinned.entries()][1]!;
    expect((await kubectlOk(["exec", "-n", NS, first, "--", "curl", "-s", "-m", "5", `http://${other.ip}:8080/hostname`])).trim()).toBe("web-1");
    const cli = await run(process.execPath, [join(REPO_ROOT, "bin/kubewire.js"), "exec", "--state-dir", dir, "-n", NS, first, "--", "ping", "-c", "1", other.ip], { timeoutMs: 60_000 });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/1 packets transmitted, 1 (packets )?received/);

    expect(await digA(ports.dns, `web.${NS}.svc.cluster.local`)).toEqual([vip]);
    const hostname = await until("the NodePort answers on the host", async () => {
      const res = await fetch(`http://127.0.0.1:${ports.nodePorts}/hostname`, { signal: AbortSignal.timeout(5_000) });
      return res.ok ? await res.text() : undefined;
    }, 30_000);
    expect([...pinned.keys()]).toContain(hostname);
    expect(await until("the UDP NodePort echoes", () => udpEcho(ports.nodePorts + 1, "echo hello"), 20_000)).toBe("hello");
  });

  it("takes a killed node's container NotReady and moves its pods to the other nodes", async () => {
    await apply({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "mover", namespace: NS },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "mover" } },
        template: { metadata: { labels: { app: "mover" } }, spec: { containers: [{ name: "app", image: NETEXEC_IMAGE, args: ["netexec", "--http-port=8080"] }] } },
      },
    });
    const livePods = async (exclude = "") =>
      (await kube.list(`${paths.pods(NS)}?labelSelector=app%3Dmover`)).filter(
        (p) => !p.metadata.deletionTimestamp && p.status?.phase === "Running" && p.spec.nodeName !== exclude && (p.status.conditions ?? []).some((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True"),
      );
    const before = await until("3 mover pods Running", async () => ((await livePods()).length === 3 ? await livePods() : undefined), 90_000);
    // The victim: a node other than the gateway (the host's way in) that runs a mover pod.
    killed = before.map((p) => p.spec.nodeName as string).find((n) => n !== "gateway") ?? "";
    expect(killed, `every mover pod is on the gateway: ${before.map((p) => p.spec.nodeName).join(", ")}`).not.toBe("");
    // The node's name is its container's hostname: the container ID's first 12 characters.
    const containers = (await dcOk(["ps", "-q", "node"])).split("\n").filter(Boolean);
    const container = containers.find((id) => id.startsWith(killed));
    expect(container, `no container of service node is ${killed}: ${containers.join(", ")}`).toBeDefined();
    const movedPods = before.filter((p) => p.spec.nodeName === killed).map((p) => p.metadata.name);
    const kill = await run("docker", ["kill", container!], { timeoutMs: 60_000 });
    expect(kill.code, kill.stderr).toBe(0);

    // Kubernetes: NotReady once heartbeats stop for the grace period (here seconds), then the
    // NoExecute taint evicts the pods and their ReplicaSet replaces them on the live nodes.
    await until(`${killed} NotReady`, async () => ((await nodes()).find((n) => n.name === killed)?.ready === false ? true : undefined), 90_000);
    expect(await kubectlOk(["get", "node", killed])).toMatch(new RegExp(`^${killed}\\s+NotReady`, "m"));
    const after = await until("3 mover pods Running on live nodes", async () => {
      const live = await livePods(killed);
      return live.length === 3 ? live : undefined;
    }, 240_000);
    expect(after.every((p) => p.spec.nodeName !== killed)).toBe(true);
    for (const name of movedPods) expect(after.map((p) => p.metadata.name)).not.toContain(name);
  });

  it("loses nothing when NATS restarts: every object created before is still there", async () => {
    await kubectlOk(["create", "configmap", "before-restart", "-n", NS, "--from-literal=k=v"]);
    const snapshot = async () => {
      const lists = await Promise.all([
        kube.list("/api/v1/namespaces"),
        kube.list(paths.services(NS)),
        kube.list(`/api/v1/namespaces/${NS}/configmaps`),
        kube.list(`/apis/apps/v1/namespaces/${NS}/deployments`),
        kube.list(paths.nodes()),
        kube.list(paths.pods(NS)).then((pods) => pods.filter((p) => p.spec.nodeName !== killed)),
      ]);
      return new Map(lists.flat().map((o) => [o.metadata.uid!, `${o.kind ?? ""} ${o.metadata.namespace ?? ""}/${o.metadata.name}`]));
    };
    const before = await snapshot();
    expect(before.size).toBeGreaterThan(10);
    await dcOk(["restart", "nats"], 120_000);
    const after = await until("the API reads its store again", async () => {
      await kube.request("GET", "/readyz");
      return snapshot();
    }, 120_000);
    const lost = [...before].filter(([uid]) => !after.has(uid)).map(([, what]) => what);
    expect(lost).toEqual([]);
    expect((await kube.get(`/api/v1/namespaces/${NS}/configmaps/before-restart`)).data).toEqual({ k: "v" });
    // The node-agents reconnect: the live nodes are Ready again and serve exec.
    await until("the live nodes Ready after the restart", async () => {
      const list = await nodes();
      return list.filter((n) => n.name !== killed).every((n) => n.ready) ? true : undefined;
    }, 90_000);
    const [name, pod] = [...pinned.entries()].find(([, p]) => p.node !== killed)!;
    const r = await until("exec over NATS after its restart", async () => {
      const res = await podExec(name, pod.node, ["hostname"]).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
      return res?.exitCode === 0 ? res : undefined;
    }, 60_000);
    expect(r.stdout.trim()).toBe(name);
  });

  it("adds a node that becomes Ready with --scale", async () => {
    const known = new Set((await nodes()).map((n) => n.name));
    // gateway + node x2 by default: node=3 is one node more (the killed container starts again too).
    await dcOk(["up", "-d", "--scale", "node=3"], 300_000);
    const added = await until(
      "a new Ready node",
      async () => {
        const fresh = (await nodes()).filter((n) => !known.has(n.name));
        return fresh.length === 1 && fresh[0]!.ready ? fresh[0]! : undefined;
      },
      120_000,
    );
    expect(await kubectlOk(["get", "node", added.name])).toMatch(new RegExp(`^${added.name}\\s+Ready`, "m"));
    // pki ran again with that `up`, and kept the material: the new node joined with it.
    expect((await composeCliMaterial({ project: PROJECT })).ca).toBe(material.ca);
  });

  it("kubewire attach --compose; kubewire chaos pauses, kills and restarts a node's container and NATS; the invariants hold after", async () => {
    const stateDir = join(dir, "attached");
    const kw = (args: string[], timeoutMs = 180_000) => run(process.execPath, [join(REPO_ROOT, "bin/kubewire.js"), ...args], { timeoutMs, env: { KUBEWIRE_STATE_DIR: stateDir } });
    const kwOk = async (args: string[]) => {
      const r = await kw(args);
      if (r.code !== 0) throw new Error(`kubewire ${args.join(" ")} exited ${r.code}\n${r.stdout}${r.stderr}`);
      return r.stdout;
    };
    expect(await kwOk(["attach", "--compose", "-p", PROJECT, "--api", `https://127.0.0.1:${ports.api}`, "--nats", `tls://127.0.0.1:${ports.nats}`, "--dns-port", String(ports.dns)])).toMatch(
      new RegExp(`^attached to compose project ${PROJECT}: \\d+ node\\(s\\)`),
    );
    const status = async (name: string) => (await run("docker", ["inspect", "-f", "{{.State.Status}}", name], { timeoutMs: 30_000 })).stdout.trim();
    // A replica's node name is its container's hostname, the id's first 12 characters.
    const victim = (await nodes()).find((n) => n.name !== "gateway" && n.ready)!.name;
    expect(await kwOk(["chaos", "pause", victim])).toMatch(new RegExp(`^paused ${victim} \\(docker pause`));
    expect(await status(victim)).toBe("paused");
    expect(await kwOk(["chaos", "resume", victim])).toMatch(/^resumed/);
    expect(await status(victim)).toBe("running");
    expect(await kwOk(["chaos", "kill", victim])).toMatch(/^killed/);
    expect(await status(victim)).toBe("exited");
    expect((await kw(["chaos", "pause", victim])).stderr).toMatch(/is exited; start it with: kubewire chaos restart/);
    expect(await kwOk(["chaos", "restart", victim])).toMatch(new RegExp(`^restarted ${victim} \\(docker restart .*\\), serving again after \\d+ ms`));
    await until(`${victim} Ready again`, async () => ((await nodes()).find((n) => n.name === victim)?.ready ? true : undefined), 120_000);
    expect(await kwOk(["chaos", "restart", "nats"])).toMatch(/^restarted nats/);
    const check = await kw(["chaos", "check", "--wait", "120s"], 200_000);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/all invariants hold/);
  });
});
