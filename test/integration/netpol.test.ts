/**
 * NetworkPolicy and ClusterNetworkPolicy enforced by real node-agent processes, checked the way
 * Kubernetes' own e2e suite does (test/e2e/network/netpol): the model of namespaces x, y, z
 * (label ns=<name>) with pods a, b, c each (label pod=<name>), a on node-1, b on node-2, c on
 * node-3, every pod serving TCP and UDP 80 and 81 (one agnhost netexec container per port, as
 * upstream has one container per port and protocol, with container ports named
 * serve-<port>-<tcp|udp>). Each case creates upstream's policies and then checks the full 9x9
 * truth table of real connections with `kubewire probe --expect`, so the command is tested too.
 *
 * - Cases are named after the upstream test they mirror: network_policy.go's "Netpol
 *   NetworkPolicy between server and client" (and its UDP context), and for ClusterNetworkPolicy
 *   the network-policy-api conformance tests (CNPAdminTierIntegration, CNPBaselineTier...).
 *   Where upstream's expectation is extended to pods its topology lacks, or a case is not
 *   upstream's, the case says so.
 * - A pod reaching itself is always connected: the probe dials the pod IP, which is the pod's
 *   own loopback (upstream dials a per-pod Service and ignores those cells, ignoreLoopback).
 * - Nodes apply policy from their watch: a case first waits until every node's engine holds
 *   exactly the API's policies at their current resourceVersions (the node verb `converged`),
 *   then polls the probe until the matrix matches, for 20 s at most (upstream polls each probe
 *   for 10 s); between cases every policy is deleted and the next case starts only once the
 *   whole matrix is open again.
 * - Every cell of every case is also judged by `kubewire policy explain` and by the nodes' flow
 *   records of the probe's own packets (`kubewire probe --verify`): the case passes only when
 *   the connections, the explanation and the flows (delivered, or dropped naming the very rule
 *   explain names) agree on all 72 cells of each table that are not a pod reaching itself. A few
 *   cells are also read through `kubewire observe` and `kubewire policy explain` themselves.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { formatPort, formatTruthTable, parsePortSpec, probeMatrices, readProbePod, type ProbePod, type ProbePort } from "../../cli/probe.ts";
import { paths } from "../../cluster/kube-client.ts";
import { request } from "../../cluster/rpc.ts";
import { Subjects, type NodeConvergence, type ObservedFlow } from "../../cluster/types.ts";
import { ALL_PODS, NAMESPACES, POD_NAMES, Reachability, cnp, egressRules, ingressRules, netpol, netpolMatch, type Obj } from "../unit/policy/fixtures.ts";
import { NETEXEC_IMAGE, TestCluster, until } from "./fixture.ts";

const NS_LABEL = "kubernetes.io/metadata.name";
/** How long a case waits for every node to enforce what it applied. */
const ENFORCE_WITHIN_MS = 20_000;
/** Every cell of a matrix at once (81 per port): a denied cell costs the timeout, once. */
const CONCURRENCY = "200";
/**
 * Seconds a probe waits (upstream: 1). A connection here takes milliseconds; one that took
 * longer only costs another poll of the probe, never a wrong verdict (--verify would disagree).
 */
const PROBE_TIMEOUT = "0.5";

let cluster: TestCluster;
let dir: string;
/** "x/a" -> its pod IP. */
const ips: Record<string, string> = {};
const restores: Array<() => Promise<void>> = [];
/** When the running case started (flow records before it belong to earlier cases). */
let caseStart = 0;

function podObject(namespace: string, name: string, nodeName: string): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace, name, labels: { pod: name } },
    spec: {
      nodeName,
      containers: [80, 81].map((port) => ({
        name: `cont-${port}`,
        image: NETEXEC_IMAGE,
        args: ["netexec", `--http-port=${port}`, `--udp-port=${port}`],
        ports: [
          { name: `serve-${port}-tcp`, containerPort: port, protocol: "TCP" },
          { name: `serve-${port}-udp`, containerPort: port, protocol: "UDP" },
        ],
      })),
    },
  };
}

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 3 });
  dir = mkdtempSync(join(tmpdir(), "kubewire-netpol-e2e-"));
  for (const ns of NAMESPACES) await cluster.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns, labels: { ns } } });
  await Promise.all(NAMESPACES.flatMap((ns) => POD_NAMES.map((name, i) => cluster.apply(podObject(ns, name, `node-${i + 1}`)))));
  for (const ns of NAMESPACES) for (const name of POD_NAMES) ips[`${ns}/${name}`] = (await cluster.waitForPodRunning(ns, name)).podIp;
  await waitUntilOpen();
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await waitUntilOpen();
  caseStart = Date.now();
}, 60_000);

afterEach(async () => {
  for (const restore of restores.splice(0).reverse()) await restore();
  await Promise.all([
    ...NAMESPACES.map(async (ns) => {
      const list = await cluster.kube.list(`/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`);
      await Promise.all(list.map((p) => cluster.kube.delete(`/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies/${p.metadata.name}`)));
    }),
    (async () => {
      const list = await cluster.kube.list("/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies");
      await Promise.all(list.map((p) => cluster.kube.delete(`/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies/${p.metadata.name}`)));
    })(),
  ]);
}, 60_000);

// ---------------------------------------------------------------------------------------------
// Helpers

function port(spec: string): ProbePort {
  const p = parsePortSpec(spec);
  if (p.kind !== "ok") throw new Error(p.message);
  return p.value;
}

/** The truth table of `r` as `kubewire probe` prints it; a pod always reaches itself (loopback). */
function expectedTable(r: Reachability): string {
  return formatTruthTable({ froms: ALL_PODS, tos: ALL_PODS, marks: ALL_PODS.map((a) => ALL_PODS.map((b) => (a === b || r.get(a, b) ? "." : "X"))) });
}

