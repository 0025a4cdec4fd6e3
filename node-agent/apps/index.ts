/**
 * What a pod's containers serve. Containers are not run: each is mapped to a small emulated
 * app by a pure decision, `plan(containers)`, then `startPodApps` binds them in the pod's netns.
 *
 * Design notes (the decision follows what the image would really do, not only the spec):
 * - agnhost with the `netexec` subcommand (in command or args): HTTP on `--http-port`
 *   (default 8080) and netexec's UDP protocol on `--udp-port` (default 8081, -1 disables), as
 *   test/images/agnhost/netexec/netexec.go. Declared ports do not matter: a containerPort is
 *   informational in Kubernetes (core/v1 ContainerPort: "Not specifying a port here DOES NOT
 *   prevent that port from being exposed").
 * - agnhost `serve-hostname` (and the old serve_hostname image): the pod name over HTTP on
 *   `--port` (default 9376); agnhost `pause`: nothing.
 * - nginx / httpd (any registry, any tag): the welcome page on port 80 only.
 * - coredns: the cluster DNS on UDP and TCP 53 (./dns.ts), answering from the node's data; the
 *   Corefile's server port is 53 in every kubeadm Corefile, so that is the port served.
 * - any other image: its declared TCP ports get the netexec HTTP server, declared UDP ports a
 *   UDP echo, so a Service in front of "some app" answers something useful.
 * - the containers of a pod share one netns: the second app on a port fails to bind and logs
 *   what the real program would ("bind: address already in use"); the pod keeps running.
 */
import type { Ipv4Addr } from "../../overlay/wire/common.ts";
import type { SendOptions, SendResult, UdpMeta } from "../netns.ts";
import type { TcpApi } from "../tcp/api.ts";
import type { Schedule } from "../tcp/memory.ts";
import type { PodFs } from "../tools/fs.ts";
import { reply, serveHttp } from "./http.ts";
import { goLogTime, startNetexecHttp, startNetexecUdp } from "./netexec.ts";
import { startWebServer, type WebFlavor } from "./webserver.ts";
import { startDnsServer, type DnsBackend } from "./dns.ts";

export interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports: { containerPort: number; protocol: "TCP" | "UDP" }[];
}

/** The part of a Netns the apps use (Netns satisfies it structurally). */
export interface UdpApi {
  bindUdp(port: number, handler: (payload: Uint8Array, meta: UdpMeta) => void): { kind: "bound"; port: number } | { kind: "inUse" };
  sendUdp(dst: Ipv4Addr, dstPort: number, srcPort: number, payload: Uint8Array, opts?: SendOptions): SendResult;
  unbindUdp(port: number): void;
  /** Binds the next free ephemeral port (a client socket's implicit bind). */
  bindEphemeralUdp(handler: (payload: Uint8Array, meta: UdpMeta) => void): number;
}

export interface AppEnv {
  podName: string;
  tcp: TcpApi;
  udp: UdpApi;
  /** One line of the pod's log (`kubectl logs`). */
  log(line: string): void;
  /** Wall-clock time for log lines and netexec's "NOW:". */
  now(): Date;
  /** Timers for HTTP keep-alive idle timeouts; default real ones. Tests pass a virtual clock's. */
  schedule?: Schedule;
  /** The pod's files: nginx/httpd serve their docroot from it. */
  fs?: PodFs;
  /** The node's cluster DNS data and upstream, for the coredns image. */
  dns?: DnsBackend;
}

export type PlannedApp =
  | { kind: "netexecHttp"; container: string; port: number }
  | { kind: "netexecUdp"; container: string; port: number }
  | { kind: "web"; container: string; port: number; flavor: WebFlavor }
  | { kind: "hostnameHttp"; container: string; port: number }
  | { kind: "udpEcho"; container: string; port: number }
  | { kind: "dns"; container: string; port: number };

/** Something the emulation cannot serve, said once in the pod log. */
export interface PlanNote {
  container: string;
  message: string;
}

