/**
 * `kubewire probe`: the reachability matrix of Kubernetes' NetworkPolicy e2e suite
 * (test/e2e/network/netpol: probe.go, reachability.go, truthtable.go), made of real connections.
 *
 * Design notes:
 * - Every cell is a connection from inside the source pod, by the emulated tools a debugging
 *   image has, to the destination pod's IP (upstream dials a per-pod Service instead; a pod IP
 *   needs no Services and judges the same policies, which see the endpoint after DNAT anyway).
 *   A pod reaching itself goes over its own loopback, as on Linux, and is always connected;
 *   upstream ignores those cells (network_policy.go, ignoreLoopback).
 * - TCP: `nc -z -v -w T IP PORT` (OpenBSD nc as node-agent/tools/nc.ts emulates it): connected
 *   when the handshake completes within T seconds, like `agnhost connect --protocol=tcp`.
 * - UDP needs an answer: a datagram is "sent" whether or not a policy drops it, and the emulated
 *   `nc -u -z` reports success unless an ICMP refusal arrives, so it cannot see a silent drop.
 *   The honest probe is what `agnhost connect --protocol=udp` does, a request and its reply.
 *   The source pod's own agnhost netexec makes the exchange: `curl -m T
 *   http://127.0.0.1:HTTP/dial?protocol=udp&request=hostname&host=IP&port=PORT`, netexec's
 *   dialHandler, sends "hostname" from a fresh port of the source pod's netns and returns the
 *   answer (node-agent/apps/netexec.ts dialUdp). Connected when an answer came back within T
 *   seconds. So a UDP probe needs the source pod to run agnhost netexec (its HTTP port is read
 *   from the pod spec by the same plan() the node-agent serves containers with); SCTP has no
 *   transport in the emulation and cannot be probed at all.
 * - Bounded: T is 1 s by default (upstream's getProbeTimeoutSeconds), the exec RPC gets T plus
 *   a margin, and at most `--concurrency` probes (16) run at once, so a matrix of n pods with d
 *   denied cells takes about d*T/16 seconds.
 * - The table is upstream's TruthTable.PrettyPrint: a header "-" then the destinations, one row
 *   per source, "." connected, "X" not, "?" where no value is known (here: the probe itself
 *   failed, for instance the source pod's node did not answer). An expected table in the same
 *   format may say "?" for a cell it does not care about. Several ports give several tables,
 *   each under a "PORT/PROTOCOL" line; an expectation file without such lines applies its one
 *   table to every port.
 *
 * Everything but `probe()` and `probeMatrices()` is pure, and `probeMatrices` takes its exec as a
 * parameter, so all of it is unit tested without a cluster (test/unit/probe.test.ts).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { NatsConnection } from "nats";
import { KubeApiError, paths, type KubeClient, type KubeObjectLike } from "../cluster/kube-client.ts";
import { podRecordFrom } from "../cluster/kube-objects.ts";
import { request } from "../cluster/rpc.ts";
import { OBSERVE_REPLY_MAX, Subjects, type ExecRequest, type ExecResult, type ObserveRequest, type ObservedFlow } from "../cluster/types.ts";
import { plan } from "../node-agent/apps/index.ts";
import type { PolicyEngine } from "../node-agent/policy/engine.ts";
import { observeNodes, policyEngineOf } from "./cluster-views.ts";
import { writers } from "./output.ts";

// ---------------------------------------------------------------------------------------------
// Options

export type ProbeProtocol = "TCP" | "UDP";

export interface ProbePort {
  readonly port: number;
  readonly protocol: ProbeProtocol;
}

export type PodSelection = { readonly kind: "pods"; readonly pods: readonly string[] } | { readonly kind: "namespaces"; readonly namespaces: readonly string[] };

export interface ProbeOptions {
  readonly selection: PodSelection;
  readonly ports: readonly ProbePort[];
  /** Seconds a connection (or a UDP answer) may take. */
  readonly timeoutSeconds: number;
  readonly concurrency: number;
  readonly expectFile: string | undefined;
  /** Also judge every cell by policy explain and by the nodes' flow records. */
  readonly verify: boolean;
  readonly output: "table" | "json";
  readonly stateDir: string | undefined;
}

export type Parsed<T> = { readonly kind: "ok"; readonly value: T } | { readonly kind: "invalid"; readonly message: string };

export const PROBE_USAGE = `usage: kubewire probe (--pods NS/POD,... | --namespaces NS,...) [--port PORT/TCP|PORT/UDP]...
                      [--expect FILE] [--verify] [--timeout SECONDS] [--concurrency N] [-o json]

  Connects from every pod to every pod (itself included) on each port, from inside the source
  pod, and prints the truth table as Kubernetes' NetworkPolicy e2e suite does ("." connected,
  "X" not). --port defaults to 80/TCP; UDP needs agnhost netexec in the source pods. With
  --expect, the cells that differ from FILE (a truth table in the same format) are listed and
  the exit code is 1 when any does. With --verify, every cell is also judged by what
  \`kubewire policy explain\` says of the cluster's policies and by the nodes' flow records of
  the probe's own packets (delivered to the pod, or dropped and why), and the cells where
  either disagrees with the connection are listed (exit code 1).`;

