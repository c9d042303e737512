import type { FrameConn } from "../../rpc/frame-conn.js";
import type { ExitStatus, Frame } from "../../rpc/frames.js";
import type { Logger } from "../../system/log.js";
import type { OpenChannel } from "./pool.js";

export interface BridgeOptions {
  readonly opId: string;
  readonly vm: string;
  readonly logger: Logger;
  /**
   * exec: stderr is forwarded and the exit status reported as is. file: stderr is kept (capped)
   * and a non-zero exit becomes an error frame carrying it, coded by `failure`.
   */
  readonly kind: "exec" | "file";
  readonly failure?: (status: ExitStatus, stderr: string) => { code: string; message: string };
  /**
   * The command announces its pid as its first line (PID_ANNOUNCE) on this stream; the line is
   * taken out and signals go to that pid through `kill`, because dropbear ignores SSH signal
   * requests (measured: TERM, INT and HUP to a `sleep` did nothing).
   */
  readonly pid?: { readonly stream: "stdout" | "stderr"; readonly kill: (pid: number, signal: string) => void };
}

/** What the guest prints first: `echo "banger-pid $$" >&2`; on a pty it arrives on stdout with \r\n. */
export const PID_ANNOUNCE = 'echo "banger-pid $$" >&2';
const PID_LINE = /^banger-pid ([0-9]{1,10})\r?\n/;
const PID_LINE_MAX = 32;

const STDERR_KEEP = 4096;

/**
 * Joins an SSH session channel and a client's frame connection, both ways
 * flow-controlled: when one side's write() says its buffer is full the other
 * side is paused until it drains, so a slow reader (or a slow guest) holds
 * back its producer instead of growing the daemon's memory.
 */
export function bridgeChannel(open: Pick<OpenChannel, "channel" | "exitStatus">, fc: FrameConn, opts: BridgeOptions): void {
  const { channel, exitStatus } = open;
  let finished = false;
  let stdinDone = false;
  let kept = "";
  const started = Date.now();
  let pid: number | undefined;
  let announce: Buffer | undefined = opts.pid === undefined ? undefined : Buffer.alloc(0);
  const early: string[] = [];

  /** Takes the announcement off the front of its stream; what follows it (or a stream without one) passes on. */
  const stripPid = (chunk: Buffer): Buffer | undefined => {
    if (announce === undefined) return chunk;
    const buf = Buffer.concat([announce, chunk]);
    const m = PID_LINE.exec(buf.subarray(0, PID_LINE_MAX).toString("latin1"));
    if (m !== null) {
      pid = Number(m[1]);
      announce = undefined;
      // A signal that came before the pid was known goes now.
      for (const name of early.splice(0)) opts.pid?.kill(pid, name);
      return buf.subarray(m[0].length);
    }
    if (buf.length < PID_LINE_MAX && !buf.includes(0x0a)) {
      announce = buf;
      return undefined;
    }
    announce = undefined;
    return buf;
  };

  const toClient = (type: "stdout" | "stderr", source: NodeJS.ReadableStream) => (raw: Buffer): void => {
    const chunk = opts.pid?.stream === type ? stripPid(raw) : raw;
    if (chunk === undefined || chunk.length === 0) return;
    if (type === "stderr" && opts.kind === "file") {
      if (kept.length < STDERR_KEEP) kept += chunk.toString("utf8").slice(0, STDERR_KEEP - kept.length);
      return;
    }
    if (!fc.send({ type, data: chunk })) {
      source.pause();
      void fc.drained().then(() => { source.resume(); });
    }
  };
  channel.on("data", toClient("stdout", channel));
  channel.stderr.on("data", toClient("stderr", channel.stderr));

  channel.on("close", () => {
    finished = true;
    const status = exitStatus();
    const fields = { op_id: opts.opId, vm: opts.vm, duration_ms: Date.now() - started };
    if (status === undefined) {
      opts.logger.warn("exec channel lost", fields);
      fc.send({ type: "error", code: "unavailable", message: `the SSH connection to ${opts.vm} closed before the command reported its exit (did the VM stop?)` });
    } else if (opts.kind === "file" && status.code !== 0 && opts.failure !== undefined) {
      const f = opts.failure(status, kept.trim());
      opts.logger.info("file op failed", { ...fields, code: f.code });
      fc.send({ type: "error", code: f.code, message: f.message });
    } else {
      opts.logger.info("exec ended", { ...fields, exit_code: status.code, signal: status.signal });
      fc.send({ type: "exit", status });
    }
    fc.end();
  });
  channel.on("error", (e: Error) => { opts.logger.warn("exec channel error", { op_id: opts.opId, vm: opts.vm, error: e.message }); });

  const signal = (name: string): void => {
    opts.logger.info("exec signal", { op_id: opts.opId, vm: opts.vm, signal: name, pid });
    if (pid !== undefined && exitStatus() === undefined) opts.pid?.kill(pid, name);
    else if (announce !== undefined && early.length < 8) early.push(name);
    // Servers that honour signal requests (OpenSSH) get one as well.
    channel.signal(name);
  };
  const endStdin = (): void => {
    if (stdinDone) return;
    stdinDone = true;
    channel.end();
  };
  fc.on("frame", (f: Frame) => {
    if (finished) return;
    switch (f.type) {
      case "stdin":
        if (stdinDone) return;
        if (!channel.write(f.data)) {
          fc.pause();
          channel.once("drain", () => { fc.resume(); });
        }
        return;
      case "stdin-eof":
        endStdin();
        return;
      case "signal":
        signal(f.signal);
        return;
      case "resize":
        channel.setWindow(f.rows, f.cols, 0, 0);
        return;
      default:
        // Daemon-bound frames only; a client sending exit/stdout frames is ignored.
        return;
    }
  });
  // The client half-closed (it aborted, or has nothing more to say): the command's stdin ends too.
  fc.on("end", endStdin);
  // The client is gone: nobody reads the output any more, so the command is ended, not orphaned.
  fc.on("close", () => {
    if (finished) return;
    opts.logger.info("exec client left; ending the command", { op_id: opts.opId, vm: opts.vm });
    signal("TERM");
    endStdin();
    channel.close();
  });
  fc.on("bad", (e: Error) => { opts.logger.warn("exec client broke the frame protocol", { op_id: opts.opId, vm: opts.vm, error: e.message }); });
}