/** The real `kubewire probe`, as a user runs it. */
function runProbe(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cluster.kubewire(["probe", ...args], { timeoutMs: 60_000 });
}

/**
 * `kubewire probe --namespaces x,y,z --port P... --expect FILE --verify` until it exits 0 (every cell as
 * `expectations` say), for ENFORCE_WITHIN_MS at most; then fails with the last tables and diff.
 */
async function expectReachability(...expectations: Array<[string, Reachability]>): Promise<void> {
  await untilEveryNodeEnforces();
  const file = join(dir, `expect-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, expectations.map(([p, r]) => `${formatPort(port(p))}\n${expectedTable(r)}\n`).join("\n"));
  const args = ["--namespaces", "x,y,z", ...expectations.flatMap(([p]) => ["--port", p]), "--expect", file, "--verify", "--concurrency", CONCURRENCY, "--timeout", PROBE_TIMEOUT];
  const deadline = Date.now() + ENFORCE_WITHIN_MS;
  for (;;) {
    const r = await runProbe(args);
    if (r.code === 0) return;
    if (r.code !== 1 || Date.now() > deadline) {
      expect.fail(`kubewire probe ${args.join(" ")} exited ${r.code} after ${ENFORCE_WITHIN_MS / 1000} s of polling:\n${r.stdout}${r.stderr}`);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
}

/**
 * Waits until every node's policy engine holds exactly the API's NetworkPolicies and
 * ClusterNetworkPolicies at their current resourceVersions (the node verb `converged`), so a
 * matrix that a missing policy would also produce (all allowed, say) is probed under the policy.
 */
async function untilEveryNodeEnforces(): Promise<void> {
  const [nps, cnps] = await Promise.all([cluster.kube.list("/apis/networking.k8s.io/v1/networkpolicies"), cluster.kube.list("/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies")]);
  const want: Record<string, string> = {};
  for (const p of nps) want[`NetworkPolicy/${p.metadata.namespace}/${p.metadata.name}`] = p.metadata.resourceVersion ?? "";
  for (const p of cnps) want[`ClusterNetworkPolicy//${p.metadata.name}`] = p.metadata.resourceVersion ?? "";
  const wanted = JSON.stringify(Object.entries(want).sort());
  await until(
    "every node enforcing the API's policies",
    async () => {
      const held = await Promise.all(cluster.nodeNames.map((n) => request<NodeConvergence>(cluster.nc, Subjects.node(n, "converged"), {}, 5000)));
      return held.every((h) => JSON.stringify(Object.entries(h.policies).sort()) === wanted) ? true : undefined;
    },
    ENFORCE_WITHIN_MS,
  );
}

let probePods: ProbePod[] | undefined;

/** Waits until every cell of every port and protocol connects (no policy left anywhere). */
async function waitUntilOpen(): Promise<void> {
  probePods ??= (await cluster.kube.list(paths.pods())).flatMap((o) => {
    const r = readProbePod(o);
    return r.kind === "ready" && (NAMESPACES as readonly string[]).includes(r.pod.namespace) ? [r.pod] : [];
  });
  expect(probePods).toHaveLength(9);
  const exec = (pod: ProbePod, argv: string[], timeoutMs: number) => cluster.exec({ namespace: pod.namespace, name: pod.name, nodeName: pod.nodeName, podIp: pod.ip }, argv, timeoutMs);
  await until(
    "the whole matrix open again",
    async () => {
      const results = await probeMatrices(probePods!, ["80/TCP", "81/TCP", "80/UDP", "81/UDP"].map(port), { exec, timeoutSeconds: 1, concurrency: 400 });
      return results.every((res) => res.cells.every((row) => row.every((c) => c.kind === "connected"))) ? true : undefined;
    },
    ENFORCE_WITHIN_MS,
  );
}

async function create(...objects: Obj[]): Promise<void> {
  for (const o of objects) await cluster.apply(o);
}

async function relabel(kind: "ns" | "pod", target: string[], label: string): Promise<void> {
  await cluster.kubectlOk(["label", "--overwrite", kind, ...target, label]);
}

/** `kubewire policy explain FROM TO --port P`: allowed (exit 0) or denied (exit 1), and the text. */
async function explain(from: string, to: string, p: string): Promise<{ allowed: boolean; text: string }> {
  const r = await cluster.kubewire(["policy", "explain", from, to, "--port", p]);
  if (r.code !== 0 && r.code !== 1) throw new Error(`kubewire policy explain ${from} ${to} exited ${r.code}: ${r.stdout}${r.stderr}`);
  return { allowed: r.code === 0, text: r.stdout };
}

/** explain agrees with the matrix on these cells. */
async function explainAgrees(p: string, r: Reachability, cells: Array<[string, string]>): Promise<void> {
  for (const [from, to] of cells) {
    const e = await explain(from, to, p);
    expect({ cell: `${from} -> ${to} ${p}`, allowed: e.allowed }, e.text).toEqual({ cell: `${from} -> ${to} ${p}`, allowed: from === to || r.get(from, to) });
  }
}

/**
 * The drops the nodes recorded during this case for pod `to` on port `dport`, as `kubewire
 * observe --verdict DROPPED -n NS --pod POD --port P --since D -o json` prints them: narrow, so
 * a case's drops are not mixed with an earlier case's.
 */
async function dropsOf(to: string, dport: number): Promise<ObservedFlow[]> {
  const [namespace, pod] = to.split("/") as [string, string];
  const since = `${Math.ceil((Date.now() - caseStart) / 1000) + 2}s`;
  const r = await cluster.kubewire(["observe", "--verdict", "DROPPED", "-n", namespace, "--pod", pod, "--port", String(dport), "--since", since, "-o", "json"]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as ObservedFlow);
}

/**
 * A drop, during this case, of a connection from `from` to `to` on `p` ("80/TCP"), observed with
 * reason policy_denied and a detail naming the deciding policy (`deciding`).
 */
async function expectPolicyDrop(from: string, to: string, p: string, deciding: RegExp): Promise<ObservedFlow> {
  const { port: dport, protocol } = port(p);
  const proto = protocol === "TCP" ? 6 : 17;
  return until(`a policy_denied drop of ${from} -> ${to} ${p} in kubewire observe`, async () => {
    const mine = (await dropsOf(to, dport)).filter((f) => f.time >= caseStart && f.srcPod === from && f.dstPod === to && f.dport === dport && f.proto === proto);
    const f = mine.find((d) => d.reason === "policy_denied" && deciding.test(d.detail ?? ""));
    if (!f && mine.length > 0) throw new Error(`drops of ${from} -> ${to} ${p} seen, none policy_denied by ${deciding}: ${JSON.stringify(mine.slice(-3))}`);
    return f;
  }, 10_000);
}

const ns = (name: string) => ({ matchLabels: { ns: name } });
const nsName = (name: string) => ({ matchLabels: { [NS_LABEL]: name } });

// ---------------------------------------------------------------------------------------------

describe("Netpol NetworkPolicy between server and client", () => {
  it("should support a 'default-deny-ingress' policy", async () => {
    await create(netpol("x", "deny-ingress", {}, ingressRules()));
    const r = new Reachability().expectPeer({}, { namespace: "x" }, false);
    await expectReachability(["80/TCP", r]);
    // The drop, where it happened: on x/a's node, reason policy_denied, naming the policy.
    const drop = await expectPolicyDrop("y/b", "x/a", "80/TCP", /x\/deny-ingress/);
    expect(drop).toMatchObject({ node: "node-1", verdict: "DROPPED", reason: "policy_denied", proto: 6 });
    await explainAgrees("80/TCP", r, [["y/b", "x/a"], ["x/b", "x/c"], ["x/a", "y/b"], ["z/c", "y/a"]]);
    expect((await explain("y/b", "x/a", "80/TCP")).text).toMatch(/verdict: DENY \(ingress\): default deny: selected by x\/deny-ingress/);
  });

  it("should support a 'default-deny-all' policy", async () => {
    await create(netpol("x", "deny-all", {}, ingressRules(), egressRules()));
    const r = new Reachability().expectPeer({}, { namespace: "x" }, false).expectPeer({ namespace: "x" }, {}, false);
    await expectReachability(["80/TCP", r], ["80/UDP", r]);
    // x/b's egress is denied on its own node (node-2), before the packet reaches the overlay.
    const drop = await expectPolicyDrop("x/b", "z/c", "80/TCP", /x\/deny-all/);
    expect(drop.node).toBe("node-2");
    expect(drop.detail).toMatch(/egress/);
  });

  it("should enforce policy to allow traffic from pods within server namespace based on PodSelector", async () => {
    await create(netpolMatch("x", "x-a-allows-x-b", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchLabels: { pod: "b" } } }] })));
    await expectReachability(["80/TCP", new Reachability().expectAllIngress("x/a", false).expect("x/b", "x/a", true)]);
  });

  it("should enforce policy to allow ingress traffic for a target", async () => {
    await create(netpol("x", "deny-all", {}, ingressRules()), netpolMatch("x", "allow-all-to-a", { pod: "a" }, ingressRules({ from: [{ podSelector: {}, namespaceSelector: {} }] })));
    await expectReachability(["80/TCP", new Reachability().expectAllIngress("x/a", true).expectAllIngress("x/b", false).expectAllIngress("x/c", false)]);
  });

  it("should enforce policy to allow ingress traffic from pods in all namespaces", async () => {
    await create(netpolMatch("x", "allow-from-another-ns", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: {} } }] })));
    // Every pod is in some namespace: nothing is denied, on any port (81/UDP too: no ports list).
    await expectReachability(["80/TCP", new Reachability()], ["81/UDP", new Reachability()]);
  });

  it("should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector", async () => {
    await create(netpolMatch("x", "allow-client-a-via-ns-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsName("y") }] })));
    await expectReachability(["80/TCP", new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false)]);
  });

  it("should enforce policy based on PodSelector with MatchExpressions", async () => {
    await create(netpolMatch("x", "x-a-allows-x-b", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["b"] }] } }] })));
    await expectReachability(["80/TCP", new Reachability().expectAllIngress("x/a", false).expect("x/b", "x/a", true)]);
  });

  it("should enforce policy based on NamespaceSelector with MatchExpressions", async () => {
    await create(netpolMatch("x", "allow-ns-y-match-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchExpressions: [{ key: NS_LABEL, operator: "In", values: ["y"] }] } }] })));
    await expectReachability(["80/TCP", new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false)]);
  });

  it("should enforce policy based on PodSelector or NamespaceSelector", async () => {
    // Two peers: from another namespace OR from pod b (of x): separate peers are ORed.
    const nsSel = { matchExpressions: [{ key: NS_LABEL, operator: "NotIn", values: ["x"] }] };
    await create(netpolMatch("x", "allow-ns-y-match-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsSel }, { podSelector: { matchLabels: { pod: "b" } } }] })));
    await expectReachability(["80/TCP", new Reachability().expect("x/a", "x/a", false).expect("x/c", "x/a", false)]);
  });

  it("should enforce policy based on PodSelector and NamespaceSelector", async () => {
    // One peer with both selectors: pod b AND another namespace (ANDed).
    const nsSel = { matchExpressions: [{ key: NS_LABEL, operator: "NotIn", values: ["x"] }] };
    await create(netpolMatch("x", "allow-ns-y-podselector-and-nsselector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsSel, podSelector: { matchLabels: { pod: "b" } } }] })));
    const r = new Reachability().expectAllIngress("x/a", false).expect("y/b", "x/a", true).expect("z/b", "x/a", true);
    await expectReachability(["80/TCP", r]);
    await explainAgrees("80/TCP", r, [["y/b", "x/a"], ["y/a", "x/a"], ["x/b", "x/a"], ["z/b", "x/a"]]);
  });

  it("should enforce policy based on Multiple PodSelectors and NamespaceSelectors", async () => {
    const nsSel = { matchExpressions: [{ key: NS_LABEL, operator: "NotIn", values: ["x"] }] };
    const podSel = { matchExpressions: [{ key: "pod", operator: "In", values: ["b", "c"] }] };
    await create(netpolMatch("x", "allow-ns-y-z-pod-b-c", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsSel, podSelector: podSel }] })));
    await expectReachability(["80/TCP", new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expect("y/a", "x/a", false).expect("z/a", "x/a", false)]);
  });

  it("should enforce policy based on any PodSelectors", async () => {
    await create(netpolMatch("x", "allow-ns-x-pod-b-c", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchLabels: { pod: "b" } } }, { podSelector: { matchLabels: { pod: "c" } } }] })));
    await expectReachability(["80/TCP", new Reachability().expectAllIngress("x/a", false).expect("x/b", "x/a", true).expect("x/c", "x/a", true)]);
  });

  it("should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector", async () => {
    await create(netpolMatch("x", "allow-ns-y-pod-a-via-namespace-pod-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsName("y"), podSelector: { matchLabels: { pod: "a" } } }] })));
    await expectReachability(["80/TCP", new Reachability().expectAllIngress("x/a", false).expect("y/a", "x/a", true)]);
  });

  it("should enforce policy based on Ports", async () => {
    await create(netpolMatch("x", "allow-client-a-via-ns-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsName("y") }], ports: [{ port: 81, protocol: "TCP" }] })));
    const r81 = new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "y" }, { namespace: "x", pod: "a" }, true).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false);
    // Not in upstream (it probes 81 only): port 80 and UDP 81 are closed to everyone.
    await expectReachability(["81/TCP", r81], ["80/TCP", new Reachability().expectAllIngress("x/a", false)], ["81/UDP", new Reachability().expectAllIngress("x/a", false)]);
  });

  it("should enforce multiple, stacked policies with overlapping podSelectors", async () => {
    const fromY = [{ namespaceSelector: nsName("y") }];
    await create(netpolMatch("x", "allow-client-a-via-ns-selector", { pod: "a" }, ingressRules({ from: fromY, ports: [{ port: 81, protocol: "TCP" }] })));
    const allow = new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "y" }, { namespace: "x", pod: "a" }, true).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false);
    await expectReachability(["81/TCP", allow], ["80/TCP", new Reachability().expectAllIngress("x/a", false)]);
    await create(netpolMatch("x", "allow-client-a-via-ns-selector-80", { pod: "a" }, ingressRules({ from: fromY, ports: [{ port: 80, protocol: "TCP" }] })));
    await expectReachability(["80/TCP", allow]);
  });

  it("should support allow-all policy", async () => {
    await create(netpolMatch("x", "allow-all", {}, ingressRules({})));
    await expectReachability(["80/TCP", new Reachability()], ["81/TCP", new Reachability()]);
  });

  it("should allow ingress access on one named port", async () => {
    await create(netpolMatch("x", "allow-all", {}, ingressRules({ ports: [{ port: "serve-81-tcp" }] })));
    const closed = new Reachability().expectPeer({}, { namespace: "x" }, false);
    // Not in upstream: 81/UDP is another port (serve-81-udp), and the entry's protocol is TCP.
    await expectReachability(["81/TCP", new Reachability()], ["80/TCP", closed], ["81/UDP", closed]);
  });

  it("should allow ingress access from namespace on one named port", async () => {
    await create(netpolMatch("x", "allow-client-a-via-ns-selector-80", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsName("y") }], ports: [{ port: "serve-80-tcp", protocol: "TCP" }] })));
    await expectReachability(
      ["80/TCP", new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false)],
      ["81/TCP", new Reachability().expectAllIngress("x/a", false)],
    );
  });

  it("should allow egress access on one named port", async () => {
    // The named port resolves on the destination pod, whichever namespace it is in.
    await create(netpolMatch("x", "allow-egress", {}, egressRules({ ports: [{ port: "serve-80-tcp" }] })));
    const closed = new Reachability().expectPeer({ namespace: "x" }, {}, false);
    await expectReachability(["80/TCP", new Reachability()], ["81/TCP", closed], ["80/UDP", closed]);
    // Not in upstream: a UDP named port, resolved on the destination as well.
    await create(netpolMatch("x", "allow-egress-udp", {}, egressRules({ ports: [{ port: "serve-81-udp", protocol: "UDP" }] })));
    await expectReachability(["81/UDP", new Reachability()], ["80/UDP", closed]);
  });

  it("should enforce updated policy", async () => {
    const policy = netpolMatch("x", "allow-all-mutate-to-deny-all", {}, ingressRules({}));
    await create(policy);
    await expectReachability(["81/TCP", new Reachability()]);
    (policy.spec as Obj).ingress = [];
    await create(policy);
    await expectReachability(["81/TCP", new Reachability().expectPeer({}, { namespace: "x" }, false)]);
  });

  it("should allow ingress access from updated namespace", async () => {
    await create(netpolMatch("x", "allow-client-a-via-ns-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { ns2: "updated" } } }] })));
    await expectReachability(["80/TCP", new Reachability().expectAllIngress("x/a", false)]);
    restores.push(() => relabel("ns", ["y"], "ns2-"));
    await relabel("ns", ["y"], "ns2=updated");
    await expectReachability(["80/TCP", new Reachability().expectAllIngress("x/a", false).expectPeer({ namespace: "y" }, {}, true)]);
  });

  it("should allow ingress access from updated pod", async () => {
    await create(netpolMatch("x", "allow-client-a-via-pod-selector", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchLabels: { pod: "b", pod2: "updated" } } }] })));
    await expectReachability(["80/TCP", new Reachability().expectAllIngress("x/a", false)]);
    restores.push(() => relabel("pod", ["-n", "x", "b"], "pod2-"));
    await relabel("pod", ["-n", "x", "b"], "pod2=updated");
    await expectReachability(["80/TCP", new Reachability().expectAllIngress("x/a", false).expect("x/b", "x/a", true)]);
  });

  it("should deny ingress from pods on other namespaces", async () => {
    await create(netpol("x", "deny-empty-policy", {}, ingressRules({ from: [{ podSelector: { matchLabels: {} } }] })));
    await expectReachability(["80/TCP", new Reachability().expectPeer({ namespace: "y" }, { namespace: "x" }, false).expectPeer({ namespace: "z" }, { namespace: "x" }, false)]);
  });

  it("should deny ingress access to updated pod", async () => {
    await create(netpol("x", "deny-ingress-via-label-selector", { matchLabels: { target: "isolated" } }, ingressRules()));
    await expectReachability(["80/TCP", new Reachability()]);
    restores.push(() => relabel("pod", ["-n", "x", "a"], "target-"));
    await relabel("pod", ["-n", "x", "a"], "target=isolated");
    await expectReachability(["80/TCP", new Reachability().expectAllIngress("x/a", false)]);
  });

  it("should deny egress from pods based on PodSelector", async () => {
    await create(netpol("x", "deny-egress-pod-a", { matchLabels: { pod: "a" } }, egressRules()));
    await expectReachability(["80/TCP", new Reachability().expectAllEgress("x/a", false)]);
  });

  it("should deny egress from all pods in a namespace (and replies of allowed connections still pass)", async () => {
    await create(netpol("x", "deny-egress-ns-x", {}, egressRules()));
    // y -> x and z -> x connect although every packet x sends is egress of x: the SYN-ACK and
    // the UDP answer belong to connections x did not start (conntrack ESTABLISHED), so no policy judges them.
    const r = new Reachability().expectPeer({ namespace: "x" }, {}, false);
    await expectReachability(["80/TCP", r], ["81/UDP", r]);
  });

  it("should work with Ingress, Egress specified together", async () => {
    const policy = netpolMatch("x", "allow-client-a-via-pod-selector", { pod: "a" }, ingressRules({ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }));
    (policy.spec as Obj).egress = [{ ports: [{ port: 80 }] }];
    (policy.spec as Obj).policyTypes = ["Egress", "Ingress"];
    await create(policy);
    await expectReachability(
      ["80/TCP", new Reachability().expectAllIngress("x/a", false).expect("x/b", "x/a", true)],
      ["81/TCP", new Reachability().expectAllIngress("x/a", false).expectAllEgress("x/a", false).expect("x/b", "x/a", true)],
    );
  });

  it("should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)", async () => {
    const fromXa = { from: [{ namespaceSelector: nsName("x"), podSelector: { matchLabels: { pod: "a" } } }] };
    await create(
      netpolMatch("x", "allow-to-ns-y-pod-a", { pod: "a" }, egressRules({ to: [{ namespaceSelector: nsName("y"), podSelector: { matchLabels: { pod: "a" } } }] })),
      netpolMatch("y", "allow-from-xa-on-ya-match-selector", { pod: "a" }, ingressRules(fromXa)),
      netpolMatch("y", "allow-from-xa-on-yb-match-selector", { pod: "b" }, ingressRules(fromXa)),
    );
    const r = new Reachability()
      .expectPeer({ namespace: "x", pod: "a" }, {}, false)
      .expectPeer({}, { namespace: "y", pod: "a" }, false)
      .expectPeer({ namespace: "x", pod: "a" }, { namespace: "y", pod: "a" }, true)
      .expectPeer({}, { namespace: "y", pod: "b" }, false);
    await expectReachability(["80/TCP", r]);
    // x/a -> y/b: y/b's ingress allows it, x/a's egress does not; the egress side decides.
    expect((await explain("x/a", "y/b", "80/TCP")).text).toMatch(/verdict: DENY \(egress\)/);
    await explainAgrees("80/TCP", r, [["x/a", "y/a"], ["x/a", "y/b"], ["x/b", "y/a"]]);
  });

  it("should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector", async () => {
    await create(netpolMatch("x", "allow-to-ns-y-pod-a", { pod: "a" }, egressRules({ to: [{ namespaceSelector: nsName("y"), podSelector: { matchLabels: { pod: "a" } } }] })));
    await expectReachability(["80/TCP", new Reachability().expectAllEgress("x/a", false).expect("x/a", "y/a", true)]);
  });

  it("should enforce ingress policy allowing any port traffic to a server on a specific protocol", async () => {
    // A port entry with a protocol and no port: every TCP port, no UDP.
    await create(netpolMatch("x", "allow-ingress-by-proto", { pod: "a" }, ingressRules({ ports: [{ protocol: "TCP" }] })));
    await expectReachability(["80/TCP", new Reachability()], ["81/TCP", new Reachability()], ["80/UDP", new Reachability().expectPeer({}, { namespace: "x", pod: "a" }, false)]);
  });

  it("should enforce multiple ingress policies with ingress allow-all policy taking precedence", async () => {
    await create(netpolMatch("x", "allow-ingress-port-80", {}, ingressRules({ ports: [{ port: 80 }] })));
    await expectReachability(["81/TCP", new Reachability().expectPeer({}, { namespace: "x" }, false)]);
    await create(netpolMatch("x", "allow-ingress", {}, ingressRules({})));
    await expectReachability(["81/TCP", new Reachability()]);
  });

  it("should enforce multiple egress policies with egress allow-all policy taking precedence", async () => {
    await create(netpolMatch("x", "allow-egress-port-80", {}, egressRules({ ports: [{ port: 80 }] })));
    await expectReachability(["81/TCP", new Reachability().expectPeer({ namespace: "x" }, {}, false)]);
    await create(netpolMatch("x", "allow-egress", {}, egressRules({})));
    await expectReachability(["81/TCP", new Reachability()]);
  });

  it("should stop enforcing policies after they are deleted", async () => {
    await create(netpol("x", "deny-all", {}, ingressRules(), egressRules()));
    await expectReachability(["80/TCP", new Reachability().expectPeer({ namespace: "x" }, {}, false).expectPeer({}, { namespace: "x" }, false)]);
    await cluster.kubectlOk(["delete", "networkpolicy", "-n", "x", "deny-all"]);
    await expectReachability(["80/TCP", new Reachability()]);
  });

  it("should allow egress access to server in CIDR block", async () => {
    await create(netpolMatch("x", "allow-client-a-via-cidr-egress-rule", { pod: "a" }, egressRules({ to: [{ ipBlock: { cidr: `${ips["y/b"]}/32` } }] })));
    await expectReachability(["80/TCP", new Reachability().expectAllEgress("x/a", false).expect("x/a", "y/b", true)]);
  });

  it("should enforce except clause while egress access to server in CIDR block", async () => {
    // Upstream's CIDR: x/a's address with a /4 mask (host bits set, as the API accepts).
    await create(netpolMatch("x", "allow-client-a-via-cidr-egress-rule", { pod: "a" }, egressRules({ to: [{ ipBlock: { cidr: `${ips["x/a"]}/4`, except: [`${ips["x/b"]}/32`] } }] })));
    await expectReachability(["80/TCP", new Reachability().expect("x/a", "x/b", false)]);
  });

  it("should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed", async () => {
    await create(netpolMatch("x", "allow-client-a-via-cidr-egress-rule", { pod: "a" }, egressRules({ to: [{ ipBlock: { cidr: `${ips["x/a"]}/4`, except: [`${ips["x/b"]}/32`] } }] })));
    await expectReachability(["80/TCP", new Reachability().expect("x/a", "x/b", false)]);
    await create(netpolMatch("x", "allow-client-a-via-cidr-egress-rule", { pod: "a" }, egressRules({ to: [{ ipBlock: { cidr: `${ips["x/b"]}/32` } }] })));
    await expectReachability(["80/TCP", new Reachability().expectAllEgress("x/a", false).expect("x/a", "x/b", true)]);
  });

  it("should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector", async () => {
    await create(netpol("x", "allow-egress-for-target", { matchLabels: { pod: "a" } }, egressRules({})));
    await expectReachability(["80/TCP", new Reachability()]);
    await create(netpol("x", "deny-ingress-via-label-selector", { matchLabels: { pod: "a" } }, ingressRules()));
    await expectReachability(["80/TCP", new Reachability().expectAllIngress("x/a", false)]);
  });

  it("should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP", async () => {
    await create(netpol("x", "deny-ingress", {}, ingressRules()), netpolMatch("x", "allow-only-sctp-ingress-on-port-81", { pod: "a" }, ingressRules({ ports: [{ port: 81, protocol: "SCTP" }] })));
    await expectReachability(["81/TCP", new Reachability().expectPeer({}, { namespace: "x" }, false)]);
  });

  it("should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP", async () => {
    await create(netpolMatch("x", "allow-only-sctp-ingress-on-port-80", { pod: "a" }, ingressRules({ ports: [{ port: 80, protocol: "SCTP" }] })));
    await expectReachability(["81/TCP", new Reachability().expectAllIngress("x/a", false)], ["80/TCP", new Reachability().expectAllIngress("x/a", false)]);
  });

  it("should not allow access by TCP when a policy specifies only UDP", async () => {
    await create(netpolMatch("x", "allow-only-udp-ingress-on-port-81", { pod: "a" }, ingressRules({ ports: [{ port: 81, protocol: "UDP" }] })));
    // Not in upstream (TCP only): UDP 81 itself does get through.
    await expectReachability(["81/TCP", new Reachability().expectAllIngress("x/a", false)], ["81/UDP", new Reachability()]);
  });

  it("should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label", async () => {
    await create(netpolMatch("x", "allow-client-a-via-ns-selector-for-immutable-ns-label", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsName("y") }] })));
    await expectReachability(["80/TCP", new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false)]);
  });

  it("should enforce policy based on NamespaceSelector with MatchExpressions using default ns label", async () => {
    await create(netpolMatch("x", "allow-ns-y-match-selector-for-immutable-ns-label", { pod: "a" }, egressRules({ to: [{ namespaceSelector: { matchExpressions: [{ key: NS_LABEL, operator: "NotIn", values: ["y"] }] } }] })));
    await expectReachability(["80/TCP", new Reachability().expectPeer({ namespace: "x", pod: "a" }, { namespace: "y" }, false)]);
  });

  // Not upstream e2e cases: the API test "should support creating NetworkPolicy API with endport
  // field" (network_policy_api.go) only creates such policies; here the range is enforced.
  it("endPort: a port range allows its ports and no other (networking/v1 NetworkPolicyPort.endPort)", async () => {
    await create(netpolMatch("x", "allow-range-81-90-from-y", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: ns("y") }], ports: [{ protocol: "TCP", port: 81, endPort: 90 }] })));
    await expectReachability(
      ["81/TCP", new Reachability().expectAllIngress("x/a", false).expectPeer({ namespace: "y" }, { namespace: "x", pod: "a" }, true)],
      ["80/TCP", new Reachability().expectAllIngress("x/a", false)],
      ["81/UDP", new Reachability().expectAllIngress("x/a", false)],
    );
  });

  it("empty from, to and ports match everything; an absent rule list matches nothing (networking/v1 types.go)", async () => {
    // ingress [{from: [], ports: []}]: one rule with empty lists allows every source and port;
    // egress absent with policyTypes [Egress]: isolated for egress, nothing allowed.
    await create(
      netpolMatch("x", "empty-lists", { pod: "a" }, (np) => {
        np.spec.policyTypes = ["Ingress"];
        np.spec.ingress = [{ from: [], ports: [] }];
      }),
      netpolMatch("y", "egress-empty-to", { pod: "b" }, (np) => {
        np.spec.policyTypes = ["Egress"];
        np.spec.egress = [{ to: [], ports: [] }];
      }),
      netpolMatch("z", "egress-absent", { pod: "c" }, (np) => {
        np.spec.policyTypes = ["Egress"];
      }),
    );
    const r = new Reachability().expectAllEgress("z/c", false);
    await expectReachability(["80/TCP", r], ["81/UDP", r]);
  });

  it("default-deny-egress allowing DNS to kube-system keeps lookups working (the docs' DNS egress pattern; not an upstream e2e case)", async () => {
    const xa = { namespace: "x", name: "a", nodeName: "node-1", podIp: ips["x/a"]! };
    const lookup = () => cluster.exec(xa, ["nslookup", "-timeout=1", "-retry=1", "kubernetes.default"], 20_000);
    await until("coredns answers x/a", async () => ((await lookup()).exitCode === 0 ? true : undefined), 60_000);
    const dns = [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }];
    const policy = netpol("x", "default-deny-egress-but-dns", {}, egressRules({ to: [{ namespaceSelector: nsName("kube-system") }], ports: dns }));
    await create(policy);
    await expectReachability(["80/TCP", new Reachability().expectPeer({ namespace: "x" }, {}, false)]);
    const ok = await lookup();
    expect(ok.exitCode, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/Address: 10\.96\.0\.1\b/);
    // Without the DNS rule the same lookup cannot reach coredns: the allow was what let it through.
    (policy.spec as Obj).egress = [];
    await create(policy);
    const failed = await until("the lookup fails once DNS is no longer allowed", async () => {
      const r = await lookup();
      return r.exitCode !== 0 ? r : undefined;
    }, ENFORCE_WITHIN_MS);
    expect(failed.stdout + failed.stderr).toMatch(/timed out|no servers could be reached/i);
  });
});

