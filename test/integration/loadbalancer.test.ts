/**
 * type=LoadBalancer Services on a real cluster, driven with kubectl: the emulated cloud gives
 * each an address from the pool (status.loadBalancer.ingress, EXTERNAL-IP in `kubectl get svc`),
 * healthCheckNodePort is allocated for externalTrafficPolicy Local, the load balancer listens on
 * the address (a TCP connect succeeds), a full pool is a SyncLoadBalancerFailed event until an
 * address is freed, a Service that stops being a LoadBalancer loses its address and listener,
 * and a restarted control plane keeps every address.
 *
 * The pool is a /30 (two addresses) in a loopback block of this run's own, so the test runs
 * beside any other cluster on the machine (the fixture's `env` gives it to every process). Traffic through the NodePorts end to end is another
 * test's (it needs the node-agents' NodePort sockets).
 */
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, until } from "./fixture.ts";

// 127.230-249.x: outside the fixture's per-cluster blocks (127.100-199.x) and the data-plane unit test's (127.200-229.x).
const BLOCK = `127.${230 + Math.floor(Math.random() * 20)}.${Math.floor(Math.random() * 250)}`;
const POOL = `${BLOCK}.0/30`;
const FIRST = `${BLOCK}.1`;
const SECOND = `${BLOCK}.2`;
/** A port above 1024: the control plane need not be root to bind it. */
const PORT = 8080;

let cluster: TestCluster;

interface Svc {
  metadata: { name: string; uid: string };
  spec: { type: string; externalTrafficPolicy?: string; healthCheckNodePort?: number; ports: Array<{ port: number; nodePort?: number }> };
  status?: { loadBalancer?: { ingress?: Array<{ ip?: string; ipMode?: string }> } };
}

async function getSvc(name: string): Promise<Svc> {
  return JSON.parse(await cluster.kubectlOk(["get", "svc", name, "-o", "json"])) as Svc;
}

/** The Service's load-balancer address once it has one. */
function addressOf(name: string): Promise<string> {
  return until(`an address for ${name}`, async () => (await getSvc(name)).status?.loadBalancer?.ingress?.[0]?.ip);
}

function lbService(name: string, spec: Record<string, unknown> = {}): object {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default" },
    spec: { type: "LoadBalancer", selector: { app: name }, ports: [{ name: "http", port: PORT, targetPort: 8080, protocol: "TCP" }], ...spec },
  };
}

/** Resolves true when a TCP connection to ip:port is accepted, false when refused. */
function connects(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: ip, port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function events(name: string): Promise<Array<{ type: string; reason: string; message: string }>> {
  const list = JSON.parse(await cluster.kubectlOk(["get", "events", "-o", "json"])) as { items: Array<{ type: string; reason: string; message: string; involvedObject: { name: string } }> };
  return list.items.filter((e) => e.involvedObject.name === name);
}

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 2, env: { KUBEWIRE_LB_CIDR: POOL } });
});

afterAll(async () => {
  await cluster?.stop();
});

