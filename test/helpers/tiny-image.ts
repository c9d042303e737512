import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BASE_CMDLINE, TCG_KERNEL_ARGS } from "../../src/image/cmdline.js";
import { findKernel } from "../../src/image/host-kernel.js";
import { agentScript } from "../../src/image/agent-script.js";
import { DEFAULT_TINY_INPUTS } from "../../src/image/tiny-rootfs.js";
import { buildTinyImage } from "../../src/image/tiny.js";
import { imageFiles } from "../../src/paths/paths.js";
import { systemRunner } from "../../src/system/runner.js";
import { needsCommands, requires } from "./requirements.js";

/**
 * The tiny (busybox + dropbear) guest image for tests, built from host
 * packages and cached under /tmp/banger-test-cache/tiny-<hash of inputs>,
 * so only the first test run of a given builder/kernel pays the ~5 s build.
 *
 * The files are SHARED between tests: never boot rootfs.ext4 read-write
 * in place — copy it (cp --reflink=auto) or use a qemu snapshot/overlay.
 */
export interface TinyImage {
  readonly dir: string;
  /** bzImage (qemu -kernel). */
  readonly kernel: string;
  /** ELF vmlinux extracted from the bzImage (Firecracker, or qemu -kernel too). */
  readonly vmlinux: string;
  readonly initrd: string;
  readonly rootfs: string;
  readonly kernelVersion: string;
}

export const TEST_CACHE_DIR = "/tmp/banger-test-cache";

/** Kernel command line for booting the tiny image under qemu TCG in tests (contract base + the TCG clock fix). */
export const TINY_CMDLINE = `${BASE_CMDLINE} ${TCG_KERNEL_ARGS}`;

/** Skip reason when the tiny image cannot be built on this host, else false. */
export function tinyImageSkip(): string | false {
  return requires(needsCommands("mkfs.ext4", "busybox", "dropbear"));
}

// The builder's own compiled code is part of the cache key, so a change to an
// init script or to the cpio writer invalidates stale cached images.
const BUILDER_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "image");

async function cacheKey(kernel: string, modulesDir: string): Promise<string> {
  const h = createHash("sha256");
  for (const p of [kernel, join(modulesDir, "modules.dep"), DEFAULT_TINY_INPUTS.busybox, DEFAULT_TINY_INPUTS.dropbear]) {
    const s = await stat(p);
    h.update(`${p}\0${s.size}\0${s.mtimeMs}\0`);
  }
  for (const name of (await readdir(BUILDER_DIR)).filter((n) => n.endsWith(".js")).sort()) {
    h.update(name).update(await readFile(join(BUILDER_DIR, name)));
  }
  // The agent's text also comes from outside src/image (its field patterns: src/vmm/agent-line.ts).
  h.update(agentScript("tiny"));
  return h.digest("hex").slice(0, 16);
}

function paths(dir: string, kernelVersion: string): TinyImage {
  return { dir, kernel: imageFiles.kernel(dir), vmlinux: imageFiles.vmlinux(dir), initrd: imageFiles.initrd(dir), rootfs: imageFiles.rootfs(dir), kernelVersion };
}

let pending: Promise<TinyImage> | undefined;

/** Build (once per key, shared across processes) and return the tiny image's paths. */
export function tinyImage(): Promise<TinyImage> {
  pending ??= build().catch((e: unknown) => {
    pending = undefined;
    throw e;
  });
  return pending;
}

async function build(): Promise<TinyImage> {
  const host = await findKernel("/");
  const dir = join(TEST_CACHE_DIR, `tiny-${await cacheKey(host.kernel, host.modulesDir)}`);
  try {
    await stat(imageFiles.rootfs(dir));
    return paths(dir, host.version);
  } catch {
    // not cached yet
  }
  await mkdir(TEST_CACHE_DIR, { recursive: true });
  // Build beside the final dir and rename: concurrent test processes either
  // win the rename or find a complete image; nobody sees a half-built one.
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(tmp);
  try {
    await buildTinyImage(systemRunner, tmp, { kernel: host.kernel, modulesDir: host.modulesDir });
    try {
      await rename(tmp, dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  await pruneStale(dir);
  return paths(dir, host.version);
}

/**
 * Every builder change makes a new key, so old images pile up (~80 MB each).
 * Remove other tiny-* entries untouched for an hour: no test of the current
 * checkout can still be using them.
 */
async function pruneStale(keep: string): Promise<void> {
  const cutoff = Date.now() - 60 * 60_000;
  for (const name of await readdir(TEST_CACHE_DIR).catch(() => [])) {
    const p = join(TEST_CACHE_DIR, name);
    if (!name.startsWith("tiny-") || p === keep) continue;
    const st = await stat(p).catch(() => undefined);
    if (st !== undefined && st.mtimeMs < cutoff) await rm(p, { recursive: true, force: true });
  }
}
