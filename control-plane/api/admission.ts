/**
 * Admission: what the API server does to an object of a given kind on its way into the store,
 * beyond defaulting and validation. Services get their ClusterIP, NodePorts and
 * healthCheckNodePort here (the allocation is serialized by the registry and computed from every
 * stored Service, so nothing is handed out twice, across restarts too); new pods start Pending
 * with the DefaultTolerationSeconds plugin's tolerations; namespaces Active.
 */
import { allocateClusterIp, allocateServiceNodePorts, nodePortsInUse, type ServiceSpecLike } from "../controllers/logic/allocators.ts";
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
interface ServiceSpec extends ServiceSpecLike {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ports?: ServicePort[];
  healthCheckNodePort?: number;
}

export interface AdmissionOptions {
  /**
   * tolerationSeconds of the not-ready and unreachable NoExecute tolerations the
   * DefaultTolerationSeconds plugin adds (kube-apiserver --default-not-ready-toleration-seconds
   * and --default-unreachable-toleration-seconds, 300 by default).
   */
  defaultTolerationSeconds?: number;
}

export function createAdmission(serviceCidr: string, opts: AdmissionOptions = {}): Admission {
  const tolerationSeconds = opts.defaultTolerationSeconds ?? 300;
  return async (r: ResourceInfo, obj: KubeObject, old: KubeObject | undefined, registry: Registry) => {
    // A kind served from a CRD has no admission of its own, whatever its name.
    if (r.custom) return obj;
    switch (r.kind) {
      case "Service":
        return admitService(obj, old, registry, serviceCidr);
      case "Pod":
        if (!old) return { ...defaultTolerations(obj, tolerationSeconds), status: { phase: "Pending", qosClass: "BestEffort" } };
        return obj;
      case "Namespace": {
        // Every namespace carries its name as a label, so namespaceSelectors can pick it (KEP-2161).
        const labels = { ...obj.metadata.labels, "kubernetes.io/metadata.name": obj.metadata.name! };
        return { ...obj, metadata: { ...obj.metadata, labels }, ...(old ? {} : { status: { phase: "Active" } }) };
      }
      case "Secret":
        return admitSecret(obj);
      case "Job":
        return admitJob(obj, old);
      default:
        return obj;
    }
  };
}

const NoExecuteTaintKeys = ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] as const;

/**
 * The DefaultTolerationSeconds admission plugin
 * (plugin/pkg/admission/defaulttolerationseconds/admission.go): a pod that has no toleration of
 * the node.kubernetes.io/not-ready or .../unreachable NoExecute taint (by that key or an empty
 * key, with effect NoExecute or empty) gets `{key, operator: Exists, effect: NoExecute,
 * tolerationSeconds}` for it, so the taint eviction controller deletes it that long after its
 * node went bad. Kubernetes runs it on updates too; here only on create, as the registry does
 * not take toleration additions on a pod update.
 */
export function defaultTolerations(pod: KubeObject, tolerationSeconds: number): KubeObject {
  const spec = (pod.spec ?? {}) as { tolerations?: unknown };
  const existing = Array.isArray(spec.tolerations) ? (spec.tolerations as Array<{ key?: unknown; effect?: unknown } | null>) : [];
  const tolerates = (key: string) =>
    existing.some((t) => !!t && typeof t === "object" && (t.key === key || !t.key) && (t.effect === "NoExecute" || !t.effect));
  const added = NoExecuteTaintKeys.filter((k) => !tolerates(k)).map((key) => ({ key, operator: "Exists", effect: "NoExecute", tolerationSeconds }));
  if (added.length === 0) return pod;
  return { ...pod, spec: { ...spec, tolerations: [...existing, ...added] } };
}

/**
 * The Job strategy (pkg/registry/batch/job/strategy.go PrepareForCreate, generateSelector) and
 * its defaults (pkg/apis/batch/v1/defaults.go): unless spec.manualSelector, the selector is the
 * Job's uid and the template carries the uid and job-name labels (what `kubectl logs job/NAME`
 * and the Job controller select pods by). On update the stored selector stays.
 */
