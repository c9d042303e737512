/** What a shell reports for a process killed by SIGPIPE (128 + 13), e.g. `yes | head -1` under pipefail. */
export const BROKEN_PIPE_EXIT_CODE = 141;

interface ErrorEmitter {
  on(event: "error", listener: (err: Error) => void): unknown;
}

/**
 * Ends the process quietly when the reader of `stream` goes away (`banger vm
 * list --json | head`). Node ignores SIGPIPE, so without this the failed write
 * surfaces as an unhandled 'error' event with a stack trace. Other stream
 * errors are rethrown: they stay loud, as they would be without a listener.
 */
export function exitOnBrokenPipe(stream: ErrorEmitter, exit: (code: number) => void = (code) => process.exit(code)): void {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") {
      exit(BROKEN_PIPE_EXIT_CODE);
      return;
    }
    throw err;
  });
}
