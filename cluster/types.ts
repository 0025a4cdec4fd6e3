/**
 * The records and messages that cross process boundaries: what the control plane stores in
 * JetStream KV and what the CLI, control plane and node-agents say to each other over NATS.
 */

/**
 * A node's network identity as the control plane allocated it: read from its Node object
 * (spec.podCIDR, the InternalIP address, flannel's backend-data annotation).
 */
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

/** A container as the node-agent emulates it: its image, command and ports pick the app. */
export interface ContainerRecord {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports: ContainerPort[];
}

/** What a node-agent needs of a Pod object to plumb its network. */
export interface PodRecord {
  namespace: string;
  name: string;
  nodeName: string;
  podIp: string;
  /** Every container's ports, flattened. */
  ports: ContainerPort[];
  containers?: ContainerRecord[];
}

export const Subjects = {
  /**
   * A new node's request for an identity (JoinNodeRequest), the only subject a bootstrap token
   * may publish on (cluster/nats-auth.ts).
   */
  joinNode: "kubewire.cp.nodes.join",
  /**
   * What a node asks of the control plane names the node last, so the NATS server lets a node
   * speak only for itself (the NodeRestriction rule, enforced by subject permissions).
   */
  registerNode: (node: string) => `kubewire.cp.nodes.register.${node}`,
  /** A node-agent's Lease renewal (LeaseRenewRequest): it may renew only its own Lease (kube-node-lease/<node>). */
  heartbeat: (node: string) => `kubewire.cp.heartbeat.${node}`,
  /** The kubelet's node status update: its Ready condition (NodeStatusRequest). */
  nodeStatus: (node: string) => `kubewire.cp.nodes.status.${node}`,
  /** The kubelet's pod status update; the control plane accepts it only for pods bound to the node. */
  podStatus: (node: string) => `kubewire.cp.pods.status.${node}`,
  /** The kubelet's last word on a gracefully deleted pod bound to it: torn down, remove it. */
  podFinalize: (node: string) => `kubewire.cp.pods.finalize.${node}`,
  /** Requests to one node-agent: kubewire.node.<node>.<verb>. */
  node: (node: string, verb: NodeVerb | "*" | ">") => `kubewire.node.${node}.${verb}`,
  /** VTEP frames for node `to` sent by node `from`: overlay.<vni>.<to>.<from> (DESIGN.md, with the sender added). */
  overlay: (vni: number | "*", to: string, from: string) => `overlay.${vni}.${to}.${from}`,
  /** Hops of a traced probe, from every node it crossed, each under its own name: kubewire.trace.<id>.<node>. */
  trace: (traceId: string, node: string) => `kubewire.trace.${traceId}.${node}`,
  /** What a node streams to a requester (captured frames, load snapshots): kubewire.stream.<node>.<id>. */
  stream: (node: string, id: string) => `kubewire.stream.${node}.${id}`,
} as const;

/** A stream id: one subject token, so a node can publish a stream only under its own name. */
export const STREAM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export type NodeVerb = "status" | "exec" | "trace" | "capture" | "logs" | "fault" | "proxy" | "observe" | "policy" | "load" | "converged";

/** Whether a node's policy engine holds a policy, and at which resourceVersion (programming latency). */
export interface PolicyStateRequest {
  kind: "NetworkPolicy" | "ClusterNetworkPolicy";
  namespace?: string;
  name: string;
}

/**
 * What a node has installed, for comparison with what the API holds (`kubewire chaos check`):
 * every part is level state the node derives from its watches, so a converged node equals the
 * same derivation from the API's objects.
 */
export interface NodeConvergence {
  /** Pod CIDRs of the other nodes routed over the VXLAN device, sorted. */
  peerRoutes: string[];
  /** Pods with a network on the node, "namespace/name", sorted. */
  pods: string[];
  /** kube-proxy's installed state (node-agent/proxy/model.ts proxyStateSummary). */
  proxy: { servicePorts: number; endpoints: number; digest: string };
  /** The policies the node's engine holds: "NetworkPolicy/ns/name" or "ClusterNetworkPolicy//name" -> resourceVersion. */
  policies: Record<string, string>;
}

export interface PolicyStateResponse {
  present: boolean;
  resourceVersion?: string;
  /** The engine's generation (bumped on every change it saw). */
  generation: number;
}

