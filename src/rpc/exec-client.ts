import { Readable, Writable } from "node:stream";
import type { ExecParams, FileEntry } from "./daemon/exec.js";
import { ERROR_CODES, RpcError, type ErrorCode } from "./errors.js";
import { FrameConn } from "./frame-conn.js";
import type { ExitStatus, Frame } from "./frames.js";
import { newOpId } from "./opid.js";
import { openStream } from "./stream-open.js";
import { callOver, type Dial } from "./unix-client.js";

export type { ExecParams, FileEntry } from "./daemon/exec.js";
export type { ExitStatus } from "./frames.js";

export interface StreamCallOptions {
  /** Carried on the request and on every daemon log line about it; minted when absent. */
  readonly opId?: string;
  /** Aborting sends TERM to the remote command (exec) and then closes the connection. */
  readonly signal?: AbortSignal;
}

/** A command running in a VM, its streams flowing over one daemon connection. */
export interface ExecSession {
  readonly opId: string;
  /** The command's stdout (with a tty: the terminal's output). Reading slowly slows the command, never the daemon's memory. */
  readonly stdout: Readable;
  /** The command's stderr; empty with a tty. */
  readonly stderr: Readable;
  /**
   * The command's stdin (when opened with `stdin: true`): end() sends EOF. Writes after the
   * session ended are dropped, as bytes written to a pipe whose reader has gone.
   */
  readonly stdin: Writable;
  /** Sends a signal (name without SIG) to the remote command. */
  kill(signal?: string): void;
  /** Tells the remote pty its new size (tty sessions). */
  resize(cols: number, rows: number): void;
  /**
   * Settles once the command has ended and stdout/stderr have had all their bytes: its exit code,
   * or the signal that killed it. Rejects with RpcError when the daemon reports an error or the
   * connection drops first.
   */
  readonly exit: Promise<ExitStatus>;
}

function toRpcError(code: string, message: string, opId: string): RpcError {
  return new RpcError((ERROR_CODES as readonly string[]).includes(code) ? (code as ErrorCode) : "internal", message, opId);
}

/**
 * The client half shared by exec and file streams: frames to Readables with
 * backpressure, a Writable to stdin frames, and the exit/error outcome.
 */
class Session implements ExecSession {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: Writable;
  readonly exit: Promise<ExitStatus>;
  private settled = false;

  constructor(private readonly fc: FrameConn, readonly opId: string, label: string, signal: AbortSignal | undefined) {
    const paused = new Set<Readable>();
    const readable = (): Readable => {
      const r: Readable = new Readable({
        read: () => {
          if (paused.delete(r)) fc.resume();
        },
      });
      return r;
    };
    this.stdout = readable();
    this.stderr = readable();
    const deliver = (r: Readable, data: Uint8Array): void => {
      if (!r.push(data) && !paused.has(r)) {
        paused.add(r);
        fc.pause();
      }
    };
    this.stdin = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (chunk.length === 0 || fc.send({ type: "stdin", data: chunk })) cb();
        else void fc.drained().then(() => { cb(); });
      },
      final: (cb) => {
        fc.send({ type: "stdin-eof" });
        cb();
      },
    });
    let resolveExit!: (s: ExitStatus) => void;
    let rejectExit!: (e: Error) => void;
    this.exit = new Promise<ExitStatus>((res, rej) => {
      resolveExit = res;
      rejectExit = rej;
    });
    // A caller that only reads the streams must not crash on an unobserved rejection; awaiting still sees it.
    this.exit.catch(() => undefined);
    const finish = (outcome: { status: ExitStatus } | { error: RpcError }): void => {
      if (this.settled) return;
      this.settled = true;
      this.stdout.push(null);
      this.stderr.push(null);
      signal?.removeEventListener("abort", onAbort);
      if ("status" in outcome) resolveExit(outcome.status);
      else rejectExit(outcome.error);
      fc.end();
    };
    const onAbort = (): void => {
      this.kill("TERM");
      fc.end();
    };
    fc.on("frame", (f: Frame) => {
      switch (f.type) {
        case "stdout":
          deliver(this.stdout, f.data);
          break;
        case "stderr":
          deliver(this.stderr, f.data);
          break;
        case "exit":
          finish({ status: f.status });
          break;
        case "error":
          finish({ error: toRpcError(f.code, f.message, opId) });
          break;
        default:
          // Client-bound frames only; anything else from the daemon is ignored.
          break;
      }
    });
    fc.on("bad", (e: Error) => { finish({ error: new RpcError("internal", `${label} broke the frame protocol: ${e.message}`, opId) }); });
    fc.on("close", () => {
      finish({ error: new RpcError("unavailable", signal?.aborted === true ? "aborted" : `${label} closed the connection before the command's exit status`, opId) });
    });
    if (signal !== undefined) {
      if (signal.aborted) queueMicrotask(onAbort);
      else signal.addEventListener("abort", onAbort, { once: true });
    }
  }

  kill(signal = "TERM"): void {
    if (!this.settled) this.fc.send({ type: "signal", signal: signal.replace(/^SIG/, "") });
  }

  resize(cols: number, rows: number): void {
    if (!this.settled) this.fc.send({ type: "resize", cols, rows });
  }
}

