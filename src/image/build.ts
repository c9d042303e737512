import { constants } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type ExecDefaults, NO_EXEC_DEFAULTS } from "../model/exec-defaults.js";
import { imageFiles, state } from "../paths/paths.js";
import type { ImageFlavor } from "../state/images.js";
import type { Runner } from "../system/runner.js";
import { bzImageVersion } from "./bzimage.js";
import { debootstrap, overlayTarArgv, writeDebianOverlay } from "./debian.js";
import { asTreeRoot, FRESH_FILE_EXT4_OPTIONS, isExt4, makeExt4 } from "./ext4.js";
import { setOwners } from "./ext4-owners.js";
import { findKernel } from "./host-kernel.js";
import { buildInitrd, DEFAULT_BUSYBOX } from "./initrd.js";
import { writeKernelFiles } from "./kernel-files.js";
import { openOciArchive, userByUid } from "./oci-archive.js";
import { addBangerInit, addSystemdPieces } from "./oci-init.js";
import { LayerTree } from "./oci-tree.js";
import { type OnProgress, step } from "./progress.js";
import { subidNamespace } from "./subid.js";
import { buildTinyImage } from "./tiny.js";
import { DEFAULT_TINY_INPUTS } from "./tiny-rootfs.js";

/** Image names become directory names and VM create arguments: keep them boring. */
export const IMAGE_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

export class ImageInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageInputError";
  }
}

export function checkImageName(name: string): string {
  if (!IMAGE_NAME_RE.test(name)) throw new ImageInputError(`invalid image name ${JSON.stringify(name)}: use 1-63 lowercase letters, digits or '-', starting with a letter or digit (same rule as defaults.image)`);
  return name;
}

export type BuildSource =
  | { readonly kind: "debian"; readonly suite: string }
  | { readonly kind: "busybox" }
  | { readonly kind: "dir"; readonly path: string }
  | { readonly kind: "tar"; readonly path: string }
  | { readonly kind: "oci"; readonly path: string };

/** Parse `--from`: debian:SUITE, busybox, oci-archive:PATH, an existing directory, or a .tar[.gz|.xz|.zst] file. */
export async function parseFrom(from: string): Promise<BuildSource> {
  if (from === "busybox") return { kind: "busybox" };
  if (from.startsWith("oci-archive:")) {
    const path = from.slice("oci-archive:".length);
    if (!path.startsWith("/")) throw new ImageInputError(`--from ${JSON.stringify(from)}: give oci-archive:PATH with an absolute PATH`);
    const st = await stat(path).catch(() => undefined);
    if (st?.isDirectory() !== true && st?.isFile() !== true) throw new ImageInputError(`--from ${JSON.stringify(from)}: ${path} is neither an OCI layout directory nor an archive file`);
    return { kind: "oci", path };
  }
  if (from.startsWith("debian:")) {
    const suite = from.slice("debian:".length);
    if (suite !== "bookworm") throw new ImageInputError(`unsupported --from ${JSON.stringify(from)}: only debian:bookworm is supported`);
    return { kind: "debian", suite };
  }
  if (from.startsWith("/") || from.startsWith(".")) {
    const path = resolve(from);
    const st = await stat(path).catch(() => undefined);
    if (st?.isDirectory() === true) return { kind: "dir", path };
    if (st?.isFile() === true && /\.(tar|tar\.gz|tgz|tar\.xz|tar\.zst)$/.test(path)) return { kind: "tar", path };
    throw new ImageInputError(`--from ${JSON.stringify(from)} is neither a directory nor a .tar/.tar.gz/.tar.xz/.tar.zst file`);
  }
  throw new ImageInputError(`unknown --from ${JSON.stringify(from)}: use debian:bookworm, busybox, oci-archive:PATH, a directory, or a tarball path`);
}

export function sourceLabel(src: BuildSource): string {
  switch (src.kind) {
    case "debian": return `debian:${src.suite}`;
    case "busybox": return "busybox";
    case "dir": return `dir:${src.path}`;
    case "tar": return `tar:${src.path}`;
    case "oci": return `oci-archive:${src.path}`;
  }
}

