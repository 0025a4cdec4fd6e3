/**
 * A DNS server for the resolver and tool tests: the pure engine (answer.ts, wire.ts framing) on
 * UDP and TCP 53 of a fake host of the in-memory networks, recording what it was asked; names
 * outside the cluster zone get NXDOMAIN, as an upstream would say. `respond` overrides an answer
 * (or drops the query) for the tests of timeouts and mismatched replies.
 */
import { answer } from "../../../node-agent/dns/answer.ts";
import type { ClusterDnsData } from "../../../node-agent/dns/records.ts";
import { RCODE, decodeQuery, echoOpt, encodeResponse, responseSizeLimit, type DnsQuery, type DnsResponse, type Transport } from "../../../node-agent/dns/wire.ts";
import type { MemoryTcpNetwork } from "../../../node-agent/tcp/memory.ts";
import { type MemoryUdpNetwork, ip } from "../apps/harness.ts";

export interface Seen {
  transport: Transport;
  id: number;
  name: string;
  type: number;
  edns: number | undefined;
  /** The EDNS0 client cookie (option 10), hex. */
  cookie: string | undefined;
}

export type Respond = (q: DnsQuery, transport: Transport) => DnsResponse | "drop" | undefined;

/** What an upstream says of a name outside the cluster zone: nobody has it. */
export function upstreamNxdomain(q: DnsQuery): DnsResponse {
  return { id: q.id, opcode: 0, rcode: RCODE.NXDOMAIN, aa: false, tc: false, rd: q.rd, ra: true, ad: false, cd: q.cd, question: q.question, answers: [], authorities: [], additionals: [], opt: echoOpt(q) };
}

/** A DNS server on UDP and TCP 53 of `addr`, answering from `data` unless `respond` says otherwise. */
export function dnsServer(udpNet: MemoryUdpNetwork, tcpNet: MemoryTcpNetwork, addr: string, data: ClusterDnsData, respond?: Respond) {
  const seen: Seen[] = [];
  const reply = (bytes: Uint8Array, transport: Transport): Uint8Array | undefined => {
    const d = decodeQuery(bytes);
    if (!d.ok) return d.reply;
    const q = d.query;
    const cookie = q.edns?.options.find((o) => o.code === 10)?.data;
    seen.push({ transport, id: q.id, name: q.question.name, type: q.question.type, edns: q.edns?.udpPayloadSize, cookie: cookie && Buffer.from(cookie).toString("hex") });
    const custom = respond?.(q, transport);
    if (custom === "drop") return undefined;
    const r = custom ?? (() => {
      const a = answer(q, data);
      return a.kind === "answer" ? a.response : upstreamNxdomain(q);
    })();
    return encodeResponse(r, responseSizeLimit(q, transport), transport).bytes;
  };
  const udp = udpNet.host(ip(addr));
  udp.bindUdp(53, (payload, meta) => {
    const out = reply(payload, "udp");
    if (out) udp.sendUdp(meta.src, meta.srcPort, 53, out);
  });
  const l = tcpNet.host(ip(addr)).listen(53);
  if (l.kind !== "listening") throw new Error("listen 53");
  void (async () => {
    for await (const s of l.listener) {
      void (async () => {
        let buf = new Uint8Array(0);
        for (;;) {
          const chunk = await s.read();
          if (chunk === null) return s.end();
          buf = Uint8Array.from([...buf, ...chunk]);
          while (buf.length >= 2 && buf.length >= 2 + ((buf[0]! << 8) | buf[1]!)) {
            const len = (buf[0]! << 8) | buf[1]!;
            const out = reply(buf.slice(2, 2 + len), "tcp");
            buf = buf.slice(2 + len);
            if (out) await s.write(Uint8Array.from([out.length >> 8, out.length & 0xff, ...out]));
          }
        }
      })();
    }
  })();
  return { seen, names: () => seen.map((q) => `${q.transport} ${q.name}`), close: () => l.listener.close(), udp };
}

