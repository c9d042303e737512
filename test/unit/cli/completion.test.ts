import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { CliContext } from "../../../src/cli/command.js";
import { COMMANDS } from "../../../src/cli/commands/index.js";
import { completions } from "../../../src/cli/commands/complete.js";
import { BIN } from "../../helpers/stack.js";
import { fakeDaemon } from "../../helpers/fake-daemon.js";

const bundleMissing = existsSync(BIN.banger) ? false : `${BIN.banger} is not built; run npm run build`;

/** A daemon that knows two VMs, one image and one snapshot. */
function answer(method: string): unknown {
  if (method === "vm.list") return { vms: [{ name: "web" }, { name: "worker" }] };
  if (method === "image.list") return { images: [{ name: "default" }] };
  if (method === "snapshot.list") return { snapshots: [{ name: "web-1" }] };
  return undefined;
}

function ctxFor(names: Record<string, unknown>): CliContext {
  return { call: (method: string) => (method in names ? Promise.resolve(names[method]) : Promise.reject(new Error("down"))) } as unknown as CliContext;
}

void test("completion offers command words, a command's flags, and names where the command or flag takes one", async () => {
  const ctx = ctxFor({ "vm.list": answer("vm.list"), "image.list": answer("image.list"), "snapshot.list": answer("snapshot.list") });
  const top = await completions(COMMANDS, [], "", ctx);
  for (const w of ["vm", "image", "snapshot", "system", "help", "completion", "doctor", "version"]) assert.ok(top.includes(w), w);
  assert.ok(!top.includes("__complete"));
  assert.deepEqual(await completions(COMMANDS, ["vm"], "st", ctx), ["start", "stats", "stop"]);
  assert.deepEqual(await completions(COMMANDS, ["vm", "port"], "", ctx), ["add", "list", "ls", "rm"]);
  assert.deepEqual(await completions(COMMANDS, ["vm", "create"], "--m", ctx), ["--memory"]);
  assert.deepEqual(await completions(COMMANDS, ["vm", "create", "--image"], "", ctx), ["default"]);
  assert.deepEqual(await completions(COMMANDS, ["vm", "create", "--name"], "", ctx), [], "a free-form value completes nothing");
  assert.deepEqual(await completions(COMMANDS, ["vm", "create"], "--image=d", ctx), ["--image=default"]);
  assert.deepEqual(await completions(COMMANDS, ["vm", "create", "--image", "="], "d", ctx), ["default"], "bash splits at =");
  assert.deepEqual(await completions(COMMANDS, ["vm", "ssh"], "w", ctx), ["web", "worker"]);
  assert.deepEqual(await completions(COMMANDS, ["vm", "restore"], "", ctx), ["web-1"]);
  assert.deepEqual(await completions(COMMANDS, ["image", "rm"], "", ctx), ["default"]);
  assert.deepEqual(await completions(COMMANDS, ["vm", "exec", "web", "--"], "", ctx), [], "after -- the words are the guest's");
  assert.deepEqual(await completions(COMMANDS, ["help", "vm"], "cr", ctx), ["create"]);
  assert.deepEqual(await completions(COMMANDS, ["vm", "ssh"], "", ctxFor({})), [], "a daemon that is down completes nothing, silently");
});

void test("banger completion bash loads in bash (complete -p banger) and completes a VM name from a running daemon", { skip: bundleMissing }, async (t) => {
  const d = await fakeDaemon(t, answer);
  const bin = join(d.dir, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "banger"), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN.banger)} "$@"\n`);
  chmodSync(join(bin, "banger"), 0o755);
  const script = [
    "source <(banger completion bash)",
    "complete -p banger",
    "COMP_WORDS=(banger vm ssh w); COMP_CWORD=3; _banger; echo \"vm: ${COMPREPLY[*]}\"",
    "COMP_WORDS=(banger vm create --im); COMP_CWORD=3; _banger; echo \"flag: ${COMPREPLY[*]}\"",
    "COMP_WORDS=(banger vm create --image ''); COMP_CWORD=4; _banger; echo \"image: ${COMPREPLY[*]}\"",
    "COMP_WORDS=(banger ''); COMP_CWORD=1; _banger; echo \"top: ${COMPREPLY[*]}\"",
  ].join("\n");
  // Not spawnSync: the fake daemon answers from this process's event loop.
  const child = spawn("bash", ["--norc", "--noprofile", "-c", script], { env: { PATH: `${bin}:/usr/bin:/bin`, HOME: d.dir, BANGER_SOCKET: d.socket }, stdio: ["ignore", "pipe", "pipe"] });
  const r = { stdout: "", stderr: "", status: null as number | null };
  child.stdout.on("data", (b: Buffer) => { r.stdout += b.toString("utf8"); });
  child.stderr.on("data", (b: Buffer) => { r.stderr += b.toString("utf8"); });
  r.status = await new Promise<number | null>((res) => child.on("close", res));
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split("\n");
  assert.equal(lines[0], "complete -o default -F _banger banger");
  assert.equal(lines[1], "vm: web worker");
  assert.equal(lines[2], "flag: --image");
  assert.equal(lines[3], "image: default");
  assert.match(lines[4] ?? "", /^top: .*\bvm\b/);
  assert.ok(d.methods.includes("vm.list") && d.methods.includes("image.list"), "names came from the daemon");
});

void test("banger completion prints zsh and fish scripts that call __complete, and refuses other shells", { skip: bundleMissing }, () => {
  for (const shell of ["zsh", "fish"]) {
    const r = spawnSync(process.execPath, [BIN.banger, "completion", shell], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", HOME: "/nonexistent" } });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /banger __complete/);
  }
  const bad = spawnSync(process.execPath, [BIN.banger, "completion", "tcsh"], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", HOME: "/nonexistent" } });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /give one shell: bash, zsh, fish/);
});
