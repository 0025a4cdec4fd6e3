/**
 * Chaos scenarios without a cluster: the file's grammar and its errors, the plan (one seed, one
 * run), and recovery times read from per-interval errors.
 */
import { describe, expect, it } from "vitest";
import { parseScenario, planScenario, recoveries, type Interval, type Scenario } from "../../cli/chaos-scenario.ts";

const FILE = `
name: failover
seed: 42
load: [service/web, --rate, 200]
settle: 10s
recoverWithin: 12s
steps:
  - at: 5s
    kill: random-node
  - at: 15s
    restart: node-2
  - at: 20s
    for: 15s
    networkChaos:
      action: netem
      selector: { nodes: [node-1] }
      loss: { loss: "5" }
`;

function scenario(text = FILE): Scenario {
  const r = parseScenario(text, "file");
  if (r.kind !== "ok") throw new Error(r.message);
  return r.value;
}

describe("scenario file", () => {
  it("reads every field", () => {
    expect(scenario()).toEqual({
      name: "failover",
      seed: 42,
      load: ["service/web", "--rate", "200"],
      settleMs: 10_000,
      recoverWithinMs: 12_000,
      steps: [
        { atMs: 5000, forMs: undefined, action: { kind: "process", verb: "kill", target: "random-node" } },
        { atMs: 15_000, forMs: undefined, action: { kind: "process", verb: "restart", target: "node-2" } },
        { atMs: 20_000, forMs: 15_000, action: { kind: "network", spec: { action: "netem", selector: { nodes: ["node-1"] }, loss: { loss: "5" } } } },
      ],
    });
  });

  it("takes its name from the file and defaults seed, load and settle", () => {
    expect(scenario("steps: [{at: 1s, pause: nats}]")).toMatchObject({ name: "file", seed: 1, load: [], settleMs: 20_000, recoverWithinMs: undefined });
  });

  it("names the field of every mistake", () => {
    const message = (text: string) => {
      const r = parseScenario(text, "file");
      return r.kind === "invalid" ? r.message : "";
    };
    expect(message("steps: [")).toMatch(/^not YAML/);
    expect(message("- a")).toMatch(/a scenario is a mapping/);
    expect(message("stepz: []")).toBe("stepz: unknown field (name, seed, load, settle, recoverWithin, steps)");
    expect(message("name: Not_A_Label\nsteps: [{at: 1s, kill: nats}]")).toMatch(/^name: want a DNS label/);
    expect(message("seed: -1\nsteps: [{at: 1s, kill: nats}]")).toMatch(/^seed:/);
    expect(message("load: [svc/web, --duration, 5s]\nsteps: [{at: 1s, kill: nats}]")).toMatch(/^load: --duration is set by the run/);
    expect(message("steps: []")).toBe("steps: want a list of at least one step");
    expect(message("steps: [{at: soon, kill: nats}]")).toBe('steps[0].at: want a duration like 5s or 1m, got "soon"');
    expect(message("steps: [{at: 1s}]")).toMatch(/^steps\[0\]: want exactly one action .* got none/);
    expect(message("steps: [{at: 1s, kill: nats, pause: nats}]")).toMatch(/got kill, pause$/);
    expect(message("steps: [{at: 1s, explode: nats}]")).toMatch(/^steps\[0\]\.explode: unknown action/);
    expect(message("steps: [{at: 1s, kill: nats, for: 5s}]")).toMatch(/^steps\[0\]\.for: only a networkChaos step lasts/);
    expect(message("steps: [{at: 1s, networkChaos: [1]}]")).toMatch(/^steps\[0\]\.networkChaos: want a NetworkChaos spec/);
    expect(message("steps: [{at: 5s, kill: nats}, {at: 1s, restart: nats}]")).toMatch(/^steps\[1\]\.at: steps go in time order/);
    expect(message("steps: [{at: 2h, kill: nats}]")).toBe("steps[0].at: at most 1h, got 2h");
  });
});

describe("plan", () => {
  it("resolves random targets and fault seeds from the seed: the same seed, the same plan", () => {
    const a = planScenario(scenario(), ["node-1", "node-2", "node-3"]);
    const b = planScenario(scenario(), ["node-3", "node-1", "node-2"]);
    if (a.kind !== "ok" || b.kind !== "ok") throw new Error("invalid");
    expect(b.value).toEqual(a.value);
    expect(a.value.durationMs).toBe(45_000);
    const [kill, restart, net] = a.value.steps;
    expect(kill!.action).toMatchObject({ kind: "process", verb: "kill" });
    expect(["node-1", "node-2", "node-3"]).toContain((kill!.action as { target: string }).target);
    expect(restart).toMatchObject({ atMs: 15_000, recoverFromMs: 15_000, describe: "restart node-2" });
    expect(net).toMatchObject({ atMs: 20_000, recoverFromMs: 35_000, action: { kind: "network", untilMs: 35_000, object: { kind: "NetworkChaos", metadata: { namespace: "kubewire-chaos", name: "failover-2" } } } });
    expect(typeof (net!.action as unknown as { object: { spec: { seed: unknown } } }).object.spec.seed).toBe("number");
    // Another seed picks independently (over many seeds, more than one node gets picked).
    const picks = new Set(
      Array.from({ length: 20 }, (_, seed) => {
        const p = planScenario({ ...scenario(), seed }, ["node-1", "node-2", "node-3"]);
        return p.kind === "ok" ? (p.value.steps[0]!.action as { target: string }).target : "";
      }),
    );
    expect(picks.size).toBeGreaterThan(1);
  });

  it("a spec's own seed is kept; a fault without `for` lasts until the run ends", () => {
    const s = scenario("settle: 5s\nsteps: [{at: 2s, networkChaos: {action: partition, seed: 7}}]");
    const p = planScenario(s, []);
    if (p.kind !== "ok") throw new Error(p.message);
    expect(p.value.durationMs).toBe(7000);
    expect(p.value.steps[0]).toMatchObject({ recoverFromMs: 7000, action: { untilMs: 7000, object: { spec: { seed: 7 } } } });
    expect(planScenario(scenario("steps: [{at: 1s, kill: random-node}]"), []).kind).toBe("invalid");
  });
});

describe("recovery", () => {
  const plan = (() => {
    const p = planScenario(scenario("settle: 10s\nsteps: [{at: 5s, kill: node-1}, {at: 15s, restart: node-1}, {at: 20s, for: 5s, networkChaos: {action: partition}}]"), ["node-1"]);
    if (p.kind !== "ok") throw new Error("invalid");
    return p.value;
  })();
  /** One-second intervals over the 35 s run, failing in the given seconds. */
  const intervals = (failing: number[]): Interval[] => Array.from({ length: 35 }, (_, s) => ({ startMs: s * 1000, endMs: (s + 1) * 1000, ok: failing.includes(s) ? 0 : 10, errors: failing.includes(s) ? 3 : 0 }));

  it("counts from the fault's end to the end of the last failing interval before the next step", () => {
    expect(recoveries(plan, intervals([5, 6, 7, 21, 22, 25, 26]))).toEqual([
      { step: 0, errors: 9, recoveredAfterMs: 3000 },
      { step: 1, errors: 0, recoveredAfterMs: 0 },
      // The partition ends at 25 s: errors during it do not count against recovery, after it 2 s.
      { step: 2, errors: 12, recoveredAfterMs: 2000 },
    ]);
  });

  it("says when traffic never came back before the next step", () => {
    expect(recoveries(plan, intervals([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]))[0]).toEqual({ step: 0, errors: 30, recoveredAfterMs: undefined });
  });
});
