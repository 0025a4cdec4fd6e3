/**
 * A NetworkChaos object (chaos.kubewire.io/v1alpha1) read into the typed form the compiler and
 * the status controller use. The API server validated it against its schema
 * (control-plane/api/crd-schemas.ts) before storing it, but a reader trusts nothing stored
 * (STYLE.md): anything off is a `{ ok: false }` naming the field, never a throw.
 *
 * The shape follows Chaos Mesh's NetworkChaos (chaos-mesh.org, api/v1alpha1/networkchaos_types.go):
 * `selector` and `target.selector` pick the two ends, `direction` to/from/both, `delay`
 * (latency, jitter, correlation, reorder), `loss`, `duplicate`, `corrupt` with percentages as
 * strings ("25" is 25 %), `bandwidth` (rate, limit, buffer as tc-tbf takes them), `duration`.
 * Additions: netem's `distribution` and reorder `gap`, a Gilbert-Elliott `loss.gemodel`, `ports`
 * and `protocol`, several impairments in one object, and a `seed`.
 */
import { DISTRIBUTIONS, type Distribution } from "./distribution.ts";
import type { NetemParams } from "./netem.ts";
import { seedFrom } from "./random.ts";
import { PERCENT_PATTERN, parseDuration } from "../../cluster/syntax.ts";

export const CHAOS_GROUP = "chaos.kubewire.io";
export const CHAOS_VERSION = "v1alpha1";

export type Direction = "to" | "from" | "both";

/** One end of the traffic: nodes and/or pods, as Chaos Mesh's PodSelectorSpec (subset). */
export interface ChaosSelector {
  nodes?: string[];
  nodeSelectors?: Record<string, string>;
  namespaces?: string[];
  labelSelectors?: Record<string, string>;
}

export interface ParsedChaos {
  /** "namespace/name". */
  key: string;
  namespace: string;
  name: string;
  action: "netem" | "partition";
  selector: ChaosSelector;
  /** Absent: any destination. */
  target: ChaosSelector | undefined;
  direction: Direction;
  /** IP protocol number; 0: any. */
  protocol: number;
  ports: number[] | undefined;
  netem: NetemParams;
  /** Creation time (wall ms); the duration runs from here. */
  startMs: number;
  durationMs: number | undefined;
  seed: number;
}

export type ParseResult = { ok: true; chaos: ParsedChaos } | { ok: false; field: string; error: string };

class Bad extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const PROTOCOLS: Readonly<Record<string, number>> = { TCP: 6, UDP: 17, ICMP: 1 };

export function parsePercent(text: unknown, field: string): number {
  if (typeof text !== "string" || !new RegExp(PERCENT_PATTERN).test(text)) throw new Bad(field, `must be a percentage from "0" to "100", got ${JSON.stringify(text)}`);
  return Number(text.replace(/%$/, "")) / 100;
}

/** A Go duration in milliseconds. */
export function parseDurationMs(text: unknown, field: string): number {
  const ms = typeof text === "string" ? parseDuration(text) : undefined;
  if (ms === undefined) throw new Bad(field, `must be a duration such as "50ms" or "1m30s", got ${JSON.stringify(text)}`);
  return ms;
}

const RATE_BYTES: Readonly<Record<string, number>> = { bit: 1 / 8, kbit: 1000 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8, bps: 1, kbps: 1000, mbps: 1e6, gbps: 1e9 };

/** A tc rate in bytes per second. */
export function parseRate(text: unknown, field: string): number {
  const m = typeof text === "string" ? /^([0-9]+(?:\.[0-9]+)?)([a-z]+)$/.exec(text) : null;
  const unit = m ? RATE_BYTES[m[2]!] : undefined;
  if (!m || unit === undefined || !(Number(m[1]) > 0)) throw new Bad(field, `must be a positive rate such as "1mbit" or "100kbps", got ${JSON.stringify(text)}`);
  return Number(m[1]) * unit;
}

function rec(v: unknown, field: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Bad(field, "must be an object");
  return v as Record<string, unknown>;
}

function optRec(v: unknown, field: string): Record<string, unknown> | undefined {
  return v === undefined || v === null ? undefined : rec(v, field);
}

function strings(v: unknown, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new Bad(field, "must be a list of strings");
  return v as string[];
}

function stringMap(v: unknown, field: string): Record<string, string> | undefined {
  const r = optRec(v, field);
  if (r && Object.values(r).some((x) => typeof x !== "string")) throw new Bad(field, "must map strings to strings");
  return r as Record<string, string> | undefined;
}

function selector(v: unknown, field: string): ChaosSelector {
  const r = rec(v, field);
  const out: ChaosSelector = {};
  const nodes = strings(r.nodes, `${field}.nodes`);
  if (nodes) out.nodes = nodes;
  const ns = strings(r.namespaces, `${field}.namespaces`);
  if (ns) out.namespaces = ns;
  const nodeSel = stringMap(r.nodeSelectors, `${field}.nodeSelectors`);
  if (nodeSel) out.nodeSelectors = nodeSel;
  const labels = stringMap(r.labelSelectors, `${field}.labelSelectors`);
  if (labels) out.labelSelectors = labels;
  return out;
}

function correlation(v: unknown, field: string): number {
  return v === undefined || v === null ? 0 : parsePercent(v, field);
}

