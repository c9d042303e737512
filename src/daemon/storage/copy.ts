import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { vmFiles } from "../../paths/paths.js";
import { sparseCopy } from "../../system/sparse-copy.js";
import type { Copier } from "./spare-copies.js";
import type { CloneStrategy, RootDiskHandles } from "./types.js";

/**
 * The fallback that works on any filesystem: a sparse copy (sparse-copy.ts)
 * of the image's data extents only, so the copy stays sparse and its cost
 * grows with the data in the image, not its apparent size. It never tries
 * reflink: this strategy is chosen exactly when reflink does not work, and
 * measuring it must measure a copy. `copy` lets the storage service hand
 * out a copy it made ahead (spare-copies.ts).
 */
export function copyStrategy(stateDir: string, copy: Copier = sparseCopy): CloneStrategy {
  return {
    name: "copy",
    describe: () => `sparse copy in ${stateDir} (cost grows with image data)`,
    async clone(imageRootfs, vmDir) {
      const path = vmFiles.rootDisk(vmDir);
      if (existsSync(path)) throw new Error(`${path} already exists; refusing to overwrite a VM's root disk`);
      await copy(imageRootfs, path);
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
