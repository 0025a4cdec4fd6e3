/**
 * The stub resolver of a pod: what its libc (and dig, nslookup) send to the cluster DNS, as real
 * DNS messages over the pod's own UDP and TCP. Pure but for the edge: the I/O goes through the
 * `io` argument (the pod's UDP sockets, its TCP, a clock and a random source), nothing else.
 *
 * Design notes:
 * - One exchange (`query`): a random 16-bit ID and a random ephemeral source port per query, and
 *   only a response from the server's address and port whose ID and question match the query is
 *   taken (RFC 5452 §9.1, §4.5); anything else is reported to `onIgnored` and the wait goes on
 *   (glibc send_dg drops a "spurious UDP packet" the same way). TCP carries the message behind
 *   its two-byte length (RFC 1035 §4.2.2). Every socket opened is closed on every path.
 * - A lookup (`lookupHost`) is glibc's getaddrinfo for AF_INET with `hosts: files dns`:
 *   /etc/hosts first, then DNS A queries (the emulated cluster is IPv4-only, so the AAAA half of
 *   an AF_UNSPEC lookup is left out). The names tried and their order come from resolvconf.ts
 *   `candidates` (res_nsearch); when to stop follows __res_context_search (resolv/res_query.c):
 *   NXDOMAIN and NODATA move on to the next search domain, SERVFAIL moves on, a timeout ends the
 *   search (the as-is name is still tried if it was not), ECONNREFUSED from every server ends
 *   the lookup. Each query goes to the nameservers in order, `attempts` rounds (__res_context_send,
 *   resolv/res_send.c), each UDP wait `timeout << ns` seconds divided by the server count for
 *   ns > 0 (send_dg); SERVFAIL, NOTIMP, REFUSED and a lame answer (no records, neither AA nor RA)
 *   try the next server; a truncated answer is asked again over TCP of the same server, then TCP
 *   only (RFC 7766 §5; send_vc "at most one attempt per server"). Defaults and limits are
 *   resolv.conf(5)'s: timeout 5 s (max 30), attempts 2 (max 5), at most 3 nameservers,
 *   127.0.0.1 when there is none; `options use-vc` (TCP always) and `edns0` (OPT, 1200 bytes,
 *   RESOLV_EDNS_BUFFER_SIZE) are honoured, `rotate` is not.
 * - A CNAME chain inside the answer is followed (nss_dns getanswer_r): the addresses are those
 *   owned by the end of the chain, which is the canonical name; the names before it are aliases.
 */
import { formatIpv4, parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/index.ts";
import type { UdpMeta } from "../netns.ts";
import type { DatagramErrorHandler, TcpApi, TcpSocket } from "../tcp/api.ts";
import { candidates, parseResolvConf, resolverConfig } from "./resolvconf.ts";
import { QTYPE, RCODE, TCP_MAX_SIZE, decodeResponse, encodeQuery, nameToLabels, type DecodedResponse, type EdnsOption, type SoaData, type Transport } from "./wire.ts";

// ---------------------------------------------------------------------------------------------
// The edge

/** The UDP part of a pod's netns the stub needs (Netns and the test fakes satisfy it). */
export interface StubUdp {
  bindUdp(port: number, handler: (payload: Uint8Array, meta: UdpMeta) => void, onError?: DatagramErrorHandler): { kind: "bound"; port: number } | { kind: "inUse" };
  sendUdp(dst: Ipv4Addr, dstPort: number, srcPort: number, payload: Uint8Array): { readonly kind: string };
  unbindUdp(port: number): void;
}

export interface StubClock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
  /** A cancellable timer; without it a wait is a `sleep` left to run out. */
  schedule?(ms: number, fn: () => void): () => void;
}

/** Everything the stub reaches outside itself. */
export interface StubIo {
  readonly udp: StubUdp;
  readonly tcp: TcpApi;
  readonly clock: StubClock;
  /** Uniform in [0, 1): query IDs, source ports (RFC 5452 §9.2 wants both unpredictable). */
  readonly rng: () => number;
}

export const DNS_PORT = 53;
/** Linux's net.ipv4.ip_local_port_range, where a UDP socket's port is drawn. */
const EPHEMERAL_FIRST = 32768;
const EPHEMERAL_COUNT = 60999 - 32768 + 1;
const BIND_TRIES = 16;

function timer(clock: StubClock, ms: number, fn: () => void): () => void {
  if (clock.schedule) return clock.schedule(Math.max(0, ms), fn);
  let live = true;
  void clock.sleep(Math.max(0, ms)).then(() => {
    if (live) fn();
  });
  return () => void (live = false);
}

// ---------------------------------------------------------------------------------------------
// Reading responses

