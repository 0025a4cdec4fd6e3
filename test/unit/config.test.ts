import { describe, expect, it } from "vitest";
import {
  CONFIG_ENV_VARS,
  ConfigError,
  loadClusterConfig,
  loadControlPlaneConfig,
  loadNodeAgentConfig,
  loadPkiConfig,
  IPVS_SCHEDULERS,
  PROXY_MODES,
  type ConfigEnvVar,
} from "../../cluster/config.ts";
import { isDns1123Label } from "../../cluster/syntax.ts";
import { UP_ENV_FLAGS, homeServerFirst, upEnvironment } from "../../cli/processes.ts";
import { clusterSettingsOf, loadClusterConfig as loadCluster, withClusterSettings } from "../../cluster/config.ts";

/** Runs `load` and returns the ConfigError it must throw, checking it names `variable`. */
function configError(load: () => unknown, variable: ConfigEnvVar): ConfigError {
  let thrown: unknown;
  try {
    load();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  const err = thrown as ConfigError;
  expect(err.name).toBe("ConfigError");
  expect(err.variable).toBe(variable);
  expect(err.message.startsWith(`${variable}: `)).toBe(true);
  return err;
}

const NODE = { KUBEWIRE_NODE_NAME: "node-1" };

describe("loadClusterConfig", () => {
  it("uses the embedded defaults with an empty environment", () => {
    expect(loadClusterConfig({})).toEqual({
      natsUrl: "nats://127.0.0.1:4222",
      clusterCidr: "10.244.0.0/16",
      nodeCidrMask: 24,
      serviceCidr: "10.96.0.0/12",
      underlayCidr: "172.31.0.0/24",
      vni: 1,
      logLevel: "info",
      proxyMode: "iptables",
      lbCidr: "127.0.2.0/24",
      clusterDomain: "cluster.local",
    });
  });

  it("takes each setting from its variable", () => {
    const cases: Array<[ConfigEnvVar, string, string, unknown]> = [
      ["KUBEWIRE_NATS_URL", "nats://a:4222,nats://b:4222", "natsUrl", "nats://a:4222,nats://b:4222"],
      ["KUBEWIRE_CLUSTER_CIDR", "10.32.0.0/12", "clusterCidr", "10.32.0.0/12"],
      ["KUBEWIRE_NODE_CIDR_MASK", "26", "nodeCidrMask", 26],
      ["KUBEWIRE_SERVICE_CIDR", "10.100.0.0/16", "serviceCidr", "10.100.0.0/16"],
      ["KUBEWIRE_UNDERLAY_CIDR", "192.168.50.0/24", "underlayCidr", "192.168.50.0/24"],
      ["KUBEWIRE_VNI", "4096", "vni", 4096],
      ["KUBEWIRE_LOG_LEVEL", "debug", "logLevel", "debug"],
      ["KUBEWIRE_PROXY_MODE", "ipvs", "proxyMode", "ipvs"],
      ["KUBEWIRE_LB_CIDR", "127.0.3.0/28", "lbCidr", "127.0.3.0/28"],
      ["KUBEWIRE_CLUSTER_DOMAIN", "Corp.Example.", "clusterDomain", "corp.example"],
    ];
    const defaults = loadClusterConfig({}) as unknown as Record<string, unknown>;
    for (const [variable, value, key, expected] of cases) {
      const cfg = loadClusterConfig({ [variable]: value }) as unknown as Record<string, unknown>;
      expect(cfg[key], variable).toEqual(expected);
      // ... and nothing else moves.
      expect({ ...cfg, [key]: defaults[key] }, variable).toEqual(defaults);
    }
  });

  it("accepts the VNI and node mask range boundaries", () => {
    expect(loadClusterConfig({ KUBEWIRE_VNI: "0" }).vni).toBe(0);
    expect(loadClusterConfig({ KUBEWIRE_VNI: String(0xffffff) }).vni).toBe(0xffffff);
    expect(loadClusterConfig({ KUBEWIRE_NODE_CIDR_MASK: "30" }).nodeCidrMask).toBe(30);
    expect(loadClusterConfig({ KUBEWIRE_NODE_CIDR_MASK: "16" }).nodeCidrMask).toBe(16);
  });

  it("names the variable of a bad CIDR", () => {
    for (const variable of ["KUBEWIRE_CLUSTER_CIDR", "KUBEWIRE_SERVICE_CIDR", "KUBEWIRE_UNDERLAY_CIDR", "KUBEWIRE_LB_CIDR"] as const) {
      const err = configError(() => loadClusterConfig({ [variable]: "10.0.0.0/33" }), variable);
      expect(err.message).toContain('"10.0.0.0/33"');
      configError(() => loadClusterConfig({ [variable]: "not-a-cidr" }), variable);
      configError(() => loadClusterConfig({ [variable]: "10.244.1.5/16" }), variable); // host bits set
      configError(() => loadClusterConfig({ [variable]: "" }), variable);
    }
  });

  it("takes each kube-proxy mode and rejects any other, listing the valid ones", () => {
    for (const mode of PROXY_MODES) expect(loadClusterConfig({ KUBEWIRE_PROXY_MODE: mode }).proxyMode).toBe(mode);
    for (const raw of ["userspace", "IPVS", "", " iptables", "kernelspace"]) {
      const err = configError(() => loadClusterConfig({ KUBEWIRE_PROXY_MODE: raw }), "KUBEWIRE_PROXY_MODE");
      expect(err.message).toBe(`KUBEWIRE_PROXY_MODE: must be one of iptables, ipvs, nftables, got ${JSON.stringify(raw)}`);
    }
  });

  it("canonicalises the LoadBalancer pool and wants room for an address in it", () => {
    expect(loadClusterConfig({ KUBEWIRE_LB_CIDR: "127.0.002.0/24" }).lbCidr).toBe("127.0.2.0/24");
    expect(loadClusterConfig({ KUBEWIRE_LB_CIDR: "127.0.2.0/30" }).lbCidr).toBe("127.0.2.0/30");
    for (const raw of ["127.0.2.0/31", "127.0.2.7/32"]) {
      expect(configError(() => loadClusterConfig({ KUBEWIRE_LB_CIDR: raw }), "KUBEWIRE_LB_CIDR").message).toContain("has no room for an address");
    }
  });

  it("rejects a LoadBalancer pool that overlaps the pod, service or underlay ranges, naming the other range", () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ KUBEWIRE_LB_CIDR: "10.244.7.0/24" }, "overlaps KUBEWIRE_CLUSTER_CIDR 10.244.0.0/16"],
      [{ KUBEWIRE_LB_CIDR: "10.0.0.0/8" }, "overlaps KUBEWIRE_CLUSTER_CIDR 10.244.0.0/16"],
      [{ KUBEWIRE_LB_CIDR: "10.100.0.0/24" }, "overlaps KUBEWIRE_SERVICE_CIDR 10.96.0.0/12"],
      [{ KUBEWIRE_LB_CIDR: "172.31.0.128/25" }, "overlaps KUBEWIRE_UNDERLAY_CIDR 172.31.0.0/24"],
      [{ KUBEWIRE_LB_CIDR: "127.0.2.0/24", KUBEWIRE_UNDERLAY_CIDR: "127.0.0.0/16" }, "overlaps KUBEWIRE_UNDERLAY_CIDR 127.0.0.0/16"],
    ];
    for (const [env, want] of cases) {
      const err = configError(() => loadClusterConfig(env), "KUBEWIRE_LB_CIDR");
      expect(err.message).toContain(want);
    }
  });

  it("rejects a VNI that is not a 24-bit integer", () => {
    for (const raw of ["-1", "16777216", "1.5", "abc", "", " ", "0x10", "1e3"]) {
      const err = configError(() => loadClusterConfig({ KUBEWIRE_VNI: raw }), "KUBEWIRE_VNI");
      expect(err.message).toContain("[0, 16777215]");
    }
  });

  it("rejects a node mask outside [8, 30]", () => {
    for (const raw of ["31", "7", "twenty-four", ""]) {
      configError(() => loadClusterConfig({ KUBEWIRE_NODE_CIDR_MASK: raw }), "KUBEWIRE_NODE_CIDR_MASK");
    }
  });

  it("rejects a node mask wider than the cluster CIDR", () => {
    const err = configError(
      () => loadClusterConfig({ KUBEWIRE_CLUSTER_CIDR: "10.244.0.0/16", KUBEWIRE_NODE_CIDR_MASK: "12" }),
      "KUBEWIRE_NODE_CIDR_MASK",
    );
    expect(err.message).toContain("/12");
    expect(err.message).toContain("10.244.0.0/16");
    // Equal to the cluster prefix is allowed: one node gets the whole cluster CIDR.
    expect(loadClusterConfig({ KUBEWIRE_CLUSTER_CIDR: "10.244.0.0/24", KUBEWIRE_NODE_CIDR_MASK: "24" }).nodeCidrMask).toBe(24);
  });

  it("lists every variable it reads in CONFIG_ENV_VARS", () => {
    expect(Object.keys(CONFIG_ENV_VARS).sort()).toEqual([
      "KUBEWIRE_API_ADDRESS",
      "KUBEWIRE_API_TLS_CERT",
      "KUBEWIRE_API_TLS_KEY",
      "KUBEWIRE_API_TOKEN",
      "KUBEWIRE_BOOTSTRAP_TOKEN",
      "KUBEWIRE_BOOTSTRAP_TOKEN_TTL",
      "KUBEWIRE_CLUSTER_CIDR",
      "KUBEWIRE_CLUSTER_DOMAIN",
      "KUBEWIRE_CRON_MINUTE_SECONDS",
      "KUBEWIRE_DEFAULT_TOLERATION_SECONDS",
      "KUBEWIRE_DNS_PORT",
      "KUBEWIRE_DNS_UPSTREAM",
      "KUBEWIRE_EVENT_TTL_SECONDS",
      "KUBEWIRE_FLOW_BUFFER",
      "KUBEWIRE_HEARTBEAT_SECONDS",
      "KUBEWIRE_HOST_ADDRESS",
      "KUBEWIRE_HOUSEKEEPING_SECONDS",
      "KUBEWIRE_IPVS_SCHEDULER",
      "KUBEWIRE_LB_CIDR",
      "KUBEWIRE_LOG_LEVEL",
      "KUBEWIRE_NATS_CA",
      "KUBEWIRE_NATS_CA_HASH",
      "KUBEWIRE_NATS_CREDS",
      "KUBEWIRE_NATS_ISSUER",
      "KUBEWIRE_NATS_REPLICAS",
      "KUBEWIRE_NATS_SERVERS",
      "KUBEWIRE_NATS_URL",
      "KUBEWIRE_NODE_CIDR_MASK",
      "KUBEWIRE_NODE_GRACE_SECONDS",
      "KUBEWIRE_NODE_NAME",
      "KUBEWIRE_PROXY_MODE",
      "KUBEWIRE_SERVICE_CIDR",
      "KUBEWIRE_TOMBSTONE_TTL_SECONDS",
      "KUBEWIRE_UNDERLAY_CIDR",
      "KUBEWIRE_VNI",
    ]);
  });
});

