/**
 * Packet-flow tracing through compiled kube-proxy rule sets, in the style of kube-proxy's own
 * tests (pkg/proxy/iptables/proxier_test.go tracePacket): a first packet of a connection walks
 * the root netns's hooks as Linux orders them, and the result says what happened to it.
 *
 *   from a pod or the outside: PREROUTING (nat) -> routing -> INPUT (filter) | FORWARD (filter) -> POSTROUTING (nat)
 *   from the node itself:      OUTPUT (nat, filter) -> routing -> POSTROUTING (nat)
 *
 * It runs the real Netfilter walk (node-agent/netfilter.ts) over a PacketView, so rule sets see
 * exactly what they see in a node.
 */
import { IpProtocol, formatIpv4, parseIpv4Addr } from "../../../overlay/wire/index.ts";
import { CtState, type PacketView } from "../../../node-agent/packet.ts";
import { Hook, Netfilter, type HookContext, type RuleSet, type Verdict } from "../../../node-agent/netfilter.ts";
import type { ProxyNode } from "../../../node-agent/proxy/model.ts";
import { mustParseCidr } from "../../../cluster/addressing.ts";

export interface FlowPacket {
  src: string;
  dst: string;
  proto?: "TCP" | "UDP";
  sport?: number;
  dport: number;
  /** Where it comes from: a pod (via cni0), another node (flannel.1), outside (eth0), or the node itself. */
  from: "pod" | "remote-pod" | "outside" | "node";
}

export interface FlowResult {
  /** What became of it. */
  verdict: "accept" | "drop" | "reject";
  /** "ip:port" after DNAT, when DNATed. */
  dnat?: string;
  /** Masqueraded at POSTROUTING. */
  masquerade: boolean;
  /** The `rule` of every verdict that named one, in order. */
  rules: string[];
  /** Whether it was delivered locally (INPUT) rather than forwarded. */
  local: boolean;
}

/** A node as tests use it: node IP 172.31.0.2, pods 10.244.1.0/24 in 10.244.0.0/16. */
export function testNode(name = "node-1", nodeIp = "172.31.0.2", extraLocal: string[] = []): ProxyNode {
  const ip = parseIpv4Addr(nodeIp)!;
  const local = new Set([ip, parseIpv4Addr("10.244.1.1")!, parseIpv4Addr("10.244.1.0")!, ...extraLocal.map((a) => parseIpv4Addr(a)!)]);
  return {
    name,
    nodeIp: ip,
    clusterCidr: mustParseCidr("10.244.0.0/16"),
    isLocal: (a) => a >>> 24 === 127 || local.has(a),
  };
}

/** A new connection's first packet as the hooks see it: a TCP SYN (or a UDP datagram), source port 40000 unless said. */
export function firstPacket(p: Omit<FlowPacket, "from">): PacketView {
  return {
    buf: new Uint8Array(0),
    l3: 0,
    l4: 20,
    ipLen: 40,
    proto: p.proto === "UDP" ? IpProtocol.UDP : IpProtocol.TCP,
    src: parseIpv4Addr(p.src)!,
    dst: parseIpv4Addr(p.dst)!,
    sport: p.sport ?? 40000,
    dport: p.dport,
    tcpFlags: p.proto === "UDP" ? 0 : 0x02,
    icmpType: -1,
    icmpCode: -1,
  };
}

/** Traces one new connection's first packet through `sets` on `node`. */
export function tracePacket(sets: readonly RuleSet[], node: ProxyNode, p: FlowPacket, now = 0): FlowResult {
  const nf = new Netfilter();
  nf.replace("kube-proxy", sets);
  const view = firstPacket(p);
  const rules: string[] = [];
  let dnat: string | undefined;
  let masquerade = false;
  const ctx: HookContext = { hook: Hook.Prerouting, iif: "", oif: "", ctState: CtState.New, ct: undefined, mark: 0, now };
  const onNat = (v: Extract<Verdict, { kind: "dnat" | "snat" | "masquerade" }>): boolean => {
    if (v.rule) rules.push(v.rule);
    if (v.kind === "dnat") {
      view.dst = v.addr;
      if (v.port !== undefined) view.dport = v.port;
      dnat = `${formatIpv4(v.addr)}:${view.dport}`;
    } else masquerade = true;
    return true;
  };
  const iif = p.from === "pod" ? "cni0" : p.from === "remote-pod" ? "flannel.1" : p.from === "outside" ? "eth0" : "";
  const walk = (hook: Hook, inIf: string, outIf: string): Verdict | undefined => {
    ctx.hook = hook;
    ctx.iif = inIf;
    ctx.oif = outIf;
    const v = nf.run(hook, view, ctx, true, onNat);
    if (v && (v.kind === "drop" || v.kind === "reject") && v.rule) rules.push(v.rule);
    return v;
  };
  const end = (v: Verdict | undefined, local: boolean): FlowResult | undefined => {
    if (v && (v.kind === "drop" || v.kind === "reject")) return { verdict: v.kind, dnat, masquerade, rules, local };
    return undefined;
  };
  const outIf = (dst: number) => (node.clusterCidr && (dst & 0xffff_ff00) === (parseIpv4Addr("10.244.1.0")! & 0xffff_ff00) ? "cni0" : (dst >>> 16) === (parseIpv4Addr("10.244.0.0")! >>> 16) ? "flannel.1" : "eth0");
  if (p.from === "node") {
    const r = end(walk(Hook.Output, "", outIf(view.dst)), false);
    if (r) return r;
    if (node.isLocal(view.dst)) return { verdict: "accept", dnat, masquerade, rules, local: true };
    const r2 = end(walk(Hook.Postrouting, "", outIf(view.dst)), false);
    return r2 ?? { verdict: "accept", dnat, masquerade, rules, local: false };
  }
  const r = end(walk(Hook.Prerouting, iif, ""), false);
  if (r) return r;
  if (node.isLocal(view.dst)) {
    const r2 = end(walk(Hook.Input, iif, ""), true);
    return r2 ?? { verdict: "accept", dnat, masquerade, rules, local: true };
  }
  const out = outIf(view.dst);
  const r2 = end(walk(Hook.Forward, iif, out), false);
  if (r2) return r2;
  const r3 = end(walk(Hook.Postrouting, iif, out), false);
  return r3 ?? { verdict: "accept", dnat, masquerade, rules, local: false };
}
