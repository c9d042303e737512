import { state, vmFiles } from "../../paths/paths.js";
import type { VmView } from "../../rpc/daemon/vm.js";
import { formatEgress } from "../../model/egress.js";
import type { PortSpec } from "../../model/port-spec.js";
import type { VmEgress } from "../../state/egress.js";
import type { VmRecord } from "../../state/vms.js";

/** The client-facing shape of a VM record, with what is recorded for it beside the record. */
export function toVmView(vm: VmRecord, paths: { stateDir: string; knownHostsPath: string; keyPath: string }, recorded: { egress: VmEgress; ports: readonly PortSpec[] }, now: Date = new Date()): VmView {
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
    egress: { policy: formatEgress(recorded.egress.policy), isolate: recorded.egress.isolate },
    ports: recorded.ports.map((p) => ({ host_ip: p.hostIp, host_port: p.hostPort, guest_port: p.guestPort, proto: p.proto })),
    ssh: { user: "root", key_path: paths.keyPath, known_hosts_path: paths.knownHostsPath },
  };
}