export interface Plan {
  apps: PlannedApp[];
  notes: PlanNote[];
}

export const PROTOCOL_OF = {
  netexecHttp: "TCP",
  netexecUdp: "UDP",
  web: "TCP",
  hostnameHttp: "TCP",
  udpEcho: "UDP",
  dns: "UDP+TCP",
} as const satisfies Record<PlannedApp["kind"], "TCP" | "UDP" | "UDP+TCP">;

const APP_LABEL = {
  netexecHttp: "netexec",
  netexecUdp: "netexec",
  web: "web",
  hostnameHttp: "serve-hostname",
  udpEcho: "udp-echo",
  dns: "coredns",
} as const satisfies Record<PlannedApp["kind"], string>;

/** "registry.k8s.io/e2e-test-images/agnhost:2.53@sha256:..." -> "agnhost". */
export function imageBasename(image: string): string {
  const noDigest = image.split("@")[0]!;
  const last = noDigest.slice(noDigest.lastIndexOf("/") + 1);
  const colon = last.indexOf(":");
  return (colon >= 0 ? last.slice(0, colon) : last).toLowerCase();
}

type FlagValue = { kind: "absent" } | { kind: "value"; value: number } | { kind: "invalid"; raw: string };

/** A pflag integer flag: `--name=N` or `--name N`; the last occurrence wins, as pflag. */
function intFlag(argv: readonly string[], name: string): FlagValue {
  let found: FlagValue = { kind: "absent" };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let raw: string | undefined;
    if (arg === `--${name}`) raw = argv[++i];
    else if (arg.startsWith(`--${name}=`)) raw = arg.slice(name.length + 3);
    else continue;
    const value = Number(raw);
    found = raw !== undefined && /^-?\d+$/.test(raw) && Number.isSafeInteger(value) ? { kind: "value", value } : { kind: "invalid", raw: raw ?? "" };
  }
  return found;
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

export function plan(containers: readonly ContainerSpec[]): Plan {
  const apps: PlannedApp[] = [];
  const notes: PlanNote[] = [];
  for (const c of containers) {
    const base = imageBasename(c.image);
    const argv = [...(c.command ?? []), ...(c.args ?? [])];
    const sub = base === "agnhost" ? argv.find((a) => !a.startsWith("-") && !a.endsWith("agnhost")) : undefined;
    const unserved = (ports: ContainerSpec["ports"], why: string) => {
      for (const p of ports) notes.push({ container: c.name, message: `containerPort ${p.containerPort}/${p.protocol} is not served: ${why}` });
    };
    if (base === "agnhost" && sub === "netexec") {
      const http = intFlag(argv, "http-port");
      const udp = intFlag(argv, "udp-port");
      const httpPort = http.kind === "value" ? http.value : 8080;
      const udpPort = udp.kind === "value" ? udp.value : 8081;
      if (http.kind === "invalid" || !validPort(httpPort)) notes.push({ container: c.name, message: `netexec: invalid --http-port ${http.kind === "invalid" ? http.raw : httpPort}` });
      else apps.push({ kind: "netexecHttp", container: c.name, port: httpPort });
      if (udp.kind === "invalid" || (udpPort !== -1 && !validPort(udpPort))) notes.push({ container: c.name, message: `netexec: invalid --udp-port ${udp.kind === "invalid" ? udp.raw : udpPort}` });
      else if (udpPort !== -1) apps.push({ kind: "netexecUdp", container: c.name, port: udpPort });
      unserved(
        c.ports.filter((p) => !(p.protocol === "TCP" && p.containerPort === httpPort) && !(p.protocol === "UDP" && p.containerPort === udpPort)),
        `netexec listens on ${httpPort}/TCP${udpPort !== -1 ? ` and ${udpPort}/UDP` : ""}`,
      );
    } else if ((base === "agnhost" && sub === "serve-hostname") || base === "serve_hostname" || base === "serve-hostname") {
      const flag = intFlag(argv, "port");
      const port = flag.kind === "value" ? flag.value : 9376;
      if (!validPort(port)) notes.push({ container: c.name, message: `serve-hostname: invalid --port ${port}` });
      else apps.push({ kind: "hostnameHttp", container: c.name, port });
      unserved(c.ports.filter((p) => !(p.protocol === "TCP" && p.containerPort === port)), `serve-hostname listens on ${port}/TCP`);
    } else if (base === "agnhost" && sub === "pause") {
      unserved(c.ports, "agnhost pause serves nothing");
    } else if (base === "coredns") {
      apps.push({ kind: "dns", container: c.name, port: 53 });
      unserved(c.ports.filter((p) => p.containerPort !== 53), "coredns serves DNS on 53/UDP and 53/TCP (and health on 8080, ready on 8181)");
    } else if (base === "nginx" || base === "httpd") {
      apps.push({ kind: "web", container: c.name, port: 80, flavor: base });
      unserved(c.ports.filter((p) => !(p.protocol === "TCP" && p.containerPort === 80)), `${base} listens on 80/TCP only`);
    } else {
      for (const p of c.ports) {
        apps.push(p.protocol === "TCP" ? { kind: "netexecHttp", container: c.name, port: p.containerPort } : { kind: "udpEcho", container: c.name, port: p.containerPort });
      }
    }
  }
  return { apps, notes };
}

