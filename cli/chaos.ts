/**
 * `kubewire chaos kill|pause|resume|restart TARGET`: process faults on a cluster's own processes
 * (a node-agent by node name, `nats`, `control-plane`), what `docker kill`, `docker pause`,
 * `docker unpause` and `docker restart` do to a container:
 * - kill: SIGKILL, as `kill -9` (a node crash: no goodbye, its lease just stops being renewed);
 *   the process stays down until `restart`.
 * - pause: SIGSTOP, a hung process (a node that holds its NATS connection but answers nothing);
 *   resume: SIGCONT.
 * - restart: SIGTERM (after a SIGCONT, so a paused process can handle it), SIGKILL after a grace,
 *   then the process started again exactly as `kubewire up` started it (the LaunchSpec kept in
 *   the state file: same name, host address, NATS port and data dir, environment), detached, and
 *   waited for: a node until it answers on its NATS subject, NATS until it listens, the control
 *   plane until the API answers. The state file is updated with the new PID, so `kubewire down`
 *   (and a foreground `kubewire up`'s Ctrl-C) stops the new process.
 *
 * The parsing and the choice of process are pure (unit tested); signals and processes are at the
 * edge, in `chaos`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { NatsConnection } from "nats";
import { KubeClient, paths } from "../cluster/kube-client.ts";
import { connectNats, request } from "../cluster/rpc.ts";
import { parseDuration } from "../cluster/syntax.ts";
import { Subjects, type NodeConvergence } from "../cluster/types.ts";
import { addressViolations, convergenceViolations, expectedConvergence, type AddressCounts, type ClusterObjects, type Violation } from "./invariants.ts";
import { isAlive, relaunch, stopPid } from "./processes.ts";
import { containerFor, docker, isComposeServiceTarget, projectContainers, type ComposeContainer } from "./compose.ts";
import { cliNatsAuth, readState, writeState, type ClusterProcess, type ClusterState } from "./state.ts";

export const CHAOS_VERBS = ["kill", "pause", "resume", "restart"] as const;
export type ChaosVerb = (typeof CHAOS_VERBS)[number];

export const CHAOS_USAGE = `usage: kubewire chaos kill|pause|resume|restart TARGET [--timeout SECONDS]
       kubewire chaos check [--wait DURATION] [-o json]
       kubewire chaos run SCENARIO.yaml [-o json]

  TARGET is a node (node-2), nats or control-plane: a process of the cluster \`kubewire up\` started.
  kill      SIGKILL (kill -9): the process is gone until restart
  pause     SIGSTOP: the process hangs, holding its connections; resume: SIGCONT
  restart   stop (SIGTERM, then SIGKILL), start again as \`kubewire up\` did, and wait until it
            serves again (a node answers, NATS listens, the API answers), --timeout s at most (60)
  check     the invariants every fault must leave intact: no pod IP, pod CIDR, ClusterIP or
            NodePort held twice; every node converged (routes to exactly the other nodes' pod
            CIDRs, networks for exactly its live pods, kube-proxy rules equal to what the API's
            Services and EndpointSlices make, exactly the API's policies); exit 1 on a violation.
            --wait: keep checking until all hold, that long at most, and say how long it took
  run       a scenario file: faults at their times during a \`kubewire load\`, then the invariants
            (and no write the API acknowledged during the run lost), recovery time per step`;

export type ChaosCommand =
  | { readonly kind: "ok"; readonly verb: ChaosVerb; readonly target: string; readonly timeoutMs: number }
  | { readonly kind: "check"; readonly waitMs: number; readonly json: boolean }
  | { readonly kind: "invalid"; readonly message: string };

export function parseChaosArgs(args: readonly string[]): ChaosCommand {
  if (args[0] === "check") {
    let waitMs = 0;
    let json = false;
    for (let i = 1; i < args.length; i++) {
      const a = args[i]!;
      if (a === "--wait") {
        const ms = parseDuration(args[++i] ?? "");
        if (ms === undefined || ms > 600_000) return { kind: "invalid", message: `--wait: want a duration up to 10m like 30s, got "${args[i] ?? ""}"` };
        waitMs = ms;
      } else if (a === "-o" || a === "--output") {
        if (args[++i] !== "json") return { kind: "invalid", message: `--output: only json is supported, got "${args[i] ?? ""}"` };
        json = true;
      } else return { kind: "invalid", message: `check: unexpected argument "${a}"` };
    }
    return { kind: "check", waitMs, json };
  }
  const rest = [...args];
  let timeoutMs = 60_000;
  const t = rest.indexOf("--timeout");
  if (t >= 0) {
    const v = Number(rest[t + 1]);
    if (!(v > 0 && v <= 600)) return { kind: "invalid", message: `--timeout: want seconds in (0, 600], got "${rest[t + 1] ?? ""}"` };
    timeoutMs = v * 1000;
    rest.splice(t, 2);
  }
  const unknown = rest.find((a) => a.startsWith("-"));
  if (unknown !== undefined) return { kind: "invalid", message: `unknown option "${unknown}"` };
  const [verb, target, extra] = rest;
  if (verb === undefined) return { kind: "invalid", message: "say what to do: kill, pause, resume, restart or check" };
  if (!(CHAOS_VERBS as readonly string[]).includes(verb)) return { kind: "invalid", message: `unknown action "${verb}" (kill, pause, resume, restart)` };
  if (target === undefined) return { kind: "invalid", message: `${verb}: name the process: a node (node-1), nats or control-plane` };
  if (extra !== undefined) return { kind: "invalid", message: `unexpected argument "${extra}"` };
  return { kind: "ok", verb: verb as ChaosVerb, target, timeoutMs };
}

/** The process `target` names in the state file, or why none does (naming the ones there are). */
export function findProcess(state: Pick<ClusterState, "processes">, target: string): { kind: "ok"; process: ClusterProcess } | { kind: "invalid"; message: string } {
  const p = state.processes.find((q) => q.name === target);
  if (p) return { kind: "ok", process: p };
  return { kind: "invalid", message: `no process "${target}" in this cluster; its processes: ${state.processes.map((q) => q.name).join(", ")}` };
}

