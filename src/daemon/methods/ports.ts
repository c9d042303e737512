import type { PortSpec } from "../../model/port-spec.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { RpcError } from "../../rpc/errors.js";
import { vmPortAdd, vmPortList, vmPortRm } from "../../rpc/daemon/ports.js";
import type { Db } from "../../state/database.js";
import { addPorts, listPorts, removePorts } from "../../state/ports.js";
import type { VmRecord } from "../../state/vms.js";
import type { PeerCred } from "../../system/peercred.js";
import type { PortsDeps } from "../vm/deps.js";
import type { VmService } from "../vm/service.js";

type Wire = { host_ip: string; host_port: number; guest_port: number; proto: "tcp" | "udp" };

const IPV4_RE = /^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$/;

/** The daemon's own check of what a client sent (the helper checks again): a clear error before anything is recorded. */
export function portSpecsFrom(field: string, ports: readonly Wire[]): PortSpec[] {
  return ports.map((p, i) => {
    const where = `${field}[${i}]`;
    if (!IPV4_RE.test(p.host_ip) || p.host_ip.split(".").some((o) => Number(o) > 255)) throw new RpcError("bad_params", `${where}.host_ip: ${JSON.stringify(p.host_ip)} is not an IPv4 address`);
    if (p.host_ip === "0.0.0.0") throw new RpcError("bad_params", `${where}.host_ip: 0.0.0.0 is not supported; name the host address to publish on (127.0.0.1 by default)`);
    for (const [k, v] of [["host_port", p.host_port], ["guest_port", p.guest_port]] as const) {
      if (!Number.isSafeInteger(v) || v < 1 || v > 65535) throw new RpcError("bad_params", `${where}.${k}: ${v} is not a port (1..65535)`);
    }
    return { hostIp: p.host_ip, hostPort: p.host_port, guestPort: p.guest_port, proto: p.proto };
  });
}

const toWire = (s: PortSpec): Wire => ({ host_ip: s.hostIp, host_port: s.hostPort, guest_port: s.guestPort, proto: s.proto });

export interface PortMethodsEnv {
  readonly service: VmService;
  readonly ports: PortsDeps;
  readonly db: Db;
  readonly reconciled: Promise<void>;
}

/** vm.port_add|rm|list: records in the state store; a running VM's rules follow them at once. */
export function portMethods(env: PortMethodsEnv): Registration<PeerCred>[] {
  const after = <T>(fn: () => Promise<T>): Promise<T> => env.reconciled.then(fn);
  const guestOf = (vm: VmRecord): { ip: string; tap: string } | undefined =>
    vm.state === "running" || vm.state === "paused" ? (vm.handles.ip !== undefined && vm.handles.tap !== undefined ? { ip: vm.handles.ip, tap: vm.handles.tap } : undefined) : undefined;
  const result = (vm: VmRecord): { name: string; running: boolean; ports: Wire[] } => ({ name: vm.name, running: guestOf(vm) !== undefined, ports: listPorts(env.db, vm.id).map(toWire) });
  const nameOf = (id: string): string => env.service.list().find((v) => v.id === id)?.name ?? id;
  return [
    implement(vmPortAdd, (p, ctx) => after(() => env.service.whileSettled(p.name, async (vm) => {
      const added = addPorts(env.db, vm.id, portSpecsFrom("ports", p.ports), nameOf);
      const guest = guestOf(vm);
      if (guest !== undefined && added.length > 0) {
        try {
          await env.ports.publish(guest, listPorts(env.db, vm.id), ctx.opId);
        } catch (e) {
          // All or nothing: what the helper refused (a host socket holds it) is not kept on record either.
          removePorts(env.db, vm.id, added);
          throw e;
        }
      }
      return result(vm);
    }))),
    implement(vmPortRm, (p, ctx) => after(() => env.service.whileSettled(p.name, async (vm) => {
      const keys = portSpecsFrom("ports", p.ports);
      const held = listPorts(env.db, vm.id);
      const missing = keys.filter((k) => !held.some((h) => h.hostIp === k.hostIp && h.hostPort === k.hostPort && h.proto === k.proto));
      if (missing.length > 0) throw new RpcError("not_found", `${vm.name} has no published port ${missing.map((m) => `${m.hostIp}:${m.hostPort}/${m.proto}`).join(", ")}; see banger vm port ls ${vm.name}`);
      const guest = guestOf(vm);
      const keep = held.filter((h) => !keys.some((k) => h.hostIp === k.hostIp && h.hostPort === k.hostPort && h.proto === k.proto));
      // Rules first: a port still on record but no longer published is repaired by the next start; the reverse would leak a rule.
      if (guest !== undefined) await env.ports.publish(guest, keep, ctx.opId);
      removePorts(env.db, vm.id, keys);
      return result(vm);
    }))),
    implement(vmPortList, (p) => after(() => Promise.resolve(result(env.service.mustGet(p.name))))),
  ];
}
