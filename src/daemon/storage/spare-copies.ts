import { rmSync } from "node:fs";
import { link, mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";

/** Makes `dst` (which must not exist) a copy of `src`. */
export type Copier = (src: string, dst: string) => Promise<void>;

interface Spare {
  readonly path: string;
  /** What `src` was when the spare was copied from it; set once the copy is complete. */
  identity?: string;
}

/**
 * One copy of a disk made ahead, per source (an image's rootfs, a work-disk template), so the next
 * VM create takes it by a hard link instead of copying on its critical path: the copy (~6 MB for the
 * tiny image, ~4 MB of work-disk metadata, a few tens of ms on a slow host) runs while the last VM's
 * guest boots. A spare is used only when its source is the very file it was copied from, unchanged
 * (device, inode, size, mtime, ctime); anything else is copied as before. Spares live in the state
 * dir's cache (the VM dirs' filesystem, so the link works; on another one a copy is made after all),
 * cost the disk space of one copy per source, and are dropped at daemon start: a half-made one of a
 * daemon that died is never taken.
 */
export class SpareCopies {
  private readonly spares = new Map<string, Spare>();
  private readonly making = new Set<Promise<void>>();
  private seq = 0;

  constructor(private readonly dir: string) {
    rmSync(dir, { recursive: true, force: true });
  }

  /** `dst` becomes a copy of `src`: the spare when one is ready and still matches, else `copy` now; then a new spare is made. */
  async take(src: string, dst: string, copy: Copier): Promise<void> {
    const spare = this.spares.get(src);
    let done = false;
    if (spare?.identity !== undefined) {
      this.spares.delete(src);
      try {
        if (spare.identity === (await identity(src))) {
          // link, not rename: it fails when dst exists, so a VM's disk is never overwritten.
          await link(spare.path, dst);
          done = true;
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") throw e;
        // Any other failure (the source is gone, another filesystem): a copy made now still works.
      } finally {
        await rm(spare.path, { force: true });
      }
    }
    if (!done) await copy(src, dst);
    this.makeSpare(src, copy);
  }

  /** The source is going away (a removed snapshot): its spare would never be taken, so it goes too. */
  async drop(src: string): Promise<void> {
    const spare = this.spares.get(src);
    if (spare === undefined) return;
    this.spares.delete(src);
    await rm(spare.path, { force: true });
  }

  /** Resolves when no spare is being made (tests). */
  async idle(): Promise<void> {
    while (this.making.size > 0) await Promise.allSettled([...this.making]);
  }

  private makeSpare(src: string, copy: Copier): void {
    if (this.spares.has(src)) return;
    const spare: Spare = { path: join(this.dir, `${process.pid}-${++this.seq}`) };
    this.spares.set(src, spare);
    const making = (async () => {
      try {
        await mkdir(this.dir, { recursive: true, mode: 0o700 });
        const before = await identity(src);
        await copy(src, spare.path);
        // Changed while being copied: the spare may hold a mix of both.
        if ((await identity(src)) !== before) throw new Error(`${src} changed while being copied`);
        spare.identity = before;
      } catch {
        // No spare this time; the next create copies on its own path, as without spares.
        if (this.spares.get(src) === spare) this.spares.delete(src);
        await rm(spare.path, { force: true }).catch(() => undefined);
      }
    })();
    this.making.add(making);
    void making.finally(() => this.making.delete(making));
  }
}

async function identity(path: string): Promise<string> {
  const s = await stat(path, { bigint: true });
  return [s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join(":");
}