describe("LoadBalancer Services (emulated cloud provider)", () => {
  it("gives a LoadBalancer Service the first pool address, shown as EXTERNAL-IP, with ipMode VIP", async () => {
    await cluster.apply(lbService("web"));
    expect(await addressOf("web")).toBe(FIRST);
    const svc = await getSvc("web");
    expect(svc.status?.loadBalancer?.ingress).toEqual([{ ip: FIRST, ipMode: "VIP" }]);
    expect(svc.spec.healthCheckNodePort).toBeUndefined();
    const table = await cluster.kubectlOk(["get", "svc", "web"]);
    const row = table.split("\n").find((l) => l.startsWith("web "))!;
    expect(row.split(/\s+/).slice(0, 5)).toEqual(["web", "LoadBalancer", expect.stringMatching(/^10\.96\./), FIRST, `${PORT}:${svc.spec.ports[0]!.nodePort}/TCP`]);
    const reasons = (await until("the EnsuredLoadBalancer event", async () => {
      const evs = await events("web");
      return evs.some((e) => e.reason === "EnsuredLoadBalancer") ? evs : undefined;
    })).map((e) => `${e.type} ${e.reason} ${e.message}`);
    expect(reasons).toEqual(expect.arrayContaining(["Normal EnsuringLoadBalancer Ensuring load balancer", "Normal EnsuredLoadBalancer Ensured load balancer"]));
  });

  it("listens on the address: a TCP connection to lbIP:port is accepted", async () => {
    await until(`a listener on ${FIRST}:${PORT}`, async () => ((await connects(FIRST, PORT)) ? true : undefined), 10_000);
    // Nothing else of the pool listens.
    expect(await connects(SECOND, PORT)).toBe(false);
  });

  it("allocates a healthCheckNodePort for externalTrafficPolicy Local, apart from every nodePort", async () => {
    await cluster.apply(lbService("local", { externalTrafficPolicy: "Local" }));
    expect(await addressOf("local")).toBe(SECOND);
    const local = await getSvc("local");
    const web = await getSvc("web");
    const hc = local.spec.healthCheckNodePort!;
    expect(hc).toBeGreaterThanOrEqual(30000);
    expect(hc).toBeLessThanOrEqual(32767);
    expect([web.spec.ports[0]!.nodePort, local.spec.ports[0]!.nodePort]).not.toContain(hc);
    // `kubectl describe` shows it as kube-apiserver's users know it.
    expect(await cluster.kubectlOk(["describe", "svc", "local"])).toMatch(new RegExp(`HealthCheck NodePort:\\s+${hc}`));
  });

  it("refuses a requested healthCheckNodePort that is taken, with a 422 naming the field", async () => {
    const hc = (await getSvc("local")).spec.healthCheckNodePort!;
    const file = join(cluster.dir, "dup.json");
    writeFileSync(file, JSON.stringify(lbService("dup", { externalTrafficPolicy: "Local", healthCheckNodePort: hc })));
    const created = await cluster.kubectl(["create", "-f", file]);
    expect(created.code).not.toBe(0);
    expect(created.stderr).toContain(`The Service "dup" is invalid: spec.healthCheckNodePort: Invalid value: ${hc}: failed to allocate requested HealthCheck NodePort ${hc}: provided port is already allocated`);
  });

  it("leaves a Service pending with a SyncLoadBalancerFailed warning while the pool is exhausted, and serves it once an address is freed", async () => {
    await cluster.apply(lbService("third"));
    const failed = await until("the SyncLoadBalancerFailed event", async () => (await events("third")).find((e) => e.reason === "SyncLoadBalancerFailed"));
    expect(failed).toMatchObject({ type: "Warning", message: `Error syncing load balancer: failed to ensure load balancer: no free address in the load-balancer pool ${POOL} (all 2 are in use)` });
    expect((await getSvc("third")).status?.loadBalancer?.ingress).toBeUndefined();
    const row = (await cluster.kubectlOk(["get", "svc", "third"])).split("\n").find((l) => l.startsWith("third "))!;
    expect(row.split(/\s+/)[3]).toBe("<pending>");
    // Only one warning for one cause, however many resyncs pass.
    await new Promise((r) => setTimeout(r, 4500));
    expect((await events("third")).filter((e) => e.reason === "SyncLoadBalancerFailed")).toHaveLength(1);

    await cluster.kubectlOk(["delete", "svc", "web"]);
    expect(await addressOf("third")).toBe(FIRST);
  });

  it("takes the address and the listener away when the Service stops being a LoadBalancer, releasing its healthCheckNodePort", async () => {
    const hc = (await getSvc("local")).spec.healthCheckNodePort!;
    await until(`a listener on ${SECOND}:${PORT}`, async () => ((await connects(SECOND, PORT)) ? true : undefined), 10_000);
    // No dropTypeDependentFields here yet: the client clears what only a LoadBalancer may have.
    await cluster.kubectlOk(["patch", "svc", "local", "--type=merge", "-p", JSON.stringify({ spec: { type: "NodePort", healthCheckNodePort: null, allocateLoadBalancerNodePorts: null } })]);
    await until("the status cleared", async () => ((await getSvc("local")).status?.loadBalancer?.ingress === undefined ? true : undefined));
    const svc = await getSvc("local");
    expect(svc.spec.type).toBe("NodePort");
    expect(svc.spec.healthCheckNodePort).toBeUndefined();
    await until(`no listener on ${SECOND}:${PORT}`, async () => ((await connects(SECOND, PORT)) ? undefined : true), 10_000);
    expect((await events("local")).map((e) => e.reason)).toContain("DeletedLoadBalancer");
    // The released health check port can be had again.
    await cluster.apply(lbService("reuse", { externalTrafficPolicy: "Local", healthCheckNodePort: hc }));
    expect((await getSvc("reuse")).spec.healthCheckNodePort).toBe(hc);
    expect(await addressOf("reuse")).toBe(SECOND);
  });

  it("keeps every address across a control-plane restart, and listens again", async () => {
    const before = { third: await addressOf("third"), reuse: await addressOf("reuse") };
    await cluster.stopProcess("control-plane");
    cluster.startControlPlane();
    await cluster.waitForApi();
    // A few resyncs: nothing moves.
    await new Promise((r) => setTimeout(r, 3000));
    expect({ third: await addressOf("third"), reuse: await addressOf("reuse") }).toEqual(before);
    await until(`a listener on ${before.third}:${PORT} again`, async () => ((await connects(before.third, PORT)) ? true : undefined), 10_000);
  });
});
