#!/usr/bin/env node
// After `npm install` on these machines: the registry here serves only this platform's
// optional packages (rollup's and msgpackr-extract's per-OS builds), so npm leaves the others
// out of package-lock.json and a later `npm ci` refuses the lock as out of sync. This adds a
// version-only entry for every optional dependency the lock lacks; npm ci skips them on a
// platform they do not fit, as it would with full entries.
import { readFileSync, writeFileSync } from "node:fs";

const file = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(file, "utf8"));
const pkgs = lock.packages;
let added = 0;
for (const [path, meta] of Object.entries(pkgs)) {
  for (const [dep, range] of Object.entries(meta.optionalDependencies ?? {})) {
    const nested = path ? `${path}/node_modules/${dep}` : `node_modules/${dep}`;
    const hoisted = `node_modules/${dep}`;
    if (pkgs[nested] || pkgs[hoisted]) continue;
    const version = /^[\^~]?(\d+\.\d+\.\d+.*)$/.exec(range)?.[1];
    if (!version) continue;
    pkgs[hoisted] = { version, ...(meta.dev ? { dev: true } : {}), optional: true };
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(pkgs).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0)));
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: ${added} optional platform entries added`);
