import { describe, expect, it } from "vitest";
import {
  CT_OK,
  Conntrack,
  CtStatus,
  CtTimeouts,
  TcpState,
  formatEntry,
  invert,
  tupleOf,
  type ConnEntry,
  type Trackable,
} from "../../node-agent/conntrack.ts";
import { CtDir, CtState, PacketPool, type Packet } from "../../node-agent/packet.ts";
import { IpProtocol, pseudoHeaderSum, readU16 } from "../../overlay/wire/index.ts";
import { TcpFlag, checksums, icmpEcho, icmpError, ip, ipBytes, tcpPacket, udpPacket } from "./packets.ts";
import { mulberry32, randInt, randomBytes } from "./wire/rng.ts";

// The datapath's descriptor is what conntrack takes.
const _trackable: Trackable = new PacketPool().alloc(0);
void _trackable;

const C = ip("10.244.0.2"); // client pod
const V = ip("10.96.0.10"); // service VIP
const S = ip("10.244.1.3"); // backend pod
const S2 = ip("10.244.2.4");
const N = ip("192.168.1.10"); // node address
const X = ip("8.8.8.8"); // outside
const R = ip("10.244.1.1"); // a router on the way

const { SYN, ACK, FIN, RST, PSH } = TcpFlag;
const rng = mulberry32(7);

/** conntrack at PREROUTING/OUTPUT, then confirm: a packet that goes all the way. */
function pass(ct: Conntrack, p: Packet, now: number): Packet {
  expect(ct.in(p, now)).toBe(CT_OK);
  expect(ct.confirm(p, now)).toBe("ok");
  return p;
}

/** Every checksum of `p` equals its full recompute and the wire parsers accept it. */
function expectChecksumsValid(p: Packet): void {
  const c = checksums(p);
  expect(c.ip.found).toBe(c.ip.full);
  if (c.l4) expect(c.l4.found).toBe(c.l4.full);
  if (c.innerIp) expect(c.innerIp.found).toBe(c.innerIp.full);
  expect(c.parsesOk).toBe(true);
}

function tcp(src: number, sport: number, dst: number, dport: number, flags: number, payload?: Uint8Array): Packet {
  return tcpPacket({ src, dst, sport, dport, flags, ...(payload ? { payload } : {}) });
}

describe("tuples", () => {
  it("tupleOf and invert", () => {
    const p = udpPacket({ src: C, dst: S, sport: 40000, dport: 53 });
    const t = tupleOf(p);
    expect(t).toEqual({ proto: 17, src: C, dst: S, sport: 40000, dport: 53 });
    expect(invert(t)).toEqual({ proto: 17, src: S, dst: C, sport: 53, dport: 40000 });
    expect(invert(invert(t))).toEqual(t);
  });

  it("finds the entry from either direction; unconfirmed entries are on the packet only", () => {
    const ct = new Conntrack();
    const q = udpPacket({ src: C, dst: S, sport: 40000, dport: 53 });
    expect(ct.in(q, 0)).toBe(CT_OK);
    expect(q.ctState).toBe(CtState.New);
    expect(q.ct?.confirmed).toBe(false);
    expect(ct.size).toBe(0);
    expect(ct.find(tupleOf(q), 0)).toEqual({ kind: "none" });
    expect(ct.confirm(q, 0)).toBe("ok");
    expect(ct.size).toBe(1);
    const e = q.ct!;
    expect(e.tuple).toEqual([tupleOf(q), invert(tupleOf(q))]);

    const a = udpPacket({ src: S, dst: C, sport: 53, dport: 40000 });
    ct.in(a, 1);
    expect(a.ct).toBe(e);
    expect(a.ctDir).toBe(CtDir.Reply);
    expect(a.ctState).toBe(CtState.Established);
    const again = udpPacket({ src: C, dst: S, sport: 40000, dport: 53 });
    ct.in(again, 2);
    expect(again.ct).toBe(e);
    expect(again.ctDir).toBe(CtDir.Original);
    expect(again.ctState).toBe(CtState.Established);
    expect(ct.find(invert(tupleOf(q)), 2)).toEqual({ kind: "found", entry: e, dir: CtDir.Reply });
    expect(e.packets).toEqual([2, 1]);
    expect(e.bytes).toEqual([56, 28]);
    expect(ct.stats).toMatchObject({ new: 1, insert: 1, found: 2 });
  });

  it("a second packet in the original direction before any reply is still NEW", () => {
    const ct = new Conntrack();
    pass(ct, udpPacket({ src: C, dst: S, sport: 1, dport: 2 }), 0);
    const p = udpPacket({ src: C, dst: S, sport: 1, dport: 2 });
    ct.in(p, 1);
    expect(p.ctState).toBe(CtState.New);
    expect(p.ct?.confirmed).toBe(true);
  });

  it("keeps many connections apart (the table grows)", () => {
    const ct = new Conntrack();
    for (let i = 0; i < 1000; i++) pass(ct, udpPacket({ src: C, dst: S, sport: 10000 + i, dport: 53 }), 0);
    expect(ct.size).toBe(1000);
    for (let i = 0; i < 1000; i += 37) {
      const a = udpPacket({ src: S, dst: C, sport: 53, dport: 10000 + i });
      ct.in(a, 1);
      expect(a.ct?.tuple[0].sport).toBe(10000 + i);
      expect(a.ctDir).toBe(CtDir.Reply);
    }
    expect(ct.list().map((e) => e.tuple[0].sport)).toEqual(Array.from({ length: 1000 }, (_, i) => 10000 + i));
  });
});

