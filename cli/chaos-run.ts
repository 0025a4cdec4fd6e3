/**
 * `kubewire chaos run SCENARIO.yaml`: the scenario's faults, at their times, during its load; then
 * the invariants; a report and an exit code (0: every invariant held and, when the scenario sets
 * recoverWithin, traffic came back within it after every step; 1 otherwise; 2 a bad file).
 *
 * While it runs, the run also writes: a ConfigMap every 250 ms in the kubewire-chaos namespace,
 * each remembered once the API acknowledged it, so "no acknowledged write lost" is checked on
 * writes made during the faults (a NATS or control-plane restart in the middle), not only on
 * objects that existed before. The durable objects that existed before the run (everything but
 * what controllers and nodes churn: Pods, ReplicaSets, EndpointSlices, Events, Leases, Nodes) must
 * still be there, with the same uid, after it.
 *
 * The load is `kubewire load` with the scenario's arguments, for the plan's length, its per-second
 * snapshots giving each step's errors and recovery time (chaos-scenario.ts recoveries).
 */
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import type { NatsConnection } from "nats";
import { KubeApiError, paths, type KubeClient, type KubeObjectLike } from "../cluster/kube-client.ts";
import { act, clusterCheck, findProcess, type ActionResult } from "./chaos.ts";
import { CHAOS_NAMESPACE, parseScenario, planScenario, recoveries, type Interval, type Plan, type PlannedStep, type Recovery } from "./chaos-scenario.ts";
import { lostWrites, type AcknowledgedWrite, type Violation } from "./invariants.ts";
import { readState, type ClusterState } from "./state.ts";
import type { LoadSnapshot } from "../cluster/types.ts";
import { load } from "./load.ts";
import type { LoadReport } from "./load-report.ts";

/** What the run needs of a load: run these `kubewire load` arguments for `durationMs`; `onStarted` once traffic flows. */
export type LoadDriver = (args: readonly string[], durationMs: number, onStarted: () => void) => Promise<LoadOutcome>;

export interface LoadOutcome {
  readonly ok: boolean;
  readonly summary: string;
  readonly errorsByKind: Readonly<Record<string, number>>;
  readonly requests: number;
  /** Per second of the load: answered requests and errors, summed over the clients. */
  readonly intervals: readonly Interval[];
}

/** `kubewire load` in this process, its per-second snapshots summed into intervals. */
export function loadDriver(kube: KubeClient, nc: NatsConnection, stderr: (line: string) => void): LoadDriver {
  return async (args, durationMs, onStarted) => {
    const buckets = new Map<number, { ok: number; errors: number }>();
    let report: LoadReport | undefined;
    const code = await load([...args, "--duration", `${durationMs}ms`], {
      kube,
      nc,
      stdout: () => {},
      stderr: (t) => {
        for (const line of t.split("\n")) if (line.trim() !== "") stderr(`  ${line}`);
      },
      tty: false,
      onStarted,
      onSnapshot: (snap: LoadSnapshot) => {
        if (snap.kind !== "interval") return;
        // Clients start within a few ms of each other: their Nth second is the run's Nth second.
        const second = Math.max(1, Math.round(snap.elapsedMs / 1000));
        const b = buckets.get(second) ?? { ok: 0, errors: 0 };
        b.ok += snap.interval.requests;
        b.errors += snap.interval.errors;
        buckets.set(second, b);
      },
      onReport: (r) => (report = r),
    });
    const intervals = [...buckets.entries()].sort(([a], [b]) => a - b).map(([second, b]) => ({ startMs: (second - 1) * 1000, endMs: second * 1000, ...b }));
    if (!report) return { ok: false, summary: `the load did not run (exit ${code})`, errorsByKind: {}, requests: 0, intervals };
    const r = report as LoadReport;
    const kinds = Object.entries(r.errorsByKind).map(([k, n]) => `${k} ${n}`).join(", ");
    return {
      ok: code === 0,
      summary: `${r.requests} requests (${r.rps.toFixed(0)}/s), ${r.errors} errors${kinds ? ` (${kinds})` : ""}, p50 ${r.latency.p50.toFixed(2)} ms, p99 ${r.latency.p99.toFixed(2)} ms`,
      errorsByKind: r.errorsByKind,
      requests: r.requests,
      intervals,
    };
  };
}

export interface ChaosRunContext {
  readonly kube: KubeClient;
  readonly nc: NatsConnection;
  readonly stateDir: string;
  readonly load: LoadDriver;
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  /** How long the invariants may take to come to hold after the load (convergence). */
  readonly convergeWithinMs?: number;
}

