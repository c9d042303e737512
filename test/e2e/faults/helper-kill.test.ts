import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { snapshotHost } from "../../helpers/snapshot.js";
import type { CliResult, Stack } from "../../helpers/stack.js";
import { FAULT_SKIP, listVms, ok, startFaultWorld, type VmJson } from "./fault-stack.js";

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

/** Every VM settled, running or stopped (one asked to go is absent); error or mid-operation is still converging. */
async function converged(stack: Stack, what: string): Promise<VmJson[]> {
  let vms = await listVms(stack);
  for (let i = 0; vms.some((v) => v.state !== "running" && v.state !== "stopped"); i++) {
    assert.ok(i < 900, `${what}: VMs never converged: ${JSON.stringify(vms)}`);
    await sleep(200);
    vms = await listVms(stack);
  }
  return vms;
}

async function usable(stack: Stack, vms: readonly VmJson[]): Promise<void> {
  for (const v of vms.filter((x) => x.state === "running")) {
    assert.equal((await ok(stack, ["vm", "exec", v.name, "--", "cat", "/etc/hostname"])).trim(), v.name, `${v.name} is usable`);
  }
}

/** A CLI cut off by the helper's death: it returned (no hang), failed, and its error names the helper. */
function failedTyped(r: CliResult, what: string): void {
  assert.notEqual(r.code, 0, `${what} succeeded with the helper killed under it:\n${r.stdout}`);
  assert.match(r.stderr, /helper\.sock|bangerd-root/, `${what}: ${r.stderr}`);
}

void test("SIGKILL of bangerd-root with starts, stops and deletes in flight: each fails typed and at once, and every VM converges once it is back", { skip: FAULT_SKIP, timeout: 1_200_000 }, async (t) => {
  const { ns, stack, before } = await startFaultWorld(t, "hops", 89);
  const starts = ["s-0", "s-1"];
  const stops = ["p-0", "p-1"];
  const deletes = ["d-0", "d-1"];
  const created = await Promise.all([...starts, ...stops, ...deletes].map((n) => stack.cli(["vm", "create", "--image", "tiny", "--name", n], { timeoutMs: 600_000 })));
  for (const r of created) assert.equal(r.code, 0, r.stderr);
  await ok(stack, ["vm", "stop", "--force", ...starts]);

  // Round 1: the helper is frozen, so each operation's first request to it is in flight (accepted by
  // the socket, unanswered) when it is killed.
  const helperPid = stack.pids().helper ?? 0;
  process.kill(helperPid, "SIGSTOP");
  const t0 = Date.now();
  const sent = Promise.all([
    ...starts.map((n) => stack.cli(["vm", "start", n], { timeoutMs: 120_000 })),
    ...stops.map((n) => stack.cli(["vm", "stop", n], { timeoutMs: 120_000 })),
    ...deletes.map((n) => stack.cli(["vm", "rm", "--force", n], { timeoutMs: 120_000 })),
  ]);
  for (let i = 0; (await listVms(stack)).some((v) => v.state === "running" || v.state === "stopped"); i++) {
    assert.ok(i < 1500, `the operations never reached the daemon: ${JSON.stringify(await listVms(stack))}`);
    await sleep(20);
  }
  await sleep(500);
  await stack.killHelper();
  const answers = await sent;
  t.diagnostic(`the ${answers.length} operations answered ${Date.now() - t0} ms after they were sent`);
  for (const [i, name] of [...starts, ...stops, ...deletes].entries()) failedTyped(answers[i] ?? { code: -1, stdout: "", stderr: "" }, name);

  await stack.startHelper();
  let vms = await converged(stack, "after round 1");
  t.diagnostic(`round 1, once the helper was back: ${vms.map((v) => `${v.name}=${v.state}`).join(" ")}`);
  assert.deepEqual(vms.map((v) => v.name).sort(), [...starts, ...stops].sort(), "the deletes were finished");
  for (const n of stops) assert.equal(vms.find((v) => v.name === n)?.state, "stopped", `${n}: the stop was finished`);
  await usable(stack, vms);

  // Round 2: no freeze; the helper dies as soon as the first start has its tap, so that start is
  // at its VMM's launch (the helper may spawn it and die before answering) and others are earlier.
  const down = vms.filter((v) => v.state === "stopped").map((v) => v.name);
  const mark = stack.helperLog().length;
  const again = Promise.all(down.map((n) => stack.cli(["vm", "start", n], { timeoutMs: 600_000 })));
  for (let i = 0; !stack.helperLog().slice(mark).includes('"method":"priv.create_tap"'); i++) {
    assert.ok(i < 3000, "no start ever made its tap");
    await sleep(10);
  }
  await stack.killHelper();
  await again;
  await stack.startHelper();
  vms = await converged(stack, "after round 2");
  const recoveries = stack.daemonLog().split("\n").filter((l) => /re-adopted a VMM|cut-off launch|finished a failed operation/.test(l)).map((l) => { const j = JSON.parse(l) as { msg: string; vm?: string }; return `${j.vm ?? "?"}: ${j.msg}`; });
  t.diagnostic(`round 2, once the helper was back: ${vms.map((v) => `${v.name}=${v.state}${v.pid !== null ? "+vmm" : ""}`).join(" ")}; recoveries: ${recoveries.join("; ") || "none"}`);
  await usable(stack, vms);
  // A stopped VM holds no VMM: none was left running by a cut-off launch.
  for (const v of vms.filter((x) => x.state === "stopped")) assert.equal(v.pid, null, `${v.name} is stopped and has no VMM`);
  // And each stopped one starts now, with the helper up.
  const stopped = vms.filter((v) => v.state === "stopped").map((v) => v.name);
  if (stopped.length > 0) await ok(stack, ["vm", "start", ...stopped]);
  await usable(stack, await listVms(stack));

  await ok(stack, ["vm", "rm", "--force", ...vms.map((v) => v.name)]);
  assert.deepEqual(await snapshotHost(ns, stack), before, "nothing is left");
});
