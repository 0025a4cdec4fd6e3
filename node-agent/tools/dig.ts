/**
 * dig, printing as BIND 9.18's does (bin/dig/dig.c printmessage / received, dighost.c), over the
 * pod's UDP and TCP through the stub resolver's `query` (node-agent/dns/stub.ts).
 *
 * Behaviour kept from BIND 9.18:
 * - the greeting "\n; <<>> DiG 9.18.30 <<>> ARGS" (with "; (N server found)" after @server) and
 *   ";; global options: +cmd", printed once, with the first answer or before the final error;
 * - EDNS0 by default with a 1232-byte payload and an 8-byte client COOKIE; RD set;
 * - the records as dns_master_rdatasettotext writes them with dig's style (masterdump.c: owner,
 *   then tab stops of 8 to columns 24 (TTL), 32 (class), 40 (type) and 48 (data), at least one
 *   space); the question line with ";" and the class and type at columns 32 and 40;
 * - UDP timeout 5 s and TCP 10 s unless +time or resolv.conf's timeout; 3 tries unless +tries,
 *   +retry or resolv.conf's attempts: a timed-out UDP query is sent again to the same server
 *   while tries are left, then the next server gets the last one (recv_done);
 * - a truncated UDP answer is asked again over TCP (";; Truncated, retrying in TCP mode.")
 *   unless +ignore; ANY goes over TCP unless +notcp;
 * - +search uses resolv.conf's search list and ndots as dighost does: with at least ndots dots
 *   the name as is only, otherwise each domain then the name as is, moving on on NXDOMAIN only
 *   (next_origin); that is resolvconf.ts `candidates(…, "musl")`. Without +search the name is
 *   asked as given;
 * - exit codes: 0 with an answer (whatever its RCODE), 9 no server reached, 1 usage or an
 *   @server that does not resolve (fatal() before anything failed).
 * Not emulated: +trace, +nssearch, zone transfers, TSIG, batch files, IPv6 servers.
 */
import type { ExecResult } from "../../cluster/types.ts";
import { formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/index.ts";
import { DNS_PORT, lookupHost, query, reverseName, stubConfig, type Ignored, type MessageView, type QueryResult, type Rdata, type ResourceRecord, type StubConfig } from "../dns/stub.ts";
import { candidates } from "../dns/resolvconf.ts";
import { RCODE, type EdnsOption } from "../dns/wire.ts";
import { podText, stubIo, type ToolContext } from "./common.ts";

export const BIND_VERSION = "9.18.30";
/** dighost.h DEFAULT_EDNS_BUFSIZE (9.18). */
const DEFAULT_EDNS_BUFSIZE = 1232;
/** dighost.h UDP_TIMEOUT and TCP_TIMEOUT, seconds. */
const UDP_TIMEOUT_S = 5;
const TCP_TIMEOUT_S = 10;
/** irs resconf's default attempts, which dig uses as its tries. */
const DEFAULT_TRIES = 3;
const COOKIE_OPTION = 10;
const NSID_OPTION = 3;

// ---------------------------------------------------------------------------------------------
// Presentation (dns_rdata_totext, dns_rdatatype_totext)

export const TYPE_CODES: Readonly<Record<string, number>> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  HINFO: 13,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  NAPTR: 35,
  DNAME: 39,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  CAA: 257,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
};

/** A type mnemonic or RFC 3597 "TYPE<n>" to its number; undefined for anything else. */
export function parseType(text: string): number | undefined {
  const upper = text.toUpperCase();
  const known = TYPE_CODES[upper];
  if (known !== undefined) return known;
  const m = /^TYPE(\d{1,5})$/.exec(upper);
  return m && Number(m[1]) <= 65535 ? Number(m[1]) : undefined;
}

export function typeText(type: number): string {
  for (const [name, code] of Object.entries(TYPE_CODES)) if (code === type) return name;
  return `TYPE${type}`;
}

export function classText(klass: number): string {
  return klass === 1 ? "IN" : klass === 3 ? "CH" : klass === 4 ? "HS" : klass === 255 ? "ANY" : `CLASS${klass}`;
}

const RCODE_TEXT = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "RESERVED11", "RESERVED12", "RESERVED13", "RESERVED14", "RESERVED15", "BADVERS"];

