import type { Config } from "../config/schema.js";
import { UsageError } from "./command.js";

/** Names the CLI can complete from the running daemon. */
export type NameKind = "vm" | "image" | "snapshot";

/** A config key whose schema default a flag falls back to, e.g. "defaults.vcpus". */
export type ConfigDefaultKey = { [S in keyof Config]: Config[S] extends readonly unknown[] ? never : Config[S] extends object ? `${S}.${keyof Config[S] & string}` : never }[keyof Config];

/**
 * One flag as a command declares it: parseArgs' shape ({type, short, multiple}) plus what help
 * and completion read. Help prints every flag with its description and default, so a flag
 * cannot exist without them.
 */
export interface FlagSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
  readonly description: string;
  /** The value's placeholder in help (`--memory MIB`); strings only. */
  readonly value?: string;
  /** What the command does without the flag, when it is a fixed value. */
  readonly default?: string | number | boolean;
  /** The default comes from the config file: help shows the schema's default for this key. */
  readonly defaultFrom?: ConfigDefaultKey;
  /** Completion offers these names for the flag's value. */
  readonly complete?: NameKind;
}

export type FlagTable = Readonly<Record<string, FlagSpec>>;

type ValueOf<F extends FlagSpec> = F["type"] extends "boolean" ? boolean : F["multiple"] extends true ? string[] : string;
export type FlagValues<T extends FlagTable> = { -readonly [K in keyof T]?: ValueOf<T[K]> | undefined };

export interface ParsedFlags<T extends FlagTable> {
  readonly values: FlagValues<T>;
  /** Arguments that are not flags, before any `--`. */
  readonly positionals: string[];
  /** Everything after the first `--` (undefined when there is none). */
  readonly rest: string[] | undefined;
}

/** The flag every command takes; main.ts answers it before a command runs. */
export const HELP_FLAG: FlagSpec = { type: "boolean", short: "h", description: "show this help" };

/** Edit distance with swapped neighbours as one edit (imgae → image), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] ?? [])[j] = v;
    }
  }
  return at(a.length, b.length);
}

/** The candidate closest to `word` (a prefix of it, or within a couple of typos), if any is. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 0.5 : distance(word, c);
    if (d <= Math.max(1, Math.min(2, Math.floor(c.length / 3))) && (best === undefined || d < best.d)) best = { c, d };
  }
  return best?.c;
}

function unknownFlag(flag: string, table: FlagTable): UsageError {
  const names = Object.keys(table).map((k) => `--${k}`);
  const guess = flag.startsWith("--") ? nearest(flag, [...names, "--help"]) : undefined;
  return new UsageError(`unknown flag ${flag}${guess !== undefined ? `; did you mean ${guess}?` : ""}`);
}

function label(name: string, spec: FlagSpec): string {
  return `--${name}${spec.type === "string" ? ` ${spec.value ?? "VALUE"}` : ""}`;
}

/**
 * Parses `args` against a command's flag table, in banger's words: unknown flags get the
 * nearest valid one suggested; `--flag -5` takes -5 as the value (the command then says what
 * a good value is), while `--flag --other` is a missing value.
 */
export function parseFlags<T extends FlagTable>(table: T, args: readonly string[]): ParsedFlags<T> {
  const values: Record<string, string | boolean | string[]> = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(table).flatMap(([name, spec]) => (spec.short !== undefined ? [[spec.short, name] as const] : [])));
  const set = (name: string, spec: FlagSpec, value: string | boolean): void => {
    if (spec.multiple === true && typeof value === "string") values[name] = [...((values[name] as string[] | undefined) ?? []), value];
    else values[name] = value;
  };
  const takesValue = (next: string | undefined): next is string => next !== undefined && next !== "--" && !next.startsWith("--") && !(next.length === 2 && next.startsWith("-") && byShort.has(next.slice(1)));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "--") return { values: values as FlagValues<T>, positionals, rest: args.slice(i + 1) };
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      const spec = Object.hasOwn(table, name) ? table[name] : undefined;
      if (spec === undefined) throw unknownFlag(arg.slice(0, eq === -1 ? undefined : eq), table);
      if (spec.type === "boolean") {
        if (eq !== -1) throw new UsageError(`--${name} takes no value (give --${name} alone)`);
        set(name, spec, true);
      } else if (eq !== -1) {
        set(name, spec, arg.slice(eq + 1));
      } else {
        const next = args[i + 1];
        if (!takesValue(next)) throw new UsageError(`${label(name, spec)}: give the value after --${name}`);
        set(name, spec, next);
        i++;
      }
    } else if (arg.startsWith("-") && arg.length > 1) {
      // -abc: booleans together; a string flag takes the rest of the word or the next argument (-p8080:80, -p 8080:80).
      for (let j = 1; j < arg.length; j++) {
        const name = byShort.get(arg[j] ?? "");
        const spec = name === undefined ? undefined : table[name];
        if (name === undefined || spec === undefined) throw unknownFlag(`-${arg[j] ?? ""}`, table);
        if (spec.type === "boolean") {
          set(name, spec, true);
          continue;
        }
        const attached = arg.slice(j + 1);
        if (attached !== "") set(name, spec, attached);
        else {
          const next = args[i + 1];
          if (!takesValue(next)) throw new UsageError(`-${spec.short ?? ""} ${spec.value ?? "VALUE"}: give the value after -${spec.short ?? ""}`);
          set(name, spec, next);
          i++;
        }
        break;
      }
    } else {
      positionals.push(arg);
    }
  }
  return { values: values as FlagValues<T>, positionals, rest: undefined };
}

/** A `--flag N` value as a positive whole number (undefined when the flag was not given). */
export function positiveNumber(flag: string, v: string | undefined, unit?: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v) || Number(v) === 0 || !Number.isSafeInteger(Number(v))) {
    throw new UsageError(`--${flag} takes a whole number greater than 0${unit !== undefined ? ` (${unit})` : ""}, e.g. --${flag} ${unit === "MiB" ? "2048" : "4"}; got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/** For commands that take no arguments besides flags. */
export function noPositionals(positionals: readonly string[], command: string): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}: ${command} takes only flags`);
}

/** `--json`, the same on every command that prints a result. */
export const JSON_FLAG = { type: "boolean", description: "print the result as JSON on stdout (progress and notes are not printed)" } as const;
