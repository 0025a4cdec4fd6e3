/**
 * getent hosts / ahosts / ahostsv4, printing as glibc's nss/getent.c does, through the pod's
 * resolver (stub.ts lookupHost / lookupAddr: /etc/hosts, then the cluster DNS).
 *
 * - `hosts KEY`: an address is gethostbyaddr (PTR), a name gethostbyname2; one line per address,
 *   "%-15s %s" then the aliases (print_hosts). The real tool asks AF_INET6 first, which on this
 *   IPv4-only cluster finds nothing, so only the AF_INET lookup is made here.
 * - `ahosts KEY` / `ahostsv4 KEY`: getaddrinfo with AI_CANONNAME; each address three times (one per
 *   socket type: STREAM, DGRAM, RAW), "%-15s %-6s %s", the canonical name on the first line only.
 * - no key: the /etc/hosts entries (gethostent).
 * Exit codes as getent's: 2 when a key is not found, 1 for a bad database or usage.
 */
import type { ExecResult } from "../../cluster/types.ts";
import { formatIpv4, parseIpv4Addr } from "../../overlay/wire/index.ts";
import { lookupAddr, parseHosts } from "../dns/stub.ts";
import { podText, resolveName, stubIo, type ToolContext } from "./common.ts";

/** The most a lookup may take here (glibc's own bound is attempts x servers x timeout per name). */
const LOOKUP_CAP_MS = 60_000;
const SOCKET_TYPES = ["STREAM", "DGRAM", "RAW"] as const;
const DATABASES = ["ahosts", "ahostsv4", "ahostsv6", "aliases", "ethers", "group", "gshadow", "hosts", "initgroups", "netgroup", "networks", "passwd", "protocols", "rpc", "services", "shadow"];

function hostLine(address: string, name: string, aliases: readonly string[]): string {
  return `${address.padEnd(15)} ${name}${aliases.map((a) => ` ${a}`).join("")}\n`;
}

export async function getent(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  const help = "Try `getent --help' or `getent --usage' for more information.\n";
  const [database, ...keys] = argv;
  if (database === undefined) return { exitCode: 1, stdout: "", stderr: `getent: wrong number of arguments\n${help}` };
  if (!DATABASES.includes(database)) return { exitCode: 1, stdout: "", stderr: `Unknown database: ${database}\n${help}` };
  if (database !== "hosts" && database !== "ahosts" && database !== "ahostsv4") {
    return { exitCode: 1, stdout: "", stderr: `getent: the ${database} database is not emulated (hosts, ahosts, ahostsv4 are)\n` };
  }
  const hostsText = podText(ctx, "/etc/hosts");
  if (keys.length === 0) {
    // sethostent/gethostent: the files backend only.
    const out = (hostsText === undefined ? [] : parseHosts(hostsText)).map((e) => hostLine(e.address, e.names[0]!, e.names.slice(1))).join("");
    return { exitCode: 0, stdout: out, stderr: "" };
  }
  let stdout = "";
  let exitCode = 0;
  for (const key of keys) {
    if (database === "hosts") {
      const addr = parseIpv4Addr(key);
      const conf = podText(ctx, "/etc/resolv.conf");
      if (addr !== undefined) {
        const r = conf === undefined ? hostsReverse(addr, hostsText) : await lookupAddr(stubIo(ctx), addr, conf, hostsText, { deadline: ctx.clock.now() + LOOKUP_CAP_MS });
        if (r.kind !== "found") exitCode = 2;
        else stdout += hostLine(key, r.name, r.aliases);
        continue;
      }
      const r = await resolveName(ctx, key, LOOKUP_CAP_MS);
      if (r.kind !== "found") {
        exitCode = 2;
        continue;
      }
      for (const a of r.addresses) stdout += hostLine(formatIpv4(a), r.canonical, r.aliases);
    } else {
      const r = await resolveName(ctx, key, LOOKUP_CAP_MS);
      if (r.kind !== "found") {
        exitCode = 2;
        continue;
      }
      r.addresses.forEach((a, i) => {
        SOCKET_TYPES.forEach((t, j) => {
          stdout += `${formatIpv4(a).padEnd(15)} ${t.padEnd(6)} ${i === 0 && j === 0 ? r.canonical : ""}\n`;
        });
      });
    }
  }
  return { exitCode, stdout, stderr: "" };
}

function hostsReverse(addr: number, hostsText: string | undefined): { kind: "found"; name: string; aliases: readonly string[] } | { kind: "nxdomain" } {
  const line = hostsText === undefined ? undefined : parseHosts(hostsText).find((e) => e.ipv4 === addr);
  return line ? { kind: "found", name: line.names[0]!, aliases: line.names.slice(1) } : { kind: "nxdomain" };
}