export function rcodeText(rcode: number): string {
  if (rcode === 23) return "BADCOOKIE";
  return RCODE_TEXT[rcode] ?? `RESERVED${rcode}`;
}

const OPCODE_TEXT = ["QUERY", "IQUERY", "STATUS", "RESERVED3", "NOTIFY", "UPDATE"];

/** An absolute name as BIND prints it: with the trailing dot; the root is ".". */
export function absolute(name: string): string {
  return name === "." || name === "" ? "." : `${name.replace(/\.$/, "")}.`;
}

/** txt_totext: each string quoted, `"` and `\` escaped, other non-printables as \DDD. */
function txtString(bytes: Uint8Array): string {
  let out = '"';
  for (const b of bytes) {
    if (b < 0x20 || b >= 0x7f) out += `\\${String(b).padStart(3, "0")}`;
    else if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else out += String.fromCharCode(b);
  }
  return `${out}"`;
}

/** The RDATA in presentation form, one line (dns_rdata_totext). */
export function rdataText(rdata: Rdata): string {
  switch (rdata.kind) {
    case "a":
    case "aaaa":
      return rdata.address;
    case "name":
      return absolute(rdata.target);
    case "mx":
      return `${rdata.preference} ${absolute(rdata.exchange)}`;
    case "srv":
      return `${rdata.priority} ${rdata.weight} ${rdata.port} ${absolute(rdata.target)}`;
    case "soa":
      return `${absolute(rdata.mname)} ${absolute(rdata.rname)} ${rdata.serial} ${rdata.refresh} ${rdata.retry} ${rdata.expire} ${rdata.minimum}`;
    case "txt":
      return rdata.strings.map(txtString).join(" ");
    case "unknown":
      // RFC 3597 §5.
      return `\\# ${rdata.bytes.length}${rdata.bytes.length > 0 ? ` ${Buffer.from(rdata.bytes).toString("hex").toUpperCase()}` : ""}`;
  }
}

/** masterdump.c indent(): tabs to the tab stop at or before `to`, then spaces; at least one. */
function indent(from: number, to: number): { text: string; column: number } {
  const target = to < from + 1 ? from + 1 : to;
  const tabs = Math.max(0, Math.floor(target / 8) - Math.floor(from / 8));
  const start = tabs > 0 ? Math.floor(target / 8) * 8 : from;
  return { text: "\t".repeat(tabs) + " ".repeat(target - start), column: target };
}

/** Fields at dig's columns: owner, then TTL at 24, class at 32, type at 40, data at 48. */
function columns(first: string, rest: readonly [number, string][]): string {
  let line = first;
  let col = first.length;
  for (const [at, text] of rest) {
    const pad = indent(col, at);
    line += pad.text + text;
    col = pad.column + text.length;
  }
  return line;
}

export function recordLine(rr: ResourceRecord): string {
  return columns(absolute(rr.name), [
    [24, String(rr.ttl)],
    [32, rr.class],
    [40, rr.type],
    [48, rdataText(rr.rdata)],
  ]);
}