describe("loadControlPlaneConfig", () => {
  const TOKEN = "0123456789abcdef0123";
  it("reads the API address and token, with the grace defaults", () => {
    const cfg = loadControlPlaneConfig({ KUBEWIRE_API_ADDRESS: "127.0.0.1:7443", KUBEWIRE_API_TOKEN: TOKEN });
    expect(cfg).toMatchObject({ apiHost: "127.0.0.1", apiPort: 7443, apiToken: TOKEN, nodeGraceSeconds: 10, defaultTolerationSeconds: 20 });
  });

  it("reads the event TTL, delete-marker TTL and housekeeping period, with kube-apiserver's defaults", () => {
    expect(loadControlPlaneConfig({ KUBEWIRE_API_TOKEN: TOKEN })).toMatchObject({ eventTtlSeconds: 3600, tombstoneTtlSeconds: 300, housekeepingSeconds: 60 });
    const cfg = loadControlPlaneConfig({ KUBEWIRE_API_TOKEN: TOKEN, KUBEWIRE_EVENT_TTL_SECONDS: "2", KUBEWIRE_TOMBSTONE_TTL_SECONDS: "0", KUBEWIRE_HOUSEKEEPING_SECONDS: "1" });
    expect(cfg).toMatchObject({ eventTtlSeconds: 2, tombstoneTtlSeconds: 0, housekeepingSeconds: 1 });
    expect(() => loadControlPlaneConfig({ KUBEWIRE_API_TOKEN: TOKEN, KUBEWIRE_EVENT_TTL_SECONDS: "0" })).toThrow(/KUBEWIRE_EVENT_TTL_SECONDS/);
  });

  it("reads the CronJob clock's minute length (60 s unless shortened for tests)", () => {
    expect(loadControlPlaneConfig({ KUBEWIRE_API_TOKEN: TOKEN }).cronMinuteSeconds).toBe(60);
    expect(loadControlPlaneConfig({ KUBEWIRE_API_TOKEN: TOKEN, KUBEWIRE_CRON_MINUTE_SECONDS: "3" }).cronMinuteSeconds).toBe(3);
    expect(() => loadControlPlaneConfig({ KUBEWIRE_API_TOKEN: TOKEN, KUBEWIRE_CRON_MINUTE_SECONDS: "0" })).toThrow(/KUBEWIRE_CRON_MINUTE_SECONDS/);
  });

  it("requires a token of at least 16 characters", () => {
    expect(() => loadControlPlaneConfig({})).toThrow(/KUBEWIRE_API_TOKEN: required/);
    expect(() => loadControlPlaneConfig({ KUBEWIRE_API_TOKEN: "short" })).toThrow(ConfigError);
  });

  it("rejects an API address that is not host:port", () => {
    expect(() => loadControlPlaneConfig({ KUBEWIRE_API_TOKEN: TOKEN, KUBEWIRE_API_ADDRESS: "6443" })).toThrow(/KUBEWIRE_API_ADDRESS: want host:port/);
  });
});

