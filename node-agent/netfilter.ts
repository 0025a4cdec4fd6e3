/**
 * Netfilter in every netns: five hooks, each running priority-ordered rule sets that return a
 * verdict, and the closed list of reasons a packet is ever dropped for.
 *
 * Design notes:
 * - As in Linux (include/uapi/linux/netfilter.h, nf_tables hook priorities), conntrack runs
 *   first at PREROUTING/OUTPUT (priority -200), DNAT rule sets at -100, filter at 0, SNAT at
 *   POSTROUTING +100, and the conntrack entry is confirmed last. NAT rule sets are consulted
 *   only for the first packet of a connection; every later packet follows the binding kept on
 *   its conntrack entry (node-agent/conntrack.ts), in both directions.
 * - Rule sets are compiled by their owner (kube-proxy, the policy engine, fault injection) from
 *   the whole desired state and swapped in at once with `replace(owner, sets)`: a packet sees
 *   either the old state or the new one, never half of each.
 * - Verdicts are a union; ACCEPT and CONTINUE are shared constants so the common path allocates
 *   nothing.
 */
import type { Ipv4Addr } from "../overlay/wire/common.ts";
import type { ConnEntry } from "./conntrack.ts";
import type { PacketView, CtState } from "./packet.ts";

export const Hook = { Prerouting: 0, Input: 1, Forward: 2, Output: 3, Postrouting: 4 } as const;
export type Hook = (typeof Hook)[keyof typeof Hook];
export const HOOK_NAMES = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"] as const;

/** nf_tables' named priorities. */
export const Priority = { Raw: -300, Conntrack: -200, DstNat: -100, Filter: 0, Security: 50, SrcNat: 100 } as const;

/**
 * Every reason the datapath drops a packet for: a closed list, each counted as
 * `drops_total{reason}` and named in traces and (later) flow records.
 */
export const DropReason = {
  /** Bytes that do not parse: runt frame, bad IPv4 header, truncated L4 header. */
  Malformed: "malformed",
  /** The L4 checksum does not verify at local delivery. */
  BadChecksum: "bad_checksum",
  /** The Ethernet destination is not this interface. */
  NotForUs: "not_for_us",
  /** An ethertype or IP protocol the stack does not handle. */
  Unsupported: "unsupported",
  NoRoute: "no_route",
  TtlExceeded: "ttl_exceeded",
  /** ARP got no answer, or a NOARP device has no programmed entry. */
  NoNeighbor: "no_neighbor",
  /** Larger than the link MTU (DF set, or a frame handed to a link it does not fit). */
  Mtu: "mtu",
  /** A bounded table is full: conntrack, neighbour queue, reassembly memory, FDB. */
  TableFull: "table_full",
  /** Frame to a bridge port it came from, or a veth end with nothing attached. */
  NoPort: "no_port",
  /** UDP to a closed port (answered with ICMP port unreachable). */
  PortUnreachable: "port_unreachable",
  /** The VXLAN outer headers do not check out (wrong VNI, port, address). */
  Overlay: "overlay",
  /** No FDB entry on the VTEP for the inner destination MAC. */
  VtepNoFdb: "vtep_no_fdb",
  /** To the underlay router: no network beyond it is emulated. */
  Underlay: "underlay",
  /** Conntrack says the packet belongs to no valid connection (and a rule drops INVALID). */
  CtInvalid: "ct_invalid",
  /** A netfilter rule's drop or reject (kube-proxy: the rule is named on the verdict). */
  Rule: "rule",
  /** kube-proxy: a Service port with no endpoint to send to (rejected with ICMP port unreachable). */
  NoEndpoints: "no_endpoints",
  /** NetworkPolicy or ClusterNetworkPolicy denied the connection (the deciding policy and rule are named). */
  Policy: "policy_denied",
  /** Fault injection: the loss model chose this packet. */
  FaultLoss: "fault_loss",
  /** Fault injection: corrupted, then discarded by a checksum. */
  FaultCorrupt: "fault_corrupt",
  /** A fragment that cannot be reassembled (overlap past 64 KiB, timeout). */
  Reassembly: "reassembly",
  /** A bug: a device threw. Never expected; counted so it cannot hide. */
  Internal: "internal",
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];
export const DROP_REASONS: readonly DropReason[] = Object.values(DropReason);

export type RejectWith = "icmp-net-unreachable" | "icmp-host-unreachable" | "icmp-port-unreachable" | "icmp-admin-prohibited" | "tcp-reset";

