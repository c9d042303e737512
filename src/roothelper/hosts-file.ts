import { randomBytes } from "node:crypto";
import { close, closeSync, constants, fchmod, fchown, fsync, readFile, write } from "node:fs";
import { promisify } from "node:util";
import { mergeHostsFile, type HostEntry } from "../model/hosts-block.js";
import { RpcError } from "../rpc/errors.js";
import { dirfdCalls } from "../system/dirfd-calls.js";
import { openRegular, RESOLVE, type Named } from "./fs/beneath.js";
import type { ManagedRoot } from "./fs/managed-root.js";

/**
 * The hosts file (network.hosts_file) as the helper edits it: only through
 * the descriptor of its directory, opened and checked root's alone at start
 * (fs/trust.ts trustedDir), never by name. The current file must be a
 * regular file of root's with one link (a FIFO, device or hard link in its
 * place is refused, not read); the new text goes to a fresh temp file in the
 * same directory, is fsynced, takes the old file's mode and owner, and is
 * renamed over it, so a reader sees the old file or the new one, never half
 * of one. Calls are serialized: each one reads what the last one wrote.
 * Reads, writes and fsyncs run on libuv's threads: a slow disk must not
 * stall the helper's other requests.
 */
export class HostsFile {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly dir: ManagedRoot, private readonly leaf: string) {}

  /** Path for messages. */
  get path(): string {
    return `${this.dir.path}/${this.leaf}`;
  }

  /** Replace `ownerUid`'s block with `entries`; whether the file changed (an unchanged block is not rewritten). */
  sync(ownerUid: number, entries: readonly HostEntry[]): Promise<boolean> {
    const run = this.chain.then(() => this.syncNow(ownerUid, entries));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async syncNow(ownerUid: number, entries: readonly HostEntry[]): Promise<boolean> {
    const n: Named = { field: "network.hosts_file", root: this.dir, rel: this.leaf };
    let existing = "";
    let meta = { mode: 0o644, uid: 0, gid: 0 };
    try {
      const { fd, stat } = openRegular(n, "read", { uid: 0 });
      try {
        existing = await promisify(readFile)(fd, "utf8");
      } finally {
        closeSync(fd);
      }
      meta = { mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
    } catch (e) {
      if (!(e instanceof RpcError && e.code === "not_found")) throw e;
    }
    const next = mergeHostsFile(existing, ownerUid, entries);
    if (next === existing) return false;
    await this.replace(next, meta);
    return true;
  }

  private async replace(text: string, meta: { mode: number; uid: number; gid: number }): Promise<void> {
    const calls = dirfdCalls();
    const tmp = `.${this.leaf}.banger-${randomBytes(6).toString("hex")}`;
    const fd = calls.openat2(this.dir.fd, tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600, RESOLVE);
    let open = true;
    let renamed = false;
    try {
      const data = Buffer.from(text, "utf8");
      for (let off = 0; off < data.length; ) off += (await promisify(write)(fd, data, off)).bytesWritten;
      await promisify(fchown)(fd, meta.uid, meta.gid);
      await promisify(fchmod)(fd, meta.mode);
      await promisify(fsync)(fd);
      open = false;
      await promisify(close)(fd);
      calls.renameat2(this.dir.fd, tmp, this.dir.fd, this.leaf, 0);
      renamed = true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new RpcError("internal", `writing ${this.path} failed: ${code ?? (e instanceof Error ? e.message : String(e))}${code === "EBUSY" ? " (it is a mount point: a bind-mounted hosts file cannot be replaced; set network.host_dns = \"none\" or \"resolved\")" : ""}`);
    } finally {
      if (open) closeSync(fd);
      if (!renamed) {
        try {
          calls.unlinkat(this.dir.fd, tmp, 0);
        } catch {
          // the temp file never came to be, or is gone: nothing left behind either way
        }
      }
    }
    // The rename is durable only once the directory entry is on disk.
    const dirFd = calls.openat2(this.dir.fd, ".", constants.O_RDONLY | constants.O_DIRECTORY, 0, RESOLVE);
    try {
      await promisify(fsync)(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
