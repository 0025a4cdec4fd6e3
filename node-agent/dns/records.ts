/**
 * The cluster's DNS data, pure: Services, EndpointSlices, Pods and Namespaces as the API stores
 * them, reduced to what the Kubernetes DNS schema (kubernetes/dns docs/specification.md 1.1.0)
 * and CoreDNS's kubernetes plugin read, and indexed for lookups by lower-cased name and by IP.
 *
 * What is kept, as CoreDNS's object package keeps it (plugin/kubernetes/object):
 * - Service (service.go ToService): kind (ExternalName by spec.type first, then headless when the
 *   first of spec.clusterIPs, or spec.clusterIP, is "None", else ClusterIP), the IPv4 cluster IPs,
 *   externalName, and the ports (name, protocol, number).
 * - EndpointSlice (endpoint.go EndpointSliceToEndpoints): the service it belongs to (the
 *   kubernetes.io/service-name label), its ports (a slice without ports gets CoreDNS's sentinel
 *   port -1: it still answers A records, never SRV), and its READY endpoints only (ready absent
 *   counts as ready, as the API documents it) with each address, the endpoint's hostname and the
 *   targetRef name. Only IPv4 slices: the emulated cluster is single-stack IPv4.
 * - Pod (pod.go ToPod): namespace and status.podIP, for `pods verified`; a terminating pod
 *   (deletionTimestamp set) is left out, as CoreDNS drops it.
 * - Namespace: its name. CoreDNS answers nothing under a namespace it does not know
 *   (namespace.go namespaceExposed).
 *
 * Every field is read defensively, as node-agent/proxy/model.ts reads Services: a field of the
 * wrong type is treated as absent and an object without a usable name is ignored; nothing throws.
 *
 * Level-triggered: `replaceAll` builds everything from the whole set; `upsert`/`remove` apply one
 * object. `serial` (the SOA serial) moves on every change that alters an answer: to the caller's
 * `modifiedAt` (CoreDNS uses the Unix time of the last change, controller.go Modified) or by one.
 */
import { parseIpv4Addr, type Ipv4Addr } from "../../overlay/wire/index.ts";
import { asArray as arr, asObject as obj, asString as str } from "../../cluster/untrusted.ts";

export type ServiceKind = "ClusterIP" | "Headless" | "ExternalName";

export interface DnsPort {
  /** "" for an unnamed port. */
  readonly name: string;
  /** "TCP", "UDP", "SCTP" as the object says ("TCP" when absent, the API default). */
  readonly protocol: string;
  /** -1 is CoreDNS's "no port" sentinel (an EndpointSlice port without a number). */
  readonly port: number;
}

export interface DnsService {
  readonly namespace: string;
  readonly name: string;
  readonly kind: ServiceKind;
  /** IPv4 cluster IPs (spec.clusterIPs, else spec.clusterIP); [] for headless and ExternalName. */
  readonly clusterIPs: readonly Ipv4Addr[];
  /** spec.externalName without a trailing dot; "" unless kind is ExternalName. */
  readonly externalName: string;
  readonly ports: readonly DnsPort[];
}

export interface DnsEndpoint {
  readonly ip: Ipv4Addr;
  /** The endpoint's `hostname` field ("" when unset). */
  readonly hostname: string;
  /** targetRef.name when it is a DNS label (CoreDNS keeps it under 64 characters), else "". */
  readonly targetName: string;
}

export interface DnsSlice {
  readonly namespace: string;
  /** The slice's own name. */
  readonly name: string;
  /** The Service it belongs to, as the label spells it. */
  readonly serviceName: string;
  readonly ports: readonly DnsPort[];
  /** Ready endpoints, one entry per address. */
  readonly endpoints: readonly DnsEndpoint[];
}

export type DnsObjectKind = "Service" | "EndpointSlice" | "Pod" | "Namespace";

export interface DnsObjects {
  services?: readonly unknown[];
  endpointSlices?: readonly unknown[];
  pods?: readonly unknown[];
  namespaces?: readonly unknown[];
}

// ---------------------------------------------------------------------------------------------
// Reading untrusted objects

const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

function nonEmpty(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}
function ipv4(v: unknown): Ipv4Addr | undefined {
  return typeof v === "string" ? parseIpv4Addr(v) : undefined;
}

/**
 * An RFC 1123 label (what API validation demands of namespace, Service and endpoint hostnames).
 * Anything else could not be queried as one label and would corrupt the names built from it
 * (SRV and PTR targets), so it is treated as absent.
 */
