#!/usr/bin/env node
// Writes dist/bin/banger-main.cache, the V8 code cache dist/bin/banger.cjs starts the CLI from
// (src/bin/code-cache.ts says why and how it is checked), and banger-cli.cache, the whole CLI's,
// which the body loads for every command but the quick ones (src/cli/quick.ts). V8 caches the
// functions that have been compiled, so each cache is taken after running commands against a
// stand-in daemon on a temp socket: the quick ones people run most often (vm list, vm exec) for the
// body, a few others and help for the whole CLI. A child process runs them and writes the caches.
// Runs after scripts/bundle.mjs, from the same node that will run it (another V8 rejects the cache
// and the CLI compiles as it would without one).
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";

const BIN = resolve(import.meta.dirname, "..", "dist", "bin");
const BODY = join(BIN, "banger-main.cjs");
const CACHE = join(BIN, "banger-main.cache");
const FULL = join(BIN, "banger-cli.cjs");
const FULL_CACHE = join(BIN, "banger-cli.cache");
const { loadBundle, cacheFileContents } = await import(resolve(import.meta.dirname, "..", "dist", "src", "bin", "code-cache.js"));

/** What the body runs while the cache is taken: the quick commands whose start-up users feel. */
const TRAINING = [["vm", "list", "--json"], ["vm", "list"], ["vm", "ls", "-q"], ["vm", "exec", "vm-0", "--", "true"], ["--version"]];
/** What the whole CLI runs while its cache is taken: a command that is not quick, and help. */
const FULL_TRAINING = [["vm", "show", "vm-0"], ["vm", "show", "--json", "vm-0"], ["--help"], ["vm", "--help"]];

async function train(dir) {
  const bundle = loadBundle(BODY, "/nonexistent");
  for (const argv of TRAINING) {
    process.argv = [process.argv[0], BODY, ...argv];
    const code = await bundle.run().done;
    if (code !== 0) throw new Error(`banger ${argv.join(" ")} exited ${code} while taking the code cache`);
  }
  const full = loadBundle(FULL, "/nonexistent");
  const { runFullCli } = full.run();
  for (const argv of FULL_TRAINING) {
    const code = await runFullCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env });
    if (code !== 0) throw new Error(`banger ${argv.join(" ")} exited ${code} while taking the whole CLI's code cache`);
  }
  process.exitCode = 0;
  writeFileSync(join(dir, "main"), cacheFileContents(readFileSync(BODY), bundle.script.createCachedData()));
  writeFileSync(join(dir, "full"), cacheFileContents(readFileSync(FULL), full.script.createCachedData()));
}

/** Twenty VM views as the daemon sends them, checked against the schema so they cannot drift from it. */
async function vmViews() {
  const { vmViewSchema } = await import(resolve(import.meta.dirname, "..", "dist", "src", "rpc", "daemon", "vm.js"));
  return Array.from({ length: 20 }, (_, i) => vmViewSchema.parse({
    id: i.toString(16).padStart(32, "0"), name: `vm-${i}`, dns_name: `vm-${i}.vm`, state: i % 2 === 0 ? "running" : "stopped", image: "debian",
    vcpus: 2, memory_mib: 1024, disk_gib: 8, vmm: "qemu", ip: `172.16.0.${i + 2}`, mac: `52:54:00:00:00:${(i + 2).toString(16).padStart(2, "0")}`,
    tap: `bt${i}`, pid: i % 2 === 0 ? 1000 + i : null, created_at: "2026-01-01T00:00:00.000Z", started_at: i % 2 === 0 ? "2026-01-01T00:00:01.000Z" : null,
    uptime_s: i % 2 === 0 ? 3600 : null, last_error: null, console_log: null, egress: { policy: "all", isolate: false }, ports: [],
    ssh: { user: "root", key_path: "/nonexistent/id_ed25519", known_hosts_path: "/nonexistent/known_hosts" },
  }));
}

async function main() {
  const { encodeFrame } = await import(resolve(import.meta.dirname, "..", "dist", "src", "rpc", "frames.js"));
  const dir = mkdtempSync("/tmp/banger-code-cache-");
  try {
    const socket = join(dir, "bangerd.sock");
    const vms = await vmViews();
    const server = createServer((sock) => {
      let buf = "";
      sock.on("data", (d) => {
        buf += d.toString("utf8");
        const nl = buf.indexOf("\n");
        if (nl === -1) return;
        const req = JSON.parse(buf.slice(0, nl));
        buf = "";
        // vm.exec: the daemon's answer, then the stream the exec channel relays (a line of output and the exit).
        if (req.method === "vm.exec") {
          sock.write(JSON.stringify({ ok: true, result: { opened: true } }) + "\n");
          sock.end(Buffer.concat([encodeFrame({ type: "stdout", data: Buffer.from("ok\n") }), encodeFrame({ type: "exit", status: { code: 0, signal: null } })]));
          return;
        }
        const result = req.method === "vm.list" ? { vms } : req.method === "vm.get" ? vms.find((v) => v.name === req.params.name) : undefined;
        sock.end(JSON.stringify(result !== undefined ? { ok: true, result } : { ok: false, error: { code: "unknown_method", message: `no ${req.method} here`, op_id: req.op_id } }) + "\n");
      });
      sock.on("error", () => undefined);
    });
    await new Promise((r) => server.listen(socket, r));
    try {
      const out = join(dir, "caches");
      mkdirSync(out);
      // A child, so the body's output and process state stay out of this build; spawnSync would
      // block the stand-in daemon's event loop, hence the promise.
      const env = { PATH: "/usr/bin:/bin", HOME: dir, BANGER_SOCKET: socket, BANGER_STATE_DIR: dir, BANGER_RUNTIME_DIR: dir, BANGER_CONFIG: join(dir, "config.toml") };
      const child = spawn(process.execPath, [import.meta.filename, "--train", out], { env, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => { stderr += d; });
      const code = await new Promise((r) => child.on("close", r));
      if (code !== 0) throw new Error(`taking the CLI's code cache failed (exit ${code}): ${stderr}`);
      renameSync(join(out, "main"), CACHE);
      renameSync(join(out, "full"), FULL_CACHE);
    } finally {
      server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The cache is only worth shipping if V8 takes it: check in a fresh process, as the CLI starts.
  const check = spawnSync(process.execPath, [import.meta.filename, "--check"], { encoding: "utf8" });
  if (check.status !== 0 || check.stdout.trim() !== "cached cached") throw new Error(`V8 does not take ${CACHE} and ${FULL_CACHE}: ${check.stdout}${check.stderr}`);
}

if (process.argv[2] === "--train") await train(process.argv[3]);
else if (process.argv[2] === "--check") process.stdout.write(`${[[BODY, CACHE], [FULL, FULL_CACHE]].map(([b, c]) => (loadBundle(b, c).cached ? "cached" : "rejected")).join(" ")}\n`);
else await main();