export interface Header {
  readonly id: number;
  readonly qr: boolean;
  readonly opcode: number;
  readonly aa: boolean;
  readonly tc: boolean;
  readonly rd: boolean;
  readonly ra: boolean;
  /** The Z bit (0x0040), which must be zero. */
  readonly z: boolean;
  readonly ad: boolean;
  readonly cd: boolean;
  /** The header's 4 bits; `MessageView.rcode` adds the OPT's upper bits. */
  readonly rcode: number;
  readonly qdcount: number;
  readonly ancount: number;
  readonly nscount: number;
  readonly arcount: number;
}

/** The fixed header (RFC 1035 §4.1.1); undefined under 12 bytes. */
export function readHeader(bytes: Uint8Array): Header | undefined {
  if (bytes.length < 12) return undefined;
  const u16 = (o: number) => (bytes[o]! << 8) | bytes[o + 1]!;
  const f = u16(2);
  return {
    id: u16(0),
    qr: (f & 0x8000) !== 0,
    opcode: (f >> 11) & 0xf,
    aa: (f & 0x0400) !== 0,
    tc: (f & 0x0200) !== 0,
    rd: (f & 0x0100) !== 0,
    ra: (f & 0x0080) !== 0,
    z: (f & 0x0040) !== 0,
    ad: (f & 0x0020) !== 0,
    cd: (f & 0x0010) !== 0,
    rcode: f & 0xf,
    qdcount: u16(4),
    ancount: u16(6),
    nscount: u16(8),
    arcount: u16(10),
  };
}

/** The first question as numbers (dns-packet names the type; matching wants the number). */
function questionAt12(bytes: Uint8Array): { type: number; class: number } | undefined {
  let off = 12;
  for (let guard = 0; guard < 128; guard++) {
    const len = bytes[off];
    if (len === undefined) return undefined;
    if (len === 0) {
      off += 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      off += 2;
      break;
    }
    if ((len & 0xc0) !== 0) return undefined;
    off += 1 + len;
  }
  if (off + 4 > bytes.length) return undefined;
  return { type: (bytes[off]! << 8) | bytes[off + 1]!, class: (bytes[off + 2]! << 8) | bytes[off + 3]! };
}

export type Rdata =
  | { readonly kind: "a"; readonly address: string }
  | { readonly kind: "aaaa"; readonly address: string }
  /** NS, CNAME, PTR, DNAME: one domain name. */
  | { readonly kind: "name"; readonly target: string }
  | { readonly kind: "mx"; readonly preference: number; readonly exchange: string }
  | { readonly kind: "srv"; readonly priority: number; readonly weight: number; readonly port: number; readonly target: string }
  | ({ readonly kind: "soa" } & SoaData)
  | { readonly kind: "txt"; readonly strings: readonly Uint8Array[] }
  | { readonly kind: "unknown"; readonly bytes: Uint8Array };

/** A record as a tool prints it. Names without the trailing dot; "." is the root. */
export interface ResourceRecord {
  readonly name: string;
  /** The mnemonic ("A", "SRV"), or "TYPE<n>" (RFC 3597 §5). */
  readonly type: string;
  /** "IN", or "CLASS<n>". */
  readonly class: string;
  readonly ttl: number;
  readonly rdata: Rdata;
}

export interface EdnsView {
  readonly version: number;
  readonly udpPayloadSize: number;
  readonly do: boolean;
  /** The 16 flag bits of the OPT TTL (DO is 0x8000). */
  readonly flags: number;
  readonly options: readonly EdnsOption[];
}

/** A response as the tools read it. */
export interface MessageView {
  readonly header: Header;
  /** The full RCODE: the header's 4 bits and the OPT's extended 8 (RFC 6891 §6.1.3). */
  readonly rcode: number;
  readonly question: { readonly name: string; readonly type: number; readonly class: number } | undefined;
  readonly answers: readonly ResourceRecord[];
  readonly authorities: readonly ResourceRecord[];
  /** Without the OPT record, which is `edns`. */
  readonly additionals: readonly ResourceRecord[];
  readonly edns: EdnsView | undefined;
}

interface RawRecord {
  name?: unknown;
  type?: unknown;
  class?: unknown;
  ttl?: unknown;
  data?: unknown;
  udpPayloadSize?: unknown;
  extendedRcode?: unknown;
  ednsVersion?: unknown;
  flags?: unknown;
  options?: unknown;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}
function num(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}
function field(v: unknown, key: string): unknown {
  return typeof v === "object" && v !== null ? (v as Record<string, unknown>)[key] : undefined;
}
function bytesOf(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? Uint8Array.from(v) : new Uint8Array(0);
}

function mnemonic(raw: string, prefix: "TYPE" | "CLASS"): string {
  const m = /^UNKNOWN_(\d+)$/.exec(raw);
  return m ? `${prefix}${m[1]}` : raw;
}

