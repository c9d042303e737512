import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import type { Output } from "../../../src/cli/command.js";
import { parseFlags } from "../../../src/cli/flags.js";
import { runFullCli } from "../../../src/cli/full.js";
import { defineMethod } from "../../../src/rpc/descriptor.js";
import { Dispatcher, implement } from "../../../src/rpc/dispatcher.js";
import { imageBuild } from "../../../src/rpc/daemon/image.js";
import { fakeDaemon } from "../../helpers/fake-daemon.js";

function capture(): Output & { text: string } {
  const o = { text: "", write(s: string) { o.text += s; return true; } };
  return o;
}

async function cli(args: string[], socket = "/nonexistent/bangerd.sock"): Promise<{ code: number; out: string; err: string }> {
  const stdout = capture();
  const stderr = capture();
  const code = await runFullCli(args, { stdout, stderr, env: { HOME: "/nonexistent", BANGER_SOCKET: socket } });
  return { code, out: stdout.text, err: stderr.text };
}

void test("a negative value after a flag is taken as its value and refused in banger's words, with or without =", async () => {
  for (const args of [["--memory", "-5"], ["--memory=-5"]]) {
    const r = await cli(["vm", "create", ...args]);
    assert.equal(r.code, 2);
    assert.match(r.err, /^error: --memory takes a whole number greater than 0 \(MiB\), e\.g\. --memory 2048; got "-5"\n/);
    assert.doesNotMatch(r.err, /ambiguous|XYZ|must be a whole number/);
  }
  assert.match((await cli(["vm", "create", "--vcpus", "two"])).err, /--vcpus takes a whole number greater than 0, e\.g\. --vcpus 4; got "two"/);
  assert.match((await cli(["vm", "create", "--disk", "0"])).err, /--disk takes a whole number greater than 0 \(GiB\)/);
  assert.match((await cli(["vm", "logs", "web", "--tail", "-1"])).err, /--tail takes a number of lines from 1 to 99999, e\.g\. --tail 200; got "-1"/);
});

