/**
 * Coreutils over the pod's in-memory filesystem (fs.ts): `dd`, `sha256sum`, `cat`, `ls`, `rm`,
 * enough to make a file, checksum it, fetch it with curl and checksum it again. Messages and
 * output formats are GNU coreutils' (dd's summary, sha256sum's "<hex>  <path>", ls -l's
 * columns); the container's working directory is "/" and files are owned by root.
 */
import { createHash, randomFillSync } from "node:crypto";
import type { ExecResult } from "../../cluster/types.ts";
import { UsageError, type ToolContext } from "./common.ts";
import { FsError, resolvePath, type FsStat, type PodFs } from "./fs.ts";

type Result = ExecResult;

const done = (exitCode: number, stdout: string[], stderr: string[]): Result => ({
  exitCode,
  stdout: stdout.join(""),
  stderr: stderr.join(""),
});

function withFs(tool: string, ctx: ToolContext): PodFs | Result {
  return ctx.fs ?? { exitCode: 1, stdout: "", stderr: `${tool}: this pod has no emulated filesystem\n` };
}

/** The strerror text of a failed file operation; anything else is a bug and is rethrown. */
function why(err: unknown): string {
  if (err instanceof FsError) return err.message;
  throw err;
}

// ------------------------------------------------------------------ dd

