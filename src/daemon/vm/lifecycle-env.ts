import type { VmRepository } from "../../state/vms.js";
import type { Logger } from "../../system/log.js";
import type { VmDeps } from "./deps.js";
import type { HandleStore } from "./handles.js";
import type { HostKey, InstallKey } from "./ssh-keys.js";
import { writeKnownHosts } from "./ssh-keys.js";

/** What the lifecycle steps need besides their per-run context; built once by the service. */
export interface LifecycleEnv {
  readonly deps: VmDeps;
  readonly vms: VmRepository;
  readonly handles: HandleStore;
  readonly logger: Logger;
  readonly stateDir: string;
  readonly knownHostsPath: string;
  readonly sshReadyTimeoutMs: number;
  readonly stopTimeoutMs: number;
  /** How often wait-ssh checks that the VMM is still alive (a panicking kernel makes it exit). */
  readonly aliveCheckMs: number;
  /**
   * This boot of the host (/proc/sys/kernel/random/boot_id), recorded with a VMM's pid: after a
   * reboot the pid names some other process, which must never be taken for the VM's VMM.
   */
  readonly bootId: string;
  readonly installKey: () => Promise<InstallKey>;
  readonly hostKey: (flavor: "systemd" | "busybox") => Promise<HostKey>;
}

/** Rebuilds banger's known_hosts from every VM that has an IP and a host key (minus `excludeId`). */
export async function syncKnownHosts(env: LifecycleEnv, excludeId?: string): Promise<void> {
  const entries = env.vms
    .list()
    .filter((v) => v.id !== excludeId && v.handles.ip !== undefined && v.handles.host_key_pub !== undefined)
    .map((v) => ({ name: v.name, ip: v.handles.ip ?? "", publicKey: v.handles.host_key_pub ?? "" }));
  await writeKnownHosts(env.knownHostsPath, entries);
}
