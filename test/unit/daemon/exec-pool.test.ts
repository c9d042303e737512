import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import ssh2 from "ssh2";
import { ExecPool, type ExecTarget } from "../../../src/daemon/exec/pool.js";
import { ed25519PublicLine, opensshPrivateKey, type Ed25519Key } from "../../../src/model/ssh-key-format.js";
import { silentLogger } from "../../../src/system/log.js";

function newKey(): Ed25519Key {
  const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
  return { seed: Buffer.from(jwk.d ?? "", "base64url"), publicKey: Buffer.from(jwk.x ?? "", "base64url") };
}

/**
 * An in-process SSH server on loopback that runs nothing: `echo WORD` answers WORD after a short
 * delay, exit 0. `at once`: the answer and an exit 3 go out with the exec's acceptance, as from a
 * command that ends before the client has done anything with its channel.
 */
async function fakeGuest(hostKey: Ed25519Key, answer: "delayed" | "at once" = "delayed"): Promise<{ port: number; connections: () => number; peak: () => number; close: () => Promise<void> }> {
  let connections = 0;
  let inFlight = 0;
  let peak = 0;
  const server = new ssh2.Server({ hostKeys: [opensshPrivateKey(hostKey, "guest", 1)] }, (client) => {
    connections++;
    client.on("authentication", (ctx) => { if (ctx.method === "publickey") ctx.accept(); else ctx.reject(["publickey"]); });
    client.on("session", (accept) => {
      accept().on("exec", (acceptExec, _reject, info) => {
        const ch = acceptExec();
        if (answer === "at once") {
          ch.write("1\n");
          ch.exit(3);
          ch.end();
          return;
        }
        inFlight++;
        peak = Math.max(peak, inFlight);
        setTimeout(() => {
          ch.write(`${info.command.replace(/^echo /, "")}\n`);
          inFlight--;
          ch.exit(0);
          ch.end();
        }, 30);
      });
    });
    client.on("error", () => undefined);
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    peak: () => peak,
    close: () => new Promise((res) => { server.close(() => { res(); }); }),
  };
}

async function run(pool: ExecPool, target: ExecTarget, word: string): Promise<string> {
  const { channel } = await pool.open(target, { command: `echo ${word}` }, "op-test00000001");
  let out = "";
  channel.on("data", (c: Buffer) => { out += c.toString("utf8"); });
  channel.stderr.resume();
  await new Promise((res) => channel.on("close", res));
  return out;
}

void test("the pool verifies the pinned host key, caps channels per connection, opens more connections, then queues", async (t) => {
  const hostKey = newKey();
  const guest = await fakeGuest(hostKey);
  const clientKey = opensshPrivateKey(newKey(), "client", 2);
  const pool = new ExecPool({ logger: silentLogger, privateKey: () => Promise.resolve(Buffer.from(clientKey)), port: guest.port, channelsPerConnection: 3, maxConnections: 2 });
  t.after(async () => { pool.closeAll("op-test00000001"); await guest.close(); });
  const target: ExecTarget = { id: "vm1", name: "one", ip: "127.0.0.1", hostKeyPub: ed25519PublicLine(hostKey.publicKey), generation: "boot-1" };
  const outs = await Promise.all(Array.from({ length: 20 }, (_, i) => run(pool, target, `w${i}`)));
  assert.deepEqual(outs, Array.from({ length: 20 }, (_, i) => `w${i}\n`));
  assert.equal(guest.connections(), 2, "a second connection, no more");
  assert.ok(guest.peak() <= 6, `at most 2 × 3 channels at once (saw ${guest.peak()})`);
  assert.equal(pool.connectionCount("vm1"), 2);

  // A new boot of the VM: the old connections are dropped, not reused.
  assert.equal(await run(pool, { ...target, generation: "boot-2" }, "again"), "again\n");
  assert.equal(guest.connections(), 3);
  assert.equal(pool.connectionCount("vm1"), 1);
  pool.forget("vm1", "op-test00000001");
  assert.equal(pool.connectionCount("vm1"), 0);
  pool.forget("vm1", "op-test00000001");
});

void test("a guest presenting another host key than the pinned one is refused before any channel opens", async (t) => {
  const guest = await fakeGuest(newKey());
  const clientKey = opensshPrivateKey(newKey(), "client", 2);
  const pool = new ExecPool({ logger: silentLogger, privateKey: () => Promise.resolve(Buffer.from(clientKey)), port: guest.port });
  t.after(async () => { pool.closeAll("op-test00000001"); await guest.close(); });
  const target: ExecTarget = { id: "vm2", name: "two", ip: "127.0.0.1", hostKeyPub: ed25519PublicLine(newKey().publicKey), generation: "boot-1" };
  await assert.rejects(run(pool, target, "x"), /two \(127\.0\.0\.1\) presented a host key other than the one banger pinned/);
  assert.equal(pool.connectionCount("vm2"), 0, "the refused connection is not kept");
  await assert.rejects(run(pool, { ...target, hostKeyPub: "ssh-rsa AAAA" }, "x"), /no pinned ssh-ed25519 host key/);
});

void test("an exit status that arrives before anyone listens is kept (the daemon bridges a channel only after answering its client)", async (t) => {
  const hostKey = newKey();
  const guest = await fakeGuest(hostKey, "at once");
  const clientKey = opensshPrivateKey(newKey(), "client", 2);
  const pool = new ExecPool({ logger: silentLogger, privateKey: () => Promise.resolve(Buffer.from(clientKey)), port: guest.port });
  t.after(async () => { pool.closeAll("op-test00000001"); await guest.close(); });
  const target: ExecTarget = { id: "vm3", name: "three", ip: "127.0.0.1", hostKeyPub: ed25519PublicLine(hostKey.publicKey), generation: "boot-1" };
  const { channel, exitStatus } = await pool.open(target, { command: "head -n 1 log" }, "op-test00000001");
  // What happens between open() and bridgeChannel(): the RPC answer is written, the connection upgraded.
  await new Promise((res) => setTimeout(res, 100));
  let late = false;
  channel.once("exit", () => { late = true; });
  let out = "";
  channel.on("data", (c: Buffer) => { out += c.toString("utf8"); });
  channel.stderr.resume();
  await new Promise((res) => channel.on("close", res));
  assert.equal(out, "1\n", "the output waited in the channel");
  assert.equal(late, false, "the exit event was over before a listener attached now could hear it (the race is real)");
  assert.deepEqual(exitStatus(), { code: 3, signal: null });
});
