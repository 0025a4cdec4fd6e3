/**
 * Addressing of the emulated cluster: IP and CIDR text as Kubernetes parses it, CIDRs as
 * (network, prefix) numbers, and the deterministic MACs kubewire derives from IPs so that a
 * restarted node comes back with the same link-layer identity (the OVN-Kubernetes convention
 * 0a:58:<ip> for pods and bridges).
 *
 * One parser for IP text in the cluster code: k8s.io/utils/net ParseIPSloppy and
 * ParseCIDRSloppy (the rules API validation applies, k8s.io/apimachinery/pkg/util/validation
 * IsValidIP / IsValidCIDR): IPv4 octets may carry leading zeros and are read as decimal
 * ("010.1.2.3" is 10.1.2.3, not octal); a CIDR's prefix is decimal digits, leading zeros
 * allowed. The dotted-quad form itself is the wire layer's parseIpv4Addr, which follows the same
 * rule.
 */
import { formatIpv4, parseIpv4Addr, type Ipv4Addr, type MacAddr } from "../overlay/wire/common.ts";

export interface Cidr {
  readonly network: Ipv4Addr;
  readonly prefix: number;
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffff_ffff << (32 - prefix)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// IP and CIDR text, IPv4 and IPv6 (k8s.io/utils/net/parse.go, a fork of Go 1.16's net.ParseIP)

/** An address as Go's net.IP holds it after parsing: 4 bytes for dotted-quad text, 16 for colon text. */
export type IpBytes = readonly number[];

function ipv4Bytes(text: string): number[] | undefined {
  const ip = parseIpv4Addr(text);
  return ip === undefined ? undefined : [ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff];
}

function ipv6Bytes(text: string): number[] | undefined {
  let s = text;
  let v4Tail: number[] | undefined;
  if (s.includes(".")) {
    // An embedded IPv4 tail ("::ffff:1.2.3.4") stands for the last two groups.
    const last = s.lastIndexOf(":");
    if (last < 0) return undefined;
    v4Tail = ipv4Bytes(s.slice(last + 1));
    if (!v4Tail) return undefined;
    s = `${s.slice(0, last + 1)}0:0`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    for (const g of part.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0] ?? "");
  const tail = halves.length === 2 ? groups(halves[1] ?? "") : [];
  if (!head || !tail) return undefined;
  let words: number[];
  if (halves.length === 2) {
    if (head.length + tail.length > 7) return undefined;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    if (head.length !== 8) return undefined;
    words = head;
  }
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (v4Tail) bytes.splice(12, 4, ...v4Tail);
  return bytes;
}

/** netutils.ParseIPSloppy: IPv4 or IPv6 text, undefined if neither. */
export function parseIp(text: string): IpBytes | undefined {
  return ipv4Bytes(text) ?? (text.includes(":") ? ipv6Bytes(text) : undefined);
}

/** net.IP.To4: the IPv4 form of an address, also of an IPv4-mapped IPv6 one. */
export function ipTo4(ip: IpBytes): IpBytes | undefined {
  if (ip.length === 4) return ip;
  if (ip.slice(0, 10).every((x) => x === 0) && ip[10] === 0xff && ip[11] === 0xff) return ip.slice(12);
  return undefined;
}

/** A CIDR of either family as ParseCIDRSloppy returns its net.IPNet: the masked network and the prefix. */
export interface IpCidr {
  /** The network address (host bits cleared), 4 or 16 bytes. */
  readonly network: IpBytes;
  readonly prefix: number;
  /** The address as written, before masking (the "ip" ParseCIDR returns beside the net). */
  readonly address: IpBytes;
}

function maskBytes(bytes: IpBytes, prefix: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return bits === 0 ? 0 : b & ((0xff << (8 - bits)) & 0xff);
  });
}

/** netutils.ParseCIDRSloppy: "addr/prefix" of either family; host bits may be set (they are masked). */
export function parseIpCidr(text: string): IpCidr | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const addr = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const bytes = ipv4Bytes(addr) ?? (addr.includes(":") ? ipv6Bytes(addr) : undefined);
  if (!bytes || !/^[0-9]+$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > bytes.length * 8) return undefined;
  return { network: maskBytes(bytes, prefix), prefix, address: bytes };
}

/** net.IPNet.Contains for the byte form; an address of the other family is never contained. */
export function ipCidrContains(outer: IpCidr, ip: IpBytes): boolean {
  if (ip.length !== outer.network.length) return false;
  const masked = maskBytes(ip, outer.prefix);
  return masked.every((b, i) => b === outer.network[i]);
}

// ---------------------------------------------------------------------------------------------
// IPv4 CIDRs as numbers, for the allocators and the datapath

/**
 * Parses "a.b.c.d/n" with parseIpCidr's rules; undefined unless it is IPv4 and aligned (no host
 * bits: kubewire's own ranges are configuration, and a misaligned one is a typo, not a range).
 */
export function parseCidr(text: string): Cidr | undefined {
  const parsed = parseIpCidr(text);
  if (!parsed || parsed.address.length !== 4) return undefined;
  if (parsed.address.some((b, i) => b !== parsed.network[i])) return undefined;
  const [a, b, c, d] = parsed.network as [number, number, number, number];
  return { network: ((a << 24) | (b << 16) | (c << 8) | d) >>> 0, prefix: parsed.prefix };
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