function rdataOf(type: string, data: unknown): Rdata {
  switch (type) {
    case "A":
      return { kind: "a", address: str(data) };
    case "AAAA":
      return { kind: "aaaa", address: str(data) };
    case "NS":
    case "CNAME":
    case "PTR":
    case "DNAME":
      return { kind: "name", target: str(data) };
    case "MX":
      return { kind: "mx", preference: num(field(data, "preference")), exchange: str(field(data, "exchange")) };
    case "SRV":
      return { kind: "srv", priority: num(field(data, "priority")), weight: num(field(data, "weight")), port: num(field(data, "port")), target: str(field(data, "target")) };
    case "SOA":
      return {
        kind: "soa",
        mname: str(field(data, "mname")),
        rname: str(field(data, "rname")),
        serial: num(field(data, "serial")),
        refresh: num(field(data, "refresh")),
        retry: num(field(data, "retry")),
        expire: num(field(data, "expire")),
        minimum: num(field(data, "minimum")),
      };
    case "TXT":
      return { kind: "txt", strings: Array.isArray(data) ? data.map(bytesOf) : [bytesOf(data)] };
    default:
      return { kind: "unknown", bytes: bytesOf(data) };
  }
}

function recordOf(r: RawRecord): ResourceRecord {
  const type = str(r.type);
  return { name: str(r.name) || ".", type: mnemonic(type, "TYPE"), class: mnemonic(str(r.class), "CLASS"), ttl: num(r.ttl), rdata: rdataOf(type, r.data) };
}

/**
 * Reads a response; undefined when it does not parse (a malformed message is a value here, never
 * a throw: dns-packet throws, so it is caught).
 */
export function viewMessage(bytes: Uint8Array): { view: MessageView; decoded: DecodedResponse } | undefined {
  const header = readHeader(bytes);
  if (!header) return undefined;
  let decoded: DecodedResponse;
  try {
    decoded = decodeResponse(bytes);
  } catch {
    return undefined;
  }
  const raw = (list: unknown): RawRecord[] => (Array.isArray(list) ? (list as RawRecord[]) : []);
  const opt = raw(decoded.additionals).find((a) => a.type === "OPT");
  const edns: EdnsView | undefined = opt
    ? {
        version: num(opt.ednsVersion),
        udpPayloadSize: num(opt.udpPayloadSize),
        flags: num(opt.flags),
        do: (num(opt.flags) & 0x8000) !== 0,
        options: (Array.isArray(opt.options) ? opt.options : []).map((o: unknown) => ({ code: num(field(o, "code")), data: bytesOf(field(o, "data")) })),
      }
    : undefined;
  const q = decoded.questions?.[0];
  const qn = q ? questionAt12(bytes) : undefined;
  const view: MessageView = {
    header,
    rcode: header.rcode | (opt ? num(opt.extendedRcode) << 4 : 0),
    question: q && qn ? { name: str(q.name) || ".", type: qn.type, class: qn.class } : undefined,
    answers: raw(decoded.answers).map(recordOf),
    authorities: raw(decoded.authorities).map(recordOf),
    additionals: raw(decoded.additionals)
      .filter((a) => a.type !== "OPT")
      .map(recordOf),
    edns,
  };
  return { view, decoded };
}

/** Names compare case-insensitively and without the trailing dot (RFC 4343). */
export function sameName(a: string, b: string): boolean {
  const norm = (n: string) => (n === "." ? "" : n.replace(/\.$/, "").toLowerCase());
  return norm(a) === norm(b);
}

// ---------------------------------------------------------------------------------------------
// One exchange

/** Why a datagram or message was not taken as the answer (RFC 5452 §9.1). */
export type Ignored =
  | { readonly kind: "idMismatch"; readonly expected: number; readonly got: number }
  | { readonly kind: "questionMismatch"; readonly name: string; readonly type: number; readonly class: number }
  | { readonly kind: "wrongSource"; readonly from: Ipv4Addr; readonly port: number }
  | { readonly kind: "notResponse" }
  | { readonly kind: "malformed" };

export interface QueryOptions {
  readonly tcp?: boolean;
  /** The whole exchange, connect included for TCP. */
  readonly timeoutMs: number;
  /** An OPT record (RFC 6891) with this payload size and these options; none when absent. */
  readonly edns?: { readonly udpPayloadSize: number; readonly do?: boolean; readonly options?: readonly EdnsOption[] };
  /** RD; true by default (a stub asks for recursion). */
  readonly rd?: boolean;
  readonly onIgnored?: (why: Ignored) => void;
}