describe("TCP states (tcp_conntracks)", () => {
  const T = CtTimeouts;

  it("handshake, data, FIN/FIN close", () => {
    const ct = new Conntrack();
    let t = 0;
    const out = (flags: number, payload?: Uint8Array) => tcp(C, 40000, S, 80, flags, payload);
    const back = (flags: number, payload?: Uint8Array) => tcp(S, 80, C, 40000, flags, payload);
    const syn = pass(ct, out(SYN), t);
    const e = syn.ct!;
    expect(syn.ctState).toBe(CtState.New);
    expect(e.state).toBe(TcpState.SynSent);
    expect(e.deadline - t).toBe(T.tcp_timeout_syn_sent);

    const synack = pass(ct, back(SYN | ACK), ++t);
    expect([synack.ct, synack.ctDir, synack.ctState]).toEqual([e, CtDir.Reply, CtState.Established]);
    expect(e.state).toBe(TcpState.SynRecv);
    expect(e.deadline - t).toBe(T.tcp_timeout_syn_recv);
    expect(e.seenReply).toBe(true);
    expect(e.assured).toBe(false);

    pass(ct, out(ACK), ++t);
    expect(e.state).toBe(TcpState.Established);
    expect(e.assured).toBe(true);
    expect(e.deadline - t).toBe(T.tcp_timeout_established);

    pass(ct, out(ACK | PSH, new Uint8Array(100)), ++t);
    pass(ct, back(ACK | PSH, new Uint8Array(300)), ++t);
    expect(e.state).toBe(TcpState.Established);
    expect(e.packets).toEqual([3, 2]);
    expect(e.bytes).toEqual([40 + 40 + 140, 40 + 340]);

    pass(ct, out(FIN | ACK), ++t);
    expect(e.state).toBe(TcpState.FinWait);
    expect(e.deadline - t).toBe(T.tcp_timeout_fin_wait);
    pass(ct, back(ACK), ++t);
    expect(e.state).toBe(TcpState.CloseWait);
    expect(e.deadline - t).toBe(T.tcp_timeout_close_wait);
    pass(ct, back(FIN | ACK), ++t);
    expect(e.state).toBe(TcpState.LastAck);
    expect(e.deadline - t).toBe(T.tcp_timeout_last_ack);
    pass(ct, out(ACK), ++t);
    expect(e.state).toBe(TcpState.TimeWait);
    expect(e.deadline - t).toBe(T.tcp_timeout_time_wait);
    expect(ct.size).toBe(1);
  });

  it("RST moves an established connection to CLOSE", () => {
    const ct = new Conntrack();
    const e = pass(ct, tcp(C, 1, S, 80, SYN), 0).ct!;
    pass(ct, tcp(S, 80, C, 1, SYN | ACK), 0);
    pass(ct, tcp(C, 1, S, 80, ACK), 0);
    pass(ct, tcp(S, 80, C, 1, RST), 5);
    expect(e.state).toBe(TcpState.Close);
    expect(e.deadline).toBe(5 + CtTimeouts.tcp_timeout_close);
  });

  it("a RST answering a SYN (connection refused) deletes the entry at once", () => {
    const ct = new Conntrack();
    pass(ct, tcp(C, 1, S, 80, SYN), 0);
    const rst = pass(ct, tcp(S, 80, C, 1, RST | ACK), 1);
    expect(rst.ctDir).toBe(CtDir.Reply);
    expect(ct.size).toBe(0);
  });

  it("picks up a connection mid-stream on an ACK (tcp_loose); RST, FIN, SYN/ACK or no flags without an entry are INVALID", () => {
    const ct = new Conntrack();
    const mid = pass(ct, tcp(C, 2, S, 80, ACK), 0);
    expect(mid.ctState).toBe(CtState.New);
    expect(mid.ct?.state).toBe(TcpState.Established);
    for (const flags of [RST, RST | ACK, FIN | ACK, SYN | ACK, 0, PSH]) {
      const p = tcp(C, 3, S, 80, flags);
      expect(ct.in(p, 0)).toEqual({ kind: "invalid", reason: "tcp_new" });
      expect([p.ct, p.ctState]).toEqual([undefined, CtState.Invalid]);
    }
    expect(ct.stats.invalid).toBe(6);
    // More of the same direction does not assure it; an answer does.
    pass(ct, tcp(C, 2, S, 80, ACK), 1);
    expect(mid.ct?.assured).toBe(false);
    pass(ct, tcp(S, 80, C, 2, ACK), 1);
    pass(ct, tcp(C, 2, S, 80, ACK), 2);
    expect(mid.ct?.assured).toBe(true);
  });

  it("flags invalid in the state are INVALID and leave the entry alone", () => {
    const ct = new Conntrack();
    const e = pass(ct, tcp(C, 1, S, 80, SYN), 0).ct!;
    const p = tcp(C, 1, S, 80, ACK); // ACK before any SYN/ACK: sSS -> sIV
    expect(ct.in(p, 1)).toEqual({ kind: "invalid", reason: "tcp_state" });
    expect(p.ctState).toBe(CtState.Invalid);
    expect(e.state).toBe(TcpState.SynSent);
    expect(e.deadline).toBe(CtTimeouts.tcp_timeout_syn_sent);
  });

  it("a SYN in TIME_WAIT reopens: the old entry goes, a new one starts", () => {
    const ct = new Conntrack();
    const e = pass(ct, tcp(C, 1, S, 80, SYN), 0).ct!;
    e.state = TcpState.TimeWait;
    const syn = tcp(C, 1, S, 80, SYN);
    ct.in(syn, 1);
    expect(syn.ct).not.toBe(e);
    expect(syn.ct?.state).toBe(TcpState.SynSent);
    expect(ct.size).toBe(0);
    ct.confirm(syn, 1);
    expect(ct.size).toBe(1);
  });

  it("simultaneous open goes through SYN_SENT2", () => {
    const ct = new Conntrack();
    const e = pass(ct, tcp(C, 1, S, 80, SYN), 0).ct!;
    pass(ct, tcp(S, 80, C, 1, SYN), 1);
    expect(e.state).toBe(TcpState.SynSent2);
    expect(e.deadline).toBe(1 + CtTimeouts.tcp_timeout_syn_sent);
    pass(ct, tcp(C, 1, S, 80, SYN | ACK), 2);
    expect(e.state).toBe(TcpState.SynRecv);
  });

  // Each named timeout: present 1 ms before the deadline, gone at it (nf_ct_is_expired).
  const drives: Array<[string, TcpState, number, Array<[boolean, number]>]> = [
    ["SYN_SENT", TcpState.SynSent, T.tcp_timeout_syn_sent, [[false, SYN]]],
    ["SYN_RECV", TcpState.SynRecv, T.tcp_timeout_syn_recv, [[false, SYN], [true, SYN | ACK]]],
    ["ESTABLISHED", TcpState.Established, T.tcp_timeout_established, [[false, SYN], [true, SYN | ACK], [false, ACK]]],
    ["FIN_WAIT", TcpState.FinWait, T.tcp_timeout_fin_wait, [[false, SYN], [true, SYN | ACK], [false, ACK], [false, FIN | ACK]]],
    ["CLOSE_WAIT", TcpState.CloseWait, T.tcp_timeout_close_wait, [[false, SYN], [true, SYN | ACK], [false, ACK], [false, FIN | ACK], [true, ACK]]],
    ["LAST_ACK", TcpState.LastAck, T.tcp_timeout_last_ack, [[false, SYN], [true, SYN | ACK], [false, ACK], [false, FIN | ACK], [true, FIN | ACK]]],
    ["TIME_WAIT", TcpState.TimeWait, T.tcp_timeout_time_wait, [[false, SYN], [true, SYN | ACK], [false, ACK], [false, FIN | ACK], [true, FIN | ACK], [false, ACK]]],
    ["CLOSE", TcpState.Close, T.tcp_timeout_close, [[false, SYN], [true, SYN | ACK], [false, ACK], [true, RST]]],
    ["SYN_SENT2", TcpState.SynSent2, T.tcp_timeout_syn_sent, [[false, SYN], [true, SYN]]],
  ];
  for (const [name, state, timeout, steps] of drives) {
    it(`${name} times out after ${timeout / 1000} s`, () => {
      for (const sweep of [true, false]) {
        const ct = new Conntrack();
        let t = 1000;
        let e: ConnEntry | undefined;
        for (const [reply, flags] of steps) {
          const p = reply ? tcp(S, 80, C, 1, flags) : tcp(C, 1, S, 80, flags);
          e = pass(ct, p, (t += 10)).ct;
        }
        expect(e!.state).toBe(state);
        const deadline = t + timeout;
        expect(e!.deadline).toBe(deadline);
        const key = { proto: 6, src: C, dst: S, sport: 1, dport: 80 };
        if (sweep) {
          expect(ct.expire(deadline - 1)).toBe(0);
          expect(ct.find(key, deadline - 1).kind).toBe("found");
          expect(ct.expire(deadline)).toBe(1);
          expect(ct.size).toBe(0);
        } else {
          // Lazy reaping: a packet meeting an expired entry removes it and is new.
          const p = tcp(C, 1, S, 80, ACK);
          ct.in(p, deadline);
          expect(p.ct).not.toBe(e);
          expect(p.ctState).toBe(CtState.New);
          expect(ct.size).toBe(0);
          expect(ct.stats.expired).toBe(1);
        }
      }
    });
  }
});

