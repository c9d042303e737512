import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Worker } from "node:worker_threads";
import { allocateLease, getLease, macForVm, releaseLease, tapForVm, type LeaseRow } from "../../../src/daemon/network/lease.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { openDatabase, type Db } from "../../../src/state/database.js";

function freshDb(t: { after: (fn: () => void) => void }): { db: Db; path: string } {
  const dir = mkdtempSync(join(tmpdir(), "bgt-net-lease-"));
  const path = join(dir, "banger.db");
  const db = openDatabase(path);
  t.after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  db.prepare("INSERT INTO images (name, source, kernel_path, rootfs_path, size_bytes, created_at) VALUES ('img', 'test', '/k', '/r', 1, 'now')").run();
  return { db, path };
}

function addVm(db: Db, id = randomBytes(16).toString("hex")): string {
  db.prepare("INSERT INTO vms (id, name, image, vcpus, memory_mib, disk_gib, state, vmm, created_at, updated_at) VALUES (?, ?, 'img', 1, 128, 1, 'stopped', 'qemu', 'now', 'now')").run(id, `vm-${id.slice(0, 12)}`);
  return id;
}

void test("MAC and tap derive from the VM id: locally administered unicast MAC, tap-fc-<id8>", () => {
  const id = "0123456789abcdef0123456789abcdef";
  assert.equal(macForVm(id), "02:01:23:45:67:89");
  assert.equal(tapForVm(id), "tap-fc-01234567");
  const first = parseInt(macForVm(id).slice(0, 2), 16);
  assert.equal(first & 0b10, 0b10, "locally administered bit set");
  assert.equal(first & 0b1, 0, "unicast");
  assert.throws(() => macForVm("../etc"), RpcError);
  assert.throws(() => tapForVm("0123456789ABCDEF0123456789ABCDEF"), RpcError);
});

void test("first lease skips network and bridge addresses; a VM gets its own lease back (stop/start keeps the IP)", (t) => {
  const { db } = freshDb(t);
  const a = addVm(db);
  const b = addVm(db);
  const la = allocateLease(db, a, { cidr: "172.16.90.0/24" });
  assert.equal(la.ip, "172.16.90.2");
  assert.equal(la.cid, 3);
  assert.equal(la.tap, tapForVm(a));
  assert.equal(la.mac, macForVm(a));
  const lb = allocateLease(db, b, { cidr: "172.16.90.0/24" });
  assert.equal(lb.ip, "172.16.90.3");
  assert.equal(lb.cid, 4);
  // "stop" and "start": the lease row is untouched, allocation returns it unchanged.
  assert.deepEqual(allocateLease(db, a, { cidr: "172.16.90.0/24" }), la);
  assert.deepEqual(getLease(db, a), la);
});

void test("release frees the address for others; re-leasing the lowest free address is stable", (t) => {
  const { db } = freshDb(t);
  const [a, b, c] = [addVm(db), addVm(db), addVm(db)];
  const la = allocateLease(db, a, { cidr: "10.9.0.0/24" });
  allocateLease(db, b, { cidr: "10.9.0.0/24" });
  assert.equal(releaseLease(db, a), true);
  assert.equal(releaseLease(db, a), false, "release is idempotent");
  assert.equal(getLease(db, a), undefined);
  const again = allocateLease(db, a, { cidr: "10.9.0.0/24" });
  assert.deepEqual(again, la, "same VM, same (lowest free) address, same MAC/tap/CID");
  const lc = allocateLease(db, c, { cidr: "10.9.0.0/24" });
  assert.equal(lc.ip, "10.9.0.4");
});

void test("deleting the VM row removes its lease (ON DELETE CASCADE)", (t) => {
  const { db } = freshDb(t);
  const a = addVm(db);
  allocateLease(db, a, { cidr: "10.9.0.0/24" });
  db.prepare("DELETE FROM vms WHERE id = ?").run(a);
  assert.equal(getLease(db, a), undefined);
});