/** The scheduler state of a PID from /proc (R, S, D, T stopped, Z...), undefined when gone. */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) S ...": comm may hold spaces and parentheses, so read after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) || undefined;
  } catch {
    return undefined;
  }
}

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ok()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ChaosIo {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
}

/** Runs `kubewire chaos ARGS` on the cluster of `dir`; the exit code (2: usage, 1: failed). */
export async function chaos(args: string[], dir: string, io: ChaosIo): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    io.stdout(CHAOS_USAGE);
    return 0;
  }
  const cmd = parseChaosArgs(args);
  if (cmd.kind === "invalid") {
    io.stderr(`error: chaos: ${cmd.message}\n${CHAOS_USAGE}`);
    return 2;
  }
  const state = readState(dir);
  if (!state) {
    io.stderr(`error: no cluster running (no ${join(dir, "cluster.json")}); start one with: kubewire up --nodes 3`);
    return 1;
  }
  if (cmd.kind === "check") return check(state, cmd.waitMs, cmd.json, io);
  if (!state.compose) {
    const found = findProcess(state, cmd.target);
    if (found.kind === "invalid") {
      io.stderr(`error: chaos ${cmd.verb}: ${found.message}`);
      return 2;
    }
  }
  const r = await act(state, cmd.target, cmd.verb, cmd.timeoutMs);
  if (r.ok) io.stdout(r.message);
  else io.stderr(`error: ${r.message}`);
  return r.ok ? 0 : 1;
}

/** The outcome of one process action: what happened, in one line. */
export interface ActionResult {
  readonly ok: boolean;
  readonly message: string;
}

/**
 * kill, pause, resume or restart `target` (`kubewire chaos VERB`, and `chaos run`'s steps): a
 * process `kubewire up` started, or the container of a compose project (`kubewire attach`).
 */
export async function act(state: ClusterState, target: string, verb: ChaosVerb, timeoutMs: number): Promise<ActionResult> {
  if (state.compose) {
    let containers: ComposeContainer[];
    try {
      containers = await projectContainers(state.compose);
    } catch (err) {
      return { ok: false, message: `chaos ${verb} ${target}: ${(err as Error).message}` };
    }
    const found = containerFor(containers, target);
    if (found.kind === "invalid") return { ok: false, message: `chaos ${verb}: ${found.message}` };
    return containerAction(state, target, found.container, verb, timeoutMs);
  }
  const found = findProcess(state, target);
  if (found.kind === "invalid") return { ok: false, message: `chaos ${verb}: ${found.message}` };
  return processAction(state, found.process, verb, timeoutMs);
}

/** The docker command of each action, as a compose user would type it. */
const DOCKER_VERB: Record<ChaosVerb, string[]> = { kill: ["kill"], pause: ["pause"], resume: ["unpause"], restart: ["restart", "--time", "5"] };

