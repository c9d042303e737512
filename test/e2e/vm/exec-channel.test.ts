import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { Readable } from "node:stream";
import { test } from "node:test";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { openExec, listFiles, readFile, removeFile, writeFile, type ExecParams, type ExecSession } from "../../../src/rpc/exec-client.js";
import { unixDial } from "../../../src/rpc/unix-client.js";
import { editHandles } from "../../helpers/edit-handles.js";
import { createNetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { startStack } from "../../helpers/stack.js";
import { cliOk, tinyStackConfig } from "../../helpers/tiny-stack.js";
import { ensureTestUser } from "../../helpers/users.js";

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft"));

async function collect(r: Readable): Promise<string> {
  let s = "";
  for await (const c of r) s += (c as Buffer).toString("utf8");
  return s;
}

async function run(session: ExecSession): Promise<{ out: string; err: string; code: number | null; signal: string | null }> {
  const [out, err, st] = await Promise.all([collect(session.stdout), collect(session.stderr), session.exit]);
  return { out, err, code: st.code, signal: st.signal };
}

test("exec channel: 100 concurrent execs on one VM, streaming output, exit codes, stdin, a signal, file ops, and a wrong host key refused", { skip: SKIP, timeout: 900_000 }, async (t) => {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const ns = await createNetNs("bgt-chan");
  cleanup.push("netns", () => ns.destroy());
  const stack = await startStack({ user, netns: ns, config: tinyStackConfig("qemu") });
  cleanup.push("stack", async () => {
    await stack.cli(["vm", "rm", "--force", "chx"]).catch(() => undefined);
    await stack.stop();
  });
  await cliOk(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
  await cliOk(stack, ["vm", "create", "--image", "tiny", "--name", "chx"], 600_000);
  const dial = unixDial(stack.env["BANGER_SOCKET"] ?? "");
  const exec = (argv: string[], extra: Partial<ExecParams> = {}): Promise<ExecSession> => openExec(dial, { name: "chx", argv, stdin: false, ...extra });

  // 100 at once: past the per-connection channel cap the daemon opens more connections, then queues.
  const t0 = Date.now();
  const many = await Promise.all(Array.from({ length: 100 }, async (_, i) => run(await exec(["sh", "-c", 'echo "n$1"; echo "e$1" >&2', "sh", String(i)]))));
  t.diagnostic(`100 concurrent execs in ${Date.now() - t0} ms`);
  many.forEach((r, i) => { assert.deepEqual(r, { out: `n${i}\n`, err: `e${i}\n`, code: 0, signal: null }, `exec ${i}`); });

  // Output streams while the producer runs: the first line arrives long before the command ends.
  const slow = await exec(["sh", "-c", "echo first; sleep 3; echo second"]);
  const firstAt = await new Promise<number>((res) => slow.stdout.once("data", () => { res(Date.now()); }));
  const rest = await run(slow);
  const endAt = Date.now();
  assert.equal(rest.out, "second\n");
  assert.ok(endAt - firstAt >= 2500, `the first line came ${endAt - firstAt} ms before the end, not with it`);

  // Exit codes, env/cwd, stdin.
  assert.equal((await run(await exec(["sh", "-c", "exit 7"]))).code, 7);
  assert.equal((await run(await exec(["sh", "-c", 'echo "$A|$(pwd)"'], { env: { A: "it's $HOME" }, cwd: "/tmp" }))).out, "it's $HOME|/tmp\n");
  const cat = await exec(["wc", "-c"], { stdin: true });
  cat.stdin.end("hello");
  assert.equal((await run(cat)).out.trim(), "5");
  assert.equal((await run(await exec(["wc", "-c"]))).out.trim(), "0", "stdin: false reads EOF");
  assert.match((await run(await exec(["tty"], { tty: { cols: 100, rows: 30 } }))).out, /^\/dev\/pts\//);
  await assert.rejects(openExec(dial, { name: "nope", argv: ["true"], stdin: false }), /no VM named "nope"/);

  // A signal: dropbear passes it to the command (it exec's, so it is the session's process).
  const sleeper = await exec(["sleep", "313"]);
  await new Promise((res) => setTimeout(res, 500));
  const k0 = Date.now();
  sleeper.kill("TERM");
  const killed = await run(sleeper);
  t.diagnostic(`TERM ended the remote sleep in ${Date.now() - k0} ms: ${JSON.stringify(killed)}`);
  assert.equal(killed.signal, "TERM");
  // A client that goes away ends its command too.
  const abandoned = new AbortController();
  const orphan = await exec(["sleep", "314"]);
  void orphan.exit.catch(() => undefined);
  const aborted = await openExec(dial, { name: "chx", argv: ["sleep", "315"], stdin: false }, { signal: abandoned.signal });
  abandoned.abort();
  assert.equal((await aborted.exit).signal, "TERM");
  orphan.stdout.destroy();
  orphan.kill("KILL");
  const ps = (await run(await exec(["ps"]))).out;
  assert.doesNotMatch(ps, /sleep 31[345]/);

  // Files over exec channels.
  await writeFile(dial, { name: "chx", path: "/tmp/f.txt", mode: 0o640 }, Readable.from([Buffer.from("one\n"), Buffer.from("two\n")]));
  assert.equal(await collect(readFile(dial, { name: "chx", path: "/tmp/f.txt" })), "one\ntwo\n");
  const entries = await listFiles(dial, { name: "chx", path: "/tmp" });
  const f = entries.find((e) => e.name === "f.txt");
  assert.deepEqual(f && { type: f.type, size: f.size, mode: f.mode }, { type: "file", size: 8, mode: 0o640 });
  await removeFile(dial, { name: "chx", path: "/tmp/f.txt" });
  await assert.rejects(collect(readFile(dial, { name: "chx", path: "/tmp/f.txt" })), (e: Error & { code?: string }) => e.code === "not_found");
  await assert.rejects(removeFile(dial, { name: "chx", path: "/tmp/f.txt" }), (e: Error & { code?: string }) => e.code === "not_found");

  // A guest whose host key is not the pinned one is refused: pin another key and reconnect.
  await stack.stopDaemon();
  const other = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }).x ?? "";
  const blob = Buffer.concat([lenPrefixed(Buffer.from("ssh-ed25519")), lenPrefixed(Buffer.from(other, "base64url"))]);
  editHandles(stack.stateDir, user, { chx: { host_key_pub: `ssh-ed25519 ${blob.toString("base64")}` } });
  await stack.startDaemon();
  await assert.rejects(exec(["true"]), /presented a host key other than the one banger pinned/);
  await cliOk(stack, ["vm", "rm", "--force", "chx"]);
});

function lenPrefixed(b: Buffer): Buffer {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(b.length);
  return Buffer.concat([n, b]);
}
