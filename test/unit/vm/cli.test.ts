import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { test } from "node:test";
import type { CliContext, Command } from "../../../src/cli/command.js";
import { vmCreateCommand } from "../../../src/cli/commands/vm/create.js";
import { vmListCommand } from "../../../src/cli/commands/vm/list.js";
import { makeVmLogsCommand } from "../../../src/cli/commands/vm/logs.js";
import { makeVmRunCommand } from "../../../src/cli/commands/vm/run.js";
import { vmShowCommand } from "../../../src/cli/commands/vm/show.js";
import { makeVmExecCommand } from "../../../src/cli/commands/vm/exec.js";
import { makeVmSshCommand } from "../../../src/cli/commands/vm/ssh.js";
import { vmRestartCommand, vmStartCommand } from "../../../src/cli/commands/vm/start.js";
import { vmStatsCommand } from "../../../src/cli/commands/vm/stats.js";
import { vmDeleteCommand, vmStopCommand } from "../../../src/cli/commands/vm/stop.js";
import { ProgressRenderer } from "../../../src/cli/progress.js";
import { operationMethods } from "../../../src/daemon/methods/operation.js";
import { vmMethods } from "../../../src/daemon/methods/vm.js";
import { resolveLayout } from "../../../src/paths/paths.js";
import { Dispatcher, implement } from "../../../src/rpc/dispatcher.js";
import { imageBuild, imageGet } from "../../../src/rpc/daemon/image.js";
import { NO_EXEC_DEFAULTS } from "../../../src/model/exec-defaults.js";
import { ImageRepository } from "../../../src/state/images.js";
import { OperationTracker } from "../../../src/daemon/operations/tracker.js";
import { silentLogger } from "../../../src/system/log.js";
import { PROTOCOL_VERSION } from "../../../src/rpc/envelope.js";
import { RpcError } from "../../../src/rpc/errors.js";
import type { PeerCred } from "../../../src/system/peercred.js";
import { CommandError, FakeRunner } from "../../../src/system/runner.js";
import { addImage, makeHarness, type Harness } from "./fakes.js";

interface Cli {
  readonly ctx: CliContext;
  out: string;
  err: string;
  readonly opIds: string[];
  run(cmd: Command, args: string[]): Promise<number>;
}

