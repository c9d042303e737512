import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { readExt4File } from "../../../src/daemon/storage/ext4.js";
import { privCleanupDmSnapshot, privCreateDmSnapshot, privFsckSnapshot, privWriteExt4Files } from "../../../src/rpc/priv/disks.js";
import { systemRunner } from "../../../src/system/runner.js";
import { startHelperInNetns, type NetnsHelper } from "../../helpers/helper-in-netns.js";
import { createNetNs, type NetNs } from "../../helpers/netns.js";
import { deviceMapper, needsCommands, needsRoot, requires, which } from "../../helpers/requirements.js";
import { ensureTestUser, type TestUser } from "../../helpers/users.js";

/*
 * Parsers of untrusted ext4 never run as root (issue 14). The real helper
 * is configured (tools.debugfs_bin / tools.e2fsck_bin, in its root-owned
 * config) with root-owned wrappers in a root-owned directory. Each wrapper
 * records, from the kernel's own view of it, the credentials it runs with
 * (/proc/self/status) and the descriptors it holds (/proc/PID/fd), then
 * execs the real parser. Without the wrapper's record the test fails; with
 * it, uid/gid must be the owner's, no groups, no capabilities, NoNewPrivs 1,
 * and the only descriptors its stdio pipes, the image and the file contents.
 */

const skip = requires(needsRoot(), needsCommands("mkfs.ext4", "debugfs", "e2fsck", "setpriv", "useradd", "userdel"));
const PARSERS = ["debugfs", "e2fsck"] as const;

let base = "";
let logs = "";
let owner: TestUser;
let ns: NetNs | undefined;
let helper: NetnsHelper | undefined;

/** A root-owned sh wrapper in front of the real `name`, writing <logs>/<name>.<pid>.{status,fds,argv}. */
function wrapper(dir: string, name: string): void {
  const real = realpathSync(which(name) ?? name);
  const script = `#!/bin/sh
log=${logs}/${name}.$$
# A subshell, so the redirection happens in the child: the shell's own fds stay as inherited.
(ls -l /proc/$$/fd/) > "$log.fds"
printf '%s\\n' "$@" > "$log.argv"
while IFS= read -r line; do
  case $line in Uid:*|Gid:*|Groups:*|CapPrm:*|CapEff:*|CapBnd:*|NoNewPrivs:*) printf '%s\\n' "$line" ;; esac
done < /proc/self/status > "$log.status"
exec ${real} "$@"
`;
  writeFileSync(join(dir, name), script, { mode: 0o755 });
}

/** The records the wrapper of `name` left, oldest first; each is removed once read. */
function records(name: string): { status: string; fds: string; argv: string[] }[] {
  const out = readdirSync(logs)
    .filter((f) => f.startsWith(`${name}.`) && f.endsWith(".status"))
    .map((f) => {
      const stem = join(logs, f.slice(0, -".status".length));
      const r = { status: readFileSync(`${stem}.status`, "utf8"), fds: readFileSync(`${stem}.fds`, "utf8"), argv: readFileSync(`${stem}.argv`, "utf8").split("\n").slice(0, -1) };
      for (const ext of ["status", "fds", "argv"]) rmSync(`${stem}.${ext}`);
      return r;
    });
  return out;
}

/**
 * The one run of `name` since the last look: as the owner, nothing more,
 * naming the image only as its inherited fd 3 (never by a path the owner
 * controls), and holding nothing but its pipes, that image and `allowed`.
 */
