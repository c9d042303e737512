import { COMMANDS } from "./commands/index.js";
import { runCli, type CliIo } from "./main.js";

/**
 * The whole CLI: every command, help and completion. `banger` loads it only for what
 * src/cli/quick.ts does not carry (scripts/bundle.mjs ships it apart as dist/bin/banger-cli.cjs).
 */
export function runFullCli(argv: readonly string[], io: CliIo): Promise<number> {
  return runCli(argv, io, COMMANDS);
}
