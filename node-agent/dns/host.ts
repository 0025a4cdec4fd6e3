/**
 * Cluster DNS for real clients on the host: UDP and TCP on the node's host address (127.0.1.N
 * locally, the container address under compose) at KUBEWIRE_DNS_PORT, so `dig @127.0.1.1 -p
 * 1053 web.demo.svc.cluster.local` works from the machine the cluster runs on.
 *
 * A query is not answered here: it is relayed from the node's root netns to the kube-dns
 * Service (10.96.0.10:53) as a process on the node querying the cluster DNS would send it
 * (NodeLocal DNSCache's upstream path, without the cache). So it meets kube-proxy's rules, goes
 * to one of the coredns pods over the emulated network (across the overlay when the pod is on
 * another node), shows in captures and traces, and fails over with the coredns replicas.
 * UDP per client flow (one conntrack entry, so one coredns endpoint, per client socket, as on
 * a real node); TCP connection for connection.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../../cluster/log.ts";
import { formatIpv4, type Ipv4Addr } from "../../overlay/wire/index.ts";
import type { Netns } from "../netns.ts";
import { openUdpRelay, spliceTcp, type UdpRelay } from "../relay.ts";

const CONNECT_TIMEOUT_MS = 5000;

export interface HostDnsOptions {
  nodeName: string;
  hostAddress: string;
  port: number;
  /** The node's root netns: where the relayed queries start. */
  root: Netns;
  /** The kube-dns Service's ClusterIP. */
  dnsIp: Ipv4Addr;
  log: Logger;
}

export class HostDns {
  private udp: UdpRelay | undefined;
  private tcp: Server | undefined;
  private readonly conns = new Set<Socket>();

  constructor(private readonly o: HostDnsOptions) {}

  /** Resolves once both sockets listen; rejects with the bind error (the port is in use, say). */
  start(): Promise<void> {
    const o = this.o;
    const where = { node: o.nodeName, address: `${o.hostAddress}:${o.port}`, service: `${formatIpv4(o.dnsIp)}:53` };
    const udp = new Promise<void>((resolve, reject) => {
      this.udp = openUdpRelay({
        address: o.hostAddress,
        port: o.port,
        ns: o.root,
        dst: o.dnsIp,
        dstPort: 53,
        onListening: () => resolve(),
        onError: (err) => {
          o.log.error({ ...where, protocol: "UDP", err: err.message }, "host DNS port failed");
          reject(err);
        },
      });
    });
    const tcp = new Promise<void>((resolve, reject) => {
      const server = createServer((sock) => this.accept(sock));
      this.tcp = server;
      server.on("error", (err) => {
        o.log.error({ ...where, protocol: "TCP", err: err.message }, "host DNS port failed");
        reject(err);
      });
      server.listen({ host: o.hostAddress, port: o.port }, () => resolve());
    });
    return Promise.all([udp, tcp]).then(() => o.log.info(where, "host DNS port open"));
  }

  private accept(real: Socket): void {
    this.conns.add(real);
    real.pause();
    real.setNoDelay(true);
    real.on("error", () => {});
    const done = () => this.conns.delete(real);
    real.on("close", done);
    void this.o.root.tcp
      .connect(this.o.dnsIp, 53, { timeoutMs: CONNECT_TIMEOUT_MS })
      .then((r) => {
        if (r.kind !== "connected") {
          real.resetAndDestroy();
          return;
        }
        if (real.destroyed) {
          r.socket.abort();
          return;
        }
        spliceTcp(real, r.socket, done);
      })
      .catch(() => real.destroy());
  }

  close(): void {
    this.udp?.close();
    this.tcp?.close();
    for (const c of this.conns) c.destroy();
    this.conns.clear();
  }
}
