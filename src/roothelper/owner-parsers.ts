import type { Runner } from "../system/runner.js";
import type { TrustedExecutable } from "./fs/trust.js";

/**
 * Parsers of untrusted data never run as root. debugfs and e2fsck read
 * ext4 that a guest or the owner wrote (e2fsprogs has had memory-safety
 * CVEs), so a crafted image must not be able to run code as uid 0. The
 * helper opens the image itself and hands it over as an inherited fd; the
 * parser runs as the owner, supplementary groups cleared, every capability
 * gone and no_new_privs set, so nothing it execs can gain privilege either.
 *
 * Node cannot call prctl/setresuid between fork and exec, so the drop is
 * done by util-linux setpriv, a trusted binary like the VMMs (resolved and
 * checked at start by fs/trust.ts). setpriv itself never parses the image:
 * it drops, then execs the parser.
 */

export type ParserName = "debugfs" | "e2fsck";

/**
 * Binaries that passed fs/trust.ts at start; undefined when not installed.
 * setpriv, which starts as root, is executed through its checked directory's
 * descriptor; the parsers by their real path, since setpriv execs them after
 * the drop, as the owner with no_new_privs: nothing they are gains privilege.
 */
export type ParserBinaries = Readonly<Record<ParserName | "setpriv", TrustedExecutable | undefined>>;

/**
 * The environment a parser gets instead of the helper's: C locale, since the
 * callers read debugfs/e2fsck messages, and nothing else (E2FSCK_CONFIG,
 * DEBUGFS_PAGER and friends would otherwise reach it).
 */
const PARSER_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" };

function isParser(name: string | undefined): name is ParserName {
  return name === "debugfs" || name === "e2fsck";
}

/** setpriv's argv for running `argv` as uid/gid with nothing else. */
function asOwnerArgv(setpriv: string, owner: { readonly uid: number; readonly gid: number }, argv: readonly string[]): string[] {
  return [setpriv, `--reuid=${owner.uid}`, `--regid=${owner.gid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", ...argv];
}

/**
 * A Runner for parsers only: `debugfs ...` or `e2fsck ...` becomes the
 * trusted binary run as the owner through setpriv. Anything else is refused,
 * so a helper method cannot run some other tool through it by mistake.
 * Images must be passed as inherited fds (RunOptions.extraFds, named
 * /proc/self/fd/N): the parser, no longer root, can reopen what the helper
 * opened only when the owner may open that inode itself.
 */
export function ownerParserRunner(runner: Runner, bins: ParserBinaries, owner: { readonly uid: number; readonly gid: number }): Runner {
  return {
    run(argv, options = {}) {
      const [name, ...args] = argv;
      if (!isParser(name)) return Promise.reject(new Error(`${String(name)} is not a parser the helper runs as the owner`));
      const setpriv = bins.setpriv;
      if (setpriv === undefined) return Promise.reject(new Error(`setpriv (util-linux) was not found when the helper started: it runs ${name} as the owner, never as root; install util-linux or set tools.setpriv_bin`));
      const bin = bins[name];
      if (bin === undefined) return Promise.reject(new Error(`${name} (e2fsprogs) was not found when the helper started; install e2fsprogs or set tools.${name}_bin`));
      let execAt;
      try {
        execAt = setpriv.execAt();
      } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
      return runner.run(asOwnerArgv(setpriv.path, owner, [bin.path, ...args]), { ...options, env: PARSER_ENV, execAt });
    },
  };
}
