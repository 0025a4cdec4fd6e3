import { describe, expect, it } from "vitest";
import { Conntrack } from "../../../node-agent/conntrack.ts";
import { Netfilter, Hook, Priority, type RuleSet } from "../../../node-agent/netfilter.ts";
import type { ProxyBackend } from "../../../node-agent/proxy/backend.ts";
import { ChangeTracker, type ProxyState } from "../../../node-agent/proxy/model.ts";
import { Proxier, PROXY_OWNER, type ProxierClock } from "../../../node-agent/proxy/proxier.ts";
import { ip, udpPacket } from "../packets.ts";
import { service, slice } from "./objects.ts";

/** A manual clock: timers fire when the test advances time. */
class ManualClock implements ProxierClock {
  t = 0;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.t;
  }
  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return () => (timer.live = false);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.live && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.t = due.at;
      due.fn();
    }
    this.t = end;
    this.timers = this.timers.filter((x) => x.live);
  }
}

/** Records what the proxier asks of a backend; its one rule set names the ports it was given. */
class RecordingBackend implements ProxyBackend {
  readonly mode = "iptables" as const;
  calls: { ports: string[]; changed: string[] | undefined }[] = [];
  fail = false;
  sync(state: ProxyState, changed: ReadonlySet<string> | undefined): readonly RuleSet[] {
    if (this.fail) throw new Error("compile failed");
    this.calls.push({ ports: state.servicePorts.map((p) => p.id), changed: changed && [...changed] });
    return [{ name: `rules-${this.calls.length}`, hook: Hook.Prerouting, priority: Priority.DstNat, nat: true, evaluate: () => ({ kind: "accept" }) }];
  }
  dump(): string | undefined {
    return undefined;
  }
}

function setup(opts: { minSyncMs?: number; maxSyncMs?: number } = {}) {
  const clock = new ManualClock();
  const backend = new RecordingBackend();
  const tracker = new ChangeTracker("node-1");
  const netfilter = new Netfilter();
  const conntrack = new Conntrack();
  const synced: ProxyState[] = [];
  const errors: unknown[] = [];
  const proxier = new Proxier({ backend, tracker, netfilter, conntrack, clock, wallNow: () => 1_000_000 + clock.t, onSynced: (s) => synced.push(s), onError: (e) => errors.push(e), ...opts });
  return { clock, backend, tracker, netfilter, conntrack, proxier, synced, errors };
}

