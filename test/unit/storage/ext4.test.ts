import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { test } from "node:test";
import { systemRunner } from "../../../src/system/runner.js";
import {
  checkGuestPath,
  Ext4NotFoundError,
  readExt4File,
  statExt4,
  writeExt4Files,
} from "../../../src/daemon/storage/ext4.js";
import { updateFstab } from "../../../src/daemon/vm/guest-files.js";
import { createWorkDisk, parseSize, resizeExt4Image } from "../../../src/daemon/storage/work-disk.js";
import { needsCommands } from "../../helpers/requirements.js";

const E2 = needsCommands("mkfs.ext4", "debugfs", "e2fsck", "resize2fs", "dumpe2fs");

async function tmpDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp("/tmp/bgt-disk-ext4-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function makeImage(dir: string, mib = 32): Promise<string> {
  const img = `${dir}/img.ext4`;
  await systemRunner.run(["truncate", "-s", `${mib}M`, img]);
  await systemRunner.run(["mkfs.ext4", "-F", "-q", "-E", "root_owner=0:0", img]);
  return img;
}

void test("injected files read back with content, mode and owner; parents are created mkdir -p style", { skip: E2 }, async (t) => {
  const img = await makeImage(await tmpDir(t));
  const bin = Buffer.from([0, 1, 2, 255, 10, 34, 92]);
  await writeExt4Files(
    systemRunner,
    img,
    [
      { path: "/etc/hostname", data: "vm-one\n", mode: 0o644 },
      { path: "/a/deep/dir with space/key", data: bin, mode: 0o600, uid: 1000, gid: 1001 },
      { path: "/root/.ssh/authorized_keys", data: "ssh-ed25519 AAAA test\n", mode: 0o600 },
    ],
    [{ path: "/root/.ssh", mode: 0o700 }],
  );
  assert.equal((await readExt4File(systemRunner, img, "/etc/hostname")).toString(), "vm-one\n");
  assert.deepEqual(await readExt4File(systemRunner, img, "/a/deep/dir with space/key"), bin);
  const key = await statExt4(systemRunner, img, "/a/deep/dir with space/key");
  assert.deepEqual({ type: key.type, mode: key.mode, uid: key.uid, gid: key.gid, size: key.size }, { type: "regular", mode: 0o600, uid: 1000, gid: 1001, size: bin.length });
  const ssh = await statExt4(systemRunner, img, "/root/.ssh");
  assert.deepEqual([ssh.type, ssh.mode, ssh.uid, ssh.gid], ["directory", 0o700, 0, 0]);
  const parent = await statExt4(systemRunner, img, "/a/deep");
  assert.deepEqual([parent.type, parent.mode, parent.uid], ["directory", 0o755, 0]);
  const hn = await statExt4(systemRunner, img, "/etc/hostname");
  assert.deepEqual([hn.mode, hn.uid, hn.gid], [0o644, 0, 0]);
  // e2fsck agrees the edits left a consistent filesystem (exit 0 = clean).
  await systemRunner.run(["e2fsck", "-fn", img]);
});

void test("writing again replaces the file (content, mode) instead of failing", { skip: E2 }, async (t) => {
  const img = await makeImage(await tmpDir(t));
  await writeExt4Files(systemRunner, img, [{ path: "/etc/hosts", data: "old content that is longer\n", mode: 0o600 }]);
  await writeExt4Files(systemRunner, img, [{ path: "/etc/hosts", data: "new\n", mode: 0o644, uid: 5 }]);
  assert.equal((await readExt4File(systemRunner, img, "/etc/hosts")).toString(), "new\n");
  const st = await statExt4(systemRunner, img, "/etc/hosts");
  assert.deepEqual([st.mode, st.uid, st.size], [0o644, 5, 4]);
});

void test("an empty file reads back empty; a missing one is an Ext4NotFoundError", { skip: E2 }, async (t) => {
  const img = await makeImage(await tmpDir(t));
  await writeExt4Files(systemRunner, img, [{ path: "/empty", data: "", mode: 0o644 }]);
  assert.equal((await readExt4File(systemRunner, img, "/empty")).length, 0);
  await assert.rejects(readExt4File(systemRunner, img, "/nope"), Ext4NotFoundError);
});

