import { describe, expect, it } from "vitest";
import { FlowLog, Observation } from "../../node-agent/flows.ts";
import { DropReason } from "../../node-agent/netfilter.ts";

const pkt = (src: number, dst: number, dport: number, proto = 6, tcpFlags = 0x02) => ({ src, dst, sport: 40000, dport, proto, tcpFlags });

describe("FlowLog", () => {
  it("keeps the last `capacity` records, counts the evicted, and reads them oldest first", () => {
    let t = 0;
    const log = new FlowLog(4, "node-1", () => ++t);
    for (let i = 0; i < 6; i++) log.record(Observation.ToEndpoint, "veth1", pkt(1, 2, 80 + i), false);
    expect([log.total, log.evicted]).toEqual([6, 2]);
    expect(log.query().map((r) => r.dport)).toEqual([82, 83, 84, 85]);
    expect(log.query({ limit: 2 }).map((r) => r.dport)).toEqual([84, 85]);
  });

  it("records a drop with its reason and detail; filters by verdict, reason, port, address and time", () => {
    let t = 1000;
    const log = new FlowLog(16, "node-1", () => (t += 10));
    log.record(Observation.FromEndpoint, "veth1", pkt(1, 2, 80), false);
    log.record(Observation.Drop, "cni0", pkt(1, 3, 81), false, DropReason.Rule, "KUBE-SERVICES demo/web:http has no endpoints -> REJECT");
    log.record(Observation.ToEndpoint, "veth2", pkt(2, 1, 40000, 6, 0x12), true);
    const dropped = log.query({ verdict: "DROPPED" });
    expect(dropped).toEqual([
      { time: 1020, node: "node-1", verdict: "DROPPED", observation: "drop", where: "cni0", src: 1, dst: 3, sport: 40000, dport: 81, proto: 6, tcpFlags: 2, isReply: false, reason: "rule", detail: "KUBE-SERVICES demo/web:http has no endpoints -> REJECT" },
    ]);
    expect(log.query({ reason: "rule" })).toHaveLength(1);
    expect(log.query({ port: 80 }).map((r) => r.observation)).toEqual(["from-endpoint"]);
    expect(log.query({ ips: new Set([3]) }).map((r) => r.dport)).toEqual([81]);
    expect(log.query({ since: 1030 }).map((r) => [r.isReply, r.tcpFlags])).toEqual([[true, 0x12]]);
    expect(log.query({ observations: ["to-endpoint", "drop"] }).map((r) => r.observation)).toEqual(["drop", "to-endpoint"]);
    expect(log.query({ reply: false }).map((r) => r.observation)).toEqual(["from-endpoint", "drop"]);
    expect(log.query({ reply: true, observations: ["drop"] })).toEqual([]);
  });
});
