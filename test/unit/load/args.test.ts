import { describe, expect, it } from "vitest";
import { parseDuration, parseLoadArgs, parseTarget, parseThreshold, splitLoad } from "../../../cli/load-args.ts";

const ok = <T>(p: { kind: "ok"; value: T } | { kind: "invalid"; message: string }): T => {
  if (p.kind !== "ok") throw new Error(p.message);
  return p.value;
};
const invalid = (p: { kind: string; message?: string }) => (p.kind === "invalid" ? p.message : `parsed: ${JSON.stringify(p)}`);

describe("kubewire load arguments", () => {
  it("defaults: http to netexec, closed loop, 10 s, 5 s timeout, clients created", () => {
    expect(ok(parseLoadArgs(["svc/web"]))).toEqual({
      target: { kind: "svc", name: "web" },
      scenario: "http",
      port: undefined,
      rate: 0,
      connections: undefined,
      durationMs: 10_000,
      timeoutMs: 5000,
      requestBytes: 0,
      responseBytes: 16,
      reuse: true,
      clients: { kind: "create" },
      thresholds: [],
      output: "text",
      namespace: "default",
      stateDir: undefined,
    });
  });

  it("every flag", () => {
    const o = ok(parseLoadArgs(["pods/app=web", "--scenario", "tcp-rr", "-p", "5201", "--rate", "500", "-c", "12", "-d", "2m", "--timeout", "250ms", "--request-bytes", "4", "--response-bytes", "900", "--clients", "app=client", "--threshold", "p(99)<20", "-o", "json", "-n", "demo"]));
    expect(o).toMatchObject({ target: { kind: "pods", selector: "app=web" }, scenario: "tcp-rr", port: "5201", rate: 500, connections: 12, durationMs: 120_000, timeoutMs: 250, responseBytes: 900, clients: { kind: "selector", selector: "app=client" }, output: "json", namespace: "demo" });
    // A tcp-rr request carries its 8-byte header at least.
    expect(o.requestBytes).toBe(8);
    expect(o.thresholds).toEqual([{ text: "p(99)<20", metric: "p99", op: "<", value: 20 }]);
  });

  it("targets", () => {
    expect(ok(parseTarget("pod/a,b,a"))).toEqual({ kind: "pod", names: ["a", "b"] });
    expect(ok(parseTarget("nodeport/web"))).toEqual({ kind: "nodeport", name: "web" });
    expect(ok(parseTarget("service/web"))).toEqual({ kind: "svc", name: "web" });
    expect(ok(parseTarget("lb/web"))).toEqual({ kind: "lb", name: "web" });
    expect(ok(parseLoadArgs(["lb/web"])).reuse).toBe(true);
    expect(ok(parseLoadArgs(["lb/web", "--no-reuse"])).reuse).toBe(false);
    expect(invalid(parseLoadArgs(["svc/web", "--scenario", "udp-rr", "--no-reuse"]))).toContain("--no-reuse: a udp-rr run has no requests");
    expect(invalid(parseTarget("web"))).toContain("want pod/NAME, pods/SELECTOR, svc/NAME, nodeport/NAME or lb/NAME");
    expect(invalid(parseLoadArgs(["lb/web", "--clients", "app=x"]))).toContain("--clients: a lb/ run's client is this host");
    expect(invalid(parseTarget("svc/Web_1"))).toContain("Service name");
  });

  it("bad input is named", () => {
    expect(invalid(parseLoadArgs([]))).toContain("a TARGET is required");
    expect(invalid(parseLoadArgs(["svc/web", "--rate", "-1"]))).toContain("--rate");
    expect(invalid(parseLoadArgs(["svc/web", "--scenario", "sctp"]))).toContain("--scenario");
    expect(invalid(parseLoadArgs(["svc/web", "--duration", "forever"]))).toContain("--duration");
    expect(invalid(parseLoadArgs(["svc/web", "--connections", "0"]))).toContain("--connections");
    expect(invalid(parseLoadArgs(["svc/web", "--response-bytes", "9000"]))).toContain("--response-bytes");
    expect(invalid(parseLoadArgs(["svc/web", "--scenario", "tcp-stream", "--rate", "5"]))).toContain("tcp-stream");
    expect(invalid(parseLoadArgs(["svc/web", "--threshold", "rate>=0.9"]))).toContain("closed loop");
    expect(invalid(parseLoadArgs(["nodeport/web", "--clients", "app=x"]))).toContain("this host");
    expect(invalid(parseLoadArgs(["pod/a", "--port", "http"]))).toContain("port number");
    expect(invalid(parseLoadArgs(["svc/web", "-o", "yaml"]))).toContain("json");
    expect(invalid(parseLoadArgs(["svc/web", "--bogus"]))).toContain("bogus");
    expect(invalid(parseLoadArgs(["svc/web", "extra"]))).toContain("extra");
  });

  it("durations", () => {
    expect(["500ms", "3s", "1.5", "2m", "1h", "x", "-1s"].map(parseDuration)).toEqual([500, 3000, 1500, 120_000, 3_600_000, undefined, undefined]);
  });
});

