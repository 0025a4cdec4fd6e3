/**
 * ICMP errors reaching the transports (Linux tcp_v4_err / __udp4_lib_err with icmp_err_convert):
 * scripted against one TcpStack on the fake clock, then across the whole emulated network
 * (netsim) with netfilter REJECT rules, as kube-proxy rejects a Service without endpoints.
 */
import { describe, expect, it } from "vitest";
import type { ConnectResult, DatagramError, QuotedSegment } from "../../../node-agent/tcp/api.ts";
import { TcpStack, icmpErrConvert } from "../../../node-agent/tcp/stack.ts";
import { synOptions } from "../../../node-agent/tcp/tcb.ts";
import { Hook, Priority, type RejectWith, type RuleSet } from "../../../node-agent/netfilter.ts";
import type { Netns } from "../../../node-agent/netns.ts";
import { nc } from "../../../node-agent/tools/nc.ts";
import type { Clock } from "../../../node-agent/tools/common.ts";
import { IpProtocol, UnreachableCode } from "../../../overlay/wire/index.ts";
import { SimCluster, ip, recordIcmp } from "../netsim.ts";
import { Bench, F, LOCAL, LOCAL_PORT, REMOTE, REMOTE_PORT, RISS, bytes, settle } from "./harness.ts";

const UNREACH = 3;
const TIME_EXCEEDED = 11;
const { NetUnreachable, HostUnreachable, ProtocolUnreachable, PortUnreachable, FragmentationNeeded, AdminProhibited } = UnreachableCode;

/** The quote of a segment we sent from `port` to REMOTE:REMOTE_PORT with sequence number `seq`. */
function quote(port: number, seq: number): QuotedSegment {
  return { src: LOCAL, dst: REMOTE, srcPort: port, dstPort: REMOTE_PORT, seq: seq >>> 0 };
}

/** connect() to REMOTE:REMOTE_PORT, with the SYN taken; `result` is set once connect settles. */
async function opening(b: Bench): Promise<{ iss: number; port: number; outcome: () => ConnectResult | undefined }> {
  let result: ConnectResult | undefined;
  void b.stack.connect(REMOTE, REMOTE_PORT).then((r) => (result = r));
  const [syn] = b.take();
  expect(syn!.flags).toBe(F.SYN);
  return { iss: syn!.seq, port: syn!.srcPort, outcome: () => result };
}

/** An established connection with 100 bytes in flight that gets an ICMP error of `code` (a soft one). */
async function softErrorInFlight(code: number) {
  const b = new Bench();
  const { iss, sock, port } = await b.activeOpen();
  let closed: string | undefined;
  void sock.closed.then((r) => (closed = r.kind));
  await sock.write(bytes(100));
  b.take();
  expect(b.stack.icmpError(quote(port, iss + 1), UNREACH, code)).toBe("soft");
  return { b, iss, sock, port, closed: () => closed };
}

describe("icmpErrConvert (Linux icmp_err_convert)", () => {
  it("maps port and protocol unreachable to refused, the other codes to unreachable, with Linux's fatality", () => {
    expect(icmpErrConvert(UNREACH, PortUnreachable)).toEqual({ kind: "refused", errno: "ECONNREFUSED", fatal: true });
    expect(icmpErrConvert(UNREACH, ProtocolUnreachable)).toEqual({ kind: "refused", errno: "ENOPROTOOPT", fatal: true });
    expect(icmpErrConvert(UNREACH, NetUnreachable)).toEqual({ kind: "unreachable", errno: "ENETUNREACH", fatal: false });
    expect(icmpErrConvert(UNREACH, HostUnreachable)).toEqual({ kind: "unreachable", errno: "EHOSTUNREACH", fatal: false });
    expect(icmpErrConvert(UNREACH, AdminProhibited)).toEqual({ kind: "unreachable", errno: "EHOSTUNREACH", fatal: true });
    expect(icmpErrConvert(TIME_EXCEEDED, 0)).toEqual({ kind: "unreachable", errno: "EHOSTUNREACH", fatal: false });
    // PMTU is not a socket error; codes past 15, source quench (4) and other types are nothing.
    expect(icmpErrConvert(UNREACH, FragmentationNeeded)).toBeUndefined();
    expect(icmpErrConvert(UNREACH, 16)).toBeUndefined();
    expect(icmpErrConvert(4, 0)).toBeUndefined();
    expect(TcpStack.icmpErrConvert).toBe(icmpErrConvert);
  });
});

