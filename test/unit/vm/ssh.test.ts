import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { state, vmFiles } from "../../../src/paths/paths.js";
import { ensureInstallKey, generateHostKey, publicKeyBody, renderKnownHosts, resetInstallKeyCache, writeKnownHosts } from "../../../src/daemon/vm/ssh-keys.js";
import { bannerCheck, createSshProbe } from "../../../src/daemon/vm/ssh-probe.js";
import { CommandError, FakeRunner, systemRunner } from "../../../src/system/runner.js";
import { quoteForRemoteShell, sshArgv, sshCapture } from "../../../src/system/ssh.js";
import { needsCommands, requires } from "../../helpers/requirements.js";

const target = { keyPath: "/s/ssh/id_ed25519", knownHostsPath: "/s/ssh/known_hosts", host: "172.16.90.5" };

void test("sshArgv pins the host key, ignores user config, and puts the command after --", () => {
  assert.deepEqual(sshArgv(target, { command: ["true"], tty: false }), [
    "ssh", "-F", "none", "-i", "/s/ssh/id_ed25519",
    "-o", "UserKnownHostsFile=/s/ssh/known_hosts", "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
    "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-T", "root@172.16.90.5", "--", "true",
  ]);
  assert.equal(sshArgv(target).at(-1), "root@172.16.90.5");
});

void test("sshArgv refuses hosts, users and paths that could smuggle options", () => {
  for (const host of ["-oProxyCommand=x", "a b", "host\n", "", "1.2.3.4 -v"]) assert.throws(() => sshArgv({ ...target, host }), /not an address/);
  assert.throws(() => sshArgv({ ...target, user: "-l" }), /not a user name/);
  assert.throws(() => sshArgv({ ...target, keyPath: "relative/key" }), /absolute/);
  assert.throws(() => sshArgv({ ...target, knownHostsPath: "/a b" }), /absolute without whitespace/);
});

void test("quoteForRemoteShell keeps argv words intact through the guest shell", () => {
  assert.equal(quoteForRemoteShell(["uname", "-r"]), "uname -r");
  assert.equal(quoteForRemoteShell(["echo", "a b", "it's", "$HOME", ""]), `echo 'a b' 'it'\\''s' '$HOME' ''`);
});

void test("sshCapture returns the remote exit code instead of throwing", async () => {
  const runner = new FakeRunner(() => new CommandError(["ssh"], 42, null, "out", "err"));
  const r = await sshCapture(runner, ["ssh", "x"]);
  assert.equal(r.exitCode, 42);
  assert.equal(r.stdout.toString(), "out");
  const spawnFail = new FakeRunner(() => new CommandError(["ssh"], null, null, "", "", new Error("ENOENT")));
  await assert.rejects(sshCapture(spawnFail, ["ssh"]), /failed to start/);
});

void test("known_hosts lines are NAME.vm,IP plus the key body; comments and junk are refused", () => {
  assert.equal(renderKnownHosts([{ name: "web", ip: "172.16.90.2", publicKey: "ssh-ed25519 AAAAC3Nza+/= host@x" }]), "web.vm,172.16.90.2 ssh-ed25519 AAAAC3Nza+/=\n");
  assert.throws(() => publicKeyBody("ssh-rsa AAAA"), /not an ssh-ed25519/);
  assert.throws(() => publicKeyBody("ssh-ed25519 AAAA\nevil.vm ssh-ed25519 BBBB"), /not an ssh-ed25519/);
});

