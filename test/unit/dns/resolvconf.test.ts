/**
 * A pod's resolv.conf as kubelet composes it (pkg/kubelet/network/dns/dns.go GetPodDNS) and
 * containerd writes it, and the names glibc and musl try (res_nsearch, name_from_dns_search).
 */
import { describe, expect, it } from "vitest";
import { candidates, formatResolvConf, parseResolvConf, podDnsConfig, podResolvConf, resolverConfig } from "../../../node-agent/dns/resolvconf.ts";

const NODE = "nameserver 172.31.0.1\nnameserver 1.1.1.1\nsearch corp.example. lab.example\noptions timeout:2 attempts:3\n";

function pod(namespace: string, spec: Record<string, unknown> = {}): unknown {
  return { metadata: { namespace, name: "p" }, spec };
}

describe("podResolvConf (kubelet GetPodDNS)", () => {
  it("ClusterFirst: the cluster search domains, then the node's; the cluster DNS only; ndots:5", () => {
    expect(podResolvConf(pod("demo", { dnsPolicy: "ClusterFirst" }), { hostResolvConf: NODE })).toBe(
      "search demo.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\nnameserver 10.96.0.10\noptions ndots:5\n",
    );
  });

  it("ClusterFirst with a node without search domains: the familiar three-line file", () => {
    expect(podResolvConf(pod("default"), { hostResolvConf: "nameserver 172.31.0.1\n" })).toBe(
      "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
    );
  });

  it("ClusterFirst on hostNetwork falls back to Default (the node's file)", () => {
    expect(podDnsConfig(pod("demo", { dnsPolicy: "ClusterFirst", hostNetwork: true }), { hostResolvConf: NODE })).toEqual({
      nameservers: ["172.31.0.1", "1.1.1.1"],
      searches: ["corp.example", "lab.example"],
      options: ["timeout:2", "attempts:3"],
    });
  });

  it("ClusterFirstWithHostNet on hostNetwork: cluster DNS", () => {
    expect(podDnsConfig(pod("kube-system", { dnsPolicy: "ClusterFirstWithHostNet", hostNetwork: true }), { hostResolvConf: NODE }).nameservers).toEqual(["10.96.0.10"]);
  });

  it("Default: the node's resolv.conf as kubelet parses it (last search and options lines win)", () => {
    const node = "nameserver 9.9.9.9\nsearch a.example\nsearch b.example.\noptions ndots:2\noptions rotate\n# comment\nnameserver 8.8.8.8\n";
    expect(podResolvConf(pod("demo", { dnsPolicy: "Default" }), { hostResolvConf: node })).toBe("search b.example\nnameserver 9.9.9.9\nnameserver 8.8.8.8\noptions rotate\n");
  });

  it("Default with kubelet --resolv-conf=\"\": nameserver 127.0.0.1, search .", () => {
    expect(podResolvConf(pod("demo", { dnsPolicy: "Default" }), {})).toBe("search .\nnameserver 127.0.0.1\n");
  });

  it("None with dnsConfig: only what the pod says", () => {
    const spec = {
      dnsPolicy: "None",
      dnsConfig: { nameservers: ["192.0.2.1", "192.0.2.1"], searches: ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"], options: [{ name: "ndots", value: "2" }, { name: "edns0" }] },
    };
    expect(podResolvConf(pod("demo", spec), { hostResolvConf: NODE })).toBe(
      "search ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 192.0.2.1\noptions ndots:2 edns0\n",
    );
  });

  it("ClusterFirst with dnsConfig: appended, duplicates dropped, options merged by name (the pod's win)", () => {
    const spec = { dnsConfig: { nameservers: ["10.96.0.10", "192.0.2.53"], searches: ["svc.cluster.local", "extra.example"], options: [{ name: "ndots", value: "2" }, { name: "single-request-reopen" }] } };
    expect(podDnsConfig(pod("demo", spec), { hostResolvConf: "" })).toEqual({
      nameservers: ["10.96.0.10", "192.0.2.53"],
      searches: ["demo.svc.cluster.local", "svc.cluster.local", "cluster.local", "extra.example"],
      options: ["ndots:2", "single-request-reopen"],
    });
  });

  it("limits: 3 nameservers, search domains over 253 characters dropped, 32 domains at most", () => {
    const spec = {
      dnsPolicy: "None",
      dnsConfig: { nameservers: ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"], searches: ["x".repeat(254), ...Array.from({ length: 40 }, (_, i) => `d${i}.example`)] },
    };
    const c = podDnsConfig(pod("demo", spec));
    expect(c.nameservers).toEqual(["1.1.1.1", "2.2.2.2", "3.3.3.3"]);
    expect(c.searches).toHaveLength(31); // 32 kept, then the over-long one dropped
    expect(c.searches[0]).toBe("d0.example");
  });

  it("no --cluster-dns: ClusterFirst falls back to Default", () => {
    expect(podDnsConfig(pod("demo"), { clusterDNS: [], hostResolvConf: NODE }).nameservers).toEqual(["172.31.0.1", "1.1.1.1"]);
  });

  it("another cluster domain and cluster DNS", () => {
    expect(podResolvConf(pod("demo"), { clusterDomain: "corp.local", clusterDNS: ["10.0.0.10"], hostResolvConf: "" })).toBe(
      "search demo.svc.corp.local svc.corp.local corp.local\nnameserver 10.0.0.10\noptions ndots:5\n",
    );
  });

  it("garbage pods never throw and get ClusterFirst in default", () => {
    for (const p of [null, 3, {}, { spec: "x" }, { metadata: { namespace: 5 }, spec: { dnsPolicy: 7, dnsConfig: { nameservers: "x", options: [null, { name: 1 }] } } }]) {
      expect(() => podResolvConf(p, { hostResolvConf: "" })).not.toThrow();
    }
    expect(podDnsConfig(null, { hostResolvConf: "" }).searches[0]).toBe("default.svc.cluster.local");
  });

  it("parseResolvConf and formatResolvConf round-trip", () => {
    const c = { nameservers: ["10.96.0.10"], searches: ["a.svc.cluster.local"], options: ["ndots:5"] };
    expect(parseResolvConf(formatResolvConf(c))).toEqual(c);
  });
});

describe("candidates (the stub resolver's search)", () => {
  const conf = "search demo.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";

  it("fewer dots than ndots: the search list first, then the name as is (glibc and musl)", () => {
    const expected = ["web.demo.svc.cluster.local", "web.svc.cluster.local", "web.cluster.local", "web"];
    expect(candidates("web", conf)).toEqual(expected);
    expect(candidates("web", conf, "musl")).toEqual(expected);
    expect(candidates("web.demo", conf)[0]).toBe("web.demo.demo.svc.cluster.local");
    expect(candidates("www.example.com", conf)).toEqual(["www.example.com.demo.svc.cluster.local", "www.example.com.svc.cluster.local", "www.example.com.cluster.local", "www.example.com"]);
  });

  it("a trailing dot: the name alone", () => {
    expect(candidates("web.demo.svc.cluster.local.", conf)).toEqual(["web.demo.svc.cluster.local"]);
    expect(candidates("example.com.", conf, "musl")).toEqual(["example.com"]);
  });

  it("at least ndots dots: glibc tries the name first, then the search list; musl the name alone", () => {
    const name = "a.b.c.d.e.f";
    expect(candidates(name, conf)).toEqual([name, `${name}.demo.svc.cluster.local`, `${name}.svc.cluster.local`, `${name}.cluster.local`]);
    expect(candidates(name, conf, "musl")).toEqual([name]);
  });

  it("ndots defaults to 1 and is capped at 15", () => {
    expect(resolverConfig("search x.example\n").ndots).toBe(1);
    expect(resolverConfig("options ndots:99\n").ndots).toBe(15);
    expect(candidates("host.lan", "search x.example\n")).toEqual(["host.lan", "host.lan.x.example"]);
  });

  it("glibc: a root in the search list stands for the name as is, which is then not tried again", () => {
    expect(candidates("web", "search . corp.example\n")).toEqual(["web", "web.corp.example"]);
  });

  it("a structured ResolvConf works as well as text", () => {
    expect(candidates("web", podDnsConfig(pod("demo"), { hostResolvConf: "" }))).toEqual(["web.demo.svc.cluster.local", "web.svc.cluster.local", "web.cluster.local", "web"]);
  });
});
