import { RpcError } from "../rpc/errors.js";
import type { PortSpec } from "../model/port-spec.js";
import { formatPortSpec } from "../model/port-spec.js";
import { inTransaction, statement, type Db } from "./database.js";

/**
 * Published ports per VM (table vm_ports). A host address:port/proto belongs to at most one VM
 * (the primary key), reserved from the moment it is asked for until it is removed or its VM is
 * deleted (ON DELETE CASCADE), so a second VM asking for it is refused at once, running or not.
 */

interface Row { vm_id: string; host_ip: string; host_port: number; guest_port: number; proto: "tcp" | "udp" }

const toSpec = (r: Row): PortSpec => ({ hostIp: r.host_ip, hostPort: r.host_port, guestPort: r.guest_port, proto: r.proto });

export function listPorts(db: Db, vmId: string): PortSpec[] {
  return (statement(db, "SELECT vm_id, host_ip, host_port, guest_port, proto FROM vm_ports WHERE vm_id = ? ORDER BY host_ip, host_port, proto").all(vmId) as Row[]).map(toSpec);
}

/** Every VM's ports by VM id, in one query, in listPorts' order. */
export function portsByVm(db: Db): (vmId: string) => PortSpec[] {
  const byId = new Map<string, PortSpec[]>();
  for (const r of statement(db, "SELECT vm_id, host_ip, host_port, guest_port, proto FROM vm_ports ORDER BY host_ip, host_port, proto").all() as Row[]) {
    const list = byId.get(r.vm_id);
    if (list === undefined) byId.set(r.vm_id, [toSpec(r)]);
    else list.push(toSpec(r));
  }
  return (vmId) => byId.get(vmId) ?? [];
}

/**
 * Records `specs` for the VM; all or none. `nameOf` names the VM holding a taken port in the error.
 * A spec the VM already holds with the same guest port is not an error (adding again is a no-op).
 */
export function addPorts(db: Db, vmId: string, specs: readonly PortSpec[], nameOf: (vmId: string) => string): PortSpec[] {
  return inTransaction(db, () => {
    const added: PortSpec[] = [];
    for (const s of specs) {
      const held = statement(db, "SELECT vm_id, host_ip, host_port, guest_port, proto FROM vm_ports WHERE host_ip = ? AND host_port = ? AND proto = ?").get(s.hostIp, s.hostPort, s.proto) as Row | undefined;
      if (held !== undefined && held.vm_id === vmId && held.guest_port === s.guestPort) continue;
      if (held !== undefined) {
        const who = held.vm_id === vmId ? "this VM (to another guest port; remove it first)" : `VM ${JSON.stringify(nameOf(held.vm_id))}`;
        throw new RpcError("conflict", `host port ${s.hostIp}:${s.hostPort}/${s.proto} is already published by ${who} (${formatPortSpec(toSpec(held))}); pick another host port`);
      }
      statement(db, "INSERT INTO vm_ports (vm_id, host_ip, host_port, guest_port, proto) VALUES (?, ?, ?, ?, ?)").run(vmId, s.hostIp, s.hostPort, s.guestPort, s.proto);
      added.push(s);
    }
    return added;
  });
}

/** Removes the VM's ports matching host address, port and proto; returns what it removed. */
export function removePorts(db: Db, vmId: string, keys: readonly Pick<PortSpec, "hostIp" | "hostPort" | "proto">[]): PortSpec[] {
  return inTransaction(db, () => {
    const removed: PortSpec[] = [];
    for (const k of keys) {
      const row = statement(db, "SELECT vm_id, host_ip, host_port, guest_port, proto FROM vm_ports WHERE vm_id = ? AND host_ip = ? AND host_port = ? AND proto = ?").get(vmId, k.hostIp, k.hostPort, k.proto) as Row | undefined;
      if (row === undefined) continue;
      statement(db, "DELETE FROM vm_ports WHERE vm_id = ? AND host_ip = ? AND host_port = ? AND proto = ?").run(vmId, k.hostIp, k.hostPort, k.proto);
      removed.push(toSpec(row));
    }
    return removed;
  });
}
