import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { MIGRATIONS } from "../../../src/state/migrations.js";
import { openDatabase, restorePreMigrationCopy, StateDbRefusedError } from "../../../src/state/database.js";
import { VERSION } from "../../../src/version.js";

const base = mkdtempSync("/tmp/bgt-statedb-");
after(() => { rmSync(base, { recursive: true, force: true }); });
let n = 0;
const fresh = (): string => mkdtempSync(join(base, `${n++}-`));
const sha = (p: string): string => createHash("sha256").update(readFileSync(p)).digest("hex");

function refusal(path: string): StateDbRefusedError {
  let caught: unknown;
  try {
    openDatabase(path).close();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof StateDbRefusedError, `expected a refusal, got ${String(caught)}`);
  return caught;
}

function assertRefusedWithCopy(path: string, problem: RegExp): void {
  const before = sha(path);
  const e = refusal(path);
  assert.match(e.message, problem);
  assert.ok(e.message.includes(path), "names the database");
  assert.ok(e.copy !== undefined && e.message.includes(`a copy is at ${e.copy}`), e.message);
  assert.equal(sha(e.copy), before, "the copy holds what the database held");
  assert.equal(sha(path), before, "the database itself is untouched");
  // A second refusal never overwrites the first copy.
  const again = refusal(path);
  assert.notEqual(again.copy, e.copy);
  assert.equal(sha(e.copy), before);
}

void test("a file that is not SQLite is refused, left as it was, and copied beside itself", () => {
  const path = join(fresh(), "banger.db");
  writeFileSync(path, "this is not a database, it is what a crash left behind\n".repeat(200));
  assertRefusedWithCopy(path, /is not a readable SQLite database/);
});

void test("a database with a damaged page is refused", () => {
  const path = join(fresh(), "banger.db");
  const db = openDatabase(path);
  db.exec("CREATE TABLE filler (x TEXT)");
  const insert = db.prepare("INSERT INTO filler VALUES (?)");
  for (let i = 0; i < 2000; i++) insert.run(`row ${i} ${"x".repeat(100)}`);
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  const bytes = readFileSync(path);
  // Garbage over the middle pages: the header still says SQLite, the b-tree does not hold.
  bytes.fill(0xa5, 8 * 4096, 24 * 4096);
  writeFileSync(path, bytes);
  assertRefusedWithCopy(path, /failed its integrity check|is not a readable SQLite database/);
});

void test("a database from a newer banger is refused, not migrated or written", () => {
  const path = join(fresh(), "banger.db");
  const db = new Database(path);
  db.exec("CREATE TABLE future (x TEXT)");
  db.pragma(`user_version = ${MIGRATIONS.length + 5}`);
  db.close();
  assertRefusedWithCopy(path, new RegExp(`a newer banger \\(schema version ${MIGRATIONS.length + 5}; this banger ${VERSION} knows up to ${MIGRATIONS.length}\\)`));
  assert.match(refusal(path).message, /update banger, or restore a backup of the database made by this version/);
});

/** A database as a future banger 9.9.9 leaves it: migrated one schema past this one, with the copy it took first. */
function fromFutureBanger(): string {
  const path = join(fresh(), "banger.db");
  openDatabase(path).close();
  const db = new Database(path);
  db.exec("CREATE TABLE future (x TEXT)");
  db.prepare("INSERT INTO schema_history (version, banger_version, applied_at) VALUES (?, '9.9.9', 'then')").run(MIGRATIONS.length + 1);
  db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
  db.close();
  writeFileSync(`${path}.schema-v${MIGRATIONS.length}.bak`, "first copy");
  writeFileSync(`${path}.schema-v${MIGRATIONS.length}.bak.1`, "a later copy");
  return path;
}

void test("the refusal of a newer schema names the banger version that wrote it and the copy to restore", () => {
  const path = fromFutureBanger();
  const before = sha(path);
  const e = refusal(path);
  assert.match(e.message, new RegExp(`was written by banger 9\\.9\\.9 \\(schema version ${MIGRATIONS.length + 1}; this banger ${VERSION} knows up to ${MIGRATIONS.length}\\)`));
  assert.ok(e.message.includes(`update banger (to 9.9.9 or later), or restore the database from ${path}.schema-v${MIGRATIONS.length}.bak.1 `), e.message);
  assert.equal(sha(path), before, "the database is untouched");
  const db = new Database(path, { readonly: true });
  assert.equal(db.pragma("user_version", { simple: true }), MIGRATIONS.length + 1, "not migrated back");
  db.close();
});

