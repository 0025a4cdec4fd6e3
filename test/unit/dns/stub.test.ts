/**
 * The stub resolver against a DNS server made of the pure engine (answer.ts on the fixture
 * cluster, wire.ts framing) bound on UDP and TCP 53 of a fake host, on the in-memory networks
 * and a virtual clock: what went on the wire, in order, and how long it took.
 */
import { afterEach, describe, expect, it } from "vitest";
import { answer } from "../../../node-agent/dns/answer.ts";
import { lookupAddr, lookupHost, query, stubConfig, viewMessage, type Ignored, type StubIo } from "../../../node-agent/dns/stub.ts";
import { QTYPE, RCODE, decodeQuery, encodeQuery, encodeResponse } from "../../../node-agent/dns/wire.ts";
import { MemoryTcpNetwork } from "../../../node-agent/tcp/memory.ts";
import { formatIpv4 } from "../../../overlay/wire/index.ts";
import { MemoryUdpNetwork, VirtualClock, ip } from "../apps/harness.ts";
import { mulberry32, randomBytes } from "../wire/rng.ts";
import { cluster } from "./fixtures.ts";
import { dnsServer, upstreamNxdomain, type Respond } from "./server-harness.ts";

const DNS = "10.96.0.10";
const CLIENT = "10.244.2.7";
const RESOLV = "search demo.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";

let cleanup: Array<() => void> = [];
afterEach(() => {
  cleanup.forEach((f) => f());
  cleanup = [];
});

function world(respond?: Respond, seed = 1) {
  const clock = new VirtualClock();
  const udpNet = new MemoryUdpNetwork();
  const tcpNet = new MemoryTcpNetwork({ schedule: clock.schedule });
  const data = cluster();
  const server = dnsServer(udpNet, tcpNet, DNS, data, respond);
  cleanup.push(server.close);
  const clientUdp = udpNet.host(ip(CLIENT));
  const io: StubIo = { udp: clientUdp, tcp: tcpNet.host(ip(CLIENT)), clock, rng: mulberry32(seed) };
  return { clock, udpNet, tcpNet, data, server, clientUdp, io };
}

