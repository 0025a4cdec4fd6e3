/**
 * answer() against the Kubernetes DNS specification 1.1.0 (kubernetes/dns docs/specification.md)
 * and CoreDNS's kubernetes plugin, through the wire (encode, decode, answer, encode, dns-packet).
 * Each case names the section it checks.
 */
import { describe, expect, it } from "vitest";
import { answer } from "../../../node-agent/dns/answer.ts";
import { ClusterDnsData } from "../../../node-agent/dns/records.ts";
import { QTYPE, decodeQuery, encodeQuery, type DecodedResponse } from "../../../node-agent/dns/wire.ts";
import { ask, cluster, clusterObjects, dataOf, pod, slice, svc } from "./fixtures.ts";

const data = cluster();
const A = QTYPE.A;
const AAAA = QTYPE.AAAA;
const SRV = QTYPE.SRV;
const PTR = QTYPE.PTR;
const TXT = QTYPE.TXT;
const CNAME = QTYPE.CNAME;
const SOA = QTYPE.SOA;
const NS = QTYPE.NS;

function q(name: string, type: number, extra: { id?: number; rd?: boolean } = {}) {
  return ask(data, { name, type, id: extra.id ?? 4242, rd: extra.rd ?? true });
}

function rcode(msg: DecodedResponse | undefined): string | undefined {
  return msg?.rcode;
}

/** NODATA as RFC 2308 §2.2: NOERROR, no answer, the zone SOA in the authority section. */
function expectNoData(msg: DecodedResponse | undefined): void {
  expect(rcode(msg)).toBe("NOERROR");
  expect(msg?.answers).toEqual([]);
  expect(msg?.authorities?.map((a) => a.type)).toEqual(["SOA"]);
  expect(msg?.flag_aa).toBe(true);
}

/** NXDOMAIN as RFC 2308 §2.1: the SOA in the authority section, AA set. */
function expectNxDomain(msg: DecodedResponse | undefined): void {
  expect(rcode(msg)).toBe("NXDOMAIN");
  expect(msg?.answers).toEqual([]);
  expect(msg?.authorities?.map((a) => a.type)).toEqual(["SOA"]);
  expect(msg?.flag_aa).toBe(true);
}

describe("§2.2 record for schema version", () => {
  it("§2.2 dns-version.<zone> TXT is 1.1.0 (TTL 28800 as CoreDNS)", () => {
    const { msg } = q("dns-version.cluster.local", TXT);
    expect(msg?.answers).toHaveLength(1);
    const a = msg!.answers![0]! as { name: string; ttl: number; data: Buffer[] };
    expect(a.name).toBe("dns-version.cluster.local");
    expect(a.ttl).toBe(28_800);
    expect(a.data.map((b) => b.toString())).toEqual(["1.1.0"]);
    expect(msg?.flag_aa).toBe(true);
  });

  it("§2.2 dns-version exists: A there is NODATA, not NXDOMAIN (RFC 8020)", () => {
    expectNoData(q("dns-version.cluster.local", A).msg);
  });
});