function questionLine(q: NonNullable<MessageView["question"]>): string {
  return `;${columns(absolute(q.name), [
    [32, classText(q.class)],
    [40, typeText(q.type)],
  ])}`;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** WHEN: strftime "%a %b %d %H:%M:%S %Z %Y", in UTC as containers run. */
export function whenText(d: Date): string {
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC ${d.getUTCFullYear()}`;
}

// ---------------------------------------------------------------------------------------------
// The exchange dig and nslookup share (dighost.c)

export interface Server {
  addr: Ipv4Addr;
  /** What the user wrote for it (the SERVER line's parenthesis, nslookup's "Server:"). */
  userarg: string;
}

export interface Lookup {
  /** As the user typed it (dig's error lines name it so). */
  textname: string;
  qtype: number;
  servers: Server[];
  tcp: boolean;
  recurse: boolean;
  /** -1: no EDNS. */
  edns: number;
  udpsize: number;
  sendCookie: boolean;
  ignoreTc: boolean;
  /** What dig calls retries: tries left, shared by every server and search name (dighost). */
  retries: number;
  comments: boolean;
  /** dig's +fail (the default): a SERVFAIL is the answer; nslookup tries the next server. */
  servfailStops: boolean;
  /** nslookup with the default servers: an answer without RA sends it to the next server. */
  checkRa: boolean;
}

export interface HostEnv {
  ctx: ToolContext;
  port: number;
  /** Seconds; 0 for the transport's default. */
  timeoutS: number;
  out: string[];
  /** Printed before "no servers could be reached" when nothing printed it yet (the greeting). */
  pendingCmdline(): string;
}

export type Exchanged = { kind: "response"; r: Extract<QueryResult, { kind: "response" }>; server: Server; tcp: boolean; cookie: Uint8Array | undefined } | { kind: "failed" };

function warnIgnored(out: string[], why: Ignored): void {
  if (why.kind === "idMismatch") out.push(`;; Warning: ID mismatch: expected ID ${why.expected}, got ${why.got}\n`);
  else if (why.kind === "questionMismatch") out.push(`;; ;; Question section mismatch: got ${why.name === "." ? "." : why.name}/${typeText(why.type)}/${classText(why.class)}\n`);
  else if (why.kind === "notResponse") out.push(";; Warning: query response not set\n");
}

/**
 * One name through the servers as dighost does: tries count down across servers, a timeout
 * retries the same server (UDP) or starts over (TCP), a truncated answer starts over in TCP.
 */
export async function exchange(env: HostEnv, lk: Lookup, qname: string): Promise<Exchanged> {
  const io = stubIo(env.ctx);
  let tcp = lk.tcp;
  let idx = 0;
  for (;;) {
    const server = lk.servers[idx]!;
    const timeoutMs = (env.timeoutS > 0 ? env.timeoutS : tcp ? TCP_TIMEOUT_S : UDP_TIMEOUT_S) * 1000;
    let cookie: Uint8Array | undefined;
    const options: EdnsOption[] = [];
    if (lk.edns >= 0 && lk.sendCookie) {
      cookie = Uint8Array.from({ length: 8 }, () => Math.floor(io.rng() * 256));
      options.push({ code: COOKIE_OPTION, data: cookie });
    }
    const r = await query(io, server.addr, env.port, qname, lk.qtype, {
      tcp,
      timeoutMs,
      rd: lk.recurse,
      ...(lk.edns >= 0 ? { edns: { udpPayloadSize: lk.udpsize > 0 ? lk.udpsize : DEFAULT_EDNS_BUFSIZE, options } } : {}),
      onIgnored: (why) => warnIgnored(env.out, why),
    });
    if (r.kind === "response") {
      if (r.message.header.tc && !lk.ignoreTc && !tcp) {
        if (lk.comments) env.out.push(";; Truncated, retrying in TCP mode.\n");
        tcp = true;
        idx = 0;
        continue;
      }
      const h = r.message.header;
      const servfail = r.message.rcode === RCODE.SERVFAIL && !lk.servfailStops;
      if (servfail || (lk.checkRa && !h.ra && lk.recurse)) {
        const err = servfail ? "SERVFAIL reply" : "recursion not available";
        if (idx + 1 < lk.servers.length) {
          if (lk.comments) env.out.push(`;; Got ${err} from ${formatIpv4(server.addr)}, trying next server\n`);
          idx++;
          continue;
        }
        if (lk.comments) env.out.push(`;; Got ${err} from ${formatIpv4(server.addr)}\n`);
      }
      return { kind: "response", r, server, tcp, cookie };
    }
    const text = r.kind === "timeout" ? "timed out" : r.message;
    const where = `${formatIpv4(server.addr)}#${env.port}`;
    const connectFailed = tcp && r.stage === "connect";
    if (connectFailed) env.out.push(`;; Connection to ${where}(${server.userarg}) for ${lk.textname} failed: ${text}.\n`);
    else env.out.push(`;; communications error to ${where}: ${text}\n`);
    if (lk.retries > 1) {
      lk.retries--;
      if (tcp) idx = 0; // requeue_lookup: the whole server list again
      continue;
    }
    if (idx + 1 < lk.servers.length) {
      idx++;
      continue;
    }
    if (!connectFailed) env.out.push(env.pendingCmdline());
    env.out.push(";; no servers could be reached\n");
    return { kind: "failed" };
  }
}