export type QueryResult =
  | {
      readonly kind: "response";
      readonly bytes: Uint8Array;
      readonly decoded: DecodedResponse;
      readonly message: MessageView;
      readonly transport: Transport;
      readonly server: Ipv4Addr;
      readonly port: number;
      readonly rttMs: number;
      /** The ID the query was sent with. */
      readonly id: number;
    }
  /** `stage` says whether a TCP connection was ever made ("exchange") or not ("connect"). */
  | { readonly kind: "timeout"; readonly stage: "connect" | "exchange" }
  | { readonly kind: "error"; readonly stage: "connect" | "exchange"; readonly message: string };

/**
 * One query and its answer: `name` (presentation form, trailing dot optional), `qtype` a number
 * (wire.ts QTYPE). Messages are accepted only as RFC 5452 §9.1 says; the others go to
 * `onIgnored` and the wait goes on until `timeoutMs`. Error messages are ISC's result texts
 * ("connection refused", "host unreachable", "end of file"), which dig prints.
 */
export async function query(io: StubIo, server: Ipv4Addr, port: number, name: string, qtype: number, opts: QueryOptions): Promise<QueryResult> {
  if (nameToLabels(name) === undefined) return { kind: "error", stage: "connect", message: "invalid name" };
  const id = Math.floor(io.rng() * 0x10000) & 0xffff;
  const wire = encodeQuery({ id, name, type: qtype, rd: opts.rd ?? true, ...(opts.edns ? { edns: { udpPayloadSize: opts.edns.udpPayloadSize, do: opts.edns.do ?? false, options: opts.edns.options ?? [] } } : {}) });
  const expect: Expected = { id, name, qtype, server, port };
  return opts.tcp ? queryTcp(io, expect, wire, opts) : queryUdp(io, expect, wire, opts);
}

interface Expected {
  id: number;
  name: string;
  qtype: number;
  server: Ipv4Addr;
  port: number;
}

/** RFC 5452 §9.1: the ID, then the question (name case-insensitively, type, class IN). */
function accept(bytes: Uint8Array, e: Expected): { ok: true; view: MessageView; decoded: DecodedResponse } | { ok: false; why: Ignored } {
  const h = readHeader(bytes);
  if (!h) return { ok: false, why: { kind: "malformed" } };
  if (h.id !== e.id) return { ok: false, why: { kind: "idMismatch", expected: e.id, got: h.id } };
  if (!h.qr) return { ok: false, why: { kind: "notResponse" } };
  const parsed = viewMessage(bytes);
  if (!parsed) return { ok: false, why: { kind: "malformed" } };
  const q = parsed.view.question;
  // glibc skips the match for a bare error header (res_send.c skip_query_match); so does this.
  const bareError = h.qdcount === 0 && bytes.length === 12 && (h.rcode === RCODE.SERVFAIL || h.rcode === RCODE.NOTIMP || h.rcode === RCODE.REFUSED);
  if (!bareError && (!q || !sameName(q.name, e.name) || q.type !== e.qtype || q.class !== 1)) {
    return { ok: false, why: { kind: "questionMismatch", name: q?.name ?? "", type: q?.type ?? 0, class: q?.class ?? 0 } };
  }
  return { ok: true, view: parsed.view, decoded: parsed.decoded };
}

function queryUdp(io: StubIo, e: Expected, wire: Uint8Array, opts: QueryOptions): Promise<QueryResult> {
  return new Promise((resolve) => {
    let settled = false;
    let srcPort = -1;
    let cancel = (): void => {};
    const sentAt = io.clock.now();
    const finish = (r: QueryResult): void => {
      if (settled) return;
      settled = true;
      cancel();
      if (srcPort >= 0) io.udp.unbindUdp(srcPort);
      resolve(r);
    };
    const onDatagram = (payload: Uint8Array, meta: UdpMeta): void => {
      if (settled) return;
      if (meta.src !== e.server || meta.srcPort !== e.port) return opts.onIgnored?.({ kind: "wrongSource", from: meta.src, port: meta.srcPort });
      const bytes = payload.slice();
      const a = accept(bytes, e);
      if (!a.ok) return opts.onIgnored?.(a.why);
      finish({ kind: "response", bytes, decoded: a.decoded, message: a.view, transport: "udp", server: e.server, port: e.port, rttMs: io.clock.now() - sentAt, id: e.id });
    };
    // ICMP port unreachable reaches a connected UDP socket as ECONNREFUSED (glibc send_dg).
    const onError: DatagramErrorHandler = (err) => {
      if (err.dst === e.server && err.dstPort === e.port) finish({ kind: "error", stage: "exchange", message: err.kind === "refused" ? "connection refused" : "host unreachable" });
    };
    for (let i = 0; i < BIND_TRIES && srcPort < 0; i++) {
      const candidate = EPHEMERAL_FIRST + Math.floor(io.rng() * EPHEMERAL_COUNT);
      if (io.udp.bindUdp(candidate, onDatagram, onError).kind === "bound") srcPort = candidate;
    }
    if (srcPort < 0) return finish({ kind: "error", stage: "connect", message: "address in use" });
    cancel = timer(io.clock, opts.timeoutMs, () => finish({ kind: "timeout", stage: "exchange" }));
    const sent = io.udp.sendUdp(e.server, e.port, srcPort, wire);
    // ISC's texts for ENETUNREACH, EMSGSIZE and EPERM (a netfilter rule at OUTPUT).
    const why: Record<string, string> = { noRoute: "network unreachable", messageTooLong: "message too long", filtered: "permission denied" };
    if (sent.kind !== "sent") finish({ kind: "error", stage: "connect", message: why[sent.kind] ?? sent.kind });
  });
}

