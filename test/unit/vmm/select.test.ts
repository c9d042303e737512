import assert from "node:assert/strict";
import { test } from "node:test";
import { configSchema } from "../../../src/config/schema.js";
import { selectVmm, type SelectProbes } from "../../../src/vmm/select.js";

function probes(o: { fc?: boolean; qemu?: boolean; kvm?: boolean; kvmBoots?: boolean }): SelectProbes & { probeCalls: number } {
  const p = {
    probeCalls: 0,
    resolveBinary: (n: string) => ((n === "firecracker" && o.fc === true) || (n === "qemu-system-x86_64" && o.qemu !== false) ? `/usr/bin/${n}` : undefined),
    kvmPresent: () => o.kvm === true,
    qemuKvmBoots: () => {
      p.probeCalls++;
      return Promise.resolve(o.kvmBoots === true);
    },
  };
  return p;
}
const vmm = (over: Record<string, unknown> = {}) => configSchema.parse({ vmm: over }).vmm;

void test("auto: firecracker when the binary exists and KVM is present", async () => {
  const c = await selectVmm(vmm(), probes({ fc: true, kvm: true }));
  assert.deepEqual({ kind: c.kind, accel: c.accel, warning: c.warning }, { kind: "firecracker", accel: "kvm", warning: undefined });
  assert.match(c.reason, /firecracker found/);
});

void test("auto: qemu+kvm only when the probe boot succeeds, else qemu+tcg with a warning", async () => {
  const ok = probes({ kvm: true, kvmBoots: true });
  assert.deepEqual(await selectVmm(vmm(), ok), { kind: "qemu", accel: "kvm", reason: "auto: firecracker not found; qemu+kvm probe boot succeeded" });
  const bad = probes({ fc: true, kvm: true, kvmBoots: false });
  // firecracker + kvm wins before any probe; with accel=auto and no firecracker the probe decides.
  assert.equal((await selectVmm(vmm(), bad)).kind, "firecracker");
  const noFc = probes({ kvm: true, kvmBoots: false });
  const tcg = await selectVmm(vmm(), noFc);
  assert.equal(tcg.accel, "tcg");
  assert.match(tcg.warning ?? "", /TCG.*probe boot failed/);
  assert.equal(noFc.probeCalls, 1);
  const noKvm = probes({});
  const t2 = await selectVmm(vmm(), noKvm);
  assert.equal(t2.accel, "tcg");
  assert.equal(noKvm.probeCalls, 0, "no probe boot without /dev/kvm");
  assert.match(t2.warning ?? "", /\/dev\/kvm missing/);
});

void test("explicit settings are honoured or refused with what to do", async () => {
  assert.equal((await selectVmm(vmm({ kind: "qemu", accel: "tcg" }), probes({ fc: true, kvm: true }))).accel, "tcg");
  await assert.rejects(selectVmm(vmm({ kind: "firecracker" }), probes({ kvm: true })), /not installed/);
  await assert.rejects(selectVmm(vmm({ kind: "firecracker" }), probes({ fc: true })), /\/dev\/kvm/);
  await assert.rejects(selectVmm(vmm({ accel: "kvm" }), probes({})), /\/dev\/kvm is missing/);
  await assert.rejects(selectVmm(vmm(), probes({ qemu: false })), /install qemu-system-x86/);
});
