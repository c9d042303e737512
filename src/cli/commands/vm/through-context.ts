import type { RemoteContext } from "../../../config/contexts.js";
import { sshDestination } from "../../../model/ssh-url.js";
import { quoteRemote } from "./common.js";

/**
 * `vm ssh`, `vm exec` and `vm cp` through a remote context, by running the remote host's own banger
 * CLI over the user's ssh. The guest's key and known_hosts live in the remote daemon's state dir
 * and the guest's address is on the remote host's bridge, so the remote banger is the one that can
 * reach the guest; nothing secret is copied here. (A ProxyJump would need the guest key on this
 * host.) ssh hands the remote host's shell one string, so every word is quoted for it.
 * When exec and cp move onto a streaming channel over the context's Dial, this module goes.
 */

/** `ssh -o BatchMode=yes [-p PORT] -T|-t|-tt -- DEST`: the user's ssh config and keys, DEST never an option. */
function hostSsh(remote: RemoteContext, tty: "no" | "auto" | "force"): string[] {
  const { options, destination } = sshDestination(remote.url);
  const ttyFlag = tty === "force" ? "-tt" : tty === "auto" && process.stdin.isTTY ? "-t" : "-T";
  return ["ssh", "-o", "BatchMode=yes", ...options, ttyFlag, "--", destination];
}

/** `banger vm ssh NAME [-- CMD...]` on the context's host, with a TTY when this terminal has one. */
export async function vmSshThroughContext(remote: RemoteContext, name: string, command: readonly string[]): Promise<string[]> {
  return [...hostSsh(remote, "auto"), await quoteRemote(["banger", "vm", "ssh", name, ...(command.length > 0 ? ["--", ...command] : [])])];
}

export interface ExecThroughContext {
  readonly name: string;
  readonly command: readonly string[];
  /** Already resolved here: a bare `-e KEY` takes this shell's value, not the remote one's. */
  readonly env: readonly (readonly [string, string])[];
  readonly workdir?: string | undefined;
  readonly user?: string | undefined;
  readonly tty: boolean;
  readonly interactive: boolean;
}

/**
 * `banger vm exec ...` on the context's host. Without -t or -i the remote banger runs under the same
 * watcher `vm exec` puts on guest commands: no TTY means no SIGHUP, so the end of this ssh's stdin
 * (this CLI exiting, e.g. on Ctrl-C) is what ends it there.
 */
export async function vmExecThroughContext(remote: RemoteContext, o: ExecThroughContext): Promise<string[]> {
  const words = ["banger", "vm", "exec"];
  for (const [k, v] of o.env) words.push("-e", `${k}=${v}`);
  if (o.workdir !== undefined) words.push("-w", o.workdir);
  if (o.user !== undefined) words.push("-u", o.user);
  if (o.tty) words.push("-t");
  if (o.interactive) words.push("-i");
  words.push(o.name, "--", ...o.command);
  const { remoteExecCommand } = await import("../../../system/ssh-exec.js");
  const hostCommand = o.tty || o.interactive ? await quoteRemote(words) : remoteExecCommand(words, { endWithConnection: true });
  return [...hostSsh(remote, o.tty ? "force" : "no"), hostCommand];
}

/**
 * The ssh prefix `vm cp`'s tar streams run behind (system/tar-copy.ts appends `-- SCRIPT`): the
 * remote `banger vm exec -i NAME`, so the guest runs the very script a local copy runs, with its
 * DST rules, and the bytes go tar → ssh → remote ssh → guest tar without passing through node.
 */
export async function vmCpPrefixThroughContext(remote: RemoteContext, name: string): Promise<string[]> {
  return [...hostSsh(remote, "no"), await quoteRemote(["banger", "vm", "exec", "-i", name])];
}
