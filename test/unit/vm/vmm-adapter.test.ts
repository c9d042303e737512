import assert from "node:assert/strict";
import { test } from "node:test";
import { buildVmSpec, vmmDepsFromDriver } from "../../../src/daemon/vm/vmm-adapter.js";
import { createPidExitWatcher } from "../../../src/system/pid-exit-watcher.js";
import type { LaunchSpec } from "../../../src/daemon/vm/deps.js";
import type { LaunchPlan, SnapshotFiles, StopOptions, VmmDriver, VmmHandle, VmSpec } from "../../../src/vmm/driver.js";

const spec: LaunchSpec = {
  vmId: "0123456789abcdef0123456789abcdef",
  name: "web",
  vcpus: 2,
  memoryMib: 512,
  image: { name: "tiny", flavor: "busybox", kernelPath: "/s/images/tiny/vmlinuz", vmlinuxPath: "/s/images/tiny/vmlinux", initrdPath: "/s/images/tiny/initrd.img", rootfsPath: "/s/images/tiny/rootfs.ext4" },
  rootDiskPath: "/s/vms/x/root.ext4",
  workDiskPath: "/s/vms/x/work.ext4",
  lease: { ip: "172.16.90.2", mac: "02:FC:AA:BB:CC:DD", tap: "tap-fc-01234567", cid: 9, prefix: 24, gateway: "172.16.90.1", nameservers: [] },
  consoleLog: "/s/vms/x/console.log",
  vmDir: "/s/vms/x",
};

void test("qemu gets the bzImage, the QMP socket and the TCG cmdline extra; firecracker gets vmlinux, API socket and vsock", () => {
  const q = buildVmSpec(spec, "qemu", "tcg", "/r");
  assert.equal(q.kernelPath, "/s/images/tiny/vmlinuz");
  assert.equal(q.controlSocket, "/r/vm/0123456789abcdef0123456789abcdef/qmp.sock");
  assert.equal(q.pidFile, "/r/vm/0123456789abcdef0123456789abcdef/vmm.pid");
  assert.equal(q.cmdline, "console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rootfstype=ext4 rw tsc_early_khz=2000000");
  assert.equal(q.mac, "02:fc:aa:bb:cc:dd");
  assert.equal(q.vsock, undefined);
  const f = buildVmSpec(spec, "firecracker", "kvm", "/r");
  assert.equal(f.kernelPath, "/s/images/tiny/vmlinux");
  assert.equal(f.controlSocket, "/r/vm/0123456789abcdef0123456789abcdef/api.sock");
  assert.doesNotMatch(f.cmdline, /tsc_early/);
  assert.deepEqual(f.vsock, { cid: 9, udsPath: "/r/vm/0123456789abcdef0123456789abcdef/vsock.sock" });
});

void test("the adapter round-trips the driver handle through the lifecycle's handle", async () => {
  // Where the helper keeps its per-VM dirs: only named here, nothing is made there by the daemon.
  const run = "/nonexistent/helper-dir";
  const seen: { launched?: VmSpec; stopped?: [VmmHandle, StopOptions]; checked?: VmmHandle; saved?: [VmmHandle, SnapshotFiles]; identityTo?: VmmHandle } = {};
  const driver: VmmDriver = {
    kind: "qemu",
    buildLaunch: (): LaunchPlan => ({ kind: "qemu", argv: [], apiSteps: [] }),
    launch: (s) => { seen.launched = s; return Promise.resolve({ kind: "qemu", vmId: s.vmId, pid: 77, controlSocket: s.controlSocket, pidFile: s.pidFile }); },
    stop: (h, o) => { seen.stopped = [h, o]; return Promise.resolve({ how: "graceful", elapsedMs: 1 }); },
    isRunning: (h) => { seen.checked = h; return Promise.resolve(true); },
    release: () => Promise.reject(new Error("unused")),
    adopt: () => Promise.reject(new Error("unused")),
    stats: () => Promise.reject(new Error("unused")),
    setPaused: () => Promise.reject(new Error("unused")),
    saveState: (h, files) => { seen.saved = [h, files]; return Promise.resolve({ bytes: 5, elapsedMs: 2, vmmVersion: "sha256:x" }); },
    sendIdentity: (h) => { seen.identityTo = h; return Promise.resolve({ ackMs: 3 }); },
  };
  const deps = vmmDepsFromDriver(driver, "tcg", run, createPidExitWatcher(() => undefined));
  const h = await deps.launch(spec, "op-abcdef");
  assert.equal(h.pid, 77);
  // What the lifecycle persists and reads back (JSON round trip).
  const back = JSON.parse(JSON.stringify(h)) as typeof h;
  assert.equal(await deps.isAlive(back), true);
  assert.deepEqual(seen.checked, { kind: "qemu", vmId: spec.vmId, pid: 77, controlSocket: `${run}/vm/0123456789abcdef0123456789abcdef/qmp.sock`, pidFile: `${run}/vm/0123456789abcdef0123456789abcdef/vmm.pid` });
  const identity = { hostname: "fork", mac: "06:00:ac:1f:4d:09", ip: "172.31.77.9", prefix: 24, gateway: "172.31.77.1", nameservers: ["172.31.77.1"], host_key_b64: "AAAA" };
  assert.deepEqual(await deps.sendIdentity(back, identity, "op-abcdef"), { ackMs: 3 });
  assert.deepEqual(seen.identityTo, seen.checked, "sendIdentity gets the same driver handle back");
  await deps.stop(back, { timeoutMs: 5000, force: true }, "op-abcdef");
  assert.deepEqual(seen.stopped?.[1], { timeoutMs: 5000, force: true });
  await assert.rejects(deps.stop({ kind: "qemu", pid: 1, controlSocket: "/x" }, { timeoutMs: 1, force: true }, "op-abcdef"), /lacks vmId\/pidFile/);
  // Save and restore pass straight through: the files the daemon made, the driver's handle, its answer.
  const files = { state: "/s/snapshots/x/vmstate", memory: "/s/snapshots/x/memory" };
  assert.deepEqual(await deps.saveState(back, files, "op-abcdef"), { bytes: 5, elapsedMs: 2, vmmVersion: "sha256:x" });
  assert.deepEqual(seen.saved, [seen.checked, files]);
  assert.equal(seen.launched?.restoreFrom, undefined, "a plain launch boots");
  await deps.launch({ ...spec, restore: files }, "op-abcdef");
  assert.deepEqual(seen.launched?.restoreFrom, files);
});
