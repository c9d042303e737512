#!/usr/bin/env node
// One command from a fresh Debian/Ubuntu host to a command run inside a banger VM:
//   sudo node scripts/quickstart.mjs [-- CMD...]      (default CMD: uname -a)
// It is the short sequence README.md documents, run for you:
//   1. apt-get install the host packages (scripts/host-packages.txt)
//   2. as the checkout's owner: npm ci && npm pack            (prepack builds dist/)
//   3. as root: npm install -g --ignore-scripts banger-<version>.tgz   (banger, bangerd, bangerd-root on PATH)
//   4. as root: banger system install --owner $SUDO_USER [--mode detached when systemd is not PID 1]
//   5. as the owner: banger vm run --rm -- CMD                (the default image is built on first use)
// The services keep running afterwards (`banger system status`); `sudo banger system uninstall` removes them.
//
// Root never runs code the owner can still change: npm's scripts run as the checkout's owner, the
// tarball is installed without running any of its scripts (its native addons were built in step 2),
// and `system install` copies the package into root's versioned /usr/local/lib/banger/<version>.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const repo = resolve(import.meta.dirname, "..");
const dashdash = process.argv.indexOf("--");
const cmd = dashdash === -1 ? ["uname", "-a"] : process.argv.slice(dashdash + 1);

if (process.getuid() !== 0) {
  console.error("quickstart: run me with sudo (the services are installed as root)");
  process.exit(2);
}

function run(argv, opts = {}) {
  console.error(`+ ${argv.join(" ")}`);
  const r = spawnSync(argv[0], argv.slice(1), { stdio: "inherit", cwd: repo, ...opts });
  if (r.status !== 0) {
    console.error(`quickstart: ${argv[0]} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
  return r;
}

const pkgs = readFileSync(join(repo, "scripts", "host-packages.txt"), "utf8").split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
const aptEnv = { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } };
run(["apt-get", "update"], aptEnv);
run(["apt-get", "install", "-y", "--no-install-recommends", ...pkgs], aptEnv);

// The owner: whoever ran sudo.
const owner = process.env.SUDO_USER && process.env.SUDO_USER !== "root" ? process.env.SUDO_USER : undefined;
if (owner === undefined) {
  console.error("quickstart: run me through sudo from the account that will own the VMs (the daemon runs as that user, never as root)");
  process.exit(2);
}
const pw = readFileSync("/etc/passwd", "utf8").split("\n").map((l) => l.split(":")).find((f) => f[0] === owner);
const uid = Number(pw[2]);
const gid = Number(pw[3]);
const home = pw[5];
const asOwner = (argv) => ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--", ...argv];

// npm runs the checkout's scripts: as whoever owns the checkout, never as root in someone else's tree.
const repoUid = statSync(repo).uid;
if (repoUid !== 0 && repoUid !== uid) {
  console.error(`quickstart: ${repo} belongs to uid ${repoUid}, neither root nor ${owner}; run quickstart from your own checkout`);
  process.exit(2);
}
const asRepoOwner = (argv) => (repoUid === 0 ? argv : asOwner(argv));
// better-sqlite3 compiles its addon when no prebuilt one can be fetched, and node-gyp would then
// download node's headers from nodejs.org: offline, or behind a proxy, `npm ci` fails. The node
// running this script ships its headers; point node-gyp at them unless the user chose a nodedir.
const nodePrefix = resolve(process.execPath, "..", "..");
const nodedir = process.env.npm_config_nodedir === undefined && existsSync(join(nodePrefix, "include", "node", "common.gypi")) ? { npm_config_nodedir: nodePrefix } : {};
const repoEnv = { env: { ...process.env, ...nodedir, ...(repoUid === 0 ? {} : { HOME: home }) } };
const packDir = mkdtempSync(join(tmpdir(), "banger-pack-"));
try {
  if (repoUid !== 0) spawnSync("chown", [`${uid}:${gid}`, packDir]);
  run(asRepoOwner(["npm", "ci"]), repoEnv);
  run(asRepoOwner(["npm", "pack", "--silent", "--pack-destination", packDir]), repoEnv);
  const version = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).version;
  const tarball = join(packDir, `banger-${version}.tgz`);
  if (!existsSync(tarball)) {
    console.error(`quickstart: npm pack did not write ${tarball}`);
    process.exit(1);
  }
  run(["npm", "install", "-g", "--ignore-scripts", "--no-audit", "--no-fund", tarball]);
} finally {
  rmSync(packDir, { recursive: true, force: true });
}

// The installed banger, found the way the user will find it: on root's PATH, in npm's global prefix.
const prefix = run(["npm", "prefix", "-g"], { stdio: ["ignore", "pipe", "inherit"] }).stdout.toString().trim();
const banger = join(prefix, "bin", "banger");
const mode = existsSync("/run/systemd/system") ? [] : ["--mode", "detached"];
if (mode.length > 0) console.error("quickstart: systemd is not PID 1 here: the services run detached (pidfiles in /run/banger-services, logs in /var/log/banger) and do not come back after a reboot");
run([banger, "system", "install", "--owner", owner, ...mode]);
run(asOwner([banger, "vm", "run", "--rm", "--", ...cmd]), { env: { PATH: process.env.PATH, HOME: home } });