describe("§2.3 records for a Service with ClusterIP", () => {
  it("§2.3.1 A <svc>.<ns>.svc.<zone> is the ClusterIP, TTL 30, AA, RD copied, RA set", () => {
    const { msg } = q("web.demo.svc.cluster.local", A, { id: 777 });
    expect(dataOf(msg, "A")).toEqual(["10.96.0.20"]);
    expect(msg?.answers?.[0]).toMatchObject({ name: "web.demo.svc.cluster.local", ttl: 30, class: "IN" });
    expect(msg).toMatchObject({ id: 777, type: "response", rcode: "NOERROR", flag_aa: true, flag_rd: true, flag_ra: true, flag_tc: false });
    expect(msg?.questions).toEqual([{ name: "web.demo.svc.cluster.local", type: "A", class: "IN" }]);
  });

  it("§2.3.1 A exists whether or not the Service has endpoints", () => {
    expect(dataOf(q("lonely.demo.svc.cluster.local", A).msg, "A")).toEqual(["10.96.0.21"]);
  });

  it("§2.3.1 A kubernetes.default.svc.<zone>", () => {
    expect(dataOf(q("kubernetes.default.svc.cluster.local", A).msg, "A")).toEqual(["10.96.0.1"]);
  });

  it("§2.3.1 AAAA of an IPv4-only Service is NODATA", () => {
    expectNoData(q("web.demo.svc.cluster.local", AAAA).msg);
  });

  it("§2.3.1 a Service without ports still has its A (CoreDNS sentinel port)", () => {
    expect(dataOf(q("portless.demo.svc.cluster.local", A).msg, "A")).toEqual(["10.96.0.22"]);
    expectNoData(q("portless.demo.svc.cluster.local", SRV).msg);
  });

  it("§2.3.2 SRV _<port>._<proto> of a named port: 0 100 <port> <svc FQDN>, A in additional", () => {
    const { msg } = q("_http._tcp.web.demo.svc.cluster.local", SRV);
    expect(dataOf(msg, "SRV")).toEqual([{ priority: 0, weight: 100, port: 80, target: "web.demo.svc.cluster.local" }]);
    expect(msg?.additionals?.map((a) => [a.name, a.type, (a as { data: unknown }).data])).toEqual([["web.demo.svc.cluster.local", "A", "10.96.0.20"]]);
  });

  it("§2.3.2 SRV for UDP and TCP ports of the same number (kube-dns)", () => {
    expect(dataOf(q("_dns._udp.kube-dns.kube-system.svc.cluster.local", SRV).msg, "SRV")).toEqual([{ priority: 0, weight: 100, port: 53, target: "kube-dns.kube-system.svc.cluster.local" }]);
    expect(dataOf(q("_dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local", SRV).msg, "SRV")).toEqual([{ priority: 0, weight: 100, port: 53, target: "kube-dns.kube-system.svc.cluster.local" }]);
  });

  it("§2.3.2 unnamed ports have no SRV record: NXDOMAIN", () => {
    expectNxDomain(q("_http._tcp.lonely.demo.svc.cluster.local", SRV).msg);
  });

  it("§2.3.2 the protocol must match the port's: _http._udp is NXDOMAIN", () => {
    expectNxDomain(q("_http._udp.web.demo.svc.cluster.local", SRV).msg);
  });

  it("§2.3.2 an unknown port name is NXDOMAIN", () => {
    expectNxDomain(q("_grpc._tcp.web.demo.svc.cluster.local", SRV).msg);
  });

  it("§3 (CoreDNS) SRV at the service name: one per port, weight 100/N", () => {
    const { msg } = q("kube-dns.kube-system.svc.cluster.local", SRV);
    expect(dataOf(msg, "SRV")).toEqual([
      { priority: 0, weight: 33, port: 53, target: "kube-dns.kube-system.svc.cluster.local" },
      { priority: 0, weight: 33, port: 9153, target: "kube-dns.kube-system.svc.cluster.local" },
    ]);
    expect(dataOf(msg, "A", "additionals")).toEqual(["10.96.0.10"]);
  });

  it("§2.3.3 PTR of a ClusterIP is the Service FQDN", () => {
    const { msg } = q("20.0.96.10.in-addr.arpa", PTR);
    expect(dataOf(msg, "PTR")).toEqual(["web.demo.svc.cluster.local"]);
    expect(msg?.answers?.[0]).toMatchObject({ name: "20.0.96.10.in-addr.arpa", ttl: 30 });
    expect(msg?.flag_aa).toBe(true);
  });

  it("§2.3.3 PTR of the kubernetes Service", () => {
    expect(dataOf(q("1.0.96.10.in-addr.arpa", PTR).msg, "PTR")).toEqual(["kubernetes.default.svc.cluster.local"]);
  });

  it("§3 (CoreDNS) endpoint names under a ClusterIP Service answer the endpoint", () => {
    expect(dataOf(q("10-244-1-10.web.demo.svc.cluster.local", A).msg, "A")).toEqual(["10.244.1.10"]);
  });
});

