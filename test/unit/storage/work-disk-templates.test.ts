import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { test } from "node:test";
import { readExt4File, statExt4, writeExt4Files } from "../../../src/daemon/storage/ext4.js";
import { StorageService } from "../../../src/daemon/storage/service.js";
import { state } from "../../../src/paths/paths.js";
import { systemRunner, type Runner } from "../../../src/system/runner.js";
import { needsCommands } from "../../helpers/requirements.js";

const E2 = needsCommands("mkfs.ext4", "debugfs");

function recording(): Runner & { tools: string[] } {
  const tools: string[] = [];
  return { tools, run: (argv, opts) => { tools.push(argv[0] ?? ""); return systemRunner.run(argv, opts); } };
}

const keys = (key: string): { files: { path: string; data: string; mode: number; uid: number; gid: number }[]; dirs: { path: string; mode: number; uid: number; gid: number }[] } => ({
  files: [{ path: "/.ssh/authorized_keys", data: `${key}\n`, mode: 0o600, uid: 0, gid: 0 }],
  dirs: [{ path: "/.ssh", mode: 0o700, uid: 0, gid: 0 }],
});

void test("work disks: the first create formats a template; the rest clone it without forking a tool", { skip: E2 }, async (t) => {
  const stateDir = await mkdtemp("/tmp/bgt-wdt-");
  t.after(() => rm(stateDir, { recursive: true, force: true }));
  const runner = recording();
  const svc = new StorageService({ stateDir, configured: "copy", runner });
  const vmDirs = ["a", "b", "c", "d"].map((n) => `${stateDir}/vms/${n}`);
  for (const d of vmDirs) await mkdir(d, { recursive: true });

  // Concurrent first creates share one build.
  const disks = await Promise.all(vmDirs.slice(0, 3).map((d) => svc.createWorkDisk(d, 8, keys("ssh-ed25519 AAAAone banger"))));
  assert.deepEqual(runner.tools, ["mkfs.ext4", "debugfs"]);
  for (const disk of disks) {
    const st = await stat(disk);
    assert.equal(st.size, 8 * 1024 ** 3);
    assert.ok(st.blocks * 512 < 64 * 1024 ** 2, `work disk must stay sparse (allocated ${st.blocks * 512})`);
    assert.equal((await readExt4File(systemRunner, disk, "/.ssh/authorized_keys")).toString(), "ssh-ed25519 AAAAone banger\n");
    const ak = await statExt4(systemRunner, disk, "/.ssh/authorized_keys");
    assert.deepEqual([ak.mode, ak.uid, ak.gid], [0o600, 0, 0]);
  }
  const templates = state.workDiskTemplatesDir(stateDir);
  assert.equal((await readdir(templates)).length, 1);

  // A VM's disk is its own: writing into one clone changes neither the template nor the others.
  await writeExt4Files(systemRunner, disks[0] ?? "", [{ path: "/.ssh/authorized_keys", data: "changed\n", mode: 0o600 }], []);
  assert.equal((await readExt4File(systemRunner, disks[1] ?? "", "/.ssh/authorized_keys")).toString(), "ssh-ed25519 AAAAone banger\n");

  // Never overwrites an existing work disk (a VM's persistent /root).
  await assert.rejects(svc.createWorkDisk(vmDirs[0] ?? "", 8, keys("ssh-ed25519 AAAAone banger")), /EEXIST/);
  assert.equal((await readExt4File(systemRunner, disks[0] ?? "", "/.ssh/authorized_keys")).toString(), "changed\n");

  // A new install key gets a new template; the old one of that size is dropped.
  const d = await svc.createWorkDisk(vmDirs[3] ?? "", 8, keys("ssh-ed25519 AAAAtwo banger"));
  assert.equal((await readExt4File(systemRunner, d, "/.ssh/authorized_keys")).toString(), "ssh-ed25519 AAAAtwo banger\n");
  assert.deepEqual(runner.tools, ["mkfs.ext4", "debugfs", "mkfs.ext4", "debugfs"]);
  assert.equal((await readdir(templates)).length, 1);

  // A template removed behind the daemon's back is rebuilt.
  await rm(templates, { recursive: true });
  await rm(d);
  await svc.createWorkDisk(vmDirs[3] ?? "", 8, keys("ssh-ed25519 AAAAtwo banger"));
  assert.equal(runner.tools.length, 6);
});

void test("work disks: a failed template build leaves nothing behind and is retried next time", { skip: E2 }, async (t) => {
  const stateDir = await mkdtemp("/tmp/bgt-wdt-");
  t.after(() => rm(stateDir, { recursive: true, force: true }));
  let fail = true;
  const runner: Runner = { run: (argv, opts) => (fail && argv[0] === "debugfs" ? Promise.reject(new Error("debugfs exploded")) : systemRunner.run(argv, opts)) };
  const svc = new StorageService({ stateDir, configured: "copy", runner });
  const vmDir = `${stateDir}/vms/a`;
  await mkdir(vmDir, { recursive: true });
  await assert.rejects(svc.createWorkDisk(vmDir, 1, keys("ssh-ed25519 AAAAone banger")), /debugfs exploded/);
  assert.deepEqual(await readdir(state.workDiskTemplatesDir(stateDir)), []);
  assert.deepEqual(await readdir(vmDir), []);
  fail = false;
  const disk = await svc.createWorkDisk(vmDir, 1, keys("ssh-ed25519 AAAAone banger"));
  assert.equal((await readExt4File(systemRunner, disk, "/.ssh/authorized_keys")).toString(), "ssh-ed25519 AAAAone banger\n");
});
