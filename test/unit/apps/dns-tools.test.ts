/**
 * dig, nslookup, getent, env and the name-taking tools (curl, ping) inside a pod whose
 * /etc/resolv.conf names a DNS server made of the pure engine (answer.ts on the fixture cluster)
 * on UDP and TCP 53 of 10.96.0.10; in-memory networks and a virtual clock.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { IcmpRepr, Ipv4Packet } from "../../../overlay/wire/index.ts";
import type { Netns } from "../../../node-agent/netns.ts";
import { PodFs } from "../../../node-agent/tools/fs.ts";
import type { ToolContext } from "../../../node-agent/tools/common.ts";
import { runTool } from "../../../node-agent/tools/index.ts";
import { cluster as dnsCluster } from "../dns/fixtures.ts";
import { dnsServer } from "../dns/server-harness.ts";
import { mulberry32 } from "../wire/rng.ts";
import { cluster } from "./harness.ts";

const RESOLV = "search demo.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";
const HOSTS = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n10.244.2.7\tclient-pod\n";
const WHEN = new Date(Date.UTC(2024, 4, 6, 7, 8, 9));

let cleanup: Array<() => void> = [];
afterEach(() => {
  cleanup.forEach((f) => f());
  cleanup = [];
});

/** A client pod (10.244.2.7) with resolv.conf and hosts; the server pod 10.244.1.5 runs netexec. */
function env(opts: { resolv?: string } = {}) {
  const e = cluster([{ name: "netexec", image: "registry.k8s.io/e2e-test-images/agnhost:2.53", args: ["netexec", "--http-port=8080"], ports: [] }]);
  cleanup.push(() => e.apps.stop());
  const dns = dnsServer(e.udp, e.tcp, "10.96.0.10", dnsCluster());
  cleanup.push(dns.close);
  const fs = new PodFs({ now: () => WHEN });
  fs.write("/etc/resolv.conf", new TextEncoder().encode(opts.resolv ?? RESOLV));
  fs.write("/etc/hosts", new TextEncoder().encode(HOSTS));
  const ctx: ToolContext = { ...e.ctx, fs, random: mulberry32(42), wallTime: () => WHEN, env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOSTNAME: "client-pod", WEB_SERVICE_HOST: "10.96.0.20" } };
  return { ...e, ctx, dns, run: (...argv: string[]) => runTool(ctx, argv) };
}

