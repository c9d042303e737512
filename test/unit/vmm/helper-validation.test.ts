import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { configSchema } from "../../../src/config/schema.js";
import { helperVmFiles } from "../../../src/paths/paths.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { privCleanupVmm, privKillProcess, privLaunchFirecracker, privLaunchQemu, privSignalProcess, privVmmSaveState, privVmmShutdown } from "../../../src/rpc/priv/vmm.js";
import { snapshotMethods } from "../../../src/roothelper/methods/snapshot.js";
import { vmmMethods } from "../../../src/roothelper/methods/vmm.js";
import { FakeRunner } from "../../../src/system/runner.js";
import { testHelperEnv } from "../../helpers/helper-env.js";
import { inProcessHelper } from "../../helpers/in-process-helper.js";
import { VM_ID } from "./fixtures.js";

const base = mkdtempSync("/tmp/bgt-vmm-val-");
const stateDir = join(base, "state");
const helperDir = join(base, "helper");
const vmDir = join(stateDir, "vms", VM_ID);
mkdirSync(vmDir, { recursive: true });
mkdirSync(join(stateDir, "images", "tiny"), { recursive: true });
for (const f of ["images/tiny/vmlinuz", "images/tiny/initrd.img", `vms/${VM_ID}/root.ext4`, `vms/${VM_ID}/work.ext4`, `vms/${VM_ID}/a,b.ext4`]) {
  writeFileSync(join(stateDir, f), "");
  chownSync(join(stateDir, f), 1000, 1000);
}
// Files outside the managed roots that an attacker would like a root process to open.
const outside = join(base, "outside");
writeFileSync(outside, "secret");
symlinkSync(outside, join(vmDir, "evil-link.ext4"));
mkdirSync(join(stateDir, "images", "swapped"));
symlinkSync(join(base), join(stateDir, "images", "linkdir"));

const sleeper = spawn("sleep", ["120"], { stdio: "ignore" });
after(() => {
  sleeper.kill("SIGKILL");
  rmSync(base, { recursive: true, force: true });
});

const runner = new FakeRunner();
const env = testHelperEnv({ stateDir, helperDir, jailDir: join(base, "jail"), runner, config: configSchema.parse({ vmm: { qemu_bin: "/nonexistent/qemu", firecracker_bin: "/nonexistent/firecracker", jailer: "never" } }) });
const helper = inProcessHelper([...vmmMethods(env), ...snapshotMethods(env)]);

const good = {
  vm_id: VM_ID,
  vcpus: 1,
  memory_mib: 256,
  kernel_path: join(stateDir, "images/tiny/vmlinuz"),
  initrd_path: join(stateDir, "images/tiny/initrd.img"),
  cmdline: "console=ttyS0 reboot=k panic=1",
  root_disk: join(vmDir, "root.ext4"),
  work_disk: join(vmDir, "work.ext4"),
  tap_name: "tap-fc-01234567",
  mac: "06:00:ac:10:00:02",
  console_log: join(vmDir, "console.log"),
  vmm_log: join(vmDir, "vmm.log"),
};
const qemuGood = { ...good, accel: "tcg" as const };
const pidFile = helperVmFiles.pidFile(helperDir, VM_ID);

async function refused(p: Promise<unknown>, field: RegExp, code = "bad_params"): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof RpcError && e.code === code && field.test(e.message));
}

const INJECTIONS: [keyof typeof good, unknown, RegExp][] = [
  ["vm_id", "../../etc", /vm_id/],
  ["vm_id", `${VM_ID}\n`, /vm_id/],
  ["vcpus", 0, /vcpus/],
  ["vcpus", 1.5, /vcpus/],
  ["memory_mib", 1 << 30, /memory_mib/],
  ["kernel_path", "/etc/shadow", /kernel_path/],
  ["kernel_path", join(stateDir, "images/../../outside"), /kernel_path/],
  ["kernel_path", join(stateDir, "images/linkdir/outside"), /kernel_path.*symlink/],
  ["kernel_path", join(stateDir, "images/tiny"), /kernel_path.*regular file/],
  ["initrd_path", join(stateDir, "images/tiny/initrd.img\n-append"), /initrd_path/],
  ["root_disk", join(vmDir, "evil-link.ext4"), /root_disk.*symlink/],
  ["root_disk", "/dev/sda", /root_disk/],
  ["root_disk", "/dev/mapper/../sda", /root_disk/],
  ["work_disk", join(vmDir, "a,b.ext4"), /work_disk|cannot be passed/],
  ["cmdline", "console=ttyS0\ninit=/bin/sh", /cmdline/],
  ["cmdline", "x".repeat(2049), /cmdline/],
  ["tap_name", "tap-fc-01234567 -netdev", /tap_name/],
  ["tap_name", "eth0", /tap_name/],
  ["tap_name", "tap-fc-0123456,script=/tmp/x", /tap_name/],
  ["mac", "06:00:AC:10:00:02", /mac/],
  ["mac", "07:00:ac:10:00:02", /mac/],
  ["mac", "06:00:ac:10:00:02,netdev=x", /mac/],
  ["console_log", join(vmDir, "evil-link.ext4"), /console_log.*symlink/],
  ["console_log", join(helperDir, "c.log"), /console_log/],
  ["vmm_log", "/var/log/../../etc/passwd", /vmm_log/],
];

