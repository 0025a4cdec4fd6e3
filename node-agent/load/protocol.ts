/**
 * What a load client sends and how it knows an answer is complete, per scenario. Pure: bytes in,
 * parse states out, no sockets.
 *
 * - http: HTTP/1.1 keep-alive GETs of agnhost netexec's `/echo?msg=` (the answer's body is the
 *   message: `responseBytes` of it), padded with an `X-Pad` header up to `requestBytes`. An answer
 *   is complete at Content-Length (netexec and Go's net/http send one for such bodies).
 * - tcp-rr (netperf TCP_RR): a request is an 8-byte header (request length, response length,
 *   big-endian u32) and padding up to the request length; the server answers with that many
 *   bytes. The sizes travel in the request so the server keeps no per-run state.
 * - udp-rr (netperf UDP_RR): one datagram (sequence number, response length, padding); the answer
 *   is one datagram that starts with the same sequence number.
 * - tcp-stream (netperf TCP_STREAM): bytes one way; the server reads and drops them.
 */

export const RR_HEADER_BYTES = 8;
/** The largest answer a request may ask for (bounds what a server allocates for a request). */
export const MAX_RESPONSE_BYTES = 1 << 20;
/** UDP payloads stay under the IPv4 datagram limit. */
export const MAX_UDP_BYTES = 65_507;
/** netexec's /echo?msg= carries the body in the URL: Node's server takes 16 KiB of headers. */
export const MAX_HTTP_RESPONSE_BYTES = 8192;
const MAX_HTTP_HEAD_BYTES = 64 * 1024;

const enc = new TextEncoder();

/** The GET a connection sends for every request, padded towards `requestBytes`. */
export function httpRequest(host: string, port: number, requestBytes: number, responseBytes: number): Uint8Array {
  const head = `GET /echo?msg=${"x".repeat(responseBytes)} HTTP/1.1\r\nHost: ${host}:${port}\r\nUser-Agent: kubewire-load\r\n`;
  const bare = head.length + 2;
  const padHeader = "X-Pad: \r\n".length;
  const pad = requestBytes >= bare + padHeader ? `X-Pad: ${"p".repeat(requestBytes - bare - padHeader)}\r\n` : "";
  return enc.encode(`${head}${pad}\r\n`);
}

/** The smallest request of a scenario (an HTTP request cannot be shorter than its request line). */
export function minRequestBytes(scenario: "http" | "tcp-rr" | "udp-rr" | "tcp-stream", responseBytes: number): number {
  if (scenario === "http") return httpRequest("255.255.255.255", 65535, 0, responseBytes).length;
  return scenario === "tcp-stream" ? 1 : RR_HEADER_BYTES;
}

export function rrRequest(requestBytes: number, responseBytes: number): Uint8Array {
  const b = new Uint8Array(Math.max(RR_HEADER_BYTES, requestBytes));
  const v = new DataView(b.buffer);
  v.setUint32(0, b.length);
  v.setUint32(4, responseBytes);
  return b;
}

export function udpRequest(seq: number, requestBytes: number, responseBytes: number): Uint8Array {
  const b = new Uint8Array(Math.max(RR_HEADER_BYTES, requestBytes));
  const v = new DataView(b.buffer);
  v.setUint32(0, seq >>> 0);
  v.setUint32(4, responseBytes);
  return b;
}

/** The server's answer to a udp-rr datagram: the sequence number, padded to the length asked (at least 4). */
export function udpAnswer(request: Uint8Array): Uint8Array | undefined {
  if (request.length < RR_HEADER_BYTES) return undefined;
  const v = new DataView(request.buffer, request.byteOffset, request.byteLength);
  const want = Math.min(MAX_UDP_BYTES, Math.max(4, v.getUint32(4)));
  const out = new Uint8Array(want);
  out.set(request.subarray(0, 4));
  return out;
}

export function udpSeqOf(answer: Uint8Array): number | undefined {
  return answer.length < 4 ? undefined : new DataView(answer.buffer, answer.byteOffset, answer.byteLength).getUint32(0);
}

export type ReadState =
  | { readonly kind: "more" }
  | { readonly kind: "done"; readonly bytes: number; readonly status?: number; readonly keepAlive: boolean }
  /** `corrupt`: the answer arrived whole but its bytes are not the ones sent (chaos runs count these). */
  | { readonly kind: "bad"; readonly why: string; readonly corrupt?: boolean };

/**
 * Byte `i` of every tcp-rr answer: a pattern the client checks, so a corruption that got past
 * every checksum shows as a "corrupt" answer instead of passing unseen (TCP's 16-bit checksum
 * catches every single-bit flip, RFC 1071; this checks the whole path did).
 */
export function answerByte(i: number): number {
  return (i * 131 + 7) & 0xff;
}

/** The answer of length n, filled with the pattern. */
export function patternedAnswer(n: number): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = answerByte(i);
  return a;
}

const MORE: ReadState = { kind: "more" };

