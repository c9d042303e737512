#!/usr/bin/env node
// Runs the compiled test tiers with Node's built-in test runner.
//   node scripts/test.mjs            all tiers (integration and e2e need root; they skip themselves otherwise)
//   node scripts/test.mjs unit       one tier
// Every skipped test is listed with its reason at the end. Under CI=true a skip fails the run unless
// its reason is one of the host facts below, which machines of this kind truly cannot provide.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

/** Reasons a test may skip under CI=true: written by hostLacks() in test/helpers/requirements.ts. */
const ALLOWED_SKIPS = ["device-mapper", "a firecracker binary", "a jailer binary", "systemd-resolved"].map((fact) => `host lacks ${fact}:`);

const tiers = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["unit", "integration", "e2e"];
const ci = process.env["CI"] === "true";

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

const scratch = mkdtempSync(join(tmpdir(), "banger-test-"));
const skips = [];
let failed = false;
try {
  for (const tier of tiers) {
    const files = find(join("dist", "test", tier));
    if (files.length === 0) {
      // A tier that should exist but was not built is a broken run, not an empty one.
      process.stdout.write(`\n== ${tier}: no test files under dist/test/${tier} ==\n`);
      failed = true;
      continue;
    }
    // Unit tests run in parallel; tiers that touch the host (namespaces, VMs) run one file at a time.
    const concurrency = tier === "unit" ? "2" : "1";
    const skipLog = join(scratch, `${tier}.skips.jsonl`);
    process.stdout.write(`\n== ${tier}: ${files.length} files ==\n`);
    const r = spawnSync(process.execPath, [
      "--test", `--test-concurrency=${concurrency}`,
      "--test-reporter=spec", "--test-reporter-destination=stdout",
      `--test-reporter=${join(import.meta.dirname, "skip-reporter.mjs")}`, `--test-reporter-destination=${skipLog}`,
      ...files,
    ], { stdio: "inherit" });
    if (r.status !== 0) failed = true;
    let lines = [];
    try { lines = readFileSync(skipLog, "utf8").split("\n").filter((l) => l !== ""); } catch { /* no skips */ }
    for (const l of lines) skips.push({ tier, ...JSON.parse(l) });
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

if (skips.length > 0) {
  process.stdout.write(`\n== skipped: ${skips.length} ==\n`);
  let unexpected = 0;
  for (const s of skips) {
    const allowed = ALLOWED_SKIPS.some((p) => s.reason.startsWith(p));
    if (!allowed) unexpected++;
    process.stdout.write(`${ci && !allowed ? "✖ UNEXPECTED " : "- "}[${s.tier}] ${s.file.replace(/^.*\/dist\//, "dist/")}: ${s.name}\n    reason: ${s.reason}\n`);
  }
  if (ci && unexpected > 0) {
    process.stdout.write(`\nCI=true: ${unexpected} test(s) skipped for a reason that is not a host fact this kind of machine lacks; install what they need (.ci/run) or fix the test.\n`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
