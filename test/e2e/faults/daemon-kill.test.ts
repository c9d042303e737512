import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { snapshotHost } from "../../helpers/snapshot.js";
import { FAULT_SKIP, listVms, ok, startFaultWorld, type VmJson } from "./fault-stack.js";

/*
 * SIGKILL of bangerd while 8 VMs are being created, at points spread over the
 * create's steps (before the first VMM is spawned, while VMMs are being
 * launched, while guests boot). After a restart every VM must be running and
 * usable, or gone, and once they are deleted the host must be exactly as it
 * was: no tap, NAT rule, loop, VMM, runtime file or lease left.
 */

const PARALLEL = 8;

/**
 * When to kill, spread over a create's steps: while the CLIs are still connecting and the first
 * steps run; once the first VMM has been spawned (others are cloning disks or launching); once
 * the first guest is up (others still boot).
 */
const KILL_POINTS: readonly { readonly what: string; readonly reached: (vms: readonly VmJson[]) => boolean }[] = [
  { what: "150 ms after the creates were sent", reached: () => true },
  { what: "the first VMM was spawned", reached: (vms) => vms.some((v) => v.pid !== null) },
  { what: "the first guest was up", reached: (vms) => vms.some((v) => v.state === "running") },
];

void test(`SIGKILL of bangerd during ${PARALLEL} parallel creates (${KILL_POINTS.map((k) => k.what).join("; ")}): after a restart each VM is running and usable or gone; nothing leaks`, { skip: FAULT_SKIP, timeout: 1_200_000 }, async (t) => {
  const { ns, stack, before } = await startFaultWorld(t, "kill", 94);

  for (const [round, point] of KILL_POINTS.entries()) {
    const names = Array.from({ length: PARALLEL }, (_, i) => `k${round}-${i}`);
    // --no-wait: each CLI returns once its operation exists, so all 8 are in flight in the daemon.
    const sent = Promise.all(names.map((n) => stack.cli(["vm", "create", "--image", "tiny", "--name", n, "--no-wait"])));
    await sleep(150);
    for (let i = 0; !point.reached(await listVms(stack)); i++) {
      assert.ok(i < 3000, `never reached: ${point.what}`);
      await sleep(20);
    }
    const seen = (await listVms(stack)).map((v) => `${v.name}=${v.state}${v.pid !== null ? "+vmm" : ""}`).join(" ");
    await stack.killDaemon();
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
    t.diagnostic(`killed when ${point.what} (${seen || "no VM yet"}): ${vms.length} of ${PARALLEL} VMs kept (${states || "none"})`);
    for (const v of vms) {
      assert.ok(names.includes(v.name), `unexpected VM ${v.name}`);
      if (v.state === "running") {
        assert.equal((await ok(stack, ["vm", "exec", v.name, "--", "cat", "/etc/hostname"])).trim(), v.name, `${v.name} is usable`);
      }
    }
    if (vms.length > 0) await ok(stack, ["vm", "rm", "--force", ...vms.map((v) => v.name)]);
    const after = await snapshotHost(ns, stack);
    assert.deepEqual(after, before, `after the kill when ${point.what} and the deletes, the host is as it was`);
  }
});
