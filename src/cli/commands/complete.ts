import type { CliContext, Command } from "../command.js";
import { HELP_FLAG, type FlagTable, type NameKind } from "../flags.js";
import { GROUPS } from "../help.js";

/** Daemon answers this slow are not worth waiting for at a TAB press. */
const NAME_TIMEOUT_MS = 1500;

async function names(ctx: CliContext, kind: NameKind): Promise<string[]> {
  try {
    if (kind === "vm") return (await ctx.call("vm.list", {}, NAME_TIMEOUT_MS)).vms.map((v) => v.name);
    if (kind === "image") return (await ctx.call("image.list", {}, NAME_TIMEOUT_MS)).images.map((i) => i.name);
    return (await ctx.call("snapshot.list", {}, NAME_TIMEOUT_MS)).snapshots.map((s) => s.name);
  } catch {
    // A daemon that is down or slow completes nothing: a TAB press must never print an error.
    return [];
  }
}

function allPaths(commands: readonly Command[]): (readonly string[])[] {
  return [...commands.filter((c) => c.hidden !== true).flatMap((c) => [c.path, ...(c.aliases ?? [])]), ["help"]].filter((p) => !(p[0] ?? "").startsWith("-"));
}

/** The longest command path that `words` start with. */
function commandAt(commands: readonly Command[], words: readonly string[]): { command: Command; used: number } | undefined {
  let best: { command: Command; used: number } | undefined;
  for (const c of commands) {
    for (const p of [c.path, ...(c.aliases ?? [])]) {
      if (p.length <= words.length && p.every((w, i) => words[i] === w) && (best === undefined || p.length > best.used)) best = { command: c, used: p.length };
    }
  }
  return best;
}

function flagFor(flags: FlagTable, word: string): FlagTable[string] | undefined {
  if (word.startsWith("--")) return flags[word.slice(2)];
  if (/^-[A-Za-z]$/.test(word)) return Object.values(flags).find((f) => f.short === word.slice(1));
  return undefined;
}

/**
 * What TAB offers after `banger WORDS... CURRENT`: command words, then a command's flags, and
 * VM, image or snapshot names from the running daemon where the command or flag takes one.
 */
export async function completions(commands: readonly Command[], words: readonly string[], current: string, ctx: CliContext): Promise<string[]> {
  const keep = (list: readonly string[]): string[] => [...new Set(list)].filter((c) => c.startsWith(current)).sort();
  const lookingAtHelp = words[0] === "help";
  const cmdWords = lookingAtHelp ? words.slice(1) : words;
  const found = commandAt(commands, cmdWords);
  if (found === undefined || lookingAtHelp) {
    const next = allPaths(commands).filter((p) => p.length > cmdWords.length && cmdWords.every((w, i) => p[i] === w)).map((p) => p[cmdWords.length] ?? "");
    const groups = Object.keys(GROUPS).map((g) => g.split(" ")).filter((g) => g.length > cmdWords.length && cmdWords.every((w, i) => g[i] === w)).map((g) => g[cmdWords.length] ?? "");
    return keep([...next, ...groups].filter((w) => !lookingAtHelp || w !== "help"));
  }
  const args = cmdWords.slice(found.used);
  // After --, the words are the guest command's.
  if (args.includes("--")) return [];
  const flags: FlagTable = { ...found.command.flags, help: HELP_FLAG };
  // --image=de: zsh and fish hand it whole; bash splits it into --image, =, de.
  const eq = current.startsWith("--") ? current.indexOf("=") : -1;
  if (eq !== -1) {
    const spec = flagFor(flags, current.slice(0, eq));
    const prefix = current.slice(0, eq + 1);
    return spec?.complete !== undefined ? (await names(ctx, spec.complete)).map((n) => prefix + n).filter((c) => c.startsWith(current)).sort() : [];
  }
  const prev = flagFor(flags, (args.at(-1) === "=" ? args.at(-2) : args.at(-1)) ?? "");
  if (prev?.type === "string") return prev.complete !== undefined ? keep(await names(ctx, prev.complete)) : [];
  if (current.startsWith("-")) return keep(Object.keys(flags).map((f) => `--${f}`));
  if (found.command.completes === undefined) return [];
  return keep(await names(ctx, found.command.completes));
}

/** `banger __complete WORDS... CURRENT`: what the completion scripts call; one candidate a line, silent on errors. */
export function makeCompleteCommand(commands: () => readonly Command[]): Command {
  return {
    path: ["__complete"],
    summary: "print completion candidates (used by the scripts banger completion prints)",
    usage: "banger __complete [WORD...] CURRENT",
    hidden: true,
    async run(args, ctx) {
      const words = args.slice(0, -1);
      const current = args.at(-1) ?? "";
      const out = await completions(commands(), words, current, ctx);
      ctx.stdout.write(out.map((c) => `${c}\n`).join(""));
      return 0;
    },
  };
}