void test("unknown flags name the nearest valid one; a missing value and a value on a boolean say what to give", async () => {
  const r = await cli(["vm", "create", "--memroy", "512"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^error: unknown flag --memroy; did you mean --memory\?\nusage: banger vm create /);
  assert.match(r.err, /see: banger vm create --help\n$/);
  assert.match((await cli(["vm", "stop", "x", "--jsno"])).err, /unknown flag --jsno; did you mean --json\?/);
  assert.match((await cli(["vm", "ls", "-z"])).err, /^error: unknown flag -z\n/);
  assert.match((await cli(["vm", "create", "--memory"])).err, /^error: --memory MIB: give the value after --memory\n/);
  assert.match((await cli(["vm", "create", "--name", "--json"])).err, /^error: --name NAME: give the value after --name\n/);
  assert.match((await cli(["vm", "ls", "--json=yes"])).err, /^error: --json takes no value/);
  assert.match((await cli(["vm", "ls", "--json", "-q"])).err, /give --json or -q, not both/);
  assert.match((await cli(["vm", "ls", "extra"])).err, /unexpected argument "extra": banger vm list takes only flags/);
});

void test("a guest command without -- is told where -- goes", async () => {
  const exec = await cli(["vm", "exec", "box", "ls", "-la"]);
  assert.equal(exec.code, 2);
  assert.match(exec.err, /^error: give the command after --, as in: banger vm exec box -- ls -la\n/);
  assert.match((await cli(["vm", "exec", "-it", "-w", "/srv", "box", "top", "-b"])).err, /as in: banger vm exec -it -w \/srv box -- top -b\n/);
  assert.match((await cli(["vm", "exec", "-t"])).err, /as in: banger vm exec -t NAME -- CMD\n/);
  assert.match((await cli(["vm", "run", "uname", "-a"])).err, /^error: unknown flag -a/);
  assert.match((await cli(["vm", "run", "uname"])).err, /^error: unexpected argument "uname"; put the command after --, as in: banger vm run -- uname\n/);
  assert.match((await cli(["vm", "ssh", "box", "uptime"])).err, /put the command after --, as in: banger vm ssh box -- uptime/);
});

void test("the parser keeps parseArgs' shape: shorts, bundles, attached values, repeats and --", () => {
  const table = {
    publish: { type: "string", short: "p", multiple: true, description: "p" },
    tty: { type: "boolean", short: "t", description: "t" },
    interactive: { type: "boolean", short: "i", description: "i" },
    name: { type: "string", description: "n" },
  } as const;
  const r = parseFlags(table, ["-it", "-p8080:80", "-p", "9090:90", "--name=a=b", "web", "--", "-p", "x"]);
  assert.deepEqual(r.values, { interactive: true, tty: true, publish: ["8080:80", "9090:90"], name: "a=b" });
  assert.deepEqual(r.positionals, ["web"]);
  assert.deepEqual(r.rest, ["-p", "x"]);
  assert.equal(parseFlags(table, ["web"]).rest, undefined);
  assert.throws(() => parseFlags(table, ["-tx"]), /unknown flag -x/);
  assert.throws(() => parseFlags(table, ["--__proto__"]), /unknown flag --__proto__/);
});

void test("--json on start, stop, restart, delete, pause and logs; -q on lists", async (t) => {
  const vm = { name: "web", state: "stopped", ip: "172.16.90.2" };
  const d = await fakeDaemon(t, (method) => {
    if (method === "vm.stop") return vm;
    if (method === "vm.delete") return { id: "1", name: "web", deleted: true };
    if (method === "vm.pause") return { vm, changed: true };
    if (method === "vm.list") return { vms: [vm, { ...vm, name: "db" }] };
    if (method === "image.list") return { images: [{ name: "default" }] };
    if (method === "snapshot.list") return { snapshots: [{ name: "web-1" }] };
    if (method === "vm.logs") return { path: "/x", data: Buffer.from("booted\n").toString("base64"), offset: 0, next_offset: 7, size: 7, state: "stopped" };
    return undefined;
  });
  const stop = await cli(["vm", "stop", "web", "--json"], d.socket);
  assert.equal(stop.code, 0, stop.err);
  assert.deepEqual(JSON.parse(stop.out), [vm]);
  assert.deepEqual(JSON.parse((await cli(["vm", "rm", "-f", "web", "--json"], d.socket)).out), [{ id: "1", name: "web", deleted: true }]);
  assert.deepEqual(JSON.parse((await cli(["vm", "pause", "web", "--json"], d.socket)).out), [{ vm, changed: true }]);
  const logs = await cli(["vm", "logs", "web", "--json"], d.socket);
  assert.deepEqual(JSON.parse(logs.out), { name: "web", state: "stopped", offset: 0, next_offset: 7, size: 7, text: "booted\n" });
  assert.equal((await cli(["vm", "ls", "-q"], d.socket)).out, "web\ndb\n");
  assert.equal((await cli(["image", "ls", "-q"], d.socket)).out, "default\n");
  assert.equal((await cli(["snapshot", "ls", "--quiet"], d.socket)).out, "web-1\n");
  // A failure is reported on stderr and exits 1; the JSON still lists what succeeded (none here).
  const start = await cli(["vm", "start", "web", "--json"], d.socket);
  assert.equal(start.code, 1);
  assert.deepEqual(JSON.parse(start.out), []);
  assert.match(start.err, /error: start web: no vm\.start here/);
});

void test("a daemon's params error names the field, the value and the rule, never the method", async () => {
  const d = new Dispatcher([implement(imageBuild, () => ({ operation_id: "op-x", image: "x" }))]);
  const res = (await d.dispatch(JSON.stringify({ version: 1, method: "image.build", params: { name: "Bad Name" } }), null)).response;
  assert.equal(res.ok, false);
  const message = res.ok ? "" : res.error.message;
  assert.equal(message, `invalid name "Bad Name": must be 1-63 lowercase letters, digits or '-'`);
  assert.doesNotMatch(message, /image\.build|params for/);
  const echo = defineMethod("t.echo", z.object({ n: z.number().int().min(1), tags: z.array(z.string()) }).strict(), z.object({}));
  const e = new Dispatcher([implement(echo, () => ({}))]);
  const r2 = (await e.dispatch(JSON.stringify({ version: 1, method: "t.echo", params: { n: -1, tags: [3], x: 1 } }), null)).response;
  assert.equal(r2.ok ? "" : r2.error.message, "invalid n -1: Number must be greater than or equal to 1; invalid tags.0 3: Expected string, received number; unknown field x");
});
