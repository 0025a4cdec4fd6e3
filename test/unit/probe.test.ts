/**
 * `kubewire probe` without a cluster: the command line, the probe commands and how their results
 * read, upstream's truth-table text (test/e2e/network/netpol/truthtable.go PrettyPrint) both ways,
 * the comparison with an expectation and the report, and the matrix runner against a fake exec.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  classify,
  compareTables,
  expectedFor,
  formatTruthTable,
  parsePodList,
  parsePortSpec,
  parseProbeArgs,
  parseTruthTables,
  podsOfNamespaces,
  probeArgv,
  probeMatrices,
  probePreflight,
  readProbePod,
  report,
  type Cell,
  type PodExec,
  type ProbePod,
  type ProbePort,
  type ProbeResult,
  type TruthTable,
  explainJudge,
  flowJudge,
  verifyResult,
} from "../../cli/probe.ts";
import type { KubeObjectLike } from "../../cluster/kube-client.ts";
import type { ObservedFlow } from "../../cluster/types.ts";
import { PolicyEngine } from "../../node-agent/policy/engine.ts";
import { ingressRules, ipText, modelObjects, netpolMatch, nodeOf } from "./policy/fixtures.ts";

const PODS = ["x/a", "x/b", "x/c", "y/a", "y/b", "y/c", "z/a", "z/b", "z/c"];

/** The expected table printed in network_policy.go's header comment (x/a isolated from x and z). */
const UPSTREAM_EXAMPLE = [
  "-\tx/a\tx/b\tx/c\ty/a\ty/b\ty/c\tz/a\tz/b\tz/c",
  "x/a\tX\t.\t.\t.\t.\t.\t.\t.\t.",
  "x/b\tX\t.\t.\t.\t.\t.\t.\t.\t.",
  "x/c\tX\t.\t.\t.\t.\t.\t.\t.\t.",
  "y/a\t.\t.\t.\t.\t.\t.\t.\t.\t.",
  "y/b\t.\t.\t.\t.\t.\t.\t.\t.\t.",
  "y/c\t.\t.\t.\t.\t.\t.\t.\t.\t.",
  "z/a\tX\t.\t.\t.\t.\t.\t.\t.\t.",
  "z/b\tX\t.\t.\t.\t.\t.\t.\t.\t.",
  "z/c\tX\t.\t.\t.\t.\t.\t.\t.\t.",
].join("\n");

function table(cell: (from: string, to: string) => "." | "X" | "?", pods = PODS): TruthTable {
  return { froms: pods, tos: pods, marks: pods.map((f) => pods.map((t) => cell(f, t))) };
}
const xaIsolated = (f: string, t: string) => (t === "x/a" && !f.startsWith("y/") ? "X" : ".");

function pod(key: string, netexec: number | "none" = 80): ProbePod {
  const [namespace, name] = key.split("/") as [string, string];
  return { key, namespace, name, nodeName: "node-1", ip: `10.244.1.${PODS.indexOf(key) + 10}`, netexecHttpPort: netexec === "none" ? undefined : netexec };
}

