import { afterEach, describe, expect, it } from "vitest";
import type { ContainerSpec } from "../../../node-agent/apps/index.ts";
import { runTool } from "../../../node-agent/tools/index.ts";
import { SERVER, cluster, ip } from "./harness.ts";

const agnhost: ContainerSpec = { name: "netexec", image: "registry.k8s.io/e2e-test-images/agnhost:2.53", args: ["netexec", "--http-port=8080"], ports: [] };

let cleanup: Array<() => void> = [];
afterEach(() => {
  cleanup.forEach((f) => f());
  cleanup = [];
});

function env(containers: ContainerSpec[] = [agnhost]) {
  const e = cluster(containers);
  cleanup.push(() => e.apps.stop());
  return { ...e, run: (...argv: string[]) => runTool(e.ctx, argv) };
}

const URL = `http://${SERVER}:8080`;

describe("curl", () => {
  it("GET prints the body, exit 0, no stderr with -s", async () => {
    const { run } = env();
    expect(await run("curl", "-s", `${URL}/hostname`)).toEqual({ exitCode: 0, stdout: "server-pod", stderr: "" });
  });

  it("-w '%{http_code}' with -o /dev/null, and the other variables", async () => {
    const { run } = env();
    expect(await run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", `${URL}/healthz`)).toEqual({ exitCode: 0, stdout: "200", stderr: "" });
    const r = await run("curl", "-s", "-w", "\\n%{remote_ip} %{remote_port} %{time_total}", `${URL}/echo?msg=x`);
    expect(r.stdout).toMatch(/^x\n10\.244\.1\.5 8080 \d+\.\d{6}$/);
  });

  it("-v shows the connection, the request and the response on stderr", async () => {
    const { run } = env();
    const r = await run("curl", "-sv", `${URL}/hostname`);
    expect(r.exitCode).toBe(0);
    const lines = r.stderr.split("\n");
    expect(lines.slice(0, 7)).toEqual([
      "*   Trying 10.244.1.5:8080...",
      "* Connected to 10.244.1.5 (10.244.1.5) port 8080",
      "> GET /hostname HTTP/1.1",
      "> Host: 10.244.1.5:8080",
      "> User-Agent: curl/8.5.0",
      "> Accept: */*",
      "> ",
    ]);
    expect(lines).toContain("< HTTP/1.1 200 OK");
    expect(lines).toContain("< Content-Length: 10");
    expect(lines).toContain("{ [10 bytes data]");
    expect(lines).toContain("* Connection #0 to host 10.244.1.5 left intact");
  });

  it("refused: exit 7 and curl's message; -w still prints 000", async () => {
    const { run } = env();
    expect(await run("curl", `http://${SERVER}:81/`)).toEqual({
      exitCode: 7,
      stdout: "",
      stderr:
        "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n" +
        "                                 Dload  Upload   Total   Spent    Left  Speed\n" +
        "  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0\n" +
        "curl: (7) Failed to connect to 10.244.1.5 port 81 after 0 ms: Connection refused\n",
    });
    expect(await run("curl", "-s", "-w", "%{http_code}", `http://${SERVER}:81/`)).toEqual({ exitCode: 7, stdout: "000", stderr: "" });
  });

  it("timeout: exit 28 after --connect-timeout / -m, in virtual time", async () => {
    const { run } = env();
    expect(await run("curl", "-sS", "--connect-timeout", "2", "http://10.99.0.1/")).toEqual({ exitCode: 28, stdout: "", stderr: "curl: (28) Connection timed out after 2000 milliseconds\n" });
    expect((await run("curl", "-sS", "-m", "1.5", "http://10.99.0.1/")).stderr).toBe("curl: (28) Connection timed out after 1500 milliseconds\n");
  });

  it("timeout while waiting for the response: Operation timed out ... with 0 bytes received", async () => {
    const { run, serverTcp } = env([]);
    const l = serverTcp.listen(9000);
    if (l.kind !== "listening") throw new Error("listen");
    cleanup.push(() => l.listener.close());
    expect(await run("curl", "-sS", "-m", "2", `http://${SERVER}:9000/`)).toEqual({ exitCode: 28, stdout: "", stderr: "curl: (28) Operation timed out after 2000 milliseconds with 0 bytes received\n" });
  });

  it("empty reply (52) and reset (56)", async () => {
    const { run, serverTcp } = env([]);
    const l = serverTcp.listen(9000);
    if (l.kind !== "listening") throw new Error("listen");
    cleanup.push(() => l.listener.close());
    void (async () => {
      const first = await l.listener.accept();
      await first!.read();
      first!.end();
      const second = await l.listener.accept();
      await second!.read();
      second!.abort();
    })();
    expect(await run("curl", "-sS", `http://${SERVER}:9000/`)).toEqual({ exitCode: 52, stdout: "", stderr: "curl: (52) Empty reply from server\n" });
    expect(await run("curl", "-sS", `http://${SERVER}:9000/`)).toEqual({ exitCode: 56, stdout: "", stderr: "curl: (56) Recv failure: Connection reset by peer\n" });
  });

  it("an unresolvable name: exit 6; a resolver makes it work", async () => {
    const e = env();
    expect(await e.run("curl", "-sS", "http://web.default.svc:8080/")).toEqual({ exitCode: 6, stdout: "", stderr: "curl: (6) Could not resolve host: web.default.svc\n" });
    e.ctx.resolve = async (name) => (name === "web.default.svc" ? ip(SERVER) : undefined);
    expect((await e.run("curl", "-s", "http://web.default.svc:8080/hostname")).stdout).toBe("server-pod");
  });

  it("-f on a 404 exits 22 without the body; without -f the body is printed", async () => {
    const { run } = env([{ name: "web", image: "nginx", ports: [] }]);
    expect(await run("curl", "-sSf", `http://${SERVER}/missing`)).toEqual({ exitCode: 22, stdout: "", stderr: "curl: (22) The requested URL returned error: 404\n" });
    const r = await run("curl", "-s", `http://${SERVER}/missing`);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("<title>404 Not Found</title>");
  });

  it("-d POSTs a form (netexec /echo reads it), with curl's headers", async () => {
    const { run } = env();
    const r = await run("curl", "-sv", "-d", "msg=posted", `${URL}/echo`);
    expect(r.stdout).toBe("posted");
    expect(r.stderr).toContain("> POST /echo HTTP/1.1\n> Host: 10.244.1.5:8080\n> User-Agent: curl/8.5.0\n> Accept: */*\n> Content-Length: 10\n> Content-Type: application/x-www-form-urlencoded\n> \n} [10 bytes data]\n");
  });

  it("two URLs reuse one keep-alive connection", async () => {
    const { run } = env();
    const r = await run("curl", "-sv", `${URL}/clientip`, `${URL}/clientip`);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("* Re-using existing connection with host 10.244.1.5");
    expect(r.stderr.match(/Trying/g)?.length).toBe(1);
    const [a, b] = r.stdout.split(/(?<=:\d+)(?=10\.)/);
    expect(a).toBe(b);
  });

  it("without -s the progress meter goes to stderr, the body to stdout", async () => {
    const { run } = env();
    const r = await run("curl", `${URL}/hostname`);
    expect(r.stdout).toBe("server-pod");
    expect(r.stderr.split("\n")[2]).toBe("100    10  100    10    0     0      0      0 --:--:-- --:--:-- --:--:--     0");
  });

  it("-I sends HEAD and prints the headers", async () => {
    const { run } = env([{ name: "web", image: "nginx", ports: [] }]);
    const r = await run("curl", "-sI", `http://${SERVER}/`);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r.stdout).toContain("Server: nginx/");
    expect(r.stdout.endsWith("\r\n\r\n")).toBe(true);
  });

  it("usage errors exit 2", async () => {
    const { run } = env();
    expect((await run("curl")).exitCode).toBe(2);
    expect((await run("curl", "--bogus", URL)).stderr).toMatch(/^curl: option --bogus: is unknown\n/);
  });
});

