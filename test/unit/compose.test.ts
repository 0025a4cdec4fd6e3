/**
 * Static checks of the docker deployment (docker-compose.yml and its NATS cluster override
 * deploy/compose-nats-cluster.yml, deploy/Dockerfile, .dockerignore, tsconfig.build.json,
 * deploy/local-images.sh, package.json and its lock): everything a `docker
 * compose up` would trip over at build or start time that can be seen by reading the files, on
 * any machine (test/integration/compose.test.ts runs the file for real where Docker is). The
 * config values go through the real loaders of cluster/config.ts, so a value the processes would
 * reject fails here. No sockets, no processes.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { broadcastOf, cidrContains, parseCidr, type Cidr } from "../../cluster/addressing.ts";
import {
  CONFIG_ENV_VARS,
  loadClusterConfig,
  loadControlPlaneConfig,
  loadNodeAgentConfig,
  loadPkiConfig,
  withMachineIdentity,
  type ClusterConfig,
} from "../../cluster/config.ts";
import { COMPOSE_NATS, COMPOSE_NATS_CLUSTER, COMPOSE_PKI, COMPOSE_PKI_FILES, composeNatsConfig, composeNatsFiles } from "../../cluster/compose-pki.ts";
import { isDns1123Label } from "../../cluster/syntax.ts";
import { parseIpv4Addr } from "../../overlay/wire/common.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const COMPOSE_FILE = "docker-compose.yml";
const CONTROL_PLANE_ENTRY = "control-plane/main.ts";
const PKI_ENTRY = "control-plane/pki.ts";
const NODE_AGENT_ENTRY = "node-agent/main.ts";
/** Folders whose code runs inside the image, compiled (tsconfig.build.json's include). */
const RUNTIME_DIRS = ["cluster", "control-plane", "node-agent", "overlay"];
/** Kubernetes' NodePort range (kube-apiserver --service-node-port-range default). */
const NODE_PORT_MIN = 30000;
const NODE_PORT_MAX = 32767;
/** A container's hostname under compose when the service sets none: its short container ID. */
const CONTAINER_ID_HOSTNAME = "3f2a9c1b4d5e";

// ---------------------------------------------------------------------------------------------
// Plain data helpers: the parsed YAML is `unknown` until a check has looked at it.

type Dict = Record<string, unknown>;

function isDict(x: unknown): x is Dict {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function dict(x: unknown, where: string): Dict {
  if (!isDict(x)) throw new Error(`${where}: expected a mapping, got ${JSON.stringify(x)}`);
  return x;
}

function stringList(x: unknown, where: string): string[] {
  if (!Array.isArray(x) || !x.every((s) => typeof s === "string")) {
    throw new Error(`${where}: expected a list of strings, got ${JSON.stringify(x)}`);
  }
  return x;
}

function readText(path: string): string {
  return readFileSync(join(ROOT, path), "utf8");
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

function isDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

// ---------------------------------------------------------------------------------------------
// The compose file. Merge keys (`<<: *anchor`) are resolved as docker compose resolves them.

const composeText = readText(COMPOSE_FILE);
const compose = dict(parse(composeText, { merge: true }), COMPOSE_FILE);
const services = dict(compose.services, "services");
const serviceNames = Object.keys(services);

function service(name: string): Dict {
  return dict(services[name], `services.${name}`);
}

interface Build {
  /** Repo-relative context directory ("" = the repository top level). */
  context: string;
  /** Repo-relative path of the Dockerfile. */
  dockerfile: string;
}

function buildOf(name: string): Build | undefined {
  const build = service(name).build;
  if (build === undefined) return undefined;
  if (typeof build === "string") return { context: posix.normalize(build), dockerfile: posix.join(posix.normalize(build), "Dockerfile") };
  const b = dict(build, `services.${name}.build`);
  if (b.dockerfile_inline !== undefined) throw new Error(`services.${name}.build: dockerfile_inline cannot be checked; use a Dockerfile`);
  const context = posix.normalize(typeof b.context === "string" ? b.context : ".");
  const dockerfile = typeof b.dockerfile === "string" ? b.dockerfile : "Dockerfile";
  return { context, dockerfile: posix.join(context, dockerfile) };
}

/** The kubewire services: those built from this repository (nats comes as an image). */
const kubewireServices = serviceNames.filter((name) => service(name).build !== undefined);

/**
 * A service's environment as the container gets it. Both compose spellings are accepted: a map
 * (numbers and booleans become strings) or a list of KEY=VALUE. A bare `KEY` / `KEY: null` copies
 * the variable from the shell running compose, and `$` interpolates from it: either would make
 * the container's config depend on whoever types `docker compose up`, so both are refused.
 */
function environmentOf(name: string): Record<string, string> {
  const env = service(name).environment;
  const where = `services.${name}.environment`;
  const out: Record<string, string> = {};
  const put = (key: string, value: unknown): void => {
    if (key in out) throw new Error(`${where}: ${key} is set twice`);
    if (value === null || value === undefined) throw new Error(`${where}: ${key} has no value (it would be copied from the host shell)`);
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new Error(`${where}: ${key} must be a scalar, got ${JSON.stringify(value)}`);
    }
    const text = String(value);
    if (text.includes("$")) throw new Error(`${where}: ${key}=${text} is interpolated from the host shell`);
    out[key] = text;
  };
  if (env === undefined) return out;
  if (Array.isArray(env)) {
    for (const item of stringList(env, where)) {
      const eq = item.indexOf("=");
      if (eq < 0) put(item, null);
      else put(item.slice(0, eq), item.slice(eq + 1));
    }
  } else {
    for (const [key, value] of Object.entries(dict(env, where))) {
      if (key === "<<") throw new Error(`${where}: unresolved merge key`);
      put(key, value);
    }
  }
  return out;
}

/** Compose's `command` (exec or shell form), or the image's CMD when the service has none. */
function commandOf(name: string): string[] {
  const command = service(name).command;
  if (command === undefined) {
    const build = buildOf(name);
    if (!build) throw new Error(`services.${name}: no command and no build to take a CMD from`);
    const cmd = dockerfileOf(build).cmd;
    if (!cmd) throw new Error(`services.${name}: no command, and ${build.dockerfile} has no exec-form CMD`);
    return cmd;
  }
  if (typeof command === "string") return command.trim().split(/\s+/);
  return stringList(command, `services.${name}.command`);
}

/** The compiled entry point a command runs (its one `.js` argument), relative to the workdir. */
function jsScriptIn(command: string[], where: string): string {
  const scripts = command.filter((arg) => /\.[cm]?[jt]s$/.test(arg));
  if (scripts.length !== 1 || !scripts[0]!.endsWith(".js")) throw new Error(`${where}: expected one compiled .js script in the command, got ${JSON.stringify(command)}`);
  return posix.normalize(scripts[0]!);
}

/** The TypeScript source of a kubewire service's entry point (its `.js` script's `.ts`). */
function scriptOf(name: string): string {
  return jsScriptIn(commandOf(name), `services.${name}`).replace(/\.js$/, ".ts");
}

function dependsOnOf(name: string): Map<string, string> {
  const deps = service(name).depends_on;
  const where = `services.${name}.depends_on`;
  const out = new Map<string, string>();
  if (deps === undefined) return out;
  if (Array.isArray(deps)) {
    for (const dep of stringList(deps, where)) out.set(dep, "service_started");
  } else {
    for (const [dep, spec] of Object.entries(dict(deps, where))) {
      const condition = isDict(spec) && typeof spec.condition === "string" ? spec.condition : "service_started";
      out.set(dep, condition);
    }
  }
  return out;
}

interface Mount {
  /** A named volume, or a host path (./x, /x, ~/x). */
  source: string;
  target: string;
  readOnly: boolean;
}

/** A service's `volumes:` (short syntax SOURCE:TARGET[:MODE], or the long one); anonymous volumes have source "". */
function mountsOf(name: string): Mount[] {
  const volumes = service(name).volumes;
  if (volumes === undefined) return [];
  if (!Array.isArray(volumes)) throw new Error(`services.${name}.volumes: expected a list`);
  return volumes.map((v: unknown) => {
    if (typeof v === "string") {
      const parts = v.split(":");
      return parts.length === 1 ? { source: "", target: parts[0]!, readOnly: false } : { source: parts[0]!, target: parts[1]!, readOnly: (parts[2] ?? "").split(",").includes("ro") };
    }
    const d = dict(v, `services.${name}.volumes`);
    return { source: typeof d.source === "string" ? d.source : "", target: String(d.target), readOnly: d.read_only === true };
  });
}

/** The mount a container path is on (the deepest), if any. */
function mountOf(name: string, path: string): Mount | undefined {
  return mountsOf(name)
    .filter((m) => path === m.target || path.startsWith(`${m.target}/`))
    .sort((a, b) => b.target.length - a.target.length)[0];
}

/** network name -> the service's settings on it (null when given as a bare list entry). */
function networksOf(name: string): Map<string, Dict | null> {
  const nets = service(name).networks;
  const out = new Map<string, Dict | null>();
  if (nets === undefined) out.set("default", null);
  else if (Array.isArray(nets)) for (const n of stringList(nets, `services.${name}.networks`)) out.set(n, null);
  else for (const [n, v] of Object.entries(dict(nets, `services.${name}.networks`))) out.set(n, isDict(v) ? v : null);
  return out;
}

interface Ipam {
  subnet: Cidr;
  gateway?: number;
  ipRange?: Cidr;
}

function ipamOf(network: string): Ipam[] {
  const top = compose.networks === undefined ? {} : dict(compose.networks, "networks");
  const net = top[network];
  if (!isDict(net) || !isDict(net.ipam) || !Array.isArray(net.ipam.config)) return [];
  return net.ipam.config.map((c: unknown, i: number) => {
    const where = `networks.${network}.ipam.config[${i}]`;
    const cfg = dict(c, where);
    const subnet = typeof cfg.subnet === "string" ? parseCidr(cfg.subnet) : undefined;
    if (!subnet) throw new Error(`${where}.subnet: not an IPv4 CIDR: ${JSON.stringify(cfg.subnet)}`);
    const out: Ipam = { subnet };
    if (cfg.gateway !== undefined) {
      const gw = typeof cfg.gateway === "string" ? parseIpv4Addr(cfg.gateway) : undefined;
      if (gw === undefined) throw new Error(`${where}.gateway: not an IPv4 address: ${JSON.stringify(cfg.gateway)}`);
      out.gateway = gw;
    }
    if (cfg.ip_range !== undefined) {
      const range = typeof cfg.ip_range === "string" ? parseCidr(cfg.ip_range) : undefined;
      if (!range) throw new Error(`${where}.ip_range: not an IPv4 CIDR: ${JSON.stringify(cfg.ip_range)}`);
      out.ipRange = range;
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// Dockerfiles: instructions, COPY placement (with Docker's rules), WORKDIR, and .dockerignore.

interface Instruction {
  keyword: string;
  args: string;
}

interface Copy {
  index: number;
  sources: string[];
  dest: string;
  workdir: string;
  /** Index of the stage (FROM) the COPY is in. */
  stage: number;
  /** The stage name or image of `--from=`; undefined for a copy from the build context. */
  from?: string;
}

interface Stage {
  index: number;
  image: string;
  name?: string;
}

interface Dockerfile {
  path: string;
  context: string;
  instructions: Instruction[];
  copies: Copy[];
  stages: Stage[];
  /** WORKDIR after each instruction (index-aligned with `instructions`). */
  workdirs: string[];
  cmd: string[] | undefined;
  ignored: (path: string) => boolean;
}

function parseInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = "";
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && pending === "")) continue;
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      continue;
    }
    const full = (pending + line).trim();
    pending = "";
    if (full === "") continue;
    const m = /^(\S+)\s*(.*)$/.exec(full)!;
    out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim() });
  }
  if (pending.trim() !== "") throw new Error("Dockerfile ends inside a line continuation");
  return out;
}