/** The nameservers of the pod's resolv.conf, as dig's get_server_list takes them. */
export function resolvServers(conf: StubConfig): Server[] {
  return conf.nameservers.map((addr) => ({ addr, userarg: formatIpv4(addr) }));
}

/** bind9_getaddresses: a dotted quad, or a name through the pod's resolver. */
export async function serverAddresses(ctx: ToolContext, spec: string): Promise<Server[] | undefined> {
  const literal = parseIpv4Addr(spec);
  if (literal !== undefined) return [{ addr: literal, userarg: spec }];
  const conf = podText(ctx, "/etc/resolv.conf");
  if (conf === undefined) return undefined;
  const r = await lookupHost(stubIo(ctx), spec, conf, podText(ctx, "/etc/hosts"));
  return r.kind === "found" ? r.addresses.map((addr) => ({ addr, userarg: spec })) : undefined;
}

// ---------------------------------------------------------------------------------------------
// dig

interface DigLookup extends Lookup {
  sectionQuestion: boolean;
  sectionAnswer: boolean;
  sectionAuthority: boolean;
  sectionAdditional: boolean;
  stats: boolean;
  typeSet: boolean;
  tcpSet: boolean;
  /** The server list given by @server for this lookup (else resolv.conf's). */
  given: Server[] | undefined;
}

interface Globals {
  shortForm: boolean;
  printcmd: boolean;
  usesearch: boolean;
  timeoutS: number;
  tries: number | undefined;
  port: number;
  addresscount: number;
}

/** Bad arguments: dig's usage text on stderr and its exit code. */
class DigUsage extends Error {
  override readonly name = "DigUsage";
  constructor(
    readonly stderr: string,
    readonly code: number,
  ) {
    super(stderr);
  }
}

const USAGE =
  "Usage:  dig [@global-server] [domain] [q-type] [q-class] {q-opt}\n" +
  "            {global-d-opt} host [@local-server] {local-d-opt}\n" +
  "            [ host [@local-server] {local-d-opt} [...]]\n" +
  '\nUse "dig -h" (or "dig -h | more") for complete list of options\n';

function freshLookup(): DigLookup {
  return {
    textname: "",
    qtype: 1,
    servers: [],
    tcp: false,
    recurse: true,
    edns: 0,
    udpsize: 0,
    sendCookie: true,
    ignoreTc: false,
    retries: 0,
    comments: true,
    servfailStops: true,
    checkRa: false,
    sectionQuestion: true,
    sectionAnswer: true,
    sectionAuthority: true,
    sectionAdditional: true,
    stats: true,
    typeSet: false,
    tcpSet: false,
    given: undefined,
  };
}

/** The +options dig knows here, in the order a prefix is matched (dig accepts prefixes). */
const PLUS = ["short", "tcp", "vc", "search", "showsearch", "defname", "all", "answer", "authority", "additional", "question", "comments", "cookie", "stats", "cmd", "recurse", "rdflag", "bufsize", "edns", "timeout", "tries", "retry", "ignore", "fail"] as const;
type Plus = (typeof PLUS)[number];

