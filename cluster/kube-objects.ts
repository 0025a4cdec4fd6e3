/**
 * How kubewire's network identities map onto Kubernetes objects, shared by the control plane
 * (which writes them) and the node-agents (which read them). A node's VTEP is published the
 * way flannel publishes it: annotations flannel.alpha.coreos.com/backend-data ({"VtepMAC"}),
 * backend-type and public-ip.
 */
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

/** The network identity of a Node object, or undefined while it lacks one. */
export function nodeRecordFrom(node: ObjectLike): NodeRecord | undefined {
  const spec = node.spec as { podCIDR?: string } | undefined;
  const status = node.status as { addresses?: Array<{ type: string; address: string }> } | undefined;
  const annotations = node.metadata?.annotations ?? {};
  const internalIp = status?.addresses?.find((a) => a.type === "InternalIP")?.address ?? annotations[Annotations.publicIp];
  let vtepMac: string | undefined;
  try {
    vtepMac = (JSON.parse(annotations[Annotations.backendData] ?? "{}") as { VtepMAC?: string }).VtepMAC;
  } catch {
    vtepMac = undefined;
  }
  if (!node.metadata?.name || !spec?.podCIDR || !internalIp || !vtepMac) return undefined;
  return { name: node.metadata.name, podCidr: spec.podCIDR, internalIp, vtepMac, hostAddress: annotations[Annotations.hostAddress] ?? "" };
}

export function nodeIsReady(node: ObjectLike): boolean {
  const conditions = (node.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? [];
  return conditions.some((c) => c.type === "Ready" && c.status === "True");
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