export interface Listening {
  port: number;
  protocol: "TCP" | "UDP";
  app: string;
  container: string;
}

export interface PodApps {
  stop(): void;
  listening: Listening[];
}

export function startPodApps(env: AppEnv, containers: readonly ContainerSpec[]): PodApps {
  const { apps, notes } = plan(containers);
  // Several containers write to one pod log here; name the container when it is ambiguous.
  const logFor = (container: string) => (containers.length > 1 ? (line: string) => env.log(`[${container}] ${line}`) : (line: string) => env.log(line));
  for (const note of notes) logFor(note.container)(note.message);
  const stops: Array<() => void> = [];
  const listening: Listening[] = [];
  for (const app of apps) {
    const log = logFor(app.container);
    const ok = startApp(env, app, log, stops);
    if (!ok) continue;
    const label = app.kind === "web" ? app.flavor : APP_LABEL[app.kind];
    const protocol = PROTOCOL_OF[app.kind];
    for (const p of protocol === "UDP+TCP" ? (["UDP", "TCP"] as const) : [protocol]) listening.push({ port: app.port, protocol: p, app: label, container: app.container });
  }
  let stopped = false;
  return {
    listening,
    stop: () => {
      if (stopped) return;
      stopped = true;
      for (const stop of stops) stop();
    },
  };
}

function startApp(env: AppEnv, app: PlannedApp, log: (line: string) => void, stops: Array<() => void>): boolean {
  switch (app.kind) {
    case "netexecHttp":
    case "web":
    case "hostnameHttp": {
      const served =
        app.kind === "netexecHttp"
          ? startNetexecHttp(env, app.port, log)
          : app.kind === "web"
            ? startWebServer(env, app.flavor, app.port, log)
            : startHostname(env, app.port, log);
      if (served.kind === "inUse") return false;
      stops.push(served.stop);
      return true;
    }
    case "netexecUdp":
      if (!startNetexecUdp(env, env.udp, app.port, log)) return false;
      stops.push(() => env.udp.unbindUdp(app.port));
      return true;
    case "dns": {
      if (!env.dns) {
        log("[ERROR] plugin/kubernetes: no cluster data on this node");
        return false;
      }
      const served = startDnsServer(env, env.dns, app.port, log);
      if (!served) return false;
      stops.push(served.stop);
      return true;
    }
    case "udpEcho": {
      const bound = env.udp.bindUdp(app.port, (payload, meta) => void env.udp.sendUdp(meta.src, meta.srcPort, meta.dstPort, payload));
      if (bound.kind === "inUse") {
        log(`udp echo: bind :${app.port}: address already in use`);
        return false;
      }
      log(`udp echo listening on :${app.port}`);
      stops.push(() => env.udp.unbindUdp(app.port));
      return true;
    }
  }
}

