import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { copyIn, copyOut, type RemoteRun } from "../../../src/system/tar-copy.js";
import { needsCommands, requires } from "../../helpers/requirements.js";
import { treeManifest } from "../../helpers/tree-manifest.js";

const SKIP = requires(needsCommands("tar", "busybox"));

/**
 * A stand-in exec channel: runs the guest's argv here with busybox as its tar
 * and tools (what the tiny image has), the host's GNU tar on our side.
 */
function fakeRemote(bin: string): RemoteRun {
  return (argv, opts) => {
    const child = spawn(argv[0] ?? "", argv.slice(1), { env: { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}` }, stdio: ["pipe", "pipe", "pipe"] });
    if (!opts.stdin) child.stdin.end();
    const exit = new Promise<{ code: number | null; signal: string | null }>((res) => child.on("close", (code, signal) => { res({ code, signal }); }));
    return Promise.resolve({ stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exit });
  };
}

void test("cp round trip through busybox tar keeps contents, modes, mtimes of files, dirs and links, and an empty dir", { skip: SKIP }, async (t) => {
  const base = mkdtempSync(join(tmpdir(), "banger-tarcp-"));
  t.after(() => { rmSync(base, { recursive: true, force: true }); });
  const bin = join(base, "bin");
  mkdirSync(bin);
  for (const tool of ["tar", "touch", "mktemp", "dirname", "basename", "mv", "rm", "mkdir"]) symlinkSync("/bin/busybox", join(bin, tool));
  const ssh = fakeRemote(bin);
  const src = join(base, "tree");
  mkdirSync(join(src, "d", "empty"), { recursive: true });
  writeFileSync(join(src, "f"), "hello");
  chmodSync(join(src, "f"), 0o640);
  symlinkSync("f", join(src, "l"));
  symlinkSync("/nowhere", join(src, "d", "dangling"));
  const when = new Date("2020-01-02T03:04:05Z");
  utimesSync(join(src, "f"), when, when);
  lutimesSync(join(src, "l"), when, when);
  lutimesSync(join(src, "d", "dangling"), when, when);
  for (const d of ["d/empty", "d", "."]) utimesSync(join(src, d), when, when);
  const before = await treeManifest(src);
  const guest = join(base, "guest");
  mkdirSync(guest);
  await copyIn(ssh, src, guest);
  assert.deepEqual(await treeManifest(join(guest, "tree")), before, "into an existing directory");
  await copyIn(ssh, src, join(guest, "renamed"));
  assert.deepEqual(await treeManifest(join(guest, "renamed")), before, "to a new name");
  assert.deepEqual(readdirSync(guest).sort(), ["renamed", "tree"], "no temp dir or mtimes list left behind");
  await copyOut(ssh, join(guest, "renamed"), join(base, "back"));
  assert.deepEqual(await treeManifest(join(base, "back")), before, "and back out");
  await assert.rejects(copyOut(ssh, join(guest, "none"), join(base, "x")), /none: no such file or directory in the VM/);
  await assert.rejects(copyIn(ssh, src, join(base, "no", "dir")), /no: no such directory in the VM/);
  await assert.rejects(copyIn(ssh, join(base, "absent"), guest), /absent: no such file or directory here/);
  await assert.rejects(copyOut(ssh, "/", join(base, "x")), /names no file or directory of its own/);
  assert.deepEqual(readdirSync(base).sort(), ["back", "bin", "guest", "tree"], "failed copies leave nothing on the host");
});
