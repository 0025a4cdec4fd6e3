/**
 * Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for with
 * `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
 *
 * The columns and cells follow Kubernetes' pkg/printers/internalversion/printers.go. The API
 * server prints with Wide set, so every row carries the priority-1 cells too and kubectl drops
 * them unless `-o wide`; the cells of a row therefore line up with columnDefinitions one to one.
 * A kind without a printer gets the API server's default table (Name, Created At), as
 * k8s.io/apiserver/pkg/registry/rest/table.go prints it. A kind defined by a SIG project's CRD
 * (ClusterNetworkPolicy) prints the CRD's additionalPrinterColumns, as apiextensions-apiserver's
 * tableconvertor does.
 *
 * Stored objects are whatever clients wrote, so every field is read defensively: a missing or
 * ill-typed field prints as Kubernetes prints its zero value, and never throws.
 */
import type { KubeObject, ObjectMeta } from "../../cluster/store.ts";
import type { LabelSelector } from "kubernetes-types/meta/v1.js";
import { formatLabelSelector as formatSelector, labelSelectorFromObject } from "../../cluster/selectors.ts";
import type { PrinterColumn, ResourceInfo } from "../../cluster/resources.ts";
import { evalJsonPath, parseJsonPath, type JsonPathStep } from "./jsonpath.ts";

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface TableRowCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface PartialObjectMetadata {
  kind: "PartialObjectMetadata";
  apiVersion: "meta.k8s.io/v1";
  metadata: ObjectMeta;
}

export interface TableRow {
  cells: unknown[];
  conditions?: TableRowCondition[];
  object?: PartialObjectMetadata | KubeObject;
}

export interface Table {
  kind: "Table";
  apiVersion: "meta.k8s.io/v1";
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  columnDefinitions: TableColumnDefinition[];
  rows: TableRow[];
}

/** metav1.IncludeObjectPolicy: what each row carries besides its cells ("Metadata" is kubectl's default). */
export type IncludeObject = "None" | "Metadata" | "Object";

export interface ToTableOptions {
  now: Date;
  includeObject: IncludeObject;
  /** The list's metadata. Without it, a table of one object takes that object's resourceVersion. */
  listMeta?: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  /** TableOptions.noHeaders: leave columnDefinitions empty (watch events after the first). */
  noHeaders?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Defensive field access.

type Rec = Record<string, unknown>;

function rec(v: unknown): Rec {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Rec) : {};
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function int(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) ? Math.trunc(v) : 0;
}

function has(v: unknown): boolean {
  return v !== undefined && v !== null;
}

/** A timestamp's epoch milliseconds, or undefined when absent or unparsable (Go's zero Time). */
function timeMs(ts: unknown): number | undefined {
  if (typeof ts !== "string" || ts === "") return undefined;
  const ms = Date.parse(ts);
  return Number.isNaN(ms) ? undefined : ms;
}

// ---------------------------------------------------------------------------------------------
// Durations (k8s.io/apimachinery/pkg/util/duration).

/**
 * duration.HumanDuration for a duration in milliseconds: a succinct representation with ~2-3
 * significant figures ("119s", "2m1s", "70m", "3h1m", "47h", "2d1h", "367d", "2y1d", "8y").
 */
