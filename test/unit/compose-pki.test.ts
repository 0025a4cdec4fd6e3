/**
 * The compose set-up's pki (cluster/compose-pki.ts) on a temporary directory: the material made
 * once for the given token, each consumer's share, a second run that keeps everything, and a
 * changed token refused; with several NATS servers, one config each and a certificate for all.
 * Real keys and files; no containers (test/integration/compose.test.ts runs the pki service for
 * real).
 */
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode } from "@nats-io/jwt";
import { afterAll, describe, expect, it } from "vitest";
import {
  COMPOSE_NATS_CLUSTER,
  COMPOSE_PKI_FILES,
  ComposePkiError,
  composeCliFiles,
  composeNatsFiles,
  provisionComposePki,
  type ComposePkiLayout,
} from "../../cluster/compose-pki.ts";
import { bootstrapSigner, parseCredsText, userOf } from "../../cluster/nats-auth.ts";
import { createClusterSecurity } from "../../cluster/security.ts";

const TOKEN = "abcdef.0123456789abcdef";
const root = mkdtempSync(join(tmpdir(), "kubewire-compose-pki-"));
const layout: ComposePkiLayout = { stateDir: join(root, "state"), nats: join(root, "nats"), controlPlane: join(root, "control-plane"), node: join(root, "node") };
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mode = (file: string) => statSync(file).mode & 0o777;

