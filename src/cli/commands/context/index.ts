import type { Command } from "../../command.js";
import { contextAddCommand } from "./add.js";
import { contextLsCommand } from "./ls.js";
import { contextRmCommand } from "./rm.js";
import { contextUseCommand } from "./use.js";

/** The `banger context ...` family: which host's daemon the other commands talk to. */
export const CONTEXT_COMMANDS: readonly Command[] = [contextAddCommand, contextLsCommand, contextUseCommand, contextRmCommand];
