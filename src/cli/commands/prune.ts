import { printJson, type CliContext } from "../command.js";
import { JSON_FLAG, noPositionals, parseFlags, type FlagTable } from "../flags.js";

/** `vm prune` and `image prune` take these. */
export const PRUNE_FLAGS = {
  "dry-run": { type: "boolean", short: "n", description: "list what would be removed, and remove nothing" },
  json: { ...JSON_FLAG, description: "print {dry_run, removed: [names], failed: [{name, error, op_id}]} as JSON" },
} as const satisfies FlagTable;

/**
 * The shape of `vm prune` and `image prune`: pick what is unused, remove each (one op id per
 * removal), keep going past a failure, report what went. Nothing to remove is not a failure.
 */
export async function prune(args: readonly string[], ctx: CliContext, what: { readonly noun: string; readonly pick: () => Promise<string[]>; readonly remove: (name: string, opId: string) => Promise<unknown> }): Promise<number> {
  const { values, positionals } = parseFlags(PRUNE_FLAGS, args);
  noPositionals(positionals, `banger ${what.noun} prune`);
  const json = values.json === true;
  const dryRun = values["dry-run"] === true;
  const names = await what.pick();
  const removed: string[] = [];
  const failed: { name: string; error: string; op_id: string }[] = [];
  if (names.length === 0 && !json) ctx.stderr.write(`no ${what.noun}s to prune\n`);
  else if (dryRun) {
    removed.push(...names);
    if (!json) for (const n of names) ctx.stdout.write(`would remove ${what.noun} ${n}\n`);
  } else {
    for (const [i, name] of names.entries()) {
      const opId = i === 0 ? ctx.opId : `${ctx.opId}${i.toString(36)}`;
      try {
        await what.remove(name, opId);
        removed.push(name);
        if (!json) ctx.stdout.write(`removed ${what.noun} ${name}\n`);
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        failed.push({ name, error, op_id: opId });
        ctx.stderr.write(`error: ${what.noun} ${name}: ${error} (${opId})\n`);
      }
    }
  }
  if (json) printJson(ctx.stdout, { dry_run: dryRun, removed, failed });
  return failed.length === 0 ? 0 : 1;
}