describe("loadNodeAgentConfig", () => {
  it("adds the node name and the default host address to the cluster defaults", () => {
    const resolvConf = () => "# a comment\nsearch example.org\nnameserver 10.255.255.53\nnameserver fe80::1\noptions ndots:1\n";
    expect(loadNodeAgentConfig(NODE, resolvConf)).toEqual({
      ...loadClusterConfig({}),
      nodeName: "node-1",
      hostAddress: "127.0.0.1",
      heartbeatSeconds: 1,
      ipvsScheduler: "rr",
      dnsPort: 1053,
      dnsUpstream: ["10.255.255.53:53"],
      flowBuffer: 65_536,
    });
  });

  it("reads the DNS upstream as IPv4[:port] list or none, and refuses anything else; no resolv.conf means none", () => {
    expect(loadNodeAgentConfig({ ...NODE, KUBEWIRE_DNS_UPSTREAM: "127.0.0.1:5300, 127.0.0.2" }).dnsUpstream).toEqual(["127.0.0.1:5300", "127.0.0.2:53"]);
    expect(loadNodeAgentConfig({ ...NODE, KUBEWIRE_DNS_UPSTREAM: "none" }).dnsUpstream).toEqual([]);
    expect(loadNodeAgentConfig(NODE, () => { throw new Error("ENOENT"); }).dnsUpstream).toEqual([]);
    for (const bad of ["dns.google", "1.2.3.4:0", "1.2.3.4:70000", "[::1]:53"]) configError(() => loadNodeAgentConfig({ ...NODE, KUBEWIRE_DNS_UPSTREAM: bad }), "KUBEWIRE_DNS_UPSTREAM");
    expect(loadNodeAgentConfig({ ...NODE, KUBEWIRE_DNS_PORT: "5353" }).dnsPort).toBe(5353);
    configError(() => loadNodeAgentConfig({ ...NODE, KUBEWIRE_DNS_PORT: "0" }), "KUBEWIRE_DNS_PORT");
    configError(() => loadClusterConfig({ KUBEWIRE_CLUSTER_DOMAIN: "bad_domain" }), "KUBEWIRE_CLUSTER_DOMAIN");
  });

  it("takes each IPVS scheduler kube-proxy knows, and rejects any other", () => {
    expect([...IPVS_SCHEDULERS]).toEqual(["rr", "wrr", "lc", "wlc", "sh", "dh", "sed", "nq"]);
    for (const s of IPVS_SCHEDULERS) expect(loadNodeAgentConfig({ ...NODE, KUBEWIRE_IPVS_SCHEDULER: s }).ipvsScheduler).toBe(s);
    for (const raw of ["RR", "mh", "fo", ""]) {
      const err = configError(() => loadNodeAgentConfig({ ...NODE, KUBEWIRE_IPVS_SCHEDULER: raw }), "KUBEWIRE_IPVS_SCHEDULER");
      expect(err.message).toContain("must be one of rr, wrr, lc, wlc, sh, dh, sed, nq");
    }
  });

  it("refuses a LoadBalancer pool that contains the node's own host address", () => {
    const err = configError(() => loadNodeAgentConfig({ ...NODE, KUBEWIRE_HOST_ADDRESS: "127.0.2.9" }), "KUBEWIRE_LB_CIDR");
    expect(err.message).toBe("KUBEWIRE_LB_CIDR: 127.0.2.0/24 contains this node's KUBEWIRE_HOST_ADDRESS 127.0.2.9");
    expect(loadNodeAgentConfig({ ...NODE, KUBEWIRE_HOST_ADDRESS: "127.0.1.9" }).lbCidr).toBe("127.0.2.0/24");
  });

  it("reads the proxy mode and the LoadBalancer pool as every process does (cluster-wide)", () => {
    const cfg = loadNodeAgentConfig({ ...NODE, KUBEWIRE_PROXY_MODE: "nftables", KUBEWIRE_LB_CIDR: "127.0.9.0/24" });
    expect(cfg).toMatchObject({ proxyMode: "nftables", lbCidr: "127.0.9.0/24" });
  });

  it("takes KUBEWIRE_HOST_ADDRESS and the cluster variables", () => {
    const cfg = loadNodeAgentConfig({ ...NODE, KUBEWIRE_HOST_ADDRESS: "127.0.1.3", KUBEWIRE_VNI: "42" });
    expect(cfg.hostAddress).toBe("127.0.1.3");
    expect(cfg.vni).toBe(42);
  });

  it("requires KUBEWIRE_NODE_NAME", () => {
    expect(configError(() => loadNodeAgentConfig({}), "KUBEWIRE_NODE_NAME").message).toContain("required");
    configError(() => loadNodeAgentConfig({ KUBEWIRE_NODE_NAME: "" }), "KUBEWIRE_NODE_NAME");
  });

  it("rejects a node name that is not a DNS-1123 label", () => {
    for (const name of ["Node-1", "node_1", "-node", "node-", "node.1", "a".repeat(64)]) {
      const err = configError(() => loadNodeAgentConfig({ KUBEWIRE_NODE_NAME: name }), "KUBEWIRE_NODE_NAME");
      expect(err.message).toContain("DNS-1123");
    }
  });

  it("reports cluster settings errors for the node agent too", () => {
    configError(() => loadNodeAgentConfig({ ...NODE, KUBEWIRE_VNI: "-5" }), "KUBEWIRE_VNI");
  });
});

