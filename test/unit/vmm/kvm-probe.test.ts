import assert from "node:assert/strict";
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { privProbeQemuKvm } from "../../../src/rpc/priv/vmm.js";
import { vmmMethods } from "../../../src/roothelper/methods/vmm.js";
import { FakeRunner, systemRunner, type Runner } from "../../../src/system/runner.js";
import { helperKvmProbe } from "../../../src/vmm/select.js";
import { testHelperEnv } from "../../helpers/helper-env.js";
import { inProcessHelper } from "../../helpers/in-process-helper.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";

const base = mkdtempSync("/tmp/bgt-vmm-kvm-");
const stateDir = join(base, "state");
mkdirSync(stateDir);
const kernel = join(stateDir, "vmlinuz");
after(() => { rmSync(base, { recursive: true, force: true }); });

function helperWith(runner: Runner) {
  return inProcessHelper(vmmMethods(testHelperEnv({ stateDir, helperDir: join(base, "run"), runner })));
}

void test("kvm probe: argv and verdicts (fake qemu)", async () => {
  copyFileSync("/proc/self/cmdline", kernel);
  chownSync(kernel, 1000, 1000);
  const booted = new FakeRunner(() => ({ stdout: Buffer.from("Linux version 6.1\nVFS: Unable to mount root fs\nKernel panic - not syncing: VFS\n") }));
  const h = helperWith(booted);
  assert.equal(await helperKvmProbe(h, kernel, "op-000000000001")(), true);
  assert.deepEqual(booted.argvs()[0]?.slice(0, 6), ["qemu-system-x86_64", "-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on", "-accel", "kvm", "-cpu"]);
  assert.ok(booted.argvs()[0]?.includes("1000:1000"), "the probe drops to the owner too");
  const hung = helperWith(new FakeRunner(() => new Error("killed by SIGKILL")));
  const r = await hung.call(privProbeQemuKvm, { kernel_path: kernel, timeout_ms: 1000 }, "op-000000000001");
  assert.equal(r.ok, false);
  assert.match(r.detail, /did not boot under KVM/);
  await assert.rejects(hung.call(privProbeQemuKvm, { kernel_path: "/boot/vmlinuz", timeout_ms: 1000 }, "op-000000000001"), /kernel_path/);
  await assert.rejects(hung.call(privProbeQemuKvm, { kernel_path: kernel, timeout_ms: 10 ** 7 }, "op-000000000001"), /timeout_ms/);
});

const hostKernel = existsSync("/boot") ? readdirSync("/boot").find((f) => f.startsWith("vmlinuz-")) : undefined;
void test("kvm probe on this host (real qemu): a verdict either way, and no KVM means not usable", { skip: requires(needsRoot(), needsCommands("qemu-system-x86_64"), hostKernel === undefined ? "needs a kernel in /boot (apt-get install linux-image-cloud-amd64; .ci/run does)" : false) }, async (t) => {
  copyFileSync(join("/boot", hostKernel ?? ""), kernel);
  chownSync(kernel, 1000, 1000);
  const r = await helperWith(systemRunner).call(privProbeQemuKvm, { kernel_path: kernel, timeout_ms: 20_000 }, "op-000000000001");
  t.diagnostic(`kvm probe: ok=${r.ok} in ${r.elapsed_ms} ms: ${r.detail}`);
  assert.equal(typeof r.ok, "boolean");
  // Hosts of this kind may have no /dev/kvm at all: then the probe must say no, not hang or pass.
  if (!existsSync("/dev/kvm")) assert.equal(r.ok, false, r.detail);
});
