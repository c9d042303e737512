import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { ensureRuntimeDir, RuntimeDirError } from "../../../src/daemon/runtime-dir.js";

const base = mkdtempSync("/tmp/bgt-rtdir-");
after(() => { rmSync(base, { recursive: true, force: true }); });
const me = process.getuid?.() ?? 0;

function refused(path: string, uid: number, re: RegExp): void {
  assert.throws(() => { ensureRuntimeDir(path, uid); }, (e: unknown) => e instanceof RuntimeDirError && e.message.includes(path) && re.test(e.message) && /XDG_RUNTIME_DIR/.test(e.message));
}

void test("a missing runtime dir is made 0700; an existing one of ours is made 0700", () => {
  const fresh = join(base, "fresh", "banger");
  ensureRuntimeDir(fresh, me);
  assert.equal(statSync(fresh).mode & 0o777, 0o700);
  const open = join(base, "open");
  mkdirSync(open, { mode: 0o755 });
  chmodSync(open, 0o755);
  ensureRuntimeDir(open, me);
  assert.equal(statSync(open).mode & 0o777, 0o700);
});

void test("a runtime dir squatted by someone else, writable by others, or reached through a symlink is refused and left as it is", () => {
  const squatted = join(base, "squatted");
  mkdirSync(squatted, { mode: 0o755 });
  chmodSync(squatted, 0o755);
  // Owned by "someone else": the daemon as another uid than the directory's.
  refused(squatted, me + 4242, /is owned by uid \d+, not by you .*remove it as root/);
  assert.equal(statSync(squatted).mode & 0o777, 0o755, "not repaired: it is not ours");

  for (const mode of [0o770, 0o757, 0o1777]) {
    const open = join(base, `open-${mode.toString(8)}`);
    mkdirSync(open);
    chmodSync(open, mode);
    refused(open, me, /writable by group or others .*chmod 0700/);
    assert.equal(statSync(open).mode & 0o7777, mode);
  }

  const target = join(base, "target");
  mkdirSync(target, { mode: 0o700 });
  const link = join(base, "link");
  symlinkSync(target, link);
  refused(link, me, /reached through a symlink/);
  refused(join(link, "below"), me, /reached through a symlink/);

  const file = join(base, "file");
  writeFileSync(file, "");
  refused(file, me, /cannot be created: EEXIST|not a directory/);
});
