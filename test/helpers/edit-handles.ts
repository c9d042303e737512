import assert from "node:assert/strict";
import { chownSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { TestUser } from "./users.js";

/** Rewrites fields of VMs' recorded handles in the (stopped) daemon's database, as a crash or a bug could leave them. */
export function editHandles(stateDir: string, user: TestUser, edits: Record<string, Record<string, number | string | null>>): void {
  const path = join(stateDir, "banger.db");
  const db = new Database(path);
  for (const [name, fields] of Object.entries(edits)) {
    const row = db.prepare("SELECT handles FROM vms WHERE name = ?").get(name) as { handles: string } | undefined;
    assert.ok(row !== undefined, `no VM ${name} in the database`);
    const handles = Object.entries(JSON.parse(row.handles) as Record<string, unknown>).filter(([k]) => fields[k] !== null);
    const edited = { ...Object.fromEntries(handles), ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null)) };
    db.prepare("UPDATE vms SET handles = ? WHERE name = ?").run(JSON.stringify(edited), name);
  }
  db.close();
  // Written as root: whatever SQLite left beside the database must stay the owner's.
  for (const f of readdirSync(stateDir).filter((f) => f.startsWith("banger.db"))) chownSync(join(stateDir, f), user.uid, user.gid);
}
