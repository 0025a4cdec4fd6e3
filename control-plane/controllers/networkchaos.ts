/**
 * The NetworkChaos status controller: where each NetworkChaos is applied and what it did.
 *
 * Who writes what: node-agents never write cluster state (DESIGN.md); each keeps, per fault it
 * applies, cumulative counters (node-agent/faults/netem.ts) and answers the `fault` verb with
 * `stats: true`. This controller, level-triggered, every couple of seconds lists the
 * NetworkChaos objects and the Nodes, asks every node for its counters, computes each object's
 * whole status from that (desiredChaosStatus, pure) and writes it through the status
 * subresource when it differs.
 *
 * Nodes coming and going: a node that answers and applies the fault reports its counters; one
 * that answers without it (the fault expired, or its pods moved away) or does not answer this
 * round (paused, restarting) keeps its last entry, since what it did happened; a node whose Node
 * object is gone leaves the status. A restarted node-agent starts its counters from zero.
 */
import type { Clock } from "../../cluster/clock.ts";
import type { Logger } from "../../cluster/log.ts";
import { deepEqual, rfc3339 } from "../../cluster/meta.ts";
import { resourceByKind } from "../../cluster/resources.ts";
import type { KubeObject } from "../../cluster/store.ts";
import type { FaultStatsResponse } from "../../cluster/types.ts";
import { parseDuration } from "../../cluster/syntax.ts";
import type { Registry } from "../api/registry.ts";
import { ApiError } from "../api/status.ts";

const CHAOS = resourceByKind("NetworkChaos");
const NODES = resourceByKind("Node");
export const CHAOS_STATUS_INTERVAL_MS = 2000;
const NODE_TIMEOUT_MS = 1500;

const COUNTERS = ["packets", "delayed", "dropped", "duplicated", "corrupted", "reordered"] as const;
type Counters = Record<(typeof COUNTERS)[number], number>;

export interface ChaosNodeStatus extends Counters {
  node: string;
}

export interface ChaosCondition {
  type: "Active" | "Expired";
  status: "True" | "False";
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface ChaosStatus {
  phase: "Pending" | "Active" | "Expired";
  nodes: ChaosNodeStatus[];
  totals: Counters;
  conditions: ChaosCondition[];
  expiresAt?: string;
}

/** A node's answer this round: the counters by "namespace/name", or undefined (no answer). */
export type NodeReports = ReadonlyMap<string, ReadonlyMap<string, Counters> | undefined>;

function rec(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function counters(v: unknown): Counters {
  const r = rec(v);
  const out = {} as Counters;
  for (const k of COUNTERS) out[k] = typeof r[k] === "number" && Number.isFinite(r[k]) ? (r[k] as number) : 0;
  return out;
}

/** When the object's duration ends (wall ms), or undefined. A duration that does not read counts as none. */
export function chaosExpiry(obj: KubeObject): number | undefined {
  const d = rec(obj.spec).duration;
  const ms = typeof d === "string" ? parseDuration(d) : undefined;
  const created = Date.parse(String(obj.metadata?.creationTimestamp ?? ""));
  return ms !== undefined && Number.isFinite(created) ? created + ms : undefined;
}

/** The whole status of one NetworkChaos from the nodes' reports (pure: time is `nowMs`). */
export function desiredChaosStatus(obj: KubeObject, reports: NodeReports, nowMs: number): ChaosStatus {
  const key = `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
  const prev = rec(obj.status);
  const prevNodes = new Map<string, ChaosNodeStatus>();
  for (const e of Array.isArray(prev.nodes) ? prev.nodes : []) {
    const name = rec(e).node;
    if (typeof name === "string") prevNodes.set(name, { node: name, ...counters(e) });
  }
  const nodes: ChaosNodeStatus[] = [];
  let applying = 0;
  for (const [node, report] of [...reports].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const mine = report?.get(key);
    if (mine) {
      applying++;
      nodes.push({ node, ...counters(mine) });
    } else if (prevNodes.has(node)) {
      nodes.push(prevNodes.get(node)!);
    }
  }
  const totals = counters({});
  for (const n of nodes) for (const k of COUNTERS) totals[k] += n[k];
  const end = chaosExpiry(obj);
  const expired = end !== undefined && nowMs >= end;
  const phase = expired ? "Expired" : applying > 0 ? "Active" : "Pending";
  const prevConditions = (Array.isArray(prev.conditions) ? prev.conditions : []).map(rec);
  const condition = (type: ChaosCondition["type"], on: boolean, reason: string, message: string): ChaosCondition => {
    const status = on ? "True" : "False";
    const old = prevConditions.find((c) => c.type === type);
    // lastTransitionTime moves only when the status does (metav1.Condition).
    const since = old && old.status === status && typeof old.lastTransitionTime === "string" ? old.lastTransitionTime : rfc3339(new Date(nowMs));
    return { type, status, reason, message, lastTransitionTime: since };
  };
  const active = phase === "Active";
  return {
    phase,
    nodes,
    totals,
    conditions: [
      condition("Active", active, active ? "Applied" : expired ? "DurationEnded" : "NoNodeApplies", active ? `applied on ${applying} node(s)` : expired ? "the duration has ended" : "no node applies it (nothing selected, or nodes not reporting yet)"),
      condition("Expired", expired, expired ? "DurationEnded" : "Running", expired ? `ended at ${rfc3339(new Date(end!))}` : end !== undefined ? `runs until ${rfc3339(new Date(end))}` : "runs until deleted"),
    ],
    ...(end !== undefined ? { expiresAt: rfc3339(new Date(end)) } : {}),
  };
}

export class NetworkChaosStatus {
  private cancel: (() => void) | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly registry: Registry,
    /** The `fault` verb with `stats: true` on one node (the NATS request, at the process edge). */
    private readonly nodeStats: (node: string, timeoutMs: number) => Promise<FaultStatsResponse>,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly intervalMs = CHAOS_STATUS_INTERVAL_MS,
  ) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.syncAll()
        .catch((err: unknown) => this.log.warn({ err: (err as Error)?.message ?? String(err) }, "network chaos status sync failed; retrying"))
        .finally(() => {
          if (!this.stopped) this.cancel = this.clock.after(this.intervalMs, tick);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancel?.();
    await this.running;
  }

  /** One round: every object's status from every node's counters. */
  async syncAll(): Promise<void> {
    const { items } = await this.registry.list(CHAOS, undefined);
    if (items.length === 0) return;
    const nodes = (await this.registry.list(NODES, undefined)).items.flatMap((n) => (typeof n.metadata?.name === "string" ? [n.metadata.name] : []));
    const reports = new Map<string, Map<string, Counters> | undefined>();
    await Promise.all(
      nodes.map(async (node) => {
        const res = await this.nodeStats(node, NODE_TIMEOUT_MS).catch(() => undefined);
        reports.set(node, res && Array.isArray(res.faults) ? new Map(res.faults.filter((f) => typeof f?.key === "string").map((f) => [f.key, counters(f)])) : undefined);
      }),
    );
    const now = this.clock.now().getTime();
    for (const obj of items) {
      const status = desiredChaosStatus(obj, reports, now);
      if (deepEqual(status, obj.status)) continue;
      const ns = obj.metadata?.namespace;
      const name = obj.metadata?.name;
      if (typeof name !== "string") continue;
      await this.registry.update(CHAOS, ns, name, { ...obj, status }, { subresource: "status" }).catch((err: unknown) => {
        // Gone, or changed since the list (409): the next round writes from the newer object.
        if (err instanceof ApiError && (err.status.code === 404 || err.status.code === 409)) return;
        throw err;
      });
    }
  }
}