describe("§2.4 records for a headless Service", () => {
  it("§2.4.1 A: one per READY endpoint address", () => {
    const ips = dataOf(q("db.demo.svc.cluster.local", A).msg, "A");
    expect(ips).toEqual(["10.244.1.5", "10.244.2.6", "10.244.1.7"]);
    expect(ips).not.toContain("10.244.2.9");
  });

  it("§2.4.1 <hostname>.<svc> A from the EndpointSlice hostname field", () => {
    expect(dataOf(q("db-0.db.demo.svc.cluster.local", A).msg, "A")).toEqual(["10.244.1.5"]);
    expect(dataOf(q("db-1.db.demo.svc.cluster.local", A).msg, "A")).toEqual(["10.244.2.6"]);
  });

  it("§2.4.1 an endpoint without hostname is named by its dashed IP (CoreDNS endpointHostname)", () => {
    expect(dataOf(q("10-244-1-7.db.demo.svc.cluster.local", A).msg, "A")).toEqual(["10.244.1.7"]);
    // An endpoint with a hostname is not also reachable by its dashed IP.
    expectNxDomain(q("10-244-1-5.db.demo.svc.cluster.local", A).msg);
  });

  it("§2.4.1 a not-ready endpoint has no name: NXDOMAIN", () => {
    expectNxDomain(q("db-3.db.demo.svc.cluster.local", A).msg);
  });

  it("§2.4.1 no ready endpoints: NXDOMAIN, as the spec says and CoreDNS does", () => {
    expectNxDomain(q("empty-headless.demo.svc.cluster.local", A).msg);
    expectNxDomain(q("empty-headless.demo.svc.cluster.local", AAAA).msg);
    expectNxDomain(q("_http._tcp.empty-headless.demo.svc.cluster.local", SRV).msg);
  });

  it("§2.4.2 SRV: one per (port, ready endpoint) at the endpoint's name, weight 100/N, A records in additional", () => {
    const { msg } = q("_pg._tcp.db.demo.svc.cluster.local", SRV);
    expect(dataOf(msg, "SRV")).toEqual([
      { priority: 0, weight: 33, port: 5432, target: "db-0.db.demo.svc.cluster.local" },
      { priority: 0, weight: 33, port: 5432, target: "db-1.db.demo.svc.cluster.local" },
      { priority: 0, weight: 33, port: 5432, target: "10-244-1-7.db.demo.svc.cluster.local" },
    ]);
    expect(msg?.additionals?.map((a) => [a.name, (a as { data: unknown }).data])).toEqual([
      ["db-0.db.demo.svc.cluster.local", "10.244.1.5"],
      ["db-1.db.demo.svc.cluster.local", "10.244.2.6"],
      ["10-244-1-7.db.demo.svc.cluster.local", "10.244.1.7"],
    ]);
  });

  it("§2.4.2 SRV with the wrong protocol is NXDOMAIN", () => {
    expectNxDomain(q("_pg._udp.db.demo.svc.cluster.local", SRV).msg);
  });

  it("§2.4.3 PTR of a ready endpoint with a hostname is <hostname>.<svc>.<ns>.svc.<zone>", () => {
    expect(dataOf(q("5.1.244.10.in-addr.arpa", PTR).msg, "PTR")).toEqual(["db-0.db.demo.svc.cluster.local"]);
  });

  it("§2.4.3 (CoreDNS) PTR of a ready endpoint without hostname uses the dashed IP", () => {
    expect(dataOf(q("7.1.244.10.in-addr.arpa", PTR).msg, "PTR")).toEqual(["10-244-1-7.db.demo.svc.cluster.local"]);
  });

  it("§2.4.3 (CoreDNS) endpoints of ClusterIP Services get PTRs too", () => {
    expect(dataOf(q("10.1.244.10.in-addr.arpa", PTR).msg, "PTR")).toEqual(["10-244-1-10.web.demo.svc.cluster.local"]);
  });

  it("§2.4.3 a not-ready endpoint has no PTR: forwarded (fallthrough in-addr.arpa)", () => {
    expect(q("9.2.244.10.in-addr.arpa", PTR).result.kind).toBe("forward");
  });
});

