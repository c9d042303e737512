import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { test } from "node:test";
import { cleanupDmSnapshot, createDmSnapshot, fsckSnapshot, withAllocationLock } from "../../../src/roothelper/dmsnap.js";
import { CommandError, FakeRunner, type RunOptions } from "../../../src/system/runner.js";

// dm-snapshot cannot run on the development machine (no device-mapper): these
// tests pin the exact command sequences the root helper runs.

function happy(argv: readonly string[]): { stdout: Buffer } | undefined {
  if (argv[0] === "losetup" && argv.includes("--read-only")) return { stdout: Buffer.from("/dev/loop7\n") };
  if (argv[0] === "losetup" && argv.includes("--find")) return { stdout: Buffer.from("/dev/loop8\n") };
  if (argv[0] === "blockdev") return { stdout: Buffer.from("2097152\n") };
  return undefined;
}

void test("create: read-only base loop, COW loop, sector count, persistent snapshot table", async () => {
  const r = new FakeRunner(happy);
  const h = await createDmSnapshot(r, "/state/images/default/rootfs.ext4", "/state/vms/x/root.cow", "fc-rootfs-0123456789abcdef0123456789abcdef");
  assert.deepEqual(r.argvs(), [
    ["losetup", "--find", "--show", "--read-only", "--", "/state/images/default/rootfs.ext4"],
    ["losetup", "--find", "--show", "--", "/state/vms/x/root.cow"],
    ["blockdev", "--getsz", "/dev/loop7"],
    ["dmsetup", "create", "fc-rootfs-0123456789abcdef0123456789abcdef", "--table", "0 2097152 snapshot /dev/loop7 /dev/loop8 P 8"],
  ]);
  assert.deepEqual(h, { base_loop: "/dev/loop7", cow_loop: "/dev/loop8", dm_name: "fc-rootfs-0123456789abcdef0123456789abcdef", dm_dev: "/dev/mapper/fc-rootfs-0123456789abcdef0123456789abcdef" });
});

void test("create: a failing dmsetup rolls back the target and both loops, in reverse order", async () => {
  const r = new FakeRunner((argv) => (argv[0] === "dmsetup" && argv[1] === "create" ? new CommandError([...argv], 1, null, "", "device-mapper: reload ioctl failed") : happy(argv)));
  await assert.rejects(createDmSnapshot(r, "/b", "/c", "fc-rootfs-0123456789abcdef"), /reload ioctl failed/);
  assert.deepEqual(r.argvs().slice(4), [
    ["dmsetup", "remove", "--retry", "fc-rootfs-0123456789abcdef"],
    ["losetup", "--detach", "/dev/loop8"],
    ["losetup", "--detach", "/dev/loop7"],
  ]);
});

void test("create: a failure after the first loop detaches only that loop", async () => {
  const r = new FakeRunner((argv) => (argv[0] === "losetup" && !argv.includes("--read-only") && argv.includes("--find") ? new CommandError([...argv], 1, null, "", "no free loop device") : happy(argv)));
  await assert.rejects(createDmSnapshot(r, "/b", "/c", "fc-rootfs-0123456789abcdef"), /no free loop/);
  assert.deepEqual(r.argvs().slice(2), [["losetup", "--detach", "/dev/loop7"]]);
});

void test("create: garbage from blockdev is an error, not a table", async () => {
  const r = new FakeRunner((argv) => (argv[0] === "blockdev" ? { stdout: Buffer.from("0 --table evil\n") } : happy(argv)));
  await assert.rejects(createDmSnapshot(r, "/b", "/c", "fc-rootfs-0123456789abcdef"), /not a sector count/);
  assert.ok(!r.argvs().some((a) => a[0] === "dmsetup" && a[1] === "create"));
});

