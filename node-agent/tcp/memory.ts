/**
 * An in-memory `TcpApi`: several fake hosts, keyed by IPv4 address, that listen and connect to
 * each other with no segments, no IP layer and no clock of their own. It ships beside the real
 * stack so apps and tools are tested against the same `TcpSocket`/`TcpListener` contract
 * (api.ts) they later run on.
 *
 * Design notes (what the fake keeps from TCP, and what it leaves out):
 * - connect to a known host with a listener -> "connected" at once (the handshake is the
 *   kernel's business; accept() later hands the server side out, as the accept queue does);
 *   known host, no listener -> "refused" (RST answering the SYN); unknown host -> "timeout" once
 *   `timeoutMs` (or Linux's ~127 s of SYN retries) has passed on the injected `schedule`;
 *   a host marked with `unreachable(ip)` -> "unreachable" (an ICMP host unreachable).
 * - bytes are copied on write and delivered in order; a write resolves once the peer's unread
 *   bytes are under `windowBytes`, which is the backpressure the real send buffer gives.
 * - end() is a FIN after everything written: the peer reads what was sent, then null. The
 *   connection is "closed" for both ends once both have sent FIN.
 * - abort() is a RST: the aborting end closes with "aborted", the peer with "reset"; unread
 *   data on both ends is discarded and pending reads return null, pending writes false.
 * - closing a listener resets the connections still waiting in its accept queue (Linux does).
 * - time: nothing here reads a clock. Only the connect timeout needs time, through
 *   `schedule(ms, fn)`; tests pass a virtual clock's, so a "timeout" costs no real waiting.
 *   The default uses real (unref'd) timers.
 */
import type { Ipv4Addr } from "../../overlay/wire/common.ts";
import type {
  CloseReason,
  ConnectOptions,
  ConnectResult,
  Endpoint,
  ListenResult,
  TcpApi,
  TcpListener,
  TcpSocket,
} from "./api.ts";

/** Runs `fn` after `ms` milliseconds of (possibly virtual) time; returns a cancel function. */
export type Schedule = (ms: number, fn: () => void) => () => void;

export const realSchedule: Schedule = (ms, fn) => {
  const timer = setTimeout(fn, ms);
  timer.unref?.();
  return () => clearTimeout(timer);
};

/** How long Linux keeps retrying a SYN with the default tcp_syn_retries=6: 1+2+4+...+64 s. */
export const LINUX_SYN_TIMEOUT_MS = 127_000;

const EPHEMERAL_FIRST = 32768;
const EPHEMERAL_LAST = 60999;

export interface MemoryTcpOptions {
  schedule?: Schedule;
  /** Unread bytes a receiver may hold before the sender's write() waits (the receive window). */
  windowBytes?: number;
}

export class MemoryTcpNetwork {
  private readonly hosts = new Map<Ipv4Addr, MemoryTcpHost>();
  private readonly unreachableHosts = new Set<Ipv4Addr>();
  readonly schedule: Schedule;
  readonly windowBytes: number;

  constructor(opts: MemoryTcpOptions = {}) {
    this.schedule = opts.schedule ?? realSchedule;
    this.windowBytes = opts.windowBytes ?? 256 * 1024;
  }

  /** The host with this address, created on first use. */
  host(ip: Ipv4Addr): MemoryTcpHost {
    let host = this.hosts.get(ip);
    if (!host) this.hosts.set(ip, (host = new MemoryTcpHost(this, ip)));
    return host;
  }

  /** Connections to `ip` fail with "unreachable" (as if a router answered ICMP host unreachable). */
  unreachable(ip: Ipv4Addr): void {
    this.unreachableHosts.add(ip);
  }

  /** @internal */
  lookup(ip: Ipv4Addr): { kind: "host"; host: MemoryTcpHost } | { kind: "unreachable" } | { kind: "unknown" } {
    if (this.unreachableHosts.has(ip)) return { kind: "unreachable" };
    const host = this.hosts.get(ip);
    return host ? { kind: "host", host } : { kind: "unknown" };
  }
}

