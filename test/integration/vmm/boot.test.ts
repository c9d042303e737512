import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { unixHelperClient } from "../../../src/daemon/helper-client.js";
import { helperVmFiles } from "../../../src/paths/paths.js";
import { newOpId } from "../../../src/rpc/opid.js";
import { createLogger } from "../../../src/system/log.js";
import type { VmmDriver } from "../../../src/vmm/driver.js";
import { fcRequest, FirecrackerApiError } from "../../../src/vmm/firecracker/api-client.js";
import { firecrackerDriver } from "../../../src/vmm/firecracker/driver.js";
import { qemuDriver } from "../../../src/vmm/qemu/driver.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { tinyImageSkip } from "../../helpers/tiny-image.js";
import { consoleLength, destroyWorld, DOUBLE, GUEST_IP, makeVm, makeWorld, processesUnder, waitForConsole, type World } from "../../helpers/vmm-world.js";

const skip = requires(needsRoot(), needsCommands("qemu-system-x86_64", "ip", "busybox", "setpriv", "mkfs.ext4", "debugfs"), tinyImageSkip());
const logger = createLogger({ write: () => true });

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
