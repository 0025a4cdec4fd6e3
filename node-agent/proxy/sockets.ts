/**
 * kube-proxy's real sockets on a node, the process edge of the proxy: NodePorts on the node's
 * host address (127.0.1.N locally, the container address under compose) and the health-check
 * servers of Local-policy LoadBalancer Services.
 *
 * A real client's TCP connection to hostAddress:nodePort is carried into the emulator as the
 * same connection made by the client from the outside netns to nodeIP:nodePort: it enters the
 * node on eth0, meets kube-proxy's rules in PREROUTING like any external packet (DNAT, and SNAT
 * for policy Cluster), and its bytes are spliced to the real socket both ways with backpressure.
 * UDP datagrams are relayed per client flow the same way. The client keeps its own address
 * inside the emulator (what externalTrafficPolicy Local preserves), except where that address
 * means something else in there (see `emulatedClientAddress`).
 *
 * Level-triggered: `sync(state)` opens and closes listeners to match the whole state; a port
 * that cannot be bound (in use, no such address) is logged and tried again on the next sync.
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import type { Cidr } from "../../cluster/addressing.ts";
import { cidrContains } from "../../cluster/addressing.ts";
import type { Logger } from "../../cluster/log.ts";
import { IpProtocol, formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/index.ts";
import type { Netns } from "../netns.ts";
import { openUdpRelay, spliceTcp } from "../relay.ts";
import { categorize, type ProxyState, type ServicePortInfo } from "./model.ts";

/** Where real clients that would collide with emulated addresses appear instead (RFC 2544's benchmarking range). */
export const CLIENT_REMAP_NETWORK = 0xc612_0000; // 198.18.0.0/15

/**
 * The address a real client has inside the emulator: its own, unless it is loopback (inside
 * every pod 127/8 is the pod's own) or inside an emulated range (pod, service, underlay): then
 * 198.18.C.D, keeping the client address's last two octets.
 */
export function emulatedClientAddress(real: string, emulated: readonly Cidr[]): Ipv4Addr {
  const text = real.startsWith("::ffff:") ? real.slice(7) : real;
  const ip = parseIpv4Addr(text);
  if (ip === undefined) return (CLIENT_REMAP_NETWORK | 1) >>> 0;
  if (ip >>> 24 === 127 || emulated.some((c) => cidrContains(c, ip))) return (CLIENT_REMAP_NETWORK | (ip & 0xffff)) >>> 0;
  return ip;
}

export interface HealthAnswer {
  status: 200 | 503;
  headers: Record<string, string>;
  body: string;
}

/**
 * kube-proxy's answer on a healthCheckNodePort (pkg/proxy/healthcheck/service_health.go
 * ServeHTTP): 200 when the node has a local ready endpoint of the Service, else 503, with the
 * count in a JSON body and the X-Load-Balancing-Endpoint-Weight header.
 */
export function healthAnswer(namespace: string, name: string, localEndpoints: number, proxyHealthy = true): HealthAnswer {
  const ok = localEndpoints > 0 && proxyHealthy;
  const body = `{\n\t"service": {\n\t\t"namespace": ${JSON.stringify(namespace)},\n\t\t"name": ${JSON.stringify(name)}\n\t},\n\t"localEndpoints": ${localEndpoints},\n\t"serviceProxyHealthy": ${proxyHealthy}\n}`;
  return {
    status: ok ? 200 : 503,
    headers: { "Content-Type": "application/json", "X-Content-Type-Options": "nosniff", "X-Load-Balancing-Endpoint-Weight": String(localEndpoints) },
    body,
  };
}

