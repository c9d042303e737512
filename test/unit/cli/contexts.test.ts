import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runFullCli } from "../../../src/cli/full.js";
import { splitGlobalFlags } from "../../../src/cli/main.js";
import { chooseContext, findContext, readContexts, writeContexts } from "../../../src/config/contexts.js";
import { resolveContext } from "../../../src/config/context-dial.js";
import { formatSshUrl, parseSshUrl } from "../../../src/model/ssh-url.js";
import { resolveLayout } from "../../../src/paths/paths.js";

void test("ssh URLs: user, host, port and IPv6 parse; anything that could become an ssh option or shell syntax is refused", () => {
  assert.deepEqual(parseSshUrl("ssh://me@box"), { user: "me", host: "box" });
  assert.deepEqual(parseSshUrl("ssh://me@box.example.com:2222"), { user: "me", host: "box.example.com", port: 2222 });
  assert.deepEqual(parseSshUrl("ssh://build-host"), { host: "build-host" });
  assert.deepEqual(parseSshUrl("ssh://root@[fd00::2]:22"), { user: "root", host: "fd00::2", port: 22 });
  assert.equal(formatSshUrl({ user: "root", host: "fd00::2", port: 22 }), "ssh://root@[fd00::2]:22");
  assert.equal(formatSshUrl({ host: "box" }), "ssh://box");
  for (const bad of [
    "ssh://-oProxyCommand=x", "ssh://me@-oProxyCommand=x", "ssh://-me@box", "ssh://me@box:0", "ssh://me@box:65536", "ssh://me@box:x",
    "ssh://me@box/path", "ssh://me@bo x", "ssh://me@box;id", "ssh://me@box%h", "ssh://me@.box", "ssh://me@[box]", "ssh://a@b@c",
    "me@box", "http://box", "ssh://", "ssh://me@", `ssh://${"a".repeat(300)}`, "ssh://me@box\n", "ssh://$(id)@box", "ssh://me@box:22:22",
  ]) {
    assert.equal(typeof parseSshUrl(bad), "string", `${JSON.stringify(bad)} must be refused`);
  }
  const problem = (text: string): string => { const r = parseSshUrl(text); return typeof r === "string" ? r : "accepted"; };
  assert.match(problem("ssh://me@box:70000"), /not a TCP port/);
  assert.match(problem("ssh://-oProxyCommand=x"), /not a host name/);
});

void test("the contexts file: 0600 in a 0700 dir, round trips, and a damaged one is an error naming the file and the fix", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banger-ctx-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const file = join(dir, "conf", "banger", "contexts.json");
  assert.deepEqual(readContexts(file), { contexts: [] }, "no file: no contexts");
  writeContexts(file, { current: "prod", contexts: [{ name: "prod", url: { user: "me", host: "box", port: 2222 } }, { name: "lab", url: { host: "lab" } }] });
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, "conf", "banger")).mode & 0o777, 0o700);
  assert.deepEqual(readContexts(file), { current: "prod", contexts: [{ name: "lab", url: { host: "lab" } }, { name: "prod", url: { user: "me", host: "box", port: 2222 } }] });
  assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), { current: "prod", contexts: { prod: { url: "ssh://me@box:2222" }, lab: { url: "ssh://lab" } } });
  for (const [text, why] of [
    ["{", /not JSON/],
    ["[]", /not a JSON object/],
    [`{"contexts":{"default":{"url":"ssh://a"}}}`, /bad context name "default"/],
    [`{"contexts":{"x":{"url":"ssh://-oProxyCommand=y"}}}`, /context x: host/],
    [`{"current":"gone","contexts":{}}`, /"current" names no stored context/],
  ] as const) {
    writeFileSync(file, text);
    assert.throws(() => readContexts(file), (e: Error) => e.message.includes(file) && why.test(e.message) && /banger context add/.test(e.message), text);
  }
});

void test("choosing the context: --context, then BANGER_CONTEXT, then the current one, else default; an unknown name says what exists", () => {
  const doc = { current: "prod", contexts: [{ name: "prod", url: { host: "p" } }, { name: "lab", url: { host: "l" } }] };
  assert.deepEqual(chooseContext("lab", "prod", doc), { name: "lab", source: "flag" });
  assert.deepEqual(chooseContext(undefined, "lab", doc), { name: "lab", source: "env" });
  assert.deepEqual(chooseContext(undefined, "", doc), { name: "prod", source: "file" });
  assert.deepEqual(chooseContext(undefined, undefined, { contexts: [] }), { name: "default", source: "default" });
  assert.equal(findContext(doc, "default", "flag"), undefined);
  assert.throws(() => findContext(doc, "nope", "env"), /no context "nope" \(from BANGER_CONTEXT\); known: default, prod, lab/);
  assert.deepEqual(splitGlobalFlags(["--context", "lab", "vm", "list"]), { context: "lab", rest: ["vm", "list"] });
  assert.deepEqual(splitGlobalFlags(["--context=lab", "vm", "ls"]), { context: "lab", rest: ["vm", "ls"] });
  assert.deepEqual(splitGlobalFlags(["vm", "exec", "x", "--", "--context", "y"]), { context: undefined, rest: ["vm", "exec", "x", "--", "--context", "y"] });
  assert.throws(() => splitGlobalFlags(["--context"]), /needs a context name/);
  assert.throws(() => splitGlobalFlags(["--context", "--json"]), /needs a context name/);
});

