import { exitOnBrokenPipe } from "../cli/broken-pipe.js";
import type { Output } from "../cli/command.js";
import { runCli, type CliIo } from "../cli/main.js";
import { isQuick, QUICK_COMMANDS } from "../cli/quick.js";

/**
 * The CLI's body. dist/bin/banger.cjs (src/bin/banger.ts) loads it with V8's code cache; it runs
 * once per process, except when scripts/cli-code-cache.mjs runs it a few times to fill that cache.
 * It runs the quick commands itself and loads the whole CLI for the rest (src/cli/quick.ts says why).
 *
 * process.stderr is created on first access (a few ms: a tty or pipe stream);
 * most successful commands never write to it, so it is touched only when they do.
 */
const lazyStderr: Output = {
  write: (text: string) => process.stderr.write(text),
  get isTTY() { return process.stderr.isTTY; },
};

exitOnBrokenPipe(process.stdout);

const argv = process.argv.slice(2);
const io: CliIo = { stdout: process.stdout, stderr: lazyStderr, env: process.env };
/** Settles with the exit code once the command is done (the cache training waits for it). */
export const done: Promise<number> = (isQuick(argv) ? runCli(argv, io, QUICK_COMMANDS) : import("../cli/full.js").then((cli) => cli.runFullCli(argv, io))).then(
  (code) => {
    process.exitCode = code;
    return code;
  },
  (e: unknown) => {
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
    return 1;
  },
);
