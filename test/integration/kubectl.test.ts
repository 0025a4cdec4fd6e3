/**
 * kubectl against a running 3-node kubewire cluster, as a user would drive it: apply a
 * multi-document manifest, read it back (wide tables, endpointslices, describe, logs), scale,
 * exec across nodes, re-apply (unchanged), apply an edit (only what changed), reject an invalid
 * manifest with the field named, delete it all.
 */
import { execFile } from "node:child_process";
import { request as httpsRequest } from "node:https";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cidrContains, mustParseCidr } from "../../cluster/addressing.ts";
import { parseIpv4Addr } from "../../overlay/wire/index.ts";
import { KubeApiError, KubeClient } from "../../cluster/kube-client.ts";
import { TestCluster } from "./fixture.ts";

const MANIFEST = join(import.meta.dirname, "manifests/shop.yaml");
const INVALID = join(import.meta.dirname, "manifests/invalid-service.yaml");

let cluster: TestCluster;

function kubectl(args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("kubectl", args, { env: { ...process.env, KUBECONFIG: cluster.kubeconfig }, timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function ok(args: string[]): Promise<string> {
  const res = await kubectl(args);
  expect(res.code, `kubectl ${args.join(" ")}\n${res.stdout}${res.stderr}`).toBe(0);
  return res.stdout;
}

/** Polls a kubectl jsonpath until it equals `want` (kubectl wait cannot express all of these). */
async function until(args: string[], want: (out: string) => boolean, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const res = await kubectl(args);
    last = res.stdout + res.stderr;
    if (res.code === 0 && want(res.stdout)) return res.stdout;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting on kubectl ${args.join(" ")}; last output:\n${last}`);
}

interface WideRow {
  name: string;
  status: string;
  ip: string;
  node: string;
}

function wideRows(out: string): WideRow[] {
  const [header, ...lines] = out.trim().split("\n");
  const cols = header!.split(/\s{2,}/);
  return lines.map((l) => {
    const cells = l.split(/\s{2,}/);
    const get = (c: string) => cells[cols.indexOf(c)]!;
    return { name: get("NAME"), status: get("STATUS"), ip: get("IP"), node: get("NODE") };
  });
}

function rawPost(path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${cluster.apiUrl}${path}`, { method: "POST", ca: cluster.tls.cert, headers: { Authorization: `Bearer ${cluster.token}`, "Content-Type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

beforeAll(async () => {
  cluster = await TestCluster.start(3);
});

afterAll(async () => {
  await cluster?.stop();
});

describe("kubectl against kubewire", () => {
  it("serves version and discovery with short names", async () => {
    const version = JSON.parse(await ok(["version", "-o", "json"])) as { serverVersion: { gitVersion: string } };
    expect(version.serverVersion.gitVersion).toMatch(/^v1\.\d+\.\d+/);
    const resources = await ok(["api-resources", "--no-headers"]);
    for (const [name, short] of [["pods", "po"], ["services", "svc"], ["deployments", "deploy"], ["networkpolicies", "netpol"], ["namespaces", "ns"], ["nodes", "no"], ["endpointslices", "epslice"]]) {
      expect(resources).toMatch(new RegExp(`^${name}\\s+${short}\\s`, "m"));
    }
  });

  it("rejects requests without the bearer token with 401", async () => {
    const anonymous = new KubeClient(cluster.apiUrl, "", cluster.tls.cert);
    const err = await anonymous.get("/api/v1/pods").then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toMatchObject({ code: 401, reason: "Unauthorized" });
    const wrong = new KubeClient(cluster.apiUrl, "not-the-token-at-all", cluster.tls.cert);
    expect(await wrong.get("/api/v1/pods").then(() => 200, (e: KubeApiError) => e.code)).toBe(401);
  });

  it("applies a multi-document manifest and runs the deployment's pods on the right node CIDRs", async () => {
    const out = await ok(["apply", "-f", MANIFEST]);
    expect(out).toContain("namespace/shop created");
    expect(out).toContain("deployment.apps/web created");
    expect(out).toContain("service/web created");
    expect(out).toContain("networkpolicy.networking.k8s.io/web-allow-shop created");
    await ok(["rollout", "status", "deployment/web", "-n", "shop", "--timeout=60s"]);
    const rows = wideRows(await until(["get", "pods", "-n", "shop", "-o", "wide"], (o) => wideRows(o).length === 3 && wideRows(o).every((r) => r.status === "Running")));
    expect(new Set(rows.map((r) => r.ip)).size).toBe(3);
    const nodes = await cluster.nodes();
    for (const row of rows) {
      const node = nodes.find((n) => n.name === row.node);
      expect(node, row.node).toBeDefined();
      expect(cidrContains(mustParseCidr(node!.podCidr), parseIpv4Addr(row.ip)!), `${row.ip} in ${node!.podCidr}`).toBe(true);
    }
    const svc = await ok(["get", "svc", "web", "-n", "shop"]);
    expect(svc).toMatch(/NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE/);
    expect(svc).toMatch(/web\s+ClusterIP\s+10\.(9[6-9]|1[01][0-9])\.\d+\.\d+\s+<none>\s+81\/UDP/);
  });

  it("scales the deployment to 6 and lists the ready pod IPs in its EndpointSlice", async () => {
    await ok(["scale", "deploy", "web", "-n", "shop", "--replicas=6"]);
    await ok(["rollout", "status", "deployment/web", "-n", "shop", "--timeout=60s"]);
    const rows = wideRows(await until(["get", "pods", "-n", "shop", "-o", "wide"], (o) => wideRows(o).filter((r) => r.status === "Running").length === 6));
    const ips = rows.map((r) => r.ip).sort();
    const sliceIps = await until(["get", "endpointslices", "-n", "shop", "-l", "kubernetes.io/service-name=web", "-o", "jsonpath={.items[*].endpoints[*].addresses[0]}"], (o) => o.trim().split(/\s+/).length === 6);
    expect(sliceIps.trim().split(/\s+/).sort()).toEqual(ips);
    // Pods spread over the three nodes.
    expect(new Set(rows.map((r) => r.node)).size).toBe(3);
  });

  it("execs ping from one pod to a pod on another node; the web pods' NetworkPolicy drops ICMP to them", async () => {
    const rows = wideRows(await ok(["get", "pods", "-n", "shop", "-o", "wide"]));
    const a = rows[0]!;
    const b = rows.find((r) => r.node !== a.node)!;
    // web-allow-shop isolates the web pods for ingress and allows only UDP 8081: no ICMP.
    const denied = await kubectl(["exec", "-n", "shop", a.name, "--", "ping", "-c", "1", "-W", "0.5", b.ip]);
    expect(denied.stdout).toContain("1 packets transmitted, 0 received, 100% packet loss");
    // A pod no policy selects, on b's node, answers.
    await ok(["run", "pingee", "-n", "shop", "--image=registry.k8s.io/e2e-test-images/agnhost:2.53", `--overrides={"spec":{"nodeName":"${b.node}"}}`, "--", "pause"]);
    const pingee = await until(["get", "pod", "pingee", "-n", "shop", "-o", "jsonpath={.status.phase} {.status.podIP}"], (o) => o.startsWith("Running "));
    const out = await ok(["exec", "-n", "shop", a.name, "--", "ping", "-c", "2", "-i", "0.2", pingee.split(" ")[1]!]);
    expect(out).toContain("2 packets transmitted, 2 received, 0% packet loss");
    await ok(["delete", "pod", "pingee", "-n", "shop", "--wait=false"]);
    const failed = await kubectl(["exec", "-n", "shop", a.name, "--", "ping", "-c", "1", "-W", "0.5", "10.244.250.250"]);
    expect(failed.code).not.toBe(0);
  });

  it("reports a second apply of the same file as unchanged", async () => {
    await ok(["scale", "deploy", "web", "-n", "shop", "--replicas=3"]);
    const out = await ok(["apply", "-f", MANIFEST]);
    for (const line of out.trim().split("\n")) expect(line).toMatch(/ unchanged$/);
  });

  it("applies an edit as a change to only what changed", async () => {
    const edited = readFileSync(MANIFEST, "utf8").replace("replicas: 3", "replicas: 2").replace("port: 81", "port: 82");
    const file = join(cluster.dir, "shop-edited.yaml");
    writeFileSync(file, edited);
    const out = await ok(["apply", "-f", file]);
    expect(out).toContain("namespace/shop unchanged");
    expect(out).toContain("deployment.apps/web configured");
    expect(out).toContain("service/web configured");
    expect(out).toContain("networkpolicy.networking.k8s.io/web-allow-shop unchanged");
    const svc = JSON.parse(await ok(["get", "svc", "web", "-n", "shop", "-o", "json"])) as { spec: { ports: Array<{ port: number; targetPort: string }>; clusterIP: string } };
    expect(svc.spec.ports).toEqual([expect.objectContaining({ port: 82, targetPort: "udp-echo", protocol: "UDP" })]);
    await until(["get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.status.readyReplicas}"], (o) => o === "2");
  });

  it("describes pods, services, networkpolicies and nodes, with events", async () => {
    const pod = wideRows(await ok(["get", "pods", "-n", "shop", "-o", "wide"]))[0]!;
    const dp = await ok(["describe", "pod", "-n", "shop", pod.name]);
    expect(dp).toMatch(new RegExp(`Node:\\s+${pod.node}/172\\.31\\.0\\.\\d+`));
    expect(dp).toMatch(new RegExp(`IP:\\s+${pod.ip.replace(/\./g, "\\.")}`));
    expect(dp).toMatch(/Events:[\s\S]*Scheduled[\s\S]*Successfully assigned shop\/.* to node-\d/);
    const ds = await ok(["describe", "svc", "web", "-n", "shop"]);
    expect(ds).toMatch(/Selector:\s+app=web/);
    expect(ds).toMatch(/Endpoints:\s+\d+\.\d+\.\d+\.\d+:8081/);
    const dn = await ok(["describe", "netpol", "web-allow-shop", "-n", "shop"]);
    expect(dn).toMatch(/PodSelector:\s+app=web/);
    const dno = await ok(["describe", "node", "node-1"]);
    expect(dno).toMatch(/PodCIDR:\s+10\.244\.\d+\.0\/24/);
    expect(dno).toMatch(/Ready\s+True/);
  });

  it("shows the pod's emulated app log", async () => {
    const pod = wideRows(await ok(["get", "pods", "-n", "shop", "-o", "wide"]))[0]!;
    const logs = await ok(["logs", "-n", "shop", pod.name]);
    expect(logs).toContain(`pod network ready: ${pod.ip}/24 on eth0`);
    // agnhost netexec's own log lines (test/images/agnhost/netexec/netexec.go).
    expect(logs).toContain("Started UDP server on port  8081");
  });

  it("rejects an invalid manifest with kubectl's usual error naming the field, and writes nothing", async () => {
    const res = await kubectl(["apply", "-f", INVALID]);
    expect(res.code).not.toBe(0);
    // port 70000 is defaulted into targetPort too, so Kubernetes (and kubewire) names both fields.
    expect(res.stderr).toContain('The Service "broken" is invalid: ');
    expect(res.stderr).toContain("* spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive");
    expect(res.stderr).toContain("* spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive");
    const get = await kubectl(["get", "svc", "broken"]);
    expect(get.stderr).toContain('services "broken" not found');
  });

  it("leaves an unschedulable pod Pending with a FailedScheduling event", async () => {
    const file = join(cluster.dir, "nowhere.yaml");
    writeFileSync(file, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nowhere\n  labels: {app: nowhere}\nspec:\n  nodeSelector: {disk: ssd}\n  containers:\n    - name: app\n      image: registry.k8s.io/e2e-test-images/agnhost:2.47\n");
    await ok(["apply", "-f", file]);
    const described = await until(["describe", "pod", "nowhere"], (o) => o.includes("FailedScheduling"));
    expect(described).toMatch(/Status:\s+Pending/);
    expect(described).toContain("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.");
    const out = await ok(["delete", "pod", "-l", "app=nowhere"]);
    expect(out).toContain('pod "nowhere" deleted');
  });

  it("honours a requested NodePort and rejects one already taken or out of range", async () => {
    const first = await ok(["create", "service", "nodeport", "np-a", "--tcp=80:8080", "--node-port=30080"]);
    expect(first).toContain("service/np-a created");
    expect(await ok(["get", "svc", "np-a", "-o", "jsonpath={.spec.ports[0].nodePort}"])).toBe("30080");
    const taken = await kubectl(["create", "service", "nodeport", "np-b", "--tcp=80:8080", "--node-port=30080"]);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain("spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated");
    const outside = await kubectl(["create", "service", "nodeport", "np-c", "--tcp=80:8080", "--node-port=29999"]);
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toContain("provided port is not in the valid range. The range of valid ports is 30000-32767");
    await ok(["delete", "svc", "np-a"]);
  });

  it("answers bad JSON with 400 and an unknown resource with 404", async () => {
    const bad = await cluster.kube.request("POST", "/api/v1/namespaces/default/pods", undefined).then(() => undefined, (e: KubeApiError) => e);
    expect(bad?.status).toMatchObject({ code: 400, reason: "BadRequest" });
    const garbled = await rawPost("/api/v1/namespaces/default/pods", '{"apiVersion": "v1", "kind": ');
    expect(garbled.status).toBe(400);
    expect(garbled.body).toContain("the body of the request could not be decoded");
    const unknown = await cluster.kube.get("/api/v1/namespaces/default/frobnicators").then(() => undefined, (e: KubeApiError) => e);
    expect(unknown?.status).toMatchObject({ code: 404, reason: "NotFound" });
    const res = await kubectl(["get", "frobnicators"]);
    expect(res.stderr).toContain('the server doesn\'t have a resource type "frobnicators"');
  });

  it("deletes everything with delete -f", async () => {
    const out = await ok(["delete", "-f", MANIFEST, "--timeout=60s"]);
    expect(out).toContain('namespace "shop" deleted');
    const left = await kubectl(["get", "all", "-n", "shop", "--no-headers"]);
    expect(left.stdout.trim()).toBe("");
    const ns = await kubectl(["get", "ns", "shop"]);
    expect(ns.stderr).toContain('namespaces "shop" not found');
  });
});
