import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { SpareCopies, type Copier } from "../../../src/daemon/storage/spare-copies.js";

function counting(): Copier & { calls: string[] } {
  const calls: string[] = [];
  return Object.assign(async (src: string, dst: string) => {
    calls.push(dst);
    await copyFile(src, dst, 1 /* COPYFILE_EXCL */);
  }, { calls });
}

void test("spares: the first take copies and makes a spare; the next takes the spare by link and makes another", async (t) => {
  const dir = await mkdtemp("/tmp/bgt-spares-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const src = join(dir, "image.ext4");
  await writeFile(src, "v1");
  const spares = new SpareCopies(join(dir, "spares"));
  const copy = counting();
  await spares.take(src, join(dir, "a"), copy);
  await spares.idle();
  assert.deepEqual(copy.calls.map((c) => c.startsWith(join(dir, "spares"))), [false, true], "copied for the VM, then a spare");
  await spares.take(src, join(dir, "b"), copy);
  assert.equal(copy.calls.length, 2, "the second VM got the spare without a copy");
  assert.equal(await readFile(join(dir, "b"), "utf8"), "v1");
  await spares.idle();
  assert.equal(copy.calls.length, 3, "and a new spare was made");
  assert.equal((await readdir(join(dir, "spares"))).length, 1);

  // A VM's disk is its own file: writing it changes neither the source nor the spare.
  await writeFile(join(dir, "b"), "changed");
  await spares.take(src, join(dir, "c"), copy);
  assert.equal(await readFile(join(dir, "c"), "utf8"), "v1");
  await spares.idle();
});

void test("spares: a changed source is copied anew; a taken spare never overwrites an existing file; a restart drops old spares", async (t) => {
  const dir = await mkdtemp("/tmp/bgt-spares-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const src = join(dir, "image.ext4");
  await writeFile(src, "v1");
  const spares = new SpareCopies(join(dir, "spares"));
  const copy = counting();
  await spares.take(src, join(dir, "a"), copy);
  await spares.idle();
  await writeFile(src, "v2");
  await spares.take(src, join(dir, "b"), copy);
  assert.equal(await readFile(join(dir, "b"), "utf8"), "v2", "the stale spare was not used");
  await spares.idle();

  await writeFile(join(dir, "c"), "a VM's disk");
  await assert.rejects(spares.take(src, join(dir, "c"), copy), /EEXIST/);
  assert.equal(await readFile(join(dir, "c"), "utf8"), "a VM's disk");
  await spares.idle();

  await mkdir(join(dir, "spares"), { recursive: true });
  await writeFile(join(dir, "spares", "half-made"), "v");
  new SpareCopies(join(dir, "spares"));
  await assert.rejects(readdir(join(dir, "spares")), /ENOENT/);
});
