import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { Readable, Writable } from "node:stream";
import { test } from "node:test";
import { vmCreateCommand } from "../../../src/cli/commands/vm/create.js";
import { vmListCommand } from "../../../src/cli/commands/vm/list.js";
import { makeVmLogsCommand } from "../../../src/cli/commands/vm/logs.js";
import { makeVmRunCommand } from "../../../src/cli/commands/vm/run.js";
import { vmShowCommand } from "../../../src/cli/commands/vm/show.js";
import { makeVmExecCommand, type ExecOpener } from "../../../src/cli/commands/vm/exec.js";
import type { AttachIo } from "../../../src/cli/commands/vm/exec-attach.js";
import type { ExecParams, ExecSession, ExitStatus } from "../../../src/rpc/exec-client.js";
import { makeVmSshCommand } from "../../../src/cli/commands/vm/ssh.js";
import { vmRestartCommand, vmStartCommand } from "../../../src/cli/commands/vm/start.js";
import { vmStatsCommand } from "../../../src/cli/commands/vm/stats.js";
import { vmDeleteCommand, vmStopCommand } from "../../../src/cli/commands/vm/stop.js";
import { ProgressRenderer } from "../../../src/cli/progress.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { makeHarness } from "./fakes.js";
import { cli } from "./fake-cli.js";

void test("vm create follows the operation: plain step lines on stderr, a summary on stdout", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const c = cli(h);
  assert.equal(await c.run(vmCreateCommand, ["--name", "alpha", "--vcpus", "1", "--memory", "256"]), 0);
  assert.match(c.out, /^alpha is running at 172\.16\.90\.2 \(alpha\.vm\); connect with: banger vm ssh alpha\n$/);
  for (const step of ["lease", "clone-root", "work-disk", "inject-files", "network", "launch-vmm", "nat", "ports", "wait-ssh", "publish-dns"]) {
    assert.match(c.err, new RegExp(`^  ${step} +ok \\([0-9.]+ m?s\\)$`, "m"));
  }
  assert.ok(!c.err.includes("\x1b"), "no terminal escapes when stderr is not a TTY");
  assert.equal(h.ops.get(c.ctx.opId)?.kind, "vm.create", "the operation id is the CLI's op id");
});

void test("vm create --json prints exactly one JSON document; --no-wait prints the operation id", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const c = cli(h);
  assert.equal(await c.run(vmCreateCommand, ["--name", "beta", "--json"]), 0);
  const doc = JSON.parse(c.out) as { name: string; state: string; ip: string };
  assert.equal(doc.name, "beta");
  assert.equal(doc.state, "running");
  assert.equal(c.err, "");
  const c2 = cli(h);
  assert.equal(await c2.run(vmCreateCommand, ["--no-wait"]), 0);
  assert.equal(c2.out, `${c2.ctx.opId}\n`);
  await h.service.idle();
});

void test("vm create reports a failed step and exits 1; bad flags are usage errors", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  h.host.failOn.add("vmm.launch");
  const c = cli(h);
  assert.equal(await c.run(vmCreateCommand, ["--name", "gamma"]), 1);
  assert.match(c.err, /launch-vmm +FAILED .*injected failure in vmm\.launch/);
  assert.match(c.err, /clone-root +undone/);
  assert.match(c.err, /error: create gamma failed: step launch-vmm failed/);
  await assert.rejects(c.run(vmCreateCommand, ["--vcpus", "two"]), /--vcpus takes a whole number greater than 0, e.g. --vcpus 4; got "two"/);
  await assert.rejects(c.run(vmCreateCommand, ["--name", "Not_A_Label"]), (e: unknown) => e instanceof RpcError && e.code === "bad_params" && /DNS label/.test(e.message));
});

