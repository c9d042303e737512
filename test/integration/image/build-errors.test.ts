import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { buildImage, type BuildContext, ImageInputError, importImage, parseFrom } from "../../../src/image/build.js";
import { findKernel } from "../../../src/image/host-kernel.js";
import { buildTinyTree } from "../../../src/image/tiny-rootfs.js";
import { state } from "../../../src/paths/paths.js";
import { systemRunner } from "../../../src/system/runner.js";
import { needsRoot, requires } from "../../helpers/requirements.js";
import { tinyImage, tinyImageSkip } from "../../helpers/tiny-image.js";

/*
 * Bad input must fail with a message that says what to do, and must leave no
 * partial image: nothing under images/NAME and nothing in the build dir.
 */

let hostKernel = false;
try {
  await findKernel("/");
  hostKernel = true;
} catch {
  hostKernel = false;
}
const needKernel = hostKernel ? false : "needs linux-image-cloud-amd64 on the host";

async function stateDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp("/tmp/bgt-img-state-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function ctx(dir: string, extra: Partial<BuildContext> = {}): BuildContext {
  return { stateDir: dir, runner: systemRunner, uid: process.getuid?.() ?? 0, ...extra };
}

async function assertNoPartialImage(dir: string, name: string): Promise<void> {
  await assert.rejects(stat(state.imageDir(dir, name)), { code: "ENOENT" }, `images/${name} must not exist`);
  const leftovers = await readdir(state.imageBuildDir(dir)).catch(() => []);
  assert.deepEqual(leftovers, [], "build dir must be empty");
}

void test("unknown --from and bad names are refused before anything is created", async (t) => {
  const dir = await stateDir(t);
  await assert.rejects(parseFrom("ubuntu:noble"), (e: unknown) => e instanceof ImageInputError && /unknown --from .*debian:bookworm, busybox/.test(e.message));
  await assert.rejects(parseFrom("debian:sid"), /only debian:bookworm/);
  await assert.rejects(parseFrom("/nonexistent/bgt-img"), /neither a directory nor/);
  for (const name of ["../evil", "UPPER", "a b", "x\ny", "", "-lead"]) {
    await assert.rejects(buildImage({ name, source: { kind: "busybox" } }, ctx(dir)), /invalid image name/, JSON.stringify(name));
  }
  await assert.rejects(stat(state.imagesDir(dir)), { code: "ENOENT" });
});

void test("missing or garbage --kernel fails clearly and leaves nothing", { skip: requires(tinyImageSkip(), needKernel) }, async (t) => {
  const dir = await stateDir(t);
  await assert.rejects(buildImage({ name: "k1", source: { kind: "busybox" }, kernel: "/nonexistent/vmlinuz" }, ctx(dir)), /--kernel \/nonexistent\/vmlinuz does not exist/);
  const garbage = join(dir, "garbage-kernel");
  await writeFile(garbage, Buffer.alloc(100_000, 0x5a));
  await assert.rejects(buildImage({ name: "k2", source: { kind: "busybox" }, kernel: garbage }, ctx(dir)), /--kernel .*garbage-kernel is not usable: not an x86 bzImage/);
  await assertNoPartialImage(dir, "k2");
  // A bzImage header whose version has no modules here and no --initrd: says to pass --initrd.
  const host = await findKernel("/");
  const bz = Buffer.from(await readFile(host.kernel));
  const ptr = bz.readUInt16LE(0x20e) + 0x200;
  bz.write("9.9.9-bgt", ptr, "latin1");
  const fake = join(dir, "vmlinuz-fake");
  await writeFile(fake, bz);
  await assert.rejects(buildImage({ name: "k3", source: { kind: "busybox" }, kernel: fake }, ctx(dir)), /no modules for kernel 9\.9\.9-bgt.*pass --initrd/);
  await assertNoPartialImage(dir, "k3");
});

void test("import refuses a rootfs that is not ext4 and a garbage kernel", { skip: requires(tinyImageSkip(), needKernel) }, async (t) => {
  const dir = await stateDir(t);
  const img = await tinyImage();
  const notExt4 = join(dir, "rootfs.img");
  await writeFile(notExt4, Buffer.alloc(2 * 1024 * 1024, 0));
  await assert.rejects(importImage({ name: "i1", kernel: img.kernel, rootfs: notExt4, flavor: "busybox" }, ctx(dir)), /rootfs .* is not an ext4 filesystem image/);
  await assert.rejects(importImage({ name: "i2", kernel: notExt4, rootfs: img.rootfs, flavor: "busybox" }, ctx(dir)), /not an x86 bzImage/);
  await assertNoPartialImage(dir, "i1");
  await assertNoPartialImage(dir, "i2");
  // And the good case records what it imported.
  const ok = await importImage({ name: "i3", kernel: img.kernel, rootfs: img.rootfs, flavor: "busybox" }, ctx(dir));
  assert.equal(ok.kernelVersion, img.kernelVersion);
  assert.ok((await stat(ok.vmlinuxPath)).size > 10_000_000);
});

void test("an aborted build (Ctrl-C) removes its temp dir and leaves no image", { skip: requires(tinyImageSkip(), needKernel) }, async (t) => {
  const dir = await stateDir(t);
  const ac = new AbortController();
  const seen: string[] = [];
  const p = buildImage({ name: "tiny", source: { kind: "busybox" } }, ctx(dir, {
    signal: ac.signal,
    onProgress: (e) => {
      seen.push(`${e.step}:${e.state}`);
      if (e.step === "rootfs tree" && e.state === "start") ac.abort();
    },
  }));
  await assert.rejects(p, (e: unknown) => e instanceof Error && e.name === "AbortError");
  assert.ok(seen.includes("initrd:done"), seen.join(","));
  await assertNoPartialImage(dir, "tiny");
});

void test("--from DIR builds a busybox-flavor image; an existing name needs --force", { skip: requires(tinyImageSkip(), needKernel) }, async (t) => {
  const dir = await stateDir(t);
  const tree = join(dir, "tree");
  await mkdir(tree);
  await buildTinyTree(systemRunner, tree);
  const built = await buildImage({ name: "fromdir", source: await parseFrom(tree) }, ctx(dir));
  assert.equal(built.flavor, "busybox");
  assert.equal(built.source, `dir:${tree}`);
  await assert.rejects(buildImage({ name: "fromdir", source: await parseFrom(tree) }, ctx(dir)), /already exists.*--force/);
  const again = await buildImage({ name: "fromdir", source: await parseFrom(tree), force: true }, ctx(dir));
  assert.equal(again.rootfsPath, built.rootfsPath);
  assert.deepEqual(await readdir(state.imageBuildDir(dir)), []);
});

void test("a full disk fails the build with ENOSPC and leaves no partial image", {
  skip: requires(needsRoot(), tinyImageSkip(), needKernel),
}, async (t) => {
  const dir = await mkdtemp("/tmp/bgt-img-full-");
  // 40 MiB: room for the bzImage (14 MiB) but not for the 50 MiB vmlinux.
  await systemRunner.run(["mount", "-t", "tmpfs", "-o", "size=40m,mode=0700", "bgt-img-full", dir]);
  t.after(async () => {
    await systemRunner.run(["umount", dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  await assert.rejects(buildImage({ name: "tiny", source: { kind: "busybox" } }, ctx(dir)), /ENOSPC|No space left/);
  await assertNoPartialImage(dir, "tiny");
});
