import { open, stat } from "node:fs/promises";
import { state, vmFiles } from "../../paths/paths.js";
import type { VmRecord } from "../../state/vms.js";
import { allocatedBytes, readProcessStats, sampleCpuPercent } from "../../system/proc.js";
import { rootDiskOf } from "./teardown.js";

/** Read-only views of a VM: console log chunks and resource use from /proc and the disk files. */
export interface LogChunk {
  readonly path: string;
  readonly data: Buffer;
  readonly offset: number;
  readonly nextOffset: number;
  readonly size: number;
}

export function consoleLogPath(stateDir: string, vm: VmRecord): string {
  return vm.handles.console_log ?? vmFiles.consoleLog(state.vmDir(stateDir, vm.id));
}

/**
 * Reads from `offset` (or the last `tailBytes` when no offset is given). A
 * log that shrank (VM restarted, log truncated) restarts from 0 so `logs -f`
 * never stalls past the end.
 */
export async function readLogChunk(path: string, opts: { offset?: number | undefined; maxBytes?: number | undefined; tailBytes?: number | undefined; tailLines?: number | undefined }): Promise<LogChunk> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return { path, data: Buffer.alloc(0), offset: 0, nextOffset: 0, size: 0 };
  }
  const maxBytes = opts.maxBytes ?? 1024 * 1024;
  let offset = opts.offset ?? (opts.tailLines !== undefined ? await startOfLastLines(path, size, opts.tailLines) : opts.tailBytes !== undefined ? Math.max(0, size - opts.tailBytes) : 0);
  if (offset > size) offset = 0;
  const len = Math.min(maxBytes, size - offset);
  const data = Buffer.alloc(len);
  if (len > 0) {
    const fh = await open(path, "r");
    try {
      await fh.read(data, 0, len, offset);
    } finally {
      await fh.close();
    }
  }
  return { path, data, offset, nextOffset: offset + len, size };
}

/** How far back `--tail N` looks for N line starts: a console of endless lines still answers quickly. */
export const TAIL_SCAN_MAX_BYTES = 4 * 1024 * 1024;
const TAIL_BLOCK = 64 * 1024;

/**
 * Where the last `lines` lines of the file start, so a tail begins at a line's start and never inside
 * one (or inside an escape sequence). A last line without its newline counts as a line. Past
 * TAIL_SCAN_MAX_BYTES it starts at the first line start found within that window.
 */
export async function startOfLastLines(path: string, size: number, lines: number): Promise<number> {
  const floor = Math.max(0, size - TAIL_SCAN_MAX_BYTES);
  const fh = await open(path, "r");
  try {
    let seen = 0;
    let end = size;
    // The file's final newline ends the last line; it does not start another.
    let skipLast = true;
    let firstStart: number | undefined;
    while (end > floor) {
      const start = Math.max(floor, end - TAIL_BLOCK);
      const buf = Buffer.alloc(end - start);
      await fh.read(buf, 0, buf.length, start);
      for (let i = buf.length - 1; i >= 0; i--) {
        if (buf[i] !== 0x0a) continue;
        if (skipLast && start + i === size - 1) continue;
        firstStart = start + i + 1;
        if (++seen === lines) return start + i + 1;
      }
      skipLast = false;
      end = start;
    }
    return floor === 0 ? 0 : firstStart ?? floor;
  } finally {
    await fh.close();
  }
}

/** How long `vm stats` watches the VMM for its current CPU use. */
export const CPU_SAMPLE_MS = 1000;

export interface VmStats {
  readonly pid: number | null;
  /** Average since the VMM started. */
  readonly cpuPercent: number | null;
  /** Over the last CPU_SAMPLE_MS (0 while paused). */
  readonly cpuPercentRecent: number | null;
  readonly rssBytes: number | null;
  readonly uptimeS: number | null;
  readonly rootAllocatedBytes: number;
  readonly workAllocatedBytes: number;
  readonly workSizeBytes: number;
}

export async function vmStats(vm: VmRecord, procRoot = "/proc"): Promise<VmStats> {
  const pid = vm.state === "running" || vm.state === "paused" ? vm.handles.pid ?? null : null;
  let proc: Awaited<ReturnType<typeof readProcessStats>> | undefined;
  let recent: number | undefined;
  if (pid !== null) {
    try {
      [proc, recent] = await Promise.all([readProcessStats(pid, procRoot), sampleCpuPercent(pid, CPU_SAMPLE_MS, procRoot)]);
    } catch {
      // The VMM may have exited since the state was read; report no process numbers rather than fail.
    }
  }
  const root = rootDiskOf(vm);
  // A dm-snapshot root's growth lives in its COW file; a reflink/copy root is the file itself.
  const rootFile = typeof root?.["cow_path"] === "string" ? root["cow_path"] : root !== undefined && !root.path.startsWith("/dev/") ? root.path : undefined;
  const work = vm.handles.work_disk;
  let workSize = 0;
  if (work !== undefined) {
    try {
      workSize = (await stat(work)).size;
    } catch {
      workSize = 0;
    }
  }
  return {
    pid: proc !== undefined ? pid : null,
    cpuPercent: proc !== undefined ? Math.round(proc.cpuPercent * 10) / 10 : null,
    cpuPercentRecent: proc !== undefined && recent !== undefined ? Math.round(recent * 10) / 10 : null,
    rssBytes: proc?.rssBytes ?? null,
    uptimeS: proc !== undefined ? Math.round(proc.uptimeSeconds) : null,
    rootAllocatedBytes: rootFile !== undefined ? await allocatedBytes(rootFile) : 0,
    workAllocatedBytes: work !== undefined ? await allocatedBytes(work) : 0,
    workSizeBytes: workSize,
  };
}
