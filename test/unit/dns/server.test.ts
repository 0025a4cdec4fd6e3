/**
 * The coredns app's server around the pure answers: UDP and TCP framing, truncation, malformed
 * input counted, forwarding with SERVFAIL/REFUSED; and kubelet's files (hosts, env) for pods.
 */
import { describe, expect, it } from "vitest";
import { DnsStats, serveQuery, type DnsBackend } from "../../../node-agent/apps/dns.ts";
import { ClusterDnsData } from "../../../node-agent/dns/records.ts";
import { QTYPE, decodeResponse, encodeQuery } from "../../../node-agent/dns/wire.ts";
import { containerEnv, expand } from "../../../node-agent/dns/env.ts";
import { podHostsFile } from "../../../node-agent/dns/hosts.ts";
import { questionEnd } from "../../../node-agent/dns/upstream.ts";
import { bigEndpoints, clusterObjects, slice, svc } from "./fixtures.ts";

function backend(forward: DnsBackend["forward"] = async () => undefined): DnsBackend {
  const base = clusterObjects();
  const objects = {
    ...base,
    services: [...base.services, svc("demo", "big", { clusterIP: "None", ports: [{ name: "http", port: 80 }] })],
    endpointSlices: [...base.endpointSlices, slice("demo", "big", "big-1", bigEndpoints, [{ name: "http", port: 80, protocol: "TCP" }])],
  };
  return { data: ClusterDnsData.from(objects), options: () => ({ zone: "cluster.local", ttl: 30 }), forward, stats: new DnsStats() };
}

describe("serveQuery", () => {
  it("answers a cluster name over UDP and counts it", async () => {
    const b = backend();
    const out = await serveQuery(b, encodeQuery({ id: 7, name: "web.demo.svc.cluster.local", type: QTYPE.A }), "udp");
    const r = decodeResponse(out!);
    expect([r.id, r.rcode, r.answers?.map((a) => ("data" in a ? a.data : undefined))]).toEqual([7, "NOERROR", ["10.96.0.20"]]);
    expect([b.stats.requests, b.stats.udpRequests]).toEqual([1, 1]);
  });

  it("truncates a 100-record answer to 512 bytes over UDP without EDNS0, and sends it whole over TCP", async () => {
    const b = backend();
    const q = encodeQuery({ id: 8, name: "big.demo.svc.cluster.local", type: QTYPE.A });
    const udp = (await serveQuery(b, q, "udp"))!;
    expect(udp.length).toBeLessThanOrEqual(512);
    expect(decodeResponse(udp).flag_tc).toBe(true);
    const tcp = decodeResponse((await serveQuery(b, q, "tcp"))!);
    expect([tcp.flag_tc, tcp.answers?.length]).toEqual([false, 100]);
    expect(b.stats.truncated).toBe(1);
  });

  it("drops and counts what has no usable header; answers FORMERR to a broken question", async () => {
    const b = backend();
    expect(await serveQuery(b, Uint8Array.from([1, 2, 3]), "udp")).toBeUndefined();
    const loop = Uint8Array.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01]);
    const out = await serveQuery(b, loop, "udp");
    expect(out && decodeResponse(out).rcode).toBe("FORMERR");
    expect([b.stats.malformedDropped, b.stats.formerr]).toEqual([1, 1]);
  });

  it("forwards a name outside the zone and relays the upstream's bytes", async () => {
    const b = backend(async (q) => {
      const r = Uint8Array.from(q);
      r[2] = r[2]! | 0x80; // QR
      return r;
    });
    const q = encodeQuery({ id: 9, name: "example.org", type: QTYPE.A });
    const out = await serveQuery(b, q, "udp");
    expect(out?.[0]).toBe(q[0]);
    expect(b.stats.forwarded).toBe(1);
  });

  it("SERVFAIL when no upstream answered, REFUSED over max_concurrent, with the query's ID and question", async () => {
    const none = backend(async () => undefined);
    const r1 = decodeResponse((await serveQuery(none, encodeQuery({ id: 10, name: "example.org", type: QTYPE.A }), "udp"))!);
    expect([r1.id, r1.rcode, r1.questions?.[0]?.name]).toEqual([10, "SERVFAIL", "example.org"]);
    const busy = backend(async () => "refused");
    const r2 = decodeResponse((await serveQuery(busy, encodeQuery({ id: 11, name: "example.org", type: QTYPE.A }), "udp"))!);
    expect(r2.rcode).toBe("REFUSED");
    expect([none.stats.forwardFailures, busy.stats.forwardRefused]).toEqual([1, 1]);
  });
});

describe("upstream questionEnd", () => {
  it("finds the end of the question, and refuses pointers and runaway names", () => {
    const q = encodeQuery({ id: 1, name: "a.bc", type: QTYPE.A });
    expect(questionEnd(q)).toBe(12 + 1 + 1 + 1 + 2 + 1 + 4);
    expect(questionEnd(Uint8Array.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1]))).toBeUndefined();
    expect(questionEnd(Uint8Array.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 97]))).toBeUndefined();
  });
});