describe("wget", () => {
  it("-qO- prints the body", async () => {
    const { run } = env();
    expect(await run("wget", "-qO-", `${URL}/hostname`)).toEqual({ exitCode: 0, stdout: "server-pod", stderr: "" });
    expect(await run("wget", "-q", "-O", "-", `${URL}/echo?msg=a+b`)).toEqual({ exitCode: 0, stdout: "a b", stderr: "" });
  });

  it("refused, HTTP errors and timeouts exit 1 with busybox's messages", async () => {
    const { run } = env();
    expect(await run("wget", "-qO-", `http://${SERVER}:81/`)).toEqual({ exitCode: 1, stdout: "", stderr: "wget: can't connect to remote host (10.244.1.5): Connection refused\n" });
    expect(await run("wget", "-qO-", `${URL}/echo?code=404&msg=x`)).toEqual({ exitCode: 1, stdout: "", stderr: "wget: server returned error: HTTP/1.1 404 Not Found\n" });
    expect((await run("wget", "-qO-", "-T", "2", "http://10.99.0.1/")).exitCode).toBe(1);
  });

  it("without -q shows busybox's progress lines", async () => {
    const { run } = env();
    const r = await run("wget", "-O-", `${URL}/hostname`);
    expect(r.stderr.split("\n")[0]).toBe("Connecting to 10.244.1.5:8080 (10.244.1.5:8080)");
    expect(r.stdout).toBe("server-pod");
  });
});