void test("debugfs failures are reported, not swallowed (parent is a regular file)", { skip: E2 }, async (t) => {
  const img = await makeImage(await tmpDir(t));
  await writeExt4Files(systemRunner, img, [{ path: "/etc", data: "not a dir\n", mode: 0o644 }]);
  await assert.rejects(writeExt4Files(systemRunner, img, [{ path: "/etc/hostname", data: "x\n", mode: 0o644 }]), /debugfs failed to write/);
  await assert.rejects(writeExt4Files(systemRunner, `${img}.missing`, [{ path: "/x", data: "x", mode: 0o644 }]), /debugfs/);
});

void test("guest paths that could escape debugfs quoting or the tree are refused before debugfs runs", async () => {
  const bad = ['/etc/x" /etc/shadow', "/etc/x\nrm /etc/passwd", "/etc/x\\y", "relative/path", "/etc/../shadow", "/etc//x", "/etc/x/", "", "/a\x00b", "/a\tb", "/" + "a".repeat(1100)];
  for (const p of bad) assert.throws(() => checkGuestPath(p), Error, p);
  for (const p of ["/", "/etc/hostname", "/root/.ssh/authorized_keys", "/dir with space/f-1_2.txt"]) assert.equal(checkGuestPath(p), p);
  // And writeExt4Files validates every entry before creating anything (no debugfs call happens).
  const calls: string[][] = [];
  const runner = { run: (argv: readonly string[]) => { calls.push([...argv]); return Promise.resolve({ stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) }); } };
  await assert.rejects(writeExt4Files(runner, "/tmp/x.ext4", [{ path: "/ok", data: "", mode: 0o644 }, { path: '/bad"', data: "", mode: 0o644 }]));
  await assert.rejects(writeExt4Files(runner, "/tmp/x.ext4", [{ path: "/ok", data: "", mode: 0o17777 }]), /mode/);
  await assert.rejects(writeExt4Files(runner, "/tmp/x.ext4", [{ path: "/ok", data: "", mode: 0o644, uid: -1 }]), /uid/);
  assert.equal(calls.length, 0);
});

void test("the debugfs script quotes every path and sets type bits in the mode", async () => {
  const calls: { argv: string[]; stdin: string; contents: string[] }[] = [];
  const runner = {
    run: (argv: readonly string[], o?: { stdin?: string | Buffer; extraFds?: readonly number[] }) => {
      // The file contents come as in-memory files the child inherits; read them while they are open.
      calls.push({ argv: [...argv], stdin: String(o?.stdin ?? ""), contents: (o?.extraFds ?? []).map((fd) => readFileSync(`/proc/self/fd/${fd}`, "utf8")) });
      return Promise.resolve({ stdout: Buffer.alloc(0), stderr: Buffer.from("debugfs 1.47.0 (5-Feb-2023)\n") });
    },
  };
  await writeExt4Files(runner, "/img", [{ path: "/x y/z", data: "d", mode: 0o640, uid: 3, gid: 4 }, { path: "/k", data: Buffer.from("secret\n"), mode: 0o600 }], [{ path: "/x y", mode: 0o700 }]);
  assert.equal(calls.length, 1);
  const c = calls[0];
  assert.ok(c !== undefined);
  assert.deepEqual(c.argv, ["debugfs", "-w", "-f", "-", "/img"]);
  const lines = c.stdin.trim().split("\n");
  assert.deepEqual(lines.slice(0, 4), ['mkdir "/x y"', 'sif "/x y" mode 040700', 'sif "/x y" uid 0', 'sif "/x y" gid 0']);
  assert.equal(lines[4], 'rm "/x y/z"');
  assert.equal(lines[5], 'write /proc/self/fd/3 "/x y/z"');
  assert.deepEqual(lines.slice(6, 9), ['sif "/x y/z" mode 0100640', 'sif "/x y/z" uid 3', 'sif "/x y/z" gid 4']);
  assert.equal(lines[10], 'write /proc/self/fd/4 "/k"');
  assert.deepEqual(c.contents, ["d", "secret\n"]);
});

