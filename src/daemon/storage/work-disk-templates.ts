import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { state } from "../../paths/paths.js";
import type { Runner } from "../../system/runner.js";
import { writeExt4Files, type Ext4Dir, type Ext4File } from "./ext4.js";
import { createWorkDisk } from "./work-disk.js";

/** What a fresh work disk holds besides an empty filesystem (the install's authorized_keys). */
export interface WorkDiskContents {
  readonly files: readonly Ext4File[];
  readonly dirs: readonly Ext4Dir[];
}

/**
 * Formatted work disks, one per size and contents, made once and then
 * cloned for every VM (FICLONE, or a sparse copy of ~4 MiB of ext4
 * metadata): mkfs.ext4 plus a debugfs per create cost more CPU than the
 * rest of the daemon's work for a VM. Clones share the template's
 * filesystem UUID, like root disks cloned from one image do; each VM only
 * ever sees its own disks and mounts /root by device name.
 */
export class WorkDiskTemplates {
  private readonly building = new Map<string, Promise<string>>();

  constructor(private readonly runner: Runner, private readonly stateDir: string) {}

  /** The template's path, built on first use; concurrent callers share one build. */
  async get(sizeGib: number, contents: WorkDiskContents): Promise<string> {
    const path = join(state.workDiskTemplatesDir(this.stateDir), templateName(sizeGib, contents));
    if (existsSync(path)) return path;
    let build = this.building.get(path);
    if (build === undefined) {
      build = this.build(path, sizeGib, contents).finally(() => this.building.delete(path));
      this.building.set(path, build);
    }
    return build;
  }

  private async build(path: string, sizeGib: number, contents: WorkDiskContents): Promise<string> {
    const dir = state.workDiskTemplatesDir(this.stateDir);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Published by rename, so a template is never seen half made; a crashed build leaves only a .tmp.
    const tmp = `${path}.${process.pid}.tmp`;
    await rm(tmp, { force: true });
    try {
      await createWorkDisk(this.runner, tmp, sizeGib);
      if (contents.files.length + contents.dirs.length > 0) await writeExt4Files(this.runner, tmp, contents.files, contents.dirs);
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    // Same size, other contents: made for an install key that has since been replaced.
    const prefix = `${sizePrefix(sizeGib)}-`;
    for (const name of await readdir(dir)) {
      const other = join(dir, name.replace(/\.\d+\.tmp$/, ""));
      if (name.startsWith(prefix) && other !== path && !this.building.has(other)) await rm(join(dir, name), { force: true });
    }
    return path;
  }
}

function sizePrefix(sizeGib: number): string {
  return `work-${sizeGib}g`;
}

function templateName(sizeGib: number, contents: WorkDiskContents): string {
  const h = createHash("sha256");
  for (const d of contents.dirs) h.update(JSON.stringify(["dir", d.path, d.mode, d.uid ?? 0, d.gid ?? 0]));
  for (const f of contents.files) {
    h.update(JSON.stringify(["file", f.path, f.mode, f.uid ?? 0, f.gid ?? 0, Buffer.byteLength(f.data)]));
    h.update(f.data);
  }
  return `${sizePrefix(sizeGib)}-${h.digest("hex").slice(0, 16)}.ext4`;
}
