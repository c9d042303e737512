import { parseArgs } from "node:util";
import type { ExecParams, ExecSession, StreamCallOptions } from "../../../rpc/exec-client.js";
import type { Dial } from "../../../rpc/unix-client.js";
import { UsageError, type Command } from "../../command.js";
import { attach, processIo, type AttachIo } from "./exec-attach.js";

const EXEC_OPTIONS = {
  env: { type: "string", short: "e", multiple: true, description: "set an environment variable (-e KEY takes this shell's value); repeatable" },
  workdir: { type: "string", short: "w", description: "run in DIR (absolute)" },
  user: { type: "string", short: "u", description: "run as USER (name or uid), through the guest's setpriv or su" },
  tty: { type: "boolean", short: "t", description: "allocate a TTY (sized like this terminal, resized with it)" },
  interactive: { type: "boolean", short: "i", description: "pass stdin to the command (without -i it reads EOF)" },
} as const;

export type ExecOpener = (dial: Dial, params: ExecParams, options: StreamCallOptions) => Promise<ExecSession>;

const openOverChannel: ExecOpener = async (dial, params, options) => (await import("../../../rpc/exec-client.js")).openExec(dial, params, options);

/** `vm exec` over the daemon's exec channel: no ssh process here, the daemon's connection to the VM carries it. */
export function makeVmExecCommand(open: ExecOpener = openOverChannel, io: AttachIo = processIo): Command {
  return {
    path: ["vm", "exec"],
    summary: "run CMD in a VM (argv preserved) and exit with its exit code; flags as in docker exec",
    usage: "banger vm exec [-e KEY=VAL]... [-w DIR] [-u USER] [-t] [-i] NAME -- CMD...\n" +
      "  -e KEY=VAL  set an environment variable (-e KEY takes this shell's value); repeatable\n" +
      "  -w DIR      run in DIR (absolute)\n" +
      "  -u USER     run as USER (name or uid), through the guest's setpriv or su\n" +
      "  -t          allocate a TTY (with -i on a terminal, keys such as Ctrl-C go to it raw)\n" +
      "  -i          pass stdin to the command (without -i it reads EOF)\n" +
      "  Ctrl-C (or TERM/HUP) here is sent to the command as the same signal, except keys typed into -t -i.",
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
      const { checkExecOptions, parseEnvFlag } = await import("../../../system/ssh-exec.js");
      let env: Record<string, string>;
      try {
        env = Object.fromEntries((values.env ?? []).map((f) => parseEnvFlag(f, ctx.env)));
        checkExecOptions({ ...(values.workdir !== undefined ? { workdir: values.workdir } : {}), ...(values.user !== undefined ? { user: values.user } : {}) });
      } catch (e) {
        throw new UsageError(e instanceof Error ? e.message : String(e));
      }
      const tty = values.tty === true;
      const stdin = values.interactive === true;
      const params: ExecParams = {
        name: positionals[0] ?? "",
        argv: command,
        stdin,
        ...(Object.keys(env).length > 0 ? { env } : {}),
        ...(values.workdir !== undefined ? { cwd: values.workdir } : {}),
        ...(values.user !== undefined ? { user: values.user } : {}),
        ...(tty ? { tty: { cols: io.stdout.columns > 0 ? io.stdout.columns : 80, rows: io.stdout.rows > 0 ? io.stdout.rows : 24 } } : {}),
      };
      const session = await open(ctx.dial, params, { opId: ctx.opId });
      return attach(session, io, { tty, stdin });
    },
  };
}

export const vmExecCommand = makeVmExecCommand();