function plusOption(option: string, lk: DigLookup, g: Globals): void {
  const eq = option.indexOf("=");
  let cmd = (eq >= 0 ? option.slice(0, eq) : option).toLowerCase();
  const value = eq >= 0 ? option.slice(eq + 1) : undefined;
  let state = true;
  if (cmd.startsWith("no")) {
    state = false;
    cmd = cmd.slice(2);
  }
  const invalid = () => new DigUsage(`Invalid option: +${option}\n${USAGE}`, 1);
  if (cmd === "") throw invalid();
  const name: Plus | undefined = PLUS.find((p) => p === cmd) ?? PLUS.find((p) => p.startsWith(cmd));
  const uint = (max: number): number => {
    if (value === undefined || !state || !/^\d+$/.test(value) || Number(value) > max) throw invalid();
    return Number(value);
  };
  switch (name) {
    case "short":
      g.shortForm = state;
      if (state) {
        g.printcmd = false;
        Object.assign(lk, { sectionAdditional: false, sectionAnswer: true, sectionAuthority: false, sectionQuestion: false, comments: false, stats: false });
      }
      return;
    case "tcp":
    case "vc":
      lk.tcp = state;
      lk.tcpSet = true;
      return;
    case "search":
    case "showsearch":
    case "defname":
      g.usesearch = state;
      return;
    case "all":
      Object.assign(lk, { sectionQuestion: state, sectionAuthority: state, sectionAnswer: state, sectionAdditional: state, comments: state, stats: state });
      g.printcmd = state;
      return;
    case "answer":
      lk.sectionAnswer = state;
      return;
    case "authority":
      lk.sectionAuthority = state;
      return;
    case "additional":
      lk.sectionAdditional = state;
      return;
    case "question":
      lk.sectionQuestion = state;
      return;
    case "comments":
      lk.comments = state;
      return;
    case "cookie":
      if (state && lk.edns < 0) lk.edns = 0;
      lk.sendCookie = state;
      return;
    case "stats":
      lk.stats = state;
      return;
    case "cmd":
      g.printcmd = state;
      return;
    case "recurse":
    case "rdflag":
      lk.recurse = state;
      return;
    case "bufsize":
      if (!state) throw invalid();
      lk.udpsize = value === undefined ? DEFAULT_EDNS_BUFSIZE : uint(65535);
      return;
    case "edns":
      lk.edns = !state ? -1 : value === undefined ? 0 : uint(255);
      return;
    case "timeout":
      g.timeoutS = Math.max(1, uint(0xffffffff));
      return;
    case "tries":
      lk.retries = Math.max(1, uint(255));
      g.tries = lk.retries;
      return;
    case "retry":
      lk.retries = uint(254) + 1;
      g.tries = lk.retries;
      return;
    case "ignore":
      lk.ignoreTc = state;
      return;
    case "fail":
      return;
    case undefined:
      throw invalid();
  }
}

export async function dig(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  try {
    return await digMain(ctx, argv);
  } catch (err) {
    if (err instanceof DigUsage) return { exitCode: err.code, stdout: "", stderr: err.stderr };
    throw err;
  }
}