export class MemoryTcpHost implements TcpApi {
  private readonly listeners = new Map<number, MemoryListener>();
  private readonly boundPorts = new Map<number, number>();
  private nextEphemeral = EPHEMERAL_FIRST;

  constructor(
    private readonly net: MemoryTcpNetwork,
    readonly ip: Ipv4Addr,
  ) {}

  listen(port: number, opts: { backlog?: number } = {}): ListenResult {
    if (this.listeners.has(port)) return { kind: "inUse" };
    const listener = new MemoryListener(port, opts.backlog ?? 4096, () => this.listeners.delete(port));
    this.listeners.set(port, listener);
    return { kind: "listening", listener };
  }

  async connect(dst: Ipv4Addr, port: number, opts: ConnectOptions = {}): Promise<ConnectResult> {
    // Answers are never synchronous, as on the wire.
    await Promise.resolve();
    const target = this.net.lookup(dst);
    if (target.kind === "unreachable") return { kind: "unreachable" };
    if (target.kind === "unknown") {
      return new Promise((resolve) => this.net.schedule(opts.timeoutMs ?? LINUX_SYN_TIMEOUT_MS, () => resolve({ kind: "timeout" })));
    }
    const listener = target.host.listeners.get(port);
    if (!listener || !listener.hasRoom()) {
      // A full accept queue drops the SYN on Linux; the fake answers like a closed port instead,
      // which keeps it free of timers (documented limitation).
      return { kind: "refused" };
    }
    const localPort = opts.localPort ?? this.allocatePort();
    this.boundPorts.set(localPort, (this.boundPorts.get(localPort) ?? 0) + 1);
    const client: Endpoint = { ip: this.ip, port: localPort };
    const server: Endpoint = { ip: dst, port };
    const [clientEnd, serverEnd] = MemorySocket.pair(client, server, this.net.windowBytes, () => this.release(localPort));
    listener.enqueue(serverEnd);
    return { kind: "connected", socket: clientEnd };
  }

  private allocatePort(): number {
    for (let i = 0; i <= EPHEMERAL_LAST - EPHEMERAL_FIRST; i++) {
      const port = this.nextEphemeral;
      this.nextEphemeral = port >= EPHEMERAL_LAST ? EPHEMERAL_FIRST : port + 1;
      if (!this.boundPorts.has(port) && !this.listeners.has(port)) return port;
    }
    throw new RangeError("no free ephemeral TCP port");
  }

  private release(port: number): void {
    const n = (this.boundPorts.get(port) ?? 1) - 1;
    if (n <= 0) this.boundPorts.delete(port);
    else this.boundPorts.set(port, n);
  }
}

class MemoryListener implements TcpListener {
  private readonly queue: MemorySocket[] = [];
  private readonly waiters: Array<(s: TcpSocket | null) => void> = [];
  private closedFlag = false;

  constructor(
    readonly port: number,
    private readonly backlog: number,
    private readonly onClose: () => void,
  ) {}

  hasRoom(): boolean {
    return !this.closedFlag && this.queue.length < this.backlog;
  }

  enqueue(socket: MemorySocket): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(socket);
    else this.queue.push(socket);
  }

  accept(): Promise<TcpSocket | null> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closedFlag) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.onClose();
    for (const waiter of this.waiters.splice(0)) waiter(null);
    for (const socket of this.queue.splice(0)) socket.abort();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TcpSocket> {
    for (;;) {
      const socket = await this.accept();
      if (socket === null) return;
      yield socket;
    }
  }
}

/** One direction of a connection: what the sender wrote and the receiver has not read yet. */
class Flow {
  readonly chunks: Uint8Array[] = [];
  bytes = 0;
  /** FIN queued behind the chunks. */
  fin = false;
  readers: Array<(chunk: Uint8Array | null) => void> = [];
  /** Writers waiting for the window to open. */
  writers: Array<() => void> = [];
}

