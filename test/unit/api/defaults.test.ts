import { describe, expect, it } from "vitest";
import { defaultObject, imageTag } from "../../../control-plane/api/defaults.ts";
import { validateObject } from "../../../control-plane/api/validation.ts";

const meta = { name: "web", namespace: "default" };

describe("Pod defaults (core/v1 SetDefaults_Pod, SetDefaults_PodSpec, SetDefaults_Container)", () => {
  it("fills the pod spec and container defaults", () => {
    const pod = { apiVersion: "v1", kind: "Pod", metadata: meta, spec: { containers: [{ name: "app", image: "nginx:1.25", ports: [{ containerPort: 80 }] }] } };
    expect(defaultObject("Pod", pod)).toEqual({
      apiVersion: "v1",
      kind: "Pod",
      metadata: meta,
      spec: {
        containers: [
          {
            name: "app",
            image: "nginx:1.25",
            ports: [{ containerPort: 80, protocol: "TCP" }],
            imagePullPolicy: "IfNotPresent",
            terminationMessagePath: "/dev/termination-log",
            terminationMessagePolicy: "File",
          },
        ],
        restartPolicy: "Always",
        dnsPolicy: "ClusterFirst",
        terminationGracePeriodSeconds: 30,
        schedulerName: "default-scheduler",
        securityContext: {},
        enableServiceLinks: true,
      },
    });
  });

  it("returns a copy and leaves its input untouched", () => {
    const pod = { metadata: meta, spec: { containers: [{ name: "app", image: "nginx" }] } };
    const before = structuredClone(pod);
    const out = defaultObject("Pod", pod);
    expect(pod).toEqual(before);
    expect(out).not.toBe(pod);
    expect(out.spec.containers[0]).not.toBe(pod.spec.containers[0]);
  });

  it("pulls Always for :latest or an untagged image, IfNotPresent otherwise", () => {
    const policy = (image: string) => defaultObject("Pod", { spec: { containers: [{ name: "a", image }] } }).spec.containers[0].imagePullPolicy;
    expect(policy("nginx")).toBe("Always");
    expect(policy("nginx:latest")).toBe("Always");
    expect(policy("localhost:5000/app")).toBe("Always");
    expect(policy("nginx:1.25")).toBe("IfNotPresent");
    expect(policy("localhost:5000/app:v2")).toBe("IfNotPresent");
    expect(policy("nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")).toBe("IfNotPresent");
    expect(imageTag("busybox")).toBe("latest");
    expect(imageTag("")).toBe("");
  });

  it("keeps what is set", () => {
    const spec = {
      restartPolicy: "Never",
      dnsPolicy: "Default",
      terminationGracePeriodSeconds: 0,
      schedulerName: "custom",
      enableServiceLinks: false,
      containers: [{ name: "a", image: "nginx", imagePullPolicy: "Never", terminationMessagePolicy: "FallbackToLogsOnError", ports: [{ containerPort: 53, protocol: "UDP" }] }],
    };
    const out = defaultObject("Pod", { metadata: meta, spec });
    expect(out.spec).toMatchObject(spec);
  });

  it("defaults init containers, probes, limits-as-requests and host-network ports", () => {
    const out = defaultObject("Pod", {
      metadata: meta,
      spec: {
        hostNetwork: true,
        initContainers: [{ name: "init", image: "busybox:1.36" }],
        containers: [
          {
            name: "app",
            image: "nginx:1.25",
            ports: [{ containerPort: 8080 }],
            resources: { limits: { cpu: "500m", memory: "128Mi" }, requests: { cpu: "100m" } },
            readinessProbe: { httpGet: { port: 8080 } },
          },
        ],
      },
    });
    expect(out.spec.initContainers[0]).toMatchObject({ imagePullPolicy: "IfNotPresent", terminationMessagePolicy: "File" });
    expect(out.spec.containers[0].ports).toEqual([{ containerPort: 8080, hostPort: 8080, protocol: "TCP" }]);
    expect(out.spec.containers[0].resources.requests).toEqual({ cpu: "100m", memory: "128Mi" });
    expect(out.spec.containers[0].readinessProbe).toEqual({ httpGet: { port: 8080, path: "/", scheme: "HTTP" }, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 });
  });
});