/** Exec form (a JSON array) or shell form (whitespace separated), with leading --flags split off. */
function splitArgs(args: string): { flags: string[]; words: string[] } {
  const flags: string[] = [];
  let rest = args;
  for (let m = /^(--\S+)\s+/.exec(rest); m; m = /^(--\S+)\s+/.exec(rest)) {
    flags.push(m[1]!);
    rest = rest.slice(m[0].length);
  }
  const words = rest.startsWith("[") ? stringList(JSON.parse(rest), `JSON form ${rest}`) : rest.split(/\s+/).filter(Boolean);
  return { flags, words };
}

function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      re += glob[i + 2] === "/" ? "(?:.*/)?" : ".*";
      i += glob[i + 2] === "/" ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * `.dockerignore` as the builder applies it: patterns in order, the last one matching wins, `!`
 * re-includes, and a pattern that matches a parent directory excludes everything below it.
 * `<Dockerfile>.dockerignore` beside the Dockerfile takes precedence over the context's file.
 */
function dockerignoreOf(context: string, dockerfile: string): (path: string) => boolean {
  const own = join(ROOT, `${dockerfile}.dockerignore`);
  const top = join(ROOT, context, ".dockerignore");
  const file = isFile(own) ? own : isFile(top) ? top : undefined;
  if (!file) return () => false;
  const patterns = readFileSync(file, "utf8")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const body = posix.normalize((negate ? l.slice(1) : l).trim().replace(/^\/+/, "")).replace(/\/+$/, "");
      return { negate, re: globToRegExp(body) };
    });
  return (path) => {
    const parts = path.split("/");
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
    let ignored = false;
    for (const p of patterns) if (prefixes.some((prefix) => p.re.test(prefix))) ignored = !p.negate;
    return ignored;
  };
}

const dockerfiles = new Map<string, Dockerfile>();

function dockerfileOf(build: Build): Dockerfile {
  const cached = dockerfiles.get(build.dockerfile);
  if (cached) return cached;
  const instructions = parseInstructions(readText(build.dockerfile));
  const copies: Copy[] = [];
  const stages: Stage[] = [];
  const workdirs: string[] = [];
  let workdir = "/";
  let cmd: string[] | undefined;
  instructions.forEach((ins, index) => {
    if (ins.keyword === "FROM") {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith("--"));
      const as = words.findIndex((w) => w.toUpperCase() === "AS");
      stages.push({ index, image: words[0]!, ...(as > 0 && words[as + 1] ? { name: words[as + 1]! } : {}) });
      // A stage built on an earlier one inherits its WORKDIR.
      const base = stages.slice(0, -1).find((st) => st.name === words[0]);
      workdir = base ? workdirs[stages[stages.indexOf(base) + 1]!.index - 1]! : "/";
    }
    if (ins.keyword === "WORKDIR") workdir = posix.resolve(workdir, ins.args);
    if (ins.keyword === "CMD") cmd = ins.args.startsWith("[") ? stringList(JSON.parse(ins.args), "CMD") : undefined;
    if (ins.keyword === "COPY" || ins.keyword === "ADD") {
      const { flags, words } = splitArgs(ins.args);
      const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
      if (words.length >= 2) copies.push({ index, sources: words.slice(0, -1), dest: words.at(-1)!, workdir, stage: stages.length - 1, ...(from ? { from } : {}) });
    }
    workdirs.push(workdir);
  });
  const df = { path: build.dockerfile, context: build.context, instructions, copies, stages, workdirs, cmd, ignored: dockerignoreOf(build.context, build.dockerfile) };
  dockerfiles.set(build.dockerfile, df);
  return df;
}

