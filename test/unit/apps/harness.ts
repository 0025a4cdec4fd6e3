/**
 * Test harness for apps and tools: a virtual clock that advances only when everything else
 * is idle (so a 2 s timeout costs no real time), and a tiny in-memory UDP with ICMP port
 * unreachable, beside `MemoryTcpNetwork`.
 */
import type { IcmpRepr, Ipv4Packet } from "../../../overlay/wire/index.ts";
import { IpProtocol, UnreachableCode, parseIpv4Addr } from "../../../overlay/wire/index.ts";
import type { Netns, UdpMeta } from "../../../node-agent/netns.ts";
import type { ContainerSpec, UdpApi } from "../../../node-agent/apps/index.ts";
import { startPodApps } from "../../../node-agent/apps/index.ts";
import { MemoryTcpNetwork, type MemoryTcpHost } from "../../../node-agent/tcp/memory.ts";
import type { DatagramErrorHandler } from "../../../node-agent/tcp/api.ts";
import type { Clock, ToolContext } from "../../../node-agent/tools/common.ts";

export function ip(text: string): number {
  const addr = parseIpv4Addr(text);
  if (addr === undefined) throw new Error(`bad address ${text}`);
  return addr;
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

/** Macrotask turns with nothing new happening before virtual time jumps to the next timer. */
const IDLE_TURNS = 10;

export class VirtualClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers: Timer[] = [];
  private driving = false;

  now(): number {
    return this.t;
  }

  readonly schedule = (ms: number, fn: () => void): (() => void) => {
    const timer: Timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, live: true };
    this.timers.push(timer);
    this.drive();
    return () => void (timer.live = false);
  };

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.schedule(ms, resolve));
  }

  yieldTurn(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  private drive(): void {
    if (this.driving) return;
    this.driving = true;
    void (async () => {
      for (;;) {
        for (let i = 0; i < IDLE_TURNS; i++) await new Promise((resolve) => setImmediate(resolve));
        this.timers = this.timers.filter((t) => t.live);
        if (this.timers.length === 0) break;
        this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
        const next = this.timers.shift()!;
        this.t = Math.max(this.t, next.at);
        next.fn();
      }
      this.driving = false;
    })();
  }
}

type Handler = (payload: Uint8Array, meta: UdpMeta) => void;

/** UDP between fake hosts; a datagram to a closed port comes back as ICMP port unreachable. */
export class MemoryUdpNetwork {
  private readonly hosts = new Map<number, MemoryUdpHost>();
  host(addr: number): MemoryUdpHost {
    let h = this.hosts.get(addr);
    if (!h) this.hosts.set(addr, (h = new MemoryUdpHost(this, addr)));
    return h;
  }
  deliver(src: number, srcPort: number, dst: number, dstPort: number, payload: Uint8Array): void {
    const target = this.hosts.get(dst);
    if (!target) return;
    queueMicrotask(() => {
      const handler = target.sockets.get(dstPort);
      if (handler) return handler(payload.slice(), { src, srcPort, dst, dstPort, ttl: 64 });
      // RFC 792: the error quotes the IP header and the first 8 bytes (the UDP header).
      const original = new Uint8Array(28);
      const v = new DataView(original.buffer);
      original[0] = 0x45;
      original[9] = IpProtocol.UDP;
      v.setUint32(12, src);
      v.setUint32(16, dst);
      v.setUint16(20, srcPort);
      v.setUint16(22, dstPort);
      const icmp: IcmpRepr = { kind: "destUnreachable", code: UnreachableCode.PortUnreachable, nextHopMtu: 0, original };
      const from = this.hosts.get(src);
      from?.icmp(icmp, dst);
      // As Netns does: the sending socket's onError hears of it too (ECONNREFUSED).
      from?.errors.get(srcPort)?.({ kind: "refused", dst, dstPort, type: 3, code: UnreachableCode.PortUnreachable });
    });
  }
}

export class MemoryUdpHost implements UdpApi {
  readonly sockets = new Map<number, Handler>();
  readonly errors = new Map<number, DatagramErrorHandler>();
  private readonly listeners = new Set<(icmp: IcmpRepr, ip: Ipv4Packet) => void>();
  private nextPort = 40000;
  constructor(
    private readonly net: MemoryUdpNetwork,
    readonly addr: number,
  ) {}
  bindUdp(port: number, handler: Handler, onError?: DatagramErrorHandler): { kind: "bound"; port: number } | { kind: "inUse" } {
    if (this.sockets.has(port)) return { kind: "inUse" };
    this.sockets.set(port, handler);
    if (onError) this.errors.set(port, onError);
    return { kind: "bound", port };
  }
  bindEphemeralUdp(handler: Handler, onError?: DatagramErrorHandler): number {
    while (this.sockets.has(this.nextPort)) this.nextPort++;
    this.sockets.set(this.nextPort, handler);
    if (onError) this.errors.set(this.nextPort, onError);
    return this.nextPort++;
  }
  unbindUdp(port: number): void {
    this.sockets.delete(port);
    this.errors.delete(port);
  }
  sendUdp(dst: number, dstPort: number, srcPort: number, payload: Uint8Array): { kind: "sent" } {
    this.net.deliver(this.addr, srcPort, dst, dstPort, payload);
    return { kind: "sent" };
  }
  onIcmp(listener: (icmp: IcmpRepr, ip: Ipv4Packet) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  icmp(icmp: IcmpRepr, from: number): void {
    for (const l of this.listeners) l(icmp, { src: from } as Ipv4Packet);
  }
}

export const SERVER = "10.244.1.5";
export const CLIENT = "10.244.2.7";

/** One server pod running `containers`, one client pod with the tools. */
export function cluster(containers: ContainerSpec[], podName = "server-pod") {
  const clock = new VirtualClock();
  const tcp = new MemoryTcpNetwork({ schedule: clock.schedule });
  const udp = new MemoryUdpNetwork();
  const logs: string[] = [];
  const serverTcp: MemoryTcpHost = tcp.host(ip(SERVER));
  const apps = startPodApps({ podName, tcp: serverTcp, udp: udp.host(ip(SERVER)), log: (line) => logs.push(line), now: () => new Date(Date.UTC(2024, 4, 6, 7, 8, 9, 120)), schedule: clock.schedule }, containers);
  const clientUdp = udp.host(ip(CLIENT));
  // The tools only use the UDP/ICMP part of a Netns; the fake has exactly those methods.
  const ctx: ToolContext = { ns: clientUdp as unknown as Netns, tcp: tcp.host(ip(CLIENT)), podName: "client-pod", clock };
  return { clock, tcp, udp, logs, apps, ctx, serverTcp, clientUdp };
}
