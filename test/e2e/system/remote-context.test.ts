import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { systemRunner } from "../../../src/system/runner.js";
import { createNetNs, linkNamespaces } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { makeKeyPair, startSshd } from "../../helpers/sshd-in-netns.js";
import { BIN, runCollecting, startStack, type CliResult } from "../../helpers/stack.js";
import { cliOk, tinyStackConfig } from "../../helpers/tiny-stack.js";
import { treeManifest } from "../../helpers/tree-manifest.js";
import { ensureTestUser } from "../../helpers/users.js";

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft", "tar", "ssh", "ssh-keygen", "sshd"));

/** The two "hosts": the client's namespace and the remote's, on a veth of their own (TEST-NET-2). */
const CLIENT_ADDR = "198.51.100.1";
const REMOTE_ADDR = "198.51.100.2";
const PORT_WITH_BANGER = 2222;
const PORT_WITHOUT = 2223;

test("remote context over ssh: a second host's banger driven with --context (create, exec, cp both ways, ssh, delete); a host without banger is a clear error", { skip: SKIP, timeout: 1_200_000 }, async (t) => {
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  // The remote host's owner logs in with a key only; useradd leaves the password field "!" (locked), which sshd refuses, so it becomes "*" (no password).
  const remoteUser = await ensureTestUser("banger-ctxr");
  await systemRunner.run(["usermod", "-p", "*", remoteUser.name]);
  const clientUser = await ensureTestUser("banger-ctxc");

  const clientNs = await createNetNs("bgt-cc");
  cleanup.push("client netns", () => clientNs.destroy());
  const remoteNs = await createNetNs("bgt-cr");
  cleanup.push("remote netns", () => remoteNs.destroy());
  await linkNamespaces(clientNs, remoteNs, `${CLIENT_ADDR}/24`, `${REMOTE_ADDR}/24`);

  // The remote host: helper and daemon as its owner, in its namespace, as other e2e stacks start them.
  const stack = await startStack({ user: remoteUser, netns: remoteNs, config: tinyStackConfig("qemu") });
  cleanup.push("remote stack", () => stack.stop());
  // `banger` on the remote's PATH, as an install puts it there; sshd hands its sessions the stack's paths.
  const bin = join(stack.base, "bin");
  mkdirSync(bin, { mode: 0o755 });
  symlinkSync(BIN.banger, join(bin, "banger"));
  const sessionEnv = { ...Object.fromEntries(Object.entries(stack.env).filter(([k]) => k.startsWith("BANGER_"))), PATH: `${bin}:/usr/bin:/bin` };

  // The client "laptop": its own key, ~/.ssh/config with a host alias, known_hosts pinning the server's key.
  const sshDir = join(clientUser.home, ".ssh");
  rmSync(sshDir, { recursive: true, force: true });
  mkdirSync(sshDir, { mode: 0o700 });
  cleanup.push("client ~/.ssh", () => { rmSync(sshDir, { recursive: true, force: true }); return Promise.resolve(); });
  const clientKey = await makeKeyPair(join(sshDir, "id_ed25519"), "bgt-ctx-client");
  const sshd = await startSshd({
    netns: remoteNs,
    address: REMOTE_ADDR,
    user: remoteUser.name,
    authorizedKeys: [clientKey],
    ports: new Map([[PORT_WITH_BANGER, sessionEnv], [PORT_WITHOUT, { PATH: "/usr/bin:/bin" }]]),
  });
  cleanup.push("sshd", () => sshd.stop());
  writeFileSync(join(sshDir, "known_hosts"), `[${REMOTE_ADDR}]:${PORT_WITH_BANGER},[${REMOTE_ADDR}]:${PORT_WITHOUT} ${sshd.hostPublicKey}\n`);
  writeFileSync(join(sshDir, "config"), [
    "Host bare-host",
    `  HostName ${REMOTE_ADDR}`,
    `  Port ${PORT_WITHOUT}`,
    `  User ${remoteUser.name}`,
    "Host *",
    "  StrictHostKeyChecking yes",
    "  ConnectTimeout 10",
    "",
  ].join("\n"));
  for (const f of ["id_ed25519", "id_ed25519.pub", "known_hosts", "config", ""]) chownSync(join(sshDir, f), clientUser.uid, clientUser.gid);
  chmodSync(join(sshDir, "config"), 0o600);

  const clientDir = mkdtempSync("/tmp/bgt-ctx-client-");
  cleanup.push("client dir", () => { rmSync(clientDir, { recursive: true, force: true }); return Promise.resolve(); });
  chmodSync(clientDir, 0o755);
  const work = join(clientDir, "work");
  mkdirSync(work);
  chownSync(work, clientUser.uid, clientUser.gid);
  // No BANGER_* paths: the client has no daemon of its own; its contexts file is under its XDG config dir.
  const clientEnv = { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: clientUser.home, XDG_CONFIG_HOME: join(clientDir, "config") };
  mkdirSync(clientEnv.XDG_CONFIG_HOME);
  chownSync(clientEnv.XDG_CONFIG_HOME, clientUser.uid, clientUser.gid);
  const client = (args: readonly string[], o: { stdin?: string; env?: Record<string, string> } = {}): Promise<CliResult> => {
    const cmd = clientNs.exec(["setpriv", `--reuid=${clientUser.uid}`, `--regid=${clientUser.gid}`, "--clear-groups", "--", process.execPath, BIN.banger, ...args]);
    return runCollecting(cmd, { env: { ...clientEnv, ...o.env }, cwd: work, timeoutMs: 900_000, ...(o.stdin !== undefined ? { stdin: o.stdin } : {}) });
  };
  const ok = async (args: readonly string[], o: { stdin?: string } = {}): Promise<string> => {
    const r = await client(args, o);
    assert.equal(r.code, 0, `banger ${args.join(" ")} failed (${r.code}):\n${r.stderr}\n${r.stdout}\nsshd:\n${sshd.log().slice(-2000)}`);
    return r.stdout;
  };

  assert.equal(await ok(["context", "add", "lab", `ssh://${remoteUser.name}@${REMOTE_ADDR}:${PORT_WITH_BANGER}`]), "lab\n");
  await ok(["context", "add", "bare", "ssh://bare-host"]);
  const bad = await client(["context", "add", "evil", "ssh://-oProxyCommand=touch${IFS}/tmp/x"]);
  assert.equal(bad.code, 2, "an address that could smuggle an ssh option is refused");

  // A host whose sessions have no banger: the error names the host and says to install banger there.
  const bare = await client(["--context", "bare", "vm", "list"]);
  assert.equal(bare.code, 1);
  assert.match(bare.stderr, /banger is not installed on bare-host .*install banger there/);
  // The local default: no daemon here, said as such (not mistaken for the remote).
  assert.match((await client(["vm", "list"])).stderr, /nothing is listening on/);

  // Through the context: the image and VM are made on the remote host by its daemon.
  await ok(["--context", "lab", "image", "build", "--name", "tiny", "--from", "busybox"]);
  cleanup.push("remote vm", async () => { await stack.cli(["vm", "rm", "--force", "rcx"]).catch(() => undefined); });
  await ok(["--context", "lab", "vm", "create", "--image", "tiny", "--name", "rcx"]);
  assert.match(await cliOk(stack, ["vm", "list"]), /^rcx\s+running/m, "the VM lives on the remote host");

  // context use: commands without --context now go there; BANGER_CONTEXT wins over it; ls marks the one in force.
  await ok(["context", "use", "lab"]);
  assert.match(await ok(["context", "ls"]), /^\* lab\s+ssh:\/\/banger-ctxr@198\.51\.100\.2:2222$/m);
  assert.match(await ok(["vm", "list"]), /^rcx\s+running/m);
  assert.match((await client(["vm", "list"], { env: { BANGER_CONTEXT: "bare" } })).stderr, /banger is not installed on bare-host/);

  // exec: argv kept word for word across both shells, exit codes, stdin only with -i.
  assert.equal(await ok(["--context", "lab", "vm", "exec", "-e", "A=x y", "-w", "/tmp", "rcx", "--", "sh", "-c", 'echo "$A"; pwd; printf "[%s]" "$@"', "sh", "a b", "c'd", "$HOME"]), "x y\n/tmp\n[a b][c'd][$HOME]");
  assert.equal((await client(["--context", "lab", "vm", "exec", "rcx", "--", "sh", "-c", "exit 7"])).code, 7);
  assert.equal((await ok(["--context", "lab", "vm", "exec", "-i", "rcx", "--", "wc", "-c"], { stdin: "four" })).trim(), "4");
  assert.equal((await ok(["--context", "lab", "vm", "exec", "rcx", "--", "wc", "-c"], { stdin: "four" })).trim(), "0", "no -i: no stdin");
  assert.equal(await ok(["--context", "lab", "vm", "ssh", "rcx", "--", "echo", "via", "ssh"]), "via ssh\n");

  // Ctrl-C on the client (the terminal signals its foreground group: CLI and ssh) ends the command in the guest on the remote host.
  const cmd = clientNs.exec(["setpriv", `--reuid=${clientUser.uid}`, `--regid=${clientUser.gid}`, "--clear-groups", "--", process.execPath, BIN.banger, "--context", "lab", "vm", "exec", "rcx", "--", "sleep", "313"]);
  const sleeper = spawn(cmd[0] ?? "", cmd.slice(1), { env: clientEnv, stdio: "ignore", detached: true });
  const sleeperGone = new Promise<void>((res) => sleeper.on("close", () => { res(); }));
  const sleeping = async (): Promise<boolean> => (await cliOk(stack, ["vm", "exec", "rcx", "--", "ps"])).split("\n").some((l) => /sleep 313/.test(l));
  for (let i = 0; i < 100 && !(await sleeping()); i++) await sleep(200);
  assert.ok(await sleeping(), "the remote sleep started");
  process.kill(-(sleeper.pid ?? 0), "SIGINT");
  await sleeperGone;
  let still = true;
  for (let i = 0; i < 50 && still; i++) {
    still = await sleeping();
    if (still) await sleep(200);
  }
  assert.equal(still, false, "Ctrl-C on the client ended the guest command");

  // vm run: create, then attach through the remote host's banger; --rm deletes it there.
  assert.equal(await ok(["--context", "lab", "vm", "run", "--rm", "--image", "tiny", "--name", "rcrun", "--", "echo", "ran there"]), "ran there\n");
  assert.doesNotMatch(await cliOk(stack, ["vm", "list"]), /rcrun/);

  // cp both ways: a tree with a symlink, modes and mtimes, and a file renamed on the way in.
  const src = join(work, "tree");
  mkdirSync(join(src, "sub"), { recursive: true });
  writeFileSync(join(src, "sub", "data.bin"), Buffer.alloc(300_000, 7));
  writeFileSync(join(src, "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
  symlinkSync("sub/data.bin", join(src, "link"));
  await systemRunner.run(["chown", "-R", `${clientUser.uid}:${clientUser.gid}`, src]);
  const before = await treeManifest(src);
  await ok(["--context", "lab", "vm", "cp", src, "rcx:/root/"]);
  await ok(["--context", "lab", "vm", "cp", join(src, "run.sh"), "rcx:/tmp/renamed"]);
  assert.equal(await ok(["--context", "lab", "vm", "exec", "rcx", "--", "/tmp/renamed"]), "hi\n");
  const back = join(work, "back");
  await ok(["--context", "lab", "vm", "cp", "rcx:/root/tree", back]);
  assert.deepEqual(await treeManifest(back), before, "contents, modes, mtimes and the symlink survive the round trip");
  const missing = await client(["--context", "lab", "vm", "cp", "rcx:/nope", join(work, "x")]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\/nope: no such file or directory in the VM/);

  // delete through the context; the remote host has nothing left.
  await ok(["--context", "lab", "vm", "rm", "--force", "rcx"]);
  assert.doesNotMatch(await cliOk(stack, ["vm", "list"]), /rcx/);
  assert.doesNotMatch(await ok(["vm", "list"]), /rcx/);
  // No relay outlives its connection on the remote host (each call's dial-stdio ends with its ssh session).
  const relays = async (): Promise<string> => (await systemRunner.run(["pgrep", "-u", String(remoteUser.uid), "-f", "system dial-stdio"], { okExitCodes: [1] })).stdout.toString().trim();
  for (let i = 0; i < 50 && (await relays()) !== ""; i++) await sleep(100);
  assert.equal(await relays(), "", "no dial-stdio left on the remote host");
  // No ssh client outlives its command on the client "host".
  assert.equal((await systemRunner.run(["ip", "netns", "pids", clientNs.name])).stdout.toString().trim(), "");
  assert.ok(readFileSync(join(clientEnv.XDG_CONFIG_HOME, "banger", "contexts.json"), "utf8").includes("\"current\": \"lab\""));
  await ok(["context", "rm", "lab", "bare"]);
});
