import type { OperationView } from "../rpc/daemon/operation.js";
import type { CliContext, Output } from "./command.js";

/**
 * Follows a daemon operation to its end, drawing each step with its elapsed
 * time on stderr (stdout stays clean for `--json` and for `vm run -- CMD`
 * output). On a TTY the running step gets a spinner line that is redrawn in
 * place; otherwise one plain line per finished step, so logs and CI read well.
 */
export interface FollowOptions {
  /** Draw nothing (e.g. --json); still waits for the end. */
  readonly quiet?: boolean;
  readonly opIdForCalls?: string;
  /** Stops following (the promise rejects with the signal's reason); the operation goes on. */
  readonly signal?: AbortSignal;
}

/** How long one operation.wait may wait: short on a TTY so the spinner keeps turning, long otherwise. */
const SPINNER_TICK_MS = 120;
const QUIET_WAIT_MS = 10_000;
/** A follower that can be stopped asks often enough that, once stopped, no poll holds the process for long. */
const STOPPABLE_WAIT_MS = 2_000;
/** Without a TTY a long step (a debootstrap, a slow boot) says it is still running this often, so logs show the CLI is alive. */
export const HEARTBEAT_MS = 30_000;

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export function formatMs(ms: number | null): string {
  if (ms === null) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

const MARK: Record<string, string> = { succeeded: "ok", failed: "FAILED", undone: "undone", undo_failed: "UNDO FAILED" };

export class ProgressRenderer {
  private readonly printed = new Map<string, string>();
  private frame = 0;
  private spinnerShown = false;

  /** When each running step last got a line (non-TTY heartbeat). */
  private readonly lastBeat = new Map<string, number>();

  constructor(private readonly out: Output, private readonly label: string, private readonly now: () => number = Date.now) {}

  private get tty(): boolean {
    return this.out.isTTY === true;
  }

  private clearSpinner(): void {
    if (this.tty && this.spinnerShown) {
      this.out.write("\r\x1b[2K");
      this.spinnerShown = false;
    }
  }

  render(op: OperationView): void {
    const width = Math.max(...op.steps.map((s) => s.name.length), 4);
    for (const s of op.steps) {
      const mark = MARK[s.state];
      if (mark === undefined || this.printed.get(s.name) === s.state) continue;
      this.clearSpinner();
      const detail = s.error !== undefined && s.state !== "undone" ? `: ${s.error}` : "";
      this.out.write(`  ${s.name.padEnd(width)}  ${mark}${s.state === "succeeded" || s.state === "failed" ? ` (${formatMs(s.elapsed_ms)})` : ""}${detail}\n`);
      this.printed.set(s.name, s.state);
    }
    const running = op.steps.find((s) => s.state === "running");
    if (!this.tty && op.state === "running") this.heartbeat(op.steps.filter((s) => s.state === "running"));
    if (this.tty && running !== undefined && op.state === "running") {
      const since = running.started_at !== null ? this.now() - Date.parse(running.started_at) : 0;
      this.out.write(`\r\x1b[2K${SPINNER[this.frame++ % SPINNER.length] ?? "*"} ${this.label}: ${running.name} ${formatMs(Math.max(0, since))}`);
      this.spinnerShown = true;
    }
    if (op.state !== "running") this.clearSpinner();
  }

  private heartbeat(running: readonly OperationView["steps"][number][]): void {
    const now = this.now();
    for (const s of running) {
      const started = s.started_at !== null ? Date.parse(s.started_at) : now;
      const last = this.lastBeat.get(s.name) ?? started;
      if (now - last < HEARTBEAT_MS) continue;
      this.out.write(`  ${s.name}  still running (${formatMs(now - started)})\n`);
      this.lastBeat.set(s.name, now);
    }
  }
}

export async function followOperation(ctx: CliContext, operationId: string, label: string, opts: FollowOptions = {}): Promise<OperationView> {
  const renderer = opts.quiet === true ? undefined : new ProgressRenderer(ctx.stderr, label);
  const waitMs = renderer !== undefined && ctx.stderr.isTTY === true ? SPINNER_TICK_MS : opts.signal !== undefined ? STOPPABLE_WAIT_MS : QUIET_WAIT_MS;
  // A long poll from revision 0 (a new operation's): the daemon answers the moment a step changes, so
  // the CLI neither lags behind the operation nor keeps the daemon busy answering "nothing new", and
  // needs no separate operation.get first (an operation that already moved on is answered at once).
  let revision = 0;
  for (;;) {
    const op = await untilAborted(ctx.call("operation.wait", { id: operationId, after_revision: revision, timeout_ms: waitMs }, waitMs + 10_000, opts.opIdForCalls), opts.signal);
    renderer?.render(op);
    if (op.state !== "running") return op;
    revision = op.revision;
  }
}

/** Total wall time of an operation from its creation to its last update. */
export function operationElapsedMs(op: OperationView): number {
  return Math.max(0, Date.parse(op.updated_at) - Date.parse(op.created_at));
}

/** `p`, or a rejection with the signal's reason as soon as it aborts (what `p` does then is ignored). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(signal.reason as Error); };
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => { signal.removeEventListener("abort", onAbort); });
  });
}