/** The stage instruction `index` belongs to. */
function stageAt(df: Dockerfile, index: number): number {
  let stage = 0;
  df.stages.forEach((st, i) => {
    if (st.index <= index) stage = i;
  });
  return stage;
}

/**
 * Where a file the stage `from` has at `path` lands in the stage `to`, through its
 * `COPY --from=` instructions (directory sources copy their contents, as from the context).
 */
function copiedFromStage(df: Dockerfile, from: number, to: number, path: string): string[] {
  const fromStage = df.stages[from]!;
  const out: string[] = [];
  for (const copy of df.copies) {
    if (copy.stage !== to || (copy.from !== fromStage.name && copy.from !== String(from))) continue;
    const dest = posix.resolve(copy.workdir, copy.dest);
    for (const raw of copy.sources) {
      const src = posix.resolve("/", raw);
      if (path.startsWith(`${src === "/" ? "" : src}/`)) out.push(posix.join(dest, posix.relative(src, path)));
      else if (path === src) out.push(copy.dest.endsWith("/") ? posix.join(dest, posix.basename(path)) : dest);
    }
  }
  return out;
}

/** Context-relative sources of a COPY, wildcards expanded against the context. */
function expandSources(df: Dockerfile, copy: Copy): string[] {
  return copy.sources.flatMap((src) => {
    const clean = posix.normalize(src).replace(/\/+$/, "");
    if (!/[*?[]/.test(clean)) return [clean === "." ? "" : clean];
    const dir = posix.dirname(clean);
    const re = globToRegExp(posix.basename(clean));
    const abs = join(ROOT, df.context, dir);
    return isDir(abs) ? readdirSync(abs).filter((n) => re.test(n)).map((n) => posix.join(dir, n)) : [];
  });
}

/**
 * Where the build puts the context file `file` (context-relative), by Docker's COPY rules: a
 * directory source copies its contents into dest; a file goes to dest, or into dest when dest
 * ends in '/' (or is '.') or there are several sources. Files the .dockerignore drops go nowhere.
 */
function imagePathsOf(df: Dockerfile, file: string, before = Infinity, stage = stageAt(df, Math.min(before, df.instructions.length) - 1)): string[] {
  if (df.ignored(file)) return [];
  const out: string[] = [];
  for (const copy of df.copies) {
    if (copy.index >= before || copy.stage !== stage || copy.from !== undefined) continue;
    const sources = expandSources(df, copy);
    const dest = posix.resolve(copy.workdir, copy.dest);
    const destIsDir = copy.dest.endsWith("/") || copy.dest === "." || copy.dest === ".." || sources.length > 1;
    for (const src of sources) {
      const abs = join(ROOT, df.context, src);
      if (isDir(abs)) {
        if (src === "" || file.startsWith(`${src}/`)) out.push(posix.join(dest, posix.relative(src === "" ? "." : src, file)));
      } else if (src === file) {
        out.push(destIsDir ? posix.join(dest, posix.basename(file)) : dest);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Source scanning: what a file imports (type-only imports are erased by tsx and not needed).

interface ImportRef {
  spec: string;
  typeOnly: boolean;
}

function importsOf(source: string): ImportRef[] {
  const out: ImportRef[] = [];
  const stat = /^[ \t]*(?:import|export)\s+(type\s+)?(?:[^'";]*?\s*\bfrom\s*)?["']([^"']+)["']/gm;
  for (const m of source.matchAll(stat)) out.push({ spec: m[2]!, typeOnly: m[1] !== undefined });
  for (const m of source.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) out.push({ spec: m[1]!, typeOnly: false });
  return out;
}

function packageNameOf(spec: string): string {
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

function isBuiltin(spec: string): boolean {
  return spec.startsWith("node:") || builtinModules.includes(spec) || builtinModules.includes(packageNameOf(spec));
}

function sourceFiles(dir: string): string[] {
  const abs = join(ROOT, dir);
  if (!isDir(abs)) return [];
  return readdirSync(abs, { withFileTypes: true }).flatMap((e) => {
    const rel = posix.join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" ? [] : sourceFiles(rel);
    return /\.(?:[cm]?ts|[cm]?js)$/.test(e.name) && !e.name.endsWith(".d.ts") ? [rel] : [];
  });
}

/** Every repo file an entry point loads at run time through relative imports, itself included. */
function runtimeClosure(entry: string): string[] {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const ref of importsOf(readText(file))) {
      if (ref.typeOnly || !ref.spec.startsWith(".")) continue;
      const target = posix.normalize(posix.join(posix.dirname(file), ref.spec));
      if (!isFile(join(ROOT, target))) throw new Error(`${file} imports ${ref.spec}, which does not exist (${target})`);
      todo.push(target);
    }
  }
  return [...seen].sort();
}

const packageJson = JSON.parse(readText("package.json")) as {
  type?: string;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};
const dependencies = packageJson.dependencies ?? {};

/** tsconfig.build.json (comments allowed, as tsc allows them), with what it extends. */
const buildTsconfig = JSON.parse(readText("tsconfig.build.json").replace(/^\s*\/\/.*$/gm, "")) as {
  extends?: string;
  compilerOptions?: { outDir?: string; rootDir?: string; noEmit?: boolean; rewriteRelativeImportExtensions?: boolean };
  include?: string[];
};
const buildScript = (packageJson as { scripts?: Record<string, string> }).scripts?.build ?? "";

/**
 * The compose file's `${VAR:-default}` interpolation resolved to the defaults (what `docker
 * compose up` uses when the shell sets nothing). Only KUBEWIRE_COMPOSE_* variables with a default
 * are allowed, and only in `ports:`, checked by the tests below.
 */
function withDefaults(text: string): string {
  return text.replace(/\$\{([A-Z0-9_]+):-([^}]*)\}/g, (_, _name: string, value: string) => value);
}

interface Published {
  hostIp: string;
  hostPorts: [number, number];
  containerPorts: [number, number];
  protocol: "tcp" | "udp";
}

/** A service's `ports:` in the short syntax (HOST_IP:HOST[-HOST]:CONTAINER[-CONTAINER][/PROTO]). */
function publishedOf(name: string): Published[] {
  const ports = service(name).ports;
  if (ports === undefined) return [];
  return stringList(ports, `services.${name}.ports`).map((raw) => {
    const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)(?:-(\d+))?:(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/.exec(withDefaults(raw));
    if (!m) throw new Error(`services.${name}.ports: ${raw}: want HOST_IP:HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|udp]`);
    const range = (a: string, b: string | undefined): [number, number] => [Number(a), Number(b ?? a)];
    return { hostIp: m[1]!, hostPorts: range(m[2]!, m[3]), containerPorts: range(m[4]!, m[5]), protocol: (m[6] ?? "tcp") as "tcp" | "udp" };
  });
}

/** How many containers `docker compose up` starts for a service (its `scale`, else 1). */
function replicasOf(name: string): number {
  const s = service(name);
  const deploy = isDict(s.deploy) ? s.deploy : {};
  const n = s.scale ?? deploy.replicas ?? 1;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0) throw new Error(`services.${name}: scale must be a whole number, got ${JSON.stringify(n)}`);
  return n;
}

/**
 * A node-agent's environment as its process sees it in a container of the service: the
 * machine's identity (cluster/config.ts withMachineIdentity, as node-agent/main.ts applies it)
 * from the service's hostname or else a container ID, and the /etc/hosts Docker writes.
 */
function nodeEnvironmentOf(name: string, containerAddress = "172.18.0.5"): Record<string, string | undefined> {
  const hostname = typeof service(name).hostname === "string" ? (service(name).hostname as string) : CONTAINER_ID_HOSTNAME;
  const hostsText = `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${containerAddress}\t${hostname}\n`;
  return { ...withMachineIdentity(environmentOf(name), { hostname, hostsText }) };
}

// ---------------------------------------------------------------------------------------------

describe(COMPOSE_FILE, () => {
  const nodeAgents = kubewireServices.filter((name) => scriptOf(name) === NODE_AGENT_ENTRY);
  const controlPlanes = kubewireServices.filter((name) => scriptOf(name) === CONTROL_PLANE_ENTRY);
  const pkis = kubewireServices.filter((name) => scriptOf(name) === PKI_ENTRY);
  /** The kubewire services that keep running (pki exits once the material is there). */
  const processes = kubewireServices.filter((name) => !pkis.includes(name));

  it("runs a control plane and node-agents built from this repository", () => {
    expect(controlPlanes.length).toBeGreaterThanOrEqual(1);
    expect(nodeAgents.length).toBeGreaterThanOrEqual(1);
    expect(pkis, "one pki service makes the security material").toHaveLength(1);
    expect(composeText).not.toMatch(/^\s*<<:\s*[^*\s]/m); // merge keys only ever take anchors
  });

  it("gives every service an image or a build whose context and Dockerfile exist", () => {
    for (const name of serviceNames) {
      const s = service(name);
      const build = buildOf(name);
      if (!build) {
        expect(typeof s.image === "string" && s.image !== "", `${name}: needs an image or a build`).toBe(true);
        continue;
      }
      expect(isDir(join(ROOT, build.context)), `${name}: build context ${build.context} is not a directory`).toBe(true);
      expect(isFile(join(ROOT, build.dockerfile)), `${name}: Dockerfile ${build.dockerfile} does not exist`).toBe(true);
    }
  });

  it("starts each kubewire service with node and its compiled entry point, no TypeScript loader", () => {
    for (const name of kubewireServices) {
      const command = commandOf(name);
      expect(command[0], `${name}: ${JSON.stringify(command)}`).toBe("node");
      expect(command.some((a) => a === "--import" || a === "--loader" || a.startsWith("--experimental-strip-types")), `${name}: runs a loader: ${JSON.stringify(command)}`).toBe(false);
      const source = scriptOf(name);
      expect(isFile(join(ROOT, source)), `${name}: ${source} (the source of its .js script) does not exist`).toBe(true);
    }
  });

  it("builds each kubewire service's entry point with all it imports, and ships the JavaScript to the runtime stage", () => {
    const opts = buildTsconfig.compilerOptions ?? {};
    const outDir = posix.normalize(opts.outDir ?? "");
    expect(buildTsconfig.extends, "tsconfig.build.json should extend tsconfig.json (one set of compiler options)").toBe("./tsconfig.json");
    expect(opts.noEmit, "tsconfig.build.json must emit").toBe(false);
    expect(opts.rewriteRelativeImportExtensions, "the sources import with .ts: the emitted .js must import .js").toBe(true);
    expect(posix.normalize(opts.rootDir ?? "."), "rootDir . keeps the repository layout under outDir").toBe(".");
    expect(outDir).toBe("dist");
    expect(buildScript, "npm run build compiles with tsconfig.build.json").toMatch(/\btsc\s+-p\s+tsconfig\.build\.json\b/);
    const include = (buildTsconfig.include ?? []).map((d) => posix.normalize(d));
    expect(include.sort()).toEqual([...RUNTIME_DIRS].sort());
    for (const name of kubewireServices) {
      const df = dockerfileOf(buildOf(name)!);
      const final = df.stages.length - 1;
      const buildRun = df.instructions.findIndex((ins, i) => ins.keyword === "RUN" && stageAt(df, i) < final && /\bnpm\s+run\s+build\b/.test(ins.args));
      expect(buildRun, `${df.path}: no earlier stage runs npm run build`).toBeGreaterThanOrEqual(0);
      const buildStage = stageAt(df, buildRun);
      const buildDir = df.workdirs[buildRun]!;
      const source = scriptOf(name);
      const closure = runtimeClosure(source);
      for (const file of [...closure, "package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json"]) {
        expect(imagePathsOf(df, file, buildRun, buildStage), `${name}: ${df.path} must copy ${file} to ${buildDir} before npm run build`).toContain(posix.resolve(buildDir, file));
        if (file.endsWith(".ts")) expect(include.some((d) => file.startsWith(`${d}/`)), `${file} is outside tsconfig.build.json's include`).toBe(true);
      }
      // Files a module loads by path at run time (createRequire(import.meta.url)("./x.json")) are
      // not emitted by tsc: npm run build must copy them into dist/.
      for (const file of closure) {
        for (const m of readText(file).matchAll(/createRequire\(import\.meta\.url\)\(\s*["'](\.[^"']+)["']/g)) {
          const asset = posix.normalize(posix.join(posix.dirname(file), m[1]!));
          expect(buildScript, `${file} loads ${asset} at run time; npm run build must copy it to ${outDir}/`).toContain(asset);
          expect(imagePathsOf(df, asset, buildRun, buildStage)).toContain(posix.resolve(buildDir, asset));
        }
      }
      const script = jsScriptIn(commandOf(name), `services.${name}`);
      const workdir = typeof service(name).working_dir === "string" ? (service(name).working_dir as string) : df.workdirs.at(-1)!;
      const emitted = posix.resolve(buildDir, outDir, source.replace(/\.ts$/, ".js"));
      expect(copiedFromStage(df, buildStage, final, emitted), `${name}: ${df.path} must COPY --from the build stage ${emitted} to ${posix.resolve(workdir, script)}`).toContain(posix.resolve(workdir, script));
    }
  });

  it("sets only variables of CONFIG_ENV_VARS, with literal values and no env_file, on kubewire services", () => {
    for (const name of kubewireServices) {
      expect(service(name).env_file, `${name}: env_file hides the config from this check`).toBeUndefined();
      for (const key of Object.keys(environmentOf(name))) {
        expect(Object.keys(CONFIG_ENV_VARS), `${name}: ${key} is not read by cluster/config.ts`).toContain(key);
      }
    }
  });

  it("names the nodes with unique DNS-1123 labels: fixed names only on single containers, the rest after their container", () => {
    const fixed: string[] = [];
    for (const name of nodeAgents) {
      const explicit = environmentOf(name).KUBEWIRE_NODE_NAME ?? service(name).hostname;
      if (replicasOf(name) !== 1) {
        // Every replica would register under one name and fight over one Node object.
        expect(explicit, `${name}: a scaled service must let each container name itself (no KUBEWIRE_NODE_NAME, no hostname)`).toBeUndefined();
        expect(service(name).container_name, `${name}: container_name stops --scale`).toBeUndefined();
      }
      const nodeName = nodeEnvironmentOf(name).KUBEWIRE_NODE_NAME!;
      expect(isDns1123Label(nodeName), `${name}: ${JSON.stringify(nodeName)} is not a DNS-1123 label`).toBe(true);
      if (explicit !== undefined) fixed.push(nodeName);
    }
    expect(new Set(fixed).size, `node names repeat: ${fixed.join(", ")}`).toBe(fixed.length);
    expect(fixed, "a fixed name looks like a container ID").not.toContain(CONTAINER_ID_HOSTNAME);
  });

  it("lets each node take its own container address (no fixed KUBEWIRE_HOST_ADDRESS, no host network)", () => {
    for (const name of nodeAgents) {
      expect(environmentOf(name).KUBEWIRE_HOST_ADDRESS, `${name}: the container's address is its own; a fixed one breaks --scale`).toBeUndefined();
      expect(service(name).network_mode, `${name}: on the host network every node would bind the same ports`).toBeUndefined();
      expect(nodeEnvironmentOf(name, "172.18.0.9").KUBEWIRE_HOST_ADDRESS).toBe("172.18.0.9");
    }
  });

  it("gives the processes configs their loaders accept, agreeing on every cluster-wide setting", () => {
    const levels = new Set([...Object.keys(pino.levels.values), "silent"]);
    const cluster = new Map<string, Omit<ClusterConfig, "logLevel">>();
    for (const name of pkis) expect(levels, `${name}: KUBEWIRE_LOG_LEVEL is not a pino level`).toContain(loadPkiConfig(environmentOf(name)).logLevel);
    for (const name of processes) {
      const env = environmentOf(name);
      const cfg = nodeAgents.includes(name) ? loadNodeAgentConfig(nodeEnvironmentOf(name)) : scriptOf(name) === CONTROL_PLANE_ENTRY ? loadControlPlaneConfig(env) : loadClusterConfig(env);
      expect(levels, `${name}: KUBEWIRE_LOG_LEVEL=${cfg.logLevel} is not a pino level`).toContain(cfg.logLevel);
      const { natsUrl, clusterCidr, nodeCidrMask, serviceCidr, underlayCidr, vni, proxyMode, lbCidr, clusterDomain } = cfg;
      cluster.set(name, { natsUrl, clusterCidr, nodeCidrMask, serviceCidr, underlayCidr, vni, proxyMode, lbCidr, clusterDomain });
    }
    const [first, ...rest] = [...cluster.entries()];
    for (const [name, cfg] of rest) expect(cfg, `${name} disagrees with ${first![0]}`).toEqual(first![1]);
  });

  it("works with docker-compose 1.29 too: no top-level name, interpolation only as ${KUBEWIRE_COMPOSE_*:-default}", () => {
    expect(compose.name, "docker-compose 1.29 rejects the top-level name key (use -p)").toBeUndefined();
    // Comments aside (they may quote the syntax); the file has no `#` inside values.
    for (const m of composeText.replace(/(^|\s)#.*$/gm, "").matchAll(/\$\{?([^}\s]*)\}?/g)) {
      expect(m[0], "interpolation must name a KUBEWIRE_COMPOSE_ variable and give a default").toMatch(/^\$\{KUBEWIRE_COMPOSE_[A-Z0-9_]+:-[^}]+\}$/);
    }
  });

  it("publishes the API, NATS, cluster DNS and a small NodePort range on 127.0.0.1 only, from unscaled services", () => {
    const all = serviceNames.flatMap((name) => publishedOf(name).map((p) => ({ ...p, name })));
    for (const p of all) {
      expect(p.hostIp, `${p.name}: publishes on ${p.hostIp}; the cluster is for this machine only`).toBe("127.0.0.1");
      expect(p.hostPorts[1] - p.hostPorts[0], `${p.name}: host and container ranges differ in length`).toBe(p.containerPorts[1] - p.containerPorts[0]);
      // Two replicas cannot both bind one host port.
      expect(replicasOf(p.name), `${p.name}: a scaled service cannot publish a fixed host port`).toBe(1);
    }
    // One docker-proxy process per published port and protocol.
    const proxies = all.reduce((n, p) => n + p.containerPorts[1] - p.containerPorts[0] + 1, 0);
    expect(proxies, "publishing many ports starts as many docker-proxy processes").toBeLessThanOrEqual(32);
    const has = (names: string[], port: number, protocol: "tcp" | "udp") =>
      all.some((p) => names.includes(p.name) && p.protocol === protocol && p.containerPorts[0] <= port && port <= p.containerPorts[1]);
    expect(has(controlPlanes, loadControlPlaneConfig(environmentOf(controlPlanes[0]!)).apiPort, "tcp"), "the API's port is not published").toBe(true);
    expect(has(["nats"], 4222, "tcp"), "the NATS client port (the kubewire CLI's way in) is not published").toBe(true);
    const gateways = nodeAgents.filter((name) => has([name], loadNodeAgentConfig(nodeEnvironmentOf(name)).dnsPort, "udp"));
    expect(gateways.length, "no node publishes its cluster DNS port").toBe(1);
    const dnsPort = loadNodeAgentConfig(nodeEnvironmentOf(gateways[0]!)).dnsPort;
    expect(has(gateways, dnsPort, "tcp"), "cluster DNS over TCP (truncated answers) is not published").toBe(true);
    for (const protocol of ["tcp", "udp"] as const) {
      const range = all.find((p) => p.name === gateways[0] && p.protocol === protocol && p.containerPorts[0] >= NODE_PORT_MIN);
      expect(range, `${gateways[0]}: no NodePort range published over ${protocol}`).toBeDefined();
      expect(range!.containerPorts[1], "NodePorts end at 32767").toBeLessThanOrEqual(NODE_PORT_MAX);
    }
  });

  it("points KUBEWIRE_NATS_URL at a NATS service on a network the process shares, over TLS", () => {
    for (const name of processes) {
      const url = loadClusterConfig(environmentOf(name)).natsUrl;
      for (const server of url.split(",")) {
        const host = new URL(server.trim()).hostname;
        expect(new URL(server.trim()).protocol, `${name}: ${server}: NATS requires TLS`).toBe("tls:");
        expect(serviceNames, `${name}: ${server} names no compose service`).toContain(host);
        const shared = [...networksOf(name).keys()].filter((n) => networksOf(host).has(n));
        expect(shared.length, `${name} and ${host} share no network`).toBeGreaterThan(0);
        expect(dependsOnOf(name).has(host), `${name}: should depend on ${host}`).toBe(true);
      }
    }
  });

  it("depends only on existing services, waiting for health only where there is a health check", () => {
    const conditions = ["service_started", "service_healthy", "service_completed_successfully"];
    for (const name of serviceNames) {
      for (const [dep, condition] of dependsOnOf(name)) {
        expect(serviceNames, `${name} depends on an unknown service`).toContain(dep);
        expect(dep, `${name} depends on itself`).not.toBe(name);
        expect(conditions).toContain(condition);
        if (condition === "service_healthy") expect(service(dep).healthcheck, `${name} waits for ${dep}'s health check`).toBeDefined();
      }
    }
    for (const name of nodeAgents) {
      expect(controlPlanes.some((cp) => dependsOnOf(name).has(cp)), `${name}: should depend on the control plane`).toBe(true);
    }
  });

  it("restarts the kubewire services unless stopped, but not the one-shot pki", () => {
    for (const name of processes) expect(service(name).restart, name).toBe("unless-stopped");
    for (const name of pkis) expect(service(name).restart, `${name} exits when done: a restart policy would run it in a loop`).toBe("no");
  });

  it("runs NATS from the config pki writes: JetStream stored on a volume, monitoring on the health-checked port", () => {
    const natsServices = serviceNames.filter((name) => {
      const image = service(name).image;
      return typeof image === "string" && /^(?:.*\/)?nats(?::|@|$)/.test(image);
    });
    expect(natsServices.length).toBeGreaterThanOrEqual(1);
    const topVolumes = compose.volumes === undefined ? {} : dict(compose.volumes, "volumes");
    // The config as pki renders it (the trust's keys do not change what is checked here).
    const trust = { operatorJwt: "o", systemAccount: "S", systemAccountJwt: "s", account: "A", accountJwt: "a" };
    const config = composeNatsConfig(trust);
    for (const name of natsServices) {
      const args = service(name).command === undefined ? [] : commandOf(name);
      const c = args.findIndex((a) => a === "-c" || a === "--config");
      expect(args[c + 1], `${name}: runs without pki's config (${JSON.stringify(args)})`).toBe(posix.join(COMPOSE_PKI.nats, "nats-server.conf"));
      expect(args.filter((a) => a.startsWith("-")), `${name}: flags would override the config`).toEqual([args[c]]);
      expect(config).toMatch(/^jetstream \{ store_dir: "([^"]+)" \}$/m);
      const storeDir = /^jetstream \{ store_dir: "([^"]+)" \}$/m.exec(config)![1]!;
      const mount = mountOf(name, storeDir);
      expect(mount?.target, `${name}: the store dir ${storeDir} is not on a volume`).toBe(storeDir);
      expect(mount!.readOnly).toBe(false);
      if (!/^[./~]/.test(mount!.source)) expect(Object.keys(topVolumes), `${name}: volume ${mount!.source} is not declared`).toContain(mount!.source);
      expect(config, "the config's client port is not the one published").toMatch(/^port: 4222$/m);

      const health = service(name).healthcheck;
      if (health !== undefined) {
        const test = dict(health, `${name}.healthcheck`).test;
        const text = Array.isArray(test) ? test.join(" ") : String(test);
        const port = /:(\d+)\//.exec(text)?.[1];
        if (port !== undefined) expect(config, `${name}: the health check reads port ${port}, monitoring is not on it`).toMatch(new RegExp(`^http: "[^"]*:${port}"$`, "m"));
      }
    }
  });

  it("secures NATS with pki's material, each service mounting only its share", () => {
    const [pki] = pkis;
    const token = loadPkiConfig(environmentOf(pki!)).bootstrapToken;
    const topVolumes = Object.keys(compose.volumes === undefined ? {} : dict(compose.volumes, "volumes"));
    const volumeAt = (name: string, dir: string) => {
      const m = mountsOf(name).find((x) => x.target === dir);
      expect(m, `${name}: nothing mounted at ${dir}`).toBeDefined();
      expect(topVolumes, `${name}: ${m!.source} at ${dir} is not a declared named volume`).toContain(m!.source);
      return m!;
    };
    // pki: the material on its own volume, and one volume per consumer, all written by it.
    expect(publishedOf(pki!), "pki serves nothing").toEqual([]);
    const material = volumeAt(pki!, COMPOSE_PKI.stateDir).source;
    const share = { nats: volumeAt(pki!, COMPOSE_PKI.nats).source, controlPlane: volumeAt(pki!, COMPOSE_PKI.controlPlane).source, node: volumeAt(pki!, COMPOSE_PKI.node).source };
    expect(new Set([material, ...Object.values(share)]).size, "one volume per consumer, apart from the material").toBe(4);
    for (const name of serviceNames.filter((n) => n !== pki)) {
      expect(dependsOnOf(name).get(pki!), `${name} must wait for pki to finish`).toBe("service_completed_successfully");
      expect(mountsOf(name).map((m) => m.source), `${name} mounts the CA key, the issuer and every credential`).not.toContain(material);
      for (const m of mountsOf(name).filter((x) => Object.values(share).includes(x.source))) expect(m.readOnly, `${name}: ${m.source} should be read-only`).toBe(true);
    }
    // A service's file under its share's mount: a file pki puts there.
    const inShare = (name: string, consumer: keyof typeof share, file: string | undefined) => {
      expect(file, `${name}: unset`).toBeDefined();
      const m = mountOf(name, file!);
      expect(m?.source, `${name}: ${file} is not on ${share[consumer]}`).toBe(share[consumer]);
      expect(m!.target).toBe(COMPOSE_PKI[consumer]);
      expect(Object.keys(COMPOSE_PKI_FILES[consumer]), `${name}: pki puts no ${posix.basename(file!)} in ${share[consumer]}`).toContain(posix.relative(m!.target, file!));
    };
    for (const name of serviceNames.filter((n) => n !== pki && mountsOf(n).some((m) => m.source === share.nats))) {
      expect(commandOf(name)[0], `${name}: only NATS gets the server's key`).toBe("nats-server");
      expect(volumeAt(name, COMPOSE_PKI.nats).source).toBe(share.nats);
    }
    for (const name of controlPlanes) {
      const env = environmentOf(name);
      for (const key of ["KUBEWIRE_NATS_CA", "KUBEWIRE_NATS_CREDS", "KUBEWIRE_NATS_ISSUER"]) inShare(name, "controlPlane", env[key]);
      expect(env.KUBEWIRE_BOOTSTRAP_TOKEN, `${name}: the token the material was made for`).toBe(token);
    }
    for (const name of nodeAgents) {
      const env = environmentOf(name);
      inShare(name, "node", env.KUBEWIRE_NATS_CA);
      expect(mountsOf(name).map((m) => m.source), `${name}: a node mounts the CA's volume alone`).toEqual([share.node]);
      expect(Object.keys(COMPOSE_PKI_FILES.node), "a node's share holds only public material").toEqual(["ca.pem"]);
      expect(env.KUBEWIRE_BOOTSTRAP_TOKEN, `${name}: joins with the token the material was made for`).toBe(token);
      // The identity it is issued: written in its own container, not on a volume replicas share.
      expect(env.KUBEWIRE_NATS_CREDS, `${name}: nowhere to keep its identity`).toBeDefined();
      expect(mountOf(name, env.KUBEWIRE_NATS_CREDS!), `${name}: ${env.KUBEWIRE_NATS_CREDS} is on a volume`).toBeUndefined();
    }
  });
});

describe("deploy/Dockerfile", () => {
  const builds = [...new Map(kubewireServices.map((name) => [buildOf(name)!.dockerfile, buildOf(name)!])).values()];

  it("is the one image of every kubewire service", () => {
    expect(builds.map((b) => b.dockerfile)).toEqual(["deploy/Dockerfile"]);
  });

  it("installs with npm ci from the copied manifest and lock: every dependency to build, dev dependencies omitted to run", () => {
    for (const build of builds) {
      const df = dockerfileOf(build);
      const final = df.stages.length - 1;
      const runs = df.instructions.map((ins, i) => ({ ...ins, i })).filter((ins) => ins.keyword === "RUN" && /\bnpm\s+(?:ci|install|i)\b/.test(ins.args));
      const finalRuns = runs.filter((r) => stageAt(df, r.i) === final);
      expect(finalRuns.length, `${df.path}: one npm install step in the runtime stage`).toBe(1);
      for (const run of runs) {
        expect(run.args, `${df.path}: npm ci installs exactly the lock`).toMatch(/\bnpm\s+ci\b/);
        const npmDir = df.workdirs[run.i]!;
        for (const file of ["package.json", "package-lock.json"]) {
          expect(imagePathsOf(df, file, run.i), `${df.path}: ${file} must be in ${npmDir} before npm ci`).toContain(posix.join(npmDir, file));
        }
      }
      const run = finalRuns[0]!;
      expect(run.args, `${df.path}: dev dependencies must be omitted from the runtime stage`).toMatch(/--omit(?:=|\s+)dev\b/);
      expect(run.args).not.toMatch(/--include(?:=|\s+)dev\b/);
      // node_modules must be where module resolution from the compiled sources finds it.
      const finalDir = df.workdirs.at(-1)!;
      const npmDir = df.workdirs[run.i]!;
      expect(finalDir === npmDir || finalDir.startsWith(`${npmDir}/`), `${df.path}: sources in ${finalDir}, node_modules in ${npmDir}`).toBe(true);
    }
  });

  it("builds FROM the image names deploy/local-images.sh makes locally (Docker Hub is not reachable in CI)", () => {
    const script = readText("deploy/local-images.sh");
    const made = [...script.matchAll(/^(?:NODE|NATS)_IMAGE=(\S+)$/gm)].map((m) => m[1]!);
    expect(made.length).toBe(2);
    for (const build of builds) {
      const df = dockerfileOf(build);
      const stageNames = df.stages.map((st) => st.name);
      for (const st of df.stages) if (!stageNames.includes(st.image)) expect(made, `${df.path}: FROM ${st.image}`).toContain(st.image);
    }
    for (const name of serviceNames.filter((n) => buildOf(n) === undefined)) expect(made, `services.${name}.image`).toContain(service(name).image);
  });

  it("runs as a non-root user on a Node image the engines field accepts", () => {
    for (const build of builds) {
      const df = dockerfileOf(build);
      const from = df.instructions.filter((i) => i.keyword === "FROM").at(-1)!.args.split(/\s+/).filter((w) => !w.startsWith("--"))[0]!;
      const m = /^(?:docker\.io\/)?(?:library\/)?node:(\d+)/.exec(from);
      expect(m, `${df.path}: FROM ${from} is not an official node image`).not.toBeNull();
      const minMajor = Number(/(\d+)/.exec(packageJson.engines?.node ?? "0")?.[1] ?? 0);
      expect(Number(m![1])).toBeGreaterThanOrEqual(minMajor);
      const user = df.instructions.filter((i) => i.keyword === "USER").at(-1)?.args;
      expect(user, `${df.path}: no USER, the processes would run as root`).toBeDefined();
      expect(["root", "0"]).not.toContain(user!.split(":")[0]);
    }
  });

  it("makes the mount points of pki's volumes, owned by the user the processes run as (a new volume takes their owner)", () => {
    for (const build of builds) {
      const df = dockerfileOf(build);
      const final = df.stages.length - 1;
      const user = df.instructions.filter((i) => i.keyword === "USER").at(-1)!.args.split(":")[0]!;
      const runs = df.instructions.filter((ins, i) => ins.keyword === "RUN" && stageAt(df, i) === final).map((ins) => ins.args);
      for (const dir of [COMPOSE_PKI.stateDir, COMPOSE_PKI.nats, COMPOSE_PKI.controlPlane, COMPOSE_PKI.node]) {
        const made = runs.find((r) => /\bmkdir\b/.test(r) && r.includes(dir));
        expect(made, `${df.path}: no RUN mkdir ${dir} in the runtime stage`).toBeDefined();
        expect(made!, `${df.path}: ${dir} should be chowned to ${user}: pki runs as ${user} and writes there`).toMatch(new RegExp(`\\bchown\\s+${user}(?::\\S+)?\\s[^&]*${dir.replace(/[/.]/g, "\\$&")}(\\s|$)`));
      }
    }
  });

  it("has a default command whose compiled script the runtime stage receives from the build stage", () => {
    for (const build of builds) {
      const df = dockerfileOf(build);
      expect(df.cmd, `${df.path}: an exec-form CMD`).toBeDefined();
      const script = jsScriptIn(df.cmd!, `${df.path} CMD`);
      expect(isFile(join(ROOT, script.replace(/\.js$/, ".ts"))), `${df.path}: CMD runs ${script}, compiled from no source`).toBe(true);
      const buildRun = df.instructions.findIndex((ins) => ins.keyword === "RUN" && /\bnpm\s+run\s+build\b/.test(ins.args));
      const emitted = posix.resolve(df.workdirs[buildRun]!, buildTsconfig.compilerOptions?.outDir ?? "dist", script);
      expect(copiedFromStage(df, stageAt(df, buildRun), df.stages.length - 1, emitted)).toContain(posix.resolve(df.workdirs.at(-1)!, script));
    }
  });

  it("keeps the build context free of node_modules, tests and local state, but not of the sources", () => {
    for (const build of builds) {
      const df = dockerfileOf(build);
      for (const path of ["node_modules/tsx/package.json", ".git/HEAD", "test/unit/compose.test.ts", "x.pcap", "cli/x.log", ".kubewire/state.json", "dist/node-agent/main.js"]) {
        expect(df.ignored(path), `${path} should be in .dockerignore`).toBe(true);
      }
      for (const file of [...RUNTIME_DIRS.flatMap(sourceFiles), "package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json"]) {
        expect(df.ignored(file), `${file} is excluded by .dockerignore`).toBe(false);
      }
    }
  });
});

describe("runtime dependencies of the image", () => {
  it("satisfies every bare import of the processes from dependencies, not devDependencies", () => {
    const used = new Map<string, string>();
    for (const file of RUNTIME_DIRS.flatMap(sourceFiles)) {
      for (const ref of importsOf(readText(file))) {
        if (ref.typeOnly || ref.spec.startsWith(".") || ref.spec.startsWith("/") || isBuiltin(ref.spec)) continue;
        used.set(packageNameOf(ref.spec), file);
      }
    }
    // A scan that finds nothing would pass vacuously: the processes do use NATS and msgpack.
    expect([...used.keys()]).toEqual(expect.arrayContaining(["nats", "msgpackr"]));
    const lock = JSON.parse(readText("package-lock.json")) as { packages: Record<string, { dev?: boolean }> };
    for (const [pkg, file] of used) {
      expect(Object.keys(dependencies), `${file} imports ${pkg}, which npm ci --omit=dev does not install`).toContain(pkg);
      expect(lock.packages[`node_modules/${pkg}`]?.dev, `${pkg} is locked as a dev dependency`).not.toBe(true);
    }
  });

  it("has a package-lock.json that npm ci accepts: in step with package.json, every dependency locked", () => {
    const lock = JSON.parse(readText("package-lock.json")) as {
      packages: Record<string, { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; devDependencies?: Record<string, string> }>;
    };
    const root = lock.packages[""] ?? {};
    expect(root.dependencies ?? {}, "package-lock.json's root dependencies differ from package.json").toEqual(dependencies);
    expect(root.devDependencies ?? {}, "package-lock.json's root devDependencies differ from package.json").toEqual(packageJson.devDependencies ?? {});
    // npm ci rebuilds the tree from the lock and refuses ("Missing: x from lock file") when an
    // entry's dependency, optional platform packages included, has no entry of its own.
    const resolves = (from: string, dep: string): boolean => {
      for (let base = from; ; ) {
        if (lock.packages[`${base === "" ? "" : `${base}/`}node_modules/${dep}`]) return true;
        if (base === "") return false;
        const cut = base.lastIndexOf("/node_modules/");
        base = cut < 0 ? "" : base.slice(0, cut);
      }
    };
    const missing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
        if (!resolves(path, dep)) missing.push(`${dep} (needed by ${path || "the root"})`);
      }
    }
    expect(
      missing,
      `npm ci fails on these missing lock entries; regenerate the lock against the full registry (npm install --package-lock-only):\n  ${missing.join("\n  ")}\n`,
    ).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// The NATS cluster option: deploy/compose-nats-cluster.yml layered over the compose file.

const CLUSTER_FILE = "deploy/compose-nats-cluster.yml";
const clusterText = readText(CLUSTER_FILE);
const clusterOverride = dict(parse(clusterText, { merge: true }), CLUSTER_FILE);

/**
 * The services as `-f docker-compose.yml -f deploy/compose-nats-cluster.yml` makes them, for the
 * keys the override sets on a base service: environment and depends_on merge key by key,
 * command replaces. Any other key would need compose's own rule (ports and volumes merge by
 * other ones), so the first check refuses it.
 */
function clusterServices(): Record<string, Dict> {
  const out: Record<string, Dict> = Object.fromEntries(serviceNames.map((name) => [name, { ...service(name) }]));
  for (const [name, raw] of Object.entries(dict(clusterOverride.services, `${CLUSTER_FILE}: services`))) {
    const o = dict(raw, `${CLUSTER_FILE}: services.${name}`);
    const base = out[name];
    if (!base) {
      out[name] = o;
      continue;
    }
    for (const [key, value] of Object.entries(o)) {
      base[key] = key === "command" ? value : { ...dict(base[key] ?? {}, `services.${name}.${key}`), ...dict(value, `${CLUSTER_FILE}: services.${name}.${key}`) };
    }
  }
  return out;
}

describe(`${CLUSTER_FILE} over ${COMPOSE_FILE}`, () => {
  const merged = clusterServices();
  const env = (name: string): Record<string, string> => {
    const e = dict(merged[name]!.environment ?? {}, `services.${name}.environment`);
    return Object.fromEntries(Object.entries(e).map(([k, v]) => {
      expect(typeof v === "string" || typeof v === "number", `${name}: ${k} must be a literal`).toBe(true);
      return [k, String(v)];
    }));
  };
  const natsServers = Object.keys(merged).filter((name) => merged[name]!.image === service("nats").image);
  const kubewireProcesses = Object.keys(merged).filter((name) => merged[name]!.build !== undefined && merged[name]!.restart !== "no");
  const pkiName = Object.keys(merged).find((name) => merged[name]!.build !== undefined && merged[name]!.restart === "no")!;
  const servers = loadPkiConfig(env(pkiName)).natsServers;
  const trust = { operatorJwt: "o", systemAccount: "S", systemAccountJwt: "s", account: "A", accountJwt: "a" };

  it("works with docker-compose 1.29, and changes base services only in ways whose merge is checked here", () => {
    expect(clusterOverride.name, "docker-compose 1.29 rejects the top-level name key").toBeUndefined();
    for (const m of clusterText.replace(/(^|\s)#.*$/gm, "").matchAll(/\$\{?([^}\s]*)\}?/g)) {
      expect(m[0], "interpolation must name a KUBEWIRE_COMPOSE_ variable and give a default").toMatch(/^\$\{KUBEWIRE_COMPOSE_[A-Z0-9_]+:-[^}]+\}$/);
    }
    for (const [name, o] of Object.entries(dict(clusterOverride.services, "services"))) {
      if (serviceNames.includes(name)) for (const key of Object.keys(dict(o, name))) expect(["environment", "depends_on", "command"], `${name}.${key}`).toContain(key);
    }
  });

  it("runs three nats servers, the ones pki makes the certificate and a config for (KUBEWIRE_NATS_SERVERS)", () => {
    expect(natsServers.sort()).toEqual([...servers].sort());
    expect(servers).toHaveLength(3);
    expect(servers[0], "the base file's nats is one of them: an override cannot remove it").toBe("nats");
  });

  it("gives each server its own config and JetStream volume, pki's share read-only, a health check, and a client port on 127.0.0.1", () => {
    const topVolumes = Object.keys({ ...dict(compose.volumes ?? {}, "volumes"), ...dict(clusterOverride.volumes ?? {}, `${CLUSTER_FILE}: volumes`) });
    const stores = new Set<string>();
    const hostPorts = new Set<string>();
    const portVariables = new Set<string>();
    for (const name of servers) {
      const s = merged[name]!;
      const command = stringList(s.command, `${name}.command`);
      const configFile = posix.join(COMPOSE_PKI.nats, `${name}.conf`);
      expect(command, `${name} runs its own config`).toEqual(["nats-server", "-c", configFile]);
      expect(Object.keys(composeNatsFiles(servers)), `pki writes no ${configFile}`).toContain(`${name}.conf`);
      const mounts = stringList(s.volumes, `${name}.volumes`).map((v) => v.split(":"));
      const store = mounts.find((m) => m[1] === "/data");
      expect(store, `${name}: no volume on /data`).toBeDefined();
      expect(topVolumes).toContain(store![0]);
      stores.add(store![0]!);
      expect(mounts.find((m) => m[1] === COMPOSE_PKI.nats), `${name}: pki's nats share read-only`).toEqual(["pki-nats", COMPOSE_PKI.nats, "ro"]);
      expect(s.healthcheck, `${name}: the base nats's health check`).toEqual(service("nats").healthcheck);
      expect(dict(s.depends_on, `${name}.depends_on`).pki).toEqual({ condition: "service_completed_successfully" });
      expect(s.restart).toBe("unless-stopped");
      const ports = stringList(s.ports, `${name}.ports`);
      expect(ports, `${name}: its client port on 127.0.0.1`).toHaveLength(1);
      expect(ports[0]).toMatch(/^127\.0\.0\.1:\$\{KUBEWIRE_COMPOSE_NATS(?:_\d)?_PORT:-\d+\}:4222$/);
      hostPorts.add(withDefaults(ports[0]!).split(":")[1]!);
      portVariables.add(/\$\{(\w+):-/.exec(ports[0]!)![1]!);
    }
    expect(stores.size, "each server its own JetStream volume").toBe(3);
    expect(hostPorts.size, "each server its own default host port").toBe(3);
    expect(portVariables.size, "each server's host port moved by its own variable").toBe(3);
  });

  it("names each server apart and routes it to the others with mutual TLS", () => {
    const configs = servers.map((name) => composeNatsConfig(trust, COMPOSE_PKI, { name, servers }));
    expect(configs.map((c) => /^server_name: "([^"]+)"$/m.exec(c)?.[1])).toEqual(servers);
    for (const c of configs) {
      expect(c).toMatch(/^port: 4222$/m);
      expect(c).toMatch(new RegExp(`^cluster \\{ .*routes: \\[${servers.map((s) => `"nats-route://${s}:${COMPOSE_NATS_CLUSTER.port}"`).join(", ")}\\].*verify: true \\}`, "m"));
    }
  });

  it("gives every kubewire process the three servers and has it wait for each, and the control plane 3 replicas", () => {
    for (const name of kubewireProcesses) {
      for (const key of Object.keys(env(name))) expect(Object.keys(CONFIG_ENV_VARS), `${name}: ${key}`).toContain(key);
      const urls = loadClusterConfig(env(name)).natsUrl.split(",");
      expect(urls, name).toEqual(servers.map((s) => `tls://${s}:4222`));
      const deps = dict(merged[name]!.depends_on, `${name}.depends_on`);
      for (const s of servers) expect(deps[s], `${name} waits for ${s}`).toEqual({ condition: "service_healthy" });
    }
    const controlPlane = kubewireProcesses.find((name) => commandOf(name).includes("control-plane/main.js"))!;
    expect(loadControlPlaneConfig(env(controlPlane)).natsReplicas).toBe(servers.length);
  });
});
