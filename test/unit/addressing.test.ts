import { describe, expect, it } from "vitest";
import {
  broadcastOf,
  cidrContains,
  cidrSize,
  formatCidr,
  maskOf,
  mustParseCidr,
  nthAddress,
  parseCidr,
  podMac,
  underlayMac,
  vtepMac,
} from "../../cluster/addressing.ts";
import { formatIpv4, formatMac, parseIpv4Addr, parseMac, type Ipv4Addr } from "../../overlay/wire/common.ts";

const ip = (text: string): Ipv4Addr => parseIpv4Addr(text)!;

describe("parseCidr", () => {
  it("parses aligned CIDRs into network and prefix", () => {
    expect(parseCidr("10.244.0.0/16")).toEqual({ network: ip("10.244.0.0"), prefix: 16 });
    expect(parseCidr("10.244.1.0/24")).toEqual({ network: ip("10.244.1.0"), prefix: 24 });
    expect(parseCidr("0.0.0.0/0")).toEqual({ network: 0, prefix: 0 });
    expect(parseCidr("10.244.1.5/32")).toEqual({ network: ip("10.244.1.5"), prefix: 32 });
    expect(parseCidr("192.168.0.0/16")).toEqual({ network: 0xc0a8_0000, prefix: 16 });
  });

  it("rejects a CIDR with host bits set", () => {
    expect(parseCidr("10.244.1.5/16")).toBeUndefined();
    expect(parseCidr("10.244.1.0/16")).toBeUndefined();
    expect(() => mustParseCidr("10.244.1.5/16")).toThrow(RangeError);
  });

  it("rejects prefixes outside 0..32", () => {
    expect(parseCidr("10.244.0.0/33")).toBeUndefined();
    expect(parseCidr("10.244.0.0/-1")).toBeUndefined();
  });

  it("rejects garbage", () => {
    for (const text of ["", "garbage", "10.244.0.0", "10.244.0.0/", "/16", "256.0.0.0/8", "10.244.0/16", "10.244.0.0/16/1", " 10.0.0.0/8"]) {
      expect(parseCidr(text), text).toBeUndefined();
    }
    expect(() => mustParseCidr("nope")).toThrow("not an aligned IPv4 CIDR: nope");
  });

  it("round-trips through formatCidr", () => {
    for (const text of ["10.244.0.0/16", "172.31.0.0/24", "0.0.0.0/0", "255.255.255.255/32"]) {
      expect(formatCidr(mustParseCidr(text))).toBe(text);
    }
  });
});

describe("cidr arithmetic", () => {
  it("maskOf gives the netmask of a prefix", () => {
    expect(maskOf(0)).toBe(0);
    expect(maskOf(8)).toBe(0xff00_0000);
    expect(maskOf(24)).toBe(0xffff_ff00);
    expect(maskOf(32)).toBe(0xffff_ffff);
  });

  it("cidrContains includes the network and broadcast and nothing outside", () => {
    const c = mustParseCidr("10.244.1.0/24");
    expect(cidrContains(c, ip("10.244.1.0"))).toBe(true);
    expect(cidrContains(c, ip("10.244.1.77"))).toBe(true);
    expect(cidrContains(c, ip("10.244.1.255"))).toBe(true);
    expect(cidrContains(c, ip("10.244.2.0"))).toBe(false);
    expect(cidrContains(c, ip("10.244.0.255"))).toBe(false);
    expect(cidrContains(mustParseCidr("0.0.0.0/0"), ip("255.255.255.255"))).toBe(true);
    expect(cidrContains(mustParseCidr("192.168.0.0/16"), ip("192.168.200.1"))).toBe(true);
    expect(cidrContains(mustParseCidr("10.0.0.9/32"), ip("10.0.0.9"))).toBe(true);
    expect(cidrContains(mustParseCidr("10.0.0.9/32"), ip("10.0.0.8"))).toBe(false);
  });

  it("size, broadcast and nth address", () => {
    const c = mustParseCidr("10.244.1.0/24");
    expect(cidrSize(c)).toBe(256);
    expect(formatIpv4(broadcastOf(c))).toBe("10.244.1.255");
    expect(formatIpv4(nthAddress(c, 1))).toBe("10.244.1.1");
    expect(formatIpv4(broadcastOf(mustParseCidr("255.255.255.0/24")))).toBe("255.255.255.255");
  });
});

describe("derived MACs", () => {
  it("podMac is 0a:58 followed by the IP", () => {
    expect(formatMac(podMac(ip("10.244.1.2")))).toBe("0a:58:0a:f4:01:02");
    expect(formatMac(podMac(ip("10.244.0.1")))).toBe("0a:58:0a:f4:00:01");
    expect(formatMac(podMac(ip("255.255.255.255")))).toBe("0a:58:ff:ff:ff:ff");
  });

  it("vtepMac is 0e:6b and underlayMac 02:42, followed by the node IP", () => {
    expect(formatMac(vtepMac(ip("172.31.0.2")))).toBe("0e:6b:ac:1f:00:02");
    expect(formatMac(underlayMac(ip("172.31.0.2")))).toBe("02:42:ac:1f:00:02");
  });

  it("are unicast, locally administered and parse back to the same number", () => {
    for (const mac of [podMac(ip("10.244.1.2")), vtepMac(ip("172.31.0.3")), underlayMac(ip("172.31.0.4"))]) {
      const firstOctet = Math.floor(mac / 0x100_0000_0000);
      expect(firstOctet & 1).toBe(0); // unicast
      expect(firstOctet & 2).toBe(2); // locally administered
      expect(parseMac(formatMac(mac))).toBe(mac);
    }
  });

  it("differ for different IPs and between roles", () => {
    expect(podMac(ip("10.244.1.2"))).not.toBe(podMac(ip("10.244.1.3")));
    expect(vtepMac(ip("172.31.0.2"))).not.toBe(underlayMac(ip("172.31.0.2")));
  });
});
