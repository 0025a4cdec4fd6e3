/**
 * A chaos scenario (`kubewire chaos run SCENARIO.yaml`): a timed sequence of process and network
 * faults during a load, then the invariants. This file is the pure part: the file's grammar, the
 * plan it makes (every step's time, target and seed resolved, so one seed is one run), and the
 * recovery time of each step read from the load's per-interval errors.
 *
 *   name: failover                  # a DNS label; the NetworkChaos objects are named after it
 *   seed: 42                        # one seed, one run: random targets and every fault's seed
 *   load: [service/web, --rate, "200", --connections, "8"]   # `kubewire load` arguments
 *   settle: 20s                     # after the last step: load goes on, invariants must hold
 *   recoverWithin: 12s              # optional aim: each step's traffic back within this
 *   steps:
 *     - at: 5s
 *       kill: node-2                # kill | pause | resume | restart: a node, nats, control-plane,
 *     - at: 15s                     # or "random-node" (picked with the seed)
 *       restart: node-2
 *     - at: 30s
 *       for: 15s                    # the fault is deleted after this (default: until the end)
 *       networkChaos: {...}         # a NetworkChaos spec (chaos.kubewire.io/v1alpha1)
 */
import { parse as parseYaml } from "yaml";
import { isDns1123Label, parseDuration } from "../cluster/syntax.ts";
import { seedFrom, seededRng } from "../node-agent/faults/random.ts";
import { CHAOS_VERBS, type ChaosVerb } from "./chaos.ts";

export type Parsed<T> = { readonly kind: "ok"; readonly value: T } | { readonly kind: "invalid"; readonly message: string };

export type StepAction = { readonly kind: "process"; readonly verb: ChaosVerb; readonly target: string } | { readonly kind: "network"; readonly spec: Record<string, unknown> };

export interface ScenarioStep {
  readonly atMs: number;
  /** Network faults: how long before the object is deleted (undefined: until the run ends). */
  readonly forMs: number | undefined;
  readonly action: StepAction;
}

export interface Scenario {
  readonly name: string;
  readonly seed: number;
  /** `kubewire load` arguments, without --duration and -o (the run sets them). */
  readonly load: readonly string[];
  readonly settleMs: number;
  readonly recoverWithinMs: number | undefined;
  readonly steps: readonly ScenarioStep[];
}

const TOP_KEYS = ["name", "seed", "load", "settle", "recoverWithin", "steps"];
const DEFAULT_SETTLE_MS = 20_000;
const MAX_RUN_MS = 3_600_000;

function durationAt(v: unknown, field: string): Parsed<number> {
  const ms = typeof v === "string" ? parseDuration(v) : undefined;
  if (ms === undefined) return { kind: "invalid", message: `${field}: want a duration like 5s or 1m, got ${JSON.stringify(v)}` };
  if (ms > MAX_RUN_MS) return { kind: "invalid", message: `${field}: at most 1h, got ${v as string}` };
  return { kind: "ok", value: ms };
}

