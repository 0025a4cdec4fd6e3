import { describe, expect, it } from "vitest";
import { defaultObject } from "../../../control-plane/api/defaults.ts";
import {
  cidrErrors,
  formatFieldError,
  ipv4Errors,
  isValidCidr,
  isValidIPv4,
  NameRule,
  statusForInvalid,
  validateObject,
  validateObjectMeta,
  type FieldError,
} from "../../../control-plane/api/validation.ts";
import {
  dns1035LabelErrors,
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  isDns1035Label,
  isDns1123Label,
  isDns1123Subdomain,
  isQualifiedName,
  isValidLabelValue,
  isValidPortName,
  isValidPortNum,
  labelValueErrors,
  portNameErrors,
  qualifiedNameErrors,
} from "../../../cluster/syntax.ts";

// Kubernetes' regex messages, verbatim (note RegexError's double space before "or").
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const NAME_PART_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const PORT_RANGE = "must be between 1 and 65535, inclusive";

const lines = (errs: readonly FieldError[]): string[] => errs.map(formatFieldError);

/** Validates what the API server would store: the object after defaulting. */
function check(kind: string, obj: unknown, old?: unknown): string[] {
  return lines(validateObject(kind, defaultObject(kind, obj), old === undefined ? undefined : defaultObject(kind, old)));
}

const meta = (name: string, extra: Record<string, unknown> = {}) => ({ name, namespace: "default", ...extra });
const pod = (spec: Record<string, unknown>, name = "web-1") => ({ apiVersion: "v1", kind: "Pod", metadata: meta(name), spec });
const ctr = (extra: Record<string, unknown> = {}) => ({ name: "app", image: "nginx:1.25", ...extra });
const svc = (spec: Record<string, unknown>, name = "my-svc") => ({ apiVersion: "v1", kind: "Service", metadata: meta(name), spec });
const template = (labels: Record<string, string>, spec: Record<string, unknown> = { containers: [ctr()] }) => ({ metadata: { labels }, spec });
const deployment = (spec: Record<string, unknown>, name = "web") => ({ apiVersion: "apps/v1", kind: "Deployment", metadata: meta(name), spec });
const netpol = (spec: Record<string, unknown>) => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: meta("np"), spec });
const ingress = (spec: Record<string, unknown>) => ({ apiVersion: "networking.k8s.io/v1", kind: "Ingress", metadata: meta("ing"), spec });
const backend = { service: { name: "web", port: { number: 80 } } };
const slice = (extra: Record<string, unknown>) => ({ apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: meta("web-abc12"), addressType: "IPv4", ...extra });