/** Kinds whose objects must outlive the run (namespaced unless noted). */
const DURABLE = [
  ["Namespace", "/api/v1/namespaces"],
  ["Service", "/api/v1/services"],
  ["ConfigMap", "/api/v1/configmaps"],
  ["Secret", "/api/v1/secrets"],
  ["ServiceAccount", "/api/v1/serviceaccounts"],
  ["Deployment", "/apis/apps/v1/deployments"],
  ["StatefulSet", "/apis/apps/v1/statefulsets"],
  ["DaemonSet", "/apis/apps/v1/daemonsets"],
  ["NetworkPolicy", "/apis/networking.k8s.io/v1/networkpolicies"],
] as const;

const WRITE_EVERY_MS = 250;
const ACTION_TIMEOUT_MS = 60_000;

async function durableObjects(kube: KubeClient): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [kind, path] of DURABLE) {
    for (const o of await kube.list(path)) {
      // The run's own namespace and writes are checked on their own.
      if (o.metadata.namespace === CHAOS_NAMESPACE || (kind === "Namespace" && o.metadata.name === CHAOS_NAMESPACE)) continue;
      out.set(`${kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name}`, o.metadata.uid ?? "");
    }
  }
  return out;
}

/** Lists, retrying while the API is away (a control-plane or NATS restart just happened). */
async function patiently<T>(what: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

interface StepOutcome {
  readonly step: PlannedStep;
  /** When it was done, ms from the load's start. */
  readonly doneAtMs: number;
  readonly result: ActionResult;
}

export interface ChaosRunReport {
  readonly scenario: string;
  readonly seed: number;
  readonly durationMs: number;
  readonly steps: ReadonlyArray<{ index: number; atMs: number; doneAtMs: number; action: string; ok: boolean; message: string; errors: number; recoveredAfterMs: number | null }>;
  readonly load: { ok: boolean; requests: number; errorsByKind: Readonly<Record<string, number>>; summary: string };
  readonly writes: { attempted: number; acknowledged: number };
  readonly convergedAfterMs: number | null;
  readonly violations: readonly Violation[];
  readonly recoverWithinMs: number | null;
  readonly holds: boolean;
}

export async function chaosRun(file: string, json: boolean, ctx: ChaosRunContext): Promise<number> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    ctx.stderr(`error: chaos run: cannot read ${file}: ${(err as Error).message}`);
    return 2;
  }
  const parsed = parseScenario(text, basename(file, extname(file)).toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "") || "chaos");
  if (parsed.kind === "invalid") {
    ctx.stderr(`error: chaos run ${file}: ${parsed.message}`);
    return 2;
  }
  const state = readState(ctx.stateDir);
  if (!state) {
    ctx.stderr(`error: no cluster running in ${ctx.stateDir}; start one with: kubewire up --nodes 3`);
    return 1;
  }
  const nodes = (await ctx.kube.list(paths.nodes())).map((n) => n.metadata.name ?? "").filter((n) => n !== "");
  const planned = planScenario(parsed.value, nodes);
  if (planned.kind === "invalid") {
    ctx.stderr(`error: chaos run ${file}: ${planned.message}`);
    return 2;
  }
  const plan = planned.value;
  for (const st of plan.steps) {
    if (!state.compose && st.action.kind === "process" && findProcess(state, st.action.target).kind === "invalid") {
      ctx.stderr(`error: chaos run ${file}: steps[${st.index}]: ${(findProcess(state, st.action.target) as { message: string }).message}`);
      return 2;
    }
  }
  ctx.stderr(`chaos run ${plan.scenario.name} (seed ${plan.scenario.seed}): ${plan.steps.length} step(s) over ${plan.durationMs / 1000} s`);
  for (const st of plan.steps) ctx.stderr(`  at ${st.atMs / 1000}s: ${st.describe}`);

  await ensureNamespace(ctx.kube);
  const before = await durableObjects(ctx.kube);
  let report: ChaosRunReport;
  try {
    report = await execute(plan, state, ctx, before);
  } catch (err) {
    if (!(err instanceof ChaosRunError)) throw err;
    ctx.stderr(`error: chaos run ${plan.scenario.name}: ${err.message}`);
    return 1;
  }
  if (json) ctx.stdout(JSON.stringify(report, null, 2));
  else ctx.stdout(formatRunReport(report));
  return report.holds ? 0 : 1;
}

/** The run could not be made (as opposed to a run whose invariants failed). */
export class ChaosRunError extends Error {}

