import type { PortSpec } from "../../model/port-spec.js";
import { privListPorts, privSetPorts } from "../../rpc/priv/ports.js";
import { listPorts } from "../../state/ports.js";
import type { DaemonEnv } from "../env.js";
import type { NatGuest, PortsDeps } from "../vm/deps.js";

const wire = (s: PortSpec): { host_ip: string; host_port: number; guest_port: number; proto: "tcp" | "udp" } => ({ host_ip: s.hostIp, host_port: s.hostPort, guest_port: s.guestPort, proto: s.proto });

/** The daemon's side of published ports: records in the state store, rules through the root helper. */
export function portsService(env: DaemonEnv): PortsDeps {
  const publish = async (guest: NatGuest, specs: readonly PortSpec[], opId: string): Promise<void> => {
    await env.helper.call(privSetPorts, { guest_ip: guest.ip, tap: guest.tap, ports: specs.map(wire) }, opId);
  };
  return {
    publish,
    // A VM without records costs no helper call on the boot path or at stop.
    async apply(vmId, guest, opId) {
      const specs = listPorts(env.db, vmId);
      if (specs.length > 0) await publish(guest, specs, opId);
    },
    async clear(vmId, guest, opId) {
      if (listPorts(env.db, vmId).length > 0) await publish(guest, [], opId);
    },
    async published(opId) {
      const { ports } = await env.helper.call(privListPorts, {}, opId);
      return [...new Map(ports.map((p) => [p.guest_ip, { ip: p.guest_ip, tap: p.tap }])).values()];
    },
  };
}