export function isDnsLabel(v: string): boolean {
  return /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/i.test(v);
}

/** namespace and name from metadata, or undefined when either is missing. */
export function objectKey(o: unknown): { namespace: string; name: string } | undefined {
  const meta = obj(obj(o)?.metadata);
  const name = nonEmpty(meta?.name);
  if (!name) return undefined;
  return { namespace: str(meta?.namespace) ?? "", name };
}

function readPort(raw: unknown, sentinelWithoutNumber: boolean): DnsPort | undefined {
  const p = obj(raw);
  if (!p) return undefined;
  const n = p.port;
  const valid = typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= 65535;
  if (!valid && !sentinelWithoutNumber) return undefined;
  return { name: str(p.name) ?? "", protocol: str(p.protocol) ?? "TCP", port: valid ? n : -1 };
}

/** A Service as CoreDNS keeps it (object/service.go ToService); undefined when unusable. */
export function readService(o: unknown): DnsService | undefined {
  const key = objectKey(o);
  const spec = obj(obj(o)?.spec);
  if (!key || !isDnsLabel(key.namespace) || !isDnsLabel(key.name) || !spec) return undefined;
  const ips = arr(spec.clusterIPs).filter((x): x is string => typeof x === "string");
  const clusterIPs = ips.length > 0 ? ips : [str(spec.clusterIP) ?? ""];
  const ports = arr(spec.ports)
    .map((p) => readPort(p, false))
    .filter((p): p is DnsPort => p !== undefined);
  if (spec.type === "ExternalName") {
    const ext = (str(spec.externalName) ?? "").replace(/\.$/, "");
    return { ...key, kind: "ExternalName", clusterIPs: [], externalName: ext, ports };
  }
  if (clusterIPs[0] === "None") return { ...key, kind: "Headless", clusterIPs: [], externalName: "", ports };
  return {
    ...key,
    kind: "ClusterIP",
    clusterIPs: clusterIPs.map(ipv4).filter((ip): ip is Ipv4Addr => ip !== undefined),
    externalName: "",
    ports,
  };
}

/** An EndpointSlice as CoreDNS keeps it (object/endpoint.go); undefined when unusable. */
export function readEndpointSlice(o: unknown): DnsSlice | undefined {
  const key = objectKey(o);
  const slice = obj(o);
  const labels = obj(obj(slice?.metadata)?.labels);
  const serviceName = nonEmpty(labels?.[SERVICE_NAME_LABEL]);
  if (!key || !isDnsLabel(key.namespace) || !slice || !serviceName || !isDnsLabel(serviceName)) return undefined;
  // Only IPv4 slices: IPv6 and FQDN address types have nothing an A record can carry.
  if (slice.addressType !== "IPv4") return { ...key, serviceName, ports: [], endpoints: [] };
  const rawPorts = arr(slice.ports);
  const ports = rawPorts.map((p) => readPort(p, true)).filter((p): p is DnsPort => p !== undefined);
  // A slice without ports answers A records through the sentinel port -1, never SRV.
  if (ports.length === 0) ports.push({ name: "", protocol: "", port: -1 });
  const endpoints: DnsEndpoint[] = [];
  for (const raw of arr(slice.endpoints)) {
    const e = obj(raw);
    if (!e) continue;
    // "a nil value indicates an unknown state ... consumers should interpret this as ready".
    if (obj(e.conditions)?.ready === false) continue;
    const rawHostname = str(e.hostname) ?? "";
    const hostname = isDnsLabel(rawHostname) ? rawHostname : "";
    const rawTarget = str(obj(e.targetRef)?.name) ?? "";
    // CoreDNS keeps pod names under 64 characters; a pod name with dots is no label either.
    const target = isDnsLabel(rawTarget) ? rawTarget : "";
    for (const a of arr(e.addresses)) {
      const ip = ipv4(a);
      if (ip !== undefined) endpoints.push({ ip, hostname, targetName: target });
    }
  }
  return { ...key, serviceName, ports, endpoints };
}

/** A Pod's namespace and IPv4 status.podIP; undefined when it has none or is terminating. */
export function readPod(o: unknown): { namespace: string; name: string; ip: Ipv4Addr } | undefined {
  const key = objectKey(o);
  const pod = obj(o);
  if (!key || !pod) return undefined;
  if (obj(pod.metadata)?.deletionTimestamp) return undefined;
  const ip = ipv4(obj(pod.status)?.podIP);
  return ip === undefined ? undefined : { ...key, ip };
}