/** A CliContext whose daemon calls go through the real dispatcher and schemas, in memory. */
function cli(h: Harness, opts: { tty?: boolean; builds?: string[]; lostRace?: boolean } = {}): Cli {
  // A stand-in image.build: records the request, completes an operation, registers the image.
  const tracker = new OperationTracker(h.ops, silentLogger);
  const fakeImageBuild = implement(imageBuild, (p, callCtx) => {
    const name = p.name ?? "default";
    opts.builds?.push(`${name}@${callCtx.opId}`);
    if (opts.lostRace === true) {
      // Another client's build finished just before this request arrived.
      addImage(h, name, "systemd");
      throw new RpcError("conflict", `image ${name} already exists; use --force to rebuild it`);
    }
    const op = tracker.begin(callCtx.opId, "image.build", name, ["build"]);
    addImage(h, name, "systemd");
    op.succeed({ name });
    return { operation_id: callCtx.opId, image: name };
  });
  // image.get as the daemon answers it, from the images table (vm exec/ssh/run read the image's exec defaults).
  const fakeImageGet = implement(imageGet, (p) => {
    const rec = new ImageRepository(h.db).get(p.name);
    if (rec === undefined) throw new RpcError("not_found", `no image ${p.name}`);
    const d = rec.execDefaults ?? NO_EXEC_DEFAULTS;
    return {
      name: rec.name, source: rec.source, flavor: rec.flavor, kernel_path: rec.kernelPath, vmlinux_path: rec.vmlinuxPath, initrd_path: rec.initrdPath,
      rootfs_path: rec.rootfsPath, kernel_version: rec.kernelVersion, size_bytes: rec.sizeBytes, created_at: rec.createdAt, used_by: [],
      exec_defaults: { user: d.user, env: d.env.map(([k, v]): [string, string] => [k, v]), workdir: d.workdir },
    };
  });
  const dispatcher = new Dispatcher<PeerCred>([...vmMethods({ service: h.service, reconciled: Promise.resolve(), stateDir: h.dir, runner: new FakeRunner() }), ...operationMethods(h.ops, new AbortController().signal), fakeImageBuild, fakeImageGet]);
  const state = {
    out: "",
    err: "",
    opIds: [] as string[],
  };
  const ctx: CliContext = {
    layout: resolveLayout({ BANGER_STATE_DIR: h.dir, BANGER_RUNTIME_DIR: h.dir }),
    stdout: { write: (s: string) => { state.out += s; } },
    stderr: { write: (s: string) => { state.err += s; }, isTTY: opts.tty === true },
    env: {},
    opId: `op-cli${Math.random().toString(36).slice(2, 12)}`,
    dial: { label: "no daemon in this test", open: () => { throw new Error("no daemon in this test"); } },
    call: async (method, params, _timeoutMs, opId) => {
      const id = opId ?? ctx.opId;
      state.opIds.push(id);
      const outcome = await dispatcher.dispatch(JSON.stringify({ version: PROTOCOL_VERSION, method, params, op_id: id }), { pid: 1, uid: 0, gid: 0 });
      if (!outcome.response.ok) throw new RpcError(outcome.response.error.code, outcome.response.error.message, id);
      // As the real client: the dispatcher already checked the result against its schema.
      return outcome.response.result as never;
    },
  };
  return {
    ctx,
    get out() { return state.out; },
    set out(v: string) { state.out = v; },
    get err() { return state.err; },
    set err(v: string) { state.err = v; },
    opIds: state.opIds,
    run: (cmd, args) => cmd.run(args, ctx),
  };
}

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
  await assert.rejects(c.run(vmCreateCommand, ["--vcpus", "two"]), /--vcpus must be a whole number/);
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

void test("vm exec passes argv through quoted for the guest shell and returns the command's exit code", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await h.service.create({ name: "ex" }, "op-bbbbbbbbbbbb");
  await h.service.idle();
  const seen: (readonly string[])[] = [];
  const held: (boolean | undefined)[] = [];
  const exec = makeVmExecCommand((argv, o) => { seen.push(argv); held.push(o?.holdStdin); return Promise.resolve(3); });
  const c = cli(h);
  assert.equal(await c.run(exec, ["-t", "ex", "--", "sh", "-c", "echo 'hi there'; exit 3"]), 3);
  const argv = seen[0] ?? [];
  assert.deepEqual(argv.slice(-4), ["-tt", "root@172.16.90.2", "--", `exec sh -c 'echo '\\''hi there'\\''; exit 3'`]);
  assert.deepEqual(held, [true], "-t without -i: no stdin");
  // No TTY, no stdin: the guest-side wrapper that ends the command with the connection, ssh's stdin held.
  assert.equal(await c.run(exec, ["ex", "--", "true"]), 3);
  assert.equal(seen[1]?.at(-4), "-T");
  assert.match(seen[1]?.at(-1) ?? "", /^sh -c .*kill -TERM .* sh sh -c 'exec true'$/s);
  assert.equal(await c.run(exec, ["-i", "-e", "A=1 2", "-w", "/tmp", "ex", "--", "env"]), 3);
  assert.equal(seen[2]?.at(-1), "cd /tmp && export A='1 2' && exec env");
  assert.deepEqual(held, [true, true, false]);
  await assert.rejects(c.run(exec, ["-w", "tmp", "ex", "--", "pwd"]), /working directory must be an absolute path/);
  await assert.rejects(c.run(exec, ["-e", "1A=x", "ex", "--", "pwd"]), /the name must be letters/);
  await assert.rejects(c.run(exec, ["-u", "a b", "ex", "--", "pwd"]), /give a user name or a numeric uid/);
  seen.length = 0;
  assert.ok(argv.includes("StrictHostKeyChecking=yes"));
  assert.ok(argv.includes(`UserKnownHostsFile=${h.dir}/ssh/known_hosts`));
  await assert.rejects(c.run(exec, ["ex"]), /give the command after --/);
  await assert.rejects(c.run(exec, ["ex", "--evil", "--", "id"]), /Unknown option '--evil'/);
  const ssh = makeVmSshCommand((a) => { seen.push(a); return Promise.resolve(0); });
  assert.equal(await c.run(ssh, ["ex"]), 0);
  assert.equal(seen[0]?.at(-1), "root@172.16.90.2");
  await h.service.stop("ex", false, "op-cccccccccccc");
  await assert.rejects(c.run(exec, ["ex", "--", "true"]), /ex is stopped; start it with: banger vm start ex/);
});