describe("tcp: ICMP errors while opening (SYN-SENT)", () => {
  it("port unreachable quoting the SYN: connect() is refused at once and the SYN is not retransmitted", async () => {
    const b = new Bench();
    const { iss, port, outcome } = await opening(b);
    b.advance(5);
    expect(b.stack.icmpError(quote(port, iss), UNREACH, PortUnreachable)).toBe("aborted");
    await settle();
    expect(outcome()).toEqual({ kind: "refused" });
    expect(b.stack.connections()).toEqual([]);
    b.runUntil(200_000);
    b.expectNothing();
    expect(b.stack.nextDeadline()).toBeUndefined();
    expect(b.stack.stats()).toMatchObject({ icmpErrorsAborted: 1, attemptFails: 1, retransSegs: 0, connections: 0 });
  });

  it.each([
    ["host unreachable", "unreachable", UNREACH, HostUnreachable],
    ["net unreachable", "unreachable", UNREACH, NetUnreachable],
    ["admin prohibited", "unreachable", UNREACH, AdminProhibited],
    ["protocol unreachable", "refused", UNREACH, ProtocolUnreachable],
    ["time exceeded", "unreachable", TIME_EXCEEDED, 0],
  ] as const)("%s aborts the connect: %s", async (_name, kind, type, code) => {
    const b = new Bench();
    const { iss, port, outcome } = await opening(b);
    expect(b.stack.icmpError(quote(port, iss), type, code)).toBe("aborted");
    await settle();
    expect(outcome()).toEqual({ kind });
  });

  it("a quoted sequence number outside SND.UNA..SND.NXT is ignored; the SYN goes on being retransmitted", async () => {
    const b = new Bench();
    const { iss, port, outcome } = await opening(b);
    expect(b.stack.icmpError(quote(port, iss + 5), UNREACH, PortUnreachable)).toBe("outOfWindow");
    expect(b.stack.icmpError(quote(port, iss - 1), UNREACH, PortUnreachable)).toBe("outOfWindow");
    // Another connection's 4-tuple: nothing of ours.
    expect(b.stack.icmpError(quote(port + 1, iss), UNREACH, PortUnreachable)).toBe("ignored");
    expect(b.stack.icmpError({ ...quote(port, iss), dst: REMOTE + 1 }, UNREACH, PortUnreachable)).toBe("ignored");
    // Source quench (obsolete) and types TCP does not act on.
    expect(b.stack.icmpError(quote(port, iss), 4, 0)).toBe("ignored");
    expect(b.stack.icmpError(quote(port, iss), UNREACH, 16)).toBe("ignored");
    await settle();
    expect(outcome()).toBeUndefined();
    b.at(1000);
    b.expect({ seq: iss, ack: 0, flags: F.SYN });
    expect(b.stack.stats()).toMatchObject({ outOfWindowIcmps: 2, icmpErrorsAborted: 0, connections: 1 });
  });

  it("fragmentation needed does not abort; the MSS it teaches outlives the peer's larger MSS option", async () => {
    const b = new Bench();
    const { iss, port, outcome } = await opening(b);
    expect(b.stack.icmpError(quote(port, iss), UNREACH, FragmentationNeeded, 1000)).toBe("pmtu");
    await settle();
    expect(outcome()).toBeUndefined();
    b.send({ seq: RISS, ack: iss + 1, flags: F.SYN | F.ACK, options: synOptions(1460, undefined), dstPort: port });
    await settle();
    const r = outcome();
    if (r?.kind !== "connected") throw new Error(`connect: ${r?.kind}`);
    b.take();
    await r.socket.write(bytes(2000));
    expect(b.take().map((s) => s.payload.length)).toEqual([960, 960, 80]);
    expect(b.stack.stats()).toMatchObject({ pmtuUpdates: 1, icmpErrorsAborted: 0 });
  });

  it("simultaneous open (SYN-RECEIVED from connect): aborted like SYN-SENT", async () => {
    const b = new Bench();
    const { iss, port, outcome } = await opening(b);
    b.send({ seq: RISS, flags: F.SYN, options: synOptions(1460, undefined), dstPort: port });
    b.expect({ seq: iss, ack: RISS + 1, flags: F.SYN | F.ACK });
    expect(b.stack.connections().map((c) => c.state)).toEqual(["SYN-RECEIVED"]);
    expect(b.stack.icmpError(quote(port, iss), UNREACH, PortUnreachable)).toBe("aborted");
    await settle();
    expect(outcome()).toEqual({ kind: "refused" });
  });
});

