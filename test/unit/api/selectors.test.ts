import { describe, expect, it } from "vitest";
import {
  checkFieldSelector,
  fieldsFor,
  formatFieldSelector,
  formatLabelSelector,
  labelKeyErrors,
  labelSelectorFromObject,
  labelSelectorFromSet,
  labelValueErrors,
  LabelOperator,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  selectorIsEmpty,
  supportedFields,
  type FieldSelector,
  type LabelRequirement,
  type LabelSelector,
  type SelectorResult,
} from "../../../cluster/selectors.ts";

function value<T>(r: SelectorResult<T>): T {
  if (r.kind !== "ok") throw new Error(`expected a selector, got: ${r.message}`);
  return r.value;
}

function message<T>(r: SelectorResult<T>): string {
  if (r.kind !== "error") throw new Error(`expected an error, got ${JSON.stringify(r.value)}`);
  return r.message;
}

const req = (key: string, operator: LabelRequirement["operator"], ...values: string[]): LabelRequirement => ({ key, operator, values });
const labels = (text: string): LabelSelector => value(parseLabelSelector(text));

describe("parseLabelSelector", () => {
  // selector_test.go TestSetSelectorParser, the valid inputs and the requirements they give.
  const valid: Array<[string, LabelRequirement[]]> = [
    ["", []],
    ["\rx", [req("x", LabelOperator.Exists)]],
    ["this-is-a-dns.domain.com/key-with-dash", [req("this-is-a-dns.domain.com/key-with-dash", LabelOperator.Exists)]],
    ["this-is-another-dns.domain.com/key-with-dash in (so,what)", [req("this-is-another-dns.domain.com/key-with-dash", LabelOperator.In, "so", "what")]],
    ["0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)", [req("0.1.2.domain/99", LabelOperator.NotIn, "10.10.100.1", "tick.tack.clock")]],
    ["foo  in\t (abc)", [req("foo", LabelOperator.In, "abc")]],
    ["x notin\n (abc)", [req("x", LabelOperator.NotIn, "abc")]],
    ["x  notin\t\t\t(abc,def)", [req("x", LabelOperator.NotIn, "abc", "def")]],
    ["x in (abc,def)", [req("x", LabelOperator.In, "abc", "def")]],
    ["x in (abc,)", [req("x", LabelOperator.In, "", "abc")]],
    ["x in ()", [req("x", LabelOperator.In, "")]],
    [
      "x notin (abc,,def),bar,z in (),w",
      [req("bar", LabelOperator.Exists), req("w", LabelOperator.Exists), req("x", LabelOperator.NotIn, "", "abc", "def"), req("z", LabelOperator.In, "")],
    ],
    ["x,y in (a)", [req("x", LabelOperator.Exists), req("y", LabelOperator.In, "a")]],
    ["x=a", [req("x", LabelOperator.Equals, "a")]],
    ["x==a", [req("x", LabelOperator.DoubleEquals, "a")]],
    ["x>1", [req("x", LabelOperator.GreaterThan, "1")]],
    ["x<7", [req("x", LabelOperator.LessThan, "7")]],
    ["x=a,y!=b", [req("x", LabelOperator.Equals, "a"), req("y", LabelOperator.NotEquals, "b")]],
    ["x=a,y!=b,z in (h,i,j)", [req("x", LabelOperator.Equals, "a"), req("y", LabelOperator.NotEquals, "b"), req("z", LabelOperator.In, "h", "i", "j")]],
    ["x notin ( )", [req("x", LabelOperator.NotIn, "")]],
    ["x notin (, a)", [req("x", LabelOperator.NotIn, "", "a")]],
    ["a ", [req("a", LabelOperator.Exists)]],
    ["a in (x,y,notin, z,in)", [req("a", LabelOperator.In, "in", "notin", "x", "y", "z")]],
    ["!x", [req("x", LabelOperator.DoesNotExist)]],
    ["x=", [req("x", LabelOperator.Equals, "")]],
    ["x= ,z= ", [req("x", LabelOperator.Equals, ""), req("z", LabelOperator.Equals, "")]],
    ["a.b/c=d", [req("a.b/c", LabelOperator.Equals, "d")]],
    ["app.kubernetes.io/name=web", [req("app.kubernetes.io/name", LabelOperator.Equals, "web")]],
    ["notin=in", [req("notin", LabelOperator.Equals, "in")]],
    ["x=a,a=x", [req("a", LabelOperator.Equals, "x"), req("x", LabelOperator.Equals, "a")]],
  ];
  it.each(valid)("parses %j", (text, expected) => {
    expect(labels(text).requirements).toEqual(expected);
  });

  const invalid: Array<[string, string]> = [
    ["x=a||y=b", 'values[0][x]: Invalid value: "a||y"'],
    ["x==a==b", "found '==', expected: ',' or 'end of string'"],
    ["!x=a", "found '=', expected: ',' or 'end of string'"],
    ["x<a", "for 'Gt', 'Lt' operators, the value must be an integer"],
    ["x,,y", "found ',', expected: identifier after ','"],
    [",x,y", "found ',', expected: !, identifier, or 'end of string'"],
    ["x nott in (y)", "found 'nott', expected: in, notin, =, ==, !=, gt, lt"],
    ["a in (xyz),", "found '', expected: identifier after ','"],
    ["a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'"],
    ["a in (xyz abc)", "found 'abc', expected: ',' or ')'"],
    ["a notin(", "found '', expected: ',', ')' or identifier"],
    ["a (", "found '(', expected: in, notin"],
    ["(", "found '(', expected: !, identifier, or 'end of string'"],
    ["x=a b", "found 'b', expected: ',' or 'end of string'"],
    ["in (a)", "found '(', expected: in, notin"],
    ["x in a", "found 'a' expected: '('"],
    ["x=a$b", 'values[0][x]: Invalid value: "a$b": a valid label must be an empty string'],
    ["-x=a", 'key: Invalid value: "-x": name part must consist of alphanumeric characters'],
    ["Example.com/x=a", 'key: Invalid value: "Example.com/x": prefix part a lowercase RFC 1123 subdomain'],
    ["a/b/c", "a qualified name must consist of alphanumeric characters"],
    [`x=${"v".repeat(64)}`, "must be no more than 63 characters"],
  ];
  it.each(invalid)("rejects %j", (text, expected) => {
    expect(message(parseLabelSelector(text))).toContain(expected);
  });

  it("round-trips through formatLabelSelector with spaces removed (TestSelectorParse)", () => {
    for (const text of ["x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1", "x>1,z<5"]) {
      expect(formatLabelSelector(labels(text))).toBe(text.replace(/ /g, ""));
    }
  });

  it("formats set requirements with sorted values (TestToString)", () => {
    expect(formatLabelSelector(labels("x in (def,abc),y notin (jkl),z"))).toBe("x in (abc,def),y notin (jkl),z");
    expect(formatLabelSelector(labels("x notin (abc),y in (jkl,mno),z notin ()"))).toBe("x notin (abc),y in (jkl,mno),z notin ()");
    expect(formatLabelSelector(labels("x=abc,y==jkl,z!=a"))).toBe("x=abc,y==jkl,z!=a");
  });
});