/** Local ready endpoints per Service with a healthCheckNodePort: port -> who and how many. */
export function healthChecks(state: ProxyState): Map<number, { namespace: string; name: string; localEndpoints: number }> {
  const out = new Map<number, { namespace: string; name: string; localEndpoints: number }>();
  for (const sp of state.servicePorts) {
    if (sp.healthCheckNodePort === 0) continue;
    // One count per Service (every port shares the endpoints' pods): LocalReadyEndpoints.
    const local = new Set(sp.endpoints.filter((e) => e.isLocal && e.ready).map((e) => e.ip));
    const had = out.get(sp.healthCheckNodePort);
    out.set(sp.healthCheckNodePort, { namespace: sp.namespace, name: sp.name, localEndpoints: Math.max(had?.localEndpoints ?? 0, local.size) });
  }
  return out;
}

export interface ProxySocketsOptions {
  nodeName: string;
  /** The real address to bind (127.0.1.N). */
  hostAddress: string;
  nodeIp: Ipv4Addr;
  outside: Netns;
  claim(ip: Ipv4Addr): void;
  release(ip: Ipv4Addr): void;
  /** Pod, service and underlay ranges: real clients inside them are remapped. */
  emulated: readonly Cidr[];
  log: Logger;
}

interface Listener {
  close(): void;
}

const CONNECT_TIMEOUT_MS = 10_000;

export class ProxySockets {
  private readonly tcp = new Map<number, Listener>();
  private readonly udp = new Map<number, Listener>();
  private readonly health = new Map<number, { server: HttpServer; current: { namespace: string; name: string; localEndpoints: number } }>();
  /** Ports that failed to bind, so the failure is logged once per port and retried quietly. */
  private readonly failed = new Set<string>();
  private closed = false;
  /** Live real connections (closed with the proxy). */
  private readonly conns = new Set<Socket>();

  constructor(private readonly o: ProxySocketsOptions) {}

  /** Opens and closes real sockets to match `state`. */
  sync(state: ProxyState): void {
    if (this.closed) return;
    const tcpPorts = new Set<number>();
    const udpPorts = new Set<number>();
    for (const sp of state.servicePorts) {
      if (sp.nodePort === 0) continue;
      (sp.protocol === IpProtocol.UDP ? udpPorts : tcpPorts).add(sp.nodePort);
    }
    for (const [port, l] of this.tcp) if (!tcpPorts.has(port)) (l.close(), this.tcp.delete(port));
    for (const [port, l] of this.udp) if (!udpPorts.has(port)) (l.close(), this.udp.delete(port));
    for (const port of tcpPorts) if (!this.tcp.has(port)) this.openTcp(port);
    for (const port of udpPorts) if (!this.udp.has(port)) this.openUdp(port);
    const checks = healthChecks(state);
    for (const [port, h] of this.health) {
      if (!checks.has(port)) {
        h.server.close();
        this.health.delete(port);
      }
    }
    for (const [port, current] of checks) {
      const have = this.health.get(port);
      if (have) have.current = current;
      else this.openHealth(port, current);
    }
  }

  /** Ports with a listener (tests and the status verb). */
  listening(): { tcp: number[]; udp: number[]; health: number[] } {
    return { tcp: [...this.tcp.keys()], udp: [...this.udp.keys()], health: [...this.health.keys()] };
  }

  close(): void {
    this.closed = true;
    for (const l of this.tcp.values()) l.close();
    for (const l of this.udp.values()) l.close();
    for (const h of this.health.values()) h.server.close();
    for (const c of this.conns) c.destroy();
    this.tcp.clear();
    this.udp.clear();
    this.health.clear();
  }

  private bindFailed(what: string, port: number, err: Error): void {
    const key = `${what}/${port}`;
    if (!this.failed.has(key)) this.o.log.warn({ node: this.o.nodeName, port, protocol: what, address: this.o.hostAddress, err: err.message }, "cannot bind a kube-proxy port; retried on the next sync");
    this.failed.add(key);
  }

  private bound(what: string, port: number): void {
    this.failed.delete(`${what}/${port}`);
    this.o.log.info({ node: this.o.nodeName, port, protocol: what, address: this.o.hostAddress }, "kube-proxy port open");
  }

