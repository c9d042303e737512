import { spawn } from "node:child_process";
import type { RemoteProcess } from "./tar-copy.js";

/**
 * A guest command run by the user's own `ssh` process (argv ends with the remote command line):
 * what `vm cp` uses on this host, where the bytes can go tar → ssh without passing through any
 * banger process that holds them (the daemon's exec channel carries every byte through the daemon
 * and back, which a context needs but a local copy of 200 MiB does not).
 */
export function sshProcess(argv: readonly string[], opts: { readonly stdin: boolean }): RemoteProcess {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error("empty argv");
  const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], shell: false });
  if (!opts.stdin) child.stdin.end();
  // The exit explains a broken pipe better than EPIPE does.
  child.stdin.on("error", () => undefined);
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    child.on("error", (e) => { reject(new Error(`${file}: ${e.message}`)); });
    child.on("close", (code, signal) => { resolve({ code, signal }); });
  });
  return { stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exit };
}