describe("loadPkiConfig", () => {
  const TOKEN = { KUBEWIRE_BOOTSTRAP_TOKEN: "abcdef.0123456789abcdef" };
  it("makes the material for the one server `nats` unless KUBEWIRE_NATS_SERVERS names the cluster's", () => {
    expect(loadPkiConfig(TOKEN).natsServers).toEqual(["nats"]);
    expect(loadPkiConfig({ ...TOKEN, KUBEWIRE_NATS_SERVERS: "nats, nats-2,nats-3" }).natsServers).toEqual(["nats", "nats-2", "nats-3"]);
  });

  it("refuses server names that are no DNS labels, repeat, or are more than JetStream replicates to", () => {
    for (const servers of ["", "nats,", "Nats", "nats,nats", "a,b,c,d,e,f", "nats_2"]) configError(() => loadPkiConfig({ ...TOKEN, KUBEWIRE_NATS_SERVERS: servers }), "KUBEWIRE_NATS_SERVERS");
  });
});

describe("isDns1123Label", () => {
  it("accepts lower-case alphanumerics and inner dashes up to 63 characters", () => {
    for (const name of ["a", "node-1", "0", "a-b-c", "a".repeat(63)]) expect(isDns1123Label(name), name).toBe(true);
    for (const name of ["", "A", "a_b", "-a", "a-", "a".repeat(64), "a b"]) expect(isDns1123Label(name), name).toBe(false);
  });
});