describe("query: one exchange", () => {
  it("sends a random ID from a random ephemeral port and takes the matching answer; the port is closed after", async () => {
    const w = world();
    let srcPort = -1;
    const origBind = w.clientUdp.bindUdp.bind(w.clientUdp);
    w.clientUdp.bindUdp = (port, handler, onError) => {
      srcPort = port;
      return origBind(port, handler, onError);
    };
    const r = await query(w.io, ip(DNS), 53, "web.demo.svc.cluster.local", QTYPE.A, { timeoutMs: 5000 });
    expect(r.kind).toBe("response");
    if (r.kind !== "response") return;
    expect(r.transport).toBe("udp");
    expect(r.message.answers.map((a) => [a.name, a.type, a.ttl, a.rdata])).toEqual([["web.demo.svc.cluster.local", "A", 30, { kind: "a", address: "10.96.0.20" }]]);
    expect(r.id).toBe(w.server.seen[0]!.id);
    expect(srcPort).toBeGreaterThanOrEqual(32768);
    expect(srcPort).toBeLessThanOrEqual(60999);
    expect(w.clientUdp.sockets.size).toBe(0);
    // A second query draws another ID and port.
    const ids = new Set([r.id]);
    const ports = new Set([srcPort]);
    for (let i = 0; i < 5; i++) {
      const again = await query(w.io, ip(DNS), 53, "web.demo.svc.cluster.local", QTYPE.A, { timeoutMs: 5000 });
      if (again.kind === "response") ids.add(again.id);
      ports.add(srcPort);
    }
    expect(ids.size).toBeGreaterThan(4);
    expect(ports.size).toBeGreaterThan(4);
  });

  it("TCP frames the message behind its two-byte length (RFC 1035 §4.2.2)", async () => {
    const w = world();
    const r = await query(w.io, ip(DNS), 53, "big.demo.svc.cluster.local", QTYPE.A, { tcp: true, timeoutMs: 10_000 });
    expect(r.kind).toBe("response");
    if (r.kind !== "response") return;
    expect(r.transport).toBe("tcp");
    expect(r.message.header.tc).toBe(false);
    expect(r.message.answers).toHaveLength(100);
    expect(w.server.names()).toEqual(["tcp big.demo.svc.cluster.local"]);
  });

  it("ignores a response with the wrong ID, from the wrong source or to another question (RFC 5452 §9.1)", async () => {
    let spoof: "id" | "source" | "question" = "id";
    const w = world((q) => {
      const good = answer(q, w.data);
      if (good.kind !== "answer") return undefined;
      const forged = { ...good.response };
      if (spoof === "id") forged.id = (q.id + 1) & 0xffff;
      if (spoof === "question") forged.question = { ...q.question, name: "evil.example" };
      const bytes = encodeResponse(forged, 4096, "udp").bytes;
      // The forgery lands first, then the real answer.
      const client = Array.from(w.clientUdp.sockets.keys())[0]!;
      const from = spoof === "source" ? w.udpNet.host(ip("10.244.9.9")) : w.server.udp;
      from.sendUdp(ip(CLIENT), client, 53, bytes);
      return undefined;
    });
    for (const kind of ["id", "source", "question"] as const) {
      spoof = kind;
      const ignored: Ignored[] = [];
      const r = await query(w.io, ip(DNS), 53, "web.demo.svc.cluster.local", QTYPE.A, { timeoutMs: 5000, onIgnored: (why) => ignored.push(why) });
      expect(r.kind).toBe("response");
      if (r.kind !== "response") return;
      expect(r.message.header.id).toBe(r.id);
      expect(r.message.question?.name).toBe("web.demo.svc.cluster.local");
      expect(ignored.map((i) => i.kind)).toEqual([{ id: "idMismatch", source: "wrongSource", question: "questionMismatch" }[kind]]);
    }
    expect(w.clock.now()).toBe(0);
  });

  it("times out after timeoutMs of virtual time, and an ICMP port unreachable is 'connection refused'; both close the port", async () => {
    const w = world();
    const t = await query(w.io, ip("10.96.0.99"), 53, "web", QTYPE.A, { timeoutMs: 3000 });
    expect(t).toEqual({ kind: "timeout", stage: "exchange" });
    expect(w.clock.now()).toBe(3000);
    w.udpNet.host(ip("10.244.3.3")); // a host with nothing on 53
    const refused = await query(w.io, ip("10.244.3.3"), 53, "web", QTYPE.A, { timeoutMs: 3000 });
    expect(refused).toEqual({ kind: "error", stage: "exchange", message: "connection refused" });
    expect(w.clientUdp.sockets.size).toBe(0);
    const tcp = await query(w.io, ip("10.96.0.99"), 53, "web", QTYPE.A, { tcp: true, timeoutMs: 2000 });
    expect(tcp).toEqual({ kind: "timeout", stage: "connect" });
  });

  it("TCP: a response fed one byte at a time is reassembled; a connection closed early is 'end of file'", async () => {
    const w = world();
    const l = w.tcpNet.host(ip("10.96.0.11")).listen(53);
    if (l.kind !== "listening") throw new Error("listen");
    cleanup.push(() => l.listener.close());
    let cut = false;
    void (async () => {
      for await (const s of l.listener) {
        const first = await s.read();
        const d = decodeQuery(first!.slice(2));
        if (!d.ok) throw new Error("query");
        const a = answer(d.query, w.data);
        if (a.kind !== "answer") throw new Error("answer");
        const bytes = encodeResponse(a.response, 65535, "tcp").bytes;
        const framed = Uint8Array.from([bytes.length >> 8, bytes.length & 0xff, ...bytes]);
        for (const [i, b] of framed.entries()) {
          if (cut && i === 20) break;
          await s.write(Uint8Array.of(b));
        }
        s.end();
      }
    })();
    const r = await query(w.io, ip("10.96.0.11"), 53, "db.demo.svc.cluster.local", QTYPE.A, { tcp: true, timeoutMs: 5000 });
    expect(r.kind === "response" && r.message.answers.map((a) => a.rdata)).toEqual([
      { kind: "a", address: "10.244.1.5" },
      { kind: "a", address: "10.244.2.6" },
      { kind: "a", address: "10.244.1.7" },
    ]);
    cut = true;
    expect(await query(w.io, ip("10.96.0.11"), 53, "db.demo.svc.cluster.local", QTYPE.A, { tcp: true, timeoutMs: 5000 })).toEqual({ kind: "error", stage: "exchange", message: "end of file" });
  });

  it("viewMessage: junk and every truncation of a real response are values, never throws", () => {
    const d = decodeQuery(encodeQuery({ id: 1, name: "web.demo.svc.cluster.local", type: QTYPE.SRV }));
    if (!d.ok) throw new Error("query");
    const a = answer(d.query, cluster());
    if (a.kind !== "answer") throw new Error("answer");
    const bytes = encodeResponse(a.response, 4096, "udp").bytes;
    expect(viewMessage(bytes)?.view.answers[0]?.rdata).toEqual({ kind: "srv", priority: 0, weight: 100, port: 80, target: "web.demo.svc.cluster.local" });
    for (let n = 0; n < bytes.length; n++) expect(() => viewMessage(bytes.subarray(0, n))).not.toThrow();
    const rng = mulberry32(7);
    for (let i = 0; i < 500; i++) expect(() => viewMessage(randomBytes(rng, Math.floor(rng() * 80)))).not.toThrow();
  });

  it("an invalid name is an error, not a query", async () => {
    const w = world();
    expect(await query(w.io, ip(DNS), 53, `${"a".repeat(64)}.demo`, QTYPE.A, { timeoutMs: 1000 })).toEqual({ kind: "error", stage: "connect", message: "invalid name" });
    expect(w.server.seen).toEqual([]);
  });
});

