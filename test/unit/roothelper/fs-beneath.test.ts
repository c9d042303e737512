import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chownSync, closeSync, constants, linkSync, mkdirSync, mkdtempSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync, existsSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { createServer } from "node:net";
import { named, openOwnedLog, openRegular, createExclusive, removeStale } from "../../../src/roothelper/fs/beneath.js";
import { openManagedRoot, TrustError } from "../../../src/roothelper/fs/managed-root.js";
import { removeTree } from "../../../src/roothelper/fs/remove-tree.js";
import { dirfdCalls, RENAME_EXCHANGE, AT_FDCWD, O_PATH } from "../../../src/system/dirfd-calls.js";
import { needsRoot } from "../../helpers/requirements.js";

const OWNER = { uid: 4242, gid: 4242 };
const base = mkdtempSync("/tmp/bgt-beneath-");
after(() => { rmSync(base, { recursive: true, force: true }); });

function ownerDir(p: string): string {
  mkdirSync(p, { recursive: true });
  chownSync(p, OWNER.uid, OWNER.gid);
  return p;
}
function ownerFile(p: string, data = "x"): string {
  writeFileSync(p, data);
  chownSync(p, OWNER.uid, OWNER.gid);
  return p;
}

void test("a managed root must be a real directory owned by root or the owner", { skip: needsRoot() }, () => {
  const root = ownerDir(join(base, "r1"));
  const r = openManagedRoot("state dir", root, OWNER.uid);
  assert.equal(r.path, root);
  closeSync(r.fd);
  symlinkSync(root, join(base, "r1-link"));
  assert.throws(() => openManagedRoot("state dir", join(base, "r1-link"), OWNER.uid), (e: unknown) => e instanceof TrustError && /state dir .*r1-link: a component of the path is a symlink/.test(e.message));
  assert.throws(() => openManagedRoot("state dir", join(base, "r1-link", "sub"), OWNER.uid), /symlink/);
  mkdirSync(join(base, "other"));
  chownSync(join(base, "other"), 777, 777);
  assert.throws(() => openManagedRoot("runtime dir", join(base, "other"), OWNER.uid), /owned by uid 777; a managed root must be owned by root or the owner/);
  assert.throws(() => openManagedRoot("runtime dir", join(base, "missing"), OWNER.uid), /cannot open: ENOENT/);
});

void test("openRegular: the owner's single-link regular file only; symlinks, FIFOs, sockets, devices, hard links and others' files refused without blocking", { skip: needsRoot() }, async () => {
  const rootPath = ownerDir(join(base, "r2"));
  const root = openManagedRoot("state dir", rootPath, OWNER.uid);
  ownerDir(join(rootPath, "d"));
  ownerFile(join(rootPath, "d", "disk"), "disk!");
  const { fd } = openRegular(named("disk", join(rootPath, "d", "disk"), root), "read", OWNER);
  const buf = Buffer.alloc(5);
  readSync(fd, buf);
  closeSync(fd);
  assert.equal(buf.toString(), "disk!");

  const canary = join(base, "canary");
  mkdirSync(canary);
  writeFileSync(join(canary, "secret"), "root");
  symlinkSync(join(canary, "secret"), join(rootPath, "d", "leaf-link"));
  symlinkSync(canary, join(rootPath, "dir-link"));
  execFileSync("mkfifo", [join(rootPath, "d", "fifo")]);
  execFileSync("mknod", [join(rootPath, "d", "null"), "c", "1", "3"]);
  const server = createServer();
  await new Promise<void>((r) => server.listen(join(rootPath, "d", "sock"), r));
  after(() => { server.close(); });
  linkSync(join(rootPath, "d", "disk"), join(rootPath, "d", "hard"));
  ownerFile(join(rootPath, "d", "rootfile"));
  chownSync(join(rootPath, "d", "rootfile"), 0, 0);
  const open = (rel: string): unknown => openRegular(named("image_path", join(rootPath, rel), root), "readwrite", OWNER);
  assert.throws(() => open("d/leaf-link"), /is a symlink, not a regular file/);
  assert.throws(() => open("dir-link/secret"), /symlink; refusing/);
  assert.throws(() => open("d/fifo"), /is a FIFO, not a regular file/);
  assert.throws(() => open("d/null"), /is a character device/);
  assert.throws(() => open("d/sock"), /is a socket/);
  assert.throws(() => open("d/hard"), /has 2 hard links/);
  assert.throws(() => open("d/rootfile"), /owned by uid 0, not uid 4242/);
  assert.throws(() => open("d/missing"), (e: unknown) => e instanceof Error && "code" in e && e.code === "not_found");
  assert.throws(() => openRegular(named("x", join(base, "canary", "secret"), root), "read", OWNER), /outside/);
  assert.throws(() => openRegular(named("x", `${rootPath}/d/../../canary/secret`, root), "read", OWNER), /normalized/);
  assert.equal(readFileSync(join(canary, "secret"), "utf8"), "root");
});

