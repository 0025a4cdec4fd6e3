/**
 * `kubewire load`'s results: the clients' final snapshots merged into one report (histograms
 * added exactly, never percentiles averaged), judged by the thresholds, printed as text or JSON;
 * and the progress line fed by the interval snapshots. Pure: time comes in as parameters (unit
 * tested in test/unit/load/report.test.ts).
 */
import type { Histogram } from "hdr-histogram-js";
import type { LoadScenario, LoadSnapshot } from "../cluster/types.ts";
import { decodeHistogram, newHistogram } from "../node-agent/load/stats.ts";
import { compare, type Threshold, type ThresholdMetric } from "./load-args.ts";

export interface LatencySummary {
  /** Milliseconds. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly "p99.9": number;
  readonly max: number;
  readonly mean: number;
  readonly count: number;
}

export function summarize(h: Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000;
  if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, "p99.9": 0, max: 0, mean: 0, count: 0 };
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    "p99.9": ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
    count: h.totalCount,
  };
}

export interface PairReport {
  readonly client: string;
  readonly server: string;
  readonly requests: number;
  readonly errors: number;
  readonly errorsByKind: Readonly<Record<string, number>>;
  readonly rps: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly latency: LatencySummary;
  readonly connect: LatencySummary;
}

export interface ThresholdResult {
  readonly threshold: string;
  readonly metric: ThresholdMetric;
  readonly actual: number;
  readonly ok: boolean;
}

export interface LoadReport {
  readonly scenario: LoadScenario;
  readonly target: string;
  readonly mode: "open" | "closed";
  /** Requests/s intended over the whole run (open loop), else 0. */
  readonly intendedRate: number;
  readonly durationSeconds: number;
  readonly clients: readonly { readonly worker: string; readonly node: string }[];
  readonly connections: number;
  /** Requests due within the run (open loop; the sent count in a closed loop), sent, answered, failed. */
  readonly intended: number;
  readonly sent: number;
  readonly requests: number;
  readonly errors: number;
  readonly errorsByKind: Readonly<Record<string, number>>;
  /** Sent per second; answered per second. */
  readonly achievedRate: number;
  readonly rps: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Bytes per second, each way. */
  readonly sentPerSecond: number;
  readonly receivedPerSecond: number;
  readonly latency: LatencySummary;
  readonly connect: LatencySummary;
  readonly pairs: readonly PairReport[];
  readonly thresholds: readonly ThresholdResult[];
  /** Clients that sent no final result, or whose result could not be read. */
  readonly problems: readonly string[];
}

export interface ReportInput {
  readonly scenario: LoadScenario;
  readonly target: string;
  readonly rate: number;
  readonly durationMs: number;
  readonly connections: number;
  /** Every client started, by worker name, with its node. */
  readonly clients: readonly { readonly worker: string; readonly node: string }[];
  readonly finals: readonly LoadSnapshot[];
  /** The node an endpoint address belongs to (a pod IP, a node's host address), or a label for it. */
  readonly serverOf: (endpoint: string) => string;
  readonly thresholds: readonly Threshold[];
}