describe("name and value helpers (apimachinery/pkg/util/validation)", () => {
  it("DNS-1123 labels: regex message with Kubernetes' examples, dots, length", () => {
    expect(dns1123LabelErrors("web-1")).toEqual([]);
    expect(dns1123LabelErrors("Web")).toEqual([LABEL_MSG]);
    expect(dns1123LabelErrors("a.b")).toEqual(["must not contain dots"]);
    expect(dns1123LabelErrors("a".repeat(64))).toEqual(["must be no more than 63 characters"]);
    expect(isDns1123Label("node-1")).toBe(true);
    expect(isDns1123Label("-node")).toBe(false);
  });

  it("DNS-1123 subdomains and DNS-1035 labels", () => {
    expect(dns1123SubdomainErrors("web.default.svc")).toEqual([]);
    expect(dns1123SubdomainErrors("Web_1")).toEqual([SUBDOMAIN_MSG]);
    expect(dns1123SubdomainErrors("a".repeat(254))).toEqual(["must be no more than 253 characters"]);
    expect(isDns1123Subdomain("a.b-c")).toBe(true);
    expect(dns1035LabelErrors("1svc")).toEqual([DNS1035_MSG]);
    expect(isDns1035Label("svc-1")).toBe(true);
    expect(isDns1035Label("1svc")).toBe(false);
  });

  it("qualified names (label keys): prefix part, name part, too many slashes", () => {
    expect(qualifiedNameErrors("app.kubernetes.io/name")).toEqual([]);
    expect(qualifiedNameErrors("/name")).toEqual(["prefix part must be non-empty"]);
    expect(qualifiedNameErrors("example.com/")).toEqual(["name part must be non-empty", NAME_PART_MSG]);
    expect(qualifiedNameErrors("Bad_Prefix/x")).toEqual([`prefix part ${SUBDOMAIN_MSG}`]);
    expect(qualifiedNameErrors("-x")).toEqual([NAME_PART_MSG]);
    expect(qualifiedNameErrors("a/b/c")).toEqual([
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ]);
    expect(isQualifiedName("MyKey")).toBe(true);
  });

  it("label values: empty is valid, 63 characters at most", () => {
    expect(labelValueErrors("")).toEqual([]);
    expect(labelValueErrors("my_value-1.x")).toEqual([]);
    expect(labelValueErrors("bad value")).toEqual([LABEL_VALUE_MSG]);
    expect(labelValueErrors("v".repeat(64))).toEqual(["must be no more than 63 characters"]);
    expect(isValidLabelValue("-x")).toBe(false);
  });

  it("port numbers and IANA_SVC_NAME port names", () => {
    expect(isValidPortNum(1)).toBe(true);
    expect(isValidPortNum(65535)).toBe(true);
    expect(isValidPortNum(0)).toBe(false);
    expect(isValidPortNum(65536)).toBe(false);
    expect(isValidPortName("http")).toBe(true);
    expect(portNameErrors("8080")).toEqual(["must contain at least one letter (a-z)"]);
    expect(portNameErrors("HTTP")).toEqual(["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)", "must contain at least one letter (a-z)"]);
    expect(portNameErrors("-a--b")).toEqual(["must not contain consecutive hyphens", "must not begin or end with a hyphen"]);
    expect(portNameErrors("a-very-long-port-name")).toEqual(["must be no more than 15 characters"]);
  });

  it("IPv4 addresses and CIDRs (sloppy parsing: leading zeros are decimal)", () => {
    expect(isValidIPv4("10.244.1.2")).toBe(true);
    expect(isValidIPv4("010.0.0.1")).toBe(true);
    expect(isValidIPv4("10.0.0.256")).toBe(false);
    expect(isValidIPv4("2001:db8::1")).toBe(false);
    expect(ipv4Errors("x")).toEqual(["must be a valid IPv4 address"]);
    expect(isValidCidr("10.244.0.0/16")).toBe(true);
    expect(isValidCidr("10.244.1.7/24")).toBe(true);
    expect(isValidCidr("2001:db8::/64")).toBe(true);
    expect(isValidCidr("10.0.0.0/33")).toBe(false);
    expect(isValidCidr("10.0.0.0")).toBe(false);
    expect(cidrErrors("nope")).toEqual(["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]);
  });
});

describe("object metadata", () => {
  it("requires a name unless generateName is given, and checks generateName as a prefix", () => {
    expect(lines(validateObjectMeta({ namespace: "default" }, true, NameRule.DNS1123Subdomain))).toEqual([
      "metadata.name: Required value: name or generateName is required",
    ]);
    expect(validateObjectMeta({ generateName: "web-", namespace: "default" }, true, NameRule.DNS1123Subdomain)).toEqual([]);
    expect(lines(validateObjectMeta({ generateName: "Web-", namespace: "default" }, true, NameRule.DNS1123Subdomain))).toEqual([
      `metadata.generateName: Invalid value: "Web-": ${SUBDOMAIN_MSG}`,
    ]);
  });

  it("applies each kind's name rule: Pod subdomain, Namespace label, Service DNS-1035", () => {
    expect(check("Pod", pod({ containers: [ctr()] }, "web.v1"))).toEqual([]);
    expect(check("Namespace", { metadata: { name: "team.a" } })).toEqual(['metadata.name: Invalid value: "team.a": must not contain dots']);
    expect(check("Service", svc({ ports: [{ port: 80 }] }, "1-svc"))).toEqual([`metadata.name: Invalid value: "1-svc": ${DNS1035_MSG}`]);
  });

  it("requires a DNS-1123 label namespace on namespaced kinds and forbids one on cluster-scoped kinds", () => {
    expect(lines(validateObjectMeta({ name: "a" }, true, NameRule.DNS1123Subdomain))).toEqual(["metadata.namespace: Required value"]);
    expect(lines(validateObjectMeta({ name: "a", namespace: "Team_A" }, true, NameRule.DNS1123Subdomain))).toEqual([
      `metadata.namespace: Invalid value: "Team_A": ${LABEL_MSG}`,
    ]);
    expect(lines(validateObjectMeta({ name: "node-1", namespace: "default" }, false, NameRule.DNS1123Subdomain))).toEqual([
      "metadata.namespace: Forbidden: not allowed on this type",
    ]);
  });

  it("checks label keys and values and annotation keys; annotations are at most 256 KiB", () => {
    const errs = lines(
      validateObjectMeta({ name: "a", namespace: "default", labels: { "-app": "web", tier: "front end" }, annotations: { "Example.com/Note": "ok", "bad key": "x" } }, true, NameRule.DNS1123Subdomain),
    );
    expect(errs).toEqual([
      `metadata.labels: Invalid value: "-app": ${NAME_PART_MSG}`,
      `metadata.labels: Invalid value: "front end": ${LABEL_VALUE_MSG}`,
      `metadata.annotations: Invalid value: "bad key": ${NAME_PART_MSG}`,
    ]);
    const big = validateObjectMeta({ name: "a", namespace: "default", annotations: { note: "x".repeat(256 * 1024) } }, true, NameRule.DNS1123Subdomain);
    expect(big).toEqual([{ type: "FieldValueTooLong", field: "metadata.annotations", message: "Too long: must have at most 262144 bytes" }]);
    const fits = validateObjectMeta({ name: "a", namespace: "default", annotations: { note: "x".repeat(256 * 1024 - 4) } }, true, NameRule.DNS1123Subdomain);
    expect(fits).toEqual([]);
  });
});

describe("Pod", () => {
  it("accepts a valid pod", () => {
    expect(check("Pod", pod({ containers: [ctr({ ports: [{ name: "http", containerPort: 80 }] })] }))).toEqual([]);
  });

  it("requires a non-empty container list", () => {
    expect(check("Pod", pod({}))).toEqual(["spec.containers: Required value"]);
    expect(validateObject("Pod", defaultObject("Pod", pod({ containers: [] })))).toEqual([
      { type: "FieldValueRequired", field: "spec.containers", message: "Required value" },
    ]);
  });

  it("checks container names (DNS-1123 labels, unique) and requires images", () => {
    expect(check("Pod", pod({ containers: [ctr({ name: "App" }), ctr(), ctr({ image: "" })] }))).toEqual([
      `spec.containers[0].name: Invalid value: "App": ${LABEL_MSG}`,
      "spec.containers[2].image: Required value",
      'spec.containers[2].name: Duplicate value: "app"',
    ]);
    expect(check("Pod", pod({ containers: [{ image: "nginx" }] }))).toEqual(["spec.containers[0].name: Required value"]);
  });

  it("checks container ports: number, protocol, IANA names unique per container, host ports", () => {
    const ports = [
      { containerPort: 70000 },
      { containerPort: 0 },
      { name: "HTTP", containerPort: 80 },
      { name: "web", containerPort: 81 },
      { name: "web", containerPort: 82, protocol: "HTTP" },
      { containerPort: 83, hostPort: 65536 },
    ];
    expect(check("Pod", pod({ containers: [ctr({ ports })] }))).toEqual([
      `spec.containers[0].ports[0].containerPort: Invalid value: 70000: ${PORT_RANGE}`,
      "spec.containers[0].ports[1].containerPort: Required value",
      'spec.containers[0].ports[2].name: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
      'spec.containers[0].ports[2].name: Invalid value: "HTTP": must contain at least one letter (a-z)',
      'spec.containers[0].ports[4].name: Duplicate value: "web"',
      'spec.containers[0].ports[4].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
      `spec.containers[0].ports[5].hostPort: Invalid value: 65536: ${PORT_RANGE}`,
    ]);
  });

  it("rejects a host port bound twice in the pod", () => {
    const c1 = ctr({ name: "a", ports: [{ containerPort: 80, hostPort: 8080 }] });
    const c2 = ctr({ name: "b", ports: [{ containerPort: 81, hostPort: 8080 }] });
    expect(check("Pod", pod({ containers: [c1, c2] }))).toEqual(['spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"']);
  });

  it("checks restartPolicy, dnsPolicy and imagePullPolicy values in Kubernetes' order", () => {
    expect(check("Pod", pod({ restartPolicy: "Sometimes", dnsPolicy: "Google", containers: [ctr({ imagePullPolicy: "Maybe" })] }))).toEqual([
      'spec.containers[0].imagePullPolicy: Unsupported value: "Maybe": supported values: "Always", "IfNotPresent", "Never"',
      'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
      'spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"',
    ]);
  });

  it("checks nodeName, hostname, activeDeadlineSeconds and space-padded images", () => {
    expect(check("Pod", pod({ nodeName: "Node_1", hostname: "a.b", activeDeadlineSeconds: 0, containers: [ctr({ image: " nginx" })] }))).toEqual([
      `spec.nodeName: Invalid value: "Node_1": ${SUBDOMAIN_MSG}`,
      "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
      'spec.hostname: Invalid value: "a.b": must not contain dots',
      'spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace',
    ]);
  });

  it("on update allows image, activeDeadlineSeconds (down) and added tolerations", () => {
    const old = pod({ containers: [ctr()], activeDeadlineSeconds: 600 });
    const tol = { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 };
    expect(check("Pod", pod({ containers: [ctr({ image: "nginx:1.27" })], activeDeadlineSeconds: 300, tolerations: [tol] }), old)).toEqual([]);
    expect(check("Pod", pod({ containers: [ctr()], activeDeadlineSeconds: 900 }), old)).toEqual([
      "spec.activeDeadlineSeconds: Invalid value: 900: must be less than or equal to previous value",
    ]);
    expect(check("Pod", pod({ containers: [ctr()] }), pod({ containers: [ctr()], tolerations: [tol] }))).toEqual([
      "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds",
    ]);
  });

  it("on update forbids any other spec change, with Kubernetes' message", () => {
    const errs = validateObject("Pod", defaultObject("Pod", pod({ restartPolicy: "Never", containers: [ctr()] })), defaultObject("Pod", pod({ containers: [ctr()] })));
    expect(errs).toHaveLength(1);
    expect(errs[0]?.type).toBe("FieldValueForbidden");
    expect(errs[0]?.field).toBe("spec");
    expect(errs[0]?.message).toContain(
      "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n",
    );
    expect(errs[0]?.message).toContain('- \tRestartPolicy: "Always",\n+ \tRestartPolicy: "Never",');
    expect(check("Pod", pod({ containers: [ctr(), ctr({ name: "side" })] }), pod({ containers: [ctr()] }))).toEqual([
      "spec.containers: Forbidden: pod updates may not add or remove containers",
    ]);
    expect(check("Pod", { ...pod({ containers: [ctr()] }), metadata: meta("web-2") }, pod({ containers: [ctr()] }))).toEqual([
      'metadata.name: Invalid value: "web-2": field is immutable',
    ]);
  });
});

describe("Service", () => {
  it("produces the Status of the Kubernetes example for a port out of range", () => {
    const errs = validateObject("Service", defaultObject("Service", svc({ selector: { app: "web" }, ports: [{ port: 70000, targetPort: 8080 }] })));
    expect(errs).toEqual([{ type: "FieldValueInvalid", field: "spec.ports[0].port", message: "Invalid value: 70000: must be between 1 and 65535, inclusive" }]);
    expect(statusForInvalid("Service", "my-svc", errs)).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: 'Service "my-svc" is invalid: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive',
      reason: "Invalid",
      details: {
        name: "my-svc",
        kind: "Service",
        causes: [{ reason: "FieldValueInvalid", message: "Invalid value: 70000: must be between 1 and 65535, inclusive", field: "spec.ports[0].port" }],
      },
      code: 422,
    });
  });

  it("accepts ClusterIP, NodePort, headless and ExternalName services", () => {
    expect(check("Service", svc({ selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }, { name: "dns", port: 53, protocol: "UDP" }] }))).toEqual([]);
    expect(check("Service", svc({ type: "NodePort", ports: [{ port: 80, nodePort: 30080 }] }))).toEqual([]);
    expect(check("Service", svc({ clusterIP: "None", selector: { app: "db" } }))).toEqual([]);
    expect(check("Service", svc({ type: "ExternalName", externalName: "db.example.com." }))).toEqual([]);
  });

  it("requires ports unless headless or ExternalName", () => {
    expect(check("Service", svc({ selector: { app: "web" } }))).toEqual(["spec.ports: Required value"]);
  });

  it("checks each port: names when several, uniqueness, protocol, targetPort, nodePort", () => {
    const ports = [
      { port: 80 },
      { name: "web", port: 81, protocol: "ICMP", targetPort: "Web" },
      { name: "web", port: 82, targetPort: 70000, nodePort: 70000 },
    ];
    expect(check("Service", svc({ type: "NodePort", ports }))).toEqual([
      "spec.ports[0].name: Required value",
      'spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
      'spec.ports[1].targetPort: Invalid value: "Web": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
      'spec.ports[2].name: Duplicate value: "web"',
      `spec.ports[2].targetPort: Invalid value: 70000: ${PORT_RANGE}`,
      `spec.ports[2].nodePort: Invalid value: 70000: ${PORT_RANGE}`,
    ]);
  });

  it("rejects a nodePort on a ClusterIP service and a repeated protocol/port pair", () => {
    expect(check("Service", svc({ ports: [{ name: "a", port: 80, nodePort: 30001 }, { name: "b", port: 80 }] }))).toEqual([
      "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
      'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
    ]);
  });

  it("checks the type, the ExternalName, clusterIP values and 'None' outside ClusterIP", () => {
    expect(check("Service", svc({ type: "Ingress", ports: [{ port: 80 }] }))).toEqual([
      'spec.type: Unsupported value: "Ingress": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ]);
    expect(check("Service", svc({ type: "ExternalName" }))).toEqual(["spec.externalName: Required value"]);
    expect(check("Service", svc({ type: "ExternalName", externalName: "DB_host" }))).toEqual([`spec.externalName: Invalid value: "DB_host": ${SUBDOMAIN_MSG}`]);
    expect(check("Service", svc({ type: "ExternalName", externalName: "db.example.com", clusterIP: "10.96.0.10" }))).toEqual([
      "spec.clusterIPs: Forbidden: may not be set for ExternalName services",
    ]);
    expect(check("Service", svc({ type: "NodePort", clusterIP: "None", ports: [{ port: 80 }] }))).toEqual([
      `spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services`,
    ]);
    expect(check("Service", svc({ clusterIP: "10.96.0.300", ports: [{ port: 80 }] }))).toEqual([
      'spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    ]);
  });

  it("checks selector labels, sessionAffinity and externalTrafficPolicy", () => {
    expect(check("Service", svc({ selector: { app: "web app" }, sessionAffinity: "Cookie", externalTrafficPolicy: "Local", ports: [{ port: 80 }] }))).toEqual([
      `spec.selector: Invalid value: "web app": ${LABEL_VALUE_MSG}`,
      'spec.sessionAffinity: Unsupported value: "Cookie": supported values: "ClientIP", "None"',
      'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services',
    ]);
  });

  it("keeps spec.clusterIP immutable on update", () => {
    const old = svc({ clusterIP: "10.96.0.10", ports: [{ port: 80 }] });
    expect(check("Service", svc({ clusterIP: "10.96.0.11", ports: [{ port: 80 }] }), old)).toEqual([
      'spec.clusterIP: Invalid value: "10.96.0.11": field is immutable',
    ]);
    expect(check("Service", svc({ clusterIP: "10.96.0.10", ports: [{ port: 8080 }] }), old)).toEqual([]);
    expect(check("Service", svc({ type: "ExternalName", externalName: "db.example.com" }), old)).toEqual([]);
  });
});

describe("EndpointSlice", () => {
  it("accepts a valid slice", () => {
    const s = slice({ endpoints: [{ addresses: ["10.244.1.2"], conditions: { ready: true } }], ports: [{ name: "http", port: 8080 }] });
    expect(check("EndpointSlice", s)).toEqual([]);
  });

  it("checks the addressType", () => {
    expect(check("EndpointSlice", slice({ addressType: "IP" }))).toEqual(['addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"']);
    expect(check("EndpointSlice", slice({ addressType: undefined }))).toEqual(["addressType: Required value"]);
  });

  it("checks endpoint addresses: 1..100, valid IPv4, not special", () => {
    const endpoints = [{ addresses: [] }, { addresses: ["10.0.0.256"] }, { addresses: ["127.0.0.1"] }, { addresses: Array.from({ length: 101 }, (_, i) => `10.1.0.${i + 1}`) }];
    expect(lines(validateObject("EndpointSlice", defaultObject("EndpointSlice", slice({ endpoints }))))).toEqual([
      "endpoints[0].addresses: Required value: must contain at least 1 address",
      'endpoints[1].addresses[0]: Invalid value: "10.0.0.256": must be a valid IPv4 address',
      'endpoints[1].addresses[0]: Invalid value: "10.0.0.256": must be a valid IP address',
      'endpoints[2].addresses[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
      "endpoints[3].addresses: Too many: 101: must have at most 100 items",
    ]);
  });

  it("checks ports: names, uniqueness, protocol", () => {
    const ports = [{ name: "http", port: 80 }, { name: "http", port: 81, protocol: "HTTP" }, { name: "Bad", port: 0 }];
    expect(check("EndpointSlice", slice({ ports }))).toEqual([
      'ports[1].name: Duplicate value: "http"',
      'ports[1].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
      `ports[2].name: Invalid value: "Bad": ${LABEL_MSG}`,
      `ports[2].port: Invalid value: 0: ${PORT_RANGE}`,
    ]);
  });

  it("keeps addressType immutable on update", () => {
    expect(check("EndpointSlice", slice({ addressType: "IPv6" }), slice({}))).toEqual(['addressType: Invalid value: "IPv6": field is immutable']);
  });
});

describe("Deployment and ReplicaSet", () => {
  const labels = { app: "web" };

  it("accepts a valid deployment and replica set", () => {
    expect(check("Deployment", deployment({ selector: { matchLabels: labels }, template: template(labels) }))).toEqual([]);
    const rs = { apiVersion: "apps/v1", kind: "ReplicaSet", metadata: meta("web-5d4f"), spec: { replicas: 0, selector: { matchLabels: labels }, template: template(labels) } };
    expect(check("ReplicaSet", rs)).toEqual([]);
  });

  it("requires a selector (and then the template cannot match it)", () => {
    expect(check("Deployment", deployment({ template: template(labels) }))).toEqual([
      "spec.selector: Required value",
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
    ]);
  });

  it("requires the template labels to match the selector", () => {
    expect(check("Deployment", deployment({ selector: { matchLabels: { app: "api" } }, template: template({ app: "web", tier: "front" }) }))).toEqual([
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web", "tier":"front"}: `selector` does not match template `labels`',
    ]);
  });

  it("matches matchExpressions with In, NotIn, Exists and DoesNotExist", () => {
    const selector = {
      matchExpressions: [
        { key: "app", operator: "In", values: ["web", "api"] },
        { key: "tier", operator: "NotIn", values: ["db"] },
        { key: "track", operator: "Exists" },
        { key: "canary", operator: "DoesNotExist" },
      ],
    };
    expect(check("Deployment", deployment({ selector, template: template({ app: "web", track: "stable" }) }))).toEqual([]);
    expect(check("Deployment", deployment({ selector, template: template({ app: "web", track: "stable", canary: "yes" }) }))).toEqual([
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web", "canary":"yes", "track":"stable"}: `selector` does not match template `labels`',
    ]);
  });

  it("checks selector operators and their value rules", () => {
    const selector = {
      matchLabels: { app: "web" },
      matchExpressions: [
        { key: "tier", operator: "In" },
        { key: "track", operator: "Exists", values: ["x"] },
        { key: "zone", operator: "Equals", values: ["a"] },
      ],
    };
    const sel =
      'v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"tier", Operator:"In", Values:[]string(nil)}, v1.LabelSelectorRequirement{Key:"track", Operator:"Exists", Values:[]string{"x"}}, v1.LabelSelectorRequirement{Key:"zone", Operator:"Equals", Values:[]string{"a"}}}}';
    expect(check("Deployment", deployment({ selector, template: template(labels) }))).toEqual([
      "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
      "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
      'spec.selector.matchExpressions[2].operator: Invalid value: "Equals": not a valid selector operator',
      `spec.selector: Invalid value: ${sel}: invalid label selector`,
    ]);
  });

  it("rejects an empty selector", () => {
    expect(check("Deployment", deployment({ selector: {}, template: template(labels) }))).toEqual([
      "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
    ]);
  });

  it("checks replicas, the template's pod spec and its restartPolicy", () => {
    const t = template(labels, { restartPolicy: "Never", containers: [{ name: "app" }] });
    expect(check("Deployment", deployment({ replicas: -1, selector: { matchLabels: labels }, template: t }))).toEqual([
      "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
      "spec.template.spec.containers[0].image: Required value",
      'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
    ]);
  });

  it("checks the deployment strategy", () => {
    const base = { selector: { matchLabels: labels }, template: template(labels) };
    expect(check("Deployment", deployment({ ...base, strategy: { type: "BlueGreen" } }))).toEqual([
      'spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate"',
    ]);
    expect(check("Deployment", deployment({ ...base, strategy: { type: "Recreate" } }))).toEqual([]);
    expect(check("Deployment", deployment({ ...base, strategy: { type: "Recreate", rollingUpdate: { maxSurge: 1 } } }))).toEqual([
      "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
    ]);
    expect(check("Deployment", deployment({ ...base, strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } } }))).toEqual([
      'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0',
    ]);
    expect(check("Deployment", deployment({ ...base, strategy: { rollingUpdate: { maxSurge: "half" } } }))).toEqual([
      "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"half\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
    ]);
  });

  it("keeps the selector immutable on update (apps/v1), while replicas and template may change", () => {
    const old = deployment({ selector: { matchLabels: labels }, template: template(labels) });
    expect(check("Deployment", deployment({ replicas: 5, selector: { matchLabels: labels }, template: template({ ...labels, v: "2" }) }), old)).toEqual([]);
    expect(check("Deployment", deployment({ selector: { matchLabels: { app: "web2" } }, template: template({ app: "web2" }) }), old)).toEqual([
      'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable',
    ]);
    const rs = (sel: Record<string, string>) => ({ apiVersion: "apps/v1", kind: "ReplicaSet", metadata: meta("web-1"), spec: { selector: { matchLabels: sel }, template: template({ ...labels, ...sel }) } });
    expect(check("ReplicaSet", rs({ app: "web", v: "2" }), rs({ app: "web" }))).toEqual([
      'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "v":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable',
    ]);
  });
});

