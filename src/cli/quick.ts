import type { Command } from "./command.js";
import { versionCommand } from "./commands/version.js";
import { vmExecCommand } from "./commands/vm/exec.js";
import { vmListCommand } from "./commands/vm/list.js";
import { beforeDashDash, findCommand, splitGlobalFlags } from "./main.js";

/**
 * The commands people run in loops and scripts. dist/bin/banger-main.cjs, which every `banger`
 * process starts from its code cache, carries only these and the CLI's core: reading and
 * deserializing all ~60 commands' code and help text cost each `vm list` ~2 ms of its ~40. Every
 * other command, and all help, runs from the whole CLI (src/cli/full.ts, shipped as banger-cli.cjs).
 */
export const QUICK_COMMANDS: readonly Command[] = [vmListCommand, vmExecCommand, versionCommand];

/**
 * Whether `argv` runs one of QUICK_COMMANDS. Help (`-h`, `--help` before `--`) and anything that
 * names no quick command go to the whole CLI, whose help and messages know every command; no
 * command extends a quick one's path (a test holds that), so both pick the same command.
 */
export function isQuick(argv: readonly string[]): boolean {
  let args: readonly string[];
  try {
    args = splitGlobalFlags(argv).rest;
  } catch {
    return false;
  }
  const found = findCommand(args, QUICK_COMMANDS);
  if (found === undefined) return false;
  const asked = beforeDashDash(found.rest);
  return !asked.includes("--help") && !asked.includes("-h");
}
