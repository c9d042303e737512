import { open, rm, stat, truncate } from "node:fs/promises";
import type { Runner } from "../../system/runner.js";
import { writeExt4Files } from "./ext4.js";

const GIB = 1024 ** 3;

/**
 * The guest's /root: a sparse ext4 file per VM (/dev/vdb), kept across
 * stop/start and removed with the VM. root_owner=0:0 because the daemon runs
 * as the owner and mkfs would otherwise give the guest's /root to the
 * owner's uid; lazy init keeps mkfs from writing every inode table of a
 * large, empty disk (the kernel finishes it in the background).
 */
export async function createWorkDisk(runner: Runner, path: string, sizeGib: number, authorizedKeys?: string): Promise<void> {
  if (!Number.isInteger(sizeGib) || sizeGib < 1 || sizeGib > 16384) throw new Error(`work disk size ${sizeGib} GiB is not an integer between 1 and 16384`);
  const fh = await open(path, "wx", 0o600);
  try {
    await fh.truncate(sizeGib * GIB);
    await fh.close();
    await runner.run(["mkfs.ext4", "-F", "-q", "-L", "banger-work", "-E", "root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1", path], { timeoutMs: 10 * 60_000 });
    if (authorizedKeys !== undefined) await injectAuthorizedKeys(runner, path, authorizedKeys);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(path, { force: true });
    throw new Error(`creating work disk ${path} failed: ${(e as Error).message}`, { cause: e });
  }
}

/** /.ssh/authorized_keys on the work disk = /root/.ssh/authorized_keys in the guest (dir 0700, file 0600, root). */
export async function injectAuthorizedKeys(runner: Runner, workDisk: string, authorizedKeys: string): Promise<void> {
  const data = authorizedKeys.endsWith("\n") ? authorizedKeys : authorizedKeys + "\n";
  await writeExt4Files(runner, workDisk, [{ path: "/.ssh/authorized_keys", data, mode: 0o600, uid: 0, gid: 0 }], [{ path: "/.ssh", mode: 0o700, uid: 0, gid: 0 }]);
}

/**
 * Grows an ext4 image file (a reflink or copy clone) to `bytes`:
 * truncate, e2fsck -pf (resize2fs insists on a freshly checked fs; exit 1
 * means "fixed", which is fine), resize2fs. Shrinking is refused: it would
 * need resize2fs -M first and can lose data the guest wrote.
 */
export async function resizeExt4Image(runner: Runner, path: string, bytes: number): Promise<void> {
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % 4096 !== 0) throw new Error(`root size ${bytes} must be a positive multiple of 4096 bytes`);
  const { size } = await stat(path);
  if (bytes < size) throw new Error(`root size ${bytes} is smaller than the image (${size} bytes); shrinking is not supported`);
  if (bytes === size) return;
  await truncate(path, bytes);
  await runner.run(["e2fsck", "-p", "-f", path], { okExitCodes: [1], timeoutMs: 10 * 60_000 });
  await runner.run(["resize2fs", path], { timeoutMs: 10 * 60_000 });
}

/** "8G", "512M", "1073741824" -> bytes (binary units), as accepted by `--root-size`. */
export function parseSize(text: string): number {
  const m = /^([1-9][0-9]*)([KMGT]?)(i?B)?$/i.exec(text.trim());
  if (m === null) throw new Error(`${JSON.stringify(text)} is not a size like 8G, 512M or a byte count`);
  const unit = (m[2] ?? "").toUpperCase();
  const mult = unit === "K" ? 1024 : unit === "M" ? 1024 ** 2 : unit === "G" ? GIB : unit === "T" ? 1024 ** 4 : 1;
  const n = Number(m[1]) * mult;
  if (!Number.isSafeInteger(n)) throw new Error(`${text} is too large`);
  return n;
}
