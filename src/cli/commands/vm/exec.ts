import { parseArgs } from "node:util";
import { UsageError, type Command } from "../../command.js";
import { interactiveSsh, sshArgvFor, type SshExec } from "./common.js";
import { imageDefaultsFor } from "./image-defaults.js";

const EXEC_OPTIONS = {
  env: { type: "string", short: "e", multiple: true },
  workdir: { type: "string", short: "w" },
  user: { type: "string", short: "u" },
  tty: { type: "boolean", short: "t" },
  interactive: { type: "boolean", short: "i" },
} as const;

export function makeVmExecCommand(exec: SshExec = interactiveSsh): Command {
  return {
    path: ["vm", "exec"],
    summary: "run CMD in a VM (argv preserved) and exit with its exit code; flags as in docker exec",
    usage: "banger vm exec [-e KEY=VAL]... [-w DIR] [-u USER] [-t] [-i] NAME -- CMD...\n" +
      "  -e KEY=VAL  set an environment variable (-e KEY takes this shell's value); repeatable\n" +
      "  -w DIR      run in DIR (absolute)\n" +
      "  -u USER     run as USER (name or uid), through the guest's setpriv or su\n" +
      "  -t          allocate a TTY (Ctrl-C goes to the command through it)\n" +
      "  -i          pass stdin to the command (without -i it reads nothing)\n" +
      "  Without -t, Ctrl-C ends the remote command too, except with -i alone (stdin then just closes).",
    async run(args, ctx) {
      const dd = args.indexOf("--");
      if (dd === -1) throw new UsageError("give the command after --");
      const command = args.slice(dd + 1);
      if (command.length === 0) throw new UsageError("give the command after --");
      let parsed;
      try {
        parsed = parseArgs({ args: args.slice(0, dd), options: EXEC_OPTIONS, strict: true, allowPositionals: true });
      } catch (e) {
        throw new UsageError(e instanceof Error ? e.message : String(e));
      }
      const { values, positionals } = parsed;
      if (positionals.length === 0) throw new UsageError("give a VM name");
      if (positionals.length > 1) throw new UsageError(`unexpected ${JSON.stringify(positionals[1])}; put the command after --`);
      const { parseEnvFlag, remoteExecCommand } = await import("../../../system/ssh-exec.js");
      const { effectiveExecOptions } = await import("../../../system/exec-defaults.js");
      let options;
      try {
        options = {
          env: (values.env ?? []).map((f) => parseEnvFlag(f, ctx.env)),
          ...(values.workdir !== undefined ? { workdir: values.workdir } : {}),
          ...(values.user !== undefined ? { user: values.user } : {}),
          endWithConnection: values.tty !== true && values.interactive !== true,
        };
        remoteExecCommand(command, options); // a bad flag is a usage error before the daemon is asked
      } catch (e) {
        throw new UsageError(e instanceof Error ? e.message : String(e));
      }
      const vm = await ctx.call("vm.get", { name: positionals[0] ?? "" });
      // The image's user, env and workdir (an OCI config's) apply unless a flag says otherwise.
      const remote = remoteExecCommand(command, effectiveExecOptions(await imageDefaultsFor(ctx, vm), options));
      const argv = await sshArgvFor(vm, { command: [remote], tty: values.tty === true });
      // Without -i ssh gets a pipe held open for our lifetime, not the terminal: the guest reads EOF from it when we go.
      return exec(argv, { holdStdin: values.interactive !== true });
    },
  };
}

export const vmExecCommand = makeVmExecCommand();
