/**
 * Defaulting of API objects before validation and storage, as kube-apiserver applies its
 * SetDefaults_* functions on decode: the same fields get the same values, so what kubectl reads
 * back (`kubectl get -o yaml`) looks like it does against a real cluster. Pure: the input is
 * never mutated, a defaulted copy is returned.
 *
 * Sources followed: pkg/apis/core/v1/defaults.go, pkg/apis/apps/v1/defaults.go,
 * pkg/apis/networking/v1/defaults.go, pkg/apis/discovery/v1/defaults.go, the `+default` tags
 * of k8s.io/api types (ports' protocol TCP), and the namespace registry strategy (the
 * "kubernetes" finalizer is set on create there, not in defaults.go).
 */
import { customResourceFor } from "../../cluster/resources.ts";
import { cloneJson } from "../../cluster/meta.ts";
import { CRD_API_VERSION, CRD_KIND, applySchemaDefaults, defaultCustomResourceDefinition } from "./crds.ts";
import type { Deployment, ReplicaSet } from "kubernetes-types/apps/v1.js";
import type { Container, ContainerPort, Namespace, Pod, PodSpec, Probe, Service, ServicePort } from "kubernetes-types/core/v1.js";
import type { EndpointSlice } from "kubernetes-types/discovery/v1.js";
import type { NetworkPolicy, NetworkPolicyPort } from "kubernetes-types/networking/v1.js";

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === "object" && v !== null && !Array.isArray(v);
/** isRec for a typed value: narrows away null/undefined without losing the type. */
const isObj = <T,>(v: T | null | undefined): v is T => isRec(v);

/** Runs `fn` on each element of `list` that is an object (decoded JSON may hold anything). */
function eachObject<T>(list: T[] | undefined, fn: (item: T) => void): void {
  if (!Array.isArray(list)) return;
  for (const item of list) if (isRec(item)) fn(item);
}

/** The object at `holder[key]`, created empty when absent. */
function objectAt<T extends object>(holder: Rec, key: string): T {
  if (!isRec(holder[key])) holder[key] = {};
  return holder[key] as T;
}

export const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30;
export const DEFAULT_SCHEDULER_NAME = "default-scheduler";
export const TERMINATION_MESSAGE_PATH_DEFAULT = "/dev/termination-log";
export const DEFAULT_CLIENT_IP_SERVICE_AFFINITY_SECONDS = 10800;

/**
 * The tag of an image reference, as parsers.ParseImageName reports it: "latest" when the
 * reference has neither tag nor digest, "" for a digest-only or an empty reference.
 */
export function imageTag(image: string): string {
  if (!image) return "";
  let ref = image;
  let digest = "";
  const at = ref.indexOf("@");
  if (at >= 0) {
    digest = ref.slice(at + 1);
    ref = ref.slice(0, at);
  }
  const colon = ref.lastIndexOf(":");
  // A colon before the last "/" is a registry port (localhost:5000/app), not a tag.
  const tag = colon > ref.lastIndexOf("/") ? ref.slice(colon + 1) : "";
  return tag || digest ? tag : "latest";
}

function defaultPorts(ports: ContainerPort[] | undefined): void {
  // k8s.io/api ContainerPort.Protocol is `+default="TCP"`.
  eachObject(ports, (p) => {
    if (!p.protocol) p.protocol = "TCP";
  });
}

/** SetDefaults_Probe and SetDefaults_HTTPGetAction. */
function defaultProbe(probe: Probe | undefined): void {
  if (!isObj(probe)) return;
  if (!probe.timeoutSeconds) probe.timeoutSeconds = 1;
  if (!probe.periodSeconds) probe.periodSeconds = 10;
  if (!probe.successThreshold) probe.successThreshold = 1;
  if (!probe.failureThreshold) probe.failureThreshold = 3;
  defaultHttpGet(probe.httpGet);
}

function defaultHttpGet(action: { path?: string; scheme?: string } | undefined): void {
  if (!isObj(action)) return;
  if (!action.path) action.path = "/";
  if (!action.scheme) action.scheme = "HTTP";
}

/** SetDefaults_Container plus the defaults of what a container holds. */
function defaultContainer(c: Container): void {
  if (!c.imagePullPolicy) c.imagePullPolicy = imageTag(typeof c.image === "string" ? c.image : "") === "latest" ? "Always" : "IfNotPresent";
  if (!c.terminationMessagePath) c.terminationMessagePath = TERMINATION_MESSAGE_PATH_DEFAULT;
  if (!c.terminationMessagePolicy) c.terminationMessagePolicy = "File";
  defaultPorts(c.ports);
  defaultProbe(c.livenessProbe);
  defaultProbe(c.readinessProbe);
  defaultProbe(c.startupProbe);
  if (isObj(c.lifecycle)) {
    if (isObj(c.lifecycle.postStart)) defaultHttpGet(c.lifecycle.postStart.httpGet);
    if (isObj(c.lifecycle.preStop)) defaultHttpGet(c.lifecycle.preStop.httpGet);
  }
  // SetDefaults_ObjectFieldSelector: a downward-API field reference is to the v1 schema.
  eachObject(c.env, (e) => {
    if (isObj(e.valueFrom) && isObj(e.valueFrom.fieldRef) && !e.valueFrom.fieldRef.apiVersion) e.valueFrom.fieldRef.apiVersion = "v1";
  });
}

