/**
 * Cluster DNS end to end on three node processes: the coredns Deployment the control plane
 * creates in kube-system behind kube-dns (10.96.0.10), queried by the real `dig` from the host
 * through each node's DNS port and by the emulated resolvers and tools inside pods. Each query
 * case names the section of the Kubernetes DNS-Based Service Discovery specification (schema
 * 1.1.0, kubernetes/dns docs/specification.md) it checks; where the spec leaves room the
 * expectation is CoreDNS's (kubeadm's Corefile: `pods insecure`, ttl 30).
 *
 * Names outside the cluster go to a fake upstream on 127.0.0.1 (a dns-packet responder in this
 * process), so no query leaves the machine.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, netexecPod, until } from "./fixture.ts";

const run = promisify(execFile);
const waitFor = (what: string, probe: () => Promise<boolean>, timeoutMs?: number): Promise<true> => until(what, async () => ((await probe()) ? true : undefined), timeoutMs);
const NS = "dnstest";
const ZONE = "cluster.local";
const DNS_PORT = 1053;
let cluster: TestCluster;
let upstream: UdpSocket;
let upstreamPort = 0;
const ok = (args: string[]): Promise<string> => cluster.kubectlOk(args);

/** A fake upstream resolver: example.test A 192.0.2.10, slow.test never answered, the rest NXDOMAIN. */
async function startUpstream(): Promise<void> {
  upstream = createSocket("udp4");
  upstream.on("message", (msg, rinfo) => {
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (!question || question.name.toLowerCase() === "slow.test") return;
    const found = question.name.toLowerCase() === "example.test" && question.type === "A";
    const res = dnsPacket.encode({
      id: q.id,
      type: "response",
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (found ? 0 : 3),
      questions: q.questions,
      answers: found ? [{ name: question.name, type: "A", class: "IN", ttl: 60, data: "192.0.2.10" }] : [],
    });
    upstream.send(res, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => upstream.bind({ address: "127.0.0.1", port: 0 }, () => resolve()));
  upstreamPort = upstream.address().port;
}

interface Dig {
  status: string;
  flags: string[];
  answer: string[][];
  authority: string[][];
  additional: string[][];
  raw: string;
}

/** Real `dig` from the host to `node`'s DNS port; the sections as rows of whitespace-split fields. */
async function dig(args: string[], node = "node-1"): Promise<Dig> {
  const { stdout } = await run("dig", [`@${cluster.hostAddress(node)}`, "-p", String(DNS_PORT), "+time=3", "+tries=1", ...args], { timeout: 20_000 });
  const section = (name: string) => {
    const m = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(stdout);
    return m ? m[1]!.split("\n").filter((l) => l.trim() !== "" && !l.startsWith(";")).map((l) => l.split(/\s+/)) : [];
  };
  return {
    status: /status: (\w+)/.exec(stdout)?.[1] ?? "",
    flags: (/;; flags: ([a-z ]*);/.exec(stdout)?.[1] ?? "").trim().split(" "),
    answer: section("ANSWER"),
    authority: section("AUTHORITY"),
    additional: section("ADDITIONAL"),
    raw: stdout,
  };
}

async function getJson(args: string[]): Promise<any> {
  return JSON.parse(await ok(["get", ...args, "-o", "json"]));
}

function fqdn(name: string): string {
  return `${name}.${NS}.svc.${ZONE}.`;
}

function reverse(ip: string): string {
  return `${ip.split(".").reverse().join(".")}.in-addr.arpa.`;
}

function svc(name: string, spec: Record<string, unknown>): object {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace: NS }, spec };
}

/** A netexec pod in the test namespace, optionally with hostname/subdomain (what a StatefulSet sets). */
function pod(name: string, node: string, labels: Record<string, string>, extra: Record<string, unknown> = {}): object {
  const p = netexecPod(name, node, labels) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
  return { ...p, metadata: { ...p.metadata, namespace: NS }, spec: { ...p.spec, ...extra } };
}

const ips: Record<string, string> = {};
let webIp = "";
let nobodyIp = "";