/** `kubewire observe`: a node's flow records matching these (every field optional). */
export interface ObserveRequest {
  /** Wall-clock milliseconds: records at or after. */
  since?: number;
  namespace?: string;
  pod?: string;
  verdict?: "FORWARDED" | "DROPPED";
  reason?: string;
  port?: number;
  /** Only these observations: "to-endpoint", "from-endpoint", "drop". */
  types?: string[];
  /** Only replies (true) or only the original direction (false). */
  reply?: boolean;
  limit?: number;
}

export interface ObservedFlow {
  time: number;
  node: string;
  verdict: "FORWARDED" | "DROPPED";
  observation: string;
  where: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  proto: number;
  tcpFlags: number;
  isReply: boolean;
  /** "namespace/name" of the pods at either end, when the address is a pod's. */
  srcPod?: string;
  dstPod?: string;
  reason?: string;
  detail?: string;
}

/** Flow records one `observe` reply carries at most (~250 bytes each, under NATS's 1 MiB max_payload). */
export const OBSERVE_REPLY_MAX = 2000;

export interface ObserveResponse {
  flows: ObservedFlow[];
  /** Records written on the node, and those the ring had to drop (oldest first). */
  total: number;
  evicted: number;
  /** False when the node keeps no flows (KUBEWIRE_FLOW_BUFFER=0). */
  enabled: boolean;
  /** More records matched than one reply carries: these are the newest. */
  truncated?: boolean;
}

/** A node's kube-proxy: its mode, sync counters and network programming latencies (ms, newest last). */
export interface ProxyStatus {
  mode: string;
  servicePorts: number;
  syncs: number;
  programmingLatenciesMs: number[];
  /** How many were ever measured: the list keeps only the newest. */
  programmingLatenciesTotal: number;
}

/**
 * A new node's request for its NATS identity (`kubewire join`), sent as the bootstrap user: the
 * control plane checks the token against kube-system's bootstrap-token Secret and answers with a
 * user JWT for `publicKey`, the node's own key (its seed never leaves the node).
 */
export interface JoinNodeRequest {
  token: string;
  name: string;
  publicKey: string;
}
export interface JoinNodeResponse {
  jwt: string;
}

export interface RegisterNodeRequest {
  name: string;
  hostAddress: string;
}

export interface PodStatusRequest {
  namespace: string;
  name: string;
  uid: string;
  podIp: string;
  hostIp: string;
  /** ISO time the pod network came up (status.startTime). */
  startTime: string;
  /**
   * Set when the pod's containers ran to completion (run-to-completion pods: an emulated tool
   * as the command): the phase becomes Succeeded (exit 0) or Failed, and stays so.
   */
  terminated?: { exitCode: number; startedAt: string; finishedAt: string };
}
/**
 * The kubelet's nodelease controller's renewal of kube-node-lease/<node>: renewTime from the
 * node's clock (metav1.MicroTime), leaseDurationSeconds as the kubelet's
 * --node-lease-duration-seconds.
 */
export interface LeaseRenewRequest {
  renewTime: string;
  leaseDurationSeconds: number;
}

/** The kubelet's node status update of its Ready condition (pkg/kubelet/nodestatus ReadyCondition). */
export interface NodeStatusRequest {
  name: string;
  ready: boolean;
  /** Why the node is not ready (the condition's message). */
  message?: string;
}

export interface PodFinalizeRequest {
  namespace: string;
  name: string;
  uid: string;
}
export interface LogsRequest {
  namespace: string;
  pod: string;
  tailLines?: number;
}

export interface ExecRequest {
  namespace: string;
  /** Empty or absent: the node's root netns (`kubewire exec --node NODE`). */
  pod?: string;
  /** For kubectl exec -c: which container runs the tool (all share the pod's netns). */
  container?: string;
  argv: string[];
}

/**
 * Impairments for a node's underlay link, or one pod's veth (probabilities in [0, 1], times in
 * ms). With `stats: true` nothing is set: the node answers a FaultStatsResponse.
 */
export interface FaultRequest {
  pod?: string;
  namespace?: string;
  egress?: FaultSpecRecord;
  ingress?: FaultSpecRecord;
  stats?: boolean;
}

