/**
 * Addressing of the emulated cluster: CIDRs as (network, prefix) numbers, and the deterministic
 * MACs kubewire derives from IPs so that a restarted node comes back with the same link-layer
 * identity (the OVN-Kubernetes convention 0a:58:<ip> for pods and bridges).
 */
import { Validator } from "ip-num";
import { formatIpv4, parseIpv4Addr, type Ipv4Addr, type MacAddr } from "../overlay/wire/common.ts";

export interface Cidr {
  readonly network: Ipv4Addr;
  readonly prefix: number;
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffff_ffff << (32 - prefix)) >>> 0;
}

/** Parses "a.b.c.d/n"; undefined unless it is a valid, aligned IPv4 CIDR (ip-num validates). */
export function parseCidr(text: string): Cidr | undefined {
  if (!Validator.isValidIPv4CidrRange(text)[0]) return undefined;
  const [ip, prefix] = text.split("/");
  const network = parseIpv4Addr(ip!);
  if (network === undefined) return undefined;
  return { network, prefix: Number(prefix) };
}

export function mustParseCidr(text: string): Cidr {
  const cidr = parseCidr(text);
  if (!cidr) throw new RangeError(`not an aligned IPv4 CIDR: ${text}`);
  return cidr;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.network)}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr, ip: Ipv4Addr): boolean {
  return ((ip & maskOf(cidr.prefix)) >>> 0) === cidr.network;
}

export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

export function broadcastOf(cidr: Cidr): Ipv4Addr {
  return (cidr.network + cidrSize(cidr) - 1) >>> 0;
}

/** The nth address of a CIDR (0 = network address). */
export function nthAddress(cidr: Cidr, n: number): Ipv4Addr {
  return (cidr.network + n) >>> 0;
}

function macFromIp(prefix16: number, ip: Ipv4Addr): MacAddr {
  return prefix16 * 0x1_0000_0000 + ip;
}

/** Pod eth0 and cni0 MACs: 0a:58:<ip>, locally administered, unique per IP. */
export function podMac(ip: Ipv4Addr): MacAddr {
  return macFromIp(0x0a58, ip);
}

/** VTEP (flannel.1) MAC, from the node's InternalIP: 0e:6b:<ip> ("k"). */
export function vtepMac(nodeIp: Ipv4Addr): MacAddr {
  return macFromIp(0x0e6b, nodeIp);
}

/** The node's underlay eth0 MAC, from its InternalIP: 02:42:<ip>. */
export function underlayMac(nodeIp: Ipv4Addr): MacAddr {
  return macFromIp(0x0242, nodeIp);
}