async function containerAction(state: ClusterState, target: string, c: ComposeContainer, verb: ChaosVerb, timeoutMs: number): Promise<ActionResult> {
  const id = c.id.slice(0, 12);
  if (verb !== "restart" && c.state !== (verb === "resume" ? "paused" : "running")) {
    return { ok: false, message: `${target} (container ${id}) is ${c.state}${c.state === "exited" ? `; start it with: kubewire chaos restart ${target}` : ""}` };
  }
  const started = Date.now();
  const r = await docker([...DOCKER_VERB[verb], c.id], timeoutMs);
  if (r.code !== 0) return { ok: false, message: `docker ${DOCKER_VERB[verb][0]} ${id}: ${r.stderr.trim()}` };
  if (verb === "restart") {
    try {
      await waitServing(state, isComposeServiceTarget(c.service) ? c.service : target, timeoutMs);
    } catch (err) {
      return { ok: false, message: `chaos restart ${target}: ${(err as Error).message}` };
    }
    return { ok: true, message: `restarted ${target} (docker restart ${id}), serving again after ${Date.now() - started} ms` };
  }
  return { ok: true, message: `${verb === "kill" ? "killed" : verb === "pause" ? "paused" : "resumed"} ${target} (docker ${DOCKER_VERB[verb][0]} ${id})` };
}

/** kill, pause, resume or restart one process `kubewire up` started. */
export async function processAction(state: ClusterState, proc: ClusterProcess, verb: ChaosVerb, timeoutMs: number): Promise<ActionResult> {
  const alive = isAlive(proc.pid) && procState(proc.pid) !== "Z";
  const bad = (message: string): ActionResult => ({ ok: false, message });
  try {
    switch (verb) {
      case "kill":
        if (!alive) return bad(`${proc.name} is not running (pid ${proc.pid}); start it with: kubewire chaos restart ${proc.name}`);
        process.kill(proc.pid, "SIGKILL");
        await waitFor(`${proc.name} (pid ${proc.pid}) to die`, () => !isAlive(proc.pid) || procState(proc.pid) === "Z", timeoutMs);
        return { ok: true, message: `killed ${proc.name} (pid ${proc.pid}, SIGKILL)` };
      case "pause":
        if (!alive) return bad(`${proc.name} is not running (pid ${proc.pid})`);
        process.kill(proc.pid, "SIGSTOP");
        await waitFor(`${proc.name} (pid ${proc.pid}) to stop`, () => procState(proc.pid) === "T", timeoutMs);
        return { ok: true, message: `paused ${proc.name} (pid ${proc.pid}, SIGSTOP); resume with: kubewire chaos resume ${proc.name}` };
      case "resume":
        if (!alive) return bad(`${proc.name} is not running (pid ${proc.pid})`);
        process.kill(proc.pid, "SIGCONT");
        await waitFor(`${proc.name} (pid ${proc.pid}) to run`, () => procState(proc.pid) !== "T", timeoutMs);
        return { ok: true, message: `resumed ${proc.name} (pid ${proc.pid}, SIGCONT)` };
      case "restart":
        return await restart(state, proc, alive, timeoutMs);
    }
  } catch (err) {
    return bad(`chaos ${verb} ${proc.name}: ${(err as Error).message}`);
  }
}

/**
 * Waits until `target` serves again: a node answers on its NATS subject, NATS takes a client,
 * the control plane's API answers. `check` throws when it is known never to come (it exited).
 */
async function waitServing(state: ClusterState, target: string, timeoutMs: number, check: () => void = () => {}): Promise<void> {
  if (target === "nats" || /^nats-\d+$/.test(target)) {
    // One server of a NATS cluster: that server itself must take a client, not any of them.
    const launch = state.processes.find((p) => p.name === target)?.launch;
    const port = launch?.role === "nats" ? launch.port : undefined;
    const url = target !== "nats" && port !== undefined ? `${state.natsUrl.split("://")[0]}://127.0.0.1:${port}` : state.natsUrl;
    await waitFor(`${target} to take a client`, async () => {
      check();
      return connectNats(url, "kubewire-cli", cliNatsAuth(state)).then(
        (nc) => nc.close().then(() => true),
        () => false,
      );
    }, timeoutMs);
  } else if (target === "control-plane") {
    const kube = new KubeClient(state.apiUrl, state.token, state.ca);
    await waitFor("the API to answer", async () => {
      check();
      return kube.list(paths.nodes()).then(
        () => true,
        () => false,
      );
    }, timeoutMs);
  } else {
    const nc = await connectNats(state.natsUrl, "kubewire-cli", cliNatsAuth(state));
    try {
      await waitFor(`${target} to answer`, async () => {
        check();
        return request(nc, Subjects.node(target, "status"), {}, 1000).then(
          () => true,
          () => false,
        );
      }, timeoutMs);
    } finally {
      await nc.close();
    }
  }
}

