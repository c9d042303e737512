import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { HelperClient } from "../../../src/daemon/helper-client.js";
import { createLogger } from "../../../src/system/log.js";
import { launchDetached } from "../../../src/system/launch.js";
import { NotRunningError, StalePidError, type VmmRef } from "../../../src/vmm/driver.js";
import { waitForApi } from "../../../src/vmm/firecracker/api-client.js";
import { firecrackerDriver } from "../../../src/vmm/firecracker/driver.js";
import { bangerVmIdOf, listBangerVmms, parseCmdline } from "../../../src/vmm/identity.js";

const DOUBLE = fileURLToPath(new URL("../../fc-double/firecracker-double.js", import.meta.url));
const VM_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const VM_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

const dir = mkdtempSync("/tmp/bgt-vmm-adopt-");
const pids: number[] = [];
after(() => {
  for (const p of pids) {
    try { process.kill(p, "SIGKILL"); } catch { /* gone */ }
  }
  rmSync(dir, { recursive: true, force: true });
});

const noHelper: HelperClient = { socketPath: "-", call: () => Promise.reject(new Error("adoption must not need the helper")) };
const newDriver = () => firecrackerDriver({ helper: noHelper, logger: createLogger({ write: () => true }), firecrackerBin: "firecracker" });

function ref(vmId: string, name: string): VmmRef {
  return { kind: "firecracker", vmId, controlSocket: join(dir, `${name}.sock`), pidFile: join(dir, `${name}.pid`) };
}

async function startVmm(vmId: string, name: string): Promise<number> {
  const r = ref(vmId, name);
  const pid = launchDetached({ argv: [DOUBLE, "--api-sock", r.controlSocket, "--id", vmId], logFd: openSync(join(dir, `${name}.log`), "a"), pidFd: openSync(r.pidFile, "wx") });
  pids.push(pid);
  await waitForApi(r.controlSocket, 10_000);
  return pid;
}

void test("parseCmdline: NUL-separated argv, and a setproctitle-rewritten one", () => {
  assert.deepEqual(parseCmdline("qemu-system-x86_64\0-qmp\0unix:/x.sock\0"), ["qemu-system-x86_64", "-qmp", "unix:/x.sock"]);
  assert.deepEqual(parseCmdline("firecracker --api-sock /x.sock --id abc\0\0\0\0"), ["firecracker", "--api-sock", "/x.sock", "--id", "abc"]);
  assert.deepEqual(parseCmdline(""), []);
});

void test("bangerVmIdOf: the VM id of qemu's -name banger-ID or Firecracker's --id ID, nothing else", () => {
  assert.equal(bangerVmIdOf(["qemu-system-x86_64", "-name", `banger-${VM_A}`, "-M", "microvm"]), VM_A);
  assert.equal(bangerVmIdOf(["firecracker", "--api-sock", "/x.sock", "--id", VM_B]), VM_B);
  assert.equal(bangerVmIdOf(["qemu-system-x86_64", "-name", "other-vm", "-append", `banger-${VM_A}`]), undefined, "the id must be the -name value");
  assert.equal(bangerVmIdOf(["firecracker", "--id", "short"]), undefined);
  assert.equal(bangerVmIdOf(["qemu-system-x86_64", "-name", `banger-${VM_A.toUpperCase()}`]), undefined);
});

void test("listBangerVmms finds a running VMM by the id in its argv", async () => {
  const vmId = "c".repeat(32);
  const pid = await startVmm(vmId, "scan");
  assert.deepEqual((await listBangerVmms()).filter((v) => v.pid === pid), [{ pid, vmId, kind: "firecracker" }]);
  process.kill(pid, "SIGKILL");
});

void test("a restarted caller re-adopts a running VMM from its pidfile", async () => {
  const pid = await startVmm(VM_A, "a");
  const first = newDriver();
  const h1 = await first.adopt(ref(VM_A, "a"));
  assert.equal(h1.pid, pid);
  assert.equal(await first.isRunning(h1), true);
  // "Daemon restart": a brand-new driver instance with no memory of the launch.
  const second = newDriver();
  const h2 = await second.adopt(ref(VM_A, "a"));
  assert.deepEqual(h2, h1);
  const s = await second.stats(h2);
  assert.equal(s.pid, pid);
  assert.ok(s.rssBytes > 1024 * 1024, `rss ${s.rssBytes}`);
});

void test("a stale pidfile naming an unrelated process is refused", async () => {
  const sleeper = spawn("sleep", ["60"], { stdio: "ignore" });
  pids.push(sleeper.pid ?? 0);
  const r = ref(VM_A, "stale");
  writeFileSync(r.pidFile, `${sleeper.pid}\n`);
  await assert.rejects(newDriver().adopt(r), (e: unknown) => e instanceof StalePidError && /not a VMM/.test(e.message));
  assert.equal(await newDriver().isRunning({ ...r, pid: sleeper.pid ?? 0 }), false);
});

void test("a pidfile naming ANOTHER VM's VMM is refused (identity is per VM, not 'some firecracker')", async () => {
  const pidB = await startVmm(VM_B, "b");
  const r = ref(VM_A, "confused");
  writeFileSync(r.pidFile, `${pidB}\n`);
  await assert.rejects(newDriver().adopt(r), (e: unknown) => e instanceof StalePidError && /not the one of/.test(e.message));
  assert.equal(await newDriver().isRunning({ ...r, pid: pidB }), false);
});

void test("missing, garbage or dead pidfiles mean not running", async () => {
  const d = newDriver();
  await assert.rejects(d.adopt(ref(VM_A, "none")), NotRunningError);
  for (const [name, content] of [["garbage", "12abc\n"], ["neg", "-5\n"], ["empty", ""]] as const) {
    const r = ref(VM_A, name);
    writeFileSync(r.pidFile, content);
    await assert.rejects(d.adopt(r), NotRunningError, name);
  }
  const dead = spawn("true");
  await new Promise((res) => dead.on("exit", res));
  const r = ref(VM_A, "dead");
  writeFileSync(r.pidFile, `${dead.pid}\n`);
  await assert.rejects(d.adopt(r), NotRunningError);
  assert.equal(existsSync(r.pidFile), true, "adopt only reads; cleanup is the caller's decision");
});
