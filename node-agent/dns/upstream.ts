/**
 * The node's upstream resolvers, at the process edge (real sockets): where CoreDNS's
 * `forward . /etc/resolv.conf` sends names outside the cluster zone. A coredns pod has dnsPolicy
 * Default, so its /etc/resolv.conf is the node's: here KUBEWIRE_DNS_UPSTREAM, by default the
 * host's own nameservers.
 *
 * As CoreDNS's forward plugin (plugin/forward): the query goes out with a fresh random ID
 * (RFC 5452 §9.2) and comes back with the client's; a response is taken only from the upstream
 * it was sent to, with that ID and the same question (RFC 5452 §9.1); at most `max_concurrent`
 * (1000, kubeadm's Corefile) queries are in flight, beyond that REFUSED; a query nobody answered
 * within the deadline ends with SERVFAIL (the caller's), never a hang. Upstreams are tried in
 * order, each with its share of the deadline. A TCP client's query goes over TCP (forward's
 * default is the client's protocol).
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect as tcpConnect } from "node:net";
import { randomInt } from "node:crypto";
import type { Transport } from "./wire.ts";

export const MAX_CONCURRENT = 1000;
export const FORWARD_TIMEOUT_MS = 2000;

export interface UpstreamAddress {
  host: string;
  port: number;
}

/** "IP:port" strings (config, the Corefile's forward) as addresses; IPv6 ones are skipped (udp4). */
export function parseUpstreams(list: readonly string[]): UpstreamAddress[] {
  const out: UpstreamAddress[] = [];
  for (const hp of list) {
    const i = hp.lastIndexOf(":");
    if (i <= 0 || hp.startsWith("[")) continue;
    out.push({ host: hp.slice(0, i), port: Number(hp.slice(i + 1)) });
  }
  return out;
}

/** The end offset of the first question of a query (no compression in a question), or undefined. */
export function questionEnd(bytes: Uint8Array): number | undefined {
  let off = 12;
  for (let labels = 0; labels < 128; labels++) {
    if (off >= bytes.length) return undefined;
    const len = bytes[off]!;
    if (len === 0) return off + 5 <= bytes.length ? off + 5 : undefined;
    if (len > 63) return undefined;
    off += 1 + len;
  }
  return undefined;
}

/** Same question bytes, compared case-insensitively (RFC 4343: names compare without case). */
function sameQuestion(query: Uint8Array, response: Uint8Array, end: number): boolean {
  if (response.length < end) return false;
  for (let i = 12; i < end; i++) {
    let a = query[i]!;
    let b = response[i]!;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}

interface Pending {
  resolve(bytes: Uint8Array | undefined): void;
  origId: number;
  query: Uint8Array;
  end: number;
  to: UpstreamAddress;
}

export class Upstream {
  private sock: UdpSocket | undefined;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  /** Responses that matched nothing in flight (late, spoofed, or for another question). */
  unmatched = 0;

  constructor(
    private readonly upstreams: readonly UpstreamAddress[],
    private readonly timeoutMs = FORWARD_TIMEOUT_MS,
    private readonly maxConcurrent = MAX_CONCURRENT,
  ) {}

  get inFlight(): number {
    return this.pending.size;
  }

  async forward(query: Uint8Array, transport: Transport): Promise<Uint8Array | "refused" | undefined> {
    if (this.closed || this.upstreams.length === 0 || query.length < 12) return undefined;
    if (this.pending.size >= this.maxConcurrent) return "refused";
    const end = questionEnd(query);
    if (end === undefined) return undefined;
    // The caller's buffer may be reused once this returns to the event loop.
    query = Uint8Array.from(query);
    const share = this.timeoutMs / this.upstreams.length;
    for (const to of this.upstreams) {
      const out = transport === "tcp" ? await this.overTcp(query, to, share) : await this.overUdp(query, end, to, share);
      if (out) return out;
    }
    return undefined;
  }

  private socket(): UdpSocket {
    if (this.sock) return this.sock;
    const sock = createSocket("udp4");
    sock.on("error", () => {});
    sock.on("message", (msg, rinfo) => {
      if (msg.length < 12) return void this.unmatched++;
      const id = msg.readUInt16BE(0);
      const p = this.pending.get(id);
      if (!p || rinfo.address !== p.to.host || rinfo.port !== p.to.port || !sameQuestion(p.query, msg, p.end)) return void this.unmatched++;
      this.pending.delete(id);
      const out = Uint8Array.from(msg);
      out[0] = p.origId >> 8;
      out[1] = p.origId & 0xff;
      p.resolve(out);
    });
    sock.unref();
    this.sock = sock;
    return sock;
  }

  private overUdp(query: Uint8Array, end: number, to: UpstreamAddress, timeoutMs: number): Promise<Uint8Array | undefined> {
    let id = randomInt(0x10000);
    for (let tries = 0; this.pending.has(id) && tries < 64; tries++) id = randomInt(0x10000);
    if (this.pending.has(id)) return Promise.resolve(undefined);
    const out = Uint8Array.from(query);
    out[0] = id >> 8;
    out[1] = id & 0xff;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (bytes) => {
          clearTimeout(timer);
          resolve(bytes);
        },
        origId: (query[0]! << 8) | query[1]!,
        query: out,
        end,
        to,
      });
      this.socket().send(out, to.port, to.host, (err) => {
        if (!err) return;
        this.pending.get(id)?.resolve(undefined);
        this.pending.delete(id);
      });
    });
  }

  private overTcp(query: Uint8Array, to: UpstreamAddress, timeoutMs: number): Promise<Uint8Array | undefined> {
    return new Promise((resolve) => {
      const sock = tcpConnect({ host: to.host, port: to.port });
      let buf = Buffer.alloc(0);
      const finish = (bytes: Uint8Array | undefined) => {
        clearTimeout(timer);
        sock.destroy();
        resolve(bytes);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      sock.on("error", () => finish(undefined));
      sock.on("connect", () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        sock.write(Buffer.concat([len, query]));
      });
      sock.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2) return;
        const n = buf.readUInt16BE(0);
        if (buf.length < 2 + n) return;
        const msg = Uint8Array.from(buf.subarray(2, 2 + n));
        finish(msg.length >= 12 && msg[0] === query[0] && msg[1] === query[1] ? msg : undefined);
      });
      sock.on("end", () => finish(undefined));
    });
  }

  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) p.resolve(undefined);
    this.pending.clear();
    this.sock?.close();
    this.sock = undefined;
  }
}