describe("UDP", () => {
  it("unreplied (30 s), replied, then a stream (120 s, ASSURED)", () => {
    const ct = new Conntrack();
    const q = pass(ct, udpPacket({ src: C, dst: X, sport: 5353, dport: 53 }), 0);
    const e = q.ct!;
    expect(e.deadline).toBe(CtTimeouts.udp_timeout);
    expect(e.seenReply).toBe(false);
    pass(ct, udpPacket({ src: C, dst: X, sport: 5353, dport: 53 }), 10_000);
    expect(e.deadline).toBe(10_000 + CtTimeouts.udp_timeout);
    // The first reply: seen both ways now, but refreshed with the short timeout still.
    pass(ct, udpPacket({ src: X, dst: C, sport: 53, dport: 5353 }), 20_000);
    expect(e.seenReply).toBe(true);
    expect(e.assured).toBe(false);
    expect(e.deadline).toBe(20_000 + CtTimeouts.udp_timeout);
    // Traffic after a reply: a stream.
    pass(ct, udpPacket({ src: C, dst: X, sport: 5353, dport: 53 }), 25_000);
    expect(e.assured).toBe(true);
    expect(e.deadline).toBe(25_000 + CtTimeouts.udp_timeout_stream);
    expect(ct.expire(25_000 + CtTimeouts.udp_timeout_stream - 1)).toBe(0);
    expect(ct.expire(25_000 + CtTimeouts.udp_timeout_stream)).toBe(1);
  });

  it("an unreplied entry expires after udp_timeout", () => {
    const ct = new Conntrack();
    pass(ct, udpPacket({ src: C, dst: X, sport: 1, dport: 53 }), 0);
    expect(ct.expire(CtTimeouts.udp_timeout - 1)).toBe(0);
    expect(ct.expire(CtTimeouts.udp_timeout)).toBe(1);
  });

  it("honours configured timeouts", () => {
    const ct = new Conntrack({ timeouts: { udp_timeout: 5_000 } });
    expect(pass(ct, udpPacket({ src: C, dst: X, sport: 1, dport: 53 }), 0).ct!.deadline).toBe(5_000);
  });

  it("expire does bounded work per call and resumes", () => {
    const ct = new Conntrack();
    for (let i = 0; i < 300; i++) pass(ct, udpPacket({ src: C, dst: X, sport: 2000 + i, dport: 53 }), 0);
    const first = ct.expire(CtTimeouts.udp_timeout, 50);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(300);
    let total = first;
    for (let i = 0; i < 100 && ct.size > 0; i++) total += ct.expire(CtTimeouts.udp_timeout, 50);
    expect(total).toBe(300);
    expect(ct.size).toBe(0);
  });
});