export const DEFAULT_TIMEOUT_SECONDS = 1;
export const DEFAULT_CONCURRENCY = 16;
const MAX_CONCURRENCY = 256;
const MAX_TIMEOUT_SECONDS = 60;

/** "80", "80/TCP", "81/udp" -> a port to probe. SCTP is named, and refused, for what it is. */
export function parsePortSpec(text: string): Parsed<ProbePort> {
  const m = /^(\d{1,5})(?:\/([A-Za-z]+))?$/.exec(text.trim());
  const port = m ? Number(m[1]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) return { kind: "invalid", message: `--port: want PORT/TCP or PORT/UDP with PORT in 1-65535, got "${text}"` };
  const protocol = (m[2] ?? "TCP").toUpperCase();
  if (protocol === "SCTP") return { kind: "invalid", message: `--port ${text}: SCTP cannot be probed, the emulation has no SCTP transport (a policy may still name SCTP)` };
  if (protocol !== "TCP" && protocol !== "UDP") return { kind: "invalid", message: `--port ${text}: unknown protocol "${m[2]}" (TCP or UDP)` };
  return { kind: "ok", value: { port, protocol } };
}

export function formatPort(p: ProbePort): string {
  return `${p.port}/${p.protocol}`;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** "x/a,y/b" (or "a" in `defaultNamespace`) -> ["x/a", "y/b"]; duplicates kept once, in order. */
export function parsePodList(texts: readonly string[], defaultNamespace: string): Parsed<string[]> {
  const out: string[] = [];
  for (const item of texts.flatMap((t) => t.split(","))) {
    const text = item.trim();
    if (text === "") continue;
    const parts = text.split("/");
    const [ns, name] = parts.length === 1 ? [defaultNamespace, parts[0]!] : parts.length === 2 ? [parts[0]!, parts[1]!] : ["", ""];
    if (!DNS_LABEL.test(ns) || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) return { kind: "invalid", message: `--pods: "${text}" is not NAMESPACE/POD or POD` };
    const key = `${ns}/${name}`;
    if (!out.includes(key)) out.push(key);
  }
  if (out.length === 0) return { kind: "invalid", message: "--pods: no pod named" };
  return { kind: "ok", value: out };
}

/** The command line, checked; nothing is read or connected here. */
export function parseProbeArgs(args: readonly string[]): Parsed<ProbeOptions> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      options: {
        pods: { type: "string", multiple: true },
        namespaces: { type: "string", multiple: true },
        port: { type: "string", multiple: true },
        expect: { type: "string" },
        verify: { type: "boolean", default: false },
        timeout: { type: "string" },
        concurrency: { type: "string" },
        output: { type: "string", short: "o" },
        namespace: { type: "string", short: "n" },
        "state-dir": { type: "string" },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    return { kind: "invalid", message: (err as Error).message };
  }
  if (positionals.length > 0) return { kind: "invalid", message: `unexpected argument "${positionals[0]}"` };
  if ((values.pods === undefined) === (values.namespaces === undefined)) return { kind: "invalid", message: "give the pods to probe: --pods NS/POD,... or --namespaces NS,... (one of them)" };
  let selection: PodSelection;
  if (values.pods !== undefined) {
    const pods = parsePodList(values.pods, values.namespace ?? "default");
    if (pods.kind === "invalid") return pods;
    selection = { kind: "pods", pods: pods.value };
  } else {
    const namespaces = [...new Set(values.namespaces!.flatMap((t) => t.split(",")).map((t) => t.trim()).filter((t) => t !== ""))];
    const bad = namespaces.find((n) => !DNS_LABEL.test(n));
    if (bad !== undefined) return { kind: "invalid", message: `--namespaces: "${bad}" is not a namespace name` };
    if (namespaces.length === 0) return { kind: "invalid", message: "--namespaces: no namespace named" };
    selection = { kind: "namespaces", namespaces };
  }
  const ports: ProbePort[] = [];
  for (const text of values.port ?? ["80/TCP"]) {
    const p = parsePortSpec(text);
    if (p.kind === "invalid") return p;
    if (!ports.some((q) => q.port === p.value.port && q.protocol === p.value.protocol)) ports.push(p.value);
  }
  const timeoutSeconds = values.timeout === undefined ? DEFAULT_TIMEOUT_SECONDS : Number(values.timeout);
  if (!(timeoutSeconds > 0 && timeoutSeconds <= MAX_TIMEOUT_SECONDS)) return { kind: "invalid", message: `--timeout: want seconds in (0, ${MAX_TIMEOUT_SECONDS}], got "${values.timeout}"` };
  const concurrency = values.concurrency === undefined ? DEFAULT_CONCURRENCY : Number(values.concurrency);
  if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= MAX_CONCURRENCY)) return { kind: "invalid", message: `--concurrency: want an integer in 1-${MAX_CONCURRENCY}, got "${values.concurrency}"` };
  if (values.output !== undefined && values.output !== "json") return { kind: "invalid", message: `--output: only json is supported, got "${values.output}"` };
  return {
    kind: "ok",
    value: { selection, ports, timeoutSeconds, concurrency, expectFile: values.expect, verify: values.verify === true, output: values.output === "json" ? "json" : "table", stateDir: values["state-dir"] },
  };
}