async function queryTcp(io: StubIo, e: Expected, wire: Uint8Array, opts: QueryOptions): Promise<QueryResult> {
  const sentAt = io.clock.now();
  let socket: TcpSocket | undefined;
  let expired = false;
  let wake: (() => void) | undefined;
  const cancel = timer(io.clock, opts.timeoutMs, () => {
    expired = true;
    socket?.abort();
    wake?.();
  });
  const expiredResult = (stage: "connect" | "exchange"): QueryResult => ({ kind: "timeout", stage });
  try {
    const connecting = io.tcp.connect(e.server, e.port, { timeoutMs: opts.timeoutMs });
    const c = await Promise.race([connecting, new Promise<undefined>((r) => (wake = () => r(undefined)))]);
    if (c === undefined || expired) {
      // The connect may still complete: close what it gives.
      void connecting.then((late) => late.kind === "connected" && late.socket.abort());
      return expiredResult("connect");
    }
    if (c.kind !== "connected") {
      if (c.kind === "timeout") return expiredResult("connect");
      return { kind: "error", stage: "connect", message: c.kind === "refused" ? "connection refused" : "host unreachable" };
    }
    socket = c.socket;
    // RFC 1035 §4.2.2: the message behind its length, in one write (RFC 7766 §8).
    const framed = new Uint8Array(2 + wire.length);
    framed[0] = wire.length >> 8;
    framed[1] = wire.length & 0xff;
    framed.set(wire, 2);
    await socket.write(framed);
    let buf = new Uint8Array(0);
    for (;;) {
      // glibc send_vc reads on past a message with the wrong ID; so does this.
      while (buf.length >= 2 && buf.length >= 2 + ((buf[0]! << 8) | buf[1]!)) {
        const len = (buf[0]! << 8) | buf[1]!;
        const bytes = buf.slice(2, 2 + len);
        buf = buf.slice(2 + len);
        const a = accept(bytes, e);
        if (a.ok) return { kind: "response", bytes, decoded: a.decoded, message: a.view, transport: "tcp", server: e.server, port: e.port, rttMs: io.clock.now() - sentAt, id: e.id };
        opts.onIgnored?.(a.why);
      }
      if (expired) return expiredResult("exchange");
      const chunk = await socket.read();
      if (expired) return expiredResult("exchange");
      if (chunk === null) return { kind: "error", stage: "exchange", message: "end of file" };
      const next = new Uint8Array(buf.length + chunk.length);
      next.set(buf);
      next.set(chunk, buf.length);
      buf = next;
      if (buf.length > 2 + TCP_MAX_SIZE * 2) return { kind: "error", stage: "exchange", message: "message too long" };
    }
  } finally {
    cancel();
    // Our side is done either way: FIN after the exchange (the server may keep its end open).
    socket?.end();
  }
}

// ---------------------------------------------------------------------------------------------
// resolv.conf and /etc/hosts as glibc reads them

/** resolv.conf(5): the defaults and the caps glibc applies (resolv.h, res_init.c). */
export const RES_TIMEOUT_S = 5;
export const RES_MAXRETRANS_S = 30;
export const RES_DFLRETRY = 2;
export const RES_MAXRETRY = 5;
export const MAXNS = 3;
/** resolv-internal.h RESOLV_EDNS_BUFFER_SIZE: the payload size `options edns0` advertises. */
export const RESOLV_EDNS_BUFFER_SIZE = 1200;

export interface StubConfig {
  readonly nameservers: readonly Ipv4Addr[];
  readonly searches: readonly string[];
  readonly ndots: number;
  readonly timeoutS: number;
  readonly attempts: number;
  readonly useVc: boolean;
  readonly edns0: boolean;
  /** Whether the file set them: dig and nslookup have their own defaults otherwise. */
  readonly timeoutSet: boolean;
  readonly attemptsSet: boolean;
}

