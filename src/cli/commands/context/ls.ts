import { chooseContext, DEFAULT_CONTEXT, readContexts } from "../../../config/contexts.js";
import { formatSshUrl } from "../../../model/ssh-url.js";
import { contextsFile } from "../../../paths/paths.js";
import { printJson, type Command } from "../../command.js";
import { noPositionals, parseFlags, type FlagTable } from "../../flags.js";

const LS_FLAGS = {
  json: { type: "boolean", description: "print the contexts and which one is current as JSON" },
} as const satisfies FlagTable;

export const contextLsCommand: Command = {
  path: ["context", "ls"],
  aliases: [["context", "list"]],
  local: true,
  summary: "list contexts; * marks the one commands use (BANGER_CONTEXT, else banger context use)",
  usage: "banger context ls [--json]",
  flags: LS_FLAGS,
  run(args, ctx) {
    const { values, positionals } = parseFlags(LS_FLAGS, args);
    noPositionals(positionals, "banger context ls");
    const doc = readContexts(contextsFile(ctx.env));
    const current = chooseContext(undefined, ctx.env["BANGER_CONTEXT"], doc);
    const rows = [
      { name: DEFAULT_CONTEXT, url: `unix://${ctx.layout.daemonSocket}`, current: current.name === DEFAULT_CONTEXT },
      ...doc.contexts.map((c) => ({ name: c.name, url: formatSshUrl(c.url), current: current.name === c.name })),
    ];
    if (values.json === true) {
      printJson(ctx.stdout, { current: current.name, source: current.source, contexts: rows });
      return Promise.resolve(0);
    }
    const width = Math.max(4, ...rows.map((r) => r.name.length)) + 2;
    ctx.stdout.write(`  ${"NAME".padEnd(width)}DAEMON\n${rows.map((r) => `${r.current ? "* " : "  "}${r.name.padEnd(width)}${r.url}`).join("\n")}\n`);
    // A BANGER_CONTEXT naming nothing stored is shown, not hidden: every other command will fail on it.
    if (!rows.some((r) => r.current)) ctx.stderr.write(`warning: BANGER_CONTEXT=${current.name} names no context\n`);
    return Promise.resolve(0);
  },
};