describe("§2.5 records for ExternalName Services", () => {
  it("§2.5 A query: CNAME to externalName, the target left to chase upstream", () => {
    const { msg, result } = q("ext.demo.svc.cluster.local", A);
    expect(msg?.answers?.map((a) => [a.name, a.type, (a as { data: unknown }).data])).toEqual([["ext.demo.svc.cluster.local", "CNAME", "www.example.com"]]);
    expect(msg?.flag_aa).toBe(true);
    expect(result.kind === "answer" && result.chase).toEqual({ name: "www.example.com", type: A });
  });

  it("§2.5 CNAME query returns the CNAME", () => {
    expect(dataOf(q("ext.demo.svc.cluster.local", CNAME).msg, "CNAME")).toEqual(["www.example.com"]);
  });

  it("§2.5 a target inside the zone is followed (CoreDNS A recursion)", () => {
    const { msg, result } = q("alias.demo.svc.cluster.local", A);
    expect(msg?.answers?.map((a) => [a.name, a.type, (a as { data: unknown }).data])).toEqual([
      ["alias.demo.svc.cluster.local", "CNAME", "web.demo.svc.cluster.local"],
      ["web.demo.svc.cluster.local", "A", "10.96.0.20"],
    ]);
    expect(result.kind === "answer" && result.chase).toBeUndefined();
  });

  it("§2.5 a CNAME to itself is dropped: NODATA", () => {
    expectNoData(q("loop.demo.svc.cluster.local", A).msg);
  });

  it("§2.5 ExternalName has no ports: _http._tcp under it is NXDOMAIN, SRV at it NODATA", () => {
    expectNxDomain(q("_http._tcp.ext.demo.svc.cluster.local", SRV).msg);
    expectNoData(q("ext.demo.svc.cluster.local", SRV).msg);
  });

  it("§2.5 an IP as externalName is no CNAME: NXDOMAIN (CoreDNS HostType)", () => {
    expectNxDomain(q("ipname.demo.svc.cluster.local", A).msg);
  });
});

describe("pod records (pods insecure)", () => {
  it("pods: a-b-c-d.<ns>.pod.<zone> A a.b.c.d, unchecked", () => {
    const { msg } = q("10-244-9-99.demo.pod.cluster.local", A);
    expect(dataOf(msg, "A")).toEqual(["10.244.9.99"]);
    expect(msg?.flag_aa).toBe(true);
  });

  it("pods: a namespace that does not exist is NXDOMAIN", () => {
    expectNxDomain(q("10-244-1-10.nowhere.pod.cluster.local", A).msg);
  });

  it("pods: malformed dashed IPs are NXDOMAIN (256, leading zeros as Go's ParseIP, letters)", () => {
    for (const name of ["10-244-1-256", "010-244-1-5", "a-b-c-d", "10-244-1", "1-2-3-4-5-6-7-8-9"]) expectNxDomain(q(`${name}.demo.pod.cluster.local`, A).msg);
  });

  it("pods: a dashed IPv6 name (any '--' or not three dashes) is an IPv6 pod: AAAA, A NODATA (findPods)", () => {
    expect(dataOf(q("fd00-10-244--5.demo.pod.cluster.local", AAAA).msg, "AAAA")).toEqual(["fd00:10:244::5"]);
    expectNoData(q("fd00-10-244--5.demo.pod.cluster.local", A).msg);
  });

  it("pods: labels below a pod name are NXDOMAIN (deviation: CoreDNS answers them)", () => {
    expectNxDomain(q("x.10-244-1-10.demo.pod.cluster.local", A).msg);
  });

  it("pods verified: only an existing pod of that namespace", () => {
    const ok = ask(data, { name: "10-244-1-10.demo.pod.cluster.local", type: A }, { podMode: "verified" });
    expect(dataOf(ok.msg, "A")).toEqual(["10.244.1.10"]);
    expectNxDomain(ask(data, { name: "10-244-9-99.demo.pod.cluster.local", type: A }, { podMode: "verified" }).msg);
    expectNxDomain(ask(data, { name: "10-244-1-10.default.pod.cluster.local", type: A }, { podMode: "verified" }).msg);
  });

  it("pods disabled: NXDOMAIN", () => {
    expectNxDomain(ask(data, { name: "10-244-1-10.demo.pod.cluster.local", type: A }, { podMode: "disabled" }).msg);
  });

  it("pods: the pod name's AAAA is NODATA", () => {
    expectNoData(q("10-244-1-10.demo.pod.cluster.local", AAAA).msg);
  });
});