/** resolv.conf as glibc's res_init reads it; IPv6 nameservers are skipped (IPv4-only cluster). */
export function stubConfig(text: string): StubConfig {
  const servers = parseResolvConf(text)
    .nameservers.map((s) => parseIpv4Addr(s))
    .filter((s): s is Ipv4Addr => s !== undefined)
    .slice(0, MAXNS);
  const rc = resolverConfig(text);
  let timeoutS = RES_TIMEOUT_S;
  let attempts = RES_DFLRETRY;
  let timeoutSet = false;
  let attemptsSet = false;
  let useVc = false;
  let edns0 = false;
  // res_setoptions: every options line counts, later words win.
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] !== "options") continue;
    for (const o of fields.slice(1)) {
      const t = /^timeout:(\d+)$/.exec(o);
      const a = /^attempts:(\d+)$/.exec(o);
      if (t) {
        timeoutS = Math.min(RES_MAXRETRANS_S, Number(t[1]));
        timeoutSet = true;
      } else if (a) {
        attempts = Math.min(RES_MAXRETRY, Number(a[1]));
        attemptsSet = true;
      } else if (o === "use-vc") useVc = true;
      else if (o === "edns0") edns0 = true;
    }
  }
  return {
    // res_init: no nameserver line means the local one.
    nameservers: servers.length > 0 ? servers : [0x7f000001],
    searches: rc.searches,
    ndots: rc.ndots,
    timeoutS,
    attempts,
    useVc,
    edns0,
    timeoutSet,
    attemptsSet,
  };
}

export interface HostsEntry {
  /** IPv4 as a number, or undefined for an IPv6 (or otherwise non-IPv4) line. */
  readonly ipv4: Ipv4Addr | undefined;
  readonly address: string;
  /** The canonical name, then the aliases. */
  readonly names: readonly string[];
}

/** hosts(5): address, canonical name, aliases; `#` starts a comment. */
export function parseHosts(text: string): HostsEntry[] {
  const out: HostsEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.replace(/#.*/, "").trim().split(/\s+/).filter((f) => f !== "");
    if (fields.length < 2) continue;
    out.push({ ipv4: parseIpv4Addr(fields[0]!), address: fields[0]!, names: fields.slice(1) });
  }
  return out;
}

/**
 * Why a lookup found nothing, as h_errno says it: "nxdomain" HOST_NOT_FOUND (EAI_NONAME),
 * "nodata" NO_DATA (the name exists without an A record, EAI_NODATA), "timeout" TRY_AGAIN with
 * no answer (timeouts, or ECONNREFUSED from every server; EAI_AGAIN), "servfail" TRY_AGAIN after
 * a SERVFAIL or NO_RECOVERY (FORMERR, NOTIMP, REFUSED).
 */
export type LookupFailure = { readonly kind: "nxdomain" | "nodata" | "timeout" | "servfail" };

export type LookupResult =
  | {
      readonly kind: "found";
      readonly addresses: readonly Ipv4Addr[];
      /** h_name / ai_canonname: the end of the CNAME chain, or the hosts line's first name. */
      readonly canonical: string;
      readonly aliases: readonly string[];
      readonly source: "literal" | "hosts" | "dns";
    }
  | LookupFailure;

/** _nss_files_gethostbyname: the IPv4 lines naming `name` (case-insensitively). */
export function hostsLookup(name: string, hostsText: string): LookupResult | undefined {
  const hits = parseHosts(hostsText).filter((e) => e.ipv4 !== undefined && e.names.some((n) => n.toLowerCase() === name.toLowerCase()));
  const first = hits[0];
  if (!first) return undefined;
  return { kind: "found", addresses: hits.map((e) => e.ipv4!), canonical: first.names[0]!, aliases: first.names.slice(1), source: "hosts" };
}

// ---------------------------------------------------------------------------------------------
// res_send and res_search

/** h_errno after one res_query (resolv/res_query.c __res_context_query). */
type Herr = "nxdomain" | "nodata" | "servfail" | "timeout" | "refused" | "norecovery";

type SendResult = { kind: "answer"; view: MessageView } | { kind: "failed"; herr: Herr };

export interface LookupOptions {
  /** A clock time after which no query is started and waits are cut: the caller's own timeout. */
  readonly deadline?: number;
}

/**
 * __res_context_send: `attempts` rounds over the nameservers; UDP unless `use-vc` or an answer
 * came back truncated (then TCP, one round). Returns the answer, or why there is none.
 */