class MemorySocket implements TcpSocket {
  readonly closed: Promise<CloseReason>;
  private resolveClosed!: (reason: CloseReason) => void;
  private state: "open" | "gone" = "open";
  private peer!: MemorySocket;

  private constructor(
    readonly local: Endpoint,
    readonly remote: Endpoint,
    /** Data towards us. */
    private readonly inbound: Flow,
    /** Data from us. */
    private readonly outbound: Flow,
    private readonly window: number,
    private readonly onGone: () => void,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  static pair(client: Endpoint, server: Endpoint, window: number, releaseClientPort: () => void): [MemorySocket, MemorySocket] {
    const up = new Flow();
    const down = new Flow();
    const c = new MemorySocket(client, server, down, up, window, releaseClientPort);
    const s = new MemorySocket(server, client, up, down, window, () => {});
    c.peer = s;
    s.peer = c;
    return [c, s];
  }

  async write(data: Uint8Array): Promise<boolean> {
    const flow = this.outbound;
    if (this.state === "gone" || flow.fin) return false;
    // A stream has no empty segments: a zero-length write delivers nothing.
    if (data.length === 0) return true;
    flow.chunks.push(data.slice());
    flow.bytes += data.length;
    this.peer.wakeReader();
    while (flow.bytes > this.window && this.state === "open" && flow.chunks.length > 0) {
      await new Promise<void>((resolve) => flow.writers.push(resolve));
    }
    // The bytes are in the "send buffer" even if the connection dies while we waited, as a
    // real write() that returned; what is lost after that is the connection's closed reason.
    return true;
  }

  read(): Promise<Uint8Array | null> {
    const flow = this.inbound;
    const chunk = this.take();
    if (chunk !== undefined) return Promise.resolve(chunk);
    if (this.state === "gone" || flow.fin) return Promise.resolve(null);
    return new Promise((resolve) => flow.readers.push(resolve));
  }

  end(): void {
    if (this.state === "gone" || this.outbound.fin) return;
    this.outbound.fin = true;
    this.peer.wakeReader();
    if (this.inbound.fin) this.finish({ kind: "closed" }, { kind: "closed" });
  }

  abort(): void {
    if (this.state === "gone") return;
    this.finish({ kind: "aborted" }, { kind: "reset" });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = await this.read();
      if (chunk === null) return;
      yield chunk;
    }
  }

  private take(): Uint8Array | undefined {
    const flow = this.inbound;
    const chunk = flow.chunks.shift();
    if (chunk === undefined) return undefined;
    flow.bytes -= chunk.length;
    if (flow.bytes <= this.window) for (const w of flow.writers.splice(0)) w();
    return chunk;
  }

  /** Data or FIN arrived: the oldest waiting reader gets it. */
  private wakeReader(): void {
    const flow = this.inbound;
    while (flow.readers.length > 0) {
      const chunk = this.take();
      if (chunk !== undefined) flow.readers.shift()!(chunk);
      else if (flow.fin || this.state === "gone") flow.readers.shift()!(null);
      else return;
    }
  }

  /** Both ends go at once: with a FIN exchange ("closed") or a RST (`mine`/`theirs` differ). */
  private finish(mine: CloseReason, theirs: CloseReason): void {
    const reset = mine.kind !== "closed";
    for (const [end, reason] of [[this, mine], [this.peer, theirs]] as const) {
      if (end.state === "gone") continue;
      end.state = "gone";
      if (reset) {
        // RST discards what is unread on both ends (RFC 793 "reset" handling).
        end.inbound.chunks.length = 0;
        end.inbound.bytes = 0;
      }
      end.resolveClosed(reason);
      end.onGone();
    }
    for (const end of [this, this.peer]) {
      end.wakeReader();
      for (const w of end.outbound.writers.splice(0)) w();
    }
  }
}
