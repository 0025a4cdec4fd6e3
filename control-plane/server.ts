/**
 * The control plane's node and pod registry (the API server of the walking skeleton). It keeps
 * no state of its own: every answer is computed from JetStream KV, and every allocation is
 * written with a create-if-absent, so a restarted control plane hands out nothing twice.
 */
import type { KV, NatsConnection, Subscription } from "nats";
import { formatCidr, mustParseCidr, parseCidr, vtepMac } from "../api/addressing.ts";
import { isDns1123Label, type ClusterConfig } from "../api/config.ts";
import { encodeJson, listJson, openBucket } from "../api/kv.ts";
import type { Logger } from "../api/log.ts";
import { RpcError, serve } from "../api/rpc.ts";
import {
  Buckets,
  ErrorCode,
  Subjects,
  type ContainerPort,
  type CreatePodRequest,
  type DeleteNodeRequest,
  type DeletePodRequest,
  type NodeRecord,
  type PodRecord,
  type RegisterNodeRequest,
} from "../api/types.ts";
import { formatIpv4, formatMac, parseIpv4Addr } from "../overlay/wire/common.ts";
import { allocateAddress, allocateNodeCidr } from "./ipam.ts";

export function podKey(namespace: string, name: string): string {
  return `${namespace}.${name}`;
}

export class ControlPlane {
  private subs: Subscription[] = [];

  private constructor(
    private readonly nc: NatsConnection,
    private readonly cfg: ClusterConfig,
    private readonly log: Logger,
    private readonly nodes: KV,
    private readonly pods: KV,
  ) {}

  static async start(nc: NatsConnection, cfg: ClusterConfig, log: Logger): Promise<ControlPlane> {
    const cp = new ControlPlane(nc, cfg, log, await openBucket(nc, Buckets.nodes), await openBucket(nc, Buckets.pods));
    cp.subs = [
      serve(nc, Subjects.registerNode, log, (req: RegisterNodeRequest) => cp.registerNode(req)),
      serve(nc, Subjects.deleteNode, log, (req: DeleteNodeRequest) => cp.deleteNode(req)),
      serve(nc, Subjects.listNodes, log, async () => [...(await listJson<NodeRecord>(cp.nodes)).values()]),
      serve(nc, Subjects.createPod, log, (req: CreatePodRequest) => cp.createPod(req)),
      serve(nc, Subjects.deletePod, log, (req: DeletePodRequest) => cp.deletePod(req)),
      serve(nc, Subjects.listPods, log, async () => [...(await listJson<PodRecord>(cp.pods)).values()]),
    ];
    log.info({ clusterCidr: cfg.clusterCidr, underlayCidr: cfg.underlayCidr }, "control plane serving");
    return cp;
  }

  async stop(): Promise<void> {
    for (const sub of this.subs) sub.unsubscribe();
  }

  private async registerNode(req: RegisterNodeRequest): Promise<NodeRecord> {
    if (typeof req?.name !== "string" || !isDns1123Label(req.name)) {
      throw new RpcError(ErrorCode.Invalid, `node name ${JSON.stringify(req?.name)} is not a DNS-1123 label`);
    }
    const existing = await this.nodes.get(req.name);
    if (existing?.operation === "PUT") {
      const node = existing.json<NodeRecord>();
      this.log.info({ node: node.name, podCidr: node.podCidr }, "node re-registered");
      return node;
    }
    const all = [...(await listJson<NodeRecord>(this.nodes)).values()];
    const cidr = allocateNodeCidr(
      mustParseCidr(this.cfg.clusterCidr),
      this.cfg.nodeCidrMask,
      new Set(all.map((n) => n.podCidr)),
    );
    if (cidr.kind === "exhausted") throw new RpcError(ErrorCode.Exhausted, cidr.reason);
    const ip = allocateAddress(mustParseCidr(this.cfg.underlayCidr), 2, new Set(all.map((n) => parseIpv4Addr(n.internalIp)!)));
    if (ip.kind === "exhausted") throw new RpcError(ErrorCode.Exhausted, ip.reason);
    const node: NodeRecord = {
      name: req.name,
      podCidr: formatCidr(cidr.value),
      internalIp: formatIpv4(ip.value),
      vtepMac: formatMac(vtepMac(ip.value)),
      hostAddress: req.hostAddress,
    };
    try {
      await this.nodes.create(req.name, encodeJson(node));
    } catch (err) {
      // Lost a race with another registration of the same name: the stored one wins.
      const raced = await this.nodes.get(req.name);
      if (raced?.operation === "PUT") return raced.json<NodeRecord>();
      throw err;
    }
    this.log.info({ node: node.name, podCidr: node.podCidr, internalIp: node.internalIp }, "node registered");
    return node;
  }

