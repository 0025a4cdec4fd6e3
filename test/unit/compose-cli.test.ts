/**
 * The CLI's view of a docker compose cluster without docker: containers read from `docker
 * inspect`, the container a chaos target names, the project to attach to.
 */
import { describe, expect, it } from "vitest";
import { chooseProject, containerFor, readContainers } from "../../cli/compose.ts";

const inspect = JSON.stringify([
  { Id: "aaaa1111bbbb2222", Config: { Hostname: "gateway", Labels: { "com.docker.compose.service": "gateway" } }, State: { Status: "running" } },
  { Id: "0f3c9a1b2c3d4e5f", Config: { Hostname: "0f3c9a1b2c3d", Labels: { "com.docker.compose.service": "node" } }, State: { Status: "exited" } },
  { Id: "9999888877776666", Config: { Hostname: "9999888877776666", Labels: { "com.docker.compose.service": "nats" } }, State: { Status: "running" } },
  { Id: "5555444433332222", Config: { Hostname: "cp", Labels: { "com.docker.compose.service": "control-plane" } }, State: { Status: "paused" } },
  { Id: "nolabel", Config: { Hostname: "x", Labels: {} } },
]);

describe("compose containers", () => {
  it("reads id, service, hostname and state of the project's containers from docker inspect", () => {
    expect(readContainers(inspect)).toEqual([
      { id: "aaaa1111bbbb2222", service: "gateway", hostname: "gateway", state: "running" },
      { id: "0f3c9a1b2c3d4e5f", service: "node", hostname: "0f3c9a1b2c3d", state: "exited" },
      { id: "9999888877776666", service: "nats", hostname: "9999888877776666", state: "running" },
      { id: "5555444433332222", service: "control-plane", hostname: "cp", state: "paused" },
    ]);
    expect(readContainers("not json")).toEqual([]);
    expect(readContainers("{}")).toEqual([]);
  });

  it("names nats and control-plane by service, a node by the hostname it took", () => {
    const cs = readContainers(inspect);
    expect(containerFor(cs, "nats")).toMatchObject({ kind: "ok", container: { service: "nats" } });
    expect(containerFor(cs, "control-plane")).toMatchObject({ kind: "ok", container: { id: "5555444433332222" } });
    expect(containerFor(cs, "gateway")).toMatchObject({ kind: "ok", container: { id: "aaaa1111bbbb2222" } });
    expect(containerFor(cs, "0f3c9a1b2c3d")).toMatchObject({ kind: "ok", container: { service: "node" } });
    expect(containerFor(cs, "node-9")).toEqual({ kind: "invalid", message: 'no container of this compose project runs "node-9"; there are: 0f3c9a1b2c3d, control-plane, gateway, nats' });
  });

  it("names the servers of the NATS cluster option (deploy/compose-nats-cluster.yml) by service too, never as nodes", () => {
    const cs = [...readContainers(inspect), { id: "3333222211110000", service: "nats-2", hostname: "333322221111", state: "running" }];
    expect(containerFor(cs, "nats-2")).toMatchObject({ kind: "ok", container: { id: "3333222211110000" } });
    expect(containerFor(cs, "333322221111")).toEqual({ kind: "invalid", message: 'no container of this compose project runs "333322221111"; there are: 0f3c9a1b2c3d, control-plane, gateway, nats, nats-2' });
  });

  it("never takes the one-shot pki container for a node", () => {
    const cs = [...readContainers(inspect), { id: "7777666655554444", service: "pki", hostname: "7777666655554444", state: "exited" }];
    expect(containerFor(cs, "7777666655554444")).toEqual({ kind: "invalid", message: 'no container of this compose project runs "7777666655554444"; there are: 0f3c9a1b2c3d, control-plane, gateway, nats' });
  });
});

describe("attach", () => {
  it("takes the project named, or the only one running kubewire", () => {
    expect(chooseProject("a", ["a", "b"])).toEqual({ kind: "ok", project: "a" });
    expect(chooseProject(undefined, ["kubewire"])).toEqual({ kind: "ok", project: "kubewire" });
    expect(chooseProject(undefined, [])).toMatchObject({ kind: "invalid", message: expect.stringMatching(/no compose project runs a kubewire control plane/) });
    expect(chooseProject(undefined, ["a", "b"])).toMatchObject({ kind: "invalid", message: expect.stringMatching(/several compose projects run kubewire: a, b; name one with -p/) });
    expect(chooseProject("c", ["a"])).toMatchObject({ kind: "invalid", message: expect.stringMatching(/"c" runs no kubewire control plane here \(these do: a\)/) });
  });
});