describe("lookupHost: glibc getaddrinfo(AF_INET)", () => {
  it("a short name: the search list in order; the first domain that has it wins", async () => {
    const w = world();
    expect(await lookupHost(w.io, "web", RESOLV)).toEqual({ kind: "found", addresses: [ip("10.96.0.20")], canonical: "web.demo.svc.cluster.local", aliases: [], source: "dns" });
    expect(w.server.names()).toEqual(["udp web.demo.svc.cluster.local"]);
    expect(w.server.seen[0]!.type).toBe(QTYPE.A);
    expect(w.server.seen[0]!.edns).toBeUndefined();
  });

  it("NXDOMAIN moves on through every search domain, then the name as is", async () => {
    const w = world();
    expect(await lookupHost(w.io, "nosuch", RESOLV)).toEqual({ kind: "nxdomain" });
    expect(w.server.names()).toEqual(["udp nosuch.demo.svc.cluster.local", "udp nosuch.svc.cluster.local", "udp nosuch.cluster.local", "udp nosuch"]);
  });

  it("ndots: fewer dots than ndots searches first; as many tries the name as is first", async () => {
    const w = world();
    const found = await lookupHost(w.io, "kubernetes.default", RESOLV);
    expect(found.kind === "found" && found.addresses.map(formatIpv4)).toEqual(["10.96.0.1"]);
    expect(w.server.names()).toEqual(["udp kubernetes.default.demo.svc.cluster.local", "udp kubernetes.default.svc.cluster.local"]);

    const w1 = world();
    const ndots1 = RESOLV.replace("ndots:5", "ndots:1");
    await lookupHost(w1.io, "kubernetes.default", ndots1);
    expect(w1.server.names()).toEqual(["udp kubernetes.default", "udp kubernetes.default.demo.svc.cluster.local", "udp kubernetes.default.svc.cluster.local"]);

    const w2 = world();
    await lookupHost(w2.io, "web.demo.svc.cluster.local.", RESOLV);
    expect(w2.server.names()).toEqual(["udp web.demo.svc.cluster.local"]);
  });

  it("NODATA moves on too, and is what the lookup says when nothing had the name", async () => {
    const w = world();
    // demo.svc.cluster.local is a namespace (an empty non-terminal): NOERROR without records.
    expect(await lookupHost(w.io, "demo", RESOLV)).toEqual({ kind: "nodata" });
    expect(w.server.names()).toEqual(["udp demo.demo.svc.cluster.local", "udp demo.svc.cluster.local", "udp demo.cluster.local", "udp demo"]);
  });

  it("a CNAME chain inside the answer is followed: the canonical name and the alias", async () => {
    const w = world();
    expect(await lookupHost(w.io, "alias", RESOLV)).toEqual({
      kind: "found",
      addresses: [ip("10.96.0.20")],
      canonical: "web.demo.svc.cluster.local",
      aliases: ["alias.demo.svc.cluster.local"],
      source: "dns",
    });
  });

  it("a truncated UDP answer is asked again over TCP (100 endpoints: 512 bytes hold 29)", async () => {
    const w = world();
    const r = await lookupHost(w.io, "big", RESOLV);
    expect(r.kind === "found" && r.addresses.length).toBe(100);
    expect(w.server.names()).toEqual(["udp big.demo.svc.cluster.local", "tcp big.demo.svc.cluster.local"]);
    expect(w.clientUdp.sockets.size).toBe(0);
  });

  it("options edns0 advertises 1200 bytes; use-vc asks over TCP only", async () => {
    const w = world();
    const r = await lookupHost(w.io, "big", `${RESOLV}options edns0\n`);
    expect(r.kind === "found" && r.addresses.length).toBe(100);
    expect(w.server.seen.map((s) => [s.transport, s.edns])).toEqual([
      ["udp", 1200],
      ["tcp", 1200],
    ]);
    const v = world();
    await lookupHost(v.io, "web", `${RESOLV}options use-vc\n`);
    expect(v.server.names()).toEqual(["tcp web.demo.svc.cluster.local"]);
  });

  it("a silent first nameserver: 5 s, then the second one answers", async () => {
    const w = world();
    const conf = "search demo.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.99\nnameserver 10.96.0.10\noptions ndots:5\n";
    expect(await lookupHost(w.io, "web", conf)).toMatchObject({ kind: "found", canonical: "web.demo.svc.cluster.local" });
    expect(w.clock.now()).toBe(5000);
    expect(w.server.names()).toEqual(["udp web.demo.svc.cluster.local"]);
  });

  it("timeout:N attempts:N; a timeout ends the search but the name as is is still tried", async () => {
    const w = world();
    const conf = "search demo.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.99\noptions ndots:5 timeout:1 attempts:3\n";
    expect(await lookupHost(w.io, "web", conf)).toEqual({ kind: "timeout" });
    // web.demo.svc.cluster.local (3 x 1 s), then web (3 x 1 s); svc.cluster.local never.
    expect(w.clock.now()).toBe(6000);
    expect(w.clientUdp.sockets.size).toBe(0);
  });

  it("the caller's deadline cuts a lookup short", async () => {
    const w = world();
    const conf = "nameserver 10.96.0.99\noptions ndots:5\n";
    expect(await lookupHost(w.io, "web", conf, undefined, { deadline: 1500 })).toEqual({ kind: "timeout" });
    expect(w.clock.now()).toBe(1500);
  });

  it("SERVFAIL tries the next attempt, then the next search domain; SERVFAIL everywhere is servfail", async () => {
    const servfail: Respond = (q) => (q.question.name.endsWith(".demo.svc.cluster.local") ? { ...upstreamNxdomain(q), rcode: RCODE.SERVFAIL } : undefined);
    const w = world(servfail);
    expect(await lookupHost(w.io, "kubernetes.default", RESOLV)).toMatchObject({ kind: "found", canonical: "kubernetes.default.svc.cluster.local" });
    expect(w.server.names()).toEqual(["udp kubernetes.default.demo.svc.cluster.local", "udp kubernetes.default.demo.svc.cluster.local", "udp kubernetes.default.svc.cluster.local"]);
    const all = world((q) => ({ ...upstreamNxdomain(q), rcode: RCODE.SERVFAIL }));
    expect(await lookupHost(all.io, "web", RESOLV)).toEqual({ kind: "servfail" });
    expect(all.server.seen).toHaveLength(8);
  });

  it("ECONNREFUSED from every server ends the lookup at once", async () => {
    const w = world();
    w.udpNet.host(ip("10.244.3.3"));
    expect(await lookupHost(w.io, "web", "nameserver 10.244.3.3\nsearch demo.svc.cluster.local svc.cluster.local\noptions ndots:5\n")).toEqual({ kind: "timeout" });
    expect(w.clock.now()).toBe(0);
  });

  it("/etc/hosts comes first, and a dotted quad needs nobody", async () => {
    const w = world();
    const hosts = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.244.2.7\tclient.sub.demo.svc.cluster.local\tclient\n";
    expect(await lookupHost(w.io, "client", RESOLV, hosts)).toEqual({ kind: "found", addresses: [ip("10.244.2.7")], canonical: "client.sub.demo.svc.cluster.local", aliases: ["client"], source: "hosts" });
    expect(await lookupHost(w.io, "LOCALHOST", RESOLV, hosts)).toMatchObject({ kind: "found", addresses: [ip("127.0.0.1")] });
    expect(await lookupHost(w.io, "10.1.2.3", RESOLV, hosts)).toMatchObject({ kind: "found", addresses: [ip("10.1.2.3")], source: "literal" });
    expect(w.server.seen).toEqual([]);
  });
});

