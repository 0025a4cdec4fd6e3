/**
 * The OpenAPI v3 schemas of the kinds this API server serves that Kubernetes' own API does not
 * define: kinds a SIG project defines with a CustomResourceDefinition, which this server serves
 * built in (cluster/resources.ts marks them `source: "crd"`). kubernetes-models has no
 * definitions for them, so they are written here by hand from the project's CRD and copied into
 * openapi-schemas.json by tools/gen-openapi-schemas.ts (`npm run gen:openapi`), beside the
 * generated ones; everything at run time (OpenAPI documents, structural checks, validation)
 * reads them from there.
 *
 * Each definition is the CRD's `openAPIV3Schema` as kube-apiserver publishes a CRD's schema in
 * /openapi/v3: named by the reversed group ("io.k8s.networking.policy.v1alpha2.ClusterNetworkPolicy"
 * for policy.networking.k8s.io/v1alpha2), `metadata` a reference to ObjectMeta, and a `<Kind>List`
 * beside it. Every validation keyword of the CRD is kept (enum, minimum/maximum, minItems/maxItems,
 * minProperties/maxProperties, maxLength, required, x-kubernetes-list-type, and the CEL rules of
 * x-kubernetes-validations): validation.ts enforces them as apiextensions-apiserver does. The
 * descriptions are this project's summaries of the upstream field documentation.
 *
 * ClusterNetworkPolicy: kubernetes-sigs/network-policy-api, API version v1alpha2 (the kind that
 * replaced AdminNetworkPolicy and BaselineAdminNetworkPolicy), the standard channel of bundle
 * v0.2.0: config/crd/standard/policy.networking.k8s.io_clusternetworkpolicies.yaml and
 * apis/v1alpha2/clusternetworkpolicy_types.go as of main at 0eec1b0 (2026-07-01; the CRD last
 * changed in cadb73e, 2026-04-21). The experimental channel's `nodes` and `domainNames` egress
 * peers (and its named-port CEL rule, which only concerns them) are not served.
 */

import { GO_DURATION_PATTERN, PERCENT_PATTERN, TC_RATE_PATTERN } from "../../cluster/syntax.ts";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

/** The descriptions of TypeMeta's fields, as the generator reads them from kubernetes-models. */
export interface TypeMetaDescriptions {
  apiVersion: string;
  kind: string;
}

const META = "io.k8s.apimachinery.pkg.apis.meta.v1";

function ref(name: string, description: string): JsonObject {
  return { description, allOf: [{ $ref: `#/components/schemas/${name}` }] };
}

/** metav1.LabelSelector as controller-gen inlines it into a CRD schema. */
function labelSelector(description: string): JsonObject {
  return {
    description,
    type: "object",
    properties: {
      matchExpressions: {
        description: "A list of label selector requirements; all of them must hold (they are ANDed).",
        type: "array",
        items: {
          description: "A requirement on one label: its key, an operator, and the values the operator compares against.",
          type: "object",
          properties: {
            key: { description: "The label key the requirement applies to.", type: "string" },
            operator: { description: "How the key relates to the values: In, NotIn, Exists or DoesNotExist.", type: "string" },
            values: {
              description: "The values compared against. Non-empty for In and NotIn, empty for Exists and DoesNotExist.",
              type: "array",
              items: { type: "string" },
              "x-kubernetes-list-type": "atomic",
            },
          },
          required: ["key", "operator"],
        },
        "x-kubernetes-list-type": "atomic",
      },
      matchLabels: {
        description: "Labels that must all be present with these values; each pair is the same as a matchExpressions requirement with operator In and that one value.",
        type: "object",
        additionalProperties: { type: "string" },
      },
    },
    "x-kubernetes-map-type": "atomic",
  };
}

