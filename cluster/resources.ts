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
];

export function groupVersion(r: Pick<ResourceInfo, "group" | "version">): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

export function findResource(group: string, version: string, plural: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
}

export function resourceForKind(apiVersion: string, kind: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => groupVersion(r) === apiVersion && r.kind === kind);
}

export function resourceByKind(kind: string): ResourceInfo {
  const r = RESOURCES.find((x) => x.kind === kind);
  if (!r) throw new RangeError(`no resource for kind ${kind}`);
  return r;
}

/** The group/versions served, in discovery order. */
export function groupVersions(): Array<{ group: string; version: string }> {
  const seen = new Map<string, { group: string; version: string }>();
  for (const r of RESOURCES) seen.set(groupVersion(r), { group: r.group, version: r.version });
  return [...seen.values()];
}

/**
 * JetStream KV key of an object: "<resource>.<namespace or _>.<name>". The resource token is the
 * plural plus the group with dots turned to underscores, since KV keys are NATS subjects and a
 * dot separates tokens ("networkpolicies_networking_k8s_io").
 */
export function resourceToken(r: ResourceInfo): string {
  return r.group ? `${r.plural}_${r.group.replaceAll(".", "_")}` : r.plural;
}

export function objectKey(r: ResourceInfo, namespace: string | undefined, name: string): string {
  return `${resourceToken(r)}.${r.namespaced ? namespace : "_"}.${name}`;
}

/** The key filter for a list or watch: one namespace, or all of them. */
export function keyFilter(r: ResourceInfo, namespace: string | undefined): string {
  return `${resourceToken(r)}.${r.namespaced && namespace ? namespace : "*"}.>`;
}
