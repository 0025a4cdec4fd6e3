/**
 * The resources the API server serves, as Kubernetes names them (group, version, plural,
 * kind, short names, scope, verbs). Discovery, routing, storage keys, OpenAPI and kubectl's
 * short names all come from this one table.
 */

export interface ResourceInfo {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly singular: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly categories?: readonly string[];
  /** Subresources served, e.g. "status", "exec", "log". */
  readonly subresources: readonly string[];
  /**
   * Where the kind is defined: absent for Kubernetes' own API; "crd" for a kind a SIG project
   * defines with a CustomResourceDefinition and this server serves built in. Its schema is
   * hand-written from that CRD (control-plane/api/crd-schemas.ts) and named, validated and
   * printed as kube-apiserver does for a custom resource.
   */
  readonly source?: "crd";
  /**
   * Set on a kind served from a stored CustomResourceDefinition (control-plane/api/crds.ts):
   * what apiextensions-apiserver's handler serves it from. Also `source: "crd"`.
   */
  readonly custom?: CustomResourceServing;
}

/** A CRD printer column (apiextensions/v1 CustomResourceColumnDefinition). */
export interface PrinterColumn {
  readonly name: string;
  readonly type: string;
  readonly format: string;
  readonly description: string;
  readonly priority: number;
  readonly jsonPath: string;
}

/** One served version of a stored CustomResourceDefinition. */
export interface CustomResourceServing {
  /** The CRD's name (PLURAL.GROUP) and uid. */
  readonly crd: string;
  readonly uid: string;
  /** The version's openAPIV3Schema as served: apiVersion, kind and metadata added, as apiextensions publishes it. */
  readonly schema: Readonly<Record<string, unknown>>;
  /** The schema the instances are validated and pruned with (CEL rules this server cannot evaluate removed). */
  readonly validationSchema: Readonly<Record<string, unknown>>;
  readonly printerColumns: readonly PrinterColumn[];
  readonly listKind: string;
  /** Whether this version is the storage version. */
  readonly storage: boolean;
}

const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"] as const;
export const VERBS = ALL_VERBS;