/** NamespacedPod: pods picked by a namespace selector and a pod selector together. */
function namespacedPod(description: string): JsonObject {
  return {
    description,
    type: "object",
    properties: {
      namespaceSelector: labelSelector("Selects the namespaces the pods are in, by the namespaces' labels. An empty selector selects all namespaces."),
      podSelector: labelSelector("Selects pods within the selected namespaces, by the pods' labels. An empty selector selects all pods."),
    },
    required: ["podSelector"],
  };
}

function portNumber(description: string): JsonObject {
  return { description, type: "integer", format: "int32", minimum: 1, maximum: 65535 };
}

/** Port: a single port number or a range; exactly one of them. */
function destinationPort(): JsonObject {
  return {
    description: "The destination port to match: exactly one of a port number or a range of ports.",
    type: "object",
    minProperties: 1,
    maxProperties: 1,
    properties: {
      number: portNumber("A single port number."),
      range: {
        description: "A contiguous, inclusive range of port numbers.",
        type: "object",
        properties: {
          end: portNumber("The last port of the range; greater than start."),
          start: portNumber("The first port of the range; less than end."),
        },
        required: ["end", "start"],
        "x-kubernetes-validations": [{ rule: "self.start < self.end", message: "Start port must be less than End port" }],
      },
    },
  };
}

function protocolMatch(protocol: string): JsonObject {
  return {
    description: `${protocol}-specific matches.`,
    type: "object",
    minProperties: 1,
    properties: { destinationPort: destinationPort() },
  };
}

function protocols(): JsonObject {
  return {
    description:
      "Protocol-specific attributes (such as the destination port) the traffic must match. Without it the rule matches traffic of every protocol and port. At most 25 entries.",
    type: "array",
    minItems: 1,
    maxItems: 25,
    items: {
      description: "One protocol-specific match. Exactly one field must be set.",
      type: "object",
      minProperties: 1,
      maxProperties: 1,
      properties: {
        destinationNamedPort: {
          description: "Matches the destination port that a pod's container names so (its ContainerPort name). Not usable with peers that have no named ports, such as networks.",
          type: "string",
        },
        sctp: protocolMatch("SCTP"),
        tcp: protocolMatch("TCP"),
        udp: protocolMatch("UDP"),
      },
    },
  };
}

function action(direction: "ingress" | "egress"): JsonObject {
  const accept =
    direction === "ingress"
      ? "Accept: the traffic (with its replies and related ICMP) is allowed, and no further ClusterNetworkPolicy or NetworkPolicy ingress rule is evaluated for it."
      : "Accept: the traffic (with its replies and related ICMP) is allowed, and no further ClusterNetworkPolicy or NetworkPolicy egress rule is evaluated for it; ingress rules at the destination still apply.";
  return {
    description: `What the rule does with the traffic it matches. ${accept} Deny: the traffic is dropped, and no further rule is evaluated. Pass: the remaining ClusterNetworkPolicy rules of this tier are skipped, and evaluation goes on in the next tier (NetworkPolicy after Admin, the default allow after Baseline).`,
    type: "string",
    enum: ["Accept", "Deny", "Pass"],
  };
}

const RULE_NAME: JsonObject = {
  description: "A name for the rule, at most 100 characters, for the implementation's logs, metrics and error reports.",
  type: "string",
  maxLength: 100,
};

const PEER_NAMESPACES = "All pods of the namespaces this selector selects (host-network pods are not included).";
const PEER_PODS = "The pods a namespace selector and a pod selector select together (host-network pods are not included).";
const PEER_FAIL_CLOSED =
  "Exactly one field must be set; an implementation that finds none set (an unknown peer type from a newer API version) fails closed: an Accept rule then matches nothing, a Deny or Pass rule everything.";

function ingressRule(): JsonObject {
  return {
    description: "A rule on traffic to the pods the policy's subject selects, from the peers it lists.",
    type: "object",
    properties: {
      action: action("ingress"),
      from: {
        description: "The sources of the traffic the rule applies to: it matches when any of them does. Between 1 and 25 entries.",
        type: "array",
        minItems: 1,
        maxItems: 25,
        items: {
          description: `A source of traffic. ${PEER_FAIL_CLOSED}`,
          type: "object",
          minProperties: 1,
          maxProperties: 1,
          properties: {
            namespaces: labelSelector(PEER_NAMESPACES),
            pods: namespacedPod(PEER_PODS),
          },
        },
      },
      name: RULE_NAME,
      protocols: protocols(),
    },
    required: ["action", "from"],
  };
}

