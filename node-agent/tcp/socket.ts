/**
 * The app-facing objects: a connected socket as an async-iterable byte stream, and a listener
 * with its accept queue. Thin façades over Tcb (tcb.ts), so apps cannot reach protocol state.
 */
import type { CloseReason, Endpoint, TcpListener, TcpSocket } from "./api.ts";
import type { Tcb } from "./tcb.ts";

export class TcpSocketImpl implements TcpSocket {
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly closed: Promise<CloseReason>;

  constructor(private readonly tcb: Tcb) {
    this.local = { ip: tcb.localIp, port: tcb.localPort };
    this.remote = { ip: tcb.remoteIp, port: tcb.remotePort };
    this.closed = tcb.closed;
  }

  write(data: Uint8Array): Promise<boolean> {
    return this.tcb.appWrite(data);
  }

  read(): Promise<Uint8Array | null> {
    return this.tcb.appRead();
  }

  end(): void {
    this.tcb.appEnd();
  }

  abort(): void {
    this.tcb.appAbort();
  }

  /** TCP_NODELAY: true sends small segments at once; false holds them while data is unacknowledged (Nagle). */
  setNoDelay(on: boolean): void {
    this.tcb.noDelay = on;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const chunk = await this.tcb.appRead();
      if (chunk === null) return;
      yield chunk;
    }
  }
}

export interface ListenerOwner {
  closeListener(listener: TcpListenerImpl): void;
}

export class TcpListenerImpl implements TcpListener {
  /** Connections in SYN-RECEIVED (Linux's SYN queue), bounded by `backlog` like the accept queue. */
  readonly embryonic = new Set<Tcb>();
  /** When the SYN queue last overflowed into SYN cookies (ms), or -Infinity: ACKs are checked as cookies only for a while after. */
  cookieAt = -Infinity;
  private queue: Tcb[] = [];
  private head = 0;
  private waiters: Array<(s: TcpSocket | null) => void> = [];
  isClosed = false;

  constructor(
    private readonly owner: ListenerOwner,
    readonly port: number,
    readonly backlog: number,
  ) {}

  /** Established connections not yet accepted. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** SYN queue full: a new SYN gets a SYN cookie, or is dropped without cookies. */
  get synQueueFull(): boolean {
    return this.embryonic.size >= this.backlog;
  }

  /** Accept queue full: a new SYN, or a cookie's ACK, is dropped (Linux sk_acceptq_is_full; the client retries). */
  get acceptQueueFull(): boolean {
    return this.queued >= this.backlog;
  }

  /** A handshake completed: hand it to a waiting accept() or queue it. */
  enqueue(tcb: Tcb): void {
    this.embryonic.delete(tcb);
    const w = this.waiters.shift();
    if (w !== undefined) {
      tcb.listener = undefined;
      w(tcb.socket);
      return;
    }
    tcb.inAcceptQueue = true;
    this.queue.push(tcb);
  }

  /** A connection ended before it was accepted. */
  remove(tcb: Tcb): void {
    this.embryonic.delete(tcb);
    if (!tcb.inAcceptQueue) return;
    tcb.inAcceptQueue = false;
    const i = this.queue.indexOf(tcb, this.head);
    if (i >= 0) this.queue.splice(i, 1);
  }

  accept(): Promise<TcpSocket | null> {
    if (this.head < this.queue.length) return Promise.resolve(this.take());
    if (this.isClosed) return Promise.resolve(null);
    return new Promise<TcpSocket | null>((resolve) => this.waiters.push(resolve));
  }

  private take(): TcpSocket {
    const tcb = this.queue[this.head++]!;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    tcb.inAcceptQueue = false;
    tcb.listener = undefined;
    return tcb.socket;
  }

  close(): void {
    if (!this.isClosed) this.owner.closeListener(this);
  }

  /** Called by the stack when closing: returns every connection not yet accepted (to be reset). */
  shutdown(): Tcb[] {
    this.isClosed = true;
    const pending = [...this.embryonic, ...this.queue.slice(this.head)];
    this.embryonic.clear();
    this.queue = [];
    this.head = 0;
    for (const t of pending) {
      t.inAcceptQueue = false;
      t.listener = undefined;
    }
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve(null);
    return pending;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TcpSocket, void, undefined> {
    for (;;) {
      const s = await this.accept();
      if (s === null) return;
      yield s;
    }
  }
}