/** The file's text as a scenario; every error names the field. `fallbackName`: from the file name. */
export function parseScenario(text: string, fallbackName: string): Parsed<Scenario> {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    return { kind: "invalid", message: `not YAML: ${(err as Error).message.split("\n")[0]}` };
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return { kind: "invalid", message: "a scenario is a mapping (name, seed, load, settle, steps)" };
  const o = doc as Record<string, unknown>;
  const unknown = Object.keys(o).find((k) => !TOP_KEYS.includes(k));
  if (unknown !== undefined) return { kind: "invalid", message: `${unknown}: unknown field (${TOP_KEYS.join(", ")})` };

  const name = o.name ?? fallbackName;
  if (typeof name !== "string" || !isDns1123Label(name) || name.length > 50) return { kind: "invalid", message: `name: want a DNS label of at most 50 characters, got ${JSON.stringify(name)}` };
  const seed = o.seed ?? 1;
  if (typeof seed !== "number" || !Number.isSafeInteger(seed) || seed < 0) return { kind: "invalid", message: `seed: want a non-negative integer, got ${JSON.stringify(seed)}` };
  const load = o.load ?? [];
  if (!Array.isArray(load) || load.some((a) => typeof a !== "string" && typeof a !== "number")) return { kind: "invalid", message: "load: want a list of `kubewire load` arguments, e.g. [service/web, --rate, 200]" };
  const loadArgs = load.map(String);
  const owned = loadArgs.find((a) => a === "--duration" || a === "-o" || a === "--output" || a.startsWith("--duration=") || a.startsWith("--output="));
  if (owned !== undefined) return { kind: "invalid", message: `load: ${owned} is set by the run (its length is the steps' plus settle; its report is part of the run's)` };
  const settle = o.settle === undefined ? { kind: "ok" as const, value: DEFAULT_SETTLE_MS } : durationAt(o.settle, "settle");
  if (settle.kind === "invalid") return settle;
  let recoverWithinMs: number | undefined;
  if (o.recoverWithin !== undefined) {
    const r = durationAt(o.recoverWithin, "recoverWithin");
    if (r.kind === "invalid") return r;
    recoverWithinMs = r.value;
  }
  if (!Array.isArray(o.steps) || o.steps.length === 0) return { kind: "invalid", message: "steps: want a list of at least one step" };
  if (o.steps.length > 1000) return { kind: "invalid", message: "steps: at most 1000" };
  const steps: ScenarioStep[] = [];
  for (const [i, raw] of o.steps.entries()) {
    const field = `steps[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { kind: "invalid", message: `${field}: want a mapping with at and one action` };
    const s = raw as Record<string, unknown>;
    const at = durationAt(s.at, `${field}.at`);
    if (at.kind === "invalid") return at;
    const actions = Object.keys(s).filter((k) => k !== "at" && k !== "for");
    if (actions.length !== 1) return { kind: "invalid", message: `${field}: want exactly one action (${[...CHAOS_VERBS, "networkChaos"].join(", ")}), got ${actions.length === 0 ? "none" : actions.join(", ")}` };
    const key = actions[0]!;
    let action: StepAction;
    if ((CHAOS_VERBS as readonly string[]).includes(key)) {
      const target = s[key];
      if (typeof target !== "string" || target === "") return { kind: "invalid", message: `${field}.${key}: want a process: a node name, nats, control-plane or random-node` };
      if (s.for !== undefined) return { kind: "invalid", message: `${field}.for: only a networkChaos step lasts; a process stays ${key === "kill" ? "killed" : key === "pause" ? "paused" : "as it is"} until another step` };
      action = { kind: "process", verb: key as ChaosVerb, target };
    } else if (key === "networkChaos") {
      const spec = s.networkChaos;
      if (typeof spec !== "object" || spec === null || Array.isArray(spec)) return { kind: "invalid", message: `${field}.networkChaos: want a NetworkChaos spec (a mapping)` };
      action = { kind: "network", spec: spec as Record<string, unknown> };
    } else {
      return { kind: "invalid", message: `${field}.${key}: unknown action (${[...CHAOS_VERBS, "networkChaos"].join(", ")})` };
    }
    let forMs: number | undefined;
    if (s.for !== undefined) {
      const f = durationAt(s.for, `${field}.for`);
      if (f.kind === "invalid") return f;
      forMs = f.value;
    }
    steps.push({ atMs: at.value, forMs, action });
  }
  for (let i = 1; i < steps.length; i++) {
    if (steps[i]!.atMs < steps[i - 1]!.atMs) return { kind: "invalid", message: `steps[${i}].at: steps go in time order (${steps[i]!.atMs} ms is before steps[${i - 1}])` };
  }
  return { kind: "ok", value: { name, seed, load: loadArgs, settleMs: settle.value, recoverWithinMs, steps } };
}

// ---------------------------------------------------------------------------------------------
// The plan

export interface PlannedStep {
  readonly index: number;
  readonly atMs: number;
  /** When the fault's effect ends and recovery is counted from: a process action at once, a network fault when deleted. */
  readonly recoverFromMs: number;
  readonly action: { readonly kind: "process"; readonly verb: ChaosVerb; readonly target: string } | { readonly kind: "network"; readonly object: Record<string, unknown>; readonly untilMs: number };
  /** One line for the report. */
  readonly describe: string;
}

export interface Plan {
  readonly scenario: Scenario;
  /** The load's length: every step's end and then settle. */
  readonly durationMs: number;
  readonly steps: readonly PlannedStep[];
}

export const CHAOS_NAMESPACE = "kubewire-chaos";

/**
 * Every step resolved: "random-node" picked from `nodes` (sorted, by the scenario's seed, a fresh
 * pick per step), each NetworkChaos object named `<name>-<index>` with its seed derived from the
 * scenario's (unless it sets one), its end at `for` or the run's end. Same scenario, same seed,
 * same nodes: the same plan.
 */
export function planScenario(s: Scenario, nodes: readonly string[]): Parsed<Plan> {
  const rng = seededRng(seedFrom("kubewire chaos run", s.name, s.seed));
  const sorted = [...nodes].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const lastStart = Math.max(...s.steps.map((st) => st.atMs + (st.forMs ?? 0)));
  const durationMs = lastStart + s.settleMs;
  const steps: PlannedStep[] = [];
  for (const [index, st] of s.steps.entries()) {
    if (st.action.kind === "process") {
      let target = st.action.target;
      if (target === "random-node") {
        if (sorted.length === 0) return { kind: "invalid", message: `steps[${index}]: random-node, but the cluster has no node` };
        target = sorted[Math.floor(rng() * sorted.length)]!;
      }
      steps.push({ index, atMs: st.atMs, recoverFromMs: st.atMs, action: { kind: "process", verb: st.action.verb, target }, describe: `${st.action.verb} ${target}` });
    } else {
      const untilMs = st.forMs === undefined ? durationMs : st.atMs + st.forMs;
      const spec = { ...st.action.spec };
      if (spec.seed === undefined) spec.seed = seedFrom(s.seed, s.name, index);
      const object = { apiVersion: "chaos.kubewire.io/v1alpha1", kind: "NetworkChaos", metadata: { namespace: CHAOS_NAMESPACE, name: `${s.name}-${index}` }, spec };
      const what = typeof spec.action === "string" ? spec.action : "netem";
      steps.push({ index, atMs: st.atMs, recoverFromMs: untilMs, action: { kind: "network", object, untilMs }, describe: `NetworkChaos ${CHAOS_NAMESPACE}/${s.name}-${index} (${what}) for ${(untilMs - st.atMs) / 1000} s` });
    }
  }
  return { kind: "ok", value: { scenario: s, durationMs, steps } };
}

// ---------------------------------------------------------------------------------------------
// Recovery

/** The load's outcome over one interval of the run (times in ms from the load's start). */
export interface Interval {
  readonly startMs: number;
  readonly endMs: number;
  readonly ok: number;
  readonly errors: number;
}

export interface Recovery {
  readonly step: number;
  /** Failed requests from the step's start until the next step's. */
  readonly errors: number;
  /**
   * From the fault's end (recoverFromMs) until the end of the last interval with errors before
   * the next step: 0 when none came after; undefined when errors still came in the last interval
   * of the window (not recovered before the next step or the run's end).
   */
  readonly recoveredAfterMs: number | undefined;
}

export function recoveries(plan: Plan, intervals: readonly Interval[]): Recovery[] {
  return plan.steps.map((st, i) => {
    const windowEnd = plan.steps[i + 1]?.atMs ?? plan.durationMs;
    const inWindow = intervals.filter((iv) => iv.endMs > st.atMs && iv.startMs < windowEnd);
    const errors = inWindow.reduce((n, iv) => n + iv.errors, 0);
    const after = inWindow.filter((iv) => iv.endMs > st.recoverFromMs);
    const failing = after.filter((iv) => iv.errors > 0);
    if (failing.length === 0) return { step: st.index, errors, recoveredAfterMs: 0 };
    const last = failing[failing.length - 1]!;
    // Still failing in the window's last interval: no recovery seen before the next step.
    if (last === after[after.length - 1]) return { step: st.index, errors, recoveredAfterMs: undefined };
    return { step: st.index, errors, recoveredAfterMs: Math.max(0, last.endMs - st.recoverFromMs) };
  });
}
