import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { snapshotHost } from "../../helpers/snapshot.js";
import { FAULT_SKIP, listVms, ok, startFaultWorld } from "./fault-stack.js";

/*
 * SIGKILL of bangerd-root while 8 VMs are being created, and while it is down
 * a stop is asked for. Nothing may hang: requests that needed the helper fail
 * at once with a typed error. Once the helper is back, every VM converges by
 * itself to running and usable, or gone (or stopped, the one asked to stop),
 * and after the deletes nothing is left.
 */

const PARALLEL = 8;

void test(`SIGKILL of bangerd-root during ${PARALLEL} parallel creates: typed errors, no hang, and every VM converges once it is back`, { skip: FAULT_SKIP, timeout: 1_200_000 }, async (t) => {
  const { ns, stack, before } = await startFaultWorld(t, "help", 97);
  const names = Array.from({ length: PARALLEL }, (_, i) => `h-${i}`);
  await ok(stack, ["vm", "create", "--image", "tiny", "--name", "h-stop"]);

  const sent = Promise.all(names.map((n) => stack.cli(["vm", "create", "--image", "tiny", "--name", n, "--no-wait"])));
  for (let i = 0; !(await listVms(stack)).some((v) => v.name !== "h-stop" && v.pid !== null); i++) {
    assert.ok(i < 3000, "no VMM was ever spawned");
    await sleep(20);
  }
  await stack.killHelper();
  await sent;

  // While the helper is down, a request that needs it fails at once, typed, and names the helper.
  const t0 = Date.now();
  const stop = await stack.cli(["vm", "stop", "h-stop"], { timeoutMs: 60_000 });
  assert.notEqual(stop.code, 0);
  assert.match(stop.stderr, /helper\.sock|bangerd-root/, stop.stderr);
  assert.ok(Date.now() - t0 < 15_000, `vm stop took ${Date.now() - t0} ms with the helper down`);

  await stack.startHelper();
  let vms = await listVms(stack);
  for (let i = 0; vms.some((v) => v.state !== "running" && v.state !== "stopped"); i++) {
    assert.ok(i < 900, `VMs never converged: ${JSON.stringify(vms)}`);
    await sleep(200);
    vms = await listVms(stack);
  }
  t.diagnostic(`after the helper was back: ${vms.map((v) => `${v.name}=${v.state}`).join(" ")}`);
  assert.equal(vms.find((v) => v.name === "h-stop")?.state, "stopped", "the stop asked for while the helper was down was finished");
  for (const v of vms.filter((x) => x.state === "running")) {
    assert.equal((await ok(stack, ["vm", "exec", v.name, "--", "cat", "/etc/hostname"])).trim(), v.name, `${v.name} is usable`);
  }
  await ok(stack, ["vm", "rm", "--force", ...vms.map((v) => v.name)]);
  assert.deepEqual(await snapshotHost(ns, stack), before, "nothing is left");
});