export type Verdict =
  | { readonly kind: "accept" }
  /** No decision: the next rule set decides (the end of a chain without a policy). */
  | { readonly kind: "continue" }
  | { readonly kind: "drop"; readonly reason: DropReason; readonly rule?: string }
  /** `reason`: how the drop is counted and shown (Rule when absent). */
  | { readonly kind: "reject"; readonly with: RejectWith; readonly rule?: string; readonly reason?: DropReason }
  | { readonly kind: "dnat"; readonly addr: Ipv4Addr; readonly port?: number; readonly rule?: string }
  | { readonly kind: "snat"; readonly addr: Ipv4Addr; readonly port?: number; readonly rule?: string }
  /** SNAT to the address of the output interface (the route's source). */
  | { readonly kind: "masquerade"; readonly rule?: string };

export type NatVerdict = Extract<Verdict, { kind: "dnat" | "snat" | "masquerade" }>;

export const ACCEPT: Verdict = { kind: "accept" };
export const CONTINUE: Verdict = { kind: "continue" };

/** What a rule set sees besides the packet. */
export interface HookContext {
  hook: Hook;
  /** Input interface name ("" at OUTPUT). */
  iif: string;
  /** Output interface name ("" at PREROUTING/INPUT). */
  oif: string;
  ctState: CtState;
  /** The packet's conntrack entry (unconfirmed for a new connection), if tracked. */
  ct: ConnEntry | undefined;
  mark: number;
  now: number;
}

/** A compiled chain: pure, no I/O; may set the packet mark through `ctx`. */
export interface RuleSet {
  readonly name: string;
  readonly hook: Hook;
  readonly priority: number;
  /** NAT rule sets run only for the first packet of a connection. */
  readonly nat?: boolean;
  evaluate(pkt: PacketView, ctx: HookContext): Verdict;
  /** The rules in a native syntax (iptables-save/nft list) for node tools. */
  dump?(): string;
}

/**
 * The hooks of one netns. `run` walks the rule sets of a hook in priority order and returns
 * the first verdict that is not accept/continue, or ACCEPT.
 */
export class Netfilter {
  private readonly byOwner = new Map<string, readonly RuleSet[]>();
  /** Per hook, sorted by priority; rebuilt on every replace (rare), read per packet. */
  private chains: RuleSet[][] = [[], [], [], [], []];
  /** Called after every replace (the netns turns conntrack on when rules appear). */
  onChange: (() => void) | undefined;

  /** Replaces every rule set of `owner` at once. */
  replace(owner: string, sets: readonly RuleSet[]): void {
    if (sets.length === 0) this.byOwner.delete(owner);
    else this.byOwner.set(owner, sets);
    const chains: RuleSet[][] = [[], [], [], [], []];
    for (const owned of this.byOwner.values()) for (const s of owned) chains[s.hook]!.push(s);
    for (const c of chains) c.sort((a, b) => a.priority - b.priority);
    this.chains = chains;
    this.onChange?.();
  }

  /** Whether any rule set is installed at `hook` (the fast path skips empty hooks). */
  has(hook: Hook): boolean {
    return this.chains[hook]!.length > 0;
  }

  /**
   * Walks `hook`'s rule sets in priority order. A NAT verdict (dnat, snat, masquerade) is handed
   * to `nat` at once, so later rule sets (filter after nat) see the translated packet as in
   * Linux, and no later NAT rule set runs for this packet at this hook (one binding per hook,
   * nf_nat_inet_fn); `nat` returning false means the packet was consumed (no free port), and
   * run returns undefined. Otherwise the first drop or reject, or ACCEPT.
   */
  run(hook: Hook, pkt: PacketView, ctx: HookContext, natAllowed: boolean, nat: (v: NatVerdict) => boolean): Verdict | undefined {
    const chain = this.chains[hook]!;
    for (let i = 0; i < chain.length; i++) {
      const set = chain[i]!;
      if (set.nat && !natAllowed) continue;
      const v = set.evaluate(pkt, ctx);
      switch (v.kind) {
        case "accept":
        case "continue":
          continue;
        case "dnat":
        case "snat":
        case "masquerade":
          if (!nat(v)) return undefined;
          natAllowed = false;
          continue;
        default:
          return v;
      }
    }
    return ACCEPT;
  }

  ruleSets(): RuleSet[] {
    return this.chains.flat();
  }
}