async function ensureNamespace(kube: KubeClient): Promise<void> {
  try {
    await kube.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: CHAOS_NAMESPACE } });
  } catch (err) {
    if (!(err instanceof KubeApiError && err.code === 409)) throw err;
  }
}

async function execute(plan: Plan, state: ClusterState, ctx: ChaosRunContext, before: Map<string, string>): Promise<ChaosRunReport> {
  const runId = `${plan.scenario.name}-${Date.now().toString(36)}`;
  const outcomes: StepOutcome[] = [];
  const acked: AcknowledgedWrite[] = [];
  let attempted = 0;
  let writing = true;

  // Writes during the run: each acknowledged one must survive.
  const writer = (async () => {
    for (let seq = 0; writing; seq++) {
      const name = `${runId}-w${seq}`;
      const data = { run: runId, seq: String(seq) };
      attempted++;
      try {
        await ctx.kube.create(`/api/v1/namespaces/${CHAOS_NAMESPACE}/configmaps`, { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: CHAOS_NAMESPACE, labels: { "kubewire.io/chaos-run": runId } }, data });
        acked.push({ key: `${CHAOS_NAMESPACE}/${name}`, data });
      } catch {
        // Not acknowledged (the API or NATS is away): nothing is promised about it.
      }
      await new Promise((r) => setTimeout(r, WRITE_EVERY_MS));
    }
  })();

  const created: string[] = [];
  const deletions: Array<Promise<void>> = [];
  // Steps are timed from the moment the load's clients run (creating client pods comes first).
  let start = 0;
  let flowing!: () => void;
  const started = new Promise<void>((resolve) => (flowing = resolve));
  const loadDone = ctx.load(plan.scenario.load, plan.durationMs, () => {
    start = Date.now();
    flowing();
  });
  const sinceStart = () => Date.now() - start;
  const first = await Promise.race([started.then(() => "started" as const), loadDone.then(() => "ended" as const)]);
  if (first === "ended") {
    writing = false;
    await writer;
    const load = await loadDone;
    throw new ChaosRunError(`the load did not start: ${load.summary}`);
  }
  for (const st of plan.steps) {
    const wait = st.atMs - sinceStart();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    let result: ActionResult;
    if (st.action.kind === "process") {
      result = await act(readState(state.stateDir) ?? state, st.action.target, st.action.verb, ACTION_TIMEOUT_MS);
    } else {
      const obj = st.action.object as { metadata: { name: string } };
      result = await patiently(`create NetworkChaos ${obj.metadata.name}`, () => ctx.kube.create(`/apis/chaos.kubewire.io/v1alpha1/namespaces/${CHAOS_NAMESPACE}/networkchaos`, st.action.kind === "network" ? st.action.object : {}), 30_000).then(
        () => ({ ok: true, message: `created NetworkChaos ${CHAOS_NAMESPACE}/${obj.metadata.name}` }),
        (err: unknown) => ({ ok: false, message: (err as Error).message }),
      );
      if (result.ok) {
        created.push(obj.metadata.name);
        const untilMs = st.action.untilMs;
        if (untilMs < plan.durationMs) {
          deletions.push(
            (async () => {
              await new Promise((r) => setTimeout(r, Math.max(0, untilMs - sinceStart())));
              await deleteChaos(ctx.kube, obj.metadata.name);
            })(),
          );
        }
      }
    }
    outcomes.push({ step: st, doneAtMs: sinceStart(), result });
    ctx.stderr(`  ${(sinceStart() / 1000).toFixed(1)}s: ${result.ok ? "" : "FAILED "}${result.message}`);
  }
  const load = await loadDone;
  await Promise.all(deletions);
  for (const name of created) await deleteChaos(ctx.kube, name);
  writing = false;
  await writer;

  // Invariants: convergence and addresses (waiting for them to come to hold), then the objects.
  const convergeWithin = ctx.convergeWithinMs ?? 60_000;
  const checkStart = Date.now();
  let violations: Violation[] = [];
  let convergedAfterMs: number | null = null;
  for (;;) {
    violations = await patiently("check the cluster", () => clusterCheck(ctx.kube, ctx.nc)).then((r) => r.violations);
    if (violations.length === 0) {
      convergedAfterMs = Date.now() - checkStart;
      break;
    }
    if (Date.now() - checkStart > convergeWithin) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const after = await patiently("list objects", () => durableObjects(ctx.kube));
  for (const [key, uid] of before) {
    const now = after.get(key);
    if (now === undefined) violations.push({ invariant: "objects", subject: key, message: `${key} existed before the run and is gone` });
    else if (now !== uid) violations.push({ invariant: "objects", subject: key, message: `${key} was replaced during the run (uid ${uid} -> ${now})` });
  }
  const present = new Map<string, Record<string, string> | undefined>();
  const written = await patiently("list the run's writes", () => ctx.kube.list(`/api/v1/namespaces/${CHAOS_NAMESPACE}/configmaps?labelSelector=${encodeURIComponent(`kubewire.io/chaos-run=${runId}`)}`));
  for (const o of written) present.set(`${CHAOS_NAMESPACE}/${o.metadata.name}`, ((o as KubeObjectLike & { data?: Record<string, string> }).data ?? {}) as Record<string, string>);
  violations.push(...lostWrites(acked, present));
  const delivery = Object.entries(load.errorsByKind).filter(([kind]) => kind === "corrupt" || kind === "mismatch");
  for (const [kind, n] of delivery) violations.push({ invariant: "delivery", subject: kind, message: `${n} response(s) came back other than sent (${kind})` });
  // The run's own writes go; the objects that existed stay.
  await ctx.kube.delete(`/api/v1/namespaces/${CHAOS_NAMESPACE}`).catch(() => undefined);

  const rec: Recovery[] = recoveries(plan, load.intervals);
  const recoverWithin = plan.scenario.recoverWithinMs;
  const slow = recoverWithin !== undefined && rec.some((r) => r.recoveredAfterMs === undefined || r.recoveredAfterMs > recoverWithin);
  const failedSteps = outcomes.some((o) => !o.result.ok);
  return {
    scenario: plan.scenario.name,
    seed: plan.scenario.seed,
    durationMs: plan.durationMs,
    steps: outcomes.map((o, i) => ({
      index: o.step.index,
      atMs: o.step.atMs,
      doneAtMs: o.doneAtMs,
      action: o.step.describe,
      ok: o.result.ok,
      message: o.result.message,
      errors: rec[i]?.errors ?? 0,
      recoveredAfterMs: rec[i]?.recoveredAfterMs ?? null,
    })),
    load: { ok: load.ok, requests: load.requests, errorsByKind: load.errorsByKind, summary: load.summary },
    writes: { attempted, acknowledged: acked.length },
    convergedAfterMs,
    violations,
    recoverWithinMs: recoverWithin ?? null,
    holds: violations.length === 0 && !slow && !failedSteps,
  };
}