describe("Netpol [LinuxOnly] NetworkPolicy between server and client using UDP", () => {
  it("should support a 'default-deny-ingress' policy", async () => {
    await create(netpol("x", "deny-all", {}, ingressRules()));
    const r = new Reachability().expectPeer({}, { namespace: "x" }, false);
    await expectReachability(["80/UDP", r]);
    const drop = await expectPolicyDrop("z/a", "x/b", "80/UDP", /x\/deny-all/);
    expect(drop).toMatchObject({ proto: 17, node: "node-2" });
  });

  it("should enforce policy based on Ports", async () => {
    await create(netpolMatch("x", "allow-ingress-on-port-81-ns-x", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsName("y") }], ports: [{ port: 81, protocol: "UDP" }] })));
    await expectReachability(
      ["81/UDP", new Reachability().expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false).expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false)],
      // Not in upstream: the same port over TCP is closed to everyone.
      ["81/TCP", new Reachability().expectAllIngress("x/a", false)],
    );
  });

  it("should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector", async () => {
    await create(netpolMatch("x", "allow-ns-y-pod-a-via-namespace-pod-selector", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: nsName("y"), podSelector: { matchLabels: { pod: "a" } } }] })));
    await expectReachability(["80/UDP", new Reachability().expectAllIngress("x/a", false).expect("y/a", "x/a", true)]);
  });
});

// ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2), after kubernetes-sigs/network-policy-api
// conformance/tests/admin-network-policy-standard-integration.go (CNPAdminTierIntegration) with
// api_integration/standard-anp-np-banp.yaml: gryffindor is namespace x, slytherin y.
describe("ClusterNetworkPolicy CNPAdminTierIntegration (admin CNP, NetworkPolicy, baseline CNP)", () => {
  const passExample = (ingressAction: string, egressAction: string) =>
    cnp("pass-example", {
      tier: "Admin",
      priority: 10,
      subject: { namespaces: ns("x") },
      ingress: [{ name: "deny-all-ingress-from-slytherin", action: ingressAction, from: [{ namespaces: ns("y") }] }],
      egress: [{ name: "deny-all-egress-to-slytherin", action: egressAction, to: [{ namespaces: ns("y") }] }],
    });
  const npAllowY = netpol("x", "allow-gress-from-to-slytherin-to-gryffindor", {}, (np) => {
    np.spec.policyTypes = ["Ingress", "Egress"];
    np.spec.ingress = [{ from: [{ namespaceSelector: ns("y") }] }];
    np.spec.egress = [{ to: [{ namespaceSelector: ns("y") }] }];
  });
  const baselineDefault = cnp("default", {
    tier: "Baseline",
    priority: 10,
    subject: { namespaces: ns("x") },
    ingress: [{ name: "deny-all-ingress-from-slytherin", action: "Deny", from: [{ namespaces: ns("y") }] }],
    egress: [{ name: "deny-all-egress-to-slytherin", action: "Deny", to: [{ namespaces: ns("y") }] }],
  });

  it("Should Deny traffic from slytherin to gryffindor respecting admin CNP (an Admin Deny overrides the namespace's allow)", async () => {
    await create(passExample("Deny", "Deny"), npAllowY, baselineDefault);
    // x is isolated both ways by the NetworkPolicy (y only), and the Admin Deny takes y away too.
    const r = new Reachability().expectPeer({ namespace: "x" }, {}, false).expectPeer({}, { namespace: "x" }, false);
    await expectReachability(["80/TCP", r]);
    const drop = await expectPolicyDrop("y/c", "x/c", "80/TCP", /Admin pass-example rule deny-all-ingress-from-slytherin denies/);
    expect(drop.node).toBe("node-3");
    expect((await explain("y/a", "x/a", "80/TCP")).text).toMatch(/verdict: DENY \(ingress\): Admin pass-example rule deny-all-ingress-from-slytherin denies/);
    expect((await explain("x/b", "y/c", "80/TCP")).text).toMatch(/verdict: DENY \(egress\): Admin pass-example rule deny-all-egress-to-slytherin denies/);
  });

  it("Should support a 'pass-ingress' policy for admin CNP and respect the match for network policy", async () => {
    await create(passExample("Pass", "Deny"), npAllowY, baselineDefault);
    const r = new Reachability().expectPeer({ namespace: "x" }, {}, false).expectPeer({}, { namespace: "x" }, false).expectPeer({ namespace: "y" }, { namespace: "x" }, true);
    await expectReachability(["80/TCP", r]);
    await explainAgrees("80/TCP", r, [["y/a", "x/a"], ["x/a", "y/a"], ["z/a", "x/b"]]);
  });

  it("Should support a 'pass-egress' policy for admin CNP and respect the match for network policy", async () => {
    await create(passExample("Pass", "Pass"), npAllowY, baselineDefault);
    const r = new Reachability().expectPeer({ namespace: "x" }, {}, false).expectPeer({}, { namespace: "x" }, false).expectPeer({ namespace: "y" }, { namespace: "x" }, true).expectPeer({ namespace: "x" }, { namespace: "y" }, true);
    await expectReachability(["80/TCP", r]);
  });

  it("Should support a 'pass-ingress' policy for admin CNP and respect the match for baseline cluster network policy", async () => {
    await create(passExample("Pass", "Pass"), npAllowY, baselineDefault);
    await cluster.kubectlOk(["delete", "networkpolicy", "-n", "x", "allow-gress-from-to-slytherin-to-gryffindor"]);
    // No NetworkPolicy isolates x any more: the baseline decides, y is denied both ways.
    const r = new Reachability().expectPeer({ namespace: "y" }, { namespace: "x" }, false).expectPeer({ namespace: "x" }, { namespace: "y" }, false);
    await expectReachability(["80/TCP", r], ["81/UDP", r]);
    await expectPolicyDrop("y/b", "x/b", "80/TCP", /Baseline default rule deny-all-ingress-from-slytherin denies/);
  });
});

