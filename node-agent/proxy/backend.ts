/**
 * The contract between the proxier (the sync loop, node-agent/proxy/proxier.ts) and a proxy mode
 * (iptables.ts, ipvs.ts, nftables.ts): a backend compiles the whole Service state into netfilter
 * rule sets for the node's root netns and dumps them in its tool's native format.
 *
 * What every mode installs, as kube-proxy does (pkg/proxy/{iptables,ipvs,nftables}/proxier.go):
 * - nat, PREROUTING and OUTPUT at Priority.DstNat (`nat: true`, first packet only): a packet to
 *   a ClusterIP, external IP or load-balancer IP and port, or to a NodePort on a local address,
 *   gets `dnat` to an endpoint chosen by the mode (statistic, scheduler, numgen), with
 *   ClientIP affinity; the masquerade mark (MASQ_MARK, set with `ctx.mark |= MASQ_MARK`) when
 *   the source is not a pod (`! -s clusterCIDR`), for external traffic with policy Cluster,
 *   and when a pod reaches itself (hairpin).
 * - nat, POSTROUTING at Priority.SrcNat: `masquerade` when the mark is set.
 * - filter, INPUT, FORWARD and OUTPUT at Priority.Filter, for new connections only
 *   (ctx.ctState === CtState.New): `reject icmp-port-unreachable` for a service port with no
 *   usable endpoint; `drop` for external traffic to a Local-policy service without a local
 *   endpoint, and for a load-balancer IP from outside loadBalancerSourceRanges.
 * Every terminal verdict names what matched in `rule`, so traces and drop reasons show it:
 * "KUBE-SVC-X3... default/web:http -> KUBE-SEP-... 10.244.2.5:8080", "ipvs TCP 10.96.0.12:80 rr
 * -> 10.244.2.5:8080", "nft service-ips 10.96.0.12 . tcp . 80 -> numgen 1/3 -> 10.244.2.5:8080".
 *
 * A backend is pure: time comes from `ctx.now` (ms), randomness from the `rng` it is built
 * with; its runtime state (affinity tables, scheduler positions, connection counts) outlives
 * syncs and is bounded.
 */
import type { ConnEntry } from "../conntrack.ts";
import type { RuleSet } from "../netfilter.ts";
import type { ProxyMode, ProxyNode, ProxyState } from "./model.ts";

/** The node tools a backend answers: iptables-save, ipvsadm, nft. */
export type DumpTool = "iptables-save" | "ipvsadm" | "nft";

export interface ProxyBackend {
  readonly mode: ProxyMode;
  /**
   * Compiles `state` and returns every rule set of kube-proxy for the root netns (the proxier
   * swaps them in whole). `changed` names the service-port ids that changed since the last
   * sync; undefined means everything (the first sync, a resync after a failure): a backend may
   * reuse what it compiled for unchanged ports.
   */
  sync(state: ProxyState, changed: ReadonlySet<string> | undefined): readonly RuleSet[];
  /**
   * The rules as `tool` prints them (`iptables-save` is `iptables-save -t nat` plus the filter
   * table; `ipvsadm` is `ipvsadm -Ln`; `nft` is `nft list ruleset`), or undefined when this
   * mode does not have that tool's state (ipvs mode still has iptables rules and answers both).
   */
  dump(tool: DumpTool, args: readonly string[]): string | undefined;
  /**
   * A connection this backend chose an endpoint for has ended (its conntrack entry was
   * removed): IPVS uses it for active-connection counts (lc, sed, nq).
   */
  connectionClosed?(entry: ConnEntry): void;
}

export interface BackendOptions {
  node: ProxyNode;
  /** Uniform in [0, 1): statistic --mode random, numgen random, IPVS tie-breaks. */
  rng: () => number;
  /** ipvs: --ipvs-scheduler (default rr). */
  ipvsScheduler?: IpvsScheduler;
}

export type IpvsScheduler = "rr" | "wrr" | "lc" | "wlc" | "sh" | "dh" | "sed" | "nq";
export const IPVS_SCHEDULERS: readonly IpvsScheduler[] = ["rr", "wrr", "lc", "wlc", "sh", "dh", "sed", "nq"];

/**
 * Which scheduler a virtual server uses: the Service's `ipvs.kube-proxy.kubernetes.io/scheduler`
 * style annotation is not Kubernetes API, so the per-cluster --ipvs-scheduler decides, as in
 * kube-proxy; tests build backends with the scheduler they exercise.
 */
export function isIpvsScheduler(s: string): s is IpvsScheduler {
  return (IPVS_SCHEDULERS as readonly string[]).includes(s);
}
