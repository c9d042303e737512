import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, open, readFile, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { cloneOrCopy, sparseCopy } from "../../../src/system/sparse-copy.js";

const MIB = 1024 * 1024;

async function scratch(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "bgt-sparse-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A 256 MiB file with three data islands (start, middle, unaligned tail) and holes between them. */
async function islands(path: string): Promise<Buffer[]> {
  const parts = [randomBytes(3 * MIB + 123), randomBytes(70_000), randomBytes(4096)];
  await writeFile(path, "");
  await truncate(path, 256 * MIB);
  const fh = await open(path, "r+");
  try {
    await fh.write(parts[0] as Buffer, 0, (parts[0] as Buffer).length, 0);
    await fh.write(parts[1] as Buffer, 0, (parts[1] as Buffer).length, 100 * MIB + 17);
    await fh.write(parts[2] as Buffer, 0, (parts[2] as Buffer).length, 256 * MIB - 4096);
  } finally {
    await fh.close();
  }
  return parts;
}

void test("sparseCopy: same bytes, same size, holes stay holes", async (t) => {
  const dir = await scratch(t);
  const src = join(dir, "src.img");
  await islands(src);
  const dst = join(dir, "dst.img");
  await sparseCopy(src, dst);
  const [a, b] = [await readFile(src), await readFile(dst)];
  assert.equal(b.length, a.length);
  assert.ok(a.equals(b), "contents differ");
  const st = await stat(dst);
  assert.ok(st.blocks * 512 < 16 * MIB, `copy must stay sparse (allocated ${st.blocks * 512} bytes of 256 MiB)`);
  assert.equal(st.mode & 0o777, 0o600);
});

void test("sparseCopy: an empty file and an all-hole file copy to the same size", async (t) => {
  const dir = await scratch(t);
  for (const size of [0, 8 * MIB]) {
    const src = join(dir, `src-${size}`);
    await writeFile(src, "");
    await truncate(src, size);
    await sparseCopy(src, join(dir, `dst-${size}`));
    assert.equal((await stat(join(dir, `dst-${size}`))).size, size);
  }
});

void test("sparseCopy: never overwrites or follows what is at the destination", async (t) => {
  const dir = await scratch(t);
  const src = join(dir, "src.img");
  await writeFile(src, "new");
  const existing = join(dir, "existing.img");
  await writeFile(existing, "keep me");
  await assert.rejects(sparseCopy(src, existing), /EEXIST/);
  assert.equal(await readFile(existing, "utf8"), "keep me");
  const target = join(dir, "target");
  await writeFile(target, "victim");
  await symlink(target, join(dir, "link.img"));
  await assert.rejects(sparseCopy(src, join(dir, "link.img")), /EEXIST/);
  assert.equal(await readFile(target, "utf8"), "victim");
});

void test("sparseCopy: a missing source fails and leaves no destination", async (t) => {
  const dir = await scratch(t);
  await assert.rejects(sparseCopy(join(dir, "nope"), join(dir, "dst")), /ENOENT/);
  await assert.rejects(stat(join(dir, "dst")), /ENOENT/);
});

void test("cloneOrCopy: falls back to a sparse copy where FICLONE is not supported", async (t) => {
  const dir = await scratch(t);
  const src = join(dir, "src.img");
  await islands(src);
  const dst = join(dir, "dst.img");
  await cloneOrCopy(src, dst);
  assert.ok((await readFile(src)).equals(await readFile(dst)));
  assert.ok((await stat(dst)).blocks * 512 < 16 * MIB);
  await assert.rejects(cloneOrCopy(src, dst), /EEXIST/);
});
