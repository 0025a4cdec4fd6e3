import { describe, expect, it } from "vitest";
import { mustParseCidr } from "../../cluster/addressing.ts";
import { RouteTable, formatRoute, type Route, type RouteLookup } from "../../node-agent/routes.ts";
import { formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/common.ts";

const ip = (text: string): Ipv4Addr => parseIpv4Addr(text)!;
const route = (dst: string, dev: string, extra: Omit<Route, "dst" | "dev"> = {}): Route => ({ dst: mustParseCidr(dst), dev, ...extra });

/** "dev via-nexthop" of a lookup, or "noRoute". */
function resolved(r: RouteLookup): string {
  return r.kind === "found" ? `${r.route.dev} ${formatIpv4(r.nextHop)}` : "noRoute";
}

describe("RouteTable", () => {
  function table(): RouteTable {
    const t = new RouteTable();
    // Added shortest first, so the order of insertion cannot be what makes the match right.
    t.replace(route("0.0.0.0/0", "eth0", { via: ip("172.31.0.1") }));
    t.replace(route("10.244.0.0/16", "flannel.1", { via: ip("10.244.255.0") }));
    t.replace(route("10.244.1.0/24", "cni0", { src: ip("10.244.1.1") }));
    t.replace(route("10.244.1.9/32", "veth0"));
    return t;
  }

  it("prefers the longest matching prefix: /32 over /24 over /16 over default", () => {
    const t = table();
    expect(resolved(t.lookup(ip("10.244.1.9")))).toBe("veth0 10.244.1.9");
    expect(resolved(t.lookup(ip("10.244.1.8")))).toBe("cni0 10.244.1.8");
    expect(resolved(t.lookup(ip("10.244.7.8")))).toBe("flannel.1 10.244.255.0");
    expect(resolved(t.lookup(ip("8.8.8.8")))).toBe("eth0 172.31.0.1");
  });

  it("uses the destination itself as next hop of a connected route and the gateway otherwise", () => {
    const t = table();
    const connected = t.lookup(ip("10.244.1.200"));
    expect(connected.kind === "found" && connected.nextHop).toBe(ip("10.244.1.200"));
    const gw = t.lookup(ip("10.244.3.4"));
    expect(gw.kind === "found" && gw.nextHop).toBe(ip("10.244.255.0"));
  });

  it("says noRoute when nothing matches", () => {
    const t = new RouteTable();
    expect(t.lookup(ip("10.0.0.1"))).toEqual({ kind: "noRoute" });
    t.replace(route("10.244.0.0/16", "cni0"));
    expect(t.lookup(ip("10.245.0.1"))).toEqual({ kind: "noRoute" });
    expect(t.lookup(ip("255.255.255.255"))).toEqual({ kind: "noRoute" });
  });

  it("matches addresses above 2^31", () => {
    const t = new RouteTable();
    t.replace(route("192.168.0.0/16", "eth1"));
    expect(resolved(t.lookup(ip("192.168.44.1")))).toBe("eth1 192.168.44.1");
    expect(t.lookup(ip("192.169.0.1")).kind).toBe("noRoute");
  });

  it("replace swaps the route for the same destination and keeps one entry", () => {
    const t = table();
    t.replace(route("10.244.0.0/16", "eth0", { via: ip("172.31.0.9") }));
    expect(t.list().filter((r) => r.dst.prefix === 16)).toHaveLength(1);
    expect(resolved(t.lookup(ip("10.244.7.8")))).toBe("eth0 172.31.0.9");
    expect(t.list()).toHaveLength(4);
  });

  it("remove deletes by destination and says whether anything went", () => {
    const t = table();
    expect(t.remove(mustParseCidr("10.244.1.9/32"))).toBe(true);
    expect(resolved(t.lookup(ip("10.244.1.9")))).toBe("cni0 10.244.1.9");
    expect(t.remove(mustParseCidr("10.244.1.9/32"))).toBe(false);
  });

  it("syncDevice replaces only that device's routes", () => {
    const t = new RouteTable();
    t.replace(route("10.244.0.0/24", "cni0", { src: ip("10.244.0.1") }));
    t.replace(route("0.0.0.0/0", "eth0", { via: ip("172.31.0.1") }));
    t.syncDevice("flannel.1", [
      route("10.244.1.0/24", "flannel.1", { via: ip("10.244.1.0"), onlink: true }),
      route("10.244.2.0/24", "flannel.1", { via: ip("10.244.2.0"), onlink: true }),
    ]);
    expect(resolved(t.lookup(ip("10.244.2.5")))).toBe("flannel.1 10.244.2.0");

    t.syncDevice("flannel.1", [route("10.244.1.0/24", "flannel.1", { via: ip("10.244.1.0"), onlink: true })]);
    expect(t.list().map(formatRoute)).toEqual([
      "10.244.0.0/24 dev cni0 src 10.244.0.1",
      "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink",
      "default via 172.31.0.1 dev eth0",
    ]);
    // 10.244.2.0/24 is gone: it falls to the default route now.
    expect(resolved(t.lookup(ip("10.244.2.5")))).toBe("eth0 172.31.0.1");

    t.syncDevice("flannel.1", []);
    expect(t.list().map((r) => r.dev)).toEqual(["cni0", "eth0"]);
  });
});

describe("formatRoute", () => {
  it("prints routes as `ip route` does", () => {
    expect(formatRoute(route("10.244.1.0/24", "flannel.1", { via: ip("10.244.1.0"), onlink: true }))).toBe(
      "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink",
    );
    expect(formatRoute(route("0.0.0.0/0", "eth0", { via: ip("10.244.0.1") }))).toBe("default via 10.244.0.1 dev eth0");
    expect(formatRoute(route("10.244.0.0/24", "cni0", { src: ip("10.244.0.1") }))).toBe("10.244.0.0/24 dev cni0 src 10.244.0.1");
    expect(formatRoute(route("172.31.0.0/24", "eth0"))).toBe("172.31.0.0/24 dev eth0");
  });
});