void test("priv.launch_qemu refuses every smuggled field before anything runs", async () => {
  for (const [field, value, re] of INJECTIONS) {
    await refused(helper.call(privLaunchQemu, { ...qemuGood, [field]: value }, "op-000000000001"), re);
  }
  assert.throws(() => privLaunchQemu.params.parse({ ...qemuGood, accel: "kvm; rm" }));
  assert.throws(() => privLaunchQemu.params.parse({ ...qemuGood, argv: ["/bin/sh"] }), "no argv from the daemon: unknown keys are refused");
  for (const field of ["pid_file", "qmp_socket"]) {
    assert.throws(() => privLaunchQemu.params.parse({ ...qemuGood, [field]: "/etc/cron.d/x" }), `${field}: the helper names what it creates, not the request`);
  }
  assert.equal(runner.calls.length, 0);
  assert.equal(existsSync(helperVmFiles.vmDir(helperDir, VM_ID)), false, "nothing was launched");
});

void test("priv.launch_firecracker validates the same fields plus vsock", async () => {
  const fc = { ...good };
  // Commas are harmless in Firecracker's JSON API; everything else must be refused the same way.
  for (const [field, value, re] of INJECTIONS.filter(([, v]) => typeof v !== "string" || !v.endsWith("a,b.ext4"))) {
    await refused(helper.call(privLaunchFirecracker, { ...fc, [field]: value }, "op-000000000001"), re);
  }
  await refused(helper.call(privLaunchFirecracker, { ...fc, vsock_cid: 2 }, "op-000000000001"), /vsock_cid/);
  for (const field of ["api_socket", "vsock_path", "pid_file"]) {
    assert.throws(() => privLaunchFirecracker.params.parse({ ...fc, [field]: "/tmp/v.sock" }), `${field}: the helper names what it creates, not the request`);
  }
  await refused(helper.call(privLaunchFirecracker, { ...fc, metrics_path: "/etc/x" }, "op-000000000001"), /metrics_path/);
});

void test("a valid launch with a missing binary fails cleanly and leaves no pidfile nor run dir", async () => {
  await refused(helper.call(privLaunchQemu, qemuGood, "op-000000000001"), /cannot start|qemu/, "operation_failed");
  assert.equal(existsSync(pidFile), false);
  assert.equal(existsSync(helperVmFiles.vmDir(helperDir, VM_ID)), false);
});

void test("signals: only VMM pids of THIS VM, only allow-listed signals", async () => {
  const pid = sleeper.pid ?? 0;
  await refused(helper.call(privSignalProcess, { pid, vm_id: VM_ID, signal: "SIGTERM" }, "op-000000000001"), /not a VMM/);
  await refused(helper.call(privSignalProcess, { pid: 1, vm_id: VM_ID, signal: "SIGKILL" }, "op-000000000001"), /pid/);
  await refused(helper.call(privSignalProcess, { pid: process.pid, vm_id: VM_ID, signal: "SIGSEGV" }, "op-000000000001"), /signal/);
  await refused(helper.call(privSignalProcess, { pid, vm_id: "x", signal: "SIGTERM" }, "op-000000000001"), /vm_id/);
  await refused(helper.call(privKillProcess, { pid, vm_id: VM_ID }, "op-000000000001"), /not a VMM/);
  await refused(helper.call(privKillProcess, { pid: 0x7ffffff0, vm_id: VM_ID }, "op-000000000001"), /does not exist/, "not_found");
  await refused(helper.call(privVmmShutdown, { pid, vm_id: VM_ID, kind: "qemu" }, "op-000000000001"), /not a VMM/);
  assert.throws(() => privVmmShutdown.params.parse({ pid, vm_id: VM_ID, kind: "qemu", control_socket: "/run/x.sock" }), "the helper finds the socket from vm_id");
  assert.equal(sleeper.exitCode, null, "the unrelated process was never signalled");
});

