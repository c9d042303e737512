#!/usr/bin/env node
// One command from a fresh Debian/Ubuntu host to a command run inside a banger VM:
//   sudo node scripts/quickstart.mjs [-- CMD...]      (default CMD: uname -a)
// Installs host packages, builds banger (as the checkout's owner), installs the root helper into a
// root-owned directory and starts it (root) and bangerd (as the invoking user, from $SUDO_USER),
// then runs `banger vm run --rm -- CMD`. The default image is built on first use. The two daemons
// keep running afterwards; the helper logs to /var/log/banger, the daemon under its state dir.
//
// Root never acts through a path the owner controls: directories and logs in the owner's home are
// made by processes running as the owner, the helper gets root's own config file
// (/etc/banger/config.toml, optional) rather than the owner's, and it runs from a root-owned copy,
// so nothing the owner writes later is executed as root.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
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

// The owner: whoever ran sudo (root when there is no sudo user).
const owner = process.env.SUDO_USER && process.env.SUDO_USER !== "root" ? process.env.SUDO_USER : "root";
const pw = readFileSync("/etc/passwd", "utf8").split("\n").map((l) => l.split(":")).find((f) => f[0] === owner);
const uid = Number(pw[2]);
const gid = Number(pw[3]);
const home = pw[5];
const asOwner = (argv) => (owner === "root" ? argv : ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--", ...argv]);

// npm runs the checkout's scripts: as whoever owns the checkout, never as root in someone else's tree.
const repoUid = statSync(repo).uid;
if (repoUid !== 0 && repoUid !== uid) {
  console.error(`quickstart: ${repo} belongs to uid ${repoUid}, neither root nor ${owner}; run quickstart from your own checkout`);
  process.exit(2);
}
const asRepoOwner = (argv) => (repoUid === 0 ? argv : asOwner(argv));
const repoEnv = repoUid === 0 ? {} : { env: { ...process.env, HOME: home } };
run(asRepoOwner(["npm", "ci"]), repoEnv);
run(asRepoOwner(["npm", "run", "build"]), repoEnv);

// The helper runs from a root-owned copy of its bundle and its one native dependency: the checkout
// stays the owner's to change, and nothing it later holds is executed as root.
const helperHome = "/usr/local/lib/banger";
rmSync(helperHome, { recursive: true, force: true });
mkdirSync(join(helperHome, "bin"), { recursive: true, mode: 0o755 });
cpSync(join(repo, "dist", "bin", "bangerd-root.cjs"), join(helperHome, "bin", "bangerd-root.cjs"));
// koffi's native code ships in a per-platform package beside it (@koromix/koffi-linux-x64).
for (const dep of ["koffi", ...readdirSync(join(repo, "node_modules", "@koromix")).filter((d) => d.startsWith("koffi-")).map((d) => join("@koromix", d))]) {
  cpSync(join(repo, "node_modules", dep), join(helperHome, "node_modules", dep), { recursive: true, dereference: false, verbatimSymlinks: true });
}
(function onlyRootWrites(p) {
  const st = lstatSync(p);
  if (st.isSymbolicLink()) return;
  chmodSync(p, st.mode & 0o755);
  if (st.isDirectory()) for (const e of readdirSync(p)) onlyRootWrites(join(p, e));
})(helperHome);

const stateDir = owner === "root" ? "/var/lib/banger" : join(home, ".local", "state", "banger");
// $XDG_RUNTIME_DIR (/run/user/UID, made by logind, the owner's) over /tmp, where anyone could squat the name first.
const xdg = `/run/user/${uid}`;
const xdgOk = owner !== "root" && (() => { try { const st = lstatSync(xdg); return st.isDirectory() && st.uid === uid; } catch { return false; } })();
const runtimeDir = owner === "root" ? "/run/banger" : xdgOk ? join(xdg, "banger") : `/tmp/banger-runtime-${uid}`;
const configFile = owner === "root" ? "/etc/banger/config.toml" : join(home, ".config", "banger", "config.toml");
// Made by the owner itself, so root never creates or chowns anything through the owner's home;
// mkdir -p keeps an existing directory, which the helper then checks (real directory, the owner's).
run(asOwner(["mkdir", "-p", "-m", "0700", stateDir, runtimeDir]));
for (const d of [stateDir, runtimeDir]) {
  const st = lstatSync(d);
  if (!st.isDirectory() || st.uid !== uid) {
    console.error(`quickstart: ${d} is not a directory of ${owner} (someone else made it, or it is a symlink); remove it and run again`);
    process.exit(1);
  }
}
const env = { ...process.env, HOME: home, BANGER_STATE_DIR: stateDir, BANGER_RUNTIME_DIR: runtimeDir, BANGER_CONFIG: configFile };
const bin = (name) => join(repo, "dist", "bin", `${name}.cjs`);

/** Start argv detached, its output appended to `log`: opened here for root's own log, by a process of the owner for the owner's. */
function startDetached(argv, log, childEnv) {
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", log, log], env: childEnv });
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

async function waitFor(path, what, log) {
  for (let i = 0; i < 100; i++) {
    if (await listening(path)) return;
    await sleep(100);
  }
  console.error(`quickstart: ${what} did not start; see ${log}`);
  process.exit(1);
}

const helperSocket = "/run/banger-root/helper.sock";
if (!(await listening(helperSocket))) {
  mkdirSync("/var/log/banger", { recursive: true, mode: 0o700 });
  const log = openSync("/var/log/banger/bangerd-root.log", "a", 0o600);
  // Root's own config, not the owner's: the helper refuses a config file anyone but root can write.
  startDetached([process.execPath, join(helperHome, "bin", "bangerd-root.cjs"), "--owner", String(uid), "--owner-gid", String(gid), "--state-dir", stateDir, "--config", "/etc/banger/config.toml"], log, { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" });
  await waitFor(helperSocket, "bangerd-root", "/var/log/banger/bangerd-root.log");
}
const daemonSocket = join(runtimeDir, "bangerd.sock");
if (!(await listening(daemonSocket))) {
  // The owner's log, opened by a process of the owner (scripts/detach.mjs), never by root.
  startDetached(asOwner([process.execPath, join(repo, "scripts", "detach.mjs"), join(stateDir, "bangerd.log"), "--", process.execPath, bin("bangerd")]), "ignore", env);
  await waitFor(daemonSocket, "bangerd", join(stateDir, "bangerd.log"));
}
run(asOwner([process.execPath, bin("banger"), "vm", "run", "--rm", "--", ...cmd]), { env });