void test("cleanup: collect-and-continue; already-gone pieces are fine; loops not backed by banger files are refused", async (t) => {
  const sys = await mkdtemp("/tmp/bgt-disk-sys-");
  t.after(() => rm(sys, { recursive: true, force: true }));
  const backing = async (n: string, file: string): Promise<void> => {
    await mkdir(`${sys}/block/${n}/loop`, { recursive: true });
    await writeFile(`${sys}/block/${n}/loop/backing_file`, file + "\n");
  };
  await backing("loop7", "/state/images/default/rootfs.ext4");
  await backing("loop8", "/state/vms/x/root.cow");
  await backing("loop9", "/home/someone/other.img");

  // dm remove fails for real, cow loop detach says "gone": both loops are still attempted, one error surfaces.
  const r = new FakeRunner((argv) => {
    if (argv[0] === "dmsetup") return new CommandError([...argv], 1, null, "", "Device or resource busy");
    if (argv[2] === "/dev/loop8") return new CommandError([...argv], 1, null, "", "losetup: /dev/loop8: detach failed: No such device or address");
    return undefined;
  });
  await assert.rejects(cleanupDmSnapshot(r, { base_loop: "/dev/loop7", cow_loop: "/dev/loop8", dm_name: "fc-rootfs-0123456789abcdef", dm_dev: "/dev/mapper/fc-rootfs-0123456789abcdef" }, { stateDir: "/state", sysRoot: sys }), /resource busy/);
  assert.deepEqual(r.argvs(), [
    ["dmsetup", "remove", "--retry", "fc-rootfs-0123456789abcdef"],
    ["losetup", "--detach", "/dev/loop8"],
    ["losetup", "--detach", "/dev/loop7"],
  ]);

  // A reused loop number backed by someone else's file is never detached; a detached one is skipped.
  const r2 = new FakeRunner();
  await assert.rejects(cleanupDmSnapshot(r2, { base_loop: "/dev/loop9", cow_loop: "/dev/loop3", dm_name: "", dm_dev: "" }, { stateDir: "/state", sysRoot: sys }), /refusing to detach \/dev\/loop9/);
  assert.deepEqual(r2.argvs(), []);

  // Two failures -> an AggregateError carrying both.
  const r3 = new FakeRunner((argv) => new CommandError([...argv], 1, null, "", "boom"));
  const err = await cleanupDmSnapshot(r3, { base_loop: "/dev/loop7", cow_loop: "/dev/loop8", dm_name: "fc-rootfs-0123456789abcdef", dm_dev: "" }, { stateDir: "/state", sysRoot: sys }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof AggregateError);
  assert.equal(err.errors.length, 3);

  // Stale handles of a stopped VM whose loop numbers were reused by another VM: with the
  // expected backing files pinned, the other VM's loops are left alone.
  await backing("loop5", "/state/vms/other/root.cow");
  const r5 = new FakeRunner();
  await cleanupDmSnapshot(r5, { base_loop: "/dev/loop7", cow_loop: "/dev/loop5", dm_name: "", dm_dev: "" }, { stateDir: "/state", sysRoot: sys, expectedBacking: { base: "/state/images/default/rootfs.ext4", cow: "/state/vms/x/root.cow" } });
  assert.deepEqual(r5.argvs(), [["losetup", "--detach", "/dev/loop7"]]);
  // A deleted backing file still counts as ours.
  await backing("loop6", "/state/vms/x/root.cow (deleted)");
  const r6 = new FakeRunner();
  await cleanupDmSnapshot(r6, { base_loop: "", cow_loop: "/dev/loop6", dm_name: "", dm_dev: "" }, { stateDir: "/state", sysRoot: sys, expectedBacking: { cow: "/state/vms/x/root.cow" } });
  assert.deepEqual(r6.argvs(), [["losetup", "--detach", "/dev/loop6"]]);

  // Idempotent: everything already gone -> success.
  const r4 = new FakeRunner((argv) => new CommandError([...argv], 1, null, "", "No such device or address"));
  await cleanupDmSnapshot(r4, { base_loop: "/dev/loop7", cow_loop: "/dev/loop8", dm_name: "fc-rootfs-0123456789abcdef", dm_dev: "" }, { stateDir: "/state", sysRoot: sys });
});

void test("fsck: e2fsck -fy of the held device (its fd 3); exit 1 (fixed) is success, 4 is failure", async () => {
  const seen: unknown[] = [];
  const r = { run: (argv: readonly string[], o?: RunOptions) => { seen.push([argv, o?.okExitCodes, o?.extraFds]); return Promise.resolve({ stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) }); } };
  await fsckSnapshot(r, 42);
  assert.deepEqual(seen, [[["e2fsck", "-fy", "/proc/self/fd/3"], [1], [42]]]);
  const r2 = new FakeRunner(() => new CommandError(["e2fsck"], 4, null, "", "uncorrected errors"));
  await assert.rejects(fsckSnapshot(r2, 42), /uncorrected/);
});

void test("allocation lock serializes concurrent creates (no interleaved losetup --find)", async () => {
  const log: string[] = [];
  const slow = {
    run: async (argv: readonly string[]) => {
      log.push(`start ${argv[0]}`);
      await new Promise((res) => setTimeout(res, 5));
      log.push(`end ${argv[0]}`);
      return { stdout: happy(argv)?.stdout ?? Buffer.alloc(0), stderr: Buffer.alloc(0) };
    },
  };
  await Promise.all([createDmSnapshot(slow, "/b1", "/c1", "fc-rootfs-aaaaaaaa"), createDmSnapshot(slow, "/b2", "/c2", "fc-rootfs-bbbbbbbb")]);
  for (let i = 0; i < log.length; i += 2) {
    assert.match(log[i] ?? "", /^start /);
    assert.equal((log[i + 1] ?? "").replace("end", "start"), log[i]);
  }
  // A failing critical section does not wedge the lock.
  await assert.rejects(withAllocationLock(() => Promise.reject(new Error("x"))));
  assert.equal(await withAllocationLock(() => Promise.resolve(42)), 42);
});
