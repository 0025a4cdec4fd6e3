/**
 * ClusterIP and NodePort allocation (pkg/registry/core/service/ipallocator,
 * pkg/registry/core/service/portallocator, and the callers in pkg/registry/core/service/storage
 * alloc.go). Pure: the caller passes what is taken and records the choice itself.
 *
 * Errors carry the field path and the message Kubernetes puts in the StatusCause (the body of
 * field.Error: `Invalid value: <json>: <detail>`); the full text kubectl prints is
 * `${field}: ${message}` (also given as `text`). Kubernetes picks free values at random with an
 * offset for static allocations; here the lowest free one is taken, deterministically.
 */
import { broadcastOf, cidrContains, formatCidr, mustParseCidr, nthAddress } from "../../../cluster/addressing.ts";
import { formatIpv4, parseIpv4Addr } from "../../../overlay/wire/common.ts";

export type AllocationError = {
  kind: "error";
  /** FieldValueInvalid → 422 Invalid; InternalError → 500 ("Internal error occurred: " + message). */
  reason: "FieldValueInvalid" | "InternalError";
  field: string;
  message: string;
  text: string;
};

export type ClusterIpAllocation = { kind: "allocated"; ip: string } | AllocationError;
export type NodePortAllocation = { kind: "allocated"; port: number } | AllocationError;

export interface PortRange {
  readonly base: number;
  readonly size: number;
}

/** --service-node-port-range default 30000-32767. */
export const DEFAULT_NODE_PORT_RANGE: PortRange = { base: 30000, size: 2768 };

/** The host offsets of the service range kept out of dynamic allocation. */
export const ReservedOffset = {
  /** The `kubernetes` Service in default (the apiserver requests it explicitly). */
  KubernetesService: 1,
  /** Cluster DNS (kube-dns), by kubeadm's convention. */
  ClusterDns: 10,
} as const;

const ErrAllocated = "provided IP is already allocated";
const ErrPortAllocated = "provided port is already allocated";
const ErrFull = "range is full";

/** field.Invalid(...).ErrorBody: the value rendered as Go does (numbers bare, strings quoted, slices as JSON). */
function invalid(field: string, value: unknown, detail: string): AllocationError {
  const message = `Invalid value: ${JSON.stringify(value)}: ${detail}`;
  return { kind: "error", reason: "FieldValueInvalid", field, message, text: `${field}: ${message}` };
}

function internal(field: string, message: string): AllocationError {
  return { kind: "error", reason: "InternalError", field, message, text: `Internal error occurred: ${message}` };
}

/**
 * A ClusterIP from `serviceCidr`. The network and broadcast addresses are outside the
 * allocator's range (asking for them is "not in the valid range"); .1 and .10 are never handed
 * out dynamically but may be requested (the apiserver requests .1 for `kubernetes`, kubeadm
 * .10 for kube-dns). `taken` holds dotted-quad strings. Throws on a malformed `serviceCidr`
 * (configuration, not input).
 */
