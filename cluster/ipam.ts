/**
 * Pure allocation for the control plane: node pod CIDRs out of the cluster CIDR, node
 * InternalIPs out of the underlay, pod IPs out of a node's pod CIDR. No I/O: the caller passes
 * what is taken (read from JetStream KV) and writes the choice back with a create-if-absent, so
 * two writers can never both win the same block.
 */
import { broadcastOf, cidrContains, cidrSize, formatCidr, nthAddress, type Cidr } from "./addressing.ts";
import type { Ipv4Addr } from "../overlay/wire/common.ts";

export type Allocation<T> = { kind: "allocated"; value: T } | { kind: "exhausted"; reason: string };

/** The lowest /nodeMask block of `cluster` not in `taken` (CIDR strings). */
export function allocateNodeCidr(cluster: Cidr, nodeMask: number, taken: ReadonlySet<string>): Allocation<Cidr> {
  if (nodeMask < cluster.prefix || nodeMask > 30) {
    return { kind: "exhausted", reason: `node mask /${nodeMask} does not fit in ${formatCidr(cluster)}` };
  }
  const blocks = 2 ** (nodeMask - cluster.prefix);
  const step = 2 ** (32 - nodeMask);
  for (let i = 0; i < blocks; i++) {
    const candidate: Cidr = { network: (cluster.network + i * step) >>> 0, prefix: nodeMask };
    if (!taken.has(formatCidr(candidate))) return { kind: "allocated", value: candidate };
  }
  return { kind: "exhausted", reason: `all ${blocks} /${nodeMask} blocks of ${formatCidr(cluster)} are taken` };
}

/**
 * The lowest host address of `cidr` from `.first` on that is not taken, never the broadcast
 * address. Pod CIDRs start at .2 (.1 is the cni0 gateway); the underlay starts at .2 (.1 is
 * the emulated router).
 */
export function allocateAddress(cidr: Cidr, first: number, taken: ReadonlySet<Ipv4Addr>): Allocation<Ipv4Addr> {
  const last = broadcastOf(cidr);
  for (let ip = nthAddress(cidr, first); ip < last; ip++) {
    if (!taken.has(ip)) return { kind: "allocated", value: ip };
  }
  return { kind: "exhausted", reason: `no free address in ${formatCidr(cidr)} (size ${cidrSize(cidr)})` };
}

/** True when the two CIDRs share any address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const wider = a.prefix <= b.prefix ? a : b;
  const narrower = wider === a ? b : a;
  return cidrContains(wider, narrower.network);
}
