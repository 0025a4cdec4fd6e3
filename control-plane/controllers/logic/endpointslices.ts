/**
 * The EndpointSlice controller (pkg/controller/endpointslice/endpointslice_controller.go
 * syncService, staging/src/k8s.io/endpointslice reconciler.go and utils.go podToEndpoint,
 * getEndpointPorts, findPort). IPv4 only.
 *
 * Endpoints: pods of the Service's namespace matching its selector, not finished, with an IPv4
 * address, on a node that exists (unless publishNotReadyAddresses). Conditions:
 *   serving     = pod Ready (and its node Ready: the node lifecycle controller marks the pods of
 *                 a NotReady node NotReady, this takes the node into account directly)
 *   terminating = deletionTimestamp set
 *   ready       = publishNotReadyAddresses || (serving && !terminating)
 * Ports are resolved per pod, so pods whose named targetPorts resolve differently (or not at
 * all: that port is left out for them) land in different slices, as in Kubernetes. At most 100
 * endpoints per slice; a Service with no endpoints gets one empty placeholder slice.
 *
 * Packing is simpler than Kubernetes' (which keeps endpoints where they are to minimise writes):
 * endpoints are sorted by IP and cut into full slices; existing slice names are reused and a
 * slice whose content does not change is not written.
 */
import type { Node, Pod, Service, ServicePort } from "kubernetes-types/core/v1.js";
import type { Endpoint, EndpointPort, EndpointSlice } from "kubernetes-types/discovery/v1.js";
import type { OwnerReference } from "kubernetes-types/meta/v1.js";
import { parseIpv4Addr } from "../../../overlay/wire/common.ts";
import { canonicalJson, deepEqual } from "../../../cluster/meta.ts";
import { isNodeReady } from "./nodelifecycle.ts";
import { isPodReady } from "./replicaset.ts";

export const EndpointSliceLabel = {
  ServiceName: "kubernetes.io/service-name",
  ManagedBy: "endpointslice.kubernetes.io/managed-by",
  Headless: "service.kubernetes.io/headless",
} as const;

export const ENDPOINTSLICE_CONTROLLER = "endpointslice-controller.k8s.io";
/** --max-endpoints-per-slice default. */
export const MAX_ENDPOINTS_PER_SLICE = 100;
const ZONE_LABEL = "topology.kubernetes.io/zone";

export interface EndpointSliceActions {
  create: EndpointSlice[];
  update: EndpointSlice[];
  delete: EndpointSlice[];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A Service the controller manages: it has a (non-empty) selector and is not ExternalName. */
export function hasSelector(service: Service): boolean {
  return service.spec?.type !== "ExternalName" && Object.keys(service.spec?.selector ?? {}).length > 0;
}

/** podutil.FindPort: a numeric targetPort as is; a name looked up in the containers (and sidecars) with the same protocol. */
export function findPort(pod: Pod, sp: ServicePort): number | undefined {
  const target = sp.targetPort ?? sp.port;
  if (typeof target === "number") return target === 0 ? sp.port : target;
  const protocol = sp.protocol ?? "TCP";
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === "Always")];
  for (const c of containers) {
    for (const p of c.ports ?? []) {
      if (p.name === target && (p.protocol ?? "TCP") === protocol) return p.containerPort;
    }
  }
  return undefined;
}

/** getEndpointPorts: every Service port that resolves for this pod, in the Service's order. */
function endpointPorts(service: Service, pod: Pod): EndpointPort[] {
  const ports: EndpointPort[] = [];
  for (const sp of service.spec?.ports ?? []) {
    const port = findPort(pod, sp);
    if (port === undefined) continue;
    ports.push({ name: sp.name ?? "", protocol: sp.protocol ?? "TCP", port, ...(sp.appProtocol !== undefined ? { appProtocol: sp.appProtocol } : {}) });
  }
  return ports;
}

function podIpv4(pod: Pod): string | undefined {
  const candidates = [...(pod.status?.podIPs ?? []).map((p) => p.ip), pod.status?.podIP];
  for (const ip of candidates) {
    if (ip && parseIpv4Addr(ip) !== undefined) return ip;
  }
  return undefined;
}

