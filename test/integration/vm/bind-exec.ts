// Test helper (run inside `unshare --mount`): bind-mounts SRC over DST in the
// private mount namespace, then runs CMD... and relays its exit. Lets a test
// give a throwaway sshd its own /root without touching the host's.
import { spawn, spawnSync } from "node:child_process";

const [src, dst, ...cmd] = process.argv.slice(2);
if (src === undefined || dst === undefined || cmd.length === 0) {
  process.stderr.write("usage: bind-exec SRC DST CMD...\n");
  process.exit(2);
}
const m = spawnSync("mount", ["--bind", src, dst], { stdio: "inherit" });
if (m.status !== 0) process.exit(1);
const [file, ...args] = cmd;
const child = spawn(file ?? "", args, { stdio: "inherit" });
for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => { child.kill(sig); });
child.on("exit", (code, signal) => { process.exit(code ?? (signal !== null ? 128 : 1)); });
