import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { state } from "../../../src/paths/paths.js";
import { ensureInstallKey, generateHostKey, publicKeyBody, renderKnownHosts, resetInstallKeyCache, writeKnownHosts } from "../../../src/daemon/vm/ssh-keys.js";
import { CommandError, FakeRunner, runText, systemRunner } from "../../../src/system/runner.js";
import { quoteForRemoteShell } from "../../../src/system/shell-quote.js";
import { sshArgv, sshCapture } from "../../../src/system/ssh.js";
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

/** Runs a key tool and returns its trimmed stdout: the tools are the judges of our encoders. */
function tool(...argv: string[]): Promise<string> {
  return runText(systemRunner, argv);
}

/** `256 SHA256:xxx comment (ED25519)` -> `SHA256:xxx`. */
function fingerprint(line: string): string {
  const fp = line.split(" ")[1] ?? "";
  assert.match(fp, /^SHA256:/, `not a fingerprint line: ${line}`);
  return fp;
}

function tempDir(t: { after(fn: () => void): void }, tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `s3-${tag}-`));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); resetInstallKeyCache(); });
  resetInstallKeyCache();
  return dir;
}

void test("the install key is made once (even concurrently), kept 0600 in a 0700 dir, and ssh-keygen reads it", { skip: requires(needsCommands("ssh-keygen")) }, async (t) => {
  const dir = tempDir(t, "install");
  const [k1, k2] = await Promise.all([ensureInstallKey(dir), ensureInstallKey(dir)]);
  assert.equal(k1.publicKey, k2.publicKey);
  assert.equal(k1.keyPath, state.sshKey(dir));
  assert.match(k1.publicKey, /^ssh-ed25519 [A-Za-z0-9+/]+=* banger$/);
  assert.equal(statSync(state.sshKey(dir)).mode & 0o777, 0o600);
  assert.equal(statSync(`${state.sshKey(dir)}.pub`).mode & 0o777, 0o600);
  assert.equal(statSync(state.sshDir(dir)).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(state.sshDir(dir)).sort(), ["id_ed25519", "id_ed25519.pub"], "no temp files left behind");
  // `ssh -i` loads the key the same way `ssh-keygen -y` does.
  assert.equal(await tool("ssh-keygen", "-y", "-f", k1.keyPath), k1.publicKey);
  assert.equal(fingerprint(await tool("ssh-keygen", "-l", "-f", k1.keyPath)), fingerprint(await tool("ssh-keygen", "-l", "-f", `${k1.keyPath}.pub`)));
  // -y only echoes the stored public key; a signature made with the seed proves the seed and public key belong together.
  const data = join(dir, "data");
  writeFileSync(data, "banger");
  await tool("ssh-keygen", "-Y", "sign", "-f", k1.keyPath, "-n", "banger-test", data);
  const verified = await runText(systemRunner, ["ssh-keygen", "-Y", "check-novalidate", "-n", "banger-test", "-s", `${data}.sig`], { stdin: "banger" });
  assert.match(verified, new RegExp(`^Good "banger-test" signature with ED25519 key ${fingerprint(await tool("ssh-keygen", "-l", "-f", k1.keyPath)).replace(/[+/]/g, "\\$&")}$`));
  // A daemon restart loads the existing key instead of replacing it (authorized_keys in guests depend on it).
  resetInstallKeyCache();
  assert.equal((await ensureInstallKey(dir)).publicKey, k1.publicKey);
  // A half-written pair (private without .pub) is replaced by a complete new one.
  rmSync(`${k1.keyPath}.pub`);
  resetInstallKeyCache();
  const k3 = await ensureInstallKey(dir);
  assert.notEqual(k3.publicKey, k1.publicKey);
  assert.equal(await tool("ssh-keygen", "-y", "-f", k3.keyPath), k3.publicKey);
});

/** A key file as the guest gets it, for the tools to read. */
function keyFile(dir: string, name: string, data: Buffer | string): string {
  const p = join(dir, name);
  writeFileSync(p, data, { mode: 0o600 });
  return p;
}

void test("a systemd host key is an OpenSSH key that ssh-keygen reads, fresh on every call, kept nowhere on the host", { skip: requires(needsCommands("ssh-keygen")) }, async (t) => {
  const dir = tempDir(t, "hostkey");
  const a = await generateHostKey("systemd");
  assert.match(a.private.toString(), /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
  assert.match(a.public, /^ssh-ed25519 [A-Za-z0-9+/]+=*$/);
  assert.equal(await tool("ssh-keygen", "-y", "-f", keyFile(dir, "a", a.private)), `${a.public} banger-host`);
  const b = await generateHostKey("systemd");
  assert.notEqual(b.public, a.public, "a fresh key each time");
  assert.notDeepEqual(b.private, a.private);
  assert.deepEqual(readdirSync(dir), ["a"], "generating writes no files");
});

void test("a busybox host key is a dropbear key: dropbearkey prints our public key and fingerprint, dropbearconvert accepts it", { skip: requires(needsCommands("ssh-keygen", "dropbearkey", "dropbearconvert")) }, async (t) => {
  const dir = tempDir(t, "dbkey");
  const k = await generateHostKey("busybox");
  const dbPath = keyFile(dir, "dropbear_ed25519_host_key", k.private);
  assert.doesNotMatch(k.private.toString("latin1"), /BEGIN OPENSSH/);
  const printed = await tool("dropbearkey", "-y", "-f", dbPath);
  const pubLine = printed.split("\n").find((l) => l.startsWith("ssh-ed25519 "));
  assert.ok(pubLine !== undefined, printed);
  assert.equal(publicKeyBody(pubLine), k.public);
  const dbFp = /Fingerprint: (SHA256:\S+)/.exec(printed)?.[1];
  assert.equal(dbFp, fingerprint(await tool("ssh-keygen", "-l", "-f", keyFile(dir, "key.pub", `${k.public} banger-host\n`))));
  const converted = join(dir, "converted");
  await tool("dropbearconvert", "dropbear", "openssh", dbPath, converted);
  assert.equal(publicKeyBody(await tool("ssh-keygen", "-y", "-f", converted)), k.public);
});

void test("known_hosts lines for generated keys keep the NAME.vm,IP format and ssh-keygen parses them", { skip: requires(needsCommands("ssh-keygen")) }, async (t) => {
  const dir = tempDir(t, "kh");
  const k = await generateHostKey("busybox");
  const path = join(dir, "known_hosts");
  await writeKnownHosts(path, [{ name: "web", ip: "172.16.90.2", publicKey: k.public }]);
  assert.equal(readFileSync(path, "utf8"), `web.vm,172.16.90.2 ${k.public}\n`);
  const found = await tool("ssh-keygen", "-F", "172.16.90.2", "-f", path);
  assert.match(found, new RegExp(`^web\\.vm,172\\.16\\.90\\.2 ${k.public.replace(/[+/]/g, "\\$&")}$`, "m"));
});
