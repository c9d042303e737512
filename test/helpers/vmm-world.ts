import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { writeExt4Files } from "../../src/daemon/storage/ext4.js";
import { TCG_KERNEL_ARGS } from "../../src/image/cmdline.js";
import { helperVmFiles, state, vmFiles } from "../../src/paths/paths.js";
import { systemRunner } from "../../src/system/runner.js";
import type { VmSpec } from "../../src/vmm/driver.js";
import { createNetNs, type NetNs } from "./netns.js";
import { TINY_CMDLINE, tinyImage } from "./tiny-image.js";
import { ensureTestUser, type TestUser } from "./users.js";

/**
 * One VMM test world (test/integration/vmm): a real bangerd-root running INSIDE a fresh netns with
 * a bridge, an owner's state dir, and the tiny image laid out as VM create would.
 */

const DIST = fileURLToPath(new URL("../../", import.meta.url));
const HELPER_BIN = join(DIST, "src", "bin", "bangerd-root.js");
export const DOUBLE = join(DIST, "test", "fc-double", "firecracker-double.js");

export interface World {
  readonly base: string;
  readonly stateDir: string;
  readonly ns: NetNs;
  readonly user: TestUser;
  readonly helperSocket: string;
  helper: ChildProcess;
  readonly startHelper: () => Promise<ChildProcess>;
}

export const GUEST_IP = "172.31.77.2";
export const GUEST_MAC = "06:00:ac:1f:4d:02";

/** Everything under one /tmp/bgt-vmm-* dir; a real bangerd-root runs INSIDE a fresh netns, so VMMs and taps live there. */
export async function makeWorld(kind: string): Promise<World> {
  const user = await ensureTestUser();
  const base = mkdtempSync(`/tmp/bgt-vmm-${kind}-`);
  chmodSync(base, 0o755);
  const stateDir = join(base, "state");
  mkdirSync(stateDir, { recursive: true });
  const config = join(base, "config.toml");
  writeFileSync(config, `[vmm]\nfirecracker_bin = "${DOUBLE}"\njailer = "never"\nstop_timeout_s = 30\n`);
  const ns = await createNetNs("bgt-vmm");
  await ns.run(["ip", "link", "add", "br0", "type", "bridge"]);
  await ns.run(["ip", "addr", "add", "172.31.77.1/24", "dev", "br0"]);
  await ns.run(["ip", "link", "set", "br0", "up"]);
  const helperSocket = join(base, "helper.sock");
  const logFile = join(base, "helper.log");
  const startHelper = async (): Promise<ChildProcess> => {
    rmSync(helperSocket, { force: true });
    const argv = ns.exec([process.execPath, HELPER_BIN, "--owner", String(user.uid), "--owner-gid", String(user.gid), "--state-dir", stateDir, "--config", config, "--socket", helperSocket]);
    const child = spawn(argv[0] ?? "", argv.slice(1), { stdio: ["ignore", openSync(logFile, "a"), openSync(logFile, "a")] });
    for (let i = 0; i < 200 && !existsSync(helperSocket); i++) {
      if (child.exitCode !== null) throw new Error(`bangerd-root exited: ${readFileSync(logFile, "utf8")}`);
      await sleep(50);
    }
    return child;
  };
  const world: World = { base, stateDir, ns, user, helperSocket, helper: await startHelper(), startHelper };
  return world;
}

export async function destroyWorld(w: World): Promise<void> {
  w.helper.kill("SIGTERM");
  await w.ns.destroy();
  rmSync(w.base, { recursive: true, force: true });
}