async function deleteChaos(kube: KubeClient, name: string): Promise<void> {
  await patiently(`delete NetworkChaos ${name}`, () =>
    kube.delete(`/apis/chaos.kubewire.io/v1alpha1/namespaces/${CHAOS_NAMESPACE}/networkchaos/${name}`).catch((err: unknown) => {
      if (err instanceof KubeApiError && err.code === 404) return;
      throw err;
    }),
  ).catch(() => undefined);
}

export function formatRunReport(r: ChaosRunReport): string {
  const s = (ms: number | null) => (ms === null ? "not recovered" : `${(ms / 1000).toFixed(1)} s`);
  const lines = [`chaos run ${r.scenario} (seed ${r.seed}), ${r.durationMs / 1000} s`, "", "STEP  AT      ACTION" + " ".repeat(50) + "ERRORS  RECOVERED AFTER"];
  for (const st of r.steps) {
    lines.push(`${String(st.index).padEnd(6)}${`${(st.atMs / 1000).toFixed(1)}s`.padEnd(8)}${`${st.ok ? "" : "FAILED: "}${st.action}`.padEnd(55)} ${String(st.errors).padEnd(8)}${s(st.recoveredAfterMs)}`);
    if (!st.ok) lines.push(`      ${st.message}`);
  }
  lines.push("", `load: ${r.load.summary}`);
  lines.push(`writes during the run: ${r.writes.acknowledged} acknowledged of ${r.writes.attempted}`);
  lines.push(r.convergedAfterMs === null ? "cluster did not converge" : `every node converged ${(r.convergedAfterMs / 1000).toFixed(1)} s after the load ended`);
  if (r.recoverWithinMs !== null) lines.push(`aim: traffic back within ${(r.recoverWithinMs / 1000).toFixed(1)} s of every step`);
  for (const v of r.violations) lines.push(`VIOLATED ${v.invariant}: ${v.message}`);
  lines.push(r.holds ? "every invariant held" : "the run FAILED");
  return lines.join("\n");
}
