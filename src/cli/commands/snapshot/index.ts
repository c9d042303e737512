import type { Command } from "../../command.js";
import { snapshotListCommand } from "./list.js";
import { snapshotRmCommand } from "./rm.js";
import { snapshotShowCommand } from "./show.js";

export const SNAPSHOT_COMMANDS: readonly Command[] = [snapshotListCommand, snapshotShowCommand, snapshotRmCommand];