describe("ICMP", () => {
  it("echo request is NEW, the reply ESTABLISHED; icmp_timeout", () => {
    const ct = new Conntrack();
    const req = pass(ct, icmpEcho({ src: C, dst: S, ident: 77 }), 0);
    expect([req.ctState, req.ct?.tuple[0]]).toEqual([CtState.New, { proto: 1, src: C, dst: S, sport: 77, dport: 77 }]);
    expect(req.ct!.deadline).toBe(CtTimeouts.icmp_timeout);
    const rep = pass(ct, icmpEcho({ src: S, dst: C, ident: 77, kind: "reply" }), 5);
    expect([rep.ct, rep.ctDir, rep.ctState]).toEqual([req.ct, CtDir.Reply, CtState.Established]);
    expect(req.ct!.deadline).toBe(5 + CtTimeouts.icmp_timeout);
  });

  it("an echo reply without a request is INVALID; a request the other way is its own connection", () => {
    const ct = new Conntrack();
    const stray = icmpEcho({ src: S, dst: C, ident: 5, kind: "reply" });
    expect(ct.in(stray, 0)).toEqual({ kind: "invalid", reason: "icmp_type" });
    const a = pass(ct, icmpEcho({ src: C, dst: S, ident: 9 }), 0);
    const b = pass(ct, icmpEcho({ src: S, dst: C, ident: 9 }), 0);
    expect(b.ct).not.toBe(a.ct);
    expect(b.ctDir).toBe(CtDir.Original);
    expect(ct.size).toBe(2);
    const ra = icmpEcho({ src: S, dst: C, ident: 9, kind: "reply" });
    ct.in(ra, 1);
    expect([ra.ct, ra.ctDir]).toEqual([a.ct, CtDir.Reply]);
    const rb = icmpEcho({ src: C, dst: S, ident: 9, kind: "reply" });
    ct.in(rb, 1);
    expect([rb.ct, rb.ctDir]).toEqual([b.ct, CtDir.Reply]);
  });

  it("a port unreachable about a UDP connection is RELATED (reply direction)", () => {
    const ct = new Conntrack();
    const q = pass(ct, udpPacket({ src: C, dst: S, sport: 40000, dport: 9999, payload: new Uint8Array(20) }), 0);
    const err = icmpError("portUnreachable", q);
    expect(ct.in(err, 1)).toBe(CT_OK);
    expect([err.ct, err.ctDir, err.ctState]).toEqual([q.ct, CtDir.Reply, CtState.Related]);
    expect(ct.stats.related).toBe(1);
    // Not refreshed by the error.
    expect(q.ct!.deadline).toBe(CtTimeouts.udp_timeout);
  });

  it("an ICMP error about no connection, or to someone else, is INVALID", () => {
    const ct = new Conntrack();
    const q = udpPacket({ src: C, dst: S, sport: 40000, dport: 9999 });
    expect(ct.in(icmpError("portUnreachable", q), 0)).toEqual({ kind: "invalid", reason: "icmp_related" });
    pass(ct, q, 0);
    const wrongDst = icmpError("portUnreachable", q, { dst: S2 });
    expect(ct.in(wrongDst, 0)).toEqual({ kind: "invalid", reason: "icmp_related" });
    const ok = icmpError("ttlExceeded", q, { src: R });
    ct.in(ok, 0);
    expect(ok.ctState).toBe(CtState.Related);
  });
});

