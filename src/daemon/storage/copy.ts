import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { vmFiles } from "../../paths/paths.js";
import type { Runner } from "../../system/runner.js";
import type { CloneStrategy, RootDiskHandles } from "./types.js";

/**
 * The fallback that works on any filesystem: a sparse copy. GNU cp walks
 * the image with SEEK_DATA/SEEK_HOLE, so only allocated blocks are read and
 * written and the copy stays sparse; cost grows with the data in the image,
 * not its apparent size. --reflink=never keeps it honest: this strategy is
 * chosen exactly when reflink does not work, and measuring it must measure a copy.
 */
export function copyStrategy(runner: Runner, stateDir: string): CloneStrategy {
  return {
    name: "copy",
    describe: () => `sparse copy in ${stateDir} (cost grows with image data)`,
    async clone(imageRootfs, vmDir) {
      const path = vmFiles.rootDisk(vmDir);
      // cp would silently overwrite an existing VM disk.
      if (existsSync(path)) throw new Error(`${path} already exists; refusing to overwrite a VM's root disk`);
      try {
        await runner.run(["cp", "--sparse=always", "--reflink=never", "--no-preserve=all", "--", imageRootfs, path], { timeoutMs: 30 * 60_000 });
      } catch (e) {
        await rm(path, { force: true });
        throw new Error(`copying ${imageRootfs} to ${path} failed: ${(e as Error).message}`, { cause: e });
      }
      const handles: RootDiskHandles = { kind: "copy", path };
      return handles;
    },
    prepareBoot: (handles) => Promise.resolve(handles),
    deactivate: () => Promise.resolve(),
    async release(handles) {
      await rm(handles.path, { force: true });
    },
  };
}
