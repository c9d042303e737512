import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { test } from "node:test";
import { readExt4File, statExt4 } from "../../../src/daemon/storage/ext4.js";
import { StorageService } from "../../../src/daemon/storage/service.js";
import { fromRootDisk, vmStorage } from "../../../src/daemon/storage/vm-storage.js";
import { systemRunner } from "../../../src/system/runner.js";
import { needsCommands } from "../../helpers/requirements.js";

const VM = "0123456789abcdef0123456789abcdef";

void test("the lifecycle's StorageDeps: clone, file_sync, inject, work disk, destroy (copy strategy on /tmp)", { skip: needsCommands("mkfs.ext4", "debugfs", "cp") }, async (t) => {
  const base = await mkdtemp("/tmp/bgt-disk-vmst-");
  t.after(() => rm(base, { recursive: true, force: true }));
  const state = `${base}/state`;
  const home = `${base}/home`;
  const vmDir = `${state}/vms/${VM}`;
  await mkdir(`${state}/images/tiny`, { recursive: true });
  await mkdir(vmDir, { recursive: true });
  await mkdir(home);
  await writeFile(`${home}/.profile`, "export A=1\n", { mode: 0o644 });
  await writeFile(`${home}/banner`, "hi\n", { mode: 0o644 });
  const rootfs = `${state}/images/tiny/rootfs.ext4`;
  await systemRunner.run(["truncate", "-s", "32M", rootfs]);
  await systemRunner.run(["mkfs.ext4", "-F", "-q", "-E", "root_owner=0:0", rootfs]);

  const service = new StorageService({ stateDir: state, configured: "copy", runner: systemRunner });
  const deps = vmStorage(service, { fileSync: [{ host: "~/.profile", guest: "/root/.profile" }, { host: "banner", guest: "/etc/banner" }], home });
  const image = { name: "tiny", flavor: "busybox" as const, kernelPath: "/k", rootfsPath: rootfs };
  const root = await deps.cloneRoot({ vmId: VM, vmDir, image }, "op-test01");
  assert.equal(root.strategy, "copy");
  assert.equal(root.path, `${vmDir}/root.ext4`);
  assert.equal((await readExt4File(systemRunner, root.path, "/etc/banner")).toString(), "hi\n");
  assert.deepEqual(await deps.activateRoot(root, "op-test01"), root);

  const contents = { dirs: [{ path: "/.ssh", mode: 0o700, uid: 0, gid: 0 }], files: [{ path: "/.ssh/authorized_keys", content: Buffer.from("k\n"), mode: 0o600, uid: 0, gid: 0 }] };
  const work = await deps.createWorkDisk({ vmId: VM, vmDir, sizeGib: 1, contents }, "op-test01");
  assert.equal((await readExt4File(systemRunner, work, "/.profile")).toString(), "export A=1\n");
  await deps.injectFiles({ kind: "root", root }, { dirs: [], files: [{ path: "/etc/hostname", content: Buffer.from("tiny-1\n"), mode: 0o644, uid: 0, gid: 0 }] }, "op-test01");
  assert.equal((await readExt4File(systemRunner, root.path, "/etc/hostname")).toString(), "tiny-1\n");
  const ak = await statExt4(systemRunner, work, "/.ssh/authorized_keys");
  assert.deepEqual([ak.mode, ak.uid], [0o600, 0]);

  // A record storage did not write is refused rather than guessed at.
  assert.throws(() => fromRootDisk({ strategy: "dm-snapshot", path: "/dev/mapper/x" }), /not one storage wrote/);

  await deps.deactivateRoot(root, "op-test01");
  await deps.destroyRoot(root, "op-test01");
  await deps.destroyRoot(root, "op-test01");
  await deps.destroyWorkDisk(work, "op-test01");
  assert.deepEqual(await readdir(vmDir), []);
});

void test("a file_sync entry escaping the home fails the clone and leaves no clone behind", { skip: needsCommands("mkfs.ext4", "cp") }, async (t) => {
  const base = await mkdtemp("/tmp/bgt-disk-vmst-");
  t.after(() => rm(base, { recursive: true, force: true }));
  const state = `${base}/state`;
  const vmDir = `${state}/vms/${VM}`;
  await mkdir(`${base}/home`, { recursive: true });
  await mkdir(vmDir, { recursive: true });
  const rootfs = `${base}/state/rootfs.ext4`;
  await systemRunner.run(["truncate", "-s", "16M", rootfs]);
  await systemRunner.run(["mkfs.ext4", "-F", "-q", rootfs]);
  const deps = vmStorage(new StorageService({ stateDir: state, configured: "copy", runner: systemRunner }), { fileSync: [{ host: "../../etc/passwd", guest: "/etc/x" }], home: `${base}/home` });
  await assert.rejects(deps.cloneRoot({ vmId: VM, vmDir, image: { name: "t", flavor: "busybox", kernelPath: "/k", rootfsPath: rootfs } }, "op-test01"), /"\.\."/);
  assert.deepEqual(await readdir(vmDir), []);
});