/** GNU dd's BLOCKS/BYTES suffixes: c w b kB K KiB MB M MiB GB G GiB (and lowercase k). */
export function parseDdSize(raw: string): number | undefined {
  const m = /^(\d+)(c|w|b|kB|KB|K|k|KiB|MB|M|MiB|GB|G|GiB)?$/.exec(raw);
  if (!m) return undefined;
  const mult: Record<string, number> = {
    c: 1, w: 2, b: 512,
    kB: 1e3, KB: 1e3, K: 1024, k: 1024, KiB: 1024,
    MB: 1e6, M: 1024 ** 2, MiB: 1024 ** 2,
    GB: 1e9, G: 1024 ** 3, GiB: 1024 ** 3,
  };
  const n = Number(m[1]) * (m[2] ? mult[m[2]]! : 1);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** gnulib human_readable with autoscale, round-to-nearest, a space and a "B" suffix: "67 MB", "1.0 MiB". */
export function humanSize(bytes: number, base: 1000 | 1024): string {
  const prefixes = base === 1000 ? ["k", "M", "G", "T", "P", "E"] : ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
  if (bytes < base) return `${Math.round(bytes)} B`;
  let v = bytes;
  let i = -1;
  for (;;) {
    v /= base;
    i++;
    const shown = v < 10 ? Math.round(v * 10) / 10 : Math.round(v);
    if (shown < base || i === prefixes.length - 1) return `${shown < 10 ? shown.toFixed(1) : String(shown)} ${prefixes[i]}B`;
  }
}

/** printf("%g"): 6 significant digits, trailing zeros dropped, exponent below 1e-4. */
export function formatG(x: number): string {
  if (x === 0) return "0";
  const exp = Math.floor(Math.log10(Math.abs(x)));
  if (exp < -4 || exp >= 6) {
    const [mant, e] = x.toExponential(5).split("e");
    const n = Number(e);
    return `${mant!.replace(/\.?0+$/, "")}e${n < 0 ? "-" : "+"}${String(Math.abs(n)).padStart(2, "0")}`;
  }
  const s = x.toPrecision(6);
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

/** The three lines GNU dd prints on stderr when it finishes. */
export function ddSummary(fullIn: number, partialIn: number, fullOut: number, partialOut: number, bytes: number, seconds: number): string {
  const si = humanSize(bytes, 1000);
  const iec = humanSize(bytes, 1024);
  const copied = !/ [kMGTPE]/.test(si)
    ? `${bytes} byte${bytes === 1 ? "" : "s"} copied`
    : iec.endsWith(" B")
      ? `${bytes} bytes (${si}) copied`
      : `${bytes} bytes (${si}, ${iec}) copied`;
  const rate = seconds > 0 ? `${humanSize(bytes / seconds, 1000)}/s` : "Infinity B/s";
  return `${fullIn}+${partialIn} records in\n${fullOut}+${partialOut} records out\n${copied}, ${formatG(seconds)} s, ${rate}\n`;
}

export async function dd(ctx: ToolContext, argv: readonly string[]): Promise<Result> {
  let input: string | undefined;
  let output: string | undefined;
  let bs = 512;
  let count: number | undefined;
  let quiet = false;
  for (const arg of argv) {
    const eq = arg.indexOf("=");
    if (eq <= 0) throw new UsageError(`unrecognized operand '${arg}'`);
    const key = arg.slice(0, eq);
    const value = arg.slice(eq + 1);
    if (key === "if") input = value;
    else if (key === "of") output = value;
    else if (key === "bs") {
      const n = parseDdSize(value);
      if (n === undefined || n === 0) throw new UsageError(`invalid number: '${value}'`);
      bs = n;
    } else if (key === "count") {
      const n = parseDdSize(value);
      if (n === undefined) throw new UsageError(`invalid number: '${value}'`);
      count = n;
    } else if (key === "status") {
      if (value === "none") quiet = true;
      else if (value !== "noxfer" && value !== "progress") throw new UsageError(`invalid status level: '${value}'`);
    } else throw new UsageError(`unrecognized operand '${arg}'`);
  }
  const fs = withFs("dd", ctx);
  if (!("read" in fs)) return fs;
  const started = ctx.clock.now();
  const stderr: string[] = [];
  const stdout: string[] = [];

  // Input: a device makes as many bytes as asked; a file has what it has.
  let source: Uint8Array | "zero" | "urandom";
  if (input === undefined) return { exitCode: 1, stdout: "", stderr: "dd: reading standard input is not emulated (exec has no stdin here): use if=\n" };
  if (input === "/dev/zero") source = "zero";
  else if (input === "/dev/urandom" || input === "/dev/random") source = "urandom";
  else {
    try {
      source = fs.read(resolvePath(input));
    } catch (err) {
      return { exitCode: 1, stdout: "", stderr: `dd: failed to open '${input}': ${why(err)}\n` };
    }
  }
  const toNull = output === "/dev/null";
  const toStdout = output === undefined;
  const outPath = toNull || toStdout ? undefined : resolvePath(output!);
  if (outPath !== undefined) {
    const st = fs.stat(outPath);
    if (st?.kind === "dir") return { exitCode: 1, stdout: "", stderr: `dd: failed to open '${output}': Is a directory\n` };
  }

  // How much is read: count blocks, or until the input ends (a device never does: the disk fills).
  const available = typeof source === "object" ? source.length : Infinity;
  const wanted = Math.min(count === undefined ? Infinity : count * bs, available);
  // Writing to a file stops at ENOSPC; the file being replaced frees its own bytes.
  let room = Infinity;
  if (outPath !== undefined) {
    const old = fs.stat(outPath);
    room = fs.free + (old?.kind === "file" ? old.size : 0);
  }
  if (wanted === Infinity && room === Infinity) return { exitCode: 1, stdout: "", stderr: "dd: an endless copy to /dev/null or stdout is not emulated: give count=\n" };
  const written = Math.min(wanted, room);
  // Never materialise more than will be written (or a sane amount for /dev/null).
  let data: Uint8Array;
  if (typeof source === "object") data = source.subarray(0, written);
  else {
    data = new Uint8Array(written);
    if (source === "urandom") {
      // randomFillSync fills at most 2^31-1 bytes per call.
      for (let off = 0; off < written; off += 1 << 30) randomFillSync(data, off, Math.min(1 << 30, written - off));
    }
  }
  const full = Math.floor(written / bs);
  const partial = written % bs > 0 ? 1 : 0;
  const noSpace = written < wanted;
  if (outPath !== undefined) {
    try {
      fs.write(outPath, typeof source === "object" ? data.slice() : data);
    } catch (err) {
      return { exitCode: 1, stdout: "", stderr: `dd: failed to open '${output}': ${why(err)}\n` };
    }
  } else if (toStdout) stdout.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
  if (noSpace) stderr.push(`dd: error writing '${output}': No space left on device\n`);
  const seconds = (ctx.clock.now() - started) / 1000;
  // On ENOSPC the block that failed was read in full but only partly written.
  const fullIn = noSpace ? full + 1 : full;
  const partialIn = noSpace ? 0 : partial;
  if (!quiet || noSpace) stderr.push(ddSummary(fullIn, partialIn, full, partial, written, seconds));
  return done(noSpace ? 1 : 0, stdout, stderr);
}

// ------------------------------------------------------------------ sha256sum, cat

export async function sha256sum(ctx: ToolContext, argv: readonly string[]): Promise<Result> {
  const fs = withFs("sha256sum", ctx);
  if (!("read" in fs)) return fs;
  const files = argv.filter((a) => a === "-" || !a.startsWith("-"));
  const flag = argv.find((a) => a !== "-" && a.startsWith("-"));
  if (flag !== undefined && flag !== "-b" && flag !== "-t" && flag !== "--") throw new UsageError(`invalid option -- '${flag.replace(/^-+/, "")}'`);
  const stdout: string[] = [];
  const stderr: string[] = [];
  let exit = 0;
  for (const name of files.length > 0 ? files : ["-"]) {
    let data: Uint8Array;
    if (name === "-") data = new Uint8Array(0); // exec gives no stdin here: it is empty
    else {
      try {
        data = fs.read(resolvePath(name));
      } catch (err) {
        stderr.push(`sha256sum: ${name}: ${why(err)}\n`);
        exit = 1;
        continue;
      }
    }
    stdout.push(`${createHash("sha256").update(data).digest("hex")}  ${name}\n`);
  }
  return done(exit, stdout, stderr);
}

export async function cat(ctx: ToolContext, argv: readonly string[]): Promise<Result> {
  const fs = withFs("cat", ctx);
  if (!("read" in fs)) return fs;
  const stdout: string[] = [];
  const stderr: string[] = [];
  let exit = 0;
  for (const name of argv) {
    if (name.startsWith("-") && name !== "-") throw new UsageError(`invalid option -- '${name.replace(/^-+/, "")}'`);
    if (name === "-") continue;
    try {
      const data = fs.read(resolvePath(name));
      stdout.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
    } catch (err) {
      stderr.push(`cat: ${name}: ${why(err)}\n`);
      exit = 1;
    }
  }
  return done(exit, stdout, stderr);
}

// ------------------------------------------------------------------ ls, rm

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function longLine(name: string, st: FsStat, sizeWidth: number): string {
  const d = st.mtime;
  const date = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`;
  const mode = st.kind === "dir" ? "drwxr-xr-x" : "-rw-r--r--";
  return `${mode} ${st.kind === "dir" ? 2 : 1} root root ${String(sizeOf(st)).padStart(sizeWidth)} ${date} ${name}\n`;
}

const sizeOf = (st: FsStat) => (st.kind === "dir" ? 4096 : st.size);

export async function ls(ctx: ToolContext, argv: readonly string[]): Promise<Result> {
  const fs = withFs("ls", ctx);
  if (!("read" in fs)) return fs;
  let long = false;
  let all = false;
  const operands: string[] = [];
  for (const arg of argv) {
    if (arg.startsWith("-") && arg.length > 1) {
      for (const c of arg.slice(1)) {
        if (c === "l") long = true;
        else if (c === "a" || c === "A") all = true;
        else if (c !== "h" && c !== "1") throw new UsageError(`invalid option -- '${c}'`);
      }
    } else operands.push(arg);
  }
  void all; // no dotfiles are special here
  const stdout: string[] = [];
  const stderr: string[] = [];
  let exit = 0;
  const targets = operands.length > 0 ? operands : ["."];
  const fileLines: string[] = [];
  const dirBlocks: Array<{ name: string; lines: string[]; total: number }> = [];
  for (const name of targets) {
    const st = fs.stat(resolvePath(name));
    if (!st) {
      stderr.push(`ls: cannot access '${name}': No such file or directory\n`);
      exit = 2;
      continue;
    }
    if (st.kind === "file") {
      fileLines.push(long ? longLine(name, st, 0) : `${name}\n`);
      continue;
    }
    const entries = fs.list(resolvePath(name));
    const width = Math.max(0, ...entries.map((e) => String(sizeOf(e.stat)).length));
    dirBlocks.push({
      name,
      lines: entries.map((e) => (long ? longLine(e.name, e.stat, width) : `${e.name}\n`)),
      // 1 KiB blocks allocated, as ls -l's "total" (4 KiB pages: a file uses whole ones).
      total: entries.reduce((sum, e) => sum + Math.ceil(sizeOf(e.stat) / 4096) * 4, 0),
    });
  }
  stdout.push(...fileLines);
  const headed = targets.length > 1;
  dirBlocks.forEach((b, i) => {
    if (headed) stdout.push(`${i > 0 || fileLines.length > 0 ? "\n" : ""}${b.name}:\n`);
    if (long) stdout.push(`total ${b.total}\n`);
    stdout.push(...b.lines);
  });
  return done(exit, stdout, stderr);
}

export async function rm(ctx: ToolContext, argv: readonly string[]): Promise<Result> {
  const fs = withFs("rm", ctx);
  if (!("read" in fs)) return fs;
  let force = false;
  let recursive = false;
  const names: string[] = [];
  for (const arg of argv) {
    if (arg.startsWith("-") && arg.length > 1) {
      for (const c of arg.slice(1)) {
        if (c === "f") force = true;
        else if (c === "r" || c === "R") recursive = true;
        else if (c !== "v") throw new UsageError(`invalid option -- '${c}'`);
      }
    } else names.push(arg);
  }
  if (names.length === 0 && !force) return { exitCode: 1, stdout: "", stderr: "rm: missing operand\nTry 'rm --help' for more information.\n" };
  const stderr: string[] = [];
  let exit = 0;
  for (const name of names) {
    try {
      fs.remove(resolvePath(name), { recursive });
    } catch (err) {
      const message = why(err);
      if (force && err instanceof FsError && err.code === "ENOENT") continue;
      stderr.push(`rm: cannot remove '${name}': ${message}\n`);
      exit = 1;
    }
  }
  return done(exit, [], stderr);
}
