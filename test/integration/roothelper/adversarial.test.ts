import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chownSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { MethodDescriptor } from "../../../src/rpc/descriptor.js";
import { helperVmFiles } from "../../../src/paths/paths.js";
import { privCleanupDmSnapshot, privCreateDmSnapshot, privWriteExt4Files } from "../../../src/rpc/priv/disks.js";
import { privLearnEgress, privListEgress, privSetEgress } from "../../../src/rpc/priv/egress.js";
import { privSyncHosts } from "../../../src/rpc/priv/network.js";
import { privPing } from "../../../src/rpc/priv/ping.js";
import { privVmmSendIdentity } from "../../../src/rpc/priv/agent.js";
import { privCleanupVmm, privKillProcess, privLaunchFirecracker, privLaunchQemu, privProbeQemuKvm, privSignalProcess, privVmmSaveState, privVmmSetPaused, privVmmShutdown } from "../../../src/rpc/priv/vmm.js";
import { callMethod } from "../../../src/rpc/unix-client.js";
import { runText, systemRunner } from "../../../src/system/runner.js";
import { startHelperInNetns, type NetnsHelper } from "../../helpers/helper-in-netns.js";
import { createNetNs, type NetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { ensureTestUser, type TestUser } from "../../helpers/users.js";

/*
 * The owner attacks the root helper (issue 14's Acceptance). The helper runs
 * as root in its own network (and, through `ip netns exec`, mount)
 * namespace; a throwaway owner user owns the state dir. For
 * each method that touches the filesystem: (a) every managed root and
 * intermediate directory is replaced by a symlink to a canary directory;
 * (b) an owner process swaps such a directory with a symlink to the canary
 * (renameat2 RENAME_EXCHANGE in a loop) during 300 requests; (c) hard links,
 * FIFOs, sockets and device nodes stand where regular files are expected.
 * After each, the canary tree (root-owned files and a socket, a root-only
 * ext4 image, a loop block device node) must be identical, no connection may
 * have reached the canary's socket, and priv.ping must have been answered
 * within 100 ms throughout.
 */

const VM = "ad".repeat(16);
/** The look-alike VMM's VM: another id, so launches for VM are not refused as a conflict with it. */
const VM2 = "be".repeat(16);
const REQUESTS = 300;
const RACER = join(fileURLToPath(new URL("../../helpers/exchange-racer.js", import.meta.url)));
const skip = requires(needsRoot(), needsCommands("mkfs.ext4", "debugfs", "losetup", "setpriv", "useradd", "userdel", "mknod"));

let base = "";
let owner: TestUser;
let other: TestUser;
let ns: NetNs | undefined;
let helper: NetnsHelper | undefined;
let canary = "";
let canaryHits = 0;
let loopDev = "";
const servers: Server[] = [];
const children: ChildProcess[] = [];
let state = "";
/** The helper's root-owned per-VM run dirs (next to its socket). */
let vmmDir = "";
/** vmm.jail_dir: root's, so only root (the test) can replace or race anything above a chroot. */
let jailDir = "";
/** network.hosts_file's directory: root's (a trust anchor), so, like the jail's, only root can replace or race it. */
let hostsDir = "";
let hostsSyncs = 0;

function asUser(u: { uid: number; gid: number }, argv: readonly string[]): string[] {
  return ["setpriv", `--reuid=${u.uid}`, `--regid=${u.gid}`, "--clear-groups", "--", ...argv];
}

async function listen(path: string, onConnect: () => void = () => undefined): Promise<Server> {
  const s = createServer((c) => { onConnect(); c.destroy(); });
  await new Promise<void>((r) => s.listen(path, r));
  servers.push(s);
  return s;
}

/** Everything about the canary tree an escape could change: entries, types, owners, modes, sizes, device numbers, contents. */
function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      const st = lstatSync(p);
      const sum = st.isFile() ? createHash("sha256").update(readFileSync(p)).digest("hex") : "";
      out.push(`${p.slice(dir.length)} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? st.size : 0} ${st.rdev} ${st.nlink} ${sum}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.join("\n");
}

function ownerDir(p: string): void {
  mkdirSync(p, { recursive: true });
  chownSync(p, owner.uid, owner.gid);
}

function ownerFile(p: string, data: string | Buffer = ""): void {
  writeFileSync(p, data);
  chownSync(p, owner.uid, owner.gid);
}

async function ownerImage(p: string): Promise<void> {
  await systemRunner.run(["truncate", "-s", "4M", p]);
  await systemRunner.run(["mkfs.ext4", "-q", "-F", p]);
  chownSync(p, owner.uid, owner.gid);
}

/** The owner's VM files, as the daemon lays them out (recreated before every attack: a launch that got through may change them). */
async function layout(): Promise<void> {
  ownerDir(join(state, "images", "tiny"));
  for (const f of ["vmlinuz", "initrd.img"]) ownerFile(join(state, "images", "tiny", f), "kernel");
  const rootfs = join(state, "images", "tiny", "rootfs.ext4");
  if (!existsSync(rootfs) || !lstatSync(rootfs).isFile() || lstatSync(rootfs).nlink !== 1) {
    rmSync(rootfs, { force: true });
    await ownerImage(rootfs);
  }
  ownerDir(join(state, "vms", VM));
  for (const f of ["root.ext4", "work.ext4", "cow.img"]) {
    const p = join(state, "vms", VM, f);
    if (!existsSync(p) || !lstatSync(p).isFile() || lstatSync(p).nlink !== 1) {
      rmSync(p, { force: true });
      await ownerImage(p);
    }
  }
  // A snapshot's files, as the daemon makes them (empty, the owner's, one link each).
  ownerDir(join(state, "snapshots"));
  ownerDir(snapDir());
  for (const f of ["vmstate", "memory"]) {
    const p = join(snapDir(), f);
    if (!existsSync(p) || !lstatSync(p).isFile() || lstatSync(p).nlink !== 1) {
      rmSync(p, { force: true });
      ownerFile(p);
    }
  }
  // A leftover jail of VM (root's parents, the chroot the owner's, as staging leaves it).
  ownerDir(join(jailDir, "true", VM, "root"));
  writeFileSync(join(jailDir, "true", VM, "root", "leftover"), "");
  // vmm_shutdown's target for a Firecracker with no socket in the helper's own dir: a jailed one's, in its (owner's) chroot.
  const jailed = join(jailDir, "true", VM2, "root");
  ownerDir(jailed);
  if (!existsSync(join(jailed, "api.sock"))) await listen(join(jailed, "api.sock"));
  // vmm_send_identity's: the jailed Firecracker's hybrid vsock socket (it never answers CONNECT: it hangs up).
  if (!existsSync(join(jailed, "v.sock"))) await listen(join(jailed, "v.sock"));
}

const snapDir = (): string => join(state, "snapshots", "s1");
const snapshotFiles = (): { state_path: string; memory_path: string } => ({ state_path: join(snapDir(), "vmstate"), memory_path: join(snapDir(), "memory") });

const launchFields = (): Record<string, unknown> => ({
  vm_id: VM,
  vcpus: 1,
  memory_mib: 256,
  kernel_path: join(state, "images", "tiny", "vmlinuz"),
  initrd_path: join(state, "images", "tiny", "initrd.img"),
  cmdline: "console=ttyS0",
  root_disk: join(state, "vms", VM, "root.ext4"),
  work_disk: join(state, "vms", VM, "work.ext4"),
  tap_name: "tap-fc-adadadad",
  mac: "06:00:ac:10:00:02",
  console_log: join(state, "vms", VM, "console.log"),
  vmm_log: join(state, "vms", VM, "vmm.log"),
});

/** A well-formed identity: the attacks are on the paths the helper reaches, not on the fields. */
const IDENTITY = { hostname: "fork", mac: "06:00:ac:10:00:09", ip: "172.16.90.9", prefix: 24, gateway: "172.16.90.1", nameservers: ["172.16.90.1"], host_key_b64: "AAAA" };

interface Attack {
  readonly method: MethodDescriptor;
  /** The test's name when a method is attacked more than once (a launch with `restore`). */
  readonly label?: string;
  readonly params: () => Record<string, unknown>;
  /** Directories on the way to what the method touches: each is replaced, and raced, in turn. */
  readonly dirs: () => readonly string[];
  /** Undoes what a request that got through made (a dm snapshot, on hosts with device-mapper). */
  readonly undo?: (result: unknown) => Promise<void>;
}

let lookAlike: ChildProcess | undefined;

const ATTACKS: Attack[] = [
  { method: privLaunchQemu, params: () => ({ ...launchFields(), accel: "tcg" }), dirs: () => [state, join(state, "vms"), join(state, "vms", VM)] },
  { method: privLaunchFirecracker, params: () => ({ ...launchFields(), metrics_path: join(state, "vms", VM, "metrics.json"), vsock_cid: 3 }), dirs: () => [state, jailDir, join(jailDir, "true"), join(state, "images", "tiny"), join(state, "vms", VM)] },
  // Restores: the snapshot's files are opened read-only by descriptor and handed to the VMM (here /usr/bin/true, which exits).
  { method: privLaunchQemu, label: "priv.launch_qemu with restore", params: () => ({ ...launchFields(), accel: "tcg", restore: snapshotFiles() }), dirs: () => [state, join(state, "snapshots"), snapDir()] },
  { method: privLaunchFirecracker, label: "priv.launch_firecracker with restore", params: () => ({ ...launchFields(), metrics_path: join(state, "vms", VM, "metrics.json"), vsock_cid: 3, restore: snapshotFiles() }), dirs: () => [state, join(state, "snapshots"), snapDir()] },
  // A save for the owner's look-alike VMM of VM2 (it passes the pid check): the files are opened read-write, then no QMP socket is found.
  { method: privVmmSaveState, params: () => ({ pid: lookAlike?.pid ?? 0, vm_id: VM2, kind: "qemu", ...snapshotFiles(), timeout_ms: 5000 }), dirs: () => [state, join(state, "snapshots"), snapDir()] },
  { method: privProbeQemuKvm, params: () => ({ kernel_path: join(state, "images", "tiny", "vmlinuz"), timeout_ms: 1000 }), dirs: () => [state, join(state, "images"), join(state, "images", "tiny")] },
  { method: privWriteExt4Files, params: () => ({ image_path: join(state, "vms", VM, "root.ext4"), files: [{ guest_path: "/etc/hostname", data: Buffer.from("x\n").toString("base64"), mode: 0o644 }] }), dirs: () => [state, join(state, "vms"), join(state, "vms", VM)] },
  { method: privVmmShutdown, params: () => ({ pid: lookAlike?.pid ?? 0, vm_id: VM2, kind: "firecracker" }), dirs: () => [jailDir, join(jailDir, "true"), join(jailDir, "true", VM2), join(jailDir, "true", VM2, "root")] },
  { method: privVmmSetPaused, params: () => ({ pid: lookAlike?.pid ?? 0, vm_id: VM2, kind: "firecracker", paused: true }), dirs: () => [jailDir, join(jailDir, "true"), join(jailDir, "true", VM2), join(jailDir, "true", VM2, "root")] },
  { method: privVmmSendIdentity, params: () => ({ ...IDENTITY, pid: lookAlike?.pid ?? 0, vm_id: VM2, kind: "firecracker", timeout_ms: 200 }), dirs: () => [jailDir, join(jailDir, "true"), join(jailDir, "true", VM2), join(jailDir, "true", VM2, "root")] },
  // Raced: the directory cleanup removes the VM's jail beneath (the jail itself goes, so it cannot be the one swapped).
  { method: privCleanupVmm, params: () => ({ vm_id: VM }), dirs: () => [jailDir, join(jailDir, "true")] },
  // Every other request changes the block, so each one writes a temp file and renames it over the hosts file.
  { method: privSyncHosts, params: () => ({ entries: hostsSyncs++ % 2 === 0 ? [{ name: "web", ip: "172.16.90.2" }] : [{ name: "db", ip: "172.16.90.3" }] }), dirs: () => [hostsDir] },
  // Both loops are attached before dmsetup runs, so on a host without device-mapper the rollback detaches them: what is
  // checked is that they were bound to the owner's files (the canary's are unchanged and never left attached).
  {
    method: privCreateDmSnapshot,
    params: () => ({ rootfs_path: join(state, "images", "tiny", "rootfs.ext4"), cow_path: join(state, "vms", VM, "cow.img"), dm_name: `fc-rootfs-${VM}` }),
    dirs: () => [state, join(state, "images"), join(state, "images", "tiny"), join(state, "vms", VM)],
    undo: async (handles) => {
      if (helper === undefined) return;
      await callMethod(helper.socket, privCleanupDmSnapshot, { ...(handles as { base_loop: string; cow_loop: string; dm_name: string; dm_dev: string }), rootfs_path: join(state, "images", "tiny", "rootfs.ext4"), cow_path: join(state, "vms", VM, "cow.img") }, { timeoutMs: 30_000 });
    },
  },
];

/** Loop devices backed by a file of this test's (the canary's own read-only loop aside): none may be left attached. */
async function testLoops(): Promise<string[]> {
  const listed = JSON.parse((await runText(systemRunner, ["losetup", "-J", "-l"])) || "{}") as { loopdevices?: { name: string; "back-file": string | null }[] };
  return (listed.loopdevices ?? []).filter((l) => l.name !== loopDev && (l["back-file"] ?? "").startsWith(base)).map((l) => `${l.name} ${l["back-file"] ?? ""}`);
}

const pings: number[] = [];
let pinging = false;

async function pinger(): Promise<void> {
  while (pinging && helper !== undefined) {
    const t0 = performance.now();
    try {
      await callMethod(helper.socket, privPing, {}, { timeoutMs: 5000 });
      pings.push(performance.now() - t0);
    } catch {
      pings.push(Infinity);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function send(a: Attack, n: number, concurrency = 2): Promise<Record<string, number>> {
  const outcomes: Record<string, number> = {};
  let left = n;
  const worker = async (): Promise<void> => {
    while (left-- > 0 && helper !== undefined) {
      let key = "ok";
      try {
        const result: unknown = await callMethod(helper.socket, a.method, a.params() as never, { timeoutMs: 30_000 });
        await a.undo?.(result);
      } catch (e) {
        key = e instanceof Error && "code" in e ? String(e.code) : "error";
      }
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}

/** Swap `dir` with a symlink to the canary for good, run `fn`, put it back. */
async function replaced<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  renameSync(dir, `${dir}.real`);
  symlinkSync(canary, dir);
  try {
    return await fn();
  } finally {
    rmSync(dir);
    renameSync(`${dir}.real`, dir);
  }
}

/** An owner process (root when the owner may not rename `dir`) exchanging `dir` and a symlink to the canary in a loop while `fn` runs. */
async function raced<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const link = `${dir}.swap`;
  symlinkSync(canary, link);
  // The owner races what it may rename; a directory it may not (a root), root races, to test the helper's side anyway.
  const byOwner = statSync(join(dir, "..")).uid === owner.uid && statSync(dir).uid === owner.uid;
  const argv = byOwner ? asUser(owner, [process.execPath, RACER, dir, link]) : [process.execPath, RACER, dir, link];
  const racer = spawn(argv[0] ?? "", argv.slice(1), { stdio: "ignore" });
  children.push(racer);
  try {
    return await fn();
  } finally {
    const gone = new Promise((r) => racer.once("exit", r));
    racer.kill("SIGKILL");
    await gone;
    // Whichever name the real directory ended up under, it goes back to `dir`.
    if (lstatSync(dir).isSymbolicLink()) {
      rmSync(dir);
      renameSync(link, dir);
    } else {
      rmSync(link);
    }
  }
}

before(async () => {
  if (skip !== false) return;
  owner = await ensureTestUser("bgt-adv-owner");
  other = await ensureTestUser("bgt-adv-other");
  base = mkdtempSync("/tmp/bgt-adv-");
  chmodSync(base, 0o755);
  // The canary: what root must never touch on the owner's behalf. Named like the files the methods use, so a redirected lookup would find them.
  canary = join(base, "canary");
  mkdirSync(canary, { mode: 0o755 });
  for (const f of ["vmlinuz", "initrd.img", "console.log", "vmm.log", "vmm.pid", "metrics.json", "secret", "hosts", "vmstate", "memory"]) writeFileSync(join(canary, f), "root's\n", { mode: 0o600 });
  for (const f of ["root.ext4", "work.ext4", "rootfs.ext4", "cow.img"]) {
    await systemRunner.run(["truncate", "-s", "4M", join(canary, f)]);
    await systemRunner.run(["mkfs.ext4", "-q", "-F", join(canary, f)]);
    chmodSync(join(canary, f), 0o600);
  }
  loopDev = (await runText(systemRunner, ["losetup", "--find", "--show", "--read-only", join(canary, "root.ext4")])).trim();
  const rdev = statSync(loopDev).rdev;
  await systemRunner.run(["mknod", "-m", "0600", join(canary, "loop"), "b", String(Math.floor(rdev / 256) & 0xfff), String((rdev & 0xff) | ((rdev >> 12) & 0xfff00))]);
  for (const s of ["qmp.sock", "api.sock"]) await listen(join(canary, s), () => { canaryHits++; });
  mkdirSync(join(canary, "true", VM, "root"), { recursive: true });
  writeFileSync(join(canary, "true", VM, "root", "keep"), "keep");
  mkdirSync(join(canary, "tiny"));
  writeFileSync(join(canary, "tiny", "vmlinuz"), "root's kernel");

  ns = await createNetNs("bgt-adv");
  // Only root-owned binaries may be configured: /usr/bin/true stands in for every VMM, so launches get as far as exec.
  // Firecracker runs jailed: the jail dir is root's all the way down (the helper refuses it otherwise), on /tmp like the state dir.
  jailDir = join(base, "jail");
  hostsDir = join(base, "etc");
  mkdirSync(hostsDir, { mode: 0o755 });
  writeFileSync(join(hostsDir, "hosts"), "127.0.0.1 localhost\n", { mode: 0o644 });
  helper = await startHelperInNetns(ns, owner, `[network]\nhost_dns = "hosts"\nhosts_file = "${join(hostsDir, "hosts")}"\n[vmm]\nqemu_bin = "/usr/bin/true"\nfirecracker_bin = "/usr/bin/true"\njailer = "always"\njailer_bin = "/usr/bin/true"\njail_dir = "${jailDir}"\n`);
  state = join(helper.dir, "state");
  vmmDir = helperVmFiles.vmsDir(helper.dir);
  // The helper's dir is root's 0700; the owner must reach its own roots, as it can in production.
  chmodSync(helper.dir, 0o711);
  await layout();
  // A process of the owner that looks like this VM's qemu (sh copied under qemu's name, argv naming the VM).
  // It waits in the `read` builtin on an open pipe: no child process to outlive it when it is killed.
  const fake = join(base, "bin");
  mkdirSync(fake, { mode: 0o755 });
  copyFileSync("/bin/sh", join(fake, "qemu-system-x86_64"));
  chmodSync(join(fake, "qemu-system-x86_64"), 0o755);
  const argv = asUser(owner, [join(fake, "qemu-system-x86_64"), "-c", "read x", `banger-${VM2}`]);
  lookAlike = spawn(argv[0] ?? "", argv.slice(1), { stdio: ["pipe", "ignore", "ignore"] });
  children.push(lookAlike);
  pinging = true;
  void pinger();
});

after(async () => {
  pinging = false;
  await Promise.all(children.map((c) => new Promise<void>((r) => {
    if (c.exitCode !== null || c.signalCode !== null) r();
    else {
      c.once("exit", () => { r(); });
      c.kill("SIGKILL");
    }
  })));
  for (const s of servers) s.close();
  await helper?.stop();
  await ns?.destroy();
  if (loopDev !== "") await systemRunner.run(["losetup", "-d", loopDev]).catch(() => undefined);
  if (base !== "") rmSync(base, { recursive: true, force: true });
  for (const u of ["bgt-adv-owner", "bgt-adv-other"]) await systemRunner.run(["userdel", "-r", u]).catch(() => undefined);
});

for (const a of ATTACKS) {
  void test(`${a.label ?? a.method.name}: managed roots and intermediate dirs replaced by, and raced with, symlinks to a canary`, { skip, timeout: 600_000 }, async (t) => {
    const before = snapshot(canary);
    pings.length = 0;
    for (const dir of a.dirs()) {
      await layout();
      const r = await replaced(dir, () => send(a, 5, 1));
      t.diagnostic(`${dir.slice(base.length)} replaced: ${JSON.stringify(r)}`);
      assert.equal(snapshot(canary), before, `canary changed with ${dir} replaced`);
    }
    const racedDir = a.dirs().at(-1) ?? state;
    await layout();
    const r = await raced(racedDir, () => send(a, REQUESTS));
    t.diagnostic(`${racedDir.slice(base.length)} raced over ${REQUESTS} requests: ${JSON.stringify(r)}`);
    assert.equal(snapshot(canary), before, `canary changed while ${racedDir} was raced`);
    assert.equal(canaryHits, 0, "no request reached the canary's sockets");
    // Every launch failed (the VMM binary is /usr/bin/true): none leaves a run dir behind.
    assert.deepEqual(readdirSync(vmmDir), [], "no VMM run dir left behind");
    assert.deepEqual(await testLoops(), [], "no loop device left attached");
    assertPings(t);
  });
}

void test("the helper's VMM run dirs and the jail's parents are root's: the owner can create, rename or remove nothing in them", { skip, timeout: 60_000 }, async () => {
  assert.ok(helper !== undefined);
  await layout();
  const st = statSync(vmmDir);
  assert.ok(st.uid === 0 && (st.mode & 0o022) === 0, `${vmmDir} is root's and writable by nobody else`);
  // A run dir as a launch leaves it while its VMM runs (made here by root, as the helper makes it).
  const vmRun = join(vmmDir, VM2);
  mkdirSync(vmRun, { mode: 0o711 });
  writeFileSync(join(vmRun, "vmm.pid"), "1\n", { mode: 0o644 });
  try {
    for (const argv of [["mkdir", join(vmmDir, VM)], ["ln", "-s", canary, join(vmmDir, VM)], ["touch", join(vmRun, "qmp.sock")], ["mv", vmRun, join(vmmDir, "x")], ["rm", "-f", join(vmRun, "vmm.pid")], ["mkfifo", join(vmRun, "launch")],
      // What the jailer resolves by name as root (--chroot-base-dir and below, up to the chroot): nothing the owner can change.
      ["mv", join(jailDir, "true", VM, "root"), join(jailDir, "true", VM, "x")], ["ln", "-s", canary, join(jailDir, "true", VM2 + "x")], ["mv", join(jailDir, "true"), join(jailDir, "x")]]) {
      await assert.rejects(systemRunner.run(asUser(owner, argv)), `the owner cannot ${argv.join(" ")}`);
    }
    assert.equal(readFileSync(join(vmRun, "vmm.pid"), "utf8"), "1\n", "the owner may read the pidfile");
    assert.deepEqual(readdirSync(vmmDir), [VM2]);
    // cleanup_vmm removes it once no VMM of that VM runs; the look-alike is the owner's sh, named like a VMM of VM2.
    await assert.rejects(callMethod(helper.socket, privCleanupVmm, { vm_id: VM2 }, { timeoutMs: 5000 }), /already has a running VMM/);
    assert.deepEqual(await callMethod(helper.socket, privCleanupVmm, { vm_id: VM }, { timeoutMs: 5000 }), { removed: true }, "the jail leftover of VM");
  } finally {
    rmSync(vmRun, { recursive: true, force: true });
  }
});

