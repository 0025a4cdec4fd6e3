/**
 * The Service environment variables kubelet gives every container, pure.
 *
 * Which Services (pkg/kubelet/kubelet_pods.go getServiceEnvVarMap): those with a cluster IP
 * (v1helper.IsServiceIPSet: spec.clusterIP neither "None" nor "": headless and ExternalName
 * Services give none) that are either a master service (`kubernetes`) of the master service
 * namespace (`default`), always, or in the pod's namespace when enableServiceLinks is true (the
 * API default). A Service of the pod's namespace replaces a master service of the same name
 * (the master branch only fills an empty slot).
 *
 * What each gives (pkg/kubelet/envvars/envvars.go FromServices, makeLinkVariables), with
 * NAME = the Service name upper-cased, dashes to underscores (makeEnvVariableName):
 *   NAME_SERVICE_HOST=<clusterIP>            NAME_SERVICE_PORT=<first port>
 *   NAME_SERVICE_PORT_<PORTNAME>=<port>      for each named port
 *   NAME_PORT=<proto>://<clusterIP>:<first port>
 *   NAME_PORT_<port>_<PROTO>=<proto>://<clusterIP>:<port>, and its _PROTO, _PORT and _ADDR
 * with the protocol lower-cased in values, upper-cased in names, TCP when absent; an IPv6
 * cluster IP is bracketed in URLs (net.JoinHostPort).
 */
import { asObject as obj } from "../../cluster/untrusted.ts";

export interface EnvVar {
  readonly name: string;
  readonly value: string;
}

/** The kubelet's masterServices and --master-service-namespace default. */
export const MASTER_SERVICES: readonly string[] = ["kubernetes"];
export const MASTER_SERVICE_NAMESPACE = "default";

interface EnvService {
  namespace: string;
  name: string;
  clusterIP: string;
  ports: { name: string; protocol: string; port: number }[];
}


/** The fields FromServices reads; undefined when the Service has no cluster IP or no port. */
function readEnvService(o: unknown): EnvService | undefined {
  const meta = obj(obj(o)?.metadata);
  const spec = obj(obj(o)?.spec);
  const name = meta?.name;
  const clusterIP = spec?.clusterIP;
  if (typeof name !== "string" || name === "" || !spec) return undefined;
  if (typeof clusterIP !== "string" || clusterIP === "" || clusterIP === "None") return undefined;
  const ports: EnvService["ports"] = [];
  for (const raw of Array.isArray(spec.ports) ? spec.ports : []) {
    const p = obj(raw);
    const port = p?.port;
    if (!p || typeof port !== "number" || !Number.isInteger(port)) continue;
    ports.push({ name: typeof p.name === "string" ? p.name : "", protocol: typeof p.protocol === "string" && p.protocol !== "" ? p.protocol : "TCP", port });
  }
  // Validation gives a cluster-IP Service at least one port; kubelet would index Ports[0].
  if (ports.length === 0) return undefined;
  return { namespace: typeof meta?.namespace === "string" ? meta.namespace : "", name, clusterIP, ports };
}

/** makeEnvVariableName. */
export function envVariableName(s: string): string {
  return s.replaceAll("-", "_").toUpperCase();
}

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** envvars.FromServices for the given Services, in kubelet's order. */
export function fromServices(services: readonly unknown[]): EnvVar[] {
  const out: EnvVar[] = [];
  for (const raw of services) {
    const svc = readEnvService(raw);
    if (!svc) continue;
    const prefix = envVariableName(svc.name);
    const first = svc.ports[0]!;
    out.push({ name: `${prefix}_SERVICE_HOST`, value: svc.clusterIP });
    out.push({ name: `${prefix}_SERVICE_PORT`, value: String(first.port) });
    for (const p of svc.ports) if (p.name !== "") out.push({ name: `${prefix}_SERVICE_PORT_${envVariableName(p.name)}`, value: String(p.port) });
    // makeLinkVariables: the Docker links variables.
    svc.ports.forEach((p, i) => {
      const proto = p.protocol.toLowerCase();
      const url = `${proto}://${hostPort(svc.clusterIP, p.port)}`;
      if (i === 0) out.push({ name: `${prefix}_PORT`, value: url });
      const portPrefix = `${prefix}_PORT_${p.port}_${p.protocol.toUpperCase()}`;
      out.push({ name: portPrefix, value: url });
      out.push({ name: `${portPrefix}_PROTO`, value: proto });
      out.push({ name: `${portPrefix}_PORT`, value: String(p.port) });
      out.push({ name: `${portPrefix}_ADDR`, value: svc.clusterIP });
    });
  }
  return out;
}

