import { DEFAULT_CONTEXT, findContext, readContexts, writeContexts } from "../../../config/contexts.js";
import { contextsFile } from "../../../paths/paths.js";
import { UsageError, type Command } from "../../command.js";
import { parseFlags } from "../../flags.js";

export const contextUseCommand: Command = {
  path: ["context", "use"],
  local: true,
  summary: "make NAME the context commands use from now on (default: this host's daemon)",
  usage: "banger context use NAME",
  flags: {},
  run(argv, ctx) {
    const args = parseFlags({}, argv).positionals;
    if (args.length !== 1 || args[0]?.startsWith("-") === true) throw new UsageError("give one context name (banger context ls lists them)");
    const name = args[0] ?? "";
    const file = contextsFile(ctx.env);
    const doc = readContexts(file);
    findContext(doc, name, "flag");
    writeContexts(file, { contexts: doc.contexts, current: name === DEFAULT_CONTEXT ? undefined : name });
    ctx.stdout.write(`${name}\n`);
    const env = ctx.env["BANGER_CONTEXT"];
    if (env !== undefined && env !== "" && env !== name) ctx.stderr.write(`warning: BANGER_CONTEXT=${env} is set here and wins over the current context; unset it to use ${name}\n`);
    return Promise.resolve(0);
  },
};
