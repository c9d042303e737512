import { resolveLayout } from "../paths/paths.js";
import { isRpcError } from "../rpc/errors.js";
import { newOpId } from "../rpc/opid.js";
import { callOver, unixDial } from "../rpc/unix-client.js";
import { UsageError, type CliContext, type Command, type Output } from "./command.js";
import { COMMANDS } from "./commands/index.js";
import { INTERRUPTED_EXIT, InterruptedError } from "./interrupt.js";
import { daemonDownHint } from "./commands/system/status.js";

export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly env: Readonly<Record<string, string | undefined>>;
}

function findCommand(args: readonly string[]): { command: Command; rest: readonly string[] } | undefined {
  let best: { command: Command; rest: readonly string[]; len: number } | undefined;
  for (const command of COMMANDS) {
    for (const path of [command.path, ...(command.aliases ?? [])]) {
      if (path.length <= args.length && path.every((w, i) => args[i] === w) && (best === undefined || path.length > best.len)) {
        best = { command, rest: args.slice(path.length), len: path.length };
      }
    }
  }
  return best;
}

function help(prefix: readonly string[]): string {
  const rows = COMMANDS.filter((c) => prefix.every((w, i) => c.path[i] === w)).map((c) => `  ${c.usage.padEnd(58)} ${c.summary}`);
  return `usage: banger <command> [flags]\n\ncommands:\n${rows.join("\n")}\n`;
}

/** Runs one CLI invocation; returns the exit code (0 ok, 1 failure, 2 usage). */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  if (args.length === 0 || args[0] === "help" || args[0] === "--help" || args[0] === "-h") {
    io.stdout.write(help([]));
    return args.length === 0 ? 2 : 0;
  }
  const found = findCommand(args);
  if (found === undefined) {
    io.stderr.write(`banger: unknown command ${JSON.stringify(args.join(" "))}\n\n${help(args.slice(0, 1))}`);
    return 2;
  }
  if (found.rest.includes("--help") || found.rest.includes("-h")) {
    io.stdout.write(`usage: ${found.command.usage}\n\n${found.command.summary}\n`);
    return 0;
  }
  const layout = resolveLayout(io.env);
  const opId = newOpId();
  const dial = unixDial(layout.daemonSocket);
  const ctx: CliContext = {
    layout,
    stdout: io.stdout,
    stderr: io.stderr,
    env: io.env,
    opId,
    dial,
    // The cast is the one place the daemon's answer meets its type: the daemon validated it against the method's schema.
    call: async (method, params, timeoutMs, callOpId) => (await callOver(dial, method, params, timeoutMs === undefined ? { opId: callOpId ?? opId } : { opId: callOpId ?? opId, timeoutMs })) as never,
  };
  try {
    return await found.command.run(found.rest, ctx);
  } catch (e) {
    // Ctrl-C: the command has said what became of its operation.
    if (e instanceof InterruptedError) return INTERRUPTED_EXIT;
    // By name too: commands bundled apart (banger-system.cjs, banger-doctor.cjs) carry their own copy of the class.
    if (e instanceof UsageError || (e instanceof Error && e.name === "UsageError") || (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"))) {
      io.stderr.write(`error: ${e.message}\nusage: ${found.command.usage}\n`);
      return 2;
    }
    if (isRpcError(e)) {
      // A daemon that is not there: say what starts it on this host, not just that it is missing.
      const hint = e.code === "unavailable" && e.message.includes(layout.daemonSocket) ? `\n${daemonDownHint(layout.installRoot !== undefined)}` : "";
      io.stderr.write(`error: ${e.message} (${e.opId ?? opId})${hint}\n`);
      return 1;
    }
    io.stderr.write(`error: ${e instanceof Error ? e.message : String(e)} (${opId})\n`);
    return 1;
  }
}
