import { statement, type Db } from "./database.js";
import type { ImageFlavor } from "./images.js";

/**
 * `user`: taken by `vm snapshot`, kept until `snapshot rm`. `fork`: taken by `vm fork` and removed
 * once its copies are made. `template`: an image's warm template (`image warm`), which `vm create`
 * restores from instead of booting.
 */
export type SnapshotKind = "user" | "fork" | "template";
export const SNAPSHOT_KINDS: readonly SnapshotKind[] = ["user", "fork", "template"];

/** `saving` until every file is written: a daemon that dies mid-way leaves a record the next start removes. */
export type SnapshotState = "saving" | "ready";

export interface SnapshotRecord {
  readonly id: string;
  readonly name: string;
  readonly kind: SnapshotKind;
  readonly sourceVmId: string;
  readonly sourceVmName: string;
  readonly image: string;
  /** The image's build time when the snapshot was taken: a rebuilt image makes its templates stale. */
  readonly imageCreatedAt: string;
  readonly flavor: ImageFlavor;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly diskGib: number;
  readonly vmm: string;
  /** Which VMM build saved the state (a state only loads into the same one); "" while saving. */
  readonly vmmVersion: string;
  /** The source's ssh host key: shown to clients; each restored copy gets its own new key. */
  readonly hostKeyPub: string;
  readonly stateBytes: number;
  readonly state: SnapshotState;
  readonly createdAt: string;
}

interface SnapshotRow {
  id: string;
  name: string;
  kind: string;
  source_vm_id: string;
  source_vm_name: string;
  image: string;
  image_created_at: string;
  flavor: string;
  vcpus: number;
  memory_mib: number;
  disk_gib: number;
  vmm: string;
  vmm_version: string;
  host_key_pub: string;
  state_bytes: number;
  state: string;
  created_at: string;
}

function fromRow(r: SnapshotRow): SnapshotRecord {
  return {
    id: r.id,
    name: r.name,
    kind: (SNAPSHOT_KINDS as readonly string[]).includes(r.kind) ? (r.kind as SnapshotKind) : "user",
    sourceVmId: r.source_vm_id,
    sourceVmName: r.source_vm_name,
    image: r.image,
    imageCreatedAt: r.image_created_at,
    flavor: r.flavor === "busybox" ? "busybox" : "systemd",
    vcpus: r.vcpus,
    memoryMib: r.memory_mib,
    diskGib: r.disk_gib,
    vmm: r.vmm,
    vmmVersion: r.vmm_version,
    hostKeyPub: r.host_key_pub,
    stateBytes: r.state_bytes,
    state: r.state === "ready" ? "ready" : "saving",
    createdAt: r.created_at,
  };
}

export type NewSnapshot = Omit<SnapshotRecord, "vmmVersion" | "stateBytes" | "state" | "createdAt">;

export class DuplicateSnapshotNameError extends Error {
  override readonly name = "DuplicateSnapshotNameError";
  constructor(readonly snapshotName: string) {
    super(`a snapshot named ${JSON.stringify(snapshotName)} already exists; pick another --name or remove it first (banger snapshot rm ${snapshotName})`);
  }
}

/** The `snapshots` table. Synchronous (better-sqlite3), like the other repositories. */
export class SnapshotRepository {
  constructor(private readonly db: Db, private readonly now: () => Date = () => new Date()) {}

  /** Inserts a snapshot in state `saving`; the UNIQUE name makes two snapshots of one name impossible. */
  insert(s: NewSnapshot): SnapshotRecord {
    try {
      statement(this.db, `INSERT INTO snapshots (id, name, kind, source_vm_id, source_vm_name, image, image_created_at, flavor, vcpus, memory_mib, disk_gib, vmm, vmm_version, host_key_pub, state_bytes, state, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, 0, 'saving', ?)`)
        .run(s.id, s.name, s.kind, s.sourceVmId, s.sourceVmName, s.image, s.imageCreatedAt, s.flavor, s.vcpus, s.memoryMib, s.diskGib, s.vmm, s.hostKeyPub, this.now().toISOString());
    } catch (e) {
      if (e instanceof Error && "code" in e && e.code === "SQLITE_CONSTRAINT_UNIQUE" && e.message.includes("snapshots.name")) throw new DuplicateSnapshotNameError(s.name);
      throw e;
    }
    const rec = this.getById(s.id);
    if (rec === undefined) throw new Error(`snapshot ${s.id} vanished right after insert`);
    return rec;
  }

  /** Every file is written: the snapshot can be restored from. */
  markReady(id: string, vmmVersion: string, stateBytes: number): SnapshotRecord {
    statement(this.db, "UPDATE snapshots SET state = 'ready', vmm_version = ?, state_bytes = ? WHERE id = ?").run(vmmVersion, stateBytes, id);
    const rec = this.getById(id);
    if (rec === undefined) throw new Error(`snapshot ${id} not found`);
    return rec;
  }

  getById(id: string): SnapshotRecord | undefined {
    const row = statement(this.db, "SELECT * FROM snapshots WHERE id = ?").get(id) as SnapshotRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  getByName(name: string): SnapshotRecord | undefined {
    const row = statement(this.db, "SELECT * FROM snapshots WHERE name = ?").get(name) as SnapshotRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  list(): SnapshotRecord[] {
    return (statement(this.db, "SELECT * FROM snapshots ORDER BY created_at, name").all() as SnapshotRow[]).map(fromRow);
  }

  names(): Set<string> {
    return new Set((statement(this.db, "SELECT name FROM snapshots").all() as { name: string }[]).map((r) => r.name));
  }

  /** Gives a snapshot its final name (a warm template is saved under a temporary one, then takes over). */
  rename(id: string, name: string): SnapshotRecord {
    try {
      statement(this.db, "UPDATE snapshots SET name = ? WHERE id = ?").run(name, id);
    } catch (e) {
      if (e instanceof Error && "code" in e && e.code === "SQLITE_CONSTRAINT_UNIQUE") throw new DuplicateSnapshotNameError(name);
      throw e;
    }
    const rec = this.getById(id);
    if (rec === undefined) throw new Error(`snapshot ${id} not found`);
    return rec;
  }

  delete(id: string): boolean {
    return statement(this.db, "DELETE FROM snapshots WHERE id = ?").run(id).changes > 0;
  }
}
