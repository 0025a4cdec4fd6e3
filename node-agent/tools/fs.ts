/**
 * A pod's filesystem, in memory: what `dd of=...`, `curl -o`, `sha256sum` and the nginx/httpd
 * docroot share. One per pod (all its containers see it, as if they shared one volume).
 *
 * Design notes:
 * - absolute paths only, normalised ("//", ".", ".." and a trailing "/" removed; ".." at the
 *   root stays at the root, as in the kernel); tools resolve relative paths against "/".
 * - directories are implicit: writing a file creates its parents (lenient: the real open(2)
 *   would say ENOENT); `mkdir` makes an empty one visible to `ls`.
 * - a byte budget (default 256 MiB, the file contents only): a write that would go past it
 *   fails whole with ENOSPC and changes nothing.
 * - file contents are never mutated in place: a write or append stores a new array, so a
 *   reader holding the old one (a response being streamed) keeps a consistent snapshot.
 *   `append` therefore copies; bulk writers collect their chunks and `write` once.
 */

export const DEFAULT_FS_CAPACITY = 256 * 1024 * 1024;

export type FsErrorCode = "ENOENT" | "ENOSPC" | "EISDIR" | "ENOTDIR" | "EINVAL";

const MESSAGES: Record<FsErrorCode, string> = {
  ENOENT: "No such file or directory",
  ENOSPC: "No space left on device",
  EISDIR: "Is a directory",
  ENOTDIR: "Not a directory",
  EINVAL: "Invalid argument",
};

/** A failed file operation; `message` is strerror's text, as tools print it after "tool: path: ". */
export class FsError extends Error {
  override readonly name = "FsError";
  constructor(
    readonly code: FsErrorCode,
    readonly path: string,
  ) {
    super(MESSAGES[code]);
  }
}

export type FsStat = { kind: "file"; size: number; mtime: Date } | { kind: "dir"; mtime: Date };

export interface FsEntry {
  name: string;
  stat: FsStat;
}

export interface PodFsOptions {
  /** Bytes of file contents the pod may hold (default 256 MiB). */
  capacityBytes?: number;
  /** Clock for mtimes (default the wall clock). */
  now?: () => Date;
}

interface FileNode {
  data: Uint8Array;
  mtime: Date;
}

/** "/a//b/./c/../d/" -> "/a/b/d"; a relative path or a NUL byte is EINVAL. */
export function normalizePath(path: string): string {
  if (!path.startsWith("/") || path.includes("\0")) throw new FsError("EINVAL", path);
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** A path as a tool in a container whose working directory is "/" means it. */
export function resolvePath(path: string, cwd = "/"): string {
  return normalizePath(path.startsWith("/") ? path : `${cwd}/${path}`);
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

export class PodFs {
  readonly capacity: number;
  private readonly files = new Map<string, FileNode>();
  private readonly dirs = new Map<string, Date>();
  private usedBytes = 0;
  private readonly now: () => Date;

  constructor(opts: PodFsOptions = {}) {
    this.capacity = opts.capacityBytes ?? DEFAULT_FS_CAPACITY;
    this.now = opts.now ?? (() => new Date());
    this.dirs.set("/", this.now());
    this.mkdir("/tmp");
  }

  /** Bytes of file contents stored. */
  get used(): number {
    return this.usedBytes;
  }

  /** Bytes a new file could still get. */
  get free(): number {
    return Math.max(0, this.capacity - this.usedBytes);
  }

  read(path: string): Uint8Array {
    const p = normalizePath(path);
    const file = this.files.get(p);
    if (file) return file.data;
    throw new FsError(this.dirs.has(p) ? "EISDIR" : "ENOENT", path);
  }

  /** Creates or replaces the file (the array is kept, not copied: callers hand over ownership). */
  write(path: string, data: Uint8Array): void {
    const p = this.writable(path);
    const old = this.files.get(p)?.data.length ?? 0;
    if (this.usedBytes - old + data.length > this.capacity) throw new FsError("ENOSPC", path);
    this.mkdirs(parentOf(p));
    this.files.set(p, { data, mtime: this.now() });
    this.usedBytes += data.length - old;
  }

  append(path: string, data: Uint8Array): void {
    const p = this.writable(path);
    const old = this.files.get(p)?.data;
    if (!old) return this.write(path, data.slice());
    if (this.usedBytes + data.length > this.capacity) throw new FsError("ENOSPC", path);
    const joined = new Uint8Array(old.length + data.length);
    joined.set(old);
    joined.set(data, old.length);
    this.files.set(p, { data: joined, mtime: this.now() });
    this.usedBytes += data.length;
  }

  stat(path: string): FsStat | undefined {
    const p = normalizePath(path);
    const file = this.files.get(p);
    if (file) return { kind: "file", size: file.data.length, mtime: file.mtime };
    const dir = this.dirs.get(p);
    return dir ? { kind: "dir", mtime: dir } : undefined;
  }

  /** The entries directly in `dir`, sorted by name (as `ls`). */
  list(dir: string): FsEntry[] {
    const p = normalizePath(dir);
    if (this.files.has(p)) throw new FsError("ENOTDIR", dir);
    if (!this.dirs.has(p)) throw new FsError("ENOENT", dir);
    const prefix = p === "/" ? "/" : `${p}/`;
    const out: FsEntry[] = [];
    const direct = (path: string) => path.startsWith(prefix) && path.length > prefix.length && !path.slice(prefix.length).includes("/");
    for (const [path, node] of this.files) if (direct(path)) out.push({ name: path.slice(prefix.length), stat: { kind: "file", size: node.data.length, mtime: node.mtime } });
    for (const [path, mtime] of this.dirs) if (direct(path)) out.push({ name: path.slice(prefix.length), stat: { kind: "dir", mtime } });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** `mkdir -p`. */
  mkdir(path: string): void {
    if (this.dirs.has(normalizePath(path))) return;
    if (this.files.has(normalizePath(path))) throw new FsError("ENOTDIR", path);
    this.mkdirs(this.writable(path));
  }

  /** Removes a file, or with `recursive` a directory and all under it; "/" stays. */
  remove(path: string, opts: { recursive?: boolean } = {}): void {
    const p = normalizePath(path);
    const file = this.files.get(p);
    if (file) {
      this.files.delete(p);
      this.usedBytes -= file.data.length;
      return;
    }
    if (!this.dirs.has(p)) throw new FsError("ENOENT", path);
    if (!opts.recursive) throw new FsError("EISDIR", path);
    const prefix = p === "/" ? "/" : `${p}/`;
    for (const [f, node] of [...this.files]) {
      if (f.startsWith(prefix)) {
        this.files.delete(f);
        this.usedBytes -= node.data.length;
      }
    }
    for (const d of [...this.dirs.keys()]) if (d !== "/" && (d === p || d.startsWith(prefix))) this.dirs.delete(d);
  }

  /** The normalised path, checked to be something a file can be written at. */
  private writable(path: string): string {
    const p = normalizePath(path);
    if (this.dirs.has(p)) throw new FsError("EISDIR", path);
    for (let a = parentOf(p); a !== "/"; a = parentOf(a)) if (this.files.has(a)) throw new FsError("ENOTDIR", path);
    return p;
  }

  private mkdirs(p: string): void {
    for (let d = p; !this.dirs.has(d); d = parentOf(d)) this.dirs.set(d, this.now());
  }
}