describe("NXDOMAIN vs NODATA (RFC 2308, RFC 8020)", () => {
  it("RFC 2308 the negative SOA: ns.dns.<zone> hostmaster.<zone> <serial> 7200 1800 86400 <ttl>", () => {
    const { msg } = q("nothing.demo.svc.cluster.local", A);
    expectNxDomain(msg);
    const soa = msg!.authorities![0]!;
    expect(soa).toMatchObject({ name: "cluster.local", type: "SOA", ttl: 30 });
    expect((soa as { data: unknown }).data).toEqual({
      mname: "ns.dns.cluster.local",
      rname: "hostmaster.cluster.local",
      serial: 1_700_000_000,
      refresh: 7200,
      retry: 1800,
      expire: 86400,
      minimum: 30,
    });
  });

  it("empty non-terminal svc.<zone> is NODATA", () => {
    expectNoData(q("svc.cluster.local", A).msg);
    expectNoData(q("svc.cluster.local", TXT).msg);
  });

  it("empty non-terminal <ns>.svc.<zone> of an existing namespace is NODATA, even without Services", () => {
    expectNoData(q("demo.svc.cluster.local", A).msg);
    expectNoData(q("quiet.svc.cluster.local", A).msg);
  });

  it("<ns>.svc.<zone> of a namespace that does not exist is NXDOMAIN", () => {
    expectNxDomain(q("nope.svc.cluster.local", A).msg);
  });

  it("empty non-terminals pod.<zone> and <ns>.pod.<zone> are NODATA", () => {
    expectNoData(q("pod.cluster.local", A).msg);
    expectNoData(q("demo.pod.cluster.local", A).msg);
  });

  it("empty non-terminal _<proto>.<svc> above an SRV name is NODATA (deviation: CoreDNS NXDOMAIN)", () => {
    expectNoData(q("_tcp.web.demo.svc.cluster.local", SRV).msg);
    expectNxDomain(q("_udp.web.demo.svc.cluster.local", SRV).msg);
  });

  it("a Service that exists answers NODATA for the types it has not (TXT, MX, CNAME, PTR, ANY)", () => {
    for (const t of [TXT, QTYPE.MX, CNAME, PTR, QTYPE.ANY, 65 /* HTTPS */]) expectNoData(q("web.demo.svc.cluster.local", t).msg);
  });

  it("a Service that does not exist is NXDOMAIN for every type", () => {
    for (const t of [A, AAAA, SRV, TXT, QTYPE.MX, SOA, 65]) expectNxDomain(q("nothing.demo.svc.cluster.local", t).msg);
  });

  it("names in the zone that are neither svc nor pod are NXDOMAIN", () => {
    expectNxDomain(q("foo.cluster.local", A).msg);
    expectNxDomain(q("web.demo.cluster.local", A).msg);
  });

  it("names too long for the schema are NXDOMAIN (parse.go)", () => {
    expectNxDomain(q("a.b.c.web.demo.svc.cluster.local", A).msg);
  });

  it("before the first full sync a name error is SERVFAIL (CoreDNS !HasSynced)", () => {
    const fresh = new ClusterDnsData();
    const { msg } = ask(fresh, { name: "web.demo.svc.cluster.local", type: A });
    expect(rcode(msg)).toBe("SERVFAIL");
    fresh.replaceAll(clusterObjects());
    expect(dataOf(ask(fresh, { name: "web.demo.svc.cluster.local", type: A }).msg, "A")).toEqual(["10.96.0.20"]);
  });
});