  private openTcp(port: number): void {
    const server: Server = createServer((sock) => this.acceptTcp(port, sock));
    const entry: Listener = { close: () => server.close() };
    this.tcp.set(port, entry);
    server.on("error", (err) => {
      this.bindFailed("TCP", port, err);
      if (this.tcp.get(port) === entry) this.tcp.delete(port);
    });
    server.listen({ host: this.o.hostAddress, port }, () => this.bound("TCP", port));
  }

  private acceptTcp(nodePort: number, real: Socket): void {
    this.conns.add(real);
    real.pause();
    real.setNoDelay(true);
    const client = emulatedClientAddress(real.remoteAddress ?? "", this.o.emulated);
    const clientPort = real.remotePort ?? 0;
    this.o.claim(client);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.conns.delete(real);
      this.o.release(client);
    };
    real.on("error", () => {});
    real.on("close", () => {
      if (!emulatedUp) release();
    });
    let emulatedUp = false;
    const tcp = this.o.outside.tcp;
    const connect = (localPort: number | undefined) => tcp.connect(this.o.nodeIp, nodePort, { localAddress: client, timeoutMs: CONNECT_TIMEOUT_MS, ...(localPort ? { localPort } : {}) });
    void connect(clientPort)
      .then((r) => (r.kind === "unreachable" ? connect(undefined) : r))
      .then((r) => {
        if (r.kind !== "connected") {
          // As a real kube-proxy node would: refused -> RST, nothing answering -> the client times out or we close.
          this.o.log.info({ node: this.o.nodeName, nodePort, client: `${formatIpv4(client)}:${clientPort}`, result: r.kind }, "NodePort connection not established");
          real.resetAndDestroy();
          release();
          return;
        }
        if (real.destroyed) {
          r.socket.abort();
          release();
          return;
        }
        emulatedUp = true;
        spliceTcp(real, r.socket, release);
      })
      .catch((err: unknown) => {
        this.o.log.error({ node: this.o.nodeName, nodePort, err: (err as Error)?.message ?? String(err) }, "NodePort connection failed");
        real.destroy();
        release();
      });
  }

  private openUdp(port: number): void {
    const entry: Listener = {
      close: () => relay.close(),
    };
    this.udp.set(port, entry);
    const relay = openUdpRelay({
      address: this.o.hostAddress,
      port,
      ns: this.o.outside,
      dst: this.o.nodeIp,
      dstPort: port,
      claim: (rinfo) => {
        const client = emulatedClientAddress(rinfo.address, this.o.emulated);
        this.o.claim(client);
        return client;
      },
      release: (client) => this.o.release(client),
      onListening: () => this.bound("UDP", port),
      onError: (err) => {
        this.bindFailed("UDP", port, err);
        if (this.udp.get(port) === entry) this.udp.delete(port);
      },
    });
  }

  private openHealth(port: number, current: { namespace: string; name: string; localEndpoints: number }): void {
    const entry = { server: undefined as unknown as HttpServer, current };
    entry.server = createHttpServer((req, res) => {
      const a = healthAnswer(entry.current.namespace, entry.current.name, entry.current.localEndpoints);
      res.writeHead(a.status, a.headers);
      res.end(a.body);
      req.resume();
    });
    this.health.set(port, entry);
    entry.server.on("error", (err) => {
      this.bindFailed("healthcheck", port, err);
      if (this.health.get(port) === entry) this.health.delete(port);
    });
    entry.server.listen({ host: this.o.hostAddress, port }, () => this.bound("healthcheck", port));
  }
}

/** For logs and traces. */
export function describePort(sp: ServicePortInfo): string {
  return `${sp.id} ${sp.protocol === IpProtocol.UDP ? "UDP" : "TCP"} ${formatIpv4(sp.clusterIP)}:${sp.port}${sp.nodePort ? ` nodePort ${sp.nodePort}` : ""} (${categorize(sp).allReachable.length} endpoints)`;
}
