import { state, vmFiles } from "../../paths/paths.js";
import type { VmView } from "../../rpc/daemon/vm.js";
import type { VmRecord } from "../../state/vms.js";

/** The client-facing shape of a VM record. */
export function toVmView(vm: VmRecord, paths: { stateDir: string; knownHostsPath: string; keyPath: string }, now: Date = new Date()): VmView {
  const h = vm.handles;
  const running = (vm.state === "running" || vm.state === "paused") && vm.startedAt !== null;
  return {
    id: vm.id,
    name: vm.name,
    dns_name: `${vm.name}.vm`,
    state: vm.state,
    image: vm.image,
    vcpus: vm.vcpus,
    memory_mib: vm.memoryMib,
    disk_gib: vm.diskGib,
    vmm: h.vmm_kind ?? vm.vmm,
    ip: h.ip ?? null,
    mac: h.mac ?? null,
    tap: h.tap ?? null,
    pid: h.pid ?? null,
    created_at: vm.createdAt,
    started_at: vm.startedAt,
    uptime_s: running ? Math.max(0, Math.round((now.getTime() - Date.parse(vm.startedAt)) / 1000)) : null,
    last_error: vm.lastError,
    console_log: h.console_log ?? vmFiles.consoleLog(state.vmDir(paths.stateDir, vm.id)),
    ssh: { user: "root", key_path: paths.keyPath, known_hosts_path: paths.knownHostsPath },
  };
}