describe("Proxier sync loop (BoundedFrequencyRunner)", () => {
  it("syncs at once twice (burst 2), then coalesces changes until the next token after minSyncMs", () => {
    const { clock, backend, tracker, proxier, netfilter } = setup({ minSyncMs: 1000 });
    tracker.service("default/web", service("web", {}));
    proxier.requestSync();
    clock.advance(0);
    expect(backend.calls).toHaveLength(1);
    expect(backend.calls[0]!.changed).toBeUndefined();
    expect(netfilter.ruleSets().map((s) => s.name)).toEqual(["rules-1"]);
    for (let i = 0; i < 10; i++) {
      tracker.slice("default/web", "a", slice("web", "a", [{ ip: `10.244.1.${i + 2}` }]));
      proxier.requestSync();
      clock.advance(50);
    }
    // The second change used the second token at once; the rest wait for a token (t = 1000).
    expect(backend.calls).toHaveLength(2);
    clock.advance(1000 - clock.t - 1);
    expect(backend.calls).toHaveLength(2);
    clock.advance(1);
    expect(backend.calls).toHaveLength(3);
    expect(backend.calls[2]!.changed).toEqual(["default/web:http"]);
    expect(proxier.stats).toMatchObject({ syncs: 3, fullSyncs: 1, partialSyncs: 2 });
  });

  it("runs a full sync every maxSyncMs even without changes", () => {
    const { clock, backend, proxier } = setup({ minSyncMs: 1000, maxSyncMs: 30_000 });
    proxier.requestSync();
    clock.advance(0);
    clock.advance(30_000);
    expect(backend.calls).toHaveLength(2);
    expect(backend.calls[1]!.changed).toBeUndefined();
  });

  it("keeps the old rules when a sync fails and recompiles everything next time", () => {
    const { clock, backend, tracker, proxier, netfilter, errors } = setup({ minSyncMs: 1000 });
    tracker.service("default/web", service("web", {}));
    proxier.requestSync();
    clock.advance(0);
    backend.fail = true;
    tracker.service("default/db", service("db", { clusterIP: "10.96.0.11" }));
    proxier.requestSync();
    clock.advance(0);
    expect(errors).toHaveLength(1);
    expect(netfilter.ruleSets().map((s) => s.name)).toEqual(["rules-1"]);
    backend.fail = false;
    clock.advance(1000);
    expect(backend.calls.at(-1)!.changed).toBeUndefined();
    expect(backend.calls.at(-1)!.ports).toEqual(["default/db:http", "default/web:http"]);
    expect(netfilter.ruleSets().map((s) => s.name)).toEqual(["rules-2"]);
    expect(proxier.stats.failures).toBe(1);
  });

  it("installs its rules under one owner, leaving others' rule sets alone", () => {
    const { clock, proxier, netfilter } = setup();
    netfilter.replace("policy", [{ name: "policy", hook: Hook.Forward, priority: Priority.Filter, evaluate: () => ({ kind: "accept" }) }]);
    proxier.requestSync();
    clock.advance(0);
    expect(netfilter.ruleSets().map((s) => s.name).sort()).toEqual(["policy", "rules-1"]);
    expect(PROXY_OWNER).toBe("kube-proxy");
  });

  it("deletes UDP conntrack entries DNATed to an endpoint that went (cleanup.go)", () => {
    const { clock, tracker, proxier, conntrack } = setup({ minSyncMs: 0 });
    const udp = { ports: [{ name: "dns", port: 53, protocol: "UDP" }] };
    tracker.service("default/dns", service("dns", udp));
    tracker.slice("default/dns", "a", slice("dns", "a", [{ ip: "10.244.1.5" }, { ip: "10.244.2.5" }], [{ name: "dns", port: 5353, protocol: "UDP" }]));
    proxier.requestSync();
    clock.advance(0);
    // Two clients' flows through the VIP, one to each endpoint.
    const flow = (client: string, endpoint: string) => {
      const p = udpPacket({ src: ip(client), dst: ip("10.96.0.10"), sport: 40000, dport: 53 });
      conntrack.in(p, 0);
      conntrack.bindNat(p.ct!, "dnat", ip(endpoint), 5353, () => 0.5);
      conntrack.nat(p, "dst");
      expect(conntrack.confirm(p, 0)).toBe("ok");
    };
    flow("10.244.1.9", "10.244.1.5");
    flow("10.244.1.10", "10.244.2.5");
    expect(conntrack.size).toBe(2);
    tracker.slice("default/dns", "a", slice("dns", "a", [{ ip: "10.244.1.5" }], [{ name: "dns", port: 5353, protocol: "UDP" }]));
    proxier.requestSync();
    clock.advance(1);
    expect(proxier.stats.staleUdpEntriesDeleted).toBe(1);
    expect(conntrack.list().map((e) => e.tuple[1].src)).toEqual([ip("10.244.1.5")]);
  });

  it("measures network programming latency from the slice's trigger time", () => {
    const { clock, tracker, proxier } = setup({ minSyncMs: 0 });
    tracker.service("default/web", service("web", {}));
    proxier.requestSync();
    clock.advance(0);
    clock.advance(100);
    const s = slice("web", "a", [{ ip: "10.244.1.5" }]);
    s.metadata = { ...s.metadata, annotations: { "endpoints.kubernetes.io/last-change-trigger-time": new Date(1_000_000 + clock.t - 40).toISOString() } } as typeof s.metadata;
    tracker.slice("default/web", "a", s);
    proxier.requestSync();
    clock.advance(0);
    expect(proxier.programmingLatencies()).toEqual([40]);
  });
});
