import { describe, expect, it } from "vitest";
import { formatCidr, mustParseCidr, type Cidr } from "../../cluster/addressing.ts";
import { allocateAddress, allocateNodeCidr, cidrsOverlap, type Allocation } from "../../cluster/ipam.ts";
import { formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/common.ts";

const ip = (text: string): Ipv4Addr => parseIpv4Addr(text)!;

function allocatedCidr(a: Allocation<Cidr>): string {
  if (a.kind !== "allocated") throw new Error(`expected an allocation, got: ${a.reason}`);
  return formatCidr(a.value);
}

function allocatedIp(a: Allocation<Ipv4Addr>): string {
  if (a.kind !== "allocated") throw new Error(`expected an allocation, got: ${a.reason}`);
  return formatIpv4(a.value);
}

describe("allocateNodeCidr", () => {
  const cluster = mustParseCidr("10.244.0.0/16");

  it("gives the first /24 of an empty cluster", () => {
    expect(allocatedCidr(allocateNodeCidr(cluster, 24, new Set()))).toBe("10.244.0.0/24");
  });

  it("gives the lowest free block, filling a hole before going past the taken ones", () => {
    expect(allocatedCidr(allocateNodeCidr(cluster, 24, new Set(["10.244.0.0/24", "10.244.1.0/24"])))).toBe("10.244.2.0/24");
    expect(allocatedCidr(allocateNodeCidr(cluster, 24, new Set(["10.244.0.0/24", "10.244.2.0/24"])))).toBe("10.244.1.0/24");
  });

  it("steps by the node mask's block size", () => {
    const taken = new Set(["10.244.0.0/26", "10.244.0.64/26"]);
    expect(allocatedCidr(allocateNodeCidr(mustParseCidr("10.244.0.0/24"), 26, taken))).toBe("10.244.0.128/26");
  });

  it("is exhausted when every block is taken (/22 cluster, 4 /24s)", () => {
    const taken = new Set(["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]);
    const cluster22 = mustParseCidr("10.0.0.0/22");
    const r = allocateNodeCidr(cluster22, 24, taken);
    expect(r.kind).toBe("exhausted");
    if (r.kind === "exhausted") expect(r.reason).toContain("all 4 /24 blocks of 10.0.0.0/22");
    // With one of them released, that one is handed out again.
    taken.delete("10.0.2.0/24");
    expect(allocatedCidr(allocateNodeCidr(cluster22, 24, taken))).toBe("10.0.2.0/24");
  });

  it("ignores taken blocks outside the cluster", () => {
    expect(allocatedCidr(allocateNodeCidr(mustParseCidr("10.0.0.0/23"), 24, new Set(["10.9.0.0/24"])))).toBe("10.0.0.0/24");
  });

  it("refuses a node mask wider than the cluster or narrower than /30", () => {
    const wider = allocateNodeCidr(cluster, 15, new Set());
    expect(wider.kind).toBe("exhausted");
    if (wider.kind === "exhausted") expect(wider.reason).toContain("/15 does not fit in 10.244.0.0/16");
    expect(allocateNodeCidr(cluster, 31, new Set()).kind).toBe("exhausted");
    expect(allocateNodeCidr(cluster, 32, new Set()).kind).toBe("exhausted");
    // The boundaries themselves are allowed.
    expect(allocatedCidr(allocateNodeCidr(cluster, 16, new Set()))).toBe("10.244.0.0/16");
    expect(allocatedCidr(allocateNodeCidr(cluster, 30, new Set()))).toBe("10.244.0.0/30");
  });

  it("works at the top of the address space without sign trouble", () => {
    expect(allocatedCidr(allocateNodeCidr(mustParseCidr("255.255.0.0/16"), 24, new Set(["255.255.0.0/24"])))).toBe("255.255.1.0/24");
  });
});

describe("allocateAddress", () => {
  const pods = mustParseCidr("10.244.1.0/24");

  it("starts at the `first` host", () => {
    expect(allocatedIp(allocateAddress(pods, 2, new Set()))).toBe("10.244.1.2");
    expect(allocatedIp(allocateAddress(pods, 10, new Set()))).toBe("10.244.1.10");
  });

  it("skips taken addresses and fills holes", () => {
    expect(allocatedIp(allocateAddress(pods, 2, new Set([ip("10.244.1.2"), ip("10.244.1.3")])))).toBe("10.244.1.4");
    expect(allocatedIp(allocateAddress(pods, 2, new Set([ip("10.244.1.2"), ip("10.244.1.4")])))).toBe("10.244.1.3");
  });

  it("never hands out the broadcast address", () => {
    const taken = new Set<Ipv4Addr>();
    for (let n = 2; n <= 253; n++) taken.add(ip(`10.244.1.${n}`));
    expect(allocatedIp(allocateAddress(pods, 2, taken))).toBe("10.244.1.254");
    taken.add(ip("10.244.1.254"));
    const r = allocateAddress(pods, 2, taken);
    expect(r.kind).toBe("exhausted");
    if (r.kind === "exhausted") expect(r.reason).toContain("10.244.1.0/24");
  });

  it("is exhausted in a block with no host address after `first`", () => {
    const thirty = mustParseCidr("172.31.0.0/30"); // .0 network, .1 router, .2 host, .3 broadcast
    expect(allocatedIp(allocateAddress(thirty, 2, new Set()))).toBe("172.31.0.2");
    expect(allocateAddress(thirty, 2, new Set([ip("172.31.0.2")])).kind).toBe("exhausted");
    expect(allocateAddress(mustParseCidr("172.31.0.4/31"), 2, new Set()).kind).toBe("exhausted");
  });

  it("handles addresses above 2^31 (unsigned)", () => {
    expect(allocatedIp(allocateAddress(mustParseCidr("192.168.7.0/24"), 2, new Set([ip("192.168.7.2")])))).toBe("192.168.7.3");
  });
});

describe("cidrsOverlap", () => {
  const c = mustParseCidr;

  it("is true for a block and anything inside it, in either order", () => {
    expect(cidrsOverlap(c("10.244.0.0/16"), c("10.244.3.0/24"))).toBe(true);
    expect(cidrsOverlap(c("10.244.3.0/24"), c("10.244.0.0/16"))).toBe(true);
    expect(cidrsOverlap(c("10.244.3.0/24"), c("10.244.3.0/24"))).toBe(true);
    expect(cidrsOverlap(c("0.0.0.0/0"), c("192.168.0.0/16"))).toBe(true);
    expect(cidrsOverlap(c("10.244.3.7/32"), c("10.244.3.0/24"))).toBe(true);
  });

  it("is false for disjoint blocks, adjacent ones included", () => {
    expect(cidrsOverlap(c("10.244.0.0/16"), c("10.96.0.0/12"))).toBe(false);
    expect(cidrsOverlap(c("10.244.0.0/24"), c("10.244.1.0/24"))).toBe(false);
    expect(cidrsOverlap(c("10.244.1.0/24"), c("10.244.0.0/24"))).toBe(false);
    expect(cidrsOverlap(c("172.31.0.0/24"), c("10.244.0.0/16"))).toBe(false);
  });
});