beforeAll(async () => {
  await startUpstream();
  cluster = await TestCluster.start({ nodes: 3, nodeGraceSeconds: 4, podEvictionSeconds: 1, env: { KUBEWIRE_DNS_UPSTREAM: `127.0.0.1:${upstreamPort}` } });
  await cluster.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
  await Promise.all([
    cluster.apply(pod("web-1", "node-1", { app: "web" })),
    cluster.apply(pod("web-2", "node-2", { app: "web" })),
    cluster.apply(pod("db-0", "node-2", { app: "db" }, { hostname: "db-0", subdomain: "db" })),
    cluster.apply(pod("db-1", "node-3", { app: "db" }, { hostname: "db-1", subdomain: "db" })),
    cluster.apply(pod("anon-1", "node-3", { app: "anon" })),
    cluster.apply(pod("client", "node-3", { app: "client" })),
  ]);
  await Promise.all([
    // named ports (http, syslog/UDP) and a Service with one unnamed port
    cluster.apply(svc("web", { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: 8080 }, { name: "syslog", port: 514, protocol: "UDP", targetPort: 8081 }] })),
    cluster.apply(svc("single", { selector: { app: "web" }, ports: [{ port: 8080 }] })),
    cluster.apply(svc("nobody", { selector: { app: "nothing" }, ports: [{ name: "http", port: 80 }] })),
    cluster.apply(svc("db", { clusterIP: "None", selector: { app: "db" }, ports: [{ name: "pg", port: 5432, targetPort: 8080 }, { name: "udp", port: 9187, protocol: "UDP", targetPort: 8081 }] })),
    cluster.apply(svc("anon", { clusterIP: "None", selector: { app: "anon" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] })),
    cluster.apply(svc("ext", { type: "ExternalName", externalName: "www.example.test" })),
    // selector-less headless Services with hand-made slices: none ready, and 100 ready endpoints
    cluster.apply(svc("notready", { clusterIP: "None", ports: [{ name: "http", port: 80 }] })),
    cluster.apply(svc("big", { clusterIP: "None", ports: [{ name: "http", port: 80 }] })),
  ]);
  await cluster.apply({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: "notready-1", namespace: NS, labels: { "kubernetes.io/service-name": "notready" } },
    addressType: "IPv4",
    ports: [{ name: "http", port: 80, protocol: "TCP" }],
    endpoints: [{ addresses: ["10.244.9.1"], conditions: { ready: false } }],
  });
  await cluster.apply({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: "big-1", namespace: NS, labels: { "kubernetes.io/service-name": "big" } },
    addressType: "IPv4",
    ports: [{ name: "http", port: 80, protocol: "TCP" }],
    endpoints: Array.from({ length: 100 }, (_, i) => ({ addresses: [`10.250.${Math.floor(i / 250)}.${(i % 250) + 1}`], conditions: { ready: true } })),
  });
  for (const p of ["web-1", "web-2", "db-0", "db-1", "anon-1", "client"]) ips[p] = (await cluster.waitForPodRunning(NS, p)).podIp;
  webIp = (await getJson(["svc", "web", "-n", NS])).spec.clusterIP;
  nobodyIp = (await getJson(["svc", "nobody", "-n", NS])).spec.clusterIP;
  // DNS is up once coredns answers a name whose endpoints the test made last.
  await waitFor("cluster DNS answers the fixture", async () => {
    const r = await dig([`db.${NS}.svc.${ZONE}`, "A"]).catch(() => undefined);
    return r?.answer.length === 2;
  }, 90_000);
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
  upstream?.close();
});

describe("the coredns add-on", () => {
  it("runs as a 2-replica Deployment in kube-system behind kube-dns at 10.96.0.10, UDP and TCP 53", async () => {
    const deploy = await getJson(["deploy", "coredns", "-n", "kube-system"]);
    expect(deploy.spec.replicas).toBe(2);
    expect(deploy.status.readyReplicas).toBe(2);
    const s = await getJson(["svc", "kube-dns", "-n", "kube-system"]);
    expect(s.spec.clusterIP).toBe("10.96.0.10");
    expect(s.spec.ports.map((p: { protocol: string; port: number }) => `${p.port}/${p.protocol}`)).toEqual(expect.arrayContaining(["53/UDP", "53/TCP"]));
  });

  it("is recreated when deleted, as the addon manager does", async () => {
    await ok(["delete", "svc", "kube-dns", "-n", "kube-system"]);
    await waitFor("kube-dns is back at 10.96.0.10", async () => {
      const r = await cluster.kubectl(["get", "svc", "kube-dns", "-n", "kube-system", "-o", "jsonpath={.spec.clusterIP}"]);
      return r.code === 0 && r.stdout === "10.96.0.10";
    }, 30_000);
    await waitFor("DNS answers again", async () => (await dig([`web.${NS}.svc.${ZONE}`, "+short"]).catch(() => undefined))?.raw.includes(webIp) ?? false, 30_000);
  });

  it("kubewire info -o json gives the DNS address beside the API", async () => {
    const r = await cluster.kubewire(["info", "-o", "json"]);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.dns).toBe(`${cluster.hostAddress("node-1")}:${DNS_PORT}`);
    expect(info.api).toBe(cluster.apiUrl);
    // And what a NATS client needs: the URL, the CA and the CLI's credentials.
    expect([info.nats, info.natsCa, info.natsCreds]).toEqual([cluster.nats.url, cluster.security!.caFile, cluster.security!.cliCreds]);
  });
});

