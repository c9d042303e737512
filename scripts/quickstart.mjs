#!/usr/bin/env node
// One command from a fresh Debian/Ubuntu host to a command run inside a banger VM:
//   sudo node scripts/quickstart.mjs [-- CMD...]      (default CMD: uname -a)
// Installs host packages, builds banger, starts bangerd-root (root) and bangerd (as the invoking
// user, from $SUDO_USER), then runs `banger vm run --rm -- CMD`. The default image is built on first use.
// The two daemons keep running afterwards; their logs are under the state dir.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, openSync, readFileSync, chownSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const repo = resolve(import.meta.dirname, "..");
const dashdash = process.argv.indexOf("--");
const cmd = dashdash === -1 ? ["uname", "-a"] : process.argv.slice(dashdash + 1);

if (process.getuid() !== 0) {
  console.error("quickstart: run me with sudo (the root helper must be started as root)");
  process.exit(2);
}

function run(argv, opts = {}) {
  console.error(`+ ${argv.join(" ")}`);
  const r = spawnSync(argv[0], argv.slice(1), { stdio: "inherit", cwd: repo, ...opts });
  if (r.status !== 0) {
    console.error(`quickstart: ${argv[0]} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

const pkgs = readFileSync(join(repo, "scripts", "host-packages.txt"), "utf8").split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
run(["apt-get", "update"], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
run(["apt-get", "install", "-y", "--no-install-recommends", ...pkgs], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
run(["npm", "ci"]);
run(["npm", "run", "build"]);

// The owner: whoever ran sudo (root when there is no sudo user).
const owner = process.env.SUDO_USER && process.env.SUDO_USER !== "root" ? process.env.SUDO_USER : "root";
const pw = readFileSync("/etc/passwd", "utf8").split("\n").map((l) => l.split(":")).find((f) => f[0] === owner);
const uid = Number(pw[2]);
const gid = Number(pw[3]);
const home = pw[5];
const stateDir = owner === "root" ? "/var/lib/banger" : join(home, ".local", "state", "banger");
const runtimeDir = `/tmp/banger-runtime-${uid}`;
const configFile = owner === "root" ? "/etc/banger/config.toml" : join(home, ".config", "banger", "config.toml");
for (const d of [stateDir, runtimeDir]) {
  mkdirSync(d, { recursive: true, mode: 0o700 });
  chownSync(d, uid, gid);
}
const env = { ...process.env, HOME: home, BANGER_STATE_DIR: stateDir, BANGER_RUNTIME_DIR: runtimeDir, BANGER_CONFIG: configFile };
const bin = (name) => join(repo, "dist", "bin", `${name}.cjs`);
const asOwner = (argv) => (owner === "root" ? argv : ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--", ...argv]);

function startDetached(argv, logName) {
  const log = openSync(join(stateDir, logName), "a");
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", log, log], env });
  child.unref();
}

// A socket file is not a server: one left by a daemon that was killed refuses connections (both
// daemons replace such a file when they start).
function listening(path) {
  return new Promise((resolveListening) => {
    const socket = connect(path);
    socket.once("connect", () => { socket.destroy(); resolveListening(true); });
    socket.once("error", () => { resolveListening(false); });
  });
}

async function waitFor(path, what) {
  for (let i = 0; i < 100; i++) {
    if (await listening(path)) return;
    await sleep(100);
  }
  console.error(`quickstart: ${what} did not start; see its log in ${stateDir}`);
  process.exit(1);
}

const helperSocket = "/run/banger-root/helper.sock";
if (!(await listening(helperSocket))) {
  startDetached([process.execPath, bin("bangerd-root"), "--owner", String(uid), "--owner-gid", String(gid), "--state-dir", stateDir, "--runtime-dir", runtimeDir, "--config", configFile], "bangerd-root.log");
  await waitFor(helperSocket, "bangerd-root");
}
const daemonSocket = join(runtimeDir, "bangerd.sock");
if (!(await listening(daemonSocket))) {
  startDetached(asOwner([process.execPath, bin("bangerd")]), "bangerd.log");
  await waitFor(daemonSocket, "bangerd");
}
run(asOwner([process.execPath, bin("banger"), "vm", "run", "--rm", "--", ...cmd]), { env });
