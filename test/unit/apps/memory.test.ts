import { describe, expect, it } from "vitest";
import { MemoryTcpNetwork } from "../../../node-agent/tcp/memory.ts";
import { VirtualClock, ip } from "./harness.ts";

const text = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString());

function setup() {
  const clock = new VirtualClock();
  const net = new MemoryTcpNetwork({ schedule: clock.schedule });
  const a = net.host(ip("10.0.0.1"));
  const b = net.host(ip("10.0.0.2"));
  return { clock, net, a, b };
}

describe("MemoryTcpNetwork", () => {
  it("refuses a port with no listener, times out an unknown host on the injected clock", async () => {
    const { clock, net, a, b } = setup();
    void b;
    expect(await a.connect(ip("10.0.0.2"), 80)).toEqual({ kind: "refused" });
    const t0 = clock.now();
    expect(await a.connect(ip("10.9.9.9"), 80, { timeoutMs: 2000 })).toEqual({ kind: "timeout" });
    expect(clock.now() - t0).toBe(2000);
    net.unreachable(ip("10.9.9.8"));
    expect(await a.connect(ip("10.9.9.8"), 80)).toEqual({ kind: "unreachable" });
  });

  it("passes bytes both ways with half-close, and closes both ends after both FINs", async () => {
    const { a, b } = setup();
    const l = b.listen(7);
    if (l.kind !== "listening") throw new Error("listen");
    expect(b.listen(7)).toEqual({ kind: "inUse" });
    const c = await a.connect(ip("10.0.0.2"), 7);
    if (c.kind !== "connected") throw new Error("connect");
    const s = (await l.listener.accept())!;
    expect(s.remote).toEqual(c.socket.local);
    expect(c.socket.local.port).toBeGreaterThanOrEqual(32768);
    await c.socket.write(new TextEncoder().encode("ping"));
    c.socket.end();
    expect(text(await s.read())).toBe("ping");
    expect(await s.read()).toBeNull();
    // Half-closed: the server can still answer.
    expect(await s.write(new TextEncoder().encode("pong"))).toBe(true);
    s.end();
    expect(text(await c.socket.read())).toBe("pong");
    expect(await c.socket.read()).toBeNull();
    expect(await c.socket.closed).toEqual({ kind: "closed" });
    expect(await s.closed).toEqual({ kind: "closed" });
    expect(await c.socket.write(new Uint8Array(1))).toBe(false);
  });

  it("abort is a RST: the peer's read ends, unread data is discarded, reasons differ", async () => {
    const { a, b } = setup();
    const l = b.listen(7);
    if (l.kind !== "listening") throw new Error("listen");
    const c = await a.connect(ip("10.0.0.2"), 7);
    if (c.kind !== "connected") throw new Error("connect");
    const s = (await l.listener.accept())!;
    const pending = s.read();
    await s.write(new Uint8Array(10));
    c.socket.abort();
    expect(await pending).toBeNull();
    expect(await c.socket.read()).toBeNull();
    expect(await c.socket.closed).toEqual({ kind: "aborted" });
    expect(await s.closed).toEqual({ kind: "reset" });
  });

  it("write waits for the receiver when its window is full", async () => {
    const clock = new VirtualClock();
    const net = new MemoryTcpNetwork({ schedule: clock.schedule, windowBytes: 4 });
    const l = net.host(2).listen(1);
    if (l.kind !== "listening") throw new Error("listen");
    const c = await net.host(1).connect(2, 1);
    if (c.kind !== "connected") throw new Error("connect");
    let done = false;
    const w = c.socket.write(new Uint8Array(8)).then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    const s = (await l.listener.accept())!;
    expect((await s.read())!.length).toBe(8);
    await w;
    expect(done).toBe(true);
  });

  it("closing a listener ends accept() and resets queued connections", async () => {
    const { a, b } = setup();
    const l = b.listen(7);
    if (l.kind !== "listening") throw new Error("listen");
    const c = await a.connect(ip("10.0.0.2"), 7);
    if (c.kind !== "connected") throw new Error("connect");
    l.listener.close();
    expect(await l.listener.accept()).toBeNull();
    expect(await c.socket.closed).toEqual({ kind: "reset" });
    expect(await a.connect(ip("10.0.0.2"), 7)).toEqual({ kind: "refused" });
    expect(b.listen(7).kind).toBe("listening");
  });
});