describe("dig from the host, per the DNS spec", () => {
  it("§2.2 dns-version TXT is 1.1.0", async () => {
    const r = await dig([`dns-version.${ZONE}`, "TXT"]);
    expect(r.status).toBe("NOERROR");
    expect(r.answer[0]!.slice(3)).toEqual(["TXT", '"1.1.0"']);
  });

  it("§2.3.1 A for a ClusterIP Service: its cluster IP, authoritative, TTL 30", async () => {
    const r = await dig([`web.${NS}.svc.${ZONE}`, "A"]);
    expect(r.status).toBe("NOERROR");
    expect(r.flags).toContain("aa");
    expect(r.answer).toEqual([[fqdn("web"), "30", "IN", "A", webIp]]);
  });

  it("§2.3.1 names match case-insensitively (the answer keeps the query's case)", async () => {
    const r = await dig([`WEB.DnsTest.SVC.Cluster.Local`, "A"]);
    expect(r.answer.map((a) => a[4])).toEqual([webIp]);
  });

  it("§2.3.1 A for a ClusterIP Service without endpoints still answers its cluster IP", async () => {
    const r = await dig([`nobody.${NS}.svc.${ZONE}`, "A"]);
    expect(r.answer.map((a) => a[4])).toEqual([nobodyIp]);
  });

  it("§2.3.1 AAAA of an IPv4-only Service: NODATA (NOERROR, no answer) with the zone SOA", async () => {
    const r = await dig([`web.${NS}.svc.${ZONE}`, "AAAA"]);
    expect(r.status).toBe("NOERROR");
    expect(r.answer).toEqual([]);
    expect(r.authority[0]?.[3]).toBe("SOA");
  });

  it("§2.3.1 a Service that does not exist: NXDOMAIN with the zone SOA", async () => {
    const r = await dig([`missing.${NS}.svc.${ZONE}`, "A"]);
    expect(r.status).toBe("NXDOMAIN");
    expect(r.authority[0]!.slice(0, 1).concat(r.authority[0]!.slice(3, 6))).toEqual([`${ZONE}.`, "SOA", `ns.dns.${ZONE}.`, `hostmaster.${ZONE}.`]);
  });

  it("§2.3.1 a Service in a namespace that does not exist: NXDOMAIN", async () => {
    expect((await dig([`web.nowhere.svc.${ZONE}`, "A"])).status).toBe("NXDOMAIN");
  });

  it("§2.3.1 the kubernetes Service in default answers 10.96.0.1", async () => {
    expect((await dig([`kubernetes.default.svc.${ZONE}`, "A"])).answer.map((a) => a[4])).toEqual(["10.96.0.1"]);
  });

  it("§2.3.1 kube-dns itself answers 10.96.0.10", async () => {
    expect((await dig([`kube-dns.kube-system.svc.${ZONE}`, "A"])).answer.map((a) => a[4])).toEqual(["10.96.0.10"]);
  });

  it("§2.3.1 a TXT query for a Service: NODATA", async () => {
    const r = await dig([`web.${NS}.svc.${ZONE}`, "TXT"]);
    expect([r.status, r.answer.length]).toEqual(["NOERROR", 0]);
  });

  it("§2.3.2 SRV for a named TCP port: priority 0, the port number, the Service name as target, its A in additional", async () => {
    const r = await dig([`_http._tcp.web.${NS}.svc.${ZONE}`, "SRV"]);
    expect(r.answer).toHaveLength(1);
    const [name, ttl, , type, priority, weight, port, target] = r.answer[0]!;
    expect([name, ttl, type, priority, weight, port, target]).toEqual([`_http._tcp.${fqdn("web")}`, "30", "SRV", "0", "100", "80", fqdn("web")]);
    expect(r.additional.find((a) => a[3] === "A")).toEqual([fqdn("web"), "30", "IN", "A", webIp]);
  });

  it("§2.3.2 SRV for a named UDP port", async () => {
    const r = await dig([`_syslog._udp.web.${NS}.svc.${ZONE}`, "SRV"]);
    expect(r.answer.map((a) => a[6])).toEqual(["514"]);
  });

  it("§2.3.2 a port name under the wrong protocol does not exist: NXDOMAIN", async () => {
    expect((await dig([`_http._udp.web.${NS}.svc.${ZONE}`, "SRV"])).status).toBe("NXDOMAIN");
  });

  it("§2.3.2 SRV names exist only for named ports: an unnamed port has none", async () => {
    expect((await dig([`_8080._tcp.single.${NS}.svc.${ZONE}`, "SRV"])).status).toBe("NXDOMAIN");
  });

  it("§2.3.2 an A query at a port's SRV name answers the Service's A, as CoreDNS's kubernetes plugin does", async () => {
    const r = await dig([`_http._tcp.web.${NS}.svc.${ZONE}`, "A"]);
    expect(r.answer.map((a) => a[4])).toEqual([webIp]);
  });

  it("§2.3.3 PTR for a ClusterIP names the Service", async () => {
    const r = await dig(["-x", webIp]);
    expect(r.answer).toEqual([[reverse(webIp), "30", "IN", "PTR", fqdn("web")]]);
  });

  it("§2.3.3 PTR for the cluster IP of a Service without endpoints", async () => {
    expect((await dig(["-x", nobodyIp])).answer.map((a) => a[4])).toEqual([fqdn("nobody")]);
  });

  it("§2.4.1 A for a headless Service: one record per ready endpoint", async () => {
    const r = await dig([`db.${NS}.svc.${ZONE}`, "A"]);
    expect(r.answer.map((a) => a[4]).sort()).toEqual([ips["db-0"], ips["db-1"]].sort());
    expect(r.flags).toContain("aa");
  });

  it("§2.4.1 hostname records from pod.spec.hostname when pod.spec.subdomain names the Service", async () => {
    expect((await dig([`db-0.db.${NS}.svc.${ZONE}`, "A"])).answer.map((a) => a[4])).toEqual([ips["db-0"]]);
    expect((await dig([`db-1.db.${NS}.svc.${ZONE}`, "A"])).answer.map((a) => a[4])).toEqual([ips["db-1"]]);
  });

  it("§2.4.1 an endpoint without a hostname gets an assigned one (CoreDNS: the dashed IP)", async () => {
    const dashed = ips["anon-1"]!.replace(/\./g, "-");
    expect((await dig([`${dashed}.anon.${NS}.svc.${ZONE}`, "A"])).answer.map((a) => a[4])).toEqual([ips["anon-1"]]);
  });

  it("§2.4.1 a hostname that is not an endpoint of the Service: NXDOMAIN", async () => {
    expect((await dig([`db-7.db.${NS}.svc.${ZONE}`, "A"])).status).toBe("NXDOMAIN");
  });

  it("§2.4.1 a headless Service with no ready endpoint: NXDOMAIN", async () => {
    expect((await dig([`notready.${NS}.svc.${ZONE}`, "A"])).status).toBe("NXDOMAIN");
  });

  // For a headless Service the port is the endpoint's (the EndpointSlice's, the target port):
  // there is no proxy in between, so the port a client must dial is the pod's, as CoreDNS answers.
  it("§2.4.2 SRV for a headless Service's named port: one per ready endpoint, to its hostname, with the endpoint's port", async () => {
    const r = await dig([`_pg._tcp.db.${NS}.svc.${ZONE}`, "SRV"]);
    expect(r.answer.map((a) => `${a[4]} ${a[5]} ${a[6]} ${a[7]}`).sort()).toEqual([`0 50 8080 db-0.${fqdn("db")}`, `0 50 8080 db-1.${fqdn("db")}`]);
    expect(r.additional.filter((a) => a[3] === "A").map((a) => a[4]).sort()).toEqual([ips["db-0"], ips["db-1"]].sort());
  });

  it("§2.4.2 N x M: every named port of the headless Service has a record per endpoint", async () => {
    const r = await dig([`_udp._udp.db.${NS}.svc.${ZONE}`, "SRV"]);
    expect(r.answer.map((a) => a[6])).toEqual(["8081", "8081"]);
    expect(r.answer.map((a) => a[7]).sort()).toEqual([`db-0.${fqdn("db")}`, `db-1.${fqdn("db")}`]);
  });

  it("§2.4.3 PTR for a headless endpoint's IP names its hostname record", async () => {
    expect((await dig(["-x", ips["db-0"]!])).answer.map((a) => a[4])).toEqual([`db-0.${fqdn("db")}`]);
  });

  it("§2.5.1 ExternalName: CNAME to spec.externalName", async () => {
    const r = await dig([`ext.${NS}.svc.${ZONE}`, "CNAME"]);
    expect(r.answer).toEqual([[fqdn("ext"), "30", "IN", "CNAME", "www.example.test."]]);
  });

  it("§2.5.1 ExternalName: an A query is answered with the CNAME", async () => {
    const r = await dig([`ext.${NS}.svc.${ZONE}`, "A"]);
    expect(r.answer[0]!.slice(3)).toEqual(["CNAME", "www.example.test."]);
  });

  it("pods insecure: a-b-c-d.<ns>.pod.<zone> answers a.b.c.d", async () => {
    const dashed = ips["web-1"]!.replace(/\./g, "-");
    expect((await dig([`${dashed}.${NS}.pod.${ZONE}`, "A"])).answer).toEqual([[`${dashed}.${NS}.pod.${ZONE}.`, "30", "IN", "A", ips["web-1"]]]);
  });

  it("pods insecure: a dashed IP in a namespace that does not exist is NXDOMAIN", async () => {
    expect((await dig([`10-244-0-9.nowhere.pod.${ZONE}`, "A"])).status).toBe("NXDOMAIN");
  });

  it("pods insecure: a label that is not a dashed IPv4 address is NXDOMAIN", async () => {
    expect((await dig([`1-2-3.${NS}.pod.${ZONE}`, "A"])).status).toBe("NXDOMAIN");
  });

  it("the zone apex answers SOA (ns.dns.<zone>, hostmaster.<zone>)", async () => {
    const r = await dig([ZONE, "SOA"]);
    expect(r.answer[0]!.slice(3, 6)).toEqual(["SOA", `ns.dns.${ZONE}.`, `hostmaster.${ZONE}.`]);
  });

  it("the zone apex answers NS: kube-dns.kube-system.svc.<zone>", async () => {
    expect((await dig([ZONE, "NS"])).answer.map((a) => a[4])).toEqual([`kube-dns.kube-system.svc.${ZONE}.`]);
  });

  it("§2.1 empty non-terminals exist: svc.<zone> and <ns>.svc.<zone> are NODATA, not NXDOMAIN", async () => {
    for (const name of [`svc.${ZONE}`, `${NS}.svc.${ZONE}`]) {
      const r = await dig([name, "A"]);
      expect([name, r.status, r.answer.length]).toEqual([name, "NOERROR", 0]);
    }
  });

  it("names outside the zone are forwarded to the upstream, answered without AA", async () => {
    const r = await dig(["example.test", "A"]);
    expect(r.answer.map((a) => a[4])).toEqual(["192.0.2.10"]);
    expect(r.flags).not.toContain("aa");
  });

  it("an upstream NXDOMAIN is passed through", async () => {
    expect((await dig(["nothing.test", "A"])).status).toBe("NXDOMAIN");
  });

  it("an upstream that does not answer gives SERVFAIL, in time, never a hang", async () => {
    const started = Date.now();
    const r = await dig(["slow.test", "A", "+time=5"]);
    expect(r.status).toBe("SERVFAIL");
    expect(Date.now() - started).toBeLessThan(4500);
  });

  it("a 100-endpoint headless answer over UDP without EDNS0 is truncated (TC) to 512 bytes", async () => {
    const r = await dig([`big.${NS}.svc.${ZONE}`, "A", "+noedns", "+ignore"]);
    expect(r.flags).toContain("tc");
    expect(r.answer.length).toBeLessThan(100);
    expect(Number(/MSG SIZE {2}rcvd: (\d+)/.exec(r.raw)?.[1])).toBeLessThanOrEqual(512);
  });

  it("the same answer over TCP is complete: 100 A records", async () => {
    const r = await dig([`big.${NS}.svc.${ZONE}`, "A", "+tcp"]);
    expect(r.flags).not.toContain("tc");
    expect(r.answer).toHaveLength(100);
  });

  it("EDNS0 buffer sizes are honoured: 4096 carries all 100 over UDP, dig's 1232 does not", async () => {
    const large = await dig([`big.${NS}.svc.${ZONE}`, "A", "+bufsize=4096", "+ignore"]);
    expect([large.flags.includes("tc"), large.answer.length]).toEqual([false, 100]);
    const small = await dig([`big.${NS}.svc.${ZONE}`, "A", "+bufsize=1232", "+ignore"]);
    expect(small.flags).toContain("tc");
  });

  it("dig retries a truncated answer over TCP by itself", async () => {
    const r = await dig([`big.${NS}.svc.${ZONE}`, "A", "+noedns"]);
    expect(r.raw).toContain("Truncated, retrying in TCP mode");
    expect(r.answer).toHaveLength(100);
  });

  it("every node's host address answers the same", async () => {
    for (const node of cluster.nodeNames) expect((await dig([`web.${NS}.svc.${ZONE}`, "+short"], node)).raw.trim()).toBe(webIp);
  });

  it("a Service created now is answered once the watch delivers it", async () => {
    await cluster.apply(svc("late", { selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] }));
    const ip = (await getJson(["svc", "late", "-n", NS])).spec.clusterIP;
    await waitFor("late resolves", async () => (await dig([`late.${NS}.svc.${ZONE}`, "+short"])).raw.trim() === ip, 20_000);
  });
});

