import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { test } from "node:test";
import type { HelperClient } from "../../../src/daemon/helper-client.js";
import { copyStrategy } from "../../../src/daemon/storage/copy.js";
import { detectCloneStrategy } from "../../../src/daemon/storage/detect.js";
import { dmSnapshotStrategy } from "../../../src/daemon/storage/dm-snapshot.js";
import { reflinkStrategy } from "../../../src/daemon/storage/reflink.js";
import type { MethodDescriptor } from "../../../src/rpc/descriptor.js";
import { RpcError } from "../../../src/rpc/errors.js";

const VM = "0123456789abcdef0123456789abcdef";

function fakeHelper(answer: (method: string, params: unknown) => unknown): HelperClient & { calls: [string, unknown, string][] } {
  const calls: [string, unknown, string][] = [];
  const call = (d: MethodDescriptor, params: unknown, opId: string): Promise<never> => {
    calls.push([d.name, params, opId]);
    try {
      return Promise.resolve(answer(d.name, params) as never);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  };
  return { socketPath: "/fake", calls, call };
}

async function dirs(t: { after: (fn: () => Promise<void>) => void }): Promise<{ state: string; image: string; vmDir: string }> {
  const state = await mkdtemp("/tmp/bgt-disk-strat-");
  t.after(() => rm(state, { recursive: true, force: true }));
  await mkdir(`${state}/images/default`, { recursive: true });
  await mkdir(`${state}/vms/${VM}`, { recursive: true });
  const image = `${state}/images/default/rootfs.ext4`;
  await writeFile(image, Buffer.alloc(1 << 20, 7));
  return { state, image, vmDir: `${state}/vms/${VM}` };
}

const DM_ANSWER = { base_loop: "/dev/loop3", cow_loop: "/dev/loop4", dm_name: `fc-rootfs-${VM}`, dm_dev: `/dev/mapper/fc-rootfs-${VM}` };

void test("dm-snapshot clone: sparse COW file as large as the image, create then fsck, op id forwarded", async (t) => {
  const { state, image, vmDir } = await dirs(t);
  const helper = fakeHelper((m) => (m === "priv.create_dm_snapshot" ? DM_ANSWER : {}));
  const s = dmSnapshotStrategy(helper, state);
  const h = await s.clone(image, vmDir, { vmId: VM, opId: "op-abc123" });
  assert.deepEqual(h, { kind: "dm-snapshot", path: DM_ANSWER.dm_dev, cow_path: `${vmDir}/root.cow`, base_path: image, ...DM_ANSWER });
  const cow = await stat(`${vmDir}/root.cow`);
  assert.ok(cow.size >= (1 << 20) + (1 << 20) / 256 + 4096, `COW of ${cow.size} bytes cannot hold a full rewrite plus metadata`);
  assert.equal(cow.size % 4096, 0);
  assert.equal(cow.blocks, 0, "COW file must be sparse");
  assert.deepEqual(helper.calls, [
    ["priv.create_dm_snapshot", { rootfs_path: image, cow_path: `${vmDir}/root.cow`, dm_name: `fc-rootfs-${VM}` }, "op-abc123"],
    ["priv.fsck_snapshot", { dm_dev: DM_ANSWER.dm_dev }, "op-abc123"],
  ]);
  await s.release(h, "op-def456");
  assert.deepEqual(helper.calls[2], ["priv.cleanup_dm_snapshot", { base_loop: "/dev/loop3", cow_loop: "/dev/loop4", dm_name: DM_ANSWER.dm_name, dm_dev: DM_ANSWER.dm_dev, rootfs_path: image, cow_path: `${vmDir}/root.cow` }, "op-def456"]);
  await assert.rejects(stat(`${vmDir}/root.cow`), /ENOENT/);
  await s.release(h, "op-def456"); // idempotent
});

void test("dm-snapshot clone: a failed fsck releases the devices and removes the COW file", async (t) => {
  const { state, image, vmDir } = await dirs(t);
  const helper = fakeHelper((m) => {
    if (m === "priv.fsck_snapshot") throw new RpcError("operation_failed", "fsck of snapshot: exit code 4");
    return m === "priv.create_dm_snapshot" ? DM_ANSWER : {};
  });
  await assert.rejects(dmSnapshotStrategy(helper, state).clone(image, vmDir, { vmId: VM, opId: "op-abc123" }), /exit code 4/);
  assert.deepEqual(helper.calls.map((c) => c[0]), ["priv.create_dm_snapshot", "priv.fsck_snapshot", "priv.cleanup_dm_snapshot"]);
  await assert.rejects(stat(`${vmDir}/root.cow`), /ENOENT/);
});

void test("dm-snapshot prepareBoot: fsck when the device exists; re-attach from the persistent COW when a reboot dropped it", async (t) => {
  const { state, image, vmDir } = await dirs(t);
  const helper = fakeHelper((m) => (m === "priv.create_dm_snapshot" ? { ...DM_ANSWER, base_loop: "/dev/loop0", cow_loop: "/dev/loop1" } : {}));
  const h = { kind: "dm-snapshot" as const, path: DM_ANSWER.dm_dev, cow_path: `${vmDir}/root.cow`, base_path: image, ...DM_ANSWER };
  const present = dmSnapshotStrategy(helper, state, () => true);
  assert.deepEqual(await present.prepareBoot(h, { vmId: VM, opId: "op-abc123" }), h);
  assert.deepEqual(helper.calls.map((c) => c[0]), ["priv.fsck_snapshot"]);
  helper.calls.length = 0;
  const gone = dmSnapshotStrategy(helper, state, (p) => p === image);
  const again = await gone.prepareBoot(h, { vmId: VM, opId: "op-abc123" });
  assert.deepEqual(helper.calls.map((c) => c[0]), ["priv.cleanup_dm_snapshot", "priv.create_dm_snapshot", "priv.fsck_snapshot"]);
  assert.equal(again.kind === "dm-snapshot" ? again.base_loop : "", "/dev/loop0");
});

void test("copy clone: an independent sparse copy, made in-process; never clobbers a VM disk", async (t) => {
  const { state, vmDir } = await dirs(t);
  const sparse = `${state}/images/default/sparse.ext4`;
  await writeFile(sparse, "head");
  await (await import("node:fs/promises")).truncate(sparse, 64 << 20);
  const h = await copyStrategy(state).clone(sparse, vmDir, { vmId: VM, opId: "op-abc123" });
  const st = await stat(h.path);
  assert.equal(st.size, 64 << 20);
  assert.ok(st.blocks * 512 <= 64 * 1024, `copy must stay sparse (allocated ${st.blocks * 512})`);
  assert.equal((await readFile(h.path)).subarray(0, 4).toString(), "head");
  // A second clone into the same VM dir must not clobber the existing disk.
  await assert.rejects(copyStrategy(state).clone(sparse, vmDir, { vmId: VM, opId: "op-abc123" }), /already exists/);
  assert.equal((await stat(h.path)).size, 64 << 20);
  await copyStrategy(state).release(h, "op-abc123");
  await copyStrategy(state).release(h, "op-abc123");
  await assert.rejects(stat(h.path), /ENOENT/);
});

void test("reflink on a filesystem without FICLONE fails loudly with advice (never a silent full copy)", async (t) => {
  const { state, image, vmDir } = await dirs(t);
  // /tmp here is ext4: no reflink.
  const err = await reflinkStrategy(state).clone(image, vmDir, { vmId: VM, opId: "op-abc123" }).then(() => undefined, (e: unknown) => e);
  if (err === undefined) {
    t.diagnostic("this /tmp supports reflink; the failure path is covered elsewhere");
    return;
  }
  assert.match((err as Error).message, /put the state dir on xfs or btrfs/);
  await assert.rejects(stat(`${vmDir}/root.ext4`), /ENOENT/);
});

void test("detect: auto prefers reflink, then dm-snapshot, then copy; config overrides with a reason", async () => {
  const base = { stateDir: "/s", opId: "op-abc123", which: () => true };
  const dmOk = fakeHelper(() => ({ dm_snapshot: true, reason: "device-mapper and dmsetup are available" }));
  const reflinkOk = (): Promise<undefined> => Promise.resolve(undefined);
  const reflinkNo = (): Promise<string> => Promise.resolve("EOPNOTSUPP");

  let c = await detectCloneStrategy({ ...base, configured: "auto", probeReflink: reflinkOk, hasFile: () => true, helper: dmOk });
  assert.equal(c.strategy, "reflink");
  assert.equal(c.advice, "");
  c = await detectCloneStrategy({ ...base, configured: "auto", probeReflink: reflinkNo, hasFile: () => true, helper: dmOk });
  assert.equal(c.strategy, "dm-snapshot");
  assert.match(c.reason, /EOPNOTSUPP/);
  c = await detectCloneStrategy({ ...base, configured: "auto", probeReflink: reflinkNo, hasFile: () => false, helper: dmOk });
  assert.equal(c.strategy, "copy");
  assert.match(c.reason, /\/dev\/mapper\/control is missing/);
  assert.equal(c.advice, "put the state dir on xfs or btrfs for O(1) clones");
  // The helper says no (e.g. dm-snapshot target not loadable): copy.
  c = await detectCloneStrategy({ ...base, configured: "auto", probeReflink: reflinkNo, hasFile: () => true, helper: fakeHelper(() => ({ dm_snapshot: false, reason: "dmsetup is not usable" })) });
  assert.equal(c.strategy, "copy");
  assert.match(c.reason, /dmsetup is not usable/);
  c = await detectCloneStrategy({ ...base, configured: "reflink", probeReflink: reflinkNo, hasFile: () => false });
  assert.equal(c.strategy, "reflink");
  assert.match(c.reason, /storage\.clone_strategy.*will fail here.*EOPNOTSUPP/);
  c = await detectCloneStrategy({ ...base, configured: "copy", probeReflink: reflinkOk, hasFile: () => false });
  assert.equal(c.strategy, "copy");
  assert.match(c.advice, /xfs or btrfs/);
});

void test("detect: the real FICLONE probe leaves nothing behind", async (t) => {
  const { state } = await dirs(t);
  const c = await detectCloneStrategy({ stateDir: state, configured: "auto", opId: "op-abc123", hasFile: () => false });
  assert.ok(c.strategy === "reflink" || c.strategy === "copy");
  const left = (await readdir(`${state}/vms`)).filter((n) => n.startsWith(".clone-probe"));
  assert.deepEqual(left, []);
});

void test("doctor's clone line: a non-O(1) state dir warns with the fix; a missing state dir is probed via its parent and left untouched", async (t) => {
  const { state } = await dirs(t);
  const { storageDoctorCheck } = await import("../../../src/daemon/storage/doctor.js");
  const missing = `${state}/not/yet/created`;
  const c = await storageDoctorCheck(missing, "auto");
  assert.equal(c.name, "clone");
  if (c.status === "warn") {
    assert.match(c.detail, /^copy: /);
    assert.equal(c.fix, "put the state dir on xfs or btrfs for O(1) clones");
  } else {
    assert.match(c.detail, /^reflink: /);
  }
  assert.equal(existsSync(`${state}/not`), false, "doctor must not create the state dir");
  assert.deepEqual((await readdir(state)).filter((n) => n.includes("probe")), []);
});