describe("Service defaults (core/v1 SetDefaults_Service)", () => {
  it("defaults a ClusterIP service", () => {
    const out = defaultObject("Service", { metadata: meta, spec: { selector: { app: "web" }, ports: [{ port: 80 }, { name: "named", port: 81, targetPort: "http" }] } });
    expect(out.spec).toEqual({
      selector: { app: "web" },
      ports: [
        { port: 80, protocol: "TCP", targetPort: 80 },
        { name: "named", port: 81, targetPort: "http", protocol: "TCP" },
      ],
      type: "ClusterIP",
      sessionAffinity: "None",
      internalTrafficPolicy: "Cluster",
      ipFamilyPolicy: "SingleStack",
      ipFamilies: ["IPv4"],
    });
  });

  it("sets externalTrafficPolicy on externally-accessible services only", () => {
    expect(defaultObject("Service", { spec: { type: "NodePort", ports: [{ port: 80 }] } }).spec.externalTrafficPolicy).toBe("Cluster");
    const lb = defaultObject("Service", { spec: { type: "LoadBalancer", ports: [{ port: 80 }] } }).spec;
    expect(lb.externalTrafficPolicy).toBe("Cluster");
    expect(lb.allocateLoadBalancerNodePorts).toBe(true);
    expect(defaultObject("Service", { spec: { ports: [{ port: 80 }] } }).spec.externalTrafficPolicy).toBeUndefined();
    expect(defaultObject("Service", { spec: { ports: [{ port: 80 }], externalIPs: ["192.0.2.10"] } }).spec.externalTrafficPolicy).toBe("Cluster");
  });

  it("leaves IP families and traffic policies off ExternalName services", () => {
    const out = defaultObject("Service", { metadata: meta, spec: { type: "ExternalName", externalName: "db.example.com" } });
    expect(out.spec).toEqual({ type: "ExternalName", externalName: "db.example.com", sessionAffinity: "None" });
    expect(validateObject("Service", out)).toEqual([]);
  });

  it("fills the ClientIP affinity timeout and drops the config for None", () => {
    expect(defaultObject("Service", { spec: { sessionAffinity: "ClientIP", ports: [{ port: 80 }] } }).spec.sessionAffinityConfig).toEqual({ clientIP: { timeoutSeconds: 10800 } });
    expect(defaultObject("Service", { spec: { sessionAffinityConfig: { clientIP: { timeoutSeconds: 5 } }, ports: [{ port: 80 }] } }).spec.sessionAffinityConfig).toBeUndefined();
  });
});

describe("Deployment and ReplicaSet defaults (apps/v1)", () => {
  const template = { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "app", image: "nginx:1.25" }] } };

  it("defaults a deployment and its pod template", () => {
    const out = defaultObject("Deployment", { metadata: meta, spec: { selector: { matchLabels: { app: "web" } }, template } });
    expect(out.spec).toMatchObject({
      replicas: 1,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    });
    expect(out.spec.template.spec).toMatchObject({ restartPolicy: "Always", dnsPolicy: "ClusterFirst", terminationGracePeriodSeconds: 30, schedulerName: "default-scheduler", securityContext: {} });
    expect(out.spec.template.spec.containers[0]).toMatchObject({ imagePullPolicy: "IfNotPresent", terminationMessagePath: "/dev/termination-log", terminationMessagePolicy: "File" });
    // enableServiceLinks is a Pod default, not a template one.
    expect(out.spec.template.spec.enableServiceLinks).toBeUndefined();
    expect(validateObject("Deployment", out)).toEqual([]);
  });

  it("keeps replicas 0, an explicit maxSurge, and gives Recreate no rollingUpdate", () => {
    const out = defaultObject("Deployment", { metadata: meta, spec: { replicas: 0, strategy: { rollingUpdate: { maxSurge: 1 } }, template } });
    expect(out.spec.replicas).toBe(0);
    expect(out.spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: "25%" } });
    expect(defaultObject("Deployment", { spec: { strategy: { type: "Recreate" }, template } }).spec.strategy).toEqual({ type: "Recreate" });
  });

  it("defaults a replica set", () => {
    const out = defaultObject("ReplicaSet", { metadata: meta, spec: { selector: { matchLabels: { app: "web" } }, template } });
    expect(out.spec.replicas).toBe(1);
    expect(out.spec.template.spec.restartPolicy).toBe("Always");
    expect(out.spec.strategy).toBeUndefined();
    expect(validateObject("ReplicaSet", out)).toEqual([]);
  });
});