// ---------------------------------------------------------------------------------------------
// The data

function lower(s: string): string {
  return s.toLowerCase();
}

function addTo<K>(m: Map<K, Set<string>>, k: K, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function removeFrom<K>(m: Map<K, Set<string>>, k: K, v: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class ClusterDnsData {
  /** The SOA serial: the `modifiedAt` of the last change, or a count of changes. */
  serial = 0;
  /**
   * The whole set has been seen once (replaceAll or markSynced). Before that CoreDNS answers a
   * name error with SERVFAIL (handler.go: !HasSynced), not NXDOMAIN.
   */
  synced = false;

  private readonly namespaces = new Map<string, string>();
  /** By "namespace/name", lower-cased. */
  private readonly services = new Map<string, DnsService>();
  private readonly servicesByIP = new Map<Ipv4Addr, Set<string>>();
  /** By "namespace/sliceName" (the slice's own name, as is). */
  private readonly slices = new Map<string, DnsSlice>();
  /** Service key (lower-cased) -> slice keys. */
  private readonly slicesByService = new Map<string, Set<string>>();
  private readonly slicesByIP = new Map<Ipv4Addr, Set<string>>();
  /** By "namespace/name" -> pod. */
  private readonly pods = new Map<string, { namespace: string; ip: Ipv4Addr }>();
  private readonly podsByIP = new Map<Ipv4Addr, Set<string>>();

  static from(objects: DnsObjects, modifiedAt?: number): ClusterDnsData {
    const d = new ClusterDnsData();
    d.replaceAll(objects, modifiedAt);
    return d;
  }

  /** Rebuilds everything from the whole set of objects (a relist) and marks the data synced. */
  replaceAll(objects: DnsObjects, modifiedAt?: number): void {
    const before = this.snapshot();
    for (const m of [this.namespaces, this.services, this.servicesByIP, this.slices, this.slicesByService, this.slicesByIP, this.pods, this.podsByIP]) m.clear();
    for (const o of objects.namespaces ?? []) this.apply("Namespace", o);
    for (const o of objects.services ?? []) this.apply("Service", o);
    for (const o of objects.endpointSlices ?? []) this.apply("EndpointSlice", o);
    for (const o of objects.pods ?? []) this.apply("Pod", o);
    this.synced = true;
    if (before !== this.snapshot()) this.bump(modifiedAt);
  }

  markSynced(): void {
    this.synced = true;
  }

  /** Adds or replaces one object; true when an answer may have changed. */
  upsert(kind: DnsObjectKind, o: unknown, modifiedAt?: number): boolean {
    const changed = this.apply(kind, o);
    if (changed) this.bump(modifiedAt);
    return changed;
  }

  /**
   * Removes one object, given as the object (or anything with metadata.namespace and
   * metadata.name); true when an answer may have changed.
   */
  remove(kind: DnsObjectKind, o: unknown, modifiedAt?: number): boolean {
    const key = objectKey(o);
    if (!key) return false;
    const changed = this.delete(kind, key.namespace, key.name);
    if (changed) this.bump(modifiedAt);
    return changed;
  }

  private bump(modifiedAt: number | undefined): void {
    this.serial = modifiedAt !== undefined && Number.isFinite(modifiedAt) ? Math.trunc(modifiedAt) >>> 0 : (this.serial + 1) >>> 0;
  }

  private snapshot(): string {
    return JSON.stringify([[...this.namespaces.keys()].sort(), [...this.services.entries()].sort(), [...this.slices.entries()].sort(), [...this.pods.entries()].sort()]);
  }

  private apply(kind: DnsObjectKind, o: unknown): boolean {
    const key = objectKey(o);
    if (!key) return false;
    switch (kind) {
      case "Namespace": {
        if (!isDnsLabel(key.name)) return false;
        const k = lower(key.name);
        if (this.namespaces.has(k)) return false;
        this.namespaces.set(k, key.name);
        return true;
      }
      case "Service": {
        const svc = readService(o);
        if (!svc) return this.delete(kind, key.namespace, key.name);
        const k = lower(`${svc.namespace}/${svc.name}`);
        const had = this.services.get(k);
        if (had && same(had, svc)) return false;
        if (had) for (const ip of had.clusterIPs) removeFrom(this.servicesByIP, ip, k);
        this.services.set(k, svc);
        for (const ip of svc.clusterIPs) addTo(this.servicesByIP, ip, k);
        return true;
      }
      case "EndpointSlice": {
        const slice = readEndpointSlice(o);
        if (!slice) return this.delete(kind, key.namespace, key.name);
        const k = `${slice.namespace}/${slice.name}`;
        const had = this.slices.get(k);
        if (had && same(had, slice)) return false;
        if (had) this.unindexSlice(k, had);
        this.slices.set(k, slice);
        addTo(this.slicesByService, lower(`${slice.namespace}/${slice.serviceName}`), k);
        for (const e of slice.endpoints) addTo(this.slicesByIP, e.ip, k);
        return true;
      }
      case "Pod": {
        const pod = readPod(o);
        if (!pod) return this.delete(kind, key.namespace, key.name);
        const k = `${pod.namespace}/${pod.name}`;
        const had = this.pods.get(k);
        if (had && had.ip === pod.ip && had.namespace === pod.namespace) return false;
        if (had) removeFrom(this.podsByIP, had.ip, k);
        this.pods.set(k, { namespace: pod.namespace, ip: pod.ip });
        addTo(this.podsByIP, pod.ip, k);
        return true;
      }
    }
    return false;
  }

  private unindexSlice(k: string, s: DnsSlice): void {
    removeFrom(this.slicesByService, lower(`${s.namespace}/${s.serviceName}`), k);
    for (const e of s.endpoints) removeFrom(this.slicesByIP, e.ip, k);
  }

  private delete(kind: DnsObjectKind, namespace: string, name: string): boolean {
    switch (kind) {
      case "Namespace":
        return this.namespaces.delete(lower(name));
      case "Service": {
        const k = lower(`${namespace}/${name}`);
        const had = this.services.get(k);
        if (!had) return false;
        for (const ip of had.clusterIPs) removeFrom(this.servicesByIP, ip, k);
        this.services.delete(k);
        return true;
      }
      case "EndpointSlice": {
        const k = `${namespace}/${name}`;
        const had = this.slices.get(k);
        if (!had) return false;
        this.unindexSlice(k, had);
        this.slices.delete(k);
        return true;
      }
      case "Pod": {
        const k = `${namespace}/${name}`;
        const had = this.pods.get(k);
        if (!had) return false;
        removeFrom(this.podsByIP, had.ip, k);
        this.pods.delete(k);
        return true;
      }
    }
    return false;
  }

  // -------------------------------------------------------------------------------------------
  // Lookups (names compared case-insensitively, spec §2.1)

  hasNamespace(namespace: string): boolean {
    return this.namespaces.has(lower(namespace));
  }

  service(namespace: string, name: string): DnsService | undefined {
    return this.services.get(lower(`${namespace}/${name}`));
  }

  /** The slices of a Service, by slice name (a stable order for answers). */
  slicesOf(namespace: string, name: string): DnsSlice[] {
    const keys = this.slicesByService.get(lower(`${namespace}/${name}`));
    if (!keys) return [];
    return [...keys].sort().map((k) => this.slices.get(k)!);
  }

  /** The Service owning a cluster IP (CoreDNS SvcIndexReverse; the first by key if several). */
  serviceByClusterIP(ip: Ipv4Addr): DnsService | undefined {
    const keys = this.servicesByIP.get(ip);
    if (!keys) return undefined;
    const first = [...keys].sort()[0];
    return first === undefined ? undefined : this.services.get(first);
  }

  /** The slices with a ready endpoint at `ip` (CoreDNS EpIndexReverse), by slice key. */
  slicesWithIP(ip: Ipv4Addr): DnsSlice[] {
    const keys = this.slicesByIP.get(ip);
    if (!keys) return [];
    return [...keys].sort().map((k) => this.slices.get(k)!);
  }

  /** A non-terminating pod of `namespace` has status.podIP `ip` (CoreDNS PodIndex, verified mode). */
  podExists(namespace: string, ip: Ipv4Addr): boolean {
    for (const k of this.podsByIP.get(ip) ?? []) if (lower(this.pods.get(k)!.namespace) === lower(namespace)) return true;
    return false;
  }

  get size(): { namespaces: number; services: number; endpointSlices: number; pods: number } {
    return { namespaces: this.namespaces.size, services: this.services.size, endpointSlices: this.slices.size, pods: this.pods.size };
  }
}
