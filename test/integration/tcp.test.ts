/**
 * TCP between pods on real node-agent processes, driven as a user would: kubectl apply, kubectl
 * exec curl to pods on the same and other nodes (agnhost netexec answers /hostname and
 * /clientip), localhost between the containers of one pod, `kubewire exec --node` from a node's
 * root netns, refused and unreachable destinations with curl's exit codes, a large transfer
 * through faults on the overlay checked by sha256, and a tshark read of a capture of the TCP
 * handshake on a pod's veth.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { vethName } from "../../node-agent/node.ts";
import { TestCluster } from "./fixture.ts";

const MANIFEST = join(import.meta.dirname, "manifests/tcp.yaml");

let cluster: TestCluster;
const ips = new Map<string, string>();

async function kexec(pod: string, argv: string[], container?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return cluster.kubectl(["exec", "-n", "net", pod, ...(container ? ["-c", container] : []), "--", ...argv], 120_000);
}

beforeAll(async () => {
  cluster = await TestCluster.start(3);
  const applied = await cluster.kubectl(["apply", "-f", MANIFEST]);
  expect(applied.code, applied.stderr).toBe(0);
  for (const name of ["web-1", "web-2", "files", "client"]) {
    const pod = await cluster.waitForPodRunning("net", name);
    await cluster.waitForPodOnNode(pod);
    ips.set(name, pod.podIp);
  }
});

afterAll(async () => {
  await cluster?.stop();
});

describe("TCP between pods (kubectl exec curl)", () => {
  it("reaches agnhost netexec on the same node and on another node: /hostname answers with the pod's name", async () => {
    const same = await kexec("client", ["curl", "-s", "-m", "10", `http://${ips.get("web-1")}:8080/hostname`], "sidecar");
    expect(same).toMatchObject({ code: 0, stdout: "web-1" });
    const other = await kexec("client", ["curl", "-s", "-m", "10", `http://${ips.get("web-2")}:8080/hostname`], "sidecar");
    expect(other).toMatchObject({ code: 0, stdout: "web-2" });
  });

  it("/clientip shows the client pod's own IP: no NAT between pods", async () => {
    const res = await kexec("client", ["curl", "-s", "-m", "10", `http://${ips.get("web-2")}:8080/clientip`]);
    expect(res.code, res.stderr).toBe(0);
    const [ip, port] = res.stdout.trim().split(":");
    expect(ip).toBe(ips.get("client"));
    expect(Number(port)).toBeGreaterThanOrEqual(32768);
  });

  it("containers of one pod share the netns: the sidecar reaches nginx on 127.0.0.1", async () => {
    const res = await kexec("client", ["curl", "-s", "-m", "10", "-w", "%{http_code}", "http://127.0.0.1:80/"], "sidecar");
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain("Welcome to nginx!");
    expect(res.stdout.endsWith("200")).toBe(true);
  });

  it("kubectl exec -c with a container the pod does not have is refused, naming it", async () => {
    const res = await kexec("client", ["hostname"], "nope");
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("container nope is not valid for pod client");
  });

  it("a closed port is refused at once (curl exit 7); an address with no pod times out (exit 28)", async () => {
    const t0 = Date.now();
    const refused = await kexec("client", ["curl", "-s", "-S", "-m", "10", `http://${ips.get("web-2")}:81/`]);
    expect(refused.code).toBe(7);
    expect(refused.stderr).toMatch(/curl: \(7\) Failed to connect to .* port 81/);
    expect(Date.now() - t0).toBeLessThan(8_000);
    const nobody = ips.get("web-2")!.replace(/\.\d+$/, ".250");
    const timeout = await kexec("client", ["curl", "-s", "-S", "-m", "2", `http://${nobody}:8080/`]);
    expect(timeout.code).toBe(28);
    expect(timeout.stderr).toMatch(/curl: \(28\)/);
  });
});

describe("a large transfer through overlay faults", () => {
  it("64 MiB from nginx on node-2 to a pod on node-1 arrives intact (sha256) with 5% loss, 1% duplication and reordering", async () => {
    const made = await kexec("files", ["dd", "if=/dev/urandom", "of=/usr/share/nginx/html/big", "bs=1M", "count=64"]);
    expect(made.code, made.stderr).toBe(0);
    const want = await kexec("files", ["sha256sum", "/usr/share/nginx/html/big"]);
    expect(want.code).toBe(0);
    for (const node of ["node-1", "node-2"]) {
      const set = await cluster.kubewire(["fault", "--node", node, "--loss", "0.05", "--duplicate", "0.01", "--reorder", "0.01"]);
      expect(set.code, set.stderr).toBe(0);
    }
    try {
      const got = await kexec("client", ["curl", "-s", "-S", "-m", "55", "-o", "/tmp/big", "-w", "%{size_download}", `http://${ips.get("files")}/big`]);
      expect(got.code, got.stderr).toBe(0);
      expect(got.stdout).toBe(String(64 * 1024 * 1024));
    } finally {
      for (const node of ["node-1", "node-2"]) await cluster.kubewire(["fault", "--node", node]);
    }
    const sum = await kexec("client", ["sha256sum", "/tmp/big"]);
    expect(sum.stdout.split(" ")[0]).toBe(want.stdout.split(" ")[0]);
    // The faults really acted: node-1 lost frames to its fault link.
    expect((await cluster.status("node-1")).counters.drops_fault_loss_total ?? 0).toBeGreaterThan(0);
  }, 120_000);
});

describe("a node's root netns (kubewire exec --node)", () => {
  it("curls and pings local and remote pods, and conntrack -L lists the node's connections", async () => {
    const local = await cluster.kubewire(["exec", "--node", "node-1", "--", "curl", "-s", "-m", "10", `http://${ips.get("web-1")}:8080/hostname`]);
    expect(local).toMatchObject({ code: 0, stdout: "web-1" });
    const remote = await cluster.kubewire(["exec", "--node", "node-1", "--", "curl", "-s", "-m", "10", `http://${ips.get("web-2")}:8080/hostname`]);
    expect(remote).toMatchObject({ code: 0, stdout: "web-2" });
    for (const pod of ["web-1", "web-2"]) {
      const ping = await cluster.kubewire(["exec", "--node", "node-1", "--", "ping", "-c", "2", "-i", "0.2", ips.get(pod)!]);
      expect(ping.code, ping.stdout + ping.stderr).toBe(0);
      expect(ping.stdout).toContain("2 received");
    }
    const ct = await cluster.kubewire(["exec", "--node", "node-1", "--", "conntrack", "-L"]);
    expect(ct.code).toBe(0);
    // The node's own connection to web-2, from its flannel.1 address (the source of the onlink route, as on Linux).
    expect(ct.stdout).toMatch(new RegExp(`^tcp\\s+6 \\d+ \\w+ src=10\\.244\\.\\d+\\.0 dst=${ips.get("web-2")!.replace(/\./g, "\\.")} sport=\\d+ dport=8080 `, "m"));
    expect(ct.stderr).toMatch(/flow entries have been shown/);
  });
});

describe("captures", () => {
  it("tshark reads the TCP handshake on a pod's veth with valid checksums", async () => {
    const file = join(cluster.dir, "veth.pcap");
    const veth = vethName("net.client");
    let started!: () => void;
    const capturing = new Promise<void>((r) => (started = r));
    const capture = cluster.kubewire(["capture", "--node", "node-1", "--dev", veth, "-w", file, "--count", "10", "--seconds", "20"], { onStderr: (t) => t.includes("capturing") && started() });
    await capturing;
    const res = await kexec("client", ["curl", "-s", "-m", "10", `http://${ips.get("web-2")}:8080/hostname`]);
    expect(res.code).toBe(0);
    const done = await capture;
    expect(done.code, done.stderr).toBe(0);
    const out = await new Promise<string>((resolve, reject) =>
      execFile("tshark", ["-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-Y", "tcp", "-T", "fields", "-e", "tcp.flags.str", "-e", "tcp.checksum.status", "-e", "ip.checksum.status"], (err, stdout, stderr) =>
        err ? reject(new Error(stderr)) : resolve(stdout),
      ),
    );
    const rows = out.trim().split("\n").map((l) => l.split("\t"));
    const flags = rows.map((r) => r[0]!.replace(/·/g, "."));
    expect(flags[0]).toMatch(/S\.$/); // SYN
    expect(flags[1]).toMatch(/A\.\.S\.$/); // SYN, ACK
    expect(flags[2]).toMatch(/A\.\.\.\.$/); // ACK
    // tshark's checksum status: 1 = Good.
    for (const r of rows) {
      expect(r[1]).toBe("1");
      expect(r[2]).toBe("1");
    }
  });
});