export function allocateClusterIp(serviceCidr: string, taken: ReadonlySet<string>, requested?: string): ClusterIpAllocation {
  const cidr = mustParseCidr(serviceCidr);
  const range = formatCidr(cidr);
  const first = nthAddress(cidr, 1);
  const last = broadcastOf(cidr) - 1;

  if (requested !== undefined && requested !== "") {
    const ip = parseIpv4Addr(requested);
    if (ip === undefined) {
      // validation.go ValidateService: IsValidIP.
      return invalid("spec.clusterIPs[0]", requested, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
    }
    const text = formatIpv4(ip);
    const field = "spec.clusterIPs";
    if (!cidrContains(cidr, ip) || ip < first || ip > last) {
      return invalid(field, [text], `failed to allocate IP ${text}: the provided IP (${text}) is not in the valid range. The range of valid IPs is ${range}`);
    }
    if (taken.has(text)) return invalid(field, [text], `failed to allocate IP ${text}: ${ErrAllocated}`);
    return { kind: "allocated", ip: text };
  }

  const reserved = new Set([nthAddress(cidr, ReservedOffset.KubernetesService), nthAddress(cidr, ReservedOffset.ClusterDns)]);
  for (let ip = first; ip <= last; ip++) {
    if (reserved.has(ip)) continue;
    const text = formatIpv4(ip);
    if (!taken.has(text)) return { kind: "allocated", ip: text };
  }
  return internal("spec.clusterIPs", `failed to allocate a serviceIP: ${ErrFull}`);
}

/**
 * A NodePort from `range` for spec.ports[portIndex]. `requested` 0 or undefined means "any".
 */
export function allocateNodePort(
  taken: ReadonlySet<number>,
  requested?: number,
  portIndex = 0,
  range: PortRange = DEFAULT_NODE_PORT_RANGE,
): NodePortAllocation {
  const field = `spec.ports[${portIndex}].nodePort`;
  const lastPort = range.base + range.size - 1;
  if (requested !== undefined && requested !== 0) {
    if (!Number.isInteger(requested) || requested < 1 || requested > 65535) {
      // validation.go: IsValidPortNum.
      return invalid(field, requested, "must be between 1 and 65535, inclusive");
    }
    if (requested < range.base || requested > lastPort) {
      return invalid(field, requested, `provided port is not in the valid range. The range of valid ports is ${range.base}-${lastPort}`);
    }
    if (taken.has(requested)) return invalid(field, requested, ErrPortAllocated);
    return { kind: "allocated", port: requested };
  }
  for (let port = range.base; port <= lastPort; port++) {
    if (!taken.has(port)) return { kind: "allocated", port };
  }
  return internal(field, `failed to allocate a nodePort: ${ErrFull}`);
}

// ---------------------------------------------------------------------------------------------
// A Service's node ports: spec.ports[].nodePort and spec.healthCheckNodePort
// (pkg/registry/core/service/storage/alloc.go txnAllocNodePorts, txnUpdateNodePorts,
// allocHealthCheckNodePort, updateHealthCheckNodePort). Both come from one port allocator, so a
// number is either a Service's nodePort or a health check port, never both.

export interface ServicePortLike {
  port: number;
  protocol?: string;
  nodePort?: number;
}

export interface ServiceSpecLike {
  type?: string;
  externalTrafficPolicy?: string;
  healthCheckNodePort?: number;
  allocateLoadBalancerNodePorts?: boolean;
  ports?: ServicePortLike[];
}

/** apiservice.NeedsHealthCheck: a LoadBalancer that keeps the client's address (externalTrafficPolicy Local). */
export function needsHealthCheck(spec: ServiceSpecLike | undefined): boolean {
  return spec?.type === "LoadBalancer" && spec.externalTrafficPolicy === "Local";
}

function wantsNodePorts(spec: ServiceSpecLike | undefined): boolean {
  return spec?.type === "NodePort" || spec?.type === "LoadBalancer";
}

/**
 * alloc.go shouldAllocateNodePorts: NodePort always; LoadBalancer unless
 * allocateLoadBalancerNodePorts is false (then only the nodePorts a user asked for are kept).
 */
function allocatesNodePorts(spec: ServiceSpecLike): boolean {
  return spec.type === "NodePort" || (spec.type === "LoadBalancer" && spec.allocateLoadBalancerNodePorts !== false);
}

const positive = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n > 0;

/** Every node port the given Services hold: their nodePorts and their healthCheckNodePorts. */
export function nodePortsInUse(specs: Iterable<ServiceSpecLike | undefined>): Set<number> {
  const used = new Set<number>();
  for (const spec of specs) {
    for (const p of spec?.ports ?? []) if (positive(p?.nodePort)) used.add(p.nodePort);
    if (positive(spec?.healthCheckNodePort)) used.add(spec.healthCheckNodePort);
  }
  return used;
}

/**
 * allocHealthCheckNodePort: the requested port when it is free and in range, else the lowest
 * free one. kube-apiserver wraps a refused request in a 500 (NewInternalError("failed to allocate
 * requested HealthCheck NodePort N: provided port is already allocated")); here the same words
 * come as a 422 Invalid naming spec.healthCheckNodePort, the field the client has to change, as
 * a refused spec.ports[].nodePort does. A full range stays a 500, with kube-apiserver's text
 * (its "0" is the port AllocateNext returned with the error).
 */
export function allocateHealthCheckNodePort(taken: ReadonlySet<number>, requested?: number, range: PortRange = DEFAULT_NODE_PORT_RANGE): NodePortAllocation {
  const field = "spec.healthCheckNodePort";
  const lastPort = range.base + range.size - 1;
  if (requested !== undefined && requested !== 0) {
    const fail = (detail: string) => invalid(field, requested, `failed to allocate requested HealthCheck NodePort ${requested}: ${detail}`);
    if (!Number.isInteger(requested) || requested < 1 || requested > 65535) return invalid(field, requested, "must be between 1 and 65535, inclusive");
    if (requested < range.base || requested > lastPort) return fail(`provided port is not in the valid range. The range of valid ports is ${range.base}-${lastPort}`);
    if (taken.has(requested)) return fail(ErrPortAllocated);
    return { kind: "allocated", port: requested };
  }
  for (let port = range.base; port <= lastPort; port++) {
    if (!taken.has(port)) return { kind: "allocated", port };
  }
  return internal(field, `failed to allocate a HealthCheck NodePort 0: ${ErrFull}`);
}

export type ServiceNodePortsAllocation =
  | {
      kind: "allocated";
      /** spec.ports[i].nodePort after allocation; undefined where the port has none. */
      nodePorts: Array<number | undefined>;
      /** spec.healthCheckNodePort; undefined when the Service needs none (it is released). */
      healthCheckNodePort: number | undefined;
    }
  | AllocationError;

/**
 * The node ports of a Service being created (`old` undefined) or updated, given the ports every
 * other Service holds (`taken`, nodePortsInUse of the others).
 *
 * - A port keeps the nodePort it had (matched by port/protocol) unless the request names
 *   another; a nodePort of 0 or none means "keep, else allocate" (patchAllocatedValues).
 * - healthCheckNodePort: allocated (or the requested one reserved) when the Service comes to
 *   need a health check, kept while it needs one, and dropped, so released, when it stops
 *   (type no longer LoadBalancer or policy no longer Local: updateHealthCheckNodePort cases 1-2).
 * - Numbers the request names are reserved before any is picked dynamically, so a dynamic
 *   nodePort never takes the number a later port or the health check asked for (what the
 *   static/dynamic split of the range, KEP-3668, achieves in kube-apiserver).
 * - One Service may use a number for a TCP and a UDP port alike (updateNodePorts' portAllocated);
 *   validation refuses it twice for one protocol.
 */
export function allocateServiceNodePorts(
  spec: ServiceSpecLike,
  old: ServiceSpecLike | undefined,
  taken: ReadonlySet<number>,
  range: PortRange = DEFAULT_NODE_PORT_RANGE,
): ServiceNodePortsAllocation {
  const ports = spec.ports ?? [];
  const nodePorts: Array<number | undefined> = ports.map(() => undefined);
  const needsHc = needsHealthCheck(spec);
  if (!wantsNodePorts(spec)) {
    // ClusterIP and ExternalName Services hold no node ports: any they had are released.
    return { kind: "allocated", nodePorts, healthCheckNodePort: undefined };
  }
  const mine = new Set<number>();
  const inUse = (): Set<number> => new Set([...taken, ...mine]);
  const key = (p: ServicePortLike) => `${p.port}/${p.protocol ?? "TCP"}`;
  // A number the request names for one of its ports is not patched into another
  // (patchAllocatedValues: old nodePorts minus those the new spec uses).
  const asked = new Set(ports.map((p) => p.nodePort).filter(positive));
  const kept = new Map<string, number>();
  if (wantsNodePorts(old)) for (const p of old?.ports ?? []) if (positive(p.nodePort) && !asked.has(p.nodePort)) kept.set(key(p), p.nodePort);

  // 1. The numbers asked for (or kept), in port order.
  for (const [i, p] of ports.entries()) {
    if (p.nodePort !== undefined && p.nodePort !== 0 && !positive(p.nodePort)) {
      // Not a port number: the allocator's own message (validation normally refuses it first).
      const res = allocateNodePort(inUse(), p.nodePort, i, range);
      if (res.kind === "error") return res;
    }
    const had = kept.get(key(p));
    const want = positive(p.nodePort) ? p.nodePort : had;
    if (want === undefined) continue;
    if (want !== had && !mine.has(want)) {
      const res = allocateNodePort(taken, want, i, range);
      if (res.kind === "error") return res;
    }
    nodePorts[i] = want;
    mine.add(want);
  }

  // 2. The health check port asked for, or kept while the Service still needs one.
  let healthCheckNodePort: number | undefined;
  if (needsHc) {
    const had = needsHealthCheck(old) && positive(old?.healthCheckNodePort) ? old!.healthCheckNodePort : undefined;
    const requested = spec.healthCheckNodePort !== undefined && spec.healthCheckNodePort !== 0 ? spec.healthCheckNodePort : undefined;
    if (requested !== undefined) {
      if (requested !== had || mine.has(requested)) {
        const res = allocateHealthCheckNodePort(inUse(), requested, range);
        if (res.kind === "error") return res;
      }
      healthCheckNodePort = requested;
    } else if (had !== undefined && !mine.has(had)) {
      healthCheckNodePort = had;
    }
    if (healthCheckNodePort !== undefined) mine.add(healthCheckNodePort);
  }

  // 3. Dynamic nodePorts, then a dynamic health check port.
  if (allocatesNodePorts(spec)) {
    for (let i = 0; i < ports.length; i++) {
      if (nodePorts[i] !== undefined) continue;
      const res = allocateNodePort(inUse(), undefined, i, range);
      if (res.kind === "error") return res;
      nodePorts[i] = res.port;
      mine.add(res.port);
    }
  }
  if (needsHc && healthCheckNodePort === undefined) {
    const res = allocateHealthCheckNodePort(inUse(), undefined, range);
    if (res.kind === "error") return res;
    healthCheckNodePort = res.port;
  }
  return { kind: "allocated", nodePorts, healthCheckNodePort };
}
