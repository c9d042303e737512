import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { Dispatcher } from "../../../src/rpc/dispatcher.js";
import { dmSnapshotCapability, diskMethods } from "../../../src/roothelper/methods/disks.js";
import type { PeerCred } from "../../../src/system/peercred.js";
import { FakeRunner, systemRunner } from "../../../src/system/runner.js";
import { readExt4File, statExt4 } from "../../../src/daemon/storage/ext4.js";
import { testHelperEnv } from "../../helpers/helper-env.js";
import { needsCommands } from "../../helpers/requirements.js";

interface Fixture {
  readonly state: string;
  readonly runner: FakeRunner;
  readonly d: Dispatcher<PeerCred>;
  call(method: string, params: unknown): Promise<{ ok: boolean; code?: string; message?: string; result?: unknown }>;
}

function fixture(t: { after: (fn: () => void) => void }): Fixture {
  const root = mkdtempSync("/tmp/bgt-disk-helper-");
  t.after(() => {
    rmSync(root, { recursive: true, force: true });
  });
  const state = `${root}/state`;
  mkdirSync(`${state}/images/default`, { recursive: true });
  mkdirSync(`${state}/vms/v1`, { recursive: true });
  writeFileSync(`${state}/images/default/rootfs.ext4`, "img");
  writeFileSync(`${state}/vms/v1/root.cow`, "");
  writeFileSync(`${root}/outside.img`, "host disk stand-in");
  const runner = new FakeRunner((argv) => {
    if (argv[0] === "losetup") return { stdout: Buffer.from(argv.includes("--read-only") ? "/dev/loop7\n" : "/dev/loop8\n") };
    if (argv[0] === "blockdev") return { stdout: Buffer.from("8\n") };
    if (argv[0] === "debugfs" && argv[1] === "-R") return { stdout: Buffer.from(String(argv[2]).startsWith("stat") ? "Type: regular    Mode:  0644\nUser:     0   Group:     0   Size: 3\n" : "abc") };
    return undefined;
  });
  const d = new Dispatcher<PeerCred>(
    // Owner root: the fixture's files are root's (the uid rule itself is tested in fs-beneath.test.ts).
    diskMethods(testHelperEnv({ ownerUid: 0, stateDir: state, helperDir: `${root}/run`, runner })),
  );
  return {
    state,
    runner,
    d,
    async call(method, params) {
      const out = await d.dispatch(JSON.stringify({ version: 1, method, params, op_id: "op-test01" }), { pid: 1, uid: 1000, gid: 1000 });
      const r = out.response;
      return r.ok ? { ok: true, result: r.result } : { ok: false, code: r.error.code, message: r.error.message };
    },
  };
}

const DM = "fc-rootfs-0123456789abcdef0123456789abcdef";

