/**
 * The DaemonSet controller's sync (pkg/controller/daemon/daemon_controller.go manage,
 * nodeShouldRunDaemonPod, podsShouldBeOnNode, updateDaemonSetStatus; util/daemonset_util.go
 * AddOrUpdateDaemonPodTolerations, ReplaceDaemonSetPodNodeNameNodeAffinity). Pure.
 *
 * A node should run the daemon pod when the pod, with the DaemonSet's default tolerations,
 * passes the scheduler's filters (nodeSelector, node affinity, NoSchedule/NoExecute taints, a
 * NotReady node's implicit not-ready taint); a pod already there keeps running unless a
 * NoExecute taint or the selectors say otherwise. Pods are bound by the controller itself:
 * node affinity on metadata.name plus spec.nodeName. Template updates (RollingUpdate) are not
 * rolled out to existing pods.
 */
import type { DaemonSet, DaemonSetStatus } from "kubernetes-types/apps/v1.js";
import type { Node, Pod, Toleration } from "kubernetes-types/core/v1.js";
import type { OwnerReference } from "kubernetes-types/meta/v1.js";
import { toleratesTaint } from "./nodelifecycle.ts";
import { controllerRefOf, generateName, isPodReady, podFromTemplate } from "./replicaset.ts";
import { filterNode, matchesNodeAffinity } from "./scheduler.ts";

export interface DaemonSetActions {
  create: Pod[];
  delete: Pod[];
  status: DaemonSetStatus;
}

/** AddOrUpdateDaemonPodTolerations. */
export const DAEMON_TOLERATIONS: readonly Toleration[] = [
  { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute" },
  { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" },
  { key: "node.kubernetes.io/disk-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/memory-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/pid-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/unschedulable", operator: "Exists", effect: "NoSchedule" },
];

function withDaemonTolerations(pod: Pod): Pod {
  const tolerations = [...(pod.spec?.tolerations ?? [])];
  for (const t of DAEMON_TOLERATIONS) if (!tolerations.some((x) => x.key === t.key && x.effect === t.effect)) tolerations.push(t);
  return { ...pod, spec: { ...pod.spec!, tolerations } };
}

/** nodeShouldRunDaemonPod: [shouldRun, shouldContinueRunning]. */
export function nodeShouldRunDaemonPod(ds: DaemonSet, node: Node): [boolean, boolean] {
  const pod = withDaemonTolerations({ metadata: {}, spec: structuredClone(ds.spec?.template?.spec ?? { containers: [] }) });
  const shouldRun = filterNode(pod, node) === undefined;
  if (!matchesNodeAffinity(pod, node)) return [false, false];
  const tolerations = pod.spec?.tolerations ?? [];
  const untoleratedNoExecute = (node.spec?.taints ?? []).some((t) => t.effect === "NoExecute" && !tolerations.some((x) => toleratesTaint(x, t)));
  return [shouldRun, !untoleratedNoExecute];
}

export function daemonPodFor(ds: DaemonSet, nodeName: string, podName: string): Pod {
  const meta = ds.metadata ?? {};
  const ref: OwnerReference = { apiVersion: "apps/v1", kind: "DaemonSet", name: meta.name ?? "", uid: meta.uid ?? "", controller: true, blockOwnerDeletion: true };
  const pod = withDaemonTolerations(podFromTemplate(ds.spec?.template, meta.namespace, `${meta.name}-`, podName, ref));
  pod.metadata!.labels = { ...pod.metadata!.labels, "pod-template-generation": String(meta.generation ?? 1) };
  pod.spec = {
    ...pod.spec!,
    nodeName,
    affinity: {
      ...(pod.spec?.affinity ?? {}),
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: [nodeName] }] }],
        },
      },
    },
  };
  return pod;
}

export function reconcileDaemonSet(ds: DaemonSet, nodes: readonly Node[], pods: readonly Pod[], rand: () => number): DaemonSetActions {
  const meta = ds.metadata ?? {};
  const owned = pods.filter((p) => p.metadata?.namespace === meta.namespace && controllerRefOf(p.metadata)?.uid === meta.uid && !p.metadata?.deletionTimestamp);
  const byNode = new Map<string, Pod[]>();
  for (const p of owned) {
    const n = p.spec?.nodeName ?? "";
    byNode.set(n, [...(byNode.get(n) ?? []), p]);
  }
  const create: Pod[] = [];
  const del: Pod[] = [];
  const taken = new Set(pods.filter((p) => p.metadata?.namespace === meta.namespace).map((p) => p.metadata?.name));
  let desired = 0;
  let scheduled = 0;
  let misscheduled = 0;
  let ready = 0;
  const nodeNames = new Set<string>();
  for (const node of [...nodes].sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""))) {
    const name = node.metadata?.name ?? "";
    nodeNames.add(name);
    const [shouldRun, shouldContinue] = nodeShouldRunDaemonPod(ds, node);
    const here = byNode.get(name) ?? [];
    // Failed daemon pods are deleted and replaced (podsShouldBeOnNode).
    const failed = here.filter((p) => p.status?.phase === "Failed");
    const alive = here.filter((p) => p.status?.phase !== "Failed");
    if (shouldRun) desired++;
    if (alive.length > 0 && (shouldRun || shouldContinue)) {
      if (shouldRun) scheduled++;
      else misscheduled++;
      if (alive.some(isPodReady)) ready++;
    } else if (alive.length > 0) {
      misscheduled++;
    }
    del.push(...failed);
    if (shouldRun || (shouldContinue && alive.length > 0)) {
      if (alive.length === 0 && shouldRun) {
        let podName = generateName(`${meta.name}-`, rand);
        while (taken.has(podName)) podName = generateName(`${meta.name}-`, rand);
        taken.add(podName);
        create.push(daemonPodFor(ds, name, podName));
      } else if (alive.length > 1) {
        // Keep the oldest; delete the rest.
        const sorted = [...alive].sort((a, b) => (a.metadata?.creationTimestamp ?? "").localeCompare(b.metadata?.creationTimestamp ?? "") || (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
        del.push(...sorted.slice(1));
      }
    } else {
      del.push(...alive);
    }
  }
  // Pods on nodes that are gone (pod GC removes them too; the controller does not wait).
  for (const [n, ps] of byNode) if (!nodeNames.has(n)) del.push(...ps);
  const status: DaemonSetStatus = {
    currentNumberScheduled: scheduled,
    desiredNumberScheduled: desired,
    numberMisscheduled: misscheduled,
    numberReady: ready,
    numberAvailable: ready,
    updatedNumberScheduled: scheduled,
    observedGeneration: meta.generation ?? 1,
    ...(desired - ready > 0 ? { numberUnavailable: desired - ready } : {}),
  };
  return { create, delete: del, status };
}
