/**
 * The API's serving certificate. kubectl sends bearer tokens only over TLS (client-go drops
 * them on plain http), so the API is HTTPS: `kubewire up` and the tests generate a self-signed
 * certificate for 127.0.0.1/localhost and put it in the kubeconfig as the CA.
 * And the cluster CA, which signs the NATS servers' certificates (every NATS link is TLS).
 */
import { createHash, X509Certificate } from "node:crypto";
import { generate } from "selfsigned";

export interface ServingCert {
  cert: string;
  key: string;
}

/**
 * One EC P-256 certificate signed with SHA-256, valid from a minute ago (clock skew between
 * processes) for `days`; self-signed unless `ca` signs it.
 */
async function certificate(commonName: string, days: number, extensions: NonNullable<Parameters<typeof generate>[1]>["extensions"], ca?: { key: string; cert: string }): Promise<ServingCert> {
  const now = Date.now();
  const pems = await generate([{ name: "commonName", value: commonName }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + days * 24 * 3600_000),
    extensions,
    ...(ca ? { ca } : {}),
  });
  return { cert: pems.cert, key: pems.private };
}

export async function generateServingCert(ips: string[] = ["127.0.0.1"], dnsNames: string[] = ["localhost", "kubewire"]): Promise<ServingCert> {
  return certificate("kubewire-apiserver", 365, [
    { name: "basicConstraints", cA: true },
    { name: "keyUsage", digitalSignature: true, keyCertSign: true, keyEncipherment: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames: [...ips.map((ip) => ({ type: 7 as const, ip })), ...dnsNames.map((value) => ({ type: 2 as const, value }))] },
  ]);
}

/** The cluster's certificate authority: it signs the NATS servers' certificates. */
export interface ClusterCa {
  cert: string;
  key: string;
}

export async function generateClusterCa(): Promise<ClusterCa> {
  return certificate("kubewire-ca", 3650, [
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
  ]);
}

/** URI SAN of a NATS server certificate naming the cluster's NATS account (how `kubewire join` discovers it). */
export const NATS_ACCOUNT_URI_PREFIX = "urn:kubewire:nats-account:";

/**
 * A NATS server's certificate, signed by the cluster CA, for server and client (route) use. The
 * PEM holds the chain (leaf then CA), so a joining node sees the CA in the handshake and can pin it.
 */
export async function generateNatsServerCert(ca: ClusterCa, opts: { ips: string[]; dnsNames: string[]; account: string }): Promise<ServingCert> {
  const leaf = await certificate(
    "kubewire-nats",
    365,
    [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          ...opts.ips.map((ip) => ({ type: 7 as const, ip })),
          ...opts.dnsNames.map((value) => ({ type: 2 as const, value })),
          { type: 6 as const, value: `${NATS_ACCOUNT_URI_PREFIX}${opts.account}` },
        ],
      },
    ],
    ca,
  );
  return { cert: `${leaf.cert.trim()}\n${ca.cert.trim()}\n`, key: leaf.key };
}

/**
 * kubeadm's CA pin (--discovery-token-ca-cert-hash, cmd/kubeadm/app/util/pubkeypin): "sha256:"
 * and the hex SHA-256 of the CA certificate's DER SubjectPublicKeyInfo.
 */
export function caCertHash(caPem: string): string {
  const spki = new X509Certificate(caPem).publicKey.export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(spki).digest("hex")}`;
}
