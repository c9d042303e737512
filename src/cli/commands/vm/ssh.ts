import { UsageError, type Command } from "../../command.js";
import { interactiveSsh, quoteRemote, sshArgvFor, type SshExec } from "./common.js";

/** Splits `NAME [-- CMD...]` without letting parseArgs eat the command's own flags. */
export function splitNameAndCommand(args: readonly string[]): { name: string | undefined; command: string[] } {
  const dd = args.indexOf("--");
  const before = dd === -1 ? [...args] : args.slice(0, dd);
  const command = dd === -1 ? [] : args.slice(dd + 1);
  const unknown = before.find((a) => a.startsWith("-"));
  if (unknown !== undefined) throw new UsageError(`unknown flag ${unknown}`);
  if (before.length > 1) throw new UsageError(`unexpected ${JSON.stringify(before[1])}; put the command after --`);
  return { name: before[0], command };
}

export function makeVmSshCommand(exec: SshExec = interactiveSsh): Command {
  return {
    path: ["vm", "ssh"],
    summary: "open a shell in a VM (or run CMD through the guest's shell), host key pinned, no prompts",
    usage: "banger vm ssh NAME [-- CMD...]",
    async run(args, ctx) {
      const { name, command } = splitNameAndCommand(args);
      if (name === undefined) throw new UsageError("give a VM name");
      const vm = await ctx.call("vm.get", { name });
      // ssh semantics: CMD is handed to the guest shell as typed (pipes, globs work).
      return exec(await sshArgvFor(vm, command.length > 0 ? { command: [command.join(" ")] } : {}));
    },
  };
}

export function makeVmExecCommand(exec: SshExec = interactiveSsh): Command {
  return {
    path: ["vm", "exec"],
    summary: "run CMD in a VM non-interactively (argv preserved) and exit with its exit code",
    usage: "banger vm exec NAME -- CMD...",
    async run(args, ctx) {
      const { name, command } = splitNameAndCommand(args);
      if (name === undefined) throw new UsageError("give a VM name");
      if (command.length === 0) throw new UsageError("give the command after --");
      const vm = await ctx.call("vm.get", { name });
      return exec(await sshArgvFor(vm, { command: [await quoteRemote(command)], tty: false }));
    },
  };
}

export const vmSshCommand = makeVmSshCommand();
export const vmExecCommand = makeVmExecCommand();