async function digMain(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  const confText = podText(ctx, "/etc/resolv.conf") ?? "";
  const conf = stubConfig(confText);
  const g: Globals = { shortForm: false, printcmd: true, usesearch: false, timeoutS: conf.timeoutSet ? conf.timeoutS : 0, tries: undefined, port: DNS_PORT, addresscount: 0 };
  const defaults = freshLookup();
  const lookups: DigLookup[] = [];
  const errs: string[] = [];
  let current = defaults;
  // -t and -c close the positional type/class (dig.c open_type_class).
  let openTypeClass = true;
  // The first name is the default lookup itself; later ones start from a copy of it (dig.c).
  const newLookup = (textname: string): DigLookup => {
    current = lookups.length === 0 ? defaults : { ...defaults, servers: [...defaults.servers], given: defaults.given ? [...defaults.given] : undefined };
    current.textname = textname;
    lookups.push(current);
    return current;
  };
  const setType = (t: number): void => {
    if (current.typeSet) errs.push(";; Warning, extra type option\n");
    current.qtype = t;
    current.typeSet = true;
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith("@")) {
      const servers = await serverAddresses(ctx, arg.slice(1));
      // dighost fatal(): exit 1 while nothing has failed yet.
      if (!servers) return { exitCode: 1, stdout: "", stderr: `dig: couldn't get address for '${arg.slice(1)}': not found\n` };
      current.given = servers;
      g.addresscount = servers.length;
    } else if (arg.startsWith("+")) {
      plusOption(arg.slice(1), current, g);
    } else if (arg.startsWith("-") && arg.length > 1) {
      const flag = arg[1]!;
      if (flag === "h") return { exitCode: 0, stdout: USAGE.split("\n\n")[0]!, stderr: "" };
      if (flag === "v") return { exitCode: 0, stdout: "", stderr: `DiG ${BIND_VERSION}\n` };
      if (flag === "4" || flag === "6") continue;
      if (!"ptxcq".includes(flag)) throw new DigUsage(`Invalid option: ${arg.slice(1)}\n${USAGE}`, 1);
      const value = arg.length > 2 ? arg.slice(2) : argv[++i];
      if (value === undefined) throw new DigUsage(`Invalid option: ${arg.slice(1)}\n${USAGE}`, 1);
      if (flag === "p") {
        if (!/^\d+$/.test(value) || Number(value) > 65535) return { exitCode: 1, stdout: "", stderr: "dig: Couldn't parse port number\n" };
        g.port = Number(value);
      } else if (flag === "t") {
        openTypeClass = false;
        const t = parseType(value);
        if (t === undefined) errs.push(`;; Warning, ignoring invalid type ${value}\n`);
        else setType(t);
      } else if (flag === "c") {
        openTypeClass = false;
        if (value.toUpperCase() !== "IN") errs.push(`;; Warning, ignoring invalid class ${value}\n`);
      } else if (flag === "x") {
        const addr = parseIpv4Addr(value);
        if (addr === undefined) return { exitCode: 1, stdout: "", stderr: `Invalid IP address ${value}\n` };
        const lk = newLookup(`${reverseName(addr)}.`);
        if (!lk.typeSet) lk.qtype = 12;
      } else {
        newLookup(value);
      }
    } else {
      // Anything that is not an option: a type, the class, or a name (dig.c parse_args).
      const t = openTypeClass ? parseType(arg) : undefined;
      if (t !== undefined) setType(t);
      else if (!(openTypeClass && arg.toUpperCase() === "IN")) newLookup(arg);
    }
  }
  if (lookups.length === 0) {
    const lk = newLookup(".");
    lk.qtype = 2;
  }

  const out: string[] = [];
  let cmdline = g.printcmd
    ? `\n; <<>> DiG ${BIND_VERSION} <<>> ${argv.join(" ")}\n` +
      (g.addresscount > 0 ? `; (${g.addresscount} server${g.addresscount > 1 ? "s" : ""} found)\n` : "") +
      `;; global options:${g.shortForm ? " +short" : ""}${g.printcmd ? " +cmd" : ""}\n`
    : "";
  const takeCmdline = (): string => {
    const c = cmdline;
    cmdline = "";
    return c;
  };
  const env: HostEnv = { ctx, port: g.port, timeoutS: g.timeoutS, out, pendingCmdline: takeCmdline };
  const tries = g.tries ?? (conf.attemptsSet ? Math.max(1, conf.attempts) : DEFAULT_TRIES);
  let exitCode = 0;
  for (const lk of lookups) {
    lk.servers = lk.given ?? (confText === "" ? [{ addr: 0x7f000001, userarg: "127.0.0.1" }] : resolvServers(conf));
    if (lk.retries === 0) lk.retries = tries;
    // ANY goes over TCP unless +[no]tcp said otherwise (dig.c).
    if (lk.qtype === 255 && !lk.tcpSet) lk.tcp = true;
    const asIs = lk.textname.replace(/\.$/, "") || ".";
    const searched = g.usesearch ? candidates(lk.textname, { searches: conf.searches, ndots: conf.ndots }, "musl") : [];
    const names = searched.length > 0 ? searched : [asIs];
    let done = false;
    for (let n = 0; n < names.length && !done; n++) {
      const qname = names[n]!;
      const ex = await exchange(env, lk, qname === "." ? "" : qname);
      if (ex.kind === "failed") {
        exitCode = 9;
        done = true;
        continue;
      }
      const msg = ex.r.message;
      if (msg.rcode === RCODE.NXDOMAIN && n + 1 < names.length) continue;
      out.push(printMessage(lk, g, ex, takeCmdline));
      out.push(received(ctx, lk, g, ex));
      done = true;
    }
  }
  return { exitCode, stdout: out.join(""), stderr: errs.join("") };
}

