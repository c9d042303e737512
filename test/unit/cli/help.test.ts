import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import type { Output } from "../../../src/cli/command.js";
import { COMMANDS } from "../../../src/cli/commands/index.js";
import { runFullCli } from "../../../src/cli/full.js";
import { configSchema } from "../../../src/config/schema.js";

const REPO = resolve(import.meta.dirname, "..", "..", "..", "..");

function capture(columns?: number): Output & { text: string } {
  const o = { text: "", columns, write(s: string) { o.text += s; return true; } };
  return o;
}

async function cli(args: string[], columns?: number): Promise<{ code: number; out: string; err: string }> {
  const stdout = capture(columns);
  const stderr = capture();
  const code = await runFullCli(args, { stdout, stderr, env: { HOME: "/nonexistent", BANGER_SOCKET: "/nonexistent/bangerd.sock" } });
  return { code, out: stdout.text, err: stderr.text };
}

const flat = (s: string): string => s.replace(/\s+/g, " ");

function configDefault(key: string): unknown {
  const [section = "", name = ""] = key.split(".");
  return (configSchema.parse({}) as unknown as Record<string, Record<string, unknown>>)[section]?.[name];
}

void test("every command's --help lists each of its flags with a description, and config defaults equal the schema's", async () => {
  const visible = COMMANDS.filter((c) => c.hidden !== true);
  assert.ok(visible.length > 30, "the walk reaches the commands (sanity)");
  for (const c of visible) {
    for (const ask of [[...c.path, "--help"], [...c.path, "-h"], ["help", ...c.path]]) {
      const r = await cli(ask);
      assert.equal(r.code, 0, `${ask.join(" ")}: ${r.err}`);
      assert.match(r.out, new RegExp(`^usage: ${c.usage.split(" ")[0] === "sudo" ? "sudo " : ""}banger `), ask.join(" "));
      assert.ok(c.flags !== undefined, `${c.path.join(" ")} declares its flags`);
      const text = flat(r.out);
      assert.ok(text.includes(flat(c.summary)), `${c.path.join(" ")}: summary`);
      for (const [name, spec] of Object.entries(c.flags)) {
        assert.ok(spec.description.length > 3, `${c.path.join(" ")} --${name} has a description`);
        assert.ok(text.includes(`--${name}`), `${c.path.join(" ")} --help shows --${name}`);
        assert.ok(text.includes(flat(spec.description)), `${c.path.join(" ")} --help describes --${name}`);
        if (spec.short !== undefined) assert.ok(text.includes(`-${spec.short}, --${name}`), `${c.path.join(" ")} -${spec.short}`);
        if (spec.defaultFrom !== undefined) {
          assert.ok(text.includes(`(default: ${String(configDefault(spec.defaultFrom))}, from config ${spec.defaultFrom})`), `${c.path.join(" ")} --${name}: the schema's default ${String(configDefault(spec.defaultFrom))}\n${r.out}`);
        }
      }
      for (const line of r.out.split("\n")) assert.ok(line.length <= 80, `${ask.join(" ")}: wrapped to 80 when not a terminal: ${JSON.stringify(line)}`);
    }
  }
});

void test("vm create --help shows the vcpus, memory and disk defaults of the config schema", async () => {
  const { out } = await cli(["vm", "create", "--help"]);
  const d = configSchema.parse({}).defaults;
  assert.match(flat(out), new RegExp(`--vcpus N virtual CPUs .*\\(default: ${d.vcpus}, from config defaults.vcpus\\)`));
  assert.match(flat(out), new RegExp(`--memory MIB memory in MiB .*\\(default: ${d.memory_mib}, from config defaults.memory_mib\\)`));
  assert.match(flat(out), new RegExp(`--disk GIB .*\\(default: ${d.disk_gib}, from config defaults.disk_gib\\)`));
  assert.match(out, /examples:\n {2}banger vm create/);
});

void test("every command parses its flags from its table: no node parseArgs in the commands, unknown flags are refused in banger's words", async () => {
  const dir = join(REPO, "src", "cli", "commands");
  const files = readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
  for (const f of files) assert.doesNotMatch(readFileSync(join(dir, f), "utf8"), /\bparseArgs\(/, `${f} parses with src/cli/flags.ts`);
  for (const c of COMMANDS.filter((x) => x.hidden !== true && x.path[0] !== "completion")) {
    const r = await cli([...c.path, "--zz-no-such-flag", "--", "true"]);
    assert.equal(r.code, 2, `${c.path.join(" ")}: ${r.err}`);
    assert.match(r.err, /^error: unknown flag --zz-no-such-flag\n/, c.path.join(" "));
    assert.match(r.err, new RegExp(`see: banger ${c.path.join(" ")} --help\\n$`));
  }
});

void test("groups have help: banger vm --help, banger image --help, banger system, banger help vm port", async () => {
  for (const [args, group] of [[["vm", "--help"], "vm"], [["image", "--help"], "image"], [["system"], "system"], [["snapshot", "-h"], "snapshot"], [["help", "vm", "port"], "vm port"], [["vm"], "vm"]] as const) {
    const r = await cli([...args]);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.err}`);
    assert.match(r.out, new RegExp(`^usage: banger ${group} <command>`));
    for (const c of COMMANDS.filter((x) => x.hidden !== true && x.path.slice(0, -1).join(" ") === group)) {
      assert.match(r.out, new RegExp(`\\n {2}${c.path.at(-1) ?? ""} +`), `${args.join(" ")} lists ${c.path.join(" ")}`);
    }
  }
  const top = await cli(["--help"]);
  assert.equal(top.code, 0);
  for (const g of ["vm ...", "image ...", "snapshot ...", "system ...", "completion", "doctor"]) assert.ok(top.out.includes(`  ${g}`), g);
  assert.match(top.out, /exit codes: 0 ok, 1 failed, 2 usage/);
  assert.ok(!top.out.includes("__complete"), "the completion helper is hidden");
});

void test("--version and -V print the version; unknown commands suggest the nearest and exit 2", async () => {
  for (const v of ["--version", "-V", "version"]) {
    const r = await cli([v]);
    assert.equal(r.code, 0);
    assert.match(r.out, /^banger \d+\.\d+\.\d+/);
  }
  const r = await cli(["vm", "crate"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^banger: unknown command "vm crate"; did you mean "vm create"\?/);
  assert.match((await cli(["imgae"])).err, /did you mean "image"\?/);
  assert.equal((await cli(["help", "vm", "nope"])).code, 2);
});

void test("help wraps to the terminal's width; -h after -- is the guest command's", async () => {
  const wide = await cli(["vm", "run", "--help"], 120);
  assert.ok(wide.out.split("\n").some((l) => l.length > 80), "uses a wide terminal");
  assert.ok(wide.out.split("\n").every((l) => l.length <= 120));
  const narrow = await cli(["vm", "run", "--help"], 50);
  // Only a word longer than the room (the -p placeholder) may stick out.
  assert.ok(narrow.out.split("\n").every((l) => l.length <= 50 || l.split(" ").some((w) => w.length > 30)), narrow.out);
  // Not help: exec runs (and fails to reach the missing daemon), it does not print help.
  const r = await cli(["vm", "exec", "web", "--", "ls", "-h"]);
  assert.equal(r.code, 1);
  assert.equal(r.out, "");
});
