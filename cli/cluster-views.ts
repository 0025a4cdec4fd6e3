/**
 * What several commands read from a running cluster the same way: the policy engine built from
 * the API's current objects (`policy explain`, `probe --verify`) and the nodes' flow records
 * (`observe`, `probe --verify`).
 */
import type { NatsConnection } from "nats";
import type { KubeClient } from "../cluster/kube-client.ts";
import { request } from "../cluster/rpc.ts";
import { Subjects, type ObserveRequest, type ObserveResponse } from "../cluster/types.ts";
import { PolicyEngine } from "../node-agent/policy/engine.ts";

/** The engine every node runs, fed the cluster's whole policy state (not bound to a node). */
export async function policyEngineOf(kube: KubeClient): Promise<PolicyEngine> {
  const [pods, namespaces, nodes, networkPolicies, clusterNetworkPolicies] = await Promise.all([
    kube.list("/api/v1/pods"),
    kube.list("/api/v1/namespaces"),
    kube.list("/api/v1/nodes"),
    kube.list("/apis/networking.k8s.io/v1/networkpolicies"),
    kube.list("/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies"),
  ]);
  const engine = new PolicyEngine();
  engine.replaceAll({ pods, namespaces, nodes, networkPolicies, clusterNetworkPolicies });
  return engine;
}

/** Each node's answer to `req`, in the order of `nodes`; undefined where a node did not answer. */
export async function observeNodes(
  nc: NatsConnection,
  nodes: readonly string[],
  req: ObserveRequest,
  onError: (node: string, message: string) => void,
): Promise<Array<ObserveResponse | undefined>> {
  return Promise.all(
    nodes.map((n) =>
      request<ObserveResponse>(nc, Subjects.node(n, "observe"), req, 5000).catch((err: unknown) => {
        onError(n, (err as Error)?.message ?? String(err));
        return undefined;
      }),
    ),
  );
}