describe("dig", () => {
  it("prints BIND 9.18's full output: greeting, header, OPT with the echoed cookie, sections, statistics", async () => {
    const { run, dns } = env();
    const r = await run("dig", "web.demo.svc.cluster.local");
    const q = dns.seen[0]!;
    expect(dns.names()).toEqual(["udp web.demo.svc.cluster.local"]);
    expect(r).toEqual({
      exitCode: 0,
      stderr: "",
      stdout: [
        "",
        "; <<>> DiG 9.18.30 <<>> web.demo.svc.cluster.local",
        ";; global options: +cmd",
        ";; Got answer:",
        `;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: ${q.id}`,
        ";; flags: qr aa rd ra; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1",
        "",
        ";; OPT PSEUDOSECTION:",
        "; EDNS: version: 0, flags:; udp: 1232",
        `; COOKIE: ${q.cookie} (echoed)`,
        ";; QUESTION SECTION:",
        ";web.demo.svc.cluster.local.\tIN\tA",
        "",
        ";; ANSWER SECTION:",
        "web.demo.svc.cluster.local. 30\tIN\tA\t10.96.0.20",
        "",
        ";; Query time: 0 msec",
        ";; SERVER: 10.96.0.10#53(10.96.0.10) (UDP)",
        ";; WHEN: Mon May 06 07:08:09 UTC 2024",
        ";; MSG SIZE  rcvd: 109",
        "",
        "",
      ].join("\n"),
    });
  });

  it("+short, +noall +answer, -x, SRV, and the column layout of short owners", async () => {
    const { run } = env();
    expect(await run("dig", "+short", "web.demo.svc.cluster.local")).toEqual({ exitCode: 0, stdout: "10.96.0.20\n", stderr: "" });
    expect((await run("dig", "+noall", "+answer", "web.demo.svc.cluster.local")).stdout).toBe("web.demo.svc.cluster.local. 30\tIN\tA\t10.96.0.20\n");
    expect((await run("dig", "-x", "10.96.0.10", "+short")).stdout).toBe("kube-dns.kube-system.svc.cluster.local.\n");
    expect((await run("dig", "+noall", "+answer", "-x", "10.96.0.10")).stdout).toBe("10.0.96.10.in-addr.arpa. 30\tIN\tPTR\tkube-dns.kube-system.svc.cluster.local.\n");
    expect((await run("dig", "+short", "SRV", "_http._tcp.web.demo.svc.cluster.local")).stdout).toBe("0 100 80 web.demo.svc.cluster.local.\n");
    expect((await run("dig", "+short", "-t", "srv", "db.demo.svc.cluster.local")).stdout).toBe(
      "0 33 5432 db-0.db.demo.svc.cluster.local.\n0 33 5432 db-1.db.demo.svc.cluster.local.\n0 33 5432 10-244-1-7.db.demo.svc.cluster.local.\n",
    );
    // An owner shorter than 24 columns: tabs to the TTL column.
    expect((await run("dig", "+noall", "+answer", "TXT", "dns-version.cluster.local")).stdout).toBe('dns-version.cluster.local. 28800 IN\tTXT\t"1.1.0"\n');
    expect((await run("dig", "+noall", "+answer", "kubernetes.default.svc.cluster.local")).stdout).toBe("kubernetes.default.svc.cluster.local. 30 IN A\t10.96.0.1\n");
    expect((await run("dig", "+noall", "+answer", "@10.96.0.10", "cluster.local", "SOA")).stdout).toBe("cluster.local.\t\t30\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30\n");
  });

  it("NXDOMAIN: the authority SOA; without +search the name is asked as given, with it the search list", async () => {
    const { run, dns } = env();
    const nx = await run("dig", "+nocmd", "+nostats", "nosuch.demo.svc.cluster.local");
    expect(nx.exitCode).toBe(0);
    expect(nx.stdout).toContain(`;; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: ${dns.seen[0]!.id}\n;; flags: qr aa rd ra; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 1\n`);
    expect(nx.stdout).toContain(";; AUTHORITY SECTION:\ncluster.local.\t\t30\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30\n\n");
    dns.seen.length = 0;
    expect((await run("dig", "+short", "web")).stdout).toBe("");
    expect(dns.names()).toEqual(["udp web"]);
    dns.seen.length = 0;
    expect((await run("dig", "+short", "+search", "db-0.db")).stdout).toBe("10.244.1.5\n");
    expect(dns.names()).toEqual(["udp db-0.db.demo.svc.cluster.local"]);
    dns.seen.length = 0;
    expect((await run("dig", "+short", "+search", "kubernetes.default")).stdout).toBe("10.96.0.1\n");
    expect(dns.names()).toEqual(["udp kubernetes.default.demo.svc.cluster.local", "udp kubernetes.default.svc.cluster.local"]);
  });

  it("a truncated UDP answer (100 endpoints) is asked again over TCP", async () => {
    const { run, dns } = env();
    const r = await run("dig", "big.demo.svc.cluster.local");
    expect(dns.names()).toEqual(["udp big.demo.svc.cluster.local", "tcp big.demo.svc.cluster.local"]);
    const lines = r.stdout.split("\n");
    expect(lines.slice(0, 3)).toEqual([";; Truncated, retrying in TCP mode.", "", "; <<>> DiG 9.18.30 <<>> big.demo.svc.cluster.local"]);
    expect(lines).toContain(";; flags: qr aa rd ra; QUERY: 1, ANSWER: 100, AUTHORITY: 0, ADDITIONAL: 1");
    expect(lines).toContain(";; SERVER: 10.96.0.10#53(10.96.0.10) (TCP)");
    expect(lines.filter((l) => /^big\.demo\.svc\.cluster\.local\. 30\tIN\tA\t10\.244\.3\.\d+$/.test(l))).toHaveLength(100);
    const short = await run("dig", "+short", "big.demo.svc.cluster.local");
    expect(short.stdout.split("\n")).toHaveLength(101);
    expect(short.stdout).not.toContain("Truncated");
    // +ignore keeps the truncated answer; +noedns makes it 512 bytes.
    expect((await run("dig", "+short", "+ignore", "+noedns", "big.demo.svc.cluster.local")).stdout.split("\n").length - 1).toBe(29);
  });

  it("no server: one communications error per try, then 'no servers could be reached', exit 9", async () => {
    const { run, clock } = env();
    const t0 = clock.now();
    const r = await run("dig", "@10.96.0.99", "+time=1", "+tries=2", "web");
    expect(r).toEqual({
      exitCode: 9,
      stderr: "",
      stdout: [
        ";; communications error to 10.96.0.99#53: timed out",
        ";; communications error to 10.96.0.99#53: timed out",
        "",
        "; <<>> DiG 9.18.30 <<>> @10.96.0.99 +time=1 +tries=2 web",
        "; (1 server found)",
        ";; global options: +cmd",
        ";; no servers could be reached",
        "",
      ].join("\n"),
    });
    expect(clock.now() - t0).toBe(2000);
    // Default: 3 tries of 5 s.
    const t1 = clock.now();
    expect((await run("dig", "+short", "@10.96.0.99", "web")).stdout).toBe(`${";; communications error to 10.96.0.99#53: timed out\n".repeat(3)};; no servers could be reached\n`);
    expect(clock.now() - t1).toBe(15_000);
  });

  it("the first resolv.conf server is silent: its tries, then the second answers", async () => {
    const { run } = env({ resolv: "search demo.svc.cluster.local\nnameserver 10.96.0.99\nnameserver 10.96.0.10\noptions ndots:5 attempts:2 timeout:1\n" });
    const r = await run("dig", "+nocmd", "+noall", "+answer", "+stats", "web.demo.svc.cluster.local");
    expect(r.stdout.split("\n").slice(0, 4)).toEqual([
      ";; communications error to 10.96.0.99#53: timed out",
      ";; communications error to 10.96.0.99#53: timed out",
      "web.demo.svc.cluster.local. 30\tIN\tA\t10.96.0.20",
      ";; Query time: 0 msec",
    ]);
    expect(r.stdout).toContain(";; SERVER: 10.96.0.10#53(10.96.0.10) (UDP)\n");
  });

  it("+tcp, -p, +norecurse, usage errors", async () => {
    const { run, dns } = env();
    const r = await run("dig", "+tcp", "+norecurse", "+nocookie", "web.demo.svc.cluster.local");
    expect(r.stdout).toContain(";; flags: qr aa ra; QUERY: 1");
    expect(r.stdout).toContain("; EDNS: version: 0, flags:; udp: 1232\n;; QUESTION SECTION:");
    expect(r.stdout).toContain("(TCP)\n");
    expect(dns.seen.at(-1)).toMatchObject({ transport: "tcp", cookie: undefined });
    expect((await run("dig", "-p", "5353", "+tries=1", "+time=1", "+short", "web")).stdout).toBe(";; communications error to 10.96.0.10#5353: connection refused\n;; no servers could be reached\n");
    const bad = await run("dig", "+bogus", "web");
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr.split("\n")[0]).toBe("Invalid option: +bogus");
    expect(await run("dig", "@nosuch", "web")).toEqual({ exitCode: 1, stdout: "", stderr: "dig: couldn't get address for 'nosuch': not found\n" });
  });
});