describe("truth table text", () => {
  it("prints exactly upstream's PrettyPrint", () => {
    expect(formatTruthTable(table(xaIsolated))).toBe(UPSTREAM_EXAMPLE);
  });

  it("reads upstream's text back, with or without a PORT/PROTOCOL heading, tabs or spaces", () => {
    const plain = parseTruthTables(`${UPSTREAM_EXAMPLE}\n`);
    expect(plain).toEqual({ kind: "ok", value: [{ port: undefined, table: table(xaIsolated) }] });
    const spaced = parseTruthTables(`# x/a isolated\n81/udp\n${UPSTREAM_EXAMPLE.replaceAll("\t", "   ")}\n`);
    expect(spaced).toEqual({ kind: "ok", value: [{ port: { port: 81, protocol: "UDP" }, table: table(xaIsolated) }] });
  });

  it("reads several tables under their headings and picks the one for a port", () => {
    const all = table(() => ".");
    const text = `80/TCP\n${formatTruthTable(table(xaIsolated))}\n\n81/TCP\n${formatTruthTable(all)}\n`;
    const r = parseTruthTables(text);
    if (r.kind !== "ok") throw new Error(r.message);
    expect(expectedFor(r.value, { port: 80, protocol: "TCP" })).toEqual(table(xaIsolated));
    expect(expectedFor(r.value, { port: 81, protocol: "TCP" })).toEqual(all);
    expect(expectedFor(r.value, { port: 81, protocol: "UDP" })).toBeUndefined();
    // Blank lines between tables are optional: a heading ends the table before it.
    expect(parseTruthTables(text.replace("\n\n", "\n"))).toEqual(r);
  });

  it("says what is wrong with a malformed file, as a value", () => {
    const bad = (text: string) => {
      const r = parseTruthTables(text);
      return r.kind === "invalid" ? r.message : "parsed";
    };
    expect(bad("")).toBe("no truth table found");
    expect(bad("-\tx/a\nx/a\t.\t.\n")).toBe("line 2: row x/a has 2 cells for 1 destinations");
    expect(bad("-\tx/a\nx/a\to\n")).toBe('line 2: cell "o" is not ".", "X" or "?"');
    expect(bad("-\tx/a\nx/a\t.\nx/a\t.\n")).toBe("line 3: source x/a has two rows");
    expect(bad("-\tx/a\tx/a\n")).toBe("line 1: a destination is named twice");
    expect(bad("80/SCTP\n-\tx/a\nx/a\t.\n")).toMatch(/^line 1: 80\/SCTP: SCTP cannot be probed/);
    expect(bad("hello world\n")).toMatch(/^line 1: expected a "PORT\/PROTOCOL" heading/);
    expect(bad("80/TCP\n")).toBe("the heading 80/TCP has no table after it");
    expect(bad("-\tx/a\nx/a\t.\n\n-\tx/a\nx/a\tX\n")).toBe("several tables: give each a PORT/PROTOCOL heading line");
    expect(bad("80/TCP\n-\tx/a\nx/a\t.\n\n80/tcp\n-\tx/a\nx/a\tX\n")).toBe("two tables for 80/TCP");
  });

  it("never throws, whatever the bytes, and what prints reads back the same", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        const r = parseTruthTables(text);
        expect(["ok", "invalid"]).toContain(r.kind);
      }),
      { numRuns: 2000 },
    );
    const names = fc.uniqueArray(fc.stringMatching(/^[a-z]{1,3}\/[a-z]{1,3}$/), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(names, fc.array(fc.constantFrom<"." | "X" | "?">(".", "X", "?"), { minLength: 36, maxLength: 36 }), (pods, marks) => {
        const t = table((f, to) => marks[pods.indexOf(f) * 6 + pods.indexOf(to)]!, pods);
        expect(parseTruthTables(formatTruthTable(t))).toEqual({ kind: "ok", value: [{ port: undefined, table: t }] });
      }),
    );
  });
});

describe("comparison with an expectation", () => {
  it("counts cells as Reachability.Summary: '?' expected is not compared, '?' observed differs", () => {
    const want = table((f, t) => (f === t ? "?" : xaIsolated(f, t)));
    const got = table((f, t) => (f === "z/c" && t === "x/a" ? "." : f === "y/a" && t === "y/b" ? "?" : xaIsolated(f, t)));
    expect(compareTables(want, got)).toEqual({
      correct: 79,
      differences: [
        { kind: "cell", from: "y/a", to: "y/b", expected: ".", observed: "?" },
        { kind: "cell", from: "z/c", to: "x/a", expected: "X", observed: "." },
      ],
    });
  });

  it("matches pods by name whatever their order, and names pods on one side only", () => {
    const want = table(xaIsolated, [...PODS].reverse());
    expect(compareTables(want, table(xaIsolated))).toEqual({ correct: 81, differences: [] });
    const fewer = table(xaIsolated, PODS.slice(0, 8));
    const c = compareTables(fewer, table(xaIsolated));
    expect(c.differences).toContainEqual({ kind: "unexpected", from: "z/c", to: "x/a", observed: "X" });
    expect(compareTables(table(xaIsolated), fewer).differences).toEqual([{ kind: "notProbed", pod: "z/c" }]);
  });
});

