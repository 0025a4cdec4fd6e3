import { describe, expect, it } from "vitest";
import { decode } from "@nats-io/jwt";
import {
  bootstrapPermissions,
  bootstrapSigner,
  bootstrapUser,
  cliPermissions,
  controlPlanePermissions,
  createTrust,
  formatCreds,
  issueUser,
  newBootstrapToken,
  newCredentials,
  newUserKey,
  nodePermissions,
  parseBootstrapToken,
  parseCredsText,
  tokensEqual,
  userOf,
} from "../../cluster/nats-auth.ts";
import { renderNatsServerConfig } from "../../cluster/nats-server-config.ts";
import { Subjects } from "../../cluster/types.ts";
import { bootstrapTokenSecret, checkBootstrapToken } from "../../control-plane/join.ts";
import { seededRng } from "../../node-agent/faults/random.ts";

/** NATS subject matching: `*` one token, `>` the rest (https://docs.nats.io/nats-concepts/subjects). */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}
const allowed = (perm: { allow?: string[]; deny?: string[] } | undefined, subject: string) =>
  (perm?.allow ?? []).some((a) => matches(a, subject)) && !(perm?.deny ?? []).some((d) => matches(d, subject));

const bytes = (seed: number) => {
  const rng = seededRng(seed);
  return (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rng() * 256));
};

describe("bootstrap tokens", () => {
  it("are kubeadm's id.secret of [a-z0-9], different for different randomness", () => {
    const a = newBootstrapToken(bytes(1));
    const b = newBootstrapToken(bytes(2));
    expect(a).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    expect(a).not.toBe(b);
    expect(parseBootstrapToken(a)).toEqual({ id: a.slice(0, 6), secret: a.slice(7) });
    for (const bad of ["ABCDEF.0123456789abcdef", "abcdef0123456789abcdef", "abcde.0123456789abcdef", ""]) expect(parseBootstrapToken(bad)).toBeUndefined();
  });

  it("derive one signing key each, the same every time", () => {
    const t = newBootstrapToken(bytes(3));
    expect(bootstrapSigner(t).getPublicKey()).toBe(bootstrapSigner(t).getPublicKey());
    expect(bootstrapSigner(t).getPublicKey()).not.toBe(bootstrapSigner(newBootstrapToken(bytes(4))).getPublicKey());
    expect(bootstrapSigner(t).getPublicKey()).toMatch(/^A[A-Z2-7]{55}$/);
  });

  it("compare by value", () => {
    expect(tokensEqual("abc", "abc")).toBe(true);
    expect(tokensEqual("abc", "abd")).toBe(false);
  });

  it("are checked against kubeadm's Secret: id, secret, usage and expiration", () => {
    const token = "abcdef.0123456789abcdef";
    const now = Date.parse("2026-11-30T12:00:00Z");
    const secret = bootstrapTokenSecret(token, new Date(now), 24 * 3600_000);
    expect(secret.metadata.name).toBe("bootstrap-token-abcdef");
    expect(checkBootstrapToken(secret, token, now + 1000)).toBeUndefined();
    expect(checkBootstrapToken(secret, "abcdef.0123456789abcdee", now)).toBe("bootstrap token abcdef: wrong secret");
    expect(checkBootstrapToken(secret, token, now + 24 * 3600_000 + 1)).toMatch(/^bootstrap token abcdef expired at 2026-12-01T12:00:00Z$/);
    expect(checkBootstrapToken(undefined, token, now)).toBe("no bootstrap token abcdef");
    expect(checkBootstrapToken(secret, "nope", now)).toMatch(/not a bootstrap token/);
    const noAuth = { ...secret, data: { ...(secret as unknown as { data: Record<string, string> }).data, "usage-bootstrap-authentication": Buffer.from("false").toString("base64") } };
    expect(checkBootstrapToken(noAuth as never, token, now)).toBe("bootstrap token abcdef is not for authentication");
    // --token-ttl 0: no expiration at all.
    expect(checkBootstrapToken(bootstrapTokenSecret(token, new Date(now), 0), token, now + 10 * 365 * 24 * 3600_000)).toBeUndefined();
    // A reason never carries the secret.
    expect(checkBootstrapToken(secret, "abcdef.zzzzzzzzzzzzzzzz", now)).not.toContain("zzzz");
  });
});

