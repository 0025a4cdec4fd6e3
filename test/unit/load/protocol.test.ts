import { describe, expect, it } from "vitest";
import { FixedReader, HttpResponseReader, RrServerReader, httpRequest, patternedAnswer, minRequestBytes, rrRequest, udpAnswer, udpRequest, udpSeqOf } from "../../../node-agent/load/protocol.ts";

const enc = new TextEncoder();

/** Fed one byte at a time: the answer completes exactly at its last byte. */
function byByte(reader: { push(c: Uint8Array): { kind: string } }, bytes: Uint8Array) {
  const states = Array.from(bytes, (b) => reader.push(Uint8Array.of(b)).kind);
  return { last: states.at(-1), before: new Set(states.slice(0, -1)) };
}

describe("load protocols", () => {
  it("the HTTP request asks netexec's /echo for the response size and is padded to the request size", () => {
    const bare = new TextDecoder().decode(httpRequest("10.96.0.2", 80, 0, 5));
    expect(bare).toBe("GET /echo?msg=xxxxx HTTP/1.1\r\nHost: 10.96.0.2:80\r\nUser-Agent: kubewire-load\r\n\r\n");
    const padded = httpRequest("10.96.0.2", 80, 300, 5);
    expect(padded.length).toBe(300);
    expect(new TextDecoder().decode(padded)).toMatch(/\r\nX-Pad: p+\r\n\r\n$/);
    expect(minRequestBytes("http", 5)).toBeGreaterThanOrEqual(bare.length);
  });

  it("reads an HTTP response to its Content-Length, fed byte by byte", () => {
    // netexec /echo?msg=xxxxx answers the x's (httpRequest asks for them).
    const res = enc.encode("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nxxxxx");
    const { last, before } = byByte(new HttpResponseReader(), res);
    expect(last).toBe("done");
    expect([...before]).toEqual(["more"]);
    expect(new HttpResponseReader().push(res)).toEqual({ kind: "done", bytes: res.length, status: 200, keepAlive: true });
  });

  it("HTTP: Connection: close, statuses, and answers it cannot read", () => {
    expect(new HttpResponseReader().push(enc.encode("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))).toMatchObject({ kind: "done", status: 503, keepAlive: false });
    expect(new HttpResponseReader().push(enc.encode("HTTP/1.1 204 No Content\r\n\r\n"))).toMatchObject({ kind: "done", status: 204 });
    expect(new HttpResponseReader().push(enc.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))).toMatchObject({ kind: "bad" });
    expect(new HttpResponseReader().push(enc.encode("SSH-2.0-OpenSSH\r\n\r\n"))).toMatchObject({ kind: "bad" });
    expect(new HttpResponseReader().push(enc.encode("HTTP/1.1 200 OK\r\n\r\n"))).toEqual({ kind: "bad", why: "no Content-Length" });
    expect(new HttpResponseReader().push(enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab"))).toMatchObject({ kind: "bad" });
  });

  it("tcp-rr: the request carries both sizes; the server answers each request, however the bytes arrive", () => {
    const a = rrRequest(100, 1000);
    const b = rrRequest(8, 1);
    expect(a.length).toBe(100);
    const both = new Uint8Array([...a, ...b]);
    expect(new RrServerReader().push(both)).toEqual([1000, 1]);
    const server = new RrServerReader();
    const answers = Array.from(both, (x) => server.push(Uint8Array.of(x))).flatMap((r): Array<number | string> => (r === "bad" ? ["bad"] : r));
    expect(answers).toEqual([1000, 1]);
    expect(new RrServerReader().push(rrRequest(8, 0))).toBe("bad");
    const { last, before } = byByte(new FixedReader(3), patternedAnswer(3));
    expect([last, [...before]]).toEqual(["done", ["more"]]);
  });

  it("an answer whose bytes are not the ones sent is corrupt: tcp-rr's pattern, http's echoed x's", () => {
    const answer = patternedAnswer(64);
    answer[40]! ^= 0x10;
    expect(new FixedReader(64).push(answer)).toEqual({ kind: "bad", why: "byte 40 of the answer is not the one sent", corrupt: true });
    expect(new FixedReader(64).push(patternedAnswer(64))).toMatchObject({ kind: "done" });
    expect(new HttpResponseReader().push(enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxzx"))).toEqual({ kind: "bad", why: "the echoed body is not the one sent", corrupt: true });
    // An error page is an HTTP status, not a corruption.
    expect(new HttpResponseReader().push(enc.encode("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"))).toMatchObject({ kind: "done", status: 404 });
  });

  it("udp-rr: the answer carries the request's sequence number and the length asked", () => {
    const req = udpRequest(7, 64, 200);
    expect(req.length).toBe(64);
    const answer = udpAnswer(req)!;
    expect(answer.length).toBe(200);
    expect(udpSeqOf(answer)).toBe(7);
    expect(udpAnswer(Uint8Array.of(1, 2, 3))).toBeUndefined();
    expect(udpAnswer(udpRequest(1, 8, 0))!.length).toBe(4);
  });
});
