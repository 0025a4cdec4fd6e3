/**
 * Admission: what the API server does to an object of a given kind on its way into the store,
 * beyond defaulting and validation. Services get their ClusterIP and NodePorts here (the
 * allocation is serialized by the registry and computed from every stored Service, so nothing
 * is handed out twice, across restarts too); new pods start Pending; namespaces Active.
 */
import { allocateClusterIp, allocateNodePort } from "../controllers/logic/allocators.ts";
import type { Admission, Registry } from "./registry.ts";
import { resourceByKind, type ResourceInfo } from "../../cluster/resources.ts";
import { Errors } from "./status.ts";
import type { KubeObject } from "../../cluster/store.ts";

interface ServicePort {
  name?: string;
  port: number;
  nodePort?: number;
  protocol?: string;
}
interface ServiceSpec {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ports?: ServicePort[];
}

export function createAdmission(serviceCidr: string): Admission {
  return async (r: ResourceInfo, obj: KubeObject, old: KubeObject | undefined, registry: Registry) => {
    switch (r.kind) {
      case "Service":
        return admitService(obj, old, registry, serviceCidr);
      case "Pod":
        if (!old) return { ...obj, status: { phase: "Pending", qosClass: "BestEffort" } };
        return obj;
      case "Namespace": {
        // Every namespace carries its name as a label, so namespaceSelectors can pick it (KEP-2161).
        const labels = { ...obj.metadata.labels, "kubernetes.io/metadata.name": obj.metadata.name! };
        return { ...obj, metadata: { ...obj.metadata, labels }, ...(old ? {} : { status: { phase: "Active" } }) };
      }
      default:
        return obj;
    }
  };
}

async function admitService(obj: KubeObject, old: KubeObject | undefined, registry: Registry, serviceCidr: string): Promise<KubeObject> {
  const spec = structuredClone((obj.spec ?? {}) as ServiceSpec);
  const oldSpec = (old?.spec ?? {}) as ServiceSpec;
  const name = obj.metadata.name ?? "";
  const others = (await registry.list(resourceByKind("Service"), undefined)).items.filter((s) => s.metadata.uid !== obj.metadata.uid);
  const invalid = (field: string, message: string) =>
    Errors.invalid("Service", "", name, [{ reason: "FieldValueInvalid", field, message }], `Service "${name}" is invalid: ${field}: ${message}`);

  if (spec.type === "ExternalName") {
    delete spec.clusterIP;
    delete spec.clusterIPs;
  } else if (spec.clusterIP !== "None") {
    const keep = oldSpec.clusterIP && oldSpec.clusterIP !== "None" ? oldSpec.clusterIP : undefined;
    if (keep) {
      spec.clusterIP = keep;
    } else {
      const taken = new Set(others.map((s) => (s.spec as ServiceSpec)?.clusterIP).filter((ip): ip is string => !!ip && ip !== "None"));
      const res = allocateClusterIp(serviceCidr, taken, spec.clusterIP || undefined);
      if (res.kind === "error") throw res.reason === "InternalError" ? Errors.internal(res.message) : invalid(res.field, res.message);
      spec.clusterIP = res.ip;
    }
    spec.clusterIPs = [spec.clusterIP!];
  } else {
    spec.clusterIPs = ["None"];
  }

  const wantsNodePorts = spec.type === "NodePort" || spec.type === "LoadBalancer";
  const takenPorts = new Set<number>();
  for (const s of others) for (const p of ((s.spec as ServiceSpec)?.ports ?? [])) if (p.nodePort) takenPorts.add(p.nodePort);
  const oldPorts = new Map((oldSpec.ports ?? []).filter((p) => p.nodePort).map((p) => [`${p.port}/${p.protocol ?? "TCP"}`, p.nodePort!]));
  for (const [i, p] of (spec.ports ?? []).entries()) {
    if (!wantsNodePorts) {
      delete p.nodePort;
      continue;
    }
    const kept = oldPorts.get(`${p.port}/${p.protocol ?? "TCP"}`);
    const requested = p.nodePort ?? kept;
    if (requested !== undefined && requested === kept) {
      p.nodePort = kept;
      takenPorts.add(kept);
      continue;
    }
    const res = allocateNodePort(takenPorts, requested, i);
    if (res.kind === "error") throw res.reason === "InternalError" ? Errors.internal(res.message) : invalid(res.field, res.message);
    p.nodePort = res.port;
    takenPorts.add(res.port);
  }
  return { ...obj, spec };
}
