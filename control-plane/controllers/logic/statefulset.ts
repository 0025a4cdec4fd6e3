/**
 * The StatefulSet controller's sync (pkg/controller/statefulset/stateful_set_control.go
 * updateStatefulSet, stateful_set_utils.go newStatefulSetPod, initIdentity). Pure.
 *
 * Pods are named `<set>-<ordinal>`, with hostname = pod name and subdomain = spec.serviceName.
 * OrderedReady: one pod at a time, the next only when every lower ordinal is Running and Ready;
 * scale down from the highest ordinal, one at a time, once the rest are Running and Ready.
 * Parallel: all at once both ways. A failed or deleted pod comes back with the same name once
 * the old one is gone. Template updates are not rolled out to existing pods; no volume claims.
 */
import type { StatefulSet, StatefulSetStatus } from "kubernetes-types/apps/v1.js";
import type { Pod } from "kubernetes-types/core/v1.js";
import type { OwnerReference } from "kubernetes-types/meta/v1.js";
import { controllerRefOf, isPodReady, podFromTemplate } from "./replicaset.ts";

export const StatefulSetLabel = {
  PodName: "statefulset.kubernetes.io/pod-name",
  PodIndex: "apps.kubernetes.io/pod-index",
} as const;

export interface StatefulSetActions {
  create: Pod[];
  delete: Pod[];
  status: StatefulSetStatus;
}

/** The ordinal of a pod named `<set>-<n>`, or undefined. */
export function ordinalOf(setName: string, podName: string): number | undefined {
  if (!podName.startsWith(`${setName}-`)) return undefined;
  const rest = podName.slice(setName.length + 1);
  return /^(0|[1-9]\d*)$/.test(rest) ? Number(rest) : undefined;
}

export function statefulPodFor(sts: StatefulSet, ordinal: number): Pod {
  const meta = sts.metadata ?? {};
  const name = `${meta.name}-${ordinal}`;
  const ref: OwnerReference = { apiVersion: "apps/v1", kind: "StatefulSet", name: meta.name ?? "", uid: meta.uid ?? "", controller: true, blockOwnerDeletion: true };
  const pod = podFromTemplate(sts.spec?.template, meta.namespace, "", name, ref);
  delete pod.metadata!.generateName;
  pod.metadata!.labels = { ...pod.metadata!.labels, [StatefulSetLabel.PodName]: name, [StatefulSetLabel.PodIndex]: String(ordinal) };
  pod.spec = { ...pod.spec!, hostname: name, ...(sts.spec?.serviceName ? { subdomain: sts.spec.serviceName } : {}) };
  return pod;
}

function runningAndReady(p: Pod): boolean {
  return p.status?.phase === "Running" && isPodReady(p);
}

export function reconcileStatefulSet(sts: StatefulSet, pods: readonly Pod[]): StatefulSetActions {
  const meta = sts.metadata ?? {};
  const setName = meta.name ?? "";
  const replicas = sts.spec?.replicas ?? 1;
  const parallel = sts.spec?.podManagementPolicy === "Parallel";
  const owned = new Map<number, Pod>();
  for (const p of pods) {
    if (p.metadata?.namespace !== meta.namespace || controllerRefOf(p.metadata)?.uid !== meta.uid) continue;
    const ord = ordinalOf(setName, p.metadata?.name ?? "");
    if (ord !== undefined) owned.set(ord, p);
  }
  // Any pod of that name (another owner's, or one being deleted) blocks its creation.
  const namesInUse = new Set(pods.filter((p) => p.metadata?.namespace === meta.namespace).map((p) => p.metadata?.name));
  const create: Pod[] = [];
  const del: Pod[] = [];

  const ready = [...owned.values()].filter((p) => !p.metadata?.deletionTimestamp && isPodReady(p)).length;
  const status: StatefulSetStatus = {
    ...(sts.status ?? {}),
    observedGeneration: meta.generation ?? 1,
    replicas: [...owned.values()].filter((p) => !p.metadata?.deletionTimestamp).length,
    readyReplicas: ready,
    availableReplicas: ready,
    currentReplicas: [...owned.values()].filter((p) => !p.metadata?.deletionTimestamp).length,
    updatedReplicas: [...owned.values()].filter((p) => !p.metadata?.deletionTimestamp).length,
  };
  if (meta.deletionTimestamp) return { create, delete: del, status };

  // Failed pods are deleted, to be recreated under the same name.
  for (const [ord, p] of owned) {
    if (ord < replicas && (p.status?.phase === "Failed" || p.status?.phase === "Succeeded") && !p.metadata?.deletionTimestamp) {
      del.push(p);
      if (!parallel) return { create, delete: del, status };
    }
  }

  for (let ord = 0; ord < replicas; ord++) {
    const p = owned.get(ord);
    if (!p) {
      const name = `${setName}-${ord}`;
      if (!namesInUse.has(name)) create.push(statefulPodFor(sts, ord));
      if (!parallel) return { create, delete: del, status };
      continue;
    }
    if (!parallel && (p.metadata?.deletionTimestamp || !runningAndReady(p))) return { create, delete: del, status };
  }

  const condemned = [...owned.entries()].filter(([ord]) => ord >= replicas).sort((a, b) => b[0] - a[0]);
  if (parallel) {
    del.push(...condemned.map(([, p]) => p).filter((p) => !p.metadata?.deletionTimestamp));
  } else if (condemned.length > 0) {
    // One at a time from the highest; wait while one is still terminating.
    if ([...owned.values()].every((p) => !p.metadata?.deletionTimestamp)) del.push(condemned[0]![1]);
  }
  return { create, delete: del, status };
}
