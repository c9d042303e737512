import { mkdir, rename, writeFile } from "node:fs/promises";
import { state, vmFiles } from "../../paths/paths.js";
import type { VmHandles, VmRecord, VmRepository } from "../../state/vms.js";

/**
 * Handles live in the `vms` row AND in the VM dir's handles.json, so a daemon
 * whose database was lost or corrupted can still find and tear down taps,
 * devices and VMM processes. The row is written first (the source of truth);
 * the mirror follows.
 */
export class HandleStore {
  /** Mirror writes per VM, one at a time: concurrent steps save handles, and two writers of one temp file could publish a torn copy. */
  private readonly mirrors = new Map<string, Promise<void>>();

  constructor(private readonly vms: VmRepository, private readonly stateDir: string) {}

  async save(vmId: string, patch: Partial<VmHandles>): Promise<VmRecord> {
    const rec = this.vms.updateHandles(vmId, patch);
    await this.mirrorLatest(vmId);
    return rec;
  }

  /** Queues a mirror of the row as it is when the write starts, so the last write always carries every patch. */
  private mirrorLatest(vmId: string): Promise<void> {
    const next = (this.mirrors.get(vmId) ?? Promise.resolve()).catch(() => undefined).then(async () => {
      const cur = this.vms.getById(vmId);
      if (cur !== undefined) await this.mirror(cur);
    });
    this.mirrors.set(vmId, next);
    const forget = (): void => { if (this.mirrors.get(vmId) === next) this.mirrors.delete(vmId); };
    next.then(forget, forget);
    return next;
  }

  private async mirror(rec: VmRecord): Promise<void> {
    const dir = state.vmDir(this.stateDir, rec.id);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = vmFiles.handles(dir);
    const tmp = `${path}.tmp`;
    await writeFile(tmp, JSON.stringify({ id: rec.id, name: rec.name, image: rec.image, vmm: rec.vmm, handles: rec.handles }, null, 2) + "\n", { mode: 0o600 });
    await rename(tmp, path);
  }
}
