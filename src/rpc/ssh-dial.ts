import { Duplex } from "node:stream";
import { formatSshUrl, sshDestination, type SshUrl } from "../model/ssh-url.js";
import { spawnStream, type StreamChild, type StreamExit } from "../system/ssh-stream.js";
import { bannerProblem, MAX_BANNER_BYTES } from "./dial-banner.js";
import type { Dial } from "./unix-client.js";

/**
 * A Dial to another host's daemon: each open() runs the user's own `ssh` (their config, keys, agent,
 * ControlMaster if they set one; no new port anywhere) with `banger system dial-stdio` as the remote
 * command, and the child's stdin/stdout are the connection. The remote's banner is checked before
 * any byte reaches the caller, so "no banger there" and "another protocol" are errors that say so.
 */
export interface SshDialOptions {
  /** The ssh client to run (tests point it at a stand-in). */
  readonly sshBin?: string;
  readonly spawn?: (argv: readonly string[]) => StreamChild;
}

/** The remote words: a fixed command, so nothing of the caller's reaches the remote shell. */
export const DIAL_STDIO_COMMAND = ["banger", "system", "dial-stdio"] as const;

/** `ssh -o BatchMode=yes [-p PORT] -T -- DEST banger system dial-stdio`: never a prompt, never a TTY, DEST never an option. */
export function sshDialArgv(url: SshUrl, sshBin = "ssh"): string[] {
  const { options, destination } = sshDestination(url);
  return [sshBin, "-o", "BatchMode=yes", ...options, "-T", "--", destination, ...DIAL_STDIO_COMMAND];
}

export function sshDial(contextName: string, url: SshUrl, opts: SshDialOptions = {}): Dial {
  const label = `context ${contextName} (${formatSshUrl(url)})`;
  const argv = sshDialArgv(url, opts.sshBin);
  const start = opts.spawn ?? spawnStream;
  return { label, open: () => openStream(start(argv), url.host) };
}

function openStream(child: StreamChild, host: string): Duplex {
  // The banner's bytes until its newline; undefined once it was checked.
  let pending: Buffer | undefined = Buffer.alloc(0);
  let delivered = 0;
  const duplex = new Duplex({
    // Write errors are dropped: a dead ssh is explained by its exit below, not by EPIPE.
    write(chunk: Buffer, _encoding, callback) { child.stdin.write(chunk, () => { callback(); }); },
    final(callback) { child.stdin.end(); callback(); },
    read() { child.stdout.resume(); },
    destroy(err, callback) { child.kill(); callback(err); },
  });
  child.stdout.on("data", (chunk: Buffer) => {
    let data = chunk;
    if (pending !== undefined) {
      pending = Buffer.concat([pending, chunk]);
      const nl = pending.indexOf(0x0a);
      if (nl === -1) {
        if (pending.length > MAX_BANNER_BYTES) duplex.destroy(new Error(bannerProblem(pending.toString("utf8"), host)));
        return;
      }
      const problem = bannerProblem(pending.subarray(0, nl).toString("utf8"), host);
      if (problem !== undefined) {
        duplex.destroy(new Error(problem));
        return;
      }
      data = pending.subarray(nl + 1);
      pending = undefined;
      if (data.length === 0) return;
    }
    delivered += data.length;
    if (!duplex.push(data)) child.stdout.pause();
  });
  void child.exited.then((exit) => {
    if (duplex.destroyed) return;
    if (pending !== undefined) duplex.destroy(new Error(explainEarlyExit(exit, host)));
    else if (delivered === 0 && exit.code !== 0) duplex.destroy(new Error(explainRemoteFailure(exit, host)));
    else duplex.push(null);
  });
  return duplex;
}

function tail(stderr: string): string {
  return stderr.trim().split("\n").slice(-3).join(" | ");
}

/** ssh ended before banger's banner: why, in words that say what to do. */
export function explainEarlyExit(exit: StreamExit, host: string): string {
  if (exit.error !== undefined) return `could not run ssh: ${exit.error.message}; install the OpenSSH client`;
  const err = tail(exit.stderr);
  // 127 is the remote shell's "no such command"; ssh's own failures are 255 whatever they print.
  if (exit.code === 127 || (exit.code !== 255 && /command not found|banger: not found/.test(err))) {
    return `banger is not installed on ${host} (or not on the PATH of its non-interactive ssh sessions); install banger there (sudo banger system install), then check with: ssh ${host} banger version`;
  }
  if (exit.code === 255) return `ssh to ${host} failed${err !== "" ? `: ${err}` : ""}; check that \`ssh ${host}\` logs in without a prompt (keys or agent; contexts never ask for a password)`;
  if (/unknown command/.test(err)) return `the banger on ${host} has no \`system dial-stdio\` (an older version); install a banger that matches this one there`;
  return `banger system dial-stdio on ${host} exited ${exit.code ?? exit.signal ?? "?"} before answering${err !== "" ? `: ${err}` : ""}`;
}

/** The banner came but then nothing: the remote side said why on stderr (its daemon is down, usually). */
function explainRemoteFailure(exit: StreamExit, host: string): string {
  const err = tail(exit.stderr);
  return `banger on ${host}: ${err !== "" ? err : `dial-stdio exited ${exit.code ?? exit.signal ?? "?"}`}`;
}
