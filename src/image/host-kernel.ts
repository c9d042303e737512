import { access, readdir } from "node:fs/promises";
import { join } from "node:path";

export interface KernelSource {
  /** bzImage path. */
  readonly kernel: string;
  /** /lib/modules/VERSION of that kernel. */
  readonly modulesDir: string;
  readonly version: string;
}

/** Order kernel versions like "6.1.0-56-cloud-amd64" so the newest comes first. */
function compareVersionsDesc(a: string, b: string): number {
  return b.localeCompare(a, "en", { numeric: true });
}

/**
 * Find a kernel (bzImage + its modules) inside ROOT ("/" for the host, or a
 * debootstrapped tree). Prefers Debian's "-cloud-" flavour, which is small and
 * has the virtio drivers the guests need.
 */
export async function findKernel(root: string): Promise<KernelSource> {
  const boot = join(root, "boot");
  let names: string[];
  try {
    names = await readdir(boot);
  } catch {
    names = [];
  }
  const versions = names.filter((n) => n.startsWith("vmlinuz-")).map((n) => n.slice("vmlinuz-".length)).sort(compareVersionsDesc);
  const ordered = [...versions.filter((v) => v.includes("-cloud-")), ...versions.filter((v) => !v.includes("-cloud-"))];
  for (const version of ordered) {
    const modulesDir = join(root, "lib", "modules", version);
    try {
      await access(join(modulesDir, "modules.dep"));
      return { kernel: join(boot, `vmlinuz-${version}`), modulesDir, version };
    } catch {
      // a kernel whose modules are not installed cannot boot our initrd; try the next
    }
  }
  throw new Error(`no kernel with modules found under ${root} (looked for ${boot}/vmlinuz-* with ${join(root, "lib/modules")}/VERSION/modules.dep); install linux-image-cloud-amd64 or pass --kernel`);
}