export function admitJob(obj: KubeObject, old: KubeObject | undefined): KubeObject {
  const spec = { ...((obj.spec ?? {}) as Record<string, any>) };
  if (old) {
    const oldSpec = (old.spec ?? {}) as Record<string, unknown>;
    if (oldSpec.selector !== undefined) spec.selector = oldSpec.selector;
    return { ...obj, spec };
  }
  if (spec.completions === undefined && spec.parallelism === undefined) {
    spec.completions = 1;
    spec.parallelism = 1;
  }
  spec.parallelism ??= 1;
  spec.backoffLimit ??= 6;
  spec.completionMode ??= "NonIndexed";
  spec.suspend ??= false;
  spec.podReplacementPolicy ??= "TerminatingOrFailed";
  const uid = obj.metadata.uid!;
  const name = obj.metadata.name!;
  if (!spec.manualSelector) {
    const labels = { "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name, "controller-uid": uid, "job-name": name };
    const template = { ...(spec.template ?? {}) };
    template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), ...labels } };
    spec.template = template;
    spec.selector = { matchLabels: { "batch.kubernetes.io/controller-uid": uid } };
  }
  return { ...obj, spec };
}

/**
 * Go's base64.StdEncoding.DecodeString as the JSON decoder runs it on a []byte field (CR and LF
 * skipped): undefined when `s` decodes, else the byte offset of the first illegal input, as
 * base64.CorruptInputError reports it.
 */
export function base64Error(s: string): number | undefined {
  // Positions in `s` of the significant characters (CR and LF are skipped by the decoder).
  const at: number[] = [];
  for (let i = 0; i < s.length; i++) if (s[i] !== "\r" && s[i] !== "\n") at.push(i);
  const chars = at.map((i) => s[i]!);
  for (let q = 0; q < chars.length; q += 4) {
    const quantum = chars.slice(q, q + 4);
    for (let j = 0; j < quantum.length; j++) {
      const c = quantum[j]!;
      if (c === "=") {
        // Padding only in the last quantum, in its last one or two places, and "x=y=" is wrong.
        const last = q + 4 === chars.length;
        if (!last || j < 2 || (j === 2 && quantum[3] !== "=")) return at[q + j]!;
        break;
      }
      if (!/[A-Za-z0-9+/]/.test(c)) return at[q + j]!;
    }
    // An incomplete last quantum: the padded encoding wants all four.
    if (quantum.length < 4) return at[q]!;
  }
  return undefined;
}

/**
 * The Secret strategy (pkg/registry/core/secret/strategy.go) and its decoding: every `data`
 * value must be base64 (else the decoder's 400), `stringData` is merged into `data` (its keys
 * win) and dropped, and `type` defaults to Opaque.
 */
export function admitSecret(obj: KubeObject): KubeObject {
  const data: Record<string, unknown> = { ...((obj.data ?? {}) as Record<string, unknown>) };
  for (const [key, value] of Object.entries(data)) {
    const at = typeof value === "string" ? base64Error(value) : undefined;
    if (at !== undefined) throw Errors.badRequest(`Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte ${at}`);
  }
  const stringData = obj.stringData as Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(stringData ?? {})) data[key] = Buffer.from(String(value), "utf8").toString("base64");
  const out: KubeObject = { ...obj, type: (obj.type as string | undefined) || "Opaque" };
  delete out.stringData;
  if (Object.keys(data).length > 0 || obj.data !== undefined) out.data = data;
  return out;
}

async function admitService(obj: KubeObject, old: KubeObject | undefined, registry: Registry, serviceCidr: string): Promise<KubeObject> {
  const spec = structuredClone((obj.spec ?? {}) as ServiceSpec);
  const oldSpec = (old?.spec ?? {}) as ServiceSpec;
  const name = obj.metadata.name ?? "";
  const others = (await registry.servicesForAllocation()).filter((s) => s.metadata.uid !== obj.metadata.uid);
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

  // Node ports and the health check port come from one range: what any other Service holds of
  // either is taken (alloc.go: one portallocator serves initNodePorts and allocHealthCheckNodePort).
  const takenPorts = nodePortsInUse(others.map((s) => s.spec as ServiceSpec | undefined));
  const ports = allocateServiceNodePorts(spec, old ? oldSpec : undefined, takenPorts);
  if (ports.kind === "error") throw ports.reason === "InternalError" ? Errors.internal(ports.message) : invalid(ports.field, ports.message);
  for (const [i, p] of (spec.ports ?? []).entries()) {
    const nodePort = ports.nodePorts[i];
    if (nodePort === undefined) delete p.nodePort;
    else p.nodePort = nodePort;
  }
  if (ports.healthCheckNodePort === undefined) delete spec.healthCheckNodePort;
  else spec.healthCheckNodePort = ports.healthCheckNodePort;
  return { ...obj, spec };
}