describe("report", () => {
  const connected: Cell = { kind: "connected" };
  const blocked: Cell = { kind: "blocked", why: "timed out: operation now in progress" };
  const result = (cell: (f: string, t: string) => Cell, port: ProbePort = { port: 80, protocol: "TCP" }): ProbeResult => ({ port, pods: PODS, cells: PODS.map((f) => PODS.map((t) => cell(f, t))) });
  const observed = result((f, t) => (xaIsolated(f, t) === "." ? connected : blocked));

  it("prints the table under its port, exit 0 without an expectation", () => {
    expect(report([observed], undefined, "table")).toEqual({ text: `80/TCP\n${UPSTREAM_EXAMPLE}\n`, warnings: [], exitCode: 0 });
  });

  it("lists the cells that differ and exits 1", () => {
    const want = parseTruthTables(formatTruthTable(table(() => ".")));
    if (want.kind !== "ok") throw new Error(want.message);
    const r = report([observed], want.value, "table");
    expect(r.exitCode).toBe(1);
    expect(r.text.split("\n").slice(11)).toEqual([
      "",
      "80/TCP: 6 cell(s) differ from the expectation:",
      "  x/a -> x/a: expected ., observed X (expected connected, was blocked)",
      "  x/b -> x/a: expected ., observed X (expected connected, was blocked)",
      "  x/c -> x/a: expected ., observed X (expected connected, was blocked)",
      "  z/a -> x/a: expected ., observed X (expected connected, was blocked)",
      "  z/b -> x/a: expected ., observed X (expected connected, was blocked)",
      "  z/c -> x/a: expected ., observed X (expected connected, was blocked)",
      "reachability: correct:75, incorrect:6, result=false",
      "",
    ]);
  });

  it("exits 0 when all agree, 1 on a failed probe or a port the expectation lacks", () => {
    const want = parseTruthTables(`80/TCP\n${UPSTREAM_EXAMPLE}`);
    if (want.kind !== "ok") throw new Error(want.message);
    const ok = report([observed], want.value, "table");
    expect(ok.exitCode).toBe(0);
    expect(ok.text.endsWith("reachability: correct:81, incorrect:0, result=true\n")).toBe(true);
    const failed = result((f, t) => (f === "x/a" && t === "y/a" ? { kind: "error", message: "no one answers on kubewire.node.node-1.exec" } : xaIsolated(f, t) === "." ? connected : blocked));
    const r = report([failed], undefined, "table");
    expect(r).toMatchObject({ exitCode: 1, warnings: ["80/TCP x/a -> y/a: probe failed: no one answers on kubewire.node.node-1.exec"] });
    expect(r.text.split("\n")[2]).toBe("x/a\tX\t.\t.\t?\t.\t.\t.\t.\t.");
    expect(report([observed, result(() => connected, { port: 81, protocol: "UDP" })], want.value, "table").warnings).toEqual(["the expectation has no table for 81/UDP"]);
  });

  it("-o json: the matrix by source and destination, null for a failed probe, the differences", () => {
    const want = parseTruthTables(formatTruthTable(table(() => ".")));
    if (want.kind !== "ok") throw new Error(want.message);
    const r = report([observed], want.value, "json");
    const json = JSON.parse(r.text) as { pods: string[]; ports: Array<{ port: number; protocol: string; matrix: Record<string, Record<string, boolean | null>>; cells: unknown[]; correct: number; differences: unknown[] }> };
    expect(json.pods).toEqual(PODS);
    expect(json.ports[0]).toMatchObject({ port: 80, protocol: "TCP", correct: 75 });
    expect(json.ports[0]!.matrix["x/b"]!["x/a"]).toBe(false);
    expect(json.ports[0]!.matrix["y/b"]!["x/a"]).toBe(true);
    expect(json.ports[0]!.cells).toContainEqual({ from: "x/b", to: "x/a", kind: "blocked", why: "timed out: operation now in progress" });
    expect(json.ports[0]!.differences).toContainEqual({ kind: "cell", from: "x/b", to: "x/a", expected: ".", observed: "X" });
    expect(r.exitCode).toBe(1);
  });
});

