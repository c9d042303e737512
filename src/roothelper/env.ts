import type { Config } from "../config/schema.js";
import type { Logger } from "../system/log.js";
import type { Runner } from "../system/runner.js";
import type { ManagedRoot } from "./fs/managed-root.js";
import type { TrustedExecutable } from "./fs/trust.js";
import type { HostsFile } from "./hosts-file.js";
import type { VmmProcesses } from "./vmm-processes.js";
import type { VmmRunDirs } from "./vmm-run-dirs.js";

/**
 * What every privileged method may rely on. All of it comes from the helper's
 * own flags and config file, never from a request.
 */
export interface HelperEnv {
  readonly ownerUid: number;
  readonly ownerGid: number;
  /**
   * Opened and checked once at start. `state`: the owner's state dir; request paths are resolved
   * only beneath its descriptor. `jail`: vmm.jail_dir, root's alone (fs/trust.ts trustedDir), when
   * the jailer is used.
   */
  readonly roots: { readonly state: ManagedRoot; readonly jail?: ManagedRoot | undefined };
  /** The helper's own root-owned per-VM directories, where what it creates for VMMs lives. */
  readonly vmmRunDirs: VmmRunDirs;
  readonly config: Config;
  readonly runner: Runner;
  /** Runs debugfs/e2fsck as the owner with no_new_privs (owner-parsers.ts): every parse of ext4 goes through it, never through `runner`. */
  readonly parserRunner: Runner;
  readonly logger: Logger;
  /**
   * VMM binaries resolved once at start (they passed the trust anchor rules
   * in fs/trust.ts, and are executed through their checked directory's
   * descriptor); undefined when not installed.
   */
  readonly binaries: { readonly qemu?: TrustedExecutable | undefined; readonly firecracker?: TrustedExecutable | undefined; readonly jailer?: TrustedExecutable | undefined };
  /** network.hosts_file through its directory's descriptor, opened at start when network.host_dns may pick the hosts file. */
  readonly hostsFile?: HostsFile | undefined;
  /** The VMMs the helper may signal, and the pidfds it signals them through. */
  readonly vmms: VmmProcesses;
}