export interface BuildRequest {
  readonly name: string;
  readonly source: BuildSource;
  readonly kernel?: string | undefined;
  readonly initrd?: string | undefined;
  /** Replace an existing image dir of that name. */
  readonly force?: boolean | undefined;
}

export interface BuildContext {
  readonly stateDir: string;
  readonly runner: Runner;
  /** The building process's uid (the owner daemon's, or 0). */
  readonly uid: number;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: OnProgress | undefined;
}

/** What a finished build put into the image dir: the fields of the image record. */
export interface BuiltImage {
  readonly name: string;
  readonly source: string;
  readonly flavor: ImageFlavor;
  readonly dir: string;
  readonly kernelPath: string;
  readonly vmlinuxPath: string;
  readonly initrdPath: string;
  readonly rootfsPath: string;
  readonly kernelVersion: string | null;
  readonly sizeBytes: number;
  /** User, env and workdir `vm exec`/`vm ssh` default to (from an OCI image's config). */
  readonly execDefaults: ExecDefaults;
}

const MiB = 1024 * 1024;

/** Allocated bytes of the image files (the rootfs is sparse). */
async function allocatedBytes(dir: string): Promise<number> {
  let total = 0;
  for (const f of await readdir(dir)) {
    const st = await stat(join(dir, f));
    total += st.blocks * 512;
  }
  return total;
}

async function treeBytes(runner: Runner, tree: string, prefix: readonly string[]): Promise<number> {
  const out = (await runner.run([...prefix, "du", "-s", "-B1", "--apparent-size", tree])).stdout.toString("utf8");
  const n = Number(out.split(/\s/)[0]);
  if (!Number.isFinite(n)) throw new Error(`cannot size ${tree}: du said ${JSON.stringify(out)}`);
  return n;
}

/** Roomy enough for a dev sandbox on top of the base system; sparse, so free space costs nothing until used. */
function rootfsSize(treeSize: number): number {
  return Math.ceil((treeSize * 1.3 + 1024 * MiB) / MiB) * MiB;
}

/** A root tree's flavor: systemd if its init is systemd, else busybox conventions apply. */
async function detectFlavor(tree: string): Promise<ImageFlavor> {
  for (const p of ["lib/systemd/systemd", "usr/lib/systemd/systemd"]) {
    if (await stat(join(tree, p)).then(() => true, () => false)) return "systemd";
  }
  return "busybox";
}

/**
 * Resolve the kernel + modules for a build. --kernel wins; the modules for its
 * version (from the bzImage header) must then be in MODULES_ROOT or the host,
 * unless --initrd is given too.
 */
