import { resolveContext } from "../config/context-dial.js";
import { resolveLayout } from "../paths/paths.js";
import { isRpcError } from "../rpc/errors.js";
import { newOpId } from "../rpc/opid.js";
import { callOver, unixDial, type Dial } from "../rpc/unix-client.js";
import { DEFAULT_CONTEXT, type RemoteContext } from "../config/contexts.js";
import { UsageError, type CliContext, type Command, type Output } from "./command.js";
import { INTERRUPTED_EXIT, InterruptedError } from "./interrupt.js";
import { daemonDownHint } from "./daemon-down.js";
import { nearest } from "./flags.js";
import { commandHelp, defaultsFor, groupHelp, helpWidth, isGroup, usageText } from "./help.js";

export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The command `args` selects among `commands`: the longest path (or alias) they start with; the rest are its arguments. */
export function findCommand(args: readonly string[], commands: readonly Command[]): { command: Command; rest: readonly string[] } | undefined {
  let best: { command: Command; rest: readonly string[]; len: number } | undefined;
  for (const command of commands) {
    for (const path of [command.path, ...(command.aliases ?? [])]) {
      if (path.length <= args.length && path.every((w, i) => args[i] === w) && (best === undefined || path.length > best.len)) {
        best = { command, rest: args.slice(path.length), len: path.length };
      }
    }
  }
  return best;
}

function commandsUnder(prefix: readonly string[], commands: readonly Command[]): string[] {
  const words = new Set<string>();
  for (const c of commands) {
    if (c.hidden === true) continue;
    for (const path of [c.path, ...(c.aliases ?? [])]) if (path.length > prefix.length && prefix.every((w, i) => path[i] === w)) words.add(path[prefix.length] ?? "");
  }
  return [...words];
}

/** The arguments before `--`: only there is -h a request for help (after it, it is the guest command's). */
export function beforeDashDash(args: readonly string[]): readonly string[] {
  const dd = args.indexOf("--");
  return dd === -1 ? args : args.slice(0, dd);
}

/** `banger help [WORDS...]`, `banger WORDS --help`: a command's or a group's help; undefined when WORDS name neither. */
async function helpFor(words: readonly string[], io: CliIo, commands: readonly Command[]): Promise<string | undefined> {
  const width = helpWidth(io.stdout.columns);
  if (isGroup(words)) return groupHelp(words, commands, width);
  const found = findCommand(words, commands);
  if (found === undefined || found.rest.length > 0 || found.command.hidden === true) return undefined;
  return commandHelp(found.command, width, await defaultsFor(found.command));
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

/** An unknown command: the nearest one, and the group's commands. */
function unknownCommand(args: readonly string[], io: CliIo, commands: readonly Command[]): number {
  let prefix: readonly string[] = [];
  while (prefix.length < args.length && isGroup([...prefix, args[prefix.length] ?? ""])) prefix = args.slice(0, prefix.length + 1);
  const word = args[prefix.length] ?? "";
  const guess = word.startsWith("-") ? undefined : nearest(word, commandsUnder(prefix, commands));
  const what = [...prefix, word].join(" ");
  io.stderr.write(`banger: unknown command ${JSON.stringify(what)}${guess !== undefined ? `; did you mean "${[...prefix, guess].join(" ")}"?` : ""}\n\n${groupHelp(prefix, commands, helpWidth(undefined))}`);
  return 2;
}

/**
 * Runs one CLI invocation among `commands` (all of them, src/cli/full.ts; or the quick ones,
 * src/cli/quick.ts); returns the exit code (0 ok, 1 failure, 2 usage).
 */
export async function runCli(argv: readonly string[], io: CliIo, commands: readonly Command[]): Promise<number> {
  let global;
  try {
    global = splitGlobalFlags(argv);
  } catch (e) {
    io.stderr.write(`error: ${(e as Error).message}\n`);
    return 2;
  }
  const args = global.rest;
  if (args.length === 0) {
    io.stdout.write(groupHelp([], commands, helpWidth(io.stdout.columns)));
    return 2;
  }
  if (args[0] === "help" || args[0] === "--help" || args[0] === "-h") {
    const text = await helpFor(args.slice(1), io, commands);
    if (text === undefined) return unknownCommand(args.slice(1), io, commands);
    io.stdout.write(text);
    return 0;
  }
  const found = findCommand(args, commands);
  const asked = beforeDashDash(found?.rest ?? args);
  if (asked.includes("--help") || asked.includes("-h")) {
    const words = found !== undefined ? found.command.path : args.filter((a) => !a.startsWith("-"));
    const text = await helpFor(words, io, commands);
    if (text === undefined) return unknownCommand(words, io, commands);
    io.stdout.write(text);
    return 0;
  }
  if (found === undefined) {
    // `banger vm`, `banger system`: a group alone lists its commands.
    if (isGroup(args)) {
      io.stdout.write(groupHelp(args, commands, helpWidth(io.stdout.columns)));
      return 0;
    }
    return unknownCommand(args, io, commands);
  }
  if (asked.some((a) => a === "--context" || a.startsWith("--context="))) {
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
    // Ctrl-C: the command has said what became of its operation.
    if (e instanceof InterruptedError) return INTERRUPTED_EXIT;
    // By name too: commands bundled apart (banger-system.cjs, banger-doctor.cjs) carry their own copy of the class.
    if (e instanceof UsageError || (e instanceof Error && e.name === "UsageError") || (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"))) {
      io.stderr.write(`error: ${e.message}\nusage: ${usageText(found.command, helpWidth(undefined))}\nsee: banger ${found.command.path.join(" ")} --help\n`);
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