void test("create_dm_snapshot runs losetup on helper-held fds of validated state-dir files", async (t) => {
  const f = fixture(t);
  const r = await f.call("priv.create_dm_snapshot", { rootfs_path: `${f.state}/images/default/rootfs.ext4`, cow_path: `${f.state}/vms/v1/root.cow`, dm_name: DM });
  assert.equal(r.ok, true, r.message);
  assert.deepEqual(r.result, { base_loop: "/dev/loop7", cow_loop: "/dev/loop8", dm_name: DM, dm_dev: `/dev/mapper/${DM}` });
  const [base, cow] = f.runner.argvs();
  // The helper hands losetup /proc/<its pid>/fd/N, never the owner-controlled path itself.
  assert.match(base?.[5] ?? "", new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
  assert.match(cow?.[4] ?? "", new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
});

void test("create_dm_snapshot refuses injection and paths outside the state dir before running anything", async (t) => {
  const f = fixture(t);
  const img = `${f.state}/images/default/rootfs.ext4`;
  const cow = `${f.state}/vms/v1/root.cow`;
  symlinkSync("/etc/passwd", `${f.state}/vms/v1/evil.cow`);
  symlinkSync(`${f.state}/../`, `${f.state}/vms/v1/up`);
  const cases: Record<string, unknown>[] = [
    { rootfs_path: img, cow_path: cow, dm_name: "fc-rootfs-../../x" },
    { rootfs_path: img, cow_path: cow, dm_name: `${DM}\n--table` },
    { rootfs_path: img, cow_path: cow, dm_name: "fc-rootfs-abcdef01 --readonly" },
    { rootfs_path: img, cow_path: cow, dm_name: "root" },
    { rootfs_path: "/dev/sda", cow_path: cow, dm_name: DM },
    { rootfs_path: `${f.state}/../outside.img`, cow_path: cow, dm_name: DM },
    { rootfs_path: img, cow_path: `${f.state}/vms/v1/evil.cow`, dm_name: DM },
    { rootfs_path: `${f.state}/vms/v1/up/outside.img`, cow_path: cow, dm_name: DM },
    { rootfs_path: `${img} --show`, cow_path: cow, dm_name: DM },
    { rootfs_path: `${img}\n`, cow_path: cow, dm_name: DM },
    { rootfs_path: "images/default/rootfs.ext4", cow_path: cow, dm_name: DM },
    { rootfs_path: `${f.state}/vms/v1`, cow_path: cow, dm_name: DM }, // a directory, not a file
    { rootfs_path: img, cow_path: cow, dm_name: DM, extra: "--force" },
  ];
  for (const p of cases) {
    const r = await f.call("priv.create_dm_snapshot", p);
    // A name that is not there is not_found: it is only ever resolved beneath the state dir's descriptor, never passed on.
    assert.ok(r.code === "bad_params" || r.code === "not_found", JSON.stringify(p) + " -> " + String(r.message));
  }
  assert.deepEqual(f.runner.argvs(), []);
});

void test("cleanup/fsck validate loops, dm names and devices", async (t) => {
  const f = fixture(t);
  const bad: [string, Record<string, unknown>][] = [
    ["priv.cleanup_dm_snapshot", { base_loop: "/dev/sda" }],
    ["priv.cleanup_dm_snapshot", { cow_loop: "/dev/loop1 --detach-all" }],
    ["priv.cleanup_dm_snapshot", { cow_loop: "/dev/loop1/../sda" }],
    ["priv.cleanup_dm_snapshot", { dm_name: "vg0-root" }],
    ["priv.cleanup_dm_snapshot", { dm_dev: "/dev/mapper/../sda1" }],
    ["priv.cleanup_dm_snapshot", { dm_name: DM, dm_dev: "/dev/mapper/fc-rootfs-ffffffff" }],
    ["priv.cleanup_dm_snapshot", { cow_loop: "/dev/loop8", cow_path: "/etc/passwd" }],
    ["priv.cleanup_dm_snapshot", { cow_loop: "/dev/loop8", cow_path: "../root.cow" }],
    ["priv.fsck_snapshot", { dm_dev: "/dev/sda1" }],
    ["priv.fsck_snapshot", { dm_dev: `/dev/mapper/${DM}\n` }],
    ["priv.fsck_snapshot", { dm_dev: `/dev/mapper/${DM} -n` }],
  ];
  for (const [m, p] of bad) {
    const r = await f.call(m, p);
    assert.equal(r.code, "bad_params", `${m} ${JSON.stringify(p)} -> ${String(r.message)}`);
  }
  // A well-formed name is only opened, never passed on: one that is not there is not_found, and nothing ran.
  assert.equal((await f.call("priv.fsck_snapshot", { dm_dev: `/dev/mapper/${DM}` })).code, "not_found");
  assert.equal((await f.call("priv.cleanup_dm_snapshot", { dm_name: DM })).ok, true);
  assert.deepEqual(f.runner.argvs(), [["dmsetup", "remove", "--retry", DM]]);
});

void test("write_ext4_files: image in the state dir (held fd) or fc-rootfs-* only; guest paths and data checked", async (t) => {
  const f = fixture(t);
  const img = `${f.state}/images/default/rootfs.ext4`;
  symlinkSync("/etc", `${f.state}/vms/v1/etc-link`);
  const file = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ guest_path: "/etc/hostname", data: Buffer.from("vm\n").toString("base64"), mode: 0o644, ...over });
  const bad: Record<string, unknown>[] = [
    { image_path: "/dev/sda1", files: [file()] },
    { image_path: "/dev/mapper/vg0-root", files: [file()] },
    { image_path: `${f.state}/vms/v1/etc-link/shadow`, files: [file()] },
    { image_path: `${f.state}/../outside.img`, files: [file()] },
    { image_path: img, files: [file({ guest_path: '/etc/x"\nrm /etc/passwd' })] },
    { image_path: img, files: [file({ guest_path: "/etc/../../shadow" })] },
    { image_path: img, files: [file({ guest_path: "etc/hostname" })] },
    { image_path: img, files: [file({ guest_path: "/etc/x\\" })] },
    { image_path: img, files: [file({ data: "not base64!" })] },
    { image_path: img, files: [file({ mode: 0o100644 })] },
    { image_path: img, files: [file({ uid: -1 })] },
    { image_path: img, files: [file()], dirs: [{ guest_path: "/a\tb", mode: 0o700 }] },
  ];
  for (const p of bad) {
    const r = await f.call("priv.write_ext4_files", p);
    assert.equal(r.code, "bad_params", `${JSON.stringify(p)} -> ${String(r.message)}`);
  }
  assert.deepEqual(f.runner.argvs(), []);

  const w = await f.call("priv.write_ext4_files", { image_path: img, files: [file({ uid: 0, gid: 0 })], dirs: [{ guest_path: "/root/.ssh", mode: 0o700 }] });
  assert.equal(w.ok, true, w.message);
  // debugfs runs as the owner (setpriv drops uid, gid, groups, capabilities; no_new_privs) on the image it inherits as fd 3.
  assert.deepEqual(f.runner.argvs()[0], ["setpriv", "--reuid=0", "--regid=0", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", "debugfs", "-w", "-f", "-", "/proc/self/fd/3"]);
  const stdin = String(f.runner.calls[0]?.stdin);
  assert.match(stdin, /^write \/proc\/self\/fd\/4 "\/etc\/hostname"$/m);
  assert.match(stdin, /^sif "\/root\/.ssh" mode 040700$/m);
});

void test("storage_caps: no /dev/mapper/control -> dm-snapshot unavailable, with the reason", async () => {
  const r = new FakeRunner(() => ({ stdout: Buffer.from("Library version: 1.02\nDriver version: 4.47.0\n") }));
  const no = await dmSnapshotCapability(r, "/nonexistent/mapper/control");
  assert.equal(no.dm_snapshot, false);
  assert.match(no.reason, /missing/);
  assert.deepEqual(r.argvs(), []);
  const yes = await dmSnapshotCapability(r, "/dev/null");
  assert.deepEqual(yes, { dm_snapshot: true, reason: "device-mapper and dmsetup are available" });
});

void test("write_ext4_files for real: debugfs edits the image through the helper's held fd", { skip: needsCommands("mkfs.ext4", "debugfs") }, async (t) => {
  const root = mkdtempSync("/tmp/bgt-disk-helper-");
  t.after(() => {
    rmSync(root, { recursive: true, force: true });
  });
  mkdirSync(`${root}/state/vms/v1`, { recursive: true });
  const img = `${root}/state/vms/v1/root.ext4`;
  await systemRunner.run(["truncate", "-s", "16M", img]);
  await systemRunner.run(["mkfs.ext4", "-F", "-q", img]);
  const d = new Dispatcher<PeerCred>(diskMethods(testHelperEnv({ ownerUid: 0, stateDir: `${root}/state`, helperDir: `${root}/run`, runner: systemRunner })));
  const call = async (method: string, params: unknown): Promise<unknown> => {
    const { response } = await d.dispatch(JSON.stringify({ version: 1, method, params }), { pid: 1, uid: 1000, gid: 1000 });
    if (!response.ok) throw new Error(`${response.error.code}: ${response.error.message}`);
    return response.result;
  };
  await call("priv.write_ext4_files", { image_path: img, files: [{ guest_path: "/etc/ssh/ssh_host_ed25519_key", data: Buffer.from("KEY\n").toString("base64"), mode: 0o600 }], dirs: [{ guest_path: "/etc/ssh", mode: 0o755 }] });
  assert.equal((await readExt4File(systemRunner, img, "/etc/ssh/ssh_host_ed25519_key")).toString(), "KEY\n");
  const st = await statExt4(systemRunner, img, "/etc/ssh/ssh_host_ed25519_key");
  assert.deepEqual([st.mode, st.uid, st.gid], [0o600, 0, 0]);
});
