import { Readable, type Writable } from "node:stream";
import { BangerError } from "./errors.js";
import type { ExitStatus } from "./wire-types.js";

/** Bytes for a command's stdin or a file's content. */
export type Input = string | Uint8Array | Readable | AsyncIterable<Uint8Array>;

export interface ExecOptions {
  /** Variables exported before the command runs. */
  readonly env?: Readonly<Record<string, string>>;
  /** Absolute directory the command starts in. */
  readonly cwd?: string;
  /** A user name or uid to run as (default: the image's login user, root). */
  readonly user?: string;
  /** What the command reads (then EOF). Default: EOF at once, unless `openStdin`. */
  readonly stdin?: Input;
  /** Keep the command's stdin open for you to write to the process's `stdin` (end() sends EOF). */
  readonly openStdin?: boolean;
  /** A pty of this size (stdout then carries the terminal; stderr stays empty). */
  readonly tty?: { readonly cols: number; readonly rows: number };
  /** Called with each chunk of output as it arrives (the streams are read for you then). */
  readonly onStdout?: (chunk: Buffer) => void;
  readonly onStderr?: (chunk: Buffer) => void;
  /** Aborting TERMs the command; `exit` then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** TERMs the command after this long; `exit` then rejects with a BangerError `timeout`. */
  readonly timeoutMs?: number;
}

/** A command running in a VM. */
export interface ExecProcess {
  /** Its output as it comes (async-iterable); read it, or pass onStdout: unread output holds the command up (backpressure). */
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Its stdin, with `openStdin`: end() sends EOF. */
  readonly stdin: Writable;
  /** Its exit code or the signal that ended it, once all output has arrived. */
  readonly exit: Promise<ExitStatus>;
  /** Sends a signal (e.g. "INT", "KILL"; default TERM) to the command. */
  kill(signal?: string): void;
  /** Resizes the pty (tty sessions). */
  resize(cols: number, rows: number): void;
  /** Reads all of stdout and stderr as UTF-8 text and waits for the end. */
  output(): Promise<ExecResult>;
}

export interface ExecResult extends ExitStatus {
  readonly stdout: string;
  readonly stderr: string;
}

/** `execText` of a command that did not exit 0: the code (or signal) and all it printed. */
export class ExecFailedError extends BangerError {
  override readonly name: string = "ExecFailedError";
  constructor(readonly argv: readonly string[], readonly result: ExecResult, opId: string) {
    const how = result.signal !== null ? `was killed by SIG${result.signal}` : `exited ${String(result.code)}`;
    const tail = result.stderr.trim().split("\n").slice(-5).join("\n");
    super("operation_failed", `${argv.join(" ")} ${how}${tail !== "" ? `: ${tail}` : ""}`, opId);
  }
}

export function inputStream(input: Input): Readable {
  if (typeof input === "string" || input instanceof Uint8Array) return Readable.from([Buffer.from(input)]);
  return input instanceof Readable ? input : Readable.from(input);
}
