import { UsageError, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";
import { interactiveSsh, sshArgvFor, type SshExec } from "./common.js";
import { vmExecThroughContext } from "./through-context.js";

const EXEC_OPTIONS = {
  env: { type: "string", short: "e", multiple: true, value: "KEY=VAL", description: "set an environment variable (-e KEY takes this shell's value)" },
  workdir: { type: "string", short: "w", value: "DIR", description: "run in DIR (absolute)", default: "the user's home" },
  user: { type: "string", short: "u", value: "USER", description: "run as USER (name or uid), through the guest's setpriv or su", default: "the image's ssh user" },
  tty: { type: "boolean", short: "t", description: "allocate a TTY (Ctrl-C goes to the command through it)" },
  interactive: { type: "boolean", short: "i", description: "pass stdin to the command (without -i it reads nothing)" },
} as const satisfies FlagTable;

/** `vm exec -w /srv box ls -la` as it should have been typed: flags and NAME, then --, then the rest. */
function withDashDash(args: readonly string[]): string {
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i] ?? "";
    if (!a.startsWith("-")) break;
    const spec = a.startsWith("--") ? EXEC_OPTIONS[a.slice(2) as keyof typeof EXEC_OPTIONS] : Object.values(EXEC_OPTIONS).find((f) => a === `-${f.short}`);
    // A string flag's value is the next word, not the VM name.
    if (spec?.type === "string" && !a.includes("=")) i++;
  }
  const head = args.slice(0, i + 1);
  const cmd = args.slice(i + 1);
  return `banger vm exec ${head.length > i ? head.join(" ") : [...head, "NAME"].join(" ")} -- ${cmd.length > 0 ? cmd.join(" ") : "CMD"}`;
}

export function makeVmExecCommand(exec: SshExec = interactiveSsh): Command {
  return {
    path: ["vm", "exec"],
    summary: "run CMD in a VM (argv preserved) and exit with its exit code; flags as in docker exec",
    usage: "banger vm exec [-e KEY=VAL]... [-w DIR] [-u USER] [-t] [-i] NAME -- CMD...",
    description: "CMD's arguments reach the guest as they are (no shell in between). Without -t, Ctrl-C ends the remote command too, except with -i alone (stdin then just closes).",
    flags: EXEC_OPTIONS,
    examples: ["banger vm exec web -- uname -a", "banger vm exec -it web -- top", "banger vm exec -w /srv -e MODE=dev web -- make test"],
    completes: "vm",
    async run(args, ctx) {
      if (!args.includes("--")) throw new UsageError(`give the command after --, as in: ${withDashDash(args)}`);
      const { values, positionals, rest } = parseFlags(EXEC_OPTIONS, args);
      const command = rest ?? [];
      if (command.length === 0) throw new UsageError("give the command after --");
      if (positionals.length === 0) throw new UsageError("give a VM name");
      if (positionals.length > 1) throw new UsageError(`unexpected ${JSON.stringify(positionals[1])}; put the command after --, as in: banger vm exec ${positionals[0] ?? "NAME"} -- ${positionals.slice(1).join(" ")}`);
      const { parseEnvFlag, remoteExecCommand } = await import("../../../system/ssh-exec.js");
      let remote;
      let env: [string, string][];
      try {
        env = (values.env ?? []).map((f) => parseEnvFlag(f, ctx.env));
        remote = remoteExecCommand(command, {
          env,
          ...(values.workdir !== undefined ? { workdir: values.workdir } : {}),
          ...(values.user !== undefined ? { user: values.user } : {}),
          endWithConnection: values.tty !== true && values.interactive !== true,
        });
      } catch (e) {
        throw new UsageError(e instanceof Error ? e.message : String(e));
      }
      if (ctx.remote !== undefined) {
        const argv = await vmExecThroughContext(ctx.remote, { name: positionals[0] ?? "", command, env, workdir: values.workdir, user: values.user, tty: values.tty === true, interactive: values.interactive === true });
        return exec(argv, { holdStdin: values.interactive !== true });
      }
      const vm = await ctx.call("vm.get", { name: positionals[0] ?? "" });
      const argv = await sshArgvFor(vm, { command: [remote], tty: values.tty === true });
      // Without -i ssh gets a pipe held open for our lifetime, not the terminal: the guest reads EOF from it when we go.
      return exec(argv, { holdStdin: values.interactive !== true });
    },
  };
}

export const vmExecCommand = makeVmExecCommand();