// ---------------------------------------------------------------------------------------------
// Pods

/** A pod to probe from and to. */
export interface ProbePod {
  /** "namespace/name", as the truth table names it. */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly nodeName: string;
  readonly ip: string;
  /** The TCP port of an agnhost netexec in the pod (UDP probes go through its /dial), if any. */
  readonly netexecHttpPort: number | undefined;
}

export type PodReading = { readonly kind: "ready"; readonly pod: ProbePod } | { readonly kind: "notReady"; readonly why: string };

/** What a probe needs of a Pod object: Running, scheduled, with an IP; its netexec HTTP port. */
export function readProbePod(obj: KubeObjectLike): PodReading {
  const rec = podRecordFrom(obj);
  const key = `${rec.namespace}/${rec.name}`;
  const phase = typeof obj.status?.phase === "string" ? obj.status.phase : "Pending";
  if (obj.metadata.deletionTimestamp) return { kind: "notReady", why: `pod ${key} is terminating` };
  if (phase !== "Running") return { kind: "notReady", why: `pod ${key} is ${phase}, not Running` };
  if (!rec.nodeName || !rec.podIp) return { kind: "notReady", why: `pod ${key} has no node or no IP yet` };
  const netexec = plan(rec.containers ?? []).apps.find((a) => a.kind === "netexecHttp");
  return { kind: "ready", pod: { key, namespace: rec.namespace, name: rec.name, nodeName: rec.nodeName, ip: rec.podIp, netexecHttpPort: netexec?.port } };
}

