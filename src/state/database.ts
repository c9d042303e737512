import { constants, copyFileSync, existsSync, renameSync } from "node:fs";
import Database from "better-sqlite3";
import { VERSION } from "../version.js";
import { MIGRATIONS } from "./migrations.js";

export type Db = Database.Database;

/**
 * Opens (creating if needed) the state database: WAL for concurrent readers,
 * foreign keys on, a busy timeout so two processes never fail on a lock, and
 * every pending migration applied in one transaction each.
 *
 * A database this banger cannot trust is refused before anything writes to
 * it: one that is not SQLite or fails `quick_check` (a disk that filled or a
 * host that crashed under a non-WAL copy), and one from a newer banger (its
 * schema would be misread). The refusal names a copy made beside it, so the
 * user can move the original away and still has the data. Before migrating a
 * database forward, a consistent copy of the old version is kept as well:
 * migrations only run forward, so that copy is how an older banger (a
 * rolled-back update) gets a database it can read.
 */
export function openDatabase(path: string): Db {
  const db = new Database(path);
  try {
    // Reads only: nothing below may change a file that is about to be refused.
    const current = db.pragma("user_version", { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      const writer = writtenBy(db, current);
      throw new StateDbRefusedError(path, `was written by ${writer ?? "a newer banger"} (schema version ${current}; this banger ${VERSION} knows up to ${MIGRATIONS.length})`, newerSchemaHint(path, writer));
    }
    if (current > 0) {
      const check = db.pragma("quick_check", { simple: true });
      if (check !== "ok") throw new StateDbRefusedError(path, `failed its integrity check (${String(check)})`, RESTORE_HINT);
      if (current < MIGRATIONS.length) db.exec(`VACUUM INTO ${sqlString(freshName(`${path}.schema-v${current}.bak`))}`);
    }
    db.pragma("journal_mode = WAL");
    db.pragma("busy_timeout = 5000");
    db.pragma("synchronous = NORMAL");
    migrate(db);
    return db;
  } catch (e) {
    db.close();
    if (e instanceof StateDbRefusedError) throw e.withCopy();
    if (isCorrupt(e)) throw new StateDbRefusedError(path, `is not a readable SQLite database (${(e as Error).message})`, RESTORE_HINT).withCopy();
    throw e;
  }
}

/** The banger version that brought the database to `schema`, if it recorded one (schema_history, from schema 4). */
function writtenBy(db: Db, schema: number): string | undefined {
  try {
    const row = db.prepare("SELECT banger_version FROM schema_history WHERE version = ?").get(schema) as { banger_version: string } | undefined;
    return row === undefined ? undefined : `banger ${row.banger_version}`;
  } catch {
    return undefined; // no such table: a newer banger that does not keep it, or a hand-made file
  }
}

function newerSchemaHint(path: string, writer: string | undefined): string {
  const update = `update banger${writer !== undefined ? ` (to ${writer.replace(/^banger /, "")} or later)` : ""}`;
  const backup = newestBackup(`${path}.schema-v${MIGRATIONS.length}.bak`);
  const restore = backup !== undefined
    ? `or restore the database from ${backup} (the copy taken before it was migrated past this version; later changes are lost)`
    : "or restore a backup of the database made by this version, or move it away to start with an empty state";
  return `${update}, ${restore}`;
}

/** The last of `base`, `base.1`, ... that exists (freshName numbers later copies higher). */
function newestBackup(base: string): string | undefined {
  if (!existsSync(base)) return undefined;
  let i = 1;
  while (existsSync(`${base}.${i}`)) i++;
  return i === 1 ? base : `${base}.${i - 1}`;
}

const RESTORE_HINT = "restore a backup of it, or move it away to start with an empty state (images and VMs are then unknown to banger)";

/** The daemon refuses a state database it cannot trust; the message says where a copy of it is. */
export class StateDbRefusedError extends Error {
  override readonly name = "StateDbRefusedError";
  constructor(readonly path: string, readonly problem: string, readonly hint: string, readonly copy?: string) {
    super(`state database ${path} ${problem}; refusing to start rather than change it. It is left as it was${copy !== undefined ? `, and a copy is at ${copy}` : ""}: ${hint}`);
  }

  /** Copy the database (and its WAL, which holds committed rows) beside it, never over an existing file. */
  withCopy(): StateDbRefusedError {
    const copy = freshName(`${this.path}.refused-${new Date().toISOString().replaceAll(":", "")}`);
    try {
      copyFileSync(this.path, copy, constants.COPYFILE_EXCL);
      if (existsSync(`${this.path}-wal`)) copyFileSync(`${this.path}-wal`, `${copy}-wal`, constants.COPYFILE_EXCL);
    } catch {
      return this; // a full disk must not hide the refusal itself
    }
    return new StateDbRefusedError(this.path, this.problem, this.hint, copy);
  }
}

function isCorrupt(e: unknown): boolean {
  return e instanceof Database.SqliteError && /^SQLITE_(NOTADB|CORRUPT)/.test(e.code);
}

/** `base`, or `base.1`, `base.2`, ... : the first name not taken, so no backup is ever overwritten. */
function freshName(base: string): string {
  let name = base;
  for (let i = 1; existsSync(name); i++) name = `${base}.${i}`;
  return name;
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** Apply every migration past the database's version, forward only (openDatabase has refused a newer one). */
function migrate(db: Db): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  // Foreign keys off while migrating (the pragma is a no-op inside a transaction): a migration that
  // rebuilds a table, SQLite's way to change a constraint, would otherwise cascade the DROP of the
  // old table into the rows that reference it. On for everything after.
  db.pragma("foreign_keys = OFF");
  try {
    for (let v = current; v < MIGRATIONS.length; v++) {
      const sql = MIGRATIONS[v] ?? "";
      db.transaction(() => {
        db.exec(sql);
        // With foreign keys off, nothing else would notice a migration that broke a reference.
        const broken = db.pragma("foreign_key_check") as unknown[];
        if (broken.length > 0) throw new Error(`migration to schema version ${v + 1} left ${broken.length} broken references: ${JSON.stringify(broken.slice(0, 3))}`);
        db.pragma(`user_version = ${v + 1}`);
        if (hasHistory(db)) db.prepare("INSERT OR REPLACE INTO schema_history (version, banger_version, applied_at) VALUES (?, ?, ?)").run(v + 1, VERSION, new Date().toISOString());
      }).immediate();
    }
  } finally {
    db.pragma("foreign_keys = ON");
  }
}

function hasHistory(db: Db): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_history'").get() !== undefined;
}