async function openSession(dial: Dial, method: string, params: unknown, options: StreamCallOptions): Promise<Session> {
  const opened = await openStream(dial, method, params, options.opId ?? newOpId(), options.signal);
  return new Session(new FrameConn(opened.conn, opened.head), opened.opId, dial.label, options.signal);
}

/**
 * Runs `params.argv` in the VM over the daemon's SSH connection to it (no ssh
 * process on this host). Resolves once the daemon has opened the channel;
 * an unknown VM, a stopped one or bad params reject with RpcError.
 */
export async function openExec(dial: Dial, params: ExecParams, options: StreamCallOptions = {}): Promise<ExecSession> {
  const s = await openSession(dial, "vm.exec", params, options);
  if (!params.stdin) s.stdin.end();
  return s;
}

export interface FileRef {
  readonly name: string;
  /** Absolute path in the guest. */
  readonly path: string;
}

/**
 * A guest file's bytes as a stream. Errors (no such VM or file, a dropped
 * connection) are emitted as the stream's 'error' with an RpcError.
 */
export function readFile(dial: Dial, params: FileRef, options: StreamCallOptions = {}): Readable {
  const out = new Readable({ read: () => undefined });
  let source: Readable | undefined;
  out._read = () => { source?.resume(); };
  openSession(dial, "vm.file_read", { name: params.name, path: params.path }, options).then(
    (s) => {
      source = s.stdout;
      s.stdout.on("data", (chunk: Buffer) => {
        if (!out.push(chunk)) s.stdout.pause();
      });
      s.exit.then(
        (st) => {
          if (st.code === 0) out.push(null);
          else out.destroy(new RpcError("operation_failed", `reading ${params.path} in ${params.name} failed (exit ${String(st.code ?? st.signal)})`, s.opId));
        },
        (e: unknown) => { out.destroy(e as Error); },
      );
    },
    (e: unknown) => { out.destroy(e as Error); },
  );
  return out;
}

/** Writes `source` to a guest file (created or truncated); resolves once the guest has all of it. */
export async function writeFile(dial: Dial, params: FileRef & { readonly mode?: number }, source: Readable, options: StreamCallOptions = {}): Promise<void> {
  const s = await openSession(dial, "vm.file_write", { name: params.name, path: params.path, ...(params.mode !== undefined ? { mode: params.mode } : {}) }, options);
  const fed = new Promise<void>((resolve, reject) => {
    source.on("error", reject);
    s.stdin.on("error", reject);
    s.stdin.on("finish", resolve);
    source.pipe(s.stdin);
  });
  const [st] = await Promise.all([s.exit, fed.catch((e: unknown) => {
    // A failed source must not leave a partial file looking complete: end without EOF.
    s.kill("TERM");
    throw e;
  })]);
  if (st.code !== 0) throw new RpcError("operation_failed", `writing ${params.path} in ${params.name} failed (exit ${String(st.code ?? st.signal)})`, s.opId);
}

/** A guest directory's entries (a plain call). */
export async function listFiles(dial: Dial, params: FileRef, options: { readonly opId?: string } = {}): Promise<FileEntry[]> {
  const r = (await callOver(dial, "vm.file_list", { name: params.name, path: params.path }, options)) as { entries: FileEntry[] };
  return r.entries;
}

/** Removes a guest file, or a tree with `recursive` (a plain call). */
export async function removeFile(dial: Dial, params: FileRef & { readonly recursive?: boolean }, options: { readonly opId?: string } = {}): Promise<void> {
  await callOver(dial, "vm.file_remove", { name: params.name, path: params.path, ...(params.recursive !== undefined ? { recursive: params.recursive } : {}) }, options);
}
