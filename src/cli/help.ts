import type { Command } from "./command.js";
import { HELP_FLAG, type ConfigDefaultKey, type FlagSpec } from "./flags.js";

/** The command groups and what each is for; `banger GROUP --help` lists its commands. */
export const GROUPS: Readonly<Record<string, string>> = {
  vm: "create, run, reach and manage VMs",
  "vm port": "publish guest ports on the host",
  "vm egress": "what a VM may reach: all, none or an allow list; isolation from other VMs",
  image: "build, import and manage the images VMs boot from",
  snapshot: "list and delete VM snapshots and warm templates",
  operation: "follow, inspect and cancel the long operations (vm create, image build, ...) whose op-… ids the CLI prints",
  system: "install, restart, inspect and remove banger's services",
  context: "name other hosts' banger daemons (reached over SSH) and pick the one commands talk to",
};

export const EXIT_CODES = "exit codes: 0 ok, 1 failed, 2 usage (a wrong command line; nothing was done)";

/** Help is wrapped to the terminal, 80 columns when it is not one. */
export function helpWidth(columns: number | undefined): number {
  return columns !== undefined && columns >= 40 ? Math.min(columns, 120) : 80;
}

/**
 * Word-wraps `text` to lines of at most `width` columns: the first starts at column `start`
 * (the caller prints what comes before it), the rest are indented by `hang` spaces.
 */
export function wrap(text: string, width: number, hang = 0, start = 0): string {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    const room = width - (out.length === 0 ? start : hang);
    if (line !== "" && line.length + 1 + word.length > room) {
      out.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  out.push(line);
  return out.map((l, i) => (i === 0 ? l : " ".repeat(hang) + l)).join("\n");
}

/** Two columns: `left` padded, `right` wrapped beside it (under it when the terminal is narrow). */
function table(rows: readonly (readonly [string, string])[], width: number): string {
  const col = Math.min(Math.max(...rows.map(([l]) => l.length)) + 2, 30);
  return rows.map(([l, r]) => {
    if (width - col < 30) return `  ${l}\n${" ".repeat(6)}${wrap(r, width, 6, 6)}`;
    const pad = l.length + 2 <= col ? l.padEnd(col) : `${l}\n${" ".repeat(col + 2)}`;
    return `  ${pad}${wrap(r, width, col + 2, col + 2)}`;
  }).join("\n");
}

export function flagLabel(name: string, spec: FlagSpec): string {
  const value = spec.type === "string" ? ` ${spec.value ?? "VALUE"}` : "";
  return `${spec.short !== undefined ? `-${spec.short}, ` : "    "}--${name}${value}`;
}

/** The flag's description with its default and repeatability, as help prints it. */
export function flagText(spec: FlagSpec, defaults: ReadonlyMap<ConfigDefaultKey, unknown>): string {
  const parts = [spec.description];
  if (spec.multiple === true) parts.push("(repeatable)");
  if (spec.defaultFrom !== undefined) parts.push(`(default: ${String(defaults.get(spec.defaultFrom))}, from config ${spec.defaultFrom})`);
  else if (spec.default !== undefined) parts.push(`(default: ${String(spec.default)})`);
  return parts.join(" ");
}

/** Config defaults the command's flags name; loads the schema (apart from the CLI bundle) only when there are some. */
export async function defaultsFor(cmd: Command): Promise<ReadonlyMap<ConfigDefaultKey, unknown>> {
  const keys = Object.values(cmd.flags ?? {}).flatMap((f) => (f.defaultFrom !== undefined ? [f.defaultFrom] : []));
  if (keys.length === 0) return new Map();
  const { configDefaults } = await import("./help-defaults.js");
  return configDefaults(keys);
}

/** The usage line wrapped after "usage: ", continuation lines under the command's first flag. */
export function usageText(cmd: Command, width: number): string {
  return wrap(cmd.usage, width, Math.min(7 + cmd.usage.indexOf(" [") + 1, 30, Math.floor(width / 3)), 7);
}

export function commandHelp(cmd: Command, width: number, defaults: ReadonlyMap<ConfigDefaultKey, unknown>): string {
  const flags = [...Object.entries(cmd.flags ?? {}), ["help", HELP_FLAG] as const];
  const sections = [
    `usage: ${usageText(cmd, width)}`,
    wrap(cmd.summary, width),
    ...(cmd.description !== undefined ? cmd.description.split("\n\n").map((p) => wrap(p, width)) : []),
    `flags:\n${table(flags.map(([name, spec]) => [flagLabel(name, spec), flagText(spec, defaults)]), width)}`,
    ...(cmd.examples !== undefined && cmd.examples.length > 0 ? [`examples:\n${cmd.examples.map((e) => `  ${wrap(e, width, 4, 2)}`).join("\n")}`] : []),
    ...(cmd.aliases !== undefined ? [`aliases: ${cmd.aliases.map((a) => `banger ${a.join(" ")}`).join(", ")}`] : []),
  ];
  return sections.join("\n\n") + "\n";
}

function visible(commands: readonly Command[]): Command[] {
  return commands.filter((c) => c.hidden !== true);
}

/** `banger [GROUP] --help`: the commands under `prefix`, and the subgroups, with their summaries. */
export function groupHelp(prefix: readonly string[], commands: readonly Command[], width: number): string {
  const under = visible(commands).filter((c) => c.path.length > prefix.length && prefix.every((w, i) => c.path[i] === w));
  const subgroups = Object.entries(GROUPS).filter(([g]) => {
    const words = g.split(" ");
    return words.length === prefix.length + 1 && prefix.every((w, i) => words[i] === w);
  });
  const inSub = (c: Command): boolean => subgroups.some(([g]) => c.path.length > prefix.length + 1 && c.path[prefix.length] === g.split(" ")[prefix.length]);
  const direct = under.filter((c) => !inSub(c) && !(prefix.length === 0 && GROUPS[c.path[0] ?? ""] !== undefined));
  const rows: [string, string][] = [
    ...direct.map((c): [string, string] => [c.path.slice(prefix.length).join(" "), c.summary]),
    ...subgroups.map(([g, s]): [string, string] => [`${g.split(" ").slice(prefix.length).join(" ")} ...`, s]),
  ];
  const name = prefix.length === 0 ? "banger" : `banger ${prefix.join(" ")}`;
  const about = prefix.length === 0 ? "fast, disposable, isolated Linux microVMs on this host" : GROUPS[prefix.join(" ")] ?? "";
  return [
    prefix.length === 0 ? `usage: banger [--context NAME] <command> [flags]` : `usage: ${name} <command> [flags]`,
    wrap(about, width),
    ...(prefix.length === 0 ? [wrap("--context NAME  talk to the daemon of context NAME (banger context ls); default: $BANGER_CONTEXT, else the current context, else this host", width)] : []),
    `commands:\n${table(rows, width)}`,
    `run '${name} <command> --help' for a command's flags and examples${prefix.length === 0 ? "; 'banger completion bash|zsh|fish' prints a shell completion script" : ""}`,
    EXIT_CODES,
  ].join("\n\n") + "\n";
}

export function isGroup(words: readonly string[]): boolean {
  return words.length === 0 || GROUPS[words.join(" ")] !== undefined;
}
