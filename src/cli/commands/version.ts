import { parseArgs } from "node:util";
import { VERSION } from "../../version.js";
import { printJson, type Command } from "../command.js";

export const versionCommand: Command = {
  path: ["version"],
  aliases: [["--version"]],
  summary: "print banger's version",
  usage: "banger version [--json]",
  run(args, ctx) {
    const { values } = parseArgs({ args: [...args], options: { json: { type: "boolean" } }, strict: true });
    const doc = { version: VERSION, node: process.versions.node, platform: `${process.platform}/${process.arch}` };
    if (values.json === true) printJson(ctx.stdout, doc);
    else ctx.stdout.write(`banger ${doc.version} (node ${doc.node}, ${doc.platform})\n`);
    return Promise.resolve(0);
  },
};