describe("the zone apex", () => {
  it("apex SOA is answered", () => {
    const { msg } = q("cluster.local", SOA);
    expect(msg?.answers?.map((a) => a.type)).toEqual(["SOA"]);
    expect(msg?.flag_aa).toBe(true);
  });

  it("apex NS is kube-dns.kube-system.svc.<zone> with its A (ns.go)", () => {
    const { msg } = q("cluster.local", NS);
    expect(dataOf(msg, "NS")).toEqual(["kube-dns.kube-system.svc.cluster.local"]);
    expect(msg?.additionals?.map((a) => [a.name, (a as { data: unknown }).data])).toEqual([["kube-dns.kube-system.svc.cluster.local", "10.96.0.10"]]);
  });

  it("apex A and TXT are NODATA (deviation: CoreDNS TXT says NXDOMAIN)", () => {
    expectNoData(q("cluster.local", A).msg);
    expectNoData(q("cluster.local", TXT).msg);
  });

  it("ns.dns.<zone> A is the DNS Service IP; dns.<zone> is an empty non-terminal", () => {
    expect(dataOf(q("ns.dns.cluster.local", A).msg, "A")).toEqual(["10.96.0.10"]);
    expectNoData(q("dns.cluster.local", A).msg);
  });
});

describe("§2.1 case-insensitive matching", () => {
  it("§2.1 mixed case matches; the question and owner names keep the query's case", () => {
    const { msg } = q("WEB.Demo.SVC.Cluster.Local", A);
    expect(dataOf(msg, "A")).toEqual(["10.96.0.20"]);
    expect(msg?.questions?.[0]?.name).toBe("WEB.Demo.SVC.Cluster.Local");
    expect(msg?.answers?.[0]?.name).toBe("WEB.Demo.SVC.Cluster.Local");
  });

  it("§2.1 SRV labels match case-insensitively; the target keeps the query's zone case (CoreDNS)", () => {
    const { msg } = q("_HTTP._TCP.web.DEMO.svc.CLUSTER.local", SRV);
    expect(dataOf(msg, "SRV")).toEqual([{ priority: 0, weight: 100, port: 80, target: "web.demo.svc.CLUSTER.local" }]);
  });

  it("§2.1 headless hostnames match case-insensitively", () => {
    expect(dataOf(q("DB-0.db.demo.svc.cluster.local", A).msg, "A")).toEqual(["10.244.1.5"]);
  });

  it("§2.1 reverse names match case-insensitively", () => {
    expect(dataOf(q("20.0.96.10.IN-ADDR.ARPA", PTR).msg, "PTR")).toEqual(["web.demo.svc.cluster.local"]);
  });

  it("§2.1 the negative SOA is named in the query's zone case", () => {
    const { msg } = q("nothing.demo.svc.Cluster.Local", A);
    expect(msg?.authorities?.[0]?.name).toBe("Cluster.Local");
  });
});

describe("forwarding (names outside the cluster zone)", () => {
  it("names outside the zone are forwarded", () => {
    for (const name of ["example.com", "local", "cluster.local.example.com", "xcluster.local", "kubernetes"]) expect(q(name, A).result).toEqual({ kind: "forward", reason: "outside-zone" });
  });

  it("reverse names of addresses the cluster does not know are forwarded (fallthrough in-addr.arpa)", () => {
    expect(q("8.8.8.8.in-addr.arpa", PTR).result.kind).toBe("forward");
    expect(q("96.10.in-addr.arpa", PTR).result.kind).toBe("forward");
    expect(q("20.0.96.010.in-addr.arpa", PTR).result.kind).toBe("forward");
  });

  it("non-PTR queries in the reverse zones are forwarded", () => {
    expect(q("20.0.96.10.in-addr.arpa", A).result.kind).toBe("forward");
    expect(q("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", PTR).result.kind).toBe("forward");
  });
});

