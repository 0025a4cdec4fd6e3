import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { Netns } from "../../../node-agent/netns.ts";
import { startPodApps, type ContainerSpec } from "../../../node-agent/apps/index.ts";
import { MemoryTcpNetwork } from "../../../node-agent/tcp/memory.ts";
import type { ToolContext } from "../../../node-agent/tools/common.ts";
import { ddSummary, formatG, humanSize } from "../../../node-agent/tools/files.ts";
import { FsError, PodFs, normalizePath } from "../../../node-agent/tools/fs.ts";
import { runTool } from "../../../node-agent/tools/index.ts";
import { CLIENT, MemoryUdpNetwork, SERVER, VirtualClock, ip } from "./harness.ts";

const MiB = 1024 * 1024;
const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const code = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err instanceof FsError ? err.code : String(err);
  }
  return "ok";
};

describe("PodFs", () => {
  it("normalises absolute paths and refuses relative ones", () => {
    expect(normalizePath("/a//b/./c/../d/")).toBe("/a/b/d");
    expect(normalizePath("/../..")).toBe("/");
    expect(code(() => normalizePath("tmp/x"))).toBe("EINVAL");
    const fs = new PodFs();
    fs.write("/usr/share//nginx/html/./big", new Uint8Array([1, 2, 3]));
    expect(fs.read("/usr/share/nginx/html/big")).toEqual(new Uint8Array([1, 2, 3]));
    expect(fs.stat("/usr/share/nginx")).toMatchObject({ kind: "dir" });
    expect(fs.list("/usr/share/nginx/html").map((e) => [e.name, e.stat.kind])).toEqual([["big", "file"]]);
    expect(fs.list("/").map((e) => e.name)).toEqual(["tmp", "usr"]);
  });

  it("read/append/stat/remove and their errors", () => {
    const fs = new PodFs();
    expect(code(() => fs.read("/nope"))).toBe("ENOENT");
    expect(code(() => fs.read("/tmp"))).toBe("EISDIR");
    fs.append("/tmp/log", new Uint8Array([1]));
    fs.append("/tmp/log", new Uint8Array([2, 3]));
    expect(fs.stat("/tmp/log")).toMatchObject({ kind: "file", size: 3 });
    expect(code(() => fs.write("/tmp/log/x", new Uint8Array(1)))).toBe("ENOTDIR");
    expect(code(() => fs.write("/tmp", new Uint8Array(1)))).toBe("EISDIR");
    expect(code(() => fs.remove("/tmp"))).toBe("EISDIR");
    fs.remove("/tmp/log");
    expect(fs.stat("/tmp/log")).toBeUndefined();
    expect(fs.used).toBe(0);
    expect(code(() => fs.remove("/tmp/log"))).toBe("ENOENT");
  });

  it("a byte budget: past it a write fails whole with ENOSPC; replacing a file frees its bytes", () => {
    const fs = new PodFs({ capacityBytes: 100 });
    expect(new PodFs().capacity).toBe(256 * MiB);
    fs.write("/a", new Uint8Array(60));
    expect(code(() => fs.write("/b", new Uint8Array(41)))).toBe("ENOSPC");
    expect(fs.stat("/b")).toBeUndefined();
    expect(code(() => fs.append("/a", new Uint8Array(41)))).toBe("ENOSPC");
    fs.write("/a", new Uint8Array(100));
    expect(fs.used).toBe(100);
    expect(fs.free).toBe(0);
    expect(new FsError("ENOSPC", "/a").message).toBe("No space left on device");
  });
});