/** printmessage (dig.c) for an answer. */
function printMessage(lk: DigLookup, g: Globals, ex: Extract<Exchanged, { kind: "response" }>, takeCmdline: () => string): string {
  const msg = ex.r.message;
  const h = msg.header;
  let s = "";
  const cmd = takeCmdline();
  if (!g.shortForm && g.printcmd) s += cmd;
  if (lk.comments && !g.shortForm) {
    s += ";; Got answer:\n";
    s += `;; ->>HEADER<<- opcode: ${OPCODE_TEXT[h.opcode] ?? `RESERVED${h.opcode}`}, status: ${rcodeText(msg.rcode)}, id: ${h.id}\n`;
    const flags = [h.qr && "qr", h.aa && "aa", h.tc && "tc", h.rd && "rd", h.ra && "ra", h.ad && "ad", h.cd && "cd"].filter((f): f is string => typeof f === "string");
    s += `;; flags:${flags.map((f) => ` ${f}`).join("")}${h.z ? "; MBZ: 0x4" : ""}; QUERY: ${h.qdcount}, ANSWER: ${h.ancount}, AUTHORITY: ${h.nscount}, ADDITIONAL: ${h.arcount}\n`;
    if (h.rd && !h.ra) s += ";; WARNING: recursion requested but not available\n";
    if (lk.edns >= 0 && !msg.edns && (msg.rcode === RCODE.FORMERR || msg.rcode === RCODE.NOTIMP)) {
      s += `\n;; WARNING: EDNS query returned status ${rcodeText(msg.rcode)} - retry with '+noedns'\n`;
    }
  }
  let buf = "";
  if (lk.comments && !g.shortForm && msg.edns) buf += optText(msg, ex.cookie);
  if (lk.sectionQuestion && !g.shortForm && msg.question) {
    if (lk.comments) buf += ";; QUESTION SECTION:\n";
    buf += `${questionLine(msg.question)}\n`;
    if (lk.comments) buf += "\n";
  }
  if (lk.sectionAnswer) {
    if (g.shortForm) buf += msg.answers.map((rr) => `${rdataText(rr.rdata)}\n`).join("");
    else buf += section("ANSWER", msg.answers, lk.comments);
  }
  if (lk.sectionAuthority && !g.shortForm) buf += section("AUTHORITY", msg.authorities, lk.comments);
  if (lk.sectionAdditional && !g.shortForm) buf += section("ADDITIONAL", msg.additionals, lk.comments);
  if (lk.comments && !g.shortForm) s += "\n";
  return s + buf;
}

function section(title: string, records: readonly ResourceRecord[], comments: boolean): string {
  if (records.length === 0) return "";
  return (comments ? `;; ${title} SECTION:\n` : "") + records.map((rr) => `${recordLine(rr)}\n`).join("") + (comments ? "\n" : "");
}

/** dns_message_pseudosectiontotext for the OPT record. */
function optText(msg: MessageView, cookie: Uint8Array | undefined): string {
  const e = msg.edns!;
  const mbz = e.flags & 0x7fff;
  let s = ";; OPT PSEUDOSECTION:\n";
  s += `; EDNS: version: ${e.version}, flags:${e.do ? " do" : ""}${mbz !== 0 ? `; MBZ: 0x${mbz.toString(16).padStart(4, "0")}, udp: ` : "; udp: "}${e.udpPayloadSize}\n`;
  for (const o of e.options) {
    if (o.code === COOKIE_OPTION) {
      const ok = cookie !== undefined && o.data.length >= 8 && o.data.subarray(0, 8).every((b, i) => b === cookie[i]);
      s += `; COOKIE: ${hex(o.data)}${ok ? (o.data.length >= 16 ? " (good)" : " (echoed)") : " (bad)"}\n`;
      continue;
    }
    const label = o.code === NSID_OPTION ? "; NSID:" : `; OPT=${o.code}:`;
    const printable = [...o.data].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    s += o.data.length > 0 ? `${label} ${[...o.data].map((b) => `${b.toString(16).padStart(2, "0")} `).join("")}("${printable}")\n` : `${label}\n`;
  }
  return s;
}

/** received (dig.c): the statistics after an answer. */
function received(ctx: ToolContext, lk: DigLookup, g: Globals, ex: Extract<Exchanged, { kind: "response" }>): string {
  if (g.shortForm || !lk.stats) return "";
  const r = ex.r;
  const when = ctx.wallTime?.() ?? new Date();
  return (
    `;; Query time: ${Math.floor(r.rttMs)} msec\n` +
    `;; SERVER: ${formatIpv4(r.server)}#${r.port}(${ex.server.userarg}) (${ex.tcp ? "TCP" : "UDP"})\n` +
    `;; WHEN: ${whenText(when)}\n` +
    `;; MSG SIZE  rcvd: ${r.bytes.length}\n\n`
  );
}
