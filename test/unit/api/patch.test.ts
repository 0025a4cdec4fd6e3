import { describe, expect, it } from "vitest";
import {
  applyJsonMergePatch,
  applyJsonPatch,
  applyStrategicMergePatch,
  patchSchemaFor,
  PatchErrorCode,
  type ListPatchStrategy,
  type PatchResult,
  type PatchSchema,
} from "../../../control-plane/api/patch.ts";

function okValue(r: PatchResult): unknown {
  if (r.kind !== "ok") throw new Error(`expected the patch to apply, got ${r.code}: ${r.message}`);
  return r.value;
}

function errorOf(r: PatchResult): { code: string; message: string } {
  if (r.kind !== "error") throw new Error(`expected the patch to fail, got ${JSON.stringify(r.value)}`);
  return r;
}

const parse = (json: string): unknown => JSON.parse(json);

describe("applyJsonMergePatch (RFC 7386 appendix A)", () => {
  const cases: Array<[string, string, string]> = [
    ['{"a":"b"}', '{"a":"c"}', '{"a":"c"}'],
    ['{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'],
    ['{"a":"b"}', '{"a":null}', "{}"],
    ['{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'],
    ['{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'],
    ['{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'],
    ['{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}'],
    ['{"a":[{"b":"c"}]}', '{"a":[1]}', '{"a":[1]}'],
    ['["a","b"]', '["c","d"]', '["c","d"]'],
    ['{"a":"b"}', '["c"]', '["c"]'],
    ['{"a":"foo"}', "null", "null"],
    ['{"a":"foo"}', '"bar"', '"bar"'],
    ['{"e":null}', '{"a":1}', '{"e":null,"a":1}'],
    ["[1,2]", '{"a":"b","c":null}', '{"a":"b"}'],
    ["{}", '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'],
  ];
  it.each(cases)("%s + %s = %s", (target, patch, result) => {
    expect(applyJsonMergePatch(parse(target), parse(patch))).toEqual(parse(result));
  });

  it("leaves its inputs untouched and shares nothing with them", () => {
    const target = { a: { b: 1 }, keep: [1] };
    const patch = { a: { c: { d: 2 } } };
    const out = applyJsonMergePatch(target, patch) as { a: { c: { d: number } }; keep: number[] };
    expect(target).toEqual({ a: { b: 1 }, keep: [1] });
    expect(patch).toEqual({ a: { c: { d: 2 } } });
    out.a.c.d = 3;
    out.keep.push(2);
    expect(patch.a.c.d).toBe(2);
    expect(target.keep).toEqual([1]);
  });

  it("keeps a __proto__ member as data", () => {
    const out = applyJsonMergePatch({}, JSON.parse('{"__proto__":{"polluted":true}}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(out)).toEqual(["__proto__"]);
  });
});

describe("applyJsonPatch (RFC 6902 appendix A)", () => {
  const ok: Array<[string, string, string, string]> = [
    ["A.1 adding an object member", '{"foo":"bar"}', '[{"op":"add","path":"/baz","value":"qux"}]', '{"baz":"qux","foo":"bar"}'],
    ["A.2 adding an array element", '{"foo":["bar","baz"]}', '[{"op":"add","path":"/foo/1","value":"qux"}]', '{"foo":["bar","qux","baz"]}'],
    ["A.3 removing an object member", '{"baz":"qux","foo":"bar"}', '[{"op":"remove","path":"/baz"}]', '{"foo":"bar"}'],
    ["A.4 removing an array element", '{"foo":["bar","qux","baz"]}', '[{"op":"remove","path":"/foo/1"}]', '{"foo":["bar","baz"]}'],
    ["A.5 replacing a value", '{"baz":"qux","foo":"bar"}', '[{"op":"replace","path":"/baz","value":"boo"}]', '{"baz":"boo","foo":"bar"}'],
    [
      "A.6 moving a value",
      '{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}',
      '[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]',
      '{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}',
    ],
    ["A.7 moving an array element", '{"foo":["all","grass","cows","eat"]}', '[{"op":"move","from":"/foo/1","path":"/foo/3"}]', '{"foo":["all","cows","eat","grass"]}'],
    [
      "A.8 testing a value: success",
      '{"baz":"qux","foo":["a",2,"c"]}',
      '[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]',
      '{"baz":"qux","foo":["a",2,"c"]}',
    ],
    ["A.10 adding a nested member object", '{"foo":"bar"}', '[{"op":"add","path":"/child","value":{"grandchild":{}}}]', '{"foo":"bar","child":{"grandchild":{}}}'],
    ["A.11 ignoring unrecognized elements", '{"foo":"bar"}', '[{"op":"add","path":"/baz","value":"qux","xyz":123}]', '{"foo":"bar","baz":"qux"}'],
    ["A.14 ~ escape ordering", '{"/":9,"~1":10}', '[{"op":"test","path":"/~01","value":10}]', '{"/":9,"~1":10}'],
    ["A.16 adding an array value", '{"foo":["bar"]}', '[{"op":"add","path":"/foo/-","value":["abc","def"]}]', '{"foo":["bar",["abc","def"]]}'],
  ];
  it.each(ok)("%s", (_name, target, ops, result) => {
    expect(okValue(applyJsonPatch(parse(target), parse(ops)))).toEqual(parse(result));
  });

  it("A.9 testing a value: error", () => {
    const e = errorOf(applyJsonPatch(parse('{"baz":"qux"}'), parse('[{"op":"test","path":"/baz","value":"bar"}]')));
    expect(e.code).toBe(PatchErrorCode.TestFailed);
    expect(e.message).toContain("/baz");
  });

  it("A.12 adding to a nonexistent target", () => {
    const e = errorOf(applyJsonPatch(parse('{"foo":"bar"}'), parse('[{"op":"add","path":"/baz/bat","value":"qux"}]')));
    expect(e.code).toBe(PatchErrorCode.Unprocessable);
    expect(e.message).toContain('"/baz" does not exist');
  });

  it("A.13 invalid JSON patch document (a repeated op member parses to its last value, remove of a missing member)", () => {
    const ops = parse('[{"op":"add","path":"/baz","value":"qux","op":"remove"}]');
    expect(applyJsonPatch(parse('{"foo":"bar"}'), ops).kind).toBe("error");
  });

  it("A.15 comparing strings and numbers", () => {
    const e = errorOf(applyJsonPatch(parse('{"/":9,"~1":10}'), parse('[{"op":"test","path":"/~01","value":"10"}]')));
    expect(e.code).toBe(PatchErrorCode.TestFailed);
  });

  it("compares objects regardless of member order and arrays in order", () => {
    const doc = { a: { x: 1, y: [1, 2] } };
    expect(applyJsonPatch(doc, [{ op: "test", path: "/a", value: { y: [1, 2], x: 1 } }]).kind).toBe("ok");
    expect(applyJsonPatch(doc, [{ op: "test", path: "/a/y", value: [2, 1] }]).kind).toBe("error");
  });

  it("copies a value, replaces the whole document at the root pointer", () => {
    expect(okValue(applyJsonPatch({ a: { b: 1 } }, [{ op: "copy", from: "/a", path: "/c" }]))).toEqual({ a: { b: 1 }, c: { b: 1 } });
    expect(okValue(applyJsonPatch({ a: 1 }, [{ op: "replace", path: "", value: [1] }]))).toEqual([1]);
  });

  it("leaves the target untouched when a later operation fails", () => {
    const target = { metadata: { labels: { app: "web" } }, spec: { replicas: 1 } };
    const r = applyJsonPatch(target, [
      { op: "replace", path: "/spec/replicas", value: 3 },
      { op: "remove", path: "/metadata/labels/app" },
      { op: "test", path: "/spec/replicas", value: 1 },
    ]);
    expect(errorOf(r).message).toMatch(/^operation 2 \(test\)/);
    expect(target).toEqual({ metadata: { labels: { app: "web" } }, spec: { replicas: 1 } });
  });

  it("refuses malformed operations with BadPatch", () => {
    const bad: unknown[] = [
      { op: "add", path: "/a" }, // no value
      [{ op: "frobnicate", path: "/a" }],
      [{ op: "add", path: "a", value: 1 }], // pointer without leading "/"
      [{ op: "add", path: "/a~2", value: 1 }], // bad escape
      [{ op: "move", path: "/a" }], // no from
    ];
    for (const ops of bad) expect(errorOf(applyJsonPatch({ a: 1 }, ops)).code).toBe(PatchErrorCode.BadPatch);
    expect(errorOf(applyJsonPatch({}, [{ op: "add", path: "/a" }])).code).toBe(PatchErrorCode.BadPatch);
  });

  it("checks array indices: no leading zeros, no index past the end, '-' only to append", () => {
    const doc = { a: [1, 2] };
    expect(okValue(applyJsonPatch(doc, [{ op: "add", path: "/a/2", value: 3 }]))).toEqual({ a: [1, 2, 3] });
    expect(applyJsonPatch(doc, [{ op: "add", path: "/a/3", value: 3 }]).kind).toBe("error");
    expect(applyJsonPatch(doc, [{ op: "replace", path: "/a/01", value: 3 }]).kind).toBe("error");
    expect(applyJsonPatch(doc, [{ op: "remove", path: "/a/-" }]).kind).toBe("error");
    expect(applyJsonPatch(doc, [{ op: "remove", path: "/a/2" }]).kind).toBe("error");
  });

  it("refuses to move a location into its own child", () => {
    expect(errorOf(applyJsonPatch({ a: { b: {} } }, [{ op: "move", from: "/a", path: "/a/b/c" }])).code).toBe(PatchErrorCode.Unprocessable);
  });

  it("limits a patch to 10000 operations, as the API server does", () => {
    const ops = Array.from({ length: 10_001 }, () => ({ op: "test", path: "", value: {} }));
    expect(errorOf(applyJsonPatch({}, ops)).code).toBe(PatchErrorCode.TooLarge);
  });

  it("refuses a body that is not a list of operations", () => {
    expect(errorOf(applyJsonPatch({}, { op: "add", path: "/a", value: 1 })).code).toBe(PatchErrorCode.BadPatch);
  });
});

// ---------------------------------------------------------------------------------------------
// Strategic merge patch

const podSchema = patchSchemaFor("", "Pod");

function smp(target: unknown, patch: unknown, schema: PatchSchema = podSchema): unknown {
  return okValue(applyStrategicMergePatch(target, patch, schema));
}

function twoContainerPod() {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", labels: { app: "web", tier: "front" }, finalizers: ["a.example.com/x", "b.example.com/y"] },
    spec: {
      containers: [
        { name: "app", image: "app:1", ports: [{ containerPort: 8080, protocol: "TCP" }], env: [{ name: "MODE", value: "prod" }] },
        { name: "sidecar", image: "proxy:1" },
      ],
      tolerations: [{ key: "a", operator: "Exists" }],
    },
  };
}

describe("applyStrategicMergePatch on a Pod (kubectl apply / kubectl patch)", () => {
  it("changes one container's image and keeps the other (containers merge on name)", () => {
    const pod = twoContainerPod();
    const out = smp(pod, { spec: { containers: [{ name: "sidecar", image: "proxy:2" }] } }) as ReturnType<typeof twoContainerPod>;
    expect(out.spec.containers).toEqual([pod.spec.containers[0], { name: "sidecar", image: "proxy:2" }]);
    expect(pod.spec.containers[1]!.image).toBe("proxy:1");
  });

  it("applies the patch kubectl apply sends for an image change ($setElementOrder/containers)", () => {
    const patch = {
      spec: {
        "$setElementOrder/containers": [{ name: "app" }, { name: "sidecar" }],
        containers: [{ name: "app", image: "app:2" }],
      },
    };
    const out = smp(twoContainerPod(), patch) as ReturnType<typeof twoContainerPod>;
    expect(out.spec.containers.map((c) => [c.name, c.image])).toEqual([
      ["app", "app:2"],
      ["sidecar", "proxy:1"],
    ]);
    expect(out.spec.containers[0]!.ports).toEqual([{ containerPort: 8080, protocol: "TCP" }]);
  });

  it("adds a port (ports merge on containerPort), in the order $setElementOrder gives", () => {
    const out = smp(twoContainerPod(), {
      spec: {
        "$setElementOrder/containers": [{ name: "app" }, { name: "sidecar" }],
        containers: [{ name: "app", "$setElementOrder/ports": [{ containerPort: 8080 }, { containerPort: 9090 }], ports: [{ containerPort: 9090, name: "metrics" }] }],
      },
    }) as ReturnType<typeof twoContainerPod>;
    expect(out.spec.containers[0]!.ports).toEqual([
      { containerPort: 8080, protocol: "TCP" },
      { containerPort: 9090, name: "metrics" },
    ]);
  });

  it("puts items a patch names ahead of server-only items it cannot place (mergeSortedSlice)", () => {
    const out = smp(twoContainerPod(), { spec: { containers: [{ name: "app", ports: [{ containerPort: 9090 }] }] } }) as ReturnType<typeof twoContainerPod>;
    expect(out.spec.containers[0]!.ports!.map((p) => p.containerPort)).toEqual([9090, 8080]);
  });

  it("merges env by name: changes one variable, adds another", () => {
    const out = smp(twoContainerPod(), {
      spec: { containers: [{ name: "app", env: [{ name: "MODE", value: "dev" }, { name: "DEBUG", value: "1" }] }] },
    }) as ReturnType<typeof twoContainerPod>;
    expect(out.spec.containers[0]!.env).toEqual([
      { name: "MODE", value: "dev" },
      { name: "DEBUG", value: "1" },
    ]);
  });

  it("deletes a container with $patch: delete", () => {
    const out = smp(twoContainerPod(), {
      spec: { "$setElementOrder/containers": [{ name: "app" }], containers: [{ name: "sidecar", $patch: "delete" }] },
    }) as ReturnType<typeof twoContainerPod>;
    expect(out.spec.containers.map((c) => c.name)).toEqual(["app"]);
  });

  it("reorders containers with $setElementOrder/containers alone", () => {
    const out = smp(twoContainerPod(), { spec: { "$setElementOrder/containers": [{ name: "sidecar" }, { name: "app" }] } }) as ReturnType<typeof twoContainerPod>;
    expect(out.spec.containers.map((c) => c.name)).toEqual(["sidecar", "app"]);
  });

  it("removes a label with null and adds another", () => {
    const out = smp(twoContainerPod(), { metadata: { labels: { tier: null, track: "canary" } } }) as ReturnType<typeof twoContainerPod>;
    expect(out.metadata.labels).toEqual({ app: "web", track: "canary" });
  });

  it("removes a finalizer with $deleteFromPrimitiveList/finalizers and unions added ones", () => {
    const out = smp(twoContainerPod(), {
      metadata: { "$deleteFromPrimitiveList/finalizers": ["a.example.com/x"], finalizers: ["c.example.com/z", "b.example.com/y"] },
    }) as ReturnType<typeof twoContainerPod>;
    expect(out.metadata.finalizers).toEqual(["c.example.com/z", "b.example.com/y"]);
  });

  it("replaces a list without a patch strategy (tolerations are atomic)", () => {
    const out = smp(twoContainerPod(), { spec: { tolerations: [{ key: "b", operator: "Equal", value: "x" }] } }) as ReturnType<typeof twoContainerPod>;
    expect(out.spec.tolerations).toEqual([{ key: "b", operator: "Equal", value: "x" }]);
  });

  it("clears the fields of a union that $retainKeys does not list (a volume's source)", () => {
    const pod = { spec: { volumes: [{ name: "data", emptyDir: {} }, { name: "cfg", configMap: { name: "c" } }] } };
    const out = smp(pod, {
      spec: {
        "$setElementOrder/volumes": [{ name: "data" }, { name: "cfg" }],
        volumes: [{ name: "data", $retainKeys: ["hostPath", "name"], hostPath: { path: "/srv" } }],
      },
    });
    expect(out).toEqual({ spec: { volumes: [{ name: "data", hostPath: { path: "/srv" } }, { name: "cfg", configMap: { name: "c" } }] } });
  });

  it("refuses a patch that sets a key $retainKeys does not list", () => {
    const e = errorOf(applyStrategicMergePatch({ spec: { strategy: { type: "Recreate" } } }, { spec: { strategy: { $retainKeys: ["type"], rollingUpdate: {} } } }, patchSchemaFor("apps", "Deployment")));
    expect(e.code).toBe(PatchErrorCode.Unprocessable);
    expect(e.message).toContain("retainKeys");
  });

  it("replaces a map with $patch: replace and deletes one with $patch: delete", () => {
    const pod = { metadata: { labels: { a: "1", b: "2" }, annotations: { x: "y" } } };
    expect(smp(pod, { metadata: { labels: { $patch: "replace", c: "3" }, annotations: { $patch: "delete" } } })).toEqual({ metadata: { labels: { c: "3" } } });
  });

  it("replaces a merge list with a { $patch: replace } item", () => {
    const out = smp(twoContainerPod(), { spec: { containers: [{ name: "only", image: "x" }, { $patch: "replace" }] } }) as ReturnType<typeof twoContainerPod>;
    expect(out.spec.containers).toEqual([{ name: "only", image: "x" }]);
  });

  it("merges ownerReferences on uid", () => {
    const obj = { metadata: { ownerReferences: [{ uid: "1", name: "rs-a", kind: "ReplicaSet" }] } };
    const out = smp(obj, { metadata: { ownerReferences: [{ uid: "1", controller: true }, { uid: "2", name: "rs-b", kind: "ReplicaSet" }] } });
    expect(out).toEqual({
      metadata: {
        ownerReferences: [
          { uid: "1", name: "rs-a", kind: "ReplicaSet", controller: true },
          { uid: "2", name: "rs-b", kind: "ReplicaSet" },
        ],
      },
    });
  });

  it("takes a new field from the patch with its nulls dropped and its directives resolved", () => {
    const out = smp({ spec: {} }, { spec: { containers: [{ name: "a", image: "x", command: null }, { name: "gone", $patch: "delete" }] } });
    expect(out).toEqual({ spec: { containers: [{ name: "a", image: "x" }] } });
  });

  it("fails on unknown directives and leaves the target untouched", () => {
    const pod = twoContainerPod();
    const before = structuredClone(pod);
    expect(errorOf(applyStrategicMergePatch(pod, { spec: { $frobnicate: 1 } }, podSchema)).code).toBe(PatchErrorCode.BadPatch);
    expect(errorOf(applyStrategicMergePatch(pod, { metadata: { labels: { $patch: "merge" } } }, podSchema)).code).toBe(PatchErrorCode.BadPatch);
    expect(errorOf(applyStrategicMergePatch(pod, { spec: { containers: [{ name: "app", $patch: "merge" }] } }, podSchema)).code).toBe(PatchErrorCode.BadPatch);
    expect(errorOf(applyStrategicMergePatch(pod, { spec: { containers: [{ name: "app", $patch: "explode" }] } }, podSchema)).message).toContain("unknown patch type");
    expect(pod).toEqual(before);
  });

  it("fails when a merge-list item has no merge key", () => {
    const e = errorOf(applyStrategicMergePatch(twoContainerPod(), { spec: { containers: [{ image: "x" }] } }, podSchema));
    expect(e.message).toContain("does not contain declared merge key: name");
  });

  it("refuses a patch that is not an object", () => {
    expect(errorOf(applyStrategicMergePatch({}, [1], podSchema)).code).toBe(PatchErrorCode.BadPatch);
  });
});

describe("applyStrategicMergePatch on other kinds", () => {
  it("merges Service ports on port", () => {
    const svc = { spec: { ports: [{ name: "http", port: 80, targetPort: 8080 }, { name: "https", port: 443, targetPort: 8443 }] } };
    const out = smp(svc, { spec: { ports: [{ port: 80, targetPort: 9090 }] } }, patchSchemaFor("", "Service"));
    expect(out).toEqual({ spec: { ports: [{ name: "http", port: 80, targetPort: 9090 }, { name: "https", port: 443, targetPort: 8443 }] } });
  });

  it("merges a Deployment's pod template containers on name", () => {
    const deploy = { spec: { replicas: 1, template: { spec: { containers: [{ name: "a", image: "a:1" }, { name: "b", image: "b:1" }] } } } };
    const out = smp(deploy, { spec: { replicas: 3, template: { spec: { containers: [{ name: "b", image: "b:2" }] } } } }, patchSchemaFor("apps", "Deployment"));
    expect(out).toEqual({ spec: { replicas: 3, template: { spec: { containers: [{ name: "a", image: "a:1" }, { name: "b", image: "b:2" }] } } } });
  });

  it("merges Node conditions and addresses on type; replaces taints", () => {
    const node = {
      spec: { taints: [{ key: "a", effect: "NoSchedule" }, { key: "b", effect: "NoSchedule" }] },
      status: {
        addresses: [{ type: "InternalIP", address: "10.0.0.2" }, { type: "Hostname", address: "n1" }],
        conditions: [{ type: "Ready", status: "False" }, { type: "MemoryPressure", status: "False" }],
      },
    };
    const out = smp(
      node,
      { spec: { taints: [{ key: "a", effect: "NoSchedule" }] }, status: { conditions: [{ type: "Ready", status: "True" }], addresses: [{ type: "InternalIP", address: "10.0.0.3" }] } },
      patchSchemaFor("", "Node"),
    );
    expect(out).toEqual({
      spec: { taints: [{ key: "a", effect: "NoSchedule" }] },
      status: {
        addresses: [{ type: "InternalIP", address: "10.0.0.3" }, { type: "Hostname", address: "n1" }],
        conditions: [{ type: "Ready", status: "True" }, { type: "MemoryPressure", status: "False" }],
      },
    });
  });

  it("replaces every NetworkPolicy list", () => {
    const np = { spec: { ingress: [{ from: [{ podSelector: {} }] }, { ports: [{ port: 80 }] }] } };
    expect(smp(np, { spec: { ingress: [{ ports: [{ port: 443 }] }] } }, patchSchemaFor("networking.k8s.io", "NetworkPolicy"))).toEqual({ spec: { ingress: [{ ports: [{ port: 443 }] }] } });
  });

  it("describes the kinds kubewire serves, and only ObjectMeta for others", () => {
    const strategyOf = (s: PatchSchema, path: string): ListPatchStrategy | undefined => s.lists.get(path);
    expect(strategyOf(patchSchemaFor("", "Pod"), "spec.containers[].volumeMounts")).toEqual({ strategy: "merge", mergeKey: "mountPath" });
    expect(strategyOf(patchSchemaFor("apps", "ReplicaSet"), "spec.template.spec.initContainers")).toEqual({ strategy: "merge", mergeKey: "name" });
    expect(strategyOf(patchSchemaFor("apps", "Deployment"), "spec.template.spec.imagePullSecrets")).toEqual({ strategy: "merge", mergeKey: "name" });
    expect(strategyOf(patchSchemaFor("core", "Namespace"), "metadata.finalizers")).toEqual({ strategy: "merge" });
    expect(strategyOf(patchSchemaFor("discovery.k8s.io", "EndpointSlice"), "endpoints")).toEqual({ strategy: "replace" });
    for (const [g, k] of [["", "Event"], ["networking.k8s.io", "Ingress"], ["", "Namespace"]] as const) expect(patchSchemaFor(g, k).known).toBe(true);
    const unknown = patchSchemaFor("example.com", "Widget");
    expect(unknown.known).toBe(false);
    expect(strategyOf(unknown, "metadata.ownerReferences")).toEqual({ strategy: "merge", mergeKey: "uid" });
  });
});

// Vectors from k8s.io/apimachinery/pkg/util/strategicpatch/patch_test.go, on its MergeItem type:
// mergingList merges on name, mergingIntList is a set, nonMerging* lists are replaced.
describe("applyStrategicMergePatch against upstream vectors (patch_test.go)", () => {
  const mergeItem: PatchSchema = {
    group: "test",
    kind: "MergeItem",
    known: true,
    lists: new Map<string, ListPatchStrategy>([
      ["mergingList", { strategy: "merge", mergeKey: "name" }],
      ["mergingList[].mergingList", { strategy: "merge", mergeKey: "name" }],
      ["mergingIntList", { strategy: "merge" }],
      ["retainKeysMergingList", { strategy: "merge", mergeKey: "name" }],
    ]),
  };
  const cases: Array<{ name: string; current: unknown; patch: unknown; result?: unknown; error?: string }> = [
    { name: "unique scalars when merging lists", current: { mergingIntList: [1, 2] }, patch: { mergingIntList: [2, 3] }, result: { mergingIntList: [1, 2, 3] } },
    { name: "delete all items from merging list", current: { mergingList: [{ name: 1 }, { name: 2 }] }, patch: { mergingList: [{ $patch: "replace" }] }, result: { mergingList: [] } },
    { name: "delete all keys from map", current: { name: 1, value: 1 }, patch: { $patch: "replace" }, result: {} },
    { name: "add key and delete all keys from map", current: { name: 1, value: 1 }, patch: { other: "a", $patch: "replace" }, result: { other: "a" } },
    {
      name: "delete all duplicate entries in a merging list",
      current: { mergingList: [{ name: 1 }, { name: 1 }, { name: 2, value: "a" }, { name: 3 }, { name: 3 }] },
      patch: { mergingList: [{ name: 1, $patch: "delete" }, { name: 3, $patch: "delete" }] },
      result: { mergingList: [{ name: 2, value: "a" }] },
    },
    {
      name: "preserve the order from the patch in a merging list 2",
      current: { mergingList: [{ name: 1 }, { name: 2, value: "b" }, { name: 3 }] },
      patch: { mergingList: [{ name: 3, value: "c" }, { name: 1, value: "a" }] },
      result: { mergingList: [{ name: 2, value: "b" }, { name: 3, value: "c" }, { name: 1, value: "a" }] },
    },
    { name: "preserve the order from the patch in a merging int list", current: { mergingIntList: [1, 2, 3] }, patch: { mergingIntList: [3, 1] }, result: { mergingIntList: [2, 3, 1] } },
    {
      name: "$setElementOrder contains item that is not present in the list to be merged",
      current: { mergingList: [{ name: 1 }, { name: 3 }] },
      patch: { "$setElementOrder/mergingList": [{ name: 3 }, { name: 2 }, { name: 1 }], mergingList: [{ name: 3, value: 3 }, { name: 1, value: 1 }] },
      result: { mergingList: [{ name: 3, value: 3 }, { name: 1, value: 1 }] },
    },
    {
      name: "should check if order in $setElementOrder and patch list match",
      current: { mergingList: [{ name: 1 }, { name: 3 }, { name: 2 }] },
      patch: { "$setElementOrder/mergingList": [{ name: 1 }, { name: 2 }, { name: 3 }], mergingList: [{ name: 3, value: 3 }, { name: 1, value: 1 }] },
      error: "doesn't match",
    },
    { name: "missing merge key should error out", current: { mergingList: [{ name: 1, value: "a" }] }, patch: { mergingList: [{ value: "b" }] }, error: "does not contain declared merge key" },
    { name: "$deleteFromPrimitiveList of nonexistent item", current: { mergingIntList: [1, 2] }, patch: { "$deleteFromPrimitiveList/mergingIntList": [3] }, result: { mergingIntList: [1, 2] } },
    { name: "$deleteFromPrimitiveList on nonexistent list", current: { foo: ["bar"] }, patch: { "$deleteFromPrimitiveList/mergingIntList": [3] }, result: { foo: ["bar"] } },
    { name: "$deleteFromPrimitiveList on a list without merge strategy", current: { nonMergingIntList: [1, 2, 3] }, patch: { "$deleteFromPrimitiveList/nonMergingIntList": [2] }, result: { nonMergingIntList: [1, 3] } },
    {
      name: "nested patch merge with empty list",
      current: { name: "hi", mergingList: [{ name: "hello2" }] },
      patch: { "$setElementOrder/mergingList": [{ name: "hello" }, { name: "doesntexist" }], mergingList: [{ name: "hello" }, { $patch: "delete", name: "doesntexist" }] },
      result: { name: "hi", mergingList: [{ name: "hello" }, { name: "hello2" }] },
    },
    {
      name: "delete items in lists of scalars",
      current: { mergingIntList: [1, 2, 3, 4] },
      patch: { "$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3] },
      result: { mergingIntList: [1, 2, 4] },
    },
    {
      name: "add and delete items in lists of scalars",
      current: { mergingIntList: [1, 2, 3] },
      patch: { "$setElementOrder/mergingIntList": [1, 2, 4], "$deleteFromPrimitiveList/mergingIntList": [3], mergingIntList: [4] },
      result: { mergingIntList: [1, 2, 4] },
    },
    {
      name: "merge lists of maps",
      current: { mergingList: [{ name: 1, other: "a" }, { name: 2, value: 2, other: "b" }] },
      patch: { "$setElementOrder/mergingList": [{ name: 4 }, { name: 1 }, { name: 2 }, { name: 3 }], mergingList: [{ name: 4, value: 4 }, { name: 3, value: 3 }] },
      result: { mergingList: [{ name: 4, value: 4 }, { name: 1, other: "a" }, { name: 2, value: 2, other: "b" }, { name: 3, value: 3 }] },
    },
    {
      name: "add field to map in merging list with conflict",
      current: { mergingList: [{ name: 1, other: "a" }, { name: 3, value: 2, other: "b" }] },
      patch: { "$setElementOrder/mergingList": [{ name: 1 }, { name: 2 }], mergingList: [{ name: 1, value: 1 }, { name: 2, value: 2 }] },
      result: { mergingList: [{ name: 1, value: 1, other: "a" }, { name: 2, value: 2 }, { name: 3, value: 2, other: "b" }] },
    },
    {
      name: "delete missing map from merging list with conflict",
      current: { mergingList: [{ name: 3, other: "a" }] },
      patch: { "$setElementOrder/mergingList": [{ name: 2 }], mergingList: [{ name: 2 }, { name: 1, $patch: "delete" }] },
      result: { mergingList: [{ name: 2 }, { name: 3, other: "a" }] },
    },
    {
      name: "add map and delete map from merging list",
      current: { mergingList: [{ name: 1 }, { name: 2, other: "b" }, { name: 4, other: "c" }] },
      patch: { "$setElementOrder/mergingList": [{ name: 2 }, { name: 3 }], mergingList: [{ name: 3 }, { name: 1, $patch: "delete" }] },
      result: { mergingList: [{ name: 2, other: "b" }, { name: 4, other: "c" }, { name: 3 }] },
    },
    {
      name: "add map and delete map from merging list with conflict",
      current: { mergingList: [{ name: 1, other: "a" }, { name: 4, other: "c" }] },
      patch: { "$setElementOrder/mergingList": [{ name: 2 }, { name: 3 }], mergingList: [{ name: 2 }, { name: 3 }, { name: 1, $patch: "delete" }] },
      result: { mergingList: [{ name: 4, other: "c" }, { name: 2 }, { name: 3 }] },
    },
    {
      name: "replace non merging list nested in merging list",
      current: { mergingList: [{ name: 1, other: "a", nonMergingList: [{ name: 1 }, { name: 2, value: 2 }] }, { name: 2, other: "b" }] },
      patch: { "$setElementOrder/mergingList": [{ name: 1 }, { name: 2 }], mergingList: [{ name: 1, nonMergingList: [{ name: 1, value: 1 }] }] },
      result: { mergingList: [{ name: 1, other: "a", nonMergingList: [{ name: 1, value: 1 }] }, { name: 2, other: "b" }] },
    },
    {
      name: "retainKeys list can delete a field when no retainKeys directive present",
      current: { retainKeysMergingList: [{ name: "bar" }, { name: "foo", value: "a" }] },
      patch: { retainKeysMergingList: [{ name: "foo", value: null }] },
      result: { retainKeysMergingList: [{ name: "bar" }, { name: "foo" }] },
    },
  ];
  it.each(cases)("$name", ({ current, patch, result, error }) => {
    const r = applyStrategicMergePatch(current, patch, mergeItem);
    if (error !== undefined) expect(errorOf(r).message).toContain(error);
    else expect(okValue(r)).toEqual(result);
  });
});
