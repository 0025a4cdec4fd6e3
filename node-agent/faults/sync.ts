/**
 * The node-agent's NetworkChaos programming: it is fed every NetworkChaos, Node and Pod the
 * agent's informers see, and on any change (coalesced) recompiles the whole fault set for this
 * node (compile.ts) and hands it to the datapath at once; when a fault's duration ends it
 * recompiles again. A stored object that does not read (spec.ts) is skipped and logged, never
 * fatal. Time and timers come in as parameters.
 */
import { parseCidr } from "../../cluster/addressing.ts";
import { nodeRecordFrom } from "../../cluster/kube-objects.ts";
import type { KubeObject } from "../../cluster/store.ts";
import { parseIpv4Addr } from "../../overlay/wire/index.ts";
import { compileChaos, type ChaosNode, type ChaosPod, type CompiledFault } from "./compile.ts";
import { parseNetworkChaos, type ParsedChaos } from "./spec.ts";

/** After a change, wait this long for more before recompiling (a pod list arrives as many events). */
const COALESCE_MS = 20;

export interface ChaosSyncOptions {
  node: string;
  apply: (faults: CompiledFault[]) => void;
  /** Wall-clock ms (durations run from creationTimestamp, a wall time). */
  wallNow: () => number;
  after: (ms: number, fn: () => void) => () => void;
  warn: (fields: Record<string, unknown>, message: string) => void;
}

export type ChaosKind = "NetworkChaos" | "Node" | "Pod";

function labelsOf(obj: KubeObject): Record<string, string> {
  const labels = obj.metadata?.labels;
  if (labels === null || typeof labels !== "object") return {};
  return Object.fromEntries(Object.entries(labels).filter(([, v]) => typeof v === "string")) as Record<string, string>;
}

export class ChaosSync {
  private readonly chaos = new Map<string, ParsedChaos>();
  private readonly nodes = new Map<string, ChaosNode>();
  private readonly pods = new Map<string, ChaosPod>();
  /** Objects that did not read, by key, with the resourceVersion warned about (warn once). */
  private readonly bad = new Map<string, string>();
  private pending: (() => void) | undefined;
  private expiry: (() => void) | undefined;
  private applied = 0;

  constructor(private readonly opts: ChaosSyncOptions) {}

  observe(kind: ChaosKind, obj: KubeObject, deleted: boolean): void {
    const name = obj.metadata?.name;
    if (typeof name !== "string") return;
    const ns = typeof obj.metadata?.namespace === "string" ? obj.metadata.namespace : "";
    const key = `${ns}/${name}`;
    if (kind === "NetworkChaos") {
      const parsed = deleted ? undefined : parseNetworkChaos(obj);
      if (parsed && !parsed.ok) {
        const rv = String(obj.metadata?.resourceVersion ?? "");
        if (this.bad.get(key) !== rv) this.opts.warn({ networkChaos: key, error: parsed.error }, "NetworkChaos not applied: it does not read");
        this.bad.set(key, rv);
      } else {
        this.bad.delete(key);
      }
      if (parsed?.ok) this.chaos.set(key, parsed.chaos);
      else this.chaos.delete(key);
    } else if (kind === "Node") {
      const record = deleted ? undefined : nodeRecordFrom(obj);
      if (!record) this.nodes.delete(name);
      else this.nodes.set(name, { name, labels: labelsOf(obj), podCidr: parseCidr(record.podCidr), internalIp: parseIpv4Addr(record.internalIp) });
    } else {
      const ipText = (obj.status as { podIP?: unknown } | undefined)?.podIP;
      const nodeName = (obj.spec as { nodeName?: unknown } | undefined)?.nodeName;
      const ip = typeof ipText === "string" ? parseIpv4Addr(ipText) : undefined;
      if (deleted || ip === undefined) this.pods.delete(key);
      else this.pods.set(key, { namespace: ns, name, labels: labelsOf(obj), ip, node: typeof nodeName === "string" ? nodeName : undefined });
    }
    // Pods and nodes matter only while some chaos exists (or one was just removed).
    if (kind === "NetworkChaos" || this.chaos.size > 0 || this.applied > 0) this.requestSync();
  }

  private requestSync(): void {
    if (this.pending) return;
    this.pending = this.opts.after(COALESCE_MS, () => {
      this.pending = undefined;
      this.sync();
    });
  }

  /** Recompiles now: the whole set, from the objects as they are. */
  sync(): void {
    const now = this.opts.wallNow();
    const { faults, nextChangeMs } = compileChaos([...this.chaos.values()], { nodes: [...this.nodes.values()], pods: [...this.pods.values()] }, this.opts.node, now);
    this.opts.apply(faults);
    this.applied = faults.length;
    this.expiry?.();
    this.expiry = nextChangeMs === undefined ? undefined : this.opts.after(Math.max(0, nextChangeMs - now) + 1, () => this.sync());
  }

  stop(): void {
    this.pending?.();
    this.expiry?.();
    this.pending = this.expiry = undefined;
  }
}
