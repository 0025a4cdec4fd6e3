/**
 * `kubewire join` as a node on another machine would use it: its own state dir and host address,
 * only the NATS URL, the bootstrap token and the CA pin of the cluster. The node gets a pod
 * CIDR, shows in `kubectl get nodes -o wide`, and its pods reach pods on the other nodes.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readState } from "../../cli/state.ts";
import { createTrust, formatCreds, newBootstrapToken, newCredentials, nodePermissions } from "../../cluster/nats-auth.ts";
import { stopPid } from "../../cli/processes.ts";
import { TestCluster, until } from "./fixture.ts";
import { request } from "../../cluster/rpc.ts";
import { Subjects, type ProxyStatus } from "../../cluster/types.ts";

let cluster: TestCluster;
let elsewhere: string;

beforeAll(async () => {
  // A short grace: a stopped node is NotReady soon, and its name may then be joined again.
  // A cluster in ipvs mode: a node joined without flags takes the mode from the cluster.
  cluster = await TestCluster.start({ nodes: 2, nodeGraceSeconds: 3, env: { KUBEWIRE_PROXY_MODE: "ipvs" } });
  elsewhere = mkdtempSync(join(tmpdir(), "kubewire-joined-"));
}, 90_000);

afterAll(async () => {
  for (const p of readState(elsewhere)?.processes ?? []) await stopPid(p.pid);
  rmSync(elsewhere, { recursive: true, force: true });
  await cluster?.stop();
});

describe("kubewire join", () => {
  it("refuses a wrong CA pin before sending the token anywhere", async () => {
    const res = await cluster.kubewire(["join", "--nats", cluster.nats.url, "--token", cluster.security!.token, "--ca-cert-hash", `sha256:${"0".repeat(64)}`, "--name", "node-8", "--host-address", cluster.hostAddress("node-2").replace(/\.\d+$/, ".8"), "--detach", "--state-dir", join(elsewhere, "wrong-pin")]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/node node-8 did not join: cannot join the cluster: no CA in .* certificate chain matches sha256:0{64}/);
    expect((await cluster.nodes()).map((n) => n.name)).not.toContain("node-8");
  });

  it("refuses to run a node whose settings disagree with the cluster's, naming both", async () => {
    const res = await cluster.kubewire(["join", "--nats", cluster.nats.url, "--token", cluster.security!.token, "--ca-cert-hash", cluster.security!.caHash, "--name", "node-7", "--host-address", cluster.hostAddress("node-2").replace(/\.\d+$/, ".7"), "--proxy-mode", "nftables", "--detach", "--state-dir", join(elsewhere, "disagrees")], { timeoutMs: 90_000 });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/node node-7 did not join: this node's settings disagree with the cluster's: KUBEWIRE_PROXY_MODE: "nftables" here, but the cluster runs "ipvs"/);
  });

  it("joins a node from its own state dir: pod CIDR, Ready in kubectl, pods reaching the other nodes", async () => {
    const hostAddress = cluster.hostAddress("node-2").replace(/\.\d+$/, ".9");
    const res = await cluster.kubewire(
      ["join", "--nats", cluster.nats.url, "--token", cluster.security!.token, "--ca-cert-hash", cluster.security!.caHash, "--name", "node-9", "--host-address", hostAddress, "--lb-cidr", cluster.lbCidr, "--detach", "--state-dir", elsewhere],
      { timeoutMs: 90_000 },
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^node node-9 joined: pod CIDR 10\.244\.\d+\.0\/24, InternalIP 172\.31\.0\.\d+, NATS identity in .*nodes\/node-9\/nats\.creds$/m);
    // It took the cluster's settings it was not given: kube-proxy in ipvs mode, as every node.
    expect((await request<ProxyStatus>(cluster.nc, Subjects.node("node-9", "proxy"), {}, 5000)).mode).toBe("ipvs");
    // Its identity is its own: a file only the user can read, in its state dir.
    expect(statSync(join(elsewhere, "nodes", "node-9", "nats.creds")).mode & 0o777).toBe(0o600);

    const wide = await until("node-9 Ready in kubectl", async () => {
      const out = await cluster.kubectlOk(["get", "nodes", "-o", "wide"]);
      return /^node-9\s+Ready\s/m.test(out) ? out : undefined;
    });
    const row = wide.split("\n").find((l) => l.startsWith("node-9"))!;
    expect(row).toMatch(/\s172\.31\.0\.\d+\s/);

    const far = await cluster.createPod("joined-a", "node-9");
    const near = await cluster.createPod("joined-b", "node-1");
    for (const [from, to] of [[far, near], [near, far]] as const) {
      const ping = await cluster.exec(from, ["ping", "-c", "2", "-W", "2", to.podIp]);
      expect(ping.exitCode, ping.stdout).toBe(0);
    }

    // `kubewire down` there stops it, as on the machine it runs on.
    const pid = readState(elsewhere)!.processes[0]!.pid;
    const down = await cluster.kubewire(["down", "--state-dir", elsewhere]);
    expect(down.code, down.stderr).toBe(0);
    expect(() => process.kill(pid, 0)).toThrow();
  }, 120_000);

  it("joins again with the token when NATS refuses the identity it kept (another cluster's), once the old node is gone", async () => {
    const creds = join(elsewhere, "nodes", "node-9", "nats.creds");
    await until("node-9 NotReady after kubewire down", async () => (/^node-9\s+NotReady\s/m.test(await cluster.kubectlOk(["get", "nodes"])) ? true : undefined), 30_000);
    // Credentials for the same name from a trust chain this cluster does not know.
    const { issuer } = await createTrust(newBootstrapToken((n) => new Uint8Array(n).fill(7)));
    writeFileSync(creds, formatCreds(await newCredentials(issuer, "node-9", nodePermissions("node-9"))), { mode: 0o600 });
    const res = await cluster.kubewire(
      ["join", "--nats", cluster.nats.url, "--token", cluster.security!.token, "--ca-cert-hash", cluster.security!.caHash, "--name", "node-9", "--host-address", cluster.hostAddress("node-2").replace(/\.\d+$/, ".9"), "--lb-cidr", cluster.lbCidr, "--detach", "--state-dir", elsewhere],
      { timeoutMs: 90_000 },
    );
    expect(res.code, res.stderr).toBe(0);
    const log = readFileSync(join(elsewhere, "logs", "node-9.log"), "utf8");
    expect(log, [...log.matchAll(/"msg":"[^"]*"(,"err":"[^"]*")?/g)].map((m) => m[0]).join("\n")).toContain("NATS refused the kept identity; joining again with the bootstrap token");
    await until("node-9 Ready again", async () => (/^node-9\s+Ready\s/m.test(await cluster.kubectlOk(["get", "nodes"])) ? true : undefined), 30_000);
  }, 120_000);
});