function egressRule(): JsonObject {
  return {
    description: "A rule on traffic from the pods the policy's subject selects, to the peers it lists.",
    type: "object",
    properties: {
      action: action("egress"),
      name: RULE_NAME,
      protocols: protocols(),
      to: {
        description: "The destinations of the traffic the rule applies to: it matches when any of them does. Between 1 and 25 entries.",
        type: "array",
        minItems: 1,
        maxItems: 25,
        items: {
          description: `A destination of traffic. ${PEER_FAIL_CLOSED}`,
          type: "object",
          minProperties: 1,
          maxProperties: 1,
          properties: {
            namespaces: labelSelector(PEER_NAMESPACES),
            networks: {
              description:
                "Destinations by CIDR block, IPv4 or IPv6 (\"10.0.0.0/8\", \"fd00::/8\"), for what lies outside the cluster; traffic inside the cluster is matched too, so 0.0.0.0/0 covers pod-to-pod traffic as well. ICMP to these addresses matches. Between 1 and 25 entries.",
              type: "array",
              minItems: 1,
              maxItems: 25,
              items: {
                description: "An IP address range in CIDR notation.",
                type: "string",
                maxLength: 43,
                "x-kubernetes-validations": [{ rule: "isCIDR(self)", message: "Invalid CIDR format provided" }],
              },
              "x-kubernetes-list-type": "set",
            },
            pods: namespacedPod(PEER_PODS),
          },
        },
      },
    },
    required: ["action", "to"],
  };
}

function condition(): JsonObject {
  return {
    description: "One aspect of the object's current state (metav1.Condition).",
    type: "object",
    properties: {
      lastTransitionTime: { description: "When the condition last changed status.", type: "string", format: "date-time" },
      message: { description: "A human-readable message about the transition; may be empty.", type: "string", maxLength: 32768 },
      observedGeneration: { description: "The metadata.generation the condition was set for.", type: "integer", format: "int64", minimum: 0 },
      reason: {
        description: "A CamelCase identifier of the reason for the last transition; not empty.",
        type: "string",
        minLength: 1,
        maxLength: 1024,
        pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
      },
      status: { description: "The condition's status: True, False or Unknown.", type: "string", enum: ["True", "False", "Unknown"] },
      type: {
        description: "The type of the condition, CamelCase or foo.example.com/CamelCase.",
        type: "string",
        maxLength: 316,
        pattern: "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
      },
    },
    required: ["lastTransitionTime", "message", "reason", "status", "type"],
  };
}

