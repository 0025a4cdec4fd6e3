/**
 * NATS security as an attacker on the host meets it: every forbidden act is refused by the
 * nats-server itself (permission and authorization errors), with real credentials taken from a
 * real 3-node cluster: node-1's own, issued when it joined with the bootstrap token.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, jwtAuthenticator, type NatsConnection } from "nats";
import { pack } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootstrapUser, newBootstrapToken, newUserKey, parseCredsText } from "../../cluster/nats-auth.ts";
import { OBJECTS_BUCKET } from "../../cluster/store.ts";
import { objectKey, resourceByKind } from "../../cluster/resources.ts";
import { connectNats, natsAuthOptions, readNatsAuth, request, RpcError } from "../../cluster/rpc.ts";
import { ErrorCode, Subjects, type JoinNodeRequest, type JoinNodeResponse, type NodeStatusRequest, type PodStatusRequest } from "../../cluster/types.ts";
import { startNodeAgent } from "../../cli/processes.ts";
import { TestCluster, type TestPod } from "./fixture.ts";

let cluster: TestCluster;
let node1: NatsConnection;
let podOnNode2: TestPod;

/** Connects with node `name`'s own credentials (the file it wrote after joining). */
async function asNode(name: string): Promise<NatsConnection> {
  return connectNats(cluster.nats.url, `test as ${name}`, readNatsAuth({ ca: cluster.security!.caFile, creds: cluster.nodeCredsFile(name) }, name));
}

/** The server's next permission error on `nc` while `act` runs: which operation on which subject. */
async function refusal(nc: NatsConnection, act: () => unknown): Promise<{ operation: string; subject: string }> {
  const statuses = nc.status();
  const seen = (async () => {
    for await (const s of statuses) {
      const ctx = (s as { permissionContext?: { operation: string; subject: string } }).permissionContext;
      if (s.type === "error" && s.data === "PERMISSIONS_VIOLATION" && ctx) return ctx;
    }
    throw new Error("connection closed without a permission error");
  })();
  void Promise.resolve()
    .then(act)
    .catch(() => {});
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no permission error within 5 s")), 5000));
  try {
    return await Promise.race([seen, timeout]);
  } finally {
    (statuses as unknown as { stop(): void }).stop();
  }
}

beforeAll(async () => {
  cluster = await TestCluster.start(3);
  node1 = await asNode("node-1");
  podOnNode2 = await cluster.createPod("sec-b", "node-2");
}, 90_000);

afterAll(async () => {
  await node1?.close().catch(() => {});
  await cluster?.stop();
});

describe("connections", () => {
  it("refuses an anonymous client (TLS, but no credentials)", async () => {
    const err = await connect({ servers: cluster.nats.url, tls: { ca: readFileSync(cluster.security!.caFile, "utf8") }, maxReconnectAttempts: 0, reconnect: false }).then(
      (nc) => nc.close().then(() => undefined),
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).toBe("AUTHORIZATION_VIOLATION");
  });

  it("fails a client that does not trust the cluster CA in the TLS handshake", async () => {
    const creds = parseCredsText(readFileSync(cluster.security!.cliCreds, "utf8"))!;
    const err = await connect({ servers: cluster.nats.url, authenticator: jwtAuthenticator(creds.jwt, new TextEncoder().encode(creds.seed)), maxReconnectAttempts: 0, reconnect: false }).then(
      (nc) => nc.close().then(() => undefined),
      (e: Error) => e,
    );
    expect(String(err?.message ?? "") + String((err as { chainedError?: Error })?.chainedError?.message ?? "")).toMatch(/certificate|self.signed|TLS/i);
  });

  it("refuses a bootstrap user signed with a wrong token", async () => {
    const key = newUserKey();
    const jwt = await bootstrapUser(newBootstrapToken((n) => new Uint8Array(n).map(() => Math.floor(Math.random() * 256))), cluster.security!.trust.account, key);
    const err = await connect({ servers: cluster.nats.url, ...natsAuthOptions({ ca: readFileSync(cluster.security!.caFile, "utf8"), creds: { jwt, seed: new TextDecoder().decode(key.getSeed()) } }), maxReconnectAttempts: 0, reconnect: false }).then(
      (nc) => nc.close().then(() => undefined),
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).toBe("AUTHORIZATION_VIOLATION");
  });
});

