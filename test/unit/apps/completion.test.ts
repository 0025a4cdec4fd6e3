import { describe, expect, it } from "vitest";
import { completionPlan, shellSplit, type ContainerSpec } from "../../../node-agent/apps/index.ts";

const TOOLS = new Set(["curl", "wget", "nc", "ping"]);
const c = (o: Partial<ContainerSpec>): ContainerSpec => ({ name: "c", image: "busybox", ports: [], ...o });

describe("shellSplit", () => {
  it("splits simple command lines like a shell", () => {
    expect(shellSplit("wget -qO- http://x")).toEqual(["wget", "-qO-", "http://x"]);
    expect(shellSplit(`curl -s  'http://a b'  "x\\"y" z\\ w`)).toEqual(["curl", "-s", "http://a b", 'x"y', "z w"]);
    expect(shellSplit(`echo ""`)).toEqual(["echo", ""]);
  });
  it("refuses what is not one simple command", () => {
    for (const bad of ["a; b", "a | b", "a && b", "echo $HOME", "echo `x`", "'open", "a > f"]) expect(shellSplit(bad), bad).toBeUndefined();
  });
});

describe("completionPlan", () => {
  it("a tool command with restartPolicy Never/OnFailure runs to completion", () => {
    expect(completionPlan([c({ command: ["curl", "-s", "http://10.244.1.5:8080/hostname"] })], "Never", TOOLS)).toEqual([{ container: "c", argv: ["curl", "-s", "http://10.244.1.5:8080/hostname"] }]);
    expect(completionPlan([c({ command: ["/bin/sh", "-c"], args: ["wget -qO- http://x"] })], "OnFailure", TOOLS)).toEqual([{ container: "c", argv: ["wget", "-qO-", "http://x"] }]);
    expect(completionPlan([c({ image: "curlimages/curl:8.5.0", args: ["-s", "http://x"] })], "Never", TOOLS)).toEqual([{ container: "c", argv: ["curl", "-s", "http://x"] }]);
    expect(completionPlan([c({ command: ["sh", "-c", "echo hello"] })], "Never", TOOLS)).toEqual([{ container: "c", argv: ["echo", "hello"] }]);
  });
  it("anything else keeps the old behaviour", () => {
    expect(completionPlan([c({ command: ["curl", "http://x"] })], "Always", TOOLS)).toBeUndefined();
    expect(completionPlan([c({ command: ["curl", "http://x"] })], undefined, TOOLS)).toBeUndefined();
    expect(completionPlan([c({ image: "nginx" })], "Never", TOOLS)).toBeUndefined();
    expect(completionPlan([c({ command: ["sh", "-c", "curl x | grep y"] })], "Never", TOOLS)).toBeUndefined();
    expect(completionPlan([c({ command: ["curl", "x"] }), c({ name: "web", image: "nginx" })], "Never", TOOLS)).toBeUndefined();
  });
});