function assertRanAsOwner(name: string, image: string, allowed: readonly RegExp[] = []): void {
  const runs = records(name);
  assert.equal(runs.length, 1, `the ${name} wrapper ran once (it is what the helper executed)`);
  const { status, fds, argv } = runs[0] ?? { status: "", fds: "", argv: [] };
  assert.equal(argv.at(-1), "/proc/self/fd/3", `the image is named by its fd: ${JSON.stringify(argv)}`);
  const field = (k: string): string => (new RegExp(`^${k}:[ \\t]*(.*)$`, "m").exec(status)?.[1] ?? "<missing>").trim();
  assert.equal(field("Uid").split(/\s+/).join(" "), Array(4).fill(owner.uid).join(" "), "real, effective, saved and fs uid are the owner's");
  assert.equal(field("Gid").split(/\s+/).join(" "), Array(4).fill(owner.gid).join(" "), "every gid is the owner's");
  assert.equal(field("Groups"), "", "no supplementary groups");
  assert.equal(field("NoNewPrivs"), "1");
  for (const cap of ["CapPrm", "CapEff", "CapBnd"]) assert.equal(field(cap), "0000000000000000", `${cap} empty`);
  const targets = new Map(
    fds
      .split("\n")
      .map((l) => /(\d+) -> (.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [Number(m[1]), m[2] ?? ""]),
  );
  assert.equal(targets.get(3), image, `fd 3 is the image the helper opened: ${fds}`);
  const script = join(base, "bin", name);
  for (const [fd, target] of targets) {
    // The shell keeps its script open: the test's, not the helper's.
    const ok = fd === 3 || (fd <= 2 && /^pipe:\[\d+\]$/.test(target)) || target === script || allowed.some((re) => re.test(target));
    assert.ok(ok, `the parser holds nothing of the helper's: fd ${fd} -> ${target} in ${fds}`);
  }
}

before(async () => {
  if (skip !== false) return;
  owner = await ensureTestUser("bgt-parse-owner");
  base = mkdtempSync("/tmp/bgt-parse-");
  // Trust anchors: the wrappers and every directory above them root's, not writable by others.
  chmodSync(base, 0o755);
  mkdirSync(join(base, "bin"), { mode: 0o755 });
  logs = join(base, "logs");
  mkdirSync(logs, { mode: 0o700 });
  chownSync(logs, owner.uid, owner.gid);
  for (const p of PARSERS) wrapper(join(base, "bin"), p);
  ns = await createNetNs("bgt-parse");
  // With a stray inheritable descriptor: the parsers must not get it.
  helper = await startHelperInNetns(ns, owner, `[tools]\ndebugfs_bin = "${join(base, "bin", "debugfs")}"\ne2fsck_bin = "${join(base, "bin", "e2fsck")}"\n`, { strayFd: true });
});

after(async () => {
  await helper?.stop();
  await ns?.destroy();
  if (base !== "") rmSync(base, { recursive: true, force: true });
  if (skip === false) await systemRunner.run(["userdel", "-r", "bgt-parse-owner"]).catch(() => undefined);
});

/** An empty ext4 image of the owner's in its state dir. */
async function ownerImage(rel: string): Promise<string> {
  assert.ok(helper !== undefined);
  const p = join(helper.dir, "state", rel);
  mkdirSync(join(p, ".."), { recursive: true });
  chownSync(join(p, ".."), owner.uid, owner.gid);
  await systemRunner.run(["truncate", "-s", "16M", p]);
  await systemRunner.run(["mkfs.ext4", "-q", "-F", p]);
  chownSync(p, owner.uid, owner.gid);
  chmodSync(p, 0o600);
  return p;
}

const hostname = (text: string): { guest_path: string; data: string; mode: number } => ({ guest_path: "/etc/hostname", data: Buffer.from(text).toString("base64"), mode: 0o644 });

void test("write_ext4_files: debugfs runs as the owner, no groups, no capabilities, no_new_privs, on the image fd only, and the files land", { skip, timeout: 120_000 }, async () => {
  assert.ok(helper !== undefined);
  const img = await ownerImage("vms/v1/root.ext4");
  await helper.call(privWriteExt4Files, { image_path: img, files: [hostname("parsed-as-owner\n")], dirs: [{ guest_path: "/root/.ssh", mode: 0o700, uid: 0, gid: 0 }] });
  assertRanAsOwner("debugfs", img, [/^\/memfd:banger-ext4-file \(deleted\)$/]);
  assert.equal((await readExt4File(systemRunner, img, "/etc/hostname")).toString(), "parsed-as-owner\n");
});

void test("a parser the helper would execute that is not root's alone keeps the helper from starting", { skip, timeout: 60_000 }, async () => {
  assert.ok(ns !== undefined);
  const dir = mkdtempSync(join(base, "owned-"));
  try {
    chmodSync(dir, 0o755);
    wrapper(dir, "debugfs");
    chownSync(join(dir, "debugfs"), owner.uid, owner.gid);
    await assert.rejects(startHelperInNetns(ns, owner, `[tools]\ndebugfs_bin = "${join(dir, "debugfs")}"\n`), /refusing to start: tools\.debugfs_bin .*owned by uid \d+; it must be owned by root/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test("dm snapshot: fsck_snapshot and write_ext4_files run e2fsck/debugfs as the owner on the owner's own snapshot", { skip: skip !== false ? skip : deviceMapper(), timeout: 300_000 }, async (t) => {
  assert.ok(helper !== undefined);
  const h = helper;
  const rootfs = await ownerImage("images/dm/rootfs.ext4");
  const cow = join(h.dir, "state", "vms", "v2", "root.cow");
  mkdirSync(join(cow, ".."), { recursive: true });
  chownSync(join(cow, ".."), owner.uid, owner.gid);
  await systemRunner.run(["truncate", "-s", "32M", cow]);
  chownSync(cow, owner.uid, owner.gid);
  const handles = await h.call(privCreateDmSnapshot, { rootfs_path: rootfs, cow_path: cow, dm_name: `fc-rootfs-${"d2".repeat(16)}` });
  t.after(() => h.call(privCleanupDmSnapshot, { ...handles, rootfs_path: rootfs, cow_path: cow }));
  const node = realpathSync(handles.dm_dev);
  await h.call(privFsckSnapshot, { dm_dev: handles.dm_dev });
  assertRanAsOwner("e2fsck", node);
  await h.call(privWriteExt4Files, { image_path: handles.dm_dev, files: [hostname("dm-as-owner\n")] });
  assertRanAsOwner("debugfs", node, [/^\/memfd:banger-ext4-file \(deleted\)$/]);
  assert.equal((await readExt4File(systemRunner, handles.dm_dev, "/etc/hostname")).toString(), "dm-as-owner\n");
  // The node was handed to the owner (whose files the snapshot is made of); the image itself was never written.
  assert.equal(statSync(node).uid, owner.uid);
  await assert.rejects(readExt4File(systemRunner, rootfs, "/etc/hostname"), /does not exist/);
});
