import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { systemRunner } from "../../src/system/runner.js";

/**
 * A mount namespace whose /dev has a `kvm` node even on a host without one,
 * for the daemon of the Firecracker e2e. The Firecracker API double boots its
 * guests with qemu TCG and never opens /dev/kvm, but the daemon (rightly)
 * refuses `vmm.kind = "firecracker"` on a host without it; this makes the
 * host the test needs instead of weakening that check. Only processes started
 * through `enter()` see the stand-in: /dev is an overlay over the host's, in
 * this namespace alone, and the node is a misc device 10:232 with no driver
 * behind it when the host has no KVM (opening it fails; stat sees /dev/kvm).
 *
 * The namespace is kept alive by a bind mount of its nsfs file (as `ip netns`
 * does), so `nsenter --mount=FILE` can exec into it and the daemon's pid stays
 * the node process's. `destroy()` is idempotent and removes every mount and file.
 */
export interface MountNs {
  /** argv prefix that runs a command inside the namespace (nsenter execs it). */
  enter(argv: readonly string[]): string[];
  destroy(): Promise<void>;
}

export async function mountNsWithKvm(): Promise<MountNs> {
  const dir = mkdtempSync("/tmp/bgt-mntns-");
  const nsFile = join(dir, "ns");
  const upper = join(dir, "upper");
  const work = join(dir, "work");
  mkdirSync(upper);
  mkdirSync(work);
  writeFileSync(nsFile, "");
  const enter = (argv: readonly string[]): string[] => ["nsenter", `--mount=${nsFile}`, "--", ...argv];
  let bound = false;
  let pinned = false;
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    const errors: unknown[] = [];
    // The namespace (and the overlay inside it) goes when its last process exits and this pin is gone.
    if (pinned) await systemRunner.run(["umount", nsFile]).catch((e: unknown) => errors.push(e));
    if (bound) await systemRunner.run(["umount", dir]).catch((e: unknown) => errors.push(e));
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      errors.push(e);
    }
    if (errors.length > 0) throw new AggregateError(errors, `removing mount namespace ${dir}`);
  };
  try {
    // An nsfs pin may not sit on a shared mount (it would propagate into the namespace it pins).
    await systemRunner.run(["mount", "--bind", dir, dir]);
    bound = true;
    await systemRunner.run(["mount", "--make-private", dir]);
    await systemRunner.run(["unshare", `--mount=${nsFile}`, "--propagation", "private", "true"]);
    pinned = true;
    await systemRunner.run(enter(["mount", "-t", "overlay", "overlay", "-o", `lowerdir=/dev,upperdir=${upper},workdir=${work}`, "/dev"]));
    // The overlay hides the host's submounts of /dev; give the namespace its own.
    await systemRunner.run(enter(["mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620", "devpts", "/dev/pts"]));
    await systemRunner.run(enter(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/dev/shm"]));
    // 0600 root, as on a hardened host: the daemon only looks, the root helper would open it.
    if (!existsSync("/dev/kvm")) await systemRunner.run(enter(["mknod", "-m", "0600", "/dev/kvm", "c", "10", "232"]));
  } catch (e) {
    await destroy().catch(() => undefined);
    throw e;
  }
  return { enter, destroy };
}
