import { spawn } from "node:child_process";

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
  run(argv, options = {}) {
    const [file, ...args] = argv;
    if (file === undefined || file === "") {
      return Promise.reject(new CommandError(argv, null, null, "", "", new Error("empty argv")));
    }
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, {
        shell: false,
        stdio: ["pipe", "pipe", "pipe"],
        cwd: options.cwd,
        env: options.env ?? process.env,
        signal: options.signal,
        timeout: options.timeoutMs,
        killSignal: "SIGKILL",
      });
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
      let spawnError: unknown;
      child.on("error", (e) => {
        spawnError = e;
      });
      child.stdin.on("error", () => {
        // The child may exit without reading its stdin (EPIPE); its exit status tells the story.
      });
      child.stdin.end(options.stdin);
      child.on("close", (code, signal) => {
        const stdout = Buffer.concat(out);
        const stderr = Buffer.concat(err);
        const ok = signal === null && code !== null && (code === 0 || (options.okExitCodes ?? []).includes(code));
        if (ok && spawnError === undefined) {
          resolve({ stdout, stderr });
          return;
        }
        // A child that never started reports a negative errno as its "code"; it has no exit code.
        const exitCode = spawnError !== undefined && (code === null || code < 0) ? null : code;
        reject(new CommandError(argv, exitCode, signal, stdout.toString("utf8"), stderr.toString("utf8"), spawnError));
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
    this.calls.push({ argv: [...argv], stdin: options.stdin });
    const answer = this.responder(argv);
    if (answer instanceof Error) return Promise.reject(answer);
    return Promise.resolve({ stdout: answer?.stdout ?? Buffer.alloc(0), stderr: answer?.stderr ?? Buffer.alloc(0) });
  }

  argvs(): string[][] {
    return this.calls.map((c) => [...c.argv]);
  }
}
