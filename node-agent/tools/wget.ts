/**
 * busybox wget (the one in busybox/alpine images): `wget -qO- URL`, `-O -`, `-T SECONDS`, `-q`.
 * Request as busybox 1.36 sends it (GET, Host, User-Agent: Wget, Connection: close); messages
 * as busybox prints them. Every failure exits 1: busybox dies through bb_perror_msg_and_die,
 * it has no per-cause codes (GNU wget's 4 "network failure" is a different program).
 * Bounded by -T (default 180 s in busybox) and by TOOL_CAP_MS overall.
 */
import type { ExecResult } from "../../cluster/types.ts";
import { formatIpv4 } from "../../overlay/wire/common.ts";
import type { ToolContext } from "./common.ts";
import { HttpConnection, TOOL_CAP_MS, header, parseHttpUrl, readResponse, resolveHost } from "./curl.ts";
import { FsError, resolvePath } from "./fs.ts";

const BUSYBOX_TIMEOUT_MS = 180_000;

export async function wget(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  let quiet = false;
  let output: string | undefined;
  let timeoutMs = BUSYBOX_TIMEOUT_MS;
  const urls: string[] = [];
  const usage = (message: string): ExecResult => ({ exitCode: 1, stdout: "", stderr: `wget: ${message}\n` });
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith("--")) {
      if (arg === "--quiet") quiet = true;
      else if (arg.startsWith("--output-document=")) output = arg.slice(18);
      else if (arg.startsWith("--timeout=")) timeoutMs = Number(arg.slice(10)) * 1000;
      else return usage(`unrecognized option '${arg}'`);
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      urls.push(arg);
      continue;
    }
    // getopt: -qO- is -q then -O with "-".
    for (let j = 1; j < arg.length; j++) {
      const c = arg[j]!;
      if (c === "q") quiet = true;
      else if (c === "O" || c === "T") {
        const value = j + 1 < arg.length ? arg.slice(j + 1) : argv[++i];
        if (value === undefined) return usage(`option requires an argument -- '${c}'`);
        if (c === "O") output = value;
        else timeoutMs = Number(value) * 1000;
        j = arg.length;
      } else return usage(`invalid option -- '${c}'`);
    }
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) return usage("invalid number");
  if (urls.length === 0) return { exitCode: 1, stdout: "", stderr: "BusyBox v1.36.1 (2023-05-18 22:34:17 UTC) multi-call binary.\n\nUsage: wget [-cqS] [-O FILE] [-T SEC] URL...\n" };
  // Without -O, busybox saves to the URL's last path segment (index.html for a directory).
  const fileFor = (target: string) => output ?? (target.split("?")[0]!.split("/").at(-1) || "index.html");
  if (output !== "-" && !ctx.fs) return usage(`can't open '${output ?? "index.html"}': Read-only file system (this pod has no emulated filesystem: use -O-)`);

  const { clock } = ctx;
  const stdout: string[] = [];
  const stderr: string[] = [];
  const started = clock.now();
  const result = (code: number): ExecResult => ({ exitCode: code, stdout: stdout.join(""), stderr: stderr.join("") });
  for (const urlText of urls) {
    const url = parseHttpUrl(urlText);
    if (url.kind === "unsupported") {
      stderr.push(`wget: not an http or ftp url: ${urlText}\n`);
      return result(1);
    }
    if (url.kind === "malformed") {
      stderr.push(`wget: bad address '${urlText}'\n`);
      return result(1);
    }
    const { host, port, target, hostHeader } = url.url;
    const budget = Math.min(timeoutMs === 0 ? TOOL_CAP_MS : timeoutMs, started + TOOL_CAP_MS - clock.now());
    const ip = await resolveHost(ctx, host, budget);
    if (ip === undefined) {
      stderr.push(`wget: bad address '${host}'\n`);
      return result(1);
    }
    if (!quiet) stderr.push(`Connecting to ${hostHeader} (${formatIpv4(ip)}:${port})\n`);
    const connected = await ctx.tcp.connect(ip, port, { timeoutMs: budget });
    if (connected.kind !== "connected") {
      const why = connected.kind === "refused" ? "Connection refused" : connected.kind === "timeout" ? "Connection timed out" : "No route to host";
      stderr.push(`wget: can't connect to remote host (${formatIpv4(ip)}): ${why}\n`);
      return result(1);
    }
    const conn = new HttpConnection(connected.socket, 0, clock);
    const request = `GET ${target} HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: Wget\r\nConnection: close\r\n\r\n`;
    // busybox -T is an idle timeout per read; one deadline for the transfer is close enough here.
    const deadline = clock.sleep(Math.max(0, budget)).then(() => "timeout" as const);
    await connected.socket.write(Buffer.from(request, "latin1"));
    const outcome = await readResponse(conn, "GET", deadline);
    connected.socket.abort();
    switch (outcome.kind) {
      case "timeout":
        stderr.push("wget: download timed out\n");
        return result(1);
      case "empty":
      case "weird":
        stderr.push("wget: error getting response\n");
        return result(1);
      case "reset":
        stderr.push("wget: error getting response: Connection reset by peer\n");
        return result(1);
      case "partial":
        stderr.push("wget: short read\n");
        return result(1);
      case "ok":
        break;
    }
    const { head, body } = outcome;
    if (head.status >= 300 && head.status < 400 && header(head, "location")) {
      stderr.push(`wget: redirects are not emulated (Location: ${header(head, "location")})\n`);
      return result(1);
    }
    if (head.status !== 200 && head.status !== 204 && head.status !== 206) {
      stderr.push(`wget: server returned error: ${head.lines[0]}\n`);
      return result(1);
    }
    if (output !== "-") {
      const file = fileFor(target);
      try {
        ctx.fs!.write(resolvePath(file), body);
      } catch (err) {
        if (!(err instanceof FsError)) throw err;
        stderr.push(`wget: can't open '${file}': ${err.message}\n`);
        return result(1);
      }
      if (!quiet) {
        stderr.push(`saving to '${file}'\n`);
        stderr.push(`${file.padEnd(20).slice(0, 20)} 100% |********************************| ${String(body.length).padStart(5)}  0:00:00 ETA\n`);
        stderr.push(`'${file}' saved\n`);
      }
      continue;
    }
    if (!quiet) stderr.push("writing to stdout\n");
    stdout.push(Buffer.from(body).toString("utf8"));
    if (!quiet) {
      stderr.push(`-                    100% |********************************| ${String(body.length).padStart(5)}  0:00:00 ETA\n`);
      stderr.push("written to stdout\n");
    }
  }
  return result(0);
}
