import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { bufferSource, EM_X86_64, ET_EXEC, isStatic, parseElf, PT_LOAD } from "../../../src/image/elf.js";
import { RESEED_BASE, reseedElf, RNDRESEEDCRNG, SYS_EXIT, SYS_IOCTL, SYS_OPEN } from "../../../src/image/reseed-elf.js";

/** The syscalls the code makes, in order: each `syscall` (0f 05) with the last `mov eax, imm32` (b8) before it. */
function syscalls(code: Buffer): number[] {
  const out: number[] = [];
  let eax: number | undefined;
  for (let i = 0; i < code.length - 1; i++) {
    if (code[i] === 0xb8 && i + 5 <= code.length) eax = code.readUInt32LE(i + 1);
    if (code[i] === 0x0f && code[i + 1] === 0x05) {
      assert.notEqual(eax, undefined, `syscall at ${i} with no syscall number set`);
      out.push(eax ?? -1);
    }
  }
  return out;
}

void test("reseed ELF: a static x86-64 executable, one R+X load mapping the file, entry at its code", async () => {
  const elf = reseedElf();
  const info = await parseElf(bufferSource(elf));
  assert.equal(info.type, ET_EXEC);
  assert.equal(info.machine, EM_X86_64);
  assert.ok(isStatic(info), "no interpreter");
  assert.equal(info.programHeaders.length, 1);
  const load = info.programHeaders[0];
  assert.equal(load?.type, PT_LOAD);
  assert.equal(load.flags, 5, "R+X, not writable");
  assert.equal(load.offset, 0n);
  assert.equal(load.vaddr, BigInt(RESEED_BASE));
  assert.equal(load.filesz, BigInt(elf.length));
  assert.equal(info.entry, BigInt(RESEED_BASE + 64 + 56), "entry right after the headers");
});

void test("reseed ELF: open, ioctl(RNDRESEEDCRNG) and exit, and nothing else; the path is /dev/urandom", () => {
  const code = reseedElf().subarray(64 + 56);
  assert.deepEqual(syscalls(code), [SYS_OPEN, SYS_IOCTL, SYS_EXIT, SYS_EXIT]);
  // mov esi, 0x5207 is the ioctl's request.
  const movEsi = code.indexOf(Buffer.from([0xbe]));
  assert.equal(code.readUInt32LE(movEsi + 1), RNDRESEEDCRNG);
  // lea rdi, [rip+rel32] points at the NUL-terminated path.
  const lea = code.indexOf(Buffer.from([0x48, 0x8d, 0x3d]));
  const target = lea + 7 + code.readInt32LE(lea + 3);
  assert.equal(code.subarray(target, code.indexOf(0, target)).toString("latin1"), "/dev/urandom");
  assert.equal(code.indexOf(0, target), code.length - 1, "the path ends the file");
});

void test("reseed ELF runs: exit 0 with CAP_SYS_ADMIN (root), 1 without", () => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-reseed-"));
  try {
    const bin = join(dir, "reseed");
    writeFileSync(bin, reseedElf());
    chmodSync(bin, 0o755);
    const r = spawnSync(bin, [], { timeout: 5000 });
    assert.equal(r.error, undefined);
    assert.equal(r.status, process.getuid?.() === 0 ? 0 : 1, `exit status ${String(r.status)} signal ${String(r.signal)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