async function resSend(io: StubIo, conf: StubConfig, name: string, qtype: number, opts: LookupOptions): Promise<SendResult> {
  const n = conf.nameservers.length;
  let vc = conf.useVc;
  let gotSomewhere = false;
  let errorRcode: number | undefined;
  const edns = conf.edns0 ? { udpPayloadSize: RESOLV_EDNS_BUFFER_SIZE } : undefined;
  for (let attempt = 0; attempt < conf.attempts; attempt++) {
    for (let ns = 0; ns < n; ns++) {
      for (;;) {
        const left = opts.deadline === undefined ? Infinity : opts.deadline - io.clock.now();
        if (left <= 0) return { kind: "failed", herr: "timeout" };
        const server = conf.nameservers[ns]!;
        let r: QueryResult;
        if (vc) {
          // send_vc: "Use VC; at most one attempt per server."
          attempt = conf.attempts;
          r = await query(io, server, DNS_PORT, name, qtype, { tcp: true, timeoutMs: Math.min(left, conf.timeoutS * 1000), ...(edns ? { edns } : {}) });
        } else {
          // send_dg: seconds = retrans << ns, divided by the server count for ns > 0, at least 1.
          const seconds = Math.max(1, Math.trunc((conf.timeoutS << ns) / (ns > 0 ? n : 1)));
          r = await query(io, server, DNS_PORT, name, qtype, { timeoutMs: Math.min(left, seconds * 1000), ...(edns ? { edns } : {}) });
        }
        if (r.kind === "timeout") {
          gotSomewhere = true;
          break;
        }
        if (r.kind === "error") {
          if (r.message !== "connection refused") gotSomewhere = true;
          break;
        }
        gotSomewhere = true;
        const h = r.message.header;
        if (h.rcode === RCODE.SERVFAIL || h.rcode === RCODE.NOTIMP || h.rcode === RCODE.REFUSED) {
          errorRcode = h.rcode;
          break;
        }
        // A lame answer: nothing, and neither authoritative nor recursive (send_dg next_ns).
        if (h.rcode === RCODE.NOERROR && h.ancount === 0 && !h.aa && !h.ra && h.arcount === 0) break;
        if (h.tc && !vc) {
          vc = true;
          continue;
        }
        return { kind: "answer", view: r.message };
      }
    }
  }
  if (errorRcode === RCODE.SERVFAIL) return { kind: "failed", herr: "servfail" };
  if (errorRcode !== undefined) return { kind: "failed", herr: "norecovery" };
  return { kind: "failed", herr: gotSomewhere ? "timeout" : "refused" };
}

/** __res_context_query's verdict on an answer. */
function herrOf(view: MessageView): Herr | undefined {
  switch (view.header.rcode) {
    case RCODE.NOERROR:
      return view.header.ancount === 0 ? "nodata" : undefined;
    case RCODE.NXDOMAIN:
      return "nxdomain";
    case RCODE.SERVFAIL:
      return "servfail";
    default:
      return "norecovery";
  }
}

type QueryDomain = { kind: "ok"; view: MessageView; qname: string } | { kind: "herr"; herr: Herr };

async function queryDomain(io: StubIo, conf: StubConfig, qname: string, qtype: number, opts: LookupOptions): Promise<QueryDomain> {
  const sent = await resSend(io, conf, qname, qtype, opts);
  if (sent.kind === "failed") return { kind: "herr", herr: sent.herr };
  const herr = herrOf(sent.view);
  return herr ? { kind: "herr", herr } : { kind: "ok", view: sent.view, qname };
}

/**
 * __res_context_search over resolvconf.ts `candidates` (the same order): the first success wins;
 * otherwise the as-is attempt's h_errno if it came first, else NO_DATA if any, else TRY_AGAIN
 * after a SERVFAIL, else the last one.
 */
async function resSearch(io: StubIo, conf: StubConfig, name: string, qtype: number, opts: LookupOptions): Promise<QueryDomain> {
  const list = candidates(name, { searches: conf.searches, ndots: conf.ndots }, "glibc");
  if (list.length === 0) return { kind: "herr", herr: "nxdomain" };
  if (name.endsWith(".")) return queryDomain(io, conf, list[0]!, qtype, opts);
  const dots = [...name].filter((c) => c === ".").length;
  let i = 0;
  let saved: Herr | undefined;
  if (dots >= conf.ndots) {
    const r = await queryDomain(io, conf, list[i++]!, qtype, opts);
    if (r.kind === "ok") return r;
    saved = r.herr;
  }
  let last: Herr | undefined = saved;
  let gotNodata = false;
  let gotServfail = false;
  const searchEnd = i + conf.searches.length;
  for (let done = false; i < searchEnd && !done; i++) {
    const r = await queryDomain(io, conf, list[i]!, qtype, opts);
    if (r.kind === "ok") return r;
    last = r.herr;
    // "If no server present, give up" (errno ECONNREFUSED).
    if (r.herr === "refused") return { kind: "herr", herr: "refused" };
    if (r.herr === "nodata") gotNodata = true;
    else if (r.herr === "servfail") gotServfail = true;
    else if (r.herr !== "nxdomain") done = true; // "anything else implies that we're done"
  }
  // The name as is, when neither tried first nor on the list as "." (always after a stop).
  for (i = searchEnd; i < list.length; i++) {
    const r = await queryDomain(io, conf, list[i]!, qtype, opts);
    if (r.kind === "ok") return r;
    last = r.herr;
  }
  return { kind: "herr", herr: saved ?? (gotNodata ? "nodata" : gotServfail ? "servfail" : (last ?? "nxdomain")) };
}