void test("cleanup_vmm removes the VM's run dir and jail by descriptor and never follows symlinks", async () => {
  // A jail dir swapped for a symlink to somewhere precious (by root: the jail dir is root's all the way down).
  const jailParent = join(base, "jail", "firecracker");
  mkdirSync(jailParent, { recursive: true });
  const victim = join(base, "victim");
  mkdirSync(victim);
  writeFileSync(join(victim, "keep"), "x");
  symlinkSync(victim, join(jailParent, VM_ID));
  assert.deepEqual(await helper.call(privCleanupVmm, { vm_id: VM_ID }, "op-000000000001"), { removed: true }, "the symlink itself is removed");
  assert.equal(existsSync(join(victim, "keep")), true, "what it pointed to is not");
  await refused(helper.call(privCleanupVmm, { vm_id: "../../etc" }, "op-000000000001"), /vm_id/);
  mkdirSync(join(jailParent, VM_ID, "root"), { recursive: true });
  symlinkSync(victim, join(jailParent, VM_ID, "root", "escape"));
  assert.deepEqual(await helper.call(privCleanupVmm, { vm_id: VM_ID }, "op-000000000001"), { removed: true });
  assert.equal(existsSync(join(jailParent, VM_ID)), false);
  assert.equal(existsSync(join(victim, "keep")), true, "a symlink inside the jail is unlinked, not followed");
  assert.deepEqual(await helper.call(privCleanupVmm, { vm_id: VM_ID }, "op-000000000001"), { removed: false }, "idempotent");
  // The helper's own run dir of the VM: its pidfile, and a symlink no owner could have put there (root's dir), both go.
  mkdirSync(helperVmFiles.vmDir(helperDir, VM_ID));
  writeFileSync(pidFile, "1\n");
  symlinkSync(victim, helperVmFiles.qmpSocket(helperDir, VM_ID));
  assert.deepEqual(await helper.call(privCleanupVmm, { vm_id: VM_ID }, "op-000000000001"), { removed: true });
  assert.equal(existsSync(helperVmFiles.vmDir(helperDir, VM_ID)), false);
  assert.equal(existsSync(join(victim, "keep")), true);
});

void test("restore: the snapshot's paths must be beneath the state dir, and the request names nothing else", async () => {
  const snap = join(stateDir, "snapshots", "s1");
  for (const [restore, re] of [
    [{ state_path: "/etc/shadow", memory_path: join(snap, "memory") }, /restore\.state_path/],
    [{ state_path: join(snap, "vmstate"), memory_path: join(stateDir, "../outside") }, /restore\.memory_path/],
  ] as const) {
    await refused(helper.call(privLaunchQemu, { ...qemuGood, restore }, "op-000000000001"), re);
    await refused(helper.call(privLaunchFirecracker, { ...good, restore }, "op-000000000001"), re);
  }
  assert.throws(() => privLaunchQemu.params.parse({ ...qemuGood, restore: { state_path: join(snap, "vmstate"), memory_path: join(snap, "memory"), incoming: "exec:sh" } }), "no other restore field");
  assert.throws(() => privLaunchQemu.params.parse({ ...qemuGood, restore: { state_path: join(snap, "vmstate") } }), "both files are named");
  assert.equal(existsSync(helperVmFiles.vmDir(helperDir, VM_ID)), false, "nothing was launched");
});

void test("vmm_save_state: only this VM's VMM, a bounded timeout, and no socket or path the helper makes", async () => {
  const pid = sleeper.pid ?? 0;
  const files = { state_path: join(stateDir, "snapshots", "s1", "vmstate"), memory_path: join(stateDir, "snapshots", "s1", "memory") };
  await refused(helper.call(privVmmSaveState, { pid, vm_id: VM_ID, kind: "qemu", ...files }, "op-000000000001"), /not a VMM/);
  await refused(helper.call(privVmmSaveState, { pid, vm_id: "../x", kind: "qemu", ...files }, "op-000000000001"), /vm_id/);
  await refused(helper.call(privVmmSaveState, { pid, vm_id: VM_ID, kind: "qemu", ...files, timeout_ms: 10 }, "op-000000000001"), /timeout_ms/);
  await refused(helper.call(privVmmSaveState, { pid, vm_id: VM_ID, kind: "qemu", ...files, timeout_ms: 86_400_000 }, "op-000000000001"), /timeout_ms/);
  for (const field of ["migration_socket", "uri", "control_socket"]) {
    assert.throws(() => privVmmSaveState.params.parse({ pid, vm_id: VM_ID, kind: "qemu", ...files, [field]: "/tmp/x" }), `${field}: not the request's to name`);
  }
  assert.throws(() => privVmmSaveState.params.parse({ pid, vm_id: VM_ID, kind: "cloud-hypervisor", ...files }));
  assert.equal(sleeper.exitCode, null, "the unrelated process was never signalled");
});
