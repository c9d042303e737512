import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, readdir, readFile, rm, statfs, truncate, writeFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import { readExt4File, statExt4 } from "../../../src/daemon/storage/ext4.js";
import { updateFstab } from "../../../src/daemon/vm/guest-files.js";
import { StorageService } from "../../../src/daemon/storage/service.js";
import { cleanupDmSnapshot, createDmSnapshot } from "../../../src/roothelper/dmsnap.js";
import { runText, systemRunner } from "../../../src/system/runner.js";
import { deviceMapper, needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { createXfsLoop, loopDevices, makeExt4Image, type XfsLoop } from "../../helpers/xfs-loop.js";

const SKIP = requires(needsRoot(), needsCommands("mkfs.xfs", "losetup", "mount", "umount", "mkfs.ext4", "debugfs", "e2fsck", "resize2fs"));
const VM_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const VM_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

let fs: XfsLoop | undefined;
let stateDir = "";
let small = "";
let big = "";
let loopsBefore: string[] = [];

before(async () => {
  if (SKIP !== false) return;
  loopsBefore = await loopDevices("/tmp/bgt-disk");
  fs = await createXfsLoop("bgt-disk", 8);
  stateDir = `${fs.mnt}/state`;
  await mkdir(`${stateDir}/images/small`, { recursive: true });
  await mkdir(`${stateDir}/images/big`, { recursive: true });
  await mkdir(`${stateDir}/vms`, { recursive: true });
  small = `${stateDir}/images/small/rootfs.ext4`;
  big = `${stateDir}/images/big/rootfs.ext4`;
  await makeExt4Image(small, 256, 16);
  await makeExt4Image(big, 4096, 256);
  await systemRunner.run(["sync"]);
});

after(async () => {
  if (fs === undefined) return;
  await fs.destroy();
  // The test's own loop device is gone too: the host is as we found it.
  assert.deepEqual(await loopDevices("/tmp/bgt-disk"), loopsBefore);
});

function service(configured: "auto" | "copy" = "auto"): StorageService {
  return new StorageService({ stateDir, configured, runner: systemRunner });
}

async function vmDir(id: string): Promise<string> {
  const d = `${stateDir}/vms/${id}`;
  await mkdir(d, { recursive: true });
  return d;
}

async function sha(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

async function freeBytes(): Promise<number> {
  const s = await statfs(stateDir);
  return s.bavail * s.bsize;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

void test("auto picks reflink on xfs; cloning a 4 GiB and a 256 MiB image take the same time and no space", { skip: SKIP }, async (t) => {
  const svc = service();
  const choice = await svc.choice("op-test01");
  assert.equal(choice.strategy, "reflink", choice.reason);
  assert.equal(choice.advice, "");
  const strategy = await svc.strategy("op-test01");
  const dir = await vmDir(VM_A);
  const times: Record<"small" | "big", number[]> = { small: [], big: [] };
  const freeBefore = await freeBytes();
  for (let i = 0; i < 15; i++) {
    // Alternate the order so drift (other load on the host) hits both sides alike.
    for (const which of i % 2 === 0 ? (["small", "big"] as const) : (["big", "small"] as const)) {
      const t0 = process.hrtime.bigint();
      const h = await strategy.clone(which === "small" ? small : big, dir, { vmId: VM_A, opId: "op-test01" });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (i > 0) times[which].push(ms); // first round warms caches
      if (which === "big") assert.ok((await freeBytes()) > freeBefore - 16 * 1024 ** 2, "a 4 GiB reflink clone must not consume space");
      await strategy.release(h, "op-test01");
    }
  }
  const s = median(times.small);
  const b = median(times.big);
  t.diagnostic(`reflink clone median: 256 MiB ${s.toFixed(3)} ms, 4 GiB ${b.toFixed(3)} ms, ratio ${(b / s).toFixed(2)}`);
  // A real copy of 16x the data would be >10x slower; the bench checks the 1.10 target.
  assert.ok(b / s < 2, `4 GiB clone took ${b.toFixed(3)} ms vs ${s.toFixed(3)} ms for 256 MiB`);
  assert.ok(b < 50, `a reflink clone should take milliseconds, took ${b.toFixed(1)} ms`);
});

for (const configured of ["auto", "copy"] as const) {
  void test(`${configured === "auto" ? "reflink" : "sparse copy"}: a write inside one VM's root disk never shows in the image or another VM's disk`, { skip: SKIP }, async (t) => {
    const svc = service(configured);
    const imageHash = await sha(small);
    const a = await svc.cloneRoot(small, await vmDir(VM_A), { vmId: VM_A, opId: "op-test01" });
    const b = await svc.cloneRoot(small, await vmDir(VM_B), { vmId: VM_B, opId: "op-test01" });
    t.after(() => Promise.all([svc.releaseVm(`${stateDir}/vms/${VM_A}`, a, "op-test01"), svc.releaseVm(`${stateDir}/vms/${VM_B}`, b, "op-test01")]));
    assert.equal(a.kind, configured === "auto" ? "reflink" : "copy");
    // Cloning again into the same VM dir is refused and leaves the existing disk alone.
    await assert.rejects(svc.cloneRoot(small, `${stateDir}/vms/${VM_A}`, { vmId: VM_A, opId: "op-test01" }), /already exists/);
    assert.ok(existsSync(a.path));
    // File-level write (what injection does) and block-level write (what a guest does).
    await svc.writeRootFiles(a, [{ path: "/etc/hostname", data: "vm-a\n", mode: 0o644 }], [], "op-test01");
    await svc.writeRootFiles(b, [{ path: "/etc/hostname", data: "vm-b\n", mode: 0o644 }], [], "op-test01");
    const fh = await open(a.path, "r+");
    await fh.write(Buffer.alloc(1 << 20, 0xee), 0, 1 << 20, 100 * 1024 * 1024);
    await fh.close();
    assert.equal((await readExt4File(systemRunner, a.path, "/etc/hostname")).toString(), "vm-a\n");
    assert.equal((await readExt4File(systemRunner, b.path, "/etc/hostname")).toString(), "vm-b\n");
    assert.equal(await sha(small), imageHash, "the image changed");
    const bBytes = await readFile(b.path);
    assert.ok(!bBytes.subarray(100 * 1024 * 1024, 101 * 1024 * 1024).equals(Buffer.alloc(1 << 20, 0xee)), "VM A's block write shows in VM B's disk");
  });
}

void test("a VM's disks end to end: clone + resize, work disk, injection, file_sync; delete releases everything", { skip: SKIP }, async (t) => {
  const svc = service();
  const mine = fs?.dir ?? "/nonexistent";
  const loops = await loopDevices(mine);
  assert.equal(loops.length, 1, `expected only this suite's xfs loop, got ${loops.join(", ")}`);
  const free0 = await freeBytes();
  const dir = await vmDir(VM_A);
  const home = await mkdtemp("/tmp/bgt-disk-home-");
  t.after(() => rm(home, { recursive: true, force: true }));
  await writeFile(`${home}/.gitconfig`, "[user]\n\tname = test\n", { mode: 0o644 });
  await writeFile(`${home}/motd`, "hello from home\n", { mode: 0o600 });

  const root = await svc.cloneRoot(small, dir, { vmId: VM_A, opId: "op-test01", rootSizeBytes: 512 * 1024 ** 2 });
  let released = false;
  t.after(async () => {
    if (!released) await svc.releaseVm(dir, root, "op-test01");
  });
  const dump = await runText(systemRunner, ["dumpe2fs", "-h", root.path]);
  assert.equal(Number(/Block count:\s+(\d+)/.exec(dump)?.[1]) * Number(/Block size:\s+(\d+)/.exec(dump)?.[1]), 512 * 1024 ** 2, "root disk was not grown");

  const work = await svc.createWorkDisk(dir, 2, { files: [{ path: "/.ssh/authorized_keys", data: "ssh-ed25519 AAAAtest banger\n", mode: 0o600, uid: 0, gid: 0 }], dirs: [{ path: "/.ssh", mode: 0o700, uid: 0, gid: 0 }] });
  await svc.writeRootFiles(
    root,
    [
      { path: "/etc/hostname", data: "vm-a\n", mode: 0o644 },
      { path: "/etc/fstab", data: updateFstab(""), mode: 0o644 },
      { path: "/etc/ssh/ssh_host_ed25519_key", data: "PRIVATE\n", mode: 0o600 },
    ],
    [],
    "op-test01",
  );
  await svc.syncFiles(root, work, [{ host: "~/.gitconfig", guest: "/root/.gitconfig" }, { host: "motd", guest: "/etc/motd", mode: "0644" }], home, "op-test01");

  assert.equal((await readExt4File(systemRunner, root.path, "/etc/hostname")).toString(), "vm-a\n");
  assert.match((await readExt4File(systemRunner, root.path, "/etc/fstab")).toString(), /^\/dev\/vdb \/root ext4 defaults 0 2$/m);
  const key = await statExt4(systemRunner, root.path, "/etc/ssh/ssh_host_ed25519_key");
  assert.deepEqual([key.mode, key.uid, key.gid], [0o600, 0, 0]);
  assert.equal((await readExt4File(systemRunner, root.path, "/etc/motd")).toString(), "hello from home\n");
  assert.equal((await statExt4(systemRunner, root.path, "/etc/motd")).mode, 0o644);
  assert.equal((await readExt4File(systemRunner, work, "/.gitconfig")).toString(), "[user]\n\tname = test\n");
  assert.equal((await readExt4File(systemRunner, work, "/.ssh/authorized_keys")).toString(), "ssh-ed25519 AAAAtest banger\n");
  const ak = await statExt4(systemRunner, work, "/.ssh/authorized_keys");
  assert.deepEqual([ak.mode, ak.uid, ak.gid], [0o600, 0, 0]);
  // e2fsck finds both filesystems clean after all edits.
  await systemRunner.run(["e2fsck", "-fn", root.path]);
  await systemRunner.run(["e2fsck", "-fn", work]);

  await svc.releaseVm(dir, root, "op-test01");
  released = true;
  await svc.releaseVm(dir, root, "op-test01"); // idempotent
  assert.deepEqual(await readdir(dir), []);
  assert.deepEqual(await loopDevices(mine), loops);
  assert.ok((await freeBytes()) >= free0 - 4 * 1024 ** 2, "space of the deleted VM was not returned");
});

void test("dm-snapshot for real (only on a host with device-mapper)", { skip: requires(SKIP, needsCommands("dmsetup", "blockdev"), deviceMapper()) }, async () => {
  const loops = await loopDevices("/tmp/bgt-disk");
  const dir = await vmDir(VM_B);
  const cow = `${dir}/root.cow`;
  await writeFile(cow, "");
  await truncate(cow, 256 * 1024 ** 2);
  const h = await createDmSnapshot(systemRunner, small, cow, `fc-rootfs-${VM_B}`);
  try {
    await systemRunner.run(["e2fsck", "-fy", h.dm_dev], { okExitCodes: [1] });
  } finally {
    await cleanupDmSnapshot(systemRunner, h, { stateDir });
    await rm(cow, { force: true });
  }
  assert.deepEqual(await loopDevices("/tmp/bgt-disk"), loops);
});
