/**
 * Network policy kinds through the real kubectl against a 1-node cluster: NetworkPolicy applied,
 * listed and described as on a real cluster, and its invalid or misnested manifests rejected
 * with a Status naming the field (kubectl's default --validate=strict, on apply and create);
 * ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) discovered, applied, printed,
 * described, explained and validated; the kubernetes.io/metadata.name label of every Namespace;
 * `kubectl apply -f` of a `kind: List`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "./fixture.ts";

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start({ nodes: 1 });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

function manifest(name: string, text: string): string {
  return cluster.manifestFile(name, text);
}

async function ok(args: string[]): Promise<string> {
  const res = await cluster.kubectl(args);
  expect(res.code, `kubectl ${args.join(" ")}\n${res.stdout}${res.stderr}`).toBe(0);
  return res.stdout;
}

async function fails(args: string[]): Promise<string> {
  const res = await cluster.kubectl(args);
  expect(res.code, `kubectl ${args.join(" ")} should fail\n${res.stdout}`).not.toBe(0);
  return res.stderr;
}

/** The rows of a `kubectl get` table, each cell by its column's header. */
function rows(out: string): Array<Record<string, string>> {
  const [header, ...lines] = out.trim().split("\n");
  const cols = header!.split(/\s{2,}/);
  return lines.map((l) => Object.fromEntries(l.split(/\s{2,}/).map((c, i) => [cols[i]!, c])));
}

const POLICIES = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes:
  - Ingress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-frontend
spec:
  podSelector:
    matchLabels:
      app: db
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: web
      podSelector:
        matchLabels:
          role: frontend
    - ipBlock:
        cidr: 172.17.0.0/16
        except: [172.17.1.0/24]
    ports:
    - protocol: TCP
      port: 5432
  egress:
  - to:
    - namespaceSelector: {}
      podSelector:
        matchLabels:
          k8s-app: kube-dns
    ports:
    - protocol: UDP
      port: 53
`;

describe("NetworkPolicy through kubectl", () => {
  it("applies, lists and re-applies a default deny and an allow rule", async () => {
    const file = manifest("policies", POLICIES);
    const out = await ok(["apply", "-f", file]);
    expect(out).toContain("networkpolicy.networking.k8s.io/default-deny-ingress created");
    expect(out).toContain("networkpolicy.networking.k8s.io/allow-frontend created");
    const got = rows(await ok(["get", "netpol"]));
    expect(got.map((r) => [r.NAME, r["POD-SELECTOR"]])).toEqual([
      ["allow-frontend", "app=db"],
      ["default-deny-ingress", "<none>"],
    ]);
    expect(await ok(["apply", "-f", file])).toContain("networkpolicy.networking.k8s.io/allow-frontend unchanged");
  });

  it("describes them as kubectl does for a real cluster", async () => {
    const deny = await ok(["describe", "networkpolicy", "default-deny-ingress"]);
    expect(deny).toMatch(/PodSelector:\s+<none> \(Allowing the specific traffic to all pods in this namespace\)/);
    expect(deny).toContain("<none> (Selected pods are isolated for ingress connectivity)");
    expect(deny).toContain("Not affecting egress traffic");
    expect(deny).toContain("Policy Types: Ingress");
    const allow = await ok(["describe", "networkpolicy", "allow-frontend"]);
    for (const line of [
      "PodSelector:     app=db",
      "Allowing ingress traffic:",
      "To Port: 5432/TCP",
      "NamespaceSelector: kubernetes.io/metadata.name=web",
      "PodSelector: role=frontend",
      "CIDR: 172.17.0.0/16",
      "Except: 172.17.1.0/24",
      "Allowing egress traffic:",
      "To Port: 53/UDP",
      "NamespaceSelector: <none>",
      "PodSelector: k8s-app=kube-dns",
      "Policy Types: Ingress, Egress",
    ]) {
      expect(allow, line).toContain(line);
    }
  });

  const FLAT = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: flat
podSelector:
  matchLabels:
    app: db
ingress:
- from:
  - podSelector: {}
`;

  for (const verb of ["apply", "create"]) {
    it(`rejects a manifest with its spec fields at the top level on ${verb}, naming each field, and stores nothing`, async () => {
      const stderr = await fails([verb, "-f", manifest(`flat-${verb}`, FLAT)]);
      expect(stderr).toContain("Error from server (BadRequest)");
      expect(stderr).toContain('NetworkPolicy in version "v1" cannot be handled as a NetworkPolicy: strict decoding error:');
      expect(stderr).toContain('unknown field "podSelector"');
      expect(stderr).toContain('unknown field "ingress"');
      expect(await fails(["get", "netpol", "flat"])).toContain("NotFound");
    });
  }

  it("rejects invalid ports, peers and policy types with 422 naming each field", async () => {
    const bad = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: bad
spec:
  podSelector:
    matchExpressions:
    - {key: app, operator: In}
  policyTypes: [Ingress, Sideways]
  ingress:
  - from:
    - ipBlock: {cidr: 10.0.0.0/40}
    - ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}
    - {}
    ports:
    - {port: 70000}
    - {port: http, endPort: 90}
    - {port: 90, endPort: 80}
    - {protocol: ICMP}
`;
    const stderr = await fails(["apply", "-f", manifest("bad-netpol", bad)]);
    expect(stderr).toContain('The NetworkPolicy "bad" is invalid');
    for (const field of [
      "spec.podSelector.matchExpressions[0].values: Required value",
      'spec.policyTypes[1]: Unsupported value: "Sideways"',
      'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.0/40"',
      'spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`',
      "spec.ingress[0].from[2]: Required value: must specify a peer",
      "spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
      "spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
      "spec.ingress[0].ports[2].endPort: Invalid value: 80: must be greater than or equal to `port`",
      'spec.ingress[0].ports[3].protocol: Unsupported value: "ICMP"',
    ]) {
      expect(stderr, field).toContain(field);
    }
    expect(await fails(["get", "netpol", "bad"])).toContain("NotFound");
  });
});

