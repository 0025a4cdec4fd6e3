/**
 * `kubewire load`'s command line and thresholds, checked without touching the cluster (pure; unit
 * tested in test/unit/load/args.test.ts).
 *
 * Threshold grammar (one per --threshold; k6's idea of a pass/fail criterion on a metric):
 *
 *   THRESHOLD := METRIC OP VALUE
 *   OP        := "<" | "<=" | ">" | ">=" | "=="
 *   METRIC    := p50 | p90 | p99 | p99.9 | max | mean           latency (k6's p(99) spelling works too)
 *              | connect_p50 | connect_p99 | connect_max      connection time
 *                 VALUE: a number with unit us, ms or s (ms when none): p99<50ms, max<=1s
 *              | errors      failed requests / requests sent; VALUE a fraction or percent: errors<1%, errors==0
 *              | rate        requests sent / requests intended (open loop only): rate>=0.95, rate>=95%
 *              | rps         requests answered per second: rps>=1000
 *              | throughput  bytes per second, both directions; VALUE with B, kB, MB, GB, KiB, MiB or GiB: throughput>=10MB
 *
 * Every threshold is judged on the whole run (all clients, all node pairs); any that fails makes
 * the exit code 99, as k6's does when thresholds fail.
 */
import { parseArgs } from "node:util";
import type { LoadScenario } from "../cluster/types.ts";
import { parseDuration as parseGoDuration } from "../cluster/syntax.ts";
import { MAX_HTTP_RESPONSE_BYTES, MAX_RESPONSE_BYTES, MAX_UDP_BYTES, minRequestBytes } from "../node-agent/load/protocol.ts";

export type Parsed<T> = { readonly kind: "ok"; readonly value: T } | { readonly kind: "invalid"; readonly message: string };

export const THRESHOLD_METRICS = ["p50", "p90", "p99", "p99.9", "max", "mean", "connect_p50", "connect_p99", "connect_max", "errors", "rate", "rps", "throughput"] as const;
export type ThresholdMetric = (typeof THRESHOLD_METRICS)[number];
export type ThresholdOp = "<" | "<=" | ">" | ">=" | "==";

export interface Threshold {
  /** As the user wrote it. */
  readonly text: string;
  readonly metric: ThresholdMetric;
  readonly op: ThresholdOp;
  /** In the metric's base unit: ms for latencies, a fraction for errors and rate, per second for rps, bytes/s for throughput. */
  readonly value: number;
}

export type LoadTarget =
  | { readonly kind: "pod"; readonly names: readonly string[] }
  | { readonly kind: "pods"; readonly selector: string }
  | { readonly kind: "svc"; readonly name: string }
  | { readonly kind: "nodeport"; readonly name: string }
  /** The Service's LoadBalancer ingress address, from the host, as a client outside the cluster. */
  | { readonly kind: "lb"; readonly name: string };

export type ClientChoice = { readonly kind: "create" } | { readonly kind: "selector"; readonly selector: string };

export interface LoadOptions {
  readonly target: LoadTarget;
  readonly scenario: LoadScenario;
  /** The target port (a pod's) or the Service port (number or name); undefined: the scenario's default. */
  readonly port: string | undefined;
  /** Requests/s over the whole run; 0: closed loop at the maximum rate. */
  readonly rate: number;
  /** All clients' connections together; undefined: 4 per client. */
  readonly connections: number | undefined;
  readonly durationMs: number;
  readonly timeoutMs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  /** Keep-alive (default); false: a new connection for every request (k6's noConnectionReuse). */
  readonly reuse: boolean;
  readonly clients: ClientChoice;
  readonly thresholds: readonly Threshold[];
  readonly output: "text" | "json";
  readonly namespace: string;
  readonly stateDir: string | undefined;
}

