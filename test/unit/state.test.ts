/** The CLI's state file holds the API token: written 0600, even over an older world-readable file. */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readState, writeState, type ClusterState } from "../../cli/state.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("writeState", () => {
  it("writes cluster.json with mode 0600 and reads it back", () => {
    const dir = mkdtempSync(join(tmpdir(), "kubewire-state-"));
    dirs.push(dir);
    const stateDir = join(dir, "sub");
    const state: ClusterState = { natsUrl: "nats://x", apiUrl: "https://x", token: "secret", ca: "", stateDir, processes: [] };
    writeState(state);
    expect(statSync(join(stateDir, "cluster.json")).mode & 0o777).toBe(0o600);
    expect(statSync(stateDir).mode & 0o077).toBe(0);
    expect(readState(stateDir)).toEqual(state);
    writeFileSync(join(stateDir, "cluster.json"), "{}", { mode: 0o644 });
    writeState({ ...state, token: "other" });
    expect(statSync(join(stateDir, "cluster.json")).mode & 0o777).toBe(0o600);
    expect(readState(stateDir)?.token).toBe("other");
  });
});