function sliceLabels(service: Service): Record<string, string> {
  const reserved = new Set<string>(Object.values(EndpointSliceLabel));
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(service.metadata?.labels ?? {})) if (!reserved.has(k)) labels[k] = v;
  const clusterIP = service.spec?.clusterIP ?? "";
  if (clusterIP === "" || clusterIP === "None") labels[EndpointSliceLabel.Headless] = "";
  labels[EndpointSliceLabel.ServiceName] = service.metadata?.name ?? "";
  labels[EndpointSliceLabel.ManagedBy] = ENDPOINTSLICE_CONTROLLER;
  return labels;
}

function serviceRef(service: Service): OwnerReference {
  return { apiVersion: "v1", kind: "Service", name: service.metadata?.name ?? "", uid: service.metadata?.uid ?? "", controller: true, blockOwnerDeletion: true };
}

/** The endpoint of a pod, or undefined when the pod is not one (utils.go podToEndpoint + ShouldPodBeInEndpoints). */
function podToEndpoint(service: Service, pod: Pod, nodes: ReadonlyMap<string, Node>): Endpoint | undefined {
  if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") return undefined;
  const ip = podIpv4(pod);
  if (ip === undefined) return undefined;
  const publishNotReady = service.spec?.publishNotReadyAddresses ?? false;
  const nodeName = pod.spec?.nodeName;
  const node = nodeName ? nodes.get(nodeName) : undefined;
  // A pod naming a node that does not exist is skipped, unless not-ready addresses are published.
  if (!node && !publishNotReady) return undefined;
  const serving = isPodReady(pod) && (node === undefined || isNodeReady(node));
  const terminating = !!pod.metadata?.deletionTimestamp;
  const ready = publishNotReady || (serving && !terminating);
  const ep: Endpoint = {
    addresses: [ip],
    conditions: { ready, serving, terminating },
    targetRef: { kind: "Pod", namespace: pod.metadata?.namespace ?? "", name: pod.metadata?.name ?? "", uid: pod.metadata?.uid ?? "" },
  };
  // ShouldSetHostname.
  const hostname = pod.spec?.hostname;
  if (hostname && pod.spec?.subdomain === service.metadata?.name && pod.metadata?.namespace === service.metadata?.namespace) ep.hostname = hostname;
  if (nodeName) ep.nodeName = nodeName;
  const zone = node?.metadata?.labels?.[ZONE_LABEL];
  if (zone) ep.zone = zone;
  return ep;
}

function ipOrder(a: Endpoint, b: Endpoint): number {
  const ia = parseIpv4Addr(a.addresses[0] ?? "") ?? 0;
  const ib = parseIpv4Addr(b.addresses[0] ?? "") ?? 0;
  return ia !== ib ? ia - ib : cmp(a.targetRef?.name ?? "", b.targetRef?.name ?? "");
}

function newSlice(service: Service, ports: EndpointPort[], endpoints: Endpoint[]): EndpointSlice {
  const name = service.metadata?.name ?? "";
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      // The API server completes the name (<service>-<5 random>), as for Kubernetes' slices.
      generateName: `${name}-`,
      ...(service.metadata?.namespace !== undefined ? { namespace: service.metadata.namespace } : {}),
      labels: sliceLabels(service),
      ownerReferences: [serviceRef(service)],
    },
    addressType: "IPv4",
    endpoints,
    ports,
  };
}

/**
 * The slices `service` should have, without names (metadata.generateName is set): grouped by
 * resolved ports, each group sorted by IP and cut into slices of at most `maxPerSlice`. None for
 * a Service without selector or of type ExternalName; one empty placeholder when nothing matches.
 */
