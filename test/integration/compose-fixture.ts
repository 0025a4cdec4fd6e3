/**
 * What the tests that run the compose files for real (compose.test.ts, compose-nats-cluster.test.ts)
 * share: a command run with a bound, the Docker engine and compose command (or why there is
 * none), and free host ports to publish on.
 */
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { REPO_ROOT } from "../../cli/processes.ts";

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { timeoutMs: number; env?: Record<string, string> }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: REPO_ROOT, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr: err && code === 1 && !stderr ? String(err) : stderr });
    });
  });
}

/** An engine that answers (started here if need be) and a compose command, or why there is none. */
export async function dockerSetup(): Promise<{ kind: "ready"; compose: string[] } | { kind: "unavailable"; reason: string }> {
  const engine = await run("bash", ["deploy/docker-engine.sh"], { timeoutMs: 90_000 });
  if (engine.code !== 0) return { kind: "unavailable", reason: engine.stderr.trim() || `deploy/docker-engine.sh exited ${engine.code}` };
  // Compose v2 (the docker CLI plugin) where installed, else the standalone docker-compose 1.29.
  if ((await run("docker", ["compose", "version"], { timeoutMs: 30_000 })).code === 0) return { kind: "ready", compose: ["docker", "compose"] };
  if ((await run("docker-compose", ["version"], { timeoutMs: 30_000 })).code === 0) return { kind: "ready", compose: ["docker-compose"] };
  return { kind: "unavailable", reason: "a Docker engine runs but neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)" };
}

/** `count` consecutive ports free on 127.0.0.1 (TCP), for the NodePort range's host side. */
export async function freePortRange(count: number): Promise<number> {
  const bindable = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once("error", () => resolve(false));
      srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 9_000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await bindable(p);
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ports on 127.0.0.1`);
}
