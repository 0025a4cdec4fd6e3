/**
 * The emulated cloud load balancer's data plane: real sockets in the control-plane process, as a
 * cloud's L4 load balancer sits in front of a cluster's NodePorts.
 *
 * - TCP: a server on lbIP:port per Service port; each accepted client is piped to one node's
 *   hostAddress:nodePort (half-close passed through, a reset answered with a reset). No
 *   backend, or a backend that refuses: the client gets a reset, as from a load balancer
 *   without healthy targets.
 * - UDP: a socket on lbIP:port; each client address:port is a flow (./flows.ts) bound to one
 *   node, relayed through a socket of its own so the node's replies go back to that client from
 *   lbIP:port.
 * - Health checks for externalTrafficPolicy Local: every node's healthCheckNodePort gets
 *   `GET /` every 2 s with a 1 s timeout; only 200 counts as healthy (kube-proxy's
 *   pkg/proxy/healthcheck service server answers 503 without local endpoints).
 *
 * Level-triggered: update() takes the whole desired state and the listeners are made to match
 * it; the periodic resync does it again, so a bind that failed (EADDRINUSE, EADDRNOTAVAIL,
 * EACCES below port 1024) is logged and retried, never thrown. Which node gets a connection is
 * the pure logic of ./balancing.ts.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { request as httpRequest } from "node:http";
import { connect as tcpConnect, createServer, type Server, type Socket } from "node:net";
import type { Clock } from "../../cluster/clock.ts";
import type { Logger } from "../../cluster/log.ts";
import { eligibleBackends, HealthTable, healthTargets, RoundRobin, sourceAllowed, type HealthState, type HealthTarget, type LbNode, type ListenerSpec } from "./balancing.ts";
import { FlowTable } from "./flows.ts";

export interface DataPlaneOptions {
  /** How often every health check target is probed (cloud load balancers: a few seconds). */
  readonly healthIntervalMs: number;
  /** A probe not answered within this counts as failed. */
  readonly healthTimeoutMs: number;
  /** How often the listeners are made to match the desired state again (bind retries). */
  readonly resyncMs: number;
  /** A UDP flow idle this long is forgotten (nf_conntrack_udp_timeout: 30 s). */
  readonly udpIdleMs: number;
  /** At most this many UDP flows per listener; the least recently used one makes room. */
  readonly udpMaxFlows: number;
}

export const DEFAULT_DATA_PLANE_OPTIONS: DataPlaneOptions = {
  healthIntervalMs: 2000,
  healthTimeoutMs: 1000,
  resyncMs: 2000,
  udpIdleMs: 30_000,
  udpMaxFlows: 4096,
};

/** One health check: true only when the target answered in time and healthily. Never rejects. */
export type HealthProbe = (host: string, port: number, timeoutMs: number) => Promise<boolean>;

/** GET http://host:port/ answered 200 within the timeout. */
export const httpHealthProbe: HealthProbe = (host, port, timeoutMs) =>
  new Promise<boolean>((resolve) => {
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(ok);
    };
    const req = httpRequest({ host, port, path: "/", method: "GET", agent: false, headers: { "user-agent": "kubewire-cloud-lb-health-check" } }, (res) => {
      res.resume();
      done(res.statusCode === 200);
    });
    const timer = setTimeout(() => {
      done(false);
      req.destroy();
    }, timeoutMs);
    req.on("error", () => done(false));
    req.end();
  });

interface TcpListener {
  readonly kind: "TCP";
  spec: ListenerSpec;
  readonly server: Server;
  open: boolean;
  readonly conns: Set<Socket>;
}

interface UdpFlow {
  readonly socket: UdpSocket;
  readonly node: string;
  readonly host: string;
  readonly port: number;
}

interface UdpListener {
  readonly kind: "UDP";
  spec: ListenerSpec;
  readonly socket: UdpSocket;
  open: boolean;
  readonly flows: FlowTable<UdpFlow>;
}

type Listener = TcpListener | UdpListener;

const errCode = (err: unknown): string => (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err);

