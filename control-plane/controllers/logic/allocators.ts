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
