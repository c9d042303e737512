import assert from "node:assert/strict";
import { test } from "node:test";
import { buildRestoreSteps, directPaths, FC_SNAPSHOT_NAMES } from "../../../src/vmm/firecracker/boot-steps.js";
import { firecrackerDriver } from "../../../src/vmm/firecracker/driver.js";
import { buildQemuArgv, QEMU_STATE_FD } from "../../../src/vmm/qemu/argv.js";
import { qemuDriver } from "../../../src/vmm/qemu/driver.js";
import type { HelperClient } from "../../../src/daemon/helper-client.js";
import { createLogger } from "../../../src/system/log.js";
import { sampleSpec } from "./fixtures.js";

const files = { state: "/var/lib/banger/snapshots/s1/vmstate", memory: "/var/lib/banger/snapshots/s1/memory" };
const runAs = { uid: 1000, gid: 1000 };
const noHelper = {} as HelperClient;
const logger = createLogger({ write: () => true });

void test("qemu: every virtio-net has guest_announce=off, booted or restored (the device lists must match)", () => {
  for (const spec of [sampleSpec(), sampleSpec({ restoreFrom: files })]) {
    const argv = buildQemuArgv("qemu-system-x86_64", spec, runAs);
    const nets = argv.filter((a) => a.startsWith("virtio-net-device"));
    assert.equal(nets.length, 1);
    assert.match(nets[0] ?? "", /,guest_announce=off$/);
  }
});

void test("qemu: a restore reads the state from the descriptor handed first, stays paused, and never announces", () => {
  const boot = buildQemuArgv("qemu-system-x86_64", sampleSpec(), runAs);
  const restore = buildQemuArgv("qemu-system-x86_64", sampleSpec({ restoreFrom: files }), runAs);
  assert.equal(boot.includes("-incoming"), false);
  assert.equal(boot.includes("-S"), false);
  assert.deepEqual(restore.slice(boot.length), ["-incoming", `fd:${QEMU_STATE_FD}`, "-S", "-global", "migration.announce-rounds=0"]);
  assert.deepEqual(restore.slice(0, boot.length), boot, "otherwise the very argv of a boot");
  assert.equal(restore.some((a) => a.includes(files.state)), false, "qemu never gets the state file by name");
  assert.deepEqual(qemuDriver({ helper: noHelper, logger, qemuBin: "qemu-system-x86_64", runAs }).buildLaunch(sampleSpec({ restoreFrom: files })).argv, restore);
});

void test("firecracker: a restore configures only logger/metrics, then loads the snapshot paused on the new tap", () => {
  const spec = sampleSpec({ restoreFrom: files, metricsPath: "/var/lib/banger/vms/x/metrics.json" });
  const steps = buildRestoreSteps(spec, directPaths(spec), files);
  assert.deepEqual(steps.map((s) => s.name), ["logger", "metrics", "snapshot-load"]);
  assert.deepEqual(steps.at(-1), {
    name: "snapshot-load",
    method: "PUT",
    path: "/snapshot/load",
    body: { snapshot_path: files.state, mem_backend: { backend_type: "File", backend_path: files.memory }, resume_vm: false, network_overrides: [{ iface_id: "net0", host_dev_name: spec.tap }] },
  });
  const direct = firecrackerDriver({ helper: noHelper, logger, firecrackerBin: "/usr/bin/firecracker" }).buildLaunch(spec);
  assert.equal(direct.apiSteps.some((s) => s.name === "InstanceStart"), false, "no boot");
  const jailed = firecrackerDriver({ helper: noHelper, logger, firecrackerBin: "/usr/bin/firecracker", jailer: { jailerBin: "/usr/bin/jailer", jailDir: "/srv/jailer", uid: 1000, gid: 1000 } }).buildLaunch(spec);
  assert.deepEqual((jailed.apiSteps.at(-1)?.body as { snapshot_path: string }).snapshot_path, `/${FC_SNAPSHOT_NAMES.state}`, "jailed: the in-jail name");
});