void test("each migration records the banger version that applied it", () => {
  const path = join(fresh(), "banger.db");
  openDatabase(path).close();
  const db = new Database(path, { readonly: true });
  const rows = db.prepare("SELECT version, banger_version FROM schema_history ORDER BY version").all();
  db.close();
  // The table arrives with migration 5; migrations before it have no writer to name.
  assert.deepEqual(rows, MIGRATIONS.slice(4).map((_, i) => ({ version: 5 + i, banger_version: VERSION })));
});

void test("migrating forward keeps a copy of the old version first", () => {
  const path = join(fresh(), "banger.db");
  const old = new Database(path);
  old.exec(MIGRATIONS[0] ?? "");
  old.pragma("user_version = 1");
  old.prepare("INSERT INTO images (name, source, kernel_path, rootfs_path, size_bytes, created_at) VALUES ('tiny', 'busybox', '/k', '/r', 1, 'now')").run();
  old.close();
  const db = openDatabase(path);
  assert.equal(db.pragma("user_version", { simple: true }), MIGRATIONS.length);
  db.close();
  const backup = new Database(`${path}.schema-v1.bak`, { readonly: true });
  assert.equal(backup.pragma("user_version", { simple: true }), 1);
  assert.deepEqual(backup.prepare("SELECT name FROM images").all(), [{ name: "tiny" }]);
  backup.close();
  // An up-to-date database is opened as it is: no copy per start.
  openDatabase(path).close();
  assert.equal(existsSync(`${path}.schema-v${MIGRATIONS.length}.bak`), false);
});

void test("the migration that rebuilds vms for state 'paused' keeps every VM and its lease", () => {
  const path = join(fresh(), "banger.db");
  const old = new Database(path);
  old.pragma("foreign_keys = ON");
  for (const sql of MIGRATIONS.slice(0, 3)) old.exec(sql);
  old.pragma("user_version = 3");
  old.prepare("INSERT INTO images (name, source, kernel_path, rootfs_path, size_bytes, created_at) VALUES ('tiny', 'busybox', '/k', '/r', 1, 'now')").run();
  old.prepare("INSERT INTO vms (id, name, image, vcpus, memory_mib, disk_gib, state, vmm, handles, created_at, updated_at, started_at) VALUES ('a1', 'web', 'tiny', 1, 256, 1, 'running', 'qemu', '{\"pid\":7}', 'then', 'then', 'then')").run();
  old.prepare("INSERT INTO leases (vm_id, ip, mac, tap, cid) VALUES ('a1', '172.16.90.2', '06:00:ac:10:5a:02', 'tap-fc-a1', 3)").run();
  old.close();
  const db = openDatabase(path);
  assert.equal(db.pragma("user_version", { simple: true }), MIGRATIONS.length);
  assert.deepEqual(db.prepare("SELECT id, name, state, handles, started_at FROM vms").all(), [{ id: "a1", name: "web", state: "running", handles: '{"pid":7}', started_at: "then" }]);
  assert.deepEqual(db.prepare("SELECT vm_id, ip FROM leases").all(), [{ vm_id: "a1", ip: "172.16.90.2" }]);
  db.prepare("UPDATE vms SET state = 'paused' WHERE id = 'a1'").run();
  assert.throws(() => db.prepare("UPDATE vms SET state = 'frozen' WHERE id = 'a1'").run(), /CHECK constraint failed/);
  // Foreign keys are on again after migrating: a lease still follows its VM.
  db.prepare("DELETE FROM vms WHERE id = 'a1'").run();
  assert.deepEqual(db.prepare("SELECT vm_id FROM leases").all(), []);
  db.close();
});