export function desiredEndpointSlices(service: Service, pods: readonly Pod[], nodes: readonly Node[], maxPerSlice = MAX_ENDPOINTS_PER_SLICE): EndpointSlice[] {
  if (!hasSelector(service)) return [];
  const selector = service.spec?.selector ?? {};
  const namespace = service.metadata?.namespace;
  const byName = new Map(nodes.map((n) => [n.metadata?.name ?? "", n]));
  const groups = new Map<string, { ports: EndpointPort[]; endpoints: Endpoint[] }>();
  for (const pod of pods) {
    if (pod.metadata?.namespace !== namespace) continue;
    const labels = pod.metadata?.labels ?? {};
    if (!Object.entries(selector).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v)) continue;
    const ep = podToEndpoint(service, pod, byName);
    if (!ep) continue;
    const ports = endpointPorts(service, pod);
    const key = canonicalJson([...ports].map(canonicalJson).sort());
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { ports, endpoints: [] }));
    group.endpoints.push(ep);
  }
  if (groups.size === 0) return [newSlice(service, [], [])];
  const slices: EndpointSlice[] = [];
  for (const key of [...groups.keys()].sort(cmp)) {
    const { ports, endpoints } = groups.get(key)!;
    endpoints.sort(ipOrder);
    for (let i = 0; i < endpoints.length; i += maxPerSlice) slices.push(newSlice(service, ports, endpoints.slice(i, i + maxPerSlice)));
  }
  return slices;
}

function endpointsKey(s: EndpointSlice): string {
  return JSON.stringify((s.endpoints ?? []).map(canonicalJson).sort());
}

function portsKey(s: EndpointSlice): string {
  return JSON.stringify((s.ports ?? []).map(canonicalJson).sort());
}

function isOwnedBy(s: EndpointSlice, service: Service): boolean {
  return (s.metadata?.ownerReferences ?? []).some((r) => r.controller === true && r.uid === service.metadata?.uid);
}

/** Same endpoints and ports (in any order), labels and owner: nothing to write. */
function sameContent(existing: EndpointSlice, desired: EndpointSlice, service: Service): boolean {
  return (
    existing.addressType === desired.addressType &&
    endpointsKey(existing) === endpointsKey(desired) &&
    portsKey(existing) === portsKey(desired) &&
    deepEqual(existing.metadata?.labels ?? {}, desired.metadata?.labels ?? {}) &&
    isOwnedBy(existing, service)
  );
}

/** Slices this controller manages for `service` (others with the service-name label are left alone). */
export function isManagedSlice(s: EndpointSlice, service: Service): boolean {
  const labels = s.metadata?.labels ?? {};
  return (
    s.metadata?.namespace === service.metadata?.namespace &&
    labels[EndpointSliceLabel.ServiceName] === service.metadata?.name &&
    labels[EndpointSliceLabel.ManagedBy] === ENDPOINTSLICE_CONTROLLER
  );
}

/**
 * The writes that bring `existing` to the desired slices: unchanged slices are left alone, a
 * changed one is updated in place (its name kept, preferring a slice with the same ports), new
 * ones are created with generateName, and managed slices no longer needed (or of another address
 * type) are deleted. A Service that no longer selects loses its managed slices.
 */
export function reconcileEndpointSlices(
  service: Service,
  pods: readonly Pod[],
  nodes: readonly Node[],
  existing: EndpointSlice[],
  maxPerSlice = MAX_ENDPOINTS_PER_SLICE,
): EndpointSliceActions {
  const desired = desiredEndpointSlices(service, pods, nodes, maxPerSlice);
  const remaining = existing.filter((s) => isManagedSlice(s, service)).sort((a, b) => cmp(a.metadata?.name ?? "", b.metadata?.name ?? ""));
  const take = (s: EndpointSlice) => remaining.splice(remaining.indexOf(s), 1);

  const unmatched: EndpointSlice[] = [];
  for (const d of desired) {
    const same = remaining.find((e) => sameContent(e, d, service));
    if (same) take(same);
    else unmatched.push(d);
  }

  const create: EndpointSlice[] = [];
  const update: EndpointSlice[] = [];
  for (const d of unmatched) {
    const reuse = remaining.find((e) => e.addressType === d.addressType && portsKey(e) === portsKey(d)) ?? remaining.find((e) => e.addressType === d.addressType);
    if (!reuse) {
      create.push(d);
      continue;
    }
    take(reuse);
    update.push({
      ...reuse,
      metadata: {
        ...reuse.metadata,
        labels: d.metadata?.labels ?? {},
        ownerReferences: isOwnedBy(reuse, service) ? (reuse.metadata?.ownerReferences ?? []) : [...(reuse.metadata?.ownerReferences ?? []), serviceRef(service)],
      },
      endpoints: d.endpoints,
      ports: d.ports ?? [],
    });
  }
  return { create, update, delete: remaining };
}
