import { parseArgs } from "node:util";
import type { RemoteRun } from "../../../system/tar-copy.js";
import { UsageError, type Command } from "../../command.js";

/** `NAME:PATH` names a VM's file; a path starting with / or . is always the host's (a host file may contain ':'). */
const REMOTE_RE = /^([A-Za-z0-9][A-Za-z0-9._-]*):(.*)$/s;

function remote(arg: string): { name: string; path: string } | undefined {
  if (arg.startsWith("/") || arg.startsWith(".")) return undefined;
  const m = REMOTE_RE.exec(arg);
  return m?.[1] !== undefined && m[2] !== undefined ? { name: m[1], path: m[2] } : undefined;
}

export const vmCpCommand: Command = {
  path: ["vm", "cp"],
  summary: "copy files or directories between the host and a VM (modes, mtimes, symlinks kept)",
  usage: "banger vm cp [-q] SRC DST\n" +
    "  one side is NAME:PATH (a VM's file; relative to its user's home unless absolute), the other a host path.\n" +
    "  DST an existing directory: SRC is copied into it; otherwise SRC is copied to DST.\n" +
    "  - as the host side: a tar stream on stdin (extracted into the VM directory) or stdout.\n" +
    "  -q  no progress line (shown only on a terminal anyway)",
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args: [...args], options: { quiet: { type: "boolean", short: "q", description: "no progress line (shown only on a terminal anyway)" } }, strict: true, allowPositionals: true });
    if (positionals.length !== 2) throw new UsageError("give SRC and DST, one of them NAME:PATH");
    const [src = "", dst = ""] = positionals;
    const from = remote(src);
    const to = remote(dst);
    if ((from === undefined) === (to === undefined)) throw new UsageError("exactly one of SRC and DST must be NAME:PATH (a VM's file); the other is a host path or -");
    const vmSide = from ?? to;
    if (vmSide === undefined) throw new UsageError("name the VM side as NAME:PATH");
    if (vmSide.path === "") throw new UsageError(`give a path after ${vmSide.name}:`);
    const [{ copyIn, copyOut }, { openExec }] = await Promise.all([import("../../../system/tar-copy.js"), import("../../../rpc/exec-client.js")]);
    // The tar stream rides one exec channel of the daemon's SSH connection to the VM.
    const run: RemoteRun = (argv, o) => openExec(ctx.dial, { name: vmSide.name, argv: [...argv], stdin: o.stdin }, { opId: ctx.opId });
    const progress = values.quiet !== true && ctx.stderr.isTTY === true ? ctx.stderr : undefined;
    if (from !== undefined) await copyOut(run, from.path, dst, progress);
    else await copyIn(run, src, vmSide.path, progress);
    return 0;
  },
};
