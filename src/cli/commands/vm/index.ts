import type { Command } from "../../command.js";
import { vmCpCommand } from "./cp.js";
import { vmCreateCommand } from "./create.js";
import { vmEgressSetCommand } from "./egress/set.js";
import { vmEgressShowCommand } from "./egress/show.js";
import { vmForkCommand } from "./fork.js";
import { vmRestoreCommand } from "./restore.js";
import { vmSnapshotCommand } from "./snapshot.js";
import { vmListCommand } from "./list.js";
import { vmPortAddCommand } from "./port/add.js";
import { vmPortLsCommand } from "./port/ls.js";
import { vmPortRmCommand } from "./port/rm.js";
import { vmPauseCommand, vmResumeCommand } from "./pause.js";
import { vmLogsCommand } from "./logs.js";
import { vmPruneCommand } from "./prune.js";
import { vmResizeCommand } from "./resize.js";
import { vmRunCommand } from "./run.js";
import { vmShowCommand } from "./show.js";
import { vmExecCommand } from "./exec.js";
import { vmSshCommand } from "./ssh.js";
import { vmRestartCommand, vmStartCommand } from "./start.js";
import { vmStatsCommand } from "./stats.js";
import { vmDeleteCommand, vmStopCommand } from "./stop.js";

/** The `banger vm ...` family, in help order. */
export const VM_COMMANDS: readonly Command[] = [
  vmRunCommand, vmCreateCommand, vmListCommand, vmShowCommand, vmStartCommand, vmStopCommand, vmRestartCommand,
  vmPauseCommand, vmResumeCommand, vmSnapshotCommand, vmRestoreCommand, vmForkCommand, vmDeleteCommand, vmPruneCommand, vmResizeCommand, vmSshCommand, vmExecCommand, vmCpCommand, vmLogsCommand, vmStatsCommand,
  vmPortAddCommand, vmPortRmCommand, vmPortLsCommand, vmEgressSetCommand, vmEgressShowCommand,
];