describe("nslookup", () => {
  it("a short name: the search list, the A answer, then AAAA for the name found", async () => {
    const { run, dns } = env();
    expect(await run("nslookup", "web")).toEqual({
      exitCode: 0,
      stderr: "",
      stdout: "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nName:\tweb.demo.svc.cluster.local\nAddress: 10.96.0.20\n\n",
    });
    expect(dns.names()).toEqual(["udp web.demo.svc.cluster.local", "udp web.demo.svc.cluster.local"]);
    expect(dns.seen.map((s) => s.type)).toEqual([1, 28]);
  });

  it("NXDOMAIN after the whole search list: exit 1", async () => {
    const { run, dns } = env();
    expect(await run("nslookup", "nosuch")).toEqual({
      exitCode: 1,
      stderr: "",
      stdout: "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n** server can't find nosuch: NXDOMAIN\n\n",
    });
    expect(dns.names()).toEqual(["udp nosuch.demo.svc.cluster.local", "udp nosuch.svc.cluster.local", "udp nosuch.cluster.local", "udp nosuch"]);
  });

  it("-type=SRV, a reverse lookup, a CNAME, a headless Service, and a server argument", async () => {
    const { run } = env();
    expect((await run("nslookup", "-type=SRV", "_http._tcp.web")).stdout).toBe(
      "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n_http._tcp.web.demo.svc.cluster.local\tservice = 0 100 80 web.demo.svc.cluster.local.\n\n",
    );
    expect(await run("nslookup", "10.96.0.10")).toEqual({ exitCode: 0, stderr: "", stdout: "10.0.96.10.in-addr.arpa\tname = kube-dns.kube-system.svc.cluster.local.\n\n" });
    expect((await run("nslookup", "alias")).stdout).toBe(
      "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nalias.demo.svc.cluster.local\tcanonical name = web.demo.svc.cluster.local.\nName:\tweb.demo.svc.cluster.local\nAddress: 10.96.0.20\n\n",
    );
    expect((await run("nslookup", "db", "10.96.0.10")).stdout).toBe(
      "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nName:\tdb.demo.svc.cluster.local\nAddress: 10.244.1.5\nName:\tdb.demo.svc.cluster.local\nAddress: 10.244.2.6\nName:\tdb.demo.svc.cluster.local\nAddress: 10.244.1.7\n\n",
    );
    expect((await run("nslookup", "-type=TXT", "demo")).stdout).toBe("Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n*** Can't find demo: No answer\n\n");
  });

  it("a truncated answer goes to TCP (nslookup sends no EDNS: 512 bytes)", async () => {
    const { run, dns } = env();
    const r = await run("nslookup", "big");
    expect(r.stdout.startsWith(";; Truncated, retrying in TCP mode.\nServer:\t\t10.96.0.10\n")).toBe(true);
    expect(r.stdout.match(/^Address: 10\.244\.3\.\d+$/gm)).toHaveLength(100);
    expect(dns.names().slice(0, 2)).toEqual(["udp big.demo.svc.cluster.local", "tcp big.demo.svc.cluster.local"]);
  });

  it("no server reachable: exit 1", async () => {
    const { run } = env({ resolv: "nameserver 10.96.0.99\noptions timeout:1 attempts:1\n" });
    expect(await run("nslookup", "web")).toEqual({ exitCode: 1, stderr: "", stdout: ";; communications error to 10.96.0.99#53: timed out\n;; no servers could be reached\n\n" });
  });
});

