import type { RemoteContext } from "../config/contexts.js";
import type { Layout } from "../paths/paths.js";
import type { Dial } from "../rpc/unix-client.js";
import type { ParamsOf, ResultOf } from "../rpc/descriptor.js";
import type { DaemonMethodName, DaemonMethods } from "../rpc/daemon/methods.js";
import type { FlagTable, NameKind } from "./flags.js";

/** A wrong flag or argument: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export interface Output {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  /** The terminal's width, when it is one: help wraps to it. */
  readonly columns?: number | undefined;
}

/** What a subcommand gets: streams, paths, the op id minted for this invocation, and a daemon caller. */
export interface CliContext {
  readonly layout: Layout;
  readonly stdout: Output;
  readonly stderr: Output;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Minted once per CLI invocation and sent with every daemon call, so failures can be traced in logs. */
  readonly opId: string;
  /** Opens a connection to the daemon this invocation talks to (streams such as exec channels use it; `call` does too). */
  readonly dial: Dial;
  /** The remote host this invocation talks to through a context (absent: the local daemon, context "default"). */
  readonly remote?: RemoteContext;
  /**
   * Calls a daemon method by name, typed from its descriptor; no schema is loaded (the daemon validates).
   * `opId` overrides the invocation's op id (one CLI command starting several operations needs one id each).
   */
  /** Where Ctrl-C is heard while an operation is followed (SIGINT of this process when absent; tests pass their own). */
  readonly interrupts?: InterruptHook;
  call<M extends DaemonMethodName>(method: M, params: ParamsOf<DaemonMethods[M]>, timeoutMs?: number, opId?: string): Promise<ResultOf<DaemonMethods[M]>>;
}

/** Calls `handler` on each interrupt (Ctrl-C) until the returned function is called. */
export type InterruptHook = (handler: () => void) => () => void;

export interface Command {
  /** Words that select the command, e.g. ["vm", "run"]. */
  readonly path: readonly string[];
  readonly aliases?: readonly (readonly string[])[];
  /** One line for group listings; help prints it wrapped. */
  readonly summary: string;
  readonly usage: string;
  /** Acts on this host whatever the context (`context ...`, `version`, installs): --context is refused, a chosen one ignored. */
  readonly local?: boolean;
  /** More prose for `--help`, after the summary. */
  readonly description?: string;
  /** The flags the command parses (src/cli/flags.ts); help and completion read them from here. */
  readonly flags?: FlagTable;
  readonly examples?: readonly string[];
  /** What the command's arguments name, so completion can offer them from the daemon. */
  readonly completes?: NameKind;
  /** Plumbing (`system dial-stdio`, the completion scripts' helper): runs, but is left out of help and completion. */
  readonly hidden?: boolean;
  run(args: readonly string[], ctx: CliContext): Promise<number>;
}

export function printJson(out: Output, value: unknown): void {
  out.write(JSON.stringify(value, null, 2) + "\n");
}
