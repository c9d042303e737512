import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { consoleTail } from "../../../src/daemon/vm/boot-steps.js";

void test("console tail: the last lines, and a kernel panic's reason even when its dump filled them", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-console-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const log = join(dir, "console.log");

  assert.equal(await consoleTail(join(dir, "missing.log")), "", "no log, nothing to add");
  writeFileSync(log, "\n\n");
  assert.equal(await consoleTail(log), "", "a blank log adds nothing");

  const dump = Array.from({ length: 20 }, (_, i) => `[    1.93${String(i).padStart(4, "0")}] R${i}: 0000000000000000`);
  writeFileSync(log, ["[    0.100000] Booting", "[    1.900000] Kernel panic - not syncing: No working init found.", ...dump, ""].join("\n"));
  const tail = await consoleTail(log, 5);
  assert.match(tail, /^; the guest kernel panicked: Kernel panic - not syncing: No working init found\.; last console lines/);
  assert.equal(tail.split("\n").length, 6, "the heading line and the last 5 lines");
  assert.ok(tail.endsWith(dump.at(-1) ?? "?"));

  writeFileSync(log, ["[    0.1] Booting", "[    1.9] Kernel panic - not syncing: VFS: Unable to mount root fs", ""].join("\n"));
  const short = await consoleTail(log, 5);
  assert.match(short, /^; the guest kernel panicked: Kernel panic - not syncing: VFS: Unable to mount root fs; last console lines/, "named even when it is among the last lines");
  assert.match(short, /Unable to mount root fs$/);
});

void test("console tail: a guest's escape sequences and control characters never reach the terminal", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-console-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const log = join(dir, "console.log");
  writeFileSync(log, "ok \x1b[2J\x1b[31mred\x1b[0m\r\n\x1b]0;owned\x07title \x1b]52;c;ZXZpbA==\x1b\\clip\x9b31m\x07\x08end\tx\n");
  const tail = await consoleTail(log);
  assert.equal(tail.split("\n").slice(1).join("\n"), "ok red\ntitle clip31mend\tx");
  // eslint-disable-next-line no-control-regex -- looking for control characters is the point
  assert.doesNotMatch(tail, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
});
