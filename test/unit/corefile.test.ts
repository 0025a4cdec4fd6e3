/**
 * cluster/corefile.ts: kubeadm's Corefile as golden text, and the reader node-agents configure
 * the emulated coredns with, table-driven over the edits users make; malformed files are error
 * values with stable codes, never throws (random text, mutations of kubeadm's file, every prefix).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CorefileErrorCode, parseCorefile, renderCorefile, type CorefileConfig, type CorefileResult } from "../../cluster/corefile.ts";

const KUBEADM = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`;

const KUBEADM_CONFIG: CorefileConfig = {
  port: 53,
  zone: "cluster.local",
  zones: ["cluster.local"],
  reverseZones: ["in-addr.arpa", "ip6.arpa"],
  ttl: 30,
  podMode: "insecure",
  endpointPodNames: false,
  fallthrough: { kind: "zones", zones: ["in-addr.arpa", "ip6.arpa"] },
  forward: { kind: "resolvconf", path: "/etc/resolv.conf", maxConcurrent: 1000 },
};

function config(text: string): CorefileConfig {
  const r = parseCorefile(text);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message} (line ${r.error.line})`);
  return r.config;
}

function failure(text: string): { code: string; message: string; line: number | undefined } {
  const r = parseCorefile(text);
  if (r.ok) throw new Error(`parsed: ${JSON.stringify(r.config)}`);
  return r.error;
}

/** kubeadm's file with the kubernetes plugin's block replaced. */
const withKubernetes = (block: string, args = "cluster.local in-addr.arpa ip6.arpa") => `.:53 {\n    kubernetes ${args} {\n${block}\n    }\n    forward . /etc/resolv.conf\n}\n`;

describe("renderCorefile", () => {
  it("is kubeadm 1.32's Corefile, byte for byte", () => {
    expect(renderCorefile({ zone: "cluster.local" })).toBe(KUBEADM);
  });

  it("puts the cluster domain in the kubernetes plugin and the cache exclusions", () => {
    const text = renderCorefile({ zone: "corp.example" });
    expect(text).toContain("    kubernetes corp.example in-addr.arpa ip6.arpa {\n");
    expect(text).toContain("    cache 30 {\n       disable success corp.example\n       disable denial corp.example\n    }\n    loop\n");
    expect(config(text)).toEqual({ ...KUBEADM_CONFIG, zone: "corp.example", zones: ["corp.example"] });
  });

  it("reads back as kubeadm's settings", () => {
    expect(parseCorefile(renderCorefile({ zone: "cluster.local" }))).toEqual({ ok: true, config: KUBEADM_CONFIG });
  });
});

