import type { Readable, Writable } from "node:stream";

/** A child whose stdin and stdout carry a stream (the user's ssh, for a remote context). */
export interface StreamChild {
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Resolves once the child exited and its pipes closed (never rejects); `error` when it could not start. */
  readonly exited: Promise<StreamExit>;
  kill(): void;
}

export interface StreamExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The tail of what the child wrote on stderr (bounded). */
  readonly stderr: string;
  readonly error?: Error;
}

const STDERR_TAIL = 16 * 1024;

/** Spawns argv (no shell) with piped stdio; stderr is kept, not shown, for the caller's error messages. */
export function spawnStream(argv: readonly string[]): StreamChild {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error("empty argv");
  // Loaded on first use, not imported: every CLI start would pay for node:child_process (and dgram) otherwise.
  if (typeof process.getBuiltinModule !== "function") throw new Error("remote contexts need Node >= 20.16");
  const { spawn } = process.getBuiltinModule("node:child_process");
  // Its own process group: a Ctrl-C at the terminal reaches the CLI alone, which forwards it over the
  // stream (an exec's signal frame); killing ssh with it would cut the stream before that frame left.
  const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], shell: false, detached: true });
  let stderr = "";
  let error: Error | undefined;
  child.stderr.on("data", (d: Buffer) => { stderr = (stderr + d.toString("utf8")).slice(-STDERR_TAIL); });
  // The exit explains a broken pipe better than EPIPE does.
  child.stdin.on("error", () => undefined);
  const exited = new Promise<StreamExit>((resolve) => {
    child.on("error", (e) => {
      error = e;
      // A child that never started emits no close on some versions; its pipes are dead either way.
      if (child.pid === undefined) resolve({ code: null, signal: null, stderr, error: e });
    });
    child.on("close", (code, signal) => { resolve({ code, signal, stderr, ...(error !== undefined ? { error } : {}) }); });
  });
  return {
    stdin: child.stdin,
    stdout: child.stdout,
    exited,
    kill: () => { if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM"); },
  };
}
