import type { RemoteContext } from "../../../config/contexts.js";
import { sshDestination } from "../../../model/ssh-url.js";
import { quoteForRemoteShell } from "../../../system/shell-quote.js";

/**
 * `vm ssh` (and `vm run`'s attach) through a remote context, by running the remote host's own banger
 * CLI over the user's ssh. (`vm exec` and `vm cp` need nothing of the kind: they ride the daemon's
 * exec channel, which reaches the remote daemon through the context's Dial like any other call.) The guest's key and known_hosts live in the remote daemon's state dir
 * and the guest's address is on the remote host's bridge, so the remote banger is the one that can
 * reach the guest; nothing secret is copied here. (A ProxyJump would need the guest key on this
 * host.) ssh hands the remote host's shell one string, so every word is quoted for it.
 */

/** `ssh -o BatchMode=yes [-p PORT] -T|-t|-tt -- DEST`: the user's ssh config and keys, DEST never an option. */
function hostSsh(remote: RemoteContext, tty: "no" | "auto"): string[] {
  const { options, destination } = sshDestination(remote.url);
  const ttyFlag = tty === "auto" && process.stdin.isTTY ? "-t" : "-T";
  return ["ssh", "-o", "BatchMode=yes", ...options, ttyFlag, "--", destination];
}

/** `banger vm ssh NAME [-- CMD...]` on the context's host, with a TTY when this terminal has one. */
export function vmSshThroughContext(remote: RemoteContext, name: string, command: readonly string[]): string[] {
  return [...hostSsh(remote, "auto"), quoteForRemoteShell(["banger", "vm", "ssh", name, ...(command.length > 0 ? ["--", ...command] : [])])];
}
