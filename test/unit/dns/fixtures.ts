/**
 * A small cluster for the DNS tests, as the API stores it, and a helper that sends a query
 * through the whole path: encodeQuery -> decodeQuery -> answer -> encodeResponse -> dns-packet.
 */
import { answer, type AnswerOptions, type AnswerResult } from "../../../node-agent/dns/answer.ts";
import { ClusterDnsData, type DnsObjects } from "../../../node-agent/dns/records.ts";
import { decodeQuery, decodeResponse, encodeQuery, encodeResponse, responseSizeLimit, type DecodedResponse, type QueryInit, type Transport } from "../../../node-agent/dns/wire.ts";

export function ns(name: string): unknown {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name } };
}

export function svc(namespace: string, name: string, spec: Record<string, unknown>): unknown {
  return { apiVersion: "v1", kind: "Service", metadata: { namespace, name }, spec };
}

export interface Ep {
  ip: string;
  hostname?: string;
  ready?: boolean;
  pod?: string;
}

export function slice(namespace: string, service: string, name: string, endpoints: Ep[], ports: unknown[]): unknown {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { namespace, name, labels: { "kubernetes.io/service-name": service } },
    addressType: "IPv4",
    ports,
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true },
      ...(e.hostname ? { hostname: e.hostname } : {}),
      ...(e.pod ? { targetRef: { kind: "Pod", namespace, name: e.pod } } : {}),
    })),
  };
}

export function pod(namespace: string, name: string, ip: string): unknown {
  return { apiVersion: "v1", kind: "Pod", metadata: { namespace, name }, spec: {}, status: { podIP: ip } };
}

export const bigEndpoints: Ep[] = Array.from({ length: 100 }, (_, i) => ({ ip: `10.244.3.${i + 1}` }));

export function clusterObjects(): Required<DnsObjects> {
  return {
    namespaces: ["default", "kube-system", "demo", "quiet"].map(ns),
    services: [
      svc("default", "kubernetes", { type: "ClusterIP", clusterIP: "10.96.0.1", clusterIPs: ["10.96.0.1"], ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: 6443 }] }),
      svc("kube-system", "kube-dns", {
        type: "ClusterIP",
        clusterIP: "10.96.0.10",
        ports: [
          { name: "dns", port: 53, protocol: "UDP" },
          { name: "dns-tcp", port: 53, protocol: "TCP" },
          { name: "metrics", port: 9153, protocol: "TCP" },
        ],
      }),
      svc("demo", "web", { type: "ClusterIP", clusterIP: "10.96.0.20", ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 8080 }] }),
      svc("demo", "lonely", { type: "ClusterIP", clusterIP: "10.96.0.21", ports: [{ port: 8080, protocol: "TCP" }] }),
      svc("demo", "portless", { type: "ClusterIP", clusterIP: "10.96.0.22" }),
      svc("demo", "db", { clusterIP: "None", ports: [{ name: "pg", port: 5432, protocol: "TCP" }] }),
      svc("demo", "empty-headless", { clusterIP: "None", ports: [{ name: "http", port: 80 }] }),
      svc("demo", "big", { clusterIP: "None", ports: [{ name: "http", port: 80, protocol: "TCP" }] }),
      svc("demo", "ext", { type: "ExternalName", externalName: "www.example.com" }),
      svc("demo", "alias", { type: "ExternalName", externalName: "web.demo.svc.cluster.local" }),
      svc("demo", "loop", { type: "ExternalName", externalName: "loop.demo.svc.cluster.local" }),
      svc("demo", "ipname", { type: "ExternalName", externalName: "192.0.2.1" }),
    ],
    endpointSlices: [
      slice("default", "kubernetes", "kubernetes", [{ ip: "172.31.0.2" }], [{ name: "https", port: 6443, protocol: "TCP" }]),
      slice("demo", "web", "web-abc12", [{ ip: "10.244.1.10", pod: "web-1" }, { ip: "10.244.2.11", pod: "web-2" }], [{ name: "http", port: 8080, protocol: "TCP" }]),
      slice(
        "demo",
        "db",
        "db-xyz",
        [
          { ip: "10.244.1.5", hostname: "db-0", pod: "db-0" },
          { ip: "10.244.2.6", hostname: "db-1", pod: "db-1" },
          { ip: "10.244.1.7", pod: "db-loose" },
          { ip: "10.244.2.9", hostname: "db-3", ready: false, pod: "db-3" },
        ],
        [{ name: "pg", port: 5432, protocol: "TCP" }],
      ),
      slice("demo", "empty-headless", "empty-headless-1", [{ ip: "10.244.2.20", hostname: "starting", ready: false }], [{ name: "http", port: 80, protocol: "TCP" }]),
      slice("demo", "big", "big-1", bigEndpoints, [{ name: "http", port: 80, protocol: "TCP" }]),
    ],
    pods: [pod("demo", "web-1", "10.244.1.10"), pod("demo", "web-2", "10.244.2.11")],
  };
}

export function cluster(): ClusterDnsData {
  return ClusterDnsData.from(clusterObjects(), 1_700_000_000);
}

export interface Asked {
  result: AnswerResult;
  /** The encoded response decoded by dns-packet; undefined when forwarded. */
  msg: DecodedResponse | undefined;
  bytes: Uint8Array | undefined;
  truncated: boolean;
}

export function ask(data: ClusterDnsData, q: QueryInit, opts: AnswerOptions = {}, transport: Transport = "udp"): Asked {
  const decoded = decodeQuery(encodeQuery(q));
  if (!decoded.ok) throw new Error(`query did not decode: ${decoded.detail}`);
  const result = answer(decoded.query, data, opts);
  if (result.kind === "forward") return { result, msg: undefined, bytes: undefined, truncated: false };
  const enc = encodeResponse(result.response, responseSizeLimit(decoded.query, transport), transport);
  return { result, msg: decodeResponse(enc.bytes), bytes: enc.bytes, truncated: enc.truncated };
}

/** The data of the answer records of one type. */
export function dataOf(msg: DecodedResponse | undefined, type: string, section: "answers" | "additionals" | "authorities" = "answers"): unknown[] {
  return (msg?.[section] ?? []).filter((a) => a.type === type).map((a) => (a as { data: unknown }).data);
}
