/**
 * `conntrack -L` as conntrack-tools prints it: one line per entry (node-agent/conntrack.ts
 * formatEntry), and the count on stderr. Runs in the netns it is given (root on a node).
 */
import type { ExecResult } from "../../cluster/types.ts";
import { formatEntry, type Conntrack } from "../conntrack.ts";

export function formatConntrack(ct: Conntrack, now: number): ExecResult {
  const entries = ct.list();
  return {
    exitCode: 0,
    stdout: entries.map((e) => `${formatEntry(e, now)}\n`).join(""),
    stderr: `conntrack v1.4.7 (conntrack-tools): ${entries.length} flow entries have been shown.\n`,
  };
}

/** `conntrack -L` / `-C` / `-S`; other commands are refused with the real tool's exit code. */
export function conntrackTool(ct: Conntrack, now: number, argv: readonly string[]): ExecResult {
  const cmd = argv[0] ?? "-L";
  if (cmd === "-L" || cmd === "--dump") return formatConntrack(ct, now);
  if (cmd === "-C" || cmd === "--count") return { exitCode: 0, stdout: `${ct.size}\n`, stderr: "" };
  if (cmd === "-S" || cmd === "--stats") {
    const s = ct.stats;
    return { exitCode: 0, stdout: `cpu=0   \tfound=${s.found} invalid=${s.invalid} insert=${s.insert} insert_failed=${s.insertFailed} drop=${s.insertFailed} early_drop=${s.earlyDrop} error=0 search_restart=0\n`, stderr: "" };
  }
  return { exitCode: 2, stdout: "", stderr: `conntrack v1.4.7 (conntrack-tools): unknown command ${cmd}; kubewire emulates -L, -C and -S\n` };
}
