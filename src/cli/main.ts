import { resolveContext } from "../config/context-dial.js";
import { resolveLayout } from "../paths/paths.js";
import { isRpcError } from "../rpc/errors.js";
import { newOpId } from "../rpc/opid.js";
import { callOver, unixDial, type Dial } from "../rpc/unix-client.js";
import { DEFAULT_CONTEXT, type RemoteContext } from "../config/contexts.js";
import { UsageError, type CliContext, type Command, type Output } from "./command.js";
import { COMMANDS } from "./commands/index.js";
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
  const rows = COMMANDS.filter((c) => c.hidden !== true && prefix.every((w, i) => c.path[i] === w)).map((c) => `  ${c.usage.padEnd(58)} ${c.summary}`);
  return `usage: banger [--context NAME] <command> [flags]\n\n  --context NAME  talk to the daemon of context NAME (banger context ls); default: BANGER_CONTEXT, else the current one\n\ncommands:\n${rows.join("\n")}\n`;
}

/** Leading global flags (before the command words): `--context NAME` or `--context=NAME`. */
export function splitGlobalFlags(args: readonly string[]): { context: string | undefined; rest: readonly string[] } {
  let context: string | undefined;
  let i = 0;
  while (i < args.length) {
    const a = args[i] ?? "";
    if (a === "--context") {
      const v = args[i + 1];
      if (v === undefined || v.startsWith("-")) throw new UsageError("--context needs a context name (banger context ls lists them)");
      context = v;
      i += 2;
    } else if (a.startsWith("--context=")) {
      context = a.slice("--context=".length);
      if (context === "") throw new UsageError("--context needs a context name (banger context ls lists them)");
      i += 1;
    } else break;
  }
  return { context, rest: args.slice(i) };
}

/** The subcommand's own words up to `--` (what follows belongs to a guest command). */
function ownWords(rest: readonly string[]): readonly string[] {
  const dd = rest.indexOf("--");
  return dd === -1 ? rest : rest.slice(0, dd);
}

/** Runs one CLI invocation; returns the exit code (0 ok, 1 failure, 2 usage). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let global;
  try {
    global = splitGlobalFlags(argv);
  } catch (e) {
    io.stderr.write(`error: ${(e as Error).message}\n`);
    return 2;
  }
  const args = global.rest;
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
  if (ownWords(found.rest).some((a) => a === "--context" || a.startsWith("--context="))) {
    io.stderr.write(`error: --context goes before the command: banger --context NAME ${found.command.path.join(" ")} ...\n`);
    return 2;
  }
  if (found.command.local === true && global.context !== undefined && global.context !== DEFAULT_CONTEXT) {
    io.stderr.write(`error: banger ${found.command.path.join(" ")} acts on this host only; drop --context (to run it on another host: ssh HOST banger ${found.command.path.join(" ")})\n`);
    return 2;
  }
  const layout = resolveLayout(io.env);
  const opId = newOpId();
  let dial: Dial;
  let remote: RemoteContext | undefined;
  if (found.command.local === true) dial = unixDial(layout.daemonSocket);
  else {
    try {
      ({ dial, remote } = resolveContext(global.context, layout, io.env));
    } catch (e) {
      io.stderr.write(`error: ${e instanceof Error ? e.message : String(e)} (${opId})\n`);
      return 1;
    }
  }
  const ctx: CliContext = {
    layout,
    stdout: io.stdout,
    stderr: io.stderr,
    env: io.env,
    opId,
    dial,
    ...(remote !== undefined ? { remote } : {}),
    // The cast is the one place the daemon's answer meets its type: the daemon validated it against the method's schema.
    call: async (method, params, timeoutMs, callOpId) => (await callOver(dial, method, params, timeoutMs === undefined ? { opId: callOpId ?? opId } : { opId: callOpId ?? opId, timeoutMs })) as never,
  };
  try {
    return await found.command.run(found.rest, ctx);
  } catch (e) {
    // By name too: commands bundled apart (banger-system.cjs, banger-doctor.cjs) carry their own copy of the class.
    if (e instanceof UsageError || (e instanceof Error && e.name === "UsageError") || (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"))) {
      io.stderr.write(`error: ${e.message}\nusage: ${found.command.usage}\n`);
      return 2;
    }
    if (isRpcError(e)) {
      // A daemon that is not there: say what starts it on this host, not just that it is missing.
      const hint = remote === undefined && e.code === "unavailable" && e.message.includes(layout.daemonSocket) ? `\n${daemonDownHint(layout.installRoot !== undefined)}` : "";
      io.stderr.write(`error: ${e.message} (${e.opId ?? opId})${hint}\n`);
      return 1;
    }
    io.stderr.write(`error: ${e instanceof Error ? e.message : String(e)} (${opId})\n`);
    return 1;
  }
}