export const RESOURCES: readonly ResourceInfo[] = [
  { group: "", version: "v1", plural: "namespaces", singular: "namespace", kind: "Namespace", namespaced: false, shortNames: ["ns"], subresources: ["status"] },
  { group: "", version: "v1", plural: "nodes", singular: "node", kind: "Node", namespaced: false, shortNames: ["no"], subresources: ["status"] },
  { group: "", version: "v1", plural: "pods", singular: "pod", kind: "Pod", namespaced: true, shortNames: ["po"], categories: ["all"], subresources: ["status", "exec", "log"] },
  { group: "", version: "v1", plural: "services", singular: "service", kind: "Service", namespaced: true, shortNames: ["svc"], categories: ["all"], subresources: ["status"] },
  { group: "", version: "v1", plural: "events", singular: "event", kind: "Event", namespaced: true, shortNames: ["ev"], subresources: [] },
  { group: "", version: "v1", plural: "endpoints", singular: "endpoints", kind: "Endpoints", namespaced: true, shortNames: ["ep"], subresources: [] },
  { group: "discovery.k8s.io", version: "v1", plural: "endpointslices", singular: "endpointslice", kind: "EndpointSlice", namespaced: true, shortNames: ["epslice"], subresources: [] },
  { group: "apps", version: "v1", plural: "deployments", singular: "deployment", kind: "Deployment", namespaced: true, shortNames: ["deploy"], categories: ["all"], subresources: ["status", "scale"] },
  { group: "apps", version: "v1", plural: "replicasets", singular: "replicaset", kind: "ReplicaSet", namespaced: true, shortNames: ["rs"], categories: ["all"], subresources: ["status", "scale"] },
  { group: "networking.k8s.io", version: "v1", plural: "networkpolicies", singular: "networkpolicy", kind: "NetworkPolicy", namespaced: true, shortNames: ["netpol"], subresources: [] },
  { group: "networking.k8s.io", version: "v1", plural: "ingresses", singular: "ingress", kind: "Ingress", namespaced: true, shortNames: ["ing"], subresources: ["status"] },
  { group: "networking.k8s.io", version: "v1", plural: "ingressclasses", singular: "ingressclass", kind: "IngressClass", namespaced: false, shortNames: [], subresources: [] },
  // What application manifests carry besides Deployments and Services: stored, validated
  // (schema and metadata, Secret data), listed and watched; no controller acts on them yet.
  { group: "", version: "v1", plural: "serviceaccounts", singular: "serviceaccount", kind: "ServiceAccount", namespaced: true, shortNames: ["sa"], subresources: [] },
  { group: "", version: "v1", plural: "configmaps", singular: "configmap", kind: "ConfigMap", namespaced: true, shortNames: ["cm"], subresources: [] },
  { group: "", version: "v1", plural: "secrets", singular: "secret", kind: "Secret", namespaced: true, shortNames: [], subresources: [] },
  { group: "", version: "v1", plural: "limitranges", singular: "limitrange", kind: "LimitRange", namespaced: true, shortNames: ["limits"], subresources: [] },
  { group: "", version: "v1", plural: "resourcequotas", singular: "resourcequota", kind: "ResourceQuota", namespaced: true, shortNames: ["quota"], subresources: ["status"] },
  { group: "", version: "v1", plural: "persistentvolumeclaims", singular: "persistentvolumeclaim", kind: "PersistentVolumeClaim", namespaced: true, shortNames: ["pvc"], subresources: ["status"] },
  { group: "apps", version: "v1", plural: "statefulsets", singular: "statefulset", kind: "StatefulSet", namespaced: true, shortNames: ["sts"], categories: ["all"], subresources: ["status", "scale"] },
  { group: "apps", version: "v1", plural: "daemonsets", singular: "daemonset", kind: "DaemonSet", namespaced: true, shortNames: ["ds"], categories: ["all"], subresources: ["status"] },
  { group: "batch", version: "v1", plural: "jobs", singular: "job", kind: "Job", namespaced: true, shortNames: [], categories: ["all"], subresources: ["status"] },
  { group: "batch", version: "v1", plural: "cronjobs", singular: "cronjob", kind: "CronJob", namespaced: true, shortNames: ["cj"], categories: ["all"], subresources: ["status"] },
  { group: "autoscaling", version: "v2", plural: "horizontalpodautoscalers", singular: "horizontalpodautoscaler", kind: "HorizontalPodAutoscaler", namespaced: true, shortNames: ["hpa"], categories: ["all"], subresources: ["status"] },
  { group: "policy", version: "v1", plural: "poddisruptionbudgets", singular: "poddisruptionbudget", kind: "PodDisruptionBudget", namespaced: true, shortNames: ["pdb"], subresources: ["status"] },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings", singular: "clusterrolebinding", kind: "ClusterRoleBinding", namespaced: false, shortNames: [], subresources: [] },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles", singular: "clusterrole", kind: "ClusterRole", namespaced: false, shortNames: [], subresources: [] },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", singular: "rolebinding", kind: "RoleBinding", namespaced: true, shortNames: [], subresources: [] },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", singular: "role", kind: "Role", namespaced: true, shortNames: [], subresources: [] },
  { group: "coordination.k8s.io", version: "v1", plural: "leases", singular: "lease", kind: "Lease", namespaced: true, shortNames: [], subresources: [] },
  { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions", singular: "customresourcedefinition", kind: "CustomResourceDefinition", namespaced: false, shortNames: ["crd", "crds"], categories: ["api-extensions"], subresources: ["status"] },
  { group: "scheduling.k8s.io", version: "v1", plural: "priorityclasses", singular: "priorityclass", kind: "PriorityClass", namespaced: false, shortNames: ["pc"], subresources: [] },
  // The network-policy-api project's cluster-wide policy (kubernetes-sigs/network-policy-api,
  // v1alpha2), served as if its CRD were installed.
  { group: "policy.networking.k8s.io", version: "v1alpha2", plural: "clusternetworkpolicies", singular: "clusternetworkpolicy", kind: "ClusterNetworkPolicy", namespaced: false, shortNames: ["cnp"], subresources: ["status"], source: "crd" },
  // kubewire's network faults (node-agent/faults/), shaped after Chaos Mesh's NetworkChaos and
  // served like a CRD-defined kind.
  { group: "chaos.kubewire.io", version: "v1alpha1", plural: "networkchaos", singular: "networkchaos", kind: "NetworkChaos", namespaced: true, shortNames: ["netchaos"], categories: ["chaos"], subresources: ["status"], source: "crd" },
];

