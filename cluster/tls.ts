/**
 * The API's serving certificate. kubectl sends bearer tokens only over TLS (client-go drops
 * them on plain http), so the API is HTTPS: `kubewire up` and the tests generate a self-signed
 * certificate for 127.0.0.1/localhost and put it in the kubeconfig as the CA.
 */
import { generate } from "selfsigned";

export interface ServingCert {
  cert: string;
  key: string;
}

export async function generateServingCert(ips: string[] = ["127.0.0.1"], dnsNames: string[] = ["localhost", "kubewire"]): Promise<ServingCert> {
  const now = new Date();
  const pems = await generate([{ name: "commonName", value: "kubewire-apiserver" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + 365 * 24 * 3600_000),
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "keyUsage", digitalSignature: true, keyCertSign: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [...ips.map((ip) => ({ type: 7 as const, ip })), ...dnsNames.map((value) => ({ type: 2 as const, value }))] },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