describe("matchesLabels", () => {
  const cases: Array<[string, Record<string, string> | undefined, boolean]> = [
    ["", { x: "y" }, true],
    ["", undefined, true],
    ["x=y", { x: "y" }, true],
    ["x=y,z=w", { x: "y", z: "w" }, true],
    ["x!=y,z!=w", { x: "z", z: "a" }, true],
    ["notin=in", { notin: "in" }, true],
    ["x", { x: "z" }, true],
    ["!x", { y: "z" }, true],
    ["x>1", { x: "2" }, true],
    ["x<1", { x: "0" }, true],
    ["x=z", {}, false],
    ["x=y", { x: "z" }, false],
    ["x=y,z=w", { x: "w", z: "w" }, false],
    ["x!=y,z!=w", { x: "z", z: "w" }, false],
    ["x", { y: "z" }, false],
    ["!x", { x: "z" }, false],
    ["x>1", { x: "0" }, false],
    ["x<1", { x: "2" }, false],
    ["z>1", { z: "v2" }, false],
    ["x notin (),y", { y: "" }, true],
    ["x notin (),!y", { y: "" }, false],
    ["x in ()", { y: "baz" }, false],
    ["x in ()", { x: "" }, true],
    ["x in (foo),y notin (alpha)", { x: "foo", y: "baz" }, true],
    ["x in (foo),y in (alpha)", { x: "foo", y: "baz" }, false],
    ["foo=bar,foobar=bar,baz=blah", { foo: "bar", baz: "blah" }, false],
    ["constructor", {}, false],
  ];
  it.each(cases)("%j against %j is %s", (text, ls, expected) => {
    expect(matchesLabels(labels(text), ls)).toBe(expected);
  });

  it("treats a selector with no requirement as matching everything", () => {
    expect(selectorIsEmpty(labels(""))).toBe(true);
    expect(selectorIsEmpty(labels("x"))).toBe(false);
    expect(selectorIsEmpty(labelSelectorFromSet({}))).toBe(true);
  });

  it("builds a selector from a Service-style map", () => {
    const sel = labelSelectorFromSet({ tier: "front", app: "web" });
    expect(formatLabelSelector(sel)).toBe("app=web,tier=front");
    expect(matchesLabels(sel, { app: "web", tier: "front", extra: "1" })).toBe(true);
    expect(matchesLabels(sel, { app: "web" })).toBe(false);
  });
});

