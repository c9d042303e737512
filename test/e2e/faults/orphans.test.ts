import assert from "node:assert/strict";
import { chownSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import type { SystemInfo } from "../../../src/rpc/daemon/system.js";
import { privCreateTap, privEnsureNat, privNetworkStatus } from "../../../src/rpc/priv/network.js";
import { callMethod } from "../../../src/rpc/unix-client.js";
import { snapshotHost } from "../../helpers/snapshot.js";
import { FAULT_SKIP, listVms, ok, showVm, startFaultWorld } from "./fault-stack.js";

/*
 * What no VM claims is reported and removed when the daemon starts: a VMM whose VM record was lost
 * (removed from the database while the guest ran: its tap and NAT rule go with it), and a tap and a
 * NAT rule planted through the helper for a VM that never existed. The helper is restarted too, so
 * it kills the orphan on the strength of its launch record alone. A VM that is on record keeps its
 * VMM (same pid), and once it is deleted the host is exactly as before.
 */

const ORPHAN_TAP = "tap-fc-0abc0def";
const ORPHAN_IP = "172.16.99.200";

function vmId(stateDir: string, name: string): string {
  const db = new Database(join(stateDir, "banger.db"), { readonly: true });
  try {
    const row = db.prepare("SELECT id FROM vms WHERE name = ?").get(name) as { id: string } | undefined;
    assert.ok(row !== undefined, `no VM ${name} on record`);
    return row.id;
  } finally {
    db.close();
  }
}

/** Forget a VM as a lost or restored-from-backup database would: no record, no lease, no operations. */
function dropRecord(stateDir: string, owner: { uid: number; gid: number }, id: string): void {
  const db = new Database(join(stateDir, "banger.db"));
  db.prepare("DELETE FROM leases WHERE vm_id = ?").run(id);
  db.prepare("DELETE FROM vms WHERE id = ?").run(id);
  db.close();
  // Written as root: whatever SQLite left beside the database must stay the owner's.
  for (const f of readdirSync(stateDir).filter((f) => f.startsWith("banger.db"))) chownSync(join(stateDir, f), owner.uid, owner.gid);
}

/** Exited: no such process, or a zombie its parent (the helper) has not reaped yet. */
function gone(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    return st.slice(st.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

void test("daemon start reports and removes an orphan VMM (its record lost) with its tap and NAT, and a planted tap and NAT rule; the VM on record survives; nothing leaks", { skip: FAULT_SKIP, timeout: 900_000 }, async (t) => {
  const { user, ns, stack, before } = await startFaultWorld(t, "orph", 99);
  const helperSocket = stack.env["BANGER_HELPER_SOCKET"] ?? "";
  await ok(stack, ["vm", "create", "--image", "tiny", "--name", "o-keep"]);
  await ok(stack, ["vm", "create", "--image", "tiny", "--name", "o-lost"]);
  const keep = await showVm(stack, "o-keep");
  const lost = await showVm(stack, "o-lost");
  const lostId = vmId(stack.stateDir, "o-lost");
  assert.ok(lost.pid !== null && lost.tap !== null && lost.ip !== null);
  await callMethod(helperSocket, privCreateTap, { tap_name: ORPHAN_TAP });
  await callMethod(helperSocket, privEnsureNat, { guest_ip: ORPHAN_IP, tap: ORPHAN_TAP, enable: true });

  await stack.stopDaemon();
  dropRecord(stack.stateDir, user, lostId);
  // A restarted helper knows the orphan as its own only by the launch record it wrote: that is what it must go by.
  await stack.killHelper();
  await stack.startHelper();
  await stack.startDaemon();

  const vms = await listVms(stack); // answers once start-up is settled
  assert.deepEqual(vms.map((v) => [v.name, v.state, v.pid]), [["o-keep", "running", keep.pid]], "the VM on record kept its VMM");
  const startup = (JSON.parse(await ok(stack, ["system", "status", "--json"])) as SystemInfo).startup;
  assert.ok(startup?.done === true, JSON.stringify(startup));
  t.diagnostic(`orphans: ${JSON.stringify(startup.orphans)}`);
  const lostDir = join(stack.stateDir, "vms", lostId);
  assert.deepEqual(startup.orphans.map((o) => [o.kind, o.what, o.action]).sort(), [
    // Every guest has an egress registration (the host guard applies under any policy): the lost VM's goes too.
    ["egress", `${lost.ip} (${lost.tap})`, "removed"],
    ["nat", `${ORPHAN_IP} (${ORPHAN_TAP})`, "removed"],
    ["nat", `${lost.ip} (${lost.tap})`, "removed"],
    ["tap", ORPHAN_TAP, "deleted"],
    ["tap", lost.tap, "deleted"],
    ["vm-dir", lostDir, "kept"],
    ["vmm", `pid ${lost.pid} (VM ${lostId})`, "killed"],
  ].sort());
  assert.deepEqual(startup.unchecked, []);
  assert.match(await ok(stack, ["system", "status"]), /orphan: +vmm pid \d+ \(VM [0-9a-f]{32}\): killed/);
  assert.ok(gone(lost.pid), `the orphan VMM (pid ${lost.pid}) is gone`);
  const net = await callMethod(helperSocket, privNetworkStatus, {});
  assert.deepEqual(net.taps, [keep.tap], "only the VM on record has a tap");
  assert.deepEqual(net.nat.guests.map((g) => g.ip), [keep.ip], "only the VM on record is NATed");
  assert.equal((await ok(stack, ["vm", "exec", "o-keep", "--", "cat", "/etc/hostname"])).trim(), "o-keep");
  assert.match(stack.daemonLog(), /"msg":"orphan found at start-up","proc":"bangerd","op_id":"op-startup0","kind":"vmm"/);

  // The kept dir is the test's to remove: the daemon never deletes disks nobody asked it to.
  rmSync(lostDir, { recursive: true, force: true });
  await ok(stack, ["vm", "rm", "--force", "o-keep"]);
  assert.deepEqual(await snapshotHost(ns, stack), before, "nothing is left");
});
