import type { ExecAt, SpawnedChild } from "./posix-spawn.js";

/** What a finished command produced. */
export interface CommandResult {
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

export interface RunOptions {
  /** Bytes written to the child's stdin, which is then closed. */
  readonly stdin?: string | Buffer;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Kill the child (SIGKILL) after this many milliseconds. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Exit codes that count as success besides 0 (e2fsck uses 1 for "fixed"). */
  readonly okExitCodes?: readonly number[];
  /** Open descriptors the child inherits as fds 3, 4, ... in order (it names them /proc/self/fd/N); the caller closes its own. */
  readonly extraFds?: readonly number[];
  /** The file to execute, as a checked directory descriptor and a name in it (posix-spawn.ts), instead of argv[0] looked up. */
  readonly execAt?: ExecAt;
}

/**
 * The one way banger runs an external command to completion: an argv array,
 * never a shell, so arguments reach the child byte for byte. Passed around as
 * a value so tests can substitute a recording fake.
 */
export interface Runner {
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

/** A command that could not be started, exited non-zero, or died by a signal. */
export class CommandError extends Error {
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;

  constructor(argv: readonly string[], exitCode: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, cause?: unknown) {
    const how = signal !== null ? `killed by ${signal}` : exitCode !== null ? `exit code ${exitCode}` : "failed to start";
    const detail = stderr.trim() !== "" ? `: ${lastLines(stderr.trim(), 5)}` : cause instanceof Error ? `: ${cause.message}` : "";
    super(`${argv.join(" ")} (${how})${detail}`, cause === undefined ? undefined : { cause });
    this.name = "CommandError";
    this.argv = argv;
    this.exitCode = exitCode;
    this.signal = signal;
    this.stdout = stdout;
    this.stderr = stderr;
  }
}

function lastLines(text: string, n: number): string {
  return text.split("\n").slice(-n).join(" | ");
}

/** Output beyond this is dropped (the head is kept) so a chatty child cannot exhaust memory. */
const MAX_CAPTURE_BYTES = 64 * 1024 * 1024;

export const systemRunner: Runner = {
  async run(argv, options = {}) {
    // Loaded on first use: the CLI imports this module for CommandError only and must not load FFI.
    const { posixSpawn } = await import("./posix-spawn.js");
    let child: SpawnedChild;
    try {
      child = posixSpawn(argv, { env: options.env, cwd: options.cwd, extraFds: options.extraFds, execAt: options.execAt });
    } catch (e) {
      throw new CommandError(argv, null, null, "", "", e);
    }
    return new Promise((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outBytes = 0;
      let errBytes = 0;
      child.stdout.on("data", (chunk: Buffer) => {
        if (outBytes < MAX_CAPTURE_BYTES) out.push(chunk);
        outBytes += chunk.length;
      });
      child.stderr.on("data", (chunk: Buffer) => {
        if (errBytes < MAX_CAPTURE_BYTES) err.push(chunk);
        errBytes += chunk.length;
      });
      // A read error ends the stream like EOF does; the exit status tells the story.
      child.stdout.on("error", () => undefined);
      child.stderr.on("error", () => undefined);
      child.stdin.on("error", () => {
        // The child may exit without reading its stdin (EPIPE).
      });
      if (options.stdin === undefined) child.stdin.end();
      else child.stdin.end(options.stdin);
      const kill = (): void => {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      };
      const timer = options.timeoutMs === undefined ? undefined : setTimeout(kill, options.timeoutMs);
      const signal = options.signal;
      if (signal?.aborted === true) kill();
      signal?.addEventListener("abort", kill, { once: true });
      void child.exited.then(({ code, signal: killedBy }) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", kill);
        const stdout = Buffer.concat(out);
        const stderr = Buffer.concat(err);
        const ok = killedBy === null && code !== null && (code === 0 || (options.okExitCodes ?? []).includes(code));
        if (ok) resolve({ stdout, stderr });
        else reject(new CommandError(argv, code, killedBy, stdout.toString("utf8"), stderr.toString("utf8")));
      });
    });
  },
};

/** Convenience: run and return stdout as trimmed UTF-8 text. */
export async function runText(runner: Runner, argv: readonly string[], options?: RunOptions): Promise<string> {
  const { stdout } = await runner.run(argv, options);
  return stdout.toString("utf8").trim();
}

/** Recorded call of a {@link FakeRunner}. */
export interface RecordedCall {
  readonly argv: readonly string[];
  readonly stdin?: string | Buffer | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly extraFds?: readonly number[] | undefined;
  readonly execAt?: ExecAt | undefined;
}

export type FakeResponder = (argv: readonly string[]) => Partial<CommandResult> | Error | undefined;

/**
 * A Runner for tests: records every argv and answers from a responder
 * (return an Error to simulate a failure). Lives here, next to the interface
 * it fakes, so every suite uses the same one.
 */
export class FakeRunner implements Runner {
  readonly calls: RecordedCall[] = [];
  constructor(private readonly responder: FakeResponder = () => undefined) {}

  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    this.calls.push({ argv: [...argv], stdin: options.stdin, env: options.env, extraFds: options.extraFds, execAt: options.execAt });
    const answer = this.responder(argv);
    if (answer instanceof Error) return Promise.reject(answer);
    return Promise.resolve({ stdout: answer?.stdout ?? Buffer.alloc(0), stderr: answer?.stderr ?? Buffer.alloc(0) });
  }

  argvs(): string[][] {
    return this.calls.map((c) => [...c.argv]);
  }
}