describe("from pods", () => {
  const exec = (argv: string[], podName = "client") => cluster.kubectl(["exec", "-n", NS, podName, "--", ...argv]);

  it("/etc/resolv.conf is kubelet's ClusterFirst file", async () => {
    const r = await exec(["cat", "/etc/resolv.conf"]);
    expect(r.stdout).toBe(`search ${NS}.svc.${ZONE} svc.${ZONE} ${ZONE}\nnameserver 10.96.0.10\noptions ndots:5\n`);
  });

  it("curl http://web, http://web.NS, the FQDN and the ClusterIP all answer", async () => {
    for (const host of ["web", `web.${NS}`, `web.${NS}.svc.${ZONE}`, webIp]) {
      const r = await exec(["curl", "-sS", "-m", "10", `http://${host}/hostname`]);
      expect([host, r.code, ["web-1", "web-2"].includes(r.stdout)]).toEqual([host, 0, true]);
    }
  });

  it("nslookup web resolves through the search path", async () => {
    const r = await exec(["nslookup", "web"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Name:\tweb.${NS}.svc.${ZONE}`);
    expect(r.stdout).toContain(`Address: ${webIp}`);
  });

  it("getent hosts and a headless hostname via the search path", async () => {
    const r = await exec(["getent", "hosts", "db-0.db"]);
    expect(r.code).toBe(0);
    expect(r.stdout.split(/\s+/)[0]).toBe(ips["db-0"]);
  });

  it("dig +tcp of a headless Service with 100 endpoints returns all 100 while UDP is truncated", async () => {
    const tcp = await exec(["dig", "+tcp", "+short", `big.${NS}.svc.${ZONE}`]);
    expect(tcp.stdout.trim().split("\n")).toHaveLength(100);
    const udp = await exec(["dig", "+noedns", "+ignore", `big.${NS}.svc.${ZONE}`]);
    expect(udp.stdout).toMatch(/;; flags: qr aa( rd)? ra? ?tc|flags:[a-z ]* tc/);
  });

  it("the lookups are on the wire: a capture of the client's eth0 shows the queries to 10.96.0.10:53", async () => {
    const client = await cluster.waitForPodRunning(NS, "client");
    const pcap = `${cluster.logDir}/dns.pcap`;
    const cap = cluster.kubewire(["capture", "--node", client.nodeName, "--dev", `client/eth0`, "-w", pcap, "--count", "2"], { timeoutMs: 30_000 });
    await waitFor("capture running", async () => {
      await exec(["nslookup", `web.${NS}.svc.${ZONE}`]);
      return Promise.race([cap.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 300))]);
    }, 20_000);
    const { stdout } = await run("tshark", ["-r", pcap, "-Y", "dns", "-T", "fields", "-e", "ip.dst", "-e", "dns.qry.name"]);
    expect(stdout).toContain(`web.${NS}.svc.${ZONE}`);
  });
});

describe("traces of lookups", () => {
  it("kubewire trace POD NAME resolves the name in the pod, then follows the probe", async () => {
    const r = await cluster.kubewire(["trace", "-n", NS, "client", "web", "--tcp", "80"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`client resolver   web is web.${NS}.svc.${ZONE} ${webIp} (DNS, per /etc/resolv.conf)`);
    expect(r.stdout).toMatch(/\[DELIVERED\]/);
  });

  it("a UDP 53 probe is a DNS query: the trace shows the DNAT to a coredns pod and the answer coming back", async () => {
    const r = await cluster.kubewire(["trace", "-n", NS, "client", "10.96.0.10", "--udp", "53", "--query", `web.${NS}.svc.${ZONE}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`DNS query (A web.${NS}.svc.${ZONE})`);
    expect(r.stdout).toMatch(/DNAT to 10\.244\.\d+\.\d+:53 \(KUBE-SERVICES -d 10\.96\.0\.10\/32 -p udp --dport 53/);
    expect(r.stdout).toMatch(/coredns-[a-z0-9-]+ eth0 +UDP .*delivered/);
    // The answer comes back through the reverse NAT to the client's eth0, where no socket holds
    // the probe's port (the probe is not the pod's own lookup): the port is closed.
    expect(r.stdout).toMatch(/reverse NAT source 10\.244\.\d+\.\d+:53 -> 10\.96\.0\.10:53/);
    expect(r.stdout).toMatch(/client eth0 +UDP port 6\d{4} closed/);
  });
});

describe("Service environment variables", () => {
  it("are present for a Service created before the pod and absent for one created after; enableServiceLinks false turns them off", async () => {
    await cluster.apply(svc("before", { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] }));
    const beforeIp = (await getJson(["svc", "before", "-n", NS])).spec.clusterIP;
    // The node-agent must have seen the Service before the pod starts: wait for DNS to know it.
    await waitFor("before resolves", async () => (await dig([`before.${NS}.svc.${ZONE}`, "+short"])).raw.trim() === beforeIp, 20_000);
    await cluster.apply(pod("envpod", "node-2", { app: "envpod" }));
    await cluster.apply(pod("nolinks", "node-2", { app: "nolinks" }, { enableServiceLinks: false }));
    await cluster.waitForPodRunning(NS, "envpod");
    await cluster.waitForPodRunning(NS, "nolinks");
    await cluster.apply(svc("after", { selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] }));
    const env = (await cluster.kubectl(["exec", "-n", NS, "envpod", "--", "env"])).stdout;
    expect(env).toContain(`BEFORE_SERVICE_HOST=${beforeIp}\n`);
    expect(env).toContain("BEFORE_SERVICE_PORT=80\n");
    expect(env).toContain("BEFORE_SERVICE_PORT_HTTP=80\n");
    expect(env).toContain(`BEFORE_PORT=tcp://${beforeIp}:80\n`);
    expect(env).toContain(`BEFORE_PORT_80_TCP_ADDR=${beforeIp}\n`);
    expect(env).toContain("KUBERNETES_SERVICE_HOST=10.96.0.1\n");
    expect(env).not.toContain("AFTER_SERVICE_HOST");
    const nolinks = (await cluster.kubectl(["exec", "-n", NS, "nolinks", "--", "env"])).stdout;
    expect(nolinks).not.toContain("BEFORE_SERVICE_HOST");
    expect(nolinks).toContain("KUBERNETES_SERVICE_HOST=10.96.0.1\n");
  });
});

