import { contextNameProblem, DEFAULT_CONTEXT, readContexts, writeContexts } from "../../../config/contexts.js";
import { formatSshUrl, parseSshUrl } from "../../../model/ssh-url.js";
import { contextsFile } from "../../../paths/paths.js";
import { UsageError, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";

const ADD_OPTIONS = {
  use: { type: "boolean", description: "make the new context the current one (as banger context use NAME)" },
} as const satisfies FlagTable;

export const contextAddCommand: Command = {
  path: ["context", "add"],
  local: true,
  summary: "name another host's banger, reached over your own ssh (config, keys, agent)",
  usage: "banger context add [--use] NAME ssh://[user@]host[:port]",
  flags: ADD_OPTIONS,
  examples: ["banger context add build ssh://me@build.lan", "banger context add --use lab ssh://lab:2222"],
  run(args, ctx) {
    const { values, positionals } = parseFlags(ADD_OPTIONS, args);
    const [name, urlText, extra] = positionals;
    if (name === undefined || urlText === undefined) throw new UsageError("give a NAME and an ssh://[user@]host[:port] address");
    if (extra !== undefined) throw new UsageError(`unexpected ${JSON.stringify(extra)}`);
    const nameProblem = contextNameProblem(name);
    if (nameProblem !== undefined) throw new UsageError(nameProblem);
    if (name === DEFAULT_CONTEXT) throw new UsageError(`"${DEFAULT_CONTEXT}" is this host's own daemon; pick another name`);
    const url = parseSshUrl(urlText);
    if (typeof url === "string") throw new UsageError(url);
    const file = contextsFile(ctx.env);
    const doc = readContexts(file);
    if (doc.contexts.some((c) => c.name === name)) throw new Error(`context ${name} exists; remove it first with: banger context rm ${name}`);
    writeContexts(file, { current: values.use === true ? name : doc.current, contexts: [...doc.contexts, { name, url }] });
    ctx.stdout.write(`${name}\n`);
    ctx.stderr.write(`added context ${name} (${formatSshUrl(url)})${values.use === true ? ", now the current one" : `; use it with: banger --context ${name} vm list, or banger context use ${name}`}\n`);
    return Promise.resolve(0);
  },
};
