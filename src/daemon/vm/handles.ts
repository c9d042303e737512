import { mkdirSync, writeFileSync } from "node:fs";
import { state, vmFiles } from "../../paths/paths.js";
import type { VmHandles, VmRecord, VmRepository } from "../../state/vms.js";

/**
 * Handles live in the `vms` row AND in the VM dir's handles.json, so a daemon
 * whose database was lost or corrupted can still find and tear down taps,
 * devices and VMM processes. The row is written first (the source of truth);
 * the mirror follows.
 */
export class HandleStore {
  constructor(private readonly vms: VmRepository, private readonly stateDir: string) {}

  save(vmId: string, patch: Partial<VmHandles>): Promise<VmRecord> {
    try {
      const rec = this.vms.updateHandles(vmId, patch);
      this.mirror(rec);
      return Promise.resolve(rec);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /**
   * Synchronous on purpose: a few hundred bytes into the page cache cost less than a thread-pool
   * round trip, and steps of one VM can never interleave two writes. Rewritten in place, with no
   * fsync and no temp file: the row is the durable copy, and the mirror only matters when the
   * database is lost, so a mirror torn by a crash at the same moment is not worth a new inode
   * per save.
   */
  private mirror(rec: VmRecord): void {
    const dir = state.vmDir(this.stateDir, rec.id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(vmFiles.handles(dir), JSON.stringify({ id: rec.id, name: rec.name, image: rec.image, vmm: rec.vmm, handles: rec.handles }, null, 2) + "\n", { mode: 0o600, flag: "w" });
  }
}