describe("command line", () => {
  it("ports: PORT, PORT/TCP, PORT/udp; SCTP and nonsense refused with the reason", () => {
    expect(parsePortSpec("80")).toEqual({ kind: "ok", value: { port: 80, protocol: "TCP" } });
    expect(parsePortSpec("81/udp")).toEqual({ kind: "ok", value: { port: 81, protocol: "UDP" } });
    expect(parsePortSpec("80/SCTP")).toMatchObject({ kind: "invalid", message: expect.stringContaining("no SCTP transport") });
    expect(parsePortSpec("80/ICMP")).toMatchObject({ kind: "invalid", message: expect.stringContaining('unknown protocol "ICMP"') });
    for (const bad of ["0", "65536", "http", "80/", "-1"]) expect(parsePortSpec(bad).kind).toBe("invalid");
  });

  it("pods: NS/POD or POD in the default namespace, comma lists and repeats", () => {
    expect(parsePodList(["x/a,y/b", "c", "x/a"], "z")).toEqual({ kind: "ok", value: ["x/a", "y/b", "z/c"] });
    expect(parsePodList(["x/a/b"], "z").kind).toBe("invalid");
    expect(parsePodList([","], "z").kind).toBe("invalid");
  });

  it("defaults to 80/TCP, 1 s, 16 at a time, the table", () => {
    expect(parseProbeArgs(["--namespaces", "x,y", "--namespaces", "z"])).toEqual({
      kind: "ok",
      value: { selection: { kind: "namespaces", namespaces: ["x", "y", "z"] }, ports: [{ port: 80, protocol: "TCP" }], timeoutSeconds: 1, concurrency: 16, expectFile: undefined, verify: false, output: "table", stateDir: undefined },
    });
    expect(parseProbeArgs(["-n", "x", "--pods", "a,b", "--port", "80", "--port", "81/UDP", "--expect", "f.txt", "--verify", "-o", "json", "--timeout", "0.5", "--concurrency", "81", "--state-dir", "/s"])).toEqual({
      kind: "ok",
      value: { selection: { kind: "pods", pods: ["x/a", "x/b"] }, ports: [{ port: 80, protocol: "TCP" }, { port: 81, protocol: "UDP" }], timeoutSeconds: 0.5, concurrency: 81, expectFile: "f.txt", verify: true, output: "json", stateDir: "/s" },
    });
  });

  it("refuses what it cannot do, as a value", () => {
    const message = (args: string[]) => {
      const r = parseProbeArgs(args);
      return r.kind === "invalid" ? r.message : "accepted";
    };
    expect(message([])).toMatch(/^give the pods to probe/);
    expect(message(["--pods", "x/a", "--namespaces", "x"])).toMatch(/^give the pods to probe/);
    expect(message(["--namespaces", "X_Y"])).toBe('--namespaces: "X_Y" is not a namespace name');
    expect(message(["--namespaces", "x", "--timeout", "0"])).toMatch(/^--timeout/);
    expect(message(["--namespaces", "x", "--concurrency", "0"])).toMatch(/^--concurrency/);
    expect(message(["--namespaces", "x", "-o", "yaml"])).toMatch(/^--output/);
    expect(message(["--namespaces", "x", "extra"])).toBe('unexpected argument "extra"');
    expect(message(["--namespaces", "x", "--bogus"])).toMatch(/bogus/);
  });
});