describe("labelSelectorFromObject", () => {
  it("combines matchLabels and matchExpressions", () => {
    const sel = value(
      labelSelectorFromObject({
        matchLabels: { app: "web" },
        matchExpressions: [
          { key: "tier", operator: "In", values: ["front", "edge"] },
          { key: "canary", operator: "DoesNotExist" },
          { key: "env", operator: "NotIn", values: ["dev"] },
          { key: "team", operator: "Exists" },
        ],
      }),
    );
    expect(formatLabelSelector(sel)).toBe("app=web,!canary,env notin (dev),team,tier in (edge,front)");
    expect(matchesLabels(sel, { app: "web", tier: "edge", team: "a" })).toBe(true);
    expect(matchesLabels(sel, { app: "web", tier: "edge", team: "a", canary: "1" })).toBe(false);
    expect(matchesLabels(sel, { app: "web", tier: "back", team: "a" })).toBe(false);
  });

  it("matches everything for {}", () => {
    const sel = value(labelSelectorFromObject({}));
    expect(selectorIsEmpty(sel)).toBe(true);
    expect(matchesLabels(sel, { anything: "x" })).toBe(true);
  });

  it("requires values for In and NotIn, forbids them for Exists and DoesNotExist", () => {
    expect(message(labelSelectorFromObject({ matchExpressions: [{ key: "a", operator: "In", values: [] }] }))).toBe(
      "matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
    );
    expect(message(labelSelectorFromObject({ matchExpressions: [{ key: "a", operator: "Exists" }, { key: "b", operator: "Exists", values: ["x"] }] }))).toBe(
      "matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
    );
  });

  it("names the field, under an optional path, for a bad operator, key or value", () => {
    expect(message(labelSelectorFromObject({ matchExpressions: [{ key: "a", operator: "Gt", values: ["1"] }] }, "spec.selector"))).toBe(
      'spec.selector.matchExpressions[0].operator: Invalid value: "Gt": not a valid selector operator',
    );
    expect(message(labelSelectorFromObject({ matchLabels: { "bad key": "x" } }))).toContain('matchLabels: Invalid value: "bad key"');
    expect(message(labelSelectorFromObject({ matchLabels: { app: "bad value" } }))).toContain('matchLabels: Invalid value: "bad value"');
    expect(message(labelSelectorFromObject({ matchExpressions: [{ key: "a", operator: "In", values: ["ok", "not ok"] }] }))).toContain(
      'matchExpressions[0].values[1]: Invalid value: "not ok"',
    );
  });

  it("aggregates several errors as Kubernetes does", () => {
    const m = message(labelSelectorFromObject({ matchExpressions: [{ key: "a", operator: "In" }, { key: "b", operator: "NotIn" }] }));
    expect(m.startsWith("[matchExpressions[0].values: Required value")).toBe(true);
    expect(m).toContain(", matchExpressions[1].values: Required value");
  });
});

