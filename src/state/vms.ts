import { z } from "zod";
import { statement, type Db } from "./database.js";

export const VM_STATES = ["creating", "stopped", "starting", "running", "paused", "stopping", "error"] as const;
export type VmState = (typeof VM_STATES)[number];

/**
 * Runtime handles of a VM: everything needed to find, re-adopt or tear down
 * what it holds on the host. Known fields are typed; `passthrough` keeps
 * fields a driver or clone strategy adds (e.g. dm/loop names, jailer chroot)
 * so a newer daemon never drops what an older one recorded.
 */
export const vmHandlesSchema = z
  .object({
    ip: z.string().optional(),
    mac: z.string().optional(),
    tap: z.string().optional(),
    cid: z.number().int().optional(),
    vmm_kind: z.string().optional(),
    pid: z.number().int().optional(),
    control_socket: z.string().optional(),
    vsock_path: z.string().optional(),
    root_disk: z.record(z.unknown()).optional(),
    work_disk: z.string().optional(),
    console_log: z.string().optional(),
    host_key_pub: z.string().optional(),
    boot_id: z.string().optional(),
    vmm: z.record(z.unknown()).optional(),
  })
  .passthrough();
export type VmHandles = z.output<typeof vmHandlesSchema>;

export interface VmRecord {
  readonly id: string;
  readonly name: string;
  readonly image: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly diskGib: number;
  readonly state: VmState;
  readonly vmm: string;
  readonly handles: VmHandles;
  readonly lastError: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly startedAt: string | null;
}

interface VmRow {
  id: string;
  name: string;
  image: string;
  vcpus: number;
  memory_mib: number;
  disk_gib: number;
  state: string;
  vmm: string;
  handles: string;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
}

function parseHandles(text: string): VmHandles {
  try {
    const parsed = vmHandlesSchema.safeParse(JSON.parse(text));
    if (parsed.success) return parsed.data;
  } catch {
    // A corrupt handles column must not make the VM unlistable; teardown falls back to handles.json.
  }
  return {};
}

function fromRow(row: VmRow, handles: VmHandles): VmRecord {
  const state = (VM_STATES as readonly string[]).includes(row.state) ? (row.state as VmState) : "error";
  return {
    id: row.id,
    name: row.name,
    image: row.image,
    vcpus: row.vcpus,
    memoryMib: row.memory_mib,
    diskGib: row.disk_gib,
    state,
    vmm: row.vmm,
    handles,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    startedAt: row.started_at,
  };
}

/** What a caller supplies to insert a VM; state, handles and timestamps are the repository's. */
export type NewVm = Pick<VmRecord, "id" | "name" | "image" | "vcpus" | "memoryMib" | "diskGib" | "vmm">;

export class DuplicateVmNameError extends Error {
  override readonly name = "DuplicateVmNameError";
  constructor(readonly vmName: string) {
    super(`a VM named ${JSON.stringify(vmName)} already exists; pick another --name or delete it first (banger vm rm ${vmName})`);
  }
}

/** The `vms` table. Synchronous (better-sqlite3): callers compose calls inside `inTransaction`. */
export class VmRepository {
  /**
   * Parsed handles by VM id and the column text they came from: `vm list` reads every row on
   * every call, and re-validating unchanged JSON was most of its cost. Frozen, because records
   * share them.
   */
  private readonly handlesCache = new Map<string, { text: string; handles: VmHandles }>();

  constructor(private readonly db: Db, private readonly now: () => Date = () => new Date()) {}

  private fromRow(row: VmRow): VmRecord {
    let cached = this.handlesCache.get(row.id);
    if (cached?.text !== row.handles) {
      cached = { text: row.handles, handles: Object.freeze(parseHandles(row.handles)) };
      this.handlesCache.set(row.id, cached);
    }
    return fromRow(row, cached.handles);
  }

  /** Inserts a VM in state `creating`; the UNIQUE name constraint makes concurrent creates of one name safe. */
  insert(vm: NewVm): VmRecord {
    const ts = this.now().toISOString();
    try {
      statement(this.db, "INSERT INTO vms (id, name, image, vcpus, memory_mib, disk_gib, state, vmm, handles, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'creating', ?, '{}', ?, ?)")
        .run(vm.id, vm.name, vm.image, vm.vcpus, vm.memoryMib, vm.diskGib, vm.vmm, ts, ts);
    } catch (e) {
      if (e instanceof Error && "code" in e && e.code === "SQLITE_CONSTRAINT_UNIQUE" && e.message.includes("vms.name")) throw new DuplicateVmNameError(vm.name);
      throw e;
    }
    const rec = this.getById(vm.id);
    if (rec === undefined) throw new Error(`VM ${vm.id} vanished right after insert`);
    return rec;
  }

  getById(id: string): VmRecord | undefined {
    const row = statement(this.db, "SELECT * FROM vms WHERE id = ?").get(id) as VmRow | undefined;
    return row === undefined ? undefined : this.fromRow(row);
  }

  getByName(name: string): VmRecord | undefined {
    const row = statement(this.db, "SELECT * FROM vms WHERE name = ?").get(name) as VmRow | undefined;
    return row === undefined ? undefined : this.fromRow(row);
  }

  list(): VmRecord[] {
    return (statement(this.db, "SELECT * FROM vms ORDER BY created_at, name").all() as VmRow[]).map((r) => this.fromRow(r));
  }

  names(): Set<string> {
    return new Set((statement(this.db, "SELECT name FROM vms").all() as { name: string }[]).map((r) => r.name));
  }

  setState(id: string, next: VmState, opts: { lastError?: string | null; startedAt?: string | null } = {}): VmRecord {
    const ts = this.now().toISOString();
    const cur = this.getById(id);
    if (cur === undefined) throw new Error(`VM ${id} not found`);
    const lastError = opts.lastError === undefined ? cur.lastError : opts.lastError;
    const startedAt = opts.startedAt === undefined ? cur.startedAt : opts.startedAt;
    statement(this.db, "UPDATE vms SET state = ?, last_error = ?, started_at = ?, updated_at = ? WHERE id = ?").run(next, lastError, startedAt, ts, id);
    return { ...cur, state: next, lastError, startedAt, updatedAt: ts };
  }

  /** The work disk's size after `vm resize --work`. */
  setDiskGib(id: string, diskGib: number): VmRecord {
    const cur = this.getById(id);
    if (cur === undefined) throw new Error(`VM ${id} not found`);
    const ts = this.now().toISOString();
    statement(this.db, "UPDATE vms SET disk_gib = ?, updated_at = ? WHERE id = ?").run(diskGib, ts, id);
    return { ...cur, diskGib, updatedAt: ts };
  }

  /** Merges `patch` into the handles; a key set to undefined is removed. */
  updateHandles(id: string, patch: Partial<VmHandles>): VmRecord {
    const cur = this.getById(id);
    if (cur === undefined) throw new Error(`VM ${id} not found`);
    const merged = Object.entries({ ...cur.handles, ...patch }).filter(([, v]) => v !== undefined);
    const handles = vmHandlesSchema.parse(Object.fromEntries(merged));
    const ts = this.now().toISOString();
    statement(this.db, "UPDATE vms SET handles = ?, updated_at = ? WHERE id = ?").run(JSON.stringify(handles), ts, id);
    return { ...cur, handles, updatedAt: ts };
  }

  delete(id: string): boolean {
    this.handlesCache.delete(id);
    return statement(this.db, "DELETE FROM vms WHERE id = ?").run(id).changes > 0;
  }
}
