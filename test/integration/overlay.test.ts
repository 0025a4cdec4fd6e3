/**
 * The walking skeleton end to end: a real nats-server, the control plane and three node-agent
 * processes; pods on every node reach each other; traces, traceroute and a tshark-decoded
 * capture show the path; garbage on the overlay is counted and dropped; node and control-plane
 * restarts lose nothing.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mustParseCidr } from "../../cluster/addressing.ts";
import { Subjects } from "../../cluster/types.ts";
import { cidrsOverlap } from "../../cluster/ipam.ts";
import { decodeBatch, encodeBatch, parseIpv4Addr } from "../../overlay/wire/index.ts";
import { mulberry32 } from "../unit/wire/rng.ts";
import { TestCluster, type TestPod } from "./fixture.ts";

let cluster: TestCluster;
const pods: TestPod[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start(3);
  for (const node of cluster.nodeNames) {
    for (const suffix of ["a", "b"]) pods.push(await cluster.createPod(`${node}-${suffix}`, node));
  }
});

afterAll(async () => {
  await cluster?.stop();
});

function pod(name: string): TestPod {
  return pods.find((p) => p.name === name)!;
}

async function pingOk(from: TestPod, to: TestPod | string): Promise<void> {
  const ip = typeof to === "string" ? to : to.podIp;
  const res = await cluster.exec(from, ["ping", "-c", "1", "-W", "3", ip]);
  expect(res.stdout, `${from.name} -> ${ip}\n${res.stdout}${res.stderr}`).toContain("1 packets transmitted, 1 received");
  expect(res.exitCode).toBe(0);
}

describe("pod-to-pod across a 3-node cluster", () => {
  it("gives each node its own /24 and each pod an IP from its node's CIDR", async () => {
    const nodes = await cluster.nodes();
    expect(nodes).toHaveLength(3);
    const cidrs = nodes.map((n) => mustParseCidr(n.podCidr));
    for (let i = 0; i < cidrs.length; i++) for (let j = i + 1; j < cidrs.length; j++) expect(cidrsOverlap(cidrs[i]!, cidrs[j]!)).toBe(false);
    for (const p of pods) {
      const node = nodes.find((n) => n.name === p.nodeName)!;
      expect(p.podIp.split(".").slice(0, 3)).toEqual(node.podCidr.split(".").slice(0, 3));
    }
    expect(new Set(pods.map((p) => p.podIp)).size).toBe(pods.length);
  });

  it("lets every pod ping every other pod, same node and cross node", async () => {
    await Promise.all(pods.map(async (from) => {
      for (const to of pods) if (to !== from) await pingOk(from, to);
    }));
  });

  it("traces a same-node probe through veth, cni0, veth", async () => {
    const res = await cluster.kubewire(["trace", "node-1-a", pod("node-1-b").podIp]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const hops = traceHops(res.stdout);
    expect(hops.map((h) => h.point)).toEqual(["node-1-a eth0", expect.stringMatching(/^veth[0-9a-f]{8}$/), "cni0", expect.stringMatching(/^veth[0-9a-f]{8}$/), "node-1-b eth0"]);
    expect(new Set(hops.map((h) => h.node))).toEqual(new Set(["node-1"]));
    expect(res.stdout).toContain("[DELIVERED]");
  });

  it("traces a cross-node probe through the route table, VXLAN and NATS", async () => {
    const dst = pod("node-2-a");
    const res = await cluster.kubewire(["trace", "node-1-a", dst.podIp]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const hops = traceHops(res.stdout);
    const veth = expect.stringMatching(/^veth[0-9a-f]{8}$/);
    expect(hops.map((h) => [h.node, h.point])).toEqual([
      ["node-1", "node-1-a eth0"],
      ["node-1", veth],
      ["node-1", "cni0"],
      ["node-1", "route"],
      ["node-1", "flannel.1"],
      ["node-1", "NATS"],
      ["node-2", "flannel.1"],
      ["node-2", "route"],
      ["node-2", "cni0"],
      ["node-2", veth],
      ["node-2", "node-2-a eth0"],
    ]);
    const node2 = (await cluster.nodes()).find((n) => n.name === "node-2")!;
    expect(hops[3]!.detail).toContain(`${node2.podCidr} via ${node2.podCidr.split("/")[0]} dev flannel.1 onlink`);
    expect(hops[4]!.detail).toContain("VXLAN encap VNI 1");
    expect(hops[5]!.detail).toContain("overlay.1.node-2.node-1");
    expect(hops[10]!.detail).toContain("delivered");
  });

  it("shows routers along the way in traceroute, via ICMP time exceeded", async () => {
    const src = pod("node-1-a");
    const dst = pod("node-3-b");
    const nodes = await cluster.nodes();
    const cidr = (n: string) => nodes.find((x) => x.name === n)!.podCidr.split("/")[0]!;
    const res = await cluster.kubewire(["exec", src.name, "--", "traceroute", "-w", "2", dst.podIp]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const lines = res.stdout.trim().split("\n").slice(1);
    expect(lines).toHaveLength(3);
    // Hop 1: node-1's cni0 gateway (.1); hop 2: node-3's flannel.1 (.0); hop 3: the pod.
    expect(lines[0]).toMatch(new RegExp(`^ 1  ${cidr("node-1").replace(/0$/, "1").replace(/\./g, "\\.")}  `));
    expect(lines[1]).toMatch(new RegExp(`^ 2  ${cidr("node-3").replace(/\./g, "\\.")}  `));
    expect(lines[2]).toMatch(new RegExp(`^ 3  ${dst.podIp.replace(/\./g, "\\.")}  `));
    expect(res.stdout).not.toContain("*");
  });

  it("captures VXLAN on flannel.1 that tshark decodes as VNI 1 carrying the pods' ICMP", async () => {
    const src = pod("node-1-b");
    const dst = pod("node-2-b");
    const file = join(cluster.dir, "vxlan.pcap");
    let started!: () => void;
    const capturing = new Promise<void>((r) => (started = r));
    const capture = cluster.kubewire(["capture", "--node", "node-1", "--dev", "flannel.1", "-w", file, "--count", "4", "--seconds", "20"], {
      onStderr: (text) => text.includes("capturing") && started(),
    });
    await capturing;
    await pingOk(src, dst);
    await pingOk(src, dst);
    const done = await capture;
    expect(done.code, done.stderr).toBe(0);
    const fields = execFileSync("tshark", ["-r", file, "-T", "fields", "-E", "separator=|", "-e", "udp.dstport", "-e", "vxlan.vni", "-e", "ip.src", "-e", "ip.dst", "-e", "icmp.type"], { encoding: "utf8" });
    const rows = fields.trim().split("\n").map((l) => l.split("|"));
    expect(rows).toHaveLength(4);
    for (const [, vni, srcs, dsts] of rows) {
      expect(vni).toBe("1");
      // Outer then inner addresses: the inner pair is always the two pods.
      const inner = [srcs!.split(",")[1], dsts!.split(",")[1]].sort();
      expect(inner).toEqual([src.podIp, dst.podIp].sort());
    }
    expect(rows.map((r) => r[4]).sort()).toEqual(["0", "0", "8", "8"]);
  });

  it("counts 10,000 random and truncated overlay messages as drops and keeps forwarding", async () => {
    const target = "node-2";
    const before = (await cluster.status(target)).counters.overlay_rx_dropped_total ?? 0;
    const rng = mulberry32(7);
    // A real encapsulated frame to truncate: captured from node-1's eth0 during one ping.
    const file = join(cluster.dir, "eth0.pcap");
    let started!: () => void;
    const capturing = new Promise<void>((r) => (started = r));
    const capture = cluster.kubewire(["capture", "--node", "node-1", "--dev", "eth0", "-w", file, "--count", "1"], { onStderr: (t) => t.includes("capturing") && started() });
    await capturing;
    await pingOk(pod("node-1-a"), pod("node-2-b"));
    await capture;
    const real = readFirstFrame(file);
    expect(real.length).toBeGreaterThan(64);

    let expected = 0;
    for (let i = 0; i < 10_000; i++) {
      let message: Uint8Array;
      if (i % 2 === 0) {
        message = new Uint8Array(1 + Math.floor(rng() * 1500));
        for (let j = 0; j < message.length; j++) message[j] = Math.floor(rng() * 256);
      } else {
        message = encodeBatch([real.subarray(0, 1 + Math.floor(rng() * (real.length - 1)))]);
      }
      const batch = decodeBatch(message);
      expected += batch.ok ? batch.value.length : 1;
      cluster.nc.publish(Subjects.overlay(1, target, "node-1"), message);
    }
    await cluster.nc.flush();
    let dropped = 0;
    const deadline = Date.now() + 30_000;
    while ((dropped = ((await cluster.status(target)).counters.overlay_rx_dropped_total ?? 0) - before) < expected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(dropped).toBe(expected);
    expect(expected).toBeGreaterThanOrEqual(10_000);
    await pingOk(pod("node-1-a"), pod("node-2-b"));
    await pingOk(pod("node-2-a"), pod("node-3-a"));
  });

  it("rejects unknown flags, bad CIDRs, unknown pods and nodes with one line and a non-zero exit", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["up", "--frobnicate"], /Unknown option '--frobnicate'/],
      [["up", "--cluster-cidr", "10.244.0.0/33"], /--cluster-cidr: "10.244.0.0\/33" is not an aligned IPv4 CIDR/],
      [["run", "x1", "--node", "no-such-node"], /node "no-such-node" not found/],
      [["exec", "no-such-pod", "--", "ping", "-c", "1", "10.244.0.1"], /pod "no-such-pod" not found/],
      [["trace", "node-1-a", "not-an-ip"], /node-1-a cannot resolve "not-an-ip": Name or service not known/],
      [["trace", "node-1-a", "bad_name!"], /"bad_name!" is not an IPv4 address or a host name/],
      [["capture", "--node", "no-such-node", "--dev", "eth0", "-w", join(cluster.dir, "x.pcap"), "--count", "1"], /no one answers on kubewire.node.no-such-node.capture/],
    ];
    for (const [args, message] of cases) {
      const res = await cluster.kubewire(args);
      expect(res.code, args.join(" ")).not.toBe(0);
      expect(res.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
      expect(res.stderr).toMatch(message);
    }
  });
});

describe("faults", () => {
  it("keeps the other nodes talking when a node-agent is killed, and restores the node with its CIDR", async () => {
    const before = (await cluster.status("node-3")).node;
    await cluster.kill9("node-3");
    await pingOk(pod("node-1-a"), pod("node-2-a"));
    await pingOk(pod("node-2-b"), pod("node-1-b"));
    cluster.startNode("node-3");
    const after = await cluster.waitForNode("node-3");
    expect(after.node.podCidr).toBe(before.podCidr);
    expect(after.node.internalIp).toBe(before.internalIp);
    await cluster.waitForPodOnNode(pod("node-3-a"));
    await pingOk(pod("node-1-a"), pod("node-3-a"));
    await pingOk(pod("node-3-b"), pod("node-2-b"));
  });

  it("loses nothing when the control plane restarts and never hands out a CIDR or IP twice", async () => {
    const nodesBefore = await cluster.nodes();
    const podsBefore = (await cluster.pods()).map((p) => ({ name: p.metadata.name!, uid: p.metadata.uid, podIp: p.status.podIP as string }));
    await cluster.kill9("control-plane");
    cluster.startControlPlane();
    await cluster.waitForApi();
    const nodesAfter = await waitFor(() => cluster.nodes());
    expect(sortBy(nodesAfter)).toEqual(sortBy(nodesBefore));
    expect(sortBy((await cluster.pods()).map((p) => ({ name: p.metadata.name!, uid: p.metadata.uid, podIp: p.status.podIP as string })))).toEqual(sortBy(podsBefore));

    cluster.nodeNames.push("node-4");
    cluster.startNode("node-4");
    const node4 = (await cluster.waitForNode("node-4")).node;
    for (const n of nodesBefore) expect(cidrsOverlap(mustParseCidr(n.podCidr), mustParseCidr(node4.podCidr)), n.name).toBe(false);
    expect(nodesBefore.map((n) => n.internalIp)).not.toContain(node4.internalIp);
    const extra = await cluster.createPod("node-1-c", "node-1");
    expect(podsBefore.map((p) => p.podIp)).not.toContain(extra.podIp);
    const onNode4 = await cluster.createPod("node-4-a", "node-4");
    await pingOk(extra, onNode4);
    expect(parseIpv4Addr(onNode4.podIp)).toBeDefined();
  });
});

function traceHops(stdout: string): Array<{ node: string; point: string; detail: string }> {
  return stdout
    .trim()
    .split("\n")
    .slice(1)
    .map((line) => {
      const m = /^\s*\d+\s{3}(\S+)\s{3,}(.+?)\s{3,}(.*)$/.exec(line);
      if (!m) throw new Error(`unparsable trace line: ${line}`);
      return { node: m[1]!, point: m[2]!.trim(), detail: m[3]! };
    });
}

/** The first record of a classic pcap file: 24-byte global header, 16-byte record header. */
function readFirstFrame(file: string): Uint8Array {
  const bytes = readFileSync(file);
  const len = bytes.readUInt32LE(24 + 8);
  return new Uint8Array(bytes.subarray(40, 40 + len));
}

async function waitFor<T>(fn: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function sortBy<T extends { name: string }>(xs: T[]): T[] {
  return [...xs].sort((a, b) => a.name.localeCompare(b.name));
}
