/**
 * ssh hands the remote side ONE string that the guest's shell re-splits.
 * `vm exec` promises argv semantics (like docker exec), so each word is
 * single-quoted for a POSIX shell and arrives byte for byte.
 *
 * A module of its own: `vm exec` needs it, and system/ssh.ts loads node:child_process (~4 ms of a
 * CLI start-up).
 */
export function quoteForRemoteShell(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_/.,:=@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}