describe("label key and value syntax", () => {
  it("accepts qualified names and label values", () => {
    for (const key of ["a", "A", "1foo", "1234", "app.kubernetes.io/name", "example.com/My_Name-1.x", "a".repeat(63), `${"a".repeat(253)}/b`]) {
      expect(labelKeyErrors(key)).toEqual([]);
    }
    for (const v of ["", "a", "my_value", "12345", "a.b-c_d", "v".repeat(63)]) expect(labelValueErrors(v)).toEqual([]);
  });

  it("rejects bad keys and values", () => {
    for (const key of ["", "/a", "a/", "-a", "a-", "a b", "a".repeat(64), "Upper.Case/x", `${"a".repeat(254)}/b`, "a/b/c"]) {
      expect(labelKeyErrors(key)).not.toEqual([]);
    }
    for (const v of ["-a", "a-", "a b", "a/b", "v".repeat(64)]) expect(labelValueErrors(v)).not.toEqual([]);
  });
});

describe("parseFieldSelector and matchesFields", () => {
  const fields = (text: string): FieldSelector => value(parseFieldSelector(text));

  it("parses =, == and != terms, sorted, empty terms skipped", () => {
    expect(fields("status.phase!=Failed,spec.nodeName==n1,,metadata.name=web").requirements).toEqual([
      { field: "metadata.name", operator: "=", value: "web" },
      { field: "spec.nodeName", operator: "=", value: "n1" },
      { field: "status.phase", operator: "!=", value: "Failed" },
    ]);
    expect(fields("").requirements).toEqual([]);
    expect(selectorIsEmpty(fields(""))).toBe(true);
  });

  it("allows an empty value and escaped separators", () => {
    expect(fields("spec.nodeName=").requirements).toEqual([{ field: "spec.nodeName", operator: "=", value: "" }]);
    expect(fields("metadata.name=a\\,b\\=c\\\\d").requirements).toEqual([{ field: "metadata.name", operator: "=", value: "a,b=c\\d" }]);
    expect(formatFieldSelector(fields("metadata.name=a\\,b\\=c\\\\d"))).toBe("metadata.name=a\\,b\\=c\\\\d");
  });

  it("rejects terms without an operator, bare separators and bad escapes", () => {
    expect(message(parseFieldSelector("metadata.name"))).toBe("invalid selector: 'metadata.name'; can't understand 'metadata.name'");
    expect(message(parseFieldSelector("a=b=c"))).toBe("unescaped character in value: =");
    expect(message(parseFieldSelector("a=b\\x"))).toBe("invalid escape sequence: \\x");
    expect(message(parseFieldSelector("a=b\\"))).toBe("invalid escape sequence: \\");
  });

  it("does not trim whitespace, as Kubernetes does not", () => {
    expect(fields("metadata.name = web").requirements).toEqual([{ field: "metadata.name ", operator: "=", value: " web" }]);
  });

  it("matches terms against a field set, an absent field comparing as the empty string", () => {
    const set = { "metadata.name": "web", "spec.nodeName": "n1" };
    expect(matchesFields(fields("metadata.name=web,spec.nodeName=n1"), set)).toBe(true);
    expect(matchesFields(fields("spec.nodeName!=n1"), set)).toBe(false);
    expect(matchesFields(fields("status.phase="), set)).toBe(true);
    expect(matchesFields(fields("status.phase!=Running"), set)).toBe(true);
    expect(matchesFields(fields("status.phase=Running"), set)).toBe(false);
    expect(matchesFields(fields(""), set)).toBe(true);
  });
});

