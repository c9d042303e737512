import { parseArgs } from "node:util";
import { UsageError, type CliContext, type Command } from "../../command.js";
import { opIdFor, waitForVm } from "./common.js";

/** start and restart share their shape: one operation per VM, followed with progress. */
async function startLike(kind: "start" | "restart", args: readonly string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], options: { force: { type: "boolean" } }, strict: true, allowPositionals: true });
  if (positionals.length === 0) throw new UsageError("give at least one VM name");
  if (kind === "start" && values.force === true) throw new UsageError("--force applies to stop, restart and rm");
  let failed = 0;
  for (const [i, name] of positionals.entries()) {
    const opId = opIdFor(ctx, i);
    try {
      const ref = kind === "start"
        ? await ctx.call("vm.start", { name }, 30_000, opId)
        : await ctx.call("vm.restart", { name, ...(values.force === true ? { force: true } : {}) }, 30_000, opId);
      ctx.stderr.write(`${kind === "start" ? "starting" : "restarting"} ${name} (${ref.operation_id})\n`);
      const vm = await waitForVm(ctx, ref.operation_id, name, kind, { quiet: false, opId });
      if (vm === undefined) failed++;
      else ctx.stdout.write(`${vm.name} is running at ${vm.ip ?? "?"}\n`);
    } catch (e) {
      failed++;
      ctx.stderr.write(`error: ${kind} ${name}: ${e instanceof Error ? e.message : String(e)} (${opId})\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}

export const vmStartCommand: Command = {
  path: ["vm", "start"],
  summary: "start stopped VMs (same disks, same IP) and wait until ssh-ready",
  usage: "banger vm start NAME...",
  run: (args, ctx) => startLike("start", args, ctx),
};

export const vmRestartCommand: Command = {
  path: ["vm", "restart"],
  summary: "stop (graceful; --force kills) and start VMs again",
  usage: "banger vm restart NAME... [--force]",
  run: (args, ctx) => startLike("restart", args, ctx),
};