describe("refusals (core/dnsserver, handler.go)", () => {
  it("AXFR and IXFR of the zone are REFUSED", () => {
    expect(rcode(q("cluster.local", QTYPE.AXFR).msg)).toBe("REFUSED");
    expect(rcode(q("cluster.local", QTYPE.IXFR).msg)).toBe("REFUSED");
  });

  it("a class other than IN is REFUSED", () => {
    const { msg } = ask(data, { name: "version.bind", type: TXT, class: 3 });
    expect(rcode(msg)).toBe("REFUSED");
    expect(msg?.flag_aa).toBe(false);
  });

  it("RFC 6891 §6.1.3 EDNS version 1 is BADVERS (extended RCODE 1 in a version-0 OPT)", () => {
    const decoded = decodeQuery(encodeQuery({ name: "web.demo.svc.cluster.local", type: A, edns: { udpPayloadSize: 1232, version: 1 } }));
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    const result = answer(decoded.query, data);
    expect(result.kind === "answer" && result.response.rcode).toBe(16);
    const { msg } = ask(data, { name: "web.demo.svc.cluster.local", type: A, edns: { udpPayloadSize: 1232, version: 1 } });
    const opt = msg?.additionals?.find((a) => a.type === "OPT") as { extendedRcode: number; ednsVersion: number } | undefined;
    expect(opt).toMatchObject({ extendedRcode: 1, ednsVersion: 0 });
    expect(msg?.answers).toEqual([]);
  });

  it("NOTIFY is NOTIMP", () => {
    const decoded = decodeQuery(encodeQuery({ name: "cluster.local", type: SOA, opcode: 4 }));
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    const result = answer(decoded.query, data);
    expect(result.kind === "answer" && result.response.rcode).toBe(4);
  });
});

describe("options", () => {
  it("ttl is configurable (the SOA minimum follows it)", () => {
    const { msg } = ask(data, { name: "web.demo.svc.cluster.local", type: A }, { ttl: 5 });
    expect((msg?.answers?.[0] as { ttl: number }).ttl).toBe(5);
    const neg = ask(data, { name: "x.demo.svc.cluster.local", type: A }, { ttl: 5 }).msg;
    expect((neg?.authorities?.[0] as { data: { minimum: number } }).data.minimum).toBe(5);
  });

  it("another cluster domain", () => {
    const { msg } = ask(data, { name: "web.demo.svc.corp.example", type: A }, { zone: "corp.example" });
    expect(dataOf(msg, "A")).toEqual(["10.96.0.20"]);
    expect(ask(data, { name: "web.demo.svc.cluster.local", type: A }, { zone: "corp.example" }).result.kind).toBe("forward");
  });

  it("loadbalance round_robin shuffles address records with the given randomness, deterministically", () => {
    let seed = 1;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const a = ask(data, { name: "db.demo.svc.cluster.local", type: A }, { random }).msg;
    seed = 1;
    const b = ask(data, { name: "db.demo.svc.cluster.local", type: A }, { random }).msg;
    expect(dataOf(a, "A")).toEqual(dataOf(b, "A"));
    expect([...(dataOf(a, "A") as string[])].sort()).toEqual(["10.244.1.5", "10.244.1.7", "10.244.2.6"]);
  });

  it("endpoint_pod_names names hostname-less endpoints by their pod", () => {
    const { msg } = ask(data, { name: "db-loose.db.demo.svc.cluster.local", type: A }, { endpointPodNames: true });
    expect(dataOf(msg, "A")).toEqual(["10.244.1.7"]);
  });
});

