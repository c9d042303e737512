#!/usr/bin/env node
// Runs the compiled test tiers with Node's built-in test runner.
//   node scripts/test.mjs            all tiers (integration and e2e need root; they skip themselves otherwise)
//   node scripts/test.mjs unit       one tier
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const tiers = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["unit", "integration", "e2e"];

function find(dir) {
  let out = [];
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const e of entries.sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (e.endsWith(".test.js")) out.push(p);
  }
  return out;
}

let failed = false;
for (const tier of tiers) {
  const files = find(join("dist", "test", tier));
  if (files.length === 0) continue;
  // Unit tests run in parallel; tiers that touch the host (namespaces, VMs) run one file at a time.
  const concurrency = tier === "unit" ? "2" : "1";
  process.stdout.write(`\n== ${tier}: ${files.length} files ==\n`);
  const r = spawnSync(process.execPath, ["--test", `--test-concurrency=${concurrency}`, "--test-reporter=spec", ...files], { stdio: "inherit" });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