function closeUdp(socket: UdpSocket): void {
  try {
    socket.close();
  } catch {
    /* already closed */
  }
}

export class LoadBalancerDataPlane {
  private readonly opts: DataPlaneOptions;
  private desired = new Map<string, ListenerSpec>();
  private nodes: LbNode[] = [];
  private readonly listeners = new Map<string, Listener>();
  private readonly health = new HealthTable();
  private readonly rr = new RoundRobin();
  /** Targets probed right now, and the set the last round wanted. */
  private readonly probing = new Set<string>();
  private targets = new Map<string, HealthTarget>();
  /** The bind error last logged at warn per listener, so a retry every resync is not a warning each time. */
  private readonly bindErrors = new Map<string, string>();
  private readonly timers: Array<() => void> = [];
  private stopped = false;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    opts: Partial<DataPlaneOptions> = {},
    private readonly probe: HealthProbe = httpHealthProbe,
  ) {
    this.opts = { ...DEFAULT_DATA_PLANE_OPTIONS, ...opts };
  }

  /** The whole desired state: every listener and every node. */
  update(listeners: readonly ListenerSpec[], nodes: readonly LbNode[]): void {
    if (this.stopped) return;
    this.desired = new Map(listeners.map((l) => [l.id, l]));
    this.nodes = [...nodes];
    this.converge();
    // New targets are checked at once: a new Local listener need not wait a whole interval.
    this.checkHealth(false);
  }

  start(): void {
    const every = (ms: number, fn: () => void) => {
      const tick = () => {
        if (this.stopped) return;
        try {
          fn();
        } catch (err) {
          this.log.error({ err: (err as Error)?.message ?? String(err) }, "load balancer periodic task failed");
        }
        this.timers.push(this.clock.after(ms, tick));
      };
      this.timers.push(this.clock.after(ms, tick));
    };
    every(this.opts.resyncMs, () => {
      this.converge();
      this.expireFlows();
    });
    every(this.opts.healthIntervalMs, () => this.checkHealth(true));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const cancel of this.timers.splice(0)) cancel();
    await Promise.all([...this.listeners.values()].map((l) => this.close(l, "stopping")));
  }

  /** What is listening and the health of each target (tests, debugging). */
  snapshot(): { listening: string[]; binding: string[]; health: Record<string, HealthState> } {
    const ls = [...this.listeners.values()];
    const health: Record<string, HealthState> = {};
    for (const key of this.targets.keys()) {
      const s = this.health.get(key);
      if (s) health[key] = s;
    }
    return { listening: ls.filter((l) => l.open).map((l) => l.spec.id).sort(), binding: ls.filter((l) => !l.open).map((l) => l.spec.id).sort(), health };
  }

  // ------------------------------------------------------------------ listeners

  private converge(): void {
    if (this.stopped) return;
    for (const [id, l] of this.listeners) if (!this.desired.has(id)) void this.close(l, "no longer wanted");
    for (const spec of this.desired.values()) {
      const l = this.listeners.get(spec.id);
      if (!l) {
        this.open(spec);
        continue;
      }
      if (l.spec.nodePort !== spec.nodePort || l.spec.healthCheckNodePort !== spec.healthCheckNodePort || l.spec.service !== spec.service) {
        this.log.info({ listener: spec.id, service: spec.service, nodePort: spec.nodePort, healthCheckNodePort: spec.healthCheckNodePort }, "load balancer listener retargeted");
        // Flows to the old nodePort would go nowhere: new datagrams pick a node again.
        if (l.kind === "UDP" && l.spec.nodePort !== spec.nodePort) for (const f of l.flows.clear()) closeUdp(f.socket);
      }
      l.spec = spec;
    }
    this.rr.retain(new Set(this.desired.keys()));
  }

  private open(spec: ListenerSpec): void {
    if (spec.protocol === "TCP") {
      const server = createServer({ allowHalfOpen: true });
      const l: TcpListener = { kind: "TCP", spec, server, open: false, conns: new Set() };
      this.listeners.set(spec.id, l);
      server.on("connection", (client) => this.accept(l, client));
      server.on("error", (err) => this.failed(l, err));
      server.listen({ host: spec.ip, port: spec.port, exclusive: true }, () => this.opened(l));
      return;
    }
    const socket = createSocket({ type: "udp4" });
    const l: UdpListener = { kind: "UDP", spec, socket, open: false, flows: new FlowTable(this.opts.udpMaxFlows, this.opts.udpIdleMs) };
    this.listeners.set(spec.id, l);
    socket.on("error", (err) => this.failed(l, err));
    socket.on("message", (msg, rinfo) => this.datagram(l, msg, rinfo));
    socket.bind({ address: spec.ip, port: spec.port, exclusive: true }, () => this.opened(l));
  }

  private opened(l: Listener): void {
    if (this.listeners.get(l.spec.id) !== l) {
      void this.close(l, "no longer wanted");
      return;
    }
    l.open = true;
    this.bindErrors.delete(l.spec.id);
    this.log.info({ listener: l.spec.id, service: l.spec.service, nodePort: l.spec.nodePort, healthCheckNodePort: l.spec.healthCheckNodePort }, "load balancer listening");
  }

  /** A bind or socket error: the listener goes, and the next resync opens it again. */
  private failed(l: Listener, err: Error): void {
    const code = errCode(err);
    const id = l.spec.id;
    const repeated = this.bindErrors.get(id) === code;
    this.bindErrors.set(id, code);
    const fields = { listener: id, service: l.spec.service, code, err: err.message, retryMs: this.opts.resyncMs };
    if (repeated) this.log.debug(fields, "load balancer listener failed again; retrying on resync");
    else this.log.warn(fields, "load balancer listener failed; retrying on resync");
    void this.close(l, `error ${code}`, true);
  }

  private close(l: Listener, reason: string, quiet = false): Promise<void> {
    if (this.listeners.get(l.spec.id) === l) this.listeners.delete(l.spec.id);
    const wasOpen = l.open;
    l.open = false;
    if (wasOpen && !quiet) this.log.info({ listener: l.spec.id, service: l.spec.service, reason }, "load balancer listener closed");
    if (l.kind === "UDP") {
      for (const f of l.flows.clear()) closeUdp(f.socket);
      closeUdp(l.socket);
      return Promise.resolve();
    }
    // A deleted load balancer drops its connections with it.
    for (const s of l.conns) s.destroy();
    l.conns.clear();
    return new Promise((resolve) => l.server.close(() => resolve()));
  }

  private pick(spec: ListenerSpec): LbNode | undefined {
    return this.rr.pick(spec.id, eligibleBackends(spec, this.nodes, (k) => this.health.get(k)));
  }

  // ------------------------------------------------------------------ TCP

  private accept(l: TcpListener, client: Socket): void {
    const peer = `${client.remoteAddress}:${client.remotePort}`;
    client.on("error", (err) => this.log.debug({ listener: l.spec.id, client: peer, err: errCode(err) }, "load balancer client socket error"));
    if (this.stopped || this.listeners.get(l.spec.id) !== l) {
      client.destroy();
      return;
    }
    const spec = l.spec;
    if (!sourceAllowed(spec, client.remoteAddress ?? "")) {
      this.log.debug({ listener: spec.id, service: spec.service, client: peer }, "client outside loadBalancerSourceRanges; dropped");
      client.destroy();
      return;
    }
    const node = this.pick(spec);
    if (!node) {
      this.log.debug({ listener: spec.id, service: spec.service, client: peer }, "load balancer has no healthy node; connection reset");
      client.resetAndDestroy();
      return;
    }
    const upstream = tcpConnect({ host: node.hostAddress, port: spec.nodePort, allowHalfOpen: true });
    l.conns.add(client);
    l.conns.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.log.debug({ listener: spec.id, service: spec.service, client: peer, node: node.name, backend: `${node.hostAddress}:${spec.nodePort}` }, "load balancer connection");
    upstream.on("error", (err) => {
      this.log.debug({ listener: spec.id, node: node.name, backend: `${node.hostAddress}:${spec.nodePort}`, err: errCode(err) }, "load balancer backend connection failed; client reset");
      if (!client.destroyed) client.resetAndDestroy();
    });
    // A client's reset goes on to the node as one.
    client.on("error", () => {
      if (!upstream.destroyed) upstream.resetAndDestroy();
    });
    client.on("close", () => l.conns.delete(client));
    upstream.on("close", () => l.conns.delete(upstream));
    // pipe() ends the other side when one side ends (half-close); with allowHalfOpen each
    // socket closes once both of its directions are done.
    client.pipe(upstream);
    upstream.pipe(client);
  }

  // ------------------------------------------------------------------ UDP

  private datagram(l: UdpListener, msg: Buffer, rinfo: RemoteInfo): void {
    if (this.stopped || this.listeners.get(l.spec.id) !== l || !sourceAllowed(l.spec, rinfo.address)) return;
    const client = `${rinfo.address}:${rinfo.port}`;
    const now = this.clock.monotonicMs();
    let flow = l.flows.get(client, now);
    if (!flow) {
      const node = this.pick(l.spec);
      if (!node) {
        this.log.debug({ listener: l.spec.id, service: l.spec.service, client }, "load balancer has no healthy node; datagram dropped");
        return;
      }
      const socket = createSocket({ type: "udp4" });
      const f: UdpFlow = { socket, node: node.name, host: node.hostAddress, port: l.spec.nodePort };
      socket.on("error", (err) => {
        this.log.debug({ listener: l.spec.id, client, node: f.node, err: errCode(err) }, "load balancer UDP flow failed; dropped");
        l.flows.delete(client, f);
        closeUdp(socket);
      });
      socket.on("message", (reply, from) => {
        // Only the node's answers, and back from lbIP:port to the client that opened the flow.
        if (from.address !== f.host || from.port !== f.port || !l.open) return;
        l.flows.get(client, this.clock.monotonicMs());
        l.socket.send(reply, rinfo.port, rinfo.address, (err) => {
          if (err) this.log.debug({ listener: l.spec.id, client, err: errCode(err) }, "load balancer UDP reply not sent");
        });
      });
      for (const gone of l.flows.add(client, f, now)) closeUdp(gone.socket);
      this.log.debug({ listener: l.spec.id, service: l.spec.service, client, node: node.name, backend: `${node.hostAddress}:${l.spec.nodePort}` }, "load balancer UDP flow");
      flow = f;
    }
    const f = flow;
    f.socket.send(msg, f.port, f.host, (err) => {
      if (err) this.log.debug({ listener: l.spec.id, client, node: f.node, err: errCode(err) }, "load balancer UDP datagram not sent");
    });
  }

  private expireFlows(): void {
    const now = this.clock.monotonicMs();
    for (const l of this.listeners.values()) {
      if (l.kind !== "UDP") continue;
      for (const [, f] of l.flows.expire(now)) closeUdp(f.socket);
    }
  }

  // ------------------------------------------------------------------ health checks

  /** Probes every target (`all`), or only those never probed (after an update). */
  private checkHealth(all: boolean): void {
    if (this.stopped) return;
    this.targets = new Map(healthTargets([...this.desired.values()], this.nodes).map((t) => [t.key, t]));
    this.health.retain(new Set(this.targets.keys()));
    for (const t of this.targets.values()) {
      if (this.probing.has(t.key)) continue;
      if (!all && this.health.get(t.key) !== undefined) continue;
      this.probeOne(t);
    }
  }

  private probeOne(t: HealthTarget): void {
    this.probing.add(t.key);
    void this.probe(t.host, t.port, this.opts.healthTimeoutMs)
      .catch(() => false)
      .then((ok) => {
        this.probing.delete(t.key);
        // A target dropped meanwhile (its Service or node went) is not recorded.
        if (this.stopped || !this.targets.has(t.key)) return;
        const { changed, previous } = this.health.record(t.key, ok);
        if (changed) {
          this.log.info({ node: t.node, target: t.key, state: ok ? "healthy" : "unhealthy", previous: previous ?? "unknown" }, "load balancer health check changed");
        }
      });
  }
}
