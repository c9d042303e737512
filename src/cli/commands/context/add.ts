import { parseArgs } from "node:util";
import { contextNameProblem, DEFAULT_CONTEXT, readContexts, writeContexts } from "../../../config/contexts.js";
import { formatSshUrl, parseSshUrl } from "../../../model/ssh-url.js";
import { contextsFile } from "../../../paths/paths.js";
import { UsageError, type Command } from "../../command.js";

const ADD_OPTIONS = {
  use: { type: "boolean", description: "make the new context the current one" },
} as const;

export const contextAddCommand: Command = {
  path: ["context", "add"],
  local: true,
  summary: "name another host's banger, reached over your own ssh (config, keys, agent)",
  usage: "banger context add [--use] NAME ssh://[user@]host[:port]\n" +
    "  --use  make it the current context (as banger context use NAME)",
  run(args, ctx) {
    const { values, positionals } = parseArgs({ args: [...args], options: ADD_OPTIONS, strict: true, allowPositionals: true });
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