describe("getent", () => {
  it("hosts: glibc's '%-15s %s' lines; not found is exit 2", async () => {
    const { run } = env();
    expect(await run("getent", "hosts", "web")).toEqual({ exitCode: 0, stdout: "10.96.0.20      web.demo.svc.cluster.local\n", stderr: "" });
    expect(await run("getent", "hosts", "alias")).toEqual({ exitCode: 0, stdout: "10.96.0.20      web.demo.svc.cluster.local alias.demo.svc.cluster.local\n", stderr: "" });
    expect((await run("getent", "hosts", "db")).stdout).toBe("10.244.1.5      db.demo.svc.cluster.local\n10.244.2.6      db.demo.svc.cluster.local\n10.244.1.7      db.demo.svc.cluster.local\n");
    expect(await run("getent", "hosts", "client-pod")).toEqual({ exitCode: 0, stdout: "10.244.2.7      client-pod\n", stderr: "" });
    expect(await run("getent", "hosts", "10.96.0.10")).toEqual({ exitCode: 0, stdout: "10.96.0.10      kube-dns.kube-system.svc.cluster.local\n", stderr: "" });
    expect(await run("getent", "hosts", "nosuch")).toEqual({ exitCode: 2, stdout: "", stderr: "" });
    expect((await run("getent", "hosts")).stdout).toBe("127.0.0.1       localhost\n::1             localhost ip6-localhost ip6-loopback\nfe00::0         ip6-localnet\n10.244.2.7      client-pod\n");
  });

  it("ahosts: three socket types per address, the canonical name first; bad database is exit 1", async () => {
    const { run } = env();
    expect((await run("getent", "ahostsv4", "web")).stdout).toBe("10.96.0.20      STREAM web.demo.svc.cluster.local\n10.96.0.20      DGRAM  \n10.96.0.20      RAW    \n");
    expect((await run("getent", "bogus", "x")).exitCode).toBe(1);
  });
});

