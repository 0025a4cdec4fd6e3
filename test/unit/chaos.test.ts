/**
 * `kubewire chaos` without a cluster: the command line, the choice of process, and reading a
 * process's scheduler state from /proc (on this test's own PID and a stopped child).
 */
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { findProcess, parseChaosArgs, procState } from "../../cli/chaos.ts";

describe("kubewire chaos command line", () => {
  it("takes an action and a target, and a timeout", () => {
    expect(parseChaosArgs(["kill", "node-2"])).toEqual({ kind: "ok", verb: "kill", target: "node-2", timeoutMs: 60_000 });
    expect(parseChaosArgs(["restart", "--timeout", "5", "nats"])).toEqual({ kind: "ok", verb: "restart", target: "nats", timeoutMs: 5000 });
    expect(parseChaosArgs(["check"])).toEqual({ kind: "check", waitMs: 0, json: false });
    expect(parseChaosArgs(["check", "--wait", "30s", "-o", "json"])).toEqual({ kind: "check", waitMs: 30_000, json: true });
  });

  it("says what is wrong, as a value", () => {
    const message = (args: string[]) => {
      const r = parseChaosArgs(args);
      return r.kind === "invalid" ? r.message : "";
    };
    expect(message([])).toMatch(/kill, pause, resume, restart or check/);
    expect(message(["check", "--wait", "forever"])).toMatch(/--wait: want a duration/);
    expect(message(["check", "node-1"])).toBe('check: unexpected argument "node-1"');
    expect(message(["frob", "node-1"])).toBe('unknown action "frob" (kill, pause, resume, restart)');
    expect(message(["pause"])).toMatch(/name the process/);
    expect(message(["pause", "node-1", "node-2"])).toBe('unexpected argument "node-2"');
    expect(message(["pause", "node-1", "--force"])).toBe('unknown option "--force"');
    expect(message(["restart", "nats", "--timeout", "0"])).toMatch(/--timeout/);
  });

  it("finds the process by name, or names the ones there are", () => {
    const state = { processes: [{ name: "nats", pid: 1, logFile: "" }, { name: "node-1", pid: 2, logFile: "" }] };
    expect(findProcess(state, "node-1")).toEqual({ kind: "ok", process: state.processes[1] });
    expect(findProcess(state, "node-9")).toEqual({ kind: "invalid", message: 'no process "node-9" in this cluster; its processes: nats, node-1' });
  });
});

describe("procState", () => {
  it("reads R or S for a running process, T once it is stopped, undefined once it is gone", async () => {
    expect(["R", "S"]).toContain(procState(process.pid));
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    const exited = new Promise((r) => child.once("exit", r));
    try {
      child.kill("SIGSTOP");
      const deadline = Date.now() + 5000;
      while (procState(child.pid!) !== "T" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(procState(child.pid!)).toBe("T");
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
    expect(procState(child.pid!)).toBeUndefined();
    expect(procState(2 ** 22 + 1)).toBeUndefined();
  });
});