describe("provisionComposePki", () => {
  it("makes the material for the given token and gives each consumer only its files", async () => {
    expect(await provisionComposePki(TOKEN, layout)).toMatchObject({ created: true });
    expect(readFileSync(join(layout.stateDir, "pki", "bootstrap-token"), "utf8").trim()).toBe(TOKEN);
    for (const consumer of ["nats", "controlPlane", "node"] as const) {
      const files = COMPOSE_PKI_FILES[consumer] as Record<string, boolean>;
      expect(readdirSync(layout[consumer]).sort(), consumer).toEqual(Object.keys(files).sort());
      for (const [file, secret] of Object.entries(files)) expect(mode(join(layout[consumer], file)), `${consumer}/${file}`).toBe(secret ? 0o600 : 0o644);
    }
    // The account trusts the token's bootstrap key: nodes configured with the token can join.
    const trust = JSON.parse(readFileSync(join(layout.stateDir, "pki", "trust.json"), "utf8")) as { accountJwt: string };
    const signingKeys = JSON.stringify(decode<{ signing_keys?: unknown }>(trust.accountJwt).nats.signing_keys);
    expect(signingKeys).toContain(bootstrapSigner(TOKEN).getPublicKey());
    // The server certificate: for the service name on the compose network and the published port on the host.
    const leaf = new X509Certificate(readFileSync(join(layout.nats, "nats-server.pem"), "utf8"));
    expect(leaf.checkHost("nats")).toBe("nats");
    expect(leaf.checkHost("localhost")).toBe("localhost");
    expect(leaf.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(leaf.checkIssued(new X509Certificate(readFileSync(join(layout.node, "ca.pem"), "utf8")))).toBe(true);
    // The config names the files where the nats container has them, and listens as the compose file expects.
    const config = readFileSync(join(layout.nats, "nats-server.conf"), "utf8");
    for (const file of ["nats-server.pem", "nats-server.key", "ca.pem"]) expect(config).toContain(JSON.stringify(join(layout.nats, file)));
    expect(config).toMatch(/^host: "0\.0\.0\.0"$/m);
    expect(config).toMatch(/^port: 4222$/m);
    expect(config).toMatch(/^jetstream \{ store_dir: "\/data" \}$/m);
    expect(config).toMatch(/^http: "0\.0\.0\.0:8222"$/m);
    // The CLI's identity stays with the material.
    expect(userOf(parseCredsText(readFileSync(composeCliFiles(layout).creds, "utf8"))!.jwt)?.name).toBe("cli");
    expect(userOf(parseCredsText(readFileSync(join(layout.controlPlane, "control-plane.creds"), "utf8"))!.jwt)?.name).toBe("control-plane");
  });

  it("keeps the material on a second run, and puts back a file a share lost", async () => {
    const ca = readFileSync(join(layout.node, "ca.pem"), "utf8");
    expect(await provisionComposePki(TOKEN, layout)).toEqual({ created: false, written: [] });
    rmSync(join(layout.controlPlane, "issuer.json"));
    expect(await provisionComposePki(TOKEN, layout)).toEqual({ created: false, written: [join(layout.controlPlane, "issuer.json")] });
    expect(mode(join(layout.controlPlane, "issuer.json"))).toBe(0o600);
    expect(readFileSync(join(layout.node, "ca.pem"), "utf8")).toBe(ca);
  });

  it("refuses another token than the material was made for, changing nothing", async () => {
    const ca = readFileSync(join(layout.node, "ca.pem"), "utf8");
    await expect(provisionComposePki("zzzzzz.0123456789abcdef", layout)).rejects.toThrow(ComposePkiError);
    expect(readFileSync(join(layout.node, "ca.pem"), "utf8")).toBe(ca);
    expect(readFileSync(join(layout.stateDir, "pki", "bootstrap-token"), "utf8").trim()).toBe(TOKEN);
  });
});

describe("createClusterSecurity", () => {
  it("takes a given bootstrap token, and refuses one not in kubeadm's format", async () => {
    const dir = join(root, "given");
    expect((await createClusterSecurity(dir, undefined, { token: TOKEN })).token).toBe(TOKEN);
    await expect(createClusterSecurity(join(root, "bad"), undefined, { token: "not-a-token" })).rejects.toThrow(/\[a-z0-9\]\{6\}/);
  });
});

describe("provisionComposePki for a NATS cluster (KUBEWIRE_NATS_SERVERS)", () => {
  const servers = ["nats", "nats-2", "nats-3"];
  const base = join(root, "cluster");
  const clustered: ComposePkiLayout = { stateDir: join(base, "state"), nats: join(base, "nats"), controlPlane: join(base, "control-plane"), node: join(base, "node") };

  it("makes the server certificate for every server, and one config per server routing it to the others with mutual TLS", async () => {
    expect(await provisionComposePki(TOKEN, clustered, servers)).toMatchObject({ created: true });
    expect(readdirSync(clustered.nats).sort()).toEqual(Object.keys(composeNatsFiles(servers)).sort());
    expect(readdirSync(clustered.nats)).not.toContain("nats-server.conf");
    const leaf = new X509Certificate(readFileSync(join(clustered.nats, "nats-server.pem"), "utf8"));
    for (const name of servers) expect(leaf.checkHost(name), name).toBe(name);
    const names = servers.map((name) => {
      const config = readFileSync(join(clustered.nats, `${name}.conf`), "utf8");
      expect(config).toMatch(/^port: 4222$/m);
      expect(config).toMatch(/^jetstream \{ store_dir: "\/data" \}$/m);
      expect(config).toMatch(/^http: "0\.0\.0\.0:8222"$/m);
      const cluster = /^cluster \{ (.*) \}$/m.exec(config)?.[1] ?? "";
      expect(cluster).toContain(`port: ${COMPOSE_NATS_CLUSTER.port}`);
      expect(cluster).toContain(`routes: [${servers.map((s) => JSON.stringify(`nats-route://${s}:${COMPOSE_NATS_CLUSTER.port}`)).join(", ")}]`);
      // Routes only between holders of a certificate of the cluster CA.
      expect(cluster).toMatch(/tls \{ [^}]*ca_file: [^}]*verify: true \}/);
      return /^server_name: "([^"]+)"$/m.exec(config)?.[1];
    });
    expect(names, "server_name must tell the JetStream peers apart").toEqual(servers);
  });

  it("refuses to switch a project between one server and a cluster, but takes the servers in any order", async () => {
    await expect(provisionComposePki(TOKEN, clustered)).rejects.toThrow(/made for the NATS servers nats,nats-2,nats-3, not nats /);
    await expect(provisionComposePki(TOKEN, layout, servers)).rejects.toThrow(ComposePkiError);
    expect(await provisionComposePki(TOKEN, clustered, ["nats-3", "nats", "nats-2"])).toMatchObject({ created: false });
    // Material made before KUBEWIRE_NATS_SERVERS was for the one server nats.
    rmSync(join(layout.stateDir, "pki", "nats-servers"));
    expect(await provisionComposePki(TOKEN, layout)).toEqual({ created: false, written: [] });
    await expect(provisionComposePki(TOKEN, layout, servers)).rejects.toThrow(ComposePkiError);
  });
});