describe("fieldsFor and supportedFields", () => {
  it("gives a Pod's selectable fields", () => {
    const pod = {
      metadata: { name: "web-1", namespace: "default" },
      spec: { nodeName: "node-a", restartPolicy: "Always", schedulerName: "default-scheduler", serviceAccountName: "default" },
      status: { phase: "Running", podIP: "10.244.1.5", podIPs: [{ ip: "10.244.1.5" }] },
    };
    expect(fieldsFor("Pod", pod)).toEqual({
      "metadata.name": "web-1",
      "metadata.namespace": "default",
      "spec.nodeName": "node-a",
      "spec.restartPolicy": "Always",
      "spec.schedulerName": "default-scheduler",
      "spec.serviceAccountName": "default",
      "spec.hostNetwork": "false",
      "status.phase": "Running",
      "status.podIP": "10.244.1.5",
      "status.nominatedNodeName": "",
    });
    const pending = fieldsFor("Pod", { metadata: { name: "p", namespace: "ns" }, spec: {}, status: { phase: "Pending" } });
    expect(matchesFields(value(parseFieldSelector("spec.nodeName=,status.phase=Pending")), pending)).toBe(true);
    for (const f of Object.keys(pending)) expect(supportedFields("Pod")).toContain(f);
  });

  it("gives an Event's selectable fields, source falling back to reportingComponent", () => {
    const event = {
      metadata: { name: "web-1.17a", namespace: "default" },
      involvedObject: { kind: "Pod", namespace: "default", name: "web-1", uid: "u-1", apiVersion: "v1", resourceVersion: "42", fieldPath: "spec.containers{app}" },
      reason: "Scheduled",
      type: "Normal",
      reportingComponent: "default-scheduler",
    };
    expect(fieldsFor("Event", event)).toEqual({
      "metadata.name": "web-1.17a",
      "metadata.namespace": "default",
      "involvedObject.kind": "Pod",
      "involvedObject.namespace": "default",
      "involvedObject.name": "web-1",
      "involvedObject.uid": "u-1",
      "involvedObject.apiVersion": "v1",
      "involvedObject.resourceVersion": "42",
      "involvedObject.fieldPath": "spec.containers{app}",
      reason: "Scheduled",
      reportingComponent: "default-scheduler",
      source: "default-scheduler",
      type: "Normal",
    });
    expect(fieldsFor("Event", { ...event, source: { component: "kubelet" } }).source).toBe("kubelet");
    const sel = value(parseFieldSelector("involvedObject.kind=Pod,involvedObject.name=web-1"));
    expect(value(checkFieldSelector(sel, "Event"))).toBe(sel);
    expect(matchesFields(sel, fieldsFor("Event", event))).toBe(true);
  });

  it("gives Node and Namespace fields, which have no metadata.namespace", () => {
    expect(fieldsFor("Node", { metadata: { name: "n1" }, spec: { unschedulable: true } })).toEqual({ "metadata.name": "n1", "spec.unschedulable": "true" });
    expect(fieldsFor("Node", { metadata: { name: "n1" } })["spec.unschedulable"]).toBe("false");
    expect(fieldsFor("Namespace", { metadata: { name: "default" }, status: { phase: "Active" } })).toEqual({ "metadata.name": "default", "status.phase": "Active" });
    expect(supportedFields("Node")).toEqual(["metadata.name", "spec.unschedulable"]);
  });

  it("gives other kinds metadata.name and metadata.namespace", () => {
    expect(fieldsFor("Deployment", { metadata: { name: "web", namespace: "prod" } })).toEqual({ "metadata.name": "web", "metadata.namespace": "prod" });
    expect(supportedFields("ConfigMap")).toEqual(["metadata.name", "metadata.namespace"]);
  });

  it("rejects an unsupported field with Kubernetes' message", () => {
    expect(message(checkFieldSelector(value(parseFieldSelector("spec.foo=x")), "Pod"))).toBe("field label not supported: spec.foo");
    expect(message(checkFieldSelector(value(parseFieldSelector("metadata.namespace=x")), "Node"))).toBe("field label not supported: metadata.namespace");
    expect(message(checkFieldSelector(value(parseFieldSelector("spec.replicas=1")), "Deployment"))).toBe(
      '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"',
    );
  });
});