export function humanDuration(ms: number): string {
  // Allow deviation no more than 2 seconds (excluded) to tolerate clock skew.
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(ms / 3_600_000);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    const d = Math.trunc(hours / 24);
    return h === 0 ? `${d}d` : `${d}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  const years = Math.trunc(hours / 24 / 365);
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    return dy === 0 ? `${years}y` : `${years}y${dy}d`;
  }
  return `${years}y`;
}

/** printers.go translateTimestampSince: the age of a timestamp, "<unknown>" when there is none. */
export function translateTimestampSince(ts: string | undefined, now: Date): string {
  const ms = timeMs(ts);
  if (ms === undefined) return "<unknown>";
  return humanDuration(now.getTime() - ms);
}

// ---------------------------------------------------------------------------------------------
// Labels and selectors (k8s.io/apimachinery/pkg/labels, metav1.FormatLabelSelector).

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** labels.FormatLabels: "k=v" sorted by key and joined by ",", "<none>" when empty. */
export function formatLabels(labels: unknown): string {
  const m = rec(labels);
  const keys = Object.keys(m).sort(byteOrder);
  if (keys.length === 0) return "<none>";
  return keys.map((k) => `${k}=${str(m[k])}`).join(",");
}

/** metav1.FormatLabelSelector: the selector string, "<none>" when empty, "<error>" when invalid. */
export function formatLabelSelector(selector: unknown): string {
  const s = labelSelectorString(selector);
  if (s === undefined) return "<error>";
  return s === "" ? "<none>" : s;
}

/**
 * metav1.LabelSelectorAsSelector(sel).String() through cluster/selectors.ts: "" for a missing (nil
 * is labels.Nothing()) or empty selector; undefined when the selector is invalid. Stored
 * objects passed validation, so the cast only names the shape validation checked.
 */
function labelSelectorString(selector: unknown): string | undefined {
  if (!has(selector)) return "";
  const parsed = labelSelectorFromObject(selector as LabelSelector);
  return parsed.kind === "error" ? undefined : formatSelector(parsed.value);
}

// ---------------------------------------------------------------------------------------------
// Column definitions.

const NAME_DESCRIPTION =
  "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_TIMESTAMP_DESCRIPTION =
  "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

function col(name: string, description: string, priority = 0, type = "string", format = ""): TableColumnDefinition {
  return { name, type, format, description, priority };
}

const NAME = (): TableColumnDefinition => col("Name", NAME_DESCRIPTION, 0, "string", "name");
const AGE = (): TableColumnDefinition => col("Age", CREATION_TIMESTAMP_DESCRIPTION);
const CONTAINERS = (): TableColumnDefinition => col("Containers", "Names of each container in the template.", 1);
const IMAGES = (): TableColumnDefinition => col("Images", "Images referenced by each container in the template.", 1);

const BINDING_COLUMNS = (): TableColumnDefinition[] => [
  NAME(),
  col("Role", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace."),
  AGE(),
  col("Users", "Users in the roleBinding", 1),
  col("Groups", "Groups in the roleBinding", 1),
  col("ServiceAccounts", "ServiceAccounts in the roleBinding", 1),
];

/** A CRD column without a description of its own (apiextensions tableconvertor.New). */
const crdColumn = (jsonPath: string): string => `Custom resource definition column (in JSONPath format): ${jsonPath}`;

const COLUMNS: Record<string, () => TableColumnDefinition[]> = {
  Pod: () => [
    NAME(),
    col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "The aggregate status of the containers in this pod."),
    col("Restarts", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
    AGE(),
    col("IP", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
    col("Node", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName.", 1),
    col("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.", 1),
    col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\".", 1),
  ],
  Service: () => [
    NAME(),
    col("Type", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer."),
    col("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly."),
    col("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
    col("Port(s)", "The list of ports that are exposed by this service."),
    AGE(),
    col("Selector", "Route service traffic to pods with label keys and values matching this selector.", 1),
  ],
  Node: () => [
    NAME(),
    col("Status", "The status of the node"),
    col("Roles", "The roles of the node"),
    AGE(),
    col("Version", "Kubelet Version reported by the node."),
    col("Internal-IP", "List of addresses reachable to the node.", 1),
    col("External-IP", "List of addresses reachable to the node.", 1),
    col("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
    col("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
    col("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", 1),
  ],
  Namespace: () => [NAME(), col("Status", "The status of the namespace"), AGE()],
  Deployment: () => [
    NAME(),
    col("Ready", "Number of the pod with ready state"),
    col("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
    col("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
    AGE(),
    CONTAINERS(),
    IMAGES(),
    col("Selector", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.", 1),
  ],
  ReplicaSet: () => [
    NAME(),
    col("Desired", "Replicas is the number of desired replicas.", 0, "integer"),
    col("Current", "Replicas is the most recently observed number of replicas.", 0, "integer"),
    col("Ready", "readyReplicas is the number of pods targeted by this ReplicaSet with a Ready Condition.", 0, "integer"),
    AGE(),
    CONTAINERS(),
    IMAGES(),
    col("Selector", "Selector is a label query over pods that should match the replica count.", 1),
  ],
  Endpoints: () => [
    NAME(),
    col("Endpoints", "Endpoints is the list of endpoints in the subsets, as ip:port."),
    AGE(),
  ],
  EndpointSlice: () => [
    NAME(),
    col("AddressType", "addressType specifies the type of address carried by this EndpointSlice."),
    col("Ports", "ports specifies the list of network ports exposed by each endpoint in this slice."),
    col("Endpoints", "endpoints is a list of unique endpoints in this slice."),
    AGE(),
  ],
  Event: () => [
    col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    col("Reason", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
    col("Object", "The object that this event is about."),
    col("Subobject", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].", 1),
    col("Source", "The component reporting this event. Should be a short machine understandable string.", 1),
    col("Message", "A human-readable description of the status of this operation."),
    col("First Seen", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1),
    col("Count", "The number of times this event has occurred.", 1),
    col("Name", NAME_DESCRIPTION, 1, "string", "name"),
  ],
  NetworkPolicy: () => [
    NAME(),
    col("Pod-Selector", "Selects the pods to which this NetworkPolicy object applies."),
    AGE(),
  ],
  Ingress: () => [
    NAME(),
    col("Class", "The name of the IngressClass resource that should be used for additional configuration"),
    col("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
    col("Address", "Address is a list containing ingress points for the load-balancer"),
    col("Ports", "Ports of TLS configurations that open"),
    AGE(),
  ],

  IngressClass: () => [
    NAME(),
    col("Controller", "controller refers to the name of the controller that should handle this class."),
    col("Parameters", "parameters is a link to a custom resource containing additional configuration for the controller."),
    AGE(),
  ],
  ServiceAccount: () => [NAME(), col("Secrets", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."), AGE()],
  ConfigMap: () => [NAME(), col("Data", "Data contains the configuration data."), AGE()],
  Secret: () => [
    NAME(),
    col("Type", "Used to facilitate programmatic handling of secret data."),
    col("Data", "Data contains the secret data."),
    AGE(),
  ],
  LimitRange: () => [NAME(), col("Created At", CREATION_TIMESTAMP_DESCRIPTION, 0, "date")],
  ResourceQuota: () => [
    NAME(),
    AGE(),
    col("Request", "Request represents a minimum amount of cpu/memory that a container may consume."),
    col("Limit", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
  ],
  PersistentVolumeClaim: () => [
    NAME(),
    col("Status", "Phase represents the current phase of PersistentVolumeClaim."),
    col("Volume", "VolumeName is the binding reference to the PersistentVolume backing this claim."),
    col("Capacity", "Capacity represents the actual resources of the underlying volume."),
    col("Access Modes", "AccessModes contains the actual access modes the volume backing the PVC has."),
    col("StorageClass", "StorageClassName is the name of the StorageClass required by the claim."),
    col("VolumeAttributesClass", "volumeAttributesClassName may be used to set the VolumeAttributesClass used by this claim."),
    AGE(),
    col("VolumeMode", "volumeMode defines what type of volume is required by the claim."),
  ].map((c) => (c.name === "VolumeMode" ? { ...c, priority: 1 } : c)),
  StatefulSet: () => [
    NAME(),
    col("Ready", "Number of the pod with ready state"),
    AGE(),
    CONTAINERS(),
    IMAGES(),
  ],
  DaemonSet: () => [
    NAME(),
    col("Desired", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
    col("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
    col("Ready", "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
    col("Up-to-date", "The total number of nodes that are running updated daemon pod"),
    col("Available", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
    col("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node."),
    AGE(),
    CONTAINERS(),
    IMAGES(),
    col("Selector", "A label query over pods that are managed by the daemon set.", 1),
  ],
  Job: () => [
    NAME(),
    col("Status", "Status of the job."),
    col("Completions", "The desired number of successfully finished pods the job should be run with."),
    col("Duration", "Time required to complete the job."),
    AGE(),
    CONTAINERS(),
    IMAGES(),
    col("Selector", "A label query over pods that should match the pod count.", 1),
  ],
  CronJob: () => [
    NAME(),
    col("Schedule", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    col("Timezone", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
    col("Suspend", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false."),
    col("Active", "A list of pointers to currently running jobs."),
    col("Last Schedule", "Information when was the last time the job was successfully scheduled."),
    AGE(),
    CONTAINERS(),
    IMAGES(),
    col("Selector", "A label query over pods that should match the pod count.", 1),
  ],
  HorizontalPodAutoscaler: () => [
    NAME(),
    col("Reference", "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource."),
    col("Targets", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used)."),
    col("MinPods", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down."),
    col("MaxPods", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up."),
    col("Replicas", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
    AGE(),
  ],
  PodDisruptionBudget: () => [
    NAME(),
    col("Min Available", "The minimum number of pods that must be available simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\"."),
    col("Max Unavailable", "The maximum number of pods that may be unavailable simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\"."),
    col("Allowed Disruptions", "Number of pod disruptions that are currently allowed."),
    AGE(),
  ],
  Role: () => [NAME(), col("Created At", CREATION_TIMESTAMP_DESCRIPTION, 0, "date")],
  ClusterRole: () => [NAME(), col("Created At", CREATION_TIMESTAMP_DESCRIPTION, 0, "date")],
  RoleBinding: () => BINDING_COLUMNS(),
  ClusterRoleBinding: () => BINDING_COLUMNS(),
  Lease: () => [NAME(), col("Holder", "holderIdentity contains the identity of the holder of a current lease."), AGE()],
  PriorityClass: () => [
    NAME(),
    col("Value", "The value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.", 0, "integer"),
    col("Global-Default", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.", 0, "boolean"),
    AGE(),
    col("PreemptionPolicy", "PreemptionPolicy is the Policy for preempting pods with lower priority."),
  ],
  // CRD-defined: Name, then the CRD's additionalPrinterColumns.
  ClusterNetworkPolicy: () => [
    NAME(),
    col("Tier", crdColumn(".spec.tier")),
    col("Priority", crdColumn(".spec.priority")),
    col("Age", crdColumn(".metadata.creationTimestamp"), 0, "date"),
  ],
  // Served like a CRD (chaos.kubewire.io): its additionalPrinterColumns, the counters from status.totals.
  NetworkChaos: () => [
    NAME(),
    col("Action", crdColumn(".spec.action")),
    col("Direction", crdColumn(".spec.direction")),
    col("Duration", crdColumn(".spec.duration")),
    col("Phase", crdColumn(".status.phase")),
    col("Packets", crdColumn(".status.totals.packets"), 0, "integer"),
    col("Delayed", crdColumn(".status.totals.delayed"), 0, "integer"),
    col("Dropped", crdColumn(".status.totals.dropped"), 0, "integer"),
    col("Age", crdColumn(".metadata.creationTimestamp"), 0, "date"),
    col("Latency", crdColumn(".spec.delay.latency"), 1),
    col("Loss", crdColumn(".spec.loss.loss"), 1),
    col("Duplicated", crdColumn(".status.totals.duplicated"), 1, "integer"),
    col("Corrupted", crdColumn(".status.totals.corrupted"), 1, "integer"),
    col("Reordered", crdColumn(".status.totals.reordered"), 1, "integer"),
  ],
};

const DEFAULT_COLUMNS = (): TableColumnDefinition[] => [NAME(), col("Created At", CREATION_TIMESTAMP_DESCRIPTION, 0, "date")];

/** The column definitions Kubernetes prints for a kind (the default Name/Created At for others). */
export function columnDefinitions(kind: string): TableColumnDefinition[] {
  return (COLUMNS[kind] ?? DEFAULT_COLUMNS)();
}

// ---------------------------------------------------------------------------------------------
// Printers: one row's cells and conditions.

interface Printed {
  cells: unknown[];
  conditions?: TableRowCondition[];
}

type Printer = (obj: KubeObject, now: Date) => Printed;

function name(obj: KubeObject): string {
  return str(rec(obj.metadata).name);
}

function age(obj: KubeObject, now: Date): string {
  return translateTimestampSince(str(rec(obj.metadata).creationTimestamp), now);
}

function layoutContainerCells(containers: unknown): [string, string] {
  const list = arr(containers).map(rec);
  return [list.map((c) => str(c.name)).join(","), list.map((c) => str(c.image)).join(",")];
}

function conditionTrue(conditions: unknown, type: string): boolean {
  return arr(conditions).some((c) => str(rec(c).type) === type && str(rec(c).status) === "True");
}

const POD_SUCCESS_CONDITIONS: TableRowCondition[] = [
  { type: "Completed", status: "True", reason: "Succeeded", message: "The pod has completed successfully." },
];
const POD_FAILED_CONDITIONS: TableRowCondition[] = [{ type: "Completed", status: "True", reason: "Failed", message: "The pod failed." }];

function printPod(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  const meta = rec(obj.metadata);
  const initSpecs = arr(spec.initContainers).map(rec);
  const restartableInit = new Set(initSpecs.filter((c) => str(c.restartPolicy) === "Always").map((c) => str(c.name)));

  let restarts = 0;
  let restartableInitContainerRestarts = 0;
  let totalContainers = arr(spec.containers).length + restartableInit.size;
  let readyContainers = 0;
  let lastRestart: number | undefined;
  let lastRestartableInitRestart: number | undefined;
  const later = (a: number | undefined, b: number | undefined): number | undefined =>
    b === undefined ? a : a === undefined || a < b ? b : a;

  // The API server stores a new pod with phase Pending (pod strategy PrepareForCreate).
  const phase = str(status.phase) || "Pending";
  let reason = str(status.reason) || phase;
  for (const c of arr(status.conditions)) {
    if (str(rec(c).type) === "PodScheduled" && str(rec(c).reason) === "SchedulingGated") reason = "SchedulingGated";
  }

  let initializing = false;
  const initStatuses = arr(status.initContainerStatuses).map(rec);
  for (let i = 0; i < initStatuses.length; i++) {
    const cs = initStatuses[i] ?? {};
    const state = rec(cs.state);
    const terminated = has(state.terminated) ? rec(state.terminated) : undefined;
    const waiting = has(state.waiting) ? rec(state.waiting) : undefined;
    const lastTerminated = has(rec(cs.lastState).terminated) ? rec(rec(cs.lastState).terminated) : undefined;
    const isRestartable = restartableInit.has(str(cs.name));
    restarts += int(cs.restartCount);
    if (lastTerminated) lastRestart = later(lastRestart, timeMs(lastTerminated.finishedAt));
    if (isRestartable) {
      restartableInitContainerRestarts += int(cs.restartCount);
      if (lastTerminated) lastRestartableInitRestart = later(lastRestartableInitRestart, timeMs(lastTerminated.finishedAt));
    }
    if (terminated && int(terminated.exitCode) === 0) continue;
    if (isRestartable && cs.started === true) {
      if (cs.ready === true) readyContainers++;
      continue;
    }
    if (terminated) {
      // Initialization failed.
      const r = str(terminated.reason);
      if (r === "") {
        reason = int(terminated.signal) !== 0 ? `Init:Signal:${int(terminated.signal)}` : `Init:ExitCode:${int(terminated.exitCode)}`;
      } else {
        reason = `Init:${r}`;
      }
    } else if (waiting && str(waiting.reason) !== "" && str(waiting.reason) !== "PodInitializing") {
      reason = `Init:${str(waiting.reason)}`;
    } else {
      reason = `Init:${i}/${initSpecs.length}`;
    }
    initializing = true;
    break;
  }

  if (!initializing || conditionTrue(status.conditions, "Initialized")) {
    restarts = restartableInitContainerRestarts;
    lastRestart = lastRestartableInitRestart;
    let hasRunning = false;
    const statuses = arr(status.containerStatuses).map(rec);
    for (let i = statuses.length - 1; i >= 0; i--) {
      const cs = statuses[i] ?? {};
      const state = rec(cs.state);
      const terminated = has(state.terminated) ? rec(state.terminated) : undefined;
      const waiting = has(state.waiting) ? rec(state.waiting) : undefined;
      const lastTerminated = has(rec(cs.lastState).terminated) ? rec(rec(cs.lastState).terminated) : undefined;
      restarts += int(cs.restartCount);
      if (lastTerminated) lastRestart = later(lastRestart, timeMs(lastTerminated.finishedAt));
      if (waiting && str(waiting.reason) !== "") {
        reason = str(waiting.reason);
      } else if (terminated && str(terminated.reason) !== "") {
        reason = str(terminated.reason);
      } else if (terminated) {
        reason = int(terminated.signal) !== 0 ? `Signal:${int(terminated.signal)}` : `ExitCode:${int(terminated.exitCode)}`;
      } else if (cs.ready === true && (has(state.running) || !has(cs.state))) {
        // Kubernetes requires state.running; a ready status that carries no state at all is
        // counted as running too, since no kubelet writes one and it can only mean "up".
        hasRunning = true;
        readyContainers++;
      }
    }
    // Back to "Running" if at least one container still reports running.
    if (reason === "Completed" && hasRunning) {
      reason = conditionTrue(status.conditions, "Ready") ? "Running" : "NotReady";
    }
  }

  if (has(meta.deletionTimestamp) && str(status.reason) === "NodeLost") {
    reason = "Unknown";
  } else if (has(meta.deletionTimestamp) && phase !== "Succeeded" && phase !== "Failed") {
    reason = "Terminating";
  }

  let restartsCell = String(restarts);
  if (restarts !== 0 && lastRestart !== undefined) {
    restartsCell = `${restarts} (${humanDuration(now.getTime() - lastRestart)} ago)`;
  }

  const podIPs = arr(status.podIPs);
  const podIP = (podIPs.length > 0 ? str(rec(podIPs[0]).ip) : str(status.podIP)) || "<none>";
  const nodeName = str(spec.nodeName) || "<none>";
  const nominatedNodeName = str(status.nominatedNodeName) || "<none>";
  let readinessGates = "<none>";
  const gates = arr(spec.readinessGates);
  if (gates.length > 0) {
    let trueConditions = 0;
    for (const g of gates) {
      const found = arr(status.conditions).map(rec).find((c) => str(c.type) === str(rec(g).conditionType));
      if (found && str(found.status) === "True") trueConditions++;
    }
    readinessGates = `${trueConditions}/${gates.length}`;
  }

  const printed: Printed = {
    cells: [name(obj), `${readyContainers}/${totalContainers}`, reason, restartsCell, age(obj, now), podIP, nodeName, nominatedNodeName, readinessGates],
  };
  if (str(status.phase) === "Succeeded") printed.conditions = POD_SUCCESS_CONDITIONS.map((c) => ({ ...c }));
  if (str(status.phase) === "Failed") printed.conditions = POD_FAILED_CONDITIONS.map((c) => ({ ...c }));
  return printed;
}

/** loadBalancerStatusStringer with wide set: the distinct IPs (else hostnames), sorted. */
function loadBalancerIngress(status: unknown): string {
  const set = new Set<string>();
  for (const i of arr(rec(rec(status).loadBalancer).ingress)) {
    const ip = str(rec(i).ip);
    const hostname = str(rec(i).hostname);
    if (ip !== "") set.add(ip);
    else if (hostname !== "") set.add(hostname);
  }
  return [...set].sort(byteOrder).join(",");
}

function serviceExternalIP(obj: KubeObject, type: string): string {
  const spec = rec(obj.spec);
  const externalIPs = arr(spec.externalIPs).map(str);
  switch (type) {
    case "ClusterIP":
    case "NodePort":
      return externalIPs.length > 0 ? externalIPs.join(",") : "<none>";
    case "LoadBalancer": {
      const lb = loadBalancerIngress(obj.status);
      if (externalIPs.length > 0) return [...(lb ? lb.split(",") : []), ...externalIPs].join(",");
      return lb || "<pending>";
    }
    case "ExternalName":
      return str(spec.externalName);
    default:
      return "<unknown>";
  }
}

function printService(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  // Service defaulting makes ClusterIP the type when none is given.
  const type = str(spec.type) || "ClusterIP";
  const clusterIPs = arr(spec.clusterIPs).map(str);
  const internalIP = (clusterIPs.length > 0 ? clusterIPs[0] : str(spec.clusterIP)) || "<none>";
  const ports = arr(spec.ports)
    .map(rec)
    .map((p) => {
      const protocol = str(p.protocol) || "TCP";
      return int(p.nodePort) > 0 ? `${int(p.port)}:${int(p.nodePort)}/${protocol}` : `${int(p.port)}/${protocol}`;
    })
    .join(",");
  return {
    cells: [name(obj), type, internalIP, serviceExternalIP(obj, type), ports || "<none>", age(obj, now), formatLabels(spec.selector)],
  };
}

function printNode(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  const nodeInfo = rec(status.nodeInfo);
  const labels = rec(rec(obj.metadata).labels);

  const states: string[] = [];
  // Only the Ready condition is shown; the last one of that type wins, as in a Go map.
  const ready = arr(status.conditions).map(rec).filter((c) => str(c.type) === "Ready").at(-1);
  if (ready) states.push(str(ready.status) === "True" ? "Ready" : "NotReady");
  if (states.length === 0) states.push("Unknown");
  if (spec.unschedulable === true) states.push("SchedulingDisabled");

  const roles = new Set<string>();
  for (const [k, v] of Object.entries(labels)) {
    if (k.startsWith("node-role.kubernetes.io/")) {
      const role = k.slice("node-role.kubernetes.io/".length);
      if (role !== "") roles.add(role);
    } else if (k === "kubernetes.io/role" && str(v) !== "") {
      roles.add(str(v));
    }
  }

  const address = (type: string): string =>
    str(arr(status.addresses).map(rec).find((a) => str(a.type) === type)?.address) || "<none>";

  return {
    cells: [
      name(obj),
      states.join(","),
      [...roles].sort(byteOrder).join(",") || "<none>",
      age(obj, now),
      str(nodeInfo.kubeletVersion),
      address("InternalIP"),
      address("ExternalIP"),
      str(nodeInfo.osImage) || "<unknown>",
      str(nodeInfo.kernelVersion) || "<unknown>",
      str(nodeInfo.containerRuntimeVersion) || "<unknown>",
    ],
  };
}

function printNamespace(obj: KubeObject, now: Date): Printed {
  // The API server stores a new namespace with phase Active (namespace strategy PrepareForCreate).
  return { cells: [name(obj), str(rec(obj.status).phase) || "Active", age(obj, now)] };
}

function replicas(spec: Rec): number {
  // Deployment and ReplicaSet defaulting make spec.replicas 1 when none is given.
  return has(spec.replicas) ? int(spec.replicas) : 1;
}

function printDeployment(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  const [containers, images] = layoutContainerCells(rec(rec(spec.template).spec).containers);
  return {
    cells: [
      name(obj),
      `${int(status.readyReplicas)}/${replicas(spec)}`,
      int(status.updatedReplicas),
      int(status.availableReplicas),
      age(obj, now),
      containers,
      images,
      labelSelectorString(spec.selector) ?? "<error>",
    ],
  };
}

function printReplicaSet(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  const [containers, images] = layoutContainerCells(rec(rec(spec.template).spec).containers);
  return {
    cells: [
      name(obj),
      replicas(spec),
      int(status.replicas),
      int(status.readyReplicas),
      age(obj, now),
      containers,
      images,
      formatLabelSelector(spec.selector),
    ],
  };
}

function listWithMoreString(list: string[], more: boolean, count: number, max: number): string {
  const ret = list.join(",");
  if (more) return `${ret} + ${count - max} more...`;
  return ret === "" ? "<unset>" : ret;
}

/** printEndpoints: the first three ip:port pairs over all subsets, "<none>" when empty. */
function printEndpoints(obj: KubeObject, now: Date): Printed {
  const max = 3;
  const list: string[] = [];
  let count = 0;
  for (const subset of arr(obj.subsets).map(rec)) {
    const ports = arr(subset.ports).map(rec);
    for (const a of arr(subset.addresses).map(rec)) {
      for (const p of ports.length ? ports : [{}]) {
        if (list.length < max) list.push(p.port === undefined ? str(a.ip) : `${str(a.ip)}:${int(p.port)}`);
        count++;
      }
    }
  }
  const text = list.length === 0 ? "<none>" : count > max ? `${list.join(",")} + ${count - max} more...` : list.join(",");
  return { cells: [name(obj), text, translateTimestampSince(obj.metadata.creationTimestamp, now)] };
}

function printEndpointSlice(obj: KubeObject, now: Date): Printed {
  const max = 3;
  const ports: string[] = [];
  let portsMore = false;
  let portCount = 0;
  for (const p of arr(obj.ports).map(rec)) {
    if (ports.length < max) {
      ports.push(typeof p.port === "number" ? String(int(p.port)) : typeof p.name === "string" ? p.name : "*");
    } else if (ports.length === max) {
      portsMore = true;
    }
    portCount++;
  }
  const addresses: string[] = [];
  let addressesMore = false;
  let addressCount = 0;
  for (const e of arr(obj.endpoints)) {
    for (const a of arr(rec(e).addresses)) {
      if (addresses.length < max) addresses.push(str(a));
      else if (addresses.length === max) addressesMore = true;
      addressCount++;
    }
  }
  return {
    cells: [
      name(obj),
      str(obj.addressType),
      listWithMoreString(ports, portsMore, portCount, max),
      listWithMoreString(addresses, addressesMore, addressCount, max),
      age(obj, now),
    ],
  };
}

function printEvent(obj: KubeObject, now: Date): Printed {
  const involved = rec(obj.involvedObject);
  const source = rec(obj.source);
  const series = has(obj.series) ? rec(obj.series) : undefined;

  let firstSeen = translateTimestampSince(str(obj.firstTimestamp), now);
  if (timeMs(obj.firstTimestamp) === undefined) firstSeen = translateTimestampSince(str(obj.eventTime), now);
  let lastSeen = translateTimestampSince(str(obj.lastTimestamp), now);
  if (timeMs(obj.lastTimestamp) === undefined) lastSeen = firstSeen;
  let count = int(obj.count);
  if (series) {
    lastSeen = translateTimestampSince(str(series.lastObservedTime), now);
    count = int(series.count);
  } else if (count === 0) {
    // Singleton events don't have a count set in the new API.
    count = 1;
  }

  const kind = str(involved.kind).toLowerCase();
  const target = str(involved.name) !== "" ? `${kind}/${str(involved.name)}` : kind;
  const component = str(source.component) || str(obj.reportingComponent);
  const instance = str(source.host) || str(obj.reportingInstance);
  const sourceCell = instance === "" ? component : `${component}, ${instance}`;

  return {
    cells: [lastSeen, str(obj.type), str(obj.reason), target, str(involved.fieldPath), sourceCell, str(obj.message).trim(), firstSeen, count, name(obj)],
  };
}

function printNetworkPolicy(obj: KubeObject, now: Date): Printed {
  return { cells: [name(obj), formatLabelSelector(rec(obj.spec).podSelector ?? {}), age(obj, now)] };
}

function printIngress(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const className = typeof spec.ingressClassName === "string" ? spec.ingressClassName : "<none>";
  const rules = arr(spec.rules).map(rec);
  const max = 3;
  const hosts: string[] = [];
  let more = false;
  for (const rule of rules) {
    if (hosts.length === max) more = true;
    if (!more && str(rule.host) !== "") hosts.push(str(rule.host));
  }
  let hostsCell = hosts.length === 0 ? "*" : hosts.join(",");
  if (hosts.length > 0 && more) hostsCell = `${hostsCell} + ${rules.length - max} more...`;
  const ports = arr(spec.tls).length !== 0 ? "80, 443" : "80";
  return { cells: [name(obj), className, hostsCell, loadBalancerIngress(obj.status), ports, age(obj, now)] };
}

// ---------------------------------------------------------------------------------------------
// The kinds application manifests carry (printers.go print<Kind>).

function printIngressClass(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  let parameters = "<none>";
  if (has(spec.parameters)) {
    const p = rec(spec.parameters);
    parameters = str(p.kind);
    if (has(p.apiGroup)) parameters = `${parameters}.${str(p.apiGroup)}`;
    parameters = `${parameters}/${str(p.name)}`;
  }
  return { cells: [name(obj), str(spec.controller), parameters, age(obj, now)] };
}

function printServiceAccount(obj: KubeObject, now: Date): Printed {
  return { cells: [name(obj), arr(obj.secrets).length, age(obj, now)] };
}

function printConfigMap(obj: KubeObject, now: Date): Printed {
  return { cells: [name(obj), Object.keys(rec(obj.data)).length + Object.keys(rec(obj.binaryData)).length, age(obj, now)] };
}

function printSecret(obj: KubeObject, now: Date): Printed {
  return { cells: [name(obj), str(obj.type), Object.keys(rec(obj.data)).length, age(obj, now)] };
}

function printCreatedAt(obj: KubeObject): Printed {
  return printDefault(obj);
}

/** resource.Quantity's String() for what clients store: the canonical text is kept as given. */
function quantity(v: unknown): string {
  return typeof v === "number" ? String(v) : str(v);
}

function printResourceQuota(obj: KubeObject, now: Date): Printed {
  const hard = rec(rec(obj.status).hard);
  const used = rec(rec(obj.status).used);
  const requests: string[] = [];
  const limits: string[] = [];
  for (const key of Object.keys(hard).sort(byteOrder)) {
    const usedValue = has(used[key]) ? quantity(used[key]) : "0";
    const cell = `${key}: ${usedValue}/${quantity(hard[key])}`;
    if (key.startsWith("limits.")) limits.push(cell);
    else requests.push(cell);
  }
  return { cells: [name(obj), age(obj, now), requests.join(", "), limits.join(", ")] };
}

const ACCESS_MODES: Readonly<Record<string, string>> = { ReadWriteOnce: "RWO", ReadOnlyMany: "ROX", ReadWriteMany: "RWX", ReadWriteOncePod: "RWOP" };

function printPersistentVolumeClaim(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  const meta = rec(obj.metadata);
  let phase = str(status.phase);
  if (has(meta.deletionTimestamp)) phase = "Terminating";
  let storage = "";
  let accessModes = "";
  if (str(spec.volumeName) !== "") {
    const seen = new Set(arr(status.accessModes).map(str));
    accessModes = ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"].filter((m) => seen.has(m)).map((m) => ACCESS_MODES[m]).join(",");
    storage = quantity(rec(status.capacity).storage);
  }
  const annotated = str(rec(meta.annotations)["volume.beta.kubernetes.io/storage-class"]);
  const storageClass = annotated !== "" ? annotated : str(spec.storageClassName);
  const vac = str(spec.volumeAttributesClassName) || "<unset>";
  const volumeMode = has(spec.volumeMode) ? str(spec.volumeMode) : "<unset>";
  return { cells: [name(obj), phase, str(spec.volumeName), storage, accessModes, storageClass, vac, age(obj, now), volumeMode] };
}

function printStatefulSet(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const [containers, images] = layoutContainerCells(rec(rec(spec.template).spec).containers);
  return { cells: [name(obj), `${int(rec(obj.status).readyReplicas)}/${replicas(spec)}`, age(obj, now), containers, images] };
}

function printDaemonSet(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  const podSpec = rec(rec(spec.template).spec);
  const [containers, images] = layoutContainerCells(podSpec.containers);
  return {
    cells: [
      name(obj),
      int(status.desiredNumberScheduled),
      int(status.currentNumberScheduled),
      int(status.numberReady),
      int(status.updatedNumberScheduled),
      int(status.numberAvailable),
      formatLabels(podSpec.nodeSelector),
      age(obj, now),
      containers,
      images,
      formatLabelSelector(spec.selector),
    ],
  };
}

function printJob(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  const [containers, images] = layoutContainerCells(rec(rec(spec.template).spec).containers);
  let completions: string;
  if (has(spec.completions)) {
    completions = `${int(status.succeeded)}/${int(spec.completions)}`;
  } else {
    const parallelism = has(spec.parallelism) ? int(spec.parallelism) : 0;
    completions = parallelism > 1 ? `${int(status.succeeded)}/1 of ${parallelism}` : `${int(status.succeeded)}/1`;
  }
  const start = timeMs(status.startTime);
  const completion = timeMs(status.completionTime);
  let duration = "";
  if (start !== undefined) duration = humanDuration((completion ?? now.getTime()) - start);
  let jobStatus = "Running";
  if (conditionTrue(status.conditions, "Complete")) jobStatus = "Complete";
  else if (conditionTrue(status.conditions, "Failed")) jobStatus = "Failed";
  else if (has(rec(obj.metadata).deletionTimestamp)) jobStatus = "Terminating";
  else if (conditionTrue(status.conditions, "SuccessCriteriaMet")) jobStatus = "SuccessCriteriaMet";
  else if (conditionTrue(status.conditions, "FailureTarget")) jobStatus = "FailureTarget";
  else if (conditionTrue(status.conditions, "Suspended")) jobStatus = "Suspended";
  return { cells: [name(obj), jobStatus, completions, duration, age(obj, now), containers, images, formatLabelSelector(spec.selector)] };
}

function boolPtr(v: unknown): string {
  return typeof v === "boolean" ? (v ? "True" : "False") : "<unset>";
}

function printCronJob(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  const jobSpec = rec(rec(spec.jobTemplate).spec);
  const [containers, images] = layoutContainerCells(rec(rec(jobSpec.template).spec).containers);
  const lastSchedule = has(status.lastScheduleTime) ? translateTimestampSince(str(status.lastScheduleTime), now) : "<none>";
  const timeZone = has(spec.timeZone) ? str(spec.timeZone) : "<none>";
  return {
    cells: [name(obj), str(spec.schedule), timeZone, boolPtr(spec.suspend), arr(status.active).length, lastSchedule, age(obj, now), containers, images, formatLabelSelector(jobSpec.selector)],
  };
}

/** printers.go formatHPAMetrics: "cpu: 30%/80%", "<unknown>" until the autoscaler reports. */
function hpaTargets(specs: unknown[], statuses: unknown[]): string {
  if (specs.length === 0) return "<none>";
  const list: string[] = [];
  const max = 2;
  for (const [i, raw] of specs.entries()) {
    const m = rec(raw);
    const type = str(m.type);
    const current = rec(statuses[i]);
    if (type === "Resource" || type === "ContainerResource") {
      const src = rec(type === "Resource" ? m.resource : m.containerResource);
      const target = rec(src.target);
      const cur = rec(rec(type === "Resource" ? current.resource : current.containerResource).current);
      const prefix = `${str(src.name)}: `;
      if (has(target.averageValue)) {
        list.push(`${prefix}${has(cur.averageValue) ? quantity(cur.averageValue) : "<unknown>"}/${quantity(target.averageValue)}`);
      } else {
        const util = has(cur.averageUtilization) ? `${int(cur.averageUtilization)}%` : "<unknown>";
        list.push(`${prefix}${util}/${has(target.averageUtilization) ? int(target.averageUtilization) : 0}%`);
      }
    } else {
      const target = rec(rec(rec(m)[type.charAt(0).toLowerCase() + type.slice(1)]).target);
      const t = has(target.averageValue) ? quantity(target.averageValue) : has(target.value) ? quantity(target.value) : "";
      list.push(`<unknown>/${t}${has(target.averageValue) ? " (avg)" : ""}`);
    }
  }
  let ret = list.slice(0, max).join(", ");
  if (list.length > max) ret += ` + ${list.length - max} more...`;
  return ret;
}

function printHorizontalPodAutoscaler(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  const ref = rec(spec.scaleTargetRef);
  return {
    cells: [
      name(obj),
      `${str(ref.kind)}/${str(ref.name)}`,
      hpaTargets(arr(spec.metrics), arr(status.currentMetrics)),
      has(spec.minReplicas) ? int(spec.minReplicas) : "<unset>",
      int(spec.maxReplicas),
      int(status.currentReplicas),
      age(obj, now),
    ],
  };
}

function intOrString(v: unknown): string {
  return typeof v === "number" ? String(Math.trunc(v)) : str(v);
}

function printPodDisruptionBudget(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  return {
    cells: [
      name(obj),
      has(spec.minAvailable) ? intOrString(spec.minAvailable) : "N/A",
      has(spec.maxUnavailable) ? intOrString(spec.maxUnavailable) : "N/A",
      int(rec(obj.status).disruptionsAllowed),
      age(obj, now),
    ],
  };
}

function printBinding(obj: KubeObject, now: Date): Printed {
  const roleRef = rec(obj.roleRef);
  const users: string[] = [];
  const groups: string[] = [];
  const serviceAccounts: string[] = [];
  for (const raw of arr(obj.subjects)) {
    const s = rec(raw);
    if (str(s.kind) === "ServiceAccount") serviceAccounts.push(`${str(s.namespace)}:${str(s.name)}`);
    else if (str(s.kind) === "User") users.push(str(s.name));
    else if (str(s.kind) === "Group") groups.push(str(s.name));
  }
  return { cells: [name(obj), `${str(roleRef.kind)}/${str(roleRef.name)}`, age(obj, now), users.join(", "), groups.join(", "), serviceAccounts.join(", ")] };
}

function printLease(obj: KubeObject, now: Date): Printed {
  return { cells: [name(obj), str(rec(obj.spec).holderIdentity), age(obj, now)] };
}

function printPriorityClass(obj: KubeObject, now: Date): Printed {
  const policy = has(obj.preemptionPolicy) ? str(obj.preemptionPolicy) : "";
  return { cells: [name(obj), int(obj.value), obj.globalDefault === true, age(obj, now), policy] };
}

/**
 * A CRD column's cell (tableconvertor ConvertToTable): a `string` column prints the value as
 * kubectl's JSONPath printer would (a number as its digits); an absent value is a null cell.
 */
function crdStringCell(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  return typeof v === "string" ? v : JSON.stringify(v);
}

function printClusterNetworkPolicy(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const created = rec(obj.metadata).creationTimestamp;
  return { cells: [name(obj), crdStringCell(spec.tier), crdStringCell(spec.priority), has(created) ? age(obj, now) : null] };
}

/** NetworkChaos: spec fields and status.totals as the CRD's columns print them (absent: null, as kubectl shows <none>). */
function printNetworkChaos(obj: KubeObject, now: Date): Printed {
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  const totals = rec(status.totals);
  const created = rec(obj.metadata).creationTimestamp;
  const count = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  return {
    cells: [
      name(obj),
      crdStringCell(spec.action ?? "netem"),
      crdStringCell(spec.direction ?? "to"),
      crdStringCell(spec.duration),
      crdStringCell(status.phase),
      count(totals.packets),
      count(totals.delayed),
      count(totals.dropped),
      has(created) ? age(obj, now) : null,
      crdStringCell(rec(spec.delay).latency),
      crdStringCell(rec(spec.loss).loss),
      count(totals.duplicated),
      count(totals.corrupted),
      count(totals.reordered),
    ],
  };
}

function printDefault(obj: KubeObject): Printed {
  const ms = timeMs(rec(obj.metadata).creationTimestamp);
  // Go's zero time formats as 0001-01-01T00:00:00Z.
  const created = ms === undefined ? "0001-01-01T00:00:00Z" : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  return { cells: [name(obj), created] };
}

const PRINTERS: Record<string, Printer> = {
  Pod: printPod,
  Service: printService,
  Node: printNode,
  Namespace: printNamespace,
  Deployment: printDeployment,
  ReplicaSet: printReplicaSet,
  EndpointSlice: printEndpointSlice,
  Endpoints: printEndpoints,
  Event: printEvent,
  NetworkPolicy: printNetworkPolicy,
  Ingress: printIngress,
  IngressClass: printIngressClass,
  ServiceAccount: printServiceAccount,
  ConfigMap: printConfigMap,
  Secret: printSecret,
  LimitRange: printCreatedAt,
  ResourceQuota: printResourceQuota,
  PersistentVolumeClaim: printPersistentVolumeClaim,
  StatefulSet: printStatefulSet,
  DaemonSet: printDaemonSet,
  Job: printJob,
  CronJob: printCronJob,
  HorizontalPodAutoscaler: printHorizontalPodAutoscaler,
  PodDisruptionBudget: printPodDisruptionBudget,
  Role: printCreatedAt,
  ClusterRole: printCreatedAt,
  RoleBinding: printBinding,
  ClusterRoleBinding: printBinding,
  Lease: printLease,
  PriorityClass: printPriorityClass,
  ClusterNetworkPolicy: printClusterNetworkPolicy,
  NetworkChaos: printNetworkChaos,
};

function rowObject(obj: KubeObject, includeObject: IncludeObject): TableRow["object"] {
  switch (includeObject) {
    case "None":
      return undefined;
    case "Object":
      return obj;
    case "Metadata":
      return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: obj.metadata };
  }
}

/**
 * The Table of a kind's objects: a list (pass listMeta), a single object, or one watch event's
 * object. Cells include the priority-1 (wide) columns.
 */
/** A Table's ListMeta: the list's, or a single object's resourceVersion (a get). */
function tableMetadata(objects: KubeObject[], opts: ToTableOptions): Table["metadata"] {
  const metadata: Table["metadata"] = {};
  if (opts.listMeta) {
    if (opts.listMeta.resourceVersion) metadata.resourceVersion = opts.listMeta.resourceVersion;
    if (opts.listMeta.continue) metadata.continue = opts.listMeta.continue;
    if (opts.listMeta.remainingItemCount !== undefined) metadata.remainingItemCount = opts.listMeta.remainingItemCount;
  } else if (objects.length === 1) {
    const rv = str(rec(objects[0]?.metadata).resourceVersion);
    if (rv) metadata.resourceVersion = rv;
  }
  return metadata;
}

export function toTable(kind: string, objects: KubeObject[], opts: ToTableOptions): Table {
  const printer = PRINTERS[kind];
  const rows = objects.map((obj): TableRow => {
    const printed = printer ? printer(obj, opts.now) : printDefault(obj);
    const row: TableRow = { cells: printed.cells };
    if (printed.conditions) row.conditions = printed.conditions;
    const object = rowObject(obj, opts.includeObject);
    if (object !== undefined) row.object = object;
    return row;
  });

  const metadata = tableMetadata(objects, opts);

  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata,
    columnDefinitions: opts.noHeaders ? [] : columnDefinitions(kind),
    rows,
  };
}

// ---------------------------------------------------------------------------------------------
// Kinds served from stored CRDs (apiextensions-apiserver pkg/registry/customresource/tableconvertor)

/** The Table of any served kind: a CRD-served kind prints its version's additionalPrinterColumns. */
export function resourceTable(r: ResourceInfo, objects: KubeObject[], opts: ToTableOptions): Table {
  if (!r.custom) return toTable(r.kind, objects, opts);
  return customResourceTable(r.custom.printerColumns, objects, opts);
}

/**
 * tableconvertor.New and ConvertToTable: Name, then each column (its description, or "Custom
 * resource definition column (in JSONPath format): PATH"); a cell is the path's first result,
 * printed as the column's type says (cellForJSONValue), null when the path finds nothing.
 */
export function customResourceTable(columns: readonly PrinterColumn[], objects: KubeObject[], opts: ToTableOptions): Table {
  const paths: Array<JsonPathStep[] | undefined> = columns.map((c) => {
    const parsed = parseJsonPath(c.jsonPath);
    return parsed.kind === "ok" ? parsed.steps : undefined;
  });
  const rows = objects.map((obj): TableRow => {
    const cells: unknown[] = [name(obj)];
    columns.forEach((c, i) => {
      const steps = paths[i];
      const found = steps ? evalJsonPath(steps, obj) : [];
      cells.push(found.length === 0 ? null : customCell(c.type, found[0], opts.now));
    });
    const row: TableRow = { cells };
    const object = rowObject(obj, opts.includeObject);
    if (object !== undefined) row.object = object;
    return row;
  });
  const metadata = tableMetadata(objects, opts);
  const definitions = [NAME(), ...columns.map((c) => col(c.name, c.description || crdColumn(c.jsonPath), c.priority, c.type, c.format))];
  return { kind: "Table", apiVersion: "meta.k8s.io/v1", metadata, columnDefinitions: opts.noHeaders ? [] : definitions, rows };
}

/** cellForJSONValue, and a string column printed as the JSONPath printer prints a value. */
function customCell(type: string, v: unknown, now: Date): unknown {
  if (v === undefined || v === null) return null;
  switch (type) {
    case "string":
      return crdStringCell(v);
    case "integer":
      return typeof v === "number" && Number.isFinite(v) ? Math.trunc(v) : null;
    case "number":
      return typeof v === "number" && Number.isFinite(v) ? v : null;
    case "boolean":
      return typeof v === "boolean" ? v : null;
    case "date":
      if (typeof v !== "string") return null;
      // metav1.Time's UnmarshalQueryParameter takes RFC 3339; what does not parse prints <invalid>.
      return timeMs(v) === undefined ? "<invalid>" : translateTimestampSince(v, now);
    default:
      return null;
  }
}
