import { createReadStream } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { Runner } from "../system/runner.js";
import { AGENT_PATH, RESEED_PATH } from "./agent-script.js";
import { writeDebianOverlay } from "./debian.js";
import type { LayerTree } from "./oci-tree.js";
import type { TarEntry } from "./tar-stream.js";
import { buildTinyTree, type TinyInputs, DEFAULT_TINY_INPUTS } from "./tiny-rootfs.js";

/** banger's boot and agent files: written over whatever the image has, since the guest contract depends on them. */
const ALWAYS = new Set(["etc/inittab", "etc/init.d/rcS", "etc/init.d/rcK", AGENT_PATH.slice(1), RESEED_PATH.slice(1)]);

/**
 * Give an image that has no init of its own banger's busybox-flavor pieces
 * (busybox init and applets, dropbear with its libraries, the network and
 * agent scripts, a root account), built exactly as for `--from busybox` in
 * STAGING and laid over TREE. The image's own files win (its busybox, its
 * passwd, its libraries), except the boot and agent scripts.
 */
export async function addBangerInit(runner: Runner, tree: LayerTree, staging: string, layer: number, inputs: TinyInputs = DEFAULT_TINY_INPUTS, signal?: AbortSignal): Promise<void> {
  await buildTinyTree(runner, staging, inputs, signal);
  await layOver(tree, staging, layer, (rel) => ALWAYS.has(rel));
}

/**
 * An image with systemd and sshd of its own gets what the Debian image is given (debian.ts):
 * the sshd drop-in for key-only root login, systemd-networkd enabled, the agent and its unit.
 */
export async function addSystemdPieces(tree: LayerTree, staging: string, layer: number): Promise<void> {
  await writeDebianOverlay(staging);
  await layOver(tree, staging, layer, () => true);
}

/** Lay STAGING's files over TREE: a path the image lacks is added; one it has is replaced only if `replace` says so. */
async function layOver(tree: LayerTree, staging: string, layer: number, replace: (rel: string) => boolean): Promise<void> {
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(staging, rel))).sort()) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const st = await lstat(join(staging, r));
      if (!tree.exists(r) || (!st.isDirectory() && replace(r))) {
        const type = st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : "file";
        const entry: TarEntry = {
          name: r, type, mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: Math.floor(st.mtimeMs / 1000),
          linkname: type === "symlink" ? await readlink(join(staging, r)) : "", size: type === "file" ? st.size : 0, xattrs: new Map(),
        };
        await tree.apply(entry, type === "file" ? createReadStream(join(staging, r)) : Readable.from([]), layer, "banger init");
      }
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk("");
}
