import assert from "node:assert/strict";
import { chmod } from "node:fs/promises";
import { test } from "node:test";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { startStack } from "../../helpers/stack.js";
import { ensureTestUser } from "../../helpers/users.js";
import { createXfsLoop } from "../../helpers/xfs-loop.js";

interface StatusDoc {
  storage?: { clone_strategy: string; reason: string; advice?: string };
}

void test("system status reports the clone strategy the daemon picked for its state dir, with advice when it is not O(1)", { skip: requires(needsRoot(), needsCommands("setpriv", "mkfs.xfs", "losetup", "mount")) }, async (t) => {
  const user = await ensureTestUser();

  // State dir on xfs (reflink=1): reflink, nothing to advise.
  const fs = await createXfsLoop("bgt-disk", 2);
  t.after(() => fs.destroy());
  await chmod(fs.dir, 0o755); // the daemon runs as the test user and must reach the mount
  const onXfs = await startStack({ user, stateDir: `${fs.mnt}/state` });
  try {
    const status = await onXfs.cli(["system", "status", "--json"]);
    assert.equal(status.code, 0, status.stderr);
    const doc = JSON.parse(status.stdout) as StatusDoc;
    assert.equal(doc.storage?.clone_strategy, "reflink", JSON.stringify(doc.storage));
    assert.match(doc.storage.reason, /FICLONE works/);
    assert.equal(doc.storage.advice, "");
  } finally {
    await onXfs.stop();
  }

  // Default /tmp state dir (ext4 here, no device-mapper): sparse copy plus the advice.
  const onExt4 = await startStack({ user });
  try {
    const status = await onExt4.cli(["system", "status", "--json"]);
    assert.equal(status.code, 0, status.stderr);
    const doc = JSON.parse(status.stdout) as StatusDoc;
    if (doc.storage?.clone_strategy === "reflink") {
      t.diagnostic("/tmp supports reflink on this host; the copy branch is covered by unit tests");
      return;
    }
    assert.ok(doc.storage !== undefined);
    assert.match(doc.storage.clone_strategy, /^(copy|dm-snapshot)$/);
    if (doc.storage.clone_strategy === "copy") assert.equal(doc.storage.advice, "put the state dir on xfs or btrfs for O(1) clones");
  } finally {
    await onExt4.stop();
  }
});
