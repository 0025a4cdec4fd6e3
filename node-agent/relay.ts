/**
 * Real sockets joined to emulated ones, the node's process edge: kube-proxy's NodePorts
 * (proxy/sockets.ts) and the host's cluster DNS port (dns/host.ts) both carry a real client's
 * traffic into a netns of the node this way.
 *
 * - UDP, per client flow: each real client (address, port) gets its own ephemeral port in the
 *   netns, so the emulated side sees one flow per client, as conntrack would on a real node;
 *   replies on that port go back to that client. Flows idle for 30 s (nf_conntrack_udp_timeout
 *   for a flow that saw replies is 120 s; 30 s is its unreplied value) are forgotten, and the
 *   table is bounded: when it is full the idlest flows go first.
 * - TCP: the bytes of an established emulated connection and a real socket are spliced both
 *   ways with backpressure; either side closing or resetting closes the other.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import type { Socket } from "node:net";
import type { Ipv4Addr } from "../overlay/wire/index.ts";
import type { UdpApi } from "./apps/index.ts";
import type { SendOptions } from "./netns.ts";
import type { TcpSocket } from "./tcp/api.ts";
import { TcpDuplex } from "./tcp/duplex.ts";

export const UDP_FLOW_IDLE_MS = 30_000;
export const UDP_FLOWS_MAX = 4096;

export interface UdpRelayOptions {
  /** The real address and port to listen on. */
  address: string;
  port: number;
  /** The netns the flows are made in, and where they go. */
  ns: UdpApi;
  dst: Ipv4Addr;
  dstPort: number;
  /** The source address a new client's flow uses in the netns (its own, say); undefined: the netns picks. */
  claim?(client: RemoteInfo): Ipv4Addr | undefined;
  /** Gives back what `claim` took when the flow is forgotten. */
  release?(src: Ipv4Addr): void;
  onListening(): void;
  onError(err: Error): void;
}

export interface UdpRelay {
  close(): void;
  readonly flows: number;
}

interface Flow {
  port: number;
  src: Ipv4Addr | undefined;
  last: number;
}

export function openUdpRelay(o: UdpRelayOptions): UdpRelay {
  const sock: UdpSocket = createSocket("udp4");
  const flows = new Map<string, Flow>();
  const byPort = new Map<number, { address: string; port: number }>();
  const expire = (now: number) => {
    for (const [key, f] of flows) {
      if (now - f.last < UDP_FLOW_IDLE_MS && flows.size <= UDP_FLOWS_MAX) continue;
      flows.delete(key);
      byPort.delete(f.port);
      o.ns.unbindUdp(f.port);
      if (f.src !== undefined) o.release?.(f.src);
    }
  };
  const timer = setInterval(() => expire(Date.now()), 5000);
  timer.unref();
  sock.on("error", (err) => {
    clearInterval(timer);
    o.onError(err);
  });
  sock.on("message", (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let flow = flows.get(key);
    if (!flow) {
      if (flows.size >= UDP_FLOWS_MAX) expire(Date.now());
      const src = o.claim?.(rinfo);
      const local = o.ns.bindEphemeralUdp((payload) => {
        const to = byPort.get(local);
        if (to) sock.send(payload, to.port, to.address);
      });
      flow = { port: local, src, last: 0 };
      flows.set(key, flow);
      byPort.set(local, { address: rinfo.address, port: rinfo.port });
    }
    flow.last = Date.now();
    const opts: SendOptions | undefined = flow.src !== undefined ? { src: flow.src } : undefined;
    // Linux's default IP_PMTUDISC_WANT: a datagram over the MTU goes out in fragments.
    if (o.ns.sendUdp(o.dst, o.dstPort, flow.port, msg, opts).kind === "messageTooLong") o.ns.sendUdp(o.dst, o.dstPort, flow.port, msg, { ...opts, dontFragment: false });
  });
  sock.bind({ address: o.address, port: o.port }, () => o.onListening());
  return {
    close: () => {
      clearInterval(timer);
      expire(Infinity);
      sock.close();
    },
    get flows() {
      return flows.size;
    },
  };
}

/**
 * Splices an established emulated connection and a paused real socket; `closed` runs once when
 * the emulated side has closed (the real one is ended then).
 */
export function spliceTcp(real: Socket, inner: TcpSocket, closed: () => void): void {
  // Every chunk goes on at once, as a transparent proxy does (the client set its own Nagle).
  inner.setNoDelay?.(true);
  const duplex = new TcpDuplex(inner);
  duplex.on("error", () => real.destroy());
  real.on("error", () => duplex.destroy(new Error("client reset")));
  real.pipe(duplex);
  duplex.pipe(real);
  real.resume();
  void inner.closed.then(() => {
    closed();
    if (!real.destroyed) real.end();
  });
}