describe("table limit (early_drop)", () => {
  function assuredTcp(ct: Conntrack, sport: number): ConnEntry {
    const e = pass(ct, tcp(C, sport, S, 80, SYN), 0).ct!;
    pass(ct, tcp(S, 80, C, sport, SYN | ACK), 0);
    pass(ct, tcp(C, sport, S, 80, ACK), 0);
    expect(e.assured).toBe(true);
    return e;
  }

  it("evicts an unassured entry to make room", () => {
    const ct = new Conntrack({ max: 4 });
    const kept = [assuredTcp(ct, 1), assuredTcp(ct, 2), assuredTcp(ct, 3)];
    const victim = pass(ct, udpPacket({ src: C, dst: X, sport: 7, dport: 53 }), 0).ct!;
    expect(ct.size).toBe(4);
    const p = pass(ct, udpPacket({ src: C, dst: X, sport: 8, dport: 53 }), 1);
    expect(ct.size).toBe(4);
    expect(ct.stats.earlyDrop).toBe(1);
    expect(ct.list()).toEqual([...kept, p.ct]);
    expect(ct.find(victim.tuple[0], 1)).toEqual({ kind: "none" });
  });

  it("with every entry assured the next confirm is refused and counted", () => {
    const ct = new Conntrack({ max: 3 });
    for (let i = 1; i <= 3; i++) assuredTcp(ct, i);
    const p = udpPacket({ src: C, dst: X, sport: 8, dport: 53 });
    expect(ct.in(p, 1)).toBe(CT_OK);
    expect(ct.confirm(p, 1)).toBe("full");
    expect([p.ct, p.ctState]).toEqual([undefined, CtState.Untracked]);
    expect(ct.size).toBe(3);
    expect(ct.stats.insertFailed).toBe(1);
    // An expired entry makes room again.
    const q = udpPacket({ src: C, dst: X, sport: 9, dport: 53 });
    const late = CtTimeouts.tcp_timeout_established + 1;
    ct.in(q, late);
    expect(ct.confirm(q, late)).toBe("ok");
  });

  it("a clash at confirm: the same connection is merged, another one refused", () => {
    const ct = new Conntrack();
    const a = udpPacket({ src: C, dst: S, sport: 1, dport: 2 });
    const b = udpPacket({ src: C, dst: S, sport: 1, dport: 2 });
    ct.in(a, 0);
    ct.in(b, 0); // before a is confirmed: a second unconfirmed entry
    expect(b.ct).not.toBe(a.ct);
    expect(ct.confirm(a, 0)).toBe("ok");
    expect(ct.confirm(b, 0)).toBe("ok");
    expect(b.ct).toBe(a.ct);
    expect(a.ct!.packets[0]).toBe(2);
    expect(ct.stats.clashResolved).toBe(1);
    // A DNATed connection whose reply tuple is held by a direct one.
    pass(ct, udpPacket({ src: C, dst: S, sport: 5, dport: 53 }), 0);
    const viaVip = udpPacket({ src: C, dst: V, sport: 5, dport: 53 });
    ct.in(viaVip, 0);
    ct.bindNat(viaVip.ct!, "dnat", S, 53, rng);
    expect(ct.confirm(viaVip, 0)).toBe("clash");
    expect(ct.stats.insertFailed).toBe(1);
  });
});

