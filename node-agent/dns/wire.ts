/**
 * The DNS wire format for the cluster resolver, pure: decode a query (never throwing, whatever
 * the bytes), encode a response within the transport's size limit.
 *
 * What it follows:
 * - Acceptance as miekg/dns's server (the one CoreDNS runs) does before any plugin sees a message
 *   (acceptfunc.go defaultMsgAcceptFunc, server.go serveDNS): fewer than 12 bytes or a response
 *   (QR set) gets no reply at all ("any reply can be used to amplify"); an opcode other than QUERY
 *   or NOTIFY gets NOTIMP; QDCOUNT != 1, ANCOUNT > 1, NSCOUNT > 1 or ARCOUNT > 2 gets FORMERR; a
 *   message that does not unpack gets FORMERR. Those replies are the request header turned around
 *   (SetRcodeFormatError: QR set, AA and Z clear, the other flag bits as the request had them) and
 *   carry no records.
 * - Size, as CoreDNS's ScrubWriter (request/request.go Size, Scrub; plugin/pkg/edns Size): UDP
 *   without EDNS0 512 bytes (RFC 1035 §4.2.1); with an OPT record its payload size, never less
 *   than 512 (RFC 6891 §6.2.5) and not capped (CoreDNS itself has no 4096 cap; the bufsize plugin,
 *   not in kubeadm's Corefile, would add one); TCP 65535 (the RFC 1035 §4.2.2 length prefix).
 * - Truncation as miekg's Msg.Truncate: a message that fits uncompressed is sent uncompressed;
 *   otherwise it is compressed (RFC 1035 §4.1.4) and records are kept in section order until the
 *   next one would not fit, with the OPT record's length reserved and the OPT re-appended; TC is
 *   set when any record was left out. A UDP message over 1480 bytes is compressed even when it
 *   fits (Scrub's fragmentation guard).
 * - The request's OPT record is echoed (request.SizeAndDo): version 0, the client's payload size,
 *   DO kept, the other flags cleared, only the options CoreDNS supports (NSID, EXPIRE, COOKIE,
 *   TCP-KEEPALIVE, PADDING).
 *
 * Names are presentation text without the trailing dot ("" is the root), escaped as RFC 1035
 * §5.1 master files do ("\." for a dot inside a label, "\DDD" for other bytes outside printable
 * ASCII) so any label read from the wire round-trips byte for byte when it is echoed.
 *
 * dns-packet does the message-level unpacking (every section, so a malformed record anywhere is
 * a FORMERR as in miekg) and the RDATA of A, AAAA, SRV, TXT and the OPT options. Names are read
 * and written here: dns-packet decodes labels as UTF-8 (not byte-exact) and never compresses.
 * dns-packet's name reader only follows pointers to earlier offsets, so it cannot loop; the
 * reader here keeps that rule and also caps label length (63), name length (255) and pointers.
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { formatIpv4, type Ipv4Addr } from "../../overlay/wire/index.ts";

// ---------------------------------------------------------------------------------------------
// Numbers (RFC 1035 §3.2.2, §4.1.1; RFC 6891; RFC 2782)

export const QTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

export const QCLASS_IN = 1;

export const OPCODE = { QUERY: 0, NOTIFY: 4 } as const;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** RFC 6891 §9: 16, carried as extended RCODE 1 in the OPT record. */
  BADVERS: 16,
} as const;

/** RFC 1035 §4.2.1. */
export const UDP_MIN_SIZE = 512;
/** RFC 1035 §4.2.2: the two-byte length prefix. */
export const TCP_MAX_SIZE = 65_535;
/** Scrub compresses UDP answers above this even when they fit (NSD's IPv4 limit). */
const UDP_FRAGMENT_GUARD = 1480;
/** EDNS0 options CoreDNS echoes (request/edns0.go supportedOptions). */
const SUPPORTED_OPTIONS = new Set([3 /* NSID */, 9 /* EXPIRE */, 10 /* COOKIE */, 11 /* TCP-KEEPALIVE */, 12 /* PADDING */]);

const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
const AD = 0x0020;
const CD = 0x0010;
const DO = 0x8000;

// ---------------------------------------------------------------------------------------------
// Messages