describe("tcp: ICMP errors on a passive open in SYN-RECEIVED (Linux tcp_req_err)", () => {
  function embryo(b: Bench): number {
    const l = b.stack.listen(LOCAL_PORT);
    if (l.kind !== "listening") throw new Error("listen");
    b.send({ seq: RISS, flags: F.SYN, options: synOptions(1460, undefined) });
    const [synAck] = b.take();
    return synAck!.seq;
  }
  const toClient = (seq: number): QuotedSegment => ({ src: LOCAL, dst: REMOTE, srcPort: LOCAL_PORT, dstPort: REMOTE_PORT, seq });

  it("port unreachable is ignored; host unreachable quoting the SYN-ACK drops the embryo silently", () => {
    const b = new Bench();
    const iss = embryo(b);
    expect(b.stack.icmpError(toClient(iss), UNREACH, PortUnreachable)).toBe("ignored");
    expect(b.stack.icmpError(toClient(iss + 1), UNREACH, HostUnreachable)).toBe("outOfWindow");
    expect(b.stack.stats().connections).toBe(1);
    expect(b.stack.icmpError(toClient(iss), UNREACH, HostUnreachable)).toBe("aborted");
    expect(b.stack.stats()).toMatchObject({ connections: 0, listeners: 1, listenDrops: 1 });
    b.runUntil(100_000);
    b.expectNothing();
  });
});