describe("NAT", () => {
  it("DNAT rewrites the destination, and the reply's source back", () => {
    const ct = new Conntrack();
    const p = tcp(C, 40000, V, 80, SYN);
    ct.in(p, 0);
    expect(ct.bindNat(p.ct!, "dnat", S, 8080, rng)).toBe("ok");
    expect(p.ct!.tuple[1]).toEqual({ proto: 6, src: S, dst: C, sport: 8080, dport: 40000 });
    ct.nat(p, "dst");
    expect([p.src, p.dst, p.sport, p.dport]).toEqual([C, S, 40000, 8080]);
    expectChecksumsValid(p);
    ct.nat(p, "src"); // nothing to do at the source side
    expect(ct.confirm(p, 0)).toBe("ok");
    expect(p.ct!.dnat).toBe(true);

    const a = tcp(S, 8080, C, 40000, SYN | ACK);
    ct.in(a, 1);
    expect([a.ct, a.ctDir]).toEqual([p.ct, CtDir.Reply]);
    ct.nat(a, "dst");
    expect([a.src, a.dst]).toEqual([S, C]);
    ct.nat(a, "src");
    expect([a.src, a.dst, a.sport, a.dport]).toEqual([V, C, 80, 40000]);
    expectChecksumsValid(a);

    // Later packets follow the binding without rules.
    const d = tcp(C, 40000, V, 80, ACK, new Uint8Array([1, 2, 3]));
    ct.in(d, 2);
    ct.nat(d, "dst");
    expect([d.dst, d.dport]).toEqual([S, 8080]);
    expectChecksumsValid(d);
    expect(d.ct!.assured).toBe(true);
  });

  it("SNAT with a clashing port takes another one and keeps reply tuples unique", () => {
    const ct = new Conntrack();
    const a = udpPacket({ src: C, dst: X, sport: 5000, dport: 53 });
    const b = udpPacket({ src: S, dst: X, sport: 5000, dport: 53 });
    ct.in(a, 0);
    ct.bindNat(a.ct!, "snat", N, undefined, rng);
    ct.nat(a, "src");
    expect([a.src, a.sport]).toEqual([N, 5000]);
    ct.confirm(a, 0);
    ct.in(b, 0);
    expect(ct.bindNat(b.ct!, "snat", N, undefined, rng)).toBe("ok");
    ct.nat(b, "src");
    expect(b.src).toBe(N);
    expect(b.sport).not.toBe(5000);
    expect(b.sport).toBeGreaterThanOrEqual(1024);
    expectChecksumsValid(b);
    ct.confirm(b, 0);
    expect(ct.size).toBe(2);
    const replies = ct.list().map((e) => JSON.stringify(e.tuple[1]));
    expect(new Set(replies).size).toBe(2);

    // An explicitly requested port that clashes moves too.
    const c = udpPacket({ src: S2, dst: X, sport: 6000, dport: 53 });
    ct.in(c, 0);
    ct.bindNat(c.ct!, "snat", N, 5000, rng);
    expect(c.ct!.tuple[1].dport).not.toBe(5000);

    // Each reply finds its own connection and is rewritten back.
    const ra = udpPacket({ src: X, dst: N, sport: 53, dport: 5000 });
    const rb = udpPacket({ src: X, dst: N, sport: 53, dport: b.sport });
    ct.in(ra, 1);
    ct.in(rb, 1);
    expect([ra.ct, rb.ct]).toEqual([a.ct, b.ct]);
    ct.nat(ra, "dst");
    ct.nat(rb, "dst");
    expect([ra.dst, ra.dport, rb.dst, rb.dport]).toEqual([C, 5000, S, 5000]);
    expectChecksumsValid(ra);
    expectChecksumsValid(rb);
  });

  it("a confirmed entry's binding is fixed: NAT rules running again (a retransmitted SYN) change nothing", () => {
    const ct = new Conntrack();
    const syn = tcp(C, 1, V, 80, SYN);
    ct.in(syn, 0);
    ct.bindNat(syn.ct!, "dnat", S, 8080, rng);
    ct.confirm(syn, 0);
    const again = tcp(C, 1, V, 80, SYN);
    ct.in(again, 1);
    expect(again.ctState).toBe(CtState.New);
    expect(ct.bindNat(again.ct!, "dnat", S2, 9090, rng)).toBe("ok");
    ct.nat(again, "dst");
    expect([again.dst, again.dport]).toEqual([S, 8080]);
  });

  it("delete removes a confirmed entry (conntrack -D)", () => {
    const ct = new Conntrack();
    const e = pass(ct, udpPacket({ src: C, dst: S, sport: 1, dport: 53 }), 0).ct!;
    expect(ct.delete(e)).toBe(true);
    expect(ct.delete(e)).toBe(false);
    expect(ct.size).toBe(0);
    const p = udpPacket({ src: S, dst: C, sport: 53, dport: 1 });
    ct.in(p, 1);
    expect([p.ctDir, p.ctState]).toEqual([CtDir.Original, CtState.New]);
  });

  it("SNAT gives up with 'exhausted' when no port is free", () => {
    const ct = new Conntrack();
    const a = udpPacket({ src: C, dst: X, sport: 5000, dport: 53 });
    ct.in(a, 0);
    ct.bindNat(a.ct!, "snat", N, undefined, rng);
    ct.confirm(a, 0);
    const b = udpPacket({ src: S, dst: X, sport: 5000, dport: 53 });
    ct.in(b, 0);
    expect(ct.bindNat(b.ct!, "snat", N, undefined, () => (5000 - 1024) / (65536 - 1024))).toBe("exhausted");
  });

  it("masquerade: SNAT to the node address, replies back to the pod", () => {
    const ct = new Conntrack();
    const p = tcp(C, 33333, X, 443, SYN);
    ct.in(p, 0);
    ct.bindNat(p.ct!, "snat", N, undefined, rng);
    ct.nat(p, "dst");
    ct.nat(p, "src");
    expect([p.src, p.sport, p.dst, p.dport]).toEqual([N, 33333, X, 443]);
    expectChecksumsValid(p);
    ct.confirm(p, 0);
    const r = tcp(X, 443, N, 33333, SYN | ACK);
    ct.in(r, 1);
    ct.nat(r, "dst");
    expect([r.src, r.dst, r.dport]).toEqual([X, C, 33333]);
    expectChecksumsValid(r);
    expect(p.ct!.snat).toBe(true);
    expect((p.ct!.status & CtStatus.Confirmed) !== 0).toBe(true);
  });

  it("ICMP echo: SNAT moves the identifier when it clashes, with a valid ICMP checksum", () => {
    const ct = new Conntrack();
    const a = icmpEcho({ src: C, dst: X, ident: 42 });
    ct.in(a, 0);
    ct.bindNat(a.ct!, "snat", N, undefined, rng);
    ct.nat(a, "src");
    ct.confirm(a, 0);
    const b = icmpEcho({ src: S, dst: X, ident: 42 });
    ct.in(b, 0);
    ct.bindNat(b.ct!, "snat", N, undefined, rng);
    ct.nat(b, "src");
    ct.confirm(b, 0);
    expect(a.sport).toBe(42);
    expect(b.sport).not.toBe(42);
    expect(readU16(ipBytes(b), 24)).toBe(b.sport);
    expectChecksumsValid(a);
    expectChecksumsValid(b);
    const rb = icmpEcho({ src: X, dst: N, ident: b.sport, kind: "reply" });
    ct.in(rb, 1);
    expect([rb.ct, rb.ctDir]).toEqual([b.ct, CtDir.Reply]);
    ct.nat(rb, "dst");
    expect([rb.dst, rb.sport, rb.dport]).toEqual([S, 42, 42]);
    expect(readU16(ipBytes(rb), 24)).toBe(42);
    expectChecksumsValid(rb);
  });

  it("a UDP checksum of 0 (none) stays 0", () => {
    const ct = new Conntrack();
    const p = udpPacket({ src: C, dst: V, sport: 1, dport: 53, checksum: false, payload: new Uint8Array([9, 9]) });
    ct.in(p, 0);
    ct.bindNat(p.ct!, "dnat", S, 5353, rng);
    ct.nat(p, "dst");
    expect(readU16(ipBytes(p), 26)).toBe(0);
    expectChecksumsValid(p);
  });

  it("a UDP checksum that becomes 0 is sent as 0xffff (RFC 768), for an address or a port rewrite", () => {
    for (const [to, toPort] of [[S, 53], [V, 5353], [S, 5353]] as const) {
      // A payload word chosen so that the datagram as rewritten sums to 0xffff.
      const rest = pseudoHeaderSum(C, to, IpProtocol.UDP, 10) + 1 + toPort + 10;
      const folded = (rest & 0xffff) + (rest >>> 16);
      const w = 0xffff - ((folded & 0xffff) + (folded >>> 16));
      const p = udpPacket({ src: C, dst: V, sport: 1, dport: 53, payload: new Uint8Array([w >>> 8, w & 0xff]) });
      const ct = new Conntrack();
      ct.in(p, 0);
      ct.bindNat(p.ct!, "dnat", to, toPort, rng);
      ct.nat(p, "dst");
      expect([p.dst, p.dport]).toEqual([to, toPort]);
      expect(readU16(ipBytes(p), 26)).toBe(0xffff);
      expectChecksumsValid(p);
    }
  });

  it("a non-first fragment is untracked; with an entry given, only its addresses are rewritten", () => {
    const ct = new Conntrack();
    const head = udpPacket({ src: C, dst: V, sport: 1, dport: 53, moreFragments: true, payload: new Uint8Array(16) });
    ct.in(head, 0);
    ct.bindNat(head.ct!, "dnat", S, 5353, rng);
    ct.nat(head, "dst");
    expect([head.dst, head.dport]).toEqual([S, 5353]);
    ct.confirm(head, 0);
    const tail = udpPacket({ src: C, dst: V, sport: 0x0102, dport: 0x0304, fragmentOffset: 24, payload: new Uint8Array(8) });
    const before = ipBytes(tail).slice(20);
    ct.in(tail, 0);
    expect(tail.ctState).toBe(CtState.Untracked);
    tail.ct = head.ct;
    tail.ctDir = CtDir.Original;
    ct.nat(tail, "dst");
    expect(tail.dst).toBe(S);
    expect(ipBytes(tail).slice(20)).toEqual(before);
    expectChecksumsValid(tail);
  });
});