describe("before connecting (cli/main.ts)", () => {
  const run = (args: string[]) => {
    let stdout = "";
    let stderr = "";
    const r = probePreflight(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
    return { r, stdout, stderr };
  };

  it("--help prints the usage and ends with 0; a usage error prints why and ends with 2", () => {
    const help = run(["--help"]);
    expect(help.r).toEqual({ kind: "exit", code: 0 });
    expect(help.stdout).toMatch(/^usage: kubewire probe/);
    const bad = run(["--namespaces", "x", "--port", "80/SCTP"]);
    expect(bad.r).toEqual({ kind: "exit", code: 2 });
    expect(bad.stderr).toMatch(/^error: probe: --port 80\/SCTP: SCTP cannot be probed/);
  });

  it("otherwise says which cluster to connect to", () => {
    expect(run(["--namespaces", "x", "--state-dir", "/tmp/kw"]).r).toEqual({ kind: "connect", stateDir: "/tmp/kw" });
    expect(run(["--pods", "x/a"]).r).toEqual({ kind: "connect", stateDir: undefined });
  });
});

describe("one probe", () => {
  const xa = pod("x/a");
  const yb = pod("y/b");

  it("TCP is nc -z with the timeout; UDP goes through the source pod's own netexec /dial", () => {
    expect(probeArgv(xa, yb, { port: 80, protocol: "TCP" }, 1)).toEqual({ kind: "ok", value: ["nc", "-z", "-v", "-w", "1", "10.244.1.14", "80"] });
    expect(probeArgv(pod("x/a", 8080), yb, { port: 81, protocol: "UDP" }, 1)).toEqual({
      kind: "ok",
      value: ["curl", "-s", "-S", "-m", "1", "http://127.0.0.1:8080/dial?request=hostname&protocol=udp&host=10.244.1.14&port=81&tries=1"],
    });
    expect(probeArgv(pod("x/a", "none"), yb, { port: 81, protocol: "UDP" }, 1)).toMatchObject({ kind: "invalid", message: expect.stringContaining("x/a runs no agnhost netexec") });
  });

  it("reads nc's exit code and -v line", () => {
    const tcp = { port: 80, protocol: "TCP" } as const;
    expect(classify(tcp, { exitCode: 0, stdout: "", stderr: "Connection to 10.244.1.14 80 port [tcp/http] succeeded!\n" })).toEqual({ kind: "connected" });
    expect(classify(tcp, { exitCode: 1, stdout: "", stderr: "nc: connect to 10.244.1.14 port 80 (tcp) timed out: Operation now in progress\n" })).toEqual({ kind: "blocked", why: "timed out: operation now in progress" });
    expect(classify(tcp, { exitCode: 1, stdout: "", stderr: "nc: connect to 10.244.1.14 port 80 (tcp) failed: Connection refused\n" })).toEqual({ kind: "blocked", why: "connection refused" });
    expect(classify(tcp, { exitCode: 127, stdout: "", stderr: 'exec: "nc": executable file not found\n' })).toMatchObject({ kind: "error" });
  });

  it("reads netexec's /dial answer: a response is a connection, a curl timeout or an error list is not", () => {
    const udp = { port: 81, protocol: "UDP" } as const;
    expect(classify(udp, { exitCode: 0, stdout: '{"responses":["b"]}', stderr: "" })).toEqual({ kind: "connected" });
    expect(classify(udp, { exitCode: 28, stdout: "", stderr: "curl: (28) Operation timed out after 1000 milliseconds with 0 bytes received\n" })).toEqual({ kind: "blocked", why: "no answer (timed out)" });
    expect(classify(udp, { exitCode: 0, stdout: '{"errors":["reading from udp connection failed. err:\'i/o timeout\'"]}', stderr: "" })).toEqual({ kind: "blocked", why: "reading from udp connection failed. err:'i/o timeout'" });
    expect(classify(udp, { exitCode: 7, stdout: "", stderr: "curl: (7) Failed to connect to 127.0.0.1 port 80: Connection refused\n" })).toMatchObject({ kind: "error", message: expect.stringContaining("exited 7") });
    expect(classify(udp, { exitCode: 0, stdout: "NOW: 2024", stderr: "" })).toMatchObject({ kind: "error" });
  });
});

describe("pods", () => {
  const obj = (ns: string, name: string, over: { phase?: string; ip?: string; deleting?: boolean; args?: string[] } = {}): KubeObjectLike => ({
    metadata: { namespace: ns, name, ...(over.deleting ? { deletionTimestamp: "2024-01-01T00:00:00Z" } : {}) },
    spec: { nodeName: "node-2", containers: [{ name: "c", image: "registry.k8s.io/e2e-test-images/agnhost:2.53", args: over.args ?? ["netexec", "--http-port=81", "--udp-port=81"] }] },
    status: { phase: over.phase ?? "Running", podIP: over.ip ?? "10.244.2.7" },
  });

  it("a Running pod with an IP, and the HTTP port of its netexec as the node-agent would serve it", () => {
    expect(readProbePod(obj("x", "a"))).toEqual({ kind: "ready", pod: { key: "x/a", namespace: "x", name: "a", nodeName: "node-2", ip: "10.244.2.7", netexecHttpPort: 81 } });
    expect(readProbePod(obj("x", "a", { args: ["pause"] }))).toMatchObject({ kind: "ready", pod: { netexecHttpPort: undefined } });
    expect(readProbePod(obj("x", "a", { phase: "Pending" }))).toEqual({ kind: "notReady", why: "pod x/a is Pending, not Running" });
    expect(readProbePod(obj("x", "a", { deleting: true }))).toEqual({ kind: "notReady", why: "pod x/a is terminating" });
    expect(readProbePod(obj("x", "a", { ip: "" }))).toEqual({ kind: "notReady", why: "pod x/a has no node or no IP yet" });
  });

  it("--namespaces: Running pods only, namespaces in the order given, pods by name", () => {
    const objects = [obj("y", "b"), obj("x", "c"), obj("y", "a"), obj("x", "a", { phase: "Succeeded" }), obj("w", "a"), obj("x", "b")];
    expect(podsOfNamespaces(["y", "x"], objects).map((p) => p.key)).toEqual(["y/a", "y/b", "x/b", "x/c"]);
  });
});

describe("probeMatrices", () => {
  it("probes every pair on every port, at most `concurrency` at once, and keeps each result in its cell", async () => {
    const pods = PODS.map((k) => pod(k));
    let inFlight = 0;
    let most = 0;
    const calls: string[] = [];
    const exec: PodExec = async (from, argv, timeoutMs) => {
      inFlight++;
      most = Math.max(most, inFlight);
      calls.push(`${from.key} ${argv.join(" ")} ${timeoutMs}`);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      const to = PODS[Number(/10\.244\.1\.(\d+)/.exec(argv.join(" "))![1]) - 10]!;
      if (from.key === "y/c" && to === "z/a") throw new Error("no one answers");
      if (argv[0] === "nc") return xaIsolated(from.key, to) === "." ? { exitCode: 0, stdout: "", stderr: "" } : { exitCode: 1, stdout: "", stderr: "nc: connect to h port 80 (tcp) timed out: Operation now in progress\n" };
      return to === "y/b" ? { exitCode: 28, stdout: "", stderr: "" } : { exitCode: 0, stdout: '{"responses":["x"]}', stderr: "" };
    };
    const [tcp, udp] = await probeMatrices(pods, [{ port: 80, protocol: "TCP" }, { port: 81, protocol: "UDP" }], { exec, timeoutSeconds: 1, concurrency: 7 });
    expect(calls).toHaveLength(162);
    expect(most).toBe(7);
    expect(calls[0]).toBe("x/a nc -z -v -w 1 10.244.1.10 80 6000");
    expect(formatTruthTable({ froms: PODS, tos: PODS, marks: tcp!.cells.map((r) => r.map((c) => (c.kind === "connected" ? "." : c.kind === "blocked" ? "X" : "?"))) })).toBe(
      UPSTREAM_EXAMPLE.replace("y/c\t.\t.\t.\t.\t.\t.\t.", "y/c\t.\t.\t.\t.\t.\t.\t?"),
    );
    expect(tcp!.cells[5]![6]).toEqual({ kind: "error", message: "no one answers" });
    expect(udp!.cells.every((row, i) => row.every((c, j) => (i === 5 && j === 6 ? c.kind === "error" : PODS[j] === "y/b" ? c.kind === "blocked" : c.kind === "connected")))).toBe(true);
  });
});

describe("--verify: each cell judged by policy explain and by the flow records", () => {
  // The policy suite's model (test/unit/policy/fixtures.ts): x/a on node-1 at 10.244.1.10...
  const pods: ProbePod[] = PODS.map((key) => {
    const [namespace, name] = key.split("/") as [string, string];
    return { key, namespace, name, nodeName: nodeOf(key), ip: ipText(key), netexecHttpPort: 80 };
  });
  const tcp80: ProbePort = { port: 80, protocol: "TCP" };
  /** x/a accepts only from namespace y (upstream's example above). */
  const engine = new PolicyEngine();
  engine.replaceAll({ ...modelObjects(), networkPolicies: [netpolMatch("x", "allow-y", { pod: "a" }, ingressRules({ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }))] });
  const deny = "denied (ingress): default deny: selected by x/allow-y, no rule allows";
  const connected: Cell = { kind: "connected" };
  const blocked: Cell = { kind: "blocked", why: "timed out" };
  const result = (cell: (f: string, t: string) => Cell): ProbeResult => ({ port: tcp80, pods: PODS, cells: PODS.map((f) => PODS.map((t) => cell(f, t))) });
  const truth = result((f, t) => (xaIsolated(f, t) === "." || f === t ? connected : blocked));
  const flow = (from: string, to: string, over: Partial<ObservedFlow>): ObservedFlow => ({
    time: 1,
    node: nodeOf(to),
    verdict: "FORWARDED",
    observation: "to-endpoint",
    where: "veth",
    src: ipText(from),
    dst: ipText(to),
    sport: 40000,
    dport: 80,
    proto: 6,
    tcpFlags: 2,
    isReply: false,
    ...over,
  });
  /** What the nodes record for the true matrix: a delivery, or x/a's node dropping the SYN. */
  const trueFlows = PODS.flatMap((f) =>
    PODS.filter((t) => t !== f).map((t) =>
      xaIsolated(f, t) === "." ? flow(f, t, {}) : flow(f, t, { verdict: "DROPPED", observation: "drop", where: "cni0", reason: "policy_denied", detail: `policy_denied: ${deny}` }),
    ),
  );

  it("policy explain judges a cell as the engine does, with the verdict's words", () => {
    const judge = explainJudge(engine);
    expect(judge(pods[3]!, pods[0]!, tcp80)).toEqual({ mark: ".", why: expect.stringMatching(/^allowed: /) });
    expect(judge(pods[1]!, pods[0]!, tcp80)).toEqual({ mark: "X", why: deny });
  });

  it("the flows: a delivery to the pod is '.', only drops 'X' with the reason, nothing '?'; replies and other ports do not count", () => {
    const judge = flowJudge([
      flow("x/b", "x/a", { verdict: "DROPPED", observation: "drop", where: "cni0", reason: "policy_denied", detail: `policy_denied: ${deny}` }),
      flow("y/a", "x/a", { verdict: "DROPPED", observation: "drop", where: "cni0", reason: "policy_denied", detail: "policy_denied: x" }),
      flow("y/a", "x/a", {}),
      flow("x/a", "x/c", { isReply: true }),
      flow("x/a", "x/b", { dport: 81 }),
      flow("x/a", "y/b", { proto: 17 }),
    ]);
    expect(judge(pods[1]!, pods[0]!, tcp80)).toEqual({ mark: "X", why: `dropped on node-1 at cni0: policy_denied: ${deny}`, reason: "policy_denied", detail: deny });
    expect(judge(pods[3]!, pods[0]!, tcp80)).toMatchObject({ mark: ".", why: "delivered to x/a on node-1" });
    for (const to of [2, 1, 4]) expect(judge(pods[0]!, pods[to]!, tcp80).mark).toBe("?");
    expect(judge(pods[0]!, pods[4]!, { port: 80, protocol: "UDP" }).mark).toBe(".");
  });

  it("agrees on every cell but a pod to itself when the matrix, explain and flows say the same", () => {
    const v = verifyResult(truth, pods, explainJudge(engine), flowJudge(trueFlows));
    expect(v).toEqual({ explain: { agree: 72, compared: 72 }, flows: { agree: 72, compared: 72 }, disagreements: [] });
    const r = report([truth], undefined, "table", [v]);
    expect(r.exitCode).toBe(0);
    expect(r.text).toContain("policy explain: 72/72 cells agree; flows: 72/72 cells agree (a pod to itself is not judged)");
  });

  it("lists every cell judged otherwise, including a drop naming another rule than explain, and exits 1", () => {
    const wrong = result((f, t) => (f === "y/b" && t === "x/a" ? blocked : xaIsolated(f, t) === "." || f === t ? connected : blocked));
    const flows = trueFlows.filter((f) => !(f.src === ipText("z/c") && f.dst === ipText("x/a"))).map((f) => (f.src === ipText("x/b") && f.dst === ipText("x/a") ? { ...f, detail: "policy_denied: denied (ingress): Admin other rule r denies" } : f));
    const v = verifyResult(wrong, pods, explainJudge(engine), flowJudge(flows));
    expect(v.explain).toEqual({ agree: 71, compared: 72 });
    expect(v.flows).toEqual({ agree: 69, compared: 72 });
    expect(v.disagreements.map((d) => [d.source, d.from, d.to, d.probed, d.said])).toEqual([
      ["flows", "x/b", "x/a", "X", "X"],
      ["explain", "y/b", "x/a", "X", "."],
      ["flows", "y/b", "x/a", "X", "."],
      ["flows", "z/c", "x/a", "X", "?"],
    ]);
    const r = report([wrong], undefined, "table", [v]);
    expect(r.exitCode).toBe(1);
    expect(r.text).toContain("80/TCP: 4 cell(s) judged otherwise:");
    expect(r.text).toContain(`  x/b -> x/a: probed X (blocked), but the flows show it dropped: dropped on node-1 at cni0: policy_denied: denied (ingress): Admin other rule r denies, but policy explain says: ${deny}`);
    expect(r.text).toContain("  z/c -> x/a: probed X (blocked), but the flows have no record: no flow record of the connection");
    expect(JSON.parse(report([wrong], undefined, "json", [v]).text).ports[0].verification.disagreements).toHaveLength(4);
  });

  it("without flow records the flows are not checked, and that is not a pass", () => {
    const v = verifyResult(truth, pods, explainJudge(engine), undefined);
    expect(v.flows).toBeUndefined();
    const r = report([truth], undefined, "table", [v]);
    expect(r.exitCode).toBe(1);
    expect(r.text).toContain("policy explain: 72/72 cells agree; flows: not checked");
  });
});
