import { describe, expect, it } from "vitest";
import { leaseDurationSeconds, microTime, nodeStatusDue, NODE_STATUS_REPORT_MS } from "../../node-agent/nodelease.ts";
import type { KubeObject } from "../../cluster/store.ts";

const NOW = Date.parse("2024-06-01T12:00:00Z");

function self(ready?: { status: string; heartbeatSecondsBefore: number }): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: "node-a" },
    status: ready ? { conditions: [{ type: "Ready", status: ready.status, lastHeartbeatTime: new Date(NOW - ready.heartbeatSecondsBefore * 1000).toISOString() }] } : {},
  };
}

describe("node lease", () => {
  it("lasts four renew intervals (the kubelet renews at a quarter of the duration)", () => {
    expect(leaseDurationSeconds(1)).toBe(4);
    expect(leaseDurationSeconds(10)).toBe(40);
  });

  it("renewTime is a MicroTime", () => {
    expect(microTime(new Date("2024-06-01T12:00:00.123Z"))).toBe("2024-06-01T12:00:00.123000Z");
  });
});

describe("nodeStatusDue (the kubelet's node status update)", () => {
  const cases: Array<{ name: string; self: KubeObject | undefined; posted: boolean; want: boolean }> = [
    { name: "a restarted agent posts once, whatever is stored", self: self({ status: "True", heartbeatSecondsBefore: 1 }), posted: false, want: true },
    { name: "posted and stored True, recent: nothing", self: self({ status: "True", heartbeatSecondsBefore: 10 }), posted: true, want: false },
    { name: "the controller wrote Unknown meanwhile: post again", self: self({ status: "Unknown", heartbeatSecondsBefore: 10 }), posted: true, want: true },
    { name: "no Ready condition yet: post", self: self(), posted: true, want: true },
    { name: "nodeStatusReportFrequency elapsed: post again", self: self({ status: "True", heartbeatSecondsBefore: NODE_STATUS_REPORT_MS / 1000 }), posted: true, want: true },
    { name: "the Node is gone: nothing", self: undefined, posted: false, want: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(nodeStatusDue(c.self, true, c.posted, NOW)).toBe(c.want);
    });
  }
});