/** priv.ping, sent every 20 ms by the pinger throughout, answered within 100 ms each time (the helper's event loop never blocked on an attack). */
function assertPings(t: { diagnostic: (m: string) => void }): void {
  const sorted = [...pings].sort((x, y) => x - y);
  t.diagnostic(`priv.ping over ${sorted.length}: median ${(sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(1)} ms, slowest ${sorted.slice(-3).map((x) => x.toFixed(1)).join(", ")} ms`);
  assert.ok(sorted.length > 0 && (sorted.at(-1) ?? Infinity) < 100, "priv.ping answered within 100 ms throughout");
}

void test("hard links, FIFOs, sockets and device nodes where regular files are expected are refused without blocking", { skip, timeout: 120_000 }, async (t) => {
  const before = snapshot(canary);
  pings.length = 0;
  const vmDir = join(state, "vms", VM);
  const plant = async (name: string, how: "hardlink" | "fifo" | "socket" | "device", dir = vmDir): Promise<void> => {
    const p = join(dir, name);
    rmSync(p, { force: true });
    if (how === "hardlink") linkSync(join(canary, dir === hostsDir ? "hosts" : "secret"), p);
    else if (how === "fifo") await systemRunner.run(["mkfifo", p]);
    else if (how === "socket") await listen(p);
    else await systemRunner.run(["mknod", p, "b", ...(await runText(systemRunner, ["stat", "-c", "%t %T", loopDev])).trim().split(" ").map((h) => String(parseInt(h, 16)))]);
  };
  for (const how of ["hardlink", "fifo", "socket", "device"] as const) {
    await layout();
    for (const [name, a] of [["root.ext4", ATTACKS[3]], ["work.ext4", ATTACKS[0]], ["console.log", ATTACKS[1]], ["vmm.log", ATTACKS[0]], ["cow.img", ATTACKS.find((x) => x.method === privCreateDmSnapshot)]] as const) {
      await plant(name, how);
      const t0 = performance.now();
      const r = await send(a as Attack, 1, 1);
      assert.ok(performance.now() - t0 < 5000, `${how} at ${name} answered at once`);
      assert.equal(r["ok"], undefined, `${how} at ${name} was refused: ${JSON.stringify(r)}`);
      rmSync(join(vmDir, name), { force: true });
    }
    // A snapshot's state file: a save would write it, a restore hand it to the VMM.
    await layout();
    for (const a of ATTACKS.filter((x) => x.method === privVmmSaveState || x.label !== undefined)) {
      await plant("vmstate", how, snapDir());
      const t0 = performance.now();
      const r = await send(a, 1, 1);
      assert.ok(performance.now() - t0 < 5000, `${how} as the state file (${a.label ?? a.method.name}) answered at once`);
      assert.deepEqual(r, { bad_params: 1 }, `${how} as the state file refused by ${a.label ?? a.method.name}`);
      rmSync(join(snapDir(), "vmstate"), { force: true });
      ownerFile(join(snapDir(), "vmstate"));
    }
    // The hosts file: root's own, in root's directory; whatever stands in its place is neither read nor replaced.
    const hosts = join(hostsDir, "hosts");
    await plant("hosts", how, hostsDir);
    const planted = lstatSync(hosts);
    const t0 = performance.now();
    const r = await send(ATTACKS.find((x) => x.method === privSyncHosts) as Attack, 2, 1);
    assert.ok(performance.now() - t0 < 5000, `${how} at the hosts file answered at once`);
    assert.deepEqual(r, { bad_params: 2 }, `${how} at the hosts file was refused`);
    assert.deepEqual([lstatSync(hosts).ino, lstatSync(hosts).mode, lstatSync(hosts).nlink], [planted.ino, planted.mode, planted.nlink], `${how} at the hosts file left in place`);
    assert.deepEqual(readdirSync(hostsDir), ["hosts"], "no temp file left beside it");
    rmSync(hosts, { force: true });
    writeFileSync(hosts, "127.0.0.1 localhost\n", { mode: 0o644 });
  }
  assert.equal(snapshot(canary), before);
  assertPings(t);
});

