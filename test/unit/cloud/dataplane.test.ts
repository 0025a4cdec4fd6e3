/**
 * The load balancer's data plane on real loopback sockets, with fake nodes (servers on
 * 127.B.C.1 and .2 standing for their NodePorts), an injected health probe and a FakeClock for
 * the periodic work: round-robin over nodes, Local traffic only to nodes passing the health
 * check, resets when there is no backend, half-close, UDP flows, and bind failures retried.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type Server } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../../cluster/clock.ts";
import type { LbNode, ListenerSpec } from "../../../control-plane/cloud/balancing.ts";
import { LoadBalancerDataPlane } from "../../../control-plane/cloud/dataplane.ts";

const log = pino({ level: "silent" });
// A loopback block of this run's own, so parallel runs never share an address.
const BLOCK = `127.${200 + Math.floor(Math.random() * 30)}.${Math.floor(Math.random() * 250)}`;
const LB_IP = `${BLOCK}.100`;
let nextPort = 20000 + Math.floor(Math.random() * 20000);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fake node's TCP NodePort: answers every connection with its name and what it read (after the client's FIN). */
async function tcpNode(host: string, name: string): Promise<number> {
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    let got = "";
    s.on("data", (d) => (got += d));
    s.on("end", () => s.end(`${name}:${got}`));
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as { port: number }).port;
}

/** A fake node's UDP NodePort: echoes each datagram prefixed with its name. */
async function udpNode(host: string, name: string, port: number): Promise<void> {
  const s = createSocket("udp4");
  s.on("message", (m, r) => s.send(`${name}:${m}`, r.port, r.address));
  await new Promise<void>((r) => s.bind(port, host, r));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
}

/** Sends `data`, half-closes, and reads everything back; rejects on a reset. */
function request(ip: string, port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect({ host: ip, port, allowHalfOpen: true });
    let got = "";
    c.on("data", (d) => (got += d));
    c.on("end", () => {
      c.end();
      resolve(got);
    });
    c.on("error", reject);
    c.end(data);
  });
}

function udpClient(): UdpSocket {
  const s = createSocket("udp4");
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

function udpAsk(s: UdpSocket, ip: string, port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no UDP reply")), 2000);
    s.once("message", (m) => {
      clearTimeout(timer);
      resolve(String(m));
    });
    s.send(data, port, ip);
  });
}

const nodes = (ready = true): LbNode[] => [
  { name: "node-1", hostAddress: `${BLOCK}.1`, ready, excluded: false },
  { name: "node-2", hostAddress: `${BLOCK}.2`, ready: true, excluded: false },
];

function start(probe?: (host: string, port: number) => boolean, logger = log) {
  const clock = new FakeClock();
  const probes: string[] = [];
  const dp = new LoadBalancerDataPlane(logger, clock, {}, async (host, port) => {
    probes.push(`${host}:${port}`);
    return probe?.(host, port) ?? false;
  });
  dp.start();
  cleanups.push(() => dp.stop());
  return { dp, clock, probes };
}

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function tcpListener(nodePort: number, extra: Partial<ListenerSpec> = {}): ListenerSpec {
  const port = nextPort++;
  return { id: `TCP/${LB_IP}:${port}`, service: "default/web", portName: "", protocol: "TCP", ip: LB_IP, port, nodePort, healthCheckNodePort: undefined, sourceRanges: [], ...extra };
}

