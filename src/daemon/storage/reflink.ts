import { constants } from "node:fs";
import { copyFile, rm } from "node:fs/promises";
import { vmFiles } from "../../paths/paths.js";
import type { CloneStrategy, RootDiskHandles } from "./types.js";

/**
 * FICLONE clones (xfs with reflink=1, btrfs): the new file shares every
 * extent with the image and the filesystem copies blocks only when one side
 * writes them, so the cost is independent of the image size. FICLONE_FORCE
 * makes copyFile fail instead of silently falling back to a full copy,
 * which would turn an O(1) create into an O(size) one without anyone noticing.
 */
export function reflinkStrategy(stateDir: string): CloneStrategy {
  return {
    name: "reflink",
    describe: () => `reflink (FICLONE) in ${stateDir}`,
    async clone(imageRootfs, vmDir) {
      const path = vmFiles.rootDisk(vmDir);
      try {
        await copyFile(imageRootfs, path, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? "";
        // EEXIST: that file is an existing VM disk, not our half-made clone.
        if (code === "EEXIST") throw new Error(`${path} already exists; refusing to overwrite a VM's root disk`, { cause: e });
        await rm(path, { force: true });
        const hint = ["ENOTSUP", "EOPNOTSUPP", "EXDEV", "EINVAL", "ENOSYS"].includes(code)
          ? `; the filesystem of ${stateDir} cannot reflink: put the state dir on xfs or btrfs, or set storage.clone_strategy = "copy"`
          : "";
        throw new Error(`reflink clone of ${imageRootfs} to ${path} failed: ${(e as Error).message}${hint}`, { cause: e });
      }
      const handles: RootDiskHandles = { kind: "reflink", path };
      return handles;
    },
    prepareBoot: (handles) => Promise.resolve(handles),
    deactivate: () => Promise.resolve(),
    async release(handles) {
      await rm(handles.path, { force: true });
    },
  };
}