describe("threshold grammar", () => {
  const t = (s: string) => ok(parseThreshold(s));
  it("latencies in us, ms (default) or s; k6's p(N) spelling", () => {
    expect(t("p99<50ms")).toEqual({ text: "p99<50ms", metric: "p99", op: "<", value: 50 });
    expect(t("p99.9 <= 1s")).toMatchObject({ metric: "p99.9", op: "<=", value: 1000 });
    expect(t("max<250us")).toMatchObject({ metric: "max", value: 0.25 });
    expect(t("p(90)<7")).toMatchObject({ metric: "p90", value: 7 });
    expect(t("connect_p99<3ms")).toMatchObject({ metric: "connect_p99", value: 3 });
  });
  it("shares as fractions or percentages, rates, bytes", () => {
    expect(t("errors<1%")).toMatchObject({ metric: "errors", value: 0.01 });
    expect(t("errors==0")).toMatchObject({ metric: "errors", op: "==", value: 0 });
    expect(t("rate>=0.95")).toMatchObject({ metric: "rate", op: ">=", value: 0.95 });
    expect(t("rate>=95%")).toMatchObject({ value: 0.95 });
    expect(t("rps>1000")).toMatchObject({ metric: "rps", op: ">", value: 1000 });
    expect(t("throughput>=10MB/s")).toMatchObject({ metric: "throughput", value: 10e6 });
    expect(t("throughput>=1MiB")).toMatchObject({ value: 1024 * 1024 });
  });
  it("what it refuses", () => {
    expect(invalid(parseThreshold("p99"))).toContain("METRIC OP VALUE");
    expect(invalid(parseThreshold("p95<5ms"))).toContain('unknown metric "p95"');
    expect(invalid(parseThreshold("errors<5ms"))).toContain("fraction or a percentage");
    expect(invalid(parseThreshold("errors<150%"))).toContain("at most 1");
    expect(invalid(parseThreshold("p99<5parsecs"))).toContain("us, ms or s");
    expect(invalid(parseThreshold("throughput>5furlongs"))).toContain("bytes/s");
  });
});

describe("sharing a run among clients", () => {
  it("connections as evenly as they go, the rate in proportion, targets round-robin over all connections", () => {
    expect(splitLoad(3, 7, 700, 3)).toEqual([
      { connections: 3, rate: 300, targetOffset: 0 },
      { connections: 2, rate: 200, targetOffset: 0 },
      { connections: 2, rate: 200, targetOffset: 2 },
    ]);
    const shares = splitLoad(4, 10, 0, 3);
    expect(shares.reduce((n, s) => n + s.connections, 0)).toBe(10);
    expect(shares.every((s) => s.rate === 0)).toBe(true);
  });
});