async function kernelFor(req: BuildRequest, modulesRoots: readonly string[]): Promise<{ kernel: string; modulesDir: string | undefined; version: string | null }> {
  if (req.kernel === undefined) {
    for (const root of modulesRoots) {
      try {
        const k = await findKernel(root);
        return { kernel: k.kernel, modulesDir: k.modulesDir, version: k.version };
      } catch {
        // try the next root
      }
    }
    throw new ImageInputError(`no kernel found in ${modulesRoots.join(" or ")}; install linux-image-cloud-amd64 on the host or pass --kernel`);
  }
  let version: string;
  try {
    version = bzImageVersion(await readFile(req.kernel));
  } catch (e) {
    throw new ImageInputError(`--kernel ${req.kernel} is not usable: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (req.initrd !== undefined) return { kernel: req.kernel, modulesDir: undefined, version };
  for (const root of modulesRoots) {
    const dir = join(root, "lib/modules", version);
    if (await stat(join(dir, "modules.dep")).then(() => true, () => false)) return { kernel: req.kernel, modulesDir: dir, version };
  }
  throw new ImageInputError(`no modules for kernel ${version} (--kernel ${req.kernel}) in ${modulesRoots.map((r) => join(r, "lib/modules")).join(" or ")}; pass --initrd too`);
}

async function writeInitrd(ctx: BuildContext, out: string, initrd: string | undefined, modulesDir: string | undefined): Promise<void> {
  if (initrd !== undefined) {
    await copyFile(initrd, imageFiles.initrd(out)).catch((e: unknown) => {
      throw new ImageInputError(`cannot read --initrd ${initrd}: ${e instanceof Error ? e.message : String(e)}`);
    });
    return;
  }
  if (modulesDir === undefined) throw new Error("internal: no modules dir and no initrd");
  await writeFile(imageFiles.initrd(out), await buildInitrd(ctx.runner, { busybox: DEFAULT_BUSYBOX, modulesDir }, ctx.signal));
}

/**
 * Build an image into a private temp dir under state.imageBuildDir and move
 * it into state.imageDir only when every file is complete. Any failure or
 * abort removes the temp dir, so there is never a partial image; the caller
 * records the result in the database only after this returns.
 */
export async function buildImage(req: BuildRequest, ctx: BuildContext): Promise<BuiltImage> {
  checkImageName(req.name);
  const finalDir = state.imageDir(ctx.stateDir, req.name);
  if (req.force !== true && (await stat(finalDir).then(() => true, () => false))) {
    throw new ImageInputError(`image ${req.name} already exists (${finalDir}); use --force to rebuild it`);
  }
  if (req.kernel !== undefined) await stat(req.kernel).catch(() => { throw new ImageInputError(`--kernel ${req.kernel ?? ""} does not exist`); });
  if (req.initrd !== undefined) await stat(req.initrd).catch(() => { throw new ImageInputError(`--initrd ${req.initrd ?? ""} does not exist`); });
  const buildRoot = state.imageBuildDir(ctx.stateDir);
  await mkdir(buildRoot, { recursive: true, mode: 0o700 });
  const work = await mkdtemp(join(buildRoot, `${req.name}-`));
  const out = join(work, "image");
  await mkdir(out);
  // Trees from mmdebstrap's unshare mode belong to subuids: only a matching namespace can remove them.
  let cleanupAs: { prefix: string[]; dir: string; ownerDir: string } | undefined;
  try {
    let flavor: ImageFlavor;
    let version: string | null;
    let execDefaults = NO_EXEC_DEFAULTS;
    const src = req.source;
    if (src.kind === "oci") {
      const built = await buildOci(req, ctx, src.path, work, out);
      ({ flavor, version, execDefaults } = built);
    } else if (src.kind === "busybox") {
      const k = await kernelFor(req, ["/"]);
      await buildTinyImage(ctx.runner, out, { kernel: k.kernel, modulesDir: k.modulesDir ?? "", initrd: req.initrd, signal: ctx.signal, onProgress: ctx.onProgress });
      flavor = "busybox";
      version = k.version;
    } else {
      if (src.kind === "debian") {
        const built = await buildDebian(req, ctx, src.suite, work, out, (prefix, dir, ownerDir) => { cleanupAs = { prefix, dir, ownerDir }; });
        version = built.version;
        flavor = "systemd";
      } else {
        let source = src.path;
        if (src.kind === "tar") {
          const tree = join(work, "tree");
          await mkdir(tree);
          // --no-same-owner under a root-mapped namespace: everything becomes (guest) root-owned without privilege.
          await step(ctx.onProgress, "unpack", () => ctx.runner.run(asTreeRoot(["tar", "-x", "--no-same-owner", "-f", src.path, "-C", tree], ctx.uid), { timeoutMs: 30 * 60_000, ...(ctx.signal === undefined ? {} : { signal: ctx.signal }) }));
          source = tree;
        }
        const k = await kernelFor(req, [source, "/"]);
        await step(ctx.onProgress, "kernel", () => writeKernelFiles(k.kernel, out));
        await step(ctx.onProgress, "initrd", () => writeInitrd(ctx, out, req.initrd, k.modulesDir));
        version = k.version;
        flavor = await detectFlavor(source);
        await step(ctx.onProgress, "rootfs.ext4", async () => makeExt4(ctx.runner, source, imageFiles.rootfs(out), rootfsSize(await treeBytes(ctx.runner, source, [])), { signal: ctx.signal, uid: ctx.uid }));
      }
    }
    ctx.signal?.throwIfAborted();
    if (!(await isExt4(imageFiles.rootfs(out)))) throw new Error(`internal: ${imageFiles.rootfs(out)} is not ext4 after the build`);
    // Swap into place: the old image (with --force) is renamed aside first and
    // removed only after the new one is in, so a crash leaves one or the other.
    await mkdir(state.imagesDir(ctx.stateDir), { recursive: true });
    const old = join(work, "old");
    const hadOld = await rename(finalDir, old).then(() => true, (e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw e;
    });
    try {
      await rename(out, finalDir);
    } catch (e) {
      if (hadOld) await rename(old, finalDir).catch(() => undefined);
      throw e;
    }
    return {
      name: req.name,
      source: sourceLabel(src),
      flavor,
      dir: finalDir,
      kernelPath: imageFiles.kernel(finalDir),
      vmlinuxPath: imageFiles.vmlinux(finalDir),
      initrdPath: imageFiles.initrd(finalDir),
      rootfsPath: imageFiles.rootfs(finalDir),
      kernelVersion: version,
      sizeBytes: await allocatedBytes(finalDir),
      execDefaults,
    };
  } finally {
    if (cleanupAs !== undefined) {
      // The tree's files belong to subuids: only the namespace's root can delete them (it cannot unlink the
      // tree dir itself from the owner's scratch dir, so that error is expected); the owner removes the rest.
      await ctx.runner.run([...cleanupAs.prefix, "rm", "-rf", "--one-file-system", "--", join(cleanupAs.dir, "tree")]).catch(() => undefined);
      await rm(cleanupAs.dir, { recursive: true, force: true }).catch(() => undefined);
      await rm(cleanupAs.ownerDir, { recursive: true, force: true });
      await rm(`${cleanupAs.ownerDir}.tar`, { force: true });
    }
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Debian via mmdebstrap. As root: root mode, everything under WORK. As the
 * non-root owner: unshare mode, whose guest root is the owner's first subuid;
 * that id cannot enter the owner's 0700 state dir, so the tree lives in a
 * scratch dir the namespace itself creates in the sticky, world-writable
 * tmpdir (mode 0755: distro files only; host keys are deleted in the build),
 * and mkfs/du/rm run in the same id mapping so ownership survives into ext4.
 */
async function buildDebian(req: BuildRequest, ctx: BuildContext, suite: string, work: string, out: string, registerCleanup: (prefix: string[], dir: string, ownerDir: string) => void): Promise<{ version: string | null }> {
  const prefix = ctx.uid === 0 ? [] : await subidNamespace(ctx.uid);
  let scratch = work;
  let overlay = join(work, "overlay");
  if (prefix.length > 0) {
    // 0711 + random names inside: mmdebstrap's namespace can reach the tree without the dir being listable or writable by others.
    scratch = await mkdtemp(join(tmpdir(), "banger-build-"));
    // mmdebstrap's sync-in may read the overlay from inside its namespace, which cannot enter the state dir: world-readable tmp, nothing secret in it.
    overlay = await mkdtemp(join(tmpdir(), "banger-overlay-"));
    registerCleanup(prefix, scratch, overlay);
    await chmod(scratch, 0o711);
    await chmod(overlay, 0o755);
  } else {
    await mkdir(overlay);
  }
  await mkdir(join(scratch, "boot"), { mode: 0o755 });
  await writeDebianOverlay(overlay);
  const overlayTar = `${overlay}.tar`;
  await ctx.runner.run(overlayTarArgv(overlay, overlayTar));
  const tree = join(scratch, "tree");
  const bootOut = join(scratch, "boot");
  await step(ctx.onProgress, "debootstrap", () => debootstrap(ctx.runner, { suite, tree, overlayTar, bootOut, uid: ctx.uid, signal: ctx.signal }));
  const bootDir = (await stat(join(bootOut, "boot")).then(() => true, () => false)) ? join(bootOut, "boot") : bootOut;
  const kernelRoot = join(work, "kernelroot");
  await mkdir(kernelRoot);
  await symlink(bootDir, join(kernelRoot, "boot"));
  await symlink(join(tree, "lib"), join(kernelRoot, "lib"));
  const k = await kernelFor(req, [kernelRoot, "/"]);
  await step(ctx.onProgress, "kernel", () => writeKernelFiles(k.kernel, out));
  await step(ctx.onProgress, "initrd", () => writeInitrd(ctx, out, req.initrd, k.modulesDir));
  await step(ctx.onProgress, "rootfs.ext4", async () => {
    const size = rootfsSize(await treeBytes(ctx.runner, tree, prefix));
    if (prefix.length === 0) {
      await makeExt4(ctx.runner, tree, imageFiles.rootfs(out), size, { signal: ctx.signal, uid: 0 });
      return;
    }
    // The namespace's root cannot create files in the owner's dirs, so the owner creates the (randomly named)
    // image file and lets it write: mkfs -F fills an existing file. Then it is copied into the owner's state dir.
    const tmpImage = join(scratch, `rootfs-${randomBytes(8).toString("hex")}.ext4`);
    await writeFile(tmpImage, "", { mode: 0o666 });
    await chmod(tmpImage, 0o666);
    const sizeKiB = Math.ceil(size / 1024 / 4) * 4;
    await ctx.runner.run([...prefix, "mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "rootfs", "-E", FRESH_FILE_EXT4_OPTIONS, "-d", tree, tmpImage, `${sizeKiB}k`], { timeoutMs: 30 * 60_000, ...(ctx.signal === undefined ? {} : { signal: ctx.signal }) });
    await chmod(tmpImage, 0o600);
    await ctx.runner.run(["cp", "--sparse=always", "--", tmpImage, imageFiles.rootfs(out)], { timeoutMs: 30 * 60_000 });
  });
  return { version: k.version };
}

/**
 * An OCI image: layers applied in order onto a fresh tree as the owner
 * (oci-tree.ts), banger's busybox init laid over an image without systemd (the
 * Debian image's sshd/networkd/agent pieces over one with it), banger's
 * default kernel and initrd, then mkfs.ext4 -d and the image's owners and
 * xattrs written into the ext4 (ext4-owners.ts).
 */
async function buildOci(req: BuildRequest, ctx: BuildContext, path: string, work: string, out: string): Promise<{ flavor: ImageFlavor; version: string | null; execDefaults: ExecDefaults }> {
  const image = await step(ctx.onProgress, "read archive", () => openOciArchive(path));
  const treeDir = join(work, "tree");
  await mkdir(treeDir, { mode: 0o700 });
  const tree = new LayerTree(treeDir);
  await step(ctx.onProgress, "layers", async () => {
    for (const [i, layer] of image.layers.entries()) {
      for await (const { entry, body } of layer.entries()) {
        ctx.signal?.throwIfAborted();
        await tree.apply(entry, body, i, layer.label);
      }
    }
  });
  const execDefaults = userByUid(image.defaults, (await tree.readSmallFile("etc/passwd", 1024 * 1024))?.toString("utf8"));
  const systemd = tree.exists("lib/systemd/systemd") || tree.exists("usr/lib/systemd/systemd");
  const staging = join(work, "banger-init");
  await mkdir(staging);
  if (systemd) {
    // banger's dropbear would fight systemd for the boot; the image must bring the ssh server a systemd guest uses.
    if (!tree.exists("usr/sbin/sshd")) throw new ImageInputError(`the image at ${path} runs systemd but has no /usr/sbin/sshd: install openssh-server in it (banger adds its own ssh server only to images without systemd)`);
    await step(ctx.onProgress, "banger init", () => addSystemdPieces(tree, staging, image.layers.length));
  } else {
    await step(ctx.onProgress, "banger init", () => addBangerInit(ctx.runner, tree, staging, image.layers.length, DEFAULT_TINY_INPUTS, ctx.signal));
  }
  const k = await kernelFor(req, ["/"]);
  await step(ctx.onProgress, "kernel", () => writeKernelFiles(k.kernel, out));
  await step(ctx.onProgress, "initrd", () => writeInitrd(ctx, out, req.initrd, k.modulesDir));
  await tree.finish();
  try {
    await step(ctx.onProgress, "rootfs.ext4", async () => makeExt4(ctx.runner, treeDir, imageFiles.rootfs(out), rootfsSize(await treeBytes(ctx.runner, treeDir, [])), { signal: ctx.signal, uid: ctx.uid }));
  } finally {
    // The image's own modes may make directories read-only, which would stop the cleanup's rm.
    await tree.unlock();
  }
  await step(ctx.onProgress, "owners", () => setOwners(ctx.runner, imageFiles.rootfs(out), tree.ownership(), work, ctx.signal));
  return { flavor: systemd ? "systemd" : "busybox", version: k.version, execDefaults };
}

export interface ImportRequest {
  readonly name: string;
  readonly kernel: string;
  readonly rootfs: string;
  readonly initrd?: string | undefined;
  readonly flavor: ImageFlavor;
  readonly force?: boolean | undefined;
}

/** `image import`: a kernel + ext4 rootfs the user already has; the initrd is built from the host's matching modules unless given. */
export async function importImage(req: ImportRequest, ctx: BuildContext): Promise<BuiltImage> {
  checkImageName(req.name);
  const finalDir = state.imageDir(ctx.stateDir, req.name);
  if (req.force !== true && (await stat(finalDir).then(() => true, () => false))) throw new ImageInputError(`image ${req.name} already exists; use --force to replace it`);
  const rootfsOk = await isExt4(req.rootfs).catch((e: unknown) => {
    throw new ImageInputError(`cannot read rootfs ${req.rootfs}: ${e instanceof Error ? e.message : String(e)}`);
  });
  if (!rootfsOk) throw new ImageInputError(`rootfs ${req.rootfs} is not an ext4 filesystem image`);
  await stat(req.kernel).catch(() => { throw new ImageInputError(`kernel ${req.kernel} does not exist`); });
  const buildRoot = state.imageBuildDir(ctx.stateDir);
  await mkdir(buildRoot, { recursive: true, mode: 0o700 });
  const work = await mkdtemp(join(buildRoot, `${req.name}-`));
  const out = join(work, "image");
  await mkdir(out);
  try {
    const k = await kernelFor({ name: req.name, source: { kind: "busybox" }, kernel: req.kernel, initrd: req.initrd }, ["/"]);
    await step(ctx.onProgress, "kernel", () => writeKernelFiles(k.kernel, out));
    await step(ctx.onProgress, "initrd", () => writeInitrd(ctx, out, req.initrd, k.modulesDir));
    // FICLONE when the filesystem can (instant), a plain copy otherwise.
    await step(ctx.onProgress, "rootfs", () => copyFile(req.rootfs, imageFiles.rootfs(out), constants.COPYFILE_FICLONE));
    ctx.signal?.throwIfAborted();
    await mkdir(state.imagesDir(ctx.stateDir), { recursive: true });
    const old = join(work, "old");
    const hadOld = await rename(finalDir, old).then(() => true, () => false);
    try {
      await rename(out, finalDir);
    } catch (e) {
      if (hadOld) await rename(old, finalDir).catch(() => undefined);
      throw e;
    }
    return {
      name: req.name, source: "import", flavor: req.flavor, dir: finalDir,
      kernelPath: imageFiles.kernel(finalDir), vmlinuxPath: imageFiles.vmlinux(finalDir), initrdPath: imageFiles.initrd(finalDir), rootfsPath: imageFiles.rootfs(finalDir),
      kernelVersion: k.version, sizeBytes: await allocatedBytes(finalDir), execDefaults: NO_EXEC_DEFAULTS,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
