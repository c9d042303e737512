import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { snapshotHost } from "../../helpers/snapshot.js";
import { FAULT_SKIP, listVms, ok, startFaultWorld } from "./fault-stack.js";

/*
 * SIGKILL of bangerd while 8 VMs are being created, at points spread over the
 * create's named steps. After a restart every VM must be running and usable,
 * or gone, and once they are deleted the host must be exactly as it was: no
 * tap, NAT rule, loop, VMM, runtime file or lease left.
 */

const PARALLEL = 8;

/**
 * A create's named steps (src/daemon/vm/boot-steps.ts), grouped by where they run. Each run kills
 * once in each group, right after the first operation finished a step picked from it (the other
 * seven are then anywhere around it), so runs together cover every step. The pick is printed;
 * BANGER_FAULT_STEPS=early,middle,late repeats one.
 */
const STEP_GROUPS: readonly (readonly string[])[] = [
  ["lease", "host-key", "clone-root", "work-disk", "network"],
  ["inject-files", "pin-host-key", "launch-vmm", "nat"],
  ["wait-ssh", "publish-dns"],
];

function pickSteps(): string[] {
  const forced = process.env["BANGER_FAULT_STEPS"]?.split(",");
  if (forced !== undefined) {
    assert.equal(forced.length, STEP_GROUPS.length, "BANGER_FAULT_STEPS names one step per group");
    forced.forEach((s, i) => { assert.ok(STEP_GROUPS[i]?.includes(s), `${s} is a step of group ${i}: ${STEP_GROUPS[i]?.join(", ")}`); });
    return forced;
  }
  return STEP_GROUPS.map((g) => g[Math.floor(Math.random() * g.length)] ?? "");
}

/** Whether the daemon log, from `offset` on, says some operation finished `step`. */
function stepDone(log: string, offset: number, step: string): boolean {
  return log.slice(offset).split("\n").some((l) => l.includes('"msg":"step done"') && l.includes(`"step":"${step}"`));
}

/** Each operation's last finished step, from the daemon log after `offset`: where the kill caught it. */
function lastSteps(log: string, offset: number): string {
  const last = new Map<string, string>();
  for (const l of log.slice(offset).split("\n")) {
    if (!l.includes('"msg":"step done"')) continue;
    const { op_id: op, step } = JSON.parse(l) as { op_id?: string; step?: string };
    if (op !== undefined && step !== undefined) last.set(op, step);
  }
  return [...last.values()].sort().join(" ") || "none";
}

const STEPS = pickSteps();

void test(`SIGKILL of bangerd during ${PARALLEL} parallel creates, right after a create finished ${STEPS.join(" / ")}: after a restart each VM is running and usable or gone; nothing leaks`, { skip: FAULT_SKIP, timeout: 1_200_000 }, async (t) => {
  const { ns, stack, before } = await startFaultWorld(t, "kill", 94);
  t.diagnostic(`kill points: BANGER_FAULT_STEPS=${STEPS.join(",")}`);

  for (const [round, step] of STEPS.entries()) {
    const names = Array.from({ length: PARALLEL }, (_, i) => `k${round}-${i}`);
    const offset = stack.daemonLog().length;
    // --no-wait: each CLI returns once its operation exists, so all 8 are in flight in the daemon.
    const sent = Promise.all(names.map((n) => stack.cli(["vm", "create", "--image", "tiny", "--name", n, "--no-wait"])));
    for (let i = 0; !stepDone(stack.daemonLog(), offset, step); i++) {
      assert.ok(i < 60_000, `no create finished ${step}`);
      await sleep(5);
    }
    await stack.killDaemon();
    const seen = lastSteps(stack.daemonLog(), offset);
    await sent; // CLIs cut off by the kill fail; that is the point
    await stack.startDaemon();

    // Reconcile runs at start-up; wait until no VM is mid-operation.
    let vms = await listVms(stack);
    for (let i = 0; vms.some((v) => v.state !== "running" && v.state !== "stopped"); i++) {
      assert.ok(i < 600, `VMs still settling: ${JSON.stringify(vms)}`);
      await sleep(200);
      vms = await listVms(stack);
    }
    const states = vms.map((v) => `${v.name}=${v.state}`).join(" ");
    t.diagnostic(`killed after a ${step} (each create's last finished step: ${seen}): ${vms.length} of ${PARALLEL} VMs kept (${states || "none"})`);
    for (const v of vms) {
      assert.ok(names.includes(v.name), `unexpected VM ${v.name}`);
      if (v.state === "running") {
        assert.equal((await ok(stack, ["vm", "exec", v.name, "--", "cat", "/etc/hostname"])).trim(), v.name, `${v.name} is usable`);
      }
    }
    if (vms.length > 0) await ok(stack, ["vm", "rm", "--force", ...vms.map((v) => v.name)]);
    const after = await snapshotHost(ns, stack);
    assert.deepEqual(after, before, `after the kill after a ${step} and the deletes, the host is as it was`);
  }
});
