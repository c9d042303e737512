import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseEgress } from "../../../src/model/egress.js";
import { openDatabase } from "../../../src/state/database.js";
import { egressByVm, getEgress, setEgress, UNRESTRICTED } from "../../../src/state/egress.js";
import { VmRepository } from "../../../src/state/vms.js";

void test("egress records: per VM and all at once agree; a VM without a row is unrestricted; gone with the VM", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-egress-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const db = openDatabase(join(dir, "banger.db"));
  t.after(() => { db.close(); });
  db.prepare("INSERT INTO images (name, source, kernel_path, rootfs_path, size_bytes, created_at) VALUES ('tiny', 'busybox', '/k', '/r', 1, 'now')").run();
  const vms = new VmRepository(db);
  const ids = ["a", "b", "c"].map((c, i) => vms.insert({ id: c.repeat(32), name: `vm${i}`, image: "tiny", vcpus: 1, memoryMib: 128, diskGib: 1, vmm: "qemu" }).id);
  const allow = parseEgress("allow=example.com,10.0.0.0/8");
  if ("error" in allow) throw new Error(allow.error);
  setEgress(db, ids[0] ?? "", { policy: allow, isolate: true });
  setEgress(db, ids[1] ?? "", { policy: { mode: "none" }, isolate: false });
  const bulk = egressByVm(db);
  for (const id of ids) assert.deepEqual(bulk(id), getEgress(db, id));
  assert.deepEqual(bulk(ids[2] ?? ""), UNRESTRICTED);
  assert.deepEqual(bulk(ids[0] ?? ""), { policy: allow, isolate: true });
  vms.delete(ids[0] ?? "");
  assert.deepEqual(egressByVm(db)(ids[0] ?? ""), UNRESTRICTED);
});
