import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { test } from "node:test";
import { state } from "../../../src/paths/paths.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { freshOpId, makeHarness, type Harness } from "./fakes.js";

const STRAY_ID = "ab".repeat(16);

async function vm(h: Harness, name: string): Promise<string> {
  const ref = await h.service.create({ name }, freshOpId());
  await h.service.idle();
  return ref.vm.id;
}

void test("start-up reports and removes a VMM, tap and NAT guest no VM claims, keeps an unclaimed VM dir, and touches nothing a VM holds", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const kept = await vm(h, "kept");
  await vm(h, "parked");
  await h.service.stop("parked", true, freshOpId());
  h.host.strayVmms.push({ pid: 6001, vmId: STRAY_ID, kind: "qemu" });
  h.host.strayTaps.add("tap-fc-abababab");
  h.host.strayNat.push({ ip: "172.16.90.77", tap: "tap-fc-abababab" });
  h.host.strayPorts.push({ ip: "172.16.90.77", tap: "tap-fc-abababab" });
  h.host.strayEgress.push({ ip: "172.16.90.78", tap: "tap-fc-abababac" });
  // What the running VM holds is claimed: listed by the helper, left alone.
  const keptIp = h.vms.getById(kept)?.handles.ip ?? "";
  h.host.strayEgress.push({ ip: keptIp, tap: "tap-fc-kept" });
  mkdirSync(state.vmDir(h.dir, STRAY_ID), { recursive: true });
  h.host.calls.length = 0;

  const r = await h.service.reconcile(freshOpId());
  assert.deepEqual(r.adopted, ["kept"]);
  assert.deepEqual(r.orphans.map((o) => [o.kind, o.what, o.action]), [
    ["vmm", `pid 6001 (VM ${STRAY_ID})`, "killed"],
    ["nat", "172.16.90.77 (tap-fc-abababab)", "removed"],
    ["tap", "tap-fc-abababab", "deleted"],
    ["ports", "172.16.90.77 (tap-fc-abababab)", "removed"],
    ["egress", "172.16.90.78 (tap-fc-abababac)", "removed"],
    ["vm-dir", state.vmDir(h.dir, STRAY_ID), "kept"],
  ]);
  assert.deepEqual(r.unchecked, []);
  assert.equal(h.host.strayVmms.length + h.host.strayTaps.size + h.host.strayNat.length + h.host.strayPorts.length, 0, "every orphan is gone");
  assert.deepEqual(h.host.strayEgress.map((g) => g.ip), [keptIp], "the running VM's registration stays");
  // A VM still using NAT: only the stray guest goes, never the whole table.
  assert.ok(!h.host.calls.includes("network.removeAllNat"), h.host.calls.join(", "));
  assert.ok(h.host.live.has(`tap:${kept}`) && h.host.live.has(`nat:${kept}`) && h.host.live.has(`vmm:${kept}`), "the running VM keeps its VMM, tap and NAT");
});

void test("start-up with no VM needing NAT removes banger's NAT whole, an empty table included", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await vm(h, "parked");
  await h.service.stop("parked", true, freshOpId());
  h.host.emptyNatTable = true;
  const r = await h.service.reconcile(freshOpId());
  assert.deepEqual(r.orphans.map((o) => [o.kind, o.what, o.action]), [["nat", "banger's NAT table (no guest in it)", "removed"]]);
  assert.ok(h.host.calls.includes("network.removeAllNat"));
  assert.equal(h.host.emptyNatTable, false);
});

void test("an orphan the helper refuses to kill is reported as left with why, and a helper that is down leaves the network unchecked; start-up goes on", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  h.host.strayVmms.push({ pid: 6002, vmId: STRAY_ID, kind: "qemu" });
  h.host.failWith.set("vmm.killOrphan", new RpcError("bad_params", "pid: process 6002 is not a VMM this helper launched"));
  h.host.failWith.set("network.hostView", new RpcError("unavailable", "nothing is listening on /run/banger-root/helper.sock"));
  const r = await h.service.reconcile(freshOpId());
  assert.deepEqual(r.orphans, [{ kind: "vmm", what: `pid 6002 (VM ${STRAY_ID})`, action: "left", detail: "pid: process 6002 is not a VMM this helper launched" }]);
  assert.equal(h.host.strayVmms.length, 1, "not killed");
  assert.equal(r.unchecked.length, 1);
  assert.match(r.unchecked[0] ?? "", /^host network \(taps, NAT\): nothing is listening/);
});
