import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { OperationTracker } from "../../../src/daemon/operations/tracker.js";
import { openDatabase } from "../../../src/state/database.js";
import { OperationRepository } from "../../../src/state/operations.js";
import { createLogger } from "../../../src/system/log.js";

void test("an operation whose record cannot be written (full disk) neither crashes the daemon nor leaves its followers waiting", async (t) => {
  const dir = mkdtempSync("/tmp/bgt-ops-");
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const db = openDatabase(join(dir, "banger.db"));
  t.after(() => { db.close(); });
  const lines: string[] = [];
  const repo = new OperationRepository(db);
  const op = new OperationTracker(repo, createLogger({ write: (l: string) => { lines.push(l); return true; } })).begin("op-0000000000aa", "vm.create", "x", ["clone-root"]);
  // Every write now fails, as on a full disk (SQLite says SQLITE_FULL there; here SQLITE_READONLY).
  db.pragma("query_only = ON");
  op.onProgress({ step: "clone-root", kind: "started", startedAt: new Date().toISOString(), elapsedMs: 0 });
  const waiting = repo.waitForChange("op-0000000000aa", 0, 30_000);
  // Progress is written from a timer: a throw there would kill the process (and this test).
  await new Promise((r) => setImmediate(r));
  op.fail(new Error("ENOSPC: no space left on device, copyfile a -> b"));
  const ended = await waiting;
  assert.equal(ended?.state, "failed", "the follower learns the end at once");
  assert.match(ended?.error ?? "", /ENOSPC/);
  assert.equal(repo.get("op-0000000000aa")?.state, "failed");
  assert.ok(lines.some((l) => /could not record/.test(l)), "the failed writes are logged");
});