void test("a TTY gets a spinner line that is cleared before each finished step", () => {
  let out = "";
  const r = new ProgressRenderer({ write: (s: string) => { out += s; }, isTTY: true }, "create");
  const now = new Date().toISOString();
  r.render({ id: "op-x", kind: "vm.create", target: "a", state: "running", created_at: now, updated_at: now, revision: 1, steps: [{ name: "lease", state: "running", started_at: now, elapsed_ms: 0 }, { name: "boot", state: "pending", started_at: null, elapsed_ms: null }] });
  assert.ok(out.startsWith("\r\x1b[2K") && out.includes(" create: lease "), JSON.stringify(out));
  out = "";
  r.render({ id: "op-x", kind: "vm.create", target: "a", state: "succeeded", created_at: now, updated_at: now, revision: 2, steps: [{ name: "lease", state: "succeeded", started_at: now, elapsed_ms: 12 }, { name: "boot", state: "succeeded", started_at: now, elapsed_ms: 1500 }] });
  assert.equal(out, "\r\x1b[2K  lease  ok (12 ms)\n  boot   ok (1.5 s)\n");
});

void test("vm list renders a table with the contract columns and --json a list", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const c = cli(h);
  assert.equal(await c.run(vmListCommand, []), 0);
  assert.match(c.out, /^no VMs/);
  await h.service.create({ name: "one" }, "op-aaaaaaaaaaaa");
  await h.service.idle();
  c.out = "";
  assert.equal(await c.run(vmListCommand, []), 0);
  const [header, row] = c.out.trimEnd().split("\n");
  assert.match(header ?? "", /^NAME +STATE +IP +VCPUS +MEMORY +IMAGE +VMM +UPTIME$/);
  assert.match(row ?? "", /^one +running +172\.16\.90\.2 +1 +256 MiB +tiny +qemu +[0-9]+s$/);
  c.out = "";
  assert.equal(await c.run(vmListCommand, ["--json"]), 0);
  const list = JSON.parse(c.out) as { name: string }[];
  assert.deepEqual(list.map((v) => v.name), ["one"]);
  c.out = "";
  assert.equal(await c.run(vmShowCommand, ["one"]), 0);
  assert.match(c.out, /^name: +one \(one\.vm\)$/m);
  assert.match(c.out, /^ip: +172\.16\.90\.2$/m);
});

void test("vm exec sends argv, env, cwd, user and tty to the exec channel and returns the command's exit code", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await h.service.create({ name: "ex" }, "op-bbbbbbbbbbbb");
  await h.service.idle();
  const seen: ExecParams[] = [];
  const exits: ExitStatus[] = [{ code: 3, signal: null }, { code: null, signal: "INT" }, { code: 0, signal: null }];
  const opener: ExecOpener = (_dial, params, options) => {
    seen.push(params);
    assert.match(options.opId ?? "", /^op-cli/);
    return Promise.resolve(fakeSession(exits[seen.length - 1] ?? { code: 0, signal: null }, "out\n"));
  };
  const io = fakeIo();
  const exec = makeVmExecCommand(opener, io);
  const c = cli(h);
  assert.equal(await c.run(exec, ["-t", "ex", "--", "sh", "-c", "echo 'hi there'; exit 3"]), 3);
  assert.deepEqual(seen[0], { name: "ex", argv: ["sh", "-c", "echo 'hi there'; exit 3"], stdin: false, tty: { cols: 80, rows: 24 } });
  assert.equal(await c.run(exec, ["ex", "--", "sleep", "9"]), 130, "killed by INT: 128 + 2");
  assert.deepEqual(seen[1], { name: "ex", argv: ["sleep", "9"], stdin: false });
  assert.equal(await c.run(exec, ["-i", "-e", "A=1 2", "-w", "/tmp", "-u", "nobody", "ex", "--", "env"]), 0);
  assert.deepEqual(seen[2], { name: "ex", argv: ["env"], stdin: true, env: { A: "1 2" }, cwd: "/tmp", user: "nobody" });
  assert.equal(io.written(), "out\nout\nout\n");
  await assert.rejects(c.run(exec, ["-w", "tmp", "ex", "--", "pwd"]), /working directory must be an absolute path/);
  await assert.rejects(c.run(exec, ["-e", "1A=x", "ex", "--", "pwd"]), /the name must be letters/);
  await assert.rejects(c.run(exec, ["-u", "a b", "ex", "--", "pwd"]), /give a user name or a numeric uid/);
  await assert.rejects(c.run(exec, ["ex"]), /give the command after --/);
  await assert.rejects(c.run(exec, ["ex", "--evil", "--", "id"]), /unknown flag --evil/);
  assert.equal(seen.length, 3, "bad flags never reach the daemon");
  const seenSsh: (readonly string[])[] = [];
  const ssh = makeVmSshCommand((a) => { seenSsh.push(a); return Promise.resolve(0); });
  assert.equal(await c.run(ssh, ["ex"]), 0);
  assert.equal(seenSsh[0]?.at(-1), "root@172.16.90.2");
});

