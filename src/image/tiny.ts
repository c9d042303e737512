import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { imageFiles } from "../paths/paths.js";
import type { Runner } from "../system/runner.js";
import { makeExt4 } from "./ext4.js";
import { buildInitrd } from "./initrd.js";
import { writeKernelFiles } from "./kernel-files.js";
import { type OnProgress, step } from "./progress.js";
import { buildTinyTree, DEFAULT_TINY_INPUTS, type TinyInputs } from "./tiny-rootfs.js";

export interface TinyBuildOptions {
  /** bzImage to use (the host's cloud kernel by default, resolved by the caller). */
  readonly kernel: string;
  /** /lib/modules/VERSION matching the kernel. */
  readonly modulesDir: string;
  /** Use this initrd instead of building one. */
  readonly initrd?: string | undefined;
  readonly inputs?: TinyInputs;
  /** rootfs.ext4 size; the tree itself is ~10 MB, the rest is room for tests to write. */
  readonly rootfsBytes?: number;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: OnProgress | undefined;
}

export const TINY_ROOTFS_BYTES = 128 * 1024 * 1024;

/**
 * Build the busybox-flavor image's four files into OUTDIR (which must exist
 * and be private to this build). Root is not needed.
 */
export async function buildTinyImage(runner: Runner, outDir: string, options: TinyBuildOptions): Promise<void> {
  const { signal, onProgress } = options;
  const inputs = options.inputs ?? DEFAULT_TINY_INPUTS;
  await step(onProgress, "kernel", () => writeKernelFiles(options.kernel, outDir));
  signal?.throwIfAborted();
  await step(onProgress, "initrd", async () => {
    if (options.initrd !== undefined) {
      await copyFile(options.initrd, imageFiles.initrd(outDir));
      return;
    }
    await writeFile(imageFiles.initrd(outDir), await buildInitrd(runner, { busybox: inputs.busybox, modulesDir: options.modulesDir }, signal));
  });
  signal?.throwIfAborted();
  const tree = join(outDir, ".tree");
  try {
    await step(onProgress, "rootfs tree", async () => {
      await mkdir(tree);
      await buildTinyTree(runner, tree, inputs, signal);
    });
    signal?.throwIfAborted();
    await step(onProgress, "rootfs.ext4", () => makeExt4(runner, tree, imageFiles.rootfs(outDir), options.rootfsBytes ?? TINY_ROOTFS_BYTES, { signal }));
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
}