describe("NetworkPolicy defaults (networking/v1)", () => {
  it("implies Ingress, plus Egress when there are egress rules, and TCP ports", () => {
    const ingressOnly = defaultObject("NetworkPolicy", { metadata: meta, spec: { ingress: [{ ports: [{ port: 80 }] }] } });
    expect(ingressOnly.spec).toEqual({ podSelector: {}, ingress: [{ ports: [{ port: 80, protocol: "TCP" }] }], policyTypes: ["Ingress"] });
    const both = defaultObject("NetworkPolicy", { metadata: meta, spec: { podSelector: { matchLabels: { app: "db" } }, egress: [{ ports: [{ port: 53, protocol: "UDP" }] }] } });
    expect(both.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(both.spec.egress[0].ports[0].protocol).toBe("UDP");
    expect(defaultObject("NetworkPolicy", { spec: { egress: [] } }).spec.policyTypes).toEqual(["Ingress"]);
    expect(defaultObject("NetworkPolicy", { spec: { policyTypes: ["Egress"], egress: [{}] } }).spec.policyTypes).toEqual(["Egress"]);
    expect(validateObject("NetworkPolicy", both)).toEqual([]);
  });
});

describe("other kinds", () => {
  it("gives a namespace the kubernetes finalizer and the Active phase", () => {
    expect(defaultObject("Namespace", { metadata: { name: "team-a" } })).toEqual({ metadata: { name: "team-a" }, spec: { finalizers: ["kubernetes"] }, status: { phase: "Active" } });
    expect(defaultObject("Namespace", { metadata: { name: "t" }, spec: { finalizers: [] }, status: { phase: "Terminating" } })).toEqual({
      metadata: { name: "t" },
      spec: { finalizers: [] },
      status: { phase: "Terminating" },
    });
  });

  it("names endpoint ports \"\" and makes them TCP", () => {
    const out = defaultObject("EndpointSlice", { metadata: meta, addressType: "IPv4", endpoints: [{ addresses: ["10.244.1.2"] }], ports: [{ port: 80 }] });
    expect(out.ports).toEqual([{ port: 80, name: "", protocol: "TCP" }]);
  });

  it("leaves an ingress path's pathType as given, and unknown kinds as a plain copy", () => {
    const ing = { metadata: meta, spec: { rules: [{ http: { paths: [{ path: "/", backend: { service: { name: "web", port: { number: 80 } } } }] } }] } };
    expect(defaultObject("Ingress", ing)).toEqual(ing);
    const cm = { metadata: meta, data: { a: "b" } };
    const copy = defaultObject("ConfigMap", cm);
    expect(copy).toEqual(cm);
    expect(copy).not.toBe(cm);
  });

  it("is idempotent", () => {
    const pod = { metadata: meta, spec: { containers: [{ name: "app", image: "nginx" }] } };
    const once = defaultObject("Pod", pod);
    expect(defaultObject("Pod", once)).toEqual(once);
    const svc = { metadata: meta, spec: { type: "LoadBalancer", ports: [{ port: 443 }] } };
    const s1 = defaultObject("Service", svc);
    expect(defaultObject("Service", s1)).toEqual(s1);
  });
});