describe("env", () => {
  it("prints the container's environment", async () => {
    const { run } = env();
    expect(await run("env")).toEqual({ exitCode: 0, stdout: "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME=client-pod\nWEB_SERVICE_HOST=10.96.0.20\n", stderr: "" });
  });
});

describe("names in the other tools", () => {
  it("curl, wget and nc resolve through /etc/hosts and the cluster DNS", async () => {
    const { run } = env();
    expect(await run("curl", "-s", "http://db-0.db:8080/hostname")).toEqual({ exitCode: 0, stdout: "server-pod", stderr: "" });
    expect((await run("wget", "-qO-", "http://db-0.db.demo.svc.cluster.local:8080/hostname")).stdout).toBe("server-pod");
    expect((await run("nc", "-zv", "db-0.db", "8080")).stderr).toBe("Connection to db-0.db 8080 port [tcp/http-alt] succeeded!\n");
    expect(await run("curl", "-sS", "http://nosuch:8080/")).toEqual({ exitCode: 6, stdout: "", stderr: "curl: (6) Could not resolve host: nosuch\n" });
  });

  it("ping shows the canonical name and the reply's PTR name", async () => {
    const e = env();
    // The harness's UDP fake has no ICMP echo: answer echo requests from the destination here.
    const listeners = new Set<(icmp: IcmpRepr, ip: Ipv4Packet) => void>();
    const ns = Object.assign(Object.create(e.clientUdp) as object, {
      onIcmp: (l: (icmp: IcmpRepr, ip: Ipv4Packet) => void) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      sendIcmp: (dst: number, icmp: IcmpRepr) => {
        if (icmp.kind === "echoRequest") queueMicrotask(() => listeners.forEach((l) => l({ ...icmp, kind: "echoReply" }, { src: dst, ttl: 64 } as Ipv4Packet)));
        return { kind: "sent" };
      },
    }) as unknown as Netns;
    const r = await runTool({ ...e.ctx, ns }, ["ping", "-c", "1", "db-0.db"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split("\n").slice(0, 4)).toEqual([
      "PING db-0.db.demo.svc.cluster.local (10.244.1.5) 56(84) bytes of data.",
      "64 bytes from db-0.db.demo.svc.cluster.local (10.244.1.5): icmp_seq=1 ttl=64 time=0.000 ms",
      "",
      "--- db-0.db.demo.svc.cluster.local ping statistics ---",
    ]);
    expect(await runTool({ ...e.ctx, ns }, ["ping", "-c", "1", "nosuch"])).toEqual({ exitCode: 2, stdout: "", stderr: "ping: nosuch: Name or service not known\n" });
  });

  it("without /etc/resolv.conf (a node's root netns) only dotted quads, localhost and /etc/hosts resolve", async () => {
    const e = env();
    const bare = { ...e.ctx, fs: undefined };
    expect(await runTool(bare, ["curl", "-sS", "http://web:8080/"])).toEqual({ exitCode: 6, stdout: "", stderr: "curl: (6) Could not resolve host: web\n" });
    expect(e.dns.seen).toEqual([]);
  });
});
