import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { state } from "../../../src/paths/paths.js";
import { ensureInstallKey, generateHostKey, resetInstallKeyCache, writeKnownHosts } from "../../../src/daemon/vm/ssh-keys.js";
import { createSshProbe } from "../../../src/daemon/vm/ssh-probe.js";
import { systemRunner } from "../../../src/system/runner.js";
import { quoteForRemoteShell } from "../../../src/system/shell-quote.js";
import { sshArgv, sshCapture } from "../../../src/system/ssh.js";
import { freePort } from "../../helpers/ports.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";


/**
 * The busybox guest's real SSH path, on loopback: a dropbear server with a
 * host key made by generateHostKey (dropbear format) and the install key in
 * root's authorized_keys (a private bind mount over /root, so the host's is
 * untouched). The probe must succeed with the pinned key and refuse another.
 */
void test("ssh readiness and exec work against dropbear with the pinned host key, and a different key is refused", { skip: requires(needsRoot(), needsCommands("dropbear", "dropbearconvert", "ssh", "ssh-keygen", "unshare", "mount")) }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-vm-ssh-"));
  const stateDir = join(dir, "state");
  const vmDir = join(stateDir, "vms", "v");
  const home = join(dir, "home");
  const procs: ReturnType<typeof spawn>[] = [];
  t.after(() => {
    for (const p of procs) p.kill("SIGTERM");
    resetInstallKeyCache();
    rmSync(dir, { recursive: true, force: true });
  });
  resetInstallKeyCache();
  const install = await ensureInstallKey(stateDir);
  const hostKey = await generateHostKey("busybox");
  mkdirSync(vmDir, { recursive: true });
  const hostKeyFile = join(vmDir, "dropbear_ed25519_host_key");
  writeFileSync(hostKeyFile, hostKey.private, { mode: 0o600 });
  mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
  chmodSync(home, 0o700);
  writeFileSync(join(home, ".ssh", "authorized_keys"), `${install.publicKey}\n`, { mode: 0o600 });
  const knownHosts = state.knownHosts(stateDir);
  await writeKnownHosts(knownHosts, [{ name: "pinned", ip: "127.0.0.1", publicKey: hostKey.public }]);

  const port = await freePort();
  const helper = fileURLToPath(new URL("./bind-exec.js", import.meta.url));
  const server = spawn("unshare", ["--mount", "--propagation", "private", "--", process.execPath, helper, home, "/root", "dropbear", "-F", "-E", "-s", "-p", `127.0.0.1:${port}`, "-r", hostKeyFile, "-P", join(dir, "dropbear.pid")], { stdio: ["ignore", "ignore", "pipe"] });
  procs.push(server);
  let serverLog = "";
  server.stderr.on("data", (c: Buffer) => { serverLog += c.toString(); });

  const probe = createSshProbe({ knownHostsPath: knownHosts, port, pollMs: 50 });
  const t0 = Date.now();
  await probe.waitReady({ ip: "127.0.0.1", name: "pinned" }, { timeoutMs: 15_000, signal: new AbortController().signal }).catch((e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\ndropbear: ${serverLog}`);
  });
  const readyMs = Date.now() - t0;
  assert.ok(readyMs < 10_000, `ready in ${readyMs} ms`);

  const argv = sshArgv({ keyPath: install.keyPath, knownHostsPath: knownHosts, host: "127.0.0.1", port }, { command: [quoteForRemoteShell(["sh", "-c", "printf '%s|' \"$0\" \"$1\"; exit 3", "a b", "it's"])], tty: false });
  const r = await sshCapture(systemRunner, argv, { timeoutMs: 15_000 });
  assert.equal(r.exitCode, 3, r.stderr.toString());
  assert.equal(r.stdout.toString(), "a b|it's|");

  // Another VM's key pinned for this address: the probe must refuse, quickly, not wait for the timeout.
  const other = await generateHostKey("systemd");
  await writeKnownHosts(knownHosts, [{ name: "pinned", ip: "127.0.0.1", publicKey: other.public }]);
  const t1 = Date.now();
  await assert.rejects(probe.waitReady({ ip: "127.0.0.1", name: "pinned" }, { timeoutMs: 15_000, signal: new AbortController().signal }), /host key other than the one banger pinned/);
  assert.ok(Date.now() - t1 < 5_000);
});
