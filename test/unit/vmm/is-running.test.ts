import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import type { HelperClient } from "../../../src/daemon/helper-client.js";
import { createLogger } from "../../../src/system/log.js";
import { isRunning } from "../../../src/vmm/control.js";
import { isVmmComm } from "../../../src/vmm/identity.js";

const VM = "cccccccccccccccccccccccccccccccc";
const root = mkdtempSync("/tmp/bgt-proc-");
after(() => { rmSync(root, { recursive: true, force: true }); });
const deps = { helper: { socketPath: "-", call: () => Promise.reject(new Error("no helper")) } as HelperClient, logger: createLogger({ write: () => true }), procRoot: root };

function proc(pid: number, fields: { state?: string; start?: number; cmdline?: string[] | null }): void {
  mkdirSync(join(root, String(pid)), { recursive: true });
  // Fields 3.. of /proc/PID/stat; starttime is field 22.
  const rest = [fields.state ?? "S", ...Array.from({ length: 18 }, () => "0"), String(fields.start ?? 1000), "0", "0"];
  writeFileSync(join(root, String(pid), "stat"), `${pid} (qemu-system-x86) ${rest.join(" ")}\n`);
  if (fields.cmdline === null) rmSync(join(root, String(pid), "cmdline"), { force: true });
  else if (fields.cmdline !== undefined) writeFileSync(join(root, String(pid), "cmdline"), `${fields.cmdline.join("\0")}\0`);
}

void test("isRunning: checks identity once per process, then only that the pid still has the same start time", () => {
  const handle = { kind: "qemu" as const, vmId: VM, pid: 4100, controlSocket: "/x", pidFile: "/y" };
  proc(4100, { cmdline: ["/usr/bin/qemu-system-x86_64", "-name", `banger-${VM}`] });
  assert.equal(isRunning(deps, handle), true);
  // The cmdline is not read again while the pid is the same process...
  proc(4100, { cmdline: null });
  assert.equal(isRunning(deps, handle), true);
  // ...but a pid reused by another process (new start time) is checked in full, and is not the VMM.
  proc(4100, { start: 2000, cmdline: ["/usr/bin/sleep", "100"] });
  assert.equal(isRunning(deps, handle), false);
  // A zombie or a missing pid is not running.
  proc(4100, { start: 3000, cmdline: ["/usr/bin/qemu-system-x86_64", "-name", `banger-${VM}`] });
  assert.equal(isRunning(deps, handle), true);
  proc(4100, { state: "Z", start: 3000 });
  assert.equal(isRunning(deps, handle), false);
  rmSync(join(root, "4100"), { recursive: true });
  assert.equal(isRunning(deps, handle), false);
  // Another VM's VMM is not this one's.
  proc(4101, { cmdline: ["/usr/bin/qemu-system-x86_64", "-name", "banger-dddddddddddddddddddddddddddddddd"] });
  assert.equal(isRunning(deps, { ...handle, pid: 4101 }), false);
});

void test("isVmmComm: a VMM's comm (cut to 15 bytes, or a retitled one) passes; anything else does not", () => {
  const comms = ["qemu-system-x86\n", "firecracker\n", "firecracker --a\n", "sleep\n", "qemu-system-arm\n", ""];
  assert.deepEqual(comms.map(isVmmComm), [true, true, true, false, false, false]);
});
