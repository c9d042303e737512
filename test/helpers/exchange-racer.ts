import { AT_FDCWD, dirfdCalls, RENAME_EXCHANGE } from "../../src/system/dirfd-calls.js";

/**
 * The owner's side of a check-then-use race: swap two names as fast as
 * possible with renameat2(RENAME_EXCHANGE) (atomic: each name always
 * exists, as the real one or as the symlink). Run as the owner:
 *   node exchange-racer.js A B
 * until killed. Failures (a name briefly busy) are ignored.
 */
const [a, b] = process.argv.slice(2);
if (a === undefined || b === undefined) {
  process.stderr.write("usage: exchange-racer A B\n");
  process.exit(2);
}
const calls = dirfdCalls();
for (;;) {
  try {
    calls.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
  } catch {
    // keep racing
  }
}
