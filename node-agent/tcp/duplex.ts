/**
 * A `TcpSocket` as a node:stream Duplex, so Node's own `http` server can run over the emulated
 * TCP (`server.emit("connection", toDuplex(sock))`). It looks enough like a `net.Socket` for
 * `_http_server.js`: remote/local address and port, `setTimeout` (the keep-alive timeout),
 * `setNoDelay`/`setKeepAlive` (no-ops), `destroySoon`.
 *
 * Mapping:
 * - reads pump `socket.read()` into `push()`; when push returns false the pump stops until the
 *   next `_read` (Node's backpressure); null -> push(null).
 * - `_write` resolves when `socket.write` does; a write on a gone connection is EPIPE.
 * - `_final` (end()) is a FIN: `socket.end()`.
 * - `_destroy` behaves as close(2): destroyed with an error -> abort (RST); a plain destroy
 *   (Node's keep-alive timeout, destroySoon) -> a FIN if none was sent yet, as Linux closes a
 *   socket with no unread data.
 * - a connection reset by the peer surfaces as an ECONNRESET error, as on a net.Socket.
 * No promise here can reject unhandled: every chain ends in a handler.
 */
import { Duplex } from "node:stream";
import { formatIpv4 } from "../../overlay/wire/common.ts";
import type { CloseReason, TcpSocket } from "./api.ts";
import { realSchedule, type Schedule } from "./memory.ts";

export interface DuplexOptions {
  /** Timers for `setTimeout` (the idle timeout Node's http server uses for keep-alive). */
  schedule?: Schedule;
}

/** The errno a net.Socket would carry for an abortive end. */
const ERROR_CODES: Partial<Record<CloseReason["kind"], string>> = {
  reset: "ECONNRESET",
  timeout: "ETIMEDOUT",
  unreachable: "EHOSTUNREACH",
  refused: "ECONNREFUSED",
};

export class TcpDuplex extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteFamily = "IPv4";
  private pumping = false;
  private ended = false;
  private idleMs = 0;
  private cancelIdle: (() => void) | undefined;
  private readonly schedule: Schedule;

  constructor(
    readonly tcp: TcpSocket,
    opts: DuplexOptions = {},
  ) {
    super({ allowHalfOpen: true });
    this.schedule = opts.schedule ?? realSchedule;
    this.remoteAddress = formatIpv4(tcp.remote.ip);
    this.remotePort = tcp.remote.port;
    this.localAddress = formatIpv4(tcp.local.ip);
    this.localPort = tcp.local.port;
    tcp.closed.then(
      (reason) => {
        if (this.destroyed) return;
        // "refused" and "unreachable" end a connection that timed out after an ICMP error (the
        // soft error Linux reports instead of ETIMEDOUT, tcp_write_err).
        const code = ERROR_CODES[reason.kind];
        if (code !== undefined) this.destroy(Object.assign(new Error(reason.kind === "reset" ? "read ECONNRESET" : `connection ${reason.kind}`), { code }));
      },
      () => {},
    );
  }

  override _read(): void {
    if (this.pumping) return;
    this.pumping = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const chunk = await this.tcp.read();
        if (this.destroyed) return;
        this.touch();
        if (chunk === null) {
          this.push(null);
          return;
        }
        if (!this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) return;
      }
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.pumping = false;
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.touch();
    // Node writes empty chunks at times (end() of an http response); TCP has nothing to send.
    if (chunk.length === 0) return cb();
    this.tcp.write(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)).then(
      (ok) => cb(ok ? null : Object.assign(new Error("write EPIPE"), { code: "EPIPE" })),
      (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.ended = true;
    this.tcp.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.cancelIdle?.();
    this.cancelIdle = undefined;
    if (err) this.tcp.abort();
    else if (!this.ended) {
      this.ended = true;
      this.tcp.end();
    }
    cb(err);
  }

  /** net.Socket#setTimeout: emits "timeout" after `ms` without activity (0 disables). */
  setTimeout(ms: number, callback?: () => void): this {
    this.idleMs = ms;
    if (callback) this.once("timeout", callback);
    this.touch();
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.tcp.setNoDelay?.(noDelay ?? true);
    return this;
  }

  setKeepAlive(_enable?: boolean, _delay?: number): this {
    return this;
  }

  destroySoon(): void {
    if (this.writableFinished) this.destroy();
    else {
      this.once("finish", () => this.destroy());
      this.end();
    }
  }

  private touch(): void {
    this.cancelIdle?.();
    this.cancelIdle = undefined;
    if (this.idleMs > 0 && !this.destroyed) {
      this.cancelIdle = this.schedule(this.idleMs, () => {
        this.cancelIdle = undefined;
        this.emit("timeout");
      });
    }
  }
}

export function toDuplex(socket: TcpSocket, opts: DuplexOptions = {}): TcpDuplex {
  return new TcpDuplex(socket, opts);
}