function clusterNetworkPolicy(typeMeta: TypeMetaDescriptions): JsonObject {
  return {
    description:
      "ClusterNetworkPolicy is a cluster-wide network policy set by the cluster's administrators. Its Admin tier is evaluated before every NetworkPolicy, its Baseline tier after them; within a tier, policies are taken by priority and rules in order.",
    type: "object",
    properties: {
      apiVersion: { description: typeMeta.apiVersion, type: "string" },
      kind: { description: typeMeta.kind, type: "string" },
      metadata: ref(`${META}.ObjectMeta`, "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
      spec: {
        description: "The desired behavior of the ClusterNetworkPolicy.",
        type: "object",
        properties: {
          egress: {
            description:
              "The rules on traffic leaving the selected pods, at most 25, in order of precedence (the first matching rule decides). A policy without egress rules does not affect egress traffic.",
            type: "array",
            maxItems: 25,
            items: egressRule(),
          },
          ingress: {
            description:
              "The rules on traffic reaching the selected pods, at most 25, in order of precedence (the first matching rule decides). A policy without ingress rules does not affect ingress traffic.",
            type: "array",
            maxItems: 25,
            items: ingressRule(),
          },
          priority: {
            description:
              "The policy's precedence within its tier, from 0 to 1000: lower values are evaluated first. Which of two policies of the same tier and priority that both match a connection applies is up to the implementation, so give overlapping policies distinct priorities.",
            type: "integer",
            format: "int32",
            minimum: 0,
            maximum: 1000,
          },
          subject: {
            description: "The pods the policy applies to (host-network pods are never selected). Exactly one field must be set.",
            type: "object",
            minProperties: 1,
            maxProperties: 1,
            properties: {
              namespaces: labelSelector("All pods of the namespaces this selector selects."),
              pods: namespacedPod("The pods a namespace selector and a pod selector select together."),
            },
          },
          tier: {
            description:
              "The tier the policy belongs to. Admin policies are evaluated before every NetworkPolicy and cannot be overridden by them; Baseline policies are evaluated after the NetworkPolicies and apply only to traffic no NetworkPolicy decided. A connection no tier decides is allowed, the Kubernetes default.",
            type: "string",
            enum: ["Admin", "Baseline"],
          },
        },
        required: ["priority", "subject", "tier"],
      },
      status: {
        description: "The status the implementation reports.",
        type: "object",
        properties: {
          conditions: {
            type: "array",
            items: condition(),
            "x-kubernetes-list-map-keys": ["type"],
            "x-kubernetes-list-type": "map",
          },
        },
        required: ["conditions"],
      },
    },
    required: ["metadata", "spec"],
  };
}

// ---------------------------------------------------------------------------------------------
// NetworkChaos (chaos.kubewire.io/v1alpha1): kubewire's own kind, after Chaos Mesh's NetworkChaos
// (api/v1alpha1/networkchaos_types.go) where it fits; node-agent/faults/spec.ts reads it.
// ---------------------------------------------------------------------------------------------

const percent = (description: string): JsonObject => ({ description: `${description} A percentage as a string, "0" to "100" ("25" is 25 %).`, type: "string", pattern: PERCENT_PATTERN });
const duration = (description: string): JsonObject => ({ description: `${description} A Go duration ("50ms", "1.5s", "2m").`, type: "string", pattern: GO_DURATION_PATTERN });

function chaosSelector(description: string): JsonObject {
  return {
    description,
    type: "object",
    properties: {
      labelSelectors: { description: "Pods with all of these labels. With namespaces or labelSelectors the end is a set of pods (namespaces default to the object's own).", type: "object", additionalProperties: { type: "string" } },
      namespaces: { description: "Pods in these namespaces.", type: "array", maxItems: 64, items: { type: "string", maxLength: 63 } },
      nodeSelectors: { description: "Nodes with all of these labels: their pods, or the whole nodes when no pod criterion is given.", type: "object", additionalProperties: { type: "string" } },
      nodes: { description: "Nodes by name: their pods, or the whole nodes (pod CIDRs and InternalIPs) when no pod criterion is given.", type: "array", maxItems: 256, items: { type: "string", maxLength: 253 } },
    },
  };
}

function networkChaos(typeMeta: TypeMetaDescriptions): JsonObject {
  return {
    description:
      "NetworkChaos injects network faults with netem's vocabulary (Linux sch_netem, tc-netem(8)) between the pods or nodes it selects: delay, loss, duplication, corruption, reordering, a bandwidth limit, or a partition. Several objects matching one packet apply in order of namespace/name, each as a netem qdisc chained under the previous one.",
    type: "object",
    properties: {
      apiVersion: { description: typeMeta.apiVersion, type: "string" },
      kind: { description: typeMeta.kind, type: "string" },
      metadata: ref(`${META}.ObjectMeta`, "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
      spec: {
        description: "The faults and the traffic they apply to.",
        type: "object",
        properties: {
          action: { description: "netem: the impairments given (delay, loss, duplicate, corrupt, bandwidth) apply. partition: every matched packet is dropped. Default netem.", type: "string", enum: ["netem", "partition"] },
          bandwidth: {
            description: "A token bucket filter (tc-tbf) behind netem: a real bottleneck queue.",
            type: "object",
            properties: {
              buffer: { description: "The bucket's depth in bytes: what may leave at once (tc's burst).", type: "integer", format: "int64", minimum: 1, maximum: 4294967295 },
              limit: { description: "Bytes that may wait for tokens; a packet beyond is dropped.", type: "integer", format: "int64", minimum: 1, maximum: 4294967295 },
              rate: { description: "The rate, in tc's units: bit, kbit, mbit, gbit (bits per second), bps, kbps, mbps, gbps (bytes per second).", type: "string", pattern: TC_RATE_PATTERN },
            },
            required: ["buffer", "limit", "rate"],
          },
          corrupt: {
            description: "Flip one random bit of a share of the packets (netem corrupt).",
            type: "object",
            properties: { correlation: percent("How much each decision depends on the previous one (netem's correlation)."), corrupt: percent("The share of packets corrupted.") },
            required: ["corrupt"],
          },
          delay: {
            description: "Delay packets (netem delay), optionally reordering some.",
            type: "object",
            properties: {
              correlation: percent("How much each delay depends on the previous one (netem's correlation)."),
              distribution: { description: "The jitter's distribution: uniform (netem without a table), normal, pareto, paretonormal (iproute2's tables). Default uniform.", type: "string", enum: ["uniform", "normal", "pareto", "paretonormal"] },
              jitter: duration("The jitter: the delay's spread around latency (half-width for uniform, sigma otherwise)."),
              latency: duration("The delay added to each packet."),
              reorder: {
                description: "netem's reorder: once gap - 1 packets have been delayed, the next is sent at once with this probability, overtaking the delayed ones.",
                type: "object",
                properties: {
                  correlation: percent("netem's correlation of the reorder decisions."),
                  gap: { description: "netem's gap; default 1 (every packet is a candidate).", type: "integer", format: "int32", minimum: 0, maximum: 1000000 },
                  reorder: percent("The probability that a candidate is sent at once."),
                },
                required: ["reorder"],
              },
            },
            required: ["latency"],
          },
          direction: { description: "to: traffic from selector to target; from: traffic from target to selector; both. Default to.", type: "string", enum: ["to", "from", "both"] },
          duplicate: {
            description: "Send a share of the packets twice (netem duplicate).",
            type: "object",
            properties: { correlation: percent("netem's correlation of the decisions."), duplicate: percent("The share of packets duplicated.") },
            required: ["duplicate"],
          },
          duration: duration("How long the faults run, from the object's creation; absent: until the object is deleted."),
          loss: {
            description: "Drop packets: at random (loss, with netem's correlation) or in bursts (gemodel). Exactly one of loss and gemodel.",
            type: "object",
            properties: {
              correlation: percent("netem's correlation of the random loss decisions."),
              gemodel: {
                description: "The Gilbert-Elliott model, tc-netem(8)'s `loss gemodel p r 1-h 1-k`.",
                type: "object",
                properties: {
                  oneMinusH: percent("1-h: the loss probability in the bad state; default 100."),
                  oneMinusK: percent("1-k: the loss probability in the good state; default 0."),
                  p: percent("The probability of moving from the good to the bad state."),
                  r: percent("The probability of moving from the bad to the good state; default 100."),
                },
                required: ["p"],
              },
              loss: percent("The share of packets lost."),
            },
            minProperties: 1,
            "x-kubernetes-validations": [{ rule: "!(has(self.loss) && has(self.gemodel))", message: "loss and gemodel are mutually exclusive" }],
          },
          ports: {
            description: "Only packets to these ports of the target (their destination port towards the target, their source port from it). TCP and UDP.",
            type: "array",
            maxItems: 32,
            items: { type: "integer", format: "int32", minimum: 1, maximum: 65535 },
            "x-kubernetes-list-type": "set",
          },
          protocol: { description: "Only packets of this protocol.", type: "string", enum: ["TCP", "UDP", "ICMP"] },
          seed: { description: "Seeds the faults' random generators (with the node and link), so a run replays; default a hash of namespace/name.", type: "integer", format: "int64", minimum: 0, maximum: 4294967295 },
          selector: chaosSelector("One end of the traffic (Chaos Mesh's selector). Empty: every address."),
          target: {
            description: "The other end of the traffic; absent: every address.",
            type: "object",
            properties: { selector: chaosSelector("The target's pods or nodes.") },
            required: ["selector"],
          },
        },
        required: ["selector"],
      },
      status: {
        description: "Where the faults apply and what they did, written by the control plane from the nodes' counters.",
        type: "object",
        properties: {
          conditions: { type: "array", items: condition(), "x-kubernetes-list-map-keys": ["type"], "x-kubernetes-list-type": "map" },
          expiresAt: { description: "When the duration ends.", type: "string", format: "date-time" },
          nodes: {
            description: "Per node applying the faults: what they did there (cumulative since the node began applying them).",
            type: "array",
            items: {
              type: "object",
              properties: {
                corrupted: { type: "integer", format: "int64" },
                delayed: { type: "integer", format: "int64" },
                dropped: { type: "integer", format: "int64" },
                duplicated: { type: "integer", format: "int64" },
                node: { type: "string" },
                packets: { description: "Packets the faults matched.", type: "integer", format: "int64" },
                reordered: { type: "integer", format: "int64" },
              },
              required: ["node"],
            },
          },
          phase: { description: "Pending (no node applies it yet), Active, or Expired.", type: "string", enum: ["Pending", "Active", "Expired"] },
          totals: {
            description: "The nodes' counters summed.",
            type: "object",
            properties: {
              corrupted: { type: "integer", format: "int64" },
              delayed: { type: "integer", format: "int64" },
              dropped: { type: "integer", format: "int64" },
              duplicated: { type: "integer", format: "int64" },
              packets: { type: "integer", format: "int64" },
              reordered: { type: "integer", format: "int64" },
            },
          },
        },
      },
    },
    required: ["metadata", "spec"],
  };
}

function list(name: string, kind: string, typeMeta: TypeMetaDescriptions): JsonObject {
  return {
    description: `${kind}List is a list of ${kind} objects.`,
    type: "object",
    properties: {
      apiVersion: { description: typeMeta.apiVersion, type: "string" },
      items: { description: `List of ${kind.toLowerCase()}s.`, type: "array", items: { $ref: `#/components/schemas/${name}` } },
      kind: { description: typeMeta.kind, type: "string" },
      metadata: ref(`${META}.ListMeta`, "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
    },
    required: ["items"],
  };
}

/**
 * The definition name apiextensions-apiserver gives a CRD kind: the group's labels reversed,
 * then the version and the kind ("policy.networking.k8s.io", "v1alpha2", "ClusterNetworkPolicy"
 * -> "io.k8s.networking.policy.v1alpha2.ClusterNetworkPolicy").
 */
export function crdDefinitionName(group: string, version: string, kind: string): string {
  return [...group.split(".").reverse(), version, kind].join(".");
}

/** Every hand-written definition, by name; a kind's `<Kind>List` beside it. */
export function crdDefinitions(typeMeta: TypeMetaDescriptions): Record<string, JsonObject> {
  const cnp = crdDefinitionName("policy.networking.k8s.io", "v1alpha2", "ClusterNetworkPolicy");
  const chaos = crdDefinitionName("chaos.kubewire.io", "v1alpha1", "NetworkChaos");
  return {
    [cnp]: clusterNetworkPolicy(typeMeta),
    [`${cnp}List`]: list(cnp, "ClusterNetworkPolicy", typeMeta),
    [chaos]: networkChaos(typeMeta),
    [`${chaos}List`]: list(chaos, "NetworkChaos", typeMeta),
  };
}