describe("LoadBalancerDataPlane (TCP)", () => {
  it("spreads connections round-robin over the Ready nodes' NodePorts, passing half-closed streams through", async () => {
    const p1 = await tcpNode(`${BLOCK}.1`, "node-1");
    // Both fake nodes on one port number, as a NodePort is the same on every node.
    const p2 = await new Promise<number>((resolve) => {
      const s = createServer({ allowHalfOpen: true }, (c) => {
        let got = "";
        c.on("data", (d) => (got += d));
        c.on("end", () => c.end(`node-2:${got}`));
      });
      s.listen(p1, `${BLOCK}.2`, () => resolve(p1));
      cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
    });
    const { dp } = start();
    const l = tcpListener(p2);
    dp.update([l], nodes());
    await until("listening", () => dp.snapshot().listening.includes(l.id));
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) answers.push(await request(LB_IP, l.port, `req${i}`));
    expect(answers).toEqual(["node-1:req0", "node-2:req1", "node-1:req2", "node-2:req3"]);
  });

  it("sends nothing to a node that is not Ready (policy Cluster)", async () => {
    const port = await tcpNode(`${BLOCK}.2`, "node-2");
    const { dp } = start();
    const l = tcpListener(port);
    dp.update([l], nodes(false));
    await until("listening", () => dp.snapshot().listening.includes(l.id));
    for (let i = 0; i < 3; i++) expect(await request(LB_IP, l.port, "x")).toBe("node-2:x");
  });

  it("policy Local: only nodes whose health check answered 200, following the checks every 2 s", async () => {
    const port = await tcpNode(`${BLOCK}.1`, "node-1");
    await new Promise<void>((resolve) => {
      const s = createServer({ allowHalfOpen: true }, (c) => c.on("end", () => c.end("node-2:")).resume());
      s.listen(port, `${BLOCK}.2`, () => resolve());
      cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
    });
    let healthy = `${BLOCK}.2`;
    const { dp, clock, probes } = start((host) => host === healthy);
    const l = tcpListener(port, { healthCheckNodePort: 32000 });
    dp.update([l], nodes());
    // Checked at once on the update: both nodes' healthCheckNodePort.
    expect(probes.sort()).toEqual([`${BLOCK}.1:32000`, `${BLOCK}.2:32000`]);
    await until("health known", () => Object.keys(dp.snapshot().health).length === 2);
    expect(dp.snapshot().health).toEqual({ [`${BLOCK}.1:32000`]: "unhealthy", [`${BLOCK}.2:32000`]: "healthy" });
    await until("listening", () => dp.snapshot().listening.includes(l.id));
    for (let i = 0; i < 3; i++) expect(await request(LB_IP, l.port, "")).toBe("node-2:");
    // node-2 loses its local endpoint (503), node-1 gains one: after the next round, node-1 only.
    healthy = `${BLOCK}.1`;
    clock.advance(2000);
    await until("health flipped", () => dp.snapshot().health[`${BLOCK}.1:32000`] === "healthy" && dp.snapshot().health[`${BLOCK}.2:32000`] === "unhealthy");
    for (let i = 0; i < 3; i++) expect(await request(LB_IP, l.port, "")).toBe("node-1:");
  });

  it("resets the client when no node passes the health check, and when the node refuses", async () => {
    const { dp } = start(() => false);
    const l = tcpListener(1, { healthCheckNodePort: 32000 });
    dp.update([l], nodes());
    await until("listening", () => dp.snapshot().listening.includes(l.id));
    await expect(request(LB_IP, l.port, "x")).rejects.toMatchObject({ code: "ECONNRESET" });
    // Cluster policy toward a port nothing listens on: the backend's refusal becomes a reset.
    const refused = tcpListener(1);
    dp.update([refused], nodes());
    await until("listening", () => dp.snapshot().listening.includes(refused.id));
    await expect(request(LB_IP, refused.port, "x")).rejects.toMatchObject({ code: "ECONNRESET" });
  });

  it("closes the listener of a Service port that went", async () => {
    const port = await tcpNode(`${BLOCK}.1`, "node-1");
    const { dp } = start();
    const l = tcpListener(port);
    dp.update([l], nodes());
    await until("listening", () => dp.snapshot().listening.includes(l.id));
    dp.update([], nodes());
    await until("closed", () => dp.snapshot().listening.length === 0);
    await expect(request(LB_IP, l.port, "x")).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("logs a bind failure (EADDRINUSE) and binds on a later resync once the address is free, never throwing", async () => {
    const l = tcpListener(1);
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(l.port, LB_IP, r));
    const lines: Array<{ level: number; msg: string; code?: string; listener?: string }> = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const { dp, clock } = start(undefined, logger);
    dp.update([l], nodes());
    await until("bind failed", () => dp.snapshot().binding.length === 0);
    expect(dp.snapshot().listening).toEqual([]);
    clock.advance(2000);
    await until("bind failed again", () => dp.snapshot().binding.length === 0);
    // One warning naming the listener and the error; the retries at debug.
    const failures = lines.filter((x) => x.msg.startsWith("load balancer listener failed"));
    expect(failures.map((x) => [x.level, x.code, x.listener])).toEqual([
      [40, "EADDRINUSE", l.id],
      [20, "EADDRINUSE", l.id],
    ]);
    await new Promise<void>((r) => squatter.close(() => r()));
    clock.advance(2000);
    await until("listening after the retry", () => dp.snapshot().listening.includes(l.id));
    expect(lines.filter((x) => x.msg === "load balancer listening").map((x) => x.listener)).toEqual([l.id]);
  });

  it("survives an address the machine does not have (EADDRNOTAVAIL)", async () => {
    const { dp, clock } = start();
    const l = { ...tcpListener(1), ip: "192.0.2.1", id: "TCP/192.0.2.1:80", port: 80 };
    dp.update([l], nodes());
    await until("bind failed", () => dp.snapshot().binding.length === 0);
    clock.advance(2000);
    await until("bind failed again", () => dp.snapshot().binding.length === 0);
    expect(dp.snapshot().listening).toEqual([]);
  });
});

describe("LoadBalancerDataPlane (UDP)", () => {
  it("relays datagrams to one node per client flow and the replies back from the load balancer's address", async () => {
    const nodePort = nextPort++;
    await udpNode(`${BLOCK}.1`, "node-1", nodePort);
    await udpNode(`${BLOCK}.2`, "node-2", nodePort);
    const { dp } = start();
    const port = nextPort++;
    const l: ListenerSpec = { id: `UDP/${LB_IP}:${port}`, service: "default/dns", portName: "", protocol: "UDP", ip: LB_IP, port, nodePort, healthCheckNodePort: undefined, sourceRanges: [] };
    dp.update([l], nodes());
    await until("listening", () => dp.snapshot().listening.includes(l.id));
    const a = udpClient();
    const b = udpClient();
    const fromA = [await udpAsk(a, LB_IP, port, "q1"), await udpAsk(a, LB_IP, port, "q2"), await udpAsk(a, LB_IP, port, "q3")];
    // One flow, one node: every answer from the node the first datagram went to.
    expect(new Set(fromA.map((x) => x.split(":")[0])).size).toBe(1);
    expect(fromA.map((x) => x.split(":")[1])).toEqual(["q1", "q2", "q3"]);
    const fromB = await udpAsk(b, LB_IP, port, "hello");
    // The second flow goes to the other node (round-robin per new flow).
    expect(fromB.split(":")[0]).not.toBe(fromA[0]!.split(":")[0]);
    // Replies come from lbIP:port, as the client addressed them.
    const src = await new Promise<string>((resolve) => {
      a.once("message", (_m, r) => resolve(`${r.address}:${r.port}`));
      a.send("x", port, LB_IP);
    });
    expect(src).toBe(`${LB_IP}:${port}`);
  });
});
