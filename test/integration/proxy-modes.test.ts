/**
 * The ipvs and nftables proxy modes on three node processes each (`kubewire up --proxy-mode`):
 * what differs from iptables mode. ClusterIP traffic from a pod, IPVS round robin exactly even
 * and nftables' numgen spread within 20 %, the native dumps (`ipvsadm -Ln`, `nft list ruleset`),
 * a Service without endpoints refused at once, and a NodePort from the host.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, startWebPods, until } from "./fixture.ts";



for (const mode of ["ipvs", "nftables"] as const) {
  describe(`proxy mode ${mode}`, () => {
    let cluster: TestCluster;
    const ok = (args: string[]): Promise<string> => cluster.kubectlOk(args);
    const getJson = async (args: string[]): Promise<any> => JSON.parse(await ok(["get", ...args, "-o", "json"]));
    const dial = async (host: string, port: number, tries: number) => {
      const out = JSON.parse(await ok(["exec", "client", "--", "curl", "-s", `http://127.0.0.1:8080/dial?request=hostname&host=${host}&port=${port}&tries=${tries}`]));
      return { responses: (out.responses ?? []) as string[], errors: (out.errors ?? []) as string[] };
    };

    beforeAll(async () => {
      cluster = await TestCluster.start({ nodes: 3, env: { KUBEWIRE_PROXY_MODE: mode } });
      await startWebPods(cluster);
      await cluster.apply({ apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { type: "NodePort", selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }] } });
      const vip = (await getJson(["svc", "web"])).spec.clusterIP;
      await until("web has 3 endpoints", async () => (new Set((await dial(vip, 80, 30)).responses).size === 3 ? true : undefined), 30_000);
    }, 180_000);

    afterAll(async () => {
      await cluster?.stop();
    });

    it(`600 requests through the ClusterIP: ${mode === "ipvs" ? "round robin exactly even" : "numgen spread within 20 % of even"}`, async () => {
      const vip = (await getJson(["svc", "web"])).spec.clusterIP;
      const { responses, errors } = await dial(vip, 80, 600);
      expect(errors).toEqual([]);
      const counts: Record<string, number> = {};
      for (const r of responses) counts[r] = (counts[r] ?? 0) + 1;
      expect(Object.keys(counts).sort()).toEqual(["web-1", "web-2", "web-3"]);
      if (mode === "ipvs") expect(Object.values(counts)).toEqual([200, 200, 200]);
      else for (const n of Object.values(counts)) expect(Math.abs(n - 200)).toBeLessThanOrEqual(40);
    });

    it(`the node dumps its rules as ${mode === "ipvs" ? "ipvsadm -Ln" : "nft list ruleset"} does; conntrack -L shows the DNAT`, async () => {
      const svc = await getJson(["svc", "web"]);
      const vip = svc.spec.clusterIP as string;
      const esc = vip.replace(/\./g, "\\.");
      if (mode === "ipvs") {
        const dump = await cluster.nodeExec("node-1", ["ipvsadm", "-Ln"]);
        expect(dump).toContain("IP Virtual Server version 1.2.1");
        expect(dump).toMatch(new RegExp(`TCP  ${esc}:80 rr`));
        expect(dump.match(/-> 10\.244\.\d+\.\d+:8080 +Masq +1/g)?.length).toBeGreaterThanOrEqual(3);
        expect(dump).toMatch(new RegExp(`TCP  172\\.31\\.0\\.\\d+:${svc.spec.ports[0].nodePort} rr`));
      } else {
        const dump = await cluster.nodeExec("node-1", ["nft", "list", "ruleset"]);
        expect(dump).toContain("table ip kube-proxy {");
        expect(dump).toMatch(/map service-ips \{\n\t\ttype ipv4_addr \. inet_proto \. inet_service : verdict/);
        expect(dump).toMatch(new RegExp(`${esc} \\. tcp \\. 80 : goto service-[A-Z2-7]{8}-default/web/tcp/http`));
        expect(dump).toMatch(/numgen random mod 3 vmap \{ 0 : goto endpoint-/);
      }
      await dial(vip, 80, 3);
      const ct = await cluster.nodeExec("node-1", ["conntrack", "-L"]);
      expect(ct).toMatch(new RegExp(`dst=${esc} sport=\\d+ dport=80 src=10\\.244\\.\\d+\\.\\d+ dst=10\\.244\\.\\d+\\.\\d+ sport=8080`));
    });

    it("a Service with no endpoints is refused at once", async () => {
      await cluster.apply({ apiVersion: "v1", kind: "Service", metadata: { name: "empty" }, spec: { selector: { app: "nothing" }, ports: [{ port: 80 }] } });
      const vip = (await getJson(["svc", "empty"])).spec.clusterIP;
      await until("node-1 knows the empty Service", async () => ((await dial(vip, 80, 1)).errors[0]?.includes("connection refused") ? true : undefined), 20_000);
      const res = await cluster.kubectl(["exec", "client", "--", "curl", "-sS", "-m", "5", "-w", "%{time_total}", `http://${vip}/`]);
      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain("Connection refused");
      expect(Number(res.stdout)).toBeLessThan(1);
    });

    it("a NodePort answers from the host on every node", async () => {
      const port = (await getJson(["svc", "web"])).spec.ports[0].nodePort;
      for (const node of cluster.nodeNames) {
        const body = await until(`NodePort on ${node}`, async () => {
          const res = await fetch(`http://${cluster.hostAddress(node)}:${port}/hostname`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
          return res?.ok ? await res.text() : undefined;
        }, 20_000);
        expect(["web-1", "web-2", "web-3"]).toContain(body);
      }
    });
  });
}