/**
 * getServiceEnvVarMap: the Service variables of a container in `namespace`, sorted by name (kubelet
 * builds a map, so it has no order of its own).
 */
export function serviceEnvVars(
  services: readonly unknown[],
  namespace: string,
  enableServiceLinks = true,
  masterServiceNamespace: string = MASTER_SERVICE_NAMESPACE,
): Record<string, string> {
  const chosen = new Map<string, unknown>();
  for (const raw of services) {
    const svc = readEnvService(raw);
    if (!svc) continue;
    if (svc.namespace === masterServiceNamespace && MASTER_SERVICES.includes(svc.name)) {
      if (!chosen.has(svc.name)) chosen.set(svc.name, raw);
    } else if (svc.namespace === namespace && enableServiceLinks) {
      chosen.set(svc.name, raw);
    }
  }
  const vars = fromServices([...chosen.values()]);
  vars.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: Record<string, string> = {};
  for (const v of vars) out[v.name] = v.value;
  return out;
}

/** What `valueFrom.fieldRef` may name, from the pod and its node (the downward API). */
export interface PodFields {
  readonly podIP: string;
  readonly hostIP: string;
  readonly nodeName: string;
}

/**
 * kubelet's makeEnvironmentVariables for one container: the Service variables first, then the
 * container's own `env` in order (a later one replaces an earlier one of the same name), each
 * value with `$(VAR)` references to earlier variables expanded and `$$` as a literal `$`
 * (third_party/forked/golang/expansion). `valueFrom` is read for the downward API's fieldRef
 * (metadata.name/namespace/uid, spec.nodeName, spec.serviceAccountName, status.podIP/hostIP);
 * configMapKeyRef and secretKeyRef are not emulated (the variable is left out).
 */
export function containerEnv(pod: unknown, container: string, serviceVars: Readonly<Record<string, string>>, fields: PodFields): Record<string, string> {
  const meta = obj(obj(pod)?.metadata);
  const spec = obj(obj(pod)?.spec);
  const out: Record<string, string> = { ...serviceVars };
  const c = (Array.isArray(spec?.containers) ? spec.containers : []).map(obj).find((x) => x?.name === container);
  const fieldOf = (path: unknown): string | undefined => {
    switch (path) {
      case "metadata.name":
      case "metadata.namespace":
      case "metadata.uid":
        return typeof meta?.[path.slice(9)] === "string" ? (meta[path.slice(9)] as string) : undefined;
      case "spec.nodeName":
        return fields.nodeName;
      case "spec.serviceAccountName":
        return typeof spec?.serviceAccountName === "string" ? spec.serviceAccountName : "default";
      case "status.podIP":
      case "status.podIPs":
        return fields.podIP;
      case "status.hostIP":
      case "status.hostIPs":
        return fields.hostIP;
      default:
        return undefined;
    }
  };
  for (const raw of Array.isArray(c?.env) ? c.env : []) {
    const e = obj(raw);
    if (typeof e?.name !== "string" || e.name === "") continue;
    if (typeof e.value === "string") out[e.name] = expand(e.value, out);
    else if (e.value === undefined && !e.valueFrom) out[e.name] = "";
    else {
      const v = fieldOf(obj(obj(e.valueFrom)?.fieldRef)?.fieldPath);
      if (v !== undefined) out[e.name] = v;
    }
  }
  return out;
}

/** `$(VAR)` -> its value when defined (else left as written), `$$` -> `$`. */
export function expand(input: string, vars: Readonly<Record<string, string>>): string {
  return input.replace(/\$\$|\$\(([^)]*)\)/g, (m, name: string | undefined) => {
    if (m === "$$") return "$";
    return name !== undefined && Object.hasOwn(vars, name) ? vars[name]! : m;
  });
}