/** --namespaces: every Running pod of each namespace, namespaces in the order given, pods by name. */
export function podsOfNamespaces(namespaces: readonly string[], objects: readonly KubeObjectLike[]): ProbePod[] {
  const ready = objects.flatMap((o) => {
    const r = readProbePod(o);
    return r.kind === "ready" && namespaces.includes(r.pod.namespace) ? [r.pod] : [];
  });
  return ready.sort((a, b) => namespaces.indexOf(a.namespace) - namespaces.indexOf(b.namespace) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// One probe

export type Cell =
  | { readonly kind: "connected" }
  /** No connection: timed out (a drop), refused (nothing listens), no route... */
  | { readonly kind: "blocked"; readonly why: string }
  /** The probe itself could not run: no value is known for the cell. */
  | { readonly kind: "error"; readonly message: string };

/** The command run in the source pod for one cell. */
export function probeArgv(from: ProbePod, to: ProbePod, port: ProbePort, timeoutSeconds: number): Parsed<string[]> {
  if (port.protocol === "TCP") return { kind: "ok", value: ["nc", "-z", "-v", "-w", String(timeoutSeconds), to.ip, String(port.port)] };
  if (from.netexecHttpPort === undefined) return { kind: "invalid", message: `${from.key} runs no agnhost netexec: a UDP probe is sent by its netexec (/dial?protocol=udp)` };
  const query = new URLSearchParams({ request: "hostname", protocol: "udp", host: to.ip, port: String(port.port), tries: "1" });
  return { kind: "ok", value: ["curl", "-s", "-S", "-m", String(timeoutSeconds), `http://127.0.0.1:${from.netexecHttpPort}/dial?${query}`] };
}

/** The exit code and output of a probe command as a cell. */
export function classify(port: ProbePort, res: ExecResult): Cell {
  const text = `${res.stdout}${res.stderr}`.trim();
  if (port.protocol === "TCP") {
    if (res.exitCode === 0) return { kind: "connected" };
    if (res.exitCode === 1) {
      const m = /\(tcp\) (.*)$/m.exec(res.stderr);
      return { kind: "blocked", why: m ? m[1]!.replace(/^failed: /, "").toLowerCase() : "no connection" };
    }
    return { kind: "error", message: `nc exited ${res.exitCode}: ${text}` };
  }
  // curl: 28 is its -m timeout, the answer did not come back in time.
  if (res.exitCode === 28) return { kind: "blocked", why: "no answer (timed out)" };
  if (res.exitCode !== 0) return { kind: "error", message: `curl to the source pod's netexec exited ${res.exitCode}: ${text}` };
  let body: unknown;
  try {
    body = JSON.parse(res.stdout);
  } catch {
    return { kind: "error", message: `netexec /dial answered something other than JSON: ${res.stdout.slice(0, 200)}` };
  }
  const o = typeof body === "object" && body !== null ? (body as { responses?: unknown; errors?: unknown }) : {};
  if (Array.isArray(o.responses) && o.responses.length > 0) return { kind: "connected" };
  const errors = Array.isArray(o.errors) ? o.errors.filter((e): e is string => typeof e === "string") : [];
  return { kind: "blocked", why: errors[0] ?? "no answer" };
}

// ---------------------------------------------------------------------------------------------
// Matrices

export type Mark = "." | "X" | "?";

export function markOf(cell: Cell): Mark {
  return cell.kind === "connected" ? "." : cell.kind === "blocked" ? "X" : "?";
}

/** Rows are sources, columns destinations; `marks[i][j]` is froms[i] -> tos[j]. */
export interface TruthTable {
  readonly froms: readonly string[];
  readonly tos: readonly string[];
  readonly marks: readonly (readonly Mark[])[];
}

export interface ProbeResult {
  readonly port: ProbePort;
  readonly pods: readonly string[];
  /** cells[i][j]: pods[i] -> pods[j]. */
  readonly cells: readonly (readonly Cell[])[];
}

export function tableOf(r: ProbeResult): TruthTable {
  return { froms: r.pods, tos: r.pods, marks: r.cells.map((row) => row.map(markOf)) };
}

/** truthtable.go PrettyPrint(""): no trailing newline. */
export function formatTruthTable(t: TruthTable): string {
  const lines = [["-", ...t.tos].join("\t")];
  t.froms.forEach((from, i) => lines.push([from, ...t.tos.map((_, j) => t.marks[i]?.[j] ?? "?")].join("\t")));
  return lines.join("\n");
}

/** A table in an expectation file, and the port its heading names (none: every port). */
export interface ExpectedTable {
  readonly port: ProbePort | undefined;
  readonly table: TruthTable;
}

/**
 * Reads truth tables: optional "PORT/PROTOCOL" heading lines, each followed by a table (header
 * line starting with "-", then one row per source); cells separated by tabs or spaces; blank
 * lines and "#" comments ignored. A malformed file is a value, never a throw.
 */
export function parseTruthTables(text: string): Parsed<ExpectedTable[]> {
  const out: ExpectedTable[] = [];
  let heading: ProbePort | undefined;
  let current: { port: ProbePort | undefined; tos: string[]; froms: string[]; marks: Mark[][] } | undefined;
  const finish = () => {
    if (current) out.push({ port: current.port, table: { froms: current.froms, tos: current.tos, marks: current.marks } });
    current = undefined;
  };
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    const at = `line ${i + 1}`;
    if (line === "" || line.startsWith("#")) {
      finish();
      continue;
    }
    const fields = line.split(/\s+/);
    if (fields[0] === "-") {
      finish();
      if (fields.length < 2) return { kind: "invalid", message: `${at}: a table header names no destination` };
      if (new Set(fields.slice(1)).size !== fields.length - 1) return { kind: "invalid", message: `${at}: a destination is named twice` };
      current = { port: heading, tos: fields.slice(1), froms: [], marks: [] };
      heading = undefined;
      continue;
    }
    // A single word is a heading (a row has at least one cell): it may follow a table directly.
    if (current && fields.length === 1 && parsePortSpec(fields[0]!).kind === "ok") finish();
    if (!current) {
      if (fields.length !== 1) return { kind: "invalid", message: `${at}: expected a "PORT/PROTOCOL" heading or a table header ("-" then the destinations), got "${line}"` };
      const p = parsePortSpec(line);
      if (p.kind === "invalid") return { kind: "invalid", message: `${at}: ${p.message.replace(/^--port:? ?/, "")}` };
      heading = p.value;
      continue;
    }
    const [from, ...cells] = fields as [string, ...string[]];
    if (cells.length !== current.tos.length) return { kind: "invalid", message: `${at}: row ${from} has ${cells.length} cells for ${current.tos.length} destinations` };
    const bad = cells.find((c) => c !== "." && c !== "X" && c !== "?");
    if (bad !== undefined) return { kind: "invalid", message: `${at}: cell "${bad}" is not ".", "X" or "?"` };
    if (current.froms.includes(from)) return { kind: "invalid", message: `${at}: source ${from} has two rows` };
    current.froms.push(from);
    current.marks.push(cells as Mark[]);
  }
  finish();
  if (heading !== undefined) return { kind: "invalid", message: `the heading ${formatPort(heading)} has no table after it` };
  if (out.length === 0) return { kind: "invalid", message: "no truth table found" };
  const unheaded = out.filter((t) => t.port === undefined).length;
  if (unheaded > 0 && out.length > 1) return { kind: "invalid", message: "several tables: give each a PORT/PROTOCOL heading line" };
  const seen = new Set<string>();
  for (const t of out) {
    if (t.port === undefined) continue;
    if (seen.has(formatPort(t.port))) return { kind: "invalid", message: `two tables for ${formatPort(t.port)}` };
    seen.add(formatPort(t.port));
  }
  return { kind: "ok", value: out };
}

/** The table an expectation file holds for `port`: its heading's, or its only unheaded one. */
export function expectedFor(tables: readonly ExpectedTable[], port: ProbePort): TruthTable | undefined {
  return (tables.find((t) => t.port !== undefined && t.port.port === port.port && t.port.protocol === port.protocol) ?? tables.find((t) => t.port === undefined))?.table;
}

export type Difference =
  | { readonly kind: "cell"; readonly from: string; readonly to: string; readonly expected: Mark; readonly observed: Mark }
  /** A probed cell the expected table has no row or column for. */
  | { readonly kind: "unexpected"; readonly from: string; readonly to: string; readonly observed: Mark }
  /** A pod the expected table names that was not probed. */
  | { readonly kind: "notProbed"; readonly pod: string };

export interface Comparison {
  readonly correct: number;
  readonly differences: readonly Difference[];
}

/**
 * Cell by cell, as Reachability.Summary: "?" expected is not compared (upstream's unset value),
 * "?" observed (a failed probe) differs from any expectation.
 */
export function compareTables(expected: TruthTable, observed: TruthTable): Comparison {
  const differences: Difference[] = [];
  let correct = 0;
  observed.froms.forEach((from, i) => {
    const ei = expected.froms.indexOf(from);
    observed.tos.forEach((to, j) => {
      const ej = expected.tos.indexOf(to);
      const got = observed.marks[i]![j]!;
      if (ei < 0 || ej < 0) {
        differences.push({ kind: "unexpected", from, to, observed: got });
        return;
      }
      const want = expected.marks[ei]![ej]!;
      if (want === "?" || want === got) correct++;
      else differences.push({ kind: "cell", from, to, expected: want, observed: got });
    });
  });
  for (const pod of new Set([...expected.froms, ...expected.tos])) {
    if (!observed.froms.includes(pod) && !observed.tos.includes(pod)) differences.push({ kind: "notProbed", pod });
  }
  return { correct, differences };
}

const MARK_WORD: Record<Mark, string> = { ".": "connected", X: "blocked", "?": "unknown" };

export function formatDifference(d: Difference): string {
  switch (d.kind) {
    case "cell":
      return `${d.from} -> ${d.to}: expected ${d.expected}, observed ${d.observed} (expected ${MARK_WORD[d.expected]}, was ${MARK_WORD[d.observed]})`;
    case "unexpected":
      return `${d.from} -> ${d.to}: not in the expected table, observed ${d.observed}`;
    case "notProbed":
      return `${d.pod}: in the expected table but not probed`;
  }
}

/** reachability.go PrintSummary's line. */
export function formatSummary(c: Comparison): string {
  const incorrect = c.differences.length;
  return `reachability: correct:${c.correct}, incorrect:${incorrect}, result=${incorrect === 0}`;
}

/** Cell-level failures worth a line on stderr (a failed probe is not a policy verdict). */
export function probeErrors(r: ProbeResult): string[] {
  const out: string[] = [];
  r.cells.forEach((row, i) => row.forEach((c, j) => c.kind === "error" && out.push(`${formatPort(r.port)} ${r.pods[i]} -> ${r.pods[j]}: probe failed: ${c.message}`)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// --verify: each cell judged again by policy explain and by the flow records

/** What another source says of a cell: "." allowed or delivered, "X" denied or dropped, "?" nothing. */
export interface Judgement {
  readonly mark: Mark;
  readonly why: string;
  /** For a flow drop: its reason from the datapath's list (policy_denied, no_route...). */
  readonly reason?: string;
  /** For a flow drop: what decided it, as the node recorded it (a policy drop: the verdict's text). */
  readonly detail?: string;
}

export type Judge = (from: ProbePod, to: ProbePod, port: ProbePort) => Judgement;

const PROTOCOL_NUMBERS: Record<ProbeProtocol, number> = { TCP: 6, UDP: 17 };

/** The verdict `kubewire policy explain FROM TO --port P` prints, by the engine every node runs. */
export function explainJudge(engine: PolicyEngine): Judge {
  return (from, to, port) => {
    const r = engine.explain(from.key, to.key, { port: port.port, protocol: port.protocol });
    if (r.kind === "error") return { mark: "?", why: r.message };
    const v = r.explanation.verdict;
    return { mark: v.allowed ? "." : "X", why: v.describe() };
  };
}

/**
 * A cell as the nodes' flow records of the probe saw it: a packet of the connection (original
 * direction, to the destination pod's IP and port) handed to the destination pod's veth
 * ("to-endpoint") is ".", whatever else happened (a retransmitted SYN may follow a drop while a
 * policy is being applied); only drops is "X" with the first drop's reason; no record is "?".
 * `flows` are the records of the probe's window, from every node involved.
 */
export function flowJudge(flows: readonly ObservedFlow[]): Judge {
  const seen = new Map<string, { delivered: ObservedFlow | undefined; dropped: ObservedFlow | undefined }>();
  for (const f of flows) {
    if (f.isReply) continue;
    const key = `${f.src} ${f.dst} ${f.dport} ${f.proto}`;
    let e = seen.get(key);
    if (!e) seen.set(key, (e = { delivered: undefined, dropped: undefined }));
    if (f.verdict === "FORWARDED" && f.observation === "to-endpoint") e.delivered ??= f;
    else if (f.verdict === "DROPPED") e.dropped ??= f;
  }
  return (from, to, port) => {
    const e = seen.get(`${from.ip} ${to.ip} ${port.port} ${PROTOCOL_NUMBERS[port.protocol]}`);
    if (e?.delivered) return { mark: ".", why: `delivered to ${to.key} on ${e.delivered.node}` };
    if (e?.dropped) {
      const f = e.dropped;
      // The node's detail of a rule's drop starts with the reason ("policy_denied: denied (ingress): ...").
      const detail = f.detail !== undefined && f.reason !== undefined && f.detail.startsWith(`${f.reason}: `) ? f.detail.slice(f.reason.length + 2) : f.detail;
      return { mark: "X", why: `dropped on ${f.node} at ${f.where}: ${f.reason ?? "unknown"}${detail ? `: ${detail}` : ""}`, reason: f.reason, detail };
    }
    return { mark: "?", why: "no flow record of the connection" };
  };
}

export interface Disagreement {
  readonly source: "explain" | "flows";
  readonly from: string;
  readonly to: string;
  readonly probed: Mark;
  readonly said: Mark;
  readonly why: string;
}

export interface Tally {
  readonly agree: number;
  readonly compared: number;
}

export interface Verification {
  readonly explain: Tally;
  /** Undefined when the flow records could not be read (a node keeps none, or did not answer). */
  readonly flows: Tally | undefined;
  readonly disagreements: readonly Disagreement[];
}

/**
 * Every cell the probe has a value for, bar a pod reaching itself (its own loopback: no policy
 * judges it and no veth sees it, upstream's ignoreLoopback), against `explain`, and against
 * `flows` when given. A policy drop in the flows must also name what explain names: the flow's
 * detail is the very verdict text (node-agent/policy/ruleset.ts), so a difference means the node
 * enforced other state than the API holds.
 */
export function verifyResult(r: ProbeResult, pods: readonly ProbePod[], explain: Judge, flows: Judge | undefined): Verification {
  const disagreements: Disagreement[] = [];
  let ea = 0;
  let ec = 0;
  let fa = 0;
  let fc = 0;
  r.cells.forEach((row, i) =>
    row.forEach((cell, j) => {
      const probed = markOf(cell);
      if (i === j || probed === "?") return;
      const from = pods[i]!;
      const to = pods[j]!;
      const e = explain(from, to, r.port);
      ec++;
      if (e.mark === probed) ea++;
      else disagreements.push({ source: "explain", from: from.key, to: to.key, probed, said: e.mark, why: e.why });
      if (!flows) return;
      const f = flows(from, to, r.port);
      fc++;
      if (f.mark !== probed) disagreements.push({ source: "flows", from: from.key, to: to.key, probed, said: f.mark, why: f.why });
      else if (f.reason === "policy_denied" && e.mark === "X" && f.detail !== e.why) {
        disagreements.push({ source: "flows", from: from.key, to: to.key, probed, said: f.mark, why: `${f.why}, but policy explain says: ${e.why}` });
      } else fa++;
    }),
  );
  return { explain: { agree: ea, compared: ec }, flows: flows ? { agree: fa, compared: fc } : undefined, disagreements };
}

const SAID: Record<Disagreement["source"], Record<Mark, string>> = {
  explain: { ".": "allows", X: "denies", "?": "cannot judge" },
  flows: { ".": "show it delivered", X: "show it dropped", "?": "have no record" },
};

export function formatDisagreement(d: Disagreement): string {
  return `${d.from} -> ${d.to}: probed ${d.probed} (${MARK_WORD[d.probed]}), but ${d.source === "explain" ? "policy explain" : "the flows"} ${SAID[d.source][d.said]}: ${d.why}`;
}

function formatTally(name: string, t: Tally | undefined): string {
  return t === undefined ? `${name}: not checked` : `${name}: ${t.agree}/${t.compared} cells agree`;
}

export interface Report {
  /** stdout. */
  readonly text: string;
  /** stderr lines. */
  readonly warnings: readonly string[];
  readonly exitCode: number;
}

/**
 * What `kubewire probe` prints for its results and the expectation (if any), and its exit code:
 * 1 when a cell differs from the expectation or a probe failed, else 0.
 */
export function report(results: readonly ProbeResult[], expected: readonly ExpectedTable[] | undefined, output: "table" | "json", verifications?: readonly Verification[]): Report {
  const warnings = results.flatMap(probeErrors);
  const missing = expected ? results.filter((r) => expectedFor(expected, r.port) === undefined).map((r) => `the expectation has no table for ${formatPort(r.port)}`) : [];
  warnings.push(...missing);
  const comparisons = results.map((r) => {
    const want = expected && expectedFor(expected, r.port);
    return want ? compareTables(want, tableOf(r)) : undefined;
  });
  const differs = comparisons.some((c) => c !== undefined && c.differences.length > 0);
  const disagrees = verifications?.some((v) => v.disagreements.length > 0 || v.flows === undefined) ?? false;
  const exitCode = differs || disagrees || warnings.length > 0 ? 1 : 0;
  if (output === "json") {
    const json = {
      pods: results[0]?.pods ?? [],
      ports: results.map((r, k) => ({
        port: r.port.port,
        protocol: r.port.protocol,
        matrix: Object.fromEntries(r.pods.map((from, i) => [from, Object.fromEntries(r.pods.map((to, j) => [to, r.cells[i]![j]!.kind === "error" ? null : r.cells[i]![j]!.kind === "connected"]))])),
        cells: r.pods.flatMap((from, i) => r.pods.map((to, j) => ({ from, to, ...r.cells[i]![j]! }))),
        ...(comparisons[k] ? { correct: comparisons[k]!.correct, differences: comparisons[k]!.differences } : {}),
        ...(verifications?.[k] ? { verification: verifications[k] } : {}),
      })),
    };
    return { text: `${JSON.stringify(json, null, 2)}\n`, warnings, exitCode };
  }
  const blocks = results.map((r, k) => {
    const lines = [formatPort(r.port), formatTruthTable(tableOf(r))];
    const c = comparisons[k];
    if (c) {
      if (c.differences.length > 0) lines.push("", `${formatPort(r.port)}: ${c.differences.length} cell(s) differ from the expectation:`, ...c.differences.map((d) => `  ${formatDifference(d)}`));
      lines.push(formatSummary(c));
    }
    const v = verifications?.[k];
    if (v) {
      lines.push(`${formatTally("policy explain", v.explain)}; ${formatTally("flows", v.flows)} (a pod to itself is not judged)`);
      if (v.disagreements.length > 0) lines.push(`${formatPort(r.port)}: ${v.disagreements.length} cell(s) judged otherwise:`, ...v.disagreements.map((d) => `  ${formatDisagreement(d)}`));
    }
    return lines.join("\n");
  });
  return { text: `${blocks.join("\n\n")}\n`, warnings, exitCode };
}

// ---------------------------------------------------------------------------------------------
// Running the probes

/** Runs a command in a pod (the node-agent's exec verb, or a fake). */
export type PodExec = (pod: ProbePod, argv: string[], timeoutMs: number) => Promise<ExecResult>;

/** The exec RPC's own limit beyond the probe's timeout: the NATS round trip and a busy node. */
const EXEC_MARGIN_MS = 5000;

/** Every pod to every pod on each port, at most `concurrency` probes at a time over all of them. */
export async function probeMatrices(pods: readonly ProbePod[], ports: readonly ProbePort[], opts: { exec: PodExec; timeoutSeconds: number; concurrency: number }): Promise<ProbeResult[]> {
  const cells: Cell[][][] = ports.map(() => pods.map(() => pods.map((): Cell => ({ kind: "error", message: "not probed" }))));
  const jobs = ports.flatMap((port, k) => pods.flatMap((from, i) => pods.map((to, j) => ({ port, from, to, k, i, j }))));
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const { port, from, to, k, i, j } = jobs[next++]!;
      const argv = probeArgv(from, to, port, opts.timeoutSeconds);
      if (argv.kind === "invalid") {
        cells[k]![i]![j] = { kind: "error", message: argv.message };
        continue;
      }
      try {
        cells[k]![i]![j] = classify(port, await opts.exec(from, argv.value, opts.timeoutSeconds * 1000 + EXEC_MARGIN_MS));
      } catch (err) {
        cells[k]![i]![j] = { kind: "error", message: (err as Error)?.message ?? String(err) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, jobs.length) }, worker));
  return ports.map((port, k) => ({ port, pods: pods.map((p) => p.key), cells: cells[k]! }));
}

/**
 * The flow records of the probe's own packets: records since it started, of its ports, in the
 * original direction, delivered to a pod or dropped, from every node a probed pod runs on (a
 * packet is dropped on its source's node or its destination's). Undefined, with the reason
 * given to `warn`, when a node keeps no records, did not answer or had more than one reply holds.
 */
async function probeFlows(nc: NatsConnection, pods: readonly ProbePod[], ports: readonly ProbePort[], since: number, warn: (w: string) => void): Promise<ObservedFlow[] | undefined> {
  const nodes = [...new Set(pods.map((p) => p.nodeName))].sort();
  const out: ObservedFlow[] = [];
  let complete = true;
  for (const port of new Set(ports.map((p) => p.port))) {
    const req: ObserveRequest = { since, port, types: ["to-endpoint", "drop"], reply: false, limit: OBSERVE_REPLY_MAX };
    const answers = await observeNodes(nc, nodes, req, (n, message) => {
      warn(`--verify: ${n} gave no flow records: ${message}`);
      complete = false;
    });
    answers.forEach((a, i) => {
      if (a && !a.enabled) warn(`--verify: ${nodes[i]} keeps no flow records (KUBEWIRE_FLOW_BUFFER=0)`);
      if (a?.truncated) warn(`--verify: ${nodes[i]} had more than ${OBSERVE_REPLY_MAX} flow records of port ${port} (probe fewer pods or ports at once)`);
      if (!a || !a.enabled || a.truncated) complete = false;
      else out.push(...a.flows);
    });
  }
  return complete ? out : undefined;
}

export interface ProbeContext {
  readonly kube: KubeClient;
  readonly nc: NatsConnection;
  /** Where output goes; process.stdout and process.stderr by default. */
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
}

/**
 * What cli/main.ts does before it connects, so that --help and a usage error need no cluster:
 * either the command ends here (help or usage printed) with an exit code, or it connects (to
 * the cluster of --state-dir) and runs `probe`.
 */
export function probePreflight(args: readonly string[], out: Pick<ProbeContext, "stdout" | "stderr"> = {}): { kind: "exit"; code: number } | { kind: "connect"; stateDir: string | undefined } {
  const { stdout, stderr } = writers(out);
  if (args.includes("--help") || args.includes("-h")) {
    stdout(`${PROBE_USAGE}\n`);
    return { kind: "exit", code: 0 };
  }
  const parsed = parseProbeArgs(args);
  if (parsed.kind === "invalid") {
    stderr(`error: probe: ${parsed.message}\n${PROBE_USAGE}\n`);
    return { kind: "exit", code: 2 };
  }
  return { kind: "connect", stateDir: parsed.value.stateDir };
}

/**
 * `kubewire probe ARGS` against a connected cluster; the exit code: 0 all as expected, 1 a
 * difference or a failed probe, 2 a usage error (printed, not thrown).
 */
export async function probe(args: string[], ctx: ProbeContext): Promise<number> {
  const { stdout, stderr, flushed } = writers(ctx);
  const code = await run(args, ctx, stdout, stderr);
  await flushed();
  return code;
}

async function run(args: string[], ctx: ProbeContext, stdout: (t: string) => void, stderr: (t: string) => void): Promise<number> {
  const fail = (message: string, code: number) => {
    stderr(`error: ${message}\n`);
    return code;
  };
  const pre = probePreflight(args, { stdout, stderr });
  if (pre.kind === "exit") return pre.code;
  const parsed = parseProbeArgs(args);
  if (parsed.kind === "invalid") return fail(parsed.message, 2);
  const opts = parsed.value;
  let expected: ExpectedTable[] | undefined;
  if (opts.expectFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(opts.expectFile, "utf8");
    } catch (err) {
      return fail(`--expect: cannot read ${opts.expectFile}: ${(err as Error).message}`, 2);
    }
    const tables = parseTruthTables(text);
    if (tables.kind === "invalid") return fail(`--expect ${opts.expectFile}: ${tables.message}`, 2);
    expected = tables.value;
  }

  let pods: ProbePod[];
  if (opts.selection.kind === "namespaces") {
    const lists = await Promise.all(opts.selection.namespaces.map((ns) => ctx.kube.list(paths.pods(ns))));
    pods = podsOfNamespaces(opts.selection.namespaces, lists.flat());
    if (pods.length === 0) return fail(`no Running pod in namespace(s) ${opts.selection.namespaces.join(", ")}`, 1);
  } else {
    const readings = await Promise.all(
      opts.selection.pods.map(async (key): Promise<PodReading> => {
        const [ns, name] = key.split("/") as [string, string];
        const obj = await ctx.kube.get(paths.pod(ns, name)).catch((err: unknown) => {
          if (err instanceof KubeApiError && err.code === 404) return undefined;
          throw err;
        });
        return obj ? readProbePod(obj) : { kind: "notReady", why: `pod ${key} not found` };
      }),
    );
    const notReady = readings.flatMap((r) => (r.kind === "notReady" ? [r.why] : []));
    if (notReady.length > 0) return fail(notReady.join("; "), 1);
    pods = readings.map((r) => (r as { pod: ProbePod }).pod);
  }
  const noNetexec = opts.ports.some((p) => p.protocol === "UDP") ? pods.filter((p) => p.netexecHttpPort === undefined).map((p) => p.key) : [];
  if (noNetexec.length > 0) return fail(`UDP probes are sent by agnhost netexec in the source pod (its /dial?protocol=udp); ${noNetexec.join(", ")} run(s) none`, 2);

  const exec: PodExec = (pod, argv, timeoutMs) =>
    request<ExecResult>(ctx.nc, Subjects.node(pod.nodeName, "exec"), { namespace: pod.namespace, pod: pod.name, argv } satisfies ExecRequest, timeoutMs);
  const started = Date.now();
  const results = await probeMatrices(pods, opts.ports, { exec, timeoutSeconds: opts.timeoutSeconds, concurrency: opts.concurrency });
  let verifications: Verification[] | undefined;
  if (opts.verify) {
    const engine = await policyEngineOf(ctx.kube);
    const flows = await probeFlows(ctx.nc, pods, opts.ports, started, (w) => stderr(`${w}\n`));
    const explain = explainJudge(engine);
    const judgeFlows = flows && flowJudge(flows);
    verifications = results.map((r) => verifyResult(r, pods, explain, judgeFlows));
  }
  const out = report(results, expected, opts.output, verifications);
  stdout(out.text);
  for (const w of out.warnings) stderr(`${w}\n`);
  return out.exitCode;
}