void test("vm exec, vm ssh and vm run use the image's user, env and workdir unless a flag says otherwise", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  h.db.prepare("UPDATE images SET exec_user = 'app', exec_env = ?, exec_workdir = '/srv/app'").run(JSON.stringify([["PATH", "/opt/bin:/bin"], ["MODE", "img"]]));
  await h.service.create({ name: "oc" }, "op-bbbbbbbbbbbc");
  await h.service.idle();
  const seen: (readonly string[])[] = [];
  const c = cli(h);
  const exec = makeVmExecCommand((argv) => { seen.push(argv); return Promise.resolve(0); });
  assert.equal(await c.run(exec, ["-i", "oc", "--", "id", "-un"]), 0);
  assert.match(seen.at(-1)?.at(-1) ?? "", /^id -u app .*setpriv .*'cd \/srv\/app && export PATH=\/opt\/bin:\/bin && export MODE=img && exec id -un'/s);
  // Flags win: -u, -w replace the image's; -e MODE replaces only MODE.
  assert.equal(await c.run(exec, ["-i", "-u", "root", "-w", "/tmp", "-e", "MODE=flag", "oc", "--", "pwd"]), 0);
  const flagged = seen.at(-1)?.at(-1) ?? "";
  assert.match(flagged, /^id -u root /);
  assert.ok(flagged.includes("'cd /tmp && export PATH=/opt/bin:/bin && export MODE=flag && exec pwd'"), flagged);
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
  assert.equal(await c.run(untilStopped, ["loggy", "-f", "--tail", "4"]), 0);
  assert.equal(c.out, "bye\n");
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

void test("vm.exec (daemon side) runs ssh with the pinned argv and returns exit code and output", async (t) => {
  const h = makeHarness();
  t.after(() => { h.close(); });
  await h.service.create({ name: "rx" }, "op-ffffffffffff");
  await h.service.idle();
  const runner = new FakeRunner((argv) => (argv.at(-1) === "false" ? new CommandError([...argv], 1, null, "", "nope\n") : { stdout: Buffer.from("ok\n") }));
  const d = new Dispatcher<PeerCred>(vmMethods({ service: h.service, reconciled: Promise.resolve(), stateDir: h.dir, runner }));
  const call = async (command: string[]): Promise<unknown> => {
    const out = await d.dispatch(JSON.stringify({ version: PROTOCOL_VERSION, method: "vm.exec", params: { name: "rx", command }, op_id: "op-123456789" }), { pid: 1, uid: 0, gid: 0 });
    assert.ok(out.response.ok, JSON.stringify(out.response));
    return out.response.result;
  };
  assert.deepEqual(await call(["echo", "o k"]), { exit_code: 0, stdout: "ok\n", stderr: "" });
  assert.deepEqual(await call(["false"]), { exit_code: 1, stdout: "", stderr: "nope\n" });
  assert.deepEqual(runner.calls[0]?.argv.slice(-4), ["-T", "root@172.16.90.2", "--", "echo 'o k'"]);
});