/** A VM's files as VM create would lay them out: image files in the state dir, COW root copy with network config, work disk, tap on the bridge. */
export async function makeVm(w: World, vmId: string, kind: "qemu" | "firecracker"): Promise<VmSpec> {
  const img = await tinyImage();
  const imgDir = state.imageDir(w.stateDir, "tiny");
  mkdirSync(imgDir, { recursive: true });
  for (const f of [img.kernel, img.vmlinux, img.initrd]) {
    const to = join(imgDir, f.split("/").pop() ?? "");
    if (!existsSync(to)) copyFileSync(f, to);
  }
  const vmDir = state.vmDir(w.stateDir, vmId);
  mkdirSync(vmDir, { recursive: true });
  copyFileSync(img.rootfs, vmFiles.rootDisk(vmDir));
  const net = `MAC=${GUEST_MAC}\nIP=${GUEST_IP}\nPREFIX=24\nGATEWAY=172.31.77.1\n`;
  await writeExt4Files(systemRunner, vmFiles.rootDisk(vmDir), [{ path: "/etc/banger/network", data: net, mode: 0o644 }]);
  await systemRunner.run(["truncate", "-s", "16M", vmFiles.workDisk(vmDir)]);
  await systemRunner.run(["mkfs.ext4", "-q", "-F", vmFiles.workDisk(vmDir)]);
  const tap = `tap-fc-${vmId.slice(0, 8)}`;
  await w.ns.run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"]);
  await w.ns.run(["ip", "link", "set", tap, "master", "br0"]);
  await w.ns.run(["ip", "link", "set", tap, "up"]);
  // As the owner's daemon would have made them: the helper acts only on the owner's own files.
  await systemRunner.run(["chown", "-R", `${w.user.uid}:${w.user.gid}`, w.stateDir]);
  return {
    vmId,
    name: "bgt-vmm",
    vcpus: 1,
    memoryMib: 256,
    kernelPath: kind === "qemu" ? join(imgDir, img.kernel.split("/").pop() ?? "") : join(imgDir, img.vmlinux.split("/").pop() ?? ""),
    initrdPath: join(imgDir, img.initrd.split("/").pop() ?? ""),
    // Firecracker adds root=/dev/vda rw itself; the double does the same.
    cmdline: `${kind === "qemu" ? TINY_CMDLINE : TINY_CMDLINE.replace(" root=/dev/vda", "").replace(" rw", "")} ${TCG_KERNEL_ARGS}`,
    rootDisk: vmFiles.rootDisk(vmDir),
    workDisk: vmFiles.workDisk(vmDir),
    tap,
    mac: GUEST_MAC,
    // Where the helper (its socket is in base) keeps them: shown in the spec, never sent.
    controlSocket: kind === "qemu" ? helperVmFiles.qmpSocket(w.base, vmId) : helperVmFiles.apiSocket(w.base, vmId),
    pidFile: helperVmFiles.pidFile(w.base, vmId),
    consoleLog: vmFiles.consoleLog(vmDir),
    vmmLog: vmFiles.vmmLog(vmDir),
    metricsPath: kind === "firecracker" ? vmFiles.metrics(vmDir) : undefined,
    accel: "tcg",
  };
}

export async function waitForConsole(spec: VmSpec, needle: string, fromOffset: number, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const text = existsSync(spec.consoleLog) ? readFileSync(spec.consoleLog, "utf8").slice(fromOffset) : "";
    if (text.includes(needle)) return Date.now() - t0;
    await sleep(100);
  }
  throw new Error(`console never showed ${JSON.stringify(needle)} within ${timeoutMs} ms:\n${readFileSync(spec.consoleLog, "utf8").slice(fromOffset).slice(-3000)}`);
}

export function consoleLength(spec: VmSpec): number {
  return existsSync(spec.consoleLog) ? readFileSync(spec.consoleLog, "utf8").length : 0;
}

/** Every live process whose argv mentions the test's base dir (VMMs, the double's qemu child). */
export function processesUnder(base: string): string[] {
  const out: string[] = [];
  for (const p of readdirSync("/proc").filter((n) => /^[0-9]+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmd.includes(base) && !cmd.includes("bangerd-root")) out.push(`${p}: ${cmd.slice(0, 160)}`);
    } catch {
      // gone
    }
  }
  return out;
}
