import assert from "node:assert/strict";
import { chownSync, closeSync, existsSync, fstatSync, lstatSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { trustedDir } from "../../../src/roothelper/fs/trust.js";
import { removeJailTree, stageJail } from "../../../src/roothelper/launch/jail-stage.js";
import type { Held } from "../../../src/roothelper/launch/spec-files.js";
import { jailLayout } from "../../../src/vmm/firecracker/jail.js";
import { runText, systemRunner } from "../../../src/system/runner.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { VM_ID } from "./fixtures.js";

const base = mkdtempSync("/tmp/bgt-vmm-jail-");
after(() => { rmSync(base, { recursive: true, force: true }); });

void test("jail staging by descriptor: hard links of the verified inodes, block nodes from the device's rdev, chowned to the owner; removal leaves originals", { skip: requires(needsRoot(), needsCommands("losetup")) }, async (t) => {
  const stateDir = join(base, "state");
  mkdirSync(join(stateDir, "vms"), { recursive: true });
  chownSync(stateDir, 4242, 4343);
  const kernelPath = join(stateDir, "vmlinux");
  const workDisk = join(stateDir, "vms", "work.ext4");
  for (const f of [kernelPath, workDisk]) writeFileSync(f, "data");
  const held = (p: string): Held => {
    const fd = openSync(p, "r");
    return { fd, stat: fstatSync(fd) };
  };
  // A loop device of the test's own stands in for a dm device: a block node whose major:minor must be reproduced.
  const backing = join(base, "loop.img");
  writeFileSync(backing, Buffer.alloc(1 << 20));
  const loop = await runText(systemRunner, ["losetup", "--find", "--show", backing]);
  t.after(() => systemRunner.run(["losetup", "--detach", loop]));
  const kernel = held(kernelPath);
  const work = held(workDisk);
  const dev = held(loop);
  // Root's all the way down (made by trustedDir), on the state dir's filesystem (both in /tmp).
  const jailDir = join(base, "jail");
  const root = trustedDir("vmm.jail_dir", jailDir);
  assert.equal(statSync(jailDir).uid, 0);
  const layout = jailLayout(jailDir, "/usr/bin/firecracker", VM_ID);
  // A leftover jail with a symlink out of it: removed, never followed.
  mkdirSync(join(layout.root), { recursive: true });
  symlinkSync(base, join(layout.root, "escape"));
  assert.equal(removeJailTree(root, "firecracker", VM_ID), true);
  stageJail(root, "firecracker", VM_ID, [{ name: "vmlinux", source: kernel }, { name: "rootfs", source: dev }, { name: "work", source: work }], { uid: 4242, gid: 4343 });
  for (const h of [kernel, work, dev]) closeSync(h.fd);
  assert.equal(statSync(join(layout.root, "vmlinux")).ino, statSync(kernelPath).ino, "hard link, not a copy");
  assert.equal(statSync(join(layout.root, "work")).uid, 0, "hard links are never chowned: that would chown the original inode");
  assert.equal(existsSync(join(layout.root, "escape")), false);
  assert.equal(lstatSync(layout.root).uid, 4242);
  assert.equal(lstatSync(layout.root).mode & 0o777, 0o700);
  assert.equal(lstatSync(layout.vmDir).mode & 0o777, 0o711, "parents traversable, not listable");
  assert.equal(lstatSync(layout.vmDir).uid, 0);
  const node = statSync(join(layout.root, "rootfs"));
  assert.ok(node.isBlockDevice());
  assert.equal(node.rdev, statSync(loop).rdev, "same major:minor as the host device");
  assert.equal(node.uid, 4242);
  assert.equal(node.mode & 0o777, 0o600);
  assert.equal(removeJailTree(root, "firecracker", VM_ID), true);
  assert.equal(existsSync(layout.vmDir), false);
  assert.equal(statSync(kernelPath).nlink, 1, "originals keep their data");
  assert.equal(removeJailTree(root, "firecracker", VM_ID), false);
  closeSync(root.fd);
});

void test("the jail dir must be root's all the way down; staging refuses a parent the owner made", { skip: needsRoot() }, () => {
  const ownerHome = join(base, "home");
  mkdirSync(ownerHome);
  chownSync(ownerHome, 4242, 4343);
  // What the jailer would resolve by name as root must not pass through a directory the owner can rename in.
  assert.throws(() => trustedDir("vmm.jail_dir", join(ownerHome, "jail")), /vmm\.jail_dir .*home\/jail: directory .*home is owned by uid 4242/);
  assert.equal(existsSync(join(ownerHome, "jail")), false, "nothing is created below a directory that failed the check");
  symlinkSync(base, join(base, "link"));
  assert.throws(() => trustedDir("vmm.jail_dir", join(base, "link", "jail")), /vmm\.jail_dir/);
  const jailDir = join(base, "jail2");
  const root = trustedDir("vmm.jail_dir", jailDir);
  mkdirSync(join(jailDir, "firecracker"));
  chownSync(join(jailDir, "firecracker"), 4242, 4343);
  assert.throws(() => { stageJail(root, "firecracker", VM_ID, [], { uid: 4242, gid: 4343 }); }, /jail2\/firecracker is owned by uid 4242, not root/);
  closeSync(root.fd);
});
