import { afterEach, describe, expect, it } from "vitest";
import type { ContainerSpec } from "../../../node-agent/apps/index.ts";
import { NGINX_WELCOME } from "../../../node-agent/apps/webserver.ts";
import { HttpConnection, readResponse, type ResponseOutcome } from "../../../node-agent/tools/curl.ts";
import { CLIENT, SERVER, cluster, ip } from "./harness.ts";

const agnhost: ContainerSpec = { name: "netexec", image: "registry.k8s.io/e2e-test-images/agnhost:2.53", args: ["netexec", "--http-port=8080"], ports: [] };

let cleanup: Array<() => void> = [];
afterEach(() => {
  cleanup.forEach((f) => f());
  cleanup = [];
});

async function open(containers: ContainerSpec[] = [agnhost], port = 8080) {
  const env = cluster(containers);
  cleanup.push(() => env.apps.stop());
  const res = await env.ctx.tcp.connect(ip(SERVER), port);
  if (res.kind !== "connected") throw new Error(res.kind);
  const conn = new HttpConnection(res.socket, 0, env.clock);
  const never = new Promise<"timeout">(() => {});
  const get = async (target: string, extra = ""): Promise<ResponseOutcome & { kind: "ok" }> => {
    await res.socket.write(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: ${SERVER}\r\n${extra}\r\n`));
    const out = await readResponse(conn, "GET", never);
    if (out.kind !== "ok") throw new Error(out.kind);
    return out;
  };
  return { ...env, socket: res.socket, get };
}

const body = (r: { body: Uint8Array }) => Buffer.from(r.body).toString();

describe("netexec", () => {
  it("/hostname is the pod name, /echo the message, /healthz 200", async () => {
    const { get, logs } = await open();
    expect(body(await get("/hostname"))).toBe("server-pod");
    expect(body(await get("/echo?msg=hi"))).toBe("hi");
    const health = await get("/healthz");
    expect(health.head.status).toBe(200);
    expect(body(health)).toBe("");
    expect(logs).toContain("2024/05/06 07:08:09 Started HTTP server on port 8080");
    expect(logs).toContain("2024/05/06 07:08:09 GET /echo?msg=hi&code=");
  });

  it("/clientip shows the client's address and port as the server saw them", async () => {
    const { get, socket } = await open();
    expect(body(await get("/clientip"))).toBe(`${CLIENT}:${socket.local.port}`);
  });

  it("/ is NOW: in Go's time format; unknown paths go to /", async () => {
    const { get } = await open();
    expect(body(await get("/"))).toMatch(/^NOW: 2024-05-06 07:08:09\.12 \+0000 UTC m=\+\d+\.\d{9}$/);
    expect(body(await get("/anything"))).toMatch(/^NOW: /);
  });

  it("/echo with code sets the status", async () => {
    const { get } = await open();
    const r = await get("/echo?msg=gone&code=503");
    expect(r.head.status).toBe(503);
    expect(body(r)).toBe("gone");
  });

  it("keeps the connection alive: two requests on one connection", async () => {
    const { get, socket } = await open();
    const first = await get("/clientip");
    const second = await get("/clientip");
    expect(body(first)).toBe(body(second));
    expect(first.reusable && second.reusable).toBe(true);
    expect(await Promise.race([socket.closed, new Promise((r) => setImmediate(() => r("open")))])).toBe("open");
  });

  it("closes an idle keep-alive connection after Node's 5 s keepAliveTimeout, with a FIN", async () => {
    const { get, socket, clock } = await open();
    await get("/hostname");
    const t0 = clock.now();
    expect(await socket.read()).toBeNull();
    // "Keep-Alive: timeout=5" is advertised; Node's socket timer adds a 1 s grace on top.
    expect(clock.now() - t0).toBe(6000);
    socket.end();
    expect(await socket.closed).toEqual({ kind: "closed" });
  });

  it("Connection: close is honoured", async () => {
    const { get, socket } = await open();
    const r = await get("/hostname", "Connection: close\r\n");
    expect(r.reusable).toBe(false);
    expect(await socket.read()).toBeNull();
  });

  it("nginx serves its welcome page on 80 and 404 elsewhere, not netexec's endpoints", async () => {
    const { get, logs } = await open([{ name: "web", image: "nginx:1.27", ports: [] }], 80);
    const page = await get("/");
    expect(page.head.status).toBe(200);
    expect(body(page)).toBe(NGINX_WELCOME);
    expect(page.body.length).toBe(615);
    expect((await get("/hostname")).head.status).toBe(404);
    expect(logs.some((l) => /^10\.244\.2\.7 - - \[06\/May\/2024:07:08:09 \+0000\] "GET \/ HTTP\/1\.1" 200 615/.test(l))).toBe(true);
  });

  it("UDP: hostname, echo, clientip", async () => {
    const { udp, clientUdp, apps } = await open();
    void udp;
    expect(apps.listening).toEqual([
      { port: 8080, protocol: "TCP", app: "netexec", container: "netexec" },
      { port: 8081, protocol: "UDP", app: "netexec", container: "netexec" },
    ]);
    const answers: string[] = [];
    const port = clientUdp.bindEphemeralUdp((payload) => answers.push(Buffer.from(payload).toString()));
    for (const q of ["hostname", "echo Hello", "clientip\n", "bogus"]) clientUdp.sendUdp(ip(SERVER), 8081, port, Buffer.from(q));
    await new Promise((r) => setImmediate(r));
    expect(answers).toEqual(["server-pod", "hello", `${CLIENT}:${port}`]);
  });
});
