import { installFiles, type InstallLayout, type ServiceName } from "./layout.js";
import type { InstallMetadata } from "./metadata.js";

/** Root's own search path for the services: never the invoking user's PATH. */
export const SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** How one service is run, whichever manager runs it: the unit files and the detached mode share it. */
export interface ServiceCommand {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The user it runs as: root for the helper, the owner for the daemon. */
  readonly user: { readonly name: string; readonly uid: number; readonly gid: number };
}

/**
 * Both services run the code under `current`, root's, through the node binary install checked:
 * root never executes anything from the owner's checkout, and a version swap (update) is one rename.
 * Every path comes from the metadata, so CLI, daemon, helper and doctor agree on one layout.
 */
export function serviceCommand(meta: InstallMetadata, layout: InstallLayout, service: ServiceName): ServiceCommand {
  const bin = installFiles.serviceBin(layout.currentLink, service);
  if (service === "bangerd-root") {
    return {
      argv: [meta.node, bin, "--owner", String(meta.owner.uid), "--owner-gid", String(meta.owner.gid), "--state-dir", meta.paths.state_dir, "--config", meta.paths.config, "--socket", meta.paths.helper_socket],
      env: { PATH: SERVICE_PATH },
      user: { name: "root", uid: 0, gid: 0 },
    };
  }
  return {
    argv: [meta.node, bin, "--system"],
    env: {
      PATH: SERVICE_PATH,
      BANGER_STATE_DIR: meta.paths.state_dir,
      BANGER_RUNTIME_DIR: meta.paths.runtime_dir,
      BANGER_CONFIG: meta.paths.config,
      BANGER_SOCKET: meta.paths.daemon_socket,
      BANGER_HELPER_SOCKET: meta.paths.helper_socket,
    },
    user: meta.owner,
  };
}

/** `cmd`'s argv (plus `extra` flags) as its user runs it: as it is for root, else through setpriv dropping to the owner with its groups. */
export function argvAsUser(cmd: ServiceCommand, setpriv: string, extra: readonly string[] = []): string[] {
  const argv = [...cmd.argv, ...extra];
  return cmd.user.uid === 0 ? argv : [setpriv, `--reuid=${cmd.user.uid}`, `--regid=${cmd.user.gid}`, "--init-groups", "--", ...argv];
}
