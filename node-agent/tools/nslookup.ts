/**
 * nslookup NAME [SERVER], printing as BIND 9.18's does (bin/dig/nslookup.c printmessage,
 * printsection), over dighost's exchange (dig.ts `exchange`): no EDNS, so 512-byte UDP answers
 * and a TCP retry when one is truncated; the search list applied as dighost does
 * (resolvconf.ts `candidates(…, "musl")`: with at least ndots dots the name alone, otherwise each
 * domain and then the name, moving on on NXDOMAIN only).
 *
 * The default lookup is A, and once it answers, AAAA for the name its CNAMEs lead to, as the
 * real one does (nothing is printed for an empty AAAA answer). A dotted quad is looked up as PTR
 * of its in-addr.arpa name. `-type=X` (also -query=, -q=, -ty=, -querytype=) asks X alone.
 * Other options: -port=, -timeout=, -retry=, -vc, -[no]recurse, -[no]search, -ndots=, -domain=.
 * The exit code is 1 when no server answered or the last answer was an error, else 0.
 * Interactive mode is not emulated (exec passes no stdin).
 */
import type { ExecResult } from "../../cluster/types.ts";
import { formatIpv4, parseIpv4Addr } from "../../overlay/wire/index.ts";
import { candidates } from "../dns/resolvconf.ts";
import { DNS_PORT, followAnswer, reverseName, stubConfig, type ResourceRecord } from "../dns/stub.ts";
import { exchange, parseType, rcodeText, rdataText, resolvServers, serverAddresses, type HostEnv, type Lookup } from "./dig.ts";
import { podText, type ToolContext } from "./common.ts";

/** nslookup.c rtypetext: what precedes the data of a record of type 0..41. */
const RTYPE_TEXT: readonly string[] = [
  "rtype_0 = ", "internet address = ", "nameserver = ", "md = ", "mf = ", "canonical name = ", "soa = ", "mb = ", "mg = ", "mr = ", "rtype_10 = ",
  "protocol = ", "name = ", "hinfo = ", "minfo = ", "mail exchanger = ", "text = ", "rp = ", "afsdb = ", "x25 address = ", "isdn address = ", "rt = ",
  "nsap = ", "nsap_ptr = ", "signature = ", "key = ", "px = ", "gpos = ", "has AAAA address ", "loc = ", "next = ", "rtype_31 = ", "rtype_32 = ",
  "service = ", "rtype_34 = ", "naptr = ", "kx = ", "cert = ", "v6 address = ", "dname = ", "rtype_40 = ", "optional = ",
];

/** dns_name_format: the name without its trailing dot ("." for the root). */
function formatName(name: string): string {
  return name === "." || name === "" ? "." : name.replace(/\.$/, "");
}

/** printsection (nslookup.c). */
function printSection(records: readonly ResourceRecord[], answerSection: boolean): string {
  let s = "";
  for (const rr of records) {
    const owner = formatName(rr.name);
    if ((rr.rdata.kind === "a" || rr.rdata.kind === "aaaa") && answerSection) {
      s += `Name:\t${owner}\nAddress: ${rr.rdata.address}\n`;
    } else if (rr.rdata.kind === "soa") {
      const d = rr.rdata;
      s += `${owner}\n\torigin = ${formatName(d.mname)}\n\tmail addr = ${formatName(d.rname)}\n\tserial = ${d.serial}\n\trefresh = ${d.refresh}\n\tretry = ${d.retry}\n\texpire = ${d.expire}\n\tminimum = ${d.minimum}\n`;
    } else {
      const code = parseType(rr.type) ?? -1;
      s += `${owner}\t${RTYPE_TEXT[code] ?? `rdata_${code} = `}${rdataText(rr.rdata)}\n`;
    }
  }
  return s;
}

