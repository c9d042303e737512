import type { ExecParams, ExecSession, StreamCallOptions } from "../../../rpc/exec-client.js";
import type { Dial } from "../../../rpc/unix-client.js";
import { UsageError, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";
import type { AttachIo } from "./exec-attach.js";

const EXEC_OPTIONS = {
  env: { type: "string", short: "e", multiple: true, value: "KEY=VAL", description: "set an environment variable (-e KEY takes this shell's value); repeatable" },
  workdir: { type: "string", short: "w", value: "DIR", description: "run in DIR (absolute)", default: "the user's home" },
  user: { type: "string", short: "u", value: "USER", description: "run as USER (name or uid), through the guest's setpriv or su", default: "the image's ssh user" },
  tty: { type: "boolean", short: "t", description: "allocate a TTY (sized like this terminal, resized with it; with -i on a terminal, keys such as Ctrl-C go to it raw)" },
  interactive: { type: "boolean", short: "i", description: "pass stdin to the command (without -i it reads EOF)" },
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

export type ExecOpener = (dial: Dial, params: ExecParams, options: StreamCallOptions) => Promise<ExecSession>;

const openOverChannel: ExecOpener = async (dial, params, options) => (await import("../../../rpc/exec-client.js")).openExec(dial, params, options);

/**
 * `vm exec` rides the daemon's exec channel, here and through a context: no ssh process and no key
 * exchange per command, the daemon's pooled connection to the VM carries it. Tests pass `open` and
 * `testIo` to drive it without a daemon.
 */
export function makeVmExecCommand(open: ExecOpener = openOverChannel, testIo?: AttachIo): Command {
  return {
    path: ["vm", "exec"],
    summary: "run CMD in a VM (argv preserved) and exit with its exit code; flags as in docker exec",
    usage: "banger vm exec [-e KEY=VAL]... [-w DIR] [-u USER] [-t] [-i] NAME -- CMD...",
    description: "CMD's arguments reach the guest as they are (no shell in between). It runs over the daemon's SSH connection to the VM (no ssh process here). Ctrl-C (or TERM/HUP) here is sent to the command as the same signal, except keys typed into -t -i.",
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
      const { checkExecOptions, parseEnvFlag } = await import("../../../system/ssh-exec.js");
      let env: Record<string, string>;
      try {
        env = Object.fromEntries((values.env ?? []).map((f) => parseEnvFlag(f, ctx.env)));
        checkExecOptions({ ...(values.workdir !== undefined ? { workdir: values.workdir } : {}), ...(values.user !== undefined ? { user: values.user } : {}) });
      } catch (e) {
        throw new UsageError(e instanceof Error ? e.message : String(e));
      }
      // Loaded on use (node:os, signal plumbing): `banger vm list` must not pay for them at start-up.
      const { attach, processIo } = await import("./exec-attach.js");
      const io = testIo ?? processIo;
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