describe("lookupAddr: gethostbyaddr", () => {
  it("PTR of a cluster IP and of an endpoint; /etc/hosts first", async () => {
    const w = world();
    expect(await lookupAddr(w.io, ip("10.96.0.10"), RESOLV)).toEqual({ kind: "found", name: "kube-dns.kube-system.svc.cluster.local", aliases: [], source: "dns" });
    expect(await lookupAddr(w.io, ip("10.244.1.5"), RESOLV)).toMatchObject({ kind: "found", name: "db-0.db.demo.svc.cluster.local" });
    expect(await lookupAddr(w.io, ip("10.9.9.9"), RESOLV)).toEqual({ kind: "nxdomain" });
    expect(w.server.names()).toEqual(["udp 10.0.96.10.in-addr.arpa", "udp 5.1.244.10.in-addr.arpa", "udp 9.9.9.10.in-addr.arpa"]);
    expect(await lookupAddr(w.io, ip("127.0.0.1"), RESOLV, "127.0.0.1\tlocalhost\n")).toMatchObject({ kind: "found", name: "localhost", source: "hosts" });
  });
});

describe("stubConfig: resolv.conf(5) as glibc reads it", () => {
  it("defaults, caps, and no nameserver meaning 127.0.0.1", () => {
    expect(stubConfig("")).toMatchObject({ nameservers: [ip("127.0.0.1")], ndots: 1, timeoutS: 5, attempts: 2, useVc: false, edns0: false });
    expect(stubConfig("nameserver 1.1.1.1\nnameserver ::1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\nnameserver 4.4.4.4\noptions timeout:99 attempts:9\noptions ndots:20 rotate\n")).toMatchObject({
      nameservers: [ip("1.1.1.1"), ip("2.2.2.2"), ip("3.3.3.3")],
      ndots: 15,
      timeoutS: 30,
      attempts: 5,
    });
  });
});
