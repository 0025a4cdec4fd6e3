/**
 * The load client against the in-memory TCP and UDP on a virtual clock (test/unit/apps/harness.ts):
 * the schedule, the coordinated-omission correction and errors by kind, with no sockets or sleeps.
 */
import { describe, expect, it } from "vitest";
import type { LoadSnapshot, LoadWorkload } from "../../../cluster/types.ts";
import { RrServerReader, patternedAnswer } from "../../../node-agent/load/protocol.ts";
import { startLoadServer } from "../../../node-agent/load/server.ts";
import { decodeHistogram } from "../../../node-agent/load/stats.ts";
import { startLoadClient, type LoadNet } from "../../../node-agent/load/worker.ts";
import { MemoryTcpNetwork } from "../../../node-agent/tcp/memory.ts";
import { formatIpv4 } from "../../../overlay/wire/index.ts";
import { MemoryUdpNetwork, VirtualClock, ip } from "../apps/harness.ts";

const SERVER = "10.244.1.5";
const CLIENT = "10.244.2.7";

function world() {
  const clock = new VirtualClock();
  const tcp = new MemoryTcpNetwork({ schedule: clock.schedule });
  const udp = new MemoryUdpNetwork();
  const net: LoadNet = { tcp: tcp.host(ip(CLIENT)), udp: udp.host(ip(CLIENT)), clock, endpointOf: (_p, _l, dst) => formatIpv4(dst) };
  return { clock, tcp, udp, net, server: { tcp: tcp.host(ip(SERVER)), udp: udp.host(ip(SERVER)) } };
}

function workload(w: Partial<LoadWorkload>): LoadWorkload {
  return { scenario: "tcp-rr", targets: [{ ip: SERVER, port: 5201 }], connections: 1, rate: 10, durationMs: 1000, timeoutMs: 500, requestBytes: 16, responseBytes: 32, intervalMs: 500, ...w };
}

async function run(net: LoadNet, w: LoadWorkload): Promise<LoadSnapshot[]> {
  const out: LoadSnapshot[] = [];
  const c = startLoadClient(net, { runId: "r", worker: "w", node: "node-1", workload: w, publish: (s) => out.push(s) });
  await c.done;
  return out;
}

/** A tcp-rr server on port 5201 whose answer of length n is `answer(n)` (a stall, a corruption...). */
function rrServer(tcp: ReturnType<MemoryTcpNetwork["host"]>, answer: (n: number) => Promise<Uint8Array>): void {
  const listening = tcp.listen(5201);
  if (listening.kind !== "listening") throw new Error("listen");
  void (async () => {
    for await (const sock of listening.listener) {
      const reader = new RrServerReader();
      for await (const chunk of sock) {
        const due = reader.push(chunk);
        if (due === "bad") throw new Error("bad request");
        for (const n of due) await sock.write(await answer(n));
      }
    }
  })();
}

const latencies = (s: LoadSnapshot) => decodeHistogram(s.endpoints![0]!.latency)!;

