/**
 * The folders import only downwards (issue item 9): the overlay is the bottom layer, cluster/ is
 * the cluster code both the control plane and the node-agents share, and neither reaches up.
 *
 *   overlay/wire/  imports only overlay/wire/ (the codecs stand alone)
 *   overlay/       imports nothing from cluster/, node-agent/, control-plane/
 *   cluster/       imports nothing from control-plane/, node-agent/
 *
 * Read from the sources with a regex (static imports, re-exports, dynamic import("...")), so a
 * new upward import fails here before review.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" ? [] : tsFiles(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

const IMPORT_RE = /\b(?:import|export)\s+(?:type\s+)?(?:[^"'`;]*?\s+from\s+)?["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)/g;

/** The relative specifiers a file imports, as repo-relative paths with "/" separators. */
function localImports(file: string): string[] {
  const source = readFileSync(join(ROOT, file), "utf8");
  const out: string[] = [];
  for (const m of source.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2]!;
    if (!spec.startsWith(".")) continue;
    out.push(relative(ROOT, resolve(ROOT, dirname(file), spec)).split(sep).join("/"));
  }
  return out;
}

interface Rule {
  readonly folder: string;
  readonly allowed: (target: string) => boolean;
  readonly says: string;
}

const under = (folder: string) => (target: string) => target.startsWith(`${folder}/`);

const RULES: readonly Rule[] = [
  { folder: "overlay/wire", allowed: under("overlay/wire"), says: "overlay/wire/ imports only overlay/wire/" },
  { folder: "overlay", allowed: under("overlay"), says: "overlay/ imports nothing from cluster/, node-agent/, control-plane/" },
  { folder: "cluster", allowed: (t) => !under("control-plane")(t) && !under("node-agent")(t), says: "cluster/ imports nothing from control-plane/ or node-agent/" },
];

describe("layering", () => {
  it("finds import specifiers of every form", () => {
    expect(localImports("cluster/ipam.ts")).toContain("overlay/wire/common.ts");
  });

  for (const rule of RULES) {
    it(rule.says, () => {
      const files = tsFiles(rule.folder);
      expect(files.length).toBeGreaterThan(0);
      const violations = files.flatMap((f) =>
        localImports(f)
          .filter((t) => !rule.allowed(t))
          .map((t) => `${f.split(sep).join("/")} -> ${t}`),
      );
      expect(violations).toEqual([]);
    });
  }
});
