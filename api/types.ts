/**
 * The records and messages that cross process boundaries: what the control plane stores in
 * JetStream KV and what the CLI, control plane and node-agents say to each other over NATS.
 */

/** A node as the control plane allocated it; stored in KV bucket NODES under its name. */
export interface NodeRecord {
  name: string;
  /** The node's pod CIDR, e.g. 10.244.1.0/24. */
  podCidr: string;
  /** Emulated underlay address (Kubernetes InternalIP), e.g. 172.31.0.3. */
  internalIp: string;
  /** flannel.1's MAC, what remote FDB and ARP entries point at. */
  vtepMac: string;
  /** Real address for sockets of this node (NodePorts, DNS). */
  hostAddress: string;
}

export interface ContainerPort {
  containerPort: number;
  protocol: "TCP" | "UDP";
}

/** A pod; stored in KV bucket PODS under "<namespace>.<name>". */
export interface PodRecord {
  namespace: string;
  name: string;
  nodeName: string;
  podIp: string;
  ports: ContainerPort[];
}

export const Buckets = {
  nodes: "kubewire_nodes",
  pods: "kubewire_pods",
} as const;

export const Subjects = {
  registerNode: "kubewire.cp.nodes.register",
  deleteNode: "kubewire.cp.nodes.delete",
  listNodes: "kubewire.cp.nodes.list",
  createPod: "kubewire.cp.pods.create",
  deletePod: "kubewire.cp.pods.delete",
  listPods: "kubewire.cp.pods.list",
  /** Requests to one node-agent: kubewire.node.<node>.<verb>. */
  node: (node: string, verb: NodeVerb) => `kubewire.node.${node}.${verb}`,
  /** VTEP frames for one node: overlay.<vni>.<node> (DESIGN.md). */
  overlay: (vni: number, node: string) => `overlay.${vni}.${node}`,
  /** Hops of a traced probe, from every node it crossed. */
  trace: (traceId: string) => `kubewire.trace.${traceId}`,
} as const;

export type NodeVerb = "status" | "exec" | "trace" | "capture";

export interface RegisterNodeRequest {
  name: string;
  hostAddress: string;
}
export interface DeleteNodeRequest {
  name: string;
}
export interface CreatePodRequest {
  namespace: string;
  name: string;
  nodeName: string;
  ports: ContainerPort[];
}
export interface DeletePodRequest {
  namespace: string;
  name: string;
}

export interface ExecRequest {
  namespace: string;
  pod: string;
  argv: string[];
}
export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface TraceRequest {
  namespace: string;
  pod: string;
  dst: string;
  traceId: string;
}

/** One step a traced packet took, in the order it took them. */
export interface TraceHop {
  seq: number;
  node: string;
  /** Where: a device, table or transport ("pod eth0", "cni0", "route", "NATS"). */
  point: string;
  /** What happened there, in words a reader of `ip route`/`bridge fdb` would use. */
  detail: string;
  /** Set on the last hop: the packet was delivered or dropped here. */
  verdict?: "delivered" | "dropped";
}

export interface CaptureRequest {
  dev: string;
  /** Subject the node publishes captured frames to, then an empty end-of-capture message. */
  inbox: string;
  count?: number;
  seconds?: number;
}
/** One captured frame as the node publishes it. */
export interface CapturedFrame {
  timestampMicros: number;
  frame: Uint8Array;
}

export interface NodeStatus {
  node: NodeRecord;
  pods: string[];
  devices: string[];
  counters: Record<string, number>;
}

/** Error reply of any request: a stable code and one human line. */
export interface ErrorReply {
  error: { code: ErrorCode; message: string };
}
export const ErrorCode = {
  NotFound: "NotFound",
  AlreadyExists: "AlreadyExists",
  Invalid: "Invalid",
  Exhausted: "Exhausted",
  Internal: "Internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
