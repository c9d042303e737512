import type { Command } from "../../command.js";
import { JSON_FLAG, type FlagTable } from "../../flags.js";

/* The tables live here, beside the commands help reads; admin-run.ts (bundled apart) parses with them. */
export const INSTALL_FLAGS = {
  owner: { type: "string", value: "USER", description: "the user who owns the VMs and runs the daemon", default: "the user who ran sudo" },
  mode: { type: "string", value: "systemd|detached", description: "systemd units, or detached processes (for hosts without systemd as PID 1)", default: "systemd when it is PID 1" },
  json: { ...JSON_FLAG, description: "print the install record (version, mode, owner, network, paths) as JSON" },
} as const satisfies FlagTable;

export const RESTART_FLAGS = {
  json: JSON_FLAG,
} as const satisfies FlagTable;

export const UNINSTALL_FLAGS = {
  force: { type: "boolean", description: "uninstall even while VMs are running (they are stopped)" },
  purge: { type: "boolean", description: "also delete images, disks and state" },
  json: JSON_FLAG,
} as const satisfies FlagTable;

export const UPDATE_FLAGS = {
  from: { type: "string", value: "TARBALL", description: "install this package (made by npm pack)" },
  version: { type: "string", value: "V", description: "fetch version V from the npm registry and install it" },
  timeout: { type: "string", value: "SECONDS", description: "how long each restarted service has to answer before the update rolls back", default: 30 },
  json: JSON_FLAG,
} as const satisfies FlagTable;

export const systemInstallCommand: Command = {
  path: ["system", "install"],
  local: true,
  summary: "install banger as two services (root helper, owner daemon); run again to upgrade",
  usage: "sudo banger system install [--owner USER] [--mode systemd|detached] [--json]",
  flags: INSTALL_FLAGS,
  examples: ["sudo banger system install", "sudo banger system install --owner alice --mode detached"],
  async run(args, ctx) {
    const { runInstall } = await import("./admin-run.js");
    return runInstall(args, ctx);
  },
};

export const systemRestartCommand: Command = {
  path: ["system", "restart"],
  local: true,
  summary: "restart the helper, then the daemon; running VMs keep running and are re-adopted",
  usage: "sudo banger system restart [--json]",
  flags: RESTART_FLAGS,
  examples: ["sudo banger system restart"],
  async run(args, ctx) {
    const { runRestart } = await import("./admin-run.js");
    return runRestart(args, ctx);
  },
};

export const systemUninstallCommand: Command = {
  path: ["system", "uninstall"],
  local: true,
  summary: "stop and remove the services, network, code and config (state kept unless --purge)",
  usage: "sudo banger system uninstall [--force] [--purge] [--json]",
  flags: UNINSTALL_FLAGS,
  examples: ["sudo banger system uninstall", "sudo banger system uninstall --purge"],
  async run(args, ctx) {
    const { runUninstall } = await import("./admin-run.js");
    return runUninstall(args, ctx);
  },
};

export const updateCommand: Command = {
  path: ["update"],
  local: true,
  summary: "switch the installed banger to another version with VMs kept running; rolls back by itself if a service does not answer within --timeout",
  usage: "sudo banger update --from TARBALL | --version V [--timeout SECONDS] [--json]",
  flags: UPDATE_FLAGS,
  examples: ["sudo banger update --version 0.2.0", "sudo banger update --from ./banger-0.2.0.tgz --timeout 60"],
  async run(args, ctx) {
    const { runUpdate } = await import("./admin-run.js");
    return runUpdate(args, ctx);
  },
};