async function restart(state: ClusterState, proc: ClusterProcess, alive: boolean, timeoutMs: number): Promise<ActionResult> {
  if (!proc.launch) return { ok: false, message: `${proc.name} was started by an older kubewire that did not record how; restart the cluster (kubewire down; kubewire up)` };
  const started = Date.now();
  if (alive) {
    // A stopped process cannot handle SIGTERM: let it run first, as docker restart does.
    process.kill(proc.pid, "SIGCONT");
    await stopPid(proc.pid);
  }
  const next = await relaunch(proc.name, proc.launch, join(state.stateDir, "logs"));
  // Re-read: another command may have changed other entries meanwhile.
  const now = readState(state.stateDir) ?? state;
  writeState({ ...now, processes: now.processes.map((p) => (p.name === proc.name ? { ...p, pid: next.pid, logFile: next.logFile } : p)) });
  await waitServing(state, proc.launch.role === "control-plane" ? "control-plane" : proc.name, timeoutMs, () => {
    if (!isAlive(next.pid)) throw new Error(`exited during start-up; see ${next.logFile}`);
  });
  return { ok: true, message: `restarted ${proc.name}: pid ${alive ? proc.pid : "(not running)"} -> ${next.pid}, serving again after ${Date.now() - started} ms` };
}

/** The API's objects the invariants read, and every node's account of what it installed. */
export async function clusterCheck(kube: KubeClient, nc: NatsConnection): Promise<{ violations: Violation[]; counts: AddressCounts; nodes: string[] }> {
  const [nodes, pods, services, endpointSlices, networkPolicies, clusterNetworkPolicies] = await Promise.all([
    kube.list(paths.nodes()),
    kube.list(paths.pods()),
    kube.list("/api/v1/services"),
    kube.list("/apis/discovery.k8s.io/v1/endpointslices"),
    kube.list("/apis/networking.k8s.io/v1/networkpolicies"),
    kube.list("/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies"),
  ]);
  const objects: ClusterObjects = { nodes, pods, services, endpointSlices, networkPolicies, clusterNetworkPolicies };
  const addresses = addressViolations(objects);
  const names = nodes.map((n) => n.metadata.name ?? "").filter((n) => n !== "").sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const answers = await Promise.all(
    names.map((n) =>
      request<NodeConvergence>(nc, Subjects.node(n, "converged"), {}, 5000).then(
        (c) => ({ c, why: undefined }),
        (err: unknown) => ({ c: undefined, why: (err as Error)?.message ?? String(err) }),
      ),
    ),
  );
  const violations = [...addresses.violations, ...names.flatMap((n, i) => convergenceViolations(n, expectedConvergence(n, objects), answers[i]!.c, answers[i]!.why))];
  return { violations, counts: addresses.counts, nodes: names };
}

async function check(state: ClusterState, waitMs: number, json: boolean, io: ChaosIo): Promise<number> {
  const kube = new KubeClient(state.apiUrl, state.token, state.ca);
  const nc = await connectNats(state.natsUrl, "kubewire-cli", cliNatsAuth(state));
  const started = Date.now();
  try {
    for (;;) {
      let r: Awaited<ReturnType<typeof clusterCheck>>;
      try {
        r = await clusterCheck(kube, nc);
      } catch (err) {
        // The API failing over with its store (a NATS server killed) is "not yet" while we wait.
        if (Date.now() - started >= waitMs) throw err;
        await new Promise((res) => setTimeout(res, 250));
        continue;
      }
      const tookMs = Date.now() - started;
      if (r.violations.length === 0 || tookMs >= waitMs) {
        if (json) io.stdout(JSON.stringify({ holds: r.violations.length === 0, checkedForMs: tookMs, nodes: r.nodes, counts: r.counts, violations: r.violations }, null, 2));
        else {
          const c = r.counts;
          io.stdout(`addresses: ${c.podIps} pod IPs, ${c.podCidrs} pod CIDRs, ${c.clusterIps} ClusterIPs, ${c.nodePorts} NodePorts`);
          for (const v of r.violations) io.stdout(`VIOLATED ${v.invariant}: ${v.message}`);
          io.stdout(r.violations.length === 0 ? `all invariants hold on ${r.nodes.length} node(s)${waitMs > 0 ? ` (after ${tookMs} ms)` : ""}` : `${r.violations.length} violation(s)${waitMs > 0 ? ` after ${tookMs} ms of checking` : ""}`);
        }
        return r.violations.length === 0 ? 0 : 1;
      }
      await new Promise((res) => setTimeout(res, 250));
    }
  } finally {
    await nc.close();
  }
}