  private async deleteNode(req: DeleteNodeRequest): Promise<{ deleted: string }> {
    const existing = await this.nodes.get(req?.name ?? "");
    if (existing?.operation !== "PUT") throw new RpcError(ErrorCode.NotFound, `node "${req?.name}" not found`);
    await this.nodes.delete(req.name);
    this.log.info({ node: req.name }, "node deleted");
    return { deleted: req.name };
  }

  private async createPod(req: CreatePodRequest): Promise<PodRecord> {
    const namespace = req?.namespace ?? "default";
    for (const [field, value] of [["metadata.name", req?.name], ["metadata.namespace", namespace]] as const) {
      if (typeof value !== "string" || !isDns1123Label(value)) {
        throw new RpcError(ErrorCode.Invalid, `${field}: Invalid value: ${JSON.stringify(value)}: must be a DNS-1123 label`);
      }
    }
    const ports = validatePorts(req.ports ?? []);
    const nodeEntry = await this.nodes.get(req.nodeName ?? "");
    if (nodeEntry?.operation !== "PUT") throw new RpcError(ErrorCode.NotFound, `node "${req.nodeName}" not found`);
    const node = nodeEntry.json<NodeRecord>();
    const key = podKey(namespace, req.name);
    const existing = await this.pods.get(key);
    if (existing?.operation === "PUT") throw new RpcError(ErrorCode.AlreadyExists, `pod "${req.name}" already exists`);

    const onNode = [...(await listJson<PodRecord>(this.pods)).values()].filter((p) => p.nodeName === node.name);
    const ip = allocateAddress(parseCidr(node.podCidr)!, 2, new Set(onNode.map((p) => parseIpv4Addr(p.podIp)!)));
    if (ip.kind === "exhausted") throw new RpcError(ErrorCode.Exhausted, ip.reason);
    const pod: PodRecord = { namespace, name: req.name, nodeName: node.name, podIp: formatIpv4(ip.value), ports };
    await this.pods.create(key, encodeJson(pod));
    this.log.info({ pod: req.name, namespace, node: node.name, podIp: pod.podIp }, "pod created");
    return pod;
  }

  private async deletePod(req: DeletePodRequest): Promise<{ deleted: string }> {
    const key = podKey(req?.namespace ?? "default", req?.name ?? "");
    const existing = await this.pods.get(key);
    if (existing?.operation !== "PUT") throw new RpcError(ErrorCode.NotFound, `pod "${req?.name}" not found`);
    await this.pods.delete(key);
    this.log.info({ pod: req.name, namespace: req.namespace }, "pod deleted");
    return { deleted: req.name };
  }
}

function validatePorts(ports: unknown): ContainerPort[] {
  if (!Array.isArray(ports)) throw new RpcError(ErrorCode.Invalid, "spec.containers[0].ports: must be a list");
  return ports.map((p: Partial<ContainerPort>, i) => {
    const field = `spec.containers[0].ports[${i}]`;
    if (!Number.isInteger(p?.containerPort) || p.containerPort! < 1 || p.containerPort! > 65535) {
      throw new RpcError(ErrorCode.Invalid, `${field}.containerPort: Invalid value: ${JSON.stringify(p?.containerPort)}: must be between 1 and 65535`);
    }
    const protocol = p.protocol ?? "TCP";
    if (protocol !== "TCP" && protocol !== "UDP") {
      throw new RpcError(ErrorCode.Invalid, `${field}.protocol: Unsupported value: ${JSON.stringify(protocol)}: supported values: "TCP", "UDP"`);
    }
    return { containerPort: p.containerPort!, protocol };
  });
}