describe("nc", () => {
  it("-z -v: succeeded / refused", async () => {
    const { run } = env();
    expect(await run("nc", "-z", "-v", SERVER, "8080")).toEqual({ exitCode: 0, stdout: "", stderr: "Connection to 10.244.1.5 8080 port [tcp/http-alt] succeeded!\n" });
    expect(await run("nc", "-zv", SERVER, "81")).toEqual({ exitCode: 1, stdout: "", stderr: "nc: connect to 10.244.1.5 port 81 (tcp) failed: Connection refused\n" });
    // Without -v only the exit code tells, as OpenBSD nc.
    expect(await run("nc", "-z", SERVER, "81")).toEqual({ exitCode: 1, stdout: "", stderr: "" });
    expect(await run("nc", "-z", SERVER, "8079-8081")).toEqual({ exitCode: 1, stdout: "", stderr: "" });
  });

  it("-w bounds a connect to a black hole", async () => {
    const { run, clock } = env();
    const t0 = clock.now();
    expect(await run("nc", "-zv", "-w", "2", "10.99.0.1", "80")).toEqual({ exitCode: 1, stdout: "", stderr: "nc: connect to 10.99.0.1 port 80 (tcp) timed out: Operation now in progress\n" });
    expect(clock.now() - t0).toBe(2000);
  });

  it("-u -z: succeeds on a bound port, fails on an ICMP port unreachable", async () => {
    const { run } = env();
    expect((await run("nc", "-zuv", "-w", "1", SERVER, "8081")).stderr).toBe("Connection to 10.244.1.5 8081 port [udp/*] succeeded!\n");
    expect(await run("nc", "-zuv", "-w", "1", SERVER, "9")).toEqual({ exitCode: 1, stdout: "", stderr: "nc: connect to 10.244.1.5 port 9 (udp) failed: Connection refused\n" });
  });

  it("nc HOST PORT prints what the server sends", async () => {
    const { run, serverTcp } = env([]);
    const l = serverTcp.listen(7000);
    if (l.kind !== "listening") throw new Error("listen");
    cleanup.push(() => l.listener.close());
    void (async () => {
      const s = await l.listener.accept();
      await s!.write(Buffer.from("banner\n"));
      s!.end();
    })();
    expect(await run("nc", SERVER, "7000")).toEqual({ exitCode: 0, stdout: "banner\n", stderr: "" });
  });

  it("-l -p PORT receives one connection, bounded by -w", async () => {
    const e = env([]);
    const server = { ...e.ctx, tcp: e.serverTcp };
    const listening = runTool(server, ["nc", "-lv", "-p", "7001", "-w", "5"]);
    await new Promise((r) => setImmediate(r));
    const c = await e.ctx.tcp.connect(ip(SERVER), 7001);
    if (c.kind !== "connected") throw new Error(c.kind);
    await c.socket.write(Buffer.from("hello\n"));
    c.socket.end();
    const r = await listening;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe("hello\n");
    expect(r.stderr).toBe(`Listening on 0.0.0.0 7001\nConnection received on 10.244.2.7 ${c.socket.local.port}\n`);
    // Nobody connects: gives up after -w.
    expect((await runTool(server, ["nc", "-l", "-p", "7001", "-w", "1"])).exitCode).toBe(1);
  });
});