function resultOf(herr: Herr): LookupFailure {
  switch (herr) {
    case "nxdomain":
      return { kind: "nxdomain" };
    case "nodata":
      return { kind: "nodata" };
    case "timeout":
    case "refused":
      return { kind: "timeout" };
    default:
      return { kind: "servfail" };
  }
}

/**
 * getanswer_r: from the question name, CNAMEs are followed inside the answer section; the
 * addresses are the A records owned by the last name (case-insensitive, RFC 4343).
 */
export function followAnswer(answers: readonly ResourceRecord[], qname: string): { canonical: string; aliases: string[]; addresses: Ipv4Addr[] } {
  let current = qname.replace(/\.$/, "");
  const aliases: string[] = [];
  for (let hops = 0; hops < 16; hops++) {
    const link = answers.find((r) => r.rdata.kind === "name" && r.type === "CNAME" && sameName(r.name, current));
    if (!link || link.rdata.kind !== "name") break;
    aliases.push(current);
    current = link.rdata.target.replace(/\.$/, "");
  }
  const addresses: Ipv4Addr[] = [];
  let canonical = current;
  for (const r of answers) {
    if (r.rdata.kind !== "a" || !sameName(r.name, current)) continue;
    const ip = parseIpv4Addr(r.rdata.address);
    if (ip === undefined || addresses.includes(ip)) continue;
    if (addresses.length === 0) canonical = r.name.replace(/\.$/, "");
    addresses.push(ip);
  }
  return { canonical, aliases, addresses };
}

/**
 * getaddrinfo(name, AF_INET) with `hosts: files dns`: a dotted quad as is, /etc/hosts, then DNS
 * A queries through the search list (see the notes at the top).
 */
export async function lookupHost(io: StubIo, name: string, resolvConfText: string, hostsText?: string, opts: LookupOptions = {}): Promise<LookupResult> {
  const literal = parseIpv4Addr(name);
  if (literal !== undefined) return { kind: "found", addresses: [literal], canonical: name, aliases: [], source: "literal" };
  if (name === "") return { kind: "nxdomain" };
  if (hostsText !== undefined) {
    const hit = hostsLookup(name, hostsText);
    if (hit) return hit;
  }
  const conf = stubConfig(resolvConfText);
  const r = await resSearch(io, conf, name, QTYPE.A, opts);
  if (r.kind === "herr") return resultOf(r.herr);
  const got = followAnswer(r.view.answers, r.qname);
  // An answer without an address for the name (say, a CNAME leaving the zone alone) ends the
  // lookup: res_search succeeded, so glibc does not search on.
  if (got.addresses.length === 0) return { kind: "nodata" };
  return { kind: "found", addresses: got.addresses, canonical: got.canonical, aliases: got.aliases, source: "dns" };
}

/** RFC 1035 §3.5: "d.c.b.a.in-addr.arpa" for a.b.c.d. */
export function reverseName(ip: Ipv4Addr): string {
  return `${formatIpv4(ip).split(".").reverse().join(".")}.in-addr.arpa`;
}

export type AddrResult = { readonly kind: "found"; readonly name: string; readonly aliases: readonly string[]; readonly source: "hosts" | "dns" } | LookupFailure;

/**
 * gethostbyaddr(AF_INET) with `hosts: files dns`: the first /etc/hosts line with the address,
 * else a PTR query for its in-addr.arpa name (res_query, no search list); the first PTR is the
 * name, the others aliases.
 */
export async function lookupAddr(io: StubIo, ip: Ipv4Addr, resolvConfText: string, hostsText?: string, opts: LookupOptions = {}): Promise<AddrResult> {
  const line = hostsText === undefined ? undefined : parseHosts(hostsText).find((e) => e.ipv4 === ip);
  if (line) return { kind: "found", name: line.names[0]!, aliases: line.names.slice(1), source: "hosts" };
  const conf = stubConfig(resolvConfText);
  const qname = reverseName(ip);
  const r = await queryDomain(io, conf, qname, QTYPE.PTR, opts);
  if (r.kind === "herr") return resultOf(r.herr);
  const ptrs = r.view.answers.filter((a) => a.rdata.kind === "name" && a.type === "PTR" && sameName(a.name, qname));
  const names = ptrs.map((a) => (a.rdata.kind === "name" ? a.rdata.target.replace(/\.$/, "") : ""));
  if (names.length === 0) return { kind: "nodata" };
  return { kind: "found", name: names[0]!, aliases: names.slice(1), source: "dns" };
}
