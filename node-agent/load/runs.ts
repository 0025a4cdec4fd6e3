/**
 * The node's side of `kubewire load` (the `load` verb): load clients and servers running in this
 * node's pods, by run. A client streams its snapshots to the CLI's inbox (msgpack, as trace and
 * capture stream theirs); a server lives until the run stops it or its lifetime ends, so a CLI
 * that died leaves nothing bound for long.
 */
import { pack } from "msgpackr";
import { RpcError } from "../../cluster/rpc.ts";
import { ErrorCode, STREAM_ID_PATTERN, Subjects, type LoadRequest, type LoadScenario, type LoadSnapshot, type LoadWorkload } from "../../cluster/types.ts";
import { IpProtocol, formatIpv4 } from "../../overlay/wire/index.ts";
import type { Conntrack } from "../conntrack.ts";
import type { PodNetwork } from "../node.ts";
import { realClock } from "../tools/common.ts";
import { MAX_RESPONSE_BYTES, MAX_UDP_BYTES } from "./protocol.ts";
import { startLoadServer } from "./server.ts";
import { startLoadClient, type LoadClient } from "./worker.ts";

const SCENARIOS: readonly LoadScenario[] = ["http", "tcp-rr", "tcp-stream", "udp-rr"];
/** Bounds on what one request may ask of a node. */
const MAX_DURATION_MS = 3_600_000;
const MAX_CONNECTIONS = 10_000;
const MAX_RATE = 1_000_000;

export interface LoadRunsEnv {
  node: string;
  findPod(namespace: string, name: string): PodNetwork;
  /** The node's root netns conntrack (kube-proxy's DNAT of pods' Service traffic is there) and its clock. */
  rootConntrack: Conntrack;
  now(): number;
  publish(subject: string, data: Uint8Array): void;
}

interface Running {
  clients: Set<LoadClient>;
  servers: Set<() => void>;
}

export class LoadRuns {
  private readonly runs = new Map<string, Running>();

  constructor(private readonly env: LoadRunsEnv) {}

  private run(id: string): Running {
    let r = this.runs.get(id);
    if (!r) this.runs.set(id, (r = { clients: new Set(), servers: new Set() }));
    return r;
  }

  private forget(id: string): void {
    const r = this.runs.get(id);
    if (r && r.clients.size === 0 && r.servers.size === 0) this.runs.delete(id);
  }

  async handle(req: LoadRequest): Promise<{ started: true } | { stopped: number }> {
    if (typeof req?.runId !== "string" || !/^[A-Za-z0-9-]{1,64}$/.test(req.runId)) throw new RpcError(ErrorCode.Invalid, "load: runId must be 1-64 letters, digits or '-'");
    if (req.op === "stop") return { stopped: this.stop(req.runId) };
    if (req.op !== "client" && req.op !== "server") throw new RpcError(ErrorCode.Invalid, `load: op must be client, server or stop, got ${JSON.stringify(req.op)}`);
    if (typeof req.pod !== "string" || req.pod === "") throw new RpcError(ErrorCode.Invalid, "load: a pod is required");
    const pod = this.env.findPod(typeof req.namespace === "string" ? req.namespace : "default", req.pod);
    return req.op === "server" ? this.server(req, pod) : this.client(req, pod);
  }

  /** Stops the run's clients (each publishes its final snapshot) and servers; how many there were. */
  stop(runId: string): number {
    const r = this.runs.get(runId);
    if (!r) return 0;
    for (const c of r.clients) c.stop();
    for (const s of r.servers) s();
    const n = r.clients.size + r.servers.size;
    r.servers.clear();
    this.forget(runId);
    return n;
  }

  private server(req: LoadRequest, pod: PodNetwork): { started: true } {
    const port = req.port;
    if (!(typeof port === "number" && Number.isInteger(port) && port >= 1 && port <= 65535)) throw new RpcError(ErrorCode.Invalid, `load: server port must be in 1-65535, got ${JSON.stringify(port)}`);
    const scenario = req.scenario;
    if (!SCENARIOS.includes(scenario as LoadScenario)) throw new RpcError(ErrorCode.Invalid, `load: unknown scenario ${JSON.stringify(scenario)}`);
    const lifetime = clampNumber(req.lifetimeMs, 1, MAX_DURATION_MS, "lifetimeMs");
    const res = startLoadServer({ tcp: pod.ns.tcp, udp: pod.ns }, scenario!, port);
    if (res.kind === "inUse") throw new RpcError(ErrorCode.AlreadyExists, `load: port ${port}/${scenario === "udp-rr" ? "UDP" : "TCP"} is already in use in pod ${pod.record.name}`);
    if (res.kind === "invalid") throw new RpcError(ErrorCode.Invalid, `load: ${res.message}`);
    const run = this.run(req.runId);
    const timer = setTimeout(() => stop(), lifetime);
    timer.unref?.();
    const stop = () => {
      clearTimeout(timer);
      res.stop();
      run.servers.delete(stop);
      this.forget(req.runId);
    };
    run.servers.add(stop);
    return { started: true };
  }

