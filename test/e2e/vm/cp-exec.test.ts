import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, chownSync, lchownSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { createNetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { BIN, startStack } from "../../helpers/stack.js";
import { cliOk, tinyStackConfig } from "../../helpers/tiny-stack.js";
import { treeManifest } from "../../helpers/tree-manifest.js";
import { ensureTestUser } from "../../helpers/users.js";

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft", "tar"));

/** Resident set of every process running the CLI bundle, and of the daemon, in KiB. */
function rssKiB(daemonPid: number | undefined): { cli: number; daemon: number } {
  let cli = 0;
  let daemon = 0;
  for (const d of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
      const isCli = cmd.includes(BIN.banger) && !cmd.startsWith("setpriv") && !cmd.startsWith("ip\0");
      if (!isCli && Number(d) !== daemonPid) continue;
      const kib = Number(/^VmRSS:\s+([0-9]+) kB$/m.exec(readFileSync(`/proc/${d}/status`, "utf8"))?.[1] ?? 0);
      if (isCli) cli = Math.max(cli, kib);
      else daemon = kib;
    } catch {
      // Gone meanwhile.
    }
  }
  return { cli, daemon };
}

test("vm exec flags, Ctrl-C ending a remote command, and vm cp round trips (200 MiB file, a tree with symlinks, modes, mtimes, an empty dir) with flat RSS", { skip: SKIP, timeout: 900_000 }, async (t) => {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const ns = await createNetNs("bgt-cp");
  cleanup.push("netns", () => ns.destroy());
  const stack = await startStack({ user, netns: ns, config: tinyStackConfig("qemu") });
  cleanup.push("stack", async () => {
    await stack.cli(["vm", "rm", "--force", "cpx"]).catch(() => undefined);
    await stack.stop();
  });
  const work = mkdtempSync(join(tmpdir(), "banger-cp-"));
  cleanup.push("work dir", () => { rmSync(work, { recursive: true, force: true }); return Promise.resolve(); });
  chownSync(work, user.uid, user.gid);
  await cliOk(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
  await cliOk(stack, ["vm", "create", "--image", "tiny", "--name", "cpx"], 600_000);

  // Exec flags, docker exec's meaning.
  assert.equal(await cliOk(stack, ["vm", "exec", "-e", "A=1", "-w", "/tmp", "cpx", "--", "sh", "-c", "echo $A; pwd"]), "1\n/tmp\n");
  assert.equal((await stack.cli(["vm", "exec", "-i", "cpx", "--", "wc", "-c"], { stdin: "four" })).stdout.trim(), "4");
  assert.equal((await stack.cli(["vm", "exec", "cpx", "--", "wc", "-c"], { stdin: "four" })).stdout.trim(), "0", "no -i: no stdin");
  assert.equal((await cliOk(stack, ["vm", "exec", "-t", "cpx", "--", "tty"])).trim().startsWith("/dev/pts/"), true);
  assert.equal((await cliOk(stack, ["vm", "exec", "-u", "root", "cpx", "--", "id", "-u"])).trim(), "0");
  const noUser = await stack.cli(["vm", "exec", "-u", "nobody-here", "cpx", "--", "id"]);
  assert.equal(noUser.code, 126);
  assert.match(noUser.stderr, /no user nobody-here in the VM/);
  // The tiny image's busybox setpriv cannot switch users: a name goes through su, a bare uid is refused, saying why.
  const uid = await stack.cli(["vm", "exec", "-u", "65534", "cpx", "--", "id", "-u"]);
  assert.equal(uid.code, 126);
  assert.match(uid.stderr, /-u UID needs util-linux setpriv in the VM/);

  // Ctrl-C: the terminal signals the foreground process group (CLI and ssh); the remote sleep must end.
  const cmd = ns.exec(["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--", process.execPath, BIN.banger, "vm", "exec", "cpx", "--", "sleep", "313"]);
  const child = spawn(cmd[0] ?? "", cmd.slice(1), { env: stack.env, stdio: "ignore", detached: true });
  const gone = new Promise<void>((res) => child.on("close", () => { res(); }));
  const running = async (): Promise<boolean> => (await cliOk(stack, ["vm", "exec", "cpx", "--", "ps"])).split("\n").some((l) => /sleep 313/.test(l));
  for (let i = 0; i < 100 && !(await running()); i++) await sleep(200);
  assert.ok(await running(), "the remote sleep started");
  process.kill(-(child.pid ?? 0), "SIGINT");
  await gone;
  let still = true;
  for (let i = 0; i < 50 && still; i++) {
    still = await running();
    if (still) await sleep(200);
  }
  assert.equal(still, false, "Ctrl-C ended the remote sleep");

  // The tree: modes, mtimes (files, dirs, links), symlinks (relative, absolute, dangling), an empty dir, a 200 MiB file.
  const src = join(work, "tree");
  mkdirSync(join(src, "sub", "empty"), { recursive: true });
  writeFileSync(join(src, "run.sh"), "#!/bin/sh\necho hi\n");
  chmodSync(join(src, "run.sh"), 0o751);
  writeFileSync(join(src, "sub", "secret"), "s");
  chmodSync(join(src, "sub", "secret"), 0o600);
  symlinkSync("../run.sh", join(src, "sub", "rel"));
  symlinkSync("/etc/hostname", join(src, "abs"));
  symlinkSync("nowhere", join(src, "dangling"));
  const big = join(src, "big.bin");
  const chunk = Buffer.alloc(1 << 20);
  writeFileSync(big, "");
  for (let i = 0; i < 200; i++) {
    for (let j = 0; j < chunk.length; j += 4) chunk.writeUInt32LE((i * 2654435761 + j * 40503) >>> 0, j);
    writeFileSync(big, chunk, { flag: "a" });
  }
  const when = new Date("2021-03-04T05:06:07Z");
  for (const p of ["run.sh", "sub/secret", "big.bin"]) utimesSync(join(src, p), when, when);
  for (const p of ["sub/rel", "abs", "dangling"]) lutimesSync(join(src, p), when, when);
  for (const p of ["sub/empty", "sub", "."]) utimesSync(join(src, p), when, when);
  chownTree(src, user.uid, user.gid);
  const before = await treeManifest(src);

  const samples: { cli: number; daemon: number }[] = [];
  const sampler = setInterval(() => { samples.push(rssKiB(stack.pids().daemon)); }, 100);
  let copyMs = 0;
  try {
    const t0 = Date.now();
    await cliOk(stack, ["vm", "cp", src, "cpx:/root/"], 600_000);
    const back = join(work, "back");
    await cliOk(stack, ["vm", "cp", "cpx:/root/tree", back], 600_000);
    copyMs = Date.now() - t0;
    assert.deepEqual(await treeManifest(back), before, "checksums and metadata survive the round trip");
  } finally {
    clearInterval(sampler);
  }
  const live = samples.filter((s) => s.cli > 0);
  const spread = (xs: number[]): number => Math.max(...xs) - Math.min(...xs);
  t.diagnostic(`round trip of ${before.length} entries (200 MiB) in ${copyMs} ms; CLI RSS ${Math.min(...live.map((s) => s.cli))}..${Math.max(...live.map((s) => s.cli))} KiB, daemon ${Math.min(...samples.map((s) => s.daemon))}..${Math.max(...samples.map((s) => s.daemon))} KiB over ${samples.length} samples`);
  assert.ok(live.length > 10, "the CLI was sampled while copying");
  assert.ok(spread(live.map((s) => s.cli)) < 24 * 1024, "the CLI's RSS stays flat (no file data in node)");
  // The daemon is not in the data path; a GC may shrink it meanwhile, so flat means never above where it started.
  const series = samples.filter((_, i) => i % Math.max(1, Math.floor(samples.length / 10)) === 0).map((s) => Math.round(s.daemon / 1024));
  t.diagnostic(`daemon RSS series (MiB): ${series.join(" ")}`);
  const daemonStart = samples[0]?.daemon ?? 0;
  assert.ok(daemonStart > 0 && Math.max(...samples.map((s) => s.daemon)) - daemonStart < 24 * 1024, "the daemon's RSS does not grow while copying");

  // Copying to a new name, the tar stream forms, and errors that say what to do.
  await cliOk(stack, ["vm", "cp", join(src, "run.sh"), "cpx:/tmp/renamed"]);
  assert.equal(await cliOk(stack, ["vm", "exec", "cpx", "--", "sh", "-c", "stat -c %a /tmp/renamed; sh /tmp/renamed"]), "751\nhi\n");
  const stream = await stack.cli(["vm", "cp", "cpx:/root/tree/sub", "-"]);
  assert.equal(stream.code, 0, stream.stderr);
  assert.match(stream.stdout.slice(0, 100), /^\.\/sub\//);
  const missing = await stack.cli(["vm", "cp", "cpx:/no/such", join(work, "x")]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /\/no\/such: no such file or directory in the VM/);
  assert.deepEqual(readdirSync(work).sort(), ["back", "tree"], "a failed copy leaves nothing on the host");
  const noDir = await stack.cli(["vm", "cp", join(src, "run.sh"), "cpx:/no/such/x"]);
  assert.match(noDir.stderr, /\/no\/such: no such directory in the VM/);
  await cliOk(stack, ["vm", "rm", "--force", "cpx"]);
});

function chownTree(p: string, uid: number, gid: number): void {
  lchownSync(p, uid, gid);
  if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(join(p, e), uid, gid);
}