/** What each NetworkChaos this node applies did here (cumulative counters, node-agent/faults/netem.ts). */
export interface FaultStatsResponse {
  node: string;
  faults: Array<{ key: string; packets: number; delayed: number; dropped: number; duplicated: number; corrupted: number; reordered: number }>;
}
export interface FaultSpecRecord {
  loss?: number;
  duplicate?: number;
  reorder?: number;
  corrupt?: number;
  delayMs?: number;
  jitterMs?: number;
}
export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface TraceRequest {
  namespace: string;
  pod: string;
  /** An IPv4 address, or a name the pod resolves first. */
  dst: string;
  traceId: string;
  /** The probe: an ICMP echo request (default), a TCP SYN or a UDP datagram to `port`. */
  protocol?: "icmp" | "tcp" | "udp";
  port?: number;
  /** For a UDP probe to port 53: the name the DNS query asks for (A). */
  query?: string;
}

/** Where the hops of a traced probe's reply start: `kubewire trace` prints them as a second part. */
export const REPLY_SEQ = 1000;

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
  /** The id of the stream the node publishes captured frames to (Subjects.stream(node, id)), then an empty end-of-capture message. */
  stream: string;
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
  /** The nats-server the node-agent is connected to now (its server_name). */
  natsServer?: string;
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
  /** The requester may not do this (a node acting on another node's objects: NodeRestriction). */
  Forbidden: "Forbidden",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

// ---------------------------------------------------------------------------------------------
// `kubewire load`: the node verb "load" runs load clients and servers inside pods' netns.

/** netperf's test names where they fit (TCP_RR, TCP_STREAM, UDP_RR), and HTTP to agnhost netexec. */
export type LoadScenario = "http" | "tcp-rr" | "tcp-stream" | "udp-rr";

/** What one load client runs (a share of the whole run's connections and rate). */
export interface LoadWorkload {
  scenario: LoadScenario;
  /** Where connections go, spread round-robin (a pod IP, a ClusterIP, a node's host address). */
  targets: { ip: string; port: number }[];
  connections: number;
  /** Requests/s over all this client's connections; 0: closed loop, as fast as answers come. */
  rate: number;
  durationMs: number;
  /** A request unanswered this long (or a connect not done) is a timeout error. */
  timeoutMs: number;
  requestBytes: number;
  responseBytes: number;
  /** How often an interval snapshot is published. */
  intervalMs: number;
  /** false: every request on a connection of its own (each one load-balanced afresh). Default true. */
  reuse?: boolean;
}

export interface LoadRequest {
  /** client: run a workload and publish snapshots to Subjects.stream(node, stream); server: serve tcp-rr/tcp-stream/udp-rr on `port`; stop: end the run's clients and servers on this node now. */
  op: "client" | "server" | "stop";
  runId: string;
  namespace?: string;
  pod?: string;
  /** client: the name its snapshots carry. */
  worker?: string;
  stream?: string;
  workload?: LoadWorkload;
  /** server: the port, the scenario and sizes it answers with, and how long it may live at most. */
  port?: number;
  scenario?: LoadScenario;
  requestBytes?: number;
  responseBytes?: number;
  lifetimeMs?: number;
}

/** One server endpoint's share of a client's results (the endpoint as the client's node saw it after DNAT). */
export interface LoadEndpointStats {
  /** The server's IP after kube-proxy's DNAT (a pod IP), or the address connected to. */
  endpoint: string;
  requests: number;
  errors: Record<string, number>;
  bytesSent: number;
  bytesReceived: number;
  connects: number;
  /** Latencies in microseconds, HdrHistogram compressed base64 (hdr-histogram-js encodeIntoCompressedBase64). */
  latency: string;
  connectLatency: string;
}

/** What a load client publishes to its stream: interval snapshots while it runs, then one final. */
export interface LoadSnapshot {
  kind: "interval" | "final";
  runId: string;
  worker: string;
  /** The client's node ("host" for the CLI's own NodePort clients). */
  node: string;
  seq: number;
  /** Since the client started its load. */
  elapsedMs: number;
  /** Requests scheduled so far (open loop), requests sent so far. */
  intended: number;
  sent: number;
  /** This interval only: completed requests, errors, bytes, latencies (encoded as above). */
  interval: { requests: number; errors: number; bytesSent: number; bytesReceived: number; latency: string };
  /** final: cumulative, by endpoint. */
  endpoints?: LoadEndpointStats[];
  /** final: set when the client could not run at all. */
  error?: string;
}
