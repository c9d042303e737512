import { closeSync, constants, existsSync, fchmodSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { AT_FDCWD, dirfdCalls, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS } from "../system/dirfd-calls.js";
import { installFiles, VERSION_PATTERN, type InstallLayout } from "./layout.js";

/** What of a package is code that runs: the bundles, the metadata npm and update read, the docs. */
const PACKAGE_ENTRIES = ["package.json", "README.md", "docs", join("dist", "bin")] as const;

const RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

/**
 * The package's runtime node_modules: its `dependencies` and everything they depend on (optional
 * ones when present, like koffi's per-platform binary), found the way node resolves them (nearest
 * node_modules first). A checkout's dev dependencies are never reached.
 */
export function runtimeModules(packageDir: string): string[] {
  const found = new Set<string>();
  const visit = (fromDir: string, name: string, optional: boolean): void => {
    const candidate = lookupDirs(packageDir, fromDir).map((d) => join(d, "node_modules", name)).find((c) => existsSync(join(c, "package.json")));
    if (candidate === undefined) {
      if (optional) return;
      throw new Error(`${packageDir}: runtime dependency ${name} is not installed (run npm install there, or install from the packed tarball)`);
    }
    const rel = candidate.slice(packageDir.length + 1);
    if (found.has(rel)) return;
    found.add(rel);
    const pkg = JSON.parse(readFileSync(join(candidate, "package.json"), "utf8")) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const d of Object.keys(pkg.dependencies ?? {})) visit(candidate, d, false);
    for (const d of Object.keys(pkg.optionalDependencies ?? {})) visit(candidate, d, true);
  };
  const pkg = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { name?: string; dependencies?: Record<string, string> };
  if (pkg.name !== "banger") throw new Error(`${packageDir} is not banger's package (package.json name ${JSON.stringify(pkg.name)})`);
  for (const d of Object.keys(pkg.dependencies ?? {})) visit(packageDir, d, false);
  return [...found].sort();
}

/** Where node looks for a module required from `fromDir`: its own node_modules, then each enclosing package's, up to the package's. */
function lookupDirs(packageDir: string, fromDir: string): string[] {
  const dirs = [fromDir];
  for (let d = fromDir; d !== packageDir; ) {
    const i = d.lastIndexOf("/node_modules/");
    d = i <= packageDir.length ? packageDir : d.slice(0, i);
    dirs.push(d);
  }
  return dirs;
}

/** Copies the package into <lib dir>/<version> (copyVersion), then points `current` at it. Returns the version directory. */
export function installCode(layout: InstallLayout, packageDir: string, version: string): string {
  const target = copyVersion(layout, packageDir, version);
  pointCurrentAt(layout, version);
  return target;
}

/**
 * Copies a package into <lib dir>/<version> as root's (0755 dirs, files without group or other
 * write), leaving `current` as it is (install swaps it right away; update only once the copy has
 * shown it starts). The source may be the owner's checkout: every entry is opened beneath the
 * package directory's descriptor with no symlink followed, and only directories and regular files
 * are copied, so nothing the owner links in (a root-only file, another tree) ends up in root's
 * code. Returns the version directory.
 */
export function copyVersion(layout: InstallLayout, packageDir: string, version: string): string {
  if (!VERSION_PATTERN.test(version)) throw new Error(`version ${JSON.stringify(version)} cannot name a directory`);
  mkdirSync(layout.libDir, { recursive: true, mode: 0o755 });
  const target = installFiles.versionDir(layout, version);
  const staging = join(layout.libDir, `.${version}.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { mode: 0o755 });
  const calls = dirfdCalls();
  const srcFd = calls.openat2(AT_FDCWD, packageDir, constants.O_RDONLY | constants.O_DIRECTORY, 0, RESOLVE_NO_MAGICLINKS);
  try {
    const packageOwner = fstatSync(srcFd).uid;
    for (const entry of [...PACKAGE_ENTRIES, ...runtimeModules(packageDir)]) copyEntry(srcFd, entry, staging, packageOwner);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  } finally {
    closeSync(srcFd);
  }
  // A re-install of the same version replaces its directory whole; running services keep the files they opened.
  const old = join(layout.libDir, `.${version}.old-${process.pid}`);
  const hadOld = existsSync(target);
  if (hadOld) renameSync(target, old);
  renameSync(staging, target);
  if (hadOld) rmSync(old, { recursive: true, force: true });
  return target;
}

/** `current` -> version, swapped atomically (a new link renamed over the old one). */
export function pointCurrentAt(layout: InstallLayout, version: string): void {
  const tmp = join(layout.libDir, `.current.${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(version, tmp);
  renameSync(tmp, layout.currentLink);
}

/** Copies `rel` (a path below the source dir's descriptor) and what is beneath it into `destRoot`. */
function copyEntry(srcDirFd: number, rel: string, destRoot: string, packageOwner: number): void {
  const calls = dirfdCalls();
  let fd: number;
  try {
    fd = calls.openat2(srcDirFd, rel, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0, RESOLVE);
  } catch (e) {
    // README.md and docs/ are optional; code is checked by the caller (runtimeModules) and by the service start.
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    // A symlink (npm's .bin links, or one the owner planted) is never followed, nor copied.
    if ((e as NodeJS.ErrnoException).code === "ELOOP") return;
    throw new Error(`cannot copy ${rel}: ${(e as NodeJS.ErrnoException).code ?? String(e)} `, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    // Root reads the package with its own rights and writes it out readable by all: only what the
    // package's owner could read itself is copied, so a hard link (or a root-only tree) planted in a
    // checkout never turns a file only root may read into a world-readable one.
    if (st.uid !== packageOwner && (st.mode & 0o004) === 0) throw new Error(`cannot copy ${rel}: it is uid ${st.uid}'s and not readable by others, so the package's owner (uid ${packageOwner}) could not read it; remove it from the package, or make it readable`);
    const dest = join(destRoot, rel);
    if (st.isDirectory()) {
      mkdirSync(dest, { recursive: true, mode: 0o755 });
      for (const name of readdirSync(`/proc/self/fd/${fd}`)) copyEntry(srcDirFd, join(rel, name), destRoot, packageOwner);
    } else if (st.isFile()) {
      mkdirSync(join(dest, ".."), { recursive: true, mode: 0o755 });
      const out = openSync(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        writeSync(out, readFileSync(fd));
        fchmodSync(out, st.mode & 0o755);
      } finally {
        closeSync(out);
      }
    }
    // Symlinks were refused by openat2; sockets, FIFOs and devices are not code: skipped.
  } finally {
    closeSync(fd);
  }
}