describe("ClusterDnsData: level-triggered and incremental", () => {
  it("upsert and remove change answers and move the serial", () => {
    const d = cluster();
    expectNxDomain(ask(d, { name: "api.demo.svc.cluster.local", type: A }).msg);
    expect(d.upsert("Service", svc("demo", "api", { clusterIP: "10.96.0.30", ports: [{ name: "http", port: 80 }] }), 1_700_000_100)).toBe(true);
    expect(d.serial).toBe(1_700_000_100);
    expect(dataOf(ask(d, { name: "api.demo.svc.cluster.local", type: A }).msg, "A")).toEqual(["10.96.0.30"]);
    expect(dataOf(ask(d, { name: "30.0.96.10.in-addr.arpa", type: PTR }).msg, "PTR")).toEqual(["api.demo.svc.cluster.local"]);
    // The same object again changes nothing.
    expect(d.upsert("Service", svc("demo", "api", { clusterIP: "10.96.0.30", ports: [{ name: "http", port: 80 }] }))).toBe(false);
    expect(d.remove("Service", { metadata: { namespace: "demo", name: "api" } })).toBe(true);
    expectNxDomain(ask(d, { name: "api.demo.svc.cluster.local", type: A }).msg);
    expect(ask(d, { name: "30.0.96.10.in-addr.arpa", type: PTR }).result.kind).toBe("forward");
    expect(d.serial).toBe(1_700_000_101);
  });

  it("an EndpointSlice update replaces its endpoints (and the reverse index)", () => {
    const d = cluster();
    d.upsert("EndpointSlice", slice("demo", "db", "db-xyz", [{ ip: "10.244.1.50", hostname: "db-0" }], [{ name: "pg", port: 5432, protocol: "TCP" }]));
    expect(dataOf(ask(d, { name: "db.demo.svc.cluster.local", type: A }).msg, "A")).toEqual(["10.244.1.50"]);
    expect(ask(d, { name: "5.1.244.10.in-addr.arpa", type: PTR }).result.kind).toBe("forward");
    expect(dataOf(ask(d, { name: "50.1.244.10.in-addr.arpa", type: PTR }).msg, "PTR")).toEqual(["db-0.db.demo.svc.cluster.local"]);
    d.remove("EndpointSlice", { metadata: { namespace: "demo", name: "db-xyz" } });
    expectNxDomain(ask(d, { name: "db.demo.svc.cluster.local", type: A }).msg);
  });

  it("a namespace removed hides its names; a terminating pod is no pod (verified)", () => {
    const d = cluster();
    d.remove("Namespace", { metadata: { name: "demo" } });
    expectNxDomain(ask(d, { name: "web.demo.svc.cluster.local", type: A }).msg);
    d.upsert("Namespace", { metadata: { name: "demo" } });
    d.upsert("Pod", { ...(pod("demo", "web-1", "10.244.1.10") as object), metadata: { namespace: "demo", name: "web-1", deletionTimestamp: "2024-01-01T00:00:00Z" } });
    expectNxDomain(ask(d, { name: "10-244-1-10.demo.pod.cluster.local", type: A }, { podMode: "verified" }).msg);
  });

  it("names that are no DNS labels are not trusted: a dotted hostname falls back to the dashed IP, a bad externalName is no CNAME", () => {
    const d = cluster();
    d.upsert("EndpointSlice", slice("demo", "db", "db-xyz", [{ ip: "10.244.1.5", hostname: "a.b" }, { ip: "10.244.1.6", hostname: "x".repeat(70) }], [{ name: "pg", port: 5432, protocol: "TCP" }]));
    expect(dataOf(ask(d, { name: "_pg._tcp.db.demo.svc.cluster.local", type: SRV }).msg, "SRV").map((s) => (s as { target: string }).target)).toEqual([
      "10-244-1-5.db.demo.svc.cluster.local",
      "10-244-1-6.db.demo.svc.cluster.local",
    ]);
    d.upsert("Service", svc("demo", "bad", { type: "ExternalName", externalName: `${"y".repeat(70)}.example.com` }));
    expectNxDomain(ask(d, { name: "bad.demo.svc.cluster.local", type: A }).msg);
    expect(d.upsert("Service", svc("demo", "Not_A.Label", { clusterIP: "10.96.0.99", ports: [{ port: 80 }] }))).toBe(false);
  });

  it("garbage objects are ignored, never thrown on", () => {
    const d = new ClusterDnsData();
    const junk: unknown[] = [null, 1, "x", [], {}, { metadata: 3 }, { metadata: { name: 5 } }, { metadata: { name: "a", namespace: "b" }, spec: "no" }, { metadata: { name: "a", namespace: "b", labels: "x" }, endpoints: 7 }];
    for (const kind of ["Service", "EndpointSlice", "Pod", "Namespace"] as const) for (const j of junk) expect(() => d.upsert(kind, j)).not.toThrow();
    expect(() =>
      d.upsert("EndpointSlice", {
        metadata: { namespace: "demo", name: "s", labels: { "kubernetes.io/service-name": "web" } },
        addressType: "IPv4",
        ports: [{ name: 1, port: "80" }, null],
        endpoints: [{ addresses: [5, "1.2.3.4", "999.1.1.1"], conditions: "yes", hostname: 9 }, "x"],
      }),
    ).not.toThrow();
    d.replaceAll({ namespaces: [{ metadata: { name: "demo" } }], services: [svc("demo", "web", { clusterIP: "None", ports: "x" })], endpointSlices: [], pods: [] });
    expectNxDomain(ask(d, { name: "web.demo.svc.cluster.local", type: A }).msg);
  });
});
