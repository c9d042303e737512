import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { build } from "esbuild";
import { loadBundle } from "../../../src/bin/code-cache.js";
import { BROKEN_PIPE_EXIT_CODE } from "../../../src/cli/broken-pipe.js";
import { VERSION } from "../../../src/version.js";
import { BIN } from "../../helpers/stack.js";

/**
 * `banger vm list --json` must start within ~1.5x a bare `node -e 0`. What
 * made it slow was what the CLI loads before it does anything: zod (import and
 * schema construction) and node:child_process / fs/promises / os / Web Crypto.
 * These tests pin that down: the static import graph of the CLI entry, and the
 * builtins the shipped bundle really loads while serving a 100-VM list.
 */

const REPO = resolve(import.meta.dirname, "..", "..", "..", "..");
const HEAVY_BUILTINS = ["node:child_process", "node:fs/promises", "node:os", "node:crypto", "node:dgram"];

/** What `entry` imports statically (files and builtins), and what it imports on use. */
async function importGraph(entry: string): Promise<{ staticFiles: Set<string>; staticExternals: Set<string>; dynamicTargets: Set<string> }> {
  const r = await build({ entryPoints: [join(REPO, entry)], absWorkingDir: REPO, bundle: true, write: false, metafile: true, platform: "node", format: "cjs", target: "node20", outfile: "/tmp/s2-unused.cjs", external: ["better-sqlite3", "koffi"], logLevel: "silent" });
  const inputs = r.metafile.inputs;
  const staticFiles = new Set<string>();
  const staticExternals = new Set<string>();
  const dynamicTargets = new Set<string>();
  const stack = [entry];
  for (let f = stack.pop(); f !== undefined; f = stack.pop()) {
    if (staticFiles.has(f)) continue;
    staticFiles.add(f);
    for (const imp of inputs[f]?.imports ?? []) {
      if (imp.kind === "dynamic-import") dynamicTargets.add(imp.path);
      else if (imp.external === true) staticExternals.add(imp.path);
      else stack.push(imp.path);
    }
  }
  return { staticFiles, staticExternals, dynamicTargets };
}

