import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { test } from "node:test";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { startStack } from "../../helpers/stack.js";
import { ensureTestUser } from "../../helpers/users.js";

function opIdsIn(log: string): Set<string> {
  const ids = new Set<string>();
  for (const line of log.split("\n").filter((l) => l.trim() !== "")) {
    const rec = JSON.parse(line) as { op_id?: string };
    if (rec.op_id !== undefined) ids.add(rec.op_id);
  }
  return ids;
}

test("helper as root, daemon as the owner: status works, op ids correlate, sockets are private", { skip: requires(needsRoot(), needsCommands("setpriv")) }, async (t) => {
  const user = await ensureTestUser();
  const stack = await startStack({ user });
  t.after(() => stack.stop());

  const status = await stack.cli(["system", "status", "--json"]);
  assert.equal(status.code, 0, status.stderr);
  const doc = JSON.parse(status.stdout) as { daemon_reachable: boolean; owner_uid: number; helper: { reachable: boolean; owner_uid: number }; daemon: { uid: number } };
  assert.equal(doc.daemon_reachable, true);
  assert.equal(doc.helper.reachable, true);
  assert.equal(doc.owner_uid, user.uid);
  assert.equal(doc.daemon.uid, user.uid, "the daemon does not run as root");
  assert.equal(doc.helper.owner_uid, user.uid);

  // Every JSON log line of both processes is parseable; the daemon request and the helper call it caused share one op id.
  const daemonIds = opIdsIn(stack.daemonLog());
  const helperIds = opIdsIn(stack.helperLog());
  const shared = [...daemonIds].filter((id) => helperIds.has(id));
  assert.ok(shared.length >= 1, `an op id spans daemon and helper logs: daemon=${[...daemonIds].join(",")} helper=${[...helperIds].join(",")}`);

  const daemonSock = statSync(stack.env["BANGER_SOCKET"] ?? "");
  assert.equal(daemonSock.mode & 0o777, 0o600);
  assert.equal(daemonSock.uid, user.uid);
  const helperSock = statSync(stack.env["BANGER_HELPER_SOCKET"] ?? "");
  assert.equal(helperSock.mode & 0o777, 0o600);
  assert.equal(helperSock.uid, user.uid, "the owner may connect to the helper socket, nobody else");
  assert.equal(statSync(stack.runtimeDir).mode & 0o777, 0o700);

  // Another non-root uid is refused on both real sockets: by the file mode, and by SO_PEERCRED
  // when the mode is loosened (as if the socket fd leaked).
  for (const sock of [stack.env["BANGER_SOCKET"] ?? "", stack.env["BANGER_HELPER_SOCKET"] ?? ""]) {
    chmodSync(dirname(sock), 0o755);
    assert.match(await requestAs(65534, 65534, sock), /^ERR EACCES/, `${sock}: file mode keeps uid 65534 out`);
    chmodSync(sock, 0o666);
    const refused = JSON.parse(await requestAs(65534, 65534, sock)) as { ok: boolean; error: { code: string; op_id: string } };
    assert.equal(refused.ok, false);
    assert.equal(refused.error.code, "unauthorized", `${sock}: peer uid check`);
    assert.match(refused.error.op_id, /^op-/);
    chmodSync(sock, 0o600);
  }
});

/** One daemon.ping/priv.ping request from another uid; prints the reply, or ERR <code> when it cannot connect. */
async function requestAs(uid: number, gid: number, socketPath: string): Promise<string> {
  const client = `const s=require("net").connect(process.argv[1]);let o="",err="";s.on("data",d=>o+=d);s.on("error",e=>{err=e.code;});s.on("close",()=>console.log(o.trim()||"ERR "+err));s.on("connect",()=>s.end('{"version":1,"method":"daemon.ping"}\\n'));`;
  const r = await promisify(execFile)(process.execPath, ["-e", client, socketPath], { uid, gid, encoding: "utf8", timeout: 10_000 });
  return r.stdout.trim();
}

test("CLI failures print the op id, which the daemon logged", { skip: requires(needsRoot(), needsCommands("setpriv")) }, async (t) => {
  const user = await ensureTestUser();
  const stack = await startStack({ user });
  t.after(() => stack.stop());

  const r = await stack.cli(["vm", "show", "no-such-vm"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const m = /^error: .+ \((op-[0-9a-f]+)\)$/m.exec(r.stderr);
  assert.ok(m !== null, `error line carries an op id: ${r.stderr}`);
  assert.ok(stack.daemonLog().includes(m[1] ?? "?"), "the daemon logged the same op id");

  await stack.stopDaemon();
  const down = await stack.cli(["system", "status"]);
  assert.equal(down.code, 1);
  assert.match(down.stdout + down.stderr, /not reachable/);
});
