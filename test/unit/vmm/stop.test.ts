import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { privEnsureSocketAccess, privFindFirecrackerPid, privProcessRunning } from "../../../src/rpc/priv/vmm.js";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { configSchema } from "../../../src/config/schema.js";
import type { HelperEnv } from "../../../src/roothelper/env.js";
import { vmmMethods } from "../../../src/roothelper/methods/vmm.js";
import { createLogger } from "../../../src/system/log.js";
import { launchDetached } from "../../../src/system/launch.js";
import { FakeRunner } from "../../../src/system/runner.js";
import { waitForApi } from "../../../src/vmm/firecracker/api-client.js";
import { firecrackerDriver } from "../../../src/vmm/firecracker/driver.js";
import { inProcessHelper } from "../../helpers/in-process-helper.js";
import { needsRoot } from "../../helpers/requirements.js";

const DOUBLE = fileURLToPath(new URL("../../fc-double/firecracker-double.js", import.meta.url));
const VM = "cccccccccccccccccccccccccccccccc";
const base = mkdtempSync("/tmp/bgt-vmm-stop-");
const runtimeDir = join(base, "run");
mkdirSync(join(runtimeDir, "vm"), { recursive: true });
const pids: number[] = [];
after(() => {
  for (const p of pids) {
    try { process.kill(p, "SIGKILL"); } catch { /* gone */ }
  }
  rmSync(base, { recursive: true, force: true });
});

const env: HelperEnv = { ownerUid: 1000, ownerGid: 1000, stateDir: join(base, "state"), runtimeDir, config: configSchema.parse({}), runner: new FakeRunner(), logger: createLogger({ write: () => true }) };

// Signals go through the helper, which only signals processes it may (root here, as in production).
void test("stop ladder: a failed graceful request falls through to SIGTERM; files are cleaned; a second stop is a no-op", { skip: needsRoot() }, async () => {
  const helper = inProcessHelper(vmmMethods(env));
  const driver = firecrackerDriver({ helper, logger: env.logger, firecrackerBin: "firecracker" });
  const sock = join(runtimeDir, "vm", "api.sock");
  const pidFile = join(runtimeDir, "vm", "vmm.pid");
  const pid = launchDetached({ argv: [DOUBLE, "--api-sock", sock, "--id", VM], logFile: join(base, "c.log"), pidFile });
  pids.push(pid);
  await waitForApi(sock, 10_000);
  const handle = await driver.adopt({ kind: "firecracker", vmId: VM, controlSocket: sock, pidFile });
  // Recovery when the pidfile is lost: the helper finds the VMM by this VM's id in its argv.
  assert.deepEqual(await helper.call(privFindFirecrackerPid, { vm_id: VM }, "op-000000000001"), { pid });
  assert.deepEqual(await helper.call(privFindFirecrackerPid, { vm_id: "d".repeat(32) }, "op-000000000001"), { pid: null });
  assert.equal((await helper.call(privProcessRunning, { pid, vm_id: VM }, "op-000000000001")).running, true);
  assert.equal((await helper.call(privProcessRunning, { pid, vm_id: "d".repeat(32) }, "op-000000000001")).running, false);
  // The root-created socket is handed to the owner without following links.
  assert.deepEqual(await helper.call(privEnsureSocketAccess, { socket_path: sock }, "op-000000000001"), { path: sock });
  assert.equal(statSync(sock).uid, 1000);
  helper.calls.length = 0;
  // Not booted: SendCtrlAltDel is a pre-boot 400, so the ladder must continue with SIGTERM.
  const r = await driver.stop(handle, { timeoutMs: 500 }, "op-000000000002");
  assert.equal(r.how, "terminated");
  assert.deepEqual(helper.calls.map((c) => c.method), ["priv.vmm_shutdown", "priv.signal_process"]);
  assert.equal(await driver.isRunning(handle), false);
  assert.equal(existsSync(pidFile), false);
  assert.equal(existsSync(sock), false);
  assert.equal((await driver.stop(handle, { timeoutMs: 500 }, "op-000000000003")).how, "not-running");
  assert.equal(helper.calls.length, 2, "nothing is signalled once the VMM is gone");
});