describe("permissions", () => {
  const n1 = nodePermissions("node-1");

  it("let a node publish frames only as itself, to any node", () => {
    expect(allowed(n1.pub, Subjects.overlay(1, "node-2", "node-1"))).toBe(true);
    expect(allowed(n1.pub, Subjects.overlay(1, "node-3", "node-2"))).toBe(false);
    expect(allowed(n1.pub, "overlay.1.node-2")).toBe(false);
  });

  it("let a node hear only its own overlay, RPC and inbox subjects", () => {
    expect(allowed(n1.sub, Subjects.overlay("*", "node-1", "*"))).toBe(true);
    expect(allowed(n1.sub, Subjects.overlay(1, "node-1", "node-2"))).toBe(true);
    expect(allowed(n1.sub, Subjects.node("node-1", "exec"))).toBe(true);
    expect(allowed(n1.sub, "_INBOX_node-1.abc")).toBe(true);
    for (const s of [Subjects.overlay(1, "node-2", "node-1"), Subjects.node("node-2", "exec"), "_INBOX_node-2.abc", "_INBOX.abc", "_INBOX_cli.x"]) expect(allowed(n1.sub, s)).toBe(false);
  });

  it("let a node report only as itself and never write the store", () => {
    for (const s of [Subjects.registerNode("node-1"), Subjects.heartbeat("node-1"), Subjects.nodeStatus("node-1"), Subjects.podStatus("node-1"), Subjects.podFinalize("node-1"), Subjects.stream("node-1", "x")]) expect(allowed(n1.pub, s)).toBe(true);
    for (const s of [Subjects.registerNode("node-2"), Subjects.nodeStatus("node-2"), Subjects.podStatus("node-2"), Subjects.stream("node-2", "x"), Subjects.trace("t1", "node-2"), Subjects.joinNode, Subjects.node("node-2", "exec")]) expect(allowed(n1.pub, s)).toBe(false);
    expect(allowed(n1.pub, Subjects.trace("t1", "node-1"))).toBe(true);
    for (const s of ["$KV.kubewire_objects.v1.nodes._.node-1", "$JS.API.STREAM.PURGE.KV_kubewire_objects", "$JS.API.STREAM.DELETE.KV_kubewire_objects", "$JS.API.STREAM.MSG.DELETE.KV_kubewire_objects", "$JS.API.STREAM.CREATE.KV_x"]) expect(allowed(n1.pub, s)).toBe(false);
    for (const s of ["$JS.API.CONSUMER.CREATE.KV_kubewire_objects", "$JS.API.DIRECT.GET.KV_kubewire_objects.$KV.kubewire_objects.a", "$JS.API.STREAM.INFO.KV_kubewire_objects"]) expect(allowed(n1.pub, s)).toBe(true);
  });

  it("keep the overlay from the control plane and the CLI, and the store from the CLI", () => {
    expect(allowed(controlPlanePermissions().pub, Subjects.overlay(1, "node-1", "node-2"))).toBe(false);
    expect(allowed(controlPlanePermissions().pub, "$KV.kubewire_objects.x")).toBe(true);
    expect(allowed(cliPermissions().pub, Subjects.node("node-1", "exec"))).toBe(true);
    expect(allowed(cliPermissions().pub, "$KV.kubewire_objects.x")).toBe(false);
    expect(allowed(cliPermissions().pub, Subjects.overlay(1, "node-1", "node-2"))).toBe(false);
  });

  it("let a bootstrap user only ask to join", () => {
    expect(allowed(bootstrapPermissions().pub, Subjects.joinNode)).toBe(true);
    expect(allowed(bootstrapPermissions().pub, Subjects.registerNode("x"))).toBe(false);
  });
});

