/**
 * Service environment variables as kubelet writes them (envvars.go FromServices,
 * kubelet_pods.go getServiceEnvVarMap), against the Kubernetes documentation's example
 * (concepts/services-networking/service, "Environment variables").
 */
import { describe, expect, it } from "vitest";
import { envVariableName, fromServices, serviceEnvVars } from "../../../node-agent/dns/env.ts";
import { svc } from "./fixtures.ts";

const kubernetes = svc("default", "kubernetes", { clusterIP: "10.96.0.1", ports: [{ name: "https", port: 443, protocol: "TCP" }] });
const redis = svc("shop", "redis-primary", { clusterIP: "10.0.0.11", ports: [{ port: 6379, protocol: "TCP" }] });

describe("Service environment variables", () => {
  it("the documentation's redis-primary example, exactly", () => {
    expect(fromServices([redis])).toEqual([
      { name: "REDIS_PRIMARY_SERVICE_HOST", value: "10.0.0.11" },
      { name: "REDIS_PRIMARY_SERVICE_PORT", value: "6379" },
      { name: "REDIS_PRIMARY_PORT", value: "tcp://10.0.0.11:6379" },
      { name: "REDIS_PRIMARY_PORT_6379_TCP", value: "tcp://10.0.0.11:6379" },
      { name: "REDIS_PRIMARY_PORT_6379_TCP_PROTO", value: "tcp" },
      { name: "REDIS_PRIMARY_PORT_6379_TCP_PORT", value: "6379" },
      { name: "REDIS_PRIMARY_PORT_6379_TCP_ADDR", value: "10.0.0.11" },
    ]);
  });

  it("the kubernetes Service in every namespace (the master service), with its named port", () => {
    expect(serviceEnvVars([kubernetes, redis], "elsewhere")).toEqual({
      KUBERNETES_SERVICE_HOST: "10.96.0.1",
      KUBERNETES_SERVICE_PORT: "443",
      KUBERNETES_SERVICE_PORT_HTTPS: "443",
      KUBERNETES_PORT: "tcp://10.96.0.1:443",
      KUBERNETES_PORT_443_TCP: "tcp://10.96.0.1:443",
      KUBERNETES_PORT_443_TCP_PROTO: "tcp",
      KUBERNETES_PORT_443_TCP_PORT: "443",
      KUBERNETES_PORT_443_TCP_ADDR: "10.96.0.1",
    });
  });

  it("the pod's namespace's Services plus the master service", () => {
    const env = serviceEnvVars([kubernetes, redis], "shop");
    expect(env.REDIS_PRIMARY_SERVICE_HOST).toBe("10.0.0.11");
    expect(env.KUBERNETES_SERVICE_HOST).toBe("10.96.0.1");
    expect(Object.keys(env)).toEqual([...Object.keys(env)].sort());
  });

  it("enableServiceLinks false keeps only the master service's", () => {
    const env = serviceEnvVars([kubernetes, redis], "shop", false);
    expect(Object.keys(env).every((k) => k.startsWith("KUBERNETES_"))).toBe(true);
    expect(env.KUBERNETES_SERVICE_HOST).toBe("10.96.0.1");
  });

  it("headless and ExternalName Services are skipped (IsServiceIPSet)", () => {
    const headless = svc("shop", "db", { clusterIP: "None", ports: [{ port: 5432 }] });
    const ext = svc("shop", "ext", { type: "ExternalName", externalName: "example.com", ports: [{ port: 80 }] });
    expect(fromServices([headless, ext])).toEqual([]);
  });

  it("several ports: SERVICE_PORT is the first, each named port has its own, UDP lower-cased in values", () => {
    const dns = svc("kube-system", "kube-dns", {
      clusterIP: "10.96.0.10",
      ports: [
        { name: "dns", port: 53, protocol: "UDP" },
        { name: "dns-tcp", port: 53, protocol: "TCP" },
      ],
    });
    const env = serviceEnvVars([dns], "kube-system");
    expect(env).toMatchObject({
      KUBE_DNS_SERVICE_PORT: "53",
      KUBE_DNS_SERVICE_PORT_DNS: "53",
      KUBE_DNS_SERVICE_PORT_DNS_TCP: "53",
      KUBE_DNS_PORT: "udp://10.96.0.10:53",
      KUBE_DNS_PORT_53_UDP: "udp://10.96.0.10:53",
      KUBE_DNS_PORT_53_UDP_PROTO: "udp",
      KUBE_DNS_PORT_53_TCP: "tcp://10.96.0.10:53",
      KUBE_DNS_PORT_53_TCP_ADDR: "10.96.0.10",
    });
  });

  it("a Service named kubernetes in the pod's namespace replaces the master one", () => {
    const own = svc("shop", "kubernetes", { clusterIP: "10.96.5.5", ports: [{ port: 80 }] });
    expect(serviceEnvVars([own, kubernetes], "shop").KUBERNETES_SERVICE_HOST).toBe("10.96.5.5");
    expect(serviceEnvVars([kubernetes, own], "shop").KUBERNETES_SERVICE_HOST).toBe("10.96.5.5");
  });

  it("an IPv6 cluster IP is bracketed in URLs (net.JoinHostPort)", () => {
    const v6 = svc("shop", "v6", { clusterIP: "fd00::10", ports: [{ port: 80 }] });
    expect(serviceEnvVars([v6], "shop")).toMatchObject({ V6_PORT: "tcp://[fd00::10]:80", V6_PORT_80_TCP_ADDR: "fd00::10" });
  });

  it("makeEnvVariableName: upper case, dashes to underscores", () => {
    expect(envVariableName("my-svc-2")).toBe("MY_SVC_2");
  });

  it("garbage Services are skipped, never thrown on", () => {
    expect(fromServices([null, 1, {}, { metadata: { name: "x" }, spec: { clusterIP: "1.2.3.4", ports: "no" } }, { metadata: { name: "y" }, spec: { clusterIP: 5 } }])).toEqual([]);
  });
});