describe("ClusterNetworkPolicy tiers", () => {
  it("Baseline applies only where no NetworkPolicy selects (CNPBaselineTierIngressTCP's subject, CNPAdminTierIntegration's 'delete network policy so that baseline CNP takes effect')", async () => {
    await create(
      cnp("baseline-deny-y", { tier: "Baseline", priority: 0, subject: { namespaces: ns("x") }, ingress: [{ name: "no-y", action: "Deny", from: [{ namespaces: ns("y") }] }] }),
      netpolMatch("x", "a-from-y", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: ns("y") }] })),
    );
    // x/a: its NetworkPolicy decides (from y only); x/b, x/c: the baseline decides (all but y).
    const r = new Reachability().expectAllIngress("x/a", false).expectPeer({ namespace: "y" }, { namespace: "x", pod: "a" }, true).expectPeer({ namespace: "y" }, { namespace: "x", pod: "b" }, false).expectPeer({ namespace: "y" }, { namespace: "x", pod: "c" }, false);
    await expectReachability(["80/TCP", r]);
    await explainAgrees("80/TCP", r, [["y/a", "x/a"], ["y/a", "x/b"], ["z/a", "x/c"], ["z/a", "x/a"]]);
  });

  it("Admin Pass hands over to NetworkPolicy, and to Baseline where none isolates (CNPAdminTierIntegration pass rules)", async () => {
    await create(
      cnp("pass-intra", { tier: "Admin", priority: 1, subject: { namespaces: {} }, ingress: [{ name: "pass-all", action: "Pass", from: [{ namespaces: {} }] }, { name: "deny-all", action: "Deny", from: [{ namespaces: {} }] }] }),
      cnp("baseline", { tier: "Baseline", priority: 1, subject: { namespaces: {} }, ingress: [{ name: "deny-z", action: "Deny", from: [{ namespaces: ns("z") }] }] }),
      netpol("y", "allow-z", {}, ingressRules({ from: [{ namespaceSelector: ns("z") }] })),
    );
    // y: its NetworkPolicy (z only); x and z: the baseline (all but z). z -> z/* is z's own
    // namespace but still "from z": denied, except a pod to itself.
    const r = new Reachability().expectPeer({ namespace: "z" }, {}, false).expectPeer({}, { namespace: "y" }, false).expectPeer({ namespace: "z" }, { namespace: "y" }, true);
    await expectReachability(["80/TCP", r]);
  });

  it("Admin Accept is final, but an egress Accept still needs the destination's ingress", async () => {
    await create(
      netpol("x", "deny-all", {}, ingressRules()),
      cnp("accept-z", { tier: "Admin", priority: 1, subject: { namespaces: {} }, ingress: [{ name: "from-z", action: "Accept", from: [{ namespaces: ns("z") }] }] }),
      cnp("accept-to-x", { tier: "Admin", priority: 2, subject: { namespaces: ns("y") }, egress: [{ name: "to-x", action: "Accept", to: [{ namespaces: ns("x") }] }] }),
    );
    await expectReachability(["80/TCP", new Reachability().expectPeer({}, { namespace: "x" }, false).expectPeer({ namespace: "z" }, { namespace: "x" }, true)]);
  });
});
