import assert from "node:assert/strict";
import { closeSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { openVerified } from "../../../src/vmm/open-verified.js";

const dir = mkdtempSync("/tmp/bgt-vmm-open-");
after(() => { rmSync(dir, { recursive: true, force: true }); });

void test("openVerified opens the validated file and refuses symlinks at the leaf or in a directory", () => {
  mkdirSync(join(dir, "real"));
  writeFileSync(join(dir, "real", "disk"), "ok");
  writeFileSync(join(dir, "secret"), "no");
  const { fd } = openVerified("disk", join(dir, "real", "disk"), "read");
  assert.equal(readFileSync(`/proc/self/fd/${fd}`, "utf8"), "ok");
  closeSync(fd);
  symlinkSync(join(dir, "secret"), join(dir, "real", "leaf"));
  assert.throws(() => openVerified("disk", join(dir, "real", "leaf"), "read"), /disk: cannot open/);
  // A directory swapped for a symlink after validation: the kernel's resolved path gives it away.
  symlinkSync(join(dir, "real"), join(dir, "swapped"));
  assert.throws(() => openVerified("disk", join(dir, "swapped", "disk"), "readwrite"), /resolved to .*real\/disk.*swapped/);
  assert.throws(() => openVerified("disk", dir, "read"), /not a regular file/);
  assert.throws(() => openVerified("dm", join(dir, "real", "disk"), "read", { allowLinkedDevice: true }), /not a block device/);
});