void test("the CLI's static import graph, the body's and the whole CLI's, has no zod and no heavy builtins (they load on use)", async () => {
  for (const entry of ["src/bin/banger-main.ts", "src/cli/full.ts"]) {
    const { staticFiles, staticExternals, dynamicTargets } = await importGraph(entry);
    assert.ok(staticFiles.has("src/cli/commands/vm/list.ts"), `${entry}: the walk reaches the commands (sanity)`);
    assert.deepEqual([...staticFiles].filter((f) => f.includes("node_modules/")), [], `${entry}: no package (zod, smol-toml) is imported at start`);
    assert.deepEqual([...staticFiles].filter((f) => /^src\/rpc\/(daemon|priv)\/(?!methods\.ts)/.test(f) || f === "src/rpc/envelope.ts" || f === "src/rpc/dispatcher.ts"), [], `${entry}: no schema module is imported at start`);
    assert.deepEqual([...staticExternals].filter((m) => HEAVY_BUILTINS.includes(m)), [], entry);
    assert.ok(dynamicTargets.has("src/system/ssh.ts"), `${entry}: ssh loads on use: ${[...dynamicTargets].join(" ")}`);
  }
  const body = await importGraph("src/bin/banger-main.ts");
  assert.deepEqual([...body.staticFiles].filter((f) => f === "src/cli/commands/index.ts" || /^src\/cli\/commands\/(image|system|context|operation|snapshot)\//.test(f) || f === "src/cli/commands/vm/create.ts"), [], "only the quick commands are in the body (src/cli/quick.ts)");
  assert.ok(body.dynamicTargets.has("src/cli/full.ts"), "the body loads the whole CLI on use");
  const full = await importGraph("src/cli/full.ts");
  assert.ok(full.dynamicTargets.has("src/cli/commands/doctor-run.ts"), "doctor loads on use");
  assert.ok(full.dynamicTargets.has("src/cli/help-defaults.ts"), "help loads the config schema (zod) on use");
});

void test("vm exec, all it loads on use included, reaches no node:child_process (it talks to the daemon, not to ssh)", async () => {
  const entry = "src/cli/commands/vm/exec.ts";
  const r = await build({ entryPoints: [join(REPO, entry)], absWorkingDir: REPO, bundle: true, write: false, metafile: true, platform: "node", format: "esm", target: "node20", outfile: "/tmp/s2-unused.mjs", logLevel: "silent" });
  const inputs = r.metafile.inputs;
  const seen = new Set<string>();
  const externals = new Set<string>();
  const stack = [entry];
  for (let f = stack.pop(); f !== undefined; f = stack.pop()) {
    if (seen.has(f)) continue;
    seen.add(f);
    for (const imp of inputs[f]?.imports ?? []) {
      if (imp.external === true) externals.add(imp.path);
      else stack.push(imp.path);
    }
  }
  assert.ok(seen.has("src/rpc/exec-client.ts"), "the walk follows the dynamic imports (sanity)");
  assert.ok(!externals.has("node:child_process"), `child_process is reached through: ${[...seen].filter((f) => (inputs[f]?.imports ?? []).some((i) => i.path === "node:child_process")).join(" ")}`);
});

/** A stand-in daemon answering every request with `count` VM views. */
async function fakeDaemon(t: { after(fn: () => void): void }, count: number): Promise<{ dir: string; socket: string }> {
  const dir = mkdtempSync("/tmp/s2-startup-");
  const socket = join(dir, "bangerd.sock");
  const vms = Array.from({ length: count }, (_, i) => ({ id: i.toString(16).padStart(32, "0"), name: `bench-${i}`, state: "stopped", ip: `172.16.91.${i + 2}` }));
  const server = createServer((sock) => {
    sock.once("data", () => { sock.end(JSON.stringify({ ok: true, result: { vms } }) + "\n"); });
    sock.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(socket, r));
  t.after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, socket };
}

function runBanger(args: string[], env: Record<string, string>, opts: { preload?: string; closeStdout?: boolean } = {}): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const argv = [...(opts.preload !== undefined ? ["-r", opts.preload] : []), BIN.banger, ...args];
  const child = spawn(process.execPath, argv, { env: { PATH: "/usr/bin:/bin", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  // Closing our end before node has even started makes its first stdout write fail with EPIPE.
  if (opts.closeStdout === true) child.stdout.destroy();
  let stdout = "";
  let stderr = "";
  if (opts.closeStdout !== true) child.stdout.on("data", (d: Buffer) => { stdout += d.toString("utf8"); });
  child.stderr.on("data", (d: Buffer) => { stderr += d.toString("utf8"); });
  return new Promise((r) => child.on("close", (code, signal) => { r({ code, signal, stdout, stderr }); }));
}

const bundleMissing = existsSync(BIN.banger) ? false : `${BIN.banger} is not built; run npm run build`;

void test("the shipped bundle serves vm list --json without loading child_process, fs/promises, os or crypto", { skip: bundleMissing }, async (t) => {
  const d = await fakeDaemon(t, 100);
  const hook = join(d.dir, "loaded.cjs");
  // Preloaded: at exit, report every builtin the process loaded (process.moduleLoadList is Node's own record).
  writeFileSync(hook, "process.on('exit',()=>{process.stderr.write('LOADED '+JSON.stringify(process.moduleLoadList)+'\\n')});\n");
  const r = await runBanger(["vm", "list", "--json"], { HOME: d.dir, BANGER_SOCKET: d.socket, BANGER_STATE_DIR: d.dir, BANGER_RUNTIME_DIR: d.dir }, { preload: hook });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as unknown[]).length, 100);
  const loaded = JSON.parse(/^LOADED (.*)$/m.exec(r.stderr)?.[1] ?? "[]") as string[];
  assert.ok(loaded.includes("NativeModule net"), "the record is real (net is loaded for the socket)");
  const heavy = loaded.filter((m) => /^NativeModule (child_process|fs\/promises|os|crypto|dgram|internal\/crypto\/webcrypto)$/.test(m));
  assert.deepEqual(heavy, []);
});

void test("the shipped bundle loads the whole CLI for the commands it does not carry, and for help", { skip: bundleMissing }, async () => {
  const env = { HOME: "/nonexistent", BANGER_SOCKET: "/nonexistent/bangerd.sock" };
  const group = await runBanger(["vm", "--help"], env);
  assert.equal(group.code, 0, group.stderr);
  assert.match(group.stdout, /^ {2}create +/m, "vm create is listed: the whole CLI answered");
  const create = await runBanger(["vm", "create", "--help"], env);
  assert.equal(create.code, 0, create.stderr);
  assert.match(create.stdout, /--vcpus N/);
  const down = await runBanger(["vm", "show", "web"], env);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /\/nonexistent\/bangerd\.sock/);
});

void test("a reader that goes away (vm list --json | head) ends the CLI quietly with the broken-pipe code", { skip: bundleMissing }, async (t) => {
  const d = await fakeDaemon(t, 100);
  const r = await runBanger(["vm", "list", "--json"], { HOME: d.dir, BANGER_SOCKET: d.socket, BANGER_STATE_DIR: d.dir, BANGER_RUNTIME_DIR: d.dir }, { closeStdout: true });
  assert.equal(r.stderr, "", "no stack trace");
  assert.equal(r.code, BROKEN_PIPE_EXIT_CODE);
});

void test("the CLI starts from its code cache, and a body edited to the same length does not run the cached bytecode", { skip: bundleMissing }, (t) => {
  const bin = join(BIN.banger, "..");
  assert.equal(loadBundle(join(bin, "banger-main.cjs"), join(bin, "banger-main.cache")).cached, true, "V8 takes the cache the build wrote");
  assert.equal(loadBundle(join(bin, "banger-cli.cjs"), join(bin, "banger-cli.cache")).cached, true, "and the whole CLI's");
  const dir = mkdtempSync("/tmp/s2-cache-");
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  for (const f of ["banger.cjs", "banger-main.cjs", "banger-main.cache"]) copyFileSync(join(bin, f), join(dir, f));
  const body = readFileSync(join(dir, "banger-main.cjs"), "latin1");
  const bumped = VERSION.replace(/\d/, (d) => String((Number(d) + 1) % 10));
  const edited = body.replace(JSON.stringify(VERSION), JSON.stringify(bumped));
  assert.notEqual(edited, body);
  assert.equal(edited.length, body.length);
  writeFileSync(join(dir, "banger-main.cjs"), edited, "latin1");
  assert.equal(loadBundle(join(dir, "banger-main.cjs"), join(dir, "banger-main.cache")).cached, false);
  const r = spawnSync(process.execPath, [join(dir, "banger.cjs"), "--version"], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", HOME: dir } });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.startsWith(`banger ${bumped} `), r.stdout);
});