export async function nslookup(ctx: ToolContext, argv: readonly string[]): Promise<ExecResult> {
  const confText = podText(ctx, "/etc/resolv.conf") ?? "";
  const conf = stubConfig(confText);
  const out: string[] = [];
  let deftype = "A";
  let defaultLookups = true;
  let port = DNS_PORT;
  let timeoutS = conf.timeoutSet ? conf.timeoutS : 0;
  let tries = conf.attemptsSet ? Math.max(1, conf.attempts) : 3;
  let tcp = false;
  let tcpSet = false;
  let recurse = true;
  let usesearch = true;
  let ndots = conf.ndots;
  let searches = conf.searches;
  let name: string | undefined;
  let serverArg: string | undefined;
  const uint = (v: string): number | undefined => (/^\d+$/.test(v) ? Number(v) : undefined);

  const setoption = (opt: string): void => {
    const lower = opt.toLowerCase();
    const value = (prefixes: string[]): string | undefined => {
      for (const p of prefixes) if (lower.startsWith(p)) return opt.slice(p.length);
      return undefined;
    };
    const type = value(["type=", "ty=", "querytype=", "query=", "qu=", "q="]);
    if (type !== undefined) {
      if (parseType(type) === undefined) out.push(`unknown query type: ${type}\n`);
      else {
        deftype = type;
        defaultLookups = false;
      }
      return;
    }
    const p = value(["port=", "po="]);
    const t = value(["timeout=", "t="]);
    const r = value(["retry=", "ret="]);
    const n = value(["ndots="]);
    const d = value(["domain=", "do="]);
    if (p !== undefined) port = uint(p) ?? port;
    else if (t !== undefined) timeoutS = uint(t) ?? timeoutS;
    else if (r !== undefined) tries = Math.max(1, uint(r) ?? tries);
    else if (n !== undefined) ndots = Math.min(15, uint(n) ?? ndots);
    else if (d !== undefined) {
      searches = [d];
      usesearch = true;
    } else if (lower === "vc" || lower === "novc") {
      tcp = lower === "vc";
      tcpSet = true;
    } else if (["recurse", "rec", "recu", "recur", "recurs"].includes(lower)) recurse = true;
    else if (lower.startsWith("norec") && "norecurse".startsWith(lower)) recurse = false;
    else if (lower.startsWith("sea") && "search".startsWith(lower)) usesearch = true;
    else if (lower.startsWith("nosea") && "nosearch".startsWith(lower)) usesearch = false;
    else if (["fail", "nofail", "debug", "nodebug", "d2", "nod2", "sil"].includes(lower)) return;
    else out.push(`*** Invalid option: ${opt}\n`);
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith("-") && arg !== "-") {
      if (arg.toLowerCase().startsWith("-ver")) return { exitCode: 0, stdout: "", stderr: "nslookup 9.18.30\n" };
      setoption(arg.slice(1));
    } else if (name === undefined) {
      name = arg;
    } else {
      if (i + 1 < argv.length) {
        return {
          exitCode: 1,
          stdout: out.join(""),
          stderr:
            "Usage:\n   nslookup [-opt ...]             # interactive mode using default server\n   nslookup [-opt ...] - server    # interactive mode using 'server'\n" +
            "   nslookup [-opt ...] host        # just look up 'host' using default server\n   nslookup [-opt ...] host server # just look up 'host' using 'server'\n",
        };
      }
      serverArg = arg;
    }
  }
  if (name === undefined || name === "-") {
    // Interactive mode reads commands from stdin, which exec does not pass: EOF at once.
    return { exitCode: 1, stdout: `${out.join("")}\n`, stderr: "nslookup: interactive mode is not emulated; give a name to look up\n" };
  }

  let servers = resolvServers(conf);
  if (confText === "") servers = [{ addr: 0x7f000001, userarg: "127.0.0.1" }];
  if (serverArg !== undefined) {
    const given = await serverAddresses(ctx, serverArg);
    if (!given) return { exitCode: 1, stdout: out.join(""), stderr: `nslookup: couldn't get address for '${serverArg}': not found\n` };
    servers = given;
  }

  // get_reverse(strict): a dotted quad is a PTR lookup.
  const addr = parseIpv4Addr(name);
  const qtype = addr !== undefined ? 12 : parseType(deftype)!;
  const textname = addr !== undefined ? `${reverseName(addr)}.` : name;
  const lookup = (text: string, type: number): Lookup => ({
    textname: text,
    qtype: type,
    servers,
    // addlookup: ANY goes over TCP unless -vc/-novc said otherwise.
    tcp: type === 255 && !tcpSet ? true : tcp,
    recurse,
    edns: -1,
    udpsize: 0,
    sendCookie: false,
    ignoreTc: false,
    retries: tries,
    comments: true,
    servfailStops: false,
    checkRa: serverArg === undefined,
  });
  const env: HostEnv = { ctx, port, timeoutS, out, pendingCmdline: () => "" };
  let queryError = 1;
  let printError = 0;
  let aNoanswer = false;

  /** One lookup through the search list; the name its CNAMEs lead to, or undefined when it failed. */
  const run = async (lk: Lookup, names: string[]): Promise<{ chased: string } | undefined> => {
    for (let n = 0; n < names.length; n++) {
      const qname = names[n]!;
      const ex = await exchange(env, lk, qname);
      if (ex.kind === "failed") return undefined;
      const msg = ex.r.message;
      if (msg.rcode === 3 && n + 1 < names.length) continue;
      queryError = 0;
      if (!defaultLookups || lk.qtype === 1) {
        out.push(`Server:\t\t${ex.server.userarg}\nAddress:\t${formatIpv4(ex.server.addr)}#${port}\n\n`);
      }
      if (msg.rcode !== 0) {
        out.push(`** server can't find ${formatName(qname)}: ${rcodeText(msg.rcode)}\n`);
        printError = 1;
        return undefined;
      }
      const aa = msg.header.aa;
      if (!aa && (!defaultLookups || lk.qtype === 1)) out.push("Non-authoritative answer:\n");
      if (msg.answers.length > 0) out.push(printSection(msg.answers, true));
      else if (defaultLookups && lk.qtype === 1) aNoanswer = true;
      else if (!defaultLookups || (lk.qtype === 28 && aNoanswer)) out.push(`*** Can't find ${lk.textname}: No answer\n`);
      if (!aa && lk.qtype !== 1 && lk.qtype !== 28) {
        out.push("\nAuthoritative answers can be found from:\n");
        out.push(printSection(msg.authorities, false));
        out.push(printSection(msg.additionals, false));
      }
      return { chased: followAnswer(msg.answers, qname).canonical };
    }
    return undefined;
  };

  const names = usesearch ? candidates(textname, { searches, ndots }, "musl") : [textname.replace(/\.$/, "")];
  const first = await run(lookup(textname, qtype), names.length > 0 ? names : ["."]);
  if (first && defaultLookups && qtype === 1) {
    // The AAAA half of the default lookup, for the name the CNAMEs led to, as is (chase_cnamechain).
    await run(lookup(first.chased, 28), [first.chased]);
  }
  out.push("\n");
  return { exitCode: queryError | printError, stdout: out.join(""), stderr: "" };
}
