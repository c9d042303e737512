import { Readable, type Writable } from "node:stream";
import { openExec, type ExecParams } from "../rpc/exec-client.js";
import type { DaemonCaller } from "./client.js";
import { BangerError, toBangerError } from "./errors.js";
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

function collect(r: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    r.on("data", (c: Buffer) => chunks.push(c));
    r.once("end", () => { resolve(Buffer.concat(chunks).toString("utf8")); });
    r.once("error", reject);
  });
}

/** Starts argv in the VM over the daemon's exec channel; resolves once it runs (an unknown or stopped VM rejects). */
export async function startExec(client: DaemonCaller, name: string, argv: readonly string[], opts: ExecOptions): Promise<ExecProcess> {
  const opId = client.opId();
  const timeout = opts.timeoutMs !== undefined ? AbortSignal.timeout(opts.timeoutMs) : undefined;
  const signals = [opts.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
  const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
  signal?.throwIfAborted();
  const params: ExecParams = { name, argv: [...argv], stdin: opts.stdin !== undefined || opts.openStdin === true };
  if (opts.env !== undefined) params.env = { ...opts.env };
  if (opts.cwd !== undefined) params.cwd = opts.cwd;
  if (opts.user !== undefined) params.user = opts.user;
  if (opts.tty !== undefined) params.tty = { cols: opts.tty.cols, rows: opts.tty.rows };
  const session = await openExec(client.dial, params, { opId, ...(signal !== undefined ? { signal } : {}) }).catch((e: unknown) => {
    signal?.throwIfAborted();
    throw toBangerError(e);
  });
  if (opts.stdin !== undefined) {
    const src = inputStream(opts.stdin);
    src.once("error", () => { session.kill("TERM"); });
    src.pipe(session.stdin);
  }
  if (opts.onStdout !== undefined) session.stdout.on("data", opts.onStdout);
  if (opts.onStderr !== undefined) session.stderr.on("data", opts.onStderr);
  const exit = session.exit.catch((e: unknown) => {
    if (opts.signal?.aborted === true) throw opts.signal.reason;
    if (timeout?.aborted === true) throw new BangerError("timeout", `${argv.join(" ")} ran past ${String(opts.timeoutMs)} ms and was stopped`, opId);
    throw toBangerError(e);
  });
  // Awaiting it reports the failure; a caller that only reads the streams must not crash on it.
  exit.catch(() => undefined);
  return {
    stdout: session.stdout,
    stderr: session.stderr,
    stdin: session.stdin,
    exit,
    kill: (sig) => { session.kill(sig); },
    resize: (cols, rows) => { session.resize(cols, rows); },
    async output() {
      const [stdout, stderr, status] = await Promise.all([collect(session.stdout), collect(session.stderr), exit]);
      return { stdout, stderr, code: status.code, signal: status.signal };
    },
  };
}

/** argv's stdout as text; a command that does not exit 0 rejects with ExecFailedError (its output included). */
export async function execText(client: DaemonCaller, name: string, argv: readonly string[], opts: ExecOptions): Promise<string> {
  const p = await startExec(client, name, argv, opts);
  const r = await p.output();
  if (r.code !== 0) throw new ExecFailedError(argv, r, client.opId());
  return r.stdout;
}