/** Reads one answer of known length (tcp-rr), checking its bytes against the pattern. */
export class FixedReader {
  private got = 0;
  private corruptAt = -1;
  constructor(private readonly want: number) {}
  push(chunk: Uint8Array): ReadState {
    for (let k = 0; k < chunk.length && this.corruptAt < 0; k++) if (chunk[k] !== answerByte(this.got + k) && this.got + k < this.want) this.corruptAt = this.got + k;
    this.got += chunk.length;
    if (this.got < this.want) return MORE;
    if (this.corruptAt >= 0 && this.got === this.want) return { kind: "bad", why: `byte ${this.corruptAt} of the answer is not the one sent`, corrupt: true };
    if (this.got > this.want) return { kind: "bad", why: `${this.got - this.want} bytes more than the ${this.want} asked for` };
    return { kind: "done", bytes: this.got, keepAlive: true };
  }
}

/** Reads one HTTP/1.1 response: status line, headers, then Content-Length bytes of body. */
export class HttpResponseReader {
  private head: number[] = [];
  private headDone = false;
  private status = 0;
  private bodyWant = 0;
  private bodyGot = 0;
  private total = 0;
  private keepAlive = true;
  private corrupt = false;

  push(chunk: Uint8Array): ReadState {
    this.total += chunk.length;
    let i = 0;
    if (!this.headDone) {
      for (; i < chunk.length; i++) {
        this.head.push(chunk[i]!);
        const n = this.head.length;
        if (n >= 4 && this.head[n - 4] === 13 && this.head[n - 3] === 10 && this.head[n - 2] === 13 && this.head[n - 1] === 10) {
          i++;
          const parsed = this.parseHead(new TextDecoder().decode(Uint8Array.from(this.head)));
          if (parsed) return parsed;
          this.headDone = true;
          break;
        }
        if (n > MAX_HTTP_HEAD_BYTES) return { kind: "bad", why: "response headers longer than 64 KiB" };
      }
      if (!this.headDone) return MORE;
    }
    // The request asked netexec to echo "x"s (httpRequest): any other body byte is a corruption.
    for (let k = i; k < chunk.length && !this.corrupt; k++) if (chunk[k] !== 0x78 && this.status === 200) this.corrupt = true;
    this.bodyGot += chunk.length - i;
    if (this.bodyGot < this.bodyWant) return MORE;
    if (this.bodyGot > this.bodyWant) return { kind: "bad", why: "more bytes than Content-Length" };
    if (this.corrupt) return { kind: "bad", why: "the echoed body is not the one sent", corrupt: true };
    return { kind: "done", bytes: this.total, status: this.status, keepAlive: this.keepAlive };
  }

  private parseHead(text: string): ReadState | undefined {
    const lines = text.split("\r\n");
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? "");
    if (!m) return { kind: "bad", why: `not an HTTP/1.x status line: ${JSON.stringify((lines[0] ?? "").slice(0, 60))}` };
    this.status = Number(m[2]);
    this.keepAlive = m[1] === "1";
    let length: number | undefined;
    for (const line of lines.slice(1)) {
      const c = line.indexOf(":");
      if (c <= 0) continue;
      const name = line.slice(0, c).trim().toLowerCase();
      const value = line.slice(c + 1).trim();
      if (name === "content-length") length = /^\d+$/.test(value) ? Number(value) : NaN;
      else if (name === "connection") this.keepAlive = value.toLowerCase() === "keep-alive" ? true : value.toLowerCase() === "close" ? false : this.keepAlive;
      else if (name === "transfer-encoding" && value.toLowerCase() !== "identity") return { kind: "bad", why: `Transfer-Encoding ${value} (the load client reads Content-Length bodies)` };
    }
    const noBody = (this.status >= 100 && this.status < 200) || this.status === 204 || this.status === 304;
    if (noBody) length = 0;
    if (length === undefined || !Number.isFinite(length)) return { kind: "bad", why: "no Content-Length" };
    this.bodyWant = length;
    return undefined;
  }
}

/**
 * The tcp-rr server's side: bytes in, the answers due out. Requests may arrive split or several
 * per chunk; each is answered with the length its header asks for.
 */
export class RrServerReader {
  private header = new Uint8Array(RR_HEADER_BYTES);
  private headerGot = 0;
  private remaining = 0;
  private answer = 0;

  /** The response lengths of the requests this chunk completed, or "bad" for a malformed header. */
  push(chunk: Uint8Array): number[] | "bad" {
    const out: number[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.headerGot < RR_HEADER_BYTES) {
        const take = Math.min(RR_HEADER_BYTES - this.headerGot, chunk.length - i);
        this.header.set(chunk.subarray(i, i + take), this.headerGot);
        this.headerGot += take;
        i += take;
        if (this.headerGot < RR_HEADER_BYTES) break;
        const v = new DataView(this.header.buffer);
        const len = v.getUint32(0);
        this.answer = v.getUint32(4);
        if (len < RR_HEADER_BYTES || len > MAX_RESPONSE_BYTES || this.answer < 1 || this.answer > MAX_RESPONSE_BYTES) return "bad";
        this.remaining = len - RR_HEADER_BYTES;
      }
      const take = Math.min(this.remaining, chunk.length - i);
      this.remaining -= take;
      i += take;
      if (this.remaining === 0) {
        out.push(this.answer);
        this.headerGot = 0;
      }
    }
    return out;
  }
}
