import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { helperVmFiles } from "../../../src/paths/paths.js";
import { vmmMethods } from "../../../src/roothelper/methods/vmm.js";
import { launchDetached } from "../../../src/system/launch.js";
import { waitForApi } from "../../../src/vmm/firecracker/api-client.js";
import { firecrackerDriver } from "../../../src/vmm/firecracker/driver.js";
import { testHelperEnv } from "../../helpers/helper-env.js";
import { inProcessHelper } from "../../helpers/in-process-helper.js";
import { needsRoot } from "../../helpers/requirements.js";

const DOUBLE = fileURLToPath(new URL("../../fc-double/firecracker-double.js", import.meta.url));
const VM = "cccccccccccccccccccccccccccccccc";
const base = mkdtempSync("/tmp/bgt-vmm-stop-");
const helperDir = join(base, "helper");
const pids: number[] = [];
after(() => {
  for (const p of pids) {
    try { process.kill(p, "SIGKILL"); } catch { /* gone */ }
  }
  rmSync(base, { recursive: true, force: true });
});

// Owner root: the double runs as root here, and the helper signals a VMM it did not launch only when it runs wholly as the owner.
const env = testHelperEnv({ ownerUid: 0, stateDir: join(base, "state"), helperDir });

// Signals go through the helper, which only signals processes it may (root here, as in production).
void test("stop ladder: a failed graceful request falls through to SIGTERM; the helper removes the VM's run dir; a second stop is a no-op", { skip: needsRoot() }, async () => {
  const helper = inProcessHelper(vmmMethods(env));
  const driver = firecrackerDriver({ helper, logger: env.logger, firecrackerBin: "firecracker" });
  // Where the helper would have put them, had it launched this VMM.
  mkdirSync(helperVmFiles.vmDir(helperDir, VM));
  const sock = helperVmFiles.apiSocket(helperDir, VM);
  const pidFile = helperVmFiles.pidFile(helperDir, VM);
  const pid = launchDetached({ argv: [DOUBLE, "--api-sock", sock, "--id", VM], logFd: openSync(join(base, "c.log"), "a"), pidFd: openSync(pidFile, "wx") });
  pids.push(pid);
  await waitForApi(sock, 10_000);
  const handle = await driver.adopt({ kind: "firecracker", vmId: VM, controlSocket: sock, pidFile });
  helper.calls.length = 0;
  // Not booted: SendCtrlAltDel is a pre-boot 400, so the ladder must continue with SIGTERM.
  const r = await driver.stop(handle, { timeoutMs: 500 }, "op-000000000002");
  assert.equal(r.how, "terminated");
  assert.deepEqual(helper.calls.map((c) => c.method), ["priv.vmm_shutdown", "priv.signal_process", "priv.cleanup_vmm"]);
  assert.equal(await driver.isRunning(handle), false);
  assert.equal(existsSync(helperVmFiles.vmDir(helperDir, VM)), false, "pidfile, socket and their dir removed");
  assert.equal((await driver.stop(handle, { timeoutMs: 500 }, "op-000000000003")).how, "not-running");
  assert.deepEqual(helper.calls.slice(3).map((c) => c.method), ["priv.cleanup_vmm"], "nothing is signalled once the VMM is gone; the cleanup is idempotent");
});