/** SetDefaults_PodSpec and the containers in it; shared by Pods and pod templates. */
function defaultPodSpec(spec: PodSpec): void {
  if (!spec.dnsPolicy) spec.dnsPolicy = "ClusterFirst";
  if (!spec.restartPolicy) spec.restartPolicy = "Always";
  if (!isRec(spec.securityContext)) spec.securityContext = {};
  if (spec.terminationGracePeriodSeconds === undefined || spec.terminationGracePeriodSeconds === null) {
    spec.terminationGracePeriodSeconds = DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS;
  }
  if (!spec.schedulerName) spec.schedulerName = DEFAULT_SCHEDULER_NAME;
  eachObject(spec.containers, defaultContainer);
  eachObject(spec.initContainers, defaultContainer);
  eachObject(spec.ephemeralContainers, (c) => defaultContainer(c as Container));
}

/** SetDefaults_Pod: the Pod-only defaults on top of the spec's. */
function defaultPod(pod: Pod): void {
  const spec = objectAt<PodSpec>(pod as Rec, "spec");
  defaultPodSpec(spec);
  for (const list of [spec.containers, spec.initContainers]) {
    eachObject(list, (c) => {
      // Requests default to limits, so a limit alone is also the scheduling request.
      if (!isRec(c.resources) || !isRec(c.resources.limits)) return;
      const requests = isRec(c.resources.requests) ? c.resources.requests : (c.resources.requests = {});
      for (const [k, v] of Object.entries(c.resources.limits)) if (!(k in requests)) requests[k] = v;
    });
  }
  if (spec.enableServiceLinks === undefined || spec.enableServiceLinks === null) spec.enableServiceLinks = true;
  if (spec.hostNetwork === true) {
    // defaultHostNetworkPorts: on the host's network a container port is the host port.
    for (const list of [spec.containers, spec.initContainers]) {
      eachObject(list, (c) => eachObject(c.ports, (p) => {
        if (!p.hostPort) p.hostPort = p.containerPort;
      }));
    }
  }
}

/** apiservice.ExternallyAccessible. */
function externallyAccessible(spec: NonNullable<Service["spec"]>): boolean {
  return spec.type === "LoadBalancer" || spec.type === "NodePort" || (spec.type === "ClusterIP" && Array.isArray(spec.externalIPs) && spec.externalIPs.length > 0);
}

/** SetDefaults_Service, plus the single-stack IPv4 families the registry would pick here. */
function defaultService(svc: Service): void {
  const spec = objectAt<NonNullable<Service["spec"]>>(svc as Rec, "spec");
  if (!spec.sessionAffinity) spec.sessionAffinity = "None";
  if (spec.sessionAffinity === "None") delete spec.sessionAffinityConfig;
  if (spec.sessionAffinity === "ClientIP") {
    const cfg = spec.sessionAffinityConfig;
    if (!isRec(cfg) || !isRec(cfg.clientIP) || cfg.clientIP.timeoutSeconds === undefined || cfg.clientIP.timeoutSeconds === null) {
      spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: DEFAULT_CLIENT_IP_SERVICE_AFFINITY_SECONDS } };
    }
  }
  if (!spec.type) spec.type = "ClusterIP";
  eachObject(spec.ports, (p: ServicePort) => {
    if (!p.protocol) p.protocol = "TCP";
    // An unset (0 or "") targetPort is the port itself.
    if (p.targetPort === undefined || p.targetPort === null || p.targetPort === 0 || p.targetPort === "") p.targetPort = p.port;
  });
  if (externallyAccessible(spec) && !spec.externalTrafficPolicy) spec.externalTrafficPolicy = "Cluster";
  if (spec.type !== "ExternalName") {
    if (!spec.internalTrafficPolicy) spec.internalTrafficPolicy = "Cluster";
    // The registry's IP-family initialisation, for a single-stack cluster.
    if (!spec.ipFamilyPolicy) spec.ipFamilyPolicy = "SingleStack";
    if (!Array.isArray(spec.ipFamilies) || spec.ipFamilies.length === 0) {
      spec.ipFamilies = [typeof spec.clusterIP === "string" && spec.clusterIP.includes(":") ? "IPv6" : "IPv4"];
    }
  }
  if (spec.type === "LoadBalancer" && (spec.allocateLoadBalancerNodePorts === undefined || spec.allocateLoadBalancerNodePorts === null)) {
    spec.allocateLoadBalancerNodePorts = true;
  }
}

/** The template's pod spec (not SetDefaults_Pod: enableServiceLinks and such are Pod-only). */
function defaultTemplate(spec: Rec): void {
  const template = objectAt<Rec>(spec, "template");
  defaultPodSpec(objectAt<PodSpec>(template, "spec"));
}