describe("node-1's own credentials", () => {
  it("may not publish frames as node-2", async () => {
    const subject = Subjects.overlay(1, "node-3", "node-2");
    expect(await refusal(node1, () => node1.publish(subject, new Uint8Array(50)))).toEqual({ operation: "publish", subject });
  });

  it("may not hear node-2's overlay or RPC subjects", async () => {
    for (const subject of [Subjects.overlay("*", "node-2", "*"), Subjects.node("node-2", ">"), Subjects.node("node-2", "exec")]) {
      expect(await refusal(node1, () => node1.subscribe(subject))).toEqual({ operation: "subscription", subject });
    }
  });

  it("may not exec in a pod of node-2 (or its own: requests to nodes are the CLI's and control plane's)", async () => {
    for (const node of ["node-2", "node-1"]) {
      const subject = Subjects.node(node, "exec");
      expect(await refusal(node1, () => request(node1, subject, { namespace: "default", pod: "x", argv: ["hostname"] }, 2000))).toEqual({ operation: "publish", subject });
    }
  });

  it("may read the store but never write or delete a key", async () => {
    const kv = await node1.jetstream().views.kv(OBJECTS_BUCKET, { bindOnly: true });
    const key = objectKey(resourceByKind("Node"), undefined, "node-2");
    const before = await kv.get(key);
    expect(before?.value.length).toBeGreaterThan(0);
    expect(await refusal(node1, () => kv.put(key, new TextEncoder().encode("{}")))).toEqual({ operation: "publish", subject: `$KV.${OBJECTS_BUCKET}.${key}` });
    expect(await refusal(node1, () => kv.delete(key))).toEqual({ operation: "publish", subject: `$KV.${OBJECTS_BUCKET}.${key}` });
    expect(await refusal(node1, () => node1.jetstreamManager().then((m) => m.streams.purge(`KV_${OBJECTS_BUCKET}`)))).toMatchObject({ operation: "publish" });
    // Neither the put nor the delete is in the key's history (node-2's own status updates may be).
    const ops: string[] = [];
    for await (const e of await kv.history({ key })) ops.push(`${e.operation}:${new TextDecoder().decode(e.value)}`);
    expect(ops.length).toBeGreaterThan(0);
    expect(ops.filter((o) => o === "PUT:{}" || !o.startsWith("PUT:"))).toEqual([]);
  });

  it("may not update node-2's status or register, renew or finalize as another node", async () => {
    for (const subject of [Subjects.nodeStatus("node-2"), Subjects.registerNode("node-9"), Subjects.heartbeat("node-2"), Subjects.podStatus("node-2"), Subjects.podFinalize("node-2")]) {
      expect(await refusal(node1, () => request(node1, subject, { name: "node-2", ready: false } satisfies NodeStatusRequest, 2000))).toEqual({ operation: "publish", subject });
    }
  });

  it("may not change a pod bound to node-2, even on its own subject (NodeRestriction, at the control plane)", async () => {
    const pod = await cluster.kube.get(`/api/v1/namespaces/default/pods/${podOnNode2.name}`);
    const req: PodStatusRequest = { namespace: "default", name: podOnNode2.name, uid: pod.metadata.uid!, podIp: "10.244.0.99", hostIp: "172.31.0.2", startTime: new Date().toISOString() };
    const err = await request(node1, Subjects.podStatus("node-1"), req, 5000).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(ErrorCode.Forbidden);
    expect((err as RpcError).message).toContain("bound to node-2");
    const after = await cluster.kube.get(`/api/v1/namespaces/default/pods/${podOnNode2.name}`);
    expect(after.status?.podIP).toBe(podOnNode2.podIp);
  });

  it("may not ask to join (only a bootstrap token may)", async () => {
    expect(await refusal(node1, () => request(node1, Subjects.joinNode, {}, 2000))).toEqual({ operation: "publish", subject: Subjects.joinNode });
  });
});

describe("the bootstrap token", () => {
  it("lets its holder ask to join and nothing else", async () => {
    const key = newUserKey();
    const jwt = await bootstrapUser(cluster.security!.token, cluster.security!.trust.account, key);
    const nc = await connectNats(cluster.nats.url, "test bootstrap", { ca: readFileSync(cluster.security!.caFile, "utf8"), creds: { jwt, seed: new TextDecoder().decode(key.getSeed()) }, identity: "bootstrap" });
    try {
      const exec = Subjects.node("node-1", "exec");
      expect(await refusal(nc, () => request(nc, exec, {}, 2000))).toEqual({ operation: "publish", subject: exec });
      expect(await refusal(nc, () => nc.subscribe(Subjects.overlay("*", "node-1", "*")))).toMatchObject({ operation: "subscription" });
      // A name a Ready node holds is not given away.
      const taken = await request<JoinNodeResponse>(nc, Subjects.joinNode, { token: cluster.security!.token, name: "node-2", publicKey: key.getPublicKey() } satisfies JoinNodeRequest, 5000).then(() => undefined, (e: unknown) => e);
      expect((taken as RpcError).code).toBe(ErrorCode.AlreadyExists);
    } finally {
      await nc.close();
    }
  });

  it("stops a node that joins with a wrong token: it exits naming the refusal, and no Node appears", async () => {
    const wrong = newBootstrapToken((n) => new Uint8Array(n).map(() => Math.floor(Math.random() * 256)));
    const env = { KUBEWIRE_NATS_CA: cluster.security!.caFile, KUBEWIRE_NATS_CREDS: join(cluster.dir, "rogue", "nats.creds"), KUBEWIRE_BOOTSTRAP_TOKEN: wrong, KUBEWIRE_HOST_ADDRESS: cluster.hostAddress("node-3").replace(/\.\d+$/, ".9"), KUBEWIRE_LB_CIDR: cluster.lbCidr };
    const rogue = startNodeAgent(cluster.nats.url, "rogue", 9, { logDir: cluster.logDir, env });
    expect(await rogue.exited).toBe(1);
    expect(readFileSync(rogue.logFile, "utf8")).toMatch(/"err":"cannot connect with the bootstrap token \(wrong token\?\): 'Authorization Violation'","msg":"cannot join the cluster"/);
    expect((await cluster.nodes()).map((n) => n.name)).not.toContain("rogue");
  });
});

describe("the CLI's credentials", () => {
  it("may ask nodes but not write the store or send frames", async () => {
    const nc = await connectNats(cluster.nats.url, "test as cli", readNatsAuth({ ca: cluster.security!.caFile, creds: cluster.security!.cliCreds }, "cli"));
    try {
      const status = await request<{ node: { name: string } }>(nc, Subjects.node("node-1", "status"), {}, 5000);
      expect(status.node.name).toBe("node-1");
      const overlay = Subjects.overlay(1, "node-1", "node-2");
      expect(await refusal(nc, () => nc.publish(overlay, pack({})))).toEqual({ operation: "publish", subject: overlay });
      expect(await refusal(nc, () => nc.publish(`$KV.${OBJECTS_BUCKET}.${objectKey(resourceByKind("Node"), undefined, "node-1")}`, new Uint8Array(1)))).toMatchObject({ operation: "publish" });
    } finally {
      await nc.close();
    }
  });
});