describe("RELATED ICMP errors through NAT (nf_nat_icmp_reply_translation)", () => {
  it("a port unreachable from a DNAT backend reaches the client as from the VIP, quote restored", () => {
    const ct = new Conntrack();
    const sent = udpPacket({ src: C, dst: V, sport: 40000, dport: 53, payload: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]) });
    const asSent = ipBytes(sent).slice(0, 28);
    ct.in(sent, 0);
    ct.bindNat(sent.ct!, "dnat", S, 5353, rng);
    ct.nat(sent, "dst");
    ct.confirm(sent, 0);
    // The backend quotes what it received: C:40000 -> S:5353.
    const err = icmpError("portUnreachable", sent);
    expect([err.src, err.dst]).toEqual([S, C]);
    ct.in(err, 1);
    expect([err.ct, err.ctDir, err.ctState]).toEqual([sent.ct, CtDir.Reply, CtState.Related]);
    ct.nat(err, "dst");
    ct.nat(err, "src");
    expect([err.src, err.dst]).toEqual([V, C]);
    const b = ipBytes(err);
    expect(b.slice(28, 56)).toEqual(asSent);
    expectChecksumsValid(err);
  });

  it("an error about a masqueraded packet reaches the pod with the quote as the pod sent it", () => {
    const ct = new Conntrack();
    const sent = tcp(C, 33333, X, 443, SYN);
    const asSent = ipBytes(sent).slice(0, 28);
    ct.in(sent, 0);
    ct.bindNat(sent.ct!, "snat", N, undefined, rng);
    ct.nat(sent, "src");
    ct.confirm(sent, 0);
    const err = icmpError("ttlExceeded", sent, { src: R });
    ct.in(err, 1);
    expect([err.ctDir, err.ctState]).toEqual([CtDir.Reply, CtState.Related]);
    ct.nat(err, "dst");
    expect([err.src, err.dst]).toEqual([R, C]);
    // The quoted TCP header is cut at 8 bytes: its checksum is not in the quote, the rest is restored.
    expect(ipBytes(err).slice(28, 56)).toEqual(asSent);
    expectChecksumsValid(err);
  });

  it("an empty UDP datagram is quoted whole: its checksum is fully verifiable after translation", () => {
    const ct = new Conntrack();
    const sent = udpPacket({ src: C, dst: V, sport: 1234, dport: 53 });
    ct.in(sent, 0);
    ct.bindNat(sent.ct!, "dnat", S, 5353, rng);
    ct.bindNat(sent.ct!, "snat", N, 20000, rng); // hairpin-style: both
    ct.nat(sent, "dst");
    ct.nat(sent, "src");
    expect([sent.src, sent.sport, sent.dst, sent.dport]).toEqual([N, 20000, S, 5353]);
    expectChecksumsValid(sent);
    ct.confirm(sent, 0);
    const err = icmpError("portUnreachable", sent);
    ct.in(err, 1);
    ct.nat(err, "dst");
    ct.nat(err, "src");
    expect([err.src, err.dst]).toEqual([V, C]);
    const inner = ipBytes(err).subarray(28);
    const quoted = udpPacket({ src: C, dst: V, sport: 1234, dport: 53 });
    expect(inner.slice(0, 28)).toEqual(ipBytes(quoted).slice(0, 28));
    expectChecksumsValid(err);
  });

  it("a time exceeded about a masqueraded ping restores the quoted echo identifier and its checksum", () => {
    const ct = new Conntrack();
    const first = icmpEcho({ src: S, dst: X, ident: 42 });
    ct.in(first, 0);
    ct.bindNat(first.ct!, "snat", N, undefined, rng);
    ct.confirm(first, 0);
    const ping = icmpEcho({ src: C, dst: X, ident: 42 });
    const asSent = ipBytes(ping).slice(0, 28);
    ct.in(ping, 0);
    ct.bindNat(ping.ct!, "snat", N, undefined, rng);
    ct.nat(ping, "src");
    ct.confirm(ping, 0);
    expect(ping.sport).not.toBe(42);
    const err = icmpError("ttlExceeded", ping, { src: R });
    ct.in(err, 1);
    expect([err.ct, err.ctState]).toEqual([ping.ct, CtState.Related]);
    ct.nat(err, "dst");
    expect(err.dst).toBe(C);
    expect(ipBytes(err).slice(28, 56)).toEqual(asSent);
    expectChecksumsValid(err);
  });

  it("an error in the original direction (about a reply) is translated to the backend", () => {
    const ct = new Conntrack();
    const sent = udpPacket({ src: C, dst: V, sport: 40000, dport: 53 });
    ct.in(sent, 0);
    ct.bindNat(sent.ct!, "dnat", S, 5353, rng);
    ct.nat(sent, "dst");
    ct.confirm(sent, 0);
    const reply = udpPacket({ src: S, dst: C, sport: 5353, dport: 40000, payload: new Uint8Array(4) });
    const replyAsSent = ipBytes(reply).slice(0, 28);
    ct.in(reply, 1);
    ct.nat(reply, "src");
    expect([reply.src, reply.sport]).toEqual([V, 53]);
    // The client's side answers the reply (from the VIP) with an error.
    const err = icmpError("portUnreachable", reply);
    expect([err.src, err.dst]).toEqual([C, V]);
    ct.in(err, 2);
    expect([err.ctDir, err.ctState]).toEqual([CtDir.Original, CtState.Related]);
    ct.nat(err, "dst");
    expect([err.src, err.dst]).toEqual([C, S]);
    expect(ipBytes(err).slice(28, 56)).toEqual(replyAsSent);
    expectChecksumsValid(err);
  });
});