  private client(req: LoadRequest, pod: PodNetwork): { started: true } {
    if (typeof req.stream !== "string" || !STREAM_ID_PATTERN.test(req.stream)) throw new RpcError(ErrorCode.Invalid, "load: a client needs a stream id for its snapshots");
    const workload = checkWorkload(req.workload);
    const subject = Subjects.stream(this.env.node, req.stream);
    const { rootConntrack, now } = this.env;
    const client = startLoadClient(
      {
        tcp: pod.ns.tcp,
        udp: pod.ns,
        clock: realClock,
        localIp: pod.ip,
        endpointOf: (proto, localPort, dst, dstPort, localIp) => {
          const found = rootConntrack.find({ proto: proto === "tcp" ? IpProtocol.TCP : IpProtocol.UDP, src: localIp ?? pod.ip, dst, sport: localPort, dport: dstPort }, now());
          // The reply tuple's source is whoever answers: the endpoint kube-proxy chose.
          return formatIpv4(found.kind === "found" && found.entry.dnat ? found.entry.tuple[1].src : dst);
        },
      },
      { runId: req.runId, worker: typeof req.worker === "string" ? req.worker : `${this.env.node}/${pod.record.name}`, node: this.env.node, workload, publish: (s: LoadSnapshot) => this.env.publish(subject, pack(s)) },
    );
    const run = this.run(req.runId);
    run.clients.add(client);
    void client.done.finally(() => {
      run.clients.delete(client);
      this.forget(req.runId);
    });
    return { started: true };
  }
}

function clampNumber(v: unknown, min: number, max: number, name: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) throw new RpcError(ErrorCode.Invalid, `load: ${name} must be a number in [${min}, ${max}], got ${JSON.stringify(v)}`);
  return v;
}

/** A workload from the wire, checked field by field (a bad one is an Invalid error, never a crash). */
export function checkWorkload(w: LoadWorkload | undefined): LoadWorkload {
  if (typeof w !== "object" || w === null) throw new RpcError(ErrorCode.Invalid, "load: a client needs a workload");
  if (!SCENARIOS.includes(w.scenario)) throw new RpcError(ErrorCode.Invalid, `load: unknown scenario ${JSON.stringify(w.scenario)}`);
  if (!Array.isArray(w.targets) || w.targets.length === 0 || w.targets.length > 1000) throw new RpcError(ErrorCode.Invalid, "load: 1-1000 targets");
  const targets = w.targets.map((t) => {
    if (typeof t?.ip !== "string" || !/^\d{1,3}(\.\d{1,3}){3}$/.test(t.ip)) throw new RpcError(ErrorCode.Invalid, `load: target ip ${JSON.stringify(t?.ip)}`);
    return { ip: t.ip, port: clampNumber(t.port, 1, 65535, "target port") };
  });
  const maxBytes = w.scenario === "udp-rr" ? MAX_UDP_BYTES : MAX_RESPONSE_BYTES;
  return {
    scenario: w.scenario,
    targets,
    connections: Math.floor(clampNumber(w.connections, 1, MAX_CONNECTIONS, "connections")),
    rate: clampNumber(w.rate, 0, MAX_RATE, "rate"),
    durationMs: clampNumber(w.durationMs, 1, MAX_DURATION_MS, "durationMs"),
    timeoutMs: clampNumber(w.timeoutMs, 1, 600_000, "timeoutMs"),
    requestBytes: Math.floor(clampNumber(w.requestBytes, 0, maxBytes, "requestBytes")),
    responseBytes: Math.floor(clampNumber(w.responseBytes, 0, maxBytes, "responseBytes")),
    intervalMs: clampNumber(w.intervalMs, 100, 60_000, "intervalMs"),
    reuse: w.reuse !== false,
  };
}
