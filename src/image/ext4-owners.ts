import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Runner } from "../system/runner.js";

export interface InodeOwner {
  readonly path: string;
  readonly uid: number;
  readonly gid: number;
  readonly xattrs: ReadonlyMap<string, Buffer>;
}

/** debugfs's parser takes a double-quoted word, with "" for a quote inside it; a newline would end the command. */
function word(s: string): string {
  if (/[\n\r]/.test(s)) throw new Error(`cannot set ownership of ${JSON.stringify(s)}: the name holds a line break`);
  return `"${s.replaceAll('"', '""')}"`;
}

const XATTR_NAME_RE = /^(?:user|trusted|security)\.[A-Za-z0-9._-]{1,200}$/;

/**
 * Owners and xattrs written into a finished ext4 image with `debugfs -w`: the
 * owner, without privilege, cannot give files in a tree other owners, but may
 * edit its own image file. debugfs exits 0 even when a command fails, so any
 * message on stderr past its banner is a failure.
 */
export async function setOwners(runner: Runner, image: string, owners: readonly InodeOwner[], scratch: string, signal?: AbortSignal): Promise<void> {
  if (owners.length === 0) return;
  const lines: string[] = [];
  let n = 0;
  for (const o of owners) {
    const p = word(o.path);
    if (o.uid !== 0) lines.push(`sif ${p} uid ${o.uid}`);
    if (o.gid !== 0) lines.push(`sif ${p} gid ${o.gid}`);
    for (const [name, value] of o.xattrs) {
      if (!XATTR_NAME_RE.test(name)) continue; // e.g. system.* ACLs, which mkfs would not carry either
      const f = join(scratch, `xattr-${n++}`);
      await writeFile(f, value, { mode: 0o600 });
      lines.push(`ea_set -f ${word(f)} ${p} ${name}`);
    }
  }
  const cmds = join(scratch, "owners.debugfs");
  await writeFile(cmds, lines.join("\n") + "\n", { mode: 0o600 });
  const r = await runner.run(["debugfs", "-w", "-f", cmds, image], { timeoutMs: 30 * 60_000, ...(signal === undefined ? {} : { signal }) });
  const errors = r.stderr.toString("utf8").split("\n").filter((l) => l.trim() !== "" && !/^debugfs \d/.test(l));
  if (errors.length > 0) throw new Error(`setting owners in ${image} failed: ${errors.slice(0, 5).join(" | ")}`);
}