describe("load client", () => {
  it("open loop: every request due in the run is sent and answered; interval snapshots, then the final", async () => {
    const { net, server } = world();
    expect(startLoadServer(server, "tcp-rr", 5201).kind).toBe("serving");
    const snaps = await run(net, workload({ connections: 2, rate: 20, durationMs: 1000, intervalMs: 400 }));
    const final = snaps.at(-1)!;
    expect(snaps.map((s) => s.kind)).toEqual(["interval", "interval", "final"]);
    expect(snaps.slice(0, 2).map((s) => s.seq)).toEqual([0, 1]);
    expect(final).toMatchObject({ intended: 20, sent: 20 });
    expect(final.endpoints).toEqual([expect.objectContaining({ endpoint: SERVER, requests: 20, errors: {}, connects: 2, bytesSent: 20 * 16, bytesReceived: 20 * 32 })]);
    expect(snaps.reduce((n, s) => n + s.interval.requests, 0)).toBe(20);
  });

  it("a server that stalls 1 s: the requests queued behind the stall count their wait from their intended time (coordinated omission)", async () => {
    const { net, server, clock } = world();
    let first = true;
    rrServer(server.tcp, async (n) => {
      if (first) await clock.sleep(1000);
      first = false;
      return patternedAnswer(n);
    });
    const final = (await run(net, workload({ rate: 10, durationMs: 2000, timeoutMs: 5000 }))).at(-1)!;
    expect(final).toMatchObject({ intended: 20, sent: 20 });
    const h = latencies(final);
    expect(h.totalCount).toBe(20);
    // Request 0 waited 1000 ms; requests 1-9 were due at 100..900 ms and went out at 1000 ms, so
    // they took 900..100 ms; requests 10-19 went on time. Measured from their send, requests 1-9
    // would have taken no time and the stall would show as one slow request of twenty, not ten.
    expect(h.maxValue).toBeGreaterThanOrEqual(999_000);
    expect(h.getValueAtPercentile(50)).toBeLessThan(1000);
    expect(h.getValueAtPercentile(55)).toBeGreaterThanOrEqual(99_000);
    expect(h.getValueAtPercentile(55)).toBeLessThan(101_000);
  });

  it("--no-reuse: every request on a connection of its own", async () => {
    const { net, server } = world();
    expect(startLoadServer(server, "tcp-rr", 5201).kind).toBe("serving");
    const final = (await run(net, workload({ connections: 2, rate: 20, durationMs: 1000, reuse: false }))).at(-1)!;
    expect(final.endpoints).toEqual([expect.objectContaining({ requests: 20, errors: {}, connects: 20 })]);
  });

  it("a corrupted answer is counted as corrupt, not as an answer", async () => {
    const { net, server } = world();
    rrServer(server.tcp, async (n) => {
      const a = patternedAnswer(n);
      a[n - 1]! ^= 1;
      return a;
    });
    const final = (await run(net, workload({ rate: 10, durationMs: 300 }))).at(-1)!;
    expect(final.endpoints![0]).toMatchObject({ requests: 0, errors: { corrupt: 3 } });
  });

  it("a closed port: every request fails as refused; udp-rr likewise from the ICMP error", async () => {
    const { net } = world();
    const tcp = (await run(net, workload({ rate: 10, durationMs: 500 }))).at(-1)!;
    expect(tcp.sent).toBe(5);
    expect(tcp.endpoints).toEqual([expect.objectContaining({ endpoint: SERVER, requests: 0, errors: { refused: 5 }, connects: 0 })]);
    const udp = (await run(net, workload({ scenario: "udp-rr", rate: 10, durationMs: 500 }))).at(-1)!;
    expect(udp.endpoints).toEqual([expect.objectContaining({ requests: 0, errors: { refused: 5 } })]);
  });

  it("udp-rr: answers matched by sequence number; the answer's size is the one asked for", async () => {
    const { net, server } = world();
    expect(startLoadServer(server, "udp-rr", 5201).kind).toBe("serving");
    const final = (await run(net, workload({ scenario: "udp-rr", connections: 3, rate: 30, durationMs: 1000, requestBytes: 40, responseBytes: 100 }))).at(-1)!;
    expect(final).toMatchObject({ intended: 30, sent: 30 });
    expect(final.endpoints).toEqual([expect.objectContaining({ requests: 30, errors: {}, bytesSent: 1200, bytesReceived: 3000 })]);
  });

  it("an unanswered request is a timeout", async () => {
    const { net, server } = world();
    const listening = server.tcp.listen(5201);
    if (listening.kind !== "listening") throw new Error("listen");
    void (async () => {
      for await (const sock of listening.listener) void (async () => { for await (const _ of sock) { /* never answers */ } })();
    })();
    const final = (await run(net, workload({ rate: 10, durationMs: 300, timeoutMs: 50 }))).at(-1)!;
    expect(final.endpoints![0]!.errors).toEqual({ timeout: 3 });
  });
});
