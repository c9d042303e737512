import { parseArgs } from "node:util";
import { UsageError, type CliContext, type Command } from "../../command.js";
import { opIdFor } from "./common.js";

// Graceful stop may take the configured stop timeout (up to 600 s) before the kill.
const STOP_CALL_TIMEOUT_MS = 660_000;

async function forEachName(args: readonly string[], ctx: CliContext, act: (name: string, force: boolean, opId: string) => Promise<string>): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], options: { force: { type: "boolean", short: "f" } }, strict: true, allowPositionals: true });
  if (positionals.length === 0) throw new UsageError("give at least one VM name");
  let failed = 0;
  // Every name is attempted even when an earlier one fails; the exit code reports any failure.
  for (const [i, name] of positionals.entries()) {
    const opId = opIdFor(ctx, i);
    try {
      ctx.stdout.write(`${await act(name, values.force === true, opId)}\n`);
    } catch (e) {
      failed++;
      ctx.stderr.write(`error: ${name}: ${e instanceof Error ? e.message : String(e)} (${opId})\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}

export const vmStopCommand: Command = {
  path: ["vm", "stop"],
  summary: "stop VMs gracefully (killed after the stop timeout); --force kills at once",
  usage: "banger vm stop NAME... [--force]",
  run: (args, ctx) => forEachName(args, ctx, async (name, force, opId) => {
    const vm = await ctx.call("vm.stop", { name, ...(force ? { force } : {}) }, STOP_CALL_TIMEOUT_MS, opId);
    return `${vm.name} ${vm.state}`;
  }),
};

export const vmDeleteCommand: Command = {
  path: ["vm", "delete"],
  aliases: [["vm", "rm"]],
  summary: "delete VMs and everything they own; --force also deletes running or stuck VMs",
  usage: "banger vm delete|rm NAME... [--force]",
  run: (args, ctx) => forEachName(args, ctx, async (name, force, opId) => {
    const r = await ctx.call("vm.delete", { name, ...(force ? { force } : {}) }, STOP_CALL_TIMEOUT_MS, opId);
    return `${r.name} deleted`;
  }),
};