export const LOAD_USAGE = `usage: kubewire load TARGET [--scenario http|tcp-rr|tcp-stream|udp-rr] [--port P]
                     [--rate R] [--connections N] [--duration 10s] [--timeout 5s]
                     [--request-bytes B] [--response-bytes B] [--no-reuse] [--clients SELECTOR]
                     [--threshold EXPR]... [-o json] [-n NS]

  Load from inside pods on every node (or from the host for nodeport/ and lb/), then a report: achieved
  vs intended rate, requests/s and bytes/s, latency percentiles (HdrHistogram), connection time,
  errors by kind, and all of it per node pair (client node -> server node).
  TARGET: pod/NAME[,NAME...] | pods/SELECTOR (pod to pod) | svc/NAME (its ClusterIP) |
          nodeport/NAME (real sockets from this host to every node's NodePort) |
          lb/NAME (from this host to the Service's LoadBalancer address)
  --scenario: http (default: GET /echo of agnhost netexec, keep-alive), tcp-rr (netperf TCP_RR),
              tcp-stream (TCP_STREAM, throughput), udp-rr (UDP_RR); the rr and stream scenarios
              start their own server in the target pods on the port for the run's length
  --rate R: open loop at R requests/s in total, latency from each request's intended send time
            (corrected for coordinated omission, as wrk2); 0 (default): closed loop at the maximum
  --connections N: in total over the clients (default 4 per client)
  --no-reuse: a new connection for every request (http, tcp-rr), so each is load-balanced afresh
              (k6's noConnectionReuse); default: keep-alive
  --clients SELECTOR: run in these existing pods (-n NS); default: a client pod is created on
                      every Ready node for the run and deleted after
  --threshold EXPR: p50|p90|p99|p99.9|max|mean|connect_p99... <|<=|>|>=|== VALUE[us|ms|s],
                    errors<1%, rate>=0.95, rps>=1000, throughput>=10MB; any failing: exit code 99`;

const DEFAULT_PORTS: Record<LoadScenario, number> = { http: 8080, "tcp-rr": 5201, "tcp-stream": 5201, "udp-rr": 5201 };
export function defaultPort(scenario: LoadScenario): number {
  return DEFAULT_PORTS[scenario];
}

const DEFAULT_SIZES: Record<LoadScenario, [number, number]> = { http: [0, 16], "tcp-rr": [64, 64], "tcp-stream": [64 * 1024, 0], "udp-rr": [64, 64] };

/** "10s", "500ms", "1m30s" (a Go duration), or a bare number of seconds ("1.5", as wrk's -d) -> ms. */
export function parseDuration(text: string): number | undefined {
  return /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) * 1000 : parseGoDuration(text);
}

const LATENCY_UNITS: Record<string, number> = { us: 0.001, µs: 0.001, ms: 1, s: 1000 };
const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

export function parseThreshold(text: string): Parsed<Threshold> {
  const m = /^\s*([a-z_]+(?:\d+(?:\.\d+)?|\(\d+(?:\.\d+)?\))?)\s*(<=|>=|==|<|>)\s*(\d+(?:\.\d+)?)\s*([a-zA-Zµ%]*)\s*(?:\/s)?\s*$/.exec(text);
  if (!m) return { kind: "invalid", message: `--threshold "${text}": want METRIC OP VALUE, e.g. p99<50ms, errors<1%, rate>=0.95` };
  // k6 spells percentiles p(99): accept it.
  const metric = m[1]!.replace(/^p\((\d+(?:\.\d+)?)\)$/, "p$1");
  if (!(THRESHOLD_METRICS as readonly string[]).includes(metric)) return { kind: "invalid", message: `--threshold "${text}": unknown metric "${m[1]}" (${THRESHOLD_METRICS.join(", ")})` };
  const op = m[2] as ThresholdOp;
  const n = Number(m[3]);
  const unit = m[4]!;
  const bad = (want: string): Parsed<Threshold> => ({ kind: "invalid", message: `--threshold "${text}": ${metric} takes ${want}, not "${unit}"` });
  let value: number;
  const t = metric as ThresholdMetric;
  if (t === "errors" || t === "rate") {
    if (unit === "%") value = n / 100;
    else if (unit === "") value = n;
    else return bad("a fraction or a percentage");
    if (value > 1) return { kind: "invalid", message: `--threshold "${text}": ${metric} is a share, at most 1 (100%)` };
  } else if (t === "rps") {
    if (unit !== "") return bad("a plain number (requests/s)");
    value = n;
  } else if (t === "throughput") {
    const f = BYTE_UNITS[unit.toLowerCase() || "b"];
    if (f === undefined || (unit !== "" && !/^(B|[kMG]B|[KMG]iB)$/i.test(unit))) return bad("bytes/s with B, kB, MB, GB, KiB, MiB or GiB");
    value = n * f;
  } else {
    const f = LATENCY_UNITS[unit || "ms"];
    if (f === undefined) return bad("a time in us, ms or s");
    value = n * f;
  }
  return { kind: "ok", value: { text: text.trim(), metric: t, op, value } };
}

export function compare(op: ThresholdOp, a: number, b: number): boolean {
  switch (op) {
    case "<":
      return a < b;
    case "<=":
      return a <= b;
    case ">":
      return a > b;
    case ">=":
      return a >= b;
    case "==":
      return a === b;
  }
}