describe("kubewire up flags (upEnvironment)", () => {
  it("maps each flag to the variable every process reads, and sets nothing unasked", () => {
    expect(upEnvironment({})).toEqual({});
    expect(upEnvironment({ "proxy-mode": "ipvs", "ipvs-scheduler": "wlc", "lb-cidr": "127.0.5.0/24", "cluster-cidr": "10.32.0.0/16" })).toEqual({
      KUBEWIRE_PROXY_MODE: "ipvs",
      KUBEWIRE_IPVS_SCHEDULER: "wlc",
      KUBEWIRE_LB_CIDR: "127.0.5.0/24",
      KUBEWIRE_CLUSTER_CIDR: "10.32.0.0/16",
    });
    for (const variable of Object.values(UP_ENV_FLAGS)) expect(Object.keys(CONFIG_ENV_VARS)).toContain(variable);
  });

  it("refuses a value the processes would refuse, naming the flag", () => {
    const cases: Array<[Parameters<typeof upEnvironment>[0], string]> = [
      [{ "proxy-mode": "userspace" }, '--proxy-mode: must be one of iptables, ipvs, nftables, got "userspace"'],
      [{ "ipvs-scheduler": "mh" }, '--ipvs-scheduler: must be one of rr, wrr, lc, wlc, sh, dh, sed, nq, got "mh"'],
      [{ "lb-cidr": "127.0.2.1/24" }, '--lb-cidr: "127.0.2.1/24" is not an aligned IPv4 CIDR (e.g. 127.0.2.0/24)'],
      [{ "cluster-cidr": "10.244.0.0/33" }, '--cluster-cidr: "10.244.0.0/33" is not an aligned IPv4 CIDR (e.g. 10.244.0.0/16)'],
      [{ "lb-cidr": "10.244.0.0/24" }, "--lb-cidr: 10.244.0.0/24 overlaps KUBEWIRE_CLUSTER_CIDR 10.244.0.0/16"],
      // The nodes' NodePort addresses (127.0.1.N) are not the load balancers'.
      [{ "lb-cidr": "127.0.0.0/16" }, "--lb-cidr: 127.0.0.0/16 contains this node's KUBEWIRE_HOST_ADDRESS 127.0.1.1"],
      // The pool checked against the pod network the same command sets.
      [{ "lb-cidr": "10.50.0.0/24", "cluster-cidr": "10.50.0.0/16" }, "--lb-cidr: 10.50.0.0/24 overlaps KUBEWIRE_CLUSTER_CIDR 10.50.0.0/16"],
    ];
    for (const [flags, message] of cases) expect(() => upEnvironment(flags), message).toThrow(message);
  });
});