/** agnhost serve-hostname: every HTTP request gets the pod name. */
function startHostname(env: AppEnv, port: number, log: (line: string) => void) {
  const served = serveHttp(env.tcp, port, (req, res) => {
    req.resume();
    req.on("end", () => reply(res, 200, env.podName, { "Content-Type": "text/plain; charset=utf-8" }));
  }, env.schedule);
  log(`${goLogTime(env.now())} ${served.kind === "inUse" ? `listen tcp :${port}: bind: address already in use` : `Serving on port ${port}.`}`);
  return served;
}

// ---------------------------------------------------------------------------------------------
// Run-to-completion containers (Job pods, restartPolicy Never/OnFailure): the command is an
// emulated tool (curl, wget, nc, ping...) run once in the pod's netns, or one of a few shell
// builtins; its output is the pod's log and its exit code the container's.

/** Commands that need no tool: what `sh -c` and busybox give every container. */
export const COMPLETION_BUILTINS = ["echo", "true", "false", "sleep", "exit"] as const;

/** Images whose entrypoint is a tool, so `args` alone is its command line (curlimages/curl). */
const TOOL_ENTRYPOINTS: Readonly<Record<string, string>> = { curl: "curl", wget: "wget" };

export interface CompletionStep {
  container: string;
  argv: string[];
}

const SHELLS = new Set(["sh", "bash", "ash", "dash"]);

/**
 * Splits a simple shell command line into words: whitespace separates, '...' is literal, "..."
 * keeps spaces and honours \\ escapes, a backslash outside quotes escapes the next character.
 * Undefined for what a single simple command cannot be: an unterminated quote, or operators
 * (; | & < > ` $( and the like), which the emulation does not run.
 */
export function shellSplit(line: string): string[] | undefined {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return undefined;
      cur += line.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (ch === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === "\\" && j + 1 < line.length && '"\\$`'.includes(line[j + 1]!)) j++;
        else if (line[j] === "$" || line[j] === "`") return undefined;
        cur += line[j];
      }
      if (j >= line.length) return undefined;
      inWord = true;
      i = j;
    } else if (ch === "\\") {
      if (i + 1 < line.length) cur += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else if (";|&<>`$(){}".includes(ch)) {
      return undefined;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

function commandName(word: string): string {
  return word.slice(word.lastIndexOf("/") + 1);
}

/**
 * What a pod's containers run when the pod runs to completion: one step per container, each an
 * argv whose first word is a known tool (`tools`) or builtin. Undefined when the pod is not of
 * that kind: restartPolicy Always (the default), or any container that is not such a command
 * (a server, `sleep infinity` in a shell pipeline...): such pods keep running as before.
 */
export function completionPlan(containers: readonly ContainerSpec[], restartPolicy: string | undefined, tools: ReadonlySet<string>): CompletionStep[] | undefined {
  if (restartPolicy !== "Never" && restartPolicy !== "OnFailure") return undefined;
  if (containers.length === 0) return undefined;
  const steps: CompletionStep[] = [];
  for (const c of containers) {
    let argv = [...(c.command ?? []), ...(c.args ?? [])];
    if (!c.command?.length) {
      const entry = TOOL_ENTRYPOINTS[imageBasename(c.image)];
      if (!entry) return undefined;
      argv = [entry, ...argv];
    }
    if (argv.length >= 3 && SHELLS.has(commandName(argv[0]!)) && argv[1] === "-c") {
      const words = shellSplit(argv[2]!);
      if (!words || words.length === 0) return undefined;
      argv = words;
    }
    const name = commandName(argv[0] ?? "");
    if (!tools.has(name) && !(COMPLETION_BUILTINS as readonly string[]).includes(name)) return undefined;
    steps.push({ container: c.name, argv: [name, ...argv.slice(1)] });
  }
  return steps;
}