describe("Namespace labels", () => {
  it("carries kubernetes.io/metadata.name=<name> on every namespace, and keeps it through label changes", async () => {
    const all = JSON.parse(await ok(["get", "namespaces", "-o", "json"])) as { items: Array<{ metadata: { name: string; labels?: Record<string, string> } }> };
    for (const ns of all.items) expect(ns.metadata.labels?.["kubernetes.io/metadata.name"], ns.metadata.name).toBe(ns.metadata.name);
    await ok(["apply", "-f", manifest("ns", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n  labels:\n    kubernetes.io/metadata.name: wrong\n    env: dev\n")]);
    await ok(["label", "namespace", "team-a", "kubernetes.io/metadata.name-"]);
    await ok(["label", "namespace", "team-a", "--overwrite", "kubernetes.io/metadata.name=other"]);
    const labels = JSON.parse(await ok(["get", "namespace", "team-a", "-o", "jsonpath={.metadata.labels}"])) as Record<string, string>;
    expect(labels).toEqual({ env: "dev", "kubernetes.io/metadata.name": "team-a" });
    // What namespaceSelectors select by.
    expect(rows(await ok(["get", "namespaces", "-l", "kubernetes.io/metadata.name=team-a"])).map((r) => r.NAME)).toEqual(["team-a"]);
  });
});

const CNP = `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: sensitive-ns-deny
spec:
  tier: Admin
  priority: 10
  subject:
    namespaces:
      matchLabels:
        kubernetes.io/metadata.name: sensitive-ns
  ingress:
  - name: select-ingress-deny
    action: Deny
    from:
    - namespaces: {}
  egress:
  - name: allow-dns
    action: Accept
    to:
    - pods:
        namespaceSelector:
          matchLabels:
            kubernetes.io/metadata.name: kube-system
        podSelector:
          matchLabels:
            k8s-app: kube-dns
    protocols:
    - udp:
        destinationPort:
          number: 53
  - name: deny-private
    action: Deny
    to:
    - networks: [10.0.0.0/8, fd00::/8]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: baseline-default-deny
spec:
  tier: Baseline
  priority: 50
  subject:
    namespaces: {}
  ingress:
  - action: Pass
    from:
    - pods:
        podSelector:
          matchLabels:
            app: monitoring
  - action: Deny
    from:
    - namespaces: {}
`;

describe("ClusterNetworkPolicy through kubectl", () => {
  it("is discovered: api-resources lists it cluster-scoped with its short name", async () => {
    const row = rows(await ok(["api-resources", "--api-group=policy.networking.k8s.io"])).find((r) => r.NAME === "clusternetworkpolicies");
    expect(row).toEqual({ NAME: "clusternetworkpolicies", SHORTNAMES: "cnp", APIVERSION: "policy.networking.k8s.io/v1alpha2", NAMESPACED: "false", KIND: "ClusterNetworkPolicy" });
  });

  it("applies, gets (by name and short name, with the CRD's columns) and re-applies", async () => {
    const file = manifest("cnp", CNP);
    const out = await ok(["apply", "-f", file]);
    expect(out).toContain("clusternetworkpolicy.policy.networking.k8s.io/sensitive-ns-deny created");
    expect(out).toContain("clusternetworkpolicy.policy.networking.k8s.io/baseline-default-deny created");
    for (const resource of ["clusternetworkpolicies", "cnp", "clusternetworkpolicy.policy.networking.k8s.io"]) {
      const got = rows(await ok(["get", resource]));
      expect(got.map((r) => [r.NAME, r.TIER, r.PRIORITY]), resource).toEqual([
        ["baseline-default-deny", "Baseline", "50"],
        ["sensitive-ns-deny", "Admin", "10"],
      ]);
    }
    expect(await ok(["apply", "-f", file])).toContain("clusternetworkpolicy.policy.networking.k8s.io/sensitive-ns-deny unchanged");
    await ok(["apply", "-f", manifest("cnp-edit", CNP.replace("priority: 10", "priority: 20"))]);
    expect(await ok(["get", "cnp", "sensitive-ns-deny", "-o", "jsonpath={.spec.priority} {.metadata.generation}"])).toBe("20 2");
  });

  it("describes one", async () => {
    const out = await ok(["describe", "cnp", "sensitive-ns-deny"]);
    for (const line of ["Name:         sensitive-ns-deny", "API Version:  policy.networking.k8s.io/v1alpha2", "Kind:         ClusterNetworkPolicy", "Tier:", "Admin", "Priority:  20", "Action:  Deny", "10.0.0.0/8", "k8s-app:  kube-dns"]) {
      expect(out, line).toContain(line);
    }
  });

  it("explains its fields from the served schema", async () => {
    const spec = await ok(["explain", "clusternetworkpolicies.spec"]);
    expect(spec).toContain("GROUP:      policy.networking.k8s.io");
    expect(spec).toContain("VERSION:    v1alpha2");
    expect(spec).toMatch(/tier\s+<string> -required-/);
    expect(spec).toMatch(/enum: Admin, Baseline/);
    expect(spec).toMatch(/priority\s+<integer> -required-/);
    expect(await ok(["explain", "cnp.spec.egress.to.networks"])).toContain("FIELD: networks <[]string>");
  });

  it("rejects what the CRD's schema and CEL rules reject, with 422 naming each field, and stores nothing", async () => {
    const bad = `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: bad-cnp
spec:
  tier: Middle
  priority: 1001
  subject:
    namespaces: {}
    pods: {podSelector: {}}
  ingress:
  - action: Allow
    from: []
`;
    const stderr = await fails(["apply", "-f", manifest("bad-cnp", bad)]);
    expect(stderr).toContain('The ClusterNetworkPolicy "bad-cnp" is invalid');
    for (const field of [
      'spec.tier: Unsupported value: "Middle": supported values: "Admin", "Baseline"',
      "spec.priority: Invalid value: 1001: spec.priority in body should be less than or equal to 1000",
      "spec.subject: Too many: 2: must have at most 1 items",
      'spec.ingress[0].action: Unsupported value: "Allow": supported values: "Accept", "Deny", "Pass"',
      "spec.ingress[0].from: Invalid value: 0: spec.ingress[0].from in body should have at least 1 items",
    ]) {
      expect(stderr, field).toContain(field);
    }
    const cel = `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: bad-cel
spec:
  tier: Baseline
  priority: 5
  subject:
    pods: {podSelector: {}}
  egress:
  - action: Deny
    to:
    - networks: [10.0.0.0/33]
    protocols:
    - tcp: {destinationPort: {range: {start: 90, end: 80}}}
`;
    const celErr = await fails(["create", "-f", manifest("bad-cel", cel)]);
    expect(celErr).toContain('spec.egress[0].to[0].networks[0]: Invalid value: "string": Invalid CIDR format provided');
    expect(celErr).toContain('spec.egress[0].protocols[0].tcp.destinationPort.range: Invalid value: "object": Start port must be less than End port');
    const unknown = cel.replace("- networks: [10.0.0.0/33]", "- nodes: {}").replace("start: 90", "start: 70");
    const unknownErr = await fails(["apply", "-f", manifest("unknown-cnp", unknown)]);
    expect(unknownErr).toContain('ClusterNetworkPolicy in version "v1alpha2" cannot be handled as a ClusterNetworkPolicy: strict decoding error: unknown field "spec.egress[0].to[0].nodes"');
    expect(rows(await ok(["get", "cnp"])).map((r) => r.NAME)).toEqual(["baseline-default-deny", "sensitive-ns-deny"]);
  });

  it("patches with merge patches, and answers a strategic merge patch as for any custom resource", async () => {
    await ok(["patch", "cnp", "baseline-default-deny", "--type=merge", "-p", '{"spec":{"priority":60}}']);
    await ok(["label", "cnp", "baseline-default-deny", "owner=platform"]);
    expect(await ok(["get", "cnp", "baseline-default-deny", "-o", "jsonpath={.spec.priority} {.metadata.labels.owner}"])).toBe("60 platform");
    const stderr = await fails(["patch", "cnp", "baseline-default-deny", "-p", '{"spec":{"priority":61}}']);
    expect(stderr).toContain("application/strategic-merge-patch+json is not supported by policy.networking.k8s.io/v1alpha2, Kind=ClusterNetworkPolicy");
  });
});

describe("kubectl apply of a kind: List", () => {
  const LIST = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: listed
    namespace: default
  data:
    a: "1"
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    name: listed-deny
    namespace: default
  spec:
    podSelector: {}
- apiVersion: policy.networking.k8s.io/v1alpha2
  kind: ClusterNetworkPolicy
  metadata:
    name: listed-cnp
  spec:
    tier: Admin
    priority: 100
    subject:
      namespaces: {}
    ingress:
    - action: Pass
      from:
      - namespaces: {}
`;

  it("creates every item (kubectl validates the list against /openapi/v2 first), then leaves them unchanged", async () => {
    const file = manifest("list", LIST);
    const out = await ok(["apply", "-f", file]);
    expect(out).toContain("configmap/listed created");
    expect(out).toContain("networkpolicy.networking.k8s.io/listed-deny created");
    expect(out).toContain("clusternetworkpolicy.policy.networking.k8s.io/listed-cnp created");
    const again = await ok(["apply", "-f", file]);
    expect(again).toContain("configmap/listed unchanged");
    expect(again).toContain("clusternetworkpolicy.policy.networking.k8s.io/listed-cnp unchanged");
    expect(await ok(["get", "configmap", "listed", "-o", "jsonpath={.data.a}"])).toBe("1");
  });

  it("works with create too", async () => {
    const res = await cluster.kubectl(["create", "-f", manifest("list-create", LIST.replaceAll("listed", "created"))]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain("configmap/created created");
  });

  it("still rejects an item's unknown field, server-side, with the field named", async () => {
    const stderr = await fails(["apply", "-f", manifest("list-unknown", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: listed-bad\n    namespace: default\n  bogus: 1\n")]);
    expect(stderr).toContain('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus"');
    expect(await fails(["get", "configmap", "listed-bad"])).toContain("NotFound");
  });
});
