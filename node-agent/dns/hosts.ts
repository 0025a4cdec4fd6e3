/**
 * A pod's /etc/hosts as kubelet writes it, pure (pkg/kubelet/kubelet_pods.go
 * managedHostsFileContent, hostsEntriesFromHostAliases): the localhost lines, the pod's own
 * entry (`IP\tFQDN\thostname` when spec.subdomain is set, else `IP\thostname`), then the
 * spec.hostAliases. The hostname is spec.hostname, else the pod name truncated to 63 characters
 * (GeneratePodHostNameAndDomain, truncated as truncatePodHostnameIfNeeded does, without a
 * trailing '-' or '.').
 */
import { asObject as obj } from "../../cluster/untrusted.ts";

export function podHostname(pod: unknown): { hostname: string; fqdn: string | undefined } {
  const meta = obj(obj(pod)?.metadata);
  const spec = obj(obj(pod)?.spec);
  const name = typeof meta?.name === "string" ? meta.name : "";
  const namespace = typeof meta?.namespace === "string" && meta.namespace !== "" ? meta.namespace : "default";
  let hostname = typeof spec?.hostname === "string" && spec.hostname !== "" ? spec.hostname : name;
  if (hostname.length > 63) hostname = hostname.slice(0, 63).replace(/[-.]+$/, "");
  const subdomain = typeof spec?.subdomain === "string" && spec.subdomain !== "" ? spec.subdomain : undefined;
  return { hostname, fqdn: subdomain ? `${hostname}.${subdomain}.${namespace}.svc` : undefined };
}

export function podHostsFile(pod: unknown, podIp: string, clusterDomain: string): string {
  const { hostname, fqdn } = podHostname(pod);
  let out = "# Kubernetes-managed hosts file.\n";
  out += "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";
  out += fqdn ? `${podIp}\t${fqdn}.${clusterDomain}\t${hostname}\n` : `${podIp}\t${hostname}\n`;
  const aliases = Array.isArray(obj(obj(pod)?.spec)?.hostAliases) ? (obj(obj(pod)?.spec)!.hostAliases as unknown[]) : [];
  const lines: string[] = [];
  for (const raw of aliases) {
    const a = obj(raw);
    const names = Array.isArray(a?.hostnames) ? a.hostnames.filter((h): h is string => typeof h === "string" && h !== "") : [];
    if (typeof a?.ip !== "string" || names.length === 0) continue;
    lines.push(`${a.ip}\t${names.join("\t")}\n`);
  }
  if (lines.length > 0) out += `\n# Entries added by HostAliases.\n${lines.join("")}`;
  return out;
}
