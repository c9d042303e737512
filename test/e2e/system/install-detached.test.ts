import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { test } from "node:test";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { installFiles, installLayout } from "../../../src/install/layout.js";
import { runText, systemRunner } from "../../../src/system/runner.js";
import { VERSION } from "../../../src/version.js";
import { queryA } from "../../helpers/dns-query.js";
import { repackAs } from "../../helpers/repack.js";
import { createNetNs, type NetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { BIN, type CliResult } from "../../helpers/stack.js";
import { tinyImageSkip } from "../../helpers/tiny-image.js";
import { ensureTestUser, type TestUser } from "../../helpers/users.js";

/** The repository (dist/ runs from it): what npm packs. */
const REPO = resolve(import.meta.dirname, "..", "..", "..", "..");

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "setpriv", "nft", "iptables-save"), tinyImageSkip());

/** The host directories an install writes beneath; a real host has them before banger does. */
const HOST_DIRS = ["etc", "usr/local/lib", "var/lib", "var/log", "run"];

function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const st = lstatSync(p);
      out.push(`${relative(root, p)} ${st.isDirectory() ? "dir" : st.isSymbolicLink() ? "link" : "file"} ${st.uid} ${(st.mode & 0o7777).toString(8)}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out.sort();
}

async function hostState(ns: NetNs): Promise<{ links: string; ruleset: string; iptables: string; pids: string }> {
  return {
    links: (await ns.run(["ip", "-o", "link", "show"])).split("\n").map((l) => l.replace(/^\d+:\s*/, "").replace(/\s+link\/.*$/, "")).sort().join("\n"),
    ruleset: await ns.run(["nft", "list", "ruleset"]),
    iptables: (await ns.run(["iptables-save"]).catch(() => "")).split("\n").filter((l) => !l.startsWith("#")).join("\n"),
    pids: (await runText(systemRunner, ["ip", "netns", "pids", ns.name])).trim(),
  };
}

/** Runs the CLI inside the namespace, as root (`user` undefined) or as the owner, against the install under `root`. */
function cli(ns: NetNs, root: string, user: TestUser | undefined, args: readonly string[], timeoutMs = 300_000): Promise<CliResult> {
  const drop = user === undefined ? [] : ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--"];
  const argv = ns.exec([...drop, process.execPath, BIN.banger, ...args]);
  // No BANGER_* path variable: the install's paths must be found from install.json alone.
  const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", BANGER_INSTALL_ROOT: root, ...(user === undefined ? { SUDO_USER: "" } : { HOME: user.home }) };
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] ?? "", argv.slice(1), { env, stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    child.once("error", reject);
    child.once("close", (code) => { resolve({ code: code ?? -1, stdout, stderr }); });
  });
}

async function ok(p: Promise<CliResult>, what: string): Promise<string> {
  const r = await p;
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

interface StatusJson {
  install: { mode: string; services: Record<string, { running: boolean; pid?: number }>; versions: { mismatch: boolean; daemon?: string; helper?: string } };
  daemon: { pid: number };
  paths: { state_dir: string };
  vms: { total: number; running: number };
}

void test("detached install: both services up from root's versioned copy, vm run as the owner, a VM survives system restart and update, a broken update rolls back, uninstall leaves the host as it was (state kept)", { skip: SKIP, timeout: 900_000 }, async (t) => {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const ns = await createNetNs("bgt-inst");
  // Runs last: the namespace's destruction kills whatever a failed run left in it (helper, daemon, VMMs).
  cleanup.push("netns", () => ns.destroy());
  const root = mkdtempSync("/tmp/banger-install-");
  chmodSync(root, 0o755);
  cleanup.push("install root", () => { rmSync(root, { recursive: true, force: true }); return Promise.resolve(); });
  for (const d of HOST_DIRS) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
  cleanup.push("uninstall", async () => { await cli(ns, root, undefined, ["system", "uninstall", "--force", "--purge"]); });
  const layout = installLayout(root);
  const filesBefore = listTree(root);
  const hostBefore = await hostState(ns);

  // Not root: refused, saying to use sudo, and nothing is written.
  const notRoot = await cli(ns, root, user, ["system", "install", "--mode", "detached"]);
  assert.equal(notRoot.code, 1);
  assert.match(notRoot.stderr, /sudo banger system install/);
  assert.deepEqual(listTree(root), filesBefore);

  await ok(cli(ns, root, undefined, ["system", "install", "--mode", "detached", "--owner", user.name]), "system install");

  // Root runs root's copy only: the versioned tree and every file in it are root's, none writable by others.
  assert.equal(readlinkSync(layout.currentLink), VERSION);
  for (const entry of listTree(layout.libDir)) {
    const [, kind, uid, mode] = entry.split(" ");
    assert.equal(uid, "0", entry);
    // A symlink's own mode means nothing (always 0777); only `current` is one.
    if (kind !== "link") assert.equal(Number.parseInt(mode ?? "0", 8) & 0o022, 0, entry);
  }
  const meta = JSON.parse(readFileSync(layout.metadataFile, "utf8")) as { owner: { uid: number }; mode: string; network: { cidr: string } };
  assert.equal(meta.owner.uid, user.uid);
  assert.equal(meta.mode, "detached");
  assert.equal(meta.network.cidr, "172.16.90.0/24", "the namespace routes nothing, so the first candidate is free");
  assert.equal(statSync(layout.metadataFile).mode & 0o777, 0o644);
  assert.equal(statSync(layout.stateDir).uid, user.uid);
  assert.ok(!readdirSync(join(installFiles.versionDir(layout, VERSION), "node_modules")).includes("typescript"), "no dev dependency in root's copy");

  const status = JSON.parse(await ok(cli(ns, root, user, ["system", "status", "--json"]), "status")) as StatusJson;
  assert.equal(status.install.mode, "detached");
  assert.ok(status.install.services["bangerd-root"]?.running && status.install.services["bangerd"]?.running, JSON.stringify(status.install.services));
  assert.equal(status.install.versions.mismatch, false);
  assert.equal(status.paths.state_dir, layout.stateDir, "the daemon runs on the install's paths");

  await ok(cli(ns, root, user, ["image", "build", "--name", "tiny", "--from", "busybox"]), "image build");
  const run = await ok(cli(ns, root, user, ["vm", "run", "--rm", "--image", "tiny", "--memory", "256", "--vcpus", "1", "--disk", "1", "--", "uname", "-r"]), "vm run");
  assert.match(run.trim(), /^\d+\.\d+\.\d+/);

  // A VM left running survives the restart of both services: same VMM, re-adopted, exec works.
  await ok(cli(ns, root, user, ["vm", "create", "--image", "tiny", "--name", "keep", "--memory", "256", "--vcpus", "1", "--disk", "1"]), "vm create");
  const vmPid = (JSON.parse(await ok(cli(ns, root, user, ["vm", "show", "keep", "--json"]), "vm show")) as { pid: number }).pid;
  assert.deepEqual(JSON.parse(await ok(cli(ns, root, undefined, ["system", "restart", "--json"]), "system restart")), { restarted: ["bangerd-root", "bangerd"], mode: "detached", version: VERSION }, "--json: the result alone on stdout");
  const after = JSON.parse(await ok(cli(ns, root, user, ["system", "status", "--json"]), "status")) as StatusJson;
  assert.notEqual(after.daemon.pid, status.daemon.pid, "a new daemon");
  assert.notEqual(after.install.services["bangerd-root"]?.pid, status.install.services["bangerd-root"]?.pid, "a new helper");
  assert.deepEqual(after.vms, { total: 1, running: 1 });
  const kept = JSON.parse(await ok(cli(ns, root, user, ["vm", "show", "keep", "--json"]), "vm show")) as { pid: number; state: string; ip: string };
  assert.equal(kept.state, "running");
  assert.equal(kept.pid, vmPid, "the same VMM process");
  // DNS and NAT are there again for the re-adopted VM (the config's default DNS address, inside the namespace).
  assert.deepEqual(await queryA(ns, "127.0.0.1:10053", "keep.vm"), { rcode: 0, ips: [kept.ip] }, "keep.vm resolves after the restart");
  const firewall = await hostState(ns);
  assert.ok(`${firewall.ruleset}\n${firewall.iptables}`.includes(kept.ip), "the VM's NAT rule is in place");
  assert.equal((await ok(cli(ns, root, user, ["vm", "exec", "keep", "--", "cat", "/etc/hostname"]), "vm exec")).trim(), "keep");

  // Installing again upgrades in place: new services from a fresh copy, the VM kept.
  const again = JSON.parse(await ok(cli(ns, root, undefined, ["system", "install", "--mode", "detached", "--owner", user.name, "--json"]), "system install (again)")) as { version: string; mode: string; owner: { name: string } };
  assert.deepEqual([again.version, again.mode, again.owner.name], [VERSION, "detached", user.name]);
  assert.equal((JSON.parse(await ok(cli(ns, root, user, ["vm", "show", "keep", "--json"]), "vm show")) as { pid: number }).pid, vmPid, "the same VMM after the upgrade");
  assert.equal((await ok(cli(ns, root, user, ["vm", "exec", "keep", "--", "true"]), "vm exec")), "");
  // One install, one owner: another owner is refused before anything changes.
  const other = await cli(ns, root, undefined, ["system", "install", "--mode", "detached", "--owner", "root"]);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /installed for banger-test.*uninstall/);

  // banger update in this mode too: a bumped package replaces the running one with the VM kept, and
  // one whose daemon cannot start is rolled back by itself, the VM still running.
  const scratch = mkdtempSync("/tmp/bgt-update-pack-");
  cleanup.push("packages", () => { rmSync(scratch, { recursive: true, force: true }); return Promise.resolve(); });
  // dist is already built (the tests run from it): no prepack rebuild under the running suite.
  const packed = await systemRunner.run(["npm", "pack", "--ignore-scripts", "--pack-destination", scratch], { cwd: REPO, timeoutMs: 300_000 });
  const tarball = join(scratch, packed.stdout.toString("utf8").trim().split("\n").pop() ?? "");
  const bumped = `${VERSION}-e2e.1`;
  const broken = `${VERSION}-e2e.2`;
  await repackAs(tarball, join(scratch, `banger-${bumped}.tgz`), bumped);
  await repackAs(tarball, join(scratch, `banger-${broken}.tgz`), broken, { brokenDaemon: true });
  await ok(cli(ns, root, undefined, ["update", "--from", join(scratch, `banger-${bumped}.tgz`)]), "update");
  assert.equal(readlinkSync(layout.currentLink), bumped);
  // This CLI is still the old version: status says so (and exits 1 for the mismatch).
  const statusAfterUpdate = await cli(ns, root, user, ["system", "status", "--json"]);
  const updated = JSON.parse(statusAfterUpdate.stdout) as StatusJson;
  assert.deepEqual([statusAfterUpdate.code, updated.install.versions.daemon, updated.install.versions.helper, updated.install.versions.mismatch], [1, bumped, bumped, true]);
  assert.equal((JSON.parse(await ok(cli(ns, root, user, ["vm", "show", "keep", "--json"]), "vm show")) as { pid: number }).pid, vmPid, "the same VMM after the update");
  assert.equal((await ok(cli(ns, root, user, ["vm", "exec", "keep", "--", "cat", "/etc/hostname"]), "vm exec")).trim(), "keep");
  const failed = await cli(ns, root, undefined, ["update", "--from", join(scratch, `banger-${broken}.tgz`), "--timeout", "10"]);
  assert.equal(failed.code, 1, failed.stdout);
  assert.match(failed.stderr, /did not become healthy.*rolled back to .*e2e\.1, which is serving again/s);
  assert.equal(readlinkSync(layout.currentLink), bumped);
  assert.ok(!readdirSync(layout.libDir).includes(broken), "the broken version's copy is removed");
  assert.equal((JSON.parse(await ok(cli(ns, root, user, ["vm", "show", "keep", "--json"]), "vm show")) as { pid: number }).pid, vmPid, "the same VMM after the rollback");
  assert.equal((await ok(cli(ns, root, user, ["vm", "exec", "keep", "--", "true"]), "vm exec")), "");

  // Uninstall refuses while a VM runs, and changes nothing.
  const refused = await cli(ns, root, undefined, ["system", "uninstall"]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /keep \(running\).*--force/);
  assert.equal(readlinkSync(layout.currentLink), bumped);

  await ok(cli(ns, root, undefined, ["system", "uninstall", "--force"]), "system uninstall --force");
  assert.deepEqual(await hostState(ns), hostBefore, "links, nft, iptables and processes as before the install");
  const isState = (entry: string): boolean => entry.startsWith("var/lib/banger");
  assert.deepEqual(listTree(root).filter((e) => !isState(e)), filesBefore, "nothing but the state dir is left");
  assert.ok(statSync(join(layout.stateDir, "images", "tiny", "rootfs.ext4")).isFile(), "images kept without --purge");
});
