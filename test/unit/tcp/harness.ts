/**
 * Scripted TCP tests in the style of smoltcp's send!/recv!: one TcpStack with a fake host (a
 * clock the test sets, a seeded RNG, output() recording segments), and the test playing the
 * remote end by hand-building segments.
 */
import { expect } from "vitest";
import type { SegmentIn, SegmentOut, TcpHost, TcpSocket } from "../../../node-agent/tcp/api.ts";
import { TcpStack, type TcpStackOptions } from "../../../node-agent/tcp/stack.ts";
import { synOptions } from "../../../node-agent/tcp/tcb.ts";
import { TcpFlag } from "../../../overlay/wire/tcp.ts";
import type { Ipv4Addr } from "../../../overlay/wire/common.ts";
import { mulberry32 } from "../wire/rng.ts";

export const F = TcpFlag;
export const LOCAL: Ipv4Addr = 0x0a00_0001; // 10.0.0.1
export const REMOTE: Ipv4Addr = 0x0a00_0002; // 10.0.0.2
export const UNROUTED: Ipv4Addr = 0xc0a8_0001; // 192.168.0.1
export const LOCAL_PORT = 80;
export const REMOTE_PORT = 40000;
/** The remote's ISS in scripted exchanges. */
export const RISS = 1000;
const EMPTY = new Uint8Array(0);

export class FakeHost implements TcpHost {
  nowMs = 0;
  out: SegmentOut[] = [];
  outputResult = true;
  private readonly rng: () => number;

  constructor(
    seed: number,
    readonly addr: Ipv4Addr = LOCAL,
    readonly mtu = 1500,
  ) {
    this.rng = mulberry32(seed);
  }

  now(): number {
    return this.nowMs;
  }
  random(): number {
    return Math.floor(this.rng() * 4294967296) >>> 0;
  }
  output(seg: SegmentOut): boolean {
    this.out.push(seg);
    return this.outputResult;
  }
  sourceFor(dst: Ipv4Addr): Ipv4Addr | undefined {
    return dst === UNROUTED ? undefined : this.addr;
  }
  mtuFor(): number {
    return this.mtu;
  }
  isLocal(ip: Ipv4Addr): boolean {
    return ip === this.addr;
  }
}

export interface SegSpec {
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  payload?: Uint8Array | number;
  options?: Uint8Array;
  srcPort?: number;
  dstPort?: number;
}

export interface Expected {
  seq: number;
  ack: number;
  flags: number;
  window?: number;
  len?: number;
}

export function bytes(n: number, start = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (start + i) & 0xff;
  return b;
}

/** One stack under test, the remote played by the test. */
export class Bench {
  readonly host: FakeHost;
  readonly stack: TcpStack;

  constructor(opts: TcpStackOptions = {}, seed = 1, mtu = 1500) {
    this.host = new FakeHost(seed, LOCAL, mtu);
    this.stack = new TcpStack(this.host, opts);
  }

  /** The remote sends a segment to us (default ports: REMOTE_PORT -> LOCAL_PORT). */
  send(s: SegSpec): void {
    const payload = typeof s.payload === "number" ? bytes(s.payload) : (s.payload ?? EMPTY);
    const seg: SegmentIn = {
      src: REMOTE,
      dst: LOCAL,
      srcPort: s.srcPort ?? REMOTE_PORT,
      dstPort: s.dstPort ?? LOCAL_PORT,
      seq: s.seq >>> 0,
      ack: (s.ack ?? 0) >>> 0,
      flags: s.flags,
      window: s.window ?? 65535,
      options: s.options ?? EMPTY,
      payload,
    };
    this.stack.input(seg);
  }

  /** Everything sent since the last take(). */
  take(): SegmentOut[] {
    const out = this.host.out;
    this.host.out = [];
    return out;
  }

  /** Expects exactly these segments (in order) since the last take(). */
  expect(...expected: Expected[]): SegmentOut[] {
    const got = this.take();
    expect(got.map(project)).toEqual(expected.map((e) => ({ ...e, len: e.len ?? 0 })).map((e, i) => fill(e, got[i])));
    return got;
  }

  expectNothing(): void {
    expect(this.take().map(project)).toEqual([]);
  }

  /** Moves the clock to `t` and runs the timers. */
  at(t: number): void {
    this.host.nowMs = t;
    this.stack.poll(t);
  }

  advance(ms: number): void {
    this.at(this.host.nowMs + ms);
  }

  /** Runs timers until `t`, stopping at each deadline. */
  runUntil(t: number): void {
    for (;;) {
      const d = this.stack.nextDeadline();
      if (d === undefined || d > t) break;
      this.at(d);
    }
    this.at(t);
  }

  /**
   * Active open from an ephemeral port to REMOTE:REMOTE_PORT. Returns our ISS, port and the
   * socket. `synAckOptions` defaults to MSS 1460 without window scale.
   */
  async activeOpen(opts: { synAckOptions?: Uint8Array; window?: number } = {}): Promise<{ iss: number; sock: TcpSocket; port: number }> {
    const p = this.stack.connect(REMOTE, REMOTE_PORT);
    const [syn] = this.take();
    expect(syn!.flags).toBe(F.SYN);
    const iss = syn!.seq;
    const port = syn!.srcPort;
    this.send({
      seq: RISS,
      ack: iss + 1,
      flags: F.SYN | F.ACK,
      window: opts.window ?? 65535,
      options: opts.synAckOptions ?? synOptions(1460, undefined),
      srcPort: REMOTE_PORT,
      dstPort: port,
    });
    const r = await p;
    if (r.kind !== "connected") throw new Error(`connect: ${r.kind}`);
    this.take(); // the ACK
    return { iss, sock: r.socket, port };
  }

  /** Passive open on LOCAL_PORT from REMOTE:REMOTE_PORT. Returns our ISS and the accepted socket. */
  async passiveOpen(opts: { synOptions?: Uint8Array; window?: number; backlog?: number } = {}): Promise<{ iss: number; sock: TcpSocket }> {
    const l = this.stack.listen(LOCAL_PORT, opts.backlog === undefined ? undefined : { backlog: opts.backlog });
    if (l.kind !== "listening") throw new Error("listen");
    this.send({ seq: RISS, flags: F.SYN, window: opts.window ?? 65535, options: opts.synOptions ?? synOptions(1460, undefined) });
    const [synAck] = this.take();
    expect(synAck!.flags).toBe(F.SYN | F.ACK);
    const iss = synAck!.seq;
    this.send({ seq: RISS + 1, ack: iss + 1, flags: F.ACK, window: opts.window ?? 65535 });
    const sock = await l.listener.accept();
    if (sock === null) throw new Error("accept");
    this.take();
    return { iss, sock };
  }
}

function project(s: SegmentOut): Expected {
  return { seq: s.seq, ack: s.ack, flags: s.flags, window: s.window, len: s.payload.length };
}

/** Fields the expectation leaves out are taken from the actual segment. */
function fill(e: Expected, got: SegmentOut | undefined): Expected {
  return { seq: e.seq >>> 0, ack: e.ack >>> 0, flags: e.flags, window: e.window ?? got?.window ?? 0, len: e.len ?? 0 };
}

/** Lets promise continuations (app code) run. */
export async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}
