import type { Readable } from "node:stream";
import type { ExecParams } from "../rpc/exec-client.js";
import type { DaemonCaller } from "./client.js";
import { BangerError, toBangerError } from "./errors.js";
import { ExecFailedError, inputStream, type ExecOptions, type ExecProcess } from "./exec.js";

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
  // Loaded on use, as the CLI's vm exec does: the frame codec costs every other command start-up.
  const { openExec } = await import("../rpc/exec-client.js");
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
  // An aborted or timed-out command may still answer with its TERM exit: the caller asked to stop, so it sees that.
  const stopped = (): Error | undefined => {
    if (opts.signal?.aborted === true) return opts.signal.reason instanceof Error ? opts.signal.reason : new DOMException("aborted", "AbortError");
    if (timeout?.aborted === true) return new BangerError("timeout", `${argv.join(" ")} ran past ${String(opts.timeoutMs)} ms and was stopped`, opId);
    return undefined;
  };
  const exit = session.exit.then((status) => {
    const why = stopped();
    if (why instanceof Error) throw why;
    return status;
  }, (e: unknown) => {
    const why = stopped();
    throw why instanceof Error ? why : toBangerError(e);
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