const SCENARIOS: readonly LoadScenario[] = ["http", "tcp-rr", "tcp-stream", "udp-rr"];
const LABEL_SELECTOR = /^[A-Za-z0-9._\/-]+(\s*(=|==|!=)\s*[A-Za-z0-9._-]*)?(\s*,\s*[A-Za-z0-9._\/-]+(\s*(=|==|!=)\s*[A-Za-z0-9._-]*)?)*$/;
const POD_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function parseTarget(text: string): Parsed<LoadTarget> {
  const slash = text.indexOf("/");
  const kind = slash < 0 ? "" : text.slice(0, slash);
  const rest = slash < 0 ? "" : text.slice(slash + 1);
  const bad = (why: string): Parsed<LoadTarget> => ({ kind: "invalid", message: `target "${text}": ${why}` });
  switch (kind) {
    case "pod": {
      const names = rest.split(",").map((s) => s.trim()).filter((s) => s !== "");
      if (names.length === 0 || names.some((n) => !POD_NAME.test(n))) return bad("want pod/NAME[,NAME...]");
      return { kind: "ok", value: { kind: "pod", names: [...new Set(names)] } };
    }
    case "pods":
      if (!LABEL_SELECTOR.test(rest)) return bad("want pods/SELECTOR, a label selector such as app=web");
      return { kind: "ok", value: { kind: "pods", selector: rest.replace(/\s+/g, "") } };
    case "svc":
    case "service":
    case "nodeport":
    case "lb":
      if (!DNS_LABEL.test(rest)) return bad(`want ${kind}/NAME with a Service name`);
      return { kind: "ok", value: kind === "nodeport" ? { kind: "nodeport", name: rest } : kind === "lb" ? { kind: "lb", name: rest } : { kind: "svc", name: rest } };
    default:
      return bad("want pod/NAME, pods/SELECTOR, svc/NAME, nodeport/NAME or lb/NAME");
  }
}

