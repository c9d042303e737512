import { constants } from "node:os";
import { finished } from "node:stream/promises";
import type { ExecSession } from "../../../rpc/exec-client.js";

/** What attach() uses of the process; tests pass their own. */
export interface AttachIo {
  readonly stdin: NodeJS.ReadStream;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  /** Adds a process signal listener; returns its removal. */
  onSignal(signal: "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGWINCH", fn: () => void): () => void;
}

/** Getters: each of process.stdin/stdout/stderr costs a stream's set-up (a few ms) the first time it is touched. */
export const processIo: AttachIo = {
  get stdin() { return process.stdin; },
  get stdout() { return process.stdout; },
  get stderr() { return process.stderr; },
  onSignal(signal, fn) {
    process.on(signal, fn);
    return () => { process.off(signal, fn); };
  },
};

/** The exit code a shell would report: the command's own, or 128 + the signal that killed it. */
export function exitCodeOf(status: { code: number | null; signal: string | null }): number {
  if (status.code !== null) return status.code;
  const n = status.signal === null ? undefined : (constants.signals as Record<string, number | undefined>)[`SIG${status.signal}`];
  return n === undefined ? 255 : 128 + n;
}

/**
 * `source.pipe(dest())`, with dest made only when the first chunk comes: a command that prints
 * nothing (`vm exec box -- true`) sets up no stream here. Never ends dest: it is this process's own.
 */
function pipeOnData(source: NodeJS.ReadableStream, dest: () => NodeJS.WritableStream): void {
  source.once("data", (first: Buffer) => {
    const out = dest();
    out.write(first);
    source.pipe(out, { end: false });
  });
}

/**
 * Wires a session to this process's terminal or pipes, docker exec style:
 * stdin only with -i (in raw mode when -t and stdin is a terminal, so Ctrl-C
 * and friends travel as bytes to the remote pty); otherwise Ctrl-C, TERM and
 * HUP here become the same signal to the remote command. Resolves with the
 * command's exit code once its output is all written.
 */
export async function attach(session: ExecSession, io: AttachIo, opts: { readonly tty: boolean; readonly stdin: boolean }): Promise<number> {
  const undo: (() => void)[] = [];
  const raw = opts.tty && opts.stdin && io.stdin.isTTY;
  if (raw) {
    io.stdin.setRawMode(true);
    undo.push(() => { io.stdin.setRawMode(false); });
  }
  if (opts.stdin) {
    io.stdin.pipe(session.stdin);
    undo.push(() => {
      io.stdin.unpipe(session.stdin);
      // Nothing more will be read: let the process exit instead of waiting on a terminal or pipe.
      io.stdin.destroy();
    });
  }
  if (opts.tty && io.stdout.isTTY) {
    undo.push(io.onSignal("SIGWINCH", () => { session.resize(io.stdout.columns, io.stdout.rows); }));
  }
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    undo.push(io.onSignal(sig, () => { session.kill(sig.slice(3)); }));
  }
  pipeOnData(session.stdout, () => io.stdout);
  pipeOnData(session.stderr, () => io.stderr);
  try {
    const status = await session.exit;
    await Promise.all([finished(session.stdout), finished(session.stderr)]);
    return exitCodeOf(status);
  } finally {
    for (const u of undo.reverse()) u();
  }
}