/**
 * Undoes a newer banger's migrations for this one (`bangerd --restore-schema`, run by a rolled-back
 * `banger update` while no daemon is running): the database that banger migrated is moved aside
 * (with its WAL, which holds committed rows) and the copy it took before migrating past this
 * version is put in its place. Whatever the newer banger changed after migrating is in the moved
 * file, not lost. Nothing happens when the database is at this version or older.
 */
export function restorePreMigrationCopy(path: string): { restored: string; setAside: string } | undefined {
  if (!existsSync(path)) return undefined;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  let current: number;
  try {
    current = db.pragma("user_version", { simple: true }) as number;
  } finally {
    db.close();
  }
  if (current <= MIGRATIONS.length) return undefined;
  const backup = newestBackup(`${path}.schema-v${MIGRATIONS.length}.bak`);
  if (backup === undefined) throw new StateDbRefusedError(path, `is at schema version ${current} and no copy from before it left version ${MIGRATIONS.length} exists`, "update banger to the version that migrated it, or move the database away to start with an empty state");
  const setAside = freshName(`${path}.from-schema-v${current}`);
  renameSync(path, setAside);
  for (const suffix of ["-wal", "-shm"]) if (existsSync(path + suffix)) renameSync(path + suffix, setAside + suffix);
  copyFileSync(backup, path, constants.COPYFILE_EXCL);
  return { restored: backup, setAside };
}

/**
 * What `bangerd --check` reports: this code's version and the schema it writes, after loading the
 * SQLite native module for real (a throwaway in-memory database), so a package whose addon does not
 * load on this host fails the check instead of the service start.
 */
export function selfCheck(): { version: string; schema: number } {
  const db = new Database(":memory:");
  try {
    migrate(db);
    return { version: VERSION, schema: db.pragma("user_version", { simple: true }) as number };
  } finally {
    db.close();
  }
}

const statements = new WeakMap<Db, Map<string, Database.Statement>>();

/**
 * The prepared statement for `sql` on this connection, compiled once: every
 * RPC runs a few statements, and re-preparing them showed up in the daemon's
 * profile. Only for constant SQL text (the cache is keyed by it) and never
 * for statements whose mode is changed (pluck/raw), which would leak to other users.
 */
export function statement(db: Db, sql: string): Database.Statement {
  let cache = statements.get(db);
  if (cache === undefined) {
    cache = new Map();
    statements.set(db, cache);
  }
  let stmt = cache.get(sql);
  if (stmt === undefined) {
    stmt = db.prepare(sql);
    cache.set(sql, stmt);
  }
  return stmt;
}

/** Run `fn` in an IMMEDIATE transaction: the write lock is taken up front, so allocations never race. */
export function inTransaction<T>(db: Db, fn: () => T): T {
  return db.transaction(fn).immediate();
}
