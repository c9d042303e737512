import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { unixHelperClient } from "../../../src/daemon/helper-client.js";
import { writeExt4Files } from "../../../src/daemon/storage/ext4.js";
import { TCG_KERNEL_ARGS } from "../../../src/image/cmdline.js";
import { helperVmFiles, state, vmFiles } from "../../../src/paths/paths.js";
import { newOpId } from "../../../src/rpc/opid.js";
import { createLogger } from "../../../src/system/log.js";
import { systemRunner } from "../../../src/system/runner.js";
import type { VmmDriver, VmSpec } from "../../../src/vmm/driver.js";
import { fcRequest, FirecrackerApiError } from "../../../src/vmm/firecracker/api-client.js";
import { firecrackerDriver } from "../../../src/vmm/firecracker/driver.js";
import { qemuDriver } from "../../../src/vmm/qemu/driver.js";
import { createNetNs, type NetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { TINY_CMDLINE, tinyImage, tinyImageSkip } from "../../helpers/tiny-image.js";
import { ensureTestUser, type TestUser } from "../../helpers/users.js";

const DIST = fileURLToPath(new URL("../../../", import.meta.url));
const HELPER_BIN = join(DIST, "src", "bin", "bangerd-root.js");
const DOUBLE = join(DIST, "test", "fc-double", "firecracker-double.js");
const skip = requires(needsRoot(), needsCommands("qemu-system-x86_64", "ip", "busybox", "setpriv", "mkfs.ext4", "debugfs"), tinyImageSkip());
const logger = createLogger({ write: () => true });

interface World {
  readonly base: string;
  readonly stateDir: string;
  readonly ns: NetNs;
  readonly user: TestUser;
  readonly helperSocket: string;
  helper: ChildProcess;
  readonly startHelper: () => Promise<ChildProcess>;
}

const GUEST_IP = "172.31.77.2";
const GUEST_MAC = "06:00:ac:1f:4d:02";

/** Everything under one /tmp/bgt-vmm-* dir; a real bangerd-root runs INSIDE a fresh netns, so VMMs and taps live there. */
async function makeWorld(kind: string): Promise<World> {
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

async function destroyWorld(w: World): Promise<void> {
  w.helper.kill("SIGTERM");
  await w.ns.destroy();
  rmSync(w.base, { recursive: true, force: true });
}

/** A VM's files as VM create would lay them out: image files in the state dir, COW root copy with network config, work disk, tap on the bridge. */
async function makeVm(w: World, vmId: string, kind: "qemu" | "firecracker"): Promise<VmSpec> {
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

async function waitForConsole(spec: VmSpec, needle: string, fromOffset: number, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const text = existsSync(spec.consoleLog) ? readFileSync(spec.consoleLog, "utf8").slice(fromOffset) : "";
    if (text.includes(needle)) return Date.now() - t0;
    await sleep(100);
  }
  throw new Error(`console never showed ${JSON.stringify(needle)} within ${timeoutMs} ms:\n${readFileSync(spec.consoleLog, "utf8").slice(fromOffset).slice(-3000)}`);
}

function consoleLength(spec: VmSpec): number {
  return existsSync(spec.consoleLog) ? readFileSync(spec.consoleLog, "utf8").length : 0;
}

/** Every live process whose argv mentions the test's base dir (VMMs, the double's qemu child). */
function processesUnder(base: string): string[] {
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

function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("Uid:")) ?? "";
  return Number(line.split(/\s+/)[1]);
}

async function ping(w: World): Promise<void> {
  await w.ns.run(["busybox", "ping", "-c", "1", "-W", "5", GUEST_IP]);
}

async function scenario(t: { diagnostic(msg: string): void }, kind: "qemu" | "firecracker"): Promise<void> {
  const w = await makeWorld(kind === "qemu" ? "q" : "fc");
  try {
    const helper = unixHelperClient(w.helperSocket);
    const mk = (): VmmDriver =>
      kind === "qemu"
        ? qemuDriver({ helper, logger, qemuBin: "qemu-system-x86_64", runAs: { uid: w.user.uid, gid: w.user.gid } })
        : firecrackerDriver({ helper, logger, firecrackerBin: DOUBLE });
    const driver = mk();
    const vmId = (kind === "qemu" ? "a1" : "f1").repeat(16);
    const spec = await makeVm(w, vmId, kind);

    // 1. boot, reach over the tap, graceful stop.
    const t0 = Date.now();
    const handle = await driver.launch(spec, newOpId());
    const launchMs = Date.now() - t0;
    assert.equal(await driver.isRunning(handle), true);
    if (kind === "qemu") assert.equal(uidOf(handle.pid), w.user.uid, "qemu dropped to the owner uid");
    // The helper runs with umask 077 as root; the owner's daemon must still read these.
    assert.equal(statSync(spec.consoleLog).uid, w.user.uid, "console log handed to the owner");
    assert.equal(statSync(kind === "qemu" ? spec.vmmLog : spec.consoleLog).uid, w.user.uid, "VMM log handed to the owner");
    assert.equal(handle.pidFile, spec.pidFile);
    assert.equal(handle.controlSocket, spec.controlSocket);
    assert.equal(statSync(spec.pidFile).mode & 0o004, 0o004, "pidfile world-readable for adoption");
    for (const p of [helperVmFiles.vmDir(w.base, vmId), spec.pidFile, spec.controlSocket]) {
      const st = statSync(p);
      assert.ok(st.uid === 0 && (st.mode & 0o022) === 0, `${p} is root's and writable by nobody else`);
    }
    await waitForConsole(spec, "banger: tiny guest ready", 0, 90_000);
    const readyMs = Date.now() - t0;
    await ping(w);
    if (kind === "firecracker") {
      // Post-boot rules of the API: state is Running and pre-boot-only calls are refused.
      assert.equal(((await fcRequest(handle.controlSocket, "GET", "/")).body as { state: string }).state, "Running");
      await assert.rejects(fcRequest(handle.controlSocket, "PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: 128 }), (e: unknown) => e instanceof FirecrackerApiError && /after starting/.test(e.faultMessage));
    }
    const stats = await driver.stats(handle);
    t.diagnostic(`${kind}: launch ${launchMs} ms, guest ready ${readyMs} ms, vmm rss ${(stats.rssBytes / 1048576).toFixed(1)} MiB, cpu ${stats.cpuPercent.toFixed(0)}%`);

    // 2. "daemon restart": a new driver instance re-adopts from the pidfile; the helper restart does not kill the guest.
    w.helper.kill("SIGTERM");
    await new Promise((r) => w.helper.once("exit", r));
    assert.equal(await driver.isRunning(handle), true, "the VMM outlives the helper that launched it");
    w.helper = await w.startHelper();
    const adopted = await mk().adopt({ kind, vmId, controlSocket: handle.controlSocket, pidFile: spec.pidFile });
    assert.equal(adopted.pid, handle.pid);

    const offset = consoleLength(spec);
    const stopped = await mk().stop(adopted, { timeoutMs: 30_000 }, newOpId());
    assert.equal(stopped.how, "graceful", JSON.stringify(stopped));
    await waitForConsole(spec, "banger: guest shutting down", offset > 2000 ? offset - 2000 : 0, 1000);
    t.diagnostic(`${kind}: graceful stop ${stopped.elapsedMs} ms`);
    assert.equal(await driver.isRunning(handle), false);
    assert.equal(existsSync(spec.pidFile), false, "pidfile removed");
    assert.equal(existsSync(spec.controlSocket), false, "control socket removed");

    // 3. the kill path.
    const h2 = await driver.launch(spec, newOpId());
    await waitForConsole(spec, "banger: tiny guest ready", offset, 90_000);
    const killed = await driver.stop(h2, { timeoutMs: 1000, force: true }, newOpId());
    assert.equal(killed.how, "killed");
    assert.equal(await driver.isRunning(h2), false);

    // Nothing left behind: no VMM (nor the double's qemu child), no socket, no pidfile.
    for (let i = 0; i < 50 && processesUnder(w.base).length > 0; i++) await sleep(100);
    assert.deepEqual(processesUnder(w.base), []);
    assert.equal(existsSync(helperVmFiles.vmDir(w.base, vmId)), false, "the helper removed the VM's run dir");
    // Stopping again is a no-op, not an error.
    assert.equal((await driver.stop(h2, { timeoutMs: 1000 }, newOpId())).how, "not-running");
  } finally {
    await destroyWorld(w);
  }
  assert.deepEqual(processesUnder(w.base), []);
  assert.equal(existsSync(w.base), false);
}

void test("qemu driver: boot the tiny image, reach it over its tap, stop gracefully, kill, leave nothing", { skip, timeout: 300_000 }, async (t) => {
  await scenario(t, "qemu");
});

void test("firecracker driver (via the API double): boot, reach, graceful SendCtrlAltDel, kill, leave nothing", { skip, timeout: 300_000 }, async (t) => {
  await scenario(t, "firecracker");
});