describe("kubelet's /etc/hosts", () => {
  it("the pod's own line, and the FQDN when spec.subdomain is set", () => {
    const plain = podHostsFile({ metadata: { name: "web-1", namespace: "demo" }, spec: {} }, "10.244.1.5", "cluster.local");
    expect(plain).toContain("127.0.0.1\tlocalhost\n");
    expect(plain.endsWith("10.244.1.5\tweb-1\n")).toBe(true);
    const sub = podHostsFile({ metadata: { name: "db-0", namespace: "demo" }, spec: { hostname: "db-0", subdomain: "db" } }, "10.244.1.6", "cluster.local");
    expect(sub.endsWith("10.244.1.6\tdb-0.db.demo.svc.cluster.local\tdb-0\n")).toBe(true);
  });

  it("hostAliases follow under their comment", () => {
    const h = podHostsFile({ metadata: { name: "p" }, spec: { hostAliases: [{ ip: "10.1.2.3", hostnames: ["foo.local", "bar.local"] }, { ip: 5 }] } }, "10.244.1.7", "cluster.local");
    expect(h.endsWith("\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n")).toBe(true);
  });

  it("a hostname over 63 characters is truncated without a trailing dash", () => {
    const name = `${"a".repeat(62)}-bcd`;
    expect(podHostsFile({ metadata: { name }, spec: {} }, "10.244.1.8", "cluster.local").endsWith(`10.244.1.8\t${"a".repeat(62)}\n`)).toBe(true);
  });
});

describe("container environment (makeEnvironmentVariables)", () => {
  const pod = {
    metadata: { name: "p", namespace: "demo", uid: "u-1" },
    spec: {
      containers: [
        {
          name: "app",
          env: [
            { name: "A", value: "x" },
            { name: "B", value: "$(A)-$(WEB_SERVICE_HOST)-$(NOPE)-$$(A)" },
            { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
            { name: "NS", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
            { name: "SECRET", valueFrom: { secretKeyRef: { name: "s", key: "k" } } },
            { name: 7 },
          ],
        },
      ],
    },
  };
  it("service variables first, then the container's own with $(VAR) expanded, the downward API read", () => {
    const env = containerEnv(pod, "app", { WEB_SERVICE_HOST: "10.96.0.20" }, { podIP: "10.244.1.5", hostIP: "172.31.0.2", nodeName: "node-1" });
    expect(env).toEqual({ WEB_SERVICE_HOST: "10.96.0.20", A: "x", B: "x-10.96.0.20-$(NOPE)-$(A)", POD_IP: "10.244.1.5", NS: "demo" });
  });
  it("expand leaves unknown references as written", () => {
    expect(expand("$(X)$(Y)$$", { X: "1" })).toBe("1$(Y)$");
  });
});

describe("startDnsServer", () => {
  it("answers each datagram to its own sender though the netns reuses the meta object (two queries in one batch)", async () => {
    const { startDnsServer } = await import("../../../node-agent/apps/dns.ts");
    let handler: ((p: Uint8Array, m: { src: number; srcPort: number; dst: number; dstPort: number; ttl: number }) => void) | undefined;
    const sent: Array<{ dstPort: number; id: number }> = [];
    const udp = {
      bindUdp: (_port: number, h: typeof handler) => ((handler = h), { kind: "bound" as const, port: 53 }),
      sendUdp: (_dst: number, dstPort: number, _src: number, payload: Uint8Array) => (sent.push({ dstPort, id: (payload[0]! << 8) | payload[1]! }), { kind: "sent" as const }),
      unbindUdp: () => {},
      bindEphemeralUdp: () => 40000,
    };
    const tcp = { listen: () => ({ kind: "inUse" as const }), connect: async () => ({ kind: "refused" as const }) };
    const app = startDnsServer({ podName: "coredns", tcp, udp, log: () => {}, now: () => new Date(0) }, backend(), 53, () => {});
    // TCP 53 taken: the server refuses to start half-bound, as CoreDNS's listener fails.
    expect(app).toBeUndefined();
    const tcpOk = {
      listen: () => ({ kind: "listening" as const, listener: { port: 53, accept: () => new Promise<null>(() => {}), close: () => {}, [Symbol.asyncIterator]: undefined as never } }),
      connect: async () => ({ kind: "refused" as const }),
    };
    const served = startDnsServer({ podName: "coredns", tcp: tcpOk as never, udp, log: () => {}, now: () => new Date(0) }, backend(), 53, () => {});
    expect(served).toBeDefined();
    const meta = { src: 1, srcPort: 0, dst: 2, dstPort: 53, ttl: 64 };
    const payload = new Uint8Array(512);
    for (const [id, port] of [[1, 40001], [2, 40002]] as const) {
      const q = encodeQuery({ id, name: "web.demo.svc.cluster.local", type: QTYPE.A });
      payload.fill(0);
      payload.set(q);
      meta.srcPort = port;
      handler!(payload.subarray(0, q.length), meta);
    }
    await new Promise((r) => setImmediate(r));
    expect(sent.sort((a, b) => a.id - b.id)).toEqual([{ dstPort: 40001, id: 1 }, { dstPort: 40002, id: 2 }]);
    served!.stop();
  });
});
