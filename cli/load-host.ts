/**
 * The host's real sockets behind the load client's `LoadNet` (node-agent/load/worker.ts), for
 * `kubewire load nodeport/NAME`: the CLI process connects to every node's NodePort on its host
 * address, as wrk or a real client would, with the same client code the pods run.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, type Socket } from "node:net";
import { formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../overlay/wire/common.ts";
import type { CloseReason, ConnectOptions, ConnectResult, ListenResult, TcpApi, TcpSocket } from "../node-agent/tcp/api.ts";
import { realClock } from "../node-agent/tools/common.ts";
import type { LoadNet } from "../node-agent/load/worker.ts";

/** A net.Socket as the emulated TCP's socket (read() by chunks, write() resolving once flushed). */
class HostSocket implements TcpSocket {
  readonly local;
  readonly remote;
  readonly closed: Promise<CloseReason>;
  private readonly chunks: Uint8Array[] = [];
  private waiter: ((c: Uint8Array | null) => void) | undefined;
  private ended = false;

  constructor(private readonly sock: Socket) {
    this.local = { ip: parseIpv4Addr(sock.localAddress ?? "") ?? 0, port: sock.localPort ?? 0 };
    this.remote = { ip: parseIpv4Addr(sock.remoteAddress ?? "") ?? 0, port: sock.remotePort ?? 0 };
    let reason: CloseReason = { kind: "closed" };
    sock.on("data", (d: Buffer) => this.deliver(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)));
    sock.on("end", () => this.finish());
    sock.on("error", (err: NodeJS.ErrnoException) => {
      reason = { kind: err.code === "ECONNRESET" || err.code === "EPIPE" ? "reset" : err.code === "ETIMEDOUT" ? "timeout" : "aborted" };
    });
    this.closed = new Promise((resolve) =>
      sock.once("close", () => {
        this.finish();
        resolve(reason);
      }),
    );
  }

  private deliver(c: Uint8Array): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w(c);
    } else this.chunks.push(c);
  }

  private finish(): void {
    this.ended = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(null);
  }

  write(data: Uint8Array): Promise<boolean> {
    if (this.sock.destroyed || !this.sock.writable) return Promise.resolve(false);
    return new Promise((resolve) => this.sock.write(data, (err) => resolve(!err)));
  }

  read(): Promise<Uint8Array | null> {
    const c = this.chunks.shift();
    if (c) return Promise.resolve(c);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  end(): void {
    this.sock.end();
  }

  abort(): void {
    this.sock.resetAndDestroy();
  }

  setNoDelay(on: boolean): void {
    this.sock.setNoDelay(on);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const c = await this.read();
      if (c === null) return;
      yield c;
    }
  }
}

const hostTcp: TcpApi = {
  listen(): ListenResult {
    return { kind: "inUse" };
  },
  connect(dst: Ipv4Addr, port: number, opts?: ConnectOptions): Promise<ConnectResult> {
    return new Promise((resolve) => {
      const sock = connect({ host: formatIpv4(dst), port });
      const timer = setTimeout(() => {
        sock.destroy();
        resolve({ kind: "timeout" });
      }, opts?.timeoutMs ?? 127_000);
      const onError = (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        sock.destroy();
        resolve({ kind: err.code === "ECONNREFUSED" ? "refused" : err.code === "ETIMEDOUT" ? "timeout" : "unreachable" });
      };
      sock.once("error", onError);
      sock.once("connect", () => {
        clearTimeout(timer);
        sock.off("error", onError);
        resolve({ kind: "connected", socket: new HostSocket(sock) });
      });
    });
  },
};

/**
 * UDP over dgram sockets. A socket's "port" here is a handle (dgram binds asynchronously, the
 * client needs a number at once); unconnected sockets hear no ICMP errors on Linux, so a host
 * udp-rr run sees a refusing NodePort as timeouts.
 */
function hostUdp(): LoadNet["udp"] {
  const sockets = new Map<number, UdpSocket>();
  let next = 1;
  return {
    bindEphemeralUdp(handler) {
      const s = createSocket("udp4");
      s.on("message", (msg, rinfo) => handler(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), { src: parseIpv4Addr(rinfo.address) ?? 0, srcPort: rinfo.port }));
      s.on("error", () => {});
      const id = next++;
      sockets.set(id, s);
      return id;
    },
    sendUdp(dst, dstPort, srcPort, payload) {
      const s = sockets.get(srcPort);
      if (!s) return { kind: "noRoute" };
      s.send(payload, dstPort, formatIpv4(dst));
      return { kind: "sent" };
    },
    unbindUdp(port) {
      sockets.get(port)?.close();
      sockets.delete(port);
    },
  };
}

export function hostLoadNet(): LoadNet {
  return { tcp: hostTcp, udp: hostUdp(), clock: realClock, endpointOf: (_p, _l, dst) => formatIpv4(dst) };
}