export function buildReport(input: ReportInput): LoadReport {
  const problems: string[] = [];
  const byWorker = new Map(input.finals.map((f) => [f.worker, f]));
  for (const c of input.clients) {
    const f = byWorker.get(c.worker);
    if (!f) problems.push(`client ${c.worker} on ${c.node} sent no result`);
    else if (f.error) problems.push(`client ${c.worker} on ${c.node} could not run: ${f.error}`);
  }
  const latency = newHistogram();
  const connect = newHistogram();
  const pairs = new Map<string, { client: string; server: string; requests: number; bytesSent: number; bytesReceived: number; errors: Map<string, number>; latency: Histogram; connect: Histogram }>();
  const errorsByKind = new Map<string, number>();
  let intended = 0;
  let sent = 0;
  let requests = 0;
  let bytesSent = 0;
  let bytesReceived = 0;
  let elapsed = 0;
  for (const f of input.finals) {
    intended += f.intended;
    sent += f.sent;
    elapsed = Math.max(elapsed, f.elapsedMs);
    for (const e of f.endpoints ?? []) {
      const server = input.serverOf(e.endpoint);
      const key = `${f.node}\u0000${server}`;
      let p = pairs.get(key);
      if (!p) pairs.set(key, (p = { client: f.node, server, requests: 0, bytesSent: 0, bytesReceived: 0, errors: new Map(), latency: newHistogram(), connect: newHistogram() }));
      p.requests += e.requests;
      p.bytesSent += e.bytesSent;
      p.bytesReceived += e.bytesReceived;
      requests += e.requests;
      bytesSent += e.bytesSent;
      bytesReceived += e.bytesReceived;
      for (const [kind, n] of Object.entries(e.errors)) {
        if (typeof n !== "number") continue;
        p.errors.set(kind, (p.errors.get(kind) ?? 0) + n);
        errorsByKind.set(kind, (errorsByKind.get(kind) ?? 0) + n);
      }
      for (const [text, into, alsoInto] of [[e.latency, p.latency, latency], [e.connectLatency, p.connect, connect]] as const) {
        const h = decodeHistogram(text);
        if (!h) {
          problems.push(`client ${f.worker}: a histogram that does not decode`);
          continue;
        }
        into.add(h);
        alsoInto.add(h);
      }
    }
  }
  const errors = [...errorsByKind.values()].reduce((a, b) => a + b, 0);
  // Rates over the run's window: its duration, or less when it was stopped early.
  const seconds = Math.max(0.001, Math.min(input.durationMs, elapsed || input.durationMs) / 1000);
  const mode = input.rate > 0 ? "open" : "closed";
  const sorted = [...pairs.values()].sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : a.server < b.server ? -1 : a.server > b.server ? 1 : 0));
  const base = {
    scenario: input.scenario,
    target: input.target,
    mode,
    intendedRate: mode === "open" ? input.rate : 0,
    durationSeconds: seconds,
    clients: input.clients,
    connections: input.connections,
    intended: mode === "open" ? intended : sent,
    sent,
    requests,
    errors,
    errorsByKind: Object.fromEntries([...errorsByKind].sort((a, b) => b[1] - a[1])),
    achievedRate: sent / seconds,
    rps: requests / seconds,
    bytesSent,
    bytesReceived,
    sentPerSecond: bytesSent / seconds,
    receivedPerSecond: bytesReceived / seconds,
    latency: summarize(latency),
    connect: summarize(connect),
    pairs: sorted.map((p) => ({
      client: p.client,
      server: p.server,
      requests: p.requests,
      errors: [...p.errors.values()].reduce((a, b) => a + b, 0),
      errorsByKind: Object.fromEntries(p.errors),
      rps: p.requests / seconds,
      bytesSent: p.bytesSent,
      bytesReceived: p.bytesReceived,
      latency: summarize(p.latency),
      connect: summarize(p.connect),
    })),
    problems,
  } as const;
  return { ...base, thresholds: input.thresholds.map((t) => judge(t, base)) };
}

/** A metric's value in the threshold's base unit (see load-args.ts). */
export function metricOf(metric: ThresholdMetric, r: Omit<LoadReport, "thresholds">): number {
  switch (metric) {
    case "errors":
      return r.sent > 0 ? r.errors / r.sent : 0;
    case "rate":
      return r.intended > 0 ? r.sent / r.intended : 0;
    case "rps":
      return r.rps;
    case "throughput":
      return r.sentPerSecond + r.receivedPerSecond;
    case "connect_p50":
      return r.connect.p50;
    case "connect_p99":
      return r.connect.p99;
    case "connect_max":
      return r.connect.max;
    default:
      return r.latency[metric];
  }
}

function judge(t: Threshold, r: Omit<LoadReport, "thresholds">): ThresholdResult {
  const actual = metricOf(t.metric, r);
  return { threshold: t.text, metric: t.metric, actual, ok: compare(t.op, actual, t.value) };
}