describe("parseCorefile: the kubernetes plugin", () => {
  const cases: Array<{ name: string; text: string; want: Partial<CorefileConfig> }> = [
    { name: "ttl edited to 5", text: withKubernetes("ttl 5"), want: { ttl: 5 } },
    { name: "ttl 0 (no caching by clients)", text: withKubernetes("ttl 0"), want: { ttl: 0 } },
    { name: "ttl 3600, the maximum", text: withKubernetes("ttl 3600"), want: { ttl: 3600 } },
    { name: "no ttl: CoreDNS's default 5", text: withKubernetes("pods insecure"), want: { ttl: 5, podMode: "insecure" } },
    { name: "no pods line: disabled", text: withKubernetes("ttl 30"), want: { podMode: "disabled" } },
    { name: "pods verified", text: withKubernetes("pods verified"), want: { podMode: "verified" } },
    { name: "endpoint_pod_names", text: withKubernetes("endpoint_pod_names"), want: { endpointPodNames: true } },
    { name: "fallthrough for every zone", text: withKubernetes("fallthrough"), want: { fallthrough: { kind: "all" } } },
    { name: "no fallthrough", text: withKubernetes("ttl 30"), want: { fallthrough: { kind: "none" } } },
    {
      name: "options CoreDNS knows and the emulation ignores",
      text: withKubernetes("namespaces a b\nlabels app=x\nnoendpoints\nignore empty_service\nresyncperiod 10s\ntls cert key ca\nttl 7"),
      want: { ttl: 7 },
    },
    { name: "zones upper-case with trailing dots", text: withKubernetes("ttl 30", "Cluster.Local. IN-ADDR.ARPA."), want: { zone: "cluster.local", reverseZones: ["in-addr.arpa"] } },
    { name: "another domain", text: withKubernetes("ttl 30", "k8s.corp.example in-addr.arpa"), want: { zone: "k8s.corp.example", zones: ["k8s.corp.example"] } },
    { name: "several forward zones: the first is the cluster zone", text: withKubernetes("", "cluster.local other.local"), want: { zone: "cluster.local", zones: ["cluster.local", "other.local"], reverseZones: [] } },
    {
      name: "a service CIDR as reverse zones (a /12 is 16 /16 zones)",
      text: withKubernetes("", "cluster.local 10.96.0.0/12"),
      want: { reverseZones: Array.from({ length: 16 }, (_, i) => `${96 + i}.10.in-addr.arpa`) },
    },
    { name: "a /24 is one zone", text: withKubernetes("", "cluster.local 10.244.1.0/24"), want: { reverseZones: ["1.244.10.in-addr.arpa"] } },
    { name: "an IPv6 /64", text: withKubernetes("", "cluster.local fd00:1:2:3::/64"), want: { reverseZones: ["3.0.0.0.2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa"] } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(config(c.text)).toMatchObject(c.want);
    });
  }

  it("takes the zones from the server block's keys when the plugin names none", () => {
    const c = config("cluster.local:53 in-addr.arpa:53 {\n  kubernetes {\n    pods insecure\n  }\n}\n");
    expect(c).toMatchObject({ port: 53, zone: "cluster.local", reverseZones: ["in-addr.arpa"], forward: undefined });
  });

  it("a file without the kubernetes options block", () => {
    expect(config(".:53 {\n  kubernetes cluster.local\n}")).toMatchObject({ zone: "cluster.local", ttl: 5, podMode: "disabled", fallthrough: { kind: "none" } });
  });

  const errors: Array<{ name: string; text: string; code: string; message: RegExp; line?: number }> = [
    { name: "ttl above 3600", text: withKubernetes("ttl 3601"), code: CorefileErrorCode.Kubernetes, message: /ttl must be in range \[0, 3600\]: 3601/, line: 3 },
    { name: "negative ttl", text: withKubernetes("ttl -1"), code: CorefileErrorCode.Kubernetes, message: /range/ },
    { name: "ttl not a number", text: withKubernetes("ttl 30s"), code: CorefileErrorCode.Kubernetes, message: /not an integer/ },
    { name: "ttl without a value", text: withKubernetes("ttl"), code: CorefileErrorCode.Kubernetes, message: /wrong argument count/ },
    { name: "pods with a wrong mode", text: withKubernetes("pods sometimes"), code: CorefileErrorCode.Kubernetes, message: /wrong value for pods: sometimes/ },
    { name: "pods without a mode", text: withKubernetes("pods"), code: CorefileErrorCode.Kubernetes, message: /wrong argument count/ },
    { name: "endpoint_pod_names with an argument", text: withKubernetes("endpoint_pod_names yes"), code: CorefileErrorCode.Kubernetes, message: /wrong argument count/ },
    { name: "an unknown option", text: withKubernetes("colour blue"), code: CorefileErrorCode.Kubernetes, message: /unknown property 'colour'/ },
    { name: "only reverse zones", text: withKubernetes("", "in-addr.arpa ip6.arpa"), code: CorefileErrorCode.Kubernetes, message: /non-reverse zone name must be used/ },
    { name: "the plugin twice in a block", text: ".:53 {\n kubernetes cluster.local\n kubernetes other.local\n}", code: CorefileErrorCode.Kubernetes, message: /only be used once/, line: 3 },
    { name: "no kubernetes plugin", text: ".:53 {\n  forward . 8.8.8.8\n}", code: CorefileErrorCode.NoKubernetes, message: /no DNS server block/ },
    { name: "only over TLS", text: "tls://.:853 {\n  kubernetes cluster.local\n}", code: CorefileErrorCode.NoKubernetes, message: /no DNS server block/ },
    { name: "an empty file", text: "", code: CorefileErrorCode.NoKubernetes, message: /no DNS server block/ },
  ];
  for (const c of errors) {
    it(`error: ${c.name}`, () => {
      const e = failure(c.text);
      expect(e.code).toBe(c.code);
      expect(e.message).toMatch(c.message);
      if (c.line !== undefined) expect(e.line).toBe(c.line);
    });
  }
});

