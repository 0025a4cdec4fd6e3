/**
 * How kubewire's network identities map onto Kubernetes objects, shared by the control plane
 * (which writes them) and the node-agents (which read them). A node's VTEP is published the
 * way flannel publishes it: annotations flannel.alpha.coreos.com/backend-data ({"VtepMAC"}),
 * backend-type and public-ip.
 */
import { parseCidr } from "./addressing.ts";
import { parseIpv4Addr, parseMac } from "../overlay/wire/common.ts";
import type { ContainerPort, ContainerRecord, NodeRecord, PodRecord } from "./types.ts";

export const Annotations = {
  backendData: "flannel.alpha.coreos.com/backend-data",
  backendType: "flannel.alpha.coreos.com/backend-type",
  publicIp: "flannel.alpha.coreos.com/public-ip",
  hostAddress: "kubewire.io/host-address",
} as const;

export const KUBELET_VERSION = "v1.30.0-kubewire";

interface ObjectLike {
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string>; deletionTimestamp?: string; uid?: string };
  spec?: unknown;
  status?: unknown;
}

export function nodeObject(record: NodeRecord, vni: number): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: record.name,
      labels: { "kubernetes.io/hostname": record.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" },
      annotations: {
        [Annotations.backendType]: "vxlan",
        [Annotations.backendData]: JSON.stringify({ VNI: vni, VtepMAC: record.vtepMac }),
        [Annotations.publicIp]: record.internalIp,
        [Annotations.hostAddress]: record.hostAddress,
      },
    },
    spec: { podCIDR: record.podCidr, podCIDRs: [record.podCidr] },
  };
}

/**
 * The network identity of a Node object, or undefined while it lacks one. The stored object is
 * not trusted: a field of the wrong type or an unparsable CIDR, IP or MAC means no identity,
 * never a throw (a node-agent plumbs routes from what this returns).
 */
export function nodeRecordFrom(node: ObjectLike): NodeRecord | undefined {
  if (!isObject(node)) return undefined;
  const metadata = isObject(node.metadata) ? node.metadata : {};
  const spec = (isObject(node.spec) ? node.spec : {}) as { podCIDR?: unknown };
  const status = (isObject(node.status) ? node.status : {}) as { addresses?: unknown };
  const annotations: Record<string, unknown> = isObject(metadata.annotations) ? metadata.annotations : {};
  const addresses = (Array.isArray(status.addresses) ? status.addresses : []).filter(isObject);
  const fromStatus = addresses.find((a) => a.type === "InternalIP")?.address;
  const internalIp = typeof fromStatus === "string" ? fromStatus : annotations[Annotations.publicIp];
  let vtepMac: unknown;
  try {
    const data = annotations[Annotations.backendData];
    const parsed: unknown = typeof data === "string" ? JSON.parse(data) : undefined;
    vtepMac = isObject(parsed) ? parsed.VtepMAC : undefined;
  } catch {
    vtepMac = undefined;
  }
  const name = metadata.name;
  const podCidr = spec.podCIDR;
  if (typeof name !== "string" || !name || typeof podCidr !== "string" || !parseCidr(podCidr)) return undefined;
  if (typeof internalIp !== "string" || parseIpv4Addr(internalIp) === undefined) return undefined;
  if (typeof vtepMac !== "string" || parseMac(vtepMac) === undefined) return undefined;
  const hostAddress = annotations[Annotations.hostAddress];
  return { name, podCidr, internalIp, vtepMac, hostAddress: typeof hostAddress === "string" ? hostAddress : "" };
}

export function nodeIsReady(node: ObjectLike): boolean {
  const conditions = (node.status as { conditions?: unknown } | undefined)?.conditions;
  return Array.isArray(conditions) && conditions.some((c) => isObject(c) && c.type === "Ready" && c.status === "True");
}

/**
 * What a node-agent plumbs for a Pod object bound to it; podIp "" until one is assigned. The
 * stored object is not trusted: fields of the wrong type are ignored, never thrown on.
 */
export function podRecordFrom(pod: ObjectLike): PodRecord {
  const spec = (isObject(pod.spec) ? pod.spec : {}) as { nodeName?: unknown; containers?: unknown };
  const status = (isObject(pod.status) ? pod.status : {}) as { podIP?: unknown };
  const containers: ContainerRecord[] = (Array.isArray(spec.containers) ? spec.containers : []).filter(isObject).map((c, i) => ({
    name: typeof c.name === "string" ? c.name : `container-${i}`,
    image: typeof c.image === "string" ? c.image : "",
    command: stringArray(c.command),
    args: stringArray(c.args),
    ports: (Array.isArray(c.ports) ? c.ports : []).filter(isObject).flatMap((p): ContainerPort[] => {
      const port = p.containerPort;
      if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) return [];
      // No SCTP transport is emulated: an SCTP port opens nothing (and never a TCP listener).
      // NetworkPolicy still matches SCTP by protocol number (node-agent/policy reads the spec).
      if (p.protocol === "SCTP") return [];
      return [{ containerPort: port, protocol: p.protocol === "UDP" ? "UDP" : "TCP" }];
    }),
  }));
  return {
    namespace: typeof pod.metadata?.namespace === "string" ? pod.metadata.namespace : "default",
    name: typeof pod.metadata?.name === "string" ? pod.metadata.name : "",
    nodeName: typeof spec.nodeName === "string" ? spec.nodeName : "",
    podIp: typeof status.podIP === "string" ? status.podIP : "",
    ports: containers.flatMap((c) => c.ports),
    containers,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function stringArray(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : undefined;
}
