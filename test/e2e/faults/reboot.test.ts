import assert from "node:assert/strict";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { helperVmFiles } from "../../../src/paths/paths.js";
import { createMountNs } from "../../helpers/mount-ns.js";
import { needsCommands, requires } from "../../helpers/requirements.js";
import { snapshotHost } from "../../helpers/snapshot.js";
import { FAULT_SKIP, ok, showVm, startFaultWorld, type VmJson } from "./fault-stack.js";

/*
 * A simulated host reboot: both daemons and every VMM die at once, taps,
 * bridge and NAT go, the runtime dir is emptied, and the boot id changes (the
 * new daemon reads another one through a mount namespace). Every VM recorded
 * as running must come up `stopped`, saying why, without any recorded pid
 * being signalled, and `vm start` must bring each back with the same IP and
 * the same /root.
 */

void test("after a host reboot, VMs recorded as running are stopped with the reason and start again with the same IP and /root", { skip: requires(FAULT_SKIP, needsCommands("nsenter", "unshare")), timeout: 900_000 }, async (t) => {
  const { ns, stack, before, cleanup } = await startFaultWorld(t, "boot", 95);

  const names = ["boot-a", "boot-b"];
  for (const n of names) {
    await ok(stack, ["vm", "create", "--image", "tiny", "--name", n]);
    await ok(stack, ["vm", "exec", n, "--", "sh", "-c", `echo ${n}-data > /root/proof && sync`]);
  }
  const was = new Map<string, VmJson>();
  for (const n of names) was.set(n, await showVm(stack, n));

  // The reboot: everything that lived in memory or in the kernel is gone.
  await stack.stopDaemon();
  await stack.killHelper();
  for (const v of was.values()) process.kill(v.pid ?? 0, "SIGKILL");
  for (const v of was.values()) await ns.run(["ip", "link", "del", v.tap ?? ""]);
  await ns.run(["ip", "link", "del", "bgboot0"]);
  await ns.run(["nft", "flush", "ruleset"]);
  // Both live on tmpfs (/run): the daemon's runtime dir and the helper's VMM run dirs.
  for (const dir of [stack.runtimeDir, helperVmFiles.vmsDir(stack.helperDir)]) {
    for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true, force: true });
  }
  const newBoot = await createMountNs({ withBootId: "00000000-0000-4000-8000-00000000b007" });
  cleanup.push("mount namespace", () => newBoot.destroy());
  await stack.startHelper();
  await stack.startDaemon(newBoot);

  for (const n of names) {
    const v = await showVm(stack, n);
    assert.equal(v.state, "stopped", `${n} after the reboot`);
    assert.match(v.last_error ?? "", new RegExp(`host rebooted since this VM started; start it again with "banger vm start ${n}"`));
    assert.equal(v.ip, was.get(n)?.ip, `${n} keeps its lease while stopped`);
  }
  for (const n of names) {
    await ok(stack, ["vm", "start", n]);
    const v = await showVm(stack, n);
    assert.equal(v.state, "running");
    assert.equal(v.ip, was.get(n)?.ip, `${n}: same IP after the reboot`);
    assert.equal((await ok(stack, ["vm", "exec", n, "--", "cat", "/root/proof"])).trim(), `${n}-data`, `${n}: same /root after the reboot`);
  }
  await ok(stack, ["vm", "rm", "--force", ...names]);
  assert.deepEqual(await snapshotHost(ns, stack), before, "the host is as it was before the VMs");
});
