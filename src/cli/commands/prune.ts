import type { CliContext } from "../command.js";
import { noPositionals, parseFlags, type FlagTable } from "../flags.js";

/** `vm prune` and `image prune` take these. */
export const PRUNE_FLAGS = { "dry-run": { type: "boolean", short: "n", description: "list what would be removed, and remove nothing" } } as const satisfies FlagTable;

/**
 * The shape of `vm prune` and `image prune`: pick what is unused, remove each (one op id per
 * removal), keep going past a failure, report what went. Nothing to remove is not a failure.
 */
export async function prune(args: readonly string[], ctx: CliContext, what: { readonly noun: string; readonly pick: () => Promise<string[]>; readonly remove: (name: string, opId: string) => Promise<unknown> }): Promise<number> {
  const { values, positionals } = parseFlags(PRUNE_FLAGS, args);
  noPositionals(positionals, `banger ${what.noun} prune`);
  const names = await what.pick();
  if (names.length === 0) {
    ctx.stderr.write(`no ${what.noun}s to prune\n`);
    return 0;
  }
  if (values["dry-run"] === true) {
    for (const n of names) ctx.stdout.write(`would remove ${what.noun} ${n}\n`);
    return 0;
  }
  let failed = 0;
  for (const [i, name] of names.entries()) {
    const opId = i === 0 ? ctx.opId : `${ctx.opId}${i.toString(36)}`;
    try {
      await what.remove(name, opId);
      ctx.stdout.write(`removed ${what.noun} ${name}\n`);
    } catch (e) {
      failed++;
      ctx.stderr.write(`error: ${what.noun} ${name}: ${e instanceof Error ? e.message : String(e)} (${opId})\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}