/** A session that prints `out` and ends with `status`. */
function fakeSession(status: ExitStatus, out: string): ExecSession {
  return {
    opId: "op-fake000000",
    stdout: Readable.from([Buffer.from(out)]),
    stderr: Readable.from([]),
    stdin: new Writable({ write: (_c, _e, cb) => { cb(); } }),
    kill: () => undefined,
    resize: () => undefined,
    exit: Promise.resolve(status),
  };
}

function fakeIo(): AttachIo & { written(): string } {
  let text = "";
  const sink = (): NodeJS.WriteStream => Object.assign(new Writable({ write: (c: Buffer, _e, cb) => { text += c.toString("utf8"); cb(); } }), { isTTY: false, columns: 0, rows: 0 }) as unknown as NodeJS.WriteStream;
  return {
    stdin: Object.assign(Readable.from([]), { isTTY: false }) as unknown as NodeJS.ReadStream,
    stdout: sink(),
    stderr: sink(),
    onSignal: () => () => undefined,
    written: () => text,
  };
}
void test("vm ssh and vm run use the image's user, env and workdir (vm exec gets them from the daemon's exec channel)", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  h.db.prepare("UPDATE images SET exec_user = 'app', exec_env = ?, exec_workdir = '/srv/app'").run(JSON.stringify([["PATH", "/opt/bin:/bin"], ["MODE", "img"]]));
  await h.service.create({ name: "oc" }, "op-bbbbbbbbbbbc");
  await h.service.idle();
  const seen: (readonly string[])[] = [];
  const c = cli(h);
  const ssh = makeVmSshCommand((a) => { seen.push(a); return Promise.resolve(0); });
  assert.equal(await c.run(ssh, ["oc"]), 0);
  assert.ok(seen.at(-1)?.includes("-tt"), "a login shell gets a TTY");
  assert.match(seen.at(-1)?.at(-1) ?? "", /'cd \/srv\/app && .* && exec sh -l'/s);
  assert.equal(await c.run(ssh, ["oc", "--", "echo", "$HOME", "|", "cat"]), 0);
  assert.ok((seen.at(-1)?.at(-1) ?? "").includes("exec sh -c '\\''echo $HOME | cat'\\''"), seen.at(-1)?.at(-1));
  const run = makeVmRunCommand((argv) => { seen.push(argv); return Promise.resolve(0); });
  assert.equal(await c.run(run, ["--rm", "--name", "once", "--", "id", "-un"]), 0);
  assert.match(seen.at(-1)?.at(-1) ?? "", /^id -u app .*exec id -un'/s);
});

void test("vm run --rm creates, runs the command, deletes, and exits with the command's code", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const seen: (readonly string[])[] = [];
  const run = makeVmRunCommand((argv) => { seen.push(argv); return Promise.resolve(7); });
  const c = cli(h);
  assert.equal(await c.run(run, ["--rm", "--name", "once", "--", "uname", "-r"]), 7);
  assert.equal(seen[0]?.at(-1), "uname -r");
  assert.equal(h.vms.list().length, 0, "--rm deleted the VM");
  assert.deepEqual([...h.host.live], []);
  await assert.rejects(c.run(run, ["stray", "--", "x"]), /put the command after --/);
});

void test("start/stop/restart/rm act on several names, keep going past failures, and use one op id each", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  for (const [i, n] of ["a", "b"].entries()) await h.service.create({ name: n }, `op-dddddddddd0${i}`);
  await h.service.idle();
  const c = cli(h);
  assert.equal(await c.run(vmStopCommand, ["a", "missing", "b"]), 1);
  assert.match(c.out, /^a stopped\nb stopped\n$/);
  assert.match(c.err, /error: missing: no VM named "missing"/);
  assert.equal(new Set(c.opIds).size, 3);
  // Each CLI invocation mints its own op id, as runCli does.
  assert.equal(await cli(h).run(vmStartCommand, ["a", "b"]), 0);
  assert.equal(h.vms.getByName("a")?.state, "running");
  assert.equal(h.vms.getByName("b")?.state, "running");
  assert.equal(await cli(h).run(vmRestartCommand, ["a", "--force"]), 0);
  assert.equal(h.vms.getByName("a")?.state, "running");
  const del = cli(h);
  assert.equal(await del.run(vmDeleteCommand, ["a"]), 1, "running VM needs --force");
  assert.match(del.err, /stop it first/);
  assert.equal(await cli(h).run(vmDeleteCommand, ["a", "b", "--force"]), 0);
  assert.equal(h.vms.list().length, 0);
});