describe("the trust chain", () => {
  it("signs the account with the operator and names the issuer and the scoped bootstrap key", async () => {
    const token = newBootstrapToken(bytes(5));
    const { trust, issuer } = await createTrust(token);
    const account = decode<{ signing_keys: Array<string | { key: string; kind: string; template: unknown }> }>(trust.accountJwt);
    expect(account.sub).toBe(trust.account);
    expect(account.iss).toBe(decode(trust.operatorJwt).sub);
    const keys = account.nats.signing_keys;
    expect(keys).toContainEqual(expect.stringMatching(/^A/));
    expect(keys).toContainEqual(expect.objectContaining({ key: bootstrapSigner(token).getPublicKey(), kind: "user_scope" }));
    expect(issuer.account).toBe(trust.account);
  });

  it("issues a node a JWT for its own key, named after it, with its permissions", async () => {
    const { issuer } = await createTrust(newBootstrapToken(bytes(6)));
    const key = newUserKey();
    const jwt = await issueUser(issuer, "node-7", key.getPublicKey(), nodePermissions("node-7"));
    const claims = decode<{ issuer_account: string; pub: { allow: string[] } }>(jwt);
    expect(userOf(jwt)).toEqual({ name: "node-7", publicKey: key.getPublicKey() });
    expect(claims.nats.issuer_account).toBe(issuer.account);
    expect(claims.nats.pub?.allow).toContain(Subjects.overlay("*", "*", "node-7"));
    await expect(issueUser(issuer, "x", "not-a-key", {})).rejects.toThrow(/not a NATS user public key/);
  });

  it("lets a token holder sign a bootstrap user with the token's key", async () => {
    const token = newBootstrapToken(bytes(7));
    const { trust } = await createTrust(token);
    const key = newUserKey();
    const claims = decode<{ issuer_account: string }>(await bootstrapUser(token, trust.account, key));
    expect(claims.iss).toBe(bootstrapSigner(token).getPublicKey());
    expect(claims.nats.issuer_account).toBe(trust.account);
    expect(claims.sub).toBe(key.getPublicKey());
  });

  it("writes and reads .creds files", async () => {
    const { issuer } = await createTrust(newBootstrapToken(bytes(8)));
    const creds = await newCredentials(issuer, "cli", cliPermissions());
    expect(parseCredsText(formatCreds(creds))).toEqual(creds);
    expect(parseCredsText("garbage")).toBeUndefined();
  });
});

describe("nats-server config", () => {
  it("enables JetStream, operator auth, TLS and mutual-TLS routes", async () => {
    const { trust } = await createTrust(newBootstrapToken(bytes(9)));
    const text = renderNatsServerConfig({
      serverName: "nats-2",
      host: "127.0.0.1",
      port: 4223,
      storeDir: "/d/nats-2",
      security: { trust, certFile: "/p/s.pem", keyFile: "/p/s.key", caFile: "/p/ca.pem" },
      cluster: { name: "kubewire", host: "127.0.0.1", port: 6223, routes: ["nats-route://127.0.0.1:6222", "nats-route://127.0.0.1:6224"] },
    });
    expect(text).toContain('server_name: "nats-2"');
    expect(text).toContain('jetstream { store_dir: "/d/nats-2" }');
    expect(text).toContain(`operator: "${trust.operatorJwt}"`);
    expect(text).toContain(`system_account: "${trust.systemAccount}"`);
    expect(text).toContain("resolver: MEMORY");
    expect(text).toContain(`"${trust.account}": "${trust.accountJwt}"`);
    expect(text).toMatch(/^tls \{ cert_file: "\/p\/s.pem", key_file: "\/p\/s.key", ca_file: "\/p\/ca.pem", timeout: 5 \}$/m);
    expect(text).toMatch(/^cluster \{ name: "kubewire", host: "127.0.0.1", port: 6223, routes: \["nats-route:\/\/127.0.0.1:6222", "nats-route:\/\/127.0.0.1:6224"\], tls \{ .*verify: true \} \}$/m);
  });

  it("without security is plain JetStream", () => {
    const text = renderNatsServerConfig({ serverName: "nats", host: "127.0.0.1", port: 4222, storeDir: "/d" });
    expect(text).not.toMatch(/operator|tls|cluster/);
  });
});
