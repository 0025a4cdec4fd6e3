/**
 * The node-agent's edges: NATS in and out. It registers the node, keeps the network in step
 * with the control plane's KV (peers and pods, level-triggered: every change recomputes the
 * whole desired state), carries VTEP frames over the NATS transport, and answers the CLI's
 * exec, trace, capture and status requests.
 */
import type { KV, NatsConnection, Subscription } from "nats";
import { pack } from "msgpackr";
import { mustParseCidr } from "../api/addressing.ts";
import type { NodeAgentConfig } from "../api/config.ts";
import { openBucket } from "../api/kv.ts";
import type { Logger } from "../api/log.ts";
import { RpcError, request, serve } from "../api/rpc.ts";
import {
  Buckets,
  ErrorCode,
  Subjects,
  type CaptureRequest,
  type CapturedFrame,
  type ExecRequest,
  type ExecResult,
  type NodeRecord,
  type NodeStatus,
  type PodRecord,
  type RegisterNodeRequest,
  type TraceRequest,
} from "../api/types.ts";
import { NatsOverlayTransport } from "../overlay/nats-transport.ts";
import { decodeBatch, parseIpv4Addr } from "../overlay/wire/index.ts";
import { Datapath, Tracer, type Receiver } from "./datapath.ts";
import type { UnderlayLink } from "./devices.ts";
import { NodeNetwork, type PodNetwork } from "./node.ts";
import { realClock } from "./tools/common.ts";
import { runTool } from "./tools/index.ts";

const TICK_MS = 200;