describe("conntrack -L", () => {
  it("formats TCP, UDP and ICMP entries as the tool does", () => {
    const ct = new Conntrack();
    const syn = tcp(C, 40000, V, 80, SYN);
    ct.in(syn, 0);
    ct.bindNat(syn.ct!, "dnat", S, 8080, rng);
    ct.confirm(syn, 0);
    pass(ct, tcp(S, 8080, C, 40000, SYN | ACK), 0);
    pass(ct, tcp(C, 40000, V, 80, ACK), 0);
    expect(formatEntry(syn.ct!, 1)).toBe(
      "tcp      6 431999 ESTABLISHED src=10.244.0.2 dst=10.96.0.10 sport=40000 dport=80 src=10.244.1.3 dst=10.244.0.2 sport=8080 dport=40000 [ASSURED] mark=0 use=1",
    );
    const u = pass(ct, udpPacket({ src: C, dst: X, sport: 5353, dport: 53 }), 0);
    expect(formatEntry(u.ct!, 500)).toBe(
      "udp      17 29 src=10.244.0.2 dst=8.8.8.8 sport=5353 dport=53 [UNREPLIED] src=8.8.8.8 dst=10.244.0.2 sport=53 dport=5353 mark=0 use=1",
    );
    const i = pass(ct, icmpEcho({ src: C, dst: S, ident: 4711 }), 0);
    i.ct!.mark = 0x4000;
    expect(formatEntry(i.ct!, 1000)).toBe(
      "icmp     1 29 src=10.244.0.2 dst=10.244.1.3 type=8 code=0 id=4711 [UNREPLIED] src=10.244.1.3 dst=10.244.0.2 type=0 code=0 id=4711 mark=16384 use=1",
    );
  });
});

describe("property: NAT keeps every checksum equal to a full recompute", () => {
  it("2,000 random TCP/UDP packets with random bindings, both directions", () => {
    const r = mulberry32(20240611);
    const addr = () => (randInt(r, 0x1_0000_0000) >>> 0) || 1;
    const port = () => randInt(r, 65536);
    for (let i = 0; i < 2000; i++) {
      const ct = new Conntrack({ hashSeed: i });
      const isTcp = r() < 0.5;
      const src = addr();
      const dst = addr();
      const sport = port();
      const dport = port();
      const payload = randomBytes(r, randInt(r, 64));
      const mk = (s: number, d: number, sp: number, dp: number): Packet =>
        isTcp
          ? tcpPacket({ src: s, dst: d, sport: sp, dport: dp, flags: ACK, seq: randInt(r, 2 ** 32), ack: randInt(r, 2 ** 32), payload })
          : udpPacket({ src: s, dst: d, sport: sp, dport: dp, payload, checksum: r() < 0.9 });
      const p = mk(src, dst, sport, dport);
      expect(ct.in(p, 0)).toBe(CT_OK);
      const e = p.ct!;
      const mode = randInt(r, 3); // 0 dnat, 1 snat, 2 both
      const dnat = { addr: addr(), port: r() < 0.7 ? port() : undefined };
      const snat = { addr: addr(), port: r() < 0.5 ? port() : undefined };
      if (mode !== 1) expect(ct.bindNat(e, "dnat", dnat.addr, dnat.port, r)).toBe("ok");
      if (mode !== 0) expect(ct.bindNat(e, "snat", snat.addr, snat.port, r)).toBe("ok");
      ct.nat(p, "dst");
      ct.nat(p, "src");
      expect(ct.confirm(p, 0)).toBe("ok");
      expect([p.src, p.dst, p.sport, p.dport]).toEqual([e.tuple[1].dst, e.tuple[1].src, e.tuple[1].dport, e.tuple[1].sport]);
      expectChecksumsValid(p);

      // The answer, from where the packet went, comes back translated to the original tuple.
      const rt = e.tuple[1];
      const a = mk(rt.src, rt.dst, rt.sport, rt.dport);
      ct.in(a, 1);
      expect([a.ct, a.ctDir]).toEqual([e, CtDir.Reply]);
      ct.nat(a, "dst");
      ct.nat(a, "src");
      expect([a.src, a.dst, a.sport, a.dport]).toEqual([dst, src, dport, sport]);
      expectChecksumsValid(a);
      if (i % 500 === 0) expect(a.proto).toBe(isTcp ? IpProtocol.TCP : IpProtocol.UDP);
    }
  });
});
