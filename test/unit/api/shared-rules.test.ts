/**
 * One concept, one place: the cases where the copies that were merged used to disagree, each
 * pinned to the rule Kubernetes itself follows.
 */
import type { PodTemplateSpec } from "kubernetes-types/core/v1.js";
import { describe, expect, it } from "vitest";
import { parseCidr, parseIp, parseIpCidr } from "../../../cluster/addressing.ts";
import { fnv1a32, fnv1a32String } from "../../../cluster/hash.ts";
import { canonicalJson, deepEqual, semanticEqual } from "../../../cluster/meta.ts";
import { formatLabelSelector, labelKeyErrors, labelSelectorFromObject, labelValueErrors } from "../../../cluster/selectors.ts";
import { qualifiedNameErrors } from "../../../cluster/syntax.ts";
import { formatLabelSelector as tableSelector } from "../../../control-plane/api/tables.ts";
import { equalIgnoreHash } from "../../../control-plane/controllers/logic/deployment.ts";
import { matchesNodeAffinity } from "../../../control-plane/controllers/logic/scheduler.ts";

describe("label keys and values: one syntax check (util/validation IsQualifiedName, IsValidLabelValue)", () => {
  it("counts length in UTF-8 bytes, as Go's len() does (selectors.ts used to count UTF-16 units)", () => {
    const value = "é".repeat(32); // 32 characters, 64 bytes
    expect(labelValueErrors(value)).toContain("must be no more than 63 characters");
    expect(labelKeyErrors(value)).toContain("name part must be no more than 63 characters");
    expect(labelKeyErrors("a".repeat(63))).toEqual([]);
  });

  it("is the same function for selectors and API validation", () => {
    expect(labelKeyErrors).toBe(qualifiedNameErrors);
  });
});

describe("label selector objects: LabelSelectorAsSelector keeps In values as written", () => {
  it("prints duplicates, sorted (selector.go Requirement.String; only the string parser makes a set)", () => {
    const sel = { matchExpressions: [{ key: "x", operator: "In", values: ["b", "a", "a"] }] };
    const parsed = labelSelectorFromObject(sel);
    expect(parsed.kind === "ok" && formatLabelSelector(parsed.value)).toBe("x in (a,a,b)");
    // kubectl's table column and the selector code now agree.
    expect(tableSelector(sel)).toBe("x in (a,a,b)");
  });

  it("an invalid key is <error> in tables too (NewRequirement validates keys)", () => {
    expect(tableSelector({ matchLabels: { "bad key": "x" } })).toBe("<error>");
  });
});

describe("node affinity: Gt/Lt through labels.NewRequirement (component-helpers nodeaffinity)", () => {
  const pod = (values: string[]) => ({
    spec: {
      containers: [],
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "cores", operator: "Gt", values }] }] } } },
    },
  });
  const node = (cores: string) => ({ metadata: { name: "n", labels: { cores } } });

  it("reads the node's label with strconv.ParseInt: \"12abc\" is not 12 (parseInt said it was)", () => {
    expect(matchesNodeAffinity(pod(["4"]), node("12"))).toBe(true);
    expect(matchesNodeAffinity(pod(["4"]), node("12abc"))).toBe(false);
  });

  it("compares as int64, exactly beyond 2^53", () => {
    expect(matchesNodeAffinity(pod(["9007199254740992"]), node("9007199254740993"))).toBe(true);
  });

  it("a term whose value is not an integer matches nothing", () => {
    expect(matchesNodeAffinity(pod(["4x"]), node("12"))).toBe(false);
  });
});

describe("JSON equality: deepEqual (RFC 6902 §4.6) and semanticEqual (Semantic.DeepEqual)", () => {
  it("deepEqual ignores member order and undefined members, not array order", () => {
    expect(deepEqual({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 })).toBe(true);
    expect(deepEqual({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(deepEqual([1, 2], [2, 1])).toBe(false);
    expect(deepEqual({ a: null }, {})).toBe(false);
  });

  it("semanticEqual treats null, \"\", [] and {} as absent, keeps 0 and false", () => {
    expect(semanticEqual({ a: "", b: [], c: {}, d: null }, {})).toBe(true);
    expect(semanticEqual({ replicas: 0 }, {})).toBe(false);
    expect(semanticEqual({ x: false }, {})).toBe(false);
  });

  it("EqualIgnoreHash: a template with hostname \"\" or annotations {} is the same template (deployment.ts kept them apart)", () => {
    const base: PodTemplateSpec = { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "c", image: "nginx" }] } };
    const withZeroValues: PodTemplateSpec = { metadata: { labels: { app: "web", "pod-template-hash": "abc" }, annotations: {} }, spec: { hostname: "", containers: [{ name: "c", image: "nginx" }] } };
    expect(equalIgnoreHash(base, withZeroValues)).toBe(true);
  });

  it("canonicalJson sorts keys at every depth", () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[{"y":2,"z":1}]},"b":1}');
  });
});

describe("IP and CIDR text: k8s.io/utils/net ParseIPSloppy / ParseCIDRSloppy", () => {
  it("reads leading zeros as decimal, in config CIDRs too (ip-num refused them, API validation accepted)", () => {
    expect(parseIp("010.001.002.003")).toEqual([10, 1, 2, 3]);
    expect(parseCidr("010.096.000.000/12")).toEqual({ network: 0x0a600000, prefix: 12 });
    expect(parseCidr("10.0.0.0/08")).toEqual({ network: 0x0a000000, prefix: 8 });
  });

  it("masks host bits in API CIDRs, but kubewire's own ranges must be aligned", () => {
    expect(parseIpCidr("10.0.0.1/8")?.network).toEqual([10, 0, 0, 0]);
    expect(parseCidr("10.0.0.1/8")).toBeUndefined();
  });

  it("parses IPv6 and rejects what Go rejects", () => {
    expect(parseIp("::ffff:1.2.3.4")?.slice(10)).toEqual([0xff, 0xff, 1, 2, 3, 4]);
    for (const bad of ["1.2.3", "256.1.1.1", "1:2:3:4:5:6:7:8:9", "1::2::3", "0x1.2.3.4"]) expect(parseIp(bad), bad).toBeUndefined();
    expect(parseIpCidr("2001:db8::/129")).toBeUndefined();
  });
});

describe("FNV-1a 32 (Go hash/fnv New32a)", () => {
  it("matches the reference vectors", () => {
    expect(fnv1a32(new Uint8Array())).toBe(0x811c9dc5);
    expect(fnv1a32String("a")).toBe(0xe40c292c);
    expect(fnv1a32String("foobar")).toBe(0xbf9cf968);
  });

  it("continues from a seed as Hash32.Write does in pieces", () => {
    const bytes = new TextEncoder().encode("foobar");
    expect(fnv1a32(bytes.subarray(3), fnv1a32(bytes.subarray(0, 3)))).toBe(fnv1a32(bytes));
  });
});
