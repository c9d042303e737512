import { parseArgs } from "node:util";
import type { VmView } from "../../../rpc/daemon/vm.js";
import { UsageError, type CliContext, type Command } from "../../command.js";
import { namesOrAll, opIdFor, waitForVm } from "./common.js";

/** start and restart share their shape: one operation per VM, followed with progress. */
async function startLike(kind: "start" | "restart", args: readonly string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], options: { force: { type: "boolean" }, all: { type: "boolean", short: "a", description: "every stopped VM (start) or every running one (restart), instead of names" } }, strict: true, allowPositionals: true });
  if (kind === "start" && values.force === true) throw new UsageError("--force applies to stop, restart and rm");
  const all = kind === "start" ? { which: (v: VmView) => v.state === "stopped", none: "no stopped VMs to start" } : { which: (v: VmView) => v.state === "running" || v.state === "paused", none: "no running VMs to restart" };
  const names = await namesOrAll(ctx, positionals, values.all === true ? all : undefined);
  if (names === undefined) return 0;
  let failed = 0;
  for (const [i, name] of names.entries()) {
    const opId = opIdFor(ctx, i);
    try {
      const ref = kind === "start"
        ? await ctx.call("vm.start", { name }, 30_000, opId)
        : await ctx.call("vm.restart", { name, ...(values.force === true ? { force: true } : {}) }, 30_000, opId);
      if ("changed" in ref && ref.changed === false) {
        // As `docker start` of a running container: already so, not an error.
        const vm = await ctx.call("vm.get", { name }, 10_000, opId);
        ctx.stdout.write(`${vm.name} is already running at ${vm.ip ?? "?"}\n`);
        continue;
      }
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
  summary: "start stopped VMs (same disks, same IP) and wait until ssh-ready; --all: every stopped VM; a running VM is left as it is (exit 0)",
  usage: "banger vm start NAME...|--all",
  run: (args, ctx) => startLike("start", args, ctx),
};

export const vmRestartCommand: Command = {
  path: ["vm", "restart"],
  summary: "stop (graceful; --force kills) and start VMs again",
  usage: "banger vm restart NAME...|--all [--force]",
  run: (args, ctx) => startLike("restart", args, ctx),
};