export function groupVersion(r: Pick<ResourceInfo, "group" | "version">): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/**
 * The kinds served from stored CustomResourceDefinitions, installed as a whole by the control
 * plane's CRD controller (control-plane/api/crds.ts) whenever the set of CRDs changes. Empty in
 * every other process.
 */
let customResources: readonly ResourceInfo[] = [];
/** The kinds served from CRDs by "apiVersion/kind": every write looks here first, so it is one map lookup. */
let customByKind = new Map<string, ResourceInfo>();
let served: readonly ResourceInfo[] = RESOURCES;
let generation = 0;

/** Replaces the kinds served from CRDs (none may shadow a built-in group/plural: the caller checks). */
export function setCustomResources(list: readonly ResourceInfo[]): void {
  customResources = list;
  customByKind = new Map(list.map((r) => [`${groupVersion(r)}/${r.kind}`, r]));
  served = list.length === 0 ? RESOURCES : [...RESOURCES, ...list];
  generation++;
}

/** The kind served from a CRD under this apiVersion and kind, if any. */
export function customResourceFor(apiVersion: string, kind: string): ResourceInfo | undefined {
  return customByKind.size === 0 ? undefined : customByKind.get(`${apiVersion}/${kind}`);
}

/** Every kind served now: the built-in table, then the kinds of the CRDs. */
export function servedResources(): readonly ResourceInfo[] {
  return served;
}

/** The kinds served from CRDs now. */
export function customResourceKinds(): readonly ResourceInfo[] {
  return customResources;
}

/** Counts the changes of the served set (what caches of discovery and OpenAPI key on). */
export function servedGeneration(): number {
  return generation;
}

export function findResource(group: string, version: string, plural: string): ResourceInfo | undefined {
  return served.find((r) => r.group === group && r.version === version && r.plural === plural);
}

export function resourceForKind(apiVersion: string, kind: string): ResourceInfo | undefined {
  return served.find((r) => groupVersion(r) === apiVersion && r.kind === kind);
}

/** A built-in kind by name (never one served from a CRD). */
export function resourceByKind(kind: string): ResourceInfo {
  const r = RESOURCES.find((x) => x.kind === kind);
  if (!r) throw new RangeError(`no resource for kind ${kind}`);
  return r;
}

/** The group/versions served, in discovery order. */
export function groupVersions(): Array<{ group: string; version: string }> {
  const seen = new Map<string, { group: string; version: string }>();
  for (const r of served) seen.set(groupVersion(r), { group: r.group, version: r.version });
  return [...seen.values()];
}

/** The groups served with their versions, in discovery order, the preferred version first. */
export function servedGroups(): Array<{ group: string; versions: string[] }> {
  const groups = new Map<string, string[]>();
  for (const r of served) {
    const versions = groups.get(r.group);
    if (!versions) groups.set(r.group, [r.version]);
    else if (!versions.includes(r.version)) versions.push(r.version);
  }
  return [...groups].map(([group, versions]) => ({ group, versions }));
}

/**
 * JetStream KV key of an object: "<resource>.<namespace or _>.<name>". The resource token is the
 * plural plus the group with dots turned to underscores, since KV keys are NATS subjects and a
 * dot separates tokens ("networkpolicies_networking_k8s_io").
 */
export function resourceToken(r: ResourceInfo): string {
  return r.group ? `${r.plural}_${r.group.replaceAll(".", "_")}` : r.plural;
}

/**
 * A name as KV key text. DNS names ([a-z0-9.-]) are kept as they are. Any other name (RBAC
 * names are path segments: "system:controller:x", "a..b") has every character NATS does not
 * allow in a key token, "=" and "." included, written as "=XX" per UTF-8 byte; kept names have
 * no "=", so distinct names stay distinct keys.
 */
export function keyName(name: string): string {
  // Dots separate key tokens, and an empty token is not allowed ("a..b", ".a").
  if (/^[-\w]+(\.[-\w]+)*$/.test(name)) return name;
  let out = "";
  for (const ch of name) {
    if (/^[-\w]$/.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, "utf8")) out += `=${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export function objectKey(r: ResourceInfo, namespace: string | undefined, name: string): string {
  return `${resourceToken(r)}.${r.namespaced ? namespace : "_"}.${keyName(name)}`;
}

/** The key filter for a list or watch: one namespace, or all of them. */
export function keyFilter(r: ResourceInfo, namespace: string | undefined): string {
  return `${resourceToken(r)}.${r.namespaced && namespace ? namespace : "*"}.>`;
}
