import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { sshString } from "../../../src/model/ssh-key-format.js";
import { checkHostKey, mpint, NotListeningError, packet, WireReader } from "../../../src/daemon/vm/ssh-handshake.js";
import { generateHostKey, writeKnownHosts } from "../../../src/daemon/vm/ssh-keys.js";
import { createSshProbe } from "../../../src/daemon/vm/ssh-probe.js";
import { freePort, listenLocal } from "../../helpers/ports.js";
import { needsCommands, requires } from "../../helpers/requirements.js";

function blobOf(publicLine: string): Buffer {
  return Buffer.from(publicLine.split(" ")[1] ?? "", "base64");
}

/** A real dropbear on loopback with a host key we generated; no auth is ever attempted, so no root is needed. */
async function startDropbear(dir: string, port: number): Promise<{ proc: ChildProcess; publicKey: string }> {
  const key = await generateHostKey("busybox");
  writeFileSync(join(dir, "host_key"), key.private, { mode: 0o600 });
  const proc = spawn("dropbear", ["-F", "-E", "-R", "-p", `127.0.0.1:${port}`, "-r", join(dir, "host_key"), "-P", join(dir, "dropbear.pid")], { stdio: "ignore" });
  return { proc, publicKey: key.public };
}

async function untilListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await checkHostKey("127.0.0.1", port, Buffer.alloc(0), { timeoutMs: 2000 });
      return;
    } catch (e) {
      if (!(e instanceof NotListeningError)) return;
    }
    await sleep(50);
  }
}

const DROPBEAR = requires(needsCommands("dropbear"));

void test("packets pad to a multiple of 8 with at least 4 bytes; mpints drop leading zeros and keep the sign bit clear", () => {
  for (let n = 0; n < 20; n++) {
    const p = packet(Buffer.alloc(n, 1));
    assert.equal(p.length % 8, 0);
    const padding = p[4] ?? 0;
    assert.ok(padding >= 4, `payload ${n}: padding ${padding}`);
    assert.equal(p.readUInt32BE(0), p.length - 4);
  }
  assert.deepEqual(mpint(Buffer.from([0, 0, 0x12])), Buffer.from([0, 0, 0, 1, 0x12]));
  assert.deepEqual(mpint(Buffer.from([0x80, 1])), Buffer.from([0, 0, 0, 3, 0, 0x80, 1]));
  assert.deepEqual(mpint(Buffer.from([0, 0])), Buffer.from([0, 0, 0, 0]));
  assert.throws(() => new WireReader(Buffer.from([0, 0, 0, 9, 1])).string(), /truncated/);
});

void test("a real dropbear proves its host key; a different pin is reported as a mismatch with the presented key", { skip: DROPBEAR }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-hs-"));
  const port = await freePort();
  const server = await startDropbear(dir, port);
  t.after(() => { server.proc.kill("SIGKILL"); rmSync(dir, { recursive: true, force: true }); });
  await untilListening(port);
  assert.deepEqual(await checkHostKey("127.0.0.1", port, blobOf(server.publicKey), { timeoutMs: 5000 }), { ok: true });
  const other = await generateHostKey("systemd");
  const r = await checkHostKey("127.0.0.1", port, blobOf(other.public), { timeoutMs: 5000 });
  assert.deepEqual(r, { ok: false, reason: "mismatch", presented: server.publicKey });
});

/**
 * A server that claims to hold `claimed` (our pinned key) but cannot sign with it: it answers the
 * key exchange with that key blob and a signature made by some other key. Accepting this would let
 * anyone on the bridge impersonate a guest.
 */
function impostor(claimed: Buffer): Server {
  return createServer((sock: Socket) => {
    sock.on("error", () => undefined);
    sock.write("SSH-2.0-impostor\r\n");
    const kexinit = Buffer.concat([Buffer.from([20]), randomBytes(16), ...["curve25519-sha256", "ssh-ed25519", "aes128-ctr", "aes128-ctr", "hmac-sha2-256", "hmac-sha2-256", "none", "none", "", ""].map((s) => sshString(s)), Buffer.from([0, 0, 0, 0, 0])]);
    sock.write(packet(kexinit));
    let got = Buffer.alloc(0);
    let answered = false;
    sock.on("data", (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      // Answer once the client's ECDH_INIT (message 30) has arrived; its content does not matter to an impostor.
      let at = got.indexOf("\r\n") + 2;
      let sawInit = false;
      while (at > 1 && at + 5 <= got.length) {
        const len = got.readUInt32BE(at);
        if (at + 4 + len > got.length) break;
        if (got[at + 5] === 30) sawInit = true;
        at += 4 + len;
      }
      if (!sawInit || answered) return;
      answered = true;
      const qs = Buffer.from(generateKeyPairSync("x25519").publicKey.export({ format: "jwk" }).x ?? "", "base64url");
      const sig = Buffer.concat([sshString("ssh-ed25519"), sshString(randomBytes(64))]);
      sock.write(packet(Buffer.concat([Buffer.from([31]), sshString(claimed), sshString(qs), sshString(sig)])));
    });
  });
}

