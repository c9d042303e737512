import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { Runner } from "../system/runner.js";
import { type CpioEntry, writeCpio } from "./cpio.js";
import { isStatic, readElfFile } from "./elf.js";
import { GUEST_MODULES, type ModuleFile, readBuiltin, readModuleBytes, resolveModules } from "./modules.js";

/** Where Debian's busybox-static puts its binary. */
export const DEFAULT_BUSYBOX = "/bin/busybox";

/** busybox applets the init script uses; each becomes a symlink in /bin. */
const APPLETS = ["sh", "mount", "umount", "mkdir", "insmod", "switch_root", "sleep", "cat", "grep"] as const;

/**
 * The initrd's /init. It exists because Debian's cloud kernel builds
 * virtio_mmio/virtio_blk/virtio_net/vsock as modules and does not enable
 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES in-kernel parsing for built-ins: the
 * virtio_mmio.device= entries Firecracker puts on the command line reach a
 * modular virtio_mmio only if someone hands them to insmod. On failure it
 * exits, the kernel panics, and panic=1 + reboot=k ends the VM instead of hanging.
 */
export function initScript(modules: readonly ModuleFile[]): string {
  const loads = modules.map((m) => {
    const params = m.name === "virtio_mmio" ? " $mmio" : "";
    return `insmod /lib/modules/${m.name}.ko${params} || echo "banger-initrd: insmod ${m.name} failed" >&2`;
  });
  return `#!/bin/sh
# banger initrd: load virtio/vsock modules, mount the root disk, switch_root to it.
export PATH=/bin
set -f
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
root=/dev/vda
fstype=ext4
mode=rw
init=/sbin/init
mmio=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=*) root="\${arg#root=}" ;;
    rootfstype=*) fstype="\${arg#rootfstype=}" ;;
    ro) mode=ro ;;
    rw) mode=rw ;;
    init=*) init="\${arg#init=}" ;;
    virtio_mmio.device=*) mmio="$mmio device=\${arg#virtio_mmio.device=}" ;;
  esac
done
${loads.join("\n")}
i=0
while [ ! -b "$root" ]; do
  i=$((i + 1))
  if [ "$i" -gt 1000 ]; then
    echo "banger-initrd: root device $root did not appear within 10s (virtio-blk missing?)" >&2
    exit 1
  fi
  sleep 0.01
done
mkdir -p /newroot
if ! mount -t "$fstype" -o "$mode" "$root" /newroot; then
  echo "banger-initrd: cannot mount $root ($fstype) on /newroot" >&2
  exit 1
fi
if [ ! -x "/newroot$init" ] && [ ! -L "/newroot$init" ]; then
  echo "banger-initrd: $init not found on $root" >&2
  exit 1
fi
mkdir -p /newroot/dev
mount -o move /dev /newroot/dev
umount /proc
umount /sys
exec switch_root /newroot "$init"
`;
}

export interface InitrdInputs {
  /** A statically linked busybox. */
  readonly busybox: string;
  /** The kernel's /lib/modules/VERSION directory. */
  readonly modulesDir: string;
  readonly modules?: readonly string[];
}

/** Build the gzip'd newc initrd in memory (a few MB). */
export async function buildInitrd(runner: Runner, inputs: InitrdInputs, signal?: AbortSignal): Promise<Buffer> {
  const bb = await readElfFile(inputs.busybox).catch((e: unknown) => {
    throw new Error(`busybox ${inputs.busybox} is not usable: ${e instanceof Error ? e.message : String(e)} (install busybox-static)`);
  });
  if (!isStatic(bb)) throw new Error(`busybox ${inputs.busybox} is dynamically linked; the initrd needs a static one (install busybox-static)`);
  let dep: string;
  try {
    dep = await readFile(join(inputs.modulesDir, "modules.dep"), "utf8");
  } catch (e) {
    throw new Error(`cannot read ${join(inputs.modulesDir, "modules.dep")}: ${e instanceof Error ? e.message : String(e)} (is this the kernel's /lib/modules/VERSION dir?)`);
  }
  const modules = resolveModules(dep, await readBuiltin(inputs.modulesDir), inputs.modules ?? GUEST_MODULES);
  const entries: CpioEntry[] = [
    { kind: "dir", path: "bin" },
    { kind: "file", path: "bin/busybox", data: await readFile(inputs.busybox), mode: 0o755 },
    ...APPLETS.map((a): CpioEntry => ({ kind: "symlink", path: `bin/${a}`, target: "busybox" })),
    { kind: "dir", path: "dev" },
    // The kernel opens /dev/console before running /init; without it /init has no stdio.
    { kind: "chardev", path: "dev/console", major: 5, minor: 1, mode: 0o600 },
    { kind: "dir", path: "proc" },
    { kind: "dir", path: "sys" },
    { kind: "dir", path: "newroot" },
    { kind: "dir", path: "lib" },
    { kind: "dir", path: "lib/modules" },
  ];
  for (const m of modules) {
    signal?.throwIfAborted();
    entries.push({ kind: "file", path: `lib/modules/${m.name}.ko`, data: await readModuleBytes(runner, join(inputs.modulesDir, m.relPath), signal), mode: 0o644 });
  }
  entries.push({ kind: "file", path: "init", data: Buffer.from(initScript(modules)), mode: 0o755 });
  return gzipSync(writeCpio(entries));
}