void test("exhaustion gives a clear conflict error and allocates nothing", (t) => {
  const { db } = freshDb(t);
  // /29: network .0, bridge .1, broadcast .7 -> guests .2-.6 = 5 addresses.
  const ids = Array.from({ length: 6 }, () => addVm(db));
  const got = ids.slice(0, 5).map((id) => allocateLease(db, id, { cidr: "10.1.2.0/29" }).ip);
  assert.deepEqual(got, ["10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]);
  assert.throws(() => allocateLease(db, ids[5] ?? "", { cidr: "10.1.2.0/29" }), (e: unknown) => e instanceof RpcError && e.code === "conflict" && /no free guest address left in 10\.1\.2\.0\/29.*network\.cidr/.test(e.message));
  assert.equal(getLease(db, ids[5] ?? ""), undefined);
});

void test("tap pool: leases take free tap-pool-N first, then fall back to tap-fc-<id8>", (t) => {
  const { db } = freshDb(t);
  const [a, b, c] = [addVm(db), addVm(db), addVm(db)];
  assert.equal(allocateLease(db, a, { cidr: "10.9.0.0/24", tapPoolSize: 2 }).tap, "tap-pool-0");
  assert.equal(allocateLease(db, b, { cidr: "10.9.0.0/24", tapPoolSize: 2 }).tap, "tap-pool-1");
  assert.equal(allocateLease(db, c, { cidr: "10.9.0.0/24", tapPoolSize: 2 }).tap, tapForVm(c));
  releaseLease(db, a);
  const d = addVm(db);
  assert.equal(allocateLease(db, d, { cidr: "10.9.0.0/24", tapPoolSize: 2 }).tap, "tap-pool-0", "a released pool tap is reused");
});

void test("two ids sharing their first 10 hex digits: the second gets a conflict naming the cause, not a raw SQLite error", (t) => {
  const { db } = freshDb(t);
  const a = addVm(db, "abcdef0123" + "0".repeat(22));
  const b = addVm(db, "abcdef0123" + "1".repeat(22));
  allocateLease(db, a, { cidr: "10.9.0.0/24" });
  assert.throws(() => allocateLease(db, b, { cidr: "10.9.0.0/24" }), (e: unknown) => e instanceof RpcError && e.code === "conflict" && /shares its first hex digits/.test(e.message));
});

void test("16 concurrent lease requests from 8 worker threads (own connections, one SQLite file) get 16 distinct IPs, MACs, taps and CIDs", async (t) => {
  const { db, path } = freshDb(t);
  const ids = Array.from({ length: 16 }, () => addVm(db));
  const workers = 8;
  const barrier = new SharedArrayBuffer(4);
  const url = new URL("./lease-worker.js", import.meta.url);
  const results = await Promise.all(
    Array.from({ length: workers }, (_, w) => new Promise<LeaseRow[]>((resolve, reject) => {
      const worker = new Worker(url, { workerData: { dbPath: path, vmIds: ids.slice(w * 2, w * 2 + 2), cidr: "172.16.90.0/24", barrier, workers } });
      worker.once("message", (m: LeaseRow[]) => { resolve(m); });
      worker.once("error", reject);
      worker.once("exit", (code) => { if (code !== 0) reject(new Error(`worker exited ${code}`)); });
    })),
  );
  const leases = results.flat();
  assert.equal(leases.length, 16);
  for (const key of ["ip", "mac", "tap", "cid", "vmId"] as const) assert.equal(new Set(leases.map((l) => l[key])).size, 16, `distinct ${key}`);
  // Every lease is in the table and the table holds nothing else: no lost or phantom writes.
  const rows = db.prepare("SELECT COUNT(*) AS n FROM leases").get() as { n: number };
  assert.equal(rows.n, 16);
  for (const l of leases) assert.deepEqual(getLease(db, l.vmId), l);
  const ips = leases.map((l) => Number(l.ip.split(".")[3])).sort((x, y) => x - y);
  assert.deepEqual(ips, Array.from({ length: 16 }, (_, i) => i + 2), "dense allocation from .2");
});