void test("writeKnownHosts replaces the file atomically with mode 0600", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-vm-kh-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const path = join(dir, "ssh", "known_hosts");
  await Promise.all([
    writeKnownHosts(path, [{ name: "a", ip: "10.0.0.2", publicKey: "ssh-ed25519 AAAA" }]),
    writeKnownHosts(path, [{ name: "b", ip: "10.0.0.3", publicKey: "ssh-ed25519 BBBB" }]),
  ]);
  assert.equal(readFileSync(path, "utf8"), "b.vm,10.0.0.3 ssh-ed25519 BBBB\n");
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

void test("install key and per-VM host keys are generated with ssh-keygen (dropbear format for busybox)", { skip: requires(needsCommands("ssh-keygen", "dropbearconvert")) }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-vm-keys-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); resetInstallKeyCache(); });
  resetInstallKeyCache();
  const [k1, k2] = await Promise.all([ensureInstallKey(systemRunner, dir), ensureInstallKey(systemRunner, dir)]);
  assert.equal(k1.publicKey, k2.publicKey);
  assert.match(k1.publicKey, /^ssh-ed25519 [A-Za-z0-9+/]+=* banger$/);
  assert.equal(statSync(state.sshKey(dir)).mode & 0o777, 0o600);
  const vmDir = join(dir, "vms", "x");
  const sys = await generateHostKey(systemRunner, vmDir, "systemd");
  assert.match(sys.private.toString(), /BEGIN OPENSSH PRIVATE KEY/);
  assert.match(sys.public, /^ssh-ed25519 [A-Za-z0-9+/]+=*$/);
  const bb = await generateHostKey(systemRunner, vmDir, "busybox");
  assert.doesNotMatch(bb.private.toString("latin1"), /BEGIN OPENSSH/);
  assert.ok(bb.private.includes(Buffer.from("ssh-ed25519")), "dropbear key blob names its type");
  assert.notEqual(bb.public, sys.public, "a fresh key each time");
  assert.equal(statSync(vmFiles.hostKeyDropbear(vmDir)).size > 0, true);
});

void test("bannerCheck accepts an SSH banner and rejects other services and closed ports", async (t) => {
  const servers = [createServer((s) => { s.end("SSH-2.0-dropbear\r\n"); }), createServer((s) => { s.end("HTTP/1.1 400\r\n"); })];
  t.after(() => { for (const s of servers) s.close(); });
  const ports = await Promise.all(servers.map((s) => new Promise<number>((r) => { s.listen(0, "127.0.0.1", () => { const a = s.address(); r(typeof a === "object" && a !== null ? a.port : 0); }); })));
  assert.equal(await bannerCheck("127.0.0.1", ports[0] ?? 0, 1000), true);
  assert.equal(await bannerCheck("127.0.0.1", ports[1] ?? 0, 1000), false);
  const closed = createServer();
  const port = await new Promise<number>((r) => { closed.listen(0, "127.0.0.1", () => { const a = closed.address(); r(typeof a === "object" && a !== null ? a.port : 0); }); });
  closed.close();
  assert.equal(await bannerCheck("127.0.0.1", port, 1000), false);
});

void test("the ssh probe runs `ssh ... true` once the banner answers, and fails fast on a key mismatch", async (t) => {
  const server = createServer((s) => { s.end("SSH-2.0-OpenSSH_9\r\n"); });
  t.after(() => { server.close(); });
  const port = await new Promise<number>((r) => { server.listen(0, "127.0.0.1", () => { const a = server.address(); r(typeof a === "object" && a !== null ? a.port : 0); }); });
  let attempts = 0;
  const ok = new FakeRunner(() => (++attempts < 2 ? new CommandError(["ssh"], 255, null, "", "Connection reset") : undefined));
  await createSshProbe({ runner: ok, keyPath: "/k/id", knownHostsPath: "/k/kh", port, pollMs: 10 }).waitReady({ ip: "127.0.0.1", name: "p" }, { timeoutMs: 5000, signal: new AbortController().signal });
  assert.equal(attempts, 2);
  assert.deepEqual(ok.calls[0]?.argv.slice(-3), ["root@127.0.0.1", "--", "true"]);
  const bad = new FakeRunner(() => new CommandError(["ssh"], 255, null, "", "Host key verification failed."));
  const t0 = Date.now();
  await assert.rejects(createSshProbe({ runner: bad, keyPath: "/k/id", knownHostsPath: "/k/kh", port, pollMs: 10 }).waitReady({ ip: "127.0.0.1", name: "p" }, { timeoutMs: 5000, signal: new AbortController().signal }), /host key other than the one banger pinned/);
  assert.ok(Date.now() - t0 < 2000);
  const never = new FakeRunner(() => new CommandError(["ssh"], 255, null, "", "Connection refused"));
  await assert.rejects(createSshProbe({ runner: never, keyPath: "/k/id", knownHostsPath: "/k/kh", port, pollMs: 10 }).waitReady({ ip: "127.0.0.1", name: "p" }, { timeoutMs: 300, signal: new AbortController().signal }), /was not ssh-ready after 0 s: ssh answered but failed: Connection refused/);
});
