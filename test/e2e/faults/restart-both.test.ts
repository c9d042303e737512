import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { queryA } from "../../helpers/dns-query.js";
import { editHandles } from "../../helpers/edit-handles.js";
import { snapshotHost } from "../../helpers/snapshot.js";
import { FAULT_SKIP, listVms, ok, startFaultWorld } from "./fault-stack.js";

/*
 * Both banger processes die (SIGKILL, no shutdown code) with 8 VMs running and
 * come back: every guest must survive with the same VMM pid, be reachable by
 * exec, have its DNS name again, and still be stoppable and deletable by the
 * restarted helper; afterwards nothing is left. Two records are also wrong
 * when the daemon comes back: one lost its pid, one names an unrelated live
 * process; the VMMs are found by identity and the unrelated one is untouched.
 */

const COUNT = 8;

void test(`SIGKILL of both bangerd and bangerd-root with ${COUNT} VMs running: all survive with the same VMM pids (also with one recorded pid lost and one naming an unrelated process), exec and DNS work, and they still stop and delete`, { skip: FAULT_SKIP, timeout: 1_200_000 }, async (t) => {
  const { ns, stack, before, user, cleanup } = await startFaultWorld(t, "both", 96);
  const names = Array.from({ length: COUNT }, (_, i) => `both-${i}`);
  const created = await Promise.all(names.map((n) => stack.cli(["vm", "create", "--image", "tiny", "--name", n], { timeoutMs: 900_000 })));
  for (const [i, r] of created.entries()) assert.equal(r.code, 0, `create ${names[i] ?? "?"}: ${r.stderr}`);
  const was = await listVms(stack);

  await stack.killDaemon();
  await stack.killHelper();
  const bystander = spawn("sleep", ["600"], { stdio: "ignore" });
  cleanup.push("bystander", () => { bystander.kill("SIGKILL"); return Promise.resolve(); });
  editHandles(stack.stateDir, user, { "both-1": { pid: null }, "both-2": { pid: bystander.pid ?? 0 } });
  await stack.startHelper();
  await stack.startDaemon();

  const now = await listVms(stack);
  const dns = (JSON.parse(await ok(stack, ["system", "status", "--json"])) as { dns: { address: string } }).dns.address;
  for (const v of was) {
    const same = now.find((x) => x.name === v.name);
    assert.equal(same?.state, "running", v.name);
    assert.equal(same?.pid, v.pid, `${v.name}: the same VMM process survived both restarts`);
    assert.equal((await ok(stack, ["vm", "exec", v.name, "--", "cat", "/etc/hostname"])).trim(), v.name);
    assert.deepEqual(await queryA(ns, dns, `${v.name}.vm`), { rcode: 0, ips: [v.ip] }, `${v.name}.vm resolves again`);
  }
  assert.equal(bystander.exitCode, null, "the unrelated process a wrong record named was not signalled");
  assert.equal(bystander.signalCode, null);
  // The restarted helper still knows these VMMs as its own: a graceful stop and a forced delete both work.
  await ok(stack, ["vm", "stop", names[0] ?? ""]);
  await ok(stack, ["vm", "rm", "--force", ...names]);
  assert.deepEqual(await snapshotHost(ns, stack), before, "nothing is left");
});
