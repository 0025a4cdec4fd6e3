/**
 * A route table with longest-prefix match, like one `ip route` table of a Linux netns. Pure:
 * no clock, no I/O. Lookups return a discriminated union; there is no "null route".
 */
import { formatCidr, maskOf, type Cidr } from "../cluster/addressing.ts";
import { formatIpv4, type Ipv4Addr } from "../overlay/wire/common.ts";

export interface Route {
  readonly dst: Cidr;
  /** Output device name. */
  readonly dev: string;
  /** Next hop; absent for a connected (on-link) route, where the destination itself is the next hop. */
  readonly via?: Ipv4Addr;
  /** Preferred source address for locally originated packets. */
  readonly src?: Ipv4Addr;
  /** `onlink` as in flannel's routes: the gateway is reachable on dev without a covering route. */
  readonly onlink?: boolean;
}

export type RouteLookup = { kind: "found"; route: Route; nextHop: Ipv4Addr } | { kind: "noRoute" };

export function formatRoute(r: Route): string {
  const dst = r.dst.prefix === 0 ? "default" : formatCidr(r.dst);
  const via = r.via !== undefined ? ` via ${formatIpv4(r.via)}` : "";
  const src = r.src !== undefined ? ` src ${formatIpv4(r.src)}` : "";
  return `${dst}${via} dev ${r.dev}${r.onlink ? " onlink" : ""}${src}`;
}

export class RouteTable {
  /** Sorted longest prefix first, so the first match wins. */
  private routes: Route[] = [];

  /** Adds or replaces the route for r.dst (like `ip route replace`). */
  replace(r: Route): void {
    this.routes = this.routes.filter((x) => !sameDst(x.dst, r.dst));
    this.routes.push(r);
    this.routes.sort((a, b) => b.dst.prefix - a.dst.prefix);
  }

  remove(dst: Cidr): boolean {
    const before = this.routes.length;
    this.routes = this.routes.filter((x) => !sameDst(x.dst, dst));
    return this.routes.length !== before;
  }

  /** Replaces every route through `dev` with `routes`, in one step (a whole-state sync). */
  syncDevice(dev: string, routes: readonly Route[]): void {
    this.routes = [...this.routes.filter((x) => x.dev !== dev), ...routes];
    this.routes.sort((a, b) => b.dst.prefix - a.dst.prefix);
  }

  lookup(dst: Ipv4Addr): RouteLookup {
    const route = this.find(dst);
    return route === undefined ? { kind: "noRoute" } : { kind: "found", route, nextHop: route.via ?? dst };
  }

  /** The per-packet form of `lookup`: the longest-prefix route, or undefined (next hop: route.via ?? dst). */
  find(dst: Ipv4Addr): Route | undefined {
    const routes = this.routes;
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i]!;
      if (((dst & maskOf(route.dst.prefix)) >>> 0) === route.dst.network) return route;
    }
    return undefined;
  }

  list(): readonly Route[] {
    return this.routes;
  }
}

function sameDst(a: Cidr, b: Cidr): boolean {
  return a.network === b.network && a.prefix === b.prefix;
}
