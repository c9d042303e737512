import type { Command } from "../../command.js";
import { operationCancelCommand } from "./cancel.js";
import { operationShowCommand } from "./show.js";
import { operationWaitCommand } from "./wait.js";

/** `banger operation ...`: the ids that vm create, image build and --no-wait print. */
export const OPERATION_COMMANDS: readonly Command[] = [operationShowCommand, operationWaitCommand, operationCancelCommand];