void test("signals: another uid's look-alike VMM is never signalled; the owner's own is (it could signal it itself)", { skip, timeout: 60_000 }, async () => {
  assert.ok(helper !== undefined && lookAlike?.pid !== undefined);
  const fake = join(base, "bin", "qemu-system-x86_64");
  const argv = asUser(other, [fake, "-c", "read x", `banger-${VM2}`]);
  const foreign = spawn(argv[0] ?? "", argv.slice(1), { stdio: ["pipe", "ignore", "ignore"] });
  children.push(foreign);
  const rootArgv = [fake, "-c", "read x", `banger-${VM2}`];
  const rootOwned = spawn(rootArgv[0] ?? "", rootArgv.slice(1), { stdio: ["pipe", "ignore", "ignore"] });
  children.push(rootOwned);
  await new Promise((r) => setTimeout(r, 300));
  for (const victim of [foreign, rootOwned]) {
    for (const signal of ["SIGSTOP", "SIGKILL", "SIGTERM"]) {
      await assert.rejects(callMethod(helper.socket, privSignalProcess, { pid: victim.pid ?? 0, vm_id: VM2, signal }, { timeoutMs: 5000 }), /runs as uid/);
    }
    await assert.rejects(callMethod(helper.socket, privKillProcess, { pid: victim.pid ?? 0, vm_id: VM2 }, { timeoutMs: 5000 }), /runs as uid/);
    await assert.rejects(callMethod(helper.socket, privVmmShutdown, { pid: victim.pid ?? 0, vm_id: VM2, kind: "firecracker" }, { timeoutMs: 5000 }), /runs as uid/);
    await assert.rejects(callMethod(helper.socket, privVmmSetPaused, { pid: victim.pid ?? 0, vm_id: VM2, kind: "firecracker", paused: true }, { timeoutMs: 5000 }), /runs as uid/);
    await assert.rejects(callMethod(helper.socket, privVmmSendIdentity, { ...IDENTITY, pid: victim.pid ?? 0, vm_id: VM2, kind: "firecracker" }, { timeoutMs: 5000 }), /runs as uid/);
    const st = readFileSync(`/proc/${victim.pid ?? 0}/stat`, "utf8");
    assert.match(st.slice(st.lastIndexOf(")") + 2), /^S /, "still running, not stopped");
  }
  // The daemon's orphan sweep asks for the helper's own launches only: then even the owner's own
  // look-alike is refused (it may be another banger install's VMM), and lives on.
  for (const victim of [lookAlike, foreign, rootOwned]) {
    await assert.rejects(callMethod(helper.socket, privKillProcess, { pid: victim.pid ?? 0, vm_id: VM2, launched_only: true }, { timeoutMs: 5000 }), /not a VMM this helper launched|runs as uid/);
    const st = readFileSync(`/proc/${victim.pid ?? 0}/stat`, "utf8");
    assert.match(st.slice(st.lastIndexOf(")") + 2), /^S /, "still running");
  }
  // A pid that no longer names a process (what a recycled pid was before it was reused) is not_found.
  const gone = spawn("true");
  await new Promise((r) => gone.once("exit", r));
  await assert.rejects(callMethod(helper.socket, privSignalProcess, { pid: gone.pid ?? 0, vm_id: VM2, signal: "SIGTERM" }, { timeoutMs: 5000 }), /does not exist|has exited|not a VMM/);
});

