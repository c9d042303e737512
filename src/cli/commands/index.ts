import type { Command } from "../command.js";
import { CONTEXT_COMMANDS } from "./context/index.js";
import { makeCompleteCommand } from "./complete.js";
import { completionCommand } from "./completion.js";
import { doctorCommand } from "./doctor.js";
import { IMAGE_COMMANDS } from "./image/index.js";
import { OPERATION_COMMANDS } from "./operation/index.js";
import { SNAPSHOT_COMMANDS } from "./snapshot/index.js";
import { systemInstallCommand, systemRestartCommand, systemUninstallCommand, updateCommand } from "./system/install.js";
import { systemDialStdioCommand } from "./system/dial-stdio.js";
import { systemStatusCommand } from "./system/status.js";
import { versionCommand } from "./version.js";
import { VM_COMMANDS } from "./vm/index.js";

/** Every CLI subcommand, one file each. */
export const COMMANDS: readonly Command[] = [
  versionCommand, doctorCommand, systemStatusCommand, systemInstallCommand, systemRestartCommand, systemUninstallCommand, updateCommand,
  ...VM_COMMANDS, ...IMAGE_COMMANDS, ...SNAPSHOT_COMMANDS, ...OPERATION_COMMANDS, ...CONTEXT_COMMANDS, systemDialStdioCommand, completionCommand, makeCompleteCommand(() => COMMANDS),
];
