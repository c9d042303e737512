import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Runner } from "../system/runner.js";

/**
 * Kernel modules the initrd must load so the guest can see its disks, NIC,
 * vsock and the guest agent's virtio-serial port on a kernel (like Debian's
 * cloud kernel) that builds them as modules. Dependencies (virtio, virtio_ring, failover, ...) are resolved
 * from modules.dep, not hard-coded, so another kernel's layout also works.
 */
export const GUEST_MODULES = ["virtio_mmio", "virtio_blk", "virtio_net", "vsock", "vmw_vsock_virtio_transport", "virtio_console"] as const;

/** A module file to ship: its name (no extension) and its path relative to the modules dir. */
export interface ModuleFile {
  readonly name: string;
  readonly relPath: string;
}

function moduleName(relPath: string): string {
  // modules.dep names files; the module name is the file name without .ko[.xz|.zst|.gz], with '-' == '_'.
  return basename(relPath).replace(/\.ko(\.(xz|zst|gz))?$/, "").replaceAll("-", "_");
}

/**
 * Parse modules.dep and return the wanted modules plus all their
 * dependencies, ordered so that every module comes after what it needs.
 * Throws naming every module that is neither in modules.dep nor built in.
 */
export function resolveModules(modulesDep: string, builtin: ReadonlySet<string>, wanted: readonly string[]): ModuleFile[] {
  const deps = new Map<string, { relPath: string; deps: string[] }>();
  for (const line of modulesDep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const relPath = line.slice(0, colon).trim();
    const rest = line.slice(colon + 1).trim();
    deps.set(moduleName(relPath), { relPath, deps: rest === "" ? [] : rest.split(/\s+/).map(moduleName) });
  }
  const ordered: ModuleFile[] = [];
  const done = new Set<string>();
  const missing: string[] = [];
  const visit = (name: string, stack: readonly string[]): void => {
    const n = name.replaceAll("-", "_");
    if (done.has(n)) return;
    if (stack.includes(n)) throw new Error(`modules.dep has a dependency cycle: ${[...stack, n].join(" -> ")}`);
    const entry = deps.get(n);
    if (entry === undefined) {
      // Built-in code needs no loading; anything else is a kernel we cannot boot.
      if (!builtin.has(n)) missing.push(n);
      done.add(n);
      return;
    }
    for (const d of entry.deps) visit(d, [...stack, n]);
    done.add(n);
    ordered.push({ name: n, relPath: entry.relPath });
  };
  for (const w of wanted) visit(w, []);
  if (missing.length > 0) {
    throw new Error(`kernel modules not found (neither in modules.dep nor modules.builtin): ${missing.join(", ")}; use a kernel that has virtio-mmio, virtio-blk, virtio-net, vsock and virtio-console support`);
  }
  return ordered;
}

/** Module names listed in modules.builtin (empty set if the file is absent). */
export async function readBuiltin(modulesDir: string): Promise<Set<string>> {
  try {
    const text = await readFile(join(modulesDir, "modules.builtin"), "utf8");
    return new Set(text.split("\n").filter((l) => l.trim() !== "").map(moduleName));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return new Set();
    throw e;
  }
}

/**
 * Load a module file as a plain ELF .ko. Compressed modules are expanded on
 * the host so the initrd's busybox insmod never needs xz/zstd support.
 */
export async function readModuleBytes(runner: Runner, path: string, signal?: AbortSignal): Promise<Buffer> {
  const opts = signal === undefined ? {} : { signal };
  if (path.endsWith(".ko")) return readFile(path, opts);
  if (path.endsWith(".ko.xz")) return (await runner.run(["xz", "-d", "-c", "--", path], opts)).stdout;
  if (path.endsWith(".ko.zst")) return (await runner.run(["zstd", "-d", "-c", "-q", "--", path], opts)).stdout;
  if (path.endsWith(".ko.gz")) return (await runner.run(["gzip", "-d", "-c", "--", path], opts)).stdout;
  throw new Error(`unsupported kernel module file ${path}`);
}
