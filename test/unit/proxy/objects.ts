/** Service and EndpointSlice objects as the API stores them, for kube-proxy tests. */
import type { EndpointSliceLike, ServiceLike } from "../../../node-agent/proxy/model.ts";

/** A Service NAME in namespace "default" (or NAMESPACE) with ClusterIP 10.96.0.10 and port http 80 -> 8080 unless `spec` says otherwise. */
export function service(name: string, spec: Record<string, unknown>, status: Record<string, unknown> = {}, namespace = "default"): ServiceLike {
  return { metadata: { namespace, name }, spec: { clusterIP: "10.96.0.10", ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 8080 }], ...spec }, status };
}

/** One endpoint: node-1 and ready unless said otherwise. */
export type Ep = { ip: string; node?: string; ready?: boolean; serving?: boolean; terminating?: boolean };
/** An IPv4 EndpointSlice NAME of Service SVC, in namespace "default" (or NAMESPACE), with port http 8080 unless `ports` says otherwise. */
export function slice(svc: string, name: string, eps: Ep[], ports = [{ name: "http", port: 8080, protocol: "TCP" }], namespace = "default"): EndpointSliceLike {
  return {
    metadata: { namespace, name, labels: { "kubernetes.io/service-name": svc } },
    addressType: "IPv4",
    ports,
    endpoints: eps.map((e) => ({
      addresses: [e.ip],
      nodeName: e.node ?? "node-1",
      conditions: { ...(e.ready !== undefined ? { ready: e.ready } : {}), ...(e.serving !== undefined ? { serving: e.serving } : {}), ...(e.terminating !== undefined ? { terminating: e.terminating } : {}) },
    })),
  };
}

