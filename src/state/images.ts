import { type ExecDefaults, NO_EXEC_DEFAULTS } from "../model/exec-defaults.js";
import { statement, type Db } from "./database.js";

export type ImageFlavor = "systemd" | "busybox";

export interface ImageRecord {
  readonly name: string;
  /** What it was built from: "debian:bookworm", "busybox", "dir:/path", "tar:/path", "import". */
  readonly source: string;
  readonly flavor: ImageFlavor;
  readonly kernelPath: string;
  readonly vmlinuxPath: string | null;
  readonly initrdPath: string | null;
  readonly rootfsPath: string;
  readonly kernelVersion: string | null;
  /** Bytes on disk of the image's files (allocated, so sparse rootfs count what they use). */
  readonly sizeBytes: number;
  readonly createdAt: string;
  /** The user, env and workdir `vm exec`/`vm ssh` default to (an OCI image's config; none for other images). */
  readonly execDefaults?: ExecDefaults | undefined;
}

interface ImageRow {
  name: string;
  source: string;
  flavor: string;
  kernel_path: string;
  vmlinux_path: string | null;
  initrd_path: string | null;
  rootfs_path: string;
  kernel_version: string | null;
  size_bytes: number;
  created_at: string;
  exec_user: string | null;
  exec_env: string;
  exec_workdir: string | null;
}

/** The env column is JSON written by upsert; anything else in it is treated as no env. */
function envFromColumn(text: string): [string, string][] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(v)) return [];
  return v.filter((p): p is [string, string] => Array.isArray(p) && p.length === 2 && typeof p[0] === "string" && typeof p[1] === "string");
}

function fromRow(r: ImageRow): ImageRecord {
  return {
    name: r.name,
    source: r.source,
    flavor: r.flavor === "busybox" ? "busybox" : "systemd",
    kernelPath: r.kernel_path,
    vmlinuxPath: r.vmlinux_path,
    initrdPath: r.initrd_path,
    rootfsPath: r.rootfs_path,
    kernelVersion: r.kernel_version,
    sizeBytes: r.size_bytes,
    createdAt: r.created_at,
    execDefaults: { user: r.exec_user, env: envFromColumn(r.exec_env), workdir: r.exec_workdir },
  };
}

/** The `images` table. Rows are written only after an image's files are complete and in place. */
export class ImageRepository {
  constructor(private readonly db: Db) {}

  list(): ImageRecord[] {
    return this.db.prepare<[], ImageRow>("SELECT * FROM images ORDER BY name").all().map(fromRow);
  }

  get(name: string): ImageRecord | undefined {
    const row = this.db.prepare<[string], ImageRow>("SELECT * FROM images WHERE name = ?").get(name);
    return row === undefined ? undefined : fromRow(row);
  }

  /** Insert or replace (a --force rebuild keeps VMs' foreign keys valid: same name). */
  upsert(rec: ImageRecord): void {
    statement(this.db, `INSERT INTO images (name, source, flavor, kernel_path, vmlinux_path, initrd_path, rootfs_path, kernel_version, size_bytes, created_at, exec_user, exec_env, exec_workdir)
      VALUES (@name, @source, @flavor, @kernel_path, @vmlinux_path, @initrd_path, @rootfs_path, @kernel_version, @size_bytes, @created_at, @exec_user, @exec_env, @exec_workdir)
      ON CONFLICT(name) DO UPDATE SET source = excluded.source, flavor = excluded.flavor, kernel_path = excluded.kernel_path,
        vmlinux_path = excluded.vmlinux_path, initrd_path = excluded.initrd_path, rootfs_path = excluded.rootfs_path,
        kernel_version = excluded.kernel_version, size_bytes = excluded.size_bytes, created_at = excluded.created_at,
        exec_user = excluded.exec_user, exec_env = excluded.exec_env, exec_workdir = excluded.exec_workdir`).run({
      name: rec.name,
      source: rec.source,
      flavor: rec.flavor,
      kernel_path: rec.kernelPath,
      vmlinux_path: rec.vmlinuxPath,
      initrd_path: rec.initrdPath,
      rootfs_path: rec.rootfsPath,
      kernel_version: rec.kernelVersion,
      size_bytes: rec.sizeBytes,
      created_at: rec.createdAt,
      exec_user: (rec.execDefaults ?? NO_EXEC_DEFAULTS).user,
      exec_env: JSON.stringify((rec.execDefaults ?? NO_EXEC_DEFAULTS).env),
      exec_workdir: (rec.execDefaults ?? NO_EXEC_DEFAULTS).workdir,
    });
  }

  delete(name: string): boolean {
    return statement(this.db, "DELETE FROM images WHERE name = ?").run(name).changes > 0;
  }

  /** Names of VMs whose rows reference the image (the vms.image foreign key). */
  usedBy(name: string): string[] {
    return this.db.prepare<[string], { name: string }>("SELECT name FROM vms WHERE image = ? ORDER BY name").all(name).map((r) => r.name);
  }
}
