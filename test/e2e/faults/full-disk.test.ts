import assert from "node:assert/strict";
import { chmodSync, chownSync, closeSync, fsyncSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { systemRunner } from "../../../src/system/runner.js";
import { needsCommands, requires } from "../../helpers/requirements.js";
import type { Stack } from "../../helpers/stack.js";
import { createExt4Loop } from "../../helpers/xfs-loop.js";
import { FAULT_SKIP, ok, startFaultWorld, type VmJson } from "./fault-stack.js";

/*
 * The state dir on a small filesystem that fills up: an image build, a VM
 * create (root clone, work disk) and a guest writing to /root each meet a
 * full disk. Each must fail with an error that says the disk is full, leave
 * no half-made image or VM, and the daemon must keep serving; once space is
 * freed everything works again.
 */

const FULL = /no space left on device|ENOSPC|disk is full/i;

async function cli(stack: Stack, args: string[]): Promise<{ code: number; stdout: string; out: string }> {
  const r = await stack.cli(args, { timeoutMs: 600_000 });
  return { code: r.code, stdout: r.stdout, out: `${r.stderr}\n${r.stdout}` };
}

void test("a full disk under the state dir during image build, VM create and guest writes: clear errors, nothing half-made, the daemon keeps serving", { skip: requires(FAULT_SKIP, needsCommands("fallocate", "losetup", "mount")), timeout: 900_000 }, async (t) => {
  let fsMnt = "";
  let stateDir = "";
  const { stack, cleanup } = await startFaultWorld(t, "full", 98, async (user, undo) => {
    const fs = await createExt4Loop("bgt-full", 384);
    undo.push("filesystem", () => fs.destroy());
    // The daemon runs as the owner: it must be able to reach its state dir on the mount.
    chmodSync(fs.dir, 0o755);
    chmodSync(fs.mnt, 0o755);
    fsMnt = fs.mnt;
    stateDir = join(fs.mnt, "state");
    mkdirSync(stateDir, { mode: 0o700 });
    chownSync(stateDir, user.uid, user.gid);
    return { stateDir };
  });
  // A failure here is most often the daemon's: keep the end of its log with the failure.
  let passed = false;
  cleanup.push("daemon log on failure", () => {
    if (!passed) process.stderr.write(`bangerd log (end):\n${stack.daemonLog().split("\n").slice(-40).join("\n")}\n`);
    return Promise.resolve();
  });
  await ok(stack, ["vm", "create", "--image", "tiny", "--name", "full-a"]);

  // Fill the filesystem, leaving a little room for the database's own writes.
  const filler = join(fsMnt, "filler");
  const freeBytes = async (): Promise<number> => {
    const s = await statfs(fsMnt);
    return s.bavail * s.bsize;
  };
  const fill = async (leaveMib: number): Promise<void> => {
    rmSync(filler, { force: true });
    rmSync(`${filler}.top`, { force: true });
    // fallocate the bulk (its own extent metadata needs a little room), then top up by writing.
    await systemRunner.run(["fallocate", "-l", String(Math.max(0, (await freeBytes()) - (leaveMib + 4) * 1024 * 1024)), filler]);
    const fd = openSync(`${filler}.top`, "w");
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    try {
      while ((await freeBytes()) > leaveMib * 1024 * 1024) writeSync(fd, chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
    } finally {
      fsyncSync(fd);
      closeSync(fd);
    }
  };
  await fill(2);
  const vmDirs = (): string[] => readdirSync(join(stateDir, "vms"));
  const imagesBefore = readdirSync(join(stateDir, "images")).sort();
  const dirsBefore = vmDirs();

  // An image build: refused for want of space, with no image and no build leftovers.
  const build = await cli(stack, ["image", "build", "--name", "tiny2", "--from", "busybox"]);
  assert.notEqual(build.code, 0, build.out);
  assert.match(build.out, FULL, build.out);
  assert.deepEqual(readdirSync(join(stateDir, "images")).sort(), imagesBefore, "no half-built image is left");
  assert.doesNotMatch(await ok(stack, ["image", "list"]), /tiny2/);

  // VM creates: the first may still succeed on the disk copies made ahead (hard links, no new
  // space), the next must copy and fails in its disk steps; nothing of a failed one is left.
  const made: string[] = [];
  let create = { code: 0, stdout: "", out: "" };
  for (const name of ["full-b", "full-c"]) {
    create = await cli(stack, ["vm", "create", "--image", "tiny", "--name", name]);
    if (create.code !== 0) break;
    made.push(name);
  }
  assert.notEqual(create.code, 0, `a create on a full disk must fail: ${create.out}`);
  assert.match(create.out, FULL, create.out);
  const listed = (JSON.parse(await ok(stack, ["vm", "list", "--json"])) as VmJson[]).map((v) => v.name).sort();
  assert.deepEqual(listed, ["full-a", ...made].sort(), "the failed create left no VM");
  assert.equal(vmDirs().length, dirsBefore.length + made.length, "no VM dir of the failed create is left");
  for (const name of made) await ok(stack, ["vm", "rm", "--force", name]);

  // A guest writing to /root: the write fails inside the guest (an I/O error), the guest keeps running.
  await fill(0);
  const write = await cli(stack, ["vm", "exec", "full-a", "--", "sh", "-c", "dd if=/dev/urandom of=/root/big bs=1M count=64 conv=fsync"]);
  assert.notEqual(write.code, 0, `the guest's write into a full host disk must fail: ${write.out}`);
  assert.equal((await ok(stack, ["vm", "exec", "full-a", "--", "echo", "alive"])).trim(), "alive", "the guest still answers");
  assert.equal((JSON.parse(await ok(stack, ["vm", "show", "full-a", "--json"])) as VmJson).state, "running");

  // Space again: everything works.
  rmSync(filler, { force: true });
  rmSync(`${filler}.top`, { force: true });
  await ok(stack, ["vm", "exec", "full-a", "--", "rm", "-f", "/root/big"]);
  await ok(stack, ["vm", "create", "--image", "tiny", "--name", "full-d"]);
  await ok(stack, ["vm", "rm", "--force", "full-a", "full-d"]);
  passed = true;
});
