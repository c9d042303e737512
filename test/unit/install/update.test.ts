import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:net";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { copyVersion, pointCurrentAt } from "../../../src/install/copy-code.js";
import { installLayout, type InstallLayout } from "../../../src/install/layout.js";
import { readInstallMetadata, writeInstallMetadata, type InstallMetadata } from "../../../src/install/metadata.js";
import { fetchFromRegistry, update, UpdateRolledBackError } from "../../../src/install/update.js";
import { daemonPing } from "../../../src/rpc/daemon/system.js";
import { Dispatcher, implement } from "../../../src/rpc/dispatcher.js";
import { privPing } from "../../../src/rpc/priv/ping.js";
import { serveUnix } from "../../../src/rpc/unix-server.js";
import { createLogger } from "../../../src/system/log.js";
import { FakeRunner, systemRunner, type CommandResult, type Runner } from "../../../src/system/runner.js";

const base = mkdtempSync("/tmp/bgt-update-");
after(() => { rmSync(base, { recursive: true, force: true }); });
let n = 0;

interface PackageOptions {
  /** What both services' --check report as their version (the package's own unless a test says otherwise). */
  readonly checkVersion?: string;
  /** The schema the daemon's --check reports. */
  readonly schema?: number;
  /** A daemon that never serves once started (the fake systemctl below honours the marker). */
  readonly brokenDaemon?: boolean;
  readonly noPackageJson?: boolean;
}

/**
 * A package as npm pack lays it out, in `dir`. Its bangerd also answers --restore-schema the way the
 * real one does, leaving a mark in the state dir so a test can tell it ran.
 */
function writePackage(dir: string, version: string, o: PackageOptions = {}): void {
  const bin = join(dir, "dist", "bin");
  mkdirSync(bin, { recursive: true });
  if (o.noPackageJson !== true) writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "banger", version, dependencies: {} }));
  const check = JSON.stringify({ version: o.checkVersion ?? version, ...(o.schema !== undefined ? { schema: o.schema } : {}) });
  writeFileSync(join(bin, "bangerd-root.cjs"), `process.stdout.write(${JSON.stringify(check)} + "\\n");\n`, { mode: 0o755 });
  writeFileSync(join(bin, "bangerd.cjs"), [
    `if (process.argv.includes("--restore-schema")) {`,
    `  require("node:fs").writeFileSync(process.env.BANGER_STATE_DIR + "/restored-by-" + ${JSON.stringify(version)}, "");`,
    `  process.stdout.write(JSON.stringify({ restored: "the copy", setAside: "the migrated one" }) + "\\n");`,
    `} else process.stdout.write(${JSON.stringify(check)} + "\\n");`,
  ].join("\n") + "\n", { mode: 0o755 });
  if (o.brokenDaemon === true) writeFileSync(join(bin, "broken-daemon"), "");
}

async function tarball(version: string, o: PackageOptions = {}): Promise<string> {
  const dir = mkdtempSync(join(base, "pkg-"));
  writePackage(join(dir, "package"), version, o);
  const out = join(dir, `banger-${version}.tgz`);
  await systemRunner.run(["tar", "-czf", out, "-C", dir, "package"]);
  return out;
}

interface Fixture {
  readonly layout: InstallLayout;
  readonly meta: InstallMetadata;
  /** systemctl argvs the update ran, in order. */
  readonly systemctl: string[][];
  readonly runner: Runner;
  close(): Promise<void>;
}

/**
 * An install of 1.0.0 in systemd mode under a temp root. systemctl is faked: `restart X` (re)starts an
 * in-process server on X's socket that answers ping with the version `current` points at, like the
 * real unit running <current>/dist/bin/X.cjs would; a daemon marked broken stops serving instead.
 * Everything else (tar, node --check) runs for real.
 */
