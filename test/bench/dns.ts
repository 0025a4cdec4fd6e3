/**
 * npm run bench:dns — cluster DNS throughput, on 3 node processes:
 *
 * 1. The ceiling, measured in the same run: Debian's dnsperf against a bare dns-packet UDP
 *    responder (decode, answer one A, encode) in its own Node.js process on 127.0.0.1.
 * 2. dnsperf against node-1's host DNS port: each query is relayed into the emulator to the
 *    kube-dns Service, DNATed by kube-proxy to a coredns pod (on node-1 or across the overlay),
 *    answered from the node's data and relayed back (aim: 0.5x of the ceiling).
 * 3. In-cluster lookups/s: the emulated dnsperf in one pod per node at once, against 10.96.0.10.
 *
 * Env: BENCH_DNS_SECONDS (10), BENCH_DNS_CLIENTS (dnsperf -c, 4), BENCH_DNS_OUTSTANDING (-q, 100).
 */
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { TestCluster, netexecPod, until } from "../integration/fixture.ts";

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_DNS_SECONDS ?? 10);
const CLIENTS = Number(process.env.BENCH_DNS_CLIENTS ?? 4);
const OUTSTANDING = Number(process.env.BENCH_DNS_OUTSTANDING ?? 100);
const NS = "bench";
const NAMES = ["web", "api", "db", "cache", "queue"].map((s) => `${s}.${NS}.svc.cluster.local A`);

interface Perf {
  qps: number;
  avgLatencyMs: number;
  completedPct: number;
  lost: number;
}

function parsePerf(out: string): Perf {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    completedPct: num(/Queries completed:\s+\d+ \(([\d.]+)%\)/),
    lost: num(/Queries lost:\s+(\d+)/),
  };
}

async function dnsperf(server: string, port: number, dataFile: string): Promise<Perf> {
  const { stdout } = await run("dnsperf", ["-s", server, "-p", String(port), "-d", dataFile, "-l", String(SECONDS), "-c", String(CLIENTS), "-q", String(OUTSTANDING), "-t", "2"], { timeout: (SECONDS + 30) * 1000 });
  return parsePerf(stdout);
}

/** The ceiling: dns-packet decode, one A answer, encode, in a process of its own. */
async function bareResponder(): Promise<{ port: number; stop: () => void }> {
  const code = `
    const dgram = require("node:dgram"); const dnsPacket = require("dns-packet");
    const s = dgram.createSocket("udp4");
    s.on("message", (msg, r) => {
      let q; try { q = dnsPacket.decode(msg); } catch { return; }
      const res = dnsPacket.encode({ id: q.id, type: "response", flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED, questions: q.questions,
        answers: (q.questions || []).map((x) => ({ name: x.name, type: "A", class: "IN", ttl: 30, data: "10.96.0.20" })) });
      s.send(res, r.port, r.address);
    });
    s.bind(0, "127.0.0.1", () => console.log(s.address().port));`;
  const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"], cwd: process.cwd() });
  const port = await new Promise<number>((resolve) => child.stdout.once("data", (d: Buffer) => resolve(Number(String(d).trim()))));
  return { port, stop: () => child.kill() };
}

function fmt(p: Perf): string {
  return `${Math.round(p.qps)} queries/s, avg latency ${p.avgLatencyMs.toFixed(2)} ms, ${p.completedPct}% completed (${p.lost} lost)`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "kubewire-bench-dns-"));
  const dataFile = join(dir, "queries.txt");
  writeFileSync(dataFile, `${NAMES.join("\n")}\n`);
  const bare = await bareResponder();
  let cluster: TestCluster | undefined;
  try {
    console.log(`dnsperf -c ${CLIENTS} -q ${OUTSTANDING} -l ${SECONDS} (${NAMES.length} names, A)`);
    const ceiling = await dnsperf("127.0.0.1", bare.port, dataFile);
    console.log(`ceiling, bare dns-packet responder:   ${fmt(ceiling)}`);

    cluster = await TestCluster.start({ nodes: 3 });
    await cluster.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    for (const name of ["web", "api", "db", "cache", "queue"]) {
      await cluster.apply({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: NS }, spec: { selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080 }] } });
    }
    const dnsAt = cluster.hostAddress("node-1");
    await until("cluster DNS answers", async () => {
      const { stdout } = await run("dig", [`@${dnsAt}`, "-p", "1053", "+short", "+time=1", "+tries=1", `queue.${NS}.svc.cluster.local`]).catch(() => ({ stdout: "" }));
      return stdout.trim() !== "" ? true : undefined;
    }, 90_000);
    const placement = JSON.parse(await cluster.kubectlOk(["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json"])).items.map((p: { spec: { nodeName: string } }) => p.spec.nodeName);
    console.log(`coredns replicas on: ${placement.join(", ")}`);
    const host = await dnsperf(dnsAt, 1053, dataFile);
    console.log(`kubewire host DNS port (node-1):      ${fmt(host)}`);
    console.log(`ratio to the ceiling: ${(host.qps / ceiling.qps).toFixed(2)}x (aim >= 0.5x)`);

    // In-cluster: one client pod per node, the data file fetched into it with curl -o from netexec's /echo.
    await Promise.all(cluster.nodeNames.map((n) => cluster!.apply({ ...(netexecPod(`client-${n}`, n, { app: "client" }) as object), metadata: { name: `client-${n}`, namespace: NS, labels: { app: "client" } } })));
    for (const n of cluster.nodeNames) await cluster.waitForPodRunning(NS, `client-${n}`);
    const msg = encodeURIComponent(`${NAMES.join("\n")}\n`);
    for (const n of cluster.nodeNames) await cluster.kubectlOk(["exec", "-n", NS, `client-${n}`, "--", "curl", "-s", "-o", "/tmp/queries.txt", `http://127.0.0.1:8080/echo?msg=${msg}`]);
    const results = await Promise.all(
      cluster.nodeNames.map(async (n) => parsePerf(await cluster!.kubectlOk(["exec", "-n", NS, `client-${n}`, "--", "dnsperf", "-s", "10.96.0.10", "-d", "/tmp/queries.txt", "-l", String(SECONDS), "-q", String(OUTSTANDING)], (SECONDS + 60) * 1000))),
    );
    results.forEach((r, i) => console.log(`in-cluster dnsperf in a pod on ${cluster!.nodeNames[i]}:   ${fmt(r)}`));
    console.log(`in-cluster lookups/s, all nodes at once: ${Math.round(results.reduce((s, r) => s + r.qps, 0))}`);
  } finally {
    bare.stop();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
