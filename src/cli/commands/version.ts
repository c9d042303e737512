import { VERSION } from "../../version.js";
import { printJson, type Command } from "../command.js";
import { noPositionals, parseFlags, type FlagTable } from "../flags.js";

const VERSION_FLAGS = { json: { type: "boolean", description: "print {version, node, platform} as JSON" } } as const satisfies FlagTable;

export const versionCommand: Command = {
  path: ["version"],
  aliases: [["--version"], ["-V"]],
  summary: "print banger's version",
  usage: "banger version|--version|-V [--json]",
  flags: VERSION_FLAGS,
  examples: ["banger --version"],
  run(args, ctx) {
    const { values, positionals } = parseFlags(VERSION_FLAGS, args);
    noPositionals(positionals, "banger version");
    const doc = { version: VERSION, node: process.versions.node, platform: `${process.platform}/${process.arch}` };
    if (values.json === true) printJson(ctx.stdout, doc);
    else ctx.stdout.write(`banger ${doc.version} (node ${doc.node}, ${doc.platform})\n`);
    return Promise.resolve(0);
  },
};
