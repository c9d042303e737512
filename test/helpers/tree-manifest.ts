import { createHash } from "node:crypto";
import { createReadStream, lstatSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";

/** One entry of a tree as a copy must keep it: type, permission bits, mtime (s), and content hash or link target. */
export interface ManifestEntry {
  readonly path: string;
  readonly type: "file" | "dir" | "link";
  readonly mode: number;
  readonly mtimeS: number;
  readonly content: string;
}

/** Every entry under root (root itself as "."), sorted; file contents hashed as streams, so a 200 MiB file costs no memory. */
export async function treeManifest(root: string): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const p = join(root, rel);
    const st = lstatSync(p);
    const base = { path: rel, mode: st.mode & 0o7777, mtimeS: Math.floor(st.mtimeMs / 1000) };
    if (st.isSymbolicLink()) out.push({ ...base, mode: 0, type: "link", content: readlinkSync(p) });
    else if (st.isFile()) out.push({ ...base, type: "file", content: await sha256(p) });
    else if (st.isDirectory()) {
      out.push({ ...base, type: "dir", content: "" });
      for (const e of readdirSync(p).sort()) await walk(rel === "." ? e : `${rel}/${e}`);
    } else throw new Error(`${p}: not a file, directory or symlink`);
  };
  await walk(".");
  return out;
}

async function sha256(p: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
  return h.digest("hex");
}
