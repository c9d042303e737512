import { copyFile, readFile, writeFile } from "node:fs/promises";
import { imageFiles } from "../paths/paths.js";
import { extractVmlinux } from "./bzimage.js";
import { assertBootableVmlinux, bufferSource, parseElf } from "./elf.js";

/**
 * Put both kernel forms into an image dir: the bzImage as given (qemu boots
 * it) and the ELF vmlinux extracted from it (Firecracker boots only ELF).
 * Fails with a message naming the file when the kernel is missing or garbage.
 */
export async function writeKernelFiles(kernel: string, imageDir: string): Promise<void> {
  let bz: Buffer;
  try {
    bz = await readFile(kernel);
  } catch (e) {
    throw new Error(`cannot read kernel ${kernel}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let vmlinux: Buffer;
  try {
    vmlinux = extractVmlinux(bz);
    assertBootableVmlinux(await parseElf(bufferSource(vmlinux)), `vmlinux extracted from ${kernel}`);
  } catch (e) {
    throw new Error(`kernel ${kernel} is not usable: ${e instanceof Error ? e.message : String(e)}`);
  }
  await copyFile(kernel, imageFiles.kernel(imageDir));
  await writeFile(imageFiles.vmlinux(imageDir), vmlinux);
}