describe("dd, sha256sum, cat, ls, rm", () => {
  const ctxWith = (fs: PodFs | undefined): ToolContext => {
    const clock = new VirtualClock();
    return { ns: {} as Netns, tcp: new MemoryTcpNetwork({ schedule: clock.schedule }).host(ip(CLIENT)), podName: "p", clock, ...(fs ? { fs } : {}) };
  };

  it("dd's summary as GNU dd prints it", () => {
    expect(ddSummary(64, 0, 64, 0, 64 * MiB, 0.5)).toBe("64+0 records in\n64+0 records out\n67108864 bytes (67 MB, 64 MiB) copied, 0.5 s, 134 MB/s\n");
    expect(ddSummary(1, 0, 1, 0, MiB, 0.00259)).toBe("1+0 records in\n1+0 records out\n1048576 bytes (1.0 MB, 1.0 MiB) copied, 0.00259 s, 405 MB/s\n");
    expect(ddSummary(1, 0, 1, 0, 512, 0.000041)).toBe("1+0 records in\n1+0 records out\n512 bytes copied, 4.1e-05 s, 12 MB/s\n");
    expect(humanSize(1000, 1000)).toBe("1.0 kB");
    expect(humanSize(1000, 1024)).toBe("1000 B");
    expect(formatG(2.003274)).toBe("2.00327");
  });

  it("dd if=/dev/zero bs=1M count=1: the file, the summary, and sha256sum's line", async () => {
    const fs = new PodFs();
    const ctx = ctxWith(fs);
    const r = await runTool(ctx, ["dd", "if=/dev/zero", "of=/tmp/zero", "bs=1M", "count=1"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("1+0 records in\n1+0 records out\n1048576 bytes (1.0 MB, 1.0 MiB) copied, 0 s, Infinity B/s\n");
    const expected = sha(new Uint8Array(MiB));
    expect(await runTool(ctx, ["sha256sum", "/tmp/zero"])).toEqual({ exitCode: 0, stdout: `${expected}  /tmp/zero\n`, stderr: "" });
    // Relative paths are from "/"; a missing file is reported and the others still summed.
    expect(await runTool(ctx, ["sha256sum", "tmp/zero", "/tmp/missing"])).toEqual({
      exitCode: 1,
      stdout: `${expected}  tmp/zero\n`,
      stderr: "sha256sum: /tmp/missing: No such file or directory\n",
    });
  });

  it("dd if=/dev/urandom: random bytes, bs suffixes; past the budget ENOSPC with what fitted", async () => {
    const fs = new PodFs({ capacityBytes: 3 * 1024 + 100 });
    const ctx = ctxWith(fs);
    const r = await runTool(ctx, ["dd", "if=/dev/urandom", "of=/tmp/r", "bs=1K", "count=2"]);
    expect(r.stderr.split("\n")[2]).toMatch(/^2048 bytes \(2\.0 kB, 2\.0 KiB\) copied, /);
    expect(fs.read("/tmp/r").some((b) => b !== 0)).toBe(true);
    const full = await runTool(ctx, ["dd", "if=/dev/zero", "of=/tmp/z", "bs=1024", "count=4"]);
    expect(full.exitCode).toBe(1);
    expect(full.stderr).toMatch(/^dd: error writing '\/tmp\/z': No space left on device\n2\+0 records in\n1\+1 records out\n1124 bytes \(1\.1 kB, 1\.1 KiB\) copied/);
    expect(fs.stat("/tmp/z")).toMatchObject({ size: 1124 });
    expect((await runTool(ctx, ["dd", "if=/dev/zero", "of=/tmp/z", "bs=1x"])).exitCode).toBe(2);
  });

  it("cat, ls -l, rm", async () => {
    const fs = new PodFs({ now: () => new Date(Date.UTC(2024, 4, 6, 7, 8, 9)) });
    const ctx = ctxWith(fs);
    fs.write("/tmp/hello", new TextEncoder().encode("hi there\n"));
    expect(await runTool(ctx, ["cat", "/tmp/hello"])).toEqual({ exitCode: 0, stdout: "hi there\n", stderr: "" });
    expect(await runTool(ctx, ["cat", "/x"])).toEqual({ exitCode: 1, stdout: "", stderr: "cat: /x: No such file or directory\n" });
    expect(await runTool(ctx, ["ls", "-l", "/tmp"])).toEqual({ exitCode: 0, stdout: "total 4\n-rw-r--r-- 1 root root 9 May  6 07:08 hello\n", stderr: "" });
    expect(await runTool(ctx, ["rm", "/tmp/hello"])).toEqual({ exitCode: 0, stdout: "", stderr: "" });
    expect(await runTool(ctx, ["rm", "/tmp/hello"])).toEqual({ exitCode: 1, stdout: "", stderr: "rm: cannot remove '/tmp/hello': No such file or directory\n" });
    expect((await runTool(ctx, ["ls", "/nope"])).stderr).toBe("ls: cannot access '/nope': No such file or directory\n");
    expect(await runTool(ctxWith(undefined), ["sha256sum", "/x"])).toEqual({ exitCode: 1, stdout: "", stderr: "sha256sum: this pod has no emulated filesystem\n" });
  });
});

describe("curl -o from nginx serving a file of the pod's filesystem", () => {
  let stop: Array<() => void> = [];
  afterEach(() => {
    stop.forEach((f) => f());
    stop = [];
  });

  function pods(flavor: "nginx" | "httpd" = "nginx", clientFs = new PodFs()) {
    const clock = new VirtualClock();
    const tcp = new MemoryTcpNetwork({ schedule: clock.schedule });
    const udp = new MemoryUdpNetwork();
    const serverFs = new PodFs();
    const web: ContainerSpec = { name: "web", image: flavor, ports: [] };
    const logs: string[] = [];
    const apps = startPodApps(
      { podName: "server", tcp: tcp.host(ip(SERVER)), udp: udp.host(ip(SERVER)), log: (l) => logs.push(l), now: () => new Date(0), schedule: clock.schedule, fs: serverFs },
      [web],
    );
    stop.push(() => apps.stop());
    const server: ToolContext = { ns: udp.host(ip(SERVER)) as unknown as Netns, tcp: tcp.host(ip(SERVER)), podName: "server", clock, fs: serverFs };
    const client: ToolContext = { ns: udp.host(ip(CLIENT)) as unknown as Netns, tcp: tcp.host(ip(CLIENT)), podName: "client", clock, fs: clientFs };
    return { server, client, serverFs, clientFs, logs };
  }

  it("a 4 MiB random file arrives intact: the same sha256 on both pods", async () => {
    const { server, client, clientFs, logs } = pods();
    expect((await runTool(server, ["dd", "if=/dev/urandom", "of=/usr/share/nginx/html/big", "bs=1M", "count=4"])).exitCode).toBe(0);
    const before = await runTool(server, ["sha256sum", "/usr/share/nginx/html/big"]);
    const r = await runTool(client, ["curl", "-s", "-o", "/tmp/big", "-w", "%{http_code} %{size_download}", `http://${SERVER}/big`]);
    expect(r).toEqual({ exitCode: 0, stdout: `200 ${4 * MiB}`, stderr: "" });
    const after = await runTool(client, ["sha256sum", "/tmp/big"]);
    expect(after.stdout.split(" ")[0]).toBe(before.stdout.split(" ")[0]);
    expect(after.stdout.split(" ")[0]).toBe(sha(clientFs.read("/tmp/big")));
    expect(logs.at(-1)).toMatch(/"GET \/big HTTP\/1\.1" 200 4194304 "-" "curl\/8\.5\.0"/);
  });

  it("headers of a served file; the welcome page stays; HEAD; 404; no escape from the docroot", async () => {
    const { server, client, serverFs } = pods("httpd");
    serverFs.write("/etc/secret", new Uint8Array([1]));
    await runTool(server, ["dd", "if=/dev/zero", "of=/usr/local/apache2/htdocs/f.bin", "bs=1000", "count=3"]);
    const head = await runTool(client, ["curl", "-sI", `http://${SERVER}/f.bin`]);
    expect(head.stdout).toContain("Content-Length: 3000\r\n");
    expect(head.stdout).toContain("Content-Type: application/octet-stream\r\n");
    expect((await runTool(client, ["curl", "-s", `http://${SERVER}/`])).stdout).toContain("It works!");
    expect((await runTool(client, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", `http://${SERVER}/nope`])).stdout).toBe("404");
    expect((await runTool(client, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", `http://${SERVER}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/secret`])).stdout).toBe("404");
    expect((await runTool(client, ["wget", "-q", "-O", "/tmp/w", `http://${SERVER}/f.bin`])).exitCode).toBe(0);
    expect(client.fs!.stat("/tmp/w")).toMatchObject({ size: 3000 });
  });

  it("curl -o: exit 23 when the client has no filesystem or it is full", async () => {
    const { server, client } = pods("nginx", new PodFs({ capacityBytes: 1000 }));
    await runTool(server, ["dd", "if=/dev/zero", "of=/usr/share/nginx/html/f", "bs=2000", "count=1"]);
    expect(await runTool(client, ["curl", "-sS", "-o", "/tmp/f", `http://${SERVER}/f`])).toEqual({ exitCode: 23, stdout: "", stderr: "curl: (23) Failure writing output to destination\n" });
    const { fs: _fs, ...noFs } = client;
    expect((await runTool(noFs, ["curl", "-sS", "-o", "/tmp/f", `http://${SERVER}/f`])).exitCode).toBe(23);
  });
});
