import type { RemoteTarget } from "../../../system/tar-copy.js";
import { UsageError, type CliContext, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";
import { quoteForRemoteShell } from "../../../system/shell-quote.js";
import { sshArgvFor } from "./common.js";

const CP_FLAGS = { quiet: { type: "boolean", short: "q", description: "no progress line (shown only on a terminal anyway)" } } as const satisfies FlagTable;

/** `NAME:PATH` names a VM's file; a path starting with / or . is always the host's (a host file may contain ':'). */
const REMOTE_RE = /^([A-Za-z0-9][A-Za-z0-9._-]*):(.*)$/s;

function remote(arg: string): { name: string; path: string } | undefined {
  if (arg.startsWith("/") || arg.startsWith(".")) return undefined;
  const m = REMOTE_RE.exec(arg);
  return m?.[1] !== undefined && m[2] !== undefined ? { name: m[1], path: m[2] } : undefined;
}

/**
 * How the tar stream reaches the guest. Here: the user's ssh with the VM's pinned key, so no banger
 * process holds the bytes (memory stays flat whatever the size). Through a context the guest is
 * reachable only from its host: the stream rides an exec channel of that daemon's SSH connection.
 */
async function remoteRun(ctx: CliContext, name: string): Promise<RemoteTarget> {
  if (ctx.remote !== undefined) {
    const { openExec } = await import("../../../rpc/exec-client.js");
    return (argv, o) => openExec(ctx.dial, { name, argv: [...argv], stdin: o.stdin }, { opId: ctx.opId });
  }
  const vm = await ctx.call("vm.get", { name });
  return { argv: (remote) => sshArgvFor(vm, { command: [quoteForRemoteShell(remote)], tty: false }) };
}

export const vmCpCommand: Command = {
  path: ["vm", "cp"],
  summary: "copy files or directories between the host and a VM (modes, mtimes, symlinks kept)",
  usage: "banger vm cp [-q] SRC DST",
  description: "One side is NAME:PATH (a VM's file; relative to its user's home unless absolute), the other a host path. When DST is an existing directory SRC is copied into it; otherwise SRC is copied to DST.\n\n- as the host side: a tar stream on stdin (extracted into the VM directory) or stdout.",
  flags: CP_FLAGS,
  examples: ["banger vm cp ./src web:/srv/app", "banger vm cp web:/var/log/syslog .", "tar c . | banger vm cp - web:/srv/app"],
  completes: "vm",
  async run(args, ctx) {
    const { values, positionals } = parseFlags(CP_FLAGS, args);
    if (positionals.length !== 2) throw new UsageError("give SRC and DST, one of them NAME:PATH");
    const [src = "", dst = ""] = positionals;
    const from = remote(src);
    const to = remote(dst);
    if ((from === undefined) === (to === undefined)) throw new UsageError("exactly one of SRC and DST must be NAME:PATH (a VM's file); the other is a host path or -");
    const vmSide = from ?? to;
    if (vmSide === undefined) throw new UsageError("name the VM side as NAME:PATH");
    if (vmSide.path === "") throw new UsageError(`give a path after ${vmSide.name}:`);
    const { copyIn, copyOut } = await import("../../../system/tar-copy.js");
    const run = await remoteRun(ctx, vmSide.name);
    const progress = values.quiet !== true && ctx.stderr.isTTY === true ? ctx.stderr : undefined;
    if (from !== undefined) await copyOut(run, from.path, dst, progress);
    else await copyIn(run, src, vmSide.path, progress);
    return 0;
  },
};