void test("a server that presents the pinned key without holding it is refused", async (t) => {
  const pinned = blobOf((await generateHostKey("systemd")).public);
  const server = impostor(pinned);
  t.after(() => { server.close(); });
  const port = await listenLocal(server);
  await assert.rejects(checkHostKey("127.0.0.1", port, pinned, { timeoutMs: 3000 }), /signature does not verify/);
});

void test("no server, a silent server, a non-SSH server and an SSH-1 server each fail clearly and quickly", async (t) => {
  const pin = Buffer.alloc(51);
  const closed = await freePort();
  await assert.rejects(checkHostKey("127.0.0.1", closed, pin, { timeoutMs: 1000 }), (e: unknown) => e instanceof NotListeningError);
  const sockets: Socket[] = [];
  const silent = createServer((s) => { sockets.push(s); });
  const http = createServer((s) => { s.end("HTTP/1.1 400 Bad Request\r\n\r\n"); });
  const old = createServer((s) => { s.end("SSH-1.5-ancient\r\n"); });
  t.after(() => { for (const s of sockets) s.destroy(); silent.close(); http.close(); old.close(); });
  const t0 = performance.now();
  await assert.rejects(checkHostKey("127.0.0.1", await listenLocal(silent), pin, { timeoutMs: 300, connectTimeoutMs: 100 }), (e: unknown) => e instanceof Error && !(e instanceof NotListeningError) && /no SSH key exchange .* within 300 ms/.test(e.message));
  assert.ok(performance.now() - t0 < 2000, "the connect timeout does not cut short a server that accepted");
  await assert.rejects(checkHostKey("127.0.0.1", await listenLocal(http), pin, { timeoutMs: 1000 }), /closed the connection/);
  await assert.rejects(checkHostKey("127.0.0.1", await listenLocal(old), pin, { timeoutMs: 1000 }), /speaks SSH-1\.5-ancient, not SSH 2/);
});

void test("the probe waits for a server that starts late, and fails fast on a mismatched pin", { skip: DROPBEAR }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-hs-"));
  const port = await freePort();
  const knownHosts = join(dir, "known_hosts");
  const key = await generateHostKey("busybox");
  writeFileSync(join(dir, "host_key"), key.private, { mode: 0o600 });
  await writeKnownHosts(knownHosts, [{ name: "late", ip: "127.0.0.1", publicKey: key.public }]);
  const procs: ChildProcess[] = [];
  t.after(() => { for (const p of procs) p.kill("SIGKILL"); rmSync(dir, { recursive: true, force: true }); });
  const probe = createSshProbe({ knownHostsPath: knownHosts, port, pollMs: 20 });
  const ready = probe.waitReady({ ip: "127.0.0.1", name: "late" }, { timeoutMs: 10_000, signal: new AbortController().signal });
  await sleep(300);
  procs.push(spawn("dropbear", ["-F", "-E", "-R", "-p", `127.0.0.1:${port}`, "-r", join(dir, "host_key"), "-P", join(dir, "dropbear.pid")], { stdio: "ignore" }));
  await ready;
  const other = await generateHostKey("systemd");
  await writeKnownHosts(knownHosts, [{ name: "late", ip: "127.0.0.1", publicKey: other.public }]);
  const t0 = performance.now();
  await assert.rejects(probe.waitReady({ ip: "127.0.0.1", name: "late" }, { timeoutMs: 10_000, signal: new AbortController().signal }), /presented a host key other than the one banger pinned/);
  assert.ok(performance.now() - t0 < 3000, "a mismatch is not retried until the timeout");
  await assert.rejects(createSshProbe({ knownHostsPath: knownHosts, port: await freePort(), pollMs: 20 }).waitReady({ ip: "127.0.0.1", name: "late" }, { timeoutMs: 300, signal: new AbortController().signal }), /was not ssh-ready after 0 s: the guest's SSH port never answered/);
  await assert.rejects(createSshProbe({ knownHostsPath: knownHosts, port, pollMs: 20 }).waitReady({ ip: "10.0.0.9", name: "unpinned" }, { timeoutMs: 300, signal: new AbortController().signal }), /no ssh-ed25519 host key is pinned for 10\.0\.0\.9/);
});