void test("openOwnedLog creates and hands over a new file, appends to the owner's own, never chowns an existing one", { skip: needsRoot() }, () => {
  const rootPath = ownerDir(join(base, "r3"));
  const root = openManagedRoot("state dir", rootPath, OWNER.uid);
  const n = named("vmm_log", join(rootPath, "vmm.log"), root);
  let fd = openOwnedLog(n, OWNER);
  writeSync(fd, "a");
  closeSync(fd);
  const st = statSync(join(rootPath, "vmm.log"));
  assert.equal(st.uid, OWNER.uid);
  assert.equal(st.mode & 0o777, 0o640);
  fd = openOwnedLog(n, OWNER);
  writeSync(fd, "b");
  closeSync(fd);
  assert.equal(readFileSync(join(rootPath, "vmm.log"), "utf8"), "ab");
  writeFileSync(join(rootPath, "root.log"), "");
  assert.throws(() => openOwnedLog(named("console_log", join(rootPath, "root.log"), root), OWNER), /owned by uid 0/);
  assert.equal(statSync(join(rootPath, "root.log")).uid, 0);
});

void test("createExclusive and removeStale act in the verified parent only", { skip: needsRoot() }, () => {
  const rootPath = ownerDir(join(base, "r4"));
  const root = openManagedRoot("runtime dir", rootPath, OWNER.uid);
  const n = named("pid_file", join(rootPath, "vmm.pid"), root);
  closeSync(createExclusive(n, 0o644));
  assert.equal(statSync(join(rootPath, "vmm.pid")).mode & 0o777, 0o644);
  assert.throws(() => createExclusive(n, 0o644), /cannot be created: EEXIST/);
  removeStale(n, (st) => st.isFile());
  assert.equal(existsSync(join(rootPath, "vmm.pid")), false);
  removeStale(n, (st) => st.isFile());
  mkdirSync(join(rootPath, "vmm.pid"));
  assert.throws(() => { removeStale(n, (st) => st.isFile()); }, /is a directory; refusing to remove it/);
});

void test("removeTree removes by descriptor: symlinks unlinked not followed, hard-linked originals kept, mounts not crossed", { skip: needsRoot() }, () => {
  const top = join(base, "r5");
  mkdirSync(join(top, "jail", "a", "b"), { recursive: true });
  const canary = join(base, "canary5");
  mkdirSync(canary);
  writeFileSync(join(canary, "keep"), "keep");
  writeFileSync(join(top, "jail", "a", "b", "f"), "");
  symlinkSync(canary, join(top, "jail", "a", "to-canary"));
  linkSync(join(canary, "keep"), join(top, "jail", "a", "hard"));
  const topFd = dirfdCalls().openat2(AT_FDCWD, top, O_PATH | constants.O_DIRECTORY, 0, 0);
  assert.equal(removeTree(topFd, "jail"), true);
  assert.equal(existsSync(join(top, "jail")), false);
  assert.equal(readFileSync(join(canary, "keep"), "utf8"), "keep");
  assert.equal(removeTree(topFd, "jail"), false);
  mkdirSync(join(top, "m", "mnt"), { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "tmpfs", join(top, "m", "mnt")]);
  try {
    writeFileSync(join(top, "m", "mnt", "inside"), "");
    assert.throws(() => removeTree(topFd, "m"), /EXDEV|EBUSY|another filesystem/);
    assert.equal(existsSync(join(top, "m", "mnt", "inside")), true);
  } finally {
    execFileSync("umount", [join(top, "m", "mnt")]);
  }
  closeSync(topFd);
});

void test("renameat2 RENAME_EXCHANGE swaps two names atomically (the racer the adversarial suite uses)", () => {
  const d = mkdtempSync(join(base, "x-"));
  writeFileSync(join(d, "a"), "A");
  symlinkSync("/", join(d, "b"));
  dirfdCalls().renameat2(AT_FDCWD, join(d, "a"), AT_FDCWD, join(d, "b"), RENAME_EXCHANGE);
  assert.equal(readFileSync(join(d, "b"), "utf8"), "A");
});

void test("a pidfd keeps naming its process: signal 0 fails once it is gone, whatever reuses the pid", async () => {
  const child = (await import("node:child_process")).spawn("sleep", ["30"], { stdio: "ignore" });
  const exited = new Promise((r) => child.once("exit", r));
  const fd = dirfdCalls().pidfdOpen(child.pid ?? -1);
  dirfdCalls().pidfdSendSignal(fd, 0);
  dirfdCalls().pidfdSendSignal(fd, 9);
  await exited;
  assert.throws(() => { dirfdCalls().pidfdSendSignal(fd, 0); }, /ESRCH/);
  closeSync(fd);
});