/** The command line, checked; nothing is read or connected here. */
export function parseLoadArgs(args: readonly string[]): Parsed<LoadOptions> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      options: {
        scenario: { type: "string" },
        port: { type: "string", short: "p" },
        rate: { type: "string", short: "r" },
        connections: { type: "string", short: "c" },
        duration: { type: "string", short: "d" },
        timeout: { type: "string" },
        "request-bytes": { type: "string" },
        "response-bytes": { type: "string" },
        clients: { type: "string" },
        "no-reuse": { type: "boolean", default: false },
        threshold: { type: "string", multiple: true },
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
  if (positionals.length !== 1) return { kind: "invalid", message: positionals.length === 0 ? "a TARGET is required (pod/NAME, pods/SELECTOR, svc/NAME, nodeport/NAME or lb/NAME)" : `unexpected argument "${positionals[1]}"` };
  const target = parseTarget(positionals[0]!);
  if (target.kind === "invalid") return target;
  const scenario = (values.scenario ?? "http") as LoadScenario;
  if (!SCENARIOS.includes(scenario)) return { kind: "invalid", message: `--scenario: want ${SCENARIOS.join(", ")}, got "${values.scenario}"` };
  if (values.port !== undefined && !/^(\d{1,5}|[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?)$/.test(values.port)) return { kind: "invalid", message: `--port: want a port number or a Service port name, got "${values.port}"` };
  if (values.port !== undefined && /^\d+$/.test(values.port) && !(Number(values.port) >= 1 && Number(values.port) <= 65535)) return { kind: "invalid", message: `--port: want 1-65535, got "${values.port}"` };
  if ((target.value.kind === "pod" || target.value.kind === "pods") && values.port !== undefined && !/^\d+$/.test(values.port)) return { kind: "invalid", message: "--port: a pod target takes a port number" };
  const rate = values.rate === undefined ? 0 : Number(values.rate);
  if (!(Number.isFinite(rate) && rate >= 0 && rate <= 1_000_000)) return { kind: "invalid", message: `--rate: want requests/s in [0, 1000000] (0: closed loop at the maximum), got "${values.rate}"` };
  if (scenario === "tcp-stream" && rate > 0) return { kind: "invalid", message: "--rate: tcp-stream always runs at the maximum (it has no requests to pace)" };
  const connections = values.connections === undefined ? undefined : Number(values.connections);
  if (connections !== undefined && !(Number.isInteger(connections) && connections >= 1 && connections <= 10_000)) return { kind: "invalid", message: `--connections: want an integer in 1-10000, got "${values.connections}"` };
  const durationMs = parseDuration(values.duration ?? "10s");
  if (durationMs === undefined || !(durationMs >= 100 && durationMs <= 3_600_000)) return { kind: "invalid", message: `--duration: want a time from 100ms to 1h (10s, 500ms, 2m), got "${values.duration}"` };
  const timeoutMs = parseDuration(values.timeout ?? "5s");
  if (timeoutMs === undefined || !(timeoutMs >= 1 && timeoutMs <= 600_000)) return { kind: "invalid", message: `--timeout: want a time up to 10m (5s, 500ms), got "${values.timeout}"` };
  const [defReq, defRes] = DEFAULT_SIZES[scenario];
  const max = scenario === "udp-rr" ? MAX_UDP_BYTES : scenario === "http" ? MAX_HTTP_RESPONSE_BYTES : MAX_RESPONSE_BYTES;
  const bytes = (name: string, text: string | undefined, fallback: number): number | string => {
    if (text === undefined) return fallback;
    const n = Number(text);
    return Number.isInteger(n) && n >= 0 && n <= (name === "request" && scenario === "http" ? 65_536 : max) ? n : `--${name}-bytes: want an integer in 0-${name === "request" && scenario === "http" ? 65_536 : max}, got "${text}"`;
  };
  const responseBytes = bytes("response", values["response-bytes"], defRes);
  if (typeof responseBytes === "string") return { kind: "invalid", message: responseBytes };
  const requestBytes = bytes("request", values["request-bytes"], defReq);
  if (typeof requestBytes === "string") return { kind: "invalid", message: requestBytes };
  if (scenario === "tcp-rr" && responseBytes < 1) return { kind: "invalid", message: "--response-bytes: tcp-rr answers at least 1 byte" };
  if (values["no-reuse"] && (scenario === "tcp-stream" || scenario === "udp-rr")) return { kind: "invalid", message: `--no-reuse: a ${scenario} run has no requests to put on connections of their own` };
  if (scenario === "tcp-stream" && values["response-bytes"] !== undefined) return { kind: "invalid", message: "--response-bytes: tcp-stream sends one way (--request-bytes is the write size)" };
  const clients: ClientChoice = values.clients === undefined ? { kind: "create" } : { kind: "selector", selector: values.clients.replace(/\s+/g, "") };
  if (clients.kind === "selector" && !LABEL_SELECTOR.test(clients.selector)) return { kind: "invalid", message: `--clients: want a label selector such as app=client, got "${values.clients}"` };
  if (clients.kind === "selector" && (target.value.kind === "nodeport" || target.value.kind === "lb")) return { kind: "invalid", message: `--clients: a ${target.value.kind}/ run's client is this host (real sockets), not pods` };
  const thresholds: Threshold[] = [];
  for (const t of values.threshold ?? []) {
    const p = parseThreshold(t);
    if (p.kind === "invalid") return p;
    if (p.value.metric === "rate" && rate === 0) return { kind: "invalid", message: `--threshold "${t}": a closed loop (--rate 0) has no intended rate to reach` };
    thresholds.push(p.value);
  }
  if (values.output !== undefined && values.output !== "json") return { kind: "invalid", message: `--output: only json is supported, got "${values.output}"` };
  return {
    kind: "ok",
    value: {
      target: target.value,
      scenario,
      port: values.port,
      rate,
      connections,
      durationMs,
      timeoutMs,
      requestBytes: Math.max(requestBytes, scenario === "http" ? 0 : minRequestBytes(scenario, responseBytes)),
      responseBytes,
      reuse: values["no-reuse"] !== true,
      clients,
      thresholds,
      output: values.output === "json" ? "json" : "text",
      namespace: values.namespace ?? "default",
      stateDir: values["state-dir"],
    },
  };
}

/**
 * How a run's connections and rate are shared by its clients: connections as evenly as they go,
 * the rate in proportion, and each client's connections start at its own place in the target
 * list so that, over all clients, connections spread round-robin over the targets.
 */
export function splitLoad(clients: number, connections: number, rate: number, targets: number): { connections: number; rate: number; targetOffset: number }[] {
  const out: { connections: number; rate: number; targetOffset: number }[] = [];
  let offset = 0;
  for (let i = 0; i < clients; i++) {
    const c = Math.floor(connections / clients) + (i < connections % clients ? 1 : 0);
    out.push({ connections: c, rate: connections > 0 ? (rate * c) / connections : 0, targetOffset: targets > 0 ? offset % targets : 0 });
    offset += c;
  }
  return out;
}