async function installed(): Promise<Fixture> {
  const root = join(base, `root-${n++}`);
  const layout = installLayout(root);
  for (const d of [layout.helperDir, layout.runtimeDir, layout.etcDir, layout.stateDir]) mkdirSync(d, { recursive: true });
  const first = mkdtempSync(join(base, "pkg-"));
  writePackage(first, "1.0.0", { schema: 5 });
  copyVersion(layout, first, "1.0.0");
  pointCurrentAt(layout, "1.0.0");
  const meta: InstallMetadata = {
    schema: 1, version: "1.0.0", mode: "systemd", owner: { name: "o", uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }, node: process.execPath,
    paths: { root, state_dir: layout.stateDir, runtime_dir: layout.runtimeDir, config: layout.configFile, helper_socket: layout.helperSocket, daemon_socket: layout.daemonSocket, log_dir: layout.logDir, lib_dir: layout.libDir },
    network: { bridge: "banger0", cidr: "172.16.90.0/24" }, installed_at: "then",
  };
  writeInstallMetadata(layout.metadataFile, meta);
  const servers = new Map<string, Server>();
  const systemctl: string[][] = [];
  const logger = createLogger({ write: () => undefined });
  const stopService = async (unit: string): Promise<void> => {
    const s = servers.get(unit);
    servers.delete(unit);
    if (s !== undefined) await new Promise<void>((r) => s.close(() => { r(); }));
  };
  const restart = async (unit: string): Promise<void> => {
    await stopService(unit);
    const version = readlinkSync(layout.currentLink);
    const code = join(layout.currentLink, "dist", "bin");
    if (unit === "bangerd.service" && existsSync(join(code, "broken-daemon"))) return;
    const uid = process.getuid?.() ?? 0;
    const dispatcher = unit === "bangerd.service"
      ? new Dispatcher([implement(daemonPing, () => ({ version, pid: process.pid }))])
      : new Dispatcher([implement(privPing, () => ({ version, pid: process.pid, owner_uid: uid, state_dir: layout.stateDir, vmm_dir: layout.helperDir }))]);
    servers.set(unit, await serveUnix({ socketPath: unit === "bangerd.service" ? layout.daemonSocket : layout.helperSocket, dispatcher, logger, allowedUids: [uid] }));
  };
  const runner: Runner = {
    async run(argv, options): Promise<CommandResult> {
      // Running as someone other than root, setpriv could not drop "to the owner" (this user): run what it would exec.
      if (argv[0]?.endsWith("/setpriv") === true) return systemRunner.run(argv.slice(argv.indexOf("--") + 1), options);
      if (argv[0] !== "systemctl") return systemRunner.run(argv, options);
      systemctl.push([...argv]);
      if (argv[1] === "restart" && argv[2] !== undefined) await restart(argv[2]);
      return { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
    },
  };
  await restart("bangerd-root.service");
  await restart("bangerd.service");
  return { layout, meta, systemctl, runner, close: async () => { for (const u of [...servers.keys()]) await stopService(u); } };
}

const quiet = (): void => undefined;
const RESTART_BOTH = [["systemctl", "restart", "bangerd-root.service"], ["systemctl", "restart", "bangerd.service"]];

/** What the lib dir holds besides `current`: version dirs, and any scratch an update forgot. */
const libEntries = (l: InstallLayout): string[] => readdirSync(l.libDir).filter((e) => e !== "current").sort();

void test("update copies the new version beside the old one, swaps current and restarts helper then daemon", async () => {
  const f = await installed();
  try {
    const r = await update({ layout: f.layout, meta: f.meta, tarball: await tarball("1.0.1"), runner: f.runner, log: quiet });
    assert.deepEqual(r, { from: "1.0.0", to: "1.0.1" });
    assert.equal(readlinkSync(f.layout.currentLink), "1.0.1");
    assert.equal(readInstallMetadata(f.layout.metadataFile)?.version, "1.0.1");
    assert.deepEqual(f.systemctl, RESTART_BOTH);
    assert.deepEqual(libEntries(f.layout), ["1.0.0", "1.0.1"], "the old version stays beside it, no scratch left");
  } finally {
    await f.close();
  }
});

void test("a new version whose daemon does not come up is rolled back: current, metadata and services back on the old version", async () => {
  const f = await installed();
  try {
    const tgz = await tarball("1.0.2", { brokenDaemon: true });
    await assert.rejects(update({ layout: f.layout, meta: f.meta, tarball: tgz, runner: f.runner, log: quiet, healthTimeoutMs: 1_000 }), (e: unknown) => {
      assert.ok(e instanceof UpdateRolledBackError, String(e));
      assert.match(e.message, /^banger 1\.0\.2 did not become healthy \(bangerd did not answer as version 1\.0\.2 within 1s .*\); rolled back to 1\.0\.0, which is serving again/);
      return true;
    });
    assert.equal(readlinkSync(f.layout.currentLink), "1.0.0");
    assert.deepEqual(readInstallMetadata(f.layout.metadataFile), f.meta);
    assert.deepEqual(f.systemctl, [...RESTART_BOTH, ...RESTART_BOTH], "restarted on the new version, then again on the old");
    assert.deepEqual(libEntries(f.layout), ["1.0.0"], "the broken copy is removed");
  } finally {
    await f.close();
  }
});

void test("a package whose services do not report its version is refused before anything changes", async () => {
  const f = await installed();
  try {
    const tgz = await tarball("1.0.3", { checkVersion: "9.9.9" });
    await assert.rejects(update({ layout: f.layout, meta: f.meta, tarball: tgz, runner: f.runner, log: quiet }),
      /^Error: banger 1\.0\.3 does not start here, so nothing was changed \(still 1\.0\.0\): bangerd-root in .*\/1\.0\.3 reports version 9\.9\.9, but its package\.json says 1\.0\.3$/);
    assert.equal(readlinkSync(f.layout.currentLink), "1.0.0");
    assert.deepEqual(f.systemctl, [], "no service was touched");
    assert.deepEqual(libEntries(f.layout), ["1.0.0"]);
  } finally {
    await f.close();
  }
});

void test("the installed version itself, or a tarball that is not a package, is refused with what to do and leaves nothing", async () => {
  const f = await installed();
  try {
    await assert.rejects(update({ layout: f.layout, meta: f.meta, tarball: await tarball("1.0.0"), runner: f.runner, log: quiet }),
      /banger 1\.0\.0 is already the installed version; to reinstall it run: sudo banger system install/);
    const notPkg = await tarball("1.0.4", { noPackageJson: true });
    await assert.rejects(update({ layout: f.layout, meta: f.meta, tarball: notPkg, runner: f.runner, log: quiet }),
      new RegExp(`${notPkg} is not a banger package \\(no readable package/package.json: .*\\); make one with npm pack`));
    await assert.rejects(update({ layout: f.layout, meta: f.meta, tarball: join(base, "missing.tgz"), runner: f.runner, log: quiet }), /tar -xzf .*missing\.tgz.*exit code 2/);
    assert.deepEqual(f.systemctl, []);
    assert.deepEqual(libEntries(f.layout), ["1.0.0"]);
    assert.equal(readFileSync(f.layout.metadataFile, "utf8").includes('"version": "1.0.0"'), true);
  } finally {
    await f.close();
  }
});

void test("rolling back from a version that writes a newer schema puts the old database back, with the daemon stopped, before the old daemon starts", async () => {
  const f = await installed();
  const lines: string[] = [];
  try {
    const tgz = await tarball("1.0.5", { brokenDaemon: true, schema: 6 });
    await assert.rejects(update({ layout: f.layout, meta: f.meta, tarball: tgz, runner: f.runner, log: (l) => lines.push(l), healthTimeoutMs: 500 }), UpdateRolledBackError);
    assert.ok(existsSync(join(f.layout.stateDir, "restored-by-1.0.0")), "the old version's daemon restored its schema");
    assert.deepEqual(f.systemctl, [...RESTART_BOTH, ["systemctl", "stop", "bangerd.service"], ...RESTART_BOTH]);
    assert.ok(lines.includes("state database put back from the copy; the one the new version migrated is kept at the migrated one"), lines.join("\n"));
    // The same schema on both sides: nothing to restore.
    await assert.rejects(update({ layout: f.layout, meta: f.meta, tarball: await tarball("1.0.6", { brokenDaemon: true, schema: 5 }), runner: f.runner, log: quiet, healthTimeoutMs: 500 }), UpdateRolledBackError);
    assert.deepEqual(readdirSync(f.layout.stateDir), ["restored-by-1.0.0"], "restored once, for the version that migrated");
  } finally {
    await f.close();
  }
});

void test("--version V fetches the package with npm's own client, scripts off, and names the tarball npm wrote", async () => {
  const npm = new FakeRunner((argv) => (argv[0] === "npm" ? { stdout: Buffer.from("npm notice ...\nbanger-1.2.3.tgz\n") } : undefined));
  assert.equal(await fetchFromRegistry(npm, "1.2.3", "/tmp/d"), "/tmp/d/banger-1.2.3.tgz");
  assert.deepEqual(npm.argvs(), [["npm", "pack", "banger@1.2.3", "--ignore-scripts", "--pack-destination", "/tmp/d"]]);
  await assert.rejects(fetchFromRegistry(npm, "1.2.3 --registry=evil", "/tmp/d"), /--version "1\.2\.3 --registry=evil" is not a version/);
  const odd = new FakeRunner(() => ({ stdout: Buffer.from("../../etc/passwd\n") }));
  await assert.rejects(fetchFromRegistry(odd, "1.2.3", "/tmp/d"), /not a tarball name/);
});

void test("banger update: flag mistakes are usage errors, and an uninstalled host is told how to install", () => {
  const cli = (args: string[]): SpawnSyncReturns<string> => spawnSync(process.execPath, [resolve(import.meta.dirname, "..", "..", "..", "bin", "banger.cjs"), "update", ...args], {
    env: { PATH: process.env["PATH"] ?? "", HOME: base, BANGER_INSTALL_ROOT: join(base, "not-installed") }, encoding: "utf8", timeout: 30_000,
  });
  for (const args of [[], ["--from", "a.tgz", "--version", "1.0.0"]]) {
    const r = cli(args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /give exactly one of --from TARBALL .* or --version V/);
  }
  assert.match(cli(["--from", "a.tgz", "--timeout", "soon"]).stderr, /--timeout takes seconds \(e\.g\. 60\), not "soon"/);
  if (process.getuid?.() === 0) {
    const r = cli(["--from", "a.tgz"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /banger is not installed \(.*not-installed\/etc\/banger\/install\.json does not exist\); install it with: sudo banger system install/);
  } else {
    assert.match(cli(["--from", "a.tgz"]).stderr, /banger update acts as root .*sudo banger update/);
  }
});
