import { open, rm } from "node:fs/promises";
import type { Runner } from "../system/runner.js";

/**
 * Wrap argv so it sees the owner's files as owned by root. mkfs.ext4 -d copies
 * each file's uid/gid into the image, and a guest needs /etc/shadow, /root,
 * dropbear's keys, ... owned by root. As root nothing is needed; as the
 * non-root owner a user namespace mapping the owner to uid 0 makes the tree
 * look root-owned without any privilege (needs unprivileged user namespaces,
 * on by default on Debian 11+).
 */
export function asTreeRoot(argv: readonly string[], uid: number = process.getuid?.() ?? 0): string[] {
  return uid === 0 ? [...argv] : ["unshare", "--map-root-user", "--", ...argv];
}

export interface MakeExt4Options {
  readonly label?: string;
  readonly signal?: AbortSignal | undefined;
  /** Override for tests; defaults to the process uid. */
  readonly uid?: number;
}

/**
 * mkfs.ext4 -E options for an image made in a new, empty (sparse) file. Its unwritten blocks
 * already read as zeros, so zeroing the journal (32 MiB for a 1 GiB disk) only allocates them:
 * every VM's root disk copy would then copy 32 MiB of zeros (without reflink, the copy is
 * what a create costs most).
 */
export const FRESH_FILE_EXT4_OPTIONS = "root_owner=0:0,lazy_journal_init=1";

/** Turn a directory tree into a new ext4 image file of the given size (replacing `file`), without mounting anything. */
export async function makeExt4(runner: Runner, tree: string, file: string, sizeBytes: number, options: MakeExt4Options = {}): Promise<void> {
  const sizeKiB = Math.ceil(sizeBytes / 1024 / 4) * 4;
  // A fresh file, so lazy_journal_init leaves zeros and not an older image's bytes in the journal.
  await rm(file, { force: true });
  const argv = ["mkfs.ext4", "-q", "-F", "-b", "4096", "-L", options.label ?? "rootfs", "-E", FRESH_FILE_EXT4_OPTIONS, "-d", tree, file, `${sizeKiB}k`];
  await runner.run(asTreeRoot(argv, options.uid), { timeoutMs: 30 * 60_000, ...(options.signal === undefined ? {} : { signal: options.signal }) });
}

/** ext2/3/4 superblock magic at byte 1024+56. */
export async function isExt4(file: string): Promise<boolean> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await fh.read(buf, 0, 2, 1024 + 56);
    return bytesRead === 2 && buf.readUInt16LE(0) === 0xef53;
  } finally {
    await fh.close();
  }
}