function integer(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new Bad(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return v;
}

/** The impairments of a spec, in netem's terms. */
export function netemParams(spec: Record<string, unknown>): NetemParams {
  const out: NetemParams = {};
  if (spec.action === "partition") out.partition = true;
  const delay = optRec(spec.delay, "spec.delay");
  if (delay) {
    const dist = delay.distribution ?? "uniform";
    if (!DISTRIBUTIONS.includes(dist as Distribution)) throw new Bad("spec.delay.distribution", `must be one of ${DISTRIBUTIONS.join(", ")}`);
    out.delay = {
      latencyMs: parseDurationMs(delay.latency, "spec.delay.latency"),
      jitterMs: delay.jitter === undefined ? 0 : parseDurationMs(delay.jitter, "spec.delay.jitter"),
      correlation: correlation(delay.correlation, "spec.delay.correlation"),
      distribution: dist as Distribution,
    };
    const reorder = optRec(delay.reorder, "spec.delay.reorder");
    if (reorder) {
      out.reorder = {
        probability: parsePercent(reorder.reorder, "spec.delay.reorder.reorder"),
        correlation: correlation(reorder.correlation, "spec.delay.reorder.correlation"),
        // tc: "if (opt.gap == 0) opt.gap = 1" when reordering is asked for.
        gap: reorder.gap === undefined ? 1 : Math.max(1, integer(reorder.gap, "spec.delay.reorder.gap", 0, 1_000_000)),
      };
    }
  }
  const loss = optRec(spec.loss, "spec.loss");
  if (loss) {
    const ge = optRec(loss.gemodel, "spec.loss.gemodel");
    if (ge && loss.loss !== undefined) throw new Bad("spec.loss", "loss and gemodel are mutually exclusive");
    if (ge) {
      out.loss = {
        kind: "gemodel",
        p: parsePercent(ge.p, "spec.loss.gemodel.p"),
        r: ge.r === undefined ? 1 : parsePercent(ge.r, "spec.loss.gemodel.r"),
        lossBad: ge.oneMinusH === undefined ? 1 : parsePercent(ge.oneMinusH, "spec.loss.gemodel.oneMinusH"),
        lossGood: ge.oneMinusK === undefined ? 0 : parsePercent(ge.oneMinusK, "spec.loss.gemodel.oneMinusK"),
      };
    } else {
      out.loss = { kind: "random", probability: parsePercent(loss.loss, "spec.loss.loss"), correlation: correlation(loss.correlation, "spec.loss.correlation") };
    }
  }
  const dup = optRec(spec.duplicate, "spec.duplicate");
  if (dup) out.duplicate = { probability: parsePercent(dup.duplicate, "spec.duplicate.duplicate"), correlation: correlation(dup.correlation, "spec.duplicate.correlation") };
  const corrupt = optRec(spec.corrupt, "spec.corrupt");
  if (corrupt) out.corrupt = { probability: parsePercent(corrupt.corrupt, "spec.corrupt.corrupt"), correlation: correlation(corrupt.correlation, "spec.corrupt.correlation") };
  const bw = optRec(spec.bandwidth, "spec.bandwidth");
  if (bw) {
    out.bandwidth = {
      rateBytesPerSec: parseRate(bw.rate, "spec.bandwidth.rate"),
      limitBytes: integer(bw.limit, "spec.bandwidth.limit", 1, 2 ** 32 - 1),
      bufferBytes: integer(bw.buffer, "spec.bandwidth.buffer", 1, 2 ** 32 - 1),
    };
  }
  return out;
}

/** Reads a stored NetworkChaos. */
export function parseNetworkChaos(obj: unknown): ParseResult {
  try {
    const o = rec(obj, "");
    const meta = rec(o.metadata, "metadata");
    const name = meta.name;
    const namespace = meta.namespace;
    if (typeof name !== "string" || typeof namespace !== "string") throw new Bad("metadata", "name and namespace are required");
    const spec = rec(o.spec, "spec");
    const action = spec.action ?? "netem";
    if (action !== "netem" && action !== "partition") throw new Bad("spec.action", `must be netem or partition, got ${JSON.stringify(action)}`);
    const direction = spec.direction ?? "to";
    if (direction !== "to" && direction !== "from" && direction !== "both") throw new Bad("spec.direction", `must be to, from or both, got ${JSON.stringify(direction)}`);
    const target = optRec(spec.target, "spec.target");
    const protocol = spec.protocol === undefined ? 0 : PROTOCOLS[String(spec.protocol)];
    if (protocol === undefined) throw new Bad("spec.protocol", "must be TCP, UDP or ICMP");
    let ports: number[] | undefined;
    if (spec.ports !== undefined) {
      if (!Array.isArray(spec.ports)) throw new Bad("spec.ports", "must be a list of port numbers");
      ports = spec.ports.map((p, i) => integer(p, `spec.ports[${i}]`, 1, 65535));
    }
    const created = typeof meta.creationTimestamp === "string" ? Date.parse(meta.creationTimestamp) : NaN;
    const seed = spec.seed === undefined ? seedFrom(namespace, name) : integer(spec.seed, "spec.seed", 0, 2 ** 32 - 1);
    return {
      ok: true,
      chaos: {
        key: `${namespace}/${name}`,
        namespace,
        name,
        action,
        // Chaos Mesh: a selector without namespaces means the object's own namespace for pods.
        selector: selector(spec.selector ?? {}, "spec.selector"),
        target: target && target.selector !== undefined ? selector(target.selector, "spec.target.selector") : undefined,
        direction,
        protocol,
        ports,
        netem: netemParams(spec),
        startMs: Number.isFinite(created) ? created : 0,
        durationMs: spec.duration === undefined ? undefined : parseDurationMs(spec.duration, "spec.duration"),
        seed,
      },
    };
  } catch (err) {
    if (err instanceof Bad) return { ok: false, field: err.field, error: `${err.field}: ${err.message}` };
    return { ok: false, field: "", error: String(err) };
  }
}

/** When the chaos stops by itself (wall ms), or undefined: it runs until deleted. */
export function expiresAt(c: Pick<ParsedChaos, "startMs" | "durationMs">): number | undefined {
  return c.durationMs === undefined ? undefined : c.startMs + c.durationMs;
}