void test("updateFstab follows the seed rules and is idempotent", () => {
  const debian = "# /etc/fstab\nUUID=abc / ext4 errors=remount-ro 0 1\n\n/dev/vdb /home ext4 defaults 0 2\n/dev/vdc /var ext4 defaults 0 2\n";
  const out = updateFstab(debian);
  assert.equal(
    out,
    "# /etc/fstab\nUUID=abc / ext4 errors=remount-ro 0 1\n/dev/vdb /root ext4 defaults 0 2\ntmpfs /run tmpfs defaults,nodev,nosuid,mode=0755 0 0\ntmpfs /tmp tmpfs defaults,nodev,nosuid,mode=1777 0 0\n",
  );
  assert.equal(updateFstab(out), out);
  assert.equal(updateFstab(""), "/dev/vdb /root ext4 defaults 0 2\ntmpfs /run tmpfs defaults,nodev,nosuid,mode=0755 0 0\ntmpfs /tmp tmpfs defaults,nodev,nosuid,mode=1777 0 0\n");
  // Existing entries for the same mounts are kept as the image wrote them, not duplicated.
  const custom = "tmpfs /tmp tmpfs size=1G 0 0\n/dev/vdb   /root  ext4 noatime 0 2\n";
  assert.equal(updateFstab(custom), custom + "tmpfs /run tmpfs defaults,nodev,nosuid,mode=0755 0 0\n");
});

void test("work disk: sparse ext4 of the requested size, root-owned, with /.ssh/authorized_keys 0700/0600", { skip: E2 }, async (t) => {
  const dir = await tmpDir(t);
  const path = `${dir}/work.ext4`;
  const t0 = performance.now();
  await createWorkDisk(systemRunner, path, 8, "ssh-ed25519 AAAAC3 banger");
  const ms = performance.now() - t0;
  t.diagnostic(`8 GiB work disk created in ${ms.toFixed(0)} ms`);
  const st = await stat(path);
  assert.equal(st.size, 8 * 1024 ** 3);
  assert.ok(st.blocks * 512 < 300 * 1024 ** 2, `work disk must be sparse, allocated ${st.blocks * 512} bytes`);
  assert.equal((await readExt4File(systemRunner, path, "/.ssh/authorized_keys")).toString(), "ssh-ed25519 AAAAC3 banger\n");
  const key = await statExt4(systemRunner, path, "/.ssh/authorized_keys");
  assert.deepEqual([key.mode, key.uid, key.gid], [0o600, 0, 0]);
  const ssh = await statExt4(systemRunner, path, "/.ssh");
  assert.deepEqual([ssh.mode, ssh.uid, ssh.gid], [0o700, 0, 0]);
  const rootDir = await statExt4(systemRunner, path, "/");
  assert.deepEqual([rootDir.uid, rootDir.gid], [0, 0]);
  // Never overwrites an existing disk (it is the VM's persistent /root).
  await assert.rejects(createWorkDisk(systemRunner, path, 1, "k"), /EEXIST|exists/);
  assert.equal((await stat(path)).size, 8 * 1024 ** 3);
});

void test("resize grows the filesystem; shrinking is refused", { skip: E2 }, async (t) => {
  const img = await makeImage(await tmpDir(t), 64);
  await writeExt4Files(systemRunner, img, [{ path: "/keep", data: "still here\n", mode: 0o644 }]);
  await resizeExt4Image(systemRunner, img, 256 * 1024 ** 2);
  assert.equal((await stat(img)).size, 256 * 1024 ** 2);
  const dump = (await systemRunner.run(["dumpe2fs", "-h", img])).stdout.toString();
  const blocks = Number(/Block count:\s+(\d+)/.exec(dump)?.[1]);
  const bsize = Number(/Block size:\s+(\d+)/.exec(dump)?.[1]);
  assert.equal(blocks * bsize, 256 * 1024 ** 2);
  assert.equal((await readExt4File(systemRunner, img, "/keep")).toString(), "still here\n");
  await assert.rejects(resizeExt4Image(systemRunner, img, 64 * 1024 ** 2), /shrinking is not supported/);
});

void test("parseSize", () => {
  assert.equal(parseSize("8G"), 8 * 1024 ** 3);
  assert.equal(parseSize("512M"), 512 * 1024 ** 2);
  assert.equal(parseSize("2GiB"), 2 * 1024 ** 3);
  assert.equal(parseSize("4096"), 4096);
  for (const bad of ["", "-1G", "1.5G", "G", "8X", "0"]) assert.throws(() => parseSize(bad), Error, bad);
});