/** 0: ran and every threshold held; 99: a threshold failed (k6's code); 1: a client gave no result. */
export function exitCodeOf(r: LoadReport): number {
  if (r.thresholds.some((t) => !t.ok)) return 99;
  return r.problems.length > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Text

const num = (n: number, digits = 0) => n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

function formatMetric(metric: ThresholdMetric, v: number): string {
  if (metric === "errors" || metric === "rate") return `${(v * 100).toFixed(2)}%`;
  if (metric === "rps") return `${num(v, 1)}/s`;
  if (metric === "throughput") return `${formatBytes(v)}/s`;
  return formatMs(v);
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd());
}

const SCENARIO_TEXT: Record<LoadScenario, string> = {
  http: "HTTP GET /echo (agnhost netexec), keep-alive",
  "tcp-rr": "TCP request/response (netperf TCP_RR)",
  "tcp-stream": "TCP stream (netperf TCP_STREAM)",
  "udp-rr": "UDP request/response (netperf UDP_RR)",
};

export function formatReport(r: LoadReport): string {
  const lines: string[] = [];
  const stream = r.scenario === "tcp-stream";
  lines.push(`kubewire load: ${SCENARIO_TEXT[r.scenario]} to ${r.target}`);
  lines.push(`${r.clients.length} client(s) on ${[...new Set(r.clients.map((c) => c.node))].join(", ")}, ${r.connections} connection(s), ${r.durationSeconds.toFixed(1)} s`);
  lines.push(
    r.mode === "open"
      ? `open loop at ${num(r.intendedRate, 1)} req/s: latency from each request's intended send time (corrected for coordinated omission)`
      : stream
        ? "as fast as the connections take bytes"
        : "closed loop at the maximum rate: latency from each request's send time",
  );
  lines.push("");
  if (!stream) {
    const share = r.intended > 0 ? ` (${((r.sent / r.intended) * 100).toFixed(1)}%)` : "";
    lines.push(`requests     ${num(r.sent)} sent, ${num(r.requests)} answered, ${num(r.errors)} failed`);
    lines.push(r.mode === "open" ? `rate         ${num(r.achievedRate, 1)} req/s sent of ${num(r.intendedRate, 1)} intended${share}; ${num(r.intended - r.sent)} due but not sent` : `rate         ${num(r.achievedRate, 1)} req/s sent`);
    lines.push(`throughput   ${num(r.rps, 1)} req/s answered; ${formatBytes(r.sentPerSecond)}/s sent, ${formatBytes(r.receivedPerSecond)}/s received`);
    const l = r.latency;
    lines.push(l.count > 0 ? `latency      p50 ${formatMs(l.p50)}  p90 ${formatMs(l.p90)}  p99 ${formatMs(l.p99)}  p99.9 ${formatMs(l["p99.9"])}  max ${formatMs(l.max)}  (${num(l.count)} answers)` : "latency      no answers");
  } else {
    lines.push(`throughput   ${formatBytes(r.sentPerSecond)}/s (${((r.sentPerSecond * 8) / 1e6).toFixed(1)} Mbit/s) over ${num(r.sent)} connection(s), ${formatBytes(r.bytesSent)} in all`);
  }
  const c = r.connect;
  lines.push(c.count > 0 ? `connect      p50 ${formatMs(c.p50)}  p99 ${formatMs(c.p99)}  max ${formatMs(c.max)}  (${num(c.count)} connections opened)` : r.scenario === "udp-rr" ? "connect      none (UDP)" : "connect      no connection opened");
  const kinds = Object.entries(r.errorsByKind);
  lines.push(`errors       ${kinds.length === 0 ? "none" : kinds.map(([k, n]) => `${k} ${num(n)}`).join(", ")}`);
  if (r.pairs.length > 0) {
    lines.push("");
    const head = stream ? ["CLIENT NODE", "SERVER", "BYTES/S", "ERRORS"] : ["CLIENT NODE", "SERVER", "ANSWERED", "REQ/S", "P50", "P90", "P99", "P99.9", "MAX", "ERRORS"];
    const rows = r.pairs.map((p) => {
      const err = p.errors === 0 ? "0" : `${p.errors} (${Object.entries(p.errorsByKind).map(([k, n]) => `${k} ${n}`).join(", ")})`;
      if (stream) return [p.client, `-> ${p.server}`, `${formatBytes(p.bytesSent / r.durationSeconds)}/s`, err];
      const l = p.latency;
      return [p.client, `-> ${p.server}`, num(p.requests), num(p.rps, 1), ...(l.count > 0 ? [formatMs(l.p50), formatMs(l.p90), formatMs(l.p99), formatMs(l["p99.9"]), formatMs(l.max)] : ["-", "-", "-", "-", "-"]), err];
    });
    lines.push(...table([head, ...rows]));
  }
  if (r.thresholds.length > 0) {
    lines.push("", "thresholds");
    for (const t of r.thresholds) lines.push(`  ${t.ok ? "ok  " : "FAIL"}  ${t.threshold}  (${t.metric} = ${formatMetric(t.metric, t.actual)})`);
  }
  for (const p of r.problems) lines.push(`warning: ${p}`);
  return `${lines.join("\n")}\n`;
}

