import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { decompressLz4Legacy, extractVmlinux, findPayload, KernelFormatError, LZ4_LEGACY_MAGIC } from "../../../src/image/bzimage.js";
import { assertBootableVmlinux, bufferSource, ElfError, EM_X86_64, ET_EXEC, isStatic, parseElf, pvhEntry, readElfFile } from "../../../src/image/elf.js";
import { findKernel, type KernelSource } from "../../../src/image/host-kernel.js";
import { systemRunner } from "../../../src/system/runner.js";
import { needsCommands } from "../../helpers/requirements.js";

let host: KernelSource | undefined;
try {
  host = await findKernel("/");
} catch {
  host = undefined;
}
const noKernel = host === undefined ? "needs a host kernel with modules (linux-image-cloud-amd64)" : false;

let cachedVmlinux: Buffer | undefined;
async function hostVmlinux(): Promise<Buffer> {
  cachedVmlinux ??= extractVmlinux(await readFile(host?.kernel ?? ""));
  return cachedVmlinux;
}

void test("the host's LZ4 bzImage yields an x86-64 ET_EXEC vmlinux with the Xen PVH entry note", { skip: noKernel }, async (t) => {
  const bz = await readFile(host?.kernel ?? "");
  const started = performance.now();
  const vmlinux = extractVmlinux(bz);
  t.diagnostic(`extracted ${vmlinux.length} bytes in ${Math.round(performance.now() - started)} ms`);
  assert.equal(vmlinux.length, findPayload(bz).uncompressedSize);
  const info = await parseElf(bufferSource(vmlinux));
  assert.equal(info.type, ET_EXEC);
  assert.equal(info.machine, EM_X86_64);
  const entry = pvhEntry(info);
  assert.ok(entry !== undefined && entry > 0x100000, `PVH entry ${String(entry)}`);
  assert.doesNotThrow(() => { assertBootableVmlinux(info, "host vmlinux"); });
});

void test("the TS legacy-LZ4 decoder matches the lz4 CLI byte for byte", { skip: noKernel || needsCommands("lz4") }, async () => {
  const payload = findPayload(await readFile(host?.kernel ?? ""));
  const { stdout } = await systemRunner.run(["lz4", "-d", "-c"], { stdin: payload.compressed });
  assert.ok(stdout.equals(await hostVmlinux()));
});

void test("decoder round-trips data compressed by `lz4 -l`, including overlapping matches", { skip: needsCommands("lz4") }, async () => {
  const data = Buffer.concat([Buffer.alloc(100_000, 0x61), Buffer.from("banger ".repeat(5000)), Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 251))]);
  const { stdout } = await systemRunner.run(["lz4", "-l", "-c"], { stdin: data });
  assert.ok(decompressLz4Legacy(stdout, data.length).equals(data));
});

void test("garbage kernels are refused with clear errors, never a crash", () => {
  assert.throws(() => extractVmlinux(Buffer.from("definitely not a kernel")), (e: unknown) => e instanceof KernelFormatError && /bzImage/.test(e.message));
  assert.throws(() => extractVmlinux(Buffer.alloc(0)), KernelFormatError);
  // A valid-looking boot header whose payload is not LZ4 (e.g. a gzip kernel).
  const fake = Buffer.alloc(0x2000);
  fake.write("HdrS", 0x202, "latin1");
  fake.writeUInt16LE(0x20f, 0x206);
  fake[0x1f1] = 1;
  fake.writeUInt32LE(0x10, 0x248);
  fake.writeUInt32LE(0x100, 0x24c);
  fake.set([0x1f, 0x8b, 0x08, 0x00], 1024 + 0x10);
  assert.throws(() => findPayload(fake), /not LZ4 .*1f8b0800/);
  // Payload that claims to lie beyond the file.
  fake.writeUInt32LE(0x100000, 0x24c);
  assert.throws(() => findPayload(fake), /outside/);
  // Corrupt LZ4 streams: truncated block, wrong declared size, bad offsets.
  const frame = Buffer.alloc(16);
  frame.writeUInt32LE(LZ4_LEGACY_MAGIC, 0);
  frame.writeUInt32LE(1000, 4);
  assert.throws(() => decompressLz4Legacy(frame, 100), /runs past/);
  const badOffset = Buffer.from([0x02, 0x21, 0x4c, 0x18, 4, 0, 0, 0, 0x10, 0x41, 0x50, 0x00]);
  assert.throws(() => decompressLz4Legacy(badOffset, 100), /offset out of range/);
  assert.throws(() => decompressLz4Legacy(Buffer.from([0x02, 0x21, 0x4c, 0x18]), 0), /implausible/);
});

