import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { findKernel } from "../../../src/image/host-kernel.js";
import { CommandError, systemRunner } from "../../../src/system/runner.js";
import { VERSION } from "../../../src/version.js";
import { bootContainer, CONTAINER_OWNER, containerTree, nspawnSkip, type Container } from "../../helpers/nspawn.js";
import { repackAs } from "../../helpers/repack.js";

/*
 * Issue 16's acceptance under systemd as PID 1: the packed tarball installed with npm inside a
 * Debian container booted by systemd-nspawn, `banger system install` in systemd mode, a VM that
 * survives `system restart` and `banger update` (same VMM pid, exec works), an update to a package
 * whose daemon cannot start rolled back with the VM still running, and `system uninstall` leaving
 * links, nft, units and files as they were before install.
 */

const skip = nspawnSkip();
const REPO = resolve(import.meta.dirname, "..", "..", "..", "..");
const scratch = mkdtempSync("/tmp/bgt-systemd-");
let container: Container | undefined;
after(async () => {
  await container?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const BUMPED = `${VERSION}-e2e.1`;
const BROKEN = `${VERSION}-e2e.2`;
const owner = { user: CONTAINER_OWNER.name };

/** What install may add and uninstall must take away again: links, addresses, routes, nft, units, files. */
async function hostState(c: Container): Promise<Record<string, string>> {
  const files = await c.text(["find", "/etc", "/usr/local", "/run", "/var/log", "/var/lib", "-xdev",
    // Changed by systemd and the login of the owner on their own, not by banger.
    "(", "-path", "/run/systemd", "-o", "-path", "/run/user", "-o", "-path", "/run/log", "-o", "-path", "/run/credentials", "-o", "-path", "/var/log/journal", "-o", "-path", "/var/lib/systemd", "-o", "-path", "/var/lib/banger", ")", "-prune", "-o", "-print"]);
  return {
    links: await c.text(["ip", "-o", "link", "show"]),
    addresses: await c.text(["ip", "-o", "addr", "show"]),
    routes: await c.text(["ip", "route", "show", "table", "all"]),
    nft: await c.text(["nft", "list", "ruleset"]),
    units: await c.text(["systemctl", "list-unit-files", "--no-legend", "banger*"], { okExitCodes: [1] }),
    files: files.split("\n").sort().join("\n"),
  };
}

/** The pids (as the container numbers them: NSpid's last field) of its processes whose command line matches `what`. */
function containerProcesses(c: Container, what: RegExp): number[] {
  const ns = readlinkSync(`/proc/${c.leader}/ns/pid`);
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/ns/pid`) === ns && what.test(readFileSync(`/proc/${e}/cmdline`, "utf8").replaceAll("\0", " "))) {
        out.push(Number(/^NSpid:.*\s(\d+)$/m.exec(readFileSync(`/proc/${e}/status`, "utf8"))?.[1]));
      }
    } catch { /* exited */ }
  }
  return out;
}

interface Versions { cli?: string; installed?: string; daemon?: string; helper?: string; mismatch?: boolean }

async function serviceVersions(c: Container): Promise<Versions> {
  // Exit 1 flags the version mismatch with the CLI on PATH (still the first package): expected here.
  const doc = JSON.parse(await c.text(["banger", "system", "status", "--json"], { ...owner, okExitCodes: [1] })) as { install?: { versions: Versions } };
  return doc.install?.versions ?? {};
}

async function vmPid(c: Container, name: string): Promise<number> {
  return (JSON.parse(await c.text(["banger", "vm", "show", name, "--json"], owner)) as { pid: number }).pid;
}

const timings: string[] = [];
async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t = performance.now();
  const r = await fn();
  timings.push(`${what} ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return r;
}

void test("under systemd: install, VM kept through restart and update, a broken update rolled back, uninstall leaves the host as before", { skip, timeout: 30 * 60_000 }, async () => {
  const tarball = await timed("npm pack", async () => {
    // dist is already built (the tests run from it): no prepack rebuild under the running suite.
    const out = await systemRunner.run(["npm", "pack", "--ignore-scripts", "--pack-destination", scratch], { cwd: REPO, timeoutMs: 300_000 });
    return join(scratch, out.stdout.toString("utf8").trim().split("\n").pop() ?? "");
  });
  await repackAs(tarball, join(scratch, `banger-${BUMPED}.tgz`), BUMPED);
  await repackAs(tarball, join(scratch, `banger-${BROKEN}.tgz`), BROKEN, { brokenDaemon: true });
  const tree = await timed("container tree", () => containerTree());
  container = await timed("container boot", () => bootContainer(tree, { logFile: join(scratch, "console.log"), bindRo: [[scratch, "/pack"]] }));
  const c = container;

  // --offline: the container has no network. --ignore-scripts: better-sqlite3's install script would
  // try to download a prebuilt addon; the package already bundles the one for this platform.
  await timed("npm install -g", () => c.run(["npm", "install", "-g", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", `/pack/${tarball.split("/").pop() ?? ""}`], { timeoutMs: 300_000 }));
  const before = await hostState(c);

  await timed("system install", () => c.run(["banger", "system", "install", "--owner", CONTAINER_OWNER.name]));
  assert.equal((await c.text(["systemctl", "is-active", "bangerd-root.service", "bangerd.service"])).trim(), "active\nactive");
  assert.equal((await c.text(["systemctl", "show", "--property=User", "--value", "bangerd.service"])).trim(), CONTAINER_OWNER.name);

  await timed("image build tiny", () => c.run(["banger", "image", "build", "--from", "busybox"], owner));
  const kernel = (await findKernel("/")).version;
  const ran = await timed("vm run --rm", () => c.text(["banger", "vm", "run", "--rm", "--image", "tiny", "--", "uname", "-r"], { ...owner, timeoutMs: 300_000 }));
  assert.equal(ran.trim().split("\n").pop(), kernel);

  await timed("vm create", () => c.run(["banger", "vm", "create", "--name", "keep", "--image", "tiny"], { ...owner, timeoutMs: 300_000 }));
  const pid = await vmPid(c, "keep");
  assert.deepEqual(containerProcesses(c, /qemu-system/), [pid], "one VMM, the VM's");
  const execWorks = async (): Promise<void> => {
    assert.equal((await c.text(["banger", "vm", "exec", "keep", "--", "uname", "-r"], { ...owner, timeoutMs: 120_000 })).trim(), kernel);
  };

  await timed("system restart", () => c.run(["banger", "system", "restart"]));
  assert.equal(await vmPid(c, "keep"), pid, "same VMM after system restart");
  await execWorks();

  await timed("update", () => c.run(["banger", "update", "--from", `/pack/banger-${BUMPED}.tgz`], { timeoutMs: 300_000 }));
  assert.deepEqual(await serviceVersions(c), { cli: VERSION, installed: BUMPED, daemon: BUMPED, helper: BUMPED, mismatch: true });
  assert.equal((await c.text(["readlink", "/usr/local/lib/banger/current"])).trim(), BUMPED);
  assert.equal(await vmPid(c, "keep"), pid, "same VMM after update");
  assert.deepEqual(containerProcesses(c, /qemu-system/), [pid]);
  await execWorks();

  const failed = await timed("broken update + rollback", () => c.run(["banger", "update", "--from", `/pack/banger-${BROKEN}.tgz`, "--timeout", "10"], { timeoutMs: 300_000 }).then(
    () => assert.fail("an update whose daemon cannot start must fail"),
    (e: unknown) => {
      assert.ok(e instanceof CommandError, String(e));
      return e;
    },
  ));
  assert.equal(failed.exitCode, 1);
  assert.match(failed.stderr, new RegExp(`banger ${BROKEN.replaceAll(".", "\\.")} did not become healthy \\(bangerd did not answer as version ${BROKEN.replaceAll(".", "\\.")} within 10s.*rolled back to ${BUMPED.replaceAll(".", "\\.")}, which is serving again`));
  assert.deepEqual(await serviceVersions(c), { cli: VERSION, installed: BUMPED, daemon: BUMPED, helper: BUMPED, mismatch: true });
  assert.equal((await c.text(["readlink", "/usr/local/lib/banger/current"])).trim(), BUMPED);
  assert.equal((await c.text(["ls", "/usr/local/lib/banger"])).split("\n").includes(BROKEN), false, "the broken version's copy is removed");
  assert.equal(await vmPid(c, "keep"), pid, "same VMM after the rollback");
  await execWorks();

  await timed("system uninstall --force", () => c.run(["banger", "system", "uninstall", "--force"], { timeoutMs: 300_000 }));
  assert.deepEqual(containerProcesses(c, /qemu-system|bangerd/), [], "no VMM and no service left");
  assert.deepEqual(await hostState(c), before, "uninstall leaves links, nft, units and files as before install");
  await c.run(["test", "-f", "/var/lib/banger/banger.db"]);
  await c.run(["test", "-d", "/var/lib/banger/images/tiny"]);
  process.stdout.write(`# boot ${c.bootMs.toFixed(0)} ms; ${timings.join("; ")}\n`);
});