describe("node-agents spread over a NATS cluster (homeServerFirst)", () => {
  it("puts node N's home server first and keeps the others as fail-over, in order", () => {
    const urls = "tls://a:1,tls://b:2,tls://c:3";
    expect([1, 2, 3, 4].map((i) => homeServerFirst(urls, i))).toEqual(["tls://a:1,tls://b:2,tls://c:3", "tls://b:2,tls://c:3,tls://a:1", "tls://c:3,tls://a:1,tls://b:2", "tls://a:1,tls://b:2,tls://c:3"]);
    expect(homeServerFirst("nats://x:4222", 7)).toBe("nats://x:4222");
  });
});

describe("the cluster's published settings (withClusterSettings)", () => {
  const published = clusterSettingsOf(loadCluster({ KUBEWIRE_PROXY_MODE: "ipvs", KUBEWIRE_CLUSTER_CIDR: "10.200.0.0/16", KUBEWIRE_LB_CIDR: "127.0.9.0/24" }));

  it("fills in every setting the node was not given", () => {
    const env = withClusterSettings({ KUBEWIRE_NODE_NAME: "n9" }, published);
    expect(loadCluster(env)).toMatchObject({ proxyMode: "ipvs", clusterCidr: "10.200.0.0/16", lbCidr: "127.0.9.0/24", vni: 1 });
    expect(env.KUBEWIRE_NODE_NAME).toBe("n9");
  });

  it("accepts a given setting equal to the cluster's, in any spelling the loader reads the same", () => {
    expect(withClusterSettings({ KUBEWIRE_CLUSTER_CIDR: "010.200.0.0/16", KUBEWIRE_PROXY_MODE: "ipvs" }, published).KUBEWIRE_CLUSTER_CIDR).toBe("010.200.0.0/16");
  });

  it("refuses a given setting that differs, naming both values", () => {
    expect(() => withClusterSettings({ KUBEWIRE_PROXY_MODE: "nftables" }, published)).toThrow('KUBEWIRE_PROXY_MODE: "nftables" here, but the cluster runs "ipvs" (kube-system/kubewire-cluster-config): leave it unset to take the cluster\'s');
  });

  it("trusts nothing but string values of the known keys", () => {
    expect(withClusterSettings({}, { KUBEWIRE_PROXY_MODE: 7, KUBEWIRE_NATS_URL: "nats://evil:1", other: "x" })).toEqual({});
    expect(withClusterSettings({}, null)).toEqual({});
    expect(withClusterSettings({}, "garbage")).toEqual({});
  });
});