describe("parseCorefile: the forward plugin", () => {
  const withForward = (line: string) => `.:53 {\n  kubernetes cluster.local\n  ${line}\n}\n`;
  const cases: Array<{ to: string; want: CorefileConfig["forward"] }> = [
    { to: "forward . /etc/resolv.conf", want: { kind: "resolvconf", path: "/etc/resolv.conf", maxConcurrent: undefined } },
    { to: "forward . 8.8.8.8", want: { kind: "addresses", addresses: ["8.8.8.8:53"], maxConcurrent: undefined } },
    { to: "forward . 10.0.0.10:5353 1.1.1.1", want: { kind: "addresses", addresses: ["10.0.0.10:5353", "1.1.1.1:53"], maxConcurrent: undefined } },
    { to: "forward . dns://192.0.2.53:1053 dns://192.0.2.54", want: { kind: "addresses", addresses: ["192.0.2.53:1053", "192.0.2.54:53"], maxConcurrent: undefined } },
    { to: "forward . 2001:db8::53 [2001:db8::54]:5353", want: { kind: "addresses", addresses: ["[2001:db8::53]:53", "[2001:db8::54]:5353"], maxConcurrent: undefined } },
    { to: "forward . 8.8.8.8 {\n    max_concurrent 10\n    policy sequential\n    health_check 5s\n  }", want: { kind: "addresses", addresses: ["8.8.8.8:53"], maxConcurrent: 10 } },
    { to: "forward example.org 10.0.0.1", want: undefined },
    { to: "forward example.org 10.0.0.1\n  forward . 9.9.9.9", want: { kind: "addresses", addresses: ["9.9.9.9:53"], maxConcurrent: undefined } },
    { to: "cache 30", want: undefined },
  ];
  for (const c of cases) {
    it(c.to.split("\n")[0]!, () => {
      expect(config(withForward(c.to)).forward).toEqual(c.want);
    });
  }

  const errors: Array<{ to: string; message: RegExp }> = [
    { to: "forward . tls://9.9.9.9", message: /tls:\/\/ upstreams are not emulated/ },
    { to: "forward . https://9.9.9.9", message: /https:\/\/ upstreams/ },
    { to: "forward . dns.example.com", message: /not an IP address or file: "dns.example.com"/ },
    { to: "forward . 8.8.8.8:0", message: /bad port/ },
    { to: "forward . 8.8.8.8:70000", message: /bad port/ },
    { to: "forward . /etc/resolv.conf 8.8.8.8", message: /resolv.conf path with other upstreams/ },
    { to: "forward .", message: /wrong argument count/ },
    { to: `forward . ${Array.from({ length: 16 }, (_, i) => `10.0.0.${i + 1}`).join(" ")}`, message: /more than 15 TOs configured: 16/ },
    { to: "forward . 8.8.8.8 {\n max_concurrent -1\n }", message: /can't be negative/ },
    { to: "forward . 8.8.8.8 {\n max_concurrent lots\n }", message: /max_concurrent needs one integer/ },
    { to: "forward . 8.8.8.8 {\n bogus_option\n }", message: /unknown property 'bogus_option'/ },
  ];
  for (const c of errors) {
    it(`error: ${c.to.split("\n")[0]}`, () => {
      const e = failure(withForward(c.to));
      expect(e.code).toBe(CorefileErrorCode.Forward);
      expect(e.message).toMatch(c.message);
    });
  }
});

describe("parseCorefile: server blocks and syntax", () => {
  it("prefers the block on port 53, and reports the port of the one it reads", () => {
    const text = "cluster.local:5353 {\n  kubernetes {\n    ttl 1\n  }\n}\n.:53 {\n  kubernetes cluster.local {\n    ttl 2\n  }\n}\n";
    expect(config(text)).toMatchObject({ port: 53, ttl: 2 });
    expect(config(".:1053 {\n  kubernetes cluster.local\n}")).toMatchObject({ port: 1053 });
    expect(config("dns://.:53 {\n  kubernetes cluster.local\n}")).toMatchObject({ port: 53 });
    expect(config(". {\n  kubernetes cluster.local\n}")).toMatchObject({ port: 53 });
  });

  it("reads the forward of the block it chose, not another block's", () => {
    const text = "example.org:53 {\n  forward . 10.0.0.1\n}\n.:53 {\n  kubernetes cluster.local\n}\n";
    expect(config(text).forward).toBeUndefined();
  });

  it("ignores unknown plugins, comments, snippets and quotes", () => {
    const text = [
      "# the cluster DNS",
      "(common) {",
      "  errors",
      "}",
      ".:53 { # trailing comment",
      "  import common",
      '  rewrite name "old.example" new.example',
      "  hosts {",
      "    192.0.2.1 db.example",
      "    fallthrough",
      "  }",
      "  template IN A example.test {",
      '    answer "{{ .Name }} 60 IN A 127.0.0.1"',
      "  }",
      "  kubernetes cluster.local#comment",
      "  loadbalance }",
    ].join("\n");
    expect(config(text)).toMatchObject({ zone: "cluster.local", ttl: 5 });
  });

  it("continues the addresses after a trailing comma", () => {
    expect(config("cluster.local:53,\n  in-addr.arpa:53 {\n  kubernetes\n}")).toMatchObject({ zone: "cluster.local", reverseZones: ["in-addr.arpa"] });
  });

  it("accepts a single server block without braces", () => {
    expect(config(".:53\nkubernetes cluster.local {\n  ttl 9\n}\nforward . 8.8.8.8\n")).toMatchObject({ ttl: 9, forward: { kind: "addresses", addresses: ["8.8.8.8:53"] } });
  });

  const errors: Array<{ name: string; text: string; line: number }> = [
    { name: "an unterminated quote", text: '.:53 {\n  kubernetes "cluster.local\n}\n', line: 2 },
    { name: "a block never closed (the outer one: the inner took its brace)", text: ".:53 {\n  kubernetes cluster.local {\n    ttl 30\n}\n", line: 1 },
    { name: "a stray closing brace", text: "}\n.:53 {\n}", line: 1 },
    { name: "text after an opening brace", text: ".:53 {\n  kubernetes cluster.local { ttl 30\n  }\n}", line: 2 },
    { name: "a brace where a directive belongs", text: ".:53 {\n  {\n  }\n}", line: 2 },
    { name: "a bad port", text: ".:99999 {\n  kubernetes cluster.local\n}", line: 1 },
    { name: "an extra comma", text: ".:53, {\n  kubernetes cluster.local\n}", line: 1 },
    { name: "a second block after a braceless one", text: ".:53 {\n}\n.:54\nkubernetes cluster.local\n", line: 3 },
  ];
  for (const c of errors) {
    it(`syntax error: ${c.name}`, () => {
      const e = failure(c.text);
      expect(e.code).toBe(CorefileErrorCode.Syntax);
      expect(e.line).toBe(c.line);
    });
  }

  it("a value that is not text is an error, not a throw", () => {
    for (const v of [undefined, null, 42, {}, ["x"]]) expect(parseCorefile(v as unknown as string)).toMatchObject({ ok: false, error: { code: CorefileErrorCode.Syntax } });
  });
});

describe("parseCorefile never throws", () => {
  const CODES = new Set<string>(Object.values(CorefileErrorCode));
  const wellFormed = (r: CorefileResult): boolean => (r.ok ? typeof r.config.zone === "string" && Number.isInteger(r.config.ttl) : CODES.has(r.error.code) && typeof r.error.message === "string");

  it("on every prefix of kubeadm's file (fed byte by byte)", () => {
    let ok = 0;
    for (let n = 0; n <= KUBEADM.length; n++) {
      const r = parseCorefile(KUBEADM.slice(0, n));
      expect(wellFormed(r)).toBe(true);
      if (r.ok) ok++;
    }
    // Only the whole file (and with its last newline cut) is complete.
    expect(ok).toBe(2);
  });

  it("on random text from the Corefile alphabet", () => {
    const alphabet = fc.constantFrom(..."{}\"\\#:/. \n\tabc53kubernetesttlforwardpods0123456789[]-".split(""));
    fc.assert(fc.property(fc.array(alphabet, { maxLength: 300 }).map((a) => a.join("")), (text) => wellFormed(parseCorefile(text))), { numRuns: 2000 });
  });

  it("on kubeadm's file with characters deleted, inserted and swapped", () => {
    const edit = fc.tuple(fc.nat(KUBEADM.length), fc.nat(6), fc.string({ maxLength: 4 }));
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        let text = KUBEADM;
        for (const [at, del, ins] of edits) text = text.slice(0, at) + ins + text.slice(at + del);
        return wellFormed(parseCorefile(text));
      }),
      { numRuns: 3000 },
    );
  });
});