describe("failures", () => {
  it("100,000 malformed messages to the host port are counted and dropped; the server keeps answering", async () => {
    const sock = createSocket("udp4");
    const addr = cluster.hostAddress("node-1");
    const counters = async () => {
      let requests = 0;
      let bad = 0;
      for (const n of cluster.nodeNames) {
        const c = (await cluster.status(n)).counters;
        requests += c.dns_requests_total ?? 0;
        bad += (c.dns_malformed_dropped_total ?? 0) + (c.dns_formerr_total ?? 0) + (c.dns_notimp_total ?? 0);
      }
      return { requests, bad };
    };
    const before = await counters();
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const kinds = [
      () => Uint8Array.from({ length: 1 + Math.floor(rnd() * 60) }, () => Math.floor(rnd() * 256)),
      // a compression pointer to itself in the question name
      () => Uint8Array.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01]),
      // a question cut short
      () => Uint8Array.from([0x12, 0x35, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x03, 0x77, 0x65]),
      // a 64-byte label
      () => Uint8Array.from([0x12, 0x36, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x40, ...new Array(64).fill(0x61), 0x00, 0x00, 0x01, 0x00, 0x01]),
    ];
    const TOTAL = 100_000;
    // Closed loop: a burst the host socket's buffer holds (~150 small datagrams in the default
    // 208 KiB rmem), then wait until the server has counted all sent so far. A datagram the
    // kernel dropped for a full buffer would never be counted and the wait would fail.
    const CHUNK = 150;
    let after = before;
    for (let sent = 0; sent < TOTAL; ) {
      for (let i = 0; i < CHUNK && sent < TOTAL; i++, sent++) sock.send(kinds[sent % kinds.length]!(), DNS_PORT, addr);
      const deadline = Date.now() + 10_000;
      while ((after = await counters()).requests - before.requests < sent) {
        if (Date.now() > deadline) throw new Error(`sent ${sent}, the servers counted ${after.requests - before.requests}`);
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    sock.close();
    expect(after.requests - before.requests).toBe(TOTAL);
    expect(after.bad - before.bad).toBeGreaterThanOrEqual(TOTAL * 0.99);
    expect((await dig([`web.${NS}.svc.${ZONE}`, "+short"])).raw.trim()).toBe(webIp);
  }, 120_000);

  it("kill -9 of a node hosting a coredns pod: lookups from pods keep succeeding, and the Deployment brings the replica back on a Ready node", async () => {
    const corePods = async () => (await getJson(["pods", "-n", "kube-system", "-l", "k8s-app=kube-dns"])).items as Array<{ metadata: { name: string; deletionTimestamp?: string }; spec: { nodeName?: string }; status: { phase?: string } }>;
    // The replicas must be on two nodes (the preferred anti-affinity); a restart re-spreads them if not.
    let pods = await corePods();
    if (new Set(pods.map((p) => p.spec.nodeName)).size < 2) {
      await ok(["rollout", "restart", "deployment/coredns", "-n", "kube-system"]);
      await waitFor("coredns on two nodes", async () => {
        pods = (await corePods()).filter((p) => !p.metadata.deletionTimestamp && p.status.phase === "Running");
        return pods.length === 2 && new Set(pods.map((p) => p.spec.nodeName)).size === 2;
      }, 60_000);
    }
    // The node to kill hosts a coredns pod but not the client pod (node-3).
    const victim = pods.map((p) => p.spec.nodeName!).find((n) => n !== "node-3")!;
    expect(victim).toBeDefined();
    await cluster.kill9(victim);
    // Until the endpoints update, a lookup whose flow lands on the dead replica times out and the
    // resolver retries; once the node is NotReady the lookups all go to the survivor.
    await waitFor("lookups succeed 10 times in a row", async () => {
      for (let i = 0; i < 10; i++) {
        const r = await cluster.kubectl(["exec", "-n", NS, "client", "--", "nslookup", `web.${NS}.svc.${ZONE}`]);
        if (r.code !== 0) return false;
      }
      return true;
    }, 60_000);
    await waitFor("coredns has 2 Running replicas on Ready nodes other than the killed one", async () => {
      const live = (await corePods()).filter((p) => !p.metadata.deletionTimestamp && p.status.phase === "Running");
      return live.length === 2 && live.every((p) => p.spec.nodeName !== victim);
    }, 60_000);
    cluster.startNode(victim);
    await cluster.waitForNode(victim);
  }, 180_000);
});

describe("pods with dnsPolicy None and a dnsConfig", () => {
  it("get exactly the resolv.conf the dnsConfig says", async () => {
    await cluster.apply(pod("custom", "node-3", { app: "custom" }, { dnsPolicy: "None", dnsConfig: { nameservers: ["10.96.0.10"], searches: ["example.test"], options: [{ name: "ndots", value: "2" }] } }));
    await cluster.waitForPodRunning(NS, "custom");
    const r = await cluster.kubectl(["exec", "-n", NS, "custom", "--", "cat", "/etc/resolv.conf"]);
    expect(r.stdout).toBe("search example.test\nnameserver 10.96.0.10\noptions ndots:2\n");
  });
});
