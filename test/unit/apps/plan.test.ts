import { describe, expect, it } from "vitest";
import { imageBasename, plan, type ContainerSpec } from "../../../node-agent/apps/index.ts";
import { cluster } from "./harness.ts";

const c = (over: Partial<ContainerSpec>): ContainerSpec => ({ name: "c", image: "busybox", ports: [], ...over });

describe("plan", () => {
  it("reads image basenames across registries, tags and digests", () => {
    expect(imageBasename("registry.k8s.io/e2e-test-images/agnhost:2.53")).toBe("agnhost");
    expect(imageBasename("docker.io/library/nginx@sha256:abc")).toBe("nginx");
    expect(imageBasename("localhost:5000/httpd:2.4")).toBe("httpd");
    expect(imageBasename("nginx")).toBe("nginx");
  });

  const cases: Array<{ name: string; containers: ContainerSpec[]; apps: unknown[]; notes?: number }> = [
    {
      name: "agnhost netexec with defaults",
      containers: [c({ image: "registry.k8s.io/e2e-test-images/agnhost:2.53", args: ["netexec"] })],
      apps: [{ kind: "netexecHttp", container: "c", port: 8080 }, { kind: "netexecUdp", container: "c", port: 8081 }],
    },
    {
      name: "agnhost netexec --http-port=N and --udp-port N, in command",
      containers: [c({ image: "agnhost:2.40", command: ["/agnhost", "netexec", "--http-port=9000", "--udp-port", "9001"] })],
      apps: [{ kind: "netexecHttp", container: "c", port: 9000 }, { kind: "netexecUdp", container: "c", port: 9001 }],
    },
    {
      name: "agnhost --udp-port=-1 disables UDP; an undeclared containerPort is noted",
      containers: [c({ image: "agnhost:2.53", args: ["netexec", "--http-port=8080", "--udp-port=-1"], ports: [{ containerPort: 9999, protocol: "TCP" }] })],
      apps: [{ kind: "netexecHttp", container: "c", port: 8080 }],
      notes: 1,
    },
    {
      name: "nginx listens on 80 whatever is declared",
      containers: [c({ image: "nginx:1.27", ports: [{ containerPort: 8080, protocol: "TCP" }] })],
      apps: [{ kind: "web", container: "c", port: 80, flavor: "nginx" }],
      notes: 1,
    },
    {
      name: "httpd",
      containers: [c({ image: "docker.io/library/httpd:2.4-alpine" })],
      apps: [{ kind: "web", container: "c", port: 80, flavor: "httpd" }],
    },
    {
      name: "other images serve their declared ports",
      containers: [c({ image: "myorg/api:v3", ports: [{ containerPort: 3000, protocol: "TCP" }, { containerPort: 53, protocol: "UDP" }] })],
      apps: [{ kind: "netexecHttp", container: "c", port: 3000 }, { kind: "udpEcho", container: "c", port: 53 }],
    },
    {
      name: "agnhost serve-hostname",
      containers: [c({ image: "agnhost:2.53", args: ["serve-hostname", "--port=9377"] })],
      apps: [{ kind: "hostnameHttp", container: "c", port: 9377 }],
    },
    {
      name: "two containers on one port are both planned (the bind decides)",
      containers: [c({ name: "a", image: "nginx" }), c({ name: "b", image: "app", ports: [{ containerPort: 80, protocol: "TCP" }] })],
      apps: [{ kind: "web", container: "a", port: 80, flavor: "nginx" }, { kind: "netexecHttp", container: "b", port: 80 }],
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const p = plan(tc.containers);
      expect(p.apps).toEqual(tc.apps);
      expect(p.notes.length).toBe(tc.notes ?? 0);
    });
  }

  it("the second container on a port logs the bind failure and is not listening", () => {
    const { apps, logs } = cluster([c({ name: "a", image: "nginx" }), c({ name: "b", image: "app", ports: [{ containerPort: 80, protocol: "TCP" }] })]);
    expect(apps.listening).toEqual([{ port: 80, protocol: "TCP", app: "nginx", container: "a" }]);
    expect(logs.some((l) => l.startsWith("[b] ") && l.endsWith("listen tcp :80: bind: address already in use"))).toBe(true);
    apps.stop();
  });
});
