/**
 * kube-proxy iptables mode (node-agent/proxy/iptables.ts): packet-flow tests in the style of
 * kube-proxy's pkg/proxy/iptables/proxier_test.go (a first packet traced through the compiled
 * rules), partial sync against full sync, and the iptables-save dump against a golden file.
 *
 * Golden files are rewritten with UPDATE_GOLDEN=1.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseIpv4Addr } from "../../../overlay/wire/index.ts";
import { CtState } from "../../../node-agent/packet.ts";
import { Hook, type HookContext, type RuleSet } from "../../../node-agent/netfilter.ts";
import { IptablesBackend, RECENT_LIST_MAX, iptablesChainName } from "../../../node-agent/proxy/iptables.ts";
import { ChangeTracker, type ProxyNode } from "../../../node-agent/proxy/model.ts";
import { mulberry32 } from "../wire/rng.ts";
import { firstPacket, testNode, tracePacket, type FlowPacket } from "./flow.ts";
import { service, slice, type Ep } from "./objects.ts";

const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), "__golden__");

// ---------------------------------------------------------------------------------------------
// Builders: a Service and its one EndpointSlice (objects.ts) from a compact definition.

interface PortDef {
  name?: string;
  port: number;
  targetPort?: number;
  nodePort?: number;
  protocol?: "TCP" | "UDP";
}
interface SvcDef {
  name: string;
  ns?: string;
  clusterIP: string;
  type?: "ClusterIP" | "NodePort" | "LoadBalancer";
  ports: PortDef[];
  eps?: Ep[];
  etp?: "Local" | "Cluster";
  itp?: "Local" | "Cluster";
  affinitySeconds?: number;
  externalIPs?: string[];
  lbIPs?: string[];
  sourceRanges?: string[];
  healthCheckNodePort?: number;
}

function put(tracker: ChangeTracker, d: SvcDef): void {
  const ns = d.ns ?? "default";
  const spec = {
    type: d.type ?? "ClusterIP",
    clusterIP: d.clusterIP,
    ports: d.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort ?? p.port, nodePort: p.nodePort, protocol: p.protocol ?? "TCP" })),
    externalTrafficPolicy: d.etp,
    internalTrafficPolicy: d.itp,
    sessionAffinity: d.affinitySeconds !== undefined ? "ClientIP" : "None",
    sessionAffinityConfig: d.affinitySeconds !== undefined ? { clientIP: { timeoutSeconds: d.affinitySeconds } } : undefined,
    externalIPs: d.externalIPs,
    loadBalancerSourceRanges: d.sourceRanges,
    healthCheckNodePort: d.healthCheckNodePort,
  };
  const status = d.lbIPs ? { loadBalancer: { ingress: d.lbIPs.map((ip) => ({ ip })) } } : {};
  const ports = d.ports.map((p) => ({ name: p.name ?? "", port: p.targetPort ?? p.port, protocol: p.protocol ?? "TCP" }));
  tracker.service(`${ns}/${d.name}`, service(d.name, spec, status, ns));
  tracker.slice(`${ns}/${d.name}`, `${d.name}-abcde`, slice(d.name, `${d.name}-abcde`, d.eps ?? [], ports, ns));
}

interface World {
  node: ProxyNode;
  backend: IptablesBackend;
  tracker: ChangeTracker;
  sets: readonly RuleSet[];
  trace(p: FlowPacket, now?: number): ReturnType<typeof tracePacket>;
}

function world(defs: SvcDef[], seed = 1, node = testNode()): World {
  const tracker = new ChangeTracker(node.name);
  for (const d of defs) put(tracker, d);
  const backend = new IptablesBackend({ node, rng: mulberry32(seed) });
  const { state, changed } = tracker.take();
  const w: World = {
    node,
    backend,
    tracker,
    sets: backend.sync(state, changed),
    trace: (p, now = 0) => tracePacket(w.sets, node, p, now),
  };
  return w;
}

const POD = "10.244.1.9"; // a pod on node-1 (testNode: pods 10.244.1.0/24)
const NODE_IP = "172.31.0.2";
const OUTSIDE = "203.0.113.7";

const web = (eps: Ep[], extra: Partial<SvcDef> = {}): SvcDef => ({ name: "web", clusterIP: "10.96.0.12", ports: [{ name: "http", port: 80, targetPort: 8080 }], eps, ...extra });
const nodePortSvc = (eps: Ep[], etp: "Local" | "Cluster", extra: Partial<SvcDef> = {}): SvcDef => ({
  name: "np",
  clusterIP: "10.96.0.20",
  type: "NodePort",
  ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30080 }],
  etp,
  eps,
  ...extra,
});

const threeEps: Ep[] = [
  { ip: "10.244.1.5", node: "node-1" },
  { ip: "10.244.2.5", node: "node-2" },
  { ip: "10.244.3.5", node: "node-3" },
];

// ---------------------------------------------------------------------------------------------

describe("iptables chain names", () => {
  it("hash like kube-proxy (names seen on real clusters)", () => {
    expect(iptablesChainName("KUBE-SVC-", "default/kubernetes:https", "tcp")).toBe("KUBE-SVC-NPX46M4PTMTKRN6Y");
    expect(iptablesChainName("KUBE-SVC-", "kube-system/kube-dns:dns", "udp")).toBe("KUBE-SVC-TCOU7JCQXEZGVUNU");
    expect(iptablesChainName("KUBE-SVC-", "kube-system/kube-dns:dns-tcp", "tcp")).toBe("KUBE-SVC-ERIFXISQEP7F7OF4");
    const sep = iptablesChainName("KUBE-SEP-", "default/web:http", "tcp", "10.244.1.5:8080");
    expect(sep).toMatch(/^KUBE-SEP-[A-Z2-7]{16}$/);
    expect(sep).not.toBe(iptablesChainName("KUBE-SEP-", "default/web:http", "tcp", "10.244.2.5:8080"));
    // SVC, SVL, EXT and FW share the hash, only the prefix differs.
    expect(iptablesChainName("KUBE-EXT-", "default/web:http", "tcp").slice(9)).toBe(iptablesChainName("KUBE-SVC-", "default/web:http", "tcp").slice(9));
  });
});

describe("iptables ClusterIP", () => {
  it("pod -> ClusterIP is DNATed to an endpoint and not masqueraded, the path named", () => {
    const w = world([web(threeEps)]);
    const r = w.trace({ src: POD, dst: "10.96.0.12", dport: 80, from: "pod" });
    expect(r.verdict).toBe("accept");
    expect(r.dnat).toMatch(/^10\.244\.[123]\.5:8080$/);
    expect(r.masquerade).toBe(false);
    const svc = iptablesChainName("KUBE-SVC-", "default/web:http", "tcp");
    expect(r.rules[0]).toMatch(new RegExp(`^KUBE-SERVICES -d 10\\.96\\.0\\.12/32 -p tcp --dport 80 -> ${svc} \\(default/web:http\\) -> KUBE-SEP-[A-Z2-7]{16}( \\(statistic 0\\.\\d{5}\\))? -> DNAT ${r.dnat!.replace(/\./g, "\\.")}$`));
  });

  it("node -> ClusterIP is masqueraded (! -s clusterCIDR)", () => {
    const w = world([web([{ ip: "10.244.2.5", node: "node-2" }])]);
    const r = w.trace({ src: NODE_IP, dst: "10.96.0.12", dport: 80, from: "node" });
    expect(r).toMatchObject({ verdict: "accept", dnat: "10.244.2.5:8080", masquerade: true });
    expect(r.rules).toEqual([
      `KUBE-SERVICES -d 10.96.0.12/32 -p tcp --dport 80 -> ${iptablesChainName("KUBE-SVC-", "default/web:http", "tcp")} (default/web:http) -> KUBE-MARK-MASQ (! -s 10.244.0.0/16) -> ${iptablesChainName("KUBE-SEP-", "default/web:http", "tcp", "10.244.2.5:8080")} -> DNAT 10.244.2.5:8080`,
      "KUBE-POSTROUTING kubernetes service traffic requiring SNAT -> MASQUERADE",
    ]);
  });

  it("traffic from outside the cluster to a ClusterIP is masqueraded", () => {
    const w = world([web([{ ip: "10.244.2.5", node: "node-2" }])]);
    const r = w.trace({ src: OUTSIDE, dst: "10.96.0.12", dport: 80, from: "outside" });
    expect(r).toMatchObject({ verdict: "accept", dnat: "10.244.2.5:8080", masquerade: true });
  });

  it("hairpin: a pod reaching itself through its service is masqueraded", () => {
    const w = world([web([{ ip: "10.244.1.5", node: "node-1" }])]);
    const r = w.trace({ src: "10.244.1.5", dst: "10.96.0.12", dport: 80, from: "pod" });
    expect(r).toMatchObject({ verdict: "accept", dnat: "10.244.1.5:8080", masquerade: true });
    expect(r.rules[0]).toContain("KUBE-MARK-MASQ (hairpin -s 10.244.1.5/32)");
  });

  it("statistic --mode random spreads 3000 first packets evenly over 3 endpoints (within 10 %)", () => {
    const w = world([web(threeEps)], 42);
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const r = w.trace({ src: POD, sport: 10000 + i, dst: "10.96.0.12", dport: 80, from: "pod" });
      counts.set(r.dnat!, (counts.get(r.dnat!) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(["10.244.1.5:8080", "10.244.2.5:8080", "10.244.3.5:8080"]);
    for (const n of counts.values()) expect(Math.abs(n - 1000)).toBeLessThan(100);
  });

  it("ClientIP affinity pins a client, not others, and lets go after timeoutSeconds", () => {
    const w = world([web(threeEps, { affinitySeconds: 60 })], 7);
    const first = w.trace({ src: POD, dst: "10.96.0.12", dport: 80, from: "pod" }, 1000);
    expect(first.rules[0]).toContain("(statistic");
    for (let i = 1; i <= 20; i++) {
      const r = w.trace({ src: POD, sport: 20000 + i, dst: "10.96.0.12", dport: 80, from: "pod" }, 1000 + i * 1000);
      expect(r.dnat).toBe(first.dnat);
      expect(r.rules[0]).toContain("(recent affinity)");
    }
    // Other clients are spread (and pinned to their own choice).
    const others = new Set<string>();
    for (let i = 0; i < 30; i++) others.add(w.trace({ src: `10.244.1.${100 + i}`, dst: "10.96.0.12", dport: 80, from: "pod" }, 30_000).dnat!);
    expect(others.size).toBeGreaterThan(1);
    // The last --set was at 21 s; 60 s later the entry has expired and is reaped.
    const later = w.trace({ src: POD, dst: "10.96.0.12", dport: 80, from: "pod" }, 21_000 + 60_001);
    expect(later.rules[0]).toContain("(statistic");
    // The affinity lists are runtime state: a sync (full or partial) keeps them.
    const pinned = w.trace({ src: "10.244.1.100", dst: "10.96.0.12", dport: 80, from: "pod" }, 30_000);
    put(w.tracker, web(threeEps, { affinitySeconds: 60 }));
    const { state, changed } = w.tracker.take();
    w.sets = w.backend.sync(state, changed);
    const again = w.trace({ src: "10.244.1.100", dst: "10.96.0.12", dport: 80, from: "pod" }, 31_000);
    expect(again.dnat).toBe(pinned.dnat);
    expect(again.rules[0]).toContain("(recent affinity)");
  });

  it("recent lists are bounded like xt_recent (100 sources, the oldest evicted)", () => {
    const w = world([web([{ ip: "10.244.2.5", node: "node-2" }], { affinitySeconds: 600 })]);
    for (let i = 0; i < 150; i++) w.trace({ src: `10.244.5.${i}`, dst: "10.96.0.12", dport: 80, from: "remote-pod" }, i);
    const sep = iptablesChainName("KUBE-SEP-", "default/web:http", "tcp", "10.244.2.5:8080");
    const table = w.backend.recentTable(sep)!;
    expect(table).toHaveLength(RECENT_LIST_MAX);
    expect(table[0]).toEqual({ src: parseIpv4Addr("10.244.5.50"), lastSeen: 50 });
    expect(table.at(-1)).toEqual({ src: parseIpv4Addr("10.244.5.149"), lastSeen: 149 });
  });

  it("no endpoints: REJECT with the rule named (ClusterIP and NodePort)", () => {
    const w = world([web([]), nodePortSvc([], "Cluster")]);
    const r = w.trace({ src: POD, dst: "10.96.0.12", dport: 80, from: "pod" });
    expect(r.verdict).toBe("reject");
    expect(r.rules).toEqual(["KUBE-SERVICES default/web:http has no endpoints -> REJECT"]);
    const n = w.trace({ src: OUTSIDE, dst: NODE_IP, dport: 30080, from: "outside" });
    expect(n.verdict).toBe("reject");
    expect(n.rules).toEqual(["KUBE-EXTERNAL-SERVICES default/np:http has no endpoints -> REJECT"]);
    // A node-local client is rejected in OUTPUT.
    expect(w.trace({ src: NODE_IP, dst: "10.96.0.12", dport: 80, from: "node" }).verdict).toBe("reject");
  });

  it("terminating-but-serving endpoints are used only when no ready endpoint is left", () => {
    const term: Ep = { ip: "10.244.3.5", node: "node-3", ready: false, serving: true, terminating: true };
    const gone: Ep = { ip: "10.244.3.6", node: "node-3", ready: false, serving: false, terminating: true };
    const w = world([web([{ ip: "10.244.2.5", node: "node-2" }, term, gone])]);
    for (let i = 0; i < 20; i++) expect(w.trace({ src: POD, sport: 30000 + i, dst: "10.96.0.12", dport: 80, from: "pod" }).dnat).toBe("10.244.2.5:8080");
    const w2 = world([web([term, gone])]);
    for (let i = 0; i < 20; i++) expect(w2.trace({ src: POD, sport: 30000 + i, dst: "10.96.0.12", dport: 80, from: "pod" }).dnat).toBe("10.244.3.5:8080");
  });

  it("named multiple ports get their own chains and target ports", () => {
    const d: SvcDef = {
      name: "multi",
      clusterIP: "10.96.0.30",
      ports: [
        { name: "http", port: 80, targetPort: 8080 },
        { name: "metrics", port: 9090, targetPort: 9100 },
      ],
      eps: [{ ip: "10.244.2.7", node: "node-2" }],
    };
    const w = world([d]);
    const a = w.trace({ src: POD, dst: "10.96.0.30", dport: 80, from: "pod" });
    const b = w.trace({ src: POD, dst: "10.96.0.30", dport: 9090, from: "pod" });
    expect(a.dnat).toBe("10.244.2.7:8080");
    expect(b.dnat).toBe("10.244.2.7:9100");
    expect(a.rules[0]).toContain(iptablesChainName("KUBE-SVC-", "default/multi:http", "tcp"));
    expect(b.rules[0]).toContain(iptablesChainName("KUBE-SVC-", "default/multi:metrics", "tcp"));
    // Another port of the VIP is not captured.
    expect(w.trace({ src: POD, dst: "10.96.0.30", dport: 81, from: "pod" }).dnat).toBeUndefined();
  });

  it("UDP services match UDP only", () => {
    const dns: SvcDef = { name: "kube-dns", ns: "kube-system", clusterIP: "10.96.0.10", ports: [{ name: "dns", port: 53, protocol: "UDP" }], eps: [{ ip: "10.244.2.3", node: "node-2" }] };
    const w = world([dns]);
    const r = w.trace({ src: POD, dst: "10.96.0.10", dport: 53, proto: "UDP", from: "pod" });
    expect(r.dnat).toBe("10.244.2.3:53");
    expect(r.rules[0]).toContain("-p udp --dport 53 -> KUBE-SVC-TCOU7JCQXEZGVUNU (kube-system/kube-dns:dns)");
    expect(w.trace({ src: POD, dst: "10.96.0.10", dport: 53, proto: "TCP", from: "pod" }).dnat).toBeUndefined();
  });

  it("internalTrafficPolicy Local without local endpoints drops ClusterIP traffic", () => {
    const w = world([web([{ ip: "10.244.2.5", node: "node-2" }], { itp: "Local" })]);
    const r = w.trace({ src: POD, dst: "10.96.0.12", dport: 80, from: "pod" });
    expect(r.verdict).toBe("drop");
    expect(r.rules).toEqual(["KUBE-SERVICES default/web:http has no local endpoints -> DROP"]);
    const local = world([web([{ ip: "10.244.2.5", node: "node-2" }, { ip: "10.244.1.5", node: "node-1" }], { itp: "Local" })]);
    for (let i = 0; i < 10; i++) expect(local.trace({ src: POD, sport: 1000 + i, dst: "10.96.0.12", dport: 80, from: "pod" }).dnat).toBe("10.244.1.5:8080");
  });
});

describe("iptables NodePort and external destinations", () => {
  it("NodePort Cluster from outside: DNAT and masquerade", () => {
    const w = world([nodePortSvc([{ ip: "10.244.2.5", node: "node-2" }], "Cluster")]);
    const r = w.trace({ src: OUTSIDE, dst: NODE_IP, dport: 30080, from: "outside" });
    expect(r).toMatchObject({ verdict: "accept", dnat: "10.244.2.5:8080", masquerade: true });
    const ext = iptablesChainName("KUBE-EXT-", "default/np:http", "tcp");
    expect(r.rules[0]).toBe(
      `KUBE-SERVICES --dst-type LOCAL -> KUBE-NODEPORTS -p tcp --dport 30080 -> ${ext} (default/np:http) -> KUBE-MARK-MASQ (external) -> ${iptablesChainName("KUBE-SVC-", "default/np:http", "tcp")} -> ${iptablesChainName("KUBE-SEP-", "default/np:http", "tcp", "10.244.2.5:8080")} -> DNAT 10.244.2.5:8080`,
    );
  });

  it("NodePort Local from outside goes to the local endpoint only and keeps the source", () => {
    const w = world([nodePortSvc([{ ip: "10.244.2.5", node: "node-2" }, { ip: "10.244.1.5", node: "node-1" }], "Local")]);
    for (let i = 0; i < 20; i++) {
      const r = w.trace({ src: OUTSIDE, sport: 40000 + i, dst: NODE_IP, dport: 30080, from: "outside" });
      expect(r).toMatchObject({ verdict: "accept", dnat: "10.244.1.5:8080", masquerade: false });
      expect(r.rules[0]).toContain(iptablesChainName("KUBE-SVL-", "default/np:http", "tcp"));
    }
  });

  it("NodePort Local without a local endpoint (remote ones exist) drops outside traffic", () => {
    const w = world([nodePortSvc([{ ip: "10.244.2.5", node: "node-2" }], "Local")]);
    const r = w.trace({ src: OUTSIDE, dst: NODE_IP, dport: 30080, from: "outside" });
    expect(r.verdict).toBe("drop");
    expect(r.rules).toEqual(["KUBE-EXTERNAL-SERVICES default/np:http has no local endpoints -> DROP"]);
  });

  it("a pod to the NodePort of a Local service short-circuits to any endpoint", () => {
    const w = world([nodePortSvc([{ ip: "10.244.2.5", node: "node-2" }], "Local")]);
    const r = w.trace({ src: POD, dst: NODE_IP, dport: 30080, from: "pod" });
    expect(r).toMatchObject({ verdict: "accept", dnat: "10.244.2.5:8080" });
    expect(r.rules[0]).toContain("(pod traffic, -s 10.244.0.0/16)");
    // The node itself is short-circuited too, masqueraded (--src-type LOCAL).
    const n = w.trace({ src: NODE_IP, dst: NODE_IP, dport: 30080, from: "node" });
    expect(n).toMatchObject({ verdict: "accept", dnat: "10.244.2.5:8080", masquerade: true });
    expect(n.rules[0]).toContain("KUBE-MARK-MASQ (--src-type LOCAL)");
  });

  it("external IPs go through KUBE-EXT", () => {
    const w = world([web([{ ip: "10.244.2.5", node: "node-2" }], { externalIPs: ["192.0.2.50"] })]);
    const r = w.trace({ src: OUTSIDE, dst: "192.0.2.50", dport: 80, from: "outside" });
    expect(r).toMatchObject({ verdict: "accept", dnat: "10.244.2.5:8080", masquerade: true });
    expect(r.rules[0]).toContain("(default/web:http external IP)");
  });

  it("LoadBalancer IP with loadBalancerSourceRanges: in-range sources pass, others are dropped in KUBE-PROXY-FIREWALL", () => {
    const lb: SvcDef = {
      name: "lb",
      clusterIP: "10.96.0.40",
      type: "LoadBalancer",
      ports: [{ name: "https", port: 443, targetPort: 8443, nodePort: 31443 }],
      lbIPs: ["192.0.2.10"],
      sourceRanges: ["198.51.100.0/24"],
      eps: [{ ip: "10.244.2.8", node: "node-2" }],
    };
    const w = world([lb]);
    const fw = iptablesChainName("KUBE-FW-", "default/lb:https", "tcp");
    const ok = w.trace({ src: "198.51.100.7", dst: "192.0.2.10", dport: 443, from: "outside" });
    expect(ok).toMatchObject({ verdict: "accept", dnat: "10.244.2.8:8443", masquerade: true });
    expect(ok.rules[0]).toContain(`${fw} (default/lb:https loadbalancer IP) -> ${iptablesChainName("KUBE-EXT-", "default/lb:https", "tcp")} (-s 198.51.100.0/24)`);
    const no = w.trace({ src: OUTSIDE, dst: "192.0.2.10", dport: 443, from: "outside" });
    expect(no.verdict).toBe("drop");
    expect(no.dnat).toBeUndefined();
    expect(no.rules).toEqual([`KUBE-PROXY-FIREWALL default/lb:https traffic not accepted by ${fw} -> DROP`]);
    // NodePorts are not subject to the source ranges (as in kube-proxy).
    expect(w.trace({ src: OUTSIDE, dst: NODE_IP, dport: 31443, from: "outside" }).dnat).toBe("10.244.2.8:8443");
  });
});

describe("iptables rule sets", () => {
  const view = (src: string, dst: string, dport: number) => firstPacket({ src, dst, dport });
  const ctx = (hook: Hook, ctState: CtState = CtState.New): HookContext => ({ hook, iif: "", oif: "", ctState, ct: undefined, mark: 0, now: 0 });
  const set = (w: World, hook: Hook, nat: boolean) => w.sets.find((s) => s.hook === hook && (s.nat === true) === nat)!;

  it("reuse their verdict objects: the packet path builds nothing once a path was seen", () => {
    const w = world([web([{ ip: "10.244.2.5", node: "node-2" }]), nodePortSvc([], "Cluster")]);
    const pre = set(w, Hook.Prerouting, true);
    const a = pre.evaluate(view(POD, "10.96.0.12", 80), ctx(Hook.Prerouting));
    const b = pre.evaluate(view("10.244.1.77", "10.96.0.12", 80), ctx(Hook.Prerouting));
    expect(a.kind).toBe("dnat");
    expect(b).toBe(a);
    const fwd = set(w, Hook.Forward, false);
    const r1 = fwd.evaluate(view(POD, "10.96.0.20", 80), ctx(Hook.Forward));
    expect(r1.kind).toBe("reject");
    expect(fwd.evaluate(view(POD, "10.96.0.20", 80), ctx(Hook.Forward))).toBe(r1);
  });

  it("filter: ESTABLISHED packets go on, INVALID ones are dropped in KUBE-FORWARD", () => {
    const w = world([web([])]);
    const fwd = set(w, Hook.Forward, false);
    expect(fwd.evaluate(view(POD, "10.96.0.12", 80), ctx(Hook.Forward, CtState.Established)).kind).toBe("continue");
    expect(fwd.evaluate(view(POD, "10.244.2.5", 80), ctx(Hook.Forward, CtState.Invalid))).toMatchObject({ kind: "drop", reason: "ct_invalid" });
    expect(fwd.evaluate(view(POD, "10.244.2.5", 80), ctx(Hook.Forward))).toMatchObject({ kind: "continue" });
  });

  it("has the hooks and priorities of kube-proxy's chains", () => {
    const w = world([]);
    expect(w.sets.map((s) => [s.hook, s.priority, s.nat === true])).toEqual([
      [Hook.Prerouting, -100, true],
      [Hook.Output, -100, true],
      [Hook.Postrouting, 100, true],
      [Hook.Input, 0, false],
      [Hook.Forward, 0, false],
      [Hook.Output, 0, false],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Sync and dump

/** iptables-save structure: tables, declared chains, rules only in declared chains, jumps to declared chains or targets. */
function checkSaveStructure(text: string): void {
  const TARGETS = new Set(["ACCEPT", "DROP", "REJECT", "RETURN", "DNAT", "MASQUERADE", "MARK", "SNAT"]);
  let table: string | undefined;
  let declared = new Set<string>();
  let rules: string[] = [];
  const lines = text.split("\n");
  expect(lines.at(-1)).toBe("");
  for (const line of lines.slice(0, -1)) {
    if (line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      expect(table).toBeUndefined();
      table = line.slice(1);
      declared = new Set();
      rules = [];
    } else if (line.startsWith(":")) {
      expect(table).toBeDefined();
      const m = /^:(\S+) (ACCEPT|DROP|-) \[\d+:\d+\]$/.exec(line);
      expect(m, line).not.toBeNull();
      expect(rules, "chains are declared before rules").toEqual([]);
      expect(declared.has(m![1]!), `declared twice: ${m![1]}`).toBe(false);
      declared.add(m![1]!);
    } else if (line.startsWith("-A ")) {
      const chain = line.split(" ")[1]!;
      expect(declared.has(chain), `undeclared chain in ${line}`).toBe(true);
      const j = /(?:^| )-j (\S+)/.exec(line);
      if (j) expect(declared.has(j[1]!) || TARGETS.has(j[1]!), `unknown target in ${line}`).toBe(true);
      expect((line.match(/"/g) ?? []).length % 2, line).toBe(0);
      rules.push(line);
    } else if (line === "COMMIT") {
      expect(table).toBeDefined();
      table = undefined;
    } else throw new Error(`unexpected line: ${line}`);
  }
  expect(table).toBeUndefined();
}

const goldenDefs = (): SvcDef[] => [
  web([
    { ip: "10.244.1.5", node: "node-1" },
    { ip: "10.244.2.5", node: "node-2" },
  ]),
  nodePortSvc(
    [
      { ip: "10.244.1.6", node: "node-1" },
      { ip: "10.244.2.6", node: "node-2" },
    ],
    "Local",
    { name: "local", clusterIP: "10.96.0.20", healthCheckNodePort: 32000 },
  ),
];

function checkGolden(name: string, text: string): void {
  const file = join(GOLDEN_DIR, name);
  if (process.env.UPDATE_GOLDEN === "1" || !existsSync(file)) {
    if (process.env.UPDATE_GOLDEN !== "1") throw new Error(`golden file ${file} is missing: run with UPDATE_GOLDEN=1`);
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, text);
  }
  expect(text).toBe(readFileSync(file, "utf8"));
}

describe("iptables sync and dump", () => {
  it("matches the golden iptables-save of a small state", () => {
    const w = world(goldenDefs());
    const text = w.backend.dump("iptables-save", [])!;
    checkGolden("iptables-small.txt", text);
    checkSaveStructure(text);
  });

  it("dumps every kind of rule as a well-formed iptables-save", () => {
    const w = world([
      ...goldenDefs(),
      web(threeEps, { name: "sticky", clusterIP: "10.96.0.13", affinitySeconds: 300, externalIPs: ["192.0.2.50"] }),
      web([], { name: "empty", clusterIP: "10.96.0.14" }),
      web([{ ip: "10.244.2.9", node: "node-2" }], { name: "itl", clusterIP: "10.96.0.15", itp: "Local" }),
      {
        name: "lb",
        clusterIP: "10.96.0.40",
        type: "LoadBalancer",
        ports: [{ name: "https", port: 443, nodePort: 31443 }],
        lbIPs: ["192.0.2.10"],
        sourceRanges: ["198.51.100.0/24", "172.31.0.0/16"],
        etp: "Local",
        healthCheckNodePort: 32001,
        eps: [{ ip: "10.244.2.8", node: "node-2" }],
      },
    ]);
    const text = w.backend.dump("iptables-save", [])!;
    checkSaveStructure(text);
    expect(text).toContain('-m recent --rcheck --seconds 300 --reap --name KUBE-SEP-');
    expect(text).toContain("-m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-");
    expect(text).toContain("-m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-");
    expect(text).toContain('-A KUBE-SERVICES -d 10.96.0.14/32 -p tcp -m comment --comment "default/empty:http has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable');
    expect(text).toContain('-A KUBE-SERVICES -d 10.96.0.15/32 -p tcp -m comment --comment "default/itl:http has no local endpoints" -m tcp --dport 80 -j DROP');
    // The node IP is in a source range: the VIP itself is allowed as a source (VIP-like LBs).
    expect(text).toMatch(/-A KUBE-FW-\S+ -s 192\.0\.2\.10\/32 -m comment --comment "default\/lb:https loadbalancer IP" -j KUBE-EXT-/);
    expect(text).toContain('-A KUBE-NODEPORTS -p tcp -m comment --comment "default/lb:https health check node port" -m tcp --dport 32001 -j ACCEPT');
  });

  it("dump -t nat gives the nat table only; ipvsadm and nft have nothing", () => {
    const w = world(goldenDefs());
    const nat = w.backend.dump("iptables-save", ["-t", "nat"])!;
    expect(nat.match(/^\*\w+$/gm)).toEqual(["*nat"]);
    expect(w.backend.dump("iptables-save", ["-t", "filter"])!.match(/^\*\w+$/gm)).toEqual(["*filter"]);
    expect(w.backend.dump("iptables-save", [])).toBe(w.backend.dump("iptables-save", ["-t", "filter"])! + nat);
    expect(w.backend.dump("ipvsadm", ["-Ln"])).toBeUndefined();
    expect(w.backend.dump("nft", ["list", "ruleset"])).toBeUndefined();
    expect(w.sets[0]!.dump!()).toBe(nat);
  });

  it("a partial sync after changing one service gives the rules of a full sync", () => {
    const defs: SvcDef[] = [...goldenDefs(), web(threeEps, { name: "sticky", clusterIP: "10.96.0.13", affinitySeconds: 300 }), web([], { name: "empty", clusterIP: "10.96.0.14" })];
    const w = world(defs);
    const full = (): string => {
      const t = new ChangeTracker("node-1");
      for (const d of defs) put(t, d);
      const b = new IptablesBackend({ node: w.node, rng: mulberry32(1) });
      b.sync(t.take().state, undefined);
      return b.dump("iptables-save", [])!;
    };
    // An endpoint leaves one service, another service gains its first endpoint.
    defs[0] = web([{ ip: "10.244.2.5", node: "node-2" }]);
    defs[3] = web([{ ip: "10.244.3.3", node: "node-3" }], { name: "empty", clusterIP: "10.96.0.14" });
    put(w.tracker, defs[0]);
    put(w.tracker, defs[3]);
    let { state, changed } = w.tracker.take();
    expect(changed).toEqual(new Set(["default/web:http", "default/empty:http"]));
    w.sets = w.backend.sync(state, changed);
    expect(w.backend.lastSync).toMatchObject({ full: false, rebuilt: 2, reused: 2 });
    expect(w.backend.dump("iptables-save", [])).toBe(full());
    expect(w.trace({ src: POD, dst: "10.96.0.14", dport: 80, from: "pod" }).dnat).toBe("10.244.3.3:8080");
    // A service removed: its chains go.
    const gone = iptablesChainName("KUBE-SVC-", "default/sticky:http", "tcp");
    expect(w.backend.dump("iptables-save", [])).toContain(gone);
    w.tracker.service("default/sticky", undefined);
    defs.splice(2, 1);
    ({ state, changed } = w.tracker.take());
    w.sets = w.backend.sync(state, changed);
    expect(w.backend.dump("iptables-save", [])).not.toContain(gone);
    expect(w.backend.dump("iptables-save", [])).toBe(full());
    expect(w.backend.recentTable(iptablesChainName("KUBE-SEP-", "default/sticky:http", "tcp", "10.244.1.5:8080"))).toBeUndefined();
  });
});
