import { quoteForRemoteShell as q } from "./shell-quote.js";

/**
 * The remote command line of `vm exec`, with docker exec's meaning for its
 * flags. An SSH exec request hands the guest's shell one string, so every layer below is a
 * POSIX sh script whose variable parts are single-quoted words; nothing the
 * user typed is ever parsed by a shell as code.
 */
export interface RemoteExecOptions {
  /** KEY=VAL pairs, exported before the command runs. */
  readonly env?: readonly (readonly [string, string])[];
  /** Absolute directory the command starts in. */
  readonly workdir?: string;
  /** A user name or numeric uid; switched to with the guest's setpriv, else su. */
  readonly user?: string;
}

const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const USER_RE = /^(?:[a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})$/;

/** Parses one `-e KEY=VAL`; a bare KEY takes the caller's value like docker does (absent: the flag is an error). */
export function parseEnvFlag(flag: string, callerEnv: Readonly<Record<string, string | undefined>>): [string, string] {
  const eq = flag.indexOf("=");
  const key = eq === -1 ? flag : flag.slice(0, eq);
  if (!ENV_KEY_RE.test(key)) throw new Error(`-e ${JSON.stringify(flag)}: the name must be letters, digits and _ (not starting with a digit), as in -e KEY=VALUE`);
  if (eq !== -1) return [key, flag.slice(eq + 1)];
  const v = callerEnv[key];
  if (v === undefined) throw new Error(`-e ${key}: ${key} is not set here; give a value with -e ${key}=VALUE`);
  return [key, v];
}

/** The -w and -u checks, with the CLI's wording; remoteExecCommand applies them too. */
export function checkExecOptions(opts: Pick<RemoteExecOptions, "workdir" | "user">): void {
  if (opts.workdir !== undefined && (!opts.workdir.startsWith("/") || opts.workdir.includes("\0"))) throw new Error(`-w ${JSON.stringify(opts.workdir)}: the working directory must be an absolute path`);
  if (opts.user !== undefined && !USER_RE.test(opts.user)) throw new Error(`-u ${JSON.stringify(opts.user)}: give a user name or a numeric uid`);
}

export function remoteExecCommand(argv: readonly string[], opts: RemoteExecOptions = {}): string {
  if (argv.length === 0) throw new Error("no command to run");
  checkExecOptions(opts);
  const steps: string[] = [];
  if (opts.workdir !== undefined) steps.push(`cd ${q([opts.workdir])}`);
  for (const [k, v] of opts.env ?? []) {
    if (!ENV_KEY_RE.test(k)) throw new Error(`environment name ${JSON.stringify(k)} is not a shell variable name`);
    steps.push(`export ${k}=${q([v])}`);
  }
  // exec: the command takes the shell's pid, so a signal to it reaches the command itself.
  steps.push(`exec ${q(argv)}`);
  const script = steps.join(" && ");
  return opts.user !== undefined ? asUser(opts.user, script) : script;
}

/**
 * Runs `script` as `user`: setpriv keeps the pid (no PAM session), su is the
 * fallback every image has in some form; neither present is said, not guessed.
 */
function asUser(user: string, script: string): string {
  const u = q([user]);
  const s = q([script]);
  // busybox has a setpriv without --reuid: ask the real one to do a no-op switch first.
  const hasSetpriv = "command -v setpriv >/dev/null 2>&1 && setpriv --reuid=0 --regid=0 --clear-groups true >/dev/null 2>&1";
  // A bare uid needs no passwd entry (as in docker), but only setpriv can take one.
  if (/^[0-9]+$/.test(user)) {
    return [
      `if ${hasSetpriv}; then exec setpriv --reuid=${user} --regid=${user} --clear-groups sh -c ${s}`,
      `else echo ${q(["banger: -u UID needs util-linux setpriv in the VM; install it or give a user name"])} >&2; exit 126; fi`,
    ].join("; ");
  }
  return [
    `id -u ${u} >/dev/null 2>&1 || { echo ${q([`banger: no user ${user} in the VM; create it or pick another with -u`])} >&2; exit 126; }`,
    `if ${hasSetpriv}; then exec setpriv --reuid="$(id -u ${u})" --regid="$(id -g ${u})" --init-groups sh -c ${s}`,
    `elif command -v su >/dev/null 2>&1; then exec su -s /bin/sh -c ${s} ${u}`,
    `else echo ${q(["banger: -u needs setpriv or su in the VM and it has neither; install util-linux or run without -u"])} >&2; exit 126; fi`,
  ].join("; ");
}