describe("tcp: ICMP errors in synchronized states", () => {
  it("port unreachable about data in flight is a soft error: the connection stays up and carries on", async () => {
    const b = new Bench();
    const { iss, sock, port } = await b.activeOpen();
    await sock.write(bytes(100));
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK | F.PSH, len: 100 });
    expect(b.stack.icmpError(quote(port, iss + 1), UNREACH, PortUnreachable)).toBe("soft");
    expect(b.stack.icmpError(quote(port, iss + 1), UNREACH, HostUnreachable)).toBe("soft");
    // Already acknowledged data, or never sent: out of window.
    expect(b.stack.icmpError(quote(port, iss), UNREACH, PortUnreachable)).toBe("outOfWindow");
    expect(b.stack.icmpError(quote(port, iss + 200), UNREACH, PortUnreachable)).toBe("outOfWindow");
    expect(b.stack.connections().map((c) => c.state)).toEqual(["ESTABLISHED"]);
    b.send({ seq: RISS + 1, ack: iss + 101, flags: F.ACK, payload: bytes(10), dstPort: port });
    expect(await sock.read()).toEqual(bytes(10));
    expect(await sock.write(bytes(5))).toBe(true);
    expect(b.stack.stats()).toMatchObject({ icmpErrorsSoft: 2, outOfWindowIcmps: 2, icmpErrorsAborted: 0, currEstab: 1 });
  });

  it("a connection that then times out reports the soft error, as Linux's sk_err_soft", async () => {
    const { b, iss, sock, port, closed } = await softErrorInFlight(PortUnreachable);
    b.runUntil(3_000_000);
    await settle();
    expect(closed()).toBe("refused");
    expect(b.stack.stats()).toMatchObject({ timeouts: 1, connections: 0 });
  });

  it("an acceptable ACK clears the soft error: a later timeout is a plain timeout", async () => {
    const { b, iss, sock, port, closed } = await softErrorInFlight(HostUnreachable);
    b.send({ seq: RISS + 1, ack: iss + 101, flags: F.ACK, dstPort: port });
    await sock.write(bytes(100));
    b.runUntil(3_000_000);
    await settle();
    expect(closed()).toBe("timeout");
  });

  it("fragmentation needed lowers the MSS and resends what is in flight at once, re-cut, without aborting", async () => {
    const b = new Bench();
    const { iss, sock, port } = await b.activeOpen();
    await sock.write(bytes(4000));
    expect(b.take().map((s) => s.payload.length)).toEqual([1460, 1460, 1080]);
    expect(b.stack.icmpError(quote(port, iss + 1), UNREACH, FragmentationNeeded, 1000)).toBe("pmtu");
    const again = b.take();
    expect(again.map((s) => [s.seq - iss, s.payload.length])).toEqual([[1, 960], [961, 960], [1921, 960], [2881, 960], [3841, 160]]);
    // A larger MTU, or the same again, changes nothing; an MTU of 0 (pre-RFC 1191 router) is ignored.
    expect(b.stack.icmpError(quote(port, iss + 1), UNREACH, FragmentationNeeded, 1200)).toBe("ignored");
    expect(b.stack.icmpError(quote(port, iss + 1), UNREACH, FragmentationNeeded, 1000)).toBe("ignored");
    expect(b.stack.icmpError(quote(port, iss + 1), UNREACH, FragmentationNeeded, 0)).toBe("ignored");
    b.expectNothing();
    b.send({ seq: RISS + 1, ack: iss + 4001, flags: F.ACK, dstPort: port });
    await sock.write(bytes(1000));
    expect(b.take().map((s) => s.payload.length)).toEqual([960, 40]);
    expect(b.stack.connections().map((c) => c.state)).toEqual(["ESTABLISHED"]);
    expect(b.stack.stats()).toMatchObject({ pmtuUpdates: 1, icmpErrorsAborted: 0 });
  });

  it("a tiny next-hop MTU is raised to 552 (Linux ip_rt_min_pmtu)", async () => {
    const b = new Bench();
    const { iss, sock, port } = await b.activeOpen();
    await sock.write(bytes(1000));
    b.take();
    expect(b.stack.icmpError(quote(port, iss + 1), UNREACH, FragmentationNeeded, 68)).toBe("pmtu");
    expect(b.take().map((s) => s.payload.length)).toEqual([512, 488]);
  });

  it("TIME-WAIT ignores ICMP errors", async () => {
    const b = new Bench();
    const { iss, sock, port } = await b.activeOpen();
    sock.end();
    b.expect({ seq: iss + 1, ack: RISS + 1, flags: F.ACK | F.FIN });
    b.send({ seq: RISS + 1, ack: iss + 2, flags: F.ACK | F.FIN, dstPort: port });
    expect(b.stack.connections().map((c) => c.state)).toEqual(["TIME-WAIT"]);
    expect(b.stack.icmpError(quote(port, iss + 1), UNREACH, PortUnreachable)).toBe("ignored");
    expect(b.stack.connections().map((c) => c.state)).toEqual(["TIME-WAIT"]);
  });
});

// ------------------------------------------------------------------ whole network

/** Steps the network in `stepMs` slices, letting app code run between them, until `done` or `limitMs`. */
async function drive(c: SimCluster, done: () => boolean, limitMs: number, stepMs = 1): Promise<void> {
  const end = c.now + limitMs;
  while (!done() && c.now < end) {
    c.runFor(stepMs);
    await settle();
  }
}

/** A filter rule set rejecting what `match` selects, as kube-proxy's KUBE-SERVICES rejects a Service without endpoints. */
function rejecting(hook: Hook, how: RejectWith, match: (p: { proto: number; dst: number; dport: number }) => boolean): RuleSet {
  return {
    name: `test-reject-${how}`,
    hook,
    priority: Priority.Filter,
    evaluate: (p) => (match(p) ? { kind: "reject", with: how, rule: `reject ${how}` } : { kind: "continue" }),
  };
}