/** apps/v1 SetDefaults_Deployment. */
function defaultDeployment(d: Deployment): void {
  const spec = objectAt<NonNullable<Deployment["spec"]>>(d as Rec, "spec");
  if (spec.replicas === undefined || spec.replicas === null) spec.replicas = 1;
  const strategy = objectAt<NonNullable<typeof spec.strategy>>(spec as unknown as Rec, "strategy");
  if (!strategy.type) strategy.type = "RollingUpdate";
  if (strategy.type === "RollingUpdate") {
    const ru = objectAt<NonNullable<typeof strategy.rollingUpdate>>(strategy as Rec, "rollingUpdate");
    if (ru.maxUnavailable === undefined || ru.maxUnavailable === null) ru.maxUnavailable = "25%";
    if (ru.maxSurge === undefined || ru.maxSurge === null) ru.maxSurge = "25%";
  }
  if (spec.revisionHistoryLimit === undefined || spec.revisionHistoryLimit === null) spec.revisionHistoryLimit = 10;
  if (spec.progressDeadlineSeconds === undefined || spec.progressDeadlineSeconds === null) spec.progressDeadlineSeconds = 600;
  defaultTemplate(spec as unknown as Rec);
}

/** apps/v1 SetDefaults_ReplicaSet. */
function defaultReplicaSet(rs: ReplicaSet): void {
  const spec = objectAt<NonNullable<ReplicaSet["spec"]>>(rs as Rec, "spec");
  if (spec.replicas === undefined || spec.replicas === null) spec.replicas = 1;
  defaultTemplate(spec as unknown as Rec);
}

/** networking/v1 SetDefaults_NetworkPolicy and SetDefaults_NetworkPolicyPort. */
function defaultNetworkPolicy(np: NetworkPolicy): void {
  const spec = objectAt<NonNullable<NetworkPolicy["spec"]>>(np as Rec, "spec");
  // podSelector is a non-omitempty struct in Go: an absent one reads back as {} (all pods).
  if (!isRec(spec.podSelector)) spec.podSelector = {};
  const portsOf = (rules: Array<{ ports?: NetworkPolicyPort[] }> | undefined): void =>
    eachObject(rules, (r) => eachObject(r.ports, (p) => {
      if (!p.protocol) p.protocol = "TCP";
    }));
  portsOf(spec.ingress);
  portsOf(spec.egress);
  if (!Array.isArray(spec.policyTypes) || spec.policyTypes.length === 0) {
    // A policy without policyTypes isolates ingress, and egress once it has egress rules.
    spec.policyTypes = ["Ingress"];
    if (Array.isArray(spec.egress) && spec.egress.length > 0) spec.policyTypes.push("Egress");
  }
}

/** The namespace strategy's finalizer and SetDefaults_NamespaceStatus. */
function defaultNamespace(ns: Namespace): void {
  const spec = objectAt<NonNullable<Namespace["spec"]>>(ns as Rec, "spec");
  if (!Array.isArray(spec.finalizers)) spec.finalizers = ["kubernetes"];
  const status = objectAt<NonNullable<Namespace["status"]>>(ns as Rec, "status");
  if (!status.phase) status.phase = "Active";
}

/** discovery/v1 SetDefaults_EndpointPort: a nameless port is named "", protocol TCP. */
function defaultEndpointSlice(slice: EndpointSlice): void {
  eachObject(slice.ports, (p) => {
    if (p.name === undefined || p.name === null) p.name = "";
    if (!p.protocol) p.protocol = "TCP";
  });
}

/**
 * A defaulted copy of `obj` (a decoded API object of `kind`). Kinds without defaults (Node,
 * Event, Ingress, whose pathType is left as given) come back as an unchanged copy.
 */
export function defaultObject(kind: string, obj: any): any {
  return defaultOwnObject(kind, cloneJson(obj));
}

/**
 * defaultObject without the copy: defaults `obj` in place (and returns it, or the defaulted
 * CRD). For an object the caller owns whole, no part of it shared (the registry's create has
 * one: the schema check's copy of the request body).
 */
export function defaultOwnObject(kind: string, obj: any): any {
  const copy: unknown = obj;
  if (!isRec(copy)) return copy;
  // A kind served from a stored CRD: its schema's defaults, whatever its name (crds.ts).
  const served = typeof copy.apiVersion === "string" ? customResourceFor(copy.apiVersion, kind) : undefined;
  if (served?.custom) {
    applySchemaDefaults(served.custom.validationSchema, copy);
    return copy;
  }
  if (kind === CRD_KIND && copy.apiVersion === CRD_API_VERSION) return defaultCustomResourceDefinition(copy);
  switch (kind) {
    case "Pod":
      defaultPod(copy as Pod);
      break;
    case "Service":
      defaultService(copy as Service);
      break;
    case "Deployment":
      defaultDeployment(copy as Deployment);
      break;
    case "ReplicaSet":
      defaultReplicaSet(copy as ReplicaSet);
      break;
    case "NetworkPolicy":
      defaultNetworkPolicy(copy as NetworkPolicy);
      break;
    case "Namespace":
      defaultNamespace(copy as Namespace);
      break;
    case "EndpointSlice":
      defaultEndpointSlice(copy as unknown as EndpointSlice);
      break;
  }
  return copy;
}
