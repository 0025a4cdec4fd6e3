/**
 * The socket API of the emulated TCP (what apps and tools use), and the contract between the
 * TCP layer and the IPv4 layer of a netns. The TCP layer is pure: it never reads the clock or
 * an RNG itself, and it does no I/O; segments leave through `TcpHost.output`, time comes from
 * `TcpHost.now`, and timers run when the owner calls `TcpStack.poll(now)` at or after
 * `TcpStack.nextDeadline()`.
 */
import type { Ipv4Addr } from "../../overlay/wire/common.ts";

export interface Endpoint {
  ip: Ipv4Addr;
  port: number;
}

/** One TCP segment handed to the IP layer to send (the IP layer adds the header and checksums). */
export interface SegmentOut {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** TcpFlag bits (overlay/wire/tcp.ts). */
  flags: number;
  /** The 16-bit window field as sent (already scaled down). */
  window: number;
  /** Raw option bytes (MSS, window scale, NOPs); a multiple of 4 or padded by the emitter. */
  options: Uint8Array;
  payload: Uint8Array;
  /**
   * Set when the payload is several segments' worth (TSO): the payload of each segment the IP
   * layer cuts it into, as Linux's gso_size. 0 or absent: an ordinary segment.
   */
  gsoSize?: number;
}

/** A received segment as the IP layer delivers it: addresses, and the checksum already verified. */
export interface SegmentIn {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options: Uint8Array;
  payload: Uint8Array;
}

/** What the TCP layer needs from its netns. */
export interface TcpHost {
  /** Milliseconds, monotonic. */
  now(): number;
  /** A uniformly random uint32 (initial sequence numbers, ephemeral ports); seeded in tests. */
  random(): number;
  /** Sends one segment. Returns false when the IP layer could not (no route): a soft error. */
  output(seg: SegmentOut): boolean;
  /** The source address the route to `dst` would use, or undefined when there is no route. */
  sourceFor(dst: Ipv4Addr): Ipv4Addr | undefined;
  /** The MTU of the route to `dst` (MSS = MTU - 40). */
  mtuFor(dst: Ipv4Addr): number;
  /** Whether `ip` is one of this netns' addresses (a listener bound to 0.0.0.0 accepts any of them). */
  isLocal(ip: Ipv4Addr): boolean;
}

/** Why a connection ended; `closed` resolves with it and never rejects. */
export type CloseReason =
  | { kind: "closed" }
  | { kind: "reset" }
  | { kind: "refused" }
  | { kind: "timeout" }
  | { kind: "unreachable" }
  | { kind: "aborted" };

export type ConnectResult =
  | { kind: "connected"; socket: TcpSocket }
  | { kind: "refused" }
  | { kind: "timeout" }
  | { kind: "unreachable" };

export type ListenResult = { kind: "listening"; listener: TcpListener } | { kind: "inUse" };

/** A connected TCP socket as a byte stream. */
export interface TcpSocket extends AsyncIterable<Uint8Array> {
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** Resolves when `data` is in the send buffer (backpressure); rejects never: a write after close is dropped and returns false. */
  write(data: Uint8Array): Promise<boolean>;
  /** The next chunk received, or null at end of stream (FIN received or connection gone). */
  read(): Promise<Uint8Array | null>;
  /** Half-close: FIN after everything written so far. */
  end(): void;
  /** Abortive close: RST now, buffers discarded. */
  abort(): void;
  /** TCP_NODELAY (Go's net package and Node's http server set it on every connection). */
  setNoDelay?(on: boolean): void;
  /** Resolves once the connection is fully gone (never rejects). */
  readonly closed: Promise<CloseReason>;
}

export interface TcpListener extends AsyncIterable<TcpSocket> {
  readonly port: number;
  /** The next established connection from the accept queue, or null once the listener is closed. */
  accept(): Promise<TcpSocket | null>;
  close(): void;
}

/**
 * The segment an ICMP error quotes (RFC 792: the original IP header and the first 8 bytes of its
 * payload, which hold a TCP header's ports and sequence number), as this host sent it: `src` and
 * `srcPort` are ours. Conntrack has already undone any NAT on the quote (RELATED errors).
 */
export interface QuotedSegment {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  srcPort: number;
  dstPort: number;
  seq: number;
}

/**
 * What TCP did with an ICMP error (Linux tcp_v4_err): "aborted" the connection (while opening),
 * recorded a "soft" error (synchronized states, RFC 1122 §4.2.3.9), lowered the MSS ("pmtu",
 * RFC 1191), dropped it as "outOfWindow" (quoted sequence number not in flight, RFC 5927 §4.1),
 * or "ignored" it (no such connection, a type TCP does not act on).
 */
export type IcmpErrorOutcome = "aborted" | "soft" | "pmtu" | "outOfWindow" | "ignored";

/**
 * An ICMP error reported to a datagram socket that asked for them (`Netns.bindUdp`'s onError),
 * as Linux reports ECONNREFUSED & co. to a connected UDP socket (__udp4_lib_err).
 */
export interface DatagramError {
  kind: "refused" | "unreachable";
  /** The destination of the datagram the error is about (the socket may have sent to several). */
  dst: Ipv4Addr;
  dstPort: number;
  /** The ICMP type and code as received. */
  type: number;
  code: number;
}
export type DatagramErrorHandler = (err: DatagramError) => void;

export interface ConnectOptions {
  /** Gives up with "timeout" after this many ms (curl -m / --connect-timeout); default: SYN retries as Linux (about 127 s). */
  timeoutMs?: number;
  /** Bind the local end to this port (nc -p); default: an ephemeral port. */
  localPort?: number;
  /**
   * Bind the local end to this address even if no interface holds it (IP_FREEBIND): the
   * emulated outside world speaks as the real client it stands for. Default: the route's source.
   */
  localAddress?: Ipv4Addr;
}

/** The TCP of one netns as apps see it. */
export interface TcpApi {
  listen(port: number, opts?: { backlog?: number }): ListenResult;
  connect(dst: Ipv4Addr, port: number, opts?: ConnectOptions): Promise<ConnectResult>;
}
