import { printJson, type CliContext, type Command } from "../../command.js";
import { type FlagTable, JSON_FLAG, parseFlags } from "../../flags.js";
import { ALL_FLAG, namesOrAll, opIdFor, waitForVm } from "./common.js";
import type { VmView } from "../../../rpc/daemon/vm.js";

const START_FLAGS = {
  all: { ...ALL_FLAG, description: "start every stopped VM, instead of names" },
  json: { ...JSON_FLAG, description: "print the started VMs as a JSON array (progress not shown)" },
} as const satisfies FlagTable;
const RESTART_FLAGS = {
  force: { type: "boolean", short: "f", description: "kill the VMM at once instead of a graceful guest shutdown" },
  all: { ...ALL_FLAG, description: "restart every running VM, instead of names" },
  json: { ...JSON_FLAG, description: "print the restarted VMs as a JSON array (progress not shown)" },
} as const satisfies FlagTable;

/** start and restart share their shape: one operation per VM, followed with progress. */
async function startLike(kind: "start" | "restart", args: readonly string[], ctx: CliContext): Promise<number> {
  const parsed = parseFlags(kind === "start" ? START_FLAGS : RESTART_FLAGS, args);
  const values: { json?: boolean | undefined; force?: boolean | undefined; all?: boolean | undefined } = parsed.values;
  const json = values.json === true;
  const all = kind === "start" ? { which: (v: VmView) => v.state === "stopped", none: "no stopped VMs to start" } : { which: (v: VmView) => v.state === "running" || v.state === "paused", none: "no running VMs to restart" };
  const names = await namesOrAll(ctx, parsed.positionals, values.all === true ? all : undefined);
  if (names === undefined) {
    if (json) printJson(ctx.stdout, []);
    return 0;
  }
  const started: VmView[] = [];
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
        if (json) started.push(vm);
        else ctx.stdout.write(`${vm.name} is already running at ${vm.ip ?? "?"}\n`);
        continue;
      }
      if (!json) ctx.stderr.write(`${kind === "start" ? "starting" : "restarting"} ${name} (${ref.operation_id})\n`);
      const vm = await waitForVm(ctx, ref.operation_id, name, kind, { quiet: json, opId });
      if (vm === undefined) failed++;
      else if (json) started.push(vm);
      else ctx.stdout.write(`${vm.name} is running at ${vm.ip ?? "?"}\n`);
    } catch (e) {
      failed++;
      ctx.stderr.write(`error: ${kind} ${name}: ${e instanceof Error ? e.message : String(e)} (${opId})\n`);
    }
  }
  if (json) printJson(ctx.stdout, started);
  return failed === 0 ? 0 : 1;
}

export const vmStartCommand: Command = {
  path: ["vm", "start"],
  summary: "start stopped VMs (same disks, same IP) and wait until ssh-ready; a running VM is left as it is (exit 0)",
  usage: "banger vm start NAME...|--all [--json]",
  flags: START_FLAGS,
  examples: ["banger vm start web", "banger vm start web db --json"],
  completes: "vm",
  run: (args, ctx) => startLike("start", args, ctx),
};

export const vmRestartCommand: Command = {
  path: ["vm", "restart"],
  summary: "stop (graceful; --force kills) and start VMs again",
  usage: "banger vm restart NAME...|--all [--force] [--json]",
  flags: RESTART_FLAGS,
  examples: ["banger vm restart web", "banger vm restart --force web"],
  completes: "vm",
  run: (args, ctx) => startLike("restart", args, ctx),
};
