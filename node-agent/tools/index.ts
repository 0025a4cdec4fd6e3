/** `kubectl exec`/`kubewire exec` inside a pod: the emulated tools by name. */
import type { ExecResult } from "../../cluster/types.ts";
import { formatIpv4, formatMac } from "../../overlay/wire/index.ts";
import { formatRoute } from "../routes.ts";
import { UsageError, type ToolContext } from "./common.ts";
import { curl } from "./curl.ts";
import { dig } from "./dig.ts";
import { cat, dd, ls, rm, sha256sum } from "./files.ts";
import { getent } from "./getent.ts";
import { dnsperf } from "./dnsperf.ts";
import { iperf } from "./iperf.ts";
import { conntrackTool } from "./conntrack.ts";
import { nc } from "./nc.ts";
import { nslookup } from "./nslookup.ts";
import { ping } from "./ping.ts";
import { traceroute } from "./traceroute.ts";
import { wget } from "./wget.ts";

type Tool = (ctx: ToolContext, argv: readonly string[]) => Promise<ExecResult>;

const tools: Record<string, Tool> = {
  ping,
  traceroute,
  iperf,
  curl,
  wget,
  nc,
  dd,
  sha256sum,
  cat,
  ls,
  rm,
  dig,
  nslookup,
  getent,
  dnsperf,
  env: async (ctx, argv) => envTool(ctx, argv),
  hostname: async (ctx) => ({ exitCode: 0, stdout: `${ctx.podName}\n`, stderr: "" }),
  ip: async (ctx, argv) => ipTool(ctx, argv),
  "iptables-save": async (ctx, argv) => proxyTool(ctx, "iptables-save", argv),
  ipvsadm: async (ctx, argv) => proxyTool(ctx, "ipvsadm", argv),
  nft: async (ctx, argv) => proxyTool(ctx, "nft", argv),
  conntrack: async (ctx, argv) =>
    ctx.conntrack ? conntrackTool(ctx.conntrack, ctx.clock.now(), argv) : { exitCode: 1, stdout: "", stderr: "conntrack: no conntrack table here\n" },
};

export const TOOL_NAMES = Object.keys(tools);

export async function runTool(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  const [name, ...args] = argv;
  const tool = name === undefined ? undefined : tools[name];
  if (!tool) {
    return { exitCode: 127, stdout: "", stderr: `exec: "${name ?? ""}": executable file not found (emulated tools: ${TOOL_NAMES.join(", ")})\n` };
  }
  try {
    return await tool(ctx, args);
  } catch (err) {
    if (err instanceof UsageError) return { exitCode: 2, stdout: "", stderr: `${name}: ${err.message}\n` };
    throw err;
  }
}

/** `env` with no arguments: the container's environment, NAME=value per line (coreutils). */
function envTool(ctx: ToolContext, argv: readonly string[]): ExecResult {
  if (argv.length > 0) return { exitCode: 125, stdout: "", stderr: "env: only `env` without arguments is emulated (it prints the container's environment)\n" };
  return { exitCode: 0, stdout: Object.entries(ctx.env ?? {}).map(([k, v]) => `${k}=${v}\n`).join(""), stderr: "" };
}

/** `ip addr`, `ip route`, `ip neigh`: the netns as iproute2 would list it. */
function ipTool(ctx: ToolContext, argv: readonly string[]): ExecResult {
  const { ns } = ctx;
  const object = argv.find((a) => !a.startsWith("-")) ?? "addr";
  const lines: string[] = [];
  if ("address".startsWith(object) || "link".startsWith(object)) {
    let index = 1;
    for (const iface of ns.ifaces.values()) {
      lines.push(`${index++}: ${iface.name}: <UP,LOWER_UP> mtu ${iface.mtu}`);
      lines.push(`    link/${iface.name === "lo" ? "loopback" : "ether"} ${formatMac(iface.mac)}`);
      if (iface.addr) lines.push(`    inet ${formatIpv4(iface.addr.ip)}/${iface.addr.prefix} scope global ${iface.name}`);
    }
  } else if ("route".startsWith(object)) {
    for (const r of ns.routes.list()) lines.push(formatRoute(r));
  } else if ("neighbour".startsWith(object) || object === "neigh") {
    for (const iface of ns.ifaces.values()) {
      for (const n of ns.neighbors.entriesOf(iface.name)) {
        lines.push(`${formatIpv4(n.ip)} dev ${iface.name} lladdr ${formatMac(n.mac)} ${n.state.toUpperCase()}`);
      }
    }
  } else {
    return { exitCode: 1, stdout: "", stderr: `Object "${object}" is unknown, try "ip help".\n` };
  }
  return { exitCode: 0, stdout: lines.map((l) => `${l}\n`).join(""), stderr: "" };
}

/**
 * The node's kube-proxy state in the native tools' formats. Only the forms kube-proxy users
 * reach for: `iptables-save [-t TABLE]`, `ipvsadm -Ln` (or -L -n, --list), `nft list ruleset`.
 */
function proxyTool(ctx: ToolContext, tool: "iptables-save" | "ipvsadm" | "nft", argv: readonly string[]): ExecResult {
  if (!ctx.proxyDump) return { exitCode: 1, stdout: "", stderr: `${tool}: not available in a pod (run it on the node: kubewire exec --node NODE -- ${tool})\n` };
  if (tool === "nft" && !(argv[0] === "list" && argv[1] === "ruleset")) return { exitCode: 1, stdout: "", stderr: "nft: only `nft list ruleset` is emulated\n" };
  if (tool === "ipvsadm" && argv.length > 0 && !argv.some((a) => /^-[a-zA-Z]*L/.test(a) || a === "--list")) {
    return { exitCode: 2, stdout: "", stderr: "ipvsadm: only listing (-L -n) is emulated\n" };
  }
  if (tool === "iptables-save") {
    const t = argv.indexOf("-t") >= 0 ? argv[argv.indexOf("-t") + 1] : undefined;
    if (t !== undefined && t !== "nat" && t !== "filter") return { exitCode: 1, stdout: "", stderr: `iptables-save: table '${t}' has no kube-proxy rules here\n` };
  }
  const text = ctx.proxyDump(tool, argv);
  if (text === undefined) {
    // Not this proxy mode's tool: what the tool says on a node where that subsystem holds nothing.
    const why = tool === "ipvsadm" ? "Can't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server is built in the kernel or as module?\n" : "";
    return { exitCode: tool === "ipvsadm" ? 2 : 0, stdout: "", stderr: why };
  }
  return { exitCode: 0, stdout: text, stderr: "" };
}