void test("a truncated or mangled real kernel fails cleanly", { skip: noKernel }, async () => {
  const bz = await readFile(host?.kernel ?? "");
  const { compressed } = findPayload(bz);
  const start = bz.indexOf(compressed.subarray(0, 64));
  // Cut in the middle of the payload: the boot header now points past the end.
  assert.throws(() => extractVmlinux(bz.subarray(0, start + Math.floor(compressed.length / 2))), /outside/);
  // A first block claiming more bytes than the payload holds.
  const mangled = Buffer.from(bz);
  mangled.writeUInt32LE(0x7fffffff, start + 4);
  assert.throws(() => extractVmlinux(mangled), /runs past the payload/);
  // (Legacy LZ4 has no checksum: flipping literal bytes is undetectable here;
  // the ELF/PVH validation after extraction is the second line of defence.)
});

void test("ELF reader rejects garbage, ELF32, and non-x86 or non-PVH ELFs", async () => {
  await assert.rejects(parseElf(bufferSource(Buffer.from("hello"))), ElfError);
  await assert.rejects(parseElf(bufferSource(Buffer.alloc(64, 0x41))), /bad magic/);
  const elf32 = Buffer.alloc(64);
  elf32.writeUInt32BE(0x7f454c46, 0);
  elf32[4] = 1;
  elf32[5] = 1;
  await assert.rejects(parseElf(bufferSource(elf32)), /ELF64/);
  // Header claiming program headers past the end of the data.
  const lying = Buffer.alloc(64);
  lying.writeUInt32BE(0x7f454c46, 0);
  lying[4] = 2;
  lying[5] = 1;
  lying.writeUInt16LE(ET_EXEC, 16);
  lying.writeUInt16LE(EM_X86_64, 18);
  lying.writeBigUInt64LE(4096n, 32);
  lying.writeUInt16LE(56, 54);
  lying.writeUInt16LE(3, 56);
  await assert.rejects(parseElf(bufferSource(lying)), /past end/);
  // A static x86-64 executable without the PVH note (busybox) is not a bootable vmlinux.
  if (existsSync("/bin/busybox")) {
    const bb = await readElfFile("/bin/busybox");
    assert.throws(() => { assertBootableVmlinux(bb, "busybox"); }, /(PVH|ET_EXEC)/);
  }
});

void test("wrong machine or type in an otherwise real vmlinux is refused", { skip: noKernel }, async () => {
  const full = await hostVmlinux();
  const patched = async (offset: number, value: number): Promise<Awaited<ReturnType<typeof parseElf>>> => {
    const b = Buffer.from(full);
    b.writeUInt16LE(value, offset);
    return parseElf(bufferSource(b));
  };
  const arm = await patched(18, 183);
  assert.throws(() => { assertBootableVmlinux(arm, "x"); }, /not x86-64/);
  const dyn = await patched(16, 3);
  assert.throws(() => { assertBootableVmlinux(dyn, "x"); }, /not ET_EXEC/);
});

void test("isStatic tells static busybox from dynamic dropbear", { skip: needsCommands("busybox", "dropbear") }, async () => {
  assert.equal(isStatic(await readElfFile("/bin/busybox")), true);
  assert.equal(isStatic(await readElfFile("/usr/sbin/dropbear")), false);
});

void test("readElfFile refuses a file that is not ELF", async () => {
  const dir = await mkdtemp("/tmp/bgt-img-elf-");
  try {
    await writeFile(join(dir, "x"), "#!/bin/sh\necho hi\n");
    await assert.rejects(readElfFile(join(dir, "x")), ElfError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
