/**
 * kube-apiserver's "master" controller (pkg/controlplane/controller/kubernetesservice): the
 * `kubernetes` Service in `default`, ClusterIP the first address of the service CIDR, port 443
 * (https) to the API server's port, and its Endpoints and EndpointSlice pointing at the API
 * server's advertised address. Written at startup, and rewritten when they drifted.
 */
import { networkInterfaces } from "node:os";
import { mustParseCidr, nthAddress } from "../cluster/addressing.ts";
import { resourceByKind } from "../cluster/resources.ts";
import type { KubeObject } from "../cluster/store.ts";
import { formatIpv4 } from "../overlay/wire/common.ts";
import { deepEqual } from "../cluster/meta.ts";
import { ApiError } from "./api/status.ts";
import type { Registry } from "./api/registry.ts";

export const KUBERNETES_SERVICE = "kubernetes";
const NAMESPACE = "default";

/** The first address of the service CIDR (10.96.0.1 for 10.96.0.0/12). */
export function kubernetesServiceIp(serviceCidr: string): string {
  return formatIpv4(nthAddress(mustParseCidr(serviceCidr), 1));
}

/**
 * The address kube-apiserver would advertise: the bind address when it is a specific,
 * non-loopback IPv4 address, else the host's first non-internal IPv4 address (as
 * --advertise-address defaults); undefined when the host has none.
 */
export function advertiseAddress(bindHost: string, interfaces = networkInterfaces()): string | undefined {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bindHost) && bindHost !== "0.0.0.0" && !bindHost.startsWith("127.")) return bindHost;
  for (const addrs of Object.values(interfaces)) {
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

/** The three objects, as the master controller writes them. */
export function kubernetesServiceObjects(serviceCidr: string, apiPort: number, address: string | undefined): { service: KubeObject; endpoints: KubeObject; slice: KubeObject } {
  const labels = { component: "apiserver", provider: "kubernetes" };
  const service: KubeObject = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: KUBERNETES_SERVICE, namespace: NAMESPACE, labels },
    spec: {
      type: "ClusterIP",
      clusterIP: kubernetesServiceIp(serviceCidr),
      sessionAffinity: "None",
      ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: apiPort }],
    },
  };
  const endpoints: KubeObject = {
    apiVersion: "v1",
    kind: "Endpoints",
    // kube-apiserver labels these skip-mirror; here that label marks the Endpoints the endpoints
    // controller wrote (and deletes for a selector-less Service), so it is left off.
    metadata: { name: KUBERNETES_SERVICE, namespace: NAMESPACE },
    ...(address ? { subsets: [{ addresses: [{ ip: address }], ports: [{ name: "https", port: apiPort, protocol: "TCP" }] }] } : {}),
  };
  const slice: KubeObject = {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: KUBERNETES_SERVICE, namespace: NAMESPACE, labels: { "kubernetes.io/service-name": KUBERNETES_SERVICE } },
    addressType: "IPv4",
    endpoints: address ? [{ addresses: [address], conditions: { ready: true } }] : [],
    ports: [{ name: "https", port: apiPort, protocol: "TCP" }],
  };
  return { service, endpoints, slice };
}

/** Creates the objects, or brings the parts the controller owns back to what they should be. */
export async function reconcileKubernetesService(registry: Registry, serviceCidr: string, apiPort: number, address: string | undefined): Promise<void> {
  const want = kubernetesServiceObjects(serviceCidr, apiPort, address);
  const ensure = async (
    kind: string,
    desired: KubeObject,
    owned: (o: KubeObject) => Partial<KubeObject>,
    fix?: (current: KubeObject, desired: KubeObject) => Partial<KubeObject>,
  ): Promise<void> => {
    const r = resourceByKind(kind);
    const current = await registry.get(r, NAMESPACE, KUBERNETES_SERVICE).catch((err: unknown) => {
      if (err instanceof ApiError && err.status.code === 404) return undefined;
      throw err;
    });
    if (!current) {
      await registry.create(r, NAMESPACE, desired).catch((err: unknown) => {
        if (!(err instanceof ApiError && err.status.code === 409)) throw err;
      });
      return;
    }
    const parts = fix ? fix(current, desired) : owned(desired);
    const stale = Object.entries(parts).some(([k, v]) => !deepEqual((current as Record<string, unknown>)[k], v));
    if (stale) await registry.update(r, NAMESPACE, KUBERNETES_SERVICE, { ...current, ...parts });
  };
  // Only the ports are the controller's to fix: the ClusterIP is immutable once allocated.
  await ensure("Service", want.service, (d) => ({ spec: { ...((d.spec ?? {}) as object) } }) as Partial<KubeObject>, (current, d) => {
    const spec = (current.spec ?? {}) as Record<string, unknown>;
    const ports = (d.spec as Record<string, unknown>).ports;
    return deepEqual(spec.ports, ports) ? {} : ({ spec: { ...spec, ports } } as Partial<KubeObject>);
  });
  await ensure("Endpoints", want.endpoints, (d) => ({ subsets: d.subsets }) as Partial<KubeObject>);
  await ensure("EndpointSlice", want.slice, (d) => ({ endpoints: d.endpoints, ports: d.ports, addressType: d.addressType }) as Partial<KubeObject>);
}
