/**
 * The policy engine as a netfilter rule set in a node's root netns, FORWARD hook: every packet
 * between a pod and anything else crosses it (bridged same-node traffic through br_netfilter,
 * routed traffic to and from the overlay), after kube-proxy's DNAT in PREROUTING, so a Service
 * connection is judged on the endpoint's address and port, as Kubernetes requires.
 *
 * Only a connection's first packet (conntrack NEW) is judged; replies and later packets of an
 * allowed connection are ESTABLISHED and pass, as with every CNI (stateful policy). A denied
 * packet is dropped, not rejected: the client's connection attempt times out, as with real CNIs.
 * Traffic from or to the node's own addresses is the engine's to allow (kubelet probes).
 */
import { CONTINUE, DropReason, Hook, Priority, type RuleSet, type Verdict } from "../netfilter.ts";
import { CtState, type PacketView } from "../packet.ts";
import type { Ipv4Addr } from "../../overlay/wire/index.ts";
import type { PolicyEngine } from "./engine.ts";

export const POLICY_RULESET = "kubewire-policy";

export function policyRuleSet(engine: PolicyEngine, isNodeAddress: (ip: Ipv4Addr) => boolean): RuleSet {
  // One scratch connection and option object: the engine reads them synchronously.
  const conn = { src: 0, dst: 0, proto: 0, srcPort: 0, dstPort: 0 };
  const opts = { srcIsLocalNode: false, dstIsLocalNode: false };
  return {
    name: POLICY_RULESET,
    hook: Hook.Forward,
    // After kube-proxy's filter rules (its REJECT for Services without endpoints comes first).
    priority: Priority.Filter + 10,
    evaluate(pkt: PacketView & { src: number; dst: number; proto: number; sport: number; dport: number }, ctx): Verdict {
      if (ctx.ctState !== CtState.New && ctx.ctState !== CtState.Untracked) return CONTINUE;
      conn.src = pkt.src;
      conn.dst = pkt.dst;
      conn.proto = pkt.proto;
      conn.srcPort = pkt.sport;
      conn.dstPort = pkt.dport;
      opts.srcIsLocalNode = isNodeAddress(pkt.src);
      opts.dstIsLocalNode = isNodeAddress(pkt.dst);
      const v = engine.verdict(conn, opts);
      if (v.allowed) return CONTINUE;
      return { kind: "drop", reason: DropReason.Policy, rule: v.describe() };
    },
  };
}