export class NodeAgent {
  private readonly subs: Subscription[] = [];
  private readonly watchers: Array<{ stop(): void }> = [];
  private timer: NodeJS.Timeout | undefined;
  private transport!: NatsOverlayTransport;
  private peers = new Map<string, NodeRecord>();
  private podRecords = new Map<string, PodRecord>();
  private readonly podApps = new Map<string, () => void>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly cfg: NodeAgentConfig,
    private readonly log: Logger,
    readonly dp: Datapath,
    readonly net: NodeNetwork,
  ) {}

  static async start(nc: NatsConnection, cfg: NodeAgentConfig, log: Logger): Promise<NodeAgent> {
    const record = await registerWithRetry(nc, { name: cfg.nodeName, hostAddress: cfg.hostAddress }, log);
    const dp = new Datapath(cfg.nodeName, () => performance.now());
    let transport: NatsOverlayTransport | undefined;
    const underlay: UnderlayLink = {
      send: (node, frame, tr) => {
        dp.tap("eth0", frame, "tx");
        tr?.hop("NATS", `publish ${Subjects.overlay(cfg.vni, node)}`);
        transport!.send(node, frame, tr ? { traceId: tr.id, seq: tr.nextSeq } : undefined);
      },
    };
    const net = new NodeNetwork(dp, record, cfg.vni, underlay, mustParseCidr(cfg.underlayCidr));
    const agent = new NodeAgent(nc, cfg, log, dp, net);
    const fromUnderlay: Receiver = (frame, tr) => net.receiveUnderlay(frame, tr);
    transport = new NatsOverlayTransport(nc, cfg.vni, cfg.nodeName, (message, trace) => {
      const batch = decodeBatch(message);
      if (!batch.ok) {
        dp.counters.inc("overlay_rx_dropped_total");
        dp.counters.inc("overlay_rx_dropped_batch_total");
        return;
      }
      const tr = trace ? new Tracer(trace.traceId, cfg.nodeName, trace.seq, agent.traceSink(trace.traceId)) : undefined;
      for (const frame of batch.value) dp.send(fromUnderlay, frame, tr);
    });
    agent.transport = transport;
    await agent.watch();
    agent.serveVerbs();
    agent.timer = setInterval(() => net.tick(), TICK_MS);
    log.info({ node: record.name, podCidr: record.podCidr, internalIp: record.internalIp, vtepMac: record.vtepMac }, "node-agent ready");
    return agent;
  }

  private traceSink(traceId: string): (hop: import("../api/types.ts").TraceHop) => void {
    const subject = Subjects.trace(traceId);
    return (hop) => this.nc.publish(subject, pack(hop));
  }

  private async watch(): Promise<void> {
    const nodes = await openBucket(this.nc, Buckets.nodes);
    const pods = await openBucket(this.nc, Buckets.pods);
    await Promise.all([
      this.follow(nodes, (key, value) => {
        if (value) this.peers.set(key, value as NodeRecord);
        else this.peers.delete(key);
        this.net.syncPeers([...this.peers.values()]);
        this.log.info({ node: this.cfg.nodeName, peer: key, peers: this.peers.size - 1, op: value ? "put" : "delete" }, "peers synced");
      }),
      this.follow(pods, (key, value) => {
        if (value) this.podRecords.set(key, value as PodRecord);
        else this.podRecords.delete(key);
        this.syncPods();
      }),
    ]);
  }

  /** Lists then watches a bucket; resolves once the initial values are in. */
  private async follow(kv: KV, apply: (key: string, value: unknown) => void): Promise<void> {
    let initialized!: () => void;
    const ready = new Promise<void>((resolve) => (initialized = resolve));
    const iter = await kv.watch({ initializedFn: () => initialized() });
    this.watchers.push(iter);
    void (async () => {
      for await (const e of iter) {
        try {
          apply(e.key, e.operation === "PUT" ? e.json<unknown>() : undefined);
        } catch (err) {
          this.log.error({ node: this.cfg.nodeName, err, key: e.key }, "bad KV entry ignored");
        }
      }
    })();
    await ready;
  }

  /** Converges the pods on this node to the desired set from KV. */
  private syncPods(): void {
    const desired = new Map([...this.podRecords].filter(([, p]) => p.nodeName === this.cfg.nodeName));
    for (const key of this.net.podKeys()) {
      const want = desired.get(key);
      const have = this.net.pod(key)!;
      if (!want || want.podIp !== have.record.podIp) {
        this.podApps.get(key)?.();
        this.podApps.delete(key);
        this.net.removePod(key);
        this.log.info({ node: this.cfg.nodeName, pod: have.record.name, namespace: have.record.namespace }, "pod network removed");
      }
    }
    for (const [key, record] of desired) {
      if (this.net.pod(key)) continue;
      const pod = this.net.addPod(key, record);
      this.podApps.set(key, startApps(pod));
      this.log.info({ node: this.cfg.nodeName, pod: record.name, namespace: record.namespace, podIp: record.podIp, veth: pod.hostVeth.name }, "pod network added");
    }
  }

  private findPod(namespace: string, name: string): PodNetwork {
    const pod = this.net.pod(`${namespace ?? "default"}.${name}`);
    if (!pod) throw new RpcError(ErrorCode.NotFound, `pod "${name}" not found on node ${this.cfg.nodeName}`);
    return pod;
  }

  private serveVerbs(): void {
    const node = this.cfg.nodeName;
    const on = <Req, Res>(verb: Parameters<typeof Subjects.node>[1], handler: (req: Req) => Promise<Res>) =>
      this.subs.push(serve(this.nc, Subjects.node(node, verb), this.log, handler, { concurrent: true }));

    on("status", async (): Promise<NodeStatus> => ({
      node: this.net.record,
      pods: this.net.podKeys(),
      devices: this.net.devices(),
      counters: { ...this.dp.counters.snapshot(), overlay_tx_messages_total: this.transport.stats.messages, overlay_tx_frames_total: this.transport.stats.frames },
    }));

    on("exec", async (req: ExecRequest): Promise<ExecResult> => {
      const pod = this.findPod(req.namespace, req.pod);
      this.log.info({ node, pod: req.pod, argv: req.argv }, "exec");
      return runTool({ ns: pod.ns, podName: pod.record.name, clock: realClock }, req.argv ?? []);
    });

    on("trace", async (req: TraceRequest): Promise<{ started: true }> => {
      const pod = this.findPod(req.namespace, req.pod);
      const dst = parseIpv4Addr(req.dst ?? "");
      if (dst === undefined) throw new RpcError(ErrorCode.Invalid, `not an IPv4 address: ${JSON.stringify(req.dst)}`);
      const tr = new Tracer(req.traceId, node, 0, this.traceSink(req.traceId));
      const res = pod.ns.sendIcmp(dst, { kind: "echoRequest", ident: 0x7472, seq: 1, data: new Uint8Array(56) }, { tr });
      if (res.kind !== "sent") tr.hop(`${pod.record.name} eth0`, `send failed: ${res.kind}`, "dropped");
      return { started: true };
    });

    on("capture", async (req: CaptureRequest): Promise<{ started: true }> => {
      if (!this.net.devices().includes(req.dev)) {
        throw new RpcError(ErrorCode.NotFound, `device "${req.dev}" not found on node ${node} (devices: ${this.net.devices().join(", ")})`);
      }
      let captured = 0;
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        remove();
        clearTimeout(timer);
        this.nc.publish(req.inbox, new Uint8Array(0));
        this.log.info({ node, dev: req.dev, frames: captured }, "capture finished");
      };
      const remove = this.dp.addTap(req.dev, (frame) => {
        const msg: CapturedFrame = { timestampMicros: Date.now() * 1000, frame };
        this.nc.publish(req.inbox, pack(msg));
        if (req.count !== undefined && ++captured >= req.count) finish();
      });
      timer = setTimeout(finish, (req.seconds ?? 60) * 1000);
      this.log.info({ node, dev: req.dev, count: req.count, seconds: req.seconds }, "capture started");
      return { started: true };
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const w of this.watchers) w.stop();
    for (const s of this.subs) s.unsubscribe();
    await this.transport.close();
  }
}

/** The emulated app of a pod: a UDP echo server on every declared UDP containerPort. */
function startApps(pod: PodNetwork): () => void {
  const ports: number[] = [];
  for (const p of pod.record.ports) {
    if (p.protocol !== "UDP") continue;
    const bound = pod.ns.bindUdp(p.containerPort, (payload, meta) => pod.ns.sendUdp(meta.src, meta.srcPort, meta.dstPort, payload));
    if (bound.kind === "bound") ports.push(p.containerPort);
  }
  return () => ports.forEach((port) => pod.ns.unbindUdp(port));
}

async function registerWithRetry(nc: NatsConnection, req: RegisterNodeRequest, log: Logger): Promise<NodeRecord> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request<NodeRecord>(nc, Subjects.registerNode, req, 2000);
    } catch (err) {
      // The control plane may start after us; anything but "nobody answers yet" is fatal.
      if (!(err instanceof RpcError) || (err.code !== ErrorCode.NotFound && err.code !== ErrorCode.Internal)) throw err;
      if (attempt % 20 === 1) log.warn({ node: req.name, attempt }, "control plane not answering yet; retrying");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
