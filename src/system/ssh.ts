import { spawn } from "node:child_process";
import { CommandError, type Runner } from "./runner.js";

/**
 * The system `ssh` client, driven by argv only. Pinning is total: banger's
 * own known_hosts, strict checking, no global known_hosts, no user config
 * (`-F none`) so a `Host *` block cannot swap the key, user or a ProxyCommand.
 */
export interface SshTarget {
  readonly keyPath: string;
  readonly knownHostsPath: string;
  readonly host: string;
  readonly user?: string;
  readonly connectTimeoutS?: number;
  /** Guests listen on 22; tests point at a throwaway server on another port. */
  readonly port?: number;
}

export interface SshArgvOptions {
  /** Remote command words; passed after `--` so a word starting with `-` is never an ssh flag. */
  readonly command?: readonly string[];
  /** Force (true) or forbid (false) a remote TTY; undefined lets ssh decide. */
  readonly tty?: boolean;
  readonly sshBin?: string;
}

const HOST_RE = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;

export function sshArgv(target: SshTarget, opts: SshArgvOptions = {}): string[] {
  if (!HOST_RE.test(target.host)) throw new Error(`ssh host ${JSON.stringify(target.host)} is not an address or host name`);
  const user = target.user ?? "root";
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw new Error(`ssh user ${JSON.stringify(user)} is not a user name`);
  for (const [label, p] of [["key", target.keyPath], ["known_hosts", target.knownHostsPath]] as const) {
    if (!p.startsWith("/") || /[\s\0]/.test(p)) throw new Error(`ssh ${label} path ${JSON.stringify(p)} must be absolute without whitespace`);
  }
  const argv = [
    opts.sshBin ?? "ssh",
    "-F", "none",
    "-i", target.keyPath,
    "-o", `UserKnownHostsFile=${target.knownHostsPath}`,
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "StrictHostKeyChecking=yes",
    "-o", "IdentitiesOnly=yes",
    "-o", "BatchMode=yes",
    "-o", "LogLevel=ERROR",
    "-o", `ConnectTimeout=${Math.max(1, Math.round(target.connectTimeoutS ?? 10))}`,
  ];
  if (target.port !== undefined && target.port !== 22) {
    if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) throw new Error(`ssh port ${target.port} is not a TCP port`);
    argv.push("-p", String(target.port));
  }
  if (opts.tty === true) argv.push("-tt");
  if (opts.tty === false) argv.push("-T");
  argv.push(`${user}@${target.host}`);
  if (opts.command !== undefined && opts.command.length > 0) argv.push("--", ...opts.command);
  return argv;
}

export interface CapturedExec {
  readonly exitCode: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/** Runs ssh to completion and returns the remote exit code instead of throwing on non-zero (255 = ssh itself failed). */
export async function sshCapture(runner: Runner, argv: readonly string[], opts: { timeoutMs?: number; signal?: AbortSignal; stdin?: string | Buffer } = {}): Promise<CapturedExec> {
  try {
    const { stdout, stderr } = await runner.run(argv, opts);
    return { exitCode: 0, stdout, stderr };
  } catch (e) {
    if (e instanceof CommandError && e.exitCode !== null) return { exitCode: e.exitCode, stdout: Buffer.from(e.stdout), stderr: Buffer.from(e.stderr) };
    throw e;
  }
}

/**
 * Runs ssh with the caller's stdin/stdout/stderr (an interactive shell or a
 * streamed command) and resolves with its exit code. A signal death maps to
 * 128+n like a shell would report it.
 */
export function sshInteractive(argv: readonly string[]): Promise<number> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new Error("empty ssh argv"));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: "inherit", shell: false });
    child.on("error", (e) => {
      reject(new Error(`could not run ${file}: ${e.message}; install the OpenSSH client`, { cause: e }));
    });
    child.on("close", (code, signal) => {
      resolve(code ?? (signal !== null ? 128 + signalNumber(signal) : 1));
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  const table: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };
  return table[signal] ?? 0;
}
