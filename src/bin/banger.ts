#!/usr/bin/env node
import { exitOnBrokenPipe } from "../cli/broken-pipe.js";
import type { Output } from "../cli/command.js";
import { runCli } from "../cli/main.js";

/**
 * process.stderr is created on first access (a few ms: a tty or pipe stream);
 * most successful commands never write to it, so it is touched only when they do.
 */
const lazyStderr: Output = {
  write: (text: string) => process.stderr.write(text),
  get isTTY() { return process.stderr.isTTY; },
};

exitOnBrokenPipe(process.stdout);
runCli(process.argv.slice(2), { stdout: process.stdout, stderr: lazyStderr, env: process.env }).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