export function formatJson(r: LoadReport): string {
  return `${JSON.stringify({ ...r, exitCode: exitCodeOf(r) }, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------
// Progress

/**
 * The live view of a run from the clients' interval snapshots: requests and errors so far, and
 * the rate and p99 of the newest interval (the clients' interval histograms of one sequence
 * number added).
 */
export class Progress {
  private readonly latest = new Map<string, LoadSnapshot>();
  private readonly intervals = new Map<number, { workers: Set<string>; requests: number; errors: number; latency: Histogram }>();
  private lastComplete: { requests: number; errors: number; p99: number } | undefined;
  private answered = 0;
  private failed = 0;
  private readonly finished = new Set<string>();

  constructor(
    private readonly durationMs: number,
    private readonly intervalMs: number,
    private readonly workers: number,
    private readonly rate: number,
  ) {}

  add(s: LoadSnapshot): void {
    if (this.finished.has(s.worker)) return;
    this.latest.set(s.worker, s);
    if (s.kind === "final") {
      // Its last, partial interval: counted, but no rate is read from it.
      this.finished.add(s.worker);
      this.answered += s.interval.requests;
      this.failed += s.interval.errors;
      return;
    }
    let i = this.intervals.get(s.seq);
    if (!i) this.intervals.set(s.seq, (i = { workers: new Set(), requests: 0, errors: 0, latency: newHistogram() }));
    if (i.workers.has(s.worker)) return;
    i.workers.add(s.worker);
    this.answered += s.interval.requests;
    this.failed += s.interval.errors;
    i.requests += s.interval.requests;
    i.errors += s.interval.errors;
    const h = s.interval.latency ? decodeHistogram(s.interval.latency) : undefined;
    if (h) i.latency.add(h);
    if (i.workers.size >= this.workers) {
      this.lastComplete = { requests: i.requests, errors: i.errors, p99: i.latency.totalCount > 0 ? i.latency.getValueAtPercentile(99) / 1000 : 0 };
      for (const k of this.intervals.keys()) if (k <= s.seq) this.intervals.delete(k);
    }
  }

  /** One line; with `bar`, a bar of `width` cells for a terminal. */
  line(elapsedMs: number, bar: boolean, width = 24): string {
    let sent = 0;
    for (const s of this.latest.values()) sent += s.sent;
    const t = Math.min(elapsedMs, this.durationMs) / 1000;
    const filled = Math.round(Math.max(0, Math.min(1, elapsedMs / this.durationMs)) * width);
    const head = bar ? `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ` : "";
    const last = this.lastComplete;
    const perSecond = (n: number) => (n * 1000) / this.intervalMs;
    const now = last ? `  now ${num(perSecond(last.requests), 0)} req/s${this.rate > 0 ? ` of ${num(this.rate, 0)}` : ""}, p99 ${formatMs(last.p99)}` : "";
    return `${head}${t.toFixed(1)}/${(this.durationMs / 1000).toFixed(1)} s  ${num(sent)} sent, ${num(this.answered)} answered, ${num(this.failed)} failed${now}`;
  }
}