describe("NetworkPolicy", () => {
  it("accepts a valid policy", () => {
    const spec = {
      podSelector: { matchLabels: { app: "db" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } }, namespaceSelector: {} }, { ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }], ports: [{ port: 5432 }, { port: "metrics" }, { port: 8000, endPort: 8100 }] }],
      egress: [{ to: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }],
    };
    expect(check("NetworkPolicy", netpol(spec))).toEqual([]);
  });

  it("checks podSelector and policyTypes", () => {
    expect(check("NetworkPolicy", netpol({ podSelector: { matchLabels: { "a/b/c": "x" } }, policyTypes: ["Ingress", "Both"] }))).toEqual([
      expect.stringContaining('spec.podSelector.matchLabels: Invalid value: "a/b/c": a qualified name must consist of'),
      'spec.policyTypes[1]: Unsupported value: "Both": supported values: "Ingress", "Egress"',
    ]);
    expect(check("NetworkPolicy", netpol({ policyTypes: ["Ingress", "Egress", "Ingress"] }))).toEqual([
      'spec.policyTypes: Invalid value: []networking.PolicyType{"Ingress", "Egress", "Ingress"}: may not specify more than two policyTypes',
    ]);
  });

  it("checks peers: ipBlock CIDRs, except inside cidr, ipBlock alone, something set", () => {
    const from = [{ ipBlock: { cidr: "10.0.0.0/33" } }, { ipBlock: { cidr: "10.0.0.0/16", except: ["10.1.0.0/24", "10.0.0.0/8", "bad"] } }, { ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} }, {}];
    expect(check("NetworkPolicy", netpol({ ingress: [{ from }] }))).toEqual([
      'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
      'spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`',
      'spec.ingress[0].from[1].ipBlock.except[1]: Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`',
      'spec.ingress[0].from[1].ipBlock.except[2]: Invalid value: "bad": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
      "spec.ingress[0].from[2]: Forbidden: may not specify both ipBlock and another peer",
      "spec.ingress[0].from[3]: Required value: must specify a peer",
    ]);
  });

  it("checks ports: protocol, number or name, endPort", () => {
    const ports = [{ protocol: "ICMP", port: 0 }, { port: "HTTP" }, { port: 9000, endPort: 8000 }, { port: "web", endPort: 90 }, { endPort: 90 }];
    expect(check("NetworkPolicy", netpol({ egress: [{ ports }] }))).toEqual([
      'spec.egress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
      `spec.egress[0].ports[0].port: Invalid value: 0: ${PORT_RANGE}`,
      'spec.egress[0].ports[1].port: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
      'spec.egress[0].ports[1].port: Invalid value: "HTTP": must contain at least one letter (a-z)',
      "spec.egress[0].ports[2].endPort: Invalid value: 8000: must be greater than or equal to `port`",
      "spec.egress[0].ports[3].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
      "spec.egress[0].ports[4].endPort: Invalid value: 90: may not be specified when `port` is not specified",
    ]);
  });
});

