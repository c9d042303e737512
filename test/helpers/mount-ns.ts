import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { systemRunner } from "../../src/system/runner.js";

/**
 * A private mount namespace for the daemon of a test, to give it a host the
 * test needs without weakening a production check:
 * - `withKvm`: /dev has a `kvm` node even on a host without one. The
 *   Firecracker API double boots its guests with qemu TCG and never opens
 *   /dev/kvm, but the daemon (rightly) refuses `vmm.kind = "firecracker"`
 *   without it. /dev becomes an overlay over the host's, in this namespace
 *   alone, and the node is a misc device 10:232 with no driver behind it when
 *   the host has no KVM (opening it fails; stat sees /dev/kvm).
 * - `withBootId`: /proc/sys/kernel/random/boot_id reads another id, as after
 *   a reboot of the host.
 *
 * A holder process keeps the namespace alive (an nsfs bind mount, as `ip
 * netns` uses, is refused inside a mount namespace where `ip netns add` has
 * made /run/netns shared), and `nsenter` execs into it, so the daemon's pid
 * stays the node process's. `destroy()` is idempotent: it ends the holder, and
 * the namespace with its mounts goes when its last process exits.
 */
export interface MountNs {
  /** argv prefix that runs a command inside the namespace (nsenter execs it). */
  enter(argv: readonly string[]): string[];
  destroy(): Promise<void>;
}

export async function createMountNs(opts: { withKvm?: boolean; withBootId?: string }): Promise<MountNs> {
  const dir = mkdtempSync("/tmp/bgt-mntns-");
  const upper = join(dir, "upper");
  const work = join(dir, "work");
  mkdirSync(upper);
  mkdirSync(work);
  const holder = spawn("unshare", ["--mount", "--propagation", "private", "sleep", "86400"], { stdio: "ignore" });
  const gone = new Promise<void>((resolve) => holder.once("exit", () => { resolve(); }));
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    if (holder.exitCode === null && holder.signalCode === null) {
      holder.kill("SIGKILL");
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  let nsPath = "";
  let nsId = "";
  const enter = (argv: readonly string[]): string[] => {
    // Never run a command meant for the namespace in the host's: the holder must still be the one we made.
    if (holder.exitCode !== null || holder.signalCode !== null || readlinkSync(nsPath) !== nsId) throw new Error(`the mount namespace of ${dir} is gone`);
    return ["nsenter", `--mount=${nsPath}`, "--", ...argv];
  };
  try {
    if (holder.pid === undefined) throw new Error("could not start unshare");
    nsPath = `/proc/${holder.pid}/ns/mnt`;
    // Until unshare(2) has run in the holder, its namespace is still ours: wait for it to differ.
    const ours = readlinkSync("/proc/self/ns/mnt");
    for (let i = 0; (nsId = readlinkSync(nsPath)) === ours; i++) {
      if (i > 200 || holder.exitCode !== null) throw new Error("unshare --mount did not make a mount namespace");
      await sleep(10);
    }
    if (opts.withKvm === true) {
      await systemRunner.run(enter(["mount", "-t", "overlay", "overlay", "-o", `lowerdir=/dev,upperdir=${upper},workdir=${work}`, "/dev"]));
      // The overlay hides the host's submounts of /dev; give the namespace its own.
      await systemRunner.run(enter(["mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620", "devpts", "/dev/pts"]));
      await systemRunner.run(enter(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/dev/shm"]));
      // 0600 root, as on a hardened host: the daemon only looks, the root helper would open it.
      if (!existsSync("/dev/kvm")) await systemRunner.run(enter(["mknod", "-m", "0600", "/dev/kvm", "c", "10", "232"]));
    }
    if (opts.withBootId !== undefined) {
      const file = join(dir, "boot_id");
      writeFileSync(file, `${opts.withBootId}\n`, { mode: 0o444 });
      await systemRunner.run(enter(["mount", "--bind", "-o", "ro", file, "/proc/sys/kernel/random/boot_id"]));
    }
  } catch (e) {
    await destroy().catch(() => undefined);
    throw e;
  }
  return { enter, destroy };
}
