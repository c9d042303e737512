import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { runText, systemRunner } from "../../../src/system/runner.js";
import { applyJail, jailLayout, planJail, removeJail } from "../../../src/vmm/firecracker/jail.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { sampleSpec, VM_ID } from "./fixtures.js";

const base = mkdtempSync("/tmp/bgt-vmm-jail-");
after(() => { rmSync(base, { recursive: true, force: true }); });

void test("jail staging hard-links files, mknods block devices, chowns to the owner; removal leaves originals", { skip: requires(needsRoot(), needsCommands("losetup")) }, async (t) => {
  const stateDir = join(base, "state");
  mkdirSync(join(stateDir, "vms"), { recursive: true });
  const files = { kernelPath: join(stateDir, "vmlinux"), initrdPath: join(stateDir, "initrd"), workDisk: join(stateDir, "vms", "work.ext4") };
  for (const f of Object.values(files)) writeFileSync(f, "data");
  // A loop device of our own stands in for a dm device: a block node whose major:minor must be reproduced.
  const backing = join(base, "loop.img");
  writeFileSync(backing, Buffer.alloc(1 << 20));
  const loop = await runText(systemRunner, ["losetup", "--find", "--show", backing]);
  t.after(() => systemRunner.run(["losetup", "--detach", loop]));
  const spec = sampleSpec({ ...files, rootDisk: loop });
  const layout = jailLayout(stateDir, "/usr/bin/firecracker", VM_ID);
  const plan = planJail(spec, layout, (p) => statSync(p).isBlockDevice());
  await applyJail(plan, 4242, 4343, systemRunner);
  assert.equal(statSync(join(layout.root, "vmlinux")).ino, statSync(files.kernelPath).ino, "hard link, not a copy");
  assert.equal(statSync(join(layout.root, "work")).uid, 0, "hard links are never chowned: that would chown the original inode");
  assert.equal(lstatSync(layout.root).uid, 4242);
  assert.equal(lstatSync(layout.root).mode & 0o777, 0o700);
  assert.equal(lstatSync(layout.vmDir).mode & 0o777, 0o711, "parents traversable, not listable");
  assert.equal(lstatSync(layout.vmDir).uid, 0);
  const node = statSync(join(layout.root, "rootfs"));
  assert.ok(node.isBlockDevice());
  assert.equal(node.rdev, statSync(loop).rdev, "same major:minor as the host device");
  assert.equal(node.uid, 4242);
  assert.equal(node.mode & 0o777, 0o600);
  assert.equal(await removeJail(layout.vmDir), true);
  assert.equal(existsSync(layout.vmDir), false);
  assert.equal(statSync(files.kernelPath).nlink, 1, "originals keep their data");
  assert.equal(await removeJail(layout.vmDir), false);
});