export interface DnsQuestion {
  /** Presentation text without the trailing dot, as the client spelled it (case kept). */
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

export interface EdnsOption {
  readonly code: number;
  readonly data: Uint8Array;
}

export interface EdnsInfo {
  readonly udpPayloadSize: number;
  readonly version: number;
  readonly do: boolean;
  readonly options: readonly EdnsOption[];
}

export interface DnsQuery {
  readonly id: number;
  readonly opcode: number;
  readonly rd: boolean;
  readonly cd: boolean;
  readonly question: DnsQuestion;
  /** The OPT record (RFC 6891 §6.1), when the query had one. */
  readonly edns: EdnsInfo | undefined;
}

export type DnsRecord =
  | { readonly name: string; readonly type: "A"; readonly ttl: number; readonly data: Ipv4Addr }
  | { readonly name: string; readonly type: "AAAA"; readonly ttl: number; readonly data: string }
  | { readonly name: string; readonly type: "CNAME" | "PTR" | "NS"; readonly ttl: number; readonly data: string }
  | { readonly name: string; readonly type: "SRV"; readonly ttl: number; readonly data: SrvData }
  | { readonly name: string; readonly type: "SOA"; readonly ttl: number; readonly data: SoaData }
  | { readonly name: string; readonly type: "TXT"; readonly ttl: number; readonly data: readonly string[] };

export interface SrvData {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly target: string;
}

export interface SoaData {
  readonly mname: string;
  readonly rname: string;
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  readonly minimum: number;
}

/** The OPT record of a response: version 0 always; the extended RCODE comes from `rcode`. */
export interface ResponseOpt {
  readonly udpPayloadSize: number;
  readonly do: boolean;
  readonly options: readonly EdnsOption[];
}

export interface DnsResponse {
  id: number;
  opcode: number;
  /** 0..4095; values above 15 need `opt` (RFC 6891 §6.1.3). */
  rcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  question: DnsQuestion | undefined;
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
  opt: ResponseOpt | undefined;
}

/**
 * Why a buffer is not a query the resolver answers. `short` and `response` get no reply (miekg
 * drops them); the others come with the reply to send.
 */
export type DecodeError = "short" | "response" | "notimp" | "formerr";

export type DecodeResult =
  | { readonly ok: true; readonly query: DnsQuery }
  | { readonly ok: false; readonly error: DecodeError; readonly reply: Uint8Array | undefined; readonly detail: string };

// ---------------------------------------------------------------------------------------------
// Names

const MAX_NAME_WIRE = 255;
const MAX_LABEL = 63;
const MAX_POINTERS = 126;

function escapeLabel(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    if (b === 0x2e || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b > 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${String(b).padStart(3, "0")}`;
  }
  return out;
}

/**
 * The labels of a presentation name as bytes (RFC 1035 §5.1 escapes); undefined when a label is
 * empty or longer than 63 bytes, or the name longer than 255 on the wire.
 */
export function nameToLabels(name: string): Uint8Array[] | undefined {
  if (name === "" || name === ".") return [];
  const text = name.endsWith(".") && !name.endsWith("\\.") ? name.slice(0, -1) : name;
  const labels: Uint8Array[] = [];
  let cur: number[] = [];
  let wire = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) {
      const d = text.slice(i + 1, i + 4);
      if (/^[0-9]{3}$/.test(d) && Number(d) <= 255) {
        cur.push(Number(d));
        i += 3;
      } else if (i + 1 < text.length) {
        cur.push(text.charCodeAt(i + 1) & 0xff);
        i += 1;
      } else return undefined;
    } else if (c === 0x2e /* . */) {
      if (cur.length === 0 || cur.length > MAX_LABEL) return undefined;
      labels.push(Uint8Array.from(cur));
      wire += cur.length + 1;
      cur = [];
    } else {
      if (c > 0xff) return undefined;
      cur.push(c);
    }
  }
  if (cur.length === 0 || cur.length > MAX_LABEL) return undefined;
  labels.push(Uint8Array.from(cur));
  wire += cur.length + 1;
  return wire <= MAX_NAME_WIRE ? labels : undefined;
}

/** Splits a presentation name into its labels, still escaped (an escaped dot stays inside its label). */
export function splitName(name: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === "\\" && i + 1 < name.length) {
      cur += c + name[i + 1]!;
      i++;
    } else if (c === ".") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  // "" and "." are the root; a trailing dot ends the name without an empty label.
  if (out.length > 0 && out[out.length - 1] === "") out.pop();
  return out;
}

/**
 * Reads a name at `off` (RFC 1035 §4.1.4): labels or a pointer to an earlier offset. Undefined for
 * anything malformed: a pointer forward or into itself, a reserved label type (0x40, 0x80), a
 * label past the end, more than 255 bytes or 126 pointers.
 */
function readName(buf: Uint8Array, off: number): { name: string; end: number } | undefined {
  const labels: string[] = [];
  let pos = off;
  let end = -1;
  let wire = 1;
  let pointers = 0;
  let floor = off;
  for (;;) {
    if (pos >= buf.length) return undefined;
    const len = buf[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) return undefined;
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      // Only backwards, as dns-packet: each jump lands strictly before the last, so it ends.
      if (target >= floor || ++pointers > MAX_POINTERS) return undefined;
      if (end < 0) end = pos + 2;
      pos = target;
      floor = target;
      continue;
    }
    if (kind !== 0) return undefined;
    if (pos + 1 + len > buf.length) return undefined;
    wire += len + 1;
    if (wire > MAX_NAME_WIRE) return undefined;
    labels.push(escapeLabel(buf.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  return { name: labels.join("."), end };
}

// ---------------------------------------------------------------------------------------------
// Decoding

function u16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

/** miekg's reject reply: the request header turned around, no records (server.go serveDNS). */
function rejectReply(buf: Uint8Array, rcode: number, keepOpcode: boolean, question?: Uint8Array): Uint8Array {
  const flags = u16(buf, 2);
  const opcode = keepOpcode ? flags & 0x7800 : 0;
  const kept = flags & (TC | RD | RA | AD | CD);
  const out = new Uint8Array(12 + (question?.length ?? 0));
  out[0] = buf[0]!;
  out[1] = buf[1]!;
  const f = QR | opcode | kept | (rcode & 0xf);
  out[2] = f >> 8;
  out[3] = f & 0xff;
  if (question) {
    out[5] = 1;
    out.set(question, 12);
  }
  return out;
}

function fail(error: DecodeError, detail: string, reply?: Uint8Array): DecodeResult {
  return { ok: false, error, reply, detail };
}

/**
 * Decodes a query. Never throws: whatever the bytes, the answer is a query or a tagged error
 * (with the reply miekg would send, if any) for the caller to count.
 */
export function decodeQuery(input: Uint8Array): DecodeResult {
  try {
    return decodeUnsafe(input);
  } catch (e) {
    // Defence in depth: decodeUnsafe guards its own reads; a throw here is a bug, not a query.
    return fail("formerr", `decoder: ${e instanceof Error ? e.message : String(e)}`, input.length >= 12 ? rejectReply(input, RCODE.FORMERR, false) : undefined);
  }
}

function decodeUnsafe(buf: Uint8Array): DecodeResult {
  if (buf.length < 12) return fail("short", `${buf.length} bytes, no header`);
  if (buf.length > TCP_MAX_SIZE) return fail("formerr", `${buf.length} bytes, over 65535`, rejectReply(buf, RCODE.FORMERR, false));
  const flags = u16(buf, 2);
  if (flags & QR) return fail("response", "QR set");
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== OPCODE.QUERY && opcode !== OPCODE.NOTIFY) return fail("notimp", `opcode ${opcode}`, rejectReply(buf, RCODE.NOTIMP, true));
  const qd = u16(buf, 4);
  const an = u16(buf, 6);
  const ns = u16(buf, 8);
  const ar = u16(buf, 10);
  if (qd !== 1) return fail("formerr", `QDCOUNT ${qd}`, rejectReply(buf, RCODE.FORMERR, false));
  if (an > 1 || ns > 1 || ar > 2) return fail("formerr", `counts ${an}/${ns}/${ar}`, rejectReply(buf, RCODE.FORMERR, false));

  const qn = readName(buf, 12);
  if (!qn || qn.end + 4 > buf.length) return fail("formerr", "bad question", rejectReply(buf, RCODE.FORMERR, false));
  const question: DnsQuestion = { name: qn.name, type: u16(buf, qn.end), class: u16(buf, qn.end + 2) };
  const questionWire = buf.subarray(12, qn.end + 4);
  // A question name with a pointer is echoed expanded; only a plain one can be copied as is.
  const echo = qn.end - 12 === nameWireLength(question.name) ? questionWire : undefined;

  // The whole message must unpack, as miekg's req.unpack; dns-packet throws on what it cannot read.
  let decoded: dnsPacket.DecodedPacket;
  try {
    decoded = dnsPacket.decode(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
  } catch (e) {
    return fail("formerr", `unpack: ${e instanceof Error ? e.message : String(e)}`, rejectReply(buf, RCODE.FORMERR, false, echo));
  }
  const opts = (decoded.additionals ?? []).filter((a) => a.type === "OPT") as unknown as RawOpt[];
  // RFC 6891 §6.1.1: more than one OPT is a FORMERR.
  if (opts.length > 1) return fail("formerr", "two OPT records", rejectReply(buf, RCODE.FORMERR, false, echo));
  const opt = opts[0];
  let edns: EdnsInfo | undefined;
  if (opt) {
    if (opt.name !== ".") return fail("formerr", "OPT not at the root", rejectReply(buf, RCODE.FORMERR, false, echo));
    edns = {
      udpPayloadSize: opt.udpPayloadSize,
      version: opt.ednsVersion,
      do: (opt.flags & DO) !== 0,
      options: (opt.options ?? []).map((o) => ({ code: o.code, data: Uint8Array.from(o.data ?? []) })),
    };
  }
  return {
    ok: true,
    query: { id: u16(buf, 0), opcode, rd: (flags & RD) !== 0, cd: (flags & CD) !== 0, question, edns },
  };
}

interface RawOpt {
  name: string;
  udpPayloadSize: number;
  ednsVersion: number;
  flags: number;
  options?: { code: number; data?: Uint8Array }[];
}

/** The wire length of a presentation name, uncompressed; 0 when it is not a valid name. */
export function nameWireLength(name: string): number {
  const labels = nameToLabels(name);
  return labels ? labels.reduce((n, l) => n + l.length + 1, 1) : 0;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** dns-packet's RDATA codecs, which its typings do not declare. */
interface RdataCodec {
  encode(data: unknown, buf: Buffer, offset: number): Buffer;
}
const packetCodecs = dnsPacket as unknown as {
  record(type: string): RdataCodec & { encode: { bytes: number } };
  option: RdataCodec & { encode: { bytes: number } };
};

/** A growing buffer with RFC 1035 §4.1.4 name compression (case-sensitive, as miekg's map). */
class Writer {
  buf = Buffer.alloc(1024);
  off = 0;
  private readonly pointers = new Map<string, number>();
  constructor(private readonly compress: boolean) {}

  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.off++] = v & 0xff;
  }

  u16(v: number): void {
    this.room(2);
    this.buf.writeUInt16BE(v & 0xffff, this.off);
    this.off += 2;
  }

  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.off);
    this.off += 4;
  }

  /** A name; compressed when the writer compresses and `compressible` (RFC 3597 §4). */
  name(name: string, compressible: boolean): void {
    const labels = nameToLabels(name) ?? [];
    const keys = splitName(name);
    for (let i = 0; i < labels.length; i++) {
      const key = keys.slice(i).join(".");
      if (this.compress && compressible) {
        const at = this.pointers.get(key);
        if (at !== undefined) {
          this.u16(0xc000 | at);
          return;
        }
      }
      // Offsets past 14 bits cannot be pointed at.
      if (this.compress && this.off < 0x4000 && !this.pointers.has(key)) this.pointers.set(key, this.off);
      const label = labels[i]!;
      this.room(1 + label.length);
      this.buf[this.off++] = label.length;
      this.buf.set(label, this.off);
      this.off += label.length;
    }
    this.u8(0);
  }

  /** RDATA written by a dns-packet codec (it writes RDLENGTH itself). */
  codec(codec: RdataCodec & { encode: { bytes: number } }, data: unknown, maxBytes: number): void {
    this.room(maxBytes);
    codec.encode(data, this.buf, this.off);
    this.off += codec.encode.bytes;
  }

  /** RDATA from `body`, with RDLENGTH filled in after. */
  rdata(body: () => void): void {
    const at = this.off;
    this.u16(0);
    body();
    this.buf.writeUInt16BE(this.off - at - 2, at);
  }
}

const TYPE_NUMBERS: Record<DnsRecord["type"], number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, TXT: 16, AAAA: 28, SRV: 33 };

function writeRecord(w: Writer, rr: DnsRecord): void {
  w.name(rr.name, true);
  w.u16(TYPE_NUMBERS[rr.type]);
  w.u16(QCLASS_IN);
  w.u32(rr.ttl);
  switch (rr.type) {
    case "A":
      w.codec(packetCodecs.record("A"), formatIpv4(rr.data), 6);
      return;
    case "AAAA":
      w.codec(packetCodecs.record("AAAA"), rr.data, 18);
      return;
    case "CNAME":
    case "PTR":
    case "NS":
      w.rdata(() => w.name(rr.data, true));
      return;
    case "SOA":
      w.rdata(() => {
        w.name(rr.data.mname, true);
        w.name(rr.data.rname, true);
        for (const v of [rr.data.serial, rr.data.refresh, rr.data.retry, rr.data.expire, rr.data.minimum]) w.u32(v);
      });
      return;
    case "SRV":
      // RFC 2782: the target is never compressed; dns-packet writes it uncompressed.
      w.codec(packetCodecs.record("SRV"), { ...rr.data }, 8 + 2 + rr.data.target.length + 2);
      return;
    case "TXT": {
      // dns-packet converts the strings in place: hand it a copy.
      const strings = rr.data.map((s) => Buffer.from(s, "latin1"));
      w.codec(packetCodecs.record("TXT"), strings, 2 + strings.reduce((n, s) => n + s.length + 1, 0));
      return;
    }
  }
}

function writeOpt(w: Writer, opt: ResponseOpt, rcode: number): void {
  w.u8(0); // RFC 6891 §6.1.2: the root
  w.u16(QTYPE.OPT);
  w.u16(opt.udpPayloadSize);
  w.u8((rcode >> 4) & 0xff); // extended RCODE, upper 8 bits
  w.u8(0); // version 0
  w.u16(opt.do ? DO : 0);
  w.rdata(() => {
    for (const o of opt.options) w.codec(packetCodecs.option, { code: o.code, data: Buffer.from(o.data) }, 4 + o.data.length);
  });
}

function writeQuestion(w: Writer, q: DnsQuestion): void {
  w.name(q.name, true);
  w.u16(q.type);
  w.u16(q.class);
}

function headerFlags(r: DnsResponse, tc: boolean): number {
  return (
    QR |
    ((r.opcode & 0xf) << 11) |
    (r.aa ? AA : 0) |
    (tc ? TC : 0) |
    (r.rd ? RD : 0) |
    (r.ra ? RA : 0) |
    (r.ad ? AD : 0) |
    (r.cd ? CD : 0) |
    (r.rcode & 0xf)
  );
}

function writeHeader(w: Writer, r: DnsResponse, tc: boolean, counts: readonly [number, number, number, number]): void {
  w.u16(r.id);
  w.u16(headerFlags(r, tc));
  for (const c of counts) w.u16(c);
}

function patchHeader(w: Writer, r: DnsResponse, tc: boolean, counts: readonly [number, number, number, number]): void {
  w.buf.writeUInt16BE(headerFlags(r, tc), 2);
  counts.forEach((c, i) => w.buf.writeUInt16BE(c, 4 + 2 * i));
}

function encodeWhole(r: DnsResponse, compress: boolean): Buffer {
  const w = new Writer(compress);
  const extra = r.additionals.length + (r.opt ? 1 : 0);
  writeHeader(w, r, r.tc, [r.question ? 1 : 0, r.answers.length, r.authorities.length, extra]);
  if (r.question) writeQuestion(w, r.question);
  for (const rr of r.answers) writeRecord(w, rr);
  for (const rr of r.authorities) writeRecord(w, rr);
  for (const rr of r.additionals) writeRecord(w, rr);
  if (r.opt) writeOpt(w, r.opt, r.rcode);
  return w.buf.subarray(0, w.off);
}

export type Transport = "udp" | "tcp";

/**
 * The largest response the client takes (request.Size): TCP 65535; UDP the OPT payload size but
 * at least 512, or 512 without EDNS0. `udpCap` lowers it (CoreDNS's bufsize plugin; off by
 * default, as in kubeadm's Corefile).
 */
export function responseSizeLimit(query: DnsQuery | undefined, transport: Transport, udpCap?: number): number {
  if (transport === "tcp") return TCP_MAX_SIZE;
  let size = Math.max(UDP_MIN_SIZE, query?.edns?.udpPayloadSize ?? 0);
  if (udpCap !== undefined) size = Math.max(UDP_MIN_SIZE, Math.min(size, udpCap));
  return Math.min(size, TCP_MAX_SIZE);
}

export interface Encoded {
  readonly bytes: Uint8Array;
  /** Records were left out to fit (the TC bit is set in `bytes`). */
  readonly truncated: boolean;
  readonly compressed: boolean;
}

/**
 * Encodes a response to fit `limit` bytes (responseSizeLimit), as miekg's Msg.Truncate and
 * CoreDNS's Scrub: uncompressed when it fits (and, over UDP, is at most 1480 bytes), otherwise
 * compressed, keeping records in section order while they fit.
 */
export function encodeResponse(response: DnsResponse, limit: number, transport: Transport = "udp"): Encoded {
  const size = Math.max(UDP_MIN_SIZE, Math.min(limit, TCP_MAX_SIZE));
  const plain = encodeWhole(response, false);
  if (plain.length <= size && (transport === "tcp" || plain.length <= UDP_FRAGMENT_GUARD)) {
    return { bytes: plain, truncated: false, compressed: false };
  }
  const w = new Writer(true);
  // Reserve the OPT record's room; it goes back at the end (Truncate pops and re-appends it).
  const optLength = response.opt ? 11 + response.opt.options.reduce((n, o) => n + 4 + o.data.length, 0) : 0;
  const budget = size - optLength;
  writeHeader(w, response, response.tc, [0, 0, 0, 0]);
  if (response.question) writeQuestion(w, response.question);
  const counts: [number, number, number, number] = [response.question ? 1 : 0, 0, 0, 0];
  let full = false;
  const sections = [response.answers, response.authorities, response.additionals];
  for (let s = 0; s < 3 && !full; s++) {
    for (const rr of sections[s]!) {
      const before = w.off;
      writeRecord(w, rr);
      if (w.off > budget) {
        w.off = before;
        full = true;
        break;
      }
      counts[s + 1]!++;
    }
  }
  const truncated = full;
  if (response.opt) {
    writeOpt(w, response.opt, response.rcode);
    counts[3]++;
  }
  patchHeader(w, response, response.tc || truncated, counts);
  return { bytes: Uint8Array.from(w.buf.subarray(0, w.off)), truncated, compressed: true };
}

/** The OPT record a response echoes (request.SizeAndDo); undefined without EDNS0 in the query. */
export function echoOpt(query: DnsQuery): ResponseOpt | undefined {
  const e = query.edns;
  if (!e) return undefined;
  return { udpPayloadSize: e.udpPayloadSize, do: e.do, options: e.options.filter((o) => SUPPORTED_OPTIONS.has(o.code)) };
}

// ---------------------------------------------------------------------------------------------
// Queries (for clients and tests)

export interface QueryInit {
  id?: number;
  name: string;
  type: number;
  class?: number;
  rd?: boolean;
  opcode?: number;
  edns?: { udpPayloadSize: number; do?: boolean; version?: number; options?: readonly EdnsOption[] };
}

/** Encodes a query, as a stub resolver sends it; throws a RangeError for a name that cannot be one. */
export function encodeQuery(q: QueryInit): Uint8Array {
  if (nameToLabels(q.name) === undefined) throw new RangeError(`not a valid DNS name: ${JSON.stringify(q.name)}`);
  const w = new Writer(false);
  w.u16(q.id ?? 0);
  w.u16(((q.opcode ?? 0) << 11) | (q.rd === false ? 0 : RD));
  w.u16(1);
  w.u16(0);
  w.u16(0);
  w.u16(q.edns ? 1 : 0);
  w.name(q.name, false);
  w.u16(q.type);
  w.u16(q.class ?? QCLASS_IN);
  if (q.edns) {
    w.u8(0);
    w.u16(QTYPE.OPT);
    w.u16(q.edns.udpPayloadSize);
    w.u8(0);
    w.u8(q.edns.version ?? 0);
    w.u16(q.edns.do ? DO : 0);
    w.rdata(() => {
      for (const o of q.edns?.options ?? []) w.codec(packetCodecs.option, { code: o.code, data: Buffer.from(o.data) }, 4 + o.data.length);
    });
  }
  return Uint8Array.from(w.buf.subarray(0, w.off));
}

/** dns-packet's decoded message, with the fields its typings leave out. */
export type DecodedResponse = dnsPacket.DecodedPacket & { rcode: string; opcode: string };

/** Decodes a response with dns-packet (tests and tools; throws on garbage). */
export function decodeResponse(bytes: Uint8Array): DecodedResponse {
  return dnsPacket.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as DecodedResponse;
}
