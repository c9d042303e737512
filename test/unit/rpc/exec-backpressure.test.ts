import assert from "node:assert/strict";
import { Duplex, Readable } from "node:stream";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ClientChannel } from "ssh2";
import { bridgeChannel } from "../../../src/daemon/exec/bridge.js";
import { recordExit } from "../../../src/daemon/exec/pool.js";
import { openExec } from "../../../src/rpc/exec-client.js";
import { FrameConn } from "../../../src/rpc/frame-conn.js";
import { silentLogger } from "../../../src/system/log.js";
import { duplexPair } from "../../helpers/duplex-pair.js";

const CHUNK = 64 * 1024;

/** A stand-in SSH session channel: stdout produced only when pulled, stdin acknowledged only when `hold` is off. */
class FakeChannel extends Duplex {
  readonly stderr = new Readable({ read: () => undefined });
  produced = 0;
  received = 0;
  hold = false;
  readonly signals: string[] = [];
  private held: (() => void)[] = [];

  constructor(private readonly limit: number) {
    super({ highWaterMark: CHUNK });
  }

  override _read(): void {
    if (this.produced >= this.limit) return;
    this.produced += CHUNK;
    this.push(Buffer.alloc(CHUNK, 0x61));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.received += chunk.length;
    if (this.hold) this.held.push(cb);
    else cb();
  }

  release(): void {
    this.hold = false;
    for (const cb of this.held.splice(0)) cb();
  }

  signal(name: string): void {
    this.signals.push(name);
  }

  setWindow(): void {
    // Only tty sessions resize; nothing to do in this fake.
  }

  channelClosed = false;

  close(): void {
    this.channelClosed = true;
    this.finish(143);
  }

  finish(code: number): void {
    this.emit("exit", code);
    this.emit("close");
  }
}

/** A daemon stand-in on one end of an in-memory pair: answers the request line ok, then bridges `channel`. */
function serve(channel: FakeChannel): { open(): Duplex; readonly label: string; daemonSide(): Duplex | undefined; clientSide(): Duplex | undefined } {
  let server: Duplex | undefined;
  let near: Duplex | undefined;
  return {
    label: "in-memory daemon",
    daemonSide: () => server,
    clientSide: () => near,
    open() {
      const [client, daemon] = duplexPair();
      server = daemon;
      near = client;
      let line = "";
      const onData = (c: Buffer): void => {
        line += c.toString("latin1");
        const nl = line.indexOf("\n");
        if (nl === -1) return;
        daemon.off("data", onData);
        daemon.pause();
        const head = Buffer.from(line.slice(nl + 1), "latin1");
        daemon.write(JSON.stringify({ ok: true, result: { opened: true } }) + "\n");
        bridgeChannel({ channel: channel as unknown as ClientChannel, exitStatus: recordExit(channel) }, new FrameConn(daemon, head), { opId: "op-test00000001", vm: "fake", logger: silentLogger, kind: "exec" });
      };
      daemon.on("data", onData);
      return client;
    },
  };
}

void test("a client that does not read holds back the remote command's output instead of the daemon buffering it", async () => {
  const total = 64 * 1024 * 1024;
  const channel = new FakeChannel(total);
  const dial = serve(channel);
  const s = await openExec(dial, { name: "fake", argv: ["yes"], stdin: false });
  s.stdout.pause();
  await sleep(300);
  // Channel, socket pair and client stream each hold at most a few high-water marks.
  assert.ok(channel.produced < 2 * 1024 * 1024, `produced ${channel.produced} bytes while nobody read`);
  const daemonBuffered = (dial.daemonSide()?.writableLength ?? 0) + channel.readableLength;
  assert.ok(daemonBuffered < 1024 * 1024, `daemon side holds ${daemonBuffered} bytes`);
  let got = 0;
  s.stdout.on("data", (c: Buffer) => {
    got += c.length;
    if (got === total) channel.finish(0);
  });
  s.stdout.resume();
  assert.deepEqual(await s.exit, { code: 0, signal: null });
  assert.equal(got, total, "every byte arrives once the client reads");
});

void test("stdin into a command that does not read fills the client's buffer (write() says so), not the daemon's", async () => {
  const channel = new FakeChannel(0);
  channel.hold = true;
  const dial = serve(channel);
  const s = await openExec(dial, { name: "fake", argv: ["cat"], stdin: true });
  const total = 16 * 1024 * 1024;
  let refused = false;
  for (let sent = 0; sent < total; sent += CHUNK) if (!s.stdin.write(Buffer.alloc(CHUNK, 0x62))) refused = true;
  await sleep(300);
  assert.ok(refused, "write() returned false");
  assert.ok(channel.received < 2 * 1024 * 1024, `the channel was handed ${channel.received} bytes it did not acknowledge`);
  const daemonSide = dial.daemonSide();
  assert.ok((daemonSide?.readableLength ?? 0) < 1024 * 1024, "the daemon stopped reading the socket");
  channel.release();
  await new Promise<void>((res) => { s.stdin.end(res); });
  await sleep(50);
  assert.equal(channel.received, total);
  s.kill("INT");
  await sleep(20);
  assert.deepEqual(channel.signals, ["INT"]);
  channel.finish(0);
  assert.deepEqual(await s.exit, { code: 0, signal: null });
});

void test("a client that goes away ends the remote command (TERM, then the channel is closed)", async () => {
  const channel = new FakeChannel(0);
  const dial = serve(channel);
  const s = await openExec(dial, { name: "fake", argv: ["sleep", "9"], stdin: false });
  dial.clientSide()?.destroy();
  await assert.rejects(s.exit, /closed the connection before the command's exit status/);
  await sleep(50);
  assert.deepEqual(channel.signals, ["TERM"]);
  assert.ok(channel.channelClosed);
});
