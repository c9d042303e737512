import { contextNameProblem, DEFAULT_CONTEXT, readContexts, writeContexts } from "../../../config/contexts.js";
import { contextsFile } from "../../../paths/paths.js";
import { UsageError, type Command } from "../../command.js";
import { parseFlags } from "../../flags.js";

export const contextRmCommand: Command = {
  path: ["context", "rm"],
  aliases: [["context", "remove"]],
  local: true,
  summary: "forget contexts (the remote hosts and their VMs are not touched); the current one falls back to default",
  usage: "banger context rm NAME...",
  flags: {},
  run(argv, ctx) {
    const args = parseFlags({}, argv).positionals;
    if (args.length === 0) throw new UsageError("give at least one context name");
    for (const name of args) {
      if (name === DEFAULT_CONTEXT) throw new UsageError(`"${DEFAULT_CONTEXT}" is this host's own daemon and cannot be removed`);
      const problem = contextNameProblem(name);
      if (problem !== undefined) throw new UsageError(problem);
    }
    const file = contextsFile(ctx.env);
    const doc = readContexts(file);
    const missing = args.filter((n) => !doc.contexts.some((c) => c.name === n));
    // All or nothing: a typo in one name leaves every context in place.
    if (missing.length > 0) throw new Error(`no context ${missing.join(", ")}; nothing removed (banger context ls lists them)`);
    const resetCurrent = doc.current !== undefined && args.includes(doc.current);
    const contexts = doc.contexts.filter((c) => !args.includes(c.name));
    writeContexts(file, { current: resetCurrent ? undefined : doc.current, contexts });
    for (const name of args) ctx.stdout.write(`${name}\n`);
    if (resetCurrent) ctx.stderr.write(`the current context was removed; commands now use ${DEFAULT_CONTEXT} (this host)\n`);
    return Promise.resolve(0);
  },
};