describe("Ingress", () => {
  const rule = (host: string | undefined, paths: unknown[]) => ({ ...(host === undefined ? {} : { host }), http: { paths } });

  it("accepts a valid ingress, wildcard hosts included", () => {
    const paths = [{ path: "/", pathType: "Prefix", backend }, { path: "/exact", pathType: "Exact", backend: { service: { name: "api", port: { name: "http" } } } }];
    expect(check("Ingress", ingress({ rules: [rule("*.example.com", paths), rule(undefined, [{ pathType: "ImplementationSpecific", backend }])] }))).toEqual([]);
    expect(check("Ingress", ingress({ defaultBackend: backend }))).toEqual([]);
  });

  it("requires rules or a default backend", () => {
    expect(check("Ingress", ingress({}))).toEqual(["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"]);
  });

  it("checks hosts: DNS names, wildcard only as the first label, no IPs", () => {
    const paths = [{ path: "/", pathType: "Prefix", backend }];
    expect(check("Ingress", ingress({ rules: [rule("*.*.example.com", paths), rule("10.0.0.1", paths), rule("Web.example.com", paths)] }))).toEqual([
      `spec.rules[0].host: Invalid value: "*.*.example.com": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
      'spec.rules[1].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address',
      `spec.rules[2].host: Invalid value: "Web.example.com": ${SUBDOMAIN_MSG}`,
    ]);
  });

  it("checks paths: pathType required and supported, absolute paths for Exact and Prefix", () => {
    const paths = [{ path: "/", backend }, { path: "/", pathType: "Regex", backend }, { path: "api", pathType: "Prefix", backend }, { path: "/a//b", pathType: "Exact", backend }];
    expect(check("Ingress", ingress({ rules: [rule("example.com", paths), rule("example.org", [])] }))).toEqual([
      "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
      'spec.rules[0].http.paths[1].pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"',
      'spec.rules[0].http.paths[2].path: Invalid value: "api": must be an absolute path',
      `spec.rules[0].http.paths[3].path: Invalid value: "/a//b": must not contain '//'`,
      "spec.rules[1].http.paths: Required value",
    ]);
  });

  it("checks backends: service name, port number or name", () => {
    const paths = [
      { path: "/a", pathType: "Prefix", backend: { service: { name: "Web", port: { number: 70000 } } } },
      { path: "/b", pathType: "Prefix", backend: { service: { name: "web", port: {} } } },
      { path: "/c", pathType: "Prefix", backend: { service: { name: "web", port: { name: "http", number: 80 } } } },
      { path: "/d", pathType: "Prefix", backend: {} },
    ];
    expect(check("Ingress", ingress({ rules: [rule("example.com", paths)] }))).toEqual([
      `spec.rules[0].http.paths[0].backend.service.name: Invalid value: "Web": ${DNS1035_MSG}`,
      `spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000: ${PORT_RANGE}`,
      "spec.rules[0].http.paths[1].backend: Required value: port name or number is required",
      'spec.rules[0].http.paths[2].backend: Invalid value: "": cannot set both port name & port number',
      'spec.rules[0].http.paths[3].backend: Invalid value: "": resource or service backend is required',
    ]);
  });
});

describe("Event", () => {
  const event = (extra: Record<string, unknown>) => ({
    apiVersion: "v1",
    kind: "Event",
    metadata: meta("web-1.17a8b3c2d1e4f5a6"),
    involvedObject: { kind: "Pod", name: "web-1", namespace: "default" },
    reason: "Scheduled",
    message: "Successfully assigned default/web-1 to node-1",
    type: "Normal",
    ...extra,
  });

  it("accepts a valid event", () => {
    expect(check("Event", event({}))).toEqual([]);
    expect(check("Event", event({ type: "Warning", involvedObject: { kind: "Node", name: "node-1" } }))).toEqual([]);
  });

  it("requires the involved object's kind and name and its namespace to match", () => {
    expect(check("Event", event({ involvedObject: { namespace: "kube-system" } }))).toEqual([
      "involvedObject.kind: Required value",
      "involvedObject.name: Required value",
      'involvedObject.namespace: Invalid value: "kube-system": does not match event.namespace',
    ]);
  });

  it("accepts only Normal and Warning types", () => {
    expect(check("Event", event({ type: "Info" }))).toEqual(['type: Invalid value: "": has invalid value: Info']);
  });
});

describe("Namespace and Node", () => {
  it("checks namespace finalizers", () => {
    expect(check("Namespace", { metadata: { name: "team-a" } })).toEqual([]);
    expect(check("Namespace", { metadata: { name: "team-a" }, spec: { finalizers: ["foo", "example.com/cleanup"] } })).toEqual([
      'spec.finalizers: Invalid value: "foo": name is neither a standard finalizer name nor is it fully qualified',
    ]);
  });

  it("checks node podCIDR(s): valid CIDRs, one per family", () => {
    const node = (spec: Record<string, unknown>) => ({ apiVersion: "v1", kind: "Node", metadata: { name: "node-1" }, spec });
    expect(check("Node", node({ podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"] }))).toEqual([]);
    expect(check("Node", node({ podCIDR: "10.244.1.0/33" }))).toEqual([
      'spec.podCIDRs[0]: Invalid value: "10.244.1.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    ]);
    expect(check("Node", node({ podCIDRs: ["10.244.1.0/24", "10.244.2.0/24"] }))).toEqual([
      'spec.podCIDRs: Invalid value: []string{"10.244.1.0/24", "10.244.2.0/24"}: may specify no more than one CIDR for each IP family',
    ]);
    expect(check("Node", node({ podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"] }))).toEqual([]);
  });

  it("lets a node's podCIDR go from unset to set, never change", () => {
    const node = (podCIDR?: string) => ({ apiVersion: "v1", kind: "Node", metadata: { name: "node-1" }, spec: podCIDR ? { podCIDR, podCIDRs: [podCIDR] } : {} });
    expect(check("Node", node("10.244.1.0/24"), node())).toEqual([]);
    expect(check("Node", node("10.244.2.0/24"), node("10.244.1.0/24"))).toEqual([
      'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid',
    ]);
  });
});

describe("statusForInvalid", () => {
  it("joins several errors in brackets, names the qualified kind and keeps every cause", () => {
    const errs = validateObject("Deployment", defaultObject("Deployment", deployment({ replicas: -2, template: template({ app: "web" }) })));
    const status = statusForInvalid("Deployment", "web", errs, "apps");
    expect(status.message).toBe(
      'Deployment.apps "web" is invalid: [spec.replicas: Invalid value: -2: must be greater than or equal to 0, spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`]',
    );
    expect(status.details).toEqual({
      name: "web",
      group: "apps",
      kind: "Deployment",
      causes: [
        { reason: "FieldValueInvalid", message: "Invalid value: -2: must be greater than or equal to 0", field: "spec.replicas" },
        { reason: "FieldValueRequired", message: "Required value", field: "spec.selector" },
        { reason: "FieldValueInvalid", message: 'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`', field: "spec.template.metadata.labels" },
      ],
    });
    expect(status.code).toBe(422);
    expect(status.reason).toBe("Invalid");
  });

  it("states each distinct message once but keeps duplicate causes", () => {
    const e: FieldError = { type: "FieldValueRequired", field: "spec.containers[0].image", message: "Required value" };
    const status = statusForInvalid("Pod", "web-1", [e, e]);
    expect(status.message).toBe('Pod "web-1" is invalid: spec.containers[0].image: Required value');
    expect(status.details.causes).toHaveLength(2);
    expect(statusForInvalid("Pod", "web-1", []).message).toBe('Pod "web-1" is invalid');
  });

  it("collects many errors from one pod", () => {
    const errs = check("Pod", { metadata: { name: "Bad_Name", namespace: "default", labels: { app: "-x" } }, spec: { restartPolicy: "Nope", containers: [{ name: "a", image: "" }] } });
    expect(errs).toEqual([
      `metadata.name: Invalid value: "Bad_Name": ${SUBDOMAIN_MSG}`,
      `metadata.labels: Invalid value: "-x": ${LABEL_VALUE_MSG}`,
      "spec.containers[0].image: Required value",
      'spec.restartPolicy: Unsupported value: "Nope": supported values: "Always", "OnFailure", "Never"',
    ]);
  });

  it("validates nothing for kinds it does not know", () => {
    expect(validateObject("CustomThing", { metadata: {} })).toEqual([]);
  });
});