void test("egress: nft script injection and bad fields in priv.set_egress / priv.learn_egress are refused, and nothing is installed", { skip: skip ?? requires(needsCommands("nft")), timeout: 60_000 }, async () => {
  assert.ok(helper !== undefined && ns !== undefined);
  const h = helper;
  const set = { guest_ip: "172.16.90.2", tap: "tap-fc-0000abcd", remove: false, mode: "allow", cidrs: ["198.51.100.0/24"], isolate: false, forget_learned: false };
  const attempts: [typeof privSetEgress | typeof privLearnEgress, unknown, RegExp][] = [
    [privSetEgress, { ...set, tap: 'tap-fc-0000abcd" } ; flush ruleset ; add element inet x y { "a' }, /tap: .* is not a banger tap name/],
    [privSetEgress, { ...set, tap: "tap-fc-0000abcd\n" }, /not a banger tap name/],
    [privSetEgress, { ...set, guest_ip: "172.16.90.2 } ; flush ruleset ; #" }, /guest_ip: .* is not an IPv4 address/],
    [privSetEgress, { ...set, guest_ip: "172.16.90.255" }, /not a guest address inside/],
    [privSetEgress, { ...set, cidrs: ["0.0.0.0/0 } ; flush ruleset ; #"] }, /cidrs\[0\]: .* is not an IPv4 CIDR/],
    [privSetEgress, { ...set, cidrs: ["198.51.100.0/24\n"] }, /cidrs\[0\]/],
    [privSetEgress, { ...set, cidrs: Array.from({ length: 65 }, (_, i) => `10.0.${i}.0/24`) }, /cidrs|too_big|at most/i],
    [privSetEgress, { ...set, mode: "all; flush ruleset" }, /mode/],
    [privSetEgress, { ...set, tap: "tap-fc-0000abcd" }, /is not attached to/],
    [privSetEgress, { ...set, extra: 1 }, /extra|unrecognized/i],
    [privLearnEgress, { guest_ip: "172.16.90.2", addrs: [{ ip: "198.51.100.7 timeout 1d } ; flush ruleset ; #", ttl_s: 60 }] }, /addrs\[0\]\.ip: .* is not an IPv4 address/],
    [privLearnEgress, { guest_ip: "172.16.90.2", addrs: [{ ip: "198.51.100.7", ttl_s: 0 }] }, /ttl_s/],
    [privLearnEgress, { guest_ip: "172.16.90.2", addrs: [{ ip: "198.51.100.7", ttl_s: 86_401 }] }, /ttl_s/],
    [privLearnEgress, { guest_ip: "172.16.90.2", addrs: [{ ip: "198.51.100.7", ttl_s: 60 }] }, /not registered with an allow policy/],
  ];
  for (const [method, params, why] of attempts) {
    await assert.rejects(callMethod(h.socket, method as typeof privSetEgress, params as never, { timeoutMs: 10_000 }), (e: Error) => why.test(e.message) && "code" in e && e.code === "bad_params" || assert.fail(`${JSON.stringify(params)}: ${e.message}`));
  }
  assert.deepEqual((await callMethod(h.socket, privListEgress, {}, { timeoutMs: 10_000 })).guests, []);
  assert.doesNotMatch(await ns.run(["nft", "list", "tables"]), /banger_egress/, "no request left a table behind");
});
