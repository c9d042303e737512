import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { bootContainer, CONTAINER_OWNER, containerTree, nspawnSkip, type Container } from "../../helpers/nspawn.js";

const skip = nspawnSkip();
const scratch = mkdtempSync("/tmp/bgt-nspawn-");
let container: Container | undefined;
after(async () => {
  await container?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** Host processes whose root directory is inside `tree` (a container's, or one that escaped teardown). */
function processesIn(tree: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/root`).startsWith(tree)) pids.push(Number(e));
    } catch { /* exited, or a kernel thread */ }
  }
  return pids;
}

void test("the harness boots Debian with systemd as PID 1 in its own network, runs commands as the owner, and leaves nothing behind", { skip, timeout: 20 * 60_000 }, async () => {
  const tree = await containerTree();
  container = await bootContainer(tree, { logFile: join(scratch, "console.log") });
  process.stdout.write(`# nspawn boot to is-system-running: ${container.bootMs.toFixed(0)} ms\n`);
  const c = container;

  assert.equal((await c.text(["readlink", "/proc/1/exe"])).trim(), "/usr/lib/systemd/systemd");
  assert.equal((await c.text(["systemctl", "is-system-running"])).trim(), "running");
  assert.deepEqual((await c.text(["ip", "-o", "link", "show"])).trim().split("\n").map((l) => l.split(":")[1]?.trim()), ["lo"], "only its own loopback: the host's links are not there");
  assert.equal((await c.text(["id", "-u"], { user: CONTAINER_OWNER.name })).trim(), String(CONTAINER_OWNER.uid));
  const nodeMajor = Number(/^v(\d+)\./.exec((await c.text(["node", "--version"])).trim())?.[1]);
  assert.ok(nodeMajor >= 20, `node ${nodeMajor} inside`);
  assert.match(await c.text(["npm", "--version"]), /^\d+\.\d+/);
  await c.run(["test", "-c", "/dev/net/tun"]);

  // Writes land in the volatile overlay, never in the cached tree.
  await c.run(["touch", "/etc/written-by-the-test"]);
  assert.equal(existsSync(join(tree, "etc", "written-by-the-test")), false);

  const leader = c.leader;
  const stopping = performance.now();
  await c.stop();
  process.stdout.write(`# nspawn halt: ${(performance.now() - stopping).toFixed(0)} ms\n`);
  assert.equal(existsSync(`/proc/${leader}`), false, "the container's init is gone");
  assert.deepEqual(processesIn(tree), [], "no process left inside the tree");
  assert.equal(readFileSync("/proc/self/mountinfo", "utf8").includes(tree), false, "no mount of the tree left on the host");
});
