import { describe, expect, it } from "vitest";
import { formatFieldError, validateObject } from "../../../control-plane/api/validation.ts";

const meta = { name: "x", namespace: "default" };
const tmpl = (restartPolicy?: string) => ({ spec: { ...(restartPolicy ? { restartPolicy } : {}), containers: [{ name: "c", image: "busybox" }] } });
const texts = (kind: string, obj: unknown) => validateObject(kind, obj).map(formatFieldError);

describe("Job and CronJob validation", () => {
  it("a Job's pods must not restart Always", () => {
    expect(texts("Job", { metadata: meta, spec: { template: tmpl("Never") } })).toEqual([]);
    expect(texts("Job", { metadata: meta, spec: { template: tmpl("OnFailure") } })).toEqual([]);
    expect(texts("Job", { metadata: meta, spec: { template: tmpl() } })).toEqual(['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']);
    expect(texts("Job", { metadata: meta, spec: { template: tmpl("Always") } })).toEqual(['spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"']);
    expect(texts("Job", { metadata: meta, spec: { backoffLimit: -1, template: tmpl("Never") } })[0]).toMatch(/^spec.backoffLimit: Invalid value: -1/);
  });

  it("a CronJob's schedule must parse", () => {
    const cj = (schedule: string) => ({ metadata: meta, spec: { schedule, jobTemplate: { spec: { template: tmpl("Never") } } } });
    expect(texts("CronJob", cj("*/5 * * * *"))).toEqual([]);
    expect(texts("CronJob", cj("61 * * * *"))[0]).toMatch(/^spec.schedule: Invalid value: "61 \* \* \* \*"/);
  });
});
