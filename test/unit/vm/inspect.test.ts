import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseDf, parseMeminfo } from "../../../src/daemon/vm/guest-stats.js";
import { readLogChunk, startOfLastLines, vmStats } from "../../../src/daemon/vm/inspect.js";
import type { VmRecord } from "../../../src/state/vms.js";

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), "bgt-vm-inspect-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  return dir;
}

const base: VmRecord = { id: "a".repeat(32), name: "s", image: "tiny", vcpus: 2, memoryMib: 256, diskGib: 1, state: "running", vmm: "qemu", handles: {}, lastError: null, createdAt: "", updatedAt: "", startedAt: null };

void test("readLogChunk reads from an offset, tails, caps, and restarts at 0 when the log shrank", async (t) => {
  const dir = tmp(t);
  const log = join(dir, "console.log");
  assert.deepEqual((await readLogChunk(log, {})).size, 0, "a missing log is empty, not an error");
  writeFileSync(log, "0123456789");
  const all = await readLogChunk(log, {});
  assert.equal(all.data.toString(), "0123456789");
  assert.equal(all.nextOffset, 10);
  assert.equal((await readLogChunk(log, { tailBytes: 3 })).data.toString(), "789");
  const capped = await readLogChunk(log, { offset: 2, maxBytes: 4 });
  assert.equal(capped.data.toString(), "2345");
  assert.equal(capped.nextOffset, 6);
  writeFileSync(log, "new");
  const after = await readLogChunk(log, { offset: 10 });
  assert.equal(after.data.toString(), "new");
});

void test("vmStats reads CPU/RSS from /proc and allocated bytes of the disk files (dm-snapshot: the COW file)", async (t) => {
  const dir = tmp(t);
  const proc = join(dir, "proc");
  mkdirSync(join(proc, "77"), { recursive: true });
  // utime 300 + stime 100 ticks = 4 s of CPU; started at 1000 ticks = 10 s after boot; uptime 30 s => 20 s alive => 20 %.
  writeFileSync(join(proc, "77", "stat"), `77 (qemu-system-x86) S 1 ${"0 ".repeat(9)}300 100 0 0 20 0 1 0 1000 0 0`);
  writeFileSync(join(proc, "77", "statm"), "5000 2560 0 0 0 0 0");
  writeFileSync(join(proc, "uptime"), "30.00 10.00");
  const cow = join(dir, "root.cow");
  const work = join(dir, "work.ext4");
  writeFileSync(cow, Buffer.alloc(64 * 1024, 1));
  writeFileSync(work, Buffer.alloc(8192, 1));
  const vm: VmRecord = { ...base, handles: { pid: 77, work_disk: work, root_disk: { strategy: "dm-snapshot", path: "/dev/mapper/fc-rootfs-aa", cow_path: cow } } };
  const s = await vmStats(vm, proc);
  assert.equal(s.pid, 77);
  assert.equal(s.cpuPercent, 20);
  assert.equal(s.rssBytes, 2560 * 4096);
  assert.equal(s.uptimeS, 20);
  assert.ok(s.rootAllocatedBytes >= 64 * 1024);
  assert.ok(s.workAllocatedBytes >= 8192);
  assert.equal(s.workSizeBytes, 8192);
  const stopped = await vmStats({ ...vm, state: "stopped" }, proc);
  assert.equal(stopped.pid, null);
  assert.equal(stopped.cpuPercent, null);
  assert.ok(stopped.rootAllocatedBytes > 0, "disk numbers are reported for stopped VMs too");
});

void test("startOfLastLines: a tail of N lines starts at a line start, across blocks and without a final newline", async (t) => {
  const log = join(tmp(t), "console.log");
  // Long lines with escape sequences, so a byte-counted tail would start mid-line.
  const lines = Array.from({ length: 5000 }, (_, i) => `\x1b[0;32m line ${i} ${"x".repeat(40)}\x1b[0m`);
  writeFileSync(log, lines.join("\n") + "\n");
  const chunk = await readLogChunk(log, { tailLines: 5 });
  assert.equal(chunk.data.toString(), lines.slice(-5).join("\n") + "\n");
  writeFileSync(log, "a\nb\nc");
  assert.equal((await readLogChunk(log, { tailLines: 2 })).data.toString(), "b\nc");
  assert.equal((await readLogChunk(log, { tailLines: 10 })).data.toString(), "a\nb\nc", "fewer lines than asked: the whole log");
  assert.equal(await startOfLastLines(log, 0, 3), 0);
});

void test("guest usage: /proc/meminfo and df -P -k are parsed for numbers only", () => {
  const mem = parseMeminfo("MemTotal:        1010000 kB\nMemFree:          500000 kB\nMemAvailable:     800000 kB\n");
  assert.deepEqual(mem, { totalBytes: 1010000 * 1024, availableBytes: 800000 * 1024, usedBytes: 210000 * 1024 });
  assert.equal(parseMeminfo("garbage"), undefined);
  const disks = parseDf("Filesystem     1024-blocks    Used Available Capacity Mounted on\n/dev/vda           2031440  812344   1097928      43% /\n/dev/vdb           1011660      24    942876       1% /root\n");
  assert.deepEqual(disks.map((d) => [d.mount, d.sizeBytes / 1024, d.usedBytes / 1024]), [["/", 2031440, 812344], ["/root", 1011660, 24]]);
});