/** Run bangerd on `state` (its banger.db) until it exits: every case here must refuse before serving. */
function bangerdOn(dir: string, state: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [resolve(import.meta.dirname, "..", "..", "..", "bin", "bangerd.cjs")], {
    env: { PATH: process.env["PATH"] ?? "", HOME: dir, BANGER_STATE_DIR: state, BANGER_RUNTIME_DIR: join(dir, "run"), BANGER_CONFIG: join(dir, "none.toml"), BANGER_SOCKET: join(dir, "run", "d.sock"), BANGER_HELPER_SOCKET: join(dir, "h.sock") },
    encoding: "utf8",
    timeout: 30_000,
  });
}

void test("bangerd refuses to start on a corrupt database and says where the copy is", () => {
  const dir = fresh();
  const state = join(dir, "state");
  const path = join(state, "banger.db");
  mkdirSync(state);
  writeFileSync(path, Buffer.alloc(8192, 0x42));
  const r = bangerdOn(dir, state);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^bangerd: state database ${path} is not a readable SQLite database .*a copy is at ${path}\\.refused-`, "m"));
  assert.equal(existsSync(join(dir, "run", "d.sock")), false, "no socket: it did not start serving");
});

void test("bangerd refuses to start on a database from a newer banger and leaves it as it was", () => {
  const made = fromFutureBanger();
  const dir = dirname(made);
  const state = join(dir, "state");
  mkdirSync(state);
  const path = join(state, "banger.db");
  renameSync(made, path);
  const before = sha(path);
  const r = bangerdOn(dir, state);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^bangerd: state database ${path} was written by banger 9\\.9\\.9 .*refusing to start.*update banger \\(to 9\\.9\\.9 or later\\)`, "m"));
  assert.equal(sha(path), before);
  assert.equal(existsSync(join(dir, "run", "d.sock")), false, "no socket: it did not start serving");
});

void test("a rolled-back update puts back the copy taken before a newer banger migrated, keeping the migrated one aside", () => {
  const path = join(fresh(), "banger.db");
  const db = openDatabase(path);
  db.prepare("INSERT INTO images (name, source, kernel_path, rootfs_path, size_bytes, created_at) VALUES ('before', 'busybox', '/k', '/r', 1, 'now')").run();
  db.close();
  // What the newer banger does: the copy first (openDatabase's VACUUM INTO), then its migration and new rows.
  const copy = new Database(path);
  copy.exec(`VACUUM INTO '${path}.schema-v${MIGRATIONS.length}.bak'`);
  copy.exec("CREATE TABLE future (x TEXT)");
  copy.prepare("INSERT INTO images (name, source, kernel_path, rootfs_path, size_bytes, created_at) VALUES ('after', 'busybox', '/k', '/r', 1, 'now')").run();
  copy.pragma(`user_version = ${MIGRATIONS.length + 1}`);
  copy.close();

  const done = restorePreMigrationCopy(path);
  assert.ok(done !== undefined);
  assert.equal(done.restored, `${path}.schema-v${MIGRATIONS.length}.bak`);
  const back = openDatabase(path);
  assert.deepEqual(back.prepare("SELECT name FROM images").all(), [{ name: "before" }], "this banger opens the restored copy");
  back.close();
  const aside = new Database(done.setAside, { readonly: true });
  assert.equal(aside.pragma("user_version", { simple: true }), MIGRATIONS.length + 1);
  assert.deepEqual(aside.prepare("SELECT name FROM images ORDER BY name").all(), [{ name: "after" }, { name: "before" }], "what the newer banger wrote is kept");
  aside.close();
  assert.equal(restorePreMigrationCopy(path), undefined, "at this version: nothing to undo");
});

void test("restoring without a pre-migration copy is refused and changes nothing", () => {
  const path = join(fresh(), "banger.db");
  const db = new Database(path);
  db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
  db.close();
  const before = sha(path);
  assert.throws(() => restorePreMigrationCopy(path), (e: unknown) => e instanceof StateDbRefusedError && /no copy from before it left version/.test(e.message) && /update banger to the version that migrated it/.test(e.message));
  assert.equal(sha(path), before);
  assert.deepEqual(readdirSync(dirname(path)), ["banger.db"]);
});
