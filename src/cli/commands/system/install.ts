import type { Command } from "../../command.js";

export const systemInstallCommand: Command = {
  path: ["system", "install"],
  local: true,
  summary: "install banger as two services (root helper, owner daemon); run again to upgrade",
  usage: "sudo banger system install [--owner USER] [--mode systemd|detached]",
  async run(args, ctx) {
    const { runInstall } = await import("./admin-run.js");
    return runInstall(args, ctx);
  },
};

export const systemRestartCommand: Command = {
  path: ["system", "restart"],
  local: true,
  summary: "restart the helper, then the daemon; running VMs keep running and are re-adopted",
  usage: "sudo banger system restart",
  async run(args, ctx) {
    const { runRestart } = await import("./admin-run.js");
    return runRestart(args, ctx);
  },
};

export const systemUninstallCommand: Command = {
  path: ["system", "uninstall"],
  local: true,
  summary: "stop and remove the services, network, code and config (state kept unless --purge)",
  usage: "sudo banger system uninstall [--force] [--purge]",
  async run(args, ctx) {
    const { runUninstall } = await import("./admin-run.js");
    return runUninstall(args, ctx);
  },
};

export const updateCommand: Command = {
  path: ["update"],
  local: true,
  summary: "switch the installed banger to another version with VMs kept running; rolls back by itself if a service does not answer as it within --timeout (30 s)",
  usage: "sudo banger update --from TARBALL | --version V [--timeout SECONDS]",
  async run(args, ctx) {
    const { runUpdate } = await import("./admin-run.js");
    return runUpdate(args, ctx);
  },
};
