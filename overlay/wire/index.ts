/** The wire codecs, one module per protocol (see common.ts for the shared conventions). */

export * from "./common.ts";
export * from "./ethernet.ts";
export * from "./arp.ts";
export * from "./ipv4.ts";
export * from "./icmp.ts";
export * from "./udp.ts";
export * from "./tcp.ts";
export * from "./vxlan.ts";
export * from "./batch.ts";