void test("vm logs prints the console log and -f follows appended output", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  const ref = await h.service.create({ name: "loggy" }, "op-eeeeeeeeeeee");
  await h.service.idle();
  const log = h.vms.getById(ref.vm.id)?.handles.console_log ?? "";
  mkdirSync(dirname(log), { recursive: true });
  writeFileSync(log, "line one\n");
  const c = cli(h);
  assert.equal(await c.run(makeVmLogsCommand(), ["loggy"]), 0);
  assert.equal(c.out, "line one\n");
  const ac = new AbortController();
  let sleeps = 0;
  const follow = makeVmLogsCommand({
    stopSignal: ac.signal,
    sleep: () => {
      sleeps++;
      if (sleeps === 1) writeFileSync(log, "line one\nline two\n");
      else ac.abort();
      return Promise.resolve();
    },
  });
  c.out = "";
  assert.equal(await c.run(follow, ["loggy", "-f"]), 0);
  assert.equal(c.out, "line one\nline two\n");
  // A VM that stops ends -f once its log is drained, without ^C.
  await h.service.stop("loggy", false, "op-eeeeeeeeeee1");
  await h.service.idle();
  writeFileSync(log, "line one\nline two\nbye\n");
  let waits = 0;
  const untilStopped = makeVmLogsCommand({ stopSignal: undefined, sleep: () => (++waits > 3 ? Promise.reject(new Error("-f is still following a stopped VM")) : Promise.resolve()) });
  c.out = "";
  assert.equal(await c.run(untilStopped, ["loggy", "-f", "--tail", "2"]), 0);
  assert.equal(c.out, "line two\nbye\n", "--tail counts lines");
  assert.equal(waits, 0, "a stopped VM's log is printed and -f returns at once");
  c.out = "";
  assert.equal(await c.run(vmStatsCommand, ["loggy", "--json"]), 0);
  const stats = JSON.parse(c.out) as { name: string; disk: { work_size_bytes: number } };
  assert.equal(stats.name, "loggy");
});

void test("vm run on a fresh host builds the default image once, then creates; other missing images are an error", async (t) => {
  const h = makeHarness({ defaultImage: "default" });
  t.after(() => { h.close(); });
  const builds: string[] = [];
  const c = cli(h, { builds });
  const run = makeVmRunCommand(() => Promise.resolve(0));
  assert.equal(await c.run(run, ["--rm", "--", "uname", "-a"]), 0);
  assert.equal(builds.length, 1);
  assert.ok(builds[0]?.startsWith("default@") === true && builds[0] !== `default@${c.ctx.opId}`, "the build has its own op id");
  assert.match(c.err, /image default is not built yet; building it once/);
  assert.equal(await cli(h, { builds }).run(run, ["--rm", "--", "true"]), 0);
  assert.equal(builds.length, 1, "built only once");
  await assert.rejects(cli(h, { builds }).run(vmCreateCommand, ["--image", "nope"]), (e: unknown) => e instanceof RpcError && e.code === "not_found");
  assert.equal(builds.length, 1, "an explicitly named missing image is not built behind the user's back");
});

void test("vm run that loses the default-image build race to another client just creates the VM", async (t) => {
  const h = makeHarness({ defaultImage: "default" });
  t.after(() => { h.close(); });
  const builds: string[] = [];
  const c = cli(h, { builds, lostRace: true });
  assert.equal(await c.run(makeVmRunCommand(() => Promise.resolve(0)), ["--rm", "--", "true"]), 0);
  assert.equal(builds.length, 1);
  assert.doesNotMatch(c.err, /building it once/);
});