void test("resolveContext: default is the local socket, a stored one an ssh Dial labelled with its name and address", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banger-ctx-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const env = { HOME: dir, BANGER_SOCKET: join(dir, "d.sock"), BANGER_STATE_DIR: dir };
  const layout = resolveLayout(env);
  assert.equal(resolveContext(undefined, layout, env).dial.label, join(dir, "d.sock"));
  writeContexts(join(dir, ".config", "banger", "contexts.json"), { contexts: [{ name: "prod", url: { user: "me", host: "box" } }] });
  const r = resolveContext("prod", layout, env);
  assert.equal(r.dial.label, "context prod (ssh://me@box)");
  assert.equal(r.remote?.name, "prod");
  assert.throws(() => resolveContext("lab", layout, env), /no context "lab"/);
});

interface Run { code: number; out: string; err: string }

async function cli(args: string[], env: Record<string, string>): Promise<Run> {
  let out = "";
  let err = "";
  const code = await runFullCli(args, { stdout: { write: (s: string) => { out += s; } }, stderr: { write: (s: string) => { err += s; } }, env });
  return { code, out, err };
}

void test("context add|ls|use|rm: what a user sees, and bad input refused with nothing written", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banger-ctx-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const env = { HOME: dir, BANGER_SOCKET: join(dir, "d.sock"), BANGER_STATE_DIR: dir, BANGER_CONTEXTS_FILE: join(dir, "c", "contexts.json") };
  let r = await cli(["context", "add", "prod", "ssh://me@box:2222"], env);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, "prod\n");
  assert.equal((await cli(["context", "add", "prod", "ssh://me@other"], env)).code, 1, "an existing name is refused");
  r = await cli(["context", "add", "evil", "ssh://-oProxyCommand=touch@x"], env);
  assert.equal(r.code, 2);
  assert.match(r.err, /is not a user name/);
  assert.equal((await cli(["context", "add", "default", "ssh://box"], env)).code, 2);
  assert.equal((await cli(["context", "add", "Bad Name", "ssh://box"], env)).code, 2);
  r = await cli(["context", "ls"], env);
  assert.equal(r.out, `  NAME     DAEMON\n* default  unix://${join(dir, "d.sock")}\n  prod     ssh://me@box:2222\n`);
  assert.equal((await cli(["context", "use", "prod"], env)).code, 0);
  r = await cli(["context", "ls", "--json"], env);
  assert.equal((JSON.parse(r.out) as { current: string }).current, "prod");
  assert.match((await cli(["context", "ls"], env)).out, /^\* prod /m);
  // BANGER_CONTEXT wins over the current one, and ls says which is in force.
  assert.match((await cli(["context", "ls"], { ...env, BANGER_CONTEXT: "default" })).out, /^\* default /m);
  r = await cli(["context", "use", "nope"], env);
  assert.equal(r.code, 1);
  assert.match(r.err, /no context "nope"/);
  // A command that acts on this host refuses an explicit --context; a flag after the command is pointed to the front.
  r = await cli(["--context", "prod", "doctor"], env);
  assert.equal(r.code, 2);
  assert.match(r.err, /acts on this host only/);
  r = await cli(["vm", "list", "--context", "prod"], env);
  assert.equal(r.code, 2);
  assert.match(r.err, /--context goes before the command/);
  r = await cli(["--context", "nope", "vm", "list"], env);
  assert.equal(r.code, 1);
  assert.match(r.err, /no context "nope"; known: default, prod/);
  r = await cli(["context", "rm", "prod", "nope"], env);
  assert.equal(r.code, 1, "all or nothing");
  assert.match((await cli(["context", "ls"], env)).out, /prod/);
  r = await cli(["context", "rm", "prod"], env);
  assert.equal(r.code, 0);
  assert.match(r.err, /commands now use default/);
  assert.equal((await cli(["context", "ls"], env)).out, `  NAME     DAEMON\n* default  unix://${join(dir, "d.sock")}\n`);
  assert.doesNotMatch((await cli(["help"], env)).out, /dial-stdio/, "plumbing is not in help");
});