/** A tool clock on the simulation's virtual time: sleeps end as `drive` moves the clock past them. */
class SimClock implements Clock {
  private timers: { at: number; resolve: () => void }[] = [];
  constructor(private readonly c: SimCluster) {}
  now(): number {
    return this.c.now;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.timers.push({ at: this.c.now + ms, resolve }));
  }
  yieldTurn(): Promise<void> {
    return settle();
  }
  fire(): void {
    const due = this.timers.filter((t) => t.at <= this.c.now);
    this.timers = this.timers.filter((t) => t.at > this.c.now);
    for (const t of due) t.resolve();
  }
}

function connectResult(ns: Netns, dst: number, port: number): { get: () => ConnectResult | undefined } {
  let r: ConnectResult | undefined;
  void ns.tcp.connect(dst, port).then((x) => (r = x));
  return { get: () => r };
}

describe("netsim: ICMP errors reach the sockets", () => {
  const VIP = ip("10.96.0.10");

  it("a Service VIP REJECTed on the node (no endpoints): connect() is refused within a round trip, without SYN retries", async () => {
    const c = new SimCluster(2);
    const a = c.addPod("node-1", "pod-a", "10.244.0.2");
    c.addPod("node-2", "pod-b", "10.244.1.2");
    const icmp = recordIcmp(a.ns);
    c.node("node-1").net.root.netfilter.replace("test", [rejecting(Hook.Forward, "icmp-port-unreachable", (p) => p.proto === IpProtocol.TCP && p.dst === VIP)]);
    const started = c.now;
    const r = connectResult(a.ns, VIP, 80);
    await drive(c, () => r.get() !== undefined, 10_000);
    expect(r.get()).toEqual({ kind: "refused" });
    expect(c.now - started).toBeLessThan(50);
    // ping and traceroute's listeners still see the error.
    expect(icmp.map((e) => [e.kind, e.code, e.quoted?.dst])).toEqual([["destUnreachable", PortUnreachable, "10.96.0.10"]]);
    expect(a.ns.tcp.stats()).toMatchObject({ icmpErrorsAborted: 1, retransSegs: 0, connections: 0 });
  });

  it("REJECT with icmp-host-unreachable in the destination pod: connect() fails unreachable at once", async () => {
    const c = new SimCluster(2);
    const a = c.addPod("node-1", "pod-a", "10.244.0.2");
    const b = c.addPod("node-2", "pod-b", "10.244.1.2");
    b.ns.netfilter.replace("test", [rejecting(Hook.Input, "icmp-host-unreachable", (p) => p.proto === IpProtocol.TCP && p.dport === 5001)]);
    const l = b.ns.tcp.listen(5001);
    if (l.kind !== "listening") throw new Error("listen");
    const r = connectResult(a.ns, b.ip, 5001);
    await drive(c, () => r.get() !== undefined, 10_000);
    expect(r.get()).toEqual({ kind: "unreachable" });
    expect(c.now).toBeLessThan(50);
  });

  it("REJECT with icmp-port-unreachable of an established connection's data: a soft error, the connection survives", async () => {
    const c = new SimCluster(2);
    const a = c.addPod("node-1", "pod-a", "10.244.0.2");
    const b = c.addPod("node-2", "pod-b", "10.244.1.2");
    const l = b.ns.tcp.listen(5001);
    if (l.kind !== "listening") throw new Error("listen");
    const received: Uint8Array[] = [];
    void l.listener.accept().then(async (s) => {
      if (s) for await (const chunk of s) received.push(chunk);
    });
    const r = connectResult(a.ns, b.ip, 5001);
    await drive(c, () => r.get() !== undefined, 10_000);
    const res = r.get();
    if (res?.kind !== "connected") throw new Error(`connect: ${res?.kind}`);
    c.node("node-2").net.root.netfilter.replace("test", [rejecting(Hook.Forward, "icmp-port-unreachable", (p) => p.proto === IpProtocol.TCP && p.dport === 5001)]);
    await res.socket.write(new TextEncoder().encode("hello"));
    await drive(c, () => a.ns.tcp.stats().icmpErrorsSoft > 0, 5_000);
    expect(a.ns.tcp.stats()).toMatchObject({ icmpErrorsSoft: 1, icmpErrorsAborted: 0, currEstab: 1 });
    c.node("node-2").net.root.netfilter.replace("test", []);
    await drive(c, () => received.length > 0, 10_000);
    expect(Buffer.concat(received).toString()).toBe("hello");
  });

  it("a UDP socket with onError hears refused for a closed port and for a REJECT; one without does not, and onIcmp still sees all", async () => {
    const c = new SimCluster(2);
    const a = c.addPod("node-1", "pod-a", "10.244.0.2");
    const b = c.addPod("node-2", "pod-b", "10.244.1.2");
    const icmp = recordIcmp(a.ns);
    const errors: DatagramError[] = [];
    const port = a.ns.bindEphemeralUdp(() => {}, (e) => errors.push({ ...e }));
    const quiet = a.ns.bindEphemeralUdp(() => {});
    // Nothing bound on pod-b:9999: the destination answers port unreachable.
    a.ns.sendUdp(b.ip, 9999, port, new Uint8Array([1]));
    a.ns.sendUdp(b.ip, 9999, quiet, new Uint8Array([1]));
    c.run();
    expect(errors).toEqual([{ kind: "refused", dst: b.ip, dstPort: 9999, type: UNREACH, code: PortUnreachable }]);
    // kube-proxy's REJECT of a UDP Service without endpoints, on the client's node.
    c.node("node-1").net.root.netfilter.replace("test", [rejecting(Hook.Forward, "icmp-port-unreachable", (p) => p.proto === IpProtocol.UDP && p.dst === VIP)]);
    a.ns.sendUdp(VIP, 53, port, new Uint8Array([2]));
    c.run();
    expect(errors.map((e) => [e.kind, e.dst, e.dstPort])).toEqual([["refused", b.ip, 9999], ["refused", VIP, 53]]);
    // Host unreachable is not a hard error for UDP (__udp4_lib_err without IP_RECVERR).
    c.node("node-1").net.root.netfilter.replace("test", [rejecting(Hook.Forward, "icmp-host-unreachable", (p) => p.proto === IpProtocol.UDP && p.dst === VIP)]);
    a.ns.sendUdp(VIP, 53, port, new Uint8Array([3]));
    c.run();
    expect(errors).toHaveLength(2);
    expect(icmp.map((e) => e.code)).toEqual([PortUnreachable, PortUnreachable, PortUnreachable, HostUnreachable]);
    // Unbound: the callback goes with the socket.
    a.ns.unbindUdp(port);
    a.ns.sendUdp(b.ip, 9999, port, new Uint8Array([4]));
    c.run();
    expect(errors).toHaveLength(2);
  });

  it("nc -zvu: a port unreachable ends the probe at once with Connection refused and exit 1", async () => {
    const c = new SimCluster(2);
    const a = c.addPod("node-1", "pod-a", "10.244.0.2");
    const b = c.addPod("node-2", "pod-b", "10.244.1.2");
    const clock = new SimClock(c);
    /** Runs nc in pod-a on the virtual clock; returns its result and the virtual time it took. */
    const runNc = async (args: string[]) => {
      let done: Awaited<ReturnType<typeof nc>> | undefined;
      void nc({ ns: a.ns, tcp: a.ns.tcp, podName: "pod-a", clock }, args).then((r) => (done = r));
      const started = c.now;
      while (done === undefined && c.now - started < 20_000) {
        c.runFor(1);
        clock.fire();
        await settle();
      }
      return { result: done, tookMs: c.now - started };
    };
    const refused = await runNc(["-zvu", "-w", "5", "10.244.1.2", "9999"]);
    expect(refused.result).toEqual({ exitCode: 1, stdout: "", stderr: "nc: connect to 10.244.1.2 port 9999 (udp) failed: Connection refused\n" });
    expect(refused.tookMs).toBeLessThan(50);
    // An open port sends no error, so the probe "succeeds" when the wait ends (OpenBSD nc cannot tell more).
    b.ns.bindUdp(9999, () => {});
    const open = await runNc(["-zvu", "-w", "1", "10.244.1.2", "9999"]);
    expect(open.result?.exitCode).toBe(0);
    expect(open.tookMs).toBeGreaterThanOrEqual(1000);
  });
});
